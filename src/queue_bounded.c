/* Bounded lock-free MPMC queue: Nikolaev's SCQ (Scalable Circular Queue,
 * DISC 2019, "A Scalable, Portable, and Memory-Efficient Lock-Free FIFO
 * Queue"): two rings of 2n cells pass the indices of n item slots around,
 * fq the free indices, aq the queued ones, in FIFO order. A push takes a
 * free index, stores the item in its slot and enqueues the index on aq; a
 * pop dequeues an index from aq, reads the slot and gives the index back
 * to fq. Each ring is fetch-and-add on head and tail plus one CAS per cell,
 * lock-free and linearizable; the threshold bounds how long dequeuers
 * chase an empty ring (3n - 1 failed turns after the last enqueue).
 *
 * Invariants:
 * - A cell is {cycle, safe, index}: the cycle (ticket / ring size) of the
 *   enqueuer that filled it, or of the dequeuer that gave up on it; index
 *   EMPTY_INDEX when it holds none. A dequeuer takes the cell of its
 *   ticket's cycle and clears the index (fetch-or), or moves an empty cell
 *   on to its cycle (so a late enqueuer with that ticket retries), or marks
 *   a cell still holding an older item unsafe (an enqueuer then uses it
 *   only if no dequeuer has passed its ticket).
 * - At most n indices exist, so neither ring ever fills: enqueue always
 *   succeeds on fq, and on aq until close.
 * - close sets TAIL_CLOSED in aq's tail (fetch-or): every later enqueue on
 *   aq fails, so the tickets below the tail at that moment are the last.
 *   An exhaustive dequeue ignores the threshold and returns empty only
 *   when the tail it read was closed and its ticket reached that tail: each
 *   earlier ticket's cell was then taken or given up by some dequeuer, so
 *   no push that is still running can add an item. That is when pop says
 *   EPIPE. A push whose enqueue on aq failed gives its index back to fq.
 * - Wake-ups (queue_internal.h): a push enqueues on aq (seq_cst CAS) then
 *   reads the poppers' count; a pop enqueues on fq then reads the pushers'.
 *   Every ring access is seq_cst, so a sleeper's last attempt after its
 *   registration sees the ring as an interleaving would: a completed
 *   enqueue is found (or taken by another thread).
 * - Hand-off: the slot's item is written by the pusher that took the index
 *   from fq and read by the popper that took it from aq; the aq cell's CAS
 *   and the dequeuer's load of it order the item (release/acquire within
 *   seq_cst), and likewise fq's cell orders the popper's read before the
 *   next pusher's write. A push releases on the slot (annotate.h) before
 *   it enqueues the index; the pop acquires after the dequeue, before it
 *   gives the index back (ann_release_slot and ann_acquire_slot: DRD sees
 *   the hand-off through the queue); a push that gives the index back
 *   unpublished drops its release.
 * - Push and pop run inside an epoch section, and destroy frees the queue
 *   through an epoch callback: the wake-up a push or pop does after its
 *   hand-off may still touch the queue when the thread it served destroys
 *   it. What a vanished waiter leaves: see queue_wait in src/queue.c.
 * - Memory: one allocation at creation, never grown. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sync/epoch.h>
#include <sync/queue.h>

#include "annotate.h"
#include "backoff.h"
#include "cacheline.h"
#include "epoch_internal.h"
#include "queue_internal.h"
#include "test_hook.h"
#include "timeout.h"

#define EMPTY_INDEX 0xffffffffull /* a cell's index bits when it holds none */
#define CELL_SAFE (1ull << 32)
#define CYCLE_SHIFT 33 /* cycles wrap in 31 bits; compared by difference */
#define CYCLE_MASK (~0ull << CYCLE_SHIFT)
#define TAIL_CLOSED (1ull << 63)
#define RING_EMPTY UINT64_MAX
#define MAX_CAPACITY (1ull << 31) /* indices below EMPTY_INDEX */
/* A dequeuer that finds its cell empty while an enqueuer holds the ticket
 * polls it this long (spin_poll budget) before it gives the cell up. */
#define ENQUEUER_WAIT_PAUSES 64

struct ring {
	_Alignas(CACHE_LINE) _Atomic uint64_t head;
	_Alignas(CACHE_LINE) _Atomic int64_t threshold;
	_Alignas(CACHE_LINE) _Atomic uint64_t tail;
	_Alignas(CACHE_LINE) _Atomic uint64_t *cells; /* 2n of them */
	uint64_t mask;         /* 2n - 1 */
	unsigned order;        /* log2(2n) */
	int64_t threshold_max; /* 3n - 1 */
};

struct bounded_queue {
	uint32_t kind; /* QUEUE_BOUNDED; first member: see queue_kind() */
	size_t capacity;
	void **items; /* capacity slots; plain, ordered by the rings' cells */
	_Alignas(CACHE_LINE) struct queue_waiters poppers;
	_Alignas(CACHE_LINE) struct queue_waiters pushers;
	_Alignas(CACHE_LINE) _Atomic bool closed; /* a hint; aq's tail decides */
	struct ring aq; /* queued indices */
	struct ring fq; /* free indices */
};

static struct bounded_queue *bounded(sync_queue_t *q)
{
	return (struct bounded_queue *)q;
}

/* ---- cells -------------------------------------------------------------- */

static uint64_t ticket_cycle(const struct ring *r, uint64_t ticket)
{
	return (ticket >> r->order) << CYCLE_SHIFT;
}

static uint64_t cell_cycle(uint64_t cell)
{
	return cell & CYCLE_MASK;
}

/* a's cycle comes before b's, across the wrap of the 31-bit field */
static bool cycle_before(uint64_t a, uint64_t b)
{
	return (int64_t)(cell_cycle(a) - cell_cycle(b)) < 0;
}

static uint64_t cell_index(uint64_t cell)
{
	return cell & EMPTY_INDEX;
}

static uint64_t tail_count(uint64_t tail)
{
	return tail & ~TAIL_CLOSED;
}

/* ---- one ring ----------------------------------------------------------- */

/* A ring of 2^order cells holding the indices [0, filled). */
static void ring_init(struct ring *r, _Atomic uint64_t *cells, unsigned order,
		      uint64_t filled)
{
	uint64_t size = 1ull << order;
	r->cells = cells;
	r->mask = size - 1;
	r->order = order;
	r->threshold_max = (int64_t)(size / 2 * 3 - 1);
	/* the cycle before the first: all ones (-1 in the cycle field) */
	for (uint64_t i = 0; i < size; i++)
		atomic_init(&cells[i], i < filled ? (CELL_SAFE | i) : UINT64_MAX);
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, filled);
	atomic_init(&r->threshold, filled ? r->threshold_max : -1);
}

/* True while the enqueuer of cell e may still fill it for ticket t. */
static bool cell_usable(struct ring *r, uint64_t e, uint64_t tc, uint64_t t)
{
	return cycle_before(e, tc) && cell_index(e) == EMPTY_INDEX &&
	       ((e & CELL_SAFE) || atomic_load(&r->head) <= t);
}

/* Appends idx: 0, or EPIPE once the tail is closed. */
static int ring_enqueue(struct ring *r, uint64_t idx)
{
	for (;;) {
		uint64_t t = atomic_fetch_add(&r->tail, 1);
		if (t & TAIL_CLOSED)
			return EPIPE;
		TEST_HOOK("queue_ring:ticket");
		_Atomic uint64_t *cell = &r->cells[t & r->mask];
		uint64_t tc = ticket_cycle(r, t);
		uint64_t e = atomic_load(cell);
		while (cell_usable(r, e, tc, t)) {
			if (!atomic_compare_exchange_strong(cell, &e, tc | CELL_SAFE | idx))
				continue;
			if (atomic_load(&r->threshold) != r->threshold_max)
				atomic_store(&r->threshold, r->threshold_max);
			return 0;
		}
	}
}

/* Dequeuers that found the ring empty move the tail up to their ticket,
 * so that enqueuers skip the cells given up; never once it is closed. */
static void ring_catch_up(struct ring *r, uint64_t tail, uint64_t head)
{
	while (!atomic_compare_exchange_strong(&r->tail, &tail, head)) {
		if (tail & TAIL_CLOSED)
			return;
		head = atomic_load(&r->head);
		if (tail >= head)
			return;
	}
}

/* An enqueuer holds ticket h (the tail is past it) and has not filled the
 * cell: it is a few instructions away, so poll a little (bounded: the ring
 * stays lock-free) before giving the cell up, which would cost it a retry. */
static uint64_t wait_for_enqueuer(struct ring *r, _Atomic uint64_t *cell,
				  uint64_t h, uint64_t e)
{
	if (tail_count(atomic_load(&r->tail)) <= h)
		return e;
	struct spin_poll poll = SPIN_POLL_INIT;
	uint64_t now = e;
	while (now == e && spin_poll(&poll, ENQUEUER_WAIT_PAUSES))
		now = atomic_load(cell);
	return now;
}

/* Settles the cell of ticket h: its index if an enqueuer of h's cycle
 * filled it (then cleared), else RING_EMPTY after moving the cell on. */
static uint64_t take_cell(struct ring *r, uint64_t h)
{
	_Atomic uint64_t *cell = &r->cells[h & r->mask];
	uint64_t hc = ticket_cycle(r, h);
	uint64_t e = atomic_load(cell);
	bool waited = false;
	for (;;) {
		if (cell_cycle(e) == hc) {
			atomic_fetch_or(cell, EMPTY_INDEX);
			return cell_index(e);
		}
		if (!cycle_before(e, hc))
			return RING_EMPTY; /* a later cycle's: not ours */
		uint64_t next;
		if (cell_index(e) != EMPTY_INDEX) {
			next = e & ~CELL_SAFE; /* an older item: mark unsafe */
			if (next == e)
				return RING_EMPTY;
		} else if (!waited) {
			waited = true;
			e = wait_for_enqueuer(r, cell, h, e);
			continue;
		} else {
			next = hc | (e & CELL_SAFE) | EMPTY_INDEX;
		}
		if (atomic_compare_exchange_strong(cell, &e, next))
			return RING_EMPTY;
	}
}

/* The first index, or RING_EMPTY. An exhaustive dequeue (closed queues)
 * ignores the threshold and gives up only when its ticket reached a tail
 * that was closed, or, not closed, the tail it read. */
static uint64_t ring_dequeue(struct ring *r, bool exhaustive)
{
	if (!exhaustive && atomic_load(&r->threshold) < 0)
		return RING_EMPTY;
	for (;;) {
		uint64_t h = atomic_fetch_add(&r->head, 1);
		uint64_t idx = take_cell(r, h);
		if (idx != RING_EMPTY)
			return idx;
		uint64_t t = atomic_load(&r->tail);
		if (tail_count(t) <= h + 1) {
			if (!(t & TAIL_CLOSED))
				ring_catch_up(r, t, h + 1);
			atomic_fetch_sub(&r->threshold, 1);
			return RING_EMPTY;
		}
		if (!exhaustive && atomic_fetch_sub(&r->threshold, 1) <= 0)
			return RING_EMPTY;
	}
}

static bool ring_closed(struct ring *r)
{
	return atomic_load(&r->tail) & TAIL_CLOSED;
}

/* ---- create, destroy, size, close --------------------------------------- */

static unsigned ceil_log2(uint64_t n)
{
	unsigned order = 0;
	while ((1ull << order) < n)
		order++;
	return order;
}

sync_queue_t *sync_queue_create_bounded(size_t capacity)
{
	if (capacity == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (capacity > MAX_CAPACITY) {
		errno = ENOMEM;
		return NULL;
	}
	unsigned order = ceil_log2(capacity) + 1; /* 2n cells, n >= capacity */
	size_t cells = (size_t)1 << order;
	size_t head = (sizeof(struct bounded_queue) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
	size_t bytes = head + 2 * cells * sizeof(uint64_t) + capacity * sizeof(void *);
	struct bounded_queue *b = aligned_alloc(CACHE_LINE, (bytes + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE);
	if (!b) {
		errno = ENOMEM;
		return NULL;
	}
	ann_internal(b, bytes);
	memset(b, 0, sizeof *b);
	b->kind = QUEUE_BOUNDED;
	b->capacity = capacity;
	_Atomic uint64_t *aq_cells = (_Atomic uint64_t *)((char *)b + head);
	ring_init(&b->aq, aq_cells, order, 0);
	ring_init(&b->fq, aq_cells + cells, order, capacity);
	b->items = (void **)(aq_cells + 2 * cells);
	return (sync_queue_t *)b;
}

/* Not concurrent with use, except the wake-up at the end of the push or
 * pop whose hand-off the caller saw: freed after their sections. */
void bounded_destroy(sync_queue_t *q)
{
	/* never waits: without memory for the callback, q leaks */
	epoch_retire_nowait(q, free);
}

/* Reads each of aq's 2n cells: exact when quiescent. */
size_t bounded_size(sync_queue_t *q)
{
	struct ring *r = &bounded(q)->aq;
	size_t n = 0;
	for (uint64_t i = 0; i <= r->mask; i++)
		n += cell_index(atomic_load(&r->cells[i])) != EMPTY_INDEX;
	return n;
}

void bounded_close(sync_queue_t *q)
{
	struct bounded_queue *b = bounded(q);
	sync_epoch_enter();
	atomic_fetch_or(&b->aq.tail, TAIL_CLOSED);
	atomic_store(&b->closed, true);
	queue_wake_all(&b->poppers);
	queue_wake_all(&b->pushers);
	sync_epoch_exit();
}

/* ---- push, pop ---------------------------------------------------------- */

static int push_in_section(struct bounded_queue *b, void *item)
{
	/* acquire: pairs with bounded_close's store; a hint, aq's tail decides */
	if (atomic_load_explicit(&b->closed, memory_order_acquire))
		return EPIPE;
	uint64_t idx = ring_dequeue(&b->fq, false);
	if (idx == RING_EMPTY)
		return atomic_load(&b->closed) ? EPIPE : EAGAIN;
	b->items[idx] = item;
	TEST_HOOK("queue_push:open");
	ann_release_slot(&b->items[idx], b); /* the enqueue below publishes the item */
	if (ring_enqueue(&b->aq, idx) == 0) {
		TEST_HOOK("queue_push:published");
		queue_wake_one(&b->poppers);
		return 0;
	}
	ann_drop_slot(&b->items[idx], b); /* nobody takes it */
	ring_enqueue(&b->fq, idx); /* closed: the slot goes back */
	queue_wake_one(&b->pushers);
	return EPIPE;
}

int bounded_push(sync_queue_t *q, void *item)
{
	sync_epoch_enter();
	int r = push_in_section(bounded(q), item);
	sync_epoch_exit();
	return r;
}

/* An index from aq, or RING_EMPTY; *shut: aq was closed when it looked,
 * and so the second, exhaustive dequeue found it closed and empty. The
 * empty result rests on that one look: looking again after it (as the
 * code did) could see a close that came after a push, and answer EPIPE
 * with that item still queued (tests/models/queue_close.pml). */
static uint64_t dequeue_item(struct bounded_queue *b, bool *shut)
{
	uint64_t idx = ring_dequeue(&b->aq, false);
	*shut = idx == RING_EMPTY && ring_closed(&b->aq);
	if (*shut)
		idx = ring_dequeue(&b->aq, true);
	return idx;
}

static int pop_in_section(struct bounded_queue *b, void **item)
{
	bool shut;
	uint64_t idx = dequeue_item(b, &shut);
	TEST_HOOK("bounded_pop:looked");
	if (idx == RING_EMPTY)
		return shut ? EPIPE : EAGAIN;
	*item = b->items[idx];
	ann_acquire_slot(&b->items[idx], b); /* the push's release */
	ring_enqueue(&b->fq, idx);   /* never fails: fq is never closed */
	queue_wake_one(&b->pushers);
	return 0;
}

int bounded_pop(sync_queue_t *q, void **item)
{
	sync_epoch_enter();
	int r = pop_in_section(bounded(q), item);
	sync_epoch_exit();
	return r;
}

/* ---- waiting ------------------------------------------------------------ */

static int attempt_push(struct queue_attempt *a)
{
	return bounded_push(a->q, a->item);
}

static int attempt_pop(struct queue_attempt *a)
{
	return bounded_pop(a->q, a->out);
}

int bounded_push_wait(sync_queue_t *q, void *item, const struct timespec *abstime)
{
	struct queue_attempt a = { attempt_push, q, item, NULL };
	return queue_wait(&bounded(q)->pushers, &a, abstime);
}

int bounded_pop_wait(sync_queue_t *q, void **item, const struct timespec *abstime)
{
	struct queue_attempt a = { attempt_pop, q, NULL, item };
	return queue_wait(&bounded(q)->poppers, &a, abstime);
}
