/* Three call sites with three shapes over ~1.5 s, for leak rates and `growth`:
 *   leak_request: a steady leak, 1000 bytes every 10 ms tick, never freed;
 *   cache_put:    a cache of 32 entries of 1024 bytes, full after 32 ticks, then each new entry
 *                 replaces the oldest (a plateau);
 *   burst_fill:   200 blocks of 1000 bytes at tick 60, all freed at tick 90 (a freed burst).
 * Marks: "warm" before the loop, "middle" after tick 75's allocations, "done" after the loop.
 * At tick 75 the program also raises SIGUSR2: with LEAKTRACE_MARK_SIGNAL=12 the tracer writes a
 * mark named signal-1. With the argument "own-handler" the program handles SIGUSR2 itself, so
 * the tracer must leave that signal alone. */
#include <leaktrace.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICKS 150
#define CACHE_SLOTS 32
#define BURST 200

static volatile sig_atomic_t handled;
static void on_usr2(int sig) { (void)sig; handled++; }

static void *leaked[TICKS];
static void *cache[CACHE_SLOTS];
static void *burst[BURST];

__attribute__((noinline)) static void leak_request(int tick) {
    leaked[tick] = malloc(1000); /* @steady */
}

__attribute__((noinline)) static void cache_put(int tick) {
    int slot = tick % CACHE_SLOTS;
    free(cache[slot]);
    cache[slot] = malloc(1024); /* @cache */
}

__attribute__((noinline)) static void burst_fill(void) {
    for (int i = 0; i < BURST; i++) burst[i] = malloc(1000); /* @burst */
}

static void burst_release(void) {
    for (int i = 0; i < BURST; i++) free(burst[i]);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "own-handler") == 0) signal(SIGUSR2, on_usr2);
    leaktrace_mark("warm");
    for (int tick = 0; tick < TICKS; tick++) {
        leak_request(tick);
        cache_put(tick);
        if (tick == 60) burst_fill();
        if (tick == 90) burst_release();
        if (tick == 75) {
            leaktrace_mark("middle");
            raise(SIGUSR2);
        }
        usleep(10000);
    }
    leaktrace_mark("done");
    printf("handled %d\n", (int)handled);
    return 0;
}
