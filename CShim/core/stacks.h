/* Stack capture (core/stacks.c): the validated per-thread cache, then the walker (walk.c),
 * then libunwind. */
#ifndef LEAKTRACE_STACKS_H
#define LEAKTRACE_STACKS_H

#include "../base/base.h"

#include <ucontext.h>

/* Where a hook was called from: its CFA (the caller's stack pointer), its return address and
 * the caller's rbp, which the hook's prologue saved where __builtin_frame_address(0) points
 * (using the builtin makes the compiler give the hook a frame pointer). */
#define LT_CALL_SITE                                                                        \
    ((uintptr_t)__builtin_dwarf_cfa()), ((uintptr_t)__builtin_return_address(0)),           \
        (*(const uintptr_t *)__builtin_frame_address(0))
/* The id of the calling stack (interned if new), given a hook's LT_CALL_SITE: from the
 * thread's cache when the same stack is still in place, else walked. */
LT_HIDDEN uint32_t lt_capture_stack_id(uintptr_t cfa, uintptr_t ip0, uintptr_t bp);
/* The id of the stack of a signal handler's context (frame 0: the interrupted instruction),
 * walked from its registers; libunwind is tried for frames the walker cannot step only when
 * `may_use_libunwind`. */
LT_HIDDEN uint32_t lt_capture_context_stack_id(const ucontext_t *uc, int may_use_libunwind);
/* What the captures did so far, for LEAKTRACE_VERBOSE and LEAKTRACE_UNWIND=verify. */
struct lt_capture_summary {
    uint64_t hits;              /* stacks found in place in the thread's cache */
    uint64_t walks;             /* stacks walked with CFI rules */
    uint64_t fills_skipped;     /* walks not stored: their cache set kept missing */
    uint64_t fallbacks;         /* walks that met a frame only libunwind can step */
    uint64_t backtraces;        /* unw_backtrace calls (fallbacks, libunwind mode) */
    uint64_t rules_learned, rules_unsupported;
    uint64_t verified;          /* LEAKTRACE_UNWIND=verify: captures checked against libunwind */
    uint64_t mismatches;        /* of which libunwind's walk gave other frames */
};
LT_HIDDEN void lt_capture_summary(struct lt_capture_summary *s);
/* After dlclose: forget every unwind rule learned for code that may now be gone. */
LT_HIDDEN void lt_stacks_forget_code(void);
LT_HIDDEN void lt_stacks_reset(void);
LT_HIDDEN void lt_stacks_init(void);

#endif
