/* The stack walker (walk.c): frames stepped with cached CFI rules. */
#ifndef LT_WALK_H
#define LT_WALK_H

#include "../base/base.h"

/* What the rule table did, for LEAKTRACE_VERBOSE. */
struct lt_walk_counts {
    _Atomic uint64_t rules_learned;      /* code addresses whose CFI was read */
    _Atomic uint64_t rules_unsupported;  /* of which libunwind must step the frame */
};
LT_HIDDEN extern struct lt_walk_counts lt_walk_counts;

/* Returns 0 when the walker cannot run here (no _dl_find_object: glibc before 2.35). */
LT_HIDDEN int lt_walk_init(void);
LT_HIDDEN void lt_walk_after_fork(void);
/* After dlclose: rules of unloaded code must not be used for code loaded at its address. */
LT_HIDDEN void lt_walk_forget_rules(void);

/* A thread's previous walk. A walk that meets one of its frames (the same return address in
 * the same slot) takes the frames beyond from it once their slots are checked. */
#define LT_WALK_MEMORY 64
struct lt_walk_memory {
    int n;
    int complete;   /* the walk reached the outermost frame, not its limit */
    uintptr_t frames[LT_WALK_MEMORY];
    uintptr_t slots[LT_WALK_MEMORY];
};

/* Walks the stack from the frame that called a hook: `ip0` is the hook's return address,
 * `cfa` its CFA (the caller's stack pointer), `bp` the caller's rbp. Fills frames[] (innermost
 * first, frames[0] = ip0) and slots[] (the stack address holding each frame's return address)
 * and returns the frame count, or -1 if a frame cannot be stepped here (no CFI rule this
 * walker follows, or a stack it does not know the bounds of): libunwind must walk then. */
LT_HIDDEN int lt_walk_stack(uintptr_t ip0, uintptr_t cfa, uintptr_t bp, uintptr_t *frames, uintptr_t *slots,
                            int max, struct lt_walk_memory *memory);

#endif
