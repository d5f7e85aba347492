"""The transport seam: requests in pieces, replies scattered, the pool over any transport."""

from __future__ import annotations

import errno
import inspect
import itertools
import os
import queue
import stat

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import zcsdfs.fuse
from zcsdfs.fuse import protocol as p
from zcsdfs.fuse.devfuse import DevFuse
from zcsdfs.fuse.pool import PoolOptions
from zcsdfs.fuse.protocol import Opcode
from zcsdfs.fuse.server import Options, Server
from zcsdfs.fuse.transport import Incoming, Limits, ReplyTooLarge, Transport, scatter
from zcsdfs.volume import Volume
from tests.fuse.test_protocol import create, init_body, ok, request


@pytest.fixture
def volume():
    v = Volume.memory()
    yield v
    v.unmount()


def served(volume, limits=Limits()) -> Server:
    s = Server(volume.vfs, Options(), limits)
    s.strict = True
    ok(s, Opcode.INIT, init_body())
    return s


_names = itertools.count()


def pieces_at(data: bytes, cuts) -> list[memoryview]:
    """``data`` split at the offsets ``cuts`` (empty pieces kept: a chain may hold them)."""
    view, out, last = memoryview(data), [], 0
    for cut in sorted(cuts):
        out.append(view[last:cut])
        last = cut
    out.append(view[last:])
    return out


def answer(server, pieces) -> bytes:
    out = server.handle(pieces)
    return b"".join(bytes(b) for b in out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, 200), max_size=6), data=st.binary(min_size=1, max_size=100))
def test_a_request_in_pieces_is_served_as_the_whole(volume, cuts, data):
    """A header split across buffers, a body in several: the same reply as one buffer."""
    s = served(volume)
    name = f"f{next(_names)}"  # examples share the volume
    nodeid, fh, _ = create(s, name)
    write = request(Opcode.WRITE, p.WRITE_IN.pack(fh, 0, len(data), 0, 0, 0, 0) + data, nodeid=nodeid,
                    unique=9)
    whole = answer(s, [write])
    cuts = [c % (len(write) + 1) for c in cuts]
    assert answer(s, pieces_at(write, cuts)) == whole
    read = request(Opcode.READ, p.READ_IN.pack(fh, 0, 4096, 0, 0, 0, 0), nodeid=nodeid, unique=10)
    reply = answer(s, pieces_at(read, [c % (len(read) + 1) for c in cuts]))
    assert reply[p.OUT_HEADER.size:] == data
    lookup = request(Opcode.LOOKUP, name.encode() + b"\0", unique=11)
    assert answer(s, pieces_at(lookup, [3, 39, 40, 41])) == answer(s, [lookup])


def test_pieces_that_disagree_with_the_header_are_refused(volume):
    s = served(volume)
    statfs = request(Opcode.STATFS, unique=5)
    out = answer(s, [statfs[:20], statfs[20:], b"extra"])
    assert p.OUT_HEADER.unpack_from(out) == (16, -5, 5)  # EIO: the length field says otherwise
    assert s.handle([statfs[:20], b""]) is None  # shorter than a header: nothing to answer


def test_scatter_fills_buffers_in_order():
    reply = [b"0123456789abcdef", b"", memoryview(b"XYZ"), bytearray(b"tail")]
    targets = [bytearray(5), bytearray(0), bytearray(7), bytearray(20)]
    n = scatter(reply, [memoryview(t) for t in targets])
    assert n == 23
    assert b"".join(targets)[:n] == b"0123456789abcdefXYZtail"
    assert targets[0] == b"01234" and targets[2] == b"56789ab"


def test_scatter_refuses_a_reply_that_does_not_fit_and_writes_nothing():
    targets = [bytearray(4), bytearray(4)]
    with pytest.raises(ReplyTooLarge) as refused:
        scatter([b"123456789"], [memoryview(t) for t in targets])
    assert (refused.value.need, refused.value.room) == (9, 8)
    assert targets == [bytearray(4), bytearray(4)]


def test_devfuse_satisfies_the_transport_protocol():
    r, w = os.pipe()
    try:
        transport = DevFuse(r, 8192)
        assert isinstance(transport, Transport)
        for name in ("receiver", "ready", "reply", "close"):
            ours = inspect.signature(getattr(Transport, name)).parameters
            theirs = inspect.signature(getattr(DevFuse, name)).parameters
            assert list(ours) == list(theirs), name
        assert isinstance(transport.limits, Limits) and transport.limits.local_callers
        assert not transport.ready(0)
        os.write(w, b"x")
        assert transport.ready(0)
    finally:
        os.close(r)
        os.close(w)


class Loopback:
    """An in-memory transport: requests put in a queue, replies collected (each request in
    two pieces, as a descriptor chain may carry it)."""

    limits = Limits(max_pages=4, interrupts=False)

    def __init__(self):
        self.requests: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue()

    def receiver(self):
        def receive():
            item = self.requests.get()
            if item is None:
                self.requests.put(None)  # every worker sees the close
                return None
            return Incoming([item[:7], item[7:]], token=item)
        return receive

    def ready(self, timeout: float) -> bool:
        return not self.requests.empty()

    def reply(self, incoming, reply) -> None:
        self.replies.put(None if reply is None else b"".join(bytes(b) for b in reply))

    def close(self) -> None:
        self.requests.put(None)


def test_serve_a_vfs_over_any_transport(volume):
    """The library entry: no CLI, no /dev/fuse; the transport's limits bound what INIT offers."""
    loop = Loopback()
    assert isinstance(loop, Transport)
    serving = zcsdfs.fuse.start(volume.vfs, loop, Options(), PoolOptions(threads=2, poll_us=0, awake_ms=0))
    loop.requests.put(request(Opcode.INIT, init_body(), unique=1))
    init = loop.replies.get(timeout=30)
    assert serving.ready(30)
    fields = p.INIT_OUT.unpack_from(init, p.OUT_HEADER.size)
    assert (fields[6], fields[8]) == (4 * 4096, 4)  # max_write, max_pages: the transport's four pages
    loop.requests.put(request(Opcode.MKDIR, p.MKDIR_IN.pack(0o755, 0) + b"d\0", unique=2))
    out = loop.replies.get(timeout=30)
    assert p.OUT_HEADER.unpack_from(out)[1:] == (0, 2)
    loop.close()
    assert serving.wait(30)
    assert stat.S_ISDIR(volume.stat("/d").st_mode)
    assert serving.server.unexpected == 0 and not serving.pool.errors


def test_pool_options_are_bounded():
    for bad in (dict(threads=0), dict(threads=100_000), dict(poll_us=-1), dict(awake_ms=10**9)):
        with pytest.raises(ValueError):
            PoolOptions(**bad)


@pytest.mark.parametrize("code", [errno.ENODEV, errno.ECONNABORTED])
def test_devfuse_receiver_ends_when_the_kernel_drops_the_connection(monkeypatch, code):
    """ENODEV after an unmount, ECONNABORTED after an abort (newer kernels): both end the worker
    quietly; the pool must not record them as errors."""
    def gone(fd, buffers):
        raise OSError(code, os.strerror(code))

    r, w = os.pipe()
    try:
        monkeypatch.setattr(os, "readv", gone)
        assert DevFuse(r, 8192).receiver()() is None
    finally:
        os.close(r)
        os.close(w)


def test_devfuse_receiver_raises_what_is_not_an_end(monkeypatch):
    def broken(fd, buffers):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    r, w = os.pipe()
    try:
        monkeypatch.setattr(os, "readv", broken)
        with pytest.raises(OSError) as caught:
            DevFuse(r, 8192).receiver()()
        assert caught.value.errno == errno.EIO
    finally:
        os.close(r)
        os.close(w)


def test_devfuse_writes_a_reply_of_more_pieces_than_writev_takes():
    """A READDIR of a large directory had more pieces than IOV_MAX: writev refused it (EINVAL)
    and the kernel's request waited for an answer for ever."""
    r, w = os.pipe()
    try:
        pieces = [bytes([i % 251]) for i in range(3000)]
        DevFuse(w, 8192).reply(Incoming((b"",)), pieces)
        assert os.read(r, 8192) == b"".join(pieces)
    finally:
        os.close(r)
        os.close(w)


def test_readdir_of_a_large_directory_is_one_piece(volume):
    server = served(volume)
    for i in range(1500):
        volume.close(volume.open(f"/f{i}", os.O_WRONLY | os.O_CREAT, 0o644))
    fh = p.OPEN_OUT.unpack_from(answer(server, [request(Opcode.OPENDIR, p.OPEN_IN.pack(os.O_RDONLY, 0))]),
                                p.OUT_HEADER.size)[0]
    for opcode in (Opcode.READDIRPLUS, Opcode.READDIR):
        out = server.handle([request(opcode, p.READ_IN.pack(fh, 0, 1 << 20, 0, 0, 0, 0))])
        assert len(out) == 2 and len(out[1]) > 1000 * p.DIRENT.size
