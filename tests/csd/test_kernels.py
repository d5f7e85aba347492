"""The example kernels and the storage helpers they use.

Each kernel runs from its committed object in every engine, over input memory
and over a file made of several extents, and must agree with the same
computation done on the host (numpy, crc32c).
"""

from __future__ import annotations

import errno
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import crc32c
import numpy as np
import pytest

from zcsdfs.csd import engine, isa, kernels, stdlib
from zcsdfs.csd.elf import load_elf
from zcsdfs.csd.errors import HelperFault, KernelFailed, LimitExceeded
from zcsdfs.csd.fileview import MemoryFile
from zcsdfs.csd.kernels import build
from zcsdfs.csd.program import Program
from zcsdfs.csd.stdlib import StorageEnv

ENGINES = ["interp", "jit"]

rng = np.random.default_rng(20240501)


def random_bytes(n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def u32s(data: bytes) -> np.ndarray:
    return np.frombuffer(data[:len(data) // 4 * 4], dtype="<u4")


def split(data: bytes, cuts: int) -> list[memoryview]:
    """``data`` as ``cuts + 1`` extents of random sizes (some empty)."""
    points = sorted(rng.integers(0, len(data) + 1, cuts))
    view = memoryview(data)
    return [view[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def run(kernel: str, which: str, mem=None, env=None, *, file=False):
    vm = engine.load(kernels.program(kernel, file=file), stdlib.storage_helpers(), engine=which)
    return vm.run(None if mem is None else bytearray(mem), env=env)


def file_env(data: bytes, cuts: int = 5, **kwargs) -> StorageEnv:
    """A file of ``len(data)`` bytes stored as extents padded to whole blocks."""
    pad = bytes(-len(data) % 4096)
    return StorageEnv(split(data + pad, cuts), file_size=len(data), **kwargs)


# -- over input memory ------------------------------------------------------------

MEMORY_SIZES = [0, 1, 3, 4, 5, 1000, 4099]


@pytest.mark.parametrize("which", ENGINES)
def test_sum_u32(which):
    for n in MEMORY_SIZES:
        data = random_bytes(n)
        assert run("sum_u32", which, data) == int(u32s(data).sum(dtype=np.uint64))
    assert run("sum_u32", which, b"\xff" * 4096) == 1024 * 0xFFFFFFFF  # no 32-bit wrap-around


@pytest.mark.parametrize("which", ENGINES)
def test_histogram(which):
    for n in MEMORY_SIZES:
        data = random_bytes(n)
        env = StorageEnv()
        assert run("histogram", which, data, env) == n
        counts = np.frombuffer(env.output, dtype="<u8")
        assert counts.tolist() == np.bincount(np.frombuffer(data, np.uint8), minlength=256).tolist()


@pytest.mark.parametrize("which", ENGINES)
def test_count_above(which):
    for n in MEMORY_SIZES:
        values = random_bytes(n)
        for threshold in (0, 1 << 31, int(rng.integers(0, 1 << 32)), 0xFFFFFFFF):
            data = threshold.to_bytes(4, "little") + values
            assert run("count_above", which, data) == int((u32s(values) > threshold).sum())
    assert run("count_above", which, b"\1\2") == 0  # no threshold: nothing counted


@pytest.mark.parametrize("which", ENGINES)
def test_crc32c(which):
    for n in MEMORY_SIZES:
        data = random_bytes(n)
        assert run("crc32c", which, data) == crc32c.crc32c(data)
    assert run("crc32c", which, b"123456789") == 0xE3069283  # the standard check value


# -- over a bound file (read_stream entry points) -------------------------------

FILE_SIZES = [0, 10, 4096, 65536 + 4097, 150_001]


@pytest.mark.parametrize("which", ENGINES)
def test_sum_u32_file(which):
    for n in FILE_SIZES:
        data = random_bytes(n)
        env = file_env(data)
        assert run("sum_u32", which, env=env, file=True) == 0
        assert env.output == int(u32s(data).sum(dtype=np.uint64)).to_bytes(8, "little")
        assert env.bytes_read == n


@pytest.mark.parametrize("which", ENGINES)
def test_histogram_file(which):
    for n in FILE_SIZES[:4]:
        data = random_bytes(n)
        env = file_env(data)
        assert run("histogram", which, env=env, file=True) == 0
        counts = np.frombuffer(env.output, dtype="<u8")
        assert counts.tolist() == np.bincount(np.frombuffer(data, np.uint8), minlength=256).tolist()


@pytest.mark.parametrize("which", ENGINES)
def test_count_above_file(which):
    data = random_bytes(150_001)
    values = u32s(data)
    for threshold in (0, 1 << 20, 0xF0000000, None):
        args = None if threshold is None else threshold.to_bytes(4, "little")
        env = file_env(data)
        assert run("count_above", which, args, env, file=True) == 0
        expected = (values > (0x7FFFFFFF if threshold is None else threshold)).sum()
        assert int.from_bytes(env.output, "little") == int(expected)


@pytest.mark.parametrize("which", ENGINES)
def test_crc32c_file(which):
    for n in (0, 1, 65536 + 4097):
        data = random_bytes(n)
        env = file_env(data, cuts=3)
        assert run("crc32c", which, env=env, file=True) == 0
        assert env.output == crc32c.crc32c(data).to_bytes(4, "little")


# -- the limits a kernel runs under ----------------------------------------------


@pytest.mark.parametrize("which", ENGINES)
def test_output_beyond_limit_stops_the_kernel(which):
    with pytest.raises(LimitExceeded, match="limit of 2047 bytes") as info:
        run("histogram", which, b"abc", StorageEnv(output_limit=2047))
    assert info.value.errno == 7  # E2BIG
    env = StorageEnv(output_limit=2048)
    assert run("histogram", which, b"abc", env) == 3 and len(env.output) == 2048


@pytest.mark.parametrize("which", ENGINES)
def test_storage_helper_without_env_faults(which):
    with pytest.raises(HelperFault, match="without a StorageEnv"):
        run("sum_u32", which, file=True)


@pytest.mark.parametrize("which", ENGINES)
def test_block_and_file_size(which):
    I = isa.Instruction
    program = Program([
        I(isa.JMP | isa.CALL, imm=stdlib.BLOCK_SIZE),
        I(isa.ALU64 | isa.MOV | isa.X, dst=6, src=0),
        I(isa.ALU64 | isa.MUL | isa.K, dst=6, imm=1000),
        I(isa.JMP | isa.CALL, imm=stdlib.FILE_SIZE),
        I(isa.ALU64 | isa.ADD | isa.X, dst=0, src=6),
        I(isa.JMP | isa.EXIT),
    ])
    vm = engine.load(program, stdlib.storage_helpers(), engine=which)
    assert vm.run(env=StorageEnv([bytes(8192)], block_size=512, file_size=8000)) == 512_000 + 8000


def test_read_into_clips_to_the_file_and_crosses_extents():
    data = bytes(range(256)) * 10
    env = StorageEnv([data[:100], (bytearray(data), 100, 0), memoryview(data)[100:2000], data[2000:]],
                     file_size=2500)
    for offset, length in ((0, 2560), (50, 100), (99, 2), (1999, 300), (2499, 10), (2500, 5), (10**12, 1)):
        dst = bytearray(length)
        n = env.read_into(offset, memoryview(dst))
        expected = data[offset:min(offset + length, 2500)]
        assert n == len(expected) and dst[:n] == expected
    assert env.bytes_read == 2500 + 100 + 2 + 300 + 1


def test_env_refuses_inconsistent_files():
    with pytest.raises(OSError, match="beyond its extents"):
        StorageEnv([b"abc"], file_size=4)
    with pytest.raises(OSError, match="outside its 3-byte buffer"):
        StorageEnv([(b"abc", 2, 2)])
    env = StorageEnv([bytearray(b"abc")])
    with pytest.raises(TypeError):
        env.extents[0][0] = 1  # the kernel's view of the device is read-only


def test_helper_numbers_leave_room_for_opencsd_and_conformance():
    numbers = [h.number for h in stdlib.storage_helpers()]
    assert numbers == [stdlib.READ, stdlib.RETURN_DATA, stdlib.BLOCK_SIZE, stdlib.FILE_SIZE, stdlib.DEBUG]
    assert min(numbers) > 8
    header = (build.INCLUDE_DIR / "zcsdfs.h").read_text()
    for h in stdlib.HELPERS:
        assert f"(*{h.name})(" in header and f"= (void *){h.number};" in header


# -- the committed objects match their sources ---------------------------------------


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang with the BPF target is not installed")
def test_committed_objects_match_a_fresh_build(tmp_path):
    built = build.build(tmp_path)
    assert [p.stem for p in built] == sorted(kernels.KERNELS)
    for path in built:
        fresh, committed = path.read_bytes(), kernels.object_path(path.stem).read_bytes()
        entries = {"opencsd_count_above": ["main"]}.get(path.stem, [f"{path.stem}_file"])
        if path.stem in kernels.MEMORY_KERNELS:
            entries.append(path.stem)
        for entry in entries:
            assert load_elf(fresh, name=entry) == load_elf(committed, name=entry), entry


# -- the shipped kernels through the registry, over bound files ---------------------------

BS = 4096


def bound_file(data: bytes, *, holes=(), cuts: int = 7) -> MemoryFile:
    """``data`` as a file with zeroed hole blocks (LBA -1) and extents cut at random points."""
    data = bytearray(data)
    for block in holes:
        data[block * BS:(block + 1) * BS] = bytes(len(data[block * BS:(block + 1) * BS]))
    blocks = -(-len(data) // BS)
    lbas = [-1 if b in holes else 1000 + 3 * b for b in range(blocks)]
    return MemoryFile(split(bytes(data), cuts), lbas=lbas)


class ReaderView:
    """A file view reached only through ``read`` (as an lfs FrozenView is)."""

    def __init__(self, file: MemoryFile):
        self._file = file
        self.ino, self.size, self.block_size = file.ino, file.size, file.block_size
        self.zone_size, self.zone_capacity = file.zone_size, file.zone_capacity

    def lbas(self):
        return self._file.lbas()

    def read(self, offset, size):
        return self._file.read(offset, size)


def u64(output: bytes) -> int:
    assert len(output) == 8
    return int.from_bytes(output, "little")


def lines(data: bytes) -> list[bytes]:
    found = data.split(b"\n")
    return found[:-1] if found[-1] == b"" else found


def column_stats(data: bytes, record: int, at: int, width: int, signed: bool) -> bytes:
    values = [int.from_bytes(data[r + at:r + at + width], "little", signed=signed)
              for r in range(0, len(data) - record + 1, record)]
    mask = (1 << 64) - 1
    if not values:
        return bytes(32)
    return b"".join((v & mask).to_bytes(8, "little") for v in (len(values), sum(values), min(values), max(values)))


def bloom_filter(keys: list[bytes], m_bytes: int, k: int) -> bytearray:
    bits = bytearray(m_bytes)
    for key in keys:
        for bit in bloom_bits(key, m_bytes * 8, k):
            bits[bit // 8] |= 1 << (bit % 8)
    return bits


def bloom_bits(key: bytes, m: int, k: int) -> list[int]:
    h1 = 0xCBF29CE484222325
    for byte in key:
        h1 = ((h1 ^ byte) * 0x100000001B3) & ((1 << 64) - 1)
    h2 = (h1 >> 32) | 1
    return [((h1 + i * h2) & ((1 << 64) - 1)) % m for i in range(k)]


def bloom_args(keys: list[bytes], k: int) -> bytes:
    return k.to_bytes(4, "little") + b"".join(len(key).to_bytes(2, "little") + key for key in keys)


SIZES = [0, 1, 4095, 4096, 3 * 4096 + 7, 70_001]
RANGES = [(0, None), (1, 5000), (4095, 4098), (10_000, 10**9), (80_000, 10)]


def views(data: bytes):
    """The same data as a MemoryFile (with a hole) and as a read-only reader view."""
    holes = (1,) if len(data) > 2 * BS else ()
    file = bound_file(data, holes=holes)
    zeroed = file.read(0, file.size)
    return [(file, zeroed), (ReaderView(file), zeroed)]


@pytest.mark.parametrize("which", ENGINES)
def test_shipped_kernels_match_python_over_files_and_ranges(which):
    load = {name: kernels.load(name, engine=which) for name in kernels.KERNELS}
    for n in SIZES:
        text = bytes(rng.choice(list(b"ab\nxyz "), n).astype(np.uint8))
        for view, data in views(random_bytes(n)) + views(text):
            for offset, length in RANGES:
                part = data[offset:] if length is None else data[offset:offset + length]

                def out(name, args=b""):
                    return load[name].run(view, offset, length, args=args)

                assert out("passthrough") == part
                assert u64(out("sum_u32")) == int(u32s(part).sum(dtype=np.uint64))
                assert u64(out("count_above", (1 << 30).to_bytes(4, "little"))) == int((u32s(part) > 1 << 30).sum())
                assert out("crc32c") == crc32c.crc32c(part).to_bytes(4, "little")
                hist = np.frombuffer(out("histogram"), "<u8")
                assert hist.tolist() == np.bincount(np.frombuffer(part, np.uint8), minlength=256).tolist()
                for pattern in (b"", b"a", b"xyz", b"ab a"):
                    assert u64(out("grep_count", pattern)) == sum(pattern in line for line in lines(part))
                assert u64(out("opencsd_count_above")) == int((u32s(part) > 0x7FFFFFFF).sum())


@pytest.mark.parametrize("which", ENGINES)
def test_columns_kernel(which):
    kernel = kernels.load("columns", engine=which)
    data = random_bytes(50_003)
    file = bound_file(data, holes=(2,))
    data = file.read(0, file.size)
    assert kernel.run(file) == column_stats(data, 4, 0, 4, False)  # no arguments: a u32 column
    for record, at, width, signed in ((4, 0, 4, False), (12, 4, 8, True), (7, 3, 2, True), (7, 6, 1, False),
                                      (65536, 5, 8, False), (3, 1, 2, False)):
        args = struct.pack("<IIBB", record, at, width, signed)
        for offset, length in ((0, None), (5, 20_000), (49_990, 100)):
            part = data[offset:] if length is None else data[offset:offset + length]
            assert kernel.run(file, offset, length, args=args) == column_stats(part, record, at, width, signed)
    for bad in ((0, 0, 4, 0), (4, 1, 4, 0), (8, 0, 3, 0), (4, 0, 4, 2), (65537, 0, 1, 0)):
        with pytest.raises(KernelFailed, match="status -22") as info:
            kernel.run(file, args=struct.pack("<IIBB", *bad))
        assert info.value.errno == errno.EIO


@pytest.mark.parametrize("which", ENGINES)
def test_bloom_kernel(which):
    kernel = kernels.load("bloom", engine=which)
    members = [b"key%d" % i for i in range(300)]
    others = [b"other%d" % i for i in range(300)] + [b""]
    for k in (1, 3, 7):
        bits = bloom_filter(members, 1024, k)
        file = bound_file(bytes(bits), cuts=3)
        call = kernel.call(file, args=bloom_args(members + others, k))
        answers = list(call.output)
        assert answers[:300] == [1] * 300  # no false negatives
        m = len(bits) * 8
        expected = [int(all(bits[b // 8] >> (b % 8) & 1 for b in bloom_bits(key, m, k))) for key in others]
        assert answers[300:] == expected
        assert sum(expected) < 150  # a filter, not a tautology
        assert call.bytes_read <= k * len(answers)  # only the probed bytes moved
    for bad in (b"", bloom_args([b"a"], 0), bloom_args([b"a"], 33), bloom_args([b"abc"], 2)[:-1]):
        with pytest.raises(KernelFailed):
            kernel.run(bound_file(bytes(16)), args=bad)


def test_the_example_runs():
    """examples/csd_kernels.py, as a user runs it."""
    example = Path(__file__).resolve().parents[2] / "examples" / "csd_kernels.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "above 2^31 (OpenCSD ABI): 9999" in done.stdout
    assert "stopped: insn 2: time limit of 0.1 s exceeded" in done.stdout
