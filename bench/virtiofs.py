"""virtio-fs: zcsdfs over vhost-user next to QEMU's virtio-9p, measured inside one guest in one run.

One QEMU guest (Debian's kernel under TCG, built by tests/virtiofs/guest.py)
gets two shares side by side: zcsdfs served by ``zcsdfs serve`` (an image in
/dev/shm) over ``vhost-user-fs-pci``, and QEMU's built-in virtio-9p
(``-virtfs local``) over a directory in /dev/shm, mounted with
``trans=virtio,version=9p2000.L``. A static program in the guest measures
on each: 4 KiB QD1 write and read latency (O_DIRECT where the share takes
it), 1 MiB sequential write and read throughput, and create, stat and
unlink rates. TCG slows the guest and every guest-side cost, so compare the
ratios, not the absolutes. Each figure is measured ``--runs`` times, the two
shares one right after the other (latency, then sequential, then metadata;
who goes first alternates), and the ratio is taken within each pair: the
table shows min / median / max. The server's own CPU time comes from
``zcsdfs serve``'s exit lines: all its CPU time over every request it served
(boot and mount included), and per opcode (sampled) with what the workers
spend outside the handler (descriptors, eventfds, waking up).

Caching: the zcsdfs share is mounted as virtiofs mounts by default (the
guest caches entries and attributes for the server's entry/attr timeouts,
1 s; O_DIRECT and write-only opens bypass the page cache); 9p with
``cache=none`` (its default: no page, entry or attribute cache).
``-o entry_timeout=0,attr_timeout=0`` makes zcsdfs as cache-less as that,
``--cache9p loose`` gives 9p caches of its own.

Issue 17's targets: create/stat/unlink >= 2x virtio-9p; 4 KiB latency and
1 MiB throughput at least equal to virtio-9p. The DPFS paper's 38.6/43.3 us
QD1 (from a DPU) is the long-range anchor for the per-request time.

    python bench/virtiofs.py [--runs R] [--n-small N] [--mib M] [--files F] [--queues Q] [-o OPTS]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.virtiofs import guest  # noqa: E402
from zcsdfs.volume import Volume  # noqa: E402
from zcsdfs.zns import Geometry, ZonedDevice  # noqa: E402

METRICS = [("write4k_us", "4 KiB write, median us", False), ("read4k_us", "4 KiB read, median us", False),
           ("seqwrite_MBps", "1 MiB seq write, MB/s", True), ("seqread_MBps", "1 MiB seq read, MB/s", True),
           ("create_per_s", "creates/s", True), ("stat_per_s", "stats/s", True),
           ("unlink_per_s", "unlinks/s", True)]
DPFS_QD1_US = (38.6, 43.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per share, interleaved in one guest (default 3)")
    ap.add_argument("--n-small", type=int, default=300, help="4 KiB operations per latency figure")
    ap.add_argument("--mib", type=int, default=64, help="MiB per sequential figure")
    ap.add_argument("--files", type=int, default=300, help="files for the create/stat/unlink rates")
    ap.add_argument("--queues", type=int, default=1, help="request queues of the zcsdfs device")
    ap.add_argument("--queue-size", type=int, default=1024,
                    help="its queues' size (default 1024: a 1 MiB request fits; QEMU's own default 128 "
                         "splits it into 496 KiB parts)")
    ap.add_argument("-o", dest="options", default="", help="zcsdfs serve -o options (e.g. poll_us=100)")
    ap.add_argument("--py-spy", metavar="FILE",
                    help="record the server with py-spy (pip install py-spy) into FILE, as raw collapsed stacks")
    ap.add_argument("--cache9p", default="none", help="the 9p mount's cache= mode (default none, its own default)")
    args = ap.parse_args()
    missing = guest.missing_tools()
    if missing:
        print(f"needs {' '.join(missing)}", file=sys.stderr)
        return 1
    console = Console()
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm, tempfile.TemporaryDirectory() as work:
        image = f"{shm}/bench.zns"
        ZonedDevice.create(image, Geometry.preset("qemu", zones=16)).close_device()
        Volume(image, create=True).unmount()
        share9p = Path(shm) / "9p"
        share9p.mkdir()
        sock_path = f"{work}/vhost.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock_path)
        listener.listen(1)
        spy = ["py-spy", "record", "--nonblocking", "--threads", "-r", "997", "-f", "raw", "-o", args.py_spy,
               "--"] if args.py_spy else []
        server = subprocess.Popen([*spy, sys.executable, "-m", "zcsdfs", "serve", image, "--fd", str(listener.fileno()),
                                   "--queues", str(args.queues), *(["-o", args.options] if args.options else [])],
                                  pass_fds=(listener.fileno(),),
                                  stderr=subprocess.PIPE, text=True)
        listener.close()
        sizes = f"{args.n_small} {args.mib} {args.files}"
        script = [f"mkdir -p /mnt2 && mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,"
                  f"cache={args.cache9p} p9 /mnt2 || echo 'RESULT mount9p FAIL'"]
        order = [("/mnt", "zcsdfs"), ("/mnt2", "9p")]
        for run in range(args.runs):
            script += [f"mkdir {root}/r{run}" for root, _ in order]
            # interleaved by part (latency, sequential, metadata), so that each pair is measured
            # close together in time, and each share goes first every other time
            for i, part in enumerate(("lat", "seq", "meta")):
                for root, label in order if (run + i) % 2 == 0 else order[::-1]:
                    script.append(f"/bin/zb {root}/r{run} {label} {sizes} {part}")
        script.append("umount /mnt2")
        zb = guest.static_binary(ROOT / "bench" / "virtiofs_guest.c")
        try:
            text = guest.boot(sock_path, "\n".join(script) + "\n", queues=args.queues, workdir=work,
                              queue_size=args.queue_size,
                              timeout=600 + 600 * args.runs,
                              extra_args=["-virtfs", f"local,path={share9p},mount_tag=p9,security_model=none,"
                                          "id=p9"],
                              extra_files={"bin/zb": zb.read_bytes()})
        finally:
            server.wait(120)
        log = server.stderr.read()
    figures: dict[str, dict[str, list[float]]] = {}
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 4 and parts[0] == "BENCH":
            figures.setdefault(parts[1], {}).setdefault(parts[2], []).append(float(parts[3]))
    if set(figures) != {"zcsdfs", "9p"} or any(len(v) != args.runs for f in figures.values() for v in f.values()):
        print(f"the guest did not measure both shares {args.runs} times; console tail:\n{text[-3000:]}",
              file=sys.stderr)
        return 1
    table = Table(title=f"virtio-fs under TCG: zcsdfs (vhost-user, {args.queues} queue{'s' if args.queues > 1 else ''})"
                        f" vs virtio-9p (cache={args.cache9p}); min / median / max of {args.runs} interleaved runs")
    for col in ("", "zcsdfs", "virtio-9p", "zcsdfs / 9p (>1: better)", "target"):
        table.add_column(col, justify="right" if col else "left")
    for key, label, higher_better in METRICS:
        z, n = figures["zcsdfs"][key], figures["9p"][key]
        ratios = [a / b if higher_better else b / a for a, b in zip(z, n)]  # within each run
        target = 2.0 if key in ("create_per_s", "stat_per_s", "unlink_per_s") else 1.0
        met = sum(r >= target for r in ratios)
        table.add_row(label, _spread(z, "{:,.0f}"), _spread(n, "{:,.0f}"), _spread(ratios, "{:.2f}"),
                      f">= {target:g}x: {met}/{len(ratios)}")
    console.print(table)
    console.print(f"O_DIRECT used: zcsdfs {bool(min(figures['zcsdfs']['direct']))}, "
                  f"9p {bool(min(figures['9p']['direct']))}")
    match = re.search(r"(\d+) requests served, ([\d.]+) s of CPU serving \((\d+) us a request\)", log)
    if match:
        per = int(match.group(3))
        console.print(f"zcsdfs serve: {match.group(1)} requests, {match.group(2)} s CPU, {per} us of server CPU "
                      f"per request (all threads, boot and mount included); DPFS QD1 anchor "
                      f"{DPFS_QD1_US[0]}/{DPFS_QD1_US[1]} us ({per / DPFS_QD1_US[0]:.1f}x)")
    match = re.search(r"CPU per request: (.*); outside the handler \(rings, eventfds, wake-ups\): ([\d.]+) us", log)
    if match:
        opcodes = Table(title="zcsdfs serve: the worker's CPU per request (serve_chain: parse, handler, scatter)")
        for col in ("opcode", "requests", "CPU us each"):
            opcodes.add_column(col, justify="right" if col != "opcode" else "left")
        for item in match.group(1).split(", "):
            fields = item.split()  # "NAME COUNT x US us"
            if len(fields) == 5:
                opcodes.add_row(fields[0], fields[1], fields[3])
        console.print(opcodes)
        console.print(f"outside serve_chain (walking descriptors, eventfd kick/call, waking): "
                      f"{match.group(2)} us a request")
    else:
        print(log[-2000:], file=sys.stderr)
    return 0


def _spread(values: list[float], fmt: str) -> str:
    ordered = sorted(values)
    return " / ".join(fmt.format(v) for v in (ordered[0], statistics.median(ordered), ordered[-1]))


if __name__ == "__main__":
    sys.exit(main())
