"""The ``zcsdfs`` command line.

Every command lives in this package, one module per group, each with a
``register(subparsers)`` function; the layers hold none, so ``import zcsdfs``
never loads argparse or rich. This file assembles them and holds what every
command shares:

- one error convention: a mistake the user can make is an ``OSError``, printed
  as one line ``zcsdfs: MESSAGE`` on stderr with exit status 1 (usage errors
  are argparse's, status 2; an interrupt is 130); never a traceback;
- help: a description and examples on every command and group (``EXAMPLES``
  fills in any a module did not give), ``zcsdfs --version``;
- ``--json`` output for scripts (``print_json``) and progress bars on stderr,
  shown only on a terminal (``progress``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shutil
import sys
import textwrap
from importlib import metadata

from rich.console import Console
from rich_argparse import RawDescriptionRichHelpFormatter

# Modules that add subcommands, in the order their help lists them.
COMMAND_MODULES = (
    "zcsdfs.cli.demo",
    "zcsdfs.cli.zns",
    "zcsdfs.cli.lfs",
    "zcsdfs.cli.csd",
    "zcsdfs.cli.bench",
    "zcsdfs.cli.fuse",
    "zcsdfs.cli.serve",
    "zcsdfs.cli.stats",
    "zcsdfs.cli.inspect",
    "zcsdfs.cli.run",
)

# Examples for commands whose module gives none, by the command's words after "zcsdfs".
EXAMPLES: dict[str, tuple[str, ...]] = {
    "": ("zcsdfs demo", "zcsdfs device create dev.zns && zcsdfs mkfs dev.zns && zcsdfs df dev.zns",
         "zcsdfs mount dev.zns /mnt/z", "zcsdfs run -- python app.py", "zcsdfs COMMAND --help"),
    "kernel": ("zcsdfs kernel verify zcsdfs/csd/kernels/histogram.o",
               "zcsdfs kernel run prog.o --mem-file data.bin --engine jit",
               "zcsdfs kernel conformance ../shared/conformance/bpf_conformance --engine both"),
    "kernel asm": ("zcsdfs kernel asm prog.asm -o prog.bin", "zcsdfs kernel asm prog.asm"),
    "kernel disasm": ("zcsdfs kernel disasm zcsdfs/csd/kernels/sum_u32.o", "zcsdfs kernel disasm prog.bin"),
    "kernel verify": ("zcsdfs kernel verify zcsdfs/csd/kernels/histogram.o",
                      "zcsdfs kernel verify multi.o --section csd/count"),
    "kernel run": ("zcsdfs kernel run prog.asm --mem '01 00 00 00'",
                   "zcsdfs kernel run zcsdfs/csd/kernels/sum_u32.o --mem-file data.bin --engine jit"),
    "kernel conformance": ("zcsdfs kernel conformance ../shared/conformance/bpf_conformance",
                           "zcsdfs kernel conformance DIR --engine both"),
    "mkfs": ("zcsdfs mkfs dev.zns", "zcsdfs mkfs            # the embedded default device",
             "zcsdfs mkfs dev.zns --force"),
    "fsck": ("zcsdfs fsck dev.zns", "zcsdfs fsck"),
    "mount": ("zcsdfs mount dev.zns /mnt/z", "zcsdfs mount /mnt/z    # the embedded default device",
              "zcsdfs mount dev.zns /mnt/z -o ro,allow_other", "zcsdfs mount dev.zns /mnt/z -f -o threads=8"),
    "umount": ("zcsdfs umount /mnt/z",),
}

err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # messages stay one line


def version() -> str:
    try:
        return metadata.version("zcsdfs")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zcsdfs",
        description="A computational-storage log-structured file system on an emulated ZNS SSD. "
                    "Commands that take an IMAGE use the embedded default device when it is left out "
                    "($ZCSDFS_DEVICE, else ~/.local/share/zcsdfs/default.zns).",
        formatter_class=RawDescriptionRichHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zcsdfs {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _fill_help(parser)
    parser.epilog += ("\n\nexit status: 0 done; 1 an error, said in one line on stderr (zcsdfs: ...); "
                      "2 a usage error;\n130 interrupted; fsck uses fsck(8)'s codes")
    return parser


def _fill_help(parser: argparse.ArgumentParser, words: str = "") -> None:
    """Give every parser in the tree a description and an examples epilog."""
    if parser.description is None:
        parser.description = _summary(parser)
    if parser.description:  # raw text (for the examples), so wrapped here to the terminal's width
        width = max(40, min(shutil.get_terminal_size().columns, 100) - 2)
        parser.description = "\n\n".join(textwrap.fill(" ".join(part.split()), width)
                                          for part in parser.description.split("\n\n"))
    if parser.epilog is None and EXAMPLES.get(words):
        parser.epilog = _examples(EXAMPLES[words])
    parser.formatter_class = RawDescriptionRichHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _fill_help(child, f"{words} {name}".strip())


def _summary(parser: argparse.ArgumentParser) -> str | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "Actions: " + ", ".join(action.choices) + "."
    return None


def _examples(lines) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        err_console.print(f"zcsdfs: {describe(exc)}", markup=False)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


_ERRNO_TAG = re.compile(r"\[Errno \d+\] ")


def describe(exc: OSError) -> str:
    """One line for an OSError: the message and, where there is one, the path.

    "[Errno N]" tags of errors quoted inside the message are dropped: the
    user reads sentences, and the exit status says that it failed.
    """
    text = exc.strerror or str(exc)
    if exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return " ".join(_ERRNO_TAG.sub("", text).split())  # and one line, whatever the message held


def group(sub, name: str, help: str, description: str, examples=()):
    """Add a command group (``zcsdfs device ...``); returns its subparsers."""
    p = sub.add_parser(name, help=help, description=description,
                       epilog=_examples(examples) if examples else None,
                       formatter_class=RawDescriptionRichHelpFormatter)
    return p.add_subparsers(dest="action", metavar="ACTION", required=True)


def subcommand(sub, name: str, help: str, func, *, description: str | None = None,
               examples=()) -> argparse.ArgumentParser:
    """Add one subcommand with the shared formatter and handler convention."""
    p = sub.add_parser(name, help=help, description=description or _sentence(help),
                       epilog=_examples(examples) if examples else None,
                       formatter_class=RawDescriptionRichHelpFormatter)
    p.set_defaults(func=func)
    return p


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(description: str, total: int | None = None, *, show: bool = True):
    """A progress bar on stderr while the block runs, only when stderr is a terminal.

    Yields ``advance(n=1)``; with ``total=None`` the bar only pulses (work
    whose steps the layer does not report).
    """
    if not (show and stderr_is_terminal()):
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


@contextlib.contextmanager
def steps(description: str, *, show: bool = True):
    """A progress bar on stderr for a layer that reports its own steps, only when stderr is a terminal.

    Yields the ``(done, total, what)`` callback the lfs takes
    (``zcsdfs.lfs.progress``); the bar shows ``what`` after ``description``.
    """
    if not (show and stderr_is_terminal()):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total, what: bar.update(task, completed=done, total=total,
                                                   description=f"{description}: {what}")
