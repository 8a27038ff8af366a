/* Model of src/epoch.c's retire stamp against a grace period and a reader
 * (issue 10, item 6). The retirer's unlink store sits in a store buffer
 * until it drains, as on x86 (TSO) or in C11 without a fence: the retire
 * stamp's load may then read the epoch before the unlink is visible. The
 * reader is the fenced mode's (its store is visible before its loads); the
 * grace period's heavy fence orders only its own thread. Mirrors:
 *   retirer  - sync_epoch_retire: retire_stamp() (full_fence, then load)
 *   gp       - grace_period: start_grace_period (bump), wait_for_readers,
 *              mark_safe_below
 *   reclaim  - run_safe_callbacks: chunk_safe (stamp < safe_below)
 *   reader   - sync_epoch_enter (fence mode), load the pointer, use it
 * Checked: a reader never uses the object after its callback ran.
 * The model as is must pass; the mutant without the fence must find the use
 * after free (the model can fail). */
/* MUTANT: NO_RETIRE_FENCE the retire stamp loads the epoch with no fence after the unlink (the use after free of issue 10) */

byte epoch = 1;      /* sync_impl_epoch_global, in epochs */
byte safe = 0;       /* safe_below */
byte ptr = 1;        /* the shared pointer: 1 the old object, 2 the new one */
bit buffered = 0;    /* the retirer's unlink sits in its store buffer */
byte stamp = 0;      /* the callback's epoch; 0: not retired yet */
bit freed = 0;       /* the callback ran */
byte ctr = 0;        /* the reader's word: 0 outside, else its epoch */

active proctype retirer()
{
	buffered = 1;                   /* unlink: ptr = 2, not yet visible */
#ifndef NO_RETIRE_FENCE
	atomic { ptr = 2; buffered = 0 } /* full_fence drains the buffer */
#endif
	stamp = epoch                    /* the stamp's load */
}

active proctype drain()             /* the store buffer drains some time */
{
end:	atomic { buffered == 1 -> ptr = 2; buffered = 0 }
}

active proctype gp()
{
	byte target;
	atomic { epoch = epoch + 1; target = epoch }  /* seq_cst RMW + heavy fence */
	(ctr == 0 || ctr >= target);                 /* wait_for_readers */
	safe = target                                /* mark_safe_below */
}

active proctype reclaim()
{
end:	atomic { stamp != 0 && stamp < safe -> freed = 1 }
}

active proctype reader()
{
	byte p;
	ctr = epoch;                    /* enter: load epoch, store, fence */
	p = ptr;                        /* a load inside the section */
	assert(!(p == 1 && freed));     /* uses the object it found */
	ctr = 0                         /* exit */
}
