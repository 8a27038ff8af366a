/* Queue rows: sync_queue (Ramalhete and Correia's FAAArrayQueue, 2016)
 * against ck_hp_fifo (Michael and Scott's queue, 1996, with Michael's
 * hazard pointers, 2004, from ck_hp), liburcu's wfcqueue (wait-free enqueue,
 * dequeue under the head mutex) and the queue a user would write in ten
 * minutes (a singly linked list under one pthread_mutex, malloc per push,
 * free per pop); and against the fetch-and-add ceiling, two atomic
 * fetch-and-adds on one shared counter per push+pop pair, shown beside the
 * same two on two counters a line apart (the enqueue and dequeue counters
 * of a queue built on fetch-and-add, nothing else). Workloads: every
 * thread pushes then pops (1, 2, 4, 8 threads), and producers apart from
 * consumers (1+1, 2+2). Bounded rows, capacities 64 and 1024, producers
 * apart from consumers (1+1, 2+2, 4+4): sync_queue_create_bounded
 * (Nikolaev's SCQ, 2019) by push/pop against ck_ring's MPMC ring (both
 * retried by the same loop when full or empty), and by push_wait/pop_wait
 * against the textbook blocking ring (an array under one pthread_mutex
 * with two pthread_conds, not full and not empty). ck's and liburcu's
 * functions are inline (liburcu's with _LGPL_SOURCE, as its users build);
 * each is wrapped in a plain static function, called through the same
 * pointer type as ours. The C++ queues users pick, where configure finds
 * them (bench/peers.h): oneTBB's tbb::concurrent_queue (push, try_pop) and
 * moodycamel::ConcurrentQueue (enqueue, try_dequeue, no tokens), each
 * called through one extern "C" function per operation, as ours is a call
 * into libsync. */
#define _LGPL_SOURCE
#include <ck_hp_fifo.h>
#include <ck_ring.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/wfcqueue.h>

#include <sync/queue.h>

#include "harness.h"
#include "peers.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* Threads a queue workload supports: producers are told apart in the items
 * they push, and each thread's tallies live in the run's shared data. */
#define MAX_THREADS 8

/* A consumer that finds the queue empty pauses, and yields its CPU after
 * this many empty pops in a row (a producer may share it). */
#define YIELD_AFTER 64

/* ---- Recycled nodes ---------------------------------------------------------- */

/* Nodes that a thread got back from pop (ck: that ck_hp found no longer
 * hazardous), kept for its next pushes, so that the intrusive queues (ck,
 * wfcq) do no malloc or free per operation. A consumer holding
 * 2 x POOL_BATCH nodes hands a chain of POOL_BATCH to the run's depot,
 * where a producer that ran out takes it. */
#define POOL_BATCH 64

struct pool_link {
	struct pool_link *next;  /* in a pool, or in a chain */
	struct pool_link *chain; /* a chain's first node in the depot: the next chain */
};

struct depot {
	pthread_mutex_t lock;
	_Atomic(struct pool_link *) chains; /* written under lock */
};

struct pool {
	struct pool_link *head;
	unsigned n;
	struct depot *depot;
};

/* Takes a chain from the depot, if there is one. */
static struct pool_link *pool_refill(struct pool *p)
{
	struct depot *d = p->depot;

	/* relaxed: only a hint that a chain may be there; the lock orders the
	 * chain's nodes (pairs with the unlock in pool_hand_off) */
	if (!atomic_load_explicit(&d->chains, memory_order_relaxed))
		return NULL;
	pthread_mutex_lock(&d->lock);
	struct pool_link *c = atomic_load_explicit(&d->chains, memory_order_relaxed);
	if (c)
		atomic_store_explicit(&d->chains, c->chain, memory_order_relaxed);
	pthread_mutex_unlock(&d->lock);
	if (c)
		p->n = POOL_BATCH;
	return c;
}

/* A node for the next push; NULL: none recycled, the caller allocates. */
static struct pool_link *pool_get(struct pool *p)
{
	struct pool_link *l = p->head;
	if (!l && !(l = pool_refill(p)))
		return NULL;
	p->head = l->next;
	p->n--;
	return l;
}

static void pool_hand_off(struct pool *p)
{
	struct pool_link *first = p->head, *last = first;
	for (unsigned i = 1; i < POOL_BATCH; i++)
		last = last->next;
	p->head = last->next;
	last->next = NULL;
	p->n -= POOL_BATCH;
	pthread_mutex_lock(&p->depot->lock);
	first->chain = atomic_load_explicit(&p->depot->chains, memory_order_relaxed);
	atomic_store_explicit(&p->depot->chains, first, memory_order_relaxed);
	pthread_mutex_unlock(&p->depot->lock);
}

static void pool_put(struct pool *p, struct pool_link *l)
{
	l->next = p->head;
	p->head = l;
	if (++p->n >= 2 * POOL_BATCH)
		pool_hand_off(p);
}

/* ---- Per-thread tallies and the run's shared data ------------------------------ */

/* One thread's: its recycled nodes and what it pushed and popped. */
struct queue_local {
	_Alignas(LINE) struct pool pool;
	ck_hp_record_t *hp; /* ck: this thread's hazard pointers, NULL until registered */
	uint64_t pushed, popped;   /* items, end markers not counted */
	uint64_t sum_in, sum_out;  /* checksums: the items' values added up */
	uint64_t out_of_order;     /* an item of a producer older than one seen before */
	uint64_t bad;              /* an item no producer pushed */
	uint64_t empty;            /* pops that found the queue empty */
	uint64_t full;             /* pushes that found a bounded queue full */
	uint64_t errors;           /* push or pop failed (ENOMEM, EINVAL) */
	uint64_t ends;             /* end markers popped (producer/consumer runs) */
	uint64_t last[MAX_THREADS]; /* per producer: 1 + sequence of the last item popped */
};

struct queue_shared {
	struct depot depot;
	_Alignas(LINE) atomic_uint_fast64_t faa; /* the ceiling's counter */
	_Alignas(LINE) atomic_uint_fast64_t faa2; /* the second line's, "2 lines" */
	_Alignas(LINE) atomic_bool failed;       /* a producer gave up: consumers stop */
	struct queue_local local[MAX_THREADS];
};

/* ---- The implementations ---------------------------------------------------------- */

/* A queue behind function pointers; base.init creates it in the run's
 * object of base.size bytes. push and pop return 0, EAGAIN (pop: empty) or
 * an error. A thread calls thread_start (where not NULL) before its first
 * push or pop. The harness sees only base. */
struct queue_impl {
	struct bench_lock base;
	void (*thread_start)(void *queue, struct queue_local *local);
	int (*push)(void *queue, struct queue_local *local, void *item);
	int (*pop)(void *queue, struct queue_local *local, void **item);
	/* pop that never blocks, for the final emptiness check; NULL: pop */
	int (*try_pop)(void *queue, struct queue_local *local, void **item);
	/* no queue: the loops do fetch-and-adds only, on this many lines
	 * (1: the ceiling; 2: the bare counters of a queue); 0: a queue */
	int ceiling;
	/* pop may find the queue empty while it holds items (not linearizable):
	 * pairwise runs retry such pops and are not failed for them */
	bool spurious_empty;
};

static const struct queue_impl *impl_of(const struct bench_objects *run)
{
	return (const struct queue_impl *)run->impl; /* base is the first member */
}

/* ours: the run's object holds the queue's handle */

static void ours_init(void *obj)
{
	*(sync_queue_t **)obj = sync_queue_create(); /* NULL: every push fails */
}

static int ours_push(void *obj, struct queue_local *local, void *item)
{
	(void)local;
	return sync_queue_push(*(sync_queue_t **)obj, item);
}

static int ours_pop(void *obj, struct queue_local *local, void **item)
{
	(void)local;
	return sync_queue_pop(*(sync_queue_t **)obj, item);
}

/* ck_hp_fifo. ck's other MPMC queue, ck_fifo_mpmc, returns the old stub
 * node of each dequeue for reuse (`garbage`), and ck documents no scheme
 * for reusing it (no man page; the header only notes that a head snapshot
 * may have been re-used). Reused at once from a per-thread free list, as
 * Michael and Scott's free list would, it broke FIFO order here: in 2 of
 * some 30 pairwise runs of 2 and 4 threads (2 CPUs) a thread popped one
 * producer's items out of order, and pops found the queue empty right
 * after a push of their own (tens per million). Its enqueue resets the
 * new node's next generation to 0, so a stale enqueuer's double-width CAS
 * can link after a node that is being recycled, and its dequeue reports
 * empty without checking that the head it read is still the head. Reuse
 * needs a safe memory reclamation scheme, and ck ships the queue with one:
 * ck_hp_fifo, the same algorithm with hazard pointers. A dequeued node
 * goes to ck_hp_free; once no thread's hazard pointer holds it, ck_hp's
 * destructor puts it in the freeing thread's pool, for its next pushes. */
#define CK_HP_THRESHOLD 128 /* retired nodes per thread before a ck_hp scan */

struct ck_queue {
	_Alignas(LINE) ck_hp_fifo_t fifo;
	_Alignas(LINE) ck_hp_t hp;
};

struct ck_node {
	ck_hp_fifo_entry_t entry; /* first: the dequeued entry is the node */
	struct pool_link link;
};

/* The pool of the thread running ck_hp's destructor: the one that freed. */
static _Thread_local struct pool *ck_pool;

static void ck_recycle(void *p)
{
	pool_put(ck_pool, &((struct ck_node *)p)->link);
}

static void ck_init(void *obj)
{
	struct ck_queue *q = obj;
	struct ck_node *stub = aligned_alloc(_Alignof(struct ck_node), sizeof *stub);
	if (!stub)
		abort(); /* the forked run fails */
	ck_hp_init(&q->hp, CK_HP_FIFO_SLOTS_COUNT, CK_HP_THRESHOLD, ck_recycle);
	ck_hp_fifo_init(&q->fifo, &stub->entry);
}

/* Registers the thread's record once (records are never freed: ck_hp
 * keeps them); also sets the pool of the calling thread. */
static void ck_thread_start(void *obj, struct queue_local *local)
{
	struct ck_queue *q = obj;
	ck_pool = &local->pool;
	if (local->hp)
		return;
	ck_hp_record_t *r = aligned_alloc(LINE, (sizeof *r + LINE - 1) / LINE * LINE);
	void **slots = aligned_alloc(LINE, LINE);
	if (!r || !slots)
		abort();
	memset(slots, 0, LINE);
	ck_hp_register(&q->hp, r, slots);
	local->hp = r;
}

static int ck_push(void *obj, struct queue_local *local, void *item)
{
	struct ck_queue *q = obj;
	struct pool_link *l = pool_get(&local->pool);
	struct ck_node *n = l ? caa_container_of(l, struct ck_node, link)
			      : aligned_alloc(_Alignof(struct ck_node), sizeof *n);
	if (!n)
		return ENOMEM;
	ck_hp_fifo_enqueue_mpmc(local->hp, &q->fifo, &n->entry, item);
	return 0;
}

static int ck_pop(void *obj, struct queue_local *local, void **item)
{
	struct ck_queue *q = obj;
	ck_hp_fifo_entry_t *e = ck_hp_fifo_dequeue_mpmc(local->hp, &q->fifo, item);
	if (!e)
		return EAGAIN;
	ck_hp_free(local->hp, &e->hazard, e, e);
	return 0;
}

/* liburcu's wfcqueue: the dequeue returns the node we enqueued; it waits
 * for a concurrent enqueuer to finish linking after it, so nobody touches
 * the node after it returns and it is reused at once. */
struct wfcq {
	_Alignas(LINE) struct cds_wfcq_head head; /* with its dequeue mutex */
	_Alignas(LINE) struct cds_wfcq_tail tail;
};

struct wfcq_node {
	struct cds_wfcq_node node;
	void *item;
	struct pool_link link;
};

static void wfcq_init(void *obj)
{
	struct wfcq *q = obj;
	cds_wfcq_init(&q->head, &q->tail);
}

static int wfcq_push(void *obj, struct queue_local *local, void *item)
{
	struct wfcq *q = obj;
	struct pool_link *l = pool_get(&local->pool);
	struct wfcq_node *n = l ? caa_container_of(l, struct wfcq_node, link)
				: malloc(sizeof *n);
	if (!n)
		return ENOMEM;
	cds_wfcq_node_init(&n->node);
	n->item = item;
	cds_wfcq_enqueue(&q->head, &q->tail, &n->node);
	return 0;
}

static int wfcq_pop(void *obj, struct queue_local *local, void **item)
{
	struct wfcq *q = obj;
	struct cds_wfcq_node *c = cds_wfcq_dequeue_blocking(&q->head, &q->tail);
	if (!c)
		return EAGAIN;
	struct wfcq_node *n = caa_container_of(c, struct wfcq_node, node);
	*item = n->item;
	pool_put(&local->pool, &n->link);
	return 0;
}

/* The ten-minute queue: a list under one pthread_mutex, malloc per push,
 * free per pop. */
struct list_node {
	struct list_node *next;
	void *item;
};

struct locked_list {
	pthread_mutex_t lock;
	struct list_node *head; /* NULL: empty */
	struct list_node *tail;
};

static void list_init(void *obj)
{
	struct locked_list *q = obj;
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
}

static int list_push(void *obj, struct queue_local *local, void *item)
{
	struct locked_list *q = obj;
	struct list_node *n = malloc(sizeof *n);
	(void)local;
	if (!n)
		return ENOMEM;
	n->next = NULL;
	n->item = item;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

static int list_pop(void *obj, struct queue_local *local, void **item)
{
	struct locked_list *q = obj;
	(void)local;
	pthread_mutex_lock(&q->lock);
	struct list_node *n = q->head;
	if (n && !(q->head = n->next))
		q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	if (!n)
		return EAGAIN;
	*item = n->item;
	free(n);
	return 0;
}

static void ceiling_init(void *obj)
{
	(void)obj;
}

/* The C++ queues: the run's object holds the queue's pointer (NULL: no
 * memory, every push fails). */

#ifdef BENCH_HAVE_TBB
static void tbbq_init(void *obj)
{
	*(void **)obj = bench_tbb_queue_create();
}

static int tbbq_push(void *obj, struct queue_local *local, void *item)
{
	void *q = *(void **)obj;
	(void)local;
	return q ? bench_tbb_queue_push(q, item) : ENOMEM;
}

static int tbbq_pop(void *obj, struct queue_local *local, void **item)
{
	void *q = *(void **)obj;
	(void)local;
	return q ? bench_tbb_queue_pop(q, item) : EAGAIN;
}
#endif

#ifdef BENCH_HAVE_MOODYCAMEL
static void mcq_init(void *obj)
{
	*(void **)obj = bench_moodycamel_create();
}

static int mcq_push(void *obj, struct queue_local *local, void *item)
{
	void *q = *(void **)obj;
	(void)local;
	return q ? bench_moodycamel_push(q, item) : ENOMEM;
}

static int mcq_pop(void *obj, struct queue_local *local, void **item)
{
	void *q = *(void **)obj;
	(void)local;
	return q ? bench_moodycamel_pop(q, item) : EAGAIN;
}
#endif

/* ---- Bounded queues ------------------------------------------------------------ */

static void ours_init64(void *obj)
{
	*(sync_queue_t **)obj = sync_queue_create_bounded(64); /* NULL: every push fails */
}

static void ours_init1024(void *obj)
{
	*(sync_queue_t **)obj = sync_queue_create_bounded(1024);
}

static int ours_push_wait(void *obj, struct queue_local *local, void *item)
{
	(void)local;
	return sync_queue_push_wait(*(sync_queue_t **)obj, item, NULL);
}

static int ours_pop_wait(void *obj, struct queue_local *local, void **item)
{
	(void)local;
	return sync_queue_pop_wait(*(sync_queue_t **)obj, item, NULL);
}

/* ck_ring of 2^k slots holds 2^k - 1 items: slots = capacity. */
#define CK_RING_OBJ(cap) struct { ck_ring_t ring; ck_ring_buffer_t buf[cap]; }
typedef CK_RING_OBJ(64) ck_ring64_t;
typedef CK_RING_OBJ(1024) ck_ring1024_t;

static void ck_ring_init64(void *obj)
{
	ck_ring_init(&((ck_ring64_t *)obj)->ring, 64);
}

static void ck_ring_init1024(void *obj)
{
	ck_ring_init(&((ck_ring1024_t *)obj)->ring, 1024);
}

/* buf follows ring in both layouts: the same offset */
static int ckr_push(void *obj, struct queue_local *local, void *item)
{
	ck_ring64_t *r = obj;
	(void)local;
	return ck_ring_enqueue_mpmc(&r->ring, r->buf, item) ? 0 : EAGAIN;
}

static int ckr_pop(void *obj, struct queue_local *local, void **item)
{
	ck_ring64_t *r = obj;
	(void)local;
	return ck_ring_dequeue_mpmc(&r->ring, r->buf, item) ? 0 : EAGAIN;
}

/* The blocking ring a user would write: one mutex, two conds. */
struct cond_ring {
	pthread_mutex_t lock;
	pthread_cond_t not_full, not_empty;
	size_t head, count, capacity; /* under lock */
	void *slots[];
};

#define COND_RING_SIZE(cap) (sizeof(struct cond_ring) + (cap) * sizeof(void *))

static void cond_ring_init(void *obj, size_t capacity)
{
	struct cond_ring *r = obj;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->not_full, NULL);
	pthread_cond_init(&r->not_empty, NULL);
	r->head = r->count = 0;
	r->capacity = capacity;
}

static void cond_ring_init64(void *obj)
{
	cond_ring_init(obj, 64);
}

static void cond_ring_init1024(void *obj)
{
	cond_ring_init(obj, 1024);
}

static int cond_ring_push(void *obj, struct queue_local *local, void *item)
{
	struct cond_ring *r = obj;
	(void)local;
	pthread_mutex_lock(&r->lock);
	while (r->count == r->capacity)
		pthread_cond_wait(&r->not_full, &r->lock);
	r->slots[(r->head + r->count++) % r->capacity] = item;
	pthread_cond_signal(&r->not_empty);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Takes the first item, under the lock. */
static void *cond_ring_take(struct cond_ring *r)
{
	void *item = r->slots[r->head];
	r->head = (r->head + 1) % r->capacity;
	r->count--;
	pthread_cond_signal(&r->not_full);
	return item;
}

static int cond_ring_pop(void *obj, struct queue_local *local, void **item)
{
	struct cond_ring *r = obj;
	(void)local;
	pthread_mutex_lock(&r->lock);
	while (r->count == 0)
		pthread_cond_wait(&r->not_empty, &r->lock);
	*item = cond_ring_take(r);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int cond_ring_try_pop(void *obj, struct queue_local *local, void **item)
{
	struct cond_ring *r = obj;
	(void)local;
	pthread_mutex_lock(&r->lock);
	int err = r->count ? 0 : EAGAIN;
	if (!err)
		*item = cond_ring_take(r);
	pthread_mutex_unlock(&r->lock);
	return err;
}

#define OURS_BOUNDED(cap, label, pushf, popf, tryf)                             \
	{ .base = { label, sizeof(sync_queue_t *), ours_init##cap },                    \
	  .push = pushf, .pop = popf, .try_pop = tryf }

static const struct queue_impl bounded_spin64 =
	OURS_BOUNDED(64, "sync_queue(64) push/pop", ours_push, ours_pop, NULL);
static const struct queue_impl bounded_spin1024 =
	OURS_BOUNDED(1024, "sync_queue(1024) push/pop", ours_push, ours_pop, NULL);
static const struct queue_impl bounded_wait64 =
	OURS_BOUNDED(64, "sync_queue(64) push_wait", ours_push_wait, ours_pop_wait, ours_pop);
static const struct queue_impl bounded_wait1024 =
	OURS_BOUNDED(1024, "sync_queue(1024) push_wait", ours_push_wait, ours_pop_wait,
		     ours_pop);
static const struct queue_impl ck_ring64 = {
	.base = { "ck_ring mpmc(64)", sizeof(ck_ring64_t), ck_ring_init64 },
	.push = ckr_push, .pop = ckr_pop,
};
static const struct queue_impl ck_ring1024 = {
	.base = { "ck_ring mpmc(1024)", sizeof(ck_ring1024_t), ck_ring_init1024 },
	.push = ckr_push, .pop = ckr_pop,
};
static const struct queue_impl cond_ring64 = {
	.base = { "mutex+2conds(64)", COND_RING_SIZE(64), cond_ring_init64 },
	.push = cond_ring_push, .pop = cond_ring_pop, .try_pop = cond_ring_try_pop,
};
static const struct queue_impl cond_ring1024 = {
	.base = { "mutex+2conds(1024)", COND_RING_SIZE(1024), cond_ring_init1024 },
	.push = cond_ring_push, .pop = cond_ring_pop, .try_pop = cond_ring_try_pop,
};

static const struct queue_impl sync_queue = {
	.base = { .name = "sync_queue", .size = sizeof(sync_queue_t *), .init = ours_init },
	.push = ours_push, .pop = ours_pop,
};

static const struct queue_impl ck_hp_queue = {
	.base = { .name = "ck_hp_fifo", .size = sizeof(struct ck_queue), .init = ck_init },
	.thread_start = ck_thread_start, .push = ck_push, .pop = ck_pop,
};

static const struct queue_impl wfcq = {
	.base = { .name = "cds_wfcq", .size = sizeof(struct wfcq), .init = wfcq_init },
	.push = wfcq_push, .pop = wfcq_pop,
};

static const struct queue_impl mutex_list = {
	.base = { .name = "mutex+list", .size = sizeof(struct locked_list), .init = list_init },
	.push = list_push, .pop = list_pop,
};

#ifdef BENCH_HAVE_TBB
static const struct queue_impl tbb_queue = {
	.base = { .name = "tbb::conc_queue", .size = sizeof(void *), .init = tbbq_init },
	.push = tbbq_push, .pop = tbbq_pop,
};
#endif

#ifdef BENCH_HAVE_MOODYCAMEL
static const struct queue_impl moodycamel_queue = {
	.base = { .name = "moodycamel", .size = sizeof(void *), .init = mcq_init },
	.push = mcq_push, .pop = mcq_pop, .spurious_empty = true,
};
#endif

static const struct queue_impl faa_ceiling = {
	.base = { .name = "2x fetch_add", .size = sizeof(int), .init = ceiling_init },
	.ceiling = 1,
};

static const struct queue_impl faa_two_lines = {
	.base = { .name = "2x faa,2 lines", .size = sizeof(int), .init = ceiling_init },
	.ceiling = 2,
};

/* ---- Items ------------------------------------------------------------------------- */

/* An item is a number, never a valid pointer: producer + 1 in bits 40..47,
 * sequence + 1 below. END_ITEM tells a consumer that a producer is done. */
#define SEQ_BITS 40
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)
#define END_ITEM ((void *)(uintptr_t)1)

static void *make_item(int producer, uint64_t seq)
{
	return (void *)(uintptr_t)(((uint64_t)(producer + 1) << SEQ_BITS) | ((seq + 1) & SEQ_MASK));
}

/* Tallies a popped item and checks FIFO order per producer: of one
 * producer's items, a consumer sees ever higher sequence numbers. */
static void note_popped(struct queue_local *l, void *item)
{
	uint64_t v = (uintptr_t)item, producer = (v >> SEQ_BITS) - 1, seq1 = v & SEQ_MASK;
	l->popped++;
	l->sum_out += v;
	if (producer >= MAX_THREADS || !seq1) {
		l->bad++;
		return;
	}
	l->out_of_order += seq1 <= l->last[producer];
	l->last[producer] = seq1;
}

/* After an EAGAIN of a push or pop: false if a producer failed (give up),
 * else pauses, yielding the CPU every YIELD_AFTER-th time. */
static bool retry_pause(const struct queue_shared *s, unsigned *spins)
{
	/* relaxed: only a signal to give up; the join orders the tallies */
	if (atomic_load_explicit(&s->failed, memory_order_relaxed))
		return false;
	if (++*spins % YIELD_AFTER)
		bench_pause(1);
	else
		sched_yield();
	return true;
}

/* The one retry loop of every implementation: pop until it returns an
 * item or an error. Gives up (EAGAIN) only when a producer failed. */
static int pop_retry(const struct queue_impl *qi, void *q, struct queue_local *l,
		     const struct queue_shared *s, void **item)
{
	unsigned spins = 0;
	int err;

	while ((err = qi->pop(q, l, item)) == EAGAIN) {
		l->empty++;
		if (!retry_pause(s, &spins))
			return EAGAIN;
	}
	return err;
}

/* ---- The fetch-and-add ceiling -------------------------------------------------- */

/* What a queue built on fetch-and-add cannot beat: each pair is two
 * fetch-and-adds on one contended line. Every thread of the run does them,
 * whatever the workload, so the ceiling depends on the thread count only.
 * With lines == 2 the second goes to a counter on another line, as a
 * queue's pop goes to its dequeue counter: the cost of those two counters
 * alone, with no item handed over. */
static uint64_t faa_loop(struct bench_thread *t, uint64_t n, int lines)
{
	const struct bench_objects *run = t->run;
	struct queue_shared *s = run->shared;
	atomic_uint_fast64_t *second = lines == 2 ? &s->faa2 : &s->faa;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		atomic_fetch_add(&s->faa, 1);
		atomic_fetch_add(second, 1);
		bench_pause(run->delay);
	}
	return i;
}

/* ---- The workloads -------------------------------------------------------------- */

static void queue_setup(const struct bench_objects *run)
{
	struct queue_shared *s = run->shared;
	pthread_mutex_init(&s->depot.lock, NULL);
	for (int i = 0; i < MAX_THREADS; i++)
		s->local[i].pool.depot = &s->depot;
	run->impl->init(run->obj[0]);
}

static struct queue_local *local_of(const struct bench_thread *t)
{
	return &((struct queue_shared *)t->run->shared)->local[t->index];
}

/* pairwise: every thread pushes an item, then pops one, n times. The pop
 * always finds one (this thread's push is in the queue and not popped
 * yet, or another item is), so `empty` must stay 0. */
static uint64_t pairwise_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct queue_impl *qi = impl_of(run);
	struct queue_shared *s = run->shared;
	void *q = run->obj[0];
	uint64_t limit = n ? n : UINT64_MAX, i;

	if (qi->ceiling)
		return faa_loop(t, n, qi->ceiling);
	if (t->index >= MAX_THREADS) {
		t->counts[0]++;
		return 0;
	}
	struct queue_local *l = local_of(t);
	if (qi->thread_start)
		qi->thread_start(q, l);
	for (i = 0; i < limit && !bench_stopped(t); i++) {
		void *item = make_item(t->index, i);
		if (qi->push(q, l, item)) {
			l->errors++;
			break;
		}
		l->pushed++;
		l->sum_in += (uintptr_t)item;
		if (pop_retry(qi, q, l, s, &item)) {
			l->errors++;
			break;
		}
		note_popped(l, item);
		bench_pause(run->delay);
	}
	return i;
}

/* Producers and consumers: threads 0 .. T/2 - 1 push, the others pop (with
 * pinning, each CPU gets as many of one as of the other). A producer pushes
 * 2n items (T n in all: the run's pairs), or until the time is up, then one
 * end marker; a consumer pops until it gets one. FIFO: each producer's
 * items come before its marker, so when every consumer has one, every item
 * has been popped. Producers return their items, consumers 0, so the
 * harness's pairs are the items. */
/* push, retried while a bounded queue is full, as pop_retry; an unbounded
 * queue never says EAGAIN. */
static int push_retry(const struct queue_impl *qi, void *q, struct queue_local *l,
		      const struct queue_shared *s, void *item)
{
	unsigned spins = 0;
	int err;

	while ((err = qi->push(q, l, item)) == EAGAIN) {
		l->full++;
		if (!retry_pause(s, &spins))
			return EAGAIN;
	}
	return err;
}

static uint64_t produce(struct bench_thread *t, struct queue_local *l, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct queue_impl *qi = impl_of(run);
	struct queue_shared *s = run->shared;
	void *q = run->obj[0];
	uint64_t limit = n ? 2 * n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		void *item = make_item(t->index, i);
		if (push_retry(qi, q, l, s, item)) {
			l->errors++;
			break;
		}
		l->pushed++;
		l->sum_in += (uintptr_t)item;
		bench_pause(run->delay);
	}
	if (push_retry(qi, q, l, s, END_ITEM)) {
		l->errors++;
		/* relaxed: see pop_retry */
		atomic_store_explicit(&s->failed, true, memory_order_relaxed);
	}
	return i;
}

static void consume(struct bench_thread *t, struct queue_local *l)
{
	const struct bench_objects *run = t->run;
	const struct queue_impl *qi = impl_of(run);
	struct queue_shared *s = run->shared;
	void *q = run->obj[0];
	void *item;

	for (;;) {
		int err = pop_retry(qi, q, l, s, &item);
		if (err) {
			l->errors += err != EAGAIN; /* EAGAIN: a producer failed */
			return;
		}
		if (item == END_ITEM) {
			l->ends++;
			return;
		}
		note_popped(l, item);
		bench_pause(run->delay);
	}
}

static uint64_t prodcons_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct queue_impl *qi = impl_of(run);

	if (qi->ceiling)
		return faa_loop(t, n, qi->ceiling);
	if (t->index >= MAX_THREADS || run->threads % 2) {
		t->counts[0]++;
		return 0;
	}
	struct queue_local *l = local_of(t);
	if (qi->thread_start)
		qi->thread_start(run->obj[0], l);
	if (t->index < run->threads / 2)
		return produce(t, l, n);
	consume(t, l);
	return 0;
}

/* ---- Checks -------------------------------------------------------------------------- */

static bool ceiling_check(const struct bench_objects *run, uint64_t ops)
{
	struct queue_shared *s = run->shared;
	uint64_t faa = atomic_load(&s->faa), faa2 = atomic_load(&s->faa2);
	bool two = impl_of(run)->ceiling == 2;
	if (two ? faa == ops && faa2 == ops : faa == 2 * ops)
		return true;
	fprintf(stderr, "bench: %s: counters %llu, %llu after %llu pairs\n", run->impl->name,
		(unsigned long long)faa, (unsigned long long)faa2, (unsigned long long)ops);
	return false;
}

/* Items in = items out, the checksums agree, FIFO per producer held, the
 * queue is empty at the end; pairwise also: no pop found it empty. */
static bool queue_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2],
			bool pairwise_run)
{
	const struct queue_impl *qi = impl_of(run);
	struct queue_shared *s = run->shared;
	struct queue_local sum = { .pushed = 0 };
	int consumers = run->threads / 2;
	void *left = NULL;

	if (qi->ceiling)
		return ceiling_check(run, ops);
	for (int i = 0; i < run->threads && i < MAX_THREADS; i++) {
		const struct queue_local *l = &s->local[i];
		sum.pushed += l->pushed;
		sum.popped += l->popped;
		sum.sum_in += l->sum_in;
		sum.sum_out += l->sum_out;
		sum.out_of_order += l->out_of_order;
		sum.bad += l->bad;
		sum.empty += l->empty;
		sum.errors += l->errors;
		sum.ends += l->ends;
	}
	if (qi->thread_start) /* thread 0 has gone: this thread takes its place */
		qi->thread_start(run->obj[0], &s->local[0]);
	int err = (qi->try_pop ? qi->try_pop : qi->pop)(run->obj[0], &s->local[0], &left);
	bool ok = !counts[0] && !sum.errors && sum.pushed == ops && sum.popped == ops &&
		  sum.sum_in == sum.sum_out && !sum.out_of_order && !sum.bad && err == EAGAIN &&
		  (pairwise_run ? !sum.empty || qi->spurious_empty
				: sum.ends == (uint64_t)consumers);
	if (ok)
		return true;
	fprintf(stderr, "bench: %s: %llu pairs, %llu pushed, %llu popped, checksum %s, %llu out of"
		" order, %llu bad, %llu errors, %llu empty pops%s, %llu end markers, %s at the"
		" end%s\n", run->impl->name, (unsigned long long)ops,
		(unsigned long long)sum.pushed, (unsigned long long)sum.popped,
		sum.sum_in == sum.sum_out ? "ok" : "differs", (unsigned long long)sum.out_of_order,
		(unsigned long long)sum.bad, (unsigned long long)sum.errors,
		(unsigned long long)sum.empty, pairwise_run ? " (after a push of one's own)" : "",
		(unsigned long long)sum.ends, err == EAGAIN ? "empty" : "not empty",
		counts[0] ? ", too many threads" : "");
	return false;
}

static bool pairwise_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	return queue_check(run, ops, counts, true);
}

static bool prodcons_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	return queue_check(run, ops, counts, false);
}

static const struct bench_workload pairwise = {
	.name = "pairwise",
	.legend = "push an item, pop one (finding it empty fails the run, except for"
		  " moodycamel: its try_dequeue returns false when every producer's stream"
		  " \"appeared empty at the time\", the queue \"likely but not guaranteed to be"
		  " empty\" (concurrentqueue.h); such pops are retried); ns per push+pop"
		  " pair; every run checks items in = out, checksum, FIFO per producer, empty at"
		  " the end",
	.objects = 1,
	.shared_size = sizeof(struct queue_shared),
	.fairness = true,
	.setup = queue_setup,
	.loop = pairwise_loop,
	.check = pairwise_check,
};

static const struct bench_workload one_one = {
	.name = "1P+1C",
	.legend = "thread 0 pushes, thread 1 pops (on empty: pause, sched_yield every 64th, the"
		  " same loop for all); ns per item; checks as pairwise",
	.objects = 1,
	.shared_size = sizeof(struct queue_shared),
	.fixed_threads = true,
	.setup = queue_setup,
	.loop = prodcons_loop,
	.check = prodcons_check,
};

static const struct bench_workload two_two = {
	.name = "2P+2C",
	.legend = "threads 0, 1 push, threads 2, 3 pop, as 1P+1C (one of each per CPU when pinned"
		  " on 2)",
	.objects = 1,
	.shared_size = sizeof(struct queue_shared),
	.fixed_threads = true,
	.setup = queue_setup,
	.loop = prodcons_loop,
	.check = prodcons_check,
};

static const struct bench_workload four_four = {
	.name = "4P+4C",
	.legend = "threads 0-3 push, threads 4-7 pop, as 1P+1C; bounded queues: a full push"
		  " pauses and retries like an empty pop (push/pop rows), or blocks (push_wait and"
		  " mutex+2 conds rows); ck_ring mpmc(N) has N slots, N - 1 items",
	.objects = 1,
	.shared_size = sizeof(struct queue_shared),
	.fixed_threads = true,
	.setup = queue_setup,
	.loop = prodcons_loop,
	.check = prodcons_check,
};

/* ---- Rows ------------------------------------------------------------------------------ */

#define NO_TARGET { TARGET_NONE, 0 }
#define AT_MOST(r) { TARGET_RATIO, r }

/* The six workloads, in the order of every peer's rows. */
static const struct {
	const struct bench_workload *workload;
	int threads;
} cases[] = {
	{ &pairwise, 1 }, { &pairwise, 2 }, { &pairwise, 4 }, { &pairwise, 8 },
	{ &one_one, 2 }, { &two_two, 4 },
};
#define CASES (sizeof cases / sizeof cases[0])

/* Targets of ours/peer per case above; the ceiling's: ceiling ns / ours ns
 * >= 0.5, i.e. ours/ceiling <= 2. */
/* Rounds per side of the C++ peers' rows, at most: tbb::concurrent_queue's
 * pairwise runs take up to 10 times ours (calibrated on ours), so its 6
 * rows took 66 s of a full run with 15 rounds; 7 give the same medians
 * (within the run-to-run noise) in half the time. */
#define CXX_PEER_ROUNDS 7

static const struct {
	const struct queue_impl *peer;
	struct bench_target target[CASES];
	int rounds; /* at most this many rounds per side; 0: --rounds */
} peers[] = {
	{ &ck_hp_queue, { AT_MOST(1.00), AT_MOST(0.50), NO_TARGET, NO_TARGET, AT_MOST(0.50),
		      AT_MOST(0.50) }, 0 },
	{ &wfcq, { AT_MOST(1.00), AT_MOST(1.00), AT_MOST(1.00), AT_MOST(1.00), AT_MOST(1.00),
		   AT_MOST(1.00) }, 0 },
	{ &mutex_list, { NO_TARGET, AT_MOST(0.60), NO_TARGET, AT_MOST(0.60), NO_TARGET,
			 NO_TARGET }, 0 },
#ifdef BENCH_HAVE_TBB
	{ &tbb_queue, { NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET },
	  CXX_PEER_ROUNDS },
#endif
#ifdef BENCH_HAVE_MOODYCAMEL
	{ &moodycamel_queue, { NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET,
			       NO_TARGET }, CXX_PEER_ROUNDS },
#endif
	{ &faa_ceiling, { AT_MOST(2.00), AT_MOST(2.00), AT_MOST(2.00), AT_MOST(2.00),
			  AT_MOST(2.00), AT_MOST(2.00) }, 0 },
	{ &faa_two_lines, { NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET, NO_TARGET },
	  0 },
};
#define CEILING_GOAL 0.5

/* The ceiling rows' medians, for bench_queue_print_ceiling. */
static struct {
	bool ran;
	double ours_ns, ceiling_ns;
	double two_lines_ns; /* the row against faa_two_lines; 0: not run */
} ceiling_result[CASES];

static void bench_queue_bounded(const struct bench_config *cfg, struct bench_tally *tally);

void bench_queue(const struct bench_config *cfg, struct bench_tally *tally)
{
	for (size_t p = 0; p < sizeof peers / sizeof peers[0]; p++) {
		struct bench_config pc = *cfg;
		if (peers[p].rounds && peers[p].rounds < pc.rounds)
			pc.rounds = peers[p].rounds;
		for (size_t c = 0; c < CASES; c++) {
			struct bench_row row = { "sync_queue", &sync_queue.base, &peers[p].peer->base,
						 cases[c].threads, peers[p].target[c],
						 cases[c].workload };
			double ours_ns, peer_ns;
			bool ran = bench_run_row_medians(&pc, &row, tally, &ours_ns, &peer_ns);
			if (peers[p].peer == &faa_ceiling) {
				ceiling_result[c].ran = ran;
				ceiling_result[c].ours_ns = ours_ns;
				ceiling_result[c].ceiling_ns = peer_ns;
			}
			if (peers[p].peer == &faa_two_lines && ran)
				ceiling_result[c].two_lines_ns = peer_ns;
		}
	}
	bench_queue_bounded(cfg, tally);
}

/* Bounded rows: each capacity, each producer/consumer split, ours by
 * push/pop against ck_ring, ours by push_wait/pop_wait against the
 * mutex+2 conds ring. */
static const struct {
	const char *primitive;
	const struct queue_impl *ours, *peer;
} bounded_pairs[] = {
	{ "sync_queue/64", &bounded_spin64, &ck_ring64 },
	{ "sync_queue/64", &bounded_wait64, &cond_ring64 },
	{ "sync_queue/1024", &bounded_spin1024, &ck_ring1024 },
	{ "sync_queue/1024", &bounded_wait1024, &cond_ring1024 },
};

static const struct {
	const struct bench_workload *workload;
	int threads;
} bounded_cases[] = { { &one_one, 2 }, { &two_two, 4 }, { &four_four, 8 } };

static void bench_queue_bounded(const struct bench_config *cfg, struct bench_tally *tally)
{
	for (size_t p = 0; p < sizeof bounded_pairs / sizeof bounded_pairs[0]; p++)
		for (size_t c = 0; c < sizeof bounded_cases / sizeof bounded_cases[0]; c++) {
			struct bench_row row = { bounded_pairs[p].primitive,
						 &bounded_pairs[p].ours->base,
						 &bounded_pairs[p].peer->base,
						 bounded_cases[c].threads, NO_TARGET,
						 bounded_cases[c].workload };
			bench_run_row(cfg, &row, tally);
		}
}

void bench_queue_print_ceiling(void)
{
	bool any = false;
	for (size_t c = 0; c < CASES; c++)
		any |= ceiling_result[c].ran;
	if (!any)
		return;
	printf("# sync_queue against the fetch-and-add ceiling: T threads doing only"
	       " atomic_fetch_add on one shared counter,\n#   2 per push+pop pair (what a"
	       " queue built on fetch-and-add cannot beat); measured in the rows \"vs 2x"
	       " fetch_add\"\n#   above (alternating rounds, medians); faa ceiling = ceiling"
	       " ns / ours ns, goal >= %.2f;\n#   2 lines: the same two fetch-and-adds on two"
	       " counters a line apart (a queue's enqueue and\n#   dequeue counters, no item"
	       " handed over), the rows \"vs 2x faa,2 lines\", and ceiling ns / 2 lines ns\n",
	       CEILING_GOAL);
	printf("# %-11s %3s %10s %13s %11s %-4s %13s %14s\n", "workload", "thr", "ours ns/op",
	       "ceiling ns/op", "faa ceiling", "met?", "2 lines ns/op", "ceiling/2 lines");
	for (size_t c = 0; c < CASES; c++) {
		char frac[16] = "-", two[16] = "-", two_frac[16] = "-";
		const char *met = "-";
		double ours = ceiling_result[c].ours_ns, ceiling = ceiling_result[c].ceiling_ns;
		double lines = ceiling_result[c].two_lines_ns;
		if (!ceiling_result[c].ran)
			continue;
		if (ours > 0 && ceiling > 0) {
			snprintf(frac, sizeof frac, "%.2f", ceiling / ours);
			met = ceiling / ours >= CEILING_GOAL ? "yes" : "NO";
		}
		if (lines > 0) {
			snprintf(two, sizeof two, "%.1f", lines);
			if (ceiling > 0)
				snprintf(two_frac, sizeof two_frac, "%.2f", ceiling / lines);
		}
		printf("# %-11s %3d %10.1f %13.1f %11s %-4s %13s %14s\n", cases[c].workload->name,
		       cases[c].threads, ours, ceiling, frac, met, two, two_frac);
	}
}
