"""The device's state as records: a snapshot of every zone and the counters, and the zone
state change event.

``device_stats`` reads what the device already keeps (zone table, counters),
so a snapshot costs one pass over the zones and nothing on the I/O path.
"""

from __future__ import annotations

import attrs

from zcsdfs.zns.zone import ZoneState


@attrs.frozen
class ZoneTransition:
    """Event: zone ``zone`` went from ``old`` to ``new`` (implicit opens and closes included)."""

    zone: int
    old: ZoneState
    new: ZoneState


@attrs.frozen
class ZoneStats:
    index: int
    state: ZoneState
    start: int  # LBA
    write_pointer: int  # LBA; a FULL zone's is start + size, as Linux reports it
    capacity: int  # writable blocks
    blocks_written: int  # by write and by append
    blocks_read: int
    resets: int
    finishes: int


@attrs.frozen
class DeviceStats:
    path: str | None  # None: a memory device
    readonly: bool
    zones: int
    zone_size: int  # blocks
    zone_capacity: int
    block_size: int
    max_open: int  # 0: unlimited
    max_active: int
    open_zones: int
    active_zones: int
    blocks_written: int
    blocks_read: int
    resets: int
    finishes: int
    zone_states: dict  # state name -> zones in it
    zone_list: tuple[ZoneStats, ...]


def device_stats(device) -> DeviceStats:
    """A snapshot of ``device`` (a ``ZonedDevice``)."""
    g = device.geometry
    counters = device.counters.zones
    zones = tuple(
        ZoneStats(z.index, z.state, z.start, z.write_pointer, z.capacity,
                  counters[z.index].blocks_written + counters[z.index].blocks_appended,
                  counters[z.index].blocks_read, counters[z.index].resets, counters[z.index].finishes)
        for z in device.report())
    states = {s.name: 0 for s in ZoneState}
    for z in zones:
        states[z.state.name] += 1
    return DeviceStats(
        device.path, device.readonly, g.zones, g.zone_size, g.zone_capacity, g.block_size, g.max_open,
        g.max_active, device.open_zones, device.active_zones, sum(z.blocks_written for z in zones),
        sum(z.blocks_read for z in zones), sum(z.resets for z in zones), sum(z.finishes for z in zones),
        {name: n for name, n in states.items() if n}, zones)
