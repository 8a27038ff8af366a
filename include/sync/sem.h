/* libsync counting semaphore: one 64-bit word holding the value and the
 * number of sleepers, short spin before the futex. See sync_sem_wait(3). */
#ifndef SYNC_SEM_H
#define SYNC_SEM_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest value a semaphore can hold (2^31 - 1, so it fits getvalue's int). */
#define SYNC_SEM_VALUE_MAX 2147483647u

/* Layout is ABI (16 bytes). Fields are private: use the functions. */
typedef struct sync_sem {
	/* low 32 bits: value (the futex word); high 32 bits: sleeping waiters */
	SYNC_ATOMIC_FIELD(uint64_t) word;
	uint32_t flags; /* SYNC_PSHARED */
	SYNC_ATOMIC_FIELD(uint32_t) spin; /* CPU of the last post + 1: no spin there */
} sync_sem_t;

/* A private semaphore holding n (0 <= n <= SYNC_SEM_VALUE_MAX). */
#define SYNC_SEM_INITIALIZER(n) { (uint64_t)(n), 0, 0 }

SYNC_API int sync_sem_init(sync_sem_t *s, unsigned value, int flags);
SYNC_API int sync_sem_destroy(sync_sem_t *s);
SYNC_API int sync_sem_wait(sync_sem_t *s);
SYNC_API int sync_sem_trywait(sync_sem_t *s);
SYNC_API int sync_sem_timedwait(sync_sem_t *s, const struct timespec *abstime);
SYNC_API int sync_sem_post(sync_sem_t *s);
SYNC_API int sync_sem_getvalue(sync_sem_t *s, int *value);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_SEM_H */
