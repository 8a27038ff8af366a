/* libsync epoch-based reclamation: one process-wide domain, read-side
 * sections without atomic read-modify-writes or fences (membarrier(2) on the
 * grace-period side). See sync_epoch_enter(3). */
#ifndef SYNC_EPOCH_H
#define SYNC_EPOCH_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Begins a read-side section of the calling thread (nests). Objects reached
 * inside it stay allocated until the outermost sync_epoch_exit. The first
 * call in a thread registers it with the domain. */
SYNC_API void sync_epoch_enter(void);
SYNC_API void sync_epoch_exit(void);

/* Calls fn(p) once no read-side section that could have seen p is still
 * running: from a later sync_epoch_retire, synchronize or barrier of any
 * thread, or at the latest from sync_epoch_barrier. Never fails. */
SYNC_API void sync_epoch_retire(void *p, void (*fn)(void *));

/* Waits until every read-side section running at the call has ended. Must
 * not be called inside a section (that would wait for itself: it aborts). */
SYNC_API void sync_epoch_synchronize(void);

/* Runs every callback retired so far, by any thread, before it returns.
 * Not inside a section either. */
SYNC_API void sync_epoch_barrier(void);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_EPOCH_H */
