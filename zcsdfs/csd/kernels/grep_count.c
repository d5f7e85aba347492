/* grep -c: the number of lines that contain a byte string (the argument
 * blob, at most MAX_PATTERN bytes, no newline; empty matches every line).
 * Lines end at '\n'; a last line without one counts if it is not empty.
 * Output: the count as a u64. A pattern with a newline or too long: -22.
 *
 * The pattern becomes a Knuth-Morris-Pratt automaton (state = bytes of the
 * pattern matched so far; one table lookup per byte, no backtracking), so
 * a match may cross the chunks the file is read in. */
#include "zcsdfs.h"

#define CHUNK 65536
#define MAX_PATTERN 255
#define EINVAL 22

static uint8_t chunk[CHUNK];
static uint8_t next[MAX_PATTERN][256]; /* next[state][byte] */

SEC("csd/read_stream") int grep_count_file(const uint8_t *args, uint64_t len)
{
    uint64_t count = 0, offset = 0;
    uint32_t m = len, state = 0, back = 0;
    int matched = m == 0, in_line = 0;
    int64_t n;

    if (len > MAX_PATTERN)
        return -EINVAL;
    for (uint32_t j = 0; j < m; j++) {
        uint8_t want = args[j];
        if (want == '\n')
            return -EINVAL;
        for (uint32_t c = 0; c < 256; c++)
            next[j][c] = j ? next[back][c] : 0;
        next[j][want] = j + 1;
        if (j)
            back = next[back][want];
    }
    while ((n = zcsd_read(offset, chunk, sizeof chunk)) > 0) {
        if (n > CHUNK)
            n = CHUNK;
        for (int64_t i = 0; i < n; i++) {
            uint8_t c = chunk[i];
            if (c == '\n') {
                count += matched;
                matched = m == 0;
                in_line = 0;
                state = 0;
                continue;
            }
            in_line = 1;
            if (!matched) {
                state = next[state][c];
                matched = state == m;
            }
        }
        offset += n;
    }
    count += in_line && matched;
    zcsd_return_data(&count, sizeof count);
    return 0;
}
