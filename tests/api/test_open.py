"""open(): every flag combination the issue names, against every kind of path."""

import errno
import os
import pathlib

import pytest

from tests.api.conftest import ANY
from tests.api.tree import HELLO, NAMES, get, listing, tree

FLAGS = {
    "RDONLY": os.O_RDONLY,
    "WRONLY": os.O_WRONLY,
    "RDWR": os.O_RDWR,
    "RDONLY|CREAT": os.O_RDONLY | os.O_CREAT,
    "WRONLY|CREAT": os.O_WRONLY | os.O_CREAT,
    "RDWR|CREAT|EXCL": os.O_RDWR | os.O_CREAT | os.O_EXCL,
    "WRONLY|CREAT|TRUNC": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "WRONLY|TRUNC": os.O_WRONLY | os.O_TRUNC,
    "RDWR|APPEND": os.O_RDWR | os.O_APPEND,
    "RDONLY|DIRECTORY": os.O_RDONLY | os.O_DIRECTORY,
    "RDWR|DIRECTORY": os.O_RDWR | os.O_DIRECTORY,
    "RDONLY|NOFOLLOW": os.O_RDONLY | os.O_NOFOLLOW,
    "WRONLY|CREAT|NOFOLLOW": os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW,
    "RDONLY|CREAT|DIRECTORY": os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY,
    "RDWR|CLOEXEC|SYNC|DSYNC": os.O_RDWR | os.O_CLOEXEC | os.O_SYNC | os.O_DSYNC,
    "RDONLY|TRUNC": os.O_RDONLY | os.O_TRUNC,
    "ACCMODE": os.O_ACCMODE,  # 3: read and write permission needed, neither granted
    "ACCMODE|CREAT": os.O_ACCMODE | os.O_CREAT,
}

PATHS = [*NAMES, "missing", "d/g", "d/missing", "nodir/x", "f/x", "ls/x", "ld/g",
         "f/", "d/", "missing/", "dangling/"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("flags", FLAGS)
def test_flags_on_path(both, flags, path):
    def body(osx):
        fd = osx.open(path, FLAGS[flags], 0o640)
        return {"fd": fd, "stat": osx.fstat(fd), "names": listing(osx), "in d": listing(osx, "d")}
    both.run(body, setup=tree, fails=ANY)


@pytest.mark.parametrize("mode", [0o777, 0o666, 0o640, 0o600, 0o400, 0o000, 0o1777, 0o4755])
def test_create_mode_is_masked_by_umask(both, mode):
    def body(osx):
        fd = osx.open("new", osx.O_WRONLY | osx.O_CREAT, mode)
        osx.close(fd)
        return osx.stat("new")
    both.run(body)


def test_access_mode_3_reads_and_writes_nothing(both):
    def body(osx):
        fd = osx.open("f", osx.O_ACCMODE)
        outcomes = []
        for call in (lambda: osx.read(fd, 1), lambda: osx.write(fd, b"x")):
            try:
                outcomes.append(call())
            except OSError as e:
                outcomes.append(e.errno)
        return outcomes, osx.fstat(fd)
    assert both.run(body, setup=tree)[0] == [errno.EBADF, errno.EBADF]


@pytest.mark.parametrize("mask", [0o077, 0o027, 0o000])
def test_creates_follow_the_process_umask(both, mask):
    """The umask set through the real ``os.umask`` (not zcsdfs's) applies, as the kernel applies it."""
    def body(osx):
        old = os.umask(mask)
        try:
            osx.close(osx.open("f", osx.O_WRONLY | osx.O_CREAT, 0o666))
            osx.mkdir("d")
            osx.mkfifo("p")
            return osx.stat("f"), osx.stat("d"), osx.stat("p")
        finally:
            os.umask(old)
    both.run(body)


def test_create_exclusive_twice(both):
    def body(osx):
        osx.close(osx.open("x", osx.O_CREAT | osx.O_EXCL | osx.O_WRONLY))
        osx.open("x", osx.O_CREAT | osx.O_EXCL | osx.O_WRONLY)
    assert both.run(body, fails=errno.EEXIST) == errno.EEXIST


def test_excl_without_creat_is_ignored(both):
    both.run(lambda osx: osx.fstat(osx.open("f", osx.O_RDONLY | osx.O_EXCL)), setup=tree)


def test_trunc_empties_existing_file(both):
    def body(osx):
        osx.close(osx.open("f", osx.O_WRONLY | osx.O_TRUNC))
        return osx.stat("f"), get(osx, "f")
    both.run(body, setup=tree)


def test_rdonly_trunc_truncates_on_linux(both):
    def body(osx):
        osx.close(osx.open("f", osx.O_RDONLY | osx.O_TRUNC))
        return osx.stat("f").st_size
    assert both.run(body, setup=tree) == 0


def test_create_through_dangling_symlink_makes_target(both):
    def body(osx):
        osx.close(osx.open("dangling", osx.O_WRONLY | osx.O_CREAT, 0o600))
        return listing(osx), osx.lstat("dangling"), osx.stat("nowhere")
    both.run(body, setup=tree)


def test_excl_on_dangling_symlink_fails(both):
    both.run(lambda osx: osx.open("dangling", osx.O_WRONLY | osx.O_CREAT | osx.O_EXCL),
             setup=tree, fails=errno.EEXIST)


def test_creat_on_directory_is_eisdir(both):
    both.run(lambda osx: osx.open("d", osx.O_WRONLY | osx.O_CREAT), setup=tree, fails=errno.EISDIR)


def test_rdonly_on_directory_is_allowed(both):
    both.run(lambda osx: osx.fstat(osx.open("d", osx.O_RDONLY)), setup=tree)


def test_wronly_on_directory_is_eisdir(both):
    both.run(lambda osx: osx.open("d", osx.O_WRONLY), setup=tree, fails=errno.EISDIR)


def test_nofollow_on_symlink_is_eloop(both):
    both.run(lambda osx: osx.open("ls", osx.O_RDONLY | osx.O_NOFOLLOW), setup=tree, fails=errno.ELOOP)


def test_nofollow_only_applies_to_last_component(both):
    both.run(lambda osx: osx.fstat(osx.open("ld/g", osx.O_RDONLY | osx.O_NOFOLLOW)), setup=tree)


def test_directory_flag_on_file_is_enotdir(both):
    both.run(lambda osx: osx.open("f", osx.O_RDONLY | osx.O_DIRECTORY), setup=tree, fails=errno.ENOTDIR)


def test_directory_flag_through_symlink_to_dir(both):
    both.run(lambda osx: osx.fstat(osx.open("ld", osx.O_RDONLY | osx.O_DIRECTORY)), setup=tree)


def test_empty_path_is_enoent(both):
    both.run(lambda osx: osx.open("", osx.O_RDONLY), fails=errno.ENOENT)


def test_missing_is_enoent_with_filename(both):
    both.run(lambda osx: osx.open("missing", osx.O_RDONLY), fails=errno.ENOENT)


def test_missing_parent_is_enoent(both):
    both.run(lambda osx: osx.open("no/such", osx.O_WRONLY | osx.O_CREAT), fails=errno.ENOENT)


def test_file_as_directory_is_enotdir(both):
    both.run(lambda osx: osx.open("f/x", osx.O_WRONLY | osx.O_CREAT), setup=tree, fails=errno.ENOTDIR)


def test_symlink_loop_is_eloop(both):
    both.run(lambda osx: osx.open("loop", osx.O_RDONLY), setup=tree, fails=errno.ELOOP)


def test_name_of_255_bytes_is_allowed(both):
    def body(osx):
        osx.close(osx.open("n" * 255, osx.O_WRONLY | osx.O_CREAT))
        return listing(osx)
    both.run(body)


def test_name_of_256_bytes_is_enametoolong(both):
    both.run(lambda osx: osx.open("n" * 256, osx.O_WRONLY | osx.O_CREAT), fails=errno.ENAMETOOLONG)


def test_path_with_nul_is_valueerror(both):
    both.run(lambda osx: osx.open("a\0b", osx.O_RDONLY), fails=ValueError)


def test_bytes_path(both):
    def body(osx):
        osx.close(osx.open(b"bytes", osx.O_WRONLY | osx.O_CREAT))
        return listing(osx, b".")
    assert both.run(body) == [b"bytes"]


def test_bytes_path_error_keeps_bytes_filename(both):
    both.run(lambda osx: osx.open(b"missing", osx.O_RDONLY), fails=errno.ENOENT)


def test_pathlike_path(both):
    def body(osx):
        osx.close(osx.open(pathlib.PurePosixPath("d") / "new", osx.O_WRONLY | osx.O_CREAT))
        return listing(osx, "d")
    both.run(body, setup=tree)


def test_unicode_name(both):
    def body(osx):
        osx.close(osx.open("ünï-☃", osx.O_WRONLY | osx.O_CREAT))
        return listing(osx), listing(osx, b".")
    both.run(body)


def test_dot_and_dotdot_in_path(both):
    both.run(lambda osx: get(osx, "./d/sub/../g"), setup=tree)


def test_dotdot_through_symlink_is_physical(both):
    both.run(lambda osx: listing(osx, "ld/sub/.."), setup=tree)


def test_dir_fd_relative_open(both):
    def body(osx):
        dfd = osx.open("d", osx.O_RDONLY | osx.O_DIRECTORY)
        fd = osx.open("g", osx.O_RDONLY, dir_fd=dfd)
        return osx.read(fd, 100)
    assert both.run(body, setup=tree) == b"in d"


def test_dir_fd_create(both):
    def body(osx):
        dfd = osx.open("d", osx.O_RDONLY)
        osx.close(osx.open("made", osx.O_WRONLY | osx.O_CREAT, 0o600, dir_fd=dfd))
        return listing(osx, "d")
    both.run(body, setup=tree)


def test_dir_fd_of_a_file_is_enotdir(both):
    def body(osx):
        ffd = osx.open("f", osx.O_RDONLY)
        osx.open("g", osx.O_RDONLY, dir_fd=ffd)
    both.run(body, setup=tree, fails=errno.ENOTDIR)


def test_dir_fd_closed_is_ebadf(both):
    def body(osx):
        dfd = osx.open("d", osx.O_RDONLY)
        osx.close(dfd)
        osx.open("g", osx.O_RDONLY, dir_fd=dfd)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_wronly_descriptor_cannot_read(both):
    both.run(lambda osx: osx.read(osx.open("f", osx.O_WRONLY), 5), setup=tree, fails=errno.EBADF)


def test_rdonly_descriptor_cannot_write(both):
    both.run(lambda osx: osx.write(osx.open("f", osx.O_RDONLY), b"x"), setup=tree, fails=errno.EBADF)


def test_directory_descriptor_read_is_eisdir(both):
    both.run(lambda osx: osx.read(osx.open("d", osx.O_RDONLY), 5), setup=tree, fails=errno.EISDIR)


def test_descriptors_are_distinct(both):
    def body(osx):
        fds = [osx.open("f", osx.O_RDONLY) for _ in range(5)]
        return len(set(int(fd) for fd in fds)), fds
    assert both.run(body, setup=tree)[0] == 5


def test_many_descriptors_then_all_closed(both):
    def body(osx):
        fds = [osx.open("f", osx.O_RDONLY) for _ in range(200)]
        for fd in fds:
            osx.close(fd)
        osx.read(fds[100], 1)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_two_descriptions_have_their_own_offsets(both):
    def body(osx):
        a = osx.open("f", osx.O_RDONLY)
        b = osx.open("f", osx.O_RDONLY)
        return osx.read(a, 5), osx.read(b, 3), osx.read(a, 100)
    assert both.run(body, setup=tree) == (b"hello", b"hel", b" world\n")


def test_open_file_survives_unlink(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.unlink("f")
        osx.pwrite(fd, b"HELLO", 0)
        return osx.pread(fd, 100, 0), osx.fstat(fd), listing(osx)
    both.run(body, setup=tree)


def test_hello_is_there(both):
    assert both.run(lambda osx: get(osx, "f"), setup=tree) == HELLO
