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

Victims are chosen by a policy. Greedy takes the sealed zone with the
fewest valid blocks: cheapest to clean now. Cost-benefit (Rosenblum and
Ousterhout's Sprite LFS) takes the zone with the largest
``(1 - u) * age / (1 + u)``, u its valid fraction and age the log sequence
numbers since its last unit: space freed times how long it is likely to
stay free, per block read and rewritten. Cold zones are cleaned at a higher
utilisation than hot ones, whose blocks are still dying on their own.
"""

from __future__ import annotations

from zcsdfs.lfs import records
from zcsdfs.lfs.checkpoint import evacuate
from zcsdfs.lfs.errors import Invalid
from zcsdfs.lfs.format import HEADER, LOG_MAGICS, UNIT_MAGIC, frame_records
from zcsdfs.lfs.log import Role, Stream
from zcsdfs.lfs.scan import Walk, read_frame, written_end


POLICIES = ("greedy", "cost-benefit")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise Invalid(f"unknown GC policy {policy!r} (known: {', '.join(POLICIES)})", policy)
    return policy


def live_blocks(fs) -> list[int]:
    """Per zone, the blocks cleaning it would move: valid data plus checkpoint body chunks."""
    return [v + b for v, b in zip(fs.ns.valid, fs.checkpointer.body)]


def candidates(fs, live: list[int]) -> list[int]:
    """Sealed zones whose cleaning frees something.

    Zones a frozen view pins are never victims: the view's block list must stay true.
    """
    w, viewed = fs.writer, fs.viewed
    capacity = fs.device.geometry.zone_capacity
    return [z for z in w.log_zones if w.role[z] is Role.SEALED and live[z] < capacity and not viewed[z]]


def greedy_victim(fs) -> int | None:
    """The candidate with the fewest live blocks."""
    live = live_blocks(fs)
    return min(candidates(fs, live), key=lambda z: live[z], default=None)


def cost_benefit(u: float, age: int) -> float:
    """Sprite LFS's score: free space gained times its age, per unit of cleaning cost (read 1, write u)."""
    return (1 - u) * age / (1 + u)


def cost_benefit_victim(fs) -> int | None:
    """The candidate with the highest cost-benefit score; ties go to the lower zone."""
    w, live = fs.writer, live_blocks(fs)
    capacity = fs.device.geometry.zone_capacity
    now = w.next_seq
    return max(candidates(fs, live), default=None,
               key=lambda z: (cost_benefit(live[z] / capacity, now - w.modified.get(z, 0)), -z))


def choose_victim(fs, policy: str) -> int | None:
    return greedy_victim(fs) if check_policy(policy) == "greedy" else cost_benefit_victim(fs)


def live_runs(fs, zone: int):
    """(ino, first file block, count, lba, trees) for every run of blocks in ``zone`` still mapped there.

    ``trees`` are the namespaces (the live one first, then snapshots) whose
    extent maps point at the run; a block several trees share is one run.
    """
    device = fs.device
    trees = [fs.ns] + [snap.ns for snap in fs.snapshots.values()]
    start = device.zone(zone).start
    for lba, header in Walk(device, fs.sb.uuid, LOG_MAGICS, start, written_end(device, zone)):
        if header.magic != UNIT_MAGIC:
            continue  # a checkpoint body chunk: evacuated by the checkpoint after GC
        frame = read_frame(device, lba, header)
        if frame is None:
            return  # the zone's valid count will not reach zero, so it is not reset
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
                    yield rec.ino, rec.first_block + i, j - i, at + i, tuple(owners[i])
                i = j
            at += rec.count


def collect(fs, zone: int) -> int:
    """Relocate the live blocks of ``zone``, many runs per unit; return how many moved.

    A run the live tree maps travels as ``Data`` (replay remaps the live
    file); a run only snapshots map travels as ``Kept``. Snapshots are
    remapped in memory, and the checkpoint that follows GC saves them.
    """
    bs = fs.block_size
    per_record = len(records.encode(records.Data(0, 0, 0)))
    evacuate([fs.ns] + [snap.ns for snap in fs.snapshots.values()], zone, fs.device.geometry.zone_size)
    runs = list(live_runs(fs, zone))
    moved = 0
    while runs:
        batch = runs[:max(1, (bs - HEADER.size) // per_record)]
        room = fs.writer.room(Stream.GC, fs._pending_len + len(batch) * per_record,
                              sum(run[2] for run in batch))
        recs, remaps, buf = [], [], bytearray(room * bs)
        used = 0
        while runs and used < room:
            ino, block, count, lba, trees = runs[0]
            n = min(count, room - used)
            fs.device.read_into(lba, memoryview(buf)[used * bs:(used + n) * bs])
            live = trees[0] is fs.ns
            recs.append((records.Data if live else records.Kept)(ino, block, n))
            remaps.append((trees[1:] if live else trees, ino, block, n, used))
            runs[0] = (ino, block + n, count - n, lba + n, trees)
            if n == count:
                runs.pop(0)
            used += n
        encoded = fs._take_pending() + b"".join(records.encode(r) for r in recs)
        data_lba = fs.writer.append(Stream.GC, encoded, buf)
        fs.ns.apply_unit(recs, data_lba)
        for trees, ino, block, n, offset in remaps:
            for ns in trees:
                ns.apply(records.Map(ino, block, n, data_lba + offset))
        moved += used
    return moved
