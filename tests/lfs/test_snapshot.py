"""Snapshots and frozen views: stable under overwrites, GC and remount; deleting frees space."""

import errno
import random
import threading

import pytest

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.zns import ZonedDevice

BS = 4096


def fresh():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    return device, mount(device)


def churn(fs, inos, blocks, rounds, rng):
    """Overwrite random blocks ``rounds`` times over; return the final contents."""
    model = {}
    for _ in range(rounds * blocks * len(inos)):
        ino, block = rng.choice(inos), rng.randrange(blocks)
        data = rng.randbytes(BS)
        fs.write(ino, block * BS, data)
        model[(ino, block)] = data
    return model


def test_snapshot_survives_overwrite_gc_and_remount():
    device, fs = fresh()
    rng = random.Random(1)
    d = fs.mkdir(fs.ROOT, "d")
    inos = [fs.create(d, f"f{i}") for i in range(2)]
    blocks = int(fs.statfs().f_blocks * 0.25)  # the snapshot pins 50%, the live f0 adds 25%: GC must run
    original = {ino: rng.randbytes(blocks * BS) for ino in inos}
    for ino in inos:
        fs.write(ino, 0, original[ino])
    fs.setxattr(inos[0], "user.tag", b"before")
    info = fs.create_snapshot("s1")
    assert info.name == "s1"
    fs.setxattr(inos[0], "user.tag", b"after")
    fs.unlink(d, "f1")
    current = churn(fs, inos[:1], blocks, 6, rng)
    assert fs.gc_blocks_moved > 0

    def check(fs):
        snap = fs.snapshot("s1")
        sd = snap.lookup(fs.ROOT, "d")
        assert [e.name for e in snap.readdir(sd)] == ["f0", "f1"]
        for i, ino in enumerate(inos):
            assert snap.lookup(sd, f"f{i}") == ino
            assert snap.getattr(ino).st_size == blocks * BS
            assert snap.read(ino, 0, blocks * BS) == original[ino]
        assert snap.getxattr(inos[0], "user.tag") == b"before"
        live = bytearray(original[inos[0]])
        for (_, block), data in current.items():
            live[block * BS:(block + 1) * BS] = data
        assert fs.read(inos[0], 0, blocks * BS) == live
        assert fs.getxattr(inos[0], "user.tag") == b"after"
        with pytest.raises(OSError) as e:
            fs.lookup(d, "f1")
        assert e.value.errno == errno.ENOENT

    check(fs)
    report = fsck(device)
    assert report.clean, report.errors
    assert report.snapshots == 1
    fs = mount(device)  # as after a crash
    check(fs)
    churn(fs, inos[:1], blocks, 2, rng)  # GC again after remount, snapshot blocks move again
    fs.unmount()
    fs = mount(device)
    snap = fs.snapshot("s1")
    assert snap.read(inos[1], 0, blocks * BS) == original[inos[1]]
    assert fsck(device).clean


def test_delete_snapshot_frees_space():
    device, fs = fresh()
    a = fs.create(fs.ROOT, "a")
    blocks = 40
    fs.write(a, 0, b"x" * blocks * BS)
    fs.create_snapshot("old")
    fs.write(a, 0, b"y" * blocks * BS)
    assert sum(fs.ns.valid) == 2 * blocks
    assert [s.name for s in fs.list_snapshots()] == ["old"]
    snap = fs.snapshot("old")
    fs.delete_snapshot("old")
    assert sum(fs.ns.valid) == blocks
    assert fs.list_snapshots() == []
    with pytest.raises(OSError) as e:
        snap.read(a, 0, BS)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        fs.snapshot("old")
    assert e.value.errno == errno.ENOENT
    fs.unmount()
    fs = mount(device)
    assert fs.list_snapshots() == []
    assert sum(fs.ns.valid) == blocks
    assert fsck(device).clean


def test_snapshot_names():
    _, fs = fresh()
    fs.create_snapshot("a")
    with pytest.raises(OSError) as e:
        fs.create_snapshot("a")
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        fs.create_snapshot("")
    assert e.value.errno == errno.ENAMETOOLONG
    assert not hasattr(fs.snapshot("a"), "write")


def test_frozen_view_stable_under_concurrent_writes_and_gc():
    device, fs = fresh()
    a = fs.create(fs.ROOT, "a")
    blocks = 60
    original = bytes(random.Random(2).randbytes(blocks * BS))
    fs.write(a, 0, original)
    view = fs.freeze(a)
    lbas = view.lbas()
    assert len(lbas) == blocks and -1 not in lbas
    pinned = {lba // device.geometry.zone_size for lba in lbas}

    def writer(seed):
        rng = random.Random(seed)
        for _ in range(blocks * 4):
            fs.write(a, rng.randrange(blocks) * BS, rng.randbytes(BS))

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for _ in range(50):
        assert view.read(0, blocks * BS) == original
        fs.gc(zones=1)
    for t in threads:
        t.join()
    assert fs.read(a, 0, blocks * BS) != original
    assert view.lbas() == lbas
    assert view.read(0, blocks * BS) == original
    for lba in lbas:
        assert device.read(lba, 1) == original[(lbas.index(lba)) * BS:(lbas.index(lba) + 1) * BS]
    assert all(fs.viewed[z] for z in pinned)
    view.release()
    assert not any(fs.viewed)
    with pytest.raises(OSError) as e:
        view.read(0, 1)
    assert e.value.errno == errno.EINVAL
    for _ in range(len(fs.writer.log_zones)):
        fs.gc(zones=1)
    fs.checkpoint()
    assert fsck(device).clean


def test_gc_moves_blocks_only_a_snapshot_references():
    from zcsdfs.lfs.gc import collect, live_runs

    device, fs = fresh()
    a, b = fs.create(fs.ROOT, "a"), fs.create(fs.ROOT, "b")
    fs.write(a, 0, b"a" * 20 * BS)
    fs.write(b, 0, b"b" * 20 * BS)
    fs.create_snapshot("s")
    fs.unlink(fs.ROOT, "a")
    zone = fs.snapshot("s").ns.inodes[a].extents.lookup(0) // device.geometry.zone_size
    kinds = {(ino, len(trees)) for ino, _, _, _, trees in live_runs(fs, zone)}
    assert kinds == {(a, 1), (b, 2)}  # a: the snapshot only; b: live and snapshot share it
    assert collect(fs, zone) == 40  # shared blocks move once
    fs.checkpoint()
    snap = fs.snapshot("s")
    assert snap.ns.inodes[a].extents.lookup(0) // device.geometry.zone_size != zone
    assert snap.ns.inodes[b].extents.lookup(0) == fs.ns.inodes[b].extents.lookup(0)
    assert fs.ns.valid[zone] == 0
    fs = mount(device)
    snap = fs.snapshot("s")
    assert snap.read(a, 0, 20 * BS) == b"a" * 20 * BS
    assert snap.read(b, 0, 20 * BS) == fs.read(b, 0, 20 * BS) == b"b" * 20 * BS
    assert fsck(device).clean
