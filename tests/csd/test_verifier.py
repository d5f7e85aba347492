"""The verifier: conformance programs pass, hostile programs are refused at
the right instruction, and only unproven accesses are left to run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from zcsdfs.csd import asm, isa
from zcsdfs.csd.errors import AssemblyError, ProgramRefused, UnsupportedInstruction
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret
from zcsdfs.csd.program import Program, Section
from zcsdfs.csd.verifier import verify

def _sections(path: Path) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("-- "):
            current = line[3:].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line.split("#", 1)[0])
    return {name: "\n".join(lines) for name, lines in out.items()}


def _program(sections: dict[str, str]) -> Program:
    """The program of a conformance file: its raw slots if given, else its asm."""
    if "raw" in sections:
        lines = [line.strip() for line in sections["raw"].splitlines() if line.strip()]
        if lines[0].startswith("0x"):  # one little-endian 64-bit word per line
            return Program.from_bytes(b"".join(int(w, 16).to_bytes(8, "little") for w in lines))
        return Program.from_bytes(bytes(int(b, 16) for line in lines for b in line.split()))
    return asm.assemble(sections.get("asm", ""))


def _unwind(vm, r1, *_):
    return r1


CONFORMANCE_HELPERS = HelperSet([Helper(5, "unwind", (Arg.SCALAR,), Ret.INTEGER, _unwind)])


def test_conformance_data_is_present(conformance_dir):
    assert len(list(conformance_dir.glob("*.data"))) > 300
    assert len(list((conformance_dir / "negative").glob("*.data"))) > 50


def test_conformance_program_is_accepted(data_file):
    path = data_file
    program = _program(_sections(path))
    if path.stem == "callx":  # outside our groups
        with pytest.raises(UnsupportedInstruction, match="callx"):
            verify(program, CONFORMANCE_HELPERS)
        return
    verdict = verify(program, CONFORMANCE_HELPERS)
    assert verdict.processed >= 1


def test_negative_program_is_refused(negative_file):
    path = negative_file
    sections = _sections(path)
    if "error" not in sections and ("asm" in sections or "raw" in sections):
        # a wrong-result test: the program is valid, its stated result is not
        assert "result" in sections
        return
    with pytest.raises((AssemblyError, ProgramRefused)):
        verify(_program(sections), CONFORMANCE_HELPERS)


# ---------------------------------------------------------------------------
# Hostile programs.


def ok(text: str, helpers=None, sections=()):
    program = asm.assemble(text)
    return verify(Program(program.insns, sections), helpers)


def refused(text_or_insns, pc: int, reason: str, helpers=None, sections=()):
    if isinstance(text_or_insns, str):
        insns = asm.assemble(text_or_insns).insns
    else:
        insns = text_or_insns
    with pytest.raises(ProgramRefused) as info:
        verify(Program(insns, sections), helpers)
    assert info.value.pc == pc, info.value
    assert reason in info.value.reason, info.value
    return info.value


def test_store_above_the_frame_pointer_is_refused():
    refused("mov %r1, 1\nstxdw [%r10+8], %r1\nmov %r0, 0\nexit", 1, "outside the 512-byte stack frame")


def test_load_below_the_frame_is_refused():
    refused("stdw [%r10-512], 0\nldxdw %r0, [%r10-520]\nexit", 1, "outside the 512-byte stack frame")


def test_variable_offset_that_may_leave_the_frame_is_refused():
    refused("""
        ldxb %r3, [%r1]
        mov %r4, %r10
        sub %r4, %r3
        stb [%r4-300], 0
        mov %r0, 0
        exit""", 3, "outside the 512-byte stack frame")


def test_uninitialised_register_read_is_refused():
    refused("mov %r0, 1\nadd %r0, %r7\nexit", 1, "r7 is not initialised")


def test_exit_without_r0_is_refused():
    refused("mov %r1, 1\nexit", 1, "r0 is not initialised at exit")


def test_uninitialised_stack_read_is_refused():
    refused("ldxdw %r0, [%r10-8]\nexit", 0, "uninitialised stack at fp-8")


def test_partly_initialised_stack_read_is_refused():
    refused("stw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit", 1, "uninitialised stack at fp-4")


def test_writing_r10_is_refused():
    refused([isa.Instruction(isa.ALU64 | isa.MOV | isa.K, 10, 0, 0, 1),
             isa.Instruction(isa.JMP | isa.EXIT)], 0, "r10")


def test_jump_out_of_range_is_refused():
    refused([isa.Instruction(isa.JMP | isa.JA, off=5), isa.Instruction(isa.JMP | isa.EXIT)],
            0, "outside the program")


def test_jump_into_the_middle_of_lddw_is_refused():
    first, second = isa.lddw(0, 1)
    refused([isa.Instruction(isa.JMP | isa.JA, off=1), first, second, isa.Instruction(isa.JMP | isa.EXIT)],
            0, "middle of an lddw")


def test_truncated_lddw_is_refused():
    first, _ = isa.lddw(0, 1)
    refused([isa.Instruction(isa.ALU64 | isa.MOV, 0), first], 1, "second slot")


def test_fall_off_the_end_is_refused():
    refused("mov %r0, 0\njeq %r0, 0, +1\nexit\nmov %r0, 1", 3, "falls off the end of the program")


def test_returning_a_pointer_is_refused():
    refused("mov %r0, %r10\nadd %r0, -8\nexit", 2, "pointer leak")


def test_storing_a_pointer_into_the_context_is_refused():
    refused("stxdw [%r1], %r10\nmov %r0, 0\nexit", 0, "pointer leak")


def test_pointer_arithmetic_other_than_add_or_sub_is_refused():
    refused("mov %r3, %r1\nmul %r3, 2\nmov %r0, 0\nexit", 1, "mul on a pointer")
    refused("mov %r3, %r1\nadd %r3, %r10\nmov %r0, 0\nexit", 1, "two pointers")
    refused("mov32 %r0, %r1\nexit", 0, "truncate the pointer")


def test_dereferencing_a_scalar_is_refused():
    refused("mov %r3, 4096\nldxw %r0, [%r3]\nexit", 1, "holds a scalar")


def test_unsupported_instructions():
    with pytest.raises(UnsupportedInstruction) as info:
        verify(Program([isa.Instruction(isa.LD | isa.ABS | isa.W, imm=0), isa.Instruction(isa.JMP | isa.EXIT)]))
    assert info.value.pc == 0 and "legacy packet" in info.value.reason


# ---------------------------------------------------------------------------
# Helpers.


def _nothing(vm, *args):
    return 0


HELPERS = HelperSet([
    Helper(1, "checksum", (Arg.PTR_TO_MEM, Arg.SIZE), Ret.INTEGER, _nothing),
    Helper(2, "lookup", (Arg.SCALAR,), Ret.PTR_TO_MEM_OR_NULL, _nothing, ret_size=16),
    Helper(3, "fill", (Arg.PTR_TO_UNINIT_MEM, Arg.SIZE), Ret.INTEGER, _nothing),
])


def test_unknown_helper_is_refused():
    refused("call 99\nexit", 0, "unknown helper 99", HELPERS)


def test_helper_with_a_too_large_stack_buffer_is_refused():
    refused("""
        stdw [%r10-8], 0
        mov %r1, %r10
        add %r1, -8
        mov %r2, 16
        call 1
        exit""", 4, "may run outside the stack frame 0", HELPERS)


def test_helper_reading_uninitialised_stack_is_refused():
    refused("mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 1\nexit", 3, "uninitialised stack", HELPERS)


def test_helper_size_must_be_bounded():
    refused("""
        stdw [%r10-8], 0
        ldxdw %r2, [%r1]
        or %r2, 1
        mov %r1, %r10
        add %r1, -8
        call 1
        exit""", 5, "may run outside", HELPERS)


def test_helper_size_may_not_be_zero():
    refused("ldxb %r2, [%r1]\nmov %r1, %r10\ncall 1\nexit", 2, "size in r2 may be 0", HELPERS)


def test_helper_size_bounded_by_a_comparison_is_accepted():
    verdict = ok("""
        stdw [%r10-16], 0
        stdw [%r10-8], 0
        ldxdw %r2, [%r1]
        jgt %r2, 16, out
        jeq %r2, 0, out
        mov %r1, %r10
        add %r1, -16
        call 1
        exit
    out:
        mov %r0, 0
        exit""", HELPERS)
    assert verdict.checked == {2}


def test_helper_filled_stack_is_initialised():
    verdict = ok("mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 3\nldxdw %r0, [%r10-8]\nexit", HELPERS)
    assert verdict.checked == set()


def test_pointer_passed_as_scalar_argument_is_refused():
    refused("mov %r1, %r10\ncall 2\nmov %r0, 0\nexit", 1, "must be a scalar", HELPERS)


def test_unchecked_helper_result_dereference_is_refused():
    refused("mov %r1, 1\ncall 2\nldxdw %r0, [%r0]\nexit", 2, "compare it with 0 first", HELPERS)


def test_checked_helper_result_is_proven_in_bounds():
    verdict = ok("""
        mov %r1, 1
        call 2
        mov %r6, %r0
        jeq %r0, 0, out
        ldxdw %r0, [%r6+8]
        exit
    out:
        mov %r0, 0
        exit""", HELPERS)
    assert verdict.checked == set()


def test_helper_result_read_beyond_its_size_is_refused():
    refused("""
        mov %r1, 1
        call 2
        jeq %r0, 0, out
        ldxdw %r0, [%r0+16]
        exit
    out:
        mov %r0, 0
        exit""", 3, "outside the 16-byte helper memory", HELPERS)


def test_arguments_are_clobbered_by_a_helper_call():
    refused("mov %r1, 1\ncall 2\nmov %r0, %r1\nexit", 2, "r1 was clobbered by a call", HELPERS)


# ---------------------------------------------------------------------------
# Sections.

TABLE = (Section(".rodata", bytes(range(16))), Section(".data", bytes(8), writable=True))


def test_store_to_a_read_only_section_is_refused():
    refused("lddw %r1, section(0)\nstb [%r1+1], 7\nmov %r0, 0\nexit", 2, "read-only section 0", sections=TABLE)


def test_section_accesses_are_proven():
    verdict = ok("""
        lddw %r1, section(0)+4
        ldxw %r0, [%r1]
        lddw %r2, section(1)
        stxdw [%r2], %r0
        exit""", sections=TABLE)
    assert verdict.checked == set()


def test_section_access_past_its_end_is_refused():
    refused("lddw %r1, section(1)\nldxdw %r0, [%r1+4]\nexit", 2, "outside the 8-byte section 1", sections=TABLE)


def test_section_index_must_exist():
    refused("lddw %r1, section(2)\nmov %r0, 0\nexit", 0, "section 2", sections=TABLE)


def test_indexed_section_access_is_checked_at_run_time():
    verdict = ok("""
        ldxb %r3, [%r1]
        lddw %r1, section(0)
        add %r1, %r3
        ldxb %r0, [%r1]
        exit""", sections=TABLE)
    assert verdict.checked == {0, 4}


def test_constant_table_reads_are_exact():
    # the verifier knows the loaded byte is 5, so the stack index is proven
    verdict = ok("""
        lddw %r1, section(0)
        ldxb %r2, [%r1+5]
        stdw [%r10-8], 0
        mov %r3, %r10
        sub %r3, %r2
        ldxb %r0, [%r3-1]
        exit""", sections=TABLE)
    assert verdict.checked == set()


# ---------------------------------------------------------------------------
# Run-time checks.


def test_context_access_at_an_input_dependent_offset_is_checked():
    verdict = ok("""
        ldxb %r2, [%r1]
        add %r1, %r2
        ldxb %r0, [%r1]
        stdw [%r10-8], 1
        ldxdw %r3, [%r10-8]
        add %r0, %r3
        exit""")
    assert verdict.checked == {0, 2}


def test_context_access_below_its_start_is_refused():
    refused("ldxb %r0, [%r1-1]\nexit", 0, "before the start of the context")


def test_context_length_comparison_proves_context_accesses():
    verdict = ok("""
        jlt %r2, 8, short
        ldxdw %r0, [%r1]
        ldxw %r3, [%r1+4]
        ldxw %r4, [%r1+8]
        exit
    short:
        ldxb %r0, [%r1]
        exit""")
    assert verdict.checked == {3, 5}


def test_loop_over_a_stack_buffer_is_proven():
    verdict = ok("""
        mov %r2, 0
    fill:
        mov %r3, %r10
        add %r3, %r2
        stb [%r3-64], 1
        add %r2, 1
        jlt %r2, 64, fill
        mov %r0, 0
        mov %r2, 0
    sum:
        mov %r3, %r10
        add %r3, %r2
        stxb [%r3-64], %r2
        add %r0, %r2
        add %r2, 1
        jne %r2, 64, sum
        exit""")
    assert verdict.checked == set()
    assert dict(verdict.stack_depth)[0] == 64


def test_loop_reading_the_context_is_checked_and_terminates():
    verdict = ok("""
        mov %r0, 0
        mov %r3, 0
    loop:
        jge %r3, %r2, done
        mov %r4, %r1
        add %r4, %r3
        ldxb %r5, [%r4]
        add %r0, %r5
        add %r3, 1
        ja loop
    done:
        exit""")
    assert verdict.checked == {5}


def test_variable_offset_stack_write_does_not_initialise():
    refused("""
        ldxb %r3, [%r1]
        and %r3, 7
        mov %r4, %r10
        sub %r4, %r3
        stb [%r4-1], 0
        ldxb %r0, [%r10-1]
        exit""", 5, "uninitialised stack at fp-1")


# ---------------------------------------------------------------------------
# Spills and calls.


def test_pointer_spill_and_fill():
    verdict = ok("""
        stxdw [%r10-8], %r1
        ldxdw %r3, [%r10-8]
        ldxb %r0, [%r3]
        exit""")
    assert verdict.checked == {2}


def test_partial_read_of_a_spilled_pointer_is_refused():
    refused("stxdw [%r10-8], %r1\nldxw %r0, [%r10-8]\nexit", 1, "part of the pointer to context")


def test_narrow_pointer_store_is_refused():
    refused("stxw [%r10-8], %r1\nmov %r0, 0\nexit", 0, "pointers spill only as aligned 8-byte stores")


def test_callee_uses_the_callers_stack():
    verdict = ok("""
        stdw [%r10-8], 41
        mov %r1, %r10
        add %r1, -8
        mov %r6, 1
        call local inc
        add %r0, %r6
        exit
    inc:
        ldxdw %r0, [%r1]
        stdw [%r10-16], 0
        exit""")
    assert verdict.checked == set()
    assert verdict.functions == (0, 7)
    assert dict(verdict.stack_depth) == {0: 8, 7: 16}


def test_callee_sees_no_callee_saved_registers():
    refused("mov %r6, 1\ncall local f\nexit\nf:\nmov %r0, %r6\nexit", 3, "r6 is not initialised")


def test_callee_returning_its_own_frame_is_refused():
    refused("call local f\nmov %r0, 0\nexit\nf:\nmov %r0, %r10\nexit", 4, "own stack frame")


def test_recursion_is_refused():
    refused("call local f\nexit\nf:\ncall local f\nexit", 2, "recursive call")


def test_call_chain_deeper_than_eight_frames_is_refused():
    lines = ["mov %r0, 0"] + [f"f{i}:\ncall local f{i + 1}\nexit" for i in range(8)] + ["f8:\nexit"]
    with pytest.raises(ProgramRefused, match="more than 8 frames"):
        ok("\n".join(lines))


def test_unreachable_code_is_reported():
    verdict = ok("mov %r0, 0\nja +1\nmov %r0, 1\nexit")
    assert verdict.unreachable == {2}


# ---------------------------------------------------------------------------
# Scale.


def test_large_program_is_analysed_in_a_few_passes():
    body = []
    for i in range(500):  # 8 slots each: branches, spills and a loop per block
        body += [
            f"b{i}:",
            f"ldxb %r3, [%r1+{i % 64}]",
            f"jgt %r3, 100, s{i}",
            f"stxdw [%r10-{8 + 8 * (i % 60)}], %r3",
            f"ldxdw %r4, [%r10-{8 + 8 * (i % 60)}]",
            "add %r0, %r4",
            f"s{i}:",
            "add %r5, 1",
            f"jlt %r5, {i + 2}, b{i}",
            "mov %r6, %r0",
        ]
    program = asm.assemble("mov %r0, 0\nmov %r5, 0\n" + "\n".join(body) + "\nexit")
    assert len(program) == 4003
    verdict = verify(program)
    assert verdict.checked == {2 + 8 * i for i in range(500)}
    assert verdict.processed < 20 * len(program)


# ---------------------------------------------------------------------------
# Soundness of the scalar domain: every concrete result lies in the abstract one.

from hypothesis import given, settings, strategies as st  # noqa: E402

from zcsdfs.csd.verifier_scalar import M64, Scalar, alu, concrete_alu, concrete_jump, refine  # noqa: E402

_EDGES = [0, 1, 2, 7, 63, 64, 255, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32,
          (1 << 63) - 1, 1 << 63, M64 - 1, M64]
_u64 = st.one_of(st.sampled_from(_EDGES), st.integers(0, M64))


@st.composite
def _scalar_and_member(draw):
    lo, hi = sorted((draw(_u64), draw(_u64)))
    s = Scalar.unsigned(lo, hi) if draw(st.booleans()) else Scalar.signed(
        *sorted(v - (1 << 64) if v >> 63 else v for v in (lo, hi)))
    value = draw(st.sampled_from([s.umin, s.umax, s.smin & M64, s.smax & M64]) | st.integers(s.umin, s.umax))
    signed = value - (1 << 64) if value >> 63 else value
    if not (s.smin <= signed <= s.smax):
        value = s.umin
    return s, value


def _contains(s: Scalar, value: int) -> bool:
    signed = value - (1 << 64) if value >> 63 else value
    return s.umin <= value <= s.umax and s.smin <= signed <= s.smax


_ALU = [(isa.ADD, 0), (isa.SUB, 0), (isa.MUL, 0), (isa.DIV, 0), (isa.DIV, 1), (isa.MOD, 0), (isa.MOD, 1),
        (isa.OR, 0), (isa.AND, 0), (isa.XOR, 0), (isa.LSH, 0), (isa.RSH, 0), (isa.ARSH, 0), (isa.NEG, 0),
        (isa.MOV, 0), (isa.MOV, 8), (isa.MOV, 16), (isa.MOV, 32)]


@settings(max_examples=400, deadline=None)
@given(_scalar_and_member(), _scalar_and_member(), st.sampled_from(_ALU), st.booleans())
def test_alu_is_sound(a, b, op_off, is64):
    (sa, va), (sb, vb) = a, b
    op, off = op_off
    if op == isa.MOV and off == 32 and not is64:
        off = 16
    result = alu(op, is64, off, sa, sb)
    assert _contains(result, concrete_alu(op, is64, off, va, vb)), (result, va, vb)


@settings(max_examples=100, deadline=None)
@given(_scalar_and_member(), st.sampled_from([16, 32, 64]), st.booleans())
def test_byte_swap_is_sound(a, width, to_big):
    sa, va = a
    result = alu(isa.END, True, int(to_big), sa, sa, width)
    assert _contains(result, concrete_alu(isa.END, True, int(to_big), va, va, width))


@settings(max_examples=400, deadline=None)
@given(_scalar_and_member(), _scalar_and_member(),
       st.sampled_from(sorted(isa.JMP_NAMES.keys() - {isa.JA, isa.CALL, isa.EXIT})), st.booleans())
def test_branch_refinement_is_sound(a, b, op, is64):
    (sa, va), (sb, vb) = a, b
    taken = concrete_jump(op, is64, va, vb)
    narrowed = refine(op, is64, sa, sb, taken)
    assert narrowed is not None
    assert _contains(narrowed[0], va) and _contains(narrowed[1], vb)


# ---------------------------------------------------------------------------
# More refusals and acceptances.


def test_atomic_on_a_spilled_pointer_is_refused():
    refused("stxdw [%r10-8], %r1\nmov %r2, 1\nlock add [%r10-8], %r2\nmov %r0, 0\nexit", 2,
            "atomic operation on a pointer")


def test_atomic_fetch_into_r10_is_refused():
    fetch_add = isa.Instruction(isa.STX | isa.ATOMIC | isa.DW, 1, 10, 0, isa.ATOMIC_ADD | isa.FETCH)
    refused([fetch_add, isa.Instruction(isa.ALU64 | isa.MOV, 0), isa.Instruction(isa.JMP | isa.EXIT)], 0, "r10")


def test_atomic_on_the_stack_needs_initialised_bytes():
    refused("mov %r2, 1\nlock add [%r10-8], %r2\nmov %r0, 0\nexit", 1, "uninitialised stack")
    verdict = ok("stdw [%r10-8], 0\nmov %r2, 1\nlock fetch add [%r10-8], %r2\nldxdw %r0, [%r10-8]\nexit")
    assert verdict.checked == set()


def test_pointer_difference_in_one_region_is_a_scalar():
    verdict = ok("mov %r3, %r10\nadd %r3, -16\nmov %r0, %r10\nsub %r0, %r3\nexit")
    assert verdict.checked == set()
    refused("mov %r0, %r10\nsub %r0, %r1\nexit", 1, "two pointers")


def test_gotol_and_jmp32_targets_are_followed():
    verdict = ok("mov %r0, 1\njeq32 %r0, 1, +1\nldxdw %r0, [%r10-8]\nexit")
    assert verdict.unreachable == set()  # structurally reachable, but the constant branch skips pc 2
    gotol = isa.Instruction(isa.JMP32 | isa.JA, imm=1)
    insns = [isa.Instruction(isa.ALU64 | isa.MOV, 0), gotol,
             isa.Instruction(isa.LDX | isa.MEM | isa.DW, 0, 10, -8), isa.Instruction(isa.JMP | isa.EXIT)]
    assert verify(Program(insns)).unreachable == {2}


def test_r2_compared_in_a_callee_proves_context_accesses_there():
    verdict = ok("""
        call local f
        exit
    f:
        mov %r0, 0
        jlt %r2, 4, out
        ldxw %r0, [%r1]
    out:
        exit""")
    assert verdict.checked == set()


def test_verdict_is_frozen():
    verdict = ok("mov %r0, 0\nexit")
    with pytest.raises(AttributeError):
        verdict.checked = frozenset({0})


def test_checked_accesses_fault_at_run_time():
    from zcsdfs.csd.engine import load
    from zcsdfs.csd.errors import MemoryFault

    engine = load(asm.assemble("ldxb %r2, [%r1]\nadd %r1, %r2\nldxb %r0, [%r1]\nexit"))
    assert engine.run(bytearray([2, 0, 42])) == 42
    with pytest.raises(MemoryFault) as info:
        engine.run(bytearray([9, 0, 42]))
    assert info.value.pc == 2


# ---------------------------------------------------------------------------
# Trust boundary: what a hostile program can make the verifier do.


def test_pointer_passed_as_a_helper_size_is_refused_not_a_crash():
    # zcsd_read(0, buf, (uint64_t)buf): the size check used to read .umax of a pointer
    refused("""
        mov %r1, %r10
        add %r1, -8
        mov %r2, %r1
        call 3
        mov %r0, 0
        exit""", 3, "size argument of helper (r2) must be a scalar", HELPERS)


def test_programs_beyond_65536_slots_are_refused_before_any_analysis():
    from zcsdfs.csd.verifier_structure import MAX_SLOTS

    assert MAX_SLOTS == 65_536
    mov = isa.Instruction(isa.ALU64 | isa.K | isa.MOV, 0, imm=0)
    exit_ = isa.Instruction(isa.JMP | isa.EXIT)
    with pytest.raises(ProgramRefused, match="65,537 slots exceeds the limit of 65,536") as info:
        verify(Program([mov] * MAX_SLOTS + [exit_]))
    assert info.value.errno == 22


def test_verifier_work_is_bounded(monkeypatch):
    from zcsdfs.csd import verifier_absint

    lines = ["mov %r0, 0"]
    for i in range(40):
        lines += ["mov %r1, 0", f"l{i}:", "add %r0, 1", "add %r1, 1", f"jlt %r1, 1000, l{i}"]
    program = asm.assemble("\n".join(lines + ["exit"]))
    needed = verify(program).processed
    monkeypatch.setattr(verifier_absint, "MAX_PROCESSED", needed - 1)
    with pytest.raises(ProgramRefused, match="too complex to verify"):
        verify(program)


@pytest.mark.parametrize("text, pc", [
    ("mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit", 1),
    ("mov %r0, 0\nja +1\nexit\nja -1", 3),
    # a way out exists in the text, but not from the inner loop
    ("mov %r0, 0\nouter:\nadd %r0, 1\njgt %r0, 9, out\ninner:\nadd %r1, 0\nja inner\nout:\nexit", 3),
    # in a callee
    ("mov %r0, 0\ncall local f\nexit\nf:\nmov %r0, 1\nja -1\nexit", 4),
])
def test_loops_with_no_way_out_are_refused(text, pc):
    refused(text, pc, "a loop with no way out")


def test_loops_with_a_way_out_are_accepted():
    ok("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 10, loop\nexit")
    ok("mov %r0, 0\nmov %r1, 5\ncall local f\nexit\nf:\nsub %r1, 1\njne %r1, 0, f\nmov %r0, 1\nexit")
