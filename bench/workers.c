/* One run inside the forked child: T worker threads, their loops (or a
 * workload's), their totals. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Alignment and padding of shared data: two cache lines, so that neither
 * false sharing nor the adjacent-line prefetcher couples unrelated data. */
#define LINE 128

/* The percentile of lock() latency that the table reports (p99.9). */
#define LATENCY_QUANTILE 0.999

static double ns_per_tick = 1;

/* ---- Time and small helpers ------------------------------------------- */

/* A cheap timestamp for timing every acquisition: the TSC on x86 (rdtscp
 * waits for lock() to have executed), else the monotonic clock. */
static uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned aux;
	return __builtin_ia32_rdtscp(&aux);
#else
	return now_ns();
#endif
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = ns_to_timespec(ns);
	while (nanosleep(&ts, &ts) == EINTR)
		;
}

static void *alloc_lines(size_t size)
{
	size_t rounded = (size + LINE - 1) / LINE * LINE;
	void *p = aligned_alloc(LINE, rounded ? rounded : LINE);
	if (p)
		memset(p, 0, rounded ? rounded : LINE);
	return p;
}

/* Ticks per ns, measured once against the monotonic clock over 20 ms. */
void calibrate_ticks(void)
{
	uint64_t t0 = now_ns(), c0 = ticks();
	sleep_ns(20000000);
	uint64_t t1 = now_ns(), c1 = ticks();
	if (c1 > c0)
		ns_per_tick = (double)(t1 - t0) / (double)(c1 - c0);
}

/* ---- The child: workers and their loops ------------------------------- */

struct counter_line {
	_Alignas(LINE) uint64_t value; /* the critical section's shared line */
};

struct child_run {
	const struct run_spec *spec;
	void *lock;
	struct counter_line *counter;
	struct bench_objects objects; /* a workload's run: its objects */
	pthread_barrier_t start;
	_Alignas(LINE) atomic_int stop; /* fixed-duration runs: time is up */
};

struct worker {
	_Alignas(LINE) unsigned char node[BENCH_NODE_SIZE];
	struct child_run *run;
	pthread_t thread;
	uint64_t pairs;
	uint64_t start_ns;
	uint64_t end_ns;
	uint64_t max_ticks;
	uint64_t hist[HIST_BUCKETS]; /* lock() latency in ticks, sampled runs */
	struct bench_thread ctx;     /* a workload's run: what its loop sees */
};

/* The timed loop: a fixed number of lock; ++counter; unlock; delay. */
static void loop_count(struct worker *w, uint64_t n)
{
	struct child_run *run = w->run;
	void (*lock)(void *, void *) = run->spec->impl->lock;
	void (*unlock)(void *, void *) = run->spec->impl->unlock;
	void *l = run->lock;
	uint64_t *counter = &run->counter->value;
	unsigned delay = run->spec->delay;

	for (uint64_t i = 0; i < n; i++) {
		lock(l, w->node);
		(*counter)++;
		unlock(l, w->node);
		bench_pause(delay);
	}
	w->pairs = n;
}

/* The calibration loop: the same body until `stop`. */
static void loop_for_duration(struct worker *w)
{
	struct child_run *run = w->run;
	void (*lock)(void *, void *) = run->spec->impl->lock;
	void (*unlock)(void *, void *) = run->spec->impl->unlock;
	void *l = run->lock;
	uint64_t *counter = &run->counter->value;
	unsigned delay = run->spec->delay;
	uint64_t n = 0;

	/* relaxed: only a signal to stop; join orders the results */
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		lock(l, w->node);
		(*counter)++;
		unlock(l, w->node);
		n++;
		bench_pause(delay);
	}
	w->pairs = n;
}

/* The fairness loop: as above, with every lock() timed. The histogram is
 * updated after unlock, outside the critical section. */
static void loop_sampled(struct worker *w)
{
	struct child_run *run = w->run;
	void (*lock)(void *, void *) = run->spec->impl->lock;
	void (*unlock)(void *, void *) = run->spec->impl->unlock;
	void *l = run->lock;
	uint64_t *counter = &run->counter->value;
	unsigned delay = run->spec->delay;
	uint64_t n = 0;

	/* relaxed: only a signal to stop; join orders the results */
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		uint64_t t0 = ticks();
		lock(l, w->node);
		uint64_t dt = ticks() - t0;
		(*counter)++;
		unlock(l, w->node);
		w->hist[hist_bucket(dt)]++;
		w->max_ticks = dt > w->max_ticks ? dt : w->max_ticks;
		n++;
		bench_pause(delay);
	}
	w->pairs = n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct run_spec *spec = w->run->spec;

	pthread_barrier_wait(&w->run->start);
	w->start_ns = now_ns();
	if (spec->workload)
		w->pairs = spec->workload->loop(&w->ctx, spec->duration_ms ? 0 :
					spec->ops / (uint64_t)spec->threads);
	else if (spec->sample)
		loop_sampled(w);
	else if (spec->duration_ms)
		loop_for_duration(w);
	else
		loop_count(w, spec->ops / (uint64_t)spec->threads);
	w->end_ns = now_ns();
	return NULL;
}

static double rel_stddev(const struct worker *w, int threads)
{
	double sum = 0, sq = 0;
	for (int i = 0; i < threads; i++)
		sum += (double)w[i].pairs;
	double mean = sum / threads;
	for (int i = 0; i < threads; i++)
		sq += ((double)w[i].pairs - mean) * ((double)w[i].pairs - mean);
	return mean > 0 ? sqrt(sq / threads) / mean : 0;
}

/* Worst thread's quantile (a starved waiter shows there), overall quantile
 * and overall maximum, in ns. */
static void latency(const struct worker *w, int threads, struct run_result *out)
{
	uint64_t all[HIST_BUCKETS] = { 0 }, worst = 0, max = 0;
	for (int i = 0; i < threads; i++) {
		uint64_t q = hist_quantile(w[i].hist, LATENCY_QUANTILE);
		worst = q > worst ? q : worst;
		max = w[i].max_ticks > max ? w[i].max_ticks : max;
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			all[b] += w[i].hist[b];
	}
	out->p999_ns = (double)worst * ns_per_tick;
	out->all_p999_ns = (double)hist_quantile(all, LATENCY_QUANTILE) * ns_per_tick;
	out->max_ns = (double)max * ns_per_tick;
}

static void summarize(const struct child_run *run, const struct worker *w,
		      struct run_result *out)
{
	int threads = run->spec->threads;
	uint64_t first = UINT64_MAX, last = 0, pairs = 0;

	for (int i = 0; i < threads; i++) {
		first = w[i].start_ns < first ? w[i].start_ns : first;
		last = w[i].end_ns > last ? w[i].end_ns : last;
		pairs += w[i].pairs;
	}
	out->wall_ns = (double)(last - first);
	out->pairs = pairs;
	out->rsd = rel_stddev(w, threads);
	if (run->spec->sample && !run->spec->workload)
		latency(w, threads, out);
	if (run->spec->workload) {
		uint64_t counts[2] = { 0, 0 };
		for (int i = 0; i < threads; i++) {
			counts[0] += w[i].ctx.counts[0];
			counts[1] += w[i].ctx.counts[1];
		}
		if (!run->spec->workload->check(&run->objects, pairs, counts))
			out->status = RUN_FAILED;
	} else if (run->counter->value != pairs) {
		fprintf(stderr, "bench: %s: mutual exclusion broken: counter %llu, pairs %llu\n",
			run->spec->impl->name, (unsigned long long)run->counter->value,
			(unsigned long long)pairs);
		out->status = RUN_FAILED;
	}
}

/* Worker i runs on the i-th allowed CPU, round robin: 2 threads always get
 * 2 CPUs, 8 get 4 per CPU on 2, however the scheduler would place them. */
static int pin_attr(pthread_attr_t *attr, const cpu_set_t *allowed, int i)
{
	int n = CPU_COUNT(allowed), k = i % n;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, allowed) && k-- == 0) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			return pthread_attr_setaffinity_np(attr, sizeof one, &one);
		}
	}
	return EINVAL;
}

static int start_workers(struct child_run *run, struct worker *w)
{
	cpu_set_t allowed;
	pthread_attr_t attr;
	int err = 0;

	if (sched_getaffinity(0, sizeof allowed, &allowed))
		return errno;
	pthread_attr_init(&attr);
	for (int i = 0; i < run->spec->threads && !err; i++) {
		w[i].run = run;
		w[i].ctx = (struct bench_thread){ &run->objects, w[i].node, i, { 0, 0 } };
		if (run->spec->pin)
			err = pin_attr(&attr, &allowed, i);
		if (!err)
			err = pthread_create(&w[i].thread, &attr, worker_main, &w[i]);
	}
	pthread_attr_destroy(&attr);
	return err;
}

/* A workload's objects, each on its own lines, set up by the workload. */
static int setup_objects(struct child_run *run)
{
	const struct run_spec *spec = run->spec;
	const struct bench_workload *wl = spec->workload;
	struct bench_objects *o = &run->objects;

	*o = (struct bench_objects){ .impl = spec->impl, .threads = spec->threads,
				     .delay = spec->delay, .stop = &run->stop };
	if (wl->objects < 1 || wl->objects > BENCH_MAX_OBJECTS)
		return EINVAL;
	for (int i = 0; i < wl->objects; i++)
		if (!(o->obj[i] = alloc_lines(spec->impl->size)))
			return ENOMEM;
	if (spec->impl->mutex && !(o->mutex = alloc_lines(spec->impl->mutex->size)))
		return ENOMEM;
	if (!(o->shared = alloc_lines(wl->shared_size)))
		return ENOMEM;
	wl->setup(o);
	return 0;
}

int child_measure(const struct run_spec *spec, struct run_result *out)
{
	struct child_run run = { .spec = spec };
	int threads = spec->threads;
	struct worker *w = alloc_lines((size_t)threads * sizeof *w);

	if (!w)
		return ENOMEM;
	if (spec->workload) {
		int err = setup_objects(&run);
		if (err)
			return err;
	} else {
		run.lock = alloc_lines(spec->impl->size);
		run.counter = alloc_lines(sizeof *run.counter);
		if (!run.lock || !run.counter)
			return ENOMEM;
		spec->impl->init(run.lock);
	}
	pthread_barrier_init(&run.start, NULL, (unsigned)threads + 1);
	int err = start_workers(&run, w);
	if (err)
		return err; /* _exit ends the workers stuck at the barrier */
	pthread_barrier_wait(&run.start);
	if (spec->duration_ms) {
		sleep_ns((uint64_t)spec->duration_ms * 1000000u);
		/* relaxed: see loop_for_duration */
		atomic_store_explicit(&run.stop, 1, memory_order_relaxed);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(w[i].thread, NULL);
	summarize(&run, w, out);
	return 0;
}
