/* Reachability at exit (core/reach.c): which live blocks the program could still reach, as
 * valgrind's memcheck tells it, written as REACH records before END (docs/trace-format.md). */
#ifndef LEAKTRACE_REACH_H
#define LEAKTRACE_REACH_H

#include "../base/base.h"

/* At start, before any event: keeps the live set (io/live.c) unless LEAKTRACE_REACHABILITY=0,
 * and notes where the tracer's own writable data lies. */
LT_HIDDEN void lt_reach_init(void);
/* At exit, before END: calls the runtimes' cleanup functions when that is safe (never from a
 * signal handler, never with other threads running, not with LEAKTRACE_FREERES=0), scans the
 * process's memory and writes the REACH records. The event lock is not held by the caller. */
LT_HIDDEN void lt_reach_at_exit(int from_signal);

/* From a fatal signal's handler, before lt_finish_for_signal: the interrupted registers, as
 * the kernel saved them. The scan then reads the interrupted thread's general registers (as
 * memcheck does) and its stack from the interrupted stack pointer up. */
LT_HIDDEN void lt_reach_note_signal_frame(const void *ucontext);

#endif
