"""The eBPF instruction set (RFC 9669): encoding, decoding and field names.

Every other part of the VM (assembler, verifier, interpreter, JIT, ELF loader)
speaks in terms of :class:`Instruction`, one per 8-byte slot. A wide
instruction (``lddw``) occupies two slots; the second is kept as its own
``Instruction`` with opcode 0 so that slot indices, jump offsets and
relocation offsets all count the same way as in the encoded program.
"""

from __future__ import annotations

import struct
from typing import Iterable

import attrs

SLOT = 8

# Instruction classes (opcode & 0x07).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
CLASS_NAMES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")

# Source bit for ALU/JMP (opcode & 0x08).
K = 0x00  # immediate
X = 0x08  # register

# ALU operations (opcode & 0xf0).
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = (i << 4 for i in range(8))
NEG, MOD, XOR, MOV, ARSH, END = (i << 4 for i in range(8, 14))
ALU_NAMES = {
    ADD: "add", SUB: "sub", MUL: "mul", DIV: "div", OR: "or", AND: "and",
    LSH: "lsh", RSH: "rsh", NEG: "neg", MOD: "mod", XOR: "xor", MOV: "mov",
    ARSH: "arsh", END: "end",
}

# Jump operations (opcode & 0xf0).
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE = (i << 4 for i in range(8))
CALL, EXIT, JLT, JLE, JSLT, JSLE = (i << 4 for i in range(8, 14))
JMP_NAMES = {
    JA: "ja", JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset", JNE: "jne",
    JSGT: "jsgt", JSGE: "jsge", CALL: "call", EXIT: "exit", JLT: "jlt",
    JLE: "jle", JSLT: "jslt", JSLE: "jsle",
}

# Load/store size (opcode & 0x18) and mode (opcode & 0xe0).
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {W: 4, H: 2, B: 1, DW: 8}
SIZE_SUFFIX = {W: "w", H: "h", B: "b", DW: "dw"}
IMM, ABS, IND, MEM, MEMSX, ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0

# Atomic operations (imm of an ATOMIC store).
FETCH = 0x01
ATOMIC_ADD, ATOMIC_OR, ATOMIC_AND, ATOMIC_XOR = ADD, OR, AND, XOR
XCHG = 0xE0 | FETCH
CMPXCHG = 0xF0 | FETCH

# Source values of CALL (src field).
CALL_HELPER, CALL_LOCAL, CALL_KFUNC = 0, 1, 2

# Source values of lddw (src field); only 0 (plain 64-bit immediate) and the
# map/BTF forms are defined; we accept 0 and leave the others to the loader.
LDDW_IMM64 = 0

# Byte-swap: for END with ALU class, the source bit picks to-little (K) or
# to-big (X); with ALU64 class it is the unconditional bswap (v4).
TO_LE, TO_BE = K, X

OPCODE_LDDW = LD | IMM | DW  # 0x18


@attrs.frozen
class Instruction:
    """One 8-byte eBPF slot: ``opcode:8 dst:4 src:4 off:16 imm:32``."""

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0  # signed 16-bit
    imm: int = 0  # signed 32-bit

    @property
    def cls(self) -> int:
        return self.opcode & 0x07

    @property
    def source(self) -> int:
        return self.opcode & 0x08

    @property
    def op(self) -> int:
        """ALU or jump operation (high nibble)."""
        return self.opcode & 0xF0

    @property
    def size(self) -> int:
        return self.opcode & 0x18

    @property
    def mode(self) -> int:
        return self.opcode & 0xE0

    @property
    def is_lddw(self) -> bool:
        return self.opcode == OPCODE_LDDW

    def encode(self) -> bytes:
        return struct.pack(
            "<BBhi", self.opcode, (self.src << 4) | (self.dst & 0x0F), self.off, self.imm
        )

    @classmethod
    def decode(cls, slot: bytes | memoryview) -> "Instruction":
        opcode, regs, off, imm = struct.unpack("<BBhi", slot)
        return cls(opcode, regs & 0x0F, regs >> 4, off, imm)


def decode(code: bytes | bytearray | memoryview) -> list[Instruction]:
    """Split bytecode into slots; the length must be a multiple of 8."""
    if len(code) % SLOT:
        raise ValueError(f"program length {len(code)} is not a multiple of {SLOT} bytes")
    return [
        Instruction(opcode, regs & 0x0F, regs >> 4, off, imm)
        for opcode, regs, off, imm in struct.iter_unpack("<BBhi", code)
    ]


def encode(program: Iterable[Instruction]) -> bytes:
    return b"".join(insn.encode() for insn in program)


def lddw(dst: int, value: int, src: int = LDDW_IMM64) -> tuple[Instruction, Instruction]:
    """The two slots of ``lddw dst, value`` (value taken modulo 2**64)."""
    value &= (1 << 64) - 1
    lo, hi = value & 0xFFFFFFFF, value >> 32
    return (
        Instruction(OPCODE_LDDW, dst, src, 0, to_s32(lo)),
        Instruction(0, 0, 0, 0, to_s32(hi)),
    )


def lddw_value(first: Instruction, second: Instruction) -> int:
    """The unsigned 64-bit immediate of an lddw pair."""
    return (first.imm & 0xFFFFFFFF) | ((second.imm & 0xFFFFFFFF) << 32)


def to_s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def to_s64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value & (1 << 63) else value

# lddw with src = LDDW_SECTION loads the address of a program data section
# (as Linux's BPF_PSEUDO_MAP_VALUE): first.imm is the section index in
# ``Program.sections`` and second.imm the byte offset inside it. The ELF
# loader emits these for R_BPF_64_64 relocations into .rodata/.data/.bss.
LDDW_SECTION = 2
