"""Arguments at and past the limits: refused or clamped as Linux does, and nothing lost."""

import os

import pytest

import zcsdfs
from zcsdfs.zns import Geometry, ZonedDevice
from zcsdfs.lfs import mkfs

MAX_NS = ((1 << 63) // 10**9) * 10**9  # the latest time an inode holds: whole seconds at the limit


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "v.zns"
    with ZonedDevice.create(path, Geometry.preset("qemu")) as device:
        mkfs(device)
    return path


@pytest.mark.parametrize("ns, kept", [(1 << 70, MAX_NS), (-(1 << 70), -MAX_NS), ((1 << 63) - 1, MAX_NS),
                                      (MAX_NS - 1, MAX_NS - 1), (-5, -5)])
def test_times_out_of_range_are_clamped_and_survive_remount(image, ns, kept):
    v = zcsdfs.Volume(image)
    v.close(v.open("/f", os.O_CREAT | os.O_WRONLY, 0o644))
    v.utime("/f", ns=(ns, ns))
    assert v.stat("/f").st_mtime_ns == kept
    v.unmount()  # the checkpoint must be able to store what utime kept
    v = zcsdfs.Volume(image)
    assert (v.stat("/f").st_atime_ns, v.stat("/f").st_mtime_ns) == (kept, kept)
    v.unmount()


def test_chown_ids():
    v = zcsdfs.Volume.memory("qemu")
    try:
        fd = v.open("/f", os.O_CREAT | os.O_WRONLY, 0o644)
        v.chown("/f", 7, 8)
        v.chown("/f", 0xFFFFFFFF, -1)  # (uid_t) -1 and -1 both keep the id
        v.fchown(fd, -1, 0xFFFFFFFF)
        assert (v.stat("/f").st_uid, v.stat("/f").st_gid) == (7, 8)
        for bad in (1 << 32, 1 << 40, -2):
            with pytest.raises(OverflowError):
                v.chown("/f", bad, -1)
            with pytest.raises(OverflowError):
                v.fchown(fd, -1, bad)
        assert (v.stat("/f").st_uid, v.stat("/f").st_gid) == (7, 8)
        v.close(fd)
    finally:
        v.unmount()
