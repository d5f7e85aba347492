"""zcsdfs: a computational-storage file system you can import.

``import zcsdfs as os`` gives ``os``'s file functions over a zcsdfs volume:
the process's default volume, mounted on first use from the embedded
default device ($ZCSDFS_DEVICE, else $XDG_DATA_HOME/zcsdfs/default.zns,
created and formatted when missing). ``mount``/``unmount`` switch it;
``Volume`` objects give independent volumes with the same surface as
methods. Every attribute of ``os`` that does not touch the file system is
re-exported unchanged, so a program that swaps the import keeps working.

Layers: ``zns`` (the zoned device), ``lfs`` (the log-structured file
system), ``vfs`` (paths, permissions, descriptors), ``csd`` (eBPF kernels).
"""

from __future__ import annotations

import os as _os
import threading as _threading

__version__ = "0.1.0"

# Everything of os first; the file-touching names are replaced below.
for _name in dir(_os):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_os, _name)

from zcsdfs import tracked_umask as _tracked_umask  # noqa: E402
from zcsdfs.volume import Volume  # noqa: E402
from zcsdfs.scandir import DirEntry  # noqa: E402,F401
import zcsdfs.path as path  # noqa: E402  (not "from zcsdfs import path": that finds os.path, copied above)
import zcsdfs.io as io  # noqa: E402

error = OSError
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

# The os functions served by the default volume (each is the Volume method of that name).
SURFACE = (
    "open", "close", "closerange", "dup", "dup2", "read", "readv", "write", "writev", "pread",
    "preadv", "pwrite", "pwritev", "lseek", "fstat", "fsync", "fdatasync", "ftruncate",
    "posix_fallocate", "posix_fadvise", "fstatvfs", "fchmod", "fchown", "fchdir", "sendfile",
    "copy_file_range", "set_blocking", "get_blocking", "isatty", "fdopen",
    "stat", "lstat", "access", "chmod", "chown", "lchown", "utime", "truncate",
    "mkdir", "makedirs", "mkfifo", "mknod", "symlink", "readlink", "link", "unlink", "remove",
    "rmdir", "removedirs", "rename", "replace", "renames", "listdir", "scandir", "walk", "fwalk",
    "getcwd", "getcwdb", "chdir", "getxattr", "setxattr", "listxattr", "removexattr", "statvfs",
    "sync",
)

# os names that touch the file system and that zcsdfs does not serve: absent rather than
# silently acting on the real file system.
WITHHELD = ("chroot", "pathconf", "fpathconf", "lockf", "chflags", "lchflags")

_tracked_umask.track()  # os.umask notes each new umask, which every create then applies


def umask(mask: int, /) -> int:
    """``os.umask``: set the process umask, which zcsdfs applies to every create as the kernel
    does (whether set here or through ``os.umask``); returns the previous one."""
    return _tracked_umask.umask(mask)


_default: Volume | None = None
_default_lock = _threading.Lock()


def default_volume() -> Volume:
    """The volume the module-level functions use, mounted on first call."""
    volume = _default
    if volume is not None and volume.mounted:
        return volume
    with _default_lock:
        if _default is None or not _default.mounted:
            mount()
        return _default


def mount(image_or_device=None, **kwargs) -> Volume:
    """Make ``image_or_device`` (default: the embedded default device) the default volume.

    The previous default volume is unmounted. Keyword arguments go to ``Volume``.
    """
    global _default
    volume = image_or_device if isinstance(image_or_device, Volume) else Volume(image_or_device, **kwargs)
    old, _default = _default, volume
    if old is not None and old is not volume:
        old.unmount()
    return volume


def unmount() -> None:
    """Unmount the default volume (flush and checkpoint); the next call mounts it again."""
    global _default
    volume, _default = _default, None
    if volume is not None:
        volume.unmount()


def _serve(name: str):
    method = getattr(Volume, name)

    def call(*args, **kwargs):
        return getattr(default_volume(), name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__ or getattr(getattr(_os, name, None), "__doc__", None)
    call.__wrapped__ = method
    return call


for _name in SURFACE:
    globals()[_name] = _serve(_name)
for _name in WITHHELD:
    globals().pop(_name, None)
del _name

# Which of zcsdfs's own functions take a descriptor for a path, a dir_fd, or follow_symlinks=False
# (os's sets name os's functions, which would answer for the real file system).
supports_fd = {globals()[n] for n in (
    "chdir", "chmod", "chown", "listdir", "scandir", "stat", "statvfs", "truncate", "utime",
    "getxattr", "setxattr", "listxattr", "removexattr")}
supports_dir_fd = {globals()[n] for n in (
    "access", "chmod", "chown", "link", "mkdir", "mkfifo", "mknod", "open", "readlink", "rename",
    "rmdir", "stat", "symlink", "unlink", "utime")}
supports_follow_symlinks = {globals()[n] for n in ("access", "chown", "link", "stat", "utime")}
supports_effective_ids = {globals()["access"]}  # zcsdfs always checks the effective ids
