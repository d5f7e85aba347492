"""``Iterator``: RocksDB's iterator over a DB or a snapshot, within optional bounds."""

from __future__ import annotations

from ._native import ffi, lib


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
    """Unpositioned until a seek. ``key()``/``value()`` are valid while ``valid()``."""

    def __init__(self, db, lower, upper, fill_cache: bool, snapshot, memtable_only: bool = False):
        self._db = db
        self._read = lib.rocksdb_readoptions_create()
        # RocksDB keeps pointers to the bounds: they live as long as this object.
        self._bounds = (None if lower is None else key_bytes(lower),
                        None if upper is None else key_bytes(upper))
        self._bound_buffers = []
        for value, setter in ((self._bounds[0], lib.rocksdb_readoptions_set_iterate_lower_bound),
                              (self._bounds[1], lib.rocksdb_readoptions_set_iterate_upper_bound)):
            if value is not None:
                buf = ffi.new("char[]", value or b"\0")
                self._bound_buffers.append(buf)
                setter(self._read, buf, len(value))
        lib.rocksdb_readoptions_set_fill_cache(self._read, fill_cache)
        if memtable_only:
            lib.rocksdb_readoptions_set_read_tier(self._read, 3)  # kMemtableTier: no table is read
        if snapshot is not None:
            lib.rocksdb_readoptions_set_snapshot(self._read, snapshot._handle())
            self._snapshot = snapshot  # released only after this iterator
        self._it = lib.rocksdb_create_iterator(db._handle(), self._read)
        self._size = ffi.new("size_t*")

    def _handle(self):
        if self._it is None:
            raise ValueError("the iterator is closed")
        return self._it

    def valid(self) -> bool:
        return self._it is not None and bool(lib.rocksdb_iter_valid(self._it))

    def seek_to_first(self) -> None:
        lib.rocksdb_iter_seek_to_first(self._handle())

    def seek_to_last(self) -> None:
        lib.rocksdb_iter_seek_to_last(self._handle())

    def seek(self, key) -> None:
        """Position at the first key >= ``key``."""
        key = key_bytes(key)
        lib.rocksdb_iter_seek(self._handle(), key, len(key))

    def seek_for_prev(self, key) -> None:
        """Position at the last key <= ``key``."""
        key = key_bytes(key)
        lib.rocksdb_iter_seek_for_prev(self._handle(), key, len(key))

    def next(self) -> None:
        lib.rocksdb_iter_next(self._handle())

    def prev(self) -> None:
        lib.rocksdb_iter_prev(self._handle())

    def key(self) -> bytes:
        p = lib.rocksdb_iter_key(self._handle(), self._size)
        return ffi.unpack(p, self._size[0])

    def value(self) -> bytes:
        p = lib.rocksdb_iter_value(self._handle(), self._size)
        return ffi.unpack(p, self._size[0])

    def check(self) -> None:
        """Raise the error that ended the iteration, if one did (valid() is False then)."""
        err = ffi.new("char**")
        lib.rocksdb_iter_get_error(self._handle(), err)
        self._db._check(err)

    def close(self) -> None:
        self._release()
        self._db._children.discard(self)

    def _release(self) -> None:
        if self._it is not None:
            lib.rocksdb_iter_destroy(self._it)
            lib.rocksdb_readoptions_destroy(self._read)
            self._it = None

    def __enter__(self) -> "Iterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_it", None) is not None and not self._db.closed:
            self._release()
