"""FUSE over io_uring: a ``Transport`` that takes requests and commits replies through a ring.

Since Linux 6.14 (``/sys/module/fuse/parameters/enable_uring``) the kernel
can hand FUSE requests to the server through io_uring instead of read(2)
and write(2) on /dev/fuse. The server registers "ring entries", each a
header buffer and a payload buffer, with IORING_OP_URING_CMD on the
/dev/fuse descriptor (128-byte SQEs; the command area holds
``fuse_uring_cmd_req``: flags, commit_id, qid). An entry completes when the
kernel has written a request into its buffers; the server answers by
writing the reply into the same buffers and submitting COMMIT_AND_FETCH,
which delivers the reply and offers the entry for the next request. One
``io_uring_enter`` commits every reply made meanwhile and sleeps for the
next requests, so a busy server makes one system call for many requests.

The order of things (include/uapi/linux/fuse.h, fs/fuse/dev_uring.c):
INIT still arrives on /dev/fuse, and is read there (``DevFuse``). The
kernel offers FUSE_OVER_IO_URING in INIT when enable_uring is set; the
server accepts it (``Limits.init_flags``). Once the reply is written, the
kernel blocks new requests until every queue (one per possible CPU: a
request goes to the queue of the CPU its process runs on) has an entry,
so all entries are registered at once. A registration the kernel refuses
turns io_uring off for the connection, and requests come on /dev/fuse
again. FORGET and INTERRUPT always come on /dev/fuse; one read of it is
kept queued on the ring (the kernel runs it in an io-wq worker), so one
wait covers both sources.

An entry's request arrives as the fuse_in_header (``in_out``), the
operation's fixed part (``op_in``; its size is the header's length less
the header and the payload) and the rest in the payload buffer. Each
entry is one mapping: the 288-byte header block at its start, the payload
from its second page on; the in header and the fixed part are copied
(at most 168 bytes) into the end of the first page, so the server reads
the whole request as one buffer, the payload (a WRITE's data) uncopied.
The reply's out header goes to ``in_out``, the rest to the payload buffer,
its length to ``ring_ent_in_out.payload_sz``.

Everything the kernel writes into an entry (lengths, commit ids) and the
completions' tags are checked before use; an entry that comes back in a
form this transport cannot read is answered EIO, so the entry returns.
"""

from __future__ import annotations

import collections
import errno
import logging
import mmap
import os
import select
import struct
import threading

import attrs

from zcsdfs.fuse import uring
from zcsdfs.fuse.devfuse import DevFuse
from zcsdfs.fuse.protocol import IN_HEADER, INIT_OUT, OUT_HEADER, InitFlag, Opcode, out_header
from zcsdfs.fuse.transport import Incoming, Limits, Reply, ReplyTooLarge, scatter

log = logging.getLogger(__name__)

ENABLE = "/sys/module/fuse/parameters/enable_uring"
CMD_REGISTER = 1
CMD_COMMIT_AND_FETCH = 2
CMD_REQ = struct.Struct("<QQH6x")         # fuse_uring_cmd_req: flags commit_id qid
ENT_IN_OUT = struct.Struct("<QQI12x")     # fuse_uring_ent_in_out: flags commit_id payload_sz (padding, reserved)
HEADER_SIZE = 288                         # fuse_uring_req_header: in_out[128] op_in[128] ring_ent_in_out
OP_IN = 128                               # where op_in starts, and its size
ENT_IN_OUT_AT = 256
PAGE = mmap.PAGESIZE
IOVECS = struct.Struct("<QQQQ")           # two struct iovec: headers, payload
MIN_PAYLOAD = 8192                        # FUSE_MIN_READ_BUFFER: the kernel's floor for the payload
DEPTH = 8                                 # entries per queue
MAX_QUEUES = 1024
DEV = 1 << 62                             # user_data of the /dev/fuse read kept on the ring
PAYLOAD_SZ = struct.Struct("<I")


def enabled() -> bool | None:
    """Whether the fuse module serves io_uring (enable_uring); None when it cannot (a
    kernel without CONFIG_FUSE_IO_URING has no such parameter)."""
    try:
        with open(ENABLE) as f:
            return f.read().strip() in ("Y", "1")
    except OSError:
        return None


def unavailable() -> str | None:
    """Why FUSE over io_uring cannot be used on this machine now (None: it can)."""
    on = enabled()
    if on is None:
        return f"this kernel has no FUSE over io_uring ({ENABLE} is missing)"
    if not on:
        return f"FUSE over io_uring is off ({ENABLE} is N; as root: echo Y > {ENABLE})"
    return uring.supported()


def possible_cpus() -> int:
    """How many CPUs the kernel may ever run (its queue count: num_possible_cpus)."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
    except OSError:
        return os.cpu_count() or 1
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += (int(high) if high else int(low)) - int(low) + 1
    if not 1 <= count <= MAX_QUEUES:
        raise OSError(errno.EINVAL, f"{count} possible CPUs; at most {MAX_QUEUES} queues are served")
    return count


@attrs.define(eq=False)
class Entry:
    """One ring entry: its queue, its memory (header block, then the payload from the
    second page), the iovecs REGISTER names, and the request it holds (``commit_id``)."""

    index: int
    qid: int
    memory: mmap.mmap
    view: memoryview
    iovecs: bytearray
    commit_id: int = 0
    command: int = CMD_REGISTER  # the last command submitted, to repeat on EAGAIN/EINTR


class FuseUring:
    """The ``Transport``: /dev/fuse until INIT (and for good if the kernel declines io_uring),
    then ring entries, ``depth`` per queue. See the module's docstring.

    ``active`` says which: "devfuse" or "uring"."""

    limits = Limits(max_pages=None, interrupts=True, notifications=True, local_callers=True,
                    init_flags=InitFlag.OVER_IO_URING)

    def __init__(self, fd: int, buffer_size: int, depth: int = DEPTH, queues: int | None = None):
        if not 1 <= depth <= 64:
            raise OSError(errno.EINVAL, f"ring depth {depth} out of range 1-64")
        self.dev = DevFuse(fd, buffer_size)
        self._fd = fd  # for the SQEs: the ring holds its own reference to the file once submitted
        self.queues = possible_cpus() if queues is None else queues
        self.depth = depth
        self.ring = uring.Ring(self.queues * depth + 1)  # an SQE per entry, one for the /dev/fuse read
        self.active = "devfuse"
        self.settled = threading.Event()  # set once INIT's reply decided ``active``
        self.payload_size = 0
        self.lost = 0  # entries the kernel would not take back (a bug here or there)
        self._entries: list[Entry] = []
        self._incoming: collections.deque[Incoming] = collections.deque()
        self._sq = threading.Lock()  # the SQ side: prepare, and whether the leader sleeps
        self._waiting = False  # the leader sleeps in io_uring_enter or poll: replies submit themselves
        self._closed = False
        self._dev_memory = mmap.mmap(-1, buffer_size)
        self._dev_view = memoryview(self._dev_memory)
        self._dev_addr = uring.address(self._dev_memory)
        self._poll = select.poll()
        self._poll.register(self.ring.fd, select.POLLIN)

    @property
    def fd(self) -> int:
        """The /dev/fuse descriptor (-1 once closed)."""
        return self.dev.fd

    # -- Transport -----------------------------------------------------------------------------

    def receiver(self):
        dev_receive = self.dev.receiver()

        def receive() -> Incoming | None:
            if self.active == "devfuse":
                return dev_receive()
            return self._receive()

        return receive

    def ready(self, timeout: float) -> bool:
        if self.active == "devfuse":
            return self.dev.ready(timeout)
        if self._incoming or self._closed:
            return True
        with self._sq:
            self._waiting = True
        try:
            if self.ring.unsubmitted():
                self.ring.submit()
            if not self.ring.ready() and timeout > 0:
                self._poll.poll(timeout * 1000)
        finally:
            self._waiting = False
        return bool(self.ring.ready())

    def reply(self, incoming: Incoming, reply: Reply | None) -> None:
        token = incoming.token
        if token is None:  # read on /dev/fuse before the ring (INIT), or without one
            if self.settled.is_set() or reply is None or _opcode(incoming.request) != Opcode.INIT:
                self.dev.reply(incoming, reply)
                return
            try:
                reply = self._set_up(reply)
                self.dev.reply(incoming, reply)
                if self._entries:
                    self._register()
            finally:
                self.settled.set()
            return
        if self._closed:
            return
        if token == DEV:
            self.dev.reply(incoming, reply)
            self._read_dev()
            return
        self._commit(token, reply)

    def close(self) -> None:
        self._closed = True
        self.ring.close()  # cancels what the kernel still holds
        self._entries = []  # their mappings go with the last view of them
        self.dev.close()

    # -- the ring ------------------------------------------------------------------------------

    def _set_up(self, reply: Reply) -> Reply:
        """Before the INIT reply goes out: if it accepts FUSE_OVER_IO_URING, make the entries.
        Once the kernel reads that reply it waits for them, so where they cannot be made the
        reply is sent without the flag instead (the connection stays on /dev/fuse)."""
        data = b"".join(bytes(piece) for piece in reply)
        if len(data) < OUT_HEADER.size + INIT_OUT.size or OUT_HEADER.unpack_from(data)[1] != 0:
            return reply
        fields = list(INIT_OUT.unpack_from(data, OUT_HEADER.size))
        if not (fields[3] | fields[10] << 32) & InitFlag.OVER_IO_URING:
            log.info("the kernel did not offer FUSE over io_uring; serving /dev/fuse")
            return reply
        max_write, max_pages = fields[6], fields[8]
        self.payload_size = max(MIN_PAYLOAD, max_write, max_pages * 4096)
        try:
            for qid in range(self.queues):
                for _ in range(self.depth):
                    self._entries.append(self._entry(len(self._entries), qid))
        except OSError as exc:
            log.warning("no memory for the io_uring entries (%s); serving /dev/fuse", exc)
            self._entries = []
            fields[10] &= ~(InitFlag.OVER_IO_URING >> 32)
            return [data[:OUT_HEADER.size] + INIT_OUT.pack(*fields) + data[OUT_HEADER.size + INIT_OUT.size:]]
        return reply

    def _register(self) -> None:
        """After the INIT reply: register every entry, and queue the read of /dev/fuse. The
        kernel takes them in one enter; one it refuses turns io_uring off for the connection."""
        with self._sq:
            for entry in self._entries:
                self._prepare(entry, CMD_REGISTER)
            self._prepare_dev_read()
        self.active = "uring"
        self.ring.submit()

    def _entry(self, index: int, qid: int) -> Entry:
        memory = mmap.mmap(-1, PAGE + self.payload_size)
        base = uring.address(memory)
        iovecs = bytearray(IOVECS.pack(base, HEADER_SIZE, base + PAGE, self.payload_size))
        return Entry(index, qid, memory, memoryview(memory), iovecs)

    def _prepare(self, entry: Entry, command: int) -> None:
        """Queue ``command`` for ``entry`` (the SQ lock held)."""
        entry.command = command
        if command == CMD_REGISTER:
            self.ring.prepare(uring.OP_URING_CMD, self._fd, off=CMD_REGISTER, addr=uring.address(entry.iovecs),
                              length=2, user_data=entry.index, cmd=CMD_REQ.pack(0, 0, entry.qid))
        else:
            self.ring.prepare(uring.OP_URING_CMD, self._fd, off=CMD_COMMIT_AND_FETCH, user_data=entry.index,
                              cmd=CMD_REQ.pack(0, entry.commit_id, entry.qid))
        if self._waiting:  # the leader sleeps: it would not see this SQE until it wakes
            self.ring.submit()

    def _prepare_dev_read(self) -> None:
        self.ring.prepare(uring.OP_READ, self._fd, addr=self._dev_addr, length=len(self._dev_memory), user_data=DEV)
        if self._waiting:
            self.ring.submit()

    def _read_dev(self) -> None:
        with self._sq:
            self._prepare_dev_read()

    def _receive(self) -> Incoming | None:
        """The leader's next request: one reaped before, or wait (committing what is ready)."""
        while True:
            if self._incoming:
                return self._incoming.popleft()
            if self._closed:
                return None
            with self._sq:
                self._waiting = True
            try:
                if not self.ring.ready():
                    self.ring.submit(wait=1)
            finally:
                self._waiting = False
            self._harvest()

    def _harvest(self) -> None:
        for done in self.ring.reap():
            if done.user_data == DEV:
                self._dev_done(done.res)
            elif 0 <= done.user_data < len(self._entries):
                self._entry_done(self._entries[done.user_data], done.res)
            else:
                raise OSError(errno.EIO, f"a completion with an unknown tag {done.user_data:#x}")

    def _dev_done(self, res: int) -> None:
        if res > 0:
            self._incoming.append(Incoming((self._dev_view[:min(res, len(self._dev_view))],), DEV))
        elif -res in (errno.ENODEV, errno.ECONNABORTED, errno.ECANCELED):
            self._closed = True  # unmounted, or the connection aborted: nothing left to serve
        elif -res in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
            self._read_dev()  # the request was interrupted before we read it
        else:
            self._closed = True
            raise OSError(-res if res < 0 else errno.EIO, f"reading /dev/fuse through the ring: {os.strerror(-res)}")

    def _entry_done(self, entry: Entry, res: int) -> None:
        if res == 0:
            incoming = self._request(entry)
            if incoming is not None:
                self._incoming.append(incoming)
        elif -res in (errno.EAGAIN, errno.EINTR):
            with self._sq:
                self._prepare(entry, entry.command)
        elif -res in (errno.ENOTCONN, errno.ECONNABORTED, errno.ECANCELED):
            pass  # torn down with the connection; the /dev/fuse read says when it is gone
        elif entry.command == CMD_REGISTER:
            # the kernel turned io_uring off for this connection: requests come on /dev/fuse
            log.warning("the kernel refused a ring entry (%s); serving /dev/fuse", os.strerror(-res))
        else:
            self.lost += 1
            raise OSError(-res, f"the kernel did not take back ring entry {entry.index} "
                                f"(commit {entry.commit_id}): {os.strerror(-res)}")

    def _request(self, entry: Entry) -> Incoming | None:
        """The request in ``entry``'s buffers, as one readable buffer (see the module's docstring);
        None for one this transport cannot read, answered EIO at once."""
        view = entry.view
        length = PAYLOAD_SZ.unpack_from(view)[0]  # the in header's first field
        _flags, commit_id, payload = ENT_IN_OUT.unpack_from(view, ENT_IN_OUT_AT)
        entry.commit_id = commit_id
        fixed = length - IN_HEADER.size - payload
        if commit_id == 0 or payload > self.payload_size or not 0 <= fixed <= OP_IN:
            log.error("ring entry %d holds a malformed request (length %d, payload %d, commit %d)",
                      entry.index, length, payload, commit_id)
            self._commit(entry, [out_header(commit_id, errno.EIO, 0)])
            return None
        start = PAGE - fixed - IN_HEADER.size
        view[start:start + IN_HEADER.size] = view[:IN_HEADER.size]
        view[PAGE - fixed:PAGE] = view[OP_IN:OP_IN + fixed]
        return Incoming((view[start:PAGE + payload],), entry)

    def _place(self, view: memoryview, reply: Reply) -> int:
        """Write ``reply`` into an entry: its out header to ``in_out``, the rest to the payload
        buffer; returns its length. The server's replies start with a header of their own
        (written directly); any other split goes through ``scatter``."""
        head = reply[0]
        if type(head) is not bytes or len(head) != OUT_HEADER.size:
            return scatter(reply, [view[:OUT_HEADER.size], view[PAGE:PAGE + self.payload_size]])
        at, end = PAGE, PAGE + self.payload_size
        for i in range(1, len(reply)):
            piece = reply[i]
            if type(piece) is memoryview:
                piece = piece.cast("B") if piece.format != "B" or piece.ndim != 1 else piece
                n = piece.nbytes
            else:
                n = len(piece)
            if at + n > end:
                raise ReplyTooLarge(OUT_HEADER.size + sum(map(len, map(memoryview, reply[1:]))), end - PAGE)
            view[at:at + n] = piece
            at += n
        view[:OUT_HEADER.size] = head
        return OUT_HEADER.size + at - PAGE

    def _commit(self, entry: Entry, reply: Reply | None) -> None:
        """Write ``reply`` into ``entry`` and queue its COMMIT_AND_FETCH."""
        view = entry.view
        if reply is None:  # every ring request takes an answer, or its entry never returns
            reply = [out_header(entry.commit_id, errno.EIO, 0)]
        try:
            length = self._place(view, reply)
        except ReplyTooLarge as exc:
            log.error("ring entry %d: %s", entry.index, exc)
            length = self._place(view, [out_header(entry.commit_id, errno.EIO, 0)])
        PAYLOAD_SZ.pack_into(view, ENT_IN_OUT_AT + 16, length - OUT_HEADER.size)
        with self._sq:
            self._prepare(entry, CMD_COMMIT_AND_FETCH)


def _opcode(request) -> int:
    head = memoryview(request[0]).cast("B")
    return IN_HEADER.unpack_from(head)[1] if len(head) >= IN_HEADER.size else -1
