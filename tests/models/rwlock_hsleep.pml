/* rwlock.pml in the one configuration that needs four threads: a writer
 * asleep behind readers, and readers whose fetch-and-add and undo take the
 * read count back to the value the writer compared. Why HSLEEP lives in
 * the high half, the futex word those writers sleep on (see the top of
 * src/rwlock.c, bit 62): a drop of the count to 0 whose wake-up came
 * before the writer slept, then a blocked reader's add and undo (which
 * clears HSLEEP and wakes: nobody asleep yet), then another reader's add
 * brings the count back to what the writer compared; if the writer
 * compared only the count it sleeps now, and that reader's undo, seeing no
 * HSLEEP, wakes nobody. Thread 0 is a writer, threads 1-3 readers on the
 * inline fast path; no timeouts, no spurious wake-ups (they would hide the
 * stranded writer). Mapping and properties: see rwlock.pml. */

/* SPIN: -DNT=4 -DSPURIOUS=0 -DRD_FAST_ONLY -DCLIENTS */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: HSLEEP_NOT_COMPARED a writer behind readers compares only the read count in its futex wait (HSLEEP not in the word it sleeps on, as before bc204b4): the count comes back by a blocked reader's add and the writer is stranded */

#include "rwlock.pml"

proctype wthread(byte me)
{
	LOCALS;
	writer();
	FINISH
}

proctype rthread(byte me)
{
	LOCALS;
	reader();
	FINISH
}

init
{
	atomic {
		run wthread(0); run rthread(1); run rthread(2); run rthread(3)
	}
}
