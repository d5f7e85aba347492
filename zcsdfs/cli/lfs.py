"""CLI: ``zcsdfs mkfs``, ``fsck``, ``df``, ``gc`` and ``snapshot list|create|delete|rollback``.

Each takes an image file, or the embedded default device when none is given.
``fsck`` and ``df`` only read; ``fsck`` exits as fsck(8) does (0 clean, 4
errors left uncorrected, 8 operational error). ``mkfs`` refuses anything
that looks like a zcsdfs volume, damaged or not, unless told ``--force``.
"""

from __future__ import annotations

import os
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from zcsdfs.cli import describe, err_console, subcommand
from zcsdfs.lfs import fsck, mkfs
from zcsdfs.lfs.errors import Exists, Invalid
from zcsdfs.lfs.fsck import OPERATIONAL
from zcsdfs.lfs.mkfs import looks_formatted
from zcsdfs.lfs.gc import DEFAULT_POLICY, POLICIES, policy_names
from zcsdfs.lfs.usage import disk_usage
from zcsdfs.stack import build_stack
from zcsdfs.zns import ZonedDevice, default_device_path
from zcsdfs.zns import ensure_default_device

from zcsdfs.cli import add_json, group, print_json, progress, steps
from zcsdfs.cli.zns import size_text
from zcsdfs.lfs.directory import NAME_MAX
from zcsdfs.lfs.snapshot import snapshot_name

console = Console(highlight=False, soft_wrap=True)  # long paths stay on one line


def add_gc_policy(p, *flags: str) -> None:
    """The option naming a GC victim-selection policy: one of the registry's (``gc.POLICIES``)."""
    p.add_argument(*(flags or ("--gc-policy",)), dest="gc_policy", choices=policy_names(), default=DEFAULT_POLICY,
                   metavar="POLICY", help="GC victim selection: " + "; ".join(
                       f"{name} ({policy.summary})" for name, policy in POLICIES.items())
                   + f" (default: {DEFAULT_POLICY})")


def register(sub) -> None:
    p = subcommand(sub, "mkfs", "make a zcsdfs file system on a device image", cmd_mkfs)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file system")
    add_json(p)
    p = subcommand(sub, "fsck", "check a file system and verify every data block, without changing it; exit status as "
                   "fsck(8): 0 clean, 4 errors left uncorrected, 8 operational error", cmd_fsck)
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    add_json(p)
    p = subcommand(sub, "df", "show space usage, free zones, valid blocks and write amplification", cmd_df,
                   description="Show how the file system uses its space, read from the device without "
                               "changing it: size (the data the volume holds while it keeps being "
                               "overwritten), used (valid blocks), free, zones by role, inodes and "
                               "lifetime write amplification.",
                   examples=("zcsdfs df", "zcsdfs df dev.zns", "zcsdfs df dev.zns --json"))
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    add_json(p)
    p = subcommand(sub, "gc", "garbage-collect zones now; print zones cleaned, blocks moved, write amplification",
                   cmd_gc, examples=("zcsdfs gc dev.zns", "zcsdfs gc dev.zns --zones 8 --policy cost-benefit"))
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    add_gc_policy(p, "--policy", "--gc-policy")
    p.add_argument("--zones", type=int, default=1, metavar="N", help="clean up to N zones (default: 1)")
    add_json(p)

    ssub = group(sub, "snapshot", "list, create, delete or roll back to read-only snapshots",
                 "Named, read-only, point-in-time copies of the whole volume. A snapshot costs only metadata "
                 "until the live files change. Read one with zcsdfs mount IMAGE MNT -o snapshot=NAME or "
                 "zcsdfs.Volume(IMAGE, snapshot=NAME). IMAGE may be left out for the embedded default "
                 "device; a lone argument is always the NAME, and one that looks like an image file is "
                 "refused.",
                 ("zcsdfs snapshot create dev.zns before-upgrade", "zcsdfs snapshot list dev.zns",
                  "zcsdfs snapshot rollback dev.zns before-upgrade", "zcsdfs snapshot delete dev.zns before-upgrade"))
    p = subcommand(ssub, "list", "list snapshots, oldest first", cmd_snapshot,
                   examples=("zcsdfs snapshot list", "zcsdfs snapshot list dev.zns --json"))
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    add_json(p)
    for action, what, more in (
            ("create", "take a snapshot of the whole volume; durable when the command returns", ""),
            ("delete", "delete a snapshot; blocks only it referenced become garbage", ""),
            ("rollback", "make the volume's files a copy of a snapshot (the snapshot stays)",
             " Every change made since the snapshot is lost. Crash-safe: an interrupted rollback leaves the "
             "volume as it was or rolled back, never a mixture.")):
        p = subcommand(ssub, action, what, cmd_snapshot, description=what[:1].upper() + what[1:] + "." + more,
                       examples=(f"zcsdfs snapshot {action} dev.zns nightly",
                                 f"zcsdfs snapshot {action} nightly          # on the embedded default device"))
        p.add_argument("words", nargs="+", metavar="[IMAGE] NAME",
                       help="image file (default: the embedded default device), then the snapshot name: "
                            f"1 to {NAME_MAX} bytes, no '/' or control characters")


def cmd_mkfs(args) -> int:
    path = args.image or ensure_default_device()
    with ZonedDevice.open(path) as device:
        found = looks_formatted(device)
        if found and not args.force:
            raise Exists(f"{path} looks like a zcsdfs volume ({found}), damaged or not; "
                         f"use --force to overwrite it", path)
        with steps(f"mkfs {path}", show=not args.json) as report:
            sb = mkfs(device, progress=report)
        usable = disk_usage(device).usable_blocks * device.block_size
    if args.json:
        print_json({"image": path, "uuid": sb.uuid.hex(), "usable_bytes": usable})
        return 0
    console.print(f"made zcsdfs {sb.uuid.hex()} on {path}: {usable / (1 << 20):.1f} MiB usable")
    return 0


def cmd_fsck(args) -> int:
    """Exit status as fsck(8)'s: 0 clean, 4 errors left uncorrected, 8 operational error."""
    path = args.image or default_device_path()
    try:
        stack = build_stack(path, readonly=True, upto="device")
    except OSError as e:
        err_console.print(f"zcsdfs: {describe(e)}", markup=False)
        return OPERATIONAL
    with stack, steps(f"fsck {path}", show=not args.json) as progress_:
        report = fsck(stack.device, progress=progress_)
    if args.json:
        print_json({"image": path, "clean": report.clean, "exit_code": report.exit_code,
                    "operational_error": report.operational, "errors": report.errors, "notes": report.notes,
                    "inodes": report.inodes, "files": report.files, "directories": report.directories,
                    "valid_blocks": report.valid_blocks, "scrubbed_blocks": report.scrubbed_blocks})
        return report.exit_code
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
    with build_stack(path, readonly=True, upto="device") as stack:
        u = disk_usage(stack.device)
    total, free = u.total_blocks, u.free_blocks
    if args.json:
        print_json({"image": path, "block_size": u.block_size, "size_bytes": total * u.block_size,
                    "used_bytes": u.valid_blocks * u.block_size, "free_bytes": free * u.block_size,
                    "used_fraction": u.utilisation, "valid_blocks": u.valid_blocks, "log_zones": u.log_zones,
                    "free_zones": u.free_zones, "head_zones": u.head_zones, "sealed_zones": u.sealed_zones,
                    "inodes": u.inodes, "user_blocks_written": u.user_blocks, "gc_blocks_moved": u.gc_blocks,
                    "write_amplification": u.write_amplification if u.user_blocks else None})
        return 0
    size = lambda blocks: size_text(blocks * u.block_size)  # noqa: E731
    table = Table(title=f"zcsdfs on {path}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("size", size(total))
    table.add_row("used (valid blocks)", f"{size(u.valid_blocks)} ({u.valid_blocks:,} blocks, {u.utilisation:.1%})")
    table.add_row("free", size(free))
    table.add_row("log zones", f"{u.log_zones:,}")
    table.add_row("free zones", f"{u.free_zones:,}")
    table.add_row("open zones (log heads)", f"{u.head_zones:,}")
    table.add_row("sealed zones", f"{u.sealed_zones:,}")
    table.add_row("inodes", f"{u.inodes:,}")
    table.add_row("user blocks written", f"{u.user_blocks:,}")
    table.add_row("blocks moved by GC", f"{u.gc_blocks:,}")
    table.add_row("write amplification", f"{u.write_amplification:.2f}" if u.user_blocks else "n/a")
    console.print(table)
    return 0


def cmd_gc(args) -> int:
    if args.zones < 1:
        raise Invalid(f"--zones must be at least 1, not {args.zones}")
    path = args.image or default_device_path()
    with build_stack(args.image, upto="lfs") as stack:
        fs = stack.fs
        moved_before = fs.gc_blocks_moved
        cleaned = 0
        with progress("garbage collection", args.zones, show=args.zones > 1) as advance:
            for _ in range(args.zones):
                if not fs.gc(1, args.gc_policy):
                    break
                cleaned += 1
                advance()
        moved = fs.gc_blocks_moved - moved_before
    usage = fs.usage()
    wa = usage.device_blocks / usage.user_blocks if usage.user_blocks else None
    if args.json:
        print_json({"image": path, "policy": args.gc_policy, "zones_cleaned": cleaned, "blocks_moved": moved,
                    "write_amplification": wa})
        return 0
    console.print(f"{path}: {args.gc_policy} GC cleaned {cleaned} zone(s), moved {moved:,} blocks; "
                  f"write amplification {'n/a' if wa is None else f'{wa:.2f}'}", markup=False)
    return 0


def image_and_name(action: str, words: list[str]) -> tuple[str, str]:
    """``[IMAGE] NAME`` of a snapshot command: a lone word is the name, never an image."""
    if len(words) > 2:
        raise Invalid(f"snapshot {action} takes [IMAGE] NAME, not {len(words)} arguments")
    if len(words) == 2:
        return words[0], snapshot_name(words[1])
    (name,) = words
    if name.endswith(".zns") or os.sep in name or os.path.isfile(name):
        raise Invalid(f"{name!r} looks like an image file, not a snapshot name: "
                      f"give both, zcsdfs snapshot {action} {name} NAME")
    return default_device_path(), snapshot_name(name)


def cmd_snapshot(args) -> int:
    if args.action == "list":
        path, name = args.image or default_device_path(), None
    else:
        path, name = image_and_name(args.action, args.words)
    with build_stack(path, readonly=args.action == "list", upto="lfs") as stack:
        fs = stack.fs
        if args.action == "create":
            fs.create_snapshot(name)
            console.print(f"created snapshot {name!r} of {path}", markup=False)
        elif args.action == "delete":
            fs.delete_snapshot(name)
            console.print(f"deleted snapshot {name!r} of {path}", markup=False)
        elif args.action == "rollback":
            fs.rollback(name)
            console.print(f"rolled {path} back to snapshot {name!r}", markup=False)
        else:
            show_snapshots(path, fs.list_snapshots(), args.json)
    return 0


def show_snapshots(path: str, snapshots, as_json: bool) -> None:
    def created(info) -> str:
        return datetime.fromtimestamp(info.created_ns / 1e9).astimezone().isoformat(timespec="seconds")

    if as_json:
        print_json([{"name": info.name, "created": created(info), "created_ns": info.created_ns}
                    for info in snapshots])
        return
    table = Table(title=f"snapshots of {path}")
    table.add_column("name", overflow="fold")
    table.add_column("created")
    for info in snapshots:
        table.add_row(Text(info.name), created(info))
    console.print(table)
