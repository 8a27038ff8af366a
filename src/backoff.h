/* CPU relax and bounded spin-then-yield, shared by every spinning wait. */
#ifndef SYNC_SRC_BACKOFF_H
#define SYNC_SRC_BACKOFF_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Pause iterations a waiter may spend before it starts yielding the CPU.
 * About 1-10 us on current x86 (a pause is 5-40 ns): enough for a short critical
 * section, short enough that a preempted holder is not starved of CPU. */
#define SPIN_BEFORE_YIELD 256u

/* Budget of a waiter that cannot get the lock before others ahead of it in
 * a FIFO queue: short, so that with more threads than cores the CPU goes
 * quickly to whoever is next. */
#define SPIN_BEFORE_YIELD_QUEUED 8u

/* Largest exponential backoff step, in pause iterations. */
#define BACKOFF_MAX 256u

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static inline void cpu_relax_n(uint32_t n)
{
	while (n--)
		cpu_relax();
}

/* A waiter's budget: spin SPIN_BEFORE_YIELD pauses in total, then yield
 * once per call so that a preempted holder or next-in-line gets to run. */
struct spin_budget {
	uint32_t spent;
};

#define SPIN_BUDGET_INIT { 0 }

/* Waits about `pauses` pause iterations, or yields once `limit` is spent. */
static inline void spin_budget_wait_upto(struct spin_budget *b, uint32_t pauses,
					 uint32_t limit)
{
	if (b->spent < limit) {
		cpu_relax_n(pauses);
		b->spent += pauses;
	} else {
		sched_yield();
	}
}

/* Waits about `pauses` pause iterations, or yields once the budget is spent. */
static inline void spin_budget_wait(struct spin_budget *b, uint32_t pauses)
{
	spin_budget_wait_upto(b, pauses, SPIN_BEFORE_YIELD);
}

/* Exponential backoff: waits `*step` pauses and doubles it up to BACKOFF_MAX. */
static inline void backoff_exp(struct spin_budget *b, uint32_t *step)
{
	spin_budget_wait(b, *step);
	if (*step < BACKOFF_MAX)
		*step <<= 1;
}

/* Bounded polling before a futex sleep (sem, rwlock): the caller polls its
 * condition after each spin_poll() until it returns false, then sleeps.
 * The gap between polls grows exponentially up to SPIN_POLL_STEP_MAX. */
#define SPIN_POLL_STEP_MAX 64u

/* Default budget: a few microseconds, about one hand-off between two
 * running threads, far less than a sleep and wake-up through the kernel. */
#define SPIN_POLL_PAUSES 1024u

struct spin_poll {
	uint32_t spent;
	uint32_t step;
};

#define SPIN_POLL_INIT { 0, 1 }

/* Waits before the next poll; false once `budget` pauses are spent. */
static inline bool spin_poll(struct spin_poll *p, uint32_t budget)
{
	if (p->spent >= budget)
		return false;
	cpu_relax_n(p->step);
	p->spent += p->step;
	if (p->step < SPIN_POLL_STEP_MAX)
		p->step <<= 1;
	return true;
}

/* Spin only while the thread that will let the waiter go may be running:
 * a poster, signaller or write holder records the CPU it runs on in the
 * object (where), and a waiter on that same CPU does not spin, since that
 * thread cannot run while its waiter spins there (two processes on one CPU,
 * or a preempted thread): it yields the CPU (SPIN_YIELDS times at most, so
 * that a runnable poster there posts), then sleeps. Elsewhere the waiter
 * spins as before. The record is
 * one 32-bit word, the CPU plus one (0: none yet), stored only when it
 * changes, with relaxed single loads and stores: any value is some CPU's or
 * none, so a process killed mid-update leaves nothing wrong, and a stale
 * one costs at most one spin or one sleep. (The CPU is glibc's
 * sched_getcpu, read from the rseq area: a load, no system call.) */
#ifndef _GNU_SOURCE
int sched_getcpu(void); /* glibc's; <sched.h> declares it for _GNU_SOURCE only */
#endif

static inline uint32_t spin_cpu_tag(void)
{
	int saved = errno; /* the callers leave errno as they found it */
	int cpu = sched_getcpu();
	if (cpu >= 0)
		return (uint32_t)cpu + 1;
	errno = saved;
	return 0;
}

/* Yields a waiter on its poster's CPU makes before it sleeps. */
#define SPIN_YIELDS 2u

/* The caller will let waiters go: records its CPU. */
static inline void spin_cpu_note(_Atomic uint32_t *where)
{
	uint32_t tag = spin_cpu_tag();
	/* relaxed: a hint (see above), ordered with nothing */
	if (atomic_load_explicit(where, memory_order_relaxed) != tag)
		atomic_store_explicit(where, tag, memory_order_relaxed);
}

/* Whether a waiter may spin: not on the CPU its poster was last seen on. */
static inline bool spin_cpu_may_pay(_Atomic uint32_t *where)
{
	/* relaxed: as above */
	uint32_t tag = atomic_load_explicit(where, memory_order_relaxed);
	return tag == 0 || tag != spin_cpu_tag();
}

/* Spin lengths learned per object, for a wait that spins before it sleeps
 * on a thread whose CPU it cannot know (the mutex's holder: recording it
 * would cost every uncontended lock): spin only where spinning has paid
 * lately, as glibc's adaptive mutex learns its spin count.
 * Every spin that ends one way or the other is noted: one that got what it
 * waited for doubles the budget (up to the caller's largest), one that spent
 * it all halves it. After SPIN_LEARN_OFF halvings in a row the waiter sleeps
 * at once (on one CPU, the thread that would post or unlock cannot run while
 * its waiter spins); then every 2^interval-th wait probes with a short spin,
 * and each failed probe doubles the interval (up to 2^SPIN_LEARN_INTERVAL_MAX
 * waits), so that spinning comes back when it pays again and costs a few
 * microseconds per 2^SPIN_LEARN_INTERVAL_MAX waits while it does not.
 *
 * The state is one 32-bit word in the object, 0 in a fresh one (so that the
 * static initializers are unchanged): bits 0-3 `down` (halvings of the
 * largest budget; SPIN_LEARN_OFF: sleep at once), bits 4-7 `interval`, bits
 * 8-23 `skip` (waits left before the next probe while off). It is a hint:
 * read and written with relaxed single loads and stores, never part of a
 * decision that needs another thread's. Any 32-bit value decodes to a valid
 * state, so a lost update between two waiters, or a process killed between
 * its load and its store of a process-shared object's word, leaves a state
 * some waiter could have written. */
#define SPIN_LEARN_OFF          6u /* halvings before waiters stop spinning */
#define SPIN_LEARN_PROBE_SHIFT  3u /* a probe spins largest >> 3 pauses */
#define SPIN_LEARN_INTERVAL_MAX 8u /* at most 256 waits between probes */

#define SPIN_LEARN_DOWN(st)     ((st) & 0xfu)
#define SPIN_LEARN_INTERVAL(st) (((st) >> 4) & 0xfu)
#define SPIN_LEARN_SKIP(st)     (((st) >> 8) & 0xffffu)

static inline uint32_t spin_learn_pack(uint32_t down, uint32_t interval, uint32_t skip)
{
	return down | interval << 4 | skip << 8;
}

/* The largest budget halved `down` times; 0 (sleep at once) from
 * SPIN_LEARN_OFF on. */
static inline uint32_t spin_learn_level(uint32_t largest, uint32_t down)
{
	return down >= SPIN_LEARN_OFF ? 0 : largest >> down;
}

/* Pause iterations the next wait may spin (at most `largest`; 0: sleep at
 * once). While off, counts the wait towards the next probe. */
static inline uint32_t spin_learn_budget(_Atomic uint32_t *learned, uint32_t largest)
{
	/* relaxed: a hint (see above), ordered with nothing */
	uint32_t st = atomic_load_explicit(learned, memory_order_relaxed);
	uint32_t down = SPIN_LEARN_DOWN(st);
	if (down < SPIN_LEARN_OFF)
		return largest >> down;
	uint32_t skip = SPIN_LEARN_SKIP(st);
	if (skip == 0)
		return largest >> SPIN_LEARN_PROBE_SHIFT; /* probe */
	/* relaxed: as above */
	atomic_store_explicit(learned,
			      spin_learn_pack(down, SPIN_LEARN_INTERVAL(st), skip - 1),
			      memory_order_relaxed);
	return 0;
}

/* Notes how a spin ended: `took` (it got what it waited for) or not (it
 * spent its whole budget). A spin cut short for another reason (a
 * deadline, sleepers ahead of it, a hand-off) teaches nothing: do not
 * note it. */
static inline void spin_learn_note(_Atomic uint32_t *learned, bool took)
{
	/* relaxed: a hint (see above), ordered with nothing */
	uint32_t st = atomic_load_explicit(learned, memory_order_relaxed);
	uint32_t down = SPIN_LEARN_DOWN(st), interval = SPIN_LEARN_INTERVAL(st);
	uint32_t want;
	if (interval > SPIN_LEARN_INTERVAL_MAX)
		interval = SPIN_LEARN_INTERVAL_MAX;
	if (took && down >= SPIN_LEARN_OFF) /* a probe paid: spin that long again */
		want = spin_learn_pack(SPIN_LEARN_PROBE_SHIFT, 0, 0);
	else if (took)
		want = spin_learn_pack(down ? down - 1 : 0, interval, 0);
	else if (down >= SPIN_LEARN_OFF - 1) { /* off now, or a probe failed */
		if (down >= SPIN_LEARN_OFF && interval < SPIN_LEARN_INTERVAL_MAX)
			interval++;
		want = spin_learn_pack(SPIN_LEARN_OFF, interval, (1u << interval) - 1);
	} else
		want = spin_learn_pack(down + 1, interval, 0);
	if (want != st) /* relaxed: as above */
		atomic_store_explicit(learned, want, memory_order_relaxed);
}

#endif /* SYNC_SRC_BACKOFF_H */
