/* Marks: named points in the trace, from the program (leaktrace_mark, include/leaktrace.h) or
 * from the optional mark signal (LEAKTRACE_MARK_SIGNAL). */
#include "marks.h"
#include "init.h"
#include "modules.h"
#include "../io/buffers.h"
#include "../format/records.h"

#include <signal.h>
#include <string.h>

static void emit_mark(const char *name, uint64_t source) {
    uint8_t body[LT_MARK_BODY_MAX];
    lt_append_record(TAG_MARK, body, lt_encode_mark(body, name, source), LT_WITH_CONTEXT);
}

void lt_mark_from_tracer(const char *name) { emit_mark(name, 2); }

LT_EXPORT void leaktrace_mark_impl(const char *name) {
    if (!name || atomic_load(&lt_phase) != PHASE_TRACING || lt_self.in_hook) return;
    int saved = errno;
    lt_self.in_hook = LT_IN_TRACER;
    /* Libraries loaded since the last snapshot are then resolvable by a report that stops here. */
    if (!lt_self.loader_locked) lt_modules_snapshot(0);
    emit_mark(name, 0);
    lt_self.in_hook = 0;
    errno = saved;
}

/* Marks asked for by signal, named signal-1, signal-2, ... Written by the handler itself when
 * it interrupted the program's code and the rings can be merged without waiting for the
 * writer; otherwise by the writer thread at its next tick (10 ms), or by the exit path. Counting happens in the handler;
 * writing, under the event lock, so a mark is written once, in order. */
static _Atomic uint64_t signal_marks_requested;
static _Atomic uint64_t signal_marks_written;

/* With the event lock held. may_rotate = 0 (a signal handler): stop at the first mark that
 * does not fit in the active buffer and leave it to the writer. */
static void write_signal_marks_locked(int may_rotate) {
    uint64_t requested = atomic_load(&signal_marks_requested);
    uint64_t written = atomic_load_explicit(&signal_marks_written, memory_order_relaxed);
    while (written < requested) {
        char name[32] = "signal-";
        *lt_put_decimal(name + strlen(name), written + 1) = 0;
        uint8_t body[LT_MARK_BODY_MAX];
        size_t len = lt_encode_mark(body, name, 1);
        if (may_rotate) {
            lt_append_record_locked(TAG_MARK, body, len, LT_WITH_CONTEXT);
        } else if (!lt_append_record_nowait_locked(TAG_MARK, body, len)) {
            return;
        }
        atomic_store(&signal_marks_written, ++written);
    }
}

static void on_mark_signal(int sig) {
    (void)sig;
    int saved = errno;
    atomic_fetch_add(&signal_marks_requested, 1);
    /* At once, so the mark falls where the signal did, when this thread is not inside the
     * tracer: it then holds none of the tracer's locks, and the event lock, if another thread
     * holds it, is let go within a record's encoding (or a mapping call), never waiting for
     * this thread (a merge waits only for rings in flight, and this thread's is not). */
    if (!lt_self.in_hook && !lt_locks_taken && atomic_load(&lt_phase) == PHASE_TRACING && !lt_in_foreign_child()) {
        lt_lock(&lt_buf.event_lock);
        lt_self.in_hook = LT_IN_TRACER;
        if (lt_rings_drain_nowait_locked()) write_signal_marks_locked(0);
        lt_self.in_hook = 0;
        lt_unlock(&lt_buf.event_lock);
    }
    errno = saved;
}

void lt_install_mark_signal(void) {
    int sig = lt_config.mark_signal;
    if (sig <= 0 || sig >= NSIG) return;
    struct sigaction old;
    /* Never take a signal the program already handles or ignores. */
    if (sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) {
        lt_warn("LEAKTRACE_MARK_SIGNAL", "is already in use by the program", "marks by signal are off");
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_mark_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void lt_marks_write_pending(void) {
    if (atomic_load(&signal_marks_written) == atomic_load(&signal_marks_requested)) return;
    lt_lock_events();
    if (atomic_load(&lt_phase) == PHASE_TRACING) write_signal_marks_locked(1);
    lt_unlock(&lt_buf.event_lock);
}

