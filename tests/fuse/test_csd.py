"""The CSD route through a mount: per-process extended attributes, keyed by the request's pid."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys

import numpy as np

from tests.fuse.conftest import needs_fuse
from zcsdfs.csd import kernels

pytestmark = needs_fuse

READ = "user.process.csd_read_stream"
MIB = 1 << 20


def histogram(data: bytes) -> bytes:
    return np.bincount(np.frombuffer(data, np.uint8), minlength=256).astype("<u8").tobytes()


def other_process_reads(path: str) -> bytes:
    code = f"import sys; sys.stdout.buffer.write(open({path!r}, 'rb').read())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60).stdout


def test_bound_reads_reach_the_kernel_and_never_the_page_cache(mnt):
    path = f"{mnt}/data"
    raw = os.urandom(2 * MIB)
    cached = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(cached, raw, 0)
    assert os.pread(cached, 2 * MIB, 0) == raw  # in the page cache now
    with open(f"{mnt}/histogram.o", "wb") as f:
        f.write(kernels.object_path("histogram").read_bytes())
    kernel = os.stat(f"{mnt}/histogram.o").st_ino
    direct = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        os.setxattr(path, READ, str(kernel).encode())
        assert os.getxattr(path, READ) == str(kernel).encode()
        aligned = mmap.mmap(-1, MIB)  # a page-aligned 1 MiB read is one request
        assert os.preadv(direct, [aligned], MIB) == 2048
        assert aligned[:2048] == histogram(raw[MIB:])
        later = os.open(path, os.O_RDONLY)  # opened while bound: the server opens it for direct I/O
        try:
            assert os.pread(later, 64 << 10, 128 << 10) == histogram(raw[128 << 10:192 << 10])
        finally:
            os.close(later)
        assert os.pread(cached, 4096, MIB) == raw[MIB:MIB + 4096]  # a cached descriptor: the bytes
        assert other_process_reads(path) == raw  # no kernel output went into the shared cache
        os.removexattr(path, READ)
        assert os.pread(direct, 4096, 4096) == raw[4096:8192]
    finally:
        os.close(direct)
        os.close(cached)


def test_another_process_has_no_binding(mnt):
    path = f"{mnt}/data"
    with open(path, "wb") as f:
        f.write(b"x" * 4096)
    with open(f"{mnt}/histogram.o", "wb") as f:
        f.write(kernels.object_path("histogram").read_bytes())
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        os.setxattr(path, READ, str(os.stat(f"{mnt}/histogram.o").st_ino).encode())
        code = (f"import os; fd = os.open({path!r}, os.O_RDONLY | os.O_DIRECT); "
                f"print(len(os.pread(fd, 4096, 0)), end='')")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.stdout == "4096", done.stderr  # its own read, raw
    finally:
        os.close(fd)
