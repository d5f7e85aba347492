"""Example CSD kernels in C, with their compiled eBPF objects.

Each ``NAME.c`` has two entry points: ``NAME`` (section ``csd/memory``) runs
over input memory (r1 = data, r2 = length) and ``NAME_file`` (section
``csd/read_stream``) reads its bound file through the storage helpers
(``zcsdfs.csd.stdlib``). ``zcsdfs.h`` declares those helpers for kernel
authors; ``build.py`` recompiles the objects.
"""

from __future__ import annotations

from pathlib import Path

from zcsdfs.csd.elf import load_elf
from zcsdfs.csd.program import Program

KERNELS = ("sum_u32", "histogram", "count_above", "crc32c")


def object_path(kernel: str) -> Path:
    """The committed object of one of :data:`KERNELS`."""
    if kernel not in KERNELS:
        raise FileNotFoundError(2, f"no kernel named {kernel!r} (have: {', '.join(KERNELS)})")
    return Path(__file__).resolve().with_name(f"{kernel}.o")


def program(kernel: str, *, file: bool = False) -> Program:
    """The memory entry point of a kernel, or with ``file=True`` its read-stream one."""
    return load_elf(object_path(kernel).read_bytes(), name=f"{kernel}_file" if file else kernel)
