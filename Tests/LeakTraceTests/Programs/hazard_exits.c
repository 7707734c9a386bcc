/* Hazard 9, abrupt exits. argv[1] picks how the program ends:
 *   return      return from main while four detached threads are still allocating
 *   thread-exit exit(3) called from a non-main thread while main waits in pthread_join
 *   _exit       _exit(4)
 *   _Exit       _Exit(5)
 *   abort       abort() (SIGABRT)
 * Before ending, the main thread allocates blocks of 1000+i bytes, i = 0..99, keeping them, and
 * prints "ending"; whatever thread ends the process allocates one block of 7070 bytes just
 * before the exit call. The detached threads allocate sizes below 512 only. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *keep[100];

static void *churn(void *arg) {
    long id = (long)arg;
    for (long n = 0;; n++) {
        void *p = malloc(16 + (size_t)((n + id) % 496));
        free(p);
        if (n % 4096 == 0) usleep(100);
    }
    return NULL;
}

static void *exit_from_thread(void *arg) {
    (void)arg;
    void *last = malloc(7070);
    (void)last;
    exit(3);
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "return";
    for (long i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, churn, (void *)i);
        pthread_detach(t);
    }
    usleep(20000);
    for (int i = 0; i < 100; i++) keep[i] = malloc(1000 + (size_t)i);
    printf("ending %s\n", how);
    fflush(stdout);
    if (strcmp(how, "thread-exit") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_from_thread, NULL);
        pthread_join(t, NULL);
        return 99; /* not reached: the other thread exits the process */
    }
    void *last = malloc(7070);
    (void)last;
    if (strcmp(how, "_exit") == 0) _exit(4);
    if (strcmp(how, "_Exit") == 0) _Exit(5);
    if (strcmp(how, "abort") == 0) abort();
    return 0;
}
