"""The reference engine: eBPF translated once into Python source, then run.

A loop that decodes and dispatches every instruction on every step spends
nearly all of its time on decoding and dispatch in CPython. Instead, each eBPF
function (the entry and every ``call local`` target) becomes one Python
function whose eBPF registers are Python locals, and each basic block becomes
straight-line statements, one source line per instruction. Blocks are picked
by a binary ``if pc < N`` tree inside a ``while True`` loop; a block that
jumps back to itself (a tight loop) gets an inner ``while`` so it never goes
through the dispatch. The instruction budget is charged once per block, on
entry; since a block always runs to its end, the count is exact. The counter
holds a slice of the budget; when it runs out the run's ``limits.Meter``
gives the next slice and checks the deadline.

Registers hold unsigned 64-bit values as Python ints; every result is masked
back into range and 32-bit operations zero-extend. Memory accesses index the
run's region table (``memory.Memory``) and let ``struct`` check the bounds:
a bad access raises ``IndexError``, ``struct.error`` or ``TypeError`` on the
source line of that instruction, and :meth:`Interpreter.run` turns it into a
``MemoryFault`` naming the instruction and the address.

Translations are cached by the program's content hash; helpers are bound per
interpreter, so one program can run with different helper sets.
"""

from __future__ import annotations

import collections
import struct

import attrs

from zcsdfs.csd import isa, memory
from zcsdfs.csd.engine import DEFAULT_BUDGET
from zcsdfs.csd.errors import (
    BpfError,
    BudgetExceeded,
    DeadlineExceeded,
    LimitExceeded,
    MemoryFault,
    ProgramRefused,
    UnsupportedInstruction,
)
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.limits import INTERP_SLICE, Meter
from zcsdfs.csd.memory import Memory
from zcsdfs.csd.program import Program

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
SIGN32 = 0x80000000
SIGN64 = 0x8000000000000000

_FILENAME = "<ebpf>"
_FAULT_ERRORS = (IndexError, struct.error, TypeError)
_CACHE_SIZE = 64


class _Stopped(Exception):
    """A helper called ``vm.stop``: unwinds every eBPF frame back to ``run``
    (carrying the budget left, so the run can still count its instructions)."""

    def __init__(self, budget: int):
        super().__init__(budget)
        self.budget = budget


@attrs.frozen
class _Access:
    """A memory instruction, for the fault message."""

    kind: str  # "load", "store" or "atomic"
    size: int


@attrs.frozen
class _Translation:
    """A program as compiled Python, with its source lines mapped back to instructions."""

    code: object  # module code object defining f<entry> for every eBPF function
    line_pcs: dict[int, int]  # source line -> pc
    accesses: dict[int, _Access]  # pc -> memory access at that pc
    helpers: dict[int, int]  # helper number -> pc of its first call


class Interpreter:
    """Runs a program through its Python translation (see the module docstring).

    ``verdict`` (from the verifier) is accepted for symmetry with the JIT; the
    interpreter checks every access anyway, because the check is the same
    ``struct`` call that performs the access.
    """

    def __init__(self, program: Program, helpers: HelperSet | None = None,
                 budget: int = DEFAULT_BUDGET, verdict=None, timeout: float | None = None):
        self.program = program
        self.helpers = helpers if helpers is not None else HelperSet()
        self.budget = budget
        self.timeout = timeout
        self.verdict = verdict
        self._translation = _translate(program)
        namespace = dict(_RUNTIME)
        for number, pc in self._translation.helpers.items():
            helper = self.helpers.get(number)
            if helper is None:
                raise ProgramRefused(f"call to unknown helper {number}", pc=pc)
            namespace[f"helper_{number}"] = helper.func
        exec(self._translation.code, namespace)
        self._entry = namespace["f0"]

    def run(self, mem=None, *, env=None, budget: int | None = None, timeout: float | None = None) -> int:
        """Run once with ``mem`` as the context; returns r0 as an unsigned 64-bit int.

        ``budget`` and ``timeout`` (seconds) override the interpreter's for
        this run. When ``env`` has an ``instructions`` attribute, the
        instructions this run executed are added to it (the whole budget when
        it ran out; a memory fault counts nothing, its count being unknown here).
        """
        budget = self.budget if budget is None else budget
        meter = Meter(budget, self.timeout if timeout is None else timeout, INTERP_SLICE)
        vm = Memory(mem, self.program.sections, env)
        vm.meter = meter
        left = meter.first
        try:
            r0, left = self._entry(vm.context_address, vm.context_length, 0, 0, 0,
                                   memory.frame_pointer(0), 0, meter.first, vm, vm.readable, vm.writable)
        except _Stopped as stop:
            left = stop.budget
            return vm.result
        except BudgetExceeded as exc:
            left = -meter.reserve  # all of it: used() = budget
            raise BudgetExceeded(f"instruction budget of {budget} exhausted", pc=exc.pc) from None
        except DeadlineExceeded as exc:
            left = exc.counter
            raise DeadlineExceeded(f"time limit of {meter.timeout:g} s exceeded", pc=exc.pc) from None
        except _FAULT_ERRORS as exc:
            fault = self._memory_fault(exc)
            if fault is None:
                raise
            raise fault from None
        except BpfError as exc:
            if exc.pc is not None:
                raise
            tb = _innermost_generated(exc)
            if tb is None:
                raise
            raise type(exc)(exc.reason, pc=self._translation.line_pcs[tb.tb_lineno]) from None
        finally:
            if hasattr(env, "instructions"):
                env.instructions += meter.used(left)
        return r0

    def _memory_fault(self, exc: Exception) -> MemoryFault | None:
        """The fault for an access the program made, or None if ``exc`` came from elsewhere."""
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        if tb.tb_frame.f_code.co_filename != _FILENAME:
            return None
        pc = self._translation.line_pcs.get(tb.tb_lineno)
        access = self._translation.accesses.get(pc)
        if access is None:
            return None
        addr = tb.tb_frame.f_locals["a"]
        kind = "readable" if access.kind == "load" else "writable"
        return MemoryFault(f"{access.kind} of {access.size} bytes at {addr:#x} "
                           f"is outside every {kind} region", pc=pc)


def _innermost_generated(exc: BaseException):
    found, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            found = tb
        tb = tb.tb_next
    return found


# --- run-time support the generated code calls --------------------------------


def _signed64(x: int) -> int:
    return x - (1 << 64) if x & SIGN64 else x


def _signed32(x: int) -> int:
    x &= M32
    return x - (1 << 32) if x & SIGN32 else x


def _sdiv(a: int, b: int, mask: int) -> int:
    """Signed division truncating toward zero; by zero gives 0."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return (q if (a < 0) == (b < 0) else -q) & mask


def _smod(a: int, b: int, mask: int) -> int:
    """Signed remainder with the dividend's sign (C's %); by zero leaves the dividend."""
    if b == 0:
        return a & mask
    r = abs(a) % abs(b)
    return (r if a >= 0 else -r) & mask


def _refill(vm, counter: int, pc: int) -> int:
    """The block at ``pc`` took the counter below 0: the next slice of the budget, or stop."""
    meter = vm.meter
    refilled = meter.refill(counter)
    if refilled is None:
        raise BudgetExceeded("instruction budget exhausted", pc=pc)
    if meter.expired():
        stop = DeadlineExceeded("time limit exceeded", pc=pc)
        stop.counter = refilled
        raise stop
    return refilled


def _too_deep(pc: int):
    raise LimitExceeded(f"call depth beyond {memory.MAX_FRAMES} frames", pc=pc)


_RUNTIME = {
    "M32": M32, "M64": M64, "SIGN32": SIGN32, "SIGN64": SIGN64,
    "U16": struct.Struct("<H").unpack_from, "U32": struct.Struct("<I").unpack_from,
    "U64": struct.Struct("<Q").unpack_from, "S8": struct.Struct("<b").unpack_from,
    "S16": struct.Struct("<h").unpack_from, "S32": struct.Struct("<i").unpack_from,
    "P16": struct.Struct("<H").pack_into, "P32": struct.Struct("<I").pack_into,
    "P64": struct.Struct("<Q").pack_into,
    "sdiv64": lambda a, b: _sdiv(_signed64(a), _signed64(b), M64),
    "smod64": lambda a, b: _smod(_signed64(a), _signed64(b), M64),
    "sdiv32": lambda a, b: _sdiv(_signed32(a), _signed32(b), M32),
    "smod32": lambda a, b: _smod(_signed32(a), _signed32(b), M32),
    "bswap16": lambda x: ((x & 0xFF) << 8) | ((x >> 8) & 0xFF),
    "bswap32": lambda x: int.from_bytes((x & M32).to_bytes(4, "little"), "big"),
    "bswap64": lambda x: int.from_bytes(x.to_bytes(8, "little"), "big"),
    "FP": tuple(memory.frame_pointer(depth) for depth in range(memory.MAX_FRAMES)),
    "Stopped": _Stopped,
    "too_deep": _too_deep,
    "refill": _refill,
}


# --- translation ---------------------------------------------------------------

_cache: collections.OrderedDict[str, _Translation] = collections.OrderedDict()


def _translate(program: Program) -> _Translation:
    """The cached translation of ``program`` (keyed by its content hash)."""
    key = program.digest
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    translation = _Translator(program).translate()
    _cache[key] = translation
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return translation


@attrs.define
class _Block:
    start: int
    pcs: list[int]  # instruction starts in this block
    successors: tuple[int, ...] = ()


class _Translator:
    """Builds the Python source for one program; refuses what it cannot run."""

    def __init__(self, program: Program):
        self.program = program
        self.insns = program.insns
        self.width: dict[int, int] = {}  # instruction start -> slots (2 for lddw)
        self.accesses: dict[int, _Access] = {}
        self.helpers: dict[int, int] = {}
        self.lines: list[str] = []
        self.line_pcs: dict[int, int] = {}

    def translate(self) -> _Translation:
        self._find_instructions()
        entries = self._function_entries()
        leaders = self._leaders(entries)
        blocks = self._blocks(leaders)
        for entry in sorted(entries):
            self._function(entry, self._reachable(entry, blocks), blocks)
        source = "\n".join(self.lines) + "\n"
        code = compile(source, _FILENAME, "exec")
        return _Translation(code, self.line_pcs, self.accesses, self.helpers)

    # -- control flow --

    def _find_instructions(self) -> None:
        if not self.insns:
            raise ProgramRefused("empty program")
        pc = 0
        while pc < len(self.insns):
            if self.insns[pc].is_lddw:
                if pc + 1 >= len(self.insns) or self.insns[pc + 1].opcode != 0:
                    raise ProgramRefused("lddw without its second slot", pc=pc)
                self.width[pc] = 2
            else:
                self.width[pc] = 1
            pc += self.width[pc]

    def _check_target(self, pc: int, target: int) -> int:
        if target not in self.width:
            raise ProgramRefused(f"jump to {target}, which is not the start of an instruction", pc=pc)
        return target

    def _function_entries(self) -> set[int]:
        entries = {0}
        for pc in self.width:
            insn = self.insns[pc]
            if insn.opcode == isa.JMP | isa.CALL and insn.src == isa.CALL_LOCAL:
                entries.add(self._check_target(pc, pc + 1 + insn.imm))
        return entries

    def _jump_target(self, pc: int) -> int | None:
        """Where the jump at ``pc`` may go (None: not a jump)."""
        insn = self.insns[pc]
        if insn.opcode == isa.JMP32 | isa.JA:
            return self._check_target(pc, pc + 1 + insn.imm)
        if insn.cls in (isa.JMP, isa.JMP32) and insn.op not in (isa.CALL, isa.EXIT):
            return self._check_target(pc, pc + 1 + insn.off)
        return None

    def _ends_block(self, pc: int) -> bool:
        insn = self.insns[pc]
        return insn.opcode == isa.JMP | isa.EXIT or self._jump_target(pc) is not None

    def _leaders(self, entries: set[int]) -> set[int]:
        leaders = set(entries)
        for pc in self.width:
            target = self._jump_target(pc)
            if target is not None:
                leaders.add(target)
            if self._ends_block(pc) and pc + self.width[pc] in self.width:
                leaders.add(pc + self.width[pc])
        return leaders

    def _blocks(self, leaders: set[int]) -> dict[int, _Block]:
        blocks: dict[int, _Block] = {}
        for start in sorted(leaders):
            block, pc = _Block(start, []), start
            while True:
                block.pcs.append(pc)
                following = pc + self.width[pc]
                if self._ends_block(pc):
                    break
                if following not in self.width:
                    raise ProgramRefused("execution falls off the end of the program", pc=pc)
                if following in leaders:
                    break
                pc = following
            block.successors = self._successors(block.pcs[-1])
            blocks[start] = block
        return blocks

    def _successors(self, last: int) -> tuple[int, ...]:
        insn = self.insns[last]
        following = last + self.width[last]
        if insn.opcode == isa.JMP | isa.EXIT:
            return ()
        target = self._jump_target(last)
        if target is None:
            return (following,)
        if insn.op == isa.JA:
            return (target,)
        if following not in self.width:
            raise ProgramRefused("execution falls off the end of the program", pc=last)
        return (target, following)

    @staticmethod
    def _reachable(entry: int, blocks: dict[int, _Block]) -> list[int]:
        seen, todo = {entry}, [entry]
        while todo:
            for successor in blocks[todo.pop()].successors:
                if successor not in seen:
                    seen.add(successor)
                    todo.append(successor)
        return sorted(seen)

    # -- source generation --

    def _emit(self, indent: int, text: str, pc: int | None = None) -> None:
        self.lines.append("    " * indent + text)
        if pc is not None:
            self.line_pcs[len(self.lines)] = pc

    def _function(self, entry: int, starts: list[int], blocks: dict[int, _Block]) -> None:
        self._emit(0, f"def f{entry}(r1, r2, r3, r4, r5, r10, depth, budget, vm, R, W):")
        self._emit(1, "r0 = r6 = r7 = r8 = r9 = 0")
        self._emit(1, f"pc = {entry}")
        self._emit(1, "while True:")
        self._dispatch(starts, blocks, 2)

    def _dispatch(self, starts: list[int], blocks: dict[int, _Block], indent: int) -> None:
        """A binary decision tree on ``pc`` over the block starts."""
        if len(starts) == 1:
            self._block(blocks[starts[0]], indent)
            return
        middle = len(starts) // 2
        self._emit(indent, f"if pc < {starts[middle]}:")
        self._dispatch(starts[:middle], blocks, indent + 1)
        self._emit(indent, "else:")
        self._dispatch(starts[middle:], blocks, indent + 1)

    def _block(self, block: _Block, indent: int) -> None:
        last = block.pcs[-1]
        loops = self._jump_target(last) == block.start
        if loops:
            self._emit(indent, "while True:")
            indent += 1
        self._emit(indent, f"budget -= {len(block.pcs)}", block.start)
        self._emit(indent, f"if budget < 0: budget = refill(vm, budget, {block.start})", block.start)
        for pc in block.pcs[:-1]:
            for text in self._statements(pc):
                self._emit(indent, text, pc)
        self._terminator(block, last, loops, indent)

    def _terminator(self, block: _Block, pc: int, loops: bool, indent: int) -> None:
        insn = self.insns[pc]
        if insn.opcode == isa.JMP | isa.EXIT:
            self._emit(indent, "return r0, budget", pc)
            return
        target = self._jump_target(pc)
        if target is None:  # the next instruction starts another block
            for text in self._statements(pc):
                self._emit(indent, text, pc)
            self._emit(indent, f"pc = {block.successors[0]}", pc)
            return
        if insn.op == isa.JA:
            self._emit(indent, "continue" if loops else f"pc = {target}", pc)
            return
        condition = self._condition(pc, insn)
        following = block.successors[1]
        if loops:
            self._emit(indent, f"if {condition}: continue", pc)
            self._emit(indent, f"pc = {following}", pc)
            self._emit(indent, "break", pc)
        else:
            self._emit(indent, f"pc = {target} if {condition} else {following}", pc)

    # -- instructions --

    def _statements(self, pc: int) -> list[str]:
        insn = self.insns[pc]
        cls = insn.cls
        if cls == isa.ALU64:
            return [self._alu64(pc, insn)]
        if cls == isa.ALU:
            return [self._alu32(pc, insn)]
        if cls == isa.LD:
            return [self._ld(pc, insn)]
        if cls == isa.LDX:
            return [self._load(pc, insn)]
        if cls in (isa.ST, isa.STX):
            return [self._store(pc, insn)]
        return self._call(pc, insn)

    def _alu64(self, pc: int, insn: isa.Instruction) -> str:
        d, op = f"r{insn.dst}", insn.op
        if op == isa.END:
            return self._bswap(pc, insn, d)
        if op == isa.NEG:
            return f"{d} = -{d} & M64"
        if insn.source == isa.X:
            s = f"r{insn.src}"
            if op == isa.MOV and insn.off in (8, 16, 32):
                sign = 1 << (insn.off - 1)
                return f"{d} = ((({s} & {(1 << insn.off) - 1:#x}) ^ {sign:#x}) - {sign:#x}) & M64"
            shift = f"({s} & 63)"
        else:
            s = f"{insn.imm & M64:#x}"
            shift = str(insn.imm & 63)
        signed = insn.off == 1
        if op == isa.DIV:
            if signed:
                return f"{d} = sdiv64({d}, {s})"
            return f"{d} = {d} // {s} if {s} else 0" if insn.source == isa.X else (
                f"{d} //= {s}" if insn.imm else f"{d} = 0")
        if op == isa.MOD:
            if signed:
                return f"{d} = smod64({d}, {s})"
            return f"{d} = {d} % {s} if {s} else {d}" if insn.source == isa.X else (
                f"{d} %= {s}" if insn.imm else "pass")
        template = _ALU64.get(op)
        if template is None:
            raise ProgramRefused(f"unknown ALU64 opcode {insn.opcode:#04x}", pc=pc)
        return template.format(d=d, s=s, shift=shift)

    def _alu32(self, pc: int, insn: isa.Instruction) -> str:
        d, op = f"r{insn.dst}", insn.op
        if op == isa.END:
            if insn.source == isa.TO_BE:
                return self._bswap(pc, insn, d)
            masks = {16: f"{d} &= 0xffff", 32: f"{d} &= M32", 64: "pass"}
            if insn.imm not in masks:
                raise ProgramRefused(f"invalid byte-order width {insn.imm}", pc=pc)
            return masks[insn.imm]
        if op == isa.NEG:
            return f"{d} = -{d} & M32"
        if insn.source == isa.X:
            s = f"r{insn.src}"
            if op == isa.MOV and insn.off in (8, 16):
                sign = 1 << (insn.off - 1)
                return f"{d} = ((({s} & {(1 << insn.off) - 1:#x}) ^ {sign:#x}) - {sign:#x}) & M32"
            s32, shift = f"({s} & M32)", f"({s} & 31)"
        else:
            s = s32 = f"{insn.imm & M32:#x}"
            shift = str(insn.imm & 31)
        signed = insn.off == 1
        if op == isa.DIV:
            if signed:
                return f"{d} = sdiv32({d}, {s})"
            return f"{d} = ({d} & M32) // {s32} if {s32} else 0"
        if op == isa.MOD:
            if signed:
                return f"{d} = smod32({d}, {s})"
            return f"{d} = ({d} & M32) % {s32} if {s32} else {d} & M32"
        template = _ALU32.get(op)
        if template is None:
            raise ProgramRefused(f"unknown ALU opcode {insn.opcode:#04x}", pc=pc)
        return template.format(d=d, s=s, shift=shift)

    @staticmethod
    def _bswap(pc: int, insn: isa.Instruction, d: str) -> str:
        if insn.imm not in (16, 32, 64):
            raise ProgramRefused(f"invalid byte-swap width {insn.imm}", pc=pc)
        return f"{d} = bswap{insn.imm}({d})"

    def _ld(self, pc: int, insn: isa.Instruction) -> str:
        if insn.mode in (isa.ABS, isa.IND):
            raise UnsupportedInstruction("legacy packet access (ABS/IND loads) is not supported", pc=pc)
        if not insn.is_lddw:
            raise ProgramRefused(f"unknown load opcode {insn.opcode:#04x}", pc=pc)
        second = self.insns[pc + 1]
        if insn.src == isa.LDDW_IMM64:
            return f"r{insn.dst} = {isa.lddw_value(insn, second):#x}"
        if insn.src == isa.LDDW_SECTION:
            if not 0 <= insn.imm < len(self.program.sections):
                raise ProgramRefused(f"lddw refers to section {insn.imm}, which does not exist", pc=pc)
            address = (memory.section_address(insn.imm) + second.imm) & M64
            return f"r{insn.dst} = {address:#x}"
        raise UnsupportedInstruction(f"lddw with src={insn.src} is not supported", pc=pc)

    @staticmethod
    def _address(reg: int, off: int) -> str:
        return f"a = (r{reg} + {off}) & M64" if off else f"a = r{reg}"

    def _load(self, pc: int, insn: isa.Instruction) -> str:
        size, d = isa.SIZE_BYTES[insn.size], f"r{insn.dst}"
        address = self._address(insn.src, insn.off)
        self.accesses[pc] = _Access("load", size)
        if insn.mode == isa.MEM:
            if size == 1:
                return f"{address}; {d} = R[a >> 32][a & M32]"
            return f"{address}; {d} = U{size * 8}(R[a >> 32], a & M32)[0]"
        if insn.mode == isa.MEMSX and size < 8:
            return f"{address}; {d} = S{size * 8}(R[a >> 32], a & M32)[0] & M64"
        raise ProgramRefused(f"unknown load opcode {insn.opcode:#04x}", pc=pc)

    def _store(self, pc: int, insn: isa.Instruction) -> str:
        size = isa.SIZE_BYTES[insn.size]
        address = self._address(insn.dst, insn.off)
        if insn.cls == isa.STX and insn.mode == isa.ATOMIC:
            return f"{address}; {self._atomic(pc, insn, size)}"
        if insn.mode != isa.MEM:
            raise ProgramRefused(f"unknown store opcode {insn.opcode:#04x}", pc=pc)
        self.accesses[pc] = _Access("store", size)
        mask = (1 << (8 * size)) - 1
        value = f"r{insn.src} & {mask:#x}" if insn.cls == isa.STX else f"{insn.imm & mask:#x}"
        if size == 1:
            return f"{address}; W[a >> 32][a & M32] = {value}"
        return f"{address}; P{size * 8}(W[a >> 32], a & M32, {value})"

    def _atomic(self, pc: int, insn: isa.Instruction, size: int) -> str:
        if size not in (4, 8):
            raise ProgramRefused(f"atomic operations are 32 or 64 bits, not {size * 8}", pc=pc)
        self.accesses[pc] = _Access("atomic", size)
        bits, mask = size * 8, "M32" if size == 4 else "M64"
        s = f"r{insn.src}"
        head = f"w = W[a >> 32]; o = a & M32; v = U{bits}(w, o)[0]; "
        if insn.imm == isa.XCHG:
            return head + f"P{bits}(w, o, {s} & {mask}); {s} = v"
        if insn.imm == isa.CMPXCHG:
            return head + f"P{bits}(w, o, {s} & {mask} if v == r0 & {mask} else v); r0 = v"
        symbol = _ATOMIC_SYMBOLS.get(insn.imm & ~isa.FETCH)
        if symbol is None:
            raise ProgramRefused(f"unknown atomic operation {insn.imm:#x}", pc=pc)
        text = head + f"P{bits}(w, o, (v {symbol} {s}) & {mask})"
        return text + f"; {s} = v" if insn.imm & isa.FETCH else text

    def _call(self, pc: int, insn: isa.Instruction) -> list[str]:
        if insn.opcode == isa.JMP | isa.X | isa.CALL:
            raise UnsupportedInstruction("callx (call through a register) is not supported", pc=pc)
        if insn.opcode != isa.JMP | isa.CALL:
            raise ProgramRefused(f"unknown jump opcode {insn.opcode:#04x}", pc=pc)
        if insn.src == isa.CALL_HELPER:
            self.helpers.setdefault(insn.imm, pc)
            return [f"r0 = helper_{insn.imm}(vm, r1, r2, r3, r4, r5) & M64",
                    "if vm.stopped: raise Stopped(budget)"]
        if insn.src == isa.CALL_LOCAL:
            target = pc + 1 + insn.imm
            return [f"r0, budget = f{target}(r1, r2, r3, r4, r5, FP[depth + 1], depth + 1, budget, vm, R, W)"
                    f" if depth < {memory.MAX_FRAMES - 1} else too_deep({pc})"]
        raise UnsupportedInstruction(f"call with src={insn.src} (kfunc) is not supported", pc=pc)

    def _condition(self, pc: int, insn: isa.Instruction) -> str:
        op, d = insn.op, f"r{insn.dst}"
        if op not in _COMPARISONS:
            raise ProgramRefused(f"unknown jump opcode {insn.opcode:#04x}", pc=pc)
        wide = insn.cls == isa.JMP
        if insn.source == isa.X:
            b = f"r{insn.src}" if wide else f"(r{insn.src} & M32)"
        else:
            b = f"{insn.imm & (M64 if wide else M32):#x}"
        a = d if wide else f"({d} & M32)"
        symbol, signed = _COMPARISONS[op]
        if signed:
            sign = "SIGN64" if wide else "SIGN32"
            if insn.source == isa.X:
                b = f"({b} ^ {sign})"
            else:
                b = f"{(insn.imm & (M64 if wide else M32)) ^ (SIGN64 if wide else SIGN32):#x}"
            a = f"({a} ^ {sign})"
        return f"{a} {symbol} {b}"


_ALU64 = {
    isa.ADD: "{d} = ({d} + {s}) & M64",
    isa.SUB: "{d} = ({d} - {s}) & M64",
    isa.MUL: "{d} = ({d} * {s}) & M64",
    isa.OR: "{d} |= {s}",
    isa.AND: "{d} &= {s}",
    isa.XOR: "{d} ^= {s}",
    isa.LSH: "{d} = ({d} << {shift}) & M64",
    isa.RSH: "{d} >>= {shift}",
    isa.ARSH: "{d} = ((({d} ^ SIGN64) - SIGN64) >> {shift}) & M64",
    isa.MOV: "{d} = {s}",
}
_ALU32 = {
    isa.ADD: "{d} = ({d} + {s}) & M32",
    isa.SUB: "{d} = ({d} - {s}) & M32",
    isa.MUL: "{d} = ({d} * {s}) & M32",
    isa.OR: "{d} = ({d} | {s}) & M32",
    isa.AND: "{d} = {d} & {s} & M32",
    isa.XOR: "{d} = ({d} ^ {s}) & M32",
    isa.LSH: "{d} = ({d} << {shift}) & M32",
    isa.RSH: "{d} = ({d} & M32) >> {shift}",
    isa.ARSH: "{d} = (((({d} & M32) ^ SIGN32) - SIGN32) >> {shift}) & M32",
    isa.MOV: "{d} = {s} & M32",
}
_ATOMIC_SYMBOLS = {isa.ATOMIC_ADD: "+", isa.ATOMIC_OR: "|", isa.ATOMIC_AND: "&", isa.ATOMIC_XOR: "^"}
# jump op -> (Python comparison, signed?)
_COMPARISONS = {
    isa.JEQ: ("==", False), isa.JNE: ("!=", False), isa.JGT: (">", False),
    isa.JGE: (">=", False), isa.JLT: ("<", False), isa.JLE: ("<=", False),
    isa.JSET: ("&", False), isa.JSGT: (">", True), isa.JSGE: (">=", True),
    isa.JSLT: ("<", True), isa.JSLE: ("<=", True),
}
