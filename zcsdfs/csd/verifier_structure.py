"""Structural checks: every slot is an instruction of our groups with its
unused fields zero, registers in range, and lddw pairs complete.

These run on every slot, reachable or not, because the engines translate
the whole program: a bad opcode or field in dead code must not reach them.
"""

from __future__ import annotations

from zcsdfs.csd import isa
from zcsdfs.csd.errors import ProgramRefused, UnsupportedInstruction
from zcsdfs.csd.program import Program

# uBPF's limit (UBPF_MAX_INSTS), far above any real kernel (Linux allows 4,096
# slots to unprivileged programs). It bounds what a load can cost: the verifier
# and the JIT are both roughly linear in the program size, and a 64k-slot JIT
# compile already takes tens of seconds.
MAX_SLOTS = 65_536
FP = 10

_ALU_OPS = frozenset(isa.ALU_NAMES)
_CONDITIONAL = frozenset(isa.JMP_NAMES) - {isa.JA, isa.CALL, isa.EXIT}
_ATOMIC_OPS = frozenset(
    {isa.ATOMIC_ADD, isa.ATOMIC_OR, isa.ATOMIC_AND, isa.ATOMIC_XOR}
    | {op | isa.FETCH for op in (isa.ATOMIC_ADD, isa.ATOMIC_OR, isa.ATOMIC_AND, isa.ATOMIC_XOR)}
    | {isa.XCHG, isa.CMPXCHG}
)


def check_structure(program: Program) -> frozenset[int]:
    """Refuse malformed slots; return the pcs of lddw second halves."""
    insns = program.insns
    if not insns:
        raise ProgramRefused("empty program")
    if len(insns) > MAX_SLOTS:
        raise ProgramRefused(f"program of {len(insns):,} slots exceeds the limit of {MAX_SLOTS:,}")
    halves = set()
    pc = 0
    while pc < len(insns):
        insn = insns[pc]
        if insn.is_lddw:
            _check_lddw(program, pc)
            halves.add(pc + 1)
            pc += 2
            continue
        _check_one(insn, pc)
        pc += 1
    return frozenset(halves)


def _refuse(pc: int, message: str) -> ProgramRefused:
    return ProgramRefused(message, pc=pc)


def _fields(insn: isa.Instruction, pc: int, *, dst=True, src=True, off=True, imm=True) -> None:
    """Refuse a non-zero field the instruction does not use (False = unused)."""
    for name, used in (("dst", dst), ("src", src), ("off", off), ("imm", imm)):
        if not used and getattr(insn, name):
            raise _refuse(pc, f"{_name(insn)}: unused field {name} must be zero")
    for name in ("dst", "src"):
        if getattr(insn, name) > FP:
            raise _refuse(pc, f"invalid register r{getattr(insn, name)}")


def _name(insn: isa.Instruction) -> str:
    cls = insn.cls
    if cls in (isa.ALU, isa.ALU64) and insn.op == isa.END:
        return ("bswap" if cls == isa.ALU64 else "be" if insn.source == isa.X else "le") + str(insn.imm)
    if cls in (isa.ALU, isa.ALU64):
        return isa.ALU_NAMES.get(insn.op, f"opcode {insn.opcode:#04x}") + ("" if cls == isa.ALU64 else "32")
    if cls in (isa.JMP, isa.JMP32):
        return isa.JMP_NAMES.get(insn.op, f"opcode {insn.opcode:#04x}") + ("" if cls == isa.JMP else "32")
    return f"{isa.CLASS_NAMES[cls]}{isa.SIZE_SUFFIX[insn.size]}"


def _writes_dst(insn: isa.Instruction, pc: int) -> None:
    if insn.dst == FP:
        raise _refuse(pc, "r10 (the frame pointer) is read-only")


def _check_lddw(program: Program, pc: int) -> None:
    insn = program.insns[pc]
    if pc + 1 >= len(program.insns):
        raise _refuse(pc, "lddw is missing its second slot")
    second = program.insns[pc + 1]
    if second.opcode or second.dst or second.src or second.off:
        raise _refuse(pc + 1, "second slot of lddw must have opcode, registers and offset zero")
    _fields(insn, pc, off=False)
    _writes_dst(insn, pc)
    if insn.src == isa.LDDW_SECTION:
        if not 0 <= insn.imm < len(program.sections):
            raise _refuse(pc, f"lddw refers to section {insn.imm}; the program has {len(program.sections)}")
        size = len(program.sections[insn.imm].data)
        if not 0 <= second.imm <= size:
            raise _refuse(pc, f"lddw offset {second.imm} is outside section {program.sections[insn.imm].name!r} of {size} bytes")
    elif insn.src != isa.LDDW_IMM64:
        raise _refuse(pc, f"lddw with unsupported source {insn.src}")


def _check_one(insn: isa.Instruction, pc: int) -> None:
    cls, mode = insn.cls, insn.mode
    if cls == isa.LD:
        if mode in (isa.ABS, isa.IND):
            raise UnsupportedInstruction("legacy packet access (ld abs/ind) is not supported", pc=pc)
        raise _refuse(pc, f"invalid opcode {insn.opcode:#04x}")
    if cls == isa.LDX:
        if mode == isa.MEMSX and insn.size == isa.DW or mode not in (isa.MEM, isa.MEMSX):
            raise _refuse(pc, f"invalid load opcode {insn.opcode:#04x}")
        _fields(insn, pc, imm=False)
        _writes_dst(insn, pc)
    elif cls == isa.ST:
        if mode != isa.MEM:
            raise _refuse(pc, f"invalid store opcode {insn.opcode:#04x}")
        _fields(insn, pc, src=False)
    elif cls == isa.STX:
        if mode == isa.ATOMIC:
            if insn.size not in (isa.W, isa.DW):
                raise _refuse(pc, "atomic operations exist only on 32 and 64 bits")
            if insn.imm not in _ATOMIC_OPS:
                raise _refuse(pc, f"invalid atomic operation {insn.imm:#x}")
            _fields(insn, pc)
            if insn.imm & isa.FETCH and insn.src == FP:
                raise _refuse(pc, "r10 (the frame pointer) is read-only")
        elif mode == isa.MEM:
            _fields(insn, pc, imm=False)
        else:
            raise _refuse(pc, f"invalid store opcode {insn.opcode:#04x}")
    elif cls in (isa.ALU, isa.ALU64):
        _check_alu(insn, pc)
    else:
        _check_jump(insn, pc)


def _check_alu(insn: isa.Instruction, pc: int) -> None:
    op, is64, reg = insn.op, insn.cls == isa.ALU64, insn.source == isa.X
    if op not in _ALU_OPS:
        raise _refuse(pc, f"invalid ALU opcode {insn.opcode:#04x}")
    _writes_dst(insn, pc)
    if op == isa.NEG:
        if reg:
            raise _refuse(pc, f"invalid ALU opcode {insn.opcode:#04x}")
        _fields(insn, pc, src=False, off=False, imm=False)
    elif op == isa.END:
        if is64 and reg:
            raise _refuse(pc, f"invalid ALU opcode {insn.opcode:#04x}")
        if insn.imm not in (16, 32, 64):
            raise _refuse(pc, f"byte swap width must be 16, 32 or 64, not {insn.imm}")
        _fields(insn, pc, src=False, off=False)
    else:
        if op in (isa.DIV, isa.MOD):
            offsets = (0, 1)
        elif op == isa.MOV and reg:
            offsets = (0, 8, 16, 32) if is64 else (0, 8, 16)
        else:
            offsets = (0,)
        if insn.off not in offsets:
            raise _refuse(pc, f"{_name(insn)}: invalid offset {insn.off}")
        _fields(insn, pc, src=reg, imm=not reg)


def _check_jump(insn: isa.Instruction, pc: int) -> None:
    op, is32, reg = insn.op, insn.cls == isa.JMP32, insn.source == isa.X
    if op == isa.CALL and not is32:
        if reg:
            raise UnsupportedInstruction("indirect call (callx) is not supported", pc=pc)
        if insn.src == isa.CALL_KFUNC:
            raise UnsupportedInstruction("kfunc calls are not supported", pc=pc)
        if insn.src not in (isa.CALL_HELPER, isa.CALL_LOCAL):
            raise _refuse(pc, f"call with invalid source {insn.src}")
        _fields(insn, pc, dst=False, off=False)
    elif op == isa.EXIT and not is32 and not reg:
        _fields(insn, pc, dst=False, src=False, off=False, imm=False)
    elif op == isa.JA and not reg:
        if is32:  # gotol: the target is in imm
            _fields(insn, pc, dst=False, src=False, off=False)
        else:
            _fields(insn, pc, dst=False, src=False, imm=False)
    elif op in _CONDITIONAL:
        _fields(insn, pc, src=reg, imm=not reg)
    else:
        raise _refuse(pc, f"invalid jump opcode {insn.opcode:#04x}")
