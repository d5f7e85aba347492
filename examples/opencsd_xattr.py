"""An OpenCSD kernel bound the OpenCSD way: a per-process extended attribute.

    python examples/opencsd_xattr.py                # in-process, on a memory volume
    python examples/opencsd_xattr.py MOUNTPOINT     # through a zcsdfs FUSE mount, with plain os

The kernel, ``opencsd_count_above.o`` (written against OpenCSD's opencsd.h),
is stored as a file in the volume; setting ``user.process.csd_read_stream``
to its inode number on a file this process has open binds it until the last
close, and a read returns the count of u32 values above 2^31 in the range.
"""

import os
import struct
import sys

from zcsdfs.csd import kernels

READ_STREAM = "user.process.csd_read_stream"
values = [i * 2654435761 % (1 << 32) for i in range(256 * 1024)]  # 1 MiB of u32
data = struct.pack(f"<{len(values)}I", *values)
want = sum(v > 0x7FFFFFFF for v in values)


def run(ops, root: str) -> None:
    """``ops`` is ``os`` for a mount, or a ``zcsdfs.Volume``: the same calls either way."""
    with open(kernels.object_path("opencsd_count_above"), "rb") as f:
        elf = f.read()
    kfd = ops.open(f"{root}/count_above.o", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    ops.write(kfd, elf)
    ops.close(kfd)
    fd = ops.open(f"{root}/values.u32", os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    ops.write(fd, data)
    ops.fsync(fd)
    ops.close(fd)
    fd = ops.open(f"{root}/values.u32", os.O_RDONLY | (os.O_DIRECT if ops is os else 0))
    try:
        ops.setxattr(f"{root}/values.u32", READ_STREAM, str(ops.stat(f"{root}/count_above.o").st_ino).encode())
        if ops is os:  # through the kernel: an aligned buffer, so the read reaches the server as one request
            import mmap
            buf = mmap.mmap(-1, len(data))
            got = os.preadv(fd, [buf], 0)
            answer = bytes(buf[:got])
        else:
            answer = ops.pread(fd, len(data), 0)
        count = int.from_bytes(answer[:8], "little")
        print(f"kernel: {count} of {len(values)} values above 2^31 (host check: {want}); "
              f"{len(answer)} bytes came back for {len(data)}")
        ops.removexattr(f"{root}/values.u32", READ_STREAM)
    finally:
        ops.close(fd)


if len(sys.argv) > 1:
    run(os, sys.argv[1])
else:
    import zcsdfs
    with zcsdfs.Volume.memory() as vol:
        run(vol, "")
