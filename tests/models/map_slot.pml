/* Model of the concurrent hash map's bucket protocol (src/map.c, the
 * bucket's inline slots): one 64-byte bucket, a ctrl word (LOCK, MOVED,
 * one tag per slot, a version bumped by every tag change) and inline
 * slots of { key, value } words; writers under the LOCK bit, the get
 * lock-free: it loads ctrl (c1), the key and value of each slot whose tag
 * in c1 is its key's, and ctrl again (c2), and retries when c2 != c1.
 *
 * Abstracted:
 * - Keys: the reader's key K1 and one other, K2, of the same length (so
 *   their tags are equal and a tag is one bit per slot: L or empty); the
 *   writer's choices treat K1 and K2 alike, so one get of K1 stands for
 *   both. The tag filter on other lengths is left out (a tag of another
 *   length is a slot skipped, like an empty one).
 * - Slots: 2 of the 3 (two keys fill at most two slots); an insert takes
 *   any empty slot (spin's choice). The overflow chain is never reached.
 * - Writers: one writer doing NOPS operations, each one critical section
 *   chosen by spin (insert into an empty slot of an absent key, replace or
 *   remove of a present key, migration), values fresh per operation. The
 *   LOCK CAS serializes critical sections, so several writers make the
 *   same histories of stores; the CAS is one step (acquire).
 * - Migration: the MOVED store; from then on the writer's operations go to
 *   the next table, which is the abstract map itself (an operation = one
 *   atomic step), and a get that sees MOVED finishes there in one step.
 * - The version: a 4-bit field (ctrl >> 4); the model makes at most NOPS
 *   bumps, so it never wraps (the C's 50 bits do not in practice).
 *
 * Memory model: each atomic access is one step, in one interleaving (SC),
 * except the get's c2, which may read any ctrl store that C11 lets it
 * read: not older than c1 (read-read coherence) nor than the lock CAS of a
 * critical section whose slot store the get read and synchronized with.
 * ctrl's stores are kept in order (chist, cseq: the modification order),
 * each slot word carries the index of the lock CAS of the critical section
 * that stored it (kst, vst), and the get's lower bound lb grows with each
 * word it reads: the value store is a release store read by an acquire
 * load; so is the key store (slot_fill) and the key load (slot_key), and
 * c2 is a relaxed load after those acquire loads. A key read from a later
 * insert thus forces c2 past that insert's lock CAS: with either side
 * relaxed (mutants KEY_STORE_RELAXED, KEY_LOAD_RELAXED) c2 can still read c1 and validate K1's key with K2's
 * stale value. x86-TSO adds nothing: the writer's stores reach memory in
 * program order, it loads ctrl only by the lock CAS (a locked instruction
 * that drains its buffer) and otherwise only words that it alone writes,
 * and the get makes no store; so no store buffer.
 *
 * Checked: linearizability per key of get: a get that returns v had
 * (K1, v) in the map at some instant between its start and its last load,
 * and one that returns ENOENT had K1 absent at such an instant (ghost
 * absval: the abstract map, changed at each operation's linearization
 * point: the ctrl store of insert and remove, the value store of replace,
 * the step of a next-table operation; ghost seen: the values, ABSENT
 * included, K1 had since the get's start, as of its last load); the get
 * never waits (it has no blocking statement) and every retry passes a ctrl
 * store (asserted: no more retries than stores), so with a finite writer
 * it ends (valid end state, -DSAFETY). Any ctrl store may cause a retry,
 * not only a tag change: a c2 that reads a lock CAS (LOCK set) differs
 * from a c1 without it, and the reverse.
 *
 * Map, C -> model (the C's names may differ):
 *   ctrl: LOCK, MOVED, tag(s), version      ctrl: LOCK 1, MOVED 2, TAG(s)
 *                                           4 << s, version ctrl >> 4
 *   slot[s].key, slot[s].value              skey[s], sval[s] (with kst,
 *                                           vst: the storing lock's index)
 *   lookup() (slot_find, ctrl_unchanged)    reader
 *   bucket lock (CAS LOCK, acquire)         lock()
 *   add_locked (slot_fill, bucket_unlock)   insert (key release,
 *                                           value release, one
 *                                           release store of ctrl: tag,
 *                                           version + 1, LOCK clear)
 *   replace of a present key's value        replace (value release,
 *                                           ctrl = the locked-at value)
 *   remove_locked                           remove (one release store:
 *                                           tag cleared, version + 1)
 *   migrate_bucket                          migrate (ctrl = MOVED,
 *                                           version + 1), then nexttable()
 */
/* SPIN: -DNOPS=5 */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m100000 */
/* MUTANT: NO_VERSION_BUMP remove and insert change only the tag: remove K1 then insert K2 into its slot brings ctrl back to c1, and a get that read the key K1 returns K2's value */
/* MUTANT: NO_VALIDATE the get returns the value without loading ctrl again: after a remove of K1 an insert of K1 into the same slot has stored its value and not yet published it, and the get returns that value while K1 is absent */
/* MUTANT: TAG_BEFORE_DATA insert stores ctrl with the new tag (LOCK kept) before the key and value words: a get finds the new tag of K1 over the slot's stale key K1 and returns the value K1 had before its remove */
/* MUTANT: C2_BEFORE_VALUE the get loads ctrl the second time before the value: the slot is emptied and refilled between the two, and the get returns the refill's value, not yet published */
/* MUTANT: KEY_LOAD_RELAXED the get loads the key relaxed (no acquire before c2): a key K1 read from an insert still in progress does not order c2 after that insert's lock, c2 reads c1 and the get returns K2's stale value */
/* MUTANT: KEY_STORE_RELAXED insert stores the key relaxed (no release after its lock CAS): a get that reads that key does not synchronize with the insert, c2 reads c1 and the get returns K2's stale value */
/* MUTANT: NO_MOVED_CHECK the get ignores MOVED and looks in the frozen bucket, whose tags the MOVED store cleared: it returns ENOENT while K1 is in the next table */
/* MUTANT: KEY_NOT_COMPARED the get trusts a matching tag (the key's length) without comparing the key word: K2, of the same length, gives its value for K1 */

#ifndef NOPS
#define NOPS 5          /* the writer's operations */
#endif
#define NSLOT 2         /* inline slots modelled */
#define NHIST (3 * NOPS + 1) /* ctrl stores: the initial value, at most 3 per operation */

#define LOCK 1
#define MOVED 2
#define TAG(s) (4 << (s))
#ifdef NO_VERSION_BUMP
#define VER 0           /* version + 1 of insert and remove */
#else
#define VER 16
#endif
#define MVER 16         /* version + 1 of the MOVED store */

#define ABSENT 0        /* as a value: ENOENT, no entry */
#define K1 1            /* the reader's key */
#define K2 2            /* another key of the same length */
#define BIT(v) (1 << (v))
#define MAX(a, b) ((a) > (b) -> (a) : (b))

/* the bucket */
byte ctrl = 0;
byte skey[NSLOT];       /* 0: never written */
byte sval[NSLOT];
/* ctrl's modification order: chist[i] is the value of its i-th store */
byte chist[NHIST];
byte cseq = 0;
/* the lock CAS index of the critical section that stored a slot word: the
 * oldest ctrl store a get may read as c2 after it read the word */
byte kst[NSLOT];
byte vst[NSLOT];

/* ghosts */
byte absval[3];         /* the abstract map: key -> value (ABSENT) */
byte seen = 0;          /* BIT(v) for each v K1 had since the get began */
bit moved = 0;          /* migrated: the writer works on the next table */

/* a store to ctrl (release, or the lock CAS): the next in its order */
inline cstore(v)
{
	atomic {
		cseq++;
		chist[cseq] = v;
		ctrl = v
	}
}

/* a linearization point: key k now has value v */
inline lp(k, v)
{
	absval[k] = v;
	if
	:: k == K1 -> seen = seen | BIT(v)
	:: else -> skip
	fi
}

/* ---- the get ---------------------------------------------------------------- */

proctype reader()
{
	byte c1, c2;    /* the two loads of ctrl */
	byte i1;        /* c1's index in chist */
	byte lb;        /* the oldest index c2 may read */
	byte j;
	byte s;
	byte k, v;
	byte res;       /* the value returned, ABSENT for ENOENT */
	byte sn;        /* seen, as of the get's last load */
	byte tries = 0;

	seen = BIT(absval[K1]);                 /* the get begins */
again:
	atomic { c1 = ctrl; i1 = cseq; sn = seen; s = 0 } /* c1: acquire */
#ifndef NO_MOVED_CHECK
	if
	:: c1 & MOVED ->                        /* the next table: one step */
		atomic { res = absval[K1]; sn = seen };
		goto done
	:: else -> skip
	fi;
#endif
	do
	:: s == NSLOT -> res = ABSENT; break    /* ENOENT: no validation */
	:: s < NSLOT && !(c1 & TAG(s)) -> s++
	:: s < NSLOT && (c1 & TAG(s)) ->
		atomic {                            /* key: acquire */
			k = skey[s]; sn = seen;
#if defined(KEY_LOAD_RELAXED)
			lb = i1
#else
			lb = MAX(i1, kst[s])            /* the key's acquire load */
#endif
		}
#ifdef KEY_NOT_COMPARED
		k = K1;
#endif
		if
		:: k != K1 -> s++
		:: k == K1 ->
#ifndef C2_BEFORE_VALUE
			atomic {                        /* value: acquire */
				v = sval[s]; sn = seen;
				lb = MAX(lb, vst[s])
			}
#endif
#ifndef NO_VALIDATE
			/* c2: relaxed, after the acquire loads: any store from lb on */
			atomic {
				j = lb;
				do
				:: j < cseq -> j++
				:: break
				od;
				c2 = chist[j]; sn = seen;
				j = 0; lb = 0
			}
#else
			c2 = c1;
#endif
#ifdef C2_BEFORE_VALUE
			atomic { v = sval[s]; sn = seen }
#endif
			if
			:: c2 != c1 ->
				/* c2 read a store after c1's: a retry passes a store */
				tries++;
				assert(tries <= cseq);
				c2 = 0; k = 0; v = 0;
				goto again
			:: else -> res = v; break
			fi
		fi
	od;
done:
	assert((sn & BIT(res)) != 0)
}

/* ---- the writer ------------------------------------------------------------- */

inline lock()
{
	atomic { !(ctrl & LOCK) -> lk = ctrl; li = cseq + 1; cstore(ctrl | LOCK) }
}

/* the slot holding key k in the locked bucket */
inline find(k)
{
	d_step {
		s = 0;
		do
		:: (lk & TAG(s)) && skey[s] == k -> break
		:: else -> s++
		od
	}
}

inline insert(k, v)
{
	if                                      /* any empty slot */
	:: !(lk & TAG(0)) -> s = 0
	:: !(lk & TAG(1)) -> s = 1
	fi;
#ifdef TAG_BEFORE_DATA
	atomic { cstore((lk | TAG(s) | LOCK) + VER); lp(k, v) }
#endif
	atomic {                                /* key: release */
		skey[s] = k;
#ifdef KEY_STORE_RELAXED
		kst[s] = 0
#else
		kst[s] = li
#endif
	}
	atomic { sval[s] = v; vst[s] = li }     /* value: release */
#ifdef TAG_BEFORE_DATA
	cstore(ctrl & ~LOCK)
#else
	/* publish and unlock: release, pairs with the get's c1 */
	atomic { cstore((lk | TAG(s)) + VER); lp(k, v) }
#endif
}

inline replace(k, v)
{
	find(k);
	atomic { sval[s] = v; vst[s] = li; lp(k, v) } /* value: release */
	cstore(lk)                              /* unlock: as locked */
}

inline remove(k)
{
	find(k);
	atomic { cstore((lk & ~TAG(s)) + VER); lp(k, ABSENT) } /* release */
}

inline migrate()
{
	/* the entries are copied to the next table (the abstract map) */
	atomic { cstore(MOVED | (((lk >> 4) << 4) + MVER)); moved = 1 }
}

/* an operation on the next table: one step */
inline nexttable(k, v)
{
	atomic {
		if
		:: absval[k] == ABSENT -> lp(k, v)  /* insert */
		:: absval[k] != ABSENT -> lp(k, v)  /* replace */
		:: absval[k] != ABSENT -> lp(k, ABSENT) /* remove */
		fi
	}
}

proctype writer()
{
	byte op = 0;
	byte k, s;
	byte lk;        /* ctrl as locked */
	byte li;        /* the lock CAS's index in chist */
	do
	:: op == NOPS -> break
	:: else ->
		if
		:: k = K1
		:: k = K2
		fi;
		if
		:: moved -> nexttable(k, op + 1)
		:: else ->
			lock();
			if
			:: absval[k] == ABSENT -> insert(k, op + 1)
			:: absval[k] != ABSENT -> replace(k, op + 1)
			:: absval[k] != ABSENT -> remove(k)
			:: migrate()
			fi
		fi;
		d_step { op++; k = 0; s = 0; lk = 0; li = 0 }
	od
}

init
{
	atomic {
		run reader();
		run writer()
	}
}
