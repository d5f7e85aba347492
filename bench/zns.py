"""Zone append on the emulated ZNS device, next to the copies it cannot beat.

Prints, from one run: 4 KiB append latency and 1 MiB append throughput on
the memory and image backends, beside a plain ``bytearray`` slice copy and
``os.pwrite`` to a file on tmpfs of the same sizes, with the ratios and the
issue's targets (4 KiB append <= 3 us on memory; 1 MiB append >= 50% of the
copy bandwidth).

Every contender reuses its buffers and its zone (reset between rounds) and
runs one untimed round first, so first-touch page faults count for no one.
Latency is the median over batches of appends, throughput the median over
rounds; the contenders take turns round by round.

    python bench/zns.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from rich.console import Console
from rich.table import Table

from zcsdfs.zns import Geometry, ZonedDevice

KiB, MiB = 1 << 10, 1 << 20
SMALL, LARGE = 4 * KiB, 1 * MiB
ZONE_BYTES = 64 * MiB
BATCH = 256  # small appends timed together; one timer call per batch keeps its cost out
SMALL_ZONE, LARGE_ZONE = 0, 1


def geometry() -> Geometry:
    blocks = ZONE_BYTES // 4096
    return Geometry(zones=2, zone_size=blocks, zone_capacity=blocks, block_size=4096)


def tmpfs_dir() -> str:
    return tempfile.mkdtemp(prefix="zcsdfs-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


# -- one timed round: a zone's worth of writes --------------------------------------------------


def small_round(write, reset, data: bytes, samples: list[float]) -> None:
    """Seconds per 4 KiB write, one sample per batch."""
    reset()
    offset = 0
    for _ in range(ZONE_BYTES // SMALL // BATCH):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            write(offset, data)
            offset += SMALL
        samples.append((time.perf_counter_ns() - start) / BATCH / 1e9)


def large_round(write, reset, data: bytes, samples: list[float]) -> None:
    """Bytes per second of 1 MiB writes over the whole round."""
    reset()
    offset = 0
    start = time.perf_counter_ns()
    for _ in range(ZONE_BYTES // LARGE):
        write(offset, data)
        offset += LARGE
    samples.append(ZONE_BYTES / ((time.perf_counter_ns() - start) / 1e9))


# -- the contenders ---------------------------------------------------------------------------------


def device_loops(device: ZonedDevice, zone: int):
    append = device.append
    return (lambda offset, data: append(zone, data)), (lambda: device.reset(zone))


def copy_loops():
    target = bytearray(ZONE_BYTES)
    view = memoryview(target)

    def write(offset, data):
        view[offset:offset + len(data)] = data
    return write, (lambda: None)


def pwrite_loops(fd: int):
    pwrite = os.pwrite
    return (lambda offset, data: pwrite(fd, data, offset)), (lambda: None)


def measure(rounds: int) -> dict[str, tuple[float, float]]:
    """name -> (seconds per 4 KiB write, bytes per second of 1 MiB writes).

    The contenders take turns round by round, so a noisy neighbour on a
    shared machine slows them all alike instead of whichever ran then.
    """
    where = tmpfs_dir()
    fd = os.open(os.path.join(where, "pwrite.bin"), os.O_RDWR | os.O_CREAT, 0o600)
    image = ZonedDevice.create(os.path.join(where, "bench.zns"), geometry())
    memory = ZonedDevice.memory(geometry())
    try:
        contenders = {
            "zcsdfs memory backend": (device_loops(memory, SMALL_ZONE), device_loops(memory, LARGE_ZONE)),
            "zcsdfs image backend (tmpfs)": (device_loops(image, SMALL_ZONE), device_loops(image, LARGE_ZONE)),
            "bytearray slice copy": (copy_loops(), copy_loops()),
            "os.pwrite to tmpfs": (pwrite_loops(fd), pwrite_loops(fd)),
        }
        small_data = bytes(range(256)) * (SMALL // 256)
        large_data = bytes(range(256)) * (LARGE // 256)
        samples = {name: ([], []) for name in contenders}
        for round_ in range(rounds + 1):
            for name, (small, large) in contenders.items():
                keep = samples[name] if round_ else ([], [])  # round 0 only warms the pages up
                small_round(*small, small_data, keep[0])
                large_round(*large, large_data, keep[1])
        return {name: (statistics.median(small), statistics.median(large))
                for name, (small, large) in samples.items()}
    finally:
        image.close_device()
        os.close(fd)
        shutil.rmtree(where)


def report(results: dict[str, tuple[float, float]], rounds: int, console: Console) -> None:
    copy_small, copy_large = results["bytearray slice copy"]
    pw_small, pw_large = results["os.pwrite to tmpfs"]
    small_batches = rounds * ZONE_BYTES // SMALL // BATCH
    latency = Table(title=f"4 KiB append latency (median of {small_batches} batches of {BATCH})")
    throughput = Table(title=f"1 MiB append throughput (median of {rounds} rounds of {ZONE_BYTES // MiB} MiB)")
    for table, unit in ((latency, "µs"), (throughput, "GB/s")):
        table.add_column("")
        for column in (unit, "/ copy", "/ pwrite"):
            table.add_column(column, justify="right")
    for name, (small, large) in results.items():
        latency.add_row(name, f"{small * 1e6:.2f}", f"{small / copy_small:.2f}", f"{small / pw_small:.2f}")
        throughput.add_row(name, f"{large / 1e9:.2f}", f"{large / copy_large:.2f}", f"{large / pw_large:.2f}")
    console.print(latency)
    console.print(throughput)
    small, large = results["zcsdfs memory backend"]
    verdict = lambda ok: "[green]met[/]" if ok else "[red]missed[/]"  # noqa: E731
    console.print(f"target: 4 KiB append on memory <= 3 µs: {small * 1e6:.2f} µs, {verdict(small <= 3e-6)}")
    console.print(f"target: 1 MiB append on memory >= 50% of copy: {100 * large / copy_large:.0f}%, "
                  f"{verdict(large >= 0.5 * copy_large)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per figure (default 5)")
    args = parser.parse_args()
    report(measure(args.rounds), args.rounds, Console(highlight=False))


if __name__ == "__main__":
    main()
