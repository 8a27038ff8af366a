/* Concurrent hash map: a chained table of 2^k buckets whose words carry a
 * lock bit, so writers lock one bucket and readers lock nothing; resized
 * incrementally by the writers in the manner of Java's ConcurrentHashMap
 * (Doug Lea, JDK 8: forwarding buckets, "lastRun" transfer of a bucket);
 * memory reclaimed through sync_epoch. Hash: XXH3 (Collet) with a per-map
 * random seed.
 *
 * Invariants:
 * - Each live node is in exactly one live chain. A node's `next` changes
 *   only under the lock of the bucket whose chain holds it: an unlink, or
 *   (migration) a NULL tail linked to another chain.
 * - A reader that started down a chain sees every node that chain held when
 *   it loaded the head, minus nodes unlinked meanwhile: migration never
 *   rewires a non-NULL `next`; it copies the nodes it would have to rewire.
 * - One resize at a time: a table's `next` is set before any of its buckets
 *   is marked MOVED, and the map's table pointer moves to `next` only after
 *   every bucket has.
 * - Every writer (put, insert, get_or_insert, replace, remove, remove_if)
 *   decides and writes under the lock of the key's bucket in the newest
 *   table, so each is atomic per key; insert and get_or_insert that find
 *   the key present return at once, as a get would (lock-free).
 * - No operation waits for a grace period or for memory: nodes and tables
 *   go to epoch_retire_nowait, inside the operation's section; the unlink
 *   store before it may be a release store (retire fences before it stamps).
 * - Tools (annotate.h): the map, its tables and nodes are the library's own
 *   words (ann_internal when allocated). A value passes from the writer that
 *   stored it to whoever gets it (get, foreach, put's *old, remove,
 *   get_or_insert's *actual; and replace and remove_if, whose caller takes
 *   over `expected`): the writer releases on the node before the store
 *   that publishes the value (a value store, or the bucket store that
 *   links a fresh node), the taker acquires on the node after loading the
 *   value (or, in a writer, after comparing it); a migration's copy
 *   of a node acquires on the original and releases on the copy. A key
 *   compare acquires on the node too (TSan sees memcmp, and the maker's
 *   malloc and memcpy).
 * - A writer waits only on a bucket's lock bit, by spinning and yielding, so
 *   a waiter that vanishes leaves nothing; no operation is a cancellation
 *   point, so no cancelled thread leaves a bucket or `migrating` held. A
 *   holder that vanishes (a writer's thread absent from a fork child) leaves
 *   its bucket locked, as a held mutex would be. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <sync/epoch.h>
#include <sync/map.h>

#include "annotate.h"
#include "backoff.h"
#include "cacheline.h"
#include "epoch_internal.h"
#include "test_hook.h"
#include "thread.h"

#define BUCKET_LOCK ((uintptr_t)1)  /* a writer holds the bucket */
#define BUCKET_MOVED ((uintptr_t)2) /* the bucket lives in table->next now */
#define BUCKET_FLAGS (BUCKET_LOCK | BUCKET_MOVED)
#define MIN_BUCKETS ((size_t)16)
#define MIGRATE_STEP 64u  /* buckets a writer moves per operation */
#define PREFETCH_AHEAD 8u /* buckets ahead of the migration whose chain is prefetched */
#define COUNTER_CELLS 16u /* striped entry counter, one cache line each */
#define CHECK_EVERY_MAX 64u

struct node {
	_Atomic(struct node *) next;
	_Atomic(void *) value;
	uint64_t hash;
	size_t keylen;
	unsigned char key[];
};

struct table {
	size_t mask;                 /* buckets - 1 */
	size_t mapped;               /* bytes mmap'ed, or 0: from calloc */
	_Atomic(struct table *) next; /* table being migrated into, or NULL */
	size_t migrated;             /* buckets moved so far; under migrating */
	_Atomic uintptr_t buckets[];
};

struct counter_cell {
	_Alignas(CACHE_LINE) _Atomic int64_t n;
};

struct sync_map {
	_Alignas(CACHE_LINE) _Atomic(struct table *) table;
	uint64_t seed;
	size_t min_buckets;
	_Alignas(CACHE_LINE) _Atomic int migrating; /* held by the one migrating writer */
	struct counter_cell cells[COUNTER_CELLS];
};

/* ---- nodes and tables --------------------------------------------------- */

static struct node *node_ptr(uintptr_t w)
{
	return (struct node *)(w & ~BUCKET_FLAGS);
}

static uint64_t hash_key(const struct sync_map *m, const void *key, size_t len)
{
	return XXH3_64bits_withSeed(len ? key : "", len, m->seed);
}

static bool node_has_key(const struct node *n, uint64_t h, const void *key,
			 size_t len)
{
	if (n->hash != h || n->keylen != len)
		return false;
	/* TSan intercepts memcmp: the key was written by the node's maker */
	ann_acquire(n);
	return len == 0 || memcmp(n->key, key, len) == 0;
}

static bool key_ok(const void *key, size_t len)
{
	return key || len == 0;
}

/* Longer keys cannot be stored: their node's size would overflow. */
static bool key_fits(size_t len)
{
	return len <= SIZE_MAX - sizeof(struct node);
}

/* A fresh node; NULL when out of memory, errno as it was (the callers
 * return an error number and leave errno alone). */
static struct node *node_new(uint64_t h, const void *key, size_t len, void *value)
{
	if (!key_fits(len))
		return NULL;
	int saved = errno;
	struct node *n = malloc(sizeof *n + len);
	errno = saved;
	if (!n)
		return NULL;
	ann_internal(n, sizeof *n + len);
	atomic_init(&n->next, NULL);
	atomic_init(&n->value, value);
	n->hash = h;
	n->keylen = len;
	if (len)
		memcpy(n->key, key, len);
	return n;
}

static struct node *next_of(struct node *n)
{
	/* pairs with the release stores that link or unlink a successor */
	return atomic_load_explicit(&n->next, memory_order_acquire);
}

/* A node's value, loaded to be handed to the caller (a lookup's, or under
 * the bucket lock). */
static void *value_of(struct node *n)
{
	/* acquire pairs with the release store that put the value */
	void *value = atomic_load_explicit(&n->value, memory_order_acquire);
	ann_acquire(n); /* the writer's ann_release */
	return value;
}

/* Stores a new value in a node of a chain the caller holds locked; returns
 * the one it replaces. */
static void *swap_value(struct node *n, void *value)
{
	/* relaxed: only bucket holders write a value */
	void *prev = atomic_load_explicit(&n->value, memory_order_relaxed);
	ann_acquire(n); /* prev's hand-over, for the caller */
	ann_release(n); /* value's, for whoever gets it */
	/* release: pairs with value_of()'s acquire load */
	atomic_store_explicit(&n->value, value, memory_order_release);
	return prev;
}

/* Tables from this size on get their own mapping (no heap fragmentation,
 * and munmap gives the memory back at once). The table that create makes
 * for a large hint also asks for transparent huge pages and is faulted in
 * there, so that a get's bucket load rarely misses the TLB; a table made
 * by a resize is not, since faulting in a huge page (zeroing 2 MB, maybe
 * compacting memory first) would stall the put that touches it. */
#define BIG_TABLE_BYTES ((size_t)2 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static void fault_in_huge(void *p, size_t bytes)
{
	madvise(p, bytes, MADV_HUGEPAGE); /* a hint; fine if refused */
	if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0)
		return;
	long page = sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < bytes; off += (size_t)page)
		((volatile char *)p)[off] = 0;
}

static struct table *table_new(size_t buckets, bool at_create)
{
	if (buckets > (SIZE_MAX - sizeof(struct table)) / sizeof(uintptr_t))
		return NULL;
	size_t bytes = sizeof(struct table) + buckets * sizeof(uintptr_t);
	int saved = errno; /* a resize fails inside int-returning calls */
	struct table *t;
	if (bytes < BIG_TABLE_BYTES) {
		t = calloc(1, bytes);
	} else {
		t = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (t == MAP_FAILED) {
			t = NULL;
		} else {
			if (at_create)
				fault_in_huge(t, bytes);
			t->mapped = bytes;
		}
	}
	errno = saved;
	if (!t)
		return NULL;
	ann_internal(t, bytes);
	t->mask = buckets - 1;
	return t;
}

/* Frees a table; also an epoch callback. */
static void table_free(void *p)
{
	struct table *t = p;
	if (t->mapped)
		munmap(t, t->mapped);
	else
		free(t);
}

static struct table *current_table(struct sync_map *m)
{
	/* pairs with the release store that switches tables after a resize */
	return atomic_load_explicit(&m->table, memory_order_acquire);
}

static struct table *next_table(struct table *t)
{
	/* pairs with the release store of start_resize() */
	return atomic_load_explicit(&t->next, memory_order_acquire);
}

static uintptr_t bucket_load(_Atomic uintptr_t *b)
{
	/* pairs with the release stores that publish a chain or mark MOVED */
	return atomic_load_explicit(b, memory_order_acquire);
}

/* ---- bucket locks ------------------------------------------------------- */

/* Locks bucket b and returns its chain head, or returns BUCKET_MOVED
 * without locking. Writers hold a bucket for a few loads and stores (they
 * allocate before locking); a migration holds it while it copies a few
 * nodes. So a waiter spins briefly, then yields. */
static uintptr_t bucket_lock(_Atomic uintptr_t *b)
{
	struct spin_budget budget = SPIN_BUDGET_INIT;
	uint32_t step = 1;
	uintptr_t w = bucket_load(b);
	for (;;) {
		if (w & BUCKET_MOVED)
			return BUCKET_MOVED;
		/* acquire pairs with the release store of bucket_unlock() */
		if (!(w & BUCKET_LOCK) &&
		    atomic_compare_exchange_weak_explicit(b, &w, w | BUCKET_LOCK,
							  memory_order_acquire,
							  memory_order_acquire))
			return w;
		if (w & BUCKET_LOCK) {
			backoff_exp(&budget, &step);
			w = bucket_load(b);
		}
	}
}

/* Publishes `head` as the bucket's chain and unlocks it in one store. */
static void bucket_unlock(_Atomic uintptr_t *b, struct node *head)
{
	/* pairs with bucket_load() (readers) and bucket_lock() (writers) */
	atomic_store_explicit(b, (uintptr_t)head, memory_order_release);
}

/* A writer's place: the locked bucket of the newest table that holds hash h. */
struct locked_bucket {
	_Atomic uintptr_t *bucket;
	struct node *head;
};

static struct locked_bucket lock_bucket_of(struct sync_map *m, uint64_t h)
{
	struct table *t = current_table(m);
	for (;;) {
		_Atomic uintptr_t *b = &t->buckets[h & t->mask];
		uintptr_t w = bucket_lock(b);
		if (w != BUCKET_MOVED)
			return (struct locked_bucket){ b, node_ptr(w) };
		t = next_table(t);
	}
}

/* Finds key in a locked chain; *link is the word that points to it. */
static struct node *chain_find(struct locked_bucket *lb, uint64_t h,
			       const void *key, size_t len,
			       _Atomic(struct node *) **link)
{
	*link = NULL;
	for (struct node *n = lb->head; n; n = next_of(n)) {
		if (node_has_key(n, h, key, len))
			return n;
		*link = &n->next;
	}
	return NULL;
}

/* ---- entry counter ------------------------------------------------------ */

/* How often (in one cell's updates) a writer sums the cells to check the
 * load factor: every update for small tables, every 64 for large ones, so
 * the count overshoots a threshold by at most a quarter of the table. */
static uint64_t check_interval(size_t buckets)
{
	uint64_t every = buckets / (4 * COUNTER_CELLS);
	if (every > CHECK_EVERY_MAX)
		return CHECK_EVERY_MAX;
	uint64_t p = 1;
	while (p * 2 <= every)
		p *= 2;
	return p;
}

/* Adds d to the caller's cell; true when it is time to check the load. */
static bool count_add(struct sync_map *m, int64_t d, size_t buckets)
{
	struct counter_cell *c = &m->cells[thread_tid() % COUNTER_CELLS];
	/* relaxed: a statistic; size() is exact once writers are joined */
	int64_t v = atomic_fetch_add_explicit(&c->n, d, memory_order_relaxed) + d;
	return ((uint64_t)v & (check_interval(buckets) - 1)) == 0;
}

static size_t count_sum(struct sync_map *m)
{
	int64_t sum = 0;
	for (unsigned i = 0; i < COUNTER_CELLS; i++)
		/* relaxed: see count_add() */
		sum += atomic_load_explicit(&m->cells[i].n, memory_order_relaxed);
	return sum > 0 ? (size_t)sum : 0;
}

/* ---- resizing ----------------------------------------------------------- */

static bool migrate_trylock(struct sync_map *m)
{
	/* acquire pairs with migrate_unlock(): the previous migrator's progress */
	return atomic_load_explicit(&m->migrating, memory_order_relaxed) == 0 &&
	       atomic_exchange_explicit(&m->migrating, 1, memory_order_acquire) == 0;
}

static void migrate_unlock(struct sync_map *m)
{
	/* pairs with the acquire of migrate_trylock() */
	atomic_store_explicit(&m->migrating, 0, memory_order_release);
}

/* Private lists a migrated bucket is split into: one per target bucket of
 * the new table (two when it grows, one when it shrinks). */
struct split {
	size_t target[2];
	struct node *list[2];
	unsigned n;
};

static unsigned split_slot(const struct split *s, size_t target)
{
	return s->target[0] == target ? 0 : 1;
}

/* Frees the nodes from n up to stop (or the end), passing each value to
 * free_value if not NULL. Only for nodes no other thread can reach: copies
 * never published, or a map being destroyed; hence the relaxed loads. */
static void free_nodes(struct node *n, struct node *stop, void (*free_value)(void *))
{
	while (n && n != stop) {
		struct node *next = atomic_load_explicit(&n->next, memory_order_relaxed);
		if (free_value)
			free_value(atomic_load_explicit(&n->value, memory_order_relaxed));
		free(n);
		n = next;
	}
}

/* The longest tail of the chain whose nodes all go to one new bucket: it
 * moves as it is; the nodes before it are copied. */
static struct node *last_run(struct node *head, size_t new_mask)
{
	struct node *run = head;
	size_t run_target = head ? head->hash & new_mask : 0;
	for (struct node *n = head; n; n = next_of(n)) {
		if ((n->hash & new_mask) != run_target) {
			run = n;
			run_target = n->hash & new_mask;
		}
	}
	return run;
}

/* Copies the nodes before `run` onto the split lists. False (and nothing
 * allocated) when memory runs out. */
static bool copy_prefix(struct split *s, struct node *head, struct node *run,
			size_t new_mask)
{
	for (struct node *n = head; n != run; n = next_of(n)) {
		ann_acquire(n); /* the key and value's hand-over pass to the copy */
		/* relaxed: values change only under the bucket lock we hold */
		struct node *c = node_new(n->hash, n->key, n->keylen,
					  atomic_load_explicit(&n->value, memory_order_relaxed));
		if (!c) {
			for (unsigned i = 0; i < s->n; i++)
				free_nodes(s->list[i], run, NULL);
			return false;
		}
		ann_release(c);
		unsigned slot = split_slot(s, n->hash & new_mask);
		atomic_init(&c->next, s->list[slot]);
		s->list[slot] = c;
	}
	return true;
}

/* Prepends a list to a bucket of the new table. The list's tail is either a
 * copy or the old chain's NULL tail, so linking it rewires no live link.
 * When the table grows, the bucket is still private: only this bucket's
 * migration fills it, and nobody looks at it before the old bucket says
 * MOVED. When it shrinks, writers may already use it: lock it. */
static void splice_into(_Atomic uintptr_t *b, struct node *list, bool private)
{
	if (!list)
		return;
	if (private) {
		bucket_unlock(b, list); /* a release store; nothing to unlock */
		return;
	}
	uintptr_t w = bucket_lock(b);
	struct node *tail = list;
	for (struct node *n = next_of(tail); n; n = next_of(n))
		tail = n;
	if (w) /* release: an old-chain reader that reaches the tail sees the rest */
		atomic_store_explicit(&tail->next, node_ptr(w), memory_order_release);
	bucket_unlock(b, list);
}

static void retire_list_until(struct node *n, struct node *stop)
{
	while (n != stop) {
		struct node *next = next_of(n);
		epoch_retire_nowait(n, free);
		n = next;
	}
}

/* Moves bucket i of t into nt. False when a copy cannot be allocated: the
 * bucket is then unlocked unchanged. */
static bool migrate_bucket(struct table *t, struct table *nt, size_t i)
{
	_Atomic uintptr_t *b = &t->buckets[i];
	uintptr_t empty = 0;
	/* release: as the MOVED store below (an empty bucket moves in one CAS) */
	if (atomic_compare_exchange_strong_explicit(b, &empty, BUCKET_MOVED,
						    memory_order_release,
						    memory_order_relaxed))
		return true;
	struct node *head = node_ptr(bucket_lock(b)); /* only we set MOVED */
	struct split s = { .target = { i & nt->mask, (i & nt->mask) + t->mask + 1 },
			   .n = nt->mask > t->mask ? 2 : 1 };
	struct node *run = last_run(head, nt->mask);
	if (run)
		s.list[split_slot(&s, run->hash & nt->mask)] = run;
	if (!copy_prefix(&s, head, run, nt->mask)) {
		bucket_unlock(b, head);
		return false;
	}
	for (unsigned k = 0; k < s.n; k++)
		splice_into(&nt->buckets[s.target[k]], s.list[k], nt->mask > t->mask);
	/* release: whoever sees MOVED sees the new buckets spliced above */
	atomic_store_explicit(b, BUCKET_MOVED, memory_order_release);
	retire_list_until(head, run);
	return true;
}

/* Starts loading the first node of bucket i, a few buckets before the
 * migration reaches it: the nodes are scattered, and each would otherwise
 * be a cache miss of its own. */
static void prefetch_chain(struct table *t, size_t i)
{
	if (i > t->mask)
		return;
	/* relaxed: a hint; migrate_bucket() loads the bucket again under its lock */
	struct node *n = node_ptr(atomic_load_explicit(&t->buckets[i], memory_order_relaxed));
	if (n)
		__builtin_prefetch(n);
}

/* Moves up to MIGRATE_STEP buckets of a resize in progress, if no other
 * writer is doing so; switches tables after the last one. */
static void help_migrate(struct sync_map *m)
{
	struct table *t = current_table(m);
	if (!next_table(t) || !migrate_trylock(m))
		return;
	t = current_table(m);
	struct table *nt = next_table(t);
	for (unsigned k = 0; nt && k < MIGRATE_STEP && t->migrated <= t->mask; k++) {
		prefetch_chain(t, t->migrated + PREFETCH_AHEAD);
		if (!migrate_bucket(t, nt, t->migrated))
			break;
		t->migrated++;
	}
	if (nt && t->migrated > t->mask) {
		/* release: pairs with current_table() */
		atomic_store_explicit(&m->table, nt, memory_order_release);
		epoch_retire_nowait(t, table_free);
	}
	migrate_unlock(m);
}

/* Starts a resize of the current table to `buckets` buckets, unless one
 * is in progress. A failed allocation leaves the table as it is. */
static void start_resize(struct sync_map *m, struct table *t, size_t buckets)
{
	if (!migrate_trylock(m))
		return;
	if (current_table(m) == t && !next_table(t)) {
		struct table *nt = table_new(buckets, false);
		if (nt) {
			t->migrated = 0;
			/* release: pairs with next_table() */
			atomic_store_explicit(&t->next, nt, memory_order_release);
		}
	}
	migrate_unlock(m);
}

/* Grows past 3/4 of a bucket per entry, shrinks below 1/8. */
static void check_load(struct sync_map *m)
{
	struct table *t = current_table(m);
	if (next_table(t))
		return;
	size_t buckets = t->mask + 1, n = count_sum(m);
	if (n > buckets - buckets / 4 && buckets <= SIZE_MAX / 2)
		start_resize(m, t, buckets * 2);
	else if (n < buckets / 8 && buckets > m->min_buckets)
		start_resize(m, t, buckets / 2);
}

static void count_and_check(struct sync_map *m, int64_t d)
{
	struct table *t = current_table(m);
	if (count_add(m, d, t->mask + 1))
		check_load(m);
}

/* ---- lookups ------------------------------------------------------------ */

/* Lock-free search; the caller is inside an epoch section. */
static struct node *lookup(struct sync_map *m, uint64_t h, const void *key,
			   size_t len)
{
	struct table *t = current_table(m);
	uintptr_t w = bucket_load(&t->buckets[h & t->mask]);
	while (w & BUCKET_MOVED) {
		t = next_table(t);
		w = bucket_load(&t->buckets[h & t->mask]);
	}
	for (struct node *n = node_ptr(w); n; n = next_of(n))
		if (node_has_key(n, h, key, len))
			return n;
	return NULL;
}

/* ---- public API --------------------------------------------------------- */

static uint64_t random_seed(void *salt)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
		return seed;
	/* no entropy yet (early boot): time and address, still per map */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return XXH3_64bits_withSeed(&ts, sizeof ts, (uint64_t)(uintptr_t)salt);
}

static size_t buckets_for(size_t entries)
{
	size_t b = MIN_BUCKETS;
	while (b - b / 4 < entries && b <= SIZE_MAX / 2)
		b *= 2;
	return b;
}

sync_map_t *sync_map_create(size_t capacity_hint)
{
	struct sync_map *m = aligned_alloc(CACHE_LINE, sizeof *m);
	struct table *t = m ? table_new(buckets_for(capacity_hint), true) : NULL;
	if (!t) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	ann_internal(m, sizeof *m);
	memset(m, 0, sizeof *m);
	m->seed = random_seed(m);
	m->min_buckets = t->mask + 1;
	atomic_init(&m->table, t);
	atomic_init(&m->migrating, 0);
	for (unsigned i = 0; i < COUNTER_CELLS; i++)
		atomic_init(&m->cells[i].n, 0);
	return m;
}

/* Frees the live chains of t: those of buckets that have not moved. */
static void free_table(struct table *t, void (*free_value)(void *))
{
	for (size_t i = 0; i <= t->mask; i++) {
		uintptr_t w = atomic_load_explicit(&t->buckets[i], memory_order_relaxed);
		if (!(w & BUCKET_MOVED)) /* relaxed: not concurrent with use */
			free_nodes(node_ptr(w), NULL, free_value);
	}
	table_free(t);
}

void sync_map_destroy(sync_map_t *m, void (*free_value)(void *))
{
	if (!m)
		return;
	struct table *t = atomic_load_explicit(&m->table, memory_order_relaxed);
	struct table *nt = atomic_load_explicit(&t->next, memory_order_relaxed);
	free_table(t, free_value); /* relaxed loads: not concurrent with use */
	if (nt)
		free_table(nt, free_value);
	free(m);
}

int sync_map_get(sync_map_t *m, const void *key, size_t keylen, void **value)
{
	if (!m || !key_ok(key, keylen) || !value)
		return EINVAL;
	if (!key_fits(keylen))
		return ENOENT;
	uint64_t h = hash_key(m, key, keylen);
	sync_epoch_enter();
	struct node *n = lookup(m, h, key, keylen);
	if (n)
		*value = value_of(n);
	sync_epoch_exit();
	return n ? 0 : ENOENT;
}

/* Links a fresh node at the head of a locked chain and unlocks it. */
static void link_fresh(struct locked_bucket *lb, struct node *fresh)
{
	/* relaxed: fresh is published by bucket_unlock's release */
	atomic_store_explicit(&fresh->next, lb->head, memory_order_relaxed);
	ann_release(fresh); /* bucket_unlock publishes it */
	bucket_unlock(lb->bucket, fresh);
}

/* put (replace = true), insert and get_or_insert (replace = false: EEXIST,
 * and *old = the value present, when the key is there). */
static int store_entry(struct sync_map *m, const void *key, size_t len,
		       void *value, void **old, bool replace)
{
	if (!m || !key_ok(key, len) || !value)
		return EINVAL;
	if (!key_fits(len))
		return ENOMEM;
	uint64_t h = hash_key(m, key, len);
	struct node *fresh = NULL;
	int rc = 0;
	bool added = false;
	sync_epoch_enter();
	help_migrate(m);
	struct node *n = lookup(m, h, key, len);
	TEST_HOOK("map_store:looked_up"); /* others may add or remove the key now */
	if (n && !replace) { /* present: as a get, without the lock */
		if (old)
			*old = value_of(n);
		rc = EEXIST;
	} else if (!n && !(fresh = node_new(h, key, len, value))) {
		rc = ENOMEM;
	}
	while (rc == 0) {
		struct locked_bucket lb = lock_bucket_of(m, h);
		_Atomic(struct node *) *link;
		n = chain_find(&lb, h, key, len, &link);
		if (n) {
			void *prev = replace ? swap_value(n, value) : value_of(n);
			bucket_unlock(lb.bucket, lb.head);
			if (old)
				*old = prev;
			rc = replace ? 0 : EEXIST;
			break;
		}
		if (fresh) {
			link_fresh(&lb, fresh);
			fresh = NULL;
			added = true;
			if (old)
				*old = NULL;
			break;
		}
		bucket_unlock(lb.bucket, lb.head); /* gone meanwhile: allocate */
		if (!(fresh = node_new(h, key, len, value)))
			rc = ENOMEM;
	}
	free(fresh);
	if (added)
		count_and_check(m, 1);
	sync_epoch_exit();
	return rc;
}

int sync_map_put(sync_map_t *m, const void *key, size_t keylen, void *value,
		 void **old)
{
	return store_entry(m, key, keylen, value, old, true);
}

int sync_map_insert(sync_map_t *m, const void *key, size_t keylen, void *value)
{
	return store_entry(m, key, keylen, value, NULL, false);
}

int sync_map_get_or_insert(sync_map_t *m, const void *key, size_t keylen,
			   void *value, void **actual)
{
	int rc = store_entry(m, key, keylen, value, actual, false);
	if (rc == 0 && actual)
		*actual = value;
	return rc;
}

/* Unlinks n, found through *link (NULL: n heads the chain), from a locked
 * chain and unlocks it. */
static void unlink_node(struct locked_bucket *lb, _Atomic(struct node *) *link,
			struct node *n)
{
	struct node *next = next_of(n);
	if (link) { /* release: pairs with next_of() in readers */
		atomic_store_explicit(link, next, memory_order_release);
		bucket_unlock(lb->bucket, lb->head);
	} else {
		bucket_unlock(lb->bucket, next);
	}
}

/* remove (expected NULL: any value; desired NULL), remove_if (desired NULL)
 * and replace (desired not NULL). ENOENT when the key is absent, EAGAIN
 * when its value is not expected; else *old = the value it held. */
static int change_entry(struct sync_map *m, const void *key, size_t len,
			void *expected, void *desired, void **old)
{
	if (!key_fits(len))
		return ENOENT; /* no such key can be stored */
	uint64_t h = hash_key(m, key, len);
	sync_epoch_enter();
	help_migrate(m);
	struct locked_bucket lb = lock_bucket_of(m, h);
	_Atomic(struct node *) *link;
	struct node *n = chain_find(&lb, h, key, len, &link);
	/* relaxed: only bucket holders write a value */
	void *prev = n ? atomic_load_explicit(&n->value, memory_order_relaxed) : NULL;
	int rc = !n ? ENOENT : expected && prev != expected ? EAGAIN : 0;
	if (rc) {
		bucket_unlock(lb.bucket, lb.head);
	} else if (desired) {
		swap_value(n, desired);
		bucket_unlock(lb.bucket, lb.head);
	} else {
		unlink_node(&lb, link, n);
		ann_acquire(n); /* the value's last writer's ann_release */
		count_and_check(m, -1);
		epoch_retire_nowait(n, free); /* never waits for readers (nor memory) */
	}
	if (rc == 0 && old)
		*old = prev;
	sync_epoch_exit();
	return rc;
}

int sync_map_remove(sync_map_t *m, const void *key, size_t keylen, void **old)
{
	if (!m || !key_ok(key, keylen))
		return EINVAL;
	return change_entry(m, key, keylen, NULL, NULL, old);
}

int sync_map_replace(sync_map_t *m, const void *key, size_t keylen,
		     void *expected, void *desired)
{
	if (!m || !key_ok(key, keylen) || !expected || !desired)
		return EINVAL;
	return change_entry(m, key, keylen, expected, desired, NULL);
}

int sync_map_remove_if(sync_map_t *m, const void *key, size_t keylen,
		       void *expected)
{
	if (!m || !key_ok(key, keylen) || !expected)
		return EINVAL;
	return change_entry(m, key, keylen, expected, NULL, NULL);
}

size_t sync_map_size(sync_map_t *m)
{
	return m ? count_sum(m) : 0;
}

/* ---- iteration ---------------------------------------------------------- */

typedef int (*visit_fn)(const void *key, size_t keylen, void *value, void *arg);

/* Nodes to visit: those with (hash & mask) == val. A chain reached through
 * a moved bucket, or an old chain whose tail was linked into a new bucket,
 * may hold nodes of other buckets; the filter skips them, so that every
 * node is visited from exactly one bucket of the starting table. */
struct filter {
	size_t mask, val;
};

static int visit_table(struct table *t, struct filter f, visit_fn fn, void *arg);

static int visit_chain(struct node *n, struct filter f, visit_fn fn, void *arg)
{
	for (; n; n = next_of(n)) {
		if ((n->hash & f.mask) != f.val)
			continue;
		int rc = fn(n->key, n->keylen, value_of(n), arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* Visits the buckets of t that can hold nodes passing f. */
static int visit_table(struct table *t, struct filter f, visit_fn fn, void *arg)
{
	size_t stride = f.mask + 1, first = f.val & t->mask;
	if (t->mask <= f.mask)
		stride = t->mask + 1; /* one bucket: first */
	for (size_t i = first; i <= t->mask; i += stride) {
		struct filter g = t->mask > f.mask ? (struct filter){ t->mask, i } : f;
		uintptr_t w = bucket_load(&t->buckets[i]);
		int rc = (w & BUCKET_MOVED) ? visit_table(next_table(t), g, fn, arg)
					    : visit_chain(node_ptr(w), g, fn, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int sync_map_foreach(sync_map_t *m, visit_fn fn, void *arg)
{
	if (!m || !fn)
		return EINVAL;
	sync_epoch_enter();
	struct table *t = current_table(m);
	int rc = 0;
	for (size_t i = 0; i <= t->mask && rc == 0; i++)
		rc = visit_table(t, (struct filter){ t->mask, i }, fn, arg);
	sync_epoch_exit();
	return rc;
}
