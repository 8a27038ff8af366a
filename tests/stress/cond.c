/* Stress test for sync_cond under ThreadSanitizer: a bounded buffer that
 * delivers every item exactly once (signal, broadcast, signal after unlock,
 * timed waits mixed in), and barrier rounds driven by broadcast that never let a
 * thread through early. The bookkeeping atomics are relaxed, so every
 * happens-before edge ThreadSanitizer sees comes from the library. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sync/cond.h>
#include <sync/mutex.h>

#include "harness.h"

static void must(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "%s: unexpected %d\n", what, r);
		abort();
	}
}

static void count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long got(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* How a case wakes its waiters and how they wait. */
enum wake {
	WAKE_SIGNAL,          /* signal with the mutex held, untimed waits */
	WAKE_BROADCAST,       /* broadcast instead of every signal */
	WAKE_SIGNAL_UNLOCKED, /* signal after the mutex is released */
	WAKE_TIMED,           /* signal; most waits with short deadlines */
};

static const char *const wake_names[] = { "signal", "broadcast",
					  "signal after unlock", "wait+timedwait" };

/* What every case shares: the mutex, a check that the mutex is held by one
 * thread whenever a wait returns, and the count of timed-out waits kept in
 * a plain word written only with the mutex held (ThreadSanitizer reports a
 * race if ETIMEDOUT ever returned without the mutex). */
struct guarded {
	sync_mutex_t m;
	enum wake wake;
	uint64_t timeouts_plain; /* under m */
	atomic_int inside, max_inside;
	atomic_ullong timeouts, bad;
};

static void enter(struct guarded *g)
{
	int now = atomic_fetch_add_explicit(&g->inside, 1,
					    memory_order_relaxed) + 1;
	stress_note_max(&g->max_inside, now);
}

static void leave(struct guarded *g)
{
	atomic_fetch_sub_explicit(&g->inside, 1, memory_order_relaxed);
}

static void guarded_lock(struct guarded *g)
{
	must(sync_mutex_lock(&g->m), "sync_mutex_lock");
	enter(g);
}

static void guarded_unlock(struct guarded *g)
{
	leave(g);
	int r = sync_mutex_unlock(&g->m);
	if (r) /* EPERM from an ERRORCHECK mutex: a wait returned without it */
		count(&g->bad);
}

/* One wait; the caller loops on its predicate. Timed cases mix untimed
 * waits with deadlines from 10 us to 160 us, so some expire and some are
 * signalled. */
static void guarded_wait(struct guarded *g, sync_cond_t *c, unsigned salt)
{
	int r;
	leave(g);
	if (g->wake == WAKE_TIMED && salt % 4 != 0) {
		struct timespec deadline = sync_deadline(10000u << (salt % 5));
		r = sync_cond_timedwait(c, &g->m, &deadline);
	} else {
		r = sync_cond_wait(c, &g->m);
	}
	enter(g);
	if (r == ETIMEDOUT && g->wake == WAKE_TIMED) {
		g->timeouts_plain++;
		count(&g->timeouts);
	} else if (r) {
		count(&g->bad);
	}
}

static void wake_one(struct guarded *g, sync_cond_t *c)
{
	if (g->wake == WAKE_BROADCAST)
		must(sync_cond_broadcast(c), "sync_cond_broadcast");
	else
		must(sync_cond_signal(c), "sync_cond_signal");
}

/* Checks shared by every case: the mutex was held alone on every return
 * from a wait, the timed-out waits were counted exactly under the mutex, and
 * no call returned anything unexpected. */
static void check_guarded(struct guarded *g, const char *what)
{
	tap_check(atomic_load(&g->max_inside) == 1 && got(&g->bad) == 0 &&
			  g->timeouts_plain == got(&g->timeouts),
		  "%s: mutex held alone after every wait (max holders %d), "
		  "%llu timeouts counted under it, no stray error",
		  what, atomic_load(&g->max_inside), got(&g->timeouts));
}

/* ---- bounded buffer ------------------------------------------------------ */

#define CAPACITY 4
#define SENTINEL UINT64_MAX
#define SEQ_BITS 48
#define SEQ_MASK ((1ull << SEQ_BITS) - 1)

/* Producers 0..producers-1 put (producer << SEQ_BITS | seq), seq = 1, 2, ...
 * while the run lasts; the last to finish puts one sentinel per consumer.
 * Consumers check, under the mutex, that each producer's items come out in
 * order with no gap and no repeat, and stop at their first sentinel. */
struct buffer_run {
	struct guarded g;
	sync_cond_t not_full, not_empty;
	int producers, consumers;
	/* under g.m */
	uint64_t slots[CAPACITY];
	unsigned head, used;
	int producers_left;
	uint64_t last_seq[STRESS_MAX_THREADS];
	uint64_t order_errors;
	/* each written by its own thread, read after the join */
	uint64_t produced[STRESS_MAX_THREADS];
	uint64_t consumed[STRESS_MAX_THREADS];
	uint64_t seq_sum[STRESS_MAX_THREADS];
	uint64_t sentinels[STRESS_MAX_THREADS];
};

static void put(struct buffer_run *run, uint64_t item, unsigned salt)
{
	struct guarded *g = &run->g;
	guarded_lock(g);
	while (run->used == CAPACITY)
		guarded_wait(g, &run->not_full, salt++);
	run->slots[(run->head + run->used) % CAPACITY] = item;
	run->used++;
	if (g->wake == WAKE_SIGNAL_UNLOCKED) {
		guarded_unlock(g);
		wake_one(g, &run->not_empty);
	} else {
		wake_one(g, &run->not_empty);
		guarded_unlock(g);
	}
}

static uint64_t take(struct buffer_run *run, unsigned salt)
{
	struct guarded *g = &run->g;
	guarded_lock(g);
	while (run->used == 0)
		guarded_wait(g, &run->not_empty, salt++);
	uint64_t item = run->slots[run->head];
	run->head = (run->head + 1) % CAPACITY;
	run->used--;
	if (item != SENTINEL) {
		unsigned p = (unsigned)(item >> SEQ_BITS);
		uint64_t seq = item & SEQ_MASK;
		if (p >= (unsigned)run->producers || seq != run->last_seq[p] + 1)
			run->order_errors++;
		else
			run->last_seq[p] = seq;
	}
	if (g->wake == WAKE_SIGNAL_UNLOCKED) {
		guarded_unlock(g);
		wake_one(g, &run->not_full);
	} else {
		wake_one(g, &run->not_full);
		guarded_unlock(g);
	}
	return item;
}

static void producer(struct buffer_run *run, int p)
{
	uint64_t seq = 0;
	while (stress_running()) {
		seq++;
		put(run, (uint64_t)p << SEQ_BITS | seq, (unsigned)seq);
	}
	run->produced[p] = seq;

	guarded_lock(&run->g);
	bool last = --run->producers_left == 0;
	guarded_unlock(&run->g);
	for (int i = 0; last && i < run->consumers; i++)
		put(run, SENTINEL, (unsigned)i);
}

static void consumer(struct buffer_run *run, int index)
{
	for (unsigned n = 0;; n++) {
		uint64_t item = take(run, n + (unsigned)index);
		if (item == SENTINEL) {
			run->sentinels[index]++;
			return;
		}
		run->consumed[index]++;
		run->seq_sum[index] += item & SEQ_MASK;
	}
}

static void buffer_worker(void *arg, int index)
{
	struct buffer_run *run = arg;
	if (index < run->producers)
		producer(run, index);
	else
		consumer(run, index);
}

static void check_buffer(enum wake wake, int mutex_flags, int producers,
			 int consumers)
{
	static struct buffer_run run; /* large; one case at a time */
	run = (struct buffer_run){ .producers = producers, .consumers = consumers,
				   .producers_left = producers,
				   .g = { .wake = wake } };
	must(sync_mutex_init(&run.g.m, mutex_flags), "sync_mutex_init");
	must(sync_cond_init(&run.not_full, 0), "sync_cond_init");
	must(sync_cond_init(&run.not_empty, 0), "sync_cond_init");
	stress_run_threads(producers + consumers, buffer_worker, &run);

	char what[96];
	snprintf(what, sizeof what, "buffer %s%s %dx%d", wake_names[wake],
		 mutex_flags & SYNC_MUTEX_ERRORCHECK ? " (errorcheck mutex)" : "",
		 producers, consumers);
	uint64_t produced = 0, consumed = 0, expected_sum = 0, sum = 0;
	bool tails_ok = true;
	for (int p = 0; p < producers; p++) {
		produced += run.produced[p];
		expected_sum += run.produced[p] * (run.produced[p] + 1) / 2;
		tails_ok = tails_ok && run.last_seq[p] == run.produced[p];
	}
	int sentinels = 0;
	for (int i = producers; i < producers + consumers; i++) {
		consumed += run.consumed[i];
		sum += run.seq_sum[i];
		sentinels += (int)run.sentinels[i];
	}
	tap_check(run.order_errors == 0 && tails_ok && consumed == produced &&
			  sum == expected_sum && produced > 0,
		  "%s: every item delivered once, in order per producer "
		  "(%llu produced, %llu consumed, %llu out of order)",
		  what, (unsigned long long)produced,
		  (unsigned long long)consumed,
		  (unsigned long long)run.order_errors);
	tap_check(sentinels == consumers && run.used == 0,
		  "%s: each consumer stopped at one sentinel (%d), buffer ends "
		  "empty (%u left)", what, sentinels, run.used);
	check_guarded(&run.g, what);
	tap_check(sync_cond_destroy(&run.not_full) == 0 &&
			  sync_cond_destroy(&run.not_empty) == 0 &&
			  sync_mutex_destroy(&run.g.m) == 0,
		  "%s: ends with no waiter counted and the mutex free", what);
}

/* ---- barrier ------------------------------------------------------------- */

#define BARRIER_THREADS 6
#define ROUND_SLOTS 4

/* Each thread announces its round (round_of, arrivals) before it enters the
 * barrier; the last arriver of a round bumps the generation and broadcasts.
 * Having passed round r, a thread checks that every thread has reached
 * round r and none is past round r + 1. A round's arrivals slot is reset by
 * the last arriver two rounds earlier, when no thread can still read it. */
struct barrier_run {
	struct guarded g;
	sync_cond_t cond;
	int threads;
	/* under g.m */
	unsigned generation;
	int arrived;
	bool stop;
	unsigned rounds;
	/* relaxed: the library must order them */
	atomic_uint round_of[STRESS_MAX_THREADS];
	atomic_int arrivals[ROUND_SLOTS];
	atomic_ullong early, ahead, short_rounds, wrong_generation;
};

static void broadcast_round(struct barrier_run *run, unsigned round)
{
	struct guarded *g = &run->g;
	/* alternate: broadcast holding the mutex (waiters are requeued onto a
	 * held mutex), or after releasing it */
	if (round & 1) {
		must(sync_cond_broadcast(&run->cond), "sync_cond_broadcast");
	} else {
		guarded_unlock(g);
		must(sync_cond_broadcast(&run->cond), "sync_cond_broadcast");
		guarded_lock(g);
	}
}

static void check_passage(struct barrier_run *run, unsigned round)
{
	if (atomic_load_explicit(&run->arrivals[round % ROUND_SLOTS],
				 memory_order_relaxed) != run->threads)
		count(&run->short_rounds);
	for (int j = 0; j < run->threads; j++) {
		unsigned rj = atomic_load_explicit(&run->round_of[j],
						   memory_order_relaxed);
		if (rj < round)
			count(&run->early);
		else if (rj > round + 1)
			count(&run->ahead);
	}
}

static void barrier_worker(void *arg, int index)
{
	struct barrier_run *run = arg;
	struct guarded *g = &run->g;
	for (unsigned round = 0;; round++) {
		atomic_store_explicit(&run->round_of[index], round,
				      memory_order_relaxed);
		atomic_fetch_add_explicit(&run->arrivals[round % ROUND_SLOTS], 1,
					  memory_order_relaxed);
		guarded_lock(g);
		unsigned gen = run->generation;
		if (gen != round)
			count(&run->wrong_generation);
		if (++run->arrived == run->threads) {
			unsigned later = (round + 2) % ROUND_SLOTS;
			run->arrived = 0;
			atomic_store_explicit(&run->arrivals[later], 0,
					      memory_order_relaxed);
			run->stop = !stress_running();
			run->rounds++;
			run->generation++;
			broadcast_round(run, round);
		} else {
			unsigned salt = round + (unsigned)index;
			while (run->generation == gen)
				guarded_wait(g, &run->cond, salt++);
		}
		if (run->generation != gen + 1)
			count(&run->wrong_generation);
		bool stop = run->stop;
		guarded_unlock(g);
		check_passage(run, round);
		if (stop)
			return;
	}
}

static void check_barrier(enum wake wake, int flags, int threads)
{
	static struct barrier_run run;
	run = (struct barrier_run){ .threads = threads, .g = { .wake = wake } };
	must(sync_mutex_init(&run.g.m, flags), "sync_mutex_init");
	must(sync_cond_init(&run.cond, flags & SYNC_PSHARED), "sync_cond_init");
	stress_run_threads(threads, barrier_worker, &run);

	char what[96];
	snprintf(what, sizeof what, "barrier %s%s%s %d threads",
		 wake == WAKE_TIMED ? "broadcast, wait+timedwait" : "broadcast",
		 flags & SYNC_PSHARED ? " pshared" : "",
		 flags & SYNC_MUTEX_ERRORCHECK ? " (errorcheck mutex)" : "",
		 threads);
	tap_check(got(&run.early) == 0 && got(&run.ahead) == 0 && run.rounds > 0,
		  "%s: after round r every thread reached r, none passed r + 1 "
		  "(%u rounds, %llu early, %llu two ahead)",
		  what, run.rounds, got(&run.early), got(&run.ahead));
	tap_check(got(&run.short_rounds) == 0 && got(&run.wrong_generation) == 0,
		  "%s: all %d arrived in the round waited on, generation moved "
		  "by one (%llu short, %llu wrong generation)",
		  what, threads, got(&run.short_rounds),
		  got(&run.wrong_generation));
	check_guarded(&run.g, what);
	tap_check(sync_cond_destroy(&run.cond) == 0 &&
			  sync_mutex_destroy(&run.g.m) == 0,
		  "%s: ends with no waiter counted and the mutex free", what);
}

/* ---- Regressions (issue 10) -------------------------------------------
 * A TEST_HOOK point is held up once, while the test arranges the
 * interleaving that used to go wrong. */
static const char *gate_point;
static atomic_bool cond_freed; /* also opens the gate */
static atomic_bool gate_armed, gate_reached, gate_open;

static void gate_hook(const char *point)
{
	if (!gate_point || strcmp(point, gate_point) != 0 ||
	    !atomic_exchange(&gate_armed, false))
		return;
	atomic_store(&gate_reached, true);
	for (int i = 0; i < 20000 && !atomic_load(&gate_open) &&
			!atomic_load(&cond_freed);
	     i++)
		stress_sleep_us(100);
}

static void gate_arm(const char *point)
{
	gate_point = point;
	atomic_store(&gate_reached, false);
	atomic_store(&gate_open, false);
	atomic_store(&gate_armed, true);
	test_hook_set(gate_hook);
}

static void gate_wait_reached(void)
{
	for (int i = 0; i < 20000 && !atomic_load(&gate_reached); i++)
		stress_sleep_us(100);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	must(pthread_create(t, NULL, fn, arg), "pthread_create");
}

struct requeue_run {
	sync_mutex_t m;
	sync_cond_t c;
	atomic_bool first_woken, first_may_unlock;
	int late_lock; /* result of the late locker's timedlock */
};

/* Waits once (any wake-up will do), then holds the mutex until told. */
static void *first_waiter(void *arg)
{
	struct requeue_run *run = arg;
	must(sync_mutex_lock(&run->m), "sync_mutex_lock");
	must(sync_cond_wait(&run->c, &run->m), "sync_cond_wait");
	atomic_store(&run->first_woken, true);
	while (!atomic_load(&run->first_may_unlock))
		stress_sleep_us(100);
	must(sync_mutex_unlock(&run->m), "sync_mutex_unlock");
	return NULL;
}

static void *broadcaster(void *arg)
{
	struct requeue_run *run = arg;
	must(sync_cond_broadcast(&run->c), "sync_cond_broadcast");
	return NULL;
}

static void *waiter_once(void *arg)
{
	struct requeue_run *run = arg;
	must(sync_mutex_lock(&run->m), "sync_mutex_lock");
	must(sync_cond_wait(&run->c, &run->m), "sync_cond_wait");
	must(sync_mutex_unlock(&run->m), "sync_mutex_unlock");
	return NULL;
}

static void *late_locker(void *arg)
{
	struct requeue_run *run = arg;
	struct timespec deadline = sync_deadline(3000000000ull);
	run->late_lock = sync_mutex_timedlock(&run->m, &deadline);
	if (run->late_lock == 0)
		must(sync_mutex_unlock(&run->m), "sync_mutex_unlock");
	return NULL;
}

/* Defect 1: a broadcast made without the mutex is held up between its bump
 * of seq and its requeue; a new waiter starts meanwhile and is requeued onto
 * the mutex; a signal follows; the unlock that wakes the new waiter must
 * leave the mutex's other sleeper (the late locker) wakeable. */
static void check_broadcast_new_waiter_signal(void)
{
	static struct requeue_run run;
	run = (struct requeue_run){ .m = SYNC_MUTEX_INITIALIZER,
				    .c = SYNC_COND_INITIALIZER };
	pthread_t first, bcast, second, late;
	start(&first, first_waiter, &run);
	stress_sleep_us(50000); /* asleep on c */
	gate_arm("cond_broadcast:bumped");
	start(&bcast, broadcaster, &run);
	gate_wait_reached();
	start(&second, waiter_once, &run);
	stress_sleep_us(50000); /* asleep on c, its snapshot after the bump */
	atomic_store(&gate_open, true); /* wakes first, requeues second */
	while (!atomic_load(&run.first_woken))
		stress_sleep_us(100);
	start(&late, late_locker, &run);
	stress_sleep_us(50000); /* asleep on the mutex, behind second */
	must(sync_cond_signal(&run.c), "sync_cond_signal");
	atomic_store(&run.first_may_unlock, true);
	pthread_join(first, NULL);
	pthread_join(bcast, NULL);
	pthread_join(second, NULL);
	pthread_join(late, NULL);
	test_hook_set(NULL);
	tap_check(run.late_lock == 0,
		  "broadcast outside the mutex, new waiter, signal: the mutex's "
		  "other sleeper is still woken (timedlock returned %d)",
		  run.late_lock);
}

struct freed_cond {
	sync_mutex_t m;
	sync_cond_t c;
};

/* Waits with a deadline, so that it returns while the signaller is held up
 * after its bump, then destroys and frees the condition variable. */
static void *waiter_frees(void *arg)
{
	struct freed_cond *f = arg;
	must(sync_mutex_lock(&f->m), "sync_mutex_lock");
	struct timespec deadline = sync_deadline(100000000ull);
	int r = sync_cond_timedwait(&f->c, &f->m, &deadline);
	if (r && r != ETIMEDOUT)
		must(r, "sync_cond_timedwait");
	must(sync_mutex_unlock(&f->m), "sync_mutex_unlock");
	int d = sync_cond_destroy(&f->c);
	if (d == 0) {
		free(f);
		atomic_store(&cond_freed, true);
	}
	return NULL;
}

/* Defect 2 for the condition variable: once signal or broadcast has bumped
 * seq, a woken waiter may destroy and free it; the call is held up right
 * after the bump and must touch the object no more. */
static void check_no_access_after_wake(bool broadcast)
{
	struct freed_cond *f = malloc(sizeof *f);
	must(f == NULL, "malloc");
	*f = (struct freed_cond){ .m = SYNC_MUTEX_INITIALIZER, .c = SYNC_COND_INITIALIZER };
	atomic_store(&cond_freed, false);
	pthread_t waiter;
	start(&waiter, waiter_frees, f);
	stress_sleep_us(30000); /* asleep on c */
	gate_arm(broadcast ? "cond_broadcast:bumped" : "cond_signal:bumped");
	sync_cond_t *c = &f->c; /* the gate opens when the waiter freed it */
	if (broadcast)
		must(sync_cond_broadcast(c), "sync_cond_broadcast");
	else
		must(sync_cond_signal(c), "sync_cond_signal");
	pthread_join(waiter, NULL);
	test_hook_set(NULL);
	tap_check(atomic_load(&cond_freed),
		  "%s held up after its bump touches nothing the woken waiter "
		  "destroyed and freed", broadcast ? "broadcast" : "signal");
}

/* A woken waiter held up on its way out (here 300 ms, by a loaded machine
 * in real life) longer than destroy's allowance for vanished waiters: a
 * private condition variable's waiters are live, so destroy must wait for
 * it, not return 0 while it still has the object to touch. */
static atomic_bool leaving_done;

static void leaving_hook(const char *point)
{
	if (strcmp(point, "cond_wait:leaving") != 0 ||
	    !atomic_exchange(&gate_armed, false))
		return;
	atomic_store(&gate_reached, true);
	stress_sleep_us(300000);
	atomic_store(&leaving_done, true);
}

static void check_destroy_waits_for_slow_waiter(void)
{
	static struct requeue_run run;
	run = (struct requeue_run){ .m = SYNC_MUTEX_INITIALIZER,
				    .c = SYNC_COND_INITIALIZER };
	atomic_store(&leaving_done, false);
	atomic_store(&gate_reached, false);
	atomic_store(&gate_armed, true);
	test_hook_set(leaving_hook);
	pthread_t waiter;
	start(&waiter, waiter_once, &run);
	stress_sleep_us(50000); /* asleep on c */
	must(sync_cond_broadcast(&run.c), "sync_cond_broadcast");
	gate_wait_reached();
	int d = sync_cond_destroy(&run.c);
	bool left = atomic_load(&leaving_done);
	pthread_join(waiter, NULL);
	test_hook_set(NULL);
	tap_check(d == 0 && left,
		  "destroy after a broadcast waits for a woken waiter held up "
		  "300 ms on its way out (destroy %d, waiter gone first: %d)", d,
		  left);
}

/* ---- spin only where the signaller can run ---------------------------------- */

struct signalled {
	sync_cond_t c;
	sync_mutex_t m;
	bool done; /* under m */
};

static void *wait_for_done(void *arg)
{
	struct signalled *w = arg;
	must(sync_mutex_lock(&w->m), "sync_mutex_lock");
	while (!w->done)
		must(sync_cond_wait(&w->c, &w->m), "sync_cond_wait");
	must(sync_mutex_unlock(&w->m), "sync_mutex_unlock");
	return NULL;
}

/* The last signal (to a thread waiting) comes from the cpu_signal-th CPU;
 * then a wait that times out runs on the cpu_wait-th. False if there are
 * not that many CPUs. */
static bool wait_after_signal(int flags, int cpu_signal, int cpu_wait, int *r)
{
	struct signalled w = { .done = false };
	pthread_t t;
	must(sync_cond_init(&w.c, flags), "sync_cond_init");
	must(sync_mutex_init(&w.m, flags), "sync_mutex_init");
	bool pinned = stress_pin_cpu(cpu_signal);
	if (pthread_create(&t, NULL, wait_for_done, &w))
		abort();
	while (!atomic_load(&w.c.waiters)) /* a signal records only with a waiter */
		stress_sleep_us(100);
	must(sync_mutex_lock(&w.m), "sync_mutex_lock");
	w.done = true;
	must(sync_cond_signal(&w.c), "sync_cond_signal");
	must(sync_mutex_unlock(&w.m), "sync_mutex_unlock");
	pthread_join(t, NULL);
	pinned = pinned && stress_pin_cpu(cpu_wait);
	stress_spins_count("cond_spin");
	stress_spins_counting(true);
	struct timespec deadline = sync_deadline(20000000u);
	must(sync_mutex_lock(&w.m), "sync_mutex_lock");
	*r = sync_cond_timedwait(&w.c, &w.m, &deadline);
	must(sync_mutex_unlock(&w.m), "sync_mutex_unlock");
	stress_spins_counting(false);
	stress_spins_stop();
	stress_unpin();
	return pinned;
}

/* On the CPU the last signal came from, the signaller cannot run while
 * its waiter spins: the waiter yields the CPU (twice at most) and sleeps. */
static void check_no_spin_on_signallers_cpu(const char *name, int flags)
{
	int r;
	bool pinned = wait_after_signal(flags, 0, 0, &r);
	tap_check(pinned && r == ETIMEDOUT && stress_spins_started() == 0 &&
		  stress_spins_yields() == 1,
		  "%s: a waiter on the CPU of the last signal yields instead of spinning "
		  "(spins %d, yields %d)", name, stress_spins_started(),
		  stress_spins_yields());
}

/* On another CPU the signaller may be running: the waiter spins first. */
static void check_spin_off_signallers_cpu(const char *name, int flags)
{
	int r;
	if (!wait_after_signal(flags, 1, 0, &r)) {
		tap_check(true, "%s: a waiter on another CPU spins # SKIP one CPU", name);
		return;
	}
	tap_check(r == ETIMEDOUT && stress_spins_started() == 1 &&
		  stress_spins_yields() == 0,
		  "%s: a waiter on another CPU than the last signal spins (spins %d, yields %d)",
		  name, stress_spins_started(), stress_spins_yields());
}

int main(void)
{
	tap_plan(6 * 4 + 3 * 4 + 4 + 4);
	check_no_spin_on_signallers_cpu("cond", 0);
	check_no_spin_on_signallers_cpu("cond pshared", SYNC_PSHARED);
	check_spin_off_signallers_cpu("cond", 0);
	check_spin_off_signallers_cpu("cond pshared", SYNC_PSHARED);
	check_broadcast_new_waiter_signal();
	check_no_access_after_wake(false);
	check_no_access_after_wake(true);
	check_destroy_waits_for_slow_waiter();
	check_buffer(WAKE_SIGNAL, 0, 3, 3);
	check_buffer(WAKE_SIGNAL, 0, 2, 6); /* more threads than cores */
	check_buffer(WAKE_BROADCAST, 0, 3, 3);
	check_buffer(WAKE_BROADCAST, 0, 2, 6);
	check_buffer(WAKE_SIGNAL_UNLOCKED, 0, 3, 3);
	check_buffer(WAKE_TIMED, SYNC_MUTEX_ERRORCHECK, 3, 3);
	check_barrier(WAKE_BROADCAST, 0, BARRIER_THREADS);
	check_barrier(WAKE_TIMED, SYNC_MUTEX_ERRORCHECK, BARRIER_THREADS);
	check_barrier(WAKE_BROADCAST, SYNC_PSHARED, BARRIER_THREADS);
	return tap_exit_status();
}
