"""A block cache for file data, filled only when a program's advice asks for it.

Reads go straight to the log unless ``posix_fadvise`` said otherwise:
WILLNEED reads a range in ahead of time, SEQUENTIAL reads ahead of each
read (a window that doubles up to 2 MiB, like Linux's readahead), DONTNEED
drops cached blocks. Any change to a file drops all of its cached blocks,
so the cache can never serve stale bytes. Capacity is bounded; the blocks
filled first are evicted first (readahead data is read once, in order, so
first-in-first-out is what LRU would pick anyway).
"""

from __future__ import annotations

import threading
from collections import deque

DEFAULT_CAPACITY = 64 << 20


class BlockCache:
    def __init__(self, block_size: int, capacity: int = DEFAULT_CAPACITY):
        self.block_size = block_size
        self.capacity_blocks = max(1, capacity // block_size)
        self._files: dict[int, dict[int, bytes]] = {}
        self._order: deque[tuple[int, int]] = deque()
        self._count = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.filled = 0

    def caches(self, ino: int) -> bool:
        return ino in self._files

    def get(self, ino: int, first: int, count: int) -> bytes | None:
        """Blocks ``first .. first+count-1`` of ``ino`` joined, if every one is cached, else None."""
        with self._lock:
            blocks = self._files.get(ino)
            if blocks is not None:
                try:
                    data = b"".join([blocks[b] for b in range(first, first + count)])
                except KeyError:
                    pass
                else:
                    self.hits += 1
                    return data
            self.misses += 1
            return None

    def missing(self, ino: int, first: int, count: int) -> list[int]:
        with self._lock:
            blocks = self._files.get(ino, {})
            return [b for b in range(first, first + count) if b not in blocks]

    def put(self, ino: int, first: int, data: bytes) -> None:
        """Cache whole blocks of ``data`` from file block ``first``."""
        bs = self.block_size
        view = memoryview(data)
        with self._lock:
            blocks = self._files.setdefault(ino, {})
            for i in range(len(data) // bs):
                if first + i not in blocks:
                    self._order.append((ino, first + i))
                    self._count += 1
                blocks[first + i] = bytes(view[i * bs:(i + 1) * bs])
                self.filled += 1
            if len(self._order) > 2 * self.capacity_blocks:  # forget entries of dropped blocks
                self._order = deque(k for k in self._order if k[1] in self._files.get(k[0], ()))
            while self._count > self.capacity_blocks:
                old_ino, old_block = self._order.popleft()
                old = self._files.get(old_ino)
                if old is not None and old.pop(old_block, None) is not None:
                    self._count -= 1
                    if not old:
                        del self._files[old_ino]

    def drop(self, ino: int, first: int = 0, count: int | None = None) -> None:
        """Forget cached blocks of ``ino`` (all of them, or a range)."""
        if ino not in self._files:
            return
        with self._lock:
            blocks = self._files.get(ino)
            if blocks is None:
                return
            if first == 0 and count is None:
                victims = list(blocks)
            else:
                victims = [b for b in blocks if b >= first and (count is None or b < first + count)]
            for b in victims:
                del blocks[b]
            self._count -= len(victims)
            if not blocks:
                del self._files[ino]

    @property
    def cached_blocks(self) -> int:
        return self._count
