/* Counting semaphore: value and sleeper count share one 64-bit word, as in
 * glibc's semaphore since 2.21 (Torvald Riegel, nptl/sem_waitcommon.c), so a
 * post learns from its own CAS whether anyone sleeps; waiters spin briefly
 * before sleeping, as musl's sem_timedwait does, but not on the CPU the last
 * post came from (the `spin` word: see spin_cpu_note), where they yield it
 * to the poster instead.
 *
 * The word: low half the value (also the futex the sleepers wait on), high
 * half the sleepers: threads registered to sleep. A waiter registers before
 * it sleeps and removes itself in the CAS that takes its unit, or when it
 * times out or is cancelled (its cleanup handler). post adds the unit in
 * one CAS and, if that CAS saw sleepers, wakes one by the futex's address
 * alone: it reads the flags before, and touches the semaphore no more after.
 *
 * What a vanished waiter (killed process; a thread of the parent, in a fork
 * child) leaves behind: its registration. It blocks nobody: a post wakes one
 * of the sleepers the kernel really has, and a wake-up the kernel handed to
 * a process being killed is made up for by the 10 ms second look of
 * futex_wait for shared objects. It costs a futex_wake system call per post
 * that finds no real sleeper, and newcomers skip the spin (they queue behind
 * what looks like sleepers), until sync_sem_init starts over. destroy counts
 * the sleepers the kernel has (see futex_sleepers), so it is not fooled. A
 * cancelled waiter unregisters in its cleanup handler and passes on a
 * wake-up it may have swallowed. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include <sync/sem.h>

#include "annotate.h"
#include "backoff.h"
#include "futex.h"
#include "test_hook.h"
#include "timeout.h"

#define VALUE_MASK  0xffffffffull /* low half: the value, also the futex word */
#define SLEEPER_ONE (1ull << 32)  /* high half: threads registered to sleep */


static uint32_t value_of(uint64_t w)
{
	return (uint32_t)(w & VALUE_MASK);
}

static uint32_t sleepers_of(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

static bool is_pshared(const sync_sem_t *s)
{
	return s->flags & SYNC_PSHARED;
}

/* The 32-bit half holding the value, which waiters sleep on. */
static _Atomic uint32_t *value_word(sync_sem_t *s)
{
	return futex_half(&s->word, false);
}

/* Takes one unit if there is one; *w is the word as last seen. The acquire
 * pairs with the release in sync_sem_post. */
static bool take_unit(sync_sem_t *s, uint64_t *w, uint64_t unregister)
{
	while (value_of(*w) > 0) {
		if (atomic_compare_exchange_weak_explicit(&s->word, w,
							  *w - 1 - unregister,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

/* On the CPU the last post came from, the poster may be runnable there but
 * cannot run while we spin: give it the CPU a few times (it posts without a
 * wake-up to pay for), while nobody sleeps yet and the deadline has not
 * passed. */
static bool yield_take(sync_sem_t *s, const struct timespec *abstime)
{
	TEST_HOOK("sem_spin:yield");
	for (unsigned i = 0; i < SPIN_YIELDS; i++) {
		sched_yield();
		/* relaxed: take_unit's CAS carries the acquire */
		uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
		if (sleepers_of(w))
			return false;
		if (take_unit(s, &w, 0))
			return true;
		if (timeout_passed(abstime))
			return false;
	}
	return false;
}

/* Polls for a unit while nobody sleeps yet (sleepers were first: queue up
 * behind them rather than take the CPU a holder or poster may need), and
 * while the deadline has not passed. Not at all on the CPU the last post
 * came from (spin_cpu_may_pay): the poster cannot run while we spin there. */
static bool spin_take(sync_sem_t *s, const struct timespec *abstime)
{
	struct spin_poll poll = SPIN_POLL_INIT;
	if (!spin_cpu_may_pay(&s->spin))
		return yield_take(s, abstime);
	TEST_HOOK("sem_spin:start");
	while (spin_poll(&poll, SPIN_POLL_PAUSES)) {
		/* relaxed: take_unit's CAS carries the acquire */
		uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
		if (sleepers_of(w))
			return false;
		if (take_unit(s, &w, 0))
			return true;
		if (poll.step >= SPIN_POLL_STEP_MAX && timeout_passed(abstime))
			return false;
	}
	return false;
}

/* Cleanup handler of a sleeper cancelled in its futex wait: unregisters,
 * and if a unit is there for the other sleepers, wakes one of them (the
 * post's wake-up may have been ours). */
static void sleeper_cancelled(void *arg)
{
	sync_sem_t *s = arg;
	bool pshared = is_pshared(s);
	_Atomic uint32_t *futex_word = value_word(s);
	/* seq_cst: the value we look at is the one our removal saw */
	uint64_t w = atomic_fetch_sub(&s->word, SLEEPER_ONE) - SLEEPER_ONE;
	if (value_of(w) && sleepers_of(w))
		futex_wake(futex_word, 1, FUTEX_BITSET_MATCH_ANY, pshared);
}

/* One sleep while the value is 0, as a cancellation point. */
static __attribute__((noinline)) int sleep_cancelable(sync_sem_t *s,
						      const struct timespec *abstime)
{
	int r;
	pthread_cleanup_push(sleeper_cancelled, s);
	r = futex_wait_cancelable(value_word(s), 0, abstime, FUTEX_BITSET_MATCH_ANY,
				  is_pshared(s));
	pthread_cleanup_pop(0);
	return r;
}

/* Registers as a sleeper, then sleeps while the value is 0. The unit and
 * the registration go in one CAS; a post that sees the registration wakes. */
static int sleep_take(sync_sem_t *s, const struct timespec *abstime)
{
	uint64_t w = atomic_fetch_add(&s->word, SLEEPER_ONE) + SLEEPER_ONE;
	int r = 0;
	TEST_HOOK("sem_sleep:registered");
	for (;;) {
		if (take_unit(s, &w, SLEEPER_ONE))
			return 0;
		if (r == ETIMEDOUT) {
			atomic_fetch_sub(&s->word, SLEEPER_ONE);
			return ETIMEDOUT;
		}
		r = timeout_passed(abstime) ? ETIMEDOUT : sleep_cancelable(s, abstime);
		/* relaxed: take_unit's CAS carries the acquire */
		w = atomic_load_explicit(&s->word, memory_order_relaxed);
	}
}

/* Fast path first and alone, so that the common case pays for nothing else.
 * A deadline already past is kept: no spin, no sleep. */
static __attribute__((noinline)) int take_slow(sync_sem_t *s,
					       const struct timespec *abstime)
{
	if (timeout_passed(abstime))
		return ETIMEDOUT;
	ann_wait_pre(s);
	int r = spin_take(s, abstime) ? 0 : sleep_take(s, abstime);
	ann_wait_post(s, ANN_SEM);
	return r;
}

static inline int take(sync_sem_t *s, const struct timespec *abstime)
{
	/* relaxed: take_unit's CAS carries the acquire */
	uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
	if (take_unit(s, &w, 0))
		return 0;
	return take_slow(s, abstime);
}

int sync_sem_init(sync_sem_t *s, unsigned value, int flags)
{
	if (!s || value > SYNC_SEM_VALUE_MAX || (flags & ~SYNC_PSHARED))
		return EINVAL;
	ann_internal(s, sizeof *s);
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&s->word, value, memory_order_relaxed);
	s->flags = (uint32_t)flags;
	/* relaxed: as the word */
	atomic_store_explicit(&s->spin, 0, memory_order_relaxed);
	return 0;
}

/* EBUSY while a thread sleeps in a wait. The registrations in the word
 * are only a hint here: one may be a waiter that was killed (see the top),
 * so the kernel is asked. A live sleeper is out of the kernel only for
 * moments (a shared one looks again every 10 ms, a signal interrupts one):
 * it is asked three times, 100 us apart, before the count is believed. */
int sync_sem_destroy(sync_sem_t *s)
{
	if (!s)
		return EINVAL;
	ann_internal(s, sizeof *s);
	/* a snapshot; destroying while others still use it is misuse */
	for (int looks = 0; looks < 3; looks++) {
		if (looks)
			timeout_nap(100000);
		uint64_t w = atomic_load(&s->word);
		if (!sleepers_of(w))
			return 0;
		if (futex_sleepers(value_word(s), value_of(w), is_pshared(s)) != 0)
			return EBUSY; /* asleep there, or the value moved: in use */
	}
	return 0;
}

/* Cancellation points, as POSIX's sem_wait: a cancellation already pending
 * acts on entry, one that comes while the caller sleeps acts there. */
/* take() as the race detectors see it: a unit taken is an acquire of
 * everything its posts released. */
static int take_annotated(sync_sem_t *s, const struct timespec *abstime)
{
	ann_internal(s, sizeof *s);
	int r = take(s, abstime);
	if (r == 0)
		ann_acquire(s);
	return r;
}

int sync_sem_wait(sync_sem_t *s)
{
	pthread_testcancel();
	return s ? take_annotated(s, NULL) : EINVAL;
}

int sync_sem_timedwait(sync_sem_t *s, const struct timespec *abstime)
{
	pthread_testcancel();
	if (!s || !timeout_valid(abstime))
		return EINVAL;
	return take_annotated(s, abstime);
}

int sync_sem_trywait(sync_sem_t *s)
{
	if (!s)
		return EINVAL;
	ann_internal(s, sizeof *s);
	/* relaxed: take_unit's CAS carries the acquire */
	uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
	if (!take_unit(s, &w, 0))
		return EAGAIN;
	ann_acquire(s);
	return 0;
}

int sync_sem_post(sync_sem_t *s)
{
	if (!s)
		return EINVAL;
	/* Read before the unit is published: from then on a waiter may take it,
	 * destroy and free the semaphore; only the futex address is used after. */
	bool pshared = is_pshared(s);
	_Atomic uint32_t *futex_word = value_word(s);
	ann_internal(s, sizeof *s);
	ann_release(s); /* before the unit is published, as the CAS's release */
	spin_cpu_note(&s->spin);
	/* relaxed: the CAS below carries the release */
	uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
	do {
		if (value_of(w) >= SYNC_SEM_VALUE_MAX)
			return EOVERFLOW;
	} while (!atomic_compare_exchange_weak_explicit(
		&s->word, &w, w + 1, memory_order_release, /* pairs with take_unit */
		memory_order_relaxed));
	TEST_HOOK("sem_post:published");
	if (sleepers_of(w))
		futex_wake(futex_word, 1, FUTEX_BITSET_MATCH_ANY, pshared);
	return 0;
}

int sync_sem_getvalue(sync_sem_t *s, int *value)
{
	if (!s || !value)
		return EINVAL;
	ann_internal(s, sizeof *s);
	/* relaxed: a snapshot, ordered with nothing */
	*value = (int)value_of(atomic_load_explicit(&s->word, memory_order_relaxed));
	return 0;
}
