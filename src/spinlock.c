/* Spinlocks that survive oversubscription: each waiter spins a bounded time
 * (backoff.h) and then yields the CPU between attempts.
 *  - TTAS with exponential backoff (Anderson, IEEE TPDS 1990);
 *  - ticket lock with proportional backoff and
 *  - MCS queue lock (both Mellor-Crummey & Scott, ACM TOCS 1991).
 *
 * Hand-off: an unlock's last access is its releasing store (TTAS, ticket) or
 * its releasing CAS of the tail or store of MCS_GO (MCS); before that store
 * the MCS unlock reads its successor's `next` and marks the node after it as
 * next, nodes whose owners cannot leave before the store. So the next owner
 * may destroy and free the lock (and the MCS unlocker reuse its node) at once.
 * No store is followed by a load that must not pass it.
 *
 * What a vanished waiter (killed process; another thread of the parent, in a
 * fork child) leaves behind: TTAS, nothing. Ticket: its ticket, which comes
 * up in turn and is never taken, so every later waiter waits for good. MCS:
 * its node in the queue, likewise. A FIFO queue lock cannot tell a waiter
 * that is gone from one that is slow; where a waiter may die (shared memory
 * between processes) or be forked away while it waits, use the TTAS lock. */
#include <errno.h>
#include <stdatomic.h>

#include <sync/spinlock.h>

#include "annotate.h"
#include "backoff.h"
#include "test_hook.h"

/* Pauses a ticket waiter spends per thread ahead of it before looking again. */
#define TICKET_PAUSES_PER_WAITER 8u

/* ---- TTAS ------------------------------------------------------------- */

int sync_spinlock_init(sync_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	/* relaxed: publishing the lock to other threads is the caller's job */
	atomic_store_explicit(&l->locked, 0, memory_order_relaxed);
	ann_lock_create(l);
	return 0;
}

static int spin_try_exchange(sync_spinlock_t *l)
{
	/* acquire: pairs with the release store in sync_spinlock_unlock */
	return atomic_exchange_explicit(&l->locked, 1, memory_order_acquire) == 0;
}

static void spinlock_contended(sync_spinlock_t *l)
{
	struct spin_budget budget = SPIN_BUDGET_INIT;
	uint32_t step = 1;
	do {
		/* relaxed: only a hint; the exchange carries the acquire */
		while (atomic_load_explicit(&l->locked, memory_order_relaxed))
			spin_budget_wait(&budget, 1);
		if (spin_try_exchange(l))
			return;
		backoff_exp(&budget, &step);
	} while (1);
}

void sync_spinlock_lock(sync_spinlock_t *l)
{
	ann_lock_pre(l, ANN_WRITE | ANN_SPIN);
	if (!spin_try_exchange(l)) {
		ann_contended(l, ANN_SPIN);
		spinlock_contended(l);
	}
	ann_lock_post(l, ANN_WRITE | ANN_SPIN, 0);
}

static int spin_try(sync_spinlock_t *l)
{
	/* relaxed: a read first keeps a held lock's line shared */
	if (atomic_load_explicit(&l->locked, memory_order_relaxed))
		return EBUSY;
	return spin_try_exchange(l) ? 0 : EBUSY;
}

int sync_spinlock_trylock(sync_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	ann_lock_pre(l, ANN_TRY | ANN_SPIN);
	int r = spin_try(l);
	ann_lock_post(l, ANN_TRY | ANN_SPIN, r);
	return r;
}

void sync_spinlock_unlock(sync_spinlock_t *l)
{
	/* before the release: l may go with it */
	ann_unlock_pre(l, ANN_WRITE | ANN_SPIN);
	/* release: pairs with the acquire exchange in lock/trylock */
	atomic_store_explicit(&l->locked, 0, memory_order_release);
	TEST_HOOK("spinlock_unlock:released");
	ann_unlock_post(l, ANN_WRITE);
}

/* ---- Ticket ----------------------------------------------------------- */

int sync_ticketlock_init(sync_ticketlock_t *l)
{
	if (!l)
		return EINVAL;
	/* relaxed: publishing the lock to other threads is the caller's job */
	atomic_store_explicit(&l->next, 0, memory_order_relaxed);
	atomic_store_explicit(&l->serving, 0, memory_order_relaxed);
	ann_lock_create(l);
	return 0;
}

static uint32_t ticket_serving(sync_ticketlock_t *l)
{
	/* acquire: pairs with the release store in sync_ticketlock_unlock */
	return atomic_load_explicit(&l->serving, memory_order_acquire);
}

static void ticket_wait(sync_ticketlock_t *l, uint32_t ticket, uint32_t serving)
{
	struct spin_budget budget = SPIN_BUDGET_INIT;
	do {
		uint32_t ahead = ticket - serving;
		if (ahead == 1) { /* next in line: watch closely */
			spin_budget_wait(&budget, 1);
		} else {
			uint32_t pauses = (ahead - 1) * TICKET_PAUSES_PER_WAITER;
			spin_budget_wait_upto(&budget,
					      pauses < BACKOFF_MAX ? pauses : BACKOFF_MAX,
					      SPIN_BEFORE_YIELD_QUEUED);
		}
		serving = ticket_serving(l);
	} while (serving != ticket);
}

void sync_ticketlock_lock(sync_ticketlock_t *l)
{
	ann_lock_pre(l, ANN_WRITE | ANN_SPIN);
	/* relaxed: the wait on `serving` carries the acquire */
	uint32_t ticket = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
	uint32_t serving = ticket_serving(l);
	if (serving != ticket) {
		ann_contended(l, ANN_SPIN);
		ticket_wait(l, ticket, serving);
	}
	ann_lock_post(l, ANN_WRITE | ANN_SPIN, 0);
}

static int ticket_try(sync_ticketlock_t *l)
{
	uint32_t serving = ticket_serving(l);
	/* relaxed: `serving` was read with acquire; next == serving means free */
	return atomic_compare_exchange_strong_explicit(&l->next, &serving,
						       serving + 1,
						       memory_order_relaxed,
						       memory_order_relaxed)
		       ? 0
		       : EBUSY;
}

int sync_ticketlock_trylock(sync_ticketlock_t *l)
{
	if (!l)
		return EINVAL;
	ann_lock_pre(l, ANN_TRY | ANN_SPIN);
	int r = ticket_try(l);
	ann_lock_post(l, ANN_TRY | ANN_SPIN, r);
	return r;
}

void sync_ticketlock_unlock(sync_ticketlock_t *l)
{
	/* before the release: l may go with it */
	ann_unlock_pre(l, ANN_WRITE | ANN_SPIN);
	/* relaxed: only the holder writes `serving` */
	uint32_t serving = atomic_load_explicit(&l->serving, memory_order_relaxed);
	/* release: pairs with the acquire loads of `serving` in lock/trylock */
	atomic_store_explicit(&l->serving, serving + 1, memory_order_release);
	TEST_HOOK("ticketlock_unlock:released");
	ann_unlock_post(l, ANN_WRITE);
}

/* ---- MCS -------------------------------------------------------------- */

/* Values of a node's `wait`: the lock is ours; we are queued; we are next
 * (the holder said so), so stay on the CPU and watch closely. */
#define MCS_GO     0u
#define MCS_QUEUED 1u
#define MCS_NEXT   2u

static intptr_t node_offset(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	return (intptr_t)((char *)node - (char *)l);
}

static sync_mcsnode_t *node_at(sync_mcslock_t *l, intptr_t offset)
{
	return (sync_mcsnode_t *)((char *)l + offset);
}

int sync_mcslock_init(sync_mcslock_t *l)
{
	if (!l)
		return EINVAL;
	/* relaxed: publishing the lock to other threads is the caller's job */
	atomic_store_explicit(&l->tail, 0, memory_order_relaxed);
	ann_lock_create(l);
	return 0;
}

static void mcs_node_reset(sync_mcsnode_t *node, uint32_t wait)
{
	/* relaxed: published by the acq_rel update of the tail that follows */
	atomic_store_explicit(&node->next, 0, memory_order_relaxed);
	atomic_store_explicit(&node->wait, wait, memory_order_relaxed);
}

/* Only the waiter told it is next spins long; the others yield soon, so that
 * with more threads than cores the CPU goes to the next in line. */
static void mcs_wait_turn(sync_mcsnode_t *node)
{
	struct spin_budget budget = SPIN_BUDGET_INIT;
	uint32_t wait;
	/* acquire: pairs with the release store of MCS_GO in unlock */
	while ((wait = atomic_load_explicit(&node->wait, memory_order_acquire))) {
		spin_budget_wait_upto(&budget, 1,
				      wait == MCS_NEXT ? SPIN_BEFORE_YIELD
						       : SPIN_BEFORE_YIELD_QUEUED);
	}
}

/* The race detectors see the lock; the node, which the neighbours in the
 * queue write, is the library's own (ann_internal). */
static void mcs_acquire(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	mcs_node_reset(node, MCS_QUEUED);
	/* acq_rel: acquire pairs with unlock's release CAS of the tail; release
	 * publishes the node's reset to the successor that links behind it */
	intptr_t pred = atomic_exchange_explicit(&l->tail, node_offset(l, node),
						 memory_order_acq_rel);
	if (!pred)
		return;
	/* release: pairs with the acquire load of `next` in unlock */
	atomic_store_explicit(&node_at(l, pred)->next, node_offset(l, node),
			      memory_order_release);
	ann_contended(l, ANN_SPIN);
	mcs_wait_turn(node);
}

void sync_mcslock_lock(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	ann_lock_pre(l, ANN_WRITE | ANN_SPIN);
	ann_internal(node, sizeof *node);
	mcs_acquire(l, node);
	ann_lock_post(l, ANN_WRITE | ANN_SPIN, 0);
}

static int mcs_try(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	intptr_t expected = 0;
	/* relaxed: a held lock's line is only read */
	if (atomic_load_explicit(&l->tail, memory_order_relaxed))
		return EBUSY;
	mcs_node_reset(node, MCS_GO);
	/* acq_rel: as the exchange in sync_mcslock_lock */
	return atomic_compare_exchange_strong_explicit(&l->tail, &expected,
						       node_offset(l, node),
						       memory_order_acq_rel,
						       memory_order_relaxed)
		       ? 0
		       : EBUSY;
}

int sync_mcslock_trylock(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	if (!l || !node)
		return EINVAL;
	ann_lock_pre(l, ANN_TRY | ANN_SPIN);
	ann_internal(node, sizeof *node);
	int r = mcs_try(l, node);
	ann_lock_post(l, ANN_TRY | ANN_SPIN, r);
	return r;
}

/* The tail moved past us: wait for the successor to link itself in. */
static intptr_t mcs_wait_successor(sync_mcsnode_t *node)
{
	struct spin_budget budget = SPIN_BUDGET_INIT;
	intptr_t next;
	/* acquire: pairs with the release store of `next` in lock */
	while (!(next = atomic_load_explicit(&node->next, memory_order_acquire)))
		spin_budget_wait_upto(&budget, 1, SPIN_BEFORE_YIELD_QUEUED);
	return next;
}

static void mcs_release(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	/* acquire: pairs with the release store of `next` in lock */
	intptr_t next = atomic_load_explicit(&node->next, memory_order_acquire);
	if (!next) {
		intptr_t self = node_offset(l, node);
		/* release: pairs with the acquire exchange/CAS of the next locker */
		if (atomic_compare_exchange_strong_explicit(&l->tail, &self, 0,
							    memory_order_release,
							    memory_order_relaxed)) {
			TEST_HOOK("mcslock_unlock:released");
			return;
		}
		next = mcs_wait_successor(node);
	}
	sync_mcsnode_t *succ = node_at(l, next);
	/* The successor's successor cannot run before we pass the lock on, so
	 * its node is still valid: tell it that it is next. acquire: pairs with
	 * the release store of `next` in lock. */
	intptr_t after = atomic_load_explicit(&succ->next, memory_order_acquire);
	if (after) /* relaxed: a hint; MCS_GO below is the release */
		atomic_store_explicit(&node_at(l, after)->wait, MCS_NEXT,
				      memory_order_relaxed);
	/* release: pairs with the acquire load of `wait` in mcs_wait_turn */
	atomic_store_explicit(&succ->wait, MCS_GO, memory_order_release);
	TEST_HOOK("mcslock_unlock:released");
}

void sync_mcslock_unlock(sync_mcslock_t *l, sync_mcsnode_t *node)
{
	/* before the release: l may go with it */
	ann_unlock_pre(l, ANN_WRITE | ANN_SPIN);
	mcs_release(l, node);
	ann_unlock_post(l, ANN_WRITE);
}
