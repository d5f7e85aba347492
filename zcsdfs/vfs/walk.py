"""Path resolution as Linux's namei does it, over the lfs's inode API.

A path walks from the root (absolute) or a start directory (relative; the
volume's current directory or a ``dir_fd``). Every directory passed through
needs search (x) permission; symbolic links in the middle of a path are
always followed, the last component's only when asked or when a trailing
slash follows it (as Linux's path lookup does), except where the last
component is a name to create or remove (``name=True``: mkdir, unlink,
rmdir, rename, link, symlink, mknod, whose Linux calls look up only the
parent, so ``rmdir("link/")`` is ENOTDIR and never removes the link's
target); more than 40 links
in one resolution is ELOOP. ``..`` at the root stays at the root, so no
path leaves the volume.
"""

from __future__ import annotations

import errno
import stat

import attrs

from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.errors import os_error
from zcsdfs.vfs.permissions import X, allowed

PATH_MAX = 4096
NAME_MAX = 255
MAXSYMLINKS = 40


@attrs.frozen
class Resolved:
    """Where a path leads: the directory holding the last name, the name, and its inode if any.

    ``name`` is "" only for "/" (the root has no name in any directory) and
    may be "." or ".." (the lfs refuses to create or remove those with
    Linux's errno); ``slash`` records a trailing slash, which demands a
    directory.
    """

    parent: int
    name: str
    ino: int | None
    slash: bool


class Walker:
    """Resolves paths of one file system for a caller."""

    def __init__(self, fs):
        self.fs = fs
        self.root = fs.ROOT

    def resolve(self, caller: Caller, path: str, start: int, *, follow: bool = True,
                filename=None, name: bool = False) -> Resolved:
        """Walk ``path`` from ``start``; the last component may be missing (``ino`` None)."""
        filename = path if filename is None else filename
        if not path:
            raise os_error(errno.ENOENT, filename)
        if len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            raise os_error(errno.ENAMETOOLONG, filename)
        budget = [MAXSYMLINKS]
        return self._walk(caller, path, start, follow and not name, budget, filename, name)

    def _walk(self, caller, path, start, follow, budget, filename, name_only=False) -> Resolved:
        fs = self.fs
        current = self.root if path.startswith("/") else start
        parts = [p for p in path.split("/") if p]
        slash = path.endswith("/")
        if not parts:
            return Resolved(current, "", current, True)
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            dir_st = fs.getattr(current)
            if not stat.S_ISDIR(dir_st.st_mode):
                raise os_error(errno.ENOTDIR, filename)
            if not allowed(caller, dir_st, X):
                raise os_error(errno.EACCES, filename)
            if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise os_error(errno.ENAMETOOLONG, filename)
            ino = fs.find(current, name)
            if ino is None:
                if last:
                    return Resolved(current, name, None, slash)
                raise os_error(errno.ENOENT, filename)
            st = fs.getattr(ino)
            if stat.S_ISLNK(st.st_mode) and (not last or follow or (slash and not name_only)):
                budget[0] -= 1
                if budget[0] < 0:
                    raise os_error(errno.ELOOP, filename)
                target = fs.readlink(ino)
                rest = "/".join(parts[i + 1:])
                if rest or slash:
                    target = target.rstrip("/") + "/" + rest if rest else target + "/"
                return self._walk(caller, target, current, follow, budget, filename, name_only)
            if last:
                return Resolved(current, name, ino, slash)
            current = ino
        raise AssertionError("unreachable")
