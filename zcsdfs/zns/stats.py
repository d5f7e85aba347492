"""The device's state as records: a snapshot of every zone and the counters, and the zone
state change event.

``device_stats`` reads what the device already keeps (zone table, counters),
so a snapshot costs nothing on the I/O path. Given the previous snapshot it
is incremental: an unchanged device (same ``generation``) gives the same
records back, and a changed one copies only the zones that changed, so a
watcher polling a device of thousands of zones costs little.
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
    zone_list: tuple[ZoneStats, ...]  # an unchanged zone's record is the previous snapshot's
    generation: int = 0  # the device's, when taken


def device_stats(device, previous: DeviceStats | None = None) -> DeviceStats:
    """A snapshot of ``device`` (a ``ZonedDevice``); ``previous``: an earlier snapshot of it, whose
    records are reused where nothing changed (``previous`` itself if nothing did)."""
    generation = device.generation  # read first: a change while copying shows in the next snapshot
    if previous is not None and previous.generation == generation:
        return previous
    g = device.geometry
    counters = device.counters.zones
    old = previous.zone_list if previous is not None and len(previous.zone_list) == g.zones else None
    zones = []
    for z in device.report():
        c = counters[z.index]
        wp = z.write_pointer
        written = c.blocks_written + c.blocks_appended
        if old is not None:
            o = old[z.index]
            if (o.state is z.state and o.write_pointer == wp and o.blocks_written == written
                    and o.blocks_read == c.blocks_read and o.resets == c.resets and o.finishes == c.finishes):
                zones.append(o)
                continue
        zones.append(ZoneStats(z.index, z.state, z.start, wp, g.zone_capacity, written, c.blocks_read,
                               c.resets, c.finishes))
    zones = tuple(zones)
    states = {s.name: 0 for s in ZoneState}
    for z in zones:
        states[z.state.name] += 1
    return DeviceStats(
        device.path, device.readonly, g.zones, g.zone_size, g.zone_capacity, g.block_size, g.max_open,
        g.max_active, device.open_zones, device.active_zones, sum(z.blocks_written for z in zones),
        sum(z.blocks_read for z in zones), sum(z.resets for z in zones), sum(z.finishes for z in zones),
        {name: n for name, n in states.items() if n}, zones, generation)
