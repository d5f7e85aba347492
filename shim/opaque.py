"""Clear failures for functions that do their file I/O in C, out of the shim's reach.

The shim interposes on Python-level calls. ``sqlite3`` opens its database
with the C library, and numpy's ``fromfile`` reads through a C ``FILE*``
made from the descriptor; neither passes through ``os`` or ``io``. Left
alone, sqlite3 would quietly open (or create) a real file at the path under
the prefix, and numpy would fail with "obtaining file position failed".
These stand-ins raise one error saying what happened instead; for
everything else that does its own I/O in C the volume's descriptors are
reserved real descriptors of ``/dev/null`` opened with access mode 3 (no
read, no write), so reads and writes through them fail with EBADF and never
touch another file.
"""

from __future__ import annotations

import errno
import functools
import os

from zcsdfs.shim.router import router


def _unreachable(what: str, path) -> OSError:
    return OSError(errno.EOPNOTSUPP,
                   f"{what} does its file I/O in C, out of zcsdfs.shim's reach; this path is in a "
                   f"zcsdfs volume (use a FUSE mount of the volume for such code)", path)


def _in_volume(file) -> bool:
    """Whether ``file`` (a path, a descriptor, or an object with ``fileno``) is in a volume."""
    if isinstance(file, int):
        return router.owner(file) is not None
    fileno = getattr(file, "fileno", None)
    if fileno is not None and not isinstance(file, (str, bytes, os.PathLike)):
        try:
            return router.owner(fileno()) is not None
        except (OSError, ValueError):
            return False
    place = router.locate(file)
    return place is not None and place[0] is not None


def _guard(original, what: str, argument: str, uri: bool = False):
    @functools.wraps(original)
    def guarded(*args, **kwargs):
        target = args[0] if args else kwargs.get(argument)
        if uri and isinstance(target, str) and kwargs.get("uri") and target.startswith("file:"):
            target = target[len("file:"):].partition("?")[0]
        if target is not None and _in_volume(target):
            raise _unreachable(what, target)
        return original(*args, **kwargs)
    return guarded


def sqlite3_stand_ins(module) -> dict:
    return {module.connect: _guard(module.connect, "sqlite3.connect", "database", uri=True)}


def numpy_stand_ins(module) -> dict:
    return {module.fromfile: _guard(module.fromfile, "numpy.fromfile", "file")}


#: Top-level module -> the stand-ins for it once loaded.
WATCHED = {"sqlite3": sqlite3_stand_ins, "numpy": numpy_stand_ins}
