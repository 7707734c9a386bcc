/* What leakreport says about reachability at exit on a real run (ReachabilityCLITests). By
 * design, memcheck's categories at exit are:
 *   lose_list     a 32 B head definitely lost, two 32 B nodes indirectly lost
 *   keep_cache    200 B still reachable (a global points to it)
 *   keep_middle   72 B possibly lost (only a pointer to its 8th byte is kept)
 *   lose_mapping  an 8 KiB anonymous mapping definitely lost
 * and getpwnam loads glibc's NSS tables, which __libc_freeres frees before the scan. */
#include <pwd.h>
#include <stdlib.h>
#include <sys/mman.h>

struct node {
    struct node *next;
    char payload[24];
};

static void *volatile global_slot;
static void *volatile interior_slot;

__attribute__((noinline)) static void lose_list(void) {
    struct node *head = NULL;
    for (int i = 0; i < 3; i++) {
        struct node *n = malloc(sizeof *n);
        n->next = head;
        head = n;
    }
    global_slot = head;
    global_slot = NULL;
}

__attribute__((noinline)) static void keep_cache(void) { global_slot = malloc(200); }

__attribute__((noinline)) static void keep_middle(void) { interior_slot = (char *)malloc(72) + 8; }

__attribute__((noinline)) static void lose_mapping(void) {
    void *volatile lost = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)lost;
}

/* Overwrites the stack below main, so no stale copy of a pointer outlives its function (the
 * scan reads the exiting thread's stack, and the frames of exit's handlers land on what the
 * allocations left there). Volatile stores: a memset of the local array is a dead store that
 * gcc -O1 removes, call and all, which left malloc(72)'s result in a frame the scan reads. */
__attribute__((noinline)) static void scrub(void) {
    volatile char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = 0;
}

int main(void) {
    getpwnam("root");
    lose_list();
    keep_cache();
    keep_middle();
    lose_mapping();
    scrub();
    return 0;
}
