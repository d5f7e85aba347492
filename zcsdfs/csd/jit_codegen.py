"""eBPF -> LLVM IR for the JIT (``jit.py`` compiles and runs what this emits).

Each eBPF function (the entry point and every ``call local`` target) becomes
an LLVM function ``(ctx, r1..r5, frame pointer) -> r0``. Registers are
allocas that LLVM promotes to SSA values, so a kernel's inner loop compiles
to a few machine instructions. Everything the code needs at run time lives
in one context struct (:data:`CTX_FIELDS`): the input memory, the stack
frames, the region table, the remaining budget, and where to report a fault.
A fault never touches the bad address: the code stores a status, the pc and
the address in the struct and returns; ``jit.py`` raises the error.

* Semantics are RFC 9669's, with LLVM's undefined cases guarded: division
  by zero and INT_MIN / -1 never reach ``udiv``/``sdiv``, shift amounts
  are masked, 32-bit results zero-extended.
* Bounds: a memory instruction the verifier could not prove safe (or every
  one, without a verdict) is checked before the access: inline against the
  input memory, the current frame and the data sections (one compare
  each), then out of line against the callers' frames and the region table
  (data sections, helper-mapped memory).
* Budget: each basic block charges its instruction count on entry and stops
  the run when the budget goes negative: a subtract on the context's
  counter and one branch per block, with the interpreter's block partition.
  Compiled code runs at least ~10^8 instructions a second, so the budget
  alone ends a run before the registry's deadline; a run whose deadline
  the budget would not honour (``limits.needs_clock``) uses a second build
  of the program that reads the clock at outer loop heads and function
  entries once the counter has gone below ``check_at`` (every
  ``limits.JIT_CHECK`` instructions), with ``clock_gettime`` declared to
  touch only its argument. That build's loops are slower (a 4-instruction
  loop ran ~30% slower, LLVM no longer unrolls it), which is why it is not
  the default.
* Calls: frames are 512-byte slots of one per-run stack area, carved
  downwards from its top, so the depth limit is a compare on the frame
  pointer. Python helpers are reached through a callback whose address is
  in the context; helpers with a registered :class:`Native` form (see
  ``jit_native``) are emitted as IR at the call site.
"""

from __future__ import annotations

import attrs
import llvmlite.binding as llvm
from llvmlite import ir

from zcsdfs.csd import isa, memory
from zcsdfs.csd.errors import ProgramRefused, UnsupportedInstruction
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.limits import JIT_CHECK
from zcsdfs.csd.program import Program

FRAME_SIZE = memory.STACK_SIZE
MAX_FRAMES = memory.MAX_FRAMES
MASK64 = (1 << 64) - 1
MASK64 = (1 << 64) - 1

# The run-time context shared by compiled code and the Python wrapper; every
# field is 64 bits so the IR can address it as an array of i64.
CTX_FIELDS = (
    "status",       # STATUS_* once the run must stop
    "pc",           # instruction that faulted, or the helper call in progress
    "budget",       # instructions left
    "check_at",     # check the deadline at the next loop head once budget is below this
    "deadline_ns",  # CLOCK_MONOTONIC nanoseconds at which the run stops (all ones: never)
    "fault_addr",
    "fault_size",
    "fault_kind",   # ACCESS_KINDS index of the faulting access
    "stop_r0",      # r0 given to vm.stop()
    "fp",           # frame pointer at the helper call in progress
    "mem_start",    # the input memory (the "context")
    "mem_len",
    "stack_base",   # lowest address of the frames' area
    "stack_top",    # r10 of the entry function
    "nregions",     # entries in the region table
    "regions",      # address of the table: (start, len, writable) triples
    "sections",     # address of an array with each data section's address
    "dispatch",     # address of the Python helper callback
    "handle",       # cffi handle of the run, for the callback
    "native",       # address of the native helpers' state slots
)
FIELD = {name: index for index, name in enumerate(CTX_FIELDS)}

ACCESS_KINDS = ("load", "store", "atomic")
LOAD, STORE, ATOMIC = range(3)

STATUS_OK, STATUS_MEMORY, STATUS_BUDGET, STATUS_DEPTH, STATUS_HELPER, STATUS_STOP, STATUS_DEADLINE = range(7)
CLOCK_MONOTONIC = 1
TIMESPEC = ir.ArrayType(ir.IntType(64), 2)

I1, I8, I16, I32, I64 = (ir.IntType(n) for n in (1, 8, 16, 32, 64))
PTR = ir.PointerType()
VOID = ir.VoidType()
INT = {8: I8, 16: I16, 32: I32, 64: I64}
# A subprogram: (ctx, r1..r5, frame pointer) -> r0; the status says whether it ran to exit.
SUBPROGRAM_TYPE = ir.FunctionType(I64, [PTR] + [I64] * 6)
DISPATCH_IR_TYPE = ir.FunctionType(I64, [PTR] + [I64] * 6)
REGION_OK_TYPE = ir.FunctionType(I1, [PTR, I64, I64, I64, I64])


def i64(value: int) -> ir.Constant:
    return ir.Constant(I64, value & MASK64)



# ---------------------------------------------------------------- native forms

@attrs.frozen
class Native:
    """The JIT's own form of a helper (see ``jit_native``).

    ``emit(fn, pc, number, state, args) -> ir.Value`` writes IR for a call
    of helper ``number`` at ``pc`` (``fn`` is the :class:`FunctionEmitter`,
    ``state`` the i64 in this native's slot, ``args`` r1..r5) and returns
    r0; for cases it leaves to the Python form (errors, mostly) it can emit
    ``fn.python_helper(pc, number, args)``. ``prepare(run)`` builds the
    per-run state (the slot's value; natives may share one through
    ``run.native_state``) and ``finish(run)`` folds it back into the env at
    the end of the run and before any Python helper runs, so native forms
    and Python helpers can interleave.
    """

    emit: object
    prepare: object
    finish: object


NATIVES: dict[str, Native] = {}


def register_native(name: str, native: Native) -> None:
    """Make ``Helper(native=name)`` compile to ``native`` instead of a callback."""
    NATIVES[name] = native


# ---------------------------------------------------------------- control flow

def _successors(insns, pc: int) -> tuple[int, ...]:
    """Where control may go after ``insns[pc]`` inside its function."""
    insn = insns[pc]
    if insn.is_lddw:
        return (pc + 2,)
    if insn.cls not in (isa.JMP, isa.JMP32):
        return (pc + 1,)
    if insn.op == isa.EXIT:
        return ()
    if insn.op == isa.CALL:
        return (pc + 1,)
    if insn.op == isa.JA:
        return (pc + 1 + (insn.imm if insn.cls == isa.JMP32 else insn.off),)
    return (pc + 1, pc + 1 + insn.off)


def _ends_block(insn: isa.Instruction) -> bool:
    """Jumps and exit end a block; calls do not (as in the interpreter)."""
    return insn.cls in (isa.JMP, isa.JMP32) and insn.op != isa.CALL


def block_leaders(insns) -> set[int]:
    """Where basic blocks start, over the whole program.

    The same partition as the interpreter's (function entries, jump targets
    and whatever follows a jump or exit), so both engines charge the budget
    at the same points and run out of it at the same instruction.
    """
    leaders = {0}
    wide_tails = {pc + 1 for pc, insn in enumerate(insns) if insn.is_lddw}
    for pc, insn in enumerate(insns):
        if pc in wide_tails:
            continue
        if insn.opcode == isa.JMP | isa.CALL and insn.src == isa.CALL_LOCAL:
            leaders.add(pc + 1 + insn.imm)
        elif _ends_block(insn):
            leaders.update(_successors(insns, pc))
            leaders.add(pc + 1)
    return leaders


def _function_body(insns, entry: int) -> list[int]:
    """The pcs reachable from ``entry`` without following calls, in order."""
    wide_tails = {pc + 1 for pc, insn in enumerate(insns) if insn.is_lddw}
    seen = {entry}
    work = [entry]
    while work:
        pc = work.pop()
        for target in _successors(insns, pc):
            if target == len(insns) and not _ends_block(insns[pc]):
                raise ProgramRefused("falls off the end of the program", pc=pc)
            if not 0 <= target < len(insns) or target in wide_tails:
                raise ProgramRefused(f"jumps to {target}, not an instruction", pc=pc)
            if target not in seen:
                seen.add(target)
                work.append(target)
    return sorted(seen)


def _outer_loop_heads(insns, pcs: list[int]) -> set[int]:
    """Heads of the loops no other loop contains (a loop: a head and the pcs up
    to its last back edge). The deadline is read there: an inner loop runs
    between two reads, bounded by the budget, and keeps its tight code."""
    ends: dict[int, int] = {}
    for pc in pcs:
        for target in _successors(insns, pc):
            if target <= pc:
                ends[target] = max(ends.get(target, target), pc)
    return {head for head, end in ends.items()
            if not any(other < head and end <= other_end for other, other_end in ends.items())}


# ---------------------------------------------------------------- code generation

class ModuleEmitter:
    """One LLVM module for one program: a function per eBPF function, plus the entry."""

    def __init__(self, program: Program, helpers: HelperSet, checked: frozenset[int] | None, name: str,
                 clock: bool = False):
        self.program = program
        self.clock = clock  # read the deadline in the code (see the budget note above)
        self.insns = program.insns
        self.helpers = helpers
        self.checked = checked
        self.name = name
        self.module = ir.Module(name)
        self.module.triple = llvm.get_process_triple()
        self.functions: dict[int, ir.Function] = {}
        self.pending: list[int] = []
        self.native_slots: dict[str, int] = {}
        self.leaders = block_leaders(self.insns)
        self.memmove = ir.Function(self.module, ir.FunctionType(VOID, [PTR, PTR, I64, I1]), "llvm.memmove.p0.p0.i64")
        self.expect = ir.Function(self.module, ir.FunctionType(I1, [I1, I1]), "llvm.expect.i1")
        self.bswap = {bits: ir.Function(self.module, ir.FunctionType(INT[bits], [INT[bits]]), f"llvm.bswap.i{bits}")
                      for bits in (16, 32, 64)}
        self.region_ok = self._emit_region_ok()
        self.clock_gettime = ir.Function(self.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32), PTR]),
                                         "clock_gettime")

    def subprogram(self, entry: int) -> ir.Function:
        fn = self.functions.get(entry)
        if fn is None:
            fn = ir.Function(self.module, SUBPROGRAM_TYPE, f"{self.name}_pc{entry}")
            fn.linkage = "internal"
            fn.args[0].add_attribute("noalias")
            self.functions[entry] = fn
            self.pending.append(entry)
        return fn

    def native_slot(self, name: str) -> int:
        return self.native_slots.setdefault(name, len(self.native_slots))

    def emit(self) -> str:
        """The module's IR text; the entry point is ``{name}_run(ctx) -> r0``."""
        main = self.subprogram(0)
        while self.pending:
            entry = self.pending.pop()
            FunctionEmitter(self, self.functions[entry], entry).emit()
        run = ir.Function(self.module, ir.FunctionType(I64, [PTR]), f"{self.name}_run")
        b = ir.IRBuilder(run.append_basic_block("entry"))
        ctx = run.args[0]
        field = lambda name: b.load(b.gep(ctx, [i64(FIELD[name])], source_etype=I64), typ=I64)
        r1, r2, top = field("mem_start"), field("mem_len"), field("stack_top")
        b.ret(b.call(main, [ctx, r1, r2, i64(0), i64(0), i64(0), top]))
        # it writes only the timespec: loads and stores of the context move across it
        return str(self.module).replace('declare i32 @"clock_gettime"(i32 %".1", ptr %".2")',
                                        'declare i32 @"clock_gettime"(i32, ptr) nounwind willreturn nosync nofree '
                                        'memory(argmem: write)')

    def _emit_region_ok(self) -> ir.Function:
        """``region_ok(ctx, addr, size, write, fp)``: the out-of-line bounds check.

        True when ``[addr, addr+size)`` lies inside one caller frame (the
        frames above ``fp``) or inside one entry of the region table that
        allows the access; the inline check has already tried the input
        memory and the current frame.
        """
        fn = ir.Function(self.module, REGION_OK_TYPE, f"{self.name}_region_ok")
        fn.linkage = "internal"
        fn.attributes.add("noinline")
        fn.attributes.add("cold")
        ctx, addr, size, write, fp = fn.args
        entry, scan, loop, body, next_, yes, no = (fn.append_basic_block(n) for n in
                                                   ("entry", "scan", "loop", "body", "next", "yes", "no"))
        b = ir.IRBuilder(entry)
        field = lambda name: b.load(b.gep(ctx, [i64(FIELD[name])], source_etype=I64), typ=I64)
        top, base = field("stack_top"), field("stack_base")
        in_stack = b.and_(b.icmp_unsigned(">=", addr, fp), b.icmp_unsigned("<", addr, top))
        within = b.and_(b.sub(addr, base), i64(FRAME_SIZE - 1))
        fits = b.and_(b.icmp_unsigned("<=", size, i64(FRAME_SIZE)),  # (a helper's size may be anything)
                      b.icmp_unsigned("<=", b.add(within, size), i64(FRAME_SIZE)))
        b.cbranch(b.and_(in_stack, fits), yes, scan)
        b.position_at_end(scan)
        count = field("nregions")
        table = b.inttoptr(field("regions"), PTR)
        b.branch(loop)
        b.position_at_end(loop)
        i = b.phi(I64)
        i.add_incoming(i64(0), scan)
        b.cbranch(b.icmp_unsigned("<", i, count), body, no)
        b.position_at_end(body)
        entry_at = lambda k: b.load(b.gep(table, [b.add(b.mul(i, i64(3)), i64(k))], source_etype=I64), typ=I64)
        start, length, writable = entry_at(0), entry_at(1), entry_at(2)
        off = b.sub(addr, start)
        inside = b.and_(b.icmp_unsigned("<", off, length), b.icmp_unsigned(">=", b.sub(length, off), size))
        allowed = b.or_(b.icmp_unsigned("==", write, i64(0)), b.icmp_unsigned("!=", writable, i64(0)))
        b.cbranch(b.and_(inside, allowed), yes, next_)
        b.position_at_end(next_)
        i.add_incoming(b.add(i, i64(1)), next_)
        b.branch(loop)
        b.position_at_end(yes)
        b.ret(ir.Constant(I1, 1))
        b.position_at_end(no)
        b.ret(ir.Constant(I1, 0))
        return fn


class FunctionEmitter:
    """Translates one eBPF function (entry pc and what it reaches) into its LLVM function."""

    def __init__(self, module: ModuleEmitter, fn: ir.Function, entry: int):
        self.m = module
        self.insns = module.insns
        self.fn = fn
        self.entry = entry
        self.pcs = _function_body(self.insns, entry)
        self.leaders = module.leaders.intersection(self.pcs) | {entry}
        self.ticks = _outer_loop_heads(self.insns, self.pcs) | {entry} if module.clock else set()
        self.ctx = fn.args[0]
        self.fp = fn.args[6]

    # -- plumbing

    def field_ptr(self, name: str) -> ir.Value:
        return self.b.gep(self.ctx, [i64(FIELD[name])], source_etype=I64)

    def load_field(self, name: str) -> ir.Value:
        return self.b.load(self.field_ptr(name), typ=I64)

    def store_field(self, name: str, value: ir.Value | int) -> None:
        self.b.store(value if isinstance(value, ir.Value) else i64(value), self.field_ptr(name))

    def likely(self, cond: ir.Value) -> ir.Value:
        return self.b.call(self.m.expect, [cond, ir.Constant(I1, 1)])

    def unlikely(self, cond: ir.Value) -> ir.Value:
        return self.b.call(self.m.expect, [cond, ir.Constant(I1, 0)])

    # Registers live in allocas (LLVM turns them into SSA values); within an
    # eBPF block they are also cached here, loaded once and stored back once
    # when the block ends, which keeps the IR (and its compile time) small.

    def reg(self, r: int) -> ir.Value:
        value = self.cache.get(r)
        if value is None:
            value = self.cache[r] = self.b.load(self.regs[r], typ=I64)
        return value

    def set_reg(self, r: int, value: ir.Value) -> None:
        if value.type != I64:
            value = self.b.zext(value, I64)
        self.cache[r] = value
        self.dirty.add(r)

    def flush(self) -> None:
        """Store the registers the block changed; call before a branch to another block."""
        for r in sorted(self.dirty):
            self.b.store(self.cache[r], self.regs[r])
        self.dirty.clear()

    def fault_block(self, status: int, pc: int, addr=None, size: int = 0, kind: int = LOAD) -> ir.Block:
        """The function's one fault exit, for a branch from the current block.

        It records the fault in the context and leaves; what to record
        arrives through phis, so a function with thousands of checks still
        has a single fault block (which keeps LLVM's compile time in check).
        """
        if self.fail is None:
            here = self.b.block
            self.fail = self.fn.append_basic_block("fault")
            self.b.position_at_end(self.fail)
            self.fail_phis = {name: self.b.phi(I64, name) for name in ("status", "pc", "fault_addr", "fault_size",
                                                                       "fault_kind")}
            for name, phi in self.fail_phis.items():
                self.store_field(name, phi)
            self.b.branch(self.leave)
            self.b.position_at_end(here)
        values = {"status": i64(status), "pc": i64(pc), "fault_addr": addr if addr is not None else i64(0),
                  "fault_size": i64(size), "fault_kind": i64(kind)}
        for name, phi in self.fail_phis.items():
            phi.add_incoming(values[name], self.b.block)
        return self.fail

    def continue_if(self, cond: ir.Value, otherwise: ir.Block, name: str) -> None:
        then = self.fn.append_basic_block(name)
        self.b.cbranch(self.likely(cond), then, otherwise)
        self.b.position_at_end(then)

    # -- bounds

    def in_bounds(self, addr: ir.Value, size: ir.Value | int, write: int) -> ir.Value:
        """i1: may ``size`` bytes at ``addr`` be accessed (``write`` = 1 for a store)?

        Tried in turn, inline: the input memory, the current frame and the
        data sections (one compare each for a constant size); then the
        out-of-line ``region_ok``. ``size`` may be a run-time value (a
        helper's length argument), checked against memory and frame only.
        """
        b = self.b
        if isinstance(size, ir.Value):
            off = b.sub(addr, self.mem_start)
            in_mem = b.and_(b.icmp_unsigned("<", off, self.mem_len),
                            b.icmp_unsigned(">=", b.sub(self.mem_len, off), size))
            frame = b.sub(addr, self.frame_lo)
            in_frame = b.and_(b.icmp_unsigned("<", frame, i64(FRAME_SIZE)),
                              b.icmp_unsigned(">=", b.sub(i64(FRAME_SIZE), frame), size))
        else:
            in_mem = b.icmp_unsigned("<", b.sub(addr, self.mem_start), self.mem_limit(size))
            in_frame = b.icmp_unsigned("<", b.sub(addr, self.frame_lo), i64(FRAME_SIZE - size + 1))
        tries = [in_mem, in_frame]
        if not isinstance(size, ir.Value):
            for index, section in enumerate(self.m.program.sections):
                if len(section.data) >= size and (section.writable or not write):
                    base = self.section_base(index)
                    tries.append(b.icmp_unsigned("<", b.sub(addr, base), i64(len(section.data) - size + 1)))
            size = i64(size)
        done = self.fn.append_basic_block("checked")
        incoming = []
        for k, cond in enumerate(tries):
            miss = self.fn.append_basic_block(f"try{k + 1}")
            b.cbranch(self.likely(cond) if k == 0 else cond, done, miss)
            incoming.append(b.block)
            b.position_at_end(miss)
        found = b.call(self.m.region_ok, [self.ctx, addr, size, i64(write), self.fp])
        b.branch(done)
        b.position_at_end(done)
        ok = b.phi(I1)
        for block in incoming:
            ok.add_incoming(ir.Constant(I1, 1), block)
        ok.add_incoming(found, miss)
        return ok

    def section_base(self, index: int) -> ir.Value:
        """The run's address of data section ``index`` (loaded once per function)."""
        base = self.section_bases.get(index)
        if base is None:
            here = self.b.block
            self.b.position_before(self.entry_branch)
            table = self.b.inttoptr(self.load_field("sections"), PTR)
            base = self.b.load(self.b.gep(table, [i64(index)], source_etype=I64), typ=I64)
            self.section_bases[index] = base
            self.b.position_at_end(here)
        return base

    def mem_limit(self, size: int) -> ir.Value:
        """Offsets below this value leave room for ``size`` bytes of input memory.

        Computed once per function, in the entry block, so an access costs
        one subtract and one compare; 0 (nothing fits) when the memory is
        shorter than ``size``.
        """
        limit = self.mem_limits.get(size)
        if limit is None:
            here = self.b.block
            self.b.position_before(self.entry_branch)
            fits = self.b.icmp_unsigned(">=", self.mem_len, i64(size))
            limit = self.b.select(fits, self.b.add(self.b.sub(self.mem_len, i64(size)), i64(1)), i64(0))
            self.mem_limits[size] = limit
            self.b.position_at_end(here)
        return limit

    def pointer(self, pc: int, addr: ir.Value, size: int, kind: int) -> ir.Value:
        """The LLVM pointer for an access, after a bounds check where one is needed."""
        if self.m.checked is None or pc in self.m.checked:
            ok = self.in_bounds(addr, size, int(kind != LOAD))
            self.continue_if(ok, self.fault_block(STATUS_MEMORY, pc, addr, size, kind), f"access{pc}")
        return self.b.inttoptr(addr, PTR)

    # -- the function

    def emit(self) -> None:
        fn = self.fn
        entry_block = fn.append_basic_block("entry")
        self.blocks = {pc: fn.append_basic_block(f"pc{pc}") for pc in sorted(self.leaders)}
        self.leave = fn.append_basic_block("leave")
        self.fail: ir.Block | None = None
        self.b = b = ir.IRBuilder(entry_block)
        self.regs = [b.alloca(I64, name=f"r{r}") for r in range(11)]
        self.timespec = b.alloca(TIMESPEC, name="timespec")
        for r in range(11):
            b.store(fn.args[r] if 1 <= r <= 5 else i64(0), self.regs[r])
        b.store(self.fp, self.regs[10])
        self.frame_lo = b.sub(self.fp, i64(FRAME_SIZE))
        self.mem_start = self.load_field("mem_start")
        self.mem_len = self.load_field("mem_len")
        self.mem_limits: dict[int, ir.Value] = {}
        self.section_bases: dict[int, ir.Value] = {}
        self.entry_branch = b.branch(self.blocks[self.entry])

        b.position_at_end(self.leave)
        b.ret(i64(0))

        for pc in self.pcs:
            if pc in self.leaders:
                b.position_at_end(self.blocks[pc])
                self.cache: dict[int, ir.Value] = {}
                self.dirty: set[int] = set()
                self.charge(pc)
            self.instruction(pc)

    def charge(self, leader: int) -> None:
        """Charge the block starting at ``leader`` for its instructions."""
        cost = 0
        pc = leader
        while True:
            cost += 1
            insn = self.insns[pc]
            nxt = pc + (2 if insn.is_lddw else 1)
            if _ends_block(insn) or nxt in self.leaders or nxt not in self.pcs:
                break
            pc = nxt
        if leader in self.ticks:
            self.charge_and_tick(leader, cost)
            return
        # An unsigned subtract whose borrow is the fault: LLVM folds chains of
        # these much faster than of "sub; icmp sge 0" (5x on 4,000 instructions).
        charged = self.b.usub_with_overflow(self.load_field("budget"), i64(cost))
        self.store_field("budget", self.b.extract_value(charged, 0))
        ok = self.b.not_(self.b.extract_value(charged, 1))
        self.continue_if(ok, self.fault_block(STATUS_BUDGET, leader), f"run{leader}")

    def charge_and_tick(self, leader: int, cost: int) -> None:
        """Charge, and read the clock once the budget has gone below ``check_at``,
        with one compare on the hot path (``check_at`` + cost, loop-invariant):
        the slow path tells an exhausted budget from a due clock read."""
        b = self.b
        budget = self.load_field("budget")
        due = b.icmp_unsigned("<", budget, b.add(self.load_field("check_at"), i64(cost)))
        run = self.fn.append_basic_block(f"run{leader}")
        slow = self.fn.append_basic_block(f"tick{leader}")
        b.cbranch(self.unlikely(due), slow, run)
        b.position_at_end(slow)
        spent = b.icmp_unsigned("<", budget, i64(cost))
        self.continue_if(b.not_(spent), self.fault_block(STATUS_BUDGET, leader), f"clock{leader}")
        left, step = b.sub(budget, i64(cost)), i64(JIT_CHECK)
        self.store_field("check_at", b.select(b.icmp_unsigned(">", left, step), b.sub(left, step), i64(0)))
        b.call(self.m.clock_gettime, [ir.Constant(ir.IntType(32), CLOCK_MONOTONIC), self.timespec])
        seconds = b.load(b.gep(self.timespec, [i64(0), i64(0)], source_etype=TIMESPEC), typ=I64)
        nanoseconds = b.load(b.gep(self.timespec, [i64(0), i64(1)], source_etype=TIMESPEC), typ=I64)
        now = b.add(b.mul(seconds, i64(1_000_000_000)), nanoseconds)
        late = b.icmp_unsigned(">", now, self.load_field("deadline_ns"))
        self.continue_if(b.not_(late), self.fault_block(STATUS_DEADLINE, leader), f"intime{leader}")
        b.branch(run)
        b.position_at_end(run)
        self.store_field("budget", b.sub(budget, i64(cost)))

    def instruction(self, pc: int) -> None:
        insn = self.insns[pc]
        cls = insn.cls
        if cls in (isa.ALU, isa.ALU64):
            self.alu(pc, insn)
        elif cls in (isa.JMP, isa.JMP32):
            self.jump(pc, insn)
        elif insn.is_lddw:
            self.lddw(pc, insn, self.insns[pc + 1])
        elif cls == isa.LDX and insn.mode in (isa.MEM, isa.MEMSX):
            self.load(pc, insn)
        elif cls in (isa.ST, isa.STX) and insn.mode == isa.MEM:
            self.store(pc, insn)
        elif cls == isa.STX and insn.mode == isa.ATOMIC:
            self.atomic(pc, insn)
        else:
            raise UnsupportedInstruction(f"opcode {insn.opcode:#04x} is not supported", pc=pc)
        if not self.b.block.is_terminated and pc + (2 if insn.is_lddw else 1) in self.leaders:
            self.flush()
            self.b.branch(self.blocks[pc + (2 if insn.is_lddw else 1)])

    # -- ALU

    # sdiv/smod have off = 1; movsx has the source width in off.
    VALID_OFFSETS = {(isa.DIV, 32): (0, 1), (isa.DIV, 64): (0, 1), (isa.MOD, 32): (0, 1),
                     (isa.MOD, 64): (0, 1), (isa.MOV, 32): (0, 8, 16), (isa.MOV, 64): (0, 8, 16, 32)}

    def alu(self, pc: int, insn: isa.Instruction) -> None:
        b = self.b
        bits = 64 if insn.cls == isa.ALU64 else 32
        ty = INT[bits]
        op = insn.op
        if op == isa.END:
            self.set_reg(insn.dst, self.endian(pc, insn))
            return
        a = self.reg(insn.dst)
        if insn.source == isa.X:
            src = self.reg(insn.src)
        else:
            src = i64(insn.imm)  # sign-extended to 64 bits, as RFC 9669 says
        if bits == 32:
            a, src = b.trunc(a, I32), b.trunc(src, I32)
        if insn.off not in self.VALID_OFFSETS.get((op, bits), (0,)):
            raise UnsupportedInstruction(f"offset {insn.off} is not valid for opcode {insn.opcode:#04x}", pc=pc)
        signed = insn.off == 1
        mask = ir.Constant(ty, bits - 1)
        if op == isa.ADD:
            value = b.add(a, src)
        elif op == isa.SUB:
            value = b.sub(a, src)
        elif op == isa.MUL:
            value = b.mul(a, src)
        elif op == isa.OR:
            value = b.or_(a, src)
        elif op == isa.AND:
            value = b.and_(a, src)
        elif op == isa.XOR:
            value = b.xor(a, src)
        elif op == isa.LSH:
            value = b.shl(a, b.and_(src, mask))
        elif op == isa.RSH:
            value = b.lshr(a, b.and_(src, mask))
        elif op == isa.ARSH:
            value = b.ashr(a, b.and_(src, mask))
        elif op == isa.NEG:
            value = b.neg(a)
        elif op == isa.MOV:
            value = src if insn.off == 0 else b.sext(b.trunc(src, INT[insn.off]), ty)
        elif op in (isa.DIV, isa.MOD):
            value = self.divide(a, src, ty, signed, op == isa.MOD)
        else:
            raise UnsupportedInstruction(f"opcode {insn.opcode:#04x} is not supported", pc=pc)
        self.set_reg(insn.dst, value)

    def divide(self, a, d, ty, signed: bool, modulo: bool) -> ir.Value:
        """RFC 9669 division: x/0 = 0, x%0 = x, INT_MIN/-1 = INT_MIN, INT_MIN%-1 = 0.

        LLVM's udiv/sdiv are undefined for those cases, so the divisor is
        replaced by 1 where they would occur (which also gives the right
        answer for INT_MIN/-1 and INT_MIN%-1) and the zero case selected after.
        """
        b = self.b
        zero = b.icmp_unsigned("==", d, ir.Constant(ty, 0))
        bad = zero
        if signed:
            int_min = ir.Constant(ty, 1 << (ty.width - 1))
            overflow = b.and_(b.icmp_unsigned("==", a, int_min), b.icmp_unsigned("==", d, ir.Constant(ty, -1)))
            bad = b.or_(zero, overflow)
        safe = b.select(bad, ir.Constant(ty, 1), d)
        if modulo:
            result = (b.srem if signed else b.urem)(a, safe)
            return b.select(zero, a, result)
        result = (b.sdiv if signed else b.udiv)(a, safe)
        return b.select(zero, ir.Constant(ty, 0), result)

    def endian(self, pc: int, insn: isa.Instruction) -> ir.Value:
        """le/be (ALU class) and the unconditional bswap (ALU64 class)."""
        if insn.imm not in (16, 32, 64) or insn.cls == isa.ALU64 and insn.source == isa.X:
            raise UnsupportedInstruction(f"byte swap {insn.opcode:#04x} of {insn.imm} bits is not valid", pc=pc)
        value = self.reg(insn.dst)
        if insn.imm < 64:
            value = self.b.trunc(value, INT[insn.imm])
        if insn.cls == isa.ALU64 or insn.source == isa.TO_BE:
            value = self.b.call(self.m.bswap[insn.imm], [value])
        return value

    # -- jumps and calls

    COMPARISONS = {
        isa.JEQ: ("u", "=="), isa.JNE: ("u", "!="), isa.JGT: ("u", ">"), isa.JGE: ("u", ">="),
        isa.JLT: ("u", "<"), isa.JLE: ("u", "<="), isa.JSGT: ("s", ">"), isa.JSGE: ("s", ">="),
        isa.JSLT: ("s", "<"), isa.JSLE: ("s", "<="),
    }

    def jump(self, pc: int, insn: isa.Instruction) -> None:
        b = self.b
        op = insn.op
        if op in (isa.EXIT, isa.CALL) and insn.cls == isa.JMP32:
            raise UnsupportedInstruction(f"opcode {insn.opcode:#04x} is not supported", pc=pc)
        if op == isa.EXIT:
            b.ret(self.reg(0))
            return
        if op == isa.CALL:
            self.call(pc, insn)
            return
        if op == isa.JA:
            self.flush()
            b.branch(self.blocks[_successors(self.insns, pc)[0]])
            return
        a = self.reg(insn.dst)
        src = self.reg(insn.src) if insn.source == isa.X else i64(insn.imm)
        if insn.cls == isa.JMP32:
            a, src = b.trunc(a, I32), b.trunc(src, I32)
        if op == isa.JSET:
            cond = b.icmp_unsigned("!=", b.and_(a, src), ir.Constant(a.type, 0))
        elif op in self.COMPARISONS:
            kind, cmp = self.COMPARISONS[op]
            cond = (b.icmp_unsigned if kind == "u" else b.icmp_signed)(cmp, a, src)
        else:
            raise UnsupportedInstruction(f"opcode {insn.opcode:#04x} is not supported", pc=pc)
        self.flush()
        b.cbranch(cond, self.blocks[pc + 1 + insn.off], self.blocks[pc + 1])

    def call(self, pc: int, insn: isa.Instruction) -> None:
        if insn.source != isa.K:
            raise UnsupportedInstruction(f"opcode {insn.opcode:#04x} is not supported", pc=pc)
        if insn.src == isa.CALL_LOCAL:
            self.local_call(pc, pc + 1 + insn.imm)
        elif insn.src == isa.CALL_HELPER:
            self.helper_call(pc, insn.imm)
        else:
            raise UnsupportedInstruction(f"call with src={insn.src} is not supported", pc=pc)

    def local_call(self, pc: int, target: int) -> None:
        b = self.b
        if not 0 <= target < len(self.insns) or target > 0 and self.insns[target - 1].is_lddw:
            raise ProgramRefused(f"calls {target}, not an instruction", pc=pc)
        callee = self.m.subprogram(target)
        callee_fp = self.frame_lo
        room = b.icmp_unsigned(">=", b.sub(callee_fp, i64(FRAME_SIZE)), self.load_field("stack_base"))
        self.continue_if(room, self.fault_block(STATUS_DEPTH, pc), f"call{pc}")
        r0 = b.call(callee, [self.ctx] + [self.reg(r) for r in range(1, 6)] + [callee_fp])
        self.after_call(pc, r0)

    def after_call(self, pc: int, r0: ir.Value) -> None:
        """Leave at once if the callee faulted or a helper stopped the run; else take its r0."""
        stopped = self.b.icmp_unsigned("!=", self.load_field("status"), i64(0))
        self.continue_if(self.b.not_(stopped), self.leave, f"return{pc}")
        self.set_reg(0, r0)

    def helper_call(self, pc: int, number: int) -> None:
        b = self.b
        helper = self.m.helpers.get(number)
        args = [self.reg(r) for r in range(1, 6)]
        native = NATIVES.get(helper.native) if helper.native else None
        if native is not None:
            slot = self.m.native_slot(helper.native)
            table = b.inttoptr(self.load_field("native"), PTR)
            state = b.load(b.gep(table, [i64(slot)], source_etype=I64), typ=I64)
            self.set_reg(0, native.emit(self, pc, number, state, args))
            return
        self.set_reg(0, self.python_helper(pc, number, args))

    def python_helper(self, pc: int, number: int, args: list[ir.Value]) -> ir.Value:
        """Call helper ``number`` through the Python callback; returns its r0.

        Natives use this too, for the cases they leave to the Python form.
        """
        b = self.b
        self.store_field("pc", pc)
        self.store_field("fp", self.fp)
        dispatch = b.inttoptr(self.load_field("dispatch"), DISPATCH_IR_TYPE.as_pointer())
        r0 = b.call(dispatch, [self.ctx, i64(number)] + list(args))
        stopped = b.icmp_unsigned("!=", self.load_field("status"), i64(0))
        self.continue_if(b.not_(stopped), self.leave, f"helper{pc}")
        return r0

    # -- memory

    def lddw(self, pc: int, first: isa.Instruction, second: isa.Instruction) -> None:
        if first.src == isa.LDDW_IMM64:
            self.set_reg(first.dst, i64(isa.lddw_value(first, second)))
            return
        if first.src != isa.LDDW_SECTION:
            raise UnsupportedInstruction(f"lddw with src={first.src} is not supported", pc=pc)
        if not 0 <= first.imm < len(self.m.program.sections):
            raise ProgramRefused(f"lddw names section {first.imm}, which does not exist", pc=pc)
        self.set_reg(first.dst, self.b.add(self.section_base(first.imm), i64(second.imm)))

    def load(self, pc: int, insn: isa.Instruction) -> None:
        size = isa.SIZE_BYTES[insn.size]
        if insn.mode == isa.MEMSX and size == 8:
            raise UnsupportedInstruction(f"opcode {insn.opcode:#04x} is not supported", pc=pc)
        b = self.b
        addr = b.add(self.reg(insn.src), i64(insn.off))
        value = b.load(self.pointer(pc, addr, size, LOAD), typ=INT[size * 8], align=1)
        if size < 8:
            value = (b.sext if insn.mode == isa.MEMSX else b.zext)(value, I64)
        self.set_reg(insn.dst, value)

    def store(self, pc: int, insn: isa.Instruction) -> None:
        b = self.b
        size = isa.SIZE_BYTES[insn.size]
        value = self.reg(insn.src) if insn.cls == isa.STX else i64(insn.imm)
        if size < 8:
            value = b.trunc(value, INT[size * 8])
        addr = b.add(self.reg(insn.dst), i64(insn.off))
        b.store(value, self.pointer(pc, addr, size, STORE), align=1)

    ATOMIC_RMW = {isa.ATOMIC_ADD: "add", isa.ATOMIC_OR: "or", isa.ATOMIC_AND: "and", isa.ATOMIC_XOR: "xor",
                  isa.XCHG: "xchg"}

    def atomic(self, pc: int, insn: isa.Instruction) -> None:
        """Atomics: LLVM atomicrmw/cmpxchg when aligned, a plain read-modify-write when not.

        x86 would perform a misaligned locked access too, but as a split
        lock that Linux may penalise or kill; a run is single-threaded, so
        a plain update is the same operation as far as the program can tell.
        """
        size = isa.SIZE_BYTES[insn.size]
        op = insn.imm if insn.imm in (isa.XCHG, isa.CMPXCHG) else insn.imm & ~isa.FETCH
        if size not in (4, 8) or op not in self.ATOMIC_RMW and op != isa.CMPXCHG:
            raise UnsupportedInstruction(f"atomic operation {insn.imm:#x} of {size} bytes is not supported", pc=pc)
        b = self.b
        ty = INT[size * 8]
        addr = b.add(self.reg(insn.dst), i64(insn.off))
        ptr = self.pointer(pc, addr, size, ATOMIC)
        src = b.trunc(self.reg(insn.src), ty) if size == 4 else self.reg(insn.src)
        expected = b.trunc(self.reg(0), ty) if size == 4 else self.reg(0)
        aligned = b.icmp_unsigned("==", b.and_(addr, i64(size - 1)), i64(0))
        with b.if_else(self.likely(aligned)) as (then, otherwise):
            with then:
                if op == isa.CMPXCHG:
                    old_locked = b.extract_value(b.cmpxchg(ptr, expected, src, "seq_cst", "seq_cst"), 0)
                else:
                    old_locked = b.atomic_rmw(self.ATOMIC_RMW[op], ptr, src, "seq_cst")
                locked_block = b.block
            with otherwise:
                old_plain = b.load(ptr, typ=ty, align=1)
                if op == isa.CMPXCHG:
                    new = b.select(b.icmp_unsigned("==", old_plain, expected), src, old_plain)
                elif op == isa.XCHG:
                    new = src
                else:
                    new = {"add": b.add, "or": b.or_, "and": b.and_, "xor": b.xor}[self.ATOMIC_RMW[op]](old_plain, src)
                b.store(new, ptr, align=1)
                plain_block = b.block
        old = b.phi(ty)
        old.add_incoming(old_locked, locked_block)
        old.add_incoming(old_plain, plain_block)
        if op == isa.CMPXCHG:
            self.set_reg(0, old)
        elif insn.imm & isa.FETCH:
            self.set_reg(insn.src, old)
