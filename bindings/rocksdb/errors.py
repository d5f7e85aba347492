"""RocksDB's failures as Python exceptions: ``RocksDBError`` is an ``OSError`` whose
message is RocksDB's status text and whose errno follows the status code."""

from __future__ import annotations

import errno

# Status code prefixes (rocksdb::Status::ToString) and the errno each maps to.
_CODES = (
    ("NotFound", errno.ENOENT), ("Corruption", errno.EUCLEAN), ("Not implemented", errno.EOPNOTSUPP),
    ("Invalid argument", errno.EINVAL), ("IO error", errno.EIO), ("Merge in progress", errno.EBUSY),
    ("Result incomplete", errno.EAGAIN), ("Shutdown in progress", errno.ESHUTDOWN),
    ("Operation timed out", errno.ETIMEDOUT), ("Operation aborted", errno.ECANCELED),
    ("Resource busy", errno.EBUSY), ("Operation expired", errno.ETIME),
    ("Operation failed. Try again.", errno.EAGAIN), ("Compaction too large", errno.EFBIG),
)


class RocksDBError(OSError):
    """A failed RocksDB call; ``str()`` is RocksDB's status message."""

    def __init__(self, message: str, path: str | None = None):
        code = next((e for prefix, e in _CODES if message.startswith(prefix)), errno.EIO)
        if "No space left" in message or message.startswith("IO error: No space"):
            code = errno.ENOSPC
        super().__init__(code, message, path) if path else super().__init__(code, message)
        self.message = message

    def __str__(self) -> str:
        return self.message
