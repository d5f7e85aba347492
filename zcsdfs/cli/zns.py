"""CLI: ``zcsdfs device``, ``zcsdfs zones`` and ``zcsdfs zone``.

Addresses (zone starts, write pointers, capacities) are LBAs in hex
everywhere, as ``blkzone report`` prints them; sizes are bytes with binary
units (``size_text``). ``zones`` streams its lines, so a device of a million
zones lists at once and can be paged with ``--start``/``--count``.
"""

from __future__ import annotations

import argparse
import re
import sys

from rich.console import Console
from rich.table import Table

from zcsdfs.cli import add_json, group, print_json, progress, subcommand
from zcsdfs.stack import build_stack
from zcsdfs.zns import DEFAULT_PRESET, PRESETS, Geometry, ZonedDevice, default_device_path
from zcsdfs.zns.errors import InvalidField
from zcsdfs.zns.zone import ZoneState

console = Console(highlight=False, soft_wrap=True)  # lines stay whole; tables take the terminal width

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
STATE_STYLE = {
    ZoneState.EMPTY: "dim", ZoneState.IMPLICIT_OPEN: "green", ZoneState.EXPLICIT_OPEN: "bold green",
    ZoneState.CLOSED: "yellow", ZoneState.FULL: "blue", ZoneState.READ_ONLY: "magenta",
    ZoneState.OFFLINE: "red",
}
REPORT_BATCH = 4096  # zones asked of the device per report while listing


def parse_size(text: str) -> int:
    """Bytes, with an optional binary suffix: 4096, 64K, 128M, 2G (an optional 'iB' or 'B' is allowed)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4096, 64K, 128M)")
    return int(m.group(1)) * UNITS[m.group(2).upper()]


def count(text: str) -> int:
    """A whole number of at least 0."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def size_text(nbytes: int) -> str:
    """Bytes in the largest binary unit that keeps a whole part: 512 B, 64 KiB, 1.5 MiB, 4 GiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.4g} {unit}" if nbytes % scale else f"{nbytes // scale} {unit}"
    return f"{nbytes} B"


def _preset_help() -> str:
    return "; ".join(f"{name}: {describe_geometry(Geometry.preset(name))}" for name in PRESETS)


def register(sub) -> None:
    dsub = group(sub, "device", "create or describe a zoned device image",
                 "Create an emulated NVMe ZNS device (a sparse image file) or describe one.",
                 ("zcsdfs device create dev.zns", "zcsdfs device create small.zns --preset tiny",
                  "zcsdfs device info dev.zns --json"))
    create = subcommand(
        dsub, "create", "create an empty zoned device image", cmd_create,
        description="Create an empty zoned device image (a sparse file: it takes disk space only as zones "
                    f"are written). The geometry starts from --preset (default {DEFAULT_PRESET}, the same "
                    "as the embedded default device) and any of --zones, --zone-size, --zone-capacity, "
                    "--block-size, --max-open and --max-active override it. Presets: " + _preset_help() + ".",
        examples=("zcsdfs device create dev.zns                       # 32 zones of 128 MiB, no limits",
                  "zcsdfs device create small.zns --preset tiny",
                  "zcsdfs device create big.zns --zones 1024 --zone-size 1M",
                  "zcsdfs device create zn.zns --preset zn540 --zones 8"))
    create.add_argument("image", help="path of the new image file")
    create.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                        help=f"the geometry to start from (default: {DEFAULT_PRESET})")
    create.add_argument("--zones", type=int, help="number of zones (default: the preset's)")
    create.add_argument("--zone-size", type=parse_size, metavar="SIZE",
                        help="zone size in bytes, K/M/G suffixes (default: the preset's)")
    create.add_argument("--zone-capacity", type=parse_size, metavar="SIZE",
                        help="writable bytes per zone (default: the zone size if --zone-size is given, "
                             "else the preset's)")
    create.add_argument("--block-size", type=int, metavar="BYTES",
                        help="logical block size: a power of two from 512 to 65536 (default: the preset's, 4096)")
    create.add_argument("--max-open", type=int, metavar="N", help="open zone limit, 0 = unlimited (default: the preset's)")
    create.add_argument("--max-active", type=int, metavar="N",
                        help="active zone limit, 0 = unlimited (default: the preset's)")
    info = subcommand(dsub, "info", "show an image's geometry and how much of it is written", cmd_info,
                      examples=("zcsdfs device info dev.zns", "zcsdfs device info dev.zns --json"))
    info.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    add_json(info)

    zones = subcommand(
        sub, "zones", "report the zones of an image, like blkzone report", cmd_zones,
        description="Report zones, like blkzone report: index, start LBA, write pointer LBA, capacity and "
                    "size in blocks (all in hex), state. Lines are printed as they are read, so large devices "
                    "list at once; --start and --count page through them.",
        examples=("zcsdfs zones dev.zns", "zcsdfs zones dev.zns --start 1000 --count 20",
                  "zcsdfs zones dev.zns --json | jq '.[] | select(.state != \"EMPTY\")'"))
    zones.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    zones.add_argument("--start", type=count, default=0, metavar="ZONE", help="first zone to list (default 0)")
    zones.add_argument("--count", type=count, metavar="N", help="list at most N zones (default: all)")
    add_json(zones)

    zsub = group(sub, "zone", "zone management: reset, open, close, finish",
                 "Send one zone management command to an image, as blkzone does to a drive.",
                 ("zcsdfs zone reset dev.zns 3", "zcsdfs zone finish dev.zns 5"))
    for action, what in (("reset", "reset a zone: its write pointer goes back to its start (data is lost)"),
                         ("open", "open a zone explicitly: it stays open until closed, finished or full"),
                         ("close", "close an open zone: it keeps its write pointer and frees an open resource"),
                         ("finish", "finish a zone: it becomes FULL")):
        p = subcommand(zsub, action, what, cmd_zone, examples=(f"zcsdfs zone {action} dev.zns 3",))
        p.add_argument("image")
        p.add_argument("zone", type=count)


def geometry_from_args(args) -> Geometry:
    base = dict(PRESETS[args.preset])
    preset_bs = base["block_size"]
    bs = preset_bs if args.block_size is None else args.block_size
    if not 512 <= bs <= 65536 or bs & (bs - 1):
        raise InvalidField(f"--block-size must be a power of two from 512 to 65536, not {bs}")

    def blocks(nbytes: int, what: str) -> int:
        if nbytes <= 0 or nbytes % bs:
            raise InvalidField(f"{what} ({nbytes} bytes) must be a positive multiple of the block size ({bs})")
        return nbytes // bs

    # The preset's sizes are kept in bytes when the block size changes.
    base["zone_size"] = blocks(base["zone_size"] * preset_bs, "the preset's zone size")
    base["zone_capacity"] = blocks(base["zone_capacity"] * preset_bs, "the preset's zone capacity")
    base["block_size"] = bs
    if args.zone_size is not None:
        base["zone_size"] = blocks(args.zone_size, "--zone-size")
        if args.zone_capacity is None:
            base["zone_capacity"] = base["zone_size"]
    if args.zone_capacity is not None:
        base["zone_capacity"] = blocks(args.zone_capacity, "--zone-capacity")
    for name in ("zones", "max_open", "max_active"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    if base["zones"] < 1:
        raise InvalidField(f"--zones must be at least 1, not {base['zones']}")
    return Geometry(**base)


def cmd_create(args) -> int:
    geometry = geometry_from_args(args)
    with progress(f"creating {args.image}", show=geometry.zones >= 100_000):
        with ZonedDevice.create(args.image, geometry) as device:
            text = describe_geometry(device.geometry)
    console.print(f"created {args.image}: {text}", markup=False)
    return 0


def cmd_info(args) -> int:
    with build_stack(args.image, readonly=True, upto="device") as stack:  # None: the default device
        if args.json:
            print_json(info_json(stack.device))
        else:
            show_info(stack.device)
    return 0


def cmd_zones(args) -> int:
    with build_stack(args.image, readonly=True, upto="device") as stack:  # None: the default device
        device = stack.device
        total = device.geometry.zones
        if args.start >= total and total:
            raise InvalidField(f"--start {args.start} is past the last zone ({total - 1})")
        end = total if args.count is None else min(total, args.start + args.count)
        if args.json:
            stream_zones_json(device, args.start, end)
        else:
            stream_zones(device, args.start, end)
    return 0


def cmd_zone(args) -> int:
    with ZonedDevice.open(args.image) as device:
        getattr(device, {"open": "open_zone"}.get(args.action, args.action))(args.zone)
        zone = device.zone(args.zone)
    console.print(f"zone {zone.index}: {zone.state.name}, write pointer {zone.write_pointer:#x}")
    return 0


def describe_geometry(g: Geometry) -> str:
    limit = lambda n: str(n) if n else "unlimited"  # noqa: E731
    size, cap = g.zone_size * g.block_size, g.zone_capacity * g.block_size
    writable = "" if cap == size else f" ({size_text(cap)} writable)"
    return (f"{g.zones:,} zones of {size_text(size)}{writable}, {g.block_size}-byte blocks, "
            f"{limit(g.max_open)} open, {limit(g.max_active)} active")


def _state_counts(device: ZonedDevice) -> tuple[dict[ZoneState, int], int]:
    """Zones per state and blocks written in open or closed zones, in batches."""
    states = {state: 0 for state in ZoneState}
    used = 0
    for first in range(0, device.geometry.zones, REPORT_BATCH):
        for z in device.report(first, REPORT_BATCH):
            states[z.state] += 1
            if z.state is not ZoneState.FULL:
                used += min(z.write_pointer, z.start + z.capacity) - z.start
    return states, used


def info_json(device: ZonedDevice) -> dict:
    g = device.geometry
    states, used = _state_counts(device)
    return {"image": device.path, "zones": g.zones, "zone_size_bytes": g.zone_size * g.block_size,
            "zone_capacity_bytes": g.zone_capacity * g.block_size, "block_size": g.block_size,
            "max_open": g.max_open, "max_active": g.max_active, "capacity_bytes": g.capacity_bytes,
            "addressable_bytes": g.blocks * g.block_size,
            "zone_states": {state.name: n for state, n in states.items() if n},
            "blocks_in_open_or_closed_zones": used}


def show_info(device: ZonedDevice) -> None:
    g = device.geometry
    states, used = _state_counts(device)
    table = Table(show_header=False, box=None)
    table.add_row("image", device.path or "memory")
    table.add_row("geometry", describe_geometry(g))
    table.add_row("capacity", f"{size_text(g.capacity_bytes)} writable of "
                              f"{size_text(g.blocks * g.block_size)} addressable")
    for state, n in states.items():
        if n:
            table.add_row(f"zones {state.name.lower()}", f"{n:,}")
    table.add_row("blocks in open or closed zones", f"{used:,}")
    console.print(table)


ZONE_HEADER = f"{'zone':>8}  {'start':>12}  {'write pointer':>13}  {'capacity':>10}  {'size':>10}  state"


def zone_line(z) -> str:
    return (f"{z.index:>8}  {z.start:>#12x}  {z.write_pointer:>#13x}  {z.capacity:>#10x}  {z.size:>#10x}  "
            f"{z.state.name}")


def _batches(device: ZonedDevice, start: int, end: int):
    """The zones ``start..end-1`` in report-sized batches, with a bar when listing to a file or pipe."""
    show = end - start > 100_000 and not sys.stdout.isatty()  # on a terminal the lines are the progress
    with progress("listing zones", end - start, show=show) as advance:
        for first in range(start, end, REPORT_BATCH):
            zones = device.report(first, min(REPORT_BATCH, end - first))
            yield zones
            advance(len(zones))


def stream_zones(device: ZonedDevice, start: int, end: int) -> None:
    out = sys.stdout
    out.write(ZONE_HEADER + "\n")
    for zones in _batches(device, start, end):
        out.write("".join(zone_line(z) + "\n" for z in zones))
    out.flush()


def stream_zones_json(device: ZonedDevice, start: int, end: int) -> None:
    import json

    out = sys.stdout
    out.write("[")
    sep = "\n"
    for zones in _batches(device, start, end):
        for z in zones:
            out.write(sep + json.dumps({"zone": z.index, "start": z.start, "write_pointer": z.write_pointer,
                                        "capacity": z.capacity, "size": z.size, "state": z.state.name}))
            sep = ",\n"
    out.write("\n]\n")
    out.flush()


def zone_table(device: ZonedDevice, limit: int = 64) -> Table:
    """A rich table of the first ``limit`` zones (the demo's view; ``zones`` streams lines instead)."""
    total = device.geometry.zones
    shown = min(total, limit)
    caption = None if shown == total else f"first {shown} of {total:,} zones; zcsdfs zones lists them all"
    table = Table(title=f"zones of {device.path or 'memory device'}", caption=caption)
    for col in ("zone", "start", "write pointer", "capacity", "size", "state"):
        table.add_column(col, justify="left" if col == "state" else "right")
    for z in device.report(0, shown):
        style = STATE_STYLE[z.state]
        table.add_row(str(z.index), f"{z.start:#x}", f"{z.write_pointer:#x}", f"{z.capacity:#x}",
                      f"{z.size:#x}", f"[{style}]{z.state.name}[/]")
    return table
