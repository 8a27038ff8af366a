/* queue_slot.pml in the mode without membarrier(2) (src/queue_slot.c:
 * membarrier not usable, or SYNC_QUEUE_NO_MEMBARRIER=1): the pusher's
 * store of FULL and the popper's store of gave_up are seq_cst, each
 * followed by a seq_cst load, and the popper runs no membarrier. */
/* SPIN: -DSEQ_CST */
/* PAN_CC: -DSAFETY */
/* PAN: -m10000 */
/* MUTANT: PUSHER_NO_CHECK the pusher does not look at gave_up: a popper that gave up on the empty slot never gets the item: lost */
/* MUTANT: NO_SETTLE_POPPER a popper that finds FULL after giving up takes the item without a CAS: popped twice */
#include "queue_slot.pml"
