"""Disassembler: a :class:`Program` back into the text ``asm.assemble`` reads.

Jump and local-call targets become labels (``L<pc>`` / ``fn<pc>``) when they
land on an instruction, otherwise signed offsets. Every line is checked by
assembling it again; a slot whose encoding has no mnemonic (a stray field, an
unknown opcode) is printed as ``.insn 0x...`` so that
``assemble(disassemble(p)).code == p.code`` holds for every program.
"""

from __future__ import annotations

from zcsdfs.csd import asm, isa
from zcsdfs.csd.errors import AssemblyError
from zcsdfs.csd.program import Program

_SIGNED_LOADS = {size: suffix for suffix, size in asm.SIGNED_LOAD_SIZES.items()}
_ATOMIC_NAMES = {imm: name for name, imm in asm.ATOMIC_OPS.items()}
_MOVSX_NAMES = {(bits, cls): name for name, (bits, cls) in asm.MOVSX_BITS.items()}
_ENDIAN_NAMES = {name: opcode for name, opcode in asm.ENDIAN_OPCODES.items() if name != "bswap"}


def disassemble(program: Program) -> str:
    """The program as assembly text, one instruction per line."""
    insns = program.insns
    starts = _instruction_starts(insns)
    labels = _labels(insns, starts)
    lines = []
    for pc in starts:
        if pc in labels:
            lines.append(f"{labels[pc]}:")
        lines.append(format_instruction(insns, pc, labels))
    for index, section in enumerate(program.sections):
        kind = "writable" if section.writable else "read-only"
        lines.append(f"# section({index}) = {section.name}, {len(section.data)} bytes, {kind}")
    return "\n".join(lines) + "\n"


def format_instruction(insns: tuple[isa.Instruction, ...], pc: int, labels: dict[int, str] | None = None) -> str:
    """One instruction as text, or ``.insn`` when no mnemonic encodes it exactly."""
    if _exact_text(insns, pc) is None:
        return "\n".join(_raw(i) for i in insns[pc:pc + _width(insns, pc)])
    if insns[pc].is_lddw:
        return _lddw(insns[pc], insns[pc + 1])
    return _text(insns[pc], pc, labels)


def _exact_text(insns, pc: int) -> str | None:
    """Text (with numeric jump offsets) that assembles back to the same slots, if any."""
    insn = insns[pc]
    if insn.is_lddw:
        text = _lddw(insn, insns[pc + 1]) if pc + 1 < len(insns) else None
    else:
        text = _text(insn, pc, None)
    expected = list(insns[pc:pc + _width(insns, pc)])
    if text is None or not _round_trips(text, expected):
        return None
    return text


def _width(insns, pc: int) -> int:
    return 2 if insns[pc].is_lddw and pc + 1 < len(insns) else 1


def _instruction_starts(insns) -> list[int]:
    """Slot indices that begin an instruction (an lddw covers two slots)."""
    starts, pc = [], 0
    while pc < len(insns):
        starts.append(pc)
        pc += _width(insns, pc)
    return starts


def _labels(insns, starts) -> dict[int, str]:
    valid = set(starts)
    labels: dict[int, str] = {}
    for pc in starts:
        insn = insns[pc]
        target = _target(insn, pc)
        if target is None or target not in valid or _exact_text(insns, pc) is None:
            continue
        if insn.opcode == isa.JMP | isa.CALL:
            labels[target] = f"fn{target}"
        else:
            labels.setdefault(target, f"L{target}")
    return labels


def _target(insn: isa.Instruction, pc: int) -> int | None:
    if insn.opcode == isa.JMP | isa.CALL and insn.src == isa.CALL_LOCAL:
        return pc + 1 + insn.imm
    if insn.opcode == isa.JMP32 | isa.JA:
        return pc + 1 + insn.imm
    if insn.cls in (isa.JMP, isa.JMP32) and insn.op not in (isa.CALL, isa.EXIT):
        return pc + 1 + insn.off
    return None


def _round_trips(text: str, expected: list[isa.Instruction]) -> bool:
    try:
        return list(asm.assemble(text).insns) == expected
    except AssemblyError:
        return False


def _raw(insn: isa.Instruction) -> str:
    return f".insn 0x{int.from_bytes(insn.encode(), 'little'):016x}"


def _reg(n: int) -> str:
    return f"%r{n}"


def _mem(reg: int, off: int) -> str:
    return f"[%r{reg}{off:+d}]" if off else f"[%r{reg}]"


def _imm(value: int) -> str:
    return str(value) if -0x10000 < value < 0x10000 else f"0x{value & 0xFFFFFFFF:x}"


def _lddw(first: isa.Instruction, second: isa.Instruction) -> str:
    if first.src == isa.LDDW_SECTION:
        return f"lddw {_reg(first.dst)}, section({first.imm}){second.imm:+d}"
    return f"lddw {_reg(first.dst)}, 0x{isa.lddw_value(first, second):x}"


def _jump_target(insn: isa.Instruction, pc: int, offset: int, labels: dict[int, str] | None) -> str:
    target = pc + 1 + offset
    if labels and target in labels:
        return labels[target]
    return f"{offset:+d}"


def _text(insn: isa.Instruction, pc: int, labels: dict[int, str] | None) -> str | None:
    """Candidate text for one single-slot instruction; None when there is no mnemonic."""
    cls = insn.cls
    if cls in (isa.ALU, isa.ALU64):
        return _alu_text(insn)
    if cls in (isa.JMP, isa.JMP32):
        return _jump_text(insn, pc, labels)
    if cls == isa.LDX and insn.mode == isa.MEM:
        return f"ldx{isa.SIZE_SUFFIX[insn.size]} {_reg(insn.dst)}, {_mem(insn.src, insn.off)}"
    if cls == isa.LDX and insn.mode == isa.MEMSX and insn.size in _SIGNED_LOADS:
        return f"ldx{_SIGNED_LOADS[insn.size]} {_reg(insn.dst)}, {_mem(insn.src, insn.off)}"
    if cls == isa.ST and insn.mode == isa.MEM:
        return f"st{isa.SIZE_SUFFIX[insn.size]} {_mem(insn.dst, insn.off)}, {_imm(insn.imm)}"
    if cls == isa.STX and insn.mode == isa.MEM:
        return f"stx{isa.SIZE_SUFFIX[insn.size]} {_mem(insn.dst, insn.off)}, {_reg(insn.src)}"
    if cls == isa.STX and insn.mode == isa.ATOMIC and insn.size in (isa.W, isa.DW):
        return _atomic_text(insn)
    return None


def _alu_text(insn: isa.Instruction) -> str | None:
    suffix = "32" if insn.cls == isa.ALU else ""
    if insn.op == isa.END:
        for name, opcode in _ENDIAN_NAMES.items():
            if opcode == insn.opcode:
                return f"{name}{insn.imm} {_reg(insn.dst)}"
        return None
    if insn.op == isa.NEG:
        return f"neg{suffix} {_reg(insn.dst)}"
    if insn.op == isa.MOV and insn.source == isa.X and insn.off:
        name = _MOVSX_NAMES.get((insn.off, insn.cls))
        return f"{name} {_reg(insn.dst)}, {_reg(insn.src)}" if name else None
    if insn.op not in isa.ALU_NAMES:
        return None
    name = isa.ALU_NAMES[insn.op]
    if insn.op in (isa.DIV, isa.MOD) and insn.off == 1:
        name = "s" + name
    operand = _reg(insn.src) if insn.source == isa.X else _imm(insn.imm)
    return f"{name}{suffix} {_reg(insn.dst)}, {operand}"


def _jump_text(insn: isa.Instruction, pc: int, labels: dict[int, str] | None) -> str | None:
    if insn.opcode == isa.JMP | isa.EXIT:
        return "exit"
    if insn.opcode == isa.JMP | isa.CALL:
        if insn.src == isa.CALL_LOCAL:
            return f"call local {_jump_target(insn, pc, insn.imm, labels)}"
        return f"call {_imm(insn.imm)}"
    if insn.opcode == isa.JMP | isa.X | isa.CALL:
        return f"call {_reg(insn.dst)}"
    if insn.opcode == isa.JMP | isa.JA:
        return f"ja {_jump_target(insn, pc, insn.off, labels)}"
    if insn.opcode == isa.JMP32 | isa.JA:
        return f"ja32 {_jump_target(insn, pc, insn.imm, labels)}"
    if insn.op not in asm.JMP_OPS.values():
        return None
    suffix = "32" if insn.cls == isa.JMP32 else ""
    operand = _reg(insn.src) if insn.source == isa.X else _imm(insn.imm)
    target = _jump_target(insn, pc, insn.off, labels)
    return f"{isa.JMP_NAMES[insn.op]}{suffix} {_reg(insn.dst)}, {operand}, {target}"


def _atomic_text(insn: isa.Instruction) -> str | None:
    suffix = "32" if insn.size == isa.W else ""
    op = insn.imm & ~isa.FETCH if insn.imm not in (isa.XCHG, isa.CMPXCHG) else insn.imm
    if op not in _ATOMIC_NAMES:
        return None
    fetch = "fetch " if insn.imm & isa.FETCH and insn.imm not in (isa.XCHG, isa.CMPXCHG) else ""
    return f"lock {fetch}{_ATOMIC_NAMES[op]}{suffix} {_mem(insn.dst, insn.off)}, {_reg(insn.src)}"
