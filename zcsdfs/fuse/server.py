"""The FUSE server: request bytes in, reply bytes out, over a ``Vfs``.

Transport-agnostic (``transport.py``): /dev/fuse and virtio-fs hand
``handle`` one request at a time, as a sequence of readable buffers, from as
many threads as they like, and send back what it returns (a list of buffers
to write as one message, or None when the operation takes no reply). Each
request runs as a ``Caller`` built from its header's uid, gid and pid, so the
vfs checks each operation as it does for the os API. The vfs sees inodes,
not paths, so search permission on the directories above an inode the
kernel has cached is the kernel's to check: mounts that other users can
reach use the kernel's ``default_permissions`` (see ``devfuse.py``).

Sizes a request names are bounded by what INIT negotiated: a READ or
READDIR asks for at most ``max_read`` bytes (a larger one is clamped, a
short answer being legal), and no reply exceeds the protocol's 32-bit
length.

Requests are registered in flight before they run; an INTERRUPT for one
that has not started makes it answer EINTR instead of running, and a long
COPY_FILE_RANGE stops between chunks. (The registry is a dict from unique to
request, and an INTERRUPT only marks the request it finds, so no lock is
needed: each dict operation is atomic.) An INTERRUPT for a request we have
not seen is answered EAGAIN, so the kernel sends it again (the protocol's
rule for an interrupt that overtook its request).

Caching: entries and attributes may be cached by the kernel for
``entry_timeout``/``attr_timeout`` seconds, and files open with
``FOPEN_KEEP_CACHE``: every change goes through this one mount, so the
kernel's page cache never goes stale behind its back. With
``writeback_cache`` the kernel buffers writes and sends them later, in large
batches, possibly on another handle of the file: it then owns O_APPEND
positioning and mtime (sent as SETATTR), so handles are opened without
O_APPEND and reads are served on write-only handles (the kernel reads pages
to fill partial writes).

Negative entries (``negative_timeout``, 0 by default, as in libfuse): a
LOOKUP of a missing name is answered "no such name, for this long" instead
of ENOENT, and the kernel skips asking again until then. Names made through
the mount (by any process) replace the negative entry at once, since the
kernel creates them through it; a name made behind the kernel's back (the
volume used in-process while mounted) stays invisible through the mount
until the timeout, as a changed attribute does until ``attr_timeout``.

Dropping privileges on write: without help the kernel asks GETXATTR
``security.capability`` before every write (to learn whether it must remove
it), which costs a round trip per write. We negotiate
``HANDLE_KILLPRIV_V2`` instead and the vfs keeps its promise: a write,
truncate or chown removes ``security.capability``, and setuid (and setgid
with group execute) go when the caller lacks CAP_FSETID. The vfs drops
those bits for callers other than root (its model of CAP_FSETID); the
kernel's KILL_SUIDGID flags, passed on as ``kill_suidgid``, add root
callers without the capability. The kernel then marks inodes it has
checked ``S_NOSEC`` and skips the question until their attributes are next
refreshed.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import struct
import threading
import time

import attrs

from zcsdfs.fuse import protocol as p
from zcsdfs.fuse.nodes import NodeTable
from zcsdfs.fuse.protocol import InitFlag, Opcode, ProtocolError, Request
from zcsdfs.fuse.stats import CPU_SAMPLE, RequestTally, ServerStats, server_stats
from zcsdfs.fuse.transport import Limits, Reply
from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.errors import bad_fd, os_error

log = logging.getLogger(__name__)

COPY_MAX = 1 << 30  # the reply's size is 32 bits; the kernel asks again for the rest
WANTED = (InitFlag.ASYNC_READ | InitFlag.ATOMIC_O_TRUNC | InitFlag.BIG_WRITES | InitFlag.DO_READDIRPLUS
          | InitFlag.READDIRPLUS_AUTO | InitFlag.ASYNC_DIO | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES
          | InitFlag.CACHE_SYMLINKS | InitFlag.HANDLE_KILLPRIV_V2 | InitFlag.INIT_EXT
          | InitFlag.DIRECT_IO_ALLOW_MMAP)
# Requests that may keep a worker busy for long (they move much data, sync the device or walk a
# whole directory); a transport with several workers lets another take over reading first.
LONG_RUNNING = frozenset({Opcode.FSYNC, Opcode.FSYNCDIR, Opcode.FALLOCATE, Opcode.COPY_FILE_RANGE,
                          Opcode.SETATTR, Opcode.READDIR, Opcode.READDIRPLUS})
BIG_IO = 64 << 10
CAPABILITY = "security.capability"
PAGE = 4096
DEFAULT_MAX_PAGES = 32  # what the kernel sends without MAX_PAGES
MAX_PAGES = 256         # the most the kernel accepts in INIT's max_pages (fuse_max_pages_limit)
MAX_PAYLOAD = (1 << 32) - 1 - p.OUT_HEADER.size  # fuse_out_header's length is 32 bits
_LENGTH_OPCODE = struct.Struct("<II")
_OUT_PACK, _OUT_SIZE = p.OUT_HEADER.pack, p.OUT_HEADER.size
_ENTRY_PACK = p.ENTRY_HEAD.pack
_INTERRUPT, _INIT, _NO_REPLY = Opcode.INTERRUPT, Opcode.INIT, p.NO_REPLY
_thread_ns, _perf_ns, _random = time.thread_time_ns, time.perf_counter_ns, random.random
_READ_SIZE = struct.Struct("<I")
_READ_SIZE_AT = p.IN_HEADER.size + 16  # fuse_read_in: fh, offset, then size
_LONG_HEAD = _READ_SIZE_AT + _READ_SIZE.size
_length_opcode, _read_size = _LENGTH_OPCODE.unpack_from, _READ_SIZE.unpack_from
_WRITE, _READ, _LONG_RUNNING = int(Opcode.WRITE), int(Opcode.READ), frozenset(map(int, LONG_RUNNING))


def _head(request, n: int):
    """The first ``n`` bytes of ``request`` (a sequence of buffers) as one buffer, or fewer if
    it is shorter; the first buffer itself when it is long enough (always, for /dev/fuse)."""
    first = request[0] if request else b""
    if len(first) >= n or len(request) <= 1:
        return first
    return p.head_bytes([memoryview(b).cast("B") for b in request], n)


def long_running(request) -> bool:
    """Whether serving ``request`` (its buffers, not yet parsed) may take long: a large READ or
    WRITE, or one of ``LONG_RUNNING``. Malformed requests are quick (they are refused)."""
    head = request[0] if len(request) == 1 else _head(request, _LONG_HEAD)
    if len(head) < _LONG_HEAD:
        return False
    length, opcode = _length_opcode(head)
    if opcode == _WRITE:
        return length > BIG_IO
    if opcode == _READ:
        return _read_size(head, _READ_SIZE_AT)[0] > BIG_IO
    return opcode in _LONG_RUNNING


def interruptible(request) -> bool:
    """Whether ``request`` (its buffers) is one that stops early when an INTERRUPT names it."""
    head = _head(request, _LENGTH_OPCODE.size)
    if len(head) < _LENGTH_OPCODE.size:
        return False
    return _LENGTH_OPCODE.unpack_from(head)[1] == Opcode.COPY_FILE_RANGE


@attrs.define(slots=True)
class Handle:
    """What a file handle (``fh``) given to the kernel stands for: an open description, whether
    it was opened for direct I/O (FOPEN_DIRECT_IO), whether its reads are the program's own
    (O_DIRECT, or a CSD kernel bound when it was opened: see ``Server.read``), and a
    directory's listing as READDIR saw it at offset 0 (so later offsets stay stable)."""

    of: object
    direct: bool = False
    own_reads: bool = False
    listing: list | None = None


@attrs.frozen
class Options:
    """What the server promises the kernel (what the transport can carry is its ``Limits``)."""

    entry_timeout: float = 1.0
    attr_timeout: float = 1.0
    negative_timeout: float = 0.0
    writeback_cache: bool = False
    max_write: int = 1 << 20
    max_readahead: int = 1 << 20


class ProcessCaller(Caller):
    """A request's caller whose supplementary groups are read from /proc only if a check asks.

    Reading them costs 16 us here, more than most requests take, and most checks
    are settled by the uid or gid alone (a file of the caller's own).
    """

    def __init__(self, uid: int, gid: int, pid: int):
        for field, value in (("uid", uid), ("gid", gid), ("pid", pid)):
            object.__setattr__(self, field, value)

    def __getattr__(self, name: str):
        if name != "groups":
            raise AttributeError(name)
        groups = proc_groups(self.pid)
        object.__setattr__(self, "groups", groups)
        self.__dict__["groups_read"] = True  # Server._caller builds a fresh caller from now on
        return groups


def proc_groups(pid: int) -> frozenset[int]:
    """The supplementary groups of process ``pid`` (empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Groups:"):
                    return frozenset(int(g) for g in line.split()[1:])
    except OSError:
        pass  # the process exited: it keeps only its uid and gid
    return frozenset()


class Server:
    """Serves one FUSE connection. ``limits`` are the transport's (``Transport.limits``).

    ``unexpected`` counts requests that failed by a bug (an exception other
    than OSError or ProtocolError), each answered EIO so that a bug costs one
    request, not the mount; with ``strict`` such an exception propagates
    instead (tests set it, so a bug fails the test).
    """

    def __init__(self, vfs, options: Options = Options(), limits: Limits = Limits()):
        self.vfs = vfs
        self.options = options
        self.limits = limits
        self.nodes = NodeTable(vfs.root)
        self.minor = 0  # negotiated protocol minor version; 0 until INIT
        self.flags = InitFlag(0)
        self.max_write = 0  # negotiated at INIT: the most a WRITE carries
        self.max_read = DEFAULT_MAX_PAGES * PAGE  # the most a READ or READDIR reply carries
        self.unexpected = 0
        self.tally = RequestTally()  # requests per opcode and their latencies (stats.py)
        self.strict = False
        self.initialized = threading.Event()
        self._ready = False  # initialized, as a plain attribute for the request path
        self._last_caller = Caller(-1, -1, frozenset(), -1)
        self._timeouts(options)
        self.destroyed = threading.Event()
        self._handles: dict[int, Handle] = {}
        self._next_fh = 1
        self._lock = threading.Lock()
        self._in_flight: dict[int, Request] = {}  # unique -> request
        self._ops = {
            Opcode.INIT: self.init, Opcode.DESTROY: self.destroy,
            Opcode.LOOKUP: self.lookup, Opcode.FORGET: self.forget, Opcode.BATCH_FORGET: self.batch_forget,
            Opcode.GETATTR: self.getattr, Opcode.SETATTR: self.setattr, Opcode.READLINK: self.readlink,
            Opcode.SYMLINK: self.symlink, Opcode.MKNOD: self.mknod, Opcode.MKDIR: self.mkdir,
            Opcode.UNLINK: self.unlink, Opcode.RMDIR: self.rmdir, Opcode.RENAME: self.rename,
            Opcode.RENAME2: self.rename2, Opcode.LINK: self.link, Opcode.OPEN: self.open,
            Opcode.CREATE: self.create, Opcode.READ: self.read, Opcode.WRITE: self.write,
            Opcode.FLUSH: self.flush, Opcode.RELEASE: self.release, Opcode.FSYNC: self.fsync,
            Opcode.STATFS: self.statfs, Opcode.SETXATTR: self.setxattr, Opcode.GETXATTR: self.getxattr,
            Opcode.LISTXATTR: self.listxattr, Opcode.REMOVEXATTR: self.removexattr,
            Opcode.OPENDIR: self.opendir, Opcode.READDIR: self.readdir, Opcode.READDIRPLUS: self.readdirplus,
            Opcode.RELEASEDIR: self.release, Opcode.FSYNCDIR: self.fsyncdir, Opcode.ACCESS: self.access,
            Opcode.FALLOCATE: self.fallocate, Opcode.LSEEK: self.lseek,
            Opcode.COPY_FILE_RANGE: self.copy_file_range,
        }

    # -- framing ------------------------------------------------------------------------------

    def handle(self, request) -> Reply | None:
        """Serve one request, given as a sequence of readable buffers (one for /dev/fuse, a
        descriptor chain's readable part for virtio-fs); returns the reply's buffers, or None
        when none is due. Its CPU time (parsing included) is counted for its opcode, if it falls
        in the sample (``stats.CPU_SAMPLE``)."""
        cpu, started = _thread_ns() if _random() < CPU_SAMPLE else None, _perf_ns()
        try:
            req = p.parse(request)
        except ProtocolError as exc:
            log.warning("dropping request: %s", exc)
            return None if exc.unique is None else self._error(exc.unique, exc.errno)
        opcode = req.opcode
        if opcode == _INTERRUPT:
            return self.interrupt(req)
        if opcode not in _NO_REPLY:
            self._in_flight[req.unique] = req  # begin(req), inlined
        return self._run(req, started, cpu)

    def begin(self, req: Request) -> None:
        """Register ``req`` as in flight, so an INTERRUPT can find it."""
        if req.opcode not in _NO_REPLY:
            self._in_flight[req.unique] = req

    def run(self, req: Request) -> Reply | None:
        """Execute a registered request and build its reply."""
        return self._run(req, _perf_ns(), _thread_ns() if _random() < CPU_SAMPLE else None)

    def _run(self, req: Request, started: int, cpu: int | None) -> Reply | None:
        opcode = req.opcode
        try:
            if req.interrupted:
                raise os_error(errno.EINTR)
            op = self._ops.get(opcode)
            if op is None:
                raise os_error(errno.ENOSYS)
            if not self._ready and opcode != _INIT:
                raise os_error(errno.EIO)
            payload = op(req, self._caller(req))
        except ProtocolError as exc:
            log.warning("bad request: %s", exc)
            return self._failed(req, exc.errno)
        except OSError as exc:
            return self._failed(req, exc.errno)
        except Exception:  # a bug must cost one request, not the mount
            self.unexpected += 1
            if self.strict:
                raise
            log.exception("%s failed", Opcode(opcode).name if opcode in Opcode._value2member_map_ else opcode)
            return self._failed(req, errno.EIO)
        finally:
            self._in_flight.pop(req.unique, None)
            self.tally.record(opcode, _perf_ns() - started, None if cpu is None else _thread_ns() - cpu)
        if opcode in _NO_REPLY:
            return None
        if payload.__class__ is bytes:  # most replies: one piece
            length = len(payload)
            if length > MAX_PAYLOAD:  # every size a request names is bounded before this
                return self._unframed(req, length)
            return [_OUT_PACK(_OUT_SIZE + length, 0, req.unique), payload]
        if isinstance(payload, list):
            length = sum(map(len, payload))
            if length > MAX_PAYLOAD:
                return self._unframed(req, length)
            return [_OUT_PACK(_OUT_SIZE + length, 0, req.unique), *payload]
        length = len(payload)
        if length > MAX_PAYLOAD:
            return self._unframed(req, length)
        return [_OUT_PACK(_OUT_SIZE + length, 0, req.unique), payload]

    def _unframed(self, req: Request, length: int) -> Reply:
        """A reply too long for the header's 32-bit length: a bug, answered EIO."""
        self.unexpected += 1
        if self.strict:
            raise AssertionError(f"a reply of {length} bytes to opcode {req.opcode}")
        log.error("a reply of %d bytes to opcode %d cannot be framed", length, req.opcode)
        return self._failed(req, errno.EIO)

    def _failed(self, req: Request, code: int | None) -> list | None:
        """The error reply (EIO for an errno the protocol cannot carry); none for NO_REPLY operations."""
        if req.opcode in p.NO_REPLY:
            return None
        return self._error(req.unique, code if isinstance(code, int) and 0 < code < 4096 else errno.EIO)

    @staticmethod
    def _error(unique: int, code: int) -> list:
        return [p.out_header(unique, code, 0)]

    def interrupt(self, req: Request) -> list | None:
        try:
            (target,) = p.unpack(p.INTERRUPT_IN, req)
        except ProtocolError as exc:
            log.warning("dropping interrupt: %s", exc)  # the kernel expects no answer to a bad one
            return None
        running = self._in_flight.get(target)
        if running is None:
            return self._error(req.unique, errno.EAGAIN)
        running.interrupted = True
        return None

    def _caller(self, req: Request) -> Caller:
        """The request's caller, built once for a stream of requests from one process: the last
        one is used again while the same process asks and nothing has read its groups from
        /proc yet (a ProcessCaller's are read when a check first asks, and must be as fresh
        as they would be for a caller of its own)."""
        uid, gid, pid = req.uid, req.gid, req.pid
        last = self._last_caller
        if last.pid == pid and last.uid == uid and last.gid == gid and (
                last.__class__ is Caller or not last.__dict__):
            return last
        if self.limits.local_callers and uid and pid:
            caller = ProcessCaller(uid, gid, pid)  # its groups are read from /proc when a check asks
        else:
            caller = Caller(uid, gid, frozenset(), pid)
        self._last_caller = caller
        return caller

    # -- helpers ------------------------------------------------------------------------------

    def _ino(self, req: Request) -> int:
        return self.nodes.ino(req.nodeid)

    def _name(self, req: Request, offset: int = 0, count: int = 1) -> list[str]:
        found = p.names(req, offset, count)
        for name in found:
            if "/" in name:
                raise ProtocolError(errno.EINVAL, "a name with a slash", req.unique)
        return found

    def _timeouts(self, options: Options) -> None:
        """What ``_entry`` and ``_attr`` pack for the timeouts, split once (p.entry_out, p.attr_out)."""
        es, ens = p.split_seconds(options.entry_timeout)
        at, ans = p.split_seconds(options.attr_timeout)
        self._entry_times = (es, at, ens, ans)
        self._attr_head = p.ATTR_OUT_HEAD.pack(at, ans, 0)

    def _entry(self, ino: int) -> bytes:
        st = self.vfs.getattr(ino)
        return _ENTRY_PACK(self.nodes.remember(ino), 0, *self._entry_times) + p.attr(st)

    def _attr(self, ino: int) -> bytes:
        return self._attr_head + p.attr(self.vfs.getattr(ino))

    def _add_handle(self, of, direct: bool = False, own_reads: bool = False) -> int:
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = Handle(of, direct, own_reads)
            return fh

    def stats(self, transport: str = "fuse") -> ServerStats:
        """Requests per opcode with latency percentiles, requests in flight, open handles."""
        return server_stats(self.tally, transport=transport, in_flight=len(self._in_flight),
                            open_handles=len(self._handles), unexpected=self.unexpected)

    def close_handles(self) -> int:
        """Close every handle the client left open (a guest that rebooted never sends RELEASE
        for them); returns how many there were."""
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            self.vfs.close(handle.of)
        return len(handles)

    def _handle(self, fh: int) -> Handle:
        try:
            return self._handles[fh]
        except KeyError:
            raise bad_fd() from None

    def _file(self, fh: int):
        """The open description behind ``fh``."""
        return self._handle(fh).of

    @staticmethod
    def _sized(data: bytes, size: int) -> bytes:
        """The xattr calls' convention: size 0 asks for the length, too small a buffer is ERANGE."""
        if size == 0:
            return p.GETXATTR_OUT.pack(len(data), 0)
        if len(data) > size:
            raise os_error(errno.ERANGE)
        return data

    # -- session ------------------------------------------------------------------------------

    def init(self, req: Request, caller: Caller):
        major, minor, max_readahead, flags = p.unpack(p.INIT_IN, req, p.INIT_IN_MIN)[:4]
        if major > p.MAJOR:
            return p.INIT_OUT.pack(p.MAJOR, p.MINOR, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # kernel retries with 7
        if major < p.MAJOR or minor < p.MIN_MINOR:
            log.error("kernel speaks FUSE %d.%d; %d.%d or later is needed", major, minor, p.MAJOR, p.MIN_MINOR)
            raise os_error(errno.EPROTO)
        offered = flags
        if flags & InitFlag.INIT_EXT and len(req.body) >= p.INIT_IN.size:
            offered |= p.unpack(p.INIT_IN, req)[4] << 32
        wanted = WANTED | self.limits.init_flags | (InitFlag.WRITEBACK_CACHE if self.options.writeback_cache else 0)
        self.flags = InitFlag(offered & wanted)
        self.minor = min(minor, p.MINOR)
        pages = MAX_PAGES if InitFlag.MAX_PAGES in self.flags else DEFAULT_MAX_PAGES
        if self.limits.max_pages is not None:
            pages = max(1, min(pages, self.limits.max_pages))
        self.max_write = max_write = max(PAGE, min(self.options.max_write, pages * PAGE))
        self.max_read = pages * PAGE
        self._ready = True
        self.initialized.set()
        return p.INIT_OUT.pack(p.MAJOR, self.minor, min(max_readahead, self.options.max_readahead),
                               int(self.flags) & 0xFFFFFFFF, 64, 48, max_write, 1,
                               pages, 0, int(self.flags) >> 32, 0)

    def destroy(self, req: Request, caller: Caller):
        self.destroyed.set()
        return b""

    # -- names --------------------------------------------------------------------------------

    def lookup(self, req: Request, caller: Caller):
        (name,) = self._name(req)
        try:
            ino = self.vfs.lookup(caller, name, self._ino(req), follow=False)
        except FileNotFoundError:
            if not self.options.negative_timeout:
                raise
            return p.negative_entry(self.options.negative_timeout)
        return self._entry(ino)

    def forget(self, req: Request, caller: Caller):
        (nlookup,) = p.unpack(p.FORGET_IN, req)
        self.nodes.forget(req.nodeid, nlookup)

    def batch_forget(self, req: Request, caller: Caller):
        count, _ = p.unpack(p.BATCH_FORGET_IN, req)
        need = p.BATCH_FORGET_IN.size + count * p.FORGET_ONE.size
        if len(req.body) < need:
            raise ProtocolError(errno.EINVAL, f"BATCH_FORGET of {count} in {len(req.body)} bytes")
        for nodeid, nlookup in p.FORGET_ONE.iter_unpack(req.body[p.BATCH_FORGET_IN.size:need]):
            self.nodes.forget(nodeid, nlookup)

    def mknod(self, req: Request, caller: Caller):
        mode, rdev, _umask, _ = p.unpack(p.MKNOD_IN, req)
        (name,) = self._name(req, p.MKNOD_IN.size)
        return self._entry(self.vfs.mknod(caller, name, self._ino(req), mode, p.decode_dev(rdev)))

    def mkdir(self, req: Request, caller: Caller):
        mode, _umask = p.unpack(p.MKDIR_IN, req)
        (name,) = self._name(req, p.MKDIR_IN.size)
        return self._entry(self.vfs.mkdir(caller, name, self._ino(req), mode))

    def symlink(self, req: Request, caller: Caller):
        name, target = p.names(req, 0, 2)
        if "/" in name:
            raise ProtocolError(errno.EINVAL, "a name with a slash", req.unique)
        return self._entry(self.vfs.symlink(caller, target, name, self._ino(req)))

    def link(self, req: Request, caller: Caller):
        (old,) = p.unpack(p.LINK_IN, req)
        (name,) = self._name(req, p.LINK_IN.size)
        ino = self.nodes.ino(old)
        self.vfs.link_inode(caller, ino, self._ino(req), name)
        return self._entry(ino)

    def unlink(self, req: Request, caller: Caller):
        (name,) = self._name(req)
        self.vfs.unlink(caller, name, self._ino(req))
        return b""

    def rmdir(self, req: Request, caller: Caller):
        (name,) = self._name(req)
        self.vfs.rmdir(caller, name, self._ino(req))
        return b""

    def rename(self, req: Request, caller: Caller):
        (newdir,) = p.unpack(p.RENAME_IN, req)
        return self._rename(req, caller, newdir, 0, p.RENAME_IN.size)

    def rename2(self, req: Request, caller: Caller):
        newdir, flags, _ = p.unpack(p.RENAME2_IN, req)
        return self._rename(req, caller, newdir, flags, p.RENAME2_IN.size)

    def _rename(self, req: Request, caller: Caller, newdir: int, flags: int, offset: int):
        old, new = self._name(req, offset, 2)
        self.vfs.rename(caller, old, self._ino(req), new, self.nodes.ino(newdir), flags)
        return b""

    def readlink(self, req: Request, caller: Caller):
        return os.fsencode(self.vfs.readlink_inode(self._ino(req)))

    # -- attributes ---------------------------------------------------------------------------

    def getattr(self, req: Request, caller: Caller):
        return self._attr(self._ino(req))

    def setattr(self, req: Request, caller: Caller):
        (valid, _, fh, size, _owner, atime, mtime, _ctime, atimensec, mtimensec, _ctimensec,
         mode, _, uid, gid, _) = p.unpack(p.SETATTR_IN, req)
        ino, vfs = self._ino(req), self.vfs
        if valid & p.FATTR_MODE:
            vfs.chmod(caller, ino, mode)
        if valid & (p.FATTR_UID | p.FATTR_GID):
            vfs.chown(caller, ino, uid if valid & p.FATTR_UID else -1, gid if valid & p.FATTR_GID else -1)
        if valid & p.FATTR_SIZE:
            by_handle = bool(valid & p.FATTR_FH)  # ftruncate: checked when the file was opened
            if by_handle:
                self._handle(fh)
            vfs.truncate(caller, ino, size, check_access=not by_handle,
                         kill_suidgid=bool(valid & p.FATTR_KILL_SUIDGID))
        if valid & (p.FATTR_ATIME | p.FATTR_MTIME):
            now = time.time_ns()
            explicit = (valid & p.FATTR_ATIME and not valid & p.FATTR_ATIME_NOW
                        or valid & p.FATTR_MTIME and not valid & p.FATTR_MTIME_NOW and not self._local_mtime(valid))

            def when(bit, now_bit, secs, nsecs):  # the lfs clamps what it cannot hold
                if not valid & bit:
                    return None
                return now if valid & now_bit else secs * 10**9 + nsecs

            vfs.utime(caller, ino, when(p.FATTR_ATIME, p.FATTR_ATIME_NOW, atime, atimensec),
                      when(p.FATTR_MTIME, p.FATTR_MTIME_NOW, mtime, mtimensec), not explicit)
        return self._attr(ino)

    def _local_mtime(self, valid: int) -> bool:
        """Whether an mtime without MTIME_NOW is the kernel's own clock, not the caller's choice.

        With ``writeback_cache`` the kernel keeps mtime itself and sends its
        value instead of "now": for touch(1) (with ATIME_NOW, as it always
        sends for atime) and when it flushes the mtime of cached writes
        (without atime). Either is allowed to anyone who may write, as "now"
        is. (A program asking utimensat for "atime now, this mtime" looks the
        same, so a writer could choose its mtime: the price of the cache.)"""
        return self.options.writeback_cache and (not valid & p.FATTR_ATIME or bool(valid & p.FATTR_ATIME_NOW))

    def access(self, req: Request, caller: Caller):
        mask, _ = p.unpack(p.ACCESS_IN, req)
        self.vfs.access_inode(caller, self._ino(req), mask)
        return b""

    def statfs(self, req: Request, caller: Caller):
        return p.statfs_out(self.vfs.statfs())

    # -- extended attributes ------------------------------------------------------------------

    def setxattr(self, req: Request, caller: Caller):
        fixed = p.SETXATTR_IN.size if self.flags & InitFlag.SETXATTR_EXT else p.COMPAT_SETXATTR_IN_SIZE
        size, flags, _, _ = p.unpack(p.SETXATTR_IN, req, fixed)
        (name,) = p.names(req, fixed, 1)
        start = fixed + len(os.fsencode(name)) + 1
        value = req.body[start:start + size]
        if len(value) != size:
            raise ProtocolError(errno.EINVAL, f"SETXATTR value of {len(value)} bytes, header says {size}")
        self.vfs.setxattr(caller, self._ino(req), name, bytes(value), flags)
        return b""

    def getxattr(self, req: Request, caller: Caller):
        """``security.capability`` of a file without extended attributes is answered ENODATA
        from the inode's (empty) list, without the vfs's checks, which reading a security
        name never needs: the kernel asks it before the first write to each file when it keeps
        the cache (``writeback_cache``), and every small file pays that round trip."""
        size, _ = p.unpack(p.GETXATTR_IN, req)
        (name,) = p.names(req, p.GETXATTR_IN.size, 1)
        ino = self._ino(req)
        if name == CAPABILITY and not self.vfs.fs.listxattr(ino):
            raise os_error(errno.ENODATA)
        return self._sized(self.vfs.getxattr(caller, ino, name), size)

    def listxattr(self, req: Request, caller: Caller):
        size, _ = p.unpack(p.GETXATTR_IN, req)
        listed = b"".join(os.fsencode(n) + b"\0" for n in self.vfs.listxattr(caller, self._ino(req)))
        return self._sized(listed, size)

    def removexattr(self, req: Request, caller: Caller):
        (name,) = p.names(req, 0, 1)
        self.vfs.removexattr(caller, self._ino(req), name)
        return b""

    # -- open files ---------------------------------------------------------------------------

    def _open_flags(self, flags: int) -> int:
        return flags & ~os.O_APPEND if self.options.writeback_cache else flags

    def _opened(self, of, flags: int, caller: Caller) -> bytes:
        """FOPEN_NOFLUSH: close(2) need not send FLUSH, as every write is in the log when it is answered
        (the kernel ignores the flag with writeback_cache, where FLUSH pushes its dirty pages first).

        FOPEN_DIRECT_IO, so the handle's requests reach us as the program made them, without the
        page cache (the kernel keeps the cache other handles use coherent: it drops the range of a
        direct write, and with DIRECT_IO_ALLOW_MMAP writes back mapped pages first):
        - for a write-only handle: it can never read what the cache would keep, so its writes skip
          the copy into the cache (half the cost of a large write-through write).
        - for a read-write handle on an empty file (new, or truncated by the open): nothing of the
          file is cached to lose, and such a handle mostly writes (fio, a program writing a new
          file it may read back); its own reads are answered by us, from the log, like O_DIRECT's.
          A read-write handle on a file with data keeps the cache: it reads what is there. (Its
          reads are not the program's own to a CSD kernel bound later: they get the bytes, as
          they would from the cache.)
        - for O_DIRECT, and for a process with a CSD kernel bound to the file (the xattr route): a
          bound read must run the kernel over exactly the range asked, and its answer must not
          enter the cache every process reads (see ``read``). Without the flag the kernel would
          complete a short direct read from the page cache."""
        access = flags & os.O_ACCMODE
        cached = of.is_dir or self.options.writeback_cache
        own_reads = not cached and bool(flags & os.O_DIRECT or self.vfs.csd.binds_reads(of.ino, caller))
        direct = own_reads or not cached and (
            access == os.O_WRONLY
            or access == os.O_RDWR and bool(flags & os.O_TRUNC or not self.vfs.getattr(of.ino).st_size))
        fh = self._add_handle(of, direct, own_reads)
        return p.OPEN_OUT.pack(fh, p.FOPEN_KEEP_CACHE | p.FOPEN_NOFLUSH | (p.FOPEN_DIRECT_IO if direct else 0), 0)

    def open(self, req: Request, caller: Caller):
        flags, open_flags = p.unpack(p.OPEN_IN, req)
        of = self.vfs.open_inode(caller, self._ino(req), self._open_flags(flags),
                                 kill_suidgid=bool(open_flags & p.FUSE_OPEN_KILL_SUIDGID))
        return self._opened(of, flags, caller)

    def create(self, req: Request, caller: Caller):
        flags, mode, _umask, open_flags = p.unpack(p.CREATE_IN, req)
        (name,) = self._name(req, p.CREATE_IN.size)
        of = self.vfs.open(caller, name, self._ino(req), self._open_flags(flags) | os.O_CREAT, mode,
                           kill_suidgid=bool(open_flags & p.FUSE_OPEN_KILL_SUIDGID))
        try:
            entry = self._entry(of.ino)
        except OSError:
            self.vfs.close(of)
            raise
        return [entry, self._opened(of, flags, caller)]

    def read(self, req: Request, caller: Caller):
        """Only a read on a handle opened with O_DIRECT, or while the caller had a CSD kernel bound
        (``Handle.own_reads``: a direct-I/O handle), is the program's own read (its offset and
        size) and may be answered by the caller's CSD kernel. Any other READ fills the page cache, which
        every process reads, in the kernel's offsets and sizes: it gets the file's bytes."""
        fh, offset, size, *_ = p.unpack(p.READ_IN, req)
        size = min(size, self.max_read)  # the kernel asks no more; a short read is an answer
        handle = self._handle(fh)
        of = handle.of
        if self.options.writeback_cache and not of.readable and not of.is_dir:
            return self.vfs.read_for_cache(of, size, offset)  # the kernel filling a partly written page
        return self.vfs.read(of, size, offset, caller=caller, kernels=handle.own_reads)

    def write(self, req: Request, caller: Caller):
        fh, offset, size, write_flags, *_ = p.unpack(p.WRITE_IN, req)
        data = req.body[p.WRITE_IN.size:p.WRITE_IN.size + size]
        if len(data) != size:
            raise ProtocolError(errno.EINVAL, f"WRITE of {size} bytes carries {len(data)}", req.unique)
        done = self.vfs.write(caller, self._file(fh), data, offset,
                              kill_suidgid=bool(write_flags & p.FUSE_WRITE_KILL_SUIDGID))
        return p.WRITE_OUT.pack(done, 0)

    def flush(self, req: Request, caller: Caller):
        fh, *_ = p.unpack(p.FLUSH_IN, req)
        self._handle(fh)  # every write is in the log already; close(2) promises no more
        return b""

    def release(self, req: Request, caller: Caller):
        fh, *_ = p.unpack(p.RELEASE_IN, req)
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is None:
            raise bad_fd()
        self.vfs.close(handle.of)
        return b""

    def fsync(self, req: Request, caller: Caller):
        fh, flags, _ = p.unpack(p.FSYNC_IN, req)
        self.vfs.fsync(self._file(fh), data_only=bool(flags & p.FUSE_FSYNC_FDATASYNC))
        return b""

    def fsyncdir(self, req: Request, caller: Caller):
        self.vfs.fsync_inode(self._ino(req))
        return b""

    def fallocate(self, req: Request, caller: Caller):
        fh, offset, length, mode, _ = p.unpack(p.FALLOCATE_IN, req)
        self.vfs.fallocate(self._file(fh), offset, length, mode)
        return b""

    def lseek(self, req: Request, caller: Caller):
        fh, offset, whence, _ = p.unpack(p.LSEEK_IN, req)
        return p.LSEEK_OUT.pack(self.vfs.seek(self._file(fh), offset, whence))

    def copy_file_range(self, req: Request, caller: Caller):
        fh_in, off_in, _nodeid_out, fh_out, off_out, length, flags = p.unpack(p.COPY_FILE_RANGE_IN, req)
        if flags:
            raise os_error(errno.EINVAL)
        done = self.vfs.copy_range(caller, self._file(fh_in), self._file(fh_out), min(length, COPY_MAX),
                                   off_in, off_out, stop=lambda: req.interrupted)
        return p.WRITE_OUT.pack(done, 0)

    # -- directories --------------------------------------------------------------------------

    def opendir(self, req: Request, caller: Caller):
        of = self.vfs.open_inode(caller, self._ino(req), os.O_RDONLY | os.O_DIRECTORY)
        if not of.is_dir:
            self.vfs.close(of)
            raise os_error(errno.ENOTDIR)
        return p.OPEN_OUT.pack(self._add_handle(of), 0, 0)

    def _listing(self, handle: Handle, caller: Caller, offset: int) -> list:
        """The directory as READDIR sees it: a snapshot taken at offset 0, so offsets stay stable."""
        if offset == 0 or handle.listing is None:
            of = handle.of
            entries = self.vfs.readdir(caller, of.ino)
            handle.listing = [(".", of.ino, 0o040000), ("..", self.vfs.parent(of.ino), 0o040000),
                              *((e.name, e.ino, e.type) for e in entries)]
        return handle.listing

    def readdir(self, req: Request, caller: Caller):
        fh, offset, size, *_ = p.unpack(p.READ_IN, req)
        size = min(size, self.max_read)
        handle = self._handle(fh)
        out, used = [], 0
        for i, (name, ino, mode) in enumerate(self._listing(handle, caller, offset)[offset:], offset):
            ent = p.dirent(ino, i + 1, os.fsencode(name), mode)
            if used + len(ent) > size:
                break
            out.append(ent)
            used += len(ent)
        return b"".join(out)  # one piece: a reply of many entries would be too many for one writev

    def readdirplus(self, req: Request, caller: Caller):
        fh, offset, size, *_ = p.unpack(p.READ_IN, req)
        size = min(size, self.max_read)
        handle = self._handle(fh)
        out, used = [], 0
        for i, (name, ino, mode) in enumerate(self._listing(handle, caller, offset)[offset:], offset):
            ent = p.dirent(ino, i + 1, os.fsencode(name), mode)
            if used + p.ENTRY_OUT_SIZE + len(ent) > size:
                break
            if name in (".", ".."):
                entry = p.empty_entry()
            else:
                try:
                    entry = self._entry(ino)
                except OSError:  # removed since the listing was taken
                    entry = p.empty_entry()
            out += (entry, ent)
            used += p.ENTRY_OUT_SIZE + len(ent)
        return b"".join(out)
