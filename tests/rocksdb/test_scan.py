"""Prefix scans pushed down to the sst_prefix CSD kernel equal the host iterator's answer."""

import errno
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from zcsdfs.rocksdb import DB, Options, WriteBatch
from zcsdfs.rocksdb.scan import KERNEL_PATH

# L0 compacts only when asked (compact_range), so the test decides which levels hold what
OPTIONS = Options(write_buffer_size=128 << 10, target_file_size_base=128 << 10, max_bytes_for_level_base=512 << 10,
                  level0_file_num_compaction_trigger=20)


def churn(db, rng, n, keys=5000):
    for i in range(n):
        k = b"k%05d" % rng.randrange(keys)
        r = rng.random()
        if r < 0.15:
            del db[k]
        elif r < 0.2:
            b = WriteBatch()
            b.put(k, b"batch%d" % i)
            b.delete(b"k%05d" % rng.randrange(keys))
            db.write(b)
        else:
            db[k] = b"v%d." % i * rng.randrange(1, 40)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_offloaded_scan_equals_the_iterator(vol, seed):
    rng = random.Random(seed)
    with DB("/db", volume=vol, options=OPTIONS) as db:
        churn(db, rng, 20000)
        db.flush()
        db.compact_range(bottommost=False)  # into the deeper levels
        churn(db, rng, 3000)  # L0 files over them
        db.flush()
        snap = db.snapshot()  # keeps overwritten versions in the tables
        churn(db, rng, 1500)  # and a memtable with overwrites and deletions
        assert int(db.property_value("rocksdb.num-entries-active-mem-table")) > 0
        levels = [int(db.property_value(f"rocksdb.num-files-at-level{n}")) for n in range(7)]
        assert levels[0] > 0 and sum(levels[1:]) > 0, levels
        for prefix in (b"k012", b"k0", b"k04999", b"k9", b"", b"k00"):
            expect = list(db.items(prefix=prefix))
            got = list(db.scan_prefix(prefix, offload=True))
            assert got == expect, (prefix, len(got), len(expect))
            assert list(db.scan_prefix(prefix)) == expect
            for field in ((0, b"v1"), (1, b"12"), (0, b"batch")):  # overlapping levels: with shadows
                selected = [(k, v) for k, v in expect if v[field[0]:field[0] + len(field[1])] == field[1]]
                assert list(db.scan_prefix(prefix, value_at=field, offload=True)) == selected, (prefix, field)
                assert list(db.scan_prefix(prefix, value_at=field)) == selected
        s = db.last_scan
        assert s.files > 0 and s.bytes_read <= s.table_bytes
        snap.release()


def test_only_matching_entries_cross_to_the_host(vol):
    with DB("/db", volume=vol, options=Options(write_buffer_size=1 << 20, target_file_size_base=1 << 20)) as db:
        for i in range(20000):
            db[b"%02d-%06d" % (i % 100, i)] = b"x" * 100  # prefix "07-" selects 1%
        db.flush()
        db.compact_range()
        got = list(db.scan_prefix(b"07-", offload=True))
        assert got == list(db.items(prefix=b"07-")) and len(got) == 200
        s = db.last_scan
        payload = sum(len(k) + len(v) for k, v in got)
        print(f"\n1% scan: tables {s.table_bytes} B, read next to the data {s.bytes_read} B, "
              f"returned {s.bytes_returned} B ({s.entries} entries, {payload} B of keys and values)")
        assert s.bytes_returned == payload + 16 * s.entries
        assert s.bytes_returned * 20 <= s.table_bytes


def test_a_selective_value_field_returns_only_the_selected_entries(vol):
    """A full compaction leaves tables with disjoint key ranges: the kernel returns the
    selected entries and nothing else, far fewer bytes than the tables hold."""
    with DB("/db", volume=vol, options=Options(write_buffer_size=1 << 20, target_file_size_base=1 << 20)) as db:
        for i in range(20000):
            db[b"%06d" % i] = b"%04d" % (i % 100) + b"x" * 96  # a field at 0: "0042" selects 1%
        db.flush()
        db.compact_range()
        assert len({f["level"] for f in db.live_files()}) == 1 and len(db.live_files()) > 1
        got = list(db.scan_prefix(b"", value_at=(0, b"0042"), offload=True))
        assert got == list(db.scan_prefix(b"", value_at=(0, b"0042"))) and len(got) == 200
        s = db.last_scan
        payload = sum(len(k) + len(v) for k, v in got)
        print(f"\n1% value field: tables {s.table_bytes} B, read next to the data {s.bytes_read} B, "
              f"returned {s.bytes_returned} B ({s.entries} entries, {payload} B of keys and values)")
        assert s.entries == 200 and s.bytes_returned == payload + 16 * s.entries
        assert s.bytes_returned * 20 <= s.table_bytes


def test_versions_kept_for_a_snapshot_are_seen_as_of_the_scan(vol):
    """Tables that keep older versions (a snapshot was held through compaction) hold a key
    twice: the kernel takes the newest at or below the scan's snapshot, so an older value
    that holds the field does not come back once a newer one does not."""
    with DB("/db", volume=vol, options=OPTIONS) as db:
        for i in range(2000):
            db[b"k%04d" % i] = b"old-%d" % i
        with db.snapshot():
            for i in range(0, 2000, 2):
                db[b"k%04d" % i] = b"new-%d" % i
            del db[b"k0001"]
            db.flush()
            db.compact_range()  # one level, each even key twice (new and old), k0001 as a tombstone too
            assert len({f["level"] for f in db.live_files()}) == 1
            for field in ((0, b"old"), (0, b"new"), (4, b"1")):
                expect = list(db.scan_prefix(b"k", value_at=field))
                assert list(db.scan_prefix(b"k", value_at=field, offload=True)) == expect, field
            assert len(expect) > 0
            assert list(db.scan_prefix(b"k", offload=True)) == list(db.items(prefix=b"k"))
        assert list(db.scan_prefix(b"k0", value_at=(0, b"old"), offload=True)) == \
            [(b"k%04d" % i, b"old-%d" % i) for i in range(3, 1000, 2)]


def test_value_at_is_checked():
    from zcsdfs.rocksdb.scan import check_value_at
    assert check_value_at((3, bytearray(b"ab"))) == (3, b"ab")
    for bad in ((0, b""), (0, b"123456789"), (-1, b"a"), ("0", b"a"), (0, "a")):
        with pytest.raises(ValueError):
            check_value_at(bad)


def test_compressed_tables_are_refused_not_misread(vol):
    with DB("/db", volume=vol, options=Options(compression="zstd")) as db:
        for i in range(3000):
            db[b"k%05d" % i] = b"y" * 100
        db.flush()
        with pytest.raises(OSError) as e:
            list(db.scan_prefix(b"k01", offload=True))
        assert e.value.errno == errno.EIO and "sst_prefix" in str(e.value)


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang with the BPF target is not installed")
def test_the_shipped_kernel_object_is_built_from_its_source(tmp_path):
    src = Path(KERNEL_PATH).with_suffix(".c")
    include = Path(__import__("zcsdfs.csd", fromlist=["x"]).__file__).parent / "include"
    out = tmp_path / "k.o"
    subprocess.run(["clang", "-O2", "-g0", "-mcpu=v3", "-ffreestanding", "-target", "bpf", "-I", str(include),
                    "-c", src.name, "-o", str(out)], cwd=src.parent, check=True)
    assert out.read_bytes() == Path(KERNEL_PATH).read_bytes()


def test_range_deletions_are_refused_not_missed(vol):
    with DB("/db", volume=vol) as db:
        for i in range(100):
            db[b"k%03d" % i] = b"v"
        b = WriteBatch()
        b.delete_range(b"k010", b"k020")
        db.write(b)
        with pytest.raises(OSError) as e:
            list(db.scan_prefix(b"k01", offload=True))
        assert e.value.errno == errno.EOPNOTSUPP
        db.flush()
    with DB("/db", volume=vol) as db:  # a new handle: the table's range-deletion block is seen
        assert list(db.scan_prefix(b"k01")) == []
        with pytest.raises(OSError) as e:
            list(db.scan_prefix(b"k01", offload=True))
        assert e.value.errno == errno.EIO


def test_malformed_kernel_output_is_an_error_not_a_crash():
    from zcsdfs.rocksdb.scan import parse
    good = struct.pack("<IIQ", 1, 2, 5 << 8 | 1) + b"k" + b"vv"
    assert list(parse(good)) == [(b"k", 5, 1, b"vv")]
    for bad in (good[:-1], good + b"\0" * 3, struct.pack("<IIQ", 1 << 30, 0, 0)):
        with pytest.raises(OSError) as e:
            list(parse(bad))
        assert e.value.errno == errno.EIO
