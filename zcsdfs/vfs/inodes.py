"""Operations on inodes the caller already holds, for front ends that address by inode (FUSE).

The kernel hands the FUSE server node ids, not paths: LINK names its source
by inode, ACCESS and READLINK ask about an inode, FSYNCDIR syncs one, and a
directory listing needs its parent. ``Vfs`` has these as methods (this
class is one of its bases); each shares its checks with the path-taking
method of the same operation, which resolves the path and then comes here,
so the two cannot drift apart.
"""

from __future__ import annotations

import errno
import stat

from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.errors import os_error
from zcsdfs.vfs.permissions import R, W, allowed


class InodeOperations:
    """The inode-addressed half of ``Vfs`` (``self.fs`` is its lfs)."""

    def link_inode(self, caller: Caller, ino: int, parent: int, name: str) -> None:
        """A new name ``name`` in directory ``parent`` for the inode ``ino`` (``link(2)``'s checks)."""
        self._link(caller, ino, self.resolve(caller, name, parent, follow=False))

    def _link(self, caller: Caller, ino: int, r) -> None:
        """``link(2)`` of ``ino`` to the resolved new name ``r``.

        As with Linux's protected_hardlinks, only the owner (or root) may link
        a file they could not read and write, a special file, or a set-id
        program.
        """
        if r.ino is not None:
            raise os_error(errno.EEXIST)
        st = self.fs.getattr(ino)
        if stat.S_ISDIR(st.st_mode):
            raise os_error(errno.EPERM)
        if not caller.is_root and caller.uid != st.st_uid and (
                not stat.S_ISREG(st.st_mode) or st.st_mode & stat.S_ISUID
                or st.st_mode & (stat.S_ISGID | stat.S_IXGRP) == stat.S_ISGID | stat.S_IXGRP
                or not allowed(caller, st, R | W)):
            raise os_error(errno.EPERM)
        if r.slash:
            raise os_error(errno.ENOENT)
        self._parent_for_change(caller, r)
        self.fs.link(ino, r.parent, r.name)

    def access_inode(self, caller: Caller, ino: int, mask: int) -> None:
        """``access(2)`` on an inode: EACCES (or EROFS for writing a read-only volume) when refused."""
        st = self.fs.getattr(ino)
        if mask & W and self.readonly:
            raise os_error(errno.EROFS)
        if not allowed(caller, st, mask & 7):
            raise os_error(errno.EACCES)

    def readlink_inode(self, ino: int) -> str:
        """A symbolic link's target (EINVAL for anything else); reading a link needs no permission."""
        if not stat.S_ISLNK(self.fs.getattr(ino).st_mode):
            raise os_error(errno.EINVAL)
        return self.fs.readlink(ino)

    def fsync_inode(self, ino: int) -> None:
        """Make an inode durable (a directory's entries included) without an open file."""
        self.fs.fsync(ino)

    def parent(self, ino: int) -> int:
        """The directory ``..`` of directory ``ino`` names (the root is its own parent)."""
        return self.fs.lookup(ino, "..")

    def read_for_cache(self, of, size: int, offset: int) -> bytes:
        """The file's bytes for a page cache that every process shares (FUSE with
        ``writeback_cache`` reads pages it must complete on any handle of the file, write-only
        ones too): no CSD kernel answers, and the handle's access mode is not asked."""
        if of.is_dir:
            raise os_error(errno.EISDIR)
        if size < 0 or offset < 0:
            raise os_error(errno.EINVAL)
        return self.fs.read(of.ino, offset, size)
