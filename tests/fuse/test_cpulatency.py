"""The PM QoS request that keeps idle CPUs awake while a mount is busy."""

from __future__ import annotations

import os
import struct
import threading

import pytest

from tests.fuse.conftest import needs_fuse
from zcsdfs.fuse import cpulatency
from zcsdfs.fuse.cpulatency import CpuLatency
from zcsdfs.fuse.devfuse import MountOptions


def test_hold_writes_zero_once_and_release_closes(tmp_path):
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    qos = CpuLatency(20, str(device))
    qos.hold()
    fd = qos.fd
    assert qos.held and os.readlink(f"/proc/self/fd/{fd}") == str(device)
    qos.hold()  # held already: no second request
    assert qos.fd == fd
    assert device.read_bytes() == struct.pack("=i", 0)
    qos.release()
    assert not qos.held
    with pytest.raises(OSError):
        os.fstat(fd)
    qos.release()  # twice is harmless


def test_without_the_device_it_serves_without(tmp_path):
    qos = CpuLatency(20, str(tmp_path / "missing"))
    qos.hold()
    assert not qos.held and not qos.available


def test_hold_ms_zero_never_asks(tmp_path):
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    qos = CpuLatency(0, str(device))
    qos.hold()
    assert not qos.held and device.read_bytes() == b""


def _holding_qos() -> bool:
    return any(os.readlink(f"/proc/self/fd/{fd}") == cpulatency.DEVICE for fd in os.listdir("/proc/self/fd")
               if os.path.exists(f"/proc/self/fd/{fd}"))


needs_qos = pytest.mark.skipif(not os.path.exists(cpulatency.DEVICE), reason="no PM QoS device in this kernel")


@needs_fuse
@needs_qos
def test_a_busy_mount_holds_the_request_until_unmounted(mount_factory):
    m = mount_factory(MountOptions(awake_ms=600_000))
    os.stat(m.path + "/.")  # a request: the leader takes the hold as it reads it
    open(f"{m.path}/f", "w").close()
    assert _holding_qos()
    m.close()
    assert not _holding_qos()


@needs_fuse
@needs_qos
def test_a_quiet_mount_lets_go_and_asks_again(mount_factory, monkeypatch):
    taken, released = threading.Semaphore(0), threading.Semaphore(0)
    hold, release = CpuLatency.hold, CpuLatency.release

    def noted_hold(self):
        was = self.held
        hold(self)
        if self.held and not was:
            taken.release()

    def noted_release(self):
        if self.held:
            released.release()
        release(self)

    monkeypatch.setattr(CpuLatency, "hold", noted_hold)
    monkeypatch.setattr(CpuLatency, "release", noted_release)
    m = mount_factory(MountOptions(awake_ms=1))
    os.close(os.open(f"{m.path}/f", os.O_WRONLY | os.O_CREAT, 0o644))
    assert taken.acquire(timeout=30) and released.acquire(timeout=30)  # let go after 1 ms without requests
    os.close(os.open(f"{m.path}/f", os.O_RDONLY))  # OPEN always reaches the server
    assert taken.acquire(timeout=30)
