"""Running an unmodified Python program with the shim installed before its first line.

``python -m zcsdfs.shim [--mount PREFIX[=DEVICE]]... [--] PROGRAM`` where
PROGRAM is ``SCRIPT ARGS...``, ``-m MODULE ARGS...`` or ``-c CODE ARGS...``,
as for ``python`` itself. DEVICE is an image path, ``memory`` (or
``memory:GEOMETRY``) for a fresh volume that lives as long as the program,
or nothing for the embedded default device. With no ``--mount``, ``/zcsd``
is the default device.
"""

from __future__ import annotations

import errno
import os
import runpy
import sys

from zcsdfs.shim import install

USAGE = ("usage: python -m zcsdfs.shim [--mount PREFIX[=DEVICE]]... [--] "
         "(SCRIPT | -m MODULE | -c CODE) [ARGS...]")


def parse(argv: list[str]) -> tuple[list[str], list[str]]:
    """(mount specs, program argv) from the command line."""
    specs: list[str] = []
    args = list(argv)
    while args and args[0].startswith("--mount"):
        option = args.pop(0)
        if option.startswith("--mount="):
            specs.append(option[len("--mount="):])
        elif option == "--mount" and args:
            specs.append(args.pop(0))
        else:
            raise OSError(errno.EINVAL, f"{USAGE}\nbad option {option!r}")
    if args and args[0] == "--":
        args.pop(0)
    if not args or (args[0] in ("-m", "-c") and len(args) < 2):
        raise OSError(errno.EINVAL, f"{USAGE}\nno program to run")
    return specs or ["/zcsd"], args


def device_of(text: str):
    """What a ``--mount`` DEVICE names, as ``install`` takes it."""
    if not text:
        return None
    kind, _, geometry = text.partition(":")
    if kind == "memory":
        from zcsdfs.zns import ZonedDevice
        return ZonedDevice.memory(geometry or "qemu")
    if not os.path.exists(text):
        raise OSError(errno.ENOENT, "no such device image (make one with `zcsdfs device create IMAGE` "
                                    "and `zcsdfs mkfs IMAGE`)", text)
    return text


def mount_all(specs: list[str]) -> None:
    for spec in specs:
        prefix, _, device = spec.partition("=")
        install(prefix, device_of(device))


def run(program: list[str]) -> None:
    """Run ``program`` as ``python`` would run it, as ``__main__``; SystemExit passes through."""
    if program[0] == "-m":
        sys.argv = [program[1], *program[2:]]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(program[1], run_name="__main__", alter_sys=True)
    elif program[0] == "-c":
        sys.argv = ["-c", *program[2:]]
        sys.path.insert(0, "")
        exec(compile(program[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    else:
        sys.argv = list(program)
        sys.path.insert(0, os.path.dirname(os.path.abspath(program[0])))
        runpy.run_path(program[0], run_name="__main__")


def main(argv: list[str]) -> None:
    try:
        specs, program = parse(argv)
        mount_all(specs)
    except OSError as exc:
        from zcsdfs.cli import describe
        print(f"zcsdfs.shim: {describe(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    run(program)
