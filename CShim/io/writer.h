/* The writer thread and the flushes that do not wait for it (io/writer.c). */
#ifndef LEAKTRACE_WRITER_H
#define LEAKTRACE_WRITER_H

#include "../base/base.h"

/* Sets the clock's zero: times in the trace are microseconds since this call. */
LT_HIDDEN void lt_clock_init(void);
/* Microseconds since lt_clock_init (the coarse monotonic clock). */
LT_HIDDEN uint64_t lt_now_us(void);

/* Starts the writer thread; `tick` runs on it every tick: the one way it calls up. */
LT_HIDDEN void lt_writer_start(void (*tick)(void));
/* Prints the writer thread's CPU time and the blocks folded (LEAKTRACE_VERBOSE). */
LT_HIDDEN void lt_writer_report(void);
/* Asks the writer thread to stop at its next tick. */
LT_HIDDEN void lt_writer_stop(void);
/* True while a writer thread runs (a full queue then waits for it). */
LT_HIDDEN int lt_writer_running(void);
/* In a forked child: no writer thread exists. */
LT_HIDDEN void lt_writer_after_fork(void);

/* Writes everything recorded so far. With final_end, appends END and stops tracing: used at
 * exit, _exit and abort. */
LT_HIDDEN void lt_flush_all(int final_end);
/* The same from a signal handler: gives up (returns 0, nothing written) when the file lock
 * stays taken for wait_ms (its holder may be the thread the signal interrupted). */
LT_HIDDEN int lt_flush_all_within(int final_end, int wait_ms);
/* Makes END say that this signal ended the process (docs/trace-format.md, END). */
LT_HIDDEN void lt_set_end_signal(int sig, int64_t code, uint64_t fault_address, uint64_t tid, uint32_t stack);
/* The fork prepare handler's flush: returns with the file lock and the event lock held. */
LT_HIDDEN void lt_flush_for_fork(void);
/* The fork parent handler's release of both. (The child re-creates them: lt_buffers_after_fork.) */
LT_HIDDEN void lt_fork_parent_release(void);

LT_HIDDEN void lt_emit_note(int level, const char *text);
LT_HIDDEN void lt_emit_thread_name(uint64_t tid, const char *name, size_t len);

#endif
