/* Preloaded after glibc's libc_malloc_debug.so: turns on glibc's own allocation log (mtrace)
 * before the program runs, as an independent count of its malloc family calls.
 *
 * The log's path comes in LEAKTRACE_OUTPUT, the variable a traced run has in its place, and
 * MALLOC_TRACE is set only while mtrace() reads it: the program then finds the same variables
 * as when traced, and a program that keeps its environment in a hash table (perl's %ENV)
 * allocates as it does then. */
#include <mcheck.h>
#include <stdlib.h>

__attribute__((constructor)) static void start_mtrace(void) {
    const char *log = getenv("LEAKTRACE_OUTPUT");
    if (!log || setenv("MALLOC_TRACE", log, 1) != 0) return;
    mtrace();
    unsetenv("MALLOC_TRACE");
}
