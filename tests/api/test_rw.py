"""read, write, pread, pwrite, readv, writev, preadv, pwritev: data, offsets, errors."""

import errno

import pytest

from tests.api.tree import HELLO, get, tree


def rw(osx, path="f", extra=0):
    return osx.open(path, osx.O_RDWR | extra)


def test_write_returns_count_and_moves_offset(both):
    def body(osx):
        fd = rw(osx)
        return osx.write(fd, b"HEL"), osx.lseek(fd, 0, osx.SEEK_CUR), get(osx, "f")
    assert both.run(body, setup=tree) == (3, 3, b"HELlo world\n")


@pytest.mark.parametrize("n", [0, 1, 5, 12, 13, 4096])
def test_read_n_bytes(both, n):
    both.run(lambda osx: osx.read(rw(osx), n), setup=tree)


def test_read_at_eof_is_empty(both):
    def body(osx):
        fd = rw(osx)
        return osx.read(fd, 100), osx.read(fd, 100), osx.read(fd, 100)
    assert both.run(body, setup=tree) == (HELLO, b"", b"")


def test_read_negative_count(both):
    both.run(lambda osx: osx.read(rw(osx), -1), setup=tree, fails=errno.EINVAL)


def test_read_closed_descriptor(both):
    def body(osx):
        fd = rw(osx)
        osx.close(fd)
        osx.read(fd, 1)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_write_closed_descriptor(both):
    def body(osx):
        fd = rw(osx)
        osx.close(fd)
        osx.write(fd, b"x")
    both.run(body, setup=tree, fails=errno.EBADF)


@pytest.mark.parametrize("data", [b"", b"x", bytearray(b"bytearray"), memoryview(b"memoryview"),
                                  memoryview(b"0123456789")[2:7], b"\0" * 100])
def test_write_buffer_kinds(both, data):
    def body(osx):
        fd = osx.open("new", osx.O_RDWR | osx.O_CREAT)
        return osx.write(fd, data), osx.pread(fd, 1000, 0)
    both.run(body)


@pytest.mark.parametrize("data", ["text", 5, None])
def test_write_non_buffer_is_typeerror(both, data):
    both.run(lambda osx: osx.write(rw(osx), data), setup=tree, fails=TypeError)


@pytest.mark.parametrize("size", [4095, 4096, 4097, 65536 + 17, 1 << 20])
def test_large_write_reads_back(both, size):
    data = bytes(range(256)) * (size // 256) + b"t" * (size % 256)

    def body(osx):
        fd = osx.open("big", osx.O_RDWR | osx.O_CREAT)
        n = osx.write(fd, data)
        osx.lseek(fd, 0, osx.SEEK_SET)
        back = osx.read(fd, size + 10)
        return n, back == data, osx.fstat(fd)
    both.run(body)


def test_overwrite_middle_across_blocks(both):
    def body(osx):
        fd = osx.open("big", osx.O_RDWR | osx.O_CREAT)
        osx.write(fd, b"a" * 10000)
        osx.pwrite(fd, b"B" * 5000, 3000)
        content = get(osx, "big")
        return len(content), content.count(b"B"), content[2999:3001], content[7999:8001]
    assert both.run(body) == (10000, 5000, b"aB", b"Ba")


def test_pwrite_past_eof_leaves_a_hole_of_zeros(both):
    def body(osx):
        fd = osx.open("sparse", osx.O_RDWR | osx.O_CREAT)
        osx.pwrite(fd, b"end", 10000)
        content = get(osx, "sparse")
        return osx.fstat(fd), content[:10000] == bytes(10000), content[10000:]
    both.run(body)


def test_write_after_seek_past_eof(both):
    def body(osx):
        fd = rw(osx)
        osx.lseek(fd, 20, osx.SEEK_SET)
        osx.write(fd, b"Z")
        return get(osx, "f")
    assert both.run(body, setup=tree) == HELLO + bytes(8) + b"Z"


def test_pread_does_not_move_offset(both):
    def body(osx):
        fd = rw(osx)
        osx.read(fd, 2)
        return osx.pread(fd, 5, 6), osx.read(fd, 3)
    assert both.run(body, setup=tree) == (b"world", b"llo")


def test_pwrite_does_not_move_offset(both):
    def body(osx):
        fd = rw(osx)
        osx.read(fd, 2)
        return osx.pwrite(fd, b"XY", 8), osx.read(fd, 100)
    assert both.run(body, setup=tree) == (2, b"llo woXYd\n")


@pytest.mark.parametrize("offset", [0, 5, 11, 12, 13, 1 << 20])
def test_pread_at_offsets(both, offset):
    both.run(lambda osx: osx.pread(rw(osx), 4, offset), setup=tree)


def test_pread_negative_offset(both):
    both.run(lambda osx: osx.pread(rw(osx), 4, -1), setup=tree, fails=errno.EINVAL)


def test_pwrite_negative_offset(both):
    both.run(lambda osx: osx.pwrite(rw(osx), b"x", -1), setup=tree, fails=errno.EINVAL)


def test_pread_on_wronly(both):
    both.run(lambda osx: osx.pread(osx.open("f", osx.O_WRONLY), 4, 0), setup=tree, fails=errno.EBADF)


def test_pwrite_on_rdonly(both):
    both.run(lambda osx: osx.pwrite(osx.open("f", osx.O_RDONLY), b"x", 0), setup=tree,
             fails=errno.EBADF)


def test_append_writes_at_end_whatever_the_offset(both):
    def body(osx):
        fd = rw(osx, extra=osx.O_APPEND)
        osx.lseek(fd, 0, osx.SEEK_SET)
        osx.write(fd, b"A")
        where = osx.lseek(fd, 0, osx.SEEK_CUR)
        osx.write(fd, b"B")
        return where, get(osx, "f")
    assert both.run(body, setup=tree) == (13, HELLO + b"AB")


def test_pwrite_with_append_appends_on_linux(both):
    def body(osx):
        fd = rw(osx, extra=osx.O_APPEND)
        osx.pwrite(fd, b"P", 0)
        return get(osx, "f")
    assert both.run(body, setup=tree) == HELLO + b"P"


def test_append_sees_writes_by_another_descriptor(both):
    def body(osx):
        a = osx.open("f", osx.O_WRONLY | osx.O_APPEND)
        b = osx.open("f", osx.O_WRONLY)
        osx.pwrite(b, b"0123456789abcdefghij", 0)
        osx.write(a, b"!")
        return get(osx, "f")
    assert both.run(body, setup=tree) == b"0123456789abcdefghij!"


def test_read_sees_writes_by_another_descriptor(both):
    def body(osx):
        a = osx.open("f", osx.O_RDONLY)
        b = osx.open("f", osx.O_WRONLY)
        first = osx.read(a, 3)
        osx.write(b, b"HELLO WORLD")
        return first, osx.read(a, 100)
    assert both.run(body, setup=tree) == (b"hel", b"LO WORLD\n")


def test_writev_gathers(both):
    def body(osx):
        fd = osx.open("v", osx.O_RDWR | osx.O_CREAT)
        n = osx.writev(fd, [b"ab", bytearray(b"cde"), memoryview(b"fghi"), b""])
        return n, get(osx, "v"), osx.lseek(fd, 0, osx.SEEK_CUR)
    assert both.run(body) == (9, b"abcdefghi", 9)


def test_writev_empty_list(both):
    both.run(lambda osx: osx.writev(rw(osx), []), setup=tree)


def test_readv_scatters(both):
    def body(osx):
        fd = rw(osx)
        bufs = [bytearray(3), bytearray(4), bytearray(100)]
        return osx.readv(fd, bufs), [bytes(b) for b in bufs]
    assert both.run(body, setup=tree)[0] == 12


def test_readv_at_eof(both):
    def body(osx):
        fd = rw(osx)
        osx.lseek(fd, 0, osx.SEEK_END)
        return osx.readv(fd, [bytearray(4)])
    assert both.run(body, setup=tree) == 0


def test_readv_into_readonly_buffer_is_buffererror(both):
    both.run(lambda osx: osx.readv(rw(osx), [b"immutable"]), setup=tree, fails=BufferError)


def test_preadv_at_offset(both):
    def body(osx):
        fd = rw(osx)
        bufs = [bytearray(2), bytearray(3)]
        return osx.preadv(fd, bufs, 6), [bytes(b) for b in bufs], osx.lseek(fd, 0, osx.SEEK_CUR)
    assert both.run(body, setup=tree) == (5, [b"wo", b"rld"], 0)


def test_pwritev_at_offset(both):
    def body(osx):
        fd = rw(osx)
        n = osx.pwritev(fd, [b"W", b"ORLD"], 6)
        return n, get(osx, "f"), osx.lseek(fd, 0, osx.SEEK_CUR)
    assert both.run(body, setup=tree) == (5, b"hello WORLD\n", 0)


def test_pwritev_past_eof(both):
    def body(osx):
        fd = rw(osx)
        osx.pwritev(fd, [b"x", b"y"], 20)
        return get(osx, "f")
    both.run(body, setup=tree)


def test_preadv_negative_offset(both):
    both.run(lambda osx: osx.preadv(rw(osx), [bytearray(2)], -5), setup=tree, fails=errno.EINVAL)


def test_writev_on_rdonly(both):
    both.run(lambda osx: osx.writev(osx.open("f", osx.O_RDONLY), [b"x"]), setup=tree,
             fails=errno.EBADF)


def test_readv_on_wronly(both):
    both.run(lambda osx: osx.readv(osx.open("f", osx.O_WRONLY), [bytearray(1)]), setup=tree,
             fails=errno.EBADF)


def test_interleaved_small_writes(both):
    def body(osx):
        fd = osx.open("log", osx.O_RDWR | osx.O_CREAT)
        for i in range(300):
            osx.write(fd, b"%03d," % i)
        content = get(osx, "log")
        return len(content), content[:8], content[-8:]
    assert both.run(body) == (1200, b"000,001,", b"298,299,")


def test_dup_shares_offset(both):
    def body(osx):
        a = rw(osx)
        b = osx.dup(a)
        osx.read(a, 6)
        return osx.read(b, 100)
    assert both.run(body, setup=tree) == b"world\n"
