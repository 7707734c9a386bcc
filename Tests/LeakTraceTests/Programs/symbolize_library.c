/* Symbolization test shared library, built -g -O0 -fPIC -shared and then stripped: the exported
   function keeps its name through .dynsym, the static one loses it. */
#include <stdlib.h>

__attribute__((noinline)) static void *library_hidden_helper(size_t size)
{
    return calloc(1, size);
}

__attribute__((visibility("default"), noinline)) void *symbolize_library_entry(size_t size)
{
    return library_hidden_helper(size + 8);
}
