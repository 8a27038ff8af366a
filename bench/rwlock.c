/* Reader-writer lock rows: sync_rwlock against ck_rwlock (read-only, and
 * 90% reads / 10% writes) and against glibc's pthread_rwlock (90/10: its
 * default kind, which prefers readers, and its writer-preferring kind, each
 * against ours of the same preference), at 1, 2 and 8 threads. ck's
 * functions are inline; each is wrapped in a plain static function, called
 * through the same pointer type as ours. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <ck_rwlock.h>
#include <pthread.h>
#include <stdio.h>

#include <sync/rwlock.h>

#include "harness.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* ---- ours ------------------------------------------------------------------- */

static void ours_init(void *lock)
{
	sync_rwlock_init(lock, 0);
}

static void ours_wrlock(void *lock, void *node)
{
	(void)node;
	sync_rwlock_wrlock(lock);
}

static void ours_wrunlock(void *lock, void *node)
{
	(void)node;
	sync_rwlock_wrunlock(lock);
}

static void ours_rdlock(void *lock, void *node)
{
	(void)node;
	sync_rwlock_rdlock(lock);
}

static void ours_rdunlock(void *lock, void *node)
{
	(void)node;
	sync_rwlock_rdunlock(lock);
}

static const struct bench_lock sync_rwlock = {
	.name = "sync_rwlock", .size = sizeof(sync_rwlock_t), .init = ours_init,
	.lock = ours_wrlock, .unlock = ours_wrunlock,
	.lock_shared = ours_rdlock, .unlock_shared = ours_rdunlock,
};

static void ours_init_rdpref(void *lock)
{
	sync_rwlock_init(lock, SYNC_RWLOCK_PREFER_READER);
}

/* Compared with glibc's default, which also prefers readers. */
static const struct bench_lock sync_rwlock_rdpref = {
	.name = "sync_rwlock_rdpref", .size = sizeof(sync_rwlock_t), .init = ours_init_rdpref,
	.lock = ours_wrlock, .unlock = ours_wrunlock,
	.lock_shared = ours_rdlock, .unlock_shared = ours_rdunlock,
};

/* ---- ck ------------------------------------------------------------------- */

static void ck_init(void *lock)
{
	ck_rwlock_init(lock);
}

static void ck_wrlock(void *lock, void *node)
{
	(void)node;
	ck_rwlock_write_lock(lock);
}

static void ck_wrunlock(void *lock, void *node)
{
	(void)node;
	ck_rwlock_write_unlock(lock);
}

static void ck_rdlock(void *lock, void *node)
{
	(void)node;
	ck_rwlock_read_lock(lock);
}

static void ck_rdunlock(void *lock, void *node)
{
	(void)node;
	ck_rwlock_read_unlock(lock);
}

static const struct bench_lock ck_rw = {
	.name = "ck_rwlock", .size = sizeof(ck_rwlock_t), .init = ck_init,
	.lock = ck_wrlock, .unlock = ck_wrunlock,
	.lock_shared = ck_rdlock, .unlock_shared = ck_rdunlock,
};

/* ---- glibc ------------------------------------------------------------------ */

static void glibc_init(void *lock)
{
	pthread_rwlock_init(lock, NULL);
}

static void glibc_wrlock(void *lock, void *node)
{
	(void)node;
	pthread_rwlock_wrlock(lock);
}

static void glibc_rdlock(void *lock, void *node)
{
	(void)node;
	pthread_rwlock_rdlock(lock);
}

static void glibc_unlock(void *lock, void *node)
{
	(void)node;
	pthread_rwlock_unlock(lock);
}

static const struct bench_lock glibc_rwlock = {
	.name = "pthread_rwlock", .size = sizeof(pthread_rwlock_t), .init = glibc_init,
	.lock = glibc_wrlock, .unlock = glibc_unlock,
	.lock_shared = glibc_rdlock, .unlock_shared = glibc_unlock,
};

/* glibc's writer-preferring kind, like for like with our default. */
static void glibc_init_wrpref(void *lock)
{
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &a);
	pthread_rwlockattr_destroy(&a);
}

static const struct bench_lock glibc_rwlock_wrpref = {
	.name = "pthread_rwlock_wrpref", .size = sizeof(pthread_rwlock_t),
	.init = glibc_init_wrpref, .lock = glibc_wrlock, .unlock = glibc_unlock,
	.lock_shared = glibc_rdlock, .unlock_shared = glibc_unlock,
};

/* ---- the workloads: read-only, and 90% reads / 10% writes ----------------- */

/* The data the lock protects: a writer sets every word to one new value, a
 * reader checks that they are all equal. */
#define WORDS 4

struct protected_data {
	_Alignas(LINE) uint64_t word[WORDS];
};

/* Of 2^32 draws, this many choose a write: 10%. */
#define WRITE_10_PERCENT 429496730u

static void rw_setup(const struct bench_objects *run)
{
	run->impl->init(run->obj[0]);
}

/* xorshift64* (Vigna, 2016): the same per-thread sequence for ours and the
 * peer, so both sides do the same reads and writes in the same order. */
static uint32_t next_random(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return (uint32_t)((*x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* counts[0]: reads that saw a half-done write; counts[1]: writes. Inlined
 * into each loop below, so write_below is a constant there (0: no draw). */
static inline uint64_t rw_loop(struct bench_thread *t, uint64_t n, uint32_t write_below)
{
	const struct bench_objects *run = t->run;
	void (*wrlock)(void *, void *) = run->impl->lock;
	void (*wrunlock)(void *, void *) = run->impl->unlock;
	void (*rdlock)(void *, void *) = run->impl->lock_shared;
	void (*rdunlock)(void *, void *) = run->impl->unlock_shared;
	void *l = run->obj[0];
	uint64_t *word = ((struct protected_data *)run->shared)->word;
	uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(t->index + 1);
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		if (write_below && next_random(&x) < write_below) {
			wrlock(l, t->node);
			uint64_t v = word[0] + 1;
			for (int k = 0; k < WORDS; k++)
				word[k] = v;
			wrunlock(l, t->node);
			t->counts[1]++;
		} else {
			rdlock(l, t->node);
			uint64_t v = word[0];
			bool torn = false;
			for (int k = 1; k < WORDS; k++)
				torn |= word[k] != v;
			rdunlock(l, t->node);
			t->counts[0] += torn;
		}
		bench_pause(run->delay);
	}
	return i;
}

static uint64_t read_loop(struct bench_thread *t, uint64_t n)
{
	return rw_loop(t, n, 0);
}

static uint64_t mixed_loop(struct bench_thread *t, uint64_t n)
{
	return rw_loop(t, n, WRITE_10_PERCENT);
}

/* Every write counted once (writers excluded each other) and no reader saw
 * a write half done (writers excluded readers). */
static bool rw_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	const uint64_t *word = ((const struct protected_data *)run->shared)->word;
	bool equal = true;
	(void)ops;
	for (int k = 1; k < WORDS; k++)
		equal &= word[k] == word[0];
	if (!counts[0] && equal && word[0] == counts[1])
		return true;
	fprintf(stderr, "bench: %s: exclusion broken: %llu writes, data %llu%s, %llu torn reads\n",
		run->impl->name, (unsigned long long)counts[1], (unsigned long long)word[0],
		equal ? "" : " (words differ)", (unsigned long long)counts[0]);
	return false;
}

static const struct bench_workload rw_read = {
	.name = "read",
	.legend = "read lock; read 4 words (one line), check them equal; read unlock;"
		  " ns per lock+unlock",
	.objects = 1,
	.shared_size = sizeof(struct protected_data),
	.fairness = true,
	.setup = rw_setup,
	.loop = read_loop,
	.check = rw_check,
};

static const struct bench_workload rw_mixed = {
	.name = "90r/10w",
	.legend = "as read, but 10% (per-thread xorshift, same draws both sides) write lock"
		  " and set the 4 words to a new value",
	.objects = 1,
	.shared_size = sizeof(struct protected_data),
	.fairness = true,
	.setup = rw_setup,
	.loop = mixed_loop,
	.check = rw_check,
};

/* ---- rows ------------------------------------------------------------------- */

void bench_rwlock(const struct bench_config *cfg, struct bench_tally *tally)
{
	static const struct bench_row rows[] = {
		{ "sync_rwlock", &sync_rwlock, &ck_rw, 1, { TARGET_RATIO, 0.30 }, &rw_read },
		{ "sync_rwlock", &sync_rwlock, &ck_rw, 2, { TARGET_RATIO, 0.30 }, &rw_read },
		{ "sync_rwlock", &sync_rwlock, &glibc_rwlock, 2, { TARGET_RATIO, 0.70 },
		  &rw_mixed },
		/* 8 threads on few cores: ours finishes, and keeps up with glibc */
		{ "sync_rwlock", &sync_rwlock, &glibc_rwlock, 8,
		  { TARGET_FINISHES_RATIO, 1.00 }, &rw_mixed },
		/* like for like: both prefer writers; both prefer readers */
		{ "sync_rwlock", &sync_rwlock, &glibc_rwlock_wrpref, 8,
		  { TARGET_FINISHES_RATIO, 1.00 }, &rw_mixed },
		{ "sync_rwlock_rdpref", &sync_rwlock_rdpref, &glibc_rwlock, 8,
		  { TARGET_FINISHES_RATIO, 1.00 }, &rw_mixed },
		/* informational: ck spins, so it may not finish when oversubscribed */
		{ "sync_rwlock", &sync_rwlock, &ck_rw, 2, { TARGET_NONE, 0 }, &rw_mixed },
		{ "sync_rwlock", &sync_rwlock, &ck_rw, 8, { TARGET_NONE, 0 }, &rw_mixed },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		bench_run_row(cfg, &rows[i], tally);
}
