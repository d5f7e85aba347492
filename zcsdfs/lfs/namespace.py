"""The namespace: every inode, and the one function that changes them.

``apply`` is the only way the namespace changes, for live operations, for
checkpoint images and for roll-forward alike. It also keeps the per-zone
valid-block counts (blocks some extent points at), which garbage collection
uses to pick victims and ``fsck`` recomputes from scratch.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from zcsdfs.lfs import records
from zcsdfs.lfs.inode import Inode

ROOT_INO = 1


class Namespace:
    """The inodes of the live tree or of one snapshot.

    Snapshots share the live tree's ``valid`` list, so a zone's count is the
    number of references to its blocks from the live tree and every snapshot
    (a block both reference counts twice); a zone with none holds garbage.
    """

    def __init__(self, zones: int, zone_size: int, valid: list[int] | None = None):
        self.inodes: dict[int, Inode] = {}
        self.valid = [0] * zones if valid is None else valid
        self.next_ino = ROOT_INO + 1
        self._zone_size = zone_size

    def apply(self, rec, data_lba: int = 0) -> None:
        """Apply one record; a ``Data`` record maps its blocks from ``data_lba``."""
        match rec:
            case records.Inode():
                node = self.inodes.get(rec.ino)
                if node is None:
                    self.inodes[rec.ino] = Inode(rec)
                    self.next_ino = max(self.next_ino, rec.ino + 1)
                else:
                    node.update(rec)
            case records.Dentry():
                self.inodes[rec.parent].entries[rec.name] = rec.child
                child = self.inodes[rec.child]
                if child.is_dir:
                    child.parent = rec.parent
            case records.Undentry():
                del self.inodes[rec.parent].entries[rec.name]
            case records.Free():
                node = self.inodes.pop(rec.ino)
                if node.is_reg:
                    self._release(node.extents.unmap_from(0))
            case records.Xattr():
                self.inodes[rec.ino].xattrs[rec.name] = rec.value
            case records.Unxattr():
                del self.inodes[rec.ino].xattrs[rec.name]
            case records.Truncate():
                self._release(self.inodes[rec.ino].extents.unmap_from(rec.first_block))
            case records.Data():
                self._map(rec.ino, rec.first_block, rec.count, data_lba)
            case records.Kept():
                pass
            case records.Map():
                self._map(rec.ino, rec.first_block, rec.count, rec.lba)
            case records.Counters():
                self.next_ino = max(self.next_ino, rec.next_ino)
            case _:
                raise TypeError(f"{rec!r} does not change the namespace")

    def apply_unit(self, recs: Iterable, data_lba: int) -> None:
        """Apply a log unit's records; its ``Data`` records take its data blocks in order."""
        for rec in recs:
            self.apply(rec, data_lba)
            if isinstance(rec, (records.Data, records.Kept)):
                data_lba += rec.count

    def _map(self, ino: int, first: int, count: int, lba: int) -> None:
        self._release(self.inodes[ino].extents.map(first, count, lba))
        self._account(lba, count, 1)

    def _release(self, displaced: list[tuple[int, int]]) -> None:
        for lba, count in displaced:
            self._account(lba, count, -1)

    def _account(self, lba: int, count: int, sign: int) -> None:
        zs = self._zone_size
        while count:
            zone = lba // zs
            n = min(count, (zone + 1) * zs - lba)
            self.valid[zone] += sign * n
            lba += n
            count -= n

    def snapshot(self) -> "Namespace":
        """A point-in-time copy sharing this namespace's valid counts (and adding its references)."""
        copy = Namespace(len(self.valid), self._zone_size, self.valid)
        copy.next_ino = self.next_ino
        for node in self.inodes.values():
            twin = copy.inodes[node.ino] = Inode(node.record())
            twin.parent = node.parent
            twin.xattrs = dict(node.xattrs)
            if node.is_dir:
                twin.entries = dict(node.entries)
            elif node.is_reg:
                twin.extents = node.extents.copy()
                for _, lba, count in node.extents:
                    self._account(lba, count, 1)
        return copy

    def drop(self) -> None:
        """Remove every inode, releasing its references (deleting a snapshot)."""
        for ino in list(self.inodes):
            self.apply(records.Free(ino))

    def image(self) -> Iterator:
        """Records that rebuild this namespace from nothing (inodes before the entries naming them)."""
        for node in self.inodes.values():
            yield node.record()
        for node in self.inodes.values():
            if node.is_dir:
                for name, child in node.entries.items():
                    yield records.Dentry(node.ino, name, child)
            elif node.is_reg:
                for first, lba, count in node.extents:
                    yield records.Map(node.ino, first, count, lba)
            for name, value in node.xattrs.items():
                yield records.Xattr(node.ino, name, value)
