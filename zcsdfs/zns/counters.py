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


class Counters:
    """Per-zone counters plus device totals computed from them."""

    def __init__(self, zones: int):
        self.zones = [ZoneCounters() for _ in range(zones)]

    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.zones)

    @property
    def blocks_written(self) -> int:
        """Blocks the device stored, by write and by append."""
        return self.total("blocks_written") + self.total("blocks_appended")

    @property
    def blocks_read(self) -> int:
        return self.total("blocks_read")

    def transitions(self) -> Counter:
        out: Counter = Counter()
        for c in self.zones:
            out.update(c.transitions)
        return out

    def as_dict(self) -> dict:
        return {name: self.total(name) for name in
                ("blocks_written", "blocks_appended", "blocks_read", "resets", "finishes")}
