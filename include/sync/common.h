/* libsync: definitions shared by every primitive (version, flags, deadlines). */
#ifndef SYNC_COMMON_H
#define SYNC_COMMON_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYNC_VERSION_MAJOR 0
#define SYNC_VERSION_MINOR 5
#define SYNC_VERSION_PATCH 0

/* Flags for the *_init functions; unknown bits are rejected with EINVAL. */
#define SYNC_PSHARED              0x1 /* usable between processes (MAP_SHARED) */
#define SYNC_MUTEX_ERRORCHECK     0x2 /* mutex: track the owner, report misuse */
#define SYNC_RWLOCK_PREFER_READER 0x4 /* rwlock: readers may pass waiting writers */
#define SYNC_MUTEX_ROBUST         0x8 /* mutex: an owner that dies gives EOWNERDEAD */

/* Public objects keep their atomic words in these fields. C++ code only ever
 * passes pointers to them, so it sees the plain type of the same size and
 * alignment; the library itself always accesses them atomically. */
#ifdef __cplusplus
#define SYNC_ATOMIC_FIELD(type) type
#else
#define SYNC_ATOMIC_FIELD(type) _Atomic type
#endif

#if defined(__GNUC__)
#define SYNC_API __attribute__((visibility("default")))
#else
#define SYNC_API
#endif

/* 1 where the headers' inline fast paths (rwlock read lock and unlock,
 * epoch enter and exit) are compiled into the caller. Not in a program
 * compiled with ThreadSanitizer (gcc's __SANITIZE_THREAD__, clang's
 * __has_feature(thread_sanitizer)): there the calls go to the library,
 * which tells the tool what they synchronize (libsync(7), data-race
 * detectors). Define SYNC_NO_INLINE to call the library everywhere. */
#if defined(__SANITIZE_THREAD__)
#define SYNC_IMPL_TSAN_COMPILE 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SYNC_IMPL_TSAN_COMPILE 1
#endif
#endif
#if defined(__GNUC__) && !defined(SYNC_NO_INLINE) && !defined(SYNC_IMPL_TSAN_COMPILE)
#define SYNC_IMPL_INLINE 1
#else
#define SYNC_IMPL_INLINE 0
#endif

#ifdef __cplusplus
#define SYNC_IMPL_THREAD_LOCAL thread_local
#else
#define SYNC_IMPL_THREAD_LOCAL _Thread_local
#endif

/* "MAJOR.MINOR.PATCH" of the library actually loaded. */
SYNC_API const char *sync_version(void);

/* now + ns on CLOCK_MONOTONIC, normalised (0 <= tv_nsec < 1e9); saturates
 * instead of overflowing. Use it to build the abstime of the timed calls. */
SYNC_API struct timespec sync_deadline(uint64_t ns);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_COMMON_H */
