"""The split virtqueue's walk on its own: contiguous descriptors merged, and every check kept."""

from __future__ import annotations

import mmap
import os

import pytest

from zcsdfs.fuse.guestmem import GuestMemory, map_region
from zcsdfs.fuse.virtqueue import (DESC, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueError, Virtqueue)

REGION = 1 << 20
NUM = 64
DESC_AT, AVAIL_AT, USED_AT, TABLE_AT = 0x1000, 0x2000, 0x3000, 0x4000


@pytest.fixture
def guest():
    """Two adjacent regions (guest-physical 0 and REGION) over one memfd, and a mapping to write it."""
    fd = os.memfd_create("guest", os.MFD_CLOEXEC)
    os.ftruncate(fd, 2 * REGION)
    mem = GuestMemory([map_region(fd, 0, REGION, 0, 0)])
    mem.add(map_region(fd, REGION, REGION, REGION, REGION))
    writer = mmap.mmap(fd, 2 * REGION)
    os.close(fd)
    queue = Virtqueue(mem, NUM, DESC_AT, AVAIL_AT, USED_AT)
    yield queue, writer
    queue.release()
    writer.close()
    mem.close()


def chain(writer, at: int, bufs: list[tuple[int, int, int]]) -> None:
    """Write (addr, len, flags) descriptors at ``at``, each linked to the next."""
    for i, (addr, size, flags) in enumerate(bufs):
        last = i == len(bufs) - 1
        writer[at + 16 * i:at + 16 * i + 16] = DESC.pack(addr, size, flags | (0 if last else DESC_F_NEXT), i + 1)


@pytest.mark.parametrize("indirect", [False, True])
def test_contiguous_buffers_become_one_view(guest, indirect):
    queue, writer = guest
    page = 0x10000
    bufs = [(0x8000, 40, 0), (0x8028, 40, 0),  # a header and its arguments, back to back
            (0x9000, 16, DESC_F_WRITE)]
    bufs += [(page + i * 4096, 4096, DESC_F_WRITE) for i in range(8)]  # 8 pages in a row
    bufs += [(page + 20 * 4096, 4096, DESC_F_WRITE)]  # and one elsewhere
    if indirect:
        chain(writer, TABLE_AT, bufs)
        writer[DESC_AT:DESC_AT + 16] = DESC.pack(TABLE_AT, 16 * len(bufs), DESC_F_INDIRECT, 0)
    else:
        chain(writer, DESC_AT, bufs)
    writer[0x8000:0x8050] = bytes(range(80))
    got = queue._walk(0)
    assert [len(v) for v in got.readable] == [80]
    assert bytes(got.readable[0]) == bytes(range(80))
    assert [len(v) for v in got.writable] == [16, 8 * 4096, 4096]
    got.writable[1][:] = b"\xab" * (8 * 4096)  # the merged view is exactly those guest pages
    assert writer[page:page + 8 * 4096] == b"\xab" * (8 * 4096)
    assert writer[page - 1] == 0 and writer[page + 8 * 4096] == 0


def test_a_buffer_across_adjacent_regions_is_two_views(guest):
    queue, writer = guest
    chain(writer, DESC_AT, [(REGION - 4096, 4096, DESC_F_WRITE), (REGION, 4096, DESC_F_WRITE)])
    got = queue._walk(0)
    assert [len(v) for v in got.writable] == [4096, 4096]  # never one view across two mappings


def test_merging_still_stops_at_the_region_end(guest):
    queue, writer = guest
    # the second buffer continues the first but runs past the end of guest memory
    chain(writer, DESC_AT, [(2 * REGION - 4096, 4096, DESC_F_WRITE), (2 * REGION, 4096, DESC_F_WRITE)])
    with pytest.raises(QueueError, match="outside guest memory"):
        queue._walk(0)


def test_merging_still_counts_every_byte(guest):
    queue, writer = guest
    queue.max_bytes = 3 * 4096
    chain(writer, DESC_AT, [(0x10000 + i * 4096, 4096, DESC_F_WRITE) for i in range(4)])
    with pytest.raises(QueueError, match="more than"):
        queue._walk(0)


def test_merging_keeps_readable_before_writable(guest):
    queue, writer = guest
    chain(writer, DESC_AT, [(0x8000, 40, DESC_F_WRITE), (0x8028, 40, 0)])
    with pytest.raises(QueueError, match="readable descriptor after a writable one"):
        queue._walk(0)


def test_event_idx_interrupts_once_until_the_driver_catches_up(guest):
    queue, writer = guest
    queue = Virtqueue(queue.mem, NUM, DESC_AT, AVAIL_AT, USED_AT, event_idx=True)
    used_event = AVAIL_AT + 4 + 2 * NUM

    def push():
        queue.push(0, 16)
        return queue.should_interrupt()
    writer[used_event:used_event + 2] = (0).to_bytes(2, "little")  # the driver has seen nothing yet
    assert [push(), push(), push()] == [True, False, False]  # one interrupt for the batch
    writer[used_event:used_event + 2] = (3).to_bytes(2, "little")  # it has now seen all three
    assert push() is True


def test_event_idx_asks_for_the_next_kick_at_the_next_chain(guest):
    queue, writer = guest
    queue = Virtqueue(queue.mem, NUM, DESC_AT, AVAIL_AT, USED_AT, event_idx=True)
    queue.last_avail = 7
    queue.want_kicks(True)
    avail_event = USED_AT + 4 + 8 * NUM
    assert int.from_bytes(writer[avail_event:avail_event + 2], "little") == 7


def test_without_event_idx_the_flags_decide(guest):
    queue, writer = guest
    writer[AVAIL_AT:AVAIL_AT + 2] = (1).to_bytes(2, "little")  # VRING_AVAIL_F_NO_INTERRUPT
    queue.push(0, 16)
    assert not queue.should_interrupt()
    writer[AVAIL_AT:AVAIL_AT + 2] = (0).to_bytes(2, "little")
    assert queue.should_interrupt()
    queue.want_kicks(False)
    assert writer[USED_AT:USED_AT + 2] == (1).to_bytes(2, "little")  # VRING_USED_F_NO_NOTIFY
    queue.want_kicks(True)
    assert writer[USED_AT:USED_AT + 2] == (0).to_bytes(2, "little")


def test_an_empty_writable_descriptor_names_nothing(guest):
    queue, writer = guest
    # as before the walk merged: an empty buffer adds no view, wherever it points
    chain(writer, DESC_AT, [(0x8000, 40, 0), (0x9000, 16, DESC_F_WRITE), (0x9000, 0, DESC_F_WRITE),
                            (1 << 40, 0, DESC_F_WRITE)])
    got = queue._walk(0)
    assert [len(v) for v in got.readable] == [40] and [len(v) for v in got.writable] == [16]
