/* Lock-free MPMC queue: Ramalhete and Correia's FAAArrayQueue (2016), a
 * Michael-Scott list of array segments in which fetch-and-add hands out the
 * slot indices (the idea of LCRQ, Morrison and Afek, PPoPP 2013, without its
 * double-width CAS). A slot's state word, not a reserved item value, tells
 * empty from full, so any pointer (NULL too) can be queued. Drained
 * segments are retired through sync_epoch into a small per-queue pool.
 *
 * Invariants:
 * - enq and deq only grow; each index below SEGMENT_SLOTS goes to one
 *   pusher (enq) and one popper (deq).
 * - A slot's state goes EMPTY -> FULL (its pusher's store, publishing the
 *   item), and never back while the segment is linked; a popper that gives
 *   up on a pusher that has not come says so in the slot's gave_up word,
 *   and the two settle who has the item without a read-modify-write on
 *   the push's fast path (queue_slot.c).
 * - poppers.sleepers counts the threads of pop_wait between their
 *   registration in queue_sleep and its undoing; poppers.seq changes with
 *   every push that sees one, and with close. A push makes its item visible (enq ticket or segment
 *   link, both seq_cst) before it reads sleepers (seq_cst), a sleeper
 *   counts itself (seq_cst) before its last look at the queue (seq_cst
 *   loads): store-buffering, so one of the two sees the other.
 * - Hand-off: once its item is published, a push touches only its own
 *   slot (slot_publish's look at gave_up, and its CAS if the popper gave
 *   up) and q (move the tail, wake a sleeper), all inside its epoch
 *   section. A popped item's segment was the head when it was popped, so
 *   destroy retires it (or it was retired when the head moved on) rather
 *   than freeing it, and q is freed by an epoch callback: the thread that
 *   pops the item may destroy the queue at once.
 * - close seals the last segment: SEALED in its next (CAS from NULL; a
 *   failed CAS means it was not the last), so that no push links a
 *   segment after it, then ENQ_CLOSED in its enq (fetch-or), so that no
 *   later push gets a slot there. The segments before the last have handed
 *   out all their slots (a segment gets a successor only after a push drew
 *   a ticket past its end). The close takes effect when the last segment
 *   is sealed and either ENQ_CLOSED is set or all its slots are drawn:
 *   from then on no push can succeed, and every push that finds the seal
 *   (a ticket with ENQ_CLOSED, or SEALED after a ticket past the end)
 *   returns EPIPE. Nothing sets ENQ_CLOSED on any segment but a sealed
 *   one, so no push fails before the close took effect. A pop that finds
 *   the head segment in that state (next read first, then enq: the
 *   seal's order) and every drawn slot drawn by a popper too (deq at or
 *   past them) returns EPIPE: each such slot's item was popped, or its
 *   pusher was turned away to try again, and fail.
 * - What a vanished waiter leaves: a thread cancelled in pop_wait's sleep
 *   (its only cancellation point) undoes its registration in a cleanup
 *   handler and passes on the wake-up it may have consumed. A queue is
 *   private to its process, so no process or fork child can vanish while
 *   waiting on it.
 * - size is O(segments): in a quiescent queue every slot between deq and
 *   the end of the live tickets is full (a slot is given up only by the
 *   popper that drew it, whose pusher then draws another). Live: all of enq's, except after a close,
 *   which stores in sealed_count how many were drawn before ENQ_CLOSED;
 *   the pushes that drew the others failed and left their slots empty.
 * - Tools (annotate.h): the queue and its segments are the library's own
 *   words (ann_internal at creation and at each segment's reset); a push
 *   releases on its slot before the store that publishes the item, and the
 *   pop that takes the slot acquires on it, so the item's contents pass
 *   from pusher to popper in the eyes of TSan, Helgrind and DRD (which
 *   sees them pass through q: see ann_release_slot); a push whose release
 *   nobody will take (its slot taken from it, its new segment not linked)
 *   drops it.
 * - No operation waits for memory or for a grace period: a push that
 *   cannot allocate a segment fails with ENOMEM and changes nothing; the
 *   retire of a drained segment (and of the head at destroy, which frees
 *   q) never waits, and leaks what it retires if the epoch domain has no
 *   memory for the callback. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sync/epoch.h>
#include <sync/mutex.h>
#include <sync/queue.h>

#include "annotate.h"
#include "backoff.h"
#include "cacheline.h"
#include "epoch_internal.h"
#include "futex.h"
#include "queue_internal.h"
#include "queue_slot.h"
#include "test_hook.h"
#include "thread.h"
#include "timeout.h"

#define SEGMENT_SLOTS 1024
#define POOL_MAX 4 /* drained segments kept for reuse */
/* A popper's wait for a pusher mid-write, a spin_poll() budget: polls after
 * 1, 2, 4 ... 64 pauses, 127 pauses at most. */
#define PUSHER_WAIT_PAUSES 64

#define ENQ_CLOSED (1ull << 63) /* in the last segment's enq: see close */

struct segment {
	_Alignas(CACHE_LINE) _Atomic uint64_t enq; /* next index for push (grows past the end) */
	_Alignas(CACHE_LINE) _Atomic uint64_t deq; /* next index for pop (grows past the end) */
	_Alignas(CACHE_LINE) _Atomic(struct segment *) next;
	/* enq's count when close set ENQ_CLOSED (UINT64_MAX before): the
	 * tickets drawn after it are dead, their pushers failed */
	_Atomic uint64_t sealed_count;
	struct sync_queue *queue;
	/* on a line of their own: slot_at deals whole lines out */
	_Alignas(CACHE_LINE) struct slot slots[SEGMENT_SLOTS];
};

/* Slot of index i. Consecutive indices sit on different cache lines, as
 * in the cache remap of Nikolaev's SCQ (2019), and a line comes round
 * again only 256 indices later: a segment's 256 lines of 4 slots are two
 * runs of 128, even indices going through the first run line by line and
 * odd ones through the second (index i: run i mod 2, line (i mod 256) / 2
 * of it, place i / 256 in the line). So a consumer that lags reads lines
 * in order, two streams the hardware prefetchers follow, while two
 * pushers writing i and i + 1 at once are 8 KiB apart. Measured on an
 * AMD EPYC guest (sync_queue_push(3)): SCQ's own map (index i in line
 * i mod 256) was as fast for 1P+1C but 15-20% slower pairwise; the
 * earlier map (i, i + 4, i + 8, i + 12 on one line) 1.5 times slower for
 * 1P+1C. */
#define SLOTS_PER_LINE (CACHE_LINE / sizeof(struct slot))
#define SEGMENT_LINES (SEGMENT_SLOTS / SLOTS_PER_LINE)
static inline struct slot *slot_at(struct segment *seg, uint64_t i)
{
	uint64_t turn = i % SEGMENT_LINES;
	uint64_t line = turn % 2 * (SEGMENT_LINES / 2) + turn / 2;
	return &seg->slots[line * SLOTS_PER_LINE + i / SEGMENT_LINES];
}

struct sync_queue {
	uint32_t kind; /* QUEUE_UNBOUNDED; first member: see queue_kind() */
	_Atomic bool closed; /* a hint for push; the seal decides */
	_Alignas(CACHE_LINE) _Atomic(struct segment *) head;
	_Alignas(CACHE_LINE) _Atomic(struct segment *) tail;
	/* pop_wait's sleepers (queue_internal.h) */
	_Alignas(CACHE_LINE) struct queue_waiters poppers;
	/* drained segments: the pool, and those retired but not yet back */
	_Alignas(CACHE_LINE) sync_mutex_t pool_lock;
	struct segment *pool;
	unsigned pooled;
	unsigned retired;
	bool destroyed;
};

/* The next pointer of the last segment once close sealed it. */
static struct segment sealed_marker;
#define SEALED (&sealed_marker)

/* ---- segments ----------------------------------------------------------- */

/* Tickets handed out by the enq word e, dead ones too. */
static uint64_t enq_count(uint64_t e)
{
	return e & ~ENQ_CLOSED;
}

/* Tickets of s that a push may fill or has filled, given its enq word e:
 * after a close, those drawn before it (once the closer has stored how
 * many; until then all, which only makes a pop wait for dead tickets). */
static uint64_t live_tickets(struct segment *s, uint64_t e)
{
	uint64_t n = enq_count(e);
	if (e & ENQ_CLOSED) {
		uint64_t sealed = atomic_load(&s->sealed_count);
		if (sealed < n)
			n = sealed;
	}
	return n;
}

/* The segment after s, NULL if none (or sealed). */
static struct segment *segment_next(struct segment *s)
{
	struct segment *next = atomic_load(&s->next);
	return next == SEALED ? NULL : next;
}

static void segment_reset(struct segment *s, struct sync_queue *q)
{
	ann_internal(s, sizeof *s);
	memset(s->slots, 0, sizeof s->slots); /* SLOT_EMPTY */
	atomic_init(&s->enq, 0);
	atomic_init(&s->deq, 0);
	atomic_init(&s->next, NULL);
	atomic_init(&s->sealed_count, UINT64_MAX);
	s->queue = q;
}

/* A new segment; NULL when out of memory, errno as it was (the callers
 * return an error number and leave errno alone). */
static struct segment *segment_alloc(void)
{
	int saved = errno;
	struct segment *s = aligned_alloc(CACHE_LINE, sizeof *s);
	errno = saved;
	return s;
}

/* A segment from the pool, or a new one; NULL when out of memory. */
static struct segment *segment_get(struct sync_queue *q)
{
	sync_mutex_lock(&q->pool_lock);
	struct segment *s = q->pool;
	if (s) {
		/* relaxed: the pool is under pool_lock */
		q->pool = atomic_load_explicit(&s->next, memory_order_relaxed);
		q->pooled--;
	}
	sync_mutex_unlock(&q->pool_lock);
	if (!s)
		s = segment_alloc();
	if (s)
		segment_reset(s, q);
	return s;
}

/* Under pool_lock: keeps s for reuse, or says to free it. */
static bool pool_keep(struct sync_queue *q, struct segment *s)
{
	if (q->destroyed || q->pooled >= POOL_MAX)
		return false;
	/* relaxed: the pool is under pool_lock */
	atomic_store_explicit(&s->next, q->pool, memory_order_relaxed);
	q->pool = s;
	q->pooled++;
	return true;
}

/* A segment that was never published goes straight back. */
static void segment_put(struct sync_queue *q, struct segment *s)
{
	sync_mutex_lock(&q->pool_lock);
	bool kept = pool_keep(q, s);
	sync_mutex_unlock(&q->pool_lock);
	if (!kept)
		free(s);
}

/* Epoch callback: no section that could reach the drained segment runs any
 * more. The last one after sync_queue_destroy frees the queue. */
static void segment_recycle(void *arg)
{
	struct segment *s = arg;
	struct sync_queue *q = s->queue;
	sync_mutex_lock(&q->pool_lock);
	bool kept = pool_keep(q, s);
	bool last = --q->retired == 0 && q->destroyed;
	sync_mutex_unlock(&q->pool_lock);
	if (!kept)
		free(s);
	if (last)
		free(q);
}

static void segment_retire(struct sync_queue *q, struct segment *s)
{
	sync_mutex_lock(&q->pool_lock);
	q->retired++;
	sync_mutex_unlock(&q->pool_lock);
	/* never waits: not for readers, nor for memory (without any, s leaks) */
	epoch_retire_nowait(s, segment_recycle);
}

/* ---- create, destroy, size ---------------------------------------------- */

sync_queue_t *sync_queue_create(void)
{
	struct sync_queue *q = aligned_alloc(CACHE_LINE, sizeof *q);
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	ann_internal(q, sizeof *q);
	memset(q, 0, sizeof *q);
	q->kind = QUEUE_UNBOUNDED;
	sync_mutex_init(&q->pool_lock, 0);
	slot_mode_decide();
	struct segment *s = segment_get(q);
	if (!s) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&q->head, s);
	atomic_init(&q->tail, s);
	return q;
}

/* Frees s and the segments linked after it; no other thread uses them. */
static void free_chain(struct segment *s)
{
	while (s) {
		/* relaxed: nobody else sees these segments any more */
		struct segment *next = atomic_load_explicit(&s->next, memory_order_relaxed);
		free(s);
		s = next == SEALED ? NULL : next;
	}
}

/* Not concurrent with any use of q, except the end of the push whose item
 * the caller popped: that push may still move the tail or wake a sleeper,
 * inside its epoch section. So the head segment is retired rather than
 * freed, and its callback, or the last of those still waiting for their
 * grace period, frees q. */
void sync_queue_destroy(sync_queue_t *q)
{
	if (!q)
		return;
	if (queue_kind(q) == QUEUE_BOUNDED) {
		bounded_destroy(q);
		return;
	}
	/* The head's retirement is counted before `destroyed` is set: a
	 * callback of a segment retired earlier, running now in the reclaimer,
	 * must not find the count at 0 and free q while this still reads it.
	 * From the unlock on, only the head is used. relaxed: no other thread
	 * reads the segments any more. */
	sync_mutex_lock(&q->pool_lock);
	struct segment *head = atomic_load_explicit(&q->head, memory_order_relaxed);
	q->retired++;
	q->destroyed = true;
	struct segment *pool = q->pool;
	q->pool = NULL;
	sync_mutex_unlock(&q->pool_lock);
	TEST_HOOK("queue_destroy:marked");
	free_chain(pool);
	struct segment *next = atomic_load_explicit(&head->next, memory_order_relaxed);
	free_chain(next == SEALED ? NULL : next);
	epoch_retire_nowait(head, segment_recycle); /* frees q at the last */
}

static uint64_t min_slots(uint64_t i)
{
	return i < SEGMENT_SLOTS ? i : SEGMENT_SLOTS;
}

/* Items in s between deq and enq (see the invariants: exact when
 * quiescent; a popper's ticket may run past enq). */
static size_t segment_length(struct segment *s)
{
	uint64_t end = min_slots(live_tickets(s, atomic_load(&s->enq)));
	uint64_t start = min_slots(atomic_load(&s->deq));
	return end > start ? (size_t)(end - start) : 0;
}

size_t sync_queue_size(sync_queue_t *q)
{
	if (!q)
		return 0;
	if (queue_kind(q) == QUEUE_BOUNDED)
		return bounded_size(q);
	size_t n = 0;
	sync_epoch_enter();
	for (struct segment *s = atomic_load(&q->head); s; s = segment_next(s))
		n += segment_length(s);
	sync_epoch_exit();
	return n;
}

/* ---- close -------------------------------------------------------------- */

/* Seals the last segment (see the invariants), helping the tail on while
 * the segment it looks at has a successor. */
static void seal_last_segment(struct sync_queue *q)
{
	for (;;) {
		struct segment *tail = atomic_load(&q->tail);
		struct segment *next = NULL;
		if (atomic_compare_exchange_strong(&tail->next, &next, SEALED) ||
		    next == SEALED) {
			uint64_t e = atomic_fetch_or(&tail->enq, ENQ_CLOSED);
			if (!(e & ENQ_CLOSED)) /* the first closer: the final count */
				atomic_store(&tail->sealed_count, e);
			return;
		}
		atomic_compare_exchange_strong(&q->tail, &tail, next);
	}
}

void sync_queue_close(sync_queue_t *q)
{
	if (!q)
		return;
	if (queue_kind(q) == QUEUE_BOUNDED) {
		bounded_close(q);
		return;
	}
	sync_epoch_enter();
	seal_last_segment(q);
	atomic_store(&q->closed, true);
	queue_wake_all(&q->poppers); /* in the section: see sync_queue_destroy */
	sync_epoch_exit();
}

/* ---- push --------------------------------------------------------------- */

/* The tail segment is full: link a new one holding item in its first slot,
 * or help a pusher that linked one first. 0, EAGAIN (retry), EPIPE (the
 * segment is sealed) or ENOMEM.
 * After the link, which publishes the item, only q is touched. */
static int push_new_segment(struct sync_queue *q, struct segment *tail, void *item)
{
	/* acquire: pairs with the release that linked the next segment */
	struct segment *next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next == SEALED)
		return EPIPE;
	if (!next) {
		struct segment *s = segment_get(q);
		if (!s)
			return ENOMEM;
		slot_at(s, 0)->item = item;
		atomic_init(&slot_at(s, 0)->state, SLOT_FULL);
		atomic_init(&s->enq, 1);
		ann_release_slot(slot_at(s, 0), q); /* the link below publishes the item */
		/* seq_cst (release suffices for the link): the item's
		 * publication, ordered before queue_wake_one' look */
		if (atomic_compare_exchange_strong(&tail->next, &next, s)) {
			TEST_HOOK("queue_push:published");
			atomic_compare_exchange_strong(&q->tail, &tail, s);
			return 0;
		}
		ann_drop_slot(slot_at(s, 0), q); /* nobody takes it */
		segment_put(q, s);
		if (next == SEALED)
			return EPIPE;
	}
	atomic_compare_exchange_strong(&q->tail, &tail, next);
	return EAGAIN;
}

static int push_in_section(struct sync_queue *q, void *item)
{
	for (;;) {
		struct segment *tail = atomic_load(&q->tail);
		/* seq_cst, not only a ticket: a sleeper's last look may find
		 * its slot still empty and this item visible only through
		 * enq (looks_empty), so the increment is one side of the
		 * store-buffering pair with pop_sleep's registration and must
		 * precede queue_wake_one' look at the sleepers in the single
		 * total order; slot_publish's store of FULL is only a
		 * release (a sleeper that sees the ticket pops, and gets the
		 * item, or gives up on it and this push draws again). Free
		 * on x86 (a lock xadd either way); the acquire-release form
		 * of the instruction on ARM. */
		uint64_t i = atomic_fetch_add(&tail->enq, 1);
		if (i & ENQ_CLOSED)
			return EPIPE;
		if (i < SEGMENT_SLOTS) {
			TEST_HOOK("queue_push:ticket");
			struct slot *slot = slot_at(tail, i);
			slot->item = item;
			ann_release_slot(slot, q); /* slot_publish publishes the item */
			if (slot_publish(slot)) {
				TEST_HOOK("queue_push:published");
				return 0;
			}
			ann_drop_slot(slot, q); /* nobody takes the release */
			continue; /* its popper gave up on this slot */
		}
		if (tail != atomic_load(&q->tail))
			continue;
		int r = push_new_segment(q, tail, item);
		if (r != EAGAIN)
			return r;
	}
}

/* One load when nobody sleeps in pop_wait. seq_cst: pairs with the sleeper
 * count in queue_sleep (store-buffering, with the item's publication and
 * the enq ticket before it, all seq_cst): either we see the sleeper, or its
 * look at the queue sees our item. */
void queue_wake_one(struct queue_waiters *w)
{
	if (!atomic_load(&w->sleepers))
		return;
	atomic_fetch_add(&w->seq, 1);
	futex_wake(&w->seq, 1, FUTEX_BITSET_MATCH_ANY, false);
}

/* close: the seal (seq_cst) comes before the bump, and a sleeper reads seq
 * (acquire, pairing with the bump) before its last look, so a sleeper
 * either sees the seal in that look or finds seq changed in its wait. */
void queue_wake_all(struct queue_waiters *w)
{
	atomic_fetch_add(&w->seq, 1);
	futex_wake(&w->seq, INT_MAX, FUTEX_BITSET_MATCH_ANY, false);
}

int sync_queue_push(sync_queue_t *q, void *item)
{
	if (!q)
		return EINVAL;
	if (queue_kind(q) == QUEUE_BOUNDED)
		return bounded_push(q, item);
	/* acquire: pairs with sync_queue_close's store, so that an EPIPE
	 * from this hint is ordered after the close, as one from the seal
	 * is; the seal decides */
	if (atomic_load_explicit(&q->closed, memory_order_acquire))
		return EPIPE;
	TEST_HOOK("queue_push:open");
	sync_epoch_enter();
	int r = push_in_section(q, item);
	if (r == 0)
		queue_wake_one(&q->poppers); /* in the section: see sync_queue_destroy */
	sync_epoch_exit();
	return r;
}

/* A cancellation point, as pop_wait is, even on an unbounded queue, where
 * it is push: a pending cancellation acts on entry. */
int sync_queue_push_wait(sync_queue_t *q, void *item, const struct timespec *abstime)
{
	pthread_testcancel();
	if (!q || (abstime && !timeout_valid(abstime)))
		return EINVAL;
	if (queue_kind(q) == QUEUE_BOUNDED)
		return bounded_push_wait(q, item, abstime);
	return sync_queue_push(q, item);
}

/* ---- pop ---------------------------------------------------------------- */

/* The head segment is drained: move head on (and tail first, if it lags,
 * so that the retired segment is reachable from neither). */
static bool advance_head(struct sync_queue *q, struct segment *head)
{
	/* acquire: pairs with the release that linked the next segment */
	struct segment *next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (!next || next == SEALED)
		return false;
	struct segment *tail = head;
	atomic_compare_exchange_strong(&q->tail, &tail, next);
	if (atomic_compare_exchange_strong(&q->head, &head, next)) {
		int saved = errno; /* the retire may allocate; pop returns int */
		segment_retire(q, head);
		errno = saved;
	}
	return true;
}

/* A pusher that holds index i but has not filled the slot yet is a few
 * instructions from done: poll a little (bounded, so pop stays lock-free)
 * rather than take the slot from it, which would cost it a retry on a new
 * index (with a consumer right behind a producer, every item). Returns the
 * slot's state, still SLOT_EMPTY if the pusher did not come in time. */
static uint32_t wait_for_pusher(struct segment *seg, uint64_t i)
{
	struct spin_poll poll = SPIN_POLL_INIT;
	uint32_t state = SLOT_EMPTY;
	/* relaxed: only a hint; the slot's state decides */
	if (i >= live_tickets(seg, atomic_load_explicit(&seg->enq, memory_order_relaxed)))
		return state;
	while (state == SLOT_EMPTY && spin_poll(&poll, PUSHER_WAIT_PAUSES))
		/* acquire: pairs with the pusher's CAS that published the item */
		state = atomic_load_explicit(&slot_at(seg, i)->state, memory_order_acquire);
	return state;
}

/* The index is ours alone: if the slot is full, its pusher is done with
 * it and the item is ours without a read-modify-write (the pusher CASes
 * only after we gave up). If it is still empty after wait_for_pusher, give
 * up (queue_slot.c), so that the pusher retries elsewhere, unless its item
 * turns out to be there. The acquire pairs with the pusher's release of
 * FULL in slot_publish. */
static bool take_slot(struct segment *seg, uint64_t i, void **item)
{
	struct slot *slot = slot_at(seg, i);
	uint32_t state = atomic_load_explicit(&slot->state, memory_order_acquire);
	if (state == SLOT_EMPTY)
		state = wait_for_pusher(seg, i);
	if (state == SLOT_EMPTY && !slot_give_up(slot))
		return false;
	*item = slot->item;
	return true;
}

/* The next slot to pop is not yet full, and no push has claimed it or the
 * segment has no successor. The slot is looked at first: when it is full,
 * the check costs no look at the enqueue counter, which pushers write. The
 * loads are seq_cst: see queue_wake_one. */
static bool looks_empty(struct segment *head, unsigned polls)
{
	uint64_t d = atomic_load(&head->deq);
	if (d < SEGMENT_SLOTS) {
		struct slot *slot = slot_at(head, d);
		for (unsigned k = 0;; k++) {
			if (atomic_load(&slot->state) == SLOT_FULL)
				return false;
			if (k == polls)
				break;
			cpu_relax();
		}
	}
	return d >= live_tickets(head, atomic_load(&head->enq)) && !segment_next(head);
}

/* The queue is closed and empty, and stays so: head is sealed and its
 * slots are closed or all drawn (next read first, then enq, the seal's
 * order), so the slots drawn by pushers are final, and poppers drew every
 * one of them. */
static bool sealed_and_drained(struct segment *head)
{
	if (atomic_load(&head->next) != SEALED)
		return false;
	uint64_t e = atomic_load(&head->enq);
	if (!(e & ENQ_CLOSED) && enq_count(e) < SEGMENT_SLOTS)
		return false; /* the close has not taken effect yet */
	return atomic_load(&head->deq) >= min_slots(live_tickets(head, e));
}

static int empty_result(struct segment *head)
{
	return sealed_and_drained(head) ? EPIPE : EAGAIN;
}

/* Pops of this thread that look before they draw an index. A thread whose
 * pops find items draws its index without looking first: the look reads
 * the dequeue counter's line, which the fetch-and-add then takes again, a
 * second transfer of that line per pop when threads share the queue. A
 * pop that finds its slot empty, or a look that finds the queue empty,
 * makes the thread's next LOOK_AFTER_EMPTY pops look first, so that a
 * consumer that keeps up with its producers draws no index for an empty
 * queue (nor costs its pusher a retry). */
#define LOOK_AFTER_EMPTY 1024u
static THREAD_LOCAL uint32_t pops_that_look;

/* A pop that comes right after one of this thread's pops that took an
 * item, and finds the next slot still empty, polls that slot a few pauses
 * before it loads the enqueue counter: a consumer keeping pace with its
 * producer then usually finds the item there, and does not pull the
 * counter's line away from the producer's next fetch-and-add. Pops after
 * an empty result do not poll, so that polling an empty queue stays one
 * look. */
#define EMPTY_SLOT_POLLS 8u
static THREAD_LOCAL bool last_pop_took;

/* The loads of the emptiness check are seq_cst: see queue_wake_one. */
static int pop_in_section(struct sync_queue *q, void **item)
{
	for (;;) {
		struct segment *head = atomic_load(&q->head);
		if (pops_that_look && looks_empty(head, last_pop_took ? EMPTY_SLOT_POLLS : 0)) {
			pops_that_look = LOOK_AFTER_EMPTY;
			last_pop_took = false;
			return empty_result(head);
		}
		/* relaxed: a ticket; the slot's state (take_slot) orders the item */
		uint64_t i = atomic_fetch_add_explicit(&head->deq, 1, memory_order_relaxed);
		if (i >= SEGMENT_SLOTS) {
			if (!advance_head(q, head))
				return empty_result(head);
			continue;
		}
		if (take_slot(head, i, item)) {
			ann_acquire_slot(slot_at(head, i), q); /* the push's release */
			if (pops_that_look)
				pops_that_look--;
			last_pop_took = true;
			return 0;
		}
		pops_that_look = LOOK_AFTER_EMPTY;
	}
}

int sync_queue_pop(sync_queue_t *q, void **item)
{
	if (!q || !item)
		return EINVAL;
	if (queue_kind(q) == QUEUE_BOUNDED)
		return bounded_pop(q, item);
	sync_epoch_enter();
	int r = pop_in_section(q, item);
	sync_epoch_exit();
	return r;
}

/* ---- waiting (both kinds) ----------------------------------------------- */

/* Polls for SPIN_POLL_PAUSES pause instructions at most (about 11 us
 * where a pause takes 11 ns), looking at the deadline before each poll.
 * Returns the attempt's result, EAGAIN (go to sleep) or ETIMEDOUT. */
static int wait_spin(struct queue_attempt *a, const struct timespec *abstime)
{
	struct spin_poll poll = SPIN_POLL_INIT;
	for (;;) {
		if (timeout_passed(abstime))
			return ETIMEDOUT;
		if (!spin_poll(&poll, SPIN_POLL_PAUSES))
			return EAGAIN;
		int r = a->attempt(a);
		if (r != EAGAIN)
			return r;
	}
}

/* The cancellation cleanup handler of queue_sleep: undoes the
 * registration. The cancellation may have acted just after the futex
 * consumed the wake-up of a push (or pop) whose change is still there: if
 * anyone else is registered, wake one in our place (a spurious wake-up at
 * worst). */
static void sleep_cancelled(void *arg)
{
	struct queue_waiters *w = arg;
	atomic_fetch_sub(&w->sleepers, 1); /* seq_cst: see queue_wake_one */
	queue_wake_one(w);
}

/* Counted among the sleepers, tries once more, then sleeps on seq until a
 * wake-up bumps it; the sleep is the wait's cancellation point. Returns
 * the attempt's result, EAGAIN (retry) or ETIMEDOUT. */
static int queue_sleep(struct queue_waiters *w, struct queue_attempt *a,
		       const struct timespec *abstime)
{
	atomic_fetch_add(&w->sleepers, 1); /* seq_cst: see queue_wake_one */
	/* acquire: pairs with the wakers' increment */
	uint32_t seq = atomic_load_explicit(&w->seq, memory_order_acquire);
	int r = a->attempt(a);
	TEST_HOOK("queue_sleep:looked");
	int slept = 0;
	if (r == EAGAIN) {
		pthread_cleanup_push(sleep_cancelled, w);
		slept = timeout_before_epoch(abstime)
				? ETIMEDOUT
				: futex_wait_cancelable(&w->seq, seq, abstime,
							FUTEX_BITSET_MATCH_ANY, false);
		pthread_cleanup_pop(0);
	}
	atomic_fetch_sub(&w->sleepers, 1); /* seq_cst: see queue_wake_one */
	if (r != EAGAIN)
		return r;
	if (slept == ETIMEDOUT) {
		r = a->attempt(a);
		return r == EAGAIN ? ETIMEDOUT : r;
	}
	return EAGAIN;
}

int queue_wait(struct queue_waiters *w, struct queue_attempt *a,
	       const struct timespec *abstime)
{
	int r = a->attempt(a);
	if (r == EAGAIN)
		r = wait_spin(a, abstime);
	while (r == EAGAIN)
		r = queue_sleep(w, a, abstime);
	return r;
}

static int attempt_pop(struct queue_attempt *a)
{
	return sync_queue_pop(a->q, a->out);
}

/* A cancellation point as sem_wait is: a pending cancellation acts on
 * entry, even if an item is there. The deadline is looked at before the
 * queue is polled again, so that a deadline already past times out at once. */
int sync_queue_pop_wait(sync_queue_t *q, void **item, const struct timespec *abstime)
{
	pthread_testcancel();
	if (!q || !item || (abstime && !timeout_valid(abstime)))
		return EINVAL;
	if (queue_kind(q) == QUEUE_BOUNDED)
		return bounded_pop_wait(q, item, abstime);
	struct queue_attempt a = { attempt_pop, q, NULL, item };
	return queue_wait(&q->poppers, &a, abstime);
}
