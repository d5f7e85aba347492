"""The log-structured file system: write amplification under GC, and throughput next to tmpfs.

Prints, from one run:

1. Write amplification against utilisation (50-90%) for 4 KiB overwrites,
   uniform random and hot/cold (80% of writes to 20% of the blocks), with
   greedy and with cost-benefit victim selection, next to the analytical
   curve for greedy under uniform traffic. Each run fills one file to the
   utilisation (of ``statfs`` blocks), overwrites it ``--turns`` times
   over, and measures only the last half of the overwrites (steady state).
   "GC WA" is (user + relocated blocks) / user blocks, the quantity the
   model predicts; "device WA" adds what the log format costs (one header
   block per 4 KiB unit, metadata units, checkpoints).

2. Sequential 1 MiB and random 4 KiB write and read throughput at the lfs
   level on the memory backend, next to ``os.pwrite``/``os.pread`` of the
   same pattern on a file in tmpfs (/dev/shm), with ratios. Each contender
   runs ``--rounds`` rounds, taking turns; the median is shown.

    python bench/lfs.py [--zones N] [--zone-blocks N] [--turns T] [--rounds R] [--mib M]

The model. With uniform random writes and large zones, greedy cleaning
behaves like cleaning the oldest zone (Desnoyers, "Analytic modeling of SSD
write performance", SYSTOR 2012; Hu et al., "Write amplification analysis
in flash-based solid state drives", SYSTOR 2009). A zone stays in the log
while the whole physical space is written once; of those writes a fraction
(1 - x) are user writes, spread uniformly over u times the physical
space, so a block survives them with probability x = exp(-(1 - x) / u).
The victim is then a fraction x valid and WA = 1 / (1 - x). The printed
bound 1 / (1 - u) is the worst case (a victim exactly as full as the
average). Utilisation here is of the space files may fill; GC also has the
reserve and the head zones, so measured WA should sit at or below the model.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time

from rich.console import Console
from rich.table import Table

from zcsdfs.lfs import mkfs, mount
from zcsdfs.zns import Geometry, ZonedDevice

KiB, MiB = 1 << 10, 1 << 20
BS = 4 * KiB
UTILISATIONS = (0.5, 0.6, 0.7, 0.8, 0.9)
POLICIES = ("greedy", "cost-benefit")
WORKLOADS = ("uniform", "hot/cold 80/20")


def model_victim_valid(u: float) -> float:
    """The non-trivial root of x = exp(-(1 - x) / u) in (0, u), by bisection (x = 1 is the trivial one)."""
    lo, hi = 0.0, u
    for _ in range(100):
        mid = (lo + hi) / 2
        if mid - math.exp(-(1 - mid) / u) < 0:
            lo = mid
        else:
            hi = mid
    return lo


def model_wa(u: float) -> float:
    return 1 / (1 - model_victim_valid(u))


def overwrite_run(geometry: Geometry, u: float, workload: str, policy: str, turns: float, seed: int):
    """(GC WA, device WA) over the second half of ``turns`` overwrites of a file filling ``u`` of the space."""
    device = ZonedDevice.memory(geometry)
    mkfs(device)
    fs = mount(device, gc_policy=policy)
    blocks = int(fs.statfs().f_blocks * u)
    ino = fs.create(fs.ROOT, "data")
    fs.write(ino, 0, bytes(blocks * BS))
    rng = random.Random(seed)
    hot = max(1, blocks // 5)
    if workload == "uniform":
        pick = lambda: rng.randrange(blocks)  # noqa: E731
    else:
        pick = lambda: rng.randrange(hot) if rng.random() < 0.8 else rng.randrange(hot, blocks)  # noqa: E731
    block = bytes(BS)
    total = int(turns * blocks)
    for _ in range(total // 2):
        fs.write(ino, pick() * BS, block)
    user0, moved0 = fs.user_blocks_written, fs.gc_blocks_moved
    device0 = fs.writer.blocks_written + fs.checkpointer.blocks_written
    for _ in range(total - total // 2):
        fs.write(ino, pick() * BS, block)
    user = fs.user_blocks_written - user0
    moved = fs.gc_blocks_moved - moved0
    written = fs.writer.blocks_written + fs.checkpointer.blocks_written - device0
    return (user + moved) / user, written / user


def wa_table(args) -> Table:
    geometry = Geometry(zones=args.zones, zone_size=args.zone_blocks, zone_capacity=args.zone_blocks, block_size=BS)
    table = Table(title=f"write amplification, 4 KiB overwrites, {args.zones} zones of {args.zone_blocks} blocks, "
                        f"{args.turns} turns (GC WA / device WA)")
    table.add_column("util", justify="right")
    table.add_column("model greedy\nuniform", justify="right")
    table.add_column("bound\n1/(1-u)", justify="right")
    for workload in WORKLOADS:
        for policy in POLICIES:
            table.add_column(f"{workload}\n{policy}", justify="right")
    for i, u in enumerate(UTILISATIONS):
        row = [f"{u:.0%}", f"{model_wa(u):.2f}", f"{1 / (1 - u):.2f}"]
        for workload in WORKLOADS:
            for policy in POLICIES:
                gc_wa, device_wa = overwrite_run(geometry, u, workload, policy, args.turns, seed=i)
                row.append(f"{gc_wa:.2f} / {device_wa:.2f}")
        table.add_row(*row)
    return table


class LfsFile:
    """One file on a fresh lfs over a memory device large enough for the runs."""

    def __init__(self, size: int):
        zone_blocks = 8 * MiB // BS
        zones = 2 + 4 * size // (8 * MiB) + 8
        device = ZonedDevice.memory(Geometry(zones=zones, zone_size=zone_blocks, zone_capacity=zone_blocks,
                                             block_size=BS))
        mkfs(device)
        self.fs = mount(device)
        self.ino = self.fs.create(self.fs.ROOT, "bench")

    def pwrite(self, data, offset: int) -> None:
        self.fs.write(self.ino, offset, data)

    def pread(self, size: int, offset: int) -> bytes:
        return self.fs.read(self.ino, offset, size)

    def close(self) -> None:
        self.fs.unmount()


class TmpfsFile:
    """The anchor: a file on tmpfs through os.pwrite/os.pread."""

    def __init__(self, size: int):
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.fd, self.path = tempfile.mkstemp(dir=directory, prefix="zcsdfs-bench-")

    def pwrite(self, data, offset: int) -> None:
        os.pwrite(self.fd, data, offset)

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        os.close(self.fd)
        os.unlink(self.path)


def one_round(kind, size: int, ops: int, seed: int) -> dict[str, float]:
    """Bytes per second of each pattern on a fresh file of ``kind``."""
    f = kind(size)
    try:
        big, small = os.urandom(MiB), os.urandom(BS)
        offsets = [random.Random(seed + i).randrange(size // BS) * BS for i in range(ops)]
        out = {}
        t = time.perf_counter()
        for off in range(0, size, MiB):
            f.pwrite(big, off)
        out["sequential 1 MiB write"] = size / (time.perf_counter() - t)
        t = time.perf_counter()
        for off in range(0, size, MiB):
            f.pread(MiB, off)
        out["sequential 1 MiB read"] = size / (time.perf_counter() - t)
        t = time.perf_counter()
        for off in offsets:
            f.pwrite(small, off)
        out["random 4 KiB write"] = ops * BS / (time.perf_counter() - t)
        t = time.perf_counter()
        for off in offsets:
            f.pread(BS, off)
        out["random 4 KiB read"] = ops * BS / (time.perf_counter() - t)
        return out
    finally:
        f.close()


def throughput_table(args) -> Table:
    size = args.mib * MiB
    ops = args.ops
    results = {LfsFile: [], TmpfsFile: []}
    for r in range(args.rounds + 1):  # round 0 warms up and is not counted
        for kind in results:
            figures = one_round(kind, size, ops, seed=r)
            if r:
                results[kind].append(figures)
    table = Table(title=f"throughput: lfs on the memory backend vs os.pwrite/os.pread on tmpfs "
                        f"({args.mib} MiB file, {ops} random ops, median of {args.rounds} rounds)")
    table.add_column("pattern")
    table.add_column("lfs (memory)", justify="right")
    table.add_column("tmpfs", justify="right")
    table.add_column("lfs / tmpfs", justify="right")
    for pattern in results[LfsFile][0]:
        lfs = statistics.median(r[pattern] for r in results[LfsFile])
        tmpfs = statistics.median(r[pattern] for r in results[TmpfsFile])
        table.add_row(pattern, rate(lfs), rate(tmpfs), f"{lfs / tmpfs:.2f}")
    return table


def rate(bytes_per_second: float) -> str:
    return f"{bytes_per_second / MiB:,.0f} MiB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=24, help="zones of the WA device (default 24)")
    parser.add_argument("--zone-blocks", type=int, default=128, help="4 KiB blocks per zone (default 128)")
    parser.add_argument("--turns", type=float, default=2.0, help="overwrites per live block (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per contender (default 3)")
    parser.add_argument("--mib", type=int, default=64, help="throughput file size in MiB (default 64)")
    parser.add_argument("--ops", type=int, default=4096, help="random 4 KiB operations per round (default 4096)")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 150))  # the WA table is wide; keep its rows on one line
    start = time.perf_counter()
    console.print(wa_table(args))
    console.print(throughput_table(args))
    console.print(f"[dim]model: greedy with uniform traffic, x = exp(-(1-x)/u), WA = 1/(1-x) "
                  f"(Desnoyers 2012; Hu et al. 2009); total {time.perf_counter() - start:.0f} s[/]")


if __name__ == "__main__":
    main()
