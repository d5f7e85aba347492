"""Checkpoints: a small root in the checkpoint zones, the metadata image in the log.

A checkpoint has two parts, the way an F2FS checkpoint pack points at the
NAT and SIT blocks it relies on:

- The *body* is the namespace image, saved in groups of ``GROUP``
  consecutive inode numbers (``namespace.py``). A group's records (its
  inodes, then their entries, extents and extended attributes) travel as
  one *body chunk* frame (magic ZCKB), or several when they outgrow
  ``CHUNK_BLOCKS``, appended to the metadata stream's log head. Only groups
  changed since the last checkpoint (``Namespace.dirty``) are written; a
  clean group keeps the chunks an earlier checkpoint wrote, so a checkpoint
  costs what changed, and a mount that changed nothing writes only a root.
- The *root* (magic ZCKP, ``seq`` = its generation) is appended to the
  current checkpoint zone: a ``Counters`` record (where log sequence numbers
  and inode numbers resume), a ``Usage`` record (lifetime totals for write
  amplification), the zone table (below), one ``Chunk`` record (group, LBA,
  blocks, CRC32C) per chunk of the live tree, then per snapshot a
  ``Snapshot`` record followed by its chunks. It grows with zone groups
  and inode groups (25 bytes a chunk), never with files or data.
  Roll-forward starts from the positions it records.

The zone table. A ``ZoneRecord`` (role, how far it was written, valid
blocks, the sequence number of its last unit) exists only for a log zone
that is not FREE with nothing valid: a zone without one is free and empty,
so a fresh volume of a million zones has a root of a few hundred bytes.
On format 3 volumes, once the sealed zones' records outgrow an eighth of a
checkpoint zone they move to the log, NILFS2-style (its segment usage file
is a metadata file in the log that the super root reaches): the records of
each group of ``ZONE_GROUP`` zones travel as body chunk frames on the
metadata stream, and the root names them with ``ZoneChunk`` records. F2FS
instead sizes a SIT area at mkfs and updates it in place, which needs
conventional (randomly writable) zones; here every zone is sequential, and
a table in the log costs per checkpoint what changed, not what exists. A
group is rewritten only when its records changed (``ZoneTable.saved``) or
GC cleaned a zone holding one of its chunks (``Checkpointer.evacuate``).
Heads change with every unit, so their records always travel in the root,
as do the records of zones that writing the chunks changed (the metadata
head, a zone opened for it); a record in the root wins over one in a
chunk. Zone table chunks count as body: they keep their zone from being
reset and GC moves them. So the root's zone table is at most a chunk
record per chunk of every group (``zone_table_root_bytes``), and mkfs
refuses a geometry where that could exceed half of a checkpoint zone.
Format 2 volumes keep every record in the root, as a format 2 zcsdfs
reads them.

A small volume (at most ``GROUP`` inodes in all trees, and an image of at
most a quarter of a checkpoint zone) keeps its image *inline*: the root
carries the namespace records themselves where the chunk records would
be, and nothing goes to the log. That spares the log on small devices,
where every GC pass ends with a checkpoint; the first checkpoint too large
for that writes every group as chunks (an inline root leaves every group
dirty, being the only copy). A group also travels inline when the log has
no room for its chunk: a checkpoint is what frees garbage zones, so it must
not depend on a free zone itself.

So an image larger than a zone is fine: only the root must fit in a
checkpoint zone (with 256 inode numbers per group, a 192 KiB zone holds the
root of a few million files, and a 64 KiB zone that of a million zones).

Keeping the body alive. A zone holding a chunk the latest root names is
never reset: a checkpoint frees only sealed zones that hold neither live
data nor a chunk it names (``Checkpointer.body`` counts each zone's chunk
blocks). GC counts chunk blocks as live when it scores a zone, and when it
cleans one it marks the groups whose chunks lie there dirty (``evacuate``),
so the checkpoint that ends every GC pass rewrites them elsewhere and the
zone can be reset. Chunks hold no file data: valid-block counts and
``fsck``'s recount of them stay about extents only, and walks of log zones
(recovery, GC) step over chunk frames.

Order on the device. The chunks are written, then a flush makes them (and
the log they map) durable, then the root is appended and flushed; zones
the new root stops naming are reset only after that. Roots are appended to
the current checkpoint zone after its superblock copy. When the next one
does not fit, the current zone is finished and the other zone is reset and
started afresh (superblock, then the root), as FluffleFS and ZenFS do; the
reset never touches the zone holding the latest durable root.

Loading. Mount tries roots newest first: a root that fails its CRC, or
names a chunk that is missing, foreign or fails its CRC, is passed over
with a message for the next older one. An older root is only as good as
the zones it relies on: those of groups it shares with newer roots
survive, but a zone only it needed may have been freed and reset since.
So a root whose kept zones no longer start with frames older than it is
passed over as stale, and a root naming a chunk that is gone fails its
chunk check; when no root is left, mount refuses, naming every one it
tried. Loading pauses Python's cyclic garbage collector: 100,000 files are
some 600,000 fresh objects, none in a cycle.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import operator
import struct
from typing import Iterable, Iterator

import attrs

from zcsdfs.lfs import records
from zcsdfs.lfs.checksums import BlockSums
from zcsdfs.lfs.errors import Corrupted, NoSpace, NotZcsdfs, UnsupportedFormat
from zcsdfs.lfs.format import (BODY_MAGIC, CHECKPOINT_MAGIC, CRC_OFFSET, HEADER, UNIT_MAGIC, build_frame,
                               check_frame, frame_records, parse_header)
from zcsdfs.lfs.log import Role, Stream
from zcsdfs.lfs.namespace import GROUP, GROUP_BITS, Namespace
from zcsdfs.lfs.scan import Walk, read_frame, written_end
from zcsdfs.lfs.superblock import CHECKPOINT_ZONES, Superblock

log = logging.getLogger("zcsdfs.lfs")

CHUNK_BLOCKS = 64  # most blocks a body chunk takes (half a zone on small devices); larger groups span several
ZONE_GROUP = 1024  # zones whose records share zone table chunks (24 KiB when all are in use)
ZONE_RECORD_BYTES = len(records.encode(records.ZoneRecord(0, 0, 0, 0, 0)))
CHUNK_RECORD_BYTES = len(records.encode(records.Chunk(0, 0, 0, 0)))
MAX_HEADS = len(Stream)  # zone records a root always carries itself, at most


def _zones_where(role: dict, test, value) -> Iterator[int]:
    """The zones whose role passes ``test(role, value)``: a pass at C speed over a million zones."""
    return itertools.compress(role.keys(), map(test, role.values(), itertools.repeat(value)))


def _by_zone(rec: records.ZoneRecord) -> int:
    return rec.zone


def chunk_limit(geometry) -> int:
    """Bytes of records one body chunk frame carries."""
    return min(CHUNK_BLOCKS, max(1, geometry.zone_capacity // 2)) * geometry.block_size - HEADER.size


def zone_table_root_bytes(geometry) -> int:
    """The most bytes a root can need for the zone table: every log zone in use, so a chunk record
    for every chunk of every zone group, the heads' records, counters and usage.

    It grows with the zone count over ``ZONE_GROUP`` (25 bytes a group when
    a group fits one chunk), so mkfs can tell whether a geometry holds it.
    """
    log_zones = geometry.zones - len(CHECKPOINT_ZONES)
    per_chunk = max(1, chunk_limit(geometry) // ZONE_RECORD_BYTES)
    full, rest = divmod(log_zones, ZONE_GROUP)
    chunks = full * -(-ZONE_GROUP // per_chunk) + -(-rest // per_chunk)
    fixed = len(records.encode(records.Counters(0, 0))) + len(records.encode(records.Usage(0, 0, 0)))
    return HEADER.size + fixed + MAX_HEADS * ZONE_RECORD_BYTES + chunks * CHUNK_RECORD_BYTES


@attrs.define
class ZoneTable:
    """The zone table a root keeps in the log: per zone group, the chunks that hold its records and the
    records they hold (sorted by zone), so the next checkpoint rewrites only groups that changed."""

    chunks: dict = attrs.Factory(dict)  # group -> tuple of ZoneChunk
    saved: dict = attrs.Factory(dict)  # group -> tuple of ZoneRecord


@attrs.define
class Root:
    """A checkpoint root's records sorted by what they describe."""

    counters: records.Counters | None = None
    usage: records.Usage = records.Usage(0, 0, 0)
    zones: dict = attrs.Factory(dict)  # zone -> ZoneRecord (a zone with none is FREE and empty)
    zone_chunks: dict = attrs.Factory(dict)  # zone group -> ZoneChunk records (format 3)
    live: list = attrs.Factory(list)  # Chunk records of the live tree, or its inline image
    snapshots: dict = attrs.Factory(dict)  # name -> (created_ns, Chunk records or inline image)


@attrs.frozen
class _Section:
    """What a new root says about one tree: its chunks, and the groups it carries inline."""

    chunks: dict  # group -> chunks
    inline: set  # groups whose records travel in the root
    image: bytes  # those records


@attrs.frozen
class Loaded:
    """The checkpoint mount starts from, with its trees rebuilt."""

    generation: int
    zone: int
    at_end: bool  # nothing (not even a torn frame) follows it in its zone
    root: Root
    ns: Namespace
    snapshots: dict  # name -> (created_ns, Namespace)
    image_valid: tuple[int, ...]  # per-zone valid blocks the trees reference, before any roll-forward
    body: list[int]  # per-zone blocks of the chunks the root names
    messages: tuple[str, ...]
    zone_table: "ZoneTable | None" = None  # the zone table chunks the root names, and what they hold


def split_root(recs: Iterable, where: str) -> Root:
    out = Root()
    target = out.live
    for rec in recs:
        match rec:
            case records.Counters():
                out.counters = rec
            case records.Usage():
                out.usage = rec
            case records.ZoneRecord():
                out.zones[rec.zone] = rec
            case records.ZoneChunk():
                out.zone_chunks.setdefault(rec.group, []).append(rec)
            case records.Snapshot():
                target = []
                out.snapshots[rec.name] = (rec.created_ns, target)
            case _:
                target.append(rec)  # a chunk, or a record of an inline image
    if out.counters is None:
        raise Corrupted(f"{where} has no counters record")
    return out


def read_superblock(device, damage: list | None = None) -> Superblock:
    """The superblock from whichever checkpoint zone holds a valid copy.

    Each damaged copy is logged and, if ``damage`` is given, described there.
    """
    errors, empty = [], []
    found = None
    for zone in CHECKPOINT_ZONES:
        start = device.zone(zone).start
        if written_end(device, zone) == start:  # reset for a switch and not yet rewritten: no damage
            empty.append(NotZcsdfs(f"checkpoint zone {zone} is empty"))
            continue
        try:
            sb = Superblock.decode(device.read(start, 1), f"zone {zone}, LBA {start}")
        except UnsupportedFormat:
            raise
        except OSError as e:  # not ours, damaged, or unreadable
            errors.append(e)
            continue
        if found is None:
            sb.check_geometry(device.geometry)
            found = sb
        elif sb != found:
            errors.append(Corrupted(f"the superblock copy in zone {zone} differs from the one in zone "
                                    f"{CHECKPOINT_ZONES[0]}"))
    if found is not None:
        for e in errors:  # a written checkpoint zone always starts with a good copy
            message = f"superblock copy damaged: {e.strerror}; mounted from the other copy"
            log.warning(message)
            if damage is not None:
                damage.append(message)
        return found
    errors += empty
    if any(isinstance(e, Corrupted) for e in errors):
        raise Corrupted("no valid superblock: " + "; ".join(str(e.strerror) for e in errors))
    raise NotZcsdfs("not a zcsdfs file system: " + "; ".join(str(e.strerror) for e in errors))


def load_latest(device, sb: Superblock) -> Loaded:
    """The newest checkpoint whose root and chunks pass their checks; older ones stand in for damaged newer ones."""
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
            root = split_root(records.decode(frame_records(frame, header), where), where)
            table = _load_zone_table(device, sb, root, where)
            _check_current(device, sb, root, generation, where)
            ns, snapshots = _load_trees(device, sb, root, where)
        except Corrupted as e:
            messages.append(f"{e}; using an older checkpoint")
            log.warning(messages[-1])
            continue
        body = body_blocks([ns.chunks] + [snap.chunks for _, snap in snapshots.values()] + [table.chunks],
                           device.geometry)
        return Loaded(generation, zone, at_end, root, ns, snapshots, tuple(ns.valid), body, tuple(messages),
                      table)
    raise Corrupted("no valid checkpoint in either checkpoint zone" +
                    (": " + "; ".join(messages) if messages else ""))


def _check_current(device, sb: Superblock, root: Root, generation: int, where: str) -> None:
    """Refuse an older root whose log was reused since: a zone it keeps must still start with a frame older than it.

    Falling back past a damaged root is only safe while the zones the older
    one maps into still hold what they held; one reset and rewritten later
    would hand out other files' blocks.
    """
    for zone, rec in root.zones.items():
        if Role(rec.state) is Role.FREE or not rec.written:
            continue
        start = device.zone(zone).start
        if written_end(device, zone) == start:
            raise Corrupted(f"{where} is stale: zone {zone}, which it keeps, was reset after it")
        header = parse_header(device.read(start, 1))
        if header is None:
            continue  # a damaged first block, not a reset (a reset zone restarts with a header): fsck reports it
        if header.uuid != sb.uuid:
            older = False
        elif header.magic == UNIT_MAGIC:
            older = header.seq < root.counters.next_seq
        else:
            older = header.magic == BODY_MAGIC and header.seq <= generation
        if not older:
            raise Corrupted(f"{where} is stale: zone {zone}, which it keeps, was reset after it")


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Loading allocates several objects per file and frees none; none forms a reference cycle.

    Python's cyclic collector would rescan the growing heap again and again
    (a third of the load time for 100,000 files), finding nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_trees(device, sb: Superblock, root: Root, where: str) -> tuple[Namespace, dict]:
    with _cyclic_gc_paused():
        return _build_trees(device, sb, root, where)


def _build_trees(device, sb: Superblock, root: Root, where: str) -> tuple[Namespace, dict]:
    g = device.geometry
    ns = Namespace(g.zones, g.zone_size, sums=BlockSums(g.zones, g.zone_size, g.block_size))
    _load_tree(device, sb, ns, root.live, where)
    ns.next_ino = max(ns.next_ino, root.counters.next_ino)
    snapshots = {}
    for name, (created_ns, chunks) in root.snapshots.items():
        snap = Namespace(g.zones, g.zone_size, ns.valid, ns.sums)
        _load_tree(device, sb, snap, chunks, f"snapshot {name!r} of {where}")
        snapshots[name] = (created_ns, snap)
    return ns, snapshots


def _load_tree(device, sb: Superblock, ns: Namespace, section: list, where: str) -> None:
    saved: dict[int, list] = {}
    inline = [rec for rec in section if not isinstance(rec, records.Chunk)]
    try:
        ns.load(inline)
        for chunk in section:
            if isinstance(chunk, records.Chunk):
                frame, header = read_chunk(device, sb, chunk, where)
                here = f"body chunk of group {chunk.group} at LBA {chunk.lba} ({where})"
                ns.load(records.decode(frame_records(frame, header), here))
                saved.setdefault(chunk.group, []).append(chunk)
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        raise Corrupted(f"the image of {where} does not rebuild a namespace: {type(e).__name__}: {e}") from None
    ns.chunks = {group: tuple(c) for group, c in saved.items()}
    if inline:
        ns.dirty = {ino >> GROUP_BITS for ino in ns.inodes} - ns.chunks.keys()
    ns.link_parents()


def _load_zone_table(device, sb: Superblock, root: Root, where: str) -> "ZoneTable":
    """Read the zone table chunks ``root`` names into ``root.zones``; the root's own zone records win.

    A zone record in the root is newer than the chunks: it was cut after
    them (a head, or a zone the chunks' own writing changed).
    """
    table = ZoneTable()
    g = device.geometry
    for group, chunks in sorted(root.zone_chunks.items()):
        saved = []
        for chunk in chunks:
            frame, header = read_chunk(device, sb, chunk, where)
            here = f"zone table chunk of zone group {group} at LBA {chunk.lba} ({where})"
            for rec in records.decode(frame_records(frame, header), here):
                if not isinstance(rec, records.ZoneRecord) or rec.zone // ZONE_GROUP != group \
                        or rec.zone >= g.zones or rec.zone in sb.checkpoint_zones:
                    raise Corrupted(f"{here} holds {rec!r}, not a record of a log zone of its group")
                saved.append(rec)
                root.zones.setdefault(rec.zone, rec)
        table.chunks[group] = tuple(chunks)
        table.saved[group] = tuple(saved)
    return table


def read_chunk(device, sb: Superblock, chunk, where: str):
    """The frame and header of one body chunk (of a namespace group or of the zone table), checked
    against the root that names it."""
    g = device.geometry
    zone = chunk.lba // g.zone_size
    what = "zone table chunk of zone group" if isinstance(chunk, records.ZoneChunk) else "body chunk of group"
    here = f"{what} {chunk.group} at LBA {chunk.lba} ({where})"
    if zone >= g.zones or zone in sb.checkpoint_zones or chunk.blocks == 0 \
            or chunk.lba + chunk.blocks > written_end(device, zone):
        raise Corrupted(f"{here} lies outside the written part of the log")
    frame = bytearray(chunk.blocks * g.block_size)
    device.read_into(chunk.lba, frame)
    header = parse_header(frame)
    if header is None or header.magic != BODY_MAGIC or header.uuid != sb.uuid or header.blocks != chunk.blocks \
            or header.crc != chunk.crc:
        raise Corrupted(f"{here} is missing: another frame is there")
    if check_frame(frame, header, g.block_size) is None:
        raise Corrupted(f"{here} fails its CRC32C")
    return frame, header


def body_blocks(saved: Iterable[dict], geometry) -> list[int]:
    """Per zone, the blocks of the chunks in ``saved`` (each a tree's group -> chunks; trees share some)."""
    body = [0] * geometry.zones
    for chunk in {chunk for tree in saved for chunks in tree.values() for chunk in chunks}:
        body[chunk.lba // geometry.zone_size] += chunk.blocks
    return body


def evacuate(trees: Iterable[Namespace], zone: int, zone_size: int) -> None:
    """Mark dirty every group saved in ``zone``, so the next checkpoint rewrites it elsewhere (GC calls this)."""
    for ns in trees:
        for group, chunks in ns.chunks.items():
            if any(chunk.lba // zone_size == zone for chunk in chunks):
                ns.dirty.add(group)


def _chunk_bodies(recs: Iterable, limit: int) -> Iterator[bytes]:
    """Encoded records cut into runs of at most ``limit`` bytes (a larger single record travels alone)."""
    parts: list[bytes] = []
    size = 0
    for rec in recs:
        encoded = records.encode(rec)
        if parts and size + len(encoded) > limit:
            yield b"".join(parts)
            parts, size = [], 0
        parts.append(encoded)
        size += len(encoded)
    if parts:
        yield b"".join(parts)


class Checkpointer:
    """Writes checkpoints: dirty groups to the log, then a root to the current checkpoint zone."""

    def __init__(self, device, sb: Superblock, zone: int, generation: int, at_end: bool = True,
                 body: list[int] | None = None, table: ZoneTable | None = None):
        self.device = device
        self.table = table if table is not None else ZoneTable()  # the zone table chunks the latest root names
        self.moving: set[int] = set()  # zone groups whose chunks lie in a zone GC cleaned
        self.sb = sb
        self.zone = zone
        self.generation = generation
        self._switch = not at_end  # never append after a damaged frame: walks would stop there
        self.body = body if body is not None else [0] * device.geometry.zones
        self.blocks_written = 0  # root blocks (chunks count as the log writer's)

    def write(self, writer, ns: Namespace, usage: records.Usage = records.Usage(0, 0, 0),
              snapshots: dict | None = None, pinned: list[int] | None = None) -> list[int]:
        """Write a checkpoint of ``ns`` and ``snapshots`` (name -> (created_ns, Namespace)); flush.

        Returns the sealed zones it recorded FREE (no valid blocks, no chunk,
        not ``pinned``): the caller resets them, now that nothing needs them.
        """
        g = self.device.geometry
        generation = self.generation + 1
        trees = [(None, 0, ns)] + [(name, created, snap) for name, (created, snap) in (snapshots or {}).items()]
        sections = self._inline([tree for _, _, tree in trees]) or \
            [self._save(writer, tree, generation) for _, _, tree in trees]
        kept = [chunks for group, chunks in self.table.chunks.items() if group not in self.moving]
        body = body_blocks([section.chunks for section in sections] + [dict(enumerate(kept))], g)
        freed = [z for z in _zones_where(writer.role, operator.is_, Role.SEALED)
                 if ns.valid[z] == 0 and not body[z] and not (pinned and pinned[z])]
        table, zone_recs = self._save_zones(writer, ns.valid, set(freed), generation)
        body = body_blocks([section.chunks for section in sections] + [table.chunks], g)
        parts = [records.encode(records.Counters(writer.next_seq, ns.next_ino)), records.encode(usage)]
        parts.extend(records.encode(rec) for rec in zone_recs)
        parts.extend(records.encode(chunk) for group in sorted(table.chunks) for chunk in table.chunks[group])
        for (name, created, _), section in zip(trees, sections):
            if name is not None:
                parts.append(records.encode(records.Snapshot(name, created)))
            chunks = section.chunks
            parts.extend(records.encode(chunk) for group in sorted(chunks) for chunk in chunks[group])
            parts.append(section.image)
        self._write_root(generation, b"".join(parts))
        for (_, _, tree), section in zip(trees, sections):
            tree.chunks = section.chunks
            tree.dirty = section.inline  # the root is their only copy: the next checkpoint saves them again
        self.body = body
        self.table = table
        self.moving = set()
        return freed

    def evacuate(self, zone: int) -> None:
        """Have the next checkpoint rewrite the zone table groups saved in ``zone`` (GC calls this)."""
        zone_size = self.device.geometry.zone_size
        self.moving.update(group for group, chunks in self.table.chunks.items()
                           if any(chunk.lba // zone_size == zone for chunk in chunks))

    @staticmethod
    def _zone_record(writer, valid: list[int], z: int, freed: set[int]) -> records.ZoneRecord | None:
        """What the root says of log zone ``z``; None for a FREE zone with nothing valid (the default)."""
        role = writer.role[z]
        if role is Role.FREE or z in freed:
            return records.ZoneRecord(z, Role.FREE, 0, 0, valid[z]) if valid[z] else None
        return records.ZoneRecord(z, role, writer.stream_of.get(z, 0), writer.written(z), valid[z],
                                  writer.modified.get(z, 0), int(z in writer.damaged))

    def _save_zones(self, writer, valid: list[int], freed: set[int], generation: int) -> tuple[ZoneTable, list]:
        """The zone table: chunks in the log for its sealed zones (if large), and the records the root carries.

        Heads, and zones whose records changed while the chunks were written
        (the metadata head, a zone opened for them), always travel in the
        root. A group is rewritten when its records changed, or when GC
        cleaned a zone holding one of its chunks (``evacuate``).
        """
        record = self._zone_record
        heads = set(writer.heads.values())
        busy = set(_zones_where(writer.role, operator.is_not, Role.FREE))
        busy.update(z for z in itertools.compress(range(len(valid)), valid) if z in writer.role)
        kept = [rec for z in busy - heads if (rec := record(writer, valid, z, freed))]
        limit = self.device.geometry.zone_capacity * self.device.block_size // 8
        if self.sb.version < 3 or len(kept) * ZONE_RECORD_BYTES <= limit:
            return ZoneTable(), sorted(kept + [record(writer, valid, z, freed) for z in heads], key=_by_zone)
        groups: dict[int, list] = {}
        for rec in sorted(kept, key=_by_zone):
            groups.setdefault(rec.zone // ZONE_GROUP, []).append(rec)
        old, table, inline, moving = self.table, ZoneTable(), [], self.moving
        for group, recs in groups.items():
            recs = tuple(recs)
            if group in old.chunks and group not in moving and old.saved.get(group) == recs:
                table.chunks[group], table.saved[group] = old.chunks[group], recs
                continue
            if inline:  # the log is full: the rest rides in the root
                inline.extend(recs)
                continue
            try:
                table.chunks[group] = tuple(self._write_chunks(writer, records.ZoneChunk, group, recs, generation))
                table.saved[group] = recs
            except NoSpace:
                inline.extend(recs)
        touched = heads | set(writer.heads.values())
        inline.extend(rec for z in touched if (rec := record(writer, valid, z, freed)))
        return table, sorted(inline, key=_by_zone)

    def _inline(self, trees: list[Namespace]) -> list[_Section] | None:
        """Every tree wholly inline, if the volume is small enough to keep its image in the root."""
        if sum(len(tree.inodes) for tree in trees) > GROUP:
            return None
        sections = [_Section({}, {ino >> GROUP_BITS for ino in tree.inodes},
                             b"".join(records.encode(rec) for rec in tree.image())) for tree in trees]
        limit = self.device.geometry.zone_capacity // 4 * self.device.block_size
        return sections if sum(len(section.image) for section in sections) <= limit else None

    def _save(self, writer, tree: Namespace, generation: int) -> _Section:
        """Write ``tree``'s dirty groups as chunks; those the log has no room for go inline.

        A checkpoint is what frees garbage zones, so it must not need a free
        zone itself: on a full log the groups ride in the root instead.
        """
        chunks = dict(tree.chunks)
        inline: set[int] = set()
        for group in sorted(tree.dirty):
            chunks.pop(group, None)
            if inline:
                inline.add(group)
                continue
            try:
                written = tuple(self._write_group(writer, tree, group, generation))
            except NoSpace:
                inline.add(group)
                continue
            if written:
                chunks[group] = written
        image = b"".join(records.encode(rec) for group in sorted(inline) for rec in tree.group_image(group))
        return _Section(chunks, inline, image)

    def _write_group(self, writer, ns: Namespace, group: int, generation: int) -> Iterator[records.Chunk]:
        return self._write_chunks(writer, records.Chunk, group, ns.group_image(group), generation)

    def _write_chunks(self, writer, kind, group: int, recs: Iterable, generation: int) -> Iterator:
        """Append ``recs`` as body chunk frames on the metadata stream; yield a ``kind`` record naming each."""
        bs = self.device.block_size
        for body in _chunk_bodies(recs, chunk_limit(self.device.geometry)):
            writer.room(Stream.META, len(body), 0)
            frame = build_frame(BODY_MAGIC, self.sb.uuid, generation, body, None, bs, Stream.META)
            lba = writer.append_frame(Stream.META, frame)
            (crc,) = struct.unpack_from("<I", frame, CRC_OFFSET)
            yield kind(group, lba, len(frame) // bs, crc)

    def _write_root(self, generation: int, body: bytes) -> None:
        device = self.device
        frame = build_frame(CHECKPOINT_MAGIC, self.sb.uuid, generation, body, None, device.block_size)
        nblocks = len(frame) // device.block_size
        z = device.zone(self.zone)
        left = z.start + z.capacity - written_end(device, self.zone)
        if self._switch or nblocks > left:
            if nblocks + 1 > z.capacity:
                raise NoSpace(f"the checkpoint root ({nblocks} blocks) no longer fits in a checkpoint zone "
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
        device.flush()  # the chunks and the log the root points into are durable before the root can be
        device.append(self.zone, frame)
        device.flush()
        self.blocks_written += nblocks
        self.generation = generation
