/* Unit tests for <sync/cond.h>: one behaviour of the contract per test. */
#define _GNU_SOURCE /* SIGUSR1, mmap and pthreads under strict -std modes */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>

#include <sync.h>

#include "tap_main.h"
#include "util.h"


/* trylock, and on success unlock again: probes without changing the mutex.
 * Returns trylock's result, or -1 if the unlock failed. */
static int trylock_and_release(sync_mutex_t *m)
{
	int r = sync_mutex_trylock(m);
	if (r == 0 && sync_mutex_unlock(m) != 0)
		return -1;
	return r;
}

static int other_thread_trylock(sync_mutex_t *m)
{
	return mutex_call_in_thread(trylock_and_release, m);
}

static int other_thread_unlock(sync_mutex_t *m)
{
	return mutex_call_in_thread(sync_mutex_unlock, m);
}

/* The caller holds m (it was taken again by a wait): another thread cannot
 * take it, and the caller's unlock frees it. */
static void check_held_then_unlock(sync_mutex_t *m)
{
	ck_assert_int_eq(other_thread_trylock(m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
	ck_assert_int_eq(other_thread_trylock(m), 0);
}

/* ---- threads that wait on the cond ------------------------------------- */

#define MAX_WAITERS 4

struct waiter {
	struct group *g;
	pthread_t thread;
	atomic_int tid;
	int result;        /* the last wait's result */
	bool alone;        /* no other waiter held m when this one came back */
	int relock_result; /* errorcheck groups: lock of m after the wait */
	int unlock_result;
	int64_t deadline_ns;
	int64_t returned_at;
};

struct group {
	sync_cond_t *c;
	sync_mutex_t *m;
	int64_t timeout_ns; /* 0: sync_cond_wait; else timedwait, deadline this far */
	bool loop;          /* wait again while !predicate */
	bool errorcheck;    /* m is error-checking: probe ownership on return */
	int predicate;      /* protected by m */
	int holding;        /* protected by m */
	atomic_int waiting; /* waiters that reached the wait, counted under m */
	atomic_int returned;
	int n;
	struct waiter w[MAX_WAITERS];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct group *g = w->g;
	atomic_store(&w->tid, thread_id());
	struct timespec d = sync_deadline((uint64_t)g->timeout_ns);
	w->deadline_ns = timespec_ns(&d);
	if (sync_mutex_lock(g->m) != 0)
		return NULL;
	/* from here on, the only place this thread can sleep is the wait */
	atomic_fetch_add(&g->waiting, 1);
	do {
		w->result = g->timeout_ns ? sync_cond_timedwait(g->c, g->m, &d)
					  : sync_cond_wait(g->c, g->m);
	} while (g->loop && w->result == 0 && !g->predicate);
	w->returned_at = now_ns();
	/* holding m again: nobody else may be in here */
	w->alone = ++g->holding == 1;
	sleep_ns(NS_PER_MS);
	g->holding--;
	if (g->errorcheck)
		w->relock_result = sync_mutex_lock(g->m);
	atomic_fetch_add(&g->returned, 1);
	w->unlock_result = sync_mutex_unlock(g->m);
	return NULL;
}

/* Starts n threads that wait on c with m, and returns once all of them are
 * inside the wait: they counted themselves under m, and this thread got m
 * after them, so each has released it in its wait. */
static void group_start(struct group *g, sync_cond_t *c, sync_mutex_t *m, int n,
			int64_t timeout_ns, bool loop)
{
	memset(g, 0, sizeof *g);
	g->c = c;
	g->m = m;
	g->n = n;
	g->timeout_ns = timeout_ns;
	g->loop = loop;
	for (int i = 0; i < n; i++) {
		g->w[i].g = g;
		g->w[i].result = g->w[i].relock_result = g->w[i].unlock_result = -1;
		ck_assert_int_eq(pthread_create(&g->w[i].thread, NULL, waiter_main, &g->w[i]), 0);
	}
	ck_assert(wait_until_equal(&g->waiting, n));
	ck_assert_int_eq(sync_mutex_lock(m), 0);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
}

/* Waits until every waiter of g sleeps in the kernel. */
static void group_wait_asleep(struct group *g)
{
	for (int i = 0; i < g->n; i++)
		ck_assert_msg(wait_until_asleep(atomic_load(&g->w[i].tid)),
			      "waiter %d never slept", i);
}

/* Sets the predicate under m and wakes the group. */
static void group_release(struct group *g, bool broadcast)
{
	ck_assert_int_eq(sync_mutex_lock(g->m), 0);
	g->predicate = 1;
	ck_assert_int_eq(broadcast ? sync_cond_broadcast(g->c) : sync_cond_signal(g->c), 0);
	ck_assert_int_eq(sync_mutex_unlock(g->m), 0);
}

/* Joins every waiter; each must have come back from its wait with `want`,
 * holding m alone, and unlocked it. */
static void group_finish(struct group *g, int want)
{
	for (int i = 0; i < g->n; i++) {
		struct waiter *w = &g->w[i];
		ck_assert_int_eq(pthread_join(w->thread, NULL), 0);
		ck_assert_int_eq(w->result, want);
		ck_assert_msg(w->alone, "waiter %d returned while another held the mutex", i);
		ck_assert_int_eq(w->unlock_result, 0);
		if (g->errorcheck)
			ck_assert_int_eq(w->relock_result, EDEADLK);
	}
}

/* ---- a thread that signals once the caller sleeps in its wait ---------- */

struct signaller {
	sync_cond_t *c;
	sync_mutex_t *m;
	int *predicate; /* protected by m */
	bool broadcast;
	bool outside;   /* signal after unlocking m, not while holding it */
	pid_t sleeper;
	pthread_t thread;
	atomic_int arriving;   /* set by the sleeper just before it waits */
	atomic_int signalling; /* set just before the signal */
	int results[3];        /* lock, signal, unlock */
	bool saw_sleeper;
};

static void *signaller_main(void *arg)
{
	struct signaller *s = arg;
	s->saw_sleeper = wait_until_equal(&s->arriving, 1) && wait_until_asleep(s->sleeper);
	sleep_ns(10 * NS_PER_MS);
	s->results[0] = sync_mutex_lock(s->m);
	*s->predicate = 1;
	if (!s->outside) {
		atomic_store(&s->signalling, 1);
		s->results[1] = s->broadcast ? sync_cond_broadcast(s->c) : sync_cond_signal(s->c);
	}
	s->results[2] = sync_mutex_unlock(s->m);
	if (s->outside) {
		atomic_store(&s->signalling, 1);
		s->results[1] = s->broadcast ? sync_cond_broadcast(s->c) : sync_cond_signal(s->c);
	}
	return NULL;
}

/* Starts a thread that, once the caller sleeps (after `arriving`), sets
 * *predicate under m and signals (or broadcasts) c. */
static void signaller_start(struct signaller *s, sync_cond_t *c, sync_mutex_t *m,
			    int *predicate, bool broadcast, bool outside)
{
	memset(s, 0, sizeof *s);
	s->c = c;
	s->m = m;
	s->predicate = predicate;
	s->broadcast = broadcast;
	s->outside = outside;
	s->sleeper = thread_id();
	for (int i = 0; i < 3; i++)
		s->results[i] = -1;
	ck_assert_int_eq(pthread_create(&s->thread, NULL, signaller_main, s), 0);
}

static void signaller_finish(struct signaller *s)
{
	ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
	ck_assert(s->saw_sleeper);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(s->results[i], 0);
}

/* With m held, waits on c (timed if d) until another thread sets the
 * predicate and signals; returns the last wait's result. */
static int wait_for_signaller(sync_cond_t *c, sync_mutex_t *m, const struct timespec *d,
			      bool broadcast, bool outside)
{
	int predicate = 0, r;
	struct signaller s;
	signaller_start(&s, c, m, &predicate, broadcast, outside);
	atomic_store(&s.arriving, 1);
	do
		r = d ? sync_cond_timedwait(c, m, d) : sync_cond_wait(c, m);
	while (r == 0 && !predicate);
	ck_assert_int_eq(atomic_load(&s.signalling), 1); /* not before */
	ck_assert_int_eq(predicate, 1);
	signaller_finish(&s);
	return r;
}

/* ---- a thread that holds a mutex --------------------------------------- */

struct holder {
	sync_mutex_t *m;
	pid_t sleeper;      /* 0: take m at once, keep it until holder_finish */
	int64_t release_at; /* with a sleeper: keep m at least until then */
	pthread_t thread;
	atomic_int held;
	atomic_int release;
	atomic_int unlocking;
	atomic_int arriving; /* set by the sleeper just before it waits */
	int64_t took_at;
	int lock_result;
	int unlock_result;
	bool saw_sleeper;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	if (h->sleeper && !(wait_until_equal(&h->arriving, 1) && wait_until_asleep(h->sleeper)))
		return NULL;
	h->lock_result = sync_mutex_lock(h->m);
	h->took_at = now_ns();
	atomic_store(&h->held, 1);
	if (h->sleeper) {
		while (now_ns() < h->release_at)
			sleep_ns(NS_PER_MS);
		/* the sleeper is past its deadline: now it sleeps on the mutex */
		h->saw_sleeper = wait_until_asleep(h->sleeper);
		sleep_ns(10 * NS_PER_MS);
	} else {
		wait_until_equal(&h->release, 1);
	}
	atomic_store(&h->unlocking, 1);
	h->unlock_result = sync_mutex_unlock(h->m);
	return NULL;
}

/* Starts a thread that locks m. With no sleeper it returns once the thread
 * holds m, which it keeps until holder_finish. With a sleeper, the thread
 * takes m once `arriving` and the sleeper sleeps (in a cond wait that
 * released m), keeps it past release_at until the sleeper sleeps again,
 * then unlocks. */
static void holder_start(struct holder *h, sync_mutex_t *m, pid_t sleeper, int64_t release_at)
{
	memset(h, 0, sizeof *h);
	h->m = m;
	h->sleeper = sleeper;
	h->release_at = release_at;
	h->lock_result = h->unlock_result = -1;
	ck_assert_int_eq(pthread_create(&h->thread, NULL, holder_main, h), 0);
	if (!sleeper) {
		ck_assert(wait_until_equal(&h->held, 1));
		ck_assert_int_eq(h->lock_result, 0);
	}
}

static void holder_finish(struct holder *h)
{
	atomic_store(&h->release, 1);
	ck_assert_int_eq(pthread_join(h->thread, NULL), 0);
	ck_assert_int_eq(h->lock_result, 0);
	ck_assert_int_eq(h->unlock_result, 0);
}

/* ---- initialisation ---------------------------------------------------- */

/* init(c, flags) fails with EINVAL and leaves every byte of c as it was. */
static void check_init_rejects(int flags)
{
	sync_cond_t c, before;
	ck_assert_int_eq(sync_cond_init(&c, SYNC_PSHARED), 0);
	memcpy(&before, &c, sizeof c);
	ck_assert_int_eq(sync_cond_init(&c, flags), EINVAL);
	ck_assert_int_eq(memcmp(&before, &c, sizeof c), 0);
}

/* Fills c with a pattern no valid cond has, then initialises it. */
static void init_over_garbage(sync_cond_t *c, int flags)
{
	memset(c, 0xa5, sizeof *c);
	ck_assert_int_eq(sync_cond_init(c, flags), 0);
}

/* c has no waiters and works: a timed wait times out holding m, a waiter
 * is woken by a signal, and destroy succeeds. */
static void check_usable(sync_cond_t *c, sync_mutex_t *m)
{
	ck_assert_int_eq(sync_cond_destroy(c), 0);
	ck_assert_int_eq(sync_mutex_lock(m), 0);
	struct timespec d = sync_deadline(10 * NS_PER_MS);
	ck_assert_int_eq(sync_cond_timedwait(c, m, &d), ETIMEDOUT);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
	struct group g;
	group_start(&g, c, m, 1, WAIT_LIMIT_NS, true);
	group_release(&g, false);
	group_finish(&g, 0);
	ck_assert_int_eq(sync_cond_destroy(c), 0);
}

START_TEST(initializer_gives_usable_cond_without_waiters)
{
	static sync_cond_t c = SYNC_COND_INITIALIZER;
	static sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	check_usable(&c, &m);
}
END_TEST

START_TEST(init_with_no_flags_gives_usable_cond_without_waiters)
{
	sync_cond_t c;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	init_over_garbage(&c, 0);
	check_usable(&c, &m);
}
END_TEST

START_TEST(init_with_pshared_gives_usable_cond_without_waiters)
{
	sync_cond_t c;
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_PSHARED), 0);
	init_over_garbage(&c, SYNC_PSHARED);
	check_usable(&c, &m);
}
END_TEST

START_TEST(init_rejects_mutex_errorcheck_flag_and_changes_nothing)
{
	check_init_rejects(SYNC_MUTEX_ERRORCHECK);
}
END_TEST

START_TEST(init_rejects_rwlock_prefer_reader_flag_and_changes_nothing)
{
	check_init_rejects(SYNC_RWLOCK_PREFER_READER);
}
END_TEST

START_TEST(init_rejects_unknown_bit_0x100_and_changes_nothing)
{
	check_init_rejects(0x100);
}
END_TEST

START_TEST(init_rejects_all_bits_set_and_changes_nothing)
{
	check_init_rejects(-1);
}
END_TEST

START_TEST(init_rejects_unknown_bit_next_to_pshared)
{
	check_init_rejects(SYNC_PSHARED | 0x8);
}
END_TEST

START_TEST(cond_is_32_bytes_on_lp64)
{
	if (sizeof(void *) == 8)
		ck_assert_uint_eq(sizeof(sync_cond_t), 32);
}
END_TEST

/* ---- NULL arguments ---------------------------------------------------- */

START_TEST(init_of_null_cond_returns_einval)
{
	ck_assert_int_eq(sync_cond_init(NULL, 0), EINVAL);
}
END_TEST

START_TEST(destroy_of_null_cond_returns_einval)
{
	ck_assert_int_eq(sync_cond_destroy(NULL), EINVAL);
}
END_TEST

START_TEST(wait_on_null_cond_returns_einval_and_keeps_mutex_held)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_cond_wait(NULL, &m), EINVAL);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(wait_with_null_mutex_returns_einval)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	ck_assert_int_eq(sync_cond_wait(&c, NULL), EINVAL);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(timedwait_on_null_cond_returns_einval_and_keeps_mutex_held)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_cond_timedwait(NULL, &m, &d), EINVAL);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(timedwait_with_null_mutex_returns_einval)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	ck_assert_int_eq(sync_cond_timedwait(&c, NULL, &d), EINVAL);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(signal_of_null_cond_returns_einval)
{
	ck_assert_int_eq(sync_cond_signal(NULL), EINVAL);
}
END_TEST

START_TEST(broadcast_of_null_cond_returns_einval)
{
	ck_assert_int_eq(sync_cond_broadcast(NULL), EINVAL);
}
END_TEST

/* ---- the caller must hold the mutex ------------------------------------ */

START_TEST(wait_with_unlocked_mutex_returns_eperm_at_once)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_wait(&c, &m), EPERM);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	/* nothing waits, and the mutex is still free */
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(timedwait_with_unlocked_mutex_returns_eperm_at_once)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, &d), EPERM);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
}
END_TEST

START_TEST(wait_with_unlocked_errorcheck_mutex_returns_eperm)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_cond_wait(&c, &m), EPERM);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
}
END_TEST

START_TEST(wait_with_errorcheck_mutex_held_by_other_thread_returns_eperm)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	struct holder h;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	holder_start(&h, &m, 0, 0);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_wait(&c, &m), EPERM);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	/* the holder still has it, and nothing waits */
	ck_assert_int_eq(sync_mutex_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	holder_finish(&h);
}
END_TEST

START_TEST(timedwait_with_errorcheck_mutex_held_by_other_thread_returns_eperm)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	struct holder h;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	holder_start(&h, &m, 0, 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, &d), EPERM);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	holder_finish(&h);
}
END_TEST

START_TEST(wait_with_unlocked_pshared_mutex_on_pshared_cond_returns_eperm)
{
	sync_cond_t c;
	sync_mutex_t m;
	ck_assert_int_eq(sync_cond_init(&c, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_cond_wait(&c, &m), EPERM);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

/* ---- one mutex per private cond ---------------------------------------- */

START_TEST(wait_with_other_mutex_while_others_wait_returns_einval)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m1 = SYNC_MUTEX_INITIALIZER, m2 = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m1, 1, WAIT_LIMIT_NS, true);
	ck_assert_int_eq(sync_mutex_lock(&m2), 0);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_wait(&c, &m2), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	check_held_then_unlock(&m2);
	/* the first waiter is still there and still wakes */
	ck_assert_int_eq(atomic_load(&g.returned), 0);
	group_release(&g, false);
	group_finish(&g, 0);
}
END_TEST

START_TEST(timedwait_with_other_mutex_while_others_wait_returns_einval)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m1 = SYNC_MUTEX_INITIALIZER, m2 = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m1, 1, WAIT_LIMIT_NS, true);
	ck_assert_int_eq(sync_mutex_lock(&m2), 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_timedwait(&c, &m2, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	check_held_then_unlock(&m2);
	group_release(&g, true);
	group_finish(&g, 0);
}
END_TEST

START_TEST(wait_with_other_mutex_after_previous_waiters_left_is_allowed)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m1 = SYNC_MUTEX_INITIALIZER, m2 = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m1, 1, WAIT_LIMIT_NS, true);
	group_release(&g, false);
	group_finish(&g, 0);
	ck_assert_int_eq(sync_mutex_lock(&m2), 0);
	struct timespec d = sync_deadline(10 * NS_PER_MS);
	ck_assert_int_eq(sync_cond_timedwait(&c, &m2, &d), ETIMEDOUT);
	check_held_then_unlock(&m2);
	/* and m2's waiters are woken too */
	group_start(&g, &c, &m2, 2, WAIT_LIMIT_NS, true);
	group_release(&g, true);
	group_finish(&g, 0);
}
END_TEST

/* ---- timedwait: bad deadlines ------------------------------------------ */

/* timedwait(c, m, d) fails with EINVAL at once, with m still held and nobody
 * left waiting. */
static void check_timedwait_rejects(const struct timespec *d)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	check_held_then_unlock(&m);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}

START_TEST(timedwait_with_null_abstime_returns_einval_and_keeps_mutex_held)
{
	check_timedwait_rejects(NULL);
}
END_TEST

START_TEST(timedwait_with_negative_nsec_returns_einval_and_keeps_mutex_held)
{
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = -1;
	check_timedwait_rejects(&d);
}
END_TEST

START_TEST(timedwait_with_nsec_of_one_second_returns_einval_and_keeps_mutex_held)
{
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = 1000000000L;
	check_timedwait_rejects(&d);
}
END_TEST

START_TEST(timedwait_checks_abstime_before_mutex_ownership)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = { 0, 1000000000L };
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, NULL), EINVAL);
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, &d), EINVAL);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
}
END_TEST

/* ---- timedwait: timing out --------------------------------------------- */

START_TEST(timedwait_without_signal_returns_etimedout_not_before_deadline)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	int64_t start = now_ns();
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		; /* spurious wake-ups are allowed */
	ck_assert_int_eq(r, ETIMEDOUT);
	int64_t end = now_ns();
	ck_assert_int_ge(end - start, 50 * NS_PER_MS);
	ck_assert_int_ge(end - timespec_ns(&d), 0);
	ck_assert_int_lt(end - timespec_ns(&d), 2000 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(timedwait_that_timed_out_returns_with_mutex_held)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(timedwait_with_deadline_zero_returns_etimedout_with_mutex_held)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, &d), ETIMEDOUT);
	check_held_then_unlock(&m);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(timedwait_with_negative_seconds_returns_etimedout_with_mutex_held)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, &d), ETIMEDOUT);
	check_held_then_unlock(&m);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(timedwait_with_deadline_of_now_returns_etimedout_with_mutex_held)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_cond_timedwait(&c, &m, &d), ETIMEDOUT);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(timedwait_timing_out_while_other_thread_holds_mutex_returns_after_its_unlock)
{
	/* On ETIMEDOUT too the mutex is taken again, so the call waits for it. */
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	struct timespec d = sync_deadline(200 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	holder_start(&h, &m, thread_id(), timespec_ns(&d));
	atomic_store(&h.arriving, 1);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	ck_assert_int_eq(atomic_load(&h.unlocking), 1); /* not before */
	check_held_then_unlock(&m);
	holder_finish(&h);
	ck_assert_int_lt(h.took_at, timespec_ns(&d));
	ck_assert(h.saw_sleeper);
}
END_TEST

START_TEST(timedwait_returns_zero_when_signalled_before_deadline)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, &d, false, false), 0);
	ck_assert_int_lt(now_ns(), timespec_ns(&d));
	check_held_then_unlock(&m);
}
END_TEST

/* ---- wait, signal, broadcast ------------------------------------------- */

START_TEST(wait_returns_zero_with_mutex_held_after_signal)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, NULL, false, false), 0);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(wait_returns_zero_with_mutex_held_after_broadcast)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, NULL, true, false), 0);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(wait_releases_mutex_while_waiting)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, 1, WAIT_LIMIT_NS, true);
	ck_assert_int_eq(sync_mutex_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	group_release(&g, false);
	group_finish(&g, 0);
}
END_TEST

START_TEST(signal_from_outside_the_mutex_wakes_waiter)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, NULL, false, true), 0);
	check_held_then_unlock(&m);
}
END_TEST

START_TEST(broadcast_from_outside_the_mutex_wakes_waiter)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, NULL, true, true), 0);
	check_held_then_unlock(&m);
}
END_TEST

#define WAITERS 3

START_TEST(signal_wakes_at_least_one_of_three_waiters)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	/* one wait each, no loop: whoever returns was woken (or spuriously) */
	group_start(&g, &c, &m, WAITERS, WAIT_LIMIT_NS, false);
	ck_assert_int_eq(sync_cond_signal(&c), 0);
	ck_assert_msg(wait_until_at_least(&g.returned, 1), "signal woke nobody");
	ck_assert_int_eq(sync_cond_broadcast(&c), 0); /* the rest */
	ck_assert(wait_until_equal(&g.returned, WAITERS));
	group_finish(&g, 0); /* none timed out: the first came back on the signal */
}
END_TEST

START_TEST(broadcast_wakes_all_three_waiters)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, WAITERS, WAIT_LIMIT_NS, false);
	ck_assert_int_eq(sync_cond_broadcast(&c), 0);
	ck_assert_msg(wait_until_equal(&g.returned, WAITERS), "broadcast woke %d of %d",
		      atomic_load(&g.returned), WAITERS);
	group_finish(&g, 0);
	for (int i = 0; i < WAITERS; i++)
		ck_assert_int_lt(g.w[i].returned_at, g.w[i].deadline_ns);
}
END_TEST

START_TEST(broadcast_wakes_all_sleeping_waiters_of_untimed_wait)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, MAX_WAITERS, 0, true);
	group_wait_asleep(&g);
	group_release(&g, true);
	ck_assert_msg(wait_until_equal(&g.returned, MAX_WAITERS), "broadcast woke %d of %d",
		      atomic_load(&g.returned), MAX_WAITERS);
	group_finish(&g, 0);
}
END_TEST

START_TEST(broadcast_hands_mutex_to_woken_waiters_one_at_a_time)
{
	/* Each woken waiter holds the mutex for 1 ms and checks nobody else
	 * does: all must come back holding it, in turn. */
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, MAX_WAITERS, WAIT_LIMIT_NS, true);
	group_wait_asleep(&g);
	group_release(&g, true);
	ck_assert(wait_until_equal(&g.returned, MAX_WAITERS));
	group_finish(&g, 0); /* checks `alone` for each */
}
END_TEST

START_TEST(signals_wake_every_waiter_one_per_signal)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, WAITERS, WAIT_LIMIT_NS, false);
	for (int i = 1; i <= WAITERS; i++) {
		ck_assert_int_eq(sync_cond_signal(&c), 0);
		ck_assert_msg(wait_until_at_least(&g.returned, i), "signal %d woke nobody", i);
	}
	ck_assert(wait_until_equal(&g.returned, WAITERS));
	group_finish(&g, 0);
}
END_TEST

START_TEST(broadcast_with_pshared_mutex_wakes_all_waiters)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	struct group g;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_PSHARED), 0);
	group_start(&g, &c, &m, WAITERS, WAIT_LIMIT_NS, true);
	group_release(&g, true);
	ck_assert(wait_until_equal(&g.returned, WAITERS));
	group_finish(&g, 0);
}
END_TEST

START_TEST(broadcast_on_pshared_cond_wakes_all_waiting_threads)
{
	sync_cond_t c;
	sync_mutex_t m;
	struct group g;
	ck_assert_int_eq(sync_cond_init(&c, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_PSHARED), 0);
	group_start(&g, &c, &m, WAITERS, WAIT_LIMIT_NS, true);
	group_release(&g, true);
	ck_assert(wait_until_equal(&g.returned, WAITERS));
	group_finish(&g, 0);
}
END_TEST

START_TEST(signal_with_no_waiters_returns_zero_and_is_not_remembered)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_cond_signal(&c), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	struct timespec d = sync_deadline(30 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	ck_assert_int_ge(now_ns(), timespec_ns(&d));
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(broadcast_with_no_waiters_returns_zero_and_is_not_remembered)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_cond_broadcast(&c), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	struct timespec d = sync_deadline(30 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	ck_assert_int_ge(now_ns(), timespec_ns(&d));
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(signal_after_waiter_timed_out_is_not_remembered)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(10 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	while (sync_cond_timedwait(&c, &m, &d) == 0)
		;
	ck_assert_int_eq(sync_cond_signal(&c), 0);
	d = sync_deadline(30 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

#define HANDOFFS 200

struct handoff {
	sync_cond_t c;
	sync_mutex_t m;
	int flag; /* protected by m */
	int errors;
	atomic_int waiter_tid;
	atomic_int arriving;
	atomic_int taken;
};

static void *handoff_waiter(void *arg)
{
	struct handoff *ho = arg;
	atomic_store(&ho->waiter_tid, thread_id());
	for (int i = 1; i <= HANDOFFS; i++) {
		if (sync_mutex_lock(&ho->m) != 0)
			return NULL;
		/* from here on, the only place this thread can sleep is the wait */
		atomic_store(&ho->arriving, i);
		while (ho->flag != i)
			if (sync_cond_wait(&ho->c, &ho->m) != 0)
				ho->errors++;
		atomic_store(&ho->taken, i);
		if (sync_mutex_unlock(&ho->m) != 0)
			ho->errors++;
	}
	return NULL;
}

START_TEST(signal_wakes_sleeping_waiter_every_time)
{
	/* The waiter sleeps in sync_cond_wait each time the main thread
	 * signals; a lost wake-up leaves it asleep and the test fails. */
	static struct handoff ho = { .c = SYNC_COND_INITIALIZER, .m = SYNC_MUTEX_INITIALIZER };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, handoff_waiter, &ho), 0);
	for (int i = 1; i <= HANDOFFS; i++) {
		ck_assert(wait_until_equal(&ho.arriving, i));
		ck_assert_msg(wait_until_asleep(atomic_load(&ho.waiter_tid)),
			      "hand-off %d: waiter never slept", i);
		ck_assert_int_eq(sync_mutex_lock(&ho.m), 0);
		ho.flag = i;
		ck_assert_int_eq(i % 2 ? sync_cond_signal(&ho.c) : sync_cond_broadcast(&ho.c), 0);
		ck_assert_int_eq(sync_mutex_unlock(&ho.m), 0);
		ck_assert_msg(wait_until_equal(&ho.taken, i), "hand-off %d: waiter was not woken", i);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(ho.errors, 0);
	ck_assert_int_eq(sync_cond_destroy(&ho.c), 0);
}
END_TEST

/* ---- destroy ----------------------------------------------------------- */

START_TEST(destroy_of_idle_cond_returns_zero)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	ck_assert_int_eq(sync_cond_signal(&c), 0);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(destroyed_cond_can_be_initialised_again)
{
	sync_cond_t c;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_cond_init(&c, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	ck_assert_int_eq(sync_cond_init(&c, 0), 0);
	check_usable(&c, &m);
}
END_TEST

START_TEST(destroy_while_thread_waits_returns_ebusy)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, 1, 0, true);
	ck_assert_int_eq(sync_cond_destroy(&c), EBUSY);
	/* and changes nothing: the waiter still wakes on a signal */
	ck_assert_int_eq(atomic_load(&g.returned), 0);
	group_release(&g, false);
	ck_assert(wait_until_equal(&g.returned, 1));
	group_finish(&g, 0);
}
END_TEST

START_TEST(destroy_while_thread_sleeps_in_timedwait_returns_ebusy)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, 1, WAIT_LIMIT_NS, true);
	group_wait_asleep(&g);
	ck_assert_int_eq(sync_cond_destroy(&c), EBUSY);
	group_release(&g, false);
	group_finish(&g, 0);
}
END_TEST

START_TEST(destroy_after_waiter_was_signalled_and_joined_returns_zero)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, 1, 0, true);
	group_release(&g, false);
	group_finish(&g, 0);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(destroy_after_broadcast_waiters_were_joined_returns_zero)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, WAITERS, 0, true);
	group_release(&g, true);
	group_finish(&g, 0);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

START_TEST(destroy_after_timedwait_timed_out_returns_zero)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(10 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	while (sync_cond_timedwait(&c, &m, &d) == 0)
		;
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

/* POSIX: a condition variable may be destroyed as soon as no thread is
 * blocked on it, e.g. right after a broadcast, while the woken waiters are
 * still on their way out (LTP pthread_cond_destroy/2-1). */
START_TEST(destroy_right_after_broadcast_and_unlock_returns_zero)
{
	for (int round = 0; round < 20; round++) {
		sync_cond_t c = SYNC_COND_INITIALIZER;
		sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
		struct group g;
		group_start(&g, &c, &m, 3, 0, true);
		group_wait_asleep(&g);
		group_release(&g, true);
		ck_assert_int_eq(sync_cond_destroy(&c), 0);
		group_finish(&g, 0);
	}
}
END_TEST

START_TEST(destroy_right_after_signal_to_only_waiter_returns_zero)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	group_start(&g, &c, &m, 1, 0, true);
	group_wait_asleep(&g);
	group_release(&g, false);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
	group_finish(&g, 0);
}
END_TEST

/* A waiter that came after the last signal is blocked: still EBUSY. */
START_TEST(destroy_with_waiter_that_came_after_a_signal_returns_ebusy)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group first, second;
	group_start(&first, &c, &m, 1, 0, true);
	group_release(&first, false);
	group_finish(&first, 0);
	group_start(&second, &c, &m, 1, 0, true);
	group_wait_asleep(&second);
	ck_assert_int_eq(sync_cond_destroy(&c), EBUSY);
	group_release(&second, false);
	group_finish(&second, 0);
}
END_TEST

/* ---- cancellation ------------------------------------------------------ */

struct cancel_target {
	sync_cond_t *c;
	sync_mutex_t *m;
	bool timed;
	int *predicate; /* under m */
	bool cancel_first; /* wait to be cancelled before calling the wait */
	atomic_int cancel_sent;
	atomic_int tid;
	atomic_int in_cleanup;
	atomic_int woken; /* waits that returned 0 */
	int cleanup_unlock; /* sync_mutex_unlock in the cleanup handler */
};

static void unlock_in_cleanup(void *arg)
{
	struct cancel_target *t = arg;
	atomic_store(&t->in_cleanup, 1);
	t->cleanup_unlock = sync_mutex_unlock(t->m);
}

static void *wait_until_cancelled(void *arg)
{
	struct cancel_target *t = arg;
	atomic_store(&t->tid, thread_id());
	struct timespec d = sync_deadline(10 * WAIT_LIMIT_NS);
	t->cleanup_unlock = -1;
	if (t->cancel_first) {
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		wait_until_equal(&t->cancel_sent, 1);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	}
	if (sync_mutex_lock(t->m) != 0)
		return NULL;
	pthread_cleanup_push(unlock_in_cleanup, t);
	while (!*t->predicate) {
		int r = t->timed ? sync_cond_timedwait(t->c, t->m, &d)
				 : sync_cond_wait(t->c, t->m);
		if (r)
			break;
		atomic_fetch_add(&t->woken, 1);
	}
	pthread_cleanup_pop(1);
	return NULL;
}

/* Joins t, failing instead of hanging if it does not end. */
static void *join_within_limit(pthread_t t)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_LIMIT_NS / (1000 * NS_PER_MS);
	void *ret = NULL;
	ck_assert_msg(pthread_timedjoin_np(t, &ret, &until) == 0,
		      "the thread did not end");
	return ret;
}

static void check_cancel_of_sleeper(bool timed, int flags)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	int predicate = 0;
	ck_assert_int_eq(sync_mutex_init(&m, flags), 0);
	struct cancel_target t = { .c = &c, .m = &m, .timed = timed,
				   .predicate = &predicate };
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, wait_until_cancelled, &t), 0);
	ck_assert(wait_until_at_least(&t.tid, 1));
	ck_assert(wait_until_asleep(atomic_load(&t.tid)));
	ck_assert_int_eq(pthread_cancel(thread), 0);
	ck_assert(join_within_limit(thread) == PTHREAD_CANCELED);
	ck_assert_int_eq(atomic_load(&t.in_cleanup), 1);
	ck_assert_int_eq(t.cleanup_unlock, 0); /* it held the mutex there */
	ck_assert_int_eq(sync_cond_destroy(&c), 0); /* no waiter left behind */
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
}

/* LTP pthread_cond_wait/2-3: a cancelled waiter's cleanup handlers run
 * with the mutex held again. */
START_TEST(cancelled_wait_runs_cleanup_holding_the_mutex)
{
	check_cancel_of_sleeper(false, SYNC_MUTEX_ERRORCHECK);
}
END_TEST

/* LTP pthread_cond_timedwait/2-6. */
START_TEST(cancelled_timedwait_runs_cleanup_holding_the_mutex)
{
	check_cancel_of_sleeper(true, SYNC_MUTEX_ERRORCHECK);
}
END_TEST

START_TEST(cancelled_wait_with_plain_mutex_leaves_it_usable)
{
	check_cancel_of_sleeper(false, 0);
}
END_TEST

/* A signal sent while two threads wait, one of which is being cancelled,
 * still reaches the other: the cancelled one never swallows it. When the
 * signal is sent first, it may wake the doomed thread before the
 * cancellation arrives: that thread then returns from its wait (a wake-up
 * it was entitled to; its own predicate sends it back to wait, where the
 * cancellation acts) and a second signal is the other's. */
START_TEST(cancelled_waiter_does_not_swallow_a_signal)
{
	for (int round = 0; round < 40; round++) {
		sync_cond_t c = SYNC_COND_INITIALIZER;
		sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
		int predicate = 0;
		struct cancel_target doomed = { .c = &c, .m = &m, .predicate = &predicate };
		struct group g;
		group_start(&g, &c, &m, 1, 0, true);
		pthread_t thread;
		ck_assert_int_eq(pthread_create(&thread, NULL, wait_until_cancelled, &doomed), 0);
		ck_assert(wait_until_at_least(&doomed.tid, 1));
		ck_assert(wait_until_asleep(atomic_load(&doomed.tid)));
		group_wait_asleep(&g);
		ck_assert_int_eq(sync_mutex_lock(&m), 0);
		g.predicate = 1;
		ck_assert_int_eq(sync_mutex_unlock(&m), 0);
		if (round & 1)
			ck_assert_int_eq(pthread_cancel(thread), 0);
		ck_assert_int_eq(sync_cond_signal(&c), 0);
		if (!(round & 1))
			ck_assert_int_eq(pthread_cancel(thread), 0);
		ck_assert(join_within_limit(thread) == PTHREAD_CANCELED);
		if (atomic_load(&doomed.woken)) {
			ck_assert_int_eq(sync_cond_signal(&c), 0);
		}
		ck_assert(wait_until_equal(&g.returned, 1));
		group_finish(&g, 0);
		ck_assert_int_eq(sync_cond_destroy(&c), 0);
	}
}
END_TEST

/* A cancellation pending when the wait is called acts there, with the
 * mutex held, before the wait releases it. */
START_TEST(wait_with_cancellation_pending_acts_holding_the_mutex)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	int predicate = 0;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	struct cancel_target t = { .c = &c, .m = &m, .predicate = &predicate,
				   .cancel_first = true };
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, wait_until_cancelled, &t), 0);
	ck_assert_int_eq(pthread_cancel(thread), 0);
	atomic_store(&t.cancel_sent, 1);
	ck_assert(join_within_limit(thread) == PTHREAD_CANCELED);
	ck_assert_int_eq(t.cleanup_unlock, 0);
	ck_assert_int_eq(sync_cond_destroy(&c), 0);
}
END_TEST

/* ---- errno ------------------------------------------------------------- */

START_TEST(timedwait_that_times_out_leaves_errno_alone)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(5 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	errno = EILSEQ;
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	ck_assert_int_eq(errno, EILSEQ);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

/* ---- signals (EINTR) --------------------------------------------------- */

/* A wait may come back early (a spurious wake-up returns 0), but never with
 * EINTR: each waiter loops on the predicate and stops on any non-zero. */
START_TEST(wait_interrupted_by_signal_never_returns_eintr)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	catch_signal_without_restart(SIGUSR1);
	group_start(&g, &c, &m, 1, 0, true);
	group_wait_asleep(&g);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(interrupt_sleeper(g.w[0].thread, atomic_load(&g.w[0].tid), SIGUSR1),
			      "signal %d: waiter did not go back to sleep", i);
		ck_assert_int_eq(atomic_load(&g.returned), 0);
	}
	group_release(&g, false);
	ck_assert(wait_until_equal(&g.returned, 1));
	group_finish(&g, 0);
}
END_TEST

START_TEST(timedwait_interrupted_by_signal_keeps_waiting_until_signalled)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	catch_signal_without_restart(SIGUSR1);
	group_start(&g, &c, &m, 1, WAIT_LIMIT_NS, true);
	group_wait_asleep(&g);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(interrupt_sleeper(g.w[0].thread, atomic_load(&g.w[0].tid), SIGUSR1),
			      "signal %d: waiter did not go back to sleep", i);
		ck_assert_int_eq(atomic_load(&g.returned), 0);
	}
	group_release(&g, true);
	ck_assert(wait_until_equal(&g.returned, 1));
	group_finish(&g, 0);
}
END_TEST

START_TEST(timedwait_interrupted_by_signal_times_out_not_before_deadline)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct group g;
	catch_signal_without_restart(SIGUSR1);
	group_start(&g, &c, &m, 1, 300 * NS_PER_MS, true);
	group_wait_asleep(&g);
	ck_assert(interrupt_sleeper(g.w[0].thread, atomic_load(&g.w[0].tid), SIGUSR1));
	group_finish(&g, ETIMEDOUT);
	ck_assert_int_ge(g.w[0].returned_at, g.w[0].deadline_ns);
	ck_assert_int_ge(caught_signals(), 1);
}
END_TEST

/* ---- ERRORCHECK mutex -------------------------------------------------- */

/* The caller owns the error-checking m: a relock is EDEADLK, another
 * thread's unlock is EPERM, its own unlock frees it, once. */
static void check_owned_then_unlock(sync_mutex_t *m)
{
	ck_assert_int_eq(sync_mutex_lock(m), EDEADLK);
	ck_assert_int_eq(other_thread_unlock(m), EPERM);
	ck_assert_int_eq(other_thread_trylock(m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
	ck_assert_int_eq(sync_mutex_unlock(m), EPERM);
}

START_TEST(wait_with_errorcheck_mutex_returns_owning_it)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, NULL, false, false), 0);
	check_owned_then_unlock(&m);
}
END_TEST

START_TEST(wait_with_errorcheck_mutex_returns_owning_it_after_broadcast)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(wait_for_signaller(&c, &m, NULL, true, false), 0);
	check_owned_then_unlock(&m);
}
END_TEST

START_TEST(timedwait_timing_out_with_errorcheck_mutex_returns_owning_it)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&c, &m, &d)) == 0)
		;
	ck_assert_int_eq(r, ETIMEDOUT);
	check_owned_then_unlock(&m);
}
END_TEST

START_TEST(errorcheck_mutex_can_be_owned_by_other_thread_during_wait)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	struct group g;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	group_start(&g, &c, &m, 1, WAIT_LIMIT_NS, true);
	ck_assert_int_eq(sync_mutex_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), EDEADLK); /* owner is this thread now */
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	group_release(&g, false);
	group_finish(&g, 0);
}
END_TEST

START_TEST(broadcast_with_errorcheck_mutex_gives_each_woken_waiter_ownership)
{
	sync_cond_t c = SYNC_COND_INITIALIZER;
	sync_mutex_t m;
	struct group g;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	group_start(&g, &c, &m, WAITERS, WAIT_LIMIT_NS, true);
	g.errorcheck = true; /* read by the waiters only after the wait */
	group_wait_asleep(&g);
	group_release(&g, true);
	ck_assert(wait_until_equal(&g.returned, WAITERS));
	group_finish(&g, 0); /* each relock: EDEADLK, each unlock: 0 */
	ck_assert_int_eq(other_thread_trylock(&m), 0);
}
END_TEST

/* ---- between processes (SYNC_PSHARED) ---------------------------------- */

#define CHILDREN 3

/* State shared with forked children: a MAP_SHARED anonymous mapping. */
struct shared {
	sync_cond_t c;
	sync_mutex_t m;     /* SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK */
	int predicate;      /* protected by m */
	int tickets;        /* protected by m */
	int turn;           /* protected by m */
	atomic_int waiting; /* children that reached the wait, counted under m */
	atomic_int next_child;
	int results[CHILDREN][3];
};

static struct shared *shared_create(void)
{
	struct shared *sh = map_shared(sizeof *sh);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(sync_cond_init(&sh->c, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_init(&sh->m, SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK), 0);
	for (int i = 0; i < CHILDREN; i++)
		for (int j = 0; j < 3; j++)
			sh->results[i][j] = -1;
	return sh;
}

static void shared_destroy(struct shared *sh)
{
	ck_assert_int_eq(munmap(sh, sizeof *sh), 0);
}

static pid_t fork_child(int (*fn)(void *), struct shared *sh)
{
	pid_t pid = fork_running(fn, sh);
	ck_assert_int_ge(pid, 0);
	return pid;
}

/* Locks m, waits until the predicate holds, checks it still owns m, and
 * records: the last wait's result, the relock's (EDEADLK), the unlock's. */
static int child_wait_for_predicate(struct shared *sh, int i)
{
	if (sync_mutex_lock(&sh->m) != 0)
		return 10;
	atomic_fetch_add(&sh->waiting, 1);
	int r;
	do
		r = sync_cond_wait(&sh->c, &sh->m);
	while (r == 0 && !sh->predicate);
	sh->results[i][0] = r;
	sh->results[i][1] = sync_mutex_lock(&sh->m);
	sh->results[i][2] = sync_mutex_unlock(&sh->m);
	return r;
}

static int child_waits(void *arg)
{
	struct shared *sh = arg;
	return child_wait_for_predicate(sh, atomic_fetch_add(&sh->next_child, 1));
}

/* Every other child maps the shared state at another address first. */
static int child_maybe_moves_then_waits(void *arg)
{
	struct shared *sh = arg;
	int i = atomic_fetch_add(&sh->next_child, 1);
	if (i % 2 == 0) {
		struct shared *view = move_mapping(sh, sizeof *sh);
		if (view == MAP_FAILED || view == sh)
			return 100;
		sh = view;
	}
	return child_wait_for_predicate(sh, i);
}

/* Forks n children running fn, returns once all wait on the cond. */
static void start_children(struct shared *sh, pid_t *pid, int n, int (*fn)(void *))
{
	for (int i = 0; i < n; i++)
		pid[i] = fork_child(fn, sh);
	ck_assert(wait_until_equal(&sh->waiting, n));
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
}

static void release_children(struct shared *sh, bool broadcast)
{
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	sh->predicate = 1;
	ck_assert_int_eq(broadcast ? sync_cond_broadcast(&sh->c) : sync_cond_signal(&sh->c), 0);
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
}

static void finish_children(struct shared *sh, pid_t *pid, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(child_status(pid[i]), 0);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(sh->results[i][0], 0);
		ck_assert_int_eq(sh->results[i][1], EDEADLK); /* owned it on return */
		ck_assert_int_eq(sh->results[i][2], 0);
	}
	ck_assert_int_eq(sync_cond_destroy(&sh->c), 0);
}

START_TEST(pshared_signal_wakes_waiter_in_other_process)
{
	struct shared *sh = shared_create();
	pid_t pid[1];
	start_children(sh, pid, 1, child_waits);
	ck_assert_msg(wait_until_asleep(pid[0]), "child never slept in wait");
	release_children(sh, false);
	finish_children(sh, pid, 1);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_broadcast_wakes_waiters_in_three_processes)
{
	struct shared *sh = shared_create();
	pid_t pid[CHILDREN];
	start_children(sh, pid, CHILDREN, child_waits);
	release_children(sh, true);
	finish_children(sh, pid, CHILDREN);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_signal_wakes_waiter_that_maps_cond_at_other_address)
{
	struct shared *sh = shared_create();
	pid_t pid[1];
	start_children(sh, pid, 1, child_maybe_moves_then_waits); /* child 0 moves */
	ck_assert_msg(wait_until_asleep(pid[0]), "child never slept in wait");
	release_children(sh, false);
	finish_children(sh, pid, 1);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_broadcast_wakes_processes_that_map_cond_at_different_addresses)
{
	struct shared *sh = shared_create();
	pid_t pid[CHILDREN];
	start_children(sh, pid, CHILDREN, child_maybe_moves_then_waits);
	release_children(sh, true);
	finish_children(sh, pid, CHILDREN);
	shared_destroy(sh);
}
END_TEST

static int child_takes_ticket(void *arg)
{
	struct shared *sh = arg;
	if (sync_mutex_lock(&sh->m) != 0)
		return 10;
	atomic_fetch_add(&sh->waiting, 1);
	while (sh->tickets == 0) {
		int r = sync_cond_wait(&sh->c, &sh->m);
		if (r != 0)
			return r;
	}
	sh->tickets--;
	return sync_mutex_unlock(&sh->m);
}

START_TEST(pshared_signals_wake_three_waiting_processes_one_ticket_each)
{
	struct shared *sh = shared_create();
	pid_t pid[CHILDREN];
	start_children(sh, pid, CHILDREN, child_takes_ticket);
	for (int i = 0; i < CHILDREN; i++) {
		ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
		sh->tickets++;
		ck_assert_int_eq(sync_cond_signal(&sh->c), 0);
		ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
	}
	for (int i = 0; i < CHILDREN; i++)
		ck_assert_int_eq(child_status(pid[i]), 0);
	ck_assert_int_eq(sh->tickets, 0);
	ck_assert_int_eq(sync_cond_destroy(&sh->c), 0);
	shared_destroy(sh);
}
END_TEST

static int child_timedwait_50ms(void *arg)
{
	struct shared *sh = arg;
	if (sync_mutex_lock(&sh->m) != 0)
		return 10;
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	int r;
	while ((r = sync_cond_timedwait(&sh->c, &sh->m, &d)) == 0)
		;
	int64_t late = now_ns() - timespec_ns(&d);
	sh->results[0][0] = r;
	sh->results[0][1] = sync_mutex_lock(&sh->m);
	sh->results[0][2] = sync_mutex_unlock(&sh->m);
	return late >= 0 && late < 2000 * NS_PER_MS ? 0 : 20;
}

START_TEST(pshared_timedwait_in_other_process_times_out_owning_the_mutex)
{
	struct shared *sh = shared_create();
	ck_assert_int_eq(child_status(fork_child(child_timedwait_50ms, sh)), 0);
	ck_assert_int_eq(sh->results[0][0], ETIMEDOUT);
	ck_assert_int_eq(sh->results[0][1], EDEADLK);
	ck_assert_int_eq(sh->results[0][2], 0);
	ck_assert_int_eq(sync_cond_destroy(&sh->c), 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_destroy_returns_ebusy_while_other_process_waits)
{
	struct shared *sh = shared_create();
	pid_t pid[1];
	start_children(sh, pid, 1, child_waits);
	ck_assert_int_eq(sync_cond_destroy(&sh->c), EBUSY);
	release_children(sh, false);
	finish_children(sh, pid, 1); /* destroy: 0 once it left */
	shared_destroy(sh);
}
END_TEST

#define PING_PONGS 1000

/* Parent takes the odd turns, the child the even ones; each waits for its
 * turn on the one cond and broadcasts when it passes the turn on. */
static int take_turns(struct shared *sh, int parity, bool timed)
{
	for (int t = parity; t < 2 * PING_PONGS; t += 2) {
		struct timespec d = sync_deadline(WAIT_LIMIT_NS);
		if (sync_mutex_lock(&sh->m) != 0)
			return 1;
		while (sh->turn != t) {
			int r = timed ? sync_cond_timedwait(&sh->c, &sh->m, &d)
				      : sync_cond_wait(&sh->c, &sh->m);
			if (r != 0) {
				sync_mutex_unlock(&sh->m);
				return r;
			}
		}
		sh->turn = t + 1;
		if (sync_cond_broadcast(&sh->c) != 0 || sync_mutex_unlock(&sh->m) != 0)
			return 2;
	}
	return 0;
}

static int child_takes_even_turns(void *arg)
{
	return take_turns(arg, 0, false);
}

START_TEST(pshared_cond_ping_pong_between_processes_loses_no_wakeup)
{
	struct shared *sh = shared_create();
	pid_t pid = fork_child(child_takes_even_turns, sh);
	ck_assert_int_eq(take_turns(sh, 1, true), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->turn, 2 * PING_PONGS);
	shared_destroy(sh);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cond");

	TCase *tc = tcase_create("init");
	tcase_add_test(tc, initializer_gives_usable_cond_without_waiters);
	tcase_add_test(tc, init_with_no_flags_gives_usable_cond_without_waiters);
	tcase_add_test(tc, init_with_pshared_gives_usable_cond_without_waiters);
	tcase_add_test(tc, init_rejects_mutex_errorcheck_flag_and_changes_nothing);
	tcase_add_test(tc, init_rejects_rwlock_prefer_reader_flag_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_0x100_and_changes_nothing);
	tcase_add_test(tc, init_rejects_all_bits_set_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_next_to_pshared);
	tcase_add_test(tc, cond_is_32_bytes_on_lp64);
	suite_add_tcase(s, tc);

	tc = tcase_create("null");
	tcase_add_test(tc, init_of_null_cond_returns_einval);
	tcase_add_test(tc, destroy_of_null_cond_returns_einval);
	tcase_add_test(tc, wait_on_null_cond_returns_einval_and_keeps_mutex_held);
	tcase_add_test(tc, wait_with_null_mutex_returns_einval);
	tcase_add_test(tc, timedwait_on_null_cond_returns_einval_and_keeps_mutex_held);
	tcase_add_test(tc, timedwait_with_null_mutex_returns_einval);
	tcase_add_test(tc, signal_of_null_cond_returns_einval);
	tcase_add_test(tc, broadcast_of_null_cond_returns_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("ownership");
	tcase_add_test(tc, wait_with_unlocked_mutex_returns_eperm_at_once);
	tcase_add_test(tc, timedwait_with_unlocked_mutex_returns_eperm_at_once);
	tcase_add_test(tc, wait_with_unlocked_errorcheck_mutex_returns_eperm);
	tcase_add_test(tc, wait_with_errorcheck_mutex_held_by_other_thread_returns_eperm);
	tcase_add_test(tc, timedwait_with_errorcheck_mutex_held_by_other_thread_returns_eperm);
	tcase_add_test(tc, wait_with_unlocked_pshared_mutex_on_pshared_cond_returns_eperm);
	tcase_add_test(tc, wait_with_other_mutex_while_others_wait_returns_einval);
	tcase_add_test(tc, timedwait_with_other_mutex_while_others_wait_returns_einval);
	tcase_add_test(tc, wait_with_other_mutex_after_previous_waiters_left_is_allowed);
	suite_add_tcase(s, tc);

	tc = tcase_create("timedwait");
	tcase_add_test(tc, timedwait_with_null_abstime_returns_einval_and_keeps_mutex_held);
	tcase_add_test(tc, timedwait_with_negative_nsec_returns_einval_and_keeps_mutex_held);
	tcase_add_test(tc, timedwait_with_nsec_of_one_second_returns_einval_and_keeps_mutex_held);
	tcase_add_test(tc, timedwait_checks_abstime_before_mutex_ownership);
	tcase_add_test(tc, timedwait_without_signal_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, timedwait_that_timed_out_returns_with_mutex_held);
	tcase_add_test(tc, timedwait_with_deadline_zero_returns_etimedout_with_mutex_held);
	tcase_add_test(tc, timedwait_with_negative_seconds_returns_etimedout_with_mutex_held);
	tcase_add_test(tc, timedwait_with_deadline_of_now_returns_etimedout_with_mutex_held);
	tcase_add_test(tc, timedwait_timing_out_while_other_thread_holds_mutex_returns_after_its_unlock);
	tcase_add_test(tc, timedwait_returns_zero_when_signalled_before_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake");
	tcase_add_test(tc, wait_returns_zero_with_mutex_held_after_signal);
	tcase_add_test(tc, wait_returns_zero_with_mutex_held_after_broadcast);
	tcase_add_test(tc, wait_releases_mutex_while_waiting);
	tcase_add_test(tc, signal_from_outside_the_mutex_wakes_waiter);
	tcase_add_test(tc, broadcast_from_outside_the_mutex_wakes_waiter);
	tcase_add_test(tc, signal_wakes_at_least_one_of_three_waiters);
	tcase_add_test(tc, broadcast_wakes_all_three_waiters);
	tcase_add_test(tc, broadcast_wakes_all_sleeping_waiters_of_untimed_wait);
	tcase_add_test(tc, broadcast_hands_mutex_to_woken_waiters_one_at_a_time);
	tcase_add_test(tc, signals_wake_every_waiter_one_per_signal);
	tcase_add_test(tc, broadcast_with_pshared_mutex_wakes_all_waiters);
	tcase_add_test(tc, broadcast_on_pshared_cond_wakes_all_waiting_threads);
	tcase_add_test(tc, signal_with_no_waiters_returns_zero_and_is_not_remembered);
	tcase_add_test(tc, broadcast_with_no_waiters_returns_zero_and_is_not_remembered);
	tcase_add_test(tc, signal_after_waiter_timed_out_is_not_remembered);
	tcase_add_test(tc, signal_wakes_sleeping_waiter_every_time);
	suite_add_tcase(s, tc);

	tc = tcase_create("destroy");
	tcase_add_test(tc, destroy_of_idle_cond_returns_zero);
	tcase_add_test(tc, destroyed_cond_can_be_initialised_again);
	tcase_add_test(tc, destroy_while_thread_waits_returns_ebusy);
	tcase_add_test(tc, destroy_while_thread_sleeps_in_timedwait_returns_ebusy);
	tcase_add_test(tc, destroy_after_waiter_was_signalled_and_joined_returns_zero);
	tcase_add_test(tc, destroy_after_broadcast_waiters_were_joined_returns_zero);
	tcase_add_test(tc, destroy_after_timedwait_timed_out_returns_zero);
	tcase_add_test(tc, destroy_right_after_broadcast_and_unlock_returns_zero);
	tcase_add_test(tc, destroy_right_after_signal_to_only_waiter_returns_zero);
	tcase_add_test(tc, destroy_with_waiter_that_came_after_a_signal_returns_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_add_test(tc, cancelled_wait_runs_cleanup_holding_the_mutex);
	tcase_add_test(tc, cancelled_timedwait_runs_cleanup_holding_the_mutex);
	tcase_add_test(tc, cancelled_wait_with_plain_mutex_leaves_it_usable);
	tcase_add_test(tc, cancelled_waiter_does_not_swallow_a_signal);
	if (PENDING_CANCEL_UNWINDS) /* see util.h */
		tcase_add_test(tc, wait_with_cancellation_pending_acts_holding_the_mutex);
	suite_add_tcase(s, tc);

	tc = tcase_create("errno");
	tcase_add_test(tc, timedwait_that_times_out_leaves_errno_alone);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_test(tc, wait_interrupted_by_signal_never_returns_eintr);
	tcase_add_test(tc, timedwait_interrupted_by_signal_keeps_waiting_until_signalled);
	tcase_add_test(tc, timedwait_interrupted_by_signal_times_out_not_before_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("errorcheck");
	tcase_add_test(tc, wait_with_errorcheck_mutex_returns_owning_it);
	tcase_add_test(tc, wait_with_errorcheck_mutex_returns_owning_it_after_broadcast);
	tcase_add_test(tc, timedwait_timing_out_with_errorcheck_mutex_returns_owning_it);
	tcase_add_test(tc, errorcheck_mutex_can_be_owned_by_other_thread_during_wait);
	tcase_add_test(tc, broadcast_with_errorcheck_mutex_gives_each_woken_waiter_ownership);
	suite_add_tcase(s, tc);

	tc = tcase_create("pshared");
	tcase_add_test(tc, pshared_signal_wakes_waiter_in_other_process);
	tcase_add_test(tc, pshared_broadcast_wakes_waiters_in_three_processes);
	tcase_add_test(tc, pshared_signal_wakes_waiter_that_maps_cond_at_other_address);
	tcase_add_test(tc, pshared_broadcast_wakes_processes_that_map_cond_at_different_addresses);
	tcase_add_test(tc, pshared_signals_wake_three_waiting_processes_one_ticket_each);
	tcase_add_test(tc, pshared_timedwait_in_other_process_times_out_owning_the_mutex);
	tcase_add_test(tc, pshared_destroy_returns_ebusy_while_other_process_waits);
	tcase_add_test(tc, pshared_cond_ping_pong_between_processes_loses_no_wakeup);
	suite_add_tcase(s, tc);

	return s;
}
