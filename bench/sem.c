/* Semaphore rows: sync_sem against glibc's sem_t (sem_init/sem_wait/sem_post):
 * an uncontended wait+post pair, a ping-pong between two threads through two
 * semaphores, and 8 threads through a sem(2). */
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>

#include <sync/sem.h>

#include "harness.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* ---- ours and glibc's ----------------------------------------------------- */

static void ours_init_value(void *sem, unsigned value)
{
	sync_sem_init(sem, value, 0);
}

static void ours_init(void *sem)
{
	ours_init_value(sem, 1);
}

static void ours_wait(void *sem, void *node)
{
	(void)node;
	sync_sem_wait(sem);
}

static void ours_post(void *sem, void *node)
{
	(void)node;
	sync_sem_post(sem);
}

static void glibc_init_value(void *sem, unsigned value)
{
	sem_init(sem, 0, value);
}

static void glibc_init(void *sem)
{
	glibc_init_value(sem, 1);
}

static void glibc_wait(void *sem, void *node)
{
	(void)node;
	sem_wait(sem);
}

static void glibc_post(void *sem, void *node)
{
	(void)node;
	sem_post(sem);
}

static const struct bench_lock sync_sem = {
	.name = "sync_sem", .size = sizeof(sync_sem_t), .init = ours_init,
	.lock = ours_wait, .unlock = ours_post, .init_value = ours_init_value,
};

static const struct bench_lock glibc_sem = {
	.name = "sem_t", .size = sizeof(sem_t), .init = glibc_init,
	.lock = glibc_wait, .unlock = glibc_post, .init_value = glibc_init_value,
};

/* ---- wait+post: sem(1) as a lock, one thread ------------------------------ */

struct counter_line {
	_Alignas(LINE) uint64_t value; /* changed only between wait and post */
};

static void wait_post_setup(const struct bench_objects *run)
{
	run->impl->init_value(run->obj[0], 1);
}

static uint64_t wait_post_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*wait)(void *, void *) = run->impl->lock;
	void (*post)(void *, void *) = run->impl->unlock;
	void *sem = run->obj[0];
	uint64_t *counter = &((struct counter_line *)run->shared)->value;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		wait(sem, t->node);
		(*counter)++;
		post(sem, t->node);
		bench_pause(run->delay);
	}
	return i;
}

static bool wait_post_check(const struct bench_objects *run, uint64_t ops,
			    const uint64_t counts[2])
{
	uint64_t counter = ((const struct counter_line *)run->shared)->value;
	(void)counts;
	if (counter == ops)
		return true;
	fprintf(stderr, "bench: %s wait+post: counter %llu, pairs %llu\n", run->impl->name,
		(unsigned long long)counter, (unsigned long long)ops);
	return false;
}

static const struct bench_workload wait_post = {
	.name = "wait+post",
	.legend = "sem(1): wait; ++counter (own cache line); post; ns per wait+post pair",
	.objects = 1,
	.shared_size = sizeof(struct counter_line),
	.fairness = true,
	.setup = wait_post_setup,
	.loop = wait_post_loop,
	.check = wait_post_check,
};

/* ---- ping-pong: two threads hand a token through two semaphores ----------- */

/* Thread i waits on obj[i] and posts obj[1 - i]; obj[0] starts at 1, so
 * thread 0 goes first. Only the thread holding the token touches these. */
struct pingpong {
	_Alignas(LINE) uint64_t handoffs; /* even: thread 0's turn, odd: thread 1's */
};

static void pingpong_setup(const struct bench_objects *run)
{
	run->impl->init_value(run->obj[0], 1);
	run->impl->init_value(run->obj[1], 0);
}

/* A thread that finds the time up passes the token on without counting, so
 * the other wakes, finds it up too, and both leave. */
static uint64_t pingpong_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*wait)(void *, void *) = run->impl->lock;
	void (*post)(void *, void *) = run->impl->unlock;
	void *mine = run->obj[t->index], *theirs = run->obj[1 - t->index];
	struct pingpong *p = run->shared;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit; i++) {
		wait(mine, t->node);
		if (bench_stopped(t)) {
			post(theirs, t->node);
			break;
		}
		t->counts[0] += (p->handoffs & 1) != (uint64_t)t->index; /* not our turn */
		p->handoffs++;
		post(theirs, t->node);
		bench_pause(run->delay);
	}
	return i;
}

static bool pingpong_check(const struct bench_objects *run, uint64_t ops,
			   const uint64_t counts[2])
{
	const struct pingpong *p = run->shared;
	if (p->handoffs == ops && !counts[0])
		return true;
	fprintf(stderr, "bench: %s ping-pong: %llu hand-offs, %llu counted, %llu out of turn\n",
		run->impl->name, (unsigned long long)p->handoffs, (unsigned long long)ops,
		(unsigned long long)counts[0]);
	return false;
}

static const struct bench_workload pingpong = {
	.name = "ping-pong",
	.legend = "two sems, s0 = 1, s1 = 0; thread i: wait s[i]; post s[1-i]; ns per hand-off"
		  " (2 per round trip)",
	.objects = 2,
	.shared_size = sizeof(struct pingpong),
	.fixed_threads = true,
	.setup = pingpong_setup,
	.loop = pingpong_loop,
	.check = pingpong_check,
};

/* ---- sem(2): T threads, at most two inside ---------------------------------- */

#define SEM2_VALUE 2u

struct occupancy {
	_Alignas(LINE) atomic_uint inside; /* threads between wait and post */
};

static void sem2_setup(const struct bench_objects *run)
{
	run->impl->init_value(run->obj[0], SEM2_VALUE);
}

static uint64_t sem2_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*wait)(void *, void *) = run->impl->lock;
	void (*post)(void *, void *) = run->impl->unlock;
	void *sem = run->obj[0];
	atomic_uint *inside = &((struct occupancy *)run->shared)->inside;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		wait(sem, t->node);
		/* relaxed: one counter, its modification order is all we read;
		 * the semaphore orders the rest */
		unsigned now = atomic_fetch_add_explicit(inside, 1, memory_order_relaxed) + 1;
		t->counts[0] += now > SEM2_VALUE;
		atomic_fetch_sub_explicit(inside, 1, memory_order_relaxed);
		post(sem, t->node);
		bench_pause(run->delay);
	}
	return i;
}

static bool sem2_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	unsigned inside = atomic_load(&((struct occupancy *)run->shared)->inside);
	(void)ops;
	if (!counts[0] && !inside)
		return true;
	fprintf(stderr, "bench: %s sem(2): more than 2 inside %llu times, %u inside at the end\n",
		run->impl->name, (unsigned long long)counts[0], inside);
	return false;
}

static const struct bench_workload sem2 = {
	.name = "sem(2)",
	.legend = "sem(2): wait; ++inside, check <= 2, --inside (one shared atomic); post;"
		  " ns per wait+post pair",
	.objects = 1,
	.shared_size = sizeof(struct occupancy),
	.fairness = true,
	.setup = sem2_setup,
	.loop = sem2_loop,
	.check = sem2_check,
};

/* ---- rows ------------------------------------------------------------------- */

void bench_sem(const struct bench_config *cfg, struct bench_tally *tally)
{
	static const struct bench_row rows[] = {
		{ "sync_sem", &sync_sem, &glibc_sem, 1, { TARGET_RATIO, 1.00 }, &wait_post },
		{ "sync_sem", &sync_sem, &glibc_sem, 2, { TARGET_RATIO, 0.50 }, &pingpong },
		{ "sync_sem", &sync_sem, &glibc_sem, 8, { TARGET_RATIO, 1.00 }, &sem2 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		bench_run_row(cfg, &rows[i], tally);
}
