"""Snapshots: named, read-only, point-in-time copies of the whole volume.

Because the log never overwrites, a snapshot is only a copy of the metadata:
its extent maps point at the blocks the live tree pointed at when it was
taken, and those blocks stay valid (``Namespace`` counts every reference)
until the snapshot is deleted. Snapshots are saved in every checkpoint after
the live image; creating or deleting one takes a checkpoint, so both are
durable when they return. GC relocates a snapshot's blocks like live ones,
remapping every tree that references a block so shared blocks stay shared.

``rollback`` makes a copy of a snapshot the live tree, in one checkpoint:
a crash leaves the volume either as it was or rolled back. ``SnapshotView``
serves a snapshot to the vfs as a read-only file system, which is how
``zcsdfs.Volume(image, snapshot=NAME)`` and ``zcsdfs mount -o snapshot=NAME``
open one.
"""

from __future__ import annotations

import errno

import attrs

from zcsdfs.lfs.directory import NAME_MAX
from zcsdfs.lfs.errors import Busy, FsError, Invalid, NameTooLong, NoSpace, NotFound, Unmounted
from zcsdfs.lfs.frozen import FrozenView
from zcsdfs.lfs.reader import TreeReader, ZonePins


class ReadOnlySnapshot(FsError):
    """A change asked of a snapshot opened as a file system."""

    errno_value = errno.EROFS


@attrs.frozen
class SnapshotInfo:
    name: str
    created_ns: int


class Snapshot(TreeReader):
    """A read-only tree: lookup, readdir, readlink, getattr, read, getxattr, listxattr."""

    def __init__(self, fs, name: str, created_ns: int, ns):
        self._fs = fs
        self.name = name
        self.created_ns = created_ns
        self.ns = ns
        self.device = fs.device
        self.block_size = fs.block_size
        self._lock = fs._lock
        self.deleted = False

    def _check_usable(self) -> None:
        if self.deleted:
            raise NotFound(f"snapshot {self.name!r} was deleted", self.name)
        if not self._fs._mounted:
            raise Unmounted("the file system is unmounted")

    @property
    def viewed(self) -> ZonePins:
        """Reads of a snapshot pin zones in the file system's counts."""
        return self._fs.viewed

    @property
    def sums(self):
        """The file system's data checksums: a snapshot's blocks are checked like live ones."""
        return self._fs.sums

    @property
    def info(self) -> SnapshotInfo:
        return SnapshotInfo(self.name, self.created_ns)


def snapshot_name(name: str) -> str:
    """``name`` if it can name a snapshot: 1 to NAME_MAX bytes, no "/", NUL or control characters,
    not "." or ".." (names appear in listings and, one day, as directories)."""
    if not isinstance(name, str):
        raise Invalid(f"a snapshot name is a str, not {type(name).__name__}", name)
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > NAME_MAX:
        raise NameTooLong(f"a snapshot name is 1 to {NAME_MAX} bytes, not {len(raw)}")
    bad = sorted({c for c in name if c == "/" or ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:  # (the name goes in the message as repr: it may hold a newline)
        raise Invalid(f"snapshot name {name!r} holds {', '.join(map(repr, bad))}: "
                      f"a snapshot name cannot hold '/' or control characters")
    if name in (".", ".."):
        raise Invalid(f"{name!r} cannot name a snapshot")
    return name


def rollback(fs, name: str) -> None:
    """Make the live tree a copy of snapshot ``name`` (which stays); durable when this returns.

    The new tree reaches the device in one checkpoint root, so a crash
    leaves the volume as it was before or as the snapshot, never a mixture.
    Refused (EBUSY) while files are open: their descriptors would point into
    a tree that is gone.
    """
    with fs._lock:
        fs._check_usable()
        snap = fs.snapshot(name)
        if fs._held:
            raise Busy(f"cannot roll back to snapshot {name!r}: {len(fs._held)} file(s) are open", name)
        fs._write_pending()  # everything logged so far goes out before the checkpoint that replaces it
        old = fs.ns
        fs.ns = snap.ns.snapshot()  # a copy that adds its own references to the blocks
        fs.ns.next_ino = max(old.next_ino, fs.ns.next_ino)  # numbers the old tree used stay unused
        _count_references(old, -1)  # the checkpoint saves valid counts without the old tree
        try:
            fs.checkpoint()
        except NoSpace:
            _count_references(old, +1)
            fs.ns.drop()
            fs.ns = old
            raise


def _count_references(ns, sign: int) -> None:
    """Add (+1) or remove (-1) a tree's references to its blocks in the shared valid counts."""
    for node in ns.inodes.values():
        if node.is_reg:
            for _, lba, count in node.extents:
                ns._account(lba, count, sign)


class SnapshotView:
    """A snapshot as the vfs sees a file system: reads from the snapshot, every change refused.

    Open files hold nothing (a snapshot's inodes never go away while it
    exists); CSD kernels bind to frozen views of its files as to live ones.
    """

    def __init__(self, fs, name: str):
        self._fs = fs
        self.snapshot = fs.snapshot(name)
        self.name = name
        self.device = fs.device
        self.block_size = fs.block_size
        self.sb = fs.sb
        self._lock = fs._lock
        self.ROOT = self.snapshot.ROOT

    def __getattr__(self, attr):
        if attr in READS:
            return getattr(self.snapshot, attr)
        if attr in CHANGES:
            def refuse(*args, **kwargs):
                raise ReadOnlySnapshot(f"snapshot {self.name!r} is read-only")
            return refuse
        raise AttributeError(attr)

    def hold(self, ino: int) -> None:
        self.snapshot.getattr(ino)  # the inode exists

    def release(self, ino: int) -> None:
        pass

    def touch_atime(self, ino: int) -> None:
        pass  # a snapshot keeps its times

    def freeze(self, ino: int) -> FrozenView:
        with self._lock:
            return FrozenView(self._fs, self.snapshot._file(ino))

    def fsync(self, ino: int) -> None:
        pass

    def fdatasync(self, ino: int) -> None:
        pass

    def sync(self) -> None:
        pass

    def statfs(self):
        return self._fs.statfs()

    def unmount(self) -> None:
        self._fs.unmount()


READS = frozenset({"lookup", "find", "readdir", "readlink", "privileged", "getattr", "read", "seek_data",
                   "seek_hole", "getxattr", "listxattr"})
CHANGES = frozenset({"create", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "write",
                     "truncate", "fallocate", "setattr", "setxattr", "removexattr"})
