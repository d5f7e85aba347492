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


class OpcodeTally:
    """One opcode's counts: requests, and CPU time over the ones sampled, in nanoseconds."""

    __slots__ = ("requests", "cpu_ns", "cpu_samples", "recent")

    def __init__(self):
        self.requests = self.cpu_ns = self.cpu_samples = 0
        self.recent: collections.deque[int] = collections.deque(maxlen=RECENT)  # latencies, ns


class RequestTally:
    """Requests served per opcode, the CPU time the server spent on a sample of them (the
    serving thread's, so time waiting for the GIL or the device is not counted) and the
    latencies of the most recent ones, in nanoseconds."""

    def __init__(self):
        self.opcodes: dict[int, OpcodeTally] = {}

    def record(self, opcode: int, ns: int, cpu_ns: int | None = None) -> None:
        """One request served in ``ns``; ``cpu_ns``: its CPU time, if it was sampled."""
        tally = self.opcodes.get(opcode)
        if tally is None:
            tally = self.opcodes.setdefault(opcode, OpcodeTally())
        tally.requests += 1
        tally.recent.append(ns)
        if cpu_ns is not None:
            tally.cpu_ns += cpu_ns
            tally.cpu_samples += 1


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
    total = 0
    for opcode, counted in list(tally.opcodes.items()):
        total += counted.requests
        latencies = sorted(list(counted.recent))
        if not latencies:
            continue
        name = Opcode(opcode).name if opcode in Opcode._value2member_map_ else str(opcode)
        at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000  # noqa: E731
        opcodes[name] = OpcodeStats(counted.requests, at(0.5), at(0.99), latencies[-1] / 1000,
                                    counted.cpu_ns / 1000, counted.cpu_samples)
    return ServerStats(transport, total, in_flight, open_handles, unexpected,
                       dict(sorted(opcodes.items(), key=lambda item: -item[1].requests)))
