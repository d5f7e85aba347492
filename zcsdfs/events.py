"""A tiny publish/subscribe bus for what happens inside a stack: zone state changes, GC runs,
checkpoints, kernel runs.

It imports nothing of zcsdfs, so every layer, the device at the bottom
included, can hold one. One bus serves a whole stack: the device makes it,
and the layers above publish on their device's bus. Events are ``attrs``
records defined by the layer that publishes them (``zns/stats.py``,
``lfs/stats.py``, ``csd/stats.py``).

Publishing costs nothing when no one listens: a publisher checks
``bus.subscribers`` (an empty tuple is false) before it builds the
event. Subscribers run in the publisher's thread, under whatever lock it
holds, so they must be quick and must not call back into the stack: copy
the event somewhere (a queue) and return.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("zcsdfs.events")


class EventBus:
    """Subscribers are a tuple, replaced on change, so publishing needs no lock."""

    __slots__ = ("subscribers", "_lock")

    def __init__(self):
        self.subscribers: tuple[Callable[[object], None], ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns the unsubscribe function."""
        with self._lock:
            self.subscribers = (*self.subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self.subscribers = tuple(s for s in self.subscribers if s is not callback)
        return unsubscribe

    def publish(self, event: object) -> None:
        """Hand ``event`` to every subscriber; one that raises is logged and the rest still run
        (a broken observer must not break the file system it observes)."""
        for callback in self.subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %r", callback, event)
