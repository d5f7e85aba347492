"""rename, replace, renames: every pairing of source and destination kinds, and the errors."""

import errno

import pytest

from tests.api.conftest import ANY
from tests.api.tree import HELLO, get, listing, put, tree

KINDS = ["f", "e", "d", "ed", "ls", "ld", "dangling", "missing", "d/g", "d/sub"]


def full_tree(osx):
    """The tree plus a second empty directory, to rename directories over."""
    tree(osx)
    osx.mkdir("ed2")


def snapshot(osx):
    return {p: listing(osx, p) for p in (".", "d")}


@pytest.mark.parametrize("dst", KINDS + ["ed2", "new", "d/new", "nodir/new", "f/new"])
@pytest.mark.parametrize("src", KINDS)
def test_rename_matrix(both, src, dst):
    def body(osx):
        osx.rename(src, dst)
        return snapshot(osx), osx.lstat(dst)
    both.run(body, setup=full_tree, fails=ANY)


def test_rename_file_over_file(both):
    def body(osx):
        osx.rename("f", "e")
        return get(osx, "e"), listing(osx)
    assert both.run(body, setup=tree)[0] == HELLO


def test_rename_dir_over_empty_dir(both):
    def body(osx):
        osx.rename("d", "ed")
        return listing(osx, "ed"), osx.stat(".").st_nlink
    both.run(body, setup=tree)


def test_rename_dir_over_nonempty_dir(both):
    both.run(lambda osx: osx.rename("ed", "d"), setup=tree, fails=errno.ENOTEMPTY)


def test_rename_file_over_dir(both):
    both.run(lambda osx: osx.rename("f", "ed"), setup=tree, fails=errno.EISDIR)


def test_rename_dir_over_file(both):
    both.run(lambda osx: osx.rename("ed", "f"), setup=tree, fails=errno.ENOTDIR)


def test_rename_dir_into_itself(both):
    both.run(lambda osx: osx.rename("d", "d/sub/d"), setup=tree, fails=errno.EINVAL)


def test_rename_dir_onto_own_subdir(both):
    both.run(lambda osx: osx.rename("d", "d/sub"), setup=tree, fails=errno.EINVAL)


def test_rename_subdir_over_ancestor(both):
    both.run(lambda osx: osx.rename("d/sub", "d"), setup=tree, fails=errno.ENOTEMPTY)


def test_rename_missing(both):
    both.run(lambda osx: osx.rename("missing", "x"), setup=tree, fails=errno.ENOENT)


def test_rename_to_missing_parent(both):
    both.run(lambda osx: osx.rename("f", "nodir/x"), setup=tree, fails=errno.ENOENT)


def test_rename_hard_links_of_same_file_is_noop(both):
    def body(osx):
        osx.link("f", "f2")
        osx.rename("f", "f2")
        return listing(osx), osx.stat("f").st_nlink
    both.run(body, setup=tree)


def test_rename_to_itself(both):
    def body(osx):
        osx.rename("d", "d")
        osx.rename("f", "./f")
        return listing(osx)
    both.run(body, setup=tree)


def test_rename_dot(both):
    both.run(lambda osx: osx.rename("d/.", "x"), setup=tree, fails=ANY)


def test_rename_dotdot_target(both):
    both.run(lambda osx: osx.rename("f", "d/.."), setup=tree, fails=ANY)


def test_rename_dir_updates_dotdot(both):
    def body(osx):
        osx.rename("d/sub", "ed/sub")
        return osx.stat("d").st_nlink, osx.stat("ed").st_nlink, listing(osx, "ed/sub/..")
    assert both.run(body, setup=tree) == (2, 3, ["sub"])


def test_rename_symlink_keeps_target_text(both):
    def body(osx):
        osx.rename("ls", "d/ls")
        return osx.readlink("d/ls"), osx.path.exists("d/ls")
    assert both.run(body, setup=tree) == ("f", False)


def test_rename_open_file_keeps_descriptor(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR)
        osx.rename("f", "d/moved")
        osx.write(fd, b"HE")
        return get(osx, "d/moved")
    assert both.run(body, setup=tree) == b"HEllo world\n"


def test_rename_replaced_file_stays_open(both):
    def body(osx):
        fd = osx.open("e", osx.O_RDONLY)
        put(osx, "e", b"old e")
        osx.rename("f", "e")
        return osx.read(fd, 100), get(osx, "e"), osx.fstat(fd).st_nlink
    assert both.run(body, setup=tree) == (b"old e", HELLO, 0)


def test_rename_dir_fds(both):
    def body(osx):
        d = osx.open("d", osx.O_RDONLY)
        e = osx.open("ed", osx.O_RDONLY)
        osx.rename("g", "h", src_dir_fd=d, dst_dir_fd=e)
        return listing(osx, "d"), listing(osx, "ed")
    assert both.run(body, setup=tree) == (["sub"], ["h"])


def test_rename_trailing_slash_on_file(both):
    both.run(lambda osx: osx.rename("f/", "x"), setup=tree, fails=errno.ENOTDIR)


def test_rename_trailing_slash_on_dir(both):
    def body(osx):
        osx.rename("ed/", "moved/")
        return listing(osx)
    both.run(body, setup=tree)


def test_replace_over_file(both):
    def body(osx):
        osx.replace("f", "e")
        return get(osx, "e"), listing(osx)
    both.run(body, setup=tree)


def test_replace_over_dir(both):
    both.run(lambda osx: osx.replace("f", "ed"), setup=tree, fails=errno.EISDIR)


def test_replace_dir_fd(both):
    def body(osx):
        d = osx.open("d", osx.O_RDONLY)
        osx.replace("g", "g2", src_dir_fd=d, dst_dir_fd=d)
        return listing(osx, "d")
    both.run(body, setup=tree)


def test_renames_makes_and_prunes(both):
    def body(osx):
        osx.makedirs("a/b")
        put(osx, "a/b/file", b"x")
        osx.renames("a/b/file", "x/y/z")
        return listing(osx), get(osx, "x/y/z")
    assert both.run(body) == (["x"], b"x")


def test_many_renames_keep_content(both):
    def body(osx):
        for i in range(50):
            osx.rename("f" if i == 0 else f"r{i - 1}", f"r{i}")
        return listing(osx), get(osx, "r49")
    both.run(body, setup=tree)
