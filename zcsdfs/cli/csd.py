"""``zcsdfs kernel ...``: assemble, disassemble, verify and run eBPF programs.

PROGRAM arguments accept an ELF object (from ``clang -target bpf``), a
conformance ``.data`` file, raw bytecode (what ``kernel asm -o`` writes) or
assembly text; the content decides, not the file name. Programs run with
the conformance suite's helper 5 (unwind) and the storage helpers.
"""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

from rich.console import Console
from rich_argparse import RichHelpFormatter

from zcsdfs.cli import subcommand
from zcsdfs.csd import conformance, engine, stdlib, verifier
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.disasm import disassemble
from zcsdfs.csd.elf import load_elf
from zcsdfs.csd.errors import BpfError
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.program import Program

out = Console(highlight=False, soft_wrap=True)


def register(sub) -> None:
    about = "eBPF kernels: assemble, disassemble, verify, run, conformance"
    kernel = sub.add_parser("kernel", help=about, description=about, formatter_class=RichHelpFormatter)
    ksub = kernel.add_subparsers(dest="kernel_command", metavar="ACTION", required=True)

    p = subcommand(ksub, "asm", "assemble a program into eBPF bytecode", cmd_asm)
    p.add_argument("source", metavar="SOURCE", help="assembly text (or a .data file)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the bytecode here (default: print it, one slot per line)")

    p = subcommand(ksub, "disasm", "print a program as assembly text", cmd_disasm)
    _program_arguments(p)

    p = subcommand(ksub, "verify", "run the verifier on a program", cmd_verify)
    _program_arguments(p)

    p = subcommand(ksub, "run", "verify and run a program; prints r0 in hex", cmd_run)
    _program_arguments(p)
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--mem", metavar="HEX", help="input memory as hex bytes")
    mem.add_argument("--mem-file", metavar="FILE", help="input memory from a file")
    p.add_argument("--engine", choices=engine.ENGINES, default="interp")

    p = subcommand(ksub, "conformance", "run every .data file under DIR", cmd_conformance)
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--engine", choices=conformance.ENGINE_CHOICES, default="interp")


def _program_arguments(p) -> None:
    p.add_argument("program", metavar="PROGRAM")
    p.add_argument("--section", metavar="NAME",
                   help="for an ELF object holding several programs: the section of the one to use")


def cli_helpers() -> HelperSet:
    """The conformance unwind helper plus the storage helpers."""
    helpers = stdlib.storage_helpers()
    for helper in conformance.suite_helpers():
        helpers.register(helper)
    return helpers


@contextlib.contextmanager
def _naming(path: str):
    """Errors about the program name its file, so the one-line message says which."""
    try:
        yield
    except BpfError as exc:
        if exc.filename is None:
            exc.filename = path
        raise


def read_program(path: str, section: str | None = None) -> tuple[Program, bytes | None]:
    """The program in ``path`` and, for a ``.data`` file, its input memory."""
    with _naming(path):
        return _read_program(path, section)


def _read_program(path: str, section: str | None) -> tuple[Program, bytes | None]:
    data = Path(path).read_bytes()
    if data.startswith(b"\x7fELF"):
        return load_elf(data, section=section), None
    if b"\0" in data:
        return Program.from_bytes(_whole_slots(data, path), name=Path(path).stem), None
    text = data.decode("utf-8", errors="replace")
    if any(line.startswith("-- ") for line in text.splitlines()):
        test = conformance.parse_data(path)
        return test.program(), test.mem
    return assemble(text, filename=path), None


def _whole_slots(data: bytes, path: str) -> bytes:
    if len(data) % 8:
        raise OSError(errno.ENOEXEC, f"bytecode length {len(data)} is not a multiple of 8", path)
    return data


def cmd_asm(args) -> int:
    program, _ = read_program(args.source)
    if args.output:
        Path(args.output).write_bytes(program.code)
        return 0
    for insn in program.insns:
        out.print(insn.encode().hex(" "), markup=False)
    return 0


def cmd_disasm(args) -> int:
    program, _ = read_program(args.program, args.section)
    out.print(disassemble(program), end="", markup=False)
    return 0


def cmd_verify(args) -> int:
    program, _ = read_program(args.program, args.section)
    with _naming(args.program):
        verdict = verifier.verify(program, cli_helpers())
    checks = len(verdict.checked)
    out.print(f"{args.program}: accepted, {len(program)} slots, "
              f"{checks} memory access{'es' if checks != 1 else ''} checked at run time", markup=False)
    return 0


def cmd_run(args) -> int:
    program, mem = read_program(args.program, args.section)
    if args.mem is not None:
        mem = _parse_hex(args.mem)
    elif args.mem_file is not None:
        mem = Path(args.mem_file).read_bytes()
    with _naming(args.program):
        loaded = engine.load(program, cli_helpers(), engine=args.engine)
        r0 = loaded.run(mem)
    out.print(f"{r0:#x}", markup=False)
    return 0


def _parse_hex(text: str) -> bytes:
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise OSError(errno.EINVAL, f"--mem: {text!r} is not hex bytes") from None


def cmd_conformance(args) -> int:
    outcomes = conformance.run_directory(args.directory, args.engine)
    for o in outcomes:
        if o.status == conformance.FAILED:
            out.print(f"FAILED {o.test} [{o.engine}]: {o.reason}", markup=False)
        elif o.status == conformance.SKIPPED:
            out.print(f"skipped {o.test} [{o.engine}]: {o.reason}", markup=False)
    out.print(conformance.summary(outcomes), markup=False)
    return 1 if any(o.status == conformance.FAILED for o in outcomes) else 0
