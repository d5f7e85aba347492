"""``Iterator``: RocksDB's iterator over a DB or a snapshot, within optional bounds."""

from __future__ import annotations

from ._native import fast as _fast
from ._native import ffi, lib
from .errors import RocksDBError


def key_bytes(value, what: str = "key") -> bytes:
    """Keys and values are bytes (bytearray and memoryview are copied)."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a {what} must be bytes, not {type(value).__name__}")


def successor(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no such key)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)


class Iterator:
    """Unpositioned until a seek. ``key()``/``value()`` are valid while ``valid()``.

    Its steps are single calls into fast.cc; a plain one (no bounds, snapshot or tier)
    borrows the DB's read options instead of building its own."""

    def __init__(self, db, lower, upper, fill_cache: bool, snapshot, memtable_only: bool = False):
        self._db = db
        self._read = None
        if lower is None and upper is None and fill_cache and snapshot is None and not memtable_only:
            read = db._raddr
        else:
            self._read = lib.rocksdb_readoptions_create()
            # RocksDB keeps pointers to the bounds: they live as long as this object.
            self._bound_buffers = []
            for value, setter in ((lower, lib.rocksdb_readoptions_set_iterate_lower_bound),
                                  (upper, lib.rocksdb_readoptions_set_iterate_upper_bound)):
                if value is not None:
                    value = key_bytes(value)
                    buf = ffi.new("char[]", value or b"\0")
                    self._bound_buffers.append(buf)
                    setter(self._read, buf, len(value))
            lib.rocksdb_readoptions_set_fill_cache(self._read, fill_cache)
            if memtable_only:
                lib.rocksdb_readoptions_set_read_tier(self._read, 3)  # kMemtableTier: no table is read
            if snapshot is not None:
                lib.rocksdb_readoptions_set_snapshot(self._read, snapshot._handle())
                self._snapshot = snapshot  # released only after this iterator
            read = int(ffi.cast("uintptr_t", self._read))
        self._it = _fast.iterator(db._addr, read)

    def _handle(self) -> int:
        if self._it is None:
            raise ValueError("the iterator is closed")
        return self._it

    def valid(self) -> bool:
        return self._it is not None and _fast.valid(self._it)

    def seek_to_first(self) -> None:
        _fast.seek_to_first(self._it or self._handle())

    def seek_to_last(self) -> None:
        _fast.seek_to_last(self._it or self._handle())

    def seek(self, key) -> None:
        """Position at the first key >= ``key``."""
        _fast.seek(self._it or self._handle(), key)

    def seek_for_prev(self, key) -> None:
        """Position at the last key <= ``key``."""
        _fast.seek_for_prev(self._it or self._handle(), key)

    def next(self) -> None:
        _fast.next(self._it or self._handle())

    def prev(self) -> None:
        _fast.prev(self._it or self._handle())

    def key(self) -> bytes:
        return _fast.key(self._it or self._handle())

    def value(self) -> bytes:
        return _fast.value(self._it or self._handle())

    def item(self) -> tuple[bytes, bytes]:
        """``(key(), value())`` in one call."""
        return _fast.item(self._it or self._handle())

    def check(self) -> None:
        """Raise the error that ended the iteration, if one did (valid() is False then)."""
        try:
            _fast.check(self._handle())
        except RocksDBError as exc:
            self._db._env.raise_with(exc)

    def close(self) -> None:
        self._release()
        self._db._children.discard(self)

    def _release(self) -> None:
        if self._it is not None:
            it, self._it = self._it, None
            _fast.iterator_free(it)
            if self._read is not None:
                lib.rocksdb_readoptions_destroy(self._read)

    def __enter__(self) -> "Iterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_it", None) is not None and not self._db.closed:
            self._release()
