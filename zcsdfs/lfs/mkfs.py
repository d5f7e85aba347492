"""mkfs: reset every zone and write the superblock copies and a first checkpoint.

Both checkpoint zones get a superblock copy in their first block; the
second zone is then finished (so it holds no active-zone resource) until
the checkpointer switches to it. ``looks_formatted`` is what ``zcsdfs
mkfs`` asks before it destroys anything.

The first checkpoint holds the root directory (its body chunk in the first
log zone, the metadata head) and every other log zone FREE, so the first
mount starts from it like any other.
"""

from __future__ import annotations

import os
import stat
import time

from zcsdfs.lfs import records
from zcsdfs.lfs.checkpoint import Checkpointer, zone_table_root_bytes
from zcsdfs.lfs.errors import Invalid
from zcsdfs.lfs.format import LOG_MAGICS
from zcsdfs.lfs.log import LogWriter
from zcsdfs.lfs.namespace import ROOT_INO, Namespace
from zcsdfs.lfs.progress import Progress, Steps
from zcsdfs.lfs.scan import written_end
from zcsdfs.lfs.superblock import CHECKPOINT_ZONES, MAGIC, Superblock
from zcsdfs.zns.zone import ZoneState

MIN_LOG_ZONES = 2


def mkfs(device, *, uuid: bytes | None = None, root_owner: tuple[int, int] | None = None,
         progress: Progress | None = None) -> Superblock:
    """Make an empty file system on ``device`` (destroying what it held).

    The root directory belongs to ``root_owner`` (uid, gid), by default to
    whoever formats (as mkfs.ext4's ``root_owner``): a volume a user makes
    is theirs to fill. ``progress`` is called as ``progress.py`` says: one
    for each zone reset, one for the superblocks, one for the first
    checkpoint.
    """
    uid, gid = (os.geteuid(), os.getegid()) if root_owner is None else root_owner
    g = device.geometry
    if g.zones < len(CHECKPOINT_ZONES) + MIN_LOG_ZONES:
        raise Invalid(f"a device of {g.zones} zones is too small: zcsdfs needs "
                      f"{len(CHECKPOINT_ZONES)} checkpoint zones and {MIN_LOG_ZONES} log zones")
    if g.max_active and g.max_active < 2:
        raise Invalid(f"an active-zone limit of {g.max_active} is too low: zcsdfs keeps a checkpoint zone "
                      f"and at least one log head active")
    if g.zone_capacity < 4:
        raise Invalid(f"a zone capacity of {g.zone_capacity} blocks is too small")
    need = -(-zone_table_root_bytes(g) // g.block_size)
    if need > (g.zone_capacity - 1) // 2:
        raise Invalid(f"{g.zones} zones of {g.zone_capacity} writable blocks cannot hold the metadata: the "
                      f"checkpoint root may need {need} blocks for the zone table alone, and a checkpoint zone "
                      f"keeps {(g.zone_capacity - 1) // 2} for it (half of the blocks after its superblock); "
                      f"use larger zones or fewer of them")
    if uuid is not None and len(uuid) != 16:
        raise Invalid(f"a file system uuid is 16 bytes, not {len(uuid)}")
    used = [z.index for z in device.report_used() if z.state not in (ZoneState.READ_ONLY, ZoneState.OFFLINE)]
    steps = Steps(progress, len(used) + 2)
    steps.advance(0, "resetting zones")
    for zone in used:  # (what reset_all does, counted)
        device.reset(zone)
        steps.advance(1, "resetting zones")
    steps.advance(0, "writing the superblocks")
    now = time.time_ns()
    sb = Superblock(uuid or os.urandom(16), g.block_size, g.zones, g.zone_size, g.zone_capacity, now)
    first, second = CHECKPOINT_ZONES
    device.append(second, sb.encode())  # the second copy: one damaged block never loses the superblock
    device.finish(second)
    device.append(first, sb.encode())
    steps.advance(1, "writing the first checkpoint")
    writer = LogWriter(device, sb.uuid, list(range(len(CHECKPOINT_ZONES), g.zones)), 1)
    ns = Namespace(g.zones, g.zone_size, sums=writer.sums)
    ns.apply(records.Inode(ROOT_INO, stat.S_IFDIR | 0o755, uid, gid, 2, g.block_size, now, now, now))
    Checkpointer(device, sb, first, 0).write(writer, ns)
    steps.finish("made")
    return sb


def looks_formatted(device) -> str | None:
    """Why ``device`` looks like it holds a zcsdfs file system (damaged or not), or None.

    Any superblock copy with our magic counts, whatever its CRC says, and so
    does any zone starting with a frame of ours: a volume whose superblocks
    are all damaged still holds files someone may want back.
    """
    for z in device.report_used():
        zone, start = z.index, z.start
        if written_end(device, zone) == start:
            continue
        try:
            magic = bytes(device.read(start, 1)[:4])
        except OSError:  # an offline zone, a media error: what the others hold decides
            continue
        if zone in CHECKPOINT_ZONES and magic == MAGIC:
            return f"zone {zone} starts with a zcsdfs superblock"
        if magic in LOG_MAGICS:
            return f"zone {zone} starts with a zcsdfs log frame"
    return None
