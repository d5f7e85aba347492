"""lseek: SEEK_SET/CUR/END, seeking past the end, SEEK_DATA/SEEK_HOLE, errors."""

import errno

import pytest

from tests.api.tree import tree

BS = 4096


def rdonly(osx):
    return osx.open("f", osx.O_RDONLY)


@pytest.mark.parametrize("whence,offset", [("SEEK_SET", 0), ("SEEK_SET", 5), ("SEEK_SET", 12),
                                           ("SEEK_SET", 1000), ("SEEK_CUR", 0), ("SEEK_CUR", 3),
                                           ("SEEK_CUR", -3), ("SEEK_END", 0), ("SEEK_END", -2),
                                           ("SEEK_END", 7)])
def test_seek_then_read(both, whence, offset):
    def body(osx):
        fd = rdonly(osx)
        osx.read(fd, 4)
        pos = osx.lseek(fd, offset, getattr(osx, whence))
        return pos, osx.read(fd, 3)
    both.run(body, setup=tree)


@pytest.mark.parametrize("whence,offset", [("SEEK_SET", -1), ("SEEK_CUR", -5), ("SEEK_END", -13)])
def test_seek_before_start_is_einval(both, whence, offset):
    def body(osx):
        fd = rdonly(osx)
        osx.read(fd, 4)
        osx.lseek(fd, offset, getattr(osx, whence))
    both.run(body, setup=tree, fails=errno.EINVAL)


def test_failed_seek_keeps_offset(both):
    def body(osx):
        fd = rdonly(osx)
        osx.read(fd, 4)
        try:
            osx.lseek(fd, -100, osx.SEEK_CUR)
        except OSError as e:
            return e.errno, osx.lseek(fd, 0, osx.SEEK_CUR)
    assert both.run(body, setup=tree) == (errno.EINVAL, 4)


def test_bad_whence_is_einval(both):
    both.run(lambda osx: osx.lseek(rdonly(osx), 0, 99), setup=tree, fails=errno.EINVAL)


def test_seek_closed_descriptor(both):
    def body(osx):
        fd = rdonly(osx)
        osx.close(fd)
        osx.lseek(fd, 0, osx.SEEK_SET)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_seek_end_follows_growth(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.pwrite(fd, b"more", 100)
        return osx.lseek(fd, 0, osx.SEEK_END)
    assert both.run(body, setup=tree) == 104


def test_seek_on_directory_descriptor(both):
    both.run(lambda osx: osx.lseek(osx.open("d", osx.O_RDONLY), 0, osx.SEEK_SET), setup=tree)


def dense(osx):
    fd = osx.open("dense", osx.O_WRONLY | osx.O_CREAT)
    osx.write(fd, b"x" * 10000)
    osx.close(fd)


def sparse(osx):
    """Data in blocks 0 and 3, a hole in blocks 1-2, size 4 blocks + 100 bytes of data."""
    fd = osx.open("sparse", osx.O_WRONLY | osx.O_CREAT)
    osx.pwrite(fd, b"a" * BS, 0)
    osx.pwrite(fd, b"b" * (BS + 100), 3 * BS)
    osx.close(fd)


@pytest.mark.parametrize("offset", [0, 1, 5000, 9999])
def test_seek_data_in_dense_file_is_offset(both, offset):
    both.run(lambda osx: osx.lseek(osx.open("dense", osx.O_RDONLY), offset, osx.SEEK_DATA),
             setup=dense)


@pytest.mark.parametrize("offset", [0, 1, 5000, 9999])
def test_seek_hole_in_dense_file_is_size(both, offset):
    assert both.run(lambda osx: osx.lseek(osx.open("dense", osx.O_RDONLY), offset, osx.SEEK_HOLE),
                    setup=dense) == 10000


@pytest.mark.parametrize("whence", ["SEEK_DATA", "SEEK_HOLE"])
@pytest.mark.parametrize("offset", [10000, 20000])
def test_seek_data_or_hole_at_or_past_eof_is_enxio(both, whence, offset):
    both.run(lambda osx: osx.lseek(osx.open("dense", osx.O_RDONLY), offset, getattr(osx, whence)),
             setup=dense, fails=errno.ENXIO)


@pytest.mark.parametrize("whence", ["SEEK_DATA", "SEEK_HOLE"])
def test_seek_data_or_hole_in_empty_file_is_enxio(both, whence):
    both.run(lambda osx: osx.lseek(osx.open("e", osx.O_RDONLY), 0, getattr(osx, whence)),
             setup=tree, fails=errno.ENXIO)


@pytest.mark.parametrize("offset", [0, 100, BS, 2 * BS + 7, 3 * BS + 50])
def test_seek_data_and_hole_in_sparse_file_are_consistent(both, offset):
    """Linux lets a file system report holes as data; what is reported must still be true."""
    def body(osx):
        fd = osx.open("sparse", osx.O_RDONLY)
        size = osx.fstat(fd).st_size
        data = osx.lseek(fd, offset, osx.SEEK_DATA)
        hole = osx.lseek(fd, offset, osx.SEEK_HOLE)
        content = osx.pread(fd, size, 0)
        return {
            "data at or after offset": offset <= data < size,
            "hole at or after offset, at most size": offset <= hole <= size,
            "a reported hole reads as zeros": hole == size or content[hole:hole + 1] == b"\0",
            "zeros before the data found": content[offset:data].count(0) == data - offset,
        }
    result = both.run(body, setup=sparse)
    assert all(result.values()), result
