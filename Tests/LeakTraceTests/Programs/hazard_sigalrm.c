/* Hazard 6a: a 10 kHz SIGALRM whose handler mallocs and frees (the main thread never calls
 * malloc itself, so the handler never interrupts the allocator in the untraced program), while
 * the main thread loops mmap/munmap for argv[1] milliseconds (default 1000). The handler
 * writes into each block before freeing it, so a block handed out twice would be noticed. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static volatile sig_atomic_t corrupt;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    size_t size = 48 + (size_t)(handled % 200);
    unsigned char *p = malloc(size);
    if (p) {
        memset(p, 0xA5, size);
        if (p[size - 1] != 0xA5) corrupt = 1;
        free(p);
    }
    handled++;
    errno = saved;
}

static long elapsed_ms(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

int main(int argc, char **argv) {
    long duration = argc > 1 ? atol(argv[1]) : 1000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 100}, {0, 100}}; /* 100 µs: 10 kHz */
    setitimer(ITIMER_REAL, &every, NULL);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long cycles = 0, failures = 0;
    while (elapsed_ms(&start) < duration) {
        size_t length = 4096 * (1 + (size_t)(cycles % 8));
        char *m = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            failures++;
            continue;
        }
        m[0] = 1;
        m[length - 1] = 2;
        if (munmap(m, length) != 0) failures++;
        cycles++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    /* Signal counts vary from run to run: print only what must not. */
    printf("handled-some=%d cycles-some=%d failures=%ld corrupt=%d\n", handled > 100, cycles > 100, failures,
           (int)corrupt);
    return failures != 0 || corrupt;
}
