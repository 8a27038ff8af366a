/* Model of src/mutex.c (Drepper's mutex 3 with a single spinner and a
 * hand-off to a starving heir), private mutex: 3 threads of one process
 * (one token), one of them with a deadline (sync_mutex_timedlock). Checked:
 * mutual exclusion (assert in the critical section); no lost wake-up (every
 * thread ends: an invalid end state is a thread asleep on a lock no one
 * holds any more); the heir's claim (no other thread takes the lock while
 * an heir holds M_HANDOFF). mutex_pshared.pml includes this file for a
 * process-shared mutex with a waiter of another process that is killed.
 * Granularity: every atomic read-modify-write of the state word is one step;
 * a CAS loop that recomputes its new value from the value it failed on is
 * one step (it succeeds on the value it last read), its preceding load
 * included; futex(2) calls are single kernel steps. See tests/models/README
 * for the map to the C, function by function. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: SLEEPER_TAKES_WITHOUT_WAITERS a thread that takes the lock out of a sleep does not set M_WAITERS again (the lost wake-up of the pre-fix cond's plain re-lock): the unlock that woke it cleared the bit, other sleepers are stranded */
/* MUTANT: HEIR_NOT_WOKEN an unlock that finds a live heir wakes an ordinary sleeper (BITSET_SLEEPER) instead of the heir */

#ifndef PSHARED
#define PSHARED 0
#endif
#ifndef NTHREADS
#define NTHREADS 3
#endif
#ifndef ITER
#define ITER 1          /* lock/unlock rounds per thread */
#endif
#ifndef TIMED
#define TIMED 2         /* the thread with a deadline (255: none) */
#endif
#ifndef LOST
#define LOST 2          /* LOST_RACES_BEFORE_HANDOFF (4 in the C) */
#endif
#ifndef SPINS
#define SPINS 2         /* looks at the lock word per spin (SPIN_PAUSES) */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1      /* spurious futex wake-ups, in all */
#endif
#ifndef TOKEN
#define TOKEN(t) 1      /* the process token of thread t */
#endif
#ifndef KILLABLE
#define KILLABLE 255    /* the thread that may be killed while it waits */
#endif

/* sync_mutex_t.state: the C's bits; the token field holds 0, 1 or 2. */
#define LOCKED   1
#define WAITERS  2
#define HANDOFF  4
#define TOKMASK  248
#define TOK(s)   ((s) >> 3)
#define TOKBITS(t) ((t) << 3)

/* futex bitsets (BITSET_SLEEPER, BITSET_HEIR) */
#define B_SLEEPER 1
#define B_HEIR    2

#define EAGAIN    11
#define EINTR     4
#define ETIMEDOUT 110
#define NONE      255

byte state = 0;             /* m->state */
byte spinner = 0;           /* m->spinner: the spinner's claim (a token) */
byte q[3];                  /* kernel: 0 not queued on m->state, else bitset */
bit expired[3];             /* the thread's deadline has passed */
byte spurious = SPURIOUS;   /* spurious wake-ups the kernel may still give */

byte owner = NONE;          /* ghost: who holds the lock */
byte incs = 0;              /* ghost: threads in the critical section */
byte heir = NONE;           /* ghost: the thread whose M_HANDOFF claim stands */
bit killed = 0;             /* ghost: KILLABLE was killed */
bit haswake = 0;            /* ghost: KILLABLE was woken by an unlock and has
                             * not yet looked at the word again */
bit recheck = 0;            /* KILLABLE died holding a wake-up: the pshared
                             * sleepers' periodic second look is on */
byte woke = NONE;           /* scratch of futex_wake_one */
bit inlock[3];              /* ghost: in lock_slow, not holding the lock */

/* The deadline of a timed thread may pass at any moment: a look at the
 * clock (timeout_passed) may find it passed. */
inline timeout_passed(res)
{
	if
	:: me == TIMED -> expired[me] = 1
	:: true
	fi;
	res = expired[me]
}

/* ghost bookkeeping of a successful take (inside the taking step) */
inline took_lock()
{
	assert(owner == NONE);
	assert(heir == NONE || heir == me);
	owner = me
}

/* FUTEX_WAIT_BITSET on m->state: compare and enqueue in one kernel step,
 * then one step back: woken (dequeued by a waker), the deadline (only a
 * timed thread), or a spurious wake-up (a stale wake, a signal: returns 0). */
inline futex_wait(val, bits, r)
{
	atomic {
		if
		:: state != val -> r = EAGAIN
		:: else -> q[me] = bits; r = 0
		fi
	}
	if
	:: r == EAGAIN
	:: else ->
		atomic {
			if
			:: q[me] == 0 -> r = 0
			:: q[me] != 0 && me == TIMED -> q[me] = 0; expired[me] = 1; r = ETIMEDOUT
			:: q[me] != 0 && spurious > 0 -> spurious--; q[me] = 0; r = 0
			:: q[me] != 0 && recheck -> q[me] = 0; r = EINTR
			fi
		}
	fi
}

/* FUTEX_WAKE_BITSET of one waiter whose bitset matches (the kernel's
 * choice: any of them). */
inline futex_wake_one(bits)
{
	atomic {
		if
		:: q[0] & bits -> q[0] = 0; woke = 0
		:: NTHREADS > 1 && (q[1] & bits) -> q[1] = 0; woke = 1
		:: NTHREADS > 2 && (q[2] & bits) -> q[2] = 0; woke = 2
		:: else -> woke = NONE
		fi;
		if
		:: woke == KILLABLE -> haswake = 1
		:: else
		fi;
		woke = NONE
	}
}

/* without_stamp(s, token) */
#define WITHOUT_STAMP(s) (((s) & HANDOFF) || TOK(s) != tok -> (s) : ((s) & ~TOKMASK))

/* try_fast + take_if_free: the CAS 0 -> LOCKED, then the CAS loop that
 * takes a lock neither held nor promised to an heir, keeping other bits. */
inline try_fast(ok)
{
	atomic {
		if
		:: !(state & (LOCKED | HANDOFF)) -> state = state | LOCKED; ok = 1; took_lock()
		:: else -> ok = 0
		fi
	}
}

/* spin_take: looks at the word, takes it free dropping our stamp in the
 * same CAS, gives up at an heir, stamps a held lock that has sleepers. */
inline spin_take(ok)
{
	n = 0;
	ok = 0;
	do
	:: n >= SPINS -> break
	:: n < SPINS ->
		n++;
		timeout_passed(t);
		if
		:: t -> break
		:: else
		fi;
		atomic {
			s = state;
			if
			:: !(s & (LOCKED | HANDOFF)) ->
				state = WITHOUT_STAMP(s) | LOCKED; ok = 1; took_lock()
			:: else
			fi
		}
		if
		:: ok || (s & HANDOFF) -> break
		:: else
		fi;
		/* stamp_if_sleepers: a relaxed CAS expecting the value looked at */
		atomic {
			if
			:: (s & (LOCKED | WAITERS | HANDOFF)) == (LOCKED | WAITERS) &&
			   TOK(s) != tok && state == s ->
				state = (s & ~TOKMASK) | TOKBITS(tok)
			:: else
			fi
		}
	od
}

/* spin_acquire: spin_learn_budget, claim_spinner, spin_take, drop_stamp,
 * release_spinner. A learned budget of 0 skips the claim (any choice: the
 * budget is a hint that other threads' spins change). */
inline spin_acquire(ok)
{
	ok = 0;
	atomic {
		if
		:: spinner == 0 -> spinner = tok; claimed = 1
		:: true -> claimed = 0    /* budget 0, or another spinner's claim */
		fi
	}
	if
	:: claimed ->
		spin_take(ok);
		if
		:: !ok -> atomic { state = WITHOUT_STAMP(state) }  /* drop_stamp */
		:: else
		fi;
		atomic {  /* release_spinner */
			if
			:: spinner == tok -> spinner = 0
			:: else
			fi
		}
	:: else
	fi
}

/* heir_timeout: gives up the claim at the deadline, or takes a free lock */
inline heir_timeout(r)
{
	atomic {
		s = state;
		if
		:: !(s & LOCKED) -> state = (s & ~(HANDOFF | TOKMASK)) | LOCKED; r = 0;
			heir = NONE; took_lock()
		:: else -> state = s & ~(HANDOFF | TOKMASK); r = ETIMEDOUT; heir = NONE
		fi
	}
}

/* heir_acquire: M_HANDOFF is ours; sleep on BITSET_HEIR until released */
inline heir_acquire(r)
{
	do
	:: atomic {
		s = state;
		if
		:: !(s & LOCKED) ->
			state = (s & ~(HANDOFF | TOKMASK)) | LOCKED; heir = NONE;
			took_lock(); act = 1
		:: else -> act = 0
		fi
	   }
	   if
	   :: act -> r = 0; break
	   :: else ->
		futex_wait(s, B_HEIR, r);
		if
		:: r == ETIMEDOUT -> heir_timeout(r); break
		:: else
		fi
	   fi
	od
}

#ifdef SLEEPER_TAKES_WITHOUT_WAITERS
#define SLEEPER_TAKES LOCKED
#else
#define SLEEPER_TAKES (LOCKED | WAITERS)
#endif

/* sleep_acquire (also mutex_lock_requeued): each pass of the loop is one
 * decision on the word, made by one CAS: take it marking M_WAITERS, drop
 * a stale heir's claim, claim the hand-off, or mark M_WAITERS and sleep. */
inline sleep_acquire(r)
{
	lost = 0;
	do
	:: atomic {
		s = state;
		if
		:: me == KILLABLE -> haswake = 0
		:: else
		fi;
		if
		:: !(s & (LOCKED | HANDOFF)) -> state = s | SLEEPER_TAKES; took_lock(); act = 1
		:: (s & HANDOFF) && TOK(s) != tok -> state = s & ~(HANDOFF | TOKMASK); act = 2
		:: (s & (LOCKED | HANDOFF)) == LOCKED && lost >= LOST && !PSHARED ->
			state = (s & ~TOKMASK) | HANDOFF | WAITERS | TOKBITS(tok);
			heir = me; act = 3
		:: else ->
			state = s | WAITERS; s = s | WAITERS; act = 4
		fi
	   }
	   if
	   :: act == 1 -> r = 0; break
	   :: act == 2
	   :: act == 3 -> heir_acquire(r); break
	   :: act == 4 ->
		futex_wait(s, B_SLEEPER, r);
		if
		:: r == ETIMEDOUT -> break
		:: r == 0 -> lost++
		:: else
		fi
	   fi
	od
}

/* lock_slow: a deadline already past, the spin, the sleep */
inline lock_slow(r)
{
	inlock[me] = 1;
	timeout_passed(t);
	if
	:: t -> r = ETIMEDOUT
	:: else ->
		spin_acquire(ok);
		if
		:: ok -> r = 0
		:: else -> sleep_acquire(r)
		fi
	fi;
	inlock[me] = 0
}

/* released(s, token, &wake): the unlock's decision from the replaced word */
inline released(s, want, wake)
{
#ifdef TRUST_FOREIGN_STAMP
	own = TOK(s) != 0;
#else
	own = TOK(s) == tok;
#endif
	if
	:: (s & HANDOFF) && own ->
#ifdef HEIR_NOT_WOKEN
		wake = B_SLEEPER;
#else
		wake = B_HEIR;
#endif
		want = s & ~LOCKED
	:: else ->
		want = s & ~(LOCKED | HANDOFF);
		if
		:: !own -> want = want & ~TOKMASK
		:: else
		fi;
		if
		:: !(s & WAITERS) || own -> wake = 0
		:: else -> wake = B_SLEEPER; want = want & ~WAITERS
		fi
	fi
}

/* sync_mutex_unlock: the fast CAS LOCKED -> 0, else unlock_slow:
 * clear_foreign_claim, the releasing CAS, one futex wake by address. */
inline unlock()
{
	atomic {
		assert(owner == me);
		if
		:: state == LOCKED -> state = 0; owner = NONE; act = 0
		:: else -> act = 1
		fi
	}
	if
	:: act ->
		atomic {  /* clear_foreign_claim (load, CAS) */
			if
			:: spinner != 0 && spinner != tok -> spinner = 0
			:: else
			fi
		}
		atomic {
			s = state;
			assert(s & LOCKED);
			released(s, want, wake);
			state = want;
			owner = NONE
		}
		if
		:: wake != 0 -> futex_wake_one(wake)
		:: else
		fi
	:: else
	fi
}

proctype thread(byte me)
{
	byte tok = TOKEN(me);
	byte s, want, wake, n, lost, r, i;
	byte act;
	bit ok, t, claimed, own;
	i = 0;
	{
		do
		:: i < ITER ->
			i++;
			try_fast(ok);
			if
			:: ok -> r = 0
			:: else -> lock_slow(r)
			fi;
			if
			:: r == 0 ->
				incs++;
				assert(incs == 1 && owner == me);
				incs--;
				unlock()
			:: else -> assert(r == ETIMEDOUT && me == TIMED)
			fi
		:: i >= ITER -> break
		od
	} unless { killed && me == KILLABLE };
}

/* A waiter of another process killed at any moment of its wait. If an
 * unlock had just woken it (it has not looked at the word since), that
 * wake-up is lost with it: then, as in the C, the process-shared sleepers'
 * periodic second look (futex_wait's EINTR every 10 ms) is what saves the
 * others, and only then is it modelled. The kernel drops it from the futex
 * queue. */
active proctype killer()
{
end:	atomic {
		KILLABLE < NTHREADS && inlock[KILLABLE] && owner != KILLABLE ->
			killed = 1; q[KILLABLE] = 0;
			inlock[KILLABLE] = 0; recheck = haswake; haswake = 0
	}
}

init
{
	byte k = 0;
	atomic {
		do
		:: k < NTHREADS -> run thread(k); k++
		:: else -> break
		od
	}
}
