"""The kernel registry: loading and caching, kinds, stats, budgets and hostile kernels."""

from __future__ import annotations

import errno
import logging
import threading
import uuid

import pytest

from zcsdfs.csd import kernels, limits, load, registry
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.errors import (
    BudgetExceeded, DeadlineExceeded, ElfError, KernelFailed, LimitExceeded, MemoryFault, ProgramRefused,
)
from zcsdfs.csd.fileview import MemoryFile

ENGINES = ["interp", "jit"]
DATA = bytes(range(256)) * 40  # 10240 bytes

# r0 = file size, returned as a u64 through the stack.
FILE_SIZE_ASM = """
    call 35
    stxdw [%r10-8], %r0
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    call 33
    mov %r0, 0
    exit
"""


def test_same_content_gives_the_same_kernel(tmp_path):
    path = kernels.object_path("crc32c")
    by_path = load(path)
    assert load(path.read_bytes()) is by_path
    assert load(bytearray(path.read_bytes())) is by_path
    copy = tmp_path / "copy.o"
    copy.write_bytes(path.read_bytes())
    assert load(copy) is by_path
    by_text = load(asm=FILE_SIZE_ASM)
    assert by_text is load(asm=FILE_SIZE_ASM) is load(assemble(FILE_SIZE_ASM), name=by_text.name)
    assert load(asm=FILE_SIZE_ASM, kind="write-event") is not load(asm=FILE_SIZE_ASM)


def test_kind_comes_from_the_section_and_can_be_overridden():
    path = kernels.object_path("sum_u32")  # csd/memory and csd/read_stream
    kernel = load(path)
    assert (kernel.name, kernel.kind, kernel.abi) == ("sum_u32_file", "read-stream", "zcsdfs")
    assert load(path, name="sum_u32").name == "sum_u32"
    assert load(path, kind="write-stream").kind == "write-stream"
    assert load(kernels.object_path("opencsd_count_above")).abi == "opencsd"
    assert load(asm=FILE_SIZE_ASM).kind == "read-stream"
    with pytest.raises(ValueError, match="unknown kernel kind"):
        load(path, kind="read")
    with pytest.raises(ElfError, match="no function named nope") as info:
        load(path, name="nope")
    assert info.value.errno == errno.ENOEXEC


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(ElfError, match="not an ELF object"):
        load(b"\0" * 16)
    with pytest.raises(ProgramRefused) as info:
        load(asm="mov %r0, %r5\nexit")  # r5 uninitialised
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match="unknown engine"):
        load(asm=FILE_SIZE_ASM, engine="gpu")
    assert registry.default_engine() == "jit"  # llvmlite is a dependency


@pytest.mark.parametrize("which", ENGINES)
def test_range_is_the_kernels_file(which):
    kernel = load(asm=FILE_SIZE_ASM, engine=which)
    file = MemoryFile([DATA])
    for offset, length, size in ((0, None, 10240), (100, 50, 50), (10_000, 10**6, 240), (20_000, 5, 0)):
        assert int.from_bytes(kernel.run(file, offset, length), "little") == size


@pytest.mark.parametrize("which", ENGINES)
def test_stats_count_every_run(which):
    kernel = kernels.load("histogram", engine=which).with_args(b"")
    file = MemoryFile([DATA[:5000], DATA[5000:]])
    first = kernel.call(file)
    second = kernel.call(file, 1000, 10)
    assert first.bytes_read == 10240 and second.bytes_read == 10
    assert first.bytes_returned == second.bytes_returned == 2048
    assert first.instructions > 10240 > second.instructions > 0
    stats = kernel.stats
    assert (stats.calls, stats.failures, stats.bytes_read, stats.bytes_returned) == (2, 0, 10250, 4096)
    assert stats.instructions == first.instructions + second.instructions
    assert stats.seconds >= first.seconds + second.seconds > 0
    with pytest.raises(LimitExceeded):
        kernel.run(file, output_limit=100)
    assert (kernel.stats.calls, kernel.stats.failures, kernel.stats.bytes_returned) == (3, 1, 4096)


def test_with_args_shares_the_code_not_the_stats():
    kernel = kernels.load("count_above")
    strict = kernel.with_args((200).to_bytes(4, "little"))
    file = MemoryFile([DATA])
    values = [int.from_bytes(DATA[i:i + 4], "little") for i in range(0, len(DATA), 4)]
    assert int.from_bytes(kernel.run(file), "little") == sum(v > 0x7FFFFFFF for v in values)
    assert int.from_bytes(strict.run(file), "little") == sum(v > 200 for v in values)
    assert strict.digest == kernel.digest and strict.stats.calls == 1


def test_engines_agree():
    kernel = kernels.load("crc32c")
    file = MemoryFile([DATA])
    assert kernel.run(file, engine="interp") == kernel.run(file, engine="jit") == kernel.run(file)
    with pytest.raises(ValueError, match="unknown engine"):
        kernel.run(file, engine="gpu")


# -- hostile kernels ---------------------------------------------------------------------

@pytest.mark.parametrize("which", ENGINES)
def test_a_loop_with_no_way_out_is_refused_at_load(which):
    with pytest.raises(ProgramRefused, match="insn 1: a loop with no way out") as info:
        load(asm="mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit", engine=which)
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize("which", ENGINES)
def test_a_long_loop_exhausts_the_budget(which):
    kernel = load(asm="mov %r0, 0\nmov %r1, 0x7fffffff\nsub %r1, 1\njne %r1, 0, -2\nexit", engine=which)
    with pytest.raises(BudgetExceeded, match="budget of 5000 exhausted") as info:
        kernel.run(MemoryFile([DATA]), budget=5000)
    assert info.value.errno == errno.ETIME
    assert kernel.stats.failures >= 1


LONG_LOOP = "mov %r0, 0\nmov %r1, 0x7fffffff\nsub %r1, 1\njne %r1, 0, -2\nexit"  # 4G instructions
HELPER_LOOP = """
    mov %r6, 0x7fffffff
loop:
    mov %r1, 0
    mov %r2, %r10
    add %r2, -8
    mov %r3, 0
    call 32
    sub %r6, 1
    jne %r6, 0, loop
    mov %r0, 0
    exit"""  # zcsd_read of 0 bytes: a Python helper call in every iteration


@pytest.mark.parametrize("which", ENGINES)
def test_a_runaway_kernel_stops_within_the_default_limits(which):
    """Minutes of work over a small file: stopped by the budget or the deadline
    of the registry's rule (about a second either way), never left to run."""
    kernel = load(asm=LONG_LOOP, engine=which, name="runaway")
    with pytest.raises((BudgetExceeded, DeadlineExceeded)) as info:
        kernel.run(MemoryFile([DATA]))
    assert info.value.errno == errno.ETIME
    assert info.value.pc in (2, 3)
    assert "budget of" in str(info.value) or "time limit of" in str(info.value)


@pytest.mark.parametrize("which", ENGINES)
def test_the_deadline_stops_a_loop_of_helper_calls(which):
    kernel = load(asm=HELPER_LOOP, engine=which)
    with pytest.raises(DeadlineExceeded, match="time limit of 0.05 s exceeded") as info:
        kernel.run(MemoryFile([DATA]), budget=1 << 50, timeout=0.05)
    assert info.value.errno == errno.ETIME
    assert kernel.stats.failures == 1 and kernel.stats.instructions > 0


@pytest.mark.parametrize("which", ENGINES)
def test_the_deadline_stops_a_plain_loop(which):
    kernel = load(asm=LONG_LOOP, engine=which)
    with pytest.raises(DeadlineExceeded, match="time limit of 0.05 s exceeded"):
        kernel.run(MemoryFile([DATA]), budget=1 << 50, timeout=0.05)


def test_limits_scale_with_the_bytes_to_read():
    small, large = limits.for_bytes(0), limits.for_bytes(1 << 20)
    assert small == limits.Limits(limits.BASE_BUDGET, limits.BASE_TIMEOUT)
    assert large.max_insns == small.max_insns + 64 * (1 << 20) and large.timeout > small.timeout
    assert limits.for_bytes(10, max_insns=5, timeout=0.5) == limits.Limits(5, 0.5)
    for n in (0, 1 << 20, 1 << 40):  # compiled code honours the registry's deadlines through the budget
        rule = limits.for_bytes(n)
        assert not limits.needs_clock(rule.max_insns, rule.timeout)
    assert limits.needs_clock(1 << 50, 0.05) and not limits.needs_clock(1 << 50, None)
    for bad in ({"max_insns": 0}, {"max_insns": -1}, {"timeout": 0}, {"timeout": -1.0}, {"timeout": float("nan")}):
        with pytest.raises(ValueError):
            limits.for_bytes(10, **bad)


@pytest.mark.parametrize("which", ENGINES)
def test_budget_scales_with_the_bytes_to_read(which, monkeypatch):
    # Loops 8 times per byte of its file (about 24 instructions per byte).
    kernel = load(asm="""
        call 35
        lsh %r0, 3
    loop:
        jeq %r0, 0, done
        sub %r0, 1
        ja loop
    done:
        exit""", engine=which)
    monkeypatch.setattr(limits, "BASE_BUDGET", 1000)
    file = MemoryFile([DATA])
    kernel.run(file)  # 24 per byte fits in 64 per byte
    with pytest.raises(BudgetExceeded):
        kernel.run(file, budget=1000 + 16 * len(DATA))


def test_default_budget_fits_a_256_mib_histogram():
    call = kernels.load("histogram").call(MemoryFile([DATA * 10]))
    per_byte = call.instructions / call.bytes_read
    assert per_byte * (256 << 20) > 1 << 30  # a fixed 2^30 budget would stop it
    assert per_byte < limits.INSTRUCTIONS_PER_BYTE  # the scaled one does not


@pytest.mark.parametrize("which", ENGINES)
def test_huge_output_is_stopped(which):
    kernel = kernels.load("passthrough", engine=which)
    big = MemoryFile([bytes(3 << 20)])
    assert len(kernel.run(big, 0, 2 << 20)) == 2 << 20  # the range itself always fits
    with pytest.raises(LimitExceeded, match="limit of 1000 bytes") as info:
        kernel.run(big, output_limit=1000)
    assert info.value.errno == errno.E2BIG


@pytest.mark.parametrize("which", ENGINES)
def test_negative_status_and_memory_faults(which):
    with pytest.raises(KernelFailed, match="returned status -5") as info:
        load(asm="mov %r0, -5\nexit", engine=which).run(MemoryFile([DATA]))
    assert info.value.errno == errno.EIO and info.value.status == -5
    assert load(asm="mov32 %r0, 7\nexit", engine=which).run(MemoryFile([DATA])) == b""
    with pytest.raises(MemoryFault) as info:  # reads past the argument blob
        load(asm="ldxdw %r0, [%r1+64]\nexit", engine=which).run(MemoryFile([DATA]), args=b"short")
    assert info.value.errno == errno.EFAULT


@pytest.mark.parametrize("which", ENGINES)
def test_debug_helper_logs_to_the_csd_logger(which, caplog):
    kernel = load(asm="""
        stdw [%r10-8], 0
        stw [%r10-8], 0x21696820
        stb [%r10-8], 0x68
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        call 36
        mov %r0, 0
        exit""", name="talker", engine=which)
    with caplog.at_level(logging.DEBUG, logger="zcsdfs.csd"):
        kernel.run(MemoryFile([DATA]))
    assert [r.getMessage() for r in caplog.records] == ["kernel talker: hhi!"]


# -- loading ---------------------------------------------------------------------------------

def test_a_string_is_a_path_and_assembly_needs_asm(tmp_path, monkeypatch):
    path = kernels.object_path("crc32c")
    assert load(str(path)) is load(path)
    monkeypatch.chdir(path.parent)
    assert load("crc32c.o") is load(path)  # a relative name, as the docs show
    with pytest.raises(FileNotFoundError, match="load\\(asm=") as info:
        load("missing.o")
    assert info.value.errno == errno.ENOENT and info.value.filename == "missing.o"
    with pytest.raises(FileNotFoundError):
        load("mov %r0, 0\nexit")
    assert load(asm="mov %r0, 0\nexit").run(MemoryFile([DATA])) == b""
    with pytest.raises(TypeError):
        load(path, asm="mov %r0, 0\nexit")
    with pytest.raises(TypeError):
        load()


def _unique(text: str) -> str:
    """Assembly no cache has seen (every load compiles)."""
    return f"mov %r9, {uuid.uuid4().int & 0x7FFFFFFF}\n" + text


@pytest.mark.parametrize("stage", ["verify", "compile"])
def test_a_small_kernel_does_not_wait_behind_a_large_one(monkeypatch, stage):
    """The large kernel's load is held inside verification (or JIT compilation)
    until the small one has loaded; with a shared lock the small one would wait."""
    from zcsdfs.csd import jit_codegen

    owner, attribute = (registry.verifier, "verify") if stage == "verify" else (jit_codegen.ModuleEmitter, "emit")
    original = getattr(owner, attribute)
    inside, release = threading.Event(), threading.Event()

    def held(first, *args, **kwargs):
        program = first if stage == "verify" else first.program
        if program.name == "large":
            inside.set()
            release.wait(60)
        return original(first, *args, **kwargs)

    monkeypatch.setattr(owner, attribute, held)
    large = assemble(_unique("mov %r0, 0\n" * 2000 + "exit"))
    large = type(large)(large.insns, name="large")
    loaded = []
    loader = threading.Thread(target=lambda: loaded.append(load(large, engine="jit")))
    loader.start()
    try:
        assert inside.wait(60)
        done = threading.Event()
        small = threading.Thread(target=lambda: (load(asm=_unique("mov %r0, 7\nexit"), engine="jit"), done.set()))
        small.start()
        assert done.wait(30), "the small kernel waited for the large one"
        small.join()
    finally:
        release.set()
        loader.join(60)
    assert loaded and loaded[0].name == "large"
