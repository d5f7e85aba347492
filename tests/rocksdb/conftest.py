"""zcsdfs.rocksdb tests: a real RocksDB (Debian's librocksdb) on zcsdfs volumes.

The binding needs g++ and librocksdb-dev; where they are missing these tests skip with
the binding's own ImportError (which says what to install) as the reason.
"""

import pytest

import zcsdfs
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.geometry import Geometry

rocksdb = pytest.importorskip("zcsdfs.rocksdb", reason="zcsdfs.rocksdb cannot be built here")

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
