"""The JIT: conformance, edge semantics, faults, helpers, native helpers and the cache.

Where a result is not stated by hand it is the interpreter's (the reference
engine): the JIT must give the same r0 and raise the same error at the same pc.
"""

from __future__ import annotations

import errno
import re
import types

import pytest

from zcsdfs.csd import conformance, isa, jit, jit_codegen, stdlib
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.errors import (
    DeadlineExceeded,
    BpfError,
    BudgetExceeded,
    HelperFault,
    LimitExceeded,
    MemoryFault,
    ProgramRefused,
)
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret
from zcsdfs.csd.interpreter import Interpreter
from zcsdfs.csd.jit import Jit
from zcsdfs.csd.jit_codegen import Native
from zcsdfs.csd.program import Program, Section
from zcsdfs.csd.stdlib import StorageEnv
from zcsdfs.csd.verifier import verify

M64 = (1 << 64) - 1


def outcome(engine, mem=None, env=None):
    """r0, or (error type, pc), plus the input buffer afterwards."""
    buffer = None if mem is None else bytearray(mem)
    try:
        result = engine.run(buffer, env=env)
    except BpfError as exc:
        result = (type(exc), exc.pc)
    return result, buffer


def same_as_interpreter(program: Program, mem=None, helpers=None, budget=1 << 30):
    """Run ``program`` in both engines; assert they agree and return the JIT's outcome."""
    jitted = outcome(Jit(program, helpers, budget), mem)
    assert jitted == outcome(Interpreter(program, helpers, budget), mem)
    return jitted[0]


# -- the conformance suite ------------------------------------------------------------

def test_conformance_file(data_file):
    result = conformance.run_test(conformance.parse_data(data_file), "jit")
    assert result.status != conformance.FAILED, result.reason


def test_negative_conformance_file(negative_file):
    result = conformance.run_test(conformance.parse_data(negative_file), "jit")
    assert result.status != conformance.FAILED, result.reason


# -- edge semantics -----------------------------------------------------------------

EDGE_CASES = {
    # division and modulo by zero, in both widths and both signs
    "div64 by zero": ("lddw %r0, -5\nmov %r1, 0\ndiv %r0, %r1", 0),
    "mod64 by zero keeps dst": ("lddw %r0, -5\nmov %r1, 0\nmod %r0, %r1", (-5) & M64),
    "mod32 by zero zero-extends dst": ("lddw %r0, -5\nmov %r1, 0\nmod32 %r0, %r1", 0xFFFFFFFB),
    "sdiv64 by zero": ("lddw %r0, -5\nsdiv %r0, 0", 0),
    "smod32 by zero": ("lddw %r0, 0x1fffffff7\nmov32 %r1, 0\nsmod32 %r0, %r1", 0xFFFFFFF7),
    # INT_MIN / -1 and INT_MIN % -1 (undefined in C and in LLVM)
    "sdiv64 INT_MIN by -1": ("lddw %r0, 0x8000000000000000\nsdiv %r0, -1", 1 << 63),
    "smod64 INT_MIN by -1": ("lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1", 0),
    "sdiv32 INT_MIN by -1": ("mov32 %r0, 0x80000000\nsdiv32 %r0, -1", 0x80000000),
    "smod32 INT_MIN by -1": ("mov32 %r0, 0x80000000\nsmod32 %r0, -1", 0),
    # signed division truncates toward zero, the remainder takes the dividend's sign
    "sdiv64 truncates": ("mov %r0, -7\nsdiv %r0, 2", (-3) & M64),
    "smod64 sign of dividend": ("mov %r0, -7\nsmod %r0, 2", (-1) & M64),
    "smod32 negative divisor": ("mov32 %r0, 7\nsmod32 %r0, -2", 1),
    # unsigned division uses the sign-extended immediate
    "div64 by -1 immediate": ("lddw %r0, -1\ndiv %r0, -1", 1),
    # shift amounts are masked
    "lsh64 by 65": ("mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1", 2),
    "rsh32 by 33": ("mov32 %r0, 8\nmov %r1, 33\nrsh32 %r0, %r1", 4),
    "arsh32 sign": ("mov32 %r0, 0x80000000\narsh32 %r0, 4", 0xF8000000),
    "arsh64 by 127": ("lddw %r0, 0x8000000000000000\nmov %r1, 127\narsh %r0, %r1", M64),
    # 32-bit results are zero-extended
    "add32 wraps": ("lddw %r0, 0xffffffffffffffff\nadd32 %r0, 1", 0),
    "neg32": ("mov %r0, 1\nneg32 %r0", 0xFFFFFFFF),
    "mov32 imm": ("mov32 %r0, -1", 0xFFFFFFFF),
    # sign extension
    "movsx8 to 64": ("mov %r1, 0x80\nmovsx864 %r0, %r1", (-128) & M64),
    "movsx16 to 32": ("mov %r1, 0x8000\nmovsx1632 %r0, %r1", 0xFFFF8000),
    "movsx32 to 64": ("mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1", 0xFFFFFFFF80000000),
    # byte order
    "be16 truncates": ("lddw %r0, 0x1122334455667788\nbe16 %r0", 0x8877),
    "le32 truncates": ("lddw %r0, 0x1122334455667788\nle32 %r0", 0x55667788),
    "bswap64": ("lddw %r0, 0x1122334455667788\nbswap64 %r0", 0x8877665544332211),
    # JMP32 compares the low halves only; gotol takes its offset from imm
    "jmp32 ignores the high half": ("lddw %r1, 0x100000005\nmov %r0, 1\njeq32 %r1, 5, +1\nmov %r0, 2", 1),
    "jmp64 sees the high half": ("lddw %r1, 0x100000005\nmov %r0, 1\njeq %r1, 5, +1\nmov %r0, 2", 2),
    "jslt32 signed": ("mov32 %r1, -1\nmov %r0, 1\njslt32 %r1, 0, +1\nmov %r0, 2", 1),
    "jset": ("mov %r1, 6\nmov %r0, 1\njset %r1, 8, +1\nmov %r0, 2", 2),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_semantics(name):
    source, expected = EDGE_CASES[name]
    program = assemble(source + "\nexit")
    assert same_as_interpreter(program) == expected


def test_gotol_uses_imm():
    ja32 = isa.Instruction(isa.JMP32 | isa.JA, imm=1)
    program = Program([isa.Instruction(isa.ALU64 | isa.MOV, 0, imm=1), ja32,
                       isa.Instruction(isa.ALU64 | isa.MOV, 0, imm=2), isa.Instruction(isa.JMP | isa.EXIT)])
    assert same_as_interpreter(program) == 1


@pytest.mark.parametrize("offset", [0, 1, 3, 4, 6])  # aligned and misaligned targets
@pytest.mark.parametrize("width", ["32", ""])
def test_atomics_on_input_memory(offset, width):
    program = assemble(f"""
        mov %r2, 5
        lock add{width} [%r1+{offset}], %r2
        mov %r3, 0x0f
        lock fetch or{width} [%r1+{offset}], %r3
        mov %r4, %r3
        lock xchg{width} [%r1+{offset}], %r4
        mov %r0, %r4
        lock cmpxchg{width} [%r1+{offset}], %r3
        add %r0, %r3
        exit""")
    mem = bytes(range(1, 17))
    jitted = outcome(Jit(program), mem)
    assert jitted == outcome(Interpreter(program), mem)
    assert jitted[1] != bytearray(mem)


# -- memory faults ------------------------------------------------------------------

FAULTS = {
    "load past the input": ("ldxw %r0, [%r1+14]", 3),
    "load before the input": ("ldxb %r0, [%r1-1]", 3),
    "null load": ("mov %r2, 0\nldxdw %r0, [%r2]", 4),
    "store above the frame": ("stdw [%r10], 1", 3),
    "store below the frame": ("stb [%r10-513], 1", 3),
    "atomic past the input": ("mov %r2, 1\nlock add32 [%r1+16], %r2", 4),
    "huge address": ("lddw %r2, 0xfffffffffffffffe\nldxh %r0, [%r2]", 5),
}


@pytest.mark.parametrize("name", FAULTS)
def test_memory_fault(name):
    source, pc = FAULTS[name]
    program = assemble("mov %r0, 0\nmov %r9, 0\nmov %r8, 0\n" + source + "\nexit")
    assert same_as_interpreter(program, bytes(16)) == (MemoryFault, pc)


def test_fault_message_names_the_access():
    with pytest.raises(MemoryFault, match=r"insn 1: store of 4 bytes at the context\+0x10 is outside every writable"):
        Jit(assemble("mov %r0, 0\nstw [%r1+16], 7\nexit")).run(bytes(16))


def test_read_only_section_cannot_be_written():
    rodata = Section(".rodata", b"\x2a" + bytes(7))
    insns = [*isa.lddw(1, 0, isa.LDDW_SECTION), *assemble("ldxb %r0, [%r1]\nstb [%r1], 1\nexit").insns]
    program = Program(insns, sections=[rodata])
    assert same_as_interpreter(program) == (MemoryFault, 3)


def test_writable_section_is_fresh_each_run():
    data = Section(".data", (41).to_bytes(8, "little"), writable=True)
    insns = [*isa.lddw(1, 0, isa.LDDW_SECTION),
             *assemble("ldxdw %r0, [%r1]\nadd %r0, 1\nstxdw [%r1], %r0\nexit").insns]
    engine = Jit(Program(insns, sections=[data]), verdict=None)
    assert [engine.run(), engine.run()] == [42, 42]


def test_section_accesses_proven_by_the_verifier_run_unchecked():
    data = Section(".bss", bytes(64), writable=True)
    insns = [*isa.lddw(1, 0, isa.LDDW_SECTION),
             *assemble("stdw [%r1+56], 9\nldxdw %r0, [%r1+56]\nexit").insns]
    program = Program(insns, sections=[data])
    verdict = verify(program)
    assert not verdict.checked
    assert Jit(program, verdict=verdict).run() == 9


def test_access_may_not_straddle_two_frames():
    # The callee writes through a pointer to its caller's frame, then one
    # whose last bytes spill over into the caller's from the callee's own.
    program = assemble("""
        mov %r1, %r10
        sub %r1, 8
        call local f
        ldxdw %r0, [%r10-8]
        exit
    f:
        stdw [%r1], 7
        stdw [%r10-4], 1
        exit""")
    assert same_as_interpreter(program) == (MemoryFault, 6)


def test_input_writes_are_visible_to_the_caller_and_bytes_are_copied():
    program = assemble("stw [%r1], 0x01020304\nmov %r0, %r2\nexit")
    buffer = bytearray(8)
    assert Jit(program).run(buffer) == 8
    assert buffer[:4] == b"\x04\x03\x02\x01"
    frozen = bytes(8)
    Jit(program).run(frozen)
    assert frozen == bytes(8)


def test_empty_input_is_not_null():
    program = assemble("mov %r0, 1\njne %r1, 0, +1\nmov %r0, 2\nexit")
    assert same_as_interpreter(program, b"") == 1
    assert same_as_interpreter(program) == 2


# -- budget and call depth ---------------------------------------------------------

def test_infinite_loop_exhausts_the_budget():
    program = assemble("mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit")
    assert same_as_interpreter(program, budget=10_000) == (BudgetExceeded, 1)


@pytest.mark.parametrize("budget", [1, 2, 21, 22, 23])
def test_budget_boundary_matches_the_interpreter(budget):
    # 1 + 10 * 2 + 1 = 22 instructions run.
    program = assemble("mov %r0, 10\nloop:\nsub %r0, 1\njne %r0, 0, loop\nexit")
    result = same_as_interpreter(program, budget=budget)
    assert result == (0 if budget >= 22 else (BudgetExceeded, result[1]))


@pytest.mark.parametrize("budget", [9, 16, 17, 18, 20, 100])
def test_budget_slices_are_exact(monkeypatch, budget):
    """The interpreter's counter holds a slice of the budget and the JIT reads
    the clock every few instructions; the count stays exact (a slice of 7
    runs out inside blocks, between them and in callees)."""
    from zcsdfs.csd import interpreter

    monkeypatch.setattr(interpreter, "INTERP_SLICE", 7)
    monkeypatch.setattr(jit, "JIT_CHECK", 7)
    program = assemble("mov %r0, 0\nmov %r1, 5\nloop:\nadd %r0, 2\nsub %r1, 1\njne %r1, 0, loop\nexit")
    result = same_as_interpreter(program, budget=budget)
    assert result == (10 if budget >= 18 else (BudgetExceeded, result[1]))
    for engine in (Interpreter(program, None, budget), Jit(program, None, budget)):
        env = types.SimpleNamespace(instructions=0)
        if budget >= 18:
            engine.run(env=env)
            assert env.instructions == 18
        else:
            with pytest.raises(BudgetExceeded):
                engine.run(env=env)
            assert env.instructions == budget  # all of it, slices in reserve included
    calls = assemble("mov %r6, 0\nloop:\ncall local f\nadd %r6, 1\njne %r6, 50, loop\nmov %r0, %r6\nexit\n"
                     "f:\nmov %r0, 1\nexit")
    assert same_as_interpreter(calls, budget=50 * 5 + 3) == 50
    assert same_as_interpreter(calls, budget=50 * 5 + 2)[0] is BudgetExceeded


def test_deadline_in_both_engines():
    program = assemble("mov %r0, 0\nlddw %r1, 0x7fffffffffff\nloop:\nsub %r1, 1\njne %r1, 0, loop\nexit")
    for engine in (Interpreter(program, None, 1 << 60, timeout=0.05), Jit(program, None, 1 << 60, timeout=0.05)):
        with pytest.raises(DeadlineExceeded, match="time limit of 0.05 s") as info:
            engine.run()
        assert info.value.pc == 3 and info.value.errno == errno.ETIME
        with pytest.raises(DeadlineExceeded):
            engine.run(budget=1 << 60, timeout=0.01)  # per run, too


def test_budget_is_charged_across_calls():
    program = assemble("mov %r6, 0\nloop:\ncall local f\nadd %r6, 1\njlt %r6, 100, loop\nmov %r0, %r6\nexit\n"
                       "f:\nmov %r0, 1\nexit")
    assert same_as_interpreter(program, budget=100 * 5 + 3) == 100
    assert same_as_interpreter(program, budget=100 * 5 + 2)[0] is BudgetExceeded


def test_call_depth_beyond_eight_frames():
    # Recursion (the verifier forbids it; the engines still must stop it).
    recurse = "mov %r0, %r1\njeq %r1, 0, +3\nsub %r1, 1\ncall local f\nadd %r0, 1\nexit"
    seven = assemble("mov %r1, 6\ncall local f\nexit\nf:\n" + recurse)
    eight = assemble("mov %r1, 7\ncall local f\nexit\nf:\n" + recurse)
    assert same_as_interpreter(seven) == 6
    assert same_as_interpreter(eight) == (LimitExceeded, 6)


def test_callee_registers_r6_to_r9_are_preserved_and_frames_are_separate():
    program = assemble("""
        mov %r6, 6
        stdw [%r10-8], 100
        call local f
        ldxdw %r1, [%r10-8]
        add %r0, %r1
        add %r0, %r6
        exit
    f:
        mov %r6, 1000
        stdw [%r10-8], 10
        ldxdw %r0, [%r10-8]
        exit""")
    assert same_as_interpreter(program) == 116


# -- helpers ---------------------------------------------------------------------------

def _helpers(*helpers) -> HelperSet:
    return HelperSet(helpers)


def test_python_helper_gets_the_registers_and_memory():
    seen = []

    def peek(vm, r1, r2, r3, r4, r5):
        seen.append((vm.read(r1, 4), r2, r3, r4, r5, vm.env))
        vm.write(r1, b"\xff")
        return r2 * 2

    helpers = _helpers(Helper(1, "peek", (Arg.PTR_TO_MEM, Arg.SIZE, Arg.SCALAR, Arg.SCALAR, Arg.SCALAR),
                              Ret.INTEGER, peek))
    program = assemble("mov %r3, 3\nmov %r4, 4\nmov %r5, 5\nstw [%r10-4], 0x04030201\n"
                       "mov %r1, %r10\nsub %r1, 4\nmov %r2, 4\ncall 1\nldxb %r1, [%r10-4]\nadd %r0, %r1\nexit")
    assert Jit(program, helpers).run(env="the env") == 8 + 0xFF
    assert seen == [(b"\x01\x02\x03\x04", 4, 3, 4, 5, "the env")]


def test_helper_error_stops_the_run_at_the_call():
    def refuse(vm, *regs):
        raise HelperFault("no thanks")

    helpers = _helpers(Helper(1, "refuse", (), Ret.INTEGER, refuse))
    program = assemble("mov %r0, 0\ncall 1\nexit")
    with pytest.raises(HelperFault, match="insn 1: no thanks"):
        Jit(program, helpers).run()


def test_helper_python_exception_propagates():
    def broken(vm, *regs):
        raise ZeroDivisionError("bug in a helper")

    program = assemble("call 1\nexit")
    with pytest.raises(ZeroDivisionError, match="bug in a helper"):
        Jit(program, _helpers(Helper(1, "broken", (), Ret.INTEGER, broken))).run()


def test_helper_bad_pointer_is_a_memory_fault():
    def peek(vm, r1, *regs):
        return vm.read(r1, 8)[0]

    helpers = _helpers(Helper(1, "peek", (Arg.ANYTHING,), Ret.INTEGER, peek))
    program = assemble("mov %r1, %r10\nsub %r1, 4\ncall 1\nexit")
    assert same_as_interpreter(program, helpers=helpers) == (MemoryFault, 2)


def test_stop_ends_the_run_from_a_nested_call():
    helpers = conformance.suite_helpers()
    program = assemble("call local f\nmov %r0, 1\nexit\nf:\nmov %r1, 0\ncall 5\nmov %r0, 2\nexit")
    assert same_as_interpreter(program, helpers=helpers) == 0


def test_mapped_buffer_is_addressable_until_the_run_ends():
    table = bytearray(b"\x05\x06\x07\x08")

    def mapping(vm, *regs):
        return vm.map(table, writable=True)

    helpers = _helpers(Helper(1, "map", (), Ret.INTEGER, mapping))
    program = assemble("call 1\nldxb %r1, [%r0+3]\nstb [%r0], 9\nldxb %r2, [%r0+4]\nexit")
    assert same_as_interpreter(program, helpers=helpers) == (MemoryFault, 3)
    assert table[0] == 9


@pytest.mark.parametrize("size, expected", [(16, 0x0807060504030201), (4, None)])
def test_helper_returned_memory_must_cover_its_ret_size(size, expected):
    # The verifier proves the load below from ret_size alone, so the JIT runs
    # it unchecked: a helper that maps less than it promised is stopped first.
    buffer = bytearray(8) + bytes(range(1, 9))

    def table(vm, *regs):
        return vm.map(buffer[:size])

    helpers = _helpers(Helper(1, "table", (), Ret.PTR_TO_MEM_OR_NULL, table, ret_size=16))
    program = assemble("call 1\njeq %r0, 0, +1\nldxdw %r0, [%r0+8]\nexit")
    verdict = verify(program, helpers)
    assert not verdict.checked
    engine = Jit(program, helpers, verdict=verdict)
    if expected is not None:
        assert engine.run() == expected
        return
    with pytest.raises(HelperFault, match="not a pointer to 16 readable bytes") as error:
        engine.run()
    assert error.value.pc == 0


def test_unknown_helper_is_refused():
    with pytest.raises(ProgramRefused, match="unknown helper 7"):
        Jit(assemble("call 7\nexit"))


# -- native helpers -----------------------------------------------------------------

def _read_and_return(chunk: int) -> Program:
    """Read the bound file in ``chunk``-byte pieces and return them all as output."""
    return assemble(f"""
        mov %r6, 0
    loop:
        mov %r1, %r6
        mov %r2, %r10
        sub %r2, {chunk}
        mov %r3, {chunk}
        call {stdlib.READ}
        jeq %r0, 0, done
        mov %r7, %r0
        add %r6, %r0
        mov %r1, %r10
        sub %r1, {chunk}
        mov %r2, %r7
        call {stdlib.RETURN_DATA}
        ja loop
    done:
        call {stdlib.FILE_SIZE}
        mov %r7, %r0
        call {stdlib.BLOCK_SIZE}
        add %r0, %r7
        add %r0, %r6
        exit""")


def _file(data: bytes, cuts: list[int], **kwargs) -> StorageEnv:
    view = memoryview(data)
    return StorageEnv([view[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])], block_size=512, **kwargs)


@pytest.mark.parametrize("chunk", [1, 7, 64, 500])
def test_storage_helpers_are_native_and_agree_with_python(chunk):
    data = bytes(range(256)) * 5
    program = _read_and_return(chunk)
    helpers = stdlib.storage_helpers()
    engine = Jit(program, helpers)
    assert set(engine.code.natives) == {"zcsd_read", "zcsd_return_data", "zcsd_file_size", "zcsd_block_size"}
    cuts = [0, 3, 300, 300, 1000]
    jit_env, interp_env = _file(data, cuts, file_size=1200), _file(data, cuts, file_size=1200)
    assert engine.run(env=jit_env) == Interpreter(program, helpers).run(env=interp_env) == 1200 + 512 + 1200
    assert jit_env.output == interp_env.output == data[:1200]
    assert jit_env.bytes_read == interp_env.bytes_read == 1200


def test_native_output_limit_raises_like_python():
    program = _read_and_return(64)
    helpers = stdlib.storage_helpers()
    env = _file(bytes(1000), [100], output_limit=300)
    with pytest.raises(LimitExceeded) as error:
        Jit(program, helpers).run(env=env)
    assert len(env.output) == 256  # four whole chunks made it out before the fifth was refused
    assert error.value.pc == 12


def test_native_helper_without_env_falls_back_to_python_error():
    with pytest.raises(HelperFault, match="without a StorageEnv") as error:
        Jit(_read_and_return(8), stdlib.storage_helpers()).run()
    assert error.value.pc == 5


def test_native_read_into_a_bad_buffer_faults_like_python():
    program = assemble(f"mov %r1, 0\nmov %r2, %r10\nsub %r2, 8\nmov %r3, 16\ncall {stdlib.READ}\nexit")
    helpers = stdlib.storage_helpers()
    env = _file(bytes(100), [])
    assert outcome(Jit(program, helpers), env=env)[0] == (MemoryFault, 4)
    assert outcome(Interpreter(program, helpers), env=_file(bytes(100), []))[0] == (MemoryFault, 4)


@pytest.mark.parametrize("length, expected", [(8, 8), (9, (MemoryFault, 8)), (M64, (MemoryFault, 8))])
def test_native_read_into_a_caller_frame_checks_the_whole_length(length, expected):
    program = assemble(f"""
        mov %r1, %r10
        sub %r1, 8
        call local f
        exit
    f:
        mov %r2, %r1
        mov %r1, 0
        lddw %r3, {length:#x}
        call {stdlib.READ}
        exit""")
    helpers = stdlib.storage_helpers()
    assert outcome(Jit(program, helpers), env=_file(bytes(100), []))[0] == expected
    assert outcome(Interpreter(program, helpers), env=_file(bytes(100), []))[0] == expected


def test_native_mechanism_takes_any_registered_form():
    def emit(fn, pc, number, state, args):
        return fn.b.add(fn.b.mul(args[0], args[1]), state)

    def prepare(run):
        return run.env

    jit_codegen.register_native("test_multiply_add", Native(emit=emit, prepare=prepare, finish=lambda run: None))
    helpers = _helpers(Helper(40, "multiply_add", (Arg.SCALAR, Arg.SCALAR), Ret.INTEGER,
                              lambda vm, a, b, *rest: a * b + vm.env, native="test_multiply_add"))
    program = assemble("mov %r1, 6\nmov %r2, 7\ncall 40\nexit")
    engine = Jit(program, helpers)
    assert engine.code.natives == ("test_multiply_add",)
    assert engine.run(env=100) == Interpreter(program, helpers).run(env=100) == 142


# -- the cache ---------------------------------------------------------------------

def test_second_jit_of_the_same_program_compiles_nothing():
    program = assemble("mov %r0, 123456789\nexit")
    first = Jit(program)
    compilations = jit.compiler().compilations
    second = Jit(Program(program.insns))  # equal content, another object
    assert (first.cached, second.cached) == (False, True)
    assert jit.compiler().compilations == compilations
    assert second.code is first.code
    assert second.run() == 123456789


def test_cache_keeps_checked_and_proven_versions_apart():
    program = assemble("mov %r0, 0\nldxb %r0, [%r1]\nexit")
    plain = Jit(program)
    proven = Jit(program, verdict=verify(program))
    assert proven.code is not plain.code
    assert proven.run(b"\x07") == plain.run(b"\x07") == 7


def test_cache_keeps_native_and_python_forms_apart():
    program = assemble(f"call {stdlib.FILE_SIZE}\nexit")
    python_only = HelperSet([Helper(stdlib.FILE_SIZE, "file_size", (), Ret.INTEGER, lambda vm, *regs: 5)])
    native = Jit(program, stdlib.storage_helpers())
    python = Jit(program, python_only)
    assert (native.code.natives, python.code.natives) == (("zcsd_file_size",), ())
    assert (native.run(env=_file(bytes(9), [])), python.run()) == (9, 5)


# -- messages -----------------------------------------------------------------------------

HOST_ADDRESS = re.compile(r"0x[0-9a-f]{9,}")  # the JIT's regions live far above 2^32


@pytest.mark.parametrize("source, mem, where", [
    ("ldxdw %r0, [%r1+4096]\nexit", bytes(16), "at the context+0x1000 "),
    ("mov %r2, %r10\nadd %r2, 8\nldxdw %r0, [%r2]\nexit", None, "at the stack+0x1008 "),
    ("lddw %r2, 0x123456789\nldxdw %r0, [%r2]\nexit", None, "at an address outside every region "),
    ("mov %r2, %r1\nsub %r2, 64\nstdw [%r2], 1\nmov %r0, 0\nexit", bytes(8), "at the context-0x40 "),
])
def test_fault_messages_name_no_host_address(source, mem, where):
    program = assemble(source)
    with pytest.raises(MemoryFault) as info:
        Jit(program).run(mem)  # unverified: every access checked at run time
    assert where in str(info.value)
    assert not HOST_ADDRESS.search(str(info.value))


def test_helper_fault_messages_name_no_host_address():
    def bad_pointer(vm, r1, *_):
        return r1 + 4096

    helpers = HelperSet((Helper(1, "bad", (Arg.ANYTHING,), Ret.PTR_TO_MEM, bad_pointer, ret_size=8),))
    program = assemble("mov %r1, %r10\ncall 1\nldxdw %r0, [%r0]\nexit")
    with pytest.raises(HelperFault, match="returned the stack") as info:
        Jit(program, helpers, verdict=verify(program, helpers)).run()
    assert not HOST_ADDRESS.search(str(info.value))
