"""FUSE over io_uring next to /dev/fuse: the same zcsdfs server, both transports, one run.

Mounts one image twice in turn (``zcsdfs mount IMAGE MNT -o uring=on`` and
``-o uring=off``, the server in its own process), interleaved for
``--runs`` rounds, and measures on each: creates (create + 4 KiB write +
close) per second, stats per second, and 4 KiB O_DIRECT random reads per
second (QD1: each reaches the server), and the server's CPU time per
operation (all its threads, from /proc/PID/task/*/schedstat: less bent by
other load than the rates). Prints min / median / max over the rounds and
the machine's load before and after. Needs root: it switches the
fuse module's enable_uring on for the run and puts it back.

    python bench/fuse_uring.py [--runs 3] [--files 2000] [--reads 5000] [-o OPTIONS]
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from zcsdfs.fuse.fuse_uring import ENABLE

KINDS = ("devfuse", "uring")


def creates(root: str, files: int) -> float:
    data = os.urandom(4096)
    d = os.path.join(root, "c")
    os.mkdir(d)
    t = time.perf_counter()
    for i in range(files):
        fd = os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data)
        os.close(fd)
    return files / (time.perf_counter() - t)


def stats(root: str, files: int) -> float:
    names = [f"{root}/c/f{i}" for i in range(files)]
    t = time.perf_counter()
    for name in names:
        os.stat(name)
    return files / (time.perf_counter() - t)


def reads(root: str, count: int) -> float:
    path, blocks = f"{root}/r", 4096  # a 16 MiB file
    with open(path, "wb") as f:
        f.write(os.urandom(blocks * 4096))
    buf = mmap.mmap(-1, 4096)
    offsets = [(i * 7919 % blocks) * 4096 for i in range(count)]
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        t = time.perf_counter()
        for off in offsets:
            os.preadv(fd, [buf], off)
        return count / (time.perf_counter() - t)
    finally:
        os.close(fd)


def server_pid(mnt: str) -> int:
    """The daemon serving ``mnt`` (its command line names the mount point)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if b"mount" in args and os.fsencode(mnt) in args and int(entry) != os.getpid():
                return int(entry)
    raise SystemExit(f"no server process found for {mnt}")


def cpu_ns(pid: int) -> int:
    """CPU time so far of every thread of ``pid``."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def round_of(kind: str, image: str, mnt: str, args) -> dict:
    zcsdfs = [sys.executable, "-m", "zcsdfs"]
    options = ",".join(filter(None, [f"uring={'on' if kind == 'uring' else 'off'}", args.options]))
    subprocess.run([*zcsdfs, "mkfs", "--force", image], check=True, capture_output=True)
    subprocess.run([*zcsdfs, "mount", image, mnt, "-o", options], check=True)
    try:
        pid = server_pid(mnt)
        out = {}
        for name, work, count in (("creates", creates, args.files), ("stats", stats, args.files),
                                  ("4 KiB reads", reads, args.reads)):
            before = cpu_ns(pid)
            out[f"{name}/s"] = work(mnt, count)
            out[f"{name}: server us"] = (cpu_ns(pid) - before) / count / 1000
        return out
    finally:
        subprocess.run([*zcsdfs, "umount", mnt], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds (at least 1; default 3)")
    ap.add_argument("--files", type=int, default=2000, help="files created and stat'ed per round")
    ap.add_argument("--reads", type=int, default=5000, help="4 KiB O_DIRECT reads per round")
    ap.add_argument("-o", dest="options", default="", metavar="OPT[,OPT...]", help="more zcsdfs mount options")
    args = ap.parse_args()
    for name in ("runs", "files", "reads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if os.geteuid() != 0 or not os.path.exists(ENABLE):
        raise SystemExit(f"needs root and {ENABLE} (Linux 6.14+)")
    with open(ENABLE) as f:
        was = f.read().strip()
    work = tempfile.mkdtemp(prefix="zcsdfs-bench-uring-", dir="/dev/shm")
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    load_before = os.getloadavg()
    try:
        with open(ENABLE, "w") as f:
            f.write("Y")
        image, mnt = os.path.join(work, "vol.zns"), os.path.join(work, "mnt")
        os.mkdir(mnt)
        subprocess.run([sys.executable, "-m", "zcsdfs", "device", "create", image, "--preset", "qemu"],
                       check=True, capture_output=True)
        for r in range(args.runs):
            for kind in (KINDS if r % 2 == 0 else KINDS[::-1]):  # interleaved, alternating who goes first
                results[kind].append(round_of(kind, image, mnt, args))
    finally:
        with open(ENABLE, "w") as f:
            f.write(was)
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs); {args.runs} interleaved runs; min / median / max")
    print(f"{'workload':<24}" + "".join(f"{kind:>30}" for kind in KINDS) + f"{'uring/devfuse':>15}")
    for key in results[KINDS[0]][0]:
        cells, medians = [], []
        for kind in KINDS:
            values = sorted(run[key] for run in results[kind])
            medians.append(statistics.median(values))
            cells.append(f"{values[0]:>9,.1f} {medians[-1]:>9,.1f} {values[-1]:>9,.1f}")
        print(f"{key:<24}" + "".join(f"{cell:>30}" for cell in cells) + f"{medians[1] / medians[0]:>14.2f}x")


if __name__ == "__main__":
    main()
