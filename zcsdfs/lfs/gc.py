"""Garbage collection: move a victim zone's live blocks away, then reset it.

The victim's unit headers are its reverse map: each ``Data`` record says
which file blocks the following data blocks were written for. A block is
live if that file's extent map still points at it; live blocks are copied,
run by run, into units on the GC stream (whose ``Data`` records remap them
on replay as on the live system) and everything else in the zone is
garbage. The zone is reset only after a checkpoint that no longer needs it
is durable, and only if its valid-block count really dropped to zero.

Live means referenced by the live tree or by any snapshot; each physical
block moves once and every tree that maps it is remapped. Checkpoint body
chunks in the victim are live too: cleaning marks their groups dirty
(``checkpoint.evacuate``) and the checkpoint after GC rewrites them, and
victim scores count their blocks with the valid ones. Zones pinned by a
frozen view are left alone until the view is released.

Victims are chosen by a policy, registered by name in ``POLICIES`` (the
names ``mount``, ``build_stack``, the CLI and the stats use). Greedy takes
the sealed zone with the fewest valid blocks: cheapest to clean now.
Cost-benefit (Rosenblum and Ousterhout's Sprite LFS) takes the zone with the
largest ``(1 - u) * age / (1 + u)``, u its valid fraction and age the log sequence
numbers since its last unit: space freed times how long it is likely to
stay free, per block read and rewritten. Cold zones are cleaned at a higher
utilisation than hot ones, whose blocks are still dying on their own. A new
policy is a function ``(fs, exclude) -> zone or None`` decorated with
``@register_policy(name, summary)``.
"""

from __future__ import annotations

import logging
from typing import Callable

import attrs

from zcsdfs.lfs import records
from zcsdfs.lfs.checkpoint import evacuate
from zcsdfs.lfs.errors import Invalid
from zcsdfs.lfs.format import HEADER, LOG_MAGICS, UNIT_MAGIC, frame_records
from zcsdfs.lfs.log import Role, Stream
from zcsdfs.lfs.scan import Walk, read_frame, written_end


log = logging.getLogger("zcsdfs.lfs")

DEFAULT_POLICY = "greedy"


@attrs.frozen
class Policy:
    """A way to choose GC victims: ``choose(fs, exclude)`` gives a zone, or None when no zone qualifies."""

    name: str
    summary: str  # one line, for help texts
    choose: Callable


#: Every victim-selection policy, by name, in the order they were registered.
POLICIES: dict[str, Policy] = {}


def register_policy(name: str, summary: str):
    """Register the decorated victim chooser as policy ``name``."""
    def register(choose):
        if name in POLICIES:
            raise ValueError(f"GC policy {name!r} is registered already")
        POLICIES[name] = Policy(name, summary, choose)
        return choose
    return register


def policy_names() -> tuple[str, ...]:
    """The registered policies' names (the CLI's choices)."""
    return tuple(POLICIES)


def check_policy(name: str) -> str:
    """``name`` if it is a registered policy, else EINVAL naming the known ones."""
    if name not in POLICIES:
        raise Invalid(f"unknown GC policy {name!r} (known: {', '.join(POLICIES)})", name)
    return name


def live_blocks(fs) -> list[int]:
    """Per zone, the blocks cleaning it would move: valid data plus checkpoint body chunks."""
    return [v + b for v, b in zip(fs.ns.valid, fs.checkpointer.body)]


def candidates(fs, live: list[int], exclude=()) -> list[int]:
    """Sealed zones whose cleaning frees something.

    Zones a frozen view pins are never victims: the view's block list must
    stay true. Nor are damaged zones (live blocks there fail their
    checksums, so they can never be emptied) or those in ``exclude``.
    """
    w, viewed = fs.writer, fs.viewed
    capacity = fs.device.geometry.zone_capacity
    return [z for z in w.log_zones if w.role[z] is Role.SEALED and live[z] < capacity and not viewed[z]
            and z not in w.damaged and z not in exclude]


@register_policy("greedy", "the sealed zone with the fewest live blocks: cheapest to clean now")
def greedy_victim(fs, exclude=()) -> int | None:
    """The candidate with the fewest live blocks."""
    live = live_blocks(fs)
    return min(candidates(fs, live, exclude), key=lambda z: live[z], default=None)


def cost_benefit(u: float, age: int) -> float:
    """Sprite LFS's score: free space gained times its age, per unit of cleaning cost (read 1, write u)."""
    return (1 - u) * age / (1 + u)


@register_policy("cost-benefit", "Sprite LFS's (1-u)*age/(1+u): cold zones are cleaned fuller than hot ones")
def cost_benefit_victim(fs, exclude=()) -> int | None:
    """The candidate with the highest cost-benefit score; ties go to the lower zone."""
    w, live = fs.writer, live_blocks(fs)
    capacity = fs.device.geometry.zone_capacity
    now = w.next_seq
    return max(candidates(fs, live, exclude), default=None,
               key=lambda z: (cost_benefit(live[z] / capacity, now - w.modified.get(z, 0)), -z))


def choose_victim(fs, policy: str, exclude=()) -> int | None:
    """The next victim under ``policy``, never one of ``exclude`` (those a pass already failed to free)."""
    return POLICIES[check_policy(policy)].choose(fs, exclude)


def live_runs(fs, zone: int, damage: list | None = None):
    """(ino, first file block, count, lba, trees) for every run of blocks in ``zone`` still mapped there.

    ``trees`` are the namespaces (the live one first, then snapshots) whose
    extent maps point at the run; a block several trees share is one run.
    The zone's unit headers say what each block was written for; if one
    fails its CRC, the runs come from the extent maps instead (every tree
    searched for blocks in the zone) and ``damage`` gets a line saying so.
    """
    device = fs.device
    trees = [fs.ns] + [snap.ns for snap in fs.snapshots.values()]
    start = device.zone(zone).start
    found = []
    for lba, header in Walk(device, fs.sb.uuid, LOG_MAGICS, start, written_end(device, zone)):
        if header.magic != UNIT_MAGIC:
            continue  # a checkpoint body chunk: evacuated by the checkpoint after GC
        frame = read_frame(device, lba, header)
        if frame is None:
            message = f"zone {zone}: log unit at LBA {lba} fails its CRC32C; its live blocks found by the extent maps"
            log.warning(message)
            if damage is not None:
                damage.append(message)
            yield from mapped_runs(trees, zone, device.geometry.zone_size)
            return
        at = lba + header.header_blocks
        for rec in records.decode(frame_records(frame, header), f"log unit at LBA {lba}"):
            if not isinstance(rec, (records.Data, records.Kept)):
                continue
            owners: list[list] = [[] for _ in range(rec.count)]
            for ns in trees:
                node = ns.inodes.get(rec.ino)
                if node is None or not node.is_reg:
                    continue
                for block, count, where in node.extents.runs(rec.first_block, rec.count):
                    offset = block - rec.first_block
                    if where == at + offset:
                        for i in range(offset, offset + count):
                            owners[i].append(ns)
            i = 0
            while i < rec.count:
                j = i + 1
                while j < rec.count and owners[j] == owners[i]:
                    j += 1
                if owners[i]:
                    found.append((rec.ino, rec.first_block + i, j - i, at + i, tuple(owners[i])))
                i = j
            at += rec.count
    if sum(run[2] * len(run[4]) for run in found) != fs.ns.valid[zone]:
        # a header damaged past recognition ended the walk early: the extent maps know the rest
        message = f"zone {zone}: its unit headers account for fewer live blocks than the extent maps; " \
                  f"its live blocks found by the extent maps"
        log.warning(message)
        if damage is not None:
            damage.append(message)
        yield from mapped_runs(trees, zone, device.geometry.zone_size)
        return
    yield from found


def mapped_runs(trees: list, zone: int, zone_size: int):
    """``live_runs`` from the extent maps alone: every block of ``zone`` some tree maps, in LBA order."""
    lo, hi = zone * zone_size, (zone + 1) * zone_size
    owners: dict[int, tuple[int, int, list]] = {}  # lba -> (ino, file block, trees)
    for ns in trees:
        for node in ns.inodes.values():
            if not node.is_reg:
                continue
            for first, lba, count in node.extents:
                for i in range(max(lba, lo) - lba, min(lba + count, hi) - lba):
                    owners.setdefault(lba + i, (node.ino, first + i, []))[2].append(ns)
    run = None
    for lba in sorted(owners):
        ino, block, mapped = owners[lba]
        if run is not None and run[3] + run[2] == lba and run[0] == ino and run[1] + run[2] == block \
                and run[4] == tuple(mapped):
            run = (ino, run[1], run[2] + 1, run[3], run[4])
            continue
        if run is not None:
            yield run
        run = (ino, block, 1, lba, tuple(mapped))
    if run is not None:
        yield run


def collect(fs, zone: int) -> int:
    """Relocate the live blocks of ``zone``, many runs per unit; return how many moved.

    A run the live tree maps travels as ``Data`` (replay remaps the live
    file); a run only snapshots map travels as ``Kept``. Snapshots are
    remapped in memory, and the checkpoint that follows GC saves them.

    Every block is checked against its checksum as it is read. One that
    fails stays where it is (moving it would give bad data a good
    checksum), logged with its inode and file offset; the rest move, and the
    zone is marked damaged (``LogWriter.damaged``, saved in checkpoints), so
    that GC never picks it again while those blocks are referenced.
    """
    bs = fs.block_size
    sums = fs.sums
    per_record = len(records.encode(records.Data(0, 0, 0)))
    evacuate([fs.ns] + [snap.ns for snap in fs.snapshots.values()], zone, fs.device.geometry.zone_size)
    fs.checkpointer.evacuate(zone)
    runs = list(live_runs(fs, zone))
    moved = left = 0
    while runs:
        batch = runs[:max(1, (bs - HEADER.size) // per_record)]
        room = fs.writer.room(Stream.GC, fs._pending_len + len(batch) * per_record,
                              sum(run[2] for run in batch))
        recs, remaps, buf = [], [], bytearray(room * bs)
        used = 0
        while runs and used < room and len(recs) < len(batch):
            ino, block, count, lba, trees = runs[0]
            n = min(count, room - used)
            piece = memoryview(buf)[used * bs:(used + n) * bs]
            fs.device.read_into(lba, piece)
            if not sums.ok(lba, piece):
                bad = sums.bad(lba, piece)
                for i in bad:
                    log.error("zone %d: inode %d, data block at file offset %d (LBA %d) fails its CRC32C "
                              "checksum; GC leaves it in place", zone, ino, (block + i) * bs, lba + i)
                left += len(bad)
                skip = set(bad)
                good = [i for i in range(n) if i not in skip]
                pieces = []
                for i in good:  # the blocks that verify, as runs, then the rest of the run
                    if pieces and pieces[-1][1] + pieces[-1][2] == block + i:
                        p = pieces[-1]
                        pieces[-1] = (ino, p[1], p[2] + 1, p[3], trees)
                    else:
                        pieces.append((ino, block + i, 1, lba + i, trees))
                rest = [(ino, block + n, count - n, lba + n, trees)] if n < count else []
                runs[0:1] = pieces + rest
                continue
            live = trees[0] is fs.ns
            recs.append((records.Data if live else records.Kept)(ino, block, n))
            remaps.append((trees[1:] if live else trees, ino, block, n, used))
            runs[0] = (ino, block + n, count - n, lba + n, trees)
            if n == count:
                runs.pop(0)
            used += n
        if not used:
            continue
        encoded = fs._take_pending() + b"".join(records.encode(r) for r in recs)
        data_lba = fs.writer.append(Stream.GC, encoded, memoryview(buf)[:used * bs])
        fs.ns.apply_unit(recs, data_lba)
        for trees, ino, block, n, offset in remaps:
            for ns in trees:
                ns.apply(records.Map(ino, block, n, data_lba + offset))
        moved += used
    if left:
        fs.writer.damaged.add(zone)
        log.error("zone %d is damaged: %d live block(s) fail their checksums and stay there; GC moved the "
                  "other %d and goes on with other zones", zone, left, moved)
    return moved
