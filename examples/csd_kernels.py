"""Each shipped CSD kernel from Python, in a few lines: ``python examples/csd_kernels.py``.

A kernel runs beside the data and returns only its result. Here the "file"
is in memory (a MemoryFile); the vfs hands kernels a frozen view of a real
file the same way.
"""

import math
import struct

from zcsdfs.csd import kernels
from zcsdfs.csd.fileview import MemoryFile

text = b"".join(b"%d,sensor-%d,%d\n" % (i, i % 7, (i * 37) % 1000) for i in range(20_000))
file = MemoryFile([text])

# Shannon entropy from the byte histogram: 2 KiB cross to the host, not the file.
hist = kernels.load("histogram")
counts = struct.unpack("<256Q", hist.run(file))
entropy = -sum(c / file.size * math.log2(c / file.size) for c in counts if c)
print(f"entropy {entropy:.3f} bits/byte; moved {hist.stats.bytes_returned} of {hist.stats.bytes_read} bytes")

# grep -c, with the pattern as the kernel's argument blob.
print("lines with 'sensor-3':", int.from_bytes(kernels.load("grep_count").run(file, args=b"sensor-3"), "little"))

# CRC32C and a passthrough of a range.
print("crc32c %08x" % int.from_bytes(kernels.load("crc32c").run(file), "little"))
print("bytes 0-20:", kernels.load("passthrough").run(file, 0, 20))

# count/sum/min/max of a u32 column in 12-byte records, at offset 4.
table = MemoryFile([b"".join(struct.pack("<IIi", i, i * i % 5000, -i) for i in range(10_000))])
columns = kernels.load("columns")
print("column 1 count/sum/min/max:", struct.unpack("<4Q", columns.run(table, args=struct.pack("<IIBB", 12, 4, 4, 0))))
print("column 2 count/sum/min/max:", struct.unpack("<Qqqq", columns.run(table, args=struct.pack("<IIBB", 12, 8, 4, 1))))

# u32 values above a threshold: ours (threshold as argument) and OpenCSD's example kernel.
print("above 2^31 (ours):", int.from_bytes(kernels.load("count_above").run(table), "little"))
print("above 2^31 (OpenCSD ABI):", int.from_bytes(kernels.load("opencsd_count_above").run(table), "little"))

# Bloom filter probe: the file is the filter, the keys are the argument.
bits, k = bytearray(256), 3
def positions(key):
    h1 = 0xCBF29CE484222325
    for b in key:
        h1 = ((h1 ^ b) * 0x100000001B3) % (1 << 64)
    return [((h1 + i * ((h1 >> 32) | 1)) % (1 << 64)) % (len(bits) * 8) for i in range(k)]
for key in (b"alice", b"bob"):
    for p in positions(key):
        bits[p // 8] |= 1 << p % 8
keys = [b"alice", b"bob", b"carol"]
args = struct.pack("<I", k) + b"".join(struct.pack("<H", len(key)) + key for key in keys)
print("may contain:", dict(zip(keys, kernels.load("bloom").run(MemoryFile([bytes(bits)]), args=args))))

# Any kernel by path (a string is a path, as is a pathlib.Path), or from assembly text
# with asm=. Every run is bounded: a budget of instructions and a deadline.
from zcsdfs import csd
from zcsdfs.csd.errors import DeadlineExceeded

assert csd.load(str(kernels.object_path("crc32c"))) is kernels.load("crc32c")  # one kernel per content
size = csd.load(asm="call 35\nstxdw [%r10-8], %r0\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 33\nmov %r0, 0\nexit")
print("file size from assembly:", int.from_bytes(size.run(file), "little"))
spin = csd.load(asm="mov %r0, 0\nmov %r1, 0x7fffffff\nsub %r1, 1\njne %r1, 0, -2\nexit")
try:
    spin.run(file, budget=1 << 40, timeout=0.1)  # limits of this call; by default about a second here
except DeadlineExceeded as exc:
    print("stopped:", exc.strerror)
