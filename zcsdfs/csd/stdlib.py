"""The storage helpers: what a CSD kernel may ask of the device it runs beside.

A kernel is bound to one file. The caller (``lfs``, or a test) describes that
file in a :class:`StorageEnv` and passes it as ``Engine.run(..., env=env)``;
the helpers below read only that file's bytes and append the kernel's output
to a buffer bounded in size. Everything else a kernel needs is memory it
already has: its stack, its input, and its ``.bss`` (zero-filled and private
to each run, sized by the kernel author, so the verifier knows its bounds;
that is our answer to OpenCSD's ``bpf_get_mem_info`` scratch buffer).

Helper numbers start at 32: 1-8 are kept free for OpenCSD's FluffleFS
helpers (return_data, read, write, sector size, zone capacity, zone size,
memory info, call info) so its kernels can later run unchanged next to ours,
and 5 doubles as the conformance suite's unwind helper in its own set.

| number | C name (zcsdfs.h)  | semantics |
| ------ | ------------------ | --------- |
| 32     | zcsd_read          | ``(u64 offset, void *buf, u64 len) -> s64``: copy file bytes ``[offset, offset+len)`` clipped to the file into ``buf``; returns the count copied (0 at or past the end) |
| 33     | zcsd_return_data   | ``(const void *data, u64 len) -> 0``: append to the output; past ``output_limit`` the run stops with LimitExceeded (E2BIG) |
| 34     | zcsd_block_size    | ``() -> u64``: bytes per block of the bound file's device |
| 35     | zcsd_file_size     | ``() -> u64``: bytes in the bound file (the kernel's view of it) |
| 36     | zcsd_debug         | ``(const char *msg, u64 len) -> 0``: log ``msg`` (at most 256 bytes) on the ``zcsdfs.csd`` logger at DEBUG, naming the kernel |

A file's bytes come either from ``extents`` in memory (views into the
device: the JIT copies from them natively) or from a ``reader`` callable
(``reader(offset, dst) -> count``, e.g. over an lfs frozen view), which every
engine calls through Python once per ``zcsd_read``.

The ``native`` tag on each helper names the form the JIT implements without
a Python callback; its semantics are exactly those of ``func`` here.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import logging
from typing import Callable

import attrs

from zcsdfs.csd.errors import HelperFault, LimitExceeded
from zcsdfs.csd.helpers import Arg, Helper, HelperSet, Ret

READ = 32
RETURN_DATA = 33
BLOCK_SIZE = 34
FILE_SIZE = 35
DEBUG = 36

DEFAULT_OUTPUT_LIMIT = 1 << 20
DEBUG_MESSAGE_LIMIT = 256

log = logging.getLogger("zcsdfs.csd")


def _extent(item) -> memoryview:
    """A read-only byte view of one extent: a buffer, or ``(buffer, offset, length)``."""
    if isinstance(item, tuple):
        buffer, offset, length = item
        view = memoryview(buffer).cast("B")
        if offset < 0 or length < 0 or offset + length > len(view):
            raise OSError(errno.EINVAL, f"extent ({offset}, {length}) outside its {len(view)}-byte buffer")
        return view[offset:offset + length].toreadonly()
    return memoryview(item).cast("B").toreadonly()


def _extents(items) -> tuple[memoryview, ...]:
    return tuple(_extent(item) for item in items)


@attrs.define
class StorageEnv:
    """The file a kernel is bound to, and what the run produced.

    ``extents`` are the file's data in file order (each a memoryview into the
    device, or ``(buffer, offset, length)``); a hole is an extent of zeros.
    ``file_size`` (default: the extents' total) may end inside the last
    extent, as a file whose size is not a multiple of the block size does.
    Instead of extents, ``reader(offset, dst) -> count`` may supply the
    bytes (then ``file_size`` is required). Use one env per run: ``output``
    and the counters accumulate.
    """

    extents: tuple[memoryview, ...] = attrs.field(default=(), converter=_extents)
    block_size: int = 4096
    file_size: int = attrs.field(default=None)
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    reader: Callable[[int, memoryview], int] | None = None
    name: str = "kernel"  # for log lines
    output: bytearray = attrs.field(factory=bytearray)
    bytes_read: int = 0  # device bytes the kernel asked for (data-movement accounting)
    instructions: int = 0  # added to by the engine (see engine.Engine.run)
    offsets: tuple[int, ...] = attrs.field(init=False)

    def __attrs_post_init__(self):
        ends = tuple(itertools.accumulate(len(e) for e in self.extents))
        self.offsets = (0,) + ends[:-1] if ends else ()
        total = ends[-1] if ends else 0
        if self.reader is not None:
            if self.extents or self.file_size is None:
                raise OSError(errno.EINVAL, "a reader replaces the extents and needs the file size")
            total = self.file_size
        if self.file_size is None:
            self.file_size = total
        if not 0 <= self.file_size <= total:
            raise OSError(errno.EINVAL, f"file size {self.file_size} beyond its extents ({total} bytes)")
        if self.block_size <= 0 or self.output_limit < 0:
            raise OSError(errno.EINVAL, "block size and output limit must be positive")

    def read_into(self, offset: int, dst: memoryview) -> int:
        """Copy file bytes from ``offset`` into ``dst``; the count copied (short at the end)."""
        if offset >= self.file_size:
            return 0
        wanted = min(len(dst), self.file_size - offset)
        if self.reader is not None:
            done = self.reader(offset, dst[:wanted])
            self.bytes_read += done
            return done
        i = bisect.bisect_right(self.offsets, offset) - 1
        done = 0
        while done < wanted:
            extent = self.extents[i]
            start = offset + done - self.offsets[i]
            n = min(len(extent) - start, wanted - done)
            dst[done:done + n] = extent[start:start + n]
            done += n
            i += 1
        self.bytes_read += done
        return done

    def return_data(self, data: memoryview) -> None:
        if len(self.output) + len(data) > self.output_limit:
            raise LimitExceeded(f"kernel output beyond its limit of {self.output_limit} bytes")
        self.output += data


def _env(vm) -> StorageEnv:
    if not isinstance(vm.env, StorageEnv):
        raise HelperFault("storage helper called without a StorageEnv (pass env= to run)")
    return vm.env


def _read(vm, offset, buf, length, _r4=0, _r5=0) -> int:
    env = _env(vm)
    if length == 0:
        return 0
    return env.read_into(offset, vm.view(buf, length, writable=True))


def _return_data(vm, data, length, _r3=0, _r4=0, _r5=0) -> int:
    env = _env(vm)
    env.return_data(vm.view(data, length) if length else memoryview(b""))
    return 0


def _block_size(vm, *_regs) -> int:
    return _env(vm).block_size


def _file_size(vm, *_regs) -> int:
    return _env(vm).file_size


def _debug(vm, msg, length, _r3=0, _r4=0, _r5=0) -> int:
    env = _env(vm)
    text = bytes(vm.view(msg, min(length, DEBUG_MESSAGE_LIMIT))).split(b"\0", 1)[0]
    log.debug("kernel %s: %s", env.name, text.decode("utf-8", "replace"))
    return 0


HELPERS = (
    Helper(READ, "zcsd_read", (Arg.SCALAR, Arg.PTR_TO_UNINIT_MEM, Arg.SIZE_OR_ZERO), Ret.INTEGER,
           _read, native="zcsd_read"),
    Helper(RETURN_DATA, "zcsd_return_data", (Arg.PTR_TO_MEM, Arg.SIZE_OR_ZERO), Ret.INTEGER,
           _return_data, native="zcsd_return_data"),
    Helper(BLOCK_SIZE, "zcsd_block_size", (), Ret.INTEGER, _block_size, native="zcsd_block_size"),
    Helper(FILE_SIZE, "zcsd_file_size", (), Ret.INTEGER, _file_size, native="zcsd_file_size"),
    Helper(DEBUG, "zcsd_debug", (Arg.PTR_TO_MEM, Arg.SIZE_OR_ZERO), Ret.INTEGER, _debug),
)


def storage_helpers() -> HelperSet:
    """A fresh set holding the storage helpers (add others with ``register``)."""
    return HelperSet(HELPERS)
