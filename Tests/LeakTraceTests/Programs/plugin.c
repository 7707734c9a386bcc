/* A library loaded with dlopen: it allocates in its constructor and when called, and the
 * caller leaks what plugin_make returns. */
#include <stdlib.h>

static void *from_constructor;

__attribute__((constructor)) static void plugin_init(void) { from_constructor = malloc(48); }

__attribute__((noinline)) void *plugin_make(unsigned size) { return malloc(size); }

__attribute__((destructor)) static void plugin_fini(void) { free(from_constructor); }
