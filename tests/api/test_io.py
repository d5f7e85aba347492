"""File objects: osx.io.open (like io.open) and osx.fdopen (like os.fdopen)."""

import errno
import io

import pytest

from tests.api.conftest import ANY
from tests.api.tree import HELLO, get, tree

MODES = ["r", "rb", "r+", "rb+", "w", "wb", "w+", "wb+", "a", "ab", "a+", "ab+", "x", "xb", "rt", "wt"]


def kinds(f):
    """The io class family, which is what the built-in open promises."""
    return [c.__name__ for c in (io.TextIOWrapper, io.BufferedRandom, io.BufferedReader,
                                 io.BufferedWriter, io.RawIOBase) if isinstance(f, c)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["f", "missing", "d", "ls", "dangling"])
def test_open_modes(both, mode, path):
    def body(osx):
        with osx.io.open(path, mode) as f:
            info = (kinds(f), f.mode if hasattr(f, "mode") else None, f.readable(), f.writable(),
                    f.seekable(), f.name == path)
            if f.readable():
                info += (f.read(),)
            if f.writable():
                info += (f.write("W" if "b" not in mode else b"W"),)
        return info, get(osx, path)
    both.run(body, setup=tree, fails=ANY)


@pytest.mark.parametrize("mode", ["rw", "", "q", "rbt", "x+x"])
def test_invalid_modes(both, mode):
    both.run(lambda osx: osx.io.open("f", mode), setup=tree, fails=ValueError)


def test_unbuffered_binary_is_raw(both):
    def body(osx):
        with osx.io.open("f", "rb", buffering=0) as f:
            return kinds(f), f.read(5), f.readall()
    assert both.run(body, setup=tree) == (["RawIOBase"], b"hello", b" world\n")


def test_unbuffered_text_is_valueerror(both):
    both.run(lambda osx: osx.io.open("f", "r", buffering=0), setup=tree, fails=ValueError)


@pytest.mark.parametrize("buffering", [1, 2, 4096, -1])
def test_buffering_sizes(both, buffering):
    def body(osx):
        with osx.io.open("new", "w", buffering=buffering) as f:
            f.write("line one\nline two")
        return get(osx, "new")
    both.run(body)


def test_text_round_trip_with_encoding(both):
    def body(osx):
        with osx.io.open("t", "w", encoding="utf-16") as f:
            f.write("ünïcödé ☃\n")
        with osx.io.open("t", encoding="utf-16") as f:
            return f.read(), get(osx, "t")
    both.run(body)


@pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
def test_newline_translation(both, newline):
    def body(osx):
        with osx.io.open("n", "w", newline=newline) as f:
            f.write("a\nb\r\nc\rd")
        with osx.io.open("n", newline=newline) as f:
            return get(osx, "n"), f.readlines()
    both.run(body)


@pytest.mark.parametrize("errors", ["strict", "replace", "ignore", "surrogateescape"])
def test_decoding_errors(both, errors):
    def body(osx):
        fd = osx.open("bad", osx.O_WRONLY | osx.O_CREAT)
        osx.write(fd, b"ok \xff\xfe end")
        osx.close(fd)
        with osx.io.open("bad", encoding="utf-8", errors=errors) as f:
            return f.read()
    both.run(body, fails=UnicodeDecodeError if errors == "strict" else None)


def test_readline_iteration_and_tell(both):
    def body(osx):
        with osx.io.open("lines", "w") as f:
            f.writelines(f"line {i}\n" for i in range(100))
        out = []
        with osx.io.open("lines", "rb") as f:
            out.append(f.readline())
            out.append(f.tell())
            out.append(sum(1 for _ in f))
            out.append(f.tell())
        return out
    assert both.run(body) == [b"line 0\n", 7, 99, 790]


def test_seek_and_truncate(both):
    def body(osx):
        with osx.io.open("f", "rb+") as f:
            f.seek(6)
            f.write(b"WORLD")
            f.seek(-3, io.SEEK_END)
            tail = f.read()
            f.truncate(5)
            f.seek(0, io.SEEK_END)
            return tail, f.tell(), get(osx, "f")
    assert both.run(body, setup=tree) == (b"LD\n", 5, b"hello")


def test_readinto(both):
    def body(osx):
        buf = bytearray(8)
        with osx.io.open("f", "rb") as f:
            return f.readinto(buf), bytes(buf), f.readinto(buf), f.readinto(buf)
    assert both.run(body, setup=tree) == (8, b"hello wo", 4, 0)


def test_append_mode_writes_at_end_after_seek(both):
    def body(osx):
        with osx.io.open("f", "ab+") as f:
            f.seek(0)
            head = f.read(5)
            f.write(b"!")
        return head, get(osx, "f")
    assert both.run(body, setup=tree) == (b"hello", HELLO + b"!")


def test_fileno_is_a_descriptor_of_the_side(both):
    def body(osx):
        with osx.io.open("f", "rb") as f:
            return osx.fstat(f.fileno()), osx.pread(f.fileno(), 5, 0), f.isatty()
    both.run(body, setup=tree)


def test_closed_file_raises_valueerror(both):
    def body(osx):
        f = osx.io.open("f", "rb")
        f.close()
        return f.closed, f.read()
    both.run(body, setup=tree, fails=ValueError)


def test_close_closes_descriptor(both):
    def body(osx):
        f = osx.io.open("f", "rb")
        fd = f.fileno()
        f.close()
        osx.fstat(fd)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_flush_makes_data_visible(both):
    def body(osx):
        with osx.io.open("new", "wb") as f:
            f.write(b"buffered")
            before = get(osx, "new")
            f.flush()
            return before, get(osx, "new")
    assert both.run(body) == (b"", b"buffered")


def test_large_buffered_write(both):
    def body(osx):
        data = bytes(range(256)) * 4096
        with osx.io.open("big", "wb") as f:
            for i in range(0, len(data), 1000):
                f.write(data[i:i + 1000])
        with osx.io.open("big", "rb") as f:
            return f.read() == data, osx.stat("big")
    assert both.run(body)[0] is True


@pytest.mark.parametrize("mode", ["r", "rb", "r+", "rb+", "w", "wb", "a", "ab"])
def test_fdopen(both, mode):
    flags = {"r": "O_RDONLY", "w": "O_WRONLY", "a": "O_WRONLY"}[mode[0]]

    def body(osx):
        fd = osx.open("f", getattr(osx, "O_RDWR" if "+" in mode else flags) |
                      (osx.O_APPEND if mode[0] == "a" else 0))
        with osx.fdopen(fd, mode) as f:
            out = [kinds(f), int(f.fileno()) == int(fd)]
            if f.readable():
                out.append(f.read(5))
            if f.writable():
                out.append(f.write(b"Z" if "b" in mode else "Z"))
        return out, get(osx, "f")
    both.run(body, setup=tree)


def test_fdopen_closefd_false_keeps_descriptor(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        with osx.fdopen(fd, "rb", buffering=0, closefd=False) as f:
            head = f.read(5)
        return head, osx.read(fd, 3)
    assert both.run(body, setup=tree) == (b"hello", b" wo")


def test_fdopen_of_closed_descriptor(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.close(fd)
        osx.fdopen(fd, "rb")
    both.run(body, setup=tree, fails=errno.EBADF)


def test_fdopen_write_mode_on_readonly_descriptor_fails_on_write(both):
    def body(osx):
        with osx.fdopen(osx.open("f", osx.O_RDONLY), "wb", buffering=0) as f:
            f.write(b"x")
    both.run(body, setup=tree, fails=errno.EBADF)


def test_fdopen_directory(both):
    both.run(lambda osx: osx.fdopen(osx.open("d", osx.O_RDONLY), "rb"), setup=tree,
             fails=errno.EISDIR)


def test_open_pathlike_and_bytes_names(both):
    import pathlib

    def body(osx):
        with osx.io.open(pathlib.PurePosixPath("d") / "g", "rb") as f:
            a = f.read()
        with osx.io.open(b"d/g", "rb") as f:
            return a, f.read(), f.name
    assert both.run(body, setup=tree) == (b"in d", b"in d", b"d/g")


def test_open_descriptor_number(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        with osx.io.open(fd, "rb") as f:
            return f.read(5)
    assert both.run(body, setup=tree) == b"hello"


def test_open_x_on_existing(both):
    both.run(lambda osx: osx.io.open("f", "x"), setup=tree, fails=errno.EEXIST)


def test_open_missing(both):
    both.run(lambda osx: osx.io.open("missing", "rb"), setup=tree, fails=errno.ENOENT)


def test_open_directory_for_reading(both):
    both.run(lambda osx: osx.io.open("d", "rb"), setup=tree, fails=errno.EISDIR)
