"""mkfs: reset every zone and write the superblock and a first checkpoint.

The first checkpoint holds the root directory (its body chunk in the first
log zone, the metadata head) and every other log zone FREE, so the first
mount starts from it like any other.
"""

from __future__ import annotations

import os
import stat
import time

from zcsdfs.lfs import records
from zcsdfs.lfs.checkpoint import Checkpointer
from zcsdfs.lfs.errors import Invalid
from zcsdfs.lfs.log import LogWriter
from zcsdfs.lfs.namespace import ROOT_INO, Namespace
from zcsdfs.lfs.superblock import CHECKPOINT_ZONES, Superblock

MIN_LOG_ZONES = 2


def mkfs(device, *, uuid: bytes | None = None, root_owner: tuple[int, int] | None = None) -> Superblock:
    """Make an empty file system on ``device`` (destroying what it held).

    The root directory belongs to ``root_owner`` (uid, gid), by default to
    whoever formats (as mkfs.ext4's ``root_owner``): a volume a user makes
    is theirs to fill.
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
    if uuid is not None and len(uuid) != 16:
        raise Invalid(f"a file system uuid is 16 bytes, not {len(uuid)}")
    device.reset_all()
    now = time.time_ns()
    sb = Superblock(uuid or os.urandom(16), g.block_size, g.zones, g.zone_size, g.zone_capacity, now)
    first = CHECKPOINT_ZONES[0]
    device.append(first, sb.encode())
    ns = Namespace(g.zones, g.zone_size)
    ns.apply(records.Inode(ROOT_INO, stat.S_IFDIR | 0o755, uid, gid, 2, g.block_size, now, now, now))
    writer = LogWriter(device, sb.uuid, [z for z in range(g.zones) if z not in CHECKPOINT_ZONES], 1)
    Checkpointer(device, sb, first, 0).write(writer, ns)
    return sb
