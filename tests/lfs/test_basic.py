"""Operations, errnos and persistence across remounts of zcsdfs.lfs."""

import errno
import os
import stat

import pytest

from zcsdfs.lfs import Corrupted, NotZcsdfs, fsck, mkfs, mount
from zcsdfs.lfs.filesystem import XATTR_CREATE, XATTR_REPLACE
from zcsdfs.zns import Geometry, ZonedDevice

BS = 4096


@pytest.fixture
def device():
    d = ZonedDevice.memory("tiny")
    mkfs(d)
    return d


@pytest.fixture
def fs(device):
    return mount(device)


def remount(fs):
    fs.unmount()
    return mount(fs.device)


def names(fs, ino):
    return sorted(e.name for e in fs.readdir(ino))


def errno_of(fn, *args, **kwargs):
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    return info.value.errno


def assert_clean(device):
    report = fsck(device)
    assert report.clean, report.errors


# -- names ---------------------------------------------------------------------------------


def test_create_lookup_readdir(fs):
    a = fs.create(fs.ROOT, "a", 0o600, uid=7, gid=8)
    d = fs.mkdir(fs.ROOT, "d")
    assert fs.lookup(fs.ROOT, "a") == a
    assert fs.lookup(d, "..") == fs.ROOT
    assert fs.lookup(d, ".") == d
    assert names(fs, fs.ROOT) == ["a", "d"]
    st = fs.getattr(a)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid, st.st_nlink, st.st_size) == (7, 8, 1, 0)
    assert fs.getattr(fs.ROOT).st_nlink == 3
    assert fs.getattr(d).st_nlink == 2


def test_name_errors(fs):
    fs.create(fs.ROOT, "a")
    assert errno_of(fs.create, fs.ROOT, "a") == errno.EEXIST
    assert errno_of(fs.mkdir, fs.ROOT, "a") == errno.EEXIST
    assert errno_of(fs.create, fs.ROOT, ".") == errno.EEXIST
    assert errno_of(fs.lookup, fs.ROOT, "missing") == errno.ENOENT
    assert errno_of(fs.create, fs.ROOT, "x" * 256) == errno.ENAMETOOLONG
    assert errno_of(fs.create, fs.ROOT, "a/b") == errno.EINVAL
    assert errno_of(fs.create, fs.lookup(fs.ROOT, "a"), "b") == errno.ENOTDIR
    assert fs.lookup(fs.ROOT, "a")
    long_ok = fs.create(fs.ROOT, "é" * 127)  # 254 bytes
    assert fs.lookup(fs.ROOT, "é" * 127) == long_ok


def test_unlink_rmdir(fs):
    a = fs.create(fs.ROOT, "a")
    d = fs.mkdir(fs.ROOT, "d")
    fs.create(d, "inner")
    assert errno_of(fs.unlink, fs.ROOT, "d") == errno.EISDIR
    assert errno_of(fs.rmdir, fs.ROOT, "a") == errno.ENOTDIR
    assert errno_of(fs.rmdir, fs.ROOT, "d") == errno.ENOTEMPTY
    assert errno_of(fs.rmdir, d, ".") == errno.EINVAL
    fs.unlink(d, "inner")
    fs.rmdir(fs.ROOT, "d")
    fs.unlink(fs.ROOT, "a")
    assert names(fs, fs.ROOT) == []
    assert errno_of(fs.getattr, a) == errno.ENOENT
    assert fs.getattr(fs.ROOT).st_nlink == 2


def test_hard_links_and_symlinks(fs):
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"data")
    fs.link(a, fs.ROOT, "b")
    assert fs.getattr(a).st_nlink == 2
    fs.unlink(fs.ROOT, "a")
    assert fs.read(fs.lookup(fs.ROOT, "b"), 0, 10) == b"data"
    assert fs.getattr(a).st_nlink == 1
    assert errno_of(fs.link, fs.ROOT, fs.ROOT, "rootlink") == errno.EPERM
    s = fs.symlink(fs.ROOT, "s", "b/../target")
    assert fs.readlink(s) == "b/../target"
    assert fs.getattr(s).st_size == len("b/../target")
    assert stat.S_ISLNK(fs.getattr(s).st_mode)
    assert errno_of(fs.readlink, a) == errno.EINVAL
    assert errno_of(fs.symlink, fs.ROOT, "empty", "") == errno.ENOENT


def test_rename_rules(fs):
    a = fs.create(fs.ROOT, "a")
    b = fs.create(fs.ROOT, "b")
    d = fs.mkdir(fs.ROOT, "d")
    e = fs.mkdir(fs.ROOT, "e")
    fs.create(e, "full")
    assert errno_of(fs.rename, fs.ROOT, "a", fs.ROOT, "d") == errno.EISDIR
    assert errno_of(fs.rename, fs.ROOT, "d", fs.ROOT, "a") == errno.ENOTDIR
    assert errno_of(fs.rename, fs.ROOT, "d", fs.ROOT, "e") == errno.ENOTEMPTY
    assert errno_of(fs.rename, fs.ROOT, "d", d, "inside") == errno.EINVAL
    assert errno_of(fs.rename, fs.ROOT, "missing", fs.ROOT, "x") == errno.ENOENT
    fs.rename(fs.ROOT, "a", fs.ROOT, "b")  # replaces b, which is freed
    assert fs.lookup(fs.ROOT, "b") == a
    assert errno_of(fs.getattr, b) == errno.ENOENT
    fs.rename(fs.ROOT, "d", e, "moved")
    assert fs.lookup(e, "moved") == d and fs.lookup(d, "..") == e
    assert fs.getattr(fs.ROOT).st_nlink == 3  # root, e (d moved out)
    assert fs.getattr(e).st_nlink == 3
    empty = fs.mkdir(fs.ROOT, "empty")
    fs.rename(e, "moved", fs.ROOT, "empty")  # a directory over an empty directory
    assert fs.lookup(fs.ROOT, "empty") == d
    assert errno_of(fs.getattr, empty) == errno.ENOENT
    fs.link(a, fs.ROOT, "alias")
    fs.rename(fs.ROOT, "alias", fs.ROOT, "b")  # same inode: nothing happens
    assert names(fs, fs.ROOT) == ["alias", "b", "e", "empty"]
    assert_clean(fs.device)


# -- data ----------------------------------------------------------------------------------


def test_read_write_partial_blocks(fs):
    a = fs.create(fs.ROOT, "a")
    assert fs.write(a, 0, b"a" * 10000) == 10000
    assert fs.write(a, 4090, b"B" * 20) == 20
    expect = bytearray(b"a" * 10000)
    expect[4090:4110] = b"B" * 20
    assert fs.read(a, 0, 20000) == bytes(expect)
    assert fs.read(a, 4095, 3) == bytes(expect[4095:4098])
    assert fs.read(a, 10000, 5) == b""
    assert fs.getattr(a).st_size == 10000
    assert fs.getattr(a).st_blocks == 3 * BS // 512


def test_holes_and_sparse_files(fs):
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 5 * BS + 7, b"end")
    assert fs.getattr(a).st_size == 5 * BS + 10
    assert fs.read(a, 0, 5 * BS + 7) == bytes(5 * BS + 7)
    assert fs.read(a, 5 * BS + 7, 3) == b"end"
    assert fs.getattr(a).st_blocks == BS // 512


def test_truncate_down_then_up_reads_zeros(fs):
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"x" * 9000)
    fs.truncate(a, 5000)
    assert fs.getattr(a).st_size == 5000
    assert fs.getattr(a).st_blocks == 2 * BS // 512
    fs.truncate(a, 9000)
    assert fs.read(a, 0, 9000) == b"x" * 5000 + bytes(4000)
    fs.truncate(a, 100)
    fs.write(a, 200, b"y")  # writing past the end zeroes the gap
    assert fs.read(a, 0, 300) == b"x" * 100 + bytes(100) + b"y"
    fs.truncate(a, 0)
    assert fs.getattr(a).st_blocks == 0
    assert errno_of(fs.truncate, a, -1) == errno.EINVAL
    assert_clean(fs.device)


def test_data_errors(fs):
    d = fs.mkdir(fs.ROOT, "d")
    s = fs.symlink(fs.ROOT, "s", "d")
    assert errno_of(fs.read, d, 0, 1) == errno.EISDIR
    assert errno_of(fs.write, d, 0, b"x") == errno.EISDIR
    assert errno_of(fs.write, s, 0, b"x") == errno.EINVAL
    a = fs.create(fs.ROOT, "a")
    assert errno_of(fs.write, a, -1, b"x") == errno.EINVAL
    assert errno_of(fs.write, a, 1 << 60, b"x") == errno.EFBIG
    assert errno_of(fs.read, 999, 0, 1) == errno.ENOENT


def test_large_file_across_zones(fs):
    a = fs.create(fs.ROOT, "big")
    payload = os.urandom(200 * BS + 123)  # four zones' worth on the tiny geometry
    assert fs.write(a, 0, payload) == len(payload)
    assert fs.read(a, 0, len(payload)) == payload
    fs = remount(fs)
    assert fs.read(a, 0, len(payload)) == payload
    assert_clean(fs.device)


# -- attributes -----------------------------------------------------------------------------


def test_setattr_and_times(fs):
    a = fs.create(fs.ROOT, "a")
    before = fs.getattr(a)
    st = fs.setattr(a, mode=0o4711, uid=5, gid=6, atime_ns=123, mtime_ns=456)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o4711
    assert (st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns) == (5, 6, 123, 456)
    assert st.st_ctime_ns >= before.st_ctime_ns
    fs.write(a, 0, b"x")
    assert fs.getattr(a).st_mtime_ns > 456
    fs.setattr(a, size=10)
    assert fs.read(a, 0, 100) == b"x" + bytes(9)
    root_mtime = fs.getattr(fs.ROOT).st_mtime_ns
    fs.create(fs.ROOT, "b")
    assert fs.getattr(fs.ROOT).st_mtime_ns >= root_mtime


def test_xattrs(fs):
    a = fs.create(fs.ROOT, "a")
    fs.setxattr(a, "user.one", b"1")
    fs.setxattr(a, "trusted.two", b"")
    fs.setxattr(a, "security.selinux", b"ctx\0")
    assert sorted(fs.listxattr(a)) == ["security.selinux", "trusted.two", "user.one"]
    assert fs.getxattr(a, "trusted.two") == b""
    assert errno_of(fs.setxattr, a, "user.one", b"x", XATTR_CREATE) == errno.EEXIST
    assert errno_of(fs.setxattr, a, "user.new", b"x", XATTR_REPLACE) == errno.ENODATA
    fs.setxattr(a, "user.one", b"2", XATTR_REPLACE)
    assert fs.getxattr(a, "user.one") == b"2"
    assert errno_of(fs.getxattr, a, "user.none") == errno.ENODATA
    assert errno_of(fs.setxattr, a, "system.posix_acl_access", b"") == errno.EOPNOTSUPP
    assert errno_of(fs.setxattr, a, "user." + "n" * 251, b"") == errno.ERANGE
    assert errno_of(fs.setxattr, a, "user.big", bytes(65537)) == errno.E2BIG
    fs.removexattr(a, "user.one")
    assert errno_of(fs.removexattr, a, "user.one") == errno.ENODATA
    fs = remount(fs)
    assert sorted(fs.listxattr(a)) == ["security.selinux", "trusted.two"]
    assert fs.getxattr(a, "security.selinux") == b"ctx\0"


# -- open files and orphans -------------------------------------------------------------------


def test_unlinked_open_file_lives_until_release(fs):
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"still here")
    fs.hold(a)
    fs.unlink(fs.ROOT, "a")
    assert fs.read(a, 0, 100) == b"still here"
    assert fs.getattr(a).st_nlink == 0
    fs.release(a)
    assert errno_of(fs.getattr, a) == errno.ENOENT
    assert errno_of(fs.release, a) == errno.EINVAL


def test_orphan_freed_at_mount_after_crash(fs):
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"x" * 5000)
    fs.hold(a)
    fs.unlink(fs.ROOT, "a")
    fs.sync()
    report = fsck(fs.device)
    assert report.clean and any("orphan" in n for n in report.notes)
    again = mount(fs.device)  # the first mount never unmounted: a crash
    assert again.recovery.orphans == 1
    assert errno_of(again.getattr, a) == errno.ENOENT
    assert fsck(again.device).valid_blocks == 0


# -- persistence ------------------------------------------------------------------------------


def test_everything_survives_remount(fs):
    d = fs.mkdir(fs.ROOT, "dir", 0o700, uid=3, gid=4)
    a = fs.create(d, "file")
    fs.write(a, 100, b"payload")
    fs.link(a, fs.ROOT, "hard")
    fs.symlink(d, "sym", "/abs/target")
    fs.setxattr(d, "user.tag", b"t")
    fs.setattr(a, mtime_ns=42)
    before = {ino: fs.getattr(ino) for ino in (fs.ROOT, d, a)}
    fs = remount(fs)
    assert {ino: fs.getattr(ino) for ino in (fs.ROOT, d, a)} == before
    assert names(fs, d) == ["file", "sym"]
    assert fs.read(a, 0, 200) == bytes(100) + b"payload"
    assert fs.readlink(fs.lookup(d, "sym")) == "/abs/target"
    assert fs.getxattr(d, "user.tag") == b"t"
    assert fs.recovery.replayed == 0
    assert_clean(fs.device)


def test_fsync_then_crash_rolls_forward(fs):
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, b"synced")
    fs.fsync(a)
    again = mount(fs.device)
    assert again.recovery.replayed >= 1
    assert again.read(a, 0, 10) == b"synced"
    assert_clean(fs.device)


def test_many_files_and_checkpoints_in_both_zones(device):
    fs = mount(device)
    d = fs.mkdir(fs.ROOT, "d")
    zones = set()
    for i in range(300):
        ino = fs.create(d, f"f{i:04d}")
        if i % 10 == 0:
            fs.write(ino, 0, str(i).encode())
        if i % 4 == 0:  # a root takes a block or two: 75 of them fill a tiny checkpoint zone
            fs.checkpoint()
            zones.add(fs.checkpointer.zone)
    assert zones == {0, 1}
    fs = remount(fs)
    assert len(fs.readdir(d)) == 300
    assert fs.read(fs.lookup(d, "f0120"), 0, 10) == b"120"
    assert_clean(device)


def test_overwrites_reuse_space(fs):
    """A small file overwritten far more than the device holds: freed zones come back."""
    a = fs.create(fs.ROOT, "a")
    for i in range(600):
        fs.write(a, 0, bytes([i % 256]) * 2 * BS)
    assert fs.read(a, 0, 2 * BS) == bytes([599 % 256]) * 2 * BS
    fs = remount(fs)
    assert fs.read(a, 0, 2 * BS) == bytes([599 % 256]) * 2 * BS
    assert_clean(fs.device)


def test_statfs(fs):
    st = fs.statfs()
    a = fs.create(fs.ROOT, "a")
    fs.write(a, 0, bytes(3 * BS))
    after = fs.statfs()
    assert after.f_bfree == st.f_bfree - 3
    assert after.f_ffree == st.f_ffree - 1
    assert after.f_namemax == 255


# -- bad devices ------------------------------------------------------------------------------


def test_mount_refuses_unformatted_and_foreign():
    blank = ZonedDevice.memory("tiny")
    assert errno_of(mount, blank) == errno.EINVAL
    foreign = ZonedDevice.memory("tiny")
    foreign.append(0, b"NOTZ" + bytes(BS - 4))
    with pytest.raises(NotZcsdfs):
        mount(foreign)


def test_corrupt_superblock_is_euclean(device):
    sb = bytearray(device.read(0, 1))
    sb[40] ^= 0xFF
    damaged = ZonedDevice.memory("tiny")
    damaged.append(0, bytes(sb))
    with pytest.raises(Corrupted):
        mount(damaged)


def test_geometry_mismatch_refused(device):
    other = ZonedDevice.memory(Geometry.preset("tiny", zones=8))
    other.append(0, device.read(0, 1))
    assert errno_of(mount, other) == errno.EUCLEAN


def test_mkfs_refuses_tiny_devices():
    with pytest.raises(OSError) as info:
        mkfs(ZonedDevice.memory(Geometry(zones=3, zone_size=64, zone_capacity=64)))
    assert info.value.errno == errno.EINVAL


def test_unmounted_fs_refuses_operations(fs):
    fs.unmount()
    assert errno_of(fs.getattr, fs.ROOT) == errno.ESHUTDOWN
