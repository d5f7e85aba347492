"""Snapshots: named, read-only, point-in-time copies of the whole volume.

Because the log never overwrites, a snapshot is only a copy of the metadata:
its extent maps point at the blocks the live tree pointed at when it was
taken, and those blocks stay valid (``Namespace`` counts every reference)
until the snapshot is deleted. Snapshots are saved in every checkpoint after
the live image; creating or deleting one takes a checkpoint, so both are
durable when they return. GC relocates a snapshot's blocks like live ones,
remapping every tree that references a block so shared blocks stay shared.
"""

from __future__ import annotations

import attrs

from zcsdfs.lfs.directory import NAME_MAX
from zcsdfs.lfs.errors import NameTooLong, NotFound, Unmounted
from zcsdfs.lfs.reader import TreeReader, ZonePins


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
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > NAME_MAX:
        raise NameTooLong(f"a snapshot name is 1 to {NAME_MAX} bytes, not {len(raw)}", name)
    return name
