/* libsync condition variable: futex sequence counter, broadcast requeues
 * waiters onto the mutex. See sync_cond_wait(3). */
#ifndef SYNC_COND_H
#define SYNC_COND_H

#include <sync/common.h>
#include <sync/mutex.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layout is ABI (32 bytes on LP64). Fields are private: use the functions. */
typedef struct sync_cond {
	SYNC_ATOMIC_FIELD(uint64_t) word;     /* seq (futex word) << 32 | sleepers */
	SYNC_ATOMIC_FIELD(uint32_t) waiters;  /* threads inside a wait */
	uint32_t flags;                       /* SYNC_PSHARED */
	SYNC_ATOMIC_FIELD(uint32_t) wait_seq; /* seq seen by the latest waiter */
	SYNC_ATOMIC_FIELD(uint32_t) spin;     /* CPU of the last signal + 1: no spin there */
	SYNC_ATOMIC_FIELD(uintptr_t) mutex;   /* mutex of the current waiters (private only) */
} sync_cond_t;

#define SYNC_COND_INITIALIZER { 0, 0, 0, 0, 0, 0 }

SYNC_API int sync_cond_init(sync_cond_t *c, int flags);
SYNC_API int sync_cond_destroy(sync_cond_t *c);
SYNC_API int sync_cond_wait(sync_cond_t *c, sync_mutex_t *m);
SYNC_API int sync_cond_timedwait(sync_cond_t *c, sync_mutex_t *m,
				 const struct timespec *abstime);
SYNC_API int sync_cond_signal(sync_cond_t *c);
SYNC_API int sync_cond_broadcast(sync_cond_t *c);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_COND_H */
