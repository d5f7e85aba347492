/* Byte histogram: 256 u64 counts (count of byte value 0 first), returned
 * through zcsd_return_data (over memory, r0 is the number of bytes counted).
 * The host turns it into Shannon entropy. */
#include "zcsdfs.h"

#define CHUNK 65536

static uint64_t counts[256];
static uint8_t chunk[CHUNK];

/* Eight bytes per load: a quarter of the instructions of a byte loop, and one
 * bounds check per word where the verifier cannot prove the load safe. */
static void count(const uint8_t *data, uint64_t len)
{
    uint64_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t word = *(const uint64_t *)(data + i);
        for (int shift = 0; shift < 64; shift += 8)
            counts[(word >> shift) & 0xff]++;
    }
    for (; i < len; i++)
        counts[data[i]]++;
}

SEC("csd/memory") uint64_t histogram(const uint8_t *data, uint64_t len)
{
    count(data, len);
    zcsd_return_data(counts, sizeof counts);
    return len;
}

SEC("csd/read_stream") uint64_t histogram_file(const uint8_t *args, uint64_t len)
{
    uint64_t offset = 0;
    int64_t n;

    while ((n = zcsd_read(offset, chunk, sizeof chunk)) > 0) {
        if (n > CHUNK)
            n = CHUNK;
        count(chunk, n);
        offset += n;
    }
    zcsd_return_data(counts, sizeof counts);
    return 0;
}
