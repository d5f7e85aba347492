"""What the shim costs: real paths with it installed, and zcsdfs paths through it.

Two questions, each answered next to its anchor from the same run:

1. Real paths (outside every prefix): ``os.stat``, ``open``+``close`` and
   4 KiB ``os.read`` on a real file, without the shim and with it installed.
   Target: at most 1 us added per call.
2. Paths under a prefix: the same calls through the shim against the same
   calls made directly on the ``zcsdfs.Volume``. Target: at most 1.5x.

Run: ``python bench/shim.py`` (``--quick`` for fewer rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from rich.console import Console
from rich.table import Table

import zcsdfs
import zcsdfs.shim as shim

PREFIX = "/zcsd-bench"


def per_call(fn, calls: int, repeats: int) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` timed loops of ``calls`` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


#: workload -> how many intercepted calls one round makes (the figures are per intercepted call)
CALLS = {"os.stat": 1, "os.open+os.close": 2, "os.pread 4 KiB": 1, "open()+close": 1}


def workloads(stat, open_close, read_4k, builtin_open):
    return {"os.stat": stat, "os.open+os.close": open_close, "os.pread 4 KiB": read_4k,
            "open()+close": builtin_open}


def real_workloads(path: str, fd: int):
    return workloads(lambda: os.stat(path),
                     lambda: os.close(os.open(path, os.O_RDONLY)),
                     lambda: os.pread(fd, 4096, 0),
                     lambda: open(path, "rb").close())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls, repeats = (2000, 5) if args.quick else (20000, 7)
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        real_path = os.path.join(tmp, "f")
        with open(real_path, "wb") as f:
            f.write(os.urandom(65536))
        real_fd = os.open(real_path, os.O_RDONLY)
        without = {k: per_call(fn, calls, repeats) for k, fn in real_workloads(real_path, real_fd).items()}

        vol = zcsdfs.Volume.memory("qemu")
        fd = vol.open("/f", os.O_CREAT | os.O_RDWR, 0o644)
        vol.write(fd, os.urandom(65536))
        vol.close(fd)
        vol_fd = vol.open("/f", os.O_RDONLY)
        direct = {k: per_call(fn, calls // 4, repeats) for k, fn in workloads(
            lambda: vol.stat("/f"), lambda: vol.close(vol.open("/f", os.O_RDONLY)),
            lambda: vol.pread(vol_fd, 4096, 0), lambda: vol.io.open("/f", "rb").close()).items()}

        with shim.mounted(PREFIX, vol):
            with_shim = {k: per_call(fn, calls, repeats) for k, fn in real_workloads(real_path, real_fd).items()}
            shimmed = {k: per_call(fn, calls // 4, repeats) for k, fn in workloads(
                lambda: os.stat(PREFIX + "/f"), lambda: os.close(os.open(PREFIX + "/f", os.O_RDONLY)),
                lambda: os.pread(vol_fd, 4096, 0), lambda: open(PREFIX + "/f", "rb").close()).items()}
        os.close(real_fd)
        vol.unmount()

    table = Table(title="shim on real paths (target: <= 1 us added per call)")
    for column in ("calls", "real os", "real os, shim installed", "added per intercepted call", "target met"):
        table.add_column(column, justify="right")
    for k in without:
        added = (with_shim[k] - without[k]) / CALLS[k]
        table.add_row(k, f"{without[k] * 1e6:.2f} us", f"{with_shim[k] * 1e6:.2f} us", f"{added * 1e6:.2f} us",
                      "yes" if added <= 1e-6 else "no")
    console.print(table)
    table = Table(title="zcsdfs paths through the shim (target: <= 1.5x direct Volume calls)")
    for column in ("calls", "Volume method", "os call via shim", "ratio", "target met"):
        table.add_column(column, justify="right")
    for k in direct:
        ratio = shimmed[k] / direct[k]
        table.add_row(k, f"{direct[k] * 1e6:.2f} us", f"{shimmed[k] * 1e6:.2f} us", f"{ratio:.2f}x",
                      "yes" if ratio <= 1.5 else "no")
    console.print(table)


if __name__ == "__main__":
    main()
