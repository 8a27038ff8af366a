/* Stress test for sync_sem under ThreadSanitizer: a semaphore of value k
 * admits at most k holders at once and every unit is accounted for (wait,
 * trywait and timedwait mixed), and units posted by producers are consumed
 * exactly once by consumers that wait, time out or try. The bookkeeping
 * atomics are relaxed, so every happens-before edge ThreadSanitizer sees
 * comes from the library. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sync/sem.h>

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

/* How a thread takes a unit: one way only, or wait, trywait and timedwait
 * in turn. */
enum take { TAKE_WAIT, TAKE_MIXED };

/* One attempt at a unit; 0 when taken. Timed attempts use deadlines from
 * 5 us to 80 us, so some expire while units are scarce. */
static int take_unit(sync_sem_t *s, enum take how, uint64_t i)
{
	if (how == TAKE_WAIT)
		return sync_sem_wait(s);
	switch (i % 3) {
	case 0:
		return sync_sem_wait(s);
	case 1:
		return sync_sem_trywait(s);
	default: {
		struct timespec deadline = sync_deadline(5000u << (i / 3 % 5));
		return sync_sem_timedwait(s, &deadline);
	}
	}
}

/* Sorts a failed attempt: trywait's EAGAIN and timedwait's ETIMEDOUT are
 * expected, anything else is not. */
static void note_failure(int r, atomic_ullong *busy, atomic_ullong *timeouts,
			 atomic_ullong *bad)
{
	if (r == EAGAIN)
		count(busy);
	else if (r == ETIMEDOUT)
		count(timeouts);
	else
		count(bad);
}

/* ---- at most k holders --------------------------------------------------- */

/* Threads take a unit, stay a while (now and then asleep, so that others
 * pile up behind the semaphore), and post it back. With k == 1 the plain
 * counter is only ever touched by the one holder: ThreadSanitizer reports a
 * race if two were ever inside together. */
struct limit_run {
	sync_sem_t s;
	unsigned k;
	enum take how;
	atomic_int holders, max_holders;
	atomic_ullong entries, busy, timeouts, bad;
	uint64_t plain_counter; /* k == 1 only */
	uint64_t taken[STRESS_MAX_THREADS];
	uint64_t posted[STRESS_MAX_THREADS];
};

static void limit_worker(void *arg, int index)
{
	struct limit_run *run = arg;
	uint64_t taken = 0, posted = 0;
	for (uint64_t i = (uint64_t)index; stress_running(); i++) {
		int r = take_unit(&run->s, run->how, i);
		if (r) {
			note_failure(r, &run->busy, &run->timeouts, &run->bad);
			continue;
		}
		taken++;
		int now = atomic_fetch_add_explicit(&run->holders, 1,
						    memory_order_relaxed) + 1;
		stress_note_max(&run->max_holders, now);
		count(&run->entries);
		if (run->k == 1)
			run->plain_counter++;
		if (i % 16 == 0)
			stress_sleep_us(50);
		atomic_fetch_sub_explicit(&run->holders, 1, memory_order_relaxed);
		r = sync_sem_post(&run->s);
		if (r)
			count(&run->bad);
		else
			posted++;
	}
	run->taken[index] = taken;
	run->posted[index] = posted;
}

/* flags -1: SYNC_SEM_INITIALIZER(k) instead of init(k, flags) */
static void check_limit(unsigned k, int flags, int threads, enum take how)
{
	static struct limit_run run;
	run = (struct limit_run){ .k = k, .how = how };
	if (flags < 0)
		run.s = (sync_sem_t)SYNC_SEM_INITIALIZER(k);
	else
		must(sync_sem_init(&run.s, k, flags), "sync_sem_init");
	stress_run_threads(threads, limit_worker, &run);

	char what[96];
	snprintf(what, sizeof what, "sem(%u)%s %s %d threads", k,
		 flags > 0 ? " pshared" : flags < 0 ? " initializer" : "",
		 how == TAKE_WAIT ? "wait" : "wait+trywait+timedwait", threads);
	uint64_t taken = 0, posted = 0;
	for (int i = 0; i < threads; i++) {
		taken += run.taken[i];
		posted += run.posted[i];
	}
	int max = atomic_load(&run.max_holders);
	/* a unit is held across a 50 us sleep, so more threads than k always
	 * find the semaphore full at some point: it must admit exactly k */
	tap_check(max == (int)k, "%s: never more than %u holders, and %u at once "
		  "(max %d)", what, k, k, max);
	tap_check(taken == posted && taken == got(&run.entries) && taken > 0 &&
			  (k != 1 || run.plain_counter == taken) &&
			  got(&run.bad) == 0,
		  "%s: %llu taken == %llu posted == %llu entries%s, no stray "
		  "error (%llu EAGAIN, %llu ETIMEDOUT)",
		  what, (unsigned long long)taken, (unsigned long long)posted,
		  got(&run.entries),
		  k == 1 ? " == plain counter" : "", got(&run.busy),
		  got(&run.timeouts));
	int value = -1;
	int r = sync_sem_getvalue(&run.s, &value);
	tap_check(r == 0 && value == (int)k && sync_sem_destroy(&run.s) == 0,
		  "%s: ends with value %d == %u, no sleeper left", what, value, k);
}

/* ---- producers and consumers --------------------------------------------- */

/* Producers post a fixed number of units each, pausing now and then so that
 * consumers run dry and sleep. Consumers first claim one of the units that
 * will be posted (a ticket), then take one by wait, timedwait or trywait,
 * retrying after EAGAIN or ETIMEDOUT: every ticket is matched by a post, so
 * the run ends only if no post was lost, and the semaphore ends at 0 only
 * if no unit was taken twice. */
struct handoff_run {
	sync_sem_t s;
	int producers;
	uint64_t per_producer;
	atomic_ullong tickets, busy, timeouts, bad;
	uint64_t posted[STRESS_MAX_THREADS];
	uint64_t consumed[STRESS_MAX_THREADS];
};

static void handoff_producer(struct handoff_run *run, int index)
{
	uint64_t posted = 0;
	for (uint64_t i = 1; i <= run->per_producer; i++) {
		int r = sync_sem_post(&run->s);
		if (r)
			count(&run->bad);
		else
			posted++;
		if (i % 64 == 0)
			stress_sleep_us(100);
	}
	run->posted[index] = posted;
}

static void handoff_consumer(struct handoff_run *run, int index)
{
	uint64_t total = run->per_producer * (uint64_t)run->producers;
	uint64_t consumed = 0;
	for (;;) {
		uint64_t ticket = atomic_fetch_add_explicit(&run->tickets, 1,
							    memory_order_relaxed);
		if (ticket >= total)
			break;
		/* wait, trywait or timedwait in turn, from ticket to ticket */
		uint64_t attempt = ticket + (uint64_t)index;
		for (;;) {
			int r = take_unit(&run->s, TAKE_MIXED, attempt++);
			if (r == 0)
				break;
			note_failure(r, &run->busy, &run->timeouts, &run->bad);
			if (r == EAGAIN)
				sched_yield();
			if (r != EAGAIN && r != ETIMEDOUT)
				break; /* counted as bad; do not spin on it */
		}
		consumed++;
	}
	run->consumed[index] = consumed;
}

static void handoff_worker(void *arg, int index)
{
	struct handoff_run *run = arg;
	if (index < run->producers)
		handoff_producer(run, index);
	else
		handoff_consumer(run, index);
}

static void check_handoff(int producers, int consumers)
{
	static struct handoff_run run;
	/* STRESS_MS scales the fixed count: 24000 units at the default 400 */
	uint64_t total = (uint64_t)stress_ms() * 60;
	run = (struct handoff_run){
		.producers = producers,
		.per_producer = total / (uint64_t)producers + 1,
	};
	must(sync_sem_init(&run.s, 0, 0), "sync_sem_init");
	stress_run_threads_to_end(producers + consumers, handoff_worker, &run);

	char what[64];
	snprintf(what, sizeof what, "sem handoff %d posting, %d taking",
		 producers, consumers);
	uint64_t posted = 0, consumed = 0;
	for (int i = 0; i < producers; i++)
		posted += run.posted[i];
	for (int i = producers; i < producers + consumers; i++)
		consumed += run.consumed[i];
	tap_check(consumed == posted &&
			  posted == run.per_producer * (uint64_t)producers &&
			  got(&run.bad) == 0,
		  "%s: %llu consumed == %llu posted, no stray error (%llu EAGAIN, "
		  "%llu ETIMEDOUT)",
		  what, (unsigned long long)consumed, (unsigned long long)posted,
		  got(&run.busy), got(&run.timeouts));
	int value = -1;
	int r = sync_sem_getvalue(&run.s, &value);
	tap_check(r == 0 && value == 0 && sync_sem_trywait(&run.s) == EAGAIN,
		  "%s: ends with value %d == 0", what, value);
	tap_check(sync_sem_destroy(&run.s) == 0, "%s: ends with no sleeper left",
		  what);
}


/* ---- self-synchronized destruction (issue 10, point 2) ------------------
 * A semaphore used once as a completion, then freed by its waiter: the
 * post is held up for 10 ms right after it published the unit (TEST_HOOK
 * "sem_post:published") while the waiter, which waits with 2 ms deadlines
 * and so needs no wake-up, takes the unit, destroys and frees the
 * semaphore. Any access the held-up post still makes is a
 * heap-use-after-free for ThreadSanitizer and ASan. */

#define UAF_ROUNDS 20

static _Thread_local bool hold_up_my_post;

static void hold_up_post(const char *point)
{
	if (hold_up_my_post && !strcmp(point, "sem_post:published"))
		stress_sleep_us(10000);
}

static void *wait_then_free(void *arg)
{
	sync_sem_t *s = arg;
	int r;
	do {
		struct timespec d = sync_deadline(2000000u);
		r = sync_sem_timedwait(s, &d);
	} while (r == ETIMEDOUT);
	must(r, "sync_sem_timedwait");
	must(sync_sem_destroy(s), "sync_sem_destroy");
	free(s);
	return NULL;
}

static bool post_round(int flags)
{
	sync_sem_t *s = malloc(sizeof *s);
	if (!s)
		abort();
	must(sync_sem_init(s, 0, flags), "sync_sem_init");
	pthread_t t;
	if (pthread_create(&t, NULL, wait_then_free, s))
		abort();
	stress_sleep_us(200); /* most often it sleeps by now */
	hold_up_my_post = true;
	int r = sync_sem_post(s); /* s may be gone from here on */
	hold_up_my_post = false;
	pthread_join(t, NULL);
	return r == 0;
}

static void check_destruction_after_post(const char *name, int flags)
{
	test_hook_set(hold_up_post);
	int ok = 0;
	for (int i = 0; i < UAF_ROUNDS; i++)
		ok += post_round(flags);
	test_hook_set(NULL);
	tap_check(ok == UAF_ROUNDS, "%s: the waiter destroys and frees the semaphore "
		  "while the post is held up, %d rounds", name, ok);
}

/* ---- spin only where the poster can run ------------------------------------ */

/* The last post comes from the CPU_post-th CPU; then a wait that times out
 * runs on the CPU_wait-th. False if there are not that many CPUs. */
static bool wait_after_post(int flags, int cpu_post, int cpu_wait, int *r)
{
	sync_sem_t s;
	must(sync_sem_init(&s, 0, flags), "sync_sem_init");
	bool pinned = stress_pin_cpu(cpu_post);
	must(sync_sem_post(&s), "sync_sem_post");
	must(sync_sem_trywait(&s), "sync_sem_trywait");
	pinned = pinned && stress_pin_cpu(cpu_wait);
	stress_spins_count("sem_spin");
	stress_spins_counting(true);
	struct timespec deadline = sync_deadline(20000000u);
	*r = sync_sem_timedwait(&s, &deadline);
	stress_spins_counting(false);
	stress_spins_stop();
	stress_unpin();
	return pinned;
}

/* On the CPU the last post came from, the poster cannot run while its
 * waiter spins: the waiter yields the CPU (twice at most) and sleeps. */
static void check_no_spin_on_posters_cpu(const char *name, int flags)
{
	int r;
	bool pinned = wait_after_post(flags, 0, 0, &r);
	tap_check(pinned && r == ETIMEDOUT && stress_spins_started() == 0 &&
		  stress_spins_yields() == 1,
		  "%s: a waiter on the CPU of the last post yields instead of spinning "
		  "(spins %d, yields %d)", name, stress_spins_started(),
		  stress_spins_yields());
}

/* On another CPU the poster may be running: the waiter spins first. */
static void check_spin_off_posters_cpu(const char *name, int flags)
{
	int r;
	if (!wait_after_post(flags, 1, 0, &r)) {
		tap_check(true, "%s: a waiter on another CPU spins # SKIP one CPU", name);
		return;
	}
	tap_check(r == ETIMEDOUT && stress_spins_started() == 1 &&
		  stress_spins_yields() == 0,
		  "%s: a waiter on another CPU than the last post spins (spins %d, yields %d)",
		  name, stress_spins_started(), stress_spins_yields());
}

/* Two threads on one CPU hand a token back and forth through two
 * semaphores: a waiter yields to the poster, runnable on its CPU, which
 * posts before the waiter would sleep, so most waits never sleep (when
 * waiters spun instead, every one slept: the poster could not run). */
static atomic_int sleeps_registered;

static void count_sleeps(const char *point)
{
	/* relaxed: read after the join */
	if (!strcmp(point, "sem_sleep:registered"))
		atomic_fetch_add_explicit(&sleeps_registered, 1, memory_order_relaxed);
}

#define ONE_CPU_ROUNDS 2000

struct one_cpu_pingpong {
	sync_sem_t s[2];
};

static void *pong_on_one_cpu(void *arg)
{
	struct one_cpu_pingpong *p = arg;
	for (int i = 0; i < ONE_CPU_ROUNDS; i++) {
		must(sync_sem_wait(&p->s[1]), "sync_sem_wait");
		must(sync_sem_post(&p->s[0]), "sync_sem_post");
	}
	return NULL;
}

static void check_one_cpu_handoffs_mostly_without_sleep(const char *name, int flags)
{
	struct one_cpu_pingpong p;
	pthread_t t;
	must(sync_sem_init(&p.s[0], 0, flags), "sync_sem_init");
	must(sync_sem_init(&p.s[1], 0, flags), "sync_sem_init");
	bool pinned = stress_pin_cpu(0); /* the thread below inherits it */
	atomic_store(&sleeps_registered, 0);
	test_hook_set(count_sleeps);
	if (pthread_create(&t, NULL, pong_on_one_cpu, &p))
		abort();
	for (int i = 0; i < ONE_CPU_ROUNDS; i++) {
		must(sync_sem_post(&p.s[1]), "sync_sem_post");
		must(sync_sem_wait(&p.s[0]), "sync_sem_wait");
	}
	pthread_join(t, NULL);
	test_hook_set(NULL);
	stress_unpin();
	int slept = atomic_load(&sleeps_registered);
	tap_check(pinned && slept < ONE_CPU_ROUNDS / 4, "%s: two threads on one CPU, %d "
		  "hand-offs: %d waits slept (fewer than an eighth)", name, 2 * ONE_CPU_ROUNDS,
		  slept);
}

int main(void)
{
	tap_plan(7 * 3 + 3 * 3 + 2 + 4 + 2);
	check_one_cpu_handoffs_mostly_without_sleep("sem", 0);
	check_one_cpu_handoffs_mostly_without_sleep("sem pshared", SYNC_PSHARED);
	check_no_spin_on_posters_cpu("sem", 0);
	check_no_spin_on_posters_cpu("sem pshared", SYNC_PSHARED);
	check_spin_off_posters_cpu("sem", 0);
	check_spin_off_posters_cpu("sem pshared", SYNC_PSHARED);
	check_destruction_after_post("sem post", 0);
	check_destruction_after_post("sem post pshared", SYNC_PSHARED);
	check_limit(1, 0, 2, TAKE_WAIT);
	check_limit(1, -1, 4, TAKE_MIXED);
	check_limit(1, SYNC_PSHARED, 8, TAKE_WAIT); /* more threads than cores */
	check_limit(2, 0, 4, TAKE_MIXED);
	check_limit(2, -1, 8, TAKE_WAIT);
	check_limit(3, 0, 4, TAKE_WAIT);
	check_limit(3, SYNC_PSHARED, 8, TAKE_MIXED);
	check_handoff(2, 2);
	check_handoff(2, 6);
	check_handoff(6, 2);
	return tap_exit_status();
}
