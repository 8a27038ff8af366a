/* Condition variable: waiters sleep on a futex sequence counter that signal
 * and broadcast bump (Drepper, "Futexes Are Tricky", 2011; the scheme of
 * Bionic and of musl's process-shared path). A broadcast wakes one waiter and
 * requeues the others onto the mutex's futex with FUTEX_CMP_REQUEUE, as glibc
 * did before 2.25, so they come out one unlock at a time, not as a herd.
 * Waiters poll the counter briefly before they sleep (not on the CPU the
 * last signal came from, the `spin` word: they yield it to the signaller
 * instead), and signal makes a system call only when someone sleeps.
 *
 * State and invariants:
 *   word      high half: seq, the futex word, bumped (mod 2^32) by every
 *             signal or broadcast that finds a waiter; low half: sleepers,
 *             threads between their registration and the end of their futex
 *             sleep. One word, so that a signal learns from its own
 *             fetch-and-add whether anyone sleeps (no store-then-load pair)
 *             and reads nothing after the bump that frees the waiters.
 *   waiters   threads inside a wait, from before their snapshot of seq until
 *             they stop touching the condition variable (before they take
 *             the mutex again): what destroy waits for.
 *   wait_seq  the snapshot of the latest waiter to register. If seq still
 *             equals it, that waiter has had no signal: destroy says EBUSY.
 *   mutex     the private mutex the current waiters use, for the requeue.
 * A waiter cannot tell a wake-up from the condition variable from one the
 * mutex's unlock gave it after a requeue (a broadcast may requeue a thread
 * whose snapshot already counted it). So any futex wake-up is taken as
 * possibly the mutex's: the waiter takes the mutex as a woken sleeper does,
 * leaving the mutex's WAITERS bit set so that its unlock wakes the next.
 * A cancelled waiter does the same and wakes every sleeper if seq moved, so
 * that it swallows neither kind of wake-up.
 * What a vanished waiter leaves behind: a cancelled thread, nothing (its
 * cleanup handler undoes its counts); a killed process or a fork child's
 * missing threads, counts in waiters and sleepers that make signals bump
 * seq and call futex(2) for nobody, and make destroy wait VANISHED_AFTER_NS
 * before it sees that they are gone (the kernel's count of sleepers, not
 * ours, says whether a waiter is blocked). Only then: a private condition
 * variable in a process that is not a fork child has live waiters alone,
 * and destroy waits for them as long as they take (a woken waiter that a
 * loaded machine holds up longer than that would otherwise still touch a
 * condition variable that its owner has freed). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include <sync/cond.h>

#include "annotate.h"
#include "backoff.h"
#include "futex.h"
#include "mutex_internal.h"
#include "test_hook.h"
#include "thread.h"
#include "timeout.h"

#define SEQ_SHIFT   32
#define SEQ_ONE     (1ull << SEQ_SHIFT)
#define SLEEPER_ONE 1ull

/* Low bit of the recorded mutex address: that mutex is process-shared. */
#define MUTEX_TAG_PSHARED 1u

/* How long a waiter counted in the condition variable may make no move
 * (not leave, not go to sleep) before destroy takes it for one that
 * vanished: woken waiters need only to run. */
#define VANISHED_AFTER_NS 100000000ull /* 100 ms */

static uint32_t seq_of(uint64_t w)
{
	return (uint32_t)(w >> SEQ_SHIFT);
}

static uint32_t sleepers_of(uint64_t w)
{
	return (uint32_t)w;
}

static bool is_pshared(const sync_cond_t *c)
{
	return c->flags & SYNC_PSHARED;
}

/* The 32-bit half of the word holding seq, which waiters sleep on. */
static _Atomic uint32_t *seq_word(sync_cond_t *c)
{
	return futex_half(&c->word, true);
}

static uint32_t load_seq(sync_cond_t *c)
{
	return seq_of(atomic_load(&c->word));
}

/* A robust mutex's futex is always shared (the kernel's wake at an owner's
 * death is): a private cond cannot requeue onto it, so it counts as shared. */
static uintptr_t mutex_tag(const sync_mutex_t *m)
{
	bool shared = m->flags & (SYNC_PSHARED | SYNC_MUTEX_ROBUST);
	return (uintptr_t)m | (shared ? MUTEX_TAG_PSHARED : 0);
}

/* The private mutex that a broadcast may requeue waiters onto, or NULL. */
static sync_mutex_t *requeue_target(sync_cond_t *c)
{
	uintptr_t tag = atomic_load(&c->mutex);
	if (is_pshared(c) || !tag || (tag & MUTEX_TAG_PSHARED))
		return NULL;
	return (sync_mutex_t *)tag;
}

int sync_cond_init(sync_cond_t *c, int flags)
{
	if (!c || (flags & ~SYNC_PSHARED))
		return EINVAL;
	ann_internal(c, sizeof *c);
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&c->word, 0, memory_order_relaxed);
	atomic_store_explicit(&c->waiters, 0, memory_order_relaxed);
	c->flags = (uint32_t)flags;
	atomic_store_explicit(&c->wait_seq, 0, memory_order_relaxed);
	atomic_store_explicit(&c->spin, 0, memory_order_relaxed);
	atomic_store_explicit(&c->mutex, 0, memory_order_relaxed);
	return 0;
}

/* Yields to the waiters destroy waits for: first the CPU, then time. */
static void let_waiters_run(unsigned round)
{
	if (round < 64)
		sched_yield();
	else
		timeout_nap(50000);
}

/* Whether every counted waiter is a live thread: a private condition
 * variable outside a fork child (a cancelled waiter uncounts itself). */
static bool waiters_all_live(sync_cond_t *c)
{
	return !is_pshared(c) && !thread_is_fork_child();
}

/* True if a waiter that no signal reached is blocked: the latest waiter
 * registered after the last signal or broadcast, and a thread sleeps on
 * seq (the kernel's count: the waiters' own counts cannot tell a sleeper
 * from a waiter that was killed). A waiter that registered but does not
 * sleep yet is given VANISHED_AFTER_NS to get there or leave; when all are
 * live, it is blocked at once. */
static bool waiter_is_blocked(sync_cond_t *c, bool all_live)
{
	uint64_t since = timeout_now_ns();
	for (unsigned round = 0;; round++) {
		uint32_t seq = load_seq(c);
		if (atomic_load(&c->wait_seq) != seq || !atomic_load(&c->waiters))
			return false;
		if (all_live)
			return true;
		long sleeping = futex_sleepers(seq_word(c), seq, is_pshared(c));
		if (sleeping > 0)
			return true;
		if (sleeping == 0 && timeout_now_ns() - since >= VANISHED_AFTER_NS)
			return false;
		let_waiters_run(round);
	}
}

/* Waits until the woken waiters have stopped touching c. A waiter of a
 * killed process, or one that does not exist in a fork child, stays
 * counted forever: unless all are live, once the count has not moved for
 * VANISHED_AFTER_NS, the rest are taken as gone. */
static void wait_for_woken_waiters(sync_cond_t *c, bool all_live)
{
	uint32_t last = atomic_load(&c->waiters);
	uint64_t since = timeout_now_ns();
	for (unsigned round = 0; last; round++) {
		let_waiters_run(round);
		uint32_t n = atomic_load(&c->waiters);
		if (n != last) {
			last = n;
			since = timeout_now_ns();
		} else if (!all_live && timeout_now_ns() - since >= VANISHED_AFTER_NS) {
			return;
		}
	}
}

/* POSIX allows destroy as soon as no thread is blocked, e.g. right after
 * a broadcast: waiters still on their way out are woken (a spurious
 * wake-up for any the last signal did not reach, which POSIX allows a
 * signal to wake; those a broadcast requeued sit on the mutex) and
 * waited for. A waiter that came after the last signal is blocked: EBUSY. */
int sync_cond_destroy(sync_cond_t *c)
{
	if (!c)
		return EINVAL;
	ann_internal(c, sizeof *c);
	if (!atomic_load(&c->waiters))
		return 0;
	bool all_live = waiters_all_live(c);
	if (waiter_is_blocked(c, all_live))
		return EBUSY;
	sync_mutex_t *m = requeue_target(c);
	futex_wake(seq_word(c), INT_MAX, FUTEX_BITSET_MATCH_ANY, is_pshared(c));
	if (m)
		futex_wake(&m->state, INT_MAX, MUTEX_SLEEPER_BITSET, false);
	wait_for_woken_waiters(c, all_live);
	return 0;
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
	atomic_fetch_add(&c->word, SEQ_ONE);
	return 0;
}

/* A waiter's view of its wait, for its cleanup handler too. */
struct waiter {
	sync_cond_t *c;
	sync_mutex_t *m;
	uint32_t seq; /* snapshot taken under the mutex */
};

/* How a wait ended, and whether the waiter must lock the mutex as a woken
 * sleeper does (see mutex_lock_requeued). */
struct wait_end {
	int result;          /* 0 or ETIMEDOUT */
	bool lock_as_sleeper; /* may have taken a wake-up meant for the mutex */
};

/* On the CPU the last signal came from, the signaller cannot run while we
 * spin: give it the CPU a few times instead (a runnable signaller there
 * then signals without a wake-up to pay for), while nobody sleeps yet. */
static bool yield_until_signalled(struct waiter *w, const struct timespec *abstime)
{
	TEST_HOOK("cond_spin:yield");
	for (unsigned i = 0; i < SPIN_YIELDS; i++) {
		sched_yield();
		uint64_t word = atomic_load(&w->c->word);
		if (seq_of(word) != w->seq)
			return true;
		if (sleepers_of(word) || timeout_passed(abstime))
			return false;
	}
	return false;
}

/* Polls seq while nobody sleeps yet: a signal that comes within a few
 * microseconds then costs neither side a system call. Stops at abstime.
 * Not on the CPU the last signal or broadcast came from (spin_cpu_may_pay). */
static bool spin_until_signalled(struct waiter *w, const struct timespec *abstime)
{
	struct spin_poll poll = SPIN_POLL_INIT;
	if (timeout_passed(abstime))
		return false;
	if (!spin_cpu_may_pay(&w->c->spin))
		return yield_until_signalled(w, abstime);
	TEST_HOOK("cond_spin:start");
	while (spin_poll(&poll, SPIN_POLL_PAUSES)) {
		uint64_t word = atomic_load(&w->c->word);
		if (seq_of(word) != w->seq)
			return true;
		if (sleepers_of(word))
			return false;
		if (poll.step >= SPIN_POLL_STEP_MAX && timeout_passed(abstime))
			return false;
	}
	return false;
}

/* Undoes a cancelled waiter's registration and passes on what it may have
 * swallowed: a signal (seq moved: every sleeper is woken, spuriously for
 * some) or, after a requeue, the mutex's wake-up (it takes the mutex as a
 * woken sleeper, so that its unlock wakes the next). POSIX wants the mutex
 * held when the thread's cleanup handlers run. */
static void cancelled_in_sleep(void *arg)
{
	struct waiter *w = arg;
	sync_cond_t *c = w->c;
	uint64_t word = atomic_fetch_sub(&c->word, SLEEPER_ONE);
	if (seq_of(word) != w->seq)
		futex_wake(seq_word(c), INT_MAX, FUTEX_BITSET_MATCH_ANY, is_pshared(c));
	atomic_fetch_sub(&c->waiters, 1);
	mutex_lock_requeued(w->m);
}

/* The futex sleep, with the handler that runs if it is cancelled. */
static __attribute__((noinline)) int sleep_cancelable(struct waiter *w,
						      const struct timespec *abstime)
{
	int r;
	pthread_cleanup_push(cancelled_in_sleep, w);
	r = futex_wait_cancelable(seq_word(w->c), w->seq, abstime,
				  MUTEX_SLEEPER_BITSET, is_pshared(w->c));
	pthread_cleanup_pop(0);
	return r;
}

/* One futex sleep, a cancellation point, while seq still equals the
 * snapshot. Counting ourselves and reading seq is one read-modify-write,
 * and so is a signal's bump and its look at the count: either the signal
 * sees us counted and wakes, or we see its new seq. */
static int sleep_once(struct waiter *w, const struct timespec *abstime)
{
	sync_cond_t *c = w->c;
	int r = EAGAIN;
	uint64_t word = atomic_fetch_add(&c->word, SLEEPER_ONE);
	if (seq_of(word) == w->seq)
		r = timeout_before_epoch(abstime) ? ETIMEDOUT
						  : sleep_cancelable(w, abstime);
	atomic_fetch_sub(&c->word, SLEEPER_ONE);
	return r;
}

/* Sleeps until seq moves on from the snapshot, or until woken. Any futex
 * wake-up may be the mutex's (see the top of the file), so it ends the wait
 * with lock_as_sleeper, even with seq unchanged (a spurious wake-up, which
 * the caller's predicate loop absorbs). */
static struct wait_end sleep_until_signalled(struct waiter *w,
					     const struct timespec *abstime)
{
	if (spin_until_signalled(w, abstime))
		return (struct wait_end){ 0, false };
	for (;;) {
		int r = sleep_once(w, abstime);
		if (r == 0)
			return (struct wait_end){ 0, true };
		if (load_seq(w->c) != w->seq)
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
	pthread_testcancel(); /* a pending cancellation acts with m held */
	ann_internal(c, sizeof *c);
	/* every later wait, as every later lock: nobody can hold it any more */
	if (mutex_is_robust(m) && robust_not_recoverable(m))
		return ENOTRECOVERABLE;
	if (!mutex_may_be_held_by_caller(m))
		return EPERM;
	int r = bind_mutex(c, m);
	if (r)
		return r;
	atomic_fetch_add(&c->waiters, 1);
	struct waiter w = { c, m, load_seq(c) };
	atomic_store(&c->wait_seq, w.seq);
	r = sync_mutex_unlock(m);
	if (r) {
		atomic_fetch_sub(&c->waiters, 1);
		return r;
	}
	ann_wait_pre(c);
	struct wait_end end = sleep_until_signalled(&w, abstime);
	ann_wait_post(c, ANN_COND);
	TEST_HOOK("cond_wait:leaving");
	atomic_fetch_sub(&c->waiters, 1); /* c may be destroyed from here on */
	/* 0, or a robust mutex's EOWNERDEAD or ENOTRECOVERABLE */
	r = end.lock_as_sleeper ? mutex_lock_requeued(m) : sync_mutex_lock(m);
	return r ? r : end.result;
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
	ann_internal(c, sizeof *c);
	if (!atomic_load(&c->waiters))
		return 0;
	bool pshared = is_pshared(c); /* read before the bump frees waiters */
	_Atomic uint32_t *futex_word = seq_word(c);
	spin_cpu_note(&c->spin);
	uint64_t word = atomic_fetch_add(&c->word, SEQ_ONE);
	TEST_HOOK("cond_signal:bumped");
	if (sleepers_of(word))
		futex_wake(futex_word, 1, MUTEX_SLEEPER_BITSET, pshared);
	return 0;
}

/* Requeue needs the mutex's address, which is per process: a shared cond,
 * or a cond bound to a shared mutex, wakes everyone instead. Everything is
 * read before the bump, after which a woken waiter may destroy c. */
int sync_cond_broadcast(sync_cond_t *c)
{
	if (!c)
		return EINVAL;
	ann_internal(c, sizeof *c);
	if (!atomic_load(&c->waiters))
		return 0;
	bool pshared = is_pshared(c);
	sync_mutex_t *m = requeue_target(c);
	_Atomic uint32_t *futex_word = seq_word(c);
	spin_cpu_note(&c->spin);
	uint64_t word = atomic_fetch_add(&c->word, SEQ_ONE);
	TEST_HOOK("cond_broadcast:bumped");
	if (!sleepers_of(word))
		return 0;
	uint32_t seq = seq_of(word) + 1;
	if (m && futex_cmp_requeue(futex_word, seq, 1, INT_MAX, &m->state, false) == 0)
		return 0;
	futex_wake(futex_word, INT_MAX, MUTEX_SLEEPER_BITSET, pshared);
	return 0;
}
