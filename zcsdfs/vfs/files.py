"""Open file descriptions and the descriptor table that names them.

An ``OpenFile`` is what ``open`` creates and ``dup`` shares: the inode, the
access mode and status flags, the offset, the readahead window, and the CSD
kernels bound to this description (``vfs/csd.py``). Its inode is held in the
lfs while it is open, so an unlinked file lives until its last close.

Descriptor numbers are real descriptors of this process: each is a
duplicate of one ``O_PATH`` descriptor of /dev/null, held open until
``close``. The kernel never hands the same number to anything else, so a
program may mix zcsdfs and real descriptors freely, and a zcsdfs descriptor
that reaches the real ``os`` by mistake fails with EBADF on read and write
instead of touching another file.
"""

from __future__ import annotations

import os
import threading

from zcsdfs.vfs.errors import bad_fd

ACCESS_MODES = {os.O_RDONLY: (True, False), os.O_WRONLY: (False, True), os.O_RDWR: (True, True)}


class OpenFile:
    """One open file description."""

    def __init__(self, ino: int, flags: int, is_dir: bool, *, pid: int = 0):
        self.ino = ino
        self.pid = pid  # the process that opened it: per-process CSD bindings last while it has the file open
        self.flags = flags
        self.is_dir = is_dir
        self.readable, self.writable = ACCESS_MODES.get(flags & os.O_ACCMODE, (False, False))
        self.offset = 0
        self.lock = threading.Lock()  # serialises offset updates of read/write/lseek
        self.refs = 1
        self.advice = os.POSIX_FADV_NORMAL
        self.readahead = 0  # the sequential reader's window (0: not started), bytes
        self.readahead_end = 0  # where the cached data ahead of the reader ends
        self.csd: dict = {}  # kernel kind -> binding, for kernels bound to this description

    @property
    def append(self) -> bool:
        return bool(self.flags & os.O_APPEND)

    @property
    def sync(self) -> bool:
        return bool(self.flags & (os.O_SYNC | os.O_DSYNC))


class Descriptors:
    """Descriptor number -> open file description, for one volume."""

    def __init__(self):
        self._table: dict[int, OpenFile] = {}
        self._null = os.open(os.devnull, os.O_PATH | os.O_CLOEXEC)
        self._lock = threading.Lock()

    def __contains__(self, fd) -> bool:
        return fd in self._table

    def get(self, fd: int) -> OpenFile:
        try:
            return self._table[fd]
        except (KeyError, TypeError):
            raise bad_fd() from None

    def find(self, fd) -> OpenFile | None:
        """The description ``fd`` names, or None when it is not one of these descriptors."""
        try:
            return self._table.get(fd)
        except TypeError:  # unhashable: not a descriptor of ours either
            return None

    def add(self, of: OpenFile, at: int | None = None) -> int:
        """A new descriptor for ``of`` (at ``at``, replacing whatever real file it named, as dup2)."""
        with self._lock:
            if at is None:
                fd = os.dup(self._null)
            else:
                fd = os.dup2(self._null, at, inheritable=False)
            self._table[fd] = of
            return fd

    def remove(self, fd: int) -> OpenFile:
        """Forget ``fd`` and give its number back; returns its description."""
        with self._lock:
            try:
                of = self._table.pop(fd)
            except (KeyError, TypeError):
                raise bad_fd() from None
            os.close(fd)
            return of

    def items(self) -> list[tuple[int, OpenFile]]:
        with self._lock:
            return list(self._table.items())

    def close_all(self) -> list[OpenFile]:
        """Release every descriptor number; returns the descriptions they named."""
        with self._lock:
            table, self._table = self._table, {}
            for fd in table:
                os.close(fd)
            if self._null >= 0:
                os.close(self._null)
                self._null = -1
            return list(table.values())
