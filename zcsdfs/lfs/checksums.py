"""Data checksums: a CRC32C for every data block, kept by device address.

As btrfs keeps its checksum tree by disk address, the table is by LBA: the
log never overwrites a block, so a block's checksum is set once, when its
unit is written (or replayed, or loaded from a checkpoint), and stays true
until its zone is reset. Snapshots and frozen views share it with the live
tree. It lives in memory, a ``uint32`` array per zone that holds data, and
travels on disk in two places: log units carry it implicitly (the unit's
frame CRC is taken over the header seeded with it, ``format.py``) and
checkpoint ``Map`` records carry it explicitly.

The checksums are *chained* within a log unit: the first data block's value
is ``crc32c(block)``, each next one ``crc32c(block, value before)``, i.e.
the CRC32C of the unit's data from its first block through this one. Each
block is checked on its own by continuing the value of the block before it
(the unit's last header block holds 0, the start of the chain), with the
strength of a plain CRC32C over 4 KiB; and a run of blocks ``a..b`` is
checked with one CRC32C call over all of it, ``crc32c(run, value[a-1]) ==
value[b]``, which keeps reads at memory speed where one call per block
would cost a Python call per 4 KiB.
"""

from __future__ import annotations

import logging
import sys
from array import array

from zcsdfs.lfs.errors import DataCorrupted
from zcsdfs.zns.crc32c import crc32c

crc = _crc = crc32c
log = logging.getLogger("zcsdfs.lfs")


def chain(data, block_size: int) -> list[int]:
    """The chained checksums of ``data`` (whole blocks): one value per block."""
    view = memoryview(data).cast("B")
    out = []
    append = out.append
    value = 0
    for at in range(0, view.nbytes, block_size):
        value = _crc(view[at:at + block_size], value)
        append(value)
    return out


class BlockSums:
    """``lba -> uint32``: the chained checksum of every data block, and 0 before each unit's first one."""

    def __init__(self, zones: int, zone_size: int, block_size: int):
        self._zone_size = zone_size
        self._block_size = block_size
        self._zones: list[array | None] = [None] * zones
        self.tables = self._zones  # (read-only use: the file system's small-read path indexes it directly)

    def _zone(self, zone: int) -> array:
        table = self._zones[zone]
        if table is None:
            table = self._zones[zone] = array("I", bytes(4 * self._zone_size))
        return table

    def drop(self, zone: int) -> None:
        """Forget a zone's values (it was reset)."""
        self._zones[zone] = None

    def store(self, lba: int, values) -> None:
        """Set the values of the blocks from ``lba`` on (a unit's data: ``lba - 1`` is its header, set to 0)."""
        zs = self._zone_size
        table = self._zone(lba // zs)
        at = lba % zs
        table[at - 1] = 0
        table[at:at + len(values)] = array("I", values)

    def load(self, lba: int, seed: int, raw: bytes) -> None:
        """Set the values of a checkpoint ``Map`` record: ``seed`` at ``lba - 1``, ``raw`` (little-endian)
        from ``lba`` on."""
        zs = self._zone_size
        table = self._zone(lba // zs)
        at = lba % zs
        values = array("I", raw)
        if sys.byteorder == "big":
            values.byteswap()
        table[at - 1] = seed
        table[at:at + len(values)] = values

    def export(self, lba: int, count: int) -> tuple[int, bytes]:
        """(value before ``lba``, little-endian values of ``count`` blocks from ``lba``) for a ``Map`` record."""
        zs = self._zone_size
        table = self._zone(lba // zs)
        at = lba % zs
        values = table[at:at + count]
        if sys.byteorder == "big":
            values.byteswap()
        return table[at - 1], values.tobytes()

    def ok(self, lba: int, data) -> bool:
        """Whether ``data`` (whole blocks, one unit's) is what was written from ``lba``: one CRC32C call."""
        zs = self._zone_size
        table = self._zones[lba // zs]
        if table is None:
            return False
        at = lba % zs
        n = len(data) // self._block_size
        return _crc(data, table[at - 1]) == table[at + n - 1]

    def bad(self, lba: int, data) -> list[int]:
        """Indexes of the blocks of ``data`` (read from ``lba`` on) that fail their checksums."""
        zs, bs = self._zone_size, self._block_size
        view = memoryview(data).cast("B")
        table = self._zones[lba // zs]
        n = view.nbytes // bs
        if table is None:
            return list(range(n))
        at = lba % zs
        return [i for i in range(n) if _crc(view[i * bs:(i + 1) * bs], table[at + i - 1]) != table[at + i]]


def damaged(sums: BlockSums, ino: int, file_block: int, lba: int, data, block_size: int) -> DataCorrupted:
    """Log and return the EIO for a run read from ``lba`` (file block ``file_block`` of ``ino``) that failed."""
    bad = sums.bad(lba, data) or [0]
    offset = (file_block + bad[0]) * block_size
    message = (f"inode {ino}: data block at file offset {offset} (LBA {lba + bad[0]}) fails its CRC32C checksum"
               + (f", and {len(bad) - 1} more block(s) of the same read" if len(bad) > 1 else ""))
    log.error(message)
    return DataCorrupted(message)
