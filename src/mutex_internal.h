/* What sync_cond needs from the mutex: the futex bitset its sleepers use (so
 * that waiters requeued from a condition variable are woken by unlock), and
 * the way such a waiter takes the lock. */
#ifndef SYNC_SRC_MUTEX_INTERNAL_H
#define SYNC_SRC_MUTEX_INTERNAL_H

#include <stdbool.h>

#include <sync/mutex.h>

/* Bitset of ordinary sleepers on sync_mutex_t.state. */
#define MUTEX_SLEEPER_BITSET 1u

/* False if the caller certainly does not hold m: m is unlocked, or m is an
 * ERRORCHECK mutex held by another thread. */
bool mutex_may_be_held_by_caller(sync_mutex_t *m);

/* Locks m for a thread that a broadcast may have requeued onto m's futex:
 * it takes the lock as a woken sleeper does, leaving the WAITERS bit set,
 * so that its unlock wakes the next requeued thread. 0, or for a robust
 * mutex EOWNERDEAD (held) or ENOTRECOVERABLE (not held). */
int mutex_lock_requeued(sync_mutex_t *m);

/* Robust mutexes (mutex_robust.c); sync_mutex_* dispatch on the flag. A
 * robust mutex is never requeued onto: broadcast wakes its waiters. */
static inline bool mutex_is_robust(const sync_mutex_t *m)
{
	return m->flags & SYNC_MUTEX_ROBUST;
}

int robust_init(sync_mutex_t *m, int flags);
int robust_destroy(sync_mutex_t *m);
int robust_lock(sync_mutex_t *m, const struct timespec *abstime);
int robust_trylock(sync_mutex_t *m);
int robust_unlock(sync_mutex_t *m);
int robust_consistent(sync_mutex_t *m);
bool robust_held_by_caller(sync_mutex_t *m);
/* m was unlocked after EOWNERDEAD without consistent: ENOTRECOVERABLE. */
bool robust_not_recoverable(sync_mutex_t *m);

#endif /* SYNC_SRC_MUTEX_INTERNAL_H */
