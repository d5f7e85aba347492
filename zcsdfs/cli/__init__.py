"""The ``zcsdfs`` command line.

Every command lives in this package, one module per group, each with a
``register(subparsers)`` function; the layers hold none, so ``import zcsdfs``
never loads argparse or rich. This file assembles them and turns the errors a
user can cause into a one-line message and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib

from rich.console import Console
from rich_argparse import RichHelpFormatter

# Modules that add subcommands, in the order their help lists them.
COMMAND_MODULES = (
    "zcsdfs.cli.demo",
    "zcsdfs.cli.zns",
    "zcsdfs.cli.lfs",
    "zcsdfs.cli.csd",
    "zcsdfs.cli.fuse",
    "zcsdfs.cli.stats",
    "zcsdfs.cli.run",
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # messages stay one line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zcsdfs",
        description="A computational-storage log-structured file system on an emulated ZNS SSD.",
        formatter_class=RichHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except OSError as exc:
        err_console.print(f"zcsdfs: {describe(exc)}", markup=False)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


def describe(exc: OSError) -> str:
    """One line for an OSError: the message and, where there is one, the path."""
    text = exc.strerror or str(exc)
    if exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


def subcommand(sub, name: str, help: str, func) -> argparse.ArgumentParser:
    """Add one subcommand with the shared formatter and handler convention."""
    p = sub.add_parser(name, help=help, description=help, formatter_class=RichHelpFormatter)
    p.set_defaults(func=func)
    return p

