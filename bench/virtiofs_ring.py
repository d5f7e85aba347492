"""virtio-fs in-process: the server's CPU per request without QEMU, the guest or the scheduler.

``bench/virtiofs.py`` measures inside a TCG guest, where a loaded host's
scheduling swamps the server's own cost. This one measures, on one thread:

- ``serve_request`` per opcode (parse, handler, scatter) over chains laid
  out as the guest's driver lays them (header and arguments in two
  descriptors, data a page per descriptor), on an in-memory volume;
- the ring path around it: pop (walk and check the chain), push, the
  EVENT_IDX decision and the call eventfd's write, for a GETATTR-sized chain
  and for a 1 MiB read's 258 descriptors (walk and scatter into 256 pages,
  none contiguous);
- the floor for one notification round trip: two processes ping-ponging
  over eventfds, the CPU of the side that plays the server.

Figures are CPU microseconds (``time.thread_time_ns``), min / median / max
over ``--rounds`` rounds. The DPFS paper's 38.6/43.3 us QD1 round trip from
a DPU is the anchor.

    python bench/virtiofs_ring.py [--rounds R] [--n N]
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import select
import statistics
import struct
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zcsdfs.fuse import protocol as p  # noqa: E402
from zcsdfs.fuse.guestmem import GuestMemory, map_region  # noqa: E402
from zcsdfs.fuse.protocol import Opcode  # noqa: E402
from zcsdfs.fuse.transport import scatter  # noqa: E402
from zcsdfs.fuse.virtiofs import VirtioFs, serve_request  # noqa: E402
from zcsdfs.fuse.virtqueue import (DESC, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, Virtqueue,  # noqa: E402
                                   signal_eventfd)
from zcsdfs.volume import Volume  # noqa: E402

DPFS_QD1_US = (38.6, 43.3)
MEM = 16 << 20
NUM = 1024
DESC_AT, AVAIL_AT, USED_AT, TABLE_AT = 0x1000, 0x10000, 0x20000, 0x40000
REQ_AT, OUT_AT, DATA_AT = 0x100000, 0x200000, 0x400000  # request, reply header+body, data pages


class Guest:
    """Guest memory (one memfd region), one queue on it, and a writer for laying out chains."""

    def __init__(self):
        fd = os.memfd_create("guest", os.MFD_CLOEXEC)
        os.ftruncate(fd, MEM)
        self.mem = GuestMemory([map_region(fd, 0, MEM, 0, 0)])
        self.map = mmap.mmap(fd, MEM)
        os.close(fd)
        self.queue = Virtqueue(self.mem, NUM, DESC_AT, AVAIL_AT, USED_AT, event_idx=True)
        self.avail = 0

    def chain(self, bufs: list[tuple[int, int, int]]) -> None:
        """Lay out (addr, len, flags) as an indirect table at descriptor 0, as the driver does."""
        for i, (addr, size, flags) in enumerate(bufs):
            last = i == len(bufs) - 1
            self.map[TABLE_AT + 16 * i:TABLE_AT + 16 * i + 16] = DESC.pack(
                addr, size, flags | (0 if last else DESC_F_NEXT), i + 1)
        self.map[DESC_AT:DESC_AT + 16] = DESC.pack(TABLE_AT, 16 * len(bufs), DESC_F_INDIRECT, 0)

    def request(self, opcode: int, args: bytes, nodeid: int = 1, out: int = 256, data_in: bytes = b"",
                data_out: int = 0) -> None:
        """A FUSE request as the guest's virtio-fs driver sends it (pages of data 8 KiB apart)."""
        header = p.IN_HEADER.pack(p.IN_HEADER.size + len(args) + len(data_in), opcode, 7, nodeid, 0, 0, 42, 0, 0)
        self.map[REQ_AT:REQ_AT + 40] = header
        self.map[REQ_AT + 64:REQ_AT + 64 + len(args)] = args
        bufs = [(REQ_AT, 40, 0), (REQ_AT + 64, len(args), 0)] if args else [(REQ_AT, 40, 0)]
        for i in range(0, len(data_in), 4096):
            page = data_in[i:i + 4096]
            self.map[DATA_AT + 2 * i:DATA_AT + 2 * i + len(page)] = page
            bufs.append((DATA_AT + 2 * i, len(page), 0))
        bufs.append((OUT_AT, 16, DESC_F_WRITE))
        if out:
            bufs.append((OUT_AT + 64, out, DESC_F_WRITE))
        for i in range(0, data_out, 4096):
            bufs.append((DATA_AT + 2 * i, min(4096, data_out - i), DESC_F_WRITE))
        self.chain(bufs)

    def post(self) -> None:
        """Make descriptor 0 available once more, the driver wanting an interrupt for it."""
        self.map[AVAIL_AT + 4 + 2 * (self.avail % NUM):AVAIL_AT + 6 + 2 * (self.avail % NUM)] = b"\0\0"
        self.avail = (self.avail + 1) & 0xFFFF
        struct.pack_into("<H", self.map, AVAIL_AT + 4 + 2 * NUM, self.queue.used_idx)  # used_event
        struct.pack_into("<H", self.map, AVAIL_AT + 2, self.avail)

    def reply(self) -> tuple[int, int]:
        _, error, _ = p.OUT_HEADER.unpack_from(self.map, OUT_AT)
        return error, OUT_AT + 64


def cpu_us(fn, n: int) -> float:
    started = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - started) / n / 1000


def opcodes(guest: Guest, n: int) -> dict[str, float]:
    """CPU us per request in serve_request, per opcode."""
    vol = Volume.memory()
    server = VirtioFs(vol.vfs).server

    def serve(opcode, args, **kw):
        guest.request(opcode, args, **kw)
        chain = guest.queue._walk(0)
        serve_request(server, chain, NUM - 4)
        error, body = guest.reply()
        if error:
            raise OSError(-error, f"{Opcode(opcode).name} failed")
        return body

    flags = p.InitFlag.MAX_PAGES | p.InitFlag.INIT_EXT | p.InitFlag.BIG_WRITES
    serve(Opcode.INIT, p.INIT_IN.pack(7, 38, 1 << 20, int(flags), 0))
    body = serve(Opcode.CREATE, p.CREATE_IN.pack(os.O_RDWR, 0o100644, 0, 0) + b"f\0", out=p.ENTRY_OUT_SIZE + 16)
    nodeid = struct.unpack_from("<Q", guest.map, body)[0]
    fh = struct.unpack_from("<Q", guest.map, body + p.ENTRY_OUT_SIZE)[0]
    mib = random.Random(1).randbytes(1 << 20)
    cases = {
        "GETATTR": (Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), dict(nodeid=nodeid), n),
        "LOOKUP": (Opcode.LOOKUP, b"f\0", {}, n),
        "WRITE 4 KiB": (Opcode.WRITE, p.WRITE_IN.pack(fh, 0, 4096, 0, 0, 0, 0),
                        dict(nodeid=nodeid, data_in=mib[:4096], out=8), n),
        "READ 4 KiB": (Opcode.READ, p.READ_IN.pack(fh, 0, 4096, 0, 0, 0, 0),
                       dict(nodeid=nodeid, out=0, data_out=4096), n),
        "WRITE 1 MiB": (Opcode.WRITE, p.WRITE_IN.pack(fh, 0, 1 << 20, 0, 0, 0, 0),
                        dict(nodeid=nodeid, data_in=mib, out=8), max(1, n // 20)),
        "READ 1 MiB": (Opcode.READ, p.READ_IN.pack(fh, 0, 1 << 20, 0, 0, 0, 0),
                       dict(nodeid=nodeid, out=0, data_out=1 << 20), max(1, n // 20)),
    }
    figures = {}
    for name, (opcode, args, kw, count) in cases.items():
        serve(opcode, args, **kw)  # laid out once; served again and again
        chain = guest.queue._walk(0)
        figures[name] = cpu_us(lambda: serve_request(server, chain, NUM - 4), count)
        del chain
    vol.unmount()
    return figures


def ring(guest: Guest, n: int) -> dict[str, float]:
    """CPU us of the ring path around the handler, and of a 1 MiB read's walk and scatter."""
    call = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    queue = guest.queue
    figures = {}
    guest.request(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))

    def one():
        guest.post()
        chain = queue.pop()
        head = chain.head
        del chain
        queue.push(head, 120)
        if queue.should_interrupt():
            signal_eventfd(call)
        queue.want_kicks(True)
        queue.pending()
    figures["pop, push, interrupt (GETATTR chain)"] = cpu_us(one, n)
    os.close(call)
    guest.request(Opcode.READ, p.READ_IN.pack(1, 0, 1 << 20, 0, 0, 0, 0), out=0, data_out=1 << 20)
    figures["walk of a 1 MiB read's 258 descriptors"] = cpu_us(lambda: queue._walk(0), max(1, n // 20))
    chain = queue._walk(0)
    reply = [p.out_header(7, 0, 1 << 20), bytes(1 << 20)]
    figures["scatter of its 1 MiB reply"] = cpu_us(lambda: scatter(reply, chain.writable), max(1, n // 20))
    del chain
    return figures


def ping_pong(n: int) -> float:
    """CPU us a round trip on the server's side of two processes woken by eventfds."""
    to_server, to_client = os.eventfd(0), os.eventfd(0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        poller = select.poll()
        poller.register(to_server, select.POLLIN)
        started = time.thread_time_ns()
        for _ in range(n):
            poller.poll()
            os.eventfd_read(to_server)
            os.eventfd_write(to_client, 1)
        os.write(w, struct.pack("<d", (time.thread_time_ns() - started) / n / 1000))
        os._exit(0)
    poller = select.poll()
    poller.register(to_client, select.POLLIN)
    for _ in range(n):
        os.eventfd_write(to_server, 1)
        poller.poll()
        os.eventfd_read(to_client)
    os.waitpid(pid, 0)
    (us,) = struct.unpack("<d", os.read(r, 8))
    for fd in (to_server, to_client, r, w):
        os.close(fd)
    return us


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000, help="requests per figure (1 MiB ones: n / 20)")
    args = ap.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        guest = Guest()
        for name, us in {**opcodes(guest, args.n), **ring(guest, args.n)}.items():
            rows.setdefault(name, []).append(us)
        rows.setdefault("eventfd round trip, server side (floor)", []).append(ping_pong(args.n))
        guest.queue.release()
        guest.map.close()
        guest.mem.close()
    table = Table(title=f"virtio-fs in-process: CPU us, min / median / max of {args.rounds} rounds "
                        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    table.add_column("")
    table.add_column("CPU us", justify="right")
    for name, values in rows.items():
        values.sort()
        table.add_row(name, f"{values[0]:.1f} / {statistics.median(values):.1f} / {values[-1]:.1f}")
    Console().print(table)
    Console().print(f"DPFS QD1 round trip from a DPU: {DPFS_QD1_US[0]}/{DPFS_QD1_US[1]} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
