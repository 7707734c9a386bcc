/* One buffer becomes one chunk: a 16-byte chunk header, then the records, zstd-compressed when
 * that makes them smaller (io/chunks.h). */
#include "chunks.h"
#include "file.h"

#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: our own memory for zstd */
#include <zstd.h>

#define CHUNK_HEADER 16

static uint8_t *compress_out;
static size_t compress_out_cap;
static ZSTD_CCtx *zstd_ctx;

/* ---- zstd's memory comes from raw mappings, never from the process allocator ---- */

static void *zstd_alloc(void *opaque, size_t size) {
    (void)opaque;
    size_t total = (size + 16 + 4095) & ~(size_t)4095;
    uint8_t *p = lt_raw_mmap(total);
    if (!p) return NULL;
    memcpy(p, &total, sizeof total);
    return p + 16;
}

static void zstd_free(void *opaque, void *address) {
    (void)opaque;
    if (!address) return;
    uint8_t *p = (uint8_t *)address - 16;
    size_t total;
    memcpy(&total, p, sizeof total);
    lt_arena_free_pages(p, total);
}

void lt_chunks_init(int zstd_level) {
    if (!compress_out) {
        compress_out_cap = ZSTD_compressBound(LT_BUFFER_CAPACITY) + CHUNK_HEADER;
        compress_out = lt_raw_mmap((compress_out_cap + 4095) & ~(size_t)4095);
    }
    if (!zstd_ctx && zstd_level > 0) {
        ZSTD_customMem mem = {zstd_alloc, zstd_free, NULL};
        zstd_ctx = ZSTD_createCCtx_advanced(mem);
        if (zstd_ctx) {
            ZSTD_CCtx_setParameter(zstd_ctx, ZSTD_c_compressionLevel, zstd_level);
            ZSTD_CCtx_setParameter(zstd_ctx, ZSTD_c_checksumFlag, 1);
        }
    }
}

/* ---- chunks ---- */

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

void lt_write_chunk(struct lt_buffer *b) {
    if (b->len == 0 || lt_file.closed) return;
    uint8_t *out = compress_out;
    size_t stored = 0;
    int codec = 0;
    if (lt_config.zstd_level > 0 && zstd_ctx && out) {
        size_t r = ZSTD_compress2(zstd_ctx, out + CHUNK_HEADER, compress_out_cap - CHUNK_HEADER, b->data, b->len);
        if (!ZSTD_isError(r) && r < b->len) {
            stored = r;
            codec = 1;
        }
    }
    uint8_t header[CHUNK_HEADER] = {'L', 'T', 'C', 'K', (uint8_t)codec, 0, 0, 0};
    put_u32(header + 12, (uint32_t)b->len);
    int failed;
    if (codec == 1) {
        put_u32(header + 8, (uint32_t)stored);
        memcpy(out, header, CHUNK_HEADER);
        failed = lt_file_write(out, CHUNK_HEADER + stored);
    } else {
        put_u32(header + 8, (uint32_t)b->len);
        failed = lt_file_write(header, CHUNK_HEADER) || lt_file_write(b->data, b->len);
    }
    if (failed) {
        lt_file_failed("cannot write trace", errno);
        return;
    }
    lt_buf.count_chunks++;
}
