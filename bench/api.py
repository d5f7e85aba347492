"""The os-compatible API: latency and throughput next to the real os and a Python FUSE file system.

Prints, for each contender, min / median / max over ``--runs`` runs (at
least 3; the contenders take turns within each run, so the anchors are
measured in the same run and under the same load, which is printed):

- 4 KiB random ``pread`` and ``pwrite`` latency (each run's median and p99)
  on a ``--mib`` MiB file;
- 4 KiB ``pwrite`` latency appending to a new file, and overwriting at random
  over a 16 MiB file;
- 1 MiB sequential write and read throughput over the ``--mib`` file;
- file create+close and ``stat`` rates over ``--files`` files.

Targets (issue 20) are judged on medians: 4 KiB pwrite (random, append and
16 MiB overwrite) at most 2x ``os`` on tmpfs, creates at least 20,000/s.

Contenders: zcsdfs on the memory backend and on the image backend (image
in tmpfs), the real ``os`` on tmpfs (/dev/shm) and on the disk (/var/tmp),
and a FUSE file system written with mfusepy (an in-memory dict of
bytearrays, the thinnest FUSE file system Python allows), when mfusepy,
libfuse3 and root are available (``pip install mfusepy``; it is not a
dependency of zcsdfs). A last table shows what posix_fadvise changes:
device bytes read by sequential reads with and without SEQUENTIAL, and by
reads after WILLNEED and after DONTNEED.

    python bench/api.py [--runs R] [--mib M] [--files N] [--ops N] [--only NAME]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from rich.console import Console
from rich.table import Table

import zcsdfs
from zcsdfs.zns import Geometry, ZonedDevice
from zcsdfs.lfs import mkfs

KiB, MiB = 1 << 10, 1 << 20
console = Console(width=None if sys.stdout.isatty() else 220)  # a file or a pipe gets the whole table


class RealOs:
    """The real os, in a directory."""

    def __init__(self, name: str, root: str):
        self.name = name
        self.root = root
        self.open, self.close, self.pread, self.pwrite = os.open, os.close, os.pread, os.pwrite
        self.stat = os.stat

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Zcsdfs:
    """A zcsdfs Volume: its methods are the os functions."""

    def __init__(self, name: str, volume, image: str | None = None):
        self.name = name
        self.volume = volume
        self.image = image
        v = volume
        self.open, self.close, self.pread, self.pwrite, self.stat = v.open, v.close, v.pread, v.pwrite, v.stat

    def path(self, rel: str) -> str:
        return "/" + rel

    def cleanup(self) -> None:
        self.volume.unmount()
        if self.image:
            os.unlink(self.image)


MFUSE = textwrap.dedent('''
    import errno, stat, sys, time
    from mfusepy import FUSE, FuseOSError, Operations

    class Memory(Operations):
        """Files in a dict; just enough for the benchmark."""
        use_ns = True

        def __init__(self):
            now = time.time_ns()
            self.files = {"/": dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_size=0,
                                    st_ctime=now, st_mtime=now, st_atime=now)}
            self.data = {}

        def getattr(self, path, fh=None):
            try:
                return self.files[path]
            except KeyError:
                raise FuseOSError(errno.ENOENT)

        def readdir(self, path, fh):
            return [".", ".."] + [p[1:] for p in self.files if p != "/"]

        def create(self, path, mode, fi=None):
            now = time.time_ns()
            self.files[path] = dict(st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=0,
                                    st_ctime=now, st_mtime=now, st_atime=now)
            self.data[path] = bytearray()
            return 0

        def open(self, path, flags):
            return 0

        def read(self, path, size, offset, fh):
            return bytes(self.data[path][offset:offset + size])

        def write(self, path, data, offset, fh):
            buf = self.data[path]
            if offset > len(buf):
                buf.extend(bytes(offset - len(buf)))
            buf[offset:offset + len(data)] = data
            self.files[path]["st_size"] = len(buf)
            return len(data)

        def truncate(self, path, length, fh=None):
            del self.data[path][length:]
            self.files[path]["st_size"] = length

    FUSE(Memory(), sys.argv[1], foreground=True, nothreads=True)
''')


class MfuseFs(RealOs):
    """The mfusepy file system above, mounted in a child process."""

    def __init__(self, root: str):
        super().__init__("mfusepy FUSE (memory)", root)
        self.script = os.path.join(tempfile.mkdtemp(), "mfuse_memory.py")
        with open(self.script, "w") as f:
            f.write(MFUSE)
        self.proc = subprocess.Popen([sys.executable, self.script, root], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.ismount(root):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mfusepy did not mount: {self.proc.stderr.read().decode()[-300:]}")
            time.sleep(0.05)

    def cleanup(self) -> None:
        subprocess.run(["fusermount3", "-u", self.root], check=False)
        self.proc.wait(timeout=20)
        os.rmdir(self.root)
        shutil.rmtree(os.path.dirname(self.script), ignore_errors=True)


def contenders(only: str | None):
    made = []

    def want(name):
        return only is None or only in name

    if want("zcsdfs memory"):
        made.append(lambda: Zcsdfs("zcsdfs memory", zcsdfs.Volume.memory("qemu")))
    if want("zcsdfs image"):
        def image():
            path = tempfile.mktemp(suffix=".zns", dir="/dev/shm")
            with ZonedDevice.create(path, Geometry.preset("qemu")) as device:
                mkfs(device)
            return Zcsdfs("zcsdfs image (tmpfs)", zcsdfs.Volume(path), path)
        made.append(image)
    if want("os tmpfs"):
        made.append(lambda: RealOs("os tmpfs", tempfile.mkdtemp(dir="/dev/shm")))
    if want("os disk"):
        made.append(lambda: RealOs("os disk (/var/tmp)", tempfile.mkdtemp(dir="/var/tmp")))
    if want("mfusepy"):
        made.append(lambda: MfuseFs(tempfile.mkdtemp()))
    return made


def latencies(fn, args_list) -> tuple[float, float]:
    """Median and p99 of one call each, in microseconds."""
    clock = time.perf_counter_ns
    samples = []
    for args in args_list:
        t0 = clock()
        fn(*args)
        samples.append(clock() - t0)
    samples.sort()
    return statistics.median(samples) / 1e3, samples[int(len(samples) * 0.99)] / 1e3


def run_one(c, mib: int, files: int, ops: int) -> dict:
    out = {}
    size = mib * MiB
    block = os.urandom(MiB)
    fd = c.open(c.path("big"), os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    try:
        t0 = time.perf_counter()
        for i in range(mib):
            c.pwrite(fd, block, i * MiB)
        out["seq write"] = size / (time.perf_counter() - t0) / MiB
        t0 = time.perf_counter()
        for i in range(mib):
            c.pread(fd, MiB, i * MiB)
        out["seq read"] = size / (time.perf_counter() - t0) / MiB
        rng = random.Random(1)
        offsets = [(fd, 4 * KiB, rng.randrange(size // (4 * KiB)) * 4 * KiB) for _ in range(ops)]
        out["pread"] = latencies(c.pread, offsets)
        page = os.urandom(4 * KiB)
        out["pwrite"] = latencies(c.pwrite, [(fd, page, off) for _, _, off in offsets])
    finally:
        c.close(fd)
    fd = c.open(c.path("appended"), os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    try:
        pages = min(ops, size // (4 * KiB))
        out["pwrite append"] = latencies(c.pwrite, [(fd, page, i * 4 * KiB) for i in range(pages)])
    finally:
        c.close(fd)
    fd = c.open(c.path("overwritten"), os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    try:
        for i in range(16):
            c.pwrite(fd, block, i * MiB)
        rng = random.Random(2)
        spread = [(fd, page, rng.randrange(16 * MiB // (4 * KiB)) * 4 * KiB) for _ in range(ops)]
        out["pwrite 16M"] = latencies(c.pwrite, spread)
    finally:
        c.close(fd)
    names = [c.path(f"f{i:06d}") for i in range(files)]
    t0 = time.perf_counter()
    for name in names:
        c.close(c.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
    out["creates"] = files / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for name in names:
        c.stat(name)
    out["stats"] = files / (time.perf_counter() - t0)
    return out


def fadvise_effects(mib: int) -> Table:
    """Device bytes read under each advice, on a fresh memory volume."""
    volume = zcsdfs.Volume.memory("qemu")
    device = volume.device
    table = Table(title=f"posix_fadvise effects ({mib} MiB file, 64 KiB reads)")
    for column in ("advice", "reads", "device MiB read", "cache hits"):
        table.add_column(column, justify="left" if column == "advice" else "right")
    fd = volume.open("/f", os.O_CREAT | os.O_RDWR, 0o644)
    volume.pwrite(fd, os.urandom(mib * MiB), 0)

    def device_read() -> int:
        return device.counters.blocks_read * device.block_size

    def scan(label):
        before, hits = device_read(), volume.vfs.cache.hits
        t0 = time.perf_counter()
        for off in range(0, mib * MiB, 64 * KiB):
            volume.pread(fd, 64 * KiB, off)
        seconds = time.perf_counter() - t0
        table.add_row(label, f"{mib * MiB // (64 * KiB):,} in {seconds * 1e3:.0f} ms",
                      f"{(device_read() - before) / MiB:.1f}", f"{volume.vfs.cache.hits - hits:,}")

    scan("NORMAL")
    volume.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    scan("SEQUENTIAL (readahead)")
    scan("SEQUENTIAL, again (cached)")
    volume.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    volume.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)
    scan("after DONTNEED")
    volume.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    scan("after WILLNEED")
    volume.close(fd)
    volume.unmount()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=128, help="file size for the data tests")
    parser.add_argument("--files", type=int, default=5000, help="files for create and stat rates")
    parser.add_argument("--ops", type=int, default=20000, help="4 KiB operations timed")
    parser.add_argument("--only", help="run only contenders whose name contains this")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (at least 3)")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs: at least 3, so that a median means something")

    runs: dict[str, list[dict]] = {}
    loads = []
    makers = contenders(args.only)
    for run in range(args.runs):  # interleaved: every contender once per run, anchors included
        loads.append(os.getloadavg()[0])
        for make in makers:
            try:
                c = make()
            except (ImportError, OSError, RuntimeError) as exc:
                if run == 0:
                    console.print(f"[yellow]skipped a contender: {exc}[/yellow]")
                continue
            try:
                runs.setdefault(c.name, []).append(run_one(c, args.mib, args.files, args.ops))
            finally:
                c.cleanup()
    loads.append(os.getloadavg()[0])
    console.print(table_of(runs, args))
    console.print(f"load average (1 min) at the start of each run and at the end: "
                  f"{', '.join(f'{x:.2f}' for x in loads)} on {os.cpu_count()} CPUs")
    console.print(ratios(runs))
    if args.only is None or "fadvise" in args.only:
        console.print(fadvise_effects(min(args.mib, 64)))


def spread(values, fmt: str) -> str:
    """min / median / max."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


COLUMNS = (  # key, heading, which value of a (median, p99) pair, format
    ("pread", "pread 4K µs", 0, "{:.2f}"), ("pwrite", "pwrite 4K µs", 0, "{:.2f}"),
    ("pwrite append", "pwrite 4K append µs", 0, "{:.2f}"), ("pwrite 16M", "pwrite 4K over 16 MiB µs", 0, "{:.2f}"),
    ("pwrite", "pwrite 4K p99 µs", 1, "{:.1f}"),
    ("seq write", "seq write MiB/s", None, "{:,.0f}"), ("seq read", "seq read MiB/s", None, "{:,.0f}"),
    ("creates", "creates/s", None, "{:,.0f}"), ("stats", "stats/s", None, "{:,.0f}"),
)


def table_of(runs: dict[str, list[dict]], args) -> Table:
    table = Table(title=f"os API: {args.mib} MiB file, {args.ops:,} 4 KiB ops, {args.files:,} files; "
                        f"min / median / max of {args.runs} interleaved runs (latency: each run's median, "
                        f"or p99)")
    table.add_column("contender")
    for _, heading, _, _ in COLUMNS:
        table.add_column(heading, justify="right")
    for name, results in runs.items():
        cells = []
        for key, _, pick, fmt in COLUMNS:
            cells.append(spread([r[key] if pick is None else r[key][pick] for r in results], fmt))
        table.add_row(name, *cells)
    return table


def ratios(runs: dict[str, list[dict]]) -> Table:
    """Each zcsdfs latency over the os-on-tmpfs anchor of the same run: min / median / max."""
    table = Table(title="zcsdfs / os on tmpfs, same run (median latency; targets: pwrite <= 2x, creates >= 20,000/s)")
    table.add_column("contender")
    keys = ("pread", "pwrite", "pwrite append", "pwrite 16M")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_column("creates/s (target >= 20,000)", justify="right")
    anchor = runs.get("os tmpfs")
    for name in ("zcsdfs memory", "zcsdfs image (tmpfs)"):
        if name not in runs:
            continue
        ours = runs[name]
        cells = []
        for key in keys:
            if anchor:
                cells.append(spread([o[key][0] / a[key][0] for o, a in zip(ours, anchor)], "{:.2f}x"))
            else:
                cells.append("no anchor")
        cells.append(spread([o["creates"] for o in ours], "{:,.0f}"))
        table.add_row(name, *cells)
    return table
    if args.only is None or "fadvise" in args.only:
        console.print(fadvise_effects(min(args.mib, 64)))


if __name__ == "__main__":
    main()
