/* Fatal signals. A signal whose default action ends the process (SIGTERM, SIGINT, SIGPIPE,
 * SIGSEGV, SIGABRT from abort(), ...) would end it with up to a flush interval of events still
 * in memory. For every such signal the program leaves at SIG_DFL, the tracer's handler finishes
 * the trace (every event, then END naming the signal and the stack of the thread that took
 * it) and then lets the signal take its default action: it restores SIG_DFL, sends the signal
 * again with the same siginfo and returns, so the process dies of it as it would have untraced
 * (same status for the parent, same core dump, the core showing the interrupted code rather
 * than the handler). A hardware fault is not sent again: returning re-runs the faulting
 * instruction, which faults again under SIG_DFL.
 *
 * The program's choices win. Its sigaction and signal calls pass through lt_program_sigaction:
 * a handler or SIG_IGN replaces the tracer's handler for good, SIG_DFL puts it back, and a
 * query returns what the program set, never the tracer's handler. A signal ignored when the
 * program started (SIG_IGN survives exec) is left alone. The mask is never touched: a blocked
 * signal stays blocked.
 *
 * What the handler must never do is wait for something the interrupted code holds:
 *  - the thread held the event lock or the file lock (a hook in its few instructions of
 *    encoding, a flush at exit or fork): an asynchronous signal is deferred: it stays pending
 *    on the thread, blocked in the interrupted context, until the lock is let go
 *    (lt_deliver_deferred_signal), and is then taken again. A fault there is the tracer's own
 *    crash: the process dies of it at once, without END;
 *  - the thread was elsewhere in the tracer (a stack walk, libunwind, the real malloc called
 *    by a hook): the trace is finished, but without libunwind (libunwind#425: a nested
 *    unw_backtrace unmapped the interrupted one's cache) and without the stack caches' counts;
 *  - the file lock is waited for at most SIGNAL_FLUSH_WAIT_MS (core/init.c).
 * The handler runs with every signal blocked; a fault inside it is then forced to its default
 * action by the kernel, so a crash while finishing ends the process instead of looping. A
 * second fatal signal on another thread waits for the first to finish the trace and end the
 * process (at most SECOND_SIGNAL_WAIT_MS, then it ends it itself). */
#include "fatal.h"
#include "init.h"
#include "reach.h"
#include "real.h"
#include "stacks.h"
#include "../io/buffers.h"
#include "../io/rings.h"
#include "../io/writer.h"

#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#define SECOND_SIGNAL_WAIT_MS 5000

/* Signals whose default action ends the process (signal(7)). SIGKILL and SIGSTOP cannot be
 * caught; the real-time signals end the process too (glibc keeps the two below SIGRTMIN). */
static int ends_process(int sig) {
    switch (sig) {
    case SIGHUP: case SIGINT: case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT:
    case SIGBUS: case SIGFPE: case SIGUSR1: case SIGSEGV: case SIGUSR2: case SIGPIPE:
    case SIGALRM: case SIGTERM: case SIGSTKFLT: case SIGXCPU: case SIGXFSZ: case SIGVTALRM:
    case SIGPROF: case SIGIO: case SIGPWR: case SIGSYS:
        return 1;
    default:
        return sig >= SIGRTMIN && sig <= SIGRTMAX;
    }
}

/* A fault the kernel raised at an instruction (si_code > 0): returning re-runs it. */
static int is_fault(int sig, const siginfo_t *info) {
    return info->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE);
}

struct disposition {
    _Atomic int ours;          /* the tracer's handler is installed; the program believes `program` */
    struct sigaction program;  /* what the program set (or found) last: SIG_DFL with its flags and mask */
};

static struct disposition dispositions[NSIG];
static _Atomic int managing;      /* set once the table is filled at start */
static atomic_flag table_lock = ATOMIC_FLAG_INIT;
/* The thread finishing the trace for a fatal signal (its kernel id), or 0. */
static _Atomic uint64_t finisher;

static void on_fatal_signal(int sig, siginfo_t *info, void *context);

/* What libc's sigaction adds to an action on its way to the kernel, which a later query
 * returns (glibc on x86-64: SA_RESTORER and its own restorer), learned from our own install. */
static int libc_added_flags;
static void (*libc_restorer)(void);

static void install_handler(int sig) {
    struct sigaction sa, installed;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal_signal;
    /* SA_ONSTACK: on the program's alternate stack when it has one (a stack overflow can only
     * be handled there). Every signal blocked while the handler runs (see above). */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    lt_real.sigaction(sig, &sa, NULL);
    if (lt_real.sigaction(sig, NULL, &installed) == 0) {
        libc_added_flags = installed.sa_flags & ~sa.sa_flags;
        libc_restorer = installed.sa_restorer;
    }
}

/* What a query would return had `act` really been installed. */
static struct sigaction as_installed(const struct sigaction *act) {
    struct sigaction view = *act;
    view.sa_flags |= libc_added_flags;
    view.sa_restorer = libc_restorer;
    return view;
}

void lt_take_fatal_signals(void) {
    for (int sig = 1; sig < NSIG; sig++) {
        if (!ends_process(sig) || sig == lt_config.mark_signal) continue;
        struct sigaction current;
        if (lt_real.sigaction(sig, NULL, &current) != 0 || current.sa_handler != SIG_DFL) continue;
        dispositions[sig].program = current;
        install_handler(sig);
        atomic_store(&dispositions[sig].ours, 1);
    }
    atomic_store(&managing, 1);
}

int lt_fatal_signal_managed(int sig) {
    return sig > 0 && sig < NSIG && atomic_load(&managing) && ends_process(sig) && sig != lt_config.mark_signal;
}

int lt_program_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    /* act and old may be the same object. */
    struct sigaction wanted;
    if (act) wanted = *act;
    /* Blocked around the table so that a handler on this thread never finds it half changed
     * (and never spins on a lock this thread holds). */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    while (atomic_flag_test_and_set_explicit(&table_lock, memory_order_acquire)) sched_yield();
    struct disposition *d = &dispositions[sig];
    int r = 0;
    if (atomic_load(&d->ours)) {
        struct sigaction seen = d->program;
        if (act && wanted.sa_handler != SIG_DFL) {
            r = lt_real.sigaction(sig, &wanted, NULL);
            if (r == 0) atomic_store(&d->ours, 0);
        } else if (act) {
            d->program = as_installed(&wanted);
        }
        if (r == 0 && old) *old = seen;
    } else {
        r = lt_real.sigaction(sig, act ? &wanted : NULL, old);
        if (r == 0 && act && wanted.sa_handler == SIG_DFL && atomic_load(&lt_phase) == PHASE_TRACING &&
            lt_real.sigaction(sig, NULL, &d->program) == 0) {
            install_handler(sig);
            atomic_store(&d->ours, 1);
        }
    }
    atomic_flag_clear_explicit(&table_lock, memory_order_release);
    int saved_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    errno = saved_errno;
    return r;
}

/* ---- ending the process as the signal would have ---- */

static pid_t thread_id(void) { return (pid_t)syscall(SYS_gettid); }

/* Makes `sig` pending on this thread again, with its original siginfo where the kernel allows. */
static void send_again(int sig, siginfo_t *info) {
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), thread_id(), sig, info) != 0)
        syscall(SYS_tgkill, getpid(), thread_id(), sig);
}

/* Restores the default action and arranges for the signal to take it as the handler returns:
 * sent again (it is blocked until then), or, for a fault, met again when the instruction
 * re-runs. */
static void die_on_return(int sig, siginfo_t *info, ucontext_t *uc) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    lt_real.sigaction(sig, &dfl, NULL);
    atomic_store(&dispositions[sig].ours, 0);
    sigdelset(&uc->uc_sigmask, sig);
    if (!is_fault(sig, info)) send_again(sig, info);
}

/* Another thread is finishing the trace and will end the process; this one waits for that. */
static void wait_for_finisher(void) {
    for (int waited = 0; waited < SECOND_SIGNAL_WAIT_MS; waited += 10) {
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static void on_fatal_signal(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    int saved_errno = errno;
    if (lt_in_foreign_child()) {
        /* A vfork child shares the tracer's memory and the parent's thread descriptor: it
         * must leave the parent's state alone. */
        die_on_return(sig, info, uc);
        errno = saved_errno;
        return;
    }
    int holds_lock = lt_locks_taken > 0 || lt_self.holds_file_lock || lt_self.is_writer;
    if (holds_lock && !is_fault(sig, info) && !lt_self.is_writer) {
        /* Taken again once the lock is let go (lt_unlock, lt_file_unlock). */
        lt_deferred_signals |= 1ull << (sig - 1);
        lt_self.fatal_signal_deferred = 1;
        sigaddset(&uc->uc_sigmask, sig);
        send_again(sig, info);
        errno = saved_errno;
        return;
    }
    uint64_t me = lt_current_tid(), expected = 0;
    if (holds_lock || !atomic_compare_exchange_strong(&finisher, &expected, me)) {
        /* The tracer's own fault, or a fatal signal while another thread finishes the trace. */
        if (!holds_lock && expected != me) wait_for_finisher();
        die_on_return(sig, info, uc);
        errno = saved_errno;
        return;
    }
    if (atomic_load(&lt_phase) == PHASE_TRACING) {
        int interrupted_tracer = lt_self.in_hook != 0;
        /* A hook interrupted between taking an event number and publishing the event never
         * publishes it: the number is a gap, which merges allow, not something to wait for. */
        if (lt_self.ring) atomic_store(&lt_self.ring->in_flight, 0);
        lt_self.in_hook = LT_IN_TRACER;
        uint32_t stack = lt_capture_context_stack_id(uc, !interrupted_tracer);
        uint64_t address = is_fault(sig, info) ? (uint64_t)(uintptr_t)info->si_addr : 0;
        if (lt_self.fatal_signal_deferred)
            lt_emit_note(0, "the fatal signal arrived while its thread held the tracer's event lock; "
                            "it was taken when the lock was let go");
        lt_set_end_signal(sig, info->si_code, address, lt_current_tid(), stack);
        lt_reach_note_signal_frame(uc);
        lt_finish_for_signal(interrupted_tracer);
    }
    die_on_return(sig, info, uc);
    errno = saved_errno;
}

void lt_finish_for_abort(uintptr_t cfa, uintptr_t ip0, uintptr_t bp) {
    if (atomic_load(&dispositions[SIGABRT].ours) || atomic_load(&lt_phase) != PHASE_TRACING) return;
    lt_self.in_hook = LT_IN_TRACER;
    uint32_t stack = lt_capture_stack_id(cfa, ip0, bp);
    lt_set_end_signal(SIGABRT, SI_TKILL, 0, lt_current_tid(), stack);
    lt_self.in_hook = 0;
    lt_finish();
}
