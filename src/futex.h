/* Thin futex(2) wrappers: every blocking wait in libsync goes through here. */
#ifndef SYNC_SRC_FUTEX_H
#define SYNC_SRC_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int futex_op(bool pshared, int op)
{
	return pshared ? op : (op | FUTEX_PRIVATE_FLAG);
}

/* The low or high 32-bit half of a 64-bit atomic word, as a futex word
 * (objects that keep a futex value and a count in one word, so that one
 * read-modify-write sees both). */
static inline _Atomic uint32_t *futex_half(_Atomic uint64_t *word, bool high)
{
	char *p = (char *)word;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	high = !high;
#endif
	return (_Atomic uint32_t *)(p + (high ? 4 : 0));
}

/* syscall(2) reports failure through errno; the callers' contract is to
 * leave errno as they found it (API.md), so each wrapper restores it and
 * returns the error instead: the result, or -errno. */
static inline long futex_syscall(uint32_t *word, int op, uint32_t val,
				 const void *timeout_or_n, uint32_t *word2,
				 uint32_t val3)
{
	int saved = errno;
	long r = syscall(SYS_futex, word, op, val, timeout_or_n, word2, val3);
	if (r < 0)
		r = -errno;
	errno = saved;
	return r;
}

/* A process-shared sleeper looks again at least this often. The kernel may
 * hand a wake-up to a process that SIGKILL is already tearing down: it never
 * runs again, and the wake-up is lost to the others. Looking again bounds
 * what such a death costs them to this delay instead of forever. */
#define FUTEX_PSHARED_RECHECK_NS 10000000L /* 10 ms */

/* The earlier of abstime (NULL: none) and now + FUTEX_PSHARED_RECHECK_NS,
 * in *soon; true if that is the recheck, not the caller's deadline. */
static inline bool futex_recheck_deadline(const struct timespec *abstime,
					  struct timespec *soon)
{
	clock_gettime(CLOCK_MONOTONIC, soon);
	soon->tv_nsec += FUTEX_PSHARED_RECHECK_NS;
	if (soon->tv_nsec >= 1000000000L) {
		soon->tv_sec++;
		soon->tv_nsec -= 1000000000L;
	}
	if (abstime && (abstime->tv_sec < soon->tv_sec ||
			(abstime->tv_sec == soon->tv_sec &&
			 abstime->tv_nsec <= soon->tv_nsec))) {
		*soon = *abstime;
		return false;
	}
	return true;
}

/* Sleeps while *word == expected, until woken with a matching bitset or the
 * absolute CLOCK_MONOTONIC deadline (NULL: none). Returns 0 (woken, maybe
 * spuriously), EAGAIN (value changed), EINTR (a signal, or a process-shared
 * sleeper's periodic second look) or ETIMEDOUT (at abstime only). */
static inline int futex_wait(_Atomic uint32_t *word, uint32_t expected,
			     const struct timespec *abstime, uint32_t bitset,
			     bool pshared)
{
	struct timespec soon;
	bool recheck = pshared && futex_recheck_deadline(abstime, &soon);
	long r = futex_syscall((uint32_t *)word,
			       futex_op(pshared, FUTEX_WAIT_BITSET), expected,
			       pshared ? &soon : abstime, NULL, bitset);
	if (r == -ETIMEDOUT && recheck)
		return EINTR;
	return (int)-r;
}

/* futex_wait as a cancellation point (POSIX's cond, sem and queue waits):
 * asynchronous cancellation is enabled for the sleep alone, as glibc's
 * LIBC_CANCEL_ASYNC did, so a pending or arriving pthread_cancel acts there.
 * The cancellation may land just after a wake-up was consumed: the caller's
 * cleanup handler must pass on any wake-up it may have taken. */
static inline int futex_wait_cancelable(_Atomic uint32_t *word, uint32_t expected,
					const struct timespec *abstime,
					uint32_t bitset, bool pshared)
{
	int type;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &type);
	int r = futex_wait(word, expected, abstime, bitset, pshared);
	pthread_setcanceltype(type, NULL);
	return r;
}

/* Wakes up to n waiters whose bitset intersects bitset; returns how many. */
static inline int futex_wake(_Atomic uint32_t *word, int n, uint32_t bitset,
			     bool pshared)
{
	long r = futex_syscall((uint32_t *)word,
			       futex_op(pshared, FUTEX_WAKE_BITSET), (uint32_t)n,
			       NULL, NULL, bitset);
	return r < 0 ? 0 : (int)r;
}

/* Wakes n_wake waiters of `from` and moves up to n_move others onto `to`,
 * if *from still equals expected (else EAGAIN). Both words must be private,
 * or both shared. Returns 0 or an errno value. */
static inline int futex_cmp_requeue(_Atomic uint32_t *from, uint32_t expected,
				    int n_wake, int n_move,
				    _Atomic uint32_t *to, bool pshared)
{
	long r = futex_syscall((uint32_t *)from,
			       futex_op(pshared, FUTEX_CMP_REQUEUE), (uint32_t)n_wake,
			       (void *)(long)n_move, (uint32_t *)to, expected);
	return r < 0 ? (int)-r : 0;
}

/* How many threads sleep in the kernel on *word, if it still equals
 * expected (else -1): FUTEX_CMP_REQUEUE of the word onto itself wakes
 * none, moves them all to where they are, and returns their number. The
 * waiters' own counts cannot tell a sleeper from a waiter that was killed. */
static inline long futex_sleepers(_Atomic uint32_t *word, uint32_t expected,
				  bool pshared)
{
	long r = futex_syscall((uint32_t *)word, futex_op(pshared, FUTEX_CMP_REQUEUE),
			       0, (void *)(long)INT_MAX, (uint32_t *)word, expected);
	return r < 0 ? -1 : r;
}

#endif /* SYNC_SRC_FUTEX_H */
