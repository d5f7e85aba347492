/*
 * zcsdfs.h: what a zcsdfs CSD kernel can call.
 *
 * Build a kernel with:  clang -O2 -g0 -mcpu=v3 -ffreestanding -target bpf -c k.c
 *
 * A kernel is a function in a section of its own:
 *   SEC("csd/memory")      u64 f(const u8 *data, u64 len)  runs over input memory;
 *   SEC("csd/read_stream") u64 f(const u8 *args, u64 len)  reads its bound file
 *                          through zcsd_read; args is optional input memory.
 * The result is r0; larger results go out through zcsd_return_data.
 *
 * Memory: the 512-byte stack, the input, and globals. A global array without an
 * initialiser lives in .bss: zero-filled and private to each run, it is the
 * kernel's scratch memory. Constant tables and strings live in .rodata.
 *
 * Helper numbers 1-8 are left to OpenCSD's FluffleFS helpers; see
 * zcsdfs/csd/stdlib.py for the exact semantics of each one below.
 */
#ifndef ZCSDFS_H
#define ZCSDFS_H

#include <stdint.h>

#define SEC(name) __attribute__((section(name), used))

/* Copy bytes [offset, offset + len) of the bound file, clipped to its end, into
 * buf. Returns the number of bytes copied: 0 at or past the end of the file. */
static int64_t (*zcsd_read)(uint64_t offset, void *buf, uint64_t len) = (void *)32;

/* Append len bytes to the kernel's output (what the host reads back). Output
 * beyond the limit the host set stops the kernel with E2BIG. Returns 0. */
static int64_t (*zcsd_return_data)(const void *data, uint64_t len) = (void *)33;

/* Bytes per block of the device holding the bound file. */
static uint64_t (*zcsd_block_size)(void) = (void *)34;

/* Size in bytes of the bound file (of the snapshot the kernel sees). */
static uint64_t (*zcsd_file_size)(void) = (void *)35;

#endif
