"""Checkpoints: full metadata images in two zones used in turn.

A checkpoint is one frame (magic ZCKP, ``seq`` = its generation) whose
records rebuild everything: a ``Counters`` record (where log sequence
numbers and inode numbers resume), a ``Usage`` record (lifetime totals for
write amplification), one ``ZoneRecord`` per log zone (its
role, how far it was written, its valid blocks, the sequence number of its
last unit), then the namespace image.
Roll-forward starts from the positions it records.

Checkpoints are appended to the current checkpoint zone after its
superblock copy. When the next one does not fit, the current zone is
finished and the other zone is reset and started afresh (superblock, then
the checkpoint), as FluffleFS and ZenFS do; the reset never touches the
zone holding the latest durable checkpoint. Every checkpoint is preceded by
a device flush, so it never outlives the log blocks it maps in a crash, and
followed by one, so it is durable before any zone it stops referencing is
reset.
"""

from __future__ import annotations

import logging

import attrs

from zcsdfs.lfs import records
from zcsdfs.lfs.errors import Corrupted, NoSpace, NotZcsdfs
from zcsdfs.lfs.log import Role
from zcsdfs.lfs.format import CHECKPOINT_MAGIC, build_frame, frame_records
from zcsdfs.lfs.scan import Walk, read_frame, written_end
from zcsdfs.lfs.superblock import CHECKPOINT_ZONES, Superblock

log = logging.getLogger("zcsdfs.lfs")


@attrs.frozen
class Loaded:
    """The checkpoint mount starts from."""

    generation: int
    zone: int
    at_end: bool  # nothing (not even a torn frame) follows it in its zone
    records: list
    messages: tuple[str, ...]


def image(ns, writer, freed: list[int], usage: records.Usage = records.Usage(0, 0, 0),
          snapshots: dict | None = None) -> bytes:
    """The records of a checkpoint of ``ns``, with the zones in ``freed`` recorded as FREE.

    ``snapshots`` maps a name to (creation time, namespace); each follows the
    live image behind a ``Snapshot`` record.
    """
    recs = [records.Counters(writer.next_seq, ns.next_ino), usage]
    for z in writer.log_zones:
        free = z in freed or writer.role[z] is Role.FREE
        recs.append(records.ZoneRecord(z, Role.FREE if free else writer.role[z], writer.stream_of.get(z, 0),
                                       0 if free else writer.written(z), ns.valid[z],
                                       0 if free else writer.modified.get(z, 0)))
    recs.extend(ns.image())
    for name, (created_ns, snap) in (snapshots or {}).items():
        recs.append(records.Snapshot(name, created_ns))
        recs.extend(snap.image())
    return b"".join(records.encode(r) for r in recs)


@attrs.define
class Image:
    """A checkpoint's records sorted by what they rebuild."""

    counters: records.Counters | None = None
    usage: records.Usage = records.Usage(0, 0, 0)
    zones: dict = attrs.Factory(dict)  # zone -> ZoneRecord
    live: list = attrs.Factory(list)  # records of the live namespace
    snapshots: dict = attrs.Factory(dict)  # name -> (created_ns, records)


def split_image(recs) -> Image:
    out = Image()
    target = out.live
    for rec in recs:
        match rec:
            case records.ZoneRecord():
                out.zones[rec.zone] = rec
            case records.Usage():
                out.usage = rec
            case records.Snapshot():
                target = []
                out.snapshots[rec.name] = (rec.created_ns, target)
            case _:
                if isinstance(rec, records.Counters):
                    out.counters = rec
                target.append(rec)
    return out


def read_superblock(device) -> Superblock:
    """The superblock from whichever checkpoint zone holds a valid copy."""
    errors = []
    for zone in CHECKPOINT_ZONES:
        start = device.zone(zone).start
        if written_end(device, zone) == start:
            errors.append(NotZcsdfs(f"checkpoint zone {zone} is empty"))
            continue
        try:
            sb = Superblock.decode(device.read(start, 1), f"zone {zone}, LBA {start}")
        except (NotZcsdfs, Corrupted) as e:
            errors.append(e)
            continue
        sb.check_geometry(device.geometry)
        return sb
    if any(isinstance(e, Corrupted) for e in errors):
        raise Corrupted("no valid superblock: " + "; ".join(str(e) for e in errors))
    raise NotZcsdfs("not a zcsdfs file system: " + "; ".join(str(e) for e in errors))


def load_latest(device, sb: Superblock) -> Loaded:
    """The newest checkpoint that passes its CRC; older ones stand in for damaged newer ones."""
    candidates = []
    for zone in sb.checkpoint_zones:
        start = device.zone(zone).start
        end = written_end(device, zone)
        if end == start:
            continue
        walk = Walk(device, sb.uuid, CHECKPOINT_MAGIC, start + 1, end)
        found = list(walk)
        for i, (lba, header) in enumerate(found):
            at_end = i == len(found) - 1 and walk.reason is None
            candidates.append((header.seq, zone, lba, header, at_end))
    messages = []
    for generation, zone, lba, header, at_end in sorted(candidates, key=lambda c: c[0], reverse=True):
        frame = read_frame(device, lba, header)
        where = f"checkpoint {generation} (zone {zone}, LBA {lba})"
        if frame is None:
            messages.append(f"{where} fails its CRC32C; using an older one")
            log.warning(messages[-1])
            continue
        try:
            recs = list(records.decode(frame_records(frame, header), where))
        except Corrupted as e:
            messages.append(f"{e}; using an older checkpoint")
            log.warning(messages[-1])
            continue
        return Loaded(generation, zone, at_end, recs, tuple(messages))
    raise Corrupted("no valid checkpoint in either checkpoint zone" +
                    (": " + "; ".join(messages) if messages else ""))


class Checkpointer:
    """Appends checkpoints to the current checkpoint zone, switching zones when one fills."""

    def __init__(self, device, sb: Superblock, zone: int, generation: int, at_end: bool = True):
        self.device = device
        self.sb = sb
        self.zone = zone
        self.generation = generation
        self._switch = not at_end  # never append after a damaged frame: walks would stop there
        self.blocks_written = 0

    def write(self, image: bytes) -> None:
        """Write a checkpoint with ``image`` as its records, then flush the device."""
        device = self.device
        generation = self.generation + 1
        frame = build_frame(CHECKPOINT_MAGIC, self.sb.uuid, generation, image, None, device.block_size)
        nblocks = len(frame) // device.block_size
        z = device.zone(self.zone)
        left = z.start + z.capacity - written_end(device, self.zone)
        if self._switch or nblocks > left:
            if nblocks + 1 > z.capacity:
                raise NoSpace(f"the metadata image ({nblocks} blocks) no longer fits in a checkpoint zone "
                              f"({z.capacity - 1} blocks)")
            if z.state.is_active:
                device.finish(self.zone)
            first, second = self.sb.checkpoint_zones
            other = second if self.zone == first else first
            device.reset(other)
            device.append(other, self.sb.encode())
            self.blocks_written += 1
            self.zone = other
            self._switch = False
        device.flush()  # the log the image points into is durable before the image can be
        device.append(self.zone, frame)
        device.flush()
        self.blocks_written += nblocks
        self.generation = generation
