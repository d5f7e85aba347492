"""``os.path`` for zcsdfs: the functions that touch files ask the volume, the rest are posixpath's.

Under ``import zcsdfs as os``, ``os.path.exists(p)`` must look in the
volume, while ``os.path.join`` stays the pure string function it always
was. ``VolumePath`` binds the touching functions to one volume (it is
``Volume.path``); this module's functions use the default volume.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from posixpath import (  # noqa: F401  (re-exported: pure string functions)
    altsep, basename, commonpath, commonprefix, curdir, defpath, devnull, dirname, expanduser,
    expandvars, extsep, isabs, join, normcase, normpath, pardir, pathsep, sep, split, splitdrive,
    splitext, supports_unicode_filenames,
)

TOUCHING = ("exists", "lexists", "isfile", "isdir", "islink", "ismount", "isjunction", "getsize",
            "getmtime", "getatime", "getctime", "samefile", "sameopenfile", "realpath", "abspath",
            "relpath")


class VolumePath:
    """The file-touching ``os.path`` functions of one volume; pure ones are posixpath's."""

    def __init__(self, volume):
        self._volume = volume

    def __getattr__(self, name):
        return getattr(posixpath, name)

    def _stat(self, path, follow=True):
        return self._volume.stat(path, follow_symlinks=follow)

    def exists(self, path) -> bool:
        try:
            self._stat(path)
        except (OSError, ValueError):
            return False
        return True

    def lexists(self, path) -> bool:
        try:
            self._stat(path, follow=False)
        except (OSError, ValueError):
            return False
        return True

    def _is(self, path, test, follow=True) -> bool:
        try:
            return test(self._stat(path, follow).st_mode)
        except (OSError, ValueError):
            return False

    def isfile(self, path) -> bool:
        return self._is(path, stat.S_ISREG)

    def isdir(self, s) -> bool:
        return self._is(s, stat.S_ISDIR)

    def islink(self, path) -> bool:
        return self._is(path, stat.S_ISLNK, follow=False)

    def isjunction(self, path) -> bool:
        os.fspath(path)
        return False

    def ismount(self, path) -> bool:
        """Only the volume's root is a mount point."""
        try:
            st = self._stat(path, follow=False)
        except (OSError, ValueError):
            return False
        return not stat.S_ISLNK(st.st_mode) and st.st_ino == self._volume.fs.ROOT

    def getsize(self, filename) -> int:
        return self._stat(filename).st_size

    def getmtime(self, filename) -> float:
        return self._stat(filename).st_mtime

    def getatime(self, filename) -> float:
        return self._stat(filename).st_atime

    def getctime(self, filename) -> float:
        return self._stat(filename).st_ctime

    def samefile(self, f1, f2) -> bool:
        return posixpath.samestat(self._stat(f1), self._stat(f2))

    def sameopenfile(self, fp1, fp2) -> bool:
        return posixpath.samestat(self._volume.fstat(fp1), self._volume.fstat(fp2))

    def samestat(self, s1, s2) -> bool:
        return posixpath.samestat(s1, s2)

    def abspath(self, path):
        path = os.fspath(path)
        if not isabs(path):
            cwd = self._volume.getcwdb() if isinstance(path, bytes) else self._volume.getcwd()
            path = join(cwd, path)
        return normpath(path)

    def relpath(self, path, start=None):
        if start is None:
            start = curdir.encode() if isinstance(os.fspath(path), bytes) else curdir
        start_list = [x for x in self.abspath(start).split(sep if isinstance(start, str) else b"/") if x]
        path_list = [x for x in self.abspath(path).split(sep if isinstance(start, str) else b"/") if x]
        i = len(commonprefix([start_list, path_list]))
        up = pardir if isinstance(start, str) else pardir.encode()
        rel = [up] * (len(start_list) - i) + path_list[i:]
        return join(*rel) if rel else (curdir if isinstance(start, str) else curdir.encode())

    def realpath(self, filename, *, strict: bool = False):
        """The canonical path in the volume: symbolic links resolved, ``..`` applied."""
        path = os.fspath(filename)
        as_bytes = isinstance(path, bytes)
        text = os.fsdecode(path)
        resolved, _ = self._resolve("" if isabs(text) else self._volume.getcwd().rstrip("/"), text, strict, {})
        result = normpath(resolved) if resolved else "/"
        return os.fsencode(result) if as_bytes else result

    def _resolve(self, base: str, rest: str, strict: bool, seen: dict) -> tuple[str, bool]:
        """posixpath's ``_joinrealpath``: at a symbolic link loop, the rest is kept unresolved
        (False) and nothing after it is resolved any more."""
        while rest:
            name, _, rest = rest.partition("/")
            if not name or name == ".":
                continue
            if name == "..":
                base = base.rpartition("/")[0]
                continue
            candidate = base + "/" + name
            try:
                st = self._stat(candidate, follow=False)
            except OSError:
                if strict:
                    raise
                base = candidate
                continue
            if not stat.S_ISLNK(st.st_mode):
                base = candidate
                continue
            if candidate in seen:
                if seen[candidate] is not None:
                    base = seen[candidate]
                    continue
                if strict:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), candidate)
                return candidate + "/" + rest, False
            seen[candidate] = None
            target = self._volume.readlink(candidate)
            base, ok = self._resolve("" if target.startswith("/") else base, target, strict, seen)
            if not ok:
                return base + "/" + rest, False
            seen[candidate] = base
        return base, True


def _default_bound(name):
    def call(*args, **kwargs):
        from zcsdfs import default_volume
        return getattr(default_volume().path, name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = getattr(posixpath, name, None).__doc__ if hasattr(posixpath, name) else None
    return call


__all__ = list(TOUCHING) + [
    "altsep", "basename", "commonpath", "commonprefix", "curdir", "defpath", "devnull", "dirname",
    "expanduser", "expandvars", "extsep", "isabs", "join", "normcase", "normpath", "pardir",
    "pathsep", "samestat", "sep", "split", "splitdrive", "splitext", "supports_unicode_filenames",
]

for _name in TOUCHING:
    globals()[_name] = _default_bound(_name)
samestat = posixpath.samestat
del _name
