/* mutex_robust.pml with a barger: thread 1 locks twice, so that a timed
 * locker woken by its unlock can find the lock taken again, without
 * FUTEX_WAITERS, just as its deadline passes. It must give up only with
 * the bit back on the holder's word (src/mutex_robust.c, take_or_sleep). */
/* SPIN: -DBARGER */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: TIMEOUT_BEFORE_MARK a woken timed locker checks its deadline before it marks FUTEX_WAITERS again (the C before this model): it gives up with the bit gone from the barger's word, whose unlock then wakes nobody while a plain locker sleeps on a free mutex */
#include "mutex_robust.pml"
