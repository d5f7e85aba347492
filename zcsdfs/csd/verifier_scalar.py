"""The verifier's numeric domain: a 64-bit scalar as unsigned and signed ranges.

Like Linux's ``bpf_reg_state`` bounds (without tnums), a scalar carries both an
unsigned range ``[umin, umax]`` and a signed range ``[smin, smax]``; each one
tightens the other (``_sync``), so a signed loop bound also bounds an array
index compared unsigned. Transfer functions are sound over-approximations;
when every input is a constant they compute the exact result with the same
edge semantics as the engines (RFC 9669: division by zero gives 0, modulo by
zero leaves the dividend, shift amounts masked, 32-bit results zero-extended).
"""

from __future__ import annotations

import bisect

import attrs

from zcsdfs.csd import isa

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1


def _s64(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


def _sign_extend(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


@attrs.frozen
class Scalar:
    """A set of 64-bit values; ``ctx_len`` marks a value known to equal the
    context length (r2 at entry), so comparing it proves context accesses."""

    umin: int = 0
    umax: int = M64
    smin: int = S64_MIN
    smax: int = S64_MAX
    ctx_len: bool = False

    @classmethod
    def const(cls, value: int) -> "Scalar":
        value &= M64
        return cls(value, value, _s64(value), _s64(value))

    @classmethod
    def unsigned(cls, lo: int, hi: int) -> "Scalar":
        return _make(lo, hi, S64_MIN, S64_MAX) or cls()

    @classmethod
    def signed(cls, lo: int, hi: int) -> "Scalar":
        return _make(0, M64, lo, hi) or cls()

    @property
    def is_const(self) -> bool:
        return self.umin == self.umax

    @property
    def value(self) -> int:
        return self.umin

    def join(self, other: "Scalar") -> "Scalar":
        return Scalar(
            min(self.umin, other.umin), max(self.umax, other.umax),
            min(self.smin, other.smin), max(self.smax, other.smax),
            self.ctx_len and other.ctx_len,
        )

    def widen(self, new: "Scalar", limits: "Thresholds") -> "Scalar":
        """Move every bound that is still growing to the next threshold (the
        constants the program compares with), or to its extreme."""
        return Scalar(
            self.umin if new.umin >= self.umin else limits.below(new.umin, 0, unsigned=True),
            self.umax if new.umax <= self.umax else limits.above(new.umax, M64, unsigned=True),
            self.smin if new.smin >= self.smin else limits.below(new.smin, S64_MIN),
            self.smax if new.smax <= self.smax else limits.above(new.smax, S64_MAX),
            self.ctx_len and new.ctx_len,
        )

    def low32(self) -> "Scalar":
        """The zero-extended low 32 bits (the operand of a 32-bit operation)."""
        if self.umax <= M32:
            return attrs.evolve(self, ctx_len=False)
        if self.is_const:
            return Scalar.const(self.value & M32)
        return Scalar.unsigned(0, M32)

    def fits(self, lo: int, hi: int) -> bool:
        return lo <= self.smin and self.smax <= hi

    def __str__(self) -> str:
        if self.is_const:
            return f"scalar {self.value:#x}"
        return f"scalar u[{self.umin:#x}, {self.umax:#x}] s[{self.smin}, {self.smax}]"


class Thresholds:
    """Sorted widening thresholds: each constant a program compares with,
    and its neighbours (a loop ``i < 64`` stabilises at 63, not at 2**64-1)."""

    def __init__(self, constants: set[int]):
        values = {c + d for c in constants for d in (-1, 0, 1)}
        self.signed = sorted({_s64(v & M64) for v in values})
        self.unsigned = sorted({v & M64 for v in values})

    def above(self, value: int, extreme: int, unsigned: bool = False) -> int:
        table = self.unsigned if unsigned else self.signed
        i = bisect.bisect_left(table, value)
        return table[i] if i < len(table) else extreme

    def below(self, value: int, extreme: int, unsigned: bool = False) -> int:
        table = self.unsigned if unsigned else self.signed
        i = bisect.bisect_right(table, value)
        return table[i - 1] if i else extreme


def _make(umin: int, umax: int, smin: int, smax: int, ctx_len: bool = False) -> Scalar | None:
    """Tighten each range by the other; None when no value is left."""
    for _ in range(2):
        if umin > umax or smin > smax:
            return None
        if umin >> 63 == umax >> 63:  # unsigned range within one sign half
            smin, smax = max(smin, _s64(umin)), min(smax, _s64(umax))
        if smin >= 0 or smax < 0:  # signed range does not cross zero
            umin, umax = max(umin, smin & M64), min(umax, smax & M64)
    if umin > umax or smin > smax:
        return None
    return Scalar(umin, umax, smin, smax, ctx_len)


# ---------------------------------------------------------------------------
# Concrete semantics, used when every operand is known.


def concrete_alu(op: int, is64: bool, off: int, a: int, b: int, imm: int = 0) -> int:
    """The exact result of one ALU operation on unsigned 64-bit ``a`` and ``b``
    (``off`` and ``imm`` as for :func:`alu`)."""
    bits = 64 if is64 else 32
    mask = M64 if is64 else M32
    a &= mask
    b &= mask
    if op == isa.ADD:
        r = a + b
    elif op == isa.SUB:
        r = a - b
    elif op == isa.MUL:
        r = a * b
    elif op in (isa.DIV, isa.MOD):
        if off == 1:  # signed, truncating toward zero
            sa, sb = _sign_extend(a, bits), _sign_extend(b, bits)
            if sb == 0:
                r = 0 if op == isa.DIV else a
            else:
                q = abs(sa) // abs(sb) * (1 if (sa < 0) == (sb < 0) else -1)
                r = q if op == isa.DIV else sa - q * sb
        elif b == 0:
            r = 0 if op == isa.DIV else a
        else:
            r = a // b if op == isa.DIV else a % b
    elif op == isa.OR:
        r = a | b
    elif op == isa.AND:
        r = a & b
    elif op == isa.XOR:
        r = a ^ b
    elif op == isa.LSH:
        r = a << (b & (bits - 1))
    elif op == isa.RSH:
        r = a >> (b & (bits - 1))
    elif op == isa.ARSH:
        r = _sign_extend(a, bits) >> (b & (bits - 1))
    elif op == isa.NEG:
        r = -a
    elif op == isa.MOV:
        r = _sign_extend(b, off) if off else b
    elif op == isa.END:
        r = _byte_swap(a, imm, to_big=bool(off))
    else:
        raise ValueError(f"not an ALU operation: {op:#x}")
    return r & mask


def _byte_swap(a: int, width: int, to_big: bool) -> int:
    a &= (1 << width) - 1
    return int.from_bytes(a.to_bytes(width // 8, "little"), "big") if to_big else a


def concrete_jump(op: int, is64: bool, a: int, b: int) -> bool:
    bits = 64 if is64 else 32
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    sa, sb = _sign_extend(a, bits), _sign_extend(b, bits)
    return {
        isa.JEQ: a == b, isa.JNE: a != b, isa.JSET: bool(a & b),
        isa.JGT: a > b, isa.JGE: a >= b, isa.JLT: a < b, isa.JLE: a <= b,
        isa.JSGT: sa > sb, isa.JSGE: sa >= sb, isa.JSLT: sa < sb, isa.JSLE: sa <= sb,
    }[op]


# ---------------------------------------------------------------------------
# Abstract ALU.


def _ones(x: int) -> int:
    return (1 << x.bit_length()) - 1


def _unsigned_op(op: int, bits: int, a: Scalar, b: Scalar) -> tuple[int, int] | None:
    """Unsigned result range of ``a op b`` in ``bits`` bits, or None if unknown."""
    m = (1 << bits) - 1
    alo, ahi, blo, bhi = a.umin, a.umax, b.umin, b.umax
    if op == isa.ADD:
        if ahi + bhi <= m:
            return alo + blo, ahi + bhi
        if alo + blo > m:
            return alo + blo - m - 1, ahi + bhi - m - 1
    elif op == isa.SUB:
        if alo >= bhi:
            return alo - bhi, ahi - blo
        if ahi < blo:
            return alo - bhi + m + 1, ahi - blo + m + 1
    elif op == isa.MUL:
        if ahi * bhi <= m:
            return alo * blo, ahi * bhi
    elif op == isa.DIV:
        if blo > 0:
            return alo // bhi, ahi // blo
        return (0, 0) if bhi == 0 else (0, ahi)
    elif op == isa.MOD:
        if blo > 0:
            return (alo, ahi) if ahi < blo else (0, min(ahi, bhi - 1))
        return (alo, ahi) if bhi == 0 else (0, ahi)
    elif op == isa.AND:
        return 0, min(ahi, bhi)
    elif op == isa.OR:
        return max(alo, blo), _ones(max(ahi, bhi))
    elif op == isa.XOR:
        return 0, _ones(max(ahi, bhi))
    elif op in (isa.LSH, isa.RSH):
        klo, khi = (blo, bhi) if bhi < bits else (0, bits - 1)
        if op == isa.RSH:
            return alo >> khi, ahi >> klo
        if ahi << khi <= m:
            return alo << klo, ahi << khi
    return None


def alu(op: int, is64: bool, off: int, a: Scalar, b: Scalar, imm: int = 0) -> Scalar:
    """Abstract result of ``a op b`` (``b`` is the source operand; for NEG and
    END only ``a`` matters, for MOV only ``b``). ``off`` is the instruction's
    offset field (sdiv/smod, movsx width), and for END 1 when swapping to
    big-endian (ALU ``be`` or ALU64 ``bswap``); ``imm`` is END's width."""
    bits = 64 if is64 else 32
    if not is64:
        a, b = a.low32(), b.low32()
    if op == isa.MOV and not off:
        return attrs.evolve(b, ctx_len=b.ctx_len and is64)
    if a.is_const and b.is_const:
        return Scalar.const(concrete_alu(op, is64, off, a.value, b.value, imm))
    full = Scalar() if is64 else Scalar.unsigned(0, M32)
    if op == isa.MOV:  # movsx
        if b.umax < 1 << (off - 1):
            return b
        return Scalar.signed(-(1 << (off - 1)), (1 << (off - 1)) - 1) if is64 else full
    if op == isa.END:
        if off == 0:  # to little-endian on a little-endian host: truncation
            return a if a.umax < 1 << imm else Scalar.unsigned(0, (1 << imm) - 1)
        return Scalar.unsigned(0, (1 << imm) - 1) if imm < 64 else Scalar()
    if op in (isa.DIV, isa.MOD) and off == 1:
        return full
    if is64 and op in (isa.ADD, isa.SUB):
        return _make(*_sum(op, a, b), *_signed_sum(op, a, b)) or full
    if op == isa.NEG:
        if is64 and a.smin > S64_MIN:
            return Scalar.signed(-a.smax, -a.smin)
        return full
    if op == isa.ARSH:
        if b.is_const or b.umax < bits:
            k_lo, k_hi = b.umin & (bits - 1), b.umax & (bits - 1)
            if is64:
                return Scalar.signed(min(a.smin >> k_lo, a.smin >> k_hi), max(a.smax >> k_lo, a.smax >> k_hi))
            if a.umax < 1 << 31:  # non-negative as a 32-bit value: same as rsh
                return Scalar.unsigned(a.umin >> k_hi, a.umax >> k_lo)
        return full
    rng = _unsigned_op(op, bits, a, b)
    return full if rng is None else Scalar.unsigned(*rng)


def _sum(op: int, a: Scalar, b: Scalar) -> tuple[int, int]:
    rng = _unsigned_op(op, 64, a, b)
    return (0, M64) if rng is None else rng


def _signed_sum(op: int, a: Scalar, b: Scalar) -> tuple[int, int]:
    if op == isa.ADD:
        lo, hi = a.smin + b.smin, a.smax + b.smax
    else:
        lo, hi = a.smin - b.smax, a.smax - b.smin
    if S64_MIN <= lo and hi <= S64_MAX:
        return lo, hi
    return S64_MIN, S64_MAX


# ---------------------------------------------------------------------------
# Branch refinement.

_SWAPPED = {
    isa.JGT: isa.JLT, isa.JGE: isa.JLE, isa.JLT: isa.JGT, isa.JLE: isa.JGE,
    isa.JSGT: isa.JSLT, isa.JSGE: isa.JSLE, isa.JSLT: isa.JSGT, isa.JSLE: isa.JSGE,
    isa.JEQ: isa.JEQ, isa.JNE: isa.JNE, isa.JSET: isa.JSET,
}
_NEGATED = {
    isa.JEQ: isa.JNE, isa.JNE: isa.JEQ, isa.JGT: isa.JLE, isa.JLE: isa.JGT,
    isa.JGE: isa.JLT, isa.JLT: isa.JGE, isa.JSGT: isa.JSLE, isa.JSLE: isa.JSGT,
    isa.JSGE: isa.JSLT, isa.JSLT: isa.JSGE,
}


def refine(op: int, is64: bool, a: Scalar, b: Scalar, taken: bool) -> tuple[Scalar, Scalar] | None:
    """Narrow ``a`` and ``b`` to the values for which the branch goes the
    given way; None when it cannot."""
    if not is64:
        a32, b32 = a.low32(), b.low32()
        if a32.is_const and b32.is_const:
            return (a, b) if concrete_jump(op, False, a32.value, b32.value) == taken else None
        if a.umax < 1 << 31 and b.umax < 1 << 31:  # same order in 32 and 64 bits
            return refine(op, True, a, b, taken)
        return a, b
    if a.is_const and b.is_const:
        return (a, b) if concrete_jump(op, True, a.value, b.value) == taken else None
    if op == isa.JSET:
        return a, b
    if not taken:
        op = _NEGATED[op]
    return _narrow(op, a, b)


def _narrow(op: int, a: Scalar, b: Scalar) -> tuple[Scalar, Scalar] | None:
    if op in (isa.JLT, isa.JLE, isa.JSLT, isa.JSLE):
        swapped = _narrow(_SWAPPED[op], b, a)
        return None if swapped is None else (swapped[1], swapped[0])
    au, bu = [a.umin, a.umax, a.smin, a.smax], [b.umin, b.umax, b.smin, b.smax]
    if op == isa.JEQ:
        lo_u, hi_u = max(a.umin, b.umin), min(a.umax, b.umax)
        lo_s, hi_s = max(a.smin, b.smin), min(a.smax, b.smax)
        au = bu = [lo_u, hi_u, lo_s, hi_s]
    elif op == isa.JNE:
        for x, y in ((au, b), (bu, a)):
            if y.is_const:  # shave an excluded constant off an end of the range
                if x[0] == y.umin:
                    x[0] += 1
                elif x[1] == y.umin:
                    x[1] -= 1
                if x[2] == y.smin:
                    x[2] += 1
                elif x[3] == y.smin:
                    x[3] -= 1
    else:  # JGT, JGE, JSGT, JSGE: a > b (or >=)
        strict = 1 if op in (isa.JGT, isa.JSGT) else 0
        i = 0 if op in (isa.JGT, isa.JGE) else 2
        au[i] = max(au[i], bu[i] + strict)
        bu[i + 1] = min(bu[i + 1], au[i + 1] - strict)
    na, nb = _make(*au, a.ctx_len), _make(*bu, b.ctx_len)
    if na is None or nb is None:
        return None
    return na, nb
