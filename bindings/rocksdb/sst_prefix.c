/* sst_prefix: the entries of a RocksDB SST file whose user key starts with a prefix,
 * as seen at a snapshot, optionally only those whose value holds given bytes at an offset.
 *
 * The file is a block-based table as RocksDB 7.x writes it by default (footer
 * format_version 4 or 5, binary-search index with delta-encoded block handles,
 * uncompressed blocks). The kernel reads the footer, binary-searches the index
 * block's restart points for the first block that may hold the prefix (as RocksDB's
 * own seek does: the index is not read whole), walks the index from there, parses
 * each data block's prefix-compressed entries up to its restart array (blocks are
 * read in spans of READAHEAD bytes: the matching ones are adjacent), and stops at the
 * first user key past the prefix: keys are sorted.
 *
 * Of each user key it considers the newest entry at or below the snapshot's sequence
 * (entries of one key are adjacent, newest first): that entry is "selected" when it is
 * a value and the value predicate, if any, holds.
 *
 * Argument blob (little-endian): u64 snapshot sequence, u32 flags, u32 value offset,
 * u32 prefix length, u32 needle length, the prefix (at most MAX_PREFIX bytes; empty
 * matches all), the needle (at most MAX_NEEDLE bytes: a field). Flags: VALUE_AT, the value
 * must hold the needle at the offset; SHADOWS, the entries not selected are returned
 * too, without their value (deletions with their type, unselected values with type
 * UNSELECTED), so the host can let them hide older entries of other files.
 * Output, per returned entry in file order:
 *   u32 user key length, u32 value length, u64 trailer (sequence << 8 | type),
 *   the user key, the value.
 * Status: -EINVAL bad arguments; -EPROTO not such a table, or a malformed block;
 * -EOPNOTSUPP a compressed block, a hash data-block index, an entry that is not a
 * value or a deletion (merge, blob, wide column), or a table with range deletions
 * (their block is not read: its tombstones would be missed); -E2BIG a block or key
 * larger than this kernel's buffers. */
#include "zcsdfs.h"

#define EINVAL 22
#define E2BIG 7
#define EPROTO 71
#define EOPNOTSUPP 95

#define MAX_PREFIX 256
#define MAX_NEEDLE 8
#define ARGS_HEAD 24
#define VALUE_AT 1
#define SHADOWS 2
#define TYPE_DELETION 0
#define TYPE_VALUE 1
#define TYPE_SINGLE_DELETION 7
#define UNSELECTED 0xff
#define READAHEAD 65536
#define RESTARTS 16      /* restart offsets read at a time while walking the index */
#define BLOCK_MAX 262144 /* a data block and its 5-byte trailer */
#define KEY_MAX 8192
#define WIN 65536        /* the index block is read through this window */
#define ENTRY_MAX 8192   /* an index entry longer than this: -E2BIG */
#define FOOTER 53
#define OUT_MAX 65536
#define TRAILER 5
#define MAGIC 0x88e241b785f4cff7ULL

static uint8_t block[BLOCK_MAX + 8]; /* a span of data blocks; + 8: a masked index plus a 4-byte read stays inside */
static uint8_t win[WIN + 8]; /* + 8: a masked index plus a 4-byte read stays inside */
static uint8_t key[KEY_MAX];
static uint8_t sep[KEY_MAX];
static uint32_t prev_klen; /* the previous entry's internal key length (its bytes are still in key) */
static uint32_t decided;   /* whether an entry of the current user key was taken or passed over */
static uint8_t prefix[MAX_PREFIX];
static uint64_t needle64, needle_mask;
static uint32_t plen, nlen, value_at, flags;
static uint64_t snapshot;
static uint64_t span_off, span_len; /* the file's bytes [span_off, span_off + span_len) are in block */
static uint8_t rbuf[4 * RESTARTS];
static uint32_t rbuf_first, rbuf_count;
static uint8_t out[OUT_MAX]; /* entries gathered here: one zcsd_return_data per OUT_MAX bytes */
static uint32_t out_len;

static void flush_out(void)
{
    if (out_len) {
        zcsd_return_data(out, out_len & (OUT_MAX - 1) ? out_len & (OUT_MAX - 1) : OUT_MAX);
        out_len = 0;
    }
}

/* Varints from buf[*pos, limit): each returns 0, or -1 when malformed or cut short.
 * Indexes are masked with the buffer's size (a power of two) for the verifier;
 * the limit checks are what keeps them right. */
#define VARINT(name, type, maxshift, mask)                                                   \
    static inline __attribute__((always_inline)) int name(const uint8_t *buf, uint32_t limit, \
                                                          uint32_t *pos, type *out)           \
    {                                                                                         \
        type v = 0;                                                                           \
        for (uint32_t shift = 0; shift <= maxshift; shift += 7) {                             \
            if (*pos >= limit)                                                                \
                return -1;                                                                    \
            uint8_t b = buf[*pos & (mask)];                                                   \
            *pos += 1;                                                                        \
            v |= (type)(b & 0x7f) << shift;                                                   \
            if (!(b & 0x80)) {                                                                \
                *out = v;                                                                     \
                return 0;                                                                     \
            }                                                                                 \
        }                                                                                     \
        return -1;                                                                            \
    }

VARINT(block_varint32, uint32_t, 28, BLOCK_MAX - 1)
VARINT(win_varint32, uint32_t, 28, WIN - 1)
VARINT(win_varint64, uint64_t, 63, WIN - 1)

static inline __attribute__((always_inline)) uint32_t le32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* <0, 0 or >0: bytes a[0, alen) against the prefix, compared over the shorter length,
 * then by length (as memcmp-then-length orders keys). */
static inline __attribute__((always_inline)) int compare(const uint8_t *a, uint32_t alen, const uint8_t *p,
                                                         uint32_t plen)
{
    uint32_t n = alen < plen ? alen : plen;
    for (uint32_t i = 0; i < n && i < MAX_PREFIX; i++) {
        uint8_t x = a[i & (KEY_MAX - 1)], y = p[i & (MAX_PREFIX - 1)];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return alen < plen ? -1 : alen > plen;
}

/* Append one entry to the output: its head, the user key (in key) and vlen bytes of
 * value from block[vpos, vpos + vlen). 0, or negative on error. */
static __attribute__((noinline)) int emit(uint32_t ulen, uint64_t trailer, uint32_t vpos, uint32_t vlen)
{
    uint8_t head[16];
    for (int i = 0; i < 4; i++) {
        head[i] = ulen >> (8 * i);
        head[4 + i] = vlen >> (8 * i);
    }
    for (int i = 0; i < 8; i++)
        head[8 + i] = trailer >> (8 * i);
    if (ulen > KEY_MAX || vpos > BLOCK_MAX || vlen > BLOCK_MAX - vpos)
        return -EPROTO;
    uint32_t need = sizeof head + ulen + vlen;
    if (need > OUT_MAX - out_len)
        flush_out();
    if (need > OUT_MAX) { /* larger than the buffer: out in pieces */
        zcsd_return_data(head, sizeof head);
        zcsd_return_data(key, ulen);
        if (vlen)
            zcsd_return_data(block + vpos, vlen);
        return 0;
    }
    uint32_t o = out_len;
    for (uint32_t i = 0; i < sizeof head; i++)
        out[(o + i) & (OUT_MAX - 1)] = head[i];
    o += sizeof head;
    for (uint32_t i = 0; i < ulen && i < KEY_MAX; i++)
        out[(o + i) & (OUT_MAX - 1)] = key[i & (KEY_MAX - 1)];
    o += ulen;
    for (uint32_t i = 0; i < vlen && i < BLOCK_MAX; i++)
        out[(o + i) & (OUT_MAX - 1)] = block[(vpos + i) & (BLOCK_MAX - 1)];
    out_len = o + vlen;
    return 0;
}

/* Whether the value at block[vpos, vpos + vlen) holds the needle (nlen <= 8 bytes, in
 * needle64) at value_at: eight loads unrolled, no loop. */
static inline __attribute__((always_inline)) int value_matches(uint32_t vpos, uint32_t vlen)
{
    if (value_at > vlen || nlen > vlen - value_at)
        return 0;
    uint32_t at = vpos + value_at;
    uint64_t v = 0;
#pragma unroll
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)block[(at + i) & (BLOCK_MAX - 1)] << (8 * i);
    return ((v ^ needle64) & needle_mask) == 0;
}

/* Make the file's bytes [offset, offset + n) readable in block: 0, or negative. */
static __attribute__((noinline)) int span(uint64_t offset, uint64_t n, uint64_t file_end)
{
    if (offset >= span_off && offset + n <= span_off + span_len)
        return 0;
    uint64_t want = n < READAHEAD ? READAHEAD : n;
    if (want > BLOCK_MAX)
        want = BLOCK_MAX;
    if (want > file_end - offset)
        want = file_end - offset;
    if (want < n)
        return -EPROTO;
    if (zcsd_read(offset, block, want) != (int64_t)want)
        return -EPROTO;
    span_off = offset;
    span_len = want;
    return 0;
}

/* One data block: return its entries under the prefix (see the head of this file). 1 when
 * a key past the prefix was seen (the rest of the file cannot match), 0 to go on,
 * negative on error. */
static __attribute__((noinline)) int scan_block(uint64_t offset, uint64_t size, uint64_t file_end)
{
    if (size < 4 || size + TRAILER > BLOCK_MAX)
        return -E2BIG;
    int err = span(offset, size + TRAILER, file_end);
    if (err)
        return err;
    uint32_t base = offset - span_off, bsize = size; /* base + size + TRAILER <= span_len */
    if (block[(base + bsize) & (BLOCK_MAX - 1)] != 0)
        return -EOPNOTSUPP; /* compressed */
    uint32_t restarts = le32(&block[(base + bsize - 4) & (BLOCK_MAX - 1)]);
    if (restarts & 0x80000000u)
        return -EOPNOTSUPP; /* a hash index after the restarts */
    if (restarts == 0 || restarts > (bsize - 4) / 4)
        return -EPROTO;
    uint32_t end = base + bsize - 4 - 4 * restarts, pos = base, klen = 0;
    while (pos < end) {
        uint32_t shared, non_shared, vlen;
        if (block_varint32(block, end, &pos, &shared) || block_varint32(block, end, &pos, &non_shared)
            || block_varint32(block, end, &pos, &vlen))
            return -EPROTO;
        if (shared > klen || non_shared > end - pos || vlen > end - pos - non_shared)
            return -EPROTO;
        if (shared + non_shared > KEY_MAX)
            return -E2BIG;
        klen = shared + non_shared;
        if (klen < 8)
            return -EPROTO;
        uint32_t ulen = klen - 8;
        /* the user key is the previous entry's when its length is and no byte of it changes
         * (at a block's first entry nothing is shared: every byte is compared) */
        uint32_t diff = klen != prev_klen;
        for (uint32_t i = 0; i < non_shared && i < KEY_MAX; i++) {
            uint32_t j = (shared + i) & (KEY_MAX - 1);
            uint8_t b = block[(pos + i) & (BLOCK_MAX - 1)];
            if (j < ulen)
                diff |= key[j] ^ b;
            key[j] = b;
        }
        prev_klen = klen;
        if (diff)
            decided = 0;
        pos += non_shared;
        uint32_t vpos = pos;
        pos += vlen;
        int c = compare(key, ulen < plen ? ulen : plen, prefix, plen);
        if (c > 0)
            return 1;
        if (c < 0)
            continue;
        uint64_t trailer = 0;
        for (int i = 0; i < 8; i++)
            trailer |= (uint64_t)key[(ulen + i) & (KEY_MAX - 1)] << (8 * i);
        uint32_t type = trailer & 0xff;
        if (type != TYPE_VALUE && type != TYPE_DELETION && type != TYPE_SINGLE_DELETION)
            return -EOPNOTSUPP;
        if ((trailer >> 8) > snapshot || decided)
            continue; /* newer than the snapshot, or older than the entry decided */
        decided = 1;
        if (type != TYPE_VALUE || ((flags & VALUE_AT) && !value_matches(vpos, vlen))) {
            if (!(flags & SHADOWS))
                continue;
            trailer |= type == TYPE_VALUE ? UNSELECTED : 0; /* not selected: returned without its value */
            vpos = vlen = 0;
        }
        err = emit(ulen, trailer, vpos, vlen);
        if (err)
            return err;
    }
    return 0;
}

/* Whether the metaindex block names a range-deletion block: 1, 0, or negative on error. */
static __attribute__((noinline)) int has_range_deletions(uint64_t offset, uint64_t size)
{
    static const char name[] = "rocksdb.range_del";
    const uint32_t nlen = sizeof name - 1;
    if (size < 4 || size + TRAILER > WIN)
        return size + TRAILER > WIN ? -E2BIG : -EPROTO;
    if (zcsd_read(offset, win, size + TRAILER) != (int64_t)(size + TRAILER))
        return -EPROTO;
    if (win[size & (WIN - 1)] != 0)
        return -EOPNOTSUPP;
    uint32_t bsize = size;
    uint32_t restarts = le32(&win[(bsize - 4) & (WIN - 1)]);
    if (restarts == 0 || restarts > (bsize - 4) / 4)
        return -EPROTO;
    uint32_t end = bsize - 4 - 4 * restarts, pos = 0, klen = 0;
    while (pos < end) {
        uint32_t shared, non_shared, vlen;
        if (win_varint32(win, end, &pos, &shared) || win_varint32(win, end, &pos, &non_shared)
            || win_varint32(win, end, &pos, &vlen))
            return -EPROTO;
        if (shared > klen || non_shared > end - pos || vlen > end - pos - non_shared
            || shared + non_shared > KEY_MAX)
            return -EPROTO;
        for (uint32_t i = 0; i < non_shared && i < KEY_MAX; i++)
            sep[(shared + i) & (KEY_MAX - 1)] = win[(pos + i) & (WIN - 1)];
        klen = shared + non_shared;
        pos += non_shared + vlen;
        if (klen == nlen) {
            uint32_t i = 0;
            while (i < nlen && sep[i & (KEY_MAX - 1)] == (uint8_t)name[i])
                i++;
            if (i == nlen)
                return 1;
        }
    }
    return 0;
}

/* The offset (from the index block's start) of restart point r, or negative. */
static inline __attribute__((always_inline)) int64_t restart(uint64_t restarts_at, uint32_t restarts, uint32_t r)
{
    if (r >= restarts)
        return -EPROTO;
    if (r < rbuf_first || r >= rbuf_first + rbuf_count) {
        uint32_t n = restarts - r < RESTARTS ? restarts - r : RESTARTS;
        if (zcsd_read(restarts_at + 4 * (uint64_t)r, rbuf, 4 * n) != 4 * (int64_t)n)
            return -EPROTO;
        rbuf_first = r;
        rbuf_count = n;
    }
    return le32(&rbuf[(4 * (r - rbuf_first)) & (4 * RESTARTS - 1)]);
}

/* Whether the index entry at restart r has a separator below the prefix (every key of
 * its block, and of the blocks before, sorts before the prefix): 1, 0, or negative. */
static __attribute__((noinline)) int restart_below(uint64_t index_off, uint64_t restarts_at, uint32_t restarts,
                                                   uint32_t r)
{
    int64_t roff = restart(restarts_at, restarts, r);
    if (roff < 0)
        return roff;
    uint64_t at = index_off + roff;
    if (at >= restarts_at)
        return -EPROTO;
    uint64_t want = restarts_at - at < ENTRY_MAX ? restarts_at - at : ENTRY_MAX;
    if (zcsd_read(at, win, want) != (int64_t)want)
        return -EPROTO;
    uint32_t pos = 0, shared = 0, non_shared = 0;
    if (win_varint32(win, want, &pos, &shared) || win_varint32(win, want, &pos, &non_shared))
        return -EPROTO;
    if (shared != 0 || non_shared > want - pos)
        return -EPROTO;
    if (non_shared > KEY_MAX)
        return -E2BIG;
    for (uint32_t i = 0; i < non_shared && i < KEY_MAX; i++)
        sep[i & (KEY_MAX - 1)] = win[(pos + i) & (WIN - 1)];
    return compare(sep, non_shared, prefix, plen) < 0;
}

SEC("csd/read_stream") int sst_prefix(const uint8_t *args, uint64_t len)
{
    uint64_t size = zcsd_file_size();

    out_len = 0;
    decided = prev_klen = 0;
    span_off = span_len = 0;
    rbuf_first = rbuf_count = 0;
    if (len < ARGS_HEAD)
        return -EINVAL;
    snapshot = (uint64_t)le32(&args[4]) << 32 | le32(&args[0]);
    flags = le32(&args[8]);
    value_at = le32(&args[12]);
    plen = le32(&args[16]);
    nlen = le32(&args[20]);
    if (plen > MAX_PREFIX || nlen > MAX_NEEDLE || len != ARGS_HEAD + plen + nlen)
        return -EINVAL;
    for (uint32_t i = 0; i < plen && i < MAX_PREFIX; i++)
        prefix[i & (MAX_PREFIX - 1)] = args[(ARGS_HEAD + i) & 1023];
    needle64 = needle_mask = 0;
    for (uint32_t i = 0; i < nlen && i < MAX_NEEDLE; i++) {
        needle64 |= (uint64_t)args[(ARGS_HEAD + plen + i) & 1023] << (8 * i);
        needle_mask |= (uint64_t)0xff << (8 * i);
    }
    if (size < FOOTER || zcsd_read(size - FOOTER, win, FOOTER) != FOOTER)
        return -EPROTO;
    uint64_t magic = (uint64_t)le32(&win[49]) << 32 | le32(&win[45]);
    uint32_t version = le32(&win[41]);
    if (magic != MAGIC || version < 4 || version > 5)
        return -EPROTO;
    /* checksum type, metaindex handle, index handle (varints), padding */
    uint64_t meta_off, meta_size, index_off, index_size;
    uint32_t fpos = 1;
    if (win_varint64(win, 41, &fpos, &meta_off) || win_varint64(win, 41, &fpos, &meta_size)
        || win_varint64(win, 41, &fpos, &index_off) || win_varint64(win, 41, &fpos, &index_size))
        return -EPROTO;
    if (index_size < 4 || index_off + index_size + TRAILER > size)
        return -EPROTO;
    int meta = has_range_deletions(meta_off, meta_size);
    if (meta)
        return meta < 0 ? meta : -EOPNOTSUPP; /* range tombstones: not read here */
    uint8_t tail[TRAILER + 4];
    if (zcsd_read(index_off + index_size - 4, tail, sizeof tail) != sizeof tail)
        return -EPROTO;
    if (tail[4] != 0)
        return -EOPNOTSUPP; /* a compressed index */
    uint32_t restarts = le32(tail);
    if (restarts == 0 || restarts > (index_size - 4) / 4)
        return -EPROTO;
    uint64_t restarts_at = index_off + index_size - 4 - 4 * (uint64_t)restarts;

    /* The first restart whose separator is not below the prefix; the walk starts one
     * restart before it (the entries after a restart point may still be below). */
    uint32_t lo = 0, hi = restarts;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int below = restart_below(index_off, restarts_at, restarts, mid);
        if (below < 0)
            return below;
        if (below)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t r = lo ? lo - 1 : 0;
    int64_t first = restart(restarts_at, restarts, r);
    if (first < 0)
        return first;

    /* The index entries: <shared><non_shared><key delta><value>; at a restart the value
     * is a whole block handle (offset, size), elsewhere the size's signed delta from the
     * previous handle, the block following the previous one. */
    uint64_t at = index_off + first, win_at = at, win_len = 0;
    uint64_t block_off = 0, block_size = 0;
    uint32_t slen = 0;
    uint64_t next_restart = at;
    while (at < restarts_at) {
        if (at + ENTRY_MAX > win_at + win_len && win_at + win_len < restarts_at) {
            uint64_t want = restarts_at - at < WIN ? restarts_at - at : WIN;
            if (zcsd_read(at, win, want) != (int64_t)want)
                return -EPROTO;
            win_at = at;
            win_len = want;
        }
        uint32_t limit = win_len, pos = at - win_at;
        int is_restart = 0;
        if (at == next_restart && r < restarts) {
            is_restart = 1;
            r++;
            if (r < restarts) {
                int64_t roff = restart(restarts_at, restarts, r);
                if (roff < 0)
                    return roff;
                next_restart = index_off + roff;
            }
        }
        uint32_t shared, non_shared;
        if (win_varint32(win, limit, &pos, &shared) || win_varint32(win, limit, &pos, &non_shared))
            return -EPROTO;
        if (shared > slen || non_shared > limit - pos)
            return -EPROTO;
        if (shared + non_shared > KEY_MAX)
            return -E2BIG;
        for (uint32_t i = 0; i < non_shared && i < KEY_MAX; i++)
            sep[(shared + i) & (KEY_MAX - 1)] = win[(pos + i) & (WIN - 1)];
        pos += non_shared;
        slen = shared + non_shared;
        if (is_restart) {
            if (win_varint64(win, limit, &pos, &block_off) || win_varint64(win, limit, &pos, &block_size))
                return -EPROTO;
        } else {
            uint64_t zz;
            if (win_varint64(win, limit, &pos, &zz))
                return -EPROTO;
            int64_t delta = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
            block_off += block_size + TRAILER;
            block_size += delta;
        }
        at = win_at + pos;
        /* a separator is >= every key of its block: below the prefix, nothing there matches */
        if (compare(sep, slen, prefix, plen) < 0)
            continue;
        if (block_off >= index_off)
            return -EPROTO; /* data blocks lie before the index */
        int done = scan_block(block_off, block_size, index_off);
        if (done < 0)
            return done;
        if (done)
            break;
    }
    flush_out();
    return 0;
}
