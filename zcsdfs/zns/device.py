"""An emulated NVMe ZNS namespace: the zone state machine over a backend.

Semantics follow the NVMe Zoned Namespace Command Set: writes only at the
write pointer, zone append returning the LBA it wrote, implicit opening on
write, open and active resource limits (an implicit open over the limit
closes the least recently opened implicitly-open zone, an explicit open over
it fails), and a volatile write cache: data and write-pointer moves become
durable on ``flush()`` or a write with ``fua=True``; reset and finish are
durable on completion. A device opened read-only refuses every command that
would change it (writes, appends, zone management) with EROFS, and its
flush and close write nothing.

Opening scales with the zones in use, not the zone count: per-zone state is
made when a zone is first touched (a zone never touched is EMPTY at its
start), the durable zone table is kept packed as the backend stores it and
updated entry by entry, and a flush visits only the zones written since the
last one. A device of a million zones opens in well under a second.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from array import array
from collections import OrderedDict

from zcsdfs.events import EventBus
from zcsdfs.zns.backend import ENTRY, ImageBackend, MemoryBackend
from zcsdfs.zns.counters import Counters
from zcsdfs.zns.errors import (
    DeviceReadOnly,
    InvalidField,
    InvalidZoneStateTransition,
    LbaOutOfRange,
    TooManyActiveZones,
    TooManyOpenZones,
    ZoneBoundaryError,
    ZoneFull,
    ZoneInvalidWrite,
    ZoneOffline,
    ZoneReadOnly,
)
from zcsdfs.zns.faults import FaultInjector
from zcsdfs.zns.geometry import Geometry
from zcsdfs.zns.stats import ZoneTransition
from zcsdfs.zns.zone import Zone, ZoneState

EMPTY = ZoneState.EMPTY
IMPLICIT_OPEN = ZoneState.IMPLICIT_OPEN
EXPLICIT_OPEN = ZoneState.EXPLICIT_OPEN
CLOSED = ZoneState.CLOSED
FULL = ZoneState.FULL
READ_ONLY = ZoneState.READ_ONLY
OFFLINE = ZoneState.OFFLINE
EMPTY_ENTRY = ENTRY.pack(EMPTY, 0)
_NOT_EMPTY = re.compile(rb"[^\x%02x]" % EMPTY)


class _ZoneCtl:
    """Mutable per-zone state. ``wp`` is where data ends (also after finish)."""

    __slots__ = ("index", "start", "cap_end", "state", "wp", "durable_wp", "buffer")

    def __init__(self, index: int, start: int, capacity: int):
        self.index = index
        self.start = start
        self.cap_end = start + capacity
        self.state = EMPTY
        self.wp = start
        self.durable_wp = start
        self.buffer = None  # the backend's memoryview, fetched on first use


class _OpenAction:
    """``ZonedDevice.open(path)`` opens an image; ``device.open(zone)`` opens a zone.

    Both spellings are the public API (one the constructor, one the NVMe
    Zone Management Send action), so the name dispatches on how it is reached.
    """

    def __get__(self, instance, owner):
        return owner.open_image if instance is None else instance.open_zone


class ZonedDevice:
    """A zoned namespace. Build one with ``memory``, ``create`` or ``open``."""

    open = _OpenAction()

    def __init__(self, geometry: Geometry, backend):
        self.geometry = geometry
        self.block_size = geometry.block_size
        self.path: str | None = getattr(backend, "path", None)
        self.counters = Counters(geometry.zones)
        self.generation = 0  # bumped by every write, read, reset and state change: snapshots reuse an unchanged table
        self.faults = FaultInjector(self)
        self.recorder = None  # a zcsdfs.zns.crash.Recorder while recording
        self.events = EventBus()  # zone state changes here; the layers above publish on it too
        self.readonly: bool = backend.readonly
        self._backend = backend
        self._zones: list[_ZoneCtl | None] = [None] * geometry.zones  # made on first use (``_get``)
        self._unflushed: set[int] = set()  # zones written since the last flush
        self._persistent = backend.persistent
        self._entries = bytearray(EMPTY_ENTRY * geometry.zones) if self._persistent else None
        self._entries_changed = False  # the durable table differs from the one the backend holds
        self._changed: set[int] = set()  # zones whose entries changed since the backend saved the table
        self._implicit: OrderedDict[int, None] = OrderedDict()  # implicitly open, oldest first
        self._open = 0
        self._active = 0
        self._closed = False
        table = backend.load_table()
        if table is not None:
            self._restore(table)

    # -- constructors ----------------------------------------------------------------

    @classmethod
    def memory(cls, geometry: Geometry | str = "tiny") -> "ZonedDevice":
        geometry = Geometry.preset(geometry) if isinstance(geometry, str) else geometry
        return cls(geometry, MemoryBackend(geometry))

    @classmethod
    def create(cls, path: str | os.PathLike, geometry: Geometry | str = "tiny") -> "ZonedDevice":
        geometry = Geometry.preset(geometry) if isinstance(geometry, str) else geometry
        path = os.fspath(path)
        try:
            backend = ImageBackend.create(path, geometry)
        except FileExistsError:
            raise FileExistsError(17, "image already exists", path) from None
        return cls(geometry, backend)

    @classmethod
    def open_image(cls, path: str | os.PathLike, *, readonly: bool = False) -> "ZonedDevice":
        """Open an existing image file (also spelled ``ZonedDevice.open(path)``); ``readonly``
        opens it without the right to write, and nothing is ever written to it."""
        backend = ImageBackend.open(os.fspath(path), readonly)
        try:
            return cls(backend.geometry, backend)
        except BaseException:
            backend.close()
            raise

    def _restore(self, table) -> None:
        """After a power cycle no zone is open: written zones come back CLOSED.

        ``table`` is the packed durable table (``backend.ENTRY`` per zone);
        only the zones it does not list as EMPTY at their start get state.
        """
        if self._persistent:
            self._entries[:] = table
        states = bytes(memoryview(table)[0::ENTRY.size])
        used = [m.start() for m in _NOT_EMPTY.finditer(states)]
        words = array("Q")
        words.frombytes(table)
        if sys.byteorder != "little":
            words.byteswap()
        written = words[1::2]
        if len(written) - written.count(0) != sum(1 for i in used if written[i]):  # an EMPTY zone with data
            used = sorted(set(used) | {i for i, n in enumerate(written) if n})
        for i in used:
            z = self._get(i)
            state = ZoneState(states[i])
            z.wp = z.durable_wp = z.start + written[i]
            if state in (FULL, READ_ONLY, OFFLINE):
                z.state = state
            elif z.wp == z.cap_end:
                z.state = FULL
            elif written[i]:
                z.state = CLOSED
                self._active += 1
            else:
                z.state = EMPTY
            self._update_entry(z)
        self._entries_changed = False  # what opening concluded is saved with the next change, as before

    def _get(self, index: int) -> _ZoneCtl:
        z = self._zones[index]
        if z is None:
            g = self.geometry
            z = self._zones[index] = _ZoneCtl(index, index * g.zone_size, g.zone_capacity)
        return z

    def _written(self, index: int) -> int:
        """Blocks written to zone ``index``, flushed or not (for the crash recorder)."""
        z = self._zones[index]
        return 0 if z is None else z.wp - z.start

    # -- reporting -------------------------------------------------------------------

    def report(self, start_zone: int = 0, count: int | None = None) -> list[Zone]:
        """Zone descriptors, like ``blkzone report``."""
        if not 0 <= start_zone <= self.geometry.zones:
            raise InvalidField(f"start zone {start_zone} out of range", zone=start_zone)
        if count is not None and count < 0:
            raise InvalidField(f"negative zone count {count}", zone=start_zone)
        end = self.geometry.zones if count is None else min(self.geometry.zones, start_zone + count)
        return [self._describe(i) for i in range(start_zone, end)]

    def report_used(self) -> list[Zone]:
        """Descriptors of the zones not EMPTY, in zone order: what a report filtered on state gives
        (NVMe's Zone Receive Action Specific field), without a descriptor for every empty zone."""
        return [self._describe(z.index) for z in itertools.compress(self._zones, self._zones)
                if z.state is not EMPTY or z.wp != z.start]

    def _describe(self, index: int) -> Zone:
        g = self.geometry
        z = self._zones[index]
        if z is None:
            start = index * g.zone_size
            return Zone(index, start, g.zone_size, g.zone_capacity, start, EMPTY)
        return Zone(index, z.start, g.zone_size, g.zone_capacity,
                    z.start + g.zone_size if z.state is FULL else z.wp, z.state)

    def zone(self, index: int) -> Zone:
        if self._closed:
            raise InvalidField("device is closed")
        if not isinstance(index, int) or not 0 <= index < self.geometry.zones:
            raise InvalidField(f"no zone {index} (the device has {self.geometry.zones})")
        return self._describe(index)

    def zone_of(self, lba: int) -> int:
        """Index of the zone holding ``lba``."""
        if not 0 <= lba < self.geometry.blocks:
            raise LbaOutOfRange(f"LBA beyond the end of the device ({self.geometry.blocks} blocks)", lba=lba)
        return lba // self.geometry.zone_size

    @property
    def open_zones(self) -> int:
        return self._open

    @property
    def active_zones(self) -> int:
        return self._active

    # -- I/O -------------------------------------------------------------------------

    def read(self, lba: int, nblocks: int) -> bytes:
        if nblocks <= 0:
            raise InvalidField(f"read of {nblocks} blocks", lba=lba)
        buf = bytearray(nblocks * self.block_size)
        self.read_into(lba, buf)
        return bytes(buf)

    def read_bytes(self, lba: int, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` bytes into block ``lba``: one copy, for file reads.

        The common case (inside one zone's written blocks, no faults armed)
        slices the zone buffer directly; anything else goes through
        ``read_into`` with all its checks and zero-filling.
        """
        bs = self.block_size
        first = lba + offset // bs
        last = lba + -(-(offset + length) // bs)
        if not self._closed and not self.faults.active and length > 0 and first >= 0:
            zone_size = self.geometry.zone_size
            z = self._zones[first // zone_size] if first < self.geometry.blocks else None
            if z is not None and last <= z.wp and last <= z.start + zone_size and z.state is not OFFLINE:
                if z.buffer is None:
                    z.buffer = self._backend.zone_buffer(z.index)
                at = (lba - z.start) * bs + offset
                self.counters.zones[z.index].blocks_read += last - first
                self.generation += 1
                return bytes(z.buffer[at:at + length])
        buf = bytearray((last - first) * bs)
        self.read_into(first, buf)
        skip = offset % bs
        return bytes(memoryview(buf)[skip:skip + length])

    def lend(self, lba: int, nblocks: int) -> memoryview | None:
        """Written blocks ``[lba, lba + nblocks)`` of one zone as a read-only view of the device's
        memory, without a copy (counted as read), for native code to read without a callback;
        None when a copying read is needed (faults armed, the device closed, the range not all
        written, or not in one zone). The view is valid until the zone is reset: pin it first.
        """
        if self._closed or self.faults.active or nblocks <= 0 or not 0 <= lba < self.geometry.blocks:
            return None
        z = self._zones[lba // self.geometry.zone_size]
        if lba + nblocks > z.wp or z.state is OFFLINE:
            return None
        if z.buffer is None:
            z.buffer = self._backend.zone_buffer(z.index)
        at = (lba - z.start) * self.block_size
        self.counters.zones[z.index].blocks_read += nblocks
        return z.buffer[at:at + nblocks * self.block_size].toreadonly()

    def read_into(self, lba: int, buffer) -> None:
        """Fill ``buffer`` (a whole number of blocks) from ``lba`` on.

        Unwritten blocks below a zone's capacity read as zeros (deallocated);
        reads may cross zone boundaries, not a zone's capacity.
        """
        if self._closed:
            raise InvalidField("device is closed")
        out = memoryview(buffer).cast("B")
        bs = self.block_size
        nbytes = out.nbytes
        if nbytes % bs or nbytes == 0:
            raise InvalidField(f"read length {nbytes} is not a positive multiple of {bs}", lba=lba)
        nblocks = nbytes // bs
        if lba < 0 or lba + nblocks > self.geometry.blocks:
            raise LbaOutOfRange(f"read of {nblocks} blocks past the end of the device "
                                f"({self.geometry.blocks} blocks)", lba=lba)
        if self.faults.active:
            self.faults.check_read(lba, nblocks)
        zone_size = self.geometry.zone_size
        last = lba + nblocks
        # Check every zone first, so a failed read neither copies nor counts anything.
        for i in range(lba // zone_size, (last - 1) // zone_size + 1):
            z = self._get(i)
            cur = max(lba, z.start)
            if z.state is OFFLINE:
                raise ZoneOffline("read from an offline zone", zone=z.index, lba=cur)
            if min(last, z.start + zone_size) > z.cap_end:
                raise ZoneBoundaryError("read beyond the zone capacity", zone=z.index, lba=max(cur, z.cap_end))
        pos = 0
        while pos < nbytes:
            cur = lba + pos // bs
            z = self._get(cur // zone_size)
            end = min(last, z.start + zone_size)
            valid_end = min(end, z.wp)
            piece = (end - cur) * bs
            if valid_end > cur:
                if z.buffer is None:
                    z.buffer = self._backend.zone_buffer(z.index)
                n = (valid_end - cur) * bs
                off = (cur - z.start) * bs
                out[pos:pos + n] = z.buffer[off:off + n]
                out[pos + n:pos + piece] = bytes(piece - n)
            else:
                out[pos:pos + piece] = bytes(piece)
            self.counters.zones[z.index].blocks_read += end - cur
            pos += piece
        self.generation += 1

    def write(self, lba: int, data, *, fua: bool = False) -> None:
        """Write whole blocks at the write pointer of the zone holding ``lba``."""
        if self._closed:
            raise InvalidField("device is closed")
        if self.readonly:
            self._refuse("write", lba=lba)
        z = self._get(self.zone_of(lba))
        if lba != z.wp and z.state not in (FULL, READ_ONLY, OFFLINE):
            raise ZoneInvalidWrite(f"write not at the write pointer (LBA {z.wp})", zone=z.index, lba=lba)
        self._write(z, data, fua, appended=False)

    def append(self, zone: int, data, *, fua: bool = False) -> int:
        """Zone append: write at the write pointer and return the first LBA written."""
        z = self._ctl(zone)
        if self.readonly:
            self._refuse("append", zone=zone)
        lba = z.wp
        self._write(z, data, fua, appended=True)
        return lba

    def _write(self, z: _ZoneCtl, data, fua: bool, appended: bool) -> None:
        """Every check comes before the implicit open, so a failed write changes nothing."""
        mv = memoryview(data)
        nbytes = mv.nbytes
        bs = self.block_size
        if nbytes % bs or nbytes == 0:
            raise InvalidField(f"write length {nbytes} is not a positive multiple of {bs}",
                               zone=z.index, lba=z.wp)
        state = z.state
        opening = state is not IMPLICIT_OPEN and state is not EXPLICIT_OPEN
        if opening:
            self._check_writable(z)
        nblocks = nbytes // bs
        lba = z.wp
        end = lba + nblocks
        if end > z.cap_end:
            raise ZoneBoundaryError(f"write of {nblocks} blocks crosses the zone capacity "
                                    f"({z.cap_end - lba} blocks left)", zone=z.index, lba=lba)
        if self.faults.active:
            self.faults.check_write(z.index, lba)
        if opening:
            self._open_for_write(z)
        self._backend.write(z.index, (lba - z.start) * bs, mv)
        z.wp = end
        self._unflushed.add(z.index)
        c = self.counters.zones[z.index]
        if appended:
            c.blocks_appended += nblocks
        else:
            c.blocks_written += nblocks
        self.generation += 1
        if self.recorder is not None:
            self.recorder.write(z.index, lba - z.start, bytes(mv), fua)
        if end == z.cap_end:
            self._transition(z, FULL)
        if fua:
            self._make_durable(z)

    # -- zone management ------------------------------------------------------------------

    def open_zone(self, zone: int) -> None:
        """Explicitly open a zone (also spelled ``device.open(zone)``).

        Fails at the open limit rather than closing another zone.
        """
        z = self._ctl(zone)
        if self.readonly:
            self._refuse("open", zone=zone)
        self._check_usable(z, "open")
        state = z.state
        if state is EXPLICIT_OPEN:
            return
        if state is FULL:
            raise InvalidZoneStateTransition("cannot open a full zone", zone=z.index)
        if state is EMPTY:
            self._check_active(z)
        if state is not IMPLICIT_OPEN:
            self._check_open(z, implicit=False)
        self._transition(z, EXPLICIT_OPEN)
        self._record("open", z.index)

    def close(self, zone: int) -> None:
        z = self._ctl(zone)
        if self.readonly:
            self._refuse("close", zone=zone)
        self._check_usable(z, "close")
        state = z.state
        if state is CLOSED:
            return
        if not state.is_open:
            raise InvalidZoneStateTransition(f"cannot close a zone in state {state.name}", zone=z.index)
        self._transition(z, EMPTY if z.wp == z.start else CLOSED)
        self._record("close", z.index)

    def finish(self, zone: int) -> None:
        """Move the zone to FULL; the blocks it never wrote read as zeros."""
        z = self._ctl(zone)
        if self.readonly:
            self._refuse("finish", zone=zone)
        self._check_usable(z, "finish")
        if z.state is FULL:
            return
        self._transition(z, FULL)
        self.counters.zones[z.index].finishes += 1
        self.generation += 1
        self._record("finish", z.index)
        self._make_durable(z)

    def reset(self, zone: int) -> None:
        """Move the zone to EMPTY with its write pointer at the zone start."""
        z = self._ctl(zone)
        if self.readonly:
            self._refuse("reset", zone=zone)
        if z.state is OFFLINE:
            raise ZoneOffline("cannot reset an offline zone", zone=z.index)
        if z.state is READ_ONLY:
            raise ZoneReadOnly("cannot reset a read-only zone", zone=z.index)
        self._transition(z, EMPTY)
        z.wp = z.start
        self.counters.zones[z.index].resets += 1
        self.generation += 1
        self._record("reset", z.index)
        self._make_durable(z)

    def reset_all(self) -> None:
        """Reset every zone that can be reset (NVMe's Select All skips the others)."""
        for z in itertools.compress(self._zones, self._zones):
            if z.state not in (READ_ONLY, OFFLINE) and (z.state is not EMPTY or z.wp != z.start):
                self.reset(z.index)

    def flush(self) -> None:
        """Make every write so far durable (read-only: there are none, and nothing is written)."""
        if self._closed:
            raise InvalidField("device is closed")
        if self.readonly:
            return
        self._backend.sync()
        for index in self._unflushed:
            z = self._zones[index]
            z.durable_wp = z.wp
            self._update_entry(z)
        self._unflushed.clear()
        self._save_table()
        self._record("flush", None)

    def close_device(self) -> None:
        """Flush and release the backend (and the image's lock)."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        for z in itertools.compress(self._zones, self._zones):
            z.buffer = None
        self._backend.close()

    def __enter__(self) -> "ZonedDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close_device()

    # -- the state machine --------------------------------------------------------------

    def _ctl(self, zone: int) -> _ZoneCtl:
        if self._closed:
            raise InvalidField("device is closed")
        if not isinstance(zone, int) or not 0 <= zone < self.geometry.zones:
            raise InvalidField(f"no zone {zone} (the device has {self.geometry.zones})")
        return self._get(zone)

    def _refuse(self, action: str, zone: int | None = None, lba: int | None = None):
        raise DeviceReadOnly(f"cannot {action}: the device is open read-only", zone=zone, lba=lba,
                             path=self.path)

    def _check_usable(self, z: _ZoneCtl, action: str) -> None:
        if z.state is OFFLINE:
            raise ZoneOffline(f"cannot {action} an offline zone", zone=z.index)
        if z.state is READ_ONLY:
            raise ZoneReadOnly(f"cannot {action} a read-only zone", zone=z.index)

    def _check_writable(self, z: _ZoneCtl) -> None:
        if z.state is FULL:
            raise ZoneFull("write to a full zone", zone=z.index, lba=z.wp)
        self._check_usable(z, "write to")

    def _open_for_write(self, z: _ZoneCtl) -> None:
        """Implicit open of an EMPTY or CLOSED zone (its write already validated)."""
        if z.state is EMPTY:
            self._check_active(z)
        self._check_open(z, implicit=True)
        self._transition(z, IMPLICIT_OPEN)

    def _check_active(self, z: _ZoneCtl) -> None:
        limit = self.geometry.max_active
        if limit and self._active >= limit:
            raise TooManyActiveZones(f"all {limit} active zones are in use", zone=z.index)

    def _check_open(self, z: _ZoneCtl, implicit: bool) -> None:
        limit = self.geometry.max_open
        if not limit or self._open < limit:
            return
        if implicit and self._implicit:
            victim = self._zones[next(iter(self._implicit))]
            self._transition(victim, CLOSED)
            return
        raise TooManyOpenZones(f"all {limit} open zones are in use", zone=z.index)

    def _transition(self, z: _ZoneCtl, new: ZoneState) -> None:
        old = z.state
        if old is new:
            return
        self._open += new.is_open - old.is_open
        self._active += new.is_active - old.is_active
        if old is IMPLICIT_OPEN:
            del self._implicit[z.index]
        if new is IMPLICIT_OPEN:
            self._implicit[z.index] = None
        z.state = new
        self.generation += 1
        self._update_entry(z)
        self.counters.zones[z.index].transitions[(old, new)] += 1
        if self.events.subscribers:
            self.events.publish(ZoneTransition(z.index, old, new))

    def _make_durable(self, z: _ZoneCtl) -> None:
        if self._backend.persistent:
            self._backend.sync()
        z.durable_wp = z.wp
        self._unflushed.discard(z.index)
        self._update_entry(z)
        self._save_table()

    def _update_entry(self, z: _ZoneCtl) -> None:
        """Bring the zone's durable table entry up to date (state and write pointer as of the
        last flush): a zone filled by writes not yet flushed comes back at its durable write
        pointer, like any other zone that was open."""
        if not self._persistent:
            return
        state = z.state
        if state not in (READ_ONLY, OFFLINE) and not (state is FULL and z.durable_wp == z.wp):
            state = EMPTY if z.durable_wp == z.start else CLOSED
        entry = ENTRY.pack(state, z.durable_wp - z.start)
        at = z.index * ENTRY.size
        if self._entries[at:at + ENTRY.size] != entry:
            self._entries[at:at + ENTRY.size] = entry
            self._entries_changed = True
            self._changed.add(z.index)

    def _save_table(self) -> None:
        """Write the durable zone table, if it changed: opening and closing an image that
        nothing was written to leaves every byte of it as it was."""
        if self._persistent and self._entries_changed:
            self._backend.save_table(self._entries, self._changed)
            self._entries_changed = False
            self._changed = set()

    def _record(self, command: str, zone: int | None) -> None:
        if self.recorder is not None:
            self.recorder.command(command, zone)

    # -- used by the fault injector --------------------------------------------------------

    def _force_state(self, zone: int, state: ZoneState) -> None:
        z = self._ctl(zone)
        if self.readonly:
            self._refuse("change the state of a zone", zone=zone)
        if z.state is OFFLINE:
            raise ZoneOffline("an offline zone stays offline", zone=z.index)
        self._transition(z, state)
        self._make_durable(z)

    def __repr__(self) -> str:
        where = self.path or "memory"
        g = self.geometry
        return f"<ZonedDevice {where}: {g.zones} zones of {g.zone_size} blocks ({g.zone_capacity} writable)>"

