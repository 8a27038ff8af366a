/* libsync lock-free MPMC queue: FIFO of pointers, unbounded (a linked list
 * of fetch-and-add array segments reclaimed through sync_epoch) or bounded
 * (Nikolaev's SCQ ring, memory fixed at creation), with close.
 * See sync_queue_push(3). */
#ifndef SYNC_QUEUE_H
#define SYNC_QUEUE_H

#include <stddef.h>

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sync_queue sync_queue_t; /* opaque */

SYNC_API sync_queue_t *sync_queue_create(void);
SYNC_API void sync_queue_destroy(sync_queue_t *q);
SYNC_API int sync_queue_push(sync_queue_t *q, void *item);
SYNC_API int sync_queue_pop(sync_queue_t *q, void **item);
SYNC_API int sync_queue_pop_wait(sync_queue_t *q, void **item,
				 const struct timespec *abstime);
SYNC_API size_t sync_queue_size(sync_queue_t *q);
SYNC_API sync_queue_t *sync_queue_create_bounded(size_t capacity);
SYNC_API int sync_queue_push_wait(sync_queue_t *q, void *item,
				  const struct timespec *abstime);
SYNC_API void sync_queue_close(sync_queue_t *q);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_QUEUE_H */
