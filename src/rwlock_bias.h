/* Reader bias of private rwlocks: the visible-reader slots, their owners
 * and the writers' revocation (BRAVO, Dice and Kogan, USENIX ATC 2019, with
 * membarrier(2) as the writer's half of the fence; see rwlock_bias.c). */
#ifndef SYNC_SRC_RWLOCK_BIAS_H
#define SYNC_SRC_RWLOCK_BIAS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <sync/rwlock.h>

/* Whether new private locks may be biased in this process: membarrier's
 * private expedited command is registered, no race detector or SYNC_CHECK
 * runs (they see read holds through the library's unbiased paths), and
 * SYNC_RWLOCK_NO_BIAS=1 is not set. Decided once. */
bool bias_usable(void);

/* The calling thread's slot, claimed on first use: a real one, or one that
 * is always busy (no slot left, or bias not usable). */
SYNC_ATOMIC_FIELD(uintptr_t) *bias_slot(void);

/* Waits until no thread reads l through its slot, after the writer that
 * holds l cleared its bias: one membarrier, then a look at every slot in
 * use. EBUSY (try) or ETIMEDOUT (the deadline passed) if a reader stays. */
int bias_wait_for_readers(const sync_rwlock_t *l, bool try,
			  const struct timespec *abstime);

/* Whether some thread's slot names l (destroy's EBUSY). */
bool bias_read_held(const sync_rwlock_t *l);

#endif /* SYNC_SRC_RWLOCK_BIAS_H */
