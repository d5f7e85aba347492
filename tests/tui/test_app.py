"""The full-screen inspector, driven headless (``App.run_test``) on volumes with known contents:
what each view shows, the actions behind their confirmation, read-only refusals, errors as
notifications."""

from __future__ import annotations

import asyncio
import errno
import functools
import os

import pytest
from rich.console import Console

from tests.tui.volumes import BS, GEOMETRY, image, memory_volume, write
from zcsdfs.csd import advice, kernels
from zcsdfs.tui.app import Confirm, Inspector, ZoneMap
from zcsdfs.tui.source import open_source, volume_source



def aio(test):
    """Run an async test in its own event loop (the pilot needs one; no plugin needed)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run


def shown(app, selector: str) -> str:
    """The text a Static shows (its content rendered as plain text)."""
    console = Console(width=200, no_color=True, record=True, file=open(os.devnull, "w"))
    console.print(app.query_one(selector).content)
    return console.export_text()


async def settle(app, pilot) -> None:
    """Wait for snapshots (and actions) in flight, and those they start, then for the screen."""
    while any(not w.is_finished for w in app.workers):
        await app.workers.wait_for_complete()
        await pilot.pause()
    await pilot.pause()


def inspector(vol, **kwargs) -> Inspector:
    source = volume_source(vol)
    source.name = "test"
    return Inspector(source, interval=3600, **kwargs)  # snapshots only when the test asks


@aio
async def test_zones_view_shows_every_zone_its_state_and_the_owners_of_its_blocks():
    vol = memory_volume()
    states = vol.stack.stats().device.zone_states
    app = inspector(vol)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        zmap = app.query_one(ZoneMap)
        assert [r["state"] for r in zmap.rows] == [z.state.name for z in vol.stack.stats().device.zone_list]
        assert zmap.per_cell == 1 and len(zmap.rows) == GEOMETRY.zones
        heads = shown(app, "#zone-heads")
        assert all(f"{name.lower()}:{n}" in heads for name, n in states.items())
        big_zone = next(lba // GEOMETRY.zone_size for _, lba, _ in vol.stack.fs.ns.inodes[
            vol.stat("/big").st_ino].extents)
        await pilot.press(*["right"] * big_zone)
        await pilot.pause()
        detail = shown(app, "#zone-detail")
        valid = vol.stack.fs.ns.valid[big_zone]
        assert detail.startswith(f"zone {big_zone} ") and f"valid {valid}" in detail and "/big (" in detail
        await pilot.click(ZoneMap, offset=(0, 0))  # a click selects too: the first cell is zone 0
        await pilot.pause()
        assert shown(app, "#zone-detail").startswith("zone 0 ")
    vol.unmount()


@aio
async def test_thousands_of_zones_are_grouped_into_cells_that_fit():
    import zcsdfs
    from zcsdfs.zns import Geometry, ZonedDevice
    vol = zcsdfs.Volume(ZonedDevice.memory(Geometry(zones=3000, zone_size=64, zone_capacity=64)))
    app = inspector(vol)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        zmap = app.query_one(ZoneMap)
        assert zmap.per_cell > 1 and zmap.cells * zmap.per_cell >= 3000
        assert zmap.cells <= zmap.size.width * zmap.size.height
        assert f"({zmap.per_cell} zones/cell)" in shown(app, "#zone-heads")
        await pilot.press("end")
        await pilot.pause()
        assert shown(app, "#zone-detail").startswith(f"zones {(zmap.cells - 1) * zmap.per_cell}-2999 ")
    vol.unmount()


@aio
async def test_files_view_lists_the_tree_and_shows_a_files_extents():
    vol = memory_volume()
    ino = vol.stat("/big").st_ino
    extents = list(vol.stack.fs.ns.inodes[ino].extents)
    app = inspector(vol)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert not app._files  # walked only when a view shows it
        await pilot.press("2")
        await settle(app, pilot)
        table = app.query_one("#files-table")
        assert app.focused is table
        keys = [row.value for row in table.rows]
        assert keys == ["/", "/big", "/d", "/d/f0", "/d/f1", "/d/f2", "/d/f3", "/d/f4"]
        await pilot.press("down")  # /big
        await pilot.pause()
        detail = shown(app, "#file-detail")
        assert detail.startswith(f"/big  file  {70 * BS} bytes  70 blocks  {len(extents)} extents")
        for first, lba, count in extents[:4]:
            assert f"block {first}+{count} → lba {lba:#x} (zone {lba // GEOMETRY.zone_size})" in detail
    vol.unmount()


@aio
async def test_kernels_view_counts_a_bound_read():
    vol = memory_volume()
    fd = vol.open("/big", os.O_RDONLY)
    kernel = kernels.load("histogram").with_args(b"")
    vol.posix_fadvise(fd, 0, 0, advice(kernel))
    returned = len(vol.pread(fd, 4 * BS, 0))
    app = inspector(vol)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await pilot.pause()
        text = shown(app, "#kernel-table")
        assert f"1 bindings, 1 runs, 0 faults, {4 * BS} B in → {returned} B out" in text
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [kernel.name])
        assert lines[at].split()[1:5] == ["1", "0", str(4 * BS), str(returned)]  # runs, faults, in, out
        assert f"{kernel.kind}, {kernel.engine}, 1 bound" in lines[at + 1]
    vol.close(fd)
    vol.unmount()


@aio
async def test_kernels_view_says_which_kernel_is_bound_to_which_file_process_and_range():
    vol = memory_volume()
    fd = vol.open("/big", os.O_RDONLY)
    kernel = kernels.load("histogram").with_args(b"")
    vol.posix_fadvise(fd, BS, 2 * BS, advice(kernel))
    bound = vol.stack.stats().csd.bound
    assert [(b.kernel, b.kind, b.engine, b.ino, b.pid, b.start, b.length, b.route) for b in bound] == [
        (kernel.name, kernel.kind, kernel.engine, vol.stat("/big").st_ino, os.getpid(), BS, 2 * BS, "fadvise")]
    app = inspector(vol)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await pilot.pause()
        row = next(line for line in shown(app, "#kernel-table").splitlines() if "/big" in line)
        assert row.split("│")[1:-1] and [cell.strip() for cell in row.split("│")[1:-1]] == [
            "/big", str(os.getpid()), f"{BS}-{3 * BS - 1}", kernel.name, kernel.kind, kernel.engine, "fadvise"]
    vol.close(fd)
    assert vol.stack.stats().csd.bound == ()  # closing the description unbinds
    vol.unmount()


@aio
async def test_actions_ask_first_then_act_and_show_in_the_log_view():
    vol = memory_volume()
    for i in range(5):  # overwrite: the old blocks become garbage for GC to collect
        write(vol, f"/d/f{i}", bytes([9]) * BS * (i + 3))
    vol.stack.fs.sync()
    fs = vol.stack.fs
    generation, runs = fs.checkpointer.generation, fs.tally.gc_runs
    app = inspector(vol)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")  # no: nothing happens
        await settle(app, pilot)
        assert fs.tally.gc_runs == runs and not isinstance(app.screen, Confirm)
        await pilot.press("g", "y")
        await settle(app, pilot)
        await settle(app, pilot)  # the action asks for a fresh snapshot
        assert fs.tally.gc_runs == runs + 1 and app.said[-1].startswith("GC freed")
        victim = fs.tally.recent_gc[-1].victim
        await pilot.press("3")
        await pilot.pause()
        log = shown(app, "#gc-runs")
        assert any(line.split("│")[1].strip() == str(victim) for line in log.splitlines() if line.count("│") > 2)
        await pilot.press("c")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(app, pilot)
        assert fs.checkpointer.generation > generation
        await pilot.press("n", "y")
        await settle(app, pilot)
        assert len(fs.snapshots) == 1 and app.said[-1] == f"snapshot {next(iter(fs.snapshots))} taken"
    vol.unmount()


@aio
async def test_a_read_only_image_refuses_actions_and_is_not_a_server(tmp_path):
    path = image(tmp_path / "v.zns")
    with open(path, "rb") as f:
        before = f.read()
    with open_source(path) as source:
        app = Inspector(source, interval=3600)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            for key in ("g", "n", "c"):
                await pilot.press(key)
                await pilot.pause()
                assert not isinstance(app.screen, Confirm) and "is read-only" in app.said[-1]
            await pilot.press("5")
            await pilot.pause()
            assert "not a server" in shown(app, "#server-table")
            shown_before = app.updates
            app.poll()
            await settle(app, pilot)
            assert app.updates == shown_before + 1
    with open(path, "rb") as f:
        assert f.read() == before


class Failing:
    """A source whose snapshots fail, as a server that went away does."""

    name, kind, readonly = "gone", "mount", True

    def snapshot(self, files=True):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "no zcsdfs server answers for this mount point", "/mnt")

    def act(self, action):
        raise AssertionError("not reached: read-only")


@aio
async def test_errors_are_notifications_and_the_app_keeps_running():
    app = Inspector(Failing(), interval=3600)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.said == ["snapshot failed: /mnt: no zcsdfs server answers for this mount point"]
        assert app.is_running and app.updates == 0
        await pilot.press("2", "3", "4", "5", "1")  # views without a snapshot yet
        await pilot.pause()
        await pilot.press("q")
    assert app.return_code == 0


class Server:
    """A live server's snapshots, scripted: each one a second after the last, with the
    counters of ``counts`` (opcode -> requests), one dict per snapshot."""

    name, kind, readonly = "server", "mount", True

    def __init__(self, vol, counts):
        self.source, self.counts, self.taken = volume_source(vol), list(counts), 0

    def snapshot(self, files=True):
        data = self.source.snapshot(files=files)
        counts = self.counts.pop(0) if self.counts else {}
        data["server"] = {"type": "ServerStats", "transport": "fuse", "requests": sum(counts.values()),
                          "in_flight": 0, "open_handles": 0, "unexpected": 0,
                          "opcodes": {name: {"type": "OpcodeStats", "requests": n, "p50_us": 3.0, "p99_us": 9.0,
                                             "max_us": 12.0} for name, n in counts.items()}}
        self.taken += 1_000_000_000
        data["target"] = {"name": self.name, "kind": self.kind, "readonly": True, "live_server": True,
                          "taken_ns": self.taken}
        return data


@aio
async def test_server_view_shows_requests_per_second_per_opcode_over_time():
    vol = memory_volume()
    source = Server(vol, [{"READ": 100, "WRITE": 10}, {"READ": 400, "WRITE": 10}, {"READ": 450, "WRITE": 70}])
    app = Inspector(source, interval=3600)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        for _ in range(2):
            app.poll()
            await settle(app, pilot)
        assert list(app.rates.total) == [300.0, 110.0]  # (400-100)+(10-10), then (450-400)+(70-10): a second apart
        assert app.query_one("#rate-chart").data == [300.0, 110.0]
        rows = [line.replace("│", " ").split() for line in shown(app, "#server-table").splitlines()]
        assert ["requests/s", "110"] in rows
        assert ["READ", "50/s,", "450", "requests,", "p50", "3", "µs,", "p99", "9", "µs"] in rows
        assert ["WRITE", "60/s,", "70", "requests,", "p50", "3", "µs,", "p99", "9", "µs"] in rows
    vol.unmount()
