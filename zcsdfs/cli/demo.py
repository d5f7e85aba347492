"""``zcsdfs demo``: the main job on the embedded default device.

It mounts the default volume the way ``import zcsdfs as os`` does (creating
and formatting the device on first use), writes, reads back and lists files
through the os-compatible API, and shows the volume and its zones. Each run
appends a line to /demo/runs.log, so a second run shows the first one's
files surviving the remount.
"""

from __future__ import annotations

import hashlib
import json

from zcsdfs.cli import subcommand

PAYLOAD = 1 << 20


def register(sub) -> None:
    subcommand(sub, "demo", "run the demo on the embedded default device", cmd_demo,
               description="Mount the embedded default device as import zcsdfs as os does (creating and "
                           "formatting it on first use), write, read back and list files in /demo through "
                           "the os-compatible API, and show the volume and its zones. Each run appends to "
                           "/demo/runs.log, so a second run shows the first one's files surviving. The device "
                           "is $ZCSDFS_DEVICE, else $XDG_DATA_HOME/zcsdfs/default.zns "
                           "(~/.local/share/zcsdfs/default.zns).",
               examples=("zcsdfs demo", "ZCSDFS_DEVICE=/tmp/try.zns zcsdfs demo"))


def cmd_demo(args) -> int:
    import zcsdfs
    from rich.table import Table
    from zcsdfs.cli.zns import console, show_info, zone_table

    volume = zcsdfs.mount()
    try:
        runs = _exercise(volume)
        table = Table(title="/demo on the default volume")
        for column in ("name", "type", "bytes", "mode"):
            table.add_column(column, justify="right" if column == "bytes" else "left")
        with volume.scandir("/demo") as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                st = entry.stat(follow_symlinks=False)
                kind = "dir" if entry.is_dir() else "link" if entry.is_symlink() else "file"
                table.add_row(entry.name, kind, f"{st.st_size:,}", oct(st.st_mode & 0o7777))
        console.print(f"[bold]run {runs}[/bold] of the demo on {volume.image}")
        console.print(table)
        vfs = volume.statvfs("/")
        console.print(f"volume: {vfs.f_bfree * vfs.f_frsize / 2**20:,.1f} MiB free of "
                      f"{vfs.f_blocks * vfs.f_frsize / 2**20:,.1f} MiB; write amplification "
                      f"{volume.fs.write_amplification:.2f} this mount")
        show_info(volume.device)
        console.print(zone_table(volume.device))
    finally:
        zcsdfs.unmount()
    return 0


def _exercise(volume) -> int:
    """Write, read back and check the demo files; returns how many runs the log has seen."""
    volume.makedirs("/demo", exist_ok=True)
    with volume.io.open("/demo/runs.log", "a") as log:
        log.write("run\n")
    with volume.io.open("/demo/runs.log") as log:
        runs = sum(1 for _ in log)
    data = hashlib.shake_256(b"zcsdfs demo").digest(PAYLOAD)
    with volume.io.open("/demo/blob.bin", "wb") as f:
        f.write(data)
    with volume.io.open("/demo/blob.bin", "rb") as f:
        if f.read() != data:
            raise OSError(5, "demo: /demo/blob.bin read back different bytes")
    with volume.io.open("/demo/summary.json", "w") as f:
        json.dump({"runs": runs, "blob_sha256": hashlib.sha256(data).hexdigest()}, f)
    if not volume.path.lexists("/demo/latest"):
        volume.symlink("summary.json", "/demo/latest")
    with volume.io.open("/demo/latest") as f:
        if json.load(f)["runs"] != runs:
            raise OSError(5, "demo: /demo/latest does not show this run")
    return runs
