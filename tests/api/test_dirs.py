"""mkdir, makedirs, rmdir, removedirs, listdir, scandir, getcwd, chdir: effects and errors."""

import errno

import pytest

from tests.api.conftest import ANY
from tests.api.tree import NAMES, listing, put, tree

PATHS = [*NAMES, "missing", "d/g", "d/sub", "f/x", "nodir/x", "ld/sub", "d/", "missing/", "."]


@pytest.mark.parametrize("path", PATHS)
def test_mkdir(both, path):
    def body(osx):
        osx.mkdir(path)
        return osx.stat(path), listing(osx), listing(osx, "d")
    both.run(body, setup=tree, fails=None if path in ("missing", "missing/") else ANY)


@pytest.mark.parametrize("mode", [0o777, 0o755, 0o700, 0o000, 0o1777, 0o2755])
def test_mkdir_mode_masked_by_umask(both, mode):
    def body(osx):
        osx.mkdir("m", mode)
        return osx.stat("m")
    both.run(body)


def test_mkdir_raises_parent_link_count(both):
    def body(osx):
        before = osx.stat("d").st_nlink
        osx.mkdir("d/a")
        osx.mkdir("d/b")
        put(osx, "d/c")
        return before, osx.stat("d").st_nlink, osx.stat("d/a").st_nlink
    assert both.run(body, setup=tree) == (3, 5, 2)


def test_mkdir_dir_fd(both):
    def body(osx):
        osx.mkdir("new", dir_fd=osx.open("d", osx.O_RDONLY))
        return listing(osx, "d")
    both.run(body, setup=tree)


def test_mkdir_existing_is_eexist(both):
    both.run(lambda osx: osx.mkdir("d"), setup=tree, fails=errno.EEXIST)


def test_mkdir_over_dangling_symlink_is_eexist(both):
    both.run(lambda osx: osx.mkdir("dangling"), setup=tree, fails=errno.EEXIST)


def test_mkdir_missing_parent_is_enoent(both):
    both.run(lambda osx: osx.mkdir("a/b"), fails=errno.ENOENT)


def test_mkdir_name_too_long(both):
    both.run(lambda osx: osx.mkdir("x" * 256), fails=errno.ENAMETOOLONG)


def test_makedirs_deep(both):
    def body(osx):
        osx.makedirs("a/b/c/d", 0o750)
        return [osx.stat(p) for p in ("a", "a/b", "a/b/c", "a/b/c/d")]
    both.run(body)


def test_makedirs_existing(both):
    both.run(lambda osx: osx.makedirs("d/sub"), setup=tree, fails=errno.EEXIST)


def test_makedirs_exist_ok(both):
    def body(osx):
        osx.makedirs("d/sub", exist_ok=True)
        osx.makedirs("d/sub/x/y", exist_ok=True)
        return listing(osx, "d/sub")
    assert both.run(body, setup=tree) == ["x"]


def test_makedirs_exist_ok_on_file_fails(both):
    both.run(lambda osx: osx.makedirs("f", exist_ok=True), setup=tree, fails=errno.EEXIST)


def test_makedirs_through_file(both):
    both.run(lambda osx: osx.makedirs("f/a/b"), setup=tree, fails=errno.ENOTDIR)


def test_makedirs_through_symlink_to_dir(both):
    def body(osx):
        osx.makedirs("ld/n/m")
        return listing(osx, "d"), listing(osx, "d/n")
    both.run(body, setup=tree)


@pytest.mark.parametrize("path", PATHS)
def test_rmdir(both, path):
    def body(osx):
        osx.rmdir(path)
        return listing(osx), listing(osx, "d")
    both.run(body, setup=tree, fails=None if path in ("ed", "d/sub") else ANY)


def test_rmdir_lowers_parent_link_count(both):
    def body(osx):
        osx.rmdir("d/sub")
        return osx.stat("d").st_nlink
    assert both.run(body, setup=tree) == 2


def test_rmdir_nonempty(both):
    both.run(lambda osx: osx.rmdir("d"), setup=tree, fails=errno.ENOTEMPTY)


def test_rmdir_file(both):
    both.run(lambda osx: osx.rmdir("f"), setup=tree, fails=errno.ENOTDIR)


def test_rmdir_symlink_to_dir(both):
    both.run(lambda osx: osx.rmdir("ld"), setup=tree, fails=errno.ENOTDIR)


def test_rmdir_dot(both):
    both.run(lambda osx: osx.rmdir("ed/."), setup=tree, fails=errno.EINVAL)


def test_rmdir_dotdot(both):
    both.run(lambda osx: osx.rmdir("d/sub/.."), setup=tree, fails=errno.ENOTEMPTY)


def test_rmdir_dir_fd(both):
    def body(osx):
        osx.rmdir("sub", dir_fd=osx.open("d", osx.O_RDONLY))
        return listing(osx, "d")
    assert both.run(body, setup=tree) == ["g"]


def test_rmdir_open_directory_then_list_it(both):
    def body(osx):
        fd = osx.open("ed", osx.O_RDONLY)
        osx.rmdir("ed")
        return osx.fstat(fd).st_nlink, listing(osx)
    both.run(body, setup=tree)


def test_create_in_removed_cwd(both):
    def body(osx):
        osx.chdir("ed")
        osx.rmdir("../ed")
        osx.open("x", osx.O_WRONLY | osx.O_CREAT)
    both.run(body, setup=tree, fails=errno.ENOENT)


def test_removedirs(both):
    def body(osx):
        osx.makedirs("a/b/c")
        osx.removedirs("a/b/c")
        return listing(osx)
    assert both.run(body) == []


def test_removedirs_stops_at_nonempty(both):
    def body(osx):
        osx.makedirs("a/b/c")
        put(osx, "a/keep")
        osx.removedirs("a/b/c")
        return listing(osx), listing(osx, "a")
    assert both.run(body) == (["a"], ["keep"])


def test_removedirs_nonempty_leaf(both):
    both.run(lambda osx: osx.removedirs("d"), setup=tree, fails=errno.ENOTEMPTY)


@pytest.mark.parametrize("path", [".", "d", "ed", "ld", "d/sub", "d/", "f", "ls", "missing",
                                  "dangling", "loop", "f/x"])
def test_listdir(both, path):
    both.run(lambda osx: listing(osx, path), setup=tree,
             fails=None if path in (".", "d", "ed", "ld", "d/sub", "d/") else ANY)


def test_listdir_default_is_cwd(both):
    both.run(lambda osx: sorted(osx.listdir()), setup=tree)


def test_listdir_none_is_cwd(both):
    both.run(lambda osx: sorted(osx.listdir(None)), setup=tree)


def test_listdir_bytes(both):
    assert both.run(lambda osx: listing(osx, b"d"), setup=tree) == [b"g", b"sub"]


def test_listdir_descriptor(both):
    def body(osx):
        fd = osx.open("d", osx.O_RDONLY)
        return sorted(osx.listdir(fd)), sorted(osx.listdir(fd))
    assert both.run(body, setup=tree) == (["g", "sub"], ["g", "sub"])


def test_listdir_many_entries(both):
    def body(osx):
        osx.mkdir("many")
        for i in range(300):
            osx.close(osx.open(f"many/n{i:04}", osx.O_WRONLY | osx.O_CREAT))
        for i in range(0, 300, 3):
            osx.unlink(f"many/n{i:04}")
        return listing(osx, "many")
    assert len(both.run(body)) == 200


def test_listdir_has_no_dot_entries(both):
    assert both.run(lambda osx: listing(osx, "ed"), setup=tree) == []


def entries(osx, path="."):
    with osx.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


@pytest.mark.parametrize("path", [".", "d", "ld", "ed", "d/"])
def test_scandir_entries(both, path):
    both.run(lambda osx: entries(osx, path), setup=tree)


def test_scandir_default(both):
    both.run(lambda osx: entries(osx), setup=tree)


@pytest.mark.parametrize("path", ["f", "missing", "dangling", "loop"])
def test_scandir_bad_paths(both, path):
    both.run(lambda osx: entries(osx, path), setup=tree, fails=ANY)


def test_scandir_entry_is_dir_following(both):
    def body(osx):
        return [(e.name, e.is_dir(), e.is_file()) for e in entries(osx) if e.name != "loop"]
    both.run(body, setup=tree)


def test_scandir_entry_is_dir_of_loop(both):
    both.run(lambda osx: [e.is_dir() for e in entries(osx) if e.name == "loop"], setup=tree,
             fails=errno.ELOOP)


def test_scandir_entry_stats(both):
    def body(osx):
        return [(e.name, e.stat(), e.stat(follow_symlinks=False), e.is_dir(follow_symlinks=False),
                 e.is_file(follow_symlinks=False)) for e in entries(osx) if e.name not in ("dangling", "loop")]
    both.run(body, setup=tree)


def test_scandir_entry_stat_of_dangling(both):
    both.run(lambda osx: [e.stat() for e in entries(osx) if e.name == "dangling"], setup=tree,
             fails=errno.ENOENT)


def test_scandir_inode_matches_lstat(both):
    def body(osx):
        return all(e.inode() == osx.lstat(e.path).st_ino for e in entries(osx))
    assert both.run(body, setup=tree) is True


def test_scandir_stat_is_cached(both):
    def body(osx):
        e = next(e for e in entries(osx) if e.name == "f")
        first = e.stat()
        osx.truncate("f", 1)
        return first.st_size, e.stat().st_size, osx.stat("f").st_size
    assert both.run(body, setup=tree) == (12, 12, 1)


def test_scandir_bytes_names(both):
    assert both.run(lambda osx: [e.name for e in entries(osx, b"d")], setup=tree) == [b"g", b"sub"]


def test_scandir_paths_are_joined(both):
    assert both.run(lambda osx: [e.path for e in entries(osx, "d")], setup=tree) == ["d/g", "d/sub"]


def test_scandir_descriptor(both):
    def body(osx):
        with osx.scandir(osx.open("d", osx.O_RDONLY)) as it:
            return sorted((e.name, e.path, e.is_dir()) for e in it)
    both.run(body, setup=tree)


def test_scandir_fspath(both):
    import os
    assert both.run(lambda osx: sorted(os.fspath(e) for e in entries(osx, "d")), setup=tree) == ["d/g", "d/sub"]


def test_scandir_close_twice(both):
    def body(osx):
        it = osx.scandir(".")
        it.close()
        it.close()
        return list(it)
    assert both.run(body, setup=tree) == []


def relcwd(osx, root):
    return osx.path.relpath(osx.getcwd(), root)


@pytest.mark.parametrize("path", ["d", "d/sub", "ld", "d/sub/..", "ld/sub", "./d/", "f", "ls",
                                  "missing", "dangling", "loop", "f/x"])
def test_chdir(both, path):
    def body(osx):
        root = osx.getcwd()
        osx.chdir(path)
        return relcwd(osx, root), listing(osx)
    both.run(body, setup=tree, fails=ANY if path in ("f", "ls", "missing", "dangling", "loop", "f/x") else None)


def test_chdir_then_relative_ops(both):
    def body(osx):
        osx.chdir("d")
        put(osx, "new", b"x")
        osx.mkdir("../top")
        return listing(osx), listing(osx, ".."), osx.stat("g")
    both.run(body, setup=tree)


def test_getcwd_is_absolute_str(both):
    def body(osx):
        cwd = osx.getcwd()
        return type(cwd).__name__, osx.path.isabs(cwd), osx.path.isdir(cwd)
    assert both.run(body) == ("str", True, True)


def test_getcwdb_is_bytes(both):
    assert both.run(lambda osx: type(osx.getcwdb()).__name__) == "bytes"


def test_chdir_dotdot_walks_back(both):
    def body(osx):
        root = osx.getcwd()
        osx.chdir("d/sub")
        osx.chdir("../..")
        return osx.getcwd() == root
    assert both.run(body, setup=tree) is True


def test_chdir_descriptor(both):
    def body(osx):
        root = osx.getcwd()
        osx.chdir(osx.open("d", osx.O_RDONLY))
        return relcwd(osx, root)
    assert both.run(body, setup=tree) == "d"


def test_fchdir(both):
    def body(osx):
        root = osx.getcwd()
        osx.fchdir(osx.open("d/sub", osx.O_RDONLY))
        return relcwd(osx, root)
    assert both.run(body, setup=tree) == "d/sub"


def test_fchdir_file(both):
    both.run(lambda osx: osx.fchdir(osx.open("f", osx.O_RDONLY)), setup=tree, fails=errno.ENOTDIR)
