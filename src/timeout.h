/* Validation of the absolute CLOCK_MONOTONIC deadlines taken by timed calls,
 * and the clock and short naps of the waits that watch for vanished waiters. */
#ifndef SYNC_SRC_TIMEOUT_H
#define SYNC_SRC_TIMEOUT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* A deadline is well-formed when it exists and 0 <= tv_nsec < 1e9. */
static inline bool timeout_valid(const struct timespec *abstime)
{
	return abstime && abstime->tv_nsec >= 0 && abstime->tv_nsec < 1000000000L;
}

/* Negative seconds are a valid deadline long past; the kernel rejects them,
 * so callers treat them as expired without asking it. */
static inline bool timeout_before_epoch(const struct timespec *abstime)
{
	return abstime && abstime->tv_sec < 0;
}

/* True once the CLOCK_MONOTONIC deadline abstime (NULL: none) has passed:
 * a timed wait looks before it spins, and while it spins, so that a
 * deadline already past or a few microseconds away is kept. */
static inline bool timeout_passed(const struct timespec *abstime)
{
	if (!abstime)
		return false;
	if (timeout_before_epoch(abstime))
		return true;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > abstime->tv_sec ||
	       (now.tv_sec == abstime->tv_sec && now.tv_nsec >= abstime->tv_nsec);
}

/* CLOCK_MONOTONIC now, in nanoseconds. */
static inline uint64_t timeout_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* Sleeps about ns (less than a second), errno untouched: a signal ends the
 * nap early, and nanosleep(2) would report it through errno. */
static inline void timeout_nap(long ns)
{
	int saved = errno;
	nanosleep(&(struct timespec){ 0, ns }, NULL);
	errno = saved;
}

#endif /* SYNC_SRC_TIMEOUT_H */
