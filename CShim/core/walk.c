/* The stack walker: steps from frame to frame with each code address's CFI rule (cfi.c),
 * remembered in one process-wide table, so that a walk costs a table probe and a load or two
 * per frame: no locks, no system calls, no signal-mask changes (libunwind's step-by-step walk
 * takes its global cache lock and blocks signals around every step). A walk also reports
 * where each return address is stored, which is what the validated stack cache (stacks.c)
 * checks later, so filling the cache costs nothing beyond the walk.
 *
 * The table maps a code address to its rule. Readers take no lock: a slot's address is
 * claimed with a compare-and-swap and its rule published with a release store; a rule of 0
 * reads as "not known yet". Rules describe code, so they stay true until a module is
 * unloaded: dlclose bumps a generation kept in each rule, and older rules read as unknown. */
#include "walk.h"
#include "cfi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

/* The end of the page holding the dynamic loader's __libc_stack_end (the stack pointer at
 * process start, above every frame of the main thread). Looked up, not linked: linking it
 * would make the library need ld.so by name. */
static uintptr_t main_stack_end;

#define RULE_GEN_SHIFT 8
#define RULE_GEN_MASK (0xffull << RULE_GEN_SHIFT)
#define RULE_PROBES 32
#define RULES_INITIAL (1u << 12)
#define RULES_MAX (1u << 20)

struct rule_slot {
    _Atomic uintptr_t pc;
    _Atomic uint64_t rule;   /* the rule (cfi.h) with the generation in RULE_GEN_MASK; 0: unknown */
};

struct rule_table {
    size_t mask;
    _Atomic size_t used;
    struct rule_slot slots[];
};

static _Atomic(struct rule_table *) rules;
static atomic_flag rules_lock = ATOMIC_FLAG_INIT;  /* growing or clearing the table */
static _Atomic uint64_t rules_generation;
static int walker_ready;

struct lt_walk_counts lt_walk_counts;

static struct rule_table *new_rule_table(size_t capacity) {
    struct rule_table *t = lt_arena_alloc(sizeof *t + capacity * sizeof(struct rule_slot));
    if (t) t->mask = capacity - 1;
    return t;
}

int lt_walk_init(void) {
    if (!lt_cfi_init()) return 0;
    void **stack_end = dlsym(RTLD_DEFAULT, "__libc_stack_end");
    if (stack_end && *stack_end) main_stack_end = ((uintptr_t)*stack_end + 4095) & ~(uintptr_t)4095;
    struct rule_table *t = new_rule_table(RULES_INITIAL);
    if (!t) return 0;
    atomic_store(&rules, t);
    walker_ready = 1;
    return 1;
}

void lt_walk_after_fork(void) {
    atomic_flag_clear(&rules_lock);
}

static inline size_t rule_index(uintptr_t pc, size_t mask) {
    return (size_t)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >> 40) & mask;
}

/* Copies the current generation's rules into a table twice the size, or empties the table
 * when it cannot grow. Old tables stay readable (a reader may be inside one) and are never
 * freed: their total is less than the current table's size. */
static void make_room(struct rule_table *t) {
    if (atomic_flag_test_and_set_explicit(&rules_lock, memory_order_acquire)) return;
    if (atomic_load_explicit(&rules, memory_order_relaxed) == t) {
        size_t capacity = t->mask + 1;
        struct rule_table *bigger = capacity < RULES_MAX ? new_rule_table(capacity * 2) : NULL;
        if (bigger) {
            uint64_t gen = atomic_load(&rules_generation);
            for (size_t i = 0; i <= t->mask; i++) {
                uintptr_t pc = atomic_load_explicit(&t->slots[i].pc, memory_order_relaxed);
                uint64_t rule = atomic_load_explicit(&t->slots[i].rule, memory_order_relaxed);
                if (!pc || !rule || (rule & RULE_GEN_MASK) >> RULE_GEN_SHIFT != gen) continue;
                size_t j = rule_index(pc, bigger->mask);
                while (bigger->slots[j].pc) j = (j + 1) & bigger->mask;
                bigger->slots[j].pc = pc;
                bigger->slots[j].rule = rule;
                bigger->used++;
            }
            atomic_store_explicit(&rules, bigger, memory_order_release);
        } else {
            for (size_t i = 0; i <= t->mask; i++) {
                atomic_store_explicit(&t->slots[i].rule, 0, memory_order_relaxed);
                atomic_store_explicit(&t->slots[i].pc, 0, memory_order_relaxed);
            }
            atomic_store(&t->used, 0);
        }
    }
    atomic_flag_clear_explicit(&rules_lock, memory_order_release);
}

/* Reads a rule from the module's CFI and remembers it. */
static uint64_t learn_rule(struct rule_table *t, uintptr_t pc, uint64_t gen) {
    uint64_t rule = lt_cfi_rule(pc);
    atomic_fetch_add_explicit(&lt_walk_counts.rules_learned, 1, memory_order_relaxed);
    if (rule == LT_RULE_UNSUPPORTED)
        atomic_fetch_add_explicit(&lt_walk_counts.rules_unsupported, 1, memory_order_relaxed);
    uint64_t stored = rule | gen << RULE_GEN_SHIFT;
    if (atomic_load_explicit(&t->used, memory_order_relaxed) * 4 >= (t->mask + 1) * 3) {
        make_room(t);
        return rule; /* remembered next time, in the new table */
    }
    size_t i = rule_index(pc, t->mask);
    for (int probe = 0; probe < RULE_PROBES; probe++, i = (i + 1) & t->mask) {
        uintptr_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(&t->slots[i].pc, &expected, pc, memory_order_relaxed,
                                                    memory_order_relaxed))
            atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
        else if (expected != pc)
            continue;
        atomic_store_explicit(&t->slots[i].rule, stored, memory_order_release);
        break;
    }
    return rule;
}

static inline uint64_t rule_of(uintptr_t pc) {
    struct rule_table *t = atomic_load_explicit(&rules, memory_order_acquire);
    uint64_t gen = atomic_load_explicit(&rules_generation, memory_order_relaxed);
    size_t i = rule_index(pc, t->mask);
    for (int probe = 0; probe < RULE_PROBES; probe++, i = (i + 1) & t->mask) {
        uintptr_t key = atomic_load_explicit(&t->slots[i].pc, memory_order_acquire);
        if (key == pc) {
            uint64_t stored = atomic_load_explicit(&t->slots[i].rule, memory_order_acquire);
            if (stored && (stored & RULE_GEN_MASK) == gen << RULE_GEN_SHIFT) return stored;
            break;
        }
        if (key == 0) break;
    }
    return learn_rule(t, pc, gen);
}

void lt_walk_forget_rules(void) {
    if (!walker_ready) return;
    /* 8 bits of generation: before they wrap, the table is emptied, so that no rule from 256
     * unloads ago can read as current. */
    uint64_t gen = (atomic_load(&rules_generation) + 1) & 0xff;
    if (gen == 0) {
        while (atomic_flag_test_and_set_explicit(&rules_lock, memory_order_acquire)) sched_yield();
        struct rule_table *t = atomic_load(&rules);
        for (size_t i = 0; i <= t->mask; i++) {
            atomic_store_explicit(&t->slots[i].rule, 0, memory_order_relaxed);
            atomic_store_explicit(&t->slots[i].pc, 0, memory_order_relaxed);
        }
        atomic_store(&t->used, 0);
        atomic_flag_clear_explicit(&rules_lock, memory_order_release);
    }
    atomic_store(&rules_generation, gen);
}

/* The highest address the walk may read on this thread's stack, or 0 when the stack pointer
 * is on no stack we know the end of (a coroutine's, an alternate signal stack): libunwind then
 * walks, checking each address it reads. glibc places a thread's descriptor (pthread_self) at
 * the top of the thread's stack mapping, above every frame, for stacks it allocates and for
 * stacks the program provides; the main thread's frames are all below __libc_stack_end. */
static inline uintptr_t stack_end(uintptr_t sp) {
    uintptr_t self = (uintptr_t)pthread_self();
    if (sp < self && self - sp < ((uintptr_t)1 << 30)) return self;
    if (sp < main_stack_end && main_stack_end - sp < ((uintptr_t)1 << 34)) return main_stack_end;
    return 0;
}

/* Takes the rest of the stack from the thread's previous walk, which met the frame just
 * stepped to (`n`, the same return address in the same slot) if every later slot still holds
 * the return address it held then: from the same stack pointer and instruction pointer, the
 * steps would read the same slots again. Returns the new frame count, or 0 if the stack
 * changed further out (*changed: the previous walk's first frame that differs) or the previous
 * walk stopped short of what is wanted now. */
static int take_rest(const struct lt_walk_memory *memory, int m, uintptr_t *frames, uintptr_t *slots, int n,
                     int max, int *complete, int *changed) {
    int rest = memory->n - m - 1;
    int room = max - n - 1;
    if (!memory->complete && rest < room) {
        *changed = memory->n;
        return 0;
    }
    int take = rest < room ? rest : room;
    for (int j = 1; j <= take; j++)
        if (*(const uintptr_t *)memory->slots[m + j] != memory->frames[m + j]) {
            *changed = m + j;
            return 0;
        }
    memcpy(frames + n + 1, memory->frames + m + 1, (size_t)take * sizeof *frames);
    memcpy(slots + n + 1, memory->slots + m + 1, (size_t)take * sizeof *slots);
    *complete = memory->complete && take == rest;
    return n + 1 + take;
}

static int walk(uintptr_t pc, uintptr_t sp, uintptr_t bp, uintptr_t *frames, uintptr_t *slots, int max,
                const struct lt_walk_memory *memory, int *complete) {
    uintptr_t top = stack_end(sp);
    if (!top) return -1;
    int bp_known = 1;
    int m = 0, memory_n = memory ? memory->n : 0, changed = -1;
    frames[0] = pc;
    slots[0] = sp - sizeof(uintptr_t);
    *complete = 1;
    for (int n = 1;; n++) {
        if (n == max) {
            *complete = 0;
            return n;
        }
        /* A return address points after the call: the call itself is the address before. */
        uint64_t rule = rule_of(pc - 1);
        uintptr_t cfa;
        switch (rule & LT_RULE_KIND_MASK) {
        case LT_RULE_CFA_SP:
            cfa = sp + (uintptr_t)lt_rule_cfa_offset(rule);
            break;
        case LT_RULE_CFA_BP:
            if (!bp_known) return -1;
            cfa = bp + (uintptr_t)lt_rule_cfa_offset(rule);
            break;
        case LT_RULE_OUTERMOST:
            return n;
        default:
            return -1;
        }
        /* Every read stays above this frame's stack pointer and below the stack's end:
         * sp < cfa <= top, in one unsigned comparison. */
        if (cfa - sp - 1 >= top - sp) return -1;
        if (rule & LT_RULE_BP_SAVED) {
            uintptr_t at = cfa + (uintptr_t)lt_rule_bp_offset(rule);
            if (at - sp > top - sp - sizeof(uintptr_t)) return -1;
            bp = *(const uintptr_t *)at;
        } else if (rule & LT_RULE_BP_LOST) {
            bp_known = 0;
        }
        uintptr_t slot = cfa - sizeof(uintptr_t);
        pc = *(const uintptr_t *)slot;
        if (pc == 0) return n; /* a thread's first frame, where no CFI says so */
        frames[n] = pc;
        slots[n] = slot;
        sp = cfa;
        while (m < memory_n && memory->slots[m] < slot) m++;
        if (m < memory_n && m > changed && memory->slots[m] == slot && memory->frames[m] == pc) {
            int total = take_rest(memory, m, frames, slots, n, max, complete, &changed);
            if (total) return total;
            /* Walk on; look again only past the frame that changed, so that every frame of
             * the previous walk is checked at most once. */
        }
    }
}

int lt_walk_stack(uintptr_t ip0, uintptr_t cfa, uintptr_t bp, uintptr_t *frames, uintptr_t *slots, int max,
                  struct lt_walk_memory *memory) {
    if (!walker_ready || max <= 0) return -1;
    int complete;
    int n = walk(ip0, cfa, bp, frames, slots, max, memory, &complete);
    if (memory) {
        if (n > 0 && n <= LT_WALK_MEMORY) {
            memcpy(memory->frames, frames, (size_t)n * sizeof *frames);
            memcpy(memory->slots, slots, (size_t)n * sizeof *slots);
            memory->n = n;
            memory->complete = complete;
        } else {
            memory->n = 0;
        }
    }
    return n;
}
