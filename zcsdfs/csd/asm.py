"""Assembler for the common eBPF text syntax (the one bpf_conformance uses).

One instruction per line; ``#`` starts a comment; ``name:`` defines a label
for the next instruction. Registers are written ``%r0`` .. ``%r10``, memory
operands ``[%r1+4]`` / ``[%r10-8]``, jump targets are labels or signed slot
offsets (``+3``, ``-2``). Examples::

    mov %r0, 1            # ALU64; mov32 is the 32-bit form, add64 = add
    ldxw %r1, [%r1+4]     # ldxs{b,h,w} are the sign-extending loads
    stxdw [%r10-8], %r1
    lddw %r0, 0x1122334455667788
    jeq32 %r1, 2, done
    call 5                # helper call; ``call local f`` calls a function
    lock fetch add [%r10-8], %r1
    movsx1632 %r0, %r1    # sign-extend 16 bits, 32-bit result

As in the reference assembler, the first ``exit`` is also the label ``exit``
unless the source defines one. Immediates are checked against their field:
a decimal 32-bit immediate must fit a signed int32, a hexadecimal one may use
all 32 bits (``0xffffffff``); offsets are signed 16-bit.

Two forms exist so that any program can be printed and read back:
``lddw %r1, section(0)+16`` (the address of a data section, see
``isa.LDDW_SECTION``) and ``.insn 0x...`` (one raw 64-bit slot, for encodings
that have no mnemonic, such as an instruction with a stray field set).
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from zcsdfs.csd import isa
from zcsdfs.csd.errors import AssemblyError
from zcsdfs.csd.program import Program

ALU_OPS = {
    "add": isa.ADD, "sub": isa.SUB, "mul": isa.MUL, "div": isa.DIV, "or": isa.OR,
    "and": isa.AND, "lsh": isa.LSH, "rsh": isa.RSH, "mod": isa.MOD, "xor": isa.XOR,
    "mov": isa.MOV, "arsh": isa.ARSH, "sdiv": isa.DIV, "smod": isa.MOD,
}
SIGNED_ALU = {"sdiv", "smod"}  # encoded with off = 1
MOVSX_BITS = {"movsx832": (8, isa.ALU), "movsx1632": (16, isa.ALU), "movsx864": (8, isa.ALU64),
              "movsx1664": (16, isa.ALU64), "movsx3264": (32, isa.ALU64)}
JMP_OPS = {name: op for op, name in isa.JMP_NAMES.items() if op not in (isa.JA, isa.CALL, isa.EXIT)}
SIZES = {suffix: size for size, suffix in isa.SIZE_SUFFIX.items()}
SIGNED_LOAD_SIZES = {"sb": isa.B, "sh": isa.H, "sw": isa.W}
# le/be convert to that byte order (ALU class); swap/bswap always swap (ALU64, v4).
ENDIAN_OPCODES = {"le": isa.ALU | isa.TO_LE | isa.END, "be": isa.ALU | isa.TO_BE | isa.END,
                  "swap": isa.ALU64 | isa.END, "bswap": isa.ALU64 | isa.END}
ATOMIC_OPS = {"add": isa.ATOMIC_ADD, "or": isa.ATOMIC_OR, "and": isa.ATOMIC_AND,
              "xor": isa.ATOMIC_XOR, "xchg": isa.XCHG, "cmpxchg": isa.CMPXCHG}
ATOMIC_ALWAYS_FETCH = {"xchg", "cmpxchg"}

_NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)")
_REGISTER = re.compile(r"%r([0-9]+)")
_MEMORY = re.compile(r"\[\s*(%r[0-9]+)\s*(?:([+-])\s*(0[xX][0-9a-fA-F]+|[0-9]+))?\s*\]")
_SECTION = re.compile(r"section\(\s*([0-9]+)\s*\)\s*(?:([+-])\s*(0[xX][0-9a-fA-F]+|[0-9]+))?")
_LABEL = re.compile(r"[A-Za-z_.$][\w.$]*")
_LABEL_DEFINITION = re.compile(r"([A-Za-z_.$][\w.$]*)\s*:")


@attrs.frozen
class _Slot:
    """One encoded slot, with the label its jump or call field still waits for."""

    insn: isa.Instruction
    label: str | None = None
    line: int = 0


class _LineError(Exception):
    """A problem in one line; the assembler adds the line number."""


def assemble(text: str, filename: str | None = None) -> Program:
    """Assemble ``text`` into a :class:`Program`; raises :class:`AssemblyError`."""
    slots: list[_Slot] = []
    labels: dict[str, int] = {}
    first_exit: int | None = None
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].strip()
        try:
            while (m := _LABEL_DEFINITION.match(line)) is not None:
                name = m.group(1)
                if name in labels:
                    raise _LineError(f"duplicate label {name!r}")
                labels[name] = len(slots)
                line = line[m.end():].strip()
            if not line:
                continue
            new = _parse_line(line)
        except _LineError as exc:
            raise AssemblyError(str(exc), line=number, filename=filename) from None
        if first_exit is None and new[0].insn.opcode == isa.JMP | isa.EXIT:
            first_exit = len(slots)
        slots.extend(attrs.evolve(s, line=number) for s in new)
    if not slots:
        raise AssemblyError("no instructions", filename=filename)
    if first_exit is not None:
        labels.setdefault("exit", first_exit)
    insns = [_resolve(pc, slot, labels, filename) for pc, slot in enumerate(slots)]
    name = Path(filename).stem if filename else "program"
    return Program(insns, name=name)


def _parse_line(line: str) -> list[_Slot]:
    """Encode one instruction (no label, no comment); jumps may name labels."""
    mnemonic, _, rest = line.replace("\t", " ").partition(" ")
    mnemonic, rest = mnemonic.lower(), rest.strip()
    if mnemonic == "lock":
        return [_atomic(rest)]
    if mnemonic == "call":
        return [_call(rest)]
    if mnemonic == ".insn":
        return [_raw_slot(_operands(rest, 1))]
    operands = _operands(rest, None)
    encoder = _encoder(mnemonic)
    if encoder is None:
        raise _LineError(f"invalid mnemonic {mnemonic!r}")
    return encoder(mnemonic, operands)


def _operands(rest: str, count: int | None) -> list[str]:
    ops = [op.strip() for op in rest.split(",")] if rest else []
    if any(not op for op in ops):
        raise _LineError("empty operand")
    if count is not None and len(ops) != count:
        raise _LineError(f"expected {count} operand(s), got {len(ops)}")
    return ops


def _want(mnemonic: str, operands: list[str], count: int) -> None:
    if len(operands) != count:
        raise _LineError(f"invalid number of operands for {mnemonic}: expected {count}, got {len(operands)}")


def _encoder(mnemonic: str):
    if mnemonic in MOVSX_BITS:
        return _movsx
    if mnemonic == "lddw":
        return _lddw
    if mnemonic in ("exit", "ja", "ja32"):
        return _exit_or_ja
    if mnemonic[:-2] in ENDIAN_OPCODES and mnemonic[-2:] in ("16", "32", "64"):
        return _endian
    base, _ = _alu_class(mnemonic)
    if base in ALU_OPS:
        return _alu
    if base == "neg":
        return _neg
    if mnemonic in JMP_OPS or (mnemonic.endswith("32") and mnemonic[:-2] in JMP_OPS):
        return _jump
    if mnemonic.startswith("ldxs") and mnemonic[3:] in SIGNED_LOAD_SIZES:
        return _load
    if mnemonic.startswith("ldx") and mnemonic[3:] in SIZES:
        return _load
    if mnemonic.startswith("stx") and mnemonic[3:] in SIZES:
        return _store_reg
    if mnemonic.startswith("st") and mnemonic[2:] in SIZES:
        return _store_imm
    return None


def _alu_class(mnemonic: str) -> tuple[str, int]:
    if mnemonic.endswith("32"):
        return mnemonic[:-2], isa.ALU
    if mnemonic.endswith("64"):
        return mnemonic[:-2], isa.ALU64
    return mnemonic, isa.ALU64


def _alu(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 2)
    base, cls = _alu_class(mnemonic)
    dst = _register(operands[0])
    off = 1 if base in SIGNED_ALU else 0
    if operands[1].startswith("%"):
        insn = isa.Instruction(cls | isa.X | ALU_OPS[base], dst, _register(operands[1]), off, 0)
    else:
        insn = isa.Instruction(cls | isa.K | ALU_OPS[base], dst, 0, off, _imm32(operands[1]))
    return [_Slot(insn)]


def _neg(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 1)
    _, cls = _alu_class(mnemonic)
    return [_Slot(isa.Instruction(cls | isa.NEG, _register(operands[0])))]


def _movsx(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 2)
    bits, cls = MOVSX_BITS[mnemonic]
    dst, src = _register(operands[0]), _register(operands[1])
    return [_Slot(isa.Instruction(cls | isa.X | isa.MOV, dst, src, bits, 0))]


def _endian(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 1)
    opcode = ENDIAN_OPCODES[mnemonic[:-2]]
    return [_Slot(isa.Instruction(opcode, _register(operands[0]), 0, 0, int(mnemonic[-2:])))]


def _lddw(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 2)
    dst = _register(operands[0])
    m = _SECTION.fullmatch(operands[1])
    if m:
        index = int(m.group(1))
        offset = _signed_value(m.group(2), m.group(3)) if m.group(3) else 0
        first = isa.Instruction(isa.OPCODE_LDDW, dst, isa.LDDW_SECTION, 0, _fit(index, 0, 2**31 - 1, "section index"))
        second = isa.Instruction(0, 0, 0, 0, _fit(offset, -(2**31), 2**31 - 1, "section offset"))
    else:
        first, second = isa.lddw(dst, _imm64(operands[1]))
    return [_Slot(first), _Slot(second)]


def _load(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 2)
    if mnemonic.startswith("ldxs"):
        mode, size = isa.MEMSX, SIGNED_LOAD_SIZES[mnemonic[3:]]
    else:
        mode, size = isa.MEM, SIZES[mnemonic[3:]]
    dst = _register(operands[0])
    src, off = _memory_operand(operands[1])
    return [_Slot(isa.Instruction(isa.LDX | mode | size, dst, src, off, 0))]


def _store_reg(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 2)
    dst, off = _memory_operand(operands[0])
    src = _register(operands[1])
    return [_Slot(isa.Instruction(isa.STX | isa.MEM | SIZES[mnemonic[3:]], dst, src, off, 0))]


def _store_imm(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 2)
    dst, off = _memory_operand(operands[0])
    return [_Slot(isa.Instruction(isa.ST | isa.MEM | SIZES[mnemonic[2:]], dst, 0, off, _imm32(operands[1])))]


def _exit_or_ja(mnemonic: str, operands: list[str]) -> list[_Slot]:
    if mnemonic == "exit":
        _want(mnemonic, operands, 0)
        return [_Slot(isa.Instruction(isa.JMP | isa.EXIT))]
    _want(mnemonic, operands, 1)
    target, label = _target(operands[0], wide=mnemonic == "ja32")
    if mnemonic == "ja32":  # gotol: the offset lives in imm
        return [_Slot(isa.Instruction(isa.JMP32 | isa.JA, 0, 0, 0, target), label)]
    return [_Slot(isa.Instruction(isa.JMP | isa.JA, 0, 0, target, 0), label)]


def _jump(mnemonic: str, operands: list[str]) -> list[_Slot]:
    _want(mnemonic, operands, 3)
    base, cls = (mnemonic[:-2], isa.JMP32) if mnemonic.endswith("32") else (mnemonic, isa.JMP)
    dst = _register(operands[0])
    off, label = _target(operands[2], wide=False)
    if operands[1].startswith("%"):
        insn = isa.Instruction(cls | isa.X | JMP_OPS[base], dst, _register(operands[1]), off, 0)
    else:
        insn = isa.Instruction(cls | isa.K | JMP_OPS[base], dst, 0, off, _imm32(operands[1]))
    return [_Slot(insn, label)]


def _call(rest: str) -> _Slot:
    words = rest.split()
    if words[:1] == ["local"]:
        if len(words) != 2:
            raise _LineError("invalid number of operands for call local: expected a label or offset")
        imm, label = _target(words[1], wide=True)
        return _Slot(isa.Instruction(isa.JMP | isa.CALL, 0, isa.CALL_LOCAL, 0, imm), label)
    if len(words) == 2 and words[0] == "helper":
        words = words[1:]
    if len(words) != 1:
        raise _LineError("invalid number of operands for call: expected a helper number, "
                         "'local LABEL' or a register")
    if words[0].startswith("%"):  # callx: the target address is in a register
        return _Slot(isa.Instruction(isa.JMP | isa.X | isa.CALL, _register(words[0])))
    return _Slot(isa.Instruction(isa.JMP | isa.CALL, 0, isa.CALL_HELPER, 0, _imm32(words[0])))


def _atomic(rest: str) -> _Slot:
    """``lock [fetch] OP[32] [%rD+off], %rS``."""
    head, _, tail = rest.partition("[")
    words = head.split()
    fetch = bool(words) and words[0] == "fetch"
    if fetch:
        words = words[1:]
    operands = _operands("[" + tail, None) if tail else []
    if len(words) != 1 or len(operands) != 2:
        raise _LineError("invalid number of operands for lock: expected "
                         "'lock [fetch] OP [%rD+off], %rS'")
    op, size = (words[0][:-2], isa.W) if words[0].endswith("32") else (words[0], isa.DW)
    if op not in ATOMIC_OPS:
        raise _LineError(f"invalid atomic operation {words[0]!r}")
    imm = ATOMIC_OPS[op] | (isa.FETCH if fetch else 0)
    if fetch and op in ATOMIC_ALWAYS_FETCH:
        imm = ATOMIC_OPS[op]
    dst, off = _memory_operand(operands[0])
    return _Slot(isa.Instruction(isa.STX | isa.ATOMIC | size, dst, _register(operands[1]), off, imm))


def _raw_slot(operands: list[str]) -> _Slot:
    word = _integer(operands[0], 0, 2**64 - 1, "raw instruction")
    return _Slot(isa.Instruction.decode(word.to_bytes(8, "little")))


# --- operands -----------------------------------------------------------------


def _register(text: str) -> int:
    m = _REGISTER.fullmatch(text)
    if m is None or int(m.group(1)) > 10:
        raise _LineError(f"invalid register {text!r}")
    return int(m.group(1))


def _memory_operand(text: str) -> tuple[int, int]:
    """``[%rN]``, ``[%rN+off]`` or ``[%rN-off]`` -> (register, signed offset)."""
    m = _MEMORY.fullmatch(text)
    if m is None:
        raise _LineError(f"invalid memory operand {text!r}: expected [%rN+offset]")
    off = _signed_value(m.group(2), m.group(3)) if m.group(3) else 0
    return _register(m.group(1)), _fit(off, -(2**15), 2**15 - 1, "offset")


def _imm32(text: str) -> int:
    """A 32-bit immediate as the signed value stored in the field."""
    is_hex = "x" in text.lower()
    value = _integer(text, -(2**31), 2**32 - 1 if is_hex else 2**31 - 1, "32-bit immediate")
    return isa.to_s32(value)


def _imm64(text: str) -> int:
    return _integer(text, -(2**63), 2**64 - 1, "64-bit immediate")


def _target(text: str, *, wide: bool) -> tuple[int, str | None]:
    """A jump target: a signed offset (``+3``) or a label resolved later."""
    if text[:1] in "+-":
        limit = 2**31 if wide else 2**15
        return _integer(text, -limit, limit - 1, "jump offset"), None
    if not _LABEL.fullmatch(text):
        raise _LineError(f"invalid jump target {text!r}")
    return 0, text


def _integer(text: str, low: int, high: int, what: str) -> int:
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise _LineError(f"invalid {what} {text!r}")
    return _fit(_signed_value(text[:1], m.group(1)), low, high, what)


def _signed_value(sign: str | None, digits: str) -> int:
    value = int(digits, 16) if digits.lower().startswith("0x") else int(digits, 10)
    return -value if sign == "-" else value


def _fit(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise _LineError(f"{what} {value} out of range [{low}, {high}]")
    return value


def _resolve(pc: int, slot: _Slot, labels: dict[str, int], filename: str | None) -> isa.Instruction:
    if slot.label is None:
        return slot.insn
    if slot.label not in labels:
        raise AssemblyError(f"undefined label {slot.label!r}", line=slot.line, filename=filename)
    delta = labels[slot.label] - pc - 1
    insn = slot.insn
    if insn.opcode == isa.JMP | isa.CALL or insn.opcode == isa.JMP32 | isa.JA:
        return attrs.evolve(insn, imm=delta)
    if not -(2**15) <= delta < 2**15:
        raise AssemblyError(f"jump to {slot.label!r} is too far ({delta} slots)", line=slot.line, filename=filename)
    return attrs.evolve(insn, off=delta)
