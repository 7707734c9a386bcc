/* Start-up, configuration, fork and exit.
 *
 * Fork policy: the prepare handler writes everything recorded so far and holds the tracer's
 * locks across fork, so the child never inherits a lock held by a thread that does not exist
 * in it (gperftools#178). The parent releases them. The child re-creates them, starts its own
 * trace file whose header names the parent's trace and the byte offset where the parent's data
 * at the fork ends, resets the stack tables (its trace must stand alone) and starts its own
 * writer thread. */
#include "init.h"
#include "gate.h"
#include "stacks.h"
#include "intern.h"
#include "modules.h"
#include "marks.h"
#include "fatal.h"
#include "chunkpath.h"
#include "reach.h"
#include "real.h"
#include "../io/buffers.h"
#include "../io/chunks.h"
#include "../io/file.h"
#include "../io/rings.h"
#include "../io/writer.h"
#include "../format/records.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct lt_process lt_process;
struct lt_unwind_gate lt_gate;

static int env_int(const char *name, int fallback, int lo, int hi) {
    const char *v = secure_getenv(name);
    if (!v || !*v) return fallback;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi) {
        lt_warn("ignoring", name, "not a number in range");
        return fallback;
    }
    return (int)n;
}

static void read_config(void) {
    struct lt_config *c = &lt_config;
    const char *out = secure_getenv("LEAKTRACE_OUTPUT");
    const char *pattern = out && *out ? out : "leaktrace.%e.%p.lt";
    strncpy(c->output_pattern, pattern, sizeof c->output_pattern - 1);
    c->depth = env_int("LEAKTRACE_DEPTH", 64, 1, LT_MAX_DEPTH);
    c->sample_ms = env_int("LEAKTRACE_SAMPLE_MS", 100, 1, 3600000);
    c->flush_ms = env_int("LEAKTRACE_FLUSH_MS", 100, 1, 60000);
    c->zstd_level = env_int("LEAKTRACE_ZSTD_LEVEL", 1, 0, 19);
    c->verbose = env_int("LEAKTRACE_VERBOSE", 0, 0, 9);
    c->mark_signal = env_int("LEAKTRACE_MARK_SIGNAL", 0, 0, 64);
    const char *unwind = secure_getenv("LEAKTRACE_UNWIND");
    c->unwind = LT_UNWIND_CACHED;
    if (unwind && strcmp(unwind, "libunwind") == 0) c->unwind = LT_UNWIND_LIBUNWIND;
    if (unwind && strcmp(unwind, "verify") == 0) c->unwind = LT_UNWIND_VERIFY;
    if (unwind && strcmp(unwind, "walk") == 0) c->unwind = LT_UNWIND_WALK;
    const char *events = secure_getenv("LEAKTRACE_EVENTS");
    c->events_folded = !(events && strcmp(events, "all") == 0);
    if (events && *events && strcmp(events, "all") != 0 && strcmp(events, "folded") != 0)
        lt_warn("ignoring LEAKTRACE_EVENTS", events, "(all or folded)");
    c->fold_window = env_int("LEAKTRACE_FOLD_WINDOW", 16384, 64, 1 << 20);
    c->reachability = env_int("LEAKTRACE_REACHABILITY", 1, 0, 1);
    c->freeres = env_int("LEAKTRACE_FREERES", 1, 0, 1);
}

static void read_identity(void) {
    lt_process.pid = getpid();
    ssize_t n = readlink("/proc/self/exe", lt_process.program_path, sizeof lt_process.program_path - 1);
    lt_process.program_path[n > 0 ? n : 0] = 0;
    const char *slash = strrchr(lt_process.program_path, '/');
    const char *name = slash ? slash + 1 : lt_process.program_path;
    size_t len = strnlen(name, sizeof lt_process.program_name - 1);
    memcpy(lt_process.program_name, name, len);
    lt_process.program_name[len] = 0;
    if (!lt_process.program_name[0]) strcpy(lt_process.program_name, "program");
    lt_clock_init();
}

/* ---- start ---- */

/* Runs on the writer thread every tick (io/writer.c). The module map is checked every tick (one
 * dl_iterate_phdr callback when nothing changed): a library dlopen'ed just before a mark must
 * be in a snapshot at or before it, or a report that stops at the mark could not name its
 * frames. */
static void writer_tick(void) {
    lt_modules_snapshot_unless_busy();
    lt_marks_write_pending();
}

/* Creates the trace file (its header names the parent's trace in a forked child) and starts
 * recording. */
static void start_tracing(const char *parent_trace, uint64_t parent_offset) {
    lt_buffers_init();
    static uint8_t header[16 + 16384];
    struct lt_header_info info = {
        .program_path = lt_process.program_path,
        .parent_trace = parent_trace,
        .parent_offset = parent_offset,
        .depth = lt_config.depth,
        .sample_ms = lt_config.sample_ms,
        .allocator_is_glibc = lt_allocator.is_glibc,
        .allocator_name = lt_allocator.name,
        .events_folded = lt_fold_enabled(),
        .fold_window = lt_fold_window(),
    };
    size_t header_len = lt_encode_header(header, sizeof header, &info);
    if (!lt_open_output(lt_config.output_pattern, lt_process.pid, lt_process.program_name, header, header_len)) {
        atomic_store(&lt_phase, PHASE_STOPPED);
        return;
    }
    lt_chunks_init(lt_config.zstd_level);
    atomic_store(&lt_tick_us, lt_now_us());
    atomic_store(&lt_phase, PHASE_TRACING);
    if (lt_config.verbose) lt_warn("tracing to", lt_file.path, NULL);
    if (!lt_allocator.is_glibc) {
        char note[700] = "allocator is not glibc's: allocation paths are unknown; malloc comes from ";
        strncat(note, lt_allocator.name, sizeof note - strlen(note) - 1);
        lt_emit_note(1, note);
    }
    lt_modules_snapshot(1);
    lt_writer_start(writer_tick);
}

static void on_fork_prepare(void);
static void on_fork_parent(void);
static void on_fork_child(void);

__attribute__((constructor(101))) static void leaktrace_init(void) {
    lt_self.in_hook = LT_IN_TRACER;
    lt_ensure_resolved();
    if (getauxval(AT_SECURE)) {
        /* setuid/setgid: never trace, never write files on the program's behalf. */
        atomic_store(&lt_phase, PHASE_STOPPED);
        lt_self.in_hook = 0;
        return;
    }
    read_config();
    read_identity();
    lt_find_self_text();
    lt_detect_allocator();
    lt_stacks_init();
    lt_rings_init();
    lt_reach_init();
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
    start_tracing(NULL, 0);
    lt_install_mark_signal();
    lt_take_fatal_signals();
    lt_self.in_hook = 0;
}

/* Runs at exit() after the program's own atexit handlers and destructors. */
__attribute__((destructor(101))) static void leaktrace_fini(void) {
    lt_finish();
}

/* Appends " name=value" (or "name=value" at the start) to a line of at most `cap` bytes. */
static void put_count(char *line, size_t cap, const char *name, uint64_t value) {
    char digits[24];
    size_t n = (size_t)(lt_put_decimal(digits, value) - digits);
    size_t at = strlen(line);
    size_t need = (at ? 1 : 0) + strlen(name) + 1 + n;
    if (at + need >= cap) return;
    if (at) line[at++] = ' ';
    for (const char *c = name; *c; c++) line[at++] = *c;
    line[at++] = '=';
    memcpy(line + at, digits, n);
    line[at + n] = 0;
}

struct named_count {
    const char *name;
    uint64_t value;
};

/* Appends " name=value" for each count. */
static void put_counts(char *line, size_t cap, const struct named_count *counts, size_t n) {
    for (size_t i = 0; i < n; i++) put_count(line, cap, counts[i].name, counts[i].value);
}

/* The test suite runs programs with LEAKTRACE_UNWIND=verify and reads this note: every
 * capture (cache hit or walk) was compared with libunwind's step-by-step walk; mismatches must be 0. */
static void report_unwind_verification(const struct lt_capture_summary *s) {
    char note[256] = "unwind-verify";
    const struct named_count counts[] = {
        {"checked", s->verified}, {"hits", s->hits}, {"walks", s->walks},
        {"fallbacks", s->fallbacks}, {"backtraces", s->backtraces}, {"mismatches", s->mismatches},
    };
    put_counts(note, sizeof note, counts, sizeof counts / sizeof *counts);
    lt_emit_note(0, note);
    if (s->mismatches) lt_warn("stack capture disagreed with libunwind", NULL, note);
}

/* LEAKTRACE_VERBOSE=1: how the stacks were captured, so that a program that traces slowly
 * shows why (many walks: call paths that do not repeat; many backtraces: frames the walker
 * cannot step, which libunwind walks much more slowly). */
static void report_capture(const struct lt_capture_summary *s) {
    char line[320] = "";
    const struct named_count counts[] = {
        {"hits", s->hits}, {"walks", s->walks}, {"not-cached", s->fills_skipped},
        {"fallbacks", s->fallbacks}, {"backtraces", s->backtraces},
        {"code-addresses", s->rules_learned}, {"unsupported", s->rules_unsupported},
    };
    put_counts(line, sizeof line, counts, sizeof counts / sizeof *counts);
    lt_warn("capture:", line, NULL);
}

/* How long a fatal signal's handler waits for the file lock (the writer may be compressing
 * and writing up to eight buffers) before it gives up on finishing the trace. */
#define SIGNAL_FLUSH_WAIT_MS 2000

/* Writes the final module map, the pending marks, the unwind counts and END. From a fatal
 * signal's handler (`from_signal`) nothing waits on what the interrupted code may hold: the
 * module map is skipped if a snapshot or the program's own walk of the loader's list is under
 * way, the capture counts (behind a spin lock of the stack caches) if the signal interrupted
 * the tracer, and the file lock is waited for a bounded time. Returns 0 if END was not
 * written. */
static int finish(int from_signal, int interrupted_tracer) {
    if (atomic_load(&lt_phase) != PHASE_TRACING) return 0;
    /* A vfork child that leaves with _exit after a failed exec shares our memory and our
     * descriptor: finishing here would write END into the parent's trace and stop it. */
    if (lt_in_foreign_child()) return 0;
    int was = lt_self.in_hook;
    lt_self.in_hook = LT_IN_TRACER;
    if (!from_signal) lt_modules_snapshot(0);
    else if (!lt_self.loader_locked) lt_modules_snapshot_unless_busy();
    lt_marks_write_pending(); /* asked for by signal after the writer's last tick */
    if (!interrupted_tracer) lt_reach_at_exit(from_signal);
    struct lt_capture_summary capture = {0};
    int counted = !interrupted_tracer;
    if (counted) lt_capture_summary(&capture);
    if (counted && lt_config.unwind == LT_UNWIND_VERIFY) report_unwind_verification(&capture);
    lt_writer_stop();
    int written = 1;
    if (from_signal) written = lt_flush_all_within(1, SIGNAL_FLUSH_WAIT_MS);
    else lt_flush_all(1);
    if (lt_config.verbose) {
        if (counted) report_capture(&capture);
        lt_writer_report();
        lt_warn(written ? "trace written to" : "trace cut short (the file stayed locked):", lt_file.path, NULL);
    }
    lt_self.in_hook = was;
    return written;
}

void lt_finish(void) { finish(0, 0); }

int lt_finish_for_signal(int interrupted_tracer) { return finish(1, interrupted_tracer); }

/* ---- fork ---- */

static char fork_parent_trace[4096];
static uint64_t fork_parent_offset;
static int fork_held;

static void on_fork_prepare(void) {
    fork_held = 0;
    if (atomic_load(&lt_phase) != PHASE_TRACING || lt_self.in_hook) return;
    lt_self.in_hook = LT_IN_TRACER;
    lt_modules_snapshot(0);
    /* No thread may be inside libunwind or a module snapshot when the process forks (core/gate.h,
     * lt_unwind_enter). The tracer's own locks are not held yet: a thread on its way out may
     * need them. A count, not a flag: two threads may fork at once, and the first to finish
     * must not reopen the door for the second. */
    atomic_fetch_add(&lt_gate.fork_pending, 1);
    while (atomic_load(&lt_gate.unwinders) > 0) sched_yield();
    lt_rings_close();    /* no allocator event is taken until the fork is done */
    lt_flush_for_fork(); /* returns with both locks held */
    fork_held = 1;
    memcpy(fork_parent_trace, lt_file.path, sizeof fork_parent_trace);
    fork_parent_offset = lt_file.offset;
}

static void on_fork_parent(void) {
    if (!fork_held) return;
    fork_held = 0;
    atomic_fetch_sub(&lt_gate.fork_pending, 1);
    lt_rings_open();
    lt_fork_parent_release();
    lt_self.in_hook = 0;
}

static void on_fork_child(void) {
    if (!fork_held) return;
    fork_held = 0;
    atomic_store(&lt_gate.unwinders, 0);
    atomic_store(&lt_gate.fork_pending, 0);
    lt_buffers_after_fork();
    lt_file_after_fork();
    lt_base_after_fork();
    lt_writer_after_fork();
    atomic_store(&lt_phase, PHASE_OFF);
    lt_modules_after_fork();
    lt_process.pid = getpid();
    lt_rings_after_fork();
    lt_stacks_reset();
    start_tracing(fork_parent_trace, fork_parent_offset);
    lt_self.in_hook = 0;
}
