/* Bloom-filter probe: the bound file is a Bloom filter (m = 8 * its size bits,
 * bit i is bit i % 8 of byte i / 8), the argument blob a list of keys; the
 * output has one byte per key, 1 if the key may be in the set, 0 if it is
 * certainly not. Only the probed bytes are read from the device.
 *
 * Arguments: u32 k (hash functions, 1 to 32), then each key as a u16 length
 * and its bytes. Bit positions: h1 = FNV-1a 64 of the key, h2 = (h1 >> 32) | 1,
 * position i = (h1 + i * h2) mod m, for i < k (Kirsch-Mitzenmacher double
 * hashing). Malformed arguments or an empty filter: status -22. */
#include "zcsdfs.h"

#define EINVAL 22
#define MAX_KEYS 65536

static uint8_t answers[MAX_KEYS];

SEC("csd/read_stream") int bloom_file(const uint8_t *args, uint64_t len)
{
    uint64_t m = zcsd_file_size() * 8;
    uint64_t at = 4, keys = 0;

    if (len < 4 || m == 0)
        return -EINVAL;
    uint32_t k = args[0] | args[1] << 8 | (uint32_t)args[2] << 16 | (uint32_t)args[3] << 24;
    if (k < 1 || k > 32)
        return -EINVAL;
    while (at < len) {
        if (at + 2 > len || keys >= MAX_KEYS)
            return -EINVAL;
        uint64_t size = args[at] | args[at + 1] << 8;
        at += 2;
        if (size > len - at)
            return -EINVAL;
        uint64_t h1 = 0xcbf29ce484222325ull;
        for (uint64_t i = 0; i < size; i++)
            h1 = (h1 ^ args[at + i]) * 0x100000001b3ull;
        at += size;
        uint64_t h2 = (h1 >> 32) | 1;
        uint8_t hit = 1;
        for (uint32_t i = 0; i < k && hit; i++) {
            uint64_t bit = (h1 + i * h2) % m;
            uint8_t byte = 0;
            zcsd_read(bit / 8, &byte, 1);
            hit = byte >> (bit % 8) & 1;
        }
        answers[keys++] = hit;
    }
    zcsd_return_data(answers, keys);
    return 0;
}
