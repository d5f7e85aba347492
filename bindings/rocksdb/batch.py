"""``WriteBatch``: puts and deletes applied atomically by ``DB.write``."""

from __future__ import annotations

from ._native import lib
from .iterator import key_bytes


class WriteBatch:
    def __init__(self):
        self._b = lib.rocksdb_writebatch_create()
        self.has_range_deletions = False  # offloaded scans cannot see them (scan.py)

    def _handle(self):
        if self._b is None:
            raise ValueError("the batch was destroyed")
        return self._b

    def put(self, key, value) -> None:
        key, value = key_bytes(key), key_bytes(value, "value")
        lib.rocksdb_writebatch_put(self._handle(), key, len(key), value, len(value))

    __setitem__ = put

    def delete(self, key) -> None:
        key = key_bytes(key)
        lib.rocksdb_writebatch_delete(self._handle(), key, len(key))

    __delitem__ = delete

    def delete_range(self, begin, end) -> None:
        """Delete every key in ``[begin, end)``."""
        begin, end = key_bytes(begin), key_bytes(end)
        lib.rocksdb_writebatch_delete_range(self._handle(), begin, len(begin), end, len(end))
        self.has_range_deletions = True

    def clear(self) -> None:
        lib.rocksdb_writebatch_clear(self._handle())
        self.has_range_deletions = False

    def __len__(self) -> int:
        return lib.rocksdb_writebatch_count(self._handle())

    def destroy(self) -> None:
        if self._b is not None:
            lib.rocksdb_writebatch_destroy(self._b)
            self._b = None

    def __del__(self):
        self.destroy()
