"""Walking the frames a zone holds, from a block up to the zone's write pointer.

Frames are found by their headers, one after another; the walk stops at
the first block that is not a header of ours or at a frame that would run
past the end, and says why. Recovery, garbage collection and ``fsck`` all
walk zones this way.
"""

from __future__ import annotations

from typing import Iterator

from zcsdfs.lfs.format import FrameHeader, check_frame, parse_header


def written_end(device, zone: int) -> int:
    """The LBA after the last block written in ``zone`` (a finished zone counts as written to capacity)."""
    z = device.zone(zone)
    return min(z.write_pointer, z.start + z.capacity)


class Walk:
    """Iterate ``(lba, header)``; afterwards ``stop`` is where the walk ended and ``reason`` why (None: at the end).

    ``magic`` is the frame magic to walk over, or a tuple of them (log zones
    hold units and checkpoint body chunks, ``format.LOG_MAGICS``).
    """

    def __init__(self, device, uuid: bytes, magic: bytes | tuple[bytes, ...], start: int, end: int):
        self._device = device
        self._uuid = uuid
        self._magics = (magic,) if isinstance(magic, bytes) else magic
        self.stop = start
        self.end = end
        self.reason: str | None = None

    def __iter__(self) -> Iterator[tuple[int, FrameHeader]]:
        device = self._device
        block = bytearray(device.block_size)
        lba = self.stop
        while lba < self.end:
            device.read_into(lba, block)
            header = parse_header(block)
            if header is None or header.magic not in self._magics:
                self.reason = "no frame header"
                break
            if header.uuid != self._uuid:
                self.reason = "a frame of another file system"
                break
            if lba + header.blocks > self.end:
                self.reason = f"a frame of {header.blocks} blocks runs past the written end (torn write)"
                break
            yield lba, header
            lba += header.blocks
            self.stop = lba
        self.stop = lba


def read_frame(device, lba: int, header: FrameHeader) -> bytearray | None:
    """The whole frame at ``lba``, or None if it fails its CRC32C."""
    found = read_unit(device, lba, header)
    return None if found is None else found[0]


def read_unit(device, lba: int, header: FrameHeader) -> tuple[bytearray, list[int]] | None:
    """The whole frame at ``lba`` and the chained checksums of its data blocks, or None if it fails its CRC32C."""
    frame = bytearray(header.blocks * device.block_size)
    device.read_into(lba, frame)
    sums = check_frame(frame, header, device.block_size)
    return None if sums is None else (frame, sums)
