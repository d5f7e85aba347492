"""mknod, rename flags, fallocate, SEEK_DATA/SEEK_HOLE and unlocked reads: errnos, persistence, crashes."""

import errno
import stat
import threading

import pytest

from tests.lfs.test_crash import fresh, snapshot
from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs.filesystem import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
)
from zcsdfs.lfs.reader import UNLOCKED_READ_BLOCKS
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.crash import Recorder, crash_states

BS = 4096
PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
FALLOC_FL_ZERO_RANGE = 0x10


@pytest.fixture
def fs():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    return mount(device)


def remount(fs):
    fs.unmount()
    assert fsck(fs.device).clean
    return mount(fs.device)


def crash_remount(fs):
    """Mount again without unmounting, after a sync: the log is replayed."""
    fs.sync()
    report = fsck(fs.device)
    assert report.clean, report.errors
    again = mount(fs.device)
    assert again.recovery.replayed > 0
    return again


def errno_of(fn, *args, **kwargs):
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    return info.value.errno


def pattern(blocks):
    return b"".join(bytes([i + 1]) * BS for i in range(blocks))


# -- mknod --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFREG])
@pytest.mark.parametrize("again", [remount, crash_remount], ids=["remount", "replay"])
def test_mknod_kinds_persist(fs, kind, again):
    ino = fs.mknod(fs.ROOT, "n", kind | 0o640, rdev=0x0801, uid=7, gid=8)
    keeps_rdev = kind in (stat.S_IFCHR, stat.S_IFBLK)

    def check(f):
        st = f.getattr(ino)
        assert (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size) == (kind | 0o640, 7, 8, 1, 0)
        assert st.st_rdev == (0x0801 if keeps_rdev else 0)
        assert [(e.name, e.ino, e.type) for e in f.readdir(f.ROOT)] == [("n", ino, kind)]
        assert f.lookup(f.ROOT, "n") == ino

    check(fs)
    check(again(fs))


def test_mknod_regular_is_like_create(fs):
    ino = fs.mknod(fs.ROOT, "r", 0o600)  # no file type: a regular file, as mknod(2)
    assert fs.getattr(ino).st_mode == stat.S_IFREG | 0o600
    assert fs.write(ino, 0, b"data") == 4
    assert fs.read(ino, 0, 10) == b"data"


def test_mknod_errors(fs):
    fs.create(fs.ROOT, "taken")
    assert errno_of(fs.mknod, fs.ROOT, "d", stat.S_IFDIR | 0o755) == errno.EPERM
    assert errno_of(fs.mknod, fs.ROOT, "l", stat.S_IFLNK | 0o777) == errno.EINVAL
    assert errno_of(fs.mknod, fs.ROOT, "w", 0o160000) == errno.EINVAL
    assert errno_of(fs.mknod, fs.ROOT, "taken", stat.S_IFIFO | 0o644) == errno.EEXIST
    assert errno_of(fs.mknod, fs.ROOT, "neg", stat.S_IFCHR | 0o644, -1) == errno.EINVAL
    fifo = fs.mknod(fs.ROOT, "p", stat.S_IFIFO | 0o644)
    assert errno_of(fs.mknod, fifo, "x", stat.S_IFIFO) == errno.ENOTDIR
    assert errno_of(fs.read, fifo, 0, 1) == errno.EINVAL
    assert errno_of(fs.write, fifo, 0, b"x") == errno.EINVAL


def test_device_nodes_in_snapshots_links_and_renames(fs):
    dev = fs.mknod(fs.ROOT, "sda", stat.S_IFBLK | 0o660, rdev=(8 << 8) | 1)
    fs.link(dev, fs.ROOT, "disk")
    fs.create_snapshot("s")
    fs.rename(fs.ROOT, "sda", fs.ROOT, "sdb")
    fs.setattr(dev, mode=0o600)
    assert fs.getattr(dev).st_rdev == (8 << 8) | 1  # attribute changes keep the device number
    fs.unlink(fs.ROOT, "disk")
    fs = remount(fs)
    snap = fs.snapshot("s")
    assert snap.getattr(snap.lookup(snap.ROOT, "sda")).st_rdev == (8 << 8) | 1
    st = fs.getattr(fs.lookup(fs.ROOT, "sdb"))
    assert (st.st_rdev, st.st_nlink, stat.S_IMODE(st.st_mode)) == ((8 << 8) | 1, 1, 0o600)
    fs.unlink(fs.ROOT, "sdb")
    assert errno_of(fs.getattr, dev) == errno.ENOENT
    fs.unmount()
    assert fsck(fs.device).clean


# -- rename flags -------------------------------------------------------------------------------


def test_rename_noreplace(fs):
    a = fs.create(fs.ROOT, "a")
    b = fs.create(fs.ROOT, "b")
    fs.link(a, fs.ROOT, "a2")
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "b", RENAME_NOREPLACE) == errno.EEXIST
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "a2", RENAME_NOREPLACE) == errno.EEXIST
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "a", RENAME_NOREPLACE) == errno.EEXIST
    assert errno_of(fs.rename, fs.ROOT, "zz", fs.ROOT, "c", RENAME_NOREPLACE) == errno.ENOENT
    fs.rename(fs.ROOT, "a", fs.ROOT, "c", RENAME_NOREPLACE)
    assert {e.name: e.ino for e in fs.readdir(fs.ROOT)} == {"b": b, "a2": a, "c": a}


def test_rename_flag_errors(fs):
    fs.create(fs.ROOT, "a")
    fs.create(fs.ROOT, "b")
    both = RENAME_NOREPLACE | RENAME_EXCHANGE
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "b", both) == errno.EINVAL
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "b", 8) == errno.EINVAL
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "missing", RENAME_EXCHANGE) == errno.ENOENT
    assert errno_of(fs.rename, fs.ROOT, "missing", fs.ROOT, "a", RENAME_EXCHANGE) == errno.ENOENT
    assert sorted(e.name for e in fs.readdir(fs.ROOT)) == ["a", "b"]


def test_rename_errnos_as_linux(fs):
    d = fs.mkdir(fs.ROOT, "d")
    fs.create(d, "g")
    sub = fs.mkdir(d, "sub")
    assert errno_of(fs.rename, d, ".", fs.ROOT, "x") == errno.EBUSY
    assert errno_of(fs.rename, fs.ROOT, "d", d, "..") == errno.EBUSY
    assert errno_of(fs.rename, d, "g", fs.ROOT, "d") == errno.ENOTEMPTY  # the target holds the source
    assert errno_of(fs.rename, sub, "..", fs.ROOT, "d", RENAME_EXCHANGE) == errno.EBUSY
    assert errno_of(fs.rename, d, "sub", fs.ROOT, "d", RENAME_EXCHANGE) == errno.EINVAL


def test_exchange_files_in_one_directory(fs):
    a, b = fs.create(fs.ROOT, "a"), fs.create(fs.ROOT, "b")
    fs.write(a, 0, b"AAA")
    fs.write(b, 0, b"BB")
    fs.rename(fs.ROOT, "a", fs.ROOT, "b", RENAME_EXCHANGE)

    def check(f):
        assert f.lookup(f.ROOT, "a") == b and f.lookup(f.ROOT, "b") == a
        assert f.read(f.lookup(f.ROOT, "a"), 0, 9) == b"BB"
        assert (f.getattr(a).st_nlink, f.getattr(b).st_nlink, f.getattr(f.ROOT).st_nlink) == (1, 1, 2)

    check(fs)
    check(crash_remount(fs))


def test_exchange_file_with_directory_across_parents(fs):
    p, q = fs.mkdir(fs.ROOT, "p"), fs.mkdir(fs.ROOT, "q")
    f = fs.create(p, "f")
    d = fs.mkdir(q, "d")
    fs.create(d, "inside")
    fs.rename(p, "f", q, "d", RENAME_EXCHANGE)

    def check(v):
        assert v.lookup(p, "f") == d and v.lookup(q, "d") == f
        assert v.lookup(d, "..") == p
        assert (v.getattr(p).st_nlink, v.getattr(q).st_nlink) == (3, 2)
        assert [e.name for e in v.readdir(d)] == ["inside"]

    check(fs)
    fs = remount(fs)
    check(fs)
    assert errno_of(fs.rmdir, q, "d") == errno.ENOTDIR
    fs.unmount()
    report = fsck(fs.device)
    assert report.clean, report.errors


def test_exchange_directories_across_parents(fs):
    p, q = fs.mkdir(fs.ROOT, "p"), fs.mkdir(fs.ROOT, "q")
    x, y = fs.mkdir(p, "x"), fs.mkdir(q, "y")
    fs.mkdir(x, "deeper")
    fs.rename(p, "x", q, "y", RENAME_EXCHANGE)
    fs = crash_remount(fs)
    assert (fs.lookup(p, "x"), fs.lookup(q, "y")) == (y, x)
    assert (fs.lookup(x, ".."), fs.lookup(y, "..")) == (q, p)
    assert [fs.getattr(i).st_nlink for i in (p, q, x, y)] == [3, 3, 3, 2]
    fs.unmount()
    assert fsck(fs.device).clean


def test_exchange_refuses_a_directory_with_its_descendant(fs):
    a = fs.mkdir(fs.ROOT, "a")
    sub = fs.mkdir(a, "sub")
    fs.create(sub, "f")
    assert errno_of(fs.rename, fs.ROOT, "a", sub, "f", RENAME_EXCHANGE) == errno.EINVAL
    assert errno_of(fs.rename, sub, "f", fs.ROOT, "a", RENAME_EXCHANGE) == errno.EINVAL
    assert fs.lookup(fs.ROOT, "a") == a and fs.lookup(a, "sub") == sub


def test_exchange_hard_links_of_one_inode_changes_nothing(fs):
    a = fs.create(fs.ROOT, "a")
    fs.link(a, fs.ROOT, "b")
    fs.rename(fs.ROOT, "a", fs.ROOT, "b", RENAME_EXCHANGE)
    assert fs.lookup(fs.ROOT, "a") == fs.lookup(fs.ROOT, "b") == a
    assert fs.getattr(a).st_nlink == 2


def check_crashes(device, fs, steps):
    """Run ``steps`` (an operation on ``fs``, then whether to fsync its directory) while recording.

    Every crash state must pass fsck and show the state after some prefix of
    the operations that includes every operation made durable: an operation
    is all there or not at all. Returns how many crash states were checked.
    """
    recorder = Recorder(device)
    states, durable_at = [snapshot(fs)], [(0, 0)]
    for operation, durable in steps:
        operation(fs)
        states.append(snapshot(fs))
        if durable:
            fs.fsync(fs.ROOT)
            durable_at.append((len(recorder.commands), len(states) - 1))
    recorder.detach()
    assert len({str(s) for s in states}) == len(states)  # every operation changed what is visible
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=16, samples=3, seed=len(steps)):
        must = max(n for point, n in durable_at if point <= crash.point)
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        recovered = snapshot(mount(crashed))
        assert any(recovered == s for s in states[must:]), f"crash {crash}: an operation half done"
        checked += 1
    return checked


def test_exchange_is_atomic_across_crashes():
    """Every crash state shows both entries swapped or neither: never one name twice or missing."""
    device, fs = fresh()  # A (file), B (file), D (empty directory), all durable
    e = fs.mkdir(fs.ROOT, "E")
    fs.write(fs.create(e, "f"), 0, b"eff")
    fs.sync()
    root = fs.ROOT
    steps = [(lambda f: f.rename(root, "A", root, "B", RENAME_EXCHANGE), False),
             (lambda f: f.rename(root, "D", e, "f", RENAME_EXCHANGE), True),
             (lambda f: f.rename(root, "A", root, "E", RENAME_EXCHANGE), False),
             (lambda f: f.rename(e, "f", root, "B", RENAME_EXCHANGE), True)]
    assert check_crashes(device, fs, steps) > len(steps)


def test_punch_and_fallocate_are_atomic_across_crashes():
    """A punch with two partial edges is one unit: after a crash both edges are zeroed or neither."""
    device, fs = fresh()
    a = fs.lookup(fs.ROOT, "A")  # 9000 bytes
    steps = [(lambda f: f.fallocate(a, 100, 2 * BS, PUNCH), False),
             (lambda f: f.fallocate(a, 5000, 8 * BS), True),
             (lambda f: f.write(a, 0, b"z" * 5 * BS), False),
             (lambda f: f.fallocate(a, 3000, 6000, PUNCH), False),
             (lambda f: f.fallocate(a, 0, 8 * BS, PUNCH), True)]
    assert check_crashes(device, fs, steps) > len(steps)


# -- fallocate ----------------------------------------------------------------------------------


def test_fallocate_extends_like_truncate(fs):
    ino = fs.create(fs.ROOT, "f")
    fs.write(ino, 0, b"x" * 100)
    blocks = fs.getattr(ino).st_blocks
    fs.fallocate(ino, 50, 3 * BS)
    st = fs.getattr(ino)
    assert (st.st_size, st.st_blocks) == (50 + 3 * BS, blocks)  # space is checked, not written
    assert fs.read(ino, 0, 4 * BS) == b"x" * 100 + bytes(3 * BS - 50)
    fs.fallocate(ino, 0, 10)  # inside the file: the size stays
    assert fs.getattr(ino).st_size == 50 + 3 * BS
    fs = crash_remount(fs)
    assert fs.getattr(ino).st_size == 50 + 3 * BS
    assert fs.read(ino, 0, 4 * BS) == b"x" * 100 + bytes(3 * BS - 50)


def test_fallocate_zeroes_stale_tail_bytes(fs):
    """Bytes past a truncated end must not come back when fallocate grows the file."""
    ino = fs.create(fs.ROOT, "f")
    fs.write(ino, 0, b"y" * BS)
    fs.truncate(ino, 10)
    fs.fallocate(ino, 0, 2 * BS)
    assert fs.read(ino, 0, 2 * BS) == b"y" * 10 + bytes(2 * BS - 10)


def test_fallocate_keep_size(fs):
    ino = fs.create(fs.ROOT, "f")
    fs.write(ino, 0, b"z" * 10)
    fs.fallocate(ino, 0, 8 * BS, FALLOC_FL_KEEP_SIZE)
    assert fs.getattr(ino).st_size == 10
    assert fs.read(ino, 0, 100) == b"z" * 10


def test_fallocate_without_space_is_enospc(fs):
    ino = fs.create(fs.ROOT, "f")
    free = fs.statfs().f_bfree
    fs.fallocate(ino, 0, free * BS, FALLOC_FL_KEEP_SIZE)
    assert errno_of(fs.fallocate, ino, 0, (free + 1) * BS) == errno.ENOSPC
    assert fs.getattr(ino).st_size == 0
    fs.write(ino, 0, pattern(4))
    free = fs.statfs().f_bfree
    fs.fallocate(ino, 0, (free + 4) * BS)  # its 4 mapped blocks need no new space
    assert fs.getattr(ino).st_size == (free + 4) * BS
    assert errno_of(fs.fallocate, ino, 0, (free + 5) * BS) == errno.ENOSPC


def test_fallocate_errors(fs):
    ino = fs.create(fs.ROOT, "f")
    d = fs.mkdir(fs.ROOT, "d")
    fifo = fs.mknod(fs.ROOT, "p", stat.S_IFIFO | 0o644)
    chr_ = fs.mknod(fs.ROOT, "c", stat.S_IFCHR | 0o644, 5)
    link = fs.symlink(fs.ROOT, "l", "f")
    assert errno_of(fs.fallocate, ino, -1, 10) == errno.EINVAL
    assert errno_of(fs.fallocate, ino, 0, 0) == errno.EINVAL
    assert errno_of(fs.fallocate, ino, 0, 10, FALLOC_FL_PUNCH_HOLE) == errno.EOPNOTSUPP
    assert errno_of(fs.fallocate, ino, 0, 10, FALLOC_FL_ZERO_RANGE) == errno.EOPNOTSUPP
    assert errno_of(fs.fallocate, ino, 0, 10, 0x100) == errno.EOPNOTSUPP
    assert errno_of(fs.fallocate, d, 0, 10) == errno.EISDIR
    assert errno_of(fs.fallocate, fifo, 0, 10) == errno.ESPIPE
    assert errno_of(fs.fallocate, chr_, 0, 10) == errno.ENODEV
    assert errno_of(fs.fallocate, link, 0, 10) == errno.ENODEV
    assert errno_of(fs.fallocate, ino, 1 << 46, 1) == errno.EFBIG
    assert errno_of(fs.fallocate, 999, 0, 1) == errno.ENOENT
    assert fs.getattr(ino).st_size == 0


# -- hole punching ------------------------------------------------------------------------------


def test_punch_unmaps_whole_blocks_and_zeroes_edges(fs):
    ino = fs.create(fs.ROOT, "f")
    data = bytearray(pattern(8))
    fs.write(ino, 0, data)
    fs.sync()  # out of the write buffer, so the valid-block counts include the blocks
    valid_before = sum(fs.ns.valid)
    free_before = fs.statfs().f_bfree
    fs.fallocate(ino, BS + 100, 4 * BS, PUNCH)  # zeroes 100.. of block 1, blocks 2-4, ..100 of block 5
    data[BS + 100:5 * BS + 100] = bytes(4 * BS)
    st = fs.getattr(ino)
    assert st.st_size == 8 * BS
    assert st.st_blocks == 5 * BS // 512  # blocks 2, 3, 4 unmapped
    assert sum(fs.ns.valid) == valid_before - 3
    assert fs.statfs().f_bfree == free_before + 3
    assert fs.read(ino, 0, 9 * BS) == data
    for again in (crash_remount, remount):
        fs = again(fs)
        assert fs.read(ino, 0, 9 * BS) == data
        assert fs.getattr(ino).st_blocks == 5 * BS // 512


def test_punch_within_one_block_and_at_the_end(fs):
    ino = fs.create(fs.ROOT, "f")
    data = bytearray(pattern(3)[:2 * BS + 500])
    fs.write(ino, 0, data)
    fs.fallocate(ino, 10, 20, PUNCH)
    data[10:30] = bytes(20)
    assert fs.read(ino, 0, 3 * BS) == data
    assert fs.getattr(ino).st_blocks == 3 * BS // 512
    fs.fallocate(ino, 2 * BS, 10 * BS, PUNCH)  # the last, partial block: beyond the size reads zero anyway
    data[2 * BS:] = bytes(500)
    assert fs.read(ino, 0, 3 * BS) == data
    assert fs.getattr(ino).st_blocks == 2 * BS // 512
    fs.fallocate(ino, 50 * BS, BS, PUNCH)  # past the end of file: nothing happens
    fs.fallocate(ino, 0, BS, PUNCH)
    data[:BS] = bytes(BS)
    assert fs.read(ino, 0, 3 * BS) == data
    assert fs.getattr(ino).st_size == 2 * BS + 500
    fs.truncate(ino, 4 * BS)  # growing reads zeros past the old end, not stale bytes
    assert fs.read(ino, 0, 5 * BS) == data + bytes(4 * BS - len(data))
    fs = remount(fs)
    assert fs.read(ino, 0, 5 * BS) == data + bytes(4 * BS - len(data))


def test_punch_a_hole_leaves_snapshots_alone(fs):
    ino = fs.create(fs.ROOT, "f")
    fs.write(ino, 0, pattern(6))
    fs.create_snapshot("before")
    fs.fallocate(ino, 0, 6 * BS, PUNCH)
    assert fs.read(ino, 0, 6 * BS) == bytes(6 * BS)
    assert fs.getattr(ino).st_blocks == 0
    snap = fs.snapshot("before")
    assert snap.read(ino, 0, 6 * BS) == pattern(6)
    fs = remount(fs)
    assert fs.snapshot("before").read(ino, 0, 6 * BS) == pattern(6)
    fs.delete_snapshot("before")
    fs.unmount()
    report = fsck(fs.device)
    assert report.clean and report.valid_blocks == 0, report.errors


# -- SEEK_DATA / SEEK_HOLE ----------------------------------------------------------------------


def test_seek_data_and_hole(fs):
    ino = fs.create(fs.ROOT, "f")
    fs.write(ino, 2 * BS, b"a" * BS)  # data in block 2
    fs.write(ino, 5 * BS, b"b" * 10)  # data in block 5, size 5 * BS + 10
    size = 5 * BS + 10
    assert fs.seek_data(ino, 0) == 2 * BS
    assert fs.seek_data(ino, 2 * BS + 7) == 2 * BS + 7
    assert fs.seek_data(ino, 3 * BS) == 5 * BS
    assert fs.seek_data(ino, size - 1) == size - 1
    assert fs.seek_hole(ino, 0) == 0
    assert fs.seek_hole(ino, 2 * BS + 1) == 3 * BS
    assert fs.seek_hole(ino, 5 * BS) == size  # the end of file is a hole
    for off in (size, size + 1, -1):
        assert errno_of(fs.seek_data, ino, off) == errno.ENXIO
        assert errno_of(fs.seek_hole, ino, off) == errno.ENXIO
    fs.truncate(ino, 8 * BS)
    assert errno_of(fs.seek_data, ino, 6 * BS) == errno.ENXIO  # only a hole after
    assert fs.seek_hole(ino, 6 * BS) == 6 * BS
    assert errno_of(fs.seek_hole, fs.ROOT, 0) == errno.EISDIR
    fs.create_snapshot("s")
    fs.fallocate(ino, 2 * BS, BS, PUNCH)
    assert fs.seek_data(ino, 0) == 5 * BS
    assert fs.snapshot("s").seek_data(ino, 0) == 2 * BS


# -- reads outside the lock ---------------------------------------------------------------------


def test_read_copies_without_the_lock_and_its_zones_stay(fs, monkeypatch):
    """While a read copies, other threads take the lock, overwrite the file, GC and checkpoint;
    the read still returns the bytes it planned, because the zones it reads are pinned."""
    g = fs.device.geometry
    ino = fs.create(fs.ROOT, "f")
    assert g.zone_capacity > UNLOCKED_READ_BLOCKS
    old = pattern(g.zone_capacity)
    fs.write(ino, 0, old)
    zone = fs.ns.inodes[ino].extents.lookup(0) // g.zone_size
    fs.write(fs.create(fs.ROOT, "filler"), 0, pattern(g.zone_capacity))
    assert fs.writer.role[zone].name == "SEALED"
    device = fs.device
    real_read_into = device.read_into
    seen = {}

    def meddle():
        seen["lock free"] = fs._lock.acquire(blocking=False)
        if seen["lock free"]:
            try:
                fs.write(ino, 0, b"\xee" * len(old))  # every block of the zone is garbage now
                seen["valid"] = fs.ns.valid[zone]
                fs.gc(zones=len(fs.writer.log_zones))
                fs.checkpoint()
                seen["role"] = fs.writer.role[zone].name
            finally:
                fs._lock.release()

    def read_into(lba, buffer):
        if not seen:
            helper = threading.Thread(target=meddle)
            helper.start()
            helper.join()
        real_read_into(lba, buffer)

    monkeypatch.setattr(device, "read_into", read_into)
    assert fs.read(ino, 0, len(old)) == old
    monkeypatch.undo()
    assert seen == {"lock free": True, "valid": 0, "role": "SEALED"}
    assert not any(fs.viewed)
    fs.checkpoint()  # unpinned: now the zone goes
    assert fs.writer.role[zone].name == "FREE"
    assert fs.read(ino, 0, len(old)) == b"\xee" * len(old)


def test_concurrent_readers_and_writers_on_different_files(fs):
    blocks = UNLOCKED_READ_BLOCKS + 8  # large enough to copy outside the lock
    files = {fs.create(fs.ROOT, f"f{i}"): bytes([i + 1]) * (blocks * BS) for i in range(4)}
    for ino, data in files.items():
        fs.write(ino, 0, data)
    errors = []

    def reader(ino, data):
        for _ in range(30):
            if fs.read(ino, 0, len(data)) != data:
                errors.append(ino)

    def writer(ino, rounds):
        for r in range(rounds):
            fs.write(ino, (r % 5) * BS, bytes([r % 250 + 1]) * BS)

    written = fs.create(fs.ROOT, "w")
    threads = [threading.Thread(target=reader, args=item) for item in files.items()]
    threads.append(threading.Thread(target=writer, args=(written, 200)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fs.read(written, 0, 5 * BS) == b"".join(bytes([r % 250 + 1]) * BS for r in range(195, 200))
    assert not any(fs.viewed)
    fs.unmount()
    assert fsck(fs.device).clean
