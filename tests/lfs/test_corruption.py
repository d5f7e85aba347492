"""Damaged images: mount falls back or refuses with a clear message, never returns wrong data."""

import errno
import struct

import crc32c
import pytest

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs import superblock
from zcsdfs.lfs.format import CHECKPOINT_MAGIC
from zcsdfs.lfs.scan import Walk, written_end
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.backend import MemoryBackend
from zcsdfs.zns.zone import ZoneState

BS = 4096


def clone(device, flip_lba=None, flip_byte=0):
    """A copy of ``device`` as it would come back from a power cycle, with one byte flipped."""
    g = device.geometry
    table, contents = [], []
    for z in device.report():
        written = min(z.write_pointer, z.start + z.capacity) - z.start
        full = z.state is ZoneState.FULL
        table.append((ZoneState.FULL if full else ZoneState.CLOSED if written else ZoneState.EMPTY, written))
        contents.append(device.read(z.start, written) if written else b"")
    backend = MemoryBackend(g, table)
    for index, data in enumerate(contents):
        if data:
            buf = backend.zone_buffer(index)
            buf[:len(data)] = data
            if flip_lba is not None and flip_lba // g.zone_size == index:
                at = (flip_lba - index * g.zone_size) * BS + flip_byte
                buf[at] ^= 0xFF
    return ZonedDevice(g, backend)


@pytest.fixture
def populated():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"first")
    fs.checkpoint()
    fs.write(a, 0, b"second")
    fs.fsync(a)
    return device, fs, a


def test_corrupt_latest_checkpoint_falls_back(populated):
    device, fs, a = populated
    cp_lba = fs.checkpointer.zone * device.geometry.zone_size
    frames = list(Walk(device, fs.sb.uuid, CHECKPOINT_MAGIC, cp_lba + 1,
                       written_end(device, fs.checkpointer.zone)))
    latest_lba, _ = frames[-1]
    damaged = clone(device, latest_lba, 100)
    report = fsck(damaged)
    assert any("fails its CRC32C" in e for e in report.errors)  # a fallback is an error, not a note
    assert report.exit_code == 4
    again = mount(damaged)
    assert again.recovery.checkpoint < fs.checkpointer.generation
    assert any("fails its CRC32C" in m for m in again.recovery.messages)
    assert again.read(a, 0, 10) in (b"first", b"second")


def test_corrupt_log_unit_ends_the_log(populated):
    device, fs, a = populated
    lba = fs.ns.inodes[a].extents.lookup(0)  # the data block of the unit written last
    damaged = clone(device, lba, 0)
    report = fsck(damaged)  # fsynced data was lost: an error
    assert any("fails its CRC32C" in e for e in report.errors) and report.exit_code == 4
    again = mount(damaged)
    assert any("fails its CRC32C" in m for m in again.recovery.messages)
    assert again.read(a, 0, 10) == b"first"  # the damaged unit's data is never returned


def test_damaged_primary_superblock_mounts_from_the_copy(populated, caplog):
    device, fs, a = populated
    fs.unmount()
    damaged = clone(device, 0, 30)  # the copy in checkpoint zone 0
    report = fsck(damaged)
    assert any("superblock copy damaged" in e for e in report.errors)
    assert report.exit_code == 4
    with caplog.at_level("WARNING", logger="zcsdfs.lfs"):
        again = mount(damaged)
    assert again.read(a, 0, 10) == b"second"
    assert any("superblock copy damaged" in r.getMessage() for r in caplog.records)


def test_both_superblocks_damaged_refuses(populated):
    device, fs, _ = populated
    assert fs.checkpointer.zone == 0 and device.zone(1).state is ZoneState.FULL  # mkfs wrote both copies
    damaged = clone(clone(device, 0, 30), device.zone(1).start, 30)
    with pytest.raises(OSError) as info:
        mount(damaged)
    assert info.value.errno == errno.EUCLEAN
    assert "superblock" in str(info.value)
    assert fsck(damaged).exit_code == 4


def test_an_older_format_is_refused_clearly(populated):
    device, fs, _ = populated
    fs.unmount()
    g = device.geometry
    old = clone(device)
    for zone in (0, 1):  # rewrite both copies as format 1 would have them
        block = bytearray(old.read(old.zone(zone).start, 1))
        struct.pack_into("<H", block, 4, 1)
        body = bytes(block[:superblock.LAYOUT.size])
        struct.pack_into("<I", block, superblock.LAYOUT.size, crc32c.crc32c(body))
        buf = old._backend.zone_buffer(zone)
        buf[:BS] = block
    with pytest.raises(OSError) as info:
        mount(old)
    assert info.value.errno == errno.EINVAL and "format 1" in str(info.value)
    assert g.zones == old.geometry.zones
