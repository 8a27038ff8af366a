/* Benchmark harness: forked, time-capped runs of T locking threads (or of a
 * workload's loop), medians of alternating rounds, fairness and
 * acquire-latency percentiles, and the one comparison table the benchmark
 * prints. */
#ifndef SYNC_BENCH_HARNESS_H
#define SYNC_BENCH_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of per-thread scratch passed to lock/unlock (an MCS queue node). */
#define BENCH_NODE_SIZE 64

/* Most rounds per side that a row keeps. */
#define BENCH_MAX_ROUNDS 64

/* One lock (or semaphore, rwlock, condition variable) implementation behind
 * function pointers. Ours and the peers are all called through these same
 * pointer types from the same loop, so the indirection costs both sides the
 * same: a libsync function is one more (PLT) call behind its wrapper, as it
 * is for any user of the library, and a ck inline function is inlined into
 * its wrapper. */
struct bench_lock {
	const char *name;
	size_t size; /* bytes of the lock object */
	void (*init)(void *lock);
	void (*lock)(void *lock, void *node);   /* semaphores: wait; rwlocks: write */
	void (*unlock)(void *lock, void *node); /* semaphores: post */
	/* Only where a workload (below) needs them; NULL elsewhere. */
	void (*init_value)(void *sem, unsigned value); /* semaphores: sem(value) */
	void (*lock_shared)(void *lock, void *node);   /* rwlocks: read lock */
	void (*unlock_shared)(void *lock, void *node);
	void (*wait)(void *cond, void *mutex);         /* condition variables */
	void (*signal)(void *cond);
	const struct bench_lock *mutex;                /* the cond's mutex */
};

/* Most objects of one implementation that a workload uses at once. */
#define BENCH_MAX_OBJECTS 4

/* One forked run of a workload: what the harness allocated for it, each
 * object on its own cache lines. */
struct bench_objects {
	const struct bench_lock *impl;
	void *obj[BENCH_MAX_OBJECTS]; /* workload->objects objects of impl->size */
	void *mutex;                  /* impl->mutex's object, else NULL */
	void *shared;                 /* workload->shared_size bytes, zeroed */
	int threads;
	unsigned delay;               /* pause instructions after each operation */
	const atomic_int *stop;       /* fixed-duration runs: time is up */
};

/* One worker thread of a run, as a workload's loop sees it. */
struct bench_thread {
	const struct bench_objects *run;
	void *node;         /* BENCH_NODE_SIZE bytes of this thread's own */
	int index;          /* 0 .. threads - 1 */
	uint64_t counts[2]; /* the loop's own tallies (errors, writes, ...) */
};

/* A workload other than lock; ++counter; unlock. Its loop is the same code
 * for ours and the peer and calls either only through impl's pointers. */
struct bench_workload {
	const char *name;    /* the table's workload column */
	const char *legend;  /* what one operation is, printed under the table */
	int objects;         /* at most BENCH_MAX_OBJECTS */
	size_t shared_size;  /* bytes of shared data the loop keeps */
	bool fixed_threads;  /* needs all the row's threads, also to calibrate */
	bool fairness;       /* the fixed-duration fairness runs mean something */
	/* Initializes the objects and shared data before the threads start. */
	void (*setup)(const struct bench_objects *run);
	/* n operations of thread t (n == 0: until *run->stop); returns how many
	 * it did. Every thread of a run gets the same n. */
	uint64_t (*loop)(struct bench_thread *t, uint64_t n);
	/* After the join: whether the workload worked, given the operations and
	 * counts[] summed over the threads; prints why not to stderr. */
	bool (*check)(const struct bench_objects *run, uint64_t ops,
		      const uint64_t counts[2]);
};

/* n pause instructions: the optional delay outside the critical section. */
static inline void bench_pause(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#else
		__asm__ __volatile__("" ::: "memory");
#endif
	}
}

/* Whether a fixed-duration run is over; relaxed: only a signal to stop
 * (the join orders the results). */
static inline bool bench_stopped(const struct bench_thread *t)
{
	return atomic_load_explicit(t->run->stop, memory_order_relaxed);
}

enum bench_target_kind {
	TARGET_NONE,
	TARGET_RATIO,    /* ours/peer ns per pair at most `max_ratio` */
	TARGET_FINISHES, /* every one of our runs completes within the cap */
	TARGET_FINISHES_RATIO, /* both of the above */
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
	const struct bench_workload *workload; /* NULL: lock; ++counter; unlock */
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
	int map_rounds;       /* the map rows' rounds per side (at most `rounds`) */
	const char *results;  /* folder for the data files and plots; NULL: none */
	bool count_only;      /* the dry pass that counts the rows for the progress
			       * lines: rows run nothing, workloads skip their setup */
};

/* What the summary line counts. */
struct bench_tally {
	int targets;
	int met;
	int failures; /* runs that crashed, broke mutual exclusion or failed a check */
	char missed[1024];
	char waits[1024]; /* rows with a very long single lock() */
	const struct bench_workload *seen[16]; /* workloads of the rows, for the legend */
	int nseen;
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

/* As bench_run_row, and stores each side's median ns per operation (0 for
 * a side without one: capped or failed). Returns false, storing 0s, for a
 * row that --only or --threads leaves out. */
bool bench_run_row_medians(const struct bench_config *cfg, const struct bench_row *row,
			   struct bench_tally *tally, double *ours_ns, double *peer_ns);

/* The final line: how many targets were met, and which were missed. */
void bench_print_summary(const struct bench_tally *tally);

/* Progress on stderr: a line per row (which row of how many, time taken so
 * far; on a terminal, one line updated round by round). A dry pass with
 * cfg->count_only counts the rows first; then bench_progress_start. */
void bench_progress_start(void);

/* Progress on stderr of work outside the rows (the map's memory children). */
void bench_progress_note(const char *what);

/* The last progress line: rows and time taken. */
void bench_progress_done(void);

/* Under cfg->results: every row's medians and ratio (rows.tsv), per
 * primitive ns/op against threads of ours and each peer, and the overview
 * of all ratios, as data files and gnuplot scripts; then runs gnuplot for
 * the SVGs and PNGs (said on stderr, also when gnuplot is missing). */
void bench_write_results(const struct bench_config *cfg);

/* Rows of each primitive (bench/mutex.c, spinlock.c, sem.c, rwlock.c, cond.c,
 * queue.c, epoch.c, map.c). */
void bench_mutex(const struct bench_config *cfg, struct bench_tally *tally);
void bench_spinlocks(const struct bench_config *cfg, struct bench_tally *tally);
void bench_sem(const struct bench_config *cfg, struct bench_tally *tally);
void bench_rwlock(const struct bench_config *cfg, struct bench_tally *tally);
void bench_cond(const struct bench_config *cfg, struct bench_tally *tally);
void bench_queue(const struct bench_config *cfg, struct bench_tally *tally);
void bench_epoch(const struct bench_config *cfg, struct bench_tally *tally);
void bench_map(const struct bench_config *cfg, struct bench_tally *tally);

/* The queue rows against the fetch-and-add ceiling as fractions of it, a
 * small table of its own (nothing if none of those rows ran). */
void bench_queue_print_ceiling(void);

/* The map's memory, hash-flooding and growth results, small tables of
 * their own (nothing for what did not run). */
void bench_map_print_tables(void);

/* ck_spinlock_fas, the peer of both the mutex and the TTAS spinlock. */
extern const struct bench_lock bench_ck_fas;

/* sync_mutex and pthread_mutex: also the mutexes of the condition variables. */
extern const struct bench_lock bench_sync_mutex;
extern const struct bench_lock bench_pthread_mutex;

#endif /* SYNC_BENCH_HARNESS_H */
