/* libsync reader-writer lock: one 64-bit state word (readers, writer,
 * waiting writers), readers and writers sleep on separate futexes.
 * See sync_rwlock_rdlock(3). */
#ifndef SYNC_RWLOCK_H
#define SYNC_RWLOCK_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most read locks held at once; one more read lock returns EAGAIN. */
#define SYNC_RWLOCK_READERS_MAX 16777215u /* 2^24 - 1 */

/* Layout is ABI (32 bytes). Fields are private: use the functions. */
typedef struct sync_rwlock {
	SYNC_ATOMIC_FIELD(uint64_t) state;     /* readers | WRITER | writers waiting */
	SYNC_ATOMIC_FIELD(uint32_t) writer;    /* thread id of the write holder */
	SYNC_ATOMIC_FIELD(uint32_t) rseq;      /* readers sleep on this futex */
	SYNC_ATOMIC_FIELD(uint32_t) wseq;      /* writers sleep on this futex */
	SYNC_ATOMIC_FIELD(uint32_t) rsleepers; /* readers asleep or about to be */
	uint32_t flags;                        /* SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER */
	uint32_t reserved;
} sync_rwlock_t;

#define SYNC_RWLOCK_INITIALIZER { 0, 0, 0, 0, 0, 0, 0 }

SYNC_API int sync_rwlock_init(sync_rwlock_t *l, int flags);
SYNC_API int sync_rwlock_destroy(sync_rwlock_t *l);
SYNC_API int sync_rwlock_rdlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_tryrdlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_timedrdlock(sync_rwlock_t *l, const struct timespec *abstime);
SYNC_API int sync_rwlock_wrlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_trywrlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_timedwrlock(sync_rwlock_t *l, const struct timespec *abstime);
SYNC_API int sync_rwlock_rdunlock(sync_rwlock_t *l);
SYNC_API int sync_rwlock_wrunlock(sync_rwlock_t *l);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_RWLOCK_H */
