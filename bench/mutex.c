/* Mutex rows: sync_mutex against glibc's pthread_mutex (default type),
 * against ck_spinlock_fas and (where configure finds libabsl-dev) against
 * Abseil's absl::Mutex (bench/peer_absl.cc), at 1, 2 and 8 threads; the
 * robust sync_mutex against glibc's robust pthread_mutex. */
#include <pthread.h>

#include <sync/mutex.h>

#include "harness.h"
#include "peers.h"

static const int thread_counts[] = { 1, 2, 8 };

/* ours/pthread_mutex per thread count above: the project's targets */
static const double vs_pthread_max[] = { 1.00, 0.77, 1.00 };

static void ours_init(void *lock)
{
	sync_mutex_init(lock, 0);
}

static void ours_lock(void *lock, void *node)
{
	(void)node;
	sync_mutex_lock(lock);
}

static void ours_unlock(void *lock, void *node)
{
	(void)node;
	sync_mutex_unlock(lock);
}

static void glibc_init(void *lock)
{
	pthread_mutex_init(lock, NULL);
}

static void glibc_lock(void *lock, void *node)
{
	(void)node;
	pthread_mutex_lock(lock);
}

static void glibc_unlock(void *lock, void *node)
{
	(void)node;
	pthread_mutex_unlock(lock);
}

static void ours_robust_init(void *lock)
{
	sync_mutex_init(lock, SYNC_MUTEX_ROBUST);
}

static void glibc_robust_init(void *lock)
{
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(lock, &attr);
	pthread_mutexattr_destroy(&attr);
}

static const struct bench_lock bench_sync_mutex_robust = {
	.name = "robust_mutex", .size = sizeof(sync_mutex_t),
	.init = ours_robust_init, .lock = ours_lock, .unlock = ours_unlock,
};

static const struct bench_lock bench_pthread_mutex_robust = {
	.name = "pthread_robust", .size = sizeof(pthread_mutex_t),
	.init = glibc_robust_init, .lock = glibc_lock, .unlock = glibc_unlock,
};

#ifdef BENCH_HAVE_ABSL
static void absl_lock(void *lock, void *node)
{
	(void)node;
	bench_absl_mutex_lock(lock);
}

static void absl_unlock(void *lock, void *node)
{
	(void)node;
	bench_absl_mutex_unlock(lock);
}

static const struct bench_lock bench_absl_mutex = {
	.name = "absl::Mutex", .size = BENCH_ABSL_MUTEX_SIZE, .init = bench_absl_mutex_init,
	.lock = absl_lock, .unlock = absl_unlock,
};
#endif

const struct bench_lock bench_sync_mutex = {
	.name = "sync_mutex", .size = sizeof(sync_mutex_t), .init = ours_init,
	.lock = ours_lock, .unlock = ours_unlock,
};

const struct bench_lock bench_pthread_mutex = {
	.name = "pthread_mutex", .size = sizeof(pthread_mutex_t), .init = glibc_init,
	.lock = glibc_lock, .unlock = glibc_unlock,
};

void bench_mutex(const struct bench_config *cfg, struct bench_tally *tally)
{
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { "sync_mutex", &bench_sync_mutex, &bench_pthread_mutex,
					 thread_counts[i],
					 { TARGET_RATIO, vs_pthread_max[i] }, NULL };
		bench_run_row(cfg, &row, tally);
	}
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { "sync_mutex", &bench_sync_mutex, &bench_ck_fas,
					 thread_counts[i], { TARGET_NONE, 0 }, NULL };
		bench_run_row(cfg, &row, tally);
	}
#ifdef BENCH_HAVE_ABSL
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { "sync_mutex", &bench_sync_mutex, &bench_absl_mutex,
					 thread_counts[i], { TARGET_NONE, 0 }, NULL };
		bench_run_row(cfg, &row, tally);
	}
#endif
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { "robust_mutex", &bench_sync_mutex_robust,
					 &bench_pthread_mutex_robust, thread_counts[i],
					 { TARGET_NONE, 0 }, NULL };
		bench_run_row(cfg, &row, tally);
	}
}
