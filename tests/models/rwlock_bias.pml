/* Model of the reader bias of src/rwlock.c (private locks): BRAVO (Dice
 * and Kogan, USENIX ATC 2019) with membarrier() as the writer's asymmetric
 * fence. The state word's BIASED bit lets a reader in without writing the
 * shared word: it publishes the lock in its own visible-reader slot (a
 * plain store, no fence) and looks at BIASED again; a writer that took the
 * write hold with BIASED set clears it (a locked RMW), runs membarrier()
 * and waits until no slot holds the lock. The reader's slot store and its
 * state load are a store-buffering pair against the writer's state RMW
 * and its slot loads: the reader's stores go through an x86-TSO store
 * buffer (drained at any time, by the reader's own locked instructions,
 * and by the writer's membarrier, which runs a full barrier on every
 * reader at some point during the call).
 *
 * Normal ("unbiased") readers and the write hold keep rwlock.pml's
 * protocol, abstracted to a read count and the WRITER bit (plus the count
 * of waiting writers, for writer preference); their futex sleeps are
 * guarded steps (wait until the condition holds). rwlock.pml checks them.
 *
 * Mapping (C -> model):
 *   sync_impl_rwlock_rdlock / sync_impl_rwlock_rdlock_biased
 *   (include/sync/rwlock.h, inline) and read_biased (src/rwlock.c, the
 *   library's biased read)
 *                       -> reader: r1 load state (relaxed), r3 slot = L
 *                          (buffered), r4 compiler barrier (nothing), r5
 *                          load state (acquire) -> biased reader, else r6
 *                          slot = 0 (buffered) and rd_normal
 *   the normal read paths (fetch_add / read_acquire / read_slow)
 *                       -> rd_normal: one guarded locked RMW
 *   sync_impl_rwlock_rdunlock (inline), read_unbias (library)
 *                       -> biased: slot = 0 (release store, buffered);
 *                          normal: count-- (locked RMW)
 *   write_acquire / write_slow (the take)
 *                       -> writer: register, then one guarded step
 *                          setting WRITER (BIASED kept), noting BIASED
 *   bias_revoke, bias_wait_for_readers (src/rwlock_bias.c)
 *                       -> w1 biased = 0 (fetch_and), w2 membarrier
 *                          (a flush step per reader, in either order),
 *                          w3 wait for each slot != L (timed writer 0 may
 *                          give up there: clears WRITER and sets BIASED
 *                          again in one RMW, see below)
 *   write_release / release_plain
 *                       -> writer: one step clears WRITER and, by the policy
 *                          (nondeterministic), sets BIASED in the same step
 * Checked: mutual exclusion (ghosts rin, win, asserted at every entry and
 * in the critical sections; a writer holds until its releasing RMW); no
 * thread blocked for ever (invalid end state, -DSAFETY: every thread runs
 * a finite program).
 *
 * A writer that gives up in w3 must leave BIASED set when it drops WRITER
 * (one RMW): biased readers it did not wait for may still be inside, and
 * only BIASED makes the next writer scan the slots. Giving up with BIASED
 * clear (mutant GIVE_UP_UNBIASED) lets the next writer take the lock, see
 * no BIASED, skip bias_revoke and enter beside such a reader. */
/* SPIN: -DNR=2 -DRROUNDS=2 -DNW=2 -DWROUNDS=2 */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: NO_MEMBARRIER the writer skips membarrier(): the reader's slot store still sits in its store buffer while the writer scans, and its state load saw BIASED before the revoking fetch_and: two inside */
/* MUTANT: REBIAS_BEFORE_RELEASE the write release sets BIASED in one RMW and clears WRITER in a later one: a biased reader enters while the writer still holds the lock */
/* MUTANT: SCAN_BEFORE_REVOKE the writer scans the slots before it clears BIASED and runs membarrier(): a reader that stores its slot after the scan enters biased */
/* MUTANT: NO_RECHECK the biased reader enters on its first (relaxed) look at BIASED, without the acquire load after its slot store: it enters after a whole revocation */
/* MUTANT: GIVE_UP_UNBIASED a timed writer that gives up in w3 clears WRITER and leaves BIASED clear: the next writer sees no BIASED, skips the scan and enters beside a biased reader still inside */
/* MUTANT: SLOT_NOT_CLEARED a reader whose second look finds BIASED clear takes the normal path without clearing its slot: a revoking writer waits for ever on the slot while the reader waits for the writer */

#ifndef NR
#define NR 2            /* readers: ids 0..NR-1 (slots 0..NR-1); 1 or 2 */
#endif
#ifndef RROUNDS
#define RROUNDS 2       /* read lock/unlock rounds per reader */
#endif
#ifndef NW
#define NW 2            /* writers; writer 0 is timed (may give up in w3) */
#endif
#ifndef WROUNDS
#define WROUNDS 2       /* write rounds per writer */
#endif

/* the state word */
bit wr = 0;             /* WRITER */
bit biased = 0;         /* BIASED */
byte rcnt = 0;          /* normal read holds */
byte ww = 0;            /* waiting writers (writer preference) */

/* visible-reader slots, in memory: 1 = L (this lock), 0 = none */
bit slot[NR];
/* x86-TSO store buffers: a reader's only plain stores are to its own slot,
 * and a store of the value its last store wrote changes nothing anyone can
 * see (store_slot skips it), so the pending stores alternate: a buffer is
 * the number of stores pending, the oldest of them is !slot[i], and the
 * thread's own view (its buffer first, then memory) is OWN(i). */
byte pend[NR];
#define OWN(i) (pend[i] % 2 == 1 -> 1 - slot[i] : slot[i])

/* ghosts */
byte rin = 0;           /* readers inside (biased or normal) */
byte win = 0;           /* writers inside */

/* drain one store of reader i's buffer, or all of them (a fence) */
#define DRAIN1(i) slot[i] = 1 - slot[i]; pend[i]--
inline flush(i)
{
	slot[i] = OWN(i);
	pend[i] = 0
}

/* a plain store slot = v by reader me: into its store buffer */
inline store_slot(v)
{
	pend[me] = (OWN(me) != v -> pend[me] + 1 : pend[me])
}

/* The store buffers drain at any time, oldest store first. */
active proctype drain()
{
end:	do
	:: atomic { pend[0] > 0 -> DRAIN1(0) }
#if NR > 1
	:: atomic { pend[1] > 0 -> DRAIN1(1) }
#endif
	od
}

/* ---- readers -------------------------------------------------------------- */

/* The normal path: a locked RMW (drains this thread's buffer), blocking
 * while a writer holds or waits. */
inline rd_normal()
{
	atomic {
		!wr && ww == 0 ->
		flush(me);
		rcnt++; rin++;
		assert(win == 0)
	}
}

proctype reader(byte me)
{
	byte round = 0;
	bit b = 0;      /* this round is biased */
	do
	:: round == RROUNDS -> break
	:: else ->
		b = biased;                         /* r1: load state, relaxed */
		if
		:: b ->
			/* r2 (own slot in use by another lock): one lock, skipped */
#ifdef NO_RECHECK
			atomic { store_slot(1); rin++; assert(win == 0) }
#else
			store_slot(1);                  /* r3: slot = L, buffered */
			/* r4: compiler barrier only: no drain */
			atomic {                        /* r5: load state, acquire */
				if
				:: biased -> rin++; assert(win == 0)
				:: else -> b = 0
				fi
			}
			if
			:: !b ->
#ifndef SLOT_NOT_CLEARED
				store_slot(0);              /* r6: slot = 0, buffered */
#endif
				rd_normal()
			:: else -> skip
			fi
#endif
		:: else -> rd_normal()
		fi;
		assert(win == 0);                   /* the critical section */
		if
		:: b -> atomic { rin--; store_slot(0) } /* slot = 0, release: buffered */
		:: else -> atomic { flush(me); rcnt--; rin-- } /* count--: locked */
		fi;
		b = 0;
		round++
	od
}

/* ---- writers -------------------------------------------------------------- */

/* w3 on slot i: wait until it is not L (a load from memory); the timed
 * writer 0 may give up instead (its deadline passed). */
inline scan_slot(i)
{
	if
	:: gaveup -> skip
	:: !gaveup && slot[i] == 0 -> skip
	:: !gaveup && me == 0 -> gaveup = 1
	fi
}

inline scan()
{
	scan_slot(0);
#if NR > 1
	scan_slot(1)
#endif
}

/* membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): a full barrier on every
 * thread of the process at some point during the call (the IPI, or the
 * context switch of a thread not running): one flush step per reader, in
 * either order, interleaved with the others' steps. */
inline membarrier()
{
	if
	:: atomic { flush(0) };
#if NR > 1
	   atomic { flush(1) }
	:: atomic { flush(1) };
	   atomic { flush(0) }
#endif
	fi
}

proctype writer(byte me)
{
	byte round = 0;
	bit sawb = 0;       /* the state taken had BIASED */
	bit gaveup = 0;
	do
	:: round == WROUNDS -> break
	:: else ->
		ww++;                                           /* register */
		atomic { !wr && rcnt == 0 -> ww--; wr = 1; sawb = biased } /* take */
		if
		:: sawb ->                                      /* bias_revoke */
#ifdef SCAN_BEFORE_REVOKE
			scan();
#endif
			biased = 0;                                 /* w1: fetch_and */
#ifndef NO_MEMBARRIER
			membarrier();                               /* w2 */
#endif
#ifndef SCAN_BEFORE_REVOKE
			scan()                                      /* w3 */
#endif
		:: else -> skip
		fi;
		if
		:: gaveup ->                                    /* ETIMEDOUT */
#ifdef GIVE_UP_UNBIASED
			wr = 0
#else
			atomic { wr = 0; biased = 1 }
#endif
		:: else ->
			atomic { win++; assert(win == 1 && rin == 0) }
			assert(rin == 0);                           /* the critical section */
#ifdef REBIAS_BEFORE_RELEASE
			if
			:: biased = 1
			:: skip
			fi;
			atomic { win--; wr = 0 }
#else
			atomic {                                    /* the releasing RMW */
				win--; wr = 0;
				if
				:: biased = 1                           /* rebias (policy) */
				:: skip
				fi
			}
#endif
		fi;
		sawb = 0; gaveup = 0;
		round++
	od
}

init
{
	byte i = 0;
	atomic {
		if
		:: biased = 1
		:: skip
		fi;
		do
		:: i < NR -> run reader(i); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < NW -> run writer(i); i++
		:: else -> break
		od
	}
}
