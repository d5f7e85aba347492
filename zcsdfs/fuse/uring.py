"""A minimal io_uring from Python: one ring, 128-byte SQEs, submit and reap.

Enough for FUSE over io_uring (``fuse_uring.py``): ``io_uring_setup`` (425)
and ``io_uring_enter`` (426) through ``syscall(2)`` (ctypes releases the GIL
while the kernel waits), the SQ and CQ rings and the SQE array mapped with
``mmap``. The kernel's ABI is ``include/uapi/linux/io_uring.h``; offsets
below are from there.

The rings are shared memory written by both sides. Stores to an SQE and
then to the SQ tail, and loads of a CQE after the CQ tail, must stay in
order; x86-64's memory model keeps them so with plain loads and stores, which
is all Python can issue, so ``Ring`` refuses other machines (EOPNOTSUPP).

Not thread-safe: the caller serialises ``prepare`` (the SQ side) and
``reap`` (the CQ side); the two sides may run in different threads, and
``submit``/``enter`` in any thread.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct

import attrs

SYS_IO_URING_SETUP = 425
SYS_IO_URING_ENTER = 426

IORING_SETUP_CQSIZE = 1 << 3
IORING_SETUP_SUBMIT_ALL = 1 << 7
IORING_SETUP_SQE128 = 1 << 10
IORING_FEAT_SINGLE_MMAP = 1 << 0
IORING_ENTER_GETEVENTS = 1 << 0
IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000
IORING_SQ_CQ_OVERFLOW = 1 << 1

OP_NOP = 0
OP_READV = 1
OP_WRITEV = 2
OP_READ = 22
OP_URING_CMD = 46

MAX_ENTRIES = 4096  # more than any user here needs; the kernel allows 32768
SQE_SIZE = 128  # with IORING_SETUP_SQE128
CMD_SIZE = 80  # the command area of a 128-byte SQE (sqe->cmd), at byte 48
CQE = struct.Struct("<QiI")  # user_data res flags

# io_uring_params: sq_entries cq_entries flags sq_thread_cpu sq_thread_idle features wq_fd resv[3],
# then io_sqring_offsets (head tail ring_mask ring_entries flags dropped array resv1 user_addr)
# and io_cqring_offsets (head tail ring_mask ring_entries overflow cqes flags resv1 user_addr).
PARAMS = struct.Struct("<7I12x" + "8IQ" + "8IQ")
# sqe: opcode flags ioprio fd off|cmd_op addr len op_flags user_data buf_index personality file_index,
# then the command area (zero-padded)
SQE = struct.Struct(f"<BBHiQQIIQHHI{CMD_SIZE}s")
U32 = struct.Struct("<I")

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def supported() -> str | None:
    """Why io_uring cannot be used here (None when it can): the machine, or the kernel's
    ``kernel.io_uring_disabled``."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"io_uring from Python needs x86-64's memory ordering (this is {platform.machine()})"
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() == "2":
                return "io_uring is disabled (kernel.io_uring_disabled = 2)"
    except OSError:
        pass  # an older kernel without the switch
    return None


@attrs.frozen
class Completion:
    """One CQE: the ``user_data`` its SQE carried, the result (a negative errno on failure)."""

    user_data: int
    res: int
    flags: int


class Ring:
    """One io_uring with ``entries`` 128-byte SQEs and ``cq_entries`` CQEs (twice as many by
    default). ``close`` unmaps and closes; the kernel cancels what is still in flight."""

    def __init__(self, entries: int, cq_entries: int | None = None):
        why = supported()
        if why:
            raise OSError(errno.EOPNOTSUPP, why)
        if not 1 <= entries <= MAX_ENTRIES:
            raise OSError(errno.EINVAL, f"ring entries {entries} out of range 1-{MAX_ENTRIES}")
        cq_entries = 2 * entries if cq_entries is None else cq_entries
        if not entries <= cq_entries <= 2 * MAX_ENTRIES:
            raise OSError(errno.EINVAL, f"completion entries {cq_entries} out of range {entries}-{2 * MAX_ENTRIES}")
        params = bytearray(PARAMS.size + 40)  # 120 bytes; room to spare
        struct.pack_into("<III", params, 0, 0, cq_entries, IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL)
        buf = (ctypes.c_char * len(params)).from_buffer(params)
        fd = _syscall(SYS_IO_URING_SETUP, ctypes.c_uint(entries), buf)
        del buf
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"io_uring_setup: {os.strerror(code)}")
        self.fd = fd
        self._maps: list[mmap.mmap] = []
        try:
            self._map(params)
        except BaseException:
            self.close()
            raise

    def _map(self, params: bytearray) -> None:
        (sq_entries, cq_entries, _flags, _cpu, _idle, features, _wq,
         sq_head, sq_tail, sq_mask, _sq_n, sq_flags, _dropped, sq_array, _r1, _ua1,
         cq_head, cq_tail, cq_mask, _cq_n, _overflow, cqes, _cq_flags, _r2, _ua2) = PARAMS.unpack_from(params)
        self.sq_entries, self.cq_entries = sq_entries, cq_entries
        sq_size = sq_array + 4 * sq_entries
        cq_size = cqes + CQE.size * cq_entries
        if features & IORING_FEAT_SINGLE_MMAP:
            sq_size = cq_size = max(sq_size, cq_size)
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        sq = mmap.mmap(self.fd, sq_size, flags, prot, offset=IORING_OFF_SQ_RING)
        self._maps.append(sq)
        if features & IORING_FEAT_SINGLE_MMAP:
            cq = sq
        else:
            cq = mmap.mmap(self.fd, cq_size, flags, prot, offset=IORING_OFF_CQ_RING)
            self._maps.append(cq)
        sqes = mmap.mmap(self.fd, SQE_SIZE * sq_entries, flags, prot, offset=IORING_OFF_SQES)
        self._maps.append(sqes)
        self._sq, self._cq, self._sqes = memoryview(sq), memoryview(cq), memoryview(sqes)
        self._sq_head, self._sq_tail, self._sq_flags = sq_head, sq_tail, sq_flags
        self._sq_mask = U32.unpack_from(sq, sq_mask)[0]
        self._cq_head, self._cq_tail, self._cqes = cq_head, cq_tail, cqes
        self._cq_mask = U32.unpack_from(cq, cq_mask)[0]
        for i in range(sq_entries):  # the indirection array: slot i holds SQE i, once for all
            U32.pack_into(sq, sq_array + 4 * i, i)
        self._tail = U32.unpack_from(sq, sq_tail)[0]

    # -- submission side ----------------------------------------------------------------------

    def space(self) -> int:
        """How many SQEs can be prepared now."""
        head = U32.unpack_from(self._sq, self._sq_head)[0]
        return self.sq_entries - ((self._tail - head) & 0xFFFFFFFF)

    def prepare(self, opcode: int, fd: int = -1, *, addr: int = 0, length: int = 0, off: int = 0,
                op_flags: int = 0, user_data: int = 0, cmd: bytes = b"") -> None:
        """Fill the next SQE and publish it (the kernel takes it at the next ``submit``).
        For IORING_OP_URING_CMD ``off`` is the command's ``cmd_op``; ``cmd`` its 80-byte area."""
        if len(cmd) > CMD_SIZE:
            raise OSError(errno.EINVAL, f"a command of {len(cmd)} bytes does not fit {CMD_SIZE}")
        if self.space() <= 0:
            raise OSError(errno.EBUSY, "the submission queue is full")
        SQE.pack_into(self._sqes, (self._tail & self._sq_mask) * SQE_SIZE,
                      opcode, 0, 0, fd, off, addr, length, op_flags, user_data, 0, 0, 0, cmd)
        self._tail = (self._tail + 1) & 0xFFFFFFFF
        U32.pack_into(self._sq, self._sq_tail, self._tail)  # after the SQE: x86-64 keeps the order

    def unsubmitted(self) -> int:
        """How many prepared SQEs the kernel has not taken yet."""
        return self.sq_entries - self.space()

    def enter(self, to_submit: int, min_complete: int, flags: int = 0) -> int:
        """io_uring_enter(2); returns how many SQEs the kernel took. EINTR (a signal, or task
        work run while waiting) returns 0: the caller looks at the CQ and comes back."""
        n = _syscall(SYS_IO_URING_ENTER, ctypes.c_uint(self.fd), ctypes.c_uint(to_submit),
                     ctypes.c_uint(min_complete), ctypes.c_uint(flags), None, ctypes.c_size_t(0))
        if n < 0:
            code = ctypes.get_errno()
            if code == errno.EINTR:
                return 0
            raise OSError(code, f"io_uring_enter: {os.strerror(code)}")
        return n

    def submit(self, wait: int = 0) -> int:
        """Hand the prepared SQEs to the kernel and wait for ``wait`` completions; returns how
        many SQEs were taken. Any thread may call it while another prepares: the kernel takes
        what was published before it looked, and never more."""
        return self.enter(self.unsubmitted(), wait, IORING_ENTER_GETEVENTS if wait else 0)

    # -- completion side ----------------------------------------------------------------------

    def ready(self) -> int:
        """How many completions wait to be reaped."""
        cq = self._cq
        return (U32.unpack_from(cq, self._cq_tail)[0] - U32.unpack_from(cq, self._cq_head)[0]) & 0xFFFFFFFF

    def reap(self, limit: int | None = None) -> list[Completion]:
        """Take the waiting completions (at most ``limit``), oldest first."""
        cq = self._cq
        head = U32.unpack_from(cq, self._cq_head)[0]
        tail = U32.unpack_from(cq, self._cq_tail)[0]
        count = (tail - head) & 0xFFFFFFFF
        if count > self.cq_entries:
            raise OSError(errno.EIO, f"the kernel's CQ says {count} completions in {self.cq_entries} slots")
        if limit is not None:
            count = min(count, limit)
        out = []
        mask, base = self._cq_mask, self._cqes
        for i in range(count):
            out.append(Completion(*CQE.unpack_from(cq, base + ((head + i) & mask) * CQE.size)))
        U32.pack_into(cq, self._cq_head, (head + count) & 0xFFFFFFFF)  # after reading: the slots are free
        return out

    def overflowed(self) -> bool:
        """Whether the kernel holds completions the CQ had no room for (the next enter with
        GETEVENTS flushes them)."""
        return bool(U32.unpack_from(self._sq, self._sq_flags)[0] & IORING_SQ_CQ_OVERFLOW)

    def close(self) -> None:
        for name in ("_sq", "_cq", "_sqes"):
            view = getattr(self, name, None)
            if view is not None:
                view.release()
                setattr(self, name, None)
        for m in self._maps:
            m.close()
        self._maps = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def address(buffer) -> int:
    """The address of a writable buffer (a bytearray, an mmap), to give the kernel."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
