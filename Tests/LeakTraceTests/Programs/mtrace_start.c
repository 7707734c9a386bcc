/* Preloaded after glibc's libc_malloc_debug.so: turns on glibc's own allocation log (mtrace,
 * written to MALLOC_TRACE) before the program runs, as an independent count of its malloc
 * family calls. */
#include <mcheck.h>

__attribute__((constructor)) static void start_mtrace(void) { mtrace(); }
