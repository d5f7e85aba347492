"""Operations on inodes the caller already holds, for front ends that address by inode (FUSE).

The kernel hands the FUSE server node ids, not paths: LINK names its source
by inode, ACCESS and READLINK ask about an inode, FSYNCDIR syncs one. These
make the same checks as the path-taking ``Vfs`` methods, minus the walk.
"""

from __future__ import annotations

import errno
import stat

from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.errors import os_error
from zcsdfs.vfs.permissions import W, X, allowed, check


def link(vfs, caller: Caller, ino: int, parent: int, name: str) -> None:
    """A new name ``name`` in directory ``parent`` for the non-directory inode ``ino``."""
    r = vfs.resolve(caller, name, parent, follow=False)
    if r.ino is not None:
        raise os_error(errno.EEXIST)
    if stat.S_ISDIR(vfs.fs.getattr(ino).st_mode):
        raise os_error(errno.EPERM)
    if vfs.readonly:
        raise os_error(errno.EROFS)
    check(caller, vfs.fs.getattr(r.parent), W | X)
    vfs.fs.link(ino, r.parent, r.name)


def access(vfs, caller: Caller, ino: int, mask: int) -> None:
    """``access(2)`` on an inode: EACCES (or EROFS for writing a read-only volume) when refused."""
    st = vfs.fs.getattr(ino)
    if mask & W and vfs.readonly:
        raise os_error(errno.EROFS)
    if not allowed(caller, st, mask & 7):
        raise os_error(errno.EACCES)


def readlink(vfs, ino: int) -> str:
    """A symbolic link's target (EINVAL for anything else); reading a link needs no permission."""
    if not stat.S_ISLNK(vfs.fs.getattr(ino).st_mode):
        raise os_error(errno.EINVAL)
    return vfs.fs.readlink(ino)


def fsync(vfs, ino: int) -> None:
    """Make an inode durable (a directory's entries included) without an open file."""
    vfs.fs.fsync(ino)

