"""The namespace: every inode, and the one function that changes them.

``apply`` is the only way the namespace changes, for live operations, for
checkpoint images and for roll-forward alike. It also keeps the per-zone
valid-block counts (blocks some extent points at), which garbage collection
uses to pick victims and ``fsck`` recomputes from scratch.

Checkpoints save the namespace in groups of ``GROUP`` consecutive inode
numbers, one body chunk per group (``checkpoint.py``), and rewrite only the
groups that changed: ``apply`` marks the group of every inode it touches
(a directory entry belongs to its directory's group) in ``dirty``, and
``chunks`` remembers where the checkpoint saved each clean group.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from zcsdfs.lfs import records
from zcsdfs.lfs.checksums import BlockSums
from zcsdfs.lfs.inode import Inode

ROOT_INO = 1
MAP_BLOCKS = 1024  # most blocks one Map record of an image covers (4 KiB of checksums)
GROUP_BITS = 8
GROUP = 1 << GROUP_BITS  # inode numbers per checkpoint body group


class Namespace:
    """The inodes of the live tree or of one snapshot.

    Snapshots share the live tree's ``valid`` list, so a zone's count is the
    number of references to its blocks from the live tree and every snapshot
    (a block both reference counts twice); a zone with none holds garbage.
    """

    def __init__(self, zones: int, zone_size: int, valid: list[int] | None = None, sums: BlockSums | None = None):
        self.inodes: dict[int, Inode] = {}
        self.valid = [0] * zones if valid is None else valid
        self.sums = sums  # the data checksums by LBA (shared by every tree), which images save and load
        self.next_ino = ROOT_INO + 1
        self._zone_size = zone_size
        self.dirty: set[int] = set()  # groups changed since the checkpoint that saved them
        self.chunks: dict[int, tuple] = {}  # group -> records.Chunk frames holding it in the last checkpoint

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
            case records.Punch():
                self._release(self.inodes[rec.ino].extents.unmap(rec.first_block, rec.count))
            case records.Data():
                self._map(rec.ino, rec.first_block, rec.count, data_lba)
            case records.Kept():
                pass
            case records.Map():
                self._map(rec.ino, rec.first_block, rec.count, rec.lba)
            case _:
                raise TypeError(f"{rec!r} does not change the namespace")
        owner = getattr(rec, "parent", None)  # an entry belongs to its directory's group
        self.dirty.add((rec.ino if owner is None else owner) >> GROUP_BITS)

    def apply_unit(self, recs: Iterable, data_lba: int) -> None:
        """Apply a log unit's records; its ``Data`` records take its data blocks in order.

        A flushed write buffer is mostly ``Data`` records (one per run of blocks; random
        overwrites make one per block), so they skip ``apply``'s dispatch."""
        data, dirty = records.Data, self.dirty
        for rec in recs:
            if type(rec) is data:
                self._map(rec.ino, rec.first_block, rec.count, data_lba)
                dirty.add(rec.ino >> GROUP_BITS)
                data_lba += rec.count
                continue
            self.apply(rec, data_lba)
            if isinstance(rec, records.Kept):
                data_lba += rec.count

    def _map(self, ino: int, first: int, count: int, lba: int) -> None:
        valid, zs = self.valid, self._zone_size
        for old, n in self.inodes[ino].extents.map(first, count, lba):  # _release and _account, inlined
            if old // zs == (old + n - 1) // zs:
                valid[old // zs] -= n
            else:
                self._account(old, n, -1)
        if lba // zs == (lba + count - 1) // zs:
            valid[lba // zs] += count
        else:
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

    def load(self, recs: Iterable) -> None:
        """Add a checkpoint body chunk's records; call ``link_parents`` once every chunk is in.

        Unlike ``apply`` it takes an entry before the inode it names (that
        inode's group may come later) and marks nothing dirty: the chunks
        loaded are the saved copy.
        """
        inodes = self.inodes
        for rec in recs:
            kind = type(rec)
            if kind is records.Inode:
                inodes[rec.ino] = Inode(rec)
            elif kind is records.Dentry:
                inodes[rec.parent].entries[rec.name] = rec.child
            elif kind is records.Map:
                inodes[rec.ino].extents.load(rec.first_block, rec.count, rec.lba)
                self._account(rec.lba, rec.count, 1)
                self.sums.load(rec.lba, rec.seed, rec.sums)
            elif kind is records.Xattr:
                inodes[rec.ino].xattrs[rec.name] = rec.value
            else:
                raise TypeError(f"{rec!r} has no place in a checkpoint body")

    def link_parents(self) -> None:
        """Point every directory at the directory naming it, and resume inode numbers past the last."""
        inodes = self.inodes
        for node in inodes.values():
            if node.entries:
                for child in node.entries.values():
                    twin = inodes.get(child)  # fsck reports a missing one
                    if twin is not None and twin.entries is not None:
                        twin.parent = node.ino
        if inodes:
            self.next_ino = max(self.next_ino, max(inodes) + 1)

    def snapshot(self) -> "Namespace":
        """A point-in-time copy sharing this namespace's valid counts (and adding its references)."""
        copy = Namespace(len(self.valid), self._zone_size, self.valid, self.sums)
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
        copy.chunks = {group: chunks for group, chunks in self.chunks.items() if group not in self.dirty}
        copy.dirty = {ino >> GROUP_BITS for ino in copy.inodes} - copy.chunks.keys()  # clean groups share chunks
        return copy

    def drop(self) -> None:
        """Remove every inode, releasing its references (deleting a snapshot)."""
        for ino in list(self.inodes):
            self.apply(records.Free(ino))

    def image(self) -> Iterator:
        """Records that rebuild this namespace from nothing, group by group."""
        for group in sorted({ino >> GROUP_BITS for ino in self.inodes}):
            yield from self.group_image(group)

    def group_image(self, group: int) -> Iterator:
        """Records that rebuild one group: its inodes, then their entries, extents and attributes."""
        inodes = self.inodes
        nodes = [node for node in map(inodes.get, range(group << GROUP_BITS, (group + 1) << GROUP_BITS))
                 if node is not None]
        for node in nodes:
            yield node.record()
        for node in nodes:
            if node.is_dir:
                for name, child in node.entries.items():
                    yield records.Dentry(node.ino, name, child)
            elif node.is_reg:
                for first, lba, count in node.extents:
                    for at in range(0, count, MAP_BLOCKS):  # bounded records: an extent may span a whole zone
                        n = min(MAP_BLOCKS, count - at)
                        yield records.Map(node.ino, first + at, n, lba + at, *self.sums.export(lba + at, n))
            for name, value in node.xattrs.items():
                yield records.Xattr(node.ino, name, value)
