/* Process life: fork, exec, _exit, _Exit, abort, dlclose/dlopen, the program's dl_iterate_phdr,
 * thread names, and libunwind's pipe. */
#include "../core/real.h"
#include "../core/init.h"
#include "../core/stacks.h"
#include "../core/modules.h"
#include "../core/fatal.h"
#include "../io/buffers.h"
#include "../io/file.h"
#include "../io/writer.h"
#include "../format/records.h"

#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>


/* ---- fork: the atfork handlers in core/init.c do the work; this records the child's pid
 * in the parent's trace. ---- */

static void emit_fork(pid_t child) {
    uint8_t body[LT_FORK_BODY_MAX];
    lt_append_record(TAG_FORK, body, lt_encode_fork(body, (uint64_t)child), LT_WITH_CONTEXT);
}

LT_EXPORT pid_t fork(void) {
    LT_NEED_REAL(fork);
    pid_t child = lt_real.fork();
    if (child > 0 && atomic_load(&lt_phase) == PHASE_TRACING && !lt_self.in_hook) {
        int saved = errno;
        lt_self.in_hook = LT_IN_TRACER;
        emit_fork(child);
        lt_self.in_hook = 0;
        errno = saved;
    }
    return child;
}

/* ---- exec: a successful exec replaces the image without running exit handlers, so
 * everything is written first. The trace then ends with an EXEC record. ---- */

static void before_exec(const char *path) {
    if (atomic_load(&lt_phase) != PHASE_TRACING || lt_self.in_hook || lt_in_foreign_child()) return;
    int saved = errno;
    lt_self.in_hook = LT_IN_TRACER;
    uint8_t body[LT_EXEC_BODY_MAX];
    size_t len = lt_encode_exec(body, path);
    lt_modules_snapshot(0);
    lt_append_record(TAG_EXEC, body, len, LT_WITH_CONTEXT);
    lt_flush_all(0);
    lt_self.in_hook = 0;
    errno = saved;
}

static void after_failed_exec(void) {
    if (atomic_load(&lt_phase) == PHASE_TRACING && !lt_in_foreign_child())
        lt_emit_note(0, "exec failed; the program went on");
}

/* Writes everything and EXEC, calls the real function, and notes a failure (the call returned). */
#define EXEC_HOOK(name, label, params, args)                                                  \
    LT_EXPORT int name params {                                                               \
        LT_NEED_REAL(name);                                                                   \
        before_exec(label);                                                                   \
        int r = lt_real.name args;                                                            \
        int saved = errno;                                                                    \
        after_failed_exec();                                                                  \
        errno = saved;                                                                        \
        return r;                                                                             \
    }

EXEC_HOOK(execve, path, (const char *path, char *const argv[], char *const envp[]), (path, argv, envp))
EXEC_HOOK(execvpe, file, (const char *file, char *const argv[], char *const envp[]), (file, argv, envp))
EXEC_HOOK(fexecve, "(fexecve)", (int fd, char *const argv[], char *const envp[]), (fd, argv, envp))

LT_EXPORT int execv(const char *path, char *const argv[]) {
    extern char **environ;
    return execve(path, argv, environ);
}

LT_EXPORT int execvp(const char *file, char *const argv[]) {
    extern char **environ;
    return execvpe(file, argv, environ);
}

/* execl, execlp and execle gather their variadic arguments into an array on the stack. */
#define GATHER_ARGS(first, argv, envp_out)                          \
    va_list ap;                                                     \
    size_t count = 1;                                               \
    va_start(ap, first);                                            \
    while (va_arg(ap, char *)) count++;                             \
    va_end(ap);                                                     \
    char *argv[count + 1];                                          \
    argv[0] = (char *)(first);                                      \
    va_start(ap, first);                                            \
    for (size_t i = 1; i <= count; i++) argv[i] = va_arg(ap, char *); \
    envp_out;                                                       \
    va_end(ap)

LT_EXPORT int execl(const char *path, const char *arg, ...) {
    GATHER_ARGS(arg, argv, (void)0);
    return execv(path, argv);
}

LT_EXPORT int execlp(const char *file, const char *arg, ...) {
    GATHER_ARGS(arg, argv, (void)0);
    return execvp(file, argv);
}

LT_EXPORT int execle(const char *path, const char *arg, ...) {
    char *const *envp;
    GATHER_ARGS(arg, argv, envp = va_arg(ap, char *const *));
    return execve(path, argv, envp);
}

/* ---- exits that skip exit handlers ---- */

LT_EXPORT void _exit(int status) {
    LT_NEED_REAL(exit_);
    if (!lt_self.in_hook) lt_finish();
    lt_real.exit_(status);
    __builtin_unreachable();
}

LT_EXPORT void _Exit(int status) {
    LT_NEED_REAL(Exit_);
    if (!lt_self.in_hook) lt_finish();
    lt_real.Exit_(status);
    __builtin_unreachable();
}

/* abort raises SIGABRT: the tracer's handler finishes the trace when it holds SIGABRT; when
 * the program handles it instead, END is written here, since abort ends the process even if
 * that handler returns. */
LT_EXPORT void abort(void) {
    LT_NEED_REAL(abort);
    if (!lt_self.in_hook) lt_finish_for_abort(LT_CALL_SITE);
    lt_real.abort();
    __builtin_unreachable();
}

/* ---- the loader ---- */

/* Snapshot the modules while the library is still loaded: its frames must stay resolvable. */
LT_EXPORT int dlclose(void *handle) {
    LT_NEED_REAL(dlclose);
    if (atomic_load(&lt_phase) == PHASE_TRACING && !lt_self.in_hook) {
        lt_self.in_hook = LT_IN_TRACER;
        lt_modules_snapshot(0);
        lt_self.in_hook = 0;
    }
    int r = lt_real.dlclose(handle);
    /* What the unwinders learned of the library's code must not be used for code loaded at
     * its addresses later. */
    lt_stacks_forget_code();
    return r;
}

/* RTLD_DEEPBIND would make the library bind malloc to libc ahead of us, so its allocations
 * would vanish from the trace (heaptrack 66a7ba4). The flag is dropped, and the call is a tail
 * call so that the loader still sees the program as the caller and resolves $ORIGIN against
 * the program's RUNPATH, not ours (memray 53d00c19). */
LT_EXPORT void *dlopen(const char *file, int mode) {
    LT_NEED_REAL(dlopen);
    if (LT_UNLIKELY(mode & RTLD_DEEPBIND)) mode &= ~RTLD_DEEPBIND;
    return lt_real.dlopen(file, mode); /* a tail call (a jmp at -O2): hazard case 12c fails if it is not */
}

/* The program's own walks of the loader's list: the loader holds its list lock (a recursive
 * lock, dl_load_write_lock) for the whole walk, callbacks included. A callback that allocates
 * reaches our hooks with that lock held, and they must not unwind then (core/stacks.c,
 * capture_stack). Calls made inside our hooks (libunwind's, ours) pass straight through. */
LT_EXPORT int dl_iterate_phdr(int (*callback)(struct dl_phdr_info *, size_t, void *), void *data) {
    LT_NEED_REAL(dl_iterate_phdr);
    if (lt_self.in_hook) return lt_real.dl_iterate_phdr(callback, data);
    lt_self.loader_locked++;
    int r = lt_real.dl_iterate_phdr(callback, data);
    lt_self.loader_locked--;
    return r;
}

/* ---- thread names ---- */

LT_EXPORT int pthread_setname_np(pthread_t thread, const char *name) {
    LT_NEED_REAL(pthread_setname_np);
    int r = lt_real.pthread_setname_np(thread, name);
    if (r == 0 && pthread_equal(thread, pthread_self()) && !lt_self.in_hook &&
        atomic_load(&lt_phase) == PHASE_TRACING) {
        lt_self.in_hook = LT_IN_TRACER;
        lt_emit_thread_name(lt_current_tid(), name, strlen(name));
        lt_self.in_hook = 0;
    }
    return r;
}

/* ---- libunwind's validation pipe ----
 *
 * libunwind checks that a stack address is readable by writing a byte from it into a pipe it
 * opens once and keeps (libunwind#291). A program that closes every descriptor and opens its
 * own files on the freed numbers would then have libunwind read from, write to, and finally
 * close the program's files. Its pipe is moved to high descriptor numbers, which programs
 * rarely reuse; the program's own pipe2 calls are passed through untouched. */
LT_EXPORT int pipe2(int fds[2], int flags) {
    LT_NEED_REAL(pipe2);
    int r = lt_real.pipe2(fds, flags);
    uintptr_t caller = (uintptr_t)__builtin_return_address(0);
    if (r == 0 && caller >= lt_code.unwind_text_start && caller < lt_code.unwind_text_end) {
        int saved = errno;
        fds[0] = lt_move_fd_high(fds[0]);
        fds[1] = lt_move_fd_high(fds[1]);
        errno = saved;
    }
    return r;
}
