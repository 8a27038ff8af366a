/* Configuration reload under sync_epoch: readers load the current
 * configuration (an atomic pointer) inside a section and read its plain
 * fields; the writer publishes a new one and, in a first run, retires the
 * old with a callback that scribbles on it and frees it, in a second run
 * waits by sync_epoch_synchronize and does so itself. Reader 0 tells the
 * writer when it meets a new configuration, before it reads it, so that
 * its reads of every configuration come before that configuration's end
 * and only the epoch orders them. Correct: no report. (The pointer is the
 * program's own atomic: annotated for Valgrind, see tools.h.) */
#include <stdatomic.h>

#include <sched.h>

#include "tools.h"

#define READERS 3

struct config {
	long version;
	long port, timeout; /* both derived from version */
};

static _Atomic(struct config *) current;
static atomic_long freed;
static sync_sem_t writer_done, readers_ready, config_met;
static int by_callback; /* this run's way to end a configuration */
static long rounds;

static struct config *config_new(long v)
{
	struct config *c = malloc(sizeof *c);
	CHECK(c);
	c->version = v;
	c->port = 8000 + v % 1000;
	c->timeout = v * 3;
	return c;
}

/* Its end: whoever ends it owns it, writes included. */
static void config_free(void *p)
{
	struct config *c = p;
	c->port = c->timeout = -1;
	free(c);
	atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
}

static void *reader(void *arg)
{
	struct config *met = NULL;
	long seen = 0;
	CHECK(sync_sem_post(&readers_ready) == 0);
	while (!tools_raised(&writer_done)) {
		sync_epoch_enter();
		struct config *c = atomic_load_explicit(&current, memory_order_acquire);
		ANNOTATE_HAPPENS_AFTER(&current);
		if ((long)arg == 0 && c != met) {
			met = c;
			CHECK(sync_sem_post(&config_met) == 0);
		}
		CHECK(c->port == 8000 + c->version % 1000);
		CHECK(c->timeout == c->version * 3);
		CHECK(c->version >= seen);
		seen = c->version;
		sync_epoch_exit();
		sched_yield(); /* Valgrind runs one thread at a time */
	}
	return NULL;
}

static void *writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < READERS; i++)
		CHECK(sync_sem_wait(&readers_ready) == 0);
	for (long v = 1; v <= rounds; v++) {
		struct config *fresh = config_new(v);
		CHECK(sync_sem_wait(&config_met) == 0); /* reader 0 met the old one */
		ANNOTATE_HAPPENS_BEFORE(&current);
		struct config *old = atomic_exchange_explicit(&current, fresh,
							      memory_order_acq_rel);
		if (by_callback) {
			sync_epoch_retire(old, config_free);
		} else {
			sync_epoch_synchronize();
			config_free(old); /* no reader can see it any more */
		}
	}
	CHECK(sync_sem_post(&writer_done) == 0);
	return NULL;
}

static void *either(void *arg)
{
	return (long)arg == READERS ? writer(arg) : reader(arg);
}

static void reload(int callbacks)
{
	by_callback = callbacks;
	atomic_store(&freed, 0);
	atomic_store(&current, config_new(0));
	CHECK(sync_sem_init(&writer_done, 0, 0) == 0);
	CHECK(sync_sem_init(&readers_ready, 0, 0) == 0);
	CHECK(sync_sem_init(&config_met, 0, 0) == 0);
	tools_run(READERS + 1, either);
	sync_epoch_barrier();
	CHECK(atomic_load(&freed) == rounds);
	free(atomic_load(&current));
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 4000) / 20; /* versions: a grace period each */
	CHECK(rounds > 0);
	reload(1);
	reload(0);
	return 0;
}
