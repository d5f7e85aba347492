"""A block cache for file data, filled only when a program's advice asks for it.

Reads go straight to the log unless ``posix_fadvise`` said otherwise:
WILLNEED reads a range in ahead of time, SEQUENTIAL reads ahead of each
read (a window that doubles up to 2 MiB, like Linux's readahead), DONTNEED
drops cached blocks. Any change to a file drops all of its cached blocks,
so the cache can never serve stale bytes. Capacity is bounded; the least
recently used blocks go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

DEFAULT_CAPACITY = 64 << 20


class BlockCache:
    def __init__(self, block_size: int, capacity: int = DEFAULT_CAPACITY):
        self.block_size = block_size
        self.capacity_blocks = max(1, capacity // block_size)
        self._blocks: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._by_ino: dict[int, set[int]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.filled = 0

    def caches(self, ino: int) -> bool:
        return ino in self._by_ino

    def get(self, ino: int, first: int, count: int) -> list[bytes] | None:
        """Blocks ``first .. first+count-1`` of ``ino`` if every one is cached, else None."""
        with self._lock:
            out = []
            for b in range(first, first + count):
                data = self._blocks.get((ino, b))
                if data is None:
                    self.misses += 1
                    return None
                self._blocks.move_to_end((ino, b))
                out.append(data)
            self.hits += 1
            return out

    def missing(self, ino: int, first: int, count: int) -> list[int]:
        with self._lock:
            return [b for b in range(first, first + count) if (ino, b) not in self._blocks]

    def put(self, ino: int, first: int, data: bytes) -> None:
        """Cache whole blocks of ``data`` from file block ``first``."""
        bs = self.block_size
        with self._lock:
            blocks = self._by_ino.setdefault(ino, set())
            for i in range(len(data) // bs):
                self._blocks[(ino, first + i)] = data[i * bs:(i + 1) * bs]
                blocks.add(first + i)
                self.filled += 1
            while len(self._blocks) > self.capacity_blocks:
                (old_ino, old_block), _ = self._blocks.popitem(last=False)
                self._forget(old_ino, old_block)

    def drop(self, ino: int, first: int = 0, count: int | None = None) -> None:
        """Forget cached blocks of ``ino`` (all of them, or a range)."""
        with self._lock:
            blocks = self._by_ino.get(ino)
            if not blocks:
                return
            victims = [b for b in blocks if b >= first and (count is None or b < first + count)]
            for b in victims:
                del self._blocks[(ino, b)]
                self._forget(ino, b)

    def _forget(self, ino: int, block: int) -> None:
        blocks = self._by_ino[ino]
        blocks.discard(block)
        if not blocks:
            del self._by_ino[ino]

    @property
    def cached_blocks(self) -> int:
        return len(self._blocks)
