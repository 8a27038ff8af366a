/* Model of the slot hand-off of src/queue_slot.c (the unbounded queue,
 * src/queue.c): the pusher that drew a slot's index publishes its item
 * with a plain release store of FULL, a compiler fence and a load of the
 * slot's gave_up word; the popper that drew the same index takes the item
 * if it finds FULL, else, once it stops waiting, stores gave_up (seq_cst),
 * runs membarrier() and loads the state again. Store-buffering: at least
 * one of the two loads sees the other side's store; when both do, one CAS
 * on the state (FULL -> TAKEN by the popper, FULL -> RECLAIMED by the
 * pusher) says who has the item.
 *
 * Memory: the pusher's plain stores (the item, then FULL) go through an
 * x86-TSO store buffer, drained oldest first at any time, by its own CAS
 * (a locked instruction), and by the popper's membarrier(), which runs a
 * full barrier on the pusher at some point during the call (one atomic
 * drain step: the pusher is before its load then, and sees gave_up, or
 * its store lands and the popper sees it). The popper's stores are locked
 * (xchg, CAS) and so never buffered. With -DSEQ_CST (the mode without
 * membarrier, queue_slot_seqcst.pml) the pusher's store is seq_cst (an
 * xchg: drained at once) and the popper runs no membarrier.
 *
 * Mapping (C -> model):
 *   push_in_section (slot->item = item) + slot_publish -> proctype pusher
 *   take_slot + wait_for_pusher + slot_give_up          -> proctype popper
 *   settle                                             -> the CAS steps
 * Checked (at the end, every process done): the item is the popper's or
 * the pusher's again (it pushes it elsewhere), never both and never
 * neither; the popper reads the item only after it was stored. */
/* PAN_CC: -DSAFETY */
/* PAN: -m10000 */
/* MUTANT: NO_MEMBARRIER the popper gives up without membarrier(): the pusher's FULL still sits in its store buffer when the popper looks, while the pusher's load saw gave_up still 0: both walk away and the item is lost */
/* MUTANT: NO_SETTLE_POPPER a popper that finds FULL after giving up takes the item without a CAS: the pusher that saw gave_up takes it back too, and pushes it again: popped twice */
/* MUTANT: NO_SETTLE_PUSHER a pusher that sees gave_up takes its item back without a CAS: the popper that found FULL took it too: popped twice */
/* MUTANT: PUSHER_NO_CHECK the pusher does not look at gave_up (a plain store of FULL, the CAS simply dropped): a popper that gave up on the empty slot never gets the item, and the pusher thinks it queued it: lost */
/* MUTANT: LOAD_BEFORE_STORE the pusher loads gave_up before it stores FULL (no compiler fence between them): the popper gives up in between and finds the slot empty; the item is lost */

#define EMPTY     0
#define FULL      1
#define TAKEN     2
#define RECLAIMED 3

byte state = EMPTY;     /* the slot's state word, in memory */
bit item_stored = 0;    /* the slot's item word, in memory */
bit gave_up = 0;        /* the slot's gave_up word, in memory */

bit sb_item = 0;        /* the pusher's buffer: its item store pending */
bit sb_full = 0;        /* ... its store of FULL pending (after the item) */

bit popped = 0;         /* ghost: the popper returned the item */
bit reclaimed = 0;      /* ghost: the pusher took its item back */
bit done_push = 0, done_pop = 0;

/* the pusher's buffer, oldest first */
inline drain_one()
{
	if
	:: sb_item -> item_stored = 1; sb_item = 0
	:: !sb_item && sb_full -> state = FULL; sb_full = 0
	fi
}

inline drain_all()
{
	if
	:: sb_item -> item_stored = 1; sb_item = 0
	:: else -> skip
	fi;
	if
	:: sb_full -> state = FULL; sb_full = 0
	:: else -> skip
	fi
}

active proctype drain()
{
end:	do
	:: atomic { (sb_item || sb_full) -> drain_one() }
	od
}

active proctype pusher()
{
	bit g = 0;
	sb_item = 1;                            /* slot->item = item */
#ifdef LOAD_BEFORE_STORE
	g = gave_up;
#endif
#ifdef SEQ_CST
	atomic { sb_full = 1; drain_all() }     /* seq_cst store: xchg */
#else
	sb_full = 1;                            /* release store of FULL */
#endif
#if !defined(LOAD_BEFORE_STORE) && !defined(PUSHER_NO_CHECK)
	g = gave_up;                            /* compiler fence, then the load */
#endif
	if
	:: !g -> skip                           /* published */
	:: g ->
#ifdef NO_SETTLE_PUSHER
		reclaimed = 1
#else
		atomic {                        /* settle: CAS FULL -> RECLAIMED */
			drain_all();            /* a locked instruction */
			if
			:: state == FULL -> state = RECLAIMED; reclaimed = 1
			:: else -> skip          /* the popper has it */
			fi
		}
#endif
	fi;
	done_push = 1
}

active proctype popper()
{
	byte s;
	s = state;                              /* take_slot: acquire load */
	if
	:: s == EMPTY -> s = state              /* wait_for_pusher: polls */
	:: s == EMPTY -> skip
	:: else -> skip
	fi;
	if
	:: s == FULL ->
		assert(item_stored);
		popped = 1
	:: s == EMPTY ->                        /* slot_give_up */
		gave_up = 1;                    /* seq_cst store (xchg) */
#if !defined(NO_MEMBARRIER) && !defined(SEQ_CST)
		atomic { drain_all() }          /* membarrier() */
#endif
		s = state;                      /* seq_cst load */
		if
		:: s == EMPTY -> skip           /* gave up: the pusher sees it */
		:: else ->
#ifdef NO_SETTLE_POPPER
			assert(item_stored);
			popped = 1
#else
			atomic {                /* settle: CAS FULL -> TAKEN */
				if
				:: state == FULL -> state = TAKEN; assert(item_stored); popped = 1
				:: else -> skip  /* the pusher took it back */
				fi
			}
#endif
		fi
	fi;
	done_pop = 1
}

/* Exactly one side has the item once both are done. */
active proctype monitor()
{
	(done_push && done_pop);
	assert(popped + reclaimed == 1)
}
