"""On-disk framing: the header every log unit and checkpoint starts with.

A *frame* is what one append writes: a header block that begins with the
fixed header below and continues with metadata records (spilling into more
blocks if needed), then ``data_blocks`` blocks of file data. The frame's
CRC32C covers the whole frame: it is taken over the header blocks (with the
CRC field zeroed) seeded with the chained checksum of the data blocks
(``checksums.py``: the CRC32C of the data, continued block by block), so a
frame torn by a crash, or corrupted later, is recognised and never
half-applied, and the per-block data checksums come out of the same pass.

Header (little-endian, 56 bytes)::

    magic 4s | version u16 | stream u16 | uuid 16s | seq u64 | flags u64
    header_blocks u32 | data_blocks u32 | records_len u32 | crc32c u32

``flags`` bit 0 (``CONTINUED``, log units only): the operation this unit
belongs to goes on in the unit with the next sequence number. A write too
large for one unit is logged as several, all but the last CONTINUED, and
roll-forward applies such a group only once its last unit is there
(``recovery.py``), so a crash never leaves a write half-applied.

Three kinds of frame share the header, told apart by the magic: log units
(``ZLOG``), checkpoint roots (``ZCKP``, in the checkpoint zones) and
checkpoint body chunks (``ZCKB``, in log zones; see ``checkpoint.py``).
``seq`` is the log sequence number of a unit, or the generation of a
checkpoint (for a body chunk, of the checkpoint that wrote it). The uuid is
the file system's, so frames left by an earlier file system on the same
device are never mistaken for ours.
"""

from __future__ import annotations

import struct

import attrs

from zcsdfs.lfs.checksums import chain
from zcsdfs.zns.crc32c import crc32c

VERSION = 2  # frames are the same in on-disk formats 2 and 3 (superblock.py); frames of format 1 are not ours
UNIT_MAGIC = b"ZLOG"
CHECKPOINT_MAGIC = b"ZCKP"
BODY_MAGIC = b"ZCKB"
LOG_MAGICS = (UNIT_MAGIC, BODY_MAGIC)  # what log zones hold
HEADER = struct.Struct("<4sHH16sQQIIII")
CRC_OFFSET = HEADER.size - 4
CONTINUED = 1  # flags: the operation goes on in the next unit


@attrs.frozen
class FrameHeader:
    magic: bytes
    stream: int
    uuid: bytes
    seq: int
    header_blocks: int
    data_blocks: int
    records_len: int
    crc: int
    flags: int = 0

    @property
    def blocks(self) -> int:
        return self.header_blocks + self.data_blocks


def header_blocks_for(records_len: int, block_size: int) -> int:
    """Blocks the header and ``records_len`` bytes of records occupy."""
    return -(-(HEADER.size + records_len) // block_size)


def build_frame(magic: bytes, uuid: bytes, seq: int, records: bytes, data, block_size: int,
                stream: int = 0) -> bytearray:
    """The bytes of one frame: header, records, padding, then ``data`` (whole blocks)."""
    head, data, _ = build_head(magic, uuid, seq, records, data, block_size, stream)
    return head + data


def build_head(magic: bytes, uuid: bytes, seq: int, records: bytes, data, block_size: int,
               stream: int = 0, flags: int = 0) -> tuple[bytearray, memoryview, list[int]]:
    """A frame's header blocks (their CRC32C covering ``data`` too), ``data`` as a byte view, and
    the chained checksums of its blocks.

    Written back to back the first two are the frame; keeping them apart
    spares copying a large payload into a new buffer first.
    """
    data = memoryview(data if data is not None else b"").cast("B")
    if data.nbytes % block_size:
        raise ValueError(f"frame data of {data.nbytes} bytes is not whole blocks")
    hblocks = header_blocks_for(len(records), block_size)
    head = bytearray(hblocks * block_size)
    HEADER.pack_into(head, 0, magic, VERSION, stream, uuid, seq, flags, hblocks, data.nbytes // block_size,
                     len(records), 0)
    head[HEADER.size:HEADER.size + len(records)] = records
    sums = chain(data, block_size) if data.nbytes else []
    struct.pack_into("<I", head, CRC_OFFSET, crc32c(head, sums[-1] if sums else 0))
    return head, data, sums


def parse_header(block) -> FrameHeader | None:
    """The header at the start of ``block``, or None if it is not a frame header at all."""
    magic, version, stream, uuid, seq, flags, hblocks, dblocks, rlen, crc = HEADER.unpack_from(block, 0)
    if magic not in (UNIT_MAGIC, CHECKPOINT_MAGIC, BODY_MAGIC) or version != VERSION or hblocks == 0:
        return None
    return FrameHeader(magic, stream, uuid, seq, hblocks, dblocks, rlen, crc, flags)


def check_frame(frame: bytearray, header: FrameHeader, block_size: int) -> list[int] | None:
    """The chained checksums of the frame's data blocks if the frame passes its CRC32C, else None.

    Checked with the CRC field zeroed, then restored.
    """
    view = memoryview(frame)
    split = header.header_blocks * block_size if header.data_blocks else len(frame)
    sums = chain(view[split:], block_size) if header.data_blocks else []
    struct.pack_into("<I", frame, CRC_OFFSET, 0)
    ok = crc32c(view[:split], sums[-1] if sums else 0) == header.crc
    struct.pack_into("<I", frame, CRC_OFFSET, header.crc)
    return sums if ok else None


def frame_records(frame, header: FrameHeader) -> memoryview:
    return memoryview(frame)[HEADER.size:HEADER.size + header.records_len]


def frame_data(frame, header: FrameHeader, block_size: int) -> memoryview:
    return memoryview(frame)[header.header_blocks * block_size:]
