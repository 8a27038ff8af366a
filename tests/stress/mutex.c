/* Stress test for sync_mutex under ThreadSanitizer: exclusion, exact counts,
 * every thread progresses, timed waits give up cleanly, state ends clean. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sync/mutex.h>

#include "backoff.h" /* spin_learn, to read the mutex's learned spin */
#include "harness.h"

static void must(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "%s: unexpected %d\n", what, r);
		abort();
	}
}

static void mutex_lock(void *l, void *node)
{
	must(sync_mutex_lock(l), "sync_mutex_lock");
}

static bool mutex_trylock(void *l, void *node)
{
	int r = sync_mutex_trylock(l);
	if (r && r != EBUSY)
		must(r, "sync_mutex_trylock");
	return r == 0;
}

static void mutex_unlock(void *l, void *node)
{
	must(sync_mutex_unlock(l), "sync_mutex_unlock");
}

static const struct lock_ops mutex_ops = { "mutex", mutex_lock, mutex_trylock,
					   mutex_unlock };
static const struct lock_ops errorcheck_ops = { "mutex(errorcheck)", mutex_lock,
						mutex_trylock, mutex_unlock };

struct timed_run {
	sync_mutex_t m;
	uint64_t plain_counter;
	atomic_ullong acquired, timed_out, bad;
};

/* Short deadlines while others hold the lock long: exercises the give-up
 * paths of sleepers and of the hand-off heir. */
static void timed_worker(void *arg, int index)
{
	struct timed_run *run = arg;
	while (stress_running()) {
		struct timespec deadline = sync_deadline(index & 1 ? 20000 : 200000);
		int r = sync_mutex_timedlock(&run->m, &deadline);
		if (r == ETIMEDOUT) {
			atomic_fetch_add(&run->timed_out, 1);
			continue;
		}
		if (r) {
			atomic_fetch_add(&run->bad, 1);
			continue;
		}
		for (int i = 0; i < 200; i++)
			run->plain_counter++;
		atomic_fetch_add(&run->acquired, 1);
		must(sync_mutex_unlock(&run->m), "sync_mutex_unlock");
	}
}

static void check_timed(int threads)
{
	struct timed_run run = { .m = SYNC_MUTEX_INITIALIZER };
	stress_run_threads(threads, timed_worker, &run);
	unsigned long long got = atomic_load(&run.acquired);
	tap_check(run.plain_counter == got * 200 && atomic_load(&run.bad) == 0,
		  "mutex timedlock %d threads: %llu acquired, %llu timed out, "
		  "counts exact, no stray error",
		  threads, got, (unsigned long long)atomic_load(&run.timed_out));
	tap_check(sync_mutex_destroy(&run.m) == 0,
		  "mutex timedlock %d threads: ends unlocked, no hand-off left", threads);
}

static void check_exclusion(const struct lock_ops *ops, int flags, int threads,
			    bool use_trylock)
{
	sync_mutex_t m;
	must(sync_mutex_init(&m, flags), "sync_mutex_init");
	stress_exclusion(ops, &m, threads, use_trylock);
	tap_check(sync_mutex_destroy(&m) == 0, "%s %d threads: ends unlocked",
		  ops->name, threads);
}

/* ---- Regression: nothing touched after the release (issue 10, 2) --------
 * POSIX's reference-counted object: the next owner locks, drops the last
 * reference, unlocks, destroys and frees. The unlock that let it in is
 * held up right after its release (TEST_HOOK) until the object is freed;
 * any later access to the mutex is a heap-use-after-free that TSan (or
 * ASan, in the sanitizer build) reports. The releasing unlock takes the
 * slow path: its thread took the lock out of a sleep, so the waiters bit
 * is set although nobody sleeps any more. */
struct refcounted {
	sync_mutex_t m;
	int refs; /* under m */
};

static _Thread_local bool hold_up_release;
static atomic_bool object_freed, sleeper_holds;

static void hold_up_until_freed(const char *point)
{
	if (!hold_up_release || strcmp(point, "mutex_unlock:released") != 0)
		return;
	hold_up_release = false;
	for (int i = 0; i < 2000 && !atomic_load(&object_freed); i++)
		stress_sleep_us(100);
}

static void *sleeper_then_slow_unlock(void *arg)
{
	struct refcounted *obj = arg;
	must(sync_mutex_lock(&obj->m), "sync_mutex_lock"); /* sleeps first */
	obj->refs--;
	atomic_store(&sleeper_holds, true);
	hold_up_release = true;
	must(sync_mutex_unlock(&obj->m), "sync_mutex_unlock");
	return NULL;
}

static void *last_owner_frees(void *arg)
{
	struct refcounted *obj = arg;
	while (sync_mutex_trylock(&obj->m) == EBUSY)
		stress_sleep_us(50);
	bool last = --obj->refs == 0;
	must(sync_mutex_unlock(&obj->m), "sync_mutex_unlock");
	if (last) {
		must(sync_mutex_destroy(&obj->m), "sync_mutex_destroy");
		free(obj);
		atomic_store(&object_freed, true);
	}
	return NULL;
}

static void check_no_access_after_release(void)
{
	struct refcounted *obj = malloc(sizeof *obj);
	must(obj == NULL, "malloc");
	*obj = (struct refcounted){ .m = SYNC_MUTEX_INITIALIZER, .refs = 2 };
	atomic_store(&object_freed, false);
	atomic_store(&sleeper_holds, false);
	test_hook_set(hold_up_until_freed);
	must(sync_mutex_lock(&obj->m), "sync_mutex_lock");
	pthread_t sleeper, last;
	must(pthread_create(&sleeper, NULL, sleeper_then_slow_unlock, obj), "pthread_create");
	/* white box: bit 1 of the state word, set by a thread about to sleep */
	for (int i = 0; i < 20000 && !(atomic_load(&obj->m.state) & 2); i++)
		stress_sleep_us(100);
	must(sync_mutex_unlock(&obj->m), "sync_mutex_unlock");
	while (!atomic_load(&sleeper_holds))
		stress_sleep_us(100);
	must(pthread_create(&last, NULL, last_owner_frees, obj), "pthread_create");
	pthread_join(sleeper, NULL);
	pthread_join(last, NULL);
	test_hook_set(NULL);
	tap_check(atomic_load(&object_freed),
		  "mutex: an unlock held up after its release does not touch the "
		  "mutex the next owner freed");
}

/* ---- the spin length learned per mutex -------------------------------------- */

/* spin_learn's schedule alone: spent spins halve the budget down to 0, then
 * the next wait probes, then the 2nd, 4th, 8th ... after; a probe that pays turns spinning on
 * (at the probe's length), a spin that pays doubles it. */
static void check_learn_schedule(void)
{
	_Atomic uint32_t st = 0;
	uint32_t largest = 4096, budgets[32];
	int n = 0;
	for (; n < 20; n++) {
		budgets[n] = spin_learn_budget(&st, largest);
		if (budgets[n])
			spin_learn_note(&st, false); /* every spin is spent */
	}
	/* 4096 .. 128 (six halvings), probe, skip 1, probe, skip 3, probe, skip 7 */
	static const uint32_t want[20] = { 4096, 2048, 1024, 512, 256, 128, 512, 0, 512, 0,
					   0, 0, 512, 0, 0, 0, 0, 0, 0, 0 };
	bool ok = memcmp(budgets, want, sizeof want) == 0;
	while (!spin_learn_budget(&st, largest)) /* the next probe ... */
		n++;
	spin_learn_note(&st, true); /* ... pays */
	ok = ok && spin_learn_budget(&st, largest) == largest >> SPIN_LEARN_PROBE_SHIFT;
	spin_learn_note(&st, true);
	ok = ok && spin_learn_budget(&st, largest) == largest >> (SPIN_LEARN_PROBE_SHIFT - 1);
	for (int i = 0; i < 8; i++)
		spin_learn_note(&st, true);
	ok = ok && spin_learn_budget(&st, largest) == largest;
	tap_check(ok && n == 20, "spin_learn: spent spins turn spinning off, probes come at "
		  "waits 7, 9, 13, 21, paying spins turn it back on (probe at %d)", n + 1);
}

/* How many times the thread that counts claimed the spinner's role. */
static atomic_int claims;
static _Thread_local bool counting_claims;
/* The mutex's holder lets a probing spinner in (check_probe_pays). */
static atomic_bool probing, released;

static void count_claims(const char *point)
{
	if (!counting_claims || strcmp(point, "mutex_spin:claimed"))
		return;
	atomic_fetch_add(&claims, 1);
	if (!atomic_load(&probing))
		return;
	/* hold the spinner until the holder has unlocked: its spin then
	 * takes the lock at its first look */
	for (int i = 0; i < 10000 && !atomic_load(&released); i++)
		stress_sleep_us(100);
}

struct timed_waits {
	sync_mutex_t *m;
	int waits;
	int timeouts;
};

static void *timedlock_waits(void *arg)
{
	struct timed_waits *w = arg;
	counting_claims = true;
	for (int i = 0; i < w->waits; i++) {
		struct timespec deadline = sync_deadline(20000000u); /* 20 ms */
		int r = sync_mutex_timedlock(w->m, &deadline);
		if (r == ETIMEDOUT)
			w->timeouts++;
		else if (r == 0)
			must(sync_mutex_unlock(w->m), "sync_mutex_unlock");
	}
	counting_claims = false;
	return NULL;
}

static uint32_t learned(sync_mutex_t *m)
{
	/* relaxed: the waiter that wrote it has been joined */
	return atomic_load_explicit(&m->spin, memory_order_relaxed);
}

/* Behind a holder that never unlocks, every spin is spent: after six the
 * waiters stop spinning but for probes (12 timed-out waits: 8 spins); then
 * a probe that gets the lock turns spinning on again. */
static void check_spin_shrinks_and_returns(int flags)
{
	sync_mutex_t m;
	struct timed_waits w = { &m, 12, 0 };
	pthread_t t;
	must(sync_mutex_init(&m, flags), "sync_mutex_init");
	must(sync_mutex_lock(&m), "sync_mutex_lock");
	atomic_store(&claims, 0);
	atomic_store(&probing, false);
	test_hook_set(count_claims);
	if (pthread_create(&t, NULL, timedlock_waits, &w))
		abort();
	pthread_join(t, NULL);
	int spun = atomic_load(&claims);
	uint32_t st = learned(&m);
	tap_check(w.timeouts == 12 && spun <= 8 && SPIN_LEARN_DOWN(st) >= SPIN_LEARN_OFF,
		  "mutex%s: a spin that never gets the lock stops spinning (12 waits, %d spins, "
		  "state %#x)", flags ? " pshared" : "", spun, (unsigned)st);

	/* the next wait probes; the holder unlocks while the probe spins */
	atomic_store_explicit(&m.spin, spin_learn_pack(SPIN_LEARN_OFF, 8, 0),
			      memory_order_relaxed);
	atomic_store(&claims, 0);
	atomic_store(&probing, true);
	atomic_store(&released, false);
	w.waits = 1;
	w.timeouts = 0;
	if (pthread_create(&t, NULL, timedlock_waits, &w))
		abort();
	while (!atomic_load(&claims))
		stress_sleep_us(100);
	must(sync_mutex_unlock(&m), "sync_mutex_unlock");
	atomic_store(&released, true);
	pthread_join(t, NULL);
	test_hook_set(NULL);
	st = learned(&m);
	tap_check(w.timeouts == 0 && SPIN_LEARN_DOWN(st) < SPIN_LEARN_OFF &&
		  spin_learn_level(4096, SPIN_LEARN_DOWN(st)) > 0,
		  "mutex%s: a probe that gets the lock turns spinning on again (state %#x)",
		  flags ? " pshared" : "", (unsigned)st);
}

/* ---- a robust timed locker that gives up after it was woken ---------------- */

/* The waiter this thread is: held up after its wake-up until its deadline
 * has passed. */
static _Thread_local bool late_after_wake;

static void hold_up_woken_waiter(const char *point)
{
	if (late_after_wake && !strcmp(point, "robust_lock:woken"))
		stress_sleep_us(60000); /* its 30 ms deadline passes meanwhile */
}

struct robust_waiter {
	sync_mutex_t *m;
	bool timed;
	int result;
	atomic_bool done;
};

static void *robust_waiter_main(void *arg)
{
	struct robust_waiter *w = arg;
	struct timespec deadline = sync_deadline(30 * 1000000ull);
	late_after_wake = w->timed;
	w->result = w->timed ? sync_mutex_timedlock(w->m, &deadline) : sync_mutex_lock(w->m);
	if (w->result == 0)
		must(sync_mutex_unlock(w->m), "sync_mutex_unlock");
	atomic_store(&w->done, true);
	return NULL;
}

static bool wait_done(struct robust_waiter *w, unsigned ms)
{
	for (unsigned i = 0; i < ms && !atomic_load(&w->done); i++)
		stress_sleep_us(1000);
	return atomic_load(&w->done);
}

/* A timed locker asleep first, a plain one behind it. The unlock wakes the
 * timed one, the unlocker takes the lock again at once (no FUTEX_WAITERS:
 * it did not sleep), and the woken one, held up past its deadline, gives
 * up. It must leave FUTEX_WAITERS on the word for the wake-up it took, or
 * the next unlock wakes nobody and the plain locker sleeps on a free
 * mutex for ever (tests/models/mutex_robust.pml, -DBARGER). */
static void check_robust_timeout_after_wake_passes_it_on(void)
{
	sync_mutex_t m;
	must(sync_mutex_init(&m, SYNC_MUTEX_ROBUST), "sync_mutex_init");
	struct robust_waiter timed = { .m = &m, .timed = true };
	struct robust_waiter plain = { .m = &m, .timed = false };
	pthread_t t1, t2;
	test_hook_set(hold_up_woken_waiter);
	must(sync_mutex_lock(&m), "sync_mutex_lock");
	must(pthread_create(&t1, NULL, robust_waiter_main, &timed), "pthread_create");
	/* white box: FUTEX_WAITERS, set by the timed locker about to sleep */
	for (int i = 0; i < 20000 && !(atomic_load(&m.state) & FUTEX_WAITERS); i++)
		stress_sleep_us(100);
	stress_sleep_us(10000); /* asleep, first in the futex's queue */
	must(pthread_create(&t2, NULL, robust_waiter_main, &plain), "pthread_create");
	stress_sleep_us(20000); /* asleep behind it */
	must(sync_mutex_unlock(&m), "sync_mutex_unlock"); /* wakes the timed one */
	must(sync_mutex_lock(&m), "sync_mutex_lock");     /* the barger */
	pthread_join(t1, NULL);
	must(sync_mutex_unlock(&m), "sync_mutex_unlock");
	bool woken = wait_done(&plain, 3000);
	test_hook_set(NULL);
	tap_check(timed.result == ETIMEDOUT && woken && plain.result == 0,
		  "robust mutex: a timed locker that gives up after a wake-up leaves "
		  "FUTEX_WAITERS, so the next unlock wakes the locker behind it "
		  "(timed %d, plain %s %d)", timed.result, woken ? "took it" : "still asleep",
		  plain.result);
	if (woken) {
		pthread_join(t2, NULL);
		must(sync_mutex_destroy(&m), "sync_mutex_destroy");
	} /* else the test fails; the sleeper stays behind until exit */
}

int main(void)
{
	tap_plan(4 * 5 + 2 * 2 + 1 + 1 + 5);
	check_learn_schedule();
	check_spin_shrinks_and_returns(0);
	check_spin_shrinks_and_returns(SYNC_PSHARED);
	check_no_access_after_release();
	check_robust_timeout_after_wake_passes_it_on();
	check_exclusion(&mutex_ops, 0, 2, false);
	check_exclusion(&mutex_ops, 0, 8, false);
	check_exclusion(&mutex_ops, 0, 4, true);
	check_exclusion(&errorcheck_ops, SYNC_MUTEX_ERRORCHECK, 4, true);
	check_exclusion(&mutex_ops, SYNC_PSHARED, 4, false);
	check_timed(4);
	check_timed(8);
	return tap_exit_status();
}
