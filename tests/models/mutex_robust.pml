/* Model of src/mutex_robust.c (the kernel's robust-futex protocol, as
 * glibc's robust mutexes: Drepper's mutex 2 with the owner's tid in the
 * word) and of the kernel's part at a thread's death (exit_robust_list,
 * handle_futex_death). 3 threads, each lock, critical section, unlock;
 * thread 0 may die, thread 2 has a deadline. The run chooses at its start
 * a private robust mutex (one process: a thread dies only by exiting while
 * it holds the lock) or a process-shared one (each thread its own process,
 * killed at any step: acquiring, asleep, holding, unlocking, between its
 * set_pending and its list_add), and whether an earlier owner (a fourth
 * thread, gone) died holding it before the three start. A holder that got
 * EOWNERDEAD calls consistent() or not. Checked: mutual exclusion (a ghost
 * owner asserted at every take and in the critical section); a take
 * returns EOWNERDEAD exactly when the previous holder died holding it,
 * else 0 (so consistent() made it usable again); the unlock poisons
 * exactly when no consistent() came; after that no take succeeds, and
 * ENOTRECOVERABLE comes only then; the kernel finds every lock whose word
 * holds the dead thread's tid; no lost wake-up (invalid end state: every
 * live thread ends, none sleeps on a free, abandoned or unrecoverable
 * lock). Granularity as in mutex.pml: one step per atomic of the C, a CAS
 * loop that recomputes from the value it failed on is one step, futex(2)
 * calls are kernel steps. With -DBARGER (thread 1 locks twice: checked by
 * mutex_robust_barger.pml) a timed locker woken just before its deadline
 * finds the lock taken by a barger; -DTIMEOUT_BEFORE_MARK (the order of
 * the C until this model found it) then loses that wake-up. See
 * tests/models/README for the map to the C, function by function. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: KERNEL_NO_WAKE the death path marks FUTEX_OWNER_DIED but wakes no waiter (FUTEX_WAITERS set): the sleepers stay asleep on an abandoned lock */
/* MUTANT: POISON_WAKES_ONE an unlock of an inconsistent mutex (no sync_mutex_consistent after EOWNERDEAD) wakes one sleeper, not all: the others sleep on an unrecoverable mutex for ever */
/* MUTANT: DEAD_TAKE_CLEARS_WAITERS a locker that takes an owner-dead lock drops FUTEX_WAITERS: its unlock wakes no one while others sleep */
/* MUTANT: PENDING_UNSEEN the kernel does not see list_op_pending: a thread that dies between its take and its list_add (or between list_del and the release) leaves the lock held by a dead tid for ever */
/* MUTANT: SLEEPER_TAKES_WITHOUT_WAITERS a woken sleeper takes a free lock without setting FUTEX_WAITERS (taken() without `slept`): the unlock that woke it cleared the bit, the next sleeper is stranded */

#ifndef NTHREADS
#define NTHREADS 3
#endif
#ifndef KILLABLE
#define KILLABLE 0      /* the thread that may die (255: none) */
#endif
#ifndef TIMED
#define TIMED 2         /* the thread with a deadline (255: none) */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1      /* spurious futex wake-ups, in all */
#endif
/* Lock/unlock rounds of thread t. With -DBARGER thread 1 locks twice: its
 * second lock barges in after its own unlock, which reaches the lost
 * wake-up of the timed locker reported with this model (see README). */
#ifdef BARGER
#define ITER(t) (t == 1 -> 2 : 1)
#else
#define ITER(t) 1
#endif

/* The lock word, in a byte: the tid field (bits 0-2), FUTEX_WAITERS,
 * FUTEX_OWNER_DIED. Thread t's tid is t + 1; R_FREE and R_NOTRECOVERABLE
 * are tids no thread has, as in the C. */
#define TIDM     7
#define R_FREE   6
#define R_NOTREC 7
#define W        8      /* FUTEX_WAITERS */
#define OD       16     /* FUTEX_OWNER_DIED */
#define TID(s)   ((s) & TIDM)
#define MYTID    (me + 1)
#define IS_FREE(s)    (TID(s) == R_FREE)
#define OWNER_DIED(s) (((s) & OD) && TID(s) == 0)

#define INCONS   1      /* m->owner == R_INCONSISTENT */

#define EBUSY     16
#define EAGAIN    11
#define EINTR     4
#define ETIMEDOUT 110
#define EOWNERDEAD 130
#define ENOTREC   131
#define NONE      255

byte state = R_FREE;        /* m->state */
byte mowner = 0;            /* m->owner: 0 or R_INCONSISTENT */
bit q[NTHREADS];            /* kernel: queued on m->state */
bit expired[NTHREADS];      /* the thread's deadline has passed */
byte spurious = SPURIOUS;   /* spurious futex wake-ups the kernel may still give */
bit pshared;                /* chosen at the start: SYNC_PSHARED */
bit recheck;                /* pshared: the sleepers' periodic second look is on */
bit pending[NTHREADS];      /* the thread's list_op_pending is m */
bit inlist[NTHREADS];       /* m is linked in the thread's robust list */
bit killed;                 /* KILLABLE has died */

byte owner = NONE;          /* ghost: whose tid the word holds (live holder) */
bit abandoned;              /* ghost: the kernel marked the word for a dead
                             * holder, and no one has taken it since */
bit inconsistent;           /* ghost: taken with EOWNERDEAD, no consistent() yet */
bit poisoned;               /* ghost: unlocked while inconsistent */
bit holding[NTHREADS];      /* ghost: between lock's return and unlock */
bit done[NTHREADS];         /* ghost: the thread has finished */
bit owed[NTHREADS];         /* ghost: the thread holds a wake-up others need:
                             * woken by a wake of one and not yet back in the
                             * kernel's queue or marked FUTEX_WAITERS, or an
                             * unlock between its release and its wake */

/* timeout_passed(abstime): the deadline of the timed thread may pass at any
 * moment (monotonic); the others have none. */
inline timeout_passed(res)
{
	if
	:: me == TIMED -> expired[me] = 1
	:: true
	fi;
	res = expired[me]
}

/* ghost bookkeeping of a successful take (inside the taking step) */
inline took_lock(r)
{
	assert(owner == NONE);
	assert(!poisoned);
	assert((r == EOWNERDEAD) == abandoned);
	inconsistent = abandoned;
	abandoned = 0;
	owner = me;
	owed[me] = 0
}

/* FUTEX_WAKE(_BITSET) of one: any queued thread (the kernel's choice) */
inline futex_wake_one()
{
	atomic {
		if
		:: q[0] -> q[0] = 0; owed[0] = 1
		:: NTHREADS > 1 && q[1] -> q[1] = 0; owed[1] = 1
		:: NTHREADS > 2 && q[2] -> q[2] = 0; owed[2] = 1
		:: else
		fi
	}
}

/* FUTEX_WAKE(_BITSET) of INT_MAX */
inline futex_wake_all()
{
	atomic {
		q[0] = 0;
		if
		:: NTHREADS > 1 -> q[1] = 0
		:: else
		fi;
		if
		:: NTHREADS > 2 -> q[2] = 0
		:: else
		fi
	}
}

/* sleep_on(m, val, abstime): FUTEX_WAIT_BITSET, compare and enqueue in one
 * kernel step, then one step back: woken (0), the deadline (ETIMEDOUT, the
 * timed thread, only while queued), a spurious return (0), or, process-
 * shared, futex_wait's periodic second look (EINTR) once a death has lost
 * a wake-up (see recheck). */
inline sleep_on(val, r)
{
	atomic {
		if
		:: state != (val) -> r = EAGAIN
		:: else -> q[me] = 1; owed[me] = 0; r = 0
		fi
	}
	if
	:: r == EAGAIN
	:: else ->
		atomic {
			if
			:: !q[me] -> r = 0
			:: q[me] && me == TIMED -> q[me] = 0; expired[me] = 1; r = ETIMEDOUT
			:: q[me] && spurious > 0 -> spurious--; q[me] = 0; r = 0
			:: q[me] && recheck -> q[me] = 0; r = EINTR
			fi
		}
	fi
}

#ifdef DEAD_TAKE_CLEARS_WAITERS
#define TAKEN(s) (OWNER_DIED(s) -> MYTID : (MYTID | ((s) & W) | (slept -> W : 0)))
#elif defined(SLEEPER_TAKES_WITHOUT_WAITERS)
#define TAKEN(s) (MYTID | ((s) & W))
#else
#define TAKEN(s) (MYTID | ((s) & W) | (slept -> W : 0))   /* taken() */
#endif

/* take_once: the CAS loop on a word that looked free or abandoned is one
 * step (it takes at its last read); a word that looked held is EBUSY (or
 * ENOTRECOVERABLE) from the look alone. */
inline take_once(r)
{
	r = EBUSY;
	if
	:: IS_FREE(s) || OWNER_DIED(s) ->
		atomic {
			s = state;
			if
			:: IS_FREE(s) || OWNER_DIED(s) ->
				if
				:: OWNER_DIED(s) -> r = EOWNERDEAD
				:: else -> r = 0
				fi;
				state = TAKEN(s);
				took_lock(r)
			:: else
			fi
		}
	:: else
	fi;
	if
	:: r == EBUSY && TID(s) == R_NOTREC -> r = ENOTREC
	:: else
	fi
}

/* take_or_sleep: take_once; the deadline, if it has not slept yet; mark
 * FUTEX_WAITERS (a CAS against the word looked at: on failure, take_once
 * again on what it found); the deadline (a woken locker gives up only with
 * the bit on the holder's word, so that the wake-up it took passes on);
 * sleep on the marked word; look again. */
inline take_or_sleep(r)
{
	atomic {
		/* robust_acquire's set_pending and take_or_sleep's load in one
		 * step: a death between them is a death just after the load */
		pending[me] = 1;
		s = state               /* load_state */
	}
	slept = 0;
	do
	:: take_once(r);
	   if
	   :: r != EBUSY -> break
	   :: else
	   fi;
#ifdef TIMEOUT_BEFORE_MARK
	   timeout_passed(t);
	   if
	   :: t -> r = ETIMEDOUT; break
	   :: else
	   fi;
#else
	   if
	   :: !slept ->         /* took no wake-up: may give up at once */
		timeout_passed(t);
		if
		:: t -> r = ETIMEDOUT; break
		:: else
		fi
	   :: else
	   fi;
#endif
	   if
	   :: !(s & W) ->
		atomic {
			if
			:: state == s -> state = s | W; owed[me] = 0; ok = 1
			:: else -> s = state; ok = 0
			fi
		}
	   :: else -> ok = 1
	   fi;
	   if
	   :: ok ->
#ifndef TIMEOUT_BEFORE_MARK
		/* gives up only with FUTEX_WAITERS on the holder's word */
		timeout_passed(t);
		if
		:: t -> r = ETIMEDOUT; break
		:: else
		fi;
#endif
		sleep_on(s | W, r);
		if
		:: r == ETIMEDOUT -> break
		:: else
		fi;
		slept = 1;
		s = state       /* load_state */
	   :: else
	   fi
	od
}

/* robust_acquire: set_pending (in take_or_sleep); take_or_sleep; list_add
 * if taken (one step: the kernel reads the list only once the thread has
 * stopped, and m is in it once the head points at it); set_pending(NULL)
 * and R_INCONSISTENT after EOWNERDEAD (one step: m->owner is read only by
 * the holder, and a death on either side of the store is the same to the
 * others). The first load_state only answers EDEADLK: no recursion here. */
inline robust_lock(r)
{
	take_or_sleep(r);
	if
	:: r == 0 || r == EOWNERDEAD -> inlist[me] = 1
	:: else
	fi;
	atomic {
		pending[me] = 0;
		owed[me] = 0;
		if
		:: r == EOWNERDEAD -> mowner = INCONS
		:: else
		fi
	}
}

/* robust_consistent, called by the holder after EOWNERDEAD */
inline robust_consistent()
{
	atomic {
		assert(owner == me && mowner == INCONS && inconsistent);
		mowner = 0;
		inconsistent = 0
	}
}

/* robust_unlock: the poison decision (m->owner), set_pending and list_del
 * (one step: to the kernel, m pending is m pending, in the list or not);
 * the exchange to R_FREE or R_NOTRECOVERABLE; the wake (all sleepers after
 * a poison, one if FUTEX_WAITERS was set); set_pending(NULL). */
inline robust_unlock()
{
	atomic {
		assert(owner == me);
		holding[me] = 0;
		poison = (mowner == INCONS);
		pending[me] = 1;
		inlist[me] = 0          /* list_del */
	}
	atomic {
		old = state;
		assert(TID(old) == MYTID);
		assert(poison == inconsistent);
		poisoned = poisoned || inconsistent;
		if
		:: poison -> state = R_NOTREC
		:: else -> state = R_FREE
		fi;
		owner = NONE;
		owed[me] = poison || (old & W)
	}
	if
	:: poison ->
#ifdef POISON_WAKES_ONE
		futex_wake_one()
#else
		futex_wake_all()
#endif
	:: !poison && (old & W) -> futex_wake_one()
	:: else
	fi;
	atomic {
		owed[me] = 0;
		pending[me] = 0
	}
}

proctype thread(byte me)
{
	byte s, old, r, i;
	bit t, ok, slept, poison;
	i = 0;
	{
		do
		:: i < ITER(me) ->
			i++;
			robust_lock(r);
			if
			:: r == 0 || r == EOWNERDEAD ->
				atomic {
					holding[me] = 1;
					assert(owner == me)
				};
				if
				:: r == EOWNERDEAD ->
					if
					:: robust_consistent()
					:: skip  /* leaves it inconsistent */
					fi
				:: else
				fi;
				robust_unlock()
			:: r == ENOTREC -> assert(poisoned)
			:: r == ETIMEDOUT -> assert(me == TIMED)
			fi
		:: i >= ITER(me) -> break
		od;
		done[me] = 1
	} unless { killed && me == KILLABLE }
}

/* The death of KILLABLE and the kernel's exit_robust_list: private, only
 * while it holds the lock (a thread exits between calls); shared, at any
 * step. The kernel drops it from the futex queue; a wake-up it held is lost
 * (then, shared, the sleepers' periodic second look is what saves the
 * others: only from then on is it modelled). handle_futex_death on m, if m
 * is in its list or its list_op_pending: a pending m whose tid field is 0
 * gets a wake; a word with the dead tid gets FUTEX_OWNER_DIED, keeping
 * FUTEX_WAITERS, tid 0, and a wake of one if FUTEX_WAITERS (a later step:
 * the kernel's cmpxchg, then its futex_wake). */
active proctype killer()
{
	bit seen, kwake;
end:	atomic {
		KILLABLE < NTHREADS && !done[KILLABLE] &&
		(pshared || holding[KILLABLE]) ->
		killed = 1;
		q[KILLABLE] = 0;
		holding[KILLABLE] = 0;
		if
		:: pshared && owed[KILLABLE] -> recheck = 1
		:: else
		fi;
#ifdef PENDING_UNSEEN
		seen = inlist[KILLABLE];
#else
		seen = inlist[KILLABLE] || pending[KILLABLE];
#endif
		/* the kernel finds every lock that holds the dead tid */
		assert(owner != KILLABLE || seen);
		if
		:: seen && pending[KILLABLE] && TID(state) == 0 -> kwake = 1
		:: seen && TID(state) == KILLABLE + 1 ->
			kwake = (state & W) != 0;
			state = (state & W) | OD;
			owner = NONE;
			abandoned = 1
		:: else
		fi
	}
#ifdef KERNEL_NO_WAKE
	kwake = 0;
#endif
	if
	:: kwake -> futex_wake_one()
	:: else
	fi
}

init
{
	byte k = 0;
	atomic {
		if
		:: pshared = 0
		:: pshared = 1
		fi;
		if
		:: skip
		:: state = OD; abandoned = 1  /* an earlier owner died holding it */
		fi;
		do
		:: k < NTHREADS -> run thread(k); k++
		:: else -> break
		od
	}
}
