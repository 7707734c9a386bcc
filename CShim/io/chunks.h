/* One buffer becomes one chunk of the trace file, zstd-compressed (io/chunks.c). */
#ifndef LEAKTRACE_CHUNKS_H
#define LEAKTRACE_CHUNKS_H

#include "buffers.h"

/* Creates the compressor (once; nothing when `zstd_level` is 0). Its memory comes from raw
 * mappings, never from the process allocator. */
LT_HIDDEN void lt_chunks_init(int zstd_level);
/* Writes `b` as one chunk (the file lock is held). */
LT_HIDDEN void lt_write_chunk(struct lt_buffer *b);

#endif
