"""``zcsdfs serve`` as a process (front end gone, signals, options) and ``zcsdfs devices``."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys

import pytest

from zcsdfs.fuse import vhost_user as vu
from zcsdfs.volume import Volume
from zcsdfs.zns import ZonedDevice

WAIT = 60


@pytest.fixture
def image(tmp_path):
    path = str(tmp_path / "img.zns")
    ZonedDevice.create(path, "tiny").close_device()
    Volume(path, create=True).unmount()
    return path


def start(image: str, tmp_path, *args: str, env=None) -> tuple[subprocess.Popen, str]:
    sock_path = str(tmp_path / "vhost.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "zcsdfs", "serve", image, "--fd", str(listener.fileno()),
                                 *args], pass_fds=(listener.fileno(),), stderr=subprocess.PIPE, text=True, env=env)
    finally:
        listener.close()
    return proc, sock_path


def connect(sock_path: str, proc: subprocess.Popen | None = None) -> socket.socket:
    """Connect as a front end and finish one round trip (so the server is serving us)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    sock.connect(sock_path)
    try:
        sock.sendall(vu.HEADER.pack(vu.Request.GET_FEATURES, vu.FLAG_VERSION, 0))
        head = sock.recv(vu.HEADER.size)
    except ConnectionError:
        if proc is not None:
            proc.wait(WAIT)
            pytest.fail(f"the server exited with {proc.returncode}: {proc.stderr.read()}")
        raise
    request, flags, size = vu.HEADER.unpack(head)
    features = struct.unpack("<Q", sock.recv(size))[0]
    assert request == vu.Request.GET_FEATURES and features & 1 << vu.F_VERSION_1
    return sock


def written_by_server(image: str) -> None:
    with Volume(image) as vol:
        vol.mkdir("/from-before")


def test_serve_exits_and_checkpoints_when_the_front_end_goes(image, tmp_path):
    written_by_server(image)
    proc, sock_path = start(image, tmp_path)
    connect(sock_path, proc).close()
    assert proc.wait(WAIT) == 0
    log = proc.stderr.read()
    assert "checkpointed" in log
    assert "CPU per request: none; outside the handler" in log  # no request served: no opcode to list
    with Volume(image) as vol:  # the image lock was let go and the volume mounts
        assert "from-before" in vol.listdir("/")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_a_signal_with_a_front_end_connected(image, tmp_path, signum):
    proc, sock_path = start(image, tmp_path)
    sock = connect(sock_path, proc)
    proc.send_signal(signum)
    assert proc.wait(WAIT) == 0
    assert sock.recv(1) == b""  # the server closed our connection
    sock.close()
    assert "checkpointed" in proc.stderr.read()
    Volume(image).unmount()


def test_keep_serving_takes_the_next_front_end(image, tmp_path):
    proc, sock_path = start(image, tmp_path, "--keep-serving")
    try:
        connect(sock_path, proc).close()
        connect(sock_path, proc).close()  # served again
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0


def test_serve_refuses_mount_only_options_in_one_line(image, tmp_path):
    proc, _ = start(image, tmp_path, "-o", "threads=4")
    assert proc.wait(WAIT) == 1
    err = proc.stderr.read()
    assert "applies to mount only" in err and len(err.strip().splitlines()) == 1


def test_serve_listens_on_socket_path(image, tmp_path):
    sock_path = str(tmp_path / "s.sock")
    proc = subprocess.Popen([sys.executable, "-m", "zcsdfs", "serve", image, "--socket-path", sock_path],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # it says where it listens once it does
        if "serving" in line:
            break
    connect(sock_path, proc).close()
    assert proc.wait(WAIT) == 0
    assert not os.path.exists(sock_path)  # removed on the way out


def test_devices_lists_images_and_running_servers(image, tmp_path):
    data = tmp_path / "xdg"
    (data / "zcsdfs").mkdir(parents=True)
    ZonedDevice.create(str(data / "zcsdfs" / "default.zns"), "tiny").close_device()
    (data / "zcsdfs" / "notes.txt").write_text("not an image")
    env = dict(os.environ, XDG_DATA_HOME=str(data), ZCSDFS_DEVICE="")
    proc, sock_path = start(image, tmp_path, env=env)
    try:
        sock = connect(sock_path, proc)
        out = subprocess.run([sys.executable, "-m", "zcsdfs", "devices", "--json"], env=env, capture_output=True,
                             text=True, timeout=WAIT, check=True).stdout
        found = json.loads(out)
        table = subprocess.run([sys.executable, "-m", "zcsdfs", "devices"], env=dict(env, COLUMNS="300"),
                               capture_output=True,
                               text=True, timeout=WAIT, check=True).stdout
        sock.close()
    finally:
        assert proc.wait(WAIT) == 0
    assert [i["path"] for i in found["images"]] == [str(data / "zcsdfs" / "default.zns")]
    assert found["images"][0]["default"] and found["default_device"]["exists"]
    servers = [s for s in found["servers"] if s["kind"] == "vhost-user"]
    assert {"where": sock_path, "image": image, "pid": proc.pid} in [
        {k: s[k] for k in ("where", "image", "pid")} for s in servers]
    assert isinstance(found["zoned_block_devices"], list)
    assert "vhost-user server" in table and "default.zns" in table
    # once it has exited, the server is no longer listed
    again = json.loads(subprocess.run([sys.executable, "-m", "zcsdfs", "devices", "--json"], env=env,
                                      capture_output=True, text=True, timeout=WAIT, check=True).stdout)
    assert proc.pid not in [s["pid"] for s in again["servers"]]


def test_serve_takes_a_descriptor_past_1024(image, tmp_path):
    """A caller with many files open hands over a high descriptor (select() cannot wait on it)."""
    sock_path = str(tmp_path / "vhost.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # CI runs the suite under a soft 1024
    if hard != resource.RLIM_INFINITY and hard <= 1500:
        pytest.fail(f"the hard descriptor limit ({hard}) leaves no room for descriptor 1500")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    try:
        high = os.dup2(listener.fileno(), 1500)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "zcsdfs", "serve", image, "--fd", str(high)],
                                    pass_fds=(high,), stderr=subprocess.PIPE, text=True)
        finally:
            os.close(high)
            listener.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    connect(sock_path, proc).close()
    assert proc.wait(WAIT) == 0
