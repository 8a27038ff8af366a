/* Reader-writer lock: one 64-bit word counts read holds, the write hold and
 * waiting writers, so every decision reads one atomic word (the counter
 * layout of glibc's 2017 rwlock and of Linux's rwsem, simplified); readers
 * and writers sleep on separate futex sequence words. Writer preference as
 * in Courtois, Heymans and Parnas, "Concurrent control with readers and
 * writers" (CACM 1971), problem 2: once a writer waits, new readers wait. */
#define SYNC_NO_INLINE 1 /* this file defines what the inline paths call */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sync/rwlock.h>

#include "backoff.h"
#include "futex.h"
#include "thread.h"
#include "timeout.h"

/* Read holds sit in the high half, so that a read-unlock of an unheld lock
 * borrows past the top of the word and leaves the other fields alone. */
#define WRITER        1ull                   /* write hold */
#define WWAITER_ONE   2ull                   /* writers waiting (readers wait too) */
#define WWAITERS_MASK 0xfffffffeull
#define READERS_SHIFT 32
#define READER_ONE    (1ull << READERS_SHIFT) /* read holds (at most READERS_MAX) */
#define READERS_MASK  (~0ull << READERS_SHIFT)
/* A count this high is not real: an rdunlock of an unheld lock wrapped it. */
#define READERS_WRAPPED 0x80000000u

#define RWLOCK_FLAGS (SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER)

/* Bits of `sleeping`: set by a thread before it sleeps, cleared by the
 * thread that wakes. A woken thread may take a while to run: the flag,
 * unlike a count of sleepers, keeps every unlock in that time from making
 * a useless system call. */
#define READERS_SLEEP 1u
#define WRITERS_SLEEP 2u

static uint32_t readers_of(uint64_t s)
{
	return (uint32_t)(s >> READERS_SHIFT);
}

static uint64_t wwaiters_of(uint64_t s)
{
	return (s & WWAITERS_MASK) >> 1;
}

static bool is_pshared(const sync_rwlock_t *l)
{
	return l->flags & SYNC_PSHARED;
}

static bool readers_blocked(const sync_rwlock_t *l, uint64_t s)
{
	if (s & WRITER)
		return true;
	return wwaiters_of(s) && !(l->flags & SYNC_RWLOCK_PREFER_READER);
}

static bool caller_writes(sync_rwlock_t *l, uint64_t s)
{
	/* relaxed: equals our id only if we stored it, in program order */
	return (s & WRITER) &&
	       atomic_load_explicit(&l->writer, memory_order_relaxed) == thread_tid();
}

static void note_writer(sync_rwlock_t *l, uint32_t tid)
{
	/* relaxed: read back only by this thread (caller_writes) */
	atomic_store_explicit(&l->writer, tid, memory_order_relaxed);
}

/* Clears a sleeping bit; true if it was set. The seq_cst load pairs with
 * the setting of the bit in read_sleep / write_sleep_once, after the
 * caller's change of state (store-buffering: either the sleeper sees the
 * new state, or we see its bit). */
static bool take_sleeping(sync_rwlock_t *l, uint32_t bit)
{
	if (!(atomic_load(&l->sleeping) & bit))
		return false;
	return atomic_fetch_and(&l->sleeping, ~bit) & bit;
}

/* If sleepers of one kind announced themselves (bit), bumps their futex
 * sequence word and wakes n of them. The seq_cst increment pairs with the
 * sleepers' acquire load of the word (write_sleep_once, read_sleep). */
static void wake_sleepers(sync_rwlock_t *l, uint32_t bit, _Atomic uint32_t *seq, int n)
{
	if (!take_sleeping(l, bit))
		return;
	atomic_fetch_add(seq, 1);
	futex_wake(seq, n, FUTEX_BITSET_MATCH_ANY, is_pshared(l));
}

/* Called after a change of state that may let a waiting writer in. Wakes
 * one; it sets WRITERS_SLEEP again, since others may still sleep. */
static void wake_writer(sync_rwlock_t *l)
{
	wake_sleepers(l, WRITERS_SLEEP, &l->wseq, 1);
}

/* Called after a change of state that may let readers in: wakes them all,
 * since they can all hold the lock together. */
static void wake_readers(sync_rwlock_t *l)
{
	wake_sleepers(l, READERS_SLEEP, &l->rseq, INT_MAX);
}

/* old: the state just before a read hold went away. */
static void after_reader_left(sync_rwlock_t *l, uint64_t old)
{
	if (readers_of(old) == 1 && wwaiters_of(old) && !(old & WRITER)) {
		/* The drop of the hold was a release only. A seq_cst read-modify-
		 * write of the state orders it before wake_writer's look at the
		 * sleeping bit (store-buffering with write_sleep_once). */
		atomic_fetch_add(&l->state, 0);
		wake_writer(l);
	}
}

/* ---- readers ------------------------------------------------------------ */

/* One read hold by CAS; *s is the state as last seen. The acquire pairs with
 * the release of wrunlock. Returns 0, EBUSY (must wait) or EAGAIN. */
static int read_try(sync_rwlock_t *l, uint64_t *s)
{
	for (;;) {
		if (readers_blocked(l, *s))
			return EBUSY;
		if (readers_of(*s) >= READERS_WRAPPED)
			return EBUSY; /* wrapped by a bad rdunlock, being undone */
		if (readers_of(*s) >= SYNC_RWLOCK_READERS_MAX)
			return EAGAIN;
		if (atomic_compare_exchange_weak_explicit(&l->state, s, *s + READER_ONE,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 0;
	}
}

static int read_sleep(sync_rwlock_t *l, const struct timespec *abstime)
{
	int slept = 0;
	for (;;) {
		atomic_fetch_add(&l->rsleepers, 1); /* for destroy's EBUSY */
		/* seq before the bit: see write_sleep_once */
		uint32_t seq = atomic_load(&l->rseq);
		atomic_fetch_or(&l->sleeping, READERS_SLEEP); /* see take_sleeping */
		uint64_t s = atomic_load(&l->state);
		int r = read_try(l, &s);
		if (r != EBUSY || slept == ETIMEDOUT) {
			atomic_fetch_sub(&l->rsleepers, 1);
			return r == EBUSY ? ETIMEDOUT : r;
		}
		slept = timeout_before_epoch(abstime)
				? ETIMEDOUT
				: futex_wait(&l->rseq, seq, abstime,
					     FUTEX_BITSET_MATCH_ANY, is_pshared(l));
		atomic_fetch_sub(&l->rsleepers, 1);
	}
}

static int read_slow(sync_rwlock_t *l, const struct timespec *abstime)
{
	/* relaxed: read_try's CAS carries the acquire */
	uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (caller_writes(l, s))
		return EDEADLK;
	struct spin_poll poll = SPIN_POLL_INIT;
	for (;;) {
		int r = read_try(l, &s);
		if (r != EBUSY)
			return r;
		/* spin only behind a writer that holds the lock (it runs); one
		 * that waits sleeps, and spinning would take the CPU it needs */
		if (!(s & WRITER) || !spin_poll(&poll, SPIN_POLL_PAUSES))
			return read_sleep(l, abstime);
		/* relaxed: as above */
		s = atomic_load_explicit(&l->state, memory_order_relaxed);
	}
}

/* The fetch-and-add of the fast path found a writer holding or waiting,
 * or the count full: undo it, then wait. */
static __attribute__((noinline)) int
read_undo_and_wait(sync_rwlock_t *l, const struct timespec *abstime)
{
	/* relaxed: we held nothing; the wake-up is ordered through wseq */
	uint64_t s = atomic_fetch_sub_explicit(&l->state, READER_ONE,
					       memory_order_relaxed);
	after_reader_left(l, s);
	return read_slow(l, abstime);
}

int sync_impl_rwlock_rdlock_undo(sync_rwlock_t *l)
{
	return read_undo_and_wait(l, NULL);
}

/* Fast path: one fetch-and-add, undone if a writer holds or waits. */
static inline int read_acquire(sync_rwlock_t *l, const struct timespec *abstime)
{
	/* acquire: pairs with the release of wrunlock */
	uint64_t s = atomic_fetch_add_explicit(&l->state, READER_ONE,
					       memory_order_acquire);
	if (!readers_blocked(l, s) && readers_of(s) < SYNC_RWLOCK_READERS_MAX)
		return 0;
	return read_undo_and_wait(l, abstime);
}

int sync_rwlock_rdlock(sync_rwlock_t *l)
{
	return l ? read_acquire(l, NULL) : EINVAL;
}

int sync_rwlock_timedrdlock(sync_rwlock_t *l, const struct timespec *abstime)
{
	if (!l || !timeout_valid(abstime))
		return EINVAL;
	return read_acquire(l, abstime);
}

int sync_rwlock_tryrdlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	/* relaxed: read_try's CAS carries the acquire */
	uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	return read_try(l, &s);
}

/* s: the state before the fetch-and-sub that dropped a read hold. If the
 * count was 0, none was held: the count wrapped to 2^32 - 1 in the high
 * half (the other fields are below it, untouched) and is put back. While it
 * is wrapped, readers and writers wait as for a full or held lock, so the
 * undo wakes them. */
int sync_impl_rwlock_rdunlock_slow(sync_rwlock_t *l, uint64_t s)
{
	if (readers_of(s)) {
		after_reader_left(l, s);
		return 0;
	}
	/* seq_cst: store-buffering pair with read_sleep, see wake_readers */
	s = atomic_fetch_add(&l->state, READER_ONE) + READER_ONE;
	if (!readers_of(s) && wwaiters_of(s) && !(s & WRITER))
		wake_writer(l);
	wake_readers(l);
	return EPERM;
}

int sync_rwlock_rdunlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	/* release: pairs with the acquire of the next writer */
	uint64_t s = atomic_fetch_sub_explicit(&l->state, READER_ONE,
					       memory_order_release);
	return sync_impl_rwlock_rdunlock_slow(l, s);
}

/* ---- writers ------------------------------------------------------------ */

/* Takes the write hold if nobody holds the lock, dropping `unregister` from
 * the waiting writers in the same CAS. Acquire pairs with both unlocks. */
static bool write_try(sync_rwlock_t *l, uint64_t *s, uint64_t unregister)
{
	while (!(*s & (WRITER | READERS_MASK))) {
		if (atomic_compare_exchange_weak_explicit(&l->state, s,
							  (*s - unregister) | WRITER,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

/* A writer that stops waiting may be what held readers off, or may have
 * swallowed the wake-up meant for the next writer: pass both on. */
static void writer_give_up(sync_rwlock_t *l)
{
	/* seq_cst: store-buffering pair with read_sleep, see wake_readers */
	uint64_t s = atomic_fetch_sub(&l->state, WWAITER_ONE) - WWAITER_ONE;
	if (s & WRITER)
		return;
	if (wwaiters_of(s) && !readers_of(s))
		wake_writer(l);
	if (!wwaiters_of(s))
		wake_readers(l);
}

/* One futex sleep while the lock stays busy. A woken writer marks writers
 * as sleeping again: its waker cleared the bit, and others may sleep. */
static int write_sleep_once(sync_rwlock_t *l, const struct timespec *abstime)
{
	/* The sequence word is read before the bit is set: a waker that clears
	 * our bit (after we set it) bumps the word after, so our futex wait
	 * fails or is woken. Read after the bit, the bump could come first, the
	 * wake-up go to nobody, and we would sleep with the bit cleared. The
	 * acquire pairs with wake_writer's increment. */
	uint32_t seq = atomic_load_explicit(&l->wseq, memory_order_acquire);
	atomic_fetch_or(&l->sleeping, WRITERS_SLEEP); /* see take_sleeping */
	if (!(atomic_load(&l->state) & (WRITER | READERS_MASK)))
		return EAGAIN;
	if (timeout_before_epoch(abstime))
		return ETIMEDOUT;
	int r = futex_wait(&l->wseq, seq, abstime, FUTEX_BITSET_MATCH_ANY,
			   is_pshared(l));
	if (r == 0)
		atomic_fetch_or(&l->sleeping, WRITERS_SLEEP);
	return r;
}

/* Registers as a waiting writer at once (in the default mode new readers
 * now wait, so the readers inside drain) and sleeps until the lock is free.
 * A writer does not spin: measured with 8 threads on 2 CPUs, 90% reads, a
 * spinning writer mostly burns the CPU that the readers it waits for need
 * (bench/rwlock.c; readers, whose wait is one short write section, do
 * spin). */
static int write_slow(sync_rwlock_t *l, uint64_t s, const struct timespec *abstime)
{
	if (caller_writes(l, s))
		return EDEADLK;
	s = atomic_fetch_add(&l->state, WWAITER_ONE) + WWAITER_ONE;
	int slept = 0;
	for (;;) {
		if (write_try(l, &s, WWAITER_ONE))
			return 0;
		if (slept == ETIMEDOUT) {
			writer_give_up(l);
			return ETIMEDOUT;
		}
		slept = write_sleep_once(l, abstime);
		/* relaxed: write_try's CAS carries the acquire */
		s = atomic_load_explicit(&l->state, memory_order_relaxed);
	}
}

static int write_acquire(sync_rwlock_t *l, const struct timespec *abstime)
{
	uint64_t s = 0;
	int r = 0;
	if (!atomic_compare_exchange_strong_explicit(
		    &l->state, &s, WRITER,
		    memory_order_acquire, /* pairs with both unlocks */
		    memory_order_relaxed) &&
	    !write_try(l, &s, 0))
		r = write_slow(l, s, abstime);
	if (r == 0)
		note_writer(l, thread_tid());
	return r;
}

int sync_rwlock_wrlock(sync_rwlock_t *l)
{
	return l ? write_acquire(l, NULL) : EINVAL;
}

int sync_rwlock_timedwrlock(sync_rwlock_t *l, const struct timespec *abstime)
{
	if (!l || !timeout_valid(abstime))
		return EINVAL;
	return write_acquire(l, abstime);
}

int sync_rwlock_trywrlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	/* relaxed: write_try's CAS carries the acquire */
	uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (!write_try(l, &s, 0))
		return EBUSY;
	note_writer(l, thread_tid());
	return 0;
}

/* Default: the next writer goes first and readers keep waiting; readers
 * are woken once no writer waits. PREFER_READER wakes both. */
int sync_rwlock_wrunlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	/* relaxed: only the holder's own writes make this true */
	uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (!caller_writes(l, s))
		return EPERM;
	note_writer(l, 0);
	/* seq_cst: a release, and a store-buffering pair with read_sleep */
	s = atomic_fetch_sub(&l->state, WRITER) - WRITER;
	if (wwaiters_of(s)) {
		wake_writer(l);
		if (!(l->flags & SYNC_RWLOCK_PREFER_READER))
			return 0;
	}
	wake_readers(l);
	return 0;
}

int sync_rwlock_init(sync_rwlock_t *l, int flags)
{
	if (!l || (flags & ~RWLOCK_FLAGS))
		return EINVAL;
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&l->state, 0, memory_order_relaxed);
	atomic_store_explicit(&l->writer, 0, memory_order_relaxed);
	atomic_store_explicit(&l->rseq, 0, memory_order_relaxed);
	atomic_store_explicit(&l->wseq, 0, memory_order_relaxed);
	atomic_store_explicit(&l->rsleepers, 0, memory_order_relaxed);
	l->flags = (uint32_t)flags;
	atomic_store_explicit(&l->sleeping, 0, memory_order_relaxed);
	return 0;
}

int sync_rwlock_destroy(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	/* a snapshot; destroying while others still use it is misuse */
	if (atomic_load(&l->state) || atomic_load(&l->rsleepers))
		return EBUSY;
	return 0;
}
