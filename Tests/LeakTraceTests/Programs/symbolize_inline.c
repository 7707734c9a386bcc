/* Symbolization test program for inline chains, built -g -O2 as a PIE. inline_helper is forced
   inline into inline_outer, so the call to inline_sink sits in inline_outer's machine code but
   belongs to inline_helper's source. The volatile counter after the call keeps it from
   becoming a tail jump, so there is a return address to symbolize. */
#include <stdlib.h>

static volatile int calls;

__attribute__((noipa)) void *inline_sink(size_t size)
{
    return malloc(size);
}

static inline __attribute__((always_inline)) void *inline_helper(size_t size)
{
    void *block = inline_sink(size + 16); /* MARK:helper_calls_sink */
    calls++;
    return block;
}

__attribute__((noinline)) void *inline_outer(size_t count)
{
    void *block = inline_helper(count * 3); /* MARK:outer_calls_helper */
    calls++;
    return block;
}

/* Two levels of inlining: inline_inner into inline_middle into inline_nested_outer. */
static inline __attribute__((always_inline)) void *inline_inner(size_t size)
{
    void *block = inline_sink(size + 32); /* MARK:inner_calls_sink */
    calls++;
    return block;
}

static inline __attribute__((always_inline)) void *inline_middle(size_t size)
{
    void *block = inline_inner(size * 5); /* MARK:middle_calls_inner */
    calls++;
    return block;
}

__attribute__((noinline)) void *inline_nested_outer(size_t count)
{
    void *block = inline_middle(count + 7); /* MARK:nested_outer_calls_middle */
    calls++;
    return block;
}

int main(int argc, char **argv)
{
    (void)argv;
    free(inline_outer((size_t)argc));
    free(inline_nested_outer((size_t)argc));
    return calls == 5 ? 0 : 1;
}
