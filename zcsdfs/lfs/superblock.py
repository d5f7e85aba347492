"""The superblock: the first block of each checkpoint zone.

It names the file system (magic, version, uuid) and the geometry it was
made for, so mount can refuse a foreign device or one whose geometry
changed. There are two copies, one in the first block of each checkpoint
zone (zones 0 and 1): mkfs writes both, and a checkpoint zone is reset only
when the other holds the latest checkpoint, and is rewritten starting with
its copy at once, so a damaged (or unreadable) copy leaves the other to
mount from. Mount reports a damaged copy; ``fsck`` counts it as an error.

The version is the on-disk format's: 2 added per-block data checksums
(``checksums.py``); 3 lets a checkpoint keep the zone table in body chunks
in the log (``checkpoint.py``), so the checkpoint root no longer grows with
the zone count. Formats 2 and 3 are read; a volume keeps the version it was
made with (a format 2 volume's checkpoints keep the whole zone table in the
root, which a format 2 zcsdfs reads). An image of another version is
refused with a message saying so (``UnsupportedFormat``); nothing converts it.

Layout (little-endian)::

    magic 4s "ZCSB" | version u16 | reserved u16 | uuid 16s | block_size u32
    zones u32 | zone_size u64 | zone_capacity u64 | checkpoint zones 2 x u32
    created_ns u64 | crc32c u32 (over everything before it)
"""

from __future__ import annotations

import struct

import attrs

from zcsdfs.lfs.errors import Corrupted, NotZcsdfs, UnsupportedFormat
from zcsdfs.zns.crc32c import crc32c

MAGIC = b"ZCSB"
VERSION = 3  # the on-disk format mkfs writes: 2 stores a CRC32C of every data block, 3 a zone table in chunks
READABLE = (2, 3)
LAYOUT = struct.Struct("<4sHH16sIIQQIIQ")
CRC = struct.Struct("<I")
CHECKPOINT_ZONES = (0, 1)


@attrs.frozen
class Superblock:
    uuid: bytes
    block_size: int
    zones: int
    zone_size: int
    zone_capacity: int
    created_ns: int
    checkpoint_zones: tuple[int, int] = CHECKPOINT_ZONES
    version: int = VERSION

    def encode(self) -> bytes:
        body = LAYOUT.pack(MAGIC, self.version, 0, self.uuid, self.block_size, self.zones, self.zone_size,
                           self.zone_capacity, *self.checkpoint_zones, self.created_ns)
        block = body + CRC.pack(crc32c(body))
        return block + bytes(self.block_size - len(block))

    @classmethod
    def decode(cls, block, where: str) -> "Superblock":
        """Parse one superblock copy; ``where`` names it in error messages."""
        magic, version, _, uuid, bs, zones, zsize, zcap, cp0, cp1, created = LAYOUT.unpack_from(block, 0)
        if magic != MAGIC:
            raise NotZcsdfs(f"no zcsdfs superblock at {where}")
        (crc,) = CRC.unpack_from(block, LAYOUT.size)
        if crc != crc32c(bytes(block[:LAYOUT.size])):
            raise Corrupted(f"superblock at {where} fails its CRC32C")
        if version not in READABLE:
            raise UnsupportedFormat(f"the file system was made by a zcsdfs with on-disk format {version}; "
                                    f"this one reads formats {READABLE[0]} to {READABLE[-1]} (format 2 added "
                                    f"data checksums, 3 a zone table in the log)")
        return cls(uuid, bs, zones, zsize, zcap, created, (cp0, cp1), version)

    def check_geometry(self, geometry) -> None:
        """Refuse a device whose shape differs from the one this file system was made on."""
        mine = (self.block_size, self.zones, self.zone_size, self.zone_capacity)
        theirs = (geometry.block_size, geometry.zones, geometry.zone_size, geometry.zone_capacity)
        if mine != theirs:
            raise Corrupted(f"superblock geometry (block size, zones, zone size, capacity) {mine} "
                            f"does not match the device's {theirs}")
