"""A real terminal: tmux runs ``zcsdfs inspect`` against a live FUSE mount while a workload
writes; the screen shows the head's write pointer moving and GC runs appearing; ``q`` exits
and leaves the terminal as it was. And an image on a read-only bind mount can be inspected."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tests.tui.test_once import cli, digest
from tests.tui.volumes import image
from zcsdfs.lfs import mkfs
from zcsdfs.zns import Geometry, ZonedDevice

needs_root_fuse = pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0,
                                     reason="mounting needs /dev/fuse and root (as in CI)")
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
DEADLINE = 60.0  # seconds for the screen to show what the test waits for


class Terminal:
    """A tmux server of its own, one 80x24 pane running ``command``."""

    def __init__(self, socket: str, command: str):
        self.socket = socket
        self.tmux("new-session", "-d", "-x", "80", "-y", "24", command)

    def tmux(self, *args) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, predicate) -> str:
        """Poll the screen until ``predicate(screen)`` holds (what the inspector shows is only
        visible through the screen); fails with the last screen after DEADLINE."""
        end = time.monotonic() + DEADLINE
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > end:
                pytest.fail(f"the screen never showed it:\n{screen}")
            time.sleep(0.1)

    def keys(self, *keys) -> None:
        self.tmux("send-keys", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def live_mount(tmp_path):
    path, mnt = tmp_path / "vol.zns", tmp_path / "mnt"
    with ZonedDevice.create(path, Geometry(zones=12, zone_size=256, zone_capacity=256)) as device:
        mkfs(device)
    mnt.mkdir()
    done = cli("mount", path, mnt)
    assert done.returncode == 0, done.stderr
    try:
        yield mnt
    finally:
        if os.path.ismount(mnt):
            cli("umount", mnt)


def heads(screen: str) -> str | None:
    match = re.search(r"heads (.*?→\d+@0x[0-9a-f]+)", screen)
    return match and match.group(1)


def gc_runs(screen: str) -> int:
    match = re.search(r"GC runs\s+(\d+)", screen)
    return int(match.group(1)) if match else 0


@needs_root_fuse
@needs_tmux
def test_inspect_a_live_mount_in_tmux_while_a_workload_writes(live_mount, tmp_path):
    mnt = live_mount
    stop = threading.Event()

    def workload():  # files kept between files rewritten: every zone holds some live blocks, so
        i = 0          # only GC (not a checkpoint alone) can free one
        while not stop.is_set():
            (mnt / f"churn{i % 8}").write_bytes(bytes([i % 256]) * 128 * 1024)
            if i < 320:
                (mnt / f"keep{i}").write_bytes(bytes([i % 256]) * 16 * 1024)
            i += 1

    command = f"{sys.executable} -m zcsdfs inspect {mnt}; echo inspector-exited-$?; exec sleep 600"
    term = Terminal(str(tmp_path / "tmux.sock"), command)
    worker = threading.Thread(target=workload)
    try:
        title = term.wait_for(lambda s: "1 zones" in s).splitlines()[0]  # the title says what: a writable mount
        assert "mount: " in title and "read-only" not in title
        worker.start()
        first = heads(term.wait_for(lambda s: heads(s) is not None))
        term.wait_for(lambda s: heads(s) not in (None, first))  # the write pointer moves
        term.keys("3")
        term.wait_for(lambda s: gc_runs(s) > 0)  # a GC run appears
        term.keys("g")  # the live mount's server runs GC, once confirmed
        term.wait_for(lambda s: "Run garbage collection" in s)
        term.keys("y")
        term.wait_for(lambda s: "GC freed" in s)
        assert term.tmux("display", "-p", "#{alternate_on}").strip() == "1"
        term.keys("q")
        screen = term.wait_for(lambda s: "inspector-exited-" in s)
        assert "inspector-exited-0" in screen and "1 zones" not in screen and "Traceback" not in screen
        assert term.tmux("display", "-p", "#{alternate_on}").strip() == "0"  # the terminal is restored
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()
        term.close()


@needs_root_fuse
def test_an_image_on_a_read_only_bind_mount_can_be_inspected(tmp_path):
    source, ro = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    ro.mkdir()
    image(source / "v.zns")
    before = digest(source / "v.zns")
    subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(ro)], check=True)
    try:
        done = cli("inspect", ro / "v.zns", "--json")
        assert done.returncode == 0, done.stderr
        assert {f["path"] for f in json.loads(done.stdout)["files"]} >= {"/big", "/d/f4"}
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    assert digest(source / "v.zns") == before
