/* One allocating frame reached through two outer call paths in turn, at the same stack depth:
 * the hook sees the same caller frame and return address each time (one stack-cache key) with
 * different frames above it. Both stacks must be recorded exactly, and both stay cached. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void *leaf(size_t n) {
    void *p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *via_a(size_t n) {
    void *p = leaf(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *via_b(size_t n) {
    void *p = leaf(n + 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(void) {
    long total = 0;
    for (int i = 0; i < 2000; i++) {
        char *p = (i & 1) ? via_a(48) : via_b(48);
        p[0] = 1;
        total += p[0];
        free(p);
    }
    printf("%ld\n", total);
    return 0;
}
