"""The FUSE server's counters: requests per opcode with latency percentiles, in flight, handles.

``RequestTally`` is what the request path touches: one counter increment, a
sum of the serving thread's CPU time and one append to a bounded deque per
request, no lock (under several workers a count may rarely lose an
increment). ``server_stats`` turns it into records
when someone asks (the control socket, ``zcsdfs stats``, the inspector).
"""

from __future__ import annotations

import collections

import attrs

from zcsdfs.fuse.protocol import Opcode

RECENT = 1024  # latencies kept per opcode for the percentiles


class RequestTally:
    """Requests served per opcode, the CPU time the server spent on them (the serving thread's,
    so time waiting for the GIL or the device is not counted) and the latencies of the most
    recent ones, in nanoseconds."""

    def __init__(self):
        self.counts: collections.Counter[int] = collections.Counter()
        self.cpu_ns: collections.Counter[int] = collections.Counter()
        self.recent: dict[int, collections.deque[int]] = {}

    def record(self, opcode: int, ns: int, cpu_ns: int = 0) -> None:
        self.counts[opcode] += 1
        self.cpu_ns[opcode] += cpu_ns
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
    cpu_us: float = 0.0  # server CPU time over all requests of this opcode (divide by requests for each)


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
                                    tally.cpu_ns[opcode] / 1000)
    return ServerStats(transport, sum(tally.counts.values()), in_flight, open_handles, unexpected,
                       dict(sorted(opcodes.items(), key=lambda item: -item[1].requests)))
