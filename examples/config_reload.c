/* Config reload: reader threads keep using a configuration while a writer
 * replaces it, and no reader may ever see half an old and half a new one.
 * Two ways:
 *  - a reader-writer lock: readers read the config in place under the read
 *    lock (many at once); the writer rewrites it under the write lock;
 *  - epochs (read-copy-update): the writer builds a new config aside and
 *    swaps one pointer; readers load the pointer inside
 *    sync_epoch_enter/sync_epoch_exit and take no lock at all. The old
 *    config cannot be freed at once, since a reader may still be reading it:
 *    the writer hands it to sync_epoch_retire, which frees it once every
 *    section that could have seen it has ended.
 * A config is complete when its fields agree with its version; readers check
 * that, and that versions never go backwards.
 * See sync_rwlock_rdlock(3), sync_epoch_enter(3), sync_epoch_retire(3).
 * cc config_reload.c $(pkg-config --cflags --libs libsync) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sync.h>

#define READERS 3
#define RUN_NS 100000000 /* each way runs 0.1 s */

struct config { long version, port, workers, timeout_ms; };

static void fill(struct config *c, long version)
{
	c->version = version;
	c->port = 8000 + version;
	c->workers = version % 64 + 1;
	c->timeout_ms = 1000 * version;
}

static int complete(const struct config *c)
{
	return c->port == 8000 + c->version && c->workers == c->version % 64 + 1 &&
	       c->timeout_ms == 1000 * c->version;
}

static atomic_int done; /* the writer has finished; seq_cst */
static pthread_barrier_t start; /* readers are reading before the writer starts */
#define MIN_READS 1000 /* per reader, even on a busy machine */

struct reader { long reads, bad; long last; };

/* A reader uses its config for a while: it must stay complete and the same
 * all along, and no older than the one this reader saw before. Counts the
 * bad reads. */
static void use(struct reader *r, const struct config *c)
{
	long version = c->version;
	for (int i = 0; i < 20; i++)
		if (!complete(c) || c->version != version || version < r->last) {
			r->bad++;
			break;
		}
	r->last = version;
	r->reads++;
}

/* ---- 1. reader-writer lock: the config is updated in place. ---- */
static sync_rwlock_t lock = SYNC_RWLOCK_INITIALIZER;
static struct config shared_config; /* guarded by lock */

static void *rwlock_reader(void *arg)
{
	struct reader *r = arg;
	pthread_barrier_wait(&start);
	while (!atomic_load(&done) || r->reads < MIN_READS) {
		sync_rwlock_rdlock(&lock);
		use(r, &shared_config);
		sync_rwlock_rdunlock(&lock);
	}
	return NULL;
}

static void rwlock_reload(long version)
{
	sync_rwlock_wrlock(&lock);
	fill(&shared_config, version);
	sync_rwlock_wrunlock(&lock);
}

/* ---- 2. epochs: the writer swaps a pointer and retires the old config. ---- */
static struct config *_Atomic current;
static atomic_long freed;

static void *epoch_reader(void *arg)
{
	struct reader *r = arg;
	pthread_barrier_wait(&start);
	while (!atomic_load(&done) || r->reads < MIN_READS) {
		sync_epoch_enter();
		/* acquire: pairs with the release in epoch_reload's exchange, so
		 * the fields filled before the swap are seen */
		use(r, atomic_load_explicit(&current, memory_order_acquire));
		sync_epoch_exit(); /* the config may be freed from here on */
	}
	return NULL;
}

static void free_config(void *p)
{
	((struct config *)p)->port = 0; /* spoil it: a reader still using it would notice */
	free(p);
	atomic_fetch_add(&freed, 1);
}

static void epoch_reload(long version)
{
	struct config *c = malloc(sizeof *c);
	if (c == NULL)
		abort();
	fill(c, version);
	/* release: publishes the fields (pairs with the readers' acquire) */
	struct config *old = atomic_exchange_explicit(&current, c, memory_order_release);
	sync_epoch_retire(old, free_config);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000 + (uint64_t)t.tv_nsec;
}

/* Readers read while the writer reloads for RUN_NS; returns the reloads. */
static long run(const char *how, void *(*reader)(void *), void (*reload)(long))
{
	pthread_t threads[READERS];
	struct reader r[READERS] = { { 0, 0, 0 } };
	long reads = 0, bad = 0, version = 1;
	atomic_store(&done, 0);
	for (int i = 0; i < READERS; i++)
		pthread_create(&threads[i], NULL, reader, &r[i]);
	pthread_barrier_wait(&start);
	for (uint64_t end = now_ns() + RUN_NS; now_ns() < end;)
		reload(++version);
	atomic_store(&done, 1);
	for (int i = 0; i < READERS; i++) {
		pthread_join(threads[i], NULL);
		reads += r[i].reads;
		bad += r[i].bad;
	}
	printf("%-7s %ld reloads, %ld reads, %ld saw a torn, changing or older config\n",
	       how, version - 1, reads, bad);
	return bad == 0 ? version - 1 : -1;
}

int main(void)
{
	pthread_barrier_init(&start, NULL, READERS + 1);
	fill(&shared_config, 1);
	int ok = run("rwlock", rwlock_reader, rwlock_reload) >= 0;

	struct config *first = malloc(sizeof *first);
	if (first == NULL)
		return 1;
	fill(first, 1);
	atomic_store(&current, first);
	long reloads = run("epoch", epoch_reader, epoch_reload);
	sync_epoch_barrier(); /* run the callbacks still pending */
	printf("epoch: %ld of %ld old configs freed\n", atomic_load(&freed), reloads);
	ok &= reloads >= 0 && atomic_load(&freed) == reloads;
	free(atomic_load(&current));
	return ok ? 0 : 1;
}
