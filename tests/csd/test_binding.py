"""CSD kernels bound to files in a volume: the fadvise route, the xattr route, kinds, isolation, faults.

Every bound read is checked against the same computation done in Python on
the raw bytes, over a file with holes, many extents and an odd size.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import struct
import threading

import crc32c
import numpy as np
import pytest

import zcsdfs
from zcsdfs.csd import advice, kernels, load
from zcsdfs.lfs.fsck import fsck
from zcsdfs.lfs.log import Role
from zcsdfs.vfs.caller import Caller

BS = 4096
SIZE = 40 * BS + 1234  # not a multiple of the block
HOLES = ((3 * BS, 6 * BS), (20 * BS, 23 * BS))  # never written: they read as zeros
KEY = b"\x03\x00\x00\x00" + b"".join(struct.pack("<H", len(k)) + k for k in (b"alice", b"bob", b"carol"))
COLUMN = struct.pack("<IIBB", 12, 4, 4, 0)

# data, then a u64 trailer holding the data's length: a write-stream "framing" kernel
FRAME_ASM = """
    mov %r6, 0
loop:
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -256
    mov %r3, 256
    call 32
    jeq %r0, 0, done
    jgt %r0, 256, done
    mov %r7, %r0
    mov %r1, %r10
    add %r1, -256
    mov %r2, %r7
    call 33
    add %r6, %r7
    ja loop
done:
    stxdw [%r10-264], %r6
    mov %r1, %r10
    add %r1, -264
    mov %r2, 8
    call 33
    mov %r0, 0
    exit
"""


# -- the Python side of every shipped kernel ----------------------------------------------

def u32s(data: bytes) -> np.ndarray:
    return np.frombuffer(data[:len(data) // 4 * 4], dtype="<u4")


def bloom_positions(key: bytes, k: int, m: int) -> list[int]:
    h1 = 0xCBF29CE484222325
    for b in key:
        h1 = ((h1 ^ b) * 0x100000001B3) % (1 << 64)
    h2 = (h1 >> 32) | 1
    return [((h1 + i * h2) % (1 << 64)) % m for i in range(k)]


def bloom(data: bytes) -> bytes:
    keys = (b"alice", b"bob", b"carol")
    return bytes(all(data[p // 8] >> (p % 8) & 1 for p in bloom_positions(key, 3, len(data) * 8)) for key in keys)


def columns(data: bytes) -> bytes:
    values = [struct.unpack_from("<I", data, r + 4)[0] for r in range(0, len(data) - 11, 12)]
    if not values:
        return bytes(32)
    return struct.pack("<4Q", len(values), sum(values) % (1 << 64), min(values), max(values))


def grep_count(data: bytes, pattern: bytes) -> int:
    return sum(pattern in line for line in data.split(b"\n") if line)


PYTHON = {
    "passthrough": lambda d: d,
    "histogram": lambda d: np.bincount(np.frombuffer(d, np.uint8), minlength=256).astype("<u8").tobytes(),
    "sum_u32": lambda d: struct.pack("<Q", int(u32s(d).sum(dtype=np.uint64))),
    "count_above": lambda d: struct.pack("<Q", int((u32s(d) > 0x7FFFFFFF).sum())),
    "opencsd_count_above": lambda d: struct.pack("<Q", int((u32s(d) > 0x7FFFFFFF).sum())),
    "crc32c": lambda d: struct.pack("<I", crc32c.crc32c(d)),
    "columns": columns,
    "bloom": bloom,
}
ARGS = {"columns": COLUMN, "bloom": KEY}


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def vol():
    volume = zcsdfs.Volume.memory("tiny")
    yield volume
    volume.unmount()


def fragmented(vol, path: str = "/f", seed: int = 1) -> tuple[int, bytes]:
    """A file of SIZE bytes with two holes and many extents (pieces written out of order)."""
    rng = random.Random(seed)
    raw = bytearray(SIZE)
    fd = vol.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    vol.ftruncate(fd, SIZE)
    for _ in range(60):
        at = rng.randrange(SIZE)
        n = min(rng.randrange(1, 3 * BS), SIZE - at)
        piece = rng.randbytes(n)
        cuts = sorted({at, at + n, *(b for hole in HOLES for b in hole if at < b < at + n)})
        for a, b in zip(cuts, cuts[1:]):
            if not any(lo <= a < hi for lo, hi in HOLES):
                vol.pwrite(fd, piece[a - at:b - at], a)
                raw[a:b] = piece[a - at:b - at]
    return fd, bytes(raw)


def bind(vol, fd: int, kernel, offset: int = 0, length: int = 0) -> None:
    vol.posix_fadvise(fd, offset, length, advice(kernel))


def store_kernel(vol, name: str, path: str = "/kernel.o") -> int:
    fd = vol.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    vol.write(fd, kernels.object_path(name).read_bytes())
    vol.close(fd)
    return vol.stat(path).st_ino


# -- every shipped kernel through a bound descriptor ------------------------------------------

def test_the_file_has_holes_and_many_extents(vol):
    fd, raw = fragmented(vol)
    assert vol.pread(fd, SIZE + 10, 0) == raw and len(raw) % BS
    view = vol.fs.freeze(vol.fstat(fd).st_ino)
    lbas, extents = view.lbas(), view.extents()
    view.release()
    assert all(lbas[b] == -1 for lo, hi in HOLES for b in range(lo // BS, hi // BS))
    assert len(extents) >= 10


RANGES = [(0, 0), (0, SIZE), (BS + 3, 9 * BS), (2 * BS + 1, 5 * BS + 7), (SIZE - 1000, 0)]
REQUESTS = [(SIZE, 0), (7 * BS + 5, 1), (100, 2 * BS + 11), (3 * BS, 19 * BS), (SIZE, SIZE - 50)]


@pytest.mark.parametrize("name", sorted(PYTHON))
def test_each_kernel_equals_python_over_ranges(vol, name):
    fd, raw = fragmented(vol)
    kernel = kernels.load(name)
    if name in ARGS:
        kernel = kernel.with_args(ARGS[name])
    for start, length in RANGES:
        bind(vol, fd, kernel, start, length)
        end = SIZE if not length else min(SIZE, start + length)
        for n, off in REQUESTS:
            lo, hi = max(off, start), min(off + n, end)
            got = vol.pread(fd, n, off)
            if off + n <= start or off >= end:
                assert got == raw[off:off + n], (name, start, length, n, off)  # outside: raw data
            else:
                assert got == PYTHON[name](raw[lo:hi])[:n], (name, start, length, n, off)


@pytest.mark.parametrize("name", ["histogram", "crc32c", "opencsd_count_above"])
def test_the_interpreter_agrees(vol, name):
    fd, raw = fragmented(vol)
    bind(vol, fd, kernels.load(name, engine="interp"), BS + 3, 9 * BS)
    assert vol.pread(fd, 5 * BS, 2 * BS) == PYTHON[name](raw[2 * BS:7 * BS])


def test_grep_count_over_text(vol):
    lines = [b"%d,sensor-%d,%d" % (i, i % 7, i * 37 % 1000) for i in range(5000)]
    text = b"\n".join(lines) + b"\nsensor-3 last line without newline"
    fd = vol.open("/t", os.O_CREAT | os.O_RDWR, 0o644)
    vol.write(fd, text)
    bind(vol, fd, kernels.load("grep_count").with_args(b"sensor-3"))
    assert int.from_bytes(vol.pread(fd, len(text), 0), "little") == grep_count(text, b"sensor-3")
    assert int.from_bytes(vol.pread(fd, 5000, 777), "little") == grep_count(text[777:5777], b"sensor-3")


# -- the fadvise route --------------------------------------------------------------------------

def test_strided_reads_walk_the_file_and_stop_at_its_end(vol):
    fd, raw = fragmented(vol)
    bind(vol, fd, kernels.load("histogram"))
    stride = 5 * BS
    answers = []
    while data := vol.read(fd, stride):
        answers.append(data)
    assert answers == [PYTHON["histogram"](raw[i:i + stride]) for i in range(0, SIZE, stride)]
    assert vol.lseek(fd, 0, os.SEEK_CUR) == SIZE


def test_only_the_bound_description_computes(vol):
    fd, raw = fragmented(vol)
    other = vol.open("/f", os.O_RDONLY)
    shared = vol.dup(fd)
    bind(vol, fd, kernels.load("crc32c"))
    want = PYTHON["crc32c"](raw)
    assert vol.pread(fd, SIZE, 0) == vol.pread(shared, SIZE, 0) == want  # dup shares the description
    assert vol.pread(other, SIZE, 0) == raw
    assert vol.pread(fd, 0, 0) == b"" and vol.pread(fd, 10, SIZE) == b""


def test_normal_unbinds_and_a_new_kernel_replaces_the_old(vol):
    fd, raw = fragmented(vol)
    bind(vol, fd, kernels.load("crc32c"))
    bind(vol, fd, kernels.load("sum_u32"))
    assert vol.pread(fd, SIZE, 0) == PYTHON["sum_u32"](raw)
    assert vol.vfs.fs.viewed.count(0) < len(vol.vfs.fs.viewed)  # the snapshot pins its zones
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)
    assert vol.pread(fd, SIZE, 0) == raw
    assert not any(vol.vfs.fs.viewed)  # both snapshots released


def test_advice_values_and_errors(vol):
    fd, _ = fragmented(vol)
    kernel = kernels.load("crc32c")
    assert advice(kernel) == advice(kernel) >= 0x1000
    assert advice(kernel.with_args(b"x")) != advice(kernel)
    for bad in ((0, 0, 0x0FFF), (-1, 0, advice(kernel)), (0, -1, advice(kernel))):
        with pytest.raises(OSError) as info:
            vol.posix_fadvise(fd, *bad)
        assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        vol.posix_fadvise(vol.open("/", os.O_RDONLY), 0, 0, advice(kernel))
    assert info.value.errno == errno.EISDIR
    opencsd_event = kernels.load("opencsd_count_above", kind="write-event")
    with pytest.raises(OSError) as info:
        bind(vol, fd, opencsd_event)
    assert info.value.errno == errno.EINVAL


def test_accounting_per_call_per_kernel_and_per_volume(vol):
    fd, raw = fragmented(vol)
    kernel = kernels.load("histogram").with_args(b"")
    bind(vol, fd, kernel)
    before = vol.csd_stats()
    vol.pread(fd, SIZE, 0)
    vol.pread(fd, BS, 0)
    after = vol.csd_stats()
    assert kernel.stats.calls == after.calls - before.calls == 2
    assert kernel.stats.bytes_read == after.bytes_read - before.bytes_read == SIZE + BS
    assert kernel.stats.bytes_returned == after.bytes_returned - before.bytes_returned == 2 * 2048
    assert after.instructions - before.instructions == kernel.stats.instructions > SIZE
    binding = vol.vfs.csd.binding(vol._file(fd), None, "read-stream")
    assert (binding.last.bytes_read, binding.last.bytes_returned) == (BS, 2048)


# -- kinds: write-event and write-stream --------------------------------------------------------

def test_write_event_runs_after_each_write(vol):
    fd, _ = fragmented(vol)
    bind(vol, fd, kernels.load("crc32c", kind="write-event"))
    assert vol.csd_result(fd) == b""
    assert vol.pwrite(fd, b"hello, world", 1000) == 12
    assert vol.csd_result(fd) == struct.pack("<I", crc32c.crc32c(b"hello, world"))
    vol.lseek(fd, 5, os.SEEK_SET)
    vol.write(fd, b"abc")
    assert vol.csd_result(fd) == struct.pack("<I", crc32c.crc32c(b"abc"))
    other = vol.open("/f", os.O_RDWR)
    vol.pwrite(other, b"not seen", 0)  # another description: no event
    assert vol.csd_result(fd) == struct.pack("<I", crc32c.crc32c(b"abc"))
    with pytest.raises(OSError) as info:
        vol.csd_result(other)
    assert info.value.errno == errno.ENODATA


def test_write_stream_transforms_what_is_stored(vol):
    fd = vol.open("/log", os.O_CREAT | os.O_RDWR, 0o644)
    bind(vol, fd, load(asm=FRAME_ASM, kind="write-stream"))
    records = [b"first record", b"x" * 700, b"third"]
    for record in records:
        assert vol.write(fd, record) == len(record)  # the caller's count
    stored = b"".join(r + struct.pack("<Q", len(r)) for r in records)
    assert vol.lseek(fd, 0, os.SEEK_CUR) == len(stored)  # the offset moved past what was stored
    raw = vol.open("/log", os.O_RDONLY)
    assert vol.pread(raw, 10_000, 0) == stored
    bind(vol, fd, kernels.load("passthrough", kind="write-stream"), 4096, 0)
    vol.pwrite(fd, b"outside the range", 0)  # starts before the bound range: stored as is
    assert vol.pread(raw, 17, 0) == b"outside the range"


def test_failing_write_stream_writes_nothing(vol, caplog):
    fd, raw = fragmented(vol)
    bind(vol, fd, load(asm="mov %r0, -22\nexit", kind="write-stream"))
    with caplog.at_level(logging.WARNING, logger="zcsdfs.csd"), pytest.raises(OSError) as info:
        vol.pwrite(fd, b"never stored", 0)
    assert info.value.errno == errno.EIO
    assert "returned status -22" in caplog.text
    assert vol.pread(vol.open("/f", os.O_RDONLY), SIZE, 0) == raw


# -- snapshot isolation and GC ----------------------------------------------------------------

def test_bound_reader_keeps_its_snapshot_while_others_write_and_truncate(vol):
    fd, raw = fragmented(vol)
    fs = vol.vfs.fs
    bind(vol, fd, kernels.load("crc32c"))
    want = PYTHON["crc32c"](raw)
    view = vol.vfs.csd.binding(vol._file(fd), None, "read-stream").view
    pinned = {lba // fs.device.geometry.zone_size for lba in view.lbas() if lba >= 0}

    def writer():
        w = vol.open("/f", os.O_RDWR)
        rng = random.Random(7)
        for i in range(150):
            if i % 40 == 39:
                vol.ftruncate(w, rng.randrange(SIZE))
            else:
                vol.pwrite(w, rng.randbytes(BS), rng.randrange(SIZE // BS) * BS)
        vol.pwrite(w, bytes(SIZE), 0)  # every original block is garbage now
        vol.close(w)

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while thread.is_alive() or reads < 10:
        assert vol.pread(fd, SIZE, 0) == want
        reads += 1
    thread.join()
    assert vol.pread(vol.open("/f", os.O_RDONLY), SIZE, 0) == bytes(SIZE)
    assert vol.pread(fd, SIZE, 0) == want

    for _ in range(len(fs.writer.log_zones)):  # the snapshot's zones survive GC and checkpoints
        fs.gc(zones=1)
    fs.checkpoint()
    assert not any(fs.writer.role[z] is Role.FREE for z in pinned)
    assert vol.pread(fd, SIZE, 0) == want

    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)
    assert not any(fs.viewed)
    for _ in range(len(fs.writer.log_zones)):
        fs.gc(zones=1)
    fs.checkpoint()
    assert any(fs.writer.role[z] is Role.FREE for z in pinned)  # reclaimed once unbound
    assert fsck(fs.device).clean


# -- hostile kernels ----------------------------------------------------------------------------

HOSTILE = {
    "reads another file's block (OpenCSD ABI)": ("""
        mov %r1, 0
        mov %r2, 0
        mov %r3, 0
        mov %r4, %r10
        add %r4, -64
        mov %r5, 64
        call 2
        mov %r0, 0
        exit""", "EACCES"),
    "loops for minutes": ("mov %r0, 0\nmov %r1, 0x7fffffff\nsub %r1, 1\njne %r1, 0, -2\nexit", "ETIME"),
    "floods its output": ("""
        stdw [%r10-8], 0
        mov %r6, 0x7fffffff
    loop:
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        call 33
        sub %r6, 1
        jne %r6, 0, loop
        mov %r0, 0
        exit""", "E2BIG"),
    "reads outside its memory": ("ldxdw %r0, [%r1+4096]\nexit", "EFAULT"),
    "fails": ("mov %r0, -5\nexit", "EIO"),
}


@pytest.mark.parametrize("which", ["interp", "jit"])
@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_hostile_kernels_fail_the_read_with_eio(vol, caplog, what, which):
    fd, raw = fragmented(vol)
    source, reason = HOSTILE[what]
    vol.vfs.csd.budget = 3_000_000
    bind(vol, fd, load(asm=source, engine=which, name=f"hostile-{reason}"))
    with caplog.at_level(logging.WARNING, logger="zcsdfs.csd"), pytest.raises(OSError) as info:
        vol.pread(fd, SIZE, 0)
    assert info.value.errno == errno.EIO
    assert f"kernel hostile-{reason}" in caplog.text and reason in caplog.text
    assert vol.csd_stats().failures == 1
    assert vol.pread(vol.open("/f", os.O_RDONLY), SIZE, 0) == raw
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)
    vol.sync()
    assert fsck(vol.device).clean


# -- the xattr route ------------------------------------------------------------------------------

READ = "user.process.csd_read_stream"
EVENT = "user.process.csd_write_event"
STREAM = "user.process.csd_write_stream"
RESULT = "user.process.csd_write_event_result"


def fails(code: int, fn, *args):
    with pytest.raises(OSError) as info:
        fn(*args)
    assert info.value.errno == code, (fn.__name__, args, info.value)


def test_xattr_binds_a_kernel_stored_in_the_volume_for_the_process(vol):
    fd, raw = fragmented(vol)
    kino = store_kernel(vol, "crc32c")
    other = vol.open("/f", os.O_RDONLY)
    vol.setxattr("/f", READ, str(kino).encode())
    assert vol.getxattr("/f", READ) == str(kino).encode()
    assert vol.listxattr("/f") == [READ]
    assert vol.fs.listxattr(vol.stat("/f").st_ino) == []  # never persisted
    want = PYTHON["crc32c"](raw)
    assert vol.pread(fd, SIZE, 0) == vol.pread(other, SIZE, 0) == want  # every description of the process

    stranger = Caller(0, 0, pid=os.getpid() + 100_000)
    vfs, ino = vol.vfs, vol.stat("/f").st_ino
    theirs = vfs.open(stranger, "/f", vfs.root, os.O_RDONLY)
    assert vfs.read(theirs, SIZE, 0, caller=stranger) == raw  # another process reads the data
    fails(errno.ENODATA, vfs.getxattr, stranger, ino, READ)
    vfs.close(theirs)
    fails(errno.ENODATA, vfs.setxattr, stranger, ino, READ, str(kino).encode(), 0)  # has it not open

    vol.removexattr("/f", READ)
    assert vol.pread(fd, 100, 0) == raw[:100] and vol.listxattr("/f") == []
    fails(errno.ENODATA, vol.removexattr, "/f", READ)


def test_xattr_binding_goes_with_the_last_close(vol):
    fd, raw = fragmented(vol)
    kino = store_kernel(vol, "sum_u32")
    second = vol.open("/f", os.O_RDONLY)
    vol.setxattr("/f", READ, b"%d\n" % kino)
    vol.close(fd)
    assert vol.pread(second, SIZE, 0) == PYTHON["sum_u32"](raw)
    vol.close(second)
    assert not any(vol.vfs.fs.viewed)
    fails(errno.ENODATA, vol.getxattr, "/f", READ)
    again = vol.open("/f", os.O_RDONLY)
    assert vol.pread(again, SIZE, 0) == raw


def test_xattr_error_table(vol):
    fd, _ = fragmented(vol)
    kino = store_kernel(vol, "crc32c")
    text = vol.open("/notes", os.O_CREAT | os.O_WRONLY, 0o644)
    vol.write(text, b"not an ELF object")
    closed_fd = vol.open("/other", os.O_CREAT | os.O_WRONLY, 0o644)
    vol.close(closed_fd)
    fails(errno.ENODATA, vol.setxattr, "/other", READ, str(kino).encode())  # not open here
    fails(errno.ENODATA, vol.getxattr, "/f", READ)  # nothing bound
    fails(errno.ENOENT, vol.setxattr, "/f", READ, b"999999")  # no such kernel inode
    fails(errno.EINVAL, vol.setxattr, "/f", READ, b"crc32c")
    fails(errno.EINVAL, vol.setxattr, "/f", READ, str(vol.stat("/").st_ino).encode())  # a directory
    fails(errno.ENOEXEC, vol.setxattr, "/f", READ, str(vol.stat("/notes").st_ino).encode())
    fails(errno.ENODATA, vol.setxattr, "/f", READ, str(kino).encode(), os.XATTR_REPLACE)
    vol.setxattr("/f", READ, str(kino).encode(), os.XATTR_CREATE)
    fails(errno.EEXIST, vol.setxattr, "/f", READ, str(kino).encode(), os.XATTR_CREATE)
    vol.setxattr("/f", READ, str(kino).encode(), os.XATTR_REPLACE)
    fails(errno.EPERM, vol.setxattr, "/f", RESULT, b"1")
    fails(errno.EOPNOTSUPP, vol.setxattr, "/f", "user.process.other", b"1")
    fails(errno.ENODATA, vol.getxattr, "/f", "user.process.other")
    fails(errno.ENODATA, vol.getxattr, "/f", RESULT)  # no write-event kernel
    vol.setxattr("/f", "user.plain", b"kept")  # other names still reach the lfs
    assert sorted(vol.listxattr("/f")) == ["user.plain", READ]


def test_xattr_write_event_and_write_stream(vol):
    fd, _ = fragmented(vol)
    vol.setxattr("/f", EVENT, str(store_kernel(vol, "crc32c", "/crc.o")).encode())
    assert vol.getxattr("/f", RESULT) == b""
    vol.pwrite(fd, b"some new bytes", 5)
    assert vol.getxattr("/f", RESULT) == struct.pack("<I", crc32c.crc32c(b"some new bytes"))
    assert sorted(vol.listxattr("/f")) == [EVENT, RESULT]

    vol.setxattr("/f", STREAM, str(store_kernel(vol, "crc32c", "/crc2.o")).encode())
    assert vol.pwrite(fd, b"replaced by its checksum", 0) == 24
    checksum = struct.pack("<I", crc32c.crc32c(b"replaced by its checksum"))
    assert vol.pread(fd, 4, 0) == checksum
    assert vol.getxattr("/f", RESULT) == struct.pack("<I", crc32c.crc32c(checksum))  # the event sees what was stored
