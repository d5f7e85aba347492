"""virtio-fs through rings written by the test (no QEMU): the happy path, then every hostile case."""

from __future__ import annotations

import errno
import logging
import os
import select
import struct
import time

import pytest

from zcsdfs.fuse import protocol as p
from zcsdfs.fuse import vhost_user as vu
from zcsdfs.fuse.protocol import Opcode
from zcsdfs.fuse.virtqueue import DESC, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE
from zcsdfs.lfs.fsck import fsck
from zcsdfs.volume import Volume

from tests.virtiofs.frontend import GPA, REGION_SIZE, UADDR_BASE, WAIT, FrontEnd

NAME = b"hello.txt\0"


@pytest.fixture
def volume():
    vol = Volume.memory()
    yield vol
    if vol.mounted:
        vol.unmount()


@pytest.fixture
def fe(volume):
    front = FrontEnd(volume.vfs)
    front.setup()
    yield front
    front.close()


def create(fe, name=NAME, queue=1):
    error, reply = fe.fuse(Opcode.CREATE, p.CREATE_IN.pack(os.O_RDWR, 0o100644, 0, 0) + name, queue=queue)
    assert error == 0
    nodeid = struct.unpack_from("<Q", reply)[0]
    fh = struct.unpack_from("<Q", reply, p.ENTRY_OUT_SIZE)[0]
    return nodeid, fh


# -- the happy path ---------------------------------------------------------------------------

def test_init_lookup_create_write_read(fe, volume):
    init = fe.init()
    major, minor, _, flags, _, _, max_write, _, max_pages = struct.unpack_from("<IIIIHHIIH", init)
    assert major == 7 and minor == 38
    assert max_pages == 16 - 4 and max_write == (16 - 4) * 4096  # capped to the queue, not max_write
    error, _ = fe.fuse(Opcode.LOOKUP, NAME)
    assert error == errno.ENOENT
    nodeid, fh = create(fe)
    data = os.urandom(3 * 4096 + 123)
    error, reply = fe.fuse(Opcode.WRITE, p.WRITE_IN.pack(fh, 0, len(data), 0, 0, 0, 0) + data, nodeid=nodeid)
    assert error == 0 and struct.unpack_from("<I", reply)[0] == len(data)
    # the reply's data lands in a separate writable descriptor, as the guest's driver sends pages
    error, reply = fe.fuse(Opcode.READ, p.READ_IN.pack(fh, 0, len(data), 0, 0, 0, 0), nodeid=nodeid,
                           out_size=0, data_out=len(data))
    assert error == 0 and reply == data
    error, reply = fe.fuse(Opcode.LOOKUP, NAME)
    assert error == 0 and struct.unpack_from("<Q", reply)[0] == nodeid
    fd = volume.open("/hello.txt", os.O_RDONLY)
    try:
        assert volume.read(fd, 1 << 20) == data
    finally:
        volume.close(fd)


def test_indirect_chains_and_two_request_queues(volume):
    fe = FrontEnd(volume.vfs, request_queues=2)
    try:
        fe.setup()
        assert len(fe.rings) == 3  # hiprio + 2 request queues
        fe.init()
        nodeid, fh = create(fe, b"a\0", queue=2)
        data = b"x" * 10000
        error, reply = fe.fuse(Opcode.WRITE, p.WRITE_IN.pack(fh, 0, len(data), 0, 0, 0, 0) + data,
                               nodeid=nodeid, queue=1, indirect=True)
        assert error == 0
        error, reply = fe.fuse(Opcode.READ, p.READ_IN.pack(fh, 0, 20000, 0, 0, 0, 0), nodeid=nodeid,
                               queue=2, indirect=True, out_size=20000)
        assert error == 0 and reply == data
    finally:
        fe.close()


def test_forget_on_the_hiprio_queue_needs_no_reply(fe):
    fe.init()
    nodeid, _ = create(fe)
    head, _ = fe.rings[0].post([p.IN_HEADER.pack(p.IN_HEADER.size + 8, Opcode.FORGET, 99, nodeid, 0, 0, 1, 0, 0),
                                struct.pack("<Q", 1)], [])
    assert fe.rings[0].wait_used() == (head, 0)


def test_virtio_fs_differences(fe):
    fe.init()
    for opcode in (Opcode.SETUPMAPPING, Opcode.REMOVEMAPPING, Opcode.INTERRUPT):
        error, _ = fe.fuse(opcode, b"\0" * 40)
        assert error == errno.ENOSYS, opcode
    error, _ = fe.fuse(Opcode.DESTROY)
    assert error == 0


# -- malformed FUSE requests: the request fails, the queue goes on ----------------------------

def test_malformed_fuse_requests(fe):
    fe.init()
    ring = fe.rings[1]
    head, _ = ring.post([b"\1\2\3"], [4096])  # shorter than a FUSE header
    assert ring.wait_used() == (head, 0)
    bad_len = p.IN_HEADER.pack(9999, Opcode.GETATTR, 77, 1, 0, 0, 1, 0, 0)  # length past what was sent
    head, outs = ring.post([bad_len], [4096])
    got_head, length = ring.wait_used()
    assert got_head == head and length == p.OUT_HEADER.size
    assert p.OUT_HEADER.unpack(fe.read(outs[0], 16))[1] < 0  # an error, whichever the server picks
    error, _ = fe.fuse(999, b"")  # unknown opcode
    assert error == errno.ENOSYS
    error, _ = fe.fuse(Opcode.LOOKUP, b"no terminator")
    assert error == errno.EINVAL
    # a reply that does not fit the writable part: EIO, nothing written past the buffer
    error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), out_size=8)
    assert error == errno.EIO
    head, _ = ring.post([p.IN_HEADER.pack(40, Opcode.GETATTR, 5, 1, 0, 0, 1, 0, 0)], [4])  # no room at all
    assert ring.wait_used() == (head, 0)
    error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))
    assert error == 0  # still serving


# -- hostile rings: the queue stops with a log line; the device and the other queues go on --

def hostile(fe, caplog, write_chain, expect: str):
    """Post a malformed chain on request queue 1; the queue must stop, saying ``expect``."""
    fe.init()
    ring = fe.rings[1]
    with caplog.at_level(logging.ERROR, logger="zcsdfs.fuse.vhost_user"):
        head = write_chain(ring)
        ring.wait_err()
    assert any(expect in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert ring.used_idx() == ring.used_seen  # nothing was returned for the bad chain
    # the device still answers its front end, and the hiprio queue still works
    assert struct.unpack("<Q", fe.call(vu.Request.GET_FEATURES))[0] & 1 << vu.F_VERSION_1
    nodeid = 1
    h, _ = fe.rings[0].post([p.IN_HEADER.pack(48, Opcode.FORGET, 3, nodeid, 0, 0, 1, 0, 0), b"\0" * 8], [])
    assert fe.rings[0].wait_used() == (h, 0)
    # a reset of the ring (what a guest's driver reload does) brings it back
    base = fe.stop_ring(ring)
    for addr in (ring.desc, ring.avail, ring.used):
        fe.write(addr, b"\0" * 64)
    ring.avail_idx = ring.used_seen = ring.next_desc = 0
    fe.start_ring(ring, base=0)
    error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))
    assert error == 0
    return head, base


def one_desc(ring, addr, length, flags=DESC_F_WRITE, nxt=0, slot=0):
    ring.fe.write(ring.desc + 16 * slot, DESC.pack(addr, length, flags, nxt))


def header_desc(ring, slot):
    addr = ring.fe.alloc(40)
    ring.fe.write(addr, p.IN_HEADER.pack(40, Opcode.GETATTR, 11, 1, 0, 0, 1, 0, 0))
    one_desc(ring, addr, 40, DESC_F_NEXT, slot + 1, slot)


def test_descriptor_outside_guest_memory(fe, caplog):
    def chain(ring):
        header_desc(ring, 0)
        one_desc(ring, GPA[0] + REGION_SIZE + 0x1000, 4096, DESC_F_WRITE, 0, 1)  # in the hole
        ring.publish(0)
    hostile(fe, caplog, chain, "outside guest memory")


def test_length_past_the_end_of_a_region(fe, caplog):
    def chain(ring):
        header_desc(ring, 0)
        one_desc(ring, GPA[1] + REGION_SIZE - 100, 4096, DESC_F_WRITE, 0, 1)
        ring.publish(0)
    hostile(fe, caplog, chain, "outside guest memory")


def test_huge_length_and_address_wrap(fe, caplog):
    def chain(ring):
        one_desc(ring, 0xFFFFFFFFFFFFF000, 0x10000, 0, 0, 0)
        ring.publish(0)
    hostile(fe, caplog, chain, "outside guest memory")


def test_chain_that_loops(fe, caplog):
    def chain(ring):
        one_desc(ring, ring.fe.alloc(64), 64, DESC_F_WRITE | DESC_F_NEXT, 1, 0)  # 0 -> 1 -> 0 ...
        one_desc(ring, ring.fe.alloc(64), 64, DESC_F_WRITE | DESC_F_NEXT, 0, 1)
        ring.publish(0)
    hostile(fe, caplog, chain, "longer than the queue")


def test_next_past_the_table(fe, caplog):
    def chain(ring):
        one_desc(ring, ring.fe.alloc(40), 40, DESC_F_NEXT, 16, 0)
        ring.publish(0)
    hostile(fe, caplog, chain, "past the table")


def test_head_past_the_table(fe, caplog):
    def chain(ring):
        ring.publish(16)
    hostile(fe, caplog, chain, "head 16 past")


def test_readable_after_writable(fe, caplog):
    def chain(ring):
        one_desc(ring, ring.fe.alloc(64), 64, DESC_F_WRITE | DESC_F_NEXT, 1, 0)
        one_desc(ring, ring.fe.alloc(40), 40, 0, 0, 1)
        ring.publish(0)
    hostile(fe, caplog, chain, "readable descriptor after a writable")


def test_nested_indirect_tables(fe, caplog):
    def chain(ring):
        inner = ring.fe.alloc(16, 16)
        ring.fe.write(inner, DESC.pack(ring.fe.alloc(40), 40, 0, 0))
        outer = ring.fe.alloc(16, 16)
        ring.fe.write(outer, DESC.pack(inner, 16, DESC_F_INDIRECT, 0))
        one_desc(ring, outer, 16, DESC_F_INDIRECT, 0, 0)
        ring.publish(0)
    hostile(fe, caplog, chain, "indirect table inside an indirect table")


def test_indirect_table_longer_than_the_queue(fe, caplog):
    def chain(ring):
        table = ring.fe.alloc(16 * 17, 16)
        for i in range(17):
            ring.fe.write(table + 16 * i, DESC.pack(ring.fe.alloc(8), 8, DESC_F_NEXT if i < 16 else 0, i + 1))
        one_desc(ring, table, 16 * 17, DESC_F_INDIRECT, 0, 0)
        ring.publish(0)
    hostile(fe, caplog, chain, "indirect table of 272 bytes")


def test_indirect_table_that_loops(fe, caplog):
    def chain(ring):
        table = ring.fe.alloc(32, 16)
        ring.fe.write(table, DESC.pack(ring.fe.alloc(40), 40, DESC_F_NEXT, 1))
        ring.fe.write(table + 16, DESC.pack(ring.fe.alloc(40), 40, DESC_F_NEXT, 0))
        one_desc(ring, table, 32, DESC_F_INDIRECT, 0, 0)
        ring.publish(0)
    hostile(fe, caplog, chain, "longer than the queue")


def test_indirect_with_next(fe, caplog):
    def chain(ring):
        table = ring.fe.alloc(16, 16)
        ring.fe.write(table, DESC.pack(ring.fe.alloc(40), 40, 0, 0))
        one_desc(ring, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1, 0)
        ring.publish(0)
    hostile(fe, caplog, chain, "must be alone")


def test_same_pages_many_times_is_bounded(fe, caplog):
    """A chain naming one big buffer again and again must not make the device copy without end."""
    def chain(ring):
        big = ring.fe.alloc(1 << 20, 4096, region=1)
        for i in range(16):
            one_desc(ring, big, 1 << 20, DESC_F_NEXT if i < 15 else 0, i + 1, i)
        ring.publish(0)
    hostile(fe, caplog, chain, "more than")


def test_avail_index_jumps_past_the_queue(fe, caplog):
    def chain(ring):
        header_desc(ring, 0)
        one_desc(ring, ring.fe.alloc(4096), 4096, DESC_F_WRITE, 0, 1)
        ring.publish(0, bump=17)
    hostile(fe, caplog, chain, "moved by 17")


# -- the vhost-user messages themselves -------------------------------------------------------

def test_unknown_and_malformed_messages_are_refused(fe, caplog):
    with caplog.at_level(logging.ERROR, logger="zcsdfs.fuse.vhost_user"):
        assert fe.ack(1234, b"whatever") == 1
        assert fe.ack(vu.Request.SET_VRING_NUM, b"\1") == 1  # short payload
        assert fe.ack(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(200, 16)) == 1  # no such ring
        assert fe.ack(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(1, 100)) == 1  # not a power of two
        assert fe.ack(vu.Request.SET_FEATURES, struct.pack("<Q", 1 << 63)) == 1  # not offered
        bad = vu.MEM_TABLE_HEAD.pack(1, 0) + vu.MEM_REGION.pack(0, REGION_SIZE * 4, UADDR_BASE, 0)
        assert fe.ack(vu.Request.SET_MEM_TABLE, bad, [fe.fd]) == 1  # past the end of the file
        assert fe.ack(vu.Request.SET_MEM_TABLE, fe.table(), []) == 1  # no descriptors
        assert fe.ack(vu.Request.SET_VRING_CALL, struct.pack("<Q", 1)) == 1  # neither fd nor NOFD
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "unsupported vhost-user request 1234" in messages
    fe.init()  # the device is unharmed


def test_message_too_large_to_frame_ends_the_connection(volume):
    fe = FrontEnd(volume.vfs)
    fe.setup()
    fe.sock.sendall(vu.HEADER.pack(vu.Request.SET_OWNER, 1, 1 << 30))
    fe.thread.join(20)
    assert not fe.thread.is_alive()
    fe.close()


def test_new_memory_table_unmaps_the_old(fe):
    fe.init()
    old = list(fe.device.backend.mem.regions)
    assert fe.ack(vu.Request.SET_MEM_TABLE, fe.table(), [fe.fd] * 2) == 0
    assert all(r.mapping.closed for r in old)
    error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))  # the rings run on the new table
    assert error == 0


def test_get_vring_base_stops_the_ring(fe):
    fe.init()
    ring = fe.rings[1]
    base = fe.stop_ring(ring)
    assert base == ring.avail_idx
    header_desc(ring, 0)
    one_desc(ring, fe.alloc(4096), 4096, DESC_F_WRITE, 0, 1)
    ring.publish(0)
    fe.call(vu.Request.GET_FEATURES)  # a round trip: the device has seen the kick by now
    assert ring.used_idx() == ring.used_seen  # stopped: not served
    fe.start_ring(ring, base=base)  # restarted where it stopped: the waiting request is served
    assert ring.wait_used()[0] == 0


def test_front_end_vanishing_mid_request(volume):
    """The front end posts a large write and goes away at once: the device stops, unmaps and
    leaves the volume consistent."""
    fe = FrontEnd(volume.vfs)
    fe.setup()
    fe.init()
    nodeid, fh = create(fe)
    regions = list(fe.device.backend.mem.regions)
    data = b"y" * (12 * 4096)
    header = p.IN_HEADER.pack(p.IN_HEADER.size + p.WRITE_IN.size + len(data), Opcode.WRITE, 1000, nodeid,
                              0, 0, 1, 0, 0)
    fe.rings[1].post([header, p.WRITE_IN.pack(fh, 0, len(data), 0, 0, 0, 0), data], [16, 16])
    fe.close()
    assert all(r.mapping.closed for r in regions)
    fe.device.close()
    volume.unmount()
    report = fsck(volume.device)
    assert report.clean, report.errors
    again = Volume(volume.device)
    try:
        assert again.stat("/hello.txt").st_size in (0, len(data))  # the write ran whole or not at all
    finally:
        again.unmount()


def test_a_new_init_ends_the_old_session(fe, volume):
    """A guest that reboots sends INIT again without DESTROY: what the old boot held open is closed."""
    fe.init()
    nodeid, fh = create(fe)
    old = fe.device.server
    ino = volume.stat("/hello.txt").st_ino
    assert volume.vfs.fs._held.get(ino)  # held open by the guest's handle
    fe.init()
    assert fe.device.server is not old
    error, _ = fe.fuse(Opcode.READ, p.READ_IN.pack(fh, 0, 10, 0, 0, 0, 0), nodeid=nodeid)
    assert error == errno.EBADF  # the old handle is gone
    assert not volume.vfs.fs._held.get(ino)  # closed: nothing keeps the file alive any more


def test_memory_slots_added_and_removed_one_by_one(volume):
    """With CONFIGURE_MEM_SLOTS (QEMU 7.2 uses it when offered) regions come by ADD_MEM_REG and go by
    REM_MEM_REG; a removed region is unmapped and its addresses are guest memory no more."""
    fe = FrontEnd(volume.vfs, protocol=vu.ProtocolFeature.REPLY_ACK | vu.ProtocolFeature.CONFIGURE_MEM_SLOTS)
    try:
        fe.setup()
        fe.init()
        nodeid, fh = create(fe)
        data = b"z" * 8192
        error, _ = fe.fuse(Opcode.WRITE, p.WRITE_IN.pack(fh, 0, len(data), 0, 0, 0, 0) + data, nodeid=nodeid)
        assert error == 0
        region = next(r for r in fe.device.backend.mem.regions if r.gpa == GPA[1])
        assert fe.ack(vu.Request.REM_MEM_REG, fe.region(1)) == 0
        assert region.mapping.closed
        assert fe.ack(vu.Request.REM_MEM_REG, fe.region(1)) == 1  # not there any more
        with pytest.raises(OSError):
            fe.device.backend.mem.view(GPA[1], 16)
        error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))  # region 0 still serves
        assert error == 0
    finally:
        fe.close()


@pytest.mark.parametrize("features", ["all", "no event_idx"])
def test_polling_workers_and_plain_notifications(volume, features):
    """Workers that poll before sleeping, and a driver without EVENT_IDX (flags instead)."""
    offered = None if features == "all" else (1 << vu.F_VERSION_1 | 1 << vu.F_INDIRECT_DESC
                                              | 1 << vu.F_PROTOCOL_FEATURES)
    fe = FrontEnd(volume.vfs, features=offered, poll_us=300)
    try:
        fe.setup()
        fe.init()
        for _ in range(50):
            error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))
            assert error == 0
    finally:
        fe.close()


def test_cpu_per_opcode_is_sampled_and_the_rest_counted(volume):
    fe = FrontEnd(volume.vfs)
    fe.setup()
    fe.init()
    for _ in range(20):
        error, _ = fe.fuse(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))
        assert error == 0
    fe.close()  # the workers end, and say how much CPU they used in all
    per, outside = fe.device.cpu_report()
    assert set(per) == {"INIT", "GETATTR"}
    assert per["GETATTR"][0] == 20 and per["GETATTR"][1] > 0  # requests counted; CPU from 3 samples
    assert fe.device.opcode_sampled[Opcode.GETATTR] == 3  # the 1st, 9th and 17th
    assert fe.device.worker_cpu_ns > 0 and outside >= 0


def test_chains_waiting_at_a_wake_up_are_served_together_with_one_interrupt(fe):
    """EVENT_IDX: the driver has seen no used buffer yet, so the first answer interrupts it
    and the three after it, served in the same pass, do not."""
    fe.init()
    ring = fe.rings[1]
    base = fe.stop_ring(ring)
    while True:  # let go of what the earlier answers signalled
        try:
            os.eventfd_read(ring.call)
        except BlockingIOError:
            break
    heads = []
    for _ in range(4):  # posted while the ring is stopped: waiting together when it starts
        head, _ = ring.post([p.IN_HEADER.pack(p.IN_HEADER.size + p.GETATTR_IN.size, Opcode.GETATTR, 50, 1,
                                              0, 0, 1, 0, 0), p.GETATTR_IN.pack(0, 0, 0)], [16, 256])
        heads.append(head)
    fe.start_ring(ring, base=base)
    assert select.select([ring.call], [], [], WAIT)[0]  # the first answer's interrupt (not read here)
    deadline = time.monotonic() + WAIT
    while ring.used_idx() != (ring.used_seen + 4) & 0xFFFF:  # the rest come in the same pass, unsignalled
        assert time.monotonic() < deadline, "the chains posted with the first were not served"
        os.sched_yield()
    assert os.eventfd_read(ring.call) == 1  # one interrupt for the four
    assert [ring.wait_used()[0] for _ in range(4)] == heads
