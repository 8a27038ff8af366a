/* Configuration reload under sync_epoch: readers load the current
 * configuration (an atomic pointer) inside a section and read its plain
 * fields; the writer publishes a new one and retires the old with a
 * callback that scribbles on it and frees it, or waits by
 * sync_epoch_synchronize and frees it itself. Correct: no report. (The
 * pointer is the program's own atomic: annotated for Valgrind, see tools.h.) */
#include <stdatomic.h>

#include "tools.h"

#define READERS 3

struct config {
	long version;
	long port, timeout; /* both derived from version */
};

static _Atomic(struct config *) current;
static atomic_long freed;
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

/* The callback: the object is the reclaimer's now, writes included. */
static void config_free(void *p)
{
	struct config *c = p;
	c->port = c->timeout = -1;
	free(c);
	atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
}

static void *reader(void *arg)
{
	(void)arg;
	long seen = 0;
	for (long n = 0; n < rounds; n++) {
		sync_epoch_enter();
		struct config *c = atomic_load_explicit(&current, memory_order_acquire);
		ANNOTATE_HAPPENS_AFTER(&current);
		CHECK(c->port == 8000 + c->version % 1000);
		CHECK(c->timeout == c->version * 3);
		CHECK(c->version >= seen);
		seen = c->version;
		sync_epoch_exit();
	}
	return NULL;
}

static void *writer(void *arg)
{
	(void)arg;
	for (long v = 1; v <= rounds; v++) {
		struct config *fresh = config_new(v);
		ANNOTATE_HAPPENS_BEFORE(&current);
		struct config *old = atomic_exchange_explicit(&current, fresh,
							      memory_order_acq_rel);
		if (v % 16) {
			sync_epoch_retire(old, config_free);
		} else {
			sync_epoch_synchronize();
			old->port = -1; /* no reader can see it any more */
			free(old);
		}
	}
	return NULL;
}

static void *either(void *arg)
{
	return (long)arg == READERS ? writer(arg) : reader(arg);
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 5000);
	atomic_store(&current, config_new(0));
	tools_run(READERS + 1, either);
	sync_epoch_barrier();
	CHECK(atomic_load(&freed) == rounds - rounds / 16);
	free(atomic_load(&current));
	return 0;
}
