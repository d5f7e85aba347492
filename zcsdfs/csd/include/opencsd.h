/*
 * opencsd.h: OpenCSD's FluffleFS kernel API (helpers 1-8, struct flfs_call and
 * its small functions), for kernels written for OpenCSD to build and run
 * unchanged on zcsdfs. Include it where OpenCSD kernels include
 * bpf_helpers_prog.h and bpf_helpers_flfs.h.
 *
 * Semantics (zcsdfs/csd/opencsd.py has the details):
 *   - the call context is the FluffleFS layout: struct flfs_call, then one
 *     uint64_t LBA per block of the file (UINT64_MAX for a hole, which reads
 *     as zeros); the context is the kernel's input memory;
 *   - bpf_read reaches only the blocks listed there (EACCES otherwise, and
 *     the read fails with EIO), bpf_write is denied to read kernels;
 *   - bpf_get_mem_info gives scratch memory of a fixed size (1 MiB), zeroed
 *     for each run; bpf_return_data replaces the output, as in OpenCSD.
 *
 * Helpers 2, 7 and 8 differ from OpenCSD's at the binary level (the buffer
 * comes before its length; pointers are returned, not stored through an
 * argument) so that the verifier can type them; the inline functions below
 * keep OpenCSD's C signatures, so sources need no change.
 */
#ifndef ZCSDFS_OPENCSD_H
#define ZCSDFS_OPENCSD_H

#include <stdbool.h>
#include <stdint.h>

/* 1: the kernel's output is data[0, size) (replacing any earlier output). */
static void (*bpf_return_data)(void *data, uint64_t size) = (void *)1;

/* 2 (as called by bpf_read below): read bytes [offset, offset + limit) counted
 * from the start of (zone, sector) into data. 0 on success. */
static int (*zcsd_opencsd_read)(uint64_t zone, uint64_t sector, uint64_t offset, void *data,
                                uint64_t limit) = (void *)2;

/* 3: denied to read-stream kernels (EACCES). */
static int (*bpf_write)(uint64_t zone, uint64_t *sector, uint64_t offset, uint64_t limit,
                        void *data) = (void *)3;

/* 4, 5, 6: bytes per sector (block); zone capacity and zone size in sectors. */
static uint64_t (*bpf_get_sector_size)(void) = (void *)4;
static uint64_t (*bpf_get_zone_capacity)(void) = (void *)5;
static uint64_t (*bpf_get_zone_size)(void) = (void *)6;

/* 7 (as called by bpf_get_mem_info below): stores the scratch size, returns it. */
static void *(*zcsd_opencsd_mem_info)(uint64_t *mem_size, uint64_t len) = (void *)7;

/* 8 (as called by bpf_get_call_info below): returns the call context. */
static void *(*zcsd_opencsd_call_info)(void) = (void *)8;

static inline int bpf_read(uint64_t zone, uint64_t sector, uint64_t offset, uint64_t limit, void *data)
{
    return zcsd_opencsd_read(zone, sector, offset, data, limit);
}

static inline void bpf_get_mem_info(void **mem_ptr, uint64_t *mem_size)
{
    *mem_ptr = zcsd_opencsd_mem_info(mem_size, sizeof *mem_size);
}

static inline void bpf_get_call_info(void **call)
{
    *call = zcsd_opencsd_call_info();
}

/* The FluffleFS call context. */
enum flfs_operations {
    FLFS_READ_STREAM = 0,
    FLFS_WRITE_EVENT = 1,
};

struct dimensions {
    uint64_t size;   /* bytes the request asked for */
    uint64_t offset; /* where in the file */
};

enum flfs_types {
    FLFS_FILE = 0,
    FLFS_DIR = 1,
};

struct inode {
    uint64_t inode;
    uint64_t parent; /* 0 here: a kernel reads a file, not a path */
    enum flfs_types type;
    uint64_t size;   /* bytes in the file */
};

struct __attribute__((packed)) flfs_call {
    enum flfs_operations op;
    struct dimensions dims;
    struct inode ino;
    /* then: uint64_t lba[blocks of the file] */
};

/* Point *call_info (the context) at the first LBA of the list. Write calls
 * carry more before the list; zcsdfs runs read-stream kernels only. */
static inline void find_data_lba(uint64_t **call_info, bool write)
{
    (void)write;
    *call_info = (uint64_t *)((uint8_t *)*call_info + sizeof(struct flfs_call));
}

/* Step to the next LBA of the list. */
static inline void next_data_lba(uint64_t **cur_data_lba)
{
    *cur_data_lba += 1;
}

/* Split an LBA into the zone and the sector within it. */
static inline void lba_to_position(uint64_t lba, uint64_t zone_size, uint64_t *zone, uint64_t *sector)
{
    *zone = lba / zone_size;
    *sector = lba % zone_size;
}

#endif
