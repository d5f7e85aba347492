"""Garbage collection: move a victim zone's live blocks away, then reset it.

The victim's unit headers are its reverse map: each ``Data`` record says
which file blocks the following data blocks were written for. A block is
live if that file's extent map still points at it; live blocks are copied,
run by run, into units on the GC stream (whose ``Data`` records remap them
on replay as on the live system) and everything else in the zone is
garbage. The zone is reset only after a checkpoint that no longer needs it
is durable, and only if its valid-block count really dropped to zero.

Victims are chosen greedily: the sealed zone with the fewest valid blocks.
"""

from __future__ import annotations

from zcsdfs.lfs import records
from zcsdfs.lfs.format import HEADER, UNIT_MAGIC, frame_records
from zcsdfs.lfs.log import Role, Stream
from zcsdfs.lfs.scan import Walk, read_frame, written_end


def greedy_victim(fs) -> int | None:
    """The sealed zone with the fewest valid blocks, if moving them frees anything."""
    w, valid = fs.writer, fs.ns.valid
    capacity = fs.device.geometry.zone_capacity
    sealed = [z for z in w.log_zones if w.role[z] is Role.SEALED and valid[z] < capacity]
    return min(sealed, key=lambda z: valid[z], default=None)


def live_runs(fs, zone: int):
    """(ino, first file block, count, lba) for every run of blocks in ``zone`` still mapped there."""
    device, inodes = fs.device, fs.ns.inodes
    start = device.zone(zone).start
    for lba, header in Walk(device, fs.sb.uuid, UNIT_MAGIC, start, written_end(device, zone)):
        frame = read_frame(device, lba, header)
        if frame is None:
            return  # the zone's valid count will not reach zero, so it is not reset
        at = lba + header.header_blocks
        for rec in records.decode(frame_records(frame, header), f"log unit at LBA {lba}"):
            if not isinstance(rec, records.Data):
                continue
            node = inodes.get(rec.ino)
            if node is not None:
                for block, count, where in node.extents.runs(rec.first_block, rec.count):
                    offset = block - rec.first_block
                    if where == at + offset:
                        yield rec.ino, block, count, where
            at += rec.count


def collect(fs, zone: int) -> int:
    """Relocate the live blocks of ``zone``, many runs per unit; return how many moved."""
    bs = fs.block_size
    per_record = len(records.encode(records.Data(0, 0, 0)))
    runs = list(live_runs(fs, zone))
    moved = 0
    while runs:
        batch = runs[:max(1, (bs - HEADER.size) // per_record)]
        room = fs.writer.room(Stream.GC, fs._pending_len + len(batch) * per_record,
                              sum(count for _, _, count, _ in batch))
        recs, buf = [], bytearray(room * bs)
        used = 0
        while runs and used < room:
            ino, block, count, lba = runs[0]
            n = min(count, room - used)
            fs.device.read_into(lba, memoryview(buf)[used * bs:(used + n) * bs])
            recs.append(records.Data(ino, block, n))
            runs[0] = (ino, block + n, count - n, lba + n)
            if n == count:
                runs.pop(0)
            used += n
        encoded = fs._take_pending() + b"".join(records.encode(r) for r in recs)
        fs.ns.apply_unit(recs, fs.writer.append(Stream.GC, encoded, buf))
        moved += used
    return moved
