/* Hazard 14, thread stacks and signal masks:
 *  - threads created with the smallest stacks glibc accepts (16 KiB, 32 KiB) must still be
 *    created: a preloaded library's thread-local storage comes out of every thread's stack;
 *  - the program's own sigprocmask calls keep their meaning while the tracer walks stacks with
 *    all signals blocked: a blocked signal stays pending through many allocations from fresh
 *    call paths, is delivered once when unblocked, and the masks read back are the program's.
 * Output is deterministic. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_seen;
char *volatile last_block; /* keeps the compiler from eliding malloc/free pairs */

static void on_usr1(int sig) {
    (void)sig;
    usr1_seen++;
}

/* Recursion gives each level its own call path, so the tracer walks new stacks. */
__attribute__((noinline)) static long churn(int depth) {
    long sum = 0;
    for (int i = 0; i < 20; i++) {
        char *p = malloc(64 + (size_t)depth);
        last_block = p;
        p[0] = (char)i;
        sum += p[0];
        free(p);
    }
    if (depth > 0) sum += churn(depth - 1);
    __asm__ volatile("" ::: "memory");
    return sum;
}

static void *small_thread(void *arg) {
    long *result = arg;
    *result = churn(3);
    return NULL;
}

static void try_stack(size_t size) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int set = pthread_attr_setstacksize(&attr, size);
    pthread_t thread;
    long result = 0;
    int created = pthread_create(&thread, &attr, small_thread, &result);
    if (created == 0) pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    printf("stack %zu: setstacksize=%d create=%s result=%ld\n", size, set, created ? strerror(created) : "ok",
           result);
}

static void check_masks(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, NULL);

    sigset_t usr1, before, during, pending;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &before);
    raise(SIGUSR1);
    long sum = churn(12);
    sigprocmask(SIG_SETMASK, NULL, &during);
    sigpending(&pending);
    printf("before: usr1 blocked=%d; during: usr1 blocked=%d usr2 blocked=%d; pending=%d; delivered=%d; sum=%ld\n",
           sigismember(&before, SIGUSR1), sigismember(&during, SIGUSR1), sigismember(&during, SIGUSR2),
           sigismember(&pending, SIGUSR1), (int)usr1_seen, sum);
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    printf("after unblock: delivered=%d\n", (int)usr1_seen);
}

int main(void) {
    try_stack(16384);
    try_stack(32768);
    try_stack(65536);
    check_masks();
    return 0;
}
