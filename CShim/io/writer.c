/* The writer thread, the records it writes itself (memory samples, notes, END) and the flushes
 * that write the file without it (io/writer.h).
 *
 * Records are appended to the active buffer under the event lock (io/buffers.c). When the
 * active buffer passes the flush size, or every flush interval, it is queued and the writer
 * thread writes it as one chunk. Other threads write to the file themselves only on the paths
 * that must not lose data (fork, exec, _exit, abort and process exit) or must not wait for the
 * writer (io/buffers.c, rotate_locked). */
#include "writer.h"
#include "buffers.h"
#include "file.h"
#include "fold.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 10

_Alignas(64) _Atomic uint64_t lt_tick_us;

static pthread_t writer_thread;
/* The writer thread's CPU time, as of its latest tick (LEAKTRACE_VERBOSE). */
static _Atomic uint64_t writer_cpu_us;
static int writer_running;
static _Atomic int writer_stop;

/* ---- time ---- */

static uint64_t start_monotonic_us;

static uint64_t monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lt_clock_init(void) { start_monotonic_us = monotonic_us(); }

uint64_t lt_now_us(void) {
    uint64_t now = monotonic_us();
    return now >= start_monotonic_us ? now - start_monotonic_us : 0;
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

/* The signal that ended the process, if one did (set just before the final flush). */
static struct lt_end_counts end_signal;

void lt_set_end_signal(int sig, int64_t code, uint64_t fault_address, uint64_t tid, uint32_t stack) {
    end_signal.signal = sig;
    end_signal.signal_code = code;
    end_signal.fault_address = fault_address;
    end_signal.signal_tid = tid;
    end_signal.signal_stack = stack;
}

/* END must be the last record: it is appended whole, after a rotation if the active chunk
 * cannot take it. */
static void append_end_locked(void) {
    struct lt_end_counts counts = {
        .signal = end_signal.signal,
        .signal_code = end_signal.signal_code,
        .fault_address = end_signal.fault_address,
        .signal_tid = end_signal.signal_tid,
        .signal_stack = end_signal.signal_stack,
        .allocs = lt_buf.count_allocs,
        .frees = lt_buf.count_frees,
        .reallocs = lt_buf.count_reallocs,
        .mappings = lt_buf.count_mappings,
        .stacks = lt_buf.count_stacks,
        .chunks = lt_buf.count_chunks + (uint64_t)lt_buf.queue_len,
        .untraced = atomic_load(&lt_count_untraced),
    };
    uint8_t body[LT_END_BODY_MAX];
    lt_append_record_locked(TAG_END, body, lt_encode_end(body, &counts), LT_NO_CONTEXT);
}

/* With the file lock held: writes everything, with END and tracing stopped if final_end. */
static void flush_all_file_locked(int final_end) {
    lt_lock_events();
    if (final_end) {
        if (atomic_load(&lt_phase) == PHASE_TRACING) {
            append_end_locked();
            atomic_store(&lt_phase, PHASE_STOPPED);
        } else {
            final_end = 0;
        }
    }
    lt_unlock(&lt_buf.event_lock);
    lt_buffers_write_queued(1);
    if (final_end) lt_file.closed = 1;
    lt_file_unlock();
}

/* Writes everything recorded so far. With final_end, appends END and stops tracing: used at
 * exit, _exit and abort. */
void lt_flush_all(int final_end) {
    if (lt_file.fd < 0) return;
    lt_file_lock();
    flush_all_file_locked(final_end);
}

int lt_flush_all_within(int final_end, int wait_ms) {
    if (lt_file.fd < 0) return 0;
    uint64_t start = monotonic_us();
    while (pthread_mutex_trylock(&lt_buf.file_lock) != 0) {
        if (monotonic_us() - start > (uint64_t)wait_ms * 1000u) return 0;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    lt_self.holds_file_lock = 1;
    flush_all_file_locked(final_end);
    return 1;
}

/* ---- fork: the parent's data up to the fork must be on disk before the child starts, so
 * the child's trace can name the point where it branched off. Called from the prepare
 * handler, which keeps both locks until the parent/child handlers release or re-create them. */
void lt_flush_for_fork(void) {
    lt_file_lock(); /* until the fork handlers let it go */
    lt_lock_events();
    lt_unlock(&lt_buf.event_lock);
    lt_buffers_write_queued(1);
    lt_lock(&lt_buf.event_lock);
}

void lt_fork_parent_release(void) {
    lt_unlock(&lt_buf.event_lock);
    lt_file_unlock();
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
    uint64_t tick_ms = lt_config.flush_ms < TICK_MS ? (uint64_t)lt_config.flush_ms : TICK_MS;
    while (!atomic_load(&writer_stop)) {
        lt_lock(&lt_buf.event_lock);
        if (lt_buf.queue_len == 0) {
            struct timespec tick = {0, (long)tick_ms * 1000000L};
            lt_wait_change(&lt_buf.event_lock, &lt_buf.queued_seq, atomic_load(&lt_buf.queued_seq), &tick);
        }
        lt_unlock(&lt_buf.event_lock);
        if (atomic_load(&lt_phase) != PHASE_TRACING) break;

        uint64_t now = lt_now_us();
        atomic_store_explicit(&lt_tick_us, now, memory_order_relaxed);
        int flush_due = now - last_flush >= (uint64_t)lt_config.flush_ms * 1000u;
        if (flush_due) {
            last_flush = now;
            if (now - last_sample >= (uint64_t)lt_config.sample_ms * 1000u) {
                emit_sample();
                last_sample = now;
            }
        }
        if (writer_tick) writer_tick();
        /* A thread that allocates little fills its ring slowly: its events reach the buffer
         * here, so every event is on disk within a flush interval. The events the fold holds
         * back are written at each flush (io/fold.c): blocks that live less than a flush
         * interval fold. */
        lt_lock(&lt_buf.event_lock);
        if (flush_due) lt_rings_drain_locked();
        else lt_rings_merge_locked();
        lt_unlock(&lt_buf.event_lock);
        pthread_mutex_lock(&lt_buf.file_lock);
        lt_buffers_write_queued(flush_due);
        pthread_mutex_unlock(&lt_buf.file_lock);
        struct timespec cpu;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
            atomic_store(&writer_cpu_us, (uint64_t)cpu.tv_sec * 1000000u + (uint64_t)cpu.tv_nsec / 1000u);
    }
    return NULL;
}

/* The writer's stack is the tracer's own mapping (base/arena.c lists it), so the exit scan
 * leaves out the program's addresses its frames held while merging. A forked child's writer
 * reuses it: the parent's writer does not exist in the child. */
#define WRITER_STACK_SIZE (1u << 20)
static void *writer_stack;

void lt_writer_start(void (*tick)(void)) {
    writer_tick = tick;
    sigset_t all, old;
    sigfillset(&all);
    /* The writer must never take a signal meant for the program (KDE bug 378494). */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (!writer_stack) writer_stack = lt_raw_mmap(WRITER_STACK_SIZE);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (writer_stack) pthread_attr_setstack(&attr, writer_stack, WRITER_STACK_SIZE);
    writer_running = pthread_create(&writer_thread, &attr, writer_main, NULL) == 0;
    if (!writer_running && writer_stack) /* a static TLS too large for it: glibc's own stack */
        writer_running = pthread_create(&writer_thread, NULL, writer_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (writer_running) pthread_detach(writer_thread);
}


void lt_writer_report(void) {
    char cpu[32], folded[32];
    *lt_put_decimal(cpu, atomic_load(&writer_cpu_us) / 1000u) = 0;
    *lt_put_decimal(folded, lt_fold_count()) = 0;
    lt_warn("writer thread cpu ms:", cpu, NULL);
    lt_warn(lt_fold_enabled() ? "blocks folded:" : "every event written, blocks folded:", folded, NULL);
}

void lt_writer_stop(void) { atomic_store(&writer_stop, 1); }

int lt_writer_running(void) { return writer_running; }

void lt_writer_after_fork(void) {
    lt_self.holds_file_lock = 0;
    /* A signal deferred in the parent is not pending in the child: only its mask needs undoing. */
    if (lt_deferred_signals) lt_deliver_deferred_signal();
    writer_running = 0;
    atomic_store(&writer_stop, 0);
}
