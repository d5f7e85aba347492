"""RocksDB with zcsdfs inside: zcsdfs.rocksdb in-process next to rocksdict, and placement.

Prints, from one run:

1. db_bench's fillrandom, readrandom, seekrandom and overwrite for ``--keys``
   keys (default 1M; 16-byte keys, 100-byte values), one Python call per
   operation on each side: ``zcsdfs.rocksdb`` on an in-process memory
   volume, rocksdict (pip install rocksdict; its own RocksDB build) on tmpfs
   (/dev/shm), and, with root and fuse3, rocksdict on a zcsdfs FUSE mount
   (``zcsdfs mount``, image in /dev/shm). Same options where both APIs have
   them: no compression, 64 MiB memtables, 4 KiB blocks, 8 MiB block cache,
   WAL on without sync. readrandom and seekrandom do ``--reads`` operations
   (default keys/10) after the fill; seekrandom reads the entry it lands on.
   Issue 18's target: fillrandom and readrandom >= 50% of rocksdict on tmpfs.

2. File-system write amplification (device bytes written / bytes RocksDB
   wrote to its files) with and without lifetime hints, on a device sized so
   the DB fills about 80% of it (``--wa-keys`` keys of 1000 bytes, written
   and then overwritten ``--wa-turns`` times in random order), with the GC
   blocks moved and the zones freed whole (reset without GC moving anything).
   Target with hints: <= 1.1.

3. Two 1%-selective scans over ``--scan-keys`` keys (default 1M, 100-byte values,
   fully compacted): a key prefix (the matching keys are adjacent) and a 2-byte
   field at the start of the value (the matching keys are spread over the whole DB),
   each by the host iterator (``scan_prefix(...)``) and offloaded
   (``scan_prefix(..., offload=True)``), each on a freshly opened DB (cold block
   cache; the kernel is loaded, verified and run once before the clock starts). Bytes from the
   file system to the host: "at open" is what RocksDB reads when it opens the tables
   (footers, index, filter, properties blocks: both sides pay it); "during the scan"
   is what RocksDB read meanwhile, plus what the kernels returned. Targets: >= 20x
   fewer bytes to the host, and faster than the host iterator.

    python bench/rocksdb.py [--keys N] [--reads N] [--rounds R] [--wa-keys N] [--wa-turns T]
                            [--scan-keys N] [--sections perf,fuse,wa,scan] [--quick]

The perf section runs ``--rounds`` (default 3) rounds, each side freshly created in each,
alternating which goes first, and prints min / median / max and the load average: on a
shared machine one run says little. ``--quick`` is every section at small sizes (tests).
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
import time

from rich.console import Console
from rich.table import Table

import zcsdfs
import zcsdfs.lfs.filesystem as lfs_filesystem
from zcsdfs.rocksdb import DB, Options
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.geometry import Geometry

console = Console()
MiB = 1 << 20
VALUE = 100
SPACE_AMP = 2  # an LSM tree holds up to about twice its live data before compaction catches up


def keys_and_values(n: int, seed: int):
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    return [b"%016d" % k for k in order], rng.randbytes(VALUE * 64)


class Ours:
    name = "zcsdfs.rocksdb (in-process)"

    def __init__(self):
        self.vol = zcsdfs.Volume(ZonedDevice.memory("qemu"))
        self.db = DB("/db", volume=self.vol, options=Options(
            write_buffer_size=64 * MiB, block_size=4096, block_cache_size=8 * MiB, compression="none"))
        self.put, self.get = self.db.put, self.db.get

    def seek(self, key):
        it = self.db.iter()
        it.seek(key)
        out = (it.key(), it.value()) if it.valid() else None
        it.close()
        return out

    def close(self):
        self.db.close()
        self.vol.unmount()


class Rocksdict:
    def __init__(self, name: str, path: str):
        from rocksdict import BlockBasedOptions, Cache, DBCompressionType, Options as RdOptions, Rdict
        self.name = name
        opt = RdOptions(raw_mode=True)
        opt.create_if_missing(True)
        opt.set_write_buffer_size(64 * MiB)
        opt.set_compression_type(DBCompressionType.none())
        table = BlockBasedOptions()
        table.set_block_size(4096)
        table.set_block_cache(Cache(8 * MiB))
        opt.set_block_based_table_factory(table)
        self.db = Rdict(path, opt)
        self.put = self.db.put
        self.get = self.db.get

    def seek(self, key):
        it = self.db.iter()
        it.seek(key)
        out = (it.key(), it.value()) if it.valid() else None
        del it
        return out

    def close(self):
        self.db.close()


def workload(db, keys, blob, reads: int, seed: int) -> dict:
    rng = random.Random(seed)
    n = len(keys)
    out = {}
    t = time.perf_counter()
    for i, k in enumerate(keys):
        db.put(k, blob[i % 64 * VALUE:i % 64 * VALUE + VALUE])
    out["fillrandom"] = n / (time.perf_counter() - t)
    probe = [keys[rng.randrange(n)] for _ in range(reads)]
    t = time.perf_counter()
    for k in probe:
        if db.get(k) is None:
            raise SystemExit(f"{db.name}: {k!r} missing")
    out["readrandom"] = reads / (time.perf_counter() - t)
    t = time.perf_counter()
    for k in probe:
        db.seek(k)
    out["seekrandom"] = reads / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, k in enumerate(keys):
        db.put(k, blob[(i + 7) % 64 * VALUE:(i + 7) % 64 * VALUE + VALUE])
    out["overwrite"] = n / (time.perf_counter() - t)
    return out


WORKLOADS = ("fillrandom", "readrandom", "seekrandom", "overwrite")


def spread(values) -> str:
    """min / median / max of ops/s over the rounds."""
    v = sorted(values)
    return f"{v[0]:,.0f} / {statistics.median(v):,.0f} / {v[-1]:,.0f}"


def perf(args, fuse: bool) -> None:
    keys, blob = keys_and_values(args.keys, 1)
    work = tempfile.mkdtemp(prefix="zcsdfs-rocksdb-", dir="/dev/shm")
    try:
        import rocksdict  # noqa: F401
        have_rocksdict = True
    except ImportError:
        have_rocksdict = False
        console.print("rocksdict is not installed (pip install rocksdict, or the bench extra): "
                      "zcsdfs.rocksdb alone")
    names, runs = {}, {}  # label -> name, label -> [ops/s dict per round]
    load = [os.getloadavg()[0]]
    try:
        contenders = [("ours", Ours)]
        if have_rocksdict:
            contenders.append(("tmpfs", lambda: Rocksdict("rocksdict on tmpfs", os.path.join(work, "db"))))
        for round_ in range(args.rounds):
            # interleaved, first one way then the other: a change of load hits both sides
            for label, make in contenders[::-1] if round_ % 2 else contenders:
                db = make()
                try:
                    names[label] = db.name
                    runs.setdefault(label, []).append(workload(db, keys, blob, args.reads, 2 + round_))
                finally:
                    db.close()
                    shutil.rmtree(os.path.join(work, "db"), ignore_errors=True)
                load.append(os.getloadavg()[0])
        if fuse and have_rocksdict:
            image, mnt = os.path.join(work, "vol.zns"), os.path.join(work, "mnt")
            os.mkdir(mnt)
            cli = [sys.executable, "-m", "zcsdfs"]
            subprocess.run([*cli, "device", "create", image, "--preset", "qemu"], check=True, capture_output=True)
            subprocess.run([*cli, "mount", image, mnt], check=True)
            try:
                db = Rocksdict("rocksdict on a zcsdfs FUSE mount", os.path.join(mnt, "db"))
                try:
                    names["fuse"] = db.name
                    runs["fuse"] = [workload(db, keys, blob, args.reads, 2)]
                finally:
                    db.close()
            finally:
                subprocess.run([*cli, "umount", mnt], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title=f"{args.keys:,} keys, {VALUE}-byte values; {args.reads:,} reads and seeks: ops/s, "
                        f"min / median / max of {args.rounds} interleaved rounds; load average "
                        f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} CPUs")
    table.add_column("workload")
    for label in runs:
        table.add_column(names[label], justify="right")
    if "tmpfs" in runs:
        table.add_column("ours / tmpfs (medians)", justify="right")
        table.add_column("per round", justify="right")
    for w in WORKLOADS:
        row = [w] + [spread([r[w] for r in rounds]) for rounds in runs.values()]
        if "tmpfs" in runs:
            ours, theirs = [r[w] for r in runs["ours"]], [r[w] for r in runs["tmpfs"]]
            row.append(f"{statistics.median(ours) / statistics.median(theirs):.2f}")
            ratios = sorted(a / b for a, b in zip(ours, theirs))
            row.append(f"{ratios[0]:.2f}-{ratios[-1]:.2f}")
        table.add_row(*row)
    console.print(table)


def wa_run(keys: int, turns: int, hints: bool) -> dict:
    value = 1000
    live = keys * (value + 40)
    zone_blocks = 1024  # 4 MiB zones
    usable_zones = -(-live * SPACE_AMP // (zone_blocks * 4096 * 0.8))
    geometry = Geometry(zones=int(usable_zones) + 2 + 1 + 4 + 4, zone_size=zone_blocks, zone_capacity=zone_blocks,
                        block_size=4096, max_open=10, max_active=12)  # + checkpoint zones, reserve, heads
    victims = []
    real = lfs_filesystem.collect

    def collect(fs, zone):
        moved = real(fs, zone)
        victims.append(moved)
        return moved
    lfs_filesystem.collect = collect
    vol = zcsdfs.Volume(ZonedDevice.memory(geometry))
    rng = random.Random(3)
    full = 0.0
    try:
        opts = Options(write_buffer_size=4 * MiB, target_file_size_base=4 * MiB, max_bytes_for_level_base=16 * MiB,
                       lifetime_hints=hints)
        with DB("/db", volume=vol, options=opts) as db:
            for turn in range(turns + 1):
                order = list(range(keys))
                rng.shuffle(order)
                for i, k in enumerate(order):
                    db.put(b"%016d" % k, rng.randbytes(value))
                    if i % 2000 == 0:
                        s = vol.statvfs("/")
                        full = max(full, 1 - s.f_bfree / s.f_blocks)
            wrote = db.bytes_written
        c = vol.device.counters
        resets = c.total("resets")
        return dict(fs_wa=c.blocks_written * 4096 / wrote, rocksdb_mib=wrote / MiB, device_mib=c.blocks_written * 4096 / MiB,
                    full=full, gc_moved=sum(victims), victims=len(victims), resets=resets)
    finally:
        lfs_filesystem.collect = real
        vol.unmount()


def wa(args) -> None:
    table = Table(title=f"File-system write amplification: {args.wa_keys:,} keys of 1000 bytes, "
                        f"written and overwritten {args.wa_turns} times, device sized for ~80% full")
    for col in ("hints", "peak full", "RocksDB wrote MiB", "device wrote MiB", "FS WA",
                "GC blocks moved", "zones reset", "freed whole"):
        table.add_column(col, justify="right")
    for hints in (True, False):
        try:
            r = wa_run(args.wa_keys, args.wa_turns, hints)
        except OSError as exc:
            table.add_row("on" if hints else "off", f"failed: {exc}")
            continue
        table.add_row("on" if hints else "off", f"{r['full']:.0%}", f"{r['rocksdb_mib']:.0f}", f"{r['device_mib']:.0f}",
                      f"{r['fs_wa']:.3f}", f"{r['gc_moved']:,}", f"{r['resets']}", f"{r['resets'] - r['victims']}")
    console.print(table)


def scan(args) -> None:
    vol = zcsdfs.Volume(ZonedDevice.memory("qemu"))
    with DB("/warm", volume=vol) as db:  # the kernel verified and compiled, its first run: before any clock
        db[b"k"] = b"v"
        db.flush()
        list(db.scan_prefix(b"k", offload=True))
    # no file cache: tables would cross to the host whole when opened, before either scan
    opts = Options(write_buffer_size=16 * MiB, target_file_size_base=16 * MiB, compression="none", file_cache_size=0)
    pad = b"v" * (VALUE - 2)
    cases = [("prefix 07- (1%, adjacent keys)", b"07-", None),
             ("value field 42 at 0 (1%, all keys)", b"", (0, b"42"))]
    rows = []
    try:
        with DB("/db", volume=vol, options=opts) as db:
            for i in range(args.scan_keys):
                db.put(b"%02d-%013d" % (i % 100, i), b"%02d" % (i * 37 % 100) + pad, disable_wal=True)
            db.flush()
            db.compact_range()
            tables = sum(f["size"] for f in db.live_files())
        for label, prefix, value_at in cases:
            answers = []
            for offload in (False, True):
                with DB("/db", volume=vol, options=opts) as db:  # cold: a fresh open each time
                    opened = db.bytes_read  # footers, index, filter and properties blocks
                    t = time.perf_counter()
                    answers.append(list(db.scan_prefix(prefix, value_at=value_at, offload=offload)))
                    seconds = time.perf_counter() - t
                    crossed = db.bytes_read - opened
                    device = None
                    if offload:
                        crossed += db.last_scan.bytes_returned
                        device = db.last_scan.bytes_read
                rows.append((label, "offloaded (sst_prefix)" if offload else "host iterator", len(answers[-1]),
                             seconds, opened, crossed, device))
            if answers[0] != answers[1]:
                raise SystemExit(f"{label}: the offloaded scan's answer differs from the iterator's")
    finally:
        vol.unmount()
    table = Table(title=f"Scans of {args.scan_keys:,} keys ({tables / MiB:.0f} MiB of tables, fully compacted, "
                        f"cold): bytes from the file system to the host")
    for col in ("selects", "method", "entries", "ms", "at open", "during the scan", "read beside the data",
                "vs host iterator"):
        table.add_column(col, justify="right")
    for i, (label, method, entries, seconds, opened, crossed, device) in enumerate(rows):
        base = rows[i - i % 2]
        versus = "-" if i % 2 == 0 else (f"{base[3] / seconds:.2f}x faster, {base[5] / max(crossed, 1):.1f}x fewer "
                                         f"bytes in the scan ({(base[4] + base[5]) / (opened + crossed):.1f}x with "
                                         f"the open)")
        table.add_row(label if i % 2 == 0 else "", method, f"{entries:,}", f"{seconds * 1e3:.1f}", f"{opened:,}",
                      f"{crossed:,}", "-" if device is None else f"{device:,}", versus)
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=None)
    ap.add_argument("--wa-keys", type=int, default=50_000)
    ap.add_argument("--wa-turns", type=int, default=3)
    ap.add_argument("--scan-keys", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the perf section")
    ap.add_argument("--sections", default="perf,wa,scan", help="perf, fuse (root and fuse3), wa, scan")
    ap.add_argument("--quick", action="store_true", help="small sizes, every section, a few seconds (the tests)")
    args = ap.parse_args()
    if args.quick:
        args.keys, args.reads, args.wa_keys, args.wa_turns, args.scan_keys = 5000, 1000, 2000, 1, 20000
    args.reads = args.reads or args.keys // 10
    sections = set(args.sections.split(","))
    if sections & {"perf", "fuse"}:
        perf(args, "fuse" in sections)
    if "wa" in sections:
        wa(args)
    if "scan" in sections:
        scan(args)


if __name__ == "__main__":
    main()
