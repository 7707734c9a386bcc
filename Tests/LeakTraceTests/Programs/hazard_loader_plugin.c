/* Hazard 3, the library loaded and closed in a loop: its constructor allocates (inside the
 * loader's lock), its destructor frees that block, and plugin_leak allocates a block the
 * program keeps after the library is closed. */
#include <stdlib.h>

static void *constructor_block;

__attribute__((constructor)) static void loader_plugin_init(void) { constructor_block = malloc(4545); }

__attribute__((destructor)) static void loader_plugin_fini(void) { free(constructor_block); }

__attribute__((noinline)) void *loader_plugin_leak(unsigned size) {
    void *p = malloc(size); /* MARK:leak */
    return p;
}
