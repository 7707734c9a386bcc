/* The program's own mapping calls: mmap, munmap, mremap, brk, sbrk, and mallopt.
 *
 * glibc's malloc maps and grows its heap through internal entry points these hooks never see
 * (LESSONS 3), so everything recorded here is the program's (or a library's) direct use.
 * The event lock is held across the real call: the call is a plain system call that never
 * comes back into user code, and holding the lock makes the record order exactly the order
 * in which the kernel applied the calls (an munmap and a new mmap of the same range from
 * two threads cannot be recorded the wrong way round). */
#include "../core/shim.h"

#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FAILED_ADDRESS UINT64_MAX

/* The path of a mapped file, through /proc/self/fd: readlink is a system call, no allocation. */
static size_t fd_path(int fd, char *out, size_t cap) {
    char link[32] = "/proc/self/fd/";
    char digits[12];
    int n = 0, v = fd;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) > 0);
    size_t l = strlen(link);
    while (n) link[l++] = digits[--n];
    link[l] = 0;
    ssize_t r = readlink(link, out, cap);
    return r > 0 ? (size_t)r : 0;
}

/* Finds (or interns) the calling stack's id, then takes the event lock for the record, held
 * until end_map_event: the program's mapping calls happen under it, so the trace order is the
 * order the kernel applied them. */
static inline uint32_t begin_map_event(void) {
    uintptr_t frames[LT_MAX_DEPTH];
    uint32_t stack = lt_stack_id(frames, lt_capture_stack(frames, lt.config.depth));
    lt_lock_events();
    return stack;
}

static inline void end_map_event(uint8_t tag, uint8_t *body, uint8_t *body_end, uint32_t stack) {
    body_end = lt_put_uv(body_end, stack);
    lt_event_context_locked(lt_current_tid());
    lt_append_sized_locked(tag, body, (size_t)(body_end - body));
    lt.count_mappings++;
    lt_unlock(&lt.event_lock);
}

static void *mmap_common(void *(*real)(void *, size_t, int, int, int, off_t), uintptr_t caller, void *addr,
                         size_t len, int prot, int flags, int fd, off_t off) {
    if (lt_is_internal_mapping_caller(caller) || !lt_hook_enter()) return real(addr, len, prot, flags, fd, off);
    uint32_t stack = begin_map_event();
    void *r = real(addr, len, prot, flags, fd, off);
    int err = r == MAP_FAILED ? errno : 0;
    char path[4096];
    size_t path_len = (r != MAP_FAILED && !(flags & MAP_ANONYMOUS) && fd >= 0) ? fd_path(fd, path, sizeof path) : 0;
    uint8_t body[4096 + 128], *p = body;
    p = lt_put_uv(p, (uint64_t)(uintptr_t)addr);
    p = lt_put_uv(p, len);
    p = lt_put_uv(p, (uint64_t)(unsigned)prot);
    p = lt_put_uv(p, (uint64_t)(unsigned)flags);
    p = lt_put_sv(p, (flags & MAP_ANONYMOUS) ? -1 : fd);
    p = lt_put_uv(p, (uint64_t)off);
    p = lt_put_uv(p, r == MAP_FAILED ? FAILED_ADDRESS : (uint64_t)(uintptr_t)r);
    p = lt_put_uv(p, (uint64_t)err);
    p = lt_put_str(p, path, path_len);
    end_map_event(TAG_MMAP, body, p, stack);
    lt_hook_leave();
    errno = err ? err : errno;
    return r;
}

LT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    LT_NEED_REAL(mmap);
    return mmap_common(lt_real.mmap, (uintptr_t)__builtin_return_address(0), addr, len, prot, flags, fd, off);
}

LT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    LT_NEED_REAL(mmap64);
    return mmap_common(lt_real.mmap64 ? lt_real.mmap64 : lt_real.mmap, (uintptr_t)__builtin_return_address(0), addr,
                       len, prot, flags, fd, off);
}

LT_EXPORT int munmap(void *addr, size_t len) {
    LT_NEED_REAL(munmap);
    if (lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.munmap(addr, len);
    uint32_t stack = begin_map_event();
    int r = lt_real.munmap(addr, len);
    int err = r ? errno : 0;
    uint8_t body[64], *p = body;
    p = lt_put_uv(p, (uint64_t)(uintptr_t)addr);
    p = lt_put_uv(p, len);
    p = lt_put_sv(p, r);
    p = lt_put_uv(p, (uint64_t)err);
    end_map_event(TAG_MUNMAP, body, p, stack);
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...) {
    LT_NEED_REAL(mremap);
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.mremap(old, old_size, new_size, flags, new_addr);
    uint32_t stack = begin_map_event();
    void *r = lt_real.mremap(old, old_size, new_size, flags, new_addr);
    int err = r == MAP_FAILED ? errno : 0;
    uint8_t body[96], *p = body;
    p = lt_put_uv(p, (uint64_t)(uintptr_t)old);
    p = lt_put_uv(p, old_size);
    p = lt_put_uv(p, new_size);
    p = lt_put_uv(p, (uint64_t)(unsigned)flags);
    p = lt_put_uv(p, (uint64_t)(uintptr_t)new_addr);
    p = lt_put_uv(p, r == MAP_FAILED ? FAILED_ADDRESS : (uint64_t)(uintptr_t)r);
    p = lt_put_uv(p, (uint64_t)err);
    end_map_event(TAG_MREMAP, body, p, stack);
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT int brk(void *addr) {
    LT_NEED_REAL(brk);
    if (lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.brk(addr);
    uint32_t stack = begin_map_event();
    void *before = lt_real.sbrk(0);
    int r = lt_real.brk(addr);
    int err = r ? errno : 0;
    void *after = lt_real.sbrk(0);
    uint8_t body[64], *p = body;
    p = lt_put_uv(p, (uint64_t)(uintptr_t)addr);
    p = lt_put_sv(p, r);
    p = lt_put_uv(p, (uint64_t)(uintptr_t)before);
    p = lt_put_uv(p, (uint64_t)(uintptr_t)after);
    end_map_event(TAG_BRK, body, p, stack);
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT void *sbrk(intptr_t increment) {
    LT_NEED_REAL(sbrk);
    /* sbrk(0) only asks where the break is: not worth a record. */
    if (increment == 0 || lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.sbrk(increment);
    uint32_t stack = begin_map_event();
    void *r = lt_real.sbrk(increment);
    int err = r == (void *)-1 ? errno : 0;
    void *after = lt_real.sbrk(0);
    uint8_t body[64], *p = body;
    p = lt_put_sv(p, increment);
    p = lt_put_uv(p, r == (void *)-1 ? FAILED_ADDRESS : (uint64_t)(uintptr_t)r);
    p = lt_put_uv(p, (uint64_t)(uintptr_t)after);
    end_map_event(TAG_SBRK, body, p, stack);
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT int mallopt(int param, int value) {
    LT_NEED_REAL(mallopt);
    if (!lt_hook_enter()) return lt_real.mallopt(param, value);
    int r = lt_real.mallopt(param, value);
    int saved = errno;
    uint8_t body[40], *p = body;
    p = lt_put_sv(p, param);
    p = lt_put_sv(p, value);
    p = lt_put_sv(p, r);
    lt_lock_events();
    lt_event_context_locked(lt_current_tid());
    lt_append_sized_locked(TAG_MALLOPT, body, (size_t)(p - body));
    lt_unlock(&lt.event_lock);
    lt_hook_leave();
    errno = saved;
    return r;
}
