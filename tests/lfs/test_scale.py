"""Checkpoints larger than a zone: body chunks in the log, a small root, incremental rewrites.

Most tests use the ``tiny`` geometry (48-block zones), where a volume of a
couple of thousand files already has a metadata image bigger than a zone.
"""

import errno

import pytest

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs.checkpoint import CHUNK_BLOCKS
from zcsdfs.lfs.errors import Corrupted
from zcsdfs.lfs.format import CHECKPOINT_MAGIC, parse_header
from zcsdfs.lfs.gc import collect
from zcsdfs.lfs.log import Role
from zcsdfs.lfs.namespace import GROUP_BITS
from zcsdfs.lfs.scan import Walk, written_end
from zcsdfs.zns import Geometry, ZonedDevice
from zcsdfs.zns.crash import Recorder, crash_states

from tests.lfs.test_corruption import clone

BS = 4096
FILES = 1500
NAME = "a-long-name-so-that-the-metadata-image-outgrows-one-tiny-zone-{:05d}"


def build(device, files=FILES):
    """Two directories of ``files`` files in all; every 25th holds data, every 100th an xattr; one symlink."""
    mkfs(device)
    fs = mount(device)
    dirs = [fs.mkdir(fs.ROOT, "left"), fs.mkdir(fs.ROOT, "right")]
    for i in range(files):
        ino = fs.create(dirs[i % 2], NAME.format(i))
        if i % 25 == 0:
            fs.write(ino, 0, f"file {i}\n".encode() * 20)
        if i % 100 == 0:
            fs.setxattr(ino, "user.n", str(i).encode())
    fs.symlink(fs.ROOT, "link", "left")
    return fs


def observe(fs):
    """Names, types, sizes, xattrs and contents of every file (without times)."""
    out = {}
    stack = [("", fs.ROOT)]
    while stack:
        path, ino = stack.pop()
        for e in fs.readdir(ino):
            st = fs.getattr(e.ino)
            p = f"{path}/{e.name}"
            body = fs.read(e.ino, 0, st.st_size) if e.type == 0o100000 and st.st_size else None
            xattrs = tuple((n, fs.getxattr(e.ino, n)) for n in sorted(fs.listxattr(e.ino)))
            out[p] = (e.ino, st.st_mode, st.st_nlink, st.st_size, body, xattrs)
            if e.type == 0o040000:
                stack.append((p, e.ino))
    return out


def chunks_of(ns):
    return [c for group in sorted(ns.chunks) for c in ns.chunks[group]]


def root_frames(fs):
    device = fs.device
    zone = fs.checkpointer.zone
    return list(Walk(device, fs.sb.uuid, CHECKPOINT_MAGIC, device.zone(zone).start + 1, written_end(device, zone)))


@pytest.fixture(scope="module")
def built():
    """A tiny device holding the volume, unmounted cleanly, and what it should read back as."""
    device = ZonedDevice.memory("tiny")
    fs = build(device)
    expected = observe(fs)
    fs.unmount()
    return device, expected


def test_image_larger_than_a_zone_round_trips(built):
    device, expected = built
    fs = mount(clone(device))
    capacity = device.geometry.zone_capacity
    body = sum(c.blocks for c in chunks_of(fs.ns))
    assert body > capacity  # the image would not fit in a checkpoint zone
    _, root = root_frames(fs)[-1]
    assert root.blocks <= 2  # the root only lists zones and chunks
    assert observe(fs) == expected
    assert fsck(fs.device).clean


def test_a_clean_mount_writes_only_a_root(built):
    device, _ = built
    copy = clone(device)
    before = chunks_of(mount(copy).ns)
    fs = mount(copy)
    assert fs.writer.blocks_written == 0  # no chunk rewritten, no unit logged
    assert chunks_of(fs.ns) == before


def test_a_checkpoint_rewrites_only_changed_groups(built):
    device, expected = built
    fs = mount(clone(device))
    far = fs.lookup(fs.lookup(fs.ROOT, "left"), NAME.format(FILES - 2))  # in the last group, far from the directories
    before = dict(fs.ns.chunks)
    fs.setattr(far, mode=0o600)
    fs.checkpoint()
    changed = {g for g in fs.ns.chunks if fs.ns.chunks[g] != before.get(g)}
    assert changed == {far >> GROUP_BITS}
    assert fs.writer.blocks_written <= 2 * CHUNK_BLOCKS
    again = mount(fs.device)
    assert again.getattr(far).st_mode & 0o777 == 0o600
    assert fsck(again.device).clean


def test_snapshot_of_a_large_volume(built):
    device, expected = built
    fs = mount(clone(device))
    written = fs.writer.blocks_written
    fs.create_snapshot("before")
    assert fs.writer.blocks_written == written  # nothing changed since the mount: it shares every chunk
    assert fs.snapshot("before").ns.chunks == fs.ns.chunks
    left = fs.lookup(fs.ROOT, "left")
    for i in range(0, 200, 2):
        fs.unlink(left, NAME.format(i))
    fs.unmount()
    fs = mount(fs.device)
    assert len(fs.readdir(left)) == FILES // 2 - 100
    snap = fs.snapshot("before")
    assert len(snap.readdir(snap.lookup(fs.ROOT, "left"))) == FILES // 2
    assert fsck(fs.device).clean


def test_gc_moves_body_chunks():
    """Overwrites on a nearly full device with a large image: GC cleans zones that hold chunks too."""
    device = ZonedDevice.memory("tiny")
    fs = build(device, files=1200)
    expected = observe(fs)
    data = fs.create(fs.ROOT, "data")
    blocks = fs.statfs().f_bfree // 2
    fs.write(data, 0, bytes(blocks * BS))
    chunk_zones = {c.lba // device.geometry.zone_size for c in chunks_of(fs.ns)}
    for turn in range(4 * blocks):
        fs.write(data, (turn * 7 % blocks) * BS, bytes([turn % 251 + 1]) * BS)
    assert fs.gc_blocks_moved > 0
    now = {c.lba // device.geometry.zone_size for c in chunks_of(fs.ns)}
    assert now != chunk_zones  # some chunks were rewritten elsewhere
    report = fsck(device)
    assert report.clean, report.errors
    fs = mount(device)
    got = observe(fs)
    del got["/data"]
    assert got == expected


@pytest.mark.parametrize("geometry", [
    "qemu",
    "zn540",
    Geometry(zones=12, zone_size=32, zone_capacity=20, block_size=BS, max_open=3, max_active=3),
])
def test_chunked_images_on_other_geometries(geometry, tmp_path):
    device = ZonedDevice.create(tmp_path / "image", geometry)  # sparse: only what is written takes space
    fs = build(device, files=600)
    expected = observe(fs)
    fs.unmount()
    assert fs.ns.chunks  # past the inline limit: the image is in the log
    device.close_device()
    device = ZonedDevice.open(tmp_path / "image")
    fs = mount(device)
    assert observe(fs) == expected
    assert fsck(device).clean
    device.close_device()


def test_crash_states_around_a_large_checkpoint():
    device = ZonedDevice.memory("tiny")
    fs = build(device, files=1200)
    fs.sync()
    left = fs.lookup(fs.ROOT, "left")
    states = [observe(fs)]
    durable = [(0, 0)]
    recorder = Recorder(device)
    for i in range(0, 1200, 300):  # touch groups all over the image
        fs.rename(left, NAME.format(i), fs.ROOT, f"moved-{i}")
        states.append(observe(fs))
    fs.checkpoint()
    durable.append((len(recorder.commands), len(states) - 1))
    fs.write(fs.lookup(fs.ROOT, "moved-300"), 0, b"after the checkpoint")
    states.append(observe(fs))
    fs.sync()
    durable.append((len(recorder.commands), len(states) - 1))
    recorder.detach()
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=4, samples=2, seed=1):
        must = max(n for point, n in durable if point <= crash.point)
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        assert observe(mount(crashed)) in states[must:], crash
        checked += 1
    assert checked > 10


def test_crash_states_while_gc_moves_chunks():
    """GC cleaning a zone of live chunks: the chunks move, the zone is reset, every crash state is whole."""
    device = ZonedDevice.memory("tiny")
    fs = build(device, files=700)
    w, body = fs.writer, lambda z: fs.checkpointer.body[z]
    while not any(w.role[z] is Role.SEALED and body(z) for z in w.log_zones):
        for group in sorted(fs.ns.chunks):  # rewrite every group until a sealed zone holds live chunks
            ino = next(i for i in range(group << GROUP_BITS, (group + 1) << GROUP_BITS) if i in fs.ns.inodes)
            fs.setattr(ino, mode=0o600)
        fs.checkpoint()
    victim = next(z for z in w.log_zones if w.role[z] is Role.SEALED and body(z))
    fs.sync()
    expected = observe(fs)
    recorder = Recorder(device)
    collect(fs, victim)
    fs.checkpoint()
    recorder.detach()
    assert w.role[victim] is Role.FREE and body(victim) == 0
    assert [c.name for c in recorder.commands][-1] == "reset"
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=8, samples=2, seed=2):
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        assert observe(mount(crashed)) == expected
        checked += 1
    assert checked >= len(recorder.commands)


def _flip(device, lba):
    return clone(device, lba, 200)


def test_fallback_passes_over_roots_whose_zones_were_reused():
    """Damaged newer roots must not lead mount to an older one whose blocks were reset and rewritten since."""
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"old" * BS)
    fs.write(fs.create(fs.ROOT, "b"), 0, bytes(60 * BS))  # fills a's zone
    fs.checkpoint()
    stale, known = fs.checkpointer.generation, fs.writer.next_seq
    zone = fs.ns.inodes[a].extents.lookup(0) // device.geometry.zone_size
    fs.unlink(fs.ROOT, "b")
    written = {b"old" * BS}

    def reused():
        first = parse_header(device.read(device.zone(zone).start, 1))
        return first is None or first.seq >= known  # the zone no longer holds what the stale root mapped

    for i in range(200):  # a moves on; its old zone is freed, reset and used again
        written.add(bytes([i % 256]) * 12 * BS)
        fs.write(a, 0, bytes([i % 256]) * 12 * BS)
        fs.sync()
        if reused():
            break
    assert reused()
    damaged = device
    for z in (0, 1):
        start = device.zone(z).start
        for lba, header in Walk(device, fs.sb.uuid, CHECKPOINT_MAGIC, start + 1, written_end(device, z)):
            if header.seq > stale:
                damaged = clone(damaged, lba, 100)
    again = mount(damaged)
    assert any(f"checkpoint {stale} " in m and "stale" in m for m in again.recovery.messages)
    assert again.recovery.checkpoint < stale
    names = {e.name for e in again.readdir(again.ROOT)}  # an older state, never another file's blocks:
    assert "a" not in names or again.read(again.lookup(again.ROOT, "a"), 0, 12 * BS) in written
    report = fsck(damaged)
    assert any("stale" in e for e in report.errors) and report.exit_code == 4


def test_corrupt_chunk_of_the_latest_checkpoint_falls_back(built):
    device, expected = built
    fs = mount(clone(device))
    body = fs.checkpointer.body
    zone_size = device.geometry.zone_size
    # A group whose chunk shares its zone with other live chunks: that zone stays after the next checkpoint.
    group = next(g for g, cs in sorted(fs.ns.chunks.items())
                 if all(body[c.lba // zone_size] > c.blocks for c in cs) and g)
    ino = next(i for i in range(group << GROUP_BITS, (group + 1) << GROUP_BITS) if i in fs.ns.inodes)
    fs.setattr(ino, mode=0o640)
    fs.checkpoint()
    latest = fs.checkpointer.generation
    fresh = fs.ns.chunks[group][0]
    damaged = _flip(fs.device, fresh.lba)
    again = mount(damaged)
    assert again.recovery.checkpoint < latest
    assert any("body chunk" in m and "CRC32C" in m for m in again.recovery.messages)
    assert again.getattr(ino).st_mode & 0o777 in (0o644, 0o640)
    assert observe(again).keys() == expected.keys()


def test_corrupt_chunk_every_checkpoint_names_refuses(built):
    device, _ = built
    fs = mount(clone(device))
    for _ in range(2 * device.geometry.zone_capacity):  # both checkpoint zones hold only roots naming it
        fs.checkpoint()
    shared = chunks_of(fs.ns)[-1]
    damaged = _flip(fs.device, shared.lba)
    with pytest.raises(Corrupted) as info:
        mount(damaged)
    assert info.value.errno == errno.EUCLEAN
    assert "body chunk" in str(info.value) and "CRC32C" in str(info.value)
    report = fsck(damaged)
    assert not report.clean and "body chunk" in report.errors[0]
