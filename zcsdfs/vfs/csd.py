"""CSD kernels bound to open files: reads that return a computation, writes that run one.

Two routes bind a kernel (:class:`zcsdfs.csd.Kernel`) to a file.

**posix_fadvise, per open file description** (in-process)::

    posix_fadvise(fd, offset, length, zcsdfs.csd.advice(kernel))   # bind [offset, offset+length)
    posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL)                      # unbind every kernel of fd

``length`` 0 means "to the end of the file". The binding belongs to the
description (``dup`` shares it) and goes with its last close; other
descriptions of the same file are not affected. The kernel's kind, fixed
when it was loaded, says what it does (below); a description holds at most
one kernel of each kind, and binding another replaces it.

**Extended attributes, per (file, process)** (OpenCSD's interface, and the
one the FUSE server sees, since fadvise never reaches a FUSE file system)::

    setxattr(path, "user.process.csd_read_stream", b"<inode of the kernel's ELF in the volume>")

from a process that has ``path`` open binds the kernel stored at that inode
(loaded with :func:`zcsdfs.csd.load` as the attribute's kind) to every read
of that process on that file, over the whole file. ``csd_write_event`` and
``csd_write_stream`` bind the other kinds. Nothing is persisted: the binding
goes with the process's last close of the file. ``getxattr`` returns the
bound inode, ``listxattr`` lists the bindings, ``removexattr`` unbinds, and
``getxattr(path, "user.process.csd_write_event_result")`` reads the last
write-event output. Errors: ENODATA when the caller does not have the file
open (or nothing is bound), ENOENT when the kernel inode does not exist,
EEXIST for XATTR_CREATE over a binding, ENODATA for XATTR_REPLACE without
one, EINVAL for a value that is not an inode number, EPERM for setting the
result attribute, EOPNOTSUPP for any other ``user.process.`` name; loading
errors are the registry's (ENOEXEC for a bad object, EINVAL when the
verifier refuses the program). A description binding wins over a process
binding of the same kind.

**Kinds.**

- *read-stream*: binding takes a frozen view of the file (``fs.freeze``):
  the kernel reads that snapshot while others keep writing the live file,
  and GC keeps its blocks until unbinding; bind again for a fresh one.
  ``pread(fd, n, off)`` then means, as in OpenCSD (FluffleFS runs the
  kernel with the request's size and offset and replies with at most
  ``size`` bytes of its output): the kernel runs over the snapshot's bytes
  ``[off, off + n)`` clipped to the bound range and to the snapshot's size,
  and the read returns the first ``n`` bytes of its output. So one
  ``pread(fd, size, 0)`` gives the whole file's answer (a 2 KiB histogram
  for a 1 GiB file) and ``pread(fd, stride, k * stride)`` one answer per
  stride. A request that does not meet the bound range reads raw data; one
  at or past the snapshot's end returns ``b""``; ``n == 0`` returns ``b""``
  without running the kernel. ``read(fd, n)`` does the same at the
  description's offset and moves the offset past the *file bytes the kernel
  consumed* (not its output's length), so ``while data := read(fd, stride)``
  visits each stride once and stops at the end of the snapshot.
- *write-event*: after each write of ``k > 0`` bytes at ``off`` (through the
  bound description, or by the bound process), the kernel runs over
  ``[off, off + k)`` of the file as it now is; its output replaces the
  binding's result (``getxattr(... "csd_write_event_result")``,
  :meth:`Bindings.event_result`, ``Volume.csd_result(fd)``). A failed run
  leaves the write done, logs the reason, and makes the result read fail
  with EIO until the next successful run.
- *write-stream*: a write whose first byte falls in the bound range is
  transformed before it reaches the file: the kernel sees the caller's
  buffer as its whole file, and its output is written at the write's
  offset instead (a checksum trailer makes it longer, compression shorter).
  The write returns the caller's byte count (all of it was consumed); a
  sequential write moves the offset past the bytes stored, so consecutive
  writes lay transformed records end to end. A failed run fails the write
  with EIO and writes nothing; a transformed write that lands short (the
  volume filled) fails with ENOSPC.

Write kernels use the zcsdfs ABI (``zcsdfs.h``): OpenCSD's ABI has a call
context for read-stream only.

**Faults** of a kernel (memory faults, budget, output limit, denied blocks,
negative status) fail the read or write with EIO and log the reason on the
``zcsdfs.csd`` logger; the volume is untouched. **Accounting**: every run
adds to its ``Kernel.stats``, to :attr:`Bindings.stats` (the volume's
totals, ``Volume.csd_stats()``) and is kept as the binding's ``last`` call.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import weakref

import attrs

from zcsdfs.csd.fadvise import kernel_for
from zcsdfs.csd.fileview import MemoryFile
from zcsdfs.csd.registry import load
from zcsdfs.csd.stats import KernelRun
from zcsdfs.lfs.errors import NotFound
from zcsdfs.lfs.filesystem import XATTR_CREATE, XATTR_REPLACE
from zcsdfs.vfs.errors import os_error
from zcsdfs.vfs.permissions import R, check

READ_STREAM, WRITE_EVENT, WRITE_STREAM = "read-stream", "write-event", "write-stream"
PREFIX = "user.process."
ROLES = {
    "user.process.csd_read_stream": READ_STREAM,
    "user.process.csd_write_event": WRITE_EVENT,
    "user.process.csd_write_stream": WRITE_STREAM,
}
RESULT = "user.process.csd_write_event_result"
POSIX_ADVICE = range(os.POSIX_FADV_NORMAL, os.POSIX_FADV_NOREUSE + 1)

log = logging.getLogger("zcsdfs.csd")


@attrs.define
class CsdStats:
    """What every kernel run on one volume moved and cost (failed runs count in ``failures`` only)."""

    calls: int = 0
    failures: int = 0
    instructions: int = 0
    bytes_read: int = 0  # device -> kernel
    bytes_returned: int = 0  # kernel -> host
    seconds: float = 0.0


class Binding:
    """One kernel bound to one file, over ``[start, start + length)`` (``length`` 0: to the end).

    A read-stream binding holds the frozen ``view`` it reads; runs in flight
    keep it alive past an unbind, and the last one out releases it.
    """

    def __init__(self, kernel, ino: int, start: int = 0, length: int = 0, view=None, value: bytes = b"",
                 *, pid: int = 0, route: str = "fadvise"):
        self.kernel = kernel
        self.ino = ino
        self.pid = pid  # the process that bound it (stats: which process a kernel serves)
        self.route = route  # "fadvise" (an open description's advice range) or "xattr" (the process's)
        self.start = start
        self.end = start + length if length else None
        self.view = view
        self.value = value  # what getxattr returns (xattr route)
        self.result = b""  # write-event: the last run's output
        self.failure: str | None = None  # write-event: why the last run failed
        self.last = None  # the last run's zcsdfs.csd.registry.Call
        self._users = 0
        self._unbound = False
        self._lock = threading.Lock()

    def holds(self, offset: int) -> bool:
        return self.start <= offset and (self.end is None or offset < self.end)

    def meets(self, offset: int, size: int) -> bool:
        """Whether ``[offset, offset + size)`` overlaps the bound range."""
        return offset + size > self.start and (self.end is None or offset < self.end)

    def enter(self) -> bool:
        with self._lock:
            if self._unbound:
                return False
            self._users += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._unbound and not self._users:
                self._drop_view()

    def unbind(self) -> None:
        with self._lock:
            self._unbound = True
            if not self._users:
                self._drop_view()

    def _drop_view(self) -> None:
        if self.view is not None and not self.view.released:
            self.view.release()


class Bindings:
    """Every kernel binding of one ``Vfs``, and the per-(file, process) open counts they need."""

    def __init__(self, vfs):
        self.vfs = vfs
        self.stats = CsdStats()
        self.bound: weakref.WeakSet[Binding] = weakref.WeakSet()  # every binding made (for stats)
        self.budget: int | None = None  # instructions per run; None: the registry's rule
        self._process: dict[tuple[int, int], dict[str, Binding]] = {}
        self._opens: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()

    # -- open descriptions ----------------------------------------------------------------

    def opened(self, of) -> None:
        with self._lock:
            key = (of.ino, of.pid)
            self._opens[key] = self._opens.get(key, 0) + 1

    def closed(self, of) -> None:
        """A description's last reference went: its bindings, and the process's if it was the last open."""
        with self._lock:
            mine, of.csd = list(of.csd.values()), {}
            key = (of.ino, of.pid)
            left = self._opens.get(key, 0) - 1
            if left > 0:
                self._opens[key] = left
            else:
                self._opens.pop(key, None)
                mine += self._process.pop(key, {}).values()
        for binding in mine:
            binding.unbind()

    # -- the fadvise route ----------------------------------------------------------------

    def fadvise(self, of, offset: int, length: int, advice: int) -> bool:
        """Bind for a kernel's advice value (True: handled); NORMAL unbinds and lets the vfs go on."""
        if offset < 0 or length < 0:
            return False
        if advice == os.POSIX_FADV_NORMAL:
            with self._lock:
                gone, of.csd = list(of.csd.values()), {}
            for binding in gone:
                binding.unbind()
            return False
        kernel = None if advice in POSIX_ADVICE else kernel_for(advice)
        if kernel is None:
            return False
        if of.is_dir:
            raise os_error(errno.EISDIR)
        binding = self._new_binding(kernel, of.ino, offset, length, pid=of.pid, route="fadvise")
        with self._lock:
            old = of.csd.get(kernel.kind)
            of.csd[kernel.kind] = binding
        if old is not None:
            old.unbind()
        return True

    def _new_binding(self, kernel, ino: int, start: int = 0, length: int = 0, value: bytes = b"", *,
                     pid: int = 0, route: str = "fadvise") -> Binding:
        if kernel.kind != READ_STREAM and kernel.abi != "zcsdfs":
            raise OSError(errno.EINVAL, f"kernel {kernel.name}: {kernel.kind} kernels use the zcsdfs ABI, "
                                        f"not OpenCSD's")
        view = self.vfs.fs.freeze(ino) if kernel.kind == READ_STREAM else None
        binding = Binding(kernel, ino, start, length, view, value, pid=pid, route=route)
        self.bound.add(binding)
        return binding

    # -- finding the binding of a request -------------------------------------------------

    def any(self, of) -> bool:
        """Whether a kernel could be bound for requests on ``of``: one check lets the write
        path skip both write hooks when none is."""
        return bool(of.csd or self._process)

    def binding(self, of, caller, kind: str) -> Binding | None:
        """The ``kind`` kernel bound for this request: the description's, else the process's."""
        own = of.csd
        if own and kind in own:
            return own[kind]
        if not self._process:
            return None
        pid = of.pid if caller is None else caller.pid
        return self._process.get((of.ino, pid), {}).get(kind)

    def binds_reads(self, ino: int, caller) -> bool:
        """Whether ``caller``'s process has a read-stream kernel bound to ``ino`` (the xattr route)."""
        return bool(self._process) and READ_STREAM in self._process.get((ino, caller.pid), {})

    # -- reads ----------------------------------------------------------------------------

    def read(self, of, size: int, offset: int | None, caller=None) -> bytes | None:
        """A bound read's result, or None when no read-stream kernel covers the request."""
        binding = self.binding(of, caller, READ_STREAM)
        if binding is None:
            return None
        if offset is not None:
            return self._answer(binding, offset, size)[0] if binding.meets(offset, size) else None
        with of.lock:
            if not binding.meets(of.offset, size):
                return None
            data, end = self._answer(binding, of.offset, size)
            of.offset = max(of.offset, end)
            return data

    def _answer(self, binding: Binding, offset: int, size: int) -> tuple[bytes, int]:
        """The kernel's output for ``[offset, offset + size)``, cut to ``size``; and where its input ended."""
        if not binding.enter():
            raise os_error(errno.EIO)  # unbound by another thread mid-request
        try:
            view = binding.view
            lo = max(offset, binding.start)
            hi = min(offset + size, view.size, binding.end if binding.end is not None else view.size)
            if size == 0 or lo >= hi:
                return b"", max(lo, min(offset + size, view.size))
            return self._run(binding, view, lo, hi - lo)[:size], hi
        finally:
            binding.leave()

    def _run(self, binding: Binding, view, offset: int, length: int) -> bytes:
        kernel = binding.kernel
        try:
            call = kernel.call(view, offset, length, budget=self.budget)
        except OSError as exc:
            with self._lock:
                self.stats.failures += 1
            if self.vfs.events.subscribers:
                why = f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror or exc}"
                self.vfs.events.publish(KernelRun(kernel.name, kernel.kind, binding.ino, offset, length,
                                                  0, 0, 0, 0.0, why))
            log.warning("kernel %s (%s) on inode %d failed: %s: %s", kernel.name, kernel.kind, binding.ino,
                        errno.errorcode.get(exc.errno, exc.errno), exc.strerror or exc)
            raise os_error(errno.EIO) from None
        binding.last = call
        with self._lock:
            s = self.stats
            s.calls += 1
            s.instructions += call.instructions
            s.bytes_read += call.bytes_read
            s.bytes_returned += call.bytes_returned
            s.seconds += call.seconds
        if self.vfs.events.subscribers:
            self.vfs.events.publish(KernelRun(kernel.name, kernel.kind, binding.ino, offset, length, call.bytes_read,
                                              call.bytes_returned, call.instructions, call.seconds))
        log.debug("kernel %s on inode %d [%d, +%d): %d B from the device, %d B to the host, %d insns, %.3f ms",
                  kernel.name, binding.ino, offset, length, call.bytes_read, call.bytes_returned,
                  call.instructions, call.seconds * 1e3)
        return call.output

    # -- writes ---------------------------------------------------------------------------

    def transform(self, of, caller, data, offset: int | None):
        """The bytes a write stores: the write-stream kernel's output, or ``data`` unbound."""
        binding = self.binding(of, caller, WRITE_STREAM)
        if binding is None:
            return data
        if of.append:
            at = self.vfs.fs.getattr(of.ino).st_size
        else:
            at = of.offset if offset is None else offset
        if not binding.holds(at):
            return data
        return self._run(binding, MemoryFile([bytes(data)]), 0, None)

    def written(self, of, caller, data, stored, offset: int, done: int) -> int:
        """After ``done`` bytes of ``stored`` (``data`` before a transform) went to ``offset``: run the
        write-event kernel over them; returns the count the caller sees."""
        binding = self.binding(of, caller, WRITE_EVENT)
        if binding is not None and done:
            view = self.vfs.fs.freeze(of.ino)
            try:
                binding.result, binding.failure = self._run(binding, view, offset, done), None
            except OSError as exc:
                binding.failure = exc.strerror
            finally:
                view.release()
        if stored is data:
            return done
        if done < memoryview(stored).nbytes:
            raise os_error(errno.ENOSPC)
        return memoryview(data).nbytes

    def event_result(self, of, caller=None) -> bytes:
        """The last write-event output for this description (or its process); ENODATA unbound."""
        binding = self.binding(of, caller, WRITE_EVENT)
        if binding is None:
            raise os_error(errno.ENODATA)
        return self._result(binding)

    @staticmethod
    def _result(binding: Binding) -> bytes:
        if binding.failure is not None:
            raise os_error(errno.EIO)
        return binding.result

    # -- the xattr route ------------------------------------------------------------------

    @staticmethod
    def handles(name: str) -> bool:
        """Names the bindings own; they never reach the lfs."""
        return name.startswith(PREFIX)

    def getxattr(self, caller, ino: int, name: str) -> bytes:
        bound = self._process.get((ino, caller.pid), {})
        if name == RESULT:
            binding = bound.get(WRITE_EVENT)
            if binding is None:
                raise os_error(errno.ENODATA)
            return self._result(binding)
        if name not in ROLES:
            raise os_error(errno.ENODATA)
        binding = bound.get(ROLES[name])
        if binding is None:
            raise os_error(errno.ENODATA)
        return binding.value

    def setxattr(self, caller, ino: int, name: str, value: bytes, flags: int) -> None:
        if flags & ~(XATTR_CREATE | XATTR_REPLACE):
            raise os_error(errno.EINVAL)
        if name == RESULT:
            raise os_error(errno.EPERM)
        kind = ROLES.get(name)
        if kind is None:
            raise os_error(errno.EOPNOTSUPP)
        key = (ino, caller.pid)
        with self._lock:
            if key not in self._opens:
                raise os_error(errno.ENODATA)
            exists = kind in self._process.get(key, {})
        if flags & XATTR_CREATE and exists:
            raise os_error(errno.EEXIST)
        if flags & XATTR_REPLACE and not exists:
            raise os_error(errno.ENODATA)
        kernel_ino = self._kernel_inode(value)
        kernel = self._load_stored(caller, kernel_ino, kind)
        binding = self._new_binding(kernel, ino, value=str(kernel_ino).encode(), pid=caller.pid, route="xattr")
        with self._lock:
            if key not in self._opens:  # closed meanwhile
                binding.unbind()
                raise os_error(errno.ENODATA)
            old = self._process.setdefault(key, {}).get(kind)
            self._process[key][kind] = binding
        if old is not None:
            old.unbind()

    def removexattr(self, caller, ino: int, name: str) -> None:
        if name == RESULT:
            raise os_error(errno.EPERM)
        kind = ROLES.get(name)
        key = (ino, caller.pid)
        with self._lock:
            bound = self._process.get(key, {})
            binding = bound.pop(kind, None) if kind is not None else None
            if not bound:
                self._process.pop(key, None)
        if binding is None:
            raise os_error(errno.ENODATA)
        binding.unbind()

    def listxattr(self, caller, ino: int) -> list[str]:
        bound = self._process.get((ino, caller.pid), {})
        names = [name for name, kind in ROLES.items() if kind in bound]
        return names + [RESULT] if WRITE_EVENT in bound else names

    @staticmethod
    def _kernel_inode(value: bytes) -> int:
        text = bytes(value).strip(b"\0 \t\n")
        if not text.isdigit():
            raise OSError(errno.EINVAL, f"{bytes(value)!r} is not a kernel inode number")
        return int(text)

    def _load_stored(self, caller, ino: int, kind: str):
        """The kernel whose ELF object is the file at inode ``ino`` of this volume."""
        fs = self.vfs.fs
        try:
            st = fs.getattr(ino)
        except NotFound:
            raise os_error(errno.ENOENT) from None
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"kernel inode {ino} is not a regular file")
        check(caller, st, R)
        return load(fs.read(ino, 0, st.st_size), kind=kind)
