"""CLI: ``zcsdfs inspect [TARGET] [--once | --json]``: the terminal inspector.

Without ``--once``/``--json`` it opens the full-screen app (``zcsdfs.tui``);
with them it prints the same information once, as rich tables or as JSON,
for logs and for terminals that cannot host the app. TARGET is an image
(opened read-only: not one byte changes), the mount point of a running
``zcsdfs mount`` (asked over its control socket), or left out for the
embedded default device.
"""

from __future__ import annotations

import json
import os
import sys

from zcsdfs.cli import subcommand


def register(sub) -> None:
    p = subcommand(sub, "inspect", "watch zones, files, GC, kernels and the server of an image or a live mount",
                   cmd_inspect, examples=("zcsdfs inspect dev.zns", "zcsdfs inspect /mnt/z",
                                          "zcsdfs inspect dev.zns --once", "zcsdfs inspect /mnt/z --json"))
    p.add_argument("target", metavar="TARGET", nargs="?",
                   help="image file or mount point (default: the embedded default device)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--once", action="store_true", help="print the views once as tables, no full-screen app")
    out.add_argument("--json", action="store_true", help="print one JSON object: zones, files, GC, kernels, server")


def cmd_inspect(args) -> int:
    from zcsdfs.tui.source import open_source
    if not (args.once or args.json):
        if not (sys.stdout.isatty() and sys.stdin.isatty()):
            raise OSError(25, "the inspector needs a terminal (use --once or --json)", args.target)
        from zcsdfs.tui.app import run
        with open_source(args.target) as source:
            run(source)
        return 0
    with open_source(args.target) as source:
        data = source.snapshot()
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console

    from zcsdfs.tui.report import tables
    console = Console(highlight=False, no_color="NO_COLOR" in os.environ)
    for table in tables(data):
        console.print(table)
    return 0
