"""Errors of the zoned device, one class per NVMe status.

Each carries the NVMe status code it stands for (``status``) and an errno, so
upper layers can both reason about the device and hand users a real errno.
The errno is the one Linux's block layer reports where that is specific
(EOVERFLOW and ETOOMANYREFS for the active and open resource limits, EIO for
write-pointer and boundary violations); where Linux folds a status into a
vague code we give the precise one (EROFS for a read-only zone, EINVAL for a
malformed command).
"""

from __future__ import annotations

import errno


class ZonedError(OSError):
    """A command the device refused or could not complete."""

    errno_value = errno.EIO
    status: int | None = None  # NVMe status code (Status Code Type 0 or 1)

    def __init__(self, message: str, *, zone: int | None = None, lba: int | None = None,
                 path: str | None = None):
        self.zone = zone
        self.lba = lba
        parts = []
        if zone is not None:
            parts.append(f"zone {zone}")
        if lba is not None:
            parts.append(f"LBA {lba}")
        where = f" ({', '.join(parts)})" if parts else ""
        super().__init__(self.errno_value, f"{message}{where}")
        if path is not None:
            self.filename = path


class InvalidField(ZonedError):
    """Invalid Field in Command: a malformed request (length, alignment, zone number)."""

    errno_value = errno.EINVAL
    status = 0x02


class LbaOutOfRange(ZonedError):
    """LBA Out of Range: the access goes past the end of the namespace."""

    status = 0x80


class ZoneBoundaryError(ZonedError):
    """Zone Boundary Error: a write would cross the zone's writable capacity."""

    status = 0xB8


class ZoneFull(ZonedError):
    """Zone Is Full."""

    status = 0xB9


class ZoneReadOnly(ZonedError):
    """Zone Is Read Only."""

    errno_value = errno.EROFS
    status = 0xBA


class ZoneOffline(ZonedError):
    """Zone Is Offline."""

    status = 0xBB


class ZoneInvalidWrite(ZonedError):
    """Zone Invalid Write: a write not at the zone's write pointer."""

    status = 0xBC


class TooManyActiveZones(ZonedError):
    """Too Many Active Zones (Linux: BLK_STS_ZONE_ACTIVE_RESOURCE)."""

    errno_value = errno.EOVERFLOW
    status = 0xBD


class TooManyOpenZones(ZonedError):
    """Too Many Open Zones (Linux: BLK_STS_ZONE_OPEN_RESOURCE)."""

    errno_value = errno.ETOOMANYREFS
    status = 0xBE


class InvalidZoneStateTransition(ZonedError):
    """Invalid Zone State Transition: e.g. closing an empty zone."""

    status = 0xBF


class MediaError(ZonedError):
    """Unrecovered Read Error / Write Fault, as injected by the fault injector."""

    status = 0x281  # SCT 2 (media errors), SC 0x81 unrecovered read error


class DeviceBusy(ZonedError):
    """The image is open in another process."""

    errno_value = errno.EBUSY


class DeviceReadOnly(ZonedError):
    """A command that would change the device, sent to one opened read-only (NVMe: Namespace
    Is Write Protected)."""

    errno_value = errno.EROFS
    status = 0x20


class BadImage(ZonedError):
    """A truncated or corrupted image file."""

    errno_value = errno.EUCLEAN


class ForeignImage(ZonedError):
    """A file that is not a zcsdfs device image at all."""

    errno_value = errno.EMEDIUMTYPE
