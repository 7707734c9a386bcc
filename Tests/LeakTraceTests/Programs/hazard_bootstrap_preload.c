/* Hazard 1, the other preloaded library: its constructor runs while the process is still
 * starting and calls malloc, dlsym and backtrace() (which makes glibc dlopen libgcc_s on first
 * use, so the loader allocates too). Loaded ahead of and behind libleaktrace in LD_PRELOAD.
 * Prints one line through write(2) so stdout can be compared. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *hazard_preload_kept; /* read by the program, so the block is reachable, not leaked */

__attribute__((noinline)) static void *preload_allocate(size_t size) { return malloc(size); }

__attribute__((constructor)) static void preload_init(void) {
    hazard_preload_kept = preload_allocate(1111);
    void *scratch = preload_allocate(1112);
    void *(*next_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    void (*any_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
    void *frames[32];
    int depth = backtrace(frames, 32);
    char **names = backtrace_symbols(frames, depth);
    char line[128];
    int len = snprintf(line, sizeof line, "preload: next_malloc=%d free=%d backtrace=%d names=%d\n",
                       next_malloc != NULL, any_free != NULL, depth > 0, names != NULL);
    if (write(1, line, (size_t)len) != len) _exit(3);
    free(names);
    any_free(scratch);
}
