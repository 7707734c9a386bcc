/* The tracer's phase, the per-thread state, the thread id and the one-line warning. */
#include "base.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

_Atomic int lt_phase;
struct lt_config lt_config;
_Atomic uint64_t lt_count_untraced;
__thread struct lt_thread lt_self __attribute__((tls_model("initial-exec")));

__thread int lt_locks_taken __attribute__((tls_model("initial-exec")));
__thread uint64_t lt_deferred_signals __attribute__((tls_model("initial-exec")));

/* The handler (core/fatal.c) left each deferred signal blocked in the interrupted context and
 * pending on this thread; unblocking them delivers them at once, now that no tracer lock is
 * held. A flush holding the file lock releases them when it lets the file lock go. */
void lt_deliver_deferred_signal(void) {
    if (lt_self.holds_file_lock || lt_locks_taken > 0) return;
    uint64_t deferred = lt_deferred_signals;
    lt_deferred_signals = 0;
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig <= 64; sig++)
        if (deferred & (1ull << (sig - 1))) sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Bumped in every forked child: a thread's cached id from before the fork is stale. */
static unsigned fork_generation;

uint64_t lt_current_tid(void) {
    struct lt_thread *t = &lt_self;
    if (LT_UNLIKELY(t->tid == 0 || t->fork_generation != fork_generation)) {
        t->tid = (uint64_t)syscall(SYS_gettid);
        t->fork_generation = fork_generation;
    }
    return t->tid;
}

void lt_base_after_fork(void) {
    fork_generation++;
    atomic_store(&lt_count_untraced, 0);
}

void lt_warn(const char *msg1, const char *msg2, const char *msg3) {
    char line[1024];
    size_t n = 0;
    const char *parts[] = {"leaktrace: ", msg1, msg2 ? " " : NULL, msg2, msg3 ? ": " : NULL, msg3, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (!parts[i]) continue;
        size_t len = strlen(parts[i]);
        if (n + len >= sizeof line) len = sizeof line - n - 1;
        memcpy(line + n, parts[i], len);
        n += len;
    }
    ssize_t r;
    do r = write(2, line, n); while (r < 0 && errno == EINTR);
}
