"""The FUSE server's counters: requests per opcode with latency percentiles, in flight, handles.

``RequestTally`` is what the request path touches: one counter increment and
one append to a bounded deque per request, no lock (under several workers a
count may rarely lose an increment). ``server_stats`` turns it into records
when someone asks (the control socket, ``zcsdfs stats``, the inspector).
"""

from __future__ import annotations

import collections

import attrs

from zcsdfs.fuse.protocol import Opcode

RECENT = 1024  # latencies kept per opcode for the percentiles


class RequestTally:
    """Requests served per opcode and the latencies of the most recent ones, in nanoseconds."""

    def __init__(self):
        self.counts: collections.Counter[int] = collections.Counter()
        self.recent: dict[int, collections.deque[int]] = {}

    def record(self, opcode: int, ns: int) -> None:
        self.counts[opcode] += 1
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
        opcodes[name] = OpcodeStats(tally.counts[opcode], at(0.5), at(0.99), latencies[-1] / 1000)
    return ServerStats(transport, sum(tally.counts.values()), in_flight, open_handles, unexpected,
                       dict(sorted(opcodes.items(), key=lambda item: -item[1].requests)))
