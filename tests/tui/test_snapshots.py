"""Each view at 80x24, rendered from a volume with known contents (pytest-textual-snapshot; the
accepted SVGs are in ``__snapshots__``: ``pytest tests/tui --snapshot-update`` rewrites them)."""

from __future__ import annotations

import os

import pytest

from tests.tui.volumes import BS, memory_volume
from zcsdfs.csd import advice, kernels
from zcsdfs.tui.app import Inspector
from zcsdfs.tui.source import volume_source


@pytest.fixture
def volume():
    vol = memory_volume()
    fd = vol.open("/big", os.O_RDONLY)  # one kernel bound, one run over 4 blocks
    vol.posix_fadvise(fd, 0, 0, advice(kernels.load("histogram").with_args(b"")))
    vol.pread(fd, 4 * BS, 0)
    yield vol
    vol.close(fd)
    vol.unmount()


PID = 4242  # the bindings' process, in the pictures (the test's own pid changes from run to run)


def app_of(vol) -> Inspector:
    source = volume_source(vol)
    source.name = "test"
    take = source.snapshot

    def snapshot(**kwargs):
        data = take(**kwargs)
        for binding in data["csd"]["bound"]:
            binding["pid"] = PID
        return data

    source.snapshot = snapshot
    return Inspector(source, interval=3600)  # one snapshot, at start: the picture holds still


async def first_snapshot(pilot, *keys) -> None:
    """The first snapshot is on screen; then ``keys`` are pressed and what they ask for (the file
    list, for the Files view) is on screen too."""
    for key in (None, *keys):
        if key is not None:
            await pilot.press(key)
        while any(not w.is_finished for w in pilot.app.workers):
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.pause()


@pytest.mark.parametrize("before, keys", [((), ("right", "right")), (("2",), ("down",)), ((), ("3",)),
                                          ((), ("4",)), ((), ("5",))],
                         ids=["zones", "files", "log", "kernels", "server"])
def test_view(snap_compare, volume, before, keys):
    assert snap_compare(app_of(volume), press=keys, terminal_size=(80, 24),
                        run_before=lambda pilot: first_snapshot(pilot, *before))
