"""Computational storage: the eBPF VM and the kernels it runs beside the data.

The VM lives in this package: ``isa`` (instruction encoding), ``asm`` and
``disasm`` (text syntax), ``elf`` (loader for clang objects), ``verifier``,
``interpreter`` (the reference engine) and ``jit`` (llvmlite), sharing the
contracts in ``program``, ``helpers``, ``memory`` and ``errors``.

Kernels for files: :func:`load` gives a :class:`Kernel` (``registry``) that
runs over a file view (``fileview``) with the storage helpers (``stdlib``)
or OpenCSD's (``opencsd``); the C headers for kernel authors are in
``include/``. :func:`advice` gives the ``posix_fadvise`` value that binds a
kernel to an open file (``zcsdfs.vfs.csd`` does the binding).
"""

from zcsdfs.csd.fadvise import advice
from zcsdfs.csd.registry import Kernel, KernelStats, load

__all__ = ["Kernel", "KernelStats", "advice", "load"]
