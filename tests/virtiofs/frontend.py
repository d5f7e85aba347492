"""A vhost-user front end written by the tests: the role QEMU and the guest's driver play.

Guest memory is a memfd with two regions (so ranges that cross or miss
regions can be built), the rings are laid out and written here, and every
message goes over a socket pair to a ``VirtioFs`` device served in a thread.
The test can then write anything into the rings, malformed on purpose.
"""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import threading

from zcsdfs.fuse import protocol as p
from zcsdfs.fuse import vhost_user as vu
from zcsdfs.fuse.virtiofs import DeviceOptions, VirtioFs
from zcsdfs.fuse.virtqueue import DESC, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE

REGION_SIZE = 4 << 20
GPA = (0, 0x10000000)  # two regions with a hole between them
UADDR_BASE = 0x7F0000000000  # the front end's own (made-up) addresses for them
WAIT = 20  # seconds: a bound so a broken device fails the test instead of hanging it


class Ring:
    """The driver's view of one queue: where its parts are and what it has posted."""

    def __init__(self, fe: "FrontEnd", index: int, num: int):
        self.fe, self.index, self.num = fe, index, num
        self.desc = fe.alloc(16 * num, 16)
        self.avail = fe.alloc(6 + 2 * num, 2)
        self.used = fe.alloc(6 + 8 * num, 4)
        self.avail_idx = 0
        self.used_seen = 0
        self.next_desc = 0
        self.kick = os.eventfd(0, os.EFD_CLOEXEC)
        self.call = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.err = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)

    def publish(self, head: int, bump: int = 1) -> None:
        """Put ``head`` in the available ring and move the index by ``bump`` (1 for an honest driver)."""
        self.fe.write(self.avail + 4 + 2 * (self.avail_idx % self.num), struct.pack("<H", head))
        self.fe.write(self.avail + 4 + 2 * self.num, struct.pack("<H", self.used_seen))  # used_event
        self.avail_idx = (self.avail_idx + bump) & 0xFFFF
        self.fe.write(self.avail + 2, struct.pack("<H", self.avail_idx))
        os.eventfd_write(self.kick, 1)

    def post(self, readable: list[bytes], writable: list[int], indirect: bool = False) -> tuple[int, list[int]]:
        """Post a chain; returns its head and the guest addresses of its writable buffers."""
        bufs, outs = [], []
        for data in readable:
            addr = self.fe.alloc(len(data))
            self.fe.write(addr, data)
            bufs.append((addr, len(data), 0))
        for size in writable:
            addr = self.fe.alloc(size)
            outs.append(addr)
            bufs.append((addr, size, DESC_F_WRITE))
        head = self.next_desc % self.num
        if indirect:
            table = self.fe.alloc(16 * len(bufs), 16)
            for i, (addr, size, flags) in enumerate(bufs):
                last = i == len(bufs) - 1
                self.fe.write(table + 16 * i, DESC.pack(addr, size, flags | (0 if last else DESC_F_NEXT), i + 1))
            self.fe.write(self.desc + 16 * head, DESC.pack(table, 16 * len(bufs), DESC_F_INDIRECT, 0))
            self.next_desc += 1
        else:
            for i, (addr, size, flags) in enumerate(bufs):
                slot = (self.next_desc + i) % self.num
                last = i == len(bufs) - 1
                self.fe.write(self.desc + 16 * slot,
                              DESC.pack(addr, size, flags | (0 if last else DESC_F_NEXT), (slot + 1) % self.num))
            self.next_desc += len(bufs)
        self.publish(head)
        return head, outs

    def used_idx(self) -> int:
        return struct.unpack("<H", self.fe.read(self.used + 2, 2))[0]

    def wait_used(self) -> tuple[int, int]:
        """Wait for the device's next used element: (head, length)."""
        poller = select.poll()
        poller.register(self.call, select.POLLIN)
        while self.used_idx() == self.used_seen:
            if not poller.poll(WAIT * 1000):
                raise TimeoutError(f"queue {self.index}: no used buffer")
            try:
                os.eventfd_read(self.call)
            except BlockingIOError:
                pass
        at = self.used + 4 + 8 * (self.used_seen % self.num)
        self.used_seen = (self.used_seen + 1) & 0xFFFF
        return struct.unpack("<II", self.fe.read(at, 8))

    def wait_err(self) -> None:
        """Wait until the device reports the queue broken on its error descriptor."""
        poller = select.poll()
        poller.register(self.err, select.POLLIN)
        if not poller.poll(WAIT * 1000):
            raise TimeoutError(f"queue {self.index}: no error signalled")
        os.eventfd_read(self.err)

    def close(self) -> None:
        for fd in (self.kick, self.call, self.err):
            os.close(fd)


class FrontEnd:
    def __init__(self, vfs, request_queues: int = 1, num: int = 16, features: int | None = None,
                 protocol: int = vu.ProtocolFeature.REPLY_ACK, poll_us: int = 0):
        self.fd = os.memfd_create("guest", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, 2 * REGION_SIZE)
        self.map = mmap.mmap(self.fd, 2 * REGION_SIZE)
        self.next = [0x1000, 0]  # bump allocator per region
        self.floor = [0x1000, 0]  # where it wraps to: past the rings once they are laid out
        self.device = VirtioFs(vfs, DeviceOptions(request_queues=request_queues, poll_us=poll_us))
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.thread = threading.Thread(target=self._serve, args=(theirs,), daemon=True)
        self.thread.start()
        self.protocol = protocol
        self.rings: list[Ring] = []
        self.num = num
        self.features = features

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            self.device.serve_connection(sock)

    # -- guest memory -------------------------------------------------------------------------

    def _offset(self, gpa: int, length: int) -> int:
        for i, base in enumerate(GPA):
            if base <= gpa and gpa + length <= base + REGION_SIZE:
                return i * REGION_SIZE + gpa - base
        raise ValueError(f"test bug: {gpa:#x} is not guest memory")

    def alloc(self, size: int, align: int = 8, region: int = 0) -> int:
        at = -(-self.next[region] // align) * align
        if at + size > REGION_SIZE:  # wrap past the rings (old buffers are done with)
            at = -(-self.floor[region] // align) * align
        self.next[region] = at + size
        return GPA[region] + at

    def write(self, gpa: int, data: bytes, offset: int = 0) -> None:
        off = self._offset(gpa + offset, len(data))
        self.map[off:off + len(data)] = data

    def read(self, gpa: int, length: int) -> bytes:
        off = self._offset(gpa, length)
        return self.map[off:off + length]

    def region(self, i: int) -> bytes:
        """ADD_MEM_REG's and REM_MEM_REG's payload: padding, then one region."""
        return struct.pack("<Q", 0) + vu.MEM_REGION.pack(GPA[i], REGION_SIZE, UADDR_BASE + GPA[i], i * REGION_SIZE)

    def table(self) -> bytes:
        regions = b"".join(vu.MEM_REGION.pack(gpa, REGION_SIZE, UADDR_BASE + gpa, i * REGION_SIZE)
                           for i, gpa in enumerate(GPA))
        return vu.MEM_TABLE_HEAD.pack(len(GPA), 0) + regions

    # -- messages -----------------------------------------------------------------------------

    def send(self, request: int, payload: bytes = b"", fds: list[int] = (), need_reply: bool = False) -> None:
        flags = vu.FLAG_VERSION | (vu.FLAG_NEED_REPLY if need_reply else 0)
        data = vu.HEADER.pack(request, flags, len(payload)) + payload
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
        self.sock.sendmsg([data], ancillary)

    def recv(self) -> tuple[int, bytes]:
        head = b""
        while len(head) < vu.HEADER.size:
            more = self.sock.recv(vu.HEADER.size - len(head))
            if not more:
                raise ConnectionError("device closed the connection")
            head += more
        request, flags, size = vu.HEADER.unpack(head)
        assert flags & vu.FLAG_REPLY
        payload = b""
        while len(payload) < size:
            payload += self.sock.recv(size - len(payload))
        return request, payload

    def call(self, request: int, payload: bytes = b"", fds: list[int] = ()) -> bytes:
        """A request that has a reply of its own (GET_*)."""
        self.send(request, payload, fds)
        got, reply = self.recv()
        assert got == request
        return reply

    def ack(self, request: int, payload: bytes = b"", fds: list[int] = ()) -> int:
        """A request sent with NEED_REPLY: 0 for success."""
        self.send(request, payload, fds, need_reply=True)
        got, reply = self.recv()
        assert got == request
        return struct.unpack("<Q", reply)[0]

    def setup(self) -> None:
        """What QEMU does to start the device: negotiate, share memory, set up every ring."""
        offered = struct.unpack("<Q", self.call(vu.Request.GET_FEATURES))[0]
        self.send(vu.Request.SET_OWNER)
        self.call(vu.Request.GET_PROTOCOL_FEATURES)
        self.send(vu.Request.SET_PROTOCOL_FEATURES, struct.pack("<Q", self.protocol))
        nqueues = struct.unpack("<Q", self.call(vu.Request.GET_QUEUE_NUM))[0]
        features = offered if self.features is None else self.features
        assert self.ack(vu.Request.SET_FEATURES, struct.pack("<Q", features)) == 0
        if self.protocol & vu.ProtocolFeature.CONFIGURE_MEM_SLOTS:  # QEMU then adds regions one by one
            assert struct.unpack("<Q", self.call(vu.Request.GET_MAX_MEM_SLOTS))[0] >= len(GPA)
            for i in range(len(GPA)):
                assert self.ack(vu.Request.ADD_MEM_REG, self.region(i), [self.fd]) == 0
        else:
            assert self.ack(vu.Request.SET_MEM_TABLE, self.table(), [self.fd] * len(GPA)) == 0
        for i in range(nqueues):
            ring = Ring(self, i, self.num)
            self.rings.append(ring)
            self.start_ring(ring)
        self.floor = list(self.next)

    def start_ring(self, ring: Ring, base: int = 0) -> None:
        i = ring.index
        assert self.ack(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(i, ring.num)) == 0
        assert self.ack(vu.Request.SET_VRING_BASE, vu.VRING_STATE.pack(i, base)) == 0
        assert self.ack(vu.Request.SET_VRING_ADDR, vu.VRING_ADDR.pack(
            i, 0, UADDR_BASE + ring.desc, UADDR_BASE + ring.used, UADDR_BASE + ring.avail, 0)) == 0
        assert self.ack(vu.Request.SET_VRING_CALL, struct.pack("<Q", i), [ring.call]) == 0
        assert self.ack(vu.Request.SET_VRING_ERR, struct.pack("<Q", i), [ring.err]) == 0
        assert self.ack(vu.Request.SET_VRING_KICK, struct.pack("<Q", i), [ring.kick]) == 0
        assert self.ack(vu.Request.SET_VRING_ENABLE, vu.VRING_STATE.pack(i, 1)) == 0

    def stop_ring(self, ring: Ring) -> int:
        """GET_VRING_BASE: the device stops the ring and says where to resume."""
        index, base = vu.VRING_STATE.unpack(self.call(vu.Request.GET_VRING_BASE, vu.VRING_STATE.pack(ring.index, 0)))
        assert index == ring.index
        return base

    def close(self) -> None:
        self.sock.close()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the device did not notice the front end went away"
        for ring in self.rings:
            ring.close()
        self.map.close()
        os.close(self.fd)

    # -- FUSE through a request queue ---------------------------------------------------------

    def fuse(self, opcode: int, body: bytes = b"", nodeid: int = p.ROOT_ID, queue: int = 1,
             out_size: int = 4096, data_out: int = 0, unique: int | None = None, uid: int = 0,
             indirect: bool = False) -> tuple[int, bytes]:
        """Send one FUSE request; returns (error, reply body). ``data_out``: a separate data buffer."""
        self.unique = getattr(self, "unique", 0) + 2
        unique = self.unique if unique is None else unique
        header = p.IN_HEADER.pack(p.IN_HEADER.size + len(body), opcode, unique, nodeid, uid, uid, 4242, 0, 0)
        ring = self.rings[queue]
        sizes = [s for s in (p.OUT_HEADER.size, out_size, data_out) if s]
        readable = [header, body] if body else [header]
        head, outs = ring.post(readable, sizes, indirect=indirect)
        used_head, length = ring.wait_used()
        assert used_head == head
        reply = b"".join(self.read(addr, size) for addr, size in zip(outs, sizes))[:length]
        if length == 0:
            return None, b""
        rlen, error, runique = p.OUT_HEADER.unpack_from(reply)
        assert (rlen, runique) == (length, unique)
        return -error, reply[p.OUT_HEADER.size:]

    def init(self) -> bytes:
        flags = p.InitFlag.MAX_PAGES | p.InitFlag.INIT_EXT | p.InitFlag.BIG_WRITES
        error, reply = self.fuse(p.Opcode.INIT, p.INIT_IN.pack(7, 38, 1 << 20, int(flags), 0))
        assert error == 0
        return reply
