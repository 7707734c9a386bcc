/* Stack interning: identical stacks are stored once. The trace holds a trie of frames (STACK
 * records, each a (parent, ip) node) and every event names its leaf node. Two tables make that
 * cheap:
 *  - the whole-stack table maps a 64-bit hash of the frames to the leaf id. Lookups take no
 *    lock (entries are immutable once published; a resize publishes a new table and leaves the
 *    old one readable), so the common case, a stack seen before, costs one probe.
 *  - the node table maps (parent, ip) to a node id; it is used only under the event lock, when
 *    a stack is new, to write the STACK records that define it.
 * The hash is trusted without comparing frames: with 64 bits, a collision among even a million
 * distinct stacks has a probability around 3e-8 (docs/design-shim.md, "Stacks"). */
#include "intern.h"
#include "modules.h"
#include "../io/buffers.h"
#include "../format/records.h"

struct stack_slot {
    _Atomic uint64_t hash;   /* 0: empty */
    uint32_t id;
    uint32_t pad;
};

struct stack_table {
    size_t mask;
    size_t used;
    struct stack_slot slots[];
};

struct node_slot {
    uint64_t ip;
    uint32_t parent;
    uint32_t id;             /* 0: empty */
};

struct node_table {
    size_t mask;
    size_t used;
    struct node_slot slots[];
};

static _Atomic(struct stack_table *) stack_table;
static struct node_table *node_table;
static uint32_t next_node_id;

static struct stack_table *new_stack_table(size_t capacity) {
    struct stack_table *t = lt_arena_alloc(sizeof *t + capacity * sizeof(struct stack_slot));
    if (t) t->mask = capacity - 1;
    return t;
}

static struct node_table *new_node_table(size_t capacity) {
    struct node_table *t = lt_arena_alloc(sizeof *t + capacity * sizeof(struct node_slot));
    if (t) t->mask = capacity - 1;
    return t;
}

void lt_intern_reset(void) {
    atomic_store(&stack_table, new_stack_table(1u << 14));
    node_table = new_node_table(1u << 15);
    next_node_id = 0;
}

static inline uint64_t hash_frames(const uintptr_t *frames, int n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= frames[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h | 1;
}

static uint32_t probe_stack(struct stack_table *t, uint64_t hash) {
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint64_t h = atomic_load_explicit(&t->slots[i].hash, memory_order_acquire);
        if (h == hash) return t->slots[i].id;
        if (h == 0) return 0;
    }
}

static uint32_t stack_lookup(const uintptr_t *frames, int n, uint64_t *hash_out) {
    if (n <= 0) {
        *hash_out = 0;
        return 0;
    }
    uint64_t hash = hash_frames(frames, n);
    *hash_out = hash;
    struct stack_table *t = atomic_load_explicit(&stack_table, memory_order_acquire);
    return t ? probe_stack(t, hash) : 0;
}

static void insert_stack(struct stack_table *t, uint64_t hash, uint32_t id) {
    size_t i = hash & t->mask;
    while (atomic_load_explicit(&t->slots[i].hash, memory_order_relaxed) != 0) i = (i + 1) & t->mask;
    t->slots[i].id = id;
    atomic_store_explicit(&t->slots[i].hash, hash, memory_order_release);
    t->used++;
}

static struct stack_table *grow_stack_table(struct stack_table *old) {
    struct stack_table *t = new_stack_table((old->mask + 1) * 2);
    if (!t) return NULL;
    for (size_t i = 0; i <= old->mask; i++) {
        uint64_t h = atomic_load_explicit(&old->slots[i].hash, memory_order_relaxed);
        if (h) insert_stack(t, h, old->slots[i].id);
    }
    atomic_store_explicit(&stack_table, t, memory_order_release);
    return t;
}

static inline size_t node_slot_index(uint32_t parent, uint64_t ip, size_t mask) {
    uint64_t h = (ip ^ ((uint64_t)parent << 40) ^ parent) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

static void node_put(struct node_table *t, uint32_t parent, uint64_t ip, uint32_t id) {
    size_t i = node_slot_index(parent, ip, t->mask);
    while (t->slots[i].id != 0) i = (i + 1) & t->mask;
    t->slots[i] = (struct node_slot){ip, parent, id};
    t->used++;
}

static int grow_node_table(void) {
    struct node_table *t = new_node_table((node_table->mask + 1) * 2);
    if (!t) return 0;
    for (size_t i = 0; i <= node_table->mask; i++)
        if (node_table->slots[i].id) node_put(t, node_table->slots[i].parent, node_table->slots[i].ip, node_table->slots[i].id);
    node_table = t;
    return 1;
}

/* Finds the node (parent, ip), creating it and emitting its STACK record if new. */
static uint32_t node_get_or_emit(uint32_t parent, uint64_t ip) {
    struct node_table *t = node_table;
    for (size_t i = node_slot_index(parent, ip, t->mask);; i = (i + 1) & t->mask) {
        struct node_slot *s = &t->slots[i];
        if (s->id == 0) break;
        if (s->ip == ip && s->parent == parent) return s->id;
    }
    if ((node_table->used + 1) * 2 > node_table->mask + 1 && !grow_node_table()) return 0;
    uint8_t *p = lt_reserve_locked(LT_STACK_RECORD_MAX);
    if (!p) return 0;
    uint32_t id = ++next_node_id;
    lt_commit_locked(lt_encode_stack(p, id, parent, ip));
    lt_buf.count_stacks++;
    node_put(node_table, parent, ip, id);
    return id;
}

/* Called with the event lock held, after a lock-free lookup missed. */
static uint32_t stack_intern_locked(const uintptr_t *frames, int n, uint64_t hash) {
    if (n <= 0) return 0;
    struct stack_table *t = atomic_load_explicit(&stack_table, memory_order_relaxed);
    if (!t) return 0;
    uint32_t id = probe_stack(t, hash);
    if (id) return id;
    uint32_t parent = 0;
    for (int i = n - 1; i >= 0; i--) {
        parent = node_get_or_emit(parent, frames[i]);
        if (!parent) return 0;
    }
    if ((t->used + 1) * 2 > t->mask + 1) {
        t = grow_stack_table(t);
        if (!t) return parent;
    }
    insert_stack(t, hash, parent);
    return parent;
}

/* The id of a captured stack. A stack never seen is interned under the event lock, which
 * writes its STACK records at once, ahead of any event that can name it. It may run through a
 * library loaded since the last module snapshot (the dlopen hook cannot act after the call: it
 * tail-calls), so a snapshot check comes first and precedes the event in the trace: a report
 * that stops at any point can name every frame. Costs one dl_iterate_phdr callback per new
 * stack. Called without the event lock. */
uint32_t lt_stack_id(const uintptr_t *frames, int n) {
    if (n <= 0) return 0;
    uint64_t hash;
    uint32_t id = stack_lookup(frames, n, &hash);
    if (id) return id;
    if (!lt_self.loader_locked) lt_modules_snapshot(0);
    lt_lock(&lt_buf.event_lock);
    id = stack_intern_locked(frames, n, hash);
    lt_unlock(&lt_buf.event_lock);
    return id;
}
