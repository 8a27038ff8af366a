/* Unit tests for <sync/epoch.h>: one behaviour of the contract per test,
 * each run twice: with membarrier(2) on the grace-period side, and with the
 * fenced read side that SYNC_EPOCH_NO_MEMBARRIER=1 selects. The mode is
 * chosen at the first use in a process: the runner never uses the epoch,
 * and each test runs in a child it forks (CK_FORK, Check's default) whose
 * checked fixture sets the variable before the test's first call. */
#define _GNU_SOURCE /* pthreads and syscall under strict -std modes */
#include <dirent.h>
#include <errno.h>
#include <linux/filter.h>
#include <malloc.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sync.h>

#include "tap_main.h"
#include "util.h"

/* A call with nobody to wait for takes less than this, even on a loaded
 * machine. */
#define PROMPT_NS (500 * NS_PER_MS)

/* Callback: counts its calls in the atomic_int that p points at. */
static void count_call(void *p)
{
	atomic_fetch_add((atomic_int *)p, 1);
}

static void retire_counted(atomic_int *calls, int n)
{
	for (int i = 0; i < n; i++)
		sync_epoch_retire(&calls[i], count_call);
}

static void check_each_called(atomic_int *calls, int n, int times)
{
	for (int i = 0; i < n; i++)
		ck_assert_msg(atomic_load(&calls[i]) == times, "callback %d ran %d times, not %d",
			      i, atomic_load(&calls[i]), times);
}

/* A callback that blocks until released: run by the reclaimer, it keeps
 * the reclaimer from taking any other callback meanwhile. */
struct hold {
	atomic_int started, release;
};

static void hold_until_released(void *p)
{
	struct hold *h = p;
	atomic_store(&h->started, 1);
	while (!atomic_load(&h->release))
		sleep_ns(NS_PER_MS);
}

/* Returns once the reclaimer is inside h's callback. */
static void hold_reclaimer(struct hold *h)
{
	sync_epoch_retire(h, hold_until_released);
	ck_assert(wait_until_equal(&h->started, 1));
}

static void release_reclaimer(struct hold *h)
{
	atomic_store(&h->release, 1);
	sync_epoch_barrier(); /* h's callback has returned */
}

/* ---- a thread that retires callbacks, then holds a section as told ------ */

#define LEAVE_ALL (-1)   /* depth order: end every section, then return */
#define EXIT_INSIDE (-2) /* depth order: return with the section still open */

struct reader {
	pthread_t thread;
	atomic_int *calls;  /* first retires count_call on calls[0 .. n-1] */
	int n;
	bool retire_inside; /* ... inside a section of its own */
	atomic_int depth;   /* the nesting depth it is told to hold */
	atomic_int at;      /* the depth it holds; -1 until it got there once */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	sync_epoch_enter(); /* registers this thread */
	sync_epoch_exit();
	if (r->retire_inside)
		sync_epoch_enter();
	retire_counted(r->calls, r->n);
	if (r->retire_inside)
		sync_epoch_exit();
	int at = 0;
	for (;;) {
		int want = atomic_load(&r->depth);
		if (want == EXIT_INSIDE)
			return NULL; /* misuse on purpose: the section stays open */
		int target = want < 0 ? 0 : want;
		for (; at < target; at++)
			sync_epoch_enter();
		for (; at > target; at--)
			sync_epoch_exit();
		atomic_store(&r->at, at);
		if (want == LEAVE_ALL)
			return NULL;
		sleep_ns(100 * 1000);
	}
}

static void reader_setup(struct reader *r, int depth, atomic_int *calls, int n)
{
	r->calls = calls;
	r->n = n;
	r->retire_inside = false;
	atomic_init(&r->depth, depth);
	atomic_init(&r->at, -1);
}

static void reader_launch(struct reader *r)
{
	int depth = atomic_load(&r->depth);
	ck_assert_int_eq(pthread_create(&r->thread, NULL, reader_main, r), 0);
	ck_assert_msg(wait_until_equal(&r->at, depth), "reader never reached depth %d", depth);
}

/* Starts a thread that retires count_call on calls[0 .. n-1], then stays
 * `depth` sections deep (0: registered and idle). */
static void reader_start(struct reader *r, int depth, atomic_int *calls, int n)
{
	reader_setup(r, depth, calls, n);
	reader_launch(r);
}

/* Tells the reader to hold `depth` sections, and waits until it does. */
static void reader_hold(struct reader *r, int depth)
{
	atomic_store(&r->depth, depth);
	ck_assert_msg(wait_until_equal(&r->at, depth), "reader never reached depth %d", depth);
}

/* Ends the reader's sections and joins it. */
static void reader_finish(struct reader *r)
{
	atomic_store(&r->depth, LEAVE_ALL);
	ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
}

/* Joins the reader, which exits its thread inside its section. */
static void reader_exit_inside(struct reader *r)
{
	atomic_store(&r->depth, EXIT_INSIDE);
	ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
}

/* ---- synchronize or barrier in another thread --------------------------- */

struct caller {
	pthread_t thread;
	void (*fn)(void);
	atomic_int tid;
	atomic_int returned;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	atomic_store(&c->tid, thread_id());
	c->fn();
	atomic_store(&c->returned, 1);
	return NULL;
}

static void caller_start(struct caller *c, void (*fn)(void))
{
	c->fn = fn;
	atomic_init(&c->tid, 0);
	atomic_init(&c->returned, 0);
	ck_assert_int_eq(pthread_create(&c->thread, NULL, caller_main, c), 0);
}

/* The call has not returned 50 ms after the caller looks. */
static void check_still_blocked(struct caller *c)
{
	sleep_ns(50 * NS_PER_MS);
	ck_assert_msg(!atomic_load(&c->returned), "returned while a reader was inside");
}

static void caller_finish(struct caller *c)
{
	ck_assert_msg(wait_until_equal(&c->returned, 1), "never returned");
	ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
}

/* ---- mode --------------------------------------------------------------- */

static void use_membarrier_mode(void)
{
	unsetenv("SYNC_EPOCH_NO_MEMBARRIER");
}

static void use_no_membarrier_mode(void)
{
	setenv("SYNC_EPOCH_NO_MEMBARRIER", "1", 1);
}

static long membarrier_call(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static bool kernel_has_private_expedited_membarrier(void)
{
	long cmds = membarrier_call(MEMBARRIER_CMD_QUERY);
	return cmds >= 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

START_TEST(first_use_registers_process_for_private_expedited_membarrier)
{
	if (!kernel_has_private_expedited_membarrier())
		return; /* the fenced read side is then the only mode */
	errno = 0;
	ck_assert_int_eq(membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED), -1);
	ck_assert_int_eq(errno, EPERM); /* not registered before the first use */
	sync_epoch_enter();
	sync_epoch_exit();
	ck_assert_int_eq(membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED), 0);
}
END_TEST

START_TEST(no_membarrier_variable_keeps_process_unregistered)
{
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_synchronize();
	ck_assert_int_eq(membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED), -1);
}
END_TEST

/* ---- sections and synchronize ------------------------------------------- */

START_TEST(exit_ends_section_begun_by_enter)
{
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_synchronize(); /* aborts inside a section */
}
END_TEST

START_TEST(nested_sections_end_at_matching_outermost_exit)
{
	for (int depth = 1; depth <= 4; depth++) {
		for (int i = 0; i < depth; i++)
			sync_epoch_enter();
		for (int i = 0; i < depth; i++)
			sync_epoch_exit(); /* aborts if a level was lost */
		sync_epoch_synchronize(); /* aborts if a level was left */
	}
}
END_TEST

/* (name)() calls the library's function even where <sync/epoch.h> makes
 * the name a macro for an inline fast path. */
START_TEST(library_enter_and_exit_hold_section_like_inline_ones)
{
	struct caller c;
	(sync_epoch_enter)();
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	(sync_epoch_exit)();
	caller_finish(&c);
}
END_TEST

START_TEST(inline_and_library_enter_and_exit_nest_together)
{
	struct caller c;
	sync_epoch_enter();
	(sync_epoch_enter)();
	sync_epoch_exit();
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	(sync_epoch_exit)();
	caller_finish(&c);
	sync_epoch_synchronize();
}
END_TEST

START_TEST(synchronize_without_readers_returns_promptly)
{
	int64_t start = now_ns();
	for (int i = 0; i < 20; i++)
		sync_epoch_synchronize();
	ck_assert_int_lt(now_ns() - start, PROMPT_NS);
}
END_TEST

START_TEST(synchronize_with_idle_registered_threads_returns_promptly)
{
	struct reader r[3];
	for (int i = 0; i < 3; i++)
		reader_start(&r[i], 0, NULL, 0);
	int64_t start = now_ns();
	for (int i = 0; i < 20; i++)
		sync_epoch_synchronize();
	ck_assert_int_lt(now_ns() - start, PROMPT_NS);
	for (int i = 0; i < 3; i++)
		reader_finish(&r[i]);
}
END_TEST

START_TEST(synchronize_waits_for_reader_inside_section_until_it_exits)
{
	struct reader r;
	struct caller c;
	reader_start(&r, 1, NULL, 0);
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	reader_hold(&r, 0);
	caller_finish(&c);
	reader_finish(&r);
}
END_TEST

START_TEST(synchronize_waits_for_nested_reader_until_outermost_exit)
{
	struct reader r;
	struct caller c;
	reader_start(&r, 3, NULL, 0);
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	reader_hold(&r, 1);
	check_still_blocked(&c);
	reader_hold(&r, 0);
	caller_finish(&c);
	reader_finish(&r);
}
END_TEST

START_TEST(synchronize_waits_for_every_reader_inside)
{
	struct reader r[2];
	struct caller c;
	reader_start(&r[0], 1, NULL, 0);
	reader_start(&r[1], 1, NULL, 0);
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	reader_hold(&r[0], 0);
	check_still_blocked(&c);
	reader_hold(&r[1], 0);
	caller_finish(&c);
	reader_finish(&r[0]);
	reader_finish(&r[1]);
}
END_TEST

START_TEST(synchronize_does_not_wait_for_reader_that_entered_after_it_began)
{
	struct reader old, late;
	struct caller c;
	reader_start(&old, 1, NULL, 0);
	reader_start(&late, 0, NULL, 0);
	caller_start(&c, sync_epoch_synchronize);
	/* asleep: it polls for `old` with sleeps, its grace period has begun */
	ck_assert(wait_until_at_least(&c.tid, 1));
	ck_assert_msg(wait_until_asleep(atomic_load(&c.tid)), "synchronize never slept");
	reader_hold(&late, 1);
	check_still_blocked(&c);
	reader_hold(&old, 0);
	caller_finish(&c); /* while `late` is still inside */
	ck_assert_int_eq(atomic_load(&late.at), 1);
	reader_finish(&late);
	reader_finish(&old);
}
END_TEST

START_TEST(concurrent_synchronize_calls_wait_for_reader_then_all_return)
{
	struct reader r;
	struct caller c[3];
	reader_start(&r, 1, NULL, 0);
	for (int i = 0; i < 3; i++)
		caller_start(&c[i], sync_epoch_synchronize);
	sleep_ns(50 * NS_PER_MS);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(!atomic_load(&c[i].returned), "caller %d returned early", i);
	reader_hold(&r, 0);
	for (int i = 0; i < 3; i++)
		caller_finish(&c[i]);
	reader_finish(&r);
}
END_TEST

START_TEST(thread_that_exits_inside_section_does_not_block_synchronize)
{
	struct reader r;
	struct caller c;
	reader_start(&r, 2, NULL, 0);
	reader_exit_inside(&r);
	caller_start(&c, sync_epoch_synchronize);
	caller_finish(&c);
}
END_TEST

START_TEST(synchronize_from_many_threads_in_turn_returns_promptly)
{
	struct caller c;
	int64_t start = now_ns();
	for (int i = 0; i < 10; i++) {
		caller_start(&c, sync_epoch_synchronize);
		caller_finish(&c);
	}
	ck_assert_int_lt(now_ns() - start, PROMPT_NS);
}
END_TEST

/* Readers check that the object they reached stays alive while an updater
 * replaces it and retires the old one, whose callback kills it. */
#define OBJECTS 2000
#define CHECKING_READERS 2

enum { OBJECT_LIVE = 1, OBJECT_DEAD = 2 };

struct object {
	atomic_int state; /* OBJECT_DEAD once killed; higher if killed twice */
};

struct published {
	_Atomic(struct object *) current;
	atomic_int stop;
	atomic_int violations;
	atomic_int sections;
	struct object objects[OBJECTS];
};

static void kill_object(void *p)
{
	struct object *o = p;
	atomic_fetch_add(&o->state, 1);
}

static void *checking_reader(void *arg)
{
	struct published *pub = arg;
	while (!atomic_load(&pub->stop)) {
		sync_epoch_enter();
		struct object *o = atomic_load(&pub->current);
		for (int i = 0; i < 50; i++)
			if (atomic_load(&o->state) != OBJECT_LIVE)
				atomic_fetch_add(&pub->violations, 1);
		sync_epoch_exit();
		atomic_fetch_add(&pub->sections, 1);
	}
	return NULL;
}

START_TEST(object_reached_inside_section_is_not_reclaimed_before_section_ends)
{
	struct published *pub = calloc(1, sizeof *pub);
	ck_assert_ptr_nonnull(pub);
	atomic_store(&pub->objects[0].state, OBJECT_LIVE);
	atomic_store(&pub->current, &pub->objects[0]);
	pthread_t t[CHECKING_READERS];
	for (int i = 0; i < CHECKING_READERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, checking_reader, pub), 0);
	ck_assert(wait_until_at_least(&pub->sections, 10));
	for (int i = 1; i < OBJECTS; i++) {
		atomic_store(&pub->objects[i].state, OBJECT_LIVE);
		struct object *old = atomic_exchange(&pub->current, &pub->objects[i]);
		sync_epoch_retire(old, kill_object);
		if (i % 50 == 0)
			sync_epoch_synchronize();
	}
	atomic_store(&pub->stop, 1);
	for (int i = 0; i < CHECKING_READERS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	sync_epoch_barrier();
	ck_assert_msg(atomic_load(&pub->violations) == 0, "%d looks at a reclaimed object",
		      atomic_load(&pub->violations));
	for (int i = 0; i < OBJECTS - 1; i++)
		ck_assert_msg(atomic_load(&pub->objects[i].state) == OBJECT_DEAD,
			      "object %d: state %d", i, atomic_load(&pub->objects[i].state));
	ck_assert_int_eq(atomic_load(&pub->objects[OBJECTS - 1].state), OBJECT_LIVE);
	free(pub);
}
END_TEST

/* ---- retire, synchronize and barrier: which callbacks run --------------- */

START_TEST(synchronize_runs_callback_this_thread_retired_before_it)
{
	atomic_int calls = 0;
	sync_epoch_retire(&calls, count_call);
	sync_epoch_synchronize();
	ck_assert_int_eq(atomic_load(&calls), 1);
}
END_TEST

START_TEST(barrier_runs_callback_retired_before_it_exactly_once)
{
	atomic_int calls = 0;
	sync_epoch_retire(&calls, count_call);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&calls), 1);
	sync_epoch_barrier();
	sync_epoch_synchronize();
	ck_assert_int_eq(atomic_load(&calls), 1);
}
END_TEST

#define MANY 1000

START_TEST(barrier_runs_every_callback_retired_so_far)
{
	static atomic_int calls[MANY];
	retire_counted(calls, MANY);
	sync_epoch_barrier();
	check_each_called(calls, MANY, 1);
}
END_TEST

START_TEST(barrier_runs_callbacks_retired_by_other_thread_still_running)
{
	atomic_int calls[100] = { 0 };
	struct reader r;
	reader_start(&r, 0, calls, 100);
	sync_epoch_barrier();
	check_each_called(calls, 100, 1);
	reader_finish(&r);
	sync_epoch_barrier();
	check_each_called(calls, 100, 1);
}
END_TEST

START_TEST(barrier_runs_callbacks_of_thread_that_has_exited)
{
	atomic_int calls[100] = { 0 };
	struct reader r;
	reader_start(&r, 0, calls, 100);
	reader_finish(&r);
	sync_epoch_barrier();
	check_each_called(calls, 100, 1);
}
END_TEST

#define EXITED_THREADS 8

START_TEST(barrier_runs_callbacks_of_many_threads_that_have_exited)
{
	static atomic_int calls[EXITED_THREADS][100];
	struct reader r[EXITED_THREADS];
	for (int i = 0; i < EXITED_THREADS; i++)
		reader_start(&r[i], 0, calls[i], 100);
	for (int i = 0; i < EXITED_THREADS; i++)
		reader_finish(&r[i]);
	sync_epoch_barrier();
	for (int i = 0; i < EXITED_THREADS; i++)
		check_each_called(calls[i], 100, 1);
}
END_TEST

START_TEST(barrier_runs_callbacks_of_thread_that_exited_inside_section)
{
	atomic_int calls[10] = { 0 };
	struct reader r;
	reader_start(&r, 1, calls, 10);
	reader_exit_inside(&r);
	sync_epoch_barrier();
	check_each_called(calls, 10, 1);
}
END_TEST

/* The reclaimer is held in a callback: otherwise it may have taken the
 * orphans to run when synchronize looks (synchronize does not wait for it,
 * see sync_epoch_synchronize(3)), and this test failed so once in CI. */
START_TEST(synchronize_runs_callbacks_of_thread_that_has_exited)
{
	static atomic_int calls[100];
	struct hold h = { 0, 0 };
	hold_reclaimer(&h);
	struct reader r;
	reader_start(&r, 0, calls, 100);
	reader_finish(&r);
	sync_epoch_synchronize();
	check_each_called(calls, 100, 1);
	release_reclaimer(&h);
}
END_TEST

#define RECLAIMING_RETIRES 1024 /* 16 reclaim attempts, one each 64 */

/* The reclaimer is held, as above: the retires alone run the orphans. */
START_TEST(retires_of_other_thread_run_callbacks_of_thread_that_has_exited)
{
	static atomic_int orphaned[10], own[RECLAIMING_RETIRES];
	struct hold h = { 0, 0 };
	hold_reclaimer(&h);
	struct reader r;
	reader_start(&r, 0, orphaned, 10);
	reader_finish(&r);
	retire_counted(own, RECLAIMING_RETIRES);
	check_each_called(orphaned, 10, 1);
	release_reclaimer(&h);
	check_each_called(own, RECLAIMING_RETIRES, 1);
}
END_TEST

START_TEST(retires_alone_run_earlier_callbacks_without_synchronize)
{
	static atomic_int calls[RECLAIMING_RETIRES];
	retire_counted(calls, RECLAIMING_RETIRES);
	check_each_called(calls, 64, 1); /* the first chunk's worth, at least */
	sync_epoch_barrier();
	check_each_called(calls, RECLAIMING_RETIRES, 1);
}
END_TEST

START_TEST(callbacks_do_not_run_while_reader_from_before_retire_is_inside)
{
	static atomic_int calls[256];
	struct reader old, retirer;
	struct caller c;
	reader_start(&old, 1, NULL, 0);
	/* 256 retires: four reclaim attempts, in a section so none may wait */
	reader_setup(&retirer, 0, calls, 256);
	retirer.retire_inside = true;
	reader_launch(&retirer);
	check_each_called(calls, 256, 0);
	caller_start(&c, sync_epoch_synchronize); /* a third thread */
	check_still_blocked(&c);
	check_each_called(calls, 256, 0);
	reader_hold(&old, 0);
	caller_finish(&c);
	sync_epoch_barrier();
	check_each_called(calls, 256, 1);
	reader_finish(&retirer);
	reader_finish(&old);
}
END_TEST

START_TEST(barrier_waits_for_reader_from_before_retire_then_runs_callback)
{
	atomic_int calls = 0;
	struct reader old;
	struct caller c;
	reader_start(&old, 1, NULL, 0);
	sync_epoch_retire(&calls, count_call);
	caller_start(&c, sync_epoch_barrier);
	check_still_blocked(&c);
	ck_assert_int_eq(atomic_load(&calls), 0);
	reader_hold(&old, 0);
	caller_finish(&c);
	ck_assert_int_eq(atomic_load(&calls), 1);
	reader_finish(&old);
}
END_TEST

struct slow {
	atomic_int started, done;
};

static void slow_callback(void *p)
{
	struct slow *s = p;
	atomic_store(&s->started, 1);
	sleep_ns(100 * NS_PER_MS);
	atomic_store(&s->done, 1);
}

static void *retire_slow_then_synchronize(void *arg)
{
	sync_epoch_retire(arg, slow_callback);
	sync_epoch_synchronize(); /* runs it */
	return NULL;
}

START_TEST(barrier_waits_for_callback_other_thread_is_running)
{
	struct slow slow = { 0, 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, retire_slow_then_synchronize, &slow), 0);
	ck_assert(wait_until_equal(&slow.started, 1));
	sync_epoch_barrier();
	ck_assert_msg(atomic_load(&slow.done), "barrier returned while the callback ran");
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

START_TEST(callbacks_retired_inside_section_wait_for_that_section)
{
	static atomic_int calls[256];
	struct caller c;
	sync_epoch_enter();
	retire_counted(calls, 256);
	check_each_called(calls, 256, 0);
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	check_each_called(calls, 256, 0);
	sync_epoch_exit();
	caller_finish(&c);
	sync_epoch_barrier();
	check_each_called(calls, 256, 1);
}
END_TEST

START_TEST(callbacks_retired_inside_nested_section_run_after_outermost_exit)
{
	atomic_int calls = 0;
	sync_epoch_enter();
	sync_epoch_enter();
	sync_epoch_retire(&calls, count_call);
	sync_epoch_exit();
	ck_assert_int_eq(atomic_load(&calls), 0);
	sync_epoch_exit();
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&calls), 1);
}
END_TEST

struct chain {
	atomic_int first, second;
};

static void second_link(void *p)
{
	struct chain *c = p;
	atomic_fetch_add(&c->second, 1);
}

static void first_link(void *p)
{
	struct chain *c = p;
	atomic_fetch_add(&c->first, 1);
	sync_epoch_retire(c, second_link);
}

START_TEST(callback_can_retire_another_callback)
{
	struct chain c = { 0, 0 };
	sync_epoch_retire(&c, first_link);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&c.first), 1);
	sync_epoch_barrier(); /* the second was retired before this one began */
	ck_assert_int_eq(atomic_load(&c.second), 1);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&c.first), 1);
	ck_assert_int_eq(atomic_load(&c.second), 1);
}
END_TEST

struct countdown {
	atomic_int left;
	atomic_int calls;
};

static void count_down(void *p)
{
	struct countdown *c = p;
	atomic_fetch_add(&c->calls, 1);
	if (atomic_fetch_sub(&c->left, 1) > 1)
		sync_epoch_retire(c, count_down);
}

START_TEST(callback_can_retire_itself_again)
{
	struct countdown c = { 5, 0 };
	sync_epoch_retire(&c, count_down);
	for (int i = 0; i < 5; i++)
		sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&c.calls), 5);
	ck_assert_int_eq(atomic_load(&c.left), 0);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&c.calls), 5);
}
END_TEST

static atomic_int null_calls;

static void count_null(void *p)
{
	if (p == NULL)
		atomic_fetch_add(&null_calls, 1);
}

START_TEST(retire_of_null_pointer_calls_fn_with_null)
{
	sync_epoch_retire(NULL, count_null);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&null_calls), 1);
}
END_TEST

START_TEST(retire_with_null_fn_queues_nothing)
{
	int object = 42;
	for (int i = 0; i < 200; i++)
		sync_epoch_retire(&object, NULL);
	sync_epoch_barrier();
	sync_epoch_synchronize();
	ck_assert_int_eq(object, 42);
}
END_TEST

/* Two threads retire (some inside sections) and synchronize while a third
 * runs barriers; every callback runs once. */
#define RACING_RETIRES 2000

struct racer {
	atomic_int *calls;
	atomic_int *done;
};

static void *racing_retirer(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < RACING_RETIRES; i++) {
		bool inside = i % 3 == 0;
		if (inside)
			sync_epoch_enter();
		sync_epoch_retire(&r->calls[i], count_call);
		if (inside)
			sync_epoch_exit();
		if (i % 200 == 199)
			sync_epoch_synchronize();
	}
	atomic_fetch_add(r->done, 1);
	return NULL;
}

static void *racing_barriers(void *arg)
{
	atomic_int *done = arg;
	while (atomic_load(done) < 2)
		sync_epoch_barrier();
	return NULL;
}

START_TEST(callbacks_run_exactly_once_under_concurrent_retires_and_barriers)
{
	static atomic_int calls[2][RACING_RETIRES];
	atomic_int done = 0;
	struct racer r[2] = { { calls[0], &done }, { calls[1], &done } };
	pthread_t t[3];
	ck_assert_int_eq(pthread_create(&t[0], NULL, racing_retirer, &r[0]), 0);
	ck_assert_int_eq(pthread_create(&t[1], NULL, racing_retirer, &r[1]), 0);
	ck_assert_int_eq(pthread_create(&t[2], NULL, racing_barriers, &done), 0);
	ck_assert(wait_until_equal(&done, 2));
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	sync_epoch_barrier();
	check_each_called(calls[0], RACING_RETIRES, 1);
	check_each_called(calls[1], RACING_RETIRES, 1);
}
END_TEST

/* ---- misuse that aborts ------------------------------------------------- */

static int child_exit_without_enter(void *arg)
{
	(void)arg;
	sync_epoch_exit();
	return 0;
}

static int child_library_exit_without_enter(void *arg)
{
	(void)arg;
	(sync_epoch_exit)();
	return 0;
}

static int child_exit_once_too_often(void *arg)
{
	(void)arg;
	sync_epoch_enter();
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_exit();
	sync_epoch_exit();
	return 0;
}

static int child_synchronize_inside_section(void *arg)
{
	(void)arg;
	sync_epoch_enter();
	sync_epoch_synchronize();
	return 0;
}

static int child_synchronize_inside_nested_section(void *arg)
{
	(void)arg;
	sync_epoch_enter();
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_synchronize();
	return 0;
}

static int child_barrier_inside_section(void *arg)
{
	(void)arg;
	sync_epoch_enter();
	sync_epoch_barrier();
	return 0;
}

/* fn, in a child, aborts and writes `message` (and `also`, unless NULL) on
 * stderr. */
static void check_aborts_saying(int (*fn)(void *), const char *message, const char *also)
{
	char err[512];
	int status = run_child_capturing_stderr(fn, NULL, err, sizeof err);
	ck_assert_msg(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "child did not abort (wait status %#x); stderr: %s", (unsigned)status, err);
	ck_assert_msg(strstr(err, message) != NULL, "stderr lacks \"%s\": %s", message, err);
	ck_assert_msg(!also || strstr(err, also) != NULL, "stderr lacks \"%s\": %s", also, err);
}

START_TEST(exit_without_enter_aborts_with_message)
{
	check_aborts_saying(child_exit_without_enter,
			    "libsync: sync_epoch_exit without sync_epoch_enter", NULL);
}
END_TEST

START_TEST(library_exit_without_enter_aborts_with_message)
{
	check_aborts_saying(child_library_exit_without_enter,
			    "libsync: sync_epoch_exit without sync_epoch_enter", NULL);
}
END_TEST

START_TEST(exit_after_every_section_ended_aborts_with_message)
{
	check_aborts_saying(child_exit_once_too_often,
			    "libsync: sync_epoch_exit without sync_epoch_enter", NULL);
}
END_TEST

START_TEST(synchronize_inside_section_aborts_with_message)
{
	check_aborts_saying(child_synchronize_inside_section,
			    "libsync: sync_epoch_synchronize inside a read-side section "
			    "(would deadlock)",
			    NULL);
}
END_TEST

START_TEST(synchronize_inside_nested_section_aborts_with_message)
{
	check_aborts_saying(child_synchronize_inside_nested_section,
			    "libsync: sync_epoch_synchronize inside a read-side section "
			    "(would deadlock)",
			    NULL);
}
END_TEST

START_TEST(barrier_inside_section_aborts_with_message)
{
	check_aborts_saying(child_barrier_inside_section, "libsync: ",
			    "inside a read-side section");
}
END_TEST

/* ---- retire without memory ---------------------------------------------- */

/* In a child: the first retire of a thread needs memory for its list. */
static int child_retires_outside_section_without_memory(void *arg)
{
	(void)arg;
	atomic_int calls = 0;
	sync_epoch_enter(); /* the domain and this thread set up first */
	sync_epoch_exit();
	void *hoard = exhaust_memory(16);
	void *probe = malloc(64);
	sync_epoch_retire(&calls, count_call);
	int ran = atomic_load(&calls);
	release_memory(hoard);
	if (probe)
		return 10; /* memory was not exhausted: no test */
	sync_epoch_barrier();
	if (ran != 1)
		return 1; /* fn(p) had not run when retire returned */
	return atomic_load(&calls) == 1 ? 0 : 2;
}

START_TEST(retire_outside_section_without_memory_runs_callback_before_returning)
{
	if (!plain_malloc())
		return; /* see util.h */
	ck_assert_int_eq(child_status(fork_running(child_retires_outside_section_without_memory,
						   NULL)),
			 0);
}
END_TEST

struct release_later {
	void *hoard;
	atomic_int go;
	atomic_int releasing;
};

static void *release_after_100ms(void *arg)
{
	struct release_later *rl = arg;
	while (!atomic_load(&rl->go))
		sleep_ns(100 * 1000);
	sleep_ns(100 * NS_PER_MS);
	atomic_store(&rl->releasing, 1);
	release_memory(rl->hoard);
	return NULL;
}

static int child_retires_inside_section_without_memory(void *arg)
{
	(void)arg;
	atomic_int calls = 0;
	struct release_later rl = { NULL, 0, 0 };
	pthread_t t;
	if (pthread_create(&t, NULL, release_after_100ms, &rl) != 0)
		return 20;
	sync_epoch_enter();
	rl.hoard = exhaust_memory(16);
	void *probe = malloc(64);
	atomic_store(&rl.go, 1);
	sync_epoch_retire(&calls, count_call); /* keeps trying until memory returns */
	int released = atomic_load(&rl.releasing);
	int ran_inside = atomic_load(&calls);
	sync_epoch_exit();
	pthread_join(t, NULL);
	if (probe)
		return 10; /* memory was not exhausted: no test */
	if (!released)
		return 1; /* returned without memory and without running fn */
	if (ran_inside)
		return 2; /* ran fn(p) inside the section that could see p */
	sync_epoch_barrier();
	return atomic_load(&calls) == 1 ? 0 : 3;
}

START_TEST(retire_inside_section_without_memory_waits_until_memory_returns)
{
	if (!plain_malloc())
		return; /* see util.h */
	ck_assert_int_eq(child_status(fork_running(child_retires_inside_section_without_memory,
						   NULL)),
			 0);
}
END_TEST

/* ---- fork --------------------------------------------------------------- */

/* The parent's threads at fork: one inside a section, one idle, both with
 * callbacks pending, and the forking thread's own pending callbacks. */
struct forked {
	struct reader inside, idle;
	atomic_int inside_calls[10], idle_calls[10], own_calls[10];
};

static void forked_setup(struct forked *f)
{
	memset(f, 0, sizeof *f);
	reader_start(&f->inside, 1, f->inside_calls, 10);
	reader_start(&f->idle, 0, f->idle_calls, 10);
	retire_counted(f->own_calls, 10);
}

static void forked_finish(struct forked *f)
{
	reader_finish(&f->inside);
	reader_finish(&f->idle);
	sync_epoch_barrier();
	check_each_called(f->inside_calls, 10, 1);
	check_each_called(f->idle_calls, 10, 1);
	check_each_called(f->own_calls, 10, 1);
}

static bool all_called_once(atomic_int *calls, int n)
{
	for (int i = 0; i < n; i++)
		if (atomic_load(&calls[i]) != 1)
			return false;
	return true;
}

static int child_synchronizes(void *arg)
{
	(void)arg;
	sync_epoch_synchronize(); /* the parent's reader does not exist here */
	sync_epoch_synchronize();
	return 0;
}

START_TEST(synchronize_in_child_does_not_wait_for_parents_reader)
{
	struct forked f;
	forked_setup(&f);
	ck_assert_int_eq(child_status(fork_running(child_synchronizes, NULL)), 0);
	forked_finish(&f);
}
END_TEST

static int child_runs_barrier(void *arg)
{
	struct forked *f = arg;
	sync_epoch_barrier();
	if (!all_called_once(f->own_calls, 10))
		return 1;
	if (!all_called_once(f->idle_calls, 10))
		return 2;
	if (!all_called_once(f->inside_calls, 10))
		return 3;
	return 0;
}

START_TEST(barrier_in_child_runs_callbacks_retired_by_every_parent_thread)
{
	struct forked f;
	forked_setup(&f);
	ck_assert_int_eq(child_status(fork_running(child_runs_barrier, &f)), 0);
	forked_finish(&f);
}
END_TEST

static int child_uses_epoch_from_new_thread(void *arg)
{
	(void)arg;
	atomic_int calls[10] = { 0 };
	struct reader r;
	reader_setup(&r, 1, calls, 10);
	if (pthread_create(&r.thread, NULL, reader_main, &r) != 0 ||
	    !wait_until_equal(&r.at, 1))
		return 1;
	atomic_store(&r.depth, 0);
	if (!wait_until_equal(&r.at, 0))
		return 2;
	sync_epoch_barrier();
	if (!all_called_once(calls, 10))
		return 3;
	atomic_store(&r.depth, LEAVE_ALL);
	pthread_join(r.thread, NULL);
	sync_epoch_synchronize();
	return 0;
}

START_TEST(child_threads_use_epoch_after_fork)
{
	struct forked f;
	forked_setup(&f);
	ck_assert_int_eq(child_status(fork_running(child_uses_epoch_from_new_thread, NULL)), 0);
	forked_finish(&f);
}
END_TEST

START_TEST(parent_still_waits_for_its_reader_after_fork)
{
	struct forked f;
	struct caller c;
	forked_setup(&f);
	ck_assert_int_eq(child_status(fork_running(child_synchronizes, NULL)), 0);
	caller_start(&c, sync_epoch_synchronize);
	check_still_blocked(&c);
	reader_hold(&f.inside, 0);
	caller_finish(&c);
	forked_finish(&f);
}
END_TEST

/* ---- fork inside a section while a grace period waits for it ------------ */

/* In the child of a thread that forked inside a section: the domain works. */
static int child_uses_domain_after_fork_inside_section(void *arg)
{
	(void)arg;
	atomic_int calls[3] = { 0 };
	sync_epoch_exit(); /* the section the forking thread was in */
	sync_epoch_synchronize();
	retire_counted(calls, 3);
	sync_epoch_barrier();
	if (!all_called_once(calls, 3))
		return 1;
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_synchronize();
	return 0;
}

/* A thread that enters a section, lets `waiter` start a call that must wait
 * for that section, and forks once the call sleeps. */
struct forker {
	pthread_t thread;
	void (*wait_fn)(void);
	struct caller waiter;
	atomic_int forked;   /* fork returned in the parent */
	atomic_int status;   /* the child's, once reaped */
	atomic_int prepared; /* the waiter sleeps */
};

static void *forker_main(void *arg)
{
	struct forker *f = arg;
	sync_epoch_enter();
	caller_start(&f->waiter, f->wait_fn);
	if (!wait_until_at_least(&f->waiter.tid, 1) ||
	    !wait_until_asleep(atomic_load(&f->waiter.tid))) {
		sync_epoch_exit();
		return NULL;
	}
	sleep_ns(20 * NS_PER_MS); /* its grace period has begun */
	atomic_store(&f->prepared, 1);
	pid_t pid = fork_running(child_uses_domain_after_fork_inside_section, NULL);
	atomic_store(&f->forked, 1);
	atomic_store(&f->status, child_status(pid)); /* reaped here: the child dies with us */
	sync_epoch_exit();
	return NULL;
}

static void check_fork_inside_section_while(void (*wait_fn)(void))
{
	struct forker f = { .wait_fn = wait_fn };
	atomic_init(&f.forked, 0);
	atomic_init(&f.status, -2);
	atomic_init(&f.prepared, 0);
	ck_assert_int_eq(pthread_create(&f.thread, NULL, forker_main, &f), 0);
	ck_assert_msg(wait_until_equal(&f.prepared, 1), "the waiting call never slept");
	ck_assert_msg(wait_until_equal(&f.forked, 1),
		      "fork() inside a section blocked while another thread waited for it");
	ck_assert_int_eq(pthread_join(f.thread, NULL), 0);
	ck_assert_msg(atomic_load(&f.status) == 0, "child's domain failed: %d",
		      atomic_load(&f.status));
	caller_finish(&f.waiter);
}

static atomic_int high_water_calls;

/* Enough retires outside any section to reach the 65536 pending callbacks at
 * which sync_epoch_retire waits for a grace period. */
static void retire_past_high_water(void)
{
	for (int i = 0; i < 65536 + 256; i++)
		sync_epoch_retire(&high_water_calls, count_call);
}

START_TEST(fork_inside_section_while_synchronize_waits_for_it_does_not_deadlock)
{
	check_fork_inside_section_while(sync_epoch_synchronize);
}
END_TEST

START_TEST(fork_inside_section_while_barrier_waits_for_it_does_not_deadlock)
{
	check_fork_inside_section_while(sync_epoch_barrier);
}
END_TEST

START_TEST(fork_inside_section_while_retire_waits_at_high_water_does_not_deadlock)
{
	check_fork_inside_section_while(retire_past_high_water);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&high_water_calls), 65536 + 256);
}
END_TEST

/* ---- joining without memory ---------------------------------------------- */

/* With 64 or more keys taken before libsync makes its own, glibc allocates
 * the slot of libsync's key in each thread inside pthread_setspecific: under
 * memory exhaustion, joining the domain cannot record the thread's exit. */
#define KEYS_BEFORE_DOMAIN 70

struct unjoined {
	pthread_key_t probe;    /* a key in the same second-level block */
	atomic_int go;          /* memory is exhausted: join now */
	atomic_int inside;      /* 1: in its section; 2: probe set anyway */
	atomic_int leave;
	atomic_int done;
	atomic_int calls[4];
};

static void *unjoined_main(void *arg)
{
	struct unjoined *u = arg;
	while (!atomic_load(&u->go))
		sleep_ns(100 * 1000);
	sync_epoch_enter(); /* joins, or tries to */
	bool probe_set = pthread_setspecific(u->probe, u) == 0;
	atomic_store(&u->inside, probe_set ? 2 : 1);
	while (!atomic_load(&u->leave))
		sleep_ns(100 * 1000);
	sync_epoch_exit();
	sync_epoch_retire(&u->calls[0], count_call);
	sync_epoch_enter();
	sync_epoch_retire(&u->calls[1], count_call);
	sync_epoch_exit();
	atomic_store(&u->done, 1);
	return NULL;
}

static void *joins_and_retires(void *arg)
{
	atomic_int *calls = arg;
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_retire(calls, count_call);
	return NULL;
}

static int child_joins_without_memory(void *arg)
{
	(void)arg;
	struct unjoined u;
	memset(&u, 0, sizeof u);
	pthread_key_t keys[KEYS_BEFORE_DOMAIN];
	for (int i = 0; i < KEYS_BEFORE_DOMAIN; i++)
		if (pthread_key_create(&keys[i], NULL) != 0)
			return 20;
	sync_epoch_enter(); /* the domain and its key set up now */
	sync_epoch_exit();
	if (pthread_key_create(&u.probe, NULL) != 0)
		return 21;
	pthread_t t, s;
	struct caller c;
	if (pthread_create(&t, NULL, unjoined_main, &u) != 0)
		return 22;
	void *hoard = exhaust_memory(16);
	atomic_store(&u.go, 1);
	if (!wait_until_at_least(&u.inside, 1))
		return 2;
	release_memory(hoard);
	if (atomic_load(&u.inside) == 2) {
		atomic_store(&u.leave, 1); /* memory was not exhausted: no test */
		pthread_join(t, NULL);
		return 10;
	}
	/* its section holds up grace periods, joined or not */
	caller_start(&c, sync_epoch_synchronize);
	sleep_ns(50 * NS_PER_MS);
	if (atomic_load(&c.returned))
		return 3;
	atomic_store(&u.leave, 1);
	if (!wait_until_equal(&c.returned, 1))
		return 4;
	pthread_join(c.thread, NULL);
	pthread_join(t, NULL);
	/* a new thread, likely on the exited one's cached stack and record */
	if (pthread_create(&s, NULL, joins_and_retires, &u.calls[2]) != 0)
		return 23;
	pthread_join(s, NULL);
	caller_start(&c, sync_epoch_synchronize);
	if (!wait_until_equal(&c.returned, 1))
		return 5; /* the thread list is corrupt */
	pthread_join(c.thread, NULL);
	caller_start(&c, sync_epoch_barrier);
	if (!wait_until_equal(&c.returned, 1))
		return 6;
	pthread_join(c.thread, NULL);
	if (!all_called_once(u.calls, 3))
		return 7;
	return 0;
}

START_TEST(thread_that_joins_without_memory_still_protects_and_leaves_domain_whole)
{
	if (!plain_malloc())
		return; /* see util.h */
	ck_assert_int_eq(child_status(fork_running(child_joins_without_memory, NULL)), 0);
}
END_TEST

/* ---- exited threads' callbacks run soon ---------------------------------- */

#define SHORT_LIVED 2000

static void *retires_once(void *arg)
{
	sync_epoch_retire(arg, count_call);
	return NULL;
}

START_TEST(callbacks_of_exited_threads_run_without_further_calls)
{
	static atomic_int calls;
	atomic_store(&calls, 0);
	for (int i = 0; i < SHORT_LIVED; i++) {
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, retires_once, &calls), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
	}
	int pending = SHORT_LIVED - atomic_load(&calls);
	ck_assert_msg(pending <= 64, "%d of %d exited threads' callbacks still pending",
		      pending, SHORT_LIVED);
	sync_epoch_barrier();
	ck_assert_int_eq(atomic_load(&calls), SHORT_LIVED);
}
END_TEST

/* ---- errno and cancellation ---------------------------------------------- */

/* In a child: membarrier(2) refused with EPERM by a seccomp filter. */
static bool refuse_membarrier(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof filter / sizeof filter[0]), filter };
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

static int child_first_use_with_membarrier_refused(void *arg)
{
	(void)arg;
	if (!refuse_membarrier())
		return 10;
	errno = EDOM;
	sync_epoch_enter();
	int after_enter = errno;
	sync_epoch_exit();
	sync_epoch_synchronize();
	if (after_enter != EDOM)
		return 1;
	return errno == EDOM ? 0 : 2;
}

START_TEST(first_use_with_membarrier_refused_leaves_errno_alone)
{
	int rc = child_status(fork_running(child_first_use_with_membarrier_refused, NULL));
	ck_assert_msg(rc == 0 || rc == 10, "child returned %d", rc);
}
END_TEST

static int child_retire_without_memory_keeps_errno(void *arg)
{
	(void)arg;
	atomic_int calls = 0;
	sync_epoch_enter();
	sync_epoch_exit();
	void *hoard = exhaust_memory(16);
	void *probe = malloc(64);
	errno = EDOM;
	sync_epoch_retire(&calls, count_call);
	int after = errno;
	release_memory(hoard);
	if (probe)
		return 10; /* memory was not exhausted: no test */
	return after == EDOM ? 0 : 1;
}

START_TEST(retire_without_memory_leaves_errno_alone)
{
	if (!plain_malloc())
		return; /* see util.h */
	ck_assert_int_eq(child_status(fork_running(child_retire_without_memory_keeps_errno,
						   NULL)),
			 0);
}
END_TEST

/* pthread_cancel of a thread waiting in synchronize or barrier: not a
 * cancellation point, so it returns, and the domain goes on working. */
static void check_cancel_while_waiting(void (*fn)(void))
{
	struct reader r;
	struct caller c, after;
	reader_start(&r, 1, NULL, 0);
	caller_start(&c, fn);
	ck_assert(wait_until_at_least(&c.tid, 1));
	ck_assert_msg(wait_until_asleep(atomic_load(&c.tid)), "never slept");
	sleep_ns(20 * NS_PER_MS);
	ck_assert_int_eq(pthread_cancel(c.thread), 0);
	sleep_ns(20 * NS_PER_MS);
	reader_hold(&r, 0);
	void *res;
	ck_assert_int_eq(pthread_join(c.thread, &res), 0);
	ck_assert_msg(res != PTHREAD_CANCELED, "cancelled inside the call");
	caller_start(&after, sync_epoch_synchronize);
	caller_finish(&after);
	reader_finish(&r);
}

START_TEST(cancel_while_synchronize_waits_does_not_cancel_it)
{
	check_cancel_while_waiting(sync_epoch_synchronize);
}
END_TEST

START_TEST(cancel_while_barrier_waits_does_not_cancel_it)
{
	check_cancel_while_waiting(sync_epoch_barrier);
}
END_TEST

/* ---- nesting limit ------------------------------------------------------- */

static int child_nests_too_deep(void *arg)
{
	(void)arg;
	for (int i = 0; i < 65536; i++)
		sync_epoch_enter();
	return 0;
}

START_TEST(nesting_past_65535_sections_aborts_with_message)
{
	check_aborts_saying(child_nests_too_deep,
			    "libsync: sync_epoch_enter: sections nested 65535 deep", NULL);
}
END_TEST

/* ---- timely reclamation: the reclaimer thread, sync_epoch_poll --------- */

/* A callback runs within this long once its readers are gone, with no
 * further call of the retiring thread (API.md says about 100 ms; this is
 * generous for a loaded machine). */
#define TIMELY_NS (1000 * NS_PER_MS)
#define RELOAD_OBJECTS 90

/* The kernel ids of this process's threads, in tids[0 .. return-1]. */
static int list_tasks(pid_t *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && n < max)
			tids[n++] = (pid_t)atoi(e->d_name);
	closedir(d);
	return n;
}

static int count_tasks(void)
{
	pid_t tids[256];
	return list_tasks(tids, 256);
}

/* A thread of this process not in before[0 .. n-1]; 0 if none. */
static pid_t new_task(const pid_t *before, int n)
{
	pid_t now[256];
	int m = list_tasks(now, 256);
	for (int i = 0; i < m; i++) {
		bool old = false;
		for (int j = 0; j < n; j++)
			old = old || now[i] == before[j];
		if (!old)
			return now[i];
	}
	return 0;
}

static long voluntary_switches(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	long n = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Waits (no libsync call) until calls[0 .. n-1] have all run once, or for
 * TIMELY_NS; returns the time it took, or -1. */
static int64_t wait_all_called(atomic_int *calls, int n, int64_t since)
{
	for (;;) {
		int done = 0;
		for (int i = 0; i < n; i++)
			done += atomic_load(&calls[i]) == 1;
		int64_t now = now_ns();
		if (done == n)
			return now - since;
		if (now - since > TIMELY_NS)
			return -1;
		sleep_ns(NS_PER_MS);
	}
}

static void report_latency(const char *what, int64_t ns)
{
	printf("# %s: %.1f ms\n", what, (double)ns / NS_PER_MS);
	fflush(stdout);
}

/* A thread that retires calls[0 .. n-1] once (a configuration reload),
 * then never calls libsync again: it waits for `leave` on a plain atomic. */
struct once_retirer {
	pthread_t thread;
	atomic_int *calls;
	int n;
	_Atomic int64_t retired_at;
	atomic_int leave;
};

static void *retire_once_then_idle(void *arg)
{
	struct once_retirer *o = arg;
	retire_counted(o->calls, o->n);
	atomic_store(&o->retired_at, now_ns());
	while (!atomic_load(&o->leave))
		sleep_ns(NS_PER_MS);
	return NULL;
}

static void once_retirer_start(struct once_retirer *o, atomic_int *calls, int n)
{
	o->calls = calls;
	o->n = n;
	atomic_init(&o->retired_at, 0);
	atomic_init(&o->leave, 0);
	ck_assert_int_eq(pthread_create(&o->thread, NULL, retire_once_then_idle, o), 0);
	while (!atomic_load(&o->retired_at))
		sleep_ns(100 * 1000);
}

static void once_retirer_finish(struct once_retirer *o)
{
	atomic_store(&o->leave, 1);
	ck_assert_int_eq(pthread_join(o->thread, NULL), 0);
}

START_TEST(no_reclaimer_thread_before_first_retire_then_exactly_one)
{
	int before = count_tasks();
	sync_epoch_enter();
	sync_epoch_exit();
	sync_epoch_synchronize();
	sync_epoch_barrier();
	ck_assert_uint_eq(sync_epoch_poll(), 0);
	ck_assert_int_eq(count_tasks(), before);
	atomic_int calls[RELOAD_OBJECTS] = { 0 };
	retire_counted(calls, 1);
	ck_assert_int_eq(count_tasks(), before + 1);
	retire_counted(calls + 1, RELOAD_OBJECTS - 1);
	ck_assert_int_ge(wait_all_called(calls, RELOAD_OBJECTS, now_ns()), 0);
	ck_assert_int_eq(count_tasks(), before + 1);
}
END_TEST

START_TEST(reclaimer_sleeps_while_nothing_is_pending_until_next_retire)
{
	pid_t tids[256];
	int n = list_tasks(tids, 256);
	atomic_int calls = 0;
	sync_epoch_retire(&calls, count_call);
	pid_t reclaimer = new_task(tids, n);
	ck_assert_int_ne(reclaimer, 0);
	ck_assert_int_ge(wait_all_called(&calls, 1, now_ns()), 0);
	sleep_ns(100 * NS_PER_MS); /* lets it look once more and go to sleep */
	long before = voluntary_switches(reclaimer);
	sleep_ns(500 * NS_PER_MS); /* ten of its rounds, were it awake */
	long after = voluntary_switches(reclaimer);
	ck_assert_msg(after - before <= 1, "the reclaimer woke %ld times in 500 ms with nothing pending",
		      after - before);
	atomic_int again = 0; /* the next retire wakes it */
	sync_epoch_retire(&again, count_call);
	ck_assert_msg(wait_all_called(&again, 1, now_ns()) >= 0, "the asleep reclaimer was not woken");
}
END_TEST

START_TEST(callbacks_of_thread_that_retires_once_run_without_further_calls)
{
	static atomic_int calls[RELOAD_OBJECTS];
	struct once_retirer o;
	once_retirer_start(&o, calls, RELOAD_OBJECTS);
	int64_t took = wait_all_called(calls, RELOAD_OBJECTS, atomic_load(&o.retired_at));
	ck_assert_msg(took >= 0, "callbacks still pending 1 s after the retires");
	report_latency("90 retires, all run after", took);
	once_retirer_finish(&o);
	check_each_called(calls, RELOAD_OBJECTS, 1);
}
END_TEST

START_TEST(callbacks_wait_for_reader_then_run_without_further_calls)
{
	static atomic_int calls[RELOAD_OBJECTS];
	struct reader old;
	struct once_retirer o;
	reader_start(&old, 1, NULL, 0);
	once_retirer_start(&o, calls, RELOAD_OBJECTS);
	sleep_ns(300 * NS_PER_MS); /* several of the reclaimer's rounds */
	check_each_called(calls, RELOAD_OBJECTS, 0);
	int64_t told = now_ns();
	reader_hold(&old, 0);
	int64_t took = wait_all_called(calls, RELOAD_OBJECTS, told);
	ck_assert_msg(took >= 0, "callbacks still pending 1 s after the reader left");
	report_latency("90 retires behind a reader, all run after it left", took);
	once_retirer_finish(&o);
	reader_finish(&old);
}
END_TEST

/* A writer that retires one object every 20 ms, for 1.6 s, while a reader
 * runs 30 ms sections back to back: its list's block never fills up
 * before the first callbacks are due, and never becomes due as a whole
 * (each grace period ends after the writer's next retires). */
#define STEADY_OBJECTS 80

struct timed {
	_Atomic int64_t retired, ran;
};

static void note_time(void *p)
{
	atomic_store(&((struct timed *)p)->ran, now_ns());
}

static void *retire_every_20ms(void *arg)
{
	struct timed *t = arg;
	for (int i = 0; i < STEADY_OBJECTS; i++) {
		atomic_store(&t[i].retired, now_ns());
		sync_epoch_retire(&t[i], note_time);
		sleep_ns(20 * NS_PER_MS);
	}
	return NULL;
}

static void *sections_of_30ms(void *arg)
{
	atomic_int *stop = arg;
	while (!atomic_load(stop)) {
		sync_epoch_enter();
		sleep_ns(30 * NS_PER_MS);
		sync_epoch_exit();
	}
	return NULL;
}

START_TEST(callbacks_of_thread_that_retires_steadily_run_within_a_second_each)
{
	static struct timed t[STEADY_OBJECTS];
	atomic_int stop = 0;
	pthread_t th, reader;
	ck_assert_int_eq(pthread_create(&reader, NULL, sections_of_30ms, &stop), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, retire_every_20ms, t), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	atomic_store(&stop, 1);
	ck_assert_int_eq(pthread_join(reader, NULL), 0);
	int64_t start = now_ns(), worst = 0;
	for (int i = 0; i < STEADY_OBJECTS; i++) {
		while (!atomic_load(&t[i].ran) && now_ns() - start < TIMELY_NS)
			sleep_ns(NS_PER_MS);
		ck_assert_msg(atomic_load(&t[i].ran), "callback %d never ran", i);
		int64_t took = atomic_load(&t[i].ran) - atomic_load(&t[i].retired);
		worst = took > worst ? took : worst;
	}
	report_latency("a retire every 20 ms, worst wait", worst);
	ck_assert_msg(worst < TIMELY_NS, "a callback waited %.0f ms", (double)worst / NS_PER_MS);
}
END_TEST

static void count_chain(void *p)
{
	struct chain *c = p;
	atomic_fetch_add(&c->second, 1);
}

static void retire_and_lock(void *p)
{
	struct chain *c = p;
	static sync_mutex_t lock = SYNC_MUTEX_INITIALIZER;
	sync_mutex_lock(&lock);
	atomic_fetch_add(&c->first, 1);
	sync_epoch_retire(c, count_chain);
	sync_mutex_unlock(&lock);
}

START_TEST(callback_run_by_reclaimer_can_take_locks_and_retire)
{
	struct chain c = { 0, 0 };
	sync_epoch_retire(&c, retire_and_lock);
	int64_t start = now_ns();
	while ((atomic_load(&c.first) != 1 || atomic_load(&c.second) != 1) &&
	       now_ns() - start < 2 * TIMELY_NS)
		sleep_ns(NS_PER_MS);
	ck_assert_int_eq(atomic_load(&c.first), 1);
	ck_assert_int_eq(atomic_load(&c.second), 1);
}
END_TEST

/* mallinfo2() says what glibc's malloc holds; under AddressSanitizer its
 * allocator holds freed blocks in quarantine and mallinfo2 says nothing
 * useful, so the memory halves of the two tests below are left out. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_MEASURED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_MEASURED 0
#endif
#endif
#ifndef HEAP_MEASURED
#define HEAP_MEASURED 1
#endif

/* The map's removed values, retired by the removing thread, which then
 * calls libsync no more; and the map's own nodes (epoch_retire_nowait),
 * seen as memory given back to malloc. */
struct map_remover {
	sync_map_t *map;
	atomic_int *calls;
	atomic_int removed;
	atomic_int leave;
};

#define MAP_KEY_BYTES 4000

static void map_key(char *key, int i)
{
	memset(key, 'k', MAP_KEY_BYTES);
	memcpy(key, &i, sizeof i);
}

static void *remove_and_retire_then_idle(void *arg)
{
	struct map_remover *m = arg;
	static char key[MAP_KEY_BYTES];
	for (int i = 0; i < RELOAD_OBJECTS; i++) {
		void *old = NULL;
		map_key(key, i);
		if (sync_map_remove(m->map, key, MAP_KEY_BYTES, &old) == 0)
			sync_epoch_retire(old, count_call);
	}
	atomic_store(&m->removed, 1);
	while (!atomic_load(&m->leave))
		sleep_ns(NS_PER_MS);
	return NULL;
}

START_TEST(map_values_and_nodes_removed_once_are_reclaimed_without_further_calls)
{
	static atomic_int calls[RELOAD_OBJECTS];
	static char key[MAP_KEY_BYTES];
	struct map_remover m = { sync_map_create(0), calls, 0, 0 };
	ck_assert_ptr_nonnull(m.map);
	for (int i = 0; i < RELOAD_OBJECTS; i++) {
		map_key(key, i);
		ck_assert_int_eq(sync_map_put(m.map, key, MAP_KEY_BYTES, &calls[i], NULL), 0);
	}
	sync_epoch_enter(); /* holds both back until we have measured */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, remove_and_retire_then_idle, &m), 0);
	ck_assert(wait_until_equal(&m.removed, 1));
	long held = (long)mallinfo2().uordblks;
	check_each_called(calls, RELOAD_OBJECTS, 0);
	sync_epoch_exit();
	int64_t start = now_ns();
	int64_t took = wait_all_called(calls, RELOAD_OBJECTS, start);
	ck_assert_msg(took >= 0, "values still pending 1 s after the removes");
	report_latency("90 map values, all run after", took);
	long want = RELOAD_OBJECTS * MAP_KEY_BYTES * 9 / 10;
	while (HEAP_MEASURED && held - (long)mallinfo2().uordblks < want &&
	       now_ns() - start < TIMELY_NS)
		sleep_ns(NS_PER_MS);
	ck_assert_msg(!HEAP_MEASURED || held - (long)mallinfo2().uordblks >= want,
		      "the map's removed nodes were not freed within 1 s (%ld of %ld bytes)",
		      held - (long)mallinfo2().uordblks, want);
	atomic_store(&m.leave, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	sync_map_destroy(m.map, NULL);
}
END_TEST

/* A queue-only program: the queue's segments, retired by its pops through
 * the epoch's internal no-waiting retire, start the reclaimer by the
 * thread's 64th retire, and go back to malloc without further calls once
 * the queue is destroyed. */
#define QUEUE_SEGMENTS 70
#define QUEUE_SEGMENT_BYTES (1024 * 16) /* its slots, at least */

struct queue_user {
	atomic_int done, leave;
};

static void *push_pop_destroy_then_idle(void *arg)
{
	struct queue_user *u = arg;
	sync_queue_t *q = sync_queue_create();
	ck_assert_ptr_nonnull(q);
	for (long i = 0; i < QUEUE_SEGMENTS * 1024L; i++) {
		void *item;
		ck_assert_int_eq(sync_queue_push(q, (void *)i), 0);
		ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	}
	sync_queue_destroy(q);
	atomic_store(&u->done, 1);
	while (!atomic_load(&u->leave))
		sleep_ns(NS_PER_MS);
	return NULL;
}

START_TEST(queue_segments_are_freed_without_further_calls)
{
	struct queue_user u = { 0, 0 };
	int before = count_tasks();
	sync_epoch_enter(); /* holds every segment back until we have measured */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, push_pop_destroy_then_idle, &u), 0);
	ck_assert(wait_until_equal(&u.done, 1));
	long held = (long)mallinfo2().uordblks;
	ck_assert_int_eq(count_tasks(), before + 2); /* t and the reclaimer */
	sync_epoch_exit();
	int64_t start = now_ns();
	long want = (QUEUE_SEGMENTS - 5) * (long)QUEUE_SEGMENT_BYTES;
	while (HEAP_MEASURED && held - (long)mallinfo2().uordblks < want &&
	       now_ns() - start < TIMELY_NS)
		sleep_ns(NS_PER_MS);
	ck_assert_msg(!HEAP_MEASURED || held - (long)mallinfo2().uordblks >= want,
		      "the queue's segments were not freed within 1 s (%ld of %ld bytes)",
		      held - (long)mallinfo2().uordblks, want);
	report_latency("70 queue segments, freed after", now_ns() - start);
	atomic_store(&u.leave, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

static _Thread_local int ran_here; /* callbacks count_here ran in this thread */

static void count_here(void *p)
{
	ran_here++;
	count_call(p);
}

START_TEST(poll_without_pending_callbacks_returns_zero)
{
	errno = EDOM;
	ck_assert_uint_eq(sync_epoch_poll(), 0); /* first call of the thread */
	ck_assert_int_eq(errno, EDOM);
	ck_assert_uint_eq(sync_epoch_poll(), 0);
	atomic_int calls = 0;
	sync_epoch_retire(&calls, count_call);
	sync_epoch_barrier();
	ck_assert_uint_eq(sync_epoch_poll(), 0);
	ck_assert_int_eq(atomic_load(&calls), 1);
}
END_TEST

/* The reclaimer is held in a callback that blocks: poll runs the ready
 * callbacks itself, and returns how many; synchronize does not wait for
 * the blocked callback. */
START_TEST(poll_runs_ready_callbacks_and_returns_how_many)
{
	static atomic_int calls[10];
	struct hold h = { 0, 0 };
	hold_reclaimer(&h);
	for (int i = 0; i < 10; i++)
		sync_epoch_retire(&calls[i], count_here);
	errno = EDOM;
	ck_assert_uint_eq(sync_epoch_poll(), 10);
	ck_assert_int_eq(errno, EDOM);
	ck_assert_int_eq(ran_here, 10);
	check_each_called(calls, 10, 1);
	ck_assert_uint_eq(sync_epoch_poll(), 0);
	int64_t start = now_ns();
	sync_epoch_synchronize();
	ck_assert_int_lt(now_ns() - start, PROMPT_NS);
	atomic_store(&h.release, 1);
	sync_epoch_barrier();
	check_each_called(calls, 10, 1);
}
END_TEST

/* Another thread retired and went quiet; the reclaimer is held in a
 * blocking callback: poll runs that thread's ready callbacks too (API.md:
 * poll runs callbacks whose grace period is over), and counts them. */
START_TEST(poll_runs_other_threads_ready_callbacks)
{
	static atomic_int calls[10];
	struct hold h = { 0, 0 };
	hold_reclaimer(&h);
	struct once_retirer o;
	once_retirer_start(&o, calls, 10);
	size_t ran = 0;
	int64_t start = now_ns();
	while (ran < 10 && now_ns() - start < TIMELY_NS)
		ran += sync_epoch_poll();
	ck_assert_uint_eq(ran, 10);
	check_each_called(calls, 10, 1);
	atomic_store(&h.release, 1);
	once_retirer_finish(&o);
	sync_epoch_barrier();
	check_each_called(calls, 10, 1);
}
END_TEST

START_TEST(poll_runs_nothing_that_a_running_section_may_see)
{
	static atomic_int calls[10];
	struct reader old;
	reader_start(&old, 1, NULL, 0);
	for (int i = 0; i < 10; i++)
		sync_epoch_retire(&calls[i], count_here);
	size_t ran = 0;
	for (int i = 0; i < 20; i++) {
		ran += sync_epoch_poll();
		sleep_ns(10 * NS_PER_MS);
	}
	ck_assert_uint_eq(ran, 0);
	check_each_called(calls, 10, 0);
	sync_epoch_enter(); /* and inside the poller's own section */
	atomic_int own = 0;
	sync_epoch_retire(&own, count_here);
	reader_hold(&old, 0);
	for (int i = 0; i < 20; i++) {
		ran += sync_epoch_poll();
		sleep_ns(NS_PER_MS);
	}
	ck_assert_int_eq(atomic_load(&own), 0);
	sync_epoch_exit();
	int64_t start = now_ns();
	while (now_ns() - start < TIMELY_NS && atomic_load(&own) == 0)
		ran += sync_epoch_poll();
	ck_assert_int_eq(atomic_load(&own), 1);
	ck_assert_int_ge(wait_all_called(calls, 10, start), 0);
	ck_assert_uint_eq(ran, (size_t)ran_here); /* the rest ran in the reclaimer */
	reader_finish(&old);
}
END_TEST

/* In a child forked after the parent's reclaimer started. */
static int child_retires_once(void *arg)
{
	(void)arg;
	static atomic_int calls[RELOAD_OBJECTS];
	int before = count_tasks();
	retire_counted(calls, RELOAD_OBJECTS);
	if (count_tasks() != before + 1)
		return 1;
	return wait_all_called(calls, RELOAD_OBJECTS, now_ns()) >= 0 ? 0 : 2;
}

START_TEST(fork_child_gets_its_own_reclaimer_at_its_first_retire)
{
	atomic_int calls = 0;
	sync_epoch_retire(&calls, count_call);
	ck_assert_int_ge(wait_all_called(&calls, 1, now_ns()), 0);
	ck_assert_int_eq(child_status(fork_running(child_retires_once, NULL)), 0);
}
END_TEST

/* In a child: exit() while the reclaimer is in a callback that blocks. */
static int child_exits_while_reclaimer_blocks(void *arg)
{
	(void)arg;
	static struct hold h;
	sync_epoch_retire(&h, hold_until_released);
	while (!atomic_load(&h.started))
		sleep_ns(NS_PER_MS);
	exit(0);
}

static void sleep_then_count(void *p)
{
	sleep_ns(2 * NS_PER_MS);
	atomic_fetch_add((atomic_int *)p, 1);
}

static atomic_int *exit_counts; /* [0]: callbacks run; [1]: run after exit began */

/* Registered before libsync's handler, so it runs after it. */
static void count_runs_after_exit(void)
{
	int at = atomic_load(&exit_counts[0]);
	sleep_ns(50 * NS_PER_MS);
	atomic_store(&exit_counts[1], atomic_load(&exit_counts[0]) - at);
}

/* In a child: exit() while the reclaimer works through 500 slow
 * callbacks: it stops at the next one. Retired inside a section, so that
 * none runs before the last is queued. */
static int child_exits_while_reclaimer_runs_many(void *arg)
{
	atomic_int *ran = arg;
	exit_counts = arg;
	if (atexit(count_runs_after_exit) != 0)
		return 10;
	sync_epoch_enter();
	for (int i = 0; i < 500; i++)
		sync_epoch_retire(ran, sleep_then_count);
	sync_epoch_exit();
	while (!atomic_load(ran))
		sleep_ns(NS_PER_MS);
	exit(0);
}

START_TEST(exit_while_reclaimer_runs_callbacks_exits_promptly_without_running_the_rest)
{
	int64_t start = now_ns();
	ck_assert_int_eq(child_status(fork_running(child_exits_while_reclaimer_blocks, NULL)), 0);
	ck_assert_int_lt(now_ns() - start, TIMELY_NS);
	atomic_int *ran = map_shared(2 * sizeof *ran);
	ck_assert_int_eq(child_status(fork_running(child_exits_while_reclaimer_runs_many, ran)), 0);
	ck_assert_int_lt(atomic_load(&ran[0]), 500);
	ck_assert_msg(atomic_load(&ran[1]) == 0, "%d callbacks ran after exit() began",
		      atomic_load(&ran[1]));
}
END_TEST

/* ---- the suite: every group in both modes ------------------------------- */

static TCase *mode_tcase(Suite *s, const char *name, bool no_membarrier)
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, no_membarrier ? use_no_membarrier_mode : use_membarrier_mode,
				  NULL);
	suite_add_tcase(s, tc);
	return tc;
}

static void add_groups(Suite *s, bool nomb)
{
	TCase *tc = mode_tcase(s, nomb ? "mode_no_membarrier" : "mode", nomb);
	if (nomb)
		tcase_add_test(tc, no_membarrier_variable_keeps_process_unregistered);
	else
		tcase_add_test(tc, first_use_registers_process_for_private_expedited_membarrier);

	tc = mode_tcase(s, nomb ? "sections_no_membarrier" : "sections", nomb);
	tcase_add_test(tc, exit_ends_section_begun_by_enter);
	tcase_add_test(tc, nested_sections_end_at_matching_outermost_exit);
	tcase_add_test(tc, library_enter_and_exit_hold_section_like_inline_ones);
	tcase_add_test(tc, inline_and_library_enter_and_exit_nest_together);
	tcase_add_test(tc, synchronize_without_readers_returns_promptly);
	tcase_add_test(tc, synchronize_with_idle_registered_threads_returns_promptly);
	tcase_add_test(tc, synchronize_waits_for_reader_inside_section_until_it_exits);
	tcase_add_test(tc, synchronize_waits_for_nested_reader_until_outermost_exit);
	tcase_add_test(tc, synchronize_waits_for_every_reader_inside);
	tcase_add_test(tc, synchronize_does_not_wait_for_reader_that_entered_after_it_began);
	tcase_add_test(tc, concurrent_synchronize_calls_wait_for_reader_then_all_return);
	tcase_add_test(tc, thread_that_exits_inside_section_does_not_block_synchronize);
	tcase_add_test(tc, synchronize_from_many_threads_in_turn_returns_promptly);
	tcase_add_test(tc, object_reached_inside_section_is_not_reclaimed_before_section_ends);

	tc = mode_tcase(s, nomb ? "callbacks_no_membarrier" : "callbacks", nomb);
	tcase_add_test(tc, synchronize_runs_callback_this_thread_retired_before_it);
	tcase_add_test(tc, barrier_runs_callback_retired_before_it_exactly_once);
	tcase_add_test(tc, barrier_runs_every_callback_retired_so_far);
	tcase_add_test(tc, barrier_runs_callbacks_retired_by_other_thread_still_running);
	tcase_add_test(tc, barrier_runs_callbacks_of_thread_that_has_exited);
	tcase_add_test(tc, barrier_runs_callbacks_of_many_threads_that_have_exited);
	tcase_add_test(tc, barrier_runs_callbacks_of_thread_that_exited_inside_section);
	tcase_add_test(tc, synchronize_runs_callbacks_of_thread_that_has_exited);
	tcase_add_test(tc, retires_of_other_thread_run_callbacks_of_thread_that_has_exited);
	tcase_add_test(tc, retires_alone_run_earlier_callbacks_without_synchronize);
	tcase_add_test(tc, callbacks_do_not_run_while_reader_from_before_retire_is_inside);
	tcase_add_test(tc, barrier_waits_for_reader_from_before_retire_then_runs_callback);
	tcase_add_test(tc, barrier_waits_for_callback_other_thread_is_running);
	tcase_add_test(tc, callbacks_retired_inside_section_wait_for_that_section);
	tcase_add_test(tc, callbacks_retired_inside_nested_section_run_after_outermost_exit);
	tcase_add_test(tc, callback_can_retire_another_callback);
	tcase_add_test(tc, callback_can_retire_itself_again);
	tcase_add_test(tc, retire_of_null_pointer_calls_fn_with_null);
	tcase_add_test(tc, retire_with_null_fn_queues_nothing);
	tcase_add_test(tc, callbacks_run_exactly_once_under_concurrent_retires_and_barriers);

	tc = mode_tcase(s, nomb ? "aborts_no_membarrier" : "aborts", nomb);
	tcase_add_test(tc, exit_without_enter_aborts_with_message);
	tcase_add_test(tc, library_exit_without_enter_aborts_with_message);
	tcase_add_test(tc, exit_after_every_section_ended_aborts_with_message);
	tcase_add_test(tc, synchronize_inside_section_aborts_with_message);
	tcase_add_test(tc, synchronize_inside_nested_section_aborts_with_message);
	tcase_add_test(tc, barrier_inside_section_aborts_with_message);
	tcase_add_test(tc, nesting_past_65535_sections_aborts_with_message);

	tc = mode_tcase(s, nomb ? "no_memory_no_membarrier" : "no_memory", nomb);
	tcase_add_test(tc, retire_outside_section_without_memory_runs_callback_before_returning);
	tcase_add_test(tc, retire_inside_section_without_memory_waits_until_memory_returns);

	tc = mode_tcase(s, nomb ? "fork_no_membarrier" : "fork", nomb);
	tcase_add_test(tc, synchronize_in_child_does_not_wait_for_parents_reader);
	tcase_add_test(tc, barrier_in_child_runs_callbacks_retired_by_every_parent_thread);
	tcase_add_test(tc, child_threads_use_epoch_after_fork);
	tcase_add_test(tc, parent_still_waits_for_its_reader_after_fork);
	tcase_add_test(tc, fork_inside_section_while_synchronize_waits_for_it_does_not_deadlock);
	tcase_add_test(tc, fork_inside_section_while_barrier_waits_for_it_does_not_deadlock);
	tcase_add_test(tc, fork_inside_section_while_retire_waits_at_high_water_does_not_deadlock);

	tc = mode_tcase(s, nomb ? "threads_no_membarrier" : "threads", nomb);
	tcase_add_test(tc, thread_that_joins_without_memory_still_protects_and_leaves_domain_whole);
	tcase_add_test(tc, callbacks_of_exited_threads_run_without_further_calls);
	tcase_add_test(tc, retire_without_memory_leaves_errno_alone);
	if (!nomb)
		tcase_add_test(tc, first_use_with_membarrier_refused_leaves_errno_alone);
	tcase_add_test(tc, cancel_while_synchronize_waits_does_not_cancel_it);
	tcase_add_test(tc, cancel_while_barrier_waits_does_not_cancel_it);

	tc = mode_tcase(s, nomb ? "timely_no_membarrier" : "timely", nomb);
	tcase_add_test(tc, no_reclaimer_thread_before_first_retire_then_exactly_one);
	tcase_add_test(tc, reclaimer_sleeps_while_nothing_is_pending_until_next_retire);
	tcase_add_test(tc, callbacks_of_thread_that_retires_once_run_without_further_calls);
	tcase_add_test(tc, callbacks_wait_for_reader_then_run_without_further_calls);
	tcase_add_test(tc, callbacks_of_thread_that_retires_steadily_run_within_a_second_each);
	tcase_add_test(tc, callback_run_by_reclaimer_can_take_locks_and_retire);
	tcase_add_test(tc, map_values_and_nodes_removed_once_are_reclaimed_without_further_calls);
	tcase_add_test(tc, queue_segments_are_freed_without_further_calls);
	tcase_add_test(tc, poll_without_pending_callbacks_returns_zero);
	tcase_add_test(tc, poll_runs_ready_callbacks_and_returns_how_many);
	tcase_add_test(tc, poll_runs_nothing_that_a_running_section_may_see);
	tcase_add_test(tc, poll_runs_other_threads_ready_callbacks);
	tcase_add_test(tc, fork_child_gets_its_own_reclaimer_at_its_first_retire);
	tcase_add_test(tc, exit_while_reclaimer_runs_callbacks_exits_promptly_without_running_the_rest);
}

static Suite *suite(void)
{
	Suite *s = suite_create("epoch");
	add_groups(s, false);
	add_groups(s, true);
	return s;
}
