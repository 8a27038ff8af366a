/* Futex mutex: Drepper, "Futexes Are Tricky" (2011), mutex 3, with bounded
 * spinning before sleeping and a hand-off bit against starvation (after the
 * starvation mode of Go's sync.Mutex). */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sync/mutex.h>

#include "backoff.h"
#include "futex.h"
#include "mutex_internal.h"
#include "thread.h"
#include "timeout.h"

#define M_LOCKED  1u /* held */
#define M_WAITERS 2u /* some thread may sleep on BITSET_SLEEPER */
#define M_HANDOFF 4u /* the heir owns the next release; newcomers keep out */

#define BITSET_SLEEPER MUTEX_SLEEPER_BITSET /* ordinary sleepers */
#define BITSET_HEIR    2u /* the single starving waiter that set M_HANDOFF */

/* Pause iterations the single spinner spends before it sleeps, and the
 * largest gap between its looks at the lock word (exponential backoff, so a
 * holder that re-locks keeps the cache line most of the time). */
#define SPIN_PAUSES   4096u
#define SPIN_STEP_MAX 256u
/* Wake-ups lost to barging threads before a sleeper claims the hand-off. */
#define LOST_RACES_BEFORE_HANDOFF 4

#define MUTEX_FLAGS (SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK)

static bool is_pshared(const sync_mutex_t *m)
{
	return m->flags & SYNC_PSHARED;
}

static bool is_errorcheck(const sync_mutex_t *m)
{
	return m->flags & SYNC_MUTEX_ERRORCHECK;
}

static void note_owner(sync_mutex_t *m)
{
	if (is_errorcheck(m)) /* relaxed: only the holder writes its own id */
		atomic_store_explicit(&m->owner, thread_tid(), memory_order_relaxed);
}

static bool caller_owns(sync_mutex_t *m)
{
	/* relaxed: equals our id only if we stored it, in program order */
	return atomic_load_explicit(&m->owner, memory_order_relaxed) == thread_tid();
}

/* CAS *s -> want on the state word; acquire pairs with the release in unlock. */
static bool state_cas_acquire(sync_mutex_t *m, uint32_t *s, uint32_t want)
{
	return atomic_compare_exchange_weak_explicit(&m->state, s, want,
						     memory_order_acquire,
						     memory_order_relaxed);
}

int sync_mutex_init(sync_mutex_t *m, int flags)
{
	if (!m || (flags & ~MUTEX_FLAGS))
		return EINVAL;
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&m->state, 0, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	m->flags = (uint32_t)flags;
	atomic_store_explicit(&m->spinner, 0, memory_order_relaxed);
	return 0;
}

int sync_mutex_destroy(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	/* relaxed: a snapshot; destroying while others still use it is misuse */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	return (s & (M_LOCKED | M_HANDOFF)) ? EBUSY : 0;
}

/* Takes the lock if neither held nor promised to an heir; other bits stay. */
static bool take_if_free(sync_mutex_t *m, uint32_t *s)
{
	while (!(*s & (M_LOCKED | M_HANDOFF))) {
		if (state_cas_acquire(m, s, *s | M_LOCKED))
			return true;
	}
	return false;
}

/* At most one thread spins (after the kernel's optimistic spinning of
 * mutexes): others go to sleep at once, so oversubscribed waiters do not
 * burn the CPU that a preempted holder needs. The spinner flag lives apart
 * from the lock word so that the holder's fast paths stay single CASes. */
static bool spin_acquire(sync_mutex_t *m)
{
	/* relaxed: only claims the role; the state CAS below acquires */
	if (atomic_exchange_explicit(&m->spinner, 1, memory_order_relaxed))
		return false;
	uint32_t step = 1;
	for (uint32_t spent = 0; spent < SPIN_PAUSES; spent += step) {
		cpu_relax_n(step);
		step = step < SPIN_STEP_MAX ? step << 1 : step;
		/* relaxed: the CAS carries the acquire */
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s & M_HANDOFF)
			break;
		if (take_if_free(m, &s)) {
			/* relaxed: we hold the lock; M_WAITERS, if inherited, stays */
			atomic_store_explicit(&m->spinner, 0, memory_order_relaxed);
			return true;
		}
	}
	/* seq_cst, with sleep_acquire's first look at the state: pairs with the
	 * seq_cst release-then-check in unlock_slow (store-buffering), so either
	 * we see the release or the unlocker sees us gone and wakes a sleeper. */
	atomic_store(&m->spinner, 0);
	return false;
}

static int sleep_on(sync_mutex_t *m, uint32_t s, const struct timespec *abstime,
		    uint32_t bitset)
{
	if (timeout_before_epoch(abstime))
		return ETIMEDOUT;
	return futex_wait(&m->state, s, abstime, bitset, is_pshared(m));
}

/* The heir gives up its claim at its deadline, unless the hand-off came. */
static int heir_timeout(sync_mutex_t *m)
{
	/* relaxed: the CAS carries the acquire */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	for (;;) {
		uint32_t want = (s & M_LOCKED) ? (s & ~M_HANDOFF)
					       : ((s & ~M_HANDOFF) | M_LOCKED);
		if (state_cas_acquire(m, &s, want))
			return (s & M_LOCKED) ? ETIMEDOUT : 0;
	}
}

/* M_HANDOFF is ours: no one else may take the lock once it is released. */
static int heir_acquire(sync_mutex_t *m, const struct timespec *abstime)
{
	for (;;) {
		/* relaxed: the CAS carries the acquire */
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (!(s & M_LOCKED)) {
			if (state_cas_acquire(m, &s, (s & ~M_HANDOFF) | M_LOCKED))
				return 0;
			continue;
		}
		if (sleep_on(m, s, abstime, BITSET_HEIR) == ETIMEDOUT)
			return heir_timeout(m);
	}
}

/* Drepper's loop: whoever takes the lock from here marks M_WAITERS, since
 * other sleepers may remain; a sleeper that keeps losing claims the hand-off. */
static int sleep_acquire(sync_mutex_t *m, const struct timespec *abstime)
{
	unsigned lost = 0;
	for (;;) {
		/* seq_cst: see spin_acquire's give-up; the CAS carries the acquire */
		uint32_t s = atomic_load(&m->state);
		if (!(s & (M_LOCKED | M_HANDOFF))) {
			if (state_cas_acquire(m, &s, s | M_LOCKED | M_WAITERS))
				return 0;
			continue;
		}
		if (!(s & M_HANDOFF) && lost >= LOST_RACES_BEFORE_HANDOFF) {
			if (state_cas_acquire(m, &s, s | M_HANDOFF | M_WAITERS))
				return heir_acquire(m, abstime);
			continue;
		}
		if (!(s & M_WAITERS) && !state_cas_acquire(m, &s, s | M_WAITERS))
			continue;
		int r = sleep_on(m, s | M_WAITERS, abstime, BITSET_SLEEPER);
		if (r == ETIMEDOUT)
			return ETIMEDOUT;
		if (r == 0)
			lost++;
	}
}

static int lock_slow(sync_mutex_t *m, const struct timespec *abstime)
{
	if (is_errorcheck(m) && caller_owns(m))
		return EDEADLK;
	int r = spin_acquire(m) ? 0 : sleep_acquire(m, abstime);
	if (r == 0)
		note_owner(m);
	return r;
}

/* A running thread may take a free lock even while a spinner or sleepers
 * wait (barging keeps the cache line where the work is). */
static bool try_fast(sync_mutex_t *m)
{
	uint32_t s = 0;
	if (atomic_compare_exchange_strong_explicit(
		    &m->state, &s, M_LOCKED, memory_order_acquire, /* pairs with unlock */
		    memory_order_relaxed))
		return true;
	return take_if_free(m, &s);
}

/* Fast path first, then spin and sleep until abstime (NULL: forever). */
static int acquire(sync_mutex_t *m, const struct timespec *abstime)
{
	if (try_fast(m)) {
		note_owner(m);
		return 0;
	}
	return lock_slow(m, abstime);
}

int sync_mutex_lock(sync_mutex_t *m)
{
	return m ? acquire(m, NULL) : EINVAL;
}

int sync_mutex_timedlock(sync_mutex_t *m, const struct timespec *abstime)
{
	if (!m || !timeout_valid(abstime))
		return EINVAL;
	return acquire(m, abstime);
}

int sync_mutex_trylock(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	/* relaxed: the CAS carries the acquire */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (!take_if_free(m, &s))
		return EBUSY;
	note_owner(m);
	return 0;
}

/* Wakes one sleeper, unless a spinner is there to take the lock: then it
 * inherits M_WAITERS and the duty to wake. Otherwise M_WAITERS is cleared
 * if nothing changed; the woken sleeper sets it again if others remain. */
static void wake_sleeper(sync_mutex_t *m)
{
	/* seq_cst: after the seq_cst release in unlock_slow; see spin_acquire */
	if (atomic_load(&m->spinner))
		return;
	uint32_t s = M_WAITERS;
	/* relaxed: a bookkeeping change on a free lock, publishes nothing */
	atomic_compare_exchange_strong_explicit(&m->state, &s, 0, memory_order_relaxed,
						memory_order_relaxed);
	futex_wake(&m->state, 1, BITSET_SLEEPER, is_pshared(m));
}

/* Someone may sleep, or an heir waits: release, then wake at most one. An
 * heir keeps M_HANDOFF (and M_WAITERS) so that no newcomer barges in. */
static int unlock_slow(sync_mutex_t *m, uint32_t s)
{
	do {
		if (!(s & M_LOCKED))
			return EPERM;
		/* seq_cst (a release, and ordered before wake_sleeper's check) */
	} while (!atomic_compare_exchange_weak_explicit(&m->state, &s, s & ~M_LOCKED,
							memory_order_seq_cst,
							memory_order_relaxed));
	if (s & M_HANDOFF)
		futex_wake(&m->state, 1, BITSET_HEIR, is_pshared(m));
	else if (s & M_WAITERS)
		wake_sleeper(m);
	return 0;
}

int sync_mutex_unlock(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	if (is_errorcheck(m)) {
		if (!caller_owns(m))
			return EPERM;
		/* relaxed: ordered before the release CAS below */
		atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	}
	uint32_t s = M_LOCKED;
	if (atomic_compare_exchange_strong_explicit(
		    &m->state, &s, 0, memory_order_release, /* pairs with lock's CAS */
		    memory_order_relaxed))
		return 0;
	return unlock_slow(m, s);
}

bool mutex_may_be_held_by_caller(sync_mutex_t *m)
{
	if (is_errorcheck(m))
		return caller_owns(m);
	/* relaxed: if the caller holds m, its own lock set this bit */
	return atomic_load_explicit(&m->state, memory_order_relaxed) & M_LOCKED;
}

void mutex_lock_requeued(sync_mutex_t *m)
{
	sleep_acquire(m, NULL); /* no deadline: cannot fail */
	note_owner(m);
}
