/* Condition variable rows: sync_cond with sync_mutex against glibc's
 * pthread_cond with pthread_mutex (default attributes): two threads take
 * turns, each waiting on its own condition variable. */
#include <pthread.h>
#include <stdio.h>

#include <sync/cond.h>

#include "harness.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* ---- ours and glibc's ----------------------------------------------------- */

static void ours_init(void *cond)
{
	sync_cond_init(cond, 0);
}

static void ours_wait(void *cond, void *mutex)
{
	sync_cond_wait(cond, mutex);
}

static void ours_signal(void *cond)
{
	sync_cond_signal(cond);
}

static void glibc_init(void *cond)
{
	pthread_cond_init(cond, NULL);
}

static void glibc_wait(void *cond, void *mutex)
{
	pthread_cond_wait(cond, mutex);
}

static void glibc_signal(void *cond)
{
	pthread_cond_signal(cond);
}

static const struct bench_lock sync_cond = {
	.name = "sync_cond", .size = sizeof(sync_cond_t), .init = ours_init,
	.wait = ours_wait, .signal = ours_signal, .mutex = &bench_sync_mutex,
};

static const struct bench_lock glibc_cond = {
	.name = "pthread_cond", .size = sizeof(pthread_cond_t), .init = glibc_init,
	.wait = glibc_wait, .signal = glibc_signal, .mutex = &bench_pthread_mutex,
};

/* ---- ping-pong: two threads take turns under one mutex -------------------- */

/* Read and written only with the mutex held. */
struct turns {
	_Alignas(LINE) int turn; /* the thread whose turn it is */
	uint64_t handoffs;       /* even: thread 0's turn, odd: thread 1's */
};

static void pingpong_setup(const struct bench_objects *run)
{
	run->impl->init(run->obj[0]);
	run->impl->init(run->obj[1]);
	run->impl->mutex->init(run->mutex);
}

/* Thread i waits on obj[i] until it is its turn, flips the turn and signals
 * obj[1 - i]. A thread that finds the time up flips the turn without
 * counting, so the other wakes, finds it up too, and both leave. */
static uint64_t pingpong_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*lock)(void *, void *) = run->impl->mutex->lock;
	void (*unlock)(void *, void *) = run->impl->mutex->unlock;
	void (*wait)(void *, void *) = run->impl->wait;
	void (*signal)(void *) = run->impl->signal;
	void *m = run->mutex, *mine = run->obj[t->index], *theirs = run->obj[1 - t->index];
	struct turns *s = run->shared;
	int me = t->index;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit; i++) {
		lock(m, t->node);
		while (s->turn != me)
			wait(mine, m);
		bool stop = bench_stopped(t);
		if (!stop) {
			t->counts[0] += (s->handoffs & 1) != (uint64_t)me; /* out of turn */
			s->handoffs++;
		}
		s->turn = 1 - me;
		signal(theirs);
		unlock(m, t->node);
		if (stop)
			break;
		bench_pause(run->delay);
	}
	return i;
}

static bool pingpong_check(const struct bench_objects *run, uint64_t ops,
			   const uint64_t counts[2])
{
	const struct turns *s = run->shared;
	if (s->handoffs == ops && !counts[0])
		return true;
	fprintf(stderr, "bench: %s ping-pong: %llu hand-offs, %llu counted, %llu out of turn\n",
		run->impl->name, (unsigned long long)s->handoffs, (unsigned long long)ops,
		(unsigned long long)counts[0]);
	return false;
}

static const struct bench_workload pingpong = {
	.name = "ping-pong",
	.legend = "one mutex, two conds; thread i: lock; while turn != i: wait c[i]; turn = 1-i;"
		  " signal c[1-i]; unlock; ns per hand-off",
	.objects = 2,
	.shared_size = sizeof(struct turns),
	.fixed_threads = true,
	.setup = pingpong_setup,
	.loop = pingpong_loop,
	.check = pingpong_check,
};

/* ---- rows ------------------------------------------------------------------- */

void bench_cond(const struct bench_config *cfg, struct bench_tally *tally)
{
	static const struct bench_row rows[] = {
		{ "sync_cond", &sync_cond, &glibc_cond, 2, { TARGET_RATIO, 1.00 }, &pingpong },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		bench_run_row(cfg, &rows[i], tally);
}
