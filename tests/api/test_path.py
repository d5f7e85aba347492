"""osx.path: the os.path functions that touch the file system, bound to each side."""

import errno
import os

import pytest

from tests.api.conftest import ANY
from tests.api.tree import NAMES, tree

PATHS = [*NAMES, "missing", "d/g", "d/sub", "f/x", "ld/g", "d/", "f/", ".", ""]
PREDICATES = ["exists", "lexists", "isfile", "isdir", "islink"]


@pytest.mark.parametrize("path", PATHS)
def test_predicates(both, path):
    both.run(lambda osx: {p: getattr(osx.path, p)(path) for p in PREDICATES}, setup=tree)


@pytest.mark.parametrize("path", ["f", "d", "ld", "d/sub", "missing"])
def test_ismount_below_the_root(both, path):
    """Only the roots differ (a volume's root is a mount point, a temporary directory is not)."""
    assert both.run(lambda osx: osx.path.ismount(path), setup=tree) is False


@pytest.mark.parametrize("path", ["f", "e", "ls", "d/g", "ld/g"])
def test_getsize(both, path):
    both.run(lambda osx: osx.path.getsize(path), setup=tree)


@pytest.mark.parametrize("fn", ["getsize", "getmtime", "getatime", "getctime"])
@pytest.mark.parametrize("path", ["missing", "dangling", "f/x"])
def test_getters_on_bad_paths(both, fn, path):
    both.run(lambda osx: getattr(osx.path, fn)(path), setup=tree, fails=ANY)


def test_getmtime_and_getatime_follow_utime(both):
    def body(osx):
        osx.utime("f", ns=(1_250_000_000_000_000_000, 1_500_000_000_000_000_000))
        return osx.path.getatime("f"), osx.path.getmtime("f"), osx.path.getmtime("ls")
    assert both.run(body, setup=tree) == (1_250_000_000.0, 1_500_000_000.0, 1_500_000_000.0)


def test_getctime_is_recent(both):
    both.run(lambda osx: osx.path.getctime("f") > 1_600_000_000, setup=tree)


@pytest.mark.parametrize("a,b", [("f", "f"), ("f", "ls"), ("f", "./f"), ("d", "ld"), ("f", "e"),
                                 ("d/sub/..", "d"), ("ld/g", "d/g")])
def test_samefile(both, a, b):
    both.run(lambda osx: osx.path.samefile(a, b), setup=tree)


def test_samefile_hard_link(both):
    def body(osx):
        osx.link("f", "hard")
        return osx.path.samefile("f", "hard")
    assert both.run(body, setup=tree) is True


def test_samefile_missing(both):
    both.run(lambda osx: osx.path.samefile("f", "missing"), setup=tree, fails=errno.ENOENT)


def test_sameopenfile(both):
    def body(osx):
        a = osx.open("f", osx.O_RDONLY)
        b = osx.open("ls", osx.O_RDONLY)
        c = osx.open("e", osx.O_RDONLY)
        return osx.path.sameopenfile(a, b), osx.path.sameopenfile(a, c)
    assert both.run(body, setup=tree) == (True, False)


def test_samestat(both):
    def body(osx):
        return osx.path.samestat(osx.stat("f"), osx.stat("ls")), \
            osx.path.samestat(osx.stat("f"), osx.stat("e"))
    assert both.run(body, setup=tree) == (True, False)


@pytest.mark.parametrize("path", ["f", "ls", "ld/g", "ld/sub/../g", "dangling", "missing/x",
                                  "d/sub/..", ".", "ld", "loop", "./ld/./sub/",
                                  "loop/../ls", "loop/x/../ld", "a/../ls", "a/x"])
def test_realpath(both, path):
    """At a symbolic link loop (``loop``, or ``a`` -> ``b`` -> ``a``) posixpath stops resolving:
    what follows is kept as written (``loop/../ls`` is ``ls``, not ``f``)."""
    def body(osx):
        osx.symlink("b", "a")
        osx.symlink("a", "b")
        root = osx.getcwd()
        real = osx.path.realpath(path)
        return osx.path.isabs(real), osx.path.relpath(real, root)
    both.run(body, setup=tree)


def test_realpath_bytes(both):
    def body(osx):
        root = osx.getcwdb()
        return osx.path.relpath(osx.path.realpath(b"ld/g"), root)
    assert both.run(body, setup=tree) == b"d/g"


@pytest.mark.parametrize("path", ["f", "d/../x", "./a/b", ""])
def test_abspath_is_against_cwd(both, path):
    def body(osx):
        root = osx.getcwd()
        osx.chdir("d")
        return osx.path.relpath(osx.path.abspath(path), root)
    both.run(body, setup=tree)


def test_relpath_default_start_is_cwd(both):
    def body(osx):
        osx.chdir("d")
        return osx.path.relpath(osx.path.join(osx.getcwd(), "sub", "x"))
    assert both.run(body, setup=tree) == "sub/x"


def test_pure_functions(both):
    def body(osx):
        p = osx.path
        return (p.join("a", "b", "c"), p.split("a/b/c"), p.splitext("x.tar.gz"), p.basename("/a/b"),
                p.dirname("/a/b"), p.normpath("a//b/../c/."), p.isabs("/x"), p.commonpath(["/a/b", "/a/c"]),
                p.sep, p.expanduser("nouser"), p.normcase("AbC"))
    both.run(body)


def test_walk_on_path_module_uses_fs(both):
    def body(osx):
        return osx.path.exists(osx.path.join("d", "g")), osx.path.isdir(osx.path.dirname("d/g"))
    assert both.run(body, setup=tree) == (True, True)


def test_pure_functions_are_os_path_objects(vol):
    for name in ("join", "split", "splitext", "basename", "dirname", "normpath", "isabs",
                 "commonpath", "commonprefix", "normcase", "splitdrive", "sep", "curdir", "pardir"):
        assert getattr(vol.path, name) is getattr(os.path, name), name


def test_module_path_binds_to_default_volume():
    import zcsdfs
    import zcsdfs.path

    assert zcsdfs.path.join is os.path.join
    assert zcsdfs.path.exists is not os.path.exists
