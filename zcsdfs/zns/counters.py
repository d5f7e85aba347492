"""I/O and state-transition counters, per zone and for the whole device.

Upper layers derive write amplification from them (device blocks written
over user blocks written) and the TUI shows them.
"""

from __future__ import annotations

from collections import Counter


class ZoneCounters:
    __slots__ = ("blocks_written", "blocks_appended", "blocks_read", "resets", "finishes", "transitions")

    def __init__(self):
        self.blocks_written = 0
        self.blocks_appended = 0
        self.blocks_read = 0
        self.resets = 0
        self.finishes = 0
        self.transitions: Counter = Counter()  # (old state, new state) -> count

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__ if name != "transitions"}


class PerZone:
    """A sequence of ``ZoneCounters``, one per zone, each made when first used: a device of a
    million zones opens without making a million objects."""

    def __init__(self, zones: int):
        self._len = zones
        self._made: dict[int, ZoneCounters] = {}

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("zone index out of range")
        made = self._made.get(index)
        if made is None:
            made = self._made[index] = ZoneCounters()
        return made

    def __iter__(self):
        return (self[i] for i in range(self._len))

    def used(self):
        """The counters of the zones that have been used (the others are all zero)."""
        return self._made.values()


class Counters:
    """Per-zone counters plus device totals computed from them."""

    def __init__(self, zones: int):
        self.zones = PerZone(zones)

    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.zones.used())

    @property
    def blocks_written(self) -> int:
        """Blocks the device stored, by write and by append."""
        return self.total("blocks_written") + self.total("blocks_appended")

    @property
    def blocks_read(self) -> int:
        return self.total("blocks_read")

    def transitions(self) -> Counter:
        out: Counter = Counter()
        for c in self.zones.used():
            out.update(c.transitions)
        return out

    def as_dict(self) -> dict:
        return {name: self.total(name) for name in
                ("blocks_written", "blocks_appended", "blocks_read", "resets", "finishes")}
