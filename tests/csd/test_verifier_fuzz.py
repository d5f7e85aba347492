"""The verifier against random programs: it refuses (ProgramRefused, EINVAL) or
accepts, and never fails any other way; what it accepts runs alike in the
interpreter and the JIT (same r0 and output, or the same error class).

Two generators: random slots (any opcode of our groups, random registers,
offsets and immediates, so most programs die in the structural checks or
early in the analysis) and structured programs (pointers made from r1, r10
and helper results, moved, compared, stored, loaded and passed to helpers in
any argument position, with forward and backward jumps), which get deep into
the abstract interpretation.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zcsdfs.csd import isa, stdlib
from zcsdfs.csd.errors import BpfError, ProgramRefused
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret
from zcsdfs.csd.interpreter import Interpreter
from zcsdfs.csd.isa import Instruction
from zcsdfs.csd.jit import Jit
from zcsdfs.csd.program import Program, Section
from zcsdfs.csd.registry import kernel_helpers
from zcsdfs.csd.stdlib import StorageEnv
from zcsdfs.csd.verifier import verify

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUDGET = 20_000
FILE = bytes(range(256)) * 4
LOOKUP = 40  # a helper returning a maybe-null pointer


def _lookup(vm, key, *_):
    if key & 1:
        return 0
    return vm.map(bytearray(16))


def run_helpers() -> HelperSet:
    helpers = stdlib.storage_helpers()
    helpers.register(Helper(LOOKUP, "lookup", (Arg.SCALAR,), Ret.PTR_TO_MEM_OR_NULL, _lookup, ret_size=16))
    return helpers


RUN_HELPERS = run_helpers()
# everything a kernel may call, plus the lookup: the verifier's widest surface
VERIFY_HELPERS = HelperSet(tuple(kernel_helpers()) + (RUN_HELPERS.get(LOOKUP),))
SECTIONS = (Section(".rodata", bytes(range(32))), Section(".data", bytes(16), writable=True))

# -- random slots -----------------------------------------------------------------------

OPCODES = sorted(
    {cls | src | op for cls in (isa.ALU, isa.ALU64) for src in (isa.K, isa.X) for op in isa.ALU_NAMES}
    | {cls | src | op for cls in (isa.JMP, isa.JMP32) for src in (isa.K, isa.X) for op in isa.JMP_NAMES}
    | {isa.LDX | mode | size for mode in (isa.MEM, isa.MEMSX) for size in isa.SIZE_BYTES}
    | {isa.ST | isa.MEM | size for size in isa.SIZE_BYTES}
    | {isa.STX | mode | size for mode in (isa.MEM, isa.ATOMIC) for size in isa.SIZE_BYTES}
    | {isa.OPCODE_LDDW}
)
registers = st.integers(0, 11)
offsets = st.one_of(st.integers(-8, 8), st.integers(-600, 600), st.integers(-(1 << 15), (1 << 15) - 1))
immediates = st.one_of(st.sampled_from([0, 1, -1, 8, 16, 32, 64, 32 + 1, 35, 40, isa.CMPXCHG, isa.XCHG]),
                       st.integers(-(1 << 31), (1 << 31) - 1))


@st.composite
def random_slot(draw):
    return Instruction(draw(st.sampled_from(OPCODES)), draw(registers), draw(st.integers(0, 11)),
                       draw(offsets), draw(immediates))


random_programs = st.lists(random_slot(), min_size=1, max_size=30).map(
    lambda insns: insns + [Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=0), Instruction(isa.JMP | isa.EXIT)])


# -- structured programs -----------------------------------------------------------------

reg = st.integers(0, 9)
any_reg = st.integers(0, 10)


@st.composite
def step(draw, length: int, i: int):
    kind = draw(st.sampled_from(["pointer", "move", "alu", "load", "store", "compare", "helper", "loop",
                                 "section", "lookup"]))
    r = draw(reg)
    if kind == "pointer":
        return [Instruction(isa.ALU64 | isa.X | isa.MOV, r, draw(st.sampled_from([1, 10])))]
    if kind == "move":
        return [Instruction(isa.ALU64 | isa.K | draw(st.sampled_from([isa.ADD, isa.SUB])), r,
                            imm=draw(st.sampled_from([-8, -16, -512, 1, 8, 64, 1 << 20])))]
    if kind == "alu":
        op = draw(st.sampled_from(list(isa.ALU_NAMES)))
        cls = draw(st.sampled_from([isa.ALU, isa.ALU64]))
        if draw(st.booleans()):
            return [Instruction(cls | isa.X | op, r, draw(any_reg))]
        return [Instruction(cls | isa.K | op, r, imm=draw(immediates))]
    if kind == "load":
        return [Instruction(isa.LDX | isa.MEM | draw(st.sampled_from(list(isa.SIZE_BYTES))), r, draw(any_reg),
                            draw(st.sampled_from([0, -8, -16, 4, 8, -512])))]
    if kind == "store":
        size = draw(st.sampled_from(list(isa.SIZE_BYTES)))
        mode = draw(st.sampled_from([isa.MEM, isa.MEM, isa.ATOMIC]))
        return [Instruction(isa.STX | mode | size, draw(any_reg), r, draw(st.sampled_from([0, -8, -16, 8])),
                            isa.ATOMIC_ADD if mode == isa.ATOMIC else 0)]
    if kind == "compare":
        cls = draw(st.sampled_from([isa.JMP, isa.JMP32]))
        op = draw(st.sampled_from([o for o in isa.JMP_NAMES if o not in (isa.CALL, isa.EXIT, isa.JA)]))
        skip = draw(st.integers(0, max(0, length - i - 1)))
        if draw(st.booleans()):
            return [Instruction(cls | isa.X | op, r, draw(any_reg), skip)]
        return [Instruction(cls | isa.K | op, r, 0, skip, draw(st.sampled_from([0, 1, 8, 4096])))]
    if kind == "helper":
        number = draw(st.sampled_from([stdlib.READ, stdlib.RETURN_DATA, stdlib.BLOCK_SIZE, stdlib.FILE_SIZE,
                                       stdlib.DEBUG, LOOKUP]))
        args = []
        for a in range(1, 6):  # each argument: kept, a stack pointer, a number or another register
            how = draw(st.sampled_from(["keep", "stack", "number", "register"]))
            if how == "stack":
                args += [Instruction(isa.ALU64 | isa.X | isa.MOV, a, 10),
                         Instruction(isa.ALU64 | isa.K | isa.ADD, a, imm=draw(st.sampled_from([-8, -16, -64])))]
            elif how == "number":
                args.append(Instruction(isa.ALU64 | isa.K | isa.MOV, a, imm=draw(st.sampled_from([0, 1, 8, 16]))))
            elif how == "register":
                args.append(Instruction(isa.ALU64 | isa.X | isa.MOV, a, draw(st.integers(0, 10))))
        return args + [Instruction(isa.JMP | isa.CALL, imm=number)]
    if kind == "loop":  # a counted loop back to the start of this step
        return [Instruction(isa.ALU64 | isa.K | isa.MOV, 8, imm=draw(st.integers(1, 5))),
                Instruction(isa.ALU64 | isa.K | isa.SUB, 8, imm=1),
                Instruction(isa.JMP | isa.K | isa.JNE, 8, 0, -2, 0)]
    if kind == "section":  # lddw of a section's address plus an offset
        return [Instruction(isa.OPCODE_LDDW, r, isa.LDDW_SECTION, 0, draw(st.sampled_from([0, 1]))),
                Instruction(0, imm=draw(st.sampled_from([0, 8, 16])))]
    return [Instruction(isa.ALU64 | isa.K | isa.MOV, 1, imm=draw(st.integers(0, 3))),
            Instruction(isa.JMP | isa.CALL, imm=LOOKUP)]


@st.composite
def helper_calls(draw):
    """A few helper calls with every argument drawn (pointers where numbers go, and back)."""
    insns = [Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=0), Instruction(isa.ST | isa.MEM | isa.DW, 10, 0, -8, 0)]
    for _ in range(draw(st.integers(1, 3))):
        insns += draw(step(1, 0).filter(lambda s: s[-1].opcode == isa.JMP | isa.CALL))
    return insns + [Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=0), Instruction(isa.JMP | isa.EXIT)]


@st.composite
def structured_programs(draw):
    length = draw(st.integers(1, 25))
    insns = [Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=0)]
    for r in range(2, 10):
        insns.append(Instruction(isa.ALU64 | isa.K | isa.MOV, r, imm=draw(immediates)))
    insns.append(Instruction(isa.ST | isa.MEM | isa.DW, 10, 0, -8, 0))
    steps = [draw(step(length, i)) for i in range(length)]
    # a compare's skip counts steps; turn it into slots (to the start of a later step, or the exit)
    starts, pc = [], len(insns)
    for s in steps:
        starts.append(pc)
        pc += len(s)
    exit_pc = pc + 1
    for i, s in enumerate(steps):
        for j, insn in enumerate(s):
            if insn.cls in (isa.JMP, isa.JMP32) and insn.op not in (isa.CALL, isa.EXIT, isa.JA) and insn.off >= 0 \
                    and not (insn.dst == 8 and insn.op == isa.JNE):
                target = starts[i + 1 + insn.off] if i + 1 + insn.off < len(steps) else exit_pc - 1
                here = starts[i] + j
                insn = Instruction(insn.opcode, insn.dst, insn.src, target - here - 1, insn.imm)
            insns.append(insn)
    insns.append(Instruction(isa.ALU64 | isa.K | isa.AND, 0, imm=0xFF))
    insns.append(Instruction(isa.JMP | isa.EXIT))
    return insns


# -- the property -------------------------------------------------------------------------

def outcome(engine, mem: bytes):
    env = StorageEnv([memoryview(FILE)], block_size=512, output_limit=256)
    buffer = bytearray(mem)
    try:
        result = engine.run(buffer, env=env)
    except BpfError as exc:
        result = type(exc).__name__
    return result, bytes(env.output), bytes(buffer)


def refused_or_agree(insns, mem: bytes) -> bool:
    """True if accepted; the assertion is that nothing else happens."""
    program = Program(insns, SECTIONS)
    try:
        verify(program, VERIFY_HELPERS)  # may call OpenCSD's helpers too: only the verdict matters
    except ProgramRefused as exc:
        assert exc.errno == 22
        return False
    try:
        verdict = verify(program, RUN_HELPERS)
    except ProgramRefused:
        return True  # calls a helper we do not run here
    interp = outcome(Interpreter(program, RUN_HELPERS, BUDGET, verdict), mem)
    jit = outcome(Jit(program, RUN_HELPERS, BUDGET, verdict), mem)
    assert interp == jit
    return True


inputs = st.binary(max_size=24)


@SETTINGS
@given(random_programs, inputs)
def test_random_slots_are_refused_or_run_alike(insns, mem):
    refused_or_agree(insns, mem)


@SETTINGS
@given(helper_calls(), inputs)
def test_helper_calls_are_refused_or_run_alike(insns, mem):
    refused_or_agree(insns, mem)


@SETTINGS
@given(structured_programs(), inputs)
def test_structured_programs_are_refused_or_run_alike(insns, mem):
    refused_or_agree(insns, mem)
