"""Advice numbers for kernels: how ``posix_fadvise`` names a CSD kernel.

POSIX gives ``posix_fadvise`` six advice values (0 to 5). Any other number
reaching zcsdfs names a kernel registered here, so binding one is an
ordinary call: ``posix_fadvise(fd, offset, length, advice(kernel))``. The
numbers live in this process only (like descriptors), start at
:data:`FIRST_ADVICE`, and one kernel object keeps one number for its
lifetime, so asking twice is harmless.
"""

from __future__ import annotations

import itertools
import threading

FIRST_ADVICE = 0x1000

_by_number: dict[int, object] = {}
_by_kernel: dict[int, int] = {}  # id(kernel) -> number; _by_number keeps the kernel alive
_numbers = itertools.count(FIRST_ADVICE)
_lock = threading.Lock()


def advice(kernel) -> int:
    """The ``posix_fadvise`` advice value that binds ``kernel`` (a :class:`~zcsdfs.csd.Kernel`)."""
    with _lock:
        number = _by_kernel.get(id(kernel))
        if number is None:
            number = next(_numbers)
            _by_kernel[id(kernel)] = number
            _by_number[number] = kernel
        return number


def kernel_for(number: int):
    """The kernel an advice value names, or None (a POSIX value, or one never handed out)."""
    return _by_number.get(number)
