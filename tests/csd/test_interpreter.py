"""The interpreter's semantics at the edges (RFC 9669), its faults and its budget."""

from __future__ import annotations

import errno

import pytest

from zcsdfs.csd import engine, memory
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.errors import (
    BudgetExceeded,
    HelperFault,
    LimitExceeded,
    MemoryFault,
    ProgramRefused,
    UnsupportedInstruction,
)
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret
from zcsdfs.csd.interpreter import Interpreter
from zcsdfs.csd.program import Program, Section

M64 = 2**64 - 1
INT64_MIN = 2**63
INT32_MIN = 2**31


def run(source: str, mem=None, *, helpers=None, budget=1 << 20, sections=(), env=None) -> int:
    program = Program(assemble(source).insns, sections=sections)
    return Interpreter(program, helpers, budget).run(mem, env=env)


@pytest.mark.parametrize("source, expected", [
    # Division and modulo by zero (RFC 9669 section 4.1).
    ("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0),
    ("mov %r0, 7\nmov %r1, 0\ndiv32 %r0, %r1\nexit", 0),
    ("mov %r0, 7\ndiv %r0, 0\nexit", 0),
    ("mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit", 7),
    ("lddw %r0, 0x100000007\nmov %r1, 0\nmod32 %r0, %r1\nexit", 7),  # leaves dst, zero-extended
    ("lddw %r0, 0x100000007\nmod32 %r0, 0\nexit", 7),
    ("lddw %r0, 0x100000007\nmov %r1, 0\nmod %r0, %r1\nexit", 0x100000007),
    ("mov %r0, 7\nmov %r1, 0\nsdiv %r0, %r1\nexit", 0),
    ("mov %r0, -7\nmov %r1, 0\nsmod %r0, %r1\nexit", M64 - 6),
    ("mov32 %r0, -7\nmov %r1, 0\nsmod32 %r0, %r1\nexit", 2**32 - 7),
    # 32-bit division ignores the high halves.
    ("lddw %r0, 0x100000008\nlddw %r1, 0x100000002\ndiv32 %r0, %r1\nexit", 4),
    # Signed division truncates toward zero; remainder takes the dividend's sign.
    ("mov %r0, -7\nsdiv %r0, 2\nexit", M64 - 2),
    ("mov %r0, 7\nsdiv %r0, -2\nexit", M64 - 2),
    ("mov %r0, -7\nsmod %r0, 2\nexit", M64),
    ("mov %r0, 7\nsmod %r0, -2\nexit", 1),
    ("mov32 %r0, -7\nsdiv32 %r0, 2\nexit", 2**32 - 3),
    ("mov32 %r0, 7\nsmod32 %r0, -2\nexit", 1),
    # INT_MIN / -1 and INT_MIN % -1.
    ("lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit", INT64_MIN),
    ("lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit", INT64_MIN),
    ("lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", 0),
    ("mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit", INT32_MIN),
    ("mov32 %r0, 0x80000000\nmov32 %r1, -1\nsmod32 %r0, %r1\nexit", 0),
    ("lddw %r0, 0x8000000000000000\nneg %r0\nexit", INT64_MIN),
    ("mov32 %r0, 0x80000000\nneg32 %r0\nexit", INT32_MIN),
    # Shift amounts are masked.
    ("mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", 2),
    ("mov %r0, 1\nmov %r1, 33\nlsh32 %r0, %r1\nexit", 2),
    ("mov %r0, 1\nlsh %r0, 63\nexit", INT64_MIN),
    ("mov %r0, -1\nrsh %r0, 60\nexit", 0xF),
    ("mov %r0, -1\nrsh32 %r0, 28\nexit", 0xF),
    ("mov %r0, -16\narsh %r0, 2\nexit", M64 - 3),
    ("mov32 %r0, -16\narsh32 %r0, 2\nexit", 2**32 - 4),
    ("mov %r0, -16\nmov %r1, 66\narsh %r0, %r1\nexit", M64 - 3),
    # 32-bit results are zero-extended; 64-bit immediates are sign-extended.
    ("mov %r0, -1\nadd32 %r0, 1\nexit", 0),
    ("mov %r0, -1\nmov32 %r0, %r0\nexit", 2**32 - 1),
    ("mov %r0, -1\nand32 %r0, -1\nexit", 2**32 - 1),
    ("mov %r0, -1\nexit", M64),
    ("mov32 %r0, -1\nexit", 2**32 - 1),
    ("mov %r0, 0\nor %r0, -2\nexit", M64 - 1),
    ("mov %r0, 3\nmul32 %r0, -1\nexit", 2**32 - 3),
    ("lddw %r0, 0xffffffffffffffff\nmul %r0, %r0\nexit", 1),
    ("mov %r0, 0\nsub %r0, 1\nexit", M64),
    ("mov %r0, 5\nxor %r0, -1\nexit", M64 - 5),
    # Sign-extending moves and loads.
    ("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", M64 - 0x7F),
    ("mov %r1, 0x80\nmovsx832 %r0, %r1\nexit", 0xFFFFFF80),
    ("mov %r1, 0x8000\nmovsx1664 %r0, %r1\nexit", M64 - 0x7FFF),
    ("mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit", 0xFFFF8000),
    ("mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", M64 - 0x7FFFFFFF),
    ("mov %r1, 0x7f\nmovsx864 %r0, %r1\nexit", 0x7F),
    ("stb [%r10-1], 0x80\nldxsb %r0, [%r10-1]\nexit", M64 - 0x7F),
    ("sth [%r10-2], -2\nldxsh %r0, [%r10-2]\nexit", M64 - 1),
    ("stw [%r10-4], 0x7fffffff\nldxsw %r0, [%r10-4]\nexit", 0x7FFFFFFF),
    # Byte order.
    ("lddw %r0, 0x1122334455667788\nbe16 %r0\nexit", 0x8877),
    ("lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", 0x88776655),
    ("lddw %r0, 0x1122334455667788\nbe64 %r0\nexit", 0x8877665544332211),
    ("lddw %r0, 0x1122334455667788\nle16 %r0\nexit", 0x7788),
    ("lddw %r0, 0x1122334455667788\nle32 %r0\nexit", 0x55667788),
    ("lddw %r0, 0x1122334455667788\nle64 %r0\nexit", 0x1122334455667788),
    ("lddw %r0, 0x1122334455667788\nbswap16 %r0\nexit", 0x8877),
    ("lddw %r0, 0x1122334455667788\nbswap32 %r0\nexit", 0x88776655),
    ("lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit", 0x8877665544332211),
    # Jumps: JMP32 compares the low halves only; signed forms see the sign bit.
    ("lddw %r1, 0x100000002\nmov %r0, 0\njeq32 %r1, 2, +1\nexit\nmov %r0, 1\nexit", 1),
    ("lddw %r1, 0x100000002\nmov %r0, 0\njeq %r1, 2, +1\nexit\nmov %r0, 1\nexit", 0),
    ("mov %r1, -1\nmov %r0, 0\njsgt %r1, 0, +1\nexit\nmov %r0, 1\nexit", 0),
    ("mov %r1, -1\nmov %r0, 0\njgt %r1, 0, +1\nexit\nmov %r0, 1\nexit", 1),
    ("mov %r1, -1\nmov %r2, -2\nmov %r0, 0\njslt %r2, %r1, +1\nexit\nmov %r0, 1\nexit", 1),
    ("mov32 %r1, 0x80000000\nmov %r0, 0\njslt32 %r1, 0, +1\nexit\nmov %r0, 1\nexit", 1),
    ("mov32 %r1, 0x80000000\nmov %r0, 0\njslt %r1, 0, +1\nexit\nmov %r0, 1\nexit", 0),
    ("mov %r1, 6\nmov %r0, 0\njset %r1, 4, +1\nexit\nmov %r0, 1\nexit", 1),
    ("lddw %r1, 0x100000000\nmov %r0, 0\njset32 %r1, -1, +1\nexit\nmov %r0, 1\nexit", 0),
    ("mov %r0, 1\nja32 +1\nmov %r0, 2\nexit", 1),
])
def test_semantics(source, expected):
    assert run(source) == expected


@pytest.mark.parametrize("op", ["add", "or", "and", "xor", "xchg"])
@pytest.mark.parametrize("width", ["", "32"])
def test_atomics_with_fetch(op, width):
    size, mask = ("dw", M64) if width == "" else ("w", 2**32 - 1)
    fetch = "" if op == "xchg" else "fetch "
    source = f"""
        lddw %r2, 0xffffffff00000006
        stx{size} [%r10-8], %r2
        lddw %r1, 0x7700000003
        lock {fetch}{op}{width} [%r10-8], %r1
        ldx{size} %r0, [%r10-8]
        lsh %r0, 32
        or %r0, %r1
        exit
    """
    old, operand = 0xFFFFFFFF00000006 & mask, 0x7700000003 & mask
    new = operand if op == "xchg" else _apply(op, old, operand) & mask
    # r0 = (new memory value << 32) | r1, and the fetch left the old value in r1.
    assert run(source) == ((new << 32) | old) & M64


def _apply(op, a, b):
    return {"add": a + b, "or": a | b, "and": a & b, "xor": a ^ b}[op]


def test_atomic_without_fetch_leaves_the_source_register():
    assert run("stdw [%r10-8], 1\nmov %r1, 2\nlock add [%r10-8], %r1\nmov %r0, %r1\nexit") == 2


@pytest.mark.parametrize("width, memory_value, r0, expect_swap", [
    ("", 0x1122334455667788, 0x1122334455667788, True),
    ("", 0x1122334455667788, 0x1122334455667789, False),
    ("32", 0x55667788, 0xAA00000055667788, True),  # only the low 32 bits of r0 compare
    ("32", 0x55667788, 0x55667789, False),
])
def test_cmpxchg(width, memory_value, r0, expect_swap):
    size = "dw" if width == "" else "w"
    source = f"""
        lddw %r2, {memory_value:#x}
        stx{size} [%r10-8], %r2
        lddw %r0, {r0:#x}
        mov %r1, 0x42
        lock cmpxchg{width} [%r10-8], %r1
        ldx{size} %r3, [%r10-8]
        lsh %r3, 8
        xor %r0, %r3
        exit
    """
    now = 0x42 if expect_swap else memory_value
    assert run(source) == (memory_value ^ (now << 8)) & M64


def test_context_writes_reach_the_callers_buffer():
    buf = bytearray(8)
    source = "stw [%r1+0], 0x11223344\nmov %r2, 0x55\nlock add32 [%r1+4], %r2\nmov %r0, 0\nexit"
    assert run(source, buf) == 0
    assert buf == bytes.fromhex("4433221155000000")
    view_target = bytearray(8)
    run(source, memoryview(view_target))
    assert view_target == buf


def test_immutable_context_is_copied():
    data = bytes(8)
    assert run("stb [%r1+0], 1\nldxb %r0, [%r1+0]\nexit", data) == 1
    assert data == bytes(8)


def test_context_registers():
    assert run("mov %r0, %r2\nexit", b"abc") == 3
    assert run("mov %r0, %r1\nor %r0, %r2\nexit") == 0  # no input: r1 = r2 = 0


@pytest.mark.parametrize("source, pc, kind", [
    ("ldxw %r0, [%r1+6]\nexit", 0, "load of 4 bytes"),            # crosses the end of the context
    ("ldxb %r0, [%r1+8]\nexit", 0, "load of 1 bytes"),
    ("ldxb %r0, [%r1-1]\nexit", 0, "load of 1 bytes"),             # below the context
    ("stdw [%r1+1], 0\nexit", 0, "store of 8 bytes"),
    ("mov %r2, 1\nlock add [%r1+4], %r2\nexit", 1, "atomic of 8 bytes"),
    ("ldxdw %r0, [%r10+0]\nexit", 0, "load of 8 bytes"),            # above the frame
    ("stb [%r10-513], 1\nexit", 0, "store of 1 bytes"),             # below the frame
    ("mov %r1, 0\nldxb %r0, [%r1+0]\nexit", 1, "load of 1 bytes"),  # null
    ("lddw %r1, 0xffffffffffffffff\nldxh %r0, [%r1+0]\nexit", 2, "load of 2 bytes"),
])
def test_out_of_bounds_is_a_memory_fault(source, pc, kind):
    with pytest.raises(MemoryFault) as info:
        run(source, bytearray(8))
    assert info.value.errno == errno.EFAULT
    assert info.value.pc == pc
    assert kind in str(info.value)


def test_fault_names_the_instruction_and_address():
    with pytest.raises(MemoryFault) as info:
        run("mov %r0, 0\nmov %r0, 0\nldxw %r0, [%r1+8]\nexit", bytearray(8))
    assert info.value.pc == 2
    assert f"{memory.region_base(memory.CONTEXT_REGION) + 8:#x}" in str(info.value)


def test_sections_read_only_and_writable():
    rodata = Section(".rodata", b"\x05\x00\x00\x00")
    data = Section(".data", b"\x07\x00\x00\x00", writable=True)
    read = "lddw %r1, section(0)+0\nldxw %r0, [%r1+0]\nexit"
    assert run(read, sections=[rodata]) == 5
    with pytest.raises(MemoryFault, match="writable"):
        run("lddw %r1, section(0)+0\nstw [%r1+0], 1\nexit", sections=[rodata])
    bump = "lddw %r1, section(0)+0\nldxw %r0, [%r1+0]\nadd %r0, 1\nstxw [%r1+0], %r0\nexit"
    interp = Interpreter(Program(assemble(bump).insns, sections=[data]))
    assert interp.run() == 8
    assert interp.run() == 8  # each run starts from a fresh copy


def test_lddw_to_a_missing_section_is_refused():
    with pytest.raises(ProgramRefused, match="section 1"):
        run("lddw %r1, section(1)+0\nmov %r0, 0\nexit", sections=[Section(".rodata", b"x")])


def test_local_calls_preserve_callee_saved_registers_and_frames():
    source = """
        mov %r6, 6
        stdw [%r10-8], 41
        mov %r1, 1
        call local f
        ldxdw %r2, [%r10-8]
        add %r0, %r2
        add %r0, %r6
        exit
        f:
        stdw [%r10-8], 1000
        mov %r6, 100
        mov %r0, %r1
        exit
    """
    assert run(source) == 1 + 41 + 6


def test_callee_can_use_the_callers_stack_through_a_pointer():
    source = """
        stdw [%r10-8], 5
        mov %r1, %r10
        add %r1, -8
        call local f
        ldxdw %r0, [%r10-8]
        exit
        f:
        mov %r2, 7
        stxdw [%r1+0], %r2
        mov %r0, 0
        exit
    """
    assert run(source) == 7


def recursion(depth: int) -> str:
    """A program that nests ``depth`` frames (the entry counts as one); returns depth - 2."""
    return f"""
        mov %r1, {depth - 2}
        call local f
        exit
        f:
        mov %r0, 0
        jeq %r1, 0, +3
        sub %r1, 1
        call local f
        add %r0, 1
        exit
    """


def test_call_depth_limit():
    assert run(recursion(memory.MAX_FRAMES)) == memory.MAX_FRAMES - 2
    with pytest.raises(LimitExceeded) as info:
        run(recursion(memory.MAX_FRAMES + 1))
    assert info.value.errno == errno.E2BIG
    assert info.value.pc == 6  # the call in f that would open the ninth frame


def test_budget_stops_an_infinite_loop():
    with pytest.raises(BudgetExceeded) as info:
        run("mov %r0, 0\nja -1\nexit", budget=10_000)
    assert info.value.errno == errno.ETIME
    assert info.value.pc == 1


def test_budget_is_exact():
    source = "mov %r0, 0\nadd %r0, 1\njlt %r0, 10, -2\nexit"  # 1 + 10 * 2 + 1 = 22 instructions
    assert run(source, budget=22) == 10
    with pytest.raises(BudgetExceeded):
        run(source, budget=21)


def test_budget_counts_callee_instructions():
    source = "call local f\nexit\nf:\nmov %r0, 1\nexit"  # 4 instructions
    assert run(source, budget=4) == 1
    with pytest.raises(BudgetExceeded):
        run(source, budget=3)


def _helpers(*helpers: Helper) -> HelperSet:
    return HelperSet(helpers)


def test_helpers_see_arguments_memory_and_env():
    seen = {}

    def peek(vm, r1, r2, r3, r4, r5):
        seen["args"] = (r2, r3, r4, r5)
        seen["env"] = vm.env
        vm.write(r1, b"\x2a")
        return len(vm.read(r1, r2)) - 1  # negative for r2 = 0 is masked to 64 bits

    helpers = _helpers(Helper(40, "peek", (Arg.PTR_TO_MEM, Arg.SIZE), Ret.INTEGER, peek))
    source = "mov %r2, 4\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 40\nldxb %r1, [%r1+0]\nadd %r0, %r1\nexit"
    ctx = bytearray(4)
    assert run(source, ctx, helpers=helpers, env="ENV") == 3 + 42
    assert seen == {"args": (4, 3, 4, 5), "env": "ENV"}
    assert run("mov %r2, 0\ncall 40\nexit", bytearray(4), helpers=helpers) == M64


def test_helper_can_map_a_region_and_stop_the_run():
    table = bytearray(b"\x09\x08")

    def lookup(vm, *regs):
        return vm.map(table, writable=True)

    def stop(vm, r1, *regs):
        vm.stop(r1)
        return 0

    helpers = _helpers(Helper(41, "lookup", (), Ret.INTEGER, lookup),
                       Helper(42, "stop", (Arg.SCALAR,), Ret.INTEGER, stop))
    source = "call 41\nldxb %r1, [%r0+1]\nstb [%r0+0], 7\ncall 42\nmov %r0, 99\nexit"
    assert run(source, helpers=helpers) == 8
    assert table == b"\x07\x08"


def test_vm_checks_helper_accesses():
    def bad(vm, r1, *regs):
        return len(vm.read(r1, 100))

    helpers = _helpers(Helper(43, "bad", (Arg.ANYTHING,), Ret.INTEGER, bad))
    with pytest.raises(MemoryFault) as info:
        run("mov %r0, 0\ncall 43\nexit", bytearray(8), helpers=helpers)
    assert info.value.pc == 1  # the call that made the helper fault


def test_helper_errors_stop_the_run_and_name_the_call():
    def refuse(vm, *regs):
        raise HelperFault("no such block")

    helpers = _helpers(Helper(44, "refuse", (), Ret.INTEGER, refuse))
    with pytest.raises(HelperFault) as info:
        run("mov %r0, 0\ncall 44\nexit", helpers=helpers)
    assert info.value.pc == 1
    assert "no such block" in str(info.value)


def test_a_bug_in_a_helper_is_not_reported_as_a_memory_fault():
    def buggy(vm, *regs):
        return [][1]

    helpers = _helpers(Helper(45, "buggy", (), Ret.INTEGER, buggy))
    with pytest.raises(IndexError):
        run("call 45\nexit", helpers=helpers)


def test_unknown_helper_is_refused():
    with pytest.raises(ProgramRefused, match="unknown helper 7"):
        run("call 7\nexit")


@pytest.mark.parametrize("code", [
    bytes.fromhex("2000000000000000" "9500000000000000"),  # ldabsw
    bytes.fromhex("4000000000000000" "9500000000000000"),  # ldindw
    bytes.fromhex("8d02000000000000" "9500000000000000"),  # callx
])
def test_out_of_group_instructions_are_unsupported(code):
    with pytest.raises(UnsupportedInstruction) as info:
        Interpreter(Program.from_bytes(code))
    assert info.value.pc == 0


@pytest.mark.parametrize("source, words", [
    ("mov %r0, 0", "falls off"),
    ("mov %r0, 0\njeq %r0, 0, -2", "falls off"),
    ("ja +5\nexit", "not the start of an instruction"),
    ("lddw %r0, 1\nja -2\nexit", "not the start of an instruction"),
])
def test_malformed_control_flow_is_refused(source, words):
    with pytest.raises(ProgramRefused, match=words):
        Interpreter(assemble(source))


def test_same_program_with_different_helpers():
    def one(vm, *regs):
        return 1

    def two(vm, *regs):
        return 2

    program = assemble("call 46\nexit")
    a = Interpreter(program, _helpers(Helper(46, "h", (), Ret.INTEGER, one)))
    b = Interpreter(program, _helpers(Helper(46, "h", (), Ret.INTEGER, two)))
    assert (a.run(), b.run()) == (1, 2)


def test_engine_load_verifies_then_runs():
    loaded = engine.load(assemble("mov %r0, %r2\nexit"))
    assert loaded.run(b"12345") == 5
    with pytest.raises(ProgramRefused):
        engine.load(assemble("mov %r0, %r3\nexit"))  # r3 is never initialised
    with pytest.raises(ValueError):
        engine.load(assemble("mov %r0, 0\nexit"), engine="nope")
