/* Fatal signals (core/fatal.c): the trace is finished before a signal whose default action
 * ends the process takes that action, and the process then dies of it as it would untraced. */
#ifndef LEAKTRACE_FATAL_H
#define LEAKTRACE_FATAL_H

#include "../base/base.h"

#include <signal.h>

/* At start: puts the tracer's handler on every signal whose default action ends the process
 * and that the program left at SIG_DFL. */
LT_HIDDEN void lt_take_fatal_signals(void);
/* True for a signal whose disposition the tracer keeps (sigaction and signal go through
 * lt_program_sigaction for it). */
LT_HIDDEN int lt_fatal_signal_managed(int sig);
/* sigaction as the program sees it: setting SIG_DFL keeps the tracer's handler in place,
 * setting a handler or SIG_IGN gives the signal to the program, and a query returns what the
 * program last set. */
LT_HIDDEN int lt_program_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* abort() called while the program handles or ignores SIGABRT (abort kills it all the same):
 * END says SIGABRT, with the stack of abort's caller (a hook's LT_CALL_SITE). With the
 * tracer's handler on SIGABRT, the handler does this instead and this does nothing. */
LT_HIDDEN void lt_finish_for_abort(uintptr_t cfa, uintptr_t ip0, uintptr_t bp);

#endif
