"""Abstract values and machine states of the verifier, with join and widening.

A register holds a :class:`Scalar`, a :class:`Pointer` into one memory
:class:`Region` with a range of byte offsets, or :class:`Uninit` (never
written, clobbered by a call, or holding different types on paths that
merged: any read of it is refused). A stack frame is 64 slots of 8 bytes;
a slot is either a spilled register (a full, aligned 8-byte store, so pointers
survive spills) or a bit mask of which of its bytes hold initialised data.
"""

from __future__ import annotations

import attrs

from zcsdfs.csd.verifier_scalar import Scalar, Thresholds

STACK_SIZE = 512
SLOTS = STACK_SIZE // 8
OFFSET_LIMIT = 1 << 62  # widened pointer offsets: far outside every region
WILD = 1 << 63  # an offset range that went past OFFSET_LIMIT: any offset, the address may have wrapped


@attrs.frozen
class Uninit:
    why: str = "is not initialised"

    def __str__(self) -> str:
        return "uninitialised"


@attrs.frozen
class Region:
    """One memory region: the context (size known only at run time), a stack
    frame (``index`` = call depth), a data section or helper memory."""

    kind: str  # "ctx", "stack", "section", "mem"
    index: int = 0
    size: int | None = None
    writable: bool = True

    def __str__(self) -> str:
        return {"ctx": "context", "stack": f"stack frame {self.index}",
                "section": f"section {self.index}", "mem": f"helper memory of {self.size} bytes"}[self.kind]


@attrs.frozen
class Pointer:
    """``region`` base plus an offset in ``[lo, hi]`` (stack offsets are
    relative to the frame pointer, so they are negative). ``maybe_null``
    values come from helpers and must be compared with 0 before use; ``ident``
    ties copies of one helper result together so that the check on one copy
    applies to all (-1: no tie)."""

    region: Region
    lo: int = 0
    hi: int = 0
    maybe_null: bool = False
    ident: int = -1

    def moved(self, lo: int, hi: int) -> "Pointer":
        """The pointer with offsets ``[lo, hi]``; past OFFSET_LIMIT it becomes
        wild (any offset), never clamped, so bounds stay honest."""
        if lo < -OFFSET_LIMIT or hi > OFFSET_LIMIT:
            lo, hi = -WILD, WILD
        return attrs.evolve(self, lo=lo, hi=hi)

    def __str__(self) -> str:
        off = f"{self.lo:+d}" if self.lo == self.hi else f"+[{self.lo}, {self.hi}]"
        return f"pointer to {self.region}{off}" + (" or null" if self.maybe_null else "")


MERGED = Uninit("holds different types on paths that merge here")
CLOBBERED = Uninit("was clobbered by a call")


def join_values(a, b):
    if a == b:
        return a
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return a.join(b)
    if isinstance(a, Pointer) and isinstance(b, Pointer):
        if a.region != b.region:
            return MERGED
        return Pointer(a.region, min(a.lo, b.lo), max(a.hi, b.hi), a.maybe_null or b.maybe_null,
                       a.ident if a.ident == b.ident else -1)
    if isinstance(a, Uninit) or isinstance(b, Uninit):
        return a if isinstance(a, Uninit) else b
    ptr, num = (a, b) if isinstance(a, Pointer) else (b, a)
    if ptr.region.kind == "mem" and num.is_const and num.value == 0:
        return attrs.evolve(ptr, maybe_null=True)  # the null branch of a helper result
    return MERGED


def widen_values(old, new, limits: Thresholds):
    """``new`` already includes ``old``; push growing bounds to a threshold."""
    if isinstance(old, Scalar) and isinstance(new, Scalar):
        return old.widen(new, limits)
    if isinstance(old, Pointer) and isinstance(new, Pointer) and old.region == new.region:
        if new.hi > OFFSET_LIMIT:
            return new  # wild already
        return new.moved(old.lo if new.lo >= old.lo else limits.below(new.lo, -OFFSET_LIMIT),
                         old.hi if new.hi <= old.hi else limits.above(new.hi, OFFSET_LIMIT))
    return new


def join_slots(a, b):
    if a == b:
        return a
    if isinstance(a, int) or isinstance(b, int):
        ma = 0xFF if isinstance(a, Scalar) else (a if isinstance(a, int) else 0)
        mb = 0xFF if isinstance(b, Scalar) else (b if isinstance(b, int) else 0)
        return ma & mb  # a spilled pointer merged with bytes: unreadable
    v = join_values(a, b)
    return 0 if isinstance(v, Uninit) else v


def widen_slots(old, new, limits: Thresholds):
    if isinstance(old, int) or isinstance(new, int):
        return new
    return widen_values(old, new, limits)


@attrs.frozen
class State:
    """Registers of the current frame, stack slots of every frame (the last
    is the current one), r6-r9 saved by each caller, and a lower bound on the
    context length learned from comparisons of r2."""

    regs: tuple = attrs.field(converter=tuple)
    stack: tuple = attrs.field(converter=tuple)
    saved: tuple = ()
    ctx_min: int = 0

    def join(self, other: "State") -> "State":
        return State(
            tuple(map(join_values, self.regs, other.regs)),
            tuple(tuple(map(join_slots, a, b)) if a != b else a for a, b in zip(self.stack, other.stack)),
            tuple(tuple(map(join_values, a, b)) for a, b in zip(self.saved, other.saved)),
            min(self.ctx_min, other.ctx_min),
        )

    def widen(self, new: "State", limits: Thresholds) -> "State":
        return State(
            tuple(widen_values(a, b, limits) for a, b in zip(self.regs, new.regs)),
            tuple(tuple(widen_slots(x, y, limits) for x, y in zip(a, b)) if a != b else b
                  for a, b in zip(self.stack, new.stack)),
            tuple(tuple(widen_values(x, y, limits) for x, y in zip(a, b)) for a, b in zip(self.saved, new.saved)),
            new.ctx_min if new.ctx_min >= self.ctx_min else 0,
        )

    def with_reg(self, reg: int, value) -> "State":
        regs = list(self.regs)
        regs[reg] = value
        return attrs.evolve(self, regs=regs)

    def with_frame(self, frame: int, slots: tuple) -> "State":
        stack = list(self.stack)
        stack[frame] = slots
        return attrs.evolve(self, stack=stack)
