/* The real functions behind the hooks: one list, written once.
 *
 * Each LT_HOOKED_FUNCTIONS entry names a field of `lt_real`, the symbol dlsym(RTLD_NEXT) looks
 * up, the return type and the parameter types. The list produces the table (`struct
 * lt_real`), its resolution (core/real.c) and a compile-time check that every field's type is
 * the type the system headers declare for the symbol (core/real.c), so a hook that disagrees
 * with libc about a signature fails the build. Adding a hook: one line here, the definition in
 * hooks/. */
#ifndef LEAKTRACE_REAL_H
#define LEAKTRACE_REAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dl_phdr_info;

#define LT_NORETURN __attribute__((noreturn))

/* X(field, symbol, return type, (parameter types)) */
#define LT_HOOKED_FUNCTIONS(X)                                                                \
    X(free, free, void, (void *))                                                             \
    X(malloc, malloc, void *, (size_t))                                                       \
    X(calloc, calloc, void *, (size_t, size_t))                                               \
    X(realloc, realloc, void *, (void *, size_t))                                             \
    X(reallocarray, reallocarray, void *, (void *, size_t, size_t))                           \
    X(posix_memalign, posix_memalign, int, (void **, size_t, size_t))                         \
    X(aligned_alloc, aligned_alloc, void *, (size_t, size_t))                                 \
    X(memalign, memalign, void *, (size_t, size_t))                                           \
    X(valloc, valloc, void *, (size_t))                                                       \
    X(pvalloc, pvalloc, void *, (size_t))                                                     \
    X(mmap, mmap, void *, (void *, size_t, int, int, int, off_t))                             \
    X(mmap64, mmap64, void *, (void *, size_t, int, int, int, off_t))                         \
    X(munmap, munmap, int, (void *, size_t))                                                  \
    X(mremap, mremap, void *, (void *, size_t, size_t, int, ...))                             \
    X(brk, brk, int, (void *))                                                                \
    X(sbrk, sbrk, void *, (intptr_t))                                                         \
    X(mallopt, mallopt, int, (int, int))                                                      \
    X(dlclose, dlclose, int, (void *))                                                        \
    X(dlopen, dlopen, void *, (const char *, int))                                            \
    X(execve, execve, int, (const char *, char *const[], char *const[]))                      \
    X(execvpe, execvpe, int, (const char *, char *const[], char *const[]))                    \
    X(fexecve, fexecve, int, (int, char *const[], char *const[]))                             \
    X(exit_, _exit, LT_NORETURN void, (int))                                                  \
    X(Exit_, _Exit, LT_NORETURN void, (int))                                                  \
    X(abort, abort, LT_NORETURN void, (void))                                                 \
    X(pthread_setname_np, pthread_setname_np, int, (pthread_t, const char *))                 \
    X(fork, fork, pid_t, (void))                                                              \
    X(pipe2, pipe2, int, (int[2], int))                                                       \
    X(sigaction, sigaction, int, (int, const struct sigaction *, struct sigaction *))         \
    X(signal, signal, __sighandler_t, (int, __sighandler_t))                                  \
    X(dl_iterate_phdr, dl_iterate_phdr, int, (int (*)(struct dl_phdr_info *, size_t, void *), void *))

struct lt_real {
#define LT_REAL_FIELD(field, symbol, ret, params) ret(*field) params;
    LT_HOOKED_FUNCTIONS(LT_REAL_FIELD)
#undef LT_REAL_FIELD
};

/* Filled once by lt_ensure_resolved; NULL until then. */
extern struct lt_real lt_real __attribute__((visibility("hidden")));

/* Resolves every real function, unless another call is resolving them right now (dlsym asks
 * calloc for memory): that call returns at once and the bootstrap pool serves it. */
__attribute__((visibility("hidden"))) void lt_ensure_resolved(void);

/* In a hook, before its first use of the real function: resolves the table if nobody has yet. */
#define LT_NEED_REAL(field)                                                                   \
    do {                                                                                      \
        if (__builtin_expect(lt_real.field == NULL, 0)) lt_ensure_resolved();                 \
    } while (0)

/* True when the real function is known, resolving it first if nobody has yet. While dlsym is
 * resolving (it asks calloc for memory), this is false and the caller serves the request from
 * the bootstrap pool. */
#define LT_HAVE_REAL(field)                                                                   \
    (__builtin_expect(lt_real.field != NULL, 1) || (lt_ensure_resolved(), lt_real.field != NULL))

/* The 64 KiB static pool that answers allocations made while dlsym resolves. Its memory is
 * zeroed and never reused; free ignores it. */
__attribute__((visibility("hidden"))) int lt_in_bootstrap_pool(const void *p);
__attribute__((visibility("hidden"))) void *lt_bootstrap_alloc(size_t size, size_t align);

#endif
