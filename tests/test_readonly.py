"""Read-only, all the way down: opening, checking, inspecting and mounting an image read-only
changes not one byte of it, even when the log must be rolled forward, and works on
read-only storage."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

import zcsdfs
from zcsdfs import cli
from zcsdfs.lfs import mkfs, mount
from zcsdfs.lfs.namespace import ROOT_INO
from zcsdfs.stack import build_stack
from zcsdfs.zns import ZonedDevice, ZoneState, open_device

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root (as in CI)")
needs_fuse = pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0,
                                reason="mounting needs /dev/fuse and root (as in CI)")


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def unclean_image(path) -> None:
    """A file system whose last operations are in the log but in no checkpoint (the server
    died after a sync): a mount must roll them forward."""
    with ZonedDevice.create(path, "tiny") as device:
        mkfs(device)
        fs = mount(device)
        ino = fs.create(ROOT_INO, "kept.txt", 0o644)
        fs.write(ino, 0, b"rolled forward")
        fs.mkdir(ROOT_INO, "dir", 0o755)
        fs.symlink(ROOT_INO, "link", "kept.txt")
        fs.sync()
        # no unmount: closing the device is the power cut after the sync


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "vol.zns"
    unclean_image(path)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_image_needs_a_roll_forward(image):
    with open_device(image, readonly=True) as device:
        fs = mount(device)
        assert fs.readonly and fs.recovery.replayed > 0
        fs.unmount()


def test_inspecting_changes_not_one_byte(image, capsys):
    before = digest(image)
    for argv in (["fsck", image], ["zones", image], ["device", "info", image], ["df", image],
                 ["snapshot", "list", image], ["stats", image], ["stats", image, "--json"]):
        status, _, err = run(capsys, *argv)
        assert (status, err) == (0, ""), argv
        assert digest(image) == before, argv


def test_a_read_only_volume_reads_rolled_forward_files_and_changes_nothing(image):
    before = digest(image)
    with zcsdfs.Volume(image, readonly=True) as vol:
        assert sorted(vol.listdir("/")) == ["dir", "kept.txt", "link"]
        with vol.io.open("/link", "rb") as f:
            assert f.read() == b"rolled forward"
        assert vol.statvfs("/").f_flag & os.ST_RDONLY
        for change in (lambda: vol.mkdir("/new"), lambda: vol.unlink("/kept.txt"),
                       lambda: vol.open("/kept.txt", os.O_WRONLY), lambda: vol.chmod("/kept.txt", 0o600),
                       lambda: vol.open("/new", os.O_CREAT | os.O_WRONLY, 0o644),
                       lambda: vol.rename("/kept.txt", "/moved"), lambda: vol.setxattr("/dir", "user.a", b"1")):
            with pytest.raises(OSError) as info:
                change()
            assert info.value.errno == errno.EROFS
        fd = vol.open("/kept.txt", os.O_RDONLY)
        vol.fsync(fd)  # nothing to write, and no error (as on a read-only Linux mount)
        vol.close(fd)
        vol.sync()
    assert digest(image) == before


def test_every_layer_refuses_changes_with_erofs(image):
    before = digest(image)
    with build_stack(image, readonly=True) as stack:
        device, fs = stack.device, stack.fs
        for change in (lambda: device.append(5, bytes(device.block_size)), lambda: device.reset(5),
                       lambda: device.finish(5), lambda: device.open(5), lambda: device.close(5),
                       lambda: device.write(5 * device.geometry.zone_size, bytes(device.block_size)),
                       lambda: fs.create(ROOT_INO, "x"), lambda: fs.write(fs.lookup(ROOT_INO, "kept.txt"), 0, b"x"),
                       lambda: fs.checkpoint(), lambda: fs.gc(), lambda: fs.create_snapshot("s"),
                       lambda: fs.truncate(fs.lookup(ROOT_INO, "kept.txt"), 0)):
            with pytest.raises(OSError) as info:
                change()
            assert info.value.errno == errno.EROFS
        assert fs.read(fs.lookup(ROOT_INO, "kept.txt"), 0, 100) == b"rolled forward"
        assert device.counters.blocks_written == 0
    assert digest(image) == before


def test_a_read_only_lfs_on_a_writable_device_writes_nothing():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    fs.mkdir(ROOT_INO, "d")
    fs.sync()  # no unmount: units to roll forward
    written = device.counters.blocks_written
    states = [z.state for z in device.report()]
    ro = mount(device, readonly=True)
    assert ro.lookup(ROOT_INO, "d")
    with pytest.raises(OSError) as info:
        ro.mkdir(ROOT_INO, "e")
    assert info.value.errno == errno.EROFS
    ro.unmount()
    assert device.counters.blocks_written == written
    assert [z.state for z in device.report()] == states


def test_readers_share_an_image_and_a_writer_shares_it_with_no_one(image):
    with open_device(image, readonly=True), open_device(image, readonly=True):
        with pytest.raises(OSError) as info:
            open_device(image)
        assert info.value.errno == errno.EBUSY
    with open_device(image):
        with pytest.raises(OSError) as info:
            open_device(image, readonly=True)
        assert info.value.errno == errno.EBUSY


def test_blank_images_are_never_formatted_implicitly(tmp_path, capsys):
    blank = tmp_path / "blank.zns"
    ZonedDevice.create(blank, "tiny").close_device()
    before = digest(blank)
    for readonly in (False, True):
        with pytest.raises(OSError) as info:
            build_stack(blank, readonly=readonly)
        assert info.value.errno == errno.EINVAL and f"zcsdfs mkfs {blank}" in info.value.strerror
    with pytest.raises(OSError):
        build_stack(blank, readonly=True, create=True)  # read-only wins: no mkfs
    assert digest(blank) == before
    with open_device(blank) as device:
        assert all(z.state is ZoneState.EMPTY for z in device.report())


def test_the_default_device_is_made_on_first_use_but_not_by_a_read_only_look(tmp_path, monkeypatch, capsys):
    path = tmp_path / "default.zns"
    monkeypatch.setenv("ZCSDFS_DEVICE", str(path))
    status, _, err = run(capsys, "zones")
    assert status == 1 and "does not exist yet" in err and not path.exists()
    with build_stack() as stack:  # first use: created and formatted
        stack.vfs.mkdir(zcsdfs.vfs.caller.Caller.current(), "made", stack.vfs.root, 0o755)
    with build_stack(readonly=True) as stack:
        assert stack.fs.lookup(ROOT_INO, "made")


@pytest.fixture
def readonly_storage(tmp_path, image):
    """``image`` seen through a read-only bind mount of its directory."""
    source, target = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    shutil.move(image, source / "vol.zns")
    subprocess.run(["mount", "--bind", source, target], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
        yield target / "vol.zns"
    finally:
        subprocess.run(["umount", target], check=True)


@needs_root
def test_an_image_on_read_only_storage_opens_read_only(readonly_storage, capsys):
    image = readonly_storage
    before = digest(image)
    with pytest.raises(OSError) as info:
        open_device(image)  # a writer cannot even open it
    assert info.value.errno == errno.EROFS
    with zcsdfs.Volume(image, readonly=True) as vol:
        with vol.io.open("/kept.txt", "rb") as f:
            assert f.read() == b"rolled forward"
    for argv in (["fsck", image], ["zones", image], ["df", image], ["stats", image]):
        assert run(capsys, *argv)[0] == 0, argv
    assert digest(image) == before


def zcsdfs_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zcsdfs", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@needs_fuse
def test_a_read_only_fuse_mount_changes_not_one_byte(readonly_storage, tmp_path):
    image = readonly_storage
    before = digest(image)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = zcsdfs_cli("mount", image, mnt, "-o", "ro")
    assert done.returncode == 0, done.stderr
    try:
        assert (mnt / "kept.txt").read_bytes() == b"rolled forward"
        assert sorted(os.listdir(mnt)) == ["dir", "kept.txt", "link"]
        with pytest.raises(OSError) as info:
            (mnt / "new").write_text("no")
        assert info.value.errno == errno.EROFS
    finally:
        done = zcsdfs_cli("umount", mnt)
    assert done.returncode == 0, done.stderr
    assert digest(image) == before


@needs_fuse
def test_mounting_a_blank_image_is_refused_with_a_hint(tmp_path):
    blank = tmp_path / "blank.zns"
    ZonedDevice.create(blank, "tiny").close_device()
    before = digest(blank)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for options in ([], ["-o", "ro"]):
        done = zcsdfs_cli("mount", blank, mnt, *options)
        assert done.returncode == 1 and "zcsdfs mkfs" in done.stderr, done.stderr
        assert not os.path.ismount(mnt)
    assert digest(blank) == before
