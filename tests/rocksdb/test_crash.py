"""SIGKILL during synced writes: on reopen nothing synced is lost and the volume is fsck-clean."""

import os
import random
import signal
import subprocess
import sys

import pytest

import zcsdfs
from zcsdfs.lfs.fsck import fsck
from zcsdfs.rocksdb import DB
from zcsdfs.zns import ZonedDevice

from .conftest import GEOMETRY
from .crashchild import OPTIONS, synced_key, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def assert_fsck_clean(image) -> None:
    device = ZonedDevice.open(image)
    try:
        report = fsck(device)
        assert report.clean, report.errors
    finally:
        device.close_device()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_sigkill_during_synced_writes_loses_nothing_synced(tmp_path, seed):
    image = tmp_path / "crash.zns"
    ZonedDevice.create(image, GEOMETRY).close_device()
    zcsdfs.Volume(image, create=True).unmount()
    kill_after = random.Random(seed).randrange(50, 700)  # past flushes and compactions
    child = subprocess.Popen([sys.executable, "-m", "tests.rocksdb.crashchild", str(image), str(seed)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = -1
    for line in child.stdout:
        acked = int(line)
        if acked + 1 >= kill_after:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read()[-3000:]
    child.stdout.close()
    child.stderr.close()

    assert_fsck_clean(image)
    with zcsdfs.Volume(image) as vol:
        with DB("/db", volume=vol, options=OPTIONS) as db:
            for i in range(acked + 1):
                assert db.get(synced_key(i)) == value(i, seed), f"synced key {i} of {acked + 1} lost"
            for k, v in db.items(prefix=b"loose"):  # unsynced: may be gone, but whole if present
                assert v == value(int(k[5:]), seed)
            for k, v in db.items(prefix=b"pair"):
                i = int(k[4:])
                assert v == value(i, seed) and db.get(synced_key(i)) == v  # batches are atomic
            db[b"after"] = b"the crash"
            db.flush()
    print(f"seed {seed}: killed after {acked + 1} synced writes; all present")
    assert_fsck_clean(image)
