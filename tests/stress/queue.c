/* Stress test for sync_queue under ThreadSanitizer, unbounded and bounded
 * (capacities 1, 64, 1024): producers push numbered items by push,
 * push_wait or push_wait with short deadlines, consumers pop them by pop,
 * pop_wait or pop_wait with short deadlines; every item comes out exactly
 * once, each consumer sees each
 * producer's items in the order they were pushed (the observable face of
 * FIFO with several producers and consumers), timed waits never time out
 * early, a pop_wait pool drains everything and stops on sentinels or at
 * the EPIPE of a close (every worker exits), and the queue ends empty. A
 * close in the middle of the pushes: each push returns 0 or EPIPE, every
 * item whose push returned 0 comes out once, no other item does. Items point to records whose plain fields the producer
 * writes just before the push, so ThreadSanitizer reports a race if a pop
 * is not ordered after its push; the bookkeeping atomics are relaxed, so
 * every happens-before edge it sees comes from the library. Then the
 * hand-off cases: the thread that pops an item destroys the queue while the
 * push of that item, held up by a TEST_HOOK delay just after it published
 * the item, has not returned (both kinds); ThreadSanitizer reports any
 * access of that push to the freed queue. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sync/epoch.h>
#include <sync/queue.h>

#include "harness.h"

static void count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long got(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* How consumers take items. */
enum take {
	TAKE_POP,   /* sync_queue_pop, yielding on EAGAIN */
	TAKE_WAIT,  /* sync_queue_pop_wait without deadline */
	TAKE_TIMED, /* pop, pop_wait with 5-80 us and past deadlines, and none */
};

/* How producers give items (a bounded queue may be full). */
enum give {
	GIVE_PUSH,  /* sync_queue_push, yielding on EAGAIN */
	GIVE_WAIT,  /* sync_queue_push_wait without deadline */
	GIVE_TIMED, /* push, push_wait with 5-80 us and past deadlines, and none */
};

/* What an item is: a pointer to a record the producer fills in, or the
 * record's index cast to a pointer (index 0 is NULL). */
enum carry { CARRY_RECORD, CARRY_INDEX };

struct q_case {
	const char *name;
	int producers, consumers;
	size_t capacity; /* 0: unbounded */
	enum give give;
	enum take take;
	enum carry carry;
	bool sentinels;       /* consumers stop at a sentinel, not a ticket */
	bool close;           /* ... at EPIPE: the last producer closes */
	bool close_midway;    /* ... a thread closes while producers push */
	bool hold_pushes;     /* ... some held up between the closed hint and
			       * their claim (TEST_HOOK queue_push:open) */
	unsigned pause_every; /* producers sleep every nth push (0: never) */
	bool run_dry;         /* ... long enough that timed pops must expire */
	unsigned pause_us;
	unsigned items_per_ms; /* total = items_per_ms * STRESS_MS */
	uint64_t min_items;    /* ... but at least this many */
};

/* Written by its producer before the push, read by the consumer after the
 * pop: plain on purpose. */
struct record {
	uint32_t producer;
	uint32_t seq;
	uint64_t check;
};

static uint64_t check_word(uint32_t producer, uint32_t seq)
{
	return ((uint64_t)producer << 32 | seq) * 0x9e3779b97f4a7c15ull + 1;
}

/* Consumers in the pool case stop at this address. */
static char sentinel;

struct q_run {
	const struct q_case *c;
	sync_queue_t *q;
	uint64_t per_producer;
	uint64_t total;
	struct record *records; /* producer p's item s is records[p * per + s] */
	atomic_uchar *seen;     /* pops per record */
	atomic_ullong tickets, popped, inversions, garbled, bad;
	atomic_ullong busy, timeouts, early_timeouts, sentinels_seen, push_timeouts;
	atomic_int producers_left;
	uint64_t pushed[STRESS_MAX_THREADS];
	uint64_t consumed[STRESS_MAX_THREADS];
};

static void *item_of(struct q_run *run, uint64_t index)
{
	if (run->c->carry == CARRY_INDEX)
		return (void *)(uintptr_t)index;
	return &run->records[index];
}

/* The record index an item stands for, or UINT64_MAX if it is none. */
static uint64_t index_of(struct q_run *run, void *item)
{
	if (run->c->carry == CARRY_INDEX) {
		uint64_t i = (uintptr_t)item;
		return i < run->total ? i : UINT64_MAX;
	}
	struct record *r = item;
	if (r < run->records || r >= run->records + run->total)
		return UINT64_MAX;
	uint64_t i = (uint64_t)(r - run->records);
	/* plain reads: ordered after the producer's writes by push and pop */
	if (r->check != check_word(r->producer, r->seq) ||
	    r->producer * run->per_producer + r->seq != i)
		return UINT64_MAX;
	return i;
}

/* Checks that a timed wait that returned ETIMEDOUT did so at its deadline
 * or later. */
static void check_timeout(struct q_run *run, const struct timespec *deadline)
{
	uint64_t now = stress_now_ns();
	uint64_t due = (uint64_t)deadline->tv_sec * 1000000000u + (uint64_t)deadline->tv_nsec;
	if (now < due)
		count(&run->early_timeouts);
}

/* One attempt to push: 0, EAGAIN (full) or ETIMEDOUT. */
static int give_once(struct q_run *run, uint64_t attempt, void *item)
{
	if (run->c->give == GIVE_PUSH)
		return sync_queue_push(run->q, item);
	if (run->c->give == GIVE_WAIT)
		return sync_queue_push_wait(run->q, item, NULL);
	switch (attempt % 4) {
	case 0:
		return sync_queue_push(run->q, item);
	case 1: {
		struct timespec deadline = sync_deadline(5000u << (attempt / 4 % 5));
		int r = sync_queue_push_wait(run->q, item, &deadline);
		if (r == ETIMEDOUT)
			check_timeout(run, &deadline);
		return r;
	}
	case 2: {
		struct timespec past = sync_deadline(0);
		return sync_queue_push_wait(run->q, item, &past);
	}
	default:
		return sync_queue_push_wait(run->q, item, NULL);
	}
}

/* Pushes item, trying again while the queue is full: 0 or an error. */
static int give_item(struct q_run *run, uint64_t attempt, void *item)
{
	for (;;) {
		int r = give_once(run, attempt++, item);
		if (r == EAGAIN)
			sched_yield();
		else if (r == ETIMEDOUT)
			count(&run->push_timeouts);
		else
			return r;
	}
}

static void producer(struct q_run *run, int p)
{
	const struct q_case *c = run->c;
	uint64_t pushed = 0;
	for (uint64_t s = 0; s < run->per_producer; s++) {
		uint64_t i = (uint64_t)p * run->per_producer + s;
		if (c->carry == CARRY_RECORD)
			run->records[i] = (struct record){
				(uint32_t)p, (uint32_t)s,
				check_word((uint32_t)p, (uint32_t)s) };
		int r = give_item(run, s, item_of(run, i));
		if (r == EPIPE && c->close_midway)
			break; /* closed: the rest is never pushed */
		if (r)
			count(&run->bad);
		else
			pushed++;
		if (c->pause_every && s % c->pause_every == c->pause_every - 1)
			stress_sleep_us(c->pause_us);
	}
	run->pushed[p] = pushed;
	/* the last producer out queues one sentinel per consumer, behind
	 * every item, or closes the queue */
	if (!(c->sentinels || c->close) || c->close_midway ||
	    atomic_fetch_sub_explicit(&run->producers_left, 1,
				      memory_order_relaxed) != 1)
		return;
	if (c->close) {
		sync_queue_close(run->q);
		if (sync_queue_push(run->q, &sentinel) != EPIPE ||
		    sync_queue_push_wait(run->q, &sentinel, NULL) != EPIPE)
			count(&run->bad);
		return;
	}
	for (int k = 0; k < c->consumers; k++)
		if (give_item(run, (uint64_t)k, &sentinel))
			count(&run->bad);
}

/* One attempt at an item: 0 when *item was taken. */
static int take_item(struct q_run *run, uint64_t attempt, void **item)
{
	if (run->c->take == TAKE_POP)
		return sync_queue_pop(run->q, item);
	if (run->c->take == TAKE_WAIT)
		return sync_queue_pop_wait(run->q, item, NULL);
	switch (attempt % 4) {
	case 0:
		return sync_queue_pop(run->q, item);
	case 1: {
		/* deadlines from 5 us to 80 us */
		struct timespec deadline = sync_deadline(5000u << (attempt / 4 % 5));
		int r = sync_queue_pop_wait(run->q, item, &deadline);
		if (r == ETIMEDOUT)
			check_timeout(run, &deadline);
		return r;
	}
	case 2: {
		/* already past: still takes an item that is there */
		struct timespec past = sync_deadline(0);
		return sync_queue_pop_wait(run->q, item, &past);
	}
	default:
		return sync_queue_pop_wait(run->q, item, NULL);
	}
}

/* Books one item: once only, in its producer's order for this consumer.
 * last_seq[p] is the last sequence number seen from producer p, +1. */
static void book(struct q_run *run, void *item, uint64_t *last_seq)
{
	uint64_t i = index_of(run, item);
	if (i == UINT64_MAX) {
		count(&run->garbled);
		return;
	}
	uint64_t p = i / run->per_producer, s = i % run->per_producer;
	if (s + 1 <= last_seq[p])
		count(&run->inversions);
	last_seq[p] = s + 1;
	atomic_fetch_add_explicit(&run->seen[i], 1, memory_order_relaxed);
	count(&run->popped);
}

static void note_failure(struct q_run *run, int r)
{
	if (r == EAGAIN && run->c->take != TAKE_WAIT)
		count(&run->busy);
	else if (r == ETIMEDOUT && run->c->take == TAKE_TIMED)
		count(&run->timeouts);
	else
		count(&run->bad);
}

/* Claims a ticket (one of the items that will be pushed), then tries until
 * it gets an item: every ticket is matched by a push, so the run ends only
 * if no item was lost. */
static void ticket_consumer(struct q_run *run, int index)
{
	uint64_t last_seq[STRESS_MAX_THREADS] = { 0 };
	uint64_t consumed = 0, attempt = (uint64_t)index;
	while (atomic_fetch_add_explicit(&run->tickets, 1, memory_order_relaxed) <
	       run->total) {
		void *item;
		int r;
		while ((r = take_item(run, attempt++, &item)) != 0) {
			note_failure(run, r);
			if (r == EAGAIN)
				sched_yield();
			else if (r != ETIMEDOUT)
				return; /* counted as bad; do not spin on it */
		}
		book(run, item, last_seq);
		consumed++;
	}
	run->consumed[index] = consumed;
}

/* A pop_wait worker: takes whatever comes until its sentinel, or until
 * the queue is closed and drained (EPIPE). */
static void pool_worker(struct q_run *run, int index)
{
	uint64_t last_seq[STRESS_MAX_THREADS] = { 0 };
	uint64_t consumed = 0;
	for (;;) {
		void *item;
		int r = sync_queue_pop_wait(run->q, &item, NULL);
		if (r == EPIPE && run->c->close) {
			count(&run->sentinels_seen);
			break;
		}
		if (r) {
			count(&run->bad);
			return;
		}
		if (item == &sentinel) {
			count(&run->sentinels_seen);
			break;
		}
		book(run, item, last_seq);
		consumed++;
	}
	run->consumed[index] = consumed;
}

static atomic_int holding_pushes;

/* Holds every 8th passage of each thread through these points 50 us: a
 * push that found the queue open, a bounded ring's enqueue that drew its
 * ticket (the cell not yet filled), a waiter between its last look at
 * the queue and its sleep; so that closes, pops and pushes land in those
 * windows. Relaxed: the flag only chooses whether to sleep, and must add
 * no ordering of its own. */
static void hold_open_push(const char *point)
{
	static _Thread_local unsigned calls;
	if ((strcmp(point, "queue_push:open") == 0 ||
	     strcmp(point, "queue_ring:ticket") == 0 ||
	     strcmp(point, "queue_sleep:looked") == 0) &&
	    atomic_load_explicit(&holding_pushes, memory_order_relaxed) && ++calls % 8 == 0)
		stress_sleep_us(50);
}

/* Closes the queue a quarter of the way through the run's time. */
static void closer(struct q_run *run)
{
	stress_sleep_us(stress_ms() * 250);
	sync_queue_close(run->q);
}

static void queue_worker(void *arg, int index)
{
	struct q_run *run = arg;
	if (index == run->c->producers + run->c->consumers)
		closer(run);
	else if (index < run->c->producers)
		producer(run, index);
	else if (run->c->sentinels || run->c->close)
		pool_worker(run, index);
	else
		ticket_consumer(run, index);
}

/* Pushes n more items from one thread while nothing else runs: size() is
 * exact, and they come back in order. */
static void check_quiescent_size(const struct q_case *c, sync_queue_t *q,
				 uint64_t n)
{
	uint64_t bad = 0;
	for (uint64_t i = 0; i < n; i++)
		bad += sync_queue_push(q, (void *)(uintptr_t)(i + 1)) != 0;
	size_t size = sync_queue_size(q);
	for (uint64_t i = 0; i < n; i++) {
		void *item = NULL;
		bad += sync_queue_pop(q, &item) != 0 || item != (void *)(uintptr_t)(i + 1);
	}
	tap_check(size == n && bad == 0,
		  "%s: afterwards %llu items pushed by one thread: size() %zu == "
		  "%llu, popped back in order (%llu wrong)",
		  c->name, (unsigned long long)n, size, (unsigned long long)n,
		  (unsigned long long)bad);
}

static void check_case(const struct q_case *c)
{
	static struct q_run run;
	uint64_t total = (uint64_t)c->items_per_ms * stress_ms();
	if (total < c->min_items)
		total = c->min_items;
	run = (struct q_run){ .c = c, .producers_left = c->producers };
	run.per_producer = (total + (uint64_t)c->producers - 1) / (uint64_t)c->producers;
	run.total = run.per_producer * (uint64_t)c->producers;
	run.records = calloc(run.total, sizeof *run.records);
	run.seen = calloc(run.total, sizeof *run.seen);
	run.q = c->capacity ? sync_queue_create_bounded(c->capacity) : sync_queue_create();
	if (!run.records || !run.seen || !run.q) {
		perror("queue stress setup");
		exit(EXIT_FAILURE);
	}
	if (c->hold_pushes) {
		atomic_store_explicit(&holding_pushes, 1, memory_order_relaxed);
		test_hook_set(hold_open_push);
	}
	uint64_t start = stress_now_ns();
	stress_run_threads_to_end(c->producers + c->consumers + c->close_midway,
				  queue_worker, &run);
	uint64_t ms = (stress_now_ns() - start) / 1000000u;
	if (c->hold_pushes) {
		test_hook_set(NULL);
		atomic_store_explicit(&holding_pushes, 0, memory_order_relaxed);
	}

	uint64_t pushed = 0, consumed = 0, missing = 0, twice = 0;
	for (int i = 0; i < c->producers; i++)
		pushed += run.pushed[i];
	for (int i = c->producers; i < c->producers + c->consumers; i++)
		consumed += run.consumed[i];
	/* producer p pushed its first pushed[p] items (all of them unless the
	 * queue was closed midway): those once each, the rest never */
	for (uint64_t i = 0; i < run.total; i++) {
		unsigned n = atomic_load_explicit(&run.seen[i], memory_order_relaxed);
		bool was_pushed = i % run.per_producer < run.pushed[i / run.per_producer];
		missing += was_pushed && n == 0;
		twice += was_pushed ? n > 1 : n > 0;
	}
	uint64_t expected = c->close_midway ? pushed : run.total;
	tap_check(pushed == expected && consumed == expected && got(&run.popped) == expected &&
			  (!c->close_midway || pushed < run.total) && missing == 0 &&
			  twice == 0 && got(&run.garbled) == 0 && got(&run.bad) == 0,
		  "%s: %llu items pushed, %llu popped, each exactly once (%llu "
		  "missing, %llu twice, %llu garbled, %llu stray errors) in %llu ms",
		  c->name, (unsigned long long)pushed, (unsigned long long)consumed,
		  (unsigned long long)missing, (unsigned long long)twice,
		  got(&run.garbled), got(&run.bad), (unsigned long long)ms);
	tap_check(got(&run.inversions) == 0,
		  "%s: every consumer sees each producer's items in push order "
		  "(%llu inversions)", c->name, got(&run.inversions));
	if (c->sentinels || c->close)
		tap_check(got(&run.sentinels_seen) == (uint64_t)c->consumers,
			  "%s: each of the %d workers stopped at %s behind every "
			  "item (%llu seen)", c->name, c->consumers,
			  c->close ? "the EPIPE of close" : "a sentinel queued",
			  got(&run.sentinels_seen));
	else if (c->take == TAKE_TIMED || c->give == GIVE_TIMED)
		tap_check(got(&run.early_timeouts) == 0 &&
				  (!c->run_dry || got(&run.timeouts) > 0),
			  "%s: %llu pop_wait and %llu push_wait timed out, none "
			  "before its deadline (%llu early, %llu EAGAIN)", c->name,
			  got(&run.timeouts), got(&run.push_timeouts),
			  got(&run.early_timeouts), got(&run.busy));
	else /* spans segments, or fills the bounded queue */
		check_quiescent_size(c, run.q, c->capacity ? c->capacity : 3 * 1024 + 5);
	void *item = &sentinel;
	size_t size = sync_queue_size(run.q);
	int r = sync_queue_pop(run.q, &item);
	int want = c->close ? EPIPE : EAGAIN;
	tap_check(size == 0 && r == want && item == &sentinel,
		  "%s: ends drained (size() %zu, pop %s)", c->name, size,
		  r == EAGAIN ? "EAGAIN" : strerror(r));
	sync_queue_destroy(run.q);
	free(run.records);
	free(run.seen);
}

/* Item counts are fixed, so each case runs to the end; STRESS_MS scales
 * them (default 400). The first case is 4 producers x 4 consumers with
 * 250,000 items each, 1,000,000 in all at the default: about 3 s under
 * ThreadSanitizer on 2 CPUs. */
static const struct q_case cases[] = {
	{ .name = "queue 4 producers x 4 consumers, pop", .producers = 4,
	  .consumers = 4, .take = TAKE_POP, .items_per_ms = 2500,
	  .min_items = 1000 },
	/* producers pause, so the workers run dry and sleep in pop_wait */
	{ .name = "queue 2 producers, pool of 3 pop_wait workers",
	  .producers = 2, .consumers = 3, .take = TAKE_WAIT, .sentinels = true,
	  .pause_every = 64, .pause_us = 200, .items_per_ms = 100,
	  .min_items = 1000 },
	{ .name = "queue 2 producers x 4 consumers, pop + timed pop_wait",
	  .producers = 2, .consumers = 4, .take = TAKE_TIMED,
	  .pause_every = 64, .pause_us = 200, .run_dry = true,
	  .items_per_ms = 100,
	  .min_items = 1000 },
	/* more threads than cores; index items, NULL among them */
	{ .name = "queue 5 producers x 5 consumers, pop_wait",
	  .producers = 5, .consumers = 5, .take = TAKE_WAIT,
	  .carry = CARRY_INDEX, .items_per_ms = 500, .min_items = 1000 },
	{ .name = "queue 6 producers x 4 consumers, pop + timed pop_wait",
	  .producers = 6, .consumers = 4, .take = TAKE_TIMED,
	  .pause_every = 128, .pause_us = 100, .items_per_ms = 150,
	  .min_items = 1000 },
	/* a thread pool shut down by close: every task once, all exit */
	{ .name = "queue 2 producers, pool of 3 pop_wait workers, close",
	  .producers = 2, .consumers = 3, .take = TAKE_WAIT, .close = true,
	  .pause_every = 64, .pause_us = 200, .items_per_ms = 100,
	  .min_items = 1000 },
	/* bounded: every push and pop of capacity 1 meets a full or empty
	 * queue, so both sides sleep and wake each other */
	{ .name = "bounded(1) 3 producers x 3 consumers, push_wait/pop_wait",
	  .producers = 3, .consumers = 3, .capacity = 1, .give = GIVE_WAIT,
	  .take = TAKE_WAIT, .carry = CARRY_INDEX, .items_per_ms = 25,
	  .min_items = 1000 },
	/* ... with waiters held between their last look and their sleep: a
	 * wake-up lost there leaves a waiter asleep for good (the watchdog) */
	{ .name = "bounded(1) 3 producers x 3 consumers held, push_wait/pop_wait",
	  .producers = 3, .consumers = 3, .capacity = 1, .give = GIVE_WAIT,
	  .take = TAKE_WAIT, .hold_pushes = true, .carry = CARRY_INDEX,
	  .items_per_ms = 5, .min_items = 1000 },
	{ .name = "bounded(64) 4 producers x 4 consumers, push/pop",
	  .producers = 4, .consumers = 4, .capacity = 64, .give = GIVE_PUSH,
	  .take = TAKE_POP, .items_per_ms = 250, .min_items = 1000 },
	/* more threads than cores, every kind of call on both sides */
	{ .name = "bounded(1024) 6 producers x 6 consumers, timed waits",
	  .producers = 6, .consumers = 6, .capacity = 1024, .give = GIVE_TIMED,
	  .take = TAKE_TIMED, .items_per_ms = 250, .min_items = 1000 },
	{ .name = "bounded(64) 4 producers, pool of 4 pop_wait workers, close",
	  .producers = 4, .consumers = 4, .capacity = 64, .give = GIVE_WAIT,
	  .take = TAKE_WAIT, .close = true, .pause_every = 256, .pause_us = 200,
	  .items_per_ms = 200, .min_items = 1000 },
	/* close while producers push: each push before it comes out, none after */
	{ .name = "queue 3 producers, pool of 3 pop_wait workers, close midway",
	  .producers = 3, .consumers = 3, .take = TAKE_WAIT, .close = true,
	  .close_midway = true, .carry = CARRY_INDEX, .items_per_ms = 10000,
	  .min_items = 1000 },
	{ .name = "bounded(1) 3 producers push_wait, 3 pop_wait workers, close midway",
	  .producers = 3, .consumers = 3, .capacity = 1, .give = GIVE_WAIT,
	  .take = TAKE_WAIT, .close = true, .close_midway = true,
	  .carry = CARRY_INDEX, .items_per_ms = 1000, .min_items = 1000 },
	{ .name = "bounded(64) 4 producers push, 2 pop_wait workers, close midway",
	  .producers = 4, .consumers = 2, .capacity = 64, .give = GIVE_PUSH,
	  .take = TAKE_WAIT, .close = true, .close_midway = true,
	  .items_per_ms = 5000, .min_items = 1000 },
	/* ... with pushes held between the closed hint and their claim, where
	 * only the seal (ENQ_CLOSED, aq's closed tail) can refuse them */
	{ .name = "queue 4 producers held, 2 pop_wait workers, close midway",
	  .producers = 4, .consumers = 2, .take = TAKE_WAIT, .close = true,
	  .close_midway = true, .hold_pushes = true, .carry = CARRY_INDEX,
	  .items_per_ms = 1000, .min_items = 1000 },
	{ .name = "bounded(16) 1 producer held, 4 pop_wait workers, close midway",
	  .producers = 1, .consumers = 4, .capacity = 16, .give = GIVE_WAIT,
	  .take = TAKE_WAIT, .close = true, .close_midway = true,
	  .hold_pushes = true, .items_per_ms = 1000, .min_items = 1000 },
	{ .name = "bounded(16) 4 producers held, 2 pop_wait workers, close midway",
	  .producers = 4, .consumers = 2, .capacity = 16, .give = GIVE_WAIT,
	  .take = TAKE_WAIT, .close = true, .close_midway = true,
	  .hold_pushes = true, .items_per_ms = 1000, .min_items = 1000 },
	{ .name = "bounded(1) 2 producers, pool of 5 pop_wait workers, close",
	  .producers = 2, .consumers = 5, .capacity = 1, .give = GIVE_TIMED,
	  .take = TAKE_WAIT, .close = true, .carry = CARRY_INDEX,
	  .items_per_ms = 10, .min_items = 1000 },
};

/* ---- destroy by the popper while the push returns ------------------------ */

#define HANDOFF_ROUNDS 20
#define HANDOFF_DELAY_US 2000

static atomic_int delay_armed;

/* Holds the push up just after it published its item: right after the
 * store of FULL (before it looks at gave_up), and again once the
 * publication is settled. Relaxed: the flag only chooses whether to sleep,
 * and must add no ordering of its own. */
static void delay_after_publish(const char *point)
{
	if ((strcmp(point, "queue_push:published") == 0 ||
	     strcmp(point, "queue_slot:stored") == 0) &&
	    atomic_load_explicit(&delay_armed, memory_order_relaxed))
		stress_sleep_us(HANDOFF_DELAY_US);
}

struct handoff {
	sync_queue_t *q;
	void *item;
	int result;
};

static void *handoff_pusher(void *arg)
{
	struct handoff *h = arg;
	h->result = sync_queue_push(h->q, h->item);
	return NULL;
}

/* One round: a thread pushes (into a new segment if `tail_full`) and is
 * held up after publishing; this thread pops the item and destroys the
 * queue at once. Returns the number of things that went wrong. */
static int destroy_after_pop_round(bool tail_full, bool bounded)
{
	static char token;
	sync_queue_t *q = bounded ? sync_queue_create_bounded(4) : sync_queue_create();
	if (!q)
		return 1;
	int wrong = 0;
	void *item = NULL;
	if (tail_full) {
		for (uintptr_t i = 0; i < 1024; i++)
			wrong += sync_queue_push(q, (void *)i) != 0;
		for (uintptr_t i = 0; i < 1024; i++)
			wrong += sync_queue_pop(q, &item) != 0 || item != (void *)i;
	}
	struct handoff h = { q, &token, -1 };
	pthread_t t;
	atomic_store_explicit(&delay_armed, 1, memory_order_relaxed);
	if (pthread_create(&t, NULL, handoff_pusher, &h))
		return wrong + 1;
	int r;
	while ((r = sync_queue_pop(q, &item)) == EAGAIN)
		sched_yield();
	sync_queue_destroy(q);
	pthread_join(t, NULL);
	atomic_store_explicit(&delay_armed, 0, memory_order_relaxed);
	return wrong + (r != 0) + (item != &token) + (h.result != 0);
}

static void check_destroy_after_pop(bool tail_full, bool bounded)
{
	test_hook_set(delay_after_publish);
	int wrong = 0;
	for (int i = 0; i < HANDOFF_ROUNDS; i++)
		wrong += destroy_after_pop_round(tail_full, bounded);
	test_hook_set(NULL);
	sync_epoch_barrier(); /* runs the callbacks that free the queues */
	tap_check(wrong == 0,
		  "queue destroyed by the popper of an item whose push (%s) is "
		  "held up %d us after publishing it: %d rounds, %d wrong, no "
		  "access to the freed queue", bounded ? "into a bounded queue" :
		  tail_full ? "linking a new segment" : "into a slot",
		  HANDOFF_DELAY_US, HANDOFF_ROUNDS, wrong);
}

/* ---- a thread held in a window, the other side acting meanwhile ---------- */

#define WINDOW_US 20000

static _Atomic(const char *) window_point;
static atomic_int window_armed, window_reached;

/* Holds the first thread that passes window_point WINDOW_US, and tells
 * the test it is there. Relaxed: the flags only choose whether to sleep
 * and when the other side acts, and must add no ordering of their own. */
static void hold_in_window(const char *point)
{
	if (strcmp(point, atomic_load_explicit(&window_point, memory_order_relaxed)) != 0 ||
	    !atomic_exchange_explicit(&window_armed, 0, memory_order_relaxed))
		return;
	atomic_store_explicit(&window_reached, 1, memory_order_relaxed);
	stress_sleep_us(WINDOW_US);
}

/* Arms the window at point. */
static void arm_window(const char *point)
{
	atomic_store_explicit(&window_point, point, memory_order_relaxed);
	atomic_store_explicit(&window_reached, 0, memory_order_relaxed);
	atomic_store_explicit(&window_armed, 1, memory_order_relaxed);
	test_hook_set(hold_in_window);
}

/* Waits until a thread is in the window; false if none came in 2 s. */
static bool window_entered(void)
{
	uint64_t start = stress_now_ns();
	while (!atomic_load_explicit(&window_reached, memory_order_relaxed))
		if (stress_now_ns() - start > 2000000000u)
			return false;
		else
			sched_yield();
	return true;
}

struct waiting_call {
	sync_queue_t *q;
	bool push;
	int result;
	uint64_t ns; /* how long the call took */
};

static void *waiting_call_main(void *arg)
{
	struct waiting_call *w = arg;
	static char token;
	void *item;
	struct timespec deadline = sync_deadline(3000000000u);
	uint64_t start = stress_now_ns();
	w->result = w->push ? sync_queue_push_wait(w->q, &token, &deadline)
			    : sync_queue_pop_wait(w->q, &item, &deadline);
	w->ns = stress_now_ns() - start;
	return NULL;
}

/* A waiter (pop_wait on an empty queue, or push_wait on a full bounded
 * one) is held after its last look at the queue, before its sleep; the
 * other side pushes (pops) then. No wake-up may be lost: the waiter
 * returns 0 long before its 3 s deadline (a lost one makes it sleep until
 * the deadline, and take the item only then). */
static void check_no_lost_wakeup_in_window(bool bounded, bool push)
{
	static char other;
	sync_queue_t *q = bounded ? sync_queue_create_bounded(1) : sync_queue_create();
	int wrong = !q;
	void *item;
	if (q && push)
		wrong += sync_queue_push(q, &other) != 0; /* full */
	struct waiting_call w = { q, push, -1, 0 };
	pthread_t t;
	arm_window("queue_sleep:looked");
	if (!wrong && pthread_create(&t, NULL, waiting_call_main, &w) == 0) {
		bool entered = window_entered();
		wrong += !entered;
		wrong += push ? sync_queue_pop(q, &item) != 0 : sync_queue_push(q, &other) != 0;
		pthread_join(t, NULL);
	} else {
		wrong++;
	}
	test_hook_set(NULL);
	tap_check(!wrong && w.result == 0 && w.ns < 1000000000u,
		  "%s: a %s held %d us between its last look and its sleep, while "
		  "the other side %s, returns 0 at once, not at its deadline "
		  "(returned %d after %llu ms)", bounded ? "bounded(1)" : "queue",
		  push ? "push_wait" : "pop_wait", WINDOW_US, push ? "pops" : "pushes",
		  w.result, (unsigned long long)(w.ns / 1000000u));
	if (q)
		sync_queue_destroy(q);
}

struct plain_push {
	sync_queue_t *q;
	int result;
};

static void *plain_push_main(void *arg)
{
	struct plain_push *p = arg;
	static char token;
	p->result = sync_queue_push(p->q, &token);
	return NULL;
}

/* A push is held where it drew its ticket but has not filled its cell (or
 * slot), on an empty queue; the queue is closed and popped meanwhile. The
 * pop and the push must agree: either the pop returns the item, or it
 * says EPIPE and the push fails with EPIPE too (a push that succeeds after
 * a pop said closed and empty would leave an item nobody pops). */
static void check_close_while_push_holds_ticket(bool bounded)
{
	sync_queue_t *q = bounded ? sync_queue_create_bounded(4) : sync_queue_create();
	struct plain_push p = { q, -1 };
	int popped = -1, wrong = !q;
	pthread_t t;
	arm_window(bounded ? "queue_ring:ticket" : "queue_push:open");
	if (!wrong && pthread_create(&t, NULL, plain_push_main, &p) == 0) {
		wrong += !window_entered();
		sync_queue_close(q);
		void *item;
		popped = sync_queue_pop(q, &item);
		pthread_join(t, NULL);
	} else {
		wrong++;
	}
	test_hook_set(NULL);
	bool agree = (popped == 0 && p.result == 0) || (popped == EPIPE && p.result == EPIPE);
	tap_check(!wrong && agree,
		  "%s: closed and popped while a push holds its %s: pop %s, push %s",
		  bounded ? "bounded(4)" : "queue", bounded ? "ring ticket" : "open hint",
		  popped == 0 ? "took the item" : popped == EPIPE ? "EPIPE" : "other",
		  p.result == 0 ? "0" : p.result == EPIPE ? "EPIPE" : "other");
	if (q)
		sync_queue_destroy(q);
}

/* ---- a pop that found the queue open and empty, then a push and a close -- */

/* Ends the run if a call the check needs fails (r: its result, non-zero
 * on failure). */
static void must(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "%s failed: %d\n", what, r);
		abort();
	}
}

struct late_pop {
	sync_queue_t *q;
	atomic_int stage; /* 1: the pop looked; 2: pushed and closed */
	int result;
};

/* Atomic: the hook runs in every thread that pops, workers of the other
 * checks too (TSan saw the plain pointer race with them). */
static _Atomic(struct late_pop *) late_pop;

/* Holds the pop up after its look at the ring, until the main thread has
 * pushed an item and closed the queue. */
static void hold_pop_after_look(const char *point)
{
	if (strcmp(point, "bounded_pop:looked"))
		return;
	struct late_pop *lp = atomic_load(&late_pop);
	if (!lp || atomic_load(&lp->stage) != 0)
		return;
	atomic_store(&lp->stage, 1);
	while (atomic_load(&lp->stage) != 2)
		stress_sleep_us(100);
}

static void *pop_once(void *arg)
{
	struct late_pop *lp = arg;
	void *item;
	lp->result = sync_queue_pop(lp->q, &item);
	return NULL;
}

/* The pop saw the bounded queue open and empty; an item and a close come
 * before it answers. EPIPE would say closed and empty while the item is
 * still there (the pop looked at the close twice: the first look decided
 * the dequeue, the second the answer; tests/models/queue_close.pml); it
 * must answer EAGAIN, and the item still comes out after the close. */
static void check_pop_answers_from_its_own_look(void)
{
	struct late_pop lp = { sync_queue_create_bounded(1), 0, -1 };
	must(lp.q == NULL, "sync_queue_create_bounded");
	pthread_t t;
	atomic_store(&late_pop, &lp);
	test_hook_set(hold_pop_after_look);
	must(pthread_create(&t, NULL, pop_once, &lp), "pthread_create");
	while (atomic_load(&lp.stage) != 1)
		stress_sleep_us(100);
	must(sync_queue_push(lp.q, (void *)1), "sync_queue_push");
	sync_queue_close(lp.q);
	atomic_store(&lp.stage, 2);
	pthread_join(t, NULL);
	test_hook_set(NULL);
	atomic_store(&late_pop, NULL);
	void *item = NULL;
	int after = sync_queue_pop(lp.q, &item);
	tap_check(lp.result == EAGAIN && after == 0 && item == (void *)1,
		  "bounded queue: a pop that looked before a push and a close answers "
		  "EAGAIN, not EPIPE with the item still queued (pop %d, then %d)",
		  lp.result, after);
	sync_queue_destroy(lp.q);
}

/* At destroy's hook, after it marked the queue destroyed: run every
 * callback retired so far, the drained segment's among them. */
static void barrier_in_destroy(const char *point)
{
	if (!strcmp(point, "queue_destroy:marked"))
		sync_epoch_barrier();
}

/* Destroy right after pops that retired a drained segment, whose callback
 * runs while destroy is under way (here: a barrier at its hook; in a
 * program: the reclaimer thread). The callback must not take the queue
 * for done and free it under destroy (before the fix: a use after free,
 * seen in a CI run of the check-stress cases, where a pop drew past a
 * drained segment just before destroy). */
static void check_destroy_while_a_retired_segment_is_reclaimed(void)
{
	static int item;
	sync_queue_t *q = sync_queue_create();
	if (!q)
		abort();
	void *got;
	int popped = 0;
	for (int i = 0; i < 1030; i++)
		must(sync_queue_push(q, &item), "sync_queue_push");
	for (int i = 0; i < 1030; i++)
		popped += sync_queue_pop(q, &got) == 0;
	test_hook_set(barrier_in_destroy);
	sync_queue_destroy(q);
	test_hook_set(NULL);
	tap_check(popped == 1030, "destroy while the callback of a segment retired just "
		  "before runs: no use after free (%d of 1030 popped first)", popped);
}

/* ---- a popper that gives up on a stalled pusher (src/queue_slot.c) -------- */

#define GIVE_UP_ITEMS 4000 /* per producer, per round */
#define GIVE_UP_SECONDS 10 /* at most, until every outcome was seen */

/* How often each way the slot hand-off settled (test hook points). */
struct give_up_tally {
	atomic_ullong left_empty; /* the popper gave up on an empty slot */
	atomic_ullong reclaimed;  /* pusher and popper saw each other: pusher won */
	atomic_ullong taken;      /* ... the popper won */
	atomic_ullong missing, twice, inversions, rounds;
};

static struct give_up_tally *tally;

static unsigned jitter_us(void)
{
	static _Thread_local uint64_t x;
	if (!x)
		x = (uint64_t)(uintptr_t)&x | 1u;
	return (unsigned)(stress_random(&x) % 64u);
}

/* Stalls pushers after their ticket (so that poppers give up), and both
 * sides inside the hand-off (so that they see each other); counts how it
 * settled. */
static void give_up_hook(const char *point)
{
	if (!strcmp(point, "queue_slot:left_empty"))
		count(&tally->left_empty);
	else if (!strcmp(point, "queue_slot:reclaimed"))
		count(&tally->reclaimed);
	else if (!strcmp(point, "queue_slot:taken"))
		count(&tally->taken);
	else if (!strcmp(point, "queue_push:ticket") || !strcmp(point, "queue_slot:stored") ||
		 !strcmp(point, "queue_slot:gave_up")) {
		unsigned us = jitter_us();
		if (us < 32)
			stress_sleep_us(us);
	}
}

struct give_up_run {
	sync_queue_t *q;
	atomic_uchar seen[2][GIVE_UP_ITEMS];
	atomic_uint popped;
	uint64_t deadline; /* consumers stop then, items lost or not */
};

static void give_up_worker(void *arg, int me)
{
	struct give_up_run *run = arg;
	if (me < 2) { /* a producer: items are (producer, index) */
		for (uintptr_t i = 0; i < GIVE_UP_ITEMS; i++)
			if (sync_queue_push(run->q, (void *)(((uintptr_t)me << 32) | i)))
				count(&tally->missing);
		return;
	}
	int64_t last[2] = { -1, -1 };
	while (atomic_load_explicit(&run->popped, memory_order_relaxed) < 2 * GIVE_UP_ITEMS &&
	       stress_now_ns() < run->deadline) {
		void *item;
		if (sync_queue_pop(run->q, &item)) {
			sched_yield();
			continue;
		}
		atomic_fetch_add_explicit(&run->popped, 1, memory_order_relaxed);
		int p = (int)((uintptr_t)item >> 32);
		int64_t i = (int64_t)((uintptr_t)item & 0xffffffffu);
		if (atomic_fetch_add_explicit(&run->seen[p][i], 1, memory_order_relaxed))
			count(&tally->twice);
		if (i <= last[p])
			count(&tally->inversions);
		last[p] = i;
	}
}

/* Rounds of 2 producers and 2 consumers until each of the three outcomes
 * was seen (or GIVE_UP_SECONDS passed). */
static void give_up_rounds(void)
{
	static struct give_up_run run;
	uint64_t start = stress_now_ns();
	test_hook_set(give_up_hook);
	do {
		memset(&run, 0, sizeof run);
		run.q = sync_queue_create();
		run.deadline = start + GIVE_UP_SECONDS * 1000000000ull;
		if (!run.q) {
			count(&tally->missing);
			break;
		}
		stress_run_threads_to_end(4, give_up_worker, &run);
		for (int p = 0; p < 2; p++)
			for (int i = 0; i < GIVE_UP_ITEMS; i++)
				if (!atomic_load_explicit(&run.seen[p][i], memory_order_relaxed))
					count(&tally->missing);
		sync_queue_destroy(run.q);
		count(&tally->rounds);
	} while ((!got(&tally->left_empty) || !got(&tally->reclaimed) || !got(&tally->taken)) &&
		 stress_now_ns() - start < GIVE_UP_SECONDS * 1000000000ull);
	test_hook_set(NULL);
}

/* The pushers' compiler fence with the give-up's membarrier (this
 * process), or the seq_cst pair (a child with SYNC_QUEUE_NO_MEMBARRIER=1,
 * which decides so at its first queue). */
static void check_give_up_outcomes(bool seq_cst)
{
	tally = mmap(NULL, sizeof *tally, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tally == MAP_FAILED) {
		perror("queue stress mmap");
		exit(EXIT_FAILURE);
	}
	int status = 0;
	if (seq_cst) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			setenv("SYNC_QUEUE_NO_MEMBARRIER", "1", 1);
			give_up_rounds();
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid)
			status = -1;
	} else {
		give_up_rounds();
	}
	tap_check(status == 0 && got(&tally->missing) == 0 && got(&tally->twice) == 0 &&
			  got(&tally->inversions) == 0 && got(&tally->left_empty) > 0 &&
			  got(&tally->reclaimed) > 0 && got(&tally->taken) > 0,
		  "poppers give up on stalled pushers (%s): every item once, in order "
		  "(%llu missing, %llu twice, %llu inversions); %llu rounds, gave up on "
		  "an empty slot %llu times, both saw each other and the pusher won %llu, "
		  "the popper %llu", seq_cst ? "seq_cst pair" : "membarrier",
		  got(&tally->missing), got(&tally->twice), got(&tally->inversions),
		  got(&tally->rounds), got(&tally->left_empty), got(&tally->reclaimed),
		  got(&tally->taken));
	munmap(tally, sizeof *tally);
}

int main(void)
{
	int n = (int)(sizeof cases / sizeof cases[0]);
	tap_plan(n * 4 + 3 + 3 + 2 + 1 + 1 + 2);
	check_give_up_outcomes(true); /* first: the child decides its mode */
	for (int i = 0; i < n; i++)
		check_case(&cases[i]);
	check_destroy_after_pop(false, false);
	check_destroy_after_pop(true, false);
	check_destroy_after_pop(false, true);
	check_no_lost_wakeup_in_window(false, false);
	check_no_lost_wakeup_in_window(true, false);
	check_no_lost_wakeup_in_window(true, true);
	check_close_while_push_holds_ticket(false);
	check_close_while_push_holds_ticket(true);
	check_pop_answers_from_its_own_look();
	check_destroy_while_a_retired_segment_is_reclaimed();
	check_give_up_outcomes(false);
	return tap_exit_status();
}
