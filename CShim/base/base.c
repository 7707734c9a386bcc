/* The tracer's phase, the per-thread state, the thread id and the one-line warning. */
#include "base.h"

#include <string.h>
#include <sys/syscall.h>

_Atomic int lt_phase;
struct lt_config lt_config;
_Atomic uint64_t lt_count_untraced;
__thread struct lt_thread lt_self __attribute__((tls_model("initial-exec")));

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
