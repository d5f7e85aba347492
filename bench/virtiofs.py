"""virtio-fs: zcsdfs over vhost-user next to QEMU's virtio-9p, measured inside one guest in one run.

One QEMU guest (Debian's kernel under TCG, built by tests/virtiofs/guest.py)
gets two shares side by side: zcsdfs served by ``zcsdfs serve`` (an image in
/dev/shm) over ``vhost-user-fs-pci``, and QEMU's built-in virtio-9p
(``-virtfs local``) over a directory in /dev/shm, mounted with
``trans=virtio,version=9p2000.L``. A static program in the guest measures
on each: 4 KiB QD1 write and read latency (O_DIRECT where the share takes
it), 1 MiB sequential write and read throughput, and create, stat and
unlink rates. TCG slows the guest and every guest-side cost, so compare the
ratios, not the absolutes. The server's own CPU time per request comes from
``zcsdfs serve``'s exit line (all its CPU time over every request it served,
boot and mount included).

Issue 17's targets: create/stat/unlink >= 2x virtio-9p; 4 KiB latency and
1 MiB throughput at least equal to virtio-9p. The DPFS paper's 38.6/43.3 us
QD1 (from a DPU) is the long-range anchor for the per-request time.

    python bench/virtiofs.py [--n-small N] [--mib M] [--files F] [--queues Q]
"""

from __future__ import annotations

import argparse
import re
import socket
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
    ap.add_argument("--n-small", type=int, default=300, help="4 KiB operations per latency figure")
    ap.add_argument("--mib", type=int, default=64, help="MiB per sequential figure")
    ap.add_argument("--files", type=int, default=300, help="files for the create/stat/unlink rates")
    ap.add_argument("--queues", type=int, default=1, help="request queues of the zcsdfs device")
    ap.add_argument("-o", dest="options", default="", help="zcsdfs serve -o options (e.g. poll_us=100)")
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
        server = subprocess.Popen([sys.executable, "-m", "zcsdfs", "serve", image, "--fd", str(listener.fileno()),
                                   "--queues", str(args.queues), *(["-o", args.options] if args.options else [])],
                                  pass_fds=(listener.fileno(),),
                                  stderr=subprocess.PIPE, text=True)
        listener.close()
        runs = f"{args.n_small} {args.mib} {args.files}"
        script = (f"mkdir -p /mnt2 && mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 p9 /mnt2 || "
                  f"echo 'RESULT mount9p FAIL'\n"
                  f"/bin/zb /mnt zcsdfs {runs}\n/bin/zb /mnt2 9p {runs}\numount /mnt2\n")
        zb = guest.static_binary(ROOT / "bench" / "virtiofs_guest.c")
        try:
            text = guest.boot(sock_path, script, queues=args.queues, workdir=work, timeout=1800,
                              extra_args=["-virtfs", f"local,path={share9p},mount_tag=p9,security_model=none,"
                                          "id=p9"],
                              extra_files={"bin/zb": zb.read_bytes()})
        finally:
            server.wait(120)
        log = server.stderr.read()
    figures: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 4 and parts[0] == "BENCH":
            figures.setdefault(parts[1], {})[parts[2]] = float(parts[3])
    if set(figures) != {"zcsdfs", "9p"}:
        print(f"the guest did not measure both shares; console tail:\n{text[-3000:]}", file=sys.stderr)
        return 1
    table = Table(title=f"virtio-fs under TCG: zcsdfs (vhost-user, {args.queues} queue) vs virtio-9p")
    for col in ("", "zcsdfs", "virtio-9p", "zcsdfs / 9p", "target"):
        table.add_column(col, justify="right" if col else "left")
    for key, label, higher_better in METRICS:
        z, n = figures["zcsdfs"][key], figures["9p"][key]
        ratio = z / n if higher_better else n / z
        target = ">= 2x" if key in ("create_per_s", "stat_per_s", "unlink_per_s") else ">= 1x"
        table.add_row(label, f"{z:,.1f}", f"{n:,.1f}", f"{ratio:.2f}x better" if ratio >= 1 else
                      f"{1 / ratio:.2f}x worse", target)
    console.print(table)
    console.print(f"O_DIRECT used: zcsdfs {bool(figures['zcsdfs']['direct'])}, 9p {bool(figures['9p']['direct'])}")
    match = re.search(r"(\d+) requests served, ([\d.]+) s of CPU serving \((\d+) us a request\)", log)
    if match:
        per = int(match.group(3))
        console.print(f"zcsdfs serve: {match.group(1)} requests, {match.group(2)} s CPU, {per} us of server CPU "
                      f"per request; DPFS QD1 anchor {DPFS_QD1_US[0]}/{DPFS_QD1_US[1]} us "
                      f"({per / DPFS_QD1_US[0]:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
