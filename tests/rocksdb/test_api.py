"""The Python API: Rdict's shape on bytes, errors as exceptions with RocksDB's message."""

import errno
import threading

import pytest

from zcsdfs.rocksdb import DB, Options, RocksDBError, WriteBatch

from .conftest import SMALL


def test_put_get_delete_contains(db):
    db[b"a"] = b"1"
    db.put(b"b", b"2", sync=True)
    db.put(b"c", b"3", disable_wal=True)
    assert (db[b"a"], db.get(b"b"), db.get(b"c")) == (b"1", b"2", b"3")
    assert db.get(b"zz") is None and db.get(b"zz", b"d") == b"d"
    assert b"a" in db and b"zz" not in db
    del db[b"a"]
    db.delete(b"b", sync=True)
    assert b"a" not in db and b"b" not in db
    with pytest.raises(KeyError):
        db[b"a"]
    db[b""] = b""  # the empty key and value are keys and values like any other
    assert db[b""] == b"" and b"" in db


def test_keys_are_bytes(db):
    with pytest.raises(TypeError):
        db["a"] = b"1"
    with pytest.raises(TypeError):
        db[b"a"] = "1"
    db[bytearray(b"k")] = memoryview(b"v")
    assert db[b"k"] == b"v"


def test_write_batch_is_atomic_and_ordered(db):
    db[b"gone"] = b"x"
    batch = WriteBatch()
    batch.put(b"a", b"1")
    batch[b"b"] = b"2"
    batch.delete(b"gone")
    batch.put(b"a", b"3")  # later entries of a batch win
    assert len(batch) == 4
    assert b"a" not in db  # nothing applied before write
    db.write(batch, sync=True)
    assert dict(db.items()) == {b"a": b"3", b"b": b"2"}
    batch.clear()
    assert len(batch) == 0
    for k in (b"r1", b"r2", b"r3", b"s"):
        batch.put(k, b"")
    batch.delete_range(b"r", b"r3")
    db.write(batch)
    assert list(db.keys()) == [b"a", b"b", b"r3", b"s"]


def _fill(db, n=50):
    for i in range(n):
        db[b"k%03d" % i] = b"v%d" % i


def test_iteration_forwards_backwards_and_from_a_key(db):
    _fill(db)
    keys = [b"k%03d" % i for i in range(50)]
    assert list(db.keys()) == keys == list(db)
    assert list(db.keys(backwards=True)) == keys[::-1]
    assert list(db.keys(b"k010"))[:2] == [b"k010", b"k011"]
    assert list(db.keys(b"k0105"))[:1] == [b"k011"]  # from a missing key: the next one
    assert list(db.keys(b"k0105", backwards=True))[:2] == [b"k010", b"k009"]
    assert list(db.values(b"k048")) == [b"v48", b"v49"]
    assert list(db.items(b"k001", backwards=True)) == [(b"k001", b"v1"), (b"k000", b"v0")]


def test_bounds_and_prefix(db):
    _fill(db)
    db[b"k\xff"] = b"last"
    assert list(db.keys(prefix=b"k01")) == [b"k%03d" % i for i in range(10, 20)]
    assert list(db.keys(prefix=b"k01", backwards=True))[0] == b"k019"
    assert list(db.keys(lower=b"k045", upper=b"k047")) == [b"k045", b"k046"]
    assert list(db.keys(prefix=b"k\xff")) == [b"k\xff"]  # a prefix ending in 0xff
    assert list(db.keys(prefix=b"nothing")) == []


def test_raw_iterator(db):
    _fill(db, 10)
    with db.iter() as it:
        assert not it.valid()
        it.seek(b"k0045")
        assert it.valid() and it.key() == b"k005" and it.value() == b"v5"
        it.next()
        assert it.key() == b"k006"
        it.prev()
        it.prev()
        assert it.key() == b"k004"
        it.seek_for_prev(b"k0045")
        assert it.key() == b"k004"
        it.seek_to_last()
        assert it.key() == b"k009"
        it.next()
        assert not it.valid()
        it.check()
        it.seek_to_first()
        assert it.key() == b"k000" and it.item() == (b"k000", b"v0")


def test_iterator_sees_the_db_as_of_its_creation(db):
    _fill(db, 3)
    with db.iter() as it:
        db[b"k001"] = b"new"
        del db[b"k002"]
        it.seek_to_first()
        seen = []
        while it.valid():
            seen.append((it.key(), it.value()))
            it.next()
    assert seen == [(b"k000", b"v0"), (b"k001", b"v1"), (b"k002", b"v2")]


def test_snapshot(db):
    _fill(db, 3)
    with db.snapshot() as snap:
        db[b"k001"] = b"new"
        del db[b"k000"]
        db[b"k999"] = b"later"
        db.flush()
        db.compact_range()  # the snapshot keeps what it sees through compaction
        assert snap[b"k001"] == b"v1" and snap.get(b"k000") == b"v0" and b"k999" not in snap
        assert list(snap.keys()) == [b"k000", b"k001", b"k002"]
        assert list(snap.items(prefix=b"k00", backwards=True))[0] == (b"k002", b"v2")
        with pytest.raises(KeyError):
            snap[b"k999"]
    with pytest.raises(ValueError):
        snap.get(b"k000")
    assert db[b"k001"] == b"new" and list(db.keys()) == [b"k001", b"k002", b"k999"]


def test_flush_compact_and_properties(vol):
    with DB("/db", volume=vol, options=Options(**SMALL)) as db:
        for i in range(3000):
            db[b"key%06d" % i] = b"x" * 100
        db.flush()
        assert int(db.property_value("rocksdb.num-files-at-level0")) + sum(
            int(db.property_value(f"rocksdb.num-files-at-level{n}")) for n in range(1, 7)) > 0
        db.compact_range()
        assert int(db.property_value("rocksdb.num-files-at-level0")) == 0
        assert "Compaction Stats" in db.property_value("rocksdb.stats")
        assert db.property_value("rocksdb.no-such-property") is None
        live = db.live_files()
        assert live and all(f["level"] > 0 and f["name"].endswith(".sst") for f in live)
        assert min(f["smallest"] for f in live) == b"key000000"
        assert max(f["largest"] for f in live) == b"key002999"
        names = vol.listdir("/db")
        for f in live:
            assert f["name"].lstrip("/") in names
            assert vol.stat("/db" + f["name"]).st_size == f["size"]
        assert db[b"key001234"] == b"x" * 100


def test_files_are_visible_through_the_os_api(vol):
    with DB("/db", volume=vol, options=Options(**SMALL)) as db:
        for i in range(2000):
            db[b"%06d" % i] = b"y" * 100
        db.flush()
    names = vol.listdir("/db")
    assert any(n.endswith(".sst") for n in names)
    assert any(n.startswith("MANIFEST-") for n in names)
    assert any(n.endswith(".log") for n in names)
    assert {"CURRENT", "LOCK", "IDENTITY"} <= set(names)
    with vol.io.open("/db/CURRENT", "rb") as f:
        manifest = f.read().decode().strip()
    assert manifest in names


def test_reopen_keeps_everything(vol):
    with DB("/db", volume=vol) as db:
        db[b"flushed"] = b"1"
        db.flush()
        db[b"in the wal"] = b"2"
    with DB("/db", volume=vol) as db:
        assert db[b"flushed"] == b"1" and db[b"in the wal"] == b"2"


def test_relative_path_is_from_the_volumes_cwd(vol):
    vol.mkdir("/home")
    vol.chdir("/home")
    with DB("rel", volume=vol) as db:
        db[b"a"] = b"b"
    assert "CURRENT" in vol.listdir("/home/rel")


def test_second_open_in_the_same_process_fails_with_rocksdbs_message(db, vol):
    with pytest.raises(RocksDBError) as e:
        DB("/db", volume=vol)
    assert "lock hold by current process" in str(e.value) and e.value.errno == errno.EIO


class _FailingReads:
    """A vfs whose reads fail with ``error``; everything else is the real one's."""

    def __init__(self, vfs, error):
        self._vfs, self._error = vfs, error

    def read(self, *args):
        raise self._error

    def __getattr__(self, name):
        return getattr(self._vfs, name)


@pytest.mark.parametrize("error", [OSError(errno.EIO, "injected"), RuntimeError("a bug in a callback")])
def test_a_failed_read_reaches_get_and_iterators_as_rocksdbs_status(vol, monkeypatch, error):
    """Reads of a table go through the file system's callbacks; a failure there is RocksDB's
    IO error in the caller's get, [], in, and iterator, with a non-OSError as its cause."""
    opts = Options(block_cache_size=None, file_cache_size=0, **SMALL)
    with DB("/db", volume=vol, options=opts) as db:
        db[b"k"] = b"v"
        db.flush()
        bridge = db._env.bridge
        monkeypatch.setattr(bridge, "vfs", _FailingReads(bridge.vfs, error))
        calls = [lambda: db.get(b"k"), lambda: db[b"k"], lambda: b"k" in db, lambda: list(db.items())]
        for call in calls:
            with pytest.raises(RocksDBError) as e:
                call()
            assert str(e.value).startswith("IO error") and e.value.errno == errno.EIO
            assert e.value.__cause__ is (None if isinstance(error, OSError) else error)
        monkeypatch.undo()
        assert db[b"k"] == b"v" and list(db.items()) == [(b"k", b"v")]


def test_errors_carry_rocksdbs_status(vol):
    with DB("/db", volume=vol):
        pass
    with pytest.raises(RocksDBError) as e:
        DB("/db", volume=vol, options=Options(error_if_exists=True))
    assert str(e.value).startswith("Invalid argument") and "exists" in str(e.value)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(RocksDBError) as e:
        DB("/missing", volume=vol, options=Options(create_if_missing=False))
    assert "does not exist" in str(e.value)
    with pytest.raises(ValueError):
        Options(compression="gzip")


def test_closed_db_refuses_calls(vol):
    db = DB("/db", volume=vol)
    it = db.iter()
    snap = db.snapshot()
    db.close()
    db.close()  # twice is fine
    assert db.closed
    for call in (lambda: db.__setitem__(b"a", b"b"), lambda: db[b"a"], lambda: db.get(b"a"),
                 lambda: b"a" in db, lambda: db.delete(b"a"), lambda: db.put(b"a", b"b", sync=True),
                 lambda: db.iter()):
        with pytest.raises(RocksDBError, match="the DB is closed"):
            call()
    with pytest.raises(ValueError):
        it.seek_to_first()
    with pytest.raises(ValueError):
        snap.get(b"a")
    with DB("/db", volume=vol):  # the lock went with close
        pass


def test_destroy(vol):
    with DB("/db", volume=vol) as db:
        db[b"a"] = b"b"
        db.flush()
    DB.destroy("/db", volume=vol)
    assert not vol.path.exists("/db/CURRENT")
    with DB("/db", volume=vol) as db:
        assert b"a" not in db


@pytest.mark.parametrize("compression", ["none", "snappy", "lz4", "zstd"])
def test_options(vol, compression):
    opts = Options(compression=compression, block_size=1024, block_cache_size=1 << 20,
                   bloom_bits_per_key=10, prefix_length=3, **SMALL)
    with DB("/db", volume=vol, options=opts) as db:
        for i in range(2000):
            db[b"p%02d-%05d" % (i % 10, i)] = b"z" * 64
        db.flush()
        db.compact_range()
        assert db[b"p03-00013"] == b"z" * 64 and b"p03-00014" not in db
        assert len(list(db.keys(prefix=b"p07"))) == 200
        options_file = [n for n in vol.listdir("/db") if n.startswith("OPTIONS-")][-1]
        with vol.io.open("/db/" + options_file) as f:
            text = f.read()
    expect = {"none": "kNoCompression", "snappy": "kSnappyCompression", "lz4": "kLZ4Compression",
              "zstd": "kZSTD"}[compression]
    assert f"compression={expect}" in text
    assert "block_size=1024" in text and "bloomfilter" in text and "rocksdb.FixedPrefix.3" in text


def test_no_block_cache(vol):
    with DB("/db", volume=vol, options=Options(block_cache_size=None, **SMALL)) as db:
        for i in range(500):
            db[b"%d" % i] = b"v"
        db.flush()
        assert db[b"42"] == b"v"


def test_threads_share_a_db_while_rocksdb_flushes_and_compacts(vol):
    """Python threads writing and reading while RocksDB's own threads call back into Python."""
    opts = Options(**SMALL)
    with DB("/db", volume=vol, options=opts) as db:
        def work(t):
            for i in range(1500):
                db[b"t%d-%05d" % (t, i)] = b"w" * 80
                if i % 7 == 0:
                    assert db[b"t%d-%05d" % (t, i // 2)] == b"w" * 80
            assert len(list(db.keys(prefix=b"t%d-" % t))) == 1500
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(list(db.keys())) == 6000
        db.compact_range()
        assert int(db.property_value("rocksdb.estimate-num-keys")) > 0
    with DB("/db", volume=vol, options=opts) as db:
        assert len(list(db.keys())) == 6000


def test_default_volume(tmp_path, monkeypatch):
    import zcsdfs
    monkeypatch.setenv("ZCSDFS_DEVICE", str(tmp_path / "default.zns"))
    zcsdfs.unmount()
    try:
        with DB("/db") as db:
            db[b"a"] = b"b"
            assert db.volume is zcsdfs.default_volume()
        assert "CURRENT" in zcsdfs.listdir("/db")
    finally:
        zcsdfs.unmount()
