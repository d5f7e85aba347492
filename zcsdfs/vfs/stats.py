"""The vfs's state as records: open files and the block cache; and the CSD kernels it drives.

Both read counters the vfs keeps anyway; a snapshot never waits for a
request in flight longer than one dictionary copy.
"""

from __future__ import annotations

import attrs

from zcsdfs.csd.stats import BoundKernel, CsdVolumeStats, KernelBinding


@attrs.frozen
class VfsStats:
    readonly: bool
    open_files: int  # open file descriptions, every front end's
    cache_hits: int
    cache_misses: int
    cache_blocks_filled: int
    cache_blocks: int
    cache_capacity_blocks: int


def vfs_stats(vfs) -> VfsStats:
    """A snapshot of ``vfs`` (a ``zcsdfs.vfs.core.Vfs``)."""
    cache = vfs.cache
    with vfs.csd._lock:
        open_files = sum(vfs.csd._opens.values())
    with cache._lock:
        return VfsStats(vfs.readonly, open_files, cache.hits, cache.misses, cache.filled, cache._count,
                        cache.capacity_blocks)


def csd_stats(vfs) -> CsdVolumeStats:
    """The CSD kernels bound on ``vfs``'s volume and the totals of every run."""
    bindings = vfs.csd
    with bindings._lock:
        live = [b for b in list(bindings.bound) if not b._unbound]
        totals = attrs.evolve(bindings.stats)
    per_kernel: dict[int, list] = {}
    for b in live:
        per_kernel.setdefault(id(b.kernel), [b.kernel, 0])[1] += 1
    kernels = []
    for kernel, count in per_kernel.values():
        s = kernel.stats
        kernels.append(BoundKernel(kernel.name, kernel.kind, kernel.abi, kernel.engine, kernel.digest, count,
                                   s.calls, s.failures, s.instructions, s.bytes_read, s.bytes_returned, s.seconds))
    kernels.sort(key=lambda k: (k.name, k.kind))
    bound = sorted((KernelBinding(b.kernel.name, b.kernel.kind, b.kernel.engine, b.ino, b.pid, b.start,
                                  0 if b.end is None else b.end - b.start, b.route) for b in live),
                   key=lambda b: (b.ino, b.pid, b.start, b.kind))
    return CsdVolumeStats(len(live), tuple(kernels), totals.calls, totals.failures, totals.bytes_read,
                          totals.bytes_returned, totals.instructions, totals.seconds, tuple(bound))
