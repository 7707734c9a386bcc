/* Hazard 6c: a program that blocks every signal in every thread and takes SIGTERM in a
 * dedicated sigwait thread, the way servers shut down. Four workers allocate until the
 * sigwait thread sees SIGTERM (which the main thread sends to the process after its workers
 * have started) and raises the stop flag. Any thread that does not block SIGTERM (the
 * tracer's own, say) would take the signal and kill the process with status 143. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define WORKERS 4

static atomic_int stop;
static atomic_long allocations;

static void *signal_thread(void *arg) {
    sigset_t *set = arg;
    int sig = 0;
    if (sigwait(set, &sig) != 0) return (void *)1;
    void *note = malloc(321);
    free(note);
    atomic_store(&stop, sig == SIGTERM ? 1 : 2);
    return NULL;
}

static void *worker(void *arg) {
    long id = (long)arg;
    while (!atomic_load(&stop)) {
        void *p = malloc(64 + (size_t)id);
        free(p);
        atomic_fetch_add(&allocations, 1);
    }
    return NULL;
}

int main(void) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_t waiter, workers[WORKERS];
    pthread_create(&waiter, NULL, signal_thread, &term);
    for (long i = 0; i < WORKERS; i++) pthread_create(&workers[i], NULL, worker, (void *)i);
    while (atomic_load(&allocations) < 10000) usleep(1000);
    kill(getpid(), SIGTERM);
    void *r;
    pthread_join(waiter, &r);
    for (int i = 0; i < WORKERS; i++) pthread_join(workers[i], NULL);
    printf("stop=%d waiter=%d\n", atomic_load(&stop), r == NULL);
    return atomic_load(&stop) == 1 ? 0 : 1;
}
