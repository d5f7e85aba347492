"""stat, lstat, fstat and access: fields, symlink handling, time rules, errors."""

import errno
import os

import pytest

from tests.api.conftest import ANY
from tests.api.tree import NAMES, put, tree

OLD = 1_000_000_000 * 10**9  # 2001-09-09, older than any relatime window
PRESENT = {"f", "e", "d", "ed", "d/g", "d/sub", ".", "d/"}
TARGETS = [*NAMES, "missing", "d/g", "d/sub", "f/x", "nodir/x", "ld/g", "d/", "f/", "ld/", "."]


def may_fail(path):
    """Plain files and directories must stat; the odd paths may fail as Linux decides."""
    return None if path in PRESENT else ANY


@pytest.mark.parametrize("path", TARGETS)
def test_stat(both, path):
    both.run(lambda osx: osx.stat(path), setup=tree, fails=may_fail(path))


@pytest.mark.parametrize("path", TARGETS)
def test_lstat(both, path):
    both.run(lambda osx: osx.lstat(path), setup=tree, fails=may_fail(path))


@pytest.mark.parametrize("path", TARGETS)
def test_stat_no_follow_is_lstat(both, path):
    both.run(lambda osx: osx.stat(path, follow_symlinks=False), setup=tree,
             fails=may_fail(path))


@pytest.mark.parametrize("path", ["f", "e", "d", "ls", "ld"])
def test_fstat_matches_stat(both, path):
    def body(osx):
        fd = osx.open(path, osx.O_RDONLY)
        a, b = osx.fstat(fd), osx.stat(path)
        return a, a.st_ino == b.st_ino and a.st_dev == b.st_dev
    assert both.run(body, setup=tree)[1] is True


def test_stat_accepts_a_descriptor(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        return osx.stat(fd)
    both.run(body, setup=tree)


def test_fstat_closed_descriptor(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.close(fd)
        osx.fstat(fd)
    both.run(body, setup=tree, fails=errno.EBADF)


def test_stat_dir_fd(both):
    def body(osx):
        dfd = osx.open("d", osx.O_RDONLY)
        return osx.stat("g", dir_fd=dfd), osx.stat("sub", dir_fd=dfd)
    both.run(body, setup=tree)


def test_stat_bytes_path_error(both):
    both.run(lambda osx: osx.stat(b"missing"), fails=errno.ENOENT)


def test_symlink_size_is_target_length(both):
    def body(osx):
        osx.symlink("a" * 300, "long")
        return osx.lstat("long").st_size
    assert both.run(body) == 300


def test_inode_numbers_distinct_and_stable(both):
    def body(osx):
        inos = [osx.lstat(n).st_ino for n in ("f", "e", "d", "ls", "d/g")]
        return len(set(inos)), osx.stat("ls").st_ino == inos[0], osx.stat("f").st_ino == inos[0]
    assert both.run(body, setup=tree) == (5, True, True)


def test_st_dev_same_across_files(both):
    both.run(lambda osx: osx.stat("f").st_dev == osx.stat("d/g").st_dev == osx.stat(".").st_dev,
             setup=tree)


def test_blocks_cover_size(both):
    def body(osx):
        put(osx, "five", b"5" * 5000)
        st = osx.stat("five")
        return st.st_blocks * 512 >= st.st_size, st.st_blksize > 0
    assert both.run(body) == (True, True)


def test_stat_result_float_and_ns_agree(both):
    def body(osx):
        put(osx, "t")
        osx.utime("t", ns=(1_500_000_000_250_000_000, 1_600_000_000_500_000_000))
        st = osx.stat("t")
        return st.st_atime, st.st_mtime, st.st_atime_ns, st.st_mtime_ns, st[8], st[7]
    assert both.run(body)[:2] == (1_500_000_000.25, 1_600_000_000.5)


def test_new_file_times_equal(both):
    def body(osx):
        osx.close(osx.open("t", osx.O_WRONLY | osx.O_CREAT, 0o644))  # no chmod: its ctime may fall a tick later
        st = osx.stat("t")
        return st.st_mtime_ns == st.st_ctime_ns, st.st_mtime_ns > OLD
    both.run(body)


def aged(osx, path="f"):
    osx.utime(path, ns=(OLD, OLD))
    return osx.stat(path)


def changed(before, after):
    return {"atime": after.st_atime_ns != before.st_atime_ns,
            "mtime": after.st_mtime_ns != before.st_mtime_ns,
            "ctime": after.st_ctime_ns != before.st_ctime_ns}


def tick(osx, since: int) -> None:
    """Wait until the file system's clock is past ``since`` (a ctime it gave), by touching a
    probe file until its ctime moves on: an operation after this that changes a ctime cannot
    leave it equal to ``since`` (file times come from a coarse clock, a few ms per tick)."""
    if not osx.path.exists("tick"):
        put(osx, "tick")
    while osx.stat("tick").st_ctime_ns <= since:
        osx.chmod("tick", 0o644)


def time_rule(op, path="f"):
    def body(osx):
        tick(osx, 0)  # the probe exists before the clock is read
        before = aged(osx, path)
        tick(osx, before.st_ctime_ns)
        op(osx)
        return changed(before, osx.lstat(path))
    return body


RULES = {
    "write": lambda osx: osx.pwrite(osx.open("f", osx.O_WRONLY), b"x", 0),
    "read": lambda osx: osx.read(osx.open("f", osx.O_RDONLY), 4),
    "read nothing": lambda osx: osx.read(osx.open("f", osx.O_RDONLY), 0),
    "open only": lambda osx: osx.open("f", osx.O_RDWR),
    "truncate": lambda osx: osx.truncate("f", 3),
    "truncate same size": lambda osx: osx.truncate("f", 12),
    "ftruncate": lambda osx: osx.ftruncate(osx.open("f", osx.O_WRONLY), 0),
    "O_TRUNC": lambda osx: osx.open("f", osx.O_WRONLY | osx.O_TRUNC),
    "chmod": lambda osx: osx.chmod("f", 0o600),
    "chown": lambda osx: osx.chown("f", 5, 6),
    "link": lambda osx: osx.link("f", "f2"),
    "rename it": lambda osx: osx.rename("ls", "ls2"),
    "setxattr": lambda osx: osx.setxattr("f", "user.t", b"1"),
    "stat": lambda osx: osx.stat("f"),
}


@pytest.mark.parametrize("rule", RULES)
def test_time_rules_on_file(both, rule):
    both.run(time_rule(RULES[rule]), setup=tree)


DIR_RULES = {
    "create in": lambda osx: put(osx, "d/new"),
    "mkdir in": lambda osx: osx.mkdir("d/newdir"),
    "unlink in": lambda osx: osx.unlink("d/g"),
    "rmdir in": lambda osx: osx.rmdir("d/sub"),
    "rename within": lambda osx: osx.rename("d/g", "d/h"),
    "rename out of": lambda osx: osx.rename("d/g", "h"),
    "symlink in": lambda osx: osx.symlink("x", "d/l"),
    "listdir": lambda osx: osx.listdir("d"),
    "write a child": lambda osx: osx.pwrite(osx.open("d/g", osx.O_WRONLY), b"x", 0),
}


@pytest.mark.parametrize("rule", DIR_RULES)
def test_time_rules_on_directory(both, rule):
    both.run(time_rule(DIR_RULES[rule], "d"), setup=tree)


def test_mtime_not_before_the_write(both):
    def body(osx):
        put(osx, "a")
        first = osx.stat("a").st_mtime_ns
        put(osx, "b", b"later")
        return osx.stat("b").st_mtime_ns >= first
    assert both.run(body) is True


@pytest.mark.parametrize("mode", ["F_OK", "R_OK", "W_OK", "X_OK", "R_OK|W_OK"])
@pytest.mark.parametrize("path", ["f", "d", "ls", "dangling", "missing", "x"])
def test_access_as_root(both, mode, path):
    def setup(osx):
        tree(osx)
        put(osx, "x", b"#!", 0o744)
    flags = 0
    for m in mode.split("|"):
        flags |= getattr(os, m)
    both.run(lambda osx: osx.access(path, flags), setup=setup)


def test_access_no_x_bits_denies_root(both):
    assert both.run(lambda osx: osx.access("f", osx.X_OK), setup=tree) is False


def test_access_not_following_symlink(both):
    both.run(lambda osx: osx.access("dangling", osx.F_OK, follow_symlinks=False), setup=tree)


def test_access_effective_ids(both):
    both.run(lambda osx: osx.access("f", osx.R_OK, effective_ids=True), setup=tree)


def test_access_dir_fd(both):
    def body(osx):
        dfd = osx.open("d", osx.O_RDONLY)
        return osx.access("g", osx.R_OK, dir_fd=dfd), osx.access("nope", osx.F_OK, dir_fd=dfd)
    assert both.run(body, setup=tree) == (True, False)


def test_access_through_file_is_false(both):
    assert both.run(lambda osx: osx.access("f/x", osx.F_OK), setup=tree) is False
