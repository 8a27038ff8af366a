/* Unit tests for <sync/queue.h>: one behaviour of the contract per test. */
#define _GNU_SOURCE /* SIGUSR1, syscall, pthreads */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include <sync.h>

#include "fault_alloc.h"
#include "tap_main.h"
#include "util.h"

/* Slots per segment in the design (Ramalhete and Correia's FAAArrayQueue). */
#define SEGMENT_SLOTS 1024
/* Bytes of a segment: at least its 1024 slots of an item and a state word. */
#define SEGMENT_BYTES (SEGMENT_SLOTS * 16)

/* Deadline of waiters that a push should wake: past WAIT_LIMIT_NS, so that
 * a missing wake-up fails the wait for it rather than times out into a
 * successful pop. */
#define LONG_DEADLINE_NS (WAIT_LIMIT_NS + 1000 * NS_PER_MS)

/* What pop leaves in *item when it takes nothing. */
static int untouched_marker;
#define UNTOUCHED ((void *)&untouched_marker)

/* Item i (i >= 0) as a distinct non-NULL pointer, and back. */
static void *item_of(long i)
{
	return (void *)(uintptr_t)(i + 1);
}

static long index_of(void *item)
{
	return (long)(uintptr_t)item - 1;
}

static sync_queue_t *new_queue(void)
{
	sync_queue_t *q = sync_queue_create();
	ck_assert_ptr_nonnull(q);
	return q;
}

static void push_items(sync_queue_t *q, long from, long to)
{
	for (long i = from; i < to; i++)
		ck_assert_int_eq(sync_queue_push(q, item_of(i)), 0);
}

/* Pops items from .. to - 1, in that order. */
static void pop_items(sync_queue_t *q, long from, long to)
{
	for (long i = from; i < to; i++) {
		void *item = UNTOUCHED;
		ck_assert_int_eq(sync_queue_pop(q, &item), 0);
		ck_assert_msg(item == item_of(i), "popped item %ld, expected %ld", index_of(item), i);
	}
}

static void check_empty(sync_queue_t *q)
{
	void *item = UNTOUCHED;
	ck_assert_uint_eq(sync_queue_size(q), 0);
	ck_assert_int_eq(sync_queue_pop(q, &item), EAGAIN);
	ck_assert_ptr_eq(item, UNTOUCHED);
}

/* ---- one push in another thread ----------------------------------------- */

struct push_call {
	sync_queue_t *q;
	void *item;
	int result;
};

static void *push_call_main(void *arg)
{
	struct push_call *c = arg;
	c->result = sync_queue_push(c->q, c->item);
	return NULL;
}

static int push_in_other_thread(sync_queue_t *q, void *item)
{
	struct push_call c = { q, item, -1 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, push_call_main, &c), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	return c.result;
}

/* ---- a thread that sleeps in pop_wait ----------------------------------- */

struct waiter {
	sync_queue_t *q;
	int64_t timeout_ns;   /* 0: no deadline (abstime NULL) */
	atomic_int *returned; /* counts waiters that came back */
	pthread_t thread;
	atomic_int tid;
	atomic_int arriving;  /* set just before the wait */
	int result;
	void *item;
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
	w->result = sync_queue_pop_wait(w->q, &w->item, w->timeout_ns ? &d : NULL);
	w->returned_at = now_ns();
	atomic_fetch_add(w->returned, 1);
	return NULL;
}

/* Starts a thread that pop_waits on q, and returns once it sleeps there. */
static void waiter_start(struct waiter *w, sync_queue_t *q, int64_t timeout_ns,
			 atomic_int *returned)
{
	w->q = q;
	w->timeout_ns = timeout_ns;
	w->returned = returned;
	atomic_init(&w->tid, 0);
	atomic_init(&w->arriving, 0);
	w->result = -1;
	w->item = UNTOUCHED;
	ck_assert_int_eq(pthread_create(&w->thread, NULL, waiter_main, w), 0);
	ck_assert(wait_until_equal(&w->arriving, 1));
	ck_assert_msg(wait_until_asleep(atomic_load(&w->tid)), "waiter never slept");
}

/* Joins the waiter; its pop_wait's result. */
static int waiter_finish(struct waiter *w)
{
	ck_assert_int_eq(pthread_join(w->thread, NULL), 0);
	return w->result;
}

/* ---- a thread that pushes once the caller sleeps ------------------------ */

struct pusher {
	sync_queue_t *q;
	void *item;
	pid_t sleeper;
	pthread_t thread;
	atomic_int arriving; /* set by the sleeper just before it waits */
	atomic_int pushing;  /* set just before the push */
	int result;
	bool saw_sleeper;
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	p->saw_sleeper = wait_until_equal(&p->arriving, 1) && wait_until_asleep(p->sleeper);
	sleep_ns(20 * NS_PER_MS);
	atomic_store(&p->pushing, 1);
	p->result = sync_queue_push(p->q, p->item);
	return NULL;
}

/* Starts a thread that pushes item 20 ms after the caller, once `arriving`,
 * sleeps. */
static void pusher_start(struct pusher *p, sync_queue_t *q, void *item)
{
	p->q = q;
	p->item = item;
	p->sleeper = thread_id();
	atomic_init(&p->arriving, 0);
	atomic_init(&p->pushing, 0);
	p->result = -1;
	p->saw_sleeper = false;
	ck_assert_int_eq(pthread_create(&p->thread, NULL, pusher_main, p), 0);
}

static void pusher_finish(struct pusher *p)
{
	ck_assert_int_eq(pthread_join(p->thread, NULL), 0);
	ck_assert_int_eq(p->result, 0);
	ck_assert(p->saw_sleeper);
}

/* ---- create and destroy ------------------------------------------------- */

START_TEST(create_returns_empty_queue)
{
	sync_queue_t *q = new_queue();
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(destroy_of_null_queue_does_nothing)
{
	sync_queue_destroy(NULL);
}
END_TEST

START_TEST(destroy_of_drained_queue_returns)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 10);
	pop_items(q, 0, 10);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(destroy_of_queue_holding_items_leaves_items_alone)
{
	static int items[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	sync_queue_t *q = new_queue();
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(sync_queue_push(q, &items[i]), 0);
	sync_queue_destroy(q); /* freeing a static item would abort */
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(items[i], i);
}
END_TEST

START_TEST(destroy_of_queue_holding_items_in_many_segments_returns)
{
	static int items[10];
	sync_queue_t *q = new_queue();
	for (int i = 0; i < 5 * SEGMENT_SLOTS; i++)
		ck_assert_int_eq(sync_queue_push(q, &items[i % 10]), 0);
	sync_queue_destroy(q);
	sync_epoch_barrier();
}
END_TEST

START_TEST(destroy_with_drained_segments_awaiting_grace_period_then_barrier)
{
	sync_queue_t *q = new_queue();
	for (long i = 0; i < 10 * SEGMENT_SLOTS; i++) {
		ck_assert_int_eq(sync_queue_push(q, item_of(i)), 0);
		pop_items(q, i, i + 1);
	}
	push_items(q, 0, 3 * SEGMENT_SLOTS);
	pop_items(q, 0, 2 * SEGMENT_SLOTS);
	sync_queue_destroy(q);
	sync_epoch_barrier(); /* runs whatever the queue left retired */
	sync_queue_t *again = new_queue();
	push_items(again, 0, 2 * SEGMENT_SLOTS);
	pop_items(again, 0, 2 * SEGMENT_SLOTS);
	sync_queue_destroy(again);
}
END_TEST

START_TEST(queues_are_independent)
{
	sync_queue_t *a = new_queue(), *b = new_queue();
	push_items(a, 0, 3);
	push_items(b, 100, 102);
	ck_assert_uint_eq(sync_queue_size(a), 3);
	ck_assert_uint_eq(sync_queue_size(b), 2);
	pop_items(b, 100, 102);
	pop_items(a, 0, 3);
	check_empty(a);
	check_empty(b);
	sync_queue_destroy(a);
	sync_queue_destroy(b);
}
END_TEST

/* Drained segments are still waiting for their grace period when the
 * queue is destroyed inside the caller's own read-side section: the
 * segments' callbacks, run later, free them and the queue. */
static int child_destroys_inside_section(void *arg)
{
	(void)arg;
	sync_queue_t *q = sync_queue_create();
	if (!q)
		return 100;
	for (int i = 0; i < 3000; i++) {
		void *item;
		if (sync_queue_push(q, item_of(i)) || sync_queue_pop(q, &item))
			return 101;
	}
	sync_epoch_enter();
	sync_queue_destroy(q);
	sync_epoch_exit();
	sync_epoch_barrier();
	return 0;
}

START_TEST(destroy_inside_read_side_section_is_allowed)
{
	char err[512];
	int status = run_child_capturing_stderr(child_destroys_inside_section, NULL, err,
						sizeof err);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (wait status %#x); stderr: %s", (unsigned)status, err);
	ck_assert_msg(err[0] == '\0', "unexpected message: %s", err);
}
END_TEST

/* ---- NULL arguments ----------------------------------------------------- */

START_TEST(push_to_null_queue_returns_einval)
{
	ck_assert_int_eq(sync_queue_push(NULL, item_of(0)), EINVAL);
	ck_assert_int_eq(sync_queue_push(NULL, NULL), EINVAL);
}
END_TEST

START_TEST(pop_from_null_queue_returns_einval_and_leaves_item_untouched)
{
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(NULL, &item), EINVAL);
	ck_assert_ptr_eq(item, UNTOUCHED);
}
END_TEST

START_TEST(pop_into_null_item_pointer_returns_einval_and_takes_nothing)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 1);
	ck_assert_int_eq(sync_queue_pop(q, NULL), EINVAL);
	ck_assert_uint_eq(sync_queue_size(q), 1);
	pop_items(q, 0, 1);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_wait_from_null_queue_returns_einval_at_once)
{
	void *item = UNTOUCHED;
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_queue_pop_wait(NULL, &item, NULL), EINVAL);
	ck_assert_int_eq(sync_queue_pop_wait(NULL, &item, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_ptr_eq(item, UNTOUCHED);
}
END_TEST

START_TEST(pop_wait_into_null_item_pointer_returns_einval_and_takes_nothing)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 1);
	ck_assert_int_eq(sync_queue_pop_wait(q, NULL, NULL), EINVAL);
	ck_assert_uint_eq(sync_queue_size(q), 1);
	pop_items(q, 0, 1);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_wait_into_null_item_pointer_on_empty_queue_returns_einval_at_once)
{
	sync_queue_t *q = new_queue();
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_queue_pop_wait(q, NULL, NULL), EINVAL);
	ck_assert_int_eq(sync_queue_pop_wait(q, NULL, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(size_of_null_queue_is_zero)
{
	ck_assert_uint_eq(sync_queue_size(NULL), 0);
}
END_TEST

/* ---- push and pop ------------------------------------------------------- */

START_TEST(pop_returns_pushed_item)
{
	sync_queue_t *q = new_queue();
	int object;
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_push(q, &object), 0);
	ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	ck_assert_ptr_eq(item, &object);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_of_empty_queue_returns_eagain_and_leaves_item_untouched)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(q, &item), EAGAIN);
	ck_assert_ptr_eq(item, UNTOUCHED);
	ck_assert_int_eq(sync_queue_pop(q, &item), EAGAIN);
	ck_assert_ptr_eq(item, UNTOUCHED);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_of_drained_queue_returns_eagain)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 3);
	pop_items(q, 0, 3);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(items_come_out_in_push_order)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 1000);
	pop_items(q, 0, 1000);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(null_item_is_queued_and_popped_as_null)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_push(q, NULL), 0);
	push_items(q, 0, 1);
	ck_assert_int_eq(sync_queue_push(q, NULL), 0);
	ck_assert_uint_eq(sync_queue_size(q), 3);
	ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	ck_assert_ptr_null(item);
	pop_items(q, 0, 1);
	item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	ck_assert_ptr_null(item);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(same_pointer_pushed_twice_comes_out_twice)
{
	sync_queue_t *q = new_queue();
	int object;
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_push(q, &object), 0);
	ck_assert_int_eq(sync_queue_push(q, &object), 0);
	ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	ck_assert_ptr_eq(item, &object);
	item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	ck_assert_ptr_eq(item, &object);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(item_pushed_by_other_thread_pops_here)
{
	sync_queue_t *q = new_queue();
	ck_assert_int_eq(push_in_other_thread(q, item_of(7)), 0);
	ck_assert_int_eq(push_in_other_thread(q, item_of(8)), 0);
	pop_items(q, 7, 9);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(failed_pops_do_not_lose_later_pushes)
{
	/* a pop of an empty queue must not spend a slot a later push fills */
	sync_queue_t *q = new_queue();
	for (long i = 0; i < 3 * SEGMENT_SLOTS; i++) {
		void *item = UNTOUCHED;
		ck_assert_int_eq(sync_queue_pop(q, &item), EAGAIN);
		ck_assert_int_eq(sync_queue_pop(q, &item), EAGAIN);
		push_items(q, i, i + 1);
		ck_assert_uint_eq(sync_queue_size(q), 1);
		pop_items(q, i, i + 1);
	}
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* ---- size --------------------------------------------------------------- */

START_TEST(size_of_new_queue_is_zero)
{
	sync_queue_t *q = new_queue();
	ck_assert_uint_eq(sync_queue_size(q), 0);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(size_counts_pushed_items)
{
	sync_queue_t *q = new_queue();
	for (long i = 0; i < 5; i++) {
		push_items(q, i, i + 1);
		ck_assert_uint_eq(sync_queue_size(q), (size_t)i + 1);
	}
	sync_queue_destroy(q);
}
END_TEST

START_TEST(size_drops_as_items_are_popped)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 5);
	for (long i = 0; i < 5; i++) {
		pop_items(q, i, i + 1);
		ck_assert_uint_eq(sync_queue_size(q), (size_t)(4 - i));
	}
	sync_queue_destroy(q);
}
END_TEST

START_TEST(size_counts_null_items)
{
	sync_queue_t *q = new_queue();
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sync_queue_push(q, NULL), 0);
	ck_assert_uint_eq(sync_queue_size(q), 4);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(size_is_exact_across_segments)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 5000);
	ck_assert_uint_eq(sync_queue_size(q), 5000);
	pop_items(q, 0, 2500);
	ck_assert_uint_eq(sync_queue_size(q), 2500);
	push_items(q, 5000, 6000);
	ck_assert_uint_eq(sync_queue_size(q), 3500);
	pop_items(q, 2500, 6000);
	ck_assert_uint_eq(sync_queue_size(q), 0);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(size_at_segment_boundaries_is_exact)
{
	sync_queue_t *q = new_queue();
	const long n[] = { SEGMENT_SLOTS - 1, SEGMENT_SLOTS, SEGMENT_SLOTS + 1, 2 * SEGMENT_SLOTS };
	long pushed = 0, popped = 0;
	for (int i = 0; i < 4; i++) {
		push_items(q, pushed, pushed + n[i]);
		pushed += n[i];
		ck_assert_uint_eq(sync_queue_size(q), (size_t)(pushed - popped));
	}
	for (int i = 0; i < 4; i++) {
		pop_items(q, popped, popped + n[i]);
		popped += n[i];
		ck_assert_uint_eq(sync_queue_size(q), (size_t)(pushed - popped));
	}
	sync_queue_destroy(q);
}
END_TEST

/* ---- FIFO order over many segments -------------------------------------- */

#define LONG_RUN 100000

START_TEST(fifo_holds_over_100000_items_pushed_then_popped)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, LONG_RUN);
	ck_assert_uint_eq(sync_queue_size(q), LONG_RUN);
	pop_items(q, 0, LONG_RUN);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(fifo_holds_with_alternating_push_and_pop)
{
	sync_queue_t *q = new_queue();
	for (long i = 0; i < LONG_RUN; i++) {
		push_items(q, i, i + 1);
		pop_items(q, i, i + 1);
	}
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(fifo_holds_with_two_pushes_per_pop)
{
	sync_queue_t *q = new_queue();
	long popped = 0;
	for (long i = 0; i < LONG_RUN; i += 2) {
		push_items(q, i, i + 2);
		pop_items(q, popped, popped + 1);
		popped++;
	}
	ck_assert_uint_eq(sync_queue_size(q), (size_t)(LONG_RUN - popped));
	pop_items(q, popped, LONG_RUN);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(fifo_holds_with_bursts_larger_than_a_segment)
{
	sync_queue_t *q = new_queue();
	long pushed = 0, popped = 0;
	while (pushed < LONG_RUN) {
		push_items(q, pushed, pushed + 1500);
		pushed += 1500;
		pop_items(q, popped, popped + 1400);
		popped += 1400;
	}
	pop_items(q, popped, pushed);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(fifo_holds_with_bursts_around_segment_size)
{
	sync_queue_t *q = new_queue();
	long pushed = 0;
	for (int round = 0; round < 10; round++) {
		for (long n = SEGMENT_SLOTS - 1; n <= SEGMENT_SLOTS + 1; n++) {
			push_items(q, pushed, pushed + n);
			pop_items(q, pushed, pushed + n);
			pushed += n;
			check_empty(q);
		}
	}
	sync_queue_destroy(q);
}
END_TEST

struct producer {
	sync_queue_t *q;
	long id, count;
	atomic_int errors;
};

/* Pushes id << 20 | 0 .. count - 1, in order. */
static void *producer_main(void *arg)
{
	struct producer *p = arg;
	for (long i = 0; i < p->count; i++)
		if (sync_queue_push(p->q, item_of(p->id << 20 | i)) != 0)
			atomic_fetch_add(&p->errors, 1);
	return NULL;
}

START_TEST(fifo_holds_between_producer_thread_and_consumer_thread)
{
	sync_queue_t *q = new_queue();
	struct producer p = { q, 0, LONG_RUN, 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, producer_main, &p), 0);
	for (long i = 0; i < LONG_RUN; i++) {
		void *item = UNTOUCHED;
		struct timespec d = sync_deadline(WAIT_LIMIT_NS);
		ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), 0);
		ck_assert_msg(item == item_of(i), "popped item %ld, expected %ld", index_of(item), i);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(atomic_load(&p.errors), 0);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* Two producers, two consumers: every item popped once, and each consumer
 * sees each producer's items in the order they were pushed. */
#define PRODUCERS 2
#define CONSUMERS 2
#define PER_PRODUCER 20000

struct mpmc {
	sync_queue_t *q;
	atomic_int popped;
	atomic_int errors;
	atomic_int seen[PRODUCERS][PER_PRODUCER];
};

static void *consumer_main(void *arg)
{
	struct mpmc *m = arg;
	long last[PRODUCERS];
	for (int p = 0; p < PRODUCERS; p++)
		last[p] = -1;
	while (atomic_load(&m->popped) < PRODUCERS * PER_PRODUCER) {
		void *item;
		struct timespec d = sync_deadline(10 * NS_PER_MS);
		int r = sync_queue_pop_wait(m->q, &item, &d);
		if (r == ETIMEDOUT)
			continue;
		long v = index_of(item), p = v >> 20, i = v & ((1L << 20) - 1);
		if (r != 0 || p < 0 || p >= PRODUCERS || i >= PER_PRODUCER || i <= last[p]) {
			atomic_fetch_add(&m->errors, 1);
			break;
		}
		last[p] = i;
		atomic_fetch_add(&m->seen[p][i], 1);
		atomic_fetch_add(&m->popped, 1);
	}
	return NULL;
}

START_TEST(two_producers_and_two_consumers_pass_every_item_once_in_order)
{
	static struct mpmc m;
	m.q = new_queue();
	struct producer p[PRODUCERS];
	pthread_t t[PRODUCERS + CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, consumer_main, &m), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (struct producer){ m.q, i, PER_PRODUCER, 0 };
		ck_assert_int_eq(pthread_create(&t[CONSUMERS + i], NULL, producer_main, &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&m.errors), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		ck_assert_int_eq(atomic_load(&p[i].errors), 0);
		for (int j = 0; j < PER_PRODUCER; j++)
			ck_assert_msg(atomic_load(&m.seen[i][j]) == 1, "item %d of producer %d seen %d times",
				      j, i, atomic_load(&m.seen[i][j]));
	}
	check_empty(m.q);
	sync_queue_destroy(m.q);
}
END_TEST

/* ---- pop_wait: deadlines ------------------------------------------------ */

/* pop_wait(q, &item, d) takes the one queued item at once. */
static void check_pop_wait_takes_available_item(const struct timespec *d)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	push_items(q, 0, 1);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, d), 0);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_ptr_eq(item, item_of(0));
	check_empty(q);
	sync_queue_destroy(q);
}

START_TEST(pop_wait_without_deadline_returns_available_item_at_once)
{
	check_pop_wait_takes_available_item(NULL);
}
END_TEST

START_TEST(pop_wait_with_deadline_of_now_returns_available_item)
{
	struct timespec d = sync_deadline(0);
	check_pop_wait_takes_available_item(&d);
}
END_TEST

START_TEST(pop_wait_with_deadline_zero_returns_available_item)
{
	struct timespec d = { 0, 0 };
	check_pop_wait_takes_available_item(&d);
}
END_TEST

START_TEST(pop_wait_with_negative_seconds_returns_available_item)
{
	struct timespec d = { -1, 0 };
	check_pop_wait_takes_available_item(&d);
}
END_TEST

/* pop_wait with tv_nsec = nsec fails with EINVAL and takes nothing. */
static void check_pop_wait_rejects_nsec(long nsec)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	push_items(q, 0, 1);
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = nsec;
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), EINVAL);
	ck_assert_ptr_eq(item, UNTOUCHED);
	ck_assert_uint_eq(sync_queue_size(q), 1);
	pop_items(q, 0, 1);
	sync_queue_destroy(q);
}

START_TEST(pop_wait_with_negative_nsec_returns_einval_even_when_item_available)
{
	check_pop_wait_rejects_nsec(-1);
}
END_TEST

START_TEST(pop_wait_with_nsec_of_one_second_returns_einval_even_when_item_available)
{
	check_pop_wait_rejects_nsec(1000000000L);
}
END_TEST

START_TEST(pop_wait_with_bad_deadline_on_empty_queue_returns_einval_at_once)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = 1000000000L;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_ptr_eq(item, UNTOUCHED);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_wait_on_empty_queue_returns_etimedout_not_before_deadline)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	int64_t start = now_ns();
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), ETIMEDOUT);
	int64_t end = now_ns();
	ck_assert_int_ge(end - start, 50 * NS_PER_MS);
	ck_assert_int_ge(end - timespec_ns(&d), 0);
	ck_assert_int_lt(end - timespec_ns(&d), 2000 * NS_PER_MS);
	ck_assert_ptr_eq(item, UNTOUCHED);
	sync_queue_destroy(q);
}
END_TEST

/* pop_wait on an empty queue with a deadline already past times out at
 * once. */
static void check_past_deadline_times_out_at_once(struct timespec d)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), ETIMEDOUT);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_ptr_eq(item, UNTOUCHED);
	sync_queue_destroy(q);
}

START_TEST(pop_wait_with_deadline_zero_on_empty_queue_returns_etimedout_at_once)
{
	check_past_deadline_times_out_at_once((struct timespec){ 0, 0 });
}
END_TEST

START_TEST(pop_wait_with_negative_seconds_on_empty_queue_returns_etimedout_at_once)
{
	check_past_deadline_times_out_at_once((struct timespec){ -1000000, 999999999L });
}
END_TEST

START_TEST(pop_wait_that_timed_out_leaves_queue_usable)
{
	sync_queue_t *q = new_queue();
	void *item = UNTOUCHED;
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), ETIMEDOUT);
	check_empty(q);
	push_items(q, 0, 2);
	ck_assert_uint_eq(sync_queue_size(q), 2);
	pop_items(q, 0, 2);
	sync_queue_destroy(q);
}
END_TEST

#define TIMED_CALLS 200
#define PROMPT_NS 5000 /* polling the queue first took 11 us (here) to 40 us */

/* pop_wait on an empty queue with a deadline already past returns
 * ETIMEDOUT at once, without polling the queue first: the quickest of
 * TIMED_CALLS calls takes less than PROMPT_NS. */
START_TEST(pop_wait_with_past_deadline_on_empty_queue_times_out_without_polling)
{
	sync_queue_t *q = new_queue();
	int64_t quickest = INT64_MAX;
	for (int i = 0; i < TIMED_CALLS; i++) {
		void *item = UNTOUCHED;
		struct timespec d = sync_deadline(0);
		int64_t start = now_ns();
		int r = sync_queue_pop_wait(q, &item, &d);
		int64_t took = now_ns() - start;
		ck_assert_int_eq(r, ETIMEDOUT);
		ck_assert_ptr_eq(item, UNTOUCHED);
		if (took < quickest)
			quickest = took;
	}
	ck_assert_msg(quickest < PROMPT_NS, "the quickest of %d calls took %lld ns", TIMED_CALLS,
		      (long long)quickest);
	sync_queue_destroy(q);
}
END_TEST

/* A deadline that passes while pop_wait polls the queue ends the polling:
 * the least late of TIMED_CALLS calls with a 2 us deadline returns less
 * than PROMPT_NS after it, and none before it. */
START_TEST(pop_wait_with_deadline_during_polling_times_out_soon_after_it)
{
	sync_queue_t *q = new_queue();
	int64_t least_late = INT64_MAX;
	for (int i = 0; i < TIMED_CALLS; i++) {
		void *item = UNTOUCHED;
		struct timespec d = sync_deadline(2000);
		int r = sync_queue_pop_wait(q, &item, &d);
		int64_t late = now_ns() - timespec_ns(&d);
		ck_assert_int_eq(r, ETIMEDOUT);
		ck_assert_int_ge(late, 0);
		if (late < least_late)
			least_late = late;
	}
	ck_assert_msg(least_late < PROMPT_NS, "the least late of %d calls returned %lld ns late",
		      TIMED_CALLS, (long long)least_late);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_wait_returns_item_pushed_before_deadline)
{
	sync_queue_t *q = new_queue();
	struct pusher p;
	void *item = UNTOUCHED;
	pusher_start(&p, q, item_of(5)); /* pushes 20 ms after this thread sleeps */
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	atomic_store(&p.arriving, 1);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), 0);
	ck_assert_int_eq(atomic_load(&p.pushing), 1);
	ck_assert_int_lt(now_ns(), timespec_ns(&d));
	ck_assert_ptr_eq(item, item_of(5));
	pusher_finish(&p);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_wait_without_deadline_sleeps_until_other_thread_pushes)
{
	sync_queue_t *q = new_queue();
	struct pusher p;
	void *item = UNTOUCHED;
	pusher_start(&p, q, item_of(6));
	atomic_store(&p.arriving, 1);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, NULL), 0);
	ck_assert_int_eq(atomic_load(&p.pushing), 1); /* not before */
	ck_assert_ptr_eq(item, item_of(6));
	pusher_finish(&p);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* ---- pop_wait: sleeping and waking -------------------------------------- */

/* One waiter sleeps in pop_wait (timeout_ns 0: without deadline), a push
 * wakes it with the item. */
static void check_push_wakes_sleeper(int64_t timeout_ns, void *pushed)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, q, timeout_ns, &returned);
	ck_assert_int_eq(atomic_load(&returned), 0);
	ck_assert_int_eq(sync_queue_push(q, pushed), 0);
	ck_assert_msg(wait_until_equal(&returned, 1), "waiter was not woken");
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_ptr_eq(w.item, pushed);
	check_empty(q);
	sync_queue_destroy(q);
}

START_TEST(push_wakes_thread_sleeping_in_pop_wait)
{
	check_push_wakes_sleeper(0, item_of(1));
}
END_TEST

START_TEST(push_wakes_thread_sleeping_in_pop_wait_with_deadline)
{
	check_push_wakes_sleeper(LONG_DEADLINE_NS, item_of(1));
}
END_TEST

START_TEST(push_of_null_item_wakes_sleeper_with_null)
{
	check_push_wakes_sleeper(0, NULL);
}
END_TEST

#define SLEEPERS 4

/* Each of the SLEEPERS waiters returned 0 with its own item of 0 .. n-1. */
static void check_each_got_own_item(struct waiter *w, int n)
{
	int got[SLEEPERS] = { 0 };
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(waiter_finish(&w[i]), 0);
		long v = index_of(w[i].item);
		ck_assert_msg(v >= 0 && v < n, "waiter %d got item %ld", i, v);
		ck_assert_msg(++got[v] == 1, "item %ld popped twice", v);
	}
}

START_TEST(n_pushes_wake_n_sleepers_each_with_its_own_item)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w[SLEEPERS];
	for (int i = 0; i < SLEEPERS; i++)
		waiter_start(&w[i], q, i % 2 ? LONG_DEADLINE_NS : 0, &returned);
	push_items(q, 0, SLEEPERS);
	ck_assert_msg(wait_until_equal(&returned, SLEEPERS), "only %d of %d woken",
		      atomic_load(&returned), SLEEPERS);
	check_each_got_own_item(w, SLEEPERS);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(two_pushes_wake_only_two_of_four_sleepers)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w[SLEEPERS];
	for (int i = 0; i < SLEEPERS; i++)
		waiter_start(&w[i], q, 0, &returned);
	push_items(q, 0, 2);
	ck_assert(wait_until_equal(&returned, 2));
	sleep_ns(30 * NS_PER_MS);
	ck_assert_int_eq(atomic_load(&returned), 2);
	check_empty(q);
	push_items(q, 2, 4);
	ck_assert(wait_until_equal(&returned, SLEEPERS));
	check_each_got_own_item(w, SLEEPERS);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* Pushers released together: each pushes one item. */
struct racing_pusher {
	sync_queue_t *q;
	atomic_int *go;
	long item;
	int result;
};

static void *racing_pusher_main(void *arg)
{
	struct racing_pusher *p = arg;
	while (!atomic_load(p->go))
		sched_yield();
	p->result = sync_queue_push(p->q, item_of(p->item));
	return NULL;
}

START_TEST(concurrent_pushes_wake_every_sleeper)
{
	sync_queue_t *q = new_queue();
	for (int round = 0; round < 20; round++) {
		atomic_int returned = 0, go = 0;
		struct waiter w[SLEEPERS];
		struct racing_pusher p[SLEEPERS];
		pthread_t t[SLEEPERS];
		for (int i = 0; i < SLEEPERS; i++)
			waiter_start(&w[i], q, i % 2 ? LONG_DEADLINE_NS : 0, &returned);
		for (int i = 0; i < SLEEPERS; i++) {
			p[i] = (struct racing_pusher){ q, &go, i, -1 };
			ck_assert_int_eq(pthread_create(&t[i], NULL, racing_pusher_main, &p[i]), 0);
		}
		atomic_store(&go, 1);
		for (int i = 0; i < SLEEPERS; i++) {
			ck_assert_int_eq(pthread_join(t[i], NULL), 0);
			ck_assert_int_eq(p[i].result, 0);
		}
		ck_assert_msg(wait_until_equal(&returned, SLEEPERS), "round %d: only %d of %d woken",
			      round, atomic_load(&returned), SLEEPERS);
		check_each_got_own_item(w, SLEEPERS);
		check_empty(q);
	}
	sync_queue_destroy(q);
}
END_TEST

#define HANDOFFS 200

struct handoff {
	sync_queue_t *q;
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
		void *item = UNTOUCHED;
		/* from here on, the only place this thread can sleep is the wait */
		atomic_store(&ho->arriving, i);
		if (sync_queue_pop_wait(ho->q, &item, NULL) != 0 || item != item_of(i))
			ho->errors++;
		atomic_store(&ho->taken, i);
	}
	return NULL;
}

START_TEST(push_wakes_sleeper_every_time)
{
	/* The waiter sleeps in pop_wait each time the main thread pushes; a
	 * lost wake-up leaves it asleep and the test fails. */
	struct handoff ho = { new_queue(), 0, 0, 0, 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, handoff_waiter, &ho), 0);
	for (int i = 1; i <= HANDOFFS; i++) {
		ck_assert(wait_until_equal(&ho.arriving, i));
		ck_assert_msg(wait_until_asleep(atomic_load(&ho.waiter_tid)),
			      "hand-off %d: waiter never slept", i);
		ck_assert_int_eq(sync_queue_push(ho.q, item_of(i)), 0);
		ck_assert_msg(wait_until_equal(&ho.taken, i), "hand-off %d: waiter was not woken",
			      i);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(ho.errors, 0);
	check_empty(ho.q);
	sync_queue_destroy(ho.q);
}
END_TEST

/* A sleeper woken for an item that another thread pops first goes back to
 * sleep instead of returning without one. */
static void check_sleeper_survives_stolen_items(int64_t timeout_ns)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, q, timeout_ns, &returned);
	long i = 0;
	for (; i < 20; i++) {
		void *item = UNTOUCHED;
		ck_assert_int_eq(sync_queue_push(q, item_of(i)), 0);
		if (sync_queue_pop(q, &item) != 0)
			break; /* the sleeper took it */
		ck_assert_ptr_eq(item, item_of(i));
		ck_assert_msg(wait_until_asleep(atomic_load(&w.tid)),
			      "item %ld: waiter did not go back to sleep", i);
		ck_assert_int_eq(atomic_load(&returned), 0);
	}
	if (i == 20)
		push_items(q, i, i + 1);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_ptr_eq(w.item, item_of(i));
	check_empty(q);
	sync_queue_destroy(q);
}

START_TEST(sleeper_whose_item_was_taken_by_other_thread_keeps_waiting)
{
	check_sleeper_survives_stolen_items(0);
}
END_TEST

START_TEST(sleeper_with_deadline_whose_item_was_taken_keeps_waiting)
{
	check_sleeper_survives_stolen_items(LONG_DEADLINE_NS);
}
END_TEST

/* ---- cancellation ------------------------------------------------------- */

/* Joins t; false if it has not ended within WAIT_LIMIT_NS. */
static bool join_within_limit(pthread_t t, void **ret)
{
	struct timespec d;
	clock_gettime(CLOCK_REALTIME, &d);
	d.tv_sec += WAIT_LIMIT_NS / 1000000000;
	return pthread_timedjoin_np(t, ret, &d) == 0;
}

/* Cancels a waiter asleep in pop_wait, and checks that it ends as
 * cancelled; if it goes on sleeping, a push releases it so that the test
 * fails rather than hangs. */
static void cancel_sleeping_waiter(sync_queue_t *q, struct waiter *w)
{
	ck_assert_int_eq(pthread_cancel(w->thread), 0);
	void *ret = NULL;
	bool ended = join_within_limit(w->thread, &ret);
	if (!ended) {
		ck_assert_int_eq(sync_queue_push(q, NULL), 0);
		ck_assert_int_eq(pthread_join(w->thread, &ret), 0);
	}
	ck_assert_msg(ended, "the waiter ignored pthread_cancel");
	ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
}

/* A waiter asleep in pop_wait is cancelled; a push afterwards wakes a
 * waiter that came later (the cancelled one left no registration that
 * would take its wake-up). */
static void check_cancelled_sleeper(int64_t timeout_ns)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter cancelled, other;
	waiter_start(&cancelled, q, timeout_ns, &returned);
	cancel_sleeping_waiter(q, &cancelled);
	ck_assert_int_eq(atomic_load(&returned), 0);
	waiter_start(&other, q, timeout_ns, &returned);
	ck_assert_int_eq(sync_queue_push(q, item_of(1)), 0);
	ck_assert_msg(wait_until_equal(&returned, 1), "the push did not reach the other waiter");
	ck_assert_int_eq(waiter_finish(&other), 0);
	ck_assert_ptr_eq(other.item, item_of(1));
	check_empty(q);
	sync_queue_destroy(q);
}

START_TEST(pop_wait_asleep_is_cancelled_and_push_still_reaches_another_waiter)
{
	check_cancelled_sleeper(0);
}
END_TEST

START_TEST(pop_wait_with_deadline_asleep_is_cancelled_and_push_still_reaches_another_waiter)
{
	check_cancelled_sleeper(LONG_DEADLINE_NS);
}
END_TEST

/* A thread that calls pop_wait once a cancellation request is pending. */
struct pending_cancel {
	sync_queue_t *q;
	atomic_int cancel_sent;
	int result;
};

static void *waiter_with_pending_cancel(void *arg)
{
	struct pending_cancel *pc = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	while (!atomic_load(&pc->cancel_sent))
		sched_yield();
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	void *item;
	pc->result = sync_queue_pop_wait(pc->q, &item, NULL);
	return NULL;
}

/* Cancels a thread before it calls pop_wait on pc->q: the call acts on
 * the cancellation, and pops nothing. */
static void check_pending_cancellation(struct pending_cancel *pc)
{
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_with_pending_cancel, pc), 0);
	ck_assert_int_eq(pthread_cancel(t), 0);
	atomic_store(&pc->cancel_sent, 1);
	void *ret = NULL;
	bool ended = join_within_limit(t, &ret);
	if (!ended) {
		ck_assert_int_eq(sync_queue_push(pc->q, NULL), 0);
		ck_assert_int_eq(pthread_join(t, &ret), 0);
	}
	ck_assert_msg(ended, "pop_wait slept with a cancellation pending");
	ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
}

START_TEST(pop_wait_on_empty_queue_acts_on_pending_cancellation)
{
	struct pending_cancel pc = { new_queue(), 0, -1 };
	check_pending_cancellation(&pc);
	check_empty(pc.q);
	sync_queue_destroy(pc.q);
}
END_TEST

/* As sem_wait: a cancellation point whether or not it would block. */
START_TEST(pop_wait_acts_on_pending_cancellation_even_with_an_item_queued)
{
	struct pending_cancel pc = { new_queue(), 0, -1 };
	push_items(pc.q, 0, 1);
	check_pending_cancellation(&pc);
	pop_items(pc.q, 0, 1);
	check_empty(pc.q);
	sync_queue_destroy(pc.q);
}
END_TEST

#define CANCEL_ROUNDS 40

/* Two waiters asleep; a push wakes the first (futex wake-ups go in the
 * order of sleeping), which is cancelled at once, often after its futex
 * wait consumed that wake-up and before it could pop. Then the second
 * must get the item: the cancelled waiter passes the wake-up on. */
START_TEST(cancelled_waiter_passes_on_the_wake_up_it_consumed)
{
	sync_queue_t *q = new_queue();
	for (int round = 0; round < CANCEL_ROUNDS; round++) {
		atomic_int returned = 0;
		struct waiter first, second;
		waiter_start(&first, q, 0, &returned);
		waiter_start(&second, q, 0, &returned);
		ck_assert_int_eq(sync_queue_push(q, item_of(round)), 0);
		ck_assert_int_eq(pthread_cancel(first.thread), 0);
		void *ret = NULL;
		ck_assert(join_within_limit(first.thread, &ret));
		(void)ret; /* a thread that popped may still end cancelled, at a
			    * cancellation point on its way out (ASan's exit
			    * path has one): its result says whether it popped */
		struct waiter *got = &second, *left = NULL;
		if (first.result == 0) {
			got = &first; /* it popped before the cancellation came */
			left = &second;
		}
		bool woken = wait_until_equal(&returned, 1);
		if (!woken)
			ck_assert_int_eq(sync_queue_push(q, NULL), 0);
		ck_assert_msg(woken, "round %d: the item stayed queued while a waiter slept", round);
		if (got == &second)
			ck_assert_int_eq(waiter_finish(&second), 0);
		ck_assert_int_eq(got->result, 0);
		ck_assert_ptr_eq(got->item, item_of(round));
		if (left)
			cancel_sleeping_waiter(q, left);
		check_empty(q);
	}
	sync_queue_destroy(q);
}
END_TEST

/* ---- signals ------------------------------------------------------------ */

static void check_sleeper_survives_signals(int64_t timeout_ns)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w;
	catch_signal_without_restart(SIGUSR1);
	waiter_start(&w, q, timeout_ns, &returned);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(interrupt_sleeper(w.thread, atomic_load(&w.tid), SIGUSR1),
			      "signal %d: waiter did not go back to sleep", i);
		ck_assert_int_eq(atomic_load(&returned), 0);
	}
	push_items(q, 0, 1);
	ck_assert(wait_until_equal(&returned, 1));
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_ptr_eq(w.item, item_of(0));
	check_empty(q);
	sync_queue_destroy(q);
}

START_TEST(pop_wait_interrupted_by_signal_keeps_waiting_until_push)
{
	check_sleeper_survives_signals(0);
}
END_TEST

START_TEST(pop_wait_with_deadline_interrupted_by_signal_keeps_waiting_until_push)
{
	check_sleeper_survives_signals(LONG_DEADLINE_NS);
}
END_TEST

START_TEST(pop_wait_interrupted_by_signal_times_out_not_before_deadline)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w;
	catch_signal_without_restart(SIGUSR1);
	waiter_start(&w, q, 300 * NS_PER_MS, &returned);
	ck_assert(interrupt_sleeper(w.thread, atomic_load(&w.tid), SIGUSR1));
	ck_assert_int_eq(waiter_finish(&w), ETIMEDOUT);
	ck_assert_int_ge(w.returned_at, w.deadline_ns);
	ck_assert_ptr_eq(w.item, UNTOUCHED);
	ck_assert_int_ge(caught_signals(), 1);
	sync_queue_destroy(q);
}
END_TEST

/* ---- memory ------------------------------------------------------------- */

#define PAIRS 10000000L
#define WARM_UP_PAIRS 1000000L
#define LENGTH 100
#define RSS_SLACK (4L << 20)

/* pairs pushes and pops with LENGTH items queued; the items are numbered
 * on from *next_in and checked against *next_out. */
static void push_pop_pairs(sync_queue_t *q, long pairs, long *next_in, long *next_out)
{
	for (long i = 0; i < pairs; i++) {
		void *item = UNTOUCHED;
		if (sync_queue_push(q, item_of((*next_in)++)) != 0 ||
		    sync_queue_pop(q, &item) != 0 || item != item_of((*next_out)++))
			ck_abort_msg("pair %ld: push, pop or order failed", i);
	}
}

START_TEST(rss_stays_flat_over_ten_million_push_pop_pairs)
{
	if (!plain_malloc())
		return; /* see util.h */
	sync_queue_t *q = new_queue();
	long next_in = 0, next_out = 0;
	push_items(q, 0, LENGTH);
	next_in = LENGTH;
	push_pop_pairs(q, WARM_UP_PAIRS, &next_in, &next_out);
	size_t before = resident_bytes();
	ck_assert_uint_gt(before, 0);
	push_pop_pairs(q, PAIRS - WARM_UP_PAIRS, &next_in, &next_out);
	size_t after = resident_bytes();
	ck_assert_msg(after < before + RSS_SLACK, "RSS grew from %zu to %zu bytes", before,
		      after);
	ck_assert_uint_eq(sync_queue_size(q), LENGTH);
	sync_queue_destroy(q);
}
END_TEST

/* 488 segments through the queue: without reuse, the 366 after the first
 * RSS reading would add 5.9 MB, over RSS_SLACK. (2000000 pairs ran past
 * the 60 s timeout in CI, on a guest whose two vCPUs took turns.) */
#define THREAD_PAIRS 500000L

struct bounded {
	sync_queue_t *q;
	atomic_long pushed, popped;
	atomic_int errors;
};

/* Pushes THREAD_PAIRS items, never more than LENGTH ahead of the popper. */
static void *bounded_pusher(void *arg)
{
	struct bounded *b = arg;
	for (long i = 0; i < THREAD_PAIRS; i++) {
		while (i - atomic_load(&b->popped) >= LENGTH)
			sched_yield();
		if (sync_queue_push(b->q, item_of(i)) != 0)
			atomic_fetch_add(&b->errors, 1);
		atomic_store(&b->pushed, i + 1);
	}
	return NULL;
}

START_TEST(rss_stays_flat_with_pushes_and_pops_in_two_threads)
{
	if (!plain_malloc())
		return; /* see util.h */
	static struct bounded b;
	b.q = new_queue();
	pthread_t t;
	size_t before = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, bounded_pusher, &b), 0);
	for (long i = 0; i < THREAD_PAIRS; i++) {
		void *item = UNTOUCHED;
		while (sync_queue_pop(b.q, &item) == EAGAIN)
			sched_yield();
		if (item != item_of(i))
			ck_abort_msg("popped item %ld, expected %ld", index_of(item), i);
		atomic_store(&b.popped, i + 1);
		if (i == THREAD_PAIRS / 4)
			before = resident_bytes();
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	size_t after = resident_bytes();
	ck_assert_int_eq(atomic_load(&b.errors), 0);
	ck_assert_msg(after < before + RSS_SLACK, "RSS grew from %zu to %zu bytes", before,
		      after);
	check_empty(b.q);
	sync_queue_destroy(b.q);
}
END_TEST

/* In a child: pushes until no segment can be had, then checks that the
 * queue holds exactly what was pushed before, in order, and works again
 * once memory is back. */
static int child_pushes_until_out_of_memory(void *arg)
{
	(void)arg;
	sync_queue_t *q = sync_queue_create();
	if (!q)
		return 20;
	void *hoard = exhaust_memory(16);
	if (malloc(64)) {
		release_memory(hoard);
		return 21; /* memory was not exhausted: no test */
	}
	long n = 0;
	int r;
	while ((r = sync_queue_push(q, item_of(n))) == 0 && n < 100 * SEGMENT_SLOTS)
		n++;
	if (r != ENOMEM)
		return 1; /* pushes never failed, or not with ENOMEM */
	if (n < 1)
		return 2; /* the queue's first segment took nothing */
	if (sync_queue_push(q, item_of(n)) != ENOMEM)
		return 3; /* still no memory: the same again */
	if (sync_queue_size(q) != (size_t)n)
		return 4;
	void *item = UNTOUCHED;
	if (sync_queue_pop(q, &item) != 0 || item != item_of(0))
		return 5; /* pop needs no memory */
	release_memory(hoard);
	for (long i = n; i < n + 3 * SEGMENT_SLOTS; i++)
		if (sync_queue_push(q, item_of(i)) != 0)
			return 6;
	if (sync_queue_size(q) != (size_t)(n - 1 + 3 * SEGMENT_SLOTS))
		return 7;
	for (long i = 1; i < n + 3 * SEGMENT_SLOTS; i++)
		if (sync_queue_pop(q, &item) != 0 || item != item_of(i))
			return 8; /* the failed pushes left no trace */
	if (sync_queue_pop(q, &item) != EAGAIN)
		return 9;
	sync_queue_destroy(q);
	return 0;
}

START_TEST(push_without_memory_for_segment_returns_enomem_and_changes_nothing)
{
	if (!plain_malloc())
		return; /* see util.h */
	ck_assert_int_eq(child_status(fork_running(child_pushes_until_out_of_memory, NULL)), 0);
}
END_TEST

static int child_creates_without_memory(void *arg)
{
	(void)arg;
	sync_epoch_barrier(); /* the epoch domain set up first */
	void *hoard = exhaust_memory(16);
	if (malloc(64)) {
		release_memory(hoard);
		return 21;
	}
	errno = 0;
	sync_queue_t *q = sync_queue_create();
	int e = errno;
	release_memory(hoard);
	if (q)
		return 1;
	return e == ENOMEM ? 0 : 2;
}

START_TEST(create_without_memory_returns_null_with_enomem)
{
	if (!plain_malloc())
		return; /* see util.h */
	ck_assert_int_eq(child_status(fork_running(child_creates_without_memory, NULL)), 0);
}
END_TEST

/* A push that needs a new segment and cannot allocate one fails with
 * ENOMEM, changes nothing, and leaves errno as it was. */
START_TEST(push_that_cannot_allocate_a_segment_leaves_errno_and_queue_alone)
{
	if (!FAULTS)
		return; /* see fail_allocations */
	sync_queue_t *q = new_queue();
	push_items(q, 0, SEGMENT_SLOTS);
	errno = EDOM;
	fail_allocations(0, 0, SEGMENT_BYTES);
	int r = sync_queue_push(q, item_of(SEGMENT_SLOTS));
	int e = errno;
	long calls = allocations_made();
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_int_ge(calls, 1);
	ck_assert_msg(e == EDOM, "errno changed to %d", e);
	ck_assert_uint_eq(sync_queue_size(q), SEGMENT_SLOTS);
	pop_items(q, 0, SEGMENT_SLOTS);
	check_empty(q);
	push_items(q, 0, 2);
	pop_items(q, 0, 2);
	sync_queue_destroy(q);
}
END_TEST

/* The pop that moves the head past a drained segment hands it to the epoch
 * domain. Without memory it must neither wait for some (a retire inside a
 * section retried every millisecond for as long as allocation failed) nor
 * change errno. The barrier first leaves the thread's list of callbacks
 * empty, so that the retire would need to allocate. */
START_TEST(pop_past_a_drained_segment_without_memory_neither_waits_nor_changes_errno)
{
	if (!FAULTS)
		return; /* see fail_allocations */
	sync_queue_t *q = new_queue();
	push_items(q, 0, SEGMENT_SLOTS + 1);
	pop_items(q, 0, SEGMENT_SLOTS);
	sync_epoch_barrier();
	void *item = UNTOUCHED;
	errno = EDOM;
	fail_allocations(0, 0, 1);
	int r = sync_queue_pop(q, &item);
	int e = errno;
	long calls = allocations_made();
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_eq(item, item_of(SEGMENT_SLOTS));
	ck_assert_msg(e == EDOM, "errno changed to %d", e);
	ck_assert_msg(calls < 3, "the pop tried %ld allocations", calls);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

#define CHURN_THREADS 2000
#define CHURN_SLACK (4L << 20) /* bytes: about 250 segments */

/* Pushes and pops a little more than a segment's worth, so that it retires
 * at least one drained segment, then exits. */
static void *short_lived_main(void *arg)
{
	sync_queue_t *q = arg;
	void *item;
	for (long i = 0; i < SEGMENT_SLOTS + 16; i++)
		if (sync_queue_push(q, item_of(i)) != 0)
			return arg;
	for (long i = 0; i < SEGMENT_SLOTS + 16; i++)
		if (sync_queue_pop(q, &item) != 0 || item != item_of(i))
			return arg;
	return NULL;
}

static void run_short_lived_threads(sync_queue_t *q, int n)
{
	for (int i = 0; i < n; i++) {
		pthread_t t;
		void *ret = q;
		ck_assert_int_eq(pthread_create(&t, NULL, short_lived_main, q), 0);
		ck_assert_int_eq(pthread_join(t, &ret), 0);
		ck_assert_msg(ret == NULL, "thread %d: push or pop failed", i);
	}
}

/* Threads that each push and pop about 1,000 items and exit: the queue never
 * holds more than one segment's worth, so the memory the program holds must
 * not grow with the number of threads (it grew by one segment, 16 KiB, per
 * thread: their drained segments waited for callbacks that never ran). */
START_TEST(memory_after_many_short_lived_threads_tracks_length_not_history)
{
	if (!FAULTS)
		return; /* heap_in_use() needs the wrappers */
	sync_queue_t *q = new_queue();
	run_short_lived_threads(q, 16); /* the pool and the domain set up */
	long before = heap_in_use();
	run_short_lived_threads(q, CHURN_THREADS);
	int64_t start = now_ns();
	long grew;
	while ((grew = heap_in_use() - before) > CHURN_SLACK && now_ns() - start < WAIT_LIMIT_NS)
		sleep_ns(10 * NS_PER_MS);
	ck_assert_msg(grew <= CHURN_SLACK,
		      "%d short-lived threads left %ld bytes (%ld segments) behind", CHURN_THREADS,
		      grew, grew / SEGMENT_BYTES);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* ---- system calls ------------------------------------------------------- */

#define NO_SECCOMP 99

/* Kills this process at its next futex(2) call. */
static bool forbid_futex(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

static int child_pushes_and_pops_without_futex(void *arg)
{
	(void)arg;
	sync_queue_t *q = sync_queue_create();
	void *first;
	/* one push and pop first: the epoch domain's one-time set-up (its
	 * pthread_once wakes waiters with futex) is not what this checks */
	if (!q || sync_queue_push(q, NULL) != 0 || sync_queue_pop(q, &first) != 0)
		return 20;
	if (!forbid_futex())
		return NO_SECCOMP;
	for (long i = 0; i < 3 * SEGMENT_SLOTS; i++)
		if (sync_queue_push(q, item_of(i)) != 0)
			return 1;
	for (long i = 0; i < 3 * SEGMENT_SLOTS; i++) {
		void *item;
		int r = i % 2 ? sync_queue_pop(q, &item) : sync_queue_pop_wait(q, &item, NULL);
		if (r != 0 || item != item_of(i))
			return 2;
	}
	return 0;
}

START_TEST(push_and_pop_without_sleepers_make_no_futex_call)
{
	int status = child_status(fork_running(child_pushes_and_pops_without_futex, NULL));
	if (status == NO_SECCOMP)
		return; /* seccomp filters not allowed here: nothing to check */
	ck_assert_msg(status == 0, "child failed (%d): -1 means killed at a futex call", status);
}
END_TEST

/* In a child (of a process whose only thread is the forking one): pushes
 * and pops with futex forbidden, as no thread sleeps in pop_wait. */
static int child_pushes_without_futex(void *arg)
{
	sync_queue_t *q = arg;
	if (!forbid_futex())
		return NO_SECCOMP;
	void *item;
	for (long i = 0; i < 3; i++)
		if (sync_queue_push(q, item_of(i)) != 0 || sync_queue_pop(q, &item) != 0 ||
		    item != item_of(i))
			return 1;
	return 0;
}

/* A waiter cancelled in its sleep leaves no sleeper counted: pushes after
 * it make no futex call. */
START_TEST(cancelled_waiter_leaves_no_sleeper_behind)
{
	sync_queue_t *q = new_queue();
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, q, 0, &returned);
	cancel_sleeping_waiter(q, &w);
	int status = child_status(fork_running(child_pushes_without_futex, q));
	if (status != NO_SECCOMP)
		ck_assert_msg(status == 0, "child failed (%d): -1 means killed at a futex call",
			      status);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* ---- close -------------------------------------------------------------- */

/* Close's cases run on both kinds: an unbounded queue and a bounded one
 * large enough for every item they push. */
static sync_queue_t *new_queue_of_kind(int bounded)
{
	sync_queue_t *q = bounded ? sync_queue_create_bounded(4096) : sync_queue_create();
	ck_assert_ptr_nonnull(q);
	return q;
}

START_TEST(close_of_null_queue_does_nothing)
{
	sync_queue_close(NULL);
}
END_TEST

START_TEST(push_after_close_returns_epipe_and_queues_nothing)
{
	sync_queue_t *q = new_queue_of_kind(_i);
	sync_queue_close(q);
	ck_assert_int_eq(sync_queue_push(q, item_of(1)), EPIPE);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(2), NULL), EPIPE);
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(3), &d), EPIPE);
	ck_assert_uint_eq(sync_queue_size(q), 0);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(pop_of_closed_empty_queue_returns_epipe_and_leaves_item_untouched)
{
	sync_queue_t *q = new_queue_of_kind(_i);
	sync_queue_close(q);
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(q, &item), EPIPE);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, NULL), EPIPE);
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, &d), EPIPE);
	ck_assert_ptr_eq(item, UNTOUCHED);
	sync_queue_destroy(q);
}
END_TEST

/* Items queued before close come out, in order, by pop and pop_wait (no
 * EPIPE while any is left); then EPIPE. 3000 items: three segments. */
START_TEST(items_queued_before_close_come_out_in_order_then_epipe)
{
	sync_queue_t *q = new_queue_of_kind(_i);
	push_items(q, 0, 3000);
	sync_queue_close(q);
	ck_assert_uint_eq(sync_queue_size(q), 3000);
	ck_assert_int_eq(sync_queue_push(q, item_of(3000)), EPIPE);
	for (long i = 0; i < 3000; i++) {
		void *item = UNTOUCHED;
		ck_assert_int_eq(i % 2 ? sync_queue_pop(q, &item) : sync_queue_pop_wait(q, &item, NULL), 0);
		ck_assert_ptr_eq(item, item_of(i));
	}
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(q, &item), EPIPE);
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, NULL), EPIPE);
	ck_assert_ptr_eq(item, UNTOUCHED);
	ck_assert_uint_eq(sync_queue_size(q), 0);
	sync_queue_destroy(q);
}
END_TEST

/* The seal lands on a segment whose slots are all drawn: a push must not
 * link a new segment after close. */
START_TEST(close_of_queue_with_full_last_segment_refuses_the_next_push)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, SEGMENT_SLOTS);
	sync_queue_close(q);
	ck_assert_int_eq(sync_queue_push(q, item_of(SEGMENT_SLOTS)), EPIPE);
	pop_items(q, 0, SEGMENT_SLOTS);
	void *item;
	ck_assert_int_eq(sync_queue_pop(q, &item), EPIPE);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(close_is_idempotent)
{
	sync_queue_t *q = new_queue_of_kind(_i);
	push_items(q, 0, 2);
	sync_queue_close(q);
	sync_queue_close(q);
	ck_assert_int_eq(sync_queue_push(q, item_of(2)), EPIPE);
	pop_items(q, 0, 1);
	sync_queue_close(q);
	pop_items(q, 1, 2);
	void *item;
	ck_assert_int_eq(sync_queue_pop(q, &item), EPIPE);
	sync_queue_close(q);
	ck_assert_int_eq(sync_queue_pop(q, &item), EPIPE);
	sync_queue_destroy(q);
}
END_TEST

/* Every pop_wait sleeper, with a deadline or without, wakes with EPIPE. */
START_TEST(close_wakes_every_pop_wait_sleeper_with_epipe)
{
	sync_queue_t *q = new_queue_of_kind(_i);
	atomic_int returned = 0;
	struct waiter w[4];
	for (int i = 0; i < 4; i++)
		waiter_start(&w[i], q, i % 2 ? LONG_DEADLINE_NS : 0, &returned);
	sync_queue_close(q);
	bool woken = wait_until_equal(&returned, 4);
	if (!woken) /* release the sleepers, so that the test fails, not hangs */
		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(sync_queue_push(q, NULL), EPIPE);
	ck_assert_msg(woken, "close left a pop_wait sleeper asleep");
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(waiter_finish(&w[i]), EPIPE);
		ck_assert_ptr_eq(w[i].item, UNTOUCHED);
	}
	sync_queue_destroy(q);
}
END_TEST

/* ---- bounded: create, capacity, order ----------------------------------- */

START_TEST(create_bounded_with_capacity_zero_returns_null_with_einval)
{
	errno = 0;
	ck_assert_ptr_null(sync_queue_create_bounded(0));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(create_bounded_with_impossible_capacity_returns_null_with_enomem)
{
	errno = 0;
	ck_assert_ptr_null(sync_queue_create_bounded(SIZE_MAX));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

static const size_t capacities[] = { 1, 2, 3, 64, 1000, 1024 };

static sync_queue_t *new_bounded(size_t capacity)
{
	sync_queue_t *q = sync_queue_create_bounded(capacity);
	ck_assert_ptr_nonnull(q);
	return q;
}

/* capacity items go in, the next push returns EAGAIN and queues nothing;
 * a pop makes room for exactly one. */
START_TEST(bounded_queue_holds_capacity_items_then_push_returns_eagain)
{
	size_t cap = capacities[_i];
	sync_queue_t *q = new_bounded(cap);
	check_empty(q);
	push_items(q, 0, (long)cap);
	ck_assert_uint_eq(sync_queue_size(q), cap);
	ck_assert_int_eq(sync_queue_push(q, item_of((long)cap)), EAGAIN);
	ck_assert_uint_eq(sync_queue_size(q), cap);
	pop_items(q, 0, 1);
	ck_assert_uint_eq(sync_queue_size(q), cap - 1);
	push_items(q, (long)cap, (long)cap + 1);
	ck_assert_int_eq(sync_queue_push(q, item_of((long)cap + 1)), EAGAIN);
	pop_items(q, 1, (long)cap + 1);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* FIFO over many laps of the ring, in bursts of every length up to the
 * capacity, and NULL items among them. */
START_TEST(bounded_queue_keeps_fifo_over_many_laps)
{
	size_t cap = capacities[_i];
	sync_queue_t *q = new_bounded(cap);
	long next_in = 0, next_out = 0;
	long rounds = cap <= 64 ? 2000 : 300; /* still tens of laps (ASan: 30 s before) */
	for (long round = 0; round < rounds; round++) {
		long burst = 1 + round % (long)cap;
		push_items(q, next_in, next_in + burst);
		next_in += burst;
		long take = 1 + (round * 7) % burst;
		pop_items(q, next_out, next_out + take);
		next_out += take;
		pop_items(q, next_out, next_in);
		next_out = next_in;
	}
	ck_assert_int_eq(sync_queue_push(q, NULL), 0);
	void *item = UNTOUCHED;
	ck_assert_int_eq(sync_queue_pop(q, &item), 0);
	ck_assert_ptr_null(item);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(destroy_of_full_bounded_queue_leaves_items_alone)
{
	sync_queue_t *q = new_bounded(8);
	push_items(q, 0, 8);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(push_wait_on_unbounded_queue_is_push)
{
	sync_queue_t *q = new_queue();
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(0), NULL), 0);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(1), &d), 0);
	pop_items(q, 0, 2);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(push_wait_with_null_queue_or_bad_deadline_returns_einval)
{
	ck_assert_int_eq(sync_queue_push_wait(NULL, NULL, NULL), EINVAL);
	sync_queue_t *q = _i ? new_bounded(4) : new_queue();
	struct timespec bad = { 0, 1000000000L };
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(0), &bad), EINVAL);
	bad.tv_nsec = -1;
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(0), &bad), EINVAL);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(push_wait_with_room_returns_at_once)
{
	sync_queue_t *q = new_bounded(2);
	struct timespec past = { -1, 0 };
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(0), NULL), 0);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(1), &past), 0);
	pop_items(q, 0, 2);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(push_wait_on_full_queue_returns_etimedout_not_before_deadline)
{
	sync_queue_t *q = new_bounded(1);
	push_items(q, 0, 1);
	struct timespec d = sync_deadline(30 * NS_PER_MS);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(1), &d), ETIMEDOUT);
	ck_assert_int_ge(now_ns(), timespec_ns(&d));
	struct timespec past = { -1, 0 };
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(1), &past), ETIMEDOUT);
	d = sync_deadline(0);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(1), &d), ETIMEDOUT);
	pop_items(q, 0, 1);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* A full closed queue: push_wait returns EPIPE at once, even without a
 * deadline (the queue stays full: nobody would ever make room). */
START_TEST(push_wait_on_full_closed_queue_returns_epipe_at_once)
{
	sync_queue_t *q = new_bounded(2);
	push_items(q, 0, 2);
	sync_queue_close(q);
	ck_assert_int_eq(sync_queue_push_wait(q, item_of(2), NULL), EPIPE);
	ck_assert_int_eq(sync_queue_push(q, item_of(2)), EPIPE);
	pop_items(q, 0, 2);
	void *item;
	ck_assert_int_eq(sync_queue_pop_wait(q, &item, NULL), EPIPE);
	sync_queue_destroy(q);
}
END_TEST

/* ---- bounded: a thread that sleeps in push_wait ------------------------- */

struct push_waiter {
	sync_queue_t *q;
	void *item;
	int64_t timeout_ns; /* 0: no deadline */
	atomic_int *returned;
	pthread_t thread;
	atomic_int tid;
	atomic_int arriving;
	int result;
};

static void *push_waiter_main(void *arg)
{
	struct push_waiter *w = arg;
	atomic_store(&w->tid, thread_id());
	struct timespec d = sync_deadline((uint64_t)w->timeout_ns);
	atomic_store(&w->arriving, 1);
	w->result = sync_queue_push_wait(w->q, w->item, w->timeout_ns ? &d : NULL);
	atomic_fetch_add(w->returned, 1);
	return NULL;
}

/* Starts a thread that push_waits item on the full queue q, and returns
 * once it sleeps there. */
static void push_waiter_start(struct push_waiter *w, sync_queue_t *q, void *item,
			      int64_t timeout_ns, atomic_int *returned)
{
	w->q = q;
	w->item = item;
	w->timeout_ns = timeout_ns;
	w->returned = returned;
	atomic_init(&w->tid, 0);
	atomic_init(&w->arriving, 0);
	w->result = -1;
	ck_assert_int_eq(pthread_create(&w->thread, NULL, push_waiter_main, w), 0);
	ck_assert(wait_until_equal(&w->arriving, 1));
	ck_assert_msg(wait_until_asleep(atomic_load(&w->tid)), "push_wait never slept");
}

static int push_waiter_finish(struct push_waiter *w)
{
	ck_assert_int_eq(pthread_join(w->thread, NULL), 0);
	return w->result;
}

/* Each pop wakes a push_wait sleeper, whose item goes in behind the rest. */
START_TEST(pop_wakes_thread_sleeping_in_push_wait)
{
	sync_queue_t *q = new_bounded(2);
	push_items(q, 0, 2);
	atomic_int returned = 0;
	struct push_waiter w;
	push_waiter_start(&w, q, item_of(2), _i ? LONG_DEADLINE_NS : 0, &returned);
	ck_assert_int_eq(atomic_load(&returned), 0);
	pop_items(q, 0, 1);
	bool woken = wait_until_equal(&returned, 1);
	if (!woken)
		pop_items(q, 1, 2);
	ck_assert_msg(woken, "the pop left the push_wait sleeper asleep");
	ck_assert_int_eq(push_waiter_finish(&w), 0);
	pop_items(q, 1, 3);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

START_TEST(close_wakes_every_push_wait_sleeper_with_epipe)
{
	sync_queue_t *q = new_bounded(1);
	push_items(q, 0, 1);
	atomic_int returned = 0;
	struct push_waiter w[3];
	for (int i = 0; i < 3; i++)
		push_waiter_start(&w[i], q, item_of(1 + i), i == 1 ? LONG_DEADLINE_NS : 0,
				  &returned);
	sync_queue_close(q);
	bool woken = wait_until_equal(&returned, 3);
	if (!woken)
		pop_items(q, 0, 1);
	ck_assert_msg(woken, "close left a push_wait sleeper asleep");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(push_waiter_finish(&w[i]), EPIPE);
	pop_items(q, 0, 1);
	void *item;
	ck_assert_int_eq(sync_queue_pop(q, &item), EPIPE);
	sync_queue_destroy(q);
}
END_TEST

/* pop_wait on a bounded queue: a push wakes it. */
START_TEST(push_wakes_thread_sleeping_in_pop_wait_on_bounded_queue)
{
	sync_queue_t *q = new_bounded(1);
	atomic_int returned = 0;
	struct waiter w;
	waiter_start(&w, q, _i ? LONG_DEADLINE_NS : 0, &returned);
	ck_assert_int_eq(sync_queue_push(q, item_of(7)), 0);
	bool woken = wait_until_equal(&returned, 1);
	if (!woken)
		sync_queue_close(q);
	ck_assert_msg(woken, "the push left the pop_wait sleeper asleep");
	ck_assert_int_eq(waiter_finish(&w), 0);
	ck_assert_ptr_eq(w.item, item_of(7));
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* A push_wait sleeper is cancelled: its item is not queued, and a pop
 * afterwards still wakes another push_wait sleeper. */
START_TEST(push_wait_asleep_is_cancelled_and_pop_still_reaches_another)
{
	sync_queue_t *q = new_bounded(1);
	push_items(q, 0, 1);
	atomic_int returned = 0;
	struct push_waiter cancelled, other;
	push_waiter_start(&cancelled, q, item_of(100), _i ? LONG_DEADLINE_NS : 0, &returned);
	ck_assert_int_eq(pthread_cancel(cancelled.thread), 0);
	void *ret = NULL;
	bool ended = join_within_limit(cancelled.thread, &ret);
	if (!ended) {
		pop_items(q, 0, 1);
		ck_assert_int_eq(pthread_join(cancelled.thread, &ret), 0);
	}
	ck_assert_msg(ended, "push_wait ignored pthread_cancel");
	ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
	ck_assert_int_eq(atomic_load(&returned), 0);
	push_waiter_start(&other, q, item_of(1), _i ? LONG_DEADLINE_NS : 0, &returned);
	pop_items(q, 0, 1);
	bool woken = wait_until_equal(&returned, 1);
	if (!woken)
		sync_queue_close(q);
	ck_assert_msg(woken, "the pop did not reach the other push_wait sleeper");
	ck_assert_int_eq(push_waiter_finish(&other), 0);
	pop_items(q, 1, 2);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* A pop's wake-up consumed by a push_wait sleeper that is then cancelled
 * passes on to the other sleeper: the room does not go unused. */
START_TEST(cancelled_push_waiter_passes_on_the_wake_up_it_consumed)
{
	sync_queue_t *q = new_bounded(1);
	push_items(q, 0, 1);
	for (int round = 0; round < CANCEL_ROUNDS; round++) {
		atomic_int returned = 0;
		struct push_waiter first, second;
		push_waiter_start(&first, q, item_of(1000 + 2 * round), 0, &returned);
		push_waiter_start(&second, q, item_of(1001 + 2 * round), 0, &returned);
		void *item;
		ck_assert_int_eq(sync_queue_pop(q, &item), 0);
		ck_assert_int_eq(pthread_cancel(first.thread), 0);
		void *ret = NULL;
		ck_assert(join_within_limit(first.thread, &ret));
		/* a thread that pushed may still end cancelled, at a
		 * cancellation point on its way out (ASan's exit path has
		 * one): its result says whether it pushed */
		struct push_waiter *got = &second, *left = NULL;
		if (first.result == 0) {
			got = &first; /* it pushed before the cancellation came */
			left = &second;
		}
		bool woken = wait_until_equal(&returned, 1);
		if (!woken)
			ck_assert_int_eq(sync_queue_pop(q, &item), 0);
		ck_assert_msg(woken, "round %d: the room stayed unused while a pusher slept", round);
		if (got == &second)
			ck_assert_int_eq(push_waiter_finish(&second), 0);
		ck_assert_int_eq(got->result, 0);
		if (left) {
			ck_assert_int_eq(pthread_cancel(left->thread), 0);
			ck_assert(join_within_limit(left->thread, &ret));
			ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
		}
		ck_assert_uint_eq(sync_queue_size(q), 1);
	}
	sync_queue_destroy(q);
}
END_TEST

struct pending_push_cancel {
	sync_queue_t *q;
	atomic_int cancel_sent;
};

static void *push_waiter_with_pending_cancel(void *arg)
{
	struct pending_push_cancel *pc = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	while (!atomic_load(&pc->cancel_sent))
		sched_yield();
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	sync_queue_push_wait(pc->q, item_of(1), NULL);
	return NULL;
}

/* As sem_wait: a cancellation point whether or not it would block, on
 * both kinds. */
START_TEST(push_wait_acts_on_pending_cancellation_even_with_room)
{
	struct pending_push_cancel pc = { _i ? new_bounded(4) : new_queue(), 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, push_waiter_with_pending_cancel, &pc), 0);
	ck_assert_int_eq(pthread_cancel(t), 0);
	atomic_store(&pc.cancel_sent, 1);
	void *ret = NULL;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
	check_empty(pc.q);
	sync_queue_destroy(pc.q);
}
END_TEST

/* Bounded push and pop cost no futex call while nobody sleeps, nor does
 * pop_wait or push_wait that need not wait. */
static int child_bounded_without_futex(void *arg)
{
	(void)arg;
	sync_queue_t *q = sync_queue_create_bounded(16);
	void *first;
	if (!q || sync_queue_push(q, NULL) != 0 || sync_queue_pop(q, &first) != 0)
		return 20;
	if (!forbid_futex())
		return NO_SECCOMP;
	for (long round = 0; round < 100; round++) {
		for (long i = 0; i < 16; i++)
			if ((i % 2 ? sync_queue_push(q, item_of(i))
				   : sync_queue_push_wait(q, item_of(i), NULL)) != 0)
				return 1;
		if (sync_queue_push(q, NULL) != EAGAIN)
			return 2;
		for (long i = 0; i < 16; i++) {
			void *item;
			int r = i % 2 ? sync_queue_pop(q, &item) : sync_queue_pop_wait(q, &item, NULL);
			if (r != 0 || item != item_of(i))
				return 3;
		}
	}
	return 0;
}

START_TEST(bounded_push_and_pop_without_sleepers_make_no_futex_call)
{
	int status = child_status(fork_running(child_bounded_without_futex, NULL));
	if (status == NO_SECCOMP)
		return;
	ck_assert_msg(status == 0, "child failed (%d): -1 means killed at a futex call", status);
}
END_TEST

START_TEST(create_bounded_without_memory_returns_null_with_enomem)
{
	if (!FAULTS)
		return;
	errno = 0;
	fail_allocations(1, 0, 0);
	sync_queue_t *q = sync_queue_create_bounded(64);
	int e = errno;
	fail_allocations(0, 0, 0);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(e, ENOMEM);
}
END_TEST

/* push_wait is push on an unbounded queue: ENOMEM when the item needs a
 * segment there is no memory for, and the queue unchanged. */
START_TEST(push_wait_on_unbounded_queue_without_memory_returns_enomem)
{
	if (!FAULTS)
		return;
	sync_queue_t *q = new_queue();
	push_items(q, 0, SEGMENT_SLOTS);
	fail_allocations(0, 0, SEGMENT_BYTES);
	int r = sync_queue_push_wait(q, item_of(SEGMENT_SLOTS), NULL);
	fail_allocations(0, 0, 0);
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_uint_eq(sync_queue_size(q), SEGMENT_SLOTS);
	pop_items(q, 0, SEGMENT_SLOTS);
	check_empty(q);
	sync_queue_destroy(q);
}
END_TEST

/* size on the unbounded queue reads each segment's two counters, not each
 * slot: a long queue answers as fast as a short one (generous bound). */
START_TEST(size_of_long_queue_costs_about_what_a_short_one_does)
{
	sync_queue_t *q = new_queue();
	push_items(q, 0, 64 * SEGMENT_SLOTS);
	int64_t start = now_ns();
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(sync_queue_size(q), 64 * SEGMENT_SLOTS);
	int64_t per_call = (now_ns() - start) / 1000;
	/* a walk of 65536 slots takes tens of microseconds at best */
	ck_assert_msg(per_call < 20000, "size took %lld ns for 64 segments", (long long)per_call);
	sync_queue_destroy(q);
}
END_TEST

/* A thread whose pops keep finding items draws its index without looking
 * first; an empty queue then costs it one drawn index (its slot marked
 * taken, which the next push skips). Nothing is lost or reordered, the
 * size stays exact, and close still ends in EPIPE, across segments. */
START_TEST(pops_that_draw_without_looking_lose_nothing_on_an_empty_queue)
{
	sync_queue_t *q = sync_queue_create();
	ck_assert_ptr_nonnull(q);
	static int items[4];
	void *got;
	for (int i = 0; i < 3000; i++) { /* many pops that find items */
		ck_assert_int_eq(sync_queue_push(q, &items[0]), 0);
		ck_assert_int_eq(sync_queue_pop(q, &got), 0);
	}
	for (int round = 0; round < 20; round++) {
		ck_assert_int_eq(sync_queue_pop(q, &got), EAGAIN);
		ck_assert_uint_eq(sync_queue_size(q), 0);
		ck_assert_int_eq(sync_queue_push(q, &items[1]), 0);
		ck_assert_int_eq(sync_queue_push(q, &items[2]), 0);
		ck_assert_uint_eq(sync_queue_size(q), 2);
		ck_assert_int_eq(sync_queue_pop(q, &got), 0);
		ck_assert_ptr_eq(got, &items[1]);
		ck_assert_int_eq(sync_queue_pop(q, &got), 0);
		ck_assert_ptr_eq(got, &items[2]);
		for (int i = 0; i < 1100; i++) { /* back to drawing without a look */
			ck_assert_int_eq(sync_queue_push(q, &items[3]), 0);
			ck_assert_int_eq(sync_queue_pop(q, &got), 0);
		}
	}
	sync_queue_close(q);
	ck_assert_int_eq(sync_queue_pop(q, &got), EPIPE);
	sync_queue_destroy(q);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("queue");

	TCase *tc = tcase_create("create_destroy");
	tcase_add_test(tc, create_returns_empty_queue);
	tcase_add_test(tc, destroy_of_null_queue_does_nothing);
	tcase_add_test(tc, destroy_of_drained_queue_returns);
	tcase_add_test(tc, destroy_of_queue_holding_items_leaves_items_alone);
	tcase_add_test(tc, destroy_of_queue_holding_items_in_many_segments_returns);
	tcase_add_test(tc, destroy_with_drained_segments_awaiting_grace_period_then_barrier);
	tcase_add_test(tc, queues_are_independent);
	tcase_add_test(tc, destroy_inside_read_side_section_is_allowed);
	suite_add_tcase(s, tc);

	tc = tcase_create("null");
	tcase_add_test(tc, push_to_null_queue_returns_einval);
	tcase_add_test(tc, pop_from_null_queue_returns_einval_and_leaves_item_untouched);
	tcase_add_test(tc, pop_into_null_item_pointer_returns_einval_and_takes_nothing);
	tcase_add_test(tc, pop_wait_from_null_queue_returns_einval_at_once);
	tcase_add_test(tc, pop_wait_into_null_item_pointer_returns_einval_and_takes_nothing);
	tcase_add_test(tc, pop_wait_into_null_item_pointer_on_empty_queue_returns_einval_at_once);
	tcase_add_test(tc, size_of_null_queue_is_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("push_pop");
	tcase_add_test(tc, pop_returns_pushed_item);
	tcase_add_test(tc, pop_of_empty_queue_returns_eagain_and_leaves_item_untouched);
	tcase_add_test(tc, pop_of_drained_queue_returns_eagain);
	tcase_add_test(tc, items_come_out_in_push_order);
	tcase_add_test(tc, null_item_is_queued_and_popped_as_null);
	tcase_add_test(tc, same_pointer_pushed_twice_comes_out_twice);
	tcase_add_test(tc, item_pushed_by_other_thread_pops_here);
	tcase_add_test(tc, failed_pops_do_not_lose_later_pushes);
	suite_add_tcase(s, tc);

	tc = tcase_create("size");
	tcase_add_test(tc, size_of_new_queue_is_zero);
	tcase_add_test(tc, size_counts_pushed_items);
	tcase_add_test(tc, size_drops_as_items_are_popped);
	tcase_add_test(tc, size_counts_null_items);
	tcase_add_test(tc, size_is_exact_across_segments);
	tcase_add_test(tc, size_at_segment_boundaries_is_exact);
	suite_add_tcase(s, tc);

	tc = tcase_create("segments");
	tcase_add_test(tc, pops_that_draw_without_looking_lose_nothing_on_an_empty_queue);
	tcase_add_test(tc, fifo_holds_over_100000_items_pushed_then_popped);
	tcase_add_test(tc, fifo_holds_with_alternating_push_and_pop);
	tcase_add_test(tc, fifo_holds_with_two_pushes_per_pop);
	tcase_add_test(tc, fifo_holds_with_bursts_larger_than_a_segment);
	tcase_add_test(tc, fifo_holds_with_bursts_around_segment_size);
	tcase_add_test(tc, fifo_holds_between_producer_thread_and_consumer_thread);
	tcase_add_test(tc, two_producers_and_two_consumers_pass_every_item_once_in_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("pop_wait");
	tcase_add_test(tc, pop_wait_without_deadline_returns_available_item_at_once);
	tcase_add_test(tc, pop_wait_with_deadline_of_now_returns_available_item);
	tcase_add_test(tc, pop_wait_with_deadline_zero_returns_available_item);
	tcase_add_test(tc, pop_wait_with_negative_seconds_returns_available_item);
	tcase_add_test(tc, pop_wait_with_negative_nsec_returns_einval_even_when_item_available);
	tcase_add_test(tc, pop_wait_with_nsec_of_one_second_returns_einval_even_when_item_available);
	tcase_add_test(tc, pop_wait_with_bad_deadline_on_empty_queue_returns_einval_at_once);
	tcase_add_test(tc, pop_wait_on_empty_queue_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, pop_wait_with_deadline_zero_on_empty_queue_returns_etimedout_at_once);
	tcase_add_test(tc, pop_wait_with_negative_seconds_on_empty_queue_returns_etimedout_at_once);
	tcase_add_test(tc, pop_wait_that_timed_out_leaves_queue_usable);
	tcase_add_test(tc, pop_wait_with_past_deadline_on_empty_queue_times_out_without_polling);
	tcase_add_test(tc, pop_wait_with_deadline_during_polling_times_out_soon_after_it);
	tcase_add_test(tc, pop_wait_returns_item_pushed_before_deadline);
	tcase_add_test(tc, pop_wait_without_deadline_sleeps_until_other_thread_pushes);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocking");
	tcase_add_test(tc, push_wakes_thread_sleeping_in_pop_wait);
	tcase_add_test(tc, push_wakes_thread_sleeping_in_pop_wait_with_deadline);
	tcase_add_test(tc, push_of_null_item_wakes_sleeper_with_null);
	tcase_add_test(tc, n_pushes_wake_n_sleepers_each_with_its_own_item);
	tcase_add_test(tc, two_pushes_wake_only_two_of_four_sleepers);
	tcase_add_test(tc, concurrent_pushes_wake_every_sleeper);
	tcase_add_test(tc, push_wakes_sleeper_every_time);
	tcase_add_test(tc, sleeper_whose_item_was_taken_by_other_thread_keeps_waiting);
	tcase_add_test(tc, sleeper_with_deadline_whose_item_was_taken_keeps_waiting);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancellation");
	tcase_add_test(tc, pop_wait_asleep_is_cancelled_and_push_still_reaches_another_waiter);
	tcase_add_test(tc,
		       pop_wait_with_deadline_asleep_is_cancelled_and_push_still_reaches_another_waiter);
	tcase_add_test(tc, pop_wait_on_empty_queue_acts_on_pending_cancellation);
	tcase_add_test(tc, pop_wait_acts_on_pending_cancellation_even_with_an_item_queued);
	tcase_add_test(tc, cancelled_waiter_passes_on_the_wake_up_it_consumed);
	tcase_add_test(tc, cancelled_waiter_leaves_no_sleeper_behind);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_test(tc, pop_wait_interrupted_by_signal_keeps_waiting_until_push);
	tcase_add_test(tc, pop_wait_with_deadline_interrupted_by_signal_keeps_waiting_until_push);
	tcase_add_test(tc, pop_wait_interrupted_by_signal_times_out_not_before_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 60); /* ten million pairs on a slow machine (30 s ran out beside a model checker) */
	tcase_add_test(tc, rss_stays_flat_over_ten_million_push_pop_pairs);
	tcase_add_test(tc, rss_stays_flat_with_pushes_and_pops_in_two_threads);
	tcase_add_test(tc, push_without_memory_for_segment_returns_enomem_and_changes_nothing);
	tcase_add_test(tc, create_without_memory_returns_null_with_enomem);
	tcase_add_test(tc, push_that_cannot_allocate_a_segment_leaves_errno_and_queue_alone);
	tcase_add_test(tc, pop_past_a_drained_segment_without_memory_neither_waits_nor_changes_errno);
	tcase_add_test(tc, memory_after_many_short_lived_threads_tracks_length_not_history);
	suite_add_tcase(s, tc);

	tc = tcase_create("syscalls");
	tcase_add_test(tc, push_and_pop_without_sleepers_make_no_futex_call);
	suite_add_tcase(s, tc);

	tc = tcase_create("close");
	tcase_add_test(tc, close_of_null_queue_does_nothing);
	tcase_add_loop_test(tc, push_after_close_returns_epipe_and_queues_nothing, 0, 2);
	tcase_add_loop_test(tc, pop_of_closed_empty_queue_returns_epipe_and_leaves_item_untouched, 0, 2);
	tcase_add_loop_test(tc, items_queued_before_close_come_out_in_order_then_epipe, 0, 2);
	tcase_add_test(tc, close_of_queue_with_full_last_segment_refuses_the_next_push);
	tcase_add_loop_test(tc, close_is_idempotent, 0, 2);
	tcase_add_loop_test(tc, close_wakes_every_pop_wait_sleeper_with_epipe, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounded");
	tcase_add_test(tc, create_bounded_with_capacity_zero_returns_null_with_einval);
	tcase_add_test(tc, create_bounded_with_impossible_capacity_returns_null_with_enomem);
	tcase_add_loop_test(tc, bounded_queue_holds_capacity_items_then_push_returns_eagain, 0,
			    sizeof capacities / sizeof capacities[0]);
	tcase_add_loop_test(tc, bounded_queue_keeps_fifo_over_many_laps, 0,
			    sizeof capacities / sizeof capacities[0]);
	tcase_add_test(tc, destroy_of_full_bounded_queue_leaves_items_alone);
	tcase_add_test(tc, push_wait_on_unbounded_queue_is_push);
	tcase_add_loop_test(tc, push_wait_with_null_queue_or_bad_deadline_returns_einval, 0, 2);
	tcase_add_test(tc, push_wait_with_room_returns_at_once);
	tcase_add_test(tc, push_wait_on_full_queue_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, push_wait_on_full_closed_queue_returns_epipe_at_once);
	tcase_add_loop_test(tc, pop_wakes_thread_sleeping_in_push_wait, 0, 2);
	tcase_add_test(tc, close_wakes_every_push_wait_sleeper_with_epipe);
	tcase_add_loop_test(tc, push_wakes_thread_sleeping_in_pop_wait_on_bounded_queue, 0, 2);
	tcase_add_loop_test(tc, push_wait_asleep_is_cancelled_and_pop_still_reaches_another, 0, 2);
	tcase_add_test(tc, cancelled_push_waiter_passes_on_the_wake_up_it_consumed);
	tcase_add_loop_test(tc, push_wait_acts_on_pending_cancellation_even_with_room, 0, 2);
	tcase_add_test(tc, bounded_push_and_pop_without_sleepers_make_no_futex_call);
	tcase_add_test(tc, size_of_long_queue_costs_about_what_a_short_one_does);
	tcase_add_test(tc, create_bounded_without_memory_returns_null_with_enomem);
	tcase_add_test(tc, push_wait_on_unbounded_queue_without_memory_returns_enomem);
	suite_add_tcase(s, tc);

	return s;
}
