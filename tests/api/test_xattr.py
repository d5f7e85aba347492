"""getxattr, setxattr, listxattr, removexattr in the user namespace.

The real side is ext4 here, which supports user.* attributes, so these run on
both sides.
"""

import errno
import os

import pytest

from tests.api.conftest import ANY
from tests.api.tree import NAMES, tree


def attrs(osx, path, follow_symlinks=True):
    return sorted(osx.listxattr(path, follow_symlinks=follow_symlinks))


@pytest.mark.parametrize("path", [*NAMES, "missing", "f/x"])
def test_set_get_list_on_path_kinds(both, path):
    def body(osx):
        osx.setxattr(path, "user.k", b"v")
        return osx.getxattr(path, "user.k"), attrs(osx, path)
    both.run(body, setup=tree, fails=None if path in ("f", "e", "d", "ed", "ls", "ld") else ANY)


@pytest.mark.parametrize("path", ["f", "d", "ls", "dangling"])
def test_no_follow_on_symlinks_is_eperm_for_user_namespace(both, path):
    def body(osx):
        osx.setxattr(path, "user.k", b"v", follow_symlinks=False)
        return attrs(osx, path, follow_symlinks=False)
    both.run(body, setup=tree, fails=None if path in ("f", "d") else errno.EPERM)


@pytest.mark.parametrize("value", [b"", b"x", b"\0\1\2", b"v" * 4000, bytearray(b"ba")])
def test_values_round_trip(both, value):
    def body(osx):
        osx.setxattr("f", "user.v", value)
        return osx.getxattr("f", "user.v")
    both.run(body, setup=tree)


def test_name_as_bytes(both):
    def body(osx):
        osx.setxattr("f", b"user.b", b"1")
        return osx.getxattr("f", b"user.b"), attrs(osx, "f")
    assert both.run(body, setup=tree) == (b"1", ["user.b"])


def test_list_empty(both):
    assert both.run(lambda osx: attrs(osx, "f"), setup=tree) == []


def test_list_several(both):
    def body(osx):
        for n in ("user.c", "user.a", "user.b"):
            osx.setxattr("f", n, n.encode())
        return attrs(osx, "f")
    assert both.run(body, setup=tree) == ["user.a", "user.b", "user.c"]


def test_list_default_path_is_cwd(both):
    def body(osx):
        osx.setxattr(".", "user.here", b"1")
        return sorted(osx.listxattr())
    assert both.run(body, setup=tree) == ["user.here"]


def test_overwrite(both):
    def body(osx):
        osx.setxattr("f", "user.k", b"long value")
        osx.setxattr("f", "user.k", b"short")
        return osx.getxattr("f", "user.k")
    assert both.run(body, setup=tree) == b"short"


def test_create_flag_on_existing(both):
    def body(osx):
        osx.setxattr("f", "user.k", b"1")
        osx.setxattr("f", "user.k", b"2", os.XATTR_CREATE)
    both.run(body, setup=tree, fails=errno.EEXIST)


def test_create_flag_on_new(both):
    def body(osx):
        osx.setxattr("f", "user.k", b"2", osx.XATTR_CREATE)
        return osx.getxattr("f", "user.k")
    both.run(body, setup=tree)


def test_replace_flag_on_missing(both):
    both.run(lambda osx: osx.setxattr("f", "user.k", b"2", os.XATTR_REPLACE), setup=tree,
             fails=errno.ENODATA)


def test_replace_flag_on_existing(both):
    def body(osx):
        osx.setxattr("f", "user.k", b"1")
        osx.setxattr("f", "user.k", b"2", osx.XATTR_REPLACE)
        return osx.getxattr("f", "user.k")
    assert both.run(body, setup=tree) == b"2"


def test_both_flags(both):
    both.run(lambda osx: osx.setxattr("f", "user.k", b"2", os.XATTR_CREATE | os.XATTR_REPLACE),
             setup=tree, fails=ANY)


def test_get_missing(both):
    both.run(lambda osx: osx.getxattr("f", "user.nope"), setup=tree, fails=errno.ENODATA)


def test_remove(both):
    def body(osx):
        osx.setxattr("f", "user.a", b"1")
        osx.setxattr("f", "user.b", b"2")
        osx.removexattr("f", "user.a")
        return attrs(osx, "f")
    assert both.run(body, setup=tree) == ["user.b"]


def test_remove_missing(both):
    both.run(lambda osx: osx.removexattr("f", "user.nope"), setup=tree, fails=errno.ENODATA)


@pytest.mark.parametrize("name", ["nonamespace", "bogus.x", "user.", "", "user." + "n" * 251,
                                  "user." + "n" * 250])
def test_names(both, name):
    def body(osx):
        osx.setxattr("f", name, b"1")
        return attrs(osx, "f")
    both.run(body, setup=tree, fails=ANY)


def test_value_too_large(both):
    both.run(lambda osx: osx.setxattr("f", "user.big", b"v" * 65537), setup=tree, fails=ANY)


@pytest.mark.parametrize("op", ["get", "set", "list", "remove"])
def test_on_missing_file(both, op):
    calls = {"get": lambda osx: osx.getxattr("missing", "user.k"),
             "set": lambda osx: osx.setxattr("missing", "user.k", b""),
             "list": lambda osx: osx.listxattr("missing"),
             "remove": lambda osx: osx.removexattr("missing", "user.k")}
    both.run(calls[op], setup=tree, fails=errno.ENOENT)


@pytest.mark.parametrize("op", ["get", "set", "list", "remove"])
def test_on_descriptor(both, op):
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.setxattr(fd, "user.k", b"fd")
        return {"get": lambda: osx.getxattr(fd, "user.k"),
                "set": lambda: osx.setxattr(fd, "user.k", b"again"),
                "list": lambda: sorted(osx.listxattr(fd)),
                "remove": lambda: osx.removexattr(fd, "user.k")}[op](), attrs(osx, "f")
    both.run(body, setup=tree)


def test_follows_symlink_by_default(both):
    def body(osx):
        osx.setxattr("ls", "user.k", b"via link")
        return osx.getxattr("f", "user.k")
    assert both.run(body, setup=tree) == b"via link"


def test_survive_rename_and_link(both):
    def body(osx):
        osx.setxattr("f", "user.k", b"1")
        osx.rename("f", "g")
        osx.link("g", "h")
        return osx.getxattr("h", "user.k")
    assert both.run(body, setup=tree) == b"1"


def test_gone_with_file_replaced(both):
    def body(osx):
        osx.setxattr("f", "user.k", b"1")
        osx.unlink("f")
        osx.close(osx.open("f", osx.O_CREAT | osx.O_WRONLY))
        return attrs(osx, "f")
    assert both.run(body, setup=tree) == []
