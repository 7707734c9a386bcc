/* Buffers, the writer thread and the trace file.
 *
 * Hooks append records to one active buffer under the event lock, so the file order is the
 * order in which the program's calls happened (a free never precedes its malloc). When the
 * active buffer passes the flush size, or every flush_ms, it is queued and the writer thread
 * compresses it into one chunk and writes it. Hooks never write to the file themselves except
 * on the paths that must not lose data: fork, exec, _exit, abort and process exit.
 *
 * Lock order: file_lock, then event_lock. A hook only ever takes the event lock.
 */
#include "../core/shim.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: our own memory for zstd */
#include <zstd.h>

#define BUFFER_CAPACITY (1u << 20)
#define CHUNK_HEADER 16
#define TICK_MS 10

static uint8_t *compress_out;
static size_t compress_out_cap;
static ZSTD_CCtx *zstd_ctx;

/* ---- zstd's memory comes from raw mappings, never from the process allocator ---- */

static void *zstd_alloc(void *opaque, size_t size) {
    (void)opaque;
    size_t total = (size + 16 + 4095) & ~(size_t)4095;
    uint8_t *p = lt_raw_mmap(total);
    if (!p) return NULL;
    memcpy(p, &total, sizeof total);
    return p + 16;
}

static void zstd_free(void *opaque, void *address) {
    (void)opaque;
    if (!address) return;
    uint8_t *p = (uint8_t *)address - 16;
    size_t total;
    memcpy(&total, p, sizeof total);
    lt_arena_free_pages(p, total);
}

/* ---- time ---- */

uint64_t lt_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    return now >= lt.start_monotonic_us ? now - lt.start_monotonic_us : 0;
}

/* ---- buffers ---- */

static void buffer_reset(struct lt_buffer *b) {
    b->len = 0;
    b->chunk = (struct lt_chunk_state){0, 0, 0, 0};
}

void lt_buffers_init(void) {
    lt.free_len = 0;
    lt.queue_head = lt.queue_len = 0;
    for (int i = 0; i < LT_BUFFER_COUNT; i++) {
        struct lt_buffer *b = &lt.buffers[i];
        if (!b->data) {
            b->data = lt_raw_mmap(BUFFER_CAPACITY);
            b->cap = b->data ? BUFFER_CAPACITY : 0;
        }
        buffer_reset(b);
        if (i > 0) lt.free_list[lt.free_len++] = i;
    }
    lt.active = 0;
    if (!compress_out) {
        compress_out_cap = ZSTD_compressBound(BUFFER_CAPACITY) + CHUNK_HEADER;
        compress_out = lt_raw_mmap((compress_out_cap + 4095) & ~(size_t)4095);
    }
}

static void drain(int include_active);

/* Moves the active buffer to the write queue and takes a free one. When every buffer is
 * queued, a hook waits for the writer (back-pressure rather than unbounded memory); if there
 * is no writer thread, or the caller is the writer itself (its memory samples, module
 * snapshots and marks are records too, and once waited here for buffers only it could free:
 * two threads allocating flat out on two cores starved it until all eight were queued), or the
 * caller holds the file lock the writer needs (a flush merging the event rings), or the
 * caller is inside the program's own dl_iterate_phdr (the writer's module check waits for the
 * loader's list lock that this thread holds: seen as a hang, hazard case 3, 2 runs in 30), the
 * caller writes the queue itself. */
static void rotate_locked(int may_wait) {
    while (lt.free_len == 0) {
        if (!may_wait || atomic_load(&lt_phase) != PHASE_TRACING) return;
        if (lt.writer_running && !lt_self.is_writer && !lt_self.holds_file_lock && !lt_self.loader_locked) {
            int seen = atomic_load(&lt.freed_seq);
            lt_signal_change(&lt.queued_seq);
            lt_wait_change(&lt.event_lock, &lt.freed_seq, seen, NULL);
        } else {
            /* The writer would need the file lock: a flush that holds it writes the queue. */
            int held = lt_self.holds_file_lock;
            lt_unlock(&lt.event_lock);
            if (!held) pthread_mutex_lock(&lt.file_lock);
            drain(0);
            if (!held) pthread_mutex_unlock(&lt.file_lock);
            lt_lock(&lt.event_lock);
        }
    }
    if (lt.buffers[lt.active].len == 0) return;
    lt.queue[(lt.queue_head + lt.queue_len) % LT_BUFFER_COUNT] = lt.active;
    lt.queue_len++;
    lt.active = lt.free_list[--lt.free_len];
    buffer_reset(&lt.buffers[lt.active]);
    lt_signal_change(&lt.queued_seq);
}

/* The slow paths of lt_reserve_locked and lt_commit_locked (core/shim.h). */
uint8_t *lt_reserve_slow_locked(size_t need) {
    if (atomic_load_explicit(&lt_phase, memory_order_relaxed) != PHASE_TRACING) return NULL;
    rotate_locked(1);
    struct lt_buffer *b = &lt.buffers[lt.active];
    if (b->len + need > b->cap) return NULL;
    return b->data + b->len;
}

void lt_buffer_full_locked(void) { rotate_locked(1); }

/* Emits THREAD and TIME when they changed since the last event in this chunk. */
void lt_context_slow_locked(uint64_t tid, uint64_t now) {
    uint8_t *p = lt_reserve_locked(24);
    if (!p) return;
    struct lt_buffer *b = &lt.buffers[lt.active];
    b->len = (size_t)(lt_put_context(&b->chunk, &lt.time_floor, p, tid, now) - b->data);
}

static void append_sized_locked(uint8_t tag, const uint8_t *body, size_t len) {
    uint8_t *p = lt_reserve_locked(len + LT_SIZED_RECORD_OVERHEAD);
    if (!p) return;
    lt_commit_locked(lt_encode_sized(p, tag, body, len));
}

void lt_append_record_locked(uint8_t tag, const uint8_t *body, size_t len, enum lt_context context) {
    if (context == LT_WITH_CONTEXT) lt_event_context_locked(lt_current_tid());
    append_sized_locked(tag, body, len);
}

void lt_append_record(uint8_t tag, const uint8_t *body, size_t len, enum lt_context context) {
    lt_lock_events();
    lt_append_record_locked(tag, body, len, context);
    lt_unlock(&lt.event_lock);
}

int lt_append_record_nowait_locked(uint8_t tag, const uint8_t *body, size_t len) {
    struct lt_buffer *b = &lt.buffers[lt.active];
    if (atomic_load(&lt_phase) != PHASE_TRACING || b->len + LT_CONTEXT_MAX + LT_SIZED_RECORD_OVERHEAD + len > b->cap)
        return 0;
    lt_event_context_locked(lt_current_tid());
    b->len = (size_t)(lt_encode_sized(b->data + b->len, tag, body, len) - b->data);
    return 1;
}

/* ---- the file ---- */

static const char *errno_name(int e) {
    switch (e) {
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EIO: return "input/output error";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EROFS: return "read-only file system";
    case ENOENT: return "no such file or directory";
    case ELOOP: return "path is a symbolic link";
    case EEXIST: return "file exists";
    case EFBIG: return "file too large";
    case EBADF: return "trace file was closed";
    case ENXIO: return "no reader on the other end";
    default: return "write failed";
    }
}

static void stop_tracing(const char *what, int e) {
    atomic_store(&lt_phase, PHASE_STOPPED);
    if (!lt.warned_write) {
        lt.warned_write = 1;
        lt_warn(what, lt.output_path, errno_name(e));
    }
}

/* Moves a tracer descriptor out of the way of programs that dup2 onto low numbers. */
int lt_move_fd_high(int fd) {
    struct rlimit rl;
    long high = 900;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur <= high)
        high = (long)rl.rlim_cur / 2;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, (int)high);
    if (moved < 0) return fd;
    close(fd);
    return moved;
}

/* Makes sure lt.fd is still our file: daemons close every descriptor and reuse the numbers
 * (uftrace#1883, igprof#19). If it is not, reopen the same file by path; if the file itself
 * was replaced, give up rather than write into someone else's file. */
static int verify_output(void) {
    struct stat st;
    if (lt.fd >= 0 && fstat(lt.fd, &st) == 0 && st.st_dev == lt.file_dev && st.st_ino == lt.file_ino)
        return 1;
    int fd = open(lt.output_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || st.st_dev != lt.file_dev || st.st_ino != lt.file_ino) {
        close(fd);
        errno = ENOENT;
        return 0;
    }
    lt.fd = lt_move_fd_high(fd);
    return 1;
}

static int write_all(const uint8_t *data, size_t len) {
    if (!verify_output()) return -1;
    while (len > 0) {
        ssize_t w = write(lt.fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        data += w;
        len -= (size_t)w;
        lt.file_offset += (uint64_t)w;
    }
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Writes one buffer as one chunk. Called with the file lock held. */
static void write_chunk(struct lt_buffer *b, int allow_compression) {
    if (b->len == 0 || lt.file_closed) return;
    uint8_t *out = compress_out;
    size_t stored = 0;
    int codec = 0;
    if (allow_compression && lt.config.zstd_level > 0 && zstd_ctx && out) {
        size_t r = ZSTD_compress2(zstd_ctx, out + CHUNK_HEADER, compress_out_cap - CHUNK_HEADER, b->data, b->len);
        if (!ZSTD_isError(r) && r < b->len) {
            stored = r;
            codec = 1;
        }
    }
    uint8_t header[CHUNK_HEADER] = {'L', 'T', 'C', 'K', (uint8_t)codec, 0, 0, 0};
    put_u32(header + 12, (uint32_t)b->len);
    int failed;
    if (codec == 1) {
        put_u32(header + 8, (uint32_t)stored);
        memcpy(out, header, CHUNK_HEADER);
        failed = write_all(out, CHUNK_HEADER + stored);
    } else {
        put_u32(header + 8, (uint32_t)b->len);
        failed = write_all(header, CHUNK_HEADER) || write_all(b->data, b->len);
    }
    if (failed) {
        stop_tracing("cannot write trace", errno);
        lt.file_closed = 1;
        return;
    }
    lt.count_chunks++;
}

/* Writes every queued buffer in queue order, and the active one too when `include_active`.
 * Called with the file lock held and the event lock not held. Only the file lock's holder
 * takes buffers off the queue, so chunks reach the file in the order they were filled. */
static void drain(int include_active) {
    lt_lock(&lt.event_lock);
    for (;;) {
        if (include_active && lt.queue_len == 0 && lt.buffers[lt.active].len > 0 && lt.free_len > 0) {
            rotate_locked(0);
            include_active = 0;
        }
        if (lt.queue_len == 0) break;
        int pending[LT_BUFFER_COUNT], count = 0;
        while (lt.queue_len > 0) {
            pending[count++] = lt.queue[lt.queue_head];
            lt.queue_head = (lt.queue_head + 1) % LT_BUFFER_COUNT;
            lt.queue_len--;
        }
        lt_unlock(&lt.event_lock);
        for (int i = 0; i < count; i++) write_chunk(&lt.buffers[pending[i]], 1);
        lt_lock(&lt.event_lock);
        for (int i = 0; i < count; i++) {
            buffer_reset(&lt.buffers[pending[i]]);
            lt.free_list[lt.free_len++] = pending[i];
        }
        lt_signal_change(&lt.freed_seq);
    }
    lt_unlock(&lt.event_lock);
}

/* ---- the output file ---- */

static void expand_pattern(char *out, size_t cap, const char *pattern) {
    size_t o = 0;
    for (const char *p = pattern; *p && o + 32 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            o = (size_t)(lt_put_decimal(out + o, (uint64_t)lt.pid) - out);
            p++;
        } else if (p[0] == '%' && p[1] == 'e') {
            for (const char *s = lt.program_name; *s && o + 32 < cap; s++) out[o++] = *s;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            out[o++] = '%';
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

static void make_absolute(char *path, size_t cap) {
    if (path[0] == '/') return;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return;
    size_t c = strlen(cwd), p = strlen(path);
    if (c + 1 + p + 1 > cap) return;
    memmove(path + c + 1, path, p + 1);
    memcpy(path, cwd, c);
    path[c] = '/';
}

/* Opens a fresh trace file: never through a symlink, never over an existing file (a process
 * that execs itself keeps its pid, so a numbered suffix is added). An existing character
 * device or FIFO (/dev/null, /dev/full, a pipe) is written to as it is. */
static int open_trace_file(char *path, size_t cap) {
    struct stat st;
    if (lstat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
        return open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    size_t base = strlen(path);
    for (int attempt = 0; attempt < 1000; attempt++) {
        if (attempt > 0) {
            if (base + 8 > cap) return -1;
            char *s = path + base;
            *s++ = '.';
            *lt_put_decimal(s, (uint64_t)attempt) = 0;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

int lt_open_output(const char *parent_trace, uint64_t parent_offset) {
    expand_pattern(lt.output_path, sizeof lt.output_path, lt.config.output_pattern);
    make_absolute(lt.output_path, sizeof lt.output_path);
    int fd = open_trace_file(lt.output_path, sizeof lt.output_path);
    if (fd < 0) {
        lt_warn("cannot create trace file", lt.output_path, errno_name(errno));
        return 0;
    }
    if (fcntl(fd, F_GETFL) & O_NONBLOCK) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct stat st;
    fstat(fd, &st);
    lt.fd = lt_move_fd_high(fd);
    lt.file_dev = st.st_dev;
    lt.file_ino = st.st_ino;
    lt.file_offset = 0;
    lt.file_closed = 0;
    lt.warned_write = 0;

    static uint8_t header[16 + 16384];
    struct lt_header_info info = {
        .program_path = lt.program_path,
        .parent_trace = parent_trace,
        .parent_offset = parent_offset,
        .depth = lt.config.depth,
        .sample_ms = lt.config.sample_ms,
        .allocator_is_glibc = lt.allocator_is_glibc,
        .allocator_name = lt.allocator_name,
    };
    size_t len = lt_encode_header(header, sizeof header, &info);
    if (len == 0 || write_all(header, len) != 0) {
        lt_warn("cannot write trace file", lt.output_path, errno_name(errno));
        close(lt.fd);
        lt.fd = -1;
        return 0;
    }
    if (!zstd_ctx && lt.config.zstd_level > 0) {
        ZSTD_customMem mem = {zstd_alloc, zstd_free, NULL};
        zstd_ctx = ZSTD_createCCtx_advanced(mem);
        if (zstd_ctx) {
            ZSTD_CCtx_setParameter(zstd_ctx, ZSTD_c_compressionLevel, lt.config.zstd_level);
            ZSTD_CCtx_setParameter(zstd_ctx, ZSTD_c_checksumFlag, 1);
        }
    }
    return 1;
}

/* ---- records written outside hooks ---- */

static void emit_sample(void) {
    char buf[256];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    uint64_t v[3] = {0, 0, 0};
    const char *p = buf;
    for (int i = 0; i < 3; i++) {
        while (*p == ' ') p++;
        while (*p >= '0' && *p <= '9') v[i] = v[i] * 10 + (uint64_t)(*p++ - '0');
    }
    uint8_t body[LT_SAMPLE_BODY_MAX];
    lt_append_record(TAG_SAMPLE, body, lt_encode_sample(body, v[0], v[1], v[2]), LT_WITH_CONTEXT);
}

void lt_emit_note(int level, const char *text) {
    uint8_t body[LT_NOTE_BODY_MAX];
    lt_append_record(TAG_NOTE, body, lt_encode_note(body, level, text), LT_NO_CONTEXT);
}

void lt_emit_thread_name(uint64_t tid, const char *name, size_t len) {
    uint8_t body[LT_THREAD_NAME_BODY_MAX];
    lt_append_record(TAG_THREAD_NAME, body, lt_encode_thread_name(body, tid, name, len), LT_NO_CONTEXT);
}

/* END must be the last record: it is appended whole, after a rotation if the active chunk
 * cannot take it. */
static void append_end_locked(void) {
    struct lt_end_counts counts = {
        .allocs = lt.count_allocs,
        .frees = lt.count_frees,
        .reallocs = lt.count_reallocs,
        .mappings = lt.count_mappings,
        .stacks = lt.count_stacks,
        .chunks = lt.count_chunks + (uint64_t)lt.queue_len,
        .untraced = atomic_load(&lt_count_untraced),
    };
    uint8_t body[LT_END_BODY_MAX];
    lt_append_record_locked(TAG_END, body, lt_encode_end(body, &counts), LT_NO_CONTEXT);
}

/* Writes everything recorded so far. With final_end, appends END and stops tracing: used at
 * exit, _exit and abort. */
void lt_flush_all(int final_end) {
    if (lt.fd < 0) return;
    pthread_mutex_lock(&lt.file_lock);
    lt_self.holds_file_lock = 1;
    lt_lock_events();
    if (final_end) {
        if (atomic_load(&lt_phase) == PHASE_TRACING) {
            append_end_locked();
            atomic_store(&lt_phase, PHASE_STOPPED);
        } else {
            final_end = 0;
        }
    }
    lt_unlock(&lt.event_lock);
    drain(1);
    if (final_end) lt.file_closed = 1;
    lt_self.holds_file_lock = 0;
    pthread_mutex_unlock(&lt.file_lock);
}

/* ---- fork: the parent's data up to the fork must be on disk before the child starts, so
 * the child's trace can name the point where it branched off. Called from the prepare
 * handler, which keeps both locks until the parent/child handlers release or re-create them. */
void lt_flush_for_fork(void) {
    pthread_mutex_lock(&lt.file_lock);
    lt_self.holds_file_lock = 1; /* until the fork handlers let the file lock go */
    lt_lock_events();
    lt_unlock(&lt.event_lock);
    drain(1);
    lt_lock(&lt.event_lock);
}

/* ---- the writer thread ---- */

/* The upper layers' work at every tick (core/init.c: the module map check, the marks asked for
 * by signal): the writer calls up only through this. */
static void (*writer_tick)(void);

/* The writer thread ticks every TICK_MS: it advances the clock the hooks read, takes a memory
 * sample every sample interval, runs the registered tick, merges the threads' event rings and
 * writes queued buffers, and every flush interval the active buffer too. */
static void *writer_main(void *arg) {
    (void)arg;
    lt_self.in_hook = LT_IN_TRACER; /* anything this thread allocates is the tracer's, not the program's */
    lt_self.is_writer = 1;
    uint64_t last_sample = 0, last_flush = 0;
    uint64_t tick_ms = lt.config.flush_ms < TICK_MS ? (uint64_t)lt.config.flush_ms : TICK_MS;
    while (!atomic_load(&lt.writer_stop)) {
        lt_lock(&lt.event_lock);
        if (lt.queue_len == 0) {
            struct timespec tick = {0, (long)tick_ms * 1000000L};
            lt_wait_change(&lt.event_lock, &lt.queued_seq, atomic_load(&lt.queued_seq), &tick);
        }
        lt_unlock(&lt.event_lock);
        if (atomic_load(&lt_phase) != PHASE_TRACING) break;

        uint64_t now = lt_now_us();
        atomic_store_explicit(&lt.now_us, now, memory_order_relaxed);
        int flush_due = now - last_flush >= (uint64_t)lt.config.flush_ms * 1000u;
        if (flush_due) {
            last_flush = now;
            if (now - last_sample >= (uint64_t)lt.config.sample_ms * 1000u) {
                emit_sample();
                last_sample = now;
            }
        }
        if (writer_tick) writer_tick();
        /* A thread that allocates little fills its ring slowly: its events reach the buffer
         * here, so every event is on disk within a flush interval. */
        lt_lock_events();
        lt_unlock(&lt.event_lock);
        pthread_mutex_lock(&lt.file_lock);
        drain(flush_due);
        pthread_mutex_unlock(&lt.file_lock);
    }
    return NULL;
}

void lt_writer_start(void (*tick)(void)) {
    writer_tick = tick;
    sigset_t all, old;
    sigfillset(&all);
    /* The writer must never take a signal meant for the program (KDE bug 378494). */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    lt.writer_running = pthread_create(&lt.writer_thread, NULL, writer_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (lt.writer_running) pthread_detach(lt.writer_thread);
}
