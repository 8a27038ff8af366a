/* Unit tests for <sync/sem.h>: one behaviour of the contract per test. */
#define _GNU_SOURCE /* SIGUSR1, mmap and pthreads under strict -std modes */
#include <errno.h>
#include <limits.h>
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

/* The semaphore's value, as getvalue reports it. */
static int value_of(sync_sem_t *s)
{
	int v = -1;
	ck_assert_int_eq(sync_sem_getvalue(s, &v), 0);
	return v;
}

/* ---- one call in another thread ---------------------------------------- */

struct call {
	int (*fn)(sync_sem_t *);
	sync_sem_t *s;
	int result;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	c->result = c->fn(c->s);
	return NULL;
}

static int in_other_thread(int (*fn)(sync_sem_t *), sync_sem_t *s)
{
	struct call c = { fn, s, -1 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, call_main, &c), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	return c.result;
}

/* ---- a thread that sleeps in wait or timedwait ------------------------- */

struct waiter {
	sync_sem_t *s;
	int64_t timeout_ns; /* 0: sync_sem_wait; else timedwait, deadline this far */
	atomic_int *returned; /* counts waiters that came back */
	pthread_t thread;
	atomic_int tid;
	atomic_int arriving; /* set just before the wait */
	int result;
	int64_t deadline_ns;
	int64_t returned_at;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	atomic_store(&w->tid, thread_id());
	struct timespec d = sync_deadline((uint64_t)w->timeout_ns);
	w->deadline_ns = timespec_ns(&d);
	/* from here on, the only place this thread can sleep is the wait */
	atomic_store(&w->arriving, 1);
	w->result = w->timeout_ns ? sync_sem_timedwait(w->s, &d) : sync_sem_wait(w->s);
	w->returned_at = now_ns();
	atomic_fetch_add(w->returned, 1);
	return NULL;
}

/* Starts a thread that waits on s, and returns once it sleeps there. */
static void waiter_start(struct waiter *w, sync_sem_t *s, int64_t timeout_ns,
			 atomic_int *returned)
{
	w->s = s;
	w->timeout_ns = timeout_ns;
	w->returned = returned;
	atomic_init(&w->tid, 0);
	atomic_init(&w->arriving, 0);
	w->result = -1;
	ck_assert_int_eq(pthread_create(&w->thread, NULL, waiter_main, w), 0);
	ck_assert(wait_until_equal(&w->arriving, 1));
	ck_assert_msg(wait_until_asleep(atomic_load(&w->tid)), "waiter never slept");
}

/* Joins the waiter; its wait's result. */
static int waiter_finish(struct waiter *w)
{
	ck_assert_int_eq(pthread_join(w->thread, NULL), 0);
	return w->result;
}

/* ---- a thread that posts once the caller sleeps ------------------------ */

struct poster {
	sync_sem_t *s;
	pid_t sleeper;
	pthread_t thread;
	atomic_int arriving; /* set by the sleeper just before it waits */
	atomic_int posting;  /* set just before the post */
	int result;
	bool saw_sleeper;
};

static void *poster_main(void *arg)
{
	struct poster *p = arg;
	p->saw_sleeper = wait_until_equal(&p->arriving, 1) && wait_until_asleep(p->sleeper);
	sleep_ns(20 * NS_PER_MS);
	atomic_store(&p->posting, 1);
	p->result = sync_sem_post(p->s);
	return NULL;
}

/* Starts a thread that posts s 20 ms after the caller, once `arriving`,
 * sleeps. */
static void poster_start(struct poster *p, sync_sem_t *s)
{
	p->s = s;
	p->sleeper = thread_id();
	atomic_init(&p->arriving, 0);
	atomic_init(&p->posting, 0);
	p->result = -1;
	p->saw_sleeper = false;
	ck_assert_int_eq(pthread_create(&p->thread, NULL, poster_main, p), 0);
}

static void poster_finish(struct poster *p)
{
	ck_assert_int_eq(pthread_join(p->thread, NULL), 0);
	ck_assert_int_eq(p->result, 0);
	ck_assert(p->saw_sleeper);
}

/* ---- initialisation ---------------------------------------------------- */

/* init(s, value, flags) fails with EINVAL and leaves the value as it was. */
static void check_init_rejects(unsigned value, int flags)
{
	sync_sem_t s;
	ck_assert_int_eq(sync_sem_init(&s, 2, 0), 0);
	ck_assert_int_eq(sync_sem_init(&s, value, flags), EINVAL);
	ck_assert_int_eq(value_of(&s), 2);
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
	ck_assert_int_eq(sync_sem_trywait(&s), EAGAIN);
}

/* Fills s with a pattern no valid semaphore has, then initialises it. */
static void init_over_garbage(sync_sem_t *s, unsigned value, int flags)
{
	memset(s, 0xa5, sizeof *s);
	ck_assert_int_eq(sync_sem_init(s, value, flags), 0);
}

/* s holds exactly n units (n small): n trywaits succeed, the next fails. */
static void check_holds(sync_sem_t *s, int n)
{
	ck_assert_int_eq(value_of(s), n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(sync_sem_trywait(s), 0);
	ck_assert_int_eq(sync_sem_trywait(s), EAGAIN);
	ck_assert_int_eq(value_of(s), 0);
}

START_TEST(initializer_gives_semaphore_holding_its_value)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(3);
	check_holds(&s, 3);
}
END_TEST

START_TEST(initializer_of_zero_gives_empty_semaphore)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	check_holds(&s, 0);
}
END_TEST

START_TEST(initializer_of_value_max_gives_semaphore_at_value_max)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(SYNC_SEM_VALUE_MAX);
	ck_assert_int_eq(value_of(&s), INT_MAX);
	ck_assert_int_eq(sync_sem_post(&s), EOVERFLOW);
}
END_TEST

START_TEST(value_max_is_int_max)
{
	ck_assert_uint_eq(SYNC_SEM_VALUE_MAX, 2147483647u);
	ck_assert_uint_eq(SYNC_SEM_VALUE_MAX, (unsigned)INT_MAX);
}
END_TEST

START_TEST(init_with_no_flags_gives_semaphore_holding_its_value)
{
	sync_sem_t s;
	init_over_garbage(&s, 3, 0);
	check_holds(&s, 3);
}
END_TEST

START_TEST(init_with_zero_gives_empty_semaphore)
{
	sync_sem_t s;
	init_over_garbage(&s, 0, 0);
	check_holds(&s, 0);
}
END_TEST

START_TEST(init_with_pshared_gives_semaphore_holding_its_value)
{
	sync_sem_t s;
	init_over_garbage(&s, 3, SYNC_PSHARED);
	check_holds(&s, 3);
}
END_TEST

START_TEST(init_with_value_max_gives_semaphore_at_value_max)
{
	sync_sem_t s;
	init_over_garbage(&s, SYNC_SEM_VALUE_MAX, 0);
	ck_assert_int_eq(value_of(&s), INT_MAX);
	ck_assert_int_eq(sync_sem_post(&s), EOVERFLOW);
}
END_TEST

START_TEST(init_rejects_value_above_max_and_changes_nothing)
{
	check_init_rejects(SYNC_SEM_VALUE_MAX + 1u, 0);
}
END_TEST

START_TEST(init_rejects_uint_max_value_and_changes_nothing)
{
	check_init_rejects(UINT_MAX, 0);
}
END_TEST

START_TEST(init_rejects_mutex_errorcheck_flag_and_changes_nothing)
{
	check_init_rejects(1, SYNC_MUTEX_ERRORCHECK);
}
END_TEST

START_TEST(init_rejects_rwlock_prefer_reader_flag_and_changes_nothing)
{
	check_init_rejects(1, SYNC_RWLOCK_PREFER_READER);
}
END_TEST

START_TEST(init_rejects_unknown_bit_0x100_and_changes_nothing)
{
	check_init_rejects(1, 0x100);
}
END_TEST

START_TEST(init_rejects_all_bits_set_and_changes_nothing)
{
	check_init_rejects(1, -1);
}
END_TEST

START_TEST(init_rejects_unknown_bit_next_to_pshared)
{
	check_init_rejects(1, SYNC_PSHARED | 0x8);
}
END_TEST

START_TEST(sem_is_16_bytes)
{
	ck_assert_uint_eq(sizeof(sync_sem_t), 16);
}
END_TEST

/* ---- NULL arguments ---------------------------------------------------- */

START_TEST(init_of_null_semaphore_returns_einval)
{
	ck_assert_int_eq(sync_sem_init(NULL, 0, 0), EINVAL);
}
END_TEST

START_TEST(destroy_of_null_semaphore_returns_einval)
{
	ck_assert_int_eq(sync_sem_destroy(NULL), EINVAL);
}
END_TEST

START_TEST(wait_of_null_semaphore_returns_einval)
{
	ck_assert_int_eq(sync_sem_wait(NULL), EINVAL);
}
END_TEST

START_TEST(trywait_of_null_semaphore_returns_einval)
{
	ck_assert_int_eq(sync_sem_trywait(NULL), EINVAL);
}
END_TEST

START_TEST(timedwait_of_null_semaphore_returns_einval)
{
	struct timespec d = sync_deadline(NS_PER_MS);
	ck_assert_int_eq(sync_sem_timedwait(NULL, &d), EINVAL);
}
END_TEST

START_TEST(post_of_null_semaphore_returns_einval)
{
	ck_assert_int_eq(sync_sem_post(NULL), EINVAL);
}
END_TEST

START_TEST(getvalue_of_null_semaphore_returns_einval)
{
	int v = 42;
	ck_assert_int_eq(sync_sem_getvalue(NULL, &v), EINVAL);
	ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(getvalue_into_null_returns_einval)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	ck_assert_int_eq(sync_sem_getvalue(&s, NULL), EINVAL);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

/* ---- trywait, wait, post, getvalue ------------------------------------- */

START_TEST(trywait_of_positive_semaphore_takes_one_unit)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(2);
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

START_TEST(trywait_of_empty_semaphore_returns_eagain_and_keeps_value)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	ck_assert_int_eq(sync_sem_trywait(&s), EAGAIN);
	ck_assert_int_eq(value_of(&s), 0);
	/* and takes nothing from a later post */
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(value_of(&s), 1);
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
}
END_TEST

START_TEST(wait_of_positive_semaphore_takes_one_unit_at_once)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(2);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_sem_wait(&s), 0);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

START_TEST(post_adds_one_unit)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(value_of(&s), 1);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	check_holds(&s, 2);
}
END_TEST

START_TEST(post_from_other_thread_adds_unit_this_thread_can_take)
{
	/* no ownership: any thread may post */
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	ck_assert_int_eq(in_other_thread(sync_sem_post, &s), 0);
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
}
END_TEST

START_TEST(trywait_from_other_thread_takes_unit_this_thread_posted)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(in_other_thread(sync_sem_trywait, &s), 0);
	ck_assert_int_eq(in_other_thread(sync_sem_trywait, &s), EAGAIN);
}
END_TEST

START_TEST(post_at_value_max_returns_eoverflow_and_keeps_value)
{
	sync_sem_t s;
	ck_assert_int_eq(sync_sem_init(&s, SYNC_SEM_VALUE_MAX, 0), 0);
	ck_assert_int_eq(sync_sem_post(&s), EOVERFLOW);
	ck_assert_int_eq(value_of(&s), INT_MAX);
	/* still usable: one unit out, one in */
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
	ck_assert_int_eq(value_of(&s), INT_MAX - 1);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(value_of(&s), INT_MAX);
}
END_TEST

START_TEST(post_just_below_value_max_reaches_value_max)
{
	sync_sem_t s;
	ck_assert_int_eq(sync_sem_init(&s, SYNC_SEM_VALUE_MAX - 1u, 0), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(value_of(&s), INT_MAX);
	ck_assert_int_eq(sync_sem_post(&s), EOVERFLOW);
	ck_assert_int_eq(value_of(&s), INT_MAX);
}
END_TEST

START_TEST(getvalue_reports_current_value)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(5);
	ck_assert_int_eq(value_of(&s), 5);
	ck_assert_int_eq(sync_sem_trywait(&s), 0);
	ck_assert_int_eq(value_of(&s), 4);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(value_of(&s), 6);
}
END_TEST

START_TEST(getvalue_with_sleeping_waiters_reports_zero_not_negative)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w[2];
	waiter_start(&w[0], &s, 0, &returned);
	waiter_start(&w[1], &s, 0, &returned);
	ck_assert_int_eq(value_of(&s), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 2));
	ck_assert_int_eq(waiter_finish(&w[0]), 0);
	ck_assert_int_eq(waiter_finish(&w[1]), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

/* ---- destroy ----------------------------------------------------------- */

START_TEST(destroy_of_idle_semaphore_returns_zero)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(sync_sem_wait(&s), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

START_TEST(destroy_of_semaphore_holding_units_returns_zero)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(7);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

START_TEST(destroyed_semaphore_can_be_initialised_again)
{
	sync_sem_t s;
	ck_assert_int_eq(sync_sem_init(&s, 4, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
	ck_assert_int_eq(sync_sem_init(&s, 1, 0), 0);
	check_holds(&s, 1);
}
END_TEST

START_TEST(destroy_while_thread_sleeps_in_wait_returns_ebusy)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, &s, 0, &returned);
	ck_assert_int_eq(sync_sem_destroy(&s), EBUSY);
	/* and changes nothing: the sleeper is still there and a post wakes it */
	ck_assert_int_eq(atomic_load(&returned), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&w), 0);
}
END_TEST

START_TEST(destroy_while_thread_sleeps_in_timedwait_returns_ebusy)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, &s, WAIT_LIMIT_NS, &returned);
	ck_assert_int_eq(sync_sem_destroy(&s), EBUSY);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&w), 0);
}
END_TEST

START_TEST(destroy_after_woken_waiter_left_returns_zero)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, &s, 0, &returned);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

START_TEST(destroy_after_timedwait_timed_out_returns_zero)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

/* ---- timedwait: bad deadlines ------------------------------------------ */

START_TEST(timedwait_with_null_abstime_returns_einval_even_when_available)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	ck_assert_int_eq(sync_sem_timedwait(&s, NULL), EINVAL);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

START_TEST(timedwait_with_negative_nsec_returns_einval_even_when_available)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = -1;
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), EINVAL);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

START_TEST(timedwait_with_nsec_of_one_second_returns_einval_even_when_available)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = 1000000000L;
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), EINVAL);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

START_TEST(timedwait_with_bad_abstime_on_empty_semaphore_returns_einval_at_once)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = 1000000000L;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_int_eq(sync_sem_destroy(&s), 0); /* nobody left waiting */
}
END_TEST

/* ---- timedwait: deadlines already past --------------------------------- */

START_TEST(timedwait_with_deadline_of_now_takes_available_unit)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(timedwait_with_deadline_zero_takes_available_unit)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(timedwait_with_negative_seconds_takes_available_unit)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(timedwait_with_deadline_zero_on_empty_semaphore_returns_etimedout)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(timedwait_with_negative_seconds_on_empty_semaphore_returns_etimedout)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(timedwait_with_very_negative_seconds_on_empty_semaphore_returns_etimedout)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = { -1000000, 999999999L };
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
}
END_TEST

/* ---- timedwait: waiting ------------------------------------------------ */

START_TEST(timedwait_on_empty_semaphore_returns_etimedout_not_before_deadline)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	int64_t start = now_ns();
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	int64_t end = now_ns();
	ck_assert_int_ge(end - start, 50 * NS_PER_MS);
	ck_assert_int_ge(end - timespec_ns(&d), 0);
	ck_assert_int_lt(end - timespec_ns(&d), 2000 * NS_PER_MS);
}
END_TEST

START_TEST(timedwait_that_timed_out_leaves_value_zero_and_semaphore_usable)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	ck_assert_int_eq(value_of(&s), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	check_holds(&s, 1);
}
END_TEST

START_TEST(timedwait_succeeds_when_post_arrives_before_deadline)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct poster p;
	poster_start(&p, &s); /* posts 20 ms after this thread sleeps */
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	atomic_store(&p.arriving, 1);
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), 0);
	ck_assert_int_eq(atomic_load(&p.posting), 1);
	ck_assert_int_lt(now_ns(), timespec_ns(&d));
	poster_finish(&p);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

/* ---- blocking ---------------------------------------------------------- */

START_TEST(wait_on_empty_semaphore_sleeps_until_other_thread_posts)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct poster p;
	poster_start(&p, &s);
	atomic_store(&p.arriving, 1);
	ck_assert_int_eq(sync_sem_wait(&s), 0);
	ck_assert_int_eq(atomic_load(&p.posting), 1); /* not before */
	poster_finish(&p);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(post_wakes_thread_sleeping_in_wait)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, &s, 0, &returned);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_msg(wait_until_equal(&returned, 1), "waiter was not woken");
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

#define SLEEPERS 4

START_TEST(n_posts_wake_n_sleepers)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w[SLEEPERS];
	for (int i = 0; i < SLEEPERS; i++)
		waiter_start(&w[i], &s, i % 2 ? WAIT_LIMIT_NS : 0, &returned);
	for (int i = 0; i < SLEEPERS; i++)
		ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_msg(wait_until_equal(&returned, SLEEPERS), "only %d of %d woken",
		      atomic_load(&returned), SLEEPERS);
	for (int i = 0; i < SLEEPERS; i++)
		ck_assert_int_eq(waiter_finish(&w[i]), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(two_posts_wake_only_two_of_four_sleepers)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w[SLEEPERS];
	for (int i = 0; i < SLEEPERS; i++)
		waiter_start(&w[i], &s, 0, &returned);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 2));
	sleep_ns(30 * NS_PER_MS);
	ck_assert_int_eq(atomic_load(&returned), 2);
	ck_assert_int_eq(value_of(&s), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), EBUSY); /* two still sleep */
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, SLEEPERS));
	for (int i = 0; i < SLEEPERS; i++)
		ck_assert_int_eq(waiter_finish(&w[i]), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

#define HANDOFFS 200

struct handoff {
	sync_sem_t s;
	atomic_int waiter_tid;
	atomic_int arriving;
	atomic_int taken;
	int errors;
};

static void *handoff_waiter(void *arg)
{
	struct handoff *ho = arg;
	atomic_store(&ho->waiter_tid, thread_id());
	for (int i = 1; i <= HANDOFFS; i++) {
		/* from here on, the only place this thread can sleep is the wait */
		atomic_store(&ho->arriving, i);
		if (sync_sem_wait(&ho->s) != 0)
			ho->errors++;
		atomic_store(&ho->taken, i);
	}
	return NULL;
}

START_TEST(post_wakes_sleeper_every_time)
{
	/* The waiter sleeps in sync_sem_wait each time the main thread posts;
	 * a lost wake-up leaves it asleep and the test fails. */
	static struct handoff ho = { .s = SYNC_SEM_INITIALIZER(0) };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, handoff_waiter, &ho), 0);
	for (int i = 1; i <= HANDOFFS; i++) {
		ck_assert(wait_until_equal(&ho.arriving, i));
		ck_assert_msg(wait_until_asleep(atomic_load(&ho.waiter_tid)),
			      "hand-off %d: waiter never slept", i);
		ck_assert_int_eq(sync_sem_post(&ho.s), 0);
		ck_assert_msg(wait_until_equal(&ho.taken, i),
			      "hand-off %d: waiter was not woken", i);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(ho.errors, 0);
	ck_assert_int_eq(value_of(&ho.s), 0);
}
END_TEST

/* ---- signals ----------------------------------------------------------- */

START_TEST(wait_interrupted_by_signal_keeps_waiting_until_post)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	catch_signal_without_restart(SIGUSR1);
	waiter_start(&w, &s, 0, &returned);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(interrupt_sleeper(w.thread, atomic_load(&w.tid), SIGUSR1),
			      "signal %d: waiter did not go back to sleep", i);
		ck_assert_int_eq(atomic_load(&returned), 0);
	}
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_int_eq(value_of(&s), 0);
}
END_TEST

START_TEST(timedwait_interrupted_by_signal_keeps_waiting_until_post)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	catch_signal_without_restart(SIGUSR1);
	waiter_start(&w, &s, WAIT_LIMIT_NS, &returned);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(interrupt_sleeper(w.thread, atomic_load(&w.tid), SIGUSR1),
			      "signal %d: waiter did not go back to sleep", i);
		ck_assert_int_eq(atomic_load(&returned), 0);
	}
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&w), 0);
}
END_TEST

START_TEST(timedwait_interrupted_by_signal_times_out_not_before_deadline)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	catch_signal_without_restart(SIGUSR1);
	waiter_start(&w, &s, 300 * NS_PER_MS, &returned);
	ck_assert(interrupt_sleeper(w.thread, atomic_load(&w.tid), SIGUSR1));
	ck_assert_int_eq(waiter_finish(&w), ETIMEDOUT);
	ck_assert_int_ge(w.returned_at, w.deadline_ns);
	ck_assert_int_ge(caught_signals(), 1);
}
END_TEST

/* ---- many threads ------------------------------------------------------ */

#define THREAD_ITERS 20000

struct contention {
	sync_sem_t s; /* binary: used as a lock */
	long counter; /* protected by s */
	atomic_int errors;
};

static void *count_up(void *arg)
{
	struct contention *c = arg;
	for (int i = 0; i < THREAD_ITERS; i++) {
		if (sync_sem_wait(&c->s) != 0) {
			atomic_fetch_add(&c->errors, 1);
			return NULL;
		}
		c->counter++;
		if (sync_sem_post(&c->s) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return NULL;
}

START_TEST(semaphore_of_one_excludes_other_threads)
{
	static struct contention c = { .s = SYNC_SEM_INITIALIZER(1) };
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, count_up, &c), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&c.errors), 0);
	ck_assert_int_eq(c.counter, 4L * THREAD_ITERS);
	ck_assert_int_eq(value_of(&c.s), 1);
}
END_TEST

/* ---- between processes (SYNC_PSHARED) ---------------------------------- */

/* State shared with forked children: a MAP_SHARED anonymous mapping. */
struct shared {
	sync_sem_t s;
	atomic_int stage;
	int results[4];
};

static struct shared *shared_create(unsigned value)
{
	struct shared *sh = map_shared(sizeof *sh);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(sync_sem_init(&sh->s, value, SYNC_PSHARED), 0);
	atomic_init(&sh->stage, 0);
	for (int i = 0; i < 4; i++)
		sh->results[i] = -1;
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

static int child_trywait(void *arg)
{
	struct shared *sh = arg;
	return sync_sem_trywait(&sh->s);
}

START_TEST(pshared_trywait_from_other_process_takes_unit)
{
	struct shared *sh = shared_create(1);
	ck_assert_int_eq(child_status(fork_child(child_trywait, sh)), 0);
	ck_assert_int_eq(value_of(&sh->s), 0);
	ck_assert_int_eq(child_status(fork_child(child_trywait, sh)), EAGAIN);
	ck_assert_int_eq(value_of(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

static int child_timedwait_50ms(void *arg)
{
	struct shared *sh = arg;
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	sh->results[0] = sync_sem_timedwait(&sh->s, &d);
	int64_t late = now_ns() - timespec_ns(&d);
	sh->results[1] = late >= 0 && late < 2000 * NS_PER_MS;
	return 0;
}

START_TEST(pshared_timedwait_from_other_process_times_out_on_empty_semaphore)
{
	struct shared *sh = shared_create(0);
	ck_assert_int_eq(child_status(fork_child(child_timedwait_50ms, sh)), 0);
	ck_assert_int_eq(sh->results[0], ETIMEDOUT);
	ck_assert_int_eq(sh->results[1], 1); /* not before the deadline */
	ck_assert_int_eq(value_of(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

static int child_wait(void *arg)
{
	struct shared *sh = arg;
	atomic_store(&sh->stage, 1);
	sh->results[0] = sync_sem_wait(&sh->s);
	return sh->results[0];
}

START_TEST(pshared_post_wakes_waiter_in_other_process)
{
	struct shared *sh = shared_create(0);
	pid_t pid = fork_child(child_wait, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wait");
	ck_assert_int_eq(sync_sem_post(&sh->s), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(value_of(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_destroy_returns_ebusy_while_other_process_sleeps_in_wait)
{
	struct shared *sh = shared_create(0);
	pid_t pid = fork_child(child_wait, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wait");
	ck_assert_int_eq(sync_sem_destroy(&sh->s), EBUSY);
	ck_assert_int_eq(sync_sem_post(&sh->s), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sync_sem_destroy(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

static int child_moves_then_waits(void *arg)
{
	struct shared *sh = arg;
	struct shared *view = move_mapping(sh, sizeof *sh);
	if (view == MAP_FAILED || view == sh)
		return 100;
	return child_wait(view);
}

START_TEST(pshared_post_wakes_waiter_that_maps_semaphore_at_other_address)
{
	struct shared *sh = shared_create(0);
	pid_t pid = fork_child(child_moves_then_waits, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wait");
	ck_assert_int_eq(sync_sem_post(&sh->s), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(value_of(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

/* A bounded ring buffer in shared memory: `slots` counts free slots, `items`
 * filled ones, the mutex guards the indices. */
#define RING_SLOTS 64
#define RING_ITEMS 20000
#define PRODUCERS 2
#define CONSUMERS 2

struct ring {
	sync_sem_t slots, items;
	sync_mutex_t m;
	unsigned head, tail;   /* protected by m */
	int buf[RING_SLOTS];   /* protected by m */
	bool move;             /* consumers map the ring at another address */
	atomic_int next_producer, next_consumer;
	long long pushed_sum[PRODUCERS];
	long long popped_sum[CONSUMERS];
	atomic_int seen[RING_ITEMS];
};

static struct ring *ring_create(bool move)
{
	struct ring *r = map_shared(sizeof *r);
	ck_assert_ptr_ne(r, MAP_FAILED);
	ck_assert_int_eq(sync_sem_init(&r->slots, RING_SLOTS, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_sem_init(&r->items, 0, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_init(&r->m, SYNC_PSHARED), 0);
	r->move = move;
	return r;
}

/* Producer p pushes the items p, p + PRODUCERS, ... below RING_ITEMS. */
static int ring_producer(void *arg)
{
	struct ring *r = arg;
	int p = atomic_fetch_add(&r->next_producer, 1);
	long long sum = 0;
	for (int v = p; v < RING_ITEMS; v += PRODUCERS) {
		if (sync_sem_wait(&r->slots) != 0 || sync_mutex_lock(&r->m) != 0)
			return 1;
		r->buf[r->tail++ % RING_SLOTS] = v;
		if (sync_mutex_unlock(&r->m) != 0 || sync_sem_post(&r->items) != 0)
			return 2;
		sum += v;
	}
	r->pushed_sum[p] = sum;
	return 0;
}

/* Each consumer pops RING_ITEMS / CONSUMERS items and marks each seen. */
static int ring_consumer(void *arg)
{
	struct ring *r = arg;
	int c = atomic_fetch_add(&r->next_consumer, 1);
	if (r->move) {
		r = move_mapping(r, sizeof *r);
		if (r == MAP_FAILED || r == arg)
			return 100;
	}
	long long sum = 0;
	for (int i = 0; i < RING_ITEMS / CONSUMERS; i++) {
		if (sync_sem_wait(&r->items) != 0 || sync_mutex_lock(&r->m) != 0)
			return 3;
		int v = r->buf[r->head++ % RING_SLOTS];
		if (sync_mutex_unlock(&r->m) != 0 || sync_sem_post(&r->slots) != 0)
			return 4;
		if (v < 0 || v >= RING_ITEMS)
			return 5;
		atomic_fetch_add(&r->seen[v], 1);
		sum += v;
	}
	r->popped_sum[c] = sum;
	return 0;
}

static void check_ring_passes_every_item_once(bool move)
{
	struct ring *r = ring_create(move);
	pid_t pid[PRODUCERS + CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		pid[i] = fork_running(ring_consumer, r);
	for (int i = 0; i < PRODUCERS; i++)
		pid[CONSUMERS + i] = fork_running(ring_producer, r);
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
		ck_assert_int_gt(pid[i], 0);
		ck_assert_int_eq(child_status(pid[i]), 0);
	}
	const long long want = (long long)RING_ITEMS * (RING_ITEMS - 1) / 2;
	long long pushed = 0, popped = 0;
	for (int i = 0; i < PRODUCERS; i++)
		pushed += r->pushed_sum[i];
	for (int i = 0; i < CONSUMERS; i++)
		popped += r->popped_sum[i];
	ck_assert_int_eq(pushed, want);
	ck_assert_int_eq(popped, want);
	for (int v = 0; v < RING_ITEMS; v++)
		ck_assert_msg(atomic_load(&r->seen[v]) == 1, "item %d seen %d times", v,
			      atomic_load(&r->seen[v]));
	ck_assert_uint_eq(r->head, RING_ITEMS);
	ck_assert_uint_eq(r->tail, RING_ITEMS);
	ck_assert_int_eq(value_of(&r->slots), RING_SLOTS);
	ck_assert_int_eq(value_of(&r->items), 0);
	ck_assert_int_eq(sync_sem_destroy(&r->slots), 0);
	ck_assert_int_eq(sync_sem_destroy(&r->items), 0);
	ck_assert_int_eq(munmap(r, sizeof *r), 0);
}

START_TEST(pshared_ring_buffer_passes_every_item_exactly_once)
{
	check_ring_passes_every_item_once(false);
}
END_TEST

START_TEST(pshared_ring_buffer_works_with_consumers_mapping_it_at_other_addresses)
{
	check_ring_passes_every_item_once(true);
}
END_TEST


/* ---- cancellation (issue 10, point 9) ----------------------------------- */

/* Joins t within 2 s; its exit value, or NULL if it did not end in time. */
static void *join_within_2s(pthread_t t)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	void *ret = NULL;
	if (pthread_timedjoin_np(t, &ret, &until) != 0)
		return NULL;
	return ret;
}

static void check_sleeper_is_cancelled(int64_t timeout_ns)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, &s, timeout_ns, &returned);
	ck_assert_int_eq(pthread_cancel(w.thread), 0);
	void *ret = join_within_2s(w.thread);
	if (ret != PTHREAD_CANCELED)
		sync_sem_post(&s); /* let it go before failing */
	ck_assert_msg(ret == PTHREAD_CANCELED, "the sleeper was not cancelled");
	ck_assert_int_eq(atomic_load(&returned), 0);
	ck_assert_int_eq(value_of(&s), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), 0); /* it left no registration */
}

START_TEST(thread_sleeping_in_wait_is_cancelled)
{
	check_sleeper_is_cancelled(0);
}
END_TEST

START_TEST(thread_sleeping_in_timedwait_is_cancelled)
{
	check_sleeper_is_cancelled(WAIT_LIMIT_NS);
}
END_TEST

START_TEST(post_after_a_sleeper_was_cancelled_wakes_another_sleeper)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	atomic_int returned = 0;
	struct waiter a, b;
	waiter_start(&a, &s, 0, &returned);
	waiter_start(&b, &s, 0, &returned);
	ck_assert_int_eq(pthread_cancel(a.thread), 0);
	void *ret = join_within_2s(a.thread);
	if (ret != PTHREAD_CANCELED) {
		sync_sem_post(&s);
		sync_sem_post(&s);
	}
	ck_assert_msg(ret == PTHREAD_CANCELED, "the sleeper was not cancelled");
	ck_assert_int_eq(sync_sem_post(&s), 0);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&b), 0);
	ck_assert_int_eq(value_of(&s), 0);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

struct pending_cancel {
	sync_sem_t *s;
	atomic_int ready, cancelled;
	int result;
};

/* Waits with a cancellation already pending, on a semaphore with a unit:
 * as POSIX's sem_wait, the wait acts on it and takes nothing. */
static void *wait_with_cancel_pending(void *arg)
{
	struct pending_cancel *p = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	atomic_store(&p->ready, 1);
	wait_until_equal(&p->cancelled, 1);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	p->result = sync_sem_wait(p->s);
	return NULL;
}

START_TEST(wait_with_cancellation_pending_acts_on_it_and_takes_no_unit)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(1);
	struct pending_cancel p = { .s = &s, .result = -1 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, wait_with_cancel_pending, &p), 0);
	ck_assert(wait_until_equal(&p.ready, 1));
	ck_assert_int_eq(pthread_cancel(t), 0);
	atomic_store(&p.cancelled, 1);
	ck_assert(join_within_2s(t) == PTHREAD_CANCELED);
	ck_assert_int_eq(value_of(&s), 1);
}
END_TEST

/* ---- deadlines already past, errno (issue 10, points 13 and 8) ----------- */

START_TEST(timedwait_with_deadline_passed_on_empty_semaphore_returns_at_once)
{
	/* no spin first (about 25 us here): the least of 50 calls is far below */
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	int64_t least = INT64_MAX;
	for (int i = 0; i < 50; i++) {
		struct timespec past;
		clock_gettime(CLOCK_MONOTONIC, &past);
		int64_t t0 = now_ns();
		ck_assert_int_eq(sync_sem_timedwait(&s, &past), ETIMEDOUT);
		int64_t took = now_ns() - t0;
		if (took < least)
			least = took;
	}
	ck_assert_msg(least < 10000, "fastest took %lld ns", (long long)least);
	ck_assert_int_eq(sync_sem_destroy(&s), 0);
}
END_TEST

START_TEST(timedwait_that_times_out_leaves_errno_alone)
{
	sync_sem_t s = SYNC_SEM_INITIALIZER(0);
	struct timespec d = sync_deadline(2000000u);
	errno = ENOTTY;
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	ck_assert_int_eq(errno, ENOTTY);
}
END_TEST

START_TEST(pshared_timedwait_that_times_out_leaves_errno_alone)
{
	/* a shared sleeper looks again every 10 ms: no error either */
	sync_sem_t s;
	ck_assert_int_eq(sync_sem_init(&s, 0, SYNC_PSHARED), 0);
	struct timespec d = sync_deadline(30000000u);
	errno = ENOTTY;
	ck_assert_int_eq(sync_sem_timedwait(&s, &d), ETIMEDOUT);
	ck_assert_int_eq(errno, ENOTTY);
}
END_TEST

/* ---- a waiter process that was killed (issue 10, point 3) ---------------- */

/* Starts a child that sleeps in wait, kills it there and reaps it. */
static void kill_sleeping_waiter(struct shared *sh)
{
	atomic_store(&sh->stage, 0);
	pid_t pid = fork_child(child_wait, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wait");
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(child_status(pid), -1);
}

START_TEST(pshared_destroy_returns_zero_after_the_sleeping_waiter_was_killed)
{
	struct shared *sh = shared_create(0);
	kill_sleeping_waiter(sh);
	ck_assert_int_eq(sync_sem_destroy(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_post_wakes_a_live_sleeper_after_another_was_killed)
{
	struct shared *sh = shared_create(0);
	kill_sleeping_waiter(sh);
	atomic_store(&sh->stage, 0);
	pid_t pid = fork_child(child_wait, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wait");
	ck_assert_int_eq(sync_sem_destroy(&sh->s), EBUSY); /* a live one sleeps */
	ck_assert_int_eq(sync_sem_post(&sh->s), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sync_sem_trywait(&sh->s), EAGAIN);
	ck_assert_int_eq(sync_sem_post(&sh->s), 0);
	ck_assert_int_eq(sync_sem_trywait(&sh->s), 0);
	shared_destroy(sh);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sem");

	TCase *tc = tcase_create("init");
	tcase_add_test(tc, initializer_gives_semaphore_holding_its_value);
	tcase_add_test(tc, initializer_of_zero_gives_empty_semaphore);
	tcase_add_test(tc, initializer_of_value_max_gives_semaphore_at_value_max);
	tcase_add_test(tc, value_max_is_int_max);
	tcase_add_test(tc, init_with_no_flags_gives_semaphore_holding_its_value);
	tcase_add_test(tc, init_with_zero_gives_empty_semaphore);
	tcase_add_test(tc, init_with_pshared_gives_semaphore_holding_its_value);
	tcase_add_test(tc, init_with_value_max_gives_semaphore_at_value_max);
	tcase_add_test(tc, init_rejects_value_above_max_and_changes_nothing);
	tcase_add_test(tc, init_rejects_uint_max_value_and_changes_nothing);
	tcase_add_test(tc, init_rejects_mutex_errorcheck_flag_and_changes_nothing);
	tcase_add_test(tc, init_rejects_rwlock_prefer_reader_flag_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_0x100_and_changes_nothing);
	tcase_add_test(tc, init_rejects_all_bits_set_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_next_to_pshared);
	tcase_add_test(tc, sem_is_16_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("null");
	tcase_add_test(tc, init_of_null_semaphore_returns_einval);
	tcase_add_test(tc, destroy_of_null_semaphore_returns_einval);
	tcase_add_test(tc, wait_of_null_semaphore_returns_einval);
	tcase_add_test(tc, trywait_of_null_semaphore_returns_einval);
	tcase_add_test(tc, timedwait_of_null_semaphore_returns_einval);
	tcase_add_test(tc, post_of_null_semaphore_returns_einval);
	tcase_add_test(tc, getvalue_of_null_semaphore_returns_einval);
	tcase_add_test(tc, getvalue_into_null_returns_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("wait_post");
	tcase_add_test(tc, trywait_of_positive_semaphore_takes_one_unit);
	tcase_add_test(tc, trywait_of_empty_semaphore_returns_eagain_and_keeps_value);
	tcase_add_test(tc, wait_of_positive_semaphore_takes_one_unit_at_once);
	tcase_add_test(tc, post_adds_one_unit);
	tcase_add_test(tc, post_from_other_thread_adds_unit_this_thread_can_take);
	tcase_add_test(tc, trywait_from_other_thread_takes_unit_this_thread_posted);
	tcase_add_test(tc, post_at_value_max_returns_eoverflow_and_keeps_value);
	tcase_add_test(tc, post_just_below_value_max_reaches_value_max);
	tcase_add_test(tc, getvalue_reports_current_value);
	tcase_add_test(tc, getvalue_with_sleeping_waiters_reports_zero_not_negative);
	suite_add_tcase(s, tc);

	tc = tcase_create("destroy");
	tcase_add_test(tc, destroy_of_idle_semaphore_returns_zero);
	tcase_add_test(tc, destroy_of_semaphore_holding_units_returns_zero);
	tcase_add_test(tc, destroyed_semaphore_can_be_initialised_again);
	tcase_add_test(tc, destroy_while_thread_sleeps_in_wait_returns_ebusy);
	tcase_add_test(tc, destroy_while_thread_sleeps_in_timedwait_returns_ebusy);
	tcase_add_test(tc, destroy_after_woken_waiter_left_returns_zero);
	tcase_add_test(tc, destroy_after_timedwait_timed_out_returns_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("timedwait");
	tcase_add_test(tc, timedwait_with_null_abstime_returns_einval_even_when_available);
	tcase_add_test(tc, timedwait_with_negative_nsec_returns_einval_even_when_available);
	tcase_add_test(tc, timedwait_with_nsec_of_one_second_returns_einval_even_when_available);
	tcase_add_test(tc, timedwait_with_bad_abstime_on_empty_semaphore_returns_einval_at_once);
	tcase_add_test(tc, timedwait_with_deadline_of_now_takes_available_unit);
	tcase_add_test(tc, timedwait_with_deadline_zero_takes_available_unit);
	tcase_add_test(tc, timedwait_with_negative_seconds_takes_available_unit);
	tcase_add_test(tc, timedwait_with_deadline_zero_on_empty_semaphore_returns_etimedout);
	tcase_add_test(tc, timedwait_with_negative_seconds_on_empty_semaphore_returns_etimedout);
	tcase_add_test(tc, timedwait_with_very_negative_seconds_on_empty_semaphore_returns_etimedout);
	tcase_add_test(tc, timedwait_on_empty_semaphore_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, timedwait_that_timed_out_leaves_value_zero_and_semaphore_usable);
	tcase_add_test(tc, timedwait_succeeds_when_post_arrives_before_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocking");
	tcase_add_test(tc, wait_on_empty_semaphore_sleeps_until_other_thread_posts);
	tcase_add_test(tc, post_wakes_thread_sleeping_in_wait);
	tcase_add_test(tc, n_posts_wake_n_sleepers);
	tcase_add_test(tc, two_posts_wake_only_two_of_four_sleepers);
	tcase_add_test(tc, post_wakes_sleeper_every_time);
	tcase_add_test(tc, semaphore_of_one_excludes_other_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_test(tc, wait_interrupted_by_signal_keeps_waiting_until_post);
	tcase_add_test(tc, timedwait_interrupted_by_signal_keeps_waiting_until_post);
	tcase_add_test(tc, timedwait_interrupted_by_signal_times_out_not_before_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("pshared");
	tcase_add_test(tc, pshared_trywait_from_other_process_takes_unit);
	tcase_add_test(tc, pshared_timedwait_from_other_process_times_out_on_empty_semaphore);
	tcase_add_test(tc, pshared_post_wakes_waiter_in_other_process);
	tcase_add_test(tc, pshared_destroy_returns_ebusy_while_other_process_sleeps_in_wait);
	tcase_add_test(tc, pshared_post_wakes_waiter_that_maps_semaphore_at_other_address);
	tcase_add_test(tc, pshared_ring_buffer_passes_every_item_exactly_once);
	tcase_add_test(tc, pshared_ring_buffer_works_with_consumers_mapping_it_at_other_addresses);
	tcase_add_test(tc, pshared_destroy_returns_zero_after_the_sleeping_waiter_was_killed);
	tcase_add_test(tc, pshared_post_wakes_a_live_sleeper_after_another_was_killed);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancellation");
	tcase_add_test(tc, thread_sleeping_in_wait_is_cancelled);
	tcase_add_test(tc, thread_sleeping_in_timedwait_is_cancelled);
	tcase_add_test(tc, post_after_a_sleeper_was_cancelled_wakes_another_sleeper);
	if (PENDING_CANCEL_UNWINDS) /* see util.h */
		tcase_add_test(tc, wait_with_cancellation_pending_acts_on_it_and_takes_no_unit);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadline-passed-errno");
	tcase_add_test(tc, timedwait_with_deadline_passed_on_empty_semaphore_returns_at_once);
	tcase_add_test(tc, timedwait_that_times_out_leaves_errno_alone);
	tcase_add_test(tc, pshared_timedwait_that_times_out_leaves_errno_alone);
	suite_add_tcase(s, tc);

	return s;
}
