/* Futex mutex: Drepper, "Futexes Are Tricky" (2011), mutex 3, with bounded
 * spinning by a single spinner before sleeping and a hand-off bit against
 * starvation (after the starvation mode of Go's sync.Mutex).
 *
 * The state word is the whole protocol, and every decision is an atomic
 * read-modify-write of it, so that an unlock's release is also its last
 * access to the mutex (the next owner may destroy and free it at once):
 *   M_LOCKED   held. Set by the locker, cleared by the unlocking owner.
 *   M_WAITERS  some thread may sleep on BITSET_SLEEPER. Set by a sleeper
 *              before it sleeps and by every thread that takes the lock out
 *              of a sleep (others may remain); cleared only by the unlock
 *              that wakes one of them, in its releasing CAS.
 *   M_HANDOFF  the heir (one starving sleeper, BITSET_HEIR) owns the next
 *              release: newcomers keep out. Set and cleared by the heir,
 *              or cleared with a stale token (below). Private mutexes only:
 *              a process killed while it is the heir would wedge a shared one.
 *   token      (bits 3-31) 0, or a process token (thread_process_token):
 *              with M_HANDOFF, the heir's; without, the spinner's stamp,
 *              which the spinner puts there only while M_WAITERS is set
 *              (without sleepers no unlock needs it, and the fast paths
 *              stay single CASes). A thread that finds its own process's
 *              token knows the spinner or heir is a live thread (a thread
 *              cannot vanish while it waits). An unlock that finds its own
 *              stamp leaves M_WAITERS set and wakes nobody: the spinner takes
 *              the lock and the duty to wake, or sees the lock free when it
 *              drops the stamp and gives up. Any other token may be stale (a
 *              killed process's, or the parent's in a fork child): an unlock,
 *              or a sleeper, clears it and goes on as if it were not there.
 * The `spinner` word holds the token of the one waiter allowed to spin (its
 * claim), or 0; it only keeps others from spinning. An unlock that finds
 * another process's token there clears it. The `spin` word is how long the
 * spinner may spin, learned from the spins before (spin_learn in backoff.h:
 * a hint, any value of which is valid, so a process killed while it writes
 * it leaves nothing wrong).
 * What a vanished waiter leaves behind: a sleeper, nothing (the kernel
 * drops it; a wake-up the kernel handed to a process being killed is made
 * up for by the periodic second look of futex_wait for shared objects); a
 * spinner or an heir, a token that is not the survivors' own, which the
 * next unlock (or sleeper) clears. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sync/mutex.h>

#include "annotate.h"
#include "backoff.h"
#include "futex.h"
#include "mutex_internal.h"
#include "test_hook.h"
#include "thread.h"
#include "timeout.h"

#define M_LOCKED      1u
#define M_WAITERS     2u
#define M_HANDOFF     4u
#define M_TOKEN_SHIFT  3
#define M_TOKEN_MASK   (~0u << M_TOKEN_SHIFT)

#define BITSET_SLEEPER MUTEX_SLEEPER_BITSET /* ordinary sleepers */
#define BITSET_HEIR    2u /* the single starving waiter that set M_HANDOFF */

/* Pause iterations the single spinner spends before it sleeps, and the
 * largest gap between its looks at the lock word (exponential backoff, so a
 * holder that re-locks keeps the cache line most of the time). */
#define SPIN_PAUSES   4096u
#define SPIN_STEP_MAX 256u
/* Wake-ups lost to barging threads before a sleeper claims the hand-off. */
#define LOST_RACES_BEFORE_HANDOFF 4

#define MUTEX_FLAGS (SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK | SYNC_MUTEX_ROBUST)

_Static_assert(THREAD_PROCESS_TOKEN_BITS <= 32 - M_TOKEN_SHIFT,
	       "the process token fits the token field");

static uint32_t token_of(uint32_t s)
{
	return s >> M_TOKEN_SHIFT;
}

static uint32_t token_bits(uint32_t token)
{
	return token << M_TOKEN_SHIFT;
}

static bool is_pshared(const sync_mutex_t *m)
{
	return m->flags & SYNC_PSHARED;
}

static bool is_errorcheck(const sync_mutex_t *m)
{
	return m->flags & SYNC_MUTEX_ERRORCHECK;
}

/* The hooks' flags for m: a relock that answers EDEADLK, a robust one. */
static unsigned ann_kind(const sync_mutex_t *m)
{
	return mutex_is_robust(m) ? ANN_ROBUST | ANN_NOHANG
				  : is_errorcheck(m) ? ANN_NOHANG : 0;
}

static void note_owner(sync_mutex_t *m)
{
	if (is_errorcheck(m)) /* relaxed: only the holder writes its own id */
		atomic_store_explicit(&m->owner, thread_tid(), memory_order_relaxed);
}

static bool caller_owns(sync_mutex_t *m)
{
	/* relaxed: equals our id only if we stored it, in program order */
	uint32_t owner = atomic_load_explicit(&m->owner, memory_order_relaxed);
	if (owner == thread_tid())
		return true;
	return !is_pshared(m) && thread_held_before_fork(owner);
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
	if (flags & SYNC_MUTEX_ROBUST) {
		int r = robust_init(m, flags);
		if (r == 0)
			ann_lock_create(m);
		return r;
	}
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&m->state, 0, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	m->flags = (uint32_t)flags;
	atomic_store_explicit(&m->spinner, 0, memory_order_relaxed);
	m->pidns = 0;
	atomic_store_explicit(&m->spin, 0, memory_order_relaxed);
	m->robust_prev = NULL;
	m->robust_next = NULL;
	ann_lock_create(m);
	return 0;
}

int sync_mutex_destroy(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	ann_destroy_pre(m, ann_kind(m));
	if (mutex_is_robust(m))
		return robust_destroy(m);
	/* relaxed: a snapshot; destroying while others still use it is misuse */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (s & (M_LOCKED | M_HANDOFF))
		return EBUSY;
	ann_lock_destroy(m);
	return 0;
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

/* Becomes the one spinner, if no other thread (or process) is. */
static bool claim_spinner(sync_mutex_t *m, uint32_t token)
{
	uint32_t none = 0;
	/* relaxed: claims a role; the lock is taken by a CAS on the state */
	return atomic_compare_exchange_strong_explicit(&m->spinner, &none, token,
						       memory_order_relaxed,
						       memory_order_relaxed);
}

/* Gives the role up, unless an unlock in another process took it already. */
static void release_spinner(sync_mutex_t *m, uint32_t token)
{
	/* relaxed: the role orders nothing */
	atomic_compare_exchange_strong_explicit(&m->spinner, &token, 0,
						memory_order_relaxed,
						memory_order_relaxed);
}

/* The state without our stamp, if it is there (an unlock in another process
 * may have cleared it, and an heir may have put its token in its place;
 * another spinner of ours may have stamped the same token: dropping it only
 * lets the next unlock wake a sleeper that was not needed). */
static uint32_t without_stamp(uint32_t s, uint32_t token)
{
	if ((s & M_HANDOFF) || token_of(s) != token)
		return s;
	return s & ~M_TOKEN_MASK;
}

/* Stamps our token on a held lock that has sleepers, so that its unlock
 * leaves the wake-up to us (replacing a stale token of another process). */
static void stamp_if_sleepers(sync_mutex_t *m, uint32_t s, uint32_t token)
{
	if ((s & (M_LOCKED | M_WAITERS | M_HANDOFF)) != (M_LOCKED | M_WAITERS) ||
	    token_of(s) == token)
		return;
	/* relaxed: a role again; a failed CAS is retried at the next look */
	atomic_compare_exchange_strong_explicit(
		&m->state, &s, (s & ~M_TOKEN_MASK) | token_bits(token),
		memory_order_relaxed, memory_order_relaxed);
}

/* How a spin ended: with the lock, with its budget spent, or cut short (an
 * heir waits, or abstime passed), which teaches spin_learn nothing. */
enum spin_end { SPIN_TOOK, SPIN_SPENT, SPIN_STOPPED };

/* Spins for a free lock and takes it, dropping our stamp in the same CAS,
 * so an unlock that saw the stamp and skipped its wake-up leaves M_WAITERS
 * to us, for at most `budget` pauses. */
static enum spin_end spin_take(sync_mutex_t *m, uint32_t token, uint32_t budget,
			       const struct timespec *abstime)
{
	uint32_t step = 1;
	for (uint32_t spent = 0; spent < budget; spent += step) {
		if (step >= SPIN_STEP_MAX && timeout_passed(abstime))
			return SPIN_STOPPED;
		cpu_relax_n(step);
		step = step < SPIN_STEP_MAX ? step << 1 : step;
		/* relaxed: the CAS carries the acquire */
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		while (!(s & (M_LOCKED | M_HANDOFF))) {
			if (state_cas_acquire(m, &s, without_stamp(s, token) | M_LOCKED))
				return SPIN_TOOK;
		}
		if (s & M_HANDOFF)
			return SPIN_STOPPED;
		stamp_if_sleepers(m, s, token);
	}
	return SPIN_SPENT;
}

/* Drops our stamp. An unlock that skipped its wake-up for us came before
 * this in the state's modification order, so sleep_acquire's first look
 * sees the lock free and takes it. */
static void drop_stamp(sync_mutex_t *m, uint32_t token)
{
	/* relaxed: drops a role, publishes nothing */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&m->state, &s,
						      without_stamp(s, token),
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* At most one thread spins (after the kernel's optimistic spinning of
 * mutexes): others go to sleep at once, so oversubscribed waiters do not
 * burn the CPU that a preempted holder needs. It spins as long as spins of
 * this mutex have paid lately (spin_learn: one that never gets the lock
 * before its budget is spent, as behind a holder preempted on our CPU,
 * stops spinning but for a short probe now and then). */
static bool spin_acquire(sync_mutex_t *m, const struct timespec *abstime)
{
	uint32_t token = thread_process_token();
	uint32_t budget = spin_learn_budget(&m->spin, SPIN_PAUSES);
	if (!budget || !claim_spinner(m, token))
		return false;
	TEST_HOOK("mutex_spin:claimed");
	enum spin_end end = spin_take(m, token, budget, abstime);
	if (end != SPIN_TOOK)
		drop_stamp(m, token);
	release_spinner(m, token);
	if (end != SPIN_STOPPED) /* we hold m, or wait for it: it is still there */
		spin_learn_note(&m->spin, end == SPIN_TOOK);
	return end == SPIN_TOOK;
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
		uint32_t want = s & ~(M_HANDOFF | M_TOKEN_MASK);
		if (!(s & M_LOCKED))
			want |= M_LOCKED;
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
			if (state_cas_acquire(m, &s,
					      (s & ~(M_HANDOFF | M_TOKEN_MASK)) | M_LOCKED))
				return 0;
			continue;
		}
		if (sleep_on(m, s, abstime, BITSET_HEIR) == ETIMEDOUT)
			return heir_timeout(m);
	}
}

/* Drepper's loop: whoever takes the lock from here marks M_WAITERS, since
 * other sleepers may remain; a sleeper that keeps losing claims the hand-off
 * (putting its token in place of a spinner's stamp; the spinner stops). */
static int sleep_acquire(sync_mutex_t *m, const struct timespec *abstime)
{
	uint32_t token = thread_process_token();
	unsigned lost = 0;
	/* relaxed: the CASes carry the acquire */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	for (;;) {
		if (!(s & (M_LOCKED | M_HANDOFF))) {
			if (state_cas_acquire(m, &s, s | M_LOCKED | M_WAITERS))
				return 0;
			continue;
		}
		if ((s & M_HANDOFF) && token_of(s) != token) {
			/* relaxed: drops a vanished heir's claim, publishes nothing */
			atomic_compare_exchange_weak_explicit(
				&m->state, &s, s & ~(M_HANDOFF | M_TOKEN_MASK),
				memory_order_relaxed, memory_order_relaxed);
			continue;
		}
		if (!(s & M_HANDOFF) && lost >= LOST_RACES_BEFORE_HANDOFF &&
		    !is_pshared(m)) {
			uint32_t heir = (s & ~M_TOKEN_MASK) | M_HANDOFF | M_WAITERS |
					token_bits(token);
			if (state_cas_acquire(m, &s, heir))
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
		/* relaxed: as above */
		s = atomic_load_explicit(&m->state, memory_order_relaxed);
	}
}

/* A deadline already past gets no spin: ETIMEDOUT at once. */
static int lock_slow(sync_mutex_t *m, const struct timespec *abstime)
{
	if (is_errorcheck(m) && caller_owns(m))
		return EDEADLK;
	if (timeout_passed(abstime))
		return ETIMEDOUT;
	ann_contended(m, 0);
	int r = spin_acquire(m, abstime) ? 0 : sleep_acquire(m, abstime);
	if (r == 0)
		note_owner(m);
	return r;
}

/* A running thread may take a free lock even while a spinner or sleepers
 * wait (barging keeps the cache line where the work is). Not for a robust
 * mutex, whose word is never 0 (its free value is a tid). */
static inline bool try_fast(sync_mutex_t *m)
{
	uint32_t s = 0;
	if (atomic_compare_exchange_strong_explicit(
		    &m->state, &s, M_LOCKED, memory_order_acquire, /* pairs with unlock */
		    memory_order_relaxed))
		return true;
	return take_if_free(m, &s);
}

/* Fast path first, then spin and sleep until abstime (NULL: forever). A
 * robust mutex goes its own way before a CAS that would fail there. */
static int acquire(sync_mutex_t *m, const struct timespec *abstime)
{
	if (__builtin_expect(mutex_is_robust(m), 0))
		return robust_lock(m, abstime);
	if (try_fast(m)) {
		note_owner(m);
		return 0;
	}
	return lock_slow(m, abstime);
}

/* acquire() as the race detectors see it (a timed lock as a try). */
static int acquire_annotated(sync_mutex_t *m, const struct timespec *abstime)
{
	unsigned how = abstime ? ANN_TRY : ANN_WRITE;
	ann_lock_pre(m, how | ann_kind(m));
	int r = acquire(m, abstime);
	ann_lock_post(m, how | ann_kind(m), r);
	return r;
}

int sync_mutex_lock(sync_mutex_t *m)
{
	return m ? acquire_annotated(m, NULL) : EINVAL;
}

int sync_mutex_timedlock(sync_mutex_t *m, const struct timespec *abstime)
{
	if (!m || !timeout_valid(abstime))
		return EINVAL;
	return acquire_annotated(m, abstime);
}

static int try_acquire(sync_mutex_t *m)
{
	if (mutex_is_robust(m))
		return robust_trylock(m);
	/* relaxed: the CAS carries the acquire */
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (!take_if_free(m, &s))
		return EBUSY;
	note_owner(m);
	return 0;
}

int sync_mutex_trylock(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	ann_lock_pre(m, ANN_TRY | ann_kind(m));
	int r = try_acquire(m);
	ann_lock_post(m, ANN_TRY | ann_kind(m), r);
	return r;
}

enum wake { WAKE_NONE, WAKE_SLEEPER, WAKE_HEIR };

/* The state an unlock leaves, and whom it must wake, decided from the
 * state its CAS replaces. A live heir (our own token) keeps M_HANDOFF and
 * M_WAITERS, so that no newcomer barges in. A spinner of our own process
 * inherits M_WAITERS and the duty to wake. Any other token, an heir's or a
 * spinner's, is dropped (a killed process's, or the parent's in a fork
 * child) and we wake a sleeper. Waking one clears M_WAITERS: it sets the
 * bit again if others remain. */
static uint32_t released(uint32_t s, uint32_t token, enum wake *wake)
{
	bool own = token_of(s) == token;
	if ((s & M_HANDOFF) && own) {
		*wake = WAKE_HEIR;
		return s & ~M_LOCKED;
	}
	uint32_t want = s & ~(M_LOCKED | M_HANDOFF);
	if (!own)
		want &= ~M_TOKEN_MASK;
	if (!(s & M_WAITERS) || own) {
		*wake = WAKE_NONE;
		return want;
	}
	*wake = WAKE_SLEEPER;
	return want & ~M_WAITERS;
}

/* A spinner claim of another process may be stale: clear it while we still
 * hold the mutex (a live one only keeps spinning without the role). */
static void clear_foreign_claim(sync_mutex_t *m, uint32_t token)
{
	/* relaxed: the role orders nothing */
	uint32_t claim = atomic_load_explicit(&m->spinner, memory_order_relaxed);
	if (claim && claim != token)
		atomic_compare_exchange_strong_explicit(&m->spinner, &claim, 0,
							memory_order_relaxed,
							memory_order_relaxed);
}

/* Someone may sleep, or an heir waits: one CAS releases the lock and
 * records the decision, then at most one futex wake by address. */
static int unlock_slow(sync_mutex_t *m, uint32_t s, bool pshared)
{
	uint32_t token = thread_process_token();
	enum wake wake;
	if (s & M_LOCKED)
		clear_foreign_claim(m, token);
	do {
		if (!(s & M_LOCKED))
			return EPERM;
	} while (!atomic_compare_exchange_weak_explicit(
		&m->state, &s, released(s, token, &wake),
		memory_order_release, /* pairs with the lockers' acquire CAS */
		memory_order_relaxed));
	/* m may be freed from here on: only its address is used. */
	TEST_HOOK("mutex_unlock:released");
	if (wake == WAKE_HEIR)
		futex_wake(&m->state, 1, BITSET_HEIR, pshared);
	else if (wake == WAKE_SLEEPER)
		futex_wake(&m->state, 1, BITSET_SLEEPER, pshared);
	return 0;
}

int sync_mutex_unlock(sync_mutex_t *m)
{
	if (!m)
		return EINVAL;
	if (mutex_is_robust(m))
		return robust_unlock(m);
	bool pshared = is_pshared(m); /* read while we still hold m */
	if (is_errorcheck(m)) {
		if (!caller_owns(m))
			return EPERM;
		/* relaxed: ordered before the release CAS below */
		atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	}
	/* before the release: m may go with it */
	ann_unlock_pre(m, ANN_WRITE | ann_kind(m));
	uint32_t s = M_LOCKED;
	int r = 0;
	if (!atomic_compare_exchange_strong_explicit(
		    &m->state, &s, 0, memory_order_release, /* pairs with lock's CAS */
		    memory_order_relaxed))
		r = unlock_slow(m, s, pshared);
	ann_unlock_post(m, ANN_WRITE);
	return r;
}

int sync_mutex_consistent(sync_mutex_t *m)
{
	if (!m || !mutex_is_robust(m))
		return EINVAL;
	return robust_consistent(m);
}

bool mutex_may_be_held_by_caller(sync_mutex_t *m)
{
	if (mutex_is_robust(m))
		return robust_held_by_caller(m);
	if (is_errorcheck(m))
		return caller_owns(m);
	/* relaxed: if the caller holds m, its own lock set this bit */
	return atomic_load_explicit(&m->state, memory_order_relaxed) & M_LOCKED;
}

int mutex_lock_requeued(sync_mutex_t *m)
{
	int r = 0;
	ann_lock_pre(m, ANN_WRITE | ann_kind(m));
	if (mutex_is_robust(m)) {
		r = robust_lock(m, NULL);
	} else {
		sleep_acquire(m, NULL); /* no deadline: cannot fail */
		note_owner(m);
	}
	ann_lock_post(m, ANN_WRITE | ann_kind(m), r);
	return r;
}
