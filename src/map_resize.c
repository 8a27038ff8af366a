/* The map's tables, entry counter and incremental resize: writers move
 * MIGRATE_STEP buckets per operation into a table twice (or half) as large,
 * in the manner of Java's ConcurrentHashMap (Doug Lea, JDK 8: forwarding
 * buckets, "lastRun" reuse of a chain's tail); inline slots and the chain
 * nodes before the reused tail are copied, a short key into a free slot of
 * its new bucket when there is one. See map_internal.h for the bucket.
 *
 * Invariants:
 * - One resize at a time: a table's `next` is set before any of its buckets
 *   is marked MOVED, and the map's table pointer moves to `next` only after
 *   every bucket has. Only the holder of `migrating` moves buckets.
 * - Migration never rewires a non-NULL `next` that a reader of the old chain
 *   may follow: it copies the nodes it would have to rewire, and links the
 *   reused tail (whose last `next` is NULL) in front of the new chain.
 * - When the table grows, the two new buckets of an old one are private
 *   until the old one says MOVED (every writer and reader reaches them only
 *   through it); when it shrinks, the new bucket is shared with writers
 *   already there, and the migration locks it (old bucket first: writers
 *   lock one bucket at a time, so no cycle). */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "epoch_internal.h"
#include "map_internal.h"
#include "thread.h"

#define MIN_BUCKETS ((size_t)8)
#define LOAD_MAX 2u       /* entries per bucket past which the table grows */
#define SHRINK_BELOW 4u   /* shrinks below one entry per SHRINK_BELOW buckets */
#define MIGRATE_STEP 32u  /* buckets a writer moves per operation */
#define PREFETCH_AHEAD 8u /* buckets ahead of the migration that are prefetched */
#define CHECK_EVERY_MAX 64u

/* ---- tables ------------------------------------------------------------- */

/* Tables from this size on get their own mapping (no heap fragmentation,
 * and munmap gives the memory back at once). The table that create makes
 * for a large hint also asks for transparent huge pages and is faulted in
 * there, so that a get's bucket load rarely misses the TLB; a table made
 * by a resize is not, since faulting in a huge page (zeroing 2 MB, maybe
 * compacting memory first) would stall the put that touches it. */
#define BIG_TABLE_BYTES ((size_t)2 << 20)
#define HUGE_PAGE ((size_t)2 << 20) /* x86-64's transparent huge page; a
					   * multiple of the page size elsewhere too */
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

/* A mapping of `bytes` that starts on a huge-page boundary (so that every
 * whole 2 MiB of the table can be a huge page): a larger mapping, trimmed. */
static void *map_huge_aligned(size_t bytes)
{
	if (bytes > SIZE_MAX - HUGE_PAGE)
		return NULL;
	char *p = mmap(NULL, bytes + HUGE_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
	if (head)
		munmap(p, head);
	munmap(p + head + bytes, HUGE_PAGE - head);
	return p + head;
}

static struct table *table_alloc(size_t bytes, bool at_create)
{
	if (bytes < BIG_TABLE_BYTES) {
		struct table *t = aligned_alloc(CACHE_LINE, bytes);
		if (t)
			memset(t, 0, bytes);
		return t;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	bytes = (bytes + page - 1) / page * page; /* the trimmed tail starts on a page */
	struct table *t = map_huge_aligned(bytes);
	if (!t)
		return NULL;
	if (at_create)
		fault_in_huge(t, bytes);
	t->mapped = bytes;
	return t;
}

struct table *table_new(size_t buckets, bool at_create)
{
	if (buckets > (SIZE_MAX - sizeof(struct table)) / sizeof(struct bucket))
		return NULL;
	size_t bytes = sizeof(struct table) + buckets * sizeof(struct bucket);
	int saved = errno; /* a resize fails inside int-returning calls */
	struct table *t = table_alloc(bytes, at_create);
	errno = saved;
	if (!t)
		return NULL;
	ann_internal(t, bytes);
	t->mask = buckets - 1;
	return t;
}

/* Frees a table; also an epoch callback. */
void table_free(void *p)
{
	struct table *t = p;
	if (t->mapped)
		munmap(t, t->mapped);
	else
		free(t);
}

size_t buckets_for(size_t entries)
{
	size_t b = MIN_BUCKETS;
	while (b < entries / LOAD_MAX + (entries % LOAD_MAX != 0) && b <= SIZE_MAX / 2)
		b *= 2;
	return b;
}

/* ---- entry counter ------------------------------------------------------ */

/* How often (in one cell's updates) a writer sums the cells to check the
 * load factor: every update for small tables, every 64 for large ones, so
 * the count overshoots a threshold by at most a quarter of the buckets. */
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

size_t count_sum(struct sync_map *m)
{
	int64_t sum = 0;
	for (unsigned i = 0; i < COUNTER_CELLS; i++)
		/* relaxed: see count_add() */
		sum += atomic_load_explicit(&m->cells[i].n, memory_order_relaxed);
	return sum > 0 ? (size_t)sum : 0;
}

/* ---- migration: planning one bucket ------------------------------------ */

/* What one new bucket receives from the old one: entries for its free slots
 * (from old slots, or chain nodes promoted into a slot), and a private list
 * of nodes (copies, then the reused tail) to put in front of its chain. */
struct target {
	size_t index;
	struct bucket *b;
	uint64_t ctrl;  /* its ctrl: 0 when private, else as it was locked */
	unsigned room;  /* free slots not yet promised */
	unsigned n_inline;
	uint64_t key[SLOTS];
	unsigned tag[SLOTS];
	void *value[SLOTS];
	const void *from[SLOTS]; /* the old slot or node, for the tools */
	struct node *list;
	struct node *tail;
};

struct plan {
	struct target tg[2];
	unsigned n; /* 2 when the table grows, 1 when it shrinks */
	size_t new_mask;
	struct node *run; /* the reused tail of the old chain, or NULL */
};

static unsigned target_no(const struct plan *p, uint64_t hash)
{
	return p->n == 2 && (hash & p->new_mask) == p->tg[1].index;
}

static unsigned free_slots(uint64_t ctrl)
{
	unsigned n = 0;
	for (unsigned s = 0; s < SLOTS; s++)
		n += !tag_of(ctrl, s);
	return n;
}

/* Whether a chain node moves into a free slot of its new bucket. */
static bool fits_slot(const struct node *n, unsigned room)
{
	return n->keylen <= INLINE_KEY_MAX && room;
}

static void take_inline(struct target *t, uint64_t key, unsigned tag, void *value,
			const void *from)
{
	unsigned k = t->n_inline++;
	t->key[k] = key;
	t->tag[k] = tag;
	t->value[k] = value;
	t->from[k] = from;
	t->room--;
}

static void push_node(struct target *t, struct node *c)
{
	atomic_init(&c->next, t->list);
	if (!t->list)
		t->tail = c;
	t->list = c;
}

/* A copy of an entry for a target's list; false when out of memory. */
static bool push_copy(struct target *t, uint64_t hash, const void *key, size_t len,
		      void *value, const void *from)
{
	ann_acquire(from); /* the key and value's hand-over pass to the copy */
	struct node *c = node_new(hash, key, len, value);
	if (!c)
		return false;
	ann_release(c);
	push_node(t, c);
	return true;
}

/* Plans the old bucket's slots: each into a free slot of its target, or
 * (a shrink's full target) a copy. */
static bool plan_slots(struct sync_map *m, struct plan *p, struct bucket *ob, uint64_t c)
{
	for (unsigned s = 0; s < SLOTS; s++) {
		unsigned tag = tag_of(c, s);
		if (!tag)
			continue;
		struct slot *sl = &ob->slot[s];
		/* relaxed: slots change only under the bucket lock we hold */
		uint64_t key = atomic_load_explicit(&sl->key, memory_order_relaxed);
		void *value = atomic_load_explicit(&sl->value, memory_order_relaxed);
		uint64_t hash = map_hash(m, &key, tag - 1);
		struct target *t = &p->tg[target_no(p, hash)];
		if (t->room)
			take_inline(t, key, tag, value, sl);
		else if (!push_copy(t, hash, &key, tag - 1, value, sl))
			return false;
	}
	return true;
}

/* The reused tail: the nodes after the last one that is promoted or goes to
 * another new bucket than its successors. *last: the chain's last node. */
static struct node *reused_tail(struct plan *p, struct node *head, struct node **last)
{
	unsigned room[2] = { p->tg[0].room, p->tg[1].room }, run_to = 0;
	struct node *run = NULL;
	*last = NULL;
	for (struct node *n = head; n; n = next_of(n)) {
		unsigned k = target_no(p, n->hash);
		*last = n;
		if (fits_slot(n, room[k])) {
			room[k]--;
			run = NULL;
		} else if (!run || k != run_to) {
			run = n;
			run_to = k;
		}
	}
	return run;
}

/* Plans the chain: the reused tail as it is, the nodes before it promoted
 * (the same choices as reused_tail()'s) or copied. */
static bool plan_chain(struct plan *p, struct node *head)
{
	struct node *last;
	p->run = reused_tail(p, head, &last);
	if (p->run) { /* after the copies of slots (private: relaxed) */
		struct target *t = &p->tg[target_no(p, p->run->hash)];
		if (t->tail)
			atomic_store_explicit(&t->tail->next, p->run, memory_order_relaxed);
		else
			t->list = p->run;
		t->tail = last;
	}
	for (struct node *n = head; n != p->run; n = next_of(n)) {
		struct target *t = &p->tg[target_no(p, n->hash)];
		ann_acquire(n); /* TSan intercepts the key's memcpy */
		/* relaxed: values change only under the bucket lock we hold */
		void *value = atomic_load_explicit(&n->value, memory_order_relaxed);
		if (fits_slot(n, t->room)) {
			take_inline(t, key_pack(n->key, n->keylen), (unsigned)n->keylen + 1, value, n);
		} else if (!push_copy(t, n->hash, n->key, n->keylen, value, n)) {
			return false;
		}
	}
	return true;
}

/* ---- migration: moving one bucket --------------------------------------- */

/* Publishes what a new bucket receives: its slots, then its chain, then
 * (one release store) its tags. */
static void target_commit(struct target *t)
{
	uint64_t c = t->ctrl;
	for (unsigned k = 0; k < t->n_inline; k++) {
		int s = slot_free(c); /* planned: there is one */
		ann_acquire(t->from[k]);
		slot_fill(&t->b->slot[s], t->key[k], t->value[k]);
		c = with_tag(c, (unsigned)s, t->tag[k]);
	}
	if (t->list) {
		/* relaxed: we hold the bucket (or it is private) */
		struct node *head = atomic_load_explicit(&t->b->overflow, memory_order_relaxed);
		if (head) /* release: an old-chain reader that reaches the tail sees the rest */
			atomic_store_explicit(&t->tail->next, head, memory_order_release);
		/* release: pairs with overflow_of() */
		atomic_store_explicit(&t->b->overflow, t->list, memory_order_release);
	}
	bucket_unlock(t->b, c);
}

static void retire_list_until(struct node *n, struct node *stop)
{
	while (n != stop) {
		struct node *next = next_of(n);
		epoch_retire_nowait(n, free);
		n = next;
	}
}

static void plan_init(struct plan *p, struct table *t, struct table *nt, size_t i)
{
	memset(p, 0, sizeof *p);
	p->new_mask = nt->mask;
	p->n = nt->mask > t->mask ? 2 : 1;
	for (unsigned k = 0; k < p->n; k++) {
		struct target *tg = &p->tg[k];
		tg->index = (i & nt->mask) + k * (t->mask + 1);
		tg->b = &nt->buckets[tg->index];
		/* a shrink's target is shared: lock it (it never moves: one
		 * resize at a time); a growth's two are private and empty */
		tg->ctrl = p->n == 1 ? bucket_lock(tg->b) : 0;
		tg->room = free_slots(tg->ctrl);
	}
}

/* Moves bucket i of t into nt. False when a copy cannot be allocated: the
 * buckets are then unlocked unchanged. */
static bool migrate_bucket(struct sync_map *m, struct table *t, struct table *nt, size_t i)
{
	struct bucket *ob = &t->buckets[i];
	uint64_t c = bucket_lock(ob); /* only we set MOVED */
	struct node *head = overflow_of(ob);
	struct plan p = { .run = NULL };
	bool empty = !(c & TAGS_MASK) && !head;
	if (!empty) {
		plan_init(&p, t, nt, i);
		if (!plan_slots(m, &p, ob, c) || !plan_chain(&p, head)) {
			for (unsigned k = 0; k < p.n; k++)
				free_nodes(p.tg[k].list, p.run, NULL);
			if (p.n == 1)
				bucket_unlock(p.tg[0].b, p.tg[0].ctrl);
			bucket_unlock(ob, c);
			return false;
		}
		for (unsigned k = 0; k < p.n; k++)
			target_commit(&p.tg[k]);
	}
	/* release: whoever sees MOVED sees the new buckets committed above */
	atomic_store_explicit(&ob->ctrl, ((c & ~TAGS_MASK) | CTRL_MOVED) + VERSION_ONE,
			      memory_order_release);
	retire_list_until(head, p.run);
	return true;
}

/* ---- migration: steps --------------------------------------------------- */

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

/* Starts loading bucket i a few buckets before the migration reaches it. */
static void prefetch_bucket(struct table *t, size_t i)
{
	if (i > t->mask)
		return;
	__builtin_prefetch(&t->buckets[i]);
}

/* Moves up to MIGRATE_STEP buckets of a resize in progress, if no other
 * writer is doing so; switches tables after the last one. */
void help_migrate(struct sync_map *m)
{
	struct table *t = current_table(m);
	if (!next_table(t) || !migrate_trylock(m))
		return;
	t = current_table(m);
	struct table *nt = next_table(t);
	for (unsigned k = 0; nt && k < MIGRATE_STEP && t->migrated <= t->mask; k++) {
		prefetch_bucket(t, t->migrated + PREFETCH_AHEAD);
		if (!migrate_bucket(m, t, nt, t->migrated))
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

/* Grows past LOAD_MAX entries per bucket, shrinks below one entry per
 * SHRINK_BELOW buckets. */
static void check_load(struct sync_map *m)
{
	struct table *t = current_table(m);
	if (next_table(t))
		return;
	size_t buckets = t->mask + 1, n = count_sum(m);
	if (n / LOAD_MAX >= buckets && buckets <= SIZE_MAX / 2 / sizeof(struct bucket))
		start_resize(m, t, buckets * 2);
	else if (n < buckets / SHRINK_BELOW && buckets > m->min_buckets)
		start_resize(m, t, buckets / 2);
}

void count_and_check(struct sync_map *m, int64_t d)
{
	struct table *t = current_table(m);
	if (count_add(m, d, t->mask + 1))
		check_load(m);
}
