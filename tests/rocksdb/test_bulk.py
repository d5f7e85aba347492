"""Many keys written, flushed, compacted and closed in one process, checked in another."""

import os
import subprocess
import sys

import zcsdfs
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.geometry import Geometry

#: 1M keys by default (as the issue asks); ZCSDFS_ROCKSDB_BULK_KEYS sets another count.
KEYS = int(os.environ.get("ZCSDFS_ROCKSDB_BULK_KEYS", 1_000_000))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args):
    done = subprocess.run([sys.executable, "-m", "tests.rocksdb.bulk", *args], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-1000:]
    return done.stdout


def test_million_keys_survive_close_and_a_new_process(tmp_path):
    image = tmp_path / "bulk.zns"
    ZonedDevice.create(image, Geometry(zones=128, zone_size=2048, zone_capacity=2048, block_size=4096,
                                       max_open=8, max_active=12)).close_device()
    zcsdfs.Volume(image, create=True).unmount()
    print(run("write", str(image), str(KEYS)).strip())
    out = run("check", str(image), str(KEYS)).strip()
    print(out)
    assert out.startswith(f"checked {KEYS} keys")
    assert " 0 .sst" not in out and " 0 MANIFEST" not in out and " 0 .log" not in out
