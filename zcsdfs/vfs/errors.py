"""Errors raised by the vfs itself (the lfs raises its own, with the same errno rules)."""

from __future__ import annotations

import errno
import os


def os_error(code: int, filename=None, filename2=None) -> OSError:
    """An OSError exactly as ``os`` would raise it: Linux's message, subclass chosen by errno."""
    if filename2 is not None:
        return OSError(code, os.strerror(code), filename, None, filename2)
    if filename is not None:
        return OSError(code, os.strerror(code), filename)
    return OSError(code, os.strerror(code))


def access_denied(filename=None) -> OSError:
    return os_error(errno.EACCES, filename)


def not_permitted(filename=None) -> OSError:
    return os_error(errno.EPERM, filename)


def bad_fd() -> OSError:
    return os_error(errno.EBADF)


def retag(exc: OSError, filename=None, filename2=None) -> OSError:
    """The same errno with ``os``'s message and the caller's file names (lfs names inodes)."""
    return os_error(exc.errno, filename, filename2)
