"""CLI: ``zcsdfs stats TARGET [--json | --events]``: every layer's state, of an image or a running mount.

For an image the command opens it read-only (not one byte changes); for a
mount point it asks the server over its control socket (``zcsdfs.control``).
"""

from __future__ import annotations

import json
import os

from rich.console import Console
from rich.table import Table

from zcsdfs.cli import subcommand

console = Console(highlight=False, soft_wrap=True)


def register(sub) -> None:
    p = subcommand(sub, "stats", "show every layer's state: of an image (opened read-only) or a live mount",
                   cmd_stats,
                   examples=("zcsdfs stats                       # the embedded default device, read-only",
                             "zcsdfs stats disk.zns --json",
                             "zcsdfs stats /mnt/zcsdfs             # ask a running mount's server",
                             "zcsdfs stats /mnt/zcsdfs --events    # follow its events, one JSON line each"))
    p.add_argument("target", metavar="TARGET", nargs="?",
                   help="image file or mount point (default: the embedded default device)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--events", action="store_true",
                   help="of a mount point: print its events as they happen, one JSON object a line, until ^C")


def collect(target: str | None) -> dict:
    """The stats of ``target`` as plain data (see ``zcsdfs.control.plain``)."""
    from zcsdfs.tui.source import open_source
    with open_source(target) as source:
        stats = source.snapshot(files=False)
    del stats["target"]
    return stats


def cmd_stats(args) -> int:
    if args.events:
        return follow(args.target)
    stats = collect(args.target)
    if args.json:
        print(json.dumps(stats, indent=1))
        return 0
    for table in tables(stats):
        console.print(table)
    return 0


def follow(target: str | None) -> int:
    """Print the events of the mount at ``target`` until interrupted."""
    from zcsdfs.control import EventStream
    if target is None or not os.path.isdir(target) or not os.path.ismount(target):
        raise NotADirectoryError(20, "--events needs the mount point of a running zcsdfs mount", target)
    with EventStream(target) as events:
        for event in events:
            print(json.dumps(event), flush=True)
    return 0


def _pairs(title: str, record: dict, skip=()) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in record.items():
        if key == "type" or key in skip or isinstance(value, (list, dict)):
            continue
        table.add_row(key.replace("_", " "), f"{value:.3f}" if isinstance(value, float) else str(value))
    return table


def tables(stats: dict) -> list[Table]:
    out = []
    device, lfs = stats["device"], stats.get("lfs")
    out.append(_pairs(f"device {device['path'] or '(memory)'}", device))
    valid = {z["zone"]: z for z in lfs["zone_list"]} if lfs else {}
    zones = Table(title="zones", title_justify="left")
    for col in ("zone", "state", "write pointer", "written", "valid", "role", "stream", "resets"):
        zones.add_column(col, justify="left" if col in ("state", "role", "stream") else "right")
    for z in device["zone_list"]:
        if z["state"] == "EMPTY" and not z["resets"] and z["index"] not in valid:
            continue
        log = valid.get(z["index"], {})
        zones.add_row(str(z["index"]), z["state"], f"{z['write_pointer']:#x}", str(z["blocks_written"]),
                      str(log.get("valid_blocks", "")), log.get("role", "checkpoint" if lfs else ""),
                      log.get("stream") or "", str(z["resets"]))
    out.append(zones)
    if lfs:
        out.append(_pairs("file system", lfs))
        streams = Table(title="streams", title_justify="left")
        for col in ("stream", "head zone", "write pointer", "blocks left"):
            streams.add_column(col)
        for s in lfs["streams"]:
            streams.add_row(s["stream"], *("-" if s[k] is None else str(s[k])
                                           for k in ("head_zone", "write_pointer", "blocks_left")))
        out.append(streams)
        if lfs["recent_gc_runs"]:
            runs = Table(title="recent GC runs", title_justify="left")
            for col in ("victim", "policy", "valid blocks", "moved", "freed", "ms"):
                runs.add_column(col)
            for r in lfs["recent_gc_runs"]:
                runs.add_row(str(r["victim"]), r["policy"], str(r["valid_blocks"]), str(r["blocks_moved"]),
                             "yes" if r["freed"] else "no", f"{r['seconds'] * 1e3:.2f}")
            out.append(runs)
    if stats.get("vfs"):
        out.append(_pairs("vfs", stats["vfs"]))
    if stats.get("csd"):
        out.append(_pairs("csd kernels", stats["csd"]))
        if stats["csd"]["kernels"]:
            kernels = Table(title="bound kernels", title_justify="left")
            for col in ("name", "kind", "bindings", "runs", "failures", "bytes in", "bytes out"):
                kernels.add_column(col)
            for k in stats["csd"]["kernels"]:
                kernels.add_row(k["name"], k["kind"], str(k["bindings"]), str(k["calls"]), str(k["failures"]),
                                str(k["bytes_read"]), str(k["bytes_returned"]))
            out.append(kernels)
        if stats["csd"].get("bound"):
            from zcsdfs.tui.report import bindings_table
            out.append(bindings_table(stats["csd"]["bound"]))
    if stats.get("server"):
        out.append(_pairs("server", stats["server"]))
        opcodes = stats["server"].get("opcodes") or {}
        if opcodes:
            table = Table(title="requests per opcode (latency of the most recent)", title_justify="left")
            for column in ("opcode", "requests", "p50 µs", "p99 µs", "max µs"):
                table.add_column(column, justify="left" if column == "opcode" else "right")
            for name, o in opcodes.items():
                table.add_row(name, f"{o['requests']:,}", f"{o['p50_us']:.1f}", f"{o['p99_us']:.1f}",
                              f"{o['max_us']:.1f}")
            out.append(table)
    return out
