/* Written against OpenCSD's API (opencsd.h), in the style of its FluffleFS
 * kernels: the count of little-endian u32 values above THRESHOLD in the
 * requested range, read block by block through the call context's LBA list.
 * The values are the range's bytes taken four at a time from its start.
 * Output: the count as a u64. */
#include <stdint.h>

#include "opencsd.h"

#define THRESHOLD 0x7fffffffu

int main()
{
    struct flfs_call *call = 0;
    bpf_get_call_info((void **)&call);
    if (call == 0)
        return -1;
    if (call->op != FLFS_READ_STREAM)
        return -3;

    uint64_t *lba = (uint64_t *)call;
    find_data_lba(&lba, false);

    uint64_t sector_size = bpf_get_sector_size();
    uint64_t zone_size = bpf_get_zone_size();
    uint64_t buffer_size;
    uint8_t *buffer;
    bpf_get_mem_info((void **)&buffer, &buffer_size);
    if (buffer_size < sector_size)
        return -2;

    uint64_t start = call->dims.offset;
    uint64_t end = start + call->dims.size;
    if (end > call->ino.size)
        end = call->ino.size;

    uint64_t count = 0, value = 0, have = 0;
    for (uint64_t skip = 0; skip < start / sector_size; skip++)
        next_data_lba(&lba);
    for (uint64_t pos = start - start % sector_size; pos < end; pos += sector_size) {
        uint64_t zone, sector;
        lba_to_position(*lba, zone_size, &zone, &sector);
        if (bpf_read(zone, sector, 0, sector_size, buffer) != 0)
            return -4;
        uint64_t lo = pos < start ? start - pos : 0;
        uint64_t hi = end - pos < sector_size ? end - pos : sector_size;
        for (uint64_t i = lo; i < hi; i++) {
            value |= (uint64_t)buffer[i] << (8 * have);
            if (++have == 4) {
                count += value > THRESHOLD;
                value = 0;
                have = 0;
            }
        }
        next_data_lba(&lba);
    }
    bpf_return_data(&count, sizeof count);
    return 0;
}
