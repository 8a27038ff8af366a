/* Model of src/sem.c's counting semaphore (value and sleeper count in one
 * 64-bit word, futex on the value half), with the futex as the kernel
 * defines it: FUTEX_WAIT compares and sleeps atomically, wake of 1, a
 * sleeper may return spuriously, time out, be cancelled (asynchronous
 * cancellation in the sleep: before or just after it consumed a wake-up),
 * or vanish (a process-shared waiter killed asleep, with or without the
 * wake-up the kernel handed it; the 10 ms second look of a shared sleeper
 * is modelled as one look owed to every sleeper after such a death).
 *
 * Mapping (C function -> model):
 *   word (value | sleepers << 32)   -> value, sleepers (changed together,
 *                                      in one atomic step per C atomic)
 *   take_unit (CAS loop)            -> inline take_unit
 *   take (fast path)                -> waiter: first load + take_unit
 *   take_slow/spin_take             -> waiter: deadline look, spin_take
 *   sleep_take (fetch_add, loop)    -> inline sleep_take
 *   sleep_cancelable/futex_wait     -> inline futex_wait_value
 *   sleeper_cancelled (fetch_sub)   -> inline sleeper_cancelled
 *   sync_sem_trywait                -> waiter kind TRY
 *   sync_sem_post (CAS, then wake)  -> proctype poster
 * All of the word's operations are on one location (RMWs, and relaxed
 * loads whose staleness only makes a CAS fail or a futex_wait return
 * EAGAIN), so no store buffer is modelled: there is no store-buffering
 * pair in sem.c.
 * Checked: posted == taken + value and sleepers == the threads inside
 * sleep_take (plus dead ones) in every state (monitor); no lost wake-up:
 * NW waiters (each a wait, a timed wait or a trywait, chosen
 * nondeterministically) and NW posts, so a plain waiter left asleep at the
 * end (an invalid end state) is a unit nobody woke it for. */

/* SPIN: -DNW=2 */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: POST_WAKE_ON_ZERO post wakes only when it took the value from 0 (the sleeper check replaced by a value check): two posts, two sleepers, one stays asleep with a unit there */
/* MUTANT: POST_NO_WAKE post without the sleeper check and its wake (the unit is published, the sleeper is never woken) */
/* MUTANT: CANCEL_NO_PASS a cancelled sleeper's cleanup unregisters but does not pass on the wake-up it may have swallowed */
/* MUTANT: TIMEOUT_NO_UNREGISTER a timed-out waiter returns ETIMEDOUT without removing its registration (the sleeper count drifts) */

#ifndef NW
#define NW 2              /* waiters; as many posts (NW posters) */
#endif
#define NPROC (2 * NW)

#define EAGAIN    1
#define ETIMEDOUT 2
#define EINTR     3
#define CANCELLED 4

/* what a waiter does (chosen nondeterministically at its start) */
#define WAIT  0   /* sync_sem_wait, never cancelled: must not sleep forever */
#define TIMED 1   /* sync_sem_timedwait: the deadline may pass at any look */
#define TRY   2   /* sync_sem_trywait */
#define CWAIT 3   /* sync_sem_wait that is cancelled in its sleep */
#define VWAIT 4   /* sync_sem_wait of a process killed in its sleep */

/* the word */
byte value = 0;
byte sleepers = 0;

/* the kernel: waiters asleep on the value half */
bit asleep[3];
bit owed[3];           /* a second look owed after a death (see the top) */
byte spurious = 1;     /* spurious wake-ups left */
byte deaths = 1;       /* waiters that may still vanish */

/* ghosts */
byte posted = 0;
byte taken = 0;
bit reg[3];           /* between the registering add and the unregistering */
byte dead_reg = 0;     /* registrations left behind by vanished waiters */
byte kinds[3];
bit fin[3];            /* the waiter returned (or vanished) */
byte posters_done = 0;

#define REGISTERED (reg[0] + reg[1] + reg[2] + dead_reg)
/* asleep with no look owed: only a wake-up gets it out (or its deadline,
 * a cancellation, a death: a lost wake-up all the same) */
#define STUCK(i) (i < NW && asleep[i] && !owed[i])
#define QUIET(i) (i >= NW || fin[i] || STUCK(i))

active proctype monitor()
{
end:	atomic {
		!(posted == taken + value && sleepers == REGISTERED) ||
		(posters_done == NW && QUIET(0) && QUIET(1) && QUIET(2) &&
		 value > 0 && (STUCK(0) || STUCK(1) || STUCK(2))) ->
		assert(false)
	}
}

/* FUTEX_WAKE of 1 on the value half: the kernel picks any sleeper. */
inline futex_wake_one()
{
	atomic {
		if
		:: asleep[0] -> asleep[0] = 0
		:: NW > 1 && asleep[1] -> asleep[1] = 0
		:: NW > 2 && asleep[2] -> asleep[2] = 0
		:: else -> skip
		fi
	}
}

/* take_unit: the CAS loop is the atomic RMW it implements (a failed
 * attempt changes nothing but the view, and a view of value 0 ends it:
 * then the futex_wait, which compares, or a later look decides). Takes one
 * unit (and the registration if unreg) if the value is not 0; ok: taken. */
inline take_unit(unreg)
{
	atomic {
		if
		:: value > 0 ->
			value--; sleepers = sleepers - unreg; taken++;
			reg[me] = reg[me] - unreg; ok = 1
		:: else -> ok = 0
		fi
	}
}

/* timeout_passed(abstime): a timed waiter's deadline may pass at any look,
 * and stays passed. */
inline look_deadline()
{
	if
	:: kind == TIMED -> expired = 1
	:: true -> skip
	fi
}

/* sleep_cancelable: futex_wait_cancelable(value half, 0). r: 0 woken
 * (maybe spuriously), EAGAIN, EINTR, ETIMEDOUT, or CANCELLED (the cleanup
 * handler ran, the thread is gone); a vanished waiter does not return. */
inline futex_wait_value()
{
	atomic {
		if
		:: value == 0 -> asleep[me] = 1; r = 0
		:: else -> r = EAGAIN
		fi
	}
	if
	:: r == 0 ->
end_asleep:	/* a valid end: the monitor tells a lost wake-up from no post */
		if
		:: !asleep[me] -> skip                        /* FUTEX_WAKE */
		:: atomic { asleep[me] && spurious > 0 -> spurious--; asleep[me] = 0 }
		:: atomic { asleep[me] && owed[me] -> owed[me] = 0; asleep[me] = 0; r = EINTR }
		:: atomic { asleep[me] && kind == TIMED -> asleep[me] = 0; expired = 1; r = ETIMEDOUT }
		:: atomic { asleep[me] && kind == CWAIT -> asleep[me] = 0; r = CANCELLED }
		:: atomic { asleep[me] && kind == VWAIT && deaths > 0 ->  /* killed asleep */
			deaths--; asleep[me] = 0; reg[me] = 0; dead_reg++; goto gone }
		fi
	:: else -> skip
	fi;
	owed[me] = 0;
	/* asynchronous cancellation acts until the cancel type is restored:
	 * also just after the futex handed us a wake-up */
	if
	:: r != CANCELLED && kind == CWAIT -> r = CANCELLED
	:: r == 0 && kind == VWAIT && deaths > 0 ->  /* killed with the wake-up */
		atomic {
			deaths--; reg[me] = 0; dead_reg++;
			owed[0] = asleep[0]; owed[1] = asleep[1]; owed[2] = asleep[2]
		}
		goto gone
	:: true -> skip
	fi;
	if
	:: r == CANCELLED -> sleeper_cancelled()
	:: else -> skip
	fi
}

/* sleeper_cancelled: the cleanup handler. */
inline sleeper_cancelled()
{
	atomic { sleepers--; reg[me] = 0; wv = value; ws = sleepers }  /* fetch_sub */
#ifndef CANCEL_NO_PASS
	if
	:: wv > 0 && ws > 0 -> futex_wake_one()
	:: else -> skip
	fi;
#endif
	goto finish
}

/* sleep_take */
inline sleep_take()
{
	atomic { sleepers++; reg[me] = 1 }  /* fetch_add (its view: take_unit's) */
	r = 0;
	do
	:: take_unit(1);
		if
		:: ok -> goto finish
		:: else -> skip
		fi;
		if
		:: r == ETIMEDOUT ->
#ifdef TIMEOUT_NO_UNREGISTER
			reg[me] = 0;
#else
			atomic { sleepers--; reg[me] = 0 }
#endif
			goto finish
		:: else -> skip
		fi;
		look_deadline();
		if
		:: expired -> r = ETIMEDOUT
		:: else -> futex_wait_value()
		fi
		/* the relaxed load: take_unit's view */
	od
}

proctype waiter(byte me)
{
	byte kind, wv, ws, r;
	bit ok, expired;
	if
	:: kind = WAIT
	:: kind = TIMED
	:: kind = TRY
	:: kind = CWAIT
	:: kind = VWAIT
	fi;
	kinds[me] = kind;
	take_unit(0);                                  /* relaxed load, CAS */
	if
	:: ok || kind == TRY -> goto finish            /* fast path; trywait */
	:: else -> skip
	fi;
	/* take_slow */
	look_deadline();
	if
	:: expired -> goto finish
	:: else -> skip
	fi;
	/* spin_take: one poll or none (a failed poll changes nothing, so more
	 * polls add nothing a single later one does not cover) */
	if
	:: skip
	:: atomic {
		if
		:: sleepers == 0 && value > 0 -> value--; taken++; ok = 1
		:: else -> skip   /* sleepers first, or nothing to take */
		fi
	   };
	   if
	   :: ok -> goto finish
	   :: else -> skip    /* (or its deadline passed): sleep_take */
	   fi
	fi;
	sleep_take();
finish:
gone:
	atomic { fin[me] = 1; wv = 0; ws = 0; r = 0; ok = 0; expired = 0; kind = 0 }
}

/* sync_sem_post: the CAS that adds the unit reports the sleepers; wakes
 * one by the address alone. */
proctype poster()
{
	byte wv, ws;
	if
	:: skip
	:: goto no_post   /* fewer posts than waiters: some must stay asleep */
	fi;
	/* the load and CAS loop: one atomic add that sees the old word */
	atomic { wv = value; ws = sleepers; value++; posted++ }
#if defined(POST_NO_WAKE)
	skip;
#elif defined(POST_WAKE_ON_ZERO)
	if
	:: wv == 0 && ws > 0 -> futex_wake_one()
	:: else -> skip
	fi;
#else
	if
	:: ws > 0 -> futex_wake_one()
	:: else -> skip
	fi;
#endif
no_post:
	posters_done++
}

init
{
	byte i;
	atomic {
		i = 0;
		do
		:: i < NW -> run waiter(i); run poster(); i++
		:: else -> break
		od
	}
}
