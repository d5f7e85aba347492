"""Keep idle CPUs awake while a mount is busy: a PM QoS CPU latency request.

A FUSE request is a round trip between two tasks: the program sleeps in its
system call until the server's reply wakes it. When the program's CPU has
nothing else to run it goes idle, and on a virtual machine an idle vCPU
halts; waking a halted vCPU costs the host a full exit and re-entry (about
20 us on this VM, so a 4 KiB write took 34 us instead of 17).

Linux lets a process ask for a bound on how long a CPU may take to leave
idle: write a 32-bit latency in microseconds to ``/dev/cpu_dma_latency`` and
keep the descriptor open (the request ends when it is closed, or when the
process dies). Asking for 0 makes cpuidle choose its polling state, so a
wake-up finds the CPU running. This is the request latency-sensitive
servers and tuned's latency-performance profile make; it costs power (or
the host's CPU time) while held, so the server holds it only while
requests keep coming, and lets go after ``hold_ms`` without one. Only root
may open the file: other servers simply do without.
"""

from __future__ import annotations

import errno
import os
import struct

DEVICE = "/dev/cpu_dma_latency"


class CpuLatency:
    """One PM QoS request for 0 us CPU wake-up latency, taken and dropped as the load comes and goes.

    Not thread-safe: only the thread reading the device (the transport's leader) calls it."""

    def __init__(self, hold_ms: int, device: str = DEVICE):
        self.hold_ms = hold_ms
        self.device = device
        self.fd = -1
        self.available = hold_ms > 0

    @property
    def held(self) -> bool:
        return self.fd >= 0

    def hold(self) -> None:
        """Ask for CPUs that do not halt (once per busy period; cheap when held already)."""
        if self.fd >= 0 or not self.available:
            return
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENODEV, errno.EROFS):
                raise
            self.available = False  # not root, or no PM QoS in this kernel: serve without it
            return
        try:
            os.write(fd, struct.pack("=i", 0))
        except OSError:
            os.close(fd)
            self.available = False
            return
        self.fd = fd

    def release(self) -> None:
        """Let the CPUs halt again."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
