"""The extent map against a reference of one entry per block, under random operation sequences.

The reference is a dict ``block -> lba`` plus the set of blocks joined to
the block before them in one extent. Joins follow the map's merging rule:
``map`` makes its blocks one run and joins it to a neighbour that continues
it on the device, ``unmap`` cuts at both ends, ``load`` joins nothing to
what came before. So the reference predicts not only where each block
lives but also the exact extents the map lists, and the ranges each change
displaces (its old extents, clipped to the range).

Block numbers stay below a few hundred and LBAs are often drawn to continue
a neighbour or to repeat the current mapping, so merges, splits, identity
remaps and the move from plain lists to a ``SortedDict`` all come up often.
"""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zcsdfs.lfs.extents import SMALL, ExtentMap

BLOCKS = 160  # room for several times SMALL one-block extents


class Reference:
    """One entry per block: the obviously right answer for every question the map answers."""

    def __init__(self):
        self.lba: dict[int, int] = {}
        self.joins: set[int] = set()  # block b shares an extent with b - 1

    def extents(self) -> list[tuple[int, int, int]]:
        out: list[list[int]] = []
        for b in sorted(self.lba):
            if out and b in self.joins and b - 1 in self.lba:
                out[-1][2] += 1
            else:
                out.append([b, self.lba[b], 1])
        return [tuple(e) for e in out]

    def clipped(self, first: int, end: int | None) -> list[tuple[int, int]]:
        """(lba, count) of the parts of the current extents inside ``first`` to ``end``."""
        out = []
        for start, lba, count in self.extents():
            lo, hi = max(start, first), start + count if end is None else min(start + count, end)
            if lo < hi:
                out.append((lba + lo - start, hi - lo))
        return out

    def map(self, first: int, count: int, lba: int) -> list[tuple[int, int]]:
        end = first + count
        displaced = self.clipped(first, end)
        for i in range(count):
            self.lba[first + i] = lba + i
            self.joins.add(first + i)
        self._join_if(first, self.lba.get(first - 1) == lba - 1)
        self._join_if(end, self.lba.get(end) == lba + count)
        return displaced

    def unmap(self, first: int, end: int | None) -> list[tuple[int, int]]:
        displaced = self.clipped(first, end)
        for b in [b for b in self.lba if b >= first and (end is None or b < end)]:
            del self.lba[b]
        self.joins.discard(first)
        if end is not None:
            self.joins.discard(end)
        return displaced

    def load(self, first: int, count: int, lba: int) -> None:
        self.map(first, count, lba)
        self.joins.discard(first)

    def _join_if(self, block: int, joined: bool) -> None:
        if joined:
            self.joins.add(block)
        else:
            self.joins.discard(block)


class ExtentMapMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.map = ExtentMap()
        self.ref = Reference()
        self.frozen: list[tuple[ExtentMap, list]] = []  # copies and the extents they had when taken

    def _lba(self, data, first: int, count: int) -> int:
        """A fresh LBA, or one that continues a neighbour or repeats the current mapping."""
        choices = [st.integers(0, 10_000)]
        if first - 1 in self.ref.lba:
            choices.append(st.just(self.ref.lba[first - 1] + 1))
        if first in self.ref.lba:
            choices.append(st.just(self.ref.lba[first]))
        if first + count in self.ref.lba:
            choices.append(st.just(self.ref.lba[first + count] - count))
        return data.draw(st.one_of(*choices))

    @rule(data=st.data(), first=st.integers(0, BLOCKS - 1), count=st.integers(1, 12))
    def map_blocks(self, data, first, count):
        lba = self._lba(data, first, count)
        assert self.map.map(first, count, lba) == self.ref.map(first, count, lba)

    @rule(data=st.data(), first=st.integers(0, BLOCKS - 1))
    def overwrite_one(self, data, first):
        """The random 4 KiB overwrite that fragments a map into one extent per block."""
        lba = data.draw(st.integers(0, 10_000))
        assert self.map.map(first, 1, lba) == self.ref.map(first, 1, lba)

    @rule(first=st.integers(0, BLOCKS - 1), count=st.integers(1, 40))
    def unmap(self, first, count):
        """A punched hole; the file system never punches zero blocks."""
        assert self.map.unmap(first, count) == self.ref.unmap(first, first + count)

    @rule(first=st.integers(0, BLOCKS - 1))
    def unmap_from(self, first):
        assert self.map.unmap_from(first) == self.ref.unmap(first, None)

    @rule(gap=st.integers(0, 3), count=st.integers(1, 6), lba=st.integers(0, 10_000))
    def load(self, gap, count, lba):
        first = self.map.end() + gap
        self.map.load(first, count, lba)
        self.ref.load(first, count, lba)

    @precondition(lambda self: len(self.frozen) < 3)
    @rule()
    def copy(self):
        self.frozen.append((self.map.copy(), list(self.map)))

    @rule(block=st.integers(0, BLOCKS + 20))
    def lookup(self, block):
        assert self.map.lookup(block) == self.ref.lba.get(block)
        assert self.map.mapped(block) == (block in self.ref.lba)
        run = self.map.extent_at(block)
        if block not in self.ref.lba:
            assert run is None
        else:
            start, lba, count = next(e for e in self.ref.extents() if e[0] <= block < e[0] + e[2])
            assert run == (lba + block - start, start + count - block)

    @rule(first=st.integers(0, BLOCKS + 20), count=st.integers(-1, 60))
    def runs(self, first, count):
        expected = []  # [block, count, lba or None], one block at a time
        for b in range(first, first + count):
            lba = self.ref.lba.get(b)
            if expected and lba is None and expected[-1][2] is None:
                expected[-1][1] += 1  # the hole goes on
            elif expected and lba is not None and b in self.ref.joins and b - 1 in self.ref.lba:
                expected[-1][1] += 1  # the extent goes on
            else:
                expected.append([b, 1, lba])
        assert list(self.map.runs(first, count)) == [tuple(r) for r in expected]

    @invariant()
    def same_extents(self):
        extents = self.ref.extents()
        assert list(self.map) == extents
        assert len(self.map) == len(extents)
        assert self.map.blocks == len(self.ref.lba)
        assert self.map.end() == (max(self.ref.lba) + 1 if self.ref.lba else 0)

    @invariant()
    def copies_unchanged(self):
        for twin, extents in self.frozen:
            assert list(twin) == extents


TestExtentMap = ExtentMapMachine.TestCase
TestExtentMap.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_fragmented_map_matches_reference():
    """Every other block remapped, then the rest: thousands of extents in the SortedDict, then one again."""
    m, ref = ExtentMap(), Reference()
    n = 8 * SMALL
    assert m.map(0, n, 1000) == ref.map(0, n, 1000) == []
    for b in range(0, n, 2):
        assert m.map(b, 1, 5000 + b) == ref.map(b, 1, 5000 + b) == [(1000 + b, 1)]
    assert len(m) == n
    assert list(m) == ref.extents()
    for b in range(1, n, 2):
        assert m.map(b, 1, 5000 + b) == ref.map(b, 1, 5000 + b) == [(1000 + b, 1)]
    assert list(m) == ref.extents() == [(0, 5000, n)]


def test_load_keeps_extents_apart():
    """A checkpoint image's extents stay as listed even where they are contiguous; a remap joins them."""
    m = ExtentMap()
    m.load(0, 2, 100)
    m.load(2, 2, 102)
    assert list(m) == [(0, 100, 2), (2, 102, 2)]
    assert m.map(2, 1, 102) == [(102, 1)]
    assert list(m) == [(0, 100, 4)]
