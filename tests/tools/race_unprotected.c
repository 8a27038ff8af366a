/* A true race beside a protected counter: two threads add to `guarded`
 * under a sync_mutex, and each first adds to `*unguarded` with no lock,
 * before any synchronization, so no run orders the two accesses. The tools
 * must report it (the tests expect their error exit code, and the report to
 * name unguarded_alloc, where the racy block comes from). */
#include "tools.h"

static sync_mutex_t lock = SYNC_MUTEX_INITIALIZER;
static long guarded;
static long *unguarded; /* the race is on *unguarded */
static long rounds;

/* Its own frame, so that every tool's report of the block names it. */
static __attribute__((noinline)) long *unguarded_alloc(void)
{
	long *p = calloc(1, sizeof *p);
	CHECK(p);
	return p;
}

static void *adder(void *arg)
{
	(void)arg;
	(*unguarded)++;
	for (long n = 0; n < rounds; n++) {
		sync_mutex_lock(&lock);
		guarded++;
		sync_mutex_unlock(&lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 1000);
	unguarded = unguarded_alloc();
	tools_run(2, adder);
	CHECK(guarded == 2 * rounds);
	printf("unguarded = %ld\n", *unguarded);
	free(unguarded);
	return 0;
}
