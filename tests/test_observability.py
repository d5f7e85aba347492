"""Observability: every layer's snapshot reflects what was done, events reach subscribers
(zone transitions, GC runs, checkpoints, kernel runs), and a running mount answers its
control socket, to its owner only."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

import zcsdfs
from zcsdfs.control import ControlServer, EventStream, request_stats, socket_path
from zcsdfs.csd import advice, kernels
from zcsdfs.csd.stats import KernelRun
from zcsdfs.events import EventBus
from zcsdfs.lfs import mkfs
from zcsdfs.lfs.stats import CheckpointWritten, GcRun
from zcsdfs.zns import Geometry, ZonedDevice, ZoneState
from zcsdfs.zns.stats import ZoneTransition

BS = 4096
needs_fuse = pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0,
                                reason="mounting needs /dev/fuse and root (as in CI)")


def small_volume() -> zcsdfs.Volume:
    return zcsdfs.Volume(ZonedDevice.memory(Geometry(zones=10, zone_size=64, zone_capacity=64)))


def write(vol, path: str, data: bytes) -> None:
    fd = vol.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    vol.write(fd, data)
    vol.fsync(fd)
    vol.close(fd)


def test_events_arrive_for_zone_transitions_checkpoints_and_gc_runs():
    vol = small_volume()
    events = []
    unsubscribe = vol.stack.events.subscribe(events.append)
    for i in range(6):
        write(vol, f"/f{i}", bytes([i]) * 40 * BS)  # fills and seals zones
    for i in range(0, 6, 2):
        vol.unlink(f"/f{i}")  # garbage for GC
    vol.sync()
    freed = vol.fs.gc(2)
    unsubscribe()
    transitions = [e for e in events if isinstance(e, ZoneTransition)]
    assert any(e.new is ZoneState.IMPLICIT_OPEN for e in transitions)
    assert any(e.new is ZoneState.FULL for e in transitions)
    assert any(e.new is ZoneState.EMPTY and e.old is ZoneState.FULL for e in transitions)  # a victim reset
    checkpoints = [e for e in events if isinstance(e, CheckpointWritten)]
    runs = [e for e in events if isinstance(e, GcRun)]
    assert checkpoints and checkpoints[-1].generation == vol.fs.checkpointer.generation
    assert len(runs) >= 2 and sum(r.freed for r in runs) >= freed >= 1
    stats = vol.stack.stats()
    assert stats.lfs.gc_runs == len(runs) and stats.lfs.recent_gc_runs[-len(runs):] == tuple(runs)
    assert stats.lfs.gc_blocks_moved == sum(r.blocks_moved for r in runs)
    assert all(r.blocks_moved == r.valid_blocks for r in runs)  # every valid block of a victim moves
    count = len(events)
    write(vol, "/after", b"x" * BS)
    assert len(events) == count and vol.stack.events.subscribers == ()  # unsubscribed
    vol.unmount()


def test_a_subscriber_that_fails_does_not_break_the_publisher(caplog):
    bus = EventBus()
    got = []
    bus.subscribe(lambda event: 1 / 0)
    bus.subscribe(got.append)
    bus.publish("event")
    assert got == ["event"] and "subscriber" in caplog.text


def test_snapshots_reflect_known_contents():
    vol = zcsdfs.Volume.memory("tiny")
    write(vol, "/a", b"a" * 10 * BS)
    vol.mkdir("/d")
    fd = vol.open("/a", os.O_RDONLY)
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    assert vol.pread(fd, BS, 0) == b"a" * BS
    s = vol.stack.stats()
    assert (s.lfs.inodes, s.lfs.open_inodes, s.vfs.open_files) == (3, 1, 1)
    assert s.lfs.user_blocks_written == 10 and s.lfs.write_amplification >= 1.0
    assert s.vfs.cache_hits >= 1 and s.vfs.cache_blocks == 10
    assert sum(z.valid_blocks for z in s.lfs.zone_list) >= 10
    heads = {z.zone for z in s.lfs.zone_list if z.role == "HEAD"}
    assert heads == {st.head_zone for st in s.lfs.streams if st.head_zone is not None}
    for zone in heads:
        assert s.device.zone_list[zone].state is ZoneState.IMPLICIT_OPEN
        head = next(st for st in s.lfs.streams if st.head_zone == zone)
        assert head.write_pointer == s.device.zone_list[zone].write_pointer
    assert s.device.blocks_written == s.lfs.device_blocks_written + 3  # and mkfs: two superblock copies, the root
    vol.close(fd)
    s = vol.stack.stats()
    assert (s.lfs.open_inodes, s.vfs.open_files) == (0, 0)
    vol.unmount()


def test_kernel_runs_are_events_and_counted_per_kernel():
    vol = zcsdfs.Volume.memory("tiny")
    write(vol, "/data", bytes(range(256)) * 64)
    events = []
    vol.stack.events.subscribe(events.append)
    fd = vol.open("/data", os.O_RDONLY)
    kernel = kernels.load("histogram").with_args(b"")
    vol.posix_fadvise(fd, 0, 0, advice(kernel))
    vol.pread(fd, 4 * BS, 0)
    runs = [e for e in events if isinstance(e, KernelRun)]
    assert len(runs) == 1 and (runs[0].kernel, runs[0].bytes_read, runs[0].failure) == (kernel.name, 4 * BS, None)
    csd = vol.stack.stats().csd
    assert (csd.bindings, csd.runs, csd.bytes_in) == (1, 1, 4 * BS)
    assert [(k.name, k.bindings, k.calls) for k in csd.kernels] == [(kernel.name, 1, 1)]
    assert vol.stack.stats().lfs.frozen_zones >= 1  # the binding's frozen view pins its zone
    vol.close(fd)
    assert vol.stack.stats().csd.bindings == 0
    vol.unmount()


# -- the control socket -----------------------------------------------------------------------------


def zcsdfs_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zcsdfs", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def live_mount(tmp_path):
    image, mnt = tmp_path / "vol.zns", tmp_path / "mnt"
    with ZonedDevice.create(image, Geometry(zones=12, zone_size=256, zone_capacity=256)) as device:
        mkfs(device)
    mnt.mkdir()
    done = zcsdfs_cli("mount", image, mnt)
    assert done.returncode == 0, done.stderr
    try:
        yield image, mnt
    finally:
        if os.path.ismount(mnt):
            zcsdfs_cli("umount", mnt)


@needs_fuse
def test_stats_of_a_live_mount_while_a_workload_runs(live_mount):
    image, mnt = live_mount
    path = socket_path(mnt)
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    stop = threading.Event()
    progress = threading.Condition()
    written = [0]

    def workload():
        for i in range(2000):
            if stop.is_set():
                return
            (mnt / f"w{i % 20}").write_bytes(bytes([i % 256]) * 64 * 1024)
            with progress:
                written[0] += 1
                progress.notify_all()

    stream = EventStream(mnt)
    worker = threading.Thread(target=workload)
    worker.start()
    try:
        seen = []
        for event in stream:  # the workload fills zones: their transitions arrive
            seen.append(event)
            if event["type"] == "ZoneTransition" and event["new"] == "FULL":
                break
        first = request_stats(mnt)
        with progress:  # the workload goes on: a later snapshot shows more
            start = written[0]
            assert progress.wait_for(lambda: written[0] >= start + 20, timeout=60)
        done = zcsdfs_cli("stats", mnt, "--json")
        assert done.returncode == 0, done.stderr
        second = json.loads(done.stdout)
    finally:
        stop.set()
        worker.join()
        stream.close()
    assert first["lfs"]["user_blocks_written"] < second["lfs"]["user_blocks_written"]
    assert second["device"]["path"] == str(image) and second["lfs"]["readonly"] is False
    assert any(e["type"] == "ZoneTransition" and e["new"] == "IMPLICIT_OPEN" for e in seen)
    table = zcsdfs_cli("stats", mnt)
    assert table.returncode == 0 and "streams" in table.stdout and "write amplification" in table.stdout
    follower = subprocess.Popen([sys.executable, "-m", "zcsdfs", "stats", str(mnt), "--events"],
                                stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        poll = select.poll()  # (select() cannot take the descriptor numbers a whole test run reaches)
        poll.register(follower.stdout, select.POLLIN)
        for _ in range(10):  # write (2 MiB: two zones) until the follower has subscribed and reports
            (mnt / "big").write_bytes(os.urandom(2 << 20))
            if poll.poll(10_000):
                line = follower.stdout.readline()
                break
        assert json.loads(line)["type"] in ("ZoneTransition", "CheckpointWritten", "GcRun")
    finally:
        follower.terminate()
        follower.wait()
    assert zcsdfs_cli("umount", mnt).returncode == 0
    assert not os.path.exists(path)  # the server removed its socket
    offline = zcsdfs_cli("stats", image, "--json")  # the image itself, read-only
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["lfs"]["inodes"] == 22  # root, w0..w19, big


def test_the_control_socket_refuses_another_uid(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing uid needs root (as in CI)")
    vol = zcsdfs.Volume.memory("tiny")
    outer = tempfile.mkdtemp(prefix="zcsdfs-control-")  # outside pytest's tmp, which only root can enter
    directory = os.path.join(outer, "control")
    control = ControlServer(vol.stack, tmp_path, directory=directory)
    try:
        assert os.stat(control.path).st_mode & 0o777 == 0o600 and os.stat(directory).st_mode & 0o777 == 0o700

        def as_nobody(loosen: bool) -> str:
            """What uid 65534 gets from the socket: the error it met or the first reply line."""
            if loosen:  # let it reach the socket, to meet the peer-credential check behind the modes
                os.chmod(outer, 0o755)
                os.chmod(directory, 0o755)
                os.chmod(control.path, 0o666)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                answer = b""
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(control.path)
                        s.sendall(b'{"op": "stats"}\n')
                        answer = s.makefile("rb").readline()
                except OSError as exc:
                    answer = f"errno {exc.errno}".encode()
                except BaseException as exc:  # anything else, said (the child must never return)
                    answer = repr(exc).encode()
                finally:
                    os.write(w, answer)
                    os._exit(0)
            os.close(w)
            with os.fdopen(r, "rb") as pipe:
                answer = pipe.read().decode()
            os.waitpid(pid, 0)
            return answer

        assert as_nobody(False) == "errno 13"  # the directory and the socket are the owner's
        reply = json.loads(as_nobody(True))
        assert reply == {"ok": False, "error": "permission denied: not the owner of this mount"}
        ours = request_stats(tmp_path, directory=directory)  # the owner is answered
        assert ours["lfs"]["inodes"] == 1
    finally:
        control.close()
        vol.unmount()
        assert not os.path.exists(control.path)
        shutil.rmtree(outer)
