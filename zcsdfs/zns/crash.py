"""Recording device commands and deriving the states a crash could leave.

The rules, which the file system's crash tests rely on: everything made
durable (by ``flush``, a FUA write, or a reset or finish) survives; of each
zone's writes since its last durable point, any prefix of blocks survives,
so the last write may be torn at block granularity and zones lose their
tails independently of one another.
"""

from __future__ import annotations

import itertools
import random
from typing import Iterator

import attrs

from zcsdfs.zns.backend import MemoryBackend
from zcsdfs.zns.device import ZonedDevice
from zcsdfs.zns.zone import ZoneState


@attrs.frozen
class Command:
    name: str  # write, open, close, finish, reset, flush
    zone: int | None = None
    offset: int = 0  # first block written, relative to the zone start
    data: bytes = b""
    fua: bool = False


class Recorder:
    """Attach to a device to record every command it completes from now on."""

    def __init__(self, device: ZonedDevice):
        device.flush()
        self.geometry = device.geometry
        self.commands: list[Command] = []
        # Per zone: whether it is FULL, and the data it holds (all durable now).
        self._baseline = [(z.state is ZoneState.FULL, device.read(z.start, n) if n else b"")
                          for z, n in ((z, device._written(z.index)) for z in device.report())]
        device.recorder = self
        self._device = device

    def detach(self) -> None:
        self._device.recorder = None

    def write(self, zone: int, offset: int, data: bytes, fua: bool) -> None:
        self.commands.append(Command("write", zone, offset, data, fua))

    def command(self, name: str, zone: int | None) -> None:
        self.commands.append(Command(name, zone))


@attrs.frozen
class CrashState:
    """Crash after ``point`` commands completed, keeping ``kept[z]`` unflushed blocks of zone z."""

    point: int
    kept: tuple[int, ...]
    _zones: tuple = attrs.field(repr=False, eq=False)  # (state, durable data, pending blocks) per zone
    _geometry: object = attrs.field(repr=False, eq=False)

    def device(self) -> ZonedDevice:
        """A fresh in-memory device holding exactly what this crash left."""
        g = self._geometry
        contents = [durable + b"".join(pending[:keep])
                    for (_, durable, pending), keep in zip(self._zones, self.kept)]
        table = []
        for (finished, _, _), data in zip(self._zones, contents):
            written = len(data) // g.block_size
            state = ZoneState.FULL if finished or written == g.zone_capacity else (
                ZoneState.CLOSED if written else ZoneState.EMPTY)
            table.append((state, written))
        backend = MemoryBackend(g, table)
        for index, data in enumerate(contents):
            if data:
                backend.zone_buffer(index)[:len(data)] = data
        return ZonedDevice(g, backend)


def crash_states(recorder: Recorder, *, samples: int = 4, exhaustive_limit: int = 64,
                 seed: int = 0) -> Iterator[CrashState]:
    """Crash states after each prefix of the recording.

    At each crash point: every combination of per-zone prefixes when there
    are at most ``exhaustive_limit`` of them, otherwise nothing kept,
    everything kept, and ``samples`` random combinations.
    """
    rng = random.Random(seed)
    g = recorder.geometry
    bs = g.block_size
    # Per zone: finished flag, durable bytes, pending (unflushed) blocks.
    finished = [full for full, _ in recorder._baseline]
    durable = [data for _, data in recorder._baseline]
    pending: list[list[bytes]] = [[] for _ in range(g.zones)]

    def states(point: int) -> Iterator[CrashState]:
        zones = tuple((finished[i], durable[i], tuple(pending[i])) for i in range(g.zones))
        choices = [range(len(p) + 1) for p in pending]
        total = 1
        for c in choices:
            total *= len(c)
        if total <= exhaustive_limit:
            combos = itertools.product(*choices)
        else:
            picks = {tuple(0 for _ in pending), tuple(len(p) for p in pending)}
            while len(picks) < min(total, samples + 2):
                picks.add(tuple(rng.randrange(len(c)) for c in choices))
            combos = sorted(picks)
        for kept in combos:
            yield CrashState(point, tuple(kept), zones, g)

    yield from states(0)
    for point, cmd in enumerate(recorder.commands, start=1):
        z = cmd.zone
        if cmd.name == "write":
            pending[z].extend(cmd.data[i:i + bs] for i in range(0, len(cmd.data), bs))
            if cmd.fua:
                durable[z] += b"".join(pending[z])
                pending[z].clear()
        elif cmd.name == "flush":
            for i in range(g.zones):
                durable[i] += b"".join(pending[i])
                pending[i].clear()
        elif cmd.name == "reset":
            durable[z], pending[z], finished[z] = b"", [], False
        elif cmd.name == "finish":
            durable[z] += b"".join(pending[z])
            pending[z].clear()
            finished[z] = True
        yield from states(point)
