"""A frozen view lends its bytes as views of the device's memory, checked, so a kernel reads
them natively instead of through a Python read per request."""

import errno

import pytest

from tests.lfs.test_checksums import flip
from zcsdfs.csd import kernels
from zcsdfs.lfs import mkfs, mount
from zcsdfs.zns import ZonedDevice

BS = 4096


def pattern(blocks: int) -> bytes:
    return b"".join(bytes([i % 251, (i * 7) % 256]) * (BS // 2) for i in range(blocks))


@pytest.fixture
def volume():
    """A file of 40 blocks (two writes, so two runs) with a hole at block 5 and a partial last block."""
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    f = fs.create(fs.ROOT, "f")
    data = bytearray(pattern(40)[:39 * BS + 123])
    fs.write(f, 0, data[:20 * BS])
    fs.write(f, 20 * BS, data[20 * BS:])
    fs.fallocate(f, 5 * BS, BS, 0x01 | 0x02)  # punch block 5
    data[5 * BS:6 * BS] = bytes(BS)
    return device, fs, f, bytes(data)


RANGES = [(0, None), (0, 1), (5 * BS - 3, 10), (BS + 17, 30 * BS), (39 * BS, None), (39 * BS + 200, None),
          (10**6, None)]


@pytest.mark.parametrize("start,length", RANGES)
def test_the_window_holds_what_read_returns(volume, start, length):
    device, fs, f, data = volume
    with fs.freeze(f) as view:
        end = max(start, view.size) if length is None else start + length
        window = view.window(start, end)
        assert window is not None
        assert b"".join(window) == view.read(start, end - start) == data[start:end]
        assert all(isinstance(piece, memoryview) and piece.readonly for piece in window)


def test_the_window_is_the_device_memory_not_a_copy(volume):
    device, fs, f, _ = volume
    with fs.freeze(f) as view:
        run = view.window(0, 4 * BS)[0]
        lba = fs.ns.inodes[f].extents.lookup(0)
        assert bytes(run[:BS]) == device.read(lba, 1)
        before = bytes(run[:16])
        zone = lba // device.geometry.zone_size
        buf = device._backend.zone_buffer(zone)  # the memory itself, as the test of checksums flips it
        at = (lba - zone * device.geometry.zone_size) * BS
        buf[at] ^= 0xFF
        assert bytes(run[:16]) != before


def test_a_damaged_block_refuses_the_window_and_read_says_eio(volume):
    device, fs, f, _ = volume
    lba = fs.ns.inodes[f].extents.lookup(3)
    fs.unmount()
    damaged = mount(flip(device, lba))
    with damaged.freeze(f) as view:
        assert view.window(0, 10 * BS) is None
        assert view.window(10 * BS, 20 * BS) is not None  # the other run is whole
        with pytest.raises(OSError) as info:
            kernels.load("passthrough", engine="interp").run(view, 0, 10 * BS)
        assert info.value.errno == errno.EIO


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_a_kernel_reads_the_view_without_calling_read(volume, engine, monkeypatch):
    device, fs, f, data = volume
    with fs.freeze(f) as view:
        def no_read(offset, size):
            raise AssertionError("the kernel read through Python")
        monkeypatch.setattr(view, "read", no_read)
        assert kernels.load("passthrough", engine=engine).run(view, 3, 25 * BS) == data[3:3 + 25 * BS]
