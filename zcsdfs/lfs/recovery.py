"""Mount-time recovery: the latest checkpoint plus a roll-forward of the log after it.

Which zones can hold units newer than the checkpoint: its HEAD zones (from
the position it recorded) and its FREE zones (from their start; units older
than the checkpoint found there are garbage awaiting a reset). SEALED zones
were finished before the checkpoint and are skipped, so a mount reads the
checkpoint (its root and body chunks) and the log written since, and
nothing else. Body chunk frames met on the way (of this checkpoint, or of
a later one that never became durable) are stepped over.

Units are replayed in sequence-number order, starting at the checkpoint's
``next_seq`` and stopping at the first gap. A crash keeps an arbitrary
prefix of each zone's unflushed writes, so a unit can survive while an
earlier one in another zone did not; stopping at the gap makes the result
exactly the state after some prefix of the logged units, never a mixture.
The units of one operation (a write larger than one unit; all but the
last flagged CONTINUED) are applied together when the last one is reached,
and dropped if the log ends first, so that prefix never ends inside one.
Units past the gap were never made durable (every fsync and sync flushes
the whole device), so dropping them loses nothing that was promised.

Afterwards each zone that received units gets a role again: a cleanly
written, not full zone becomes its stream's head (if that stream has none),
any other is finished and sealed. Inodes left with no links (unlinked while
open) are freed, as ext4 does with its orphan list.
"""

from __future__ import annotations

import itertools
import logging

import attrs

from zcsdfs.lfs import records
from zcsdfs.lfs.checkpoint import Checkpointer, load_latest, read_superblock
from zcsdfs.lfs.errors import Corrupted
from zcsdfs.lfs.format import CONTINUED, LOG_MAGICS, UNIT_MAGIC, frame_records
from zcsdfs.lfs.log import LogWriter, Role, Stream
from zcsdfs.lfs.namespace import Namespace
from zcsdfs.lfs.scan import Walk, read_unit, written_end

log = logging.getLogger("zcsdfs.lfs")


@attrs.frozen
class RecoveryReport:
    checkpoint: int  # generation mounted from
    replayed: int  # log units applied
    dropped: int  # valid units after a sequence gap
    orphans: int  # unlinked inodes freed
    messages: tuple[str, ...]  # damage found: checkpoints or units failing their checks


@attrs.frozen
class _Unit:
    seq: int
    zone: int
    lba: int
    data_lba: int
    recs: list
    continued: bool  # its operation goes on in the next unit (format.CONTINUED)


@attrs.define
class Replayed:
    """What the device holds, read without changing it: ``recover`` and ``fsck`` start here."""

    sb: object
    loaded: object  # checkpoint.Loaded
    ns: Namespace
    snapshots: dict  # name -> (created_ns, Namespace)
    table: dict  # zone -> ZoneRecord from the checkpoint
    usage: records.Usage  # lifetime totals as of the checkpoint
    log_zones: list
    streams: dict  # zone -> stream of the newest units found in it
    modified: dict  # zone -> sequence number of the last unit in it (checkpoint, then replayed units)
    clean: dict  # zone -> whether its frames run cleanly up to its write pointer
    newest: int  # highest sequence number seen
    replayed: int
    dropped: int
    messages: list
    damage: list = attrs.Factory(list)  # what fsck reports as errors: damaged copies, fallbacks, damaged units
    torn_group: int = 0  # units of a multi-unit write whose last unit never reached the device: dropped
    stops: dict = attrs.Factory(dict)  # zone -> where its walk ended (the start of a torn or damaged frame)

    def role(self, zone: int) -> Role:
        rec = self.table.get(zone)
        return Role(rec.state) if rec else Role.FREE


def replay(device) -> Replayed:
    """Load the latest checkpoint and apply the log after it, in memory only."""
    damage: list[str] = []
    sb = read_superblock(device, damage)
    loaded = load_latest(device, sb)
    damage.extend(loaded.messages)
    g = device.geometry
    ns, snapshots = loaded.ns, loaded.snapshots
    table, counters, usage = loaded.root.zones, loaded.root.counters, loaded.root.usage
    log_zones = list(itertools.filterfalse(set(sb.checkpoint_zones).__contains__, range(g.zones)))
    modified = {z: rec.modified for z, rec in table.items() if rec.modified}
    r = Replayed(sb, loaded, ns, snapshots, table, usage, log_zones, {}, modified, {}, counters.next_seq - 1,
                 0, 0, list(loaded.messages), damage)

    units: list[_Unit] = []
    # Zones never written hold no log, and a FREE one needs nothing more: only written zones and
    # heads are visited, so a volume of a million zones replays in the time its used ones take.
    used = {z.index for z in device.report_used()}
    visit = sorted((used | {z for z, rec in table.items() if rec.state == Role.HEAD}) - set(sb.checkpoint_zones))
    for zone in visit:
        role = r.role(zone)
        if role is Role.SEALED:
            continue
        if zone not in used:  # as a walk of it would leave things
            r.clean[zone] = True
            r.stops[zone] = zone * g.zone_size + table[zone].written
            r.streams.setdefault(zone, Stream(table[zone].stream))
            continue
        start = device.zone(zone).start
        begin = start + table[zone].written if role is Role.HEAD else start
        walk = Walk(device, sb.uuid, LOG_MAGICS, begin, written_end(device, zone))
        ok = True
        for lba, header in walk:
            if header.magic != UNIT_MAGIC:
                continue  # a checkpoint body chunk
            found = read_unit(device, lba, header)
            if found is None:
                r.messages.append(f"log unit at LBA {lba} (zone {zone}) fails its CRC32C; the log ends there")
                if header.seq >= counters.next_seq:  # (an older one is garbage awaiting a reset)
                    r.damage.append(r.messages[-1])
                ok = False
                break
            if header.seq < counters.next_seq:
                continue  # older than the checkpoint: garbage in a zone not yet reset
            frame, sums = found
            if sums:
                ns.sums.store(lba + header.header_blocks, sums)
            recs = list(records.decode(frame_records(frame, header), f"log unit {header.seq} at LBA {lba}"))
            units.append(_Unit(header.seq, zone, lba, lba + header.header_blocks, recs,
                               bool(header.flags & CONTINUED)))
            r.streams[zone] = Stream(header.stream)
            r.newest = max(r.newest, header.seq)
        r.clean[zone] = ok and walk.reason is None
        r.stops[zone] = walk.stop
        if role is Role.HEAD:
            r.streams.setdefault(zone, Stream(table[zone].stream))

    units.sort(key=lambda u: u.seq)
    expected = counters.next_seq
    group: list[_Unit] = []  # the units of an operation whose last unit has not come yet
    for unit in units:
        if unit.seq != expected:
            break
        expected += 1
        group.append(unit)
        if unit.continued:
            continue
        for u in group:
            try:
                ns.apply_unit(u.recs, u.data_lba)
            except (KeyError, AttributeError, TypeError, ValueError) as e:
                raise Corrupted(f"log unit {u.seq} at LBA {u.lba} does not apply to the namespace: "
                                f"{type(e).__name__}: {e}") from None
            r.modified[u.zone] = u.seq
            r.replayed += 1
        group = []
    r.torn_group = len(group)
    r.dropped = len(units) - r.replayed
    return r


def recover(device, readonly: bool = False):
    """Replay, then give every log zone its role again and free orphans.

    Returns the ``Replayed`` state, the log writer, the checkpointer and a report.
    ``readonly`` does it all in memory: zones that a writable mount would finish
    or reset only get their role, and the device is not touched.
    """
    r = replay(device)
    for m in r.messages:
        log.warning(m)
    if r.torn_group:
        log.info("a write of several log units was cut short by a crash; its %d unit(s) dropped", r.torn_group)
    if r.dropped > r.torn_group:
        log.info("%d log unit(s) after a sequence gap were never durable; dropped", r.dropped - r.torn_group)
    ns = r.ns
    # after a torn group, skip a number: the group's units must never be followed by one that would close it
    writer = LogWriter(device, r.sb.uuid, r.log_zones, r.newest + 1 + bool(r.torn_group), sums=ns.sums)
    seal, release = writer.seal, writer.release
    if readonly:
        def seal(zone: int) -> None:
            writer.role[zone] = Role.SEALED

        def release(zone: int) -> None:
            writer.role[zone] = Role.FREE
            writer.modified.pop(zone, None)
    used = {z.index for z in device.report_used()}
    sealed = {z for z, rec in r.table.items() if rec.state == Role.SEALED}
    for zone in sorted((used | sealed) - set(r.sb.checkpoint_zones)):  # an EMPTY zone not SEALED stays FREE
        z = device.zone(zone)
        if r.role(zone) is Role.SEALED:
            writer.role[zone] = Role.SEALED
            if r.table[zone].written < z.capacity:  # sealed after a crash: its frames end early
                writer.frames_end[zone] = z.start + r.table[zone].written
        elif zone in r.streams and z.write_pointer != z.start:
            head = writer.route[r.streams[zone]]
            if not z.state.is_active or not r.clean[zone] or head in writer.heads:
                if not r.clean[zone]:
                    writer.frames_end[zone] = r.stops[zone]
                seal(zone)
            else:
                writer.adopt_head(zone, head, written_end(device, zone))
        elif z.write_pointer != z.start:
            release(zone)
    writer.modified.update((z, seq) for z, seq in r.modified.items() if writer.role[z] is not Role.FREE)
    writer.damaged.update(z for z, rec in r.table.items() if rec.damaged and writer.role[z] is Role.SEALED)

    orphans = [node.ino for node in ns.inodes.values() if node.nlink == 0]
    for ino in orphans:
        ns.apply(records.Free(ino))
    loaded = r.loaded
    checkpointer = Checkpointer(device, r.sb, loaded.zone, loaded.generation, loaded.at_end, loaded.body,
                                loaded.zone_table)
    report = RecoveryReport(loaded.generation, r.replayed, r.dropped, len(orphans), tuple(r.messages))
    return r, writer, checkpointer, report
