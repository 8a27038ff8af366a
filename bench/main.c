/* libsync comparison benchmark: every lock, semaphore, rwlock, condition
 * variable, the queue, the epoch domain and the map against their glibc,
 * Concurrency Kit, liburcu, oneTBB, moodycamel or Abseil peers, one table,
 * and plots of it (bench/plot.c). Options in usage() below. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench [--quick] [--rounds N] [--ops N] [--round-ms N] [--fair-ms N]\n"
		"             [--fair-rounds N] [--delay N] [--only NAME] [--threads N]\n"
		"             [--map-rounds N] [--results DIR] [--no-results] [--no-pin] [-v]\n"
		"  --quick        smoke run of a few seconds (3 rounds, short runs, short caps)\n"
		"  --rounds N     timed rounds per side, ours and peer alternating (default 15;\n"
		"                 env BENCH_ROUNDS)\n"
		"  --ops N        lock+unlock pairs (or a workload's operations) per run, all\n"
		"                 threads together (default: calibrated per row; env BENCH_OPS)\n"
		"  --round-ms N   calibration target for one run of ours (default 60)\n"
		"  --fair-ms N    length of a fairness/latency run (default 200)\n"
		"  --fair-rounds N  fairness/latency runs per side (default 3; 0: none)\n"
		"  --delay N      pause instructions after each unlock or operation (default 0)\n"
		"  --only NAME    only rows whose primitive contains NAME (mutex, spinlock,\n"
		"                 ticket, mcs, sem, rwlock, cond, queue, epoch, map)\n"
		"  --threads N    only rows with N threads\n"
		"  --map-rounds N rounds per side of the map rows, at most --rounds (default 5:\n"
		"                 each map run prefills 5 x 10^5 entries)\n"
		"  --results DIR  write every row's medians (rows.tsv), gnuplot scripts and the\n"
		"                 plots (SVG, PNG; needs gnuplot) into DIR (default bench/results)\n"
		"  --no-results   write none of them\n"
		"  --no-pin       let the scheduler place the threads (default: thread i\n"
		"                 on allowed CPU i mod ncpu)\n"
		"  -v             every round's result on stderr\n"
		"--quick sets defaults; BENCH_* and the other options override them.\n");
}

static int parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return EINVAL;
	*out = v;
	return 0;
}

static void set_quick(struct bench_config *cfg)
{
	cfg->rounds = 3;
	cfg->round_ms = 5;
	cfg->fair_ms = 20;
	cfg->fair_rounds = 1;
	cfg->cap_min_s = 0.2;
	cfg->cap_max_s = 1.0;
}

static int apply_env(struct bench_config *cfg)
{
	const char *rounds = getenv("BENCH_ROUNDS"), *ops = getenv("BENCH_OPS");
	unsigned long long v;

	if (rounds && *rounds) {
		if (parse_number(rounds, BENCH_MAX_ROUNDS, &v) || !v)
			return EINVAL;
		cfg->rounds = (int)v;
	}
	if (ops && *ops) {
		if (parse_number(ops, 1ull << 40, &v))
			return EINVAL;
		cfg->ops = v;
	}
	return 0;
}

/* Options that take a value; returns EINVAL for an unknown or bad one. */
static int apply_option(struct bench_config *cfg, const char *opt, const char *arg)
{
	unsigned long long v;

	if (!strcmp(opt, "--only")) {
		cfg->only = arg;
		return 0;
	}
	if (!strcmp(opt, "--results") && arg[0]) {
		cfg->results = arg;
		return 0;
	}
	if (parse_number(arg, 1ull << 40, &v))
		return EINVAL;
	if (!strcmp(opt, "--rounds") && v >= 1 && v <= BENCH_MAX_ROUNDS)
		cfg->rounds = (int)v;
	else if (!strcmp(opt, "--ops"))
		cfg->ops = v;
	else if (!strcmp(opt, "--round-ms") && v >= 1 && v <= 60000)
		cfg->round_ms = (unsigned)v;
	else if (!strcmp(opt, "--fair-ms") && v >= 1 && v <= 60000)
		cfg->fair_ms = (unsigned)v;
	else if (!strcmp(opt, "--fair-rounds") && v <= BENCH_MAX_ROUNDS)
		cfg->fair_rounds = (int)v;
	else if (!strcmp(opt, "--delay") && v <= 1000000)
		cfg->delay = (unsigned)v;
	else if (!strcmp(opt, "--threads") && v >= 1 && v <= 1024)
		cfg->only_threads = (int)v;
	else if (!strcmp(opt, "--map-rounds") && v >= 1 && v <= BENCH_MAX_ROUNDS)
		cfg->map_rounds = (int)v;
	else
		return EINVAL;
	return 0;
}

static int parse_args(int argc, char **argv, struct bench_config *cfg)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--quick"))
			set_quick(cfg);
	if (apply_env(cfg)) {
		fprintf(stderr, "bench: bad BENCH_ROUNDS or BENCH_OPS\n");
		return EINVAL;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			continue;
		if (!strcmp(argv[i], "-v")) {
			cfg->verbose = true;
			continue;
		}
		if (!strcmp(argv[i], "--no-results")) {
			cfg->results = NULL;
			continue;
		}
		if (!strcmp(argv[i], "--no-pin")) {
			cfg->pin = false;
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			exit(0);
		}
		if (i + 1 >= argc || apply_option(cfg, argv[i], argv[i + 1])) {
			fprintf(stderr, "bench: bad option %s\n", argv[i]);
			usage(stderr);
			return EINVAL;
		}
		i++;
	}
	return 0;
}

/* Every primitive's rows, in the table's order. */
static void run_all(const struct bench_config *cfg, struct bench_tally *tally)
{
	bench_mutex(cfg, tally);
	bench_spinlocks(cfg, tally);
	bench_sem(cfg, tally);
	bench_rwlock(cfg, tally);
	bench_cond(cfg, tally);
	bench_queue(cfg, tally);
	bench_epoch(cfg, tally);
	bench_map(cfg, tally);
}

int main(int argc, char **argv)
{
	struct bench_config cfg = {
		.rounds = 15, .ops = 0, .round_ms = 60, .fair_ms = 200, .fair_rounds = 3,
		.delay = 0,
		.cap_factor = 10, .cap_min_s = 2, .cap_max_s = 10, .pin = true,
		.verbose = false, .map_rounds = 5, .results = "bench/results",
	};
	struct bench_tally tally = { .targets = 0 };
	if (parse_args(argc, argv, &cfg))
		return 2;
	int err = bench_init();
	if (err) {
		fprintf(stderr, "bench: %s\n", strerror(err));
		return 1;
	}
	bench_print_header(&cfg);
	struct bench_config dry = cfg;
	struct bench_tally none = { .targets = 0 };
	dry.count_only = true;
	run_all(&dry, &none);
	bench_progress_start();
	run_all(&cfg, &tally);
	bench_progress_done();
	bench_print_summary(&tally);
	bench_queue_print_ceiling();
	bench_map_print_tables();
	if (cfg.results)
		bench_write_results(&cfg);
	return tally.failures ? 1 : 0;
}
