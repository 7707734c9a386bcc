/* Stack interning (core/intern.c): every distinct stack stored once, as a trie of STACK
 * records. */
#ifndef LEAKTRACE_INTERN_H
#define LEAKTRACE_INTERN_H

#include "../base/base.h"

/* The id of a captured stack's leaf node; a stack never seen is interned under the event lock,
 * which writes its STACK records at once. Called without the event lock. */
LT_HIDDEN uint32_t lt_stack_id(const uintptr_t *frames, int n);
/* Empties the tables (at start and in a forked child, whose trace must stand alone). */
LT_HIDDEN void lt_intern_reset(void);

#endif
