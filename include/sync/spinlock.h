/* libsync spinlocks: TTAS with exponential backoff, FIFO ticket lock and MCS
 * queue lock. All three spin a bounded time and then yield the CPU, so they
 * keep working when threads outnumber cores. See sync_spinlock_lock(3),
 * sync_ticketlock_lock(3), sync_mcslock_lock(3). */
#ifndef SYNC_SPINLOCK_H
#define SYNC_SPINLOCK_H

#include <stdint.h>
#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layouts are ABI. Fields are private: use the functions. */
typedef struct sync_spinlock {
	SYNC_ATOMIC_FIELD(uint32_t) locked;  /* 0 free, 1 held */
} sync_spinlock_t;

typedef struct sync_ticketlock {
	SYNC_ATOMIC_FIELD(uint32_t) next;    /* next ticket to hand out */
	SYNC_ATOMIC_FIELD(uint32_t) serving; /* ticket that holds the lock */
} sync_ticketlock_t;

/* Queue links are stored as byte offsets from the lock itself (0 = none), so
 * an MCS lock and its nodes work in shared memory mapped at different
 * addresses, as long as both live in the same mapping. */
typedef struct sync_mcslock {
	SYNC_ATOMIC_FIELD(intptr_t) tail;    /* offset of the last node, 0 if free */
} sync_mcslock_t;

typedef struct sync_mcsnode {
	SYNC_ATOMIC_FIELD(intptr_t) next;    /* offset of the successor, 0 if none */
	SYNC_ATOMIC_FIELD(uint32_t) wait;    /* 1 while the owner must keep waiting */
} sync_mcsnode_t;

#define SYNC_SPINLOCK_INITIALIZER   { 0 }
#define SYNC_TICKETLOCK_INITIALIZER { 0, 0 }
#define SYNC_MCSLOCK_INITIALIZER    { 0 }

SYNC_API int  sync_spinlock_init(sync_spinlock_t *l);
SYNC_API void sync_spinlock_lock(sync_spinlock_t *l);
SYNC_API int  sync_spinlock_trylock(sync_spinlock_t *l);
SYNC_API void sync_spinlock_unlock(sync_spinlock_t *l);

SYNC_API int  sync_ticketlock_init(sync_ticketlock_t *l);
SYNC_API void sync_ticketlock_lock(sync_ticketlock_t *l);
SYNC_API int  sync_ticketlock_trylock(sync_ticketlock_t *l);
SYNC_API void sync_ticketlock_unlock(sync_ticketlock_t *l);

SYNC_API int  sync_mcslock_init(sync_mcslock_t *l);
SYNC_API void sync_mcslock_lock(sync_mcslock_t *l, sync_mcsnode_t *node);
SYNC_API int  sync_mcslock_trylock(sync_mcslock_t *l, sync_mcsnode_t *node);
SYNC_API void sync_mcslock_unlock(sync_mcslock_t *l, sync_mcsnode_t *node);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_SPINLOCK_H */
