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


#: A call of each function with a descriptor for its path (``fd``: a directory's, ``ffd``: a file's).
WITH_FD = {
    "chdir": lambda v, fd, ffd: v.chdir(fd),
    "chmod": lambda v, fd, ffd: v.chmod(ffd, 0o600),
    "chown": lambda v, fd, ffd: v.chown(ffd, -1, -1),
    "listdir": lambda v, fd, ffd: v.listdir(fd),
    "scandir": lambda v, fd, ffd: list(v.scandir(fd)),
    "stat": lambda v, fd, ffd: v.stat(ffd),
    "statvfs": lambda v, fd, ffd: v.statvfs(fd),
    "truncate": lambda v, fd, ffd: v.truncate(ffd, 1),
    "utime": lambda v, fd, ffd: v.utime(ffd),
    "getxattr": lambda v, fd, ffd: v.setxattr(ffd, "user.x", b"1") or v.getxattr(ffd, "user.x"),
    "setxattr": lambda v, fd, ffd: v.setxattr(ffd, "user.y", b"1"),
    "listxattr": lambda v, fd, ffd: v.listxattr(ffd),
    "removexattr": lambda v, fd, ffd: v.setxattr(ffd, "user.z", b"1") or v.removexattr(ffd, "user.z"),
}

#: A call of each function relative to ``dir_fd`` (the directory "d", which holds the file "f").
WITH_DIR_FD = {
    "access": lambda v, d: v.access("f", os.R_OK, dir_fd=d),
    "chmod": lambda v, d: v.chmod("f", 0o600, dir_fd=d),
    "chown": lambda v, d: v.chown("f", -1, -1, dir_fd=d),
    "link": lambda v, d: v.link("f", "hard", src_dir_fd=d, dst_dir_fd=d),
    "mkdir": lambda v, d: v.mkdir("sub", dir_fd=d),
    "mkfifo": lambda v, d: v.mkfifo("fifo", dir_fd=d),
    "mknod": lambda v, d: v.mknod("node", dir_fd=d),
    "open": lambda v, d: v.close(v.open("f", os.O_RDONLY, dir_fd=d)),
    "readlink": lambda v, d: v.symlink("f", "l1", dir_fd=d) or v.readlink("l1", dir_fd=d),
    "rename": lambda v, d: v.rename("f", "g", src_dir_fd=d, dst_dir_fd=d),
    "rmdir": lambda v, d: v.mkdir("gone", dir_fd=d) or v.rmdir("gone", dir_fd=d),
    "stat": lambda v, d: v.stat("f", dir_fd=d),
    "symlink": lambda v, d: v.symlink("f", "l2", dir_fd=d),
    "unlink": lambda v, d: v.unlink("f", dir_fd=d),
    "utime": lambda v, d: v.utime("f", dir_fd=d),
}

#: A call of each function with follow_symlinks=False on the symbolic link "l" (to "f").
WITH_NOFOLLOW = {
    "access": lambda v: v.access("l", os.R_OK, follow_symlinks=False),
    "chown": lambda v: v.chown("l", -1, -1, follow_symlinks=False),
    "link": lambda v: v.link("l", "hard-l", follow_symlinks=False),
    "stat": lambda v: v.stat("l", follow_symlinks=False),
    "utime": lambda v: v.utime("l", follow_symlinks=False),
}


@pytest.mark.parametrize("which, calls", [("supports_fd", WITH_FD), ("supports_dir_fd", WITH_DIR_FD),
                                          ("supports_follow_symlinks", WITH_NOFOLLOW)])
def test_supports_sets_name_zcsdfs_functions(which, calls):
    """``f in zcsdfs.supports_fd`` is how Python code asks whether zcsdfs's ``f`` takes a descriptor."""
    functions = getattr(zcsdfs, which)
    assert functions and all(getattr(zcsdfs, f.__name__) is f for f in functions), which
    assert sorted(f.__name__ for f in functions) == sorted(calls)


def test_supported_descriptor_calls_work(vol):
    vol.mkdir("/d")
    vol.close(vol.open("/d/f", os.O_CREAT | os.O_WRONLY, 0o644))
    for name, call in WITH_FD.items():
        fd, ffd = vol.open("/d", os.O_RDONLY), vol.open("/d/f", os.O_RDWR)
        try:
            call(vol, fd, ffd)
        finally:
            vol.close(fd)
            vol.close(ffd)
    for name, call in WITH_DIR_FD.items():
        if not vol.path.exists("/d/f"):
            vol.close(vol.open("/d/f", os.O_CREAT | os.O_WRONLY, 0o644))
        d = vol.open("/d", os.O_RDONLY)
        try:
            call(vol, d)
        finally:
            vol.close(d)
    vol.chdir("/d")
    vol.symlink("f", "l")
    for call in WITH_NOFOLLOW.values():
        call(vol)


def test_zcsdfs_path_is_the_volume_aware_module():
    """In a fresh interpreter: ``import zcsdfs`` must not leave os.path (copied from os) as zcsdfs.path."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", "import zcsdfs; print(zcsdfs.path.__name__, zcsdfs.io.__name__)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["zcsdfs.path", "zcsdfs.io"], done.stderr
