/* One call site reached from eight callers, each leaking one block of the same size: one
 * group of eight stacks whose biggest blocks tie. Which one the report shows must not depend
 * on the analyzer's hash seed. */
#include <stdlib.h>

static void *kept[8];

__attribute__((noinline)) static void *leaf(void) { return malloc(64); }

#define CALLER(n) __attribute__((noinline)) static void caller_##n(void) { kept[n] = leaf(); __asm__ volatile("" ::: "memory"); }
CALLER(0) CALLER(1) CALLER(2) CALLER(3) CALLER(4) CALLER(5) CALLER(6) CALLER(7)

int main(void) {
    caller_3(); caller_6(); caller_0(); caller_5(); caller_1(); caller_7(); caller_2(); caller_4();
    return kept[0] == NULL;
}
