"""The process umask, tracked so that every create can apply it without a system call.

The kernel masks the mode of every file and directory a process creates
with the process's umask; zcsdfs's in-process API and shim must do the
same, with the umask as it is at that moment (``os.umask(0o077)`` and then
a create under the shim's prefix gives 0600). Reading the umask costs a
system call that also sets it (racing other threads) or a read of
/proc/self/status, too slow for every create. But a Python process changes
its umask only through ``os.umask``: importing zcsdfs wraps it (same
signature, same result) to note each new value, read once from
/proc/self/status at import. C code that calls umask(2) itself is not seen.
"""

from __future__ import annotations

import functools
import os
import threading

_real = getattr(os.umask, "__wrapped__", os.umask)  # a re-import wraps the original, not our wrapper
_lock = threading.Lock()


def _read() -> int:
    """The process umask, read without changing it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _lock:  # no /proc: set and put back, under the lock every tracked change takes
        mask = _real(0o022)
        _real(mask)
        return mask


_current = _read()


def current() -> int:
    """The umask the kernel would apply now."""
    return _current


@functools.wraps(_real)
def umask(mask: int, /) -> int:
    global _current
    with _lock:
        old = _real(mask)
        _current = mask & 0o777
    return old


def track() -> None:
    """Put the tracking wrapper in place of ``os.umask`` (idempotent)."""
    if os.umask is not umask:
        os.umask = umask
