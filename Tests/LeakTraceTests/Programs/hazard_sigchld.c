/* Hazard 6b: a SIGCHLD storm. The parent forks argv[1] children (500 in the suite) as fast as
 * it can; each child exits at once with status (index % 100). A SIGCHLD handler without
 * SA_RESTART reaps them with waitpid(WNOHANG) and sums their statuses, so the parent's and the
 * tracer's system calls keep being interrupted while the tracer flushes (run with
 * LEAKTRACE_FLUSH_MS=1). The parent allocates and frees all along and keeps one block of 8888
 * bytes. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t reaped;
static volatile sig_atomic_t status_sum;

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        reaped++;
        if (WIFEXITED(status)) status_sum += WEXITSTATUS(status);
    }
    errno = saved;
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 500;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    void *kept = malloc(8888);
    int expected_sum = 0, fork_failures = 0;
    for (int i = 0; i < children; i++) {
        void *scratch = malloc(100 + (size_t)i);
        pid_t pid = fork();
        if (pid == 0) _exit(i % 100);
        if (pid < 0) {
            fork_failures++;
            free(scratch);
            continue;
        }
        expected_sum += i % 100;
        free(scratch);
    }
    /* Wait for the stragglers, with SIGCHLD blocked around the check to avoid losing a wakeup. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 60;
    for (;;) {
        sigprocmask(SIG_BLOCK, &block, &old);
        int done = reaped >= children - fork_failures;
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (done) break;
        struct timespec now, nap = {0, 1000000};
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec) break;
        nanosleep(&nap, NULL);
        on_child(SIGCHLD); /* a signal may have been merged with another: reap by hand too */
    }
    printf("children=%d reaped=%d sum-ok=%d fork-failures=%d kept=%d\n", children, (int)reaped,
           status_sum == expected_sum, fork_failures, kept != NULL);
    return reaped != children || status_sum != expected_sum;
}
