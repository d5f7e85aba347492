"""``zcsdfs inspect --once/--json``: every zone, the files with their extents, of an image
opened read-only (not one byte changes); one-line errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from tests.tui.volumes import GEOMETRY, image


def cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zcsdfs", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_json_of_an_image_has_every_zone_and_every_file_and_changes_no_byte(tmp_path):
    path = image(tmp_path / "v.zns")
    before = digest(path)
    done = cli("inspect", path, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert digest(path) == before
    zones = data["device"]["zone_list"]
    assert [z["index"] for z in zones] == list(range(GEOMETRY.zones))
    assert all({"state", "write_pointer"} <= z.keys() for z in zones)
    valid = {z["zone"]: z["valid_blocks"] for z in data["lfs"]["zone_list"]}
    files = {f["path"]: f for f in data["files"]}
    assert {"/", "/d", "/d/f0", "/d/f4", "/big"} <= files.keys()
    assert [(f["size"], f["blocks"]) for f in (files["/d/f0"], files["/big"])] == [(3 * 4096, 3), (70 * 4096, 70)]
    # every valid block the log counts belongs to some file's extent, and /big spans two zones at least
    assert sum(valid.values()) == sum(f["blocks"] for f in data["files"])
    big_zones = {lba // GEOMETRY.zone_size for _, lba, n in files["/big"]["extents"]}
    assert len(big_zones) >= 2 and sum(n for _, _, n in files["/big"]["extents"]) == 70
    assert data["target"]["readonly"] is True and data["csd"]["bindings"] == 0
    assert data["server"] is None


def test_once_prints_tables_of_zones_files_and_server(tmp_path):
    path = image(tmp_path / "v.zns")
    before = digest(path)
    done = cli("inspect", path, "--once")
    assert done.returncode == 0, done.stderr
    assert digest(path) == before
    for heading in ("zone states", "zones", "files", "streams", "server"):
        assert f"\n{heading}" in done.stdout
    assert "/d/f3" in done.stdout and "not a server" in done.stdout
    assert "\x1b[" not in done.stdout  # not a terminal: no colour codes


def test_errors_are_one_line(tmp_path):
    for target, words in ((tmp_path / "missing.zns", "No such file"), (tmp_path, "not an image nor a mount")):
        done = cli("inspect", target, "--json")
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and words in done.stderr and "Traceback" not in done.stderr


def test_full_screen_needs_a_terminal(tmp_path):
    done = cli("inspect", image(tmp_path / "v.zns"))
    assert done.returncode == 1 and "needs a terminal" in done.stderr and "Traceback" not in done.stderr


def test_the_inspectors_fast_conversion_gives_what_plain_gives():
    from zcsdfs.control import fast_plain, plain
    from tests.tui.volumes import memory_volume
    vol = memory_volume()
    vol.stack.fs.gc(1)
    stats = vol.stack.stats()
    assert stats.lfs.recent_gc_runs and fast_plain(stats) == plain(stats)
    vol.unmount()


def test_incremental_snapshots_equal_fresh_ones_and_reuse_what_did_not_change():
    from zcsdfs.control import PlainMemo, plain
    from tests.tui.volumes import BS, memory_volume, write
    vol = memory_volume()
    memo = PlainMemo()
    first = vol.stack.stats()
    first_plain = memo.convert(first)
    again = vol.stack.stats(previous=first)
    assert again.device is first.device  # nothing changed: the device's generation says so
    assert memo.convert(again)["device"] is first_plain["device"]
    write(vol, "/d/f1", b"x" * 2 * BS)  # a few zones change
    vol.stack.fs.sync()
    fd = vol.open("/big", 0)
    vol.pread(fd, BS, 0)  # a read moves a zone's read counter only
    vol.close(fd)
    later = vol.stack.stats(previous=again)
    fresh = vol.stack.stats()
    assert plain(later) == plain(fresh)  # incremental, yet what a fresh snapshot says
    later_plain = memo.convert(later)
    assert later_plain == plain(fresh)
    kept = [a is b for a, b in zip(first_plain["device"]["zone_list"], later_plain["device"]["zone_list"])]
    assert any(kept) and not all(kept)  # unchanged zones keep their dicts, changed ones get new ones
    vol.unmount()
