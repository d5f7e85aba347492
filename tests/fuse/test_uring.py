"""FUSE over io_uring: the ring itself (``uring.py``) and the transport (``fuse_uring.py``).

The mount tests switch the fuse module's enable_uring on or off (root, as in
CI) and put it back; the whole mount suite runs over io_uring too (the
``mnt`` fixture's "uring" parameter).
"""

from __future__ import annotations

import errno
import os
import struct

import pytest

from tests.fuse.conftest import needs_fuse
from zcsdfs.cli.fuse import parse_options
from zcsdfs.fuse import fuse_uring, uring
from zcsdfs.fuse.devfuse import DevFuse, MountOptions, Session, mounted_at
from zcsdfs.fuse.protocol import IN_HEADER, INIT_OUT, OUT_HEADER, InitFlag, Opcode, out_header
from zcsdfs.volume import Volume

needs_io_uring = pytest.mark.skipif(uring.supported() is not None, reason=str(uring.supported()))


# -- the ring ---------------------------------------------------------------------------------

@needs_io_uring
def test_nops_complete_in_one_enter_with_their_tags():
    with uring.Ring(8) as ring:
        assert (ring.sq_entries, ring.cq_entries, ring.space()) == (8, 16, 8)
        for tag in (7, 8, 9):
            ring.prepare(uring.OP_NOP, user_data=tag)
        assert ring.unsubmitted() == 3
        assert ring.submit(wait=3) == 3
        assert ring.unsubmitted() == 0
        assert [(c.user_data, c.res) for c in ring.reap()] == [(7, 0), (8, 0), (9, 0)]
        assert ring.ready() == 0 and ring.reap() == []


@needs_io_uring
def test_a_read_of_a_pipe_completes_when_data_comes():
    rfd, wfd = os.pipe()
    buf = bytearray(16)
    iov = bytearray(struct.pack("<QQ", uring.address(buf), len(buf)))
    try:
        with uring.Ring(4) as ring:
            ring.prepare(uring.OP_READV, rfd, addr=uring.address(iov), length=1, user_data=1)
            ring.prepare(uring.OP_READ, rfd, addr=uring.address(buf), length=0, user_data=2)
            ring.submit()
            assert [(c.user_data, c.res) for c in ring.reap()] in ([], [(2, 0)])
            os.write(wfd, b"hello")
            found = {}
            while 1 not in found:
                ring.submit(wait=1)
                found.update((c.user_data, c.res) for c in ring.reap())
            assert found[1] == 5 and bytes(buf[:5]) == b"hello"
    finally:
        os.close(rfd)
        os.close(wfd)


@needs_io_uring
def test_the_ring_bounds_what_it_is_given():
    for entries, cq in ((0, None), (uring.MAX_ENTRIES + 1, None), (8, 4)):
        with pytest.raises(OSError) as exc:
            uring.Ring(entries, cq)
        assert exc.value.errno == errno.EINVAL
    with uring.Ring(2) as ring:
        with pytest.raises(OSError) as exc:
            ring.prepare(uring.OP_NOP, cmd=bytes(uring.CMD_SIZE + 1))
        assert exc.value.errno == errno.EINVAL
        ring.prepare(uring.OP_NOP, user_data=1)
        ring.prepare(uring.OP_NOP, user_data=2)
        with pytest.raises(OSError) as exc:  # no third SQE over the two unsubmitted
            ring.prepare(uring.OP_NOP, user_data=3)
        assert exc.value.errno == errno.EBUSY
        ring.submit(wait=2)
        assert [c.user_data for c in ring.reap(limit=1)] == [1]
        assert [c.user_data for c in ring.reap()] == [2]


# -- the transport, without a kernel behind it --------------------------------------------------

@pytest.fixture
def transport():
    """A FuseUring over /dev/null with one entry laid out as after INIT (nothing is submitted)."""
    if uring.supported():
        pytest.skip(uring.supported())
    fd = os.open("/dev/null", os.O_RDWR)
    t = fuse_uring.FuseUring(fd, 8192, depth=1, queues=1)
    t.payload_size = fuse_uring.MIN_PAYLOAD
    t._entries.append(t._entry(0, 0))
    yield t
    t.close()


def _place(entry, opcode: int, unique: int, fixed: bytes, payload: bytes, length: int | None = None):
    view = entry.view
    length = IN_HEADER.size + len(fixed) + len(payload) if length is None else length
    IN_HEADER.pack_into(view, 0, length, opcode, unique, 1, 0, 0, 0, 0, 0)
    view[fuse_uring.OP_IN:fuse_uring.OP_IN + len(fixed)] = fixed
    view[fuse_uring.PAGE:fuse_uring.PAGE + len(payload)] = payload
    fuse_uring.ENT_IN_OUT.pack_into(view, fuse_uring.ENT_IN_OUT_AT, 0, unique, len(payload))


def _flush(transport) -> None:
    """Let the SQEs the transport queued go (/dev/null refuses them: only their writing counts)."""
    transport.ring.submit(wait=transport.ring.unsubmitted())
    transport.ring.reap()


def _committed(entry) -> tuple[int, int, int]:
    """(error, unique, payload_sz) of what was written back into ``entry``."""
    _, error, unique = OUT_HEADER.unpack_from(entry.view)
    return error, unique, fuse_uring.ENT_IN_OUT.unpack_from(entry.view, fuse_uring.ENT_IN_OUT_AT)[2]


def test_an_entry_is_read_as_one_request_in_kernel_order(transport):
    entry = transport._entries[0]
    _place(entry, Opcode.WRITE, 42, b"F" * 40, b"data" * 100)
    incoming = transport._request(entry)
    (whole,) = incoming.request
    assert bytes(whole) == IN_HEADER.pack(40 + 40 + 400, Opcode.WRITE, 42, 1, 0, 0, 0, 0, 0) + b"F" * 40 + b"data" * 100
    assert incoming.token is entry and entry.commit_id == 42


def test_a_malformed_entry_is_answered_eio_not_served(transport):
    entry = transport._entries[0]
    for length in (IN_HEADER.size + 10, IN_HEADER.size + 400 + fuse_uring.OP_IN + 1):  # shorter than
        _place(entry, Opcode.WRITE, 43, b"", b"x" * 400, length=length)  # its payload; a fixed part over 128
        assert transport._request(entry) is None
        assert _committed(entry) == (-errno.EIO, 43, 0)
        assert transport.ring.unsubmitted() == 1  # its COMMIT_AND_FETCH, so the entry comes back
        _flush(transport)
    fuse_uring.ENT_IN_OUT.pack_into(entry.view, fuse_uring.ENT_IN_OUT_AT, 0, 44, fuse_uring.MIN_PAYLOAD + 1)
    assert transport._request(entry) is None  # a payload larger than the buffer


def test_replies_fill_the_entry_and_too_large_ones_become_eio(transport):
    entry = transport._entries[0]
    entry.commit_id = 50
    transport._commit(entry, [out_header(50, 0, 6), b"abc", memoryview(b"def")])
    assert _committed(entry) == (0, 50, 6)
    assert bytes(entry.view[fuse_uring.PAGE:fuse_uring.PAGE + 6]) == b"abcdef"
    _flush(transport)
    transport._commit(entry, [out_header(50, 0, fuse_uring.MIN_PAYLOAD + 1), bytes(fuse_uring.MIN_PAYLOAD + 1)])
    assert _committed(entry) == (-errno.EIO, 50, 0)
    _flush(transport)
    transport._commit(entry, None)  # a ring request always gets an answer
    assert _committed(entry) == (-errno.EIO, 50, 0)


def test_uring_mode_words():
    assert parse_options(["uring=off"], "img").uring == "off"
    assert parse_options([], "img").uring == "auto"
    with pytest.raises(OSError) as exc:
        parse_options(["uring=maybe"], "img")
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(OSError) as exc:
        MountOptions(uring="maybe").use_uring()
    assert exc.value.errno == errno.EINVAL
    assert MountOptions(uring="off").use_uring() is False


# -- mounts -----------------------------------------------------------------------------------

@needs_fuse
def test_uring_on_serves_every_request_through_the_ring(uring_enabled, mount_factory):
    m = mount_factory(MountOptions(uring="on"))
    assert m.session.uring and isinstance(m.session.transport, fuse_uring.FuseUring)
    big = os.urandom(3 << 20)  # larger than one entry's payload: several WRITEs and READs
    with open(f"{m.path}/big", "wb") as f:
        f.write(big)
    os.mkdir(f"{m.path}/d")
    for i in range(50):
        with open(f"{m.path}/d/{i}", "w") as f:
            f.write(str(i))
    with open(f"{m.path}/big", "rb") as f:
        assert f.read() == big
    assert sorted(os.listdir(f"{m.path}/d"), key=int) == [str(i) for i in range(50)]
    assert os.stat(f"{m.path}/big").st_size == len(big)
    transport = m.session.transport
    assert len(transport._entries) == transport.queues * transport.depth
    assert transport.lost == 0


@needs_fuse
def test_auto_falls_back_to_devfuse_when_the_module_says_no(uring_disabled, mount_factory):
    m = mount_factory(MountOptions())  # uring=auto
    assert type(m.session.transport) is DevFuse and not m.session.uring
    with open(f"{m.path}/f", "w") as f:
        f.write("served")
    with open(f"{m.path}/f") as f:
        assert f.read() == "served"


@needs_fuse
def test_uring_on_refuses_before_mounting_when_the_module_says_no(uring_disabled, tmp_path):
    point = tmp_path / "mnt"
    point.mkdir()
    volume = Volume.memory()
    with pytest.raises(OSError) as exc:
        Session(volume.vfs, point, MountOptions(uring="on"))
    assert exc.value.errno == errno.EOPNOTSUPP and "enable_uring" in str(exc.value)
    assert mounted_at(str(point)) is None
    volume.unmount()


@needs_fuse
def test_uring_off_keeps_devfuse_where_the_ring_is_on(uring_enabled, mount_factory):
    m = mount_factory(MountOptions(uring="off"))
    assert type(m.session.transport) is DevFuse
    os.stat(m.path)


def _init_reply(flags2: int) -> list:
    body = INIT_OUT.pack(7, 45, 0, 0, 64, 48, 1 << 20, 1, 256, 0, flags2, 0)
    return [out_header(1, 0, len(body)), body]


def test_init_keeps_io_uring_only_when_the_entries_can_be_made(transport, monkeypatch):
    transport._entries = []
    flag = int(InitFlag.OVER_IO_URING) >> 32
    reply = _init_reply(flag)
    assert transport._set_up(reply) is reply  # accepted: the entries are made before it goes out
    assert len(transport._entries) == 1 and transport.payload_size == 1 << 20
    transport._entries = []

    def no_memory(index, qid):
        raise OSError(errno.ENOMEM, "no memory")

    monkeypatch.setattr(transport, "_entry", no_memory)
    (sent,) = transport._set_up(_init_reply(flag | 1))
    fields = INIT_OUT.unpack_from(sent, OUT_HEADER.size)
    assert fields[10] == 1 and fields[6] == 1 << 20  # the flag withdrawn, the rest as it was
    assert transport._entries == []
    assert transport._set_up(_init_reply(0)) is not None and transport._entries == []  # not offered
