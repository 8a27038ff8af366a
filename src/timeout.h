/* Validation of the absolute CLOCK_MONOTONIC deadlines taken by timed calls. */
#ifndef SYNC_SRC_TIMEOUT_H
#define SYNC_SRC_TIMEOUT_H

#include <stdbool.h>
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

#endif /* SYNC_SRC_TIMEOUT_H */
