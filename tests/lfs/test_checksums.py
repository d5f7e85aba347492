"""Data checksums: a flipped byte in a data block is EIO on every read path, fsck names the file, GC goes on."""

import errno

import pytest

from tests.lfs.test_corruption import clone
from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs.format import UNIT_MAGIC, parse_header
from zcsdfs.lfs.usage import disk_usage
from zcsdfs.zns import ZonedDevice

BS = 4096


def pattern(tag: int, blocks: int) -> bytes:
    return b"".join(bytes([tag, i]) * (BS // 2) for i in range(blocks))


def flip(device, lba: int, count: int = 16):
    """A power-cycled copy of ``device`` with ``count`` bytes of block ``lba`` flipped."""
    damaged = clone(device)
    zone = lba // device.geometry.zone_size
    buf = damaged._backend.zone_buffer(zone)
    at = (lba - zone * device.geometry.zone_size) * BS + 100
    for i in range(count):
        buf[at + i] ^= 0xFF
    return damaged


@pytest.fixture
def volume():
    """A file of 30 blocks in a directory, checkpointed, and the LBA of its block 3."""
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    d = fs.mkdir(fs.ROOT, "dir")
    f = fs.create(d, "f")
    fs.write(f, 0, pattern(1, 30))
    lba = fs.ns.inodes[f].extents.lookup(3)
    fs.unmount()
    return device, f, lba


@pytest.mark.parametrize("offset,size", [(0, 30 * BS), (3 * BS, BS), (3 * BS + 10, 100), (0, 8 * BS)],
                         ids=["unlocked", "one-block", "partial", "small"])
def test_a_flipped_data_block_reads_as_eio_with_a_log_line(volume, caplog, offset, size):
    device, f, lba = volume
    fs = mount(flip(device, lba))
    with caplog.at_level("ERROR", logger="zcsdfs.lfs"):
        with pytest.raises(OSError) as info:
            fs.read(f, offset, size)
    assert info.value.errno == errno.EIO
    assert f"inode {f}" in str(info.value) and f"offset {3 * BS}" in str(info.value)
    assert any(f"inode {f}" in r.getMessage() and f"file offset {3 * BS}" in r.getMessage() for r in caplog.records)
    assert fs.read(f, 4 * BS, 26 * BS) == pattern(1, 30)[4 * BS:]  # the blocks around it read as written
    assert fs.read(f, 0, 3 * BS) == pattern(1, 30)[:3 * BS]


def test_snapshots_frozen_views_and_partial_writes_check_too(volume):
    device, f, lba = volume
    fs = mount(flip(device, lba))
    snap = fs.snapshot(fs.create_snapshot("s").name)
    with pytest.raises(OSError) as info:
        snap.read(f, 0, 30 * BS)
    assert info.value.errno == errno.EIO
    with fs.freeze(f) as view:
        with pytest.raises(OSError) as info:
            view.read(3 * BS, 10)
        assert info.value.errno == errno.EIO
        assert view.read(0, 10) == pattern(1, 1)[:10]
    with pytest.raises(OSError) as info:  # read-modify-write of the damaged block
        fs.write(f, 3 * BS + 1, b"x")
    assert info.value.errno == errno.EIO
    fs.write(f, 3 * BS, b"y" * BS)  # a whole new block replaces it
    assert fs.read(f, 3 * BS, BS) == b"y" * BS


def test_checksums_survive_roll_forward_and_checkpoints(volume):
    device, f, _ = volume
    fs = mount(device)
    g = fs.create(fs.ROOT, "g")
    fs.write(g, 0, pattern(2, 20))
    fs.write(g, 5 * BS, pattern(3, 2))  # overwrites split the extent: seeds mid-unit
    fs.fsync(g)  # durable in the log only: the next mount rolls it forward
    lba = fs.ns.inodes[g].extents.lookup(10)
    crashed = clone(device)
    again = mount(crashed)
    expected = bytearray(pattern(2, 20))
    expected[5 * BS:7 * BS] = pattern(3, 2)
    assert again.read(g, 0, 20 * BS) == expected
    again.unmount()
    assert fsck(crashed).clean
    damaged = flip(crashed, lba)
    report = fsck(damaged)
    assert report.damaged == [("/g", 10 * BS)]
    third = mount(damaged)
    with pytest.raises(OSError):
        third.read(g, 10 * BS, BS)


def test_fsck_scrubs_every_block_and_names_the_file(volume):
    device, f, lba = volume
    assert fsck(device).scrubbed_blocks == 30
    damaged = flip(device, lba)
    report = fsck(damaged)
    assert report.exit_code == 4
    assert report.damaged == [("/dir/f", 3 * BS)]
    assert any("/dir/f" in e and f"offset {3 * BS}" in e for e in report.errors)


def _sealed_zone_with_garbage():
    """A file ``a`` whose first zone is sealed and half garbage, another zone full of ``b``, checkpointed."""
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    a = fs.create(fs.ROOT, "a")
    b = fs.create(fs.ROOT, "b")
    fs.write(a, 0, pattern(1, 20))
    fs.write(b, 0, pattern(2, 20))
    fs.write(a, 0, pattern(3, 10))  # the first 10 blocks of a move away: garbage in the first zone
    fs.write(b, 0, pattern(4, 20))  # b moves away entirely
    fs.write(fs.create(fs.ROOT, "c"), 0, pattern(5, 20))  # does not fit: a's first zone is sealed
    fs.write(b, 0, pattern(6, 20))  # nor this: the hot zone is sealed, b's last copy there garbage
    zone = fs.ns.inodes[a].extents.lookup(15) // device.geometry.zone_size
    assert fs.writer.role[zone].name == "SEALED"
    fs.unmount()
    return device, a, zone


def test_gc_leaves_a_damaged_block_marks_the_zone_and_goes_on(caplog):
    device, a, zone = _sealed_zone_with_garbage()
    fs = mount(device)
    bad = fs.ns.inodes[a].extents.lookup(15)
    assert bad // device.geometry.zone_size == zone
    fs.unmount()
    fs = mount(flip(device, bad))
    expected = pattern(3, 10) + pattern(1, 20)[10 * BS:]
    with caplog.at_level("ERROR", logger="zcsdfs.lfs"):
        freed = fs.gc(zones=30)
    assert fs.damaged_zones == [zone]
    assert any(f"zone {zone} is damaged" in r.getMessage() for r in caplog.records)
    assert any(f"inode {a}" in r.getMessage() and f"offset {15 * BS}" in r.getMessage() for r in caplog.records)
    assert fs.writer.role[zone].name == "SEALED"
    assert freed >= 1  # other victims were cleaned
    assert fs.ns.valid[zone] == 1  # only the damaged block stays
    assert fs.read(a, 16 * BS, 4 * BS) == expected[16 * BS:]  # moved, and checked on the way
    with pytest.raises(OSError):
        fs.read(a, 15 * BS, BS)
    moved = fs.gc_blocks_moved
    fs.gc(zones=30)
    assert fs.gc_blocks_moved == moved  # the damaged zone is never picked again
    fs.unmount()
    device = fs.device
    assert disk_usage(device).damaged_zones == 1
    report = fsck(device)
    assert report.exit_code == 4 and report.damaged == [("/a", 15 * BS)]
    assert any(f"zone {zone} is damaged" in e for e in report.errors)
    again = mount(device)
    assert again.damaged_zones == [zone]  # saved in the checkpoint
    again.write(a, 15 * BS, b"z" * BS)  # the damaged block is replaced: the zone holds garbage only
    again.checkpoint()
    assert again.damaged_zones == [] and again.writer.role[zone].name == "FREE"


@pytest.mark.parametrize("at", [200, 0], ids=["records", "magic"])
def test_gc_cleans_a_zone_whose_unit_header_is_damaged(caplog, at):
    """A unit failing its CRC used to stall GC for good: the zone was picked again and again."""
    device, a, zone = _sealed_zone_with_garbage()
    fs = mount(device)
    start = device.zone(zone).start
    header = parse_header(device.read(start, 1))
    assert header.magic == UNIT_MAGIC
    fs.unmount()
    damaged = clone(device)
    damaged._backend.zone_buffer(zone)[at] ^= 0xFF  # the records, or the magic, of the zone's first unit
    report = fsck(damaged)
    assert report.exit_code == 4 and report.damaged == []  # damage, though no data is lost
    assert any(f"zone {zone}" in e for e in report.errors)
    fs = mount(damaged)
    with caplog.at_level("WARNING", logger="zcsdfs.lfs"):
        assert fs.gc(zones=30) >= 1
    assert fs.writer.role[zone].name == "FREE"
    assert any(f"zone {zone}" in r.getMessage() and "found by the extent maps" in r.getMessage()
               for r in caplog.records)
    assert fs.read(a, 0, 20 * BS) == pattern(3, 10) + pattern(1, 20)[10 * BS:]
    fs.unmount()
    assert fsck(damaged).clean


def test_every_flipped_byte_in_the_log_is_noticed():
    """The issue's experiment: 23 of 24 random flips in log zones went unnoticed by fsck."""
    import random

    from zcsdfs.lfs.format import LOG_MAGICS
    from zcsdfs.lfs.log import Role
    from zcsdfs.lfs.scan import Walk, written_end

    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    inos = [fs.create(fs.ROOT, f"f{i}") for i in range(4)]
    for round in range(3):
        for i, ino in enumerate(inos):
            fs.write(ino, 0, pattern(16 * round + i, 10 + 7 * i))
        fs.checkpoint()
    fs.create_snapshot("s")
    fs.write(inos[0], 0, pattern(99, 20))
    uuid = fs.sb.uuid
    fs.unmount()
    assert fsck(device).clean
    framed = []  # every block some frame of a kept log zone covers
    for zone in range(2, device.geometry.zones):
        if fs.writer.role[zone] is Role.FREE:
            continue
        start = device.zone(zone).start
        for lba, header in Walk(device, uuid, LOG_MAGICS, start, written_end(device, zone)):
            framed.extend(range(lba, lba + header.blocks))
    rng = random.Random(15)
    for lba in rng.sample(framed, 24):
        damaged = clone(device)
        zone = lba // device.geometry.zone_size
        damaged._backend.zone_buffer(zone)[(lba - zone * device.geometry.zone_size) * BS + rng.randrange(BS)] ^= 0x10
        report = fsck(damaged)
        assert report.exit_code == 4, (lba, report.notes)
