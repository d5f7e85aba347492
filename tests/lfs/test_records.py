"""The record codec: every record kind's bytes, as the code before the table-driven codec wrote them.

GOLDEN is what that code encoded for SAMPLES (captured once by running it):
existing images must keep opening, so the bytes may never change. The
outcome of decoding every prefix of those bytes (records, then which error)
is pinned the same way, by a digest, so a torn frame is reported as before.
"""

from __future__ import annotations

import hashlib

import pytest

from zcsdfs.lfs import records as r
from zcsdfs.lfs.errors import Corrupted

SAMPLES = [
    r.Inode(2, 0o100644, 1000, 1001, 1, 12345, -5, 1_700_000_000_123_456_789, 1_700_000_001_000_000_000),
    r.Inode(3, 0o120777, 0, 0, 1, 7, 1, 2, 3, "target\udcff/é"),
    r.Inode(4, 0o020644, 5, 6, 2, 0, 7, 8, 9, "", (8 << 8) | 1),
    r.Dentry(1, "name-é\udc80", 2),
    r.Undentry(1, "gone"),
    r.Free(99),
    r.Xattr(2, "user.k", b"\x00\xffvalue"),
    r.Unxattr(2, "user.k"),
    r.Truncate(2, 17),
    r.Punch(2, 3, 4),
    r.Data(2, 5, 6),
    r.Map(2, 7, 2, 4096, 0xDEADBEEF, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
    r.Map(5, 0, 0, 77),
    r.ZoneRecord(5, 2, 1, 64, 10, 1234, 1),
    r.Counters(1 << 40, 17),
    r.Usage(1, 2, 3),
    r.Kept(2, 9, 1),
    r.Snapshot("nightly", -42),
    r.Chunk(3, 8192, 4, 0xCAFEBABE),
]
GOLDEN = bytes.fromhex(
    "010200000000000000a4810000e8030000e9030000010000003930000000000000fbffffffffffffff15cd853dfe9c97"
    "1700cac471fe9c97170000010300000000000000ffa10000000000000000000001000000070000000000000001000000"
    "00000000020000000000000003000000000000000a00746172676574ff2fc3a9100400000000000000a4210000050000"
    "000600000002000000000000000000000007000000000000000800000000000000090000000000000001080000000000"
    "0000000201000000000000000200000000000000086e616d652dc3a98003010000000000000004676f6e650463000000"
    "000000000502000000000000000607000000757365722e6b00ff76616c756506020000000000000006757365722e6b07"
    "020000000000000011000000000000001102000000000000000300000000000000040000000802000000000000000500"
    "000000000000060000000902000000000000000700000000000000020000000010000000000000efbeadde0102030405"
    "0607080905000000000000000000000000000000000000004d000000000000000000000013050000000201400000000a"
    "000000d204000000000000010b000000000001000011000000000000000c010000000000000002000000000000000300"
    "0000000000000d02000000000000000900000000000000010000000ed6ffffffffffffff076e696768746c7912030000"
    "0000000000002000000000000004000000bebafeca")
# Zone records of versions 1 and 2 (types ZONE and ZONE_V2), which only old images hold.
LEGACY_ZONES = bytes.fromhex("0a050000000302400000000a000000" "0f050000000302400000000a000000d204000000000000")
PREFIX_OUTCOMES = "9928f3b0a784a19356bcf4d8eccc18cd6de4873651412d7399660f73f328782b"
# Kinds added after the table-driven codec, with the bytes the elif codec of the branch that
# added them wrote (format 3's zone-table chunk: type 20, then group, lba, blocks, crc).
LATER = [r.ZoneChunk(3, 8192, 4, 0xCAFEBABE)]
LATER_GOLDEN = bytes.fromhex("14" "0300000000000000" "0020000000000000" "04000000" "bebafeca")


def test_every_record_kind_encodes_as_before():
    assert b"".join(r.encode(rec) for rec in SAMPLES) == GOLDEN


def test_every_record_kind_round_trips():
    assert list(r.decode(GOLDEN, "golden")) == SAMPLES


def test_later_kinds_encode_as_their_format_says():
    assert b"".join(r.encode(rec) for rec in LATER) == LATER_GOLDEN
    assert list(r.decode(LATER_GOLDEN, "golden")) == LATER


def test_old_zone_records_decode():
    assert list(r.decode(LEGACY_ZONES, "old")) == [r.ZoneRecord(5, 3, 2, 64, 10, 0, 0),
                                                  r.ZoneRecord(5, 3, 2, 64, 10, 1234, 0)]


def outcomes(buf: bytes) -> str:
    """For every prefix of buf: the records it decodes to, then the error, one line each."""
    lines = []
    for n in range(len(buf) + 1):
        got = []
        try:
            for rec in r.decode(buf[:n], "frame"):
                got.append(rec)
            lines.append(repr(got))
        except Corrupted as e:
            lines.append(f"{got!r} {e}")
    return "\n".join(lines)


def test_cut_frames_fail_as_before():
    assert hashlib.sha256(outcomes(GOLDEN + LEGACY_ZONES).encode()).hexdigest() == PREFIX_OUTCOMES


@pytest.mark.parametrize("kind", [0, 21, 255])
def test_unknown_kind_is_corrupted(kind):
    with pytest.raises(Corrupted, match=f"unknown metadata record type {kind} at byte 9 of f$"):
        list(r.decode(r.encode(r.Free(1)) + bytes((kind,)), "f"))


def test_map_needs_a_checksum_per_block():
    with pytest.raises(ValueError):
        r.encode(r.Map(1, 0, 2, 10, 0, b"\0" * 4))


def test_not_a_record():
    with pytest.raises(TypeError):
        r.encode(object())


def test_every_kind_is_pinned():
    """A new record type needs a sample here (and old images' types stay readable)."""
    written = {r.encode(rec)[0] for rec in SAMPLES + LATER}
    assert written | {r.ZONE, r.ZONE_V2} == set(r.KINDS)
    assert {kind.code for kind in r.KINDS.values() if kind.legacy} == {r.ZONE, r.ZONE_V2}


def test_a_row_that_does_not_fit_its_layout_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        r.Kind(99, r.Free, "QQ", ("ino",))
    with pytest.raises(ValueError, match="must come last"):
        r.Kind(99, r.ZoneRecord, "IBBIB", ("zone", "state", "stream", "written", "damaged"))
