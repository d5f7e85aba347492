"""Open file descriptions and the descriptor table that names them.

An ``OpenFile`` is what ``open`` creates and ``dup`` shares: the inode, the
access mode and status flags, the offset, the readahead window, and the CSD
kernels bound to this description (``vfs/csd.py``). Its inode is held in the
lfs while it is open, so an unlinked file lives until its last close.

Descriptor numbers are real descriptors of this process: each is a
duplicate of one reserved descriptor of /dev/null opened with access mode 3
(neither read nor write), held open until ``close``. A program may mix
zcsdfs and real descriptors freely, and a zcsdfs descriptor that reaches the
real ``os`` by mistake fails with EBADF on read and write instead of
touching another file.

C code (or ``open(fd).close()``) may still close such a number behind the
volume's back, and the kernel then hands it to the next real ``open``. So
the reserved description carries a mark (an ``F_SETSIG`` signal number no
real file has), and every use of a zcsdfs number checks the mark with one
``fcntl`` (about 0.3 us, against 1 us for an ``fstat``): a number that lost
it is forgotten and left to the real ``os``, so its calls reach the file
the number names now, never the zcsdfs one. A number another zcsdfs
descriptor table gets again from the kernel is taken from the table that
lost it (the ``_holders`` map below), so no two tables claim one number.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Callable

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


#: The mark the reserved description carries: a signal number for ``F_SETSIG`` that nothing
#: else sets on a file (0, the default, means SIGIO).
MARK = 62
F_GETSIG, F_SETSIG = fcntl.F_GETSIG, fcntl.F_SETSIG
NO_ACCESS = 3  # O_ACCMODE: open(2) then grants neither read nor write (read and write give EBADF)

#: Every zcsdfs descriptor number in the process -> the table that holds it; and every reserved
#: number -> the table it belongs to.
_holders: dict[int, "Descriptors"] = {}
_reserves: dict[int, "Descriptors"] = {}
_holders_lock = threading.RLock()  # re-entered when a collected volume is finalised mid-call


def _marked(fd: int, _fcntl=fcntl.fcntl) -> bool:
    """Whether ``fd`` still names a duplicate of a reserved description (one system call)."""
    try:
        return _fcntl(fd, F_GETSIG) == MARK
    except OSError:  # closed behind our back
        return False


def _reserve(table: "Descriptors") -> int:
    """A new reserved number for ``table``; a table that lost this number behind its back
    forgets it (it could otherwise pass the mark check)."""
    fd = os.open(os.devnull, NO_ACCESS | os.O_CLOEXEC)
    fcntl.fcntl(fd, F_SETSIG, MARK)
    with _holders_lock:
        previous = _holders.pop(fd, None)
        _reserves[fd] = table
    if previous is not None:
        previous._taken(fd)
    return fd


def all_numbers() -> set[int]:
    """Every number a zcsdfs table holds, reserved ones included: what a real closerange spares
    (not one lost behind its table's back, which may be a real file's now)."""
    with _holders_lock:
        numbers = set(_holders)
        numbers.update(_reserves)
    return {fd for fd in numbers if _marked(fd)}


class Descriptors:
    """Descriptor number -> open file description, for one volume.

    ``lost(of)`` is called for a description whose number was closed or
    reused behind the table's back (the volume drops its reference).
    """

    def __init__(self, lost: Callable[[OpenFile], None] | None = None):
        self._table: dict[int, OpenFile] = {}
        self._lock = threading.RLock()
        self._lost = lost
        self._null = _reserve(self)

    def __contains__(self, fd) -> bool:
        return self.find(fd) is not None

    def get(self, fd: int) -> OpenFile:
        of = self.find(fd)
        if of is None:
            raise bad_fd()
        return of

    def find(self, fd, _fcntl=fcntl.fcntl) -> OpenFile | None:
        """The description ``fd`` names, or None when it is not one of these descriptors
        (any more: one closed or reused behind our back is forgotten here)."""
        try:
            of = self._table.get(fd)
        except TypeError:  # unhashable: not a descriptor of ours either
            return None
        if of is None:
            return None
        try:
            if _fcntl(fd, F_GETSIG) == MARK:  # _marked, inlined: this runs on every call
                return of
        except OSError:
            pass
        self._forget(fd, of)
        return None

    def holds(self, fd) -> bool:
        """Whether ``fd`` is in the table, unchecked: for routing to a method that checks."""
        try:
            return fd in self._table
        except TypeError:
            return False

    def _forget(self, fd: int, of: OpenFile) -> None:
        """``fd`` no longer names our description: drop it without closing the number."""
        with self._lock:
            if self._table.get(fd) is not of:
                return
            del self._table[fd]
            with _holders_lock:
                if _holders.get(fd) is self:
                    del _holders[fd]
        if self._lost is not None:
            self._lost(of)

    def add(self, of: OpenFile, at: int | None = None) -> int:
        """A new descriptor for ``of`` (at ``at``, replacing whatever real file it named, as dup2)."""
        with self._lock:
            if not self._reserved():  # the reserved number itself was closed behind our back
                self._null = _reserve(self)
            if at is None:
                fd = os.dup(self._null)
            else:
                fd = os.dup2(self._null, at, inheritable=False)
            stale = self._table.get(fd)
            self._table[fd] = of
        with _holders_lock:
            previous, _holders[fd] = _holders.get(fd), self
            if _reserves.get(fd) is not None and fd != self._null:
                del _reserves[fd]  # a reserved number lost behind its table's back
        if previous is not None and previous is not self:  # another table lost this number
            previous._taken(fd)
        if stale is not None and stale is not of and self._lost is not None:
            self._lost(stale)
        return fd

    def _reserved(self) -> bool:
        """Whether our reserved number is still ours (marked, and nobody else's since)."""
        return _reserves.get(self._null) is self and _marked(self._null)

    def _taken(self, fd: int) -> None:
        with self._lock:
            of = self._table.pop(fd, None)
        if of is not None and self._lost is not None:
            self._lost(of)

    def remove(self, fd: int) -> OpenFile:
        """Forget ``fd`` and give its number back; returns its description."""
        of = self.find(fd)
        with self._lock:
            if of is None or self._table.get(fd) is not of:
                raise bad_fd()
            del self._table[fd]
            with _holders_lock:
                if _holders.get(fd) is self:
                    del _holders[fd]
            os.close(fd)
            return of

    def items(self) -> list[tuple[int, OpenFile]]:
        with self._lock:
            return list(self._table.items())

    def close_all(self) -> list[OpenFile]:
        """Release every descriptor number still ours; returns the descriptions they named."""
        with self._lock:
            table, self._table = self._table, {}
            with _holders_lock:
                for fd in table:
                    if _holders.get(fd) is self:
                        del _holders[fd]
                for fd in table:
                    if _marked(fd) and fd not in _reserves:  # else lost behind our back: not ours
                        os.close(fd)
                if self._reserved():
                    os.close(self._null)
                if _reserves.get(self._null) is self:
                    del _reserves[self._null]
                self._null = -1
            return list(table.values())
