"""Which file system a path or descriptor belongs to: the mount table and the current directory.

A path is routed by where it points after normalisation (``//``, ``.`` and
``..`` applied to the text, as for any mount point): ``/zcsd/a/../b`` is in
the volume mounted at ``/zcsd``, ``/zcsd/../etc`` is the real ``/etc``, and
``/tmp/../zcsd/x`` is in the volume. The volume is handed the part of the
path after the last point where it entered the prefix, so ``..`` after a
symbolic link inside the volume keeps Linux's meaning, and the volume's own
walk keeps ``..`` from climbing above its root.

The current directory may be inside a volume (``os.chdir('/zcsd/d')``): the
process's real one stays where it was, and relative paths go to the volume.
While it is real, the shim keeps its text (updated by every ``chdir``
through the shim) to tell, without a system call, whether a relative path
could reach a prefix.

Descriptors are routed by asking each volume whether it owns the number;
zcsdfs descriptor numbers are reserved real descriptors, so the two spaces
never collide.
"""

from __future__ import annotations

import errno
import os
import threading

import attrs

_getcwd = os.getcwd


@attrs.frozen
class Mount:
    """One volume mounted at one prefix (absolute, normalised, never "/")."""

    prefix: str
    volume: object
    owned: bool  # the shim made the volume, and unmounts it when the prefix goes

    def outside(self, path):
        """A path inside the volume as the rest of the process names it (prefix prepended)."""
        if isinstance(path, bytes):
            prefix = os.fsencode(self.prefix)
            return prefix if path == b"/" else prefix + path
        return self.prefix if path == "/" else self.prefix + path


class Router:
    """The mount table (longest prefix first), the current directory, and the lookups on them."""

    def __init__(self):
        self.mounts: tuple[Mount, ...] = ()
        self.cwd: Mount | None = None  # the mount holding the current directory; None: real
        self._real_cwd = ""
        self._cwd_near = False  # the real cwd is an ancestor of a prefix
        self.lock = threading.RLock()

    # -- the table -------------------------------------------------------------------------

    def add(self, mount: Mount) -> None:
        with self.lock:
            if any(m.prefix == mount.prefix for m in self.mounts):
                raise OSError(errno.EBUSY, f"{os.strerror(errno.EBUSY)}: a volume is already mounted there",
                              mount.prefix)
            self.mounts = tuple(sorted((*self.mounts, mount), key=lambda m: -len(m.prefix)))
            if not self.mounts[1:]:
                self._note_real_cwd()
            self._note_near()

    def remove(self, prefix: str) -> Mount:
        with self.lock:
            for mount in self.mounts:
                if mount.prefix == prefix:
                    break
            else:
                raise OSError(errno.EINVAL, f"{os.strerror(errno.EINVAL)}: nothing is mounted there", prefix)
            self.mounts = tuple(m for m in self.mounts if m is not mount)
            if self.cwd is mount:
                self.cwd = None
            self._note_near()
            return mount

    # -- descriptors -----------------------------------------------------------------------

    def owner(self, fd) -> Mount | None:
        """The mount whose volume owns descriptor ``fd``, or None for a real one."""
        for mount in self.mounts:
            if mount.volume.owns(fd):
                return mount
        return None

    # -- the current directory -------------------------------------------------------------

    def getcwd(self) -> str:
        mount = self.cwd
        if mount is None:
            return _getcwd()
        return mount.outside(mount.volume.getcwd())

    def entered(self, mount: Mount | None) -> None:
        """The current directory is now in ``mount`` (None: the real one, just changed)."""
        with self.lock:
            self.cwd = mount
            if mount is None:
                self._note_real_cwd()
                self._note_near()

    def _note_real_cwd(self) -> None:
        try:
            self._real_cwd = _getcwd()
        except FileNotFoundError:  # removed from under us: relative paths fail in the kernel
            self._real_cwd = ""

    def _note_near(self) -> None:
        base = self._real_cwd.rstrip("/") + "/"
        self._cwd_near = bool(self._real_cwd) and any(m.prefix.startswith(base) for m in self.mounts)

    # -- paths -----------------------------------------------------------------------------

    def locate(self, path, dir_fd=None):
        """Where ``path`` (relative to ``dir_fd`` if given) lives.

        None: the real file system, with the arguments as given (the common
        case, decided without allocating). Otherwise ``(mount, path, dir_fd)``
        to call instead: ``mount`` None means the real file system with a
        rewritten absolute path (one that passes through a prefix, or leaves
        a volume's current directory, on its way out).
        """
        mounts = self.mounts
        if not mounts:
            return None
        try:
            text = os.fspath(path)
        except TypeError:  # not a path: the real function raises its own error
            return None
        if text[:1] == "/" and isinstance(text, str) and ".." not in text and "//" not in text \
                and "/./" not in text:  # the common case, first: already normal
            for mount in mounts:  # _locate_normal, inlined: this runs on every real path
                if text.startswith(mount.prefix):
                    rest = text[len(mount.prefix):]
                    if not rest or rest[0] == "/":
                        return mount, rest or "/", None
            return None
        if isinstance(text, bytes):
            found = self._locate(os.fsdecode(text), dir_fd)
            if found is None:
                return None
            return found[0], os.fsencode(found[1]), found[2]
        return self._locate(text, dir_fd)

    def _locate(self, text: str, dir_fd):
        if text[:1] == "/":
            if ".." in text or "//" in text or "/./" in text:
                return self._resolve(text)
            return self._locate_normal(text)
        if dir_fd is not None:
            mount = self.owner(dir_fd)
            return None if mount is None else (mount, text, dir_fd)
        cwd = self.cwd
        if cwd is not None:
            if ".." not in text:
                return cwd, text, None
            base = self.getcwd()
        else:
            if ".." not in text and not self._cwd_near:
                return None
            base = self._real_cwd
            if not base:
                return None
        found = self._resolve(base + "/" + text)
        if found is None and cwd is not None:  # out of the volume, into the real file system
            return None, os.path.normpath(base + "/" + text), None
        return found

    def _locate_normal(self, text: str):
        """``_locate`` for an absolute path with no ``..``, ``//`` or ``/./`` in it."""
        for mount in self.mounts:
            if text.startswith(mount.prefix):
                rest = text[len(mount.prefix):]
                if not rest:
                    return mount, "/", None
                if rest[0] == "/":
                    return mount, rest, None
        return None

    def _resolve(self, text: str):
        """``_locate`` for an absolute path that needs normalising.

        Its names are walked as text, noting each time the walk crosses into
        another mount or out of all of them. What follows the last crossing
        is kept as written, after the directory where it happened: the
        volume (or, for a path that passed through a prefix on its way out,
        the kernel) resolves it, so ``..`` after a symbolic link means what
        it means on Linux.
        """
        parts = text.split("/")
        stack: list[str] = []
        inside, entry, base, crossed = None, 0, [], False
        for i, name in enumerate(parts):
            if name == "..":
                if stack:
                    stack.pop()
            elif name and name != ".":
                stack.append(name)
            else:
                continue
            mount = self._mount_of("/" + "/".join(stack))
            if mount is not inside:
                inside, entry, base, crossed = mount, i + 1, list(stack), True
        if inside is None:
            return (None, "/" + "/".join(base + parts[entry:]), None) if crossed else None
        depth = inside.prefix.count("/")
        return inside, "/" + "/".join(base[depth:] + parts[entry:]), None

    def _mount_of(self, normal: str) -> Mount | None:
        for mount in self.mounts:
            if normal == mount.prefix or normal.startswith(mount.prefix + "/"):
                return mount
        return None


#: The process's mount table: the shim's state, shared by every thread.
router = Router()
