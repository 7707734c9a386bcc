/* The program's sigaction and signal calls for the signals whose default action the tracer
 * stands in for (core/fatal.c): they go through lt_program_sigaction, so the program's choice
 * wins and its queries never see the tracer's handler. Other signals pass straight through. */
#include "../core/real.h"
#include "../core/fatal.h"

#include <string.h>

LT_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    LT_NEED_REAL(sigaction);
    if (!lt_fatal_signal_managed(sig)) return lt_real.sigaction(sig, act, old);
    return lt_program_sigaction(sig, act, old);
}

/* glibc's signal() is sigaction with BSD semantics: the signal blocked in its own handler and
 * SA_RESTART (glibc sysdeps/posix/signal.c; siginterrupt changes the flag through glibc's
 * internal sigaction, which this hook does not see). */
LT_EXPORT __sighandler_t signal(int sig, __sighandler_t handler) {
    LT_NEED_REAL(signal);
    if (handler == SIG_ERR || !lt_fatal_signal_managed(sig)) return lt_real.signal(sig, handler);
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig);
    act.sa_flags = SA_RESTART;
    if (lt_program_sigaction(sig, &act, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}
