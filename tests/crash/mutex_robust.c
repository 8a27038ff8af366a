/* Crash-recovery stress of a SYNC_PSHARED | SYNC_MUTEX_ROBUST mutex (issue
 * 12): worker processes apply transactions to shared counters under the
 * mutex with an intent (undo/redo) log, a supervisor SIGKILLs random
 * workers at random moments and restarts them, and whoever locks with
 * EOWNERDEAD repairs from the log (rolls back, or forward once the data is
 * written), calls sync_mutex_consistent, and checks the invariant
 *     a == b == sum(done[])
 * At the end the totals must match the completed transactions exactly:
 * done[w] counts the commits of worker slot w, acked[w] those its worker saw
 * return (a kill between commit and ack loses at most one ack), so
 *     acked[w] <= done[w] <= acked[w] + kills of w.
 * Plain build (no TSan: the processes are killed mid-update on purpose).
 * TAP. CRASH_MS=n runs n ms (default 2500), CRASH_SEED=n replays a seed. */
#define _GNU_SOURCE /* kill, prctl */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sync.h>

#define WORKERS 4
#define DEFAULT_MS 2500
#define MAX_KILL_GAP_US 3000
#define WATCHDOG_S 60

/* The intent log: written before the data, cleared at commit. */
struct intent {
	int pending;       /* 1 from the intent to the commit */
	int stage;         /* 1: a and b may be half written; 2: both written */
	int worker;
	uint64_t old_a, old_b, old_done;
};

struct shared {
	sync_mutex_t m;
	/* protected by m */
	struct intent log;
	uint64_t a, b;
	uint64_t done[WORKERS];
	uint64_t repairs, rolled_back, rolled_forward;
	/* outside the mutex */
	atomic_ullong acked[WORKERS];
	atomic_int stop;
	atomic_int broken_invariants;
	atomic_int bad_locks;   /* a lock returned neither 0 nor EOWNERDEAD */
	atomic_int last_bad;
};

static struct shared *sh;

/* Orders the stores of a transaction against a SIGKILL, which stops the
 * process between two instructions as a signal would: a signal fence
 * keeps the compiler from moving a store across it. The other process
 * sees them after the death through the mutex (the kernel's owner-died
 * marking and the EOWNERDEAD lock). */
#define STEP() atomic_signal_fence(memory_order_seq_cst)

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t rng = 1;

static uint32_t rng_below(uint32_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32) % n;
}

/* Busy for a few microseconds inside the transaction, so that kills land
 * between its steps. */
static void dawdle(void)
{
	uint64_t end = now_ns() + rng_below(4000);
	while (now_ns() < end)
		;
}

static uint64_t sum_done(void)
{
	uint64_t s = 0;
	for (int w = 0; w < WORKERS; w++)
		s += sh->done[w];
	return s;
}

static bool invariant_holds(void)
{
	return !sh->log.pending && sh->a == sh->b && sh->a == sum_done();
}

/* Holding m with EOWNERDEAD: finishes or undoes the dead owner's
 * transaction. Idempotent (it sets, never adds), so a repairer killed
 * midway leaves the log for the next one. */
static void repair(void)
{
	struct intent *l = &sh->log;
	if (l->pending) {
		if (l->stage == 2) {
			sh->a = l->old_a + 1;
			sh->b = l->old_b + 1;
			sh->done[l->worker] = l->old_done + 1;
			sh->rolled_forward++;
		} else {
			sh->a = l->old_a;
			sh->b = l->old_b;
			sh->done[l->worker] = l->old_done;
			sh->rolled_back++;
		}
		STEP();
		l->pending = 0;
		STEP();
	}
	sh->repairs++;
	if (!invariant_holds()) {
		atomic_fetch_add(&sh->broken_invariants, 1);
		fprintf(stderr, "# after repair %llu: a %llu b %llu sum(done) %llu\n",
			(unsigned long long)sh->repairs, (unsigned long long)sh->a,
			(unsigned long long)sh->b, (unsigned long long)sum_done());
	}
	sync_mutex_consistent(&sh->m);
}

/* Locks m, repairing if its owner died; false if the lock failed. */
static bool lock_and_repair(void)
{
	int r = sync_mutex_lock(&sh->m);
	if (r == EOWNERDEAD) {
		repair();
		return true;
	}
	if (r != 0) {
		atomic_fetch_add(&sh->bad_locks, 1);
		atomic_store(&sh->last_bad, r);
		return false;
	}
	return true;
}

/* One transaction: a++, b++, done[w]++, logged first, committed by
 * clearing the log. */
static bool transact(int w)
{
	if (!lock_and_repair())
		return false;
	struct intent *l = &sh->log;
	l->worker = w;
	l->old_a = sh->a;
	l->old_b = sh->b;
	l->old_done = sh->done[w];
	l->stage = 1;
	STEP();
	l->pending = 1;
	STEP();
	sh->a = l->old_a + 1;
	dawdle(); /* a kill here: roll back a */
	sh->b = l->old_b + 1;
	dawdle(); /* here: roll back a and b */
	l->stage = 2;
	dawdle(); /* here: roll forward, done[w] too */
	sh->done[w] = l->old_done + 1;
	STEP();
	l->pending = 0; /* commit */
	STEP();
	sync_mutex_unlock(&sh->m);
	atomic_fetch_add(&sh->acked[w], 1);
	return true;
}

static void worker(int w)
{
	rng = now_ns() ^ ((uint64_t)getpid() << 32) ^ 1;
	while (!atomic_load(&sh->stop))
		if (!transact(w))
			break;
}

static pid_t start_worker(int w)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		worker(w);
		_exit(0);
	}
	return pid;
}

static unsigned env_or(const char *name, unsigned fallback)
{
	const char *v = getenv(name);
	return v && *v ? (unsigned)strtoul(v, NULL, 0) : fallback;
}

static int checks_failed;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	static int n;
	va_list ap;
	printf("%s %d - ", ok ? "ok" : "not ok", ++n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	checks_failed += !ok;
}

int main(void)
{
	unsigned ms = env_or("CRASH_MS", DEFAULT_MS);
	unsigned seed = env_or("CRASH_SEED", (unsigned)now_ns());
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	printf("1..4\n# seed %u, %u ms\n", seed, ms);
	fflush(stdout);
	alarm(WATCHDOG_S); /* a hang fails the test */

	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	int r = sync_mutex_init(&sh->m, SYNC_PSHARED | SYNC_MUTEX_ROBUST);
	if (r != 0) {
		printf("Bail out! sync_mutex_init: %s\n", strerror(r));
		return 1;
	}

	pid_t pid[WORKERS];
	uint64_t kills[WORKERS] = { 0 }, total_kills = 0;
	for (int w = 0; w < WORKERS; w++)
		pid[w] = start_worker(w);
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
	while (now_ns() < end) {
		usleep(rng_below(MAX_KILL_GAP_US));
		int w = (int)rng_below(WORKERS);
		kill(pid[w], SIGKILL);
		waitpid(pid[w], NULL, 0);
		kills[w]++;
		total_kills++;
		pid[w] = start_worker(w);
	}
	atomic_store(&sh->stop, 1);
	int clean_exits = 0;
	for (int w = 0; w < WORKERS; w++) {
		int status;
		waitpid(pid[w], &status, 0);
		clean_exits += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}

	/* the last kill may have left the mutex owner-dead: repair it too */
	bool locked = lock_and_repair();
	check(locked && atomic_load(&sh->bad_locks) == 0 && clean_exits == WORKERS,
	      "every lock returned 0 or EOWNERDEAD (bad: %d, last %d) and the "
	      "workers not killed stopped cleanly (%d of %d)",
	      atomic_load(&sh->bad_locks), atomic_load(&sh->last_bad), clean_exits, WORKERS);
	check(atomic_load(&sh->broken_invariants) == 0,
	      "a == b == sum(done) after each of %llu repairs (%llu rolled back, "
	      "%llu rolled forward, %d broken)",
	      (unsigned long long)sh->repairs, (unsigned long long)sh->rolled_back,
	      (unsigned long long)sh->rolled_forward, atomic_load(&sh->broken_invariants));
	bool acks_fit = true;
	uint64_t acked = 0;
	for (int w = 0; w < WORKERS; w++) {
		uint64_t ack = atomic_load(&sh->acked[w]);
		acked += ack;
		acks_fit &= ack <= sh->done[w] && sh->done[w] <= ack + kills[w];
	}
	check(invariant_holds() && acks_fit,
	      "totals: a %llu, b %llu, %llu completed transactions, %llu acknowledged, "
	      "%llu kills", (unsigned long long)sh->a, (unsigned long long)sh->b,
	      (unsigned long long)sum_done(), (unsigned long long)acked,
	      (unsigned long long)total_kills);
	check(sh->rolled_back > 0 && sh->rolled_forward > 0 && total_kills > 0,
	      "owner deaths were met and repaired both ways (%llu repairs of %llu kills)",
	      (unsigned long long)sh->repairs, (unsigned long long)total_kills);
	if (locked)
		sync_mutex_unlock(&sh->m);
	return checks_failed ? 1 : 0;
}
