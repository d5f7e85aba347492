"""Routing by normalised path: which side a path is on, and what the volume is handed."""

import os

import pytest

from zcsdfs.shim.router import Mount, Router


class FakeVolume:
    def __init__(self, cwd="/"):
        self.cwd = cwd

    def owns(self, fd):
        return fd == 1000

    def getcwd(self):
        return self.cwd


@pytest.fixture
def router():
    r = Router()
    r.add(Mount("/zcsd", FakeVolume(), owned=False))
    r.add(Mount("/zcsd/inner", FakeVolume(), owned=False))
    r.add(Mount("/data/vol", FakeVolume(), owned=False))
    return r


def where(router, path, dir_fd=None):
    place = router.locate(path, dir_fd)
    if place is None:
        return "real"
    mount, inner, _ = place
    return ("real", inner) if mount is None else (mount.prefix, inner)


@pytest.mark.parametrize("path, expected", [
    ("/zcsd", ("/zcsd", "/")),
    ("/zcsd/", ("/zcsd", "/")),
    ("/zcsd/a/b", ("/zcsd", "/a/b")),
    ("/zcsd/a/b/", ("/zcsd", "/a/b/")),
    ("/zcsdx/a", "real"),
    ("/zcs", "real"),
    ("/", "real"),
    ("/etc/passwd", "real"),
    ("/zcsd/inner/x", ("/zcsd/inner", "/x")),
    ("/zcsd/innerx", ("/zcsd", "/innerx")),
    ("/data/vol/f", ("/data/vol", "/f")),
    ("/data/f", "real"),
    # normalisation decides the side; the volume gets what follows its entry, so '..' after a
    # symbolic link inside keeps Linux's meaning
    ("//zcsd/a", ("/zcsd", "/a")),
    ("/./zcsd/a", ("/zcsd", "/a")),
    ("/tmp/../zcsd/a", ("/zcsd", "/a")),
    ("/zcsd/a/../b", ("/zcsd", "/a/../b")),
    ("/zcsd/./a", ("/zcsd", "/./a")),
    ("/zcsd/a/..", ("/zcsd", "/a/..")),
    ("/zcsd/..", ("real", "/")),
    ("/zcsd/../etc/passwd", ("real", "/etc/passwd")),
    ("/zcsd/a/../../etc/x/../passwd/", ("real", "/etc/x/../passwd/")),
    ("/tmp/../etc", "real"),
    ("/zcsd/a/../../zcsd/b", ("/zcsd", "/b")),
    ("/zcsd/../../../zcsd/b", ("/zcsd", "/b")),
    ("/zcsd/inner/../x", ("/zcsd", "/x")),
    ("/zcsd/x/../inner/y", ("/zcsd/inner", "/y")),
    ("/zcsd/inner/a/../..", ("/zcsd", "/")),
    ("/home/u/.cache/x", "real"),
])
def test_absolute_paths(router, path, expected):
    assert where(router, path) == expected


def test_bytes_and_pathlike_keep_their_type(router):
    import pathlib
    assert where(router, b"/zcsd/a") == ("/zcsd", b"/a")
    assert where(router, pathlib.PurePosixPath("/zcsd/a")) == ("/zcsd", "/a")
    assert where(router, b"/etc") == "real"


def test_not_a_path_is_left_to_the_real_function(router):
    assert router.locate(3.5) is None
    assert router.locate(None) is None


def test_relative_paths_from_a_real_cwd(router, monkeypatch):
    router._real_cwd, router._cwd_near = "/tmp", False
    assert where(router, "a/b") == "real"
    assert where(router, "../zcsd/a") == ("/zcsd", "/a")
    assert where(router, "../etc") == "real"
    assert where(router, "../zcsd/../etc") == ("real", "/etc")
    router._real_cwd = "/"
    router._note_near()
    assert where(router, "zcsd/a") == ("/zcsd", "/a")
    assert where(router, "zcsdx") == "real"
    assert where(router, "data/vol/../f") == ("real", "/data/f")


def test_relative_paths_from_a_cwd_in_a_volume(router):
    mount = router.mounts[-1]
    assert mount.prefix == "/zcsd"
    mount.volume.cwd = "/d"
    router.cwd = mount
    assert where(router, "a") == ("/zcsd", "a")
    assert where(router, "./a/b") == ("/zcsd", "./a/b")
    assert where(router, "../x") == ("/zcsd", "/d/../x")
    assert where(router, "../../etc") == ("real", "/etc")
    assert where(router, "../inner/y") == ("/zcsd/inner", "/y")
    assert where(router, "/etc") == "real"


def test_dir_fd_decides_for_relative_paths_only(router):
    assert where(router, "a", dir_fd=1000) == ("/zcsd/inner", "a")
    assert where(router, "a", dir_fd=3) == "real"
    assert where(router, "/zcsd/a", dir_fd=3) == ("/zcsd", "/a")
    assert where(router, "/etc", dir_fd=1000) == "real"


def test_descriptor_owner(router):
    assert router.owner(1000).prefix == "/zcsd/inner"
    assert router.owner(0) is None


def test_prefix_mounted_twice_is_ebusy(router):
    with pytest.raises(OSError) as info:
        router.add(Mount("/zcsd", FakeVolume(), owned=False))
    assert info.value.errno == 16


def test_removing_the_cwd_mount_returns_to_the_real_cwd(router):
    router.cwd = router.mounts[-1]
    router.remove("/zcsd")
    assert router.cwd is None
    assert router.getcwd() == os.getcwd()
