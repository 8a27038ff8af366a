/* Futex mutex: Drepper, "Futexes Are Tricky" (2011), mutex 3, with bounded
 * spinning before sleeping and a hand-off bit against starvation (after the
 * starvation mode of Go's sync.Mutex). */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sync/mutex.h>

#include "backoff.h"
#include "futex.h"
#include "thread.h"
#include "timeout.h"

#define M_LOCKED  1u /* held */
#define M_WAITERS 2u /* some thread may sleep on BITSET_SLEEPER */
#define M_HANDOFF 4u /* the heir owns the next release; newcomers keep out */
#define M_SPINNER 8u /* one thread spins for the lock; unlock need not wake */

#define BITSET_SLEEPER 1u /* ordinary sleepers */
#define BITSET_HEIR    2u /* the single starving waiter that set M_HANDOFF */

/* Pause iterations the single spinner spends at most before it sleeps, and
 * the largest gap between its looks at the lock word (exponential backoff,
 * so a holder that re-locks keeps the cache line most of the time). */
#define SPIN_PAUSES   16384u
#define SPIN_STEP_MAX 512u
/* Looks at the lock during which nobody released it before the spinner
 * concludes that the holder is preempted or slow, and goes to sleep. */
#define SPIN_STALLS   2u
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
	atomic_store_explicit(&m->releases, 0, memory_order_relaxed);
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
 * burn the CPU that a preempted holder needs. */
static bool spin_acquire(sync_mutex_t *m)
{
	/* relaxed: only claims the spinner role; the CAS below acquires */
	if (atomic_fetch_or_explicit(&m->state, M_SPINNER, memory_order_relaxed) &
	    M_SPINNER)
		return false;
	uint32_t step = 1, stalls = 0;
	/* relaxed: a progress hint, nothing is read through it */
	uint32_t seen = atomic_load_explicit(&m->releases, memory_order_relaxed);
	for (uint32_t spent = 0; spent < SPIN_PAUSES; spent += step) {
		cpu_relax_n(step);
		step = step < SPIN_STEP_MAX ? step << 1 : step;
		/* relaxed: the CAS carries the acquire */
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s & M_HANDOFF)
			break;
		while (!(s & M_LOCKED)) {
			if (state_cas_acquire(m, &s, (s | M_LOCKED) & ~M_SPINNER))
				return true;
		}
		/* relaxed: a progress hint, as above */
		uint32_t now = atomic_load_explicit(&m->releases, memory_order_relaxed);
		stalls = now == seen ? stalls + 1 : 0;
		if (stalls > SPIN_STALLS)
			break;
		seen = now;
	}
	/* relaxed: sleep_acquire looks at the lock again before sleeping */
	atomic_fetch_and_explicit(&m->state, ~M_SPINNER, memory_order_relaxed);
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
		/* relaxed: the CAS carries the acquire */
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
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

int sync_mutex_lock(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	if (try_fast(m)) {
		note_owner(m);
		return 0;
	}
	return lock_slow(m, NULL);
}

int sync_mutex_timedlock(sync_mutex_t *m, const struct timespec *abstime)
{
	if (!m || !timeout_valid(abstime))
		return EINVAL;
	if (try_fast(m)) {
		note_owner(m);
		return 0;
	}
	return lock_slow(m, abstime);
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

/* The state a release leaves behind. An heir keeps M_HANDOFF (and
 * M_WAITERS) so that no newcomer barges in. A spinner inherits M_WAITERS:
 * it takes the lock or re-checks it before it sleeps, and wakes the sleepers
 * when it unlocks. Otherwise the woken sleeper sets M_WAITERS again. */
static uint32_t released_state(uint32_t s)
{
	return (s & (M_HANDOFF | M_SPINNER)) ? (s & ~M_LOCKED) : 0;
}

/* Counts a release for the spinner's benefit: every release goes through
 * unlock_slow while a spinner watches (M_SPINNER fails the fast path). */
static void note_release(sync_mutex_t *m)
{
	/* relaxed: only the holder writes it; a spinner reads it as a hint */
	uint32_t n = atomic_load_explicit(&m->releases, memory_order_relaxed);
	atomic_store_explicit(&m->releases, n + 1, memory_order_relaxed);
}

/* Someone may sleep, spin, or an heir waits: release and wake at most one. */
static int unlock_slow(sync_mutex_t *m, uint32_t s)
{
	if (!(s & M_LOCKED))
		return EPERM;
	note_release(m);
	/* Only the holder clears M_LOCKED, so it stays set in every retry. */
	while (!atomic_compare_exchange_weak_explicit(
		&m->state, &s, released_state(s),
		memory_order_release, /* pairs with lock's CAS */
		memory_order_relaxed))
		;
	if (s & M_HANDOFF)
		futex_wake(&m->state, 1, BITSET_HEIR, is_pshared(m));
	else if ((s & M_WAITERS) && !(s & M_SPINNER))
		futex_wake(&m->state, 1, BITSET_SLEEPER, is_pshared(m));
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
