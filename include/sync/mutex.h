/* libsync mutex: futex-based lock with bounded spinning and anti-starvation
 * hand-off. See sync_mutex_lock(3). */
#ifndef SYNC_MUTEX_H
#define SYNC_MUTEX_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layout is ABI (40 bytes on 64-bit targets). Fields are private: use the
 * functions. A robust mutex keeps the kernel's robust-futex protocol: state
 * holds the owner's thread id, and robust_prev/robust_next link it into the
 * owner's robust-futex list in the shape glibc gives its own mutexes (32
 * bytes after the lock word, as glibc's futex_offset says). */
typedef struct sync_mutex {
	SYNC_ATOMIC_FIELD(uint32_t) state; /* LOCKED, WAITERS, HANDOFF, token; robust: owner tid */
	SYNC_ATOMIC_FIELD(uint32_t) owner; /* holder's thread id (ERRORCHECK); robust: consistency */
	uint32_t flags;                    /* SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK | SYNC_MUTEX_ROBUST */
	SYNC_ATOMIC_FIELD(uint32_t) spinner; /* token of the one spinning waiter */
	uint32_t pidns;                    /* robust shared: its PID namespace */
	SYNC_ATOMIC_FIELD(uint32_t) spin;  /* spin length learned from recent spins */
	void *robust_prev;                 /* robust: the owner's robust-list links */
	void *robust_next;
} sync_mutex_t;

#define SYNC_MUTEX_INITIALIZER { 0, 0, 0, 0, 0, 0, 0, 0 }
/* A robust mutex private to the process (the state word's "free, robust"
 * value is 0x3ffffffe, a thread id no kernel hands out). */
#define SYNC_MUTEX_ROBUST_INITIALIZER \
	{ 0x3ffffffeu, 0, SYNC_MUTEX_ROBUST, 0, 0, 0, 0, 0 }

SYNC_API int sync_mutex_init(sync_mutex_t *m, int flags);
SYNC_API int sync_mutex_destroy(sync_mutex_t *m);
SYNC_API int sync_mutex_lock(sync_mutex_t *m);
SYNC_API int sync_mutex_trylock(sync_mutex_t *m);
SYNC_API int sync_mutex_timedlock(sync_mutex_t *m, const struct timespec *abstime);
SYNC_API int sync_mutex_unlock(sync_mutex_t *m);
SYNC_API int sync_mutex_consistent(sync_mutex_t *m);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_MUTEX_H */
