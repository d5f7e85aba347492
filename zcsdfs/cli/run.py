"""CLI: ``zcsdfs run [--mount PREFIX[=DEVICE]]... -- python SCRIPT ARGS...``.

The program runs in a fresh interpreter (``python -m zcsdfs.shim``) so that
nothing of the CLI is loaded before its first line, which runs with the
shim installed: our LD_PRELOAD, for Python programs only.
"""

from __future__ import annotations

import argparse
import errno
import os

from zcsdfs.cli import subcommand


def register(sub) -> None:
    p = subcommand(sub, "run", "run an unmodified Python program with paths under PREFIX in a zcsdfs volume",
                   cmd_run)
    p.add_argument("--mount", action="append", default=[], metavar="PREFIX[=DEVICE]",
                   help="mount DEVICE (an image, memory[:GEOMETRY], or nothing for the default device) "
                        "at PREFIX; repeatable (default: /zcsd on the default device)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- python SCRIPT ARGS...",
                   help="the Python interpreter and what it would run")


def cmd_run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise OSError(errno.EINVAL, "no program given: zcsdfs run [--mount PREFIX=DEVICE]... -- python SCRIPT")
    interpreter = command[0]
    if not os.path.basename(interpreter).startswith("python"):
        raise OSError(errno.ENOEXEC, "the shim works inside Python programs only; for other programs "
                                     "use a FUSE mount of the volume", interpreter)
    mounts = [f"--mount={spec}" for spec in args.mount]
    os.execvp(interpreter, [interpreter, "-m", "zcsdfs.shim", *mounts, "--", *command[1:]])
