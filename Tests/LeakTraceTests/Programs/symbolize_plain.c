/* Symbolization test program, built -g -O0 as a PIE. The MARK comments name lines the tests
   look up in this file, so the expected line numbers follow the source if it is edited. */
#include <stdlib.h>

__attribute__((noinline)) void *plain_leaf(size_t size)
{ /* MARK:leaf_entry */
    return malloc(size); /* MARK:leaf_malloc */
} /* MARK:leaf_end */

__attribute__((noinline)) int plain_caller(int count)
{
    void *block = plain_leaf((size_t)count * 2); /* MARK:caller_calls_leaf */
    return block != NULL; /* MARK:caller_after_call */
}

/* An assembler label gives the function a different symbol (as glibc's hidden aliases do);
   the report should still show the name written in the source. */
__attribute__((noinline)) void *labelled_allocation(size_t size) __asm__("labelled_allocation_internal");

__attribute__((noinline)) void *labelled_allocation(size_t size)
{
    return calloc(1, size); /* MARK:labelled_calloc */
}

int main(int argc, char **argv)
{
    (void)argv;
    free(labelled_allocation((size_t)argc));
    return plain_caller(argc) ? 0 : 1;
}
