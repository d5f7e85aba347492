"""What a kernel is bound to: one file, frozen, as the csd layer sees it.

:meth:`Kernel.run <zcsdfs.csd.registry.Kernel.run>` takes a *file view*,
any object with

- ``ino``, ``size`` (bytes) and ``block_size``;
- ``zone_size`` and ``zone_capacity`` of the device, in blocks (for the
  OpenCSD helpers that report them);
- ``lbas() -> list[int]``: the device block behind each file block, -1 for
  a hole (OpenCSD kernels get this list; it is also the set of blocks they
  may read);
- ``read(offset, size) -> bytes``: the file's bytes, holes as zeros, short
  at the end.

That is what ``zcsdfs.lfs.frozen.FrozenView`` offers. A view that also has
``window(start, end)``, the bytes as buffers (or None when it cannot lend
them), is read from those without leaving native code under the JIT; one
without is read through Python, one ``read`` per kernel read. A
:class:`MemoryFile` holds the bytes in memory (test data); a FrozenView
lends the device's memory, checked against the data checksums.
"""

from __future__ import annotations

import errno

from zcsdfs.csd.stdlib import StorageEnv


class MemoryFile:
    """A file whose data are in memory: ``extents`` (buffers, or ``(buffer, offset, length)``) in file order.

    ``size`` defaults to the extents' total and may end inside the last one.
    ``lbas`` defaults to consecutive device blocks from ``first_lba``; pass
    -1 for a hole (its bytes in the extents must then be zeros, as a hole
    reads). The geometry is only reported, never checked against a device.
    """

    def __init__(self, extents=(), *, size: int | None = None, block_size: int = 4096, lbas=None,
                 ino: int = 0, first_lba: int = 1 << 16, zone_size: int = 1 << 16, zone_capacity: int = 1 << 16):
        self._env = StorageEnv(extents, block_size=block_size, file_size=size)
        self.extents = self._env.extents
        self.size = self._env.file_size
        self.block_size = block_size
        self.ino = ino
        self.zone_size = zone_size
        self.zone_capacity = zone_capacity
        blocks = -(-self.size // block_size)
        self._lbas = list(range(first_lba, first_lba + blocks)) if lbas is None else list(lbas)
        if len(self._lbas) != blocks:
            raise OSError(errno.EINVAL, f"{len(self._lbas)} LBAs for a file of {blocks} blocks")

    def lbas(self) -> list[int]:
        return list(self._lbas)

    def read(self, offset: int, size: int) -> bytes:
        out = bytearray(max(0, min(size, self.size - offset)))
        n = self._env.read_into(offset, memoryview(out))
        return bytes(out[:n])

    def window(self, start: int, end: int) -> tuple[memoryview, ...]:
        """The extents' views of bytes ``[start, end)`` (no copy)."""
        out = []
        for base, extent in zip(self._env.offsets, self.extents):
            lo, hi = max(start, base), min(end, base + len(extent))
            if lo < hi:
                out.append(extent[lo - base:hi - base])
        return tuple(out)
