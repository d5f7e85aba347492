"""A file's block map: sorted extents from file block to device LBA.

Extents are merged where they are contiguous both in the file and on the
device, so a file written sequentially is one extent per log unit (or fewer)
whatever its size. Unmapped blocks are holes and read as zeros. Changing
the map returns the device ranges it stopped referencing, which is how the
caller keeps per-zone valid-block counts exact.

Most files have one extent or a few. A ``SortedDict`` costs about 1.9 KB
even when it holds one entry, which 100,000 small files would turn into
190 MB, so a map starts as two plain sorted lists (``SmallMap``) and moves
to a ``SortedDict`` once it holds more than ``SMALL`` extents, where
inserting into a list would start to cost more than the tree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterator

from sortedcontainers import SortedDict

SMALL = 32  # extents a map holds in plain lists before it becomes a SortedDict


class SmallMap:
    """The part of the ``SortedDict`` interface ``ExtentMap`` uses, on two sorted lists."""

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: list | None = None, values: list | None = None):
        self._keys = keys if keys is not None else []
        self._values = values if values is not None else []

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: int) -> bool:
        i = bisect_left(self._keys, key)
        return i < len(self._keys) and self._keys[i] == key

    def __getitem__(self, key: int):
        i = bisect_left(self._keys, key)
        if i == len(self._keys) or self._keys[i] != key:
            raise KeyError(key)
        return self._values[i]

    def __setitem__(self, key: int, value) -> None:
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            self._values[i] = value
        else:
            self._keys.insert(i, key)
            self._values.insert(i, value)

    def __delitem__(self, key: int) -> None:
        i = bisect_left(self._keys, key)
        if i == len(self._keys) or self._keys[i] != key:
            raise KeyError(key)
        del self._keys[i]
        del self._values[i]

    def bisect_left(self, key: int) -> int:
        return bisect_left(self._keys, key)

    def bisect_right(self, key: int) -> int:
        return bisect_right(self._keys, key)

    def peekitem(self, index: int):
        return self._keys[index], self._values[index]

    def keys(self) -> list:
        return self._keys

    def items(self):
        return zip(self._keys, self._values)

    def copy(self) -> "SmallMap":
        return SmallMap(list(self._keys), list(self._values))


class ExtentMap:
    """``first file block -> (lba, count)``, non-overlapping."""

    __slots__ = ("_extents", "blocks")

    def __init__(self):
        self._extents = SmallMap()
        self.blocks = 0  # mapped blocks, for st_blocks

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        """(first file block, lba, count) in file order."""
        for first, (lba, count) in self._extents.items():
            yield first, lba, count

    def __len__(self) -> int:
        return len(self._extents)

    def end(self) -> int:
        """One past the last mapped file block (0 for no extents)."""
        if not self._extents:
            return 0
        first, (_, count) = self._extents.peekitem(-1)
        return first + count

    def lookup(self, block: int) -> int | None:
        """The LBA holding file block ``block``, or None for a hole."""
        i = self._extents.bisect_right(block) - 1
        if i < 0:
            return None
        first, (lba, count) = self._extents.peekitem(i)
        return lba + block - first if block < first + count else None

    def extent_at(self, block: int) -> tuple[int, int] | None:
        """(LBA of ``block``, blocks mapped contiguously from it in its extent), or None for a hole."""
        i = self._extents.bisect_right(block) - 1
        if i < 0:
            return None
        first, (lba, count) = self._extents.peekitem(i)
        return (lba + block - first, first + count - block) if block < first + count else None

    def runs(self, first: int, count: int) -> Iterator[tuple[int, int, int | None]]:
        """Cover ``count`` blocks from ``first`` with (block, count, lba or None for a hole)."""
        end = first + count
        pos = first
        extents = self._extents
        i = max(extents.bisect_right(first) - 1, 0)
        keys = extents.keys()
        while pos < end and i < len(keys):
            start = keys[i]
            lba, n = extents[start]
            if start + n <= pos:
                i += 1
                continue
            if start >= end:
                break
            if start > pos:
                yield pos, start - pos, None
                pos = start
            stop = min(start + n, end)
            yield pos, stop - pos, lba + pos - start
            pos = stop
            i += 1
        if pos < end:
            yield pos, end - pos, None

    def map(self, first: int, count: int, lba: int) -> list[tuple[int, int]]:
        """Point ``count`` blocks from ``first`` at ``lba`` on; return the (lba, count) ranges displaced."""
        displaced = self._unmap(first, first + count)
        self.blocks += count
        extents = self._extents
        i = extents.bisect_left(first)
        if i > 0:
            left, (llba, ln) = extents.peekitem(i - 1)
            if left + ln == first and llba + ln == lba:
                del extents[left]
                first, lba, count = left, llba, ln + count
        right = first + count
        if right in extents:
            rlba, rn = extents[right]
            if lba + count == rlba:
                del extents[right]
                count += rn
        extents[first] = (lba, count)
        self._grow()
        return displaced

    def load(self, first: int, count: int, lba: int) -> None:
        """Add an extent of a checkpoint image, which lists them in file order, without merging."""
        extents = self._extents
        if extents and first < self.end():
            raise ValueError(f"extent at file block {first} overlaps or precedes the one before it")
        extents[first] = (lba, count)
        self.blocks += count
        self._grow()

    def unmap(self, first: int, count: int) -> list[tuple[int, int]]:
        """Drop ``count`` blocks from ``first`` (punching a hole); return the ranges displaced."""
        return self._unmap(first, first + count)

    def unmap_from(self, first: int) -> list[tuple[int, int]]:
        """Drop every block from ``first`` on; return the ranges displaced."""
        return self._unmap(first, None)

    def _unmap(self, start: int, end: int | None) -> list[tuple[int, int]]:
        extents = self._extents
        displaced = []
        i = max(extents.bisect_right(start) - 1, 0)
        while i < len(extents):
            first, (lba, n) = extents.peekitem(i)
            if end is not None and first >= end:
                break
            stop = first + n
            if stop <= start:
                i += 1
                continue
            del extents[first]
            lo, hi = max(first, start), stop if end is None else min(stop, end)
            displaced.append((lba + lo - first, hi - lo))
            if first < lo:
                extents[first] = (lba, lo - first)
                i += 1
            if hi < stop:
                extents[hi] = (lba + hi - first, stop - hi)
                i += 1
        self.blocks -= sum(n for _, n in displaced)
        self._grow()
        return displaced

    def _grow(self) -> None:
        """Move a map that outgrew the plain lists into a SortedDict."""
        extents = self._extents
        if len(extents) > SMALL and isinstance(extents, SmallMap):
            self._extents = SortedDict(extents.items())

    def copy(self) -> "ExtentMap":
        """An independent copy: a frozen view of the file's blocks as they are now."""
        other = ExtentMap()
        other._extents = self._extents.copy()
        other.blocks = self.blocks
        return other
