"""A file system mounted read-only: what ``mount(device, readonly=True)`` returns.

Mounting rolls the log forward in memory only (``recover(readonly=True)``):
no zone is finished or reset, no checkpoint is written, at mount or at
unmount. Every operation that would change the file system answers EROFS
before it touches anything; ``fsync`` and ``sync`` have nothing to write,
and access times are not updated (as on a read-only Linux mount). Reads,
snapshots' contents and frozen views (memory only) work as on a writable
mount. Together with a read-only device this means not one byte of the
image changes.
"""

from __future__ import annotations

import functools

from zcsdfs.lfs.errors import ReadOnly
from zcsdfs.lfs.filesystem import FileSystem

# Every FileSystem method that changes the file system or writes to the device.
CHANGES = ("create", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "write",
           "truncate", "fallocate", "setattr", "setxattr", "removexattr", "gc", "create_snapshot",
           "delete_snapshot", "checkpoint")


def _refused(name: str):
    @functools.wraps(getattr(FileSystem, name))
    def refuse(self, *args, **kwargs):
        self._check_usable()
        raise ReadOnly(f"{name}: the file system is mounted read-only")
    return refuse


class ReadOnlyFileSystem(FileSystem):
    """A mounted zcsdfs that changes nothing. Build it with ``zcsdfs.lfs.mount(device, readonly=True)``."""

    readonly = True

    for _name in CHANGES:
        locals()[_name] = _refused(_name)
    del _name

    def touch_atime(self, ino: int) -> None:
        self._node(ino)

    def fsync(self, ino: int) -> None:
        with self._lock:
            self._check_usable()
            self._node(ino)

    def fdatasync(self, ino: int) -> None:
        self.fsync(ino)

    def sync(self) -> None:
        self._check_usable()

    def unmount(self) -> None:
        """Stop serving; there is nothing to write."""
        with self._lock:
            self._mounted = False
