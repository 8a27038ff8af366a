/* Benchmark harness. Every measurement runs in a forked child (the parent
 * never has threads), whose T workers come from pthread_create while the
 * child's main thread only waits, so glibc never sees a single-threaded
 * process. The parent kills a child that outlives its cap. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sync/common.h>

#include "harness.h"

/* Alignment and padding of shared data: two cache lines, so that neither
 * false sharing nor the adjacent-line prefetcher couples unrelated data. */
#define LINE 128

/* Fairness/latency run: every lock() is timed in cycles (ticks()) into a
 * per-thread log-linear histogram: HIST_SUB buckets per power of two, so a
 * percentile is off by at most 1/HIST_SUB. */
#define HIST_SUB 8u
#define HIST_BUCKETS (64u * HIST_SUB)
#define LATENCY_QUANTILE 0.999
/* A single lock() at least this long is listed under the table. */
#define LONG_WAIT_NS 50e6

/* Pairs per timed run, whatever the calibration says. */
#define MIN_OPS (1u << 12)
#define MAX_OPS (1ull << 32)

enum run_status { RUN_OK, RUN_CAPPED, RUN_FAILED };

/* One forked run. duration_ms == 0: every thread does ops / threads pairs;
 * otherwise the threads lock until duration_ms has passed, and time every
 * lock() if `sample`. */
struct run_spec {
	const struct bench_lock *impl;
	int threads;
	uint64_t ops;
	unsigned duration_ms;
	bool sample;
	unsigned delay;
	bool pin;
};

/* What a child reports through the MAP_SHARED page. */
struct run_result {
	int status;      /* enum run_status as the child saw it */
	double wall_ns;  /* first worker's start to last worker's end */
	uint64_t pairs;  /* lock+unlock pairs of all workers */
	double rsd;      /* relative standard deviation of per-thread pairs */
	double p999_ns;  /* worst thread's acquire-latency quantile (sampled runs) */
	double all_p999_ns; /* the same over all threads' acquisitions together */
	double max_ns;      /* longest acquire of all */
};

static struct run_result *shared_result;
static sigset_t sigchld_set;
static double ns_per_tick = 1;

/* /proc/stat totals at bench_init: steal time shows a busy hypervisor. */
struct cpu_times {
	unsigned long long total;
	unsigned long long steal;
};
static struct cpu_times times_at_start;

/* ---- Time and small helpers ------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static struct timespec ns_to_timespec(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	return ts;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = ns_to_timespec(ns);
	while (nanosleep(&ts, &ts) == EINTR)
		;
}

/* The optional non-critical delay: `n` pause instructions. */
static void pause_n(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#else
		__asm__ __volatile__("" ::: "memory");
#endif
	}
}

static void *alloc_lines(size_t size)
{
	size_t rounded = (size + LINE - 1) / LINE * LINE;
	void *p = aligned_alloc(LINE, rounded ? rounded : LINE);
	if (p)
		memset(p, 0, rounded ? rounded : LINE);
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[BENCH_MAX_ROUNDS];
	memcpy(s, v, (size_t)n * sizeof *v);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Ticks per ns, measured once against the monotonic clock over 20 ms. */
static void calibrate_ticks(void)
{
	uint64_t t0 = now_ns(), c0 = ticks();
	sleep_ns(20000000);
	uint64_t t1 = now_ns(), c1 = ticks();
	if (c1 > c0)
		ns_per_tick = (double)(t1 - t0) / (double)(c1 - c0);
}

static unsigned hist_bucket(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 2^e <= v, e >= 3 */
	unsigned sub = (unsigned)(v >> (e - 3)) & (HIST_SUB - 1);
	return (e - 2) * HIST_SUB + sub;
}

/* The largest value that falls into bucket b. */
static uint64_t hist_upper(unsigned b)
{
	if (b < HIST_SUB)
		return b;
	unsigned e = b / HIST_SUB + 2, sub = b % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (e - 3)) - 1;
}

/* Nearest-rank quantile q of a histogram, in ticks. */
static uint64_t hist_quantile(const uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		total += hist[b];
	uint64_t rank = (uint64_t)ceil(q * (double)total);
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += hist[b];
		if (total && seen >= rank)
			return hist_upper(b);
	}
	return 0;
}

/* ---- The child: workers and their loops ------------------------------- */

struct counter_line {
	_Alignas(LINE) uint64_t value; /* the critical section's shared line */
};

struct child_run {
	const struct run_spec *spec;
	void *lock;
	struct counter_line *counter;
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
		pause_n(delay);
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
		pause_n(delay);
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
		pause_n(delay);
	}
	w->pairs = n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct run_spec *spec = w->run->spec;

	pthread_barrier_wait(&w->run->start);
	w->start_ns = now_ns();
	if (spec->sample)
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
	if (run->spec->sample)
		latency(w, threads, out);
	if (run->counter->value != pairs) {
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
		if (run->spec->pin)
			err = pin_attr(&attr, &allowed, i);
		if (!err)
			err = pthread_create(&w[i].thread, &attr, worker_main, &w[i]);
	}
	pthread_attr_destroy(&attr);
	return err;
}

static int child_measure(const struct run_spec *spec, struct run_result *out)
{
	struct child_run run = { .spec = spec };
	int threads = spec->threads;
	struct worker *w = alloc_lines((size_t)threads * sizeof *w);

	run.lock = alloc_lines(spec->impl->size);
	run.counter = alloc_lines(sizeof *run.counter);
	if (!w || !run.lock || !run.counter)
		return ENOMEM;
	spec->impl->init(run.lock);
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

static _Noreturn void child_main(const struct run_spec *spec)
{
	struct run_result r = { .status = RUN_OK };

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan spins on if we die */
	sigprocmask(SIG_UNBLOCK, &sigchld_set, NULL);
	int err = child_measure(spec, &r);
	if (err) {
		fprintf(stderr, "bench: %s: %s\n", spec->impl->name, strerror(err));
		r.status = RUN_FAILED;
	}
	*shared_result = r;
	_exit(r.status == RUN_OK ? 0 : 1);
}

/* ---- The parent: fork and cap ----------------------------------------- */

static bool read_cpu_times(struct cpu_times *t)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
		  : 0;
	if (f)
		fclose(f);
	t->total = 0;
	for (int i = 0; i < 8; i++)
		t->total += v[i];
	t->steal = v[7];
	return n == 8;
}

int bench_init(void)
{
	calibrate_ticks();
	read_cpu_times(&times_at_start);
	sigemptyset(&sigchld_set);
	sigaddset(&sigchld_set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &sigchld_set, NULL))
		return errno;
	shared_result = mmap(NULL, sizeof *shared_result, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return shared_result == MAP_FAILED ? errno : 0;
}

static enum run_status reap(pid_t pid)
{
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return RUN_FAILED;
	return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? RUN_OK : RUN_FAILED;
}

/* Waits for the child until cap_s has passed, then kills it. */
static enum run_status wait_capped(pid_t pid, double cap_s)
{
	uint64_t deadline = now_ns() + (uint64_t)(cap_s * 1e9);
	for (;;) {
		int ws;
		pid_t r = waitpid(pid, &ws, WNOHANG);
		if (r == pid)
			return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? RUN_OK : RUN_FAILED;
		if (r < 0 && errno != EINTR)
			return RUN_FAILED;
		uint64_t now = now_ns();
		if (now >= deadline)
			break;
		struct timespec left = ns_to_timespec(deadline - now);
		sigtimedwait(&sigchld_set, NULL, &left); /* SIGCHLD or timeout */
	}
	kill(pid, SIGKILL);
	reap(pid);
	return RUN_CAPPED;
}

static enum run_status run_capped(const struct run_spec *spec, double cap_s,
				  struct run_result *res)
{
	memset(shared_result, 0, sizeof *shared_result);
	shared_result->status = RUN_FAILED;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench: fork");
		return RUN_FAILED;
	}
	if (pid == 0)
		child_main(spec);
	enum run_status st = wait_capped(pid, cap_s);
	if (st != RUN_OK)
		return st;
	*res = *shared_result; /* the child has exited: its writes are done */
	return (enum run_status)res->status;
}

/* ---- One row ---------------------------------------------------------- */

/* The timed rounds of one side of a row. */
struct side {
	double ns[BENCH_MAX_ROUNDS]; /* ns per pair of each finished round */
	int n;
	bool capped;  /* a round hit the cap; later rounds were skipped */
	bool failed;
	double cap_s; /* the cap it hit */
};

/* The fixed-duration runs of one side: medians are reported. */
struct fairness {
	enum run_status status; /* RUN_OK unless a run was capped or failed */
	int n;
	double rsd[BENCH_MAX_ROUNDS];
	double p999_ns[BENCH_MAX_ROUNDS];
	double max_ns; /* longest single lock() of all runs */
};

static uint64_t round_ops(double ops, int threads)
{
	if (ops < MIN_OPS)
		ops = MIN_OPS;
	if (ops > (double)MAX_OPS)
		ops = (double)MAX_OPS;
	uint64_t per_thread = (uint64_t)ops / (uint64_t)threads;
	return (per_thread ? per_thread : 1) * (uint64_t)threads;
}

static double clamp_cap(const struct bench_config *cfg, double expect_s)
{
	double cap = cfg->cap_factor * expect_s;
	if (cap < cfg->cap_min_s)
		cap = cfg->cap_min_s;
	return cap > cfg->cap_max_s ? cfg->cap_max_s : cap;
}

/* Cap of the next run: from our slowest round so far, else the calibration. */
static double cap_for(const struct bench_config *cfg, const struct side *ours,
		      uint64_t ops, double est_s)
{
	double slowest = 0;
	for (int i = 0; i < ours->n; i++)
		slowest = ours->ns[i] > slowest ? ours->ns[i] : slowest;
	if (ours->n)
		return clamp_cap(cfg, slowest * (double)ops / 1e9);
	return est_s > 0 ? clamp_cap(cfg, est_s) : cfg->cap_max_s;
}

static int allowed_cpus(void)
{
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof allowed, &allowed))
		return 1;
	return CPU_COUNT(&allowed);
}

/* The row's pairs per run: what ours completes in a round_ms fixed-duration
 * run with min(threads, CPUs) threads. Oversubscribed rows thus get the work
 * that fills round_ms when every thread has a CPU: a lock that copes with
 * preempted holders and waiters takes about as long with more threads, one
 * that collapses runs into the cap. (A fixed-duration run also keeps every
 * thread busy throughout, where a short fixed-count run could finish each
 * thread's share before the next one even starts.) */
static uint64_t calibrate(const struct bench_config *cfg, const struct bench_row *row,
			  double *est_s)
{
	int cpus = allowed_cpus();
	struct run_spec spec = { row->ours, row->threads < cpus ? row->threads : cpus, 0,
				 cfg->round_ms, false, cfg->delay, cfg->pin };
	struct run_result r;

	*est_s = 0;
	if (run_capped(&spec, cfg->round_ms / 1e3 + cfg->cap_min_s, &r) != RUN_OK ||
	    !r.pairs)
		return round_ops(MIN_OPS, row->threads); /* the rounds will show it */
	*est_s = cfg->round_ms / 1e3;
	return round_ops((double)r.pairs * cfg->round_ms * 1e6 / r.wall_ns, row->threads);
}

static void measure_round(const struct bench_config *cfg, const struct run_spec *spec,
			  double cap_s, struct side *s)
{
	struct run_result r;

	if (s->capped || s->failed)
		return; /* a later round would hit the same wall */
	switch (run_capped(spec, cap_s, &r)) {
	case RUN_OK:
		s->ns[s->n++] = r.wall_ns / (double)r.pairs;
		break;
	case RUN_CAPPED:
		s->capped = true;
		s->cap_s = cap_s;
		break;
	case RUN_FAILED:
		s->failed = true;
		break;
	}
	if (!cfg->verbose)
		return;
	fprintf(stderr, "  %-18s %d thr %llu pairs: ", spec->impl->name, spec->threads,
		(unsigned long long)spec->ops);
	if (s->capped)
		fprintf(stderr, "capped at %.1f s\n", cap_s);
	else if (s->failed)
		fprintf(stderr, "FAILED\n");
	else
		fprintf(stderr, "%.2f ns/op\n", s->ns[s->n - 1]);
}

static void measure_fairness(const struct bench_config *cfg, const struct bench_lock *impl,
			     int threads, struct fairness *f)
{
	struct run_spec spec = { impl, threads, 0, cfg->fair_ms, true, cfg->delay, cfg->pin };
	struct run_result r;

	if (f->status != RUN_OK)
		return; /* a later run would hit the same wall */
	f->status = run_capped(&spec, cfg->fair_ms / 1e3 + cfg->cap_min_s, &r);
	if (f->status == RUN_OK) {
		f->rsd[f->n] = r.rsd;
		f->p999_ns[f->n++] = r.p999_ns;
		f->max_ns = r.max_ns > f->max_ns ? r.max_ns : f->max_ns;
	}
	if (cfg->verbose && f->status == RUN_OK)
		fprintf(stderr, "  %-18s %d thr fairness: %llu pairs, rsd %.3f, p99.9 worst"
			" thread %.0f ns, all %.0f ns, max %.0f ns\n",
			impl->name, threads, (unsigned long long)r.pairs, r.rsd, r.p999_ns,
			r.all_p999_ns, r.max_ns);
}

/* ---- Formatting ------------------------------------------------------- */

/* How the ratio ours/peer is known. */
enum bound { EXACT, BELOW, ABOVE, UNKNOWN };

/* A side's ns per pair: its median, or (capped) the lower bound cap/ops. */
static bool side_ns(const struct side *s, uint64_t ops, double *ns)
{
	if (s->capped) {
		*ns = s->cap_s * 1e9 / (double)ops;
		return true;
	}
	if (s->failed || !s->n)
		return false;
	*ns = median(s->ns, s->n);
	return true;
}

static enum bound compare(const struct side *ours, const struct side *peer,
			  uint64_t ops, double *ratio)
{
	double a, b;
	if (!side_ns(ours, ops, &a) || !side_ns(peer, ops, &b) ||
	    (ours->capped && peer->capped))
		return UNKNOWN;
	*ratio = a / b;
	return peer->capped ? BELOW : ours->capped ? ABOVE : EXACT;
}

static void fmt_side(char *buf, size_t len, const struct side *s)
{
	if (s->capped)
		snprintf(buf, len, "> %.1f s", s->cap_s);
	else if (s->failed || !s->n)
		snprintf(buf, len, "FAIL");
	else
		snprintf(buf, len, "%.1f", median(s->ns, s->n));
}

static void fmt_ratio(char *buf, size_t len, enum bound b, double ratio)
{
	static const char *const prefix[] = { "", "< ", "> " };
	if (b == UNKNOWN)
		snprintf(buf, len, "-");
	else if (b == BELOW && ratio < 0.01)
		snprintf(buf, len, "< 0.01");
	else
		snprintf(buf, len, ratio < 10 ? "%s%.2f" : ratio < 100 ? "%s%.1f" : "%s%.0f",
			 prefix[b], ratio);
}

static void fmt_target(char *buf, size_t len, const struct bench_target *t)
{
	if (t->kind == TARGET_RATIO)
		snprintf(buf, len, "<= %.2f", t->max_ratio);
	else if (t->kind == TARGET_FINISHES)
		snprintf(buf, len, "finishes");
	else
		buf[0] = '\0';
}

/* "cap" or "FAIL" when the fairness runs did not all complete. */
static bool fmt_incomplete(char *buf, size_t len, const struct fairness *f)
{
	if (f->status == RUN_OK && f->n)
		return false;
	snprintf(buf, len, f->status == RUN_CAPPED ? "cap" : f->status == RUN_FAILED ? "FAIL" : "-");
	return true;
}

static void fmt_percent(char *buf, size_t len, const struct fairness *f)
{
	if (fmt_incomplete(buf, len, f))
		return;
	double pct = median(f->rsd, f->n) * 100;
	snprintf(buf, len, pct < 9.95 ? "%.1f%%" : "%.0f%%", pct);
}

static void fmt_duration(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0fns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.1fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
}

static void fmt_latency(char *buf, size_t len, const struct fairness *f)
{
	if (!fmt_incomplete(buf, len, f))
		fmt_duration(buf, len, median(f->p999_ns, f->n));
}

/* "a/b" of both sides' fairness or latency; empty for one thread. */
static void fmt_pair(char *buf, size_t len, int threads, const struct fairness *a,
		     const struct fairness *b,
		     void (*fmt)(char *, size_t, const struct fairness *))
{
	char x[16], y[16];
	if (threads < 2) {
		buf[0] = '\0';
		return;
	}
	fmt(x, sizeof x, a);
	fmt(y, sizeof y, b);
	snprintf(buf, len, "%s/%s", x, y);
}

#define ROW_FORMAT "%-15s %-18s %3s %10s %10s %8s %-8s %-4s %14s %16s\n"

void bench_print_header(const struct bench_config *cfg)
{
	char model[128] = "unknown CPU", date[64];
	char line[256];
	struct utsname u;
	time_t t = time(NULL);
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (colon && !strncmp(line, "model name", 10)) {
			snprintf(model, sizeof model, "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", localtime(&t));
	uname(&u);
	printf("# libsync %s bench: %ld CPUs (%s), Linux %s, %s, %d rounds per side%s\n",
	       sync_version(), sysconf(_SC_NPROCESSORS_ONLN), model, u.release, date,
	       cfg->rounds, cfg->rounds < 5 ? " (SMOKE RUN, not a measurement)" : "");
	printf("# workload: T threads from pthread_create (the main thread only waits)%s,"
	       " each: lock; ++counter (own cache line); unlock; %u pause(s)\n",
	       cfg->pin ? ", thread i pinned to CPU i mod ncpu" : "", cfg->delay);
	if (cfg->ops)
		printf("# ns/op: wall time / lock+unlock pairs of all threads; %llu pairs per run"
		       " (BENCH_OPS)", (unsigned long long)cfg->ops);
	else
		printf("# ns/op: wall time / lock+unlock pairs of all threads; pairs per run fixed"
		       " per row: what ours did in a %u ms run\n#   with min(threads, CPUs) threads"
		       " (so more threads than CPUs get the same work as one thread per CPU)",
		       cfg->round_ms);
	printf("\n# median of each side's rounds, run alternately ours, peer, ours, ...;"
	       " ratio: ours/peer of the medians (< 1: ours faster)\n");
	printf("# cap: each run is a forked child, killed after %.0f x ours' time (%.1f..%.1f s);"
	       " \"> N s\": did not finish in N s,\n#   that side's later rounds skipped, ratio"
	       " then a bound\n", cfg->cap_factor, cfg->cap_min_s, cfg->cap_max_s);
	printf("# fair: relative std. deviation of per-thread acquisitions (as ck's throughput"
	       " bench; 0%% = equal shares); p99.9: lock() latency,\n#   worst thread's 99.9th"
	       " percentile, every lock() timed; both medians of %d extra %u ms fixed-duration"
	       " runs per side (2, 8 threads)\n", cfg->fair_rounds, cfg->fair_ms);
	printf(ROW_FORMAT, "primitive", "peer", "thr", "ours ns/op", "peer ns/op", "ratio",
	       "target", "met?", "fair ours/peer", "p99.9 ours/peer");
	fflush(stdout);
}

/* ---- Verdict and the row itself --------------------------------------- */

/* -1: no target; 0: missed; 1: met. `why` says how it was missed. */
static int verdict(const struct bench_row *row, const struct bench_config *cfg,
		   const struct side *ours, enum bound b, double ratio,
		   char *why, size_t len)
{
	const struct bench_target *t = &row->target;
	if (t->kind == TARGET_NONE)
		return -1;
	if (t->kind == TARGET_FINISHES) {
		bool ok = !ours->capped && !ours->failed && ours->n == cfg->rounds;
		snprintf(why, len, ours->failed ? "failed" : "did not finish");
		return ok;
	}
	if ((b == EXACT || b == BELOW) && ratio <= t->max_ratio)
		return 1;
	if (b == EXACT)
		snprintf(why, len, "%.3f > %.2f (%+.0f%%)", ratio, t->max_ratio,
			 (ratio / t->max_ratio - 1) * 100);
	else if (b == BELOW)
		snprintf(why, len, "peer capped, ratio < %.2f not <= %.2f", ratio,
			 t->max_ratio);
	else
		snprintf(why, len, ours->capped ? "ours did not finish" : "no result");
	return 0;
}

static void tally_row(struct bench_tally *tally, const struct bench_row *row,
		      int met, const char *why)
{
	size_t used = strlen(tally->missed);
	if (met < 0)
		return;
	tally->targets++;
	tally->met += met;
	if (!met)
		snprintf(tally->missed + used, sizeof tally->missed - used, "\n#   %s vs %s @%d: %s",
			 row->primitive, row->peer->name, row->threads, why);
}

/* Remembers rows where one lock() waited LONG_WAIT_NS or more. */
static void note_long_wait(struct bench_tally *tally, const struct bench_row *row,
			   const struct fairness *fo, const struct fairness *fp)
{
	size_t used = strlen(tally->waits);
	char a[16], b[16];
	if (fo->max_ns < LONG_WAIT_NS && fp->max_ns < LONG_WAIT_NS)
		return;
	fmt_duration(a, sizeof a, fo->max_ns);
	fmt_duration(b, sizeof b, fp->max_ns);
	snprintf(tally->waits + used, sizeof tally->waits - used, "\n#   %s vs %s @%d: %s/%s",
		 row->primitive, row->peer->name, row->threads, a, b);
}

static void print_row(const struct bench_row *row, const struct bench_config *cfg,
		      const struct side *ours, const struct side *peer, uint64_t ops,
		      const struct fairness *fo, const struct fairness *fp,
		      struct bench_tally *tally)
{
	char thr[8], a[16], b[16], ratio_s[16], target[16], fair[32], lat[40], why[64];
	double ratio = 0;
	enum bound bound = compare(ours, peer, ops, &ratio);
	int met = verdict(row, cfg, ours, bound, ratio, why, sizeof why);

	snprintf(thr, sizeof thr, "%d", row->threads);
	fmt_side(a, sizeof a, ours);
	fmt_side(b, sizeof b, peer);
	fmt_ratio(ratio_s, sizeof ratio_s, bound, ratio);
	fmt_target(target, sizeof target, &row->target);
	fmt_pair(fair, sizeof fair, row->threads, fo, fp, fmt_percent);
	fmt_pair(lat, sizeof lat, row->threads, fo, fp, fmt_latency);
	printf(ROW_FORMAT, row->primitive, row->peer->name, thr, a, b, ratio_s, target,
	       met < 0 ? "" : met ? "yes" : "NO", fair, lat);
	fflush(stdout);
	tally_row(tally, row, met, why);
	note_long_wait(tally, row, fo, fp);
	tally->failures += ours->failed + peer->failed + (fo->status == RUN_FAILED) +
			   (fp->status == RUN_FAILED);
}

void bench_run_row(const struct bench_config *cfg, const struct bench_row *row,
		   struct bench_tally *tally)
{
	if ((cfg->only && !strstr(row->primitive, cfg->only)) ||
	    (cfg->only_threads && cfg->only_threads != row->threads))
		return;
	double est_s = 0;
	uint64_t ops = cfg->ops ? round_ops((double)cfg->ops, row->threads)
				: calibrate(cfg, row, &est_s);
	struct run_spec ours_spec = { row->ours, row->threads, ops, 0, false, cfg->delay,
				      cfg->pin };
	struct run_spec peer_spec = ours_spec;
	struct side ours = { .n = 0 }, peer = { .n = 0 };
	struct fairness fo = { .status = RUN_OK }, fp = { .status = RUN_OK };

	peer_spec.impl = row->peer;
	for (int i = 0; i < cfg->rounds; i++) {
		measure_round(cfg, &ours_spec, cap_for(cfg, &ours, ops, est_s), &ours);
		measure_round(cfg, &peer_spec, cap_for(cfg, &ours, ops, est_s), &peer);
	}
	for (int i = 0; row->threads >= 2 && i < cfg->fair_rounds; i++) {
		measure_fairness(cfg, row->ours, row->threads, &fo);
		measure_fairness(cfg, row->peer, row->threads, &fp);
	}
	print_row(row, cfg, &ours, &peer, ops, &fo, &fp, tally);
}

void bench_print_summary(const struct bench_tally *tally)
{
	printf("# targets met: %d of %d", tally->met, tally->targets);
	if (tally->failures)
		printf("; %d run(s) FAILED (see stderr)", tally->failures);
	if (tally->met < tally->targets)
		printf("; missed:%s", tally->missed);
	printf("\n");

	if (tally->waits[0])
		printf("# longest single lock() in the fairness runs, where >= %.0f ms (ours/peer):%s\n",
		       LONG_WAIT_NS / 1e6, tally->waits);

	struct cpu_times now;
	if (read_cpu_times(&now) && now.total > times_at_start.total)
		printf("# steal time while this ran: %.1f%% of all CPU time (the hypervisor ran"
		       " other guests)\n", 100.0 * (double)(now.steal - times_at_start.steal) /
		       (double)(now.total - times_at_start.total));
}
