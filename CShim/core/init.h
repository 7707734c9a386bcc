/* Start-up, exit and fork (core/init.c). */
#ifndef LEAKTRACE_INIT_H
#define LEAKTRACE_INIT_H

#include "../base/base.h"

/* What the process is, read at start (and the pid again in a forked child). */
struct lt_process {
    pid_t pid;
    char program_path[4096];
    char program_name[256];
};
extern struct lt_process lt_process;

/* Writes the final module map, the pending marks and END, and stops tracing: at exit, _exit,
 * _Exit and abort. */
LT_HIDDEN void lt_finish(void);
/* The same from a fatal signal's handler (core/fatal.c), waiting for nothing the interrupted
 * code may hold; `interrupted_tracer`: the signal arrived inside the tracer. Returns 0 if END
 * could not be written. */
LT_HIDDEN int lt_finish_for_signal(int interrupted_tracer);

/* True in a child that shares or copies our state without having gone through the fork
 * handlers: a vfork child (shell PATH searches: dash execs in a vfork child until one exec
 * succeeds) or a raw clone. Its pid differs from the traced one; anything it wrote would land
 * in the parent's trace. getpid is a real system call, so this is only for rare paths (exec,
 * exit). */
static inline int lt_in_foreign_child(void) { return getpid() != lt_process.pid; }

#endif
