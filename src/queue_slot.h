/* The unbounded queue's slot hand-off without a read-modify-write on the
 * push side: an asymmetric Dekker pair (the pusher's compiler fence made a
 * full fence by the membarrier(2) of a popper that gives up, as in
 * liburcu-memb), settled by a CAS only when both sides see each other. */
#ifndef SYNC_SRC_QUEUE_SLOT_H
#define SYNC_SRC_QUEUE_SLOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A slot's state: EMPTY -> FULL (the pusher's store, publishing the item);
 * then, only if its popper gave up: FULL -> TAKEN (the popper's CAS, the
 * item is its own after all) or FULL -> RECLAIMED (the pusher's CAS, it
 * pushes again elsewhere). Never back while the segment is linked. */
enum slot_state { SLOT_EMPTY, SLOT_FULL, SLOT_TAKEN, SLOT_RECLAIMED };

struct slot {
	void *item;              /* written by the pusher before state is FULL */
	_Atomic uint32_t state;  /* enum slot_state */
	_Atomic uint32_t gave_up; /* 1: the popper stopped waiting for the pusher */
};

/* Chooses, once per process, how pushers fence (see queue_slot.c); called
 * by every queue's creation, before any push or pop on it. */
void slot_mode_decide(void);

/* The pusher's side: publishes item (already in slot->item); false if the
 * popper gave up on the slot and the item is the pusher's again. */
bool slot_publish(struct slot *slot);

/* The popper's side, once waiting for the pusher is over and the slot was
 * still empty: true if the item turned out to be there (it is the
 * popper's), false if the pusher will take it back. */
bool slot_give_up(struct slot *slot);

#endif /* SYNC_SRC_QUEUE_SLOT_H */
