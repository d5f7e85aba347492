"""CSD kernels' state as records: per kernel bound (runs, bytes in and out, faults), the
totals of a volume, and the kernel-run event.

The vfs drives kernels (``zcsdfs.vfs.csd``), so it fills these in
(``zcsdfs.vfs.stats.csd_stats``) and publishes ``KernelRun`` after each run.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class KernelRun:
    """Event: one kernel run over a file's frozen view (``failure`` says why one failed)."""

    kernel: str
    kind: str
    ino: int
    offset: int
    length: int
    bytes_read: int  # device -> kernel
    bytes_returned: int  # kernel -> host
    instructions: int
    seconds: float
    failure: str | None = None


@attrs.frozen
class BoundKernel:
    """One kernel with at least one live binding, and what it has done over all its runs."""

    name: str
    kind: str
    abi: str
    engine: str
    digest: str
    bindings: int
    calls: int
    failures: int
    instructions: int
    bytes_read: int
    bytes_returned: int
    seconds: float


@attrs.frozen
class KernelBinding:
    """One live binding: which kernel serves which file, for which process, over which range."""

    kernel: str
    kind: str  # read-stream, write-event, write-stream
    engine: str
    ino: int  # the file
    pid: int  # the process that bound it
    start: int  # the advice range: bytes [start, start + length)
    length: int  # 0: to the end of the file
    route: str  # "fadvise" (one open description) or "xattr" (every description of the process)


@attrs.frozen
class CsdVolumeStats:
    """A volume's kernels: live bindings and the totals of every run on the volume."""

    bindings: int
    kernels: tuple[BoundKernel, ...]
    runs: int
    failures: int
    bytes_in: int
    bytes_out: int
    instructions: int
    seconds: float
    bound: tuple[KernelBinding, ...] = ()  # every live binding, by file, process and range
