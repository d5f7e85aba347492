"""The log writer: appends log units to per-stream head zones.

Each stream (metadata, hot data, cold data, GC-relocated data) has its own
head zone, so blocks of similar lifetime share zones and GC finds zones that
are mostly garbage (F2FS's multi-head logging). The number of heads is
bounded by the device's active-zone limit, less one for the checkpoint
zone; with fewer heads, streams share them.

Every log zone has a role: FREE (empty, ready to be a head), HEAD (being
appended to by a stream) or SEALED (finished, read-only until GC frees it).
The writer also remembers, per zone, the sequence number of the last unit
written into it (``modified``): the zone's age for cost-benefit GC, kept in
memory and saved in each checkpoint's zone records.

A head that cannot take the next unit is finished, which releases its
active-zone resource before a free zone is opened. Data streams may not take
the last ``reserve`` free zones: those are kept so that metadata and GC can
always make progress on a full device.
"""

from __future__ import annotations

import enum

from zcsdfs.lfs.checksums import BlockSums
from zcsdfs.lfs.errors import NoSpace
from zcsdfs.lfs.format import CONTINUED, UNIT_MAGIC, build_head, header_blocks_for

MAX_UNIT_DATA_BLOCKS = 1024
RESERVE_ZONES = 1  # free zones data may not take: room for metadata and GC on a full device


class Stream(enum.IntEnum):
    META = 0
    HOT = 1
    COLD = 2
    GC = 3
    # Data whose writer declared its lifetime (Linux's F_SET_RW_HINT, RocksDB's WriteLifeTimeHint:
    # WAL short, L0 medium, deeper levels long and extreme): one class per zone, as ZenFS places it.
    SHORT = 4
    MEDIUM = 5
    LONG = 6
    EXTREME = 7


BASE_STREAMS = (Stream.META, Stream.HOT, Stream.COLD, Stream.GC)
LIFETIME_STREAMS = (Stream.SHORT, Stream.MEDIUM, Stream.LONG, Stream.EXTREME)


class Role(enum.IntEnum):
    FREE = 0
    SEALED = 1
    HEAD = 2


def stream_heads(max_active: int) -> dict[Stream, Stream]:
    """Which head each base stream writes to, given the active-zone limit (0: unlimited)."""
    heads = len(BASE_STREAMS) if not max_active else max_active - 1
    if heads >= 4:
        return {s: s for s in BASE_STREAMS}
    if heads == 3:
        return {Stream.META: Stream.META, Stream.HOT: Stream.HOT, Stream.COLD: Stream.COLD,
                Stream.GC: Stream.COLD}
    if heads == 2:
        return {Stream.META: Stream.META, Stream.HOT: Stream.HOT, Stream.COLD: Stream.HOT,
                Stream.GC: Stream.HOT}
    return {s: Stream.HOT for s in BASE_STREAMS}


def lifetime_heads(max_active: int, route: dict[Stream, Stream]) -> dict[Stream, Stream]:
    """Heads of the lifetime streams: their own while active zones are left beyond the base
    heads (shortest-lived first); without one, SHORT shares the hot head, EXTREME LONG's if it
    has one, and the rest the cold head. Own heads open only when hinted data comes, so
    volumes without hints (and ``usable_blocks``) are as before."""
    spare = len(LIFETIME_STREAMS) if not max_active else max(0, max_active - 1 - len(set(route.values())))
    own = LIFETIME_STREAMS[:spare]
    out = {s: s for s in own}
    for s in LIFETIME_STREAMS[spare:]:
        if s is Stream.SHORT:
            out[s] = route[Stream.HOT]
        elif s is Stream.EXTREME and Stream.LONG in own:
            out[s] = Stream.LONG
        else:
            out[s] = route[Stream.COLD]
    return out


class LogWriter:
    """Appends units; knows each log zone's role and each head's write pointer."""

    def __init__(self, device, uuid: bytes, log_zones: list[int], next_seq: int, reserve: int = RESERVE_ZONES,
                 sums: BlockSums | None = None):
        g = device.geometry
        self.sums = sums if sums is not None else BlockSums(g.zones, g.zone_size, g.block_size)
        self.damaged: set[int] = set()  # sealed zones GC could not clean: live blocks there fail their checksums
        self.frames_end: dict[int, int] = {}  # sealed zone -> LBA where its whole frames end, if a crash tore one
        self.device = device
        self.uuid = uuid
        self.block_size = g.block_size
        self.log_zones = log_zones
        self.role = dict.fromkeys(log_zones, Role.FREE)
        self.stream_of: dict[int, Stream] = {}  # head zone -> stream
        self.heads: dict[Stream, int] = {}  # stream -> head zone
        self.wp: dict[int, int] = {}  # head zone -> next LBA
        self.modified: dict[int, int] = {}  # zone -> sequence number of the last unit written into it
        self.route = stream_heads(g.max_active)
        self.route.update(lifetime_heads(g.max_active, self.route))
        self.next_seq = next_seq
        self.reserve = reserve
        self.blocks_written = 0
        self.units_written = 0
        self.since_checkpoint = 0
        self.on_low_space = None  # called (once per allocation) when data would dip into the reserve

    # -- roles --------------------------------------------------------------------------

    def free_zones(self) -> list[int]:
        return [z for z in self.log_zones if self.role[z] is Role.FREE]

    def adopt_head(self, zone: int, stream: Stream, wp: int) -> None:
        self.role[zone] = Role.HEAD
        self.stream_of[zone] = stream
        self.heads[stream] = zone
        self.wp[zone] = wp

    def seal(self, zone: int) -> None:
        """Finish a zone (if the device has not already) and mark it SEALED."""
        if self.device.zone(zone).state.is_active:
            self.device.finish(zone)
        self.role[zone] = Role.SEALED
        stream = self.stream_of.pop(zone, None)
        if stream is not None:
            del self.heads[stream]
            del self.wp[zone]

    def release(self, zone: int) -> None:
        """Reset a zone nothing needs any more and make it FREE."""
        self.device.reset(zone)
        self.role[zone] = Role.FREE
        self.modified.pop(zone, None)
        self.sums.drop(zone)
        self.damaged.discard(zone)
        self.frames_end.pop(zone, None)

    def written(self, zone: int) -> int:
        """Blocks of ``zone`` in use, as a checkpoint records it."""
        role = self.role[zone]
        if role is Role.HEAD:
            return self.wp[zone] - self.device.zone(zone).start
        if role is Role.SEALED:
            end = self.frames_end.get(zone)
            return self.device.geometry.zone_capacity if end is None else end - self.device.zone(zone).start
        return 0

    # -- appending ----------------------------------------------------------------------

    def room(self, stream: Stream, records_len: int, want: int, least: int = 1) -> int:
        """Data blocks (at most ``want``, at least ``least``) the next unit of ``stream`` can carry.

        Opens a head if needed; a unit that must carry several blocks at once
        (to stay atomic) asks for them with ``least``.
        """
        hblocks = header_blocks_for(records_len, self.block_size)
        want = min(want, MAX_UNIT_DATA_BLOCKS)
        need = hblocks + min(want, least)
        head = self.route[stream]
        zone = self.heads.get(head)
        if zone is not None and self._left(zone) < need:
            self.seal(zone)
            zone = None
        if zone is None:
            zone = self._allocate(stream, head)
            if self._left(zone) < need:  # a shared head that reclaiming opened, too full for this unit
                self.seal(zone)
                zone = self._allocate(stream, head)
            if self._left(zone) < need:
                raise NoSpace(f"a log unit of {hblocks} header blocks and {min(want, least)} data blocks "
                              f"does not fit in a zone")
        return min(self._left(zone) - hblocks, want)

    def append(self, stream: Stream, records: bytes, data=None, continued: bool = False) -> int:
        """Write one unit (after ``room``); return the LBA of its first data block.

        ``continued``: the operation goes on in the next unit (``format.CONTINUED``).
        """
        head = self.route[stream]
        zone = self.heads[head]
        head, payload, sums = build_head(UNIT_MAGIC, self.uuid, self.next_seq, records, data, self.block_size,
                                         stream, CONTINUED if continued else 0)
        nblocks = (len(head) + payload.nbytes) // self.block_size
        lba = self.device.append(zone, head)  # header and payload land back to back: one frame
        if payload.nbytes:
            self.device.append(zone, payload)
            self.sums.store(lba + len(head) // self.block_size, sums)
        self.modified[zone] = self.next_seq
        self.next_seq += 1
        self.units_written += 1
        self.wp[zone] = lba + nblocks
        self.blocks_written += nblocks
        self.since_checkpoint += nblocks
        if self._left(zone) == 0:
            self.seal(zone)
        return lba + header_blocks_for(len(records), self.block_size)

    def append_frame(self, stream: Stream, frame) -> int:
        """Write a frame that is not a unit (a checkpoint body chunk), after ``room``; return its LBA.

        It takes no sequence number: roll-forward steps over it.
        """
        zone = self.heads[self.route[stream]]
        nblocks = len(frame) // self.block_size
        lba = self.device.append(zone, frame)
        self.wp[zone] = lba + nblocks
        self.blocks_written += nblocks
        if self._left(zone) == 0:
            self.seal(zone)
        return lba

    def room_left(self, zone: int) -> int:
        """Blocks left in head ``zone``."""
        return self._left(zone)

    def _left(self, zone: int) -> int:
        z = self.device.zone(zone)
        return z.start + z.capacity - self.wp[zone]

    def _allocate(self, stream: Stream, head: Stream) -> int:
        data = stream not in (Stream.META, Stream.GC)
        if data and len(self.free_zones()) <= self.reserve and self.on_low_space is not None:
            self.on_low_space()
            if head in self.heads:  # reclaiming may have opened a head this stream shares
                return self.heads[head]
        free = self.free_zones()
        if not free or (data and len(free) <= self.reserve):
            raise NoSpace("no free zone left for the log")
        zone = free[0]
        start = self.device.zone(zone).start
        if self.device.zone(zone).write_pointer != start:
            self.device.reset(zone)
            self.sums.drop(zone)
        self.adopt_head(zone, head, start)
        return zone
