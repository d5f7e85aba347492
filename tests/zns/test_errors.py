"""Every NVMe status the device can answer with, provoked once each.

Each error must be its own ZonedError (OSError) subclass carrying the NVMe
status code, the errno Linux would report, and a message naming the zone
and/or LBA at fault.
"""

from __future__ import annotations

import errno

import pytest

from zcsdfs.zns import (
    Geometry,
    InvalidField,
    InvalidZoneStateTransition,
    LbaOutOfRange,
    MediaError,
    TooManyActiveZones,
    TooManyOpenZones,
    ZonedDevice,
    ZonedError,
    ZoneBoundaryError,
    ZoneFull,
    ZoneInvalidWrite,
    ZoneOffline,
    ZoneReadOnly,
    ZoneState,
)

BS = 4096
GEOMETRY = Geometry(zones=8, zone_size=16, zone_capacity=12, block_size=BS, max_open=2, max_active=3)


def blocks(n: int, fill: int = 0xAB) -> bytes:
    return bytes([fill]) * (n * BS)


@pytest.fixture
def dev():
    return ZonedDevice.memory(GEOMETRY)


def write_not_at_wp(d):
    d.append(1, blocks(2))
    d.write(16 + 5, blocks(1))


def write_to_full_zone(d):
    d.append(2, blocks(12))
    d.write(32 + 12, blocks(1))


def append_to_finished_zone(d):
    d.append(2, blocks(3))
    d.finish(2)
    d.append(2, blocks(1))


def write_across_capacity(d):
    d.append(3, blocks(10))
    d.write(48 + 10, blocks(3))


def append_across_capacity(d):
    d.append(3, blocks(13))


def write_to_read_only_zone(d):
    d.append(4, blocks(1))
    d.faults.make_read_only(4)
    d.append(4, blocks(1))


def reset_read_only_zone(d):
    d.faults.make_read_only(4)
    d.reset(4)


def write_to_offline_zone(d):
    d.faults.make_offline(5)
    d.write(80, blocks(1))


def read_offline_zone(d):
    d.faults.make_offline(5)
    d.read(80, 1)


def open_offline_zone(d):
    d.faults.make_offline(5)
    d.open_zone(5)


def too_many_active(d):
    for zone in range(3):
        d.append(zone, blocks(1))
        d.close(zone)
    d.append(6, blocks(1))


def explicit_open_over_the_limit(d):
    d.open_zone(0)
    d.open_zone(1)
    d.open_zone(6)


def implicit_open_over_explicit_limit(d):
    d.open_zone(0)
    d.open_zone(1)
    d.append(6, blocks(1))


def close_empty_zone(d):
    d.close(7)


def open_full_zone(d):
    d.finish(7)
    d.open_zone(7)


def read_past_device_end(d):
    d.read(8 * 16 - 1, 2)


def write_past_device_end(d):
    d.write(8 * 16, blocks(1))


def read_past_capacity(d):
    d.read(16 * 6 + 10, 4)


def write_partial_block(d):
    d.append(6, bytes(BS + 1))


def write_nothing(d):
    d.write(16 * 6, b"")


def no_such_zone(d):
    d.reset(8)


def injected_read_error(d):
    d.append(0, blocks(4))
    d.faults.fail_reads(2)
    d.read(0, 4)


def injected_write_fault(d):
    d.faults.fail_writes(7)
    d.write(16 * 7, blocks(1))


CASES = [
    # provoke, class, status, errno, words the message must contain
    (write_not_at_wp, ZoneInvalidWrite, 0xBC, errno.EIO, ["zone 1", "LBA 21", "write pointer"]),
    (write_to_full_zone, ZoneFull, 0xB9, errno.EIO, ["zone 2", "LBA 44", "full"]),
    (append_to_finished_zone, ZoneFull, 0xB9, errno.EIO, ["zone 2", "full"]),
    (write_across_capacity, ZoneBoundaryError, 0xB8, errno.EIO, ["zone 3", "LBA 58", "capacity"]),
    (append_across_capacity, ZoneBoundaryError, 0xB8, errno.EIO, ["zone 3", "LBA 48", "capacity"]),
    (write_to_read_only_zone, ZoneReadOnly, 0xBA, errno.EROFS, ["zone 4", "read-only"]),
    (reset_read_only_zone, ZoneReadOnly, 0xBA, errno.EROFS, ["zone 4", "read-only"]),
    (write_to_offline_zone, ZoneOffline, 0xBB, errno.EIO, ["zone 5", "offline"]),
    (read_offline_zone, ZoneOffline, 0xBB, errno.EIO, ["zone 5", "LBA 80", "offline"]),
    (open_offline_zone, ZoneOffline, 0xBB, errno.EIO, ["zone 5", "offline"]),
    (too_many_active, TooManyActiveZones, 0xBD, errno.EOVERFLOW, ["zone 6", "3 active"]),
    (explicit_open_over_the_limit, TooManyOpenZones, 0xBE, errno.ETOOMANYREFS, ["zone 6", "2 open"]),
    (implicit_open_over_explicit_limit, TooManyOpenZones, 0xBE, errno.ETOOMANYREFS, ["zone 6"]),
    (close_empty_zone, InvalidZoneStateTransition, 0xBF, errno.EIO, ["zone 7", "EMPTY"]),
    (open_full_zone, InvalidZoneStateTransition, 0xBF, errno.EIO, ["zone 7", "full"]),
    (read_past_device_end, LbaOutOfRange, 0x80, errno.EIO, ["LBA 127", "end of the device"]),
    (write_past_device_end, LbaOutOfRange, 0x80, errno.EIO, ["LBA 128", "end of the device"]),
    (read_past_capacity, ZoneBoundaryError, 0xB8, errno.EIO, ["zone 6", "LBA 108", "capacity"]),
    (write_partial_block, InvalidField, 0x02, errno.EINVAL, ["zone 6", "4097", "multiple of 4096"]),
    (write_nothing, InvalidField, 0x02, errno.EINVAL, ["zone 6", "LBA 96"]),
    (no_such_zone, InvalidField, 0x02, errno.EINVAL, ["no zone 8"]),
    (injected_read_error, MediaError, 0x281, errno.EIO, ["LBA 2", "read"]),
    (injected_write_fault, MediaError, 0x281, errno.EIO, ["zone 7", "LBA 112", "write"]),
]


@pytest.mark.parametrize("provoke, cls, status, err, words", CASES, ids=[c[0].__name__ for c in CASES])
def test_status(dev, provoke, cls, status, err, words):
    with pytest.raises(ZonedError) as caught:
        provoke(dev)
    exc = caught.value
    assert type(exc) is cls
    assert isinstance(exc, OSError)
    assert exc.status == status
    assert exc.errno == err
    message = str(exc)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"
    assert "\n" not in message


def test_statuses_are_distinct():
    """Each NVMe status has its own class and code."""
    classes = [InvalidField, LbaOutOfRange, ZoneBoundaryError, ZoneFull, ZoneReadOnly, ZoneOffline,
               ZoneInvalidWrite, TooManyActiveZones, TooManyOpenZones, InvalidZoneStateTransition, MediaError]
    assert len({c.status for c in classes}) == len(classes)
    assert all(issubclass(c, ZonedError) and issubclass(c, OSError) for c in classes)


@pytest.mark.parametrize("provoke", [c[0] for c in CASES], ids=[c[0].__name__ for c in CASES])
def test_failed_command_changes_nothing(dev, provoke):
    """The failing step leaves every zone, count and counter as it was just before it."""
    steps = _Recording()
    provoke(steps)  # a dry run, to learn the calls
    *setup, last = steps.calls
    for name, args in setup:
        _call(dev, name, args)
    report = dev.report()
    counters = [(c.blocks_written, c.blocks_appended, c.blocks_read, c.resets, c.finishes, +c.transitions)
                for c in dev.counters.zones]
    opened, active = dev.open_zones, dev.active_zones
    with pytest.raises(ZonedError):
        _call(dev, *last)
    assert dev.report() == report
    assert (dev.open_zones, dev.active_zones) == (opened, active)
    assert [(c.blocks_written, c.blocks_appended, c.blocks_read, c.resets, c.finishes, +c.transitions)
            for c in dev.counters.zones] == counters


class _Recording:
    """Stands in for the device and records calls, including ``faults.*``."""

    def __init__(self, prefix=""):
        self.calls = []
        self._prefix = prefix
        self._root = self

    def __getattr__(self, name):
        if name == "faults":
            child = _Recording("faults.")
            child._root = self
            return child

        def record(*args):
            self._root.calls.append((self._prefix + name, args))
            return 0
        return record


def _call(device, name, args):
    target = device
    for part in name.split("."):
        target = getattr(target, part)
    return target(*args)


def test_bad_geometry_is_invalid_field():
    with pytest.raises(InvalidField, match="capacity"):
        Geometry(zones=2, zone_size=8, zone_capacity=9)
    with pytest.raises(InvalidField, match="block size"):
        Geometry(zones=2, zone_size=8, zone_capacity=8, block_size=1000)
    with pytest.raises(InvalidField, match="max open"):
        Geometry(zones=2, zone_size=8, zone_capacity=8, max_open=3, max_active=2)
    with pytest.raises(InvalidField, match="zones must be positive"):
        Geometry(zones=0, zone_size=8, zone_capacity=8)
    with pytest.raises(InvalidField, match="unknown geometry preset 'nope'"):
        Geometry.preset("nope")


def test_zone_comes_back_after_failed_implicit_open(dev):
    """A write refused for crossing the capacity does not open (or close) any zone."""
    dev.append(0, blocks(1))
    dev.append(1, blocks(1))  # open limit (2) reached, both implicitly open
    with pytest.raises(ZoneBoundaryError):
        dev.append(2, blocks(13))
    assert [z.state for z in dev.report(0, 3)] == [ZoneState.IMPLICIT_OPEN] * 2 + [ZoneState.EMPTY]
