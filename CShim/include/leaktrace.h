/* leaktrace's public C API. Include this header in a program to put named marks in its
 * trace; `leakreport growth TRACE --from A --to B` compares two marks.
 *
 * When the program runs without libleaktrace.so preloaded, every call is a no-op: the
 * implementation symbol is a weak reference that stays NULL. */
#ifndef LEAKTRACE_H
#define LEAKTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

void leaktrace_mark_impl(const char *name) __attribute__((weak));

/* Records a mark named `name` (at most 200 bytes are kept) at this point of the trace. */
static inline void leaktrace_mark(const char *name) {
    if (leaktrace_mark_impl) leaktrace_mark_impl(name);
}

#ifdef __cplusplus
}
#endif
#endif
