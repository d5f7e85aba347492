"""A reference model of an NVMe ZNS namespace, written from the spec, not from device.py.

It keeps, per zone, the state, the write pointer and the blocks written, and
answers each command with ``("ok", value)`` or ``("error", ExceptionClass)``.
Where the spec leaves a choice, it makes the one zcsdfs documents: an
implicit open at the open limit closes the least recently opened
implicitly-open zone, an explicit open at the limit fails, reads past a
zone's capacity are a Zone Boundary Error, and failed commands change
nothing. Errors are checked in this order: LBA range, write pointer (Zone
Invalid Write), length (Invalid Field), zone state, zone boundary, media
(injected), then open/active resources.
"""

from __future__ import annotations

from collections import Counter

from zcsdfs.zns import (
    InvalidField,
    InvalidZoneStateTransition,
    LbaOutOfRange,
    MediaError,
    TooManyActiveZones,
    TooManyOpenZones,
    Zone,
    ZoneBoundaryError,
    ZoneFull,
    ZoneInvalidWrite,
    ZoneOffline,
    ZoneReadOnly,
    ZoneState,
)

E, IO, EO, C, F, RO, OFF = (ZoneState.EMPTY, ZoneState.IMPLICIT_OPEN, ZoneState.EXPLICIT_OPEN,
                            ZoneState.CLOSED, ZoneState.FULL, ZoneState.READ_ONLY, ZoneState.OFFLINE)
OPEN = {IO, EO}
ACTIVE = {IO, EO, C}


class Refused(Exception):
    """The model's way of saying "the device answers with this status"."""

    def __init__(self, cls):
        super().__init__(cls.__name__)
        self.cls = cls


class ModelZone:
    def __init__(self, start: int):
        self.start = start
        self.state = E
        self.blocks: list[bytes] = []  # what was written, in order; len() is wp - start
        self.written = self.appended = self.read = self.resets = self.finishes = 0
        self.transitions: Counter = Counter()

    @property
    def wp(self) -> int:
        return self.start + len(self.blocks)


class ZnsModel:
    def __init__(self, geometry):
        g = self.g = geometry
        self.zones = [ModelZone(i * g.zone_size) for i in range(g.zones)]
        self.implicit_order: list[int] = []  # implicitly open zones, oldest first
        self.write_faults: dict[int, int] = {}  # zone -> failures left
        self.read_faults: list[list[int]] = []  # [first, end, failures left]

    # -- bookkeeping -----------------------------------------------------------------

    @property
    def open_count(self) -> int:
        return sum(z.state in OPEN for z in self.zones)

    @property
    def active_count(self) -> int:
        return sum(z.state in ACTIVE for z in self.zones)

    def _set(self, index: int, new: ZoneState) -> None:
        z = self.zones[index]
        if z.state == new:
            return
        z.transitions[(z.state, new)] += 1
        if z.state == IO:
            self.implicit_order.remove(index)
        if new == IO:
            self.implicit_order.append(index)
        z.state = new

    def _zone(self, index) -> ModelZone:
        if not 0 <= index < self.g.zones:
            raise Refused(InvalidField)
        return self.zones[index]

    def _usable(self, z: ModelZone) -> None:
        if z.state == OFF:
            raise Refused(ZoneOffline)
        if z.state == RO:
            raise Refused(ZoneReadOnly)

    def _need_active(self) -> None:
        if self.g.max_active and self.active_count >= self.g.max_active:
            raise Refused(TooManyActiveZones)

    def _need_open(self, implicit: bool) -> None:
        if not self.g.max_open or self.open_count < self.g.max_open:
            return
        if implicit and self.implicit_order:
            self._set(self.implicit_order[0], C)
            return
        raise Refused(TooManyOpenZones)

    # -- commands: each returns the device's answer ----------------------------------

    def run(self, command: str, *args):
        try:
            return "ok", getattr(self, command)(*args)
        except Refused as refusal:
            return "error", refusal.cls

    def write(self, lba: int, data: bytes, appended: bool = False):
        if not 0 <= lba < self.g.blocks:
            raise Refused(LbaOutOfRange)
        index = lba // self.g.zone_size
        z = self.zones[index]
        if lba != z.wp and z.state not in (F, RO, OFF):
            raise Refused(ZoneInvalidWrite)
        return self._write(index, data, appended)

    def append(self, index: int, data: bytes):
        z = self._zone(index)
        lba = z.wp
        self._write(index, data, appended=True)
        return lba

    def _write(self, index: int, data: bytes, appended: bool):
        z = self.zones[index]
        bs = self.g.block_size
        if not data or len(data) % bs:
            raise Refused(InvalidField)
        if z.state not in OPEN:
            if z.state == F:
                raise Refused(ZoneFull)
            self._usable(z)
        n = len(data) // bs
        if len(z.blocks) + n > self.g.zone_capacity:
            raise Refused(ZoneBoundaryError)
        if index in self.write_faults:
            self.write_faults[index] -= 1
            if not self.write_faults[index]:
                del self.write_faults[index]
            raise Refused(MediaError)
        if z.state not in OPEN:
            if z.state == E:
                self._need_active()
            self._need_open(implicit=True)
            self._set(index, IO)
        z.blocks.extend(data[i:i + bs] for i in range(0, len(data), bs))
        if appended:
            z.appended += n
        else:
            z.written += n
        if len(z.blocks) == self.g.zone_capacity:
            self._set(index, F)

    def read(self, lba: int, nblocks: int) -> bytes:
        g = self.g
        if nblocks <= 0:
            raise Refused(InvalidField)
        if lba < 0 or lba + nblocks > g.blocks:
            raise Refused(LbaOutOfRange)
        for fault in self.read_faults:
            if fault[0] < lba + nblocks and lba < fault[1]:
                fault[2] -= 1
                if not fault[2]:
                    self.read_faults.remove(fault)
                raise Refused(MediaError)
        spanned = range(lba // g.zone_size, (lba + nblocks - 1) // g.zone_size + 1)
        for index in spanned:
            z = self.zones[index]
            if z.state == OFF:
                raise Refused(ZoneOffline)
            if min(lba + nblocks, z.start + g.zone_size) > z.start + g.zone_capacity:
                raise Refused(ZoneBoundaryError)
        out = []
        for block in range(lba, lba + nblocks):
            z = self.zones[block // g.zone_size]
            offset = block - z.start
            out.append(z.blocks[offset] if offset < len(z.blocks) else bytes(g.block_size))
            z.read += 1
        return b"".join(out)

    def open(self, index: int):
        z = self._zone(index)
        self._usable(z)
        if z.state == EO:
            return
        if z.state == F:
            raise Refused(InvalidZoneStateTransition)
        if z.state == E:
            self._need_active()
        if z.state != IO:
            self._need_open(implicit=False)
        self._set(index, EO)

    def close(self, index: int):
        z = self._zone(index)
        self._usable(z)
        if z.state == C:
            return
        if z.state not in OPEN:
            raise Refused(InvalidZoneStateTransition)
        self._set(index, C if z.blocks else E)

    def finish(self, index: int):
        z = self._zone(index)
        self._usable(z)
        if z.state == F:
            return
        self._set(index, F)
        z.finishes += 1

    def reset(self, index: int):
        z = self._zone(index)
        self._usable(z)
        self._set(index, E)
        z.blocks = []
        z.resets += 1

    def reset_all(self):
        for index, z in enumerate(self.zones):
            if z.state in (IO, EO, C, F):
                self.reset(index)

    def flush(self):
        return None

    def make_read_only(self, index: int):
        z = self._zone(index)
        if z.state == OFF:
            raise Refused(ZoneOffline)
        self._set(index, RO)

    def make_offline(self, index: int):
        z = self._zone(index)
        if z.state == OFF:
            raise Refused(ZoneOffline)
        self._set(index, OFF)

    def fail_writes(self, index: int, times: int):
        self.write_faults[index] = times

    def fail_reads(self, lba: int, nblocks: int, times: int):
        self.read_faults.append([lba, lba + nblocks, times])

    # -- what the device reports ------------------------------------------------------

    def report(self, start: int = 0, count: int | None = None) -> list[Zone]:
        if not 0 <= start <= self.g.zones or (count is not None and count < 0):
            raise Refused(InvalidField)
        g = self.g
        chosen = self.zones[start:] if count is None else self.zones[start:start + count]
        return [Zone(index=z.start // g.zone_size, start=z.start, size=g.zone_size, capacity=g.zone_capacity,
                     write_pointer=z.start + g.zone_size if z.state == F else z.wp, state=z.state)
                for z in chosen]
