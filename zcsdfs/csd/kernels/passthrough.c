/* Passthrough read: the output is the range's bytes, unchanged. The reference
 * for what a bound read costs over a plain one. */
#include "zcsdfs.h"

#define CHUNK 65536

static uint8_t chunk[CHUNK];

SEC("csd/read_stream") int passthrough_file(const uint8_t *args, uint64_t len)
{
    uint64_t offset = 0;
    int64_t n;

    while ((n = zcsd_read(offset, chunk, sizeof chunk)) > 0) {
        if (n > CHUNK)
            n = CHUNK;
        zcsd_return_data(chunk, n);
        offset += n;
    }
    return 0;
}
