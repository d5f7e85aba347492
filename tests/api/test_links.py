"""link, symlink, readlink, unlink, remove; symlink resolution and the 40-link limit."""

import errno

import pytest

from tests.api.conftest import ANY
from tests.api.tree import HELLO, NAMES, get, listing, put, tree

SOURCES = [*NAMES, "missing", "f/x", "d/g"]


@pytest.mark.parametrize("src", SOURCES)
def test_link_sources(both, src):
    def body(osx):
        osx.link(src, "new")
        return osx.lstat("new"), osx.lstat(src).st_nlink, listing(osx)
    both.run(body, setup=tree, fails=None if src in ("f", "e", "ls", "d/g") else ANY)


@pytest.mark.parametrize("dst", [*NAMES, "d/new", "nodir/new", "f/new", "d/", "new/"])
def test_link_destinations(both, dst):
    def body(osx):
        osx.link("f", dst)
        return osx.stat("f").st_nlink, listing(osx), listing(osx, "d")
    both.run(body, setup=tree, fails=None if dst == "d/new" else ANY)


def test_link_shares_data_and_counts(both):
    def body(osx):
        osx.link("f", "f2")
        put(osx, "f2", b"changed")
        osx.unlink("f")
        return get(osx, "f2"), osx.stat("f2").st_nlink
    assert both.run(body, setup=tree) == (b"changed", 1)


def test_link_default_does_not_follow_on_linux(both):
    """Python 3.11 calls link(2) here, which links the symlink itself, whatever follow_symlinks says."""
    def body(osx):
        osx.link("ls", "hard", follow_symlinks=True)
        return osx.lstat("hard"), osx.stat("f").st_nlink
    assert both.run(body, setup=tree)[1] == 1


def test_link_no_follow_links_the_symlink(both):
    def body(osx):
        osx.link("ls", "hard", follow_symlinks=False)
        return osx.lstat("hard"), osx.lstat("ls").st_nlink, osx.readlink("hard")
    both.run(body, setup=tree)


def test_link_dir_fds(both):
    def body(osx):
        d = osx.open("d", osx.O_RDONLY)
        e = osx.open("ed", osx.O_RDONLY)
        osx.link("g", "g2", src_dir_fd=d, dst_dir_fd=e)
        return listing(osx, "ed"), get(osx, "ed/g2")
    assert both.run(body, setup=tree) == (["g2"], b"in d")


@pytest.mark.parametrize("target", ["f", "d", "nowhere", "../up", "/abs/path", "a" * 1000, "ünï"])
def test_symlink_targets(both, target):
    def body(osx):
        osx.symlink(target, "new")
        return osx.lstat("new"), osx.readlink("new"), osx.readlink(b"new")
    both.run(body, setup=tree)


@pytest.mark.parametrize("dst", [*NAMES, "d/new", "nodir/new", "f/new", "new/"])
def test_symlink_destinations(both, dst):
    def body(osx):
        osx.symlink("x", dst)
        return osx.readlink(dst), listing(osx)
    both.run(body, setup=tree, fails=None if dst == "d/new" else ANY)


def test_symlink_empty_target(both):
    both.run(lambda osx: osx.symlink("", "new"), fails=errno.ENOENT)


def test_symlink_target_too_long(both):
    both.run(lambda osx: osx.symlink("a" * 4096, "new"), fails=errno.ENAMETOOLONG)


def test_symlink_dir_fd(both):
    def body(osx):
        osx.symlink("g", "lg", dir_fd=osx.open("d", osx.O_RDONLY))
        return get(osx, "d/lg")
    assert both.run(body, setup=tree) == b"in d"


def test_symlink_is_relative_to_its_directory(both):
    def body(osx):
        osx.symlink("../f", "d/up")
        return get(osx, "d/up")
    assert both.run(body, setup=tree) == HELLO


def test_symlink_mode_is_0777(both):
    both.run(lambda osx: (osx.symlink("f", "new"), osx.lstat("new"))[1], setup=tree)


@pytest.mark.parametrize("path", [*NAMES, "missing", "f/x", "ld/g", "ls/"])
def test_readlink(both, path):
    both.run(lambda osx: osx.readlink(path), setup=tree,
             fails=None if path in ("ls", "ld", "dangling", "loop") else ANY)


def test_readlink_dir_fd(both):
    def body(osx):
        osx.symlink("target", "d/l")
        return osx.readlink("l", dir_fd=osx.open("d", osx.O_RDONLY))
    assert both.run(body, setup=tree) == "target"


def test_readlink_pathlike_returns_str(both):
    import pathlib
    assert both.run(lambda osx: osx.readlink(pathlib.PurePosixPath("ls")), setup=tree) == "f"


@pytest.mark.parametrize("path", [*NAMES, "missing", "f/x", "d/g", "ls/", "d/"])
def test_unlink(both, path):
    def body(osx):
        osx.unlink(path)
        return listing(osx), listing(osx, "d")
    both.run(body, setup=tree, fails=None if path in ("f", "e", "ls", "ld", "dangling", "loop", "d/g") else ANY)


def test_unlink_symlink_keeps_target(both):
    def body(osx):
        osx.unlink("ls")
        return get(osx, "f"), osx.stat("f").st_nlink
    assert both.run(body, setup=tree) == (HELLO, 1)


def test_unlink_lowers_link_count(both):
    def body(osx):
        osx.link("f", "f2")
        osx.link("f", "f3")
        osx.unlink("f2")
        return osx.stat("f").st_nlink
    assert both.run(body, setup=tree) == 2


def test_unlink_dir_fd(both):
    def body(osx):
        osx.unlink("g", dir_fd=osx.open("d", osx.O_RDONLY))
        return listing(osx, "d")
    assert both.run(body, setup=tree) == ["sub"]


def test_remove_is_unlink(both):
    def body(osx):
        osx.remove("f")
        return listing(osx)
    both.run(body, setup=tree)


def test_remove_directory(both):
    both.run(lambda osx: osx.remove("d"), setup=tree, fails=errno.EISDIR)


def test_unlinked_open_file_frees_name_for_reuse(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.unlink("f")
        put(osx, "f", b"new")
        return osx.read(fd, 100), get(osx, "f"), osx.fstat(fd).st_nlink
    assert both.run(body, setup=tree) == (HELLO, b"new", 0)


def chain(osx, n):
    """l1 -> f, l2 -> l1, ..., ln -> l(n-1)."""
    put(osx, "f", b"end")
    prev = "f"
    for i in range(1, n + 1):
        osx.symlink(prev, f"l{i}")
        prev = f"l{i}"


@pytest.mark.parametrize("n,fails", [(39, None), (40, None), (41, errno.ELOOP)])
def test_symlink_chain_limit(both, n, fails):
    def body(osx):
        chain(osx, n)
        return get(osx, f"l{n}")
    both.run(body, fails=fails)


def test_symlink_loop_in_middle_of_path(both):
    both.run(lambda osx: osx.stat("loop/x"), setup=tree, fails=errno.ELOOP)


def test_mutual_symlink_loop(both):
    def body(osx):
        osx.symlink("b", "a")
        osx.symlink("a", "b")
        osx.stat("a")
    both.run(body, fails=errno.ELOOP)


def test_symlink_to_dotdot_chain(both):
    def body(osx):
        osx.symlink("..", "d/sub/up")
        return listing(osx, "d/sub/up"), listing(osx, "d/sub/up/sub/up/sub")
    both.run(body, setup=tree)


def test_symlink_with_trailing_slash_target(both):
    def body(osx):
        osx.symlink("d/", "ldslash")
        return listing(osx, "ldslash"), osx.stat("ldslash")
    both.run(body, setup=tree)


def test_trailing_slash_on_symlink_to_file(both):
    both.run(lambda osx: osx.stat("ls/"), setup=tree, fails=errno.ENOTDIR)


def test_lstat_trailing_slash_follows_symlink_to_dir(both):
    both.run(lambda osx: osx.lstat("ld/"), setup=tree)


#: Calls whose last component is a name to create or remove: Linux looks up only its parent, so a
#: trailing slash after a symbolic link does not follow the link (``rmdir("ld/")`` is ENOTDIR and
#: leaves ``d`` alone; ``mkdir("dangling/")`` is EEXIST and creates no target).
NAME_CALLS = {
    "rmdir": lambda osx, p: osx.rmdir(p),
    "unlink": lambda osx, p: osx.unlink(p),
    "mkdir": lambda osx, p: osx.mkdir(p),
    "mkfifo": lambda osx, p: osx.mkfifo(p),
    "symlink": lambda osx, p: osx.symlink("t", p),
    "link to": lambda osx, p: osx.link("f", p),
    "rename from": lambda osx, p: osx.rename(p, "moved"),
    "rename file to": lambda osx, p: osx.rename("f", p),
    "rename dir to": lambda osx, p: osx.rename("ed", p),
}


def safe_listing(osx, path):
    try:
        return listing(osx, path)
    except OSError as e:
        return errno.errorcode[e.errno]


@pytest.mark.parametrize("path", ["ld/", "ls/", "dangling/", "loop/", "ld//"])
@pytest.mark.parametrize("call", NAME_CALLS)
def test_trailing_slash_after_a_link_does_not_follow_it(both, call, path):
    def body(osx):
        try:
            NAME_CALLS[call](osx, path)
            outcome = "ok"
        except OSError as e:
            outcome = errno.errorcode[e.errno]
        return outcome, listing(osx), safe_listing(osx, "d"), safe_listing(osx, "nowhere")
    both.run(body, setup=tree)
