"""OpenCSD's FluffleFS helper ABI (ids 1-8), so its kernels run here unchanged.

OpenCSD (Lukken et al.) runs uBPF kernels on an emulated ZNS SSD beside its
FluffleFS file system. A kernel asks for its *call context* -- which
operation, the request's size and offset, the inode record, then the LBA of
every data block of the file -- and reads those blocks by (zone, sector).
Built with ``zcsdfs/csd/include/opencsd.h`` its source compiles unchanged
and runs here, with two differences that make it safe:

- **Isolation.** ``bpf_read`` reaches only the blocks in the call context
  (the bound file's, as frozen at bind time); any other LBA stops the kernel
  with :class:`AccessDenied` (EACCES), which the vfs turns into EIO.
  OpenCSD let a kernel read any sector of the drive. ``bpf_write`` is
  denied the same way: read-stream kernels do not write.
- **Typed pointers.** OpenCSD's ``bpf_get_mem_info(&ptr, &size)`` and
  ``bpf_get_call_info(&ptr)`` hand pointers back through memory, which no
  verifier can type. Here helper 7 *returns* a pointer to scratch memory of
  a fixed size (``MEM_SIZE``, known to the verifier) and writes its size,
  and helper 8 *returns* the context pointer; the header wraps both in
  inline functions with OpenCSD's C signatures. For the same reason helper 2
  takes its buffer before its length (``opencsd.h`` restores the order).

The call context is the kernel's input memory (r1/r2), laid out as
FluffleFS's packed ``struct flfs_call`` (:data:`CALL`): op (s32),
dims.size, dims.offset (u64), then ``struct inode`` with its natural
padding: inode, parent (u64), type (s32, 4 bytes padding), size (u64);
52 bytes, followed by one u64 LBA per file block. A hole (which FluffleFS
never has) is :data:`HOLE_LBA`; reading it gives zeros. The LBA list covers
the whole file; ``dims`` say which range the read asked for.

``bpf_return_data`` keeps OpenCSD's meaning: each call *replaces* the
output (the storage helper ``zcsd_return_data`` appends).
"""

from __future__ import annotations

import struct

import attrs

from zcsdfs.csd.errors import AccessDenied, HelperFault, LimitExceeded
from zcsdfs.csd.helpers import Arg, Helper, Ret
from zcsdfs.csd.stdlib import StorageEnv

RETURN_DATA = 1
READ = 2
WRITE = 3
SECTOR_SIZE = 4
ZONE_CAPACITY = 5
ZONE_SIZE = 6
MEM_INFO = 7
CALL_INFO = 8
NUMBERS = range(RETURN_DATA, CALL_INFO + 1)

FLFS_READ_STREAM = 0
FLFS_WRITE_EVENT = 1
FLFS_FILE = 0

CALL = struct.Struct("<iQQQQi4xQ")  # packed struct flfs_call: op, dims, inode record
HOLE_LBA = (1 << 64) - 1
MEM_SIZE = 1 << 20  # bytes of scratch memory bpf_get_mem_info hands out


def call_info(*, op: int, size: int, offset: int, ino: int, file_size: int, lbas, parent: int = 0) -> bytearray:
    """The call context of one request: ``struct flfs_call`` and the LBA list.

    ``lbas`` has one entry per file block, -1 (or None) for a hole.
    """
    head = CALL.pack(op, size, offset, ino, parent, FLFS_FILE, file_size)
    out = bytearray(head)
    out += struct.pack(f"<{len(lbas)}Q", *(HOLE_LBA if lba is None or lba < 0 else lba for lba in lbas))
    return out


@attrs.define
class OpenCsdEnv(StorageEnv):
    """A :class:`StorageEnv` plus the device's geometry and the file's block map.

    ``lbas[i]`` is the device block holding file block ``i`` (-1 for a
    hole); ``zone_size`` and ``zone_capacity`` are in blocks.
    """

    lbas: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    zone_size: int = 1 << 16
    zone_capacity: int = 1 << 16
    mem_size: int = MEM_SIZE
    blocks: dict[int, int] = attrs.field(init=False)
    scratch: int = attrs.field(init=False, default=0)  # address of the mapped scratch memory, once asked for

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.blocks = {lba: i for i, lba in enumerate(self.lbas) if lba >= 0}
        self.blocks[HOLE_LBA] = -1

    def read_block(self, lba: int, at: int, dst: memoryview) -> None:
        """Fill ``dst`` from byte ``at`` of device block ``lba``, which must be the file's."""
        block = self.blocks.get(lba)
        if block is None:
            raise AccessDenied(f"bpf_read of LBA {lba}: not a block of the bound file")
        n = 0 if block < 0 else self.read_into(block * self.block_size + at, dst)
        dst[n:] = bytes(len(dst) - n)  # a hole, or the end of the file


def _env(vm) -> OpenCsdEnv:
    if not isinstance(vm.env, OpenCsdEnv):
        raise HelperFault("OpenCSD helper called without an OpenCsdEnv (pass env= to run)")
    return vm.env


def _return_data(vm, data, size, _r3=0, _r4=0, _r5=0) -> int:
    env = _env(vm)
    if size > env.output_limit:
        raise LimitExceeded(f"kernel output beyond its limit of {env.output_limit} bytes")
    env.output[:] = vm.view(data, size) if size else b""
    return 0


def _read(vm, zone, sector, offset, data, limit) -> int:
    """Bytes ``[offset, offset + limit)`` counted from the start of (zone, sector)."""
    env = _env(vm)
    if sector >= env.zone_size:
        raise AccessDenied(f"bpf_read of sector {sector}: beyond the zone size ({env.zone_size})")
    dst = vm.view(data, limit, writable=True) if limit else memoryview(b"")
    bs = env.block_size
    lba = (zone * env.zone_size + sector) & HOLE_LBA
    done = 0
    while done < limit:
        at = (offset + done) % bs
        n = min(bs - at, limit - done)
        env.read_block((lba + (offset + done) // bs) & HOLE_LBA, at, dst[done:done + n])
        done += n
    return 0


def _write(vm, *_regs) -> int:
    raise AccessDenied("bpf_write: a read-stream kernel may not write to the device")


def _sector_size(vm, *_regs) -> int:
    return _env(vm).block_size


def _zone_capacity(vm, *_regs) -> int:
    return _env(vm).zone_capacity


def _zone_size(vm, *_regs) -> int:
    return _env(vm).zone_size


def _mem_info(vm, size_out, length, _r3=0, _r4=0, _r5=0) -> int:
    env = _env(vm)
    if not env.scratch:
        env.scratch = vm.map(bytearray(env.mem_size), writable=True)
    vm.write(size_out, env.mem_size.to_bytes(8, "little").ljust(length, b"\0")[:length])
    return env.scratch


def _call_info(vm, *_regs) -> int:
    _env(vm)
    if not vm.context_address:
        raise HelperFault("bpf_get_call_info: the kernel was run without a call context")
    return vm.context_address


def helpers(mem_size: int = MEM_SIZE) -> tuple[Helper, ...]:
    """The eight helpers, with ``mem_size`` bytes of scratch memory behind helper 7."""
    return (
        Helper(RETURN_DATA, "bpf_return_data", (Arg.PTR_TO_MEM, Arg.SIZE_OR_ZERO), Ret.VOID, _return_data),
        Helper(READ, "bpf_read", (Arg.SCALAR, Arg.SCALAR, Arg.SCALAR, Arg.PTR_TO_UNINIT_MEM, Arg.SIZE_OR_ZERO),
               Ret.INTEGER, _read),
        Helper(WRITE, "bpf_write", (), Ret.INTEGER, _write),
        Helper(SECTOR_SIZE, "bpf_get_sector_size", (), Ret.INTEGER, _sector_size),
        Helper(ZONE_CAPACITY, "bpf_get_zone_capacity", (), Ret.INTEGER, _zone_capacity),
        Helper(ZONE_SIZE, "bpf_get_zone_size", (), Ret.INTEGER, _zone_size),
        Helper(MEM_INFO, "bpf_get_mem_info", (Arg.PTR_TO_UNINIT_MEM, Arg.SIZE), Ret.PTR_TO_MEM, _mem_info,
               ret_size=mem_size),
        Helper(CALL_INFO, "bpf_get_call_info", (), Ret.PTR_TO_CTX, _call_info),
    )
