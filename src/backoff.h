/* CPU relax and bounded spin-then-yield, shared by every spinning wait. */
#ifndef SYNC_SRC_BACKOFF_H
#define SYNC_SRC_BACKOFF_H

#include <sched.h>
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

#endif /* SYNC_SRC_BACKOFF_H */
