"""In-process interposition: unmodified Python code on zcsdfs under a mount prefix (installed as zcsdfs.shim).

``install("/zcsd")`` makes every path under ``/zcsd`` a path in a zcsdfs
volume for ``open``, ``io``, ``os``, ``os.path``, ``pathlib``, ``shutil``,
``tempfile``, ``glob`` and whatever is built on them, in every module
(``from os import stat`` included) and every thread; every other path goes
to the real file system as before. It is what LD_PRELOAD interposers do for
C programs, done on Python's own function objects. ``zcsdfs run`` (or
``python -m zcsdfs.shim``) installs it before a program's first line.

Semantics are those of a mount point at the prefix: paths are routed after
``.``/``..`` normalisation, ``rename`` and ``link`` across the boundary fail
with EXDEV (so ``shutil.move`` copies and deletes), symbolic links in the
volume resolve inside it (an absolute target is rooted at the volume, and
``readlink`` shows it under the prefix), and descriptors of the two sides
never collide. The current directory may move into a volume; the process's
real one then stays where it was, for subprocesses.

Not intercepted: code that does its file I/O in C (sqlite3, numpy's
``fromfile`` and ``ndarray.tofile``, ``mmap``, extension modules, and child
processes); ``sqlite3.connect`` and ``numpy.fromfile`` on a path or file in
a volume fail with EOPNOTSUPP saying so, and a volume descriptor reaching
C code fails with EBADF. Importing Python modules from a volume is not
supported (the import system reads files through ``posix`` and ``_io``
directly), nor are real symbolic links that point under a prefix (the
kernel follows those).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import sys

from zcsdfs.shim import functions, opaque
from zcsdfs.shim.patching import Patches
from zcsdfs.shim.router import Mount, router

__all__ = ["install", "uninstall", "mounted", "mounts"]

_patches: Patches | None = None


def _prefix(prefix) -> str:
    text = os.fsdecode(os.fspath(prefix))
    if not text.startswith("/"):
        raise OSError(errno.EINVAL, "a mount prefix must be an absolute path", text)
    normal = "/" + posixpath.normpath(text).lstrip("/")
    if normal == "/":
        raise OSError(errno.EINVAL, "the mount prefix cannot be /: the real file system would vanish", text)
    return normal


def _volume(device):
    """(volume, whether the shim made it) for what ``install`` was given."""
    import zcsdfs
    if device is None:
        return zcsdfs.default_volume(), False
    if isinstance(device, zcsdfs.Volume):
        return device, False
    return zcsdfs.Volume(device), True


def install(prefix="/zcsd", device=None):
    """Mount a volume at ``prefix`` for the whole process and start interposing; returns the volume.

    ``device``: None for the process's default volume (``zcsdfs.default_volume()``),
    a ``zcsdfs.Volume``, or a ``ZonedDevice`` or image path to mount a new volume
    on (unmounted again by ``uninstall``). Several prefixes may be mounted,
    each with its own volume; a prefix already mounted is EBUSY.
    """
    global _patches
    prefix = _prefix(prefix)
    volume, owned = _volume(device)
    with router.lock:
        try:
            router.add(Mount(prefix, volume, owned))
        except BaseException:
            if owned:
                volume.unmount()
            raise
        if _patches is None:
            _patches = Patches(functions.STAND_INS)
            _patches.apply(opaque.WATCHED)
            for name, stand_ins_for in opaque.WATCHED.items():
                module = sys.modules.get(name)
                if module is not None:
                    _patches.add(stand_ins_for(module))
    return volume


def uninstall(prefix=None) -> None:
    """Unmount ``prefix`` (default: every prefix); when none is left, put every original back."""
    global _patches
    with router.lock:
        gone = [router.remove(_prefix(prefix))] if prefix is not None else \
            [router.remove(m.prefix) for m in router.mounts]
        if not router.mounts and _patches is not None:
            _patches.restore()
            _patches = None
    for mount in gone:
        if mount.owned:
            mount.volume.unmount()


@contextlib.contextmanager
def mounted(prefix="/zcsd", device=None):
    """``with mounted("/zcsd", device) as volume:`` — ``install`` for the block, then ``uninstall``."""
    volume = install(prefix, device)
    try:
        yield volume
    finally:
        uninstall(prefix)


def mounts() -> dict:
    """The mounted prefixes and their volumes."""
    return {m.prefix: m.volume for m in router.mounts}
