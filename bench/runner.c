/* The parent: forked, time-capped runs; a row's calibration, rounds and fairness runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Pairs per timed run, whatever the calibration says. */
#define MIN_OPS (1u << 12)
#define MAX_OPS (1ull << 32)

static struct run_result *shared_result;
static sigset_t sigchld_set;

/* ---- The parent: fork and cap ----------------------------------------- */

/* Every measurement runs in a forked child (the parent never has threads),
 * whose T workers come from pthread_create while the child's main thread
 * only waits, so glibc never sees a single-threaded process. The parent
 * kills a child that outlives its cap. */

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

int bench_init(void)
{
	calibrate_ticks();
	note_start_cpu_times();
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

/* ---- Progress on stderr ----------------------------------------------- */

static struct {
	int total;     /* rows the dry pass counted */
	int done;      /* rows started */
	uint64_t start_ns;
	bool tty;      /* stderr is a terminal: one line, rewritten */
	bool open;     /* a tty line is showing */
} progress;

void bench_progress_start(void)
{
	progress.done = 0;
	progress.start_ns = now_ns();
	progress.tty = isatty(STDERR_FILENO);
}

/* "[ 12/214  1:05] " */
static void progress_prefix(void)
{
	unsigned s = (unsigned)((now_ns() - progress.start_ns) / 1000000000u);
	fprintf(stderr, "%sbench: [%3d/%d %3u:%02u] ", progress.tty ? "\r\033[K" : "",
		progress.done, progress.total, s / 60, s % 60);
}

static void progress_row(const struct bench_row *row, const char *phase, int i, int n)
{
	if (!progress.tty && phase)
		return; /* logs get one line per row */
	progress_prefix();
	fprintf(stderr, "%s %s vs %s, %d thread%s", row->primitive,
		row->workload ? row->workload->name : "lock+unlock", row->peer->name, row->threads,
		row->threads == 1 ? "" : "s");
	if (phase)
		fprintf(stderr, ": %s %d/%d", phase, i, n);
	if (!progress.tty)
		fputc('\n', stderr);
	progress.open = progress.tty;
}

/* Clears a tty progress line before stdout writes on the same terminal. */
static void progress_clear(void)
{
	if (progress.open)
		fputs("\r\033[K", stderr);
	progress.open = false;
}

void bench_progress_note(const char *what)
{
	progress_prefix();
	fprintf(stderr, "%s%s", what, progress.tty ? "" : "\n");
	progress.open = progress.tty;
}

void bench_progress_done(void)
{
	progress_clear();
	unsigned s = (unsigned)((now_ns() - progress.start_ns) / 1000000000u);
	fprintf(stderr, "bench: %d rows in %u:%02u\n", progress.done, s / 60, s % 60);
}

/* ---- One row ---------------------------------------------------------- */

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
 * run with min(threads, CPUs) threads (all the row's threads where the
 * workload needs them, as a ping-pong does). Oversubscribed rows thus get
 * the work that fills round_ms when every thread has a CPU: a lock that
 * copes with preempted holders and waiters takes about as long with more
 * threads, one that collapses runs into the cap. (A fixed-duration run also
 * keeps every thread busy throughout, where a short fixed-count run could
 * finish each thread's share before the next one even starts.) */
static uint64_t calibrate(const struct bench_config *cfg, const struct bench_row *row,
			  double *est_s)
{
	int cpus = allowed_cpus();
	bool all = row->workload && row->workload->fixed_threads;
	struct run_spec spec = { row->ours, all || row->threads < cpus ? row->threads : cpus,
				 0, cfg->round_ms, false, cfg->delay, cfg->pin, row->workload };
	struct run_result r;

	*est_s = 0;
	if (run_capped(&spec, cfg->round_ms / 1e3 + cfg->cap_min_s, &r) != RUN_OK ||
	    !r.pairs)
		return round_ops(MIN_OPS, row->threads); /* the rounds will show it */
	double want = (double)r.pairs * cfg->round_ms * 1e6 / r.wall_ns;
	uint64_t ops = round_ops(want, row->threads);
	/* more than round_ms where MIN_OPS rounded up a slow workload's share */
	*est_s = cfg->round_ms / 1e3 * (double)ops / want;
	return ops;
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
	progress_clear();
	fprintf(stderr, "  %-18s %d thr %llu pairs: ", spec->impl->name, spec->threads,
		(unsigned long long)spec->ops);
	if (s->capped)
		fprintf(stderr, "capped at %.1f s\n", cap_s);
	else if (s->failed)
		fprintf(stderr, "FAILED\n");
	else
		fprintf(stderr, "%.2f ns/op\n", s->ns[s->n - 1]);
}

static void measure_fairness(const struct bench_config *cfg, const struct bench_row *row,
			     const struct bench_lock *impl, struct fairness *f)
{
	struct run_spec spec = { impl, row->threads, 0, cfg->fair_ms, true, cfg->delay,
				 cfg->pin, row->workload };
	struct run_result r;
	int threads = row->threads;

	if (f->status != RUN_OK)
		return; /* a later run would hit the same wall */
	f->timed = !row->workload; /* a workload's loop times nothing */
	f->status = run_capped(&spec, cfg->fair_ms / 1e3 + cfg->cap_min_s, &r);
	if (f->status == RUN_OK) {
		f->rsd[f->n] = r.rsd;
		f->p999_ns[f->n++] = r.p999_ns;
		f->max_ns = r.max_ns > f->max_ns ? r.max_ns : f->max_ns;
	}
	if (cfg->verbose)
		progress_clear();
	if (cfg->verbose && f->status == RUN_OK && !f->timed)
		fprintf(stderr, "  %-18s %d thr fairness: %llu ops, rsd %.3f\n", impl->name,
			threads, (unsigned long long)r.pairs, r.rsd);
	else if (cfg->verbose && f->status == RUN_OK)
		fprintf(stderr, "  %-18s %d thr fairness: %llu pairs, rsd %.3f, p99.9 worst"
			" thread %.0f ns, all %.0f ns, max %.0f ns\n",
			impl->name, threads, (unsigned long long)r.pairs, r.rsd, r.p999_ns,
			r.all_p999_ns, r.max_ns);
}

bool has_fairness_runs(const struct bench_row *row)
{
	return row->threads >= 2 && (!row->workload || row->workload->fairness);
}

static double side_median(const struct side *s)
{
	return s->capped || s->failed || !s->n ? 0 : median(s->ns, s->n);
}

bool bench_run_row_medians(const struct bench_config *cfg, const struct bench_row *row,
			   struct bench_tally *tally, double *ours_ns, double *peer_ns)
{
	*ours_ns = *peer_ns = 0;
	if ((cfg->only && !strstr(row->primitive, cfg->only)) ||
	    (cfg->only_threads && cfg->only_threads != row->threads))
		return false;
	if (cfg->count_only) {
		progress.total++;
		return false;
	}
	progress.done++;
	progress_row(row, NULL, 0, 0);
	double est_s = 0;
	uint64_t ops = cfg->ops ? round_ops((double)cfg->ops, row->threads)
				: calibrate(cfg, row, &est_s);
	struct run_spec ours_spec = { row->ours, row->threads, ops, 0, false, cfg->delay,
				      cfg->pin, row->workload };
	struct run_spec peer_spec = ours_spec;
	struct side ours = { .n = 0 }, peer = { .n = 0 };
	struct fairness fo = { .status = RUN_OK }, fp = { .status = RUN_OK };

	peer_spec.impl = row->peer;
	for (int i = 0; i < cfg->rounds; i++) {
		measure_round(cfg, &ours_spec, cap_for(cfg, &ours, ops, est_s), &ours);
		measure_round(cfg, &peer_spec, cap_for(cfg, &ours, ops, est_s), &peer);
		progress_row(row, "round", i + 1, cfg->rounds);
	}
	for (int i = 0; has_fairness_runs(row) && i < cfg->fair_rounds; i++) {
		measure_fairness(cfg, row, row->ours, &fo);
		measure_fairness(cfg, row, row->peer, &fp);
		progress_row(row, "fairness run", i + 1, cfg->fair_rounds);
	}
	progress_clear();
	print_row(row, cfg, &ours, &peer, ops, &fo, &fp, tally);
	*ours_ns = side_median(&ours);
	*peer_ns = side_median(&peer);
	return true;
}

void bench_run_row(const struct bench_config *cfg, const struct bench_row *row,
		   struct bench_tally *tally)
{
	double ours_ns, peer_ns;
	bench_run_row_medians(cfg, row, tally, &ours_ns, &peer_ns);
}
