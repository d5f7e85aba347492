"""Volumes, descriptors, the default volume and posix_fadvise's cache effects."""

from __future__ import annotations

import errno
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

import zcsdfs
from zcsdfs.lfs import mkfs
from zcsdfs.zns import Geometry, ZonedDevice, ZoneState

MiB = 1 << 20


@pytest.fixture
def vol():
    v = zcsdfs.Volume.memory("tiny")
    yield v
    v.unmount()


def test_descriptors_are_reserved_real_descriptors(vol, tmp_path):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    real = os.open(tmp_path / "real", os.O_CREAT | os.O_RDWR)
    try:
        assert fd != real
        os.fstat(fd)  # the number is held open in the process...
        with pytest.raises(OSError) as info:
            os.read(fd, 1)  # ...but reading it through the real os fails loudly
        assert info.value.errno == errno.EBADF
        assert vol.write(fd, b"zcsdfs") == 6 and os.write(real, b"real") == 4
        assert vol.pread(fd, 10, 0) == b"zcsdfs" and os.pread(real, 10, 0) == b"real"
    finally:
        vol.close(fd)
        os.close(real)
    with pytest.raises(OSError) as info:
        vol.fstat(fd) if fd in vol._fds else os.fstat(fd)
    assert info.value.errno == errno.EBADF


def test_real_descriptors_pass_through(vol):
    r, w = os.pipe()
    try:
        assert vol.write(w, b"pipe") == 4
        assert vol.read(r, 4) == b"pipe"
        assert vol.fstat(r).st_mode & 0o170000 == 0o010000
    finally:
        vol.close(r)
        vol.close(w)
    with pytest.raises(OSError) as info:
        os.fstat(r)
    assert info.value.errno == errno.EBADF


def test_dup_shares_the_offset_and_dup2_replaces(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    vol.write(fd, b"abcdef")
    twin = vol.dup(fd)
    vol.lseek(fd, 2, os.SEEK_SET)
    assert vol.read(twin, 2) == b"cd"
    other = vol.open("g", os.O_CREAT | os.O_RDWR, 0o644)
    assert vol.dup2(fd, other) == other
    assert vol.read(other, 10) == b"ef"
    for d in (fd, twin, other):
        vol.close(d)
    assert vol.stat("g").st_size == 0


def test_unlinked_open_file_lives_until_close(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    vol.write(fd, b"still here")
    vol.unlink("f")
    assert not vol.path.exists("f")
    assert vol.pread(fd, 100, 0) == b"still here"
    assert vol.fstat(fd).st_nlink == 0
    vol.close(fd)


def image_of(tmp_path):
    """A blank image, v.zns in ``tmp_path``."""
    image = tmp_path / "v.zns"
    ZonedDevice.create(image, Geometry.preset("tiny")).close_device()
    return image


def test_unmount_closes_descriptors_and_persists(tmp_path):
    image = tmp_path / "v.zns"
    zcsdfs.Volume(image_of(tmp_path), create=True).unmount()
    with zcsdfs.Volume(image) as vol:
        fd = vol.open("/kept", os.O_CREAT | os.O_WRONLY, 0o600)
        vol.write(fd, b"data")
    with pytest.raises(OSError):
        os.read(fd, 1)  # the reserved number was given back at unmount
    with zcsdfs.Volume(image) as vol:
        assert vol.stat("/kept").st_mode & 0o777 == 0o600
        assert vol.io.open("/kept", "rb").read() == b"data"


def test_a_second_volume_on_one_image_is_refused(tmp_path):
    image = tmp_path / "v.zns"
    zcsdfs.Volume(image_of(tmp_path), create=True).unmount()
    with zcsdfs.Volume(image):
        with pytest.raises(OSError) as info:
            zcsdfs.Volume(image)
        assert info.value.errno == errno.EBUSY


def test_blank_images_are_formatted_only_when_asked_and_foreign_ones_never(tmp_path):
    image = tmp_path / "blank.zns"
    ZonedDevice.create(image, Geometry.preset("tiny")).close_device()
    with pytest.raises(OSError) as info:
        zcsdfs.Volume(image)
    assert info.value.errno == errno.EINVAL and "zcsdfs mkfs" in info.value.strerror
    with pytest.raises(OSError) as info:
        zcsdfs.Volume(image, create=True, readonly=True)  # read-only never formats
    assert info.value.errno == errno.EINVAL
    with ZonedDevice.open(image) as device:
        assert all(z.state is ZoneState.EMPTY for z in device.report())
    with zcsdfs.Volume(image, create=True) as vol:
        vol.mkdir("/made")
    with zcsdfs.Volume(image) as vol:
        assert vol.listdir("/") == ["made"]

    image = tmp_path / "v.zns"
    device = ZonedDevice.create(image, Geometry.preset("tiny"))
    device.append(5, b"\x42" * device.block_size)  # not blank, not zcsdfs
    device.close_device()
    with pytest.raises(OSError):
        zcsdfs.Volume(image, create=True)
    with ZonedDevice.open(image) as device:
        assert device.read(5 * device.geometry.zone_size, 1) == b"\x42" * device.block_size


def test_a_dropped_volume_is_unmounted_and_its_image_released(tmp_path):
    image = tmp_path / "v.zns"
    ZonedDevice.create(image, Geometry.preset("tiny")).close_device()
    vol = zcsdfs.Volume(image, create=True)
    vol.write(vol.open("/kept", os.O_CREAT | os.O_WRONLY, 0o600), b"never closed")
    del vol
    gc.collect()
    with zcsdfs.Volume(image) as again:  # the lock is gone, and the data was checkpointed
        assert again.io.open("/kept", "rb").read() == b"never closed"


def test_a_volume_dropped_before_exit_is_checkpointed(tmp_path):
    image = tmp_path / "v.zns"
    ZonedDevice.create(image, Geometry.preset("tiny")).close_device()
    done = run_python(f"""
        import gc, os, zcsdfs
        def work():
            vol = zcsdfs.Volume({str(image)!r}, create=True)
            vol.write(vol.open("/kept", os.O_CREAT | os.O_WRONLY, 0o600), b"dropped")
        work()
        gc.collect()  # the volume is collected: its finaliser must checkpoint
        zcsdfs.Volume.memory("tiny")  # and a volume still alive at exit is unmounted then
    """, dict(os.environ))
    assert done.returncode == 0, done.stderr
    with zcsdfs.Volume(image) as vol:
        assert vol.io.open("/kept", "rb").read() == b"dropped"


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_dropped_volumes_leak_no_descriptors():
    gc.collect()
    before = open_descriptors()
    for _ in range(20):
        vol = zcsdfs.Volume.memory("tiny")
        vol.close(vol.open("/f", os.O_CREAT | os.O_WRONLY, 0o600))
        vol.open("/g", os.O_CREAT | os.O_WRONLY, 0o600)  # left open
        del vol
    gc.collect()
    assert open_descriptors() == before


def test_an_as_user_view_keeps_its_volume_mounted():
    view = zcsdfs.Volume.memory("tiny").as_user(1000, 1000)
    gc.collect()
    assert view.mounted
    assert view.listdir("/") == []
    view.unmount()
    assert not view.mounted


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_default_volume_and_atexit_checkpoint(tmp_path):
    env = dict(os.environ, ZCSDFS_DEVICE=str(tmp_path / "default.zns"))
    first = run_python("""
        import zcsdfs as os
        fd = os.open("/note", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"written, never fsynced")
        # no close, no unmount: interpreter exit must checkpoint
    """, env)
    assert first.returncode == 0, first.stderr
    second = run_python("""
        import zcsdfs as os
        print(os.listdir("/"), os.io.open("/note", "rb").read())
    """, env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "['note'] b'written, never fsynced'"


NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run a child as another user")
def test_quick_start_as_a_non_root_user():
    """The README's quick start, for a user who is not root: the default device is created in
    their $XDG_DATA_HOME, formatted with its root directory theirs, and usable."""
    from tests.api.conftest import in_child_as

    top = tempfile.mkdtemp()
    try:
        os.chmod(top, 0o755)
        data = os.path.join(top, "data")
        os.mkdir(data, 0o700)
        os.chown(data, NOBODY, NOBODY)

        def quick_start():
            os.environ["XDG_DATA_HOME"] = data
            os.environ.pop("ZCSDFS_DEVICE", None)
            zcsdfs._default = None  # the parent's default volume is the parent's (never unmount it here)
            try:
                fd = zcsdfs.open("/hello", os.O_CREAT | os.O_WRONLY, 0o644)
                zcsdfs.write(fd, b"hi")
                zcsdfs.close(fd)
                zcsdfs.mkdir("/d")
                root = zcsdfs.stat("/")
                zcsdfs.unmount()
                names = sorted(zcsdfs.listdir("/"))
                zcsdfs.unmount()
                return root.st_uid, root.st_gid, names
            except OSError as exc:
                return exc.errno, exc.strerror

        assert in_child_as((NOBODY, NOBODY, ()), quick_start) == (NOBODY, NOBODY, ["d", "hello"])
        assert os.stat(os.path.join(data, "zcsdfs", "default.zns")).st_uid == NOBODY
    finally:
        shutil.rmtree(top)


def test_mkfs_root_owner(tmp_path):
    device = ZonedDevice.memory("tiny")
    mkfs(device, root_owner=(1234, 5678))
    with zcsdfs.Volume(device) as vol:
        root = vol.stat("/")
        assert (root.st_uid, root.st_gid) == (1234, 5678)


def test_mount_switches_the_default_volume(tmp_path):
    try:
        a = zcsdfs.mount(ZonedDevice.memory("tiny"))
        zcsdfs.mkdir("/only-in-a")
        b = zcsdfs.mount(ZonedDevice.memory("tiny"))
        assert zcsdfs.default_volume() is b and not a.mounted
        assert zcsdfs.listdir("/") == []
    finally:
        zcsdfs.unmount()


def test_os_attributes_are_reexported():
    assert zcsdfs.getpid is os.getpid and zcsdfs.environ is os.environ and zcsdfs.sep == os.sep
    assert zcsdfs.O_CREAT == os.O_CREAT and zcsdfs.SEEK_HOLE == os.SEEK_HOLE
    assert zcsdfs.error is OSError and zcsdfs.path.join is os.path.join
    assert zcsdfs.open is not os.open and zcsdfs.stat is not os.stat
    assert not hasattr(zcsdfs, "chroot")


def device_bytes_read(vol) -> int:
    return vol.device.counters.blocks_read * vol.device.block_size


def test_fadvise_willneed_and_dontneed(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    data = os.urandom(256 * 1024)
    vol.pwrite(fd, data, 0)
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    before = device_bytes_read(vol)
    assert vol.pread(fd, len(data), 0) == data
    assert device_bytes_read(vol) == before  # served from the cache
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    assert vol.pread(fd, 4096, 8192) == data[8192:12288]
    assert device_bytes_read(vol) > before
    vol.close(fd)


def test_cached_blocks_never_go_stale(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    vol.pwrite(fd, b"a" * 10000, 0)
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    vol.pwrite(fd, b"b" * 10, 5000)
    assert vol.pread(fd, 10000, 0) == b"a" * 5000 + b"b" * 10 + b"a" * 4990
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    vol.ftruncate(fd, 3)
    assert vol.pread(fd, 10000, 0) == b"aaa"
    vol.close(fd)


def test_sequential_advice_reads_ahead(vol):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    data = os.urandom(MiB)
    vol.pwrite(fd, data, 0)
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    got = b"".join(vol.read(fd, 16384) for _ in range(64))
    assert got == data
    assert vol.vfs.cache.hits > 0


@pytest.mark.parametrize("args", [(0, 0, 99), (-1, 0, os.POSIX_FADV_NORMAL), (0, -1, os.POSIX_FADV_NORMAL)])
def test_fadvise_rejects_bad_arguments(vol, args):
    fd = vol.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    with pytest.raises(OSError) as info:
        vol.posix_fadvise(fd, *args)
    assert info.value.errno == errno.EINVAL
    vol.close(fd)
