"""Write lifetime hints: RocksDB's reach the lfs, each class gets zones of its own, and the os
API sets the same hints with fcntl(F_SET_RW_HINT)."""

import errno
import os
import random
import struct

import pytest

import zcsdfs
import zcsdfs.lfs.filesystem as lfs_filesystem
from zcsdfs.lfs.log import LIFETIME_STREAMS, Stream, lifetime_heads, stream_heads
from zcsdfs.lfs.usage import usable_blocks
from zcsdfs.rocksdb import DB, Options
from zcsdfs.rocksdb.lifetime import EXTREME, F_GET_RW_HINT, F_SET_RW_HINT, LONG, MEDIUM, NOT_SET, SHORT
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.geometry import Geometry



def hint_of(vol, fd) -> int:
    return struct.unpack("Q", vol.fcntl(fd, F_GET_RW_HINT, bytes(8)))[0]


def zones_of(vol, path) -> set[int]:
    """The zones holding a file's blocks."""
    fs = vol.fs
    node = fs.ns.inodes[vol.stat(path).st_ino]
    size = fs.device.geometry.zone_size
    return {lba // size for _, n, lba in node.extents.runs(0, 1 << 40) if lba is not None}


def test_fcntl_sets_and_gets_the_hint_for_the_inode(vol):
    fd = vol.open("/f", os.O_CREAT | os.O_RDWR)
    other = vol.open("/f", os.O_RDONLY)
    assert hint_of(vol, fd) == NOT_SET
    assert vol.fcntl(fd, F_SET_RW_HINT, struct.pack("Q", LONG)) == struct.pack("Q", LONG)
    assert hint_of(vol, fd) == LONG and hint_of(vol, other) == LONG  # the inode's, as in Linux
    vol.fcntl(fd, F_SET_RW_HINT, struct.pack("Q", NOT_SET))
    assert hint_of(vol, fd) == NOT_SET
    for bad in (struct.pack("Q", 6), struct.pack("q", -1)):
        with pytest.raises(OSError) as e:
            vol.fcntl(fd, F_SET_RW_HINT, bad)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        vol.fcntl(fd, F_SET_RW_HINT, 3)  # an int where Linux wants a pointer
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        vol.fcntl(fd, F_SET_RW_HINT, b"\x02")
    assert e.value.errno == errno.EFAULT
    vol.close(fd)
    vol.close(other)


def test_each_lifetime_writes_to_zones_of_its_own(vol):
    paths = {}
    for hint in (SHORT, MEDIUM, LONG, EXTREME, None):
        path = f"/h{hint}"
        fd = vol.open(path, os.O_CREAT | os.O_WRONLY)
        if hint is not None:
            vol.fcntl(fd, F_SET_RW_HINT, struct.pack("Q", hint))
        vol.write(fd, bytes([hint or 1]) * (200 << 10))  # past the small-write buffer
        vol.write(fd, b"tail")  # and a small write through it
        vol.fsync(fd)
        vol.close(fd)
        paths[hint] = zones_of(vol, path)
    zones = list(paths.values())
    for i, a in enumerate(zones):
        for b in zones[i + 1:]:
            assert not a & b, paths
    w = vol.fs.writer
    for hint, stream in zip((SHORT, MEDIUM, LONG, EXTREME), LIFETIME_STREAMS):
        assert {w.stream_of.get(z) for z in paths[hint]} <= {stream, None}  # None: sealed since


def test_lifetime_heads_stay_within_the_active_limit():
    for max_active in range(2, 14):
        base = stream_heads(max_active)
        route = {**base, **lifetime_heads(max_active, base)}
        assert len(set(route.values())) <= max_active - 1  # one active zone is the checkpoint's
        assert set(route) == set(Stream)
    unlimited = {**stream_heads(0), **lifetime_heads(0, stream_heads(0))}
    assert all(unlimited[s] is s for s in Stream)
    few = {**stream_heads(6), **lifetime_heads(6, stream_heads(6))}  # 5 heads: 4 base + SHORT
    assert few[Stream.SHORT] is Stream.SHORT and few[Stream.EXTREME] is Stream.COLD
    # a volume nobody hints at keeps the space it had
    g = Geometry.preset("tiny")
    assert usable_blocks(g, g.zones - 2, 1) == (g.zones - 2 - 1 - 3) * g.zone_capacity  # the 4 base heads only


def test_rocksdb_hints_reach_the_lfs(vol):
    seen = []
    real = vol.vfs.set_write_hint
    vol.vfs.set_write_hint = lambda of, hint: (seen.append(hint), real(of, hint))[1]
    opts = Options(write_buffer_size=64 << 10, target_file_size_base=64 << 10, max_bytes_for_level_base=128 << 10,
                   level0_file_num_compaction_trigger=2)
    with DB("/db", volume=vol, options=opts) as db:
        for i in range(6000):
            db[b"%08d" % (i * 7 % 6000)] = b"v" * 100
        db.flush()
        db.compact_range()
    assert SHORT in seen and MEDIUM in seen  # WAL, L0
    assert LONG in seen or EXTREME in seen  # deeper levels
    seen.clear()
    with DB("/db", volume=vol, options=Options(lifetime_hints=False, **{k: getattr(opts, k) for k in (
            "write_buffer_size", "target_file_size_base")})) as db:
        db[b"x"] = b"y"
        db.flush()
    assert seen == []


def placement_run(hints: bool) -> dict:
    """Fill and overwrite a DB on a small device (GC has work), full compaction at the end."""
    victims = []
    real = lfs_filesystem.collect

    def collect(fs, zone):
        moved = real(fs, zone)
        victims.append(moved)
        return moved
    lfs_filesystem.collect = collect
    try:
        vol = zcsdfs.Volume(ZonedDevice.memory(Geometry(zones=28, zone_size=1024, zone_capacity=1024,
                                                        block_size=4096, max_open=10, max_active=12)))
        opts = Options(write_buffer_size=1 << 20, target_file_size_base=1 << 20,
                       max_bytes_for_level_base=4 << 20, lifetime_hints=hints)
        rng = random.Random(1)
        with DB("/db", volume=vol, options=opts) as db:
            for _ in range(80000):
                db[b"key%08d" % rng.randrange(30000)] = rng.randbytes(16) * 64
            db.compact_range()
            wrote = db.bytes_written
        c = vol.device.counters
        resets = c.total("resets")
        out = dict(hints=hints, rocksdb_mib=wrote >> 20, device_mib=(c.blocks_written * 4096) >> 20,
                   fs_write_amplification=round(c.blocks_written * 4096 / wrote, 3),
                   gc_victims=len(victims), gc_blocks_moved=sum(victims), zones_reset=resets,
                   freed_whole=resets - len(victims))
        vol.unmount()
        return out
    finally:
        lfs_filesystem.collect = real


def test_placement_frees_whole_zones_and_gc_moves_little():
    with_hints, without = placement_run(True), placement_run(False)
    print(f"\n with hints:    {with_hints}\n without hints: {without}")
    assert with_hints["zones_reset"] > 28  # the device turned over
    # RocksDB hints L0 and L1 tables alike (MEDIUM), so their zones still mix lifetimes a little
    assert with_hints["freed_whole"] >= 0.8 * with_hints["zones_reset"]
    assert with_hints["gc_blocks_moved"] * 4096 <= 0.05 * with_hints["device_mib"] * 2**20
    assert with_hints["gc_victims"] < without["gc_victims"]
