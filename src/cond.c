/* Condition variable: waiters sleep on a futex sequence counter that signal
 * and broadcast bump (Drepper, "Futexes Are Tricky", 2011; the scheme of
 * Bionic and of musl's process-shared path). A broadcast wakes one waiter and
 * requeues the others onto the mutex's futex with FUTEX_CMP_REQUEUE, as glibc
 * did before 2.25, so they come out one unlock at a time, not as a herd.
 * Waiters poll the counter briefly before they sleep, and signal makes a
 * system call only when someone sleeps. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sync/cond.h>

#include "backoff.h"
#include "futex.h"
#include "mutex_internal.h"
#include "timeout.h"

/* Low bit of the recorded mutex address: that mutex is process-shared. */
#define MUTEX_TAG_PSHARED 1u

static bool is_pshared(const sync_cond_t *c)
{
	return c->flags & SYNC_PSHARED;
}

static uintptr_t mutex_tag(const sync_mutex_t *m)
{
	return (uintptr_t)m | ((m->flags & SYNC_PSHARED) ? MUTEX_TAG_PSHARED : 0);
}

int sync_cond_init(sync_cond_t *c, int flags)
{
	if (!c || (flags & ~SYNC_PSHARED))
		return EINVAL;
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&c->seq, 0, memory_order_relaxed);
	atomic_store_explicit(&c->waiters, 0, memory_order_relaxed);
	atomic_store_explicit(&c->sleepers, 0, memory_order_relaxed);
	atomic_store_explicit(&c->broadcasts, 0, memory_order_relaxed);
	c->flags = (uint32_t)flags;
	c->reserved = 0;
	atomic_store_explicit(&c->mutex, 0, memory_order_relaxed);
	return 0;
}

int sync_cond_destroy(sync_cond_t *c)
{
	if (!c)
		return EINVAL;
	return atomic_load(&c->waiters) ? EBUSY : 0;
}

/* Binds a private cond to the waiter's mutex, for broadcast's requeue.
 * Waiting with two mutexes at once is EINVAL. A change of mutex bumps seq,
 * so that a broadcast that read the old one fails its CMP_REQUEUE. */
static int bind_mutex(sync_cond_t *c, sync_mutex_t *m)
{
	if (is_pshared(c))
		return 0;
	uintptr_t tag = mutex_tag(m);
	uintptr_t old = atomic_load(&c->mutex);
	if (old == tag)
		return 0;
	if (atomic_load(&c->waiters))
		return EINVAL;
	atomic_store(&c->mutex, tag);
	atomic_fetch_add(&c->seq, 1);
	return 0;
}

/* How a wait ended, and whether the waiter must lock the mutex as a woken
 * sleeper does (see mutex_lock_requeued). */
struct wait_end {
	int result;           /* 0 or ETIMEDOUT */
	bool lock_as_sleeper; /* may have taken a wake-up meant for the mutex */
};

/* Polls seq while nobody sleeps yet: a signal that comes within a few
 * microseconds then costs neither side a system call. */
static bool spin_until_signalled(sync_cond_t *c, uint32_t seq)
{
	struct spin_poll poll = SPIN_POLL_INIT;
	while (spin_poll(&poll, SPIN_POLL_PAUSES)) {
		if (atomic_load(&c->seq) != seq)
			return true;
		if (atomic_load(&c->sleepers))
			return false;
	}
	return false;
}

/* One futex sleep while seq still equals the snapshot. The sleeper count
 * and seq form a store-buffering pair with sync_cond_signal (all seq_cst):
 * either the signal sees us counted and wakes, or we see its new seq. */
static int sleep_once(sync_cond_t *c, uint32_t seq, const struct timespec *abstime)
{
	atomic_fetch_add(&c->sleepers, 1);
	int r = EAGAIN;
	if (atomic_load(&c->seq) == seq)
		r = timeout_before_epoch(abstime)
			    ? ETIMEDOUT
			    : futex_wait(&c->seq, seq, abstime,
					 MUTEX_SLEEPER_BITSET, is_pshared(c));
	atomic_fetch_sub(&c->sleepers, 1);
	return r;
}

/* Sleeps until seq moves on from the caller's snapshot, or until woken: a
 * waiter that a broadcast requeued sleeps on the mutex, and a wake-up it
 * receives there (even with seq unchanged, when the requeue raced with its
 * snapshot) is the mutex's, so it must go and take the mutex. */
static struct wait_end sleep_until_signalled(sync_cond_t *c, uint32_t seq,
					     uint32_t broadcasts,
					     const struct timespec *abstime)
{
	if (spin_until_signalled(c, seq))
		return (struct wait_end){ 0, false };
	for (;;) {
		int r = sleep_once(c, seq, abstime);
		bool moved = atomic_load(&c->seq) != seq;
		if (r == 0) {
			bool requeued = !moved ||
					atomic_load(&c->broadcasts) != broadcasts;
			return (struct wait_end){ 0, requeued };
		}
		if (moved)
			return (struct wait_end){ 0, false };
		if (r == ETIMEDOUT)
			return (struct wait_end){ ETIMEDOUT, false };
	}
}

/* The snapshot of seq is taken under the mutex, so a signal issued after the
 * caller's unlock (by a thread that took the mutex, or that saw the caller's
 * registration) changes seq and the futex wait cannot miss it. */
static int wait_on(sync_cond_t *c, sync_mutex_t *m, const struct timespec *abstime)
{
	if (!mutex_may_be_held_by_caller(m))
		return EPERM;
	int r = bind_mutex(c, m);
	if (r)
		return r;
	atomic_fetch_add(&c->waiters, 1);
	uint32_t seq = atomic_load(&c->seq);
	uint32_t broadcasts = atomic_load(&c->broadcasts);
	r = sync_mutex_unlock(m);
	if (r) {
		atomic_fetch_sub(&c->waiters, 1);
		return r;
	}
	struct wait_end end = sleep_until_signalled(c, seq, broadcasts, abstime);
	atomic_fetch_sub(&c->waiters, 1);
	if (end.lock_as_sleeper)
		mutex_lock_requeued(m);
	else
		sync_mutex_lock(m); /* cannot fail: the caller held m */
	r = end.result;
	return r;
}

int sync_cond_wait(sync_cond_t *c, sync_mutex_t *m)
{
	if (!c || !m)
		return EINVAL;
	return wait_on(c, m, NULL);
}

int sync_cond_timedwait(sync_cond_t *c, sync_mutex_t *m,
			const struct timespec *abstime)
{
	if (!c || !m || !timeout_valid(abstime))
		return EINVAL;
	return wait_on(c, m, abstime);
}

int sync_cond_signal(sync_cond_t *c)
{
	if (!c)
		return EINVAL;
	if (!atomic_load(&c->waiters))
		return 0;
	atomic_fetch_add(&c->seq, 1);
	if (atomic_load(&c->sleepers)) /* seq_cst: see sleep_once */
		futex_wake(&c->seq, 1, MUTEX_SLEEPER_BITSET, is_pshared(c));
	return 0;
}

/* Requeue needs the mutex's address, which is per process: a shared cond,
 * or a cond bound to a shared mutex, wakes everyone instead. */
int sync_cond_broadcast(sync_cond_t *c)
{
	if (!c)
		return EINVAL;
	if (!atomic_load(&c->waiters))
		return 0;
	uint32_t seq = atomic_fetch_add(&c->seq, 1) + 1;
	if (!atomic_load(&c->sleepers)) /* seq_cst: see sleep_once */
		return 0;
	uintptr_t tag = atomic_load(&c->mutex);
	if (!is_pshared(c) && tag && !(tag & MUTEX_TAG_PSHARED)) {
		sync_mutex_t *m = (sync_mutex_t *)tag;
		atomic_fetch_add(&c->broadcasts, 1);
		if (futex_cmp_requeue(&c->seq, seq, 1, INT_MAX, &m->state, false) == 0)
			return 0;
	}
	futex_wake(&c->seq, INT_MAX, MUTEX_SLEEPER_BITSET, is_pshared(c));
	return 0;
}
