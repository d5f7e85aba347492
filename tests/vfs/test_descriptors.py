"""A zcsdfs descriptor number closed or replaced behind the volume's back is never used again.

C code (or ``builtins.open(fd).close()``) can close the real descriptor a
zcsdfs number is; the kernel then hands the number to the next real open.
Calls on that number must reach the real file (or fail with EBADF), never
the zcsdfs file the number used to name.
"""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

import zcsdfs

libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def vol():
    v = zcsdfs.Volume.memory("tiny")
    yield v
    v.unmount()


def zcsdfs_file(vol, name=b"old zcsdfs data"):
    fd = vol.open("/f", os.O_CREAT | os.O_RDWR, 0o644)
    vol.write(fd, name)
    return fd


def test_a_number_closed_in_c_and_reused_by_a_real_open(vol, tmp_path):
    fd = zcsdfs_file(vol)
    assert libc.close(fd) == 0  # C code closes it: the kernel frees the number
    real = os.open(tmp_path / "real", os.O_CREAT | os.O_RDWR)
    try:
        if real != fd:  # another thread took the lowest number: put the real file there
            os.dup2(real, fd)
            os.close(real)
            real = fd
        assert vol.pwrite(real, b"real data", 0) == 9
        assert vol.write(real, b"!") == 1
        assert vol.fstat(real).st_ino == os.stat(tmp_path / "real").st_ino
    finally:
        vol.close(real)  # closes the real file: the number is no volume's any more
    assert (tmp_path / "real").read_bytes() == b"!eal data"
    check = vol.open("/f", os.O_RDONLY)
    assert vol.read(check, 100) == b"old zcsdfs data"  # untouched
    vol.close(check)


def test_builtins_open_of_a_zcsdfs_number_then_close(vol, tmp_path):
    fd = zcsdfs_file(vol)
    open(fd, "rb", closefd=True).close()  # the real io module closes the number
    real = os.open(tmp_path / "real", os.O_CREAT | os.O_WRONLY)
    if real != fd:  # the number names the real file now, whatever the kernel chose
        os.dup2(real, fd)
        os.close(real)
    try:
        assert vol.write(fd, b"to the real file") == 16
    finally:
        vol.close(fd)
    assert (tmp_path / "real").read_bytes() == b"to the real file"


def test_a_number_closed_and_not_reused_is_ebadf(vol):
    fd = zcsdfs_file(vol)
    assert libc.close(fd) == 0
    for call in (lambda: vol.write(fd, b"x"), lambda: vol.pread(fd, 1, 0), lambda: vol.fstat(fd),
                 lambda: vol.lseek(fd, 0, os.SEEK_SET), lambda: vol.fsync(fd)):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF
    assert not vol.owns(fd)


def test_a_lost_number_releases_its_open_file(vol):
    free = vol.statvfs("/").f_ffree
    fd = zcsdfs_file(vol)
    vol.unlink("/f")  # the inode lives while the description is open
    assert vol.statvfs("/").f_ffree == free - 1
    assert libc.close(fd) == 0
    with pytest.raises(OSError):
        vol.fstat(fd)  # the volume finds out, and lets go of the description
    assert vol.statvfs("/").f_ffree == free


def test_a_number_reused_by_another_volume(vol):
    other = zcsdfs.Volume.memory("tiny")
    try:
        fd = zcsdfs_file(vol)
        assert libc.close(fd) == 0
        theirs = other.open("/g", os.O_CREAT | os.O_RDWR, 0o644)
        if theirs != fd:
            other.dup2(theirs, fd)
            other.close(theirs)
        assert other.write(fd, b"other's") == 7
        assert not vol.owns(fd)  # the number is the other volume's, not ours
        with pytest.raises(OSError) as info:
            vol.write(fd, b"misdirected")  # the real os: a reserved number, EBADF
        assert info.value.errno == errno.EBADF
        assert other.pread(fd, 100, 0) == b"other's"
    finally:
        other.unmount()


def test_a_number_reused_by_the_same_volume(vol):
    fd = zcsdfs_file(vol)
    assert libc.close(fd) == 0
    again = vol.open("/g", os.O_CREAT | os.O_RDWR, 0o644)
    if again != fd:
        vol.dup2(again, fd)
        vol.close(again)
    vol.write(fd, b"g's data")
    assert vol.pread(vol.open("/g", os.O_RDONLY), 100, 0) == b"g's data"
    assert vol.pread(vol.open("/f", os.O_RDONLY), 100, 0) == b"old zcsdfs data"


def test_unmount_leaves_a_lost_number_alone(tmp_path):
    vol = zcsdfs.Volume.memory("tiny")
    fd = zcsdfs_file(vol)
    assert libc.close(fd) == 0
    real = os.open(tmp_path / "real", os.O_CREAT | os.O_RDWR)
    if real != fd:
        os.dup2(real, fd)
        os.close(real)
    vol.unmount()
    try:
        assert os.write(fd, b"still open") == 10  # unmount did not close the real file
    finally:
        os.close(fd)


def test_the_reserved_number_closed_behind_our_back(vol, tmp_path):
    reserved = vol._fds._null
    assert libc.close(reserved) == 0
    real = os.open(tmp_path / "real", os.O_CREAT | os.O_RDWR)
    try:
        if real != reserved:
            os.dup2(real, reserved)
        fd = vol.open("/f", os.O_CREAT | os.O_RDWR, 0o644)  # must not duplicate the real file
        with pytest.raises(OSError) as info:
            os.write(fd, b"x")
        assert info.value.errno == errno.EBADF
        vol.close(fd)
        assert os.write(reserved, b"real") == 4
    finally:
        if real != reserved:
            os.close(real)
        os.close(reserved)
    assert (tmp_path / "real").read_bytes() == b"real"


def test_the_shim_routes_a_lost_number_to_the_real_file(tmp_path):
    import zcsdfs.shim as shim

    with shim.mounted("/zcsdfs-lost-fd", zcsdfs.Volume.memory("tiny")) as vol:
        fd = os.open("/zcsdfs-lost-fd/f", os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"zcsdfs")
        assert libc.close(fd) == 0
        real = os.open(tmp_path / "real", os.O_CREAT | os.O_RDWR)
        if real != fd:
            os.dup2(real, fd)
            os.close(real)
        assert os.write(fd, b"real") == 4
        assert os.fstat(fd).st_ino == os.stat(tmp_path / "real").st_ino
        os.close(fd)
        with open("/zcsdfs-lost-fd/f", "rb") as f:
            assert f.read() == b"zcsdfs"
    vol.unmount()
    assert (tmp_path / "real").read_bytes() == b"real"


def test_a_lost_number_reused_as_another_volume_s_reserve(vol, monkeypatch):
    fd = zcsdfs_file(vol)
    assert libc.close(fd) == 0
    real_open = os.open

    def open_at_fd(path, flags, mode=0o777):  # the kernel hands the freed number to the next open
        got = real_open(path, flags, mode)
        if got != fd:
            os.dup2(got, fd)
            os.close(got)
        return fd
    monkeypatch.setattr(os, "open", open_at_fd)
    other = zcsdfs.Volume.memory("tiny")
    monkeypatch.setattr(os, "open", real_open)
    try:
        assert other._fds._null == fd  # the other volume's reserved descriptor, with the mark
        with pytest.raises(OSError) as info:
            vol.write(fd, b"misdirected")  # no file of ours any more: EBADF, as the real os says
        assert info.value.errno == errno.EBADF
        vol.unmount()
        os.fstat(fd)  # our unmount left the other volume's reserve open
        other.close(other.open("/y", os.O_CREAT | os.O_WRONLY, 0o600))
    finally:
        other.unmount()
