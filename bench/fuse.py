"""FUSE: zcsdfs over /dev/fuse next to tmpfs, libfuse's C pass-through and an mfusepy pass-through.

Columns (``--systems``, all by default):

- ``zcsdfs``: ``zcsdfs mount`` of a fresh image in /dev/shm (``-o`` adds mount options);
- ``zcsdfs-wb``: the same with ``-o writeback_cache``;
- ``T``: a tmpfs directory (/dev/shm), the kernel without FUSE: the long-range anchor;
- ``Hn`` / ``Hc``: libfuse 3.14's C ``example/passthrough_hp`` over a tmpfs directory, with
  ``--nocache`` and cached (its default: entries, attributes and pages kept for a day).
  ``--passthrough-hp PATH`` names a built one; otherwise it is built from libfuse's source
  at the tag of Debian's libfuse3 (fuse-3.14.0) out of the bare mirror ``--libfuse-git``,
  with meson (``pip install meson``) and ninja (Debian's ninja-build), into ``--cache``
  (with the ``HAVE_*`` defines its own configuration finds, see ``HP_DEFINES``).
  The project carries no libfuse code: the benchmark only builds and runs it. Without the
  mirror or the tools the columns are left out, saying why;
- ``M``: an mfusepy pass-through over a tmpfs directory (``pip install mfusepy``).

Workloads: create + 4 KiB write + close (files/s), stat (/s), readdir (entries/s), unlink
(/s), ``tar xf`` of ``--tar-files`` small files (s), fio 4 KiB randread QD1 with
O_DIRECT (the page cache off) and 4 KiB randwrite QD1 (kIOPS), fio 1 MiB buffered
sequential write on a read-write handle, ended by fsync (MB/s), db_bench fillrandom
(ops/s), sqlite inserts in one transaction (rows/s). A workload whose program is missing
is left out, saying why.

Each system is measured ``--runs`` times (at least 3), interleaved: every run mounts each
system afresh, in turn, and runs every workload on it. Each cell prints min/median/max;
the ratios compare medians as speed (above 1: zcsdfs is faster), to Hc and to T, and
zcsdfs-wb to zcsdfs. The machine's load average is printed for each run: figures from
a busy machine are not a quiet machine's.

For the zcsdfs columns the server's own CPU time per request (``Server.stats``: the serving
thread's CPU time, over a random eighth of the requests, per opcode) is read before and
after each workload: the second table prints, per workload, the requests of each opcode
and the µs of server CPU each took (parsing, dispatch, the vfs and lfs below; not the
transport's read and reply, nor waiting for the GIL).

    python bench/fuse.py [--quick] [--runs N] [--scale F] [--systems zcsdfs,T,...] [-o OPTIONS]
                         [--passthrough-hp PATH]

Needs root (mounts) and /dev/fuse.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time

import attrs
from rich.console import Console
from rich.table import Table

LIBFUSE_GIT = "/work/.mirror/libfuse+libfuse/repo"
LIBFUSE_TAG = "fuse-3.14.0"  # Debian's libfuse3 (3.14.0-4)
CACHE = os.path.expanduser("~/.cache/zcsdfs-bench")
# The 3.14 example tests these without including libfuse's config header, so without them it
# answers utime EOPNOTSUPP (tar fails) and has no fallocate or xattrs; libfuse's meson finds all
# three on Debian 12.
HP_DEFINES = "-DHAVE_UTIMENSAT,-DHAVE_POSIX_FALLOCATE,-DHAVE_SETXATTR"
SYSTEMS = ("zcsdfs", "zcsdfs-wb", "T", "Hn", "Hc", "M")
MOUNT_PATIENCE = 30.0  # seconds a pass-through has to appear as a mount

PASSTHROUGH = textwrap.dedent('''
    import errno, os, sys
    import mfusepy as fuse

    class Passthrough(fuse.Operations):
        use_ns = True
        def __init__(self, root):
            self.root = root
        def _p(self, path):
            return self.root + path
        def getattr(self, path, fh=None):
            st = os.lstat(self._p(path))
            return {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                                                 "st_atime", "st_mtime", "st_ctime")}
        def access(self, path, amode):
            if not os.access(self._p(path), amode):
                raise fuse.FuseOSError(errno.EACCES)
        def readdir(self, path, fh):
            return [".", ".."] + os.listdir(self._p(path))
        def readlink(self, path):
            return os.readlink(self._p(path))
        def create(self, path, mode, fi=None):
            return os.open(self._p(path), os.O_RDWR | os.O_CREAT, mode)
        def open(self, path, flags):
            return os.open(self._p(path), flags & ~os.O_DIRECT)
        def read(self, path, size, offset, fh):
            return os.pread(fh, size, offset)
        def write(self, path, data, offset, fh):
            return os.pwrite(fh, data, offset)
        def truncate(self, path, length, fh=None):
            os.truncate(self._p(path), length)
        def fsync(self, path, datasync, fh):
            os.fsync(fh)
        def release(self, path, fh):
            os.close(fh)
        def flush(self, path, fh):
            return 0
        def unlink(self, path):
            os.unlink(self._p(path))
        def mkdir(self, path, mode):
            os.mkdir(self._p(path), mode)
        def rmdir(self, path):
            os.rmdir(self._p(path))
        def rename(self, old, new):
            os.rename(self._p(old), self._p(new))
        def symlink(self, target, source):
            os.symlink(source, self._p(target))
        def link(self, target, source):
            os.link(self._p(source), self._p(target))
        def utimens(self, path, times=None):
            os.utime(self._p(path), ns=times, follow_symlinks=False)
        def chmod(self, path, mode):
            os.chmod(self._p(path), mode)
        def chown(self, path, uid, gid):
            os.lchown(self._p(path), uid, gid)
        def statfs(self, path):
            sv = os.statvfs(self._p(path))
            return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                 "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    fuse.FUSE(Passthrough(sys.argv[1]), sys.argv[2], foreground=True, nothreads=False)
''')


@attrs.frozen
class Sizes:
    """How much each workload does."""

    files: int = 5000          # create, stat, readdir, unlink
    readdirs: int = 10         # listings of the ``files`` directory
    tar_files: int = 10_000
    fio_mib: int = 64          # the random-I/O file
    fio_seconds: float = 3.0
    seq_mib: int = 512         # the 1 MiB buffered write
    db_num: int = 200_000      # db_bench fillrandom, 400-byte values
    sqlite_rows: int = 100_000


QUICK = Sizes(files=100, readdirs=3, tar_files=100, fio_mib=2, fio_seconds=0.2, seq_mib=8, db_num=1000,
              sqlite_rows=500)


@attrs.frozen
class Workload:
    name: str
    unit: str
    lower_is_better: bool = False


WORKLOADS = (
    Workload("create+4KiB write+close", "files/s"),
    Workload("stat", "/s"),
    Workload("readdir", "entries/s"),
    Workload("unlink", "/s"),
    Workload("tar xf", "s", lower_is_better=True),
    Workload("fio 4KiB randread QD1 direct", "kIOPS"),
    Workload("fio 4KiB randwrite QD1 direct", "kIOPS"),
    Workload("fio 1MiB buffered write (rw handle)", "MB/s"),
    Workload("db_bench fillrandom", "ops/s"),
    Workload("sqlite inserts", "rows/s"),
)


# -- the workloads --------------------------------------------------------------------------------

def metadata(root: str, sizes: Sizes) -> dict:
    """Creates (each with a 4 KiB write), stats, directory listings and unlinks."""
    d = os.path.join(root, "meta")
    os.mkdir(d)
    names = [os.path.join(d, f"f{i}") for i in range(sizes.files)]
    block = os.urandom(4096)
    t = time.perf_counter()
    for name in names:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, block)
        os.close(fd)
    out = {"create+4KiB write+close": sizes.files / (time.perf_counter() - t)}
    yield out
    t = time.perf_counter()
    for name in names:
        os.stat(name)
    yield {"stat": sizes.files / (time.perf_counter() - t)}
    t = time.perf_counter()
    seen = 0
    for _ in range(sizes.readdirs):
        with os.scandir(d) as it:
            for _entry in it:
                seen += 1
    yield {"readdir": seen / (time.perf_counter() - t)}
    t = time.perf_counter()
    for name in names:
        os.unlink(name)
    yield {"unlink": sizes.files / (time.perf_counter() - t)}
    os.rmdir(d)


def make_tarball(path: str, files: int) -> None:
    """``files`` small files (0-8 KiB, in directories of 100), as a source tree has."""
    rng = random.Random(20)
    src = path + ".d"
    os.mkdir(src)
    for i in range(files):
        sub = os.path.join(src, f"d{i // 100}")
        if i % 100 == 0:
            os.mkdir(sub)
        with open(os.path.join(sub, f"f{i}.c"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(0, 8192)))
    with tarfile.open(path, "w") as tar:
        tar.add(src, arcname="tree")
    shutil.rmtree(src)


def tar_xf(root: str, tarball: str) -> dict:
    d = os.path.join(root, "tar")
    os.mkdir(d)
    t = time.perf_counter()
    done = subprocess.run(["tar", "xf", tarball, "-C", d], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tar xf failed: {done.stderr.strip().splitlines()[-1]}")
    return {"tar xf": time.perf_counter() - t}


def fio(root: str, name: str, **job) -> dict:
    args = ["fio", f"--name={name}", f"--directory={root}", "--ioengine=psync", "--iodepth=1",
            "--output-format=json", *(f"--{k}={v}" for k, v in job.items())]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"fio failed: {done.stderr.strip() or done.stdout.strip()}")
    text = done.stdout
    return json.loads(text[text.index("{"):])["jobs"][0]


def fio_workloads(root: str, sizes: Sizes):
    """Random 4 KiB reads then writes over one file (laid out first, untimed), then a 1 MiB write."""
    common = dict(bs="4k", size=f"{sizes.fio_mib}M", runtime=sizes.fio_seconds, time_based=1,
                  filename="fio-random", direct=1)
    fio(root, "layout", rw="write", bs="1M", size=f"{sizes.fio_mib}M", filename="fio-random")
    yield {}
    yield {"fio 4KiB randread QD1 direct": fio(root, "randread", rw="randread", **common)["read"]["iops"] / 1000}
    yield {"fio 4KiB randwrite QD1 direct": fio(root, "randwrite", rw="randwrite", **common)["write"]["iops"] / 1000}
    os.unlink(os.path.join(root, "fio-random"))
    seq = fio(root, "seqwrite", rw="write", bs="1M", size=f"{sizes.seq_mib}M", direct=0, end_fsync=1,
              filename="fio-seq")["write"]["bw_bytes"]
    yield {"fio 1MiB buffered write (rw handle)": seq / 1e6}
    os.unlink(os.path.join(root, "fio-seq"))


def db_bench(root: str, sizes: Sizes) -> dict:
    db = os.path.join(root, "db")
    done = subprocess.run(["db_bench", "--benchmarks=fillrandom", f"--num={sizes.db_num}", "--value_size=400",
                           f"--db={db}", "--threads=1", "--compression_type=none"],
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("fillrandom"):
            return {"db_bench fillrandom": float(line.split("ops/sec")[0].split()[-1])}
    raise RuntimeError(f"db_bench printed no fillrandom line: {done.stderr.strip() or done.stdout[-300:]}")


def sqlite_inserts(root: str, sizes: Sizes) -> dict:
    path = os.path.join(root, "bench.sqlite")
    rows = [(i, f"row {i:010d} " * 4) for i in range(sizes.sqlite_rows)]
    t = time.perf_counter()
    con = sqlite3.connect(path)
    with con:
        con.execute("create table t (k integer primary key, v text)")
        con.executemany("insert into t values (?, ?)", rows)
    con.close()
    return {"sqlite inserts": sizes.sqlite_rows / (time.perf_counter() - t)}


# -- the systems ----------------------------------------------------------------------------------

class Mounted:
    """A mounted system for one run: ``root`` to work in, ``stats`` for zcsdfs's server."""

    def __init__(self, name: str, work: str, args, hp: str | None):
        self.name, self.work, self.args, self.hp = name, work, args, hp
        self.proc = None
        self.zcsdfs = name.startswith("zcsdfs")
        self.backing = tempfile.mkdtemp(prefix=f"{name}-", dir=work)
        self.root = self.backing if name == "T" else tempfile.mkdtemp(prefix=f"{name}-mnt-", dir=work)

    def __enter__(self) -> "Mounted":
        if self.zcsdfs:
            image = os.path.join(self.backing, "vol.zns")
            zcsdfs = [sys.executable, "-m", "zcsdfs"]
            subprocess.run([*zcsdfs, "device", "create", image, "--preset", "qemu"], check=True,
                           capture_output=True)
            subprocess.run([*zcsdfs, "mkfs", image], check=True, capture_output=True)
            options = [o for o in (self.args.options, "writeback_cache" if self.name == "zcsdfs-wb" else "") if o]
            subprocess.run([*zcsdfs, "mount", image, self.root, *(["-o", ",".join(options)] if options else [])],
                           check=True)  # returns once the mount serves
        elif self.name in ("Hn", "Hc"):
            self._start([self.hp, "--foreground", *(["--nocache"] if self.name == "Hn" else []),
                         self.backing, self.root])
        elif self.name == "M":
            self._start([sys.executable, "-c", PASSTHROUGH, self.backing, self.root])
        return self

    def _start(self, argv: list[str]) -> None:
        """Start a pass-through and wait until its mount appears (it signals nothing else)."""
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + MOUNT_PATIENCE
        while not os.path.ismount(self.root):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {argv[0]} did not mount")
            time.sleep(0.02)

    def stats(self) -> dict:
        """The server's requests and CPU time per opcode (zcsdfs only)."""
        if not self.zcsdfs:
            return {}
        from zcsdfs.cli.stats import collect
        return (collect(self.root).get("server") or {}).get("opcodes") or {}

    def __exit__(self, *exc) -> None:
        if self.zcsdfs:
            subprocess.run([sys.executable, "-m", "zcsdfs", "umount", self.root], check=False)
        elif self.proc is not None:
            subprocess.run(["umount", self.root], check=False)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.backing, ignore_errors=True)
        if self.root != self.backing:
            os.rmdir(self.root)


def passthrough_hp(args, console: Console) -> tuple[str | None, str]:
    """The path of a built passthrough_hp, or None and why not."""
    if args.passthrough_hp:
        return (args.passthrough_hp, "") if os.access(args.passthrough_hp, os.X_OK) else \
            (None, f"{args.passthrough_hp} is not an executable")
    src = os.path.join(args.cache, LIBFUSE_TAG)
    built = os.path.join(src, "build", "example", "passthrough_hp")
    if os.access(built, os.X_OK):
        return built, ""
    missing = [tool for tool in ("git", "meson", "ninja", "c++") if shutil.which(tool) is None]
    if missing:
        return None, f"building passthrough_hp needs {', '.join(missing)} (pip install meson; Debian: ninja-build, g++)"
    if not os.path.isdir(args.libfuse_git):
        return None, f"no libfuse mirror at {args.libfuse_git} (--libfuse-git, or --passthrough-hp PATH)"
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    console.print(f"building passthrough_hp from libfuse {LIBFUSE_TAG} in {src} ...")
    archive = subprocess.Popen(["git", f"--git-dir={args.libfuse_git}", "archive", LIBFUSE_TAG],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "x", "-C", src], stdin=archive.stdout, capture_output=True)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        return None, f"git archive {LIBFUSE_TAG} from {args.libfuse_git} failed"
    for step in (["meson", "setup", "build", "-Dexamples=true", "-Dutils=false", f"-Dcpp_args={HP_DEFINES}"],
                 ["ninja", "-C", "build", "example/passthrough_hp"]):
        done = subprocess.run(step, cwd=src, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
            return None, f"{' '.join(step[:2])} failed: {' '.join(tail)}"
    return built, ""


# -- the run --------------------------------------------------------------------------------------

def measure(mounted: Mounted, sizes: Sizes, tarball: str, skip: dict, cpu: dict) -> dict:
    """Every workload on one mounted system; the zcsdfs server's requests and CPU time per
    opcode, added up per (system, workload, opcode), into ``cpu``."""
    root = mounted.root
    out = {}
    steps = [lambda: metadata(root, sizes), lambda: [tar_xf(root, tarball)]]
    if "fio" not in skip:
        steps.append(lambda: fio_workloads(root, sizes))
    if "db_bench" not in skip:
        steps.append(lambda: [db_bench(root, sizes)])
    steps.append(lambda: [sqlite_inserts(root, sizes)])
    for step in steps:  # each yields one figure at a time, so the server's counts between are its own
        before = mounted.stats()
        for figures in step():
            after = mounted.stats()
            for name, value in figures.items():
                out[name] = value
                if mounted.zcsdfs:
                    for opcode, o in after.items():
                        b = before.get(opcode, {"requests": 0, "cpu_us": 0.0, "cpu_samples": 0})
                        n = o["requests"] - b["requests"]
                        if n > 0:
                            total = cpu.setdefault((mounted.name, name, opcode), [0, 0, 0.0])
                            total[0] += n
                            total[1] += o["cpu_samples"] - b["cpu_samples"]
                            total[2] += o["cpu_us"] - b["cpu_us"]
            before = after
    return out


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    fmt = (lambda v: f"{v:,.0f}") if max(values) >= 100 else (lambda v: f"{v:,.2f}")
    return f"{fmt(min(values))} / {fmt(statistics.median(values))} / {fmt(max(values))}"


def ratio(w: Workload, ours: list[float], anchor: list[float]) -> str:
    if not ours or not anchor:
        return "-"
    a, b = statistics.median(ours), statistics.median(anchor)
    speed = b / a if w.lower_is_better else a / b
    return f"{speed:.2f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs of every system (at least 3)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="every workload's size times this (the issue's sizes at 1; a busy machine: less)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"columns, of {','.join(SYSTEMS)}")
    ap.add_argument("-o", dest="options", default="", metavar="OPT[,OPT...]", help="zcsdfs mount options")
    ap.add_argument("--passthrough-hp", metavar="PATH", help="a built libfuse example/passthrough_hp")
    ap.add_argument("--libfuse-git", default=LIBFUSE_GIT, metavar="DIR", help="a bare clone of libfuse")
    ap.add_argument("--cache", default=CACHE, metavar="DIR", help="where passthrough_hp is built")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = ap.parse_args()
    console = Console(width=max(shutil.get_terminal_size().columns, 200))
    if args.runs < 3:
        raise SystemExit("--runs: at least 3 (min/median/max of interleaved runs)")
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {', '.join(sorted(unknown))} (known: {', '.join(SYSTEMS)})")
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        raise SystemExit("this benchmark mounts file systems: it needs root and /dev/fuse")
    sizes = QUICK if args.quick else Sizes()
    if args.scale != 1.0:
        if not 0 < args.scale <= 10:
            raise SystemExit("--scale: above 0, at most 10")
        sizes = Sizes(**{k: max(1, type(v)(v * args.scale)) if k != "fio_seconds" else max(1.0, v * args.scale)
                         for k, v in attrs.asdict(sizes).items()})
    notes = []
    hp = None
    if {"Hn", "Hc"} & set(systems):
        hp, why = passthrough_hp(args, console)
        if hp is None:
            notes.append(f"Hn, Hc left out: {why}")
            systems = [s for s in systems if s not in ("Hn", "Hc")]
    if "M" in systems:
        try:
            import mfusepy  # noqa: F401
        except ImportError:
            notes.append("M left out: pip install mfusepy")
            systems.remove("M")
    skip = {}
    for tool in ("fio", "db_bench"):
        if shutil.which(tool) is None:
            skip[tool] = f"{tool} is not installed"
            notes.append(f"{tool} workloads left out: {tool} is not installed")

    work = tempfile.mkdtemp(prefix="zcsdfs-bench-", dir="/dev/shm")
    results: dict[str, dict[str, list[float]]] = {s: collections.defaultdict(list) for s in systems}
    cpu: dict[tuple, list] = {}
    loads = []
    try:
        tarball = os.path.join(work, "tree.tar")
        make_tarball(tarball, sizes.tar_files)
        for run in range(args.runs):
            for name in systems:
                load = os.getloadavg()[0]
                loads.append(load)
                console.print(f"run {run + 1}/{args.runs}: {name} (load {load:.2f})")
                with Mounted(name, work, args, hp) as mounted:
                    for key, value in measure(mounted, sizes, tarball, skip, cpu).items():
                        results[name][key].append(value)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    title = (f"FUSE, {'quick, ' if args.quick else ''}{f'sizes x{args.scale:g}, ' if args.scale != 1 else ''}"
             f"{args.runs} interleaved runs: min / median / max; "
             f"ratios of medians as speed (>1: faster); load average {min(loads):.2f} / "
             f"{statistics.median(loads):.2f} / {max(loads):.2f} on {os.cpu_count()} CPUs")
    table = Table(title=title)
    table.add_column("workload")
    for name in systems:
        table.add_column(name, justify="right")
    pairs = [(a, b) for a, b in (("zcsdfs", "Hc"), ("zcsdfs", "Hn"), ("zcsdfs", "T"), ("zcsdfs-wb", "Hc"),
                                  ("zcsdfs-wb", "zcsdfs")) if a in systems and b in systems]
    for a, b in pairs:
        table.add_column(f"{a} / {b}", justify="right")
    for w in WORKLOADS:
        if not any(results[s].get(w.name) for s in systems):
            continue
        table.add_row(f"{w.name}, {w.unit}", *[cell(results[s].get(w.name, [])) for s in systems],
                      *[ratio(w, results[a].get(w.name, []), results[b].get(w.name, [])) for a, b in pairs])
    console.print(table)
    for note in notes:
        console.print(note)

    if cpu:
        units = {w.name: w for w in WORKLOADS}
        per_op = Table(title="zcsdfs server: requests and server CPU µs per request, by opcode, over all runs "
                             "(CPU time of a random sample of the requests: 'timed')")
        for column in ("system", "workload", "opcode", "requests (all runs)", "timed", "µs CPU / request"):
            per_op.add_column(column, justify="left" if column in ("system", "workload", "opcode") else "right")
        order = list(units)
        for (system, workload, opcode), (n, timed, us) in sorted(
                cpu.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]), -kv[1][0])):
            if n < 10:
                continue
            per_op.add_row(system, workload, opcode, f"{n:,}", f"{timed:,}", f"{us / timed:.1f}" if timed else "-")
        console.print(per_op)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": args.runs, "quick": args.quick, "scale": args.scale, "sizes": attrs.asdict(sizes),
                       "loads": loads,
                       "results": {s: dict(r) for s, r in results.items()},
                       "cpu": [[*k, *v] for k, v in cpu.items()]}, f, indent=1)


if __name__ == "__main__":
    main()
