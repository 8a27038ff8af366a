/* queue_bounded.pml (see there and tests/models/README) with a closer, as
 * queue_close.pml, against two push_waits (each a plain, timed or
 * cancelled wait) on a full queue of capacity 1 that nobody pops: both
 * pushers may be asleep when close comes, and both must come back with
 * EPIPE (or their timeout, or their cancellation). */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: CLOSE_WAKE_ONE close wakes one sleeper of each side (futex_wake of 1, not INT_MAX): the other pusher sleeps on after the close */
/* MUTANT: CLOSE_NO_WAKE_PUSHERS close wakes the poppers only: the pushers asleep on the full queue sleep on after the close */

#define CAP 1
#define INIT 1
#define NPOP 1
#define POPS_EACH 0
#define NPUSH 2
#define CLOSER 1

#include "queue_bounded.pml"
