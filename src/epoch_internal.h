/* The epoch domain's entry for the library's own structures (queue, map). */
#ifndef SYNC_SRC_EPOCH_INTERNAL_H
#define SYNC_SRC_EPOCH_INTERNAL_H

/* sync_epoch_retire(p, fn), fn not NULL, that never waits: not for a grace
 * period, however many callbacks are pending, nor for memory; when no
 * memory is left for the callback, even after running what is safe, p
 * leaks. For the queue's and map's operations, which promise not to wait
 * for readers; may be called inside or outside a section. */
void epoch_retire_nowait(void *p, void (*fn)(void *));

#endif /* SYNC_SRC_EPOCH_INTERNAL_H */
