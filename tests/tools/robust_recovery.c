/* A robust mutex whose owner thread exits holding it, in rounds: the next
 * locker gets EOWNERDEAD, repairs the plain data the dead owner left half
 * done, and goes on; other threads use the mutex normally meanwhile.
 * Correct, so no tool may report (the dead owner's hold ends at its exit). */
#include <errno.h>

#include "tools.h"

static sync_mutex_t lock = SYNC_MUTEX_ROBUST_INITIALIZER;
static long a, b; /* plain: under lock; a == b when consistent */
static long rounds;

/* Dies holding the lock, halfway through an update. */
static void *die_holding(void *arg)
{
	(void)arg;
	int r = sync_mutex_lock(&lock);
	CHECK(r == 0 || r == EOWNERDEAD);
	if (r == EOWNERDEAD) {
		b = a;
		CHECK(sync_mutex_consistent(&lock) == 0);
	}
	a++;
	return NULL; /* exits holding: b lags behind a */
}

static void update(void)
{
	int r = sync_mutex_lock(&lock);
	CHECK(r == 0 || r == EOWNERDEAD);
	if (r == EOWNERDEAD) {
		b = a; /* the repair */
		CHECK(sync_mutex_consistent(&lock) == 0);
	}
	CHECK(a == b);
	a++;
	b++;
	CHECK(sync_mutex_unlock(&lock) == 0);
}

static void *worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++)
		update();
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 1000) / 10 + 1;
	for (int round = 0; round < 5; round++) {
		pthread_t t;
		CHECK(pthread_create(&t, NULL, die_holding, NULL) == 0);
		CHECK(pthread_join(t, NULL) == 0);
		tools_run(2, worker);
	}
	update();
	CHECK(a == b);
	printf("a = b = %ld\n", a);
	return 0;
}
