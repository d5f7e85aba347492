"""Abstract interpretation: types and ranges of every register and stack slot
at every reachable instruction, computed to a fixpoint.

Unlike Linux, which walks paths one by one and prunes equal states, this
walks the control-flow graph and *joins* the states of paths that meet (as
PREVAIL does), widening at loop heads, so loops are allowed and the work is
a small multiple of the program size. Each call is analysed in its own
context (the chain of call sites; the call graph is acyclic and at most 8
deep), so a callee sees the exact stack frames of its caller.

Every load, store and atomic is either proven inside its region, refused
(proven outside, or outside a stack frame, which is never checked at run
time), or recorded in ``checked`` for the engines' run-time bounds check.
"""

from __future__ import annotations

import heapq

import attrs

from zcsdfs.csd import isa
from zcsdfs.csd.errors import ProgramRefused
from zcsdfs.csd.helpers import Arg, HelperSet, Ret
from zcsdfs.csd.program import Program
from zcsdfs.csd.verifier_cfg import ControlFlow, jump_target
from zcsdfs.csd.verifier_scalar import Scalar, Thresholds, alu, refine
from zcsdfs.csd.verifier_state import (
    CLOBBERED, OFFSET_LIMIT, SLOTS, STACK_SIZE, Pointer, Region, State, Uninit,
)

WIDEN_AFTER = 2  # joins at a loop head before its growing bounds are widened
THRESHOLD_ROUNDS = 3  # widenings to the next threshold before going to the extremes
MAX_JOINS = 8 * (WIDEN_AFTER + THRESHOLD_ROUNDS)  # joins at one loop head, resets included, before the extremes
NO_THRESHOLDS = Thresholds(set())
# Instructions analysed, over all visits and contexts: twice the largest
# program, so a straight or simply looping kernel of any allowed size fits,
# while the verifier's work (tens of microseconds a step) stays bounded to
# seconds whatever a hostile program does.
MAX_PROCESSED = 1 << 17
NEAR = 1 << 32
PAGE = 4096
CTX = Region("ctx")
_SIGNED = {isa.JGT: isa.JSGT, isa.JGE: isa.JSGE, isa.JLT: isa.JSLT, isa.JLE: isa.JSLE}


def _stack(frame: int) -> Region:
    return Region("stack", frame, STACK_SIZE)


def _fp(frame: int) -> Pointer:
    return Pointer(_stack(frame))


def _near(p: Pointer) -> bool:
    """Offsets small enough that base + offset cannot wrap around (and were
    never clamped), so they order and subtract like the addresses."""
    return not p.maybe_null and -NEAR < p.lo and p.hi < NEAR


def _comparable(p: Pointer) -> bool:
    """Offsets bounded so that base + offset wraps in neither engine: at
    most a page below the region (every real base is above the kernel's
    mmap_min_addr, every virtual one at 2**32 or more; an absent context is
    0 in both) and at most OFFSET_LIMIT above it (host addresses are below
    2**47), so two such pointers into one region order as their offsets."""
    return not p.maybe_null and -PAGE <= p.lo and p.hi <= OFFSET_LIMIT


def _loaded(size: int, signed: bool) -> Scalar:
    bits = 8 * size
    if signed:
        return Scalar.signed(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return Scalar.unsigned(0, (1 << bits) - 1)


def _bytes_mask(start: int, end: int, slot: int) -> int:
    """Bits of slot ``slot`` covered by stack bytes ``[start, end)``."""
    lo, hi = max(start, slot * 8), min(end, slot * 8 + 8)
    return ((1 << (hi - lo)) - 1) << (lo - slot * 8) if lo < hi else 0


class Analysis:
    def __init__(self, program: Program, helpers: HelperSet, cfg: ControlFlow):
        self.program = program
        self.insns = program.insns
        self.helpers = helpers
        self.cfg = cfg
        self.checked: set[int] = set()
        self.total_joins: dict[tuple, int] = {}
        self.processed = 0
        self.stack_depth: dict[int, int] = {f: 0 for f in cfg.functions}
        constants = {i.imm for i in program.insns if i.cls in (isa.JMP, isa.JMP32)
                     and i.source == isa.K and i.op not in (isa.JA, isa.CALL, isa.EXIT)}
        self.limits = Thresholds(constants | {-STACK_SIZE, 0})

    # -- driver -------------------------------------------------------------

    def run(self) -> None:
        entry = State(
            [Uninit(), Pointer(CTX), Scalar(ctx_len=True)] + [Uninit()] * 7 + [_fp(0)],
            [(0,) * SLOTS],
        )
        states = {(0,): entry}
        joins: dict[tuple, int] = {}
        queue = [(0,)]
        queued = {(0,)}
        while queue:
            key = heapq.heappop(queue)
            queued.discard(key)
            self.processed += 1
            if self.processed > MAX_PROCESSED:
                raise ProgramRefused(f"program too complex to verify: more than {MAX_PROCESSED:,} instructions "
                                     f"analysed", pc=key[-1])
            for succ, state in self.step(key[:-1], key[-1], states[key]):
                old = states.get(succ)
                if old is not None and succ[-1] not in self.cfg.merges:
                    # one way in: the state computed from the predecessor's
                    # latest (larger) state replaces the old one
                    if state == old:
                        continue
                elif old is not None:
                    new = old.join(state)
                    if new == old:
                        continue
                    if succ[-1] in self.cfg.loop_heads:
                        new = self.widen(joins, key, succ, old, new)
                    state = new
                states[succ] = state
                if succ not in queued:
                    queued.add(succ)
                    heapq.heappush(queue, succ)

    def widen(self, joins: dict, key: tuple, head: tuple, old: State, new: State) -> State:
        """Widen at a loop head once its back edges have grown it a few
        times; a change arriving from outside the loop (an outer iteration)
        starts the count again, so inner loops keep their thresholds. A loop
        that clang rotated enters its head by a forward jump from its own
        body, which looks like such a change: after MAX_JOINS joins in all,
        the head widens to the extremes, so the fixpoint is always reached."""
        self.total_joins[head] = total = self.total_joins.get(head, 0) + 1
        if total > MAX_JOINS:
            return old.widen(new, NO_THRESHOLDS)
        if not (key[:-1] == head[:-1] and key[-1] >= head[-1]):
            joins[head] = 0
            return new
        joins[head] = count = joins.get(head, 0) + 1
        if count > WIDEN_AFTER + THRESHOLD_ROUNDS:
            return old.widen(new, NO_THRESHOLDS)
        if count > WIDEN_AFTER:
            return old.widen(new, self.limits)
        return new

    def step(self, ctx: tuple, pc: int, s: State) -> list[tuple[tuple, State]]:
        insn = self.insns[pc]
        cls = insn.cls
        if cls == isa.LD:
            return [(ctx + (pc + 2,), self.lddw(s, insn, pc))]
        if cls == isa.LDX:
            return [(ctx + (pc + 1,), self.load(s, insn, pc, ctx))]
        if cls in (isa.ST, isa.STX):
            return [(ctx + (pc + 1,), self.store(s, insn, pc, ctx))]
        if cls in (isa.ALU, isa.ALU64):
            return [(ctx + (pc + 1,), self.arith(s, insn, pc))]
        op = insn.op
        if op == isa.CALL:
            if insn.src == isa.CALL_LOCAL:
                return [self.call_local(s, insn, pc, ctx)]
            return [(ctx + (pc + 1,), self.call_helper(s, insn, pc))]
        if op == isa.EXIT:
            return self.exit(s, pc, ctx)
        if op == isa.JA:
            return [(ctx + (jump_target(insn, pc),), s)]
        return [(ctx + (jump_target(insn, pc) if taken else pc + 1,), state)
                for taken, state in self.branch(s, insn, pc)]

    # -- registers ------------------------------------------------------------

    def read(self, s: State, reg: int, pc: int):
        value = s.regs[reg]
        if isinstance(value, Uninit):
            raise ProgramRefused(f"r{reg} {value.why}", pc=pc)
        return value

    def scalar(self, s: State, reg: int, pc: int, what: str) -> Scalar:
        value = self.read(s, reg, pc)
        if isinstance(value, Pointer):
            raise ProgramRefused(f"{what} on r{reg}, which holds a {value} (pointers allow only add and sub of a scalar)", pc=pc)
        return value

    def lddw(self, s: State, insn: isa.Instruction, pc: int) -> State:
        second = self.insns[pc + 1]
        if insn.src == isa.LDDW_SECTION:
            section = self.program.sections[insn.imm]
            region = Region("section", insn.imm, len(section.data), section.writable)
            return s.with_reg(insn.dst, Pointer(region, second.imm, second.imm))
        return s.with_reg(insn.dst, Scalar.const(isa.lddw_value(insn, second)))

    def arith(self, s: State, insn: isa.Instruction, pc: int) -> State:
        op, is64 = insn.op, insn.cls == isa.ALU64
        name = isa.ALU_NAMES[op] + ("" if is64 else "32")
        if op in (isa.NEG, isa.END):
            a = self.scalar(s, insn.dst, pc, name)
            to_big = op == isa.END and (is64 or insn.source == isa.X)
            # END works on imm bits whatever its class; NEG follows the class
            return s.with_reg(insn.dst, alu(op, is64 or op == isa.END, int(to_big), a, a, insn.imm))
        src = Scalar.const(insn.imm) if insn.source == isa.K else self.read(s, insn.src, pc)
        if op == isa.MOV:
            if is64 and not insn.off:
                return s.with_reg(insn.dst, src)  # copies pointers too
            if isinstance(src, Pointer):
                raise ProgramRefused(f"{name} would truncate the pointer in r{insn.src}", pc=pc)
            return s.with_reg(insn.dst, alu(op, is64, insn.off, src, src))
        dst = self.read(s, insn.dst, pc)
        if isinstance(dst, Pointer) or isinstance(src, Pointer):
            return s.with_reg(insn.dst, self.pointer_arith(insn, pc, name, dst, src))
        return s.with_reg(insn.dst, alu(op, is64, insn.off, dst, src, insn.imm))

    def pointer_arith(self, insn: isa.Instruction, pc: int, name: str, dst, src):
        op = insn.op
        if insn.cls != isa.ALU64 or op not in (isa.ADD, isa.SUB):
            raise ProgramRefused(f"{name} on a pointer (pointers allow only 64-bit add and sub of a scalar)", pc=pc)
        for v in (dst, src):
            if isinstance(v, Pointer) and v.maybe_null:
                raise ProgramRefused(f"arithmetic on a {v}; compare it with 0 first", pc=pc)
        if isinstance(dst, Pointer) and isinstance(src, Pointer):
            if op == isa.SUB and dst.region == src.region:
                if _near(dst) and _near(src):
                    return Scalar.signed(dst.lo - src.hi, dst.hi - src.lo)
                return Scalar()
            raise ProgramRefused(f"{name} of two pointers ({dst} and {src})", pc=pc)
        if isinstance(src, Pointer):
            if op == isa.SUB:
                raise ProgramRefused("subtracting a pointer from a scalar", pc=pc)
            dst, src = src, dst
        if op == isa.ADD:
            return dst.moved(dst.lo + src.smin, dst.hi + src.smax)
        return dst.moved(dst.lo - src.smax, dst.hi - src.smin)

    # -- branches -------------------------------------------------------------

    def branch(self, s: State, insn: isa.Instruction, pc: int) -> list[tuple[bool, State]]:
        is64 = insn.cls == isa.JMP
        a = self.read(s, insn.dst, pc)
        b = Scalar.const(insn.imm) if insn.source == isa.K else self.read(s, insn.src, pc)
        out = []
        for taken in (True, False):
            if isinstance(a, Scalar) and isinstance(b, Scalar):
                narrowed = refine(insn.op, is64, a, b, taken)
                if narrowed is None:
                    continue
                state = self._narrowed(s, insn, narrowed)
            else:
                state = self._pointer_branch(s, insn, pc, a, b, taken, is64)
            if state is not None:
                out.append((taken, state))
        return out

    def _narrowed(self, s: State, insn: isa.Instruction, narrowed) -> State:
        a, b = narrowed
        regs = list(s.regs)
        regs[insn.dst] = a
        ctx_min = max(s.ctx_min, a.umin) if a.ctx_len else s.ctx_min
        if insn.source == isa.X:
            regs[insn.src] = b
            if b.ctx_len:
                ctx_min = max(ctx_min, b.umin)
        return attrs.evolve(s, regs=regs, ctx_min=ctx_min)

    def _pointer_branch(self, s: State, insn, pc: int, a, b, taken: bool, is64: bool) -> State | None:
        """A comparison involving a pointer. Only two kinds are allowed, both
        with an outcome that is the same in every engine and says nothing
        about where memory is: a null check (64-bit jeq/jne against 0) of a
        helper's maybe-null result or of a pointer with a small offset (only
        the context can be null, when there is none), and a 64-bit ordering
        or equality test of two pointers into the same region whose offsets
        are too small to wrap.
        Anything else (a pointer against a number, against a pointer into
        another region, in 32 bits, or jset) would let a kernel learn host
        addresses bit by bit under the JIT, so it is refused."""
        op = insn.op
        name = isa.JMP_NAMES[op] + ("" if is64 else "32")
        ptr, other = (a, b) if isinstance(a, Pointer) else (b, a)
        if not is64:
            raise ProgramRefused(f"{name} compares the {ptr} in 32 bits (pointers compare only in 64 bits)",
                                 pc=pc)
        if isinstance(other, Scalar):
            if not ((ptr.maybe_null or _comparable(ptr)) and other.is_const and other.value == 0
                    and op in (isa.JEQ, isa.JNE)):
                raise ProgramRefused(f"{name} compares the {ptr} with a number (a pointer may be compared "
                                     f"only with 0, by jeq or jne: a null check)", pc=pc)
            if not ptr.maybe_null:
                return s  # null only where the context is absent, in both engines alike
            null = (op == isa.JEQ) == taken
            resolved = Scalar.const(0) if null else attrs.evolve(ptr, maybe_null=False)
            regs = [resolved if v == ptr or (ptr.ident >= 0 and isinstance(v, Pointer)
                                             and v.ident == ptr.ident and v.maybe_null) else v
                    for v in s.regs]
            return attrs.evolve(s, regs=regs)
        if a.region != b.region:
            raise ProgramRefused(f"{name} compares pointers into different regions ({a} and {b})", pc=pc)
        if not (_comparable(a) and _comparable(b)) or op not in (*_SIGNED, *_SIGNED.values(), isa.JEQ, isa.JNE):
            raise ProgramRefused(f"{name} of the {a} and the {b} (two pointers compare only with "
                                 f"jeq, jne, jgt, jge, jlt, jle or their signed forms, and only "
                                 f"with offsets that cannot wrap around)", pc=pc)
        # same region, offsets that cannot wrap: addresses order as offsets do
        narrowed = refine(_SIGNED.get(op, op), True, Scalar.signed(a.lo, a.hi), Scalar.signed(b.lo, b.hi), taken)
        if narrowed is None:
            return None
        regs = list(s.regs)
        regs[insn.dst] = a.moved(narrowed[0].smin, narrowed[0].smax)
        if insn.source == isa.X:
            regs[insn.src] = b.moved(narrowed[1].smin, narrowed[1].smax)
        return attrs.evolve(s, regs=regs)

    # -- memory -------------------------------------------------------------

    def address(self, s: State, reg: int, off: int, pc: int) -> Pointer:
        base = self.read(s, reg, pc)
        if isinstance(base, Scalar):
            raise ProgramRefused(f"memory access through r{reg}, which holds a scalar, not a pointer", pc=pc)
        if base.maybe_null:
            raise ProgramRefused(f"memory access through r{reg}, a {base}; compare it with 0 first", pc=pc)
        return base.moved(base.lo + off, base.hi + off)

    def bounds(self, s: State, p: Pointer, size: int, pc: int, ctx: tuple) -> bool:
        """True if proven in bounds, False if it needs a run-time check;
        refuse if it is outside its region on every path (or may leave a
        stack frame)."""
        region = p.region
        where = f"{size}-byte access at {p}"
        if region.kind == "stack":
            if not (-STACK_SIZE <= p.lo and p.hi + size <= 0):
                raise ProgramRefused(f"{where} is outside the {STACK_SIZE}-byte stack frame", pc=pc)
            entry = 0 if region.index == 0 else jump_target(self.insns[ctx[region.index - 1]], ctx[region.index - 1])
            self.stack_depth[entry] = max(self.stack_depth[entry], -p.lo)
            return True
        if region.kind == "ctx":
            if p.hi < 0:
                raise ProgramRefused(f"{where} is before the start of the context", pc=pc)
            return 0 <= p.lo and p.hi + size <= s.ctx_min
        if p.hi < 0 or p.lo + size > region.size:
            raise ProgramRefused(f"{where} is outside the {region.size}-byte {region}", pc=pc)
        return 0 <= p.lo and p.hi + size <= region.size

    def access(self, s: State, p: Pointer, size: int, pc: int, ctx: tuple) -> None:
        if not self.bounds(s, p, size, pc, ctx):
            self.checked.add(pc)

    def load(self, s: State, insn: isa.Instruction, pc: int, ctx: tuple) -> State:
        size = isa.SIZE_BYTES[insn.size]
        signed = insn.mode == isa.MEMSX
        p = self.address(s, insn.src, insn.off, pc)
        self.access(s, p, size, pc, ctx)
        if p.region.kind == "stack":
            value = self.stack_read(s, p, size, pc, signed)
        elif p.region.kind == "section" and not p.region.writable and p.lo == p.hi:
            data = self.program.sections[p.region.index].data[p.lo:p.lo + size]
            value = Scalar.const(int.from_bytes(data, "little", signed=signed))
        else:
            value = _loaded(size, signed)
        return s.with_reg(insn.dst, value)

    def store(self, s: State, insn: isa.Instruction, pc: int, ctx: tuple) -> State:
        size = isa.SIZE_BYTES[insn.size]
        p = self.address(s, insn.dst, insn.off, pc)
        if insn.cls == isa.ST:
            value = Scalar.const(insn.imm)
        else:
            value = self.read(s, insn.src, pc)
        atomic = insn.mode == isa.ATOMIC
        if atomic and isinstance(value, Pointer):
            raise ProgramRefused(f"atomic operation with the {value} in r{insn.src} (pointer leak)", pc=pc)
        if atomic and insn.imm == isa.CMPXCHG:
            self.scalar(s, 0, pc, "cmpxchg")
        self.access(s, p, size, pc, ctx)
        region = p.region
        if region.kind != "stack":
            if not region.writable:
                raise ProgramRefused(f"store to the read-only {region}", pc=pc)
            if isinstance(value, Pointer):
                raise ProgramRefused(f"storing the {value} in r{insn.src} into the {region} (pointer leak)", pc=pc)
        elif atomic:
            if isinstance(self.stack_read(s, p, size, pc, False), Pointer):
                raise ProgramRefused(f"atomic operation on a pointer spilled at {p}", pc=pc)
            s = self.stack_write(s, p, size, Scalar(), pc)
        else:
            s = self.stack_write(s, p, size, value, pc)
        if atomic and insn.imm & isa.FETCH:
            fetched = _loaded(size, False)
            s = s.with_reg(0 if insn.imm == isa.CMPXCHG else insn.src, fetched)
        return s

    def stack_read(self, s: State, p: Pointer, size: int, pc: int, signed: bool):
        slots = s.stack[p.region.index]
        start, end = STACK_SIZE + p.lo, STACK_SIZE + p.hi + size
        if p.lo == p.hi and start % 8 == 0 and size == 8 and not isinstance(slots[start // 8], int):
            return slots[start // 8]  # a spilled register, pointer or scalar
        for i in range(start // 8, (end + 7) // 8):
            slot = slots[i]
            want = _bytes_mask(start, end, i)
            if isinstance(slot, Pointer):
                raise ProgramRefused(f"{size}-byte read of part of the {slot} spilled at fp{i * 8 - STACK_SIZE:+d}", pc=pc)
            if isinstance(slot, int) and slot & want != want:
                first = next(b for b in range(8) if want >> b & 1 and not slot >> b & 1)
                raise ProgramRefused(f"read of uninitialised stack at fp{i * 8 + first - STACK_SIZE:+d}", pc=pc)
        slot = slots[start // 8]
        if p.lo == p.hi and isinstance(slot, Scalar) and slot.is_const and start // 8 == (end - 1) // 8:
            shifted = slot.value >> (8 * (start % 8)) & ((1 << 8 * size) - 1)
            if signed and shifted >> (8 * size - 1):
                shifted -= 1 << 8 * size
            return Scalar.const(shifted)
        return _loaded(size, signed)

    def stack_write(self, s: State, p: Pointer, size: int, value, pc: int) -> State:
        frame = p.region.index
        slots = list(s.stack[frame])
        start, end = STACK_SIZE + p.lo, STACK_SIZE + p.hi + size
        exact = p.lo == p.hi
        if exact and start % 8 == 0 and size == 8:
            slots[start // 8] = value
            return s.with_frame(frame, slots)
        if isinstance(value, Pointer):
            raise ProgramRefused(f"{size}-byte store of the {value} at {p} (pointers spill only as aligned 8-byte stores)", pc=pc)
        for i in range(start // 8, (end + 7) // 8):
            slot = slots[i]
            if exact:
                written = _bytes_mask(start, end, i)
                slots[i] = written if isinstance(slot, Pointer) else (0xFF if isinstance(slot, Scalar) else slot | written)
            else:  # may or may not hit each byte: nothing becomes initialised
                slots[i] = 0 if isinstance(slot, Pointer) else (0xFF if isinstance(slot, Scalar) else slot)
        return s.with_frame(frame, slots)

    # -- calls ----------------------------------------------------------------

    def call_helper(self, s: State, insn: isa.Instruction, pc: int) -> State:
        helper = self.helpers.get(insn.imm)
        if helper is None:
            raise ProgramRefused(f"call to unknown helper {insn.imm}", pc=pc)
        args = helper.args
        for i, kind in enumerate(args):
            reg = i + 1
            what = f"argument {reg} of helper {helper.name}"
            value = s.regs[reg]
            if isinstance(value, Uninit):
                raise ProgramRefused(f"{what}: r{reg} {value.why}", pc=pc)
            if kind in (Arg.SCALAR, Arg.SIZE, Arg.SIZE_OR_ZERO) and isinstance(value, Pointer):
                raise ProgramRefused(f"{what} must be a scalar, not a {value}", pc=pc)
            if kind in (Arg.PTR_TO_MEM, Arg.PTR_TO_UNINIT_MEM):
                if i + 1 >= len(args) or args[i + 1] not in (Arg.SIZE, Arg.SIZE_OR_ZERO):
                    raise ProgramRefused(f"helper {helper.name}: pointer {what} has no size argument after it", pc=pc)
                s = self.helper_memory(s, pc, what, reg, kind == Arg.PTR_TO_UNINIT_MEM, args[i + 1] == Arg.SIZE)
        r0 = {Ret.INTEGER: Scalar(), Ret.VOID: Uninit("holds no result (the helper returns void)")}.get(helper.ret)
        if helper.ret == Ret.PTR_TO_MEM_OR_NULL:
            s = self._retire_ident(s, pc)
            r0 = Pointer(Region("mem", helper.number, helper.ret_size, False), maybe_null=True, ident=pc)
        elif helper.ret == Ret.PTR_TO_MEM:
            r0 = Pointer(Region("mem", helper.number, helper.ret_size, True))
        elif helper.ret == Ret.PTR_TO_CTX:
            r0 = Pointer(CTX)
        regs = list(s.regs)
        regs[0] = r0
        regs[1:6] = [CLOBBERED] * 5
        return attrs.evolve(s, regs=regs)

    def helper_memory(self, s: State, pc: int, what: str, reg: int, writes: bool, nonzero: bool) -> State:
        """Check a (pointer, size) argument pair against the pointed region."""
        p, size = s.regs[reg], s.regs[reg + 1]
        if not isinstance(p, Pointer) or p.maybe_null:
            raise ProgramRefused(f"{what} must be a pointer to memory, not a {p}", pc=pc)
        if isinstance(size, Uninit):
            raise ProgramRefused(f"size argument of helper (r{reg + 1}) {size.why}", pc=pc)
        if isinstance(size, Pointer):
            raise ProgramRefused(f"size argument of helper (r{reg + 1}) must be a scalar, not a {size}", pc=pc)
        if nonzero and size.umin == 0:
            raise ProgramRefused(f"size in r{reg + 1} may be 0", pc=pc)
        region = p.region
        if writes and not region.writable:
            raise ProgramRefused(f"{what} points to the read-only {region}", pc=pc)
        if region.kind == "ctx":
            return s  # the helper's vm.read/vm.write check the context at run time
        if region.kind != "stack":
            # Helpers check sections and helper memory at run time too (vm.view, or
            # the native forms' bounds check), and what they write there is never
            # tracked: refuse only what is outside on every path.
            if p.hi < 0 or p.lo + size.umin > region.size:
                raise ProgramRefused(f"{what}: r{reg} ({p}) with size r{reg + 1} (at least {size.umin:#x}) "
                                     f"is outside the {region}", pc=pc)
            return s
        if p.lo < -STACK_SIZE or p.hi + size.umax > 0:
            raise ProgramRefused(f"{what}: r{reg} ({p}) with size r{reg + 1} (up to {size.umax:#x}) "
                                 f"may run outside the {region}", pc=pc)
        if size.umax == 0:
            return s
        span = Pointer(region, p.lo, p.hi + size.umax - 1)  # every byte it may touch
        if not writes:
            self.stack_read(s, span, 1, pc, False)
            return s
        if p.lo == p.hi and size.is_const:
            return self.stack_write(s, p, size.value, Scalar(), pc) if size.value else s
        return self.stack_write(s, span, 1, Scalar(), pc)

    def _retire_ident(self, s: State, ident: int) -> State:
        """A new result of the helper at ``ident``: older copies lose the tie."""
        def untie(v):
            return attrs.evolve(v, ident=-1) if isinstance(v, Pointer) and v.ident == ident else v
        return State([untie(v) for v in s.regs],
                     [tuple(untie(v) for v in frame) for frame in s.stack],
                     [tuple(untie(v) for v in saved) for saved in s.saved], s.ctx_min)

    def call_local(self, s: State, insn: isa.Instruction, pc: int, ctx: tuple) -> tuple[tuple, State]:
        frame = len(s.stack)
        regs = [Uninit()] + list(s.regs[1:6]) + [Uninit()] * 4 + [_fp(frame)]
        callee = State(regs, s.stack + ((0,) * SLOTS,), s.saved + (s.regs[6:10],), s.ctx_min)
        return ctx + (pc, jump_target(insn, pc)), callee

    def exit(self, s: State, pc: int, ctx: tuple) -> list[tuple[tuple, State]]:
        r0 = s.regs[0]
        if not ctx:
            if isinstance(r0, Uninit):
                raise ProgramRefused(f"r0 {r0.why} at exit", pc=pc)
            if isinstance(r0, Pointer):
                raise ProgramRefused(f"exit would return the {r0} in r0 (pointer leak)", pc=pc)
            return []
        frame = len(s.stack) - 1
        if isinstance(r0, Pointer) and r0.region == _stack(frame):
            raise ProgramRefused("function returns a pointer to its own stack frame", pc=pc)
        dead = _stack(frame)
        stack = tuple(tuple(0 if isinstance(v, Pointer) and v.region == dead else v for v in slots)
                      for slots in s.stack[:-1])
        regs = [r0] + [CLOBBERED] * 5 + list(s.saved[-1]) + [_fp(frame - 1)]
        return [(ctx[:-1] + (ctx[-1] + 1,), State(regs, stack, s.saved[:-1], s.ctx_min))]


def analyse(program: Program, helpers: HelperSet, cfg: ControlFlow) -> Analysis:
    analysis = Analysis(program, helpers, cfg)
    analysis.run()
    return analysis
