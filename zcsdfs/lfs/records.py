"""Metadata records: the vocabulary of the log and of checkpoint images.

Every change to the namespace is one or more records. Live operations build
records and apply them (``namespace.Namespace.apply``); recovery applies the
same records read back from the log, and a checkpoint image is the records
that rebuild the whole namespace from nothing. So the state after a crash
is computed by the same code as the state before it.

Each record is a type byte followed by a fixed little-endian struct and,
for some, variable-length bytes (names are at most 255 bytes, so one length
byte suffices). Names travel as str in memory and as ``os.fsencode`` bytes
on disk, which round-trips any byte string.
"""

from __future__ import annotations

import os
import struct

import attrs

from zcsdfs.lfs.errors import Corrupted


@attrs.frozen
class Inode:
    """All attributes of one inode (times in ns); ``target`` only for symlinks, ``rdev`` for devices.

    An inode with a device number travels as a ``DEVICE_INODE`` record (the
    ``INODE`` layout plus ``rdev``); every other inode keeps the ``INODE``
    layout, so volumes without device nodes are byte-for-byte as before.
    """

    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    target: str = ""
    rdev: int = 0


@attrs.frozen
class Dentry:
    """Add (or replace) the entry ``name`` in directory ``parent``."""

    parent: int
    name: str
    child: int


@attrs.frozen
class Undentry:
    parent: int
    name: str


@attrs.frozen
class Free:
    """Drop an inode with its extents and extended attributes."""

    ino: int


@attrs.frozen
class Xattr:
    ino: int
    name: str
    value: bytes


@attrs.frozen
class Unxattr:
    ino: int
    name: str


@attrs.frozen
class Truncate:
    """Unmap every file block from ``first_block`` on."""

    ino: int
    first_block: int


@attrs.frozen
class Punch:
    """Unmap ``count`` file blocks from ``first_block`` (a hole punched with fallocate)."""

    ino: int
    first_block: int
    count: int


@attrs.frozen
class Data:
    """``count`` file blocks from ``first_block`` are the next blocks of the unit's data."""

    ino: int
    first_block: int
    count: int


@attrs.frozen
class Map:
    """``count`` file blocks from ``first_block`` live at device LBAs from ``lba``.

    In a checkpoint image it carries the blocks' data checksums
    (``checksums.py``): ``sums``, one little-endian ``uint32`` per block, and
    ``seed``, the value of the block before ``lba`` that the first one
    continues. Applied in memory (GC remapping snapshots) they are empty.
    """

    ino: int
    first_block: int
    count: int
    lba: int
    seed: int = 0
    sums: bytes = b""


@attrs.frozen
class ZoneRecord:
    """A log zone's role at checkpoint time (see ``log.py``).

    ``modified`` is the sequence number of the last unit written into the
    zone, the age cost-benefit GC weighs. It came with version 2 of the
    record (type ``ZONE_V2``); a version 1 record reads back as 0 (as old as
    can be).
    """

    zone: int
    state: int
    stream: int
    written: int
    valid: int
    modified: int = 0
    damaged: int = 0  # 1: GC found live blocks failing their checksums here (format 2, type ZONE_V3)


@attrs.frozen
class Counters:
    """The first record of a checkpoint image: where numbering resumes."""

    next_seq: int
    next_ino: int


@attrs.frozen
class Usage:
    """Lifetime totals, saved in each checkpoint: the basis of write amplification."""

    user_blocks: int  # file blocks programs wrote
    device_blocks: int  # blocks the log and checkpoints appended
    gc_blocks: int  # blocks garbage collection relocated


@attrs.frozen
class Kept:
    """Like ``Data``, but the blocks are kept for snapshots only: replay maps nothing."""

    ino: int
    first_block: int
    count: int


@attrs.frozen
class Snapshot:
    """In a checkpoint image: the records after it, up to the next, rebuild snapshot ``name``."""

    name: str
    created_ns: int


@attrs.frozen
class Chunk:
    """In a checkpoint root: the body chunk frame at ``lba`` holds (part of) inode group ``group``.

    ``crc`` is the chunk frame's CRC32C, so the root names exactly one
    frame; see ``checkpoint.py``.
    """

    group: int
    lba: int
    blocks: int
    crc: int


@attrs.frozen
class ZoneChunk:
    """In a checkpoint root: the body chunk frame at ``lba`` holds (part of) the zone records of zone
    group ``group`` (format 3; see ``checkpoint.py``)."""

    group: int
    lba: int
    blocks: int
    crc: int


_INODE = struct.Struct("<QIIIIQqqqH")
_DEVICE_INODE = struct.Struct("<QIIIIQqqqQH")
_DENTRY = struct.Struct("<QQB")
_NAMED = struct.Struct("<QB")
_U64 = struct.Struct("<Q")
_XATTR = struct.Struct("<QBI")
_TRUNCATE = struct.Struct("<QQ")
_DATA = struct.Struct("<QQI")
_MAP = struct.Struct("<QQIQI")  # and count little-endian uint32 checksums
_ZONE = struct.Struct("<IBBII")
_ZONE_V2 = struct.Struct("<IBBIIQ")
_ZONE_V3 = struct.Struct("<IBBIIQB")
_COUNTERS = struct.Struct("<QQ")
_USAGE = struct.Struct("<QQQ")
_SNAPSHOT = struct.Struct("<qB")
_CHUNK = struct.Struct("<QQII")

INODE, DENTRY, UNDENTRY, FREE, XATTR, UNXATTR, TRUNCATE, DATA, MAP, ZONE, COUNTERS, USAGE, KEPT, SNAPSHOT, ZONE_V2 = \
    range(1, 16)
DEVICE_INODE, PUNCH = 16, 17
CHUNK = 18
ZONE_V3 = 19
ZONE_CHUNK = 20


def _name(name: str) -> bytes:
    return os.fsencode(name)


def encode(record) -> bytes:
    """The on-disk bytes of one record."""
    match record:
        case Inode() if record.rdev:
            target = _name(record.target)
            return bytes((DEVICE_INODE,)) + _DEVICE_INODE.pack(
                record.ino, record.mode, record.uid, record.gid, record.nlink, record.size,
                record.atime_ns, record.mtime_ns, record.ctime_ns, record.rdev, len(target)) + target
        case Inode():
            target = _name(record.target)
            return bytes((INODE,)) + _INODE.pack(
                record.ino, record.mode, record.uid, record.gid, record.nlink, record.size,
                record.atime_ns, record.mtime_ns, record.ctime_ns, len(target)) + target
        case Dentry():
            name = _name(record.name)
            return bytes((DENTRY,)) + _DENTRY.pack(record.parent, record.child, len(name)) + name
        case Undentry():
            name = _name(record.name)
            return bytes((UNDENTRY,)) + _NAMED.pack(record.parent, len(name)) + name
        case Free():
            return bytes((FREE,)) + _U64.pack(record.ino)
        case Xattr():
            name = _name(record.name)
            return bytes((XATTR,)) + _XATTR.pack(record.ino, len(name), len(record.value)) + name + record.value
        case Unxattr():
            name = _name(record.name)
            return bytes((UNXATTR,)) + _NAMED.pack(record.ino, len(name)) + name
        case Truncate():
            return bytes((TRUNCATE,)) + _TRUNCATE.pack(record.ino, record.first_block)
        case Punch():
            return bytes((PUNCH,)) + _DATA.pack(record.ino, record.first_block, record.count)
        case Data():
            return bytes((DATA,)) + _DATA.pack(record.ino, record.first_block, record.count)
        case Map():
            if len(record.sums) != 4 * record.count:
                raise ValueError(f"a Map record of {record.count} blocks needs {4 * record.count} bytes of "
                                 f"checksums, not {len(record.sums)}")
            return bytes((MAP,)) + _MAP.pack(record.ino, record.first_block, record.count, record.lba,
                                             record.seed) + record.sums
        case ZoneRecord():
            return bytes((ZONE_V3,)) + _ZONE_V3.pack(record.zone, record.state, record.stream, record.written,
                                                     record.valid, record.modified, record.damaged)
        case Counters():
            return bytes((COUNTERS,)) + _COUNTERS.pack(record.next_seq, record.next_ino)
        case Kept():
            return bytes((KEPT,)) + _DATA.pack(record.ino, record.first_block, record.count)
        case Snapshot():
            name = _name(record.name)
            return bytes((SNAPSHOT,)) + _SNAPSHOT.pack(record.created_ns, len(name)) + name
        case Chunk():
            return bytes((CHUNK,)) + _CHUNK.pack(record.group, record.lba, record.blocks, record.crc)
        case ZoneChunk():
            return bytes((ZONE_CHUNK,)) + _CHUNK.pack(record.group, record.lba, record.blocks, record.crc)
        case Usage():
            return bytes((USAGE,)) + _USAGE.pack(record.user_blocks, record.device_blocks, record.gc_blocks)
    raise TypeError(f"not a metadata record: {record!r}")


def decode(buf, where: str):
    """Yield the records in ``buf``; ``where`` names the frame in error messages."""
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    try:
        while pos < end:
            kind = buf[pos]
            pos += 1
            if kind == INODE:
                *fields, tlen = _INODE.unpack_from(buf, pos)
                pos += _INODE.size
                yield Inode(*fields, os.fsdecode(bytes(buf[pos:pos + tlen])))
                pos += tlen
            elif kind == DEVICE_INODE:
                *fields, rdev, tlen = _DEVICE_INODE.unpack_from(buf, pos)
                pos += _DEVICE_INODE.size
                yield Inode(*fields, os.fsdecode(bytes(buf[pos:pos + tlen])), rdev)
                pos += tlen
            elif kind == DENTRY:
                parent, child, nlen = _DENTRY.unpack_from(buf, pos)
                pos += _DENTRY.size
                yield Dentry(parent, os.fsdecode(bytes(buf[pos:pos + nlen])), child)
                pos += nlen
            elif kind in (UNDENTRY, UNXATTR):
                number, nlen = _NAMED.unpack_from(buf, pos)
                pos += _NAMED.size
                name = os.fsdecode(bytes(buf[pos:pos + nlen]))
                yield Undentry(number, name) if kind == UNDENTRY else Unxattr(number, name)
                pos += nlen
            elif kind == FREE:
                yield Free(*_U64.unpack_from(buf, pos))
                pos += _U64.size
            elif kind == XATTR:
                ino, nlen, vlen = _XATTR.unpack_from(buf, pos)
                pos += _XATTR.size
                name = os.fsdecode(bytes(buf[pos:pos + nlen]))
                pos += nlen
                yield Xattr(ino, name, bytes(buf[pos:pos + vlen]))
                pos += vlen
            elif kind == TRUNCATE:
                yield Truncate(*_TRUNCATE.unpack_from(buf, pos))
                pos += _TRUNCATE.size
            elif kind == DATA:
                yield Data(*_DATA.unpack_from(buf, pos))
                pos += _DATA.size
            elif kind == PUNCH:
                yield Punch(*_DATA.unpack_from(buf, pos))
                pos += _DATA.size
            elif kind == MAP:
                ino, first, count, lba, seed = _MAP.unpack_from(buf, pos)
                pos += _MAP.size
                if pos + 4 * count > end:
                    raise struct.error
                yield Map(ino, first, count, lba, seed, bytes(buf[pos:pos + 4 * count]))
                pos += 4 * count
            elif kind == ZONE:
                yield ZoneRecord(*_ZONE.unpack_from(buf, pos))
                pos += _ZONE.size
            elif kind == ZONE_V2:
                yield ZoneRecord(*_ZONE_V2.unpack_from(buf, pos))
                pos += _ZONE_V2.size
            elif kind == ZONE_V3:
                yield ZoneRecord(*_ZONE_V3.unpack_from(buf, pos))
                pos += _ZONE_V3.size
            elif kind == COUNTERS:
                yield Counters(*_COUNTERS.unpack_from(buf, pos))
                pos += _COUNTERS.size
            elif kind == KEPT:
                yield Kept(*_DATA.unpack_from(buf, pos))
                pos += _DATA.size
            elif kind == SNAPSHOT:
                created, nlen = _SNAPSHOT.unpack_from(buf, pos)
                pos += _SNAPSHOT.size
                yield Snapshot(os.fsdecode(bytes(buf[pos:pos + nlen])), created)
                pos += nlen
            elif kind == USAGE:
                yield Usage(*_USAGE.unpack_from(buf, pos))
                pos += _USAGE.size
            elif kind == CHUNK:
                yield Chunk(*_CHUNK.unpack_from(buf, pos))
                pos += _CHUNK.size
            elif kind == ZONE_CHUNK:
                yield ZoneChunk(*_CHUNK.unpack_from(buf, pos))
                pos += _CHUNK.size
            else:
                raise Corrupted(f"unknown metadata record type {kind} at byte {pos - 1} of {where}")
    except struct.error:
        raise Corrupted(f"metadata record cut short at byte {pos} of {where}") from None
    if pos != end:
        raise Corrupted(f"metadata record runs past the end of {where}")
