"""``Device``: what the lfs needs of a zoned device, and nothing more.

The emulated ``zcsdfs.zns.ZonedDevice`` (memory or image backend) is one;
a Linux zoned block device, or a remote one, would be another. The lfs
only ever calls these, so anything that provides them can hold a zcsdfs.
Commands follow NVMe ZNS (see ``zcsdfs.zns.device``): writes land at the
write pointer, ``append`` returns the LBA it wrote, data becomes durable at
``flush``; a device with ``readonly`` set refuses every change with EROFS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from zcsdfs.zns.geometry import Geometry
    from zcsdfs.zns.zone import Zone


@runtime_checkable
class Device(Protocol):
    geometry: "Geometry"
    block_size: int
    readonly: bool

    def report(self, start_zone: int = 0, count: int | None = None) -> list["Zone"]:
        """Zone descriptors from ``start_zone`` on (all of them by default)."""

    def report_used(self) -> list["Zone"]:
        """Descriptors of the zones that are not EMPTY, in zone order (a report filtered on state):
        what mount, mkfs and fsck walk instead of every zone of a large device."""

    def zone(self, index: int) -> "Zone":
        """One zone's descriptor."""

    def read(self, lba: int, nblocks: int) -> bytes: ...

    def read_into(self, lba: int, buffer) -> None:
        """Fill ``buffer`` (whole blocks) from ``lba`` on; unwritten blocks read as zeros."""

    def read_bytes(self, lba: int, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` bytes into block ``lba``."""

    def write(self, lba: int, data, *, fua: bool = False) -> None:
        """Write whole blocks at the write pointer of ``lba``'s zone."""

    def append(self, zone: int, data, *, fua: bool = False) -> int:
        """Zone append; returns the first LBA written."""

    def reset(self, zone: int) -> None: ...

    def reset_all(self) -> None: ...

    def finish(self, zone: int) -> None: ...

    def flush(self) -> None:
        """Make every write so far durable."""
