"""``zcsdfs mount`` and ``zcsdfs umount`` as a user runs them: exit status, one line, no traceback."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys

import pytest

from zcsdfs.fuse.devfuse import mounted_at, unmount
from tests.fuse.conftest import needs_fuse

pytestmark = needs_fuse
ZCSDFS = [sys.executable, "-m", "zcsdfs"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*ZCSDFS, *args], capture_output=True, text=True, timeout=timeout)


def refused(done: subprocess.CompletedProcess, *words: str) -> str:
    """The one-line error of a command that must fail (status 1, no traceback)."""
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zcsdfs: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def server_pid(mountpoint: str) -> int:
    """The daemonised server of ``zcsdfs mount ... mountpoint``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"mount" in argv and os.fsencode(mountpoint) in argv:
            return int(entry)
    raise AssertionError(f"no server for {mountpoint}")


@pytest.fixture
def image(tmp_path):
    path = str(tmp_path / "vol.zns")
    for command in (("device", "create", path, "--preset", "tiny"), ("mkfs", path)):
        done = run(*command)
        assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def mountpoint(tmp_path):
    point = tmp_path / "mnt"
    point.mkdir()
    yield str(point)
    if mounted_at(str(point)) is not None:  # a failed test's leftover
        unmount(str(point), lazy=True)


def wait_released(image: str) -> None:
    """Block until the server has let go of ``image`` (it holds an exclusive lock while it runs)."""
    fd = os.open(image, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def test_mount_refuses_a_mount_point_in_use(image, mountpoint):
    assert run("mount", image, mountpoint).returncode == 0
    refused(run("mount", image, mountpoint), "already a mount point", "unmount it first")
    with open(f"{mountpoint}/still", "w") as f:  # the first mount still serves
        f.write("here")
    done = run("umount", mountpoint)
    assert done.returncode == 0, done.stderr
    assert mounted_at(mountpoint) is None


@pytest.mark.parametrize("policy", ["cost-benefit", "greedy"])
def test_mount_serves_with_the_gc_policy_asked_for(image, mountpoint, policy):
    assert run("mount", image, mountpoint, "--gc-policy", policy).returncode == 0
    try:
        done = run("stats", mountpoint, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["lfs"]["gc_policy"] == policy
    finally:
        assert run("umount", mountpoint).returncode == 0


@pytest.mark.parametrize("option", ["threads=100000", "threads=0", "entry_timeout=inf", "poll_us=-1",
                                    "awake_ms=nan", "attr_timeout=1e12"])
def test_numeric_mount_options_are_bounded(image, mountpoint, option):
    key = option.partition("=")[0]
    refused(run("mount", image, mountpoint, "-o", option), key)
    assert mounted_at(mountpoint) is None  # nothing was mounted, nothing left dead


def test_umount_of_a_stuck_server_gives_up_with_a_hint(image, mountpoint):
    """The kernel waits for the server's answer to unmount without bound: the command does
    not, and says how to detach anyway."""
    assert run("mount", image, mountpoint).returncode == 0
    pid = server_pid(mountpoint)
    os.kill(pid, signal.SIGSTOP)
    try:
        refused(run("umount", "--timeout", "1", mountpoint), "has not finished within 1 s", "umount -l")
        done = run("umount", "-l", mountpoint)  # detaches at once, server or not
        assert done.returncode == 0, done.stderr
        assert mounted_at(mountpoint) is None
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_released(image)
    assert run("mount", image, mountpoint).returncode == 0  # the image is free again
    assert run("umount", mountpoint).returncode == 0


def test_umount_of_something_else_is_refused(mountpoint):
    refused(run("umount", mountpoint), "not a zcsdfs mount")
    refused(run("umount", "--timeout", "0", mountpoint), "not a zcsdfs mount")
