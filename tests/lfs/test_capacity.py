"""statfs's size: what a volume holds while it keeps being overwritten, never negative, never exceeded."""

import random

import pytest

from zcsdfs.lfs import mkfs, mount
from zcsdfs.zns import Geometry, ZonedDevice

BS = 4096
GEOMETRIES = {
    "8x1MiB, 4 heads": Geometry(8, 256, 256),
    "8x1MiB, 2 heads": Geometry(8, 256, 256, max_active=3),
    "tiny": Geometry.preset("tiny"),
}


def fresh(geometry):
    device = ZonedDevice.memory(geometry)
    mkfs(device)
    return device, mount(device)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_a_file_of_the_reported_size_can_be_overwritten_without_enospc(name):
    _, fs = fresh(GEOMETRIES[name])
    blocks = fs.statfs().f_blocks
    assert blocks > 0
    rng = random.Random(7)
    ino = fs.create(fs.ROOT, "f")
    assert fs.write(ino, 0, bytes(blocks * BS)) == blocks * BS
    for _ in range(2 * blocks):
        assert fs.write(ino, rng.randrange(blocks) * BS, rng.randbytes(BS)) == BS
    fs.sync()
    st = fs.statfs()
    assert (st.f_blocks, st.f_bfree) == (blocks, 0)


def test_small_devices_report_more_than_one_zone():
    """8 zones of 1 MiB: 6 log zones, 1 reserved; the old count took a whole zone per log head (1 MiB)."""
    _, fs = fresh(GEOMETRIES["8x1MiB, 4 heads"])
    assert fs.statfs().f_blocks == 2 * 256


def test_a_tiny_device_reports_zero_not_a_negative_size():
    _, fs = fresh(Geometry(6, 256, 256))
    st = fs.statfs()
    assert st.f_blocks >= 0 and st.f_bfree >= 0


def test_data_written_once_past_the_size_reports_full_not_over_100_percent():
    _, fs = fresh(GEOMETRIES["8x1MiB, 4 heads"])
    ino = fs.create(fs.ROOT, "f")
    fs.write(ino, 0, bytes((4 << 20)))  # 1,024 blocks: twice the sustained size, and it fits
    fs.sync()
    st = fs.statfs()
    assert st.f_bfree == st.f_bavail == 0
    assert st.f_blocks == st.f_blocks - st.f_bfree >= 1024
