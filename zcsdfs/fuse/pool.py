"""The worker pool: threads that take requests from a transport and serve them.

Workers take turns as leader and followers: only the leader receives. It
serves a quick request itself and goes back to receiving, so a stream of
small requests (one program creating files) costs no thread wake-ups or GIL
hand-offs. Before a request that may take long (a large READ or WRITE,
fsync, see ``server.long_running``) it hands the receiving over to a
follower if another request is already waiting, so that one is served
meanwhile; a request an INTERRUPT may stop (COPY_FILE_RANGE) always hands
over when the transport carries interrupts, so the INTERRUPT can be read
while it runs. (Handing over when nothing waits would only make the next
request wake a sleeping follower.)

Before it sleeps, the leader polls the transport for up to ``poll_us``
microseconds, yielding the CPU to anything else runnable. On a virtual
machine an idle vCPU halts, and waking it costs about 20 us; a program
issuing requests one after another sends its next one sooner than that, and
finds the leader awake. Measured on /dev/fuse with access(2) in a loop, per
call, with the other vCPU busy / idle: every worker reading at once 19-27 /
30-37 us; the leader alone, sleeping at once 14 / 66-76 us; the leader
polling first 15 / 28-32 us.

While requests keep coming the leader also holds a PM QoS request that
keeps idle CPUs from halting (``cpulatency.py``), so the program's vCPU is
awake when the reply wakes the program; it lets go after ``awake_ms``
without a request. Measured per 4 KiB O_DIRECT write/read over /dev/fuse,
server and program free to run on either vCPU: 34-36 / 33 us without the
hold, 18 / 16 us with it.
"""

from __future__ import annotations

import errno
import os
import threading
import time

import attrs

from zcsdfs.fuse.cpulatency import CpuLatency
from zcsdfs.fuse.server import Server, interruptible, long_running
from zcsdfs.fuse.transport import Transport

MAX_THREADS = 64


@attrs.frozen
class PoolOptions:
    """How many workers, and how the leader waits (see the module's docstring)."""

    threads: int = attrs.field(default=4, validator=attrs.validators.and_(
        attrs.validators.ge(1), attrs.validators.le(MAX_THREADS)))
    poll_us: int = attrs.field(default=50, validator=attrs.validators.and_(  # 0: never poll
        attrs.validators.ge(0), attrs.validators.le(1_000_000)))
    awake_ms: int = attrs.field(default=20, validator=attrs.validators.and_(  # 0: never hold CPUs awake
        attrs.validators.ge(0), attrs.validators.le(3_600_000)))


class WorkerPool:
    """``threads`` workers serving ``server`` over ``transport`` until the transport closes.

    ``errors`` collects what the transport raised while a worker received or
    replied (a closed transport is not an error: it returns None); ``stopped``
    is set when the last worker has stopped."""

    def __init__(self, server: Server, transport: Transport, options: PoolOptions = PoolOptions()):
        self.server = server
        self.transport = transport
        self.options = options
        self.errors: list[BaseException] = []
        self.stopped = threading.Event()
        self._alive = options.threads
        self._count = threading.Lock()
        self._reading = threading.Lock()  # held by the leader: the one worker receiving
        self._awake = CpuLatency(options.awake_ms)  # used by the leader only
        self._workers = [threading.Thread(target=self._work, name=f"fuse-{i}", daemon=True)
                         for i in range(options.threads)]
        started = []
        try:
            for t in self._workers:
                t.start()
                started.append(t)
        except RuntimeError as exc:  # the system refused a thread
            self._workers = started
            with self._count:
                self._alive -= options.threads - len(started)
            raise OSError(errno.EAGAIN,
                          f"could not start {options.threads} worker threads ({exc})") from None

    def _work(self) -> None:
        transport, handle, reading, awake = self.transport, self.server.handle, self._reading, self._awake
        receive, ready, reply = transport.receiver(), transport.ready, transport.reply
        poll_for = self.options.poll_us / 1e6
        perf_counter, sched_yield = time.perf_counter, os.sched_yield
        hand_over_always = transport.limits.interrupts
        leading = False
        try:
            while True:
                if not leading:
                    reading.acquire()
                    leading = True
                waiting = False
                if poll_for:
                    until = perf_counter() + poll_for
                    while not (waiting := ready(0)) and perf_counter() < until:
                        sched_yield()
                if awake.held and not waiting and not ready(awake.hold_ms / 1000):
                    awake.release()  # quiet for hold_ms: let idle CPUs halt again
                try:
                    incoming = receive()
                except OSError as exc:
                    self.errors.append(exc)
                    return
                if incoming is None:
                    return  # closed (unmounted); the next leader finds it closed too
                awake.hold()
                request = incoming.request
                if long_running(request) and (hand_over_always and interruptible(request) or ready(0)):
                    reading.release()  # a follower serves the others (and INTERRUPTs) meanwhile
                    leading = False
                try:
                    reply(incoming, handle(request))
                except OSError as exc:
                    self.errors.append(exc)
        finally:
            if leading:
                reading.release()
            with self._count:
                self._alive -= 1
                if not self._alive:
                    self.stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every worker has stopped (the transport closed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._workers:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                return False
        self._awake.release()
        return True
