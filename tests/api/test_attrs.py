"""chmod, fchmod, chown, fchown, lchown, utime, truncate, ftruncate: effects and errors."""

import errno

import pytest

from tests.api.conftest import ANY
from tests.api.tree import HELLO, NAMES, get, tree

PATHS = [*NAMES, "missing", "f/x", "d/g"]


@pytest.mark.parametrize("mode", [0o000, 0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o7777, 0o100644])
@pytest.mark.parametrize("path", ["f", "d", "ls"])
def test_chmod_modes(both, path, mode):
    def body(osx):
        osx.chmod(path, mode)
        return osx.stat(path), osx.lstat(path)
    both.run(body, setup=tree)


@pytest.mark.parametrize("path", PATHS)
def test_chmod_paths(both, path):
    both.run(lambda osx: (osx.chmod(path, 0o600), osx.stat(path)), setup=tree, fails=ANY)


def test_chmod_no_follow_is_unsupported_on_linux(both):
    both.run(lambda osx: osx.chmod("ls", 0o600, follow_symlinks=False), setup=tree,
             fails=NotImplementedError)


def test_chmod_dir_fd(both):
    def body(osx):
        osx.chmod("g", 0o400, dir_fd=osx.open("d", osx.O_RDONLY))
        return osx.stat("d/g")
    both.run(body, setup=tree)


def test_chmod_a_descriptor(both):
    def body(osx):
        osx.chmod(osx.open("f", osx.O_RDONLY), 0o711)
        return osx.stat("f")
    both.run(body, setup=tree)


@pytest.mark.parametrize("flags", ["O_RDONLY", "O_WRONLY"])
def test_fchmod(both, flags):
    def body(osx):
        fd = osx.open("f", getattr(osx, flags))
        osx.fchmod(fd, 0o604)
        return osx.fstat(fd), osx.stat("f")
    both.run(body, setup=tree)


def test_fchmod_directory(both):
    def body(osx):
        osx.fchmod(osx.open("d", osx.O_RDONLY), 0o700)
        return osx.stat("d")
    both.run(body, setup=tree)


def test_fchmod_closed(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.close(fd)
        osx.fchmod(fd, 0o600)
    both.run(body, setup=tree, fails=errno.EBADF)


@pytest.mark.parametrize("ids", [(1000, 1000), (0, 1000), (1000, -1), (-1, 77), (-1, -1), (65534, 65534)])
@pytest.mark.parametrize("path", ["f", "d", "ls", "dangling"])
def test_chown(both, path, ids):
    def body(osx):
        osx.chown(path, *ids)
        return osx.stat(path), osx.lstat(path)
    both.run(body, setup=tree, fails=None if path != "dangling" else errno.ENOENT)


@pytest.mark.parametrize("path", ["f", "d", "ls", "dangling", "loop", "missing"])
def test_lchown(both, path):
    def body(osx):
        osx.lchown(path, 1234, 5678)
        return osx.lstat(path)
    both.run(body, setup=tree, fails=errno.ENOENT if path == "missing" else None)


def test_chown_no_follow(both):
    def body(osx):
        osx.chown("ls", 7, 8, follow_symlinks=False)
        return osx.lstat("ls"), osx.stat("ls")
    both.run(body, setup=tree)


def test_chown_clears_setuid_and_setgid(both):
    def body(osx):
        osx.chmod("f", 0o6755)
        osx.chown("f", 1000, 1000)
        return osx.stat("f")
    both.run(body, setup=tree)


@pytest.mark.parametrize("flags", ["O_RDONLY", "O_WRONLY"])
def test_fchown(both, flags):
    def body(osx):
        fd = osx.open("f", getattr(osx, flags))
        osx.fchown(fd, 42, 43)
        return osx.fstat(fd)
    both.run(body, setup=tree)


def test_fchown_closed(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.close(fd)
        osx.fchown(fd, 1, 1)
    both.run(body, setup=tree, fails=errno.EBADF)


def times(st):
    return st.st_atime_ns, st.st_mtime_ns


@pytest.mark.parametrize("ns", [(0, 0), (1, 2), (10**18 + 123, 10**18 + 456), (-10**9, 5 * 10**17)])
def test_utime_ns_exact(both, ns):
    def body(osx):
        osx.utime("f", ns=ns)
        return times(osx.stat("f"))
    assert both.run(body, setup=tree) == ns


@pytest.mark.parametrize("secs", [(1.5, 2.25), (1000000000, 1000000001), (0.0, 0.0)])
def test_utime_times_seconds(both, secs):
    def body(osx):
        osx.utime("f", times=secs)
        st = osx.stat("f")
        return times(st), st.st_atime, st.st_mtime
    both.run(body, setup=tree)


def test_utime_none_sets_now(both):
    def body(osx):
        osx.utime("f", ns=(5, 5))
        osx.utime("f")
        a, m = times(osx.stat("f"))
        return a == m, a > 10**18
    assert both.run(body, setup=tree) == (True, True)


def test_utime_follows_symlinks(both):
    def body(osx):
        osx.utime("ls", ns=(7, 8))
        return times(osx.stat("f")), times(osx.lstat("ls")) == (7, 8)
    assert both.run(body, setup=tree) == ((7, 8), False)


def test_utime_no_follow_sets_the_link(both):
    def body(osx):
        osx.utime("ls", ns=(7, 8), follow_symlinks=False)
        return times(osx.lstat("ls")), times(osx.stat("f")) == (7, 8)
    assert both.run(body, setup=tree) == ((7, 8), False)


def test_utime_directory(both):
    def body(osx):
        osx.utime("d", ns=(3, 4))
        return times(osx.stat("d"))
    both.run(body, setup=tree)


def test_utime_descriptor(both):
    def body(osx):
        osx.utime(osx.open("f", osx.O_RDONLY), ns=(11, 12))
        return times(osx.stat("f"))
    assert both.run(body, setup=tree) == (11, 12)


def test_utime_dir_fd(both):
    def body(osx):
        osx.utime("g", ns=(11, 12), dir_fd=osx.open("d", osx.O_RDONLY))
        return times(osx.stat("d/g"))
    assert both.run(body, setup=tree) == (11, 12)


@pytest.mark.parametrize("path", ["missing", "dangling", "f/x", "loop"])
def test_utime_bad_paths(both, path):
    both.run(lambda osx: osx.utime(path, ns=(1, 1)), setup=tree, fails=ANY)


def test_utime_both_times_and_ns_is_valueerror(both):
    both.run(lambda osx: osx.utime("f", (1, 1), ns=(1, 1)), setup=tree, fails=ValueError)


def test_utime_bad_times_is_typeerror(both):
    both.run(lambda osx: osx.utime("f", times=(1,)), setup=tree, fails=TypeError)


def test_utime_changes_ctime_not_below(both):
    def body(osx):
        before = osx.stat("f").st_ctime_ns
        osx.utime("f", ns=(1, 1))
        return osx.stat("f").st_ctime_ns >= before
    assert both.run(body, setup=tree) is True


@pytest.mark.parametrize("size", [0, 1, 5, 12, 13, 4096, 4097, 100000])
def test_truncate_to(both, size):
    def body(osx):
        osx.truncate("f", size)
        content = get(osx, "f")
        return osx.stat("f"), content[:12], content[12:].count(0) == len(content[12:])
    both.run(body, setup=tree)


def test_truncate_then_extend_reads_zeros(both):
    def body(osx):
        osx.truncate("f", 2)
        osx.truncate("f", 8)
        return get(osx, "f")
    assert both.run(body, setup=tree) == b"he" + bytes(6)


def test_truncate_block_boundary_zeroes_tail(both):
    def body(osx):
        fd = osx.open("b", osx.O_RDWR | osx.O_CREAT)
        osx.write(fd, b"q" * 9000)
        osx.ftruncate(fd, 4100)
        osx.ftruncate(fd, 9000)
        content = osx.pread(fd, 9000, 0)
        return content.count(b"q"), content[4099:4101]
    assert both.run(body) == (4100, b"q\0")


@pytest.mark.parametrize("path", ["d", "ls", "missing", "dangling", "f/x", "loop"])
def test_truncate_bad_paths(both, path):
    both.run(lambda osx: (osx.truncate(path, 0), osx.stat("f")), setup=tree, fails=ANY)


def test_truncate_negative(both):
    both.run(lambda osx: osx.truncate("f", -1), setup=tree, fails=errno.EINVAL)


def test_truncate_descriptor(both):
    def body(osx):
        osx.truncate(osx.open("f", osx.O_WRONLY), 4)
        return get(osx, "f")
    assert both.run(body, setup=tree) == b"hell"


def test_ftruncate_keeps_offset(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.read(fd, 10)
        osx.ftruncate(fd, 3)
        return osx.lseek(fd, 0, osx.SEEK_CUR), osx.read(fd, 5), osx.write(fd, b"!"), get(osx, "f")
    assert both.run(body, setup=tree) == (10, b"", 1, b"hel" + bytes(7) + b"!")


def test_ftruncate_readonly_descriptor(both):
    both.run(lambda osx: osx.ftruncate(osx.open("f", osx.O_RDONLY), 0), setup=tree, fails=errno.EINVAL)


def test_ftruncate_directory(both):
    both.run(lambda osx: osx.ftruncate(osx.open("d", osx.O_RDONLY), 0), setup=tree, fails=errno.EINVAL)


def test_ftruncate_negative(both):
    both.run(lambda osx: osx.ftruncate(osx.open("f", osx.O_RDWR), -5), setup=tree, fails=errno.EINVAL)


def test_ftruncate_closed(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.close(fd)
        osx.ftruncate(fd, 0)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_hello_unchanged_by_chmod(both):
    def body(osx):
        osx.chmod("f", 0)
        return get(osx, "f")
    assert both.run(body, setup=tree) == HELLO


@pytest.mark.parametrize("uid, gid", [(3.14, -1), (-1, 2.5), ("0", -1)])
def test_chown_ids_must_be_integers(both, uid, gid):
    both.run(lambda osx: osx.chown("f", uid, gid), setup=tree, fails=TypeError)
