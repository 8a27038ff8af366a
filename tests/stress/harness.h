/* Stress-test harness: timed worker threads, exclusion checking and TAP. */
#ifndef SYNC_STRESS_HARNESS_H
#define SYNC_STRESS_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define STRESS_MAX_THREADS 16

/* How a lock under test is taken; node is per-thread scratch (MCS node). */
struct lock_ops {
	const char *name;
	void (*lock)(void *lock, void *node);
	bool (*trylock)(void *lock, void *node); /* NULL if not tested */
	void (*unlock)(void *lock, void *node);
};

/* Shared state of one exclusion run. `plain_counter` is deliberately not
 * atomic: if exclusion ever fails, ThreadSanitizer reports the race. */
struct exclusion_run {
	const struct lock_ops *ops;
	void *lock;
	bool use_trylock;
	atomic_int holders;
	atomic_int max_holders;
	uint64_t plain_counter;
	uint64_t per_thread[STRESS_MAX_THREADS];
};

/* Milliseconds each stress case runs (STRESS_MS, default 400). */
unsigned stress_ms(void);

/* Runs fn(arg, index) on n threads until stress_ms() has elapsed; the
 * workers poll stress_running(). */
void stress_run_threads(int n, void (*fn)(void *arg, int index), void *arg);
bool stress_running(void);

/* Runs fn(arg, index) on n threads and waits until every one has returned
 * (fixed-count work); stress_running() stays true meanwhile. */
void stress_run_threads_to_end(int n, void (*fn)(void *arg, int index),
			       void *arg);

/* Raises *max to value if value is larger. Relaxed: a statistic that must
 * not add ordering ThreadSanitizer would credit to the primitive under test. */
void stress_note_max(atomic_int *max, int value);

/* CLOCK_MONOTONIC now, in nanoseconds. */
uint64_t stress_now_ns(void);

/* Sleeps us microseconds (gives the CPU away inside a critical section). */
void stress_sleep_us(unsigned us);

/* The next number of the xorshift64* stream in *state (nonzero): each
 * thread keeps its own state, so runs are reproducible enough and the
 * streams add no synchronization. */
uint64_t stress_random(uint64_t *state);

/* Locks ops->lock in n threads for stress_ms() and checks: never two holders,
 * the plain counter equals the sum of acquisitions, every thread got in. */
void stress_exclusion(const struct lock_ops *ops, void *lock, int threads,
		      bool use_trylock);

/* TAP: print the plan first (this also arms a watchdog alarm, so that a
 * hang fails the test), then one line per check. */
void tap_plan(int n);
void tap_check(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int tap_exit_status(void);

/* Runs this program again with SYNC_EPOCH_NO_MEMBARRIER=1 (the epoch mode
 * is fixed at its first use in a process) and relays the `checks` checks
 * of that run as this one's, plus one for how it ended. */
void stress_rerun_in_fence_mode(char **argv, int checks, const char *name);

/* Pins the calling thread to the n-th (0, 1, ...) of the CPUs the process
 * may use; false if there are not that many. stress_unpin lets it run on
 * all of them again. */
bool stress_pin_cpu(int n);
void stress_unpin(void);

/* Installs fn as the handler of the library's TEST_HOOK points (see
 * src/test_hook.h); NULL removes it. fn gets the point's name, e.g.
 * "mutex_unlock:released", and may sleep to widen a race window. */
void test_hook_set(void (*fn)(const char *point));

/* Counts a primitive's spin and yield points, TEST_HOOK("<prefix>:start")
 * and TEST_HOOK("<prefix>:yield"), reached by the threads that said
 * stress_spins_counting(true). stress_spins_count resets the counts and
 * installs the hook; stress_spins_stop removes it. */
void stress_spins_count(const char *prefix);
void stress_spins_counting(bool on);
void stress_spins_stop(void);
int stress_spins_started(void);
int stress_spins_yields(void);

#endif /* SYNC_STRESS_HARNESS_H */
