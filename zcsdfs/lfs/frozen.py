"""Frozen views: one file's blocks as they were at one moment, for CSD kernels.

A kernel bound to a file reads the blocks of a frozen view and nothing else,
so later writes to the file cannot change what it sees mid-run. The view
copies the file's extent map and pins the zones it points into: GC never
picks a zone a view pins, and a checkpoint never resets one, so the blocks
stay where the view says until ``release``, and reads of the view need not
hold the file system's lock. Views live in memory only; a crash or unmount
drops them.
"""

from __future__ import annotations

from zcsdfs.lfs.errors import Invalid
from zcsdfs.lfs.reader import ReadPlan


class FrozenView:
    """A file's size and extents frozen at ``fs.freeze(ino)``; read it, then ``release`` it."""

    def __init__(self, fs, node):
        self._fs = fs
        self.ino = node.ino
        self.size = node.size
        self.block_size = fs.block_size
        self.zone_size = fs.device.geometry.zone_size  # in blocks, for OpenCSD-ABI kernels
        self.zone_capacity = fs.device.geometry.zone_capacity
        self._extents = node.extents.copy()
        self.released = False
        self._pin(1)

    def extents(self) -> list[tuple[int, int, int]]:
        """(first file block, first LBA, block count) for every mapped run, in file order."""
        return list(self._extents)

    def lbas(self) -> list[int]:
        """The device block behind each file block (-1 for a hole), up to the frozen size."""
        blocks = -(-self.size // self.block_size)
        out = [-1] * blocks
        for first, lba, count in self._extents:
            for i in range(count):
                if first + i < blocks:
                    out[first + i] = lba + i
        return out

    def read(self, offset: int, size: int) -> bytes:
        """Like ``FileSystem.read`` on the file as it was when frozen."""
        self._check()
        if offset < 0 or size < 0:
            raise Invalid(f"negative offset or size ({offset}, {size})")
        plan = ReadPlan.of(self._extents, self.block_size, self.size, offset, size)
        return plan.copy(self._fs.device, self._fs.sums, self.ino)

    def window(self, start: int, end: int) -> tuple[memoryview, ...] | None:
        """Bytes ``[start, end)`` as views of the device's memory, holes as zeros, without a copy
        (what csd's ``MemoryFile`` offers), so a JIT kernel reads them natively instead of through
        a Python ``read`` per request, which concurrent writers holding the GIL would stall.
        Every block is checked against its checksum first; None when the device cannot lend its
        memory or a block fails (``read`` then copies, and raises EIO for the bad block).
        The views stay valid while the view is held: its zones are pinned."""
        self._check()
        lend = getattr(self._fs.device, "lend", None)
        end = min(end, self.size)
        if lend is None:
            return None
        if start >= end:
            return ()
        bs = self.block_size
        first, last = start // bs, -(-end // bs)
        sums = self._fs.sums
        out = []
        for _block, count, lba in self._extents.runs(first, last - first):
            if lba is None:
                out.append(memoryview(bytes(count * bs)))
                continue
            run = lend(lba, count)
            if run is None or not sums.ok(lba, run):
                return None
            out.append(run)
        skip, total = start - first * bs, (last - first) * bs - (end - first * bs)
        if skip:
            out[0] = out[0][skip:]
        if total:
            out[-1] = out[-1][:len(out[-1]) - total]
        return tuple(piece for piece in out if len(piece))

    def release(self) -> None:
        """Unpin the blocks; GC may move or free them from now on."""
        self._check()
        self.released = True
        self._pin(-1)

    def _check(self) -> None:
        if self.released:
            raise Invalid(f"the frozen view of inode {self.ino} was released")

    def _pin(self, sign: int) -> None:
        with self._fs._lock:
            self._fs.viewed.change(((lba, count) for _, lba, count in self._extents), sign)

    def __enter__(self) -> "FrozenView":
        return self

    def __exit__(self, *exc) -> None:
        if not self.released:
            self.release()
