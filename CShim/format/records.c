/* The bodies of the sized records and the file header (format/records.h). */
#define _GNU_SOURCE
#include "records.h"

#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Writes `n` unsigned varints; returns their length. */
static size_t put_uvs(uint8_t *out, const uint64_t *values, size_t n) {
    uint8_t *p = out;
    for (size_t i = 0; i < n; i++) p = lt_put_uv(p, values[i]);
    return (size_t)(p - out);
}

/* ---- MODULES ---- */

uint8_t *lt_encode_modules_prefix(uint8_t *modules, uint64_t generation, uint64_t count) {
    uint8_t prefix[LT_MODULES_PREFIX_MAX], *p = prefix;
    p = lt_put_uv(p, generation);
    p = lt_put_uv(p, count);
    size_t len = (size_t)(p - prefix);
    memcpy(modules - len, prefix, len);
    return modules - len;
}

uint8_t *lt_encode_module(uint8_t *out, size_t cap, const struct dl_phdr_info *info, const char *path,
                          const uint8_t *id, size_t id_len) {
    size_t path_len = strlen(path);
    if (cap < path_len + id_len + 64 + (size_t)info->dlpi_phnum * 30) return NULL;
    uint8_t *p = out;
    p = lt_put_str(p, path, path_len);
    p = lt_put_uv(p, info->dlpi_addr);
    p = lt_put_str(p, (const char *)id, id_len);
    int segments = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) segments += info->dlpi_phdr[i].p_type == PT_LOAD;
    p = lt_put_uv(p, (uint64_t)segments);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        p = lt_put_uv(p, info->dlpi_addr + ph->p_vaddr);
        p = lt_put_uv(p, ph->p_memsz);
        p = lt_put_uv(p, ph->p_flags);
    }
    return p;
}

/* ---- the program's mapping calls: each ends with the stack that made it ---- */

size_t lt_encode_mmap(uint8_t *body, uint64_t addr, uint64_t len, int prot, int flags, int64_t fd, uint64_t offset,
                      uint64_t result, int err, const char *path, size_t path_len, uint32_t stack) {
    uint8_t *p = body;
    p = lt_put_uv(p, addr);
    p = lt_put_uv(p, len);
    p = lt_put_uv(p, (uint64_t)(unsigned)prot);
    p = lt_put_uv(p, (uint64_t)(unsigned)flags);
    p = lt_put_sv(p, fd);
    p = lt_put_uv(p, offset);
    p = lt_put_uv(p, result);
    p = lt_put_uv(p, (uint64_t)err);
    p = lt_put_str(p, path, path_len);
    p = lt_put_uv(p, stack);
    return (size_t)(p - body);
}

size_t lt_encode_munmap(uint8_t *body, uint64_t addr, uint64_t len, int result, int err, uint32_t stack) {
    uint8_t *p = body + put_uvs(body, (const uint64_t[]){addr, len}, 2);
    p = lt_put_sv(p, result);
    return (size_t)(p - body) + put_uvs(p, (const uint64_t[]){(uint64_t)err, stack}, 2);
}

size_t lt_encode_mremap(uint8_t *body, uint64_t old, uint64_t old_size, uint64_t new_size, int flags,
                        uint64_t new_addr, uint64_t result, int err, uint32_t stack) {
    const uint64_t values[] = {old, old_size, new_size, (uint64_t)(unsigned)flags, new_addr, result, (uint64_t)err, stack};
    return put_uvs(body, values, sizeof values / sizeof *values);
}

size_t lt_encode_brk(uint8_t *body, uint64_t addr, int result, uint64_t before, uint64_t after, uint32_t stack) {
    uint8_t *p = lt_put_uv(body, addr);
    p = lt_put_sv(p, result);
    return (size_t)(p - body) + put_uvs(p, (const uint64_t[]){before, after, stack}, 3);
}

size_t lt_encode_sbrk(uint8_t *body, int64_t increment, uint64_t result, uint64_t after, uint32_t stack) {
    uint8_t *p = lt_put_sv(body, increment);
    return (size_t)(p - body) + put_uvs(p, (const uint64_t[]){result, after, stack}, 3);
}

size_t lt_encode_mallopt(uint8_t *body, int param, int value, int result) {
    uint8_t *p = body;
    p = lt_put_sv(p, param);
    p = lt_put_sv(p, value);
    p = lt_put_sv(p, result);
    return (size_t)(p - body);
}

/* ---- process records ---- */

size_t lt_encode_sample(uint8_t *body, uint64_t vss_pages, uint64_t rss_pages, uint64_t shared_pages) {
    return put_uvs(body, (const uint64_t[]){vss_pages, rss_pages, shared_pages}, 3);
}

size_t lt_encode_mark(uint8_t *body, const char *name, uint64_t source) {
    size_t len = strlen(name);
    if (len > LT_MARK_NAME_MAX) len = LT_MARK_NAME_MAX;
    uint8_t *p = lt_put_str(body, name, len);
    p = lt_put_uv(p, source);
    return (size_t)(p - body);
}

size_t lt_encode_thread_name(uint8_t *body, uint64_t tid, const char *name, size_t len) {
    if (len > LT_THREAD_NAME_MAX) len = LT_THREAD_NAME_MAX;
    uint8_t *p = lt_put_uv(body, tid);
    p = lt_put_str(p, name, len);
    return (size_t)(p - body);
}

size_t lt_encode_fork(uint8_t *body, uint64_t child_pid) { return (size_t)(lt_put_uv(body, child_pid) - body); }

size_t lt_encode_exec(uint8_t *body, const char *path) {
    size_t len = path ? strlen(path) : 0;
    if (len > LT_EXEC_PATH_MAX) len = LT_EXEC_PATH_MAX;
    return (size_t)(lt_put_str(body, path ? path : "", len) - body);
}

size_t lt_encode_note(uint8_t *body, int level, const char *text) {
    size_t len = strlen(text);
    if (len > LT_NOTE_TEXT_MAX) len = LT_NOTE_TEXT_MAX;
    uint8_t *p = lt_put_uv(body, (uint64_t)level);
    p = lt_put_str(p, text, len);
    return (size_t)(p - body);
}

size_t lt_encode_end(uint8_t *body, const struct lt_end_counts *c) {
    const uint64_t values[] = {c->allocs, c->frees, c->reallocs, c->mappings, c->stacks, c->chunks, c->untraced};
    size_t len = put_uvs(body, values, sizeof values / sizeof *values);
    if (!c->signal) return len;
    uint8_t *p = lt_put_uv(body + len, (uint64_t)c->signal);
    p = lt_put_sv(p, c->signal_code);
    p = lt_put_uv(p, c->fault_address);
    p = lt_put_uv(p, c->signal_tid);
    p = lt_put_uv(p, c->signal_stack);
    return (size_t)(p - body);
}

uint8_t *lt_encode_fold_head(uint8_t *body, uint64_t first_us, uint64_t last_us, uint64_t peak_bytes,
                             uint64_t low_heap, uint64_t count) {
    const uint64_t values[] = {first_us, last_us, peak_bytes, low_heap, count};
    return body + put_uvs(body, values, sizeof values / sizeof *values);
}

uint8_t *lt_encode_fold_entry(uint8_t *o, uint32_t stack_delta, uint8_t info, uint64_t blocks, uint64_t bytes,
                              uint64_t temporary, uint64_t by_realloc) {
    o = lt_put_uv(o, stack_delta);
    *o++ = info;
    o = lt_put_uv(o, blocks);
    o = lt_put_uv(o, bytes);
    o = lt_put_uv(o, temporary);
    return lt_put_uv(o, by_realloc);
}

/* ---- header ---- */

struct header_writer {
    uint8_t *out, *end;
    int overflow;
};

static void field_bytes(struct header_writer *w, uint64_t key, const void *data, size_t len) {
    if ((size_t)(w->end - w->out) < len + 20) {
        w->overflow = 1;
        return;
    }
    w->out = lt_put_uv(w->out, key);
    w->out = lt_put_uv(w->out, len);
    memcpy(w->out, data, len);
    w->out += len;
}

static void field_uv(struct header_writer *w, uint64_t key, uint64_t v) {
    uint8_t tmp[10];
    size_t len = (size_t)(lt_put_uv(tmp, v) - tmp);
    field_bytes(w, key, tmp, len);
}

static void field_str(struct header_writer *w, uint64_t key, const char *s) {
    field_bytes(w, key, s, strlen(s));
}

/* Reads a small /proc file with read(2): no stdio inside the tracer. */
static size_t read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    return got;
}

static uint64_t parse_u64(const char *s) {
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
    return v;
}

/* The M_MMAP_THRESHOLD glibc starts with: 128 KiB unless the environment set it. */
static uint64_t initial_mmap_threshold(void) {
    uint64_t threshold = 128 * 1024;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "MALLOC_MMAP_THRESHOLD_=", 23) == 0) threshold = parse_u64(*e + 23);
        if (strncmp(*e, "GLIBC_TUNABLES=", 15) == 0) {
            const char *t = strstr(*e, "glibc.malloc.mmap_threshold=");
            if (t) threshold = parse_u64(t + 28);
        }
    }
    return threshold;
}

static void field_malloc_env(struct header_writer *w) {
    char buf[4096];
    size_t len = 0;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "MALLOC_", 7) != 0 && strncmp(*e, "GLIBC_TUNABLES=", 15) != 0) continue;
        size_t n = strlen(*e);
        if (len + n + 1 > sizeof buf) break;
        memcpy(buf + len, *e, n);
        len += n;
        buf[len++] = 0;
    }
    if (len) field_bytes(w, 12, buf, len - 1);
}

size_t lt_encode_header(uint8_t *out, size_t cap, const struct lt_header_info *info) {
    static const uint8_t magic[8] = {'L', 'K', 'T', 'R', 'A', 'C', 'E', 0};
    if (cap < 16) return 0;
    memcpy(out, magic, 8);
    out[8] = 2; out[9] = 0;    /* version 2 */
    out[10] = 0; out[11] = 0;  /* flags */
    struct header_writer w = {out + 16, out + cap, 0};

    field_uv(&w, 1, sizeof(void *));
    field_uv(&w, 2, (uint64_t)sysconf(_SC_PAGESIZE));
    field_uv(&w, 3, (uint64_t)getpid());
    field_uv(&w, 4, (uint64_t)getppid());
    field_str(&w, 5, info->program_path);
    char cmdline[8192];
    size_t n = read_small_file("/proc/self/cmdline", cmdline, sizeof cmdline);
    if (n > 0 && cmdline[n - 1] == 0) n--;
    field_bytes(&w, 6, cmdline, n);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    field_uv(&w, 7, (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec);
    field_str(&w, 8, "monotonic-coarse");
    field_str(&w, 9, gnu_get_libc_version());
    field_uv(&w, 10, initial_mmap_threshold());
    field_uv(&w, 11, info->allocator_is_glibc ? 1 : 0);
    field_malloc_env(&w);
    if (info->parent_trace) {
        field_str(&w, 13, info->parent_trace);
        field_uv(&w, 14, info->parent_offset);
    }
    field_uv(&w, 15, (uint64_t)info->depth);
    field_uv(&w, 16, (uint64_t)info->sample_ms);
    field_str(&w, 17, info->allocator_name);
    field_str(&w, 18, LT_VERSION);
    field_uv(&w, 19, info->events_folded ? 1 : 0);
    if (info->events_folded) field_uv(&w, 20, info->fold_window);
    if (w.overflow) return 0;

    uint32_t size = (uint32_t)(w.out - (out + 16));
    memcpy(out + 12, &size, 4);
    return (size_t)(w.out - out);
}

uint8_t *lt_encode_reach_head(uint8_t *body, uint64_t flags, uint64_t scan_us, uint64_t root_bytes,
                              uint64_t scanned_bytes, uint64_t count) {
    uint8_t *o = lt_put_uv(body, flags);
    o = lt_put_uv(o, scan_us);
    o = lt_put_uv(o, root_bytes);
    o = lt_put_uv(o, scanned_bytes);
    return lt_put_uv(o, count);
}
