/* CPU relax and bounded spin-then-yield, shared by every spinning wait. */
#ifndef SYNC_SRC_BACKOFF_H
#define SYNC_SRC_BACKOFF_H

#include <sched.h>
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

#endif /* SYNC_SRC_BACKOFF_H */
