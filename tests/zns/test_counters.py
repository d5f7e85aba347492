"""Per-zone and device counters, and injected media errors."""

from __future__ import annotations

import errno

import pytest

from zcsdfs.zns import Geometry, MediaError, ZonedDevice, ZoneOffline, ZoneState

BS = 512
GEOMETRY = Geometry(zones=4, zone_size=16, zone_capacity=12, block_size=BS, max_open=2, max_active=3)
E, IO, EO, C, F = (ZoneState.EMPTY, ZoneState.IMPLICIT_OPEN, ZoneState.EXPLICIT_OPEN, ZoneState.CLOSED,
                   ZoneState.FULL)


def blocks(n: int, fill: int = 1) -> bytes:
    return bytes([fill]) * (n * BS)


@pytest.fixture
def dev():
    return ZonedDevice.memory(GEOMETRY)


def test_io_counters():
    dev = ZonedDevice.memory(Geometry(zones=4, zone_size=16, zone_capacity=16, block_size=BS))
    dev.write(0, blocks(3))
    dev.append(0, blocks(2))
    dev.append(1, blocks(4))
    dev.read(0, 16 + 2)  # crosses from zone 0 into zone 1
    dev.read(20, 1)
    z0, z1 = dev.counters.zones[:2]
    assert (z0.blocks_written, z0.blocks_appended, z0.blocks_read) == (3, 2, 16)
    assert (z1.blocks_written, z1.blocks_appended, z1.blocks_read) == (0, 4, 3)
    totals = dev.counters.as_dict()
    assert totals == {"blocks_written": 3, "blocks_appended": 6, "blocks_read": 19, "resets": 0, "finishes": 0}
    assert dev.counters.blocks_written == 9  # device total: writes plus appends
    assert dev.counters.blocks_read == 19


def test_reset_and_finish_counters(dev):
    dev.append(2, blocks(1))
    dev.finish(2)
    dev.finish(2)  # already full: nothing happens, nothing counted
    dev.reset(2)
    dev.reset(3)  # an empty zone: a no-op reset still counts as a reset command
    dev.reset_all()  # every zone is empty now: Select All resets none of them
    assert [(c.resets, c.finishes) for c in dev.counters.zones] == [(0, 0), (0, 0), (1, 1), (1, 0)]
    assert dev.counters.total("resets") == 2


def test_transitions_counted_once_each(dev):
    dev.append(0, blocks(1))        # 0: E -> IO
    dev.append(1, blocks(1))        # 1: E -> IO
    dev.close(1)                    # 1: IO -> C
    dev.append(2, blocks(1))        # 2: E -> IO (zone 0 and 2 open, 0, 1, 2 active)
    dev.append(1, blocks(1))        # open limit: least recently opened implicit zone 0 IO -> C; 1: C -> IO
    dev.finish(1)                   # 1: IO -> F
    dev.open_zone(0)                # 0: C -> EO
    dev.append(0, blocks(11))       # 0: EO -> F (capacity reached)
    dev.reset(0)                    # 0: F -> E
    t = dev.counters.transitions()
    assert t == {(E, IO): 3, (IO, C): 2, (C, IO): 1, (IO, F): 1, (C, EO): 1, (EO, F): 1, (F, E): 1}
    assert dict(dev.counters.zones[0].transitions) == {(E, IO): 1, (IO, C): 1, (C, EO): 1, (EO, F): 1,
                                                        (F, E): 1}


def test_injected_write_fault_leaves_zone_unchanged(dev):
    dev.append(1, blocks(2, fill=7))
    before = dev.zone(1)
    dev.faults.fail_writes(1, times=2)
    for attempt in range(2):
        with pytest.raises(MediaError) as caught:
            dev.write(before.write_pointer, blocks(1))
        assert caught.value.errno == errno.EIO
        assert dev.zone(1) == before
    dev.write(before.write_pointer, blocks(1, fill=9))  # the third attempt goes through
    assert dev.zone(1).write_pointer == before.write_pointer + 1
    assert dev.read(16, 3) == blocks(2, fill=7) + blocks(1, fill=9)
    assert dev.counters.zones[1].blocks_written == 1


def test_injected_write_fault_on_empty_zone_does_not_open_it(dev):
    dev.faults.fail_writes(3)
    with pytest.raises(MediaError):
        dev.append(3, blocks(1))
    assert dev.zone(3).state is E
    assert (dev.open_zones, dev.active_zones) == (0, 0)


def test_write_fault_forever_until_cleared(dev):
    dev.faults.fail_writes(0, times=None)
    for _ in range(3):
        with pytest.raises(MediaError):
            dev.append(0, blocks(1))
    dev.faults.clear()
    assert dev.append(0, blocks(1)) == 0


def test_injected_read_error(dev):
    dev.append(0, blocks(4, fill=3))
    dev.faults.fail_reads(2, 1)
    with pytest.raises(MediaError) as caught:
        dev.read(0, 4)
    assert caught.value.errno == errno.EIO
    assert caught.value.lba == 2
    assert dev.read(0, 4) == blocks(4, fill=3)  # once only
    assert dev.read(3, 1) == blocks(1, fill=3)
    dev.faults.fail_reads(5, 2, times=None)  # blocks 5 and 6, always
    assert dev.read(0, 5) == blocks(4, fill=3) + blocks(1, fill=0)  # does not touch 5
    for _ in range(2):
        with pytest.raises(MediaError):
            dev.read(6, 1)
    assert dev.counters.zones[0].blocks_read == 4 + 1 + 5  # failed reads count nothing


def test_zone_turning_read_only_keeps_data_and_frees_resources(dev):
    dev.append(0, blocks(2, fill=4))
    dev.faults.make_read_only(0)
    assert dev.zone(0).state is ZoneState.READ_ONLY
    assert (dev.open_zones, dev.active_zones) == (0, 0)
    assert dev.read(0, 3) == blocks(2, fill=4) + blocks(1, fill=0)


def test_offline_is_final(dev):
    dev.faults.make_offline(1)
    with pytest.raises(ZoneOffline):
        dev.faults.make_read_only(1)
    with pytest.raises(ZoneOffline):
        dev.reset(1)
    assert dev.zone(1).state is ZoneState.OFFLINE
