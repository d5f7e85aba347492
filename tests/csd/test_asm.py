"""The assembler and disassembler: the suite's encodings, its assembler-level
rejects, hand-checked encodings of every instruction form, and round trips."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcsdfs.csd import isa
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.conformance import parse_data
from zcsdfs.csd.disasm import disassemble
from zcsdfs.csd.errors import AssemblyError
from zcsdfs.csd.program import Program, Section


def slot(opcode, regs=0, off=0, imm=0) -> bytes:
    return struct.pack("<BBhi", opcode, regs, off, imm)


def test_every_positive_file_assembles_and_matches_its_raw_section(data_file):
    data = parse_data(data_file)
    program = data.program()
    if data.raw is not None:
        assert program.code == data.raw


def test_raw_sections_exist_in_the_suite(conformance_dir):
    """Guard: the raw comparison above really ran on some file."""
    with_raw = [p for p in conformance_dir.glob("*.data") if "-- raw" in p.read_text()]
    assert with_raw
    for path in with_raw:
        data = parse_data(path)
        assert data.program().code == data.raw


def test_negative_assembler_cases_are_refused_with_a_line(assembler_reject):
    data = parse_data(assembler_reject)
    with pytest.raises(AssemblyError) as info:
        data.program()
    assert info.value.errno == 22
    asm = data.sections["asm"]
    if asm.strip():  # the error names a line of the asm section, counted in the file
        first = data.first_lines["asm"]
        assert first <= info.value.line < first + asm.count("\n")


ENCODINGS = [
    ("mov %r0, 1", slot(0xB7, 0x00, 0, 1)),
    ("mov32 %r0, -1", slot(0xB4, 0x00, 0, -1)),
    ("mov32 %r0, 0xffffffff", slot(0xB4, 0x00, 0, -1)),
    ("add64 %r1, %r2", slot(0x0F, 0x21)),
    ("add %r1, %r2", slot(0x0F, 0x21)),
    ("sub32 %r3, 7", slot(0x14, 0x03, 0, 7)),
    ("sdiv %r1, 3", slot(0x37, 0x01, 1, 3)),
    ("smod32 %r1, %r2", slot(0x9C, 0x21, 1, 0)),
    ("neg %r0", slot(0x87)),
    ("neg32 %r4", slot(0x84, 0x04)),
    ("arsh32 %r1, 3", slot(0xC4, 0x01, 0, 3)),
    ("movsx1632 %r0, %r1", slot(0xBC, 0x10, 16)),
    ("movsx864 %r6, %r5", slot(0xBF, 0x56, 8)),
    ("movsx3264 %r0, %r9", slot(0xBF, 0x90, 32)),
    ("be16 %r0", slot(0xDC, 0x00, 0, 16)),
    ("le32 %r2", slot(0xD4, 0x02, 0, 32)),
    ("bswap64 %r1", slot(0xD7, 0x01, 0, 64)),
    ("swap16 %r1", slot(0xD7, 0x01, 0, 16)),
    ("ldxw %r1, [%r1+4]", slot(0x61, 0x11, 4)),
    ("ldxb %r0, [%r2]", slot(0x71, 0x20)),
    ("ldxsw %r0, [%r10-4]", slot(0x81, 0xA0, -4)),
    ("ldxsh %r0, [%r10-2]", slot(0x89, 0xA0, -2)),
    ("ldxsb %r0, [%r10-1]", slot(0x91, 0xA0, -1)),
    ("stxdw [%r10-8], %r1", slot(0x7B, 0x1A, -8)),
    ("stw [%r10-4], 0x80000001", slot(0x62, 0x0A, -4, -0x7FFFFFFF)),
    ("sth [%r1+0x2], 3", slot(0x6A, 0x01, 2, 3)),
    ("lock add [%r1+0], %r2", slot(0xDB, 0x21, 0, 0x00)),
    ("lock fetch add [%r10-8], %r1", slot(0xDB, 0x1A, -8, 0x01)),
    ("lock or32 [%r10-4], %r1", slot(0xC3, 0x1A, -4, 0x40)),
    ("lock fetch xor32 [%r10-4], %r3", slot(0xC3, 0x3A, -4, 0xA1)),
    ("lock xchg [%r10-8], %r1", slot(0xDB, 0x1A, -8, 0xE1)),
    ("lock cmpxchg32 [%r1], %r2", slot(0xC3, 0x21, 0, 0xF1)),
    ("ja +3", slot(0x05, 0, 3)),
    ("ja -2", slot(0x05, 0, -2)),
    ("ja32 +1", slot(0x06, 0, 0, 1)),
    ("jeq %r1, 2, +1", slot(0x15, 0x01, 1, 2)),
    ("jeq32 %r1, 2, +1", slot(0x16, 0x01, 1, 2)),
    ("jsle %r1, %r2, -1", slot(0xDD, 0x21, -1)),
    ("jset32 %r1, %r9, +0", slot(0x4E, 0x91, 0)),
    ("call 5", slot(0x85, 0, 0, 5)),
    ("call local +2", slot(0x85, 0x10, 0, 2)),
    ("call %r2", slot(0x8D, 0x02)),
    ("exit", slot(0x95)),
    ("lddw %r0, 0x1122334455667788", slot(0x18, 0, 0, 0x55667788) + slot(0, 0, 0, 0x11223344)),
    ("lddw %r1, section(2)+16", slot(0x18, 0x21, 0, 2) + slot(0, 0, 0, 16)),
    (".insn 0x0000000100010007", slot(0x07, 0x00, 1, 1)),
    ("exit # trailing comment", slot(0x95)),
]


@pytest.mark.parametrize("text, code", ENCODINGS, ids=[t for t, _ in ENCODINGS])
def test_encoding(text, code):
    assert assemble(text).code == code


def test_labels_forward_backward_and_calls():
    program = assemble("""
        start:
        mov %r0, 0
        loop: add %r0, 1
        jlt %r0, 10, loop   # backward
        ja done             # forward
        mov %r0, 99
        done:
        call local twice
        exit
        twice:
        mov %r0, 2
        exit
    """)
    insns = program.insns
    assert insns[2].off == -2
    assert insns[3].off == 1
    assert insns[5].imm == 1  # twice: is at 7 = 5 + 1 + imm


def test_first_exit_is_an_implicit_label_unless_defined():
    program = assemble("jeq %r1, 0, exit\nmov %r0, 1\nexit\nexit")
    assert program.insns[0].off == 1
    program = assemble("jeq %r1, 0, exit\nexit\nexit:\nexit")
    assert program.insns[0].off == 1


@pytest.mark.parametrize("text, line, words", [
    ("mov %r0, 1\nmov32 %r0, 2147483648\nexit", 2, "out of range"),
    ("mov %r0, -2147483649", 1, "out of range"),
    ("lddw %r0, 0x10000000000000000", 1, "out of range"),
    ("ldxw %r0, [%r1+32768]", 1, "out of range"),
    ("ldxw %r0, [%r1-32769]", 1, "out of range"),
    ("mov %r11, 1", 1, "invalid register"),
    ("mov %r0", 1, "operands"),
    ("exit %r0", 1, "operands"),
    ("ldxq %r0, [%r1]", 1, "invalid mnemonic"),
    ("ldxw %r0, %r1", 1, "memory operand"),
    ("mov %r0, 1\nja nowhere", 2, "undefined label"),
    ("a:\na:\nexit", 2, "duplicate label"),
    ("lock\nexit", 1, "lock"),
    ("lock or [%r10-8]", 1, "lock"),
    ("lock nand [%r10-8], %r1", 1, "atomic operation"),
    ("call local", 1, "call"),
    ("mov %r0, 1x", 1, "immediate"),
    ("jeq %r0, 1, +40000", 1, "out of range"),
])
def test_assembly_errors_name_the_line(text, line, words):
    with pytest.raises(AssemblyError) as info:
        assemble(text, filename="prog.s")
    assert info.value.line == line
    assert words in str(info.value)
    assert info.value.filename == "prog.s"


def test_empty_source_is_refused():
    with pytest.raises(AssemblyError, match="no instructions"):
        assemble("# nothing\n\n")


def test_extreme_immediates():
    assert assemble("mov %r0, -2147483648").insns[0].imm == -(2**31)
    assert assemble("lddw %r0, 18446744073709551615").insns[1].imm == -1
    assert isa.lddw_value(*assemble("lddw %r0, -1").insns) == 2**64 - 1


def round_trip(program: Program) -> None:
    text = disassemble(program)
    assert assemble(text).code == program.code, text


def test_disassembly_round_trips_every_conformance_program(conformance_dir):
    count = 0
    for path in sorted(conformance_dir.rglob("*.data")):
        data = parse_data(path)
        try:
            program = data.program()
        except AssemblyError:
            continue
        round_trip(program)
        count += 1
    assert count > 350


def test_disassembly_uses_labels_and_mnemonics(conformance_dir):
    source = parse_data(conformance_dir / "call_local.data").sections["asm"]
    text = disassemble(assemble(source))
    assert "call local fn20\n" in text
    assert "\nfn20:\nmov %r0, 0\n" in text
    assert "jne %r6, 6, L18\n" in text


def test_disassembly_prints_stray_fields_raw():
    program = Program.from_bytes(slot(0x05, 0, 0, 1) + slot(0x95))
    text = disassemble(program)
    assert text.splitlines()[0] == ".insn 0x0000000100000005"
    round_trip(program)


def test_disassembly_of_section_addresses_names_the_section():
    program = Program(assemble("lddw %r1, section(0)+8\nldxb %r0, [%r1]\nexit").insns,
                      sections=[Section(".rodata", b"0123456789")])
    text = disassemble(program)
    assert "lddw %r1, section(0)+8" in text
    assert "# section(0) = .rodata, 10 bytes, read-only" in text
    round_trip(program)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=12))
def test_disassembly_round_trips_arbitrary_slots(slots):
    round_trip(Program.from_bytes(b"".join(slots)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 10),
                          st.integers(0, 10), st.integers(-3, 3), st.integers(-70, 70)),
                min_size=1, max_size=12))
def test_disassembly_round_trips_plausible_instructions(fields):
    """Small fields hit the mnemonic forms far more often than random bytes do."""
    code = b"".join(slot(op, (src << 4) | dst, off, imm) for op, dst, src, off, imm in fields)
    round_trip(Program.from_bytes(code))
