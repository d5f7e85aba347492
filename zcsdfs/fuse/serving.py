"""Serving a vfs over a transport: a ``Server`` and its worker pool, started together.

The library's way in, without the CLI or /dev/fuse: any ``Transport``
(/dev/fuse's ``DevFuse``, a vhost-user virtio-fs queue) is served by
``start(vfs, transport)``, which returns at once, or ``serve``, which
returns when the transport closes.
"""

from __future__ import annotations

import threading

import attrs

from zcsdfs.fuse.pool import PoolOptions, WorkerPool
from zcsdfs.fuse.server import Options, Server
from zcsdfs.fuse.transport import Transport


@attrs.define
class Serving:
    """A running server: ``server`` answers, ``pool``'s workers carry requests to it."""

    server: Server
    pool: WorkerPool

    def ready(self, timeout: float | None = None) -> bool:
        """Wait until INIT has been answered; False when the workers stopped first, or on timeout."""
        return _either(self.server.initialized, self.pool.stopped, timeout) is self.server.initialized

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every worker has stopped (the transport closed); False on timeout."""
        return self.pool.wait(timeout)


def _either(a: threading.Event, b: threading.Event, timeout: float | None):
    """The first of two events to be set (``a`` if both are), or None on timeout."""
    step = 0.05
    waited = 0.0
    while True:
        if a.wait(step if timeout is None else min(step, max(0.0, timeout - waited))):
            return a
        if b.is_set():
            return a if a.is_set() else b
        waited += step
        if timeout is not None and waited >= timeout:
            return None


def start(vfs, transport: Transport, options: Options = Options(),
          pool: PoolOptions = PoolOptions()) -> Serving:
    """Serve ``vfs`` over ``transport`` from ``pool.threads`` workers; returns once they run."""
    server = Server(vfs, options, transport.limits)
    return Serving(server, WorkerPool(server, transport, pool))


def serve(vfs, transport: Transport, options: Options = Options(),
          pool: PoolOptions = PoolOptions()) -> Server:
    """Serve ``vfs`` over ``transport`` until the transport closes; returns the server (its
    counters, its negotiated flags)."""
    serving = start(vfs, transport, options, pool)
    serving.wait()
    return serving.server
