/* Hazard 4, a fork storm from a threaded parent: 8 threads allocate and free without pause
 * while the main thread forks argv[1] times (200 in the suite). Each child allocates a block of
 * 4321 bytes and one of 4322, frees the first and leaves with _exit(0), without touching the
 * parent's threads' state. The parent reaps every child and checks its status. The parent's own
 * allocations use sizes below 1024, so no child event could pass for one of the parent's. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8

static atomic_int stop;

static void *allocate_forever(void *arg) {
    long id = (long)arg;
    void *ring[16] = {0};
    for (long n = 0; !atomic_load(&stop); n++) {
        int slot = (int)(n % 16);
        free(ring[slot]);
        ring[slot] = malloc(16 + (size_t)((n + id) % 1000));
        if (n % 1024 == 0) sched_yield(); /* lets fork take the allocator locks sooner */
    }
    for (int k = 0; k < 16; k++) free(ring[k]);
    return NULL;
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, allocate_forever, (void *)i);
    int failures = 0;
    for (int i = 0; i < forks; i++) {
        pid_t child = fork();
        if (child < 0) {
            perror("fork");
            failures++;
            continue;
        }
        if (child == 0) {
            char *a = malloc(4321);
            char *b = malloc(4322);
            memset(a, 1, 4321);
            memset(b, 2, 4322);
            free(a);
            _exit(b[0] == 2 ? 0 : 1);
        }
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failures++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("forks=%d failures=%d\n", forks, failures);
    return failures != 0;
}
