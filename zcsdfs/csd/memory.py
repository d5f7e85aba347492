"""The memory of one run: a table of regions at virtual addresses.

Region ``k`` starts at virtual address ``k << 32``; the high half of an
address picks the region and the low half is the offset into it. Region 0 is
empty, so a null pointer (or any small integer used as a pointer) faults. The
context is region 1, the stack frames follow (one 512-byte region per call
depth, so a frame cannot spill into its caller's), then the program's data
sections, then whatever helpers map during the run.

The interpreter's generated code indexes ``readable`` and ``writable``
directly and lets ``struct`` do the bounds check (an offset past the end
raises ``struct.error``, a missing region ``IndexError``, a store into a
read-only region — ``None`` in ``writable`` — ``TypeError``); everything else
(helpers, the CLI) goes through the checked methods below. The same object is
the ``vm`` a helper receives: ``read``, ``write``, ``view``, ``map``, ``stop``,
``env`` and ``context_address`` (what r1 held at entry; 0 without a context).
"""

from __future__ import annotations

from zcsdfs.csd.errors import LimitExceeded, MemoryFault
from zcsdfs.csd.program import Section

REGION_SHIFT = 32
OFFSET_MASK = (1 << REGION_SHIFT) - 1
STACK_SIZE = 512
MAX_FRAMES = 8
NULL_REGION = 0
CONTEXT_REGION = 1
FIRST_FRAME_REGION = 2
FIRST_SECTION_REGION = FIRST_FRAME_REGION + MAX_FRAMES
MAX_REGIONS = 1 << 16  # bounds what helpers can map in one run


def region_base(index: int) -> int:
    return index << REGION_SHIFT


def frame_pointer(depth: int) -> int:
    """r10 at call depth ``depth`` (0 = the entry function): the top of its frame."""
    return region_base(FIRST_FRAME_REGION + depth) + STACK_SIZE


def section_address(index: int) -> int:
    return region_base(FIRST_SECTION_REGION + index)


class HelperAccess:
    """``read`` and ``write`` for helpers, in terms of the engine's checked ``view``."""

    def view(self, addr: int, n: int, writable: bool = False) -> memoryview:
        raise NotImplementedError

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.view(addr, n))

    def write(self, addr: int, data) -> None:
        data = memoryview(data).cast("B")
        self.view(addr, len(data), writable=True)[:] = data


class Memory(HelperAccess):
    """Regions of one run plus the run's stop flag and environment."""

    def __init__(self, context=None, sections: tuple[Section, ...] = (), env=None):
        self.env = env
        self.stopped = False
        self.result = 0
        self.meter = None  # the run's limits.Meter, set by the interpreter
        context = context_buffer(context)
        self.context_length = 0 if context is None else len(context)
        self.context_address = 0 if context is None else region_base(CONTEXT_REGION)
        self.readable: list = [b"", b"" if context is None else context]
        self.writable: list = [None, context]
        for _ in range(MAX_FRAMES):
            frame = bytearray(STACK_SIZE)
            self.readable.append(frame)
            self.writable.append(frame)
        for section in sections:
            data = bytearray(section.data) if section.writable else section.data
            self.readable.append(data)
            self.writable.append(data if section.writable else None)

    def map(self, buffer, writable: bool = False) -> int:
        """Add ``buffer`` as a region for the rest of the run; returns its address."""
        if len(self.readable) >= MAX_REGIONS:
            raise LimitExceeded(f"more than {MAX_REGIONS} memory regions in one run")
        view = memoryview(buffer).cast("B")
        if writable and view.readonly:
            raise ValueError("cannot map a read-only buffer as writable")
        if len(view) > OFFSET_MASK:
            raise ValueError(f"a region is at most {OFFSET_MASK} bytes")
        self.readable.append(view)
        self.writable.append(view if writable else None)
        return region_base(len(self.readable) - 1)

    def view(self, addr: int, n: int, writable: bool = False) -> memoryview:
        """``n`` bytes at ``addr`` without copying; faults unless all are in one region."""
        table = self.writable if writable else self.readable
        index, offset = addr >> REGION_SHIFT, addr & OFFSET_MASK
        buffer = table[index] if 0 <= index < len(table) else None
        if buffer is None or n < 0 or offset + n > len(buffer):
            kind = "write" if writable else "read"
            raise MemoryFault(f"{kind} of {n} bytes at {addr:#x} is outside every {kind}able region")
        return memoryview(buffer)[offset:offset + n]

    def stop(self, r0: int) -> None:
        """End the run once the current helper returns, with ``r0`` as its result."""
        self.stopped = True
        self.result = r0 & 0xFFFFFFFFFFFFFFFF


def context_buffer(mem):
    """The caller's buffer if it is writable (so it sees the program's stores), else a copy."""
    if mem is None:
        return None
    if isinstance(mem, bytearray):
        buffer = mem
    else:
        view = memoryview(mem)
        buffer = bytearray(view) if view.readonly or not view.c_contiguous else view.cast("B")
    if len(buffer) > OFFSET_MASK:
        raise ValueError(f"the context is at most {OFFSET_MASK} bytes")
    return buffer
