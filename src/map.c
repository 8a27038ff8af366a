/* Concurrent hash map: a table of 2^k one-cache-line buckets, each with
 * three inline slots for keys of up to 8 bytes and a chain for the rest;
 * get locks nothing and writes nothing shared, validating the bucket's
 * control word (map_internal.h); writers lock one bucket; resized
 * incrementally by the writers (map_resize.c); memory reclaimed through
 * sync_epoch. Hash: XXH3 (Collet) with a per-map random seed.
 *
 * Invariants (the bucket's are in map_internal.h, the resize's in
 * map_resize.c):
 * - Each live key is in exactly one place of the newest table that holds
 *   its bucket: a tagged slot, or a node of exactly one live chain. A
 *   node's `next` changes only under the lock of the bucket whose chain
 *   holds it: an unlink, or (migration) a NULL tail linked to another chain.
 * - A reader that started down a chain sees every node that chain held when
 *   it loaded the head, minus nodes unlinked meanwhile.
 * - get: a hit in a slot is returned only if the bucket's ctrl is the same
 *   after the value's load as before the key's (no tag changed: the slot
 *   held that key throughout). A miss needs no check: a key changes place
 *   only by a remove and a later insert (an instant without it) or by a
 *   migration (the old bucket is then frozen, so it is seen as it was).
 *   get never waits for LOCK: it loads again only after a writer stored
 *   the control word (took or released a bucket, or changed a tag), that
 *   is after another operation's progress, so it is lock-free.
 * - Every writer (put, insert, get_or_insert, replace, remove, remove_if)
 *   decides and writes under the lock of the key's bucket in the newest
 *   table, so each is atomic per key; insert and get_or_insert that find
 *   the key present return at once, as a get would (lock-free).
 * - No operation waits for a grace period or for memory: nodes and tables
 *   go to epoch_retire_nowait, inside the operation's section.
 * - Tools (annotate.h): the map, its tables and nodes are the library's own
 *   words (ann_internal when allocated). A value passes from the writer that
 *   stored it to whoever gets it (get, foreach, put's *old, remove,
 *   get_or_insert's *actual; and replace and remove_if, whose caller takes
 *   over `expected`): the writer releases on the slot or node before the
 *   store that publishes the value, the taker acquires on it after loading
 *   the value; a migration's copy acquires on the original and releases on
 *   the copy. A slot is reused by other keys: its releases then also order
 *   the earlier keys' writers before the later keys' takers (more order
 *   than the map gives, never less). A key compare in a node acquires on
 *   the node (TSan sees memcmp, and the maker's malloc and memcpy).
 * - A writer waits only on a bucket's lock bit, by spinning and yielding, so
 *   a waiter that vanishes leaves nothing; no operation is a cancellation
 *   point, so no cancelled thread leaves a bucket or `migrating` held. A
 *   holder that vanishes (a writer's thread absent from a fork child) leaves
 *   its bucket locked, as a held mutex would be. */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <sync/epoch.h>

#include "backoff.h"
#include "epoch_internal.h"
#include "map_internal.h"
#include "test_hook.h"

/* ---- keys and nodes ----------------------------------------------------- */

uint64_t map_hash(const struct sync_map *m, const void *key, size_t len)
{
	return XXH3_64bits_withSeed(len ? key : "", len, m->seed);
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

/* Always inlined, as lookup() is: a call on get's path delays the next
 * get's cache miss (see README, the map's one-line buckets). */
static inline __attribute__((always_inline)) struct key
key_make(const struct sync_map *m, const void *bytes, size_t len)
{
	uint64_t packed = 0, hash;
	if (len == INLINE_KEY_MAX) { /* the common case, with constant sizes */
		packed = key_pack(bytes, INLINE_KEY_MAX);
		/* XXH3_64bits_withSeed's own path for 4 to 8 bytes, inlined */
		hash = XXH3_len_4to8_64b(bytes, INLINE_KEY_MAX, XXH3_kSecret, m->seed);
	} else {
		hash = map_hash(m, bytes, len);
		if (len < INLINE_KEY_MAX)
			packed = key_pack(bytes, len);
	}
	unsigned tag = len <= INLINE_KEY_MAX ? (unsigned)len + 1 : 0;
	return (struct key){ .bytes = bytes, .len = len, .hash = hash, .packed = packed,
			     .tag = tag };
}

static bool node_has_key(const struct node *n, const struct key *k)
{
	if (n->hash != k->hash || n->keylen != k->len)
		return false;
	/* TSan intercepts memcmp: the key was written by the node's maker */
	ann_acquire(n);
	return k->len == 0 || memcmp(n->key, k->bytes, k->len) == 0;
}

/* A fresh node; NULL when out of memory, errno as it was (the callers
 * return an error number and leave errno alone). */
struct node *node_new(uint64_t h, const void *key, size_t len, void *value)
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

/* Frees the nodes from n up to stop (or the end), passing each value to
 * free_value if not NULL. Only for nodes no other thread can reach: copies
 * never published, or a map being destroyed; hence the relaxed loads. */
void free_nodes(struct node *n, struct node *stop, void (*free_value)(void *))
{
	while (n && n != stop) {
		struct node *next = atomic_load_explicit(&n->next, memory_order_relaxed);
		if (free_value)
			free_value(atomic_load_explicit(&n->value, memory_order_relaxed));
		free(n);
		n = next;
	}
}

/* ---- bucket locks ------------------------------------------------------- */

/* Locks bucket b and returns its ctrl (LOCK clear), or returns a ctrl with
 * MOVED without locking. Writers hold a bucket for a few loads and stores
 * (they allocate outside it); a migration holds it while it copies a few
 * entries. So a waiter spins briefly, then yields. */
uint64_t bucket_lock(struct bucket *b)
{
	struct spin_budget budget = SPIN_BUDGET_INIT;
	uint32_t step = 1;
	uint64_t c = ctrl_load(b);
	for (;;) {
		if (c & CTRL_MOVED)
			return c;
		/* acquire pairs with the release store of bucket_unlock() */
		if (!(c & CTRL_LOCK) &&
		    atomic_compare_exchange_weak_explicit(&b->ctrl, &c, c | CTRL_LOCK,
							  memory_order_acquire,
							  memory_order_acquire))
			return c;
		if (c & CTRL_LOCK) {
			backoff_exp(&budget, &step);
			c = ctrl_load(b);
		}
	}
}

/* Publishes the holder's change (ctrl: the new tags and version, LOCK
 * clear) and unlocks, in one store. */
void bucket_unlock(struct bucket *b, uint64_t ctrl)
{
	/* pairs with ctrl_load() (readers) and bucket_lock() (writers) */
	atomic_store_explicit(&b->ctrl, ctrl & ~CTRL_LOCK, memory_order_release);
}

/* A writer's place: the locked bucket of the newest table that holds hash h. */
struct locked_bucket {
	struct bucket *b;
	uint64_t ctrl; /* as locked, LOCK clear */
};

static struct locked_bucket lock_bucket_of(struct sync_map *m, uint64_t h)
{
	struct table *t = current_table(m);
	for (;;) {
		struct bucket *b = bucket_of(t, h);
		uint64_t c = bucket_lock(b);
		if (!(c & CTRL_MOVED))
			return (struct locked_bucket){ b, c };
		t = next_table(t);
	}
}

/* ---- finding a key ------------------------------------------------------ */

/* The slot of b that holds k when b's ctrl is c, or -1. */
static int slot_find(struct bucket *b, uint64_t c, const struct key *k)
{
	unsigned tag = k->tag;
	if (!tag)
		return -1;
#pragma GCC unroll 3
	for (unsigned s = 0; s < SLOTS; s++)
		if (tag_of(c, s) == tag && slot_key(&b->slot[s]) == k->packed)
			return (int)s;
	return -1;
}

static struct node *chain_find(struct node *n, const struct key *k)
{
	for (; n; n = next_of(n))
		if (node_has_key(n, k))
			return n;
	return NULL;
}

/* The value of key k in the chain from n; the lookup's cold path (its own
 * copy of the key, so that the hot path keeps k in registers). */
static __attribute__((noinline, cold)) bool chain_get(struct node *n, const struct key *k,
						      void **value)
{
	struct key copy = *k;
	n = chain_find(n, &copy);
	if (n)
		*value = node_value(n);
	return n != NULL;
}

/* Whether b's ctrl is still c1, after the slot loads before this call
 * (acquire loads: the load below cannot come before them). */
static bool ctrl_unchanged(struct bucket *b, uint64_t c1)
{
	/* relaxed: ordered by the acquire loads before it (slot_key, slot_value) */
	return atomic_load_explicit(&b->ctrl, memory_order_relaxed) == c1;
}

/* Lock-free search; the caller is inside an epoch section. */
static inline __attribute__((always_inline)) bool
lookup(struct sync_map *m, const struct key *k, void **value)
{
	struct table *t = current_table(m);
	struct bucket *b = bucket_of(t, k->hash);
	for (;;) {
		uint64_t c1 = ctrl_load(b);
		if (c1 & CTRL_MOVED) {
			t = next_table(t);
			b = bucket_of(t, k->hash);
			continue;
		}
		int s = slot_find(b, c1, k);
		if (s >= 0) {
			TEST_HOOK("map_get:slot_matched"); /* a writer may reuse the slot now */
			void *v = slot_value(&b->slot[s]);
			if (!ctrl_unchanged(b, c1))
				continue; /* a writer stored ctrl meanwhile: look again */
			*value = v;
			return true;
		}
		struct node *n = overflow_of(b);
		return __builtin_expect(n != NULL, 0) && chain_get(n, k, value);
	}
}

/* Where a key is in a locked bucket: a slot (slot >= 0), or a chain node
 * and the word that points to it. */
struct place {
	int slot;
	struct node *node;
	_Atomic(struct node *) *link;
};

static bool find_locked(struct locked_bucket *lb, const struct key *k, struct place *pl)
{
	pl->slot = slot_find(lb->b, lb->ctrl, k);
	if (pl->slot >= 0)
		return true;
	pl->link = &lb->b->overflow;
	for (struct node *n = overflow_of(lb->b); n; n = next_of(n)) {
		if (node_has_key(n, k)) {
			pl->node = n;
			return true;
		}
		pl->link = &n->next;
	}
	return false;
}

static _Atomic(void *) *value_word(struct locked_bucket *lb, struct place *pl)
{
	return pl->slot >= 0 ? &lb->b->slot[pl->slot].value : &pl->node->value;
}

/* The object the tools see a value handed over through. */
static const void *handover(struct locked_bucket *lb, struct place *pl)
{
	return pl->slot >= 0 ? (const void *)&lb->b->slot[pl->slot] : pl->node;
}

/* The value at a place of a locked bucket, taken over by the caller. */
static void *value_at(struct locked_bucket *lb, struct place *pl)
{
	/* relaxed: only bucket holders write a value */
	void *v = atomic_load_explicit(value_word(lb, pl), memory_order_relaxed);
	ann_acquire(handover(lb, pl)); /* the value's last writer's ann_release */
	return v;
}

/* Stores a new value at a place of a locked bucket; returns the one it
 * replaces. */
static void *swap_value(struct locked_bucket *lb, struct place *pl, void *value)
{
	void *prev = value_at(lb, pl);
	ann_release(handover(lb, pl)); /* value's, for whoever gets it */
	/* release: pairs with slot_value() and node_value() */
	atomic_store_explicit(value_word(lb, pl), value, memory_order_release);
	return prev;
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

/* Frees the entries of t's buckets that have not moved. */
static void free_table(struct table *t, void (*free_value)(void *))
{
	for (size_t i = 0; i <= t->mask; i++) {
		struct bucket *b = &t->buckets[i];
		/* relaxed: not concurrent with use */
		uint64_t c = atomic_load_explicit(&b->ctrl, memory_order_relaxed);
		if (c & CTRL_MOVED)
			continue;
		for (unsigned s = 0; s < SLOTS && free_value; s++)
			if (tag_of(c, s))
				free_value(atomic_load_explicit(&b->slot[s].value,
								memory_order_relaxed));
		free_nodes(atomic_load_explicit(&b->overflow, memory_order_relaxed), NULL,
			   free_value);
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
	struct key k = key_make(m, key, keylen);
	sync_epoch_enter();
	bool found = lookup(m, &k, value);
	sync_epoch_exit();
	return found ? 0 : ENOENT;
}

/* Links a fresh node at the head of a locked bucket's chain and unlocks it. */
static void link_fresh(struct locked_bucket *lb, struct node *fresh)
{
	/* relaxed: fresh is published by the release store below */
	atomic_store_explicit(&fresh->next, overflow_of(lb->b), memory_order_relaxed);
	ann_release(fresh);
	/* release: pairs with overflow_of() */
	atomic_store_explicit(&lb->b->overflow, fresh, memory_order_release);
	bucket_unlock(lb->b, lb->ctrl);
}

/* Adds an absent key to a locked bucket and unlocks it: into a free slot,
 * else as *fresh (which it then takes). False when neither is there. */
static bool add_locked(struct locked_bucket *lb, const struct key *k, void *value,
		       struct node **fresh)
{
	int s = k->tag ? slot_free(lb->ctrl) : -1;
	if (s >= 0) {
		slot_fill(&lb->b->slot[s], k->packed, value);
		bucket_unlock(lb->b, with_tag(lb->ctrl, (unsigned)s, k->tag));
		return true;
	}
	if (!*fresh)
		return false;
	link_fresh(lb, *fresh);
	*fresh = NULL;
	return true;
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
	struct key k = key_make(m, key, len);
	struct node *fresh = NULL;
	int rc = 0;
	void *prev = NULL;
	sync_epoch_enter();
	help_migrate(m);
	if (!replace && lookup(m, &k, &prev)) /* present: as a get, without the lock */
		rc = EEXIST;
	TEST_HOOK("map_store:looked_up"); /* others may add or remove the key now */
	while (rc == 0) {
		struct locked_bucket lb = lock_bucket_of(m, k.hash);
		struct place pl;
		if (find_locked(&lb, &k, &pl)) {
			prev = replace ? swap_value(&lb, &pl, value) : value_at(&lb, &pl);
			bucket_unlock(lb.b, lb.ctrl);
			rc = replace ? 0 : EEXIST;
			break;
		}
		if (add_locked(&lb, &k, value, &fresh)) {
			prev = NULL;
			count_and_check(m, 1);
			break;
		}
		bucket_unlock(lb.b, lb.ctrl); /* no free slot: allocate */
		if (!(fresh = node_new(k.hash, key, len, value)))
			rc = ENOMEM;
	}
	free(fresh);
	sync_epoch_exit();
	if (old && (rc == 0 || rc == EEXIST))
		*old = prev;
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

/* Removes the key at a place of a locked bucket and unlocks it. */
static void remove_locked(struct locked_bucket *lb, struct place *pl)
{
	if (pl->slot >= 0) {
		bucket_unlock(lb->b, with_tag(lb->ctrl, (unsigned)pl->slot, 0));
		return;
	}
	/* release: pairs with next_of() and overflow_of() in readers */
	atomic_store_explicit(pl->link, next_of(pl->node), memory_order_release);
	bucket_unlock(lb->b, lb->ctrl);
	epoch_retire_nowait(pl->node, free); /* never waits for readers (nor memory) */
}

/* remove (expected NULL: any value; desired NULL), remove_if (desired NULL)
 * and replace (desired not NULL). ENOENT when the key is absent, EAGAIN
 * when its value is not expected; else *old = the value it held. */
static int change_entry(struct sync_map *m, const void *key, size_t len,
			void *expected, void *desired, void **old)
{
	if (!key_fits(len))
		return ENOENT; /* no such key can be stored */
	struct key k = key_make(m, key, len);
	sync_epoch_enter();
	help_migrate(m);
	struct locked_bucket lb = lock_bucket_of(m, k.hash);
	struct place pl;
	bool found = find_locked(&lb, &k, &pl);
	/* relaxed: only bucket holders write a value */
	void *prev = found ? atomic_load_explicit(value_word(&lb, &pl), memory_order_relaxed) : NULL;
	int rc = !found ? ENOENT : expected && prev != expected ? EAGAIN : 0;
	if (rc) {
		bucket_unlock(lb.b, lb.ctrl);
	} else if (desired) {
		swap_value(&lb, &pl, desired);
		bucket_unlock(lb.b, lb.ctrl);
	} else {
		ann_acquire(handover(&lb, &pl)); /* the value's last writer's ann_release */
		remove_locked(&lb, &pl);
		count_and_check(m, -1);
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

struct visit {
	struct sync_map *m;
	visit_fn fn;
	void *arg;
};

/* Entries to visit: those with (hash & mask) == val. A bucket reached
 * through a moved bucket of a larger table, or an old chain whose tail was
 * linked into a new bucket, may hold entries of other buckets; the filter
 * skips them, so that every entry is visited from exactly one bucket of
 * the starting table. */
struct filter {
	size_t mask, val;
};

/* A bucket's slots as they were at one instant. */
struct slots_seen {
	unsigned n;
	uint64_t key[SLOTS];
	size_t len[SLOTS];
	void *value[SLOTS];
};

/* Reads b's slots until it sees them under one ctrl, which it returns
 * (MOVED: nothing read). */
static uint64_t read_slots(struct bucket *b, struct slots_seen *seen)
{
	for (;;) {
		uint64_t c = ctrl_load(b);
		seen->n = 0;
		for (unsigned s = 0; s < SLOTS && !(c & CTRL_MOVED); s++) {
			if (!tag_of(c, s))
				continue;
			seen->key[seen->n] = slot_key(&b->slot[s]);
			seen->len[seen->n] = tag_of(c, s) - 1;
			seen->value[seen->n++] = slot_value(&b->slot[s]);
		}
		if ((c & CTRL_MOVED) || ctrl_unchanged(b, c))
			return c;
	}
}

static bool passes(struct filter f, uint64_t hash)
{
	return (hash & f.mask) == f.val;
}

static int visit_table(const struct visit *v, struct table *t, struct filter f);

static int visit_chain(const struct visit *v, struct node *n, struct filter f)
{
	for (; n; n = next_of(n)) {
		if (!passes(f, n->hash))
			continue;
		int rc = v->fn(n->key, n->keylen, node_value(n), v->arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* Visits bucket i of t: its slots as they were at one instant, then its
 * chain; or, when it moved, its buckets in the next table. */
static int visit_bucket(const struct visit *v, struct table *t, size_t i, struct filter f)
{
	struct bucket *b = &t->buckets[i];
	struct slots_seen seen;
	if (read_slots(b, &seen) & CTRL_MOVED)
		return visit_table(v, next_table(t), f);
	for (unsigned j = 0; j < seen.n; j++) {
		/* a slot of a table smaller than the filter's may hold others */
		if (f.mask > t->mask && !passes(f, map_hash(v->m, &seen.key[j], seen.len[j])))
			continue;
		int rc = v->fn(&seen.key[j], seen.len[j], seen.value[j], v->arg);
		if (rc)
			return rc;
	}
	return visit_chain(v, overflow_of(b), f);
}

/* Visits the buckets of t that can hold entries passing f. */
static int visit_table(const struct visit *v, struct table *t, struct filter f)
{
	size_t stride = f.mask + 1, first = f.val & t->mask;
	if (t->mask <= f.mask)
		stride = t->mask + 1; /* one bucket: first */
	for (size_t i = first; i <= t->mask; i += stride) {
		struct filter g = t->mask > f.mask ? (struct filter){ t->mask, i } : f;
		int rc = visit_bucket(v, t, i, g);
		if (rc)
			return rc;
	}
	return 0;
}

int sync_map_foreach(sync_map_t *m, visit_fn fn, void *arg)
{
	if (!m || !fn)
		return EINVAL;
	struct visit v = { m, fn, arg };
	sync_epoch_enter();
	struct table *t = current_table(m);
	int rc = 0;
	for (size_t i = 0; i <= t->mask && rc == 0; i++)
		rc = visit_table(&v, t, (struct filter){ t->mask, i });
	sync_epoch_exit();
	return rc;
}
