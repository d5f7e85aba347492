"""An fsx-style exerciser on one file, a multi-process namespace stress, and the CLI's daemon."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import signal
import subprocess
import sys
import textwrap

import cffi
import pytest

from zcsdfs.cli.fuse import parse_options
from zcsdfs.zns import ZonedDevice
from zcsdfs.lfs import mkfs
from tests.fuse.conftest import DEAD, abort_connection, detach_dead_mounts, mounts_of_tests, needs_fuse

pytestmark = needs_fuse

ffi = cffi.FFI()
ffi.cdef("int fallocate(int fd, int mode, long offset, long len);")
libc = ffi.dlopen(None)
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
MAX_SIZE = 256 << 10


def test_fsx(mnt):
    """Random reads, writes, truncates, allocations and hole punches, checked after every step."""
    rng = random.Random(1234)
    model = bytearray()
    path = f"{mnt}/fsx"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    history = []
    try:
        for step in range(400):
            op = rng.choice(["write", "write", "read", "truncate", "allocate", "punch"])
            off = rng.randrange(MAX_SIZE)
            length = rng.randrange(1, 40_000)
            history.append(f"{step}: {op} {off} {length}")
            if op == "write":
                data = rng.randbytes(length)
                os.pwrite(fd, data, off)
                end = off + length
                model.extend(bytes(max(0, end - len(model))))
                model[off:end] = data
            elif op == "read":
                assert os.pread(fd, length, off) == bytes(model[off:off + length]), "\n".join(history)
            elif op == "truncate":
                os.ftruncate(fd, off)
                del model[off:]
                model.extend(bytes(off - len(model)))
            elif op == "allocate":
                os.posix_fallocate(fd, off, length)
                model.extend(bytes(max(0, off + length - len(model))))
            else:
                assert libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, length) == 0
                end = min(off + length, len(model))
                if off < end:
                    model[off:end] = bytes(end - off)
            assert os.fstat(fd).st_size == len(model), "\n".join(history)
            assert os.pread(fd, len(model) + 1, 0) == bytes(model), "\n".join(history)
    finally:
        os.close(fd)


WORKER = textwrap.dedent("""
    import os, sys
    root, me, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mine = os.path.join(root, me)
    os.mkdir(mine)
    for i in range(rounds):
        shared = os.path.join(root, "shared", f"{me}-{i}")
        with open(shared, "w") as f:
            f.write(me * (i + 1))
        os.rename(shared, os.path.join(mine, f"f{i}"))
        if i % 3 == 0:
            os.unlink(os.path.join(mine, f"f{i}"))
        os.listdir(os.path.join(root, "shared"))
        os.listdir(mine)
""")


def test_multiprocess_namespace_stress(mnt):
    os.mkdir(f"{mnt}/shared")
    rounds, names = 60, [f"w{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, mnt, n, str(rounds)]) for n in names]
    assert [p.wait(timeout=120) for p in procs] == [0] * len(procs)
    assert os.listdir(f"{mnt}/shared") == []
    for n in names:
        kept = sorted(os.listdir(f"{mnt}/{n}"))
        assert kept == sorted(f"f{i}" for i in range(rounds) if i % 3)
        assert open(f"{mnt}/{n}/f5").read() == n * 6


def _server_pid(image: str) -> int:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"mount" in args and image.encode() in args and int(pid) != os.getpid():
            return int(pid)
    raise AssertionError("no server process")


def zcsdfs(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zcsdfs", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def image_and_mountpoint(tmp_path):
    """A fresh image and an empty mount point for the CLI; a mount left behind is aborted."""
    image = str(tmp_path / "vol.zns")
    with ZonedDevice.create(image, "qemu") as device:
        mkfs(device)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    yield image, mnt
    if os.path.ismount(mnt):
        abort_connection(str(mnt))


def test_cli_daemon_mount_umount_and_sigterm(image_and_mountpoint):
    image, mnt = image_and_mountpoint
    done = zcsdfs("mount", image, str(mnt), "-o", "default_permissions")
    assert done.returncode == 0, done.stderr
    (mnt / "kept.txt").write_text("survives")
    done = zcsdfs("umount", str(mnt))
    assert done.returncode == 0, done.stderr
    assert not os.path.ismount(mnt)
    assert zcsdfs("fsck", image).returncode == 0

    assert zcsdfs("mount", image, str(mnt)).returncode == 0
    assert (mnt / "kept.txt").read_text() == "survives"
    (mnt / "second.txt").write_text("also")
    pid = _server_pid(image)
    os.kill(pid, signal.SIGTERM)
    with open(image, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # granted when the server has checkpointed and let go
    assert not os.path.ismount(mnt)
    assert zcsdfs("fsck", image).returncode == 0
    assert zcsdfs("mount", image, str(mnt)).returncode == 0
    assert sorted(os.listdir(mnt)) == ["kept.txt", "second.txt"]
    assert zcsdfs("umount", str(mnt)).returncode == 0
    done = zcsdfs("mount", image, str(mnt), "-o", "bogus")
    assert done.returncode == 1 and "unknown mount option" in done.stderr


def test_server_killed_then_enotconn_and_the_next_mount_recovers(image_and_mountpoint):
    image, mnt = image_and_mountpoint
    assert zcsdfs("mount", image, str(mnt)).returncode == 0
    fd = os.open(mnt / "synced", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"durable" * 1000)
    os.fsync(fd)
    os.close(fd)
    dirfd = os.open(mnt, os.O_RDONLY)
    os.fsync(dirfd)  # the name too
    os.close(dirfd)
    os.kill(_server_pid(image), signal.SIGKILL)
    with open(image, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # the dead server's lock is gone with it
    with pytest.raises(OSError) as exc:
        os.stat(mnt / "synced")
    assert exc.value.errno in DEAD  # ENOTCONN; over io_uring maybe another (conftest.DEAD)
    assert zcsdfs("umount", str(mnt)).returncode == 0
    assert zcsdfs("mount", image, str(mnt)).returncode == 0  # recovers the log
    assert (mnt / "synced").read_bytes() == b"durable" * 1000
    assert zcsdfs("umount", str(mnt)).returncode == 0
    assert zcsdfs("fsck", image).returncode == 0


def test_a_killed_test_run_leaves_a_mount_the_next_run_detaches():
    script = textwrap.dedent("""
        import os, signal, sys, tempfile
        from zcsdfs.fuse.devfuse import Session
        from zcsdfs.volume import Volume
        point = tempfile.mkdtemp(prefix="zcsdfs-mnt-", dir="/tmp")
        volume = Volume.memory()  # kept: a dropped Volume releases its file system
        session = Session(volume.vfs, point)
        session.wait_ready(30)
        print(point, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    point = done.stdout.strip()
    assert done.returncode == -signal.SIGKILL and point.startswith("/tmp/zcsdfs-mnt-"), done.stderr
    assert point in mounts_of_tests()
    with pytest.raises(OSError) as exc:
        os.listdir(point)
    assert exc.value.errno in DEAD
    detach_dead_mounts()
    assert point not in mounts_of_tests() and not os.path.exists(point)


def test_mount_options():
    opts = parse_options(["allow_other,negative_timeout=2.5", "poll_us=0,threads=2,awake_ms=0"], "img")
    assert (opts.allow_other, opts.threads, opts.poll_us, opts.awake_ms, opts.server.negative_timeout) == (
        True, 2, 0, 0, 2.5)
    defaults = parse_options([], "img")
    assert (defaults.threads, defaults.poll_us, defaults.awake_ms, defaults.server.negative_timeout) == (
        4, 50, 20, 0.0)
    for bad in ("poll_us=soon", "awake_ms=-1", "attr_timeout=nan", "entry_timeout=-0.5"):
        with pytest.raises(OSError) as exc:
            parse_options([bad], "img")
        assert exc.value.errno == errno.EINVAL and bad.partition("=")[0] in str(exc.value)
