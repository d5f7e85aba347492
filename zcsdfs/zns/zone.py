"""Zone states, types and the report record, with NVMe's encodings."""

from __future__ import annotations

import enum

import attrs


class ZoneState(enum.IntEnum):
    """Zone states with their NVMe Zone State values (ZNS spec, Zone Descriptor)."""

    EMPTY = 0x1
    IMPLICIT_OPEN = 0x2
    EXPLICIT_OPEN = 0x3
    CLOSED = 0x4
    READ_ONLY = 0xD
    FULL = 0xE
    OFFLINE = 0xF

    @property
    def is_open(self) -> bool:
        return self in (ZoneState.IMPLICIT_OPEN, ZoneState.EXPLICIT_OPEN)

    @property
    def is_active(self) -> bool:
        """Open and closed zones hold active resources."""
        return self in (ZoneState.IMPLICIT_OPEN, ZoneState.EXPLICIT_OPEN, ZoneState.CLOSED)


class ZoneType(enum.IntEnum):
    SEQUENTIAL_WRITE_REQUIRED = 0x2


@attrs.frozen
class Zone:
    """One zone as ``report()`` returns it; LBAs are absolute logical blocks.

    As Linux reports them, a FULL zone's write pointer is ``start + size``.
    """

    index: int
    start: int
    size: int
    capacity: int
    write_pointer: int
    state: ZoneState
    type: ZoneType = ZoneType.SEQUENTIAL_WRITE_REQUIRED
