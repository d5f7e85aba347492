"""``zcsdfs kernel ...``: assemble, disassemble, verify and run eBPF programs.

PROGRAM arguments accept an ELF object (from ``clang -target bpf``), a
conformance ``.data`` file, raw bytecode (what ``kernel asm -o`` writes) or
assembly text; the content decides, not the file name. Programs verify and
run with the storage helpers plus the conformance suite's helper 5 (unwind),
or with ``--helpers opencsd`` the storage helpers plus OpenCSD's 1-8. With
``--file`` (or OpenCSD's helpers) ``run`` binds the kernel to a file as the
vfs does (:class:`zcsdfs.csd.Kernel`) and prints its output too. Runs are
bounded by the registry's limits (``--max-insns``, ``--timeout``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich_argparse import RichHelpFormatter

from zcsdfs.cli import subcommand
from zcsdfs.csd import conformance, engine, limits, registry, stdlib, verifier
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.disasm import disassemble
from zcsdfs.csd.elf import load_elf
from zcsdfs.csd.errors import BpfError, ProgramRefused
from zcsdfs.csd.fileview import MemoryFile
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.program import Program

out = Console(highlight=False, soft_wrap=True)
HELPER_SETS = ("zcsdfs", "opencsd")


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
    _helpers_argument(p)
    p.add_argument("--json", action="store_true", help="print the verdict (or the refusal) as JSON")

    p = subcommand(ksub, "run", "verify and run a program; prints r0 in hex", cmd_run)
    _program_arguments(p)
    _helpers_argument(p)
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--mem", metavar="HEX", help="input memory as hex bytes (with --file: the argument blob)")
    mem.add_argument("--mem-file", metavar="FILE", help="input memory from a file")
    p.add_argument("--file", metavar="FILE",
                   help="bind the kernel to this file (what zcsd_read and bpf_read read) and print its output too")
    p.add_argument("--engine", choices=engine.ENGINES, default="interp")
    p.add_argument("--max-insns", type=_positive_int, metavar="N",
                   help=f"instruction budget (default {limits.BASE_BUDGET:,} plus "
                        f"{limits.INSTRUCTIONS_PER_BYTE} per byte of input and file)")
    p.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS",
                   help=f"wall-clock limit (default {limits.BASE_TIMEOUT:g} s plus "
                        f"{limits.SECONDS_PER_BYTE * 1e6:g} us per byte of input and file)")

    p = subcommand(ksub, "conformance", "run every .data file under DIR", cmd_conformance)
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--engine", choices=conformance.ENGINE_CHOICES, default="interp")
    p.add_argument("--json", action="store_true", help="print every outcome and the counts as JSON")


def _program_arguments(p) -> None:
    p.add_argument("program", metavar="PROGRAM")
    p.add_argument("--section", metavar="NAME",
                   help="for an ELF object holding several programs: the section of the one to use")


def _helpers_argument(p) -> None:
    p.add_argument("--helpers", choices=HELPER_SETS, default="zcsdfs",
                   help="zcsdfs: the storage helpers and the conformance suite's helper 5 (default); "
                        "opencsd: the storage helpers and OpenCSD's helpers 1-8")


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def cli_helpers(which: str = "zcsdfs") -> HelperSet:
    """The helpers a program may call: the storage helpers and either the
    conformance unwind helper or OpenCSD's (they share numbers)."""
    if which == "opencsd":
        return registry.kernel_helpers()
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
    try:
        with _naming(args.program):
            verdict = verifier.verify(program, cli_helpers(args.helpers))
    except ProgramRefused as exc:
        if not args.json:
            raise
        _print_json({"program": args.program, "accepted": False, "pc": exc.pc, "reason": exc.reason})
        return 1
    checks = len(verdict.checked)
    if args.json:
        _print_json({"program": args.program, "accepted": True, "slots": len(program),
                     "checked": sorted(verdict.checked), "unreachable": sorted(verdict.unreachable),
                     "functions": list(verdict.functions), "stack_depth": dict(verdict.stack_depth),
                     "processed": verdict.processed})
        return 0
    out.print(f"{args.program}: accepted, {len(program)} slots, "
              f"{checks} memory access{'es' if checks != 1 else ''} checked at run time", markup=False)
    return 0


def _print_json(value) -> None:
    print(json.dumps(value, indent=2))


def cmd_run(args) -> int:
    program, mem = read_program(args.program, args.section)
    if args.mem is not None:
        mem = _parse_hex(args.mem)
    elif args.mem_file is not None:
        mem = Path(args.mem_file).read_bytes()
    data = Path(args.file).read_bytes() if args.file is not None else None
    run_limits = limits.for_bytes(len(mem or b"") + len(data or b""), max_insns=args.max_insns,
                                  timeout=args.timeout)
    with _naming(args.program):
        if data is not None or args.helpers == "opencsd":
            kernel = registry.Kernel(program, name=program.name, kind=registry.DEFAULT_KIND, engine=args.engine)
            call = kernel.call(MemoryFile([data or b""]), args=mem or b"", budget=run_limits.max_insns,
                               timeout=run_limits.timeout)
            out.print(f"{call.status:#x}", markup=False)
            if call.output:
                out.print(f"output {call.output.hex()}", markup=False)
            return 0
        loaded = engine.load(program, cli_helpers(args.helpers), engine=args.engine)
        r0 = loaded.run(mem, budget=run_limits.max_insns, timeout=run_limits.timeout)
    out.print(f"{r0:#x}", markup=False)
    return 0


def _parse_hex(text: str) -> bytes:
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise OSError(errno.EINVAL, f"--mem: {text!r} is not hex bytes") from None


def cmd_conformance(args) -> int:
    files = conformance.test_files(args.directory)
    with _progress(len(files), "conformance") as advance:
        outcomes = conformance.run_directory(args.directory, args.engine, progress=advance)
    failed = any(o.status == conformance.FAILED for o in outcomes)
    if args.json:
        counts = {status: sum(o.status == status for o in outcomes)
                  for status in (conformance.PASSED, conformance.FAILED, conformance.SKIPPED)}
        _print_json({"directory": args.directory, "engine": args.engine, **counts,
                     "tests": [{"test": o.test, "engine": o.engine, "status": o.status, "reason": o.reason}
                               for o in outcomes]})
        return 1 if failed else 0
    for o in outcomes:
        if o.status == conformance.FAILED:
            out.print(f"FAILED {o.test} [{o.engine}]: {o.reason}", markup=False)
        elif o.status == conformance.SKIPPED:
            out.print(f"skipped {o.test} [{o.engine}]: {o.reason}", markup=False)
    out.print(conformance.summary(outcomes), markup=False)
    return 1 if failed else 0


@contextlib.contextmanager
def _progress(total: int, what: str):
    """A progress bar on stderr when it is a terminal; yields the per-item callback (or None)."""
    err = Console(stderr=True)
    if not err.is_terminal:
        yield None
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda _path: progress.advance(task)

