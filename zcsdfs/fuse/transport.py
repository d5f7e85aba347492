"""What the FUSE server is served over: the ``Transport`` seam.

A transport carries FUSE messages between a client (the kernel through
/dev/fuse, or a guest's kernel through a virtio-fs queue) and ``Server``.
A request arrives as a sequence of readable buffers: one for /dev/fuse, a
descriptor chain's readable part for virtio-fs (where a header may be split
across descriptors). ``Server.handle`` takes that sequence and returns the
reply as a list of buffers, which the transport writes out as one message
(``writev`` on /dev/fuse, ``scatter`` into a chain's writable descriptors on
virtio-fs).

The worker pool (``pool.py``) drives any transport: it waits for requests
with ``ready``, takes them with a receiver of its own per worker, and hands
the reply back with ``reply``. The server reads ``limits`` when it answers
INIT, so it never promises more than the transport can carry.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

Buffer = bytes | bytearray | memoryview
Reply = list  # the buffers of one reply message, in order (a list of Buffer)


@attrs.frozen
class Limits:
    """What a transport can carry, read by the server at INIT.

    ``max_pages``: the most 4 KiB pages of data one request or reply may
    carry (None: the protocol's own limit, 256 pages since 7.28).
    ``interrupts``: whether the client sends INTERRUPT (virtio-fs does not).
    ``notifications``: whether the server may send unsolicited messages.
    ``local_callers``: a request's pid is a process of this machine, so its
    supplementary groups can be read from /proc.
    ``init_flags``: INIT flags the transport itself speaks (FUSE over io_uring), accepted
    when the kernel offers them.
    """

    max_pages: int | None = None
    interrupts: bool = True
    notifications: bool = False
    local_callers: bool = False
    init_flags: int = 0


@attrs.define(slots=True)
class Incoming:
    """One request as a transport received it: ``request`` for the server, ``token`` for the
    transport's own bookkeeping (the virtio descriptor chain to answer on; None for /dev/fuse)."""

    request: Sequence[Buffer]
    token: object = None


@runtime_checkable
class Transport(Protocol):
    """What a transport offers the server and the worker pool."""

    limits: Limits

    def receiver(self) -> Callable[[], Incoming | None]:
        """A function for one worker that blocks for the next request; None once the transport
        is closed (unmounted, device reset). Each worker calls only its own."""

    def ready(self, timeout: float) -> bool:
        """Whether a request is waiting, waiting up to ``timeout`` seconds (0: just look)."""

    def reply(self, incoming: Incoming, reply: Reply | None) -> None:
        """Send ``reply`` (None: the request takes no answer, but its buffers are done with)."""

    def close(self) -> None:
        """Let go of the transport's resources; receivers return None from then on."""


class ReplyTooLarge(OSError):
    """A reply does not fit the buffers offered for it; nothing was written."""

    def __init__(self, need: int, room: int):
        super().__init__(errno.EOVERFLOW, f"a reply of {need} bytes does not fit {room} bytes of buffers")
        self.need, self.room = need, room


def scatter(reply: Sequence[Buffer], writable: Sequence[memoryview]) -> int:
    """Write ``reply``'s pieces, in order, across the ``writable`` buffers; returns the length.

    Refuses with ``ReplyTooLarge`` before writing anything when the buffers
    are too small in all (a client that offers too little room gets an error
    reply from its transport, never a torn one)."""
    need = sum(map(len, reply))
    room = sum(map(len, writable))
    if need > room:
        raise ReplyTooLarge(need, room)
    if not need:
        return 0
    # one pass, indexes instead of re-sliced views: a 1 MiB reply into ~200 guest pages costs
    # about half of what slicing the source and the target afresh for each page did
    index, at = 0, 0
    target = _bytes_view(writable[0])
    room = len(target)
    for piece in reply:
        src = _bytes_view(piece)
        n, off = len(src), 0
        while off < n:
            k = room - at
            if k <= 0:
                index += 1
                target = writable[index]
                if type(target) is not memoryview or target.format != "B" or target.ndim != 1:
                    target = _bytes_view(target)
                room, at = len(target), 0
                continue
            if k > n - off:
                k = n - off
            target[at:at + k] = src[off:off + k]
            at += k
            off += k
    return need


def _bytes_view(buffer: Buffer) -> memoryview:
    view = memoryview(buffer)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")
