"""Descriptor operations: close, closerange, dup, dup2, fsync, fdatasync, posix_fallocate,
posix_fadvise, fstatvfs/statvfs, sendfile, copy_file_range, sync."""

import errno
import os

import pytest

from tests.api.conftest import ANY
from tests.api.tree import HELLO, get, tree


def ro(osx, path="f"):
    return osx.open(path, osx.O_RDONLY)


def closed(osx):
    fd = ro(osx)
    osx.close(fd)
    return fd


def test_close_twice(both):
    both.run(lambda osx: osx.close(closed(osx)), setup=tree, fails=errno.EBADF)


@pytest.mark.parametrize("fd", [-1, -100])
def test_close_negative(both, fd):
    both.run(lambda osx: osx.close(fd), fails=errno.EBADF)


def test_closerange_closes_each_in_range(both):
    def body(osx):
        a, b, c = ro(osx), ro(osx), ro(osx)
        osx.closerange(a, a + 1)
        osx.closerange(b, b + 1)
        osx.closerange(c, c)
        out = []
        for fd in (a, b):
            try:
                osx.fstat(fd)
            except OSError as e:
                out.append(e.errno)
        return out, osx.read(c, 5)
    assert both.run(body, setup=tree) == ([errno.EBADF, errno.EBADF], b"hello")


def test_dup_returns_new_descriptor(both):
    def body(osx):
        a = ro(osx)
        b = osx.dup(a)
        osx.close(a)
        return b, int(b) != int(a), osx.read(b, 5), osx.get_inheritable(b)
    assert both.run(body, setup=tree)[1:] == (True, b"hello", False)


def test_dup_closed(both):
    both.run(lambda osx: osx.dup(closed(osx)), setup=tree, fails=errno.EBADF)


def test_dup2_replaces_target(both):
    def body(osx):
        a = ro(osx, "f")
        b = ro(osx, "d/g")
        r = osx.dup2(a, b)
        osx.read(a, 6)
        return int(r) == int(b), osx.read(b, 100), osx.get_inheritable(b)
    assert both.run(body, setup=tree) == (True, b"world\n", True)


def test_dup2_onto_closed_number(both):
    def body(osx):
        a = ro(osx)
        b = closed(osx)
        osx.dup2(a, b, inheritable=False)
        return osx.read(b, 5), osx.get_inheritable(b)
    assert both.run(body, setup=tree) == (b"hello", False)


def test_dup2_to_itself(both):
    def body(osx):
        a = ro(osx)
        return int(osx.dup2(a, a)) == int(a), osx.read(a, 5)
    assert both.run(body, setup=tree) == (True, b"hello")


def test_dup2_closed_source(both):
    def body(osx):
        b = ro(osx)
        osx.dup2(closed(osx), b)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_dup_keeps_open_after_original_closed_and_shares_append(both):
    def body(osx):
        a = osx.open("f", osx.O_WRONLY | osx.O_APPEND)
        b = osx.dup(a)
        osx.close(a)
        osx.write(b, b"!")
        return get(osx, "f")
    assert both.run(body, setup=tree) == HELLO + b"!"


@pytest.mark.parametrize("call", ["fsync", "fdatasync"])
@pytest.mark.parametrize("path", ["f", "d"])
def test_sync_calls(both, call, path):
    def body(osx):
        fd = ro(osx, path)
        return getattr(osx, call)(fd), osx.stat(path)
    both.run(body, setup=tree)


@pytest.mark.parametrize("call", ["fsync", "fdatasync"])
def test_sync_calls_closed(both, call):
    both.run(lambda osx: getattr(osx, call)(closed(osx)), setup=tree, fails=errno.EBADF)


def test_fsync_accepts_file_object_with_fileno(both):
    def body(osx):
        with osx.fdopen(osx.open("f", osx.O_RDWR), "rb+") as f:
            f.write(b"H")
            f.flush()
            osx.fsync(f)
        return get(osx, "f")
    assert both.run(body, setup=tree) == b"Hello world\n"


def test_sync(both):
    assert both.run(lambda osx: osx.sync(), setup=tree) is None


@pytest.mark.parametrize("offset,length", [(0, 10000), (0, 5), (100, 1), (4096, 8192), (20, 0),
                                           (-1, 10), (0, -1)])
def test_posix_fallocate(both, offset, length):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.posix_fallocate(fd, offset, length)
        content = get(osx, "f")
        return osx.fstat(fd).st_size, content[:12], content[12:].count(0) == len(content) - 12
    both.run(body, setup=tree, fails=ANY if offset < 0 or length <= 0 else None)


def test_posix_fallocate_readonly(both):
    both.run(lambda osx: osx.posix_fallocate(ro(osx), 0, 100), setup=tree, fails=errno.EBADF)


def test_posix_fallocate_closed(both):
    both.run(lambda osx: osx.posix_fallocate(closed(osx), 0, 100), setup=tree, fails=errno.EBADF)


def test_posix_fallocate_directory(both):
    both.run(lambda osx: osx.posix_fallocate(ro(osx, "d"), 0, 100), setup=tree, fails=ANY)


ADVICE = ["POSIX_FADV_NORMAL", "POSIX_FADV_SEQUENTIAL", "POSIX_FADV_RANDOM", "POSIX_FADV_NOREUSE",
          "POSIX_FADV_WILLNEED", "POSIX_FADV_DONTNEED"]


@pytest.mark.parametrize("advice", ADVICE)
@pytest.mark.parametrize("offset,length", [(0, 0), (0, 5), (4096, 1 << 20)])
def test_posix_fadvise_standard(both, advice, offset, length):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.posix_fadvise(fd, offset, length, getattr(osx, advice))
        return osx.read(fd, 100), osx.pwrite(fd, b"after", 0), get(osx, "f")
    both.run(body, setup=tree)


@pytest.mark.parametrize("advice", [6, 7, 100, -1])
def test_posix_fadvise_outside_posix_range_is_einval(both, advice):
    both.run(lambda osx: osx.posix_fadvise(ro(osx), 0, 0, advice), setup=tree, fails=errno.EINVAL)


def test_posix_fadvise_negative_length(both):
    both.run(lambda osx: osx.posix_fadvise(ro(osx), 0, -1, osx.POSIX_FADV_NORMAL), setup=tree,
             fails=errno.EINVAL)


def test_posix_fadvise_closed(both):
    both.run(lambda osx: osx.posix_fadvise(closed(osx), 0, 0, osx.POSIX_FADV_NORMAL), setup=tree,
             fails=errno.EBADF)


def test_posix_fadvise_dontneed_keeps_data(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.pwrite(fd, b"J", 0)
        osx.posix_fadvise(fd, 0, 0, osx.POSIX_FADV_DONTNEED)
        return osx.pread(fd, 100, 0)
    assert both.run(body, setup=tree) == b"Jello world\n"


@pytest.mark.parametrize("path", [".", "f", "d", "ls"])
def test_statvfs(both, path):
    both.run(lambda osx: osx.statvfs(path), setup=tree)


@pytest.mark.parametrize("path", ["missing", "dangling", "f/x"])
def test_statvfs_bad_paths(both, path):
    both.run(lambda osx: osx.statvfs(path), setup=tree, fails=ANY)


def test_statvfs_descriptor(both):
    both.run(lambda osx: osx.statvfs(ro(osx)), setup=tree)


def test_fstatvfs(both):
    both.run(lambda osx: osx.fstatvfs(ro(osx)), setup=tree)


def test_fstatvfs_closed(both):
    both.run(lambda osx: osx.fstatvfs(closed(osx)), setup=tree, fails=errno.EBADF)


def test_statvfs_free_space_falls_when_writing(vol):
    """zcsdfs-only: the real side's disk is shared with other processes, so its counts drift."""
    before = vol.statvfs("/")
    fd = vol.open("big", os.O_WRONLY | os.O_CREAT)
    vol.write(fd, b"b" * (256 << 10))
    vol.fsync(fd)
    vol.close(fd)
    after = vol.statvfs("/")
    assert after.f_bfree <= before.f_bfree - (256 << 10) // before.f_frsize
    assert after.f_ffree < before.f_ffree


def pair(osx):
    src = osx.open("f", osx.O_RDONLY)
    dst = osx.open("out", osx.O_RDWR | osx.O_CREAT | osx.O_TRUNC)
    return src, dst


@pytest.mark.parametrize("offset,count", [(None, 100), (None, 5), (0, 100), (6, 3), (12, 10), (50, 10)])
def test_sendfile(both, offset, count):
    def body(osx):
        src, dst = pair(osx)
        osx.read(src, 2)
        n = osx.sendfile(dst, src, offset, count)
        return n, get(osx, "out"), osx.lseek(src, 0, osx.SEEK_CUR), osx.lseek(dst, 0, osx.SEEK_CUR)
    both.run(body, setup=tree)


def test_sendfile_to_readonly(both):
    def body(osx):
        src, _ = pair(osx)
        osx.sendfile(ro(osx, "e"), src, 0, 5)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_sendfile_from_writeonly(both):
    def body(osx):
        _, dst = pair(osx)
        osx.sendfile(dst, osx.open("e", osx.O_WRONLY), 0, 5)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_sendfile_to_an_append_descriptor(both):
    def body(osx):
        src, _ = pair(osx)
        osx.sendfile(osx.open("e", osx.O_WRONLY | osx.O_APPEND), src, 0, 5)
    both.run(body, setup=tree, fails=errno.EINVAL)


def test_sendfile_and_copy_file_range_take_keywords(both):
    def body(osx):
        src, dst = pair(osx)
        a = osx.sendfile(out_fd=dst, in_fd=src, offset=0, count=5)
        b = osx.copy_file_range(src=src, dst=dst, count=3, offset_src=6, offset_dst=None)
        return a, b, get(osx, "out")
    assert both.run(body, setup=tree)[2] == b"hellowor"


def test_fsync_of_a_string(both):
    both.run(lambda osx: osx.fsync("f"), setup=tree, fails=TypeError)


def test_fdatasync_of_a_string(both):
    both.run(lambda osx: osx.fdatasync("f"), setup=tree, fails=TypeError)


def test_lstat_of_a_descriptor(both):
    both.run(lambda osx: osx.lstat(osx.open("f", osx.O_RDONLY)), setup=tree, fails=TypeError)


@pytest.mark.parametrize("how", ["dir_fd", "follow_symlinks"])
def test_stat_of_a_descriptor_with_path_options(both, how):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        if how == "dir_fd":
            return osx.stat(fd, dir_fd=osx.open(".", osx.O_RDONLY))
        return osx.stat(fd, follow_symlinks=False)
    both.run(body, setup=tree, fails=ValueError)


def test_sendfile_closed(both):
    def body(osx):
        src, dst = pair(osx)
        osx.sendfile(dst, closed(osx), 0, 5)
    both.run(body, setup=tree, fails=errno.EBADF)


@pytest.mark.parametrize("offsets", [(None, None), (0, None), (None, 3), (6, 2), (11, 0), (20, 0)])
def test_copy_file_range(both, offsets):
    def body(osx):
        src, dst = pair(osx)
        osx.write(dst, b"0123456789")
        osx.lseek(dst, 1, osx.SEEK_SET)
        n = osx.copy_file_range(src, dst, 5, *offsets)
        return n, get(osx, "out"), osx.lseek(src, 0, osx.SEEK_CUR), osx.lseek(dst, 0, osx.SEEK_CUR)
    both.run(body, setup=tree)


def test_copy_file_range_large(both):
    def body(osx):
        src = osx.open("big", osx.O_RDWR | osx.O_CREAT)
        osx.write(src, bytes(range(256)) * 1024)
        dst = osx.open("copy", osx.O_RDWR | osx.O_CREAT)
        total = 0
        while n := osx.copy_file_range(src, dst, 1 << 20, total, total):
            total += n
        return total, get(osx, "copy") == get(osx, "big")
    assert both.run(body) == (256 * 1024, True)


def test_copy_file_range_to_readonly(both):
    def body(osx):
        src, _ = pair(osx)
        osx.copy_file_range(src, ro(osx, "e"), 5)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_copy_file_range_to_append(both):
    def body(osx):
        src, _ = pair(osx)
        osx.copy_file_range(src, osx.open("e", osx.O_WRONLY | osx.O_APPEND), 5)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_copy_file_range_overlapping_same_file(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.copy_file_range(fd, fd, 6, 0, 3)
    both.run(body, setup=tree, fails=errno.EINVAL)


def test_copy_file_range_same_file_disjoint(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        n = osx.copy_file_range(fd, fd, 5, 0, 20)
        return n, get(osx, "f")
    both.run(body, setup=tree)


def test_copy_file_range_directory(both):
    def body(osx):
        _, dst = pair(osx)
        osx.copy_file_range(ro(osx, "d"), dst, 5)
    both.run(body, setup=tree, fails=errno.EISDIR)


def test_copy_file_range_negative_count(both):
    def body(osx):
        src, dst = pair(osx)
        osx.copy_file_range(src, dst, -1)
    both.run(body, setup=tree, fails=ANY)


def test_constants_match_os(both):
    names = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND",
             "O_DIRECTORY", "O_NOFOLLOW", "O_CLOEXEC", "O_SYNC", "O_DSYNC", "SEEK_SET", "SEEK_CUR",
             "SEEK_END", "SEEK_DATA", "SEEK_HOLE", *ADVICE, "XATTR_CREATE", "XATTR_REPLACE",
             "XATTR_SIZE_MAX", "F_OK", "R_OK", "W_OK", "X_OK"]
    assert both.run(lambda osx: [getattr(osx, n) for n in names]) == [getattr(os, n) for n in names]
