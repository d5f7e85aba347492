"""``import zcsdfs as os`` must not break a program: the surface is served, the rest re-exported.

zcsdfs-only: these are facts about the module, not about a file system.
"""

import errno
import os

import pytest

import zcsdfs

#: The functions issue 8 lists; zcsdfs must serve each itself.
SERVED = [
    "open", "close", "closerange", "dup", "dup2", "read", "readv", "write", "writev", "pread", "preadv",
    "pwrite", "pwritev", "lseek", "fstat", "fsync", "fdatasync", "ftruncate", "posix_fallocate",
    "posix_fadvise", "fstatvfs", "fchmod", "fchown", "sendfile", "copy_file_range", "stat", "lstat",
    "access", "chmod", "chown", "lchown", "utime", "truncate", "link", "symlink", "readlink", "unlink",
    "remove", "rename", "replace", "mkdir", "makedirs", "rmdir", "removedirs", "listdir", "scandir",
    "walk", "fwalk", "statvfs", "getcwd", "chdir", "getxattr", "setxattr", "listxattr", "removexattr",
    "sync", "fdopen",
]

#: Other os names that touch the file system or its descriptors: zcsdfs may serve or withhold
#: them, but must not hand out os's own (which would act on the real file system).
FILE_SYSTEM = [
    "chroot", "pathconf", "fpathconf", "lockf", "mkfifo", "mknod", "fchdir", "getcwdb",
    "renames", "umask", "set_blocking", "get_blocking", "isatty", "DirEntry", "path",
]

#: os names whose value legitimately differs: sets of os's own functions, and module state.
DIFFERENT = ["supports_fd", "supports_dir_fd", "supports_follow_symlinks", "supports_effective_ids",
             "supports_bytes_environ"]

CONSTANTS = [n for n in dir(os) if n.isupper() and not n.startswith("_")]
OTHERS = [n for n in dir(os) if not n.startswith("_") and n not in CONSTANTS
          and n not in SERVED + FILE_SYSTEM + DIFFERENT]


@pytest.mark.parametrize("name", SERVED)
def test_served_by_zcsdfs(name):
    assert callable(getattr(zcsdfs, name)), name
    assert getattr(zcsdfs, name) is not getattr(os, name), f"zcsdfs.{name} is os.{name}"


@pytest.mark.parametrize("name", FILE_SYSTEM)
def test_file_system_names_are_not_the_real_ones(name):
    assert getattr(zcsdfs, name, None) is not getattr(os, name), f"zcsdfs.{name} is os.{name}"


@pytest.mark.parametrize("name", OTHERS)
def test_other_names_are_os_objects(name):
    assert getattr(zcsdfs, name) is getattr(os, name)


@pytest.mark.parametrize("name", CONSTANTS)
def test_constants_equal_os(name):
    assert getattr(zcsdfs, name) == getattr(os, name)


def test_error_is_oserror():
    assert zcsdfs.error is OSError


def test_path_string_functions_are_os_path():
    for name in ("join", "split", "basename", "dirname", "normpath", "splitext", "sep"):
        assert getattr(zcsdfs.path, name) is getattr(os.path, name), name


def test_return_types_are_os_types(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR)
    assert type(vol.fstat(fd)) is os.stat_result
    assert type(vol.stat("f")) is os.stat_result
    assert type(vol.statvfs("/")) is os.statvfs_result
    assert type(vol.fstatvfs(fd)) is os.statvfs_result
    vol.close(fd)


def test_volume_has_the_whole_surface(vol):
    missing = [n for n in SERVED if not callable(getattr(vol, n, None))]
    assert missing == []


def test_descriptors_do_not_collide_with_real_ones(vol, tmp_path):
    zfds = [vol.open("f", os.O_CREAT | os.O_RDWR) for _ in range(5)]
    real = os.open(tmp_path / "real", os.O_CREAT | os.O_RDWR)
    try:
        assert real not in zfds
        assert len(set(zfds)) == 5
        os.write(real, b"real")
        vol.write(zfds[0], b"zcsdfs")
        assert os.pread(real, 10, 0) == b"real"
        assert vol.pread(zfds[1], 10, 0) == b"zcsdfs"
    finally:
        os.close(real)
        for fd in zfds:
            vol.close(fd)


def test_closing_releases_the_reserved_number(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR)
    vol.close(fd)
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF


def test_real_descriptors_pass_through(vol):
    r, w = os.pipe()
    try:
        assert vol.write(w, b"through a pipe") == 14
        assert vol.read(r, 100) == b"through a pipe"
        d = vol.dup(r)
        vol.close(d)
    finally:
        vol.close(r)
        vol.close(w)
    with pytest.raises(OSError) as info:
        os.fstat(r)
    assert info.value.errno == errno.EBADF


def test_module_functions_use_the_default_volume(tmp_path, monkeypatch):
    monkeypatch.setenv("ZCSDFS_DEVICE", str(tmp_path / "never-used.zns"))
    zcsdfs.mount(zcsdfs.Volume.memory("tiny"))
    try:
        fd = zcsdfs.open("/hello", zcsdfs.O_CREAT | zcsdfs.O_WRONLY, 0o644)
        zcsdfs.write(fd, b"hi")
        zcsdfs.close(fd)
        assert zcsdfs.listdir("/") == ["hello"]
        assert zcsdfs.path.getsize("/hello") == 2
        with zcsdfs.io.open("/hello", "rb") as f:
            assert f.read() == b"hi"
        assert not (tmp_path / "never-used.zns").exists()
    finally:
        zcsdfs.unmount()
