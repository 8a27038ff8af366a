/* libsync reader-writer lock: one 64-bit state word (read holds, waiting
 * writers, readers asleep, the write hold) that is also the futex both kinds
 * of waiter sleep on. See sync_rwlock_rdlock(3). */
#ifndef SYNC_RWLOCK_H
#define SYNC_RWLOCK_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most read locks held at once; one more read lock returns EAGAIN. */
#define SYNC_RWLOCK_READERS_MAX 16777215u /* 2^24 - 1 */

/* Layout is ABI (32 bytes). Fields are private: use the functions. */
typedef struct sync_rwlock {
	SYNC_ATOMIC_FIELD(uint64_t) state;     /* read holds | writers waiting | RSLEEP | WRITER */
	SYNC_ATOMIC_FIELD(uint32_t) writer;    /* thread id of the write holder */
	SYNC_ATOMIC_FIELD(uint32_t) wtoken;    /* process of the last waiting writer (private) */
	SYNC_ATOMIC_FIELD(uint32_t) heartbeat; /* bumped by waiting writers as they wake */
	SYNC_ATOMIC_FIELD(uint32_t) drops;     /* stale waiting writers dropped so far */
	uint32_t flags;                        /* SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER */
	SYNC_ATOMIC_FIELD(uint32_t) spin;      /* CPU of the last writer + 1: no spin there */
} sync_rwlock_t;

#define SYNC_RWLOCK_INITIALIZER { 0, 0, 0, 0, 0, 0, 0 }

SYNC_API int sync_rwlock_init(sync_rwlock_t *l, int flags);
SYNC_API int sync_rwlock_destroy(sync_rwlock_t *l);
SYNC_API int sync_rwlock_rdlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_tryrdlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_timedrdlock(sync_rwlock_t *l, const struct timespec *abstime);
SYNC_API int sync_rwlock_wrlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_trywrlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_timedwrlock(sync_rwlock_t *l, const struct timespec *abstime);
SYNC_API int sync_rwlock_rdunlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_wrunlock(sync_rwlock_t *l);

/* Inline fast paths of rdlock and rdunlock: an uncontended read lock costs
 * two atomic instructions, and two calls through the PLT add about a fifth
 * to that (bench/rwlock.c, read row against ck_rwlock's inline functions).
 * They make the state word ABI: bits 32-61 count read holds, bits 62-63
 * are 0 while no writer sleeps behind readers (and no read unlock of an
 * unheld lock is being undone), and bits 0-31 are 0 while no writer holds
 * or waits and no reader sleeps (bit 0 is the write hold, bits 1 and 2
 * "readers asleep" and "writers asleep", bits 3-31 count waiting writers);
 * the
 * slow paths take any other bit. Define SYNC_NO_INLINE to
 * call the library for everything. The sync_impl_ functions are internal. */
SYNC_API int sync_impl_rwlock_rdlock_undo(sync_rwlock_t *l);
SYNC_API int sync_impl_rwlock_rdunlock_slow(sync_rwlock_t *l, uint64_t old);
/* Not 0 once this process has initialised, or waited on, a SYNC_PSHARED
 * lock: read locks then go to the library, which adds to the read count
 * only after it has seen the lock open (see sync_rwlock_rdlock(3)). Also
 * not 0 from the start in a process that runs with ThreadSanitizer or on
 * Valgrind: read locks and unlocks then go to the library, which tells
 * the tool (see libsync(7)). */
SYNC_API extern int sync_impl_rwlock_pshared_seen;

/* SYNC_IMPL_RWLOCK_INLINE_UNDER_TSAN: libsync's own stress tests, whose
 * library is itself built with ThreadSanitizer, check the inline paths. */
#if SYNC_IMPL_INLINE || \
	(defined(SYNC_IMPL_RWLOCK_INLINE_UNDER_TSAN) && !defined(SYNC_NO_INLINE))
#define SYNC_IMPL_RWLOCK_READER_ONE (1ull << 32)

/* C sees the state as _Atomic, C++ as a plain word (see SYNC_ATOMIC_FIELD). */
#ifdef __cplusplus
#define SYNC_IMPL_RWLOCK_ADD(l, v) __atomic_fetch_add(&(l)->state, v, __ATOMIC_ACQUIRE)
#define SYNC_IMPL_RWLOCK_SUB(l, v) __atomic_fetch_sub(&(l)->state, v, __ATOMIC_RELEASE)
#else
#include <stdatomic.h>
#define SYNC_IMPL_RWLOCK_ADD(l, v) \
	atomic_fetch_add_explicit(&(l)->state, v, memory_order_acquire)
#define SYNC_IMPL_RWLOCK_SUB(l, v) \
	atomic_fetch_sub_explicit(&(l)->state, v, memory_order_release)
#endif

/* Takes a read hold by fetch-and-add if no writer holds or waits; else the
 * library undoes the add and waits. A process that uses process-shared
 * locks calls the library instead, which adds only after it has seen the
 * lock open, so that a reader killed while it waits leaves no read count
 * (the add and its undo are a few instructions apart; in a private lock
 * only the whole process dies). Acquire pairs with the write unlock. */
static inline int sync_impl_rwlock_rdlock(sync_rwlock_t *l)
{
	if (!l || __builtin_expect(__atomic_load_n(&sync_impl_rwlock_pshared_seen,
						   __ATOMIC_RELAXED), 0))
		return sync_rwlock_rdlock(l);
	uint64_t s = SYNC_IMPL_RWLOCK_ADD(l, SYNC_IMPL_RWLOCK_READER_ONE);
	if (__builtin_expect(!(s & 0xffffffffull) &&
			     (s >> 32) < SYNC_RWLOCK_READERS_MAX, 1))
		return 0; /* no writer holds or waits, and the count had room */
	return sync_impl_rwlock_rdlock_undo(l);
}

/* Drops a read hold; the library wakes the waiting writers after the last
 * reader (by the futex's address alone: the lock may be gone by then), and
 * undoes the drop if no read hold was held (EPERM). Release pairs with the
 * next writer's acquire. */
static inline int sync_impl_rwlock_rdunlock(sync_rwlock_t *l)
{
	if (!l || __builtin_expect(__atomic_load_n(&sync_impl_rwlock_pshared_seen,
						   __ATOMIC_RELAXED), 0))
		return sync_rwlock_rdunlock(l);
	uint64_t s = SYNC_IMPL_RWLOCK_SUB(l, SYNC_IMPL_RWLOCK_READER_ONE);
	if (__builtin_expect(!(s & 0xfffffffeull) && (s >> 32), 1))
		return 0; /* no writer waits, and a read hold was held */
	return sync_impl_rwlock_rdunlock_slow(l, s);
}

#define sync_rwlock_rdlock(l) sync_impl_rwlock_rdlock(l)
#define sync_rwlock_rdunlock(l) sync_impl_rwlock_rdunlock(l)
#endif

#ifdef __cplusplus
}
#endif

#endif /* SYNC_RWLOCK_H */
