"""virtio-fs over vhost-user: the FUSE server serving a QEMU guest's ``vhost-user-fs-pci`` device.

The device has a high-priority queue (0: FORGET, which needs no reply) and
``request_queues`` request queues (1..N), each served by its own worker
(``vhost_user.Backend``). A request is a descriptor chain read as a byte
stream: the readable part is the FUSE request, the writable part receives
the reply, and the used length is the reply's length. QEMU itself answers the
guest's config reads (the tag and the number of request queues).

What differs from /dev/fuse: the guest sends no INTERRUPT (one is answered
ENOSYS) and gets no notifications; it sends DESTROY when it unmounts; a
request carries at most queue size - 4 pages whatever ``max_write`` says,
so the INIT reply's ``max_pages`` and ``max_write`` are capped to that; DAX
is not offered (SETUPMAPPING/REMOVEMAPPING are ENOSYS, as any unknown
opcode). The pid in a request is the guest's, so the caller's supplementary
groups are not looked up in our /proc.

A guest that reboots sends INIT again without DESTROY: the files the old
session held open are closed and a fresh server takes over, so nothing the
previous boot left behind keeps files alive.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import struct
import threading
import time
from collections import Counter

import attrs

from zcsdfs.fuse import protocol as p
from zcsdfs.fuse.protocol import Opcode
from zcsdfs.fuse.server import Options, Server
from zcsdfs.fuse.transport import Limits, scatter
from zcsdfs.fuse.vhost_user import Backend
from zcsdfs.fuse.virtqueue import Chain

log = logging.getLogger(__name__)

VIRTIO_ID_FS = 26
TAG_SIZE = 36
CONFIG = struct.Struct(f"<{TAG_SIZE}sI")  # struct virtio_fs_config: tag, num_request_queues
HEADER_PAGES = 4  # what the guest's driver keeps of a queue for headers (FUSE_HEADER_OVERHEAD)
_INIT_MAX_WRITE = 20  # offsets in fuse_init_out
_INIT_MAX_PAGES = 28
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
PAGE = 4096
CPU_SAMPLE = 8  # the device measures the CPU time of one request of an opcode in this many


def serve_request(server: Server, chain: Chain, max_pages: int) -> int:
    """The one adapter between a descriptor chain and the FUSE server: the used length.

    Hands the readable part to ``server.handle`` as it lies in guest memory (the
    server joins only what a split header or body needs), caps an INIT reply to
    ``max_pages``, and scatters the reply into the writable part. A reply that
    does not fit is replaced by EIO (EIO does not fit: nothing)."""
    head = _head(chain)
    if len(head) < p.IN_HEADER.size:
        log.warning("virtio-fs: a %d-byte request has no FUSE header", chain.readable_len)
        return 0
    length, opcode, unique = struct.unpack_from("<IIQ", head)
    if opcode == Opcode.INTERRUPT:
        reply = [p.out_header(unique, errno.ENOSYS, 0)]
    else:
        reply = server.handle(chain.readable)
    if reply is None:
        return 0
    if opcode == Opcode.INIT:
        reply = _cap_init(reply, max_pages)
    size = sum(map(len, reply))
    if size > chain.writable_len:
        log.warning("virtio-fs: a %d-byte reply to opcode %d does not fit the guest's %d bytes",
                    size, opcode, chain.writable_len)
        reply = [p.out_header(unique, errno.EIO, 0)]
        if p.OUT_HEADER.size > chain.writable_len:
            return 0
    return scatter(reply, chain.writable)


def _head(chain: Chain) -> bytes:
    """The first bytes of the request (a FUSE in-header's worth), however the guest split them."""
    first = chain.readable[0] if chain.readable else b""
    if len(first) >= p.IN_HEADER.size:
        return bytes(first[:p.IN_HEADER.size])
    return b"".join(bytes(v) for v in chain.readable[:p.IN_HEADER.size])[:p.IN_HEADER.size]


def _opcode(chain: Chain) -> int | None:
    if chain.readable and len(chain.readable[0]) >= 8:
        return _U32.unpack_from(chain.readable[0], 4)[0]
    head = b"".join(bytes(v[:8]) for v in chain.readable[:8])
    return _U32.unpack_from(head, 4)[0] if len(head) >= 8 else None


def _cap_init(reply: list, max_pages: int) -> list:
    body = bytearray(b"".join(reply))
    if len(body) < p.OUT_HEADER.size + _INIT_MAX_PAGES + 2 or p.OUT_HEADER.unpack_from(body)[1] != 0:
        return reply
    at = p.OUT_HEADER.size
    max_write = min(_U32.unpack_from(body, at + _INIT_MAX_WRITE)[0], max_pages * PAGE)
    _U32.pack_into(body, at + _INIT_MAX_WRITE, max_write)
    _U16.pack_into(body, at + _INIT_MAX_PAGES, min(_U16.unpack_from(body, at + _INIT_MAX_PAGES)[0], max_pages))
    return [body]


@attrs.frozen
class DeviceOptions:
    """What the device looks like to QEMU (the tag itself is QEMU's ``tag=`` property)."""

    tag: str = "zcsdfs"
    request_queues: int = 1
    poll_us: int = 0  # how long a worker looks for the next request before it sleeps
    server: Options = Options()


class VirtioFs:
    """The device: a FUSE server over a vfs, served to one front end at a time."""

    def __init__(self, vfs, options: DeviceOptions = DeviceOptions()):
        if not 1 <= options.request_queues <= 254:
            raise OSError(errno.EINVAL, f"request queues must be 1..254, not {options.request_queues}")
        if len(options.tag.encode()) > TAG_SIZE or not options.tag:
            raise OSError(errno.EINVAL, f"a tag is 1..{TAG_SIZE} bytes", options.tag)
        self.vfs = vfs
        self.options = options
        self.server = self._new_server()
        self.backend: Backend | None = None
        self.connected = threading.Event()
        self.requests = 0  # chains served (approximate under several queues: no lock on the hot path)
        # per opcode: requests; over one request in CPU_SAMPLE, how many and the serving thread's CPU
        # time in serve_request (parse, handler, scatter)
        self.opcode_requests: Counter[int] = Counter()
        self.opcode_sampled: Counter[int] = Counter()
        self.opcode_cpu_ns: Counter[int] = Counter()
        self.worker_cpu_ns = 0  # the workers' whole CPU time (rings, eventfds and serve_chain), at their ends
        self._cpu_lock = threading.Lock()

    def _new_server(self) -> Server:
        # a guest's pids are not this machine's: no groups from /proc; no INTERRUPT, no notifications
        return Server(self.vfs, self.options.server,
                      Limits(interrupts=False, notifications=False, local_callers=False))

    def config(self) -> bytes:
        return CONFIG.pack(self.options.tag.encode(), self.options.request_queues)

    def serve_chain(self, index: int, chain: Chain) -> int:
        self.requests += 1
        backend = self.backend
        num = backend.vrings[index].num if backend is not None else 0
        opcode = _opcode(chain)
        seen = self.opcode_requests[opcode] = self.opcode_requests[opcode] + 1
        if opcode == Opcode.INIT:
            self._end_session()
        if seen % CPU_SAMPLE != 1:  # the first of each opcode and every CPU_SAMPLE-th after
            return serve_request(self.server, chain, max(1, num - HEADER_PAGES))
        started = time.thread_time_ns()  # a system call of 1-4 us here: one request in CPU_SAMPLE
        try:
            return serve_request(self.server, chain, max(1, num - HEADER_PAGES))
        finally:
            self.opcode_cpu_ns[opcode] += time.thread_time_ns() - started
            self.opcode_sampled[opcode] += 1

    def cpu_report(self) -> tuple[dict[str, tuple[int, float]], float]:
        """({opcode name: (requests, CPU us each in serve_request)}, the workers' CPU us a request
        outside it: walking descriptors, eventfd kicks and calls, waking up). Estimated from the
        sampled requests."""
        per, inside = {}, 0.0
        counts = self.opcode_requests
        for opcode, sampled in self.opcode_sampled.most_common():
            name = Opcode(opcode).name if opcode in Opcode._value2member_map_ else str(opcode)
            each = self.opcode_cpu_ns[opcode] / sampled
            per[name] = (counts.get(opcode, sampled), each / 1000)
            inside += each * counts.get(opcode, sampled)
        return per, max(0.0, self.worker_cpu_ns - inside) / max(1, self.requests) / 1000

    def _worker_done(self, cpu_ns: int) -> None:
        with self._cpu_lock:
            self.worker_cpu_ns += cpu_ns

    def _end_session(self) -> None:
        """A new INIT: the guest rebooted or remounted. Close what the old session left open."""
        old = self.server
        if not old.initialized.is_set():
            return
        closed = old.close_handles()
        if closed:
            log.info("virtio-fs: a new session; %d files the old one left open closed", closed)
        self.server = self._new_server()

    def serve_connection(self, sock: socket.socket) -> None:
        """Serve one front end until it disconnects."""
        self.backend = Backend(0, 1 + self.options.request_queues, self.serve_chain, self.config(),
                               self.options.poll_us, on_worker_exit=self._worker_done)
        self.connected.set()
        try:
            self.backend.serve(sock)
        finally:
            self.connected.clear()
            self.backend = None

    def close(self) -> None:
        """Close what the guest left open (at the end of serving)."""
        self._end_session()


def listen(path: str) -> socket.socket:
    """A listening Unix socket at ``path`` (a stale socket file there is replaced)."""
    try:
        if not os.path.exists(path) or _is_socket(path):
            os.unlink(path)
    except FileNotFoundError:
        pass
    if os.path.exists(path):
        raise OSError(errno.EEXIST, "exists and is not a socket", path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        sock.listen(1)
    except OSError:
        sock.close()
        raise
    return sock


def _is_socket(path: str) -> bool:
    return stat.S_ISSOCK(os.lstat(path).st_mode)
