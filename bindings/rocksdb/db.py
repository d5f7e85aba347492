"""``DB``: RocksDB on a zcsdfs volume, shaped after rocksdict's ``Rdict`` (bytes in, bytes out).

Every call into RocksDB releases the GIL for its duration (fast.cc for get, put and delete,
cffi for the rest): other Python threads run meanwhile, and RocksDB's threads can take the
GIL for the file system's callbacks (bridge.py) without waiting on the caller.
"""

from __future__ import annotations

import atexit
import os
import posixpath
import threading
import weakref

from ._native import fast as _fast
from ._native import ffi, lib
from .batch import WriteBatch
from .bridge import Bridge
from .errors import RocksDBError
from .iterator import Iterator, key_bytes, successor
from .options import Options
from .snapshot import Snapshot

_open_dbs: "weakref.WeakSet[DB]" = weakref.WeakSet()
_MISSING = object()
_fast.init(RocksDBError)


def _volume(volume):
    if volume is None:
        import zcsdfs
        return zcsdfs.default_volume()
    return volume


def _db_path(volume, path) -> str:
    text = os.fsdecode(os.fspath(path))
    if not text or "\0" in text:
        raise ValueError("a DB path is a non-empty path without NUL bytes")
    if not text.startswith("/"):
        text = posixpath.join(volume.getcwd(), text)
    return posixpath.normpath(text)


class _Env:
    """A bridge, the Env over it and options that use it: what one open (or destroy) needs."""

    def __init__(self, volume, options: Options):
        self.bridge = Bridge(volume, lifetime_hints=options.lifetime_hints)
        self.env = lib.zr_env_new(self.bridge.id)
        self.built = options.build()
        if lib.zr_options_set_env(self.built.opt, self.env) != 0:
            self.free()
            raise ImportError("this librocksdb's rocksdb_options_t is not the layout zcsdfs.rocksdb "
                              "was written for (RocksDB 7.x)")

    def check(self, err) -> None:
        """Raise what a call reported in ``err`` (and what a callback raised that was no OSError)."""
        failure, self.bridge.failure = self.bridge.failure, None
        if err[0] != ffi.NULL:
            message = ffi.string(err[0]).decode("utf-8", "replace")
            lib.rocksdb_free(err[0])
            err[0] = ffi.NULL
            raise RocksDBError(message) from failure
        if failure is not None:
            raise failure

    def raise_with(self, exc: BaseException):
        """Raise ``exc`` (from fast.cc) from what a callback raised that was no OSError, if any."""
        failure, self.bridge.failure = self.bridge.failure, None
        raise exc from failure

    def free(self) -> None:
        if self.env is not None:
            self.built.free()
            lib.zr_env_free(self.env)
            self.bridge.forget()
            self.env = None


class DB:
    """A RocksDB database at ``path`` inside a zcsdfs volume (the default volume if none).

    ``db[k] = v``, ``db[k]``, ``del db[k]``, ``k in db``, ``get``, ``put``, ``delete``,
    ``write(batch)``, ``iter()``, ``items()/keys()/values()``, ``snapshot()``, ``flush()``,
    ``compact_range()``, ``property_value()``, ``close()``; a context manager.

    Any number of threads may use one DB; ``close`` must not race with them (as with
    RocksDB itself, a call on a DB being closed is a use after free).
    """

    def __init__(self, path, *, volume=None, options: Options | None = None):
        self.volume = _volume(volume)
        self.path = _db_path(self.volume, path)
        self.options = options or Options()
        self._env = _Env(self.volume, self.options)
        lib.zr_set_file_cache(self.options.file_cache_size)
        err = ffi.new("char**")
        db = lib.rocksdb_open(self._env.built.opt, os.fsencode(self.path), err)
        try:
            self._env.check(err)
        except BaseException:
            self._env.free()
            raise
        self._db = db
        self._lock = threading.Lock()
        self._children: "weakref.WeakSet" = weakref.WeakSet()  # iterators and snapshots
        self._write = {}
        for sync in (False, True):
            for no_wal in (False, True):
                w = lib.rocksdb_writeoptions_create()
                lib.rocksdb_writeoptions_set_sync(w, sync)
                lib.rocksdb_writeoptions_disable_WAL(w, no_wal)
                self._write[sync, no_wal] = w
        self._write = _WriteOptions(self._write)
        self._read = lib.rocksdb_readoptions_create()
        # the addresses fast.cc takes (0 once closed: it raises "the DB is closed")
        self._addr = _address(db)
        self._waddr = _WriteOptions({k: _address(w) for k, w in self._write.items()})
        self._waddr0 = self._waddr[False, False]
        self._raddr = _address(self._read)
        self.last_scan = None  # a scan.ScanStats after scan_prefix(..., offload=True)
        self.range_deleted = False  # whether this handle wrote range deletions (scan.py)
        _open_dbs.add(self)

    # -- life ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._db is None

    def close(self) -> None:
        """Release iterators and snapshots, close RocksDB (flushing nothing more than it does)."""
        with self._lock:
            if self._db is None:
                return
            for child in list(self._children):
                child._release()
            db, self._db = self._db, None
            self._addr = 0
            lib.rocksdb_close(db)
            for w in self._write.values():
                lib.rocksdb_writeoptions_destroy(w)
            lib.rocksdb_readoptions_destroy(self._read)
            self._env.free()
        _open_dbs.discard(self)

    def __enter__(self) -> "DB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_db", None) is not None:
            if isinstance(threading.current_thread(), threading._DummyThread):
                # collected inside a callback on one of RocksDB's threads: closing waits for
                # those threads, so it must happen on another one
                threading.Thread(target=self.close, name="zcsdfs.rocksdb close").start()
            else:
                self.close()

    def __repr__(self) -> str:
        return f"<zcsdfs.rocksdb.DB {self.path!r} {'closed' if self.closed else 'open'}>"

    @staticmethod
    def destroy(path, *, volume=None, options: Options | None = None) -> None:
        """Delete the DB at ``path`` (RocksDB's DestroyDB): its files, then its directory."""
        volume = _volume(volume)
        env = _Env(volume, options or Options())
        try:
            err = ffi.new("char**")
            lib.rocksdb_destroy_db(env.built.opt, os.fsencode(_db_path(volume, path)), err)
            env.check(err)
        finally:
            env.free()

    def _handle(self):
        db = self._db
        if db is None:
            raise RocksDBError("Invalid argument: the DB is closed")
        return db

    def _check(self, err) -> None:
        self._env.check(err)

    # -- single keys (the hot paths: one call each into fast.cc, no cffi) -----------------------

    def put(self, key, value, *, sync: bool = False, disable_wal: bool = False) -> None:
        try:
            _fast.put(self._addr, self._waddr[sync, disable_wal] if sync or disable_wal else self._waddr0,
                      key, value)
        except RocksDBError as exc:
            self._env.raise_with(exc)

    def delete(self, key, *, sync: bool = False, disable_wal: bool = False) -> None:
        try:
            _fast.delete(self._addr, self._waddr[sync, disable_wal] if sync or disable_wal else self._waddr0, key)
        except RocksDBError as exc:
            self._env.raise_with(exc)

    def get(self, key, default=None, *, _read=None):
        try:
            return _fast.get(self._addr, _read or self._raddr, key, default)
        except RocksDBError as exc:
            self._env.raise_with(exc)

    def __getitem__(self, key):
        try:
            value = _fast.get(self._addr, self._raddr, key, _MISSING)
        except RocksDBError as exc:
            self._env.raise_with(exc)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value) -> None:
        try:
            _fast.put(self._addr, self._waddr0, key, value)
        except RocksDBError as exc:
            self._env.raise_with(exc)

    def __delitem__(self, key) -> None:
        """Delete ``key`` (RocksDB deletes are blind: no KeyError for a missing key, as rocksdict)."""
        try:
            _fast.delete(self._addr, self._waddr0, key)
        except RocksDBError as exc:
            self._env.raise_with(exc)

    def __contains__(self, key) -> bool:
        try:
            return _fast.get(self._addr, self._raddr, key, _MISSING) is not _MISSING
        except RocksDBError as exc:
            self._env.raise_with(exc)

    def write(self, batch: WriteBatch, *, sync: bool = False, disable_wal: bool = False) -> None:
        """Apply ``batch`` atomically."""
        err = ffi.new("char**")
        lib.rocksdb_write(self._handle(), self._write[sync, disable_wal], batch._handle(), err)
        self._check(err)
        self.range_deleted |= batch.has_range_deletions

    # -- iteration ----------------------------------------------------------------------------

    def iter(self, *, prefix=None, lower=None, upper=None, fill_cache: bool = True, _snapshot=None,
             _memtable_only: bool = False) -> Iterator:
        """A raw iterator (``seek``, ``seek_to_first``, ``seek_to_last``, ``seek_for_prev``,
        ``next``, ``prev``, ``valid``, ``key``, ``value``), bounded to keys starting with
        ``prefix`` and/or to ``lower <= key < upper``; unpositioned until a seek."""
        if prefix is not None:
            prefix = key_bytes(prefix, "prefix")
            lower = prefix if lower is None else max(key_bytes(lower), prefix)
            end = successor(prefix)
            upper = end if upper is None else (min(key_bytes(upper), end) if end else upper)
        it = Iterator(self, lower, upper, fill_cache, _snapshot, _memtable_only)
        self._children.add(it)
        return it

    def items(self, from_key=None, *, backwards: bool = False, prefix=None, lower=None, upper=None,
              _snapshot=None):
        """``(key, value)`` pairs in key order from ``from_key`` (or the first/last key),
        forwards or backwards, within the bounds."""
        return self._walk(Iterator.item, from_key, backwards, prefix, lower, upper, _snapshot)

    def keys(self, from_key=None, *, backwards: bool = False, prefix=None, lower=None, upper=None,
             _snapshot=None):
        return self._walk(Iterator.key, from_key, backwards, prefix, lower, upper, _snapshot)

    def values(self, from_key=None, *, backwards: bool = False, prefix=None, lower=None, upper=None,
               _snapshot=None):
        return self._walk(Iterator.value, from_key, backwards, prefix, lower, upper, _snapshot)

    def __iter__(self):
        return self.keys()

    def _walk(self, pick, from_key, backwards, prefix, lower, upper, snapshot):
        it = self.iter(prefix=prefix, lower=lower, upper=upper, _snapshot=snapshot)

        def walk():
            try:
                if backwards:
                    it.seek_to_last() if from_key is None else it.seek_for_prev(from_key)
                else:
                    it.seek_to_first() if from_key is None else it.seek(from_key)
                step = it.prev if backwards else it.next
                while it.valid():
                    yield pick(it)
                    step()
                it.check()
            finally:
                it.close()
        return walk()

    def scan_prefix(self, prefix, *, offload: bool = False, value_at=None):
        """``(key, value)`` for every key starting with ``prefix``, in key order, as
        ``items(prefix=prefix)`` gives them; with ``value_at=(offset, field)`` (a field of
        1 to 8 bytes) only those whose value holds ``field`` at ``offset``.

        ``offload=True`` runs the CSD kernel ``sst_prefix`` next to each live SST file, so
        only the selected entries reach the host, and merges them with the memtables by
        sequence number (``scan.py``); the bytes read on the device side and returned are
        in ``last_scan`` afterwards."""
        from .scan import check_value_at, offloaded_scan, value_holds
        prefix = key_bytes(prefix, "prefix")
        value_at = check_value_at(value_at)
        if offload:
            return iter(offloaded_scan(self, prefix, value_at))
        items = self.items(prefix=prefix)
        if value_at is None:
            return items
        return ((k, v) for k, v in items if value_holds(v, value_at))

    # -- snapshots, maintenance ---------------------------------------------------------------

    def snapshot(self) -> "Snapshot":
        """A consistent read view: reads through it see the DB as it is now."""
        snap = Snapshot(self)
        self._children.add(snap)
        return snap

    def flush(self, wait: bool = True) -> None:
        """Write the memtable to an SST file."""
        opts = lib.rocksdb_flushoptions_create()
        try:
            lib.rocksdb_flushoptions_set_wait(opts, wait)
            err = ffi.new("char**")
            lib.rocksdb_flush(self._handle(), opts, err)
            self._check(err)
        finally:
            lib.rocksdb_flushoptions_destroy(opts)

    def compact_range(self, begin=None, end=None, *, bottommost: bool = True) -> None:
        """Compact keys in ``[begin, end]`` (all when None); ``bottommost`` rewrites the last
        level too (RocksDB's kForce), so every overwritten or deleted entry is dropped."""
        opts = lib.rocksdb_compactoptions_create()
        try:
            lib.rocksdb_compactoptions_set_bottommost_level_compaction(opts, 2 if bottommost else 1)
            b = ffi.NULL if begin is None else key_bytes(begin)
            e = ffi.NULL if end is None else key_bytes(end)
            lib.rocksdb_compact_range_opt(self._handle(), opts, b, 0 if begin is None else len(b),
                                          e, 0 if end is None else len(e))
            self._env.check(ffi.new("char**"))  # a callback's non-OSError, if any
        finally:
            lib.rocksdb_compactoptions_destroy(opts)

    def property_value(self, name: str) -> str | None:
        """A DB property (``rocksdb.stats``, ``rocksdb.estimate-num-keys``, ...), None if unknown."""
        p = lib.rocksdb_property_value(self._handle(), name.encode())
        if p == ffi.NULL:
            return None
        try:
            return ffi.string(p).decode("utf-8", "replace")
        finally:
            lib.rocksdb_free(p)

    def live_files(self) -> list[dict]:
        """The live SST files: name (in the DB directory), level, size, smallest and largest key."""
        files = lib.rocksdb_livefiles(self._handle())
        try:
            size = ffi.new("size_t*")
            out = []
            for i in range(lib.rocksdb_livefiles_count(files)):
                small = lib.rocksdb_livefiles_smallestkey(files, i, size)
                small = ffi.unpack(small, size[0])
                large = lib.rocksdb_livefiles_largestkey(files, i, size)
                large = ffi.unpack(large, size[0])
                out.append({"name": ffi.string(lib.rocksdb_livefiles_name(files, i)).decode(),
                            "level": lib.rocksdb_livefiles_level(files, i),
                            "size": lib.rocksdb_livefiles_size(files, i),
                            "smallest": small, "largest": large})
            return out
        finally:
            lib.rocksdb_livefiles_destroy(files)

    @property
    def bytes_written(self) -> int:
        """Bytes RocksDB appended to its files since open (WAL, SSTs, MANIFEST, ...)."""
        return self._env.bridge.bytes_written

    @property
    def bytes_read(self) -> int:
        """Bytes RocksDB read from its files since open (through the vfs, to the host)."""
        return self._env.bridge.bytes_read


def _address(cdata) -> int:
    return int(ffi.cast("uintptr_t", cdata))


class _WriteOptions(dict):
    """The four write options, looked up by any truthy or falsy (sync, disable_wal)."""

    def __missing__(self, key):
        return self[bool(key[0]), bool(key[1])]


@atexit.register
def _close_all() -> None:
    """Close DBs before the interpreter (and the volumes, whose atexit runs after) goes away:
    RocksDB's threads must not call into a finalising interpreter."""
    for db in list(_open_dbs):
        db.close()



