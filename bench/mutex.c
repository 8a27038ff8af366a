/* Mutex rows: sync_mutex against glibc's pthread_mutex (default type) and
 * against ck_spinlock_fas, at 1, 2 and 8 threads. */
#include <pthread.h>

#include <sync/mutex.h>

#include "harness.h"

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

static const struct bench_lock sync_mutex = {
	"sync_mutex", sizeof(sync_mutex_t), ours_init, ours_lock, ours_unlock,
};

static const struct bench_lock glibc_mutex = {
	"pthread_mutex", sizeof(pthread_mutex_t), glibc_init, glibc_lock,
	glibc_unlock,
};

void bench_mutex(const struct bench_config *cfg, struct bench_tally *tally)
{
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { "sync_mutex", &sync_mutex, &glibc_mutex,
					 thread_counts[i],
					 { TARGET_RATIO, vs_pthread_max[i] } };
		bench_run_row(cfg, &row, tally);
	}
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { "sync_mutex", &sync_mutex, &bench_ck_fas,
					 thread_counts[i], { TARGET_NONE, 0 } };
		bench_run_row(cfg, &row, tally);
	}
}
