"""Volumes with known contents for the inspector's tests."""

from __future__ import annotations

import os

import zcsdfs
from zcsdfs.lfs import mkfs
from zcsdfs.zns import Geometry, ZonedDevice

BS = 4096
GEOMETRY = Geometry(zones=12, zone_size=64, zone_capacity=64)


def fill(vol: zcsdfs.Volume) -> None:
    """/d/f0../d/f4 of 3..7 blocks each, and /big of 70 blocks (more than one zone)."""
    vol.mkdir("/d")
    for i in range(5):
        write(vol, f"/d/f{i}", bytes([i]) * BS * (i + 3))
    write(vol, "/big", bytes(range(256)) * 16 * 70)
    vol.stack.fs.sync()


def write(vol, path: str, data: bytes) -> None:
    fd = vol.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        vol.write(fd, data)
    finally:
        vol.close(fd)


def memory_volume() -> zcsdfs.Volume:
    vol = zcsdfs.Volume(ZonedDevice.memory(GEOMETRY))
    fill(vol)
    return vol


def image(path) -> str:
    with ZonedDevice.create(path, GEOMETRY) as device:
        mkfs(device)
    vol = zcsdfs.Volume(str(path))
    fill(vol)
    vol.unmount()
    return str(path)
