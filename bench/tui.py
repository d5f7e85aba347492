"""The terminal inspector on a big volume: time to first screen, updates per second, and what
watching costs a writer.

Builds an in-process volume of ``--files`` files (default 100,000, in directories of 1,000;
every tenth holds one block) on ``--zones`` zones (default 1,000), then, headless at 80x24
(``App.run_test``, which composes and renders every frame as a terminal would):

- time to first screen: from creating the app to the first snapshot shown (zones, GC,
  kernels), and to the file list shown once the Files view is asked for (``2``), beside
  the issue's target (2 s);
- update rate: snapshots shown per second with the timer at 0.05 s, beside the target (4/s);
- a writer thread's 4 KiB pwrite throughput over ``--seconds`` with and without the
  inspector attached (the in-process case of ``zcsdfs.tui.inspect``, snapshots every
  0.25 s, on the Zones view: the file list is walked only while a view shows it), and the
  ratio (target: at most 5% lower); runs alternate, alone and watched, ``--rounds`` times,
  and the figure is the median of the rounds (the machine is shared: one run is noisy);
- the same with the Files view on screen (the tree walked every 2 s at most and at most
  2% of the time, in pages of 500 entries under the file system's lock);
- a live FUSE mount's throughput (``zcsdfs mount`` of an image of ``--zones`` zones; the
  workload creates, writes 4 KiB to and closes files, so every operation reaches the
  server) without and with an inspector attached (``zcsdfs inspect MOUNTPOINT``'s app,
  headless in a process of its own, asking the control socket every 0.25 s), alternating
  as above (target: at most 5% lower). Needs root and /dev/fuse; skipped otherwise.

    python bench/tui.py [--files N] [--zones N] [--seconds S] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time

from rich.console import Console
from rich.table import Table

import zcsdfs
from zcsdfs.tui.app import Inspector
from zcsdfs.tui.source import volume_source
from zcsdfs.zns import Geometry, ZonedDevice

BS = 4096
INSPECTOR_CPU: list[float] = []  # per watched run: CPU seconds the process spent outside the writer, per second


def build(files: int, zones: int) -> zcsdfs.Volume:
    vol = zcsdfs.Volume(ZonedDevice.memory(Geometry(zones=zones, zone_size=256, zone_capacity=256)))
    block = b"z" * BS
    for i in range(files):
        if i % 1000 == 0:
            vol.mkdir(f"/d{i // 1000}")
        fd = vol.open(f"/d{i // 1000}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
        if i % 10 == 0:
            vol.write(fd, block)
        vol.close(fd)
    vol.stack.fs.sync()
    return vol


def writer(vol: zcsdfs.Volume, seconds: float, started: threading.Event) -> float:
    """4 KiB pwrites over one 1 MiB file for ``seconds``; bytes per second (the small live set
    keeps GC's share steady from run to run)."""
    fd = vol.open("/bench-writer", os.O_CREAT | os.O_WRONLY, 0o644)
    data = b"w" * BS
    span = 256
    n = 0
    started.set()
    end = time.perf_counter() + seconds
    begin = time.perf_counter()
    while time.perf_counter() < end:
        vol.pwrite(fd, data, (n % span) * BS)
        n += 1
    elapsed = time.perf_counter() - begin
    vol.close(fd)
    return n * BS / elapsed


async def first_screen_and_rate(vol, seconds: float) -> tuple[float, float, float]:
    start = time.perf_counter()
    app = Inspector(volume_source(vol), interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        while app.updates == 0:
            await pilot.pause(0.01)
        first = time.perf_counter() - start
        before, t0 = app.updates, time.perf_counter()
        await pilot.pause(seconds)
        rate = (app.updates - before) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        await pilot.press("2")
        while not app._files:
            await pilot.pause(0.01)
        files = first + time.perf_counter() - t0
        await pilot.press("q")
    return first, files, rate


async def watched_write(vol, seconds: float, view: str = "zones") -> tuple[float, int]:
    """The writer's throughput while the app runs as it does in a terminal (``run_async``,
    headless), snapshots every 0.25 s, ``view`` on screen; (bytes per second, snapshots shown
    meanwhile)."""
    app = Inspector(volume_source(vol), interval=0.25)
    result: list[float] = []
    counted: list[int] = []

    async def drive() -> None:
        while app.updates < 4:  # steady state: the app has started (its first second mounts and lays out)
            await asyncio.sleep(0.01)
        if view != "zones":
            app.call_later(app.action_view, view)
            while view == "files" and not app._files:
                await asyncio.sleep(0.01)
        before = app.updates
        cpu = {}

        def timed() -> None:
            mine = time.thread_time()
            result.append(writer(vol, seconds, threading.Event()))
            cpu["writer"] = time.thread_time() - mine

        process, wall = time.process_time(), time.perf_counter()
        thread = threading.Thread(target=timed)
        thread.start()
        await asyncio.to_thread(thread.join)
        counted.append(app.updates - before)
        INSPECTOR_CPU.append((time.process_time() - process - cpu["writer"]) / (time.perf_counter() - wall))
        app.exit()

    task = asyncio.create_task(drive())
    await app.run_async(headless=True, size=(80, 24))
    await task
    return result[0], counted[0]


def watch_mount(mountpoint: str, seconds: float) -> None:
    """The inspector of a live mount, headless, for ``seconds`` after its first screen; prints
    "ready" once it shows one, then how many snapshots it showed."""
    from zcsdfs.tui.source import MountSource
    app = Inspector(MountSource(mountpoint), interval=0.25)

    async def drive() -> None:
        while not app.updates:
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        before = app.updates
        await asyncio.sleep(seconds)
        print(app.updates - before, flush=True)
        app.exit()

    async def run() -> None:
        task = asyncio.create_task(drive())
        await app.run_async(headless=True, size=(80, 24))
        await task

    asyncio.run(run())


def mount_workload(mountpoint: str, seconds: float) -> float:
    """Files created, written (4 KiB) and closed per second on the mount, over ``seconds``."""
    data = b"m" * BS
    n = 0
    end = time.perf_counter() + seconds
    begin = time.perf_counter()
    while time.perf_counter() < end:
        fd = os.open(f"{mountpoint}/w{n % 64}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
        n += 1
    return n / (time.perf_counter() - begin)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(image: str) -> int:
    """The daemon serving ``image`` (``zcsdfs mount`` returns once it has forked it)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    words = f.read().split(b"\0")
            except OSError:
                continue
            if image.encode() in words and b"mount" in words:
                return int(entry)
    raise RuntimeError(f"no server process for {image}")


def server_throughput(zones: int, seconds: float, rounds: int):
    """(median files/s alone, median watched, median slowdown, slowdowns, snapshots per watch,
    server CPU ms per file alone and watched, the inspector process's CPU per second), or None
    where FUSE cannot be mounted."""
    import resource
    import subprocess
    import sys
    import tempfile

    from zcsdfs.lfs import mkfs
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        return None
    with tempfile.TemporaryDirectory(prefix="zcsdfs-bench-tui-") as tmp:
        image, mnt = f"{tmp}/vol.zns", f"{tmp}/mnt"
        os.mkdir(mnt)
        with ZonedDevice.create(image, Geometry(zones=zones, zone_size=256, zone_capacity=256)) as device:
            mkfs(device)
        cli = [sys.executable, "-m", "zcsdfs"]
        subprocess.run([*cli, "mount", image, mnt], check=True, capture_output=True, timeout=60)
        try:
            server = server_pid(image)
            cpu_alone, cpu_watched, watcher_cpu = [], [], []

            def workload(into: list) -> float:
                used = process_cpu(server)
                rate = mount_workload(mnt, seconds)
                into.append((process_cpu(server) - used) / (rate * seconds) * 1e3)
                return rate

            mount_workload(mnt, 1.0)  # warm up
            alone, watched, slowdowns, shown = [], [], [], []
            before = workload(cpu_alone)
            for _ in range(rounds):
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                watcher = subprocess.Popen([sys.executable, __file__, "--watch-mount", mnt, "--seconds",
                                            str(seconds + 5)], stdout=subprocess.PIPE, text=True)
                try:
                    if watcher.stdout.readline().strip() != "ready":
                        raise RuntimeError("the inspector of the mount did not start")
                    w = workload(cpu_watched)
                finally:
                    out = watcher.communicate(timeout=120)[0]
                now = resource.getrusage(resource.RUSAGE_CHILDREN)
                watcher_cpu.append((now.ru_utime + now.ru_stime - children.ru_utime - children.ru_stime)
                                   / (seconds + 5))  # its whole life, start-up included
                shown.append(int(out.split()[0]) if out.split() else 0)
                after = workload(cpu_alone)
                alone.append((before + after) / 2)
                watched.append(w)
                slowdowns.append(1 - w / alone[-1])
                before = after
        finally:
            subprocess.run([*cli, "umount", mnt], capture_output=True, timeout=60)
    return (statistics.median(alone), statistics.median(watched), statistics.median(slowdowns), slowdowns,
            shown, statistics.median(cpu_alone), statistics.median(cpu_watched), statistics.median(watcher_cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--zones", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--watch-mount", metavar="MOUNTPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--no-mount", action="store_true", help="skip the live FUSE mount's figures")
    args = parser.parse_args()
    if args.watch_mount:
        watch_mount(args.watch_mount, args.seconds)
        return
    t = time.perf_counter()
    vol = build(args.files, args.zones)
    console = Console()
    console.print(f"built {args.files} files on {args.zones} zones in {time.perf_counter() - t:.1f} s")
    first, files, rate = asyncio.run(first_screen_and_rate(vol, args.seconds))
    cases, inspector_cpu = {}, {}
    for view in ("zones", "files"):
        INSPECTOR_CPU.clear()
        slowdowns, alone, watched, updates = [], [], [], 0
        before = writer(vol, args.seconds, threading.Event())
        for _ in range(args.rounds):
            w, updates = asyncio.run(watched_write(vol, args.seconds, view))
            after = writer(vol, args.seconds, threading.Event())
            slowdowns.append(1 - w / ((before + after) / 2))
            alone.append((before + after) / 2)
            watched.append(w)
            before = after
        cases[view] = (statistics.median(alone), statistics.median(watched), updates,
                       statistics.median(slowdowns), slowdowns)
        inspector_cpu[view] = statistics.median(INSPECTOR_CPU)
    table = Table(title=f"inspector, {args.files} files, {args.zones} zones, 80x24 headless")
    for col in ("measure", "value", "target", "meets"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    table.add_row("time to first screen", f"{first:.2f} s", "<= 2 s", "yes" if first <= 2 else "no")
    table.add_row("time to the file list", f"{files:.2f} s", "", "")
    table.add_row("updates per second (timer 0.05 s)", f"{rate:.1f}", ">= 4", "yes" if rate >= 4 else "no")
    for view, (alone, watched, updates, slower, each) in cases.items():
        table.add_row(f"writer alone (median of {args.rounds})", f"{alone / 2**20:.1f} MiB/s", "", "")
        table.add_row(f"writer watched, {view} view ({updates} updates at 0.25 s)", f"{watched / 2**20:.1f} MiB/s",
                      "", "")
        table.add_row(f"writer slower, {view} view (rounds: {', '.join(f'{x:.1%}' for x in each)})",
                      f"{slower:.1%}", "<= 5%" if view == "zones" else "", "yes" if slower <= 0.05 else "no")
        table.add_row(f"inspector's own CPU, {view} view (process minus writer thread)",
                      f"{inspector_cpu[view] * 1e3:.0f} ms/s", "", "")
    vol.unmount()
    served = None if args.no_mount else server_throughput(args.zones, args.seconds, args.rounds)
    if served is None:
        table.add_row("live FUSE mount", "skipped", "", "(needs root and /dev/fuse)" if not args.no_mount else "")
    else:
        alone, watched, slower, each, shown, per_file_alone, per_file_watched, watcher = served
        table.add_row(f"mount: files/s alone (median of {args.rounds})", f"{alone:,.0f}", "", "")
        table.add_row(f"mount: files/s, inspector attached ({min(shown)}-{max(shown)} snapshots/round)",
                      f"{watched:,.0f}", "", "")
        table.add_row(f"mount slower when inspected (rounds: {', '.join(f'{x:.1%}' for x in each)})",
                      f"{slower:.1%}", "<= 5%", "yes" if slower <= 0.05 else "no")
        table.add_row("server CPU per file, alone / inspected", f"{per_file_alone:.2f} / {per_file_watched:.2f} ms",
                      "", "")
        table.add_row("inspector process's CPU (start-up included)", f"{watcher * 1e3:.0f} ms/s", "", "")
    console.print(table)


if __name__ == "__main__":
    main()
