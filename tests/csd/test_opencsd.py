"""OpenCSD's FluffleFS helper ABI: the call context, isolation, scratch memory, output."""

from __future__ import annotations

import errno
import re
import struct

import pytest

from zcsdfs.csd import kernels, load, opencsd
from zcsdfs.csd.errors import AccessDenied, MemoryFault, ProgramRefused
from zcsdfs.csd.fileview import MemoryFile
from zcsdfs.csd.kernels import build

ENGINES = ["interp", "jit"]
BS = 4096
DATA = bytes(range(251)) * 100  # 25100 bytes: 7 blocks, the last one partial
LBAS = [5000, 5001, -1, 7000, 9, 70_000, 70_001]


def file(**kwargs) -> MemoryFile:
    data = bytearray(DATA)
    data[2 * BS:3 * BS] = bytes(BS)  # block 2 is a hole
    return MemoryFile([bytes(data)], lbas=LBAS, ino=42, zone_size=1000, zone_capacity=900, **kwargs)


def read_lba_kernel(entry: int, offset: int = 0, limit: int = 8):
    """Reads ``limit`` bytes at ``offset`` of the block whose LBA is list entry ``entry``
    (or, for a negative ``entry``, LBA ``-entry``) and returns them."""
    fetch = (f"ldxdw %r6, [%r0+{52 + 8 * entry}]" if entry >= 0 else f"mov %r6, {-entry}")
    return load(asm=f"""
        call 8
        {fetch}
        call 6
        mov %r1, %r6
        div %r1, %r0
        mov %r2, %r6
        mod %r2, %r0
        mov %r3, {offset}
        mov %r4, %r10
        add %r4, -64
        mov %r5, {limit}
        call 2
        mov %r1, %r10
        add %r1, -64
        mov %r2, {limit}
        call 1
        mov %r0, 0
        exit""")


def test_call_context_layout():
    ctx = opencsd.call_info(op=opencsd.FLFS_READ_STREAM, size=100, offset=7, ino=42, file_size=25100,
                            lbas=[5, -1, 6], parent=2)
    assert opencsd.CALL.size == 52 and len(ctx) == 52 + 24
    assert struct.unpack_from("<iQQQQi", ctx) == (0, 100, 7, 42, 2, 0)
    assert struct.unpack_from("<Q", ctx, 44) == (25100,)
    assert struct.unpack_from("<3Q", ctx, 52) == (5, opencsd.HOLE_LBA, 6)


@pytest.mark.parametrize("which", ENGINES)
def test_example_kernel_reads_through_the_lba_list(which):
    kernel = kernels.load("opencsd_count_above", engine=which)
    view = file()
    data = view.read(0, view.size)
    for offset, length in ((0, None), (3, 9000), (BS * 2 - 1, 6), (25_000, 10**6), (30_000, 4)):
        part = data[offset:] if length is None else data[offset:offset + length]
        values = [int.from_bytes(part[i:i + 4], "little") for i in range(0, len(part) // 4 * 4, 4)]
        call = kernel.call(view, offset, length)
        assert int.from_bytes(call.output, "little") == sum(v > 0x7FFFFFFF for v in values)
        assert call.bytes_read <= (-(-len(part) // BS) + 1) * BS  # whole blocks, only the range's


@pytest.mark.parametrize("which", ENGINES)
def test_reads_reach_only_the_files_blocks(which):
    view = file()
    for entry, expected in ((0, DATA[:8]), (3, DATA[3 * BS:3 * BS + 8]), (2, bytes(8)), (6, DATA[6 * BS:6 * BS + 8])):
        assert read_lba_kernel(entry).run(view, engine=which) == expected
    assert read_lba_kernel(5, offset=BS - 4).run(view, engine=which) == DATA[6 * BS - 4:6 * BS + 4]  # 70000, 70001
    assert read_lba_kernel(6, offset=500).run(view, engine=which) == DATA[6 * BS + 500:6 * BS + 508]
    assert read_lba_kernel(6, offset=520).run(view, engine=which) == DATA[-4:] + bytes(4)  # past the end: zeros
    for lba in (5002, 1, 7001, 69_999):  # next to the file's blocks, or anywhere else
        with pytest.raises(AccessDenied, match=f"LBA {lba}: not a block of the bound file") as info:
            read_lba_kernel(-lba).run(view, engine=which)
        assert info.value.errno == errno.EACCES
    with pytest.raises(AccessDenied):  # the read runs from block 5001 into 5002
        read_lba_kernel(1, offset=BS - 4, limit=8).run(view.__class__([DATA[:2 * BS]], lbas=[5000, 5001]),
                                                        engine=which)
    with pytest.raises(MemoryFault):  # past the end of the LBA list
        read_lba_kernel(7).run(view, engine=which)


@pytest.mark.parametrize("which", ENGINES)
def test_geometry_scratch_memory_and_writes(which):
    view = file()
    sizes = load(asm="""
        call 4
        stxdw [%r10-32], %r0
        call 5
        stxdw [%r10-24], %r0
        call 6
        stxdw [%r10-16], %r0
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        call 7
        mov %r1, 1048568
        add %r1, %r0
        ldxdw %r1, [%r1]
        stxdw [%r0+100], %r1
        ldxdw %r1, [%r10-8]
        stxdw [%r10-40], %r1
        mov %r1, %r10
        add %r1, -40
        mov %r2, 40
        call 1
        mov %r0, 0
        exit""", engine=which)
    assert struct.unpack("<5Q", sizes.run(view)) == (1 << 20, BS, 900, 1000, 1 << 20)
    with pytest.raises(ProgramRefused, match="outside the 1048576-byte helper memory"):
        load(asm="mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 7\nadd %r0, 1048569\nldxdw %r0, [%r0]\nexit",
             engine=which)
    # The same access, at an offset known only at run time (the request's size).
    past_the_end = load(asm="""
        call 8
        mov %r6, %r0
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        call 7
        ldxdw %r1, [%r6+4]
        add %r0, %r1
        ldxdw %r0, [%r0]
        exit""", engine=which)
    assert past_the_end.run(view, 0, (1 << 20) - 8) == b""
    with pytest.raises(MemoryFault) as info:
        past_the_end.run(view, 0, (1 << 20) - 7)
    assert info.value.errno == errno.EFAULT
    with pytest.raises(AccessDenied, match="bpf_write") as info:
        load(asm="call 3\nexit", engine=which).run(view)
    assert info.value.errno == errno.EACCES


@pytest.mark.parametrize("which", ENGINES)
def test_return_data_replaces_the_output(which):
    kernel = load(asm="""
        stdw [%r10-8], 1
        stdw [%r10-16], 2
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        call 1
        mov %r1, %r10
        add %r1, -16
        mov %r2, 4
        call 1
        mov %r0, 0
        exit""", engine=which)
    assert kernel.run(file()) == (2).to_bytes(4, "little")


def test_header_declares_opencsd_names_and_numbers():
    text = (build.INCLUDE_DIR / "opencsd.h").read_text()
    numbers = {name: int(n) for name, n in re.findall(r"\(\*(\w+)\)\([^;]*\) = \(void \*\)(\d+);", text)}
    assert numbers == {"bpf_return_data": 1, "zcsd_opencsd_read": 2, "bpf_write": 3, "bpf_get_sector_size": 4,
                       "bpf_get_zone_capacity": 5, "bpf_get_zone_size": 6, "zcsd_opencsd_mem_info": 7,
                       "zcsd_opencsd_call_info": 8}
    assert [h.number for h in opencsd.helpers()] == list(opencsd.NUMBERS)
    for name in ("bpf_read(", "bpf_get_mem_info(", "bpf_get_call_info(", "find_data_lba(", "next_data_lba(",
                 "lba_to_position(", "struct __attribute__((packed)) flfs_call"):
        assert name in text
