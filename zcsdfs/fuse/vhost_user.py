"""The vhost-user protocol, back-end side (QEMU's docs/interop/vhost-user.rst).

The front end (QEMU) sends messages over a Unix stream socket: a header
(request u32, flags u32, size u32) and ``size`` bytes of payload, with file
descriptors (guest memory, eventfds) as SCM_RIGHTS. We answer the requests
that ask for a value, and every request flagged NEED_REPLY once REPLY_ACK
is negotiated (0 for success, 1 for failure). A request we do not know, or
one whose payload is malformed, is refused with a log line (and a failure
ack when one is due); only a message we cannot even frame (a payload larger
than any request has) ends the connection.

A ring is started once it has a size, addresses, memory and a kick
descriptor: a worker thread then serves it until GET_VRING_BASE stops it
(the front end's way to stop a device; the reply carries the next
available index so it can resume there). SET_MEM_TABLE stops the running
workers, replaces the table (unmapping the old regions) and restarts them.
A started ring is served unless SET_VRING_ENABLE turned it off (the spec
starts rings disabled once PROTOCOL_FEATURES is negotiated; serving them
anyway loses nothing, as a driver only posts to a ring that is set up). A ring whose driver breaks the rules (``virtqueue.QueueError``)
stops with a log line and a kick of its error descriptor; the others go on.
"""

from __future__ import annotations

import array
import enum
import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from typing import Callable

from zcsdfs.fuse.guestmem import MAX_MEM_SLOTS, MAX_REGIONS, GuestMemory, GuestMemoryError, map_region
from zcsdfs.fuse.virtqueue import Chain, QueueError, Virtqueue, full_barrier, signal_eventfd, size_ok

log = logging.getLogger(__name__)

HEADER = struct.Struct("<III")
U64 = struct.Struct("<Q")
VRING_STATE = struct.Struct("<II")
VRING_ADDR = struct.Struct("<IIQQQQ")  # index flags desc used avail log
MEM_REGION = struct.Struct("<QQQQ")  # guest address, size, user address, mmap offset
MEM_TABLE_HEAD = struct.Struct("<II")
MAX_PAYLOAD = 4096  # more than any request we know carries
MAX_FDS = 8
FLAG_VERSION = 0x1
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8
VRING_INDEX_MASK = 0xFF
VRING_NOFD = 0x100

F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_PROTOCOL_FEATURES = 30
F_VERSION_1 = 32


class Request(enum.IntEnum):
    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SET_BACKEND_REQ_FD = 21
    GET_CONFIG = 24
    SET_CONFIG = 25
    RESET_DEVICE = 34
    GET_MAX_MEM_SLOTS = 36
    ADD_MEM_REG = 37
    REM_MEM_REG = 38


class ProtocolFeature(enum.IntFlag):
    MQ = 1 << 0
    REPLY_ACK = 1 << 3
    RESET_DEVICE = 1 << 13
    CONFIGURE_MEM_SLOTS = 1 << 15


OFFERED_PROTOCOL = (ProtocolFeature.MQ | ProtocolFeature.REPLY_ACK | ProtocolFeature.RESET_DEVICE
                    | ProtocolFeature.CONFIGURE_MEM_SLOTS)


class MessageError(OSError):
    """A malformed message: refused, the connection goes on."""

    def __init__(self, message: str):
        super().__init__(errno.EINVAL, message)


class Disconnected(Exception):
    """The front end closed the socket (or sent something we cannot frame)."""


def _close_fds(fds) -> None:
    for fd in fds:
        os.close(fd)


def recv_message(sock: socket.socket) -> tuple[int, int, bytes, list[int]]:
    """One message: (request, flags, payload, descriptors). Raises ``Disconnected`` at the end."""
    fds = array.array("i")
    try:
        head, ancillary, _flags, _ = sock.recvmsg(HEADER.size, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    except ConnectionError as exc:
        raise Disconnected(str(exc)) from None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    fds = list(fds)
    try:
        if not head:
            raise Disconnected("the front end closed the connection")
        head += _recv_exact(sock, HEADER.size - len(head))
        request, flags, size = HEADER.unpack(head)
        if size > MAX_PAYLOAD:
            raise Disconnected(f"message {request} with a {size}-byte payload: cannot be framed")
        payload = _recv_exact(sock, size)
    except BaseException:
        _close_fds(fds)
        raise
    return request, flags, payload, fds


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            more = sock.recv(size - len(data))
        except ConnectionError as exc:
            raise Disconnected(str(exc)) from None
        if not more:
            raise Disconnected("the front end closed the connection mid-message")
        data += more
    return data


def send_reply(sock: socket.socket, request: int, payload: bytes) -> None:
    try:
        sock.sendall(HEADER.pack(request, FLAG_VERSION | FLAG_REPLY, len(payload)) + payload)
    except OSError as exc:
        raise Disconnected(f"replying: {exc.strerror}") from None


class Vring:
    """What the front end told us of one ring, and the worker serving it."""

    def __init__(self, index: int):
        self.index = index
        self.num = 0
        self.addr: tuple[int, int, int] | None = None  # desc, avail, used (front-end addresses)
        self.base = 0
        self.kick: int | None = None
        self.call: int | None = None
        self.err: int | None = None
        self.enabled = True
        self.queue: Virtqueue | None = None
        self.thread: threading.Thread | None = None
        self.wake = os.eventfd(0, os.EFD_CLOEXEC)  # tells the worker to stop
        self.stopping = False
        self.broken = False
        self.fd_lock = threading.Lock()

    def set_fd(self, name: str, fd: int | None) -> None:
        with self.fd_lock:  # never close a descriptor the worker is signalling
            old = getattr(self, name)
            setattr(self, name, fd)
            if old is not None:
                os.close(old)

    def signal(self, name: str) -> None:
        with self.fd_lock:
            signal_eventfd(getattr(self, name))

    def close(self) -> None:
        for name in ("kick", "call", "err"):
            self.set_fd(name, None)
        os.close(self.wake)


class Backend:
    """One vhost-user connection's device state; ``serve_chain(queue_index, chain) -> used length``."""

    def __init__(self, features: int, num_queues: int, serve_chain: Callable[[int, Chain], int],
                 config: bytes = b"", poll_us: int = 0, on_worker_exit: Callable[[int], None] | None = None):
        self.poll_s = poll_us / 1e6
        self.on_worker_exit = on_worker_exit  # told each worker's CPU time (ns) as it ends
        self.device_features = (features | 1 << F_VERSION_1 | 1 << F_INDIRECT_DESC | 1 << F_EVENT_IDX
                                | 1 << F_PROTOCOL_FEATURES)
        self.features = 0
        self.protocol = ProtocolFeature(0)
        self.serve_chain = serve_chain
        self.config = config
        self.mem = GuestMemory()
        self.vrings = [Vring(i) for i in range(num_queues)]
        self.lock = threading.Lock()  # one control message at a time, against the workers' starts/stops
        self._handlers = {
            Request.GET_FEATURES: self.get_features, Request.SET_FEATURES: self.set_features,
            Request.SET_OWNER: self.nothing, Request.RESET_OWNER: self.reset,
            Request.RESET_DEVICE: self.reset,
            Request.GET_PROTOCOL_FEATURES: self.get_protocol_features,
            Request.SET_PROTOCOL_FEATURES: self.set_protocol_features,
            Request.GET_QUEUE_NUM: self.get_queue_num, Request.GET_MAX_MEM_SLOTS: self.get_max_mem_slots,
            Request.SET_MEM_TABLE: self.set_mem_table, Request.ADD_MEM_REG: self.add_mem_reg,
            Request.REM_MEM_REG: self.rem_mem_reg,
            Request.SET_VRING_NUM: self.set_vring_num, Request.SET_VRING_ADDR: self.set_vring_addr,
            Request.SET_VRING_BASE: self.set_vring_base, Request.GET_VRING_BASE: self.get_vring_base,
            Request.SET_VRING_KICK: self.set_vring_kick, Request.SET_VRING_CALL: self.set_vring_call,
            Request.SET_VRING_ERR: self.set_vring_err, Request.SET_VRING_ENABLE: self.set_vring_enable,
            Request.GET_CONFIG: self.get_config,
        }

    # -- the connection -----------------------------------------------------------------------

    def serve(self, sock: socket.socket) -> None:
        """Answer messages until the front end goes away; then stop every ring and unmap memory."""
        try:
            while True:
                request, flags, payload, fds = recv_message(sock)
                self.dispatch(sock, request, flags, payload, fds)
        except Disconnected as exc:
            log.info("vhost-user front end gone: %s", exc)
        finally:
            self.shutdown()

    def dispatch(self, sock: socket.socket, request: int, flags: int, payload: bytes, fds: list[int]) -> None:
        handler = self._handlers.get(request)
        name = Request(request).name if request in Request._value2member_map_ else str(request)
        reply, ok = None, False
        try:
            if handler is None:
                raise MessageError(f"unsupported vhost-user request {name}")
            with self.lock:
                reply = handler(payload, fds)  # a handler keeping a descriptor takes it out of fds
            ok = True
        except (MessageError, QueueError, GuestMemoryError) as exc:
            log.error("vhost-user %s refused: %s", name, exc.strerror or exc)
        except Exception:  # a bug must cost one message, not the connection and the guest's file system
            log.exception("vhost-user %s failed", name)
        finally:
            _close_fds(fds)
        if reply is not None:
            send_reply(sock, request, reply)
        elif flags & FLAG_NEED_REPLY and self.protocol & ProtocolFeature.REPLY_ACK:
            send_reply(sock, request, U64.pack(0 if ok else 1))

    def shutdown(self) -> None:
        with self.lock:
            for vring in self.vrings:
                self._stop(vring)
                vring.close()
            self.mem.close()

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _unpack(fmt: struct.Struct, payload: bytes) -> tuple:
        if len(payload) < fmt.size:
            raise MessageError(f"payload of {len(payload)} bytes, {fmt.size} expected")
        return fmt.unpack_from(payload)

    def _vring(self, index: int) -> Vring:
        if not 0 <= index < len(self.vrings):
            raise MessageError(f"no ring {index} (the device has {len(self.vrings)})")
        return self.vrings[index]

    @staticmethod
    def _no_fds(fds: list[int]) -> None:
        if fds:
            raise MessageError(f"{len(fds)} unexpected descriptors")

    def _start(self, vring: Vring) -> None:
        """Start the ring's worker if it has everything it needs."""
        if vring.thread is not None or vring.broken or not vring.enabled:
            return
        if vring.kick is None or vring.addr is None or not vring.num or not self.mem.regions:
            return
        queue = Virtqueue(self.mem, vring.num, *vring.addr, last_avail=vring.base,
                          event_idx=bool(self.features & 1 << F_EVENT_IDX),
                          indirect=bool(self.features & 1 << F_INDIRECT_DESC))
        vring.queue = queue
        vring.stopping = False
        vring.thread = threading.Thread(target=self._work, args=(vring, queue), daemon=True,
                                        name=f"vhost-user-{vring.index}")
        vring.thread.start()

    def _stop(self, vring: Vring) -> None:
        """Stop the worker (it finishes the request it is serving) and keep where it got to."""
        if vring.thread is not None:
            vring.stopping = True
            os.eventfd_write(vring.wake, 1)
            vring.thread.join()
            os.eventfd_read(vring.wake)
            vring.thread = None
        if vring.queue is not None:
            vring.base = vring.queue.last_avail
            vring.queue.release()
            vring.queue = None

    def _restart_all(self, change: Callable[[], None]) -> None:
        running = [v for v in self.vrings if v.thread is not None]
        for vring in running:
            self._stop(vring)
        try:
            change()
        finally:
            for vring in running:
                self._start(vring)

    def _work(self, vring: Vring, queue: Virtqueue) -> None:
        poller = select.poll()
        poller.register(vring.kick, select.POLLIN)
        poller.register(vring.wake, select.POLLIN)
        try:
            while not vring.stopping:
                queue.want_kicks(False)
                served = self._drain(vring, queue)
                if served and self.poll_s and self._poll(vring, queue):
                    continue
                queue.want_kicks(True)
                full_barrier()  # the driver sees our request for kicks before we look once more
                if served or queue.pending():
                    continue  # posted while we asked for kicks again: no kick will come for it
                poller.poll()
                try:
                    os.eventfd_read(vring.kick)
                except BlockingIOError:
                    pass  # woken to stop, not kicked
                except OSError as exc:
                    log.error("ring %d: kick descriptor failed: %s", vring.index, exc.strerror)
                    return
        except QueueError as exc:
            vring.broken = True
            log.error("ring %d stopped: %s", vring.index, exc.strerror)
            vring.signal("err")
        except Exception:  # a bug must stop this ring, not leave the guest waiting without a word
            vring.broken = True
            log.exception("ring %d stopped", vring.index)
            vring.signal("err")
        finally:
            if self.on_worker_exit is not None:
                self.on_worker_exit(time.thread_time_ns())

    def _poll(self, vring: Vring, queue: Virtqueue) -> bool:
        """Look for the driver's next chain for a moment before sleeping (waking costs more)."""
        until = time.perf_counter() + self.poll_s
        while not vring.stopping and time.perf_counter() < until:
            if queue.pending():
                return True
            os.sched_yield()
        return False

    def _drain(self, vring: Vring, queue: Virtqueue) -> int:
        served = 0
        while not vring.stopping:
            chain = queue.pop()
            if chain is None:
                break
            length = self.serve_chain(vring.index, chain)
            head = chain.head
            del chain  # drop the views into guest memory before anyone may unmap it
            queue.push(head, length)
            served += 1
            if queue.should_interrupt():
                vring.signal("call")
        return served

    # -- features -----------------------------------------------------------------------------

    def nothing(self, payload: bytes, fds: list[int]) -> None:
        self._no_fds(fds)

    def get_features(self, payload: bytes, fds: list[int]) -> bytes:
        return U64.pack(self.device_features)

    def set_features(self, payload: bytes, fds: list[int]) -> None:
        (features,) = self._unpack(U64, payload)
        if features & ~self.device_features:
            raise MessageError(f"features {features & ~self.device_features:#x} were not offered")
        self.features = features

    def get_protocol_features(self, payload: bytes, fds: list[int]) -> bytes:
        return U64.pack(OFFERED_PROTOCOL)

    def set_protocol_features(self, payload: bytes, fds: list[int]) -> None:
        (features,) = self._unpack(U64, payload)
        self.protocol = ProtocolFeature(features & OFFERED_PROTOCOL)

    def get_queue_num(self, payload: bytes, fds: list[int]) -> bytes:
        return U64.pack(len(self.vrings))

    def get_max_mem_slots(self, payload: bytes, fds: list[int]) -> bytes:
        return U64.pack(MAX_MEM_SLOTS)

    def get_config(self, payload: bytes, fds: list[int]) -> bytes:
        offset, size, flags = self._unpack(struct.Struct("<III"), payload)
        data = self.config[offset:offset + size]
        return struct.pack("<III", offset, size, flags) + data.ljust(size, b"\0")

    def reset(self, payload: bytes, fds: list[int]) -> None:
        """RESET_DEVICE (and the older RESET_OWNER): every ring stopped and forgotten."""
        self._no_fds(fds)
        for vring in self.vrings:
            self._stop(vring)
            vring.close()
        self.vrings = [Vring(i) for i in range(len(self.vrings))]
        self.features = 0

    # -- memory -------------------------------------------------------------------------------

    def _region(self, fields: tuple, fd: int):
        gpa, size, uaddr, offset = fields
        try:
            return map_region(fd, gpa, size, uaddr, offset)
        except OSError as exc:
            raise GuestMemoryError(f"cannot map region at {gpa:#x}: {exc.strerror}") from None

    def set_mem_table(self, payload: bytes, fds: list[int]) -> None:
        count, _ = self._unpack(MEM_TABLE_HEAD, payload)
        if not 0 < count <= MAX_REGIONS or len(fds) != count:
            raise MessageError(f"memory table of {count} regions with {len(fds)} descriptors")
        if len(payload) < MEM_TABLE_HEAD.size + count * MEM_REGION.size:
            raise MessageError("memory table shorter than its region count")
        fresh = GuestMemory()
        try:
            for i, fd in enumerate(fds):
                fresh.add(self._region(MEM_REGION.unpack_from(payload, MEM_TABLE_HEAD.size + i * MEM_REGION.size),
                                       fd))
        except BaseException:
            fresh.close()
            raise

        def swap():
            old, self.mem = self.mem, fresh
            old.close()
        self._restart_all(swap)

    def _one_region(self, payload: bytes, fds: list[int]) -> tuple:
        if len(fds) > 1:
            raise MessageError(f"{len(fds)} descriptors for one region")
        if len(payload) < 8 + MEM_REGION.size:
            raise MessageError("short memory region message")
        return MEM_REGION.unpack_from(payload, 8)

    def add_mem_reg(self, payload: bytes, fds: list[int]) -> None:
        fields = self._one_region(payload, fds)
        if not fds:
            raise MessageError("ADD_MEM_REG without a descriptor")
        if len(self.mem.regions) >= MAX_MEM_SLOTS:
            raise MessageError(f"more than {MAX_MEM_SLOTS} memory regions")
        region = self._region(fields, fds[0])
        self._restart_all(lambda: self.mem.add(region))

    def rem_mem_reg(self, payload: bytes, fds: list[int]) -> None:
        gpa, size, uaddr, _ = self._one_region(payload, fds)
        removed = []
        self._restart_all(lambda: removed.append(self.mem.remove(gpa, size, uaddr)))
        if not removed[0]:
            raise MessageError(f"no memory region at {gpa:#x}+{size:#x}")

    # -- rings --------------------------------------------------------------------------------

    def set_vring_num(self, payload: bytes, fds: list[int]) -> None:
        self._no_fds(fds)
        index, num = self._unpack(VRING_STATE, payload)
        vring = self._vring(index)
        if not size_ok(num):
            raise MessageError(f"ring {index}: size {num} is not a power of two up to 32768")
        if vring.thread is not None:
            raise MessageError(f"ring {index} is running")
        vring.num = num

    def set_vring_addr(self, payload: bytes, fds: list[int]) -> None:
        self._no_fds(fds)
        index, _flags, desc, used, avail, _log = self._unpack(VRING_ADDR, payload)
        vring = self._vring(index)
        if vring.thread is not None:
            raise MessageError(f"ring {index} is running")
        vring.addr = (desc, avail, used)
        self._start(vring)

    def set_vring_base(self, payload: bytes, fds: list[int]) -> None:
        self._no_fds(fds)
        index, base = self._unpack(VRING_STATE, payload)
        vring = self._vring(index)
        if vring.thread is not None:
            raise MessageError(f"ring {index} is running")
        vring.base = base & 0xFFFF
        vring.broken = False

    def get_vring_base(self, payload: bytes, fds: list[int]) -> bytes:
        """Stop the ring; the reply is where to resume. The kick descriptor goes: a restart sends one."""
        self._no_fds(fds)
        index, _ = self._unpack(VRING_STATE, payload)
        vring = self._vring(index)
        self._stop(vring)
        vring.set_fd("kick", None)
        vring.broken = False
        return VRING_STATE.pack(index, vring.base)

    def _vring_fd(self, payload: bytes, fds: list[int]) -> tuple[Vring, int | None]:
        """The ring and the descriptor a KICK/CALL/ERR message sets (taken out of ``fds``)."""
        if len(fds) > 1:
            raise MessageError(f"{len(fds)} descriptors for one ring")
        (value,) = self._unpack(U64, payload)
        vring = self._vring(value & VRING_INDEX_MASK)
        if value & VRING_NOFD:
            return vring, None
        if not fds:
            raise MessageError(f"ring {value & VRING_INDEX_MASK}: no descriptor and no NOFD flag")
        return vring, fds.pop()

    def set_vring_kick(self, payload: bytes, fds: list[int]) -> None:
        vring, fd = self._vring_fd(payload, fds)
        if fd is None:
            raise MessageError(f"ring {vring.index}: polling without a kick descriptor is not supported")
        os.set_blocking(fd, False)
        self._stop(vring)
        vring.set_fd("kick", fd)
        self._start(vring)

    def set_vring_call(self, payload: bytes, fds: list[int]) -> None:
        vring, fd = self._vring_fd(payload, fds)
        vring.set_fd("call", fd)  # the worker reads it afresh for each interrupt

    def set_vring_err(self, payload: bytes, fds: list[int]) -> None:
        vring, fd = self._vring_fd(payload, fds)
        vring.set_fd("err", fd)

    def set_vring_enable(self, payload: bytes, fds: list[int]) -> None:
        self._no_fds(fds)
        index, enable = self._unpack(VRING_STATE, payload)
        vring = self._vring(index)
        vring.enabled = bool(enable)
        if vring.enabled:
            self._start(vring)
        else:
            self._stop(vring)
