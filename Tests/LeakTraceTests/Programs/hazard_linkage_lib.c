/* Hazard 12, a library loaded three ways: with RTLD_DEEPBIND (its malloc would bind to libc
 * ahead of the tracer), by bare name through the program's $ORIGIN RUNPATH, and at link time.
 * linkage_lib_make allocates a block the caller keeps. */
#include <stdlib.h>

__attribute__((noinline)) void *linkage_lib_make(unsigned size) {
    return malloc(size); /* MARK:make */
}

__attribute__((noinline)) void linkage_lib_release(void *p) { free(p); }
