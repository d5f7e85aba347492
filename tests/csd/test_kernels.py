"""The example kernels and the storage helpers they use.

Each kernel runs from its committed object in every engine, over input memory
and over a file made of several extents, and must agree with the same
computation done on the host (numpy, crc32c).
"""

from __future__ import annotations

import shutil

import crc32c
import numpy as np
import pytest

from zcsdfs.csd import engine, isa, kernels, stdlib
from zcsdfs.csd.elf import load_elf
from zcsdfs.csd.errors import HelperFault, LimitExceeded
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
        assert run("sum_u32", which, env=env, file=True) == int(u32s(data).sum(dtype=np.uint64))
        assert env.bytes_read == n and env.output == b""


@pytest.mark.parametrize("which", ENGINES)
def test_histogram_file(which):
    for n in FILE_SIZES[:4]:
        data = random_bytes(n)
        env = file_env(data)
        assert run("histogram", which, env=env, file=True) == n
        counts = np.frombuffer(env.output, dtype="<u8")
        assert counts.tolist() == np.bincount(np.frombuffer(data, np.uint8), minlength=256).tolist()


@pytest.mark.parametrize("which", ENGINES)
def test_count_above_file(which):
    data = random_bytes(150_001)
    values = u32s(data)
    for threshold in (0, 1 << 20, 0xF0000000):
        args = threshold.to_bytes(4, "little")
        assert run("count_above", which, args, file_env(data), file=True) == int((values > threshold).sum())
    assert run("count_above", which, env=file_env(data), file=True) == int((values > 0x7FFFFFFF).sum())


@pytest.mark.parametrize("which", ENGINES)
def test_crc32c_file(which):
    for n in (0, 1, 65536 + 4097):
        data = random_bytes(n)
        assert run("crc32c", which, env=file_env(data, cuts=3), file=True) == crc32c.crc32c(data)


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
    assert numbers == [stdlib.READ, stdlib.RETURN_DATA, stdlib.BLOCK_SIZE, stdlib.FILE_SIZE]
    assert min(numbers) > 8
    header = (build.KERNELS_DIR / "zcsdfs.h").read_text()
    for h in stdlib.HELPERS:
        assert f"(*{h.name})(" in header and f"= (void *){h.number};" in header


# -- the committed objects match their sources ---------------------------------------


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang with the BPF target is not installed")
def test_committed_objects_match_a_fresh_build(tmp_path):
    built = build.build(tmp_path)
    assert [p.stem for p in built] == sorted(kernels.KERNELS)
    for path in built:
        fresh, committed = path.read_bytes(), kernels.object_path(path.stem).read_bytes()
        for entry in (path.stem, f"{path.stem}_file"):
            assert load_elf(fresh, name=entry) == load_elf(committed, name=entry), entry
