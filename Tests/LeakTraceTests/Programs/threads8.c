/* 8 threads x 100,000 allocations; every block is freed, half of them by another thread
 * (handed over through a per-pair mailbox). Nothing leaks; no event may be lost. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
#define PER_THREAD 100000

static void *_Atomic mailbox[THREADS][64];

static void *worker(void *arg) {
    long id = (long)arg;
    long peer = id ^ 1;
    for (long i = 0; i < PER_THREAD; i++) {
        void *p = malloc(16 + (size_t)(i % 64));
        if (i % 2 == 0) {
            free(p);
        } else {
            /* hand the block to the peer; free whatever the peer handed us */
            void *old = atomic_exchange(&mailbox[peer][i % 64], p);
            free(old);
            void *mine = atomic_exchange(&mailbox[id][(i + 7) % 64], NULL);
            free(mine);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < 64; j++) free(atomic_exchange(&mailbox[i][j], NULL));
    printf("ok\n");
    return 0;
}
