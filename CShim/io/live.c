/* The live set: the blocks and direct-mapping pieces live in the process, kept from the events
 * as the merge writes them (io/rings.c), so at exit the scan (core/reach.c) knows what to
 * classify without asking the allocator. Folded blocks (io/fold.c) never reach it: they were
 * freed before their events left the window.
 *
 * Whoever merges keeps it: the writer thread, or a program thread whose ring filled. Blocks
 * are a table by address (io/live.h; at most half full, 16 bytes a slot: 32 to 64 bytes per
 * live block). Mapping pieces are a sorted array, edited as the
 * analyzer's MappingSet edits its own (Sources/LiveSet/MappingSet.swift), so both name the
 * same pieces by their start. */
#include "live.h"

#include <string.h>

#define FIRST_SLOTS (1u << 16)
#define STASH_SLOTS 1024

/* A realloc's old block, between its REALLOC_RELEASE and the thread's REALLOC: a failed call
 * leaves it live. */
struct stash {
    uint64_t tid, addr, size;
};

struct piece {
    uint64_t start, end;
};

/* An allocator event not applied yet (lt_live_event_locked). */
struct pending {
    uint64_t addr, addr2, size, tid;
    uint8_t tag, status;
};
#define PENDING_EVENTS 256

static struct {
    int enabled, incomplete;
    struct lt_live_table table;
    uint64_t used;
    struct stash *stash;
    struct piece *pieces;
    uint64_t piece_count, piece_cap;
    struct pending pending[PENDING_EVENTS];
    uint32_t pending_count;
} L;

int lt_live_enabled(void) { return L.enabled; }
int lt_live_complete(void) { return !L.incomplete; }

int lt_live_init(void) {
    if (L.enabled) return 1;
    if (!lt_config.reachability) return 0;
    L.table.slots = lt_raw_mmap(FIRST_SLOTS * sizeof *L.table.slots);
    L.stash = lt_raw_mmap(STASH_SLOTS * sizeof *L.stash);
    L.piece_cap = 4096 / sizeof(struct piece);
    L.pieces = lt_raw_mmap(4096);
    if (!L.table.slots || !L.stash || !L.pieces) return 0;
    L.table.mask = FIRST_SLOTS - 1;
    L.table.shift = 64 - __builtin_ctzll(FIRST_SLOTS);
    L.enabled = 1;
    return 1;
}

/* The table could not grow: keeping on would classify a part as if it were all. */
static void give_up(void) {
    L.enabled = 0;
    L.incomplete = 1;
}

/* ---- blocks by address ---- */

static inline uint64_t home(uint64_t addr) { return lt_live_home(&L.table, addr); }

static void grow(void) {
    uint64_t slots = (L.table.mask + 1) * 2;
    struct lt_live_entry *bigger = lt_raw_mmap(slots * sizeof *bigger);
    if (!bigger) {
        give_up();
        return;
    }
    struct lt_live_entry *old = L.table.slots;
    uint64_t old_slots = L.table.mask + 1;
    L.table.slots = bigger;
    L.table.mask = slots - 1;
    L.table.shift--;
    for (uint64_t i = 0; i < old_slots; i++) {
        if (!old[i].addr) continue;
        uint64_t j = home(old[i].addr);
        while (bigger[j].addr) j = (j + 1) & L.table.mask;
        bigger[j] = old[i];
    }
    lt_arena_free_pages(old, old_slots * sizeof *old);
}

static void put(uint64_t addr, uint64_t size) {
    if (!addr) return;
    if (L.used * 2 >= L.table.mask + 1) {
        grow();
        if (!L.enabled) return;
    }
    uint64_t i = home(addr);
    while (L.table.slots[i].addr && L.table.slots[i].addr != addr) i = (i + 1) & L.table.mask;
    if (!L.table.slots[i].addr) L.used++;
    L.table.slots[i] = (struct lt_live_entry){addr, size & ~LT_LIVE_MAPPING};
}

/* Removes `addr`; returns its size, or UINT64_MAX when it was not live. */
static uint64_t take(uint64_t addr) {
    uint64_t i = home(addr);
    while (L.table.slots[i].addr != addr) {
        if (!L.table.slots[i].addr) return UINT64_MAX;
        i = (i + 1) & L.table.mask;
    }
    uint64_t size = L.table.slots[i].size;
    L.used--;
    /* Backward shift: later entries of the probe run move up so none is cut off from home. */
    for (uint64_t j = i;;) {
        j = (j + 1) & L.table.mask;
        if (!L.table.slots[j].addr) break;
        uint64_t k = home(L.table.slots[j].addr);
        int stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (stays) continue;
        L.table.slots[i] = L.table.slots[j];
        i = j;
    }
    L.table.slots[i].addr = 0;
    return size;
}

static struct stash *stash_of(uint64_t tid) {
    uint64_t i = (tid * 0x9E3779B97F4A7C15ull) >> 54; /* STASH_SLOTS = 2^10 */
    for (int probes = 0; probes < STASH_SLOTS; probes++, i = (i + 1) & (STASH_SLOTS - 1))
        if (L.stash[i].tid == tid || !L.stash[i].tid) return &L.stash[i];
    return NULL;
}

/* Applies one event. */
static void apply(const struct pending *p) {
    switch (p->tag) {
    case TAG_ALLOC:
        put(p->addr, p->size);
        break;
    case TAG_FREE:
        take(p->addr);
        break;
    case TAG_REALLOC_RELEASE: {
        uint64_t size = take(p->addr);
        struct stash *s = stash_of(p->tid);
        if (s) *s = (struct stash){p->tid, size == UINT64_MAX ? 0 : p->addr, size};
        break;
    }
    default: { /* TAG_REALLOC */
        struct stash *s = stash_of(p->tid);
        if (p->status == REALLOC_OK) put(p->addr2, p->size);
        else if (p->status == REALLOC_FAILED && s && s->addr && s->addr == p->addr) put(s->addr, s->size);
        if (s) s->addr = 0;
        break;
    }
    }
}

/* The events waiting are applied in order, each one's slot fetched AHEAD events before: in a
 * table far larger than the cache, each event's slot is a miss, and this way a dozen are
 * under way at once instead of one. */
#define AHEAD 16

static void apply_pending(void) {
    for (uint32_t i = 0; i < L.pending_count; i++) {
        if (i + AHEAD < L.pending_count) {
            const struct pending *next = &L.pending[i + AHEAD];
            __builtin_prefetch(&L.table.slots[home(next->tag == TAG_REALLOC ? next->addr2 : next->addr)], 1);
        }
        apply(&L.pending[i]);
        if (!L.enabled) break;
    }
    L.pending_count = 0;
}

void lt_live_event_locked(const struct lt_event *e, uint64_t tid) {
    if (!L.enabled) return;
    L.pending[L.pending_count++] = (struct pending){
        .addr = e->addr, .addr2 = e->addr2, .size = e->size, .tid = tid, .tag = e->tag, .status = e->info & 0x0F};
    if (L.pending_count == PENDING_EVENTS) apply_pending();
}

/* ---- mapping pieces, sorted by start ---- */

/* Index of the first piece whose end is above `addr`. */
static uint64_t first_ending_above(uint64_t addr) {
    uint64_t lo = 0, hi = L.piece_count;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (L.pieces[mid].end <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int make_room_for_pieces(uint64_t more) {
    if (L.piece_count + more <= L.piece_cap) return 1;
    uint64_t cap = L.piece_cap * 2;
    struct piece *bigger = lt_raw_mmap(cap * sizeof *bigger);
    if (!bigger) {
        give_up();
        return 0;
    }
    memcpy(bigger, L.pieces, L.piece_count * sizeof *bigger);
    lt_arena_free_pages(L.pieces, L.piece_cap * sizeof *bigger);
    L.pieces = bigger;
    L.piece_cap = cap;
    return 1;
}

static void remove_range(uint64_t start, uint64_t end) {
    uint64_t i = first_ending_above(start);
    if (i < L.piece_count && L.pieces[i].start < start && L.pieces[i].end > end) { /* split */
        if (!make_room_for_pieces(1)) return;
        memmove(&L.pieces[i + 1], &L.pieces[i], (L.piece_count - i) * sizeof *L.pieces);
        L.piece_count++;
        L.pieces[i].end = start;
        L.pieces[i + 1].start = end;
        return;
    }
    if (i < L.piece_count && L.pieces[i].start < start) L.pieces[i++].end = start;
    uint64_t j = i;
    while (j < L.piece_count && L.pieces[j].end <= end) j++;
    if (j < L.piece_count && L.pieces[j].start < end) L.pieces[j].start = end;
    memmove(&L.pieces[i], &L.pieces[j], (L.piece_count - j) * sizeof *L.pieces);
    L.piece_count -= j - i;
}

static void insert_range(uint64_t start, uint64_t end) {
    if (start >= end) return;
    remove_range(start, end);
    if (!L.enabled || !make_room_for_pieces(1)) return;
    uint64_t i = first_ending_above(start);
    memmove(&L.pieces[i + 1], &L.pieces[i], (L.piece_count - i) * sizeof *L.pieces);
    L.pieces[i] = (struct piece){start, end};
    L.piece_count++;
}

static uint64_t page_end(uint64_t start, uint64_t len) {
    uint64_t rounded = (len + 4095) & ~4095ull;
    return rounded < len || start + rounded < start ? UINT64_MAX : start + rounded;
}

void lt_live_mapped_locked(uint64_t start, uint64_t len) {
    if (L.enabled && len) insert_range(start, page_end(start, len));
}

void lt_live_unmapped_locked(uint64_t start, uint64_t len) {
    if (L.enabled && len) remove_range(start, page_end(start, len));
}

void lt_live_remapped_locked(uint64_t old_start, uint64_t old_len, uint64_t new_start, uint64_t new_len,
                             int keep_old) {
    if (!L.enabled || !new_len) return;
    uint64_t i = first_ending_above(old_start);
    if (i >= L.piece_count || L.pieces[i].start > old_start) return; /* not a mapping we know */
    if (!keep_old && old_len) remove_range(old_start, page_end(old_start, old_len));
    insert_range(new_start, page_end(new_start, new_len));
}

/* ---- the sorted copy for the scan ---- */

uint64_t lt_live_count_locked(void) {
    apply_pending();
    return L.used + L.piece_count;
}

#define DIGIT_BITS 11
#define DIGITS 6 /* 66 bits: every address */
#define BUCKETS (1u << DIGIT_BITS)

/* Least-significant-digit radix sort by address; digits every key shares are skipped. */
static void sort_by_address(struct lt_live_entry *a, struct lt_live_entry *tmp, uint64_t n) {
    static uint64_t counts[DIGITS][BUCKETS];
    memset(counts, 0, sizeof counts);
    for (uint64_t i = 0; i < n; i++)
        for (int d = 0; d < DIGITS; d++) counts[d][(a[i].addr >> (d * DIGIT_BITS)) & (BUCKETS - 1)]++;
    struct lt_live_entry *from = a, *to = tmp;
    for (int d = 0; d < DIGITS; d++) {
        uint64_t *c = counts[d];
        int constant = 0;
        for (uint32_t b = 0; b < BUCKETS && !constant; b++) constant = c[b] == n;
        if (constant) continue;
        uint64_t at = 0;
        for (uint32_t b = 0; b < BUCKETS; b++) {
            uint64_t k = c[b];
            c[b] = at;
            at += k;
        }
        for (uint64_t i = 0; i < n; i++) to[c[(from[i].addr >> (d * DIGIT_BITS)) & (BUCKETS - 1)]++] = from[i];
        struct lt_live_entry *swap = from;
        from = to;
        to = swap;
    }
    if (from != a) memcpy(a, from, n * sizeof *a);
}

uint64_t lt_live_sorted_locked(struct lt_live_entry *out, struct lt_live_entry *scratch) {
    uint64_t n = 0;
    for (uint64_t i = 0; i <= L.table.mask; i++)
        if (L.table.slots[i].addr) out[n++] = L.table.slots[i];
    for (uint64_t i = 0; i < L.piece_count; i++)
        out[n++] = (struct lt_live_entry){L.pieces[i].start, (L.pieces[i].end - L.pieces[i].start) | LT_LIVE_MAPPING};
    sort_by_address(out, scratch, n);
    return n;
}

/* ---- numbering for the scan ---- */

struct lt_live_table lt_live_number_locked(const struct lt_live_entry *sorted, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (sorted[i].size & LT_LIVE_MAPPING) continue;
        uint64_t k = home(sorted[i].addr);
        while (L.table.slots[k].addr != sorted[i].addr) k = (k + 1) & L.table.mask;
        L.table.slots[k].size = i;
    }
    return L.table;
}
