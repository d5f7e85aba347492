"""Running the bpf_conformance suite (``.data`` files) against our engines.

A ``.data`` file is a set of sections opened by ``-- NAME`` lines (see
``shared/conformance/README.md``): ``asm`` (the program), ``raw`` (its
expected encoding, or the program itself when there is no ``asm``), ``mem``
(input bytes), ``result`` (r0 after exit) and ``error`` (the program must be
refused at assembly or load time).

Which tests apply is decided from the program itself: a program that uses an
instruction of a group we do not implement (callx, the legacy packet loads)
is reported as skipped with that reason. Files under a ``negative``
directory are programs a runtime must not accept: such a test passes when
the program is refused, or when it runs but does not produce the stated
result. Outside ``negative``, a file that holds no program fails, whatever
it expects (it tests nothing), and a directory with no ``.data`` file is an
error.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import attrs

from zcsdfs.csd import engine as engines
from zcsdfs.csd import isa
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.errors import AssemblyError, ProgramRefused, RuntimeFault
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret
from zcsdfs.csd.program import Program

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
ENGINE_CHOICES = ("interp", "jit", "both")
UNWIND_HELPER = 5


def _unwind(vm, r1, r2, r3, r4, r5) -> int:
    """The suite's helper 5: returns r1, and stops the program when r1 is 0."""
    if r1 == 0:
        vm.stop(0)
    return r1


def suite_helpers() -> HelperSet:
    """The helpers the conformance programs call."""
    return HelperSet((Helper(UNWIND_HELPER, "unwind", (Arg.ANYTHING,), Ret.INTEGER, _unwind),))


@attrs.frozen
class DataFile:
    """The sections of one ``.data`` file."""

    path: Path
    sections: dict[str, str]
    first_lines: dict[str, int]  # section -> file line number of its first body line

    @property
    def negative(self) -> bool:
        return "negative" in self.path.parts

    @property
    def result(self) -> int | None:
        text = _strip_comments(self.sections.get("result", "")).strip()
        return int(text, 0) & 0xFFFFFFFFFFFFFFFF if text else None

    @property
    def mem(self) -> bytes | None:
        if "mem" not in self.sections:
            return None
        return bytes.fromhex("".join(_strip_comments(self.sections["mem"]).split()))

    @property
    def raw(self) -> bytes | None:
        """The ``raw`` section: lines of hex bytes, or one 64-bit word (``0x...``) per line."""
        if "raw" not in self.sections:
            return None
        code = bytearray()
        for line in _strip_comments(self.sections["raw"]).splitlines():
            tokens = line.split()
            if len(tokens) == 1 and tokens[0].lower().startswith("0x"):
                code += int(tokens[0], 16).to_bytes(8, "little")
            elif tokens:
                code += bytes.fromhex("".join(tokens))
        return bytes(code)

    @property
    def has_program(self) -> bool:
        """False when neither ``asm`` (with an instruction) nor ``raw`` holds anything."""
        return bool(_strip_comments(self.sections.get("asm", "")).strip() or self.raw)

    def program(self) -> Program:
        """The program from ``asm`` (line numbers as in the file), else from ``raw``."""
        if "asm" in self.sections:
            padding = "\n" * (self.first_lines["asm"] - 1)
            return assemble(padding + self.sections["asm"], filename=str(self.path))
        raw = self.raw
        if raw:
            return Program.from_bytes(raw, name=self.path.stem)
        raise AssemblyError("the file holds no program (no asm or raw section)", filename=str(self.path))


def parse_data(path: str | Path) -> DataFile:
    """Split a ``.data`` file into its sections."""
    path = Path(path)
    sections: dict[str, list[str]] = {}
    first_lines: dict[str, int] = {}
    current = None
    for number, line in enumerate(path.read_text().splitlines(keepends=True), start=1):
        if line.startswith("-- "):
            current = line[3:].strip()
            sections[current] = []
            first_lines[current] = number + 1
        elif current is not None:
            sections[current].append(line)
    return DataFile(path, {k: "".join(v) for k, v in sections.items()}, first_lines)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


@attrs.frozen
class Outcome:
    """The result of one test file on one engine."""

    test: str
    engine: str
    status: str
    reason: str = ""


def skip_reason(program: Program) -> str | None:
    """Why the program is outside the groups we implement, or None if it applies."""
    for insn in program.insns:
        if insn.opcode == isa.JMP | isa.X | isa.CALL:
            return "uses callx (call through a register): conformance group callx is not implemented"
        if insn.cls in (isa.LD, isa.LDX) and insn.mode in (isa.ABS, isa.IND):
            return "uses legacy packet loads: conformance group packet is not implemented"
    return None


@attrs.frozen
class _Attempt:
    """What happened to one program, before judging it against the file."""

    kind: str  # "refused", "skipped", "fault" or "ran"
    reason: str = ""
    r0: int | None = None


def run_test(data: DataFile, engine: str, name: str | None = None) -> Outcome:
    """Run one file on one engine ("interp" or "jit") and judge the result."""
    name = name or str(data.path)
    if not data.has_program:
        if data.negative:  # the suite's own "an empty program must be refused" tests
            return Outcome(name, engine, PASSED, "no program: nothing a runtime could accept")
        return Outcome(name, engine, FAILED, "the file holds no program (no asm or raw section with code)")
    attempt = _attempt(data, engine)
    if attempt.kind == "skipped":
        return Outcome(name, engine, SKIPPED, attempt.reason)
    judge = _judge_negative if data.negative else _judge_positive
    status, reason = judge(data, attempt)
    return Outcome(name, engine, status, reason)


def _judge_positive(data: DataFile, attempt: _Attempt) -> tuple[str, str]:
    expect_error = "error" in data.sections
    if attempt.kind == "refused":
        return (PASSED if expect_error else FAILED), attempt.reason
    if attempt.kind == "fault":
        return FAILED, attempt.reason
    if expect_error:
        return FAILED, f"expected the program to be refused, but it ran (r0 = {attempt.r0:#x})"
    if data.result is None:
        return FAILED, f"no result section (r0 = {attempt.r0:#x})"
    if attempt.r0 != data.result:
        return FAILED, f"r0 = {attempt.r0:#x}, expected {data.result:#x}"
    return PASSED, ""


def _judge_negative(data: DataFile, attempt: _Attempt) -> tuple[str, str]:
    """A negative test passes unless the program ran and did what the file claims."""
    if attempt.kind != "ran":
        return PASSED, attempt.reason
    if "error" not in data.sections and attempt.r0 == data.result:
        return FAILED, f"negative test accepted: the program ran and returned {attempt.r0:#x}"
    if "error" in data.sections:
        return FAILED, f"negative test accepted: the program ran (r0 = {attempt.r0:#x})"
    return PASSED, f"r0 = {attempt.r0:#x} differs from the stated {data.result:#x}"


def _attempt(data: DataFile, engine: str) -> _Attempt:
    try:
        program = data.program()
    except AssemblyError as exc:
        return _Attempt("refused", f"refused by the assembler: {exc.strerror}")
    reason = skip_reason(program)
    if reason is not None:
        return _Attempt("skipped", reason)
    raw = data.raw
    if raw is not None and "asm" in data.sections and raw != program.code:
        return _Attempt("refused", "assembled code differs from the raw section")
    try:
        loaded = engines.load(program, suite_helpers(), engine=engine)
    except ProgramRefused as exc:
        return _Attempt("refused", f"refused at load: {exc.strerror}")
    try:
        r0 = loaded.run(data.mem)
    except RuntimeFault as exc:
        return _Attempt("fault", f"runtime fault: {exc.strerror}")
    return _Attempt("ran", r0=r0)


def engine_list(choice: str) -> tuple[str, ...]:
    if choice not in ENGINE_CHOICES:
        raise ValueError(f"unknown engine {choice!r}; choose one of {', '.join(ENGINE_CHOICES)}")
    return engines.ENGINES if choice == "both" else (choice,)


def test_files(directory: str | Path) -> list[Path]:
    """Every ``.data`` file under ``directory``, recursively, in order; none is an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(directory))
    files = sorted(directory.rglob("*.data"))
    if not files:
        raise FileNotFoundError(errno.ENOENT, "no conformance tests (.data files) here", str(directory))
    return files


def run_directory(directory: str | Path, engine: str = "interp",
                  progress: Callable[[Path], None] | None = None) -> list[Outcome]:
    """Every ``.data`` file under ``directory`` (recursively), on each chosen
    engine; ``progress(path)`` is called after each file."""
    directory = Path(directory)
    engines_ = engine_list(engine)
    outcomes = []
    for path in test_files(directory):
        data = parse_data(path)
        name = str(path.relative_to(directory))
        for each in engines_:
            outcomes.append(run_test(data, each, name))
        if progress is not None:
            progress(path)
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    """``N passed, N failed, N skipped``."""
    counts = {status: sum(o.status == status for o in outcomes) for status in (PASSED, FAILED, SKIPPED)}
    return f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"
