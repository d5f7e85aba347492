/*
 * zcsdfs.h: what a zcsdfs CSD kernel can call.
 *
 * Build a kernel with:
 *   clang -O2 -g0 -mcpu=v3 -ffreestanding -target bpf -I zcsdfs/csd/include -c k.c
 * and load it with zcsdfs.csd.load("k.o") (or the object's bytes).
 *
 * A kernel is a function in a section of its own; the section names its kind:
 *   SEC("csd/read_stream")  reads its bound file through zcsd_read; its output
 *                           (zcsd_return_data) is what the read returns;
 *   SEC("csd/write_event")  runs after a write, over the written range;
 *   SEC("csd/write_stream") transforms data being written;
 *   SEC("csd/memory")       runs over input memory only (tests, benchmarks).
 * The entry is  int f(const uint8_t *args, uint64_t len):  args is the kernel's
 * argument blob (a threshold, a pattern, a key list: whatever the host passed
 * with Kernel.run(args=...) or Kernel.with_args), len its length; read it
 * with bounds checks against len, as any input. The result is the kernel's
 * status: 0, or negative for an error of its own (the read fails with EIO).
 *
 * The file a kernel sees is the range of the request: zcsd_read(0, ...) reads
 * its first byte and zcsd_file_size() is its length.
 *
 * Memory: the 512-byte stack, the args, and globals. A global array without an
 * initialiser lives in .bss: zero-filled and private to each run, it is the
 * kernel's scratch memory. Constant tables and strings live in .rodata.
 *
 * Limits: a run may execute 2^30 instructions plus 64 per byte of its range;
 * its output is bounded (E2BIG beyond). Faults end the run with the read
 * failing (EIO) and a log line.
 *
 * Helper numbers 1-8 are OpenCSD's FluffleFS helpers (see opencsd.h); ours
 * start at 32. zcsdfs/csd/stdlib.py has the exact semantics of each one.
 */
#ifndef ZCSDFS_H
#define ZCSDFS_H

#include <stdint.h>

#define SEC(name) __attribute__((section(name), used))

/* Copy bytes [offset, offset + len) of the bound file, clipped to its end, into
 * buf. Returns the number of bytes copied: 0 at or past the end of the file.
 * Reads cross extents and holes (zeros); there is no need to read by block. */
static int64_t (*zcsd_read)(uint64_t offset, void *buf, uint64_t len) = (void *)32;

/* Append len bytes to the kernel's output (what the host reads back). Output
 * beyond the limit the host set stops the kernel with E2BIG. Returns 0. */
static int64_t (*zcsd_return_data)(const void *data, uint64_t len) = (void *)33;

/* Bytes per block of the device holding the bound file. */
static uint64_t (*zcsd_block_size)(void) = (void *)34;

/* Size in bytes of the bound file (of the range the kernel sees). */
static uint64_t (*zcsd_file_size)(void) = (void *)35;

/* Log msg (up to len bytes, at most 256, stopping at a NUL) on the host's
 * zcsdfs.csd logger at DEBUG level, with the kernel's name. Returns 0. */
static int64_t (*zcsd_debug)(const char *msg, uint64_t len) = (void *)36;

/* zcsd_debug for a string literal. */
#define ZCSD_DEBUG(text) zcsd_debug(text, sizeof(text) - 1)

#endif
