/* Sum of the little-endian u32 values in the data (trailing bytes that do not
 * fill a value are ignored), as a u64: r0 over memory, the output over a file. */
#include "zcsdfs.h"

#define CHUNK 65536

static uint32_t chunk[CHUNK / 4];

static uint64_t sum(const uint32_t *values, uint64_t n)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        total += values[i];
    return total;
}

SEC("csd/memory") uint64_t sum_u32(const uint8_t *data, uint64_t len)
{
    return sum((const uint32_t *)data, len / 4);
}

SEC("csd/read_stream") uint64_t sum_u32_file(const uint8_t *args, uint64_t len)
{
    uint64_t total = 0;
    uint64_t offset = 0;
    int64_t n;

    while ((n = zcsd_read(offset, chunk, sizeof chunk)) > 0) {
        if (n > CHUNK)
            n = CHUNK;
        total += sum(chunk, n / 4);
        offset += n;
    }
    zcsd_return_data(&total, sizeof total);
    return 0;
}
