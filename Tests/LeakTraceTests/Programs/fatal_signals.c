/* Leaks 10 blocks of 100 bytes from leak_ten, says so on stdout, then ends as argv[1] says:
 *   term int hup quit alrm usr1 usr2 xcpu xfsz vtalrm prof abrt trap sys  raise/kill the signal
 *   pipe        write to a pipe nobody reads (SIGPIPE)
 *   segv        store through a null pointer in parse_header (SIGSEGV)
 *   bus         touch a file mapping past the file's end (SIGBUS)
 *   ill         __builtin_trap (SIGILL)
 *   fpe         integer division by zero (SIGFPE)
 *   assert      a failed assert (abort() called inside libc)
 *   abort       abort()
 *   thread-segv SIGSEGV on a second thread while main waits
 *   own-term    installs its own SIGTERM handler after start, raises SIGTERM: exits 3
 *   block-term  blocks SIGTERM, raises it, checks it is pending, exits 0
 *   ignore-pipe ignores SIGPIPE, writes to a pipe nobody reads: EPIPE, exits 0
 *   query       prints what sigaction and signal report for SIGTERM and SIGINT
 *   dfl-again   installs a SIGTERM handler, sets SIG_DFL again, raises SIGTERM
 *   mmap-term   another thread sends SIGTERM while main loops over long mmap and munmap calls
 *   abort-handled  a SIGABRT handler that returns, then abort() (which ends the process anyway)
 *   overflow    unbounded recursion on a stack with an alternate signal stack set up (SIGSEGV)
 *   busy-term   two threads allocate and free without pause while main raises SIGTERM
 *   bad-free    free() of a pointer malloc never returned: glibc aborts inside free, that is
 *               inside the tracer's free hook (SIGABRT)
 * Output is written with write(2), so nothing waits in a stdio buffer. */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *kept[10];

__attribute__((noinline)) static void leak_ten(void) {
    for (int i = 0; i < 10; i++) kept[i] = malloc(100); /* MARK:leak */
}

static void say(const char *s) {
    ssize_t r = write(1, s, strlen(s));
    (void)r;
}

__attribute__((noinline)) static void parse_header(volatile int *p) {
    *p = 42; /* MARK:null-store */
}

static volatile int divisor;

static void on_term(int sig) {
    (void)sig;
    say("handled SIGTERM\n");
    _exit(3);
}

static void *crash_thread(void *arg) {
    (void)arg;
    parse_header(NULL);
    return NULL;
}

static volatile pid_t main_tid;
static volatile int mmap_rounds;

/* Sends SIGTERM to the main thread after its first round of mmap and munmap: main then spends
 * nearly all its time inside those calls (populating and unmapping 64 MiB). */
static void *term_during_mmap(void *arg) {
    (void)arg;
    while (mmap_rounds < 1) sched_yield();
    syscall(SYS_tgkill, getpid(), main_tid, SIGTERM);
    return NULL;
}

static void on_abrt(int sig) {
    (void)sig;
    say("handled SIGABRT\n");
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"
__attribute__((noinline)) static int recurse(volatile char *previous) {
    volatile char frame[512];
    frame[0] = previous ? previous[0] + 1 : 0;
    return recurse(frame) + frame[1];
}

static volatile int busy_started;

static void *allocate_forever(void *arg) {
    (void)arg;
    __atomic_add_fetch(&busy_started, 1, __ATOMIC_SEQ_CST);
    for (size_t i = 0;; i++) free(malloc(32 + i % 64));
    return NULL;
}

static const struct { const char *name; int sig; } raised[] = {
    {"term", SIGTERM}, {"hup", SIGHUP}, {"quit", SIGQUIT}, {"alrm", SIGALRM}, {"usr1", SIGUSR1},
    {"usr2", SIGUSR2}, {"xcpu", SIGXCPU}, {"xfsz", SIGXFSZ}, {"vtalrm", SIGVTALRM}, {"prof", SIGPROF},
    {"abrt", SIGABRT}, {"trap", SIGTRAP}, {"sys", SIGSYS},
};

static void print_disposition(const char *name, int sig) {
    struct sigaction sa;
    sigaction(sig, NULL, &sa);
    char line[160];
    snprintf(line, sizeof line, "%s: handler=%s flags=%#x\n", name,
             sa.sa_handler == SIG_DFL ? "default" : sa.sa_handler == SIG_IGN ? "ignore" : "other",
             (unsigned)sa.sa_flags);
    say(line);
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "term";
    leak_ten();
    say("leaked\n");
    for (size_t i = 0; i < sizeof raised / sizeof *raised; i++)
        if (strcmp(how, raised[i].name) == 0) raise(raised[i].sig);
    if (strcmp(how, "int") == 0) kill(getpid(), SIGINT);
    if (strcmp(how, "pipe") == 0 || strcmp(how, "ignore-pipe") == 0) {
        if (how[0] == 'i') signal(SIGPIPE, SIG_IGN);
        int fds[2];
        if (pipe(fds) != 0) return 1;
        close(fds[0]);
        ssize_t r = write(fds[1], "x", 1);
        say(r < 0 && errno == EPIPE ? "EPIPE\n" : "wrote\n");
    }
    if (strcmp(how, "segv") == 0) parse_header(NULL);
    if (strcmp(how, "bus") == 0) {
        char name[] = "/tmp/fatal-signals-XXXXXX";
        int fd = mkstemp(name);
        unlink(name);
        volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p[0] = 1;
    }
    if (strcmp(how, "ill") == 0) __builtin_trap();
    if (strcmp(how, "fpe") == 0) {
        volatile int dividend = 100, quotient = dividend / divisor;
        (void)quotient;
    }
    if (strcmp(how, "assert") == 0) assert(argc == 42); /* MARK:assert */
    if (strcmp(how, "abort") == 0) abort();
    if (strcmp(how, "thread-segv") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, crash_thread, NULL);
        pthread_join(t, NULL);
    }
    if (strcmp(how, "own-term") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        raise(SIGTERM);
    }
    if (strcmp(how, "dfl-again") == 0) {
        signal(SIGTERM, on_term);
        signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
    }
    if (strcmp(how, "block-term") == 0) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        raise(SIGTERM);
        sigpending(&pending);
        say(sigismember(&pending, SIGTERM) ? "SIGTERM pending\n" : "SIGTERM not pending\n");
    }
    if (strcmp(how, "query") == 0) {
        print_disposition("SIGTERM", SIGTERM);
        print_disposition("SIGINT", SIGINT);
        print_disposition("SIGPIPE", SIGPIPE);
        say(signal(SIGTERM, on_term) == SIG_DFL ? "signal: was default\n" : "signal: was other\n");
        say(signal(SIGTERM, SIG_DFL) == on_term ? "signal: was on_term\n" : "signal: was other\n");
        print_disposition("SIGTERM", SIGTERM);
    }
    if (strcmp(how, "mmap-term") == 0) {
        main_tid = (pid_t)syscall(SYS_gettid);
        pthread_t t;
        pthread_create(&t, NULL, term_during_mmap, NULL);
        for (;;) {
            void *p = mmap(NULL, 64u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
            munmap(p, 64u << 20);
            mmap_rounds++;
        }
    }
    if (strcmp(how, "bad-free") == 0) {
        char *volatile inside = (char *)kept[0] + 16;
        free(inside);
    }
    if (strcmp(how, "abort-handled") == 0) {
        signal(SIGABRT, on_abrt);
        abort();
    }
    if (strcmp(how, "overflow") == 0) {
        stack_t alt = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16};
        sigaltstack(&alt, NULL);
        recurse(NULL);
    }
    if (strcmp(how, "busy-term") == 0) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, allocate_forever, NULL);
        while (__atomic_load_n(&busy_started, __ATOMIC_SEQ_CST) < 2) sched_yield();
        raise(SIGTERM);
    }
    say("still here\n");
    return 0;
}
