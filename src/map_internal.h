/* The concurrent hash map's layout and bucket protocol, shared by map.c
 * (lookups, writers, iteration) and map_resize.c (tables, counting,
 * migration). A bucket is one cache line: a control word, the head of an
 * overflow chain, and three inline slots for keys of up to 8 bytes, so a
 * get of a short key costs one cache miss; readers validate the control
 * word as a sequence lock does, and never wait (the slot layout after
 * Swiss tables, Abseil 2017; the validation after Boehm, "Can seqlocks get
 * along with programming language memory models?", MSPC 2012).
 *
 * The control word (ctrl) of a bucket:
 * - bit 0 LOCK: a writer holds the bucket; set by a CAS (bucket_lock),
 *   cleared by the one release store that publishes the writer's change.
 * - bit 1 MOVED: the bucket lives in table->next now; set once, by the
 *   migration, with LOCK and the tags cleared; the bucket never changes
 *   again.
 * - bits 2-13: one 4-bit tag per slot: 0 empty, else the key's length + 1.
 * - bits 14-63: a version, incremented by every store that changes a tag or
 *   sets MOVED. Only a writer holding LOCK stores to ctrl.
 * Invariants:
 * - A slot's key and value words are written only by the LOCK holder, and
 *   its key only while its tag is 0 (before the store that sets the tag):
 *   so while ctrl keeps one value (a reader's c1, loaded again as c2), every
 *   tagged slot holds one key. A removal clears the tag and leaves the words
 *   stale; a later insert of another key into that slot stores the key and
 *   value with release, after its LOCK CAS, so a reader that loads them
 *   (acquire) then loads a ctrl at least as new as that CAS: not its c1.
 * - A value of a tagged slot may change in place (put, replace): that is
 *   the key's next value, and a reader may return either.
 * - A key lives in one place (a slot or a chain node) from its insert to its
 *   remove; only a migration moves it (to table->next, under MOVED).
 * Model: tests/models/map_slot.pml (the slots, the get's validation, and
 * eight mutants, one per ordering or check above). */
#ifndef SYNC_SRC_MAP_INTERNAL_H
#define SYNC_SRC_MAP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sync/map.h>

#include "annotate.h"
#include "cacheline.h"

#define MAP_HIDDEN __attribute__((visibility("hidden")))

#define SLOTS 3u
#define INLINE_KEY_MAX 8u /* longer keys live in chain nodes */
#define CTRL_LOCK ((uint64_t)1)
#define CTRL_MOVED ((uint64_t)2)
#define TAG_SHIFT 2u
#define TAG_BITS 4u
#define TAG_FIELD ((uint64_t)0xf)
#define VERSION_ONE ((uint64_t)1 << (TAG_SHIFT + SLOTS * TAG_BITS))
#define TAGS_MASK ((VERSION_ONE - 1) & ~(CTRL_LOCK | CTRL_MOVED))

struct node {
	_Atomic(struct node *) next;
	_Atomic(void *) value;
	uint64_t hash;
	size_t keylen;
	unsigned char key[];
};

struct slot {
	_Atomic uint64_t key; /* the key's bytes, zero-padded to 8 */
	_Atomic(void *) value;
};

struct bucket {
	_Alignas(CACHE_LINE) _Atomic uint64_t ctrl;
	_Atomic(struct node *) overflow; /* keys that found no slot, or longer keys */
	struct slot slot[SLOTS];
};

_Static_assert(sizeof(struct bucket) == CACHE_LINE, "a bucket is one cache line");

struct table {
	size_t mask;                  /* buckets - 1 */
	size_t mapped;                /* bytes mmap'ed, or 0: from aligned_alloc */
	_Atomic(struct table *) next; /* table being migrated into, or NULL */
	size_t migrated;              /* buckets moved so far; under migrating */
	struct bucket buckets[];
};

#define COUNTER_CELLS 16u /* striped entry counter, one cache line each */

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

/* A key as the operations use it: its bytes, hash, and for short keys
 * the packed word and tag its slot would hold (tag 0: too long). */
struct key {
	const void *bytes;
	size_t len;
	uint64_t hash;
	uint64_t packed;
	unsigned tag;
};

/* A short key's slot word: its bytes, zero-padded to 8 (len <= 8). */
static inline uint64_t key_pack(const void *key, size_t len)
{
	uint64_t w = 0;
	if (len)
		memcpy(&w, key, len);
	return w;
}

/* ---- control words and slots ------------------------------------------- */

static inline unsigned tag_of(uint64_t ctrl, unsigned s)
{
	return (unsigned)((ctrl >> (TAG_SHIFT + s * TAG_BITS)) & TAG_FIELD);
}

/* ctrl with slot s's tag set to tag, one version on, LOCK clear. */
static inline uint64_t with_tag(uint64_t ctrl, unsigned s, unsigned tag)
{
	uint64_t shift = TAG_SHIFT + s * TAG_BITS;
	ctrl &= ~(CTRL_LOCK | (TAG_FIELD << shift));
	return (ctrl | ((uint64_t)tag << shift)) + VERSION_ONE;
}

static inline uint64_t ctrl_load(struct bucket *b)
{
	/* pairs with the release stores of bucket_unlock() and the migration */
	return atomic_load_explicit(&b->ctrl, memory_order_acquire);
}

/* A free slot of a bucket whose ctrl is c, or -1. */
static inline int slot_free(uint64_t c)
{
	for (unsigned s = 0; s < SLOTS; s++)
		if (!tag_of(c, s))
			return (int)s;
	return -1;
}

/* The key word of slot s, as 8 bytes. */
static inline uint64_t slot_key(struct slot *sl)
{
	/* acquire pairs with slot_fill()'s release: a reader that sees a key
	 * stored after its c1 then loads a newer ctrl (see the invariants) */
	return atomic_load_explicit(&sl->key, memory_order_acquire);
}

/* A slot's value, loaded to be handed to the caller. */
static inline void *slot_value(struct slot *sl)
{
	/* acquire pairs with the release stores of slot_fill() and swap_value() */
	void *value = atomic_load_explicit(&sl->value, memory_order_acquire);
	ann_acquire(sl); /* the writer's ann_release */
	return value;
}

/* Fills a slot whose tag is 0, in a bucket the caller holds; the tag is
 * published by the caller's next ctrl store. */
static inline void slot_fill(struct slot *sl, uint64_t packed, void *value)
{
	ann_release(sl);
	/* release: orders the LOCK CAS before these stores (see the invariants);
	 * pairs with slot_key() and slot_value() */
	atomic_store_explicit(&sl->key, packed, memory_order_release);
	atomic_store_explicit(&sl->value, value, memory_order_release);
}

/* ---- nodes -------------------------------------------------------------- */

static inline struct node *next_of(struct node *n)
{
	/* pairs with the release stores that link or unlink a successor */
	return atomic_load_explicit(&n->next, memory_order_acquire);
}

static inline struct node *overflow_of(struct bucket *b)
{
	/* pairs with the release stores that publish a chain head */
	return atomic_load_explicit(&b->overflow, memory_order_acquire);
}

/* A node's value, loaded to be handed to the caller. */
static inline void *node_value(struct node *n)
{
	/* acquire pairs with the release store that put the value */
	void *value = atomic_load_explicit(&n->value, memory_order_acquire);
	ann_acquire(n); /* the writer's ann_release */
	return value;
}

/* ---- tables ------------------------------------------------------------- */

static inline struct table *current_table(struct sync_map *m)
{
	/* pairs with the release store that switches tables after a resize */
	return atomic_load_explicit(&m->table, memory_order_acquire);
}

static inline struct table *next_table(struct table *t)
{
	/* pairs with the release store of start_resize() */
	return atomic_load_explicit(&t->next, memory_order_acquire);
}

static inline struct bucket *bucket_of(struct table *t, uint64_t hash)
{
	return &t->buckets[hash & t->mask];
}

/* ---- shared between map.c and map_resize.c ----------------------------- */

MAP_HIDDEN uint64_t map_hash(const struct sync_map *m, const void *key, size_t len);
MAP_HIDDEN struct node *node_new(uint64_t h, const void *key, size_t len, void *value);
MAP_HIDDEN void free_nodes(struct node *n, struct node *stop, void (*free_value)(void *));
MAP_HIDDEN uint64_t bucket_lock(struct bucket *b);
MAP_HIDDEN void bucket_unlock(struct bucket *b, uint64_t ctrl);

MAP_HIDDEN struct table *table_new(size_t buckets, bool at_create);
MAP_HIDDEN void table_free(void *t);
MAP_HIDDEN size_t buckets_for(size_t entries);
MAP_HIDDEN void help_migrate(struct sync_map *m);
MAP_HIDDEN void count_and_check(struct sync_map *m, int64_t d);
MAP_HIDDEN size_t count_sum(struct sync_map *m);

#endif /* SYNC_SRC_MAP_INTERNAL_H */
