/* The gate between libunwind (and module snapshots) and fork (state in core/init.c, whose fork
 * handlers close it). */
#ifndef LEAKTRACE_GATE_H
#define LEAKTRACE_GATE_H

#include "../base/base.h"

struct lt_unwind_gate {
    /* Threads inside libunwind or a module snapshot right now, and how many forks are waiting
     * for them to leave. */
    _Alignas(64) _Atomic int unwinders;
    _Atomic int fork_pending;
};
extern struct lt_unwind_gate lt_gate;

/* Brackets every call into libunwind, and every module snapshot. Debian's libunwind keeps one
 * process-wide cache whose lock it holds while unwinding, and a snapshot holds the snapshot lock
 * and the loader's list lock; a child forked while another thread held one of them would wait
 * for it forever (hazard 4). The fork prepare handler counts itself in
 * fork_pending and waits until no thread is inside libunwind; a thread about to enter backs off until the fork is
 * done. Both sides use sequentially consistent atomics: either the entering thread sees the
 * pending fork, or the forking thread sees the entering thread's count. */
static inline void lt_unwind_enter(void) {
    for (;;) {
        atomic_fetch_add(&lt_gate.unwinders, 1);
        if (LT_LIKELY(!atomic_load(&lt_gate.fork_pending))) return;
        atomic_fetch_sub(&lt_gate.unwinders, 1);
        while (atomic_load(&lt_gate.fork_pending)) sched_yield();
    }
}

static inline void lt_unwind_leave(void) { atomic_fetch_sub(&lt_gate.unwinders, 1); }


#endif
