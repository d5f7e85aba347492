"""The CLI as a newcomer meets it, through the real ``zcsdfs`` command in a subprocess.

Every mistake gets one line on stderr starting ``zcsdfs``, a non-zero exit
status, no traceback, and changes nothing; data commands have ``--json``;
every command and group has a description and examples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zcsdfs
from tests.fuse.conftest import needs_fuse
from tests.terminal import run_with_terminal_stderr
from zcsdfs.zns import Geometry, ZonedDevice

SCRIPT = Path(sys.executable).parent / "zcsdfs"


@pytest.fixture
def cli(tmp_path):
    """``cli(*argv, stdin=None)`` runs ``zcsdfs`` with its default device in ``tmp_path``."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="200")
    env.pop("ZCSDFS_DEVICE", None)
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "zcsdfs.cli"]

    def run(*argv, stdin=None, timeout=120):
        return subprocess.run([*command, *map(str, argv)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, input=stdin, timeout=timeout)
    run.default_device = tmp_path / "data" / "zcsdfs" / "default.zns"
    return run


def refused(result, *words, status=1) -> str:
    """A mistake: the status, one ``zcsdfs`` line (or argparse's usage plus one error line), no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "[Errno" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    if status == 2:
        lines = [line for line in lines if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("zcsdfs"), result.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def image(tmp_path):
    """A formatted tiny image holding /f = b"old"."""
    path = tmp_path / "v.zns"
    ZonedDevice.create(path, Geometry.preset("tiny")).close_device()
    with zcsdfs.Volume(path, create=True) as vol:
        with vol.io.open("/f", "wb") as f:
            f.write(b"old")
    return path


def snapshot_names(path) -> list[str]:
    from zcsdfs.lfs import mount
    with ZonedDevice.open(path) as device:
        fs = mount(device)
        try:
            return [info.name for info in fs.list_snapshots()]
        finally:
            fs.unmount()


# -- help and version --------------------------------------------------------------------------


def every_parser():
    from zcsdfs.cli import build_parser
    import argparse

    stack = [("", build_parser())]
    while stack:
        words, parser = stack.pop()
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend((f"{words} {name}".strip(), child) for name, child in action.choices.items())


def test_every_command_and_group_has_a_description_and_examples():
    seen = []
    for words, parser in every_parser():
        seen.append(words)
        assert parser.description and len(parser.description) > 20, words
        assert parser.epilog and parser.epilog.startswith("examples:"), words
        assert f"zcsdfs {words}".strip() in parser.epilog or words == "", (words, parser.epilog)
    for words in ("device", "device create", "zone", "zone reset", "snapshot", "snapshot rollback", "bench",
                  "bench entropy", "kernel", "kernel verify", "mount", "run", "df", "mkfs", "fsck"):
        assert words in seen


@pytest.mark.parametrize("argv", [["device", "--help"], ["snapshot", "create", "--help"], ["zones", "--help"]])
def test_group_help_is_rich_with_examples(cli, argv):
    result = ok(cli(*argv))
    assert "examples:" in result.stdout and "zcsdfs " + argv[0] in result.stdout.split("examples:")[1]


def test_version(cli):
    result = ok(cli("--version"))
    assert result.stdout.strip() == f"zcsdfs {zcsdfs_version()}"


def zcsdfs_version() -> str:
    from importlib import metadata
    return metadata.version("zcsdfs")


def test_device_create_help_states_the_defaults(cli):
    out = ok(cli("device", "create", "--help")).stdout
    assert "default: qemu" in out and "32 zones of 128 MiB" in out


# -- bench entropy -----------------------------------------------------------------------------


@pytest.mark.parametrize("size, status, words", [
    ("0", 1, ["--size must be at least 4K", "not 0 bytes"]),
    ("10", 1, ["--size must be at least 4K", "not 10 bytes"]),
    ("-1", 2, ["--size", "not a size"]),
    ("1P", 2, ["--size", "not a size"]),
])
def test_bench_entropy_bad_sizes(cli, size, status, words):
    refused(cli("bench", "entropy", "--size", size), *words, status=status)


def test_bench_entropy_json(cli):
    result = ok(cli("bench", "entropy", "--size", "64K", "--interp-size", "8K", "--python-size", "8K", "--json"))
    data = json.loads(result.stdout)
    assert data["size"] == 65536
    assert [w["way"] for w in data["ways"]] == ["offloaded, JIT", "offloaded, interpreter", "host, numpy",
                                                "host, pure Python"]
    jit, numpy = data["ways"][0], data["ways"][2]
    assert jit["entropy"] == pytest.approx(data["entropy"]) == pytest.approx(numpy["entropy"])
    assert jit["device_to_host_bytes"] == 2048 and numpy["device_to_host_bytes"] == 65536


# -- run ---------------------------------------------------------------------------------------


APP = """\
import sys
with open("/zcsd/note", "w") as f:
    f.write("x")
print("args", sys.argv[1:], "dev", sys.flags.dev_mode, "read", open("/zcsd/note").read())
"""


@pytest.fixture
def app(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "tool.py").write_text(APP)
    return tmp_path / "app.py"


@pytest.mark.parametrize("python_args, want", [
    (["-u", "app.py", "a"], "args ['a'] dev False read x"),
    (["-X", "dev", "-W", "ignore", "app.py"], "args [] dev True read x"),
    (["-Xdev", "-uB", "app.py", "-u"], "args ['-u'] dev True read x"),
    (["-m", "pkg.tool", "b"], "args ['b'] dev False read x"),
    (["-c", APP, "c"], "args ['c'] dev False read x"),
])
def test_run_takes_pythons_options(cli, app, python_args, want):
    result = ok(cli("run", "--mount", "/zcsd=memory", "--", sys.executable, *python_args))
    assert result.stdout.strip() == want


@pytest.mark.parametrize("python_args, words", [
    (["missing.py"], ["missing.py", "no such script"]),
    (["-m", "no_such_module_here"], ["no module named 'no_such_module_here'"]),
    (["-"], ["python -", "not supported", "save the program to a file"]),
    (["-i", "app.py"], ["python option -i is not supported", "-u"]),
    (["--help"], ["python option --help is not supported"]),
    (["-c"], ["python -c needs a CODE"]),
    (["-X"], ["python -X needs a value"]),
    ([], ["no program given"]),
])
def test_run_refuses_clearly(cli, app, python_args, words):
    refused(cli("run", "--", sys.executable, *python_args, stdin="print(1)"), *words)
    assert not cli.default_device.exists()  # nothing made


def test_run_refuses_what_is_not_python(cli):
    refused(cli("run", "--", "ls", "/"), "Python programs only")


# -- snapshots ---------------------------------------------------------------------------------


def test_snapshot_with_the_name_forgotten_changes_nothing(cli, image):
    line = refused(cli("snapshot", "create", image.name), "looks like an image file", "NAME")
    assert image.name in line
    refused(cli("snapshot", "create", "other.zns"), "looks like an image file")
    assert not cli.default_device.exists()
    assert snapshot_names(image) == []


@pytest.mark.parametrize("name, words", [
    ("a/b", ["'/'"]), ("two\nlines", ["'\\n'"]), ("", ["1 to 255 bytes, not 0"]), ("x" * 256, ["not 256"]),
    ("..", ["cannot name a snapshot"]), ("tab\there", ["'\\t'"]),
])
def test_bad_snapshot_names_are_refused(cli, image, name, words):
    refused(cli("snapshot", "create", image, name), *words)
    assert snapshot_names(image) == []


def test_snapshot_list_create_rollback_delete(cli, image):
    ok(cli("snapshot", "create", image, "first"))
    with zcsdfs.Volume(image) as vol:
        with vol.io.open("/f", "wb") as f:
            f.write(b"new")
        vol.mkdir("/later")
    listed = json.loads(ok(cli("snapshot", "list", image, "--json")).stdout)
    assert [s["name"] for s in listed] == ["first"] and "created" in listed[0]
    assert "first" in ok(cli("snapshot", "list", image)).stdout
    assert "rolled" in ok(cli("snapshot", "rollback", image, "first")).stdout
    with zcsdfs.Volume(image) as vol:
        assert vol.listdir("/") == ["f"]
        with vol.io.open("/f", "rb") as f:
            assert f.read() == b"old"
    assert ok(cli("fsck", image)).returncode == 0
    refused(cli("snapshot", "rollback", image, "second"), "no snapshot 'second'")
    ok(cli("snapshot", "delete", image, "first"))
    assert json.loads(ok(cli("snapshot", "list", image, "--json")).stdout) == []


def test_snapshot_on_the_default_device_by_name_alone(cli):
    ok(cli("mkfs"))
    ok(cli("snapshot", "create", "nightly"))
    assert snapshot_names(cli.default_device) == ["nightly"]


def test_volume_opens_a_snapshot_read_only(image):
    with zcsdfs.Volume(image) as vol:
        vol.fs.create_snapshot("s")
        with vol.io.open("/f", "wb") as f:
            f.write(b"new")
    with zcsdfs.Volume(image, snapshot="s") as snap:
        with snap.io.open("/f", "rb") as f:
            assert f.read() == b"old"
        assert snap.statvfs("/").f_flag & os.ST_RDONLY
        with pytest.raises(OSError) as exc:
            snap.open("/g", os.O_CREAT | os.O_WRONLY)
        assert exc.value.errno == 30  # EROFS
    with zcsdfs.Volume(image) as vol:  # the live tree is untouched
        with vol.io.open("/f", "rb") as f:
            assert f.read() == b"new"
    with pytest.raises(OSError) as exc:
        zcsdfs.Volume(image, snapshot="nope")
    assert exc.value.errno == 2  # ENOENT
    with zcsdfs.Volume(image) as vol:  # and a failed open let go of the image
        assert vol.listdir("/") == ["f"]


# -- geometry ----------------------------------------------------------------------------------


def test_device_create_defaults_to_the_default_devices_geometry(cli, tmp_path):
    ok(cli("device", "create", "d.zns"))
    with ZonedDevice.open(tmp_path / "d.zns") as dev:
        assert dev.geometry == Geometry.preset("qemu")
    assert os.stat(tmp_path / "d.zns").st_blocks * 512 < 1 << 20  # sparse


def test_custom_zones_have_no_inherited_limits(cli, tmp_path):
    ok(cli("device", "create", "c.zns", "--zones", 64, "--zone-size", "1M"))
    with ZonedDevice.open(tmp_path / "c.zns") as dev:
        assert dev.geometry == Geometry(zones=64, zone_size=256, zone_capacity=256, max_open=0, max_active=0)


def test_block_size_keeps_the_presets_zone_bytes(cli, tmp_path):
    ok(cli("device", "create", "b.zns", "--preset", "tiny", "--block-size", 512))
    with ZonedDevice.open(tmp_path / "b.zns") as dev:
        assert (dev.geometry.zone_size * 512, dev.geometry.zone_capacity * 512) == (64 * 4096, 48 * 4096)


@pytest.mark.parametrize("argv, words", [
    (["--block-size", "0"], ["--block-size must be a power of two", "not 0"]),
    (["--block-size", "-4096"], ["--block-size must be a power of two"]),
    (["--zones", "0"], ["--zones must be at least 1"]),
    (["--zone-size", "0"], ["--zone-size (0 bytes) must be a positive multiple"]),
])
def test_bad_geometry_is_refused_and_makes_nothing(cli, tmp_path, argv, words):
    refused(cli("device", "create", "g.zns", *argv), *words)
    assert not (tmp_path / "g.zns").exists()


def test_device_info_of_a_small_device_speaks_in_its_units(cli, image):
    out = ok(cli("device", "info", image)).stdout
    assert "0.00 GiB" not in out and "3 MiB writable of 4 MiB addressable" in out
    data = json.loads(ok(cli("device", "info", image, "--json")).stdout)
    assert data["zones"] == 16 and data["capacity_bytes"] == 3 << 20 and data["zone_states"]["EMPTY"] < 16


# -- zones -------------------------------------------------------------------------------------


def test_zones_pages_and_uses_hex_lbas(cli, image):
    out = ok(cli("zones", image, "--start", 14, "--count", 5)).stdout.splitlines()
    assert out[0].split()[:2] == ["zone", "start"] and len(out) == 3
    assert out[1].split() == ["14", hex(14 * 64), hex(14 * 64), hex(48), hex(64), "EMPTY"]
    zones = json.loads(ok(cli("zones", image, "--json")).stdout)
    assert [z["zone"] for z in zones] == list(range(16))
    assert all(z["write_pointer"] >= z["start"] for z in zones)
    refused(cli("zones", image, "--start", 16), "--start 16 is past the last zone (15)")
    refused(cli("zones", image, "--count", -1), "must be 0 or more", status=2)


def test_zones_of_a_large_device_stream(cli, tmp_path):
    ok(cli("device", "create", "l.zns", "--zones", 20000, "--zone-size", "64K"))
    result = ok(cli("zones", "l.zns"))
    lines = result.stdout.splitlines()
    assert len(lines) == 20001 and lines[-1].split()[0] == "19999"


# -- df ----------------------------------------------------------------------------------------


def test_df_never_reports_more_used_than_its_size(cli, tmp_path):
    path = tmp_path / "small.zns"
    ok(cli("device", "create", path, "--zones", 8, "--zone-size", "1M"))
    with zcsdfs.Volume(path, create=True) as vol:
        before = vol.statvfs("/")
        with vol.io.open("/big", "wb") as f:
            f.write(os.urandom(4 << 20))  # data written once fills more than the sustained size
        st = vol.statvfs("/")
    assert before.f_blocks * before.f_frsize >= 2 << 20
    assert st.f_blocks >= st.f_blocks - st.f_bfree >= 1024 and st.f_bfree == 0
    data = json.loads(ok(cli("df", path, "--json")).stdout)
    assert data["used_bytes"] >= 4 << 20 and data["size_bytes"] >= data["used_bytes"]
    assert 0.99 <= data["used_fraction"] <= 1.0
    out = ok(cli("df", path)).stdout
    assert "100.0%" in out and "%)" in out


def test_errors_are_sentences_without_errno_tags(cli, tmp_path):
    ok(cli("device", "create", "blank.zns", "--preset", "tiny"))
    line = refused(cli("df", "blank.zns"), "not a zcsdfs file system")
    assert "[Errno" not in line


@needs_fuse
def test_mount_a_snapshot_read_only(cli, image, tmp_path):
    with zcsdfs.Volume(image) as vol:
        vol.fs.create_snapshot("s")
        with vol.io.open("/f", "wb") as f:
            f.write(b"new")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    ok(cli("mount", image, mnt, "-o", "snapshot=s,attr_timeout=0"))
    try:
        assert (mnt / "f").read_bytes() == b"old"
        with pytest.raises(OSError) as exc:
            (mnt / "g").write_bytes(b"x")
        assert exc.value.errno == 30  # EROFS: the kernel was told the mount is read-only
    finally:
        ok(cli("umount", mnt))
    with zcsdfs.Volume(image) as vol:
        assert vol.listdir("/") == ["f"]
        with vol.io.open("/f", "rb") as f:
            assert f.read() == b"new"
    refused(cli("mount", image, mnt, "-o", "snapshot=nope"), "no snapshot 'nope'")
    assert not os.path.ismount(mnt)


def test_progress_goes_to_a_terminal_on_stderr_only(cli, tmp_path):
    """Long work shows a rich progress bar on stderr when it is a terminal, and nothing when it is not."""
    argv = ["bench", "entropy", "--size", "64K", "--interp-size", "8K", "--python-size", "8K", "--json"]
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "zcsdfs.cli"]
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), TERM="xterm", COLUMNS="120")
    status, out, seen = run_with_terminal_stderr([*command, *argv], env)
    assert status == 0
    assert b"entropy benchmark" in seen and b"Traceback" not in seen
    assert json.loads(out)["size"] == 65536  # stdout holds the data only
    quiet = ok(cli(*argv))
    assert quiet.stderr == ""
