/* Hazard 2, a small test allocator that maps under its own lock, the way jemalloc and
 * mimalloc do: malloc takes a global mutex, and while holding it calls mmap (a new region)
 * and munmap (a freed large block) through the ordinary libc symbols, so an interposed mmap
 * hook runs inside the allocator's critical section. It aborts if it is ever re-entered on
 * the same thread (a hook that allocates from inside mmap would do that) and never deadlocks
 * by itself. Built as a shared library and preloaded behind libleaktrace.
 *
 * Layout: every block has a 16-byte header holding its usable size. Small blocks (up to
 * 4 KiB) come from 64 size classes of 64 bytes carved from 1 MiB regions and are recycled
 * through per-class free lists; larger blocks get their own mapping, unmapped on free. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HEADER 16
#define CLASS_BYTES 64
#define CLASSES 64
#define REGION (1u << 20)

struct block {
    size_t size;      /* usable bytes, a multiple of 64 for small blocks */
    size_t mapped;    /* bytes of the block's own mapping, 0 for small blocks */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside; /* this thread holds the lock */
static void *free_lists[CLASSES];
static char *region_cursor;
static size_t region_left;

static void enter(void) {
    if (inside) {
        static const char msg[] = "hazard_mapalloc: re-entered from inside malloc\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    pthread_mutex_lock(&lock);
    inside = 1;
}

static void leave(void) {
    inside = 0;
    pthread_mutex_unlock(&lock);
}

/* Returns a block of at least `size` bytes whose user pointer is aligned to `align`. */
static void *allocate(size_t size, size_t align) {
    if (size > ((size_t)1 << 40)) {
        errno = ENOMEM;
        return NULL;
    }
    if (size == 0) size = 1;
    void *result = NULL;
    enter();
    if (align <= HEADER && size <= (size_t)CLASS_BYTES * CLASSES) {
        size_t cls = (size - 1) / CLASS_BYTES;
        size_t usable = (cls + 1) * CLASS_BYTES;
        char *base = free_lists[cls];
        if (base) {
            memcpy(&free_lists[cls], base + HEADER, sizeof(void *));
        } else {
            if (region_left < usable + HEADER) {
                void *region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (region == MAP_FAILED) goto out;
                region_cursor = region;
                region_left = REGION;
            }
            base = region_cursor;
            region_cursor += usable + HEADER;
            region_left -= usable + HEADER;
        }
        struct block b = {usable, 0};
        memcpy(base, &b, sizeof b);
        result = base + HEADER;
    } else {
        size_t page = 4096;
        size_t pad = align > HEADER ? align : HEADER;
        size_t total = (size + pad + HEADER + page - 1) & ~(page - 1);
        char *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) goto out;
        uintptr_t user = ((uintptr_t)map + 2 * HEADER + pad - 1) & ~(uintptr_t)(pad - 1);
        char *base = (char *)user - HEADER;
        /* The mapping's start is kept just before the header so free can unmap it. */
        memcpy(base - sizeof(void *), &map, sizeof map);
        struct block b = {total - (size_t)((char *)user - map), total};
        memcpy(base, &b, sizeof b);
        result = (void *)user;
    }
out:
    leave();
    if (!result) errno = ENOMEM;
    return result;
}

static struct block header_of(void *p) {
    struct block b;
    memcpy(&b, (char *)p - HEADER, sizeof b);
    return b;
}

void free(void *p) {
    if (!p) return;
    enter();
    struct block b = header_of(p);
    char *base = (char *)p - HEADER;
    if (b.mapped) {
        char *map;
        memcpy(&map, base - sizeof(void *), sizeof map);
        munmap(map, b.mapped);
    } else {
        size_t cls = b.size / CLASS_BYTES - 1;
        memcpy(base + HEADER, &free_lists[cls], sizeof(void *));
        free_lists[cls] = base;
    }
    leave();
}

void *malloc(size_t size) { return allocate(size, HEADER); }

void *calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = allocate(total, HEADER);
    if (p) memset(p, 0, total);
    return p;
}

void *realloc(void *old, size_t size) {
    if (!old) return malloc(size);
    if (size == 0) {
        free(old);
        return NULL;
    }
    size_t have = header_of(old).size;
    if (size <= have) return old;
    void *p = malloc(size);
    if (!p) return NULL;
    memcpy(p, old, have);
    free(old);
    return p;
}

void *reallocarray(void *old, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, total);
}

int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = allocate(size, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size) { return allocate(size, align); }
void *memalign(size_t align, size_t size) { return allocate(size, align); }
void *valloc(size_t size) { return allocate(size, 4096); }
void *pvalloc(size_t size) { return allocate((size + 4095) & ~(size_t)4095, 4096); }
size_t malloc_usable_size(void *p) { return p ? header_of(p).size : 0; }
