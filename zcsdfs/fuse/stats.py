"""The FUSE server's counters: requests per opcode with latency percentiles, in flight, handles.

``RequestTally`` is what the request path touches: one counter increment and
one append to a bounded deque per request, no lock (under several workers a
count may rarely lose an increment). The serving thread's CPU time is summed
for a random sample of the requests (``CPU_SAMPLE``): reading that clock is a
system call, which costs more here than a quick request's own work
(1.5-4.5 us measured on this 2-vCPU machine, loaded), so timing every request
would cost more than it saved; a random sample has no period for a
workload's cycle of opcodes to fall in step with. ``server_stats`` turns it into records
when someone asks (the control socket, ``zcsdfs stats``, the inspector).
"""

from __future__ import annotations

import collections

import attrs

from zcsdfs.fuse.protocol import Opcode

RECENT = 1024  # latencies kept per opcode for the percentiles
CPU_SAMPLE = 1 / 8  # the share of requests whose CPU time is measured


class RequestTally:
    """Requests served per opcode, the CPU time the server spent on them (the serving thread's,
    so time waiting for the GIL or the device is not counted) and the latencies of the most
    recent ones, in nanoseconds."""

    def __init__(self):
        self.counts: collections.Counter[int] = collections.Counter()
        self.cpu_ns: collections.Counter[int] = collections.Counter()  # over the sampled requests
        self.cpu_samples: collections.Counter[int] = collections.Counter()
        self.recent: dict[int, collections.deque[int]] = {}

    def record(self, opcode: int, ns: int, cpu_ns: int | None = None) -> None:
        """One request served in ``ns``; ``cpu_ns``: its CPU time, if it was sampled."""
        self.counts[opcode] += 1
        if cpu_ns is not None:
            self.cpu_ns[opcode] += cpu_ns
            self.cpu_samples[opcode] += 1
        recent = self.recent.get(opcode)
        if recent is None:
            recent = self.recent.setdefault(opcode, collections.deque(maxlen=RECENT))
        recent.append(ns)


@attrs.frozen
class OpcodeStats:
    requests: int
    p50_us: float  # over the most recent RECENT requests of this opcode
    p99_us: float
    max_us: float
    cpu_us: float = 0.0  # server CPU time summed over the ``cpu_samples`` requests measured (CPU_SAMPLE)
    cpu_samples: int = 0


@attrs.frozen
class ServerStats:
    transport: str
    requests: int
    in_flight: int
    open_handles: int
    unexpected: int  # requests a bug answered with EIO
    opcodes: dict[str, OpcodeStats]


def server_stats(tally: RequestTally, *, transport: str, in_flight: int, open_handles: int,
                 unexpected: int) -> ServerStats:
    opcodes = {}
    for opcode, recent in list(tally.recent.items()):
        latencies = sorted(list(recent))
        if not latencies:
            continue
        name = Opcode(opcode).name if opcode in Opcode._value2member_map_ else str(opcode)
        at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000  # noqa: E731
        opcodes[name] = OpcodeStats(tally.counts[opcode], at(0.5), at(0.99), latencies[-1] / 1000,
                                    tally.cpu_ns[opcode] / 1000, tally.cpu_samples[opcode])
    return ServerStats(transport, sum(tally.counts.values()), in_flight, open_handles, unexpected,
                       dict(sorted(opcodes.items(), key=lambda item: -item[1].requests)))
