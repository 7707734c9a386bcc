/* The program's own mapping calls: mmap, munmap, mremap, brk, sbrk, and mallopt.
 *
 * glibc's malloc maps and grows its heap through internal entry points these hooks never see
 * (they call the system directly), so everything recorded here is the program's (or a library's) direct use.
 * The event lock is held across the real call: the call is a plain system call that never
 * comes back into user code, and holding the lock makes the record order exactly the order
 * in which the kernel applied the calls (an munmap and a new mmap of the same range from
 * two threads cannot be recorded the wrong way round). */
#include "../core/real.h"
#include "../core/stacks.h"
#include "../core/intern.h"
#include "../core/modules.h"
#include "../io/buffers.h"
#include "../io/live.h"
#include "../format/records.h"

#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The path of a mapped file, through /proc/self/fd: readlink is a system call, no allocation. */
static size_t fd_path(int fd, char *out, size_t cap) {
    char link[40] = "/proc/self/fd/";
    *lt_put_decimal(link + strlen(link), (uint64_t)(unsigned)fd) = 0;
    ssize_t r = readlink(link, out, cap);
    return r > 0 ? (size_t)r : 0;
}

/* Finds (or interns) the calling stack's id, then takes the event lock for the record, held
 * until end_map_event: the program's mapping calls happen under it, so the trace order is the
 * order the kernel applied them. */
static inline uint32_t begin_map_event(uintptr_t cfa, uintptr_t ip0, uintptr_t bp) {
    uint32_t stack = lt_capture_stack_id(cfa, ip0, bp);
    lt_lock_events();
    return stack;
}

static inline void end_map_event(uint8_t tag, const uint8_t *body, size_t len) {
    lt_append_record_locked(tag, body, len, LT_WITH_CONTEXT);
    lt_buf.count_mappings++;
    lt_unlock(&lt_buf.event_lock);
}

static void *mmap_common(void *(*real)(void *, size_t, int, int, int, off_t), uintptr_t cfa, uintptr_t caller,
                         uintptr_t bp, void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (lt_is_internal_mapping_caller(caller) || !lt_hook_enter()) return real(addr, len, prot, flags, fd, off);
    uint32_t stack = begin_map_event(cfa, caller, bp);
    void *r = real(addr, len, prot, flags, fd, off);
    int err = r == MAP_FAILED ? errno : 0;
    char path[LT_PATH_MAX];
    size_t path_len = (r != MAP_FAILED && !(flags & MAP_ANONYMOUS) && fd >= 0) ? fd_path(fd, path, sizeof path) : 0;
    if (r != MAP_FAILED) lt_live_mapped_locked((uint64_t)(uintptr_t)r, len);
    uint8_t body[LT_MMAP_BODY_MAX];
    end_map_event(TAG_MMAP, body,
                  lt_encode_mmap(body, (uint64_t)(uintptr_t)addr, len, prot, flags, (flags & MAP_ANONYMOUS) ? -1 : fd,
                                 (uint64_t)off, r == MAP_FAILED ? LT_FAILED_ADDRESS : (uint64_t)(uintptr_t)r, err,
                                 path, path_len, stack));
    lt_hook_leave();
    errno = err ? err : errno;
    return r;
}

LT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    LT_NEED_REAL(mmap);
    return mmap_common(lt_real.mmap, LT_CALL_SITE, addr, len, prot, flags, fd, off);
}

LT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    LT_NEED_REAL(mmap64);
    return mmap_common(lt_real.mmap64 ? lt_real.mmap64 : lt_real.mmap, LT_CALL_SITE, addr, len, prot, flags, fd, off);
}

LT_EXPORT int munmap(void *addr, size_t len) {
    LT_NEED_REAL(munmap);
    if (lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.munmap(addr, len);
    uint32_t stack = begin_map_event(LT_CALL_SITE);
    int r = lt_real.munmap(addr, len);
    int err = r ? errno : 0;
    if (!r) lt_live_unmapped_locked((uint64_t)(uintptr_t)addr, len);
    uint8_t body[LT_MUNMAP_BODY_MAX];
    end_map_event(TAG_MUNMAP, body, lt_encode_munmap(body, (uint64_t)(uintptr_t)addr, len, r, err, stack));
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
    uint32_t stack = begin_map_event(LT_CALL_SITE);
    void *r = lt_real.mremap(old, old_size, new_size, flags, new_addr);
    int err = r == MAP_FAILED ? errno : 0;
    if (r != MAP_FAILED)
        lt_live_remapped_locked((uint64_t)(uintptr_t)old, old_size, (uint64_t)(uintptr_t)r, new_size,
                                (flags & MREMAP_DONTUNMAP) || old_size == 0);
    uint8_t body[LT_MREMAP_BODY_MAX];
    end_map_event(TAG_MREMAP, body,
                  lt_encode_mremap(body, (uint64_t)(uintptr_t)old, old_size, new_size, flags,
                                   (uint64_t)(uintptr_t)new_addr,
                                   r == MAP_FAILED ? LT_FAILED_ADDRESS : (uint64_t)(uintptr_t)r, err, stack));
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT int brk(void *addr) {
    LT_NEED_REAL(brk);
    if (lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.brk(addr);
    uint32_t stack = begin_map_event(LT_CALL_SITE);
    void *before = lt_real.sbrk(0);
    int r = lt_real.brk(addr);
    int err = r ? errno : 0;
    void *after = lt_real.sbrk(0);
    uint8_t body[LT_BRK_BODY_MAX];
    end_map_event(TAG_BRK, body,
                  lt_encode_brk(body, (uint64_t)(uintptr_t)addr, r, (uint64_t)(uintptr_t)before,
                                (uint64_t)(uintptr_t)after, stack));
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT void *sbrk(intptr_t increment) {
    LT_NEED_REAL(sbrk);
    /* sbrk(0) only asks where the break is: not worth a record. */
    if (increment == 0 || lt_is_internal_mapping_caller((uintptr_t)__builtin_return_address(0)) || !lt_hook_enter())
        return lt_real.sbrk(increment);
    uint32_t stack = begin_map_event(LT_CALL_SITE);
    void *r = lt_real.sbrk(increment);
    int err = r == (void *)-1 ? errno : 0;
    void *after = lt_real.sbrk(0);
    uint8_t body[LT_SBRK_BODY_MAX];
    end_map_event(TAG_SBRK, body,
                  lt_encode_sbrk(body, increment, r == (void *)-1 ? LT_FAILED_ADDRESS : (uint64_t)(uintptr_t)r,
                                 (uint64_t)(uintptr_t)after, stack));
    lt_hook_leave();
    if (err) errno = err;
    return r;
}

LT_EXPORT int mallopt(int param, int value) {
    LT_NEED_REAL(mallopt);
    if (!lt_hook_enter()) return lt_real.mallopt(param, value);
    int r = lt_real.mallopt(param, value);
    int saved = errno;
    uint8_t body[LT_MALLOPT_BODY_MAX];
    lt_append_record(TAG_MALLOPT, body, lt_encode_mallopt(body, param, value, r), LT_WITH_CONTEXT);
    lt_hook_leave();
    errno = saved;
    return r;
}
