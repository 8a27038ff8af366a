/* libsync debugging aids: a lock-order (deadlock) and misuse checker and a
 * contention profiler, built into the library, off by default and one
 * predictable branch per hook when off. See libsync_debug(7). */
#ifndef SYNC_DEBUG_H
#define SYNC_DEBUG_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* As SYNC_CHECK in the environment: "deadlock" turns lock-order and misuse
 * checking on, "deadlock,abort" also aborts after a report, "" turns it
 * off. 0, or EINVAL (NULL, an unknown word, "abort" without "deadlock"):
 * nothing changes. Takes effect for locks taken after the call. */
SYNC_API int sync_check_set(const char *spec);

/* Writes the SYNC_PROFILE table (the objects waited for longest first) to
 * fd now; one line saying so when profiling is off. Async-signal-safe. */
SYNC_API void sync_profile_print(int fd);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_DEBUG_H */
