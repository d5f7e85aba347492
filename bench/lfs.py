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

3. Mount time and metadata RAM for a volume of ``--files`` files (default
   100,000) of about ``--file-kib`` KiB each (default 10: about 1 GiB) in
   100 directories, on the image backend (``qemu`` geometry, the image in
   /dev/shm). A fresh process mounts it; it reports the first mount, the
   median of ``--rounds`` more, the RSS it grew by (which also counts the
   image pages mount read through the mapping) and the Python heap the
   mounted file system holds (tracemalloc, in a mount of its own). The
   anchors, from the same run: ``json.loads`` of the same metadata (every
   inode's attributes, entries and extents as a JSON document) with the heap
   its result holds, and ``os.stat`` of as many files on tmpfs. Issue 3's
   targets: mount <= 2 s, metadata RAM <= 200 MiB.

    python bench/lfs.py [--sections wa,throughput,mount] [--zones N] [--zone-blocks N] [--turns T]
                        [--rounds R] [--mib M] [--files N] [--file-kib K]

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
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

from rich.console import Console
from rich.table import Table

from zcsdfs.lfs import mkfs, mount
from zcsdfs.zns import Geometry, ZonedDevice

KiB, MiB = 1 << 10, 1 << 20
BS = 4 * KiB
UTILISATIONS = (0.5, 0.6, 0.7, 0.8, 0.9)
POLICIES = ("greedy", "cost-benefit")
WORKLOADS = ("uniform", "hot/cold 80/20")
SECTIONS = ("wa", "throughput", "mount")


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


def scratch_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def build_volume(path: str, files: int, file_kib: int) -> float:
    """Fill a fresh qemu-geometry image with ``files`` files in 100 directories; return the seconds it took."""
    device = ZonedDevice.create(path, "qemu")
    mkfs(device)
    fs = mount(device)
    start = time.perf_counter()
    body = os.urandom(2 * file_kib * KiB)
    dirs = [fs.mkdir(fs.ROOT, f"dir{i:03d}") for i in range(100)]
    for i in range(files):
        ino = fs.create(dirs[i % len(dirs)], f"file-{i:06d}")
        fs.write(ino, 0, body[:file_kib * KiB // 2 + i * 4099 % (file_kib * KiB)])  # 0.5 to 1.5 times file_kib
    fs.unmount()
    device.close_device()
    return time.perf_counter() - start


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def metadata_json(fs) -> str:
    """The mounted metadata as one JSON document: what a program keeping it in a dict would load."""
    doc = {}
    for node in fs.ns.inodes.values():
        entry = dict(mode=node.mode, uid=node.uid, gid=node.gid, nlink=node.nlink, size=node.size,
                     atime=node.atime_ns, mtime=node.mtime_ns, ctime=node.ctime_ns)
        if node.is_dir:
            entry["entries"] = node.entries
        elif node.is_reg:
            entry["extents"] = list(node.extents)
        doc[str(node.ino)] = entry
    return json.dumps(doc)


def measure_mount(path: str, rounds: int) -> dict:
    """Run in a fresh process: mount figures for the volume at ``path``, and the json anchor's."""
    device = ZonedDevice.open(path)
    before = rss()
    start = time.perf_counter()
    fs = mount(device)
    first = time.perf_counter() - start
    grown = rss() - before
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fs = mount(device)
        times.append(time.perf_counter() - start)
    facts = dict(files=sum(node.is_reg for node in fs.ns.inodes.values()),
                 data=sum(node.size for node in fs.ns.inodes.values() if node.is_reg),
                 chunks=sum(len(c) for c in fs.ns.chunks.values()),
                 body_blocks=sum(c.blocks for cs in fs.ns.chunks.values() for c in cs))
    doc = metadata_json(fs)
    del fs
    tracemalloc.start()
    fs = mount(device)
    heap = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del fs
    json_times = []
    for _ in range(rounds):
        start = time.perf_counter()
        loaded = json.loads(doc)
        json_times.append(time.perf_counter() - start)
        del loaded
    tracemalloc.start()
    loaded = json.loads(doc)  # kept alive while measured
    json_heap = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del loaded
    device.close_device()
    return dict(first=first, median=statistics.median(times), rss=grown, heap=heap, json_bytes=len(doc),
                json_time=statistics.median(json_times), json_heap=json_heap, **facts)


def stat_anchor(files: int) -> float:
    """Seconds to os.stat ``files`` empty files in 100 directories on tmpfs (created first, not timed)."""
    root = tempfile.mkdtemp(dir=scratch_dir(), prefix="zcsdfs-bench-")
    try:
        paths = []
        for i in range(100):
            os.mkdir(os.path.join(root, f"dir{i:03d}"))
        for i in range(files):
            path = os.path.join(root, f"dir{i % 100:03d}", f"file-{i:06d}")
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            paths.append(path)
        start = time.perf_counter()
        for path in paths:
            os.stat(path)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(root)


def mount_table(args) -> Table:
    path = os.path.join(scratch_dir(), f"zcsdfs-bench-{os.getpid()}.img")
    try:
        built = build_volume(path, args.files, args.file_kib)
        child = subprocess.run([sys.executable, __file__, "--measure-mount", path, "--rounds", str(args.rounds)],
                               check=True, capture_output=True, text=True)
        m = json.loads(child.stdout)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    stat_time = stat_anchor(args.files)
    table = Table(title=f"mount: {m['files']:,} files, {m['data'] / MiB:,.0f} MiB of data, image backend (qemu, "
                        f"in {scratch_dir()}); body {m['chunks']} chunks, {m['body_blocks'] * BS / MiB:.1f} MiB; "
                        f"built in {built:.0f} s")
    table.add_column("figure")
    table.add_column("lfs mount", justify="right")
    table.add_column(f"json.loads ({m['json_bytes'] / MiB:.0f} MiB doc)", justify="right")
    table.add_column("os.stat each, tmpfs", justify="right")
    table.add_column("target", justify="right")
    table.add_column("lfs / json", justify="right")
    table.add_row("time, first (fresh process)", f"{m['first']:.2f} s", "", "", "<= 2 s", "")
    table.add_row(f"time, median of {args.rounds}", f"{m['median']:.2f} s", f"{m['json_time']:.2f} s",
                  f"{stat_time:.2f} s", "<= 2 s", f"{m['median'] / m['json_time']:.2f}")
    table.add_row("metadata RAM (tracemalloc)", f"{m['heap'] / MiB:.0f} MiB", f"{m['json_heap'] / MiB:.0f} MiB",
                  "", "<= 200 MiB", f"{m['heap'] / m['json_heap']:.2f}")
    table.add_row("RSS growth, first mount", f"{m['rss'] / MiB:.0f} MiB", "", "", "", "")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=24, help="zones of the WA device (default 24)")
    parser.add_argument("--zone-blocks", type=int, default=128, help="4 KiB blocks per zone (default 128)")
    parser.add_argument("--turns", type=float, default=2.0, help="overwrites per live block (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per contender (default 3)")
    parser.add_argument("--mib", type=int, default=64, help="throughput file size in MiB (default 64)")
    parser.add_argument("--ops", type=int, default=4096, help="random 4 KiB operations per round (default 4096)")
    parser.add_argument("--files", type=int, default=100_000, help="files of the mount volume (default 100000)")
    parser.add_argument("--file-kib", type=int, default=10, help="mean file size of the mount volume (default 10)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--measure-mount", metavar="IMAGE", help=argparse.SUPPRESS)  # the child of "mount"
    args = parser.parse_args()
    if args.measure_mount:
        print(json.dumps(measure_mount(args.measure_mount, args.rounds)))
        return
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    console = Console(width=max(Console().width, 150))  # the WA table is wide; keep its rows on one line
    start = time.perf_counter()
    if "wa" in sections:
        console.print(wa_table(args))
    if "throughput" in sections:
        console.print(throughput_table(args))
    if "mount" in sections:
        console.print(mount_table(args))
    if "wa" in sections:
        console.print("[dim]model: greedy with uniform traffic, x = exp(-(1-x)/u), WA = 1/(1-x) "
                      "(Desnoyers 2012; Hu et al. 2009)[/]")
    console.print(f"[dim]total {time.perf_counter() - start:.0f} s[/]")


if __name__ == "__main__":
    main()
