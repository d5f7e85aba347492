"""A loaded eBPF program: its instructions plus the data sections it may address."""

from __future__ import annotations

import functools
import hashlib

import attrs

from zcsdfs.csd import isa


@attrs.frozen
class Section:
    """A data section (``.rodata``, ``.data``, ``.bss``) addressed through lddw.

    Each run starts from a fresh copy of ``data``, so a program that writes to
    ``.data`` cannot leak state from one run into the next.
    """

    name: str
    data: bytes
    writable: bool = False


@attrs.frozen
class Program:
    """Instructions (one per 8-byte slot) and the sections they reference."""

    insns: tuple[isa.Instruction, ...] = attrs.field(converter=tuple)
    sections: tuple[Section, ...] = attrs.field(default=(), converter=tuple)
    name: str = "program"

    @classmethod
    def from_bytes(cls, code: bytes, name: str = "program") -> "Program":
        return cls(isa.decode(code), name=name)

    @property
    def code(self) -> bytes:
        return isa.encode(self.insns)

    @functools.cached_property
    def digest(self) -> str:
        """Content hash: the key under which compiled code is cached."""
        h = hashlib.sha256(self.code)
        for s in self.sections:
            h.update(b"\0%s\0%d\0" % (s.name.encode(), s.writable))
            h.update(s.data)
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.insns)
