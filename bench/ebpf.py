"""eBPF VM speed: interpreter, JIT compile time, and kernels over a large buffer.

Run as ``python bench/ebpf.py`` (256 MiB) or ``python bench/ebpf.py --size 32``.
Every figure is printed next to its anchor from the same run and the ratio:

- interpreter speed, in million eBPF instructions per second (target >= 5),
  next to CPython running the same loop written in Python;
- JIT compile time for programs of 100, 1,000 and 4,000 instructions, next
  to the verifier's time for the same program;
- the u32-sum and byte-histogram kernels (the committed objects) over SIZE MiB:
  JIT throughput next to pure Python, numpy and a plain C loop built with gcc
  and called through cffi (targets for the sum: JIT >= 1 GB/s and >= 50% of C).

The buffer is allocated and filled once and reused by every measurement:
fresh large allocations fault in slowly on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cffi
import numpy as np
from rich.console import Console
from rich.table import Table

from zcsdfs.csd import engine, isa, kernels, stdlib, verifier
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.jit import Jit
from zcsdfs.csd.program import Program
from zcsdfs.csd.stdlib import StorageEnv

MiB = 1 << 20
PYTHON_SAMPLE = 16 * MiB  # pure Python is measured on a prefix: its speed does not depend on size

C_SOURCE = r"""
#include <stdint.h>
#include <string.h>

uint64_t sum_u32(const uint8_t *data, uint64_t len)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i + 4 <= len; i += 4) {
        uint32_t v;
        memcpy(&v, data + i, 4);
        total += v;
    }
    return total;
}

/* The algorithm of kernels/histogram.c, so the ratio measures the engine. */
void histogram(const uint8_t *data, uint64_t len, uint64_t *counts)
{
    uint64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        for (int shift = 0; shift < 64; shift += 8)
            counts[(word >> shift) & 0xff]++;
    }
    for (; i < len; i++)
        counts[data[i]]++;
}
"""


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Fastest wall time of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


# -- programs built for the measurements ----------------------------------------------

I = isa.Instruction


def counting_loop(iterations: int) -> tuple[Program, int]:
    """A loop whose instruction count is known exactly: 3 per iteration plus 3."""
    program = Program([
        I(isa.ALU64 | isa.MOV | isa.K, dst=0, imm=0),
        I(isa.ALU64 | isa.MOV | isa.K, dst=1, imm=iterations),
        I(isa.ALU64 | isa.ADD | isa.X, dst=0, src=1),            # loop:
        I(isa.ALU64 | isa.SUB | isa.K, dst=1, imm=1),
        I(isa.JMP | isa.JNE | isa.K, dst=1, imm=0, off=-3),     # to loop
        I(isa.JMP | isa.EXIT),
    ], name="count")
    return program, 3 * iterations + 3


def straight_program(length: int, seed: int) -> Program:
    """``length`` instructions of ALU work with a forward branch every 8: a
    compile-time load like a real kernel's, different for every ``seed`` so
    the JIT's cache does not answer."""
    rng = np.random.default_rng(seed)
    ops = (isa.ADD, isa.SUB, isa.XOR, isa.OR, isa.AND, isa.MUL, isa.RSH, isa.LSH)
    insns = [I(isa.ALU64 | isa.MOV | isa.K, dst=r, imm=r + seed) for r in range(6)]
    while len(insns) < length - 1:
        if len(insns) % 8 == 7 and len(insns) < length - 3:
            insns.append(I(isa.JMP | isa.JGT | isa.K, dst=int(rng.integers(0, 6)), imm=int(rng.integers(0, 1000)), off=1))
        else:
            op = ops[int(rng.integers(0, len(ops)))]
            imm = int(rng.integers(1, 63)) if op in (isa.RSH, isa.LSH) else int(rng.integers(1, 1 << 20))
            insns.append(I(isa.ALU64 | op | isa.K, dst=int(rng.integers(0, 6)), imm=imm))
    insns.append(I(isa.JMP | isa.EXIT))
    return Program(insns, name=f"straight{length}")


def build_c(workdir: Path):
    """The plain C loops, compiled by gcc -O2 into a shared object and opened with cffi (ABI mode)."""
    src, lib = workdir / "loops.c", workdir / "libloops.so"
    src.write_text(C_SOURCE)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    ffi = cffi.FFI()
    ffi.cdef("uint64_t sum_u32(const uint8_t *, uint64_t); void histogram(const uint8_t *, uint64_t, uint64_t *);")
    return ffi, ffi.dlopen(str(lib))


# -- measurements --------------------------------------------------------------------


def interpreter_speed(repeat: int) -> tuple[float, float]:
    """(interpreter, CPython) in million eBPF instructions per second on the
    counting loop; CPython runs the same loop written in Python."""
    iterations = 300_000
    program, count = counting_loop(iterations)
    interp = engine.load(program, engine="interp")
    t_interp, r = best_time(interp.run, repeat)
    if r != iterations * (iterations + 1) // 2:
        raise SystemExit(f"counting loop: interpreter returned {r}")

    def python_loop():
        r0, r1 = 0, iterations
        while r1 != 0:
            r0 += r1
            r1 -= 1
        return r0

    t_python, _ = best_time(python_loop, repeat)
    return count / t_interp / 1e6, count / t_python / 1e6


def compile_times(repeat: int) -> dict[int, tuple[float, float]]:
    """Median (verify, JIT compile) seconds for straight programs of three sizes."""
    times = {}
    for length in (100, 1000, 4000):
        verify, compile_ = [], []
        for k in range(repeat):
            program = straight_program(length, seed=length * 100 + k)
            start = time.perf_counter()
            verdict = verifier.verify(program, HelperSet())
            middle = time.perf_counter()
            Jit(program, HelperSet(), engine.DEFAULT_BUDGET, verdict)
            verify.append(middle - start)
            compile_.append(time.perf_counter() - middle)
        times[length] = (statistics.median(verify), statistics.median(compile_))
    return times


def pure_python_sum(view: memoryview) -> int:
    return sum(view.cast("I"))


def pure_python_histogram(view: memoryview) -> list[int]:
    counts = [0] * 256
    for byte in view:
        counts[byte] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="eBPF VM benchmark")
    parser.add_argument("--size", type=int, default=256, help="MiB of data for the kernels (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 100))
    size = args.size * MiB

    console.print(f"[bold]eBPF VM benchmark[/bold]: {args.size} MiB, best of {args.repeat}")
    buf = bytearray(size)
    arr = np.frombuffer(buf, dtype=np.uint8)
    rng = np.random.default_rng(1)
    for start in range(0, size, 16 * MiB):
        arr[start:start + 16 * MiB] = rng.integers(0, 256, min(16 * MiB, size - start), dtype=np.uint8)
    view = memoryview(buf)
    sample = view[:min(PYTHON_SAMPLE, size)]

    interp_mips, python_mips = interpreter_speed(args.repeat)
    ctimes = compile_times(max(args.repeat, 3))

    sum_jit = engine.load(kernels.program("sum_u32"), stdlib.storage_helpers(), engine="jit", budget=1 << 40)
    hist_jit = engine.load(kernels.program("histogram"), stdlib.storage_helpers(), engine="jit", budget=1 << 40)
    with tempfile.TemporaryDirectory() as tmp:
        ffi, lib = build_c(Path(tmp))
        cbuf = ffi.from_buffer("uint8_t[]", buf)
        ccounts = ffi.new("uint64_t[256]")

        t_sum_jit, s_jit = best_time(lambda: sum_jit.run(buf), args.repeat)
        t_sum_np, s_np = best_time(lambda: int(np.frombuffer(buf, "<u4").sum(dtype=np.uint64)), args.repeat)
        t_sum_c, s_c = best_time(lambda: lib.sum_u32(cbuf, size), args.repeat)
        t_sum_py, s_py = best_time(lambda: pure_python_sum(sample), 1)
        if not s_jit == s_np == s_c or s_py != int(np.frombuffer(sample, "<u4").sum(dtype=np.uint64)):
            raise SystemExit(f"sum mismatch: jit {s_jit} numpy {s_np} C {s_c}")

        def jit_histogram():
            env = StorageEnv()
            hist_jit.run(buf, env=env)
            return np.frombuffer(env.output, "<u8")

        def c_histogram():
            ffi.memmove(ccounts, bytes(256 * 8), 256 * 8)
            lib.histogram(cbuf, size, ccounts)
            return np.frombuffer(ffi.buffer(ccounts), "<u8").copy()

        t_hist_jit, h_jit = best_time(jit_histogram, args.repeat)
        t_hist_np, h_np = best_time(lambda: np.bincount(arr, minlength=256), args.repeat)
        t_hist_c, h_c = best_time(c_histogram, args.repeat)
        t_hist_py, _ = best_time(lambda: pure_python_histogram(sample), 1)
        if not (h_jit.tolist() == h_np.tolist() == h_c.tolist()):
            raise SystemExit("histogram mismatch between JIT, numpy and C")

    speed = Table(title="engines")
    speed.add_column("figure")
    speed.add_column("value", justify="right")
    speed.add_column("anchor", justify="right")
    speed.add_column("ratio", justify="right")
    speed.add_column("target")
    speed.add_row("interpreter, M insn/s", f"{interp_mips:.1f}", f"CPython loop {python_mips:.1f}",
                  f"{interp_mips / python_mips:.2f}x", f">= 5 {'ok' if interp_mips >= 5 else 'MISSED'}")
    for length, (verify, compile_) in ctimes.items():
        speed.add_row(f"JIT compile, {length} insns, ms", f"{compile_ * 1e3:.1f}", f"verify {verify * 1e3:.1f}",
                      f"{compile_ / verify:.0f}x", "")
    console.print(speed)

    table = Table(title=f"kernels over {args.size} MiB, GB/s (C: gcc -O2 through cffi; "
                        f"Python: pure Python on a {len(sample) // MiB} MiB prefix)")
    table.add_column("kernel")
    for column in ("JIT", "C", "numpy", "Python", "JIT/C", "JIT/numpy", "JIT/Python"):
        table.add_column(column, justify="right")
    rows = (("u32 sum", t_sum_jit, t_sum_c, t_sum_np, t_sum_py), ("histogram", t_hist_jit, t_hist_c, t_hist_np, t_hist_py))
    for name, t_jit, t_c, t_np, t_py in rows:
        jit, c, numpy_, py = gbps(size, t_jit), gbps(size, t_c), gbps(size, t_np), gbps(len(sample), t_py)
        table.add_row(name, f"{jit:.2f}", f"{c:.2f}", f"{numpy_:.2f}", f"{py:.3f}",
                      f"{jit / c:.0%}", f"{jit / numpy_:.2f}x", f"{jit / py:.0f}x")
    console.print(table)
    jit_sum, c_sum = gbps(size, t_sum_jit), gbps(size, t_sum_c)
    console.print(f"targets: JIT u32 sum >= 1 GB/s: {'ok' if jit_sum >= 1 else 'MISSED'} ({jit_sum:.2f}); "
                  f">= 50% of C: {'ok' if jit_sum >= 0.5 * c_sum else 'MISSED'} ({jit_sum / c_sum:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
