"""CLI: ``zcsdfs run [--mount PREFIX[=DEVICE]]... -- python [OPTIONS] (SCRIPT | -m MODULE | -c CODE) ARGS...``.

The program runs in a fresh interpreter (``python -m zcsdfs.shim``) so that
nothing of the CLI is loaded before its first line, which runs with the
shim installed: our LD_PRELOAD, for Python programs only. The interpreter
options a user passes to python (``-u``, ``-X``, ``-W``, ``-O``, ...) go to
the interpreter; ``-m`` and ``-c`` to the shim's runner, which runs them as
python would. What the command line names is checked here, before the
interpreter starts, so a mistake is one line and not the runner's traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import shutil
import sys

from zcsdfs.cli import subcommand

# Interpreter options passed through: flags, and options taking a value (-X opt, -W arg).
FLAGS = set("bBdEIOPqsSuv")
VALUED = set("XW")
SUPPORTED = "-b -B -d -E -I -O -OO -P -q -s -S -u -v -X OPT -W ARG, then SCRIPT, -m MODULE or -c CODE"


def register(sub) -> None:
    p = subcommand(
        sub, "run", "run an unmodified Python program with paths under PREFIX in a zcsdfs volume", cmd_run,
        description="Run an unmodified Python program with every path under PREFIX (default /zcsd) in a "
                    "zcsdfs volume: open, os, pathlib, shutil and everything built on them. Other paths "
                    f"are the real file system. The python command line may hold {SUPPORTED}.",
        examples=("zcsdfs run -- python app.py --input /zcsd/data.csv",
                  "zcsdfs run --mount /data=dev.zns -- python -u -m mypkg.job",
                  "zcsdfs run --mount /scratch=memory -- python -c 'open(\"/scratch/x\", \"w\").write(\"hi\")'"))
    p.add_argument("--mount", action="append", default=[], metavar="PREFIX[=DEVICE]",
                   help="mount DEVICE (an image, memory[:GEOMETRY], or nothing for the default device) "
                        "at PREFIX; repeatable (default: /zcsd on the default device)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- python [OPTIONS] SCRIPT ARGS...",
                   help="the Python interpreter and what it would run")


def split_python_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(interpreter options, program) of python's command line; the program is
    ``[SCRIPT, ARGS...]``, ``["-m", MODULE, ARGS...]`` or ``["-c", CODE, ARGS...]``."""
    options: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg == "-":
            raise OSError(errno.EINVAL, "python - (the program on standard input) is not supported by "
                                        "zcsdfs run: save the program to a file and run that")
        if not arg.startswith("-"):
            break
        if arg.startswith("--"):
            raise OSError(errno.EINVAL, f"python option {arg} is not supported by zcsdfs run "
                                        f"(supported: {SUPPORTED})")
        j = 1
        while j < len(arg):
            c = arg[j]
            if c in ("m", "c"):
                value = arg[j + 1:] or (args[i + 1] if i + 1 < len(args) else None)
                if value is None:
                    what = "MODULE" if c == "m" else "CODE"
                    raise OSError(errno.EINVAL, f"python -{c} needs a {what}")
                rest = args[i + 1:] if arg[j + 1:] else args[i + 2:]
                return options, [f"-{c}", value, *rest]
            if c in VALUED:
                value = arg[j + 1:]
                if not value:
                    if i + 1 >= len(args):
                        raise OSError(errno.EINVAL, f"python -{c} needs a value")
                    i += 1
                    value = args[i]
                options += [f"-{c}", value]
                break
            if c not in FLAGS:
                raise OSError(errno.EINVAL, f"python option -{c} is not supported by zcsdfs run "
                                            f"(supported: {SUPPORTED})")
            options.append(f"-{c}")
            j += 1
        i += 1
    program = args[i:]
    if not program:
        raise OSError(errno.EINVAL, "no program given: zcsdfs run [--mount PREFIX=DEVICE]... -- python SCRIPT")
    return options, program


def check_program(interpreter: str, program: list[str]) -> None:
    """Refuse a script that is not there, or (for this interpreter) a module that cannot be found."""
    if program[0] == "-m":
        if _same_interpreter(interpreter):
            sys.path.insert(0, os.getcwd())  # as the runner does
            try:
                found = importlib.util.find_spec(program[1]) is not None
            except (ImportError, ValueError):
                found = False
            finally:
                sys.path.pop(0)
            if not found:
                raise OSError(errno.ENOENT, f"no module named {program[1]!r}")
    elif program[0] != "-c":
        script = program[0]
        if not os.path.exists(script):
            raise OSError(errno.ENOENT, "no such script", script)
        if os.path.isdir(script) and not os.path.exists(os.path.join(script, "__main__.py")):
            raise OSError(errno.EISDIR, "a directory without __main__.py is no program", script)


def _same_interpreter(interpreter: str) -> bool:
    found = shutil.which(interpreter)
    return found is not None and os.path.realpath(found) == os.path.realpath(sys.executable)


def cmd_run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise OSError(errno.EINVAL, "no program given: zcsdfs run [--mount PREFIX=DEVICE]... -- python SCRIPT")
    interpreter = command[0]
    if not os.path.basename(interpreter).startswith("python"):
        raise OSError(errno.ENOEXEC, "the shim works inside Python programs only; for other programs "
                                     "use a FUSE mount of the volume", interpreter)
    if shutil.which(interpreter) is None:
        raise OSError(errno.ENOENT, "no such interpreter", interpreter)
    options, program = split_python_args(command[1:])
    check_program(interpreter, program)
    mounts = [f"--mount={spec}" for spec in args.mount]
    os.execvp(interpreter, [interpreter, *options, "-m", "zcsdfs.shim", *mounts, "--", *program])
