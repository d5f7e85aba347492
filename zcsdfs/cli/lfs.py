"""CLI: ``zcsdfs mkfs``, ``fsck``, ``df``, ``gc`` and ``snapshot create|list|delete``.

Each takes an image file, or the embedded default device when none is given.
``fsck`` and ``df`` only read; ``fsck`` exits as fsck(8) does (0 clean, 4
errors left uncorrected, 8 operational error). ``mkfs`` refuses anything
that looks like a zcsdfs volume, damaged or not, unless told ``--force``.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from zcsdfs.cli import describe, err_console, subcommand
from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs.errors import Exists, Invalid
from zcsdfs.lfs.fsck import OPERATIONAL
from zcsdfs.lfs.mkfs import looks_formatted
from zcsdfs.lfs.gc import POLICIES
from zcsdfs.lfs.usage import disk_usage
from zcsdfs.zns import ZonedDevice, default_device_path
from zcsdfs.zns import ensure_default_device

console = Console(highlight=False, soft_wrap=True)  # long paths stay on one line


def register(sub) -> None:
    p = subcommand(sub, "mkfs", "make a zcsdfs file system on a device image", cmd_mkfs)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file system")
    p = subcommand(sub, "fsck", "check a file system and verify every data block, without changing it; exit status as "
                   "fsck(8): 0 clean, 4 errors left uncorrected, 8 operational error", cmd_fsck)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    p = subcommand(sub, "df", "show space usage, free zones, valid blocks and write amplification", cmd_df)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    p = subcommand(sub, "gc", "garbage-collect zones now; print zones cleaned, blocks moved, write amplification",
                   cmd_gc)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    p.add_argument("--policy", choices=POLICIES, default="greedy", help="victim selection (default: greedy)")
    p.add_argument("--zones", type=int, default=1, metavar="N", help="clean up to N zones (default: 1)")
    snap = sub.add_parser("snapshot", help="create, list or delete read-only snapshots of the volume")
    ssub = snap.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = subcommand(ssub, "list", "list snapshots, oldest first", cmd_snapshot)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    for action in ("create", "delete"):
        p = subcommand(ssub, action, f"{action} a snapshot", cmd_snapshot)
        p.add_argument("args", nargs="+", metavar="[IMAGE] NAME", help="image file (optional), snapshot name")


def cmd_mkfs(args) -> int:
    path = args.image or ensure_default_device()
    with ZonedDevice.open(path) as device:
        found = looks_formatted(device)
        if found and not args.force:
            raise Exists(f"{path} looks like a zcsdfs volume ({found}), damaged or not; "
                         f"use --force to overwrite it", path)
        sb = mkfs(device)
        usable = disk_usage(device).usable_blocks * device.block_size
    console.print(f"made zcsdfs {sb.uuid.hex()} on {path}: {usable / (1 << 20):.1f} MiB usable")
    return 0


def cmd_fsck(args) -> int:
    """Exit status as fsck(8)'s: 0 clean, 4 errors left uncorrected, 8 operational error."""
    path = args.image or default_device_path()
    try:
        device = ZonedDevice.open(path)
    except OSError as e:
        err_console.print(f"zcsdfs: {describe(e)}", markup=False)
        return OPERATIONAL
    with device:
        report = fsck(device)
    if report.operational is not None:
        console.print(f"[red]error:[/] {report.operational}", soft_wrap=True)
        console.print(f"{path}: not checked")
        return report.exit_code
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]", soft_wrap=True)
    for error in report.errors:
        console.print(f"[red]error:[/] {error}", soft_wrap=True)
    summary = (f"{report.inodes} inodes ({report.files} files, {report.directories} directories), "
               f"{report.valid_blocks} valid blocks, {report.scrubbed_blocks} data blocks verified")
    if report.clean:
        console.print(f"{path}: clean, {summary}")
    else:
        console.print(f"{path}: {len(report.errors)} problem(s) left uncorrected, {summary}")
    return report.exit_code


def cmd_df(args) -> int:
    path = args.image or default_device_path()
    with ZonedDevice.open(path) as device:
        u = disk_usage(device)
    mib = lambda blocks: f"{blocks * u.block_size / (1 << 20):.1f} MiB"  # noqa: E731
    table = Table(title=f"zcsdfs on {path}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("usable", mib(u.usable_blocks))
    table.add_row("used (valid blocks)", f"{mib(u.valid_blocks)} ({u.valid_blocks} blocks, {u.utilisation:.1%})")
    table.add_row("available", mib(max(0, u.usable_blocks - u.valid_blocks)))
    table.add_row("log zones", str(u.log_zones))
    table.add_row("free zones", str(u.free_zones))
    table.add_row("open zones (log heads)", str(u.head_zones))
    table.add_row("sealed zones", str(u.sealed_zones))
    table.add_row("inodes", str(u.inodes))
    table.add_row("user blocks written", str(u.user_blocks))
    table.add_row("blocks moved by GC", str(u.gc_blocks))
    table.add_row("write amplification", f"{u.write_amplification:.2f}" if u.user_blocks else "n/a")
    console.print(table)
    return 0


def cmd_gc(args) -> int:
    if args.zones < 1:
        raise Invalid(f"--zones must be at least 1, not {args.zones}")
    path = args.image or default_device_path()
    with ZonedDevice.open(path) as device:
        fs = mount(device)
        try:
            moved_before = fs.gc_blocks_moved
            cleaned = fs.gc(args.zones, args.policy)
            moved = fs.gc_blocks_moved - moved_before
        finally:
            fs.unmount()
        usage = fs.usage()
    wa = f"{usage.device_blocks / usage.user_blocks:.2f}" if usage.user_blocks else "n/a"
    console.print(f"{path}: {args.policy} GC cleaned {cleaned} zone(s), moved {moved} blocks; "
                  f"write amplification {wa}")
    return 0


def cmd_snapshot(args) -> int:
    if args.action == "list":
        path, name = args.image, None
    elif len(args.args) > 2:
        raise Invalid(f"snapshot {args.action} takes [IMAGE] NAME, not {len(args.args)} arguments")
    else:
        path, name = (None, *args.args) if len(args.args) == 1 else args.args
    path = path or default_device_path()
    with ZonedDevice.open(path) as device:
        fs = mount(device)
        try:
            if args.action == "create":
                fs.create_snapshot(name)
                console.print(f"created snapshot {name!r} of {path}")
            elif args.action == "delete":
                fs.delete_snapshot(name)
                console.print(f"deleted snapshot {name!r} of {path}")
            else:
                table = Table(title=f"snapshots of {path}")
                table.add_column("name")
                table.add_column("created")
                for info in fs.list_snapshots():
                    created = datetime.fromtimestamp(info.created_ns / 1e9).isoformat(sep=" ", timespec="seconds")
                    table.add_row(info.name, created)
                console.print(table)
        finally:
            fs.unmount()
    return 0
