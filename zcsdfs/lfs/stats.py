"""The file system's state as records: streams and their head zones, the write buffer, GC
runs with their victims, checkpoints, snapshots and frozen views; and the GC-run and
checkpoint events.

The file system keeps a ``Tally`` (counts and the last few GC runs) that
``note_gc`` and ``note_checkpoint`` update; both are called once per GC
victim or checkpoint, never on the data path. ``lfs_stats`` takes the file
system's lock for a consistent snapshot: its cost is one pass over the log
zones, comparing each with the previous snapshot's record (reused when the
zone did not change, so a watcher copies only what moved).
"""

from __future__ import annotations

import collections
import time

import attrs

RECENT_GC_RUNS = 16
_names: dict = {}  # enum member -> its name (``.name`` is a slow property, and a snapshot asks thousands of times)


@attrs.frozen
class GcRun:
    """Event and record: one victim collected."""

    victim: int  # zone
    policy: str
    valid_blocks: int  # what the victim held when chosen
    blocks_moved: int
    freed: bool  # whether the zone is free afterwards
    seconds: float
    at_ns: int  # wall clock


@attrs.frozen
class CheckpointWritten:
    """Event: a checkpoint is durable."""

    generation: int
    zone: int  # the checkpoint zone its root went to
    freed_zones: tuple[int, ...]  # log zones reset because nothing needs them any more
    seconds: float
    at_ns: int


@attrs.frozen
class StreamStats:
    stream: str
    head_zone: int | None  # None: no head open
    write_pointer: int | None  # next LBA of the head
    blocks_left: int | None


@attrs.frozen
class LogZoneStats:
    zone: int
    role: str  # FREE, HEAD or SEALED
    stream: str | None  # a head's stream
    valid_blocks: int  # referenced by the live tree or a snapshot
    pinned_blocks: int  # by frozen views and reads in flight
    last_seq: int | None  # sequence number of the last unit written into it (its age)


@attrs.frozen
class LfsStats:
    readonly: bool
    inodes: int
    open_inodes: int  # held by open files
    streams: tuple[StreamStats, ...]
    zone_list: tuple[LogZoneStats, ...]
    free_zones: int
    reserve_zones: int
    buffered_blocks: int  # the write buffer
    buffer_limit: int
    buffered_files: int
    queued_record_bytes: int
    user_blocks_written: int  # this mount
    device_blocks_written: int  # this mount: log and checkpoints
    gc_blocks_moved: int
    write_amplification: float  # this mount; 0 before any user block
    lifetime_write_amplification: float  # since mkfs, from the checkpointed totals
    gc_policy: str  # the mount's victim selection: a name in ``gc.POLICIES``
    gc_runs: int
    recent_gc_runs: tuple[GcRun, ...]  # newest last
    checkpoints: int  # this mount
    checkpoint_generation: int
    checkpoint_zone: int
    blocks_since_checkpoint: int
    snapshots: tuple[str, ...]
    frozen_zones: int  # zones pinned by frozen views or reads in flight
    replayed_units: int  # rolled forward at mount
    dropped_units: int
    units_written: int  # log units appended this mount (small files share them: buffer.py)


class Tally:
    """What the file system counts for its stats (under its lock), and the bus it tells."""

    def __init__(self, events):
        self.events = events
        self.gc_runs = 0
        self.recent_gc: collections.deque[GcRun] = collections.deque(maxlen=RECENT_GC_RUNS)
        self.checkpoints = 0
        self.gc_blocks_moved = 0
        self.usage_base = None  # the usage recovered at mount (usage.py counts on from it)


def note_gc(fs, victim: int, policy: str, valid: int, moved: int, started: float) -> None:
    run = GcRun(victim, policy, valid, moved, fs.writer.role[victim].name == "FREE",
                time.perf_counter() - started, time.time_ns())
    fs.tally.gc_runs += 1
    fs.tally.recent_gc.append(run)
    if fs.events.subscribers:
        fs.events.publish(run)


def note_checkpoint(fs, freed, started: float) -> None:
    fs.tally.checkpoints += 1
    if fs.events.subscribers:
        cp = fs.checkpointer
        fs.events.publish(CheckpointWritten(cp.generation, cp.zone, tuple(freed), time.perf_counter() - started,
                                            time.time_ns()))


def held_still(fs):
    """The file system's lock: hold it to take several layers' snapshots at one moment."""
    return fs._lock


def lfs_stats(fs, previous: LfsStats | None = None) -> LfsStats:
    """A consistent snapshot of ``fs`` (a mounted ``FileSystem``); ``previous``: an earlier one, whose
    zone records are reused where the zone did not change."""
    with fs._lock:
        w = fs.writer
        streams = []
        for stream, head in sorted(w.route.items()):  # streams that share a head show the same zone
            zone = w.heads.get(head)
            streams.append(StreamStats(stream.name, zone, None if zone is None else w.wp[zone],
                                       None if zone is None else w._left(zone)))
        old = {z.zone: z for z in previous.zone_list} if previous is not None else {}
        valid, viewed, modified, stream_of, role = fs.ns.valid, fs.viewed, w.modified, w.stream_of, w.role
        zones = []
        for z in w.log_zones:
            kind = role[z]
            name = _names.get(kind) or _names.setdefault(kind, kind.name)
            stream = stream_of.get(z)
            if stream is not None:
                stream = _names.get(stream) or _names.setdefault(stream, stream.name)
            o = old.get(z)
            if (o is not None and o.valid_blocks == valid[z] and o.role == name and o.stream == stream
                    and o.pinned_blocks == viewed[z] and o.last_seq == modified.get(z)):
                zones.append(o)
            else:
                zones.append(LogZoneStats(z, name, stream, valid[z], viewed[z], modified.get(z)))
        zones = tuple(zones)
        usage = fs.usage()
        user = fs.user_blocks_written
        mount_device = w.blocks_written + fs.checkpointer.blocks_written
        return LfsStats(
            fs.readonly, len(fs.ns.inodes), len(fs._held), tuple(streams), zones,
            sum(z.role == "FREE" for z in zones), w.reserve, fs._dirty_blocks, fs.buffer_limit, len(fs._dirty),
            fs._pending_len, user, mount_device, fs.gc_blocks_moved, mount_device / user if user else 0.0,
            usage.device_blocks / usage.user_blocks if usage.user_blocks else 0.0, fs.gc_policy,
            fs.tally.gc_runs, tuple(fs.tally.recent_gc), fs.tally.checkpoints, fs.checkpointer.generation,
            fs.checkpointer.zone, w.since_checkpoint, tuple(sorted(fs.snapshots)),
            sum(1 for z in w.log_zones if fs.viewed[z]), fs.recovery.replayed, fs.recovery.dropped,
            w.units_written)
