/* Per-thread event rings (docs/design-shim.md, "Event rings"): more threads alive at once than
 * there are rings, rings given back at thread exit and reused, and a mark that must come after
 * events still waiting in another thread's ring.
 *
 *   wide:   1100 threads alive together (a barrier), each allocating one 7001-byte block it
 *           hands to main and one 7002-byte block it frees itself. Mark "joined" after the joins.
 *   half:   main frees every other 7001-byte block. Mark "half".
 *   quiet:  a thread allocates five 7004-byte blocks, tells main, and waits, alive, with its
 *           events still in its ring. Mark "quiet" while it waits.
 *   reuse:  50 more threads (on rings given back by the first 1100) each allocate one 7003-byte
 *           block for main. Mark "reused", then main frees them.
 * At exit the 550 blocks of 7001 bytes kept by main and the five of 7004 are still live. */
#include <leaktrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDE 1100
#define REUSE 50

static pthread_barrier_t all_alive;
static void *kept[WIDE];
static void *reused[REUSE];

static void *wide_worker(void *arg) {
    long i = (long)arg;
    kept[i] = malloc(7001);
    void *scratch = malloc(7002);
    memset(scratch, 1, 7002);
    pthread_barrier_wait(&all_alive);
    free(scratch);
    return NULL;
}

static pthread_mutex_t quiet_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t quiet_cond = PTHREAD_COND_INITIALIZER;
static int quiet_stage;

static void *quiet_worker(void *arg) {
    void **blocks = arg;
    for (int i = 0; i < 5; i++) blocks[i] = malloc(7004);
    pthread_mutex_lock(&quiet_lock);
    quiet_stage = 1;
    pthread_cond_broadcast(&quiet_cond);
    while (quiet_stage != 2) pthread_cond_wait(&quiet_cond, &quiet_lock);
    pthread_mutex_unlock(&quiet_lock);
    return NULL;
}

static void *reuse_worker(void *arg) {
    reused[(long)arg] = malloc(7003);
    return NULL;
}

static int start(pthread_t *t, void *(*fn)(void *), void *arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    int r = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return r;
}

int main(void) {
    static pthread_t threads[WIDE];
    int failed = 0;
    pthread_barrier_init(&all_alive, NULL, WIDE + 1);
    for (long i = 0; i < WIDE; i++)
        if (start(&threads[i], wide_worker, (void *)i) != 0) failed++;
    if (failed) {
        printf("could not start %d threads\n", failed);
        return 1;
    }
    pthread_barrier_wait(&all_alive);
    for (int i = 0; i < WIDE; i++) pthread_join(threads[i], NULL);
    leaktrace_mark("joined");

    for (int i = 0; i < WIDE; i += 2) free(kept[i]);
    leaktrace_mark("half");

    static void *quiet_blocks[5];
    pthread_t quiet;
    start(&quiet, quiet_worker, quiet_blocks);
    pthread_mutex_lock(&quiet_lock);
    while (quiet_stage != 1) pthread_cond_wait(&quiet_cond, &quiet_lock);
    pthread_mutex_unlock(&quiet_lock);
    leaktrace_mark("quiet");
    pthread_mutex_lock(&quiet_lock);
    quiet_stage = 2;
    pthread_cond_broadcast(&quiet_cond);
    pthread_mutex_unlock(&quiet_lock);
    pthread_join(quiet, NULL);

    for (long i = 0; i < REUSE; i++) {
        pthread_t t;
        if (start(&t, reuse_worker, (void *)i) == 0) pthread_join(t, NULL);
    }
    leaktrace_mark("reused");
    for (int i = 0; i < REUSE; i++) free(reused[i]);

    printf("wide=%d reused=%d\n", WIDE, REUSE);
    return 0;
}
