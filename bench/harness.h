/* Benchmark harness: forked, time-capped runs of T locking threads, medians
 * of alternating rounds, fairness and acquire-latency percentiles, and the
 * one comparison table the benchmark prints. */
#ifndef SYNC_BENCH_HARNESS_H
#define SYNC_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of per-thread scratch passed to lock/unlock (an MCS queue node). */
#define BENCH_NODE_SIZE 64

/* Most rounds per side that a row keeps. */
#define BENCH_MAX_ROUNDS 64

/* One lock implementation behind function pointers. Ours and the peers are
 * all called through these same pointer types from the same loop, so the
 * indirection costs both sides the same: a libsync function is one more
 * (PLT) call behind its wrapper, as it is for any user of the library, and
 * a ck inline function is inlined into its wrapper. */
struct bench_lock {
	const char *name;
	size_t size; /* bytes of the lock object */
	void (*init)(void *lock);
	void (*lock)(void *lock, void *node);
	void (*unlock)(void *lock, void *node);
};

enum bench_target_kind {
	TARGET_NONE,
	TARGET_RATIO,    /* ours/peer ns per pair at most `max_ratio` */
	TARGET_FINISHES, /* every one of our runs completes within the cap */
};

struct bench_target {
	enum bench_target_kind kind;
	double max_ratio;
};

/* One line of the table: ours against one peer at one thread count. */
struct bench_row {
	const char *primitive;
	const struct bench_lock *ours;
	const struct bench_lock *peer;
	int threads;
	struct bench_target target;
};

struct bench_config {
	int rounds;           /* timed rounds per side, alternating ours/peer */
	uint64_t ops;         /* lock+unlock pairs per run, all threads; 0: calibrate */
	unsigned round_ms;    /* calibration aims one run of ours at this long */
	unsigned fair_ms;     /* length of the fixed-duration fairness/latency run */
	int fair_rounds;      /* such runs per side (2+ threads), medians reported */
	unsigned delay;       /* pause instructions after each unlock (outside) */
	double cap_factor;    /* cap = factor x ours, clamped to [cap_min, cap_max] */
	double cap_min_s;
	double cap_max_s;
	bool pin;             /* worker i on allowed CPU i mod n */
	const char *only;     /* rows whose primitive contains this; NULL: all */
	int only_threads;     /* rows with this many threads; 0: all */
	bool verbose;         /* every round's ns/op on stderr */
};

/* What the summary line counts. */
struct bench_tally {
	int targets;
	int met;
	int failures; /* runs that crashed or broke mutual exclusion */
	char missed[1024];
	char waits[1024]; /* rows with a very long single lock() */
};

/* Blocks SIGCHLD (the cap waits for it) and maps the result page that the
 * forked runs write into. Call once, before any other bench_* function and
 * before any thread exists. Returns 0 or an errno value. */
int bench_init(void);

/* Header (machine, date, method) and the table's column titles. */
void bench_print_header(const struct bench_config *cfg);

/* Measures one row and prints it; tallies its target. */
void bench_run_row(const struct bench_config *cfg, const struct bench_row *row,
		   struct bench_tally *tally);

/* The final line: how many targets were met, and which were missed. */
void bench_print_summary(const struct bench_tally *tally);

/* Rows of each primitive (bench/mutex.c, bench/spinlock.c). */
void bench_mutex(const struct bench_config *cfg, struct bench_tally *tally);
void bench_spinlocks(const struct bench_config *cfg, struct bench_tally *tally);

/* ck_spinlock_fas, the peer of both the mutex and the TTAS spinlock. */
extern const struct bench_lock bench_ck_fas;

#endif /* SYNC_BENCH_HARNESS_H */
