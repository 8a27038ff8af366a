/* Model of src/cond.c (a futex sequence counter; broadcast wakes one waiter
 * and requeues the others onto the mutex's futex with FUTEX_CMP_REQUEUE),
 * over an abstract src/mutex.c (the lock word's LOCKED and WAITERS bits,
 * its sleepers on the same futex queue; no spinner, no hand-off: mutex.pml
 * checks those). Two waiters, each waiting for its own flag under the mutex
 * (the predicate loop of POSIX), waiter 0 with a deadline; a third thread
 * sets waiter 0's flag and broadcasts outside the mutex, signals, then
 * with the mutex held sets waiter 1's flag, signals and destroys the
 * condition variable: the interleavings of issue 10's lost wake-up (a
 * broadcast, a new waiter and a signal), and a destroy right after a
 * broadcast by a thread that holds the mutex the waiters were requeued to. Checked: no lost wake-up (every thread ends: an invalid end state
 * is a waiter asleep whose flag is set, or a thread asleep on a free mutex);
 * the mutex held on return from a wait, mutual exclusion; destroy returns 0
 * here (no waiter is blocked: every flag was set and signalled), and no
 * waiter touches the condition variable after it returned.
 * Granularity: each C11 atomic operation is one step (seq and the sleeper
 * count are one 64-bit word: one step reads or bumps both); futex(2) calls
 * are single kernel steps. See tests/models/README for the map to the C. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m100000 */
/* MUTANT: REQUEUE_INFERENCE the pre-fix "was I requeued" inference (3fa08ee): a waiter woken with seq moved and no broadcast since its snapshot re-locks by the fast path, without M_WAITERS; a waiter that registered between a broadcast's bump and its requeue was requeued all the same, and the mutex's other sleeper is stranded (issue 10, 1) */
/* MUTANT: NO_WAKE_ON_DESTROY destroy does not wake the waiters still asleep before it waits for them to leave */

#ifndef SPURIOUS
#define SPURIOUS 1      /* spurious futex wake-ups, in all */
#endif
#ifndef TIMED
#define TIMED 0         /* the waiter with a deadline (255: none) */
#endif

#define LOCKED   1      /* sync_mutex_t.state: M_LOCKED */
#define WAITERS  2      /* M_WAITERS */

#define EAGAIN    11
#define ETIMEDOUT 110
#define NONE      255

#define NTHREADS 3
#define BCASTER  2      /* the thread that signals, broadcasts, destroys */

/* the kernel's futex queues: where each thread sleeps */
#define Q_NONE  0
#define Q_COND  1       /* on the seq half of c->word */
#define Q_MUTEX 2       /* on m->state (all with MUTEX_SLEEPER_BITSET) */

byte mstate = 0;        /* m->state, LOCKED and WAITERS only */
byte seq = 0;           /* c->word, high half: the futex word */
byte sleepers = 0;      /* c->word, low half */
byte waiters = 0;       /* c->waiters */
byte wait_seq = 0;      /* c->wait_seq */
bit bound = 0;          /* c->mutex: 0 or our mutex */
#ifdef REQUEUE_INFERENCE
byte broadcasts = 0;    /* the pre-fix c->broadcasts */
#endif
byte fq[3];             /* the kernel's queues */
bit expired[3];         /* the thread's deadline has passed */
byte spurious = SPURIOUS;

bit go[2];              /* the waiters' predicates, under the mutex */
byte owner = NONE;      /* ghost: who holds the mutex */
bit destroyed = 0;      /* ghost: sync_cond_destroy returned 0 */

/* ---- the kernel ---------------------------------------------------- */

/* FUTEX_WAIT_BITSET: compare and enqueue in one step (then futex_return) */
#define FUTEX_WAIT(word, val, where, r) \
	atomic { if :: (word) != (val) -> r = EAGAIN :: else -> fq[me] = (where); r = 0 fi }

/* back from the sleep: woken (dequeued by a wake or requeue-wake), the
 * deadline (tmo: the call has one), or a spurious wake-up (returns 0) */
inline futex_return(r, tmo)
{
	atomic {
		if
		:: fq[me] == Q_NONE -> r = 0
		:: fq[me] != Q_NONE && tmo -> fq[me] = Q_NONE; expired[me] = 1; r = ETIMEDOUT
		:: fq[me] != Q_NONE && spurious > 0 -> spurious--; fq[me] = Q_NONE; r = 0
		fi
	}
}

/* wake one sleeper of queue `where`, the kernel's choice */
#define WAKE_ONE(where) \
	if \
	:: fq[0] == where -> fq[0] = Q_NONE \
	:: fq[1] == where -> fq[1] = Q_NONE \
	:: fq[2] == where -> fq[2] = Q_NONE \
	:: else \
	fi

#define WAKE_ALL(where) \
	if :: fq[0] == where -> fq[0] = Q_NONE :: else fi; \
	if :: fq[1] == where -> fq[1] = Q_NONE :: else fi; \
	if :: fq[2] == where -> fq[2] = Q_NONE :: else fi

#define MOVE_ALL(from, to) \
	if :: fq[0] == from -> fq[0] = to :: else fi; \
	if :: fq[1] == from -> fq[1] = to :: else fi; \
	if :: fq[2] == from -> fq[2] = to :: else fi

#define COUNT(where) ((fq[0] == where) + (fq[1] == where) + (fq[2] == where))

/* ---- the mutex (abstract src/mutex.c) ------------------------------ */

/* sleep_acquire, as mutex_lock_requeued: takes the lock marking M_WAITERS,
 * or marks M_WAITERS and sleeps on the lock word */
inline sleep_acquire()
{
	do
	:: atomic {
		if
		:: !(mstate & LOCKED) -> mstate = mstate | LOCKED | WAITERS; owner = me; t = 1
		:: else -> mstate = mstate | WAITERS; t = 0
		fi
	   }
	   if
	   :: t -> break
	   :: else ->
		FUTEX_WAIT(mstate, LOCKED | WAITERS, Q_MUTEX, r);
		if
		:: r == EAGAIN
		:: else -> futex_return(r, 0)  /* no deadline on the mutex */
		fi
	   fi
	od
}

/* sync_mutex_lock: try_fast/take_if_free (and the spinner's take, which
 * leaves M_WAITERS as it is), then sleep_acquire */
inline mutex_lock()
{
	atomic {
		if
		:: !(mstate & LOCKED) -> mstate = mstate | LOCKED; owner = me; t = 1
		:: else -> t = 0
		fi
	}
	if
	:: t
	:: else -> sleep_acquire()
	fi
}

/* sync_mutex_unlock: the releasing CAS clears LOCKED, and WAITERS if set,
 * then one wake by address */
inline mutex_unlock()
{
	atomic {
		assert(owner == me);
		owner = NONE;
		t = (mstate & WAITERS) != 0;
		mstate = 0
	}
	if
	:: t -> atomic { WAKE_ONE(Q_MUTEX) }
	:: else
	fi
}

/* ---- the condition variable ---------------------------------------- */

/* wait_on: bind_mutex, register, snapshot seq, unlock, sleep, leave, re-lock */
inline cond_wait(res)
{
	if
	:: !bound ->            /* bind_mutex: the first wait (under m) */
		assert(waiters == 0);
		bound = 1;
		atomic { assert(!destroyed); seq++ }
	:: else
	fi;
	atomic { assert(!destroyed); waiters++ };
	atomic { assert(!destroyed); snap = seq };
#ifdef REQUEUE_INFERENCE
	atomic { snapb = broadcasts };
#endif
	atomic { assert(!destroyed); wait_seq = snap };
	mutex_unlock();
	/* sleep_until_signalled */
	res = 0;
	sleeper = 0;
	/* spin_until_signalled: the deadline, then one look at some moment
	 * (the polls in between change nothing) */
	if
	:: me == TIMED -> expired[me] = 1
	:: true
	fi;
	if
	:: expired[me] -> t = 0
	:: else ->
		atomic {
			assert(!destroyed);
			if
			:: seq != snap -> t = 1   /* signalled: no sleep */
			:: else -> t = 0          /* sleepers seen, or out of polls */
			fi
		}
	fi;
	if
	:: t
	:: else ->
		do
		:: /* sleep_once */
			atomic { assert(!destroyed); sleepers++; s = seq };
			if
			:: s == snap ->
				FUTEX_WAIT(seq, snap, Q_COND, r);
				if
				:: r == EAGAIN
				:: else -> futex_return(r, me == TIMED)
				fi
			:: else -> r = EAGAIN
			fi;
			atomic { assert(!destroyed); sleepers-- };
			if
			:: r == 0 ->
#ifdef REQUEUE_INFERENCE
				atomic { assert(!destroyed); s = seq };
				sleeper = (s == snap) || broadcasts != snapb;
#else
				sleeper = 1;
#endif
				break
			:: else
			fi;
			atomic { assert(!destroyed); s = seq };
			if
			:: s != snap -> break
			:: r == ETIMEDOUT -> res = ETIMEDOUT; break
			:: else
			fi
		od
	fi;
	atomic { assert(!destroyed); waiters-- };  /* c may be destroyed from here on */
	if
	:: sleeper -> sleep_acquire()
	:: else -> mutex_lock()
	fi
}

inline cond_signal()
{
	if
	:: waiters == 0
	:: else ->
		atomic { t = sleepers != 0; seq++ };
		if
		:: t -> atomic { WAKE_ONE(Q_COND) }
		:: else
		fi
	fi
}

inline cond_broadcast()
{
	if
	:: waiters == 0
	:: else ->
		m = bound;      /* requeue_target, read before the bump */
		atomic { t = sleepers != 0; seq++; s = seq };
		if
		:: t ->
#ifdef REQUEUE_INFERENCE
			if
			:: m -> broadcasts++
			:: else
			fi;
#endif
			atomic {  /* FUTEX_CMP_REQUEUE(seq, s, wake 1, move all, m) */
				if
				:: m && seq == s -> WAKE_ONE(Q_COND); MOVE_ALL(Q_COND, Q_MUTEX); t = 0
				:: else
				fi
			}
			if
			:: t -> atomic { WAKE_ALL(Q_COND) }
			:: else
			fi
		:: else
		fi
	fi
}

/* sync_cond_destroy: EBUSY only for a waiter no signal reached, asleep
 * (the kernel's count); else wakes the sleepers and waits for the waiters
 * to leave. The VANISHED_AFTER_NS limits only matter for waiters that
 * vanished, which this model has not: a re-read is a wait for a change. */
inline cond_destroy(res)
{
	res = 0;
	if
	:: waiters == 0
	:: else ->
		do      /* waiter_is_blocked */
		:: s = seq;
		   ws = wait_seq;
		   w = waiters;
		   if
		   :: ws != s || w == 0 -> res = 0; break
		   :: else
		   fi;
		   atomic { k = (seq == s -> COUNT(Q_COND) : 0) };
		   if
		   :: k > 0 -> res = 16; break   /* EBUSY */
		   :: else
		   fi;
		   (seq != s || wait_seq != ws || waiters != w || COUNT(Q_COND) != k)
		od;
		if
		:: res == 0 ->
			m = bound;
#ifndef NO_WAKE_ON_DESTROY
			atomic { WAKE_ALL(Q_COND) };
			if
			:: m -> atomic { WAKE_ALL(Q_MUTEX) }
			:: else
			fi;
#endif
			waiters == 0    /* wait_for_woken_waiters */
		:: else
		fi
	fi;
	if
	:: res == 0 -> destroyed = 1
	:: else
	fi
}

proctype waiter(byte me)
{
	byte snap, s, r, res;
#ifdef REQUEUE_INFERENCE
	byte snapb;
#endif
	bit t, sleeper;

	mutex_lock();
	do
	:: go[me] -> break
	:: !go[me] ->
		cond_wait(res);
		assert(owner == me);    /* the mutex is held on return */
		if
		:: res == ETIMEDOUT -> assert(me == TIMED); break
		:: else
		fi
	od;
	mutex_unlock()
}

proctype bcaster(byte me)
{
	byte s, ws, w, k, r, res;
	bit t, m;

	mutex_lock(); go[0] = 1; mutex_unlock();
	cond_broadcast();
	cond_signal();
	mutex_lock(); go[1] = 1;
	cond_signal();
	cond_destroy(res);      /* with m held: requeued waiters sit on m */
	assert(res == 0);
	mutex_unlock()
}

init
{
	atomic {
		run waiter(0);
		run waiter(1);
		run bcaster(BCASTER)
	}
}
