"""``Snapshot``: a consistent read view of a DB (``get``, ``[]``, ``in``, ``items/keys/values``, ``iter``)."""

from __future__ import annotations

from ._native import ffi, lib


class Snapshot:
    def __init__(self, db):
        self._db = db
        self._snap = lib.rocksdb_create_snapshot(db._handle())
        self._read = lib.rocksdb_readoptions_create()
        lib.rocksdb_readoptions_set_snapshot(self._read, self._snap)
        self._raddr = int(ffi.cast("uintptr_t", self._read))

    def _handle(self):
        if self._snap is None:
            raise ValueError("the snapshot was released")
        return self._snap

    def get(self, key, default=None):
        self._handle()
        return self._db.get(key, default, _read=self._raddr)

    def __getitem__(self, key):
        missing = object()
        value = self.get(key, missing)
        if value is missing:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        missing = object()
        return self.get(key, missing) is not missing

    def iter(self, **bounds):
        return self._db.iter(_snapshot=self, **bounds)

    def items(self, from_key=None, **kw):
        return self._db.items(from_key, _snapshot=self, **kw)

    def keys(self, from_key=None, **kw):
        return self._db.keys(from_key, _snapshot=self, **kw)

    def values(self, from_key=None, **kw):
        return self._db.values(from_key, _snapshot=self, **kw)

    def release(self) -> None:
        """Let RocksDB drop what only this view kept; iterators over it are closed first."""
        for child in list(self._db._children):
            if getattr(child, "_snapshot", None) is self:
                child.close()
        self._release()
        self._db._children.discard(self)

    def _release(self) -> None:
        if self._snap is not None:
            if not self._db.closed:
                lib.rocksdb_release_snapshot(self._db._db, self._snap)
            lib.rocksdb_readoptions_destroy(self._read)
            self._snap = None

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        if getattr(self, "_snap", None) is not None and not self._db.closed:
            self.release()
