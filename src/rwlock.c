/* Reader-writer lock: one 64-bit word holds the read holds, the write hold,
 * the waiting writers and a "readers asleep" bit, and its two halves are the
 * futexes the waiters sleep on (the counter layout of glibc's 2017 rwlock and
 * of Linux's rwsem, simplified). Writer preference as in Courtois, Heymans
 * and Parnas, "Concurrent control with readers and writers" (CACM 1971),
 * problem 2: once a writer waits, new readers wait. Readers spin briefly
 * behind a write holder, but not on the CPU it took the lock on (the `spin`
 * word, see spin_cpu_note in backoff.h): there they yield it.
 *
 * The state word (<sync/rwlock.h>'s inline paths take the slow path for any
 * bit of the low half):
 *   bit 0      WRITER: the write hold. Set by the CAS that takes it, cleared
 *              by wrunlock's release.
 *   bit 1      RSLEEP: readers may sleep on the low half. Set by a blocked
 *              reader (by CAS, while blocked) before it sleeps; cleared, and
 *              the readers woken, by every CAS that unblocks readers:
 *              wrunlock, a writer giving up, a drop of stale registrations,
 *              the undo of an rdunlock of an unheld lock. (wrunlock's plain
 *              release wakes them for a flag it finds in its result and
 *              leaves it: the next reader to get in clears it.)
 *   bit 2      WSLEEP: writers may sleep on the low half. Set by a waiting
 *              writer (by CAS, while a writer holds the lock) before it
 *              sleeps there; cleared by wrunlock's releasing CAS, which then
 *              wakes one (all, for a shared lock; a wrunlock that saw no
 *              flag releases by fetch-and-sub and wakes, by address, for a
 *              flag set meanwhile, leaving it set), and by the CAS that
 *              leaves no writer registered. The writer that takes the lock
 *              sets it again if others are registered, since they may
 *              sleep. So a write unlock makes no system call while woken
 *              writers wait for a CPU (as the old separate flag word did,
 *              but decided by the releasing operation itself).
 *   bits 3-31  waiting writers ("registrations"). A writer adds itself
 *              before it sleeps and removes itself in the CAS that takes the
 *              lock, or when it gives up. Readers (default mode) wait while
 *              this is not 0; writers are not held off by it.
 *   bits 32-60 read holds. The fast path adds one by fetch-and-add and
 *              undoes it if a writer holds or waits. A process that has met
 *              a process-shared lock (sync_impl_rwlock_pshared_seen) adds
 *              instead only when it has just seen the lock open to readers
 *              (read_acquire_looking): a reader killed between an add and
 *              its undo would leave a read count behind for good. (The look
 *              costs a second trip of the cache line when readers contend,
 *              so private-only processes, whose threads cannot vanish one
 *              by one, do without it.)
 *   bit 61     BIASED: readers may hold the lock through their slots
 *              (rwlock_bias.c), not counted here. Set at init and by the
 *              releasing operation of a write unlock (in the same RMW as
 *              the release, never after it), in private locks of a process
 *              where bias_usable(), while no writer is registered and the
 *              lock's inhibit time (`heartbeat`, unused by private locks)
 *              has passed; cleared by a writer that holds the write hold
 *              (bias_revoke), which then waits for the slots to let go.
 *   bit 62     HSLEEP: writers may sleep on the high half, behind readers.
 *              Set by such a writer (by CAS, while readers hold the lock)
 *              before it sleeps; cleared by the CAS that takes the write
 *              hold (nobody can sleep behind readers then: whoever took the
 *              count to 0 woke them, see below), by a blocked reader's undo
 *              that takes the count to 0 (it wakes them), and with the last
 *              registration. It is in the high half so that its clearing
 *              changes the word those writers compare: the count can come
 *              back, by the add and undo of blocked readers, to the value a
 *              writer compared before a drop to 0 whose wake-up came too
 *              early; the next drop to 0 then still sees HSLEEP and wakes.
 *   bit 63     set only while an rdunlock of an unheld lock has wrapped the
 *              count (the borrow), undone at once.
 * Readers sleep on the low half (futex bitset FUTEX_READERS). A writer
 * sleeps on the low half behind a write hold (FUTEX_WRITERS), on the high
 * half behind read holds, where whoever takes the count to 0 with HSLEEP
 * set wakes all of them. The last reader does so after its release, when
 * the flags may no longer be read: see wake_writers_high_released.
 *
 * Self-synchronized destruction: wrunlock reads the flags and the process
 * token before its releasing CAS and after it makes only futex calls by
 * address; rdunlock's release is the inline fetch-and-sub, after which the
 * slow path only calls futex_wake on the high half. Nothing else releases.
 *
 * What a vanished waiter (killed process; another thread of the parent, in a
 * fork child) leaves behind: a reader, at most RSLEEP (one useless wake-up),
 * or, only if it dies in the few instructions between an add that a writer
 * overtook and its undo, a read count (as a reader that dies holding).
 * A writer, its registration, which would keep readers out for good. So a
 * registration is dropped when it is a phantom or looks dead:
 *   - In a fork child the parent's other threads are gone: a private lock
 *     whose registrations were made under another process's token (`wtoken`,
 *     stored by each registering writer before its add) holds only phantoms;
 *     wrunlock and readers drop them at once (a CAS against the state whose
 *     registrations they checked: no live one goes with them). In a private
 *     lock nothing else can vanish while it waits.
 *   - In a process-shared lock, a waiting writer is re-asserted: it wakes at
 *     least every FUTEX_PSHARED_RECHECK_NS (futex_wait does so for shared
 *     sleeps) and bumps `heartbeat` whenever it wakes. While the lock is not
 *     write-held, a live registered writer is either awake (the release that
 *     opened the lock to it woke it) or asleep behind read holds and beating.
 *     A reader kept out by registrations alone that sees neither the state
 *     nor the heartbeat change for STALE_NS takes them all for dead and drops
 *     them (drop_registrations). A live writer denied the CPU that long loses
 *     its place once (it registers again); nothing else breaks.
 *   - Such a drop bumps `drops` before its CAS. A writer reads the state,
 *     then `drops`, and acts as registered only if `drops` is unchanged since
 *     it registered, with a CAS against that state: if the drop's CAS came
 *     before the state it read, it sees the bump (seq_cst); if after, its own
 *     CAS fails. A drop whose CAS fails can make a writer register twice: the
 *     extra registration is dead and goes as above. Removal never takes the
 *     count below 0.
 * A writer that the kernel woke and that dies before it runs would swallow
 * the wake-up: wrunlock of a process-shared lock and the last reader wake
 * every waiting writer, and sleepers look again every 10 ms anyway. */
#define SYNC_NO_INLINE 1 /* this file defines what the inline paths call */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sync/rwlock.h>

#include "annotate.h"
#include "backoff.h"
#include "futex.h"
#include "rwlock_bias.h"
#include "test_hook.h"
#include "thread.h"
#include "timeout.h"

/* Read holds sit in the high half, so that a read-unlock of an unheld lock
 * borrows past the top of the word and leaves the other fields alone. */
#define WRITER        1ull                   /* write hold */
#define RSLEEP        2ull                   /* readers may sleep */
#define WSLEEP        4ull                   /* writers may sleep */
#define WWAITER_ONE   8ull                   /* writers waiting (readers wait too) */
#define WWAITERS_MASK 0xfffffff8ull
#define READERS_SHIFT 32
#define READER_ONE    (1ull << READERS_SHIFT) /* read holds (at most READERS_MAX) */
#define BIASED        (1ull << 61)            /* readers may read through slots */
#define HSLEEP        (1ull << 62)            /* writers sleep behind readers */
#define READERS_MASK  ((~0ull << READERS_SHIFT) & ~(HSLEEP | BIASED))
/* Bit 63 is set only by an rdunlock of an unheld lock, whose borrow wrapped
 * the high half (and is undone at once). */
#define WRAPPED       (1ull << 63)

#define RWLOCK_FLAGS (SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER)

/* Futex bitsets: readers and writers share the low half. */
#define FUTEX_READERS 1u
#define FUTEX_WRITERS 2u

/* Registrations that keep readers out, with neither the state nor the
 * writers' heartbeat moving for this long, are taken for dead: five of the
 * 10 ms beats of a live sleeping writer. */
#define STALE_NS 50000000ull

static uint32_t readers_of(uint64_t s)
{
	return (uint32_t)((s & READERS_MASK & ~WRAPPED) >> READERS_SHIFT);
}

static uint32_t wwaiters_of(uint64_t s)
{
	return (uint32_t)((s & WWAITERS_MASK) >> 3);
}

static uint32_t low_of(uint64_t s)
{
	return (uint32_t)s;
}

static bool is_pshared(const sync_rwlock_t *l)
{
	return l->flags & SYNC_PSHARED;
}

static bool prefers_readers(const sync_rwlock_t *l)
{
	return l->flags & SYNC_RWLOCK_PREFER_READER;
}

/* The hooks' flags for l (the checker's relock and order rules). */
static unsigned ann_kind(const sync_rwlock_t *l)
{
	return ANN_RWLOCK | (prefers_readers(l) ? ANN_RDPREF : 0);
}

/* Also set from the start by ann_detect (annotate.c) in a process with a
 * race detector, so that every read lock and unlock, the inline ones too,
 * comes here, where it is annotated. */
int sync_impl_rwlock_pshared_seen;

/* Notes that this process uses process-shared locks (see read_acquire).
 * relaxed: a hint that only selects between two correct fast paths. */
static void note_pshared(void)
{
	if (!__atomic_load_n(&sync_impl_rwlock_pshared_seen, __ATOMIC_RELAXED))
		__atomic_store_n(&sync_impl_rwlock_pshared_seen, 1, __ATOMIC_RELAXED);
}

/* The low (flags, writers) or high (read holds) 32-bit half of the state,
 * as a futex word. Only its address is used. */
static _Atomic uint32_t *state_half(sync_rwlock_t *l, bool high)
{
	return futex_half(&l->state, high);
}

static bool readers_blocked(const sync_rwlock_t *l, uint64_t s)
{
	if (s & WRITER)
		return true;
	return wwaiters_of(s) && !prefers_readers(l);
}

static bool caller_writes(sync_rwlock_t *l, uint64_t s)
{
	if (!(s & WRITER))
		return false;
	/* relaxed: equals our id only if we stored it, in program order */
	uint32_t writer = atomic_load_explicit(&l->writer, memory_order_relaxed);
	if (writer == thread_tid())
		return true;
	/* in a fork child, its thread's write holds from before the fork (a
	 * shared lock's writer of that id is the parent's thread, alive) */
	return !is_pshared(l) && thread_held_before_fork(writer);
}

static void note_writer(sync_rwlock_t *l, uint32_t tid)
{
	/* relaxed: read back only by this thread (caller_writes) */
	atomic_store_explicit(&l->writer, tid, memory_order_relaxed);
}

/* ---- waking, by address only -------------------------------------------- */

static void wake_readers(_Atomic uint32_t *low, bool pshared)
{
	futex_wake(low, INT_MAX, FUTEX_READERS, pshared);
}

/* Writers asleep behind a write hold. */
static void wake_writers_low(_Atomic uint32_t *low, int n, bool pshared)
{
	futex_wake(low, n, FUTEX_WRITERS, pshared);
}

/* Writers asleep behind read holds, woken by a caller that may still read
 * the flags (a waiter). */
static void wake_writers_high(sync_rwlock_t *l)
{
	futex_wake(state_half(l, true), INT_MAX, FUTEX_WRITERS, is_pshared(l));
}

/* The same from rdunlock, after its release: the flags may not be read. A
 * process that never met a process-shared lock has only private ones; one
 * that did wakes with both kinds of futex operation. (A process that only
 * takes read locks, never waiting, of a shared lock it did not initialise
 * wakes with the private one: its writers find out at their 10 ms look.) */
static void wake_writers_high_released(_Atomic uint32_t *high)
{
	/* relaxed: see note_pshared */
	bool maybe_shared = __atomic_load_n(&sync_impl_rwlock_pshared_seen,
					    __ATOMIC_RELAXED);
	futex_wake(high, INT_MAX, FUTEX_WRITERS, false);
	if (maybe_shared)
		futex_wake(high, INT_MAX, FUTEX_WRITERS, true);
}

/* A sleep on the high half. A process-shared lock's sleeper looks again
 * every 10 ms (futex_wait). */
static int sleep_high(sync_rwlock_t *l, uint32_t expected,
		      const struct timespec *abstime)
{
	return futex_wait(state_half(l, true), expected, abstime, FUTEX_WRITERS,
			  is_pshared(l));
}

/* ---- stale registrations ------------------------------------------------- */

/* s (read with acquire) counts only registrations made in another process:
 * a private lock in a fork child. A writer of this process stores our token
 * before its registering add (a release), so a state that counts it shows
 * the token here. relaxed: ordered by that acquire. */
static bool only_phantoms(sync_rwlock_t *l, uint64_t s)
{
	if (!wwaiters_of(s) || is_pshared(l))
		return false;
	return atomic_load_explicit(&l->wtoken, memory_order_relaxed) !=
	       thread_process_token();
}

/* Drops every registration counted in s, if the state is still s, and wakes
 * everyone: readers may go in, and live writers among the dropped must see
 * it and register again. `live` says whether any of them may be live (a
 * stale drop): then `drops` is bumped first; a phantom drop takes none. */
static bool drop_registrations(sync_rwlock_t *l, uint64_t s, bool live)
{
	uint64_t n = s & ~(WWAITERS_MASK | WSLEEP | HSLEEP);
	if (!(n & WRITER))
		n &= ~RSLEEP;
	if (atomic_load(&l->state) != s)
		return false; /* no bump for a drop that would fail */
	/* seq_cst, before the CAS: see the top (writers read state, then drops) */
	if (live)
		atomic_fetch_add(&l->drops, 1);
	if (!atomic_compare_exchange_strong(&l->state, &s, n))
		return false;
	bool pshared = is_pshared(l);
	if ((s & RSLEEP) && !(n & RSLEEP))
		wake_readers(state_half(l, false), pshared);
	wake_writers_low(state_half(l, false), INT_MAX, pshared);
	wake_writers_high(l);
	return true;
}

/* A reader's view of registrations that keep it out: the state (less
 * RSLEEP) and the heartbeat, and since when they have not moved. */
struct stale_watch {
	uint64_t state;
	uint32_t heartbeat;
	bool armed;
	uint64_t since; /* ns */
};

/* True once s, held off by registrations alone, has stood still (heartbeat
 * included) for STALE_NS of this reader's looks. */
static bool looks_stale(sync_rwlock_t *l, uint64_t s, struct stale_watch *w)
{
	/* relaxed: compared for change only; the drop's CAS decides */
	uint32_t beat = atomic_load_explicit(&l->heartbeat, memory_order_relaxed);
	uint64_t now = timeout_now_ns();
	s &= ~RSLEEP; /* our own sleeping is no sign of life */
	if (!w->armed || w->state != s || w->heartbeat != beat) {
		*w = (struct stale_watch){ s, beat, true, now };
		return false;
	}
	return now - w->since >= STALE_NS;
}

/* Readers are kept out by registrations alone (default mode, no write hold);
 * drops them if they are phantoms (private) or look dead (shared). True if
 * it dropped. */
static bool drop_if_dead(sync_rwlock_t *l, uint64_t s, struct stale_watch *w)
{
	if ((s & WRITER) || !wwaiters_of(s) || prefers_readers(l))
		return false;
	if (only_phantoms(l, s))
		return drop_registrations(l, s, false);
	if (is_pshared(l) && w && looks_stale(l, s, w))
		return drop_registrations(l, s, true);
	return false;
}

/* ---- the reader bias (rwlock_bias.c) ------------------------------------- */

/* After a revocation the lock stays unbiased for nine times what it took,
 * and at least this long: BRAVO's bound, writers lose at most a tenth of
 * their time to revocations (one membarrier and a look at the slots). */
#define INHIBIT_MIN_NS 10000000ull

static int write_release_with(sync_rwlock_t *l, uint64_t s, uint64_t bias);

/* Whether s lets readers hold through their slots: biased, and nothing in
 * the low half (no writer holds or waits: writer preference holds for the
 * slots too). A bad rdunlock's borrow that wrapped the count sets BIASED
 * too, and WRAPPED with it. */
static bool bias_stands(uint64_t s)
{
	return (s & (BIASED | WRAPPED | 0xffffffffull)) == BIASED;
}

/* A read hold through the calling thread's slot, as <sync/rwlock.h>'s
 * inline path takes it (the first such read of a thread comes here for its
 * slot); false: take a counted one. */
static bool read_biased(sync_rwlock_t *l)
{
	/* relaxed: a hint; the acquire below decides */
	if (!(atomic_load_explicit(&l->state, memory_order_relaxed) & BIASED))
		return false;
	_Atomic uintptr_t *slot = bias_slot();
	/* relaxed: only this thread writes its slot */
	if (atomic_load_explicit(slot, memory_order_relaxed))
		return false; /* it names another lock, or is the busy one */
	/* relaxed and a compiler barrier: the revoking writer's membarrier
	 * orders the store before the load (see rwlock_bias.c) */
	atomic_store_explicit(slot, (uintptr_t)l, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	/* acquire: pairs with the write unlock that set BIASED */
	if (bias_stands(atomic_load_explicit(&l->state, memory_order_acquire)))
		return true;
	atomic_store_explicit(slot, 0, memory_order_relaxed); /* never held */
	return false;
}

/* Whether the calling thread reads l through its slot. */
static bool caller_reads_biased(const sync_rwlock_t *l)
{
	_Atomic uintptr_t *slot = sync_impl_rwlock_reader.slot;
	/* relaxed: only this thread writes its slot */
	return slot && atomic_load_explicit(slot, memory_order_relaxed) == (uintptr_t)l;
}

/* Drops the read hold held through the slot, if that is how it is held. */
static bool read_unbias(sync_rwlock_t *l)
{
	if (!caller_reads_biased(l))
		return false;
	/* release: pairs with the acquire of a writer waiting for the slot */
	atomic_store_explicit(sync_impl_rwlock_reader.slot, 0, memory_order_release);
	return true;
}

/* A nonzero stamp of a monotonic time, in microseconds modulo 2^32. */
static uint32_t inhibit_stamp(uint64_t ns)
{
	return (uint32_t)(ns / 1000) | 1;
}

/* The write holder of l clears BIASED and waits until no slot holds l; if
 * it may not wait that long (try, deadline) it lets go of the write hold
 * and returns EBUSY or ETIMEDOUT. Sets the inhibit time either way. */
static int bias_revoke(sync_rwlock_t *l, bool try, const struct timespec *abstime)
{
	/* relaxed: only the write holder clears BIASED, and none sets it now */
	if (!(atomic_load_explicit(&l->state, memory_order_relaxed) & BIASED))
		return 0;
	uint64_t start = timeout_now_ns();
	/* seq_cst: the writer's store of the pair membarrier orders */
	atomic_fetch_and(&l->state, ~BIASED);
	TEST_HOOK("rwlock_bias:revoked");
	int r = bias_wait_for_readers(l, try, abstime);
	uint64_t now = timeout_now_ns(), hold = (now - start) * 9;
	/* relaxed: read and written by write holders only (see the top) */
	atomic_store_explicit(&l->heartbeat,
			      inhibit_stamp(now + (hold > INHIBIT_MIN_NS ? hold : INHIBIT_MIN_NS)),
			      memory_order_relaxed);
	if (r) /* readers may still be in their slots: the bias stays (model) */
		write_release_with(l, atomic_load(&l->state), BIASED);
	return r;
}

/* Whether l may be biased: private, and preferring writers (a writer of a
 * biased lock holds the write hold while it waits for the readers in
 * slots, which PREFER_READER's readers must be able to pass), in a process
 * where bias_usable(). */
static bool may_bias(const sync_rwlock_t *l)
{
	return !(l->flags & (SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER)) && bias_usable();
}

/* Write unlocks of this thread during inhibit times: one in 16 reads the
 * clock (a clock read costs about as much as a write lock and unlock). */
static THREAD_LOCAL uint32_t inhibited_releases;

/* BIASED if the write unlock of s gives the lock its bias back (in its
 * releasing operation): a lock that may be biased, nobody registered to
 * write next, and the inhibit time passed. */
static uint64_t bias_restored(sync_rwlock_t *l, uint64_t s)
{
	if (wwaiters_of(s) || !may_bias(l))
		return 0;
	/* relaxed: the write holder's own word (see bias_revoke) */
	uint32_t until = atomic_load_explicit(&l->heartbeat, memory_order_relaxed);
	if (until) {
		if (++inhibited_releases % 16 ||
		    (int32_t)(inhibit_stamp(timeout_now_ns()) - until) < 0)
			return 0;
		atomic_store_explicit(&l->heartbeat, 0, memory_order_relaxed);
	}
	return BIASED;
}

/* ---- readers ------------------------------------------------------------ */

/* One read hold by CAS; *s is the state as last seen. The acquire pairs with
 * the release of wrunlock (a failed CAS's too: only_phantoms relies on it).
 * Returns 0, EBUSY (must wait) or EAGAIN. */
static int read_try(sync_rwlock_t *l, uint64_t *s)
{
	for (;;) {
		if (readers_blocked(l, *s))
			return EBUSY;
		if (*s & WRAPPED)
			return EBUSY; /* wrapped by a bad rdunlock, being undone */
		if (readers_of(*s) >= SYNC_RWLOCK_READERS_MAX)
			return EAGAIN;
		/* RSLEEP while readers may go in is stale: whoever let them in
		 * woke the sleepers (release_plain leaves it set) */
		if (atomic_compare_exchange_weak_explicit(&l->state, s,
							  (*s + READER_ONE) & ~RSLEEP,
							  memory_order_acquire,
							  memory_order_acquire))
			return 0;
	}
}

/* Marks readers as asleep (s: the blocked state last seen) and sleeps once
 * (a shared lock's sleeper looks again every 10 ms: see futex_wait). */
static int read_sleep_once(sync_rwlock_t *l, uint64_t s, const struct timespec *abstime)
{
	/* seq_cst: the waker's CAS either comes after this (and sees RSLEEP) or
	 * changes the low half first (and our futex_wait does not sleep) */
	if (!(s & RSLEEP) && !atomic_compare_exchange_strong(&l->state, &s, s | RSLEEP))
		return EAGAIN;
	return futex_wait(state_half(l, false), low_of(s | RSLEEP), abstime,
			  FUTEX_READERS, is_pshared(l));
}

static int read_wait(sync_rwlock_t *l, const struct timespec *abstime)
{
	struct stale_watch watch = { 0 };
	for (;;) {
		uint64_t s = atomic_load(&l->state); /* acquire, for only_phantoms */
		int r = read_try(l, &s);
		if (r != EBUSY)
			return r;
		if (drop_if_dead(l, s, &watch))
			continue;
		if (timeout_passed(abstime))
			return ETIMEDOUT;
		read_sleep_once(l, s, abstime);
	}
}

static __attribute__((noinline)) int read_slow(sync_rwlock_t *l,
					       const struct timespec *abstime)
{
	/* relaxed: read_try's CAS carries the acquire */
	uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (caller_writes(l, s))
		return EDEADLK;
	ann_contended(l, ann_kind(l));
	if (is_pshared(l))
		note_pshared(); /* a process that waits on one it did not init */
	struct spin_poll poll = SPIN_POLL_INIT;
	unsigned yields = 0;
	bool spin = spin_cpu_may_pay(&l->spin);
	for (;;) {
		int r = read_try(l, &s);
		if (r != EBUSY)
			return r;
		/* spin only behind a writer that holds the lock (it runs); one
		 * that waits sleeps, and spinning would take the CPU it needs. A
		 * deadline already past is kept: no spin (timeout_passed). On the
		 * write holder's CPU it cannot run while we spin: yield to it. */
		if (!(s & WRITER) || timeout_passed(abstime) ||
		    (spin ? !spin_poll(&poll, SPIN_POLL_PAUSES) : yields++ == SPIN_YIELDS))
			return read_wait(l, abstime);
		if (!spin) {
			TEST_HOOK("rwlock_spin:yield");
			sched_yield();
		} else if (poll.spent == 1) {
			TEST_HOOK("rwlock_spin:start"); /* the first poll */
		}
		/* relaxed: as above */
		s = atomic_load_explicit(&l->state, memory_order_relaxed);
	}
}

/* The fast path's fetch-and-add found a writer holding or waiting (one
 * that came in after its look; binaries built against an older header add
 * without looking), or the count full: undo the add, then wait. If ours was
 * the last read count, a writer may sleep on the high half for it: wake
 * them. */
static __attribute__((noinline)) int
read_undo_and_wait(sync_rwlock_t *l, const struct timespec *abstime)
{
	/* seq_cst: the change of the high half comes before the wake-up */
	uint64_t s = atomic_load(&l->state), n;
	do {
		n = s - READER_ONE;
		if (!readers_of(n))
			n &= ~HSLEEP; /* we wake them: see the top */
	} while (!atomic_compare_exchange_weak(&l->state, &s, n));
	if ((s & HSLEEP) && !(n & HSLEEP))
		wake_writers_high(l);
	return read_slow(l, abstime);
}

int sync_impl_rwlock_rdlock_undo(sync_rwlock_t *l)
{
	return read_undo_and_wait(l, NULL);
}

/* A CAS that guesses the lock free and unread; else, if the state it
 * returned is open to readers, a fetch-and-add, undone only if a writer
 * came in between. A reader adds to the count only when it has just seen
 * the lock open, so one that is killed while it waits leaves no read count
 * behind. Dearer than a lone fetch-and-add when readers contend (the line
 * moves twice), so used where it matters: by processes that use
 * process-shared locks. */
static int read_acquire_looking(sync_rwlock_t *l, const struct timespec *abstime)
{
	uint64_t s = 0;
	/* acquire: pairs with the release of wrunlock */
	if (atomic_compare_exchange_strong_explicit(&l->state, &s, READER_ONE,
						    memory_order_acquire,
						    memory_order_relaxed))
		return 0;
	if (readers_blocked(l, s))
		return read_slow(l, abstime);
	/* acquire: as above */
	s = atomic_fetch_add_explicit(&l->state, READER_ONE, memory_order_acquire);
	if (!readers_blocked(l, s) && readers_of(s) < SYNC_RWLOCK_READERS_MAX)
		return 0;
	return read_undo_and_wait(l, abstime);
}

/* A counted read hold, as the inline path of <sync/rwlock.h> takes it: one
 * fetch-and-add, undone if a writer holds or waits. */
static inline int read_acquire_counted(sync_rwlock_t *l, const struct timespec *abstime)
{
	if (__atomic_load_n(&sync_impl_rwlock_pshared_seen, __ATOMIC_RELAXED))
		return read_acquire_looking(l, abstime);
	/* acquire: pairs with the release of wrunlock */
	uint64_t s = atomic_fetch_add_explicit(&l->state, READER_ONE,
					       memory_order_acquire);
	if (!readers_blocked(l, s) && readers_of(s) < SYNC_RWLOCK_READERS_MAX)
		return 0;
	return read_undo_and_wait(l, abstime);
}

/* r: a counted read hold's result. A thread that also reads l through its
 * slot holds one more than the count says: at SYNC_RWLOCK_READERS_MAX in
 * all it gives the counted one back and answers EAGAIN, as the count would
 * have (<sync/rwlock.h> sends such nested reads here). */
static int read_capped_with_slot(sync_rwlock_t *l, int r)
{
	if (r || !caller_reads_biased(l) ||
	    readers_of(atomic_load(&l->state)) < SYNC_RWLOCK_READERS_MAX)
		return r;
	/* release: as rdunlock's */
	sync_impl_rwlock_rdunlock_slow(l, atomic_fetch_sub_explicit(&l->state, READER_ONE,
								      memory_order_release));
	return EAGAIN;
}

/* Through the slot while the lock is biased, else counted. */
static inline int read_acquire(sync_rwlock_t *l, const struct timespec *abstime)
{
	if (read_biased(l))
		return 0;
	return read_capped_with_slot(l, read_acquire_counted(l, abstime));
}

/* read_acquire() as the race detectors see it (a timed lock as a try). A
 * process with a detector comes here for every read lock, the inline path
 * of <sync/rwlock.h> too (see ann_detect). */
static int read_acquire_annotated(sync_rwlock_t *l, const struct timespec *abstime)
{
	unsigned how = abstime ? ANN_READ | ANN_TRY : ANN_READ;
	ann_lock_pre(l, how | ann_kind(l));
	int r = read_acquire(l, abstime);
	ann_lock_post(l, how | ann_kind(l), r);
	return r;
}

int sync_rwlock_rdlock(sync_rwlock_t *l)
{
	return l ? read_acquire_annotated(l, NULL) : EINVAL;
}

int sync_rwlock_timedrdlock(sync_rwlock_t *l, const struct timespec *abstime)
{
	if (!l || !timeout_valid(abstime))
		return EINVAL;
	return read_acquire_annotated(l, abstime);
}

static int read_try_once(sync_rwlock_t *l)
{
	if (read_biased(l))
		return 0;
	uint64_t s = atomic_load(&l->state); /* acquire, for only_phantoms */
	int r = read_try(l, &s);
	if (r == EBUSY && drop_if_dead(l, s, NULL)) {
		s = atomic_load(&l->state);
		r = read_try(l, &s);
	}
	return read_capped_with_slot(l, r);
}

int sync_rwlock_tryrdlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	ann_lock_pre(l, ANN_READ | ANN_TRY | ann_kind(l));
	int r = read_try_once(l);
	ann_lock_post(l, ANN_READ | ANN_TRY | ann_kind(l), r);
	return r;
}

/* An rdunlock of an unheld lock wrapped the count to 2^32 - 1 in the high
 * half (the other fields are below it, untouched): put it back. While it is
 * wrapped nobody can take the lock, so the flags may still be read; readers
 * and writers that waited meanwhile are woken. */
static int undo_bad_rdunlock(sync_rwlock_t *l)
{
	bool pshared = is_pshared(l);
	uint64_t s = atomic_load(&l->state), n;
	do {
		n = s + READER_ONE; /* clears WRAPPED, and gives back HSLEEP */
		if (!readers_blocked(l, n))
			n &= ~RSLEEP;
		if (!readers_of(n))
			n &= ~HSLEEP;
	} while (!atomic_compare_exchange_weak(&l->state, &s, n));
	if ((s & RSLEEP) && !(n & RSLEEP))
		wake_readers(state_half(l, false), pshared);
	if (((s + READER_ONE) & HSLEEP) && !(n & HSLEEP))
		wake_writers_high(l);
	return EPERM;
}

/* s: the state before the fetch-and-sub that dropped a read hold, which
 * released it: from here on only the futex's address is used. The last
 * reader wakes the writers waiting for it. */
int sync_impl_rwlock_rdunlock_slow(sync_rwlock_t *l, uint64_t s)
{
	if (!readers_of(s))
		return undo_bad_rdunlock(l);
	TEST_HOOK("rwlock_rdunlock:released");
	if (readers_of(s) == 1 && (s & HSLEEP))
		wake_writers_high_released(state_half(l, true));
	return 0;
}

int sync_rwlock_rdunlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	/* before the release: l may go with it */
	ann_unlock_pre(l, ANN_READ | ann_kind(l));
	if (read_unbias(l)) {
		ann_unlock_post(l, ANN_READ);
		return 0;
	}
	/* release: pairs with the acquire of the next writer */
	uint64_t s = atomic_fetch_sub_explicit(&l->state, READER_ONE,
					       memory_order_release);
	int r = sync_impl_rwlock_rdunlock_slow(l, s);
	ann_unlock_post(l, ANN_READ);
	return r;
}

/* ---- writers ------------------------------------------------------------ */

/* Takes the write hold if nobody holds the lock, without a registration.
 * Acquire pairs with both unlocks. */
static bool write_try(sync_rwlock_t *l, uint64_t *s)
{
	while (!(*s & (WRITER | READERS_MASK))) {
		/* no writer can sleep behind readers now: see the top */
		if (atomic_compare_exchange_weak_explicit(&l->state, s,
							  (*s | WRITER) & ~HSLEEP,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

/* A waiting writer's registration: whether it counts, and `drops` when it
 * was made (see the top). */
struct registration {
	bool on;
	uint32_t drops;
};

static void register_writer(sync_rwlock_t *l, struct registration *me)
{
	me->drops = atomic_load(&l->drops); /* seq_cst: before the add */
	if (!is_pshared(l)) /* relaxed: the add below publishes it */
		atomic_store_explicit(&l->wtoken, thread_process_token(),
				      memory_order_relaxed);
	atomic_fetch_add(&l->state, WWAITER_ONE);
	me->on = true;
}

/* Call after reading the state (seq_cst): false if a drop took our
 * registration before that read. */
static bool still_registered(sync_rwlock_t *l, struct registration *me)
{
	if (me->on && atomic_load(&l->drops) != me->drops)
		me->on = false;
	return me->on;
}

/* One CAS from the state s: the write hold, less our registration. */
static bool write_try_registered(sync_rwlock_t *l, uint64_t *s)
{
	if (*s & (WRITER | READERS_MASK))
		return false;
	uint64_t n = (*s | WRITER) & ~HSLEEP; /* see write_try */
	if (wwaiters_of(*s)) /* never below 0, whatever happened */
		n -= WWAITER_ONE;
	/* others registered may sleep, and our waker may have cleared WSLEEP */
	n = wwaiters_of(n) ? n | WSLEEP : n & ~WSLEEP;
	/* seq_cst: a drop between our read of the state and now fails it */
	return atomic_compare_exchange_strong(&l->state, s, n);
}

/* A writer that stops waiting may be what held readers off, or may have
 * swallowed the one wake-up wrunlock gave a private lock: pass both on. */
static void writer_give_up(sync_rwlock_t *l, struct registration *me)
{
	bool pshared = is_pshared(l);
	uint64_t s = atomic_load(&l->state), n;
	do {
		if (!still_registered(l, me) || !wwaiters_of(s))
			return; /* dropped: the dropper woke everyone */
		n = s - WWAITER_ONE;
		/* as on taking it; with nobody registered, nobody sleeps */
		n = wwaiters_of(n) ? n | WSLEEP : n & ~(WSLEEP | HSLEEP);
		if (!readers_blocked(l, n))
			n &= ~RSLEEP;
	} while (!atomic_compare_exchange_weak(&l->state, &s, n));
	if ((s & RSLEEP) && !(n & RSLEEP))
		wake_readers(state_half(l, false), pshared);
	if (!(n & WRITER) && wwaiters_of(n))
		wake_writers_low(state_half(l, false), 1, pshared);
}

/* One sleep while the lock stays as in s: behind a write hold on the low
 * half, behind read holds on the high half (shared: see the top). */
static int write_sleep_once(sync_rwlock_t *l, uint64_t s, const struct timespec *abstime)
{
	if (!(s & WRITER)) {
		/* seq_cst: a drop of the count to 0 either comes after this (and
		 * sees HSLEEP) or changes the high half first */
		if (!(s & HSLEEP) &&
		    !atomic_compare_exchange_strong(&l->state, &s, s | HSLEEP))
			return EAGAIN;
		return sleep_high(l, (uint32_t)((s | HSLEEP) >> READERS_SHIFT), abstime);
	}
	/* seq_cst: wrunlock's releasing CAS either comes after this (and sees
	 * WSLEEP) or changes the low half first */
	if (!(s & WSLEEP) && !atomic_compare_exchange_strong(&l->state, &s, s | WSLEEP))
		return EAGAIN;
	return futex_wait(state_half(l, false), low_of(s | WSLEEP), abstime,
			  FUTEX_WRITERS, is_pshared(l));
}

/* Registers as a waiting writer (in the default mode new readers now wait,
 * so the readers inside drain) and sleeps until the lock is free. A writer
 * does not spin: measured with 8 threads on 2 CPUs, 90% reads, a spinning
 * writer mostly burns the CPU that the readers it waits for need
 * (bench/rwlock.c; readers, whose wait is one short write section, do
 * spin). Each wake-up of a shared lock's writer is a heartbeat (see the
 * top). */
static int write_wait(sync_rwlock_t *l, const struct timespec *abstime)
{
	struct registration me = { false, 0 };
	int slept = 0;
	if (is_pshared(l))
		note_pshared(); /* see wake_writers_high_released */
	for (;;) {
		uint64_t s = atomic_load(&l->state);
		if (still_registered(l, &me) ? write_try_registered(l, &s)
					     : write_try(l, &s))
			return 0;
		if (!(s & (WRITER | READERS_MASK)))
			continue; /* a CAS lost a race: look again */
		if (slept == ETIMEDOUT || (!me.on && timeout_passed(abstime))) {
			writer_give_up(l, &me);
			return ETIMEDOUT;
		}
		if (!me.on) {
			register_writer(l, &me);
			continue;
		}
		slept = write_sleep_once(l, s, abstime);
		if (is_pshared(l)) /* relaxed: a sign of life, compared only */
			atomic_fetch_add_explicit(&l->heartbeat, 1, memory_order_relaxed);
	}
}

static int write_slow(sync_rwlock_t *l, uint64_t s, const struct timespec *abstime)
{
	if (caller_writes(l, s))
		return EDEADLK;
	ann_contended(l, ann_kind(l));
	if (timeout_passed(abstime))
		return ETIMEDOUT; /* the caller just found the lock busy */
	return write_wait(l, abstime);
}

static int write_acquire(sync_rwlock_t *l, const struct timespec *abstime)
{
	uint64_t s = 0;
	int r = 0;
	if (caller_reads_biased(l))
		return EDEADLK; /* it would wait for itself */
	if (!atomic_compare_exchange_strong_explicit(
		    &l->state, &s, WRITER,
		    memory_order_acquire, /* pairs with both unlocks */
		    memory_order_relaxed) &&
	    !write_try(l, &s))
		r = write_slow(l, s, abstime);
	if (r == 0)
		r = bias_revoke(l, false, abstime);
	if (r == 0) {
		note_writer(l, thread_tid());
		spin_cpu_note(&l->spin); /* where readers wait for our release */
	}
	return r;
}

/* write_acquire() as the race detectors see it (a timed lock as a try). */
static int write_acquire_annotated(sync_rwlock_t *l, const struct timespec *abstime)
{
	unsigned how = abstime ? ANN_TRY : ANN_WRITE;
	ann_lock_pre(l, how | ann_kind(l));
	int r = write_acquire(l, abstime);
	ann_lock_post(l, how | ann_kind(l), r);
	return r;
}

int sync_rwlock_wrlock(sync_rwlock_t *l)
{
	return l ? write_acquire_annotated(l, NULL) : EINVAL;
}

int sync_rwlock_timedwrlock(sync_rwlock_t *l, const struct timespec *abstime)
{
	if (!l || !timeout_valid(abstime))
		return EINVAL;
	return write_acquire_annotated(l, abstime);
}

static int write_try_once(sync_rwlock_t *l)
{
	/* relaxed: write_try's CAS carries the acquire */
	uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (!write_try(l, &s) || bias_revoke(l, true, NULL))
		return EBUSY;
	note_writer(l, thread_tid());
	spin_cpu_note(&l->spin);
	return 0;
}

int sync_rwlock_trywrlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	ann_lock_pre(l, ANN_TRY | ann_kind(l));
	int r = write_try_once(l);
	ann_lock_post(l, ANN_TRY | ann_kind(l), r);
	return r;
}

/* The state after wrunlock's release of s: the write hold and WSLEEP gone
 * (the writers are woken), phantom registrations too, and RSLEEP cleared if
 * readers may now go in. */
static uint64_t released(uint64_t s, bool phantoms, bool prefer)
{
	uint64_t n = s & ~(WRITER | WSLEEP); /* sleeping writers are woken */
	if (phantoms)
		n &= ~WWAITERS_MASK;
	if (!wwaiters_of(n) || prefer)
		n &= ~RSLEEP;
	return n;
}

/* wrunlock when nobody was seen asleep: one fetch-and-sub, which (unlike a
 * CAS) readers' adds cannot make fail. Flags set meanwhile are seen in its
 * result: the sleepers are woken by address, the flags stay (a later
 * release, or read_try for a stale RSLEEP, clears them). */
static int release_plain(sync_rwlock_t *l, bool pshared, bool prefer, uint64_t bias)
{
	_Atomic uint32_t *low = state_half(l, false);
	/* seq_cst: the release, and the flags' pair with the sleepers' CAS.
	 * Adds bias - WRITER modulo 2^64: WRITER is set and BIASED clear. */
	uint64_t s = atomic_fetch_add(&l->state, bias - WRITER);
	TEST_HOOK("rwlock_wrunlock:released");
	if (s & WSLEEP)
		wake_writers_low(low, pshared ? INT_MAX : 1, pshared);
	if ((s & RSLEEP) && (!wwaiters_of(s) || prefer))
		wake_readers(low, pshared);
	return 0;
}

/* Default: the next writer goes first and readers keep waiting; readers
 * are woken once no writer waits. PREFER_READER wakes both. Everything
 * used after the releasing CAS is read before it. */
static int write_release_with(sync_rwlock_t *l, uint64_t s, uint64_t bias)
{
	bool pshared = is_pshared(l), prefer = prefers_readers(l);
	_Atomic uint32_t *low = state_half(l, false);
	note_writer(l, 0);
	if (!(s & (WSLEEP | RSLEEP)) && !only_phantoms(l, s))
		return release_plain(l, pshared, prefer, bias);
	uint64_t n;
	for (;;) {
		n = released(s, only_phantoms(l, s), prefer) | bias;
		/* seq_cst: the release, and RSLEEP's pair with read_sleep_once */
		if (atomic_compare_exchange_strong(&l->state, &s, n))
			break;
	}
	TEST_HOOK("rwlock_wrunlock:released");
	if (s & WSLEEP)
		wake_writers_low(low, pshared ? INT_MAX : 1, pshared);
	if ((s & RSLEEP) && !(n & RSLEEP))
		wake_readers(low, pshared);
	return 0;
}

/* The write unlock: the bias comes back in the release if it may. */
static int write_release(sync_rwlock_t *l, uint64_t s)
{
	return write_release_with(l, s, bias_restored(l, s));
}

int sync_rwlock_wrunlock(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	uint64_t s = atomic_load(&l->state); /* acquire, for only_phantoms */
	if (!caller_writes(l, s))
		return EPERM;
	/* before the release: l may go with it */
	ann_unlock_pre(l, ANN_WRITE | ann_kind(l));
	int r = write_release(l, s);
	ann_unlock_post(l, ANN_WRITE);
	return r;
}

int sync_rwlock_init(sync_rwlock_t *l, int flags)
{
	if (!l || (flags & ~RWLOCK_FLAGS))
		return EINVAL;
	/* relaxed: publishing the object to other threads is the caller's job */
	l->flags = (uint32_t)flags; /* may_bias reads it */
	atomic_store_explicit(&l->state, may_bias(l) ? BIASED : 0, memory_order_relaxed);
	atomic_store_explicit(&l->writer, 0, memory_order_relaxed);
	atomic_store_explicit(&l->wtoken, 0, memory_order_relaxed);
	atomic_store_explicit(&l->heartbeat, 0, memory_order_relaxed);
	atomic_store_explicit(&l->drops, 0, memory_order_relaxed);
	atomic_store_explicit(&l->spin, 0, memory_order_relaxed);
	if (flags & SYNC_PSHARED)
		note_pshared();
	ann_lock_create(l);
	return 0;
}

/* EBUSY while held. Registrations alone do not count: with the lock free
 * they are a writer about to take it (misuse to destroy under it) or one
 * that vanished. */
int sync_rwlock_destroy(sync_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	ann_destroy_pre(l, ann_kind(l));
	/* a snapshot; destroying while others still use it is misuse */
	uint64_t s = atomic_load(&l->state);
	if ((s & (WRITER | READERS_MASK)) || (bias_usable() && bias_read_held(l)))
		return EBUSY;
	ann_lock_destroy(l);
	return 0;
}
