"""A split virtqueue (virtio 1.x, section 2.7), device side, over guest memory.

Layout, all little-endian, at addresses the front end gives (in its own
address space, translated through the memory table):

- descriptor table: ``num`` entries of (addr u64, len u32, flags u16, next u16)
- available ring:   flags u16, idx u16, ring[num] u16, used_event u16
- used ring:        flags u16, idx u16, ring[num] of (id u32, len u32), avail_event u16

The guest is untrusted, so ``pop`` checks everything it reads: a head or
``next`` index past the table, a chain longer than the queue (which also
catches loops), an indirect table inside another or chained with NEXT, an
indirect table not a whole number of descriptors or longer than the queue,
a readable descriptor after a writable one, any buffer not wholly inside
guest memory, a chain naming more bytes than ``max_bytes`` (the same pages
named over and over), and an available index that moved by more than the
queue size. Each raises ``QueueError``; the device then stops the queue (the
spec's "needs reset") rather than guess.

EVENT_IDX: the device tells the driver, through ``avail_event``, the index
of the next buffer it wants a kick for, and kicks the driver only when the
used index passes the driver's ``used_event``; without it, the flags say
"no kick needed" and "no interrupt needed".
"""

from __future__ import annotations

import errno
import os
import struct
import threading

import attrs

from zcsdfs.fuse.guestmem import GuestMemory, GuestMemoryError

DESC = struct.Struct("<QIHH")
U16 = struct.Struct("<H")
USED_ELEM = struct.Struct("<II")
DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
AVAIL_F_NO_INTERRUPT = 1
USED_F_NO_NOTIFY = 1
MAX_QUEUE_SIZE = 32768


_FENCE = threading.Lock()


def full_barrier() -> None:
    """A full memory barrier (taking a lock is a locked instruction on x86, which orders stores
    before later loads). Needed where each side writes one index then reads the other's: without
    it both can miss the other's write, and a kick or an interrupt is lost for good."""
    _FENCE.acquire()
    _FENCE.release()


class QueueError(OSError):
    """The driver broke the ring's rules; the queue cannot be trusted any further."""

    def __init__(self, message: str):
        super().__init__(errno.EIO, message)


@attrs.define(eq=False)
class Chain:
    """One descriptor chain: the bytes the driver wrote, then the buffers it gave us to fill."""

    head: int
    readable: list[memoryview]
    writable: list[memoryview]

    @property
    def readable_len(self) -> int:
        return sum(map(len, self.readable))

    @property
    def writable_len(self) -> int:
        return sum(map(len, self.writable))


def size_ok(num: int) -> bool:
    """A split queue's size is a power of two, at most 32768."""
    return 0 < num <= MAX_QUEUE_SIZE and num & (num - 1) == 0


class Virtqueue:
    """Device-side state of one split virtqueue; used by one worker at a time."""

    def __init__(self, mem: GuestMemory, num: int, desc: int, avail: int, used: int,
                 last_avail: int = 0, event_idx: bool = False, indirect: bool = True,
                 max_bytes: int | None = None):
        if not size_ok(num):
            raise QueueError(f"queue size {num} is not a power of two up to {MAX_QUEUE_SIZE}")
        self.num = num
        self.event_idx = event_idx
        self.indirect = indirect
        self.mem = mem
        # A chain may name the same guest pages many times: bound what one request can make us touch.
        self.max_bytes = max_bytes if max_bytes is not None else num * 4096 + (1 << 20)
        event = 2 if event_idx else 0
        try:
            self.desc = mem.user_view(desc, DESC.size * num)
            self.avail = mem.user_view(avail, 4 + 2 * num + event)
            self.used = mem.user_view(used, 4 + USED_ELEM.size * num + event)
        except GuestMemoryError as exc:
            raise QueueError(f"ring outside guest memory: {exc.strerror}") from None
        if desc % 16 or avail % 2 or used % 4:
            raise QueueError("misaligned ring")
        self.last_avail = last_avail & 0xFFFF
        self.used_idx = U16.unpack_from(self.used, 2)[0]
        self.signalled_used: int | None = None  # used index at the last interrupt (EVENT_IDX)

    def release(self) -> None:
        """Let go of the views into guest memory (before the memory is unmapped)."""
        for view in (self.desc, self.avail, self.used):
            view.release()

    # -- the driver's side of the rings ------------------------------------------------------

    def avail_idx(self) -> int:
        return U16.unpack_from(self.avail, 2)[0]

    def pending(self) -> int:
        """How many chains are waiting; refuses an index that moved by more than the queue."""
        waiting = (self.avail_idx() - self.last_avail) & 0xFFFF
        if waiting > self.num:
            raise QueueError(f"available index moved by {waiting}, more than the queue's {self.num}")
        return waiting

    def pop(self) -> Chain | None:
        """The next available chain, checked; None when the driver has posted nothing more."""
        if not self.pending():
            return None
        head = U16.unpack_from(self.avail, 4 + 2 * (self.last_avail % self.num))[0]
        chain = self._walk(head)
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        return chain

    def _walk(self, head: int) -> Chain:
        """Follow the chain from ``head``. Descriptors that continue one another in guest memory
        (the pages of one buffer, often) become one view, so a 1 MiB request is walked and
        scattered in a few pieces rather than 256."""
        if head >= self.num:
            raise QueueError(f"chain head {head} past the queue's {self.num} descriptors")
        readable: list[list] = []  # [region, start, end] spans, merged where contiguous
        writable: list[list] = []
        table, size, index, seen, indirect, total = self.desc, self.num, head, 0, False, 0
        unpack, spans = DESC.unpack_from, self.mem.spans
        hit = None  # the region the last buffer was found in: the next is most likely there too
        while True:
            addr, length, flags, nxt = unpack(table, DESC.size * index)
            seen += 1
            if seen > self.num:
                raise QueueError(f"chain from {head} longer than the queue ({self.num}): a loop?")
            if flags & DESC_F_INDIRECT:
                if indirect:
                    raise QueueError(f"chain from {head}: an indirect table inside an indirect table")
                if not self.indirect:
                    raise QueueError(f"chain from {head}: indirect descriptor not negotiated")
                if flags & DESC_F_NEXT or readable or writable:
                    raise QueueError(f"chain from {head}: an indirect descriptor must be alone")
                if length == 0 or length % DESC.size or length // DESC.size > self.num:
                    raise QueueError(f"chain from {head}: indirect table of {length} bytes")
                table = self._one_view(addr, length, head)
                size, index, seen, indirect = length // DESC.size, 0, 0, True
                continue
            total += length
            if total > self.max_bytes:
                raise QueueError(f"chain from {head}: more than {self.max_bytes} bytes")
            if flags & DESC_F_WRITE:
                into = writable
            elif writable:
                raise QueueError(f"chain from {head}: a readable descriptor after a writable one")
            else:
                into = readable
            last = into[-1] if into else None
            if last is not None and addr - last[0].gpa == last[2] and last[2] + length <= last[0].size:
                last[2] += length  # continues the previous buffer, inside the same region
            elif length and hit is not None and 0 <= addr - hit.gpa <= hit.size - length:
                into.append([hit, addr - hit.gpa, addr - hit.gpa + length])  # in the region of the last one
            else:
                try:
                    found = spans(addr, length)
                except GuestMemoryError as exc:
                    raise QueueError(f"chain from {head}: {exc.strerror}") from None
                for region, start, end in found:
                    if into and into[-1][0] is region and into[-1][2] == start:
                        into[-1][2] = end
                    else:
                        into.append([region, start, end])
                    hit = region
            if not flags & DESC_F_NEXT:
                return Chain(head, [r.view[a:b] for r, a, b in readable], [r.view[a:b] for r, a, b in writable])
            if nxt >= size:
                raise QueueError(f"chain from {head}: next {nxt} past the table's {size} descriptors")
            index = nxt

    def _views(self, addr: int, length: int, head: int) -> list[memoryview]:
        try:
            return self.mem.view(addr, length)
        except GuestMemoryError as exc:
            raise QueueError(f"chain from {head}: {exc.strerror}") from None

    def _one_view(self, addr: int, length: int, head: int) -> memoryview:
        views = self._views(addr, length, head)
        if len(views) != 1:
            raise QueueError(f"chain from {head}: indirect table crosses memory regions")
        return views[0]

    # -- the device's side -------------------------------------------------------------------

    def push(self, head: int, length: int) -> None:
        """Return a chain to the driver with ``length`` bytes written into it."""
        USED_ELEM.pack_into(self.used, 4 + USED_ELEM.size * (self.used_idx % self.num), head, length)
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        U16.pack_into(self.used, 2, self.used_idx)  # after the element (x86 keeps stores in order)

    def should_interrupt(self) -> bool:
        """Whether the driver wants an interrupt for what was pushed since the last one."""
        full_barrier()  # our used index is visible before we read what the driver wants
        if not self.event_idx:
            return not U16.unpack_from(self.avail, 0)[0] & AVAIL_F_NO_INTERRUPT
        old, new = self.signalled_used, self.used_idx
        self.signalled_used = new
        if old is None:
            return True
        used_event = U16.unpack_from(self.avail, 4 + 2 * self.num)[0]
        return (new - used_event - 1) & 0xFFFF < (new - old) & 0xFFFF

    def want_kicks(self, enable: bool) -> None:
        """Ask for kicks again (before sleeping) or not (while draining the ring)."""
        if self.event_idx:
            if enable:
                U16.pack_into(self.used, 4 + USED_ELEM.size * self.num, self.last_avail)
        else:
            U16.pack_into(self.used, 0, 0 if enable else USED_F_NO_NOTIFY)


def signal_eventfd(fd: int | None) -> None:
    """Kick an eventfd (the call or err descriptor); a gone front end is not our failure."""
    if fd is None:
        return
    try:
        os.write(fd, (1).to_bytes(8, "little"))
    except OSError:
        pass  # the front end closed it: it is going away and the disconnect will stop us
