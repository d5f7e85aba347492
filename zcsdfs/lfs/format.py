"""On-disk framing: the header every log unit and checkpoint starts with.

A *frame* is what one append writes: a header block that begins with the
fixed header below and continues with metadata records (spilling into more
blocks if needed), then ``data_blocks`` blocks of file data. One CRC32C
covers the whole frame (with the CRC field zeroed), so a frame torn by a
crash, or corrupted later, is recognised and never half-applied.

Header (little-endian, 56 bytes)::

    magic 4s | version u16 | stream u16 | uuid 16s | seq u64 | reserved u64
    header_blocks u32 | data_blocks u32 | records_len u32 | crc32c u32

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
import crc32c

VERSION = 2  # as the superblock's (superblock.VERSION): frames of format 1 are not ours
UNIT_MAGIC = b"ZLOG"
CHECKPOINT_MAGIC = b"ZCKP"
BODY_MAGIC = b"ZCKB"
LOG_MAGICS = (UNIT_MAGIC, BODY_MAGIC)  # what log zones hold
HEADER = struct.Struct("<4sHH16sQQIIII")
CRC_OFFSET = HEADER.size - 4


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

    @property
    def blocks(self) -> int:
        return self.header_blocks + self.data_blocks


def header_blocks_for(records_len: int, block_size: int) -> int:
    """Blocks the header and ``records_len`` bytes of records occupy."""
    return -(-(HEADER.size + records_len) // block_size)


def build_frame(magic: bytes, uuid: bytes, seq: int, records: bytes, data, block_size: int,
                stream: int = 0) -> bytearray:
    """The bytes of one frame: header, records, padding, then ``data`` (whole blocks)."""
    head, data = build_head(magic, uuid, seq, records, data, block_size, stream)
    return head + data


def build_head(magic: bytes, uuid: bytes, seq: int, records: bytes, data, block_size: int,
               stream: int = 0) -> tuple[bytearray, memoryview]:
    """A frame's header blocks (its CRC32C covering ``data`` too) and ``data`` as a byte view.

    Written back to back they are the frame; keeping them apart spares
    copying a large payload into a new buffer first.
    """
    data = memoryview(data if data is not None else b"").cast("B")
    if data.nbytes % block_size:
        raise ValueError(f"frame data of {data.nbytes} bytes is not whole blocks")
    hblocks = header_blocks_for(len(records), block_size)
    head = bytearray(hblocks * block_size)
    HEADER.pack_into(head, 0, magic, VERSION, stream, uuid, seq, 0, hblocks, data.nbytes // block_size,
                     len(records), 0)
    head[HEADER.size:HEADER.size + len(records)] = records
    crc = crc32c.crc32c(data, crc32c.crc32c(head)) if data.nbytes else crc32c.crc32c(head)
    struct.pack_into("<I", head, CRC_OFFSET, crc)
    return head, data


def parse_header(block) -> FrameHeader | None:
    """The header at the start of ``block``, or None if it is not a frame header at all."""
    magic, version, stream, uuid, seq, _, hblocks, dblocks, rlen, crc = HEADER.unpack_from(block, 0)
    if magic not in (UNIT_MAGIC, CHECKPOINT_MAGIC, BODY_MAGIC) or version != VERSION or hblocks == 0:
        return None
    return FrameHeader(magic, stream, uuid, seq, hblocks, dblocks, rlen, crc)


def frame_crc_ok(frame: bytearray, header: FrameHeader) -> bool:
    """Whether the frame's CRC32C matches (checked with the CRC field zeroed, then restored)."""
    struct.pack_into("<I", frame, CRC_OFFSET, 0)
    ok = crc32c.crc32c(frame) == header.crc
    struct.pack_into("<I", frame, CRC_OFFSET, header.crc)
    return ok


def frame_records(frame, header: FrameHeader) -> memoryview:
    return memoryview(frame)[HEADER.size:HEADER.size + header.records_len]


def frame_data(frame, header: FrameHeader, block_size: int) -> memoryview:
    return memoryview(frame)[header.header_blocks * block_size:]
