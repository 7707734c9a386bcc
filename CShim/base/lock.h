/* The event lock: taken by every hook, held for the few dozen instructions that encode a
 * record. A futex lock costs a third of pthread_mutex's instructions when uncontended and spins
 * briefly before sleeping, since the holder is never long. States: 0 free, 1 held, 2 held with
 * sleepers (Drepper, "Futexes Are Tricky", mutex #3). */
#ifndef LEAKTRACE_LOCK_H
#define LEAKTRACE_LOCK_H

#include <limits.h>
#include <stdint.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct lt_lock {
    _Atomic int state;
};

/* Locks this thread holds, is taking or is letting go of (counted before the attempt and after
 * the release), so that a signal handler knows whether the code it interrupted may be inside
 * a critical section, including the instructions around the atomic operation itself. */
extern __thread int lt_locks_taken __attribute__((tls_model("initial-exec")));

/* Fatal signals that arrived while this thread held (or was taking) a tracer lock
 * (core/fatal.c), one bit per signal (bit n-1 for signal n): blocked and pending, and released
 * by lt_deliver_deferred_signal once the thread holds none of the tracer's locks. */
extern __thread uint64_t lt_deferred_signals __attribute__((tls_model("initial-exec")));
__attribute__((visibility("hidden"))) void lt_deliver_deferred_signal(void);

static inline long lt_futex(_Atomic int *word, int op, int value, const struct timespec *timeout) {
    return syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, value, timeout, NULL, 0);
}

/* One attempt, for a caller already counted in lt_locks_taken (lt_lock_slow's spinning). */
static inline int lt_lock_try_counted(struct lt_lock *l) {
    int expected = 0;
    return atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_weak_explicit(&l->state, &expected, 1, memory_order_acquire, memory_order_relaxed);
}

static inline int lt_lock_try(struct lt_lock *l) {
    lt_locks_taken++;
    if (lt_lock_try_counted(l)) return 1;
    lt_locks_taken--;
    return 0;
}

static inline void lt_lock_slow(struct lt_lock *l) {
    /* The holder needs well under a microsecond: spin first. If it was preempted (more
     * runnable threads than cores), yielding lets it run; only then sleep. */
    for (int spin = 0; spin < 100; spin++) {
        if (lt_lock_try_counted(l)) return;
        __builtin_ia32_pause();
    }
    for (int round = 0; round < 8; round++) {
        syscall(SYS_sched_yield);
        if (lt_lock_try_counted(l)) return;
    }
    int c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    while (c != 0) {
        lt_futex(&l->state, FUTEX_WAIT, 2, NULL);
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    }
}

static inline void lt_lock(struct lt_lock *l) {
    int expected = 0;
    lt_locks_taken++;
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(&l->state, &expected, 1, memory_order_acquire,
                                                                memory_order_relaxed), 1))
        return;
    lt_lock_slow(l);
}

static inline void lt_unlock(struct lt_lock *l) {
    if (__builtin_expect(atomic_fetch_sub_explicit(&l->state, 1, memory_order_release) != 1, 0)) {
        atomic_store_explicit(&l->state, 0, memory_order_release);
        lt_futex(&l->state, FUTEX_WAKE, 1, NULL);
    }
    lt_locks_taken--;
    if (__builtin_expect(lt_deferred_signals != 0, 0)) lt_deliver_deferred_signal();
}

/* A sequence number to sleep on: the waiter reads it while holding the lock, releases the
 * lock, and sleeps until it changes (or the timeout passes). */
static inline void lt_wait_change(struct lt_lock *l, _Atomic int *seq, int seen, const struct timespec *timeout) {
    lt_unlock(l);
    lt_futex(seq, FUTEX_WAIT, seen, timeout);
    lt_lock(l);
}

static inline void lt_signal_change(_Atomic int *seq) {
    atomic_fetch_add_explicit(seq, 1, memory_order_release);
    lt_futex(seq, FUTEX_WAKE, INT_MAX, NULL);
}

#endif
