"""A checkpoint whose zone table scales: sparse zone records, large tables as chunks in the log.

The real geometry of the issue (1,000,000 zones of 64 KiB) is too slow for
CI; these tests use many tiny zones on memory devices, and zone groups of
a few zones (``ZONE_GROUP`` patched) so that a few hundred zones already
span many groups.
"""

import errno
import struct

import crc32c
import pytest

from zcsdfs.lfs import checkpoint, fsck, mkfs, mount, superblock
from zcsdfs.lfs.checkpoint import zone_table_root_bytes
from zcsdfs.lfs.gc import collect
from zcsdfs.lfs.log import Role
from zcsdfs.zns import Geometry, ZonedDevice

from tests.lfs.test_corruption import clone

BS = 4096
SMALL = Geometry(zones=400, zone_size=8, zone_capacity=8)  # a root keeps 7 blocks; 400 records take 3


@pytest.fixture
def groups(monkeypatch):
    monkeypatch.setattr(checkpoint, "ZONE_GROUP", 16)
    return 16


def fill(fs, files: int, blocks: int = 7) -> dict:
    """``files`` files of ``blocks`` blocks each, a zone apiece on ``SMALL``; returns name -> contents."""
    out = {}
    for i in range(files):
        data = bytes([i % 251 + 1]) * (blocks * BS)
        fs.write(fs.create(fs.ROOT, f"f{i}"), 0, data)
        out[f"f{i}"] = data
    return out


def check(fs, files: dict) -> None:
    assert sorted(e.name for e in fs.readdir(fs.ROOT)) == sorted(files)
    for name, data in files.items():
        assert fs.read(fs.lookup(fs.ROOT, name), 0, len(data) + 1) == data


def roles(fs) -> dict:
    return {z: r for z, r in fs.writer.role.items() if r is not Role.FREE}


def test_mkfs_on_many_zones_keeps_a_small_root():
    """20,000 zones of 8 blocks: a root with a record per zone (480 KB) could not fit in 7 blocks."""
    device = ZonedDevice.memory(Geometry(zones=20_000, zone_size=8, zone_capacity=8))
    mkfs(device)
    fs = mount(device)
    fs.write(fs.create(fs.ROOT, "a"), 0, b"x" * 3 * BS)
    fs.unmount()
    fs = mount(device)
    assert fs.read(fs.lookup(fs.ROOT, "a"), 0, 4 * BS) == b"x" * 3 * BS
    fs.unmount()
    assert fsck(device).clean


def test_a_large_zone_table_lives_in_the_log(groups):
    device = ZonedDevice.memory(SMALL)
    mkfs(device)
    fs = mount(device)
    files = fill(fs, 200)
    fs.checkpoint()
    table = fs.checkpointer.table
    assert len(table.chunks) > 10  # about 200 sealed zones in groups of 16
    saved = {rec.zone for recs in table.saved.values() for rec in recs}
    assert all(fs.writer.role[z] is Role.SEALED for z in saved)  # heads travel in the root
    before = roles(fs)
    fs.unmount()
    fs = mount(device)
    check(fs, files)
    assert roles(fs) == before
    assert fs.checkpointer.table.chunks == table.chunks  # the clean groups were not rewritten at unmount
    fs.unmount()
    report = fsck(device)
    assert report.clean, report.errors


def test_only_changed_zone_groups_are_rewritten(groups):
    device = ZonedDevice.memory(SMALL)
    mkfs(device)
    fs = mount(device)
    files = fill(fs, 200)
    fs.checkpoint()
    old = dict(fs.checkpointer.table.chunks)
    victim = fs.lookup(fs.ROOT, "f100")
    zone = fs.ns.inodes[victim].extents.lookup(0) // SMALL.zone_size
    fs.unlink(fs.ROOT, "f100")
    del files["f100"]
    fs.checkpoint()
    new = fs.checkpointer.table.chunks
    same = [g for g in old if new.get(g) == old[g]]
    assert len(same) >= len(old) - 2  # the freed zone's group (and maybe the metadata head's) changed
    assert len(same) < len(old)
    assert fs.writer.role[zone] is Role.FREE
    fs.unmount()
    check(mount(device), files)
    assert fsck(device).clean


def test_gc_moves_zone_table_chunks_and_frees_their_zone(groups):
    device = ZonedDevice.memory(SMALL)
    mkfs(device)
    fs = mount(device)
    files = fill(fs, 200)
    w, zone_size = fs.writer, SMALL.zone_size

    def sealed_holding():
        holding = {c.lba // zone_size for chunks in fs.checkpointer.table.chunks.values() for c in chunks}
        return next((z for z in sorted(holding) if w.role[z] is Role.SEALED), None)

    names = iter(sorted(files, key=lambda n: int(n[1:]))[::3])
    while sealed_holding() is None:  # each deletion dirties a group: its rewrite fills the metadata head
        name = next(names)
        fs.unlink(fs.ROOT, name)
        del files[name]
        fs.checkpoint()
    victim = sealed_holding()
    assert fs.checkpointer.body[victim] > 0  # GC counts the chunks as blocks to move
    collect(fs, victim)
    fs.checkpoint()
    assert w.role[victim] is Role.FREE
    assert all(c.lba // zone_size != victim for chunks in fs.checkpointer.table.chunks.values() for c in chunks)
    fs.unmount()
    check(mount(device), files)
    assert fsck(device).clean


def test_mkfs_refuses_a_geometry_that_cannot_hold_the_metadata():
    g = Geometry(zones=100_000, zone_size=4, zone_capacity=4)  # 3 blocks for roots; the table could need 3
    device = ZonedDevice.memory(g)
    with pytest.raises(OSError) as info:
        mkfs(device)
    assert info.value.errno == errno.EINVAL
    assert "cannot hold the metadata" in str(info.value) and "larger zones" in str(info.value)
    assert device.report_used() == []  # nothing written


def test_the_issue_geometry_fits():
    """1,000,000 zones of 64 KiB (16 blocks): the largest possible zone table root takes 7 of 15 blocks."""
    g = Geometry(zones=1_000_000, zone_size=16, zone_capacity=16)
    assert -(-zone_table_root_bytes(g) // BS) <= (g.zone_capacity - 1) // 2


def _set_version(device, version: int):
    """A copy of ``device`` whose superblock copies say ``version``."""
    out = clone(device)
    for zone in (0, 1):
        block = bytearray(out.read(out.zone(zone).start, 1))
        struct.pack_into("<H", block, 4, version)
        struct.pack_into("<I", block, superblock.LAYOUT.size, crc32c.crc32c(bytes(block[:superblock.LAYOUT.size])))
        out._backend.zone_buffer(zone)[:BS] = block
    return out


def test_a_format_2_volume_is_read_and_keeps_its_table_in_the_root(groups):
    device = ZonedDevice.memory(SMALL)
    mkfs(device)
    old = _set_version(device, 2)
    fs = mount(old)
    assert fs.sb.version == 2
    files = fill(fs, 200)
    fs.checkpoint()
    assert fs.checkpointer.table.chunks == {}  # a format 2 zcsdfs could not read zone table chunks
    fs.unmount()
    fs = mount(old)
    check(fs, files)
    fs.unmount()
    assert fsck(old).clean


def test_a_newer_format_is_refused_clearly():
    device = ZonedDevice.memory(SMALL)
    mkfs(device)
    with pytest.raises(OSError) as info:
        mount(_set_version(device, 4))
    assert info.value.errno == errno.EINVAL and "format 4" in str(info.value)


def test_crash_states_around_zone_table_checkpoints(groups):
    """Every crash state while zone table chunks are rewritten mounts, passes fsck and keeps what was synced."""
    from zcsdfs.zns.crash import Recorder, crash_states

    device = ZonedDevice.memory(SMALL)
    mkfs(device)
    fs = mount(device)
    files = fill(fs, 190)
    fs.checkpoint()
    assert fs.checkpointer.table.chunks
    states = [set(files)]  # the names after each step; a step is durable once its sync returned
    durable = [(0, 0)]
    recorder = Recorder(device)
    for i in range(0, 60, 20):  # each deletion dirties a group; the checkpoint rewrites it
        fs.unlink(fs.ROOT, f"f{i}")
        del files[f"f{i}"]
        states.append(set(files))
        fs.checkpoint()
        fs.sync()
        durable.append((len(recorder.commands), len(states) - 1))
    recorder.detach()
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=2, samples=2, seed=3):
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        must = max(n for point, n in durable if point <= crash.point)
        fs2 = mount(crashed)
        assert {e.name for e in fs2.readdir(fs2.ROOT)} in states[must:], crash
        checked += 1
    assert checked > 5
