/* A lock-order inversion that never deadlocks in the run: one thread takes
 * A then B, and only after it is joined another takes B then A. argv[2]
 * "pthread" makes B a pthread mutex, else both are sync_mutexes. ThreadSanitizer
 * must report "lock-order-inversion". */
#include "tools.h"

static sync_mutex_t a = SYNC_MUTEX_INITIALIZER;
static sync_mutex_t b_sync = SYNC_MUTEX_INITIALIZER;
static pthread_mutex_t b_pthread = PTHREAD_MUTEX_INITIALIZER;
static int b_is_pthread;
static long shared; /* plain: under both */

static void lock_b(void)
{
	if (b_is_pthread)
		CHECK(pthread_mutex_lock(&b_pthread) == 0);
	else
		CHECK(sync_mutex_lock(&b_sync) == 0);
}

static void unlock_b(void)
{
	if (b_is_pthread)
		CHECK(pthread_mutex_unlock(&b_pthread) == 0);
	else
		CHECK(sync_mutex_unlock(&b_sync) == 0);
}

static void *a_then_b(void *arg)
{
	(void)arg;
	CHECK(sync_mutex_lock(&a) == 0);
	lock_b();
	shared++;
	unlock_b();
	CHECK(sync_mutex_unlock(&a) == 0);
	return NULL;
}

static void *b_then_a(void *arg)
{
	(void)arg;
	lock_b();
	CHECK(sync_mutex_lock(&a) == 0);
	shared++;
	CHECK(sync_mutex_unlock(&a) == 0);
	unlock_b();
	return NULL;
}

int main(int argc, char **argv)
{
	b_is_pthread = argc > 2 && strcmp(argv[2], "pthread") == 0;
	tools_run(1, a_then_b);
	tools_run(1, b_then_a);
	CHECK(shared == 2);
	return 0;
}
