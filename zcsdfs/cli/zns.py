"""CLI: ``zcsdfs device``, ``zcsdfs zones`` and ``zcsdfs zone``."""

from __future__ import annotations

import argparse
import os
import re

from rich.console import Console
from rich.table import Table

from zcsdfs.cli import subcommand
from zcsdfs.stack import build_stack
from zcsdfs.zns import PRESETS, Geometry, ZonedDevice
from zcsdfs.zns.errors import InvalidField
from zcsdfs.zns.zone import ZoneState

console = Console(highlight=False)

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
STATE_STYLE = {
    ZoneState.EMPTY: "dim", ZoneState.IMPLICIT_OPEN: "green", ZoneState.EXPLICIT_OPEN: "bold green",
    ZoneState.CLOSED: "yellow", ZoneState.FULL: "blue", ZoneState.READ_ONLY: "magenta",
    ZoneState.OFFLINE: "red",
}


def parse_size(text: str) -> int:
    """Bytes, with an optional binary suffix: 4096, 64K, 128M, 2G (an optional 'iB' or 'B' is allowed)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4096, 64K, 128M)")
    return int(m.group(1)) * UNITS[m.group(2).upper()]


def register(sub) -> None:
    device = sub.add_parser("device", help="create or describe a device image")
    dsub = device.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = subcommand(dsub, "create", "create an empty zoned device image", cmd_create)
    create.add_argument("image", help="path of the new image file")
    create.add_argument("--preset", choices=sorted(PRESETS), help="a named geometry (default: tiny)")
    create.add_argument("--zones", type=int, help="number of zones")
    create.add_argument("--zone-size", type=parse_size, help="zone size in bytes (K/M/G suffixes)")
    create.add_argument("--zone-capacity", type=parse_size, help="writable bytes per zone (default: the zone size)")
    create.add_argument("--block-size", type=int, help="logical block size in bytes (default 4096)")
    create.add_argument("--max-open", type=int, help="open zone limit (0 = unlimited)")
    create.add_argument("--max-active", type=int, help="active zone limit (0 = unlimited)")
    info = subcommand(dsub, "info", "show an image's geometry and usage", cmd_info)
    info.add_argument("image")

    zones = subcommand(sub, "zones", "report the zones of an image, like blkzone report", cmd_zones)
    zones.add_argument("image", nargs="?", help="image file (default: the embedded default device)")

    zone = sub.add_parser("zone", help="zone management: reset, open, close, finish")
    zsub = zone.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action in ("reset", "open", "close", "finish"):
        p = subcommand(zsub, action, f"{action} one zone", cmd_zone)
        p.add_argument("image")
        p.add_argument("zone", type=int)


def geometry_from_args(args) -> Geometry:
    base = dict(PRESETS[args.preset or "tiny"])
    bs = args.block_size or base["block_size"]
    base["block_size"] = bs

    def blocks(nbytes: int, what: str) -> int:
        if nbytes % bs:
            raise InvalidField(f"{what} ({nbytes} bytes) is not a multiple of the block size ({bs})")
        return nbytes // bs

    if args.zone_size is not None:
        base["zone_size"] = blocks(args.zone_size, "zone size")
        if args.zone_capacity is None:
            base["zone_capacity"] = base["zone_size"]
    if args.zone_capacity is not None:
        base["zone_capacity"] = blocks(args.zone_capacity, "zone capacity")
    for name in ("zones", "max_open", "max_active"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    return Geometry(**base)


def cmd_create(args) -> int:
    geometry = geometry_from_args(args)
    with ZonedDevice.create(args.image, geometry) as device:
        console.print(f"created {args.image}: {describe_geometry(device.geometry)}")
    return 0


def cmd_info(args) -> int:
    with build_stack(args.image, readonly=True, upto="device") as stack:
        show_info(stack.device)
    return 0


def cmd_zones(args) -> int:
    with build_stack(args.image, readonly=True, upto="device") as stack:  # None: the default device
        console.print(zone_table(stack.device))
    return 0


def cmd_zone(args) -> int:
    with ZonedDevice.open(args.image) as device:
        getattr(device, {"open": "open_zone"}.get(args.action, args.action))(args.zone)
        zone = device.zone(args.zone)
    console.print(f"zone {zone.index}: {zone.state.name}, write pointer {zone.write_pointer}")
    return 0


def describe_geometry(g: Geometry) -> str:
    mib = lambda blocks: blocks * g.block_size / (1 << 20)  # noqa: E731
    limit = lambda n: str(n) if n else "unlimited"  # noqa: E731
    return (f"{g.zones} zones of {mib(g.zone_size):g} MiB ({mib(g.zone_capacity):g} MiB writable), "
            f"{g.block_size}-byte blocks, {limit(g.max_open)} open, {limit(g.max_active)} active")


def show_info(device: ZonedDevice) -> None:
    g = device.geometry
    zones = device.report()
    used = sum(min(z.write_pointer, z.start + z.capacity) - z.start for z in zones
               if z.state is not ZoneState.FULL)
    table = Table(show_header=False, box=None)
    table.add_row("image", device.path or "memory")
    table.add_row("geometry", describe_geometry(g))
    table.add_row("capacity", f"{g.capacity_bytes / (1 << 30):.2f} GiB writable of "
                              f"{g.blocks * g.block_size / (1 << 30):.2f} GiB addressable")
    for state in ZoneState:
        n = sum(z.state is state for z in zones)
        if n:
            table.add_row(f"zones {state.name.lower()}", str(n))
    table.add_row("blocks in open or closed zones", str(used))
    console.print(table)


def zone_table(device: ZonedDevice) -> Table:
    table = Table(title=f"zones of {device.path or 'memory device'}")
    for col in ("zone", "start", "write pointer", "capacity", "size", "state", "type"):
        table.add_column(col, justify="right" if col not in ("state", "type") else "left")
    for z in device.report():
        style = STATE_STYLE[z.state]
        table.add_row(str(z.index), f"{z.start:#x}", f"{z.write_pointer:#x}", f"{z.capacity:#x}",
                      f"{z.size:#x}", f"[{style}]{z.state.name}[/]", "SWR")
    return table
