"""zcsdfs.rocksdb tests: a real RocksDB (Debian's librocksdb) on zcsdfs volumes.

The binding needs g++, librocksdb-dev and Python's headers; where they are missing these
tests skip, saying so. Where they are there, a binding that fails to build fails the tests.
"""

import os
import shutil
import sysconfig

import pytest

import zcsdfs
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.geometry import Geometry

if (shutil.which(os.environ.get("CXX", "g++")) is None or not os.path.exists("/usr/include/rocksdb/c.h")
        or not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))):
    pytest.skip("zcsdfs.rocksdb needs g++, librocksdb-dev and Python's headers: "
                "apt-get install g++ librocksdb-dev python3-dev", allow_module_level=True)
import zcsdfs.rocksdb as rocksdb  # noqa: E402

#: 64 zones of 4 MiB: room for a few hundred MiB of RocksDB files, zones small enough to turn over.
GEOMETRY = Geometry(zones=64, zone_size=1024, zone_capacity=1024, block_size=4096, max_open=8, max_active=12)

#: Small memtables and files, so a few thousand keys make several SSTs and levels.
SMALL = dict(write_buffer_size=64 << 10, target_file_size_base=64 << 10, max_bytes_for_level_base=256 << 10,
             level0_file_num_compaction_trigger=2)


@pytest.fixture
def vol():
    volume = zcsdfs.Volume(ZonedDevice.memory(GEOMETRY))
    yield volume
    volume.unmount()


@pytest.fixture
def db(vol):
    with rocksdb.DB("/db", volume=vol) as handle:
        yield handle
