/* Folding short-lived blocks: most blocks are freed soon after they are allocated, and writing
 * each as an ALLOC and a FREE is most of a trace. The merge (io/rings.c) hands every allocator
 * event here in trace order. The latest `window` events are held back; a FREE whose block's
 * ALLOC (or REALLOC) is still held drops both and counts the block, per (stack, info), for
 * the FOLD record written when the held events are next flushed (docs/trace-format.md). Events
 * leave in the order they came, so everything that is written is exactly what the full stream
 * would hold. The program's threads pay nothing for this: only the merger does it.
 *
 * The flush comes before every record written directly (lt_lock_events) and at every flush
 * interval of the writer, so a folded block never spans a mark, a mapping call, a fork or a
 * module snapshot, and every event reaches the file within a flush interval.
 *
 * Writing may let the event lock go while a buffer rotates, and another merger may then run:
 * room is made (lt_fold_make_room_locked) before an event is taken off its ring, and each held
 * event is taken out of the window before its record is written. */
#include "fold.h"
#include "buffers.h"

#include <string.h>

/* FOLD entries per record, so that a record stays far below a buffer's capacity. */
#define MAX_SITES 2048
#define SITE_SLOTS 4096

struct held {
    struct lt_event e;
    uint64_t tid;
    uint64_t plus;        /* the block's size, once its FREE folded it */
    uint64_t minus_after; /* bytes of folded blocks freed after this event and before the next */
    int folded;
};

/* Folded blocks of one stack and ALLOC info byte (function and path): a site's calls, bytes and
 * paths are all a report needs of blocks that are gone. */
struct site {
    uint64_t bytes, blocks, temporary, by_realloc;
    uint32_t stack;
    uint8_t info, used;
};

static struct {
    int enabled;
    uint64_t window, mask;         /* window: a power of two */
    struct held *held;             /* event n is held[n & mask], for n in [head, tail) */
    uint64_t head, tail;
    /* Held ALLOCs not folded yet, by address: open addressing, linear probing, a quarter full
     * at most. Address 0 marks an empty slot (no block lives at 0). */
    uint64_t *pending_addr, *pending_at;
    uint64_t pending_mask;
    int pending_shift;
    struct site *sites;
    uint32_t site_used[MAX_SITES];
    int site_count;
    uint64_t first_us, last_us;    /* of the folded blocks counted so far */
    uint64_t low_heap;             /* the lowest address of a folded heap-path block */
    uint64_t live, peak;           /* folded bytes live, and their most, as held events leave */
    uint64_t folded_total;
    struct lt_fold_thread fallback; /* for threads without a ring: one at a time */
    uint64_t fallback_tid;
} F;

int lt_fold_enabled(void) { return F.enabled; }
uint64_t lt_fold_window(void) { return F.enabled ? F.window : 0; }
uint64_t lt_fold_held(void) { return F.tail - F.head; }
uint64_t lt_fold_count(void) { return F.folded_total; }

int lt_fold_init(void) {
    if (F.enabled || !lt_config.events_folded) return F.enabled;
    uint64_t window = 64;
    while (window < (uint64_t)lt_config.fold_window) window <<= 1;
    uint64_t slots = window * 4;
    F.held = lt_raw_mmap(window * sizeof *F.held);
    F.pending_addr = lt_raw_mmap(slots * sizeof(uint64_t));
    F.pending_at = lt_raw_mmap(slots * sizeof(uint64_t));
    F.sites = lt_raw_mmap(SITE_SLOTS * sizeof *F.sites);
    if (!F.held || !F.pending_addr || !F.pending_at || !F.sites) return 0;
    F.window = window;
    F.mask = window - 1;
    F.pending_mask = slots - 1;
    F.pending_shift = 64 - __builtin_ctzll(slots);
    F.first_us = UINT64_MAX;
    F.low_heap = UINT64_MAX;
    F.enabled = 1;
    return 1;
}

/* ---- held ALLOCs by address ---- */

static inline uint64_t home_slot(uint64_t addr) {
    return ((addr >> 4) * 0x9E3779B97F4A7C15ull) >> F.pending_shift;
}

static int64_t pending_find(uint64_t addr) {
    for (uint64_t i = home_slot(addr); F.pending_addr[i]; i = (i + 1) & F.pending_mask)
        if (F.pending_addr[i] == addr) return (int64_t)i;
    return -1;
}

static void pending_put(uint64_t addr, uint64_t n) {
    uint64_t i = home_slot(addr);
    while (F.pending_addr[i] && F.pending_addr[i] != addr) i = (i + 1) & F.pending_mask;
    F.pending_addr[i] = addr; /* an address allocated again while held (never by a sane allocator) */
    F.pending_at[i] = n;      /* leaves its older ALLOC unfoldable: it is written */
}

/* Removes slot i, moving later entries of its probe run back so none is cut off from its home. */
static void pending_remove(uint64_t i) {
    for (uint64_t j = i;;) {
        j = (j + 1) & F.pending_mask;
        if (!F.pending_addr[j]) break;
        uint64_t k = home_slot(F.pending_addr[j]);
        int stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (stays) continue;
        F.pending_addr[i] = F.pending_addr[j];
        F.pending_at[i] = F.pending_at[j];
        i = j;
    }
    F.pending_addr[i] = 0;
}

/* ---- FOLD entries ---- */

static struct site *site_of(uint32_t stack, uint8_t info) {
    uint64_t h = ((uint64_t)stack * 0x9E3779B97F4A7C15ull) ^ info;
    uint64_t i = (h ^ (h >> 29)) & (SITE_SLOTS - 1);
    struct site *s;
    while ((s = &F.sites[i])->used && !(s->stack == stack && s->info == info))
        i = (i + 1) & (SITE_SLOTS - 1);
    if (!s->used) {
        *s = (struct site){.stack = stack, .info = info, .used = 1};
        F.site_used[F.site_count++] = (uint32_t)i;
    }
    return s;
}

static inline int site_before(uint32_t a, uint32_t b) {
    const struct site *x = &F.sites[a], *y = &F.sites[b];
    return x->stack != y->stack ? x->stack < y->stack : x->info < y->info;
}

/* Orders the entries by stack (then info) for the FOLD record, which writes each stack as the
 * distance from the previous one. A shell sort: nothing here may call the allocator. */
static void sort_sites(void) {
    for (int gap = F.site_count / 2; gap > 0; gap /= 2)
        for (int i = gap; i < F.site_count; i++)
            for (int j = i; j >= gap && site_before(F.site_used[j], F.site_used[j - gap]); j -= gap) {
                uint32_t swap = F.site_used[j];
                F.site_used[j] = F.site_used[j - gap];
                F.site_used[j - gap] = swap;
            }
}

static void reset_sites(void) {
    for (int i = 0; i < F.site_count; i++) F.sites[F.site_used[i]].used = 0;
    F.site_count = 0;
    F.first_us = UINT64_MAX;
    F.low_heap = UINT64_MAX;
    F.last_us = 0;
    F.live = F.peak = 0;
}

/* ---- the block an event made ---- */

/* The block an ALLOC, or a REALLOC that succeeded, made: its address and its ALLOC info byte
 * (a realloc's function and the new block's path). 0 for anything else. */
static inline uint64_t made_block(const struct lt_event *e, uint8_t *info) {
    if (e->tag == TAG_ALLOC) {
        *info = e->info;
        return e->addr;
    }
    if (e->tag != TAG_REALLOC || (e->info & 0x0F) != REALLOC_OK) return 0;
    *info = (uint8_t)(((e->info >> 6) ? FN_REALLOCARRAY : FN_REALLOC) | (e->info & 0x30));
    return e->addr2;
}

/* ---- temporary allocations ---- */

static inline void note_release(struct lt_fold_thread *t, uint64_t addr) {
    if (t->valid && t->addr == addr) site_of(t->stack, t->info)->temporary++;
    t->valid = 0;
}

static inline void note_alloc(struct lt_fold_thread *t, uint64_t addr, uint32_t stack, uint8_t info) {
    t->addr = addr;
    t->stack = stack;
    t->info = info;
    t->valid = 1;
}

/* ---- the window ---- */

static void drop_window(void) {
    F.head = F.tail;
    memset(F.pending_addr, 0, (F.pending_mask + 1) * sizeof(uint64_t));
    reset_sites();
}

/* Writes the oldest held event, or drops it when it was folded. */
static void pop_one_locked(void) {
    if (!lt_reserve_locked(LT_EVENT_RECORD_MAX)) { /* not tracing any more */
        drop_window();
        return;
    }
    if (F.head == F.tail) return; /* another merger emptied the window while a buffer rotated */
    struct held *h = &F.held[F.head & F.mask];
    uint64_t n = F.head++;
    F.live += h->plus;
    if (F.live > F.peak) F.peak = F.live;
    F.live -= h->minus_after;
    if (h->folded) return;
    uint8_t info;
    uint64_t made = made_block(&h->e, &info);
    if (made) {
        int64_t s = pending_find(made);
        if (s >= 0 && F.pending_at[s] == n) pending_remove((uint64_t)s);
    }
    struct lt_event e = h->e;
    lt_write_event_locked(&e, h->tid);
}

void lt_fold_make_room_locked(void) {
    for (;;) {
        if (F.site_count >= MAX_SITES - 2) lt_fold_flush_locked();
        else if (F.tail - F.head >= F.window) pop_one_locked();
        else return;
    }
}

static struct held *hold(const struct lt_event *e, uint64_t tid) {
    struct held *h = &F.held[F.tail++ & F.mask];
    *h = (struct held){.e = *e, .tid = tid};
    return h;
}

/* Folds the block held event `a` made, released at held event `release` (its bytes count as
 * live until then) at `release_us`. */
static void fold_block(struct held *a, struct held *release, uint64_t release_us, int by_realloc) {
    uint8_t info = 0;
    uint64_t addr = made_block(&a->e, &info);
    a->folded = 1;
    a->plus = a->e.size;
    release->minus_after += a->e.size;
    struct site *s = site_of(a->e.stack, info);
    s->blocks++;
    s->bytes += a->e.size;
    s->by_realloc += (uint64_t)by_realloc;
    if (a->e.time_us < F.first_us) F.first_us = a->e.time_us;
    if (((info >> 4) & 3) == PATH_HEAP && addr < F.low_heap) F.low_heap = addr;
    if (release_us > F.last_us) F.last_us = release_us;
    F.folded_total++;
}

/* A FREE of a held block: both go. */
static void fold(int64_t slot, const struct lt_event *free_event) {
    struct held *a = &F.held[F.pending_at[slot] & F.mask];
    pending_remove((uint64_t)slot);
    fold_block(a, &F.held[(F.tail - 1) & F.mask], free_event->time_us, 0);
}

/* The REALLOC of thread `t`'s realloc in flight: when the old block's making event and its
 * REALLOC_RELEASE are both still held and the call moved or resized the block, the old block
 * folds with both, and the REALLOC no longer names it (it is written as realloc(NULL, n)). */
static void fold_realloc_source(struct lt_fold_thread *t, struct lt_event *e) {
    uint64_t from = t->released_from;
    t->released_from = 0;
    if (!from || !e->addr || (e->info & 0x0F) != REALLOC_OK) return;
    if (from - 1 < F.head || t->release_at < F.head) return; /* already written */
    struct held *a = &F.held[(from - 1) & F.mask];
    uint8_t info;
    if (made_block(&a->e, &info) != e->addr) return;
    struct held *release = &F.held[t->release_at & F.mask];
    release->folded = 1;
    fold_block(a, release, e->time_us, 1);
    e->addr = 0;
}

void lt_fold_take_locked(const struct lt_event *e, uint64_t tid, struct lt_fold_thread *t) {
    if (!t) {
        if (F.fallback_tid != tid) F.fallback.valid = 0;
        F.fallback_tid = tid;
        t = &F.fallback;
    }
    int64_t slot;
    switch (e->tag) {
    case TAG_ALLOC:
        note_alloc(t, e->addr, e->stack, e->info);
        hold(e, tid);
        /* A freed mmapped chunk raises glibc's mmap threshold: the reader must see those frees. */
        if (((e->info >> 4) & 3) != PATH_MMAP) pending_put(e->addr, F.tail - 1);
        break;
    case TAG_FREE:
        note_release(t, e->addr);
        if ((slot = pending_find(e->addr)) >= 0) fold(slot, e);
        else hold(e, tid);
        break;
    case TAG_REALLOC_RELEASE:
        /* The realloc may still fail and keep the block: whether it folds is decided by the
         * thread's REALLOC, the next event of this thread. */
        note_release(t, e->addr);
        t->released_from = 0;
        if ((slot = pending_find(e->addr)) >= 0) {
            t->released_from = F.pending_at[slot] + 1;
            pending_remove((uint64_t)slot);
        }
        hold(e, tid);
        t->release_at = F.tail - 1;
        break;
    default: { /* TAG_REALLOC: the new block counts as the thread's latest allocation */
        struct lt_event copy = *e;
        fold_realloc_source(t, &copy);
        e = &copy;
        uint8_t info;
        uint64_t made = made_block(e, &info);
        if (made) note_alloc(t, made, e->stack, info);
        else t->valid = 0;
        hold(e, tid);
        /* Folding it leaves its REALLOC_RELEASE, which is all the reader needs of the old block
         * when the call succeeded. */
        if (made && ((info >> 4) & 3) != PATH_MMAP) pending_put(made, F.tail - 1);
        break;
    }
    }
}

void lt_fold_flush_locked(void) {
    static uint8_t body[LT_FOLD_HEAD_MAX + MAX_SITES * LT_FOLD_ENTRY_MAX];
    for (;;) {
        while (F.head != F.tail) pop_one_locked();
        if (F.site_count == 0) return;
        int count = F.site_count;
        if (!lt_reserve_locked(LT_SIZED_RECORD_OVERHEAD + LT_FOLD_HEAD_MAX + (size_t)count * LT_FOLD_ENTRY_MAX)) {
            drop_window();
            return;
        }
        if (F.head != F.tail || F.site_count != count) continue; /* the lock went while a buffer rotated */
        uint64_t first = F.first_us == UINT64_MAX ? F.last_us : F.first_us;
        uint64_t low_heap = F.low_heap == UINT64_MAX ? 0 : F.low_heap;
        uint8_t *o = lt_encode_fold_head(body, first, F.last_us, F.peak, low_heap, (uint64_t)count);
        sort_sites();
        uint32_t previous = 0;
        for (int i = 0; i < count; i++) {
            const struct site *s = &F.sites[F.site_used[i]];
            o = lt_encode_fold_entry(o, s->stack - previous, s->info, s->blocks, s->bytes, s->temporary, s->by_realloc);
            previous = s->stack;
        }
        reset_sites();
        lt_append_record_locked(TAG_FOLD, body, (size_t)(o - body), LT_NO_CONTEXT);
        return;
    }
}

/* In a forked child: the prepare handler flushed the window; threads that do not exist here
 * take their latest allocations with them. */
void lt_fold_after_fork(void) {
    if (!F.enabled) return;
    drop_window();
    F.fallback.valid = 0;
    F.fallback.released_from = 0;
    F.folded_total = 0;
}
