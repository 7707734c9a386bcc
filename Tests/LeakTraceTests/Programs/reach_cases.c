/* Reachability cases (Tests/.../Tracer/ReachabilityTests.swift): each run does one case, named
 * by argv[1], in a function of the same name, so a report's call sites say which blocks are
 * whose. What each case leaves, by design (valgrind memcheck must agree):
 *   global        100 B reachable (a global points to it)
 *   chain         48 B and 80 B reachable (a global points to the first, the first to the second)
 *   overwritten   120 B definitely lost (its only pointer overwritten), 130 B reachable
 *   list          the head (40 B) definitely lost, four nodes (40 B each) indirectly lost
 *   cycle         two 56 B blocks pointing at each other: one definitely, one indirectly lost
 *   interior      72 B possibly lost (only a pointer to its 10th byte is kept)
 *   thread_stack  88 B reachable: only a blocked thread's stack holds it
 *   tls           96 B reachable: only the main thread's thread-local variable holds it
 *   dlopen        104 B reachable: only a dlopen'd library's data holds it
 *   xor           112 B definitely lost: only its address xor-ed with a key is kept
 *   mapping       two anonymous 64 KiB mappings: one reachable from a global, one lost
 *   realloc       a 10-byte block grown by realloc to 200000 bytes (moved to its own mapping):
 *                 200000 B reachable; a second one shrunk to 24 bytes and dropped: 24 B lost
 *   pieces        a 3-page anonymous mapping whose middle page is unmapped: the first piece
 *                 (kept by a global) reachable, the last piece definitely lost
 *   killed        as overwritten, then the process kills itself with SIGTERM
 *   crash         as overwritten, then the process dies of SIGSEGV */
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

struct node {
    struct node *next;
    char payload[32];
};

static void *volatile global_slot;
static void *volatile second_slot;
static volatile uintptr_t hidden;
static __thread void *volatile tls_slot;

/* Clears the caller-saved registers and the stack below the caller, so no stale copy of a
 * pointer outlives the case (valgrind and the tracer both scan the exiting thread's stack). */
__attribute__((noinline)) static void scrub(void) {
    volatile char junk[4096];
    /* Volatile stores: a memset of the local array is a dead store an optimising compiler
     * removes, call and all. */
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = 0;
}

__attribute__((noinline)) static void global(void) { global_slot = malloc(100); }

__attribute__((noinline)) static void chain(void) {
    void **first = malloc(48);
    *first = malloc(80);
    global_slot = first;
}

__attribute__((noinline)) static void overwritten(void) {
    global_slot = malloc(120);
    global_slot = malloc(130);
}

__attribute__((noinline)) static void list(void) {
    struct node *head = NULL;
    for (int i = 0; i < 5; i++) {
        struct node *n = malloc(sizeof *n);
        n->next = head;
        head = n;
    }
    global_slot = head;
    global_slot = NULL;
}

__attribute__((noinline)) static void cycle(void) {
    void **a = malloc(56), **b = malloc(56);
    *a = b;
    *b = a;
}

__attribute__((noinline)) static void interior(void) { global_slot = (char *)malloc(72) + 10; }

static sem_t never;

static void *hold_on_stack(void *arg) {
    void *volatile mine = malloc(88);
    sem_post((sem_t *)arg);
    sem_wait(&never); /* blocked until the process exits */
    return (void *)mine;
}

__attribute__((noinline)) static void thread_stack(void) {
    sem_t started;
    sem_init(&started, 0, 0);
    sem_init(&never, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, hold_on_stack, &started);
    sem_wait(&started);
}

__attribute__((noinline)) static void tls(void) { tls_slot = malloc(96); }

__attribute__((noinline)) static void dl_open(const char *library) {
    void *handle = dlopen(library, RTLD_NOW);
    if (!handle) {
        fprintf(stderr, "dlopen %s: %s\n", library, dlerror());
        exit(2);
    }
    void **slot = dlsym(handle, "reach_plugin_slot");
    *slot = malloc(104);
}

__attribute__((noinline)) static void xor(void) { hidden = (uintptr_t)malloc(112) ^ 0x5a5a5a5a5a5a5a5aull; }

__attribute__((noinline)) static void grow(void) {
    global_slot = realloc(malloc(10), 200000);
    void *volatile dropped = realloc(malloc(300), 24);
    (void)dropped;
}

__attribute__((noinline)) static void pieces(void) {
    char *map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(map + 4096, 4096);
    global_slot = map;
}

__attribute__((noinline)) static void mapping(void) {
    global_slot = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *volatile lost = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)lost;
}

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "global")) global();
    else if (!strcmp(c, "chain")) chain();
    else if (!strcmp(c, "overwritten")) overwritten();
    else if (!strcmp(c, "list")) list();
    else if (!strcmp(c, "cycle")) cycle();
    else if (!strcmp(c, "interior")) interior();
    else if (!strcmp(c, "thread_stack")) thread_stack();
    else if (!strcmp(c, "tls")) tls();
    else if (!strcmp(c, "dlopen") && argc > 2) dl_open(argv[2]);
    else if (!strcmp(c, "xor")) xor();
    else if (!strcmp(c, "mapping")) mapping();
    else if (!strcmp(c, "realloc")) grow();
    else if (!strcmp(c, "pieces")) pieces();
    else if (!strcmp(c, "killed") || !strcmp(c, "crash")) overwritten();
    else {
        fprintf(stderr, "usage: reach_cases CASE [LIBRARY]\n");
        return 2;
    }
    scrub();
    printf("%s done\n", c);
    fflush(stdout);
    if (!strcmp(c, "killed")) raise(SIGTERM);
    if (!strcmp(c, "crash")) *(volatile int *)second_slot = 1; /* second_slot is NULL */
    (void)second_slot;
    return 0;
}
