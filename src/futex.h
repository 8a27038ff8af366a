/* Thin futex(2) wrappers: every blocking wait in libsync goes through here. */
#ifndef SYNC_SRC_FUTEX_H
#define SYNC_SRC_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
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

/* Sleeps while *word == expected, until woken with a matching bitset or the
 * absolute CLOCK_MONOTONIC deadline (NULL: none). Returns 0 (woken, maybe
 * spuriously), EAGAIN (value changed), EINTR or ETIMEDOUT. */
static inline int futex_wait(_Atomic uint32_t *word, uint32_t expected,
			     const struct timespec *abstime, uint32_t bitset,
			     bool pshared)
{
	long r = syscall(SYS_futex, (uint32_t *)word,
			 futex_op(pshared, FUTEX_WAIT_BITSET), expected,
			 abstime, NULL, bitset);
	return r == 0 ? 0 : errno;
}

/* Wakes up to n waiters whose bitset intersects bitset; returns how many. */
static inline int futex_wake(_Atomic uint32_t *word, int n, uint32_t bitset,
			     bool pshared)
{
	long r = syscall(SYS_futex, (uint32_t *)word,
			 futex_op(pshared, FUTEX_WAKE_BITSET), n, NULL, NULL,
			 bitset);
	return r < 0 ? 0 : (int)r;
}

/* Wakes n_wake waiters of `from` and moves up to n_move others onto `to`,
 * if *from still equals expected (else EAGAIN). Both words must be private,
 * or both shared. Returns 0 or an errno value. */
static inline int futex_cmp_requeue(_Atomic uint32_t *from, uint32_t expected,
				    int n_wake, int n_move,
				    _Atomic uint32_t *to, bool pshared)
{
	long r = syscall(SYS_futex, (uint32_t *)from,
			 futex_op(pshared, FUTEX_CMP_REQUEUE), n_wake,
			 (void *)(long)n_move, (uint32_t *)to, expected);
	return r < 0 ? errno : 0;
}

#endif /* SYNC_SRC_FUTEX_H */
