"""Garbage collection under churn, ENOSPC on a full device, and crashes during GC."""

import errno
import random

import pytest

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.zns import Geometry, ZonedDevice
from zcsdfs.zns.crash import Recorder, crash_states

BS = 4096


def fresh(geometry="tiny"):
    device = ZonedDevice.memory(geometry)
    mkfs(device)
    return device, mount(device)


@pytest.mark.parametrize("utilisation", [0.5, 0.7, 0.9])
def test_random_overwrites_at_utilisation(utilisation):
    device, fs = fresh()
    files = 4
    per_file = int(fs.statfs().f_blocks * utilisation) // files
    rng = random.Random(int(utilisation * 100))
    inos = [fs.create(fs.ROOT, f"f{i}") for i in range(files)]
    model = {ino: bytearray(rng.randbytes(per_file * BS)) for ino in inos}
    for ino in inos:
        assert fs.write(ino, 0, model[ino]) == per_file * BS
    for _ in range(3 * per_file * files):  # overwrite the data about three times over
        ino = rng.choice(inos)
        block = rng.randrange(per_file)
        data = rng.randbytes(BS)
        assert fs.write(ino, block * BS, data) == BS
        model[ino][block * BS:(block + 1) * BS] = data
    assert fs.gc_blocks_moved > 0
    for ino in inos:
        assert fs.read(ino, 0, per_file * BS) == model[ino]
    report = fsck(device)
    assert report.clean, report.errors
    assert report.valid_blocks == per_file * files
    fs = mount(device)  # after a crash (no unmount)
    for ino in inos:
        assert fs.read(ino, 0, per_file * BS) == model[ino]
    assert fs.write_amplification == 0.0  # a fresh mount has written no user data yet


def test_full_device_enospc_then_recovers_space():
    device, fs = fresh()
    a = fs.create(fs.ROOT, "a")
    written = 0
    with pytest.raises(OSError) as info:
        for _ in range(1000):
            n = fs.write(a, written, bytes([written // BS % 256]) * 8 * BS)
            written += n
            if n < 8 * BS:
                fs.write(a, written, b"x" * BS)  # the next write must fail outright
    assert info.value.errno == errno.ENOSPC
    assert fs.getattr(a).st_size == written
    assert fsck(device).clean
    fs.unlink(fs.ROOT, "a")  # metadata still fits in the reserve
    b = fs.create(fs.ROOT, "b")
    assert fs.write(b, 0, b"y" * 100 * BS) == 100 * BS
    fs.unmount()
    fs = mount(device)
    assert fs.read(b, 0, 100 * BS) == b"y" * 100 * BS
    assert fsck(device).clean


def test_background_gc_frees_a_zone():
    device, fs = fresh()
    inos = [fs.create(fs.ROOT, f"f{i}") for i in range(2)]
    for _ in range(6):
        for ino in inos:
            fs.write(ino, 0, b"z" * 20 * BS)
    free_before = len(fs.writer.free_zones())
    fs.gc(zones=2)
    assert len(fs.writer.free_zones()) >= free_before
    for ino in inos:
        assert fs.read(ino, 0, 20 * BS) == b"z" * 20 * BS
    assert fsck(device).clean


def test_crash_during_gc():
    """Crash states across foreground GC: the recovered files are the state after some prefix of the writes."""
    device, fs = fresh()
    rng = random.Random(5)
    inos = [fs.create(fs.ROOT, f"f{i}") for i in range(3)]
    history = {}  # (ino, block) -> [(write number, contents)]
    for ino in inos:
        data = rng.randbytes(60 * BS)
        fs.write(ino, 0, data)
        for block in range(60):
            history[ino, block] = [(0, data[block * BS:(block + 1) * BS])]
    fs.sync()
    recorder = Recorder(device)
    moved = fs.gc_blocks_moved
    writes = 400
    for k in range(1, writes + 1):
        ino, block = rng.choice(inos), rng.randrange(60)
        data = rng.randbytes(BS)
        fs.write(ino, block * BS, data)
        history[ino, block].append((k, data))
    fs.sync()
    recorder.detach()
    assert fs.gc_blocks_moved > moved
    final_point = len(recorder.commands)
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=1, samples=1, seed=1):
        if crash.point % 50 and crash.point != final_point:
            continue
        crashed = crash.device()
        assert fsck(crashed).clean
        recovered = mount(crashed)
        lo, hi = (writes if crash.point == final_point else 0), writes
        for (ino, block), versions in history.items():
            got = recovered.read(ino, block * BS, BS)
            match = [i for i, (_, data) in enumerate(versions) if data == got]
            assert match, f"crash {crash}: inode {ino} block {block} holds data never written there"
            i = match[0]
            lo = max(lo, versions[i][0])
            hi = min(hi, versions[i + 1][0] - 1 if i + 1 < len(versions) else writes)
        assert lo <= hi, f"crash {crash}: the blocks mix states from different points"
        checked += 1
    assert checked > 5


@pytest.mark.parametrize("max_active", [2, 3, 4])
def test_tight_active_limits_share_heads(max_active):
    """With few active zones streams share heads; the device never refuses a write."""
    geometry = Geometry(zones=10, zone_size=32, zone_capacity=24, max_open=max_active, max_active=max_active)
    device, fs = fresh(geometry)
    rng = random.Random(max_active)
    inos = [fs.create(fs.ROOT, f"f{i}") for i in range(3)]
    model = {ino: bytearray(rng.randbytes(20 * BS)) for ino in inos}
    for ino in inos:
        fs.write(ino, 0, model[ino])
    for _ in range(200):
        ino, block = rng.choice(inos), rng.randrange(20)
        data = rng.randbytes(BS)
        fs.write(ino, block * BS, data)
        model[ino][block * BS:(block + 1) * BS] = data
        assert device.active_zones <= max_active
    assert len(set(fs.writer.route.values())) == min(4, max_active - 1)
    fs.sync()  # buffered writes are durable from here; the remount below is a crash
    fs = mount(device)
    for ino in inos:
        assert fs.read(ino, 0, 20 * BS) == model[ino]
    assert fsck(device).clean
