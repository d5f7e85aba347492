"""The inspector of a live server, through its control socket (no FUSE mount needed: the
control server is started on a stack as ``zcsdfs mount`` starts it): the file list, the
actions behind their confirmation, a read-only server's refusal, and requests checked one
by one (a bad one is answered with an error line, and the connection serves the next)."""

from __future__ import annotations

import errno
import json
import shutil
import socket
import tempfile

import pytest

from tests.tui.test_app import aio, settle, shown
from tests.tui.volumes import BS, image, memory_volume, write
from zcsdfs.control import ControlServer, request
from zcsdfs.stack import build_stack
from zcsdfs.tui.app import Confirm, Inspector
from zcsdfs.tui.source import MountSource


@pytest.fixture
def directory():
    path = tempfile.mkdtemp(prefix="zcsdfs-ctl-")  # short: a socket's path has at most 107 bytes
    yield f"{path}/control"
    shutil.rmtree(path)


@aio
async def test_a_live_server_shows_its_files_and_runs_actions_after_confirmation(tmp_path, directory):
    vol = memory_volume()
    for i in range(5):  # overwrite: garbage for GC
        write(vol, f"/d/f{i}", bytes([9]) * BS * (i + 3))
    vol.stack.fs.sync()
    fs = vol.stack.fs
    runs, generation = fs.tally.gc_runs, fs.checkpointer.generation
    control = ControlServer(vol.stack, tmp_path, directory=directory)
    try:
        source = MountSource(tmp_path, directory=directory)
        assert not source.readonly
        app = Inspector(source, interval=3600)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("2")
            await settle(app, pilot)
            keys = [row.value for row in app.query_one("#files-table").rows]
            assert keys == ["/", "/big", "/d", "/d/f0", "/d/f1", "/d/f2", "/d/f3", "/d/f4"]
            await pilot.press("down")
            await pilot.pause()
            assert shown(app, "#file-detail").startswith(f"/big  file  {70 * BS} bytes  70 blocks")
            await pilot.press("g")
            await pilot.pause()
            assert isinstance(app.screen, Confirm) and fs.tally.gc_runs == runs  # asks first
            await pilot.press("y")
            await settle(app, pilot)
            assert fs.tally.gc_runs == runs + 1 and app.said[-1].startswith("GC freed")
            await pilot.press("c", "y")
            await settle(app, pilot)
            assert fs.checkpointer.generation > generation and app.said[-1].startswith("checkpoint ")
            await pilot.press("n", "y")
            await settle(app, pilot)
            assert app.said[-1] == f"snapshot {next(iter(fs.snapshots))} taken"
    finally:
        control.close()
        vol.unmount()


@aio
async def test_a_read_only_server_refuses_actions_with_a_message(tmp_path, directory):
    path = image(tmp_path / "v.zns")
    with open(path, "rb") as f:
        before = f.read()
    stack = build_stack(path, readonly=True)
    control = ControlServer(stack, tmp_path, directory=directory)
    try:
        source = MountSource(tmp_path, directory=directory)
        assert source.readonly
        app = Inspector(source, interval=3600)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("g")
            await pilot.pause()
            assert not isinstance(app.screen, Confirm) and "is read-only" in app.said[-1]
        with pytest.raises(OSError) as refused:  # and the server itself refuses, whoever asks
            request(tmp_path, {"op": "act", "action": "checkpoint"}, directory=directory)
        assert refused.value.errno == errno.EROFS and "read-only" in str(refused.value)
    finally:
        control.close()
        stack.close()
    with open(path, "rb") as f:
        assert f.read() == before


def test_every_request_is_checked_and_a_bad_one_gets_an_error_line(tmp_path, directory):
    vol = memory_volume()
    control = ControlServer(vol.stack, tmp_path, directory=directory)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(control.path)
            reader = sock.makefile("rb")

            def ask(line: bytes) -> dict:
                sock.sendall(line + b"\n")
                return json.loads(reader.readline())

            for bad in (b"not json", b"[1, 2]", b'{"op": "rm -rf"}', b'{"op": 7}', b'{"op": "files", "limit": "all"}',
                        b'{"op": "files", "limit": 0}', b'{"op": "files", "limit": true}',
                        b'{"op": "act", "action": "format"}', b'{"op": "act"}', b'{"op": "stats", "since": "x"}'):
                reply = ask(bad)
                assert reply["ok"] is False and reply["errno"] == "EINVAL" and reply["error"], bad
            files = ask(b'{"op": "files", "limit": 3}')  # the connection still serves
            assert files["ok"] and files["truncated"] and [f["path"] for f in files["files"]] == ["/", "/big", "/d"]
            assert ask(b'{"op": "stats"}')["stats"]["lfs"]["inodes"] == 8
    finally:
        control.close()
        vol.unmount()


def test_a_watcher_gets_only_the_zones_that_changed_and_sees_what_a_full_snapshot_shows(tmp_path, directory):
    vol = memory_volume()
    control = ControlServer(vol.stack, tmp_path, directory=directory)
    try:
        source = MountSource(tmp_path, directory=directory)
        first = source.snapshot(files=False)
        same = source.snapshot(files=False)  # nothing changed: every zone's dict is the one kept
        assert all(a is b for a, b in zip(first["device"]["zone_list"], same["device"]["zone_list"]))
        sent = request(tmp_path, {"op": "stats", "since": source._serial}, directory=directory)
        assert sent["stats"]["device"]["zone_list"] == {"changed": {}}  # what went over the socket: nothing
        write(vol, "/new", b"n" * 3 * BS)
        vol.stack.fs.sync()
        after = source.snapshot(files=False)
        full = request(tmp_path, {"op": "stats"}, directory=directory)["stats"]  # no since: whole lists
        for layer in ("device", "lfs"):
            assert after[layer]["zone_list"] == full[layer]["zone_list"]
        moved = [i for i, (a, b) in enumerate(zip(same["device"]["zone_list"], after["device"]["zone_list"]))
                 if a is not b]
        assert moved and len(moved) < len(full["device"]["zone_list"])  # a few zones, not all of them
        stale = request(tmp_path, {"op": "stats", "since": -1}, directory=directory)  # unknown: whole lists
        assert isinstance(stale["stats"]["device"]["zone_list"], list)
    finally:
        control.close()
        vol.unmount()
