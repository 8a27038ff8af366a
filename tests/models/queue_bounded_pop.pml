/* queue_bounded.pml (see there and tests/models/README) with the pop side's
 * threads: the queue empty at the start (CAP 1), two pop_waits (each a
 * plain, timed or cancelled wait) and one push: two poppers asleep, a
 * push's wake-up. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: PUSH_NO_FENCE push publishes its index on aq with a plain store (no locked CAS) before it loads poppers.sleepers: a pop_wait sleeper misses the item while the push misses the sleeper */
/* MUTANT: THRESHOLD_RELEASE ring_enqueue's threshold store is a release store (plain mov on x86), which the sleepers load passes: a sleeper's dequeue gives up on the old negative threshold while the waker sees no sleeper */
/* MUTANT: LOOK_BEFORE_PUBLISH push loads poppers.sleepers before it enqueues on aq (and wakes afterwards only if it saw one): a popper that registers in between is never woken */
/* MUTANT: SEQ_AFTER_LOOK queue_sleep reads seq after its last attempt instead of before */

#define CAP 1
#define INIT 0
#define NPOP 2
#define NPUSH 1

#include "queue_bounded.pml"
