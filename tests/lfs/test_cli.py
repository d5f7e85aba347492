"""``zcsdfs mkfs``, ``fsck`` and ``df`` through ``cli.main``."""

from __future__ import annotations

import pytest

from tests.lfs.clirun import run
from zcsdfs.lfs import mkfs, mount
from zcsdfs.lfs.usage import disk_usage
from zcsdfs.zns import ZonedDevice

BS = 4096


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "dev.zns"
    ZonedDevice.create(path, "tiny").close_device()
    return path


@pytest.fixture
def formatted(image, capsys):
    assert run(capsys, "mkfs", image)[0] == 0
    return image


def write_files(path, count: int, blocks: int, rounds: int = 1) -> None:
    with ZonedDevice.open(path) as device:
        fs = mount(device)
        inos = [fs.create(fs.ROOT, f"f{i}") for i in range(count)]
        for r in range(rounds):
            for ino in inos:
                fs.write(ino, 0, bytes([r]) * blocks * BS)
        fs.unmount()


def test_mkfs_then_fsck_clean(image, capsys):
    status, out, err = run(capsys, "mkfs", image)
    assert status == 0, err
    assert "made zcsdfs" in out and "MiB usable" in out
    status, out, _ = run(capsys, "fsck", image)
    assert status == 0
    assert "clean" in out and "1 inodes" in out


def test_mkfs_refuses_a_file_system_without_force(formatted, capsys):
    write_files(formatted, 1, 2)
    status, _, err = run(capsys, "mkfs", formatted)
    assert status == 1
    assert err.startswith("zcsdfs: ") and "--force" in err and err.count("\n") == 1
    with ZonedDevice.open(formatted) as device:
        assert disk_usage(device).inodes == 2  # untouched
    assert run(capsys, "mkfs", "--force", formatted)[0] == 0
    with ZonedDevice.open(formatted) as device:
        assert disk_usage(device).inodes == 1


def test_mkfs_default_device(tmp_path, monkeypatch, capsys):
    path = tmp_path / "default.zns"
    monkeypatch.setenv("ZCSDFS_DEVICE", str(path))
    status, out, err = run(capsys, "mkfs")
    assert status == 0, err
    assert path.exists() and str(path) in out
    assert run(capsys, "fsck")[0] == 0


def test_fsck_reports_problems_with_exit_status_4(formatted, capsys):
    write_files(formatted, 1, 4)
    with ZonedDevice.open(formatted) as device:
        fs = mount(device)
        node = fs.ns.inodes[fs.lookup(fs.ROOT, "f0")]
        first, lba, count = next(iter(node.extents))
        fs.ns.valid[lba // device.geometry.zone_size] += 3  # a wrong count saved by the next checkpoint
        fs.checkpoint()
    status, out, _ = run(capsys, "fsck", formatted)
    assert status == 4  # fsck(8): errors left uncorrected
    assert "error:" in out and "valid blocks" in out and "problem(s) left uncorrected" in out
    assert out.count("saves 7 valid blocks") == 1  # each problem printed once


def test_fsck_of_an_unformatted_image_is_an_operational_error(image, capsys):
    status, out, _ = run(capsys, "fsck", image)
    assert status == 8
    assert "error:" in out and "not a zcsdfs file system" in out


def test_fsck_of_a_missing_image_is_an_operational_error(tmp_path, capsys):
    status, _, err = run(capsys, "fsck", tmp_path / "nothing.zns")
    assert status == 8 and err.startswith("zcsdfs: ") and err.count("\n") == 1


def test_fsck_after_the_log_zones_are_reset_is_an_error(formatted, capsys):
    """Every file gone, and fsck used to say "clean, 0 files" with exit status 0."""
    write_files(formatted, 3, 4)
    with ZonedDevice.open(formatted) as device:
        for zone in range(2, device.geometry.zones):
            if device.zone(zone).write_pointer != device.zone(zone).start:
                device.reset(zone)
    status, out, _ = run(capsys, "fsck", formatted)
    assert status == 4
    assert "clean" not in out and "error:" in out and "note:" not in out


def _damage_superblocks(path, wipe_magic: bool) -> None:
    """Flip a byte in every superblock copy of the image (or wipe their magic too)."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"ZCSB")
    found = 0
    while at >= 0:
        raw[at + 30] ^= 0xFF  # inside the uuid: the copy fails its CRC
        if wipe_magic:
            raw[at:at + 4] = bytes(4)
        found += 1
        at = raw.find(b"ZCSB", at + 4)
    assert found == 2  # one copy in each checkpoint zone
    path.write_bytes(raw)


@pytest.mark.parametrize("wipe_magic", [False, True], ids=["crc", "magic"])
def test_mkfs_refuses_a_damaged_volume_without_force(formatted, capsys, wipe_magic):
    write_files(formatted, 1, 2)
    _damage_superblocks(formatted, wipe_magic)
    with ZonedDevice.open(formatted) as device:
        with pytest.raises(OSError):
            mount(device)
    status, _, err = run(capsys, "mkfs", formatted)
    assert status == 1 and "looks like a zcsdfs volume" in err and "--force" in err
    assert formatted.read_bytes().count(b"ZCSB") == (0 if wipe_magic else 2)  # untouched
    assert run(capsys, "mkfs", "--force", formatted)[0] == 0
    assert run(capsys, "fsck", formatted)[0] == 0


def test_df_shows_usage_and_write_amplification(formatted, capsys):
    write_files(formatted, 2, 10, rounds=3)
    with ZonedDevice.open(formatted) as device:
        u = disk_usage(device)
    assert u.valid_blocks == 20
    assert u.user_blocks == 60
    assert u.write_amplification > 1.0
    assert u.free_zones + u.head_zones + u.sealed_zones == u.log_zones
    status, out, err = run(capsys, "df", formatted)
    assert status == 0, err
    assert "20 blocks" in out
    assert f"{u.write_amplification:.2f}" in out
    assert f"{u.free_zones}" in out


def test_df_does_not_write(formatted, capsys):
    with ZonedDevice.open(formatted) as device:
        before = [(z.state, z.write_pointer) for z in device.report()]
    assert run(capsys, "df", formatted)[0] == 0
    assert run(capsys, "fsck", formatted)[0] == 0
    with ZonedDevice.open(formatted) as device:
        assert [(z.state, z.write_pointer) for z in device.report()] == before


def test_usage_survives_remount_as_lifetime_totals():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    ino = fs.create(fs.ROOT, "a")
    fs.write(ino, 0, b"a" * 8 * BS)
    fs.unmount()
    fs = mount(device)
    fs.write(ino, 0, b"b" * 8 * BS)
    assert fs.usage().user_blocks == 16
    fs.unmount()
    assert disk_usage(device).user_blocks == 16


def test_snapshot_create_list_delete(formatted, capsys):
    write_files(formatted, 1, 4)
    status, out, err = run(capsys, "snapshot", "create", formatted, "nightly")
    assert status == 0, err
    assert "nightly" in out
    status, out, _ = run(capsys, "snapshot", "list", formatted)
    assert status == 0 and "nightly" in out
    status, _, err = run(capsys, "snapshot", "create", formatted, "nightly")
    assert status == 1 and "exists" in err
    with ZonedDevice.open(formatted) as device:
        assert disk_usage(device).valid_blocks == 8  # the file's blocks, referenced twice
    status, out, _ = run(capsys, "fsck", formatted)
    assert status == 0
    assert run(capsys, "snapshot", "delete", formatted, "nightly")[0] == 0
    status, out, _ = run(capsys, "snapshot", "list", formatted)
    assert "nightly" not in out
    status, _, err = run(capsys, "snapshot", "delete", formatted, "nightly")
    assert status == 1 and "no snapshot" in err


def test_snapshot_on_the_default_device(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZCSDFS_DEVICE", str(tmp_path / "default.zns"))
    assert run(capsys, "mkfs")[0] == 0
    assert run(capsys, "snapshot", "create", "s")[0] == 0
    status, out, _ = run(capsys, "snapshot", "list")
    assert status == 0 and " s " in out
