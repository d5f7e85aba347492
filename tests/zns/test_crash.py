"""Crash states from a recorded workload: each one opens and keeps the durability promises.

The test keeps its own account of what each zone was sent and what was made
durable (flush, FUA, reset, finish) after every command, and checks every
state ``crash_states`` produces against it: durable data is all there, each
zone holds a prefix of what was written to it, the report is consistent.
"""

from __future__ import annotations

import pytest

from zcsdfs.zns import Geometry, ZonedDevice, ZoneState
from zcsdfs.zns.crash import Recorder, crash_states

BS = 512
GEOMETRY = Geometry(zones=8, zone_size=16, zone_capacity=12, block_size=BS, max_open=3, max_active=4)


class Account:
    """Per zone: bytes sent since the last reset, bytes durable, and whether it was finished."""

    def __init__(self, device: ZonedDevice, recorder: Recorder, before: dict | None = None):
        """``before`` maps zone -> (bytes, finished) for what the device held when recording began."""
        before = before or {}
        self.device = device
        self.recorder = recorder
        self.sent = [before.get(i, (b"", False))[0] for i in range(GEOMETRY.zones)]
        self.durable = list(self.sent)
        self.finished = [before.get(i, (b"", False))[1] for i in range(GEOMETRY.zones)]
        self.at_point = {0: self.snapshot()}
        self.serial = 0

    def snapshot(self):
        return tuple(self.sent), tuple(self.durable), tuple(self.finished)

    def note(self) -> None:
        self.at_point[len(self.recorder.commands)] = self.snapshot()

    def data(self, nblocks: int) -> bytes:
        out = b""
        for _ in range(nblocks):
            self.serial += 1
            out += self.serial.to_bytes(4, "little") * (BS // 4)
        return out

    # -- the workload's commands -------------------------------------------------------

    def write(self, zone: int, nblocks: int, fua: bool = False) -> None:
        data = self.data(nblocks)
        self.device.write(self.device.zone(zone).write_pointer, data, fua=fua)
        self.sent[zone] += data
        if fua:
            self.durable[zone] = self.sent[zone]
        self.note()

    def append(self, zone: int, nblocks: int, fua: bool = False) -> None:
        data = self.data(nblocks)
        lba = self.device.append(zone, data, fua=fua)
        assert lba == zone * GEOMETRY.zone_size + len(self.sent[zone]) // BS
        self.sent[zone] += data
        if fua:
            self.durable[zone] = self.sent[zone]
        self.note()

    def flush(self) -> None:
        self.device.flush()
        self.durable = list(self.sent)
        self.note()

    def reset(self, zone: int) -> None:
        self.device.reset(zone)
        self.sent[zone] = self.durable[zone] = b""
        self.finished[zone] = False
        self.note()

    def finish(self, zone: int) -> None:
        self.device.finish(zone)
        self.durable[zone] = self.sent[zone]
        self.finished[zone] = True
        self.note()

    def close(self, zone: int) -> None:
        self.device.close(zone)
        self.note()

    def open(self, zone: int) -> None:
        self.device.open_zone(zone)
        self.note()


def workload(account: Account) -> None:
    a = account
    a.write(0, 3)
    a.append(1, 2)
    a.append(0, 2)
    a.flush()
    a.append(0, 4)           # a 4-block unflushed write: it may be torn
    a.append(2, 1)
    a.append(3, 2)           # a fourth implicit open: zone 0 gets closed for it
    a.write(3, 3, fua=True)  # FUA: zone 3 durable up to here
    a.append(1, 3)
    a.reset(2)
    a.open(4)
    a.append(4, 5)
    a.finish(1)              # zone 1 durable and FULL
    a.append(5, 2)
    a.flush()
    a.append(5, 4)
    a.close(5)
    a.reset(0)
    a.append(2, 6)
    a.finish(3)
    a.append(0, 2)
    a.append(4, 7)           # fills zone 4 (12 blocks) without a flush
    a.append(2, 2, fua=True)
    a.append(5, 1)


def check_state(state, sent, durable, finished) -> None:
    dev = state.device()
    assert isinstance(dev, ZonedDevice)
    assert dev.geometry == GEOMETRY
    zones = dev.report()
    assert dev.open_zones == 0  # nothing is open after a power cycle
    for z, zone_sent, zone_durable, zone_finished in zip(zones, sent, durable, finished):
        data = dev.read(z.start, z.capacity)
        if z.state is not ZoneState.FULL:
            kept = (z.write_pointer - z.start) * BS
        elif zone_finished:  # finishing made everything sent to it durable
            kept = len(zone_sent)
        else:  # filled by writes: the whole capacity was kept
            kept = z.capacity * BS
        # Each zone holds a prefix of what was written to it, then zeros, never anything else ...
        assert kept <= len(zone_sent)
        assert data[:kept] == zone_sent[:kept]
        assert data[kept:] == bytes(len(data) - kept)
        # ... and at least everything made durable.
        assert kept >= len(zone_durable)
        # The state agrees with the data the zone holds.
        if zone_finished or kept == z.capacity * BS:
            assert z.state is ZoneState.FULL
        elif kept:
            assert z.state is ZoneState.CLOSED
        else:
            assert (z.state, z.write_pointer) == (ZoneState.EMPTY, z.start)
    assert dev.active_zones == sum(z.state is ZoneState.CLOSED for z in zones)


def recorded(before: dict | None = None):
    """Record the workload on a device that already holds ``before`` (zone -> (bytes, finish it))."""
    dev = ZonedDevice.memory(GEOMETRY)
    for zone, (data, finish) in (before or {}).items():
        dev.append(zone, data)
        if finish:
            dev.finish(zone)
    recorder = Recorder(dev)
    account = Account(dev, recorder, {zone: (data, finish or len(data) == GEOMETRY.zone_capacity * BS)
                                      for zone, (data, finish) in (before or {}).items()})
    workload(account)
    return recorder, account


def test_every_crash_state_keeps_the_promises():
    recorder, account = recorded()
    states = list(crash_states(recorder))
    assert {s.point for s in states} == set(range(len(recorder.commands) + 1))
    assert set(account.at_point) == set(range(len(recorder.commands) + 1))
    for state in states:
        check_state(state, *account.at_point[state.point])


def test_crash_states_include_torn_and_untouched_ends():
    recorder, account = recorded()
    by_point: dict[int, list] = {}
    for state in crash_states(recorder):
        by_point.setdefault(state.point, []).append(state)
    for point, states in by_point.items():
        sent, durable, _ = account.at_point[point]
        pending = tuple((len(s) - len(d)) // BS for s, d in zip(sent, durable))
        kept = {s.kept for s in states}
        assert tuple(0 for _ in pending) in kept  # everything unflushed lost
        assert pending in kept                   # everything unflushed kept
        assert all(all(0 <= k <= p for k, p in zip(state, pending)) for state in kept)
    # The 4-block append to zone 0 after the first flush can be torn inside it.
    point = next(p for p, (sent, durable, _) in account.at_point.items()
                 if len(sent[0]) - len(durable[0]) == 4 * BS)
    assert {s.kept[0] for s in by_point[point]} == {0, 1, 2, 3, 4}


def test_everything_kept_equals_the_live_device():
    dev = ZonedDevice.memory(GEOMETRY)
    recorder = Recorder(dev)
    workload(Account(dev, recorder))
    last = [s for s in crash_states(recorder) if s.point == len(recorder.commands)]
    whole = max(last, key=lambda s: sum(s.kept)).device()
    for live, crashed in zip(dev.report(), whole.report()):
        assert dev.read(live.start, live.capacity) == whole.read(crashed.start, crashed.capacity)
        assert live.write_pointer == crashed.write_pointer


def test_recording_starts_from_a_used_device():
    before = {1: (b"\x11" * BS * 2, False), 6: (b"\x66" * BS * 12, False), 7: (b"\x77" * BS, True)}
    recorder, account = recorded(before)
    states = list(crash_states(recorder, samples=2))
    for state in states:
        check_state(state, *account.at_point[state.point])
    # The workload never touches zones 6 and 7: every crash state holds them as they were.
    for state in states[::7]:
        dev = state.device()
        assert dev.zone(6).state is ZoneState.FULL and dev.read(96, 12) == b"\x66" * BS * 12
        assert dev.zone(7).state is ZoneState.FULL and dev.read(112, 2) == b"\x77" * BS + bytes(BS)
    assert states[0].device().read(16, 3) == b"\x11" * BS * 2 + bytes(BS)


@pytest.mark.parametrize("point", [0, 5, 12, 20])
def test_crash_device_takes_new_writes(point):
    recorder, _ = recorded()
    state = max((s for s in crash_states(recorder) if s.point == point), key=lambda s: sum(s.kept))
    dev = state.device()
    for z in dev.report():
        room = dev.active_zones < GEOMETRY.max_active or z.state is ZoneState.CLOSED
        if z.state in (ZoneState.EMPTY, ZoneState.CLOSED) and room:
            lba = dev.append(z.index, b"\x99" * BS)
            assert lba == z.write_pointer
            assert dev.read(lba, 1) == b"\x99" * BS
            dev.close(z.index)
