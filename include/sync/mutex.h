/* libsync mutex: futex-based lock with bounded spinning and anti-starvation
 * hand-off. See sync_mutex_lock(3). */
#ifndef SYNC_MUTEX_H
#define SYNC_MUTEX_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layout is ABI (16 bytes). Fields are private: use the functions. */
typedef struct sync_mutex {
	SYNC_ATOMIC_FIELD(uint32_t) state; /* LOCKED, WAITERS, HANDOFF; spinner's or heir's token */
	SYNC_ATOMIC_FIELD(uint32_t) owner; /* holder's thread id, ERRORCHECK only */
	uint32_t flags;                    /* SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK */
	SYNC_ATOMIC_FIELD(uint32_t) spinner; /* token of the one spinning waiter */
} sync_mutex_t;

#define SYNC_MUTEX_INITIALIZER { 0, 0, 0, 0 }

SYNC_API int sync_mutex_init(sync_mutex_t *m, int flags);
SYNC_API int sync_mutex_destroy(sync_mutex_t *m);
SYNC_API int sync_mutex_lock(sync_mutex_t *m);
SYNC_API int sync_mutex_trylock(sync_mutex_t *m);
SYNC_API int sync_mutex_timedlock(sync_mutex_t *m, const struct timespec *abstime);
SYNC_API int sync_mutex_unlock(sync_mutex_t *m);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_MUTEX_H */
