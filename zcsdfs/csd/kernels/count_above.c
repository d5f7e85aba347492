/* Count of the little-endian u32 values strictly above a threshold (the
 * OpenCSD example kernel). Over memory, the first u32 is the threshold and the
 * values follow; over a file, the threshold is the first u32 of the input
 * memory (the argument blob), or DEFAULT_THRESHOLD without one; the count
 * goes out as a u64. */
#include "zcsdfs.h"

#define CHUNK 65536
#define DEFAULT_THRESHOLD 0x7fffffffu

static uint32_t chunk[CHUNK / 4];

static uint64_t count(const uint32_t *values, uint64_t n, uint32_t threshold)
{
    uint64_t above = 0;
    for (uint64_t i = 0; i < n; i++)
        above += values[i] > threshold;
    return above;
}

SEC("csd/memory") uint64_t count_above(const uint8_t *data, uint64_t len)
{
    if (len < 4)
        return 0;
    return count((const uint32_t *)(data + 4), (len - 4) / 4, *(const uint32_t *)data);
}

SEC("csd/read_stream") uint64_t count_above_file(const uint8_t *args, uint64_t len)
{
    uint32_t threshold = len >= 4 ? *(const uint32_t *)args : DEFAULT_THRESHOLD;
    uint64_t above = 0;
    uint64_t offset = 0;
    int64_t n;

    while ((n = zcsd_read(offset, chunk, sizeof chunk)) > 0) {
        if (n > CHUNK)
            n = CHUNK;
        above += count(chunk, n / 4, threshold);
        offset += n;
    }
    zcsd_return_data(&above, sizeof above);
    return 0;
}
