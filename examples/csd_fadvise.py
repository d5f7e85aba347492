"""A CSD kernel bound by posix_fadvise: a read returns the kernel's answer, not the data.

    python examples/csd_fadvise.py

The shipped ``histogram`` kernel counts the bytes of a 4 MiB file beside the
data; 2 KiB of counts come back instead of 4 MiB, and the host turns them
into the file's Shannon entropy.
"""

import math
import os
import struct

import zcsdfs
from zcsdfs.csd import advice, kernels

SIZE = 4 << 20
with zcsdfs.Volume.memory() as vol:
    fd = vol.open("/data.bin", os.O_CREAT | os.O_RDWR, 0o644)
    vol.write(fd, bytes(range(256)) * (SIZE // 512) + os.urandom(SIZE // 2))
    vol.posix_fadvise(fd, 0, 0, advice(kernels.load("histogram")))   # bind, from 0 to the end
    answer = vol.pread(fd, SIZE, 0)
    vol.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)                  # unbind: raw bytes again
    counts = struct.unpack("<256Q", answer)
    entropy = -sum(c / SIZE * math.log2(c / SIZE) for c in counts if c)
    print(f"read returned {len(answer)} bytes for a {SIZE >> 20} MiB file; entropy {entropy:.4f} bits/byte")
    print("raw bytes again:", vol.pread(fd, 4, 1))
    stats = vol.csd_stats()
    print(f"kernel read {stats.bytes_read:,} bytes on the device and returned {stats.bytes_returned:,}")
