"""Space accounting read straight from the device, for ``df`` and ``statfs``.

``disk_usage`` replays the log in memory exactly as mount would, but writes
nothing, so ``zcsdfs df`` can look at an image another process is about to
mount. Write amplification is lifetime: device blocks the log and the
checkpoints appended per file block programs wrote, as saved by the last
checkpoint (blocks written since it are not counted until the next one).
"""

from __future__ import annotations

import attrs

from zcsdfs.lfs.log import RESERVE_ZONES, Role, stream_heads
from zcsdfs.lfs.recovery import replay


def usable_blocks(geometry, log_zones: int, reserve: int) -> int:
    """Blocks of data a full device holds: log zones less the reserve and one zone per log head.

    The heads are left out because GC needs room to keep every head writable
    on a device full of live data.
    """
    heads = len(set(stream_heads(geometry.max_active).values()))
    return (log_zones - reserve - heads) * geometry.zone_capacity


@attrs.frozen
class DiskUsage:
    block_size: int
    zone_capacity: int
    log_zones: int
    free_zones: int
    head_zones: int
    sealed_zones: int
    usable_blocks: int
    valid_blocks: int
    inodes: int
    user_blocks: int
    device_blocks: int
    gc_blocks: int
    damaged_zones: int = 0  # zones GC found live blocks failing their checksums in

    @property
    def utilisation(self) -> float:
        return self.valid_blocks / self.usable_blocks if self.usable_blocks else 0.0

    @property
    def write_amplification(self) -> float:
        return self.device_blocks / self.user_blocks if self.user_blocks else 0.0


def disk_usage(device) -> DiskUsage:
    """How the file system on ``device`` uses its space, without changing anything."""
    r = replay(device)
    g = device.geometry
    free = sum(r.role(z) is Role.FREE and z not in r.streams for z in r.log_zones)
    heads = sum(device.zone(z).state.is_active for z in r.log_zones)
    return DiskUsage(
        block_size=g.block_size, zone_capacity=g.zone_capacity, log_zones=len(r.log_zones),
        free_zones=free, head_zones=heads, sealed_zones=len(r.log_zones) - free - heads,
        usable_blocks=usable_blocks(g, len(r.log_zones), RESERVE_ZONES),
        valid_blocks=sum(r.ns.valid[z] for z in r.log_zones), inodes=len(r.ns.inodes),
        user_blocks=r.usage.user_blocks, device_blocks=r.usage.device_blocks, gc_blocks=r.usage.gc_blocks,
        damaged_zones=sum(1 for rec in r.table.values() if rec.damaged and r.role(rec.zone) is Role.SEALED))
