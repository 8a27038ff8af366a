/* The table: its header, each row's line and verdict, and the summary under it. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sync/common.h>

#include "internal.h"

/* A single lock() at least this long is listed under the table. */
#define LONG_WAIT_NS 50e6

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
	else if (t->kind == TARGET_FINISHES_RATIO)
		snprintf(buf, len, "fin,<=%.2f", t->max_ratio);
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
	if (fmt_incomplete(buf, len, f))
		return;
	if (f->timed)
		fmt_duration(buf, len, median(f->p999_ns, f->n));
	else
		snprintf(buf, len, "-"); /* a workload's loop times nothing */
}

/* "a/b" of both sides' fairness or latency; empty without fairness runs. */
static void fmt_pair(char *buf, size_t len, const struct bench_row *row,
		     const struct fairness *a, const struct fairness *b,
		     void (*fmt)(char *, size_t, const struct fairness *))
{
	char x[16], y[16];
	if (!has_fairness_runs(row)) {
		buf[0] = '\0';
		return;
	}
	fmt(x, sizeof x, a);
	fmt(y, sizeof y, b);
	snprintf(buf, len, "%s/%s", x, y);
}

#define ROW_FORMAT "%-15s %-11s %-18s %3s %10s %10s %8s %-10s %-4s %14s %16s\n"

/* The workload column of the lock rows. */
#define LOCK_WORKLOAD "lock+unlock"

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
	printf("# other workloads than " LOCK_WORKLOAD ": see under the table; fin,<=R: every"
	       " run of ours finishes, and ratio <= R\n");
	printf(ROW_FORMAT, "primitive", "workload", "peer", "thr", "ours ns/op", "peer ns/op",
	       "ratio", "target", "met?", "fair ours/peer", "p99.9 ours/peer");
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
	bool finished = !ours->capped && !ours->failed && ours->n == cfg->rounds;
	if (t->kind == TARGET_FINISHES || (t->kind == TARGET_FINISHES_RATIO && !finished)) {
		snprintf(why, len, ours->failed ? "failed" : "did not finish");
		return finished;
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
		snprintf(tally->missed + used, sizeof tally->missed - used,
			 "\n#   %s%s%s vs %s @%d: %s", row->primitive, row->workload ? " " : "",
			 row->workload ? row->workload->name : "", row->peer->name, row->threads,
			 why);
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

/* Remembers a row's workload for the legend under the table. */
static void note_workload(struct bench_tally *tally, const struct bench_workload *wl)
{
	int n = tally->nseen, max = (int)(sizeof tally->seen / sizeof tally->seen[0]);
	for (int i = 0; i < n; i++)
		if (tally->seen[i] == wl)
			return;
	if (wl && n < max)
		tally->seen[tally->nseen++] = wl;
}

void print_row(const struct bench_row *row, const struct bench_config *cfg,
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
	fmt_pair(fair, sizeof fair, row, fo, fp, fmt_percent);
	fmt_pair(lat, sizeof lat, row, fo, fp, fmt_latency);
	printf(ROW_FORMAT, row->primitive, row->workload ? row->workload->name : LOCK_WORKLOAD,
	       row->peer->name, thr, a, b, ratio_s, target, met < 0 ? "" : met ? "yes" : "NO",
	       fair, lat);
	fflush(stdout);
	plot_note_row(row, ours->capped || ours->failed || !ours->n ? 0 : median(ours->ns, ours->n),
		      peer->capped || peer->failed || !peer->n ? 0 : median(peer->ns, peer->n),
		      ratio, bound == EXACT);
	tally_row(tally, row, met, why);
	note_workload(tally, row->workload);
	note_long_wait(tally, row, fo, fp);
	tally->failures += ours->failed + peer->failed + (fo->status == RUN_FAILED) +
			   (fp->status == RUN_FAILED);
}

/* ---- Summary ---------------------------------------------------------- */

/* /proc/stat totals at bench_init: steal time shows a busy hypervisor. */
struct cpu_times {
	unsigned long long total;
	unsigned long long steal;
};
static struct cpu_times times_at_start;

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

void note_start_cpu_times(void)
{
	read_cpu_times(&times_at_start);
}

void bench_print_summary(const struct bench_tally *tally)
{
	printf("# targets met: %d of %d", tally->met, tally->targets);
	if (tally->failures)
		printf("; %d run(s) FAILED (see stderr)", tally->failures);
	if (tally->met < tally->targets)
		printf("; missed:%s", tally->missed);
	printf("\n");

	if (tally->nseen)
		printf("# workloads other than " LOCK_WORKLOAD ", as thread i of T runs them:\n");
	for (int i = 0; i < tally->nseen; i++)
		printf("#   %-11s %s\n", tally->seen[i]->name, tally->seen[i]->legend);

	if (tally->waits[0])
		printf("# longest single lock() in the fairness runs, where >= %.0f ms (ours/peer):%s\n",
		       LONG_WAIT_NS / 1e6, tally->waits);

	struct cpu_times now;
	if (read_cpu_times(&now) && now.total > times_at_start.total)
		printf("# steal time while this ran: %.1f%% of all CPU time (the hypervisor ran"
		       " other guests)\n", 100.0 * (double)(now.steal - times_at_start.steal) /
		       (double)(now.total - times_at_start.total));
}
