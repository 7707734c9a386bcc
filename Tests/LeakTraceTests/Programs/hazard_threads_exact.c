/* Hazard 10, exact accounting: 8 threads x 100,000 allocations of 3000 + (i % 64) bytes (a
 * range nothing else in the process asks for). Even-numbered allocations are freed by the
 * thread that made them; odd-numbered ones are handed to the next thread through a lock-free
 * mailbox and freed there, so half the blocks die on another thread than the one that made
 * them. Main frees what is left in the mailboxes. Nothing leaks. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
#define PER_THREAD 100000
#define SLOTS 64

static void *_Atomic mailbox[THREADS][SLOTS];
static atomic_long handed, freed_by_other;

static void *worker(void *arg) {
    long id = (long)arg;
    long next = (id + 1) % THREADS;
    for (long i = 0; i < PER_THREAD; i++) {
        char *p = malloc(3000 + (size_t)(i % 64));
        if (!p) return (void *)1;
        p[0] = (char)id;
        if (i % 2 == 0) {
            free(p);
            continue;
        }
        void *displaced = atomic_exchange(&mailbox[next][i % SLOTS], p);
        atomic_fetch_add(&handed, 1);
        free(displaced); /* another thread's block (or NULL) */
        void *mine = atomic_exchange(&mailbox[id][(i * 7) % SLOTS], NULL);
        if (mine) atomic_fetch_add(&freed_by_other, 1);
        free(mine);
    }
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < SLOTS; j++) free(atomic_exchange(&mailbox[i][j], NULL));
    printf("threads=%d allocations=%d handed=%ld failed=%d\n", THREADS, THREADS * PER_THREAD,
           atomic_load(&handed), failed);
    return failed != 0;
}
