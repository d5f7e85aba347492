/* Count, sum, min and max of one little-endian integer column of fixed-size
 * records (a table stored row by row; a trailing partial record is ignored).
 *
 * Arguments (packed struct column_args, 10 bytes, little-endian; none: a file
 * of u32):
 *   record_size   bytes per record, 1 to CHUNK
 *   column_offset where the column starts in a record
 *   width         1, 2, 4 or 8 bytes
 *   is_signed     0 (unsigned) or 1 (two's complement)
 * Output (struct column_stats, 32 bytes): count, sum (modulo 2^64), min, max;
 * min and max are 0 when there are no records. Bad arguments: status -22. */
#include "zcsdfs.h"

#define CHUNK 65536
#define EINVAL 22

struct __attribute__((packed)) column_args {
    uint32_t record_size;
    uint32_t column_offset;
    uint8_t width;
    uint8_t is_signed;
};

struct column_stats {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
};

static uint8_t chunk[CHUNK];

static uint64_t load_le(const uint8_t *p, uint32_t width)
{
    uint64_t value = 0;
    for (uint32_t i = 0; i < width; i++)
        value |= (uint64_t)p[i] << (8 * i);
    return value;
}

/* a < b in the column's order */
static int less(uint64_t a, uint64_t b, uint8_t is_signed)
{
    return is_signed ? (int64_t)a < (int64_t)b : a < b;
}

SEC("csd/read_stream") int columns_file(const uint8_t *args, uint64_t len)
{
    struct column_args a = {4, 0, 4, 0};
    struct column_stats s = {0, 0, 0, 0};
    uint64_t offset = 0;
    int64_t n;

    if (len >= sizeof a)
        __builtin_memcpy(&a, args, sizeof a);
    if (a.record_size == 0 || a.record_size > CHUNK || (a.width != 1 && a.width != 2 && a.width != 4 && a.width != 8)
        || a.column_offset > a.record_size || a.record_size - a.column_offset < a.width || a.is_signed > 1)
        return -EINVAL;

    uint32_t shift = 64 - 8 * a.width;
    uint64_t per_chunk = CHUNK / a.record_size * a.record_size;
    while ((n = zcsd_read(offset, chunk, per_chunk)) > 0) {
        if (n > CHUNK)
            n = CHUNK;
        for (uint64_t r = 0; r + a.record_size <= (uint64_t)n; r += a.record_size) {
            uint64_t v = load_le(chunk + r + a.column_offset, a.width);
            if (a.is_signed && shift)
                v = (uint64_t)((int64_t)(v << shift) >> shift);
            if (s.count == 0 || less(v, s.min, a.is_signed))
                s.min = v;
            if (s.count == 0 || less(s.max, v, a.is_signed))
                s.max = v;
            s.sum += v;
            s.count++;
        }
        offset += n;
        if ((uint64_t)n < per_chunk)
            break;
    }
    zcsd_return_data(&s, sizeof s);
    return 0;
}
