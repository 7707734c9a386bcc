/* Short-lived and long-lived blocks in known numbers, for traces written folded and in full
 * (TracerFoldTests). Every count below is the program's design; the test checks both traces
 * against it.
 *
 *   temp_site:        TEMPS blocks of 48-55 bytes, each freed right after it is allocated
 *                     (all temporary);
 *   pair_first/second: PAIRS pairs: a, b allocated, then a and b freed (neither temporary:
 *                     b's allocation comes between a's, a's free between b's);
 *   grow_site/realloc: REALLOCS times malloc(10) grown by realloc to 2000 and freed (the
 *                     malloc'd block and the realloc'd one each temporary);
 *   big_site:         BIGS blocks of 1 MiB freed at once (mmapped: each free raises glibc's
 *                     mmap threshold; temporary);
 *   leak_site:        LEAKS blocks of 100 + i bytes, never freed, allocated between the marks
 *                     "leaks-begin" and "leaks-end", each after LIVE_GAP other allocations so
 *                     they outlive any window; their addresses are printed;
 *   unknown frees:    UNKNOWN blocks from __libc_malloc (not traced), freed with free;
 *   fork:             the child inherits the leaks, leaks CHILD_LEAKS blocks of 77 bytes of
 *                     its own (child_site) and frees TEMPS / 10 temporaries, then exits. */
#include <leaktrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEMPS 20000
#define PAIRS 10000
#define REALLOCS 1000
#define BIGS 3
#define LEAKS 37
#define LIVE_GAP 20000
#define UNKNOWN 4
#define CHILD_LEAKS 5

extern void *__libc_malloc(size_t);

static void *volatile sink;
static void *leaks[LEAKS];

__attribute__((noinline)) static void temp_site(int i) { free(malloc(48 + (size_t)(i % 8))); }

__attribute__((noinline)) static void *pair_first(void) { return malloc(64); }
__attribute__((noinline)) static void *pair_second(void) { return malloc(32); }

__attribute__((noinline)) static void grow_site(void) {
    void *p = malloc(10);
    p = realloc(p, 2000);
    free(p);
}

__attribute__((noinline)) static void big_site(void) { free(malloc(1 << 20)); }

__attribute__((noinline)) static void *leak_site(int i) { return malloc(100 + (size_t)i); }

__attribute__((noinline)) static void *child_site(void) { return malloc(77); }

int main(void) {
    for (int i = 0; i < TEMPS; i++) temp_site(i);
    for (int i = 0; i < PAIRS; i++) {
        void *a = pair_first();
        void *b = pair_second();
        free(a);
        free(b);
    }
    for (int i = 0; i < REALLOCS; i++) grow_site();
    for (int i = 0; i < BIGS; i++) big_site();

    leaktrace_mark("leaks-begin");
    for (int i = 0; i < LEAKS; i++) {
        for (int j = 0; j < LIVE_GAP / LEAKS; j++) temp_site(j);
        leaks[i] = leak_site(i);
    }
    leaktrace_mark("leaks-end");

    for (int i = 0; i < UNKNOWN; i++) free(__libc_malloc(24));

    for (int i = 0; i < LEAKS; i++) printf("leak %p %d\n", leaks[i], 100 + i);
    fflush(stdout);

    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < TEMPS / 10; i++) temp_site(i);
        for (int i = 0; i < CHILD_LEAKS; i++) sink = child_site();
        _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 1;
    return WEXITSTATUS(status);
}
