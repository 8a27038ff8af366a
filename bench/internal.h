/* Internals shared by the harness's files; bench/harness.h is the public header. */
#ifndef SYNC_BENCH_INTERNAL_H
#define SYNC_BENCH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"

/* ---- Clock (workers.c and runner.c) ----------------------------------- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline struct timespec ns_to_timespec(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	return ts;
}

/* ---- Statistics (stats.c) --------------------------------------------- */

/* Fairness/latency run: every lock() is timed in cycles (ticks()) into a
 * per-thread log-linear histogram: HIST_SUB buckets per power of two, so a
 * percentile is off by at most 1/HIST_SUB. */
#define HIST_SUB 8u
#define HIST_BUCKETS (64u * HIST_SUB)

/* The bucket of v; hist_upper() in stats.c is its inverse. Inline: the
 * sampled loop calls it after every unlock. */
static inline unsigned hist_bucket(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 2^e <= v, e >= 3 */
	unsigned sub = (unsigned)(v >> (e - 3)) & (HIST_SUB - 1);
	return (e - 2) * HIST_SUB + sub;
}

/* Nearest-rank quantile q of a histogram, in ticks. */
uint64_t hist_quantile(const uint64_t *hist, double q);

/* Median of n <= BENCH_MAX_ROUNDS values. */
double median(const double *v, int n);

/* ---- One run in the forked child (workers.c) -------------------------- */

enum run_status { RUN_OK, RUN_CAPPED, RUN_FAILED };

/* One forked run. duration_ms == 0: every thread does ops / threads pairs;
 * otherwise the threads lock until duration_ms has passed, and time every
 * lock() if `sample`. A workload's run (workload != NULL) is the same with
 * its operations for pairs; it times nothing. */
struct run_spec {
	const struct bench_lock *impl;
	int threads;
	uint64_t ops;
	unsigned duration_ms;
	bool sample;
	unsigned delay;
	bool pin;
	const struct bench_workload *workload; /* NULL: lock; ++counter; unlock */
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

/* Ticks per ns, measured once against the monotonic clock over 20 ms. */
void calibrate_ticks(void);

/* Runs spec's workers in this (forked) process and fills `out`; sets
 * out->status to RUN_FAILED if mutual exclusion broke (or the workload's
 * check failed). Returns 0 or an errno value. */
int child_measure(const struct run_spec *spec, struct run_result *out);

/* ---- One row: runner.c measures it, report.c prints it ---------------- */

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
	bool timed;             /* every lock() was timed: p99.9 and max are known */
	int n;
	double rsd[BENCH_MAX_ROUNDS];
	double p999_ns[BENCH_MAX_ROUNDS];
	double max_ns; /* longest single lock() of all runs */
};

/* Whether the row gets fixed-duration fairness runs (2+ threads, and a
 * workload where per-thread shares mean something). */
bool has_fairness_runs(const struct bench_row *row);

/* Prints the row's line of the table; tallies its target, failures and
 * long waits. */
void print_row(const struct bench_row *row, const struct bench_config *cfg,
	       const struct side *ours, const struct side *peer, uint64_t ops,
	       const struct fairness *fo, const struct fairness *fp,
	       struct bench_tally *tally);

/* ---- Results files and plots (plot.c) ---------------------------------- */

/* Keeps a printed row's medians (0: that side has none) and its ratio,
 * `exact` unless a side was capped, for bench_write_results. */
void plot_note_row(const struct bench_row *row, double ours_ns, double peer_ns,
		   double ratio, bool exact);

/* Remembers the /proc/stat totals for the summary's steal time. */
void note_start_cpu_times(void);

#endif /* SYNC_BENCH_INTERNAL_H */
