/* The C half of docs/trace-format.md: varints, addresses and the file header. */
#include "../core/shim.h"

#include <fcntl.h>
#include <gnu/libc-version.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

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

size_t lt_encode_header(uint8_t *out, size_t cap, const char *parent_trace, uint64_t parent_offset) {
    static const uint8_t magic[8] = {'L', 'K', 'T', 'R', 'A', 'C', 'E', 0};
    if (cap < 16) return 0;
    memcpy(out, magic, 8);
    out[8] = 1; out[9] = 0;    /* version 1 */
    out[10] = 0; out[11] = 0;  /* flags */
    struct header_writer w = {out + 16, out + cap, 0};

    field_uv(&w, 1, sizeof(void *));
    field_uv(&w, 2, (uint64_t)sysconf(_SC_PAGESIZE));
    field_uv(&w, 3, (uint64_t)getpid());
    field_uv(&w, 4, (uint64_t)getppid());
    field_str(&w, 5, lt.program_path);
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
    field_uv(&w, 11, lt.allocator_is_glibc ? 1 : 0);
    field_malloc_env(&w);
    if (parent_trace) {
        field_str(&w, 13, parent_trace);
        field_uv(&w, 14, parent_offset);
    }
    field_uv(&w, 15, (uint64_t)lt.config.depth);
    field_uv(&w, 16, (uint64_t)lt.config.sample_ms);
    field_str(&w, 17, lt.allocator_name);
    field_str(&w, 18, LT_VERSION);
    if (w.overflow) return 0;

    uint32_t size = (uint32_t)(w.out - (out + 16));
    memcpy(out + 12, &size, 4);
    return (size_t)(w.out - out);
}
