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

/* Inline fast paths of rdlock and rdunlock. They make the state word ABI:
 * bits 32-60 count read holds, bit 61 says that readers may hold the lock
 * through their visible-reader slots instead (the reader bias), bits 62-63
 * are 0 while no writer sleeps behind readers (and no read unlock of an
 * unheld lock is being undone), and bits 0-31 are 0 while no writer holds
 * or waits and no reader sleeps (bit 0 is the write hold, bits 1 and 2
 * "readers asleep" and "writers asleep", bits 3-31 count waiting writers);
 * the slow paths take any other bit. Define SYNC_NO_INLINE to call the
 * library for everything. The sync_impl_ names are internal. */
SYNC_API int sync_impl_rwlock_rdlock_undo(sync_rwlock_t *l);
SYNC_API int sync_impl_rwlock_rdunlock_slow(sync_rwlock_t *l, uint64_t old);
/* Not 0 once this process has initialised, or waited on, a SYNC_PSHARED
 * lock: read locks then go to the library, which adds to the read count
 * only after it has seen the lock open (see sync_rwlock_rdlock(3)). Also
 * not 0 from the start in a process that runs with ThreadSanitizer or on
 * Valgrind: read locks and unlocks then go to the library, which tells
 * the tool (see libsync(7)). */
SYNC_API extern int sync_impl_rwlock_pshared_seen;

/* The calling thread's visible-reader slot (NULL until the library gives
 * it one): the address of the private lock it reads through the bias, or
 * 0. Only its thread writes it; a writer that revokes a lock's bias reads
 * every slot. */
struct sync_impl_rwlock_reader {
	SYNC_ATOMIC_FIELD(uintptr_t) *slot;
};
#if defined(__GNUC__)
SYNC_API extern SYNC_IMPL_THREAD_LOCAL struct sync_impl_rwlock_reader
	sync_impl_rwlock_reader __attribute__((tls_model("initial-exec")));
#else
SYNC_API extern SYNC_IMPL_THREAD_LOCAL struct sync_impl_rwlock_reader sync_impl_rwlock_reader;
#endif

/* SYNC_IMPL_RWLOCK_INLINE_UNDER_TSAN: libsync's own stress tests, whose
 * library is itself built with ThreadSanitizer, check the inline paths. */
#if SYNC_IMPL_INLINE || \
	(defined(SYNC_IMPL_RWLOCK_INLINE_UNDER_TSAN) && !defined(SYNC_NO_INLINE))
#define SYNC_IMPL_RWLOCK_READER_ONE (1ull << 32)
#define SYNC_IMPL_RWLOCK_COUNT      0x1fffffff00000000ull /* bits 32-60 */
#define SYNC_IMPL_RWLOCK_BIASED     (1ull << 61)

/* C sees the state and the slot as _Atomic, C++ as plain words (see
 * SYNC_ATOMIC_FIELD). The signal fence orders the slot's store before the
 * state's load in the compiled code only: the CPU's half of that order is
 * the membarrier(2) of the writer that revokes the bias. */
#ifdef __cplusplus
#define SYNC_IMPL_RWLOCK_ADD(l, v) __atomic_fetch_add(&(l)->state, v, __ATOMIC_ACQUIRE)
#define SYNC_IMPL_RWLOCK_SUB(l, v) __atomic_fetch_sub(&(l)->state, v, __ATOMIC_RELEASE)
#define SYNC_IMPL_RWLOCK_PEEK(l) __atomic_load_n(&(l)->state, __ATOMIC_RELAXED)
#define SYNC_IMPL_RWLOCK_LOOK(l) __atomic_load_n(&(l)->state, __ATOMIC_ACQUIRE)
#define SYNC_IMPL_RWLOCK_SLOT(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define SYNC_IMPL_RWLOCK_CLAIM(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define SYNC_IMPL_RWLOCK_FREE(p) __atomic_store_n(p, 0, __ATOMIC_RELEASE)
#define SYNC_IMPL_RWLOCK_ORDER() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#else
#include <stdatomic.h>
#define SYNC_IMPL_RWLOCK_ADD(l, v) \
	atomic_fetch_add_explicit(&(l)->state, v, memory_order_acquire)
#define SYNC_IMPL_RWLOCK_SUB(l, v) \
	atomic_fetch_sub_explicit(&(l)->state, v, memory_order_release)
#define SYNC_IMPL_RWLOCK_PEEK(l) atomic_load_explicit(&(l)->state, memory_order_relaxed)
#define SYNC_IMPL_RWLOCK_LOOK(l) atomic_load_explicit(&(l)->state, memory_order_acquire)
#define SYNC_IMPL_RWLOCK_SLOT(p) atomic_load_explicit(p, memory_order_relaxed)
#define SYNC_IMPL_RWLOCK_CLAIM(p, v) atomic_store_explicit(p, v, memory_order_relaxed)
#define SYNC_IMPL_RWLOCK_FREE(p) atomic_store_explicit(p, 0, memory_order_release)
#define SYNC_IMPL_RWLOCK_ORDER() atomic_signal_fence(memory_order_seq_cst)
#endif

/* A read hold through the bias: the lock's address in the thread's own
 * slot, then a look that the bias still stands and no writer holds or
 * waits (acquire: pairs with the write unlock that set it); no shared
 * write. 1: held; 0: take the count path; -1: the library's path (no slot
 * yet; or the slot holds this lock, and the count's limit counts it). */
static inline int sync_impl_rwlock_rdlock_biased(sync_rwlock_t *l)
{
	SYNC_ATOMIC_FIELD(uintptr_t) *slot = sync_impl_rwlock_reader.slot;
	if (__builtin_expect(!slot, 0))
		return -1;
	uintptr_t held = SYNC_IMPL_RWLOCK_SLOT(slot);
	if (__builtin_expect(held != 0, 0)) /* another lock, or none may be had: */
		return held == (uintptr_t)l ? -1 : 0; /* count; nested: see the library */
	SYNC_IMPL_RWLOCK_CLAIM(slot, (uintptr_t)l);
	SYNC_IMPL_RWLOCK_ORDER();
	/* and no writer holds or waits (bits 0-31: writer preference); bit
	 * 63: a bad rdunlock's borrow, which sets bit 61 too */
	if (__builtin_expect((SYNC_IMPL_RWLOCK_LOOK(l) &
			      (SYNC_IMPL_RWLOCK_BIASED | 0x80000000ffffffffull)) ==
				     SYNC_IMPL_RWLOCK_BIASED, 1))
		return 1;
	SYNC_IMPL_RWLOCK_CLAIM(slot, 0); /* a writer revoked it: not ours */
	return 0;
}

/* Takes a read hold through the bias while the lock has it; else by
 * fetch-and-add if no writer holds or waits, or the library undoes the add
 * and waits. A process that uses process-shared locks calls the library
 * instead, which adds only after it has seen the lock open, so that a
 * reader killed while it waits leaves no read count (the add and its undo
 * are a few instructions apart; in a private lock only the whole process
 * dies). Acquire pairs with the write unlock. */
static inline int sync_impl_rwlock_rdlock(sync_rwlock_t *l)
{
	if (!l || __builtin_expect(__atomic_load_n(&sync_impl_rwlock_pshared_seen,
						   __ATOMIC_RELAXED), 0))
		return sync_rwlock_rdlock(l);
	if (__builtin_expect(!!(SYNC_IMPL_RWLOCK_PEEK(l) & SYNC_IMPL_RWLOCK_BIASED), 1)) {
		int biased = sync_impl_rwlock_rdlock_biased(l);
		if (biased)
			return biased > 0 ? 0 : sync_rwlock_rdlock(l);
	}
	uint64_t s = SYNC_IMPL_RWLOCK_ADD(l, SYNC_IMPL_RWLOCK_READER_ONE);
	if (__builtin_expect(!(s & 0xffffffffull) &&
			     ((s & SYNC_IMPL_RWLOCK_COUNT) >> 32) < SYNC_RWLOCK_READERS_MAX, 1))
		return 0; /* no writer holds or waits, and the count had room */
	return sync_impl_rwlock_rdlock_undo(l);
}

/* Drops a read hold: the thread's slot if it names the lock (release:
 * pairs with the acquire of a writer that waits for it); else by
 * fetch-and-sub, after which the library wakes the waiting writers if it
 * was the last reader (by the futex's address alone: the lock may be gone
 * by then), and undoes the drop if no read hold was held (EPERM). Release
 * pairs with the next writer's acquire. */
static inline int sync_impl_rwlock_rdunlock(sync_rwlock_t *l)
{
	if (!l || __builtin_expect(__atomic_load_n(&sync_impl_rwlock_pshared_seen,
						   __ATOMIC_RELAXED), 0))
		return sync_rwlock_rdunlock(l);
	SYNC_ATOMIC_FIELD(uintptr_t) *slot = sync_impl_rwlock_reader.slot;
	if (__builtin_expect(slot && SYNC_IMPL_RWLOCK_SLOT(slot) == (uintptr_t)l, 1)) {
		SYNC_IMPL_RWLOCK_FREE(slot);
		return 0;
	}
	uint64_t s = SYNC_IMPL_RWLOCK_SUB(l, SYNC_IMPL_RWLOCK_READER_ONE);
	if (__builtin_expect(!(s & 0xfffffffeull) && (s & SYNC_IMPL_RWLOCK_COUNT), 1))
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
