/* rwlock.pml's writer preference as liveness: a writer (one lock and
 * unlock) against two readers that lock and unlock for ever, the readers'
 * holds overlapping. Under weak fairness the writer must get the lock
 * (LTL <> writer in): once it is registered, new readers wait, the read
 * count drains, and the last reader wakes it. The bounded form (no reader
 * gets in while a writer is registered) is rwlock.pml's assertion, off
 * here so that only the liveness property can catch the mutant. Readers on
 * the inline fast path, no timeouts, no spurious wake-ups. Mapping: see
 * rwlock.pml. */

/* SPIN: -DNT=3 -DSPURIOUS=0 -DRD_FAST_ONLY -DCLIENTS -DNO_PREF_ASSERT */
/* PAN_CC: -DCOLLAPSE */
/* PAN: -a -f -m200000 */
/* MUTANT: READER_IGNORES_WAITERS the inline read fast path lets readers in while a writer is registered (reader preference): two readers whose holds overlap starve the writer for ever */

#include "rwlock.pml"

bit writer_got = 0;

ltl writer_gets_in { <> writer_got }

proctype wthread(byte me)
{
	LOCALS;
	wr_lock();
	if
	:: got -> writer_got = 1; wr_unlock()
	:: else -> skip
	fi;
	FINISH
}

proctype rthread(byte me)
{
	LOCALS;
	do
	:: true ->
		reader();
		atomic {
			got = 0; r = 0; sW = 0; sRS = 0; sWS = 0; sHS = 0; sww = 0;
			srd = 0; wake = 0
		}
	od
}

init
{
	atomic { run wthread(0); run rthread(1); run rthread(2) }
}
