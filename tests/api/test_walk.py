"""walk and fwalk: what they yield in both orders, with symlinks followed or not, and errors."""

import errno

import pytest

from tests.api.tree import put, tree


def deep(osx):
    tree(osx)
    osx.makedirs("d/sub/x/y")
    put(osx, "d/sub/x/y/leaf", b"leaf")
    put(osx, "d/sub/x/file")


def walked(osx, top, **kwargs):
    """(dirpath, sorted dirnames, sorted filenames) in yield order; sibling order is unspecified."""
    return [(p, sorted(ds), sorted(fs)) for p, ds, fs in osx.walk(top, **kwargs)]


def fwalked(osx, top, **kwargs):
    out = []
    for p, ds, fs, dfd in osx.fwalk(top, **kwargs):
        out.append((p, sorted(ds), sorted(fs), sorted(osx.listdir(dfd)) == sorted(ds + fs)))
    return out


@pytest.mark.parametrize("top", [".", "d", "ld", "d/sub", "ed"])
@pytest.mark.parametrize("topdown", [True, False])
def test_walk(both, top, topdown):
    def body(osx):
        rows = walked(osx, top, topdown=topdown)
        first, last = rows[0][0], rows[-1][0]
        return sorted(rows), (first == top) == topdown or len(rows) == 1, last == top or topdown
    both.run(body, setup=deep)


def test_walk_followlinks(both):
    both.run(lambda osx: sorted(walked(osx, ".", followlinks=True)), setup=deep)


def test_walk_prune_topdown(both):
    def body(osx):
        rows = []
        for p, ds, fs in osx.walk("."):
            ds[:] = [d for d in ds if d != "sub"]
            rows.append((p, sorted(fs)))
        return sorted(rows)
    both.run(body, setup=deep)


@pytest.mark.parametrize("top", ["missing", "f", "dangling"])
def test_walk_bad_top_yields_nothing(both, top):
    assert both.run(lambda osx: walked(osx, top), setup=deep) == []


def test_walk_onerror(both):
    def body(osx):
        errors = []
        rows = list(osx.walk("missing", onerror=lambda e: errors.append((type(e).__name__, e.errno))))
        return rows, errors
    assert both.run(body) == ([], [("FileNotFoundError", errno.ENOENT)])


def test_walk_bytes(both):
    both.run(lambda osx: sorted(walked(osx, b"d")), setup=deep)


@pytest.mark.parametrize("top", [".", "d", "ld"])
@pytest.mark.parametrize("topdown", [True, False])
def test_fwalk(both, top, topdown):
    both.run(lambda osx: sorted(fwalked(osx, top, topdown=topdown)), setup=deep)


def test_fwalk_follow_symlinks(both):
    both.run(lambda osx: sorted(fwalked(osx, ".", follow_symlinks=True)), setup=deep)


def test_fwalk_dir_fd(both):
    def body(osx):
        return sorted(fwalked(osx, "sub", dir_fd=osx.open("d", osx.O_RDONLY)))
    both.run(body, setup=deep)


def test_fwalk_missing_top_raises(both):
    both.run(lambda osx: list(osx.fwalk("missing", onerror=print)), fails=errno.ENOENT)


def test_fwalk_leaves_no_descriptors_open(both):
    """Descriptors are lowest-free on both sides, so a leak would shift the next number."""
    def body(osx):
        fd = osx.open("f", osx.O_RDONLY)
        osx.close(fd)
        for _ in osx.fwalk("."):
            pass
        return int(osx.open("f", osx.O_RDONLY)) == int(fd)
    assert both.run(body, setup=deep) is True
