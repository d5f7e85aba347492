"""Differential fuzzing: random programs give the same outcome in the interpreter and the JIT.

Hypothesis builds programs from every instruction family (ALU in both widths
with register and immediate operands, signed division, movsx, byte swaps,
loads, sign-extending loads, stores and atomics on the stack and on the
input, forward jumps of every kind, counted loops, local calls and helper
calls) and random inputs. The outcome compared is r0 or the error type and
its pc, plus the input buffer afterwards (the program's stores to it). Some
programs fault on purpose: an input access past its end, a division by a
register that happens to be zero, a budget too small for the loop.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zcsdfs.csd import isa
from zcsdfs.csd.errors import BpfError, ProgramRefused
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret
from zcsdfs.csd.interpreter import Interpreter
from zcsdfs.csd.isa import Instruction
from zcsdfs.csd.jit import Jit
from zcsdfs.csd.program import Program
from zcsdfs.csd.verifier import verify

M64 = (1 << 64) - 1
INPUT = 9  # holds the input pointer throughout; never a destination
COUNTER = 8  # the loop counter in looping programs
MIX, STOP = 1, 2  # helper numbers


def _mix(vm, r1, r2, r3, r4, r5):
    return (r1 * 0x9E3779B97F4A7C15 + (r2 ^ r3) + (r4 << 3) - r5) & M64


def _stop_if_odd(vm, r1, r2, *_):
    if r1 & 1:
        vm.stop(r2)
    return r1 >> 1


HELPERS = HelperSet((Helper(MIX, "mix", (Arg.SCALAR,) * 5, Ret.INTEGER, _mix),
                     Helper(STOP, "stop_if_odd", (Arg.SCALAR, Arg.SCALAR), Ret.INTEGER, _stop_if_odd)))

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

imm32 = st.one_of(st.sampled_from([0, 1, -1, 2, 7, 31, 32, 63, 64, 0x7FFFFFFF, -0x80000000, 0xFF, -0x100]),
                  st.integers(-(1 << 31), (1 << 31) - 1))
value64 = st.one_of(st.sampled_from([0, 1, M64, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 1 << 32, 0x80000000]),
                    st.integers(0, M64))


# Registers read as values: not the input pointer, whose value differs between
# the engines (virtual addresses in the interpreter, real ones in the JIT).
values = st.integers(0, 8)


def _scratch(avoid: tuple[int, ...]) -> st.SearchStrategy[int]:
    return st.sampled_from([r for r in range(10) if r not in avoid])


# -- instruction strategies (one slot each) ----------------------------------------

@st.composite
def alu(draw, avoid=(INPUT,)):
    cls = draw(st.sampled_from([isa.ALU, isa.ALU64]))
    dst = draw(_scratch(avoid))
    src = draw(values)
    kind = draw(st.sampled_from(["plain", "plain", "plain", "signed", "movsx", "end", "neg"]))
    if kind == "end":
        if cls == isa.ALU64:
            return Instruction(isa.ALU64 | isa.END, dst, imm=draw(st.sampled_from([16, 32, 64])))
        source = draw(st.sampled_from([isa.TO_LE, isa.TO_BE]))
        return Instruction(isa.ALU | source | isa.END, dst, imm=draw(st.sampled_from([16, 32, 64])))
    if kind == "neg":
        return Instruction(cls | isa.NEG, dst)
    if kind == "movsx":
        off = draw(st.sampled_from([8, 16, 32] if cls == isa.ALU64 else [8, 16]))
        return Instruction(cls | isa.X | isa.MOV, dst, src, off)
    if kind == "signed":
        op = draw(st.sampled_from([isa.DIV, isa.MOD]))
        off = 1
    else:
        op = draw(st.sampled_from([isa.ADD, isa.SUB, isa.MUL, isa.DIV, isa.OR, isa.AND, isa.LSH, isa.RSH,
                                   isa.MOD, isa.XOR, isa.MOV, isa.ARSH]))
        off = 0
    if draw(st.booleans()):
        return Instruction(cls | isa.X | op, dst, src, off)
    return Instruction(cls | isa.K | op, dst, 0, off, draw(imm32))


@st.composite
def stack_access(draw, avoid=(INPUT,)):
    """A load, store or atomic inside the 512-byte frame (any alignment)."""
    size = draw(st.sampled_from([isa.B, isa.H, isa.W, isa.DW]))
    n = isa.SIZE_BYTES[size]
    off = draw(st.integers(-512, -n))
    kind = draw(st.sampled_from(["ldx", "ldsx", "st", "stx", "atomic"]))
    return _access(draw, kind, size, 10, off, avoid)


@st.composite
def input_access(draw, avoid=(INPUT,)):
    """A load, store or atomic near the input (some of them past its end)."""
    size = draw(st.sampled_from([isa.B, isa.H, isa.W, isa.DW]))
    off = draw(st.integers(-2, 40))
    kind = draw(st.sampled_from(["ldx", "ldx", "ldsx", "st", "stx", "atomic"]))
    return _access(draw, kind, size, INPUT, off, avoid)


def _access(draw, kind, size, base, off, avoid):
    value_reg = draw(values)
    if kind == "ldsx" and size == isa.DW:
        kind = "ldx"
    if kind in ("ldx", "ldsx"):
        mode = isa.MEMSX if kind == "ldsx" else isa.MEM
        return Instruction(isa.LDX | mode | size, draw(_scratch(avoid)), base, off)
    if kind == "st":
        return Instruction(isa.ST | isa.MEM | size, base, 0, off, draw(imm32))
    if kind == "atomic" and size in (isa.W, isa.DW):
        op = draw(st.sampled_from([isa.ATOMIC_ADD, isa.ATOMIC_OR, isa.ATOMIC_AND, isa.ATOMIC_XOR]))
        imm = draw(st.sampled_from([op, op | isa.FETCH, isa.XCHG, isa.CMPXCHG]))
        fetches = imm & isa.FETCH and imm != isa.CMPXCHG
        src = draw(_scratch(avoid)) if fetches else value_reg
        return Instruction(isa.STX | isa.ATOMIC | size, base, src, off, imm)
    return Instruction(isa.STX | isa.MEM | size, base, value_reg, off)


def helper_call(draw):
    return Instruction(isa.JMP | isa.CALL, imm=draw(st.sampled_from([MIX, STOP])))


@st.composite
def body(draw, length, avoid=(INPUT,)):
    """``length`` slots of straight-line code with forward jumps inside it (to its end at most)."""
    slots = []
    for i in range(length):
        choice = draw(st.sampled_from(["alu"] * 5 + ["stack", "input", "jump", "helper"]))
        if choice == "alu":
            slots.append(draw(alu(avoid)))
        elif choice == "stack":
            slots.append(draw(stack_access(avoid)))
        elif choice == "input":
            slots.append(draw(input_access(avoid)))
        elif choice == "helper":
            slots.append(helper_call(draw))
        else:
            skip = draw(st.integers(0, length - i - 1))
            cls = draw(st.sampled_from([isa.JMP, isa.JMP32]))
            op = draw(st.sampled_from([isa.JEQ, isa.JGT, isa.JGE, isa.JSET, isa.JNE, isa.JSGT, isa.JSGE,
                                       isa.JLT, isa.JLE, isa.JSLT, isa.JSLE, isa.JA]))
            if op == isa.JA:
                slots.append(Instruction(isa.JMP32 | isa.JA, imm=skip) if cls == isa.JMP32
                             else Instruction(isa.JMP | isa.JA, off=skip))
            elif draw(st.booleans()):
                slots.append(Instruction(cls | isa.X | op, draw(values), draw(values), skip))
            else:
                slots.append(Instruction(cls | isa.K | op, draw(values), 0, skip, draw(imm32)))
    return slots


@st.composite
def prologue(draw):
    """Every register gets a value (r9 the input pointer), so any register may be read."""
    slots = [Instruction(isa.ALU64 | isa.X | isa.MOV, INPUT, 1)]
    for r in range(9):
        slots.extend(isa.lddw(r, draw(value64)))
    return slots


EXIT = Instruction(isa.JMP | isa.EXIT)
inputs = st.binary(min_size=0, max_size=40)


def outcome(engine, mem: bytes):
    buffer = bytearray(mem)
    try:
        result = engine.run(buffer)
    except BpfError as exc:
        result = (type(exc).__name__, exc.pc)
    return result, bytes(buffer)


def check(insns, mem: bytes, budget: int = 1 << 20):
    """Both engines agree, with the verifier's verdict when it accepts the program and without."""
    program = Program(insns)
    expected = outcome(Interpreter(program, HELPERS, budget), mem)
    assert outcome(Jit(program, HELPERS, budget), mem) == expected
    try:
        verdict = verify(program, HELPERS)
    except ProgramRefused:
        return
    assert outcome(Jit(program, HELPERS, budget, verdict), mem) == expected


@SETTINGS
@given(start=prologue(), code=st.integers(1, 40).flatmap(body), mem=inputs)
def test_straight_line_programs_agree(start, code, mem):
    check(start + code + [EXIT], mem)


@SETTINGS
@given(start=prologue(), trips=st.integers(1, 30), code=st.integers(1, 15).flatmap(
    lambda n: body(n, avoid=(INPUT, COUNTER))), mem=inputs, budget=st.sampled_from([1 << 20, 20, 57, 150]))
def test_counted_loops_agree(start, trips, code, mem, budget):
    loop = [Instruction(isa.ALU64 | isa.K | isa.MOV, COUNTER, imm=trips), *code,
            Instruction(isa.ALU64 | isa.K | isa.SUB, COUNTER, imm=1),
            Instruction(isa.JMP | isa.K | isa.JNE, COUNTER, 0, -(len(code) + 2), 0)]
    check(start + loop + [EXIT], mem, budget)


@SETTINGS
@given(start=prologue(), before=st.integers(0, 10).flatmap(body),
       callee=st.integers(1, 15).flatmap(body),
       after=st.integers(0, 10).flatmap(body), mem=inputs)
def test_local_calls_agree(start, before, callee, after, mem):
    # The callee (right after main's exit: the call's target is pc + 1 + imm) takes the
    # input pointer from r1 and gives every other register a value of its own.
    call = Instruction(isa.JMP | isa.CALL, src=isa.CALL_LOCAL, imm=len(after) + 2)
    forget = Instruction(isa.ALU64 | isa.K | isa.MOV, 1, imm=1)  # the pointer is not a value
    main = start + before + [Instruction(isa.ALU64 | isa.X | isa.MOV, 1, INPUT), call, forget] + after + [EXIT]
    function = [Instruction(isa.ALU64 | isa.X | isa.MOV, INPUT, 1),
                *[Instruction(isa.ALU64 | isa.K | isa.MOV, r, imm=r) for r in range(9)]] + callee + [EXIT]
    check(main + function, mem)


# -- pointer comparisons: refused unless both engines must agree -------------------------
#
# The JIT's registers hold host addresses and the interpreter's hold virtual ones, so
# a comparison that depends on where memory is gives different answers (and, under
# the JIT, leaks the address bit by bit). The verifier must refuse every such
# program; those it accepts must agree.

LEAKS = {
    # the minimal program: the stack pointer against the input pointer
    "jgt r10 r1": "mov %r3, 0\njgt %r10, %r1, +1\nmov %r3, 1\nmov %r0, %r3\nexit",
    "pointer against a number": "mov %r0, 0\nlddw %r2, 0x7f0000000000\njgt %r10, %r2, +1\nmov %r0, 1\nexit",
    "number against a pointer": "mov %r0, 0\nmov %r2, 1\njlt %r2, %r10, +1\nmov %r0, 1\nexit",
    "jne with a non-zero constant": "mov %r0, 0\njne %r1, 4096, +1\nmov %r0, 1\nexit",
    "jset on a pointer": "mov %r0, 0\njset %r10, 0x1000, +1\nmov %r0, 1\nexit",
    "32-bit null check": "mov %r0, 0\njeq32 %r1, 0, +1\nmov %r0, 1\nexit",
    "32-bit same region": "mov %r0, 0\nmov %r2, %r10\nadd %r2, -8\njgt32 %r10, %r2, +1\nmov %r0, 1\nexit",
    "two regions": "mov %r0, 0\njeq %r10, %r1, +1\nmov %r0, 1\nexit",
    "same region, offsets that may wrap": """
        mov %r0, 0
        ldxdw %r3, [%r1]
        mov %r2, %r10
        add %r2, %r3
        jgt %r2, %r10, +1
        mov %r0, 1
        exit""",
    "jset of two pointers": "mov %r0, 0\nmov %r2, %r10\njset %r2, %r10, +1\nmov %r0, 1\nexit",
}

SAFE = {
    "null check of the context": "mov %r0, 0\njeq %r1, 0, +1\nmov %r0, 1\nexit",
    "same frame, ordered": "mov %r0, 0\nmov %r2, %r10\nadd %r2, -8\njgt %r10, %r2, +1\nmov %r0, 1\nexit",
    "same frame, signed": "mov %r0, 0\nmov %r2, %r10\nadd %r2, -8\njslt %r2, %r10, +1\nmov %r0, 1\nexit",
    "same frame, equal": "mov %r0, 0\nmov %r2, %r10\njeq %r2, %r10, +1\nmov %r0, 1\nexit",
    "input end pointer": """
        mov %r0, 0
        mov %r3, %r1
        add %r3, 8
        mov %r4, %r1
    loop:
        jge %r4, %r3, done
        add %r0, 1
        add %r4, 1
        ja loop
    done:
        exit""",
}


def verified_outcomes(insns, mem: bytes, budget: int = 1 << 20):
    """The outcome in each engine when the verifier accepts the program, else None."""
    program = Program(insns)
    try:
        verdict = verify(program, HELPERS)
    except ProgramRefused:
        return None
    return (outcome(Interpreter(program, HELPERS, budget, verdict), mem),
            outcome(Jit(program, HELPERS, budget, verdict), mem))


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_address_dependent_comparisons_are_refused(name):
    from zcsdfs.csd.asm import assemble

    program = assemble(LEAKS[name])
    with pytest.raises(ProgramRefused, match="compare") as info:
        verify(program, HELPERS)
    assert info.value.pc is not None and program.insns[info.value.pc].cls in (isa.JMP, isa.JMP32)
    assert verified_outcomes(program.insns, bytes(16)) is None


@pytest.mark.parametrize("name", sorted(SAFE))
def test_address_independent_comparisons_agree(name):
    from zcsdfs.csd.asm import assemble

    outcomes = verified_outcomes(assemble(SAFE[name]).insns, bytes(16))
    assert outcomes is not None
    interp, jit = outcomes
    assert interp == jit


POINTERS = [  # (setup, register): a register holding a pointer, made in a few ways
    ([], 1), ([], 10),
    ([Instruction(isa.ALU64 | isa.X | isa.MOV, 6, 10), Instruction(isa.ALU64 | isa.K | isa.ADD, 6, imm=-16)], 6),
    ([Instruction(isa.ALU64 | isa.X | isa.MOV, 7, 1), Instruction(isa.ALU64 | isa.K | isa.ADD, 7, imm=3)], 7),
]


@SETTINGS
@given(a=st.sampled_from(POINTERS), b=st.one_of(st.sampled_from(POINTERS), st.tuples(st.just([]), st.just(-1))),
       op=st.sampled_from([isa.JEQ, isa.JGT, isa.JGE, isa.JSET, isa.JNE, isa.JSGT, isa.JSGE,
                           isa.JLT, isa.JLE, isa.JSLT, isa.JSLE]),
       cls=st.sampled_from([isa.JMP, isa.JMP32]), imm=st.sampled_from([0, 1, 4096, -1]), swap=st.booleans(),
       mem=st.binary(min_size=0, max_size=16))
def test_random_pointer_comparisons_are_refused_or_agree(a, b, op, cls, imm, swap, mem):
    (setup_a, ra), (setup_b, rb) = a, b
    if rb < 0:
        jump = Instruction(cls | isa.K | op, ra, 0, 1, imm)
    else:
        jump = Instruction(cls | isa.X | op, *((rb, ra) if swap else (ra, rb)), 1)
    insns = [*setup_a, *setup_b, Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=0), jump,
             Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=1), EXIT]
    outcomes = verified_outcomes(insns, mem)
    if outcomes is not None:
        assert outcomes[0] == outcomes[1]
