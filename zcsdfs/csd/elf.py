"""Loader for eBPF objects from ``clang -O2 -target bpf -c`` (pyelftools).

An object is relocatable: its code still has holes the loader must fill.
Two relocation types matter (and the loader refuses any other):

- ``R_BPF_64_64`` on an ``lddw``: the address of a data object
  (``.rodata*``, ``.data*``, ``.bss``). We rewrite it into the VM's own
  ``lddw`` form (``src = isa.LDDW_SECTION``: section index, byte offset), so
  kernels can use constant tables and strings. The byte offset is the
  symbol's value plus the addend clang left in the ``lddw`` immediate.
- ``R_BPF_64_32`` on a ``call``: a call to a global function; clang emits
  ``call -1`` and the target is ``symbol value / 8 + imm + 1`` in the
  symbol's section. Calls to static functions need no relocation: clang
  writes the pc-relative target directly.

The program starts at its entry function, so the loader lays the code out
as libbpf does: the entry function first, then every function a call reaches
from it, in any code section (shared functions live in ``.text`` while
programs live in named sections such as ``csd/read_stream``); functions
nothing calls are left out. Call and jump offsets are rewritten for the new
layout, and the program carries only the data sections its code addresses.
"""

from __future__ import annotations

import io

import attrs
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from zcsdfs.csd import isa
from zcsdfs.csd.errors import ElfError
from zcsdfs.csd.program import Program, Section

EM_BPF = 247
R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_32 = 10


def load_elf(data: bytes, *, name: str | None = None, section: str | None = None) -> Program:
    """The program in an eBPF object.

    ``name`` picks the entry function, ``section`` the section holding it;
    without either, the object must hold a single program (one code section
    besides ``.text``, or ``.text`` alone with one global function).
    Anything the loader cannot use raises :class:`ElfError` (ENOEXEC).
    """
    data = bytes(data)
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF object (bad magic)")
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or not elf.little_endian:
            raise ElfError("not a 64-bit little-endian ELF object")
        if elf["e_machine"] != "EM_BPF" and elf["e_machine"] != EM_BPF:
            raise ElfError(f"ELF machine is {elf['e_machine']}, not BPF")
        return _Linker(elf, len(data)).link(name, section)
    except ELFError as e:
        raise ElfError(f"malformed ELF object: {e}") from e


class _Linker:
    """One object's code sections, symbols and relocations, linked into a Program."""

    def __init__(self, elf: ELFFile, size: int):
        self.elf = elf
        self.size = size
        self.code: dict[int, list[isa.Instruction]] = {}
        self.relocs: dict[int, dict[int, tuple[int, dict]]] = {}
        sections = list(elf.iter_sections())
        for index, sec in enumerate(sections):
            if sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and sec["sh_size"]:
                text = self._contents(sec)
                if len(text) % isa.SLOT:
                    raise ElfError(f"section {sec.name}: length {len(text)} is not a multiple of {isa.SLOT}")
                self.code[index] = isa.decode(text)
        symtab = elf.get_section_by_name(".symtab")
        self.symbols = list(symtab.iter_symbols()) if symtab is not None else []
        for sec in sections:
            if sec["sh_type"] == "SHT_RELA" and sec["sh_info"] in self.code:
                raise ElfError(f"section {sec.name}: RELA relocations are not used by BPF objects")
            if sec["sh_type"] == "SHT_REL" and sec["sh_info"] in self.code:
                self.relocs[sec["sh_info"]] = self._relocations(sec, sec["sh_info"])

    def _contents(self, sec) -> bytes:
        if sec["sh_offset"] + sec["sh_size"] > self.size:
            raise ElfError(f"section {sec.name}: extends past the end of the object (truncated?)")
        return sec.data()

    def _relocations(self, rel, target: int) -> dict[int, tuple[int, dict]]:
        """Slot -> (type, symbol) of one code section's relocations."""
        limit = len(self.code[target]) * isa.SLOT
        table = {}
        for entry in rel.iter_relocations():
            kind, offset = entry["r_info_type"], entry["r_offset"]
            if kind == R_BPF_NONE:
                continue
            where = f"{self.elf.get_section(target).name}+{offset:#x}"
            if kind not in (R_BPF_64_64, R_BPF_64_32):
                raise ElfError(f"relocation at {where}: unsupported type {kind}")
            if offset % isa.SLOT or offset >= limit:
                raise ElfError(f"relocation at {where}: outside the instructions")
            if entry["r_info_sym"] >= len(self.symbols):
                raise ElfError(f"relocation at {where}: symbol index {entry['r_info_sym']} out of range")
            table[offset // isa.SLOT] = (kind, self.symbols[entry["r_info_sym"]])
        return table

    # -- choosing the entry --------------------------------------------------

    def _functions(self, index: int) -> list:
        return [s for s in self.symbols if s["st_info"]["type"] == "STT_FUNC" and s["st_shndx"] == index]

    def _entry(self, name: str | None, section: str | None) -> tuple[int, int, str]:
        """(code section, first slot, program name) of the entry function."""
        if name is not None:
            for sym in self.symbols:
                if sym.name == name and sym["st_info"]["type"] == "STT_FUNC" and sym["st_shndx"] in self.code:
                    index = sym["st_shndx"]
                    if section is not None and self.elf.get_section(index).name != section:
                        raise ElfError(f"function {name} is in section {self.elf.get_section(index).name}, not {section}")
                    return index, self._slot(sym), name
            raise ElfError(f"no function named {name}")
        if section is not None:
            matches = [i for i in self.code if self.elf.get_section(i).name == section]
            if not matches:
                raise ElfError(f"no code section named {section}")
            index = matches[0]
        else:
            named = [i for i in self.code if self.elf.get_section(i).name != ".text"]
            candidates = named or list(self.code)
            if len(candidates) != 1:
                listed = ", ".join(self.elf.get_section(i).name for i in candidates) or "none"
                raise ElfError(f"expected one program section, found: {listed}; pass section= or name=")
            index = candidates[0]
        sec_name = self.elf.get_section(index).name
        globals_ = [s for s in self._functions(index) if s["st_info"]["bind"] == "STB_GLOBAL"]
        if len(globals_) > 1:
            listed = ", ".join(s.name for s in globals_)
            raise ElfError(f"section {sec_name} holds several functions ({listed}); pass name=")
        if globals_:
            return index, self._slot(globals_[0]), globals_[0].name
        return index, 0, sec_name

    def _slot(self, sym) -> int:
        if sym["st_value"] % isa.SLOT or sym["st_value"] // isa.SLOT >= len(self.code[sym["st_shndx"]]):
            raise ElfError(f"symbol {sym.name}: value {sym['st_value']:#x} is not an instruction")
        return sym["st_value"] // isa.SLOT

    # -- linking ---------------------------------------------------------------

    def link(self, name: str | None, section: str | None) -> Program:
        if not self.code:
            raise ElfError("no code section in the object")
        index, start, prog_name = self._entry(name, section)
        pieces = [self._function(index, start)]
        place: dict[tuple[int, int], int] = {}
        done = 0
        while done < len(pieces):
            sec, a, b = pieces[done]
            for slot in range(a, b):
                place[(sec, slot)] = len(place)
            for slot in range(a, b):
                target = self._call_target(sec, slot)
                if target is not None and self._function(*target) not in pieces:
                    pieces.append(self._function(*target))
            done += 1
        data_index = self._data_sections(place)
        insns: list[isa.Instruction] = [isa.Instruction(0)] * len(place)
        for (sec, slot), pc in place.items():
            insns[pc] = self._relocate(sec, slot, pc, place, data_index)
        sections = [self._data_section(i) for i in data_index]
        return Program(insns, sections, name=prog_name)

    def _function(self, index: int, slot: int) -> tuple[int, int, int]:
        """(section, first slot, end slot) of the function holding ``slot``: from
        its symbol to the next function's (the whole section without symbols)."""
        starts = sorted({0} | {s["st_value"] // isa.SLOT for s in self._functions(index)})
        first = max(s for s in starts if s <= slot)
        return index, first, next((s for s in starts if s > slot), len(self.code[index]))

    def _call_target(self, sec: int, slot: int) -> tuple[int, int] | None:
        """(section, slot) a local call at ``sec:slot`` goes to; None if not a local call."""
        insn = self.code[sec][slot]
        if insn.opcode != isa.JMP | isa.CALL:
            return None
        where = f"{self.elf.get_section(sec).name}+{slot * isa.SLOT:#x}"
        reloc = self.relocs.get(sec, {}).get(slot)
        if reloc is not None:
            kind, sym = reloc
            if kind != R_BPF_64_32:
                raise ElfError(f"relocation at {where}: type {kind} on a call")
            target_sec = self._defined(sym, where)
            if target_sec not in self.code:
                raise ElfError(f"call at {where}: symbol {sym.name or '?'} is not code")
            if sym["st_value"] % isa.SLOT:
                raise ElfError(f"call at {where}: symbol {sym.name} is not an instruction")
            target = (target_sec, sym["st_value"] // isa.SLOT + insn.imm + 1)
        elif insn.src == isa.CALL_LOCAL:
            target = (sec, slot + insn.imm + 1)
        else:
            return None
        if not 0 <= target[1] < len(self.code[target[0]]):
            raise ElfError(f"call at {where}: target outside section {self.elf.get_section(target[0]).name}")
        return target

    def _defined(self, sym, where: str) -> int:
        shndx = sym["st_shndx"]
        if not isinstance(shndx, int) or shndx == 0:
            raise ElfError(f"relocation at {where}: unknown symbol {sym.name or '?'} ({shndx})")
        return shndx

    def _data_sections(self, place) -> list[int]:
        """ELF indices of the data sections the linked code addresses, in ELF order."""
        found = set()
        for sec, slot in place:
            kind, sym = self.relocs.get(sec, {}).get(slot, (None, None))
            if kind == R_BPF_64_64:
                found.add(self._data_target(sec, slot, sym))
        return sorted(found)

    def _data_target(self, sec: int, slot: int, sym) -> int:
        where = f"{self.elf.get_section(sec).name}+{slot * isa.SLOT:#x}"
        code = self.code[sec]
        if not code[slot].is_lddw or slot + 1 >= len(code):
            raise ElfError(f"relocation at {where}: R_BPF_64_64 on an instruction that is not lddw")
        index = self._defined(sym, where)
        target = self.elf.get_section(index)
        flags = target["sh_flags"]
        if not flags & SH_FLAGS.SHF_ALLOC or flags & SH_FLAGS.SHF_EXECINSTR:
            raise ElfError(f"relocation at {where}: {target.name} is not a data section")
        if target["sh_type"] not in ("SHT_PROGBITS", "SHT_NOBITS"):
            raise ElfError(f"relocation at {where}: {target.name} has type {target['sh_type']}")
        if target.name == ".maps" or target.name.startswith("maps"):
            raise ElfError(f"relocation at {where}: BPF maps are not supported")
        return index

    def _data_section(self, index: int) -> Section:
        sec = self.elf.get_section(index)
        writable = bool(sec["sh_flags"] & SH_FLAGS.SHF_WRITE)
        if sec["sh_type"] == "SHT_NOBITS":
            return Section(sec.name, bytes(sec["sh_size"]), writable=True)
        return Section(sec.name, self._contents(sec), writable=writable)

    def _relocate(self, sec, slot, pc, place, data_index) -> isa.Instruction:
        """The instruction at ``sec:slot``, placed at ``pc``, with its holes filled."""
        code = self.code[sec]
        insn = code[slot]
        reloc = self.relocs.get(sec, {}).get(slot)
        if reloc is not None and reloc[0] == R_BPF_64_64:
            index = self._data_target(sec, slot, reloc[1])
            offset = reloc[1]["st_value"] + isa.lddw_value(insn, code[slot + 1])
            size = self.elf.get_section(index)["sh_size"]
            if offset > size:
                raise ElfError(f"relocation at {self.elf.get_section(sec).name}+{slot * isa.SLOT:#x}: "
                               f"offset {offset} beyond {self.elf.get_section(index).name} ({size} bytes)")
            return isa.Instruction(insn.opcode, insn.dst, isa.LDDW_SECTION, insn.off, data_index.index(index))
        if slot > 0 and code[slot - 1].is_lddw:
            return self._lddw_second(sec, slot, insn)
        target = self._call_target(sec, slot)
        if target is not None:
            return attrs.evolve(insn, src=isa.CALL_LOCAL, imm=place[target] - pc - 1)
        if insn.cls in (isa.JMP, isa.JMP32) and insn.op not in (isa.CALL, isa.EXIT):
            return self._jump(sec, slot, insn, pc, place)
        return insn

    def _lddw_second(self, sec, slot, insn) -> isa.Instruction:
        """The second slot of an lddw: the byte offset when the first was relocated."""
        code = self.code[sec]
        reloc = self.relocs.get(sec, {}).get(slot - 1)
        if reloc is None or reloc[0] != R_BPF_64_64:
            return insn
        offset = reloc[1]["st_value"] + isa.lddw_value(code[slot - 1], insn)
        return isa.Instruction(0, 0, 0, 0, isa.to_s32(offset))

    def _jump(self, sec, slot, insn, pc, place) -> isa.Instruction:
        """A jump with its offset rewritten for the new layout (unchanged if out of the section)."""
        wide = insn.cls == isa.JMP32 and insn.op == isa.JA
        delta = insn.imm if wide else insn.off
        new_target = place.get((sec, slot + delta + 1))
        if new_target is None:
            return insn  # the verifier refuses a jump out of the program
        delta = new_target - pc - 1
        if wide:
            return attrs.evolve(insn, imm=delta)
        if not -(1 << 15) <= delta < 1 << 15:
            raise ElfError(f"jump at {self.elf.get_section(sec).name}+{slot * isa.SLOT:#x}: too far after layout")
        return attrs.evolve(insn, off=delta)


def program_sections(data: bytes) -> dict[str, list[str]]:
    """Code section name -> the global functions defined in it, in symbol order.

    What a registry needs to pick an entry by kind (the section name says it,
    as ``SEC("csd/read_stream")`` does) before linking it with :func:`load_elf`.
    """
    data = bytes(data)
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF object (bad magic)")
    try:
        elf = ELFFile(io.BytesIO(data))
        sections = {}
        for sec in elf.iter_sections():
            if sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and sec["sh_size"]:
                sections[sec.name] = []
        symtab = elf.get_section_by_name(".symtab")
        for sym in symtab.iter_symbols() if symtab is not None else ():
            if (sym["st_info"]["type"] == "STT_FUNC" and sym["st_info"]["bind"] == "STB_GLOBAL"
                    and isinstance(sym["st_shndx"], int)):
                name = elf.get_section(sym["st_shndx"]).name
                if name in sections:
                    sections[name].append(sym.name)
        return sections
    except ELFError as e:
        raise ElfError(f"malformed ELF object: {e}") from e
