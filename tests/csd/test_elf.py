"""The ELF loader: clang objects linked into Programs, malformed objects refused."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from zcsdfs.csd import engine, isa, kernels
from zcsdfs.csd.elf import R_BPF_64_32, R_BPF_64_64, load_elf
from zcsdfs.csd.errors import ElfError

needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang with the BPF target is not installed")

# Two functions in .text (one global, one static), a program in a section of
# its own calling both, and data in .rodata (a string), .data (a global at a
# non-zero symbol value, written by the program) and .bss.
LINKED_C = rb"""
#include <stdint.h>
#define SEC(n) __attribute__((section(n), used))
static const char greeting[] = "zcsdfs";
uint64_t before = 5;
uint32_t weights[4] = {10, 20, 30, 40};
static uint64_t calls;

__attribute__((noinline)) uint64_t weigh(uint64_t i)
{
    calls++;
    return weights[i & 3];
}

__attribute__((noinline)) static uint64_t letter(uint64_t i)
{
    return greeting[i % 6];
}

SEC("csd/test") uint64_t entry(const uint8_t *data, uint64_t len)
{
    weights[1] += 1;
    return weigh(1) * 1000 + letter(len) + calls * 100000 + before;
}
"""

# Several global functions in .text; the entry is not the first of them.
TEXT_C = rb"""
#include <stdint.h>
__attribute__((noinline)) uint64_t twice(uint64_t x) { return 2 * x; }
uint64_t entry(const uint8_t *data, uint64_t len) { return twice(len) + 1; }
__attribute__((noinline)) uint64_t thrice(uint64_t x) { return 3 * x + twice(x); }
"""

EXTERN_C = rb"""
#include <stdint.h>
extern uint64_t elsewhere;
uint64_t entry(const uint8_t *data, uint64_t len) { return elsewhere + len; }
"""


def compile_c(tmp_path, source: bytes) -> bytes:
    src = tmp_path / "k.c"
    src.write_bytes(source)
    subprocess.run(
        ["clang", "-O2", "-g0", "-mcpu=v3", "-ffreestanding", "-target", "bpf", "-c", "k.c", "-o", "k.o"],
        cwd=tmp_path, check=True, capture_output=True,
    )
    return (tmp_path / "k.o").read_bytes()


def function_starts(obj: bytes, name: str) -> dict[str, int]:
    """Where each function of ``obj`` landed in the program whose entry is ``name``
    (found by matching its opcodes); functions left out are absent."""
    program = load_elf(obj, name=name)
    elf = ELFFile(io.BytesIO(obj))
    starts = {}
    opcodes = [i.opcode for i in program.insns]
    for sym in elf.get_section_by_name(".symtab").iter_symbols():
        if sym["st_info"]["type"] != "STT_FUNC":
            continue
        sec = elf.get_section(sym["st_shndx"])
        body = isa.decode(sec.data()[sym["st_value"]:sym["st_value"] + sym["st_size"]])
        pattern = [i.opcode for i in body]
        hits = [k for k in range(len(opcodes)) if opcodes[k:k + len(pattern)] == pattern]
        assert len(hits) <= 1, sym.name
        if hits:
            starts[sym.name] = hits[0]
    return starts


def function_sizes(obj: bytes) -> dict[str, int]:
    symbols = ELFFile(io.BytesIO(obj)).get_section_by_name(".symtab").iter_symbols()
    return {s.name: s["st_size"] // 8 for s in symbols if s["st_info"]["type"] == "STT_FUNC"}


def call_targets(program) -> list[int]:
    return [pc + 1 + i.imm for pc, i in enumerate(program.insns)
            if i.opcode == isa.JMP | isa.CALL and i.src == isa.CALL_LOCAL]


# -- linking objects clang made -------------------------------------------------


@needs_clang
def test_program_section_links_text_functions_and_data(tmp_path):
    obj = compile_c(tmp_path, LINKED_C)
    program = load_elf(obj)  # one program section besides .text: no name needed
    assert program.name == "entry"
    starts = function_starts(obj, "entry")
    assert starts["entry"] == 0
    assert sorted(call_targets(program)) == sorted([starts["weigh"], starts["letter"]])
    by_name = {s.name: s for s in program.sections}
    assert set(by_name) == {".rodata.str1.1", ".data", ".bss"}
    assert by_name[".rodata.str1.1"].data == b"zcsdfs\0" and not by_name[".rodata.str1.1"].writable
    assert by_name[".data"].data == struct.pack("<Q4I", 5, 10, 20, 30, 40) and by_name[".data"].writable
    assert by_name[".bss"].data == bytes(8) and by_name[".bss"].writable


@needs_clang
def test_lddw_relocations_become_section_loads_with_symbol_offsets(tmp_path):
    program = load_elf(compile_c(tmp_path, LINKED_C))
    names = [s.name for s in program.sections]
    loads = [(names[first.imm], second.imm) for first, second in zip(program.insns, program.insns[1:])
             if first.is_lddw]
    assert all(first.src == isa.LDDW_SECTION for first in program.insns if first.is_lddw)
    # weights sits 8 bytes into .data (after `before`), loaded twice; before at 0.
    assert sorted(loads) == sorted([(".data", 8), (".data", 8), (".data", 0), (".bss", 0), (".bss", 0),
                                    (".rodata.str1.1", 0)])


@needs_clang
def test_entry_function_is_laid_out_first(tmp_path):
    obj = compile_c(tmp_path, TEXT_C)
    with pytest.raises(ElfError, match="several functions"):
        load_elf(obj)
    # Only the functions the entry reaches are linked, as libbpf does.
    for name, linked in (("entry", {"entry", "twice"}), ("twice", {"twice"}), ("thrice", {"thrice", "twice"})):
        program = load_elf(obj, name=name)
        starts = function_starts(obj, name)
        assert set(starts) == linked and starts[name] == 0 and program.name == name
        assert call_targets(program) == ([starts["twice"]] if name != "twice" else [])
        assert len(program) == sum(function_sizes(obj)[f] for f in linked)


@needs_clang
def test_linked_program_runs(tmp_path):
    vm = engine.load(load_elf(compile_c(tmp_path, LINKED_C)))
    # weights[1] becomes 21; calls is 1; letter(len) = greeting[len % 6]; before = 5.
    for length, letter in ((0, "z"), (7, "c"), (11, "s")):
        expected = 21 * 1000 + ord(letter) + 100000 + 5
        assert vm.run(bytearray(length)) == expected  # twice: each run starts from fresh sections
        assert vm.run(bytearray(length)) == expected
    text = engine.load(load_elf(compile_c(tmp_path, TEXT_C), name="entry"))
    assert text.run(bytearray(3)) == 7


@needs_clang
def test_extern_symbol_is_refused(tmp_path):
    with pytest.raises(ElfError, match="unknown symbol elsewhere"):
        load_elf(compile_c(tmp_path, EXTERN_C))


# -- the committed kernels -----------------------------------------------------


def kernel_bytes(name="crc32c") -> bytes:
    return kernels.object_path(name).read_bytes()


def test_kernel_object_cross_section_call_and_rodata_table():
    program = kernels.program("crc32c")
    (rodata,) = program.sections
    assert rodata.name == ".rodata" and len(rodata.data) == 1024 and not rodata.writable
    assert struct.unpack_from("<I", rodata.data, 4)[0] == 0xF26B8303  # CRC32C table entry 1
    (target,) = call_targets(program)
    assert program.insns[target - 1].opcode == isa.JMP | isa.EXIT  # update() follows the entry's exit
    file_program = kernels.program("crc32c", file=True)
    assert [s.name for s in file_program.sections] == [".bss", ".rodata"]
    assert file_program.sections[0].writable and file_program.sections[0].data == bytes(65536)


def test_section_and_name_select_programs():
    data = kernel_bytes("sum_u32")
    with pytest.raises(ElfError, match="expected one program section"):
        load_elf(data)
    assert load_elf(data, section="csd/read_stream").name == "sum_u32_file"
    assert load_elf(data, section="csd/memory").name == "sum_u32"
    assert load_elf(data, name="sum_u32", section="csd/memory") == load_elf(data, section="csd/memory")
    with pytest.raises(ElfError, match="not csd/read_stream"):
        load_elf(data, name="sum_u32", section="csd/read_stream")
    with pytest.raises(ElfError, match="no function named nothing"):
        load_elf(data, name="nothing")
    with pytest.raises(ElfError, match="no code section named csd/x"):
        load_elf(data, section="csd/x")


# -- hand-corrupted objects ------------------------------------------------------


def section_header(data: bytes, name: str) -> tuple[int, dict]:
    """(file offset of the section header, the header) of section ``name``."""
    elf = ELFFile(io.BytesIO(data))
    for index, sec in enumerate(elf.iter_sections()):
        if sec.name == name:
            return elf["e_shoff"] + index * elf["e_shentsize"], sec.header
    raise KeyError(name)


def patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def first_reloc(data: bytes, rel_section: str, kind: int) -> int:
    """File offset of the first relocation of ``kind`` in ``rel_section``."""
    _, header = section_header(data, rel_section)
    for k in range(header["sh_size"] // 16):
        at = header["sh_offset"] + 16 * k
        if struct.unpack_from("<Q", data, at + 8)[0] & 0xFFFFFFFF == kind:
            return at
    raise KeyError(kind)


def test_not_elf():
    for junk in (b"", b"\x7fEL", b"MZ\x90\x00" + bytes(60), bytes(64)):
        with pytest.raises(ElfError, match="not an ELF object") as info:
            load_elf(junk)
        assert info.value.errno == 8  # ENOEXEC


def test_wrong_class_endianness_or_machine():
    data = kernel_bytes()
    with pytest.raises(ElfError, match="not a 64-bit little-endian"):
        load_elf(patch(data, 4, "B", 1))  # ELFCLASS32
    with pytest.raises(ElfError, match="not a 64-bit little-endian"):
        load_elf(patch(data, 5, "B", 2))  # big-endian
    with pytest.raises(ElfError, match="not BPF"):
        load_elf(patch(data, 18, "<H", 62))  # EM_X86_64


def test_truncated():
    data = kernel_bytes()
    for cut in (20, 64, 200, len(data) // 2, len(data) * 9 // 10, len(data) - 1):
        with pytest.raises(ElfError):
            load_elf(data[:cut], name="crc32c")


def test_section_past_end_of_object():
    data = kernel_bytes()
    at, header = section_header(data, "csd/memory")
    with pytest.raises(ElfError, match="extends past the end"):
        load_elf(patch(data, at + 24, "<Q", len(data) - 8), name="crc32c")  # sh_offset


def test_text_length_not_multiple_of_8():
    data = kernel_bytes()
    at, header = section_header(data, "csd/memory")
    with pytest.raises(ElfError, match="csd/memory: length .* not a multiple of 8"):
        load_elf(patch(data, at + 32, "<Q", header["sh_size"] - 3), name="crc32c")  # sh_size


def test_relocation_outside_text():
    data = kernel_bytes()
    at = first_reloc(data, ".relcsd/memory", R_BPF_64_32)
    _, text = section_header(data, "csd/memory")
    for offset in (text["sh_size"], text["sh_size"] + 64, 3):
        with pytest.raises(ElfError, match="outside the instructions"):
            load_elf(patch(data, at, "<Q", offset), name="crc32c")


def test_unsupported_relocation_type():
    data = kernel_bytes()
    at = first_reloc(data, ".relcsd/memory", R_BPF_64_32)
    info = struct.unpack_from("<Q", data, at + 8)[0]
    with pytest.raises(ElfError, match="unsupported type 3"):
        load_elf(patch(data, at + 8, "<Q", (info & ~0xFFFFFFFF) | 3), name="crc32c")  # R_BPF_64_ABS32


def test_relocation_symbol_out_of_range():
    data = kernel_bytes()
    at = first_reloc(data, ".relcsd/memory", R_BPF_64_32)
    with pytest.raises(ElfError, match="symbol index 999 out of range"):
        load_elf(patch(data, at + 8, "<Q", (999 << 32) | R_BPF_64_32), name="crc32c")


def test_relocation_against_undefined_symbol():
    data = kernel_bytes()
    at = first_reloc(data, ".relcsd/memory", R_BPF_64_32)
    with pytest.raises(ElfError, match="unknown symbol"):
        load_elf(patch(data, at + 8, "<Q", (0 << 32) | R_BPF_64_32), name="crc32c")  # the null symbol


def test_data_relocation_on_non_lddw():
    data = kernel_bytes()
    at = first_reloc(data, ".relcsd/read_stream", R_BPF_64_64)
    with pytest.raises(ElfError, match="not lddw"):
        load_elf(patch(data, at, "<Q", 0), name="crc32c_file")  # slot 0 is `r6 = 0`


def test_call_relocation_into_data_is_refused():
    data = kernel_bytes()
    call = first_reloc(data, ".relcsd/memory", R_BPF_64_32)
    lddw = first_reloc(data, ".relcsd/read_stream", R_BPF_64_64)  # its symbol is .bss
    bss_symbol = struct.unpack_from("<Q", data, lddw + 8)[0] >> 32
    with pytest.raises(ElfError, match="is not code"):
        load_elf(patch(data, call + 8, "<Q", (bss_symbol << 32) | R_BPF_64_32), name="crc32c")


def test_lddw_addend_is_added_to_the_symbol_offset():
    data = kernel_bytes()
    at = first_reloc(data, ".relcsd/read_stream", R_BPF_64_64)
    slot = struct.unpack_from("<Q", data, at)[0] // 8
    _, text = section_header(data, "csd/read_stream")
    patched = patch(data, text["sh_offset"] + slot * 8 + 4, "<i", 24)  # first.imm = addend 24
    program = load_elf(patched, name="crc32c_file")
    lddws = [(a, b) for a, b in zip(program.insns, program.insns[1:]) if a.is_lddw]
    assert (lddws[0][0].src, lddws[0][0].imm, lddws[0][1].imm) == (isa.LDDW_SECTION, 0, 24)
    too_far = patch(data, text["sh_offset"] + slot * 8 + 4, "<i", 65537)
    with pytest.raises(ElfError, match="beyond .bss"):
        load_elf(too_far, name="crc32c_file")


def test_object_without_code():
    data = kernel_bytes()
    for name in ("csd/memory", "csd/read_stream", ".text"):
        at, _ = section_header(data, name)
        data = patch(data, at + 8, "<Q", 0)  # sh_flags: no longer executable
    with pytest.raises(ElfError, match="no code section"):
        load_elf(data)
