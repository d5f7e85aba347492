"""Metadata records: the vocabulary of the log and of checkpoint images.

Every change to the namespace is one or more records. Live operations build
records and apply them (``namespace.Namespace.apply``); recovery applies the
same records read back from the log, and a checkpoint image is the records
that rebuild the whole namespace from nothing. So the state after a crash
is computed by the same code as the state before it.

Each record is a type byte followed by a fixed little-endian struct and,
for some, variable-length bytes (names are at most 255 bytes, so one length
byte suffices). Names travel as str in memory and as ``os.fsencode`` bytes
on disk, which round-trips any byte string. ``KINDS`` says how each type
travels, and both ``encode`` and ``decode`` read it: a new record type is a
class and one row there.
"""

from __future__ import annotations

import operator
import os
import struct
from typing import Callable

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


INODE, DENTRY, UNDENTRY, FREE, XATTR, UNXATTR, TRUNCATE, DATA, MAP, ZONE, COUNTERS, USAGE, KEPT, SNAPSHOT, ZONE_V2 = \
    range(1, 16)
DEVICE_INODE, PUNCH = 16, 17
CHUNK = 18
ZONE_V3 = 19
ZONE_CHUNK = 20


class CutShort(Exception):
    """A record's tail runs past the end of its frame; ``at`` is where the tail starts."""

    def __init__(self, at: int):
        super().__init__(at)
        self.at = at


@attrs.frozen
class Tail:
    """A variable-length field after the struct, in the order of the kind's tails.

    Its length is the struct's next trailing length field, or, with ``per``,
    ``unit`` bytes for each of that field's value (not stored). ``text``: a
    str in memory, ``os.fsencode`` bytes on disk.
    """

    name: str
    text: bool = True
    per: str | None = None
    unit: int = 1


@attrs.frozen
class Kind:
    """How one record type travels: type byte ``code``, then ``layout`` packing ``fields`` (and each
    stored tail length, in tail order), then the tails.

    Several kinds may share a class: ``encode`` writes the first of them
    whose ``when`` holds (none: always); a ``legacy`` kind is only read, and
    the class fields it lacks must have defaults.
    """

    code: int
    cls: type
    layout: str  # struct format after the type byte, little-endian
    fields: tuple[str, ...]
    tails: tuple[Tail, ...] = ()
    when: Callable[[object], bool] | None = None
    legacy: bool = False
    # Derived once, so that encoding and decoding a record is a few C calls:
    body: struct.Struct = attrs.field(init=False)
    whole: struct.Struct = attrs.field(init=False)  # the type byte and the body: one pack
    values: Callable = attrs.field(init=False)  # record -> its struct fields' values
    args: Callable | None = attrs.field(init=False)  # struct values + tails -> the class's arguments
    # ``encode`` and ``decode`` as closures over the above, for the common shapes (no tail, or one
    # name): every write encodes records, and every mount decodes a checkpoint's worth.
    encoder: Callable = attrs.field(init=False)
    decoder: Callable = attrs.field(init=False)

    def __attrs_post_init__(self):
        def derive(name, value):
            object.__setattr__(self, name, value)
        derive("body", struct.Struct("<" + self.layout))
        derive("whole", struct.Struct("<B" + self.layout))
        stored = sum(tail.per is None for tail in self.tails)
        if len(self.body.unpack(bytes(self.body.size))) != len(self.fields) + stored:
            raise ValueError(f"record type {self.code}: layout {self.layout!r} does not fit its fields")
        getter = operator.attrgetter(*self.fields)
        derive("values", (lambda rec: (getter(rec),)) if len(self.fields) == 1 else getter)
        # Unpacked, a record is its struct's values (tail lengths included), then its tails.
        where = {name: i for i, name in enumerate(self.fields)}
        where.update((tail.name, len(self.fields) + stored + i) for i, tail in enumerate(self.tails))
        names = [f.name for f in attrs.fields(self.cls)]
        order = [where[name] for name in names if name in where]
        if names[:len(order)] != [name for name in names if name in where]:
            raise ValueError(f"record type {self.code}: the {self.cls.__name__} fields it lacks must come last")
        derive("args", None if order == list(range(len(self.fields))) and not self.tails
               else operator.itemgetter(*order) if len(order) > 1 else lambda v: (v[order[0]],))
        derive("encoder", self._encoder())
        derive("decoder", self._decoder())

    def _named(self) -> bool:
        """The common shape with a tail: one name, its length the struct's last field."""
        return len(self.tails) == 1 and self.tails[0].text and self.tails[0].per is None

    def _encoder(self) -> Callable:
        pack, code, values = self.whole.pack, self.code, self.values
        if not self.tails:
            return lambda record: pack(code, *values(record))
        if self._named():
            text, fsencode = operator.attrgetter(self.tails[0].name), os.fsencode

            def encode_named(record):
                raw = fsencode(text(record))
                return pack(code, *values(record), len(raw)) + raw
            return encode_named
        return self.encode

    def encode(self, record) -> bytes:
        lengths, parts = [], []
        for tail in self.tails:
            raw = getattr(record, tail.name)
            if tail.text:
                raw = os.fsencode(raw)
            if tail.per is None:
                lengths.append(len(raw))
            elif len(raw) != tail.unit * getattr(record, tail.per):
                n = getattr(record, tail.per)
                raise ValueError(f"a {self.cls.__name__} record with {tail.per} {n} needs {tail.unit * n} bytes "
                                 f"of {tail.name}, not {len(raw)}")
            parts.append(raw)
        return self.whole.pack(self.code, *self.values(record), *lengths) + b"".join(parts)

    def _decoder(self) -> Callable:
        unpack, size, cls, args = self.body.unpack_from, self.body.size, self.cls, self.args
        if args is None:
            return lambda buf, pos, end: (cls(*unpack(buf, pos)), pos + size)
        if self._named():
            fsdecode = os.fsdecode

            def decode_named(buf, pos, end):
                values = unpack(buf, pos)
                pos += size
                n = values[-1]
                return cls(*args(values + (fsdecode(bytes(buf[pos:pos + n])),))), pos + n
            return decode_named
        return self.decode

    def decode(self, buf: memoryview, pos: int, end: int):
        """(the record at ``pos``, just after its type byte, and the position after it).

        A record cut short raises ``struct.error`` in its struct, ``CutShort`` in a tail whose
        length is not stored; a tail with a stored length may run past ``end`` (the caller
        checks where the last record ends)."""
        values = self.body.unpack_from(buf, pos)
        pos += self.body.size
        if self.args is None:
            return self.cls(*values), pos
        tails = []
        length = len(self.fields)
        for tail in self.tails:
            if tail.per is None:
                n = values[length]
                length += 1
            else:
                n = tail.unit * values[self.fields.index(tail.per)]
                if pos + n > end:
                    raise CutShort(pos)
            raw = bytes(buf[pos:pos + n])
            tails.append(os.fsdecode(raw) if tail.text else raw)
            pos += n
        return self.cls(*self.args(values + tuple(tails))), pos


_INODE_FIELDS = ("ino", "mode", "uid", "gid", "nlink", "size", "atime_ns", "mtime_ns", "ctime_ns")
_ZONE_FIELDS = ("zone", "state", "stream", "written", "valid")
_BLOCKS = ("ino", "first_block", "count")

#: Every record type, by type byte.
KINDS: dict[int, Kind] = {kind.code: kind for kind in (
    Kind(DEVICE_INODE, Inode, "QIIIIQqqqQH", _INODE_FIELDS + ("rdev",), (Tail("target"),),
         when=lambda rec: rec.rdev),
    Kind(INODE, Inode, "QIIIIQqqqH", _INODE_FIELDS, (Tail("target"),)),
    Kind(DENTRY, Dentry, "QQB", ("parent", "child"), (Tail("name"),)),
    Kind(UNDENTRY, Undentry, "QB", ("parent",), (Tail("name"),)),
    Kind(FREE, Free, "Q", ("ino",)),
    Kind(XATTR, Xattr, "QBI", ("ino",), (Tail("name"), Tail("value", text=False))),
    Kind(UNXATTR, Unxattr, "QB", ("ino",), (Tail("name"),)),
    Kind(TRUNCATE, Truncate, "QQ", ("ino", "first_block")),
    Kind(PUNCH, Punch, "QQI", _BLOCKS),
    Kind(DATA, Data, "QQI", _BLOCKS),
    Kind(MAP, Map, "QQIQI", _BLOCKS + ("lba", "seed"), (Tail("sums", text=False, per="count", unit=4),)),
    Kind(ZONE_V3, ZoneRecord, "IBBIIQB", _ZONE_FIELDS + ("modified", "damaged")),
    Kind(ZONE_V2, ZoneRecord, "IBBIIQ", _ZONE_FIELDS + ("modified",), legacy=True),
    Kind(ZONE, ZoneRecord, "IBBII", _ZONE_FIELDS, legacy=True),
    Kind(COUNTERS, Counters, "QQ", ("next_seq", "next_ino")),
    Kind(USAGE, Usage, "QQQ", ("user_blocks", "device_blocks", "gc_blocks")),
    Kind(KEPT, Kept, "QQI", _BLOCKS),
    Kind(SNAPSHOT, Snapshot, "qB", ("created_ns",), (Tail("name"),)),
    Kind(CHUNK, Chunk, "QQII", ("group", "lba", "blocks", "crc")),
    Kind(ZONE_CHUNK, ZoneChunk, "QQII", ("group", "lba", "blocks", "crc")),
)}

def _encoder_of(cls: type) -> Callable:
    """How ``encode`` writes a ``cls``: with its one kind, or the first of its kinds whose ``when`` holds."""
    kinds = tuple(kind for kind in KINDS.values() if kind.cls is cls and not kind.legacy)
    if len(kinds) == 1 and kinds[0].when is None:
        return kinds[0].encoder

    def choose(record):
        for kind in kinds:
            if kind.when is None or kind.when(record):
                return kind.encoder(record)
        raise TypeError(f"no record type stores {record!r}")
    return choose


_ENCODERS: dict[type, Callable] = {cls: _encoder_of(cls) for cls in {kind.cls: None for kind in KINDS.values()}}
_DECODERS: dict[int, Callable] = {code: kind.decoder for code, kind in KINDS.items()}


def encode(record) -> bytes:
    """The on-disk bytes of one record."""
    encoder = _ENCODERS.get(type(record))
    if encoder is None:
        raise TypeError(f"not a metadata record: {record!r}")
    return encoder(record)


def decode(buf, where: str):
    """Yield the records in ``buf``; ``where`` names the frame in error messages."""
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    decoders = _DECODERS
    try:
        while pos < end:
            decoder = decoders.get(buf[pos])
            if decoder is None:
                raise Corrupted(f"unknown metadata record type {buf[pos]} at byte {pos} of {where}")
            pos += 1
            record, pos = decoder(buf, pos, end)
            yield record
    except struct.error:
        raise Corrupted(f"metadata record cut short at byte {pos} of {where}") from None
    except CutShort as cut:
        raise Corrupted(f"metadata record cut short at byte {cut.at} of {where}") from None
    if pos != end:
        raise Corrupted(f"metadata record runs past the end of {where}")
