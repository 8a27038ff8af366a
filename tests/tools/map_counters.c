/* Counters in a sync_map whose values are immutable heap structs: to count
 * one, an updater gets the current struct (sync_map_get_or_insert, which
 * inserts a first one holding 1 if the key is new), reads its plain fields,
 * makes a successor holding one more and swaps it in by sync_map_replace,
 * retrying when another updater came first; the replaced struct goes to
 * sync_epoch_retire, whose callback scribbles on it and frees it. A reader
 * gets the counters inside epoch sections and reads their plain fields,
 * which must be consistent and never go back. Every count must be in the
 * totals, exactly. argv[1]: counts per updater. Correct: no report. */
#include <sched.h>

#include "tools.h"

#define UPDATERS 3
#define KEYS 8

struct counter {
	long n;     /* plain: written before the value is published, never after */
	long check; /* plain: n * 3 + 1, likewise */
	int key;
};

static sync_map_t *counters;
static long per_updater;
static long counted[UPDATERS][KEYS]; /* plain: each updater's own, read after join */
static long retries[UPDATERS];
static sync_sem_t finished = SYNC_SEM_INITIALIZER(0); /* one post per updater */

static void key_of(int k, char *key, size_t *len)
{
	*len = (size_t)snprintf(key, 8, "c%d", k);
}

static struct counter *counter_new(int key, long n)
{
	struct counter *c = malloc(sizeof *c);
	CHECK(c);
	c->n = n;
	c->check = n * 3 + 1;
	c->key = key;
	return c;
}

/* The epoch callback: nobody can see c any more. */
static void counter_free(void *p)
{
	struct counter *c = p;
	c->n = c->check = -1;
	free(c);
}

static void check_counter(const struct counter *c, int key)
{
	CHECK(c->key == key && c->n >= 1 && c->check == c->n * 3 + 1);
}

/* One more count on key k. */
static void count(long me, int k)
{
	char key[8];
	size_t len;
	key_of(k, key, &len);
	struct counter *first = counter_new(k, 1), *next = NULL;
	for (;;) {
		void *cur;
		sync_epoch_enter();
		int rc = sync_map_get_or_insert(counters, key, len, first, &cur);
		if (rc == 0) { /* ours: the key was new */
			sync_epoch_exit();
			free(next);
			return;
		}
		CHECK(rc == EEXIST);
		struct counter *c = cur;
		check_counter(c, k);
		if (!next)
			next = counter_new(k, 0);
		next->n = c->n + 1;
		next->check = next->n * 3 + 1;
		rc = sync_map_replace(counters, key, len, c, next);
		sync_epoch_exit();
		if (rc == 0) { /* c is ours now: no updater or reader will see it */
			sync_epoch_retire(c, counter_free);
			free(first);
			return;
		}
		CHECK(rc == EAGAIN);
		retries[me]++;
	}
}

static void *updater(long me)
{
	unsigned seed = 2463534242u + (unsigned)me;
	for (long i = 0; i < per_updater; i++) {
		int k = (int)(tools_rand(&seed) % KEYS);
		count(me, k);
		counted[me][k]++;
	}
	CHECK(sync_sem_post(&finished) == 0);
	return NULL;
}

/* Reads every counter until all updaters are finished. */
static void *reader(void)
{
	long last[KEYS] = { 0 };
	int gone = 0;
	while (gone < UPDATERS) {
		if (sync_sem_trywait(&finished) == 0)
			gone++;
		sync_epoch_enter();
		for (int k = 0; k < KEYS; k++) {
			char key[8];
			size_t len;
			void *v;
			key_of(k, key, &len);
			if (sync_map_get(counters, key, len, &v) != 0)
				continue;
			struct counter *c = v;
			check_counter(c, k);
			CHECK(c->n >= last[k]);
			last[k] = c->n;
		}
		sync_epoch_exit();
		sched_yield(); /* Valgrind runs one thread at a time */
	}
	return NULL;
}

static void *either(void *arg)
{
	long i = (long)arg;
	return i < UPDATERS ? updater(i) : reader();
}

int main(int argc, char **argv)
{
	per_updater = tools_scale(argc, argv, 20000);
	CHECK((counters = sync_map_create(0)));
	tools_run(UPDATERS + 1, either);
	long total = 0;
	for (int k = 0; k < KEYS; k++) {
		char key[8];
		size_t len;
		void *v;
		long want = 0;
		for (int i = 0; i < UPDATERS; i++)
			want += counted[i][k];
		key_of(k, key, &len);
		if (sync_map_get(counters, key, len, &v) != 0) {
			CHECK(want == 0);
			continue;
		}
		struct counter *c = v;
		check_counter(c, k);
		CHECK(c->n == want);
		total += c->n;
	}
	CHECK(total == UPDATERS * per_updater);
	CHECK(sync_map_size(counters) <= KEYS);
	sync_map_destroy(counters, counter_free);
	sync_epoch_barrier();
	return 0;
}
