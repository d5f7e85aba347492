"""The zoned device: an emulated NVMe ZNS namespace, in memory or in an image file.

Knows nothing of files. See ``device.py`` for the semantics, ``crash.py``
for recording and crash states, ``faults.py`` for fault injection.
"""

import os

from zcsdfs.zns.device import ZonedDevice
from zcsdfs.zns.errors import (
    BadImage,
    DeviceBusy,
    DeviceReadOnly,
    ForeignImage,
    InvalidField,
    InvalidZoneStateTransition,
    LbaOutOfRange,
    MediaError,
    TooManyActiveZones,
    TooManyOpenZones,
    ZoneBoundaryError,
    ZonedError,
    ZoneFull,
    ZoneInvalidWrite,
    ZoneOffline,
    ZoneReadOnly,
)
from zcsdfs.zns.factory import open_device
from zcsdfs.zns.geometry import PRESETS, Geometry
from zcsdfs.zns.zone import Zone, ZoneState, ZoneType

DEFAULT_PRESET = "qemu"


def default_device_path() -> str:
    """The embedded default device: $ZCSDFS_DEVICE, else under $XDG_DATA_HOME/zcsdfs/."""
    explicit = os.environ.get("ZCSDFS_DEVICE")
    if explicit:
        return explicit
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "zcsdfs", "default.zns")


def ensure_default_device() -> str:
    """Create the embedded default device (preset ``qemu``, a sparse image) if it is missing."""
    path = default_device_path()
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        ZonedDevice.create(path, Geometry.preset(DEFAULT_PRESET)).close_device()
    return path


__all__ = [
    "ZonedDevice", "open_device", "Zone", "ZoneState", "ZoneType", "Geometry", "PRESETS", "DEFAULT_PRESET",
    "default_device_path", "ensure_default_device", "ZonedError", "InvalidField", "LbaOutOfRange", "ZoneBoundaryError",
    "ZoneFull", "ZoneReadOnly", "ZoneOffline", "ZoneInvalidWrite", "TooManyActiveZones",
    "TooManyOpenZones", "InvalidZoneStateTransition", "MediaError", "DeviceBusy", "DeviceReadOnly", "BadImage",
    "ForeignImage",
]
