/* The C half of docs/trace-format.md: every record the library writes is encoded here, one
 * function per record type, and nothing here takes a lock, touches a buffer's life or the file.
 *
 * Two kinds of record:
 *  - events and stack nodes (ALLOC, FREE, REALLOC_RELEASE, REALLOC, STACK, with THREAD and TIME
 *    as context) are encoded in place in the active buffer; they are on the hot path, so their
 *    encoders are inline;
 *  - sized records (tag, length, body: MODULES, the mapping calls, SAMPLE, MARK, NOTE, ...) have
 *    their body encoded into the caller's array by a function of records.c, and are appended
 *    with lt_append_record (io/buffers.h). */
#ifndef LEAKTRACE_RECORDS_H
#define LEAKTRACE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

struct dl_phdr_info;

/* ---- record tags ---- */
enum {
    TAG_ALLOC = 0x01, TAG_FREE = 0x02, TAG_REALLOC_RELEASE = 0x03, TAG_REALLOC = 0x04,
    TAG_TIME = 0x05, TAG_THREAD = 0x06, TAG_STACK = 0x07,
    TAG_MODULES = 0x40, TAG_MMAP = 0x41, TAG_MUNMAP = 0x42, TAG_MREMAP = 0x43, TAG_BRK = 0x44,
    TAG_SBRK = 0x45, TAG_MALLOPT = 0x46, TAG_SAMPLE = 0x47, TAG_MARK = 0x48,
    TAG_THREAD_NAME = 0x49, TAG_FORK = 0x4A, TAG_EXEC = 0x4B, TAG_NOTE = 0x4C, TAG_FOLD = 0x4D,
    TAG_REACH = 0x4E, TAG_END = 0x4F,
};

/* The function an ALLOC record names (its info byte's low bits). */
enum lt_alloc_fn {
    FN_MALLOC = 0, FN_CALLOC, FN_REALLOC, FN_REALLOCARRAY, FN_POSIX_MEMALIGN,
    FN_ALIGNED_ALLOC, FN_MEMALIGN, FN_VALLOC, FN_PVALLOC,
};

enum lt_path { PATH_UNKNOWN = 0, PATH_HEAP = 1, PATH_MMAP = 2, PATH_THREAD_ARENA = 3 };
enum lt_realloc_status { REALLOC_OK = 0, REALLOC_FAILED = 1, REALLOC_FREED = 2 };
/* REALLOC info bit 7: the old pointer was NULL and is not written. */
#define LT_REALLOC_NO_OLD 0x80

/* ---- varints and strings ---- */

static inline uint8_t *lt_put_uv(uint8_t *out, uint64_t v) {
    while (v >= 0x80) {
        *out++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *out++ = (uint8_t)v;
    return out;
}

static inline uint8_t *lt_put_sv(uint8_t *out, int64_t v) {
    return lt_put_uv(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline uint8_t *lt_put_str(uint8_t *out, const char *s, size_t len) {
    out = lt_put_uv(out, len);
    __builtin_memcpy(out, s, len);
    return out + len;
}

/* Writes `v` in decimal at `out` (no terminating NUL); returns the end. At most 20 bytes. */
static inline char *lt_put_decimal(char *out, uint64_t v) {
    char digits[20];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) > 0);
    while (n) *out++ = digits[--n];
    return out;
}

/* ---- the state a chunk's encoding carries from record to record ---- */

/* Reset for every chunk, so each chunk decodes on its own. */
struct lt_chunk_state {
    uint64_t prev_addr;   /* addresses are deltas from the previous one */
    uint64_t cur_tid;     /* the thread of the last THREAD record */
    uint64_t cur_time;    /* the time of the last TIME record */
    int has_time;
};

/* Addresses are written as the signed difference from the previous address in the chunk:
 * a block freed soon after it was allocated costs a byte or two. */
static inline uint8_t *lt_put_addr(struct lt_chunk_state *c, uint8_t *out, uint64_t addr) {
    out = lt_put_sv(out, (int64_t)(addr - c->prev_addr));
    c->prev_addr = addr;
    return out;
}

/* The most bytes lt_put_context writes. */
#define LT_CONTEXT_MAX 24

/* Writes THREAD and TIME at `o` when the thread or the clock changed since the chunk's last
 * event. TIME never goes back: a merged event may carry a clock reading a tick older than one
 * written before it, so `*time_floor` (the latest TIME written, in any chunk) is the least. */
static inline uint8_t *lt_put_context(struct lt_chunk_state *c, uint64_t *time_floor, uint8_t *o, uint64_t tid,
                                      uint64_t now) {
    if (__builtin_expect(c->cur_tid != tid, 0)) {
        *o++ = TAG_THREAD;
        o = lt_put_uv(o, tid);
        c->cur_tid = tid;
    }
    if (now < *time_floor) now = *time_floor;
    if (__builtin_expect(!c->has_time || c->cur_time != now, 0)) {
        *o++ = TAG_TIME;
        o = lt_put_uv(o, now);
        c->cur_time = now;
        c->has_time = 1;
        *time_floor = now;
    }
    return o;
}

/* ---- allocator events: ALLOC, FREE, REALLOC_RELEASE, REALLOC ---- */

/* One allocator event as a hook saw it (it waits in its thread's ring, io/rings.c, to be
 * encoded). */
struct lt_event {
    uint64_t seq;      /* the event's place in the trace (io/rings.c) */
    uint64_t addr;     /* the block (REALLOC: the old one) */
    uint64_t addr2;    /* REALLOC: the new block */
    uint64_t size;
    uint64_t time_us;
    uint32_t stack;
    uint8_t tag;       /* TAG_ALLOC, TAG_FREE, TAG_REALLOC_RELEASE or TAG_REALLOC */
    uint8_t info;      /* the record's info byte */
};

/* The most bytes one event takes with its context: THREAD and TIME, then the record. */
#define LT_EVENT_RECORD_MAX (LT_CONTEXT_MAX + 1 + 1 + 10 + 10 + 10 + 5)

/* Encodes `e` of thread `tid`, with its context, at `o` (room for LT_EVENT_RECORD_MAX). */
static inline uint8_t *lt_encode_event(struct lt_chunk_state *c, uint64_t *time_floor, uint8_t *o,
                                       const struct lt_event *e, uint64_t tid) {
    o = lt_put_context(c, time_floor, o, tid, e->time_us);
    *o++ = e->tag;
    switch (e->tag) {
    case TAG_ALLOC:
        *o++ = e->info;
        o = lt_put_addr(c, o, e->addr);
        o = lt_put_uv(o, e->size);
        o = lt_put_uv(o, e->stack);
        break;
    case TAG_FREE:
    case TAG_REALLOC_RELEASE:
        o = lt_put_addr(c, o, e->addr);
        break;
    default: /* TAG_REALLOC; realloc(NULL, n) says so in its info byte instead of writing 0 */
        if (e->addr) {
            *o++ = e->info;
            o = lt_put_addr(c, o, e->addr);
        } else {
            *o++ = (uint8_t)(e->info | LT_REALLOC_NO_OLD);
        }
        o = lt_put_addr(c, o, e->addr2);
        o = lt_put_uv(o, e->size);
        o = lt_put_uv(o, e->stack);
        break;
    }
    return o;
}

/* ---- STACK: one node (parent, ip) of the trie of stacks ---- */

#define LT_STACK_RECORD_MAX (1 + 10 + 10)

/* Node `id`'s parent is written as the distance back to it (id - parent): a new node's parent
 * is usually one defined just before it. */
static inline uint8_t *lt_encode_stack(uint8_t *o, uint32_t id, uint32_t parent, uint64_t ip) {
    *o++ = TAG_STACK;
    o = lt_put_uv(o, id - parent);
    return lt_put_uv(o, ip);
}

/* ---- sized records: each function writes the body at `body` and returns its length ---- */

/* The most bytes a sized record takes beyond its body: the tag and the length varint. */
#define LT_SIZED_RECORD_OVERHEAD 11

/* Frames a sized record at `o`: tag, body length, body. Returns the end. */
static inline uint8_t *lt_encode_sized(uint8_t *o, uint8_t tag, const uint8_t *body, size_t len) {
    *o++ = tag;
    o = lt_put_uv(o, len);
    __builtin_memcpy(o, body, len);
    return o + len;
}

/* MODULES: generation and count first, whose sizes are known only when every module is
 * encoded: the modules go after a gap of LT_MODULES_PREFIX_MAX bytes, and
 * lt_encode_modules_prefix writes the prefix just before them, returning where it starts. */
#define LT_MODULES_PREFIX_MAX 20
uint8_t *lt_encode_modules_prefix(uint8_t *modules, uint64_t generation, uint64_t count);
/* One module of a MODULES body; `path` is its file, `id` its build-id note. Returns the end,
 * or NULL when the module needs more than `cap` bytes. */
uint8_t *lt_encode_module(uint8_t *out, size_t cap, const struct dl_phdr_info *info, const char *path,
                          const uint8_t *id, size_t id_len);

#define LT_FAILED_ADDRESS UINT64_MAX
#define LT_PATH_MAX 4096
#define LT_MMAP_BODY_MAX (LT_PATH_MAX + 128)
size_t lt_encode_mmap(uint8_t *body, uint64_t addr, uint64_t len, int prot, int flags, int64_t fd, uint64_t offset,
                      uint64_t result, int err, const char *path, size_t path_len, uint32_t stack);
#define LT_MUNMAP_BODY_MAX 64
size_t lt_encode_munmap(uint8_t *body, uint64_t addr, uint64_t len, int result, int err, uint32_t stack);
#define LT_MREMAP_BODY_MAX 96
size_t lt_encode_mremap(uint8_t *body, uint64_t old, uint64_t old_size, uint64_t new_size, int flags,
                        uint64_t new_addr, uint64_t result, int err, uint32_t stack);
#define LT_BRK_BODY_MAX 64
size_t lt_encode_brk(uint8_t *body, uint64_t addr, int result, uint64_t before, uint64_t after, uint32_t stack);
#define LT_SBRK_BODY_MAX 64
size_t lt_encode_sbrk(uint8_t *body, int64_t increment, uint64_t result, uint64_t after, uint32_t stack);
#define LT_MALLOPT_BODY_MAX 40
size_t lt_encode_mallopt(uint8_t *body, int param, int value, int result);

#define LT_SAMPLE_BODY_MAX 32
size_t lt_encode_sample(uint8_t *body, uint64_t vss_pages, uint64_t rss_pages, uint64_t shared_pages);

/* Names longer than LT_MARK_NAME_MAX bytes are cut. */
#define LT_MARK_NAME_MAX 200
#define LT_MARK_BODY_MAX 220
size_t lt_encode_mark(uint8_t *body, const char *name, uint64_t source);

#define LT_THREAD_NAME_MAX 40
#define LT_THREAD_NAME_BODY_MAX 64
size_t lt_encode_thread_name(uint8_t *body, uint64_t tid, const char *name, size_t len);

#define LT_FORK_BODY_MAX 16
size_t lt_encode_fork(uint8_t *body, uint64_t child_pid);

#define LT_EXEC_PATH_MAX 4000
#define LT_EXEC_BODY_MAX 4100
size_t lt_encode_exec(uint8_t *body, const char *path);

#define LT_NOTE_TEXT_MAX 512
#define LT_NOTE_BODY_MAX 600
size_t lt_encode_note(uint8_t *body, int level, const char *text);

/* FOLD: blocks not written because they lived only while the writer held their events back
 * (io/fold.c). The head, then one entry per (stack, info), by stack, each stack written as the
 * distance from the previous entry's. */
#define LT_FOLD_HEAD_MAX 50
#define LT_FOLD_ENTRY_MAX 46
uint8_t *lt_encode_fold_head(uint8_t *body, uint64_t first_us, uint64_t last_us, uint64_t peak_bytes,
                             uint64_t low_heap, uint64_t count);
uint8_t *lt_encode_fold_entry(uint8_t *out, uint32_t stack_delta, uint8_t info, uint64_t blocks, uint64_t bytes,
                              uint64_t temporary, uint64_t by_realloc);

/* REACH: the reachability of the blocks live at exit (core/reach.c). The head, then `count`
 * entries, each (address - previous entry's address) * 4 + category, in address order. */
enum lt_reach_flag {
    REACH_SCANNED = 1, REACH_LIBC_FREERES = 2, REACH_CXX_FREERES = 4, REACH_OTHER_THREADS = 8,
    REACH_IN_SIGNAL_HANDLER = 16, REACH_REFUSED = 32,
};
enum lt_reach_category { REACH_STILL_REACHABLE = 0, REACH_POSSIBLY_LOST = 1, REACH_INDIRECTLY_LOST = 2,
                         REACH_DEFINITELY_LOST = 3 };
#define LT_REACH_HEAD_MAX 50
#define LT_REACH_ENTRY_MAX 10
uint8_t *lt_encode_reach_head(uint8_t *body, uint64_t flags, uint64_t scan_us, uint64_t root_bytes,
                              uint64_t scanned_bytes, uint64_t count);
static inline uint8_t *lt_encode_reach_entry(uint8_t *o, uint64_t address_delta, unsigned category) {
    return lt_put_uv(o, address_delta << 2 | category);
}

/* END: what the trace holds, for the reader to check it is whole, and, when a signal ended
 * the process, which one: its number, si_code, the fault address, the thread that took it and
 * that thread's stack at the signal (0: none). */
struct lt_end_counts {
    uint64_t allocs, frees, reallocs, mappings, stacks, chunks, untraced;
    int signal;                   /* 0: the process exited; the fields below are not written */
    int64_t signal_code;
    uint64_t fault_address, signal_tid;
    uint32_t signal_stack;
};
#define LT_END_BODY_MAX 140
size_t lt_encode_end(uint8_t *body, const struct lt_end_counts *counts);

/* ---- the file header ---- */

/* The library's version, written into every header. */
#define LT_VERSION "1.0.0"

/* What the header says about the process (docs/trace-format.md, "Header"). */
struct lt_header_info {
    const char *program_path;
    const char *parent_trace;     /* NULL unless a forked child */
    uint64_t parent_offset;
    int depth;
    int sample_ms;
    int allocator_is_glibc;
    const char *allocator_name;
    int events_folded;            /* header key 19 */
    uint64_t fold_window;         /* header key 20, with events_folded */
};
/* Writes the header at `out`; returns its length, or 0 when it does not fit in `cap`. */
size_t lt_encode_header(uint8_t *out, size_t cap, const struct lt_header_info *info);

#endif
