"""The kernels zcsdfs ships, in C, with their compiled eBPF objects.

Every ``NAME.c`` has a read-stream entry point, ``NAME_file`` (section
``csd/read_stream``), that reads its bound file through the storage
helpers (``zcsdfs.csd.stdlib``); the first four also have ``NAME`` (section
``csd/memory``), which runs over input memory. ``opencsd_count_above`` is
written against OpenCSD's API instead (``include/opencsd.h``; entry
``main``). The headers are in ``zcsdfs/csd/include/``; ``build.py``
recompiles the objects. ``load(NAME)`` gives the registry's Kernel.
"""

from __future__ import annotations

from pathlib import Path

from zcsdfs.csd.elf import load_elf
from zcsdfs.csd.program import Program
from zcsdfs.csd.registry import Kernel
from zcsdfs.csd.registry import load as load_kernel

MEMORY_KERNELS = ("sum_u32", "histogram", "count_above", "crc32c")
KERNELS = MEMORY_KERNELS + ("passthrough", "columns", "grep_count", "bloom", "opencsd_count_above")


def object_path(kernel: str) -> Path:
    """The committed object of one of :data:`KERNELS`."""
    if kernel not in KERNELS:
        raise FileNotFoundError(2, f"no kernel named {kernel!r} (have: {', '.join(KERNELS)})")
    return Path(__file__).resolve().with_name(f"{kernel}.o")


def program(kernel: str, *, file: bool = False) -> Program:
    """The memory entry point of a kernel, or with ``file=True`` its read-stream one."""
    return load_elf(object_path(kernel).read_bytes(), name=f"{kernel}_file" if file else kernel)


def load(kernel: str, **options) -> Kernel:
    """One of :data:`KERNELS` as a registry :class:`Kernel` (its read-stream entry)."""
    return load_kernel(object_path(kernel), **options)
