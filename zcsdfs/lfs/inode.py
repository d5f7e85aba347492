"""In-memory inodes: attributes plus the structure their type needs.

A regular file has an extent map, a directory a name index (a dict, so a
lookup costs the same in a directory of 100,000 entries as in one of ten)
and its parent, a symbolic link its target. Extended attributes sit in a
dict on any inode.
"""

from __future__ import annotations

import stat

from zcsdfs.lfs import records
from zcsdfs.lfs.extents import ExtentMap


class Inode:
    __slots__ = ("ino", "mode", "uid", "gid", "nlink", "size", "atime_ns", "mtime_ns", "ctime_ns",
                 "target", "rdev", "extents", "entries", "parent", "xattrs")

    def __init__(self, rec: records.Inode):
        self.ino = rec.ino
        self.extents = ExtentMap() if stat.S_ISREG(rec.mode) else None
        self.entries: dict[str, int] | None = {} if stat.S_ISDIR(rec.mode) else None
        self.parent = rec.ino  # a directory's parent, set when it is linked in (the root's is itself)
        self.xattrs: dict[str, bytes] = {}
        self.mode = rec.mode  # so update's file-type check finds one (getattr's default costs an exception)
        self.update(rec)

    def update(self, rec: records.Inode) -> None:
        if stat.S_IFMT(rec.mode) != stat.S_IFMT(getattr(self, "mode", rec.mode)):
            raise ValueError(f"inode {rec.ino} cannot change its file type")
        self.mode = rec.mode
        self.uid = rec.uid
        self.gid = rec.gid
        self.nlink = rec.nlink
        self.size = rec.size
        self.atime_ns = rec.atime_ns
        self.mtime_ns = rec.mtime_ns
        self.ctime_ns = rec.ctime_ns
        self.target = rec.target
        self.rdev = rec.rdev

    def record(self, **changes) -> records.Inode:
        """This inode's attributes as a record, with ``changes`` applied."""
        fields = dict(ino=self.ino, mode=self.mode, uid=self.uid, gid=self.gid, nlink=self.nlink,
                      size=self.size, atime_ns=self.atime_ns, mtime_ns=self.mtime_ns,
                      ctime_ns=self.ctime_ns, target=self.target, rdev=self.rdev)
        fields.update(changes)
        return records.Inode(**fields)

    @property
    def is_dir(self) -> bool:
        return self.entries is not None

    @property
    def is_reg(self) -> bool:
        return self.extents is not None

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)
