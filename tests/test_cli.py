"""The ``zcsdfs`` command line: in-process through ``cli.main`` and end to end in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import zcsdfs
from zcsdfs import cli
from zcsdfs.zns import Geometry, ZonedDevice, ZoneState

SCRIPT = Path(sys.executable).parent / "zcsdfs"  # the console script pip installed


def run(capsys, *argv) -> tuple[int, str, str]:
    """``zcsdfs ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help and usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err: str, *words: str) -> None:
    assert err.startswith("zcsdfs: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


def usage_error(err: str, *words: str) -> None:
    """argparse's convention: the usage, then exactly one ``error:`` line."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"


@pytest.fixture
def image(tmp_path, capsys):
    path = tmp_path / "dev.zns"
    assert run(capsys, "device", "create", path, "--preset", "tiny")[0] == 0
    return path


# -- help ---------------------------------------------------------------------------------


def test_help_lists_subcommands(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for name in ("demo", "device", "zones", "zone"):
        assert f"\n    {name} " in out or f"  {name}  " in out, out


def test_no_subcommand_is_a_usage_error(capsys):
    status, _, err = run(capsys)
    assert status == 2
    usage_error(err, "required")


# -- device create / info ---------------------------------------------------------------------


def test_create_with_preset(tmp_path, capsys):
    path = tmp_path / "p.zns"
    status, out, err = run(capsys, "device", "create", path, "--preset", "tiny")
    assert (status, err) == (0, "")
    assert "created" in out and "16 zones" in out
    with ZonedDevice.open(path) as dev:
        assert dev.geometry == Geometry.preset("tiny")


def test_create_with_explicit_sizes(tmp_path, capsys):
    path = tmp_path / "x.zns"
    status, _, err = run(capsys, "device", "create", path, "--zones", 4, "--zone-size", "1M",
                         "--zone-capacity", "768K", "--block-size", 512, "--max-open", 2, "--max-active", 3)
    assert (status, err) == (0, "")
    with ZonedDevice.open(path) as dev:
        assert dev.geometry == Geometry(zones=4, zone_size=2048, zone_capacity=1536, block_size=512,
                                        max_open=2, max_active=3)


def test_zone_capacity_defaults_to_zone_size(tmp_path, capsys):
    path = tmp_path / "s.zns"
    assert run(capsys, "device", "create", path, "--zones", 2, "--zone-size", "64KiB")[0] == 0
    with ZonedDevice.open(path) as dev:
        assert (dev.geometry.zone_size, dev.geometry.zone_capacity) == (16, 16)


def test_device_info(image, capsys):
    with ZonedDevice.open(image) as dev:
        dev.append(0, bytes(4096 * 3))
        dev.finish(1)
    status, out, err = run(capsys, "device", "info", image)
    assert (status, err) == (0, "")
    assert "16 zones" in out and "4096-byte blocks" in out and "4 open" in out and "6 active" in out
    assert "zones closed" in out and "zones full" in out and "zones empty" in out
    lines = {line.split()[1]: line.split()[-1] for line in out.splitlines() if line.strip().startswith("zones ")}
    assert lines == {"empty": "14", "closed": "1", "full": "1"}


# -- zones and zone management ------------------------------------------------------------------


def zone_rows(out: str) -> dict[int, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = line.replace("│", " ").split()  # zones prints plain columns, the demo a rich table
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_zones_table(image, capsys):
    with ZonedDevice.open(image) as dev:
        dev.append(2, bytes(4096 * 5))
    status, out, err = run(capsys, "zones", image)
    assert (status, err) == (0, "")
    assert "write pointer" in out
    rows = zone_rows(out)
    assert sorted(rows) == list(range(16))
    # zone, start, write pointer, capacity, size (LBAs and blocks in hex), state
    assert rows[2] == [str(2), hex(128), hex(128 + 5), hex(48), hex(64), "CLOSED"]
    assert rows[3][5] == "EMPTY"


@pytest.mark.parametrize("action, state", [("finish", ZoneState.FULL), ("reset", ZoneState.EMPTY)])
def test_zone_finish_and_reset_persist(image, capsys, action, state):
    with ZonedDevice.open(image) as dev:
        dev.append(5, bytes(4096 * 2))
    status, out, err = run(capsys, "zone", action, image, 5)
    assert (status, err) == (0, "")
    assert out.startswith(f"zone 5: {state.name}")
    with ZonedDevice.open(image) as dev:
        assert dev.zone(5).state is state


def test_zone_open_and_close(image, capsys):
    with ZonedDevice.open(image) as dev:
        dev.append(4, bytes(4096))
    status, out, _ = run(capsys, "zone", "open", image, 4)
    assert status == 0 and out.startswith("zone 4: EXPLICIT_OPEN, write pointer 0x101")
    # Each command is a power cycle: the zone comes back CLOSED, and closing it again is fine.
    status, out, _ = run(capsys, "zone", "close", image, 4)
    assert status == 0 and out.startswith("zone 4: CLOSED")


def test_zone_command_refused_by_the_device(image, capsys):
    status, out, err = run(capsys, "zone", "close", image, 7)
    assert (status, out) == (1, "")
    one_line_error(err, "cannot close", "EMPTY", "zone 7")


# -- demo ---------------------------------------------------------------------------------------


def test_demo_with_zcsdfs_device(tmp_path, monkeypatch, capsys):
    path = tmp_path / "nested" / "demo.zns"
    monkeypatch.setenv("ZCSDFS_DEVICE", str(path))
    status, out, err = run(capsys, "demo")
    assert (status, err) == (0, "")
    assert "run 1 of the demo" in out and "blob.bin" in out
    with ZonedDevice.open(path) as dev:
        assert dev.geometry == Geometry.preset("qemu")
    # A second run mounts the same volume and finds the first run's files.
    status, out, _ = run(capsys, "demo")
    assert status == 0
    assert "run 2 of the demo" in out
    with zcsdfs.Volume(path) as volume:
        with volume.io.open("/demo/runs.log") as log:
            assert log.read() == "run\nrun\n"
        assert volume.stat("/demo/blob.bin").st_size == 1 << 20
        assert volume.readlink("/demo/latest") == "summary.json"


def test_demo_under_xdg_data_home(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ZCSDFS_DEVICE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    status, out, err = run(capsys, "demo")
    assert (status, err) == (0, "")
    default = tmp_path / "data" / "zcsdfs" / "default.zns"
    assert default.exists()
    assert sorted(zone_rows(out)) == list(range(32))


# -- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["device", "create", "{tmp}/a.zns", "--zones", "0"], ["--zones must be at least 1"]),
    (["device", "create", "{tmp}/a.zns", "--zone-size", "1000"], ["multiple of the block size"]),
    (["device", "create", "{tmp}/a.zns", "--zone-size", "64K", "--zone-capacity", "128K"], ["exceeds zone size"]),
    (["device", "create", "{tmp}/a.zns", "--block-size", "1000"], ["power of two"]),
    (["device", "create", "{tmp}/a.zns", "--max-open", "9", "--max-active", "3"], ["max open zones"]),
    (["device", "create", "{tmp}/no/such/dir/a.zns"], ["No such file or directory"]),
    (["device", "info", "{tmp}/missing.zns"], ["missing.zns", "No such file or directory"]),
    (["zones", "{tmp}"], ["Is a directory"]),
])
def test_bad_arguments_exit_1(tmp_path, capsys, argv, words):
    status, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert (status, out) == (1, "")
    one_line_error(err, *words)
    assert not (tmp_path / "a.zns").exists()  # nothing half-made left behind


def test_no_such_zone(image, capsys):
    status, _, err = run(capsys, "zone", "reset", image, 16)
    assert status == 1
    one_line_error(err, "no zone 16")


def test_create_over_an_existing_image(image, capsys):
    status, _, err = run(capsys, "device", "create", image)
    assert status == 1
    one_line_error(err, str(image), "exists")
    with ZonedDevice.open(image) as dev:  # untouched
        assert dev.geometry == Geometry.preset("tiny")


@pytest.mark.parametrize("argv, words", [
    (["device", "create", "x.zns", "--zone-size", "lots"], ["zone-size", "not a size"]),
    (["device", "create", "x.zns", "--preset", "huge"], ["invalid choice"]),
    (["zone", "reset", "x.zns", "zero"], ["not a whole number"]),
    (["zone", "explode", "x.zns", "1"], ["invalid choice"]),
    (["nonsense"], ["invalid choice"]),
])
def test_usage_errors_exit_2(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    usage_error(err, *words)


# -- end to end ---------------------------------------------------------------------------------


def test_end_to_end(tmp_path):
    env = dict(os.environ, ZCSDFS_DEVICE=str(tmp_path / "e2e.zns"), COLUMNS="200")
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "zcsdfs"]

    def zcsdfs(*argv):
        return subprocess.run([*command, *map(str, argv)], capture_output=True, text=True, env=env, timeout=60)

    helped = zcsdfs("--help")
    assert helped.returncode == 0 and "device" in helped.stdout and "zones" in helped.stdout
    demo = zcsdfs("demo")
    assert demo.returncode == 0, demo.stderr
    assert "EMPTY" in demo.stdout and (tmp_path / "e2e.zns").exists()
    finished = zcsdfs("zone", "finish", tmp_path / "e2e.zns", 3)
    assert finished.returncode == 0 and "FULL" in finished.stdout
    zones = zcsdfs("zones", tmp_path / "e2e.zns")
    assert zone_rows(zones.stdout)[3][5] == "FULL"
    bad = zcsdfs("zone", "reset", tmp_path / "e2e.zns", 99)
    assert bad.returncode == 1 and bad.stdout == ""
    one_line_error(bad.stderr, "no zone 99")
