/* Map rows: sync_map (one-cache-line buckets, three inline slots for keys
 * of up to 8 bytes and a chain for the rest, lock-free get validating the
 * bucket's control word, a lock bit per bucket for writers, incremental
 * resize, sync_epoch reclamation) against
 * - ck_ht (Concurrency Kit's open-addressing table) in CK_HT_MODE_BYTESTRING:
 *   single writer, many readers, so its writers are serialized by one
 *   ck_spinlock_t (ck_ht_init(3): "undefined in the presence of concurrent
 *   writers"); readers run ck_ht_get_spmc inside ck_epoch_begin/end (one
 *   registered record per thread, one section per get); replaced tables and
 *   removed key copies are freed through ck_epoch_call and ck_epoch_poll, as
 *   ck's own regressions/ck_ht/benchmark/parallel_bytestring.c frees its
 *   tables (that benchmark never frees keys: they are its dictionary's).
 *   ck_ht stores a pointer to the caller's key, so each put mallocs the key
 *   copy a user must keep (with its ck_epoch_entry_t: malloc(24), the same
 *   32-byte chunk as malloc(8)); Debian's libck is built without pointer
 *   packing, so a slot (key pointer, value, length, hash) is 32 bytes, and
 *   ck_ht keeps the load at most 1/2 (it doubles past that, stop-the-world,
 *   inside the put);
 * - liburcu's rculfhash, memb flavour (inline, with _LGPL_SOURCE, as its
 *   users build): cds_lfht_new with CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
 *   every thread registered, lookups under rcu_read_lock, removed nodes freed
 *   with call_rcu; a node is the cds_lfht_node, value, rcu_head and the key
 *   bytes, one malloc;
 * - the map a user would write in ten minutes: a chained table (node: next,
 *   hash, value, key length, key bytes; buckets double past one entry per
 *   bucket) under one pthread_mutex ("mutex+chain"), and the same under
 *   glibc's default pthread_rwlock, gets taking the read lock
 *   ("rwlock+chain"); nodes malloc'd and freed outside the lock;
 * - oneTBB's tbb::concurrent_hash_map<uint64_t, void *> ("tbb::conc_hash_map",
 *   the map C++ users reach for; bench/peer_tbb.cc, where configure finds
 *   libtbb-dev): get is find with a const_accessor (it takes the element's
 *   reader lock, a write to shared memory), remove is find with an accessor
 *   and erase, get_or_insert is insert with a const_accessor; TBB's default
 *   hashing (std::hash, the identity for integers, on keys that are
 *   splitmix64 outputs), as its users write it; throughput rows only.
 * Every other peer hashes with the same XXH3 (xxhash.h, inlined): ck_ht and
 * rculfhash with a random seed per map (as sync_map), the ten-minute maps
 * with a FIXED seed, which is what such a map does and what the flooding
 * rows exploit. Keys are 8 bytes, splitmix64 of the key index, computed where
 * used (the growth and flooding rows read them from arrays built once);
 * values are never freed (the
 * caller owns them). Each implementation is called through the same
 * function pointers from the same loop.
 *
 * Rows: 100% get, 90% get / 10% put+remove, 50/50 at 1, 2 and 8 threads on
 * 10^6 keys, half present; get-or-insert as a word count does it, at 1,
 * 2 and 8 threads (a vocabulary of 2^14 keys into an empty map sized for
 * them, hint 2^14, so nearly every call finds its key):
 * sync_map_get_or_insert; ck_ht: get, then under the writers' lock put,
 * and get again if present; cds_lfht: lookup, then cds_lfht_add_unique;
 * the ten-minute maps: find and link under the lock (rwlock: find under
 * the read lock first); hash flooding (10^5 keys colliding under the
 * fixed seed against 10^5 random keys); growth from an empty map to 10^6
 * keys; and, outside the timed table, bytes per entry at 10^6 entries. */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <ck_epoch.h>
#include <ck_ht.h>
#include <ck_spinlock.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h> /* after the flavour, as its header asks */

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <sync/epoch.h>
#include <sync/map.h>

#include "internal.h" /* now_ns, median, and the latency histogram */
#include "peers.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* The key space of the throughput rows; half of it is in the map. */
#define KEYS 1000000u
#define KEY_LEN 8u

/* Threads a throughput workload supports (their tallies are in the run's
 * shared data). */
#define MAX_THREADS 8

/* Hash flooding: FLOOD_KEYS keys whose XXH3 under FIXED_SEED share their
 * low FLOOD_BITS bits, against as many random keys. */
#define FLOOD_KEYS 100000u
#define FLOOD_BITS 12
#define FIXED_SEED UINT64_C(0x2545f4914f6cdd1d)

/* Keys a growth run puts into a map created with hint 0. */
#define GROW_KEYS KEYS

/* ck_ht: a writer runs ck_epoch_poll (reclaims what is safe) every this
 * many of its removes and puts. */
#define CK_POLL_EVERY 64u

/* Default rounds per side of the map rows: each run forks and prefills a
 * map of 5 x 10^5 entries before its timed part, so 15 rounds would take
 * several minutes; --map-rounds changes it, --rounds lowers it. */
#define MAP_ROUNDS_DEFAULT 5

/* The cap of every flood run. The ten-minute map on crafted keys hits it:
 * measured once with a 120 s cap, it took 62 us per op (12 s a run, 490x
 * its random-key time) on the 2-vCPU development machine; 5 s already
 * shows a collapse of more than 100x. */
#define FLOOD_CAP_S 5.0

/* The shortest cap of a map run: it also covers the prefill (the
 * calibration run's cap is round_ms + this). */
#define MAP_CAP_MIN_S 5.0

/* ---- Keys ------------------------------------------------------------------------- */

/* The throughput and growth rows' keys: splitmix64 of the index (a
 * bijection, so all distinct), built once in the parent before any fork;
 * the forked runs read them. */
static uint64_t *map_keys;

/* The flooding rows' keys, also built in the parent (only when a flood row
 * will run): crafted ones, and random ones (the first of map_keys). */
static uint64_t *flood_crafted;
static double flood_search_s;

static uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Key i, computed where it is used (as map_keys[i]): an array lookup
 * would add a cache miss to every operation of every map. */
static inline uint64_t key_of(uint64_t i)
{
	return splitmix64(i);
}

/* The value stored under key i: never NULL, below 2^48 (ck_ht packs bits
 * above). */
static void *value_of(uint64_t i)
{
	return (void *)(uintptr_t)((i + 1) << 4);
}

/* wyrand: the threads' PRNG, one 64-bit multiply per number. */
static uint64_t next_random(uint64_t *s)
{
	*s += UINT64_C(0xa0761d6478bd642f);
	__uint128_t t = (__uint128_t)*s * (*s ^ UINT64_C(0xe7037ed1a0b428db));
	return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* A uniform number below `span` from the top 32 bits of r. */
static uint32_t scale(uint64_t r, uint32_t span)
{
	return (uint32_t)(((r >> 32) * span) >> 32);
}

/* The growth rows time every put: the TSC where there is one. */
static uint64_t put_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return now_ns();
#endif
}

static uint64_t random_seed(void)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		seed = splitmix64(now_ns());
	return seed;
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 1;
	while (p < n)
		p *= 2;
	return p;
}

/* ---- The implementations ------------------------------------------------------------ */

/* A map behind function pointers. The run's object (base.size bytes) holds
 * the pointer create() returned. A thread calls thread_start (where not
 * NULL) before its first operation and thread_end after its last. insert
 * puts an absent key: 0, or EEXIST (the key was there: a failed check), or
 * ENOMEM. remove: 0 and *old, or ENOENT. get_or_insert: 0 (inserted) or
 * EEXIST, *actual the value now in the map; or ENOMEM. size: exact when
 * quiescent.
 * quiesce: runs every deferred free (memory row). The harness sees only
 * base. */
struct map_impl {
	struct bench_lock base;
	int id; /* index into the growth and memory results */
	void *(*create)(size_t hint);
	void (*thread_start)(void *m);
	void (*thread_end)(void *m);
	int (*get)(void *m, const void *key, size_t len, void **value);
	int (*insert)(void *m, const void *key, size_t len, void *value);
	int (*remove)(void *m, const void *key, size_t len, void **old);
	int (*get_or_insert)(void *m, const void *key, size_t len, void *value, void **actual);
	size_t (*size)(void *m);
	void (*quiesce)(void *m);
};

enum { ID_OURS, ID_CK, ID_LFHT, ID_MUTEX, ID_RWLOCK, ID_TBB, IMPLS };

static const struct map_impl *impl_of(const struct bench_objects *run)
{
	return (const struct map_impl *)run->impl; /* base is the first member */
}

static void *map_of(const struct bench_objects *run)
{
	return *(void **)run->obj[0];
}

static void no_init(void *obj)
{
	(void)obj; /* the workload's setup creates the map */
}

/* ours */

static void *ours_create(size_t hint)
{
	return sync_map_create(hint);
}

static int ours_get(void *m, const void *key, size_t len, void **value)
{
	return sync_map_get(m, key, len, value);
}

static int ours_insert(void *m, const void *key, size_t len, void *value)
{
	void *old;
	int err = sync_map_put(m, key, len, value, &old);
	return err ? err : old ? EEXIST : 0;
}

static int ours_remove(void *m, const void *key, size_t len, void **old)
{
	return sync_map_remove(m, key, len, old);
}

static int ours_get_or_insert(void *m, const void *key, size_t len, void *value,
			      void **actual)
{
	return sync_map_get_or_insert(m, key, len, value, actual);
}

static size_t ours_size(void *m)
{
	return sync_map_size(m);
}

static void ours_quiesce(void *m)
{
	(void)m;
	sync_epoch_barrier();
}

/* ck_ht: tables and key copies carry a ck_epoch_entry_t in front, as in
 * ck's regression. */

struct ck_map {
	ck_ht_t ht;
	ck_epoch_t epoch;
	_Alignas(LINE) ck_spinlock_t write_lock; /* ck_ht is single-writer */
};

struct ck_key {
	ck_epoch_entry_t epoch_entry;
	unsigned char bytes[];
};

/* The calling thread's epoch record and its writes since the last poll. */
static _Thread_local ck_epoch_record_t *ck_record;
static _Thread_local unsigned ck_writes;

static void ck_free_entry(ck_epoch_entry_t *e)
{
	free(e);
}

static void *ck_table_malloc(size_t r)
{
	ck_epoch_entry_t *b = malloc(sizeof *b + r);
	return b ? b + 1 : NULL;
}

/* defer: the table was replaced by a grow; readers may still be in it.
 * Called by the writer (holding write_lock) with its own record. */
static void ck_table_free(void *p, size_t size, bool defer)
{
	ck_epoch_entry_t *e = (ck_epoch_entry_t *)p - 1;
	(void)size;
	if (defer)
		ck_epoch_call(ck_record, e, ck_free_entry);
	else
		free(e);
}

static struct ck_malloc ck_allocator = { .malloc = ck_table_malloc, .free = ck_table_free };

/* ck_ht hashes with this callback when it grows; the operations below pass
 * the same hash in. */
static void ck_hash_cb(ck_ht_hash_t *h, const void *key, size_t len, uint64_t seed)
{
	h->value = XXH3_64bits_withSeed(key, len, seed);
}

static void *ck_create(size_t hint)
{
	struct ck_map *m = aligned_alloc(LINE, (sizeof *m + LINE - 1) / LINE * LINE);
	if (!m)
		return NULL;
	ck_epoch_init(&m->epoch);
	ck_spinlock_init(&m->write_lock);
	if (!ck_ht_init(&m->ht, CK_HT_MODE_BYTESTRING, ck_hash_cb, &ck_allocator, hint,
			random_seed())) {
		free(m);
		return NULL;
	}
	return m;
}

/* Registers the thread's record (never freed: ck keeps records). */
static void ck_thread_start(void *obj)
{
	struct ck_map *m = obj;
	ck_epoch_record_t *r = aligned_alloc(LINE, (sizeof *r + LINE - 1) / LINE * LINE);
	if (!r)
		abort(); /* the forked run fails */
	ck_epoch_register(&m->epoch, r, NULL);
	ck_record = r;
	ck_writes = 0;
}

static void ck_thread_end(void *obj)
{
	(void)obj;
	ck_epoch_unregister(ck_record);
	ck_record = NULL;
}

static ck_ht_hash_t ck_hash(struct ck_map *m, const void *key, size_t len)
{
	ck_ht_hash_t h = { XXH3_64bits_withSeed(key, len, m->ht.seed) };
	return h;
}

static int ck_get(void *obj, const void *key, size_t len, void **value)
{
	struct ck_map *m = obj;
	ck_ht_hash_t h = ck_hash(m, key, len);
	ck_ht_entry_t e;
	ck_ht_entry_key_set(&e, key, (uint16_t)len);
	ck_epoch_begin(ck_record, NULL);
	bool found = ck_ht_get_spmc(&m->ht, h, &e);
	ck_epoch_end(ck_record, NULL);
	if (!found)
		return ENOENT;
	*value = ck_ht_entry_value(&e);
	return 0;
}

static void ck_after_write(void)
{
	if (++ck_writes % CK_POLL_EVERY == 0)
		ck_epoch_poll(ck_record);
}

/* Puts a copy of key unless present: 0, or EEXIST with the value present
 * (found under the writers' lock), or ENOMEM (also a failed grow). */
static int ck_put_new(struct ck_map *m, const void *key, size_t len, void *value,
		      void **actual)
{
	ck_ht_hash_t h = ck_hash(m, key, len);
	struct ck_key *k = malloc(sizeof *k + len);
	ck_ht_entry_t e;
	if (!k)
		return ENOMEM;
	memcpy(k->bytes, key, len);
	ck_ht_entry_set(&e, h, k->bytes, (uint16_t)len, value);
	ck_spinlock_lock(&m->write_lock);
	bool stored = ck_ht_put_spmc(&m->ht, h, &e), present = false;
	if (!stored) { /* present, or a failed grow */
		ck_ht_entry_key_set(&e, key, (uint16_t)len);
		present = ck_ht_get_spmc(&m->ht, h, &e);
	}
	ck_spinlock_unlock(&m->write_lock);
	if (!stored) {
		free(k);
		if (present)
			*actual = ck_ht_entry_value(&e);
		return present ? EEXIST : ENOMEM;
	}
	*actual = value;
	ck_after_write();
	return 0;
}

static int ck_insert(void *obj, const void *key, size_t len, void *value)
{
	void *actual;
	return ck_put_new(obj, key, len, value, &actual);
}

/* The reader's get first; a miss puts under the writers' lock. */
static int ck_get_or_insert(void *obj, const void *key, size_t len, void *value,
			    void **actual)
{
	if (ck_get(obj, key, len, actual) == 0)
		return EEXIST;
	return ck_put_new(obj, key, len, value, actual);
}

static int ck_remove(void *obj, const void *key, size_t len, void **old)
{
	struct ck_map *m = obj;
	ck_ht_hash_t h = ck_hash(m, key, len);
	ck_ht_entry_t e;
	ck_ht_entry_key_set(&e, key, (uint16_t)len);
	ck_spinlock_lock(&m->write_lock);
	bool removed = ck_ht_remove_spmc(&m->ht, h, &e);
	ck_spinlock_unlock(&m->write_lock);
	if (!removed)
		return ENOENT;
	*old = ck_ht_entry_value(&e);
	/* readers may still compare against the key copy */
	struct ck_key *k = (struct ck_key *)((unsigned char *)ck_ht_entry_key(&e) -
					     offsetof(struct ck_key, bytes));
	ck_epoch_call(ck_record, &k->epoch_entry, ck_free_entry);
	ck_after_write();
	return 0;
}

static size_t ck_size(void *obj)
{
	return (size_t)ck_ht_count(&((struct ck_map *)obj)->ht);
}

static void ck_quiesce(void *obj)
{
	(void)obj;
	ck_epoch_barrier(ck_record);
}

/* liburcu's rculfhash, memb flavour */

struct lf_map {
	struct cds_lfht *ht;
	uint64_t seed;
};

struct lf_node {
	struct cds_lfht_node node;
	void *value;
	struct rcu_head rcu;
	size_t len;
	unsigned char key[];
};

struct lf_key {
	const void *key;
	size_t len;
};

static int lf_match(struct cds_lfht_node *node, const void *arg)
{
	const struct lf_node *n = caa_container_of(node, struct lf_node, node);
	const struct lf_key *k = arg;
	return n->len == k->len && memcmp(n->key, k->key, k->len) == 0;
}

static void lf_free(struct rcu_head *head)
{
	free(caa_container_of(head, struct lf_node, rcu));
}

static void *lf_create(size_t hint)
{
	struct lf_map *m = malloc(sizeof *m);
	if (!m)
		return NULL;
	m->seed = random_seed();
	m->ht = cds_lfht_new_flavor(pow2_at_least(hint), 1, 0,
				    CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				    &urcu_memb_flavor, NULL);
	if (!m->ht) {
		free(m);
		return NULL;
	}
	return m;
}

static void lf_thread_start(void *obj)
{
	(void)obj;
	urcu_memb_register_thread();
}

static void lf_thread_end(void *obj)
{
	(void)obj;
	urcu_memb_unregister_thread();
}

static int lf_get(void *obj, const void *key, size_t len, void **value)
{
	struct lf_map *m = obj;
	unsigned long h = (unsigned long)XXH3_64bits_withSeed(key, len, m->seed);
	struct lf_key k = { key, len };
	struct cds_lfht_iter it;
	urcu_memb_read_lock();
	cds_lfht_lookup(m->ht, h, lf_match, &k, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	if (n)
		*value = caa_container_of(n, struct lf_node, node)->value;
	urcu_memb_read_unlock();
	return n ? 0 : ENOENT;
}

/* Links a new node for key unless one is there: 0, or EEXIST with the
 * value of the node cds_lfht_add_unique found; ENOMEM. */
static int lf_add_unique(struct lf_map *m, const void *key, size_t len, void *value,
			 void **actual)
{
	unsigned long h = (unsigned long)XXH3_64bits_withSeed(key, len, m->seed);
	struct lf_key k = { key, len };
	struct lf_node *n = malloc(sizeof *n + len);
	if (!n)
		return ENOMEM;
	cds_lfht_node_init(&n->node);
	n->value = value;
	n->len = len;
	memcpy(n->key, key, len);
	urcu_memb_read_lock();
	struct cds_lfht_node *r = cds_lfht_add_unique(m->ht, h, lf_match, &k, &n->node);
	*actual = caa_container_of(r, struct lf_node, node)->value;
	urcu_memb_read_unlock();
	if (r != &n->node) {
		free(n); /* never published */
		return EEXIST;
	}
	return 0;
}

static int lf_insert(void *obj, const void *key, size_t len, void *value)
{
	void *actual;
	return lf_add_unique(obj, key, len, value, &actual);
}

/* A lookup first; on a miss, cds_lfht_add_unique. */
static int lf_get_or_insert(void *obj, const void *key, size_t len, void *value,
			    void **actual)
{
	if (lf_get(obj, key, len, actual) == 0)
		return EEXIST;
	return lf_add_unique(obj, key, len, value, actual);
}

static int lf_remove(void *obj, const void *key, size_t len, void **old)
{
	struct lf_map *m = obj;
	unsigned long h = (unsigned long)XXH3_64bits_withSeed(key, len, m->seed);
	struct lf_key k = { key, len };
	struct cds_lfht_iter it;
	struct lf_node *n = NULL;
	urcu_memb_read_lock();
	cds_lfht_lookup(m->ht, h, lf_match, &k, &it);
	struct cds_lfht_node *found = cds_lfht_iter_get_node(&it);
	if (found && cds_lfht_del(m->ht, found) == 0) {
		n = caa_container_of(found, struct lf_node, node);
		*old = n->value;
	}
	urcu_memb_read_unlock();
	if (!n)
		return ENOENT;
	urcu_memb_call_rcu(&n->rcu, lf_free);
	return 0;
}

static size_t lf_size(void *obj)
{
	struct lf_map *m = obj;
	long before, after;
	unsigned long count;
	urcu_memb_read_lock();
	cds_lfht_count_nodes(m->ht, &before, &count, &after);
	urcu_memb_read_unlock();
	return count;
}

static void lf_quiesce(void *obj)
{
	(void)obj;
	urcu_memb_barrier();
}

/* The ten-minute map, under a mutex or a rwlock */

struct chain_node {
	struct chain_node *next;
	uint64_t hash;
	void *value;
	size_t len;
	unsigned char key[];
};

struct chain_map {
	union {
		pthread_mutex_t mutex;
		pthread_rwlock_t rwlock;
	} lock;
	struct chain_node **buckets;
	size_t mask;
	size_t count;
};

static uint64_t chain_hash(const void *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, FIXED_SEED);
}

static struct chain_map *chain_create(size_t hint)
{
	struct chain_map *m = malloc(sizeof *m);
	size_t n = pow2_at_least(hint < 16 ? 16 : hint);
	if (!m)
		return NULL;
	m->buckets = calloc(n, sizeof *m->buckets);
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	m->mask = n - 1;
	m->count = 0;
	return m;
}

/* The link that points to the key's node, or the chain's NULL tail. */
static struct chain_node **chain_find(struct chain_map *m, uint64_t h, const void *key,
				      size_t len)
{
	struct chain_node **p = &m->buckets[h & m->mask];
	for (; *p; p = &(*p)->next)
		if ((*p)->hash == h && (*p)->len == len && memcmp((*p)->key, key, len) == 0)
			break;
	return p;
}

/* Doubles the buckets: every node is moved, all under the lock. */
static void chain_grow(struct chain_map *m)
{
	size_t n = (m->mask + 1) * 2;
	struct chain_node **b = calloc(n, sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i <= m->mask; i++) {
		for (struct chain_node *c = m->buckets[i], *next; c; c = next) {
			next = c->next;
			c->next = b[c->hash & (n - 1)];
			b[c->hash & (n - 1)] = c;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->mask = n - 1;
}

static int chain_get_locked(struct chain_map *m, uint64_t h, const void *key, size_t len,
			    void **value)
{
	struct chain_node *n = *chain_find(m, h, key, len);
	if (!n)
		return ENOENT;
	*value = n->value;
	return 0;
}

/* put: links n, or replaces the value of the key's node (then returns the
 * unused n through *spare, and EEXIST). */
static int chain_put_locked(struct chain_map *m, struct chain_node *n,
			    struct chain_node **spare)
{
	struct chain_node **p = chain_find(m, n->hash, n->key, n->len);
	*spare = NULL;
	if (*p) {
		(*p)->value = n->value;
		*spare = n;
		return EEXIST;
	}
	n->next = NULL;
	*p = n;
	if (++m->count > m->mask + 1)
		chain_grow(m);
	return 0;
}

static struct chain_node *chain_remove_locked(struct chain_map *m, uint64_t h,
					      const void *key, size_t len)
{
	struct chain_node **p = chain_find(m, h, key, len), *n = *p;
	if (n) {
		*p = n->next;
		m->count--;
	}
	return n;
}

static struct chain_node *chain_node_new(const void *key, size_t len, void *value)
{
	struct chain_node *n = malloc(sizeof *n + len);
	if (n) {
		n->hash = chain_hash(key, len);
		n->value = value;
		n->len = len;
		memcpy(n->key, key, len);
	}
	return n;
}

/* get_or_insert under the exclusive lock: a new node is allocated there
 * (rarely: most calls find the key). */
static int chain_get_or_insert_locked(struct chain_map *m, uint64_t h, const void *key,
				      size_t len, void *value, void **actual)
{
	struct chain_node **p = chain_find(m, h, key, len);
	if (*p) {
		*actual = (*p)->value;
		return EEXIST;
	}
	struct chain_node *n = chain_node_new(key, len, value), *spare;
	if (!n)
		return ENOMEM;
	*actual = value;
	return chain_put_locked(m, n, &spare); /* absent: links n */
}

static void *mutex_create(size_t hint)
{
	struct chain_map *m = chain_create(hint);
	if (m)
		pthread_mutex_init(&m->lock.mutex, NULL);
	return m;
}

static int mutex_get(void *obj, const void *key, size_t len, void **value)
{
	struct chain_map *m = obj;
	uint64_t h = chain_hash(key, len);
	pthread_mutex_lock(&m->lock.mutex);
	int err = chain_get_locked(m, h, key, len, value);
	pthread_mutex_unlock(&m->lock.mutex);
	return err;
}

static int mutex_insert(void *obj, const void *key, size_t len, void *value)
{
	struct chain_map *m = obj;
	struct chain_node *n = chain_node_new(key, len, value), *spare;
	if (!n)
		return ENOMEM;
	pthread_mutex_lock(&m->lock.mutex);
	int err = chain_put_locked(m, n, &spare);
	pthread_mutex_unlock(&m->lock.mutex);
	free(spare);
	return err;
}

static int mutex_remove(void *obj, const void *key, size_t len, void **old)
{
	struct chain_map *m = obj;
	uint64_t h = chain_hash(key, len);
	pthread_mutex_lock(&m->lock.mutex);
	struct chain_node *n = chain_remove_locked(m, h, key, len);
	pthread_mutex_unlock(&m->lock.mutex);
	if (!n)
		return ENOENT;
	*old = n->value;
	free(n);
	return 0;
}

static int mutex_get_or_insert(void *obj, const void *key, size_t len, void *value,
			       void **actual)
{
	struct chain_map *m = obj;
	uint64_t h = chain_hash(key, len);
	pthread_mutex_lock(&m->lock.mutex);
	int err = chain_get_or_insert_locked(m, h, key, len, value, actual);
	pthread_mutex_unlock(&m->lock.mutex);
	return err;
}

static size_t mutex_size(void *obj)
{
	struct chain_map *m = obj;
	pthread_mutex_lock(&m->lock.mutex);
	size_t n = m->count;
	pthread_mutex_unlock(&m->lock.mutex);
	return n;
}

static void *rwlock_create(size_t hint)
{
	struct chain_map *m = chain_create(hint);
	if (m)
		pthread_rwlock_init(&m->lock.rwlock, NULL);
	return m;
}

static int rwlock_get(void *obj, const void *key, size_t len, void **value)
{
	struct chain_map *m = obj;
	uint64_t h = chain_hash(key, len);
	pthread_rwlock_rdlock(&m->lock.rwlock);
	int err = chain_get_locked(m, h, key, len, value);
	pthread_rwlock_unlock(&m->lock.rwlock);
	return err;
}

static int rwlock_insert(void *obj, const void *key, size_t len, void *value)
{
	struct chain_map *m = obj;
	struct chain_node *n = chain_node_new(key, len, value), *spare;
	if (!n)
		return ENOMEM;
	pthread_rwlock_wrlock(&m->lock.rwlock);
	int err = chain_put_locked(m, n, &spare);
	pthread_rwlock_unlock(&m->lock.rwlock);
	free(spare);
	return err;
}

static int rwlock_remove(void *obj, const void *key, size_t len, void **old)
{
	struct chain_map *m = obj;
	uint64_t h = chain_hash(key, len);
	pthread_rwlock_wrlock(&m->lock.rwlock);
	struct chain_node *n = chain_remove_locked(m, h, key, len);
	pthread_rwlock_unlock(&m->lock.rwlock);
	if (!n)
		return ENOENT;
	*old = n->value;
	free(n);
	return 0;
}

static int rwlock_get_or_insert(void *obj, const void *key, size_t len, void *value,
				void **actual)
{
	struct chain_map *m = obj;
	if (rwlock_get(obj, key, len, actual) == 0)
		return EEXIST;
	uint64_t h = chain_hash(key, len);
	pthread_rwlock_wrlock(&m->lock.rwlock);
	int err = chain_get_or_insert_locked(m, h, key, len, value, actual);
	pthread_rwlock_unlock(&m->lock.rwlock);
	return err;
}

static size_t rwlock_size(void *obj)
{
	struct chain_map *m = obj;
	pthread_rwlock_rdlock(&m->lock.rwlock);
	size_t n = m->count;
	pthread_rwlock_unlock(&m->lock.rwlock);
	return n;
}

#define MAP_BASE(n) { .name = n, .size = sizeof(void *), .init = no_init }

static const struct map_impl sync_map = {
	.base = MAP_BASE("sync_map"), .id = ID_OURS, .create = ours_create,
	.get = ours_get, .insert = ours_insert, .remove = ours_remove,
	.get_or_insert = ours_get_or_insert, .size = ours_size, .quiesce = ours_quiesce,
};

static const struct map_impl ck_map = {
	.base = MAP_BASE("ck_ht"), .id = ID_CK, .create = ck_create,
	.thread_start = ck_thread_start, .thread_end = ck_thread_end,
	.get = ck_get, .insert = ck_insert, .remove = ck_remove,
	.get_or_insert = ck_get_or_insert, .size = ck_size, .quiesce = ck_quiesce,
};

static const struct map_impl lfht_map = {
	.base = MAP_BASE("cds_lfht"), .id = ID_LFHT, .create = lf_create,
	.thread_start = lf_thread_start, .thread_end = lf_thread_end,
	.get = lf_get, .insert = lf_insert, .remove = lf_remove,
	.get_or_insert = lf_get_or_insert, .size = lf_size, .quiesce = lf_quiesce,
};

static const struct map_impl mutex_map = {
	.base = MAP_BASE("mutex+chain"), .id = ID_MUTEX, .create = mutex_create,
	.get = mutex_get, .insert = mutex_insert, .remove = mutex_remove,
	.get_or_insert = mutex_get_or_insert, .size = mutex_size,
};

static const struct map_impl rwlock_map = {
	.base = MAP_BASE("rwlock+chain"), .id = ID_RWLOCK, .create = rwlock_create,
	.get = rwlock_get, .insert = rwlock_insert, .remove = rwlock_remove,
	.get_or_insert = rwlock_get_or_insert, .size = rwlock_size,
};

#ifdef BENCH_HAVE_TBB
static const struct map_impl tbb_map = {
	.base = MAP_BASE("tbb::conc_hash_map"), .id = ID_TBB, .create = bench_tbb_map_create,
	.get = bench_tbb_map_get, .insert = bench_tbb_map_insert, .remove = bench_tbb_map_remove,
	.get_or_insert = bench_tbb_map_get_or_insert, .size = bench_tbb_map_size,
};
#endif

/* The memory table's names (tbb::concurrent_hash_map is not measured there). */
static const struct map_impl *const all_impls[IMPLS] = {
	&sync_map, &ck_map, &lfht_map, &mutex_map, &rwlock_map,
};

/* ---- What forked runs report beyond the harness's numbers --------------------------- */

/* In a MAP_SHARED page mapped before the first fork: each growth run
 * appends its longest put and its 99.99th percentile; each memory child
 * writes its result. */
struct grow_result {
	int n;
	double max_ns[BENCH_MAX_ROUNDS];
	double p9999_ns[BENCH_MAX_ROUNDS];
};

struct mem_result {
	bool ok;
	double malloc_bytes; /* mallinfo2: in-use bytes, after minus before */
	double rss_bytes;    /* resident set, after minus before */
};

struct map_results {
	struct grow_result grow[IMPLS];
	struct mem_result mem[IMPLS];
};

static struct map_results *results;

/* ---- Throughput workloads ----------------------------------------------------------- */

/* One thread's tallies. */
struct map_local {
	_Alignas(LINE) uint64_t gets, hits, puts, removes;
	uint64_t errors; /* a put or remove failed where the key's state said it must not */
	uint64_t bad;    /* a get or remove returned another key's value */
};

/* present[i]: key i is in the map. Thread t of T writes only the keys of
 * its 1/T of the key space, so it knows their state exactly: a write is a
 * put of an absent key or a remove of a present one, never a no-op, and
 * the size stays about half the key space (each write moves it towards
 * the half). */
struct map_shared {
	struct map_local local[MAX_THREADS];
	bool setup_failed;
	_Alignas(LINE) unsigned char present[KEYS];
};

/* Creates the map (hint: the key space) and puts every even key, before
 * the threads start (untimed). */
static void mix_setup(const struct bench_objects *run)
{
	const struct map_impl *mi = impl_of(run);
	struct map_shared *s = run->shared;
	void *m = mi->create(KEYS);

	*(void **)run->obj[0] = m;
	if (!m) {
		s->setup_failed = true;
		return;
	}
	if (mi->thread_start)
		mi->thread_start(m); /* this thread also runs the check */
	for (uint32_t i = 0; i < KEYS; i += 2) {
		if (mi->insert(m, &map_keys[i], KEY_LEN, value_of(i))) {
			s->setup_failed = true;
			return;
		}
		s->present[i] = 1;
	}
}

/* n operations (n == 0: until stopped), a `write_share` (of 2^32) of them
 * writes on the thread's own keys, the rest gets of any key. */
static uint64_t mix_loop(struct bench_thread *t, uint64_t n, uint32_t write_share)
{
	const struct bench_objects *run = t->run;
	const struct map_impl *mi = impl_of(run);
	struct map_shared *s = run->shared;
	void *m = map_of(run);
	uint64_t limit = n ? n : UINT64_MAX, i, rng = splitmix64(0x6d6170u + (uint64_t)t->index);

	if (t->index >= MAX_THREADS || !m) {
		t->counts[0]++;
		return 0;
	}
	struct map_local *l = &s->local[t->index];
	int (*get)(void *, const void *, size_t, void **) = mi->get;
	uint32_t lo = (uint32_t)((uint64_t)KEYS * (uint64_t)t->index / (uint64_t)run->threads);
	uint32_t span = (uint32_t)((uint64_t)KEYS * (uint64_t)(t->index + 1) /
				   (uint64_t)run->threads) - lo;

	if (mi->thread_start)
		mi->thread_start(m);
	for (i = 0; i < limit && !bench_stopped(t); i++) {
		uint64_t r = next_random(&rng);
		if ((uint32_t)r < write_share) {
			uint32_t k = lo + scale(r, span);
			uint64_t key = key_of(k);
			void *old;
			if (s->present[k]) {
				if (mi->remove(m, &key, KEY_LEN, &old)) {
					l->errors++;
				} else {
					s->present[k] = 0;
					l->removes++;
					l->bad += old != value_of(k);
				}
			} else if (mi->insert(m, &key, KEY_LEN, value_of(k))) {
				l->errors++;
			} else {
				s->present[k] = 1;
				l->puts++;
			}
		} else {
			uint32_t k = scale(r, KEYS);
			uint64_t key = key_of(k);
			void *v;
			int err = get(m, &key, KEY_LEN, &v);
			l->gets++;
			if (!err) {
				l->hits++;
				l->bad += v != value_of(k);
			} else if (err != ENOENT) {
				l->errors++;
			}
		}
		bench_pause(run->delay);
	}
	if (mi->thread_end)
		mi->thread_end(m);
	return i;
}

static uint64_t get_loop(struct bench_thread *t, uint64_t n)
{
	return mix_loop(t, n, 0);
}

static uint64_t mix90_loop(struct bench_thread *t, uint64_t n)
{
	return mix_loop(t, n, (uint32_t)(0.10 * 4294967296.0));
}

static uint64_t mix50_loop(struct bench_thread *t, uint64_t n)
{
	return mix_loop(t, n, UINT32_C(1) << 31);
}

/* The threads' tallies added up. */
static struct map_local sum_locals(const struct map_local *local, int threads)
{
	struct map_local sum = { .gets = 0 };
	for (int i = 0; i < threads && i < MAX_THREADS; i++) {
		sum.gets += local[i].gets;
		sum.hits += local[i].hits;
		sum.puts += local[i].puts;
		sum.removes += local[i].removes;
		sum.errors += local[i].errors;
		sum.bad += local[i].bad;
	}
	return sum;
}

/* Every operation was what the key's state said (no failed put or remove,
 * every value the key's), the tallies add up, the size is the number of
 * keys present, and a sample of keys is found exactly where present. */
static bool mix_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	const struct map_impl *mi = impl_of(run);
	struct map_shared *s = run->shared;
	void *m = map_of(run);
	struct map_local sum = sum_locals(s->local, run->threads);
	uint64_t present = 0, wrong = 0, rng = 42;

	if (s->setup_failed || !m) {
		fprintf(stderr, "bench: %s: creating or prefilling the map failed\n",
			run->impl->name);
		return false;
	}
	for (uint32_t i = 0; i < KEYS; i++)
		present += s->present[i];
	for (int i = 0; i < 1000; i++) {
		uint32_t k = scale(next_random(&rng), KEYS);
		void *v;
		int err = mi->get(m, &map_keys[k], KEY_LEN, &v);
		wrong += s->present[k] ? err || v != value_of(k) : err != ENOENT;
	}
	size_t size = mi->size(m);
	if (!counts[0] && !sum.errors && !sum.bad && !wrong && size == present &&
	    sum.gets + sum.puts + sum.removes == ops)
		return true;
	fprintf(stderr, "bench: %s: %llu ops, %llu gets (%llu hits), %llu puts, %llu removes,"
		" %llu failed, %llu wrong values, size %zu of %llu present, %llu of 1000"
		" sampled keys wrong%s\n", run->impl->name, (unsigned long long)ops,
		(unsigned long long)sum.gets, (unsigned long long)sum.hits,
		(unsigned long long)sum.puts, (unsigned long long)sum.removes,
		(unsigned long long)sum.errors, (unsigned long long)sum.bad, size,
		(unsigned long long)present, (unsigned long long)wrong,
		counts[0] ? ", too many threads" : "");
	return false;
}

#define MIX_LEGEND_KEYS "10^6 8-byte keys (splitmix64 of the index, computed per op), half of them put before the" \
	" threads start (untimed; hint 10^6); key of each op from a per-thread PRNG"

static const struct bench_workload get100 = {
	.name = "100% get",
	.legend = "get of a random key of " MIX_LEGEND_KEYS "; about half are found; ns per"
		  " get (ck_ht: one ck_epoch section per get; cds_lfht: rcu_read_lock). All map"
		  " rows: min(--rounds, --map-rounds) rounds per side (default 5), caps >= 5 s"
		  " (a run's cap also covers its prefill), no fairness runs",
	.objects = 1,
	.shared_size = sizeof(struct map_shared),
	.setup = mix_setup,
	.loop = get_loop,
	.check = mix_check,
};

static const struct bench_workload mix90 = {
	.name = "90/10",
	.legend = "90% gets as above, 10% writes to a random key of the thread's own 1/T of"
		  " the keys: put if absent, remove if present (size stays ~5 x 10^5; removed"
		  " entries freed via sync_epoch / ck_epoch_call / call_rcu / free); ns per op;"
		  " every run checks values, size, 1000 sampled keys",
	.objects = 1,
	.shared_size = sizeof(struct map_shared),
	.setup = mix_setup,
	.loop = mix90_loop,
	.check = mix_check,
};

static const struct bench_workload mix50 = {
	.name = "50/50",
	.legend = "as 90/10 with 50% gets, 50% writes",
	.objects = 1,
	.shared_size = sizeof(struct map_shared),
	.setup = mix_setup,
	.loop = mix50_loop,
	.check = mix_check,
};

/* ---- Word count: get_or_insert, mostly finding the key ------------------------------ */

/* The vocabulary: the first WORDS keys of map_keys. */
#define WORDS (1u << 14)

/* Per thread: gets counts the calls that found their key (EEXIST), puts
 * those that inserted it. */
struct words_shared {
	struct map_local local[MAX_THREADS];
	bool setup_failed;
};

/* An empty map, as a word count starts with, sized for the vocabulary:
 * from hint 0, cds_lfht (1 bucket) resizes only while inserts go on, and
 * after the vocabulary's 2^14 inserts kept chains so long that its runs
 * did not finish within 5 s. */
static void words_setup(const struct bench_objects *run)
{
	const struct map_impl *mi = impl_of(run);
	struct words_shared *s = run->shared;
	void *m = mi->create(WORDS);

	*(void **)run->obj[0] = m;
	s->setup_failed = !m;
	if (m && mi->thread_start)
		mi->thread_start(m); /* this thread also runs the check */
}

static uint64_t words_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct map_impl *mi = impl_of(run);
	struct words_shared *s = run->shared;
	void *m = map_of(run);
	uint64_t limit = n ? n : UINT64_MAX, i, rng = splitmix64(0x776f7264u + (uint64_t)t->index);
	int (*get_or_insert)(void *, const void *, size_t, void *, void **) = mi->get_or_insert;

	if (t->index >= MAX_THREADS || !m) {
		t->counts[0]++;
		return 0;
	}
	struct map_local *l = &s->local[t->index];
	if (mi->thread_start)
		mi->thread_start(m);
	for (i = 0; i < limit && !bench_stopped(t); i++) {
		uint32_t k = scale(next_random(&rng), WORDS);
		uint64_t key = key_of(k);
		void *actual = NULL;
		int err = get_or_insert(m, &key, KEY_LEN, value_of(k), &actual);
		if (err == 0)
			l->puts++;
		else if (err == EEXIST)
			l->gets++;
		else
			l->errors++;
		l->bad += actual != value_of(k);
		bench_pause(run->delay);
	}
	if (mi->thread_end)
		mi->thread_end(m);
	return i;
}

/* Every call found or inserted the key's own value, one insert per key
 * (the size), and every key inserted is there. */
static bool words_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	const struct map_impl *mi = impl_of(run);
	struct words_shared *s = run->shared;
	void *m = map_of(run);
	struct map_local sum = sum_locals(s->local, run->threads);
	uint64_t found = 0, wrong = 0;

	if (s->setup_failed || !m) {
		fprintf(stderr, "bench: %s: creating the map failed\n", run->impl->name);
		return false;
	}
	for (uint32_t k = 0; k < WORDS; k++) {
		void *v;
		int err = mi->get(m, &map_keys[k], KEY_LEN, &v);
		found += err == 0;
		wrong += err ? err != ENOENT : v != value_of(k);
	}
	size_t size = mi->size(m);
	if (!counts[0] && !sum.errors && !sum.bad && !wrong && size == sum.puts &&
	    found == sum.puts && sum.gets + sum.puts == ops)
		return true;
	fprintf(stderr, "bench: %s: %llu ops, %llu found, %llu inserted, %llu failed, %llu"
		" wrong values, size %zu, %llu keys found afterwards, %llu wrong%s\n",
		run->impl->name, (unsigned long long)ops, (unsigned long long)sum.gets,
		(unsigned long long)sum.puts, (unsigned long long)sum.errors,
		(unsigned long long)sum.bad, size, (unsigned long long)found,
		(unsigned long long)wrong, counts[0] ? ", too many threads" : "");
	return false;
}

static const struct bench_workload words = {
	.name = "get_or_insert",
	.legend = "word count: get_or_insert of a random key of a vocabulary of 2^14 8-byte"
		  " keys into an empty map created with hint 2^14, value the key's; nearly every call"
		  " finds its key (EEXIST); ns per call. Peers as a user writes it: ck_ht get,"
		  " then put under the writers' spinlock (get again if present); cds_lfht"
		  " lookup, then cds_lfht_add_unique; mutex+chain find and link under the"
		  " mutex; rwlock+chain find under the read lock, then under the write lock",
	.objects = 1,
	.shared_size = sizeof(struct words_shared),
	.setup = words_setup,
	.loop = words_loop,
	.check = words_check,
};

/* ---- Hash flooding and growth: one thread ------------------------------------------- */

struct single_shared {
	bool setup_failed;
	uint64_t errors, bad;
	uint64_t hist[HIST_BUCKETS]; /* growth: put latency in ticks */
};

/* A map created with hint 0, for one thread. */
static void single_setup(const struct bench_objects *run)
{
	const struct map_impl *mi = impl_of(run);
	struct single_shared *s = run->shared;
	void *m = mi->create(0);

	*(void **)run->obj[0] = m;
	s->setup_failed = !m;
	if (m && mi->thread_start)
		mi->thread_start(m);
}

/* Puts FLOOD_KEYS keys, then gets each. */
static uint64_t flood_loop(struct bench_thread *t, const uint64_t *keys)
{
	const struct bench_objects *run = t->run;
	const struct map_impl *mi = impl_of(run);
	struct single_shared *s = run->shared;
	void *m = map_of(run);

	if (t->index || !m || !keys) {
		t->counts[0]++;
		return 0;
	}
	if (mi->thread_start)
		mi->thread_start(m);
	for (uint32_t i = 0; i < FLOOD_KEYS; i++)
		s->errors += mi->insert(m, &keys[i], KEY_LEN, value_of(i)) != 0;
	for (uint32_t i = 0; i < FLOOD_KEYS; i++) {
		void *v;
		int err = mi->get(m, &keys[i], KEY_LEN, &v);
		s->bad += err || v != value_of(i);
	}
	if (mi->thread_end)
		mi->thread_end(m);
	return 2 * FLOOD_KEYS;
}

static uint64_t flood_crafted_loop(struct bench_thread *t, uint64_t n)
{
	(void)n; /* a run is the whole set: the rows fix ops to 2 x FLOOD_KEYS */
	return flood_loop(t, flood_crafted);
}

static uint64_t flood_random_loop(struct bench_thread *t, uint64_t n)
{
	(void)n;
	return flood_loop(t, map_keys);
}

static bool single_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2],
			 size_t keys)
{
	const struct map_impl *mi = impl_of(run);
	struct single_shared *s = run->shared;
	void *m = map_of(run);
	size_t size = m ? mi->size(m) : 0;

	if (!s->setup_failed && m && !counts[0] && !s->errors && !s->bad && size == keys)
		return true;
	fprintf(stderr, "bench: %s: %s%llu ops, %llu failed puts, %llu wrong gets, size %zu of"
		" %zu\n", run->impl->name, s->setup_failed ? "create failed, " : "",
		(unsigned long long)ops, (unsigned long long)s->errors,
		(unsigned long long)s->bad, size, keys);
	return false;
}

static bool flood_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	return single_check(run, ops, counts, FLOOD_KEYS);
}

/* Puts GROW_KEYS new keys, timing each; appends the longest and the
 * 99.99th percentile to results. */
static uint64_t grow_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct map_impl *mi = impl_of(run);
	struct single_shared *s = run->shared;
	void *m = map_of(run);
	int (*insert)(void *, const void *, size_t, void *) = mi->insert;
	uint64_t max = 0;

	(void)n; /* the rows fix ops to GROW_KEYS */
	if (t->index || !m) {
		t->counts[0]++;
		return 0;
	}
	if (mi->thread_start)
		mi->thread_start(m);
	uint64_t ns0 = now_ns(), t0 = put_ticks();
	for (uint32_t i = 0; i < GROW_KEYS; i++) {
		uint64_t a = put_ticks();
		s->errors += insert(m, &map_keys[i], KEY_LEN, value_of(i)) != 0;
		uint64_t d = put_ticks() - a;
		s->hist[hist_bucket(d)]++;
		max = d > max ? d : max;
	}
	uint64_t ns1 = now_ns(), t1 = put_ticks();
	if (mi->thread_end)
		mi->thread_end(m);
	struct grow_result *g = &results->grow[mi->id];
	if (g->n < BENCH_MAX_ROUNDS && t1 > t0) {
		double ns_per_tick = (double)(ns1 - ns0) / (double)(t1 - t0);
		g->max_ns[g->n] = (double)max * ns_per_tick;
		g->p9999_ns[g->n++] = (double)hist_quantile(s->hist, 0.9999) * ns_per_tick;
	}
	return GROW_KEYS;
}

static bool grow_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	return single_check(run, ops, counts, GROW_KEYS);
}

static const struct bench_workload flood_crafted_wl = {
	.name = "flood-craft",
	.legend = "one thread, map created with hint 0: put 10^5 keys, then get each; ns per"
		  " op; keys: 8-byte counters whose XXH3 under the ten-minute maps' fixed seed"
		  " share their low 12 bits (sync_map seeds each map at random)",
	.objects = 1,
	.shared_size = sizeof(struct single_shared),
	.setup = single_setup,
	.loop = flood_crafted_loop,
	.check = flood_check,
};

static const struct bench_workload flood_random_wl = {
	.name = "flood-rand",
	.legend = "as flood-craft with 10^5 random keys: the baseline of the crafted ones",
	.objects = 1,
	.shared_size = sizeof(struct single_shared),
	.setup = single_setup,
	.loop = flood_random_loop,
	.check = flood_check,
};

static const struct bench_workload grow_wl = {
	.name = "grow to 1M",
	.legend = "one thread puts 10^6 new keys into a map created with hint 0, each put"
		  " timed (rdtsc); ns per put; total and longest put under the table (cds_lfht"
		  " resizes in its own call_rcu thread)",
	.objects = 1,
	.shared_size = sizeof(struct single_shared),
	.setup = single_setup,
	.loop = grow_loop,
	.check = grow_check,
};

/* ---- Memory: bytes per entry, in a forked child ------------------------------------- */

static double rss_bytes(void)
{
	long size, pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(f);
	}
	return (double)pages * (double)sysconf(_SC_PAGESIZE);
}

static double malloc_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (double)mi.uordblks + (double)mi.hblkhd; /* all arenas, and mmapped chunks */
}

/* Builds a map of KEYS entries (hint KEYS), runs its deferred frees, and
 * reports what it holds. Runs in a forked child. */
static void measure_memory(const struct map_impl *mi, struct mem_result *out)
{
	double m0 = malloc_in_use(), r0 = rss_bytes();
	void *m = mi->create(KEYS);
	if (!m)
		return;
	if (mi->thread_start)
		mi->thread_start(m);
	for (uint32_t i = 0; i < KEYS; i++)
		if (mi->insert(m, &map_keys[i], KEY_LEN, value_of(i)))
			return;
	if (mi->quiesce)
		mi->quiesce(m);
	if (mi->size(m) != KEYS)
		return;
	out->malloc_bytes = malloc_in_use() - m0;
	out->rss_bytes = rss_bytes() - r0;
	out->ok = true;
}

static void memory_child(const struct map_impl *mi)
{
	memset(&results->mem[mi->id], 0, sizeof results->mem[mi->id]);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		struct mem_result r = { .ok = false };
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(60); /* a hung build fails the row */
		measure_memory(mi, &r);
		results->mem[mi->id] = r;
		_exit(r.ok ? 0 : 1);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
}

/* ---- Crafted keys ------------------------------------------------------------------- */

/* Counters c whose XXH3_64bits_withSeed(&c, 8, FIXED_SEED) has its low
 * FLOOD_BITS bits 0: about 4 x 10^8 hashes, about a second. */
static bool craft_keys(void)
{
	uint64_t t0 = now_ns();
	uint32_t n = 0;
	flood_crafted = malloc(FLOOD_KEYS * sizeof *flood_crafted);
	if (!flood_crafted)
		return false;
	for (uint64_t c = 0; n < FLOOD_KEYS; c++)
		if ((XXH3_64bits_withSeed(&c, sizeof c, FIXED_SEED) &
		     ((UINT64_C(1) << FLOOD_BITS) - 1)) == 0)
			flood_crafted[n++] = c;
	flood_search_s = (double)(now_ns() - t0) / 1e9;
	return true;
}

/* ---- Rows --------------------------------------------------------------------------- */

#define NO_TARGET { TARGET_NONE, 0 }
#define AT_MOST(r) { TARGET_RATIO, r }
#define FINISHES { TARGET_FINISHES, 0 }

/* The throughput workloads and thread counts, in the order of every peer's rows. */
static const struct {
	const struct bench_workload *workload;
	int threads;
} cases[] = {
	{ &get100, 1 }, { &get100, 2 }, { &get100, 8 },
	{ &mix90, 1 },  { &mix90, 2 },  { &mix90, 8 },
	{ &mix50, 1 },  { &mix50, 2 },  { &mix50, 8 },
	{ &words, 1 },  { &words, 2 },  { &words, 8 },
};
#define CASES (sizeof cases / sizeof cases[0])

static const struct {
	const struct map_impl *peer;
	struct bench_target target[CASES];
} peers[] = {
	{ &ck_map, { AT_MOST(1.00), AT_MOST(1.00), AT_MOST(1.00),
		     AT_MOST(1.00), AT_MOST(1.00), FINISHES,
		     NO_TARGET, NO_TARGET, NO_TARGET,
		     AT_MOST(1.00), AT_MOST(1.00), FINISHES } },
	{ &lfht_map, { AT_MOST(0.67), AT_MOST(0.67), AT_MOST(0.67),
		       AT_MOST(0.67), AT_MOST(0.67), FINISHES,
		       NO_TARGET, NO_TARGET, NO_TARGET,
		       AT_MOST(1.00), AT_MOST(1.00), FINISHES } },
	{ &mutex_map, { NO_TARGET, AT_MOST(0.50), NO_TARGET,
			NO_TARGET, AT_MOST(0.50), NO_TARGET,
			NO_TARGET, NO_TARGET, NO_TARGET,
			NO_TARGET, AT_MOST(1.00), NO_TARGET } },
	{ &rwlock_map, { NO_TARGET, AT_MOST(0.50), NO_TARGET,
			 NO_TARGET, AT_MOST(0.50), NO_TARGET,
			 NO_TARGET, NO_TARGET, NO_TARGET,
			 NO_TARGET, NO_TARGET, NO_TARGET } },
#ifdef BENCH_HAVE_TBB
	{ &tbb_map, { AT_MOST(0.60), AT_MOST(0.60), AT_MOST(0.60),
		      AT_MOST(0.60), AT_MOST(0.60), AT_MOST(0.60),
		      NO_TARGET, NO_TARGET, NO_TARGET,
		      NO_TARGET, NO_TARGET, NO_TARGET } },
#endif
};

/* Memory target: ours at most this many times ck_ht's bytes per entry. */
#define MEMORY_GOAL 1.0

/* What a map costs: malloc's count misses memory a map maps itself (our
 * big tables), RSS misses what is allocated but not touched; the larger. */
static double footprint(const struct mem_result *r)
{
	return r->malloc_bytes > r->rss_bytes ? r->malloc_bytes : r->rss_bytes;
}

/* The growth rows' peers. */
static const struct map_impl *const grow_peers[] = { &lfht_map, &ck_map };
#define GROW_PEERS (sizeof grow_peers / sizeof grow_peers[0])

/* What the tables under the summary print. */
static struct {
	bool memory_ran, flood_ran, grow_ran;
	struct mem_result mem[IMPLS];
	double flood_ns[2][2]; /* [crafted, random][ours, mutex+chain] */
	double grow_ns[1 + GROW_PEERS]; /* median ns per put: ours, then grow_peers */
	struct grow_result grow[IMPLS];
} summary;

static bool row_selected(const struct bench_config *cfg, int threads)
{
	return (!cfg->only || strstr("sync_map", cfg->only)) &&
	       (!cfg->only_threads || cfg->only_threads == threads);
}

static void tally_memory(struct bench_tally *tally)
{
	const struct mem_result *o = &summary.mem[ID_OURS], *c = &summary.mem[ID_CK];
	size_t used = strlen(tally->missed);
	double ratio = o->ok && c->ok && footprint(c) > 0 ? footprint(o) / footprint(c) : 0;

	tally->targets++;
	if (o->ok && c->ok && ratio <= MEMORY_GOAL) {
		tally->met++;
		return;
	}
	if (o->ok && c->ok)
		snprintf(tally->missed + used, sizeof tally->missed - used,
			 "\n#   sync_map memory vs ck_ht: %.3f > %.2f (+%.0f%%)", ratio, MEMORY_GOAL,
			 (ratio / MEMORY_GOAL - 1) * 100);
	else
		snprintf(tally->missed + used, sizeof tally->missed - used,
			 "\n#   sync_map memory vs ck_ht: no result");
	tally->failures += !o->ok || !c->ok;
}

static void run_memory(struct bench_tally *tally)
{
	static const struct map_impl *const measured[] = { &sync_map, &ck_map, &lfht_map,
							   &mutex_map };
	for (size_t i = 0; i < sizeof measured / sizeof measured[0]; i++) {
		memory_child(measured[i]);
		summary.mem[measured[i]->id] = results->mem[measured[i]->id];
	}
	summary.memory_ran = true;
	tally_memory(tally);
}

/* The rows after the throughput rows' keys exist; `dry`: the pass that only
 * counts rows (no flooding search, no growth results, no memory children). */
static void map_rows(const struct bench_config *mc, struct bench_tally *tally, bool dry)
{
	for (size_t p = 0; p < sizeof peers / sizeof peers[0]; p++) {
		for (size_t c = 0; c < CASES; c++) {
			struct bench_row row = { "sync_map", &sync_map.base, &peers[p].peer->base,
						 cases[c].threads, peers[p].target[c],
						 cases[c].workload };
			bench_run_row(mc, &row, tally);
		}
	}

	if (row_selected(mc, 1) && (dry || craft_keys())) {
		struct bench_config fc = *mc;
		fc.ops = 2 * FLOOD_KEYS;
		fc.cap_min_s = fc.cap_max_s = FLOOD_CAP_S;
		struct bench_row crafted = { "sync_map", &sync_map.base, &mutex_map.base, 1,
					     NO_TARGET, &flood_crafted_wl };
		struct bench_row random = crafted;
		random.workload = &flood_random_wl;
		/* both always called: the dry pass counts both rows */
		bool crafted_ran = bench_run_row_medians(&fc, &crafted, tally,
							 &summary.flood_ns[0][0],
							 &summary.flood_ns[0][1]);
		bool random_ran = bench_run_row_medians(&fc, &random, tally, &summary.flood_ns[1][0],
							&summary.flood_ns[1][1]);
		summary.flood_ran = crafted_ran && random_ran;
	}

	if (row_selected(mc, 1)) {
		struct bench_config gc = *mc;
		gc.ops = GROW_KEYS;
		for (size_t p = 0; p < GROW_PEERS; p++) {
			struct bench_row row = { "sync_map", &sync_map.base, &grow_peers[p]->base, 1,
						 NO_TARGET, &grow_wl };
			double ours_ns;
			bench_run_row_medians(&gc, &row, tally, &ours_ns, &summary.grow_ns[1 + p]);
			if (p == 0) /* ours' total: its median in the row against cds_lfht */
				summary.grow_ns[0] = ours_ns;
		}
		if (!dry) {
			memcpy(summary.grow, results->grow, sizeof summary.grow);
			summary.grow_ran = true;
		}
	}

	if (row_selected(mc, 1) && !dry) {
		bench_progress_note("sync_map memory: 10^6 entries, each map in a forked child");
		run_memory(tally);
	}
}

void bench_map(const struct bench_config *cfg, struct bench_tally *tally)
{
	struct bench_config mc = *cfg;
	int rounds = cfg->map_rounds > 0 ? cfg->map_rounds : MAP_ROUNDS_DEFAULT;

	if (cfg->only && !strstr("sync_map", cfg->only))
		return;
	mc.rounds = rounds < cfg->rounds ? rounds : cfg->rounds;
	/* a run's cap also covers its untimed prefill */
	mc.cap_min_s = cfg->cap_min_s > MAP_CAP_MIN_S ? cfg->cap_min_s : MAP_CAP_MIN_S;
	mc.cap_max_s = cfg->cap_max_s > mc.cap_min_s ? cfg->cap_max_s : mc.cap_min_s;
	if (cfg->count_only) {
		map_rows(&mc, tally, true);
		return;
	}
	results = mmap(NULL, sizeof *results, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	map_keys = malloc(KEYS * sizeof *map_keys);
	if (results == MAP_FAILED || !map_keys) {
		fprintf(stderr, "bench: map rows: out of memory\n");
		tally->failures++;
		return;
	}
	memset(results, 0, sizeof *results);
	for (uint32_t i = 0; i < KEYS; i++)
		map_keys[i] = splitmix64(i);
	map_rows(&mc, tally, false);
}

/* ---- The tables under the summary --------------------------------------------------- */

static double max_of(const double *v, int n)
{
	double m = 0;
	for (int i = 0; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static void print_memory(void)
{
	static const int order[] = { ID_OURS, ID_CK, ID_LFHT, ID_MUTEX };
	const struct mem_result *ck = &summary.mem[ID_CK];

	printf("# sync_map memory: 10^6 entries (8-byte keys, pointer values) put by one thread"
	       " into a map created with hint 10^6,\n#   in a forked child, deferred frees run"
	       " first; bytes = malloc'd bytes in use after minus before (mallinfo2 uordblks"
	       " +\n#   hblkhd: chunk sizes with malloc's overhead; ck_ht's include the key copies"
	       " its user mallocs); RSS: resident set growth;\n#   vs ck_ht: the larger of the two"
	       " (ours maps big tables itself: malloc does not see them)\n");
	printf("# %-12s %11s %9s %8s %-7s %-4s\n", "map", "bytes/entry", "RSS/entry", "vs ck_ht",
	       "target", "met?");
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		const struct mem_result *r = &summary.mem[order[i]];
		char ratio[16] = "-", target[16] = "", met[8] = "";
		if (!r->ok) {
			printf("# %-12s %11s\n", all_impls[order[i]]->base.name, "FAIL");
			continue;
		}
		if (ck->ok && footprint(ck) > 0)
			snprintf(ratio, sizeof ratio, "%.2f", footprint(r) / footprint(ck));
		if (order[i] == ID_OURS) {
			snprintf(target, sizeof target, "<= %.2f", MEMORY_GOAL);
			snprintf(met, sizeof met, "%s", ck->ok && footprint(r) <=
				 MEMORY_GOAL * footprint(ck) ? "yes" : "NO");
		}
		printf("# %-12s %11.1f %9.1f %8s %-7s %-4s\n", all_impls[order[i]]->base.name,
		       r->malloc_bytes / KEYS, r->rss_bytes / KEYS, ratio, target, met);
	}
}

/* A side's ns/op for the flooding table: its median, or "> bound" where the
 * run hit the cap (bench_run_row_medians gives 0 for capped or failed
 * sides; a failure is reported on stderr and in the summary). */
static void fmt_flood(char *buf, size_t len, double ns, bool *bound)
{
	*bound = ns <= 0;
	if (*bound)
		snprintf(buf, len, "> %.0f", FLOOD_CAP_S * 1e9 / (2.0 * FLOOD_KEYS));
	else
		snprintf(buf, len, "%.1f", ns);
}

static void print_flood(void)
{
	static const char *const names[2] = { "sync_map", "mutex+chain" };
	printf("# sync_map hash flooding (rows flood-craft, flood-rand): 10^5 keys whose"
	       " XXH3_64bits_withSeed(key, 8, 0x%016llx)\n#   share their low %d bits (found by"
	       " brute force in %.1f s) against 10^5 random keys; the ten-minute map hashes with"
	       " that\n#   fixed seed, sync_map with a random seed per map; crafted/random ~1:"
	       " no flooding; \"> N\": the run hit its %.0f s cap\n",
	       (unsigned long long)FIXED_SEED, FLOOD_BITS, flood_search_s, FLOOD_CAP_S);
	printf("# %-12s %13s %12s %14s\n", "map", "crafted ns/op", "random ns/op",
	       "crafted/random");
	for (int m = 0; m < 2; m++) {
		double c = summary.flood_ns[0][m], r = summary.flood_ns[1][m];
		char cs[24], rs[24], ratio[24] = "-";
		bool c_bound, r_bound;
		fmt_flood(cs, sizeof cs, c, &c_bound);
		fmt_flood(rs, sizeof rs, r, &r_bound);
		if (!c_bound && !r_bound)
			snprintf(ratio, sizeof ratio, "%.2f", c / r);
		else if (c_bound && !r_bound)
			snprintf(ratio, sizeof ratio, "> %.0f", FLOOD_CAP_S * 1e9 / (2.0 * FLOOD_KEYS) / r);
		printf("# %-12s %13s %12s %14s\n", names[m], cs, rs, ratio);
	}
}

static void print_grow(void)
{
	const struct map_impl *const impls[1 + GROW_PEERS] = { &sync_map, &lfht_map, &ck_map };
	printf("# sync_map growth (rows \"grow to 1M\"): one thread puts 10^6 new keys into a map"
	       " created with hint 0, every put timed;\n#   total = median ns/put x 10^6; p99.99"
	       " and longest put: medians over the runs of each run's, and the longest of all"
	       " runs\n");
	printf("# %-12s %9s %8s %10s %12s %12s\n", "map", "total ms", "ns/put", "p99.99 put",
	       "longest put", "longest all");
	for (size_t i = 0; i < 1 + GROW_PEERS; i++) {
		const struct grow_result *g = &summary.grow[impls[i]->id];
		char p[16] = "-", med[16] = "-", max[16] = "-";
		if (g->n) {
			snprintf(p, sizeof p, "%.1f us", median(g->p9999_ns, g->n) / 1e3);
			snprintf(med, sizeof med, "%.1f us", median(g->max_ns, g->n) / 1e3);
			snprintf(max, sizeof max, "%.1f us", max_of(g->max_ns, g->n) / 1e3);
		}
		printf("# %-12s %9.1f %8.1f %10s %12s %12s\n", impls[i]->base.name,
		       summary.grow_ns[i] * GROW_KEYS / 1e6, summary.grow_ns[i], p, med, max);
	}
}

void bench_map_print_tables(void)
{
	if (summary.memory_ran)
		print_memory();
	if (summary.flood_ran)
		print_flood();
	if (summary.grow_ran)
		print_grow();
}
