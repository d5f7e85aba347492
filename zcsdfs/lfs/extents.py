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

Random small overwrites of a large file leave about one extent per block.
Each overwrite then touches a single extent, and the paths that serve it
(``_floor`` for look-ups, ``_remap`` for the change) find that extent and
its neighbours by dict look-ups, searching the sorted keys only when those
miss: on such a map each search through the ``SortedDict``'s positional
index costs about a microsecond, several times what the change itself does.
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

    def get(self, key: int, default=None):
        i = bisect_left(self._keys, key)
        return self._values[i] if i < len(self._keys) and self._keys[i] == key else default

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

    def irange(self, minimum: int, maximum: int | None, inclusive: tuple[bool, bool]) -> Iterator[int]:
        keys = self._keys
        lo = (bisect_left if inclusive[0] else bisect_right)(keys, minimum)
        hi = len(keys) if maximum is None else (bisect_right if inclusive[1] else bisect_left)(keys, maximum)
        return iter(keys[lo:hi])

    def items(self):
        return zip(self._keys, self._values)

    def copy(self) -> "SmallMap":
        return SmallMap(list(self._keys), list(self._values))


class ExtentMap:
    """``first file block -> (lba, count)``, non-overlapping."""

    __slots__ = ("_extents", "blocks", "_end")

    def __init__(self):
        self._extents = SmallMap()
        self.blocks = 0  # mapped blocks, for st_blocks
        self._end: int | None = 0  # end(), kept until a change that can move it

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        """(first file block, lba, count) in file order."""
        for first, (lba, count) in self._extents.items():
            yield first, lba, count

    def __len__(self) -> int:
        return len(self._extents)

    def end(self) -> int:
        """One past the last mapped file block (0 for no extents)."""
        if self._end is None:
            first, (_, count) = self._extents.peekitem(-1) if self._extents else (0, (0, 0))
            self._end = first + count
        return self._end

    def mapped(self, block: int) -> bool:
        """Whether ``block`` is mapped; a map without holes (the usual file) answers without a search."""
        end = self.end()
        if block >= end:
            return False
        return self.blocks == end or self.lookup(block) is not None

    def lookup(self, block: int) -> int | None:
        """The LBA holding file block ``block``, or None for a hole."""
        first, lba, count = self._floor(block)
        return lba + block - first if block < first + count else None

    def extent_at(self, block: int) -> tuple[int, int] | None:
        """(LBA of ``block``, blocks mapped contiguously from it in its extent), or None for a hole."""
        first, lba, count = self._floor(block)
        return (lba + block - first, first + count - block) if block < first + count else None

    def _floor(self, block: int) -> tuple[int, int, int]:
        """(first block, lba, count) of the last extent starting at or before ``block``; count 0 if none.

        In a map fragmented by overwrites most blocks start an extent of their
        own, and the dict look-up that finds those is far cheaper than a search.
        """
        extents = self._extents
        hit = extents.get(block)
        if hit is not None:
            return block, *hit
        i = extents.bisect_right(block) - 1
        if i < 0:
            return block, 0, 0
        first, (lba, count) = extents.peekitem(i)
        return first, lba, count

    def _before(self, block: int) -> int | None:
        """The first block of the last extent starting before ``block``, or None; the dict answers most."""
        extents = self._extents
        if block - 1 in extents:
            return block - 1
        i = extents.bisect_left(block) - 1
        return extents.peekitem(i)[0] if i >= 0 else None

    def runs(self, first: int, count: int) -> Iterator[tuple[int, int, int | None]]:
        """Cover ``count`` blocks from ``first`` with (block, count, lba or None for a hole)."""
        end = first + count
        if count <= 0:
            return
        start, lba, n = self._floor(first)
        pos = first
        if first < start + n:
            pos = min(start + n, end)
            yield first, pos - first, lba + first - start
        extents = self._extents
        for start in extents.irange(first, end, inclusive=(False, False)):
            lba, n = extents[start]
            if start > pos:
                yield pos, start - pos, None
            pos = min(start + n, end)
            yield start, pos - start, lba
        if pos < end:
            yield pos, end - pos, None

    def map(self, first: int, count: int, lba: int) -> list[tuple[int, int]]:
        """Point ``count`` blocks from ``first`` at ``lba`` on; return the (lba, count) ranges displaced."""
        start, old, n = self._floor(first)
        if count > 0 and first + count <= start + n:
            return self._remap(start, old, n, first, count, lba)
        extents = self._extents
        displaced = self._unmap(first, first + count)
        self.blocks += count
        self._end = None
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

    def _remap(self, start: int, old: int, n: int, first: int, count: int, lba: int) -> list[tuple[int, int]]:
        """``map`` of blocks that all lie in the extent at ``start``, the usual overwrite.

        The outcome is the general path's (cut the blocks out, then merge the
        new run with whatever ends where it starts and starts where it ends),
        reached with dict look-ups where the general path makes five searches
        of the sorted keys, since on a map fragmented into thousands of
        extents each search costs as much as the rest of the remap.
        """
        extents = self._extents
        displaced = [(old + first - start, count)]
        end, stop = first + count, start + n
        same = lba == old + first - start  # remapped where it already was: the pieces rejoin
        if start < first:
            if same:
                first, lba = start, old
            else:
                extents[start] = (old, first - start)
        elif (left := self._before(first)) is not None:
            llba, ln = extents[left]
            if left + ln == first and llba + ln == lba:
                del extents[start]
                first, lba = left, llba
        if end < stop:
            if not same:
                extents[end] = (old + end - start, stop - end)
                stop = end
        else:
            right = extents.get(end)
            if right is not None and right[0] == lba + end - first:
                del extents[end]
                stop = end + right[1]
        extents[first] = (lba, stop - first)
        self._grow()
        return displaced

    def load(self, first: int, count: int, lba: int) -> None:
        """Add an extent of a checkpoint image, which lists them in file order, without merging."""
        extents = self._extents
        if extents and first < self.end():
            raise ValueError(f"extent at file block {first} overlaps or precedes the one before it")
        extents[first] = (lba, count)
        self.blocks += count
        self._end = None
        self._grow()

    def unmap(self, first: int, count: int) -> list[tuple[int, int]]:
        """Drop ``count`` blocks from ``first`` (punching a hole); return the ranges displaced."""
        return self._unmap(first, first + count)

    def unmap_from(self, first: int) -> list[tuple[int, int]]:
        """Drop every block from ``first`` on; return the ranges displaced."""
        return self._unmap(first, None)

    def _unmap(self, start: int, end: int | None) -> list[tuple[int, int]]:
        extents = self._extents
        hit = list(extents.irange(self._floor(start)[0], end, inclusive=(True, False)))
        displaced = []
        for first in hit:
            lba, n = extents[first]
            stop = first + n
            if stop <= start:
                continue
            lo, hi = max(first, start), stop if end is None else min(stop, end)
            displaced.append((lba + lo - first, hi - lo))
            if first < lo:
                extents[first] = (lba, lo - first)
            else:
                del extents[first]
            if hi < stop:
                extents[hi] = (lba + hi - first, stop - hi)
        self.blocks -= sum(n for _, n in displaced)
        self._end = None
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
        other._end = self._end
        return other
