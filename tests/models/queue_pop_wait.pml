/* Model of the sleep/wake handshake of src/queue.c's sync_queue_pop_wait
 * with sync_queue_push: a popper that finds the queue empty counts itself
 * among the sleepers, reads wake_seq, looks at the queue once more, and
 * sleeps on wake_seq; a push publishes its item, then, if it sees a
 * sleeper, bumps wake_seq and wakes one. The futex is the kernel's:
 * FUTEX_WAIT compares and sleeps atomically, wake of 1, spurious wake-ups,
 * timeouts, and asynchronous cancellation in the sleep (before or just
 * after a wake-up was consumed).
 *
 * The queue itself (FAAArrayQueue: tickets, slot states, segments, epoch
 * retire) is abstracted to a linearizable FIFO: push publishes its item in
 * one step (the seq_cst enq ticket or the segment link; the slot's own
 * hand-off, a release store, is queue_slot.pml's), pop takes the oldest published item or finds it
 * empty (looks_empty's seq_cst loads). Its own correctness is the unit and
 * stress tests' business.
 *
 * The store-buffering pair: push publishes (a locked RMW: lock xadd /
 * lock cmpxchg on x86, seq_cst in C11) then loads sleepers; pop_sleep adds
 * itself to sleepers (lock xadd) then looks at the queue. The model keeps
 * an x86-TSO store buffer for the publication: with the real code the
 * publication is an RMW and drains it at once; the PUSH_NO_FENCE mutant
 * publishes with a plain (release) store that sits in the pusher's buffer
 * until it drains, so the sleepers load can pass it.
 *
 * Mapping (C function -> model):
 *   push_in_section / push_new_segment (publication) -> pusher: publish
 *   wake_poppers (load sleepers, fetch_add wake_seq, futex_wake 1)
 *                                                    -> inline wake_poppers
 *   sync_queue_push                                  -> proctype pusher
 *   sync_queue_pop / pop_in_section                  -> inline pop
 *   pop_spin                                         -> one optional pop
 *   pop_sleep (fetch_add sleepers, load wake_seq, pop, futex_wait,
 *              fetch_sub sleepers, the last pop after ETIMEDOUT)
 *                                                    -> inline pop_sleep
 *   pop_sleep_cancelled (fetch_sub, wake_poppers)    -> inline cancelled
 *   sync_queue_pop_wait                              -> proctype popper
 * Checked: no item is taken twice; no lost wake-up: a plain pop_wait
 * asleep for good while an item is queued and everything else is done or
 * equally asleep (monitor; pushers may push or not, so a sleeper with
 * nothing to pop is allowed). */
/* C names since issue 13: queue_sleep, queue_wake_one, sleep_cancelled,
 * poppers.seq and poppers.sleepers (src/queue.c); see tests/models/README. */

/* PAN_CC: -DSAFETY */
/* PAN: -m100000 */
/* MUTANT: PUSH_NO_FENCE push publishes its item with a plain store (no locked RMW, no seq_cst) before it loads sleepers: the store-buffering pair is broken and a sleeper misses the item */
/* MUTANT: POP_NO_RECHECK pop_sleep sleeps after registering without looking at the queue again */
/* MUTANT: SEQ_AFTER_LOOK pop_sleep reads wake_seq after its last look at the queue instead of before */
/* MUTANT: CANCEL_NO_PASS a cancelled sleeper's cleanup unregisters but does not pass on the wake-up it may have swallowed */

#define NPOP 2
#define NPUSH 2

#define EAGAIN    1
#define ETIMEDOUT 2
#define CANCELLED 3

#define WAIT  0   /* pop_wait without deadline, never cancelled */
#define TIMED 1   /* pop_wait with a deadline that may pass at any look */
#define CWAIT 2   /* pop_wait cancelled in its sleep */

chan q = [NPUSH] of { byte };   /* the published items, oldest first */
byte sleepers = 0;
byte wake_seq = 0;

/* the kernel: poppers asleep on wake_seq */
bit asleep[NPOP];
byte spurious = 1;              /* spurious wake-ups left */

/* store buffers (PUSH_NO_FENCE only): a pusher's unpublished item */
byte buf[NPUSH + 1];            /* [NPUSH]: poppers' (never used) */

/* ghosts */
bit got[NPUSH + 1];             /* item ids 1..NPUSH, taken */
byte kinds[NPOP];
bit fin[NPOP];
byte pushers_done = 0;

#define STUCK(i) (asleep[i])   /* only a wake-up (or its deadline) gets it out */
#define QUIET(i) (fin[i] || STUCK(i))

active proctype monitor()
{
end:	atomic {
		pushers_done == NPUSH && buf[0] == 0 && buf[1] == 0 &&
		QUIET(0) && QUIET(1) && nempty(q) && (STUCK(0) || STUCK(1)) ->
		assert(false)
	}
}

/* The store buffer drains at any time (PUSH_NO_FENCE). */
#ifdef PUSH_NO_FENCE
active proctype drain()
{
end:	do
	:: atomic { buf[0] != 0 -> q!buf[0]; buf[0] = 0 }
	:: atomic { buf[1] != 0 -> q!buf[1]; buf[1] = 0 }
	od
}
#endif

inline futex_wake_one()
{
	atomic {
		if
		:: asleep[0] -> asleep[0] = 0
		:: asleep[1] -> asleep[1] = 0
		:: else -> skip
		fi
	}
}

/* wake_poppers: seq_cst load of sleepers; fetch_add wake_seq (a locked
 * RMW: drains the caller's store buffer); futex_wake of 1. */
inline wake_poppers(own)
{
	if
	:: sleepers > 0 ->
		atomic {
#ifdef PUSH_NO_FENCE
			if
			:: buf[own] != 0 -> q!buf[own]; buf[own] = 0
			:: else -> skip
			fi;
#endif
			wake_seq++
		}
		futex_wake_one()
	:: else -> skip
	fi
}

/* sync_queue_pop: r = 0 with the item, or EAGAIN (looked empty). */
inline pop()
{
	atomic {
		if
		:: nempty(q) -> q?item; assert(!got[item]); got[item] = 1; r = 0; item = 0
		:: empty(q) -> r = EAGAIN
		fi
	}
}

inline look_deadline()
{
	if
	:: kind == TIMED -> expired = 1
	:: true -> skip
	fi
}

/* pop_sleep_cancelled: unregister, pass on the wake-up we may have taken */
inline cancelled()
{
	sleepers--;                 /* fetch_sub, seq_cst */
#ifndef CANCEL_NO_PASS
	wake_poppers(NPUSH);
#endif
	goto finish
}

/* futex_wait_cancelable(&wake_seq, seq): slept = 0 (woken, maybe
 * spuriously), EAGAIN or ETIMEDOUT; a cancellation runs the cleanup. */
inline futex_wait_seq()
{
	atomic {
		if
		:: wake_seq == seq -> asleep[me] = 1; slept = 0
		:: else -> slept = EAGAIN
		fi
	}
	if
	:: slept == 0 ->
end_asleep:	/* a valid end: the monitor tells a lost wake-up from no push */
		if
		:: !asleep[me] -> skip                        /* FUTEX_WAKE */
		:: atomic { asleep[me] && spurious > 0 -> spurious--; asleep[me] = 0 }
		:: atomic { asleep[me] && kind == TIMED -> asleep[me] = 0; slept = ETIMEDOUT }
		:: atomic { asleep[me] && kind == CWAIT -> asleep[me] = 0; slept = CANCELLED }
		fi
	:: else -> skip
	fi;
	/* asynchronous cancellation also acts just after the futex returned */
	if
	:: kind == CWAIT -> slept = CANCELLED
	:: true -> skip
	fi;
	if
	:: slept == CANCELLED -> cancelled()
	:: else -> skip
	fi
}

/* pop_sleep: r = 0 (item), EAGAIN (go round) or ETIMEDOUT */
inline pop_sleep()
{
	sleepers++;                 /* fetch_add, seq_cst */
#ifndef SEQ_AFTER_LOOK
	seq = wake_seq;             /* acquire */
#endif
#ifdef POP_NO_RECHECK
	r = EAGAIN;
#else
	pop();
#endif
#ifdef SEQ_AFTER_LOOK
	seq = wake_seq;
#endif
	slept = 0;
	if
	:: r == EAGAIN ->
		look_deadline();
		if
		:: expired -> slept = ETIMEDOUT
		:: else -> futex_wait_seq()
		fi
	:: else -> skip
	fi;
	sleepers--;                 /* fetch_sub, seq_cst */
	if
	:: r == 0 -> skip
	:: r != 0 && slept == ETIMEDOUT ->
		pop();
		if
		:: r != 0 -> r = ETIMEDOUT
		:: else -> skip
		fi
	:: else -> r = EAGAIN
	fi
}

proctype popper(byte me)
{
	byte kind, r, seq, slept, item;
	bit expired;
	if
	:: kind = WAIT
	:: kind = TIMED
	:: kind = CWAIT
	fi;
	kinds[me] = kind;
	pop();
	if
	:: r == EAGAIN ->           /* pop_spin: a deadline look, one poll or none */
		look_deadline();
		if
		:: expired -> r = ETIMEDOUT
		:: else ->
			if
			:: skip
			:: pop()
			fi
		fi
	:: else -> skip
	fi;
	do
	:: r == EAGAIN -> pop_sleep()
	:: else -> break
	od;
finish:
	atomic { fin[me] = 1; kind = 0; r = 0; seq = 0; slept = 0; expired = 0 }
}

proctype pusher(byte me)
{
	if
	:: skip
	:: goto no_push             /* fewer items than poppers */
	fi;
#ifdef PUSH_NO_FENCE
	buf[me] = me + 1;           /* a plain store: in the store buffer */
#else
	q!(me + 1);                 /* the seq_cst CAS that publishes */
#endif
	wake_poppers(me);
no_push:
	pushers_done++
}

init
{
	atomic {
		run popper(0); run popper(1);
		run pusher(0); run pusher(1)
	}
}
