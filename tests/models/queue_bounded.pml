/* Model of the sleep/wake handshake of src/queue_bounded.c's push_wait and
 * pop_wait (bounded_push_wait, bounded_pop_wait) through src/queue.c's
 * queue_wait / queue_sleep / queue_wake_one (struct queue_waiters of
 * src/queue_internal.h): b->pushers sleep until a pop gives an index back
 * to fq, b->poppers until a push enqueues one on aq. A sleeper counts
 * itself in w->sleepers (seq_cst fetch_add), reads w->seq (acquire), makes
 * its attempt once more, and sleeps on w->seq; a waker makes its change
 * (a seq_cst CAS on a ring cell, then the threshold's seq_cst store),
 * then loads w->sleepers and, if it sees one, bumps w->seq and wakes one.
 * The futex is the kernel's: FUTEX_WAIT compares and sleeps atomically,
 * wake of 1 (of all: close), spurious wake-ups (a budget of one),
 * timeouts, asynchronous cancellation in the sleep (before, or just after
 * a wake-up was consumed: the cleanup handler passes it on).
 * queue_close.pml includes this file with a closer (bounded_close).
 *
 * The rings (SCQ): aq and fq are linearizable FIFOs of indices: aq a
 * channel of item ids (an item id stands for its index and slot), fq the
 * count of free indices (which index is irrelevant here). An enqueue is
 * one step (the ticket and the cell CAS that publishes; on aq it fails
 * once TAIL_CLOSED is set), then the threshold step: "if (threshold !=
 * max) store max", modelled as thr_neg[ring] (threshold < 0) cleared in
 * one step. A non-exhaustive dequeue is two steps: the threshold look
 * (thr_neg: RING_EMPTY at once), then the take (oldest, or RING_EMPTY,
 * after which the failed dequeues may have driven the threshold below 0:
 * thr_neg may be set). The exhaustive dequeue (after close) skips the
 * threshold look. So a dequeue can miss an item only in the window
 * between its enqueue's cell CAS and its threshold store, as in the ring;
 * that the ring's 3n - 1 threshold never hides an item otherwise, and
 * the ring's own FIFO order and linearizability, are Nikolaev's proof's
 * and the unit and stress tests' business.
 *
 * The store-buffering pairs (x86-TSO store buffers, mutants only; every
 * store on these paths in the C is a locked instruction: the cell CAS,
 * the ring tickets' fetch_add, xchg for the seq_cst threshold store, lock
 * xadd on sleepers and seq; futex_wait drains at its hash-bucket lock):
 *   push: aq cell CAS, threshold store; load poppers.sleepers
 *   pop_wait sleeper: fetch_add poppers.sleepers; threshold look, head
 *     ticket and cell loads
 *   pop: fq cell CAS, threshold store; load pushers.sleepers
 *   push_wait sleeper: fetch_add pushers.sleepers; closed hint, fq
 *     threshold look, head ticket and cell loads
 * A buffered store drains at any time (proctype drain) or at the thread's
 * next locked instruction.
 *
 * Mapping (C -> model):
 *   queue_wait (attempt, wait_spin, queue_sleep loop)
 *                               -> proctype pusher / popper: the attempt,
 *                                  a deadline look and one poll or none,
 *                                  then queue_sleep while EAGAIN
 *   queue_sleep                 -> inline queue_sleep
 *   futex_wait_cancelable       -> inline futex_wait_seq
 *   sleep_cancelled             -> inline sleep_cancelled
 *   queue_wake_one              -> inline wake_one
 *   queue_wake_all              -> inline wake_all (queue_close.pml)
 *   push_in_section             -> inline attempt_push
 *   pop_in_section, dequeue_item-> inline attempt_pop
 *   ring_dequeue(fq, false)     -> inline fq_dequeue
 *   ring_dequeue(aq, exh)       -> inline aq_dequeue(exh)
 *   ring_enqueue(aq) / (fq)     -> inline aq_enqueue / fq_enqueue (with
 *                                  thr_clear, the threshold store)
 *   ring_closed                 -> aqclosed
 *   bounded_close               -> proctype closer (queue_close.pml)
 *
 * Checked (monitor at quiescence: every thread returned or asleep in the
 * futex, no store buffered): no pusher asleep while fq holds a free
 * index, no popper asleep while aq holds an item (no lost wake-up, both
 * sides); indices conserved (free + queued + held == CAP) and the
 * capacity never exceeded (an assert at every enqueue on aq); no item
 * popped twice, items popped + items queued == items present at the
 * start + pushes that returned 0; a push_wait returns 0 unless timed
 * (ETIMEDOUT) or cancelled; with a closer, see queue_close.pml. */

/* Threads (this file): the queue full at the start (CAP 1, one item), one
 * pop_wait and two push_waits: the push side (two pushers asleep, a pop's
 * wake-up). queue_bounded_pop.pml: the pop side, queue_close.pml and
 * queue_close_full.pml: close. Each thread is a plain wait, a timed wait
 * or a wait cancelled in its sleep. */
/* The mutants are split between this file and queue_bounded_pop.pml to
 * save make check the compiles; THRESHOLD_RELEASE and SEQ_AFTER_LOOK fail
 * here too, REGISTER_NO_FENCE and CANCEL_NO_PASS there too. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: POP_NO_FENCE pop gives its index back to fq with a plain store before it loads pushers.sleepers: a push_wait sleeper misses the room while the pop misses the sleeper */
/* MUTANT: REGISTER_NO_FENCE queue_sleep's registration is a plain store: the sleeper's threshold look (no locked ticket before it) passes it, and the waker sees no sleeper */
/* MUTANT: WAKE_BEFORE_FREE pop wakes a pusher before it gives the index back to fq: the woken pusher finds no room and sleeps on the bumped seq */
/* MUTANT: CANCEL_NO_PASS a cancelled sleeper's cleanup unregisters but does not pass on the wake-up it may have swallowed */

#ifndef CAP
#define CAP 1           /* capacity */
#endif
#ifndef INIT
#define INIT 1          /* items queued at the start: ids 1..INIT */
#endif
#ifndef NPOP
#define NPOP 1          /* threads in pop_wait: ids 0..NPOP-1 */
#endif
#ifndef NPUSH
#define NPUSH 2         /* threads in push_wait: ids NPOP..NT-1, item id-NPOP+INIT+1 */
#endif
#ifndef POPS_EACH
#define POPS_EACH 1     /* pop_waits per popper, in a row (stopping at EPIPE) */
#endif
#ifndef POP_KINDS
#define POP_KINDS 7     /* kinds a popper may be: bit WAIT, TIMED, CWAIT */
#endif
#ifndef PUSH_KINDS
#define PUSH_KINDS 7
#endif
#define NT (NPOP + NPUSH)
#define NITEMS (INIT + NPUSH)

#if defined(PUSH_NO_FENCE) || defined(POP_NO_FENCE) || \
    defined(THRESHOLD_RELEASE) || defined(REGISTER_NO_FENCE)
#define TSO 1
#endif

#define EAGAIN    1
#define ETIMEDOUT 2
#define CANCELLED 3
#define EPIPE     4

#define WAIT  0   /* no deadline, never cancelled */
#define TIMED 1   /* a deadline that may pass at any look */
#define CWAIT 2   /* cancelled in its sleep */

#define POPPERS 0 /* b->poppers */
#define PUSHERS 1 /* b->pushers */
#define SIDE(t) ((t) < NPOP -> POPPERS : PUSHERS)

#define AQ 0
#define FQ 1

/* the queue */
chan aq = [CAP] of { byte };    /* queued items, oldest first */
byte nfree = CAP - INIT;        /* fq's free indices */
bit thr_neg[2];                 /* a ring's threshold < 0 (aq: -1 at creation) */
bit aqclosed;                   /* TAIL_CLOSED in aq's tail: decides */
bit closed;                     /* b->closed: the hint */

/* struct queue_waiters, [POPPERS] and [PUSHERS] */
byte sleepers[2];
byte seq[2];

/* the kernel: threads asleep on their side's seq */
bit asleep[NT];
#ifndef SPURIOUS
#define SPURIOUS 1
#endif
byte spurious = SPURIOUS;       /* spurious wake-ups left */

#ifdef TSO
/* x86-TSO store buffers, one per thread; a mutant buffers one kind of
 * store, so only that kind is declared (and flushed) */
#if defined(PUSH_NO_FENCE)
byte pbuf[NT];                  /* an item published on aq */
#define PENDING(t) (pbuf[t] != 0)
#elif defined(POP_NO_FENCE)
byte fbuf[NT];                  /* indices given back to fq */
#define PENDING(t) (fbuf[t] != 0)
#elif defined(THRESHOLD_RELEASE)
byte tbuf[NT];                  /* ring + 1 whose threshold store is pending */
#define PENDING(t) (tbuf[t] != 0)
#else
byte rbuf[NT];                  /* a registration in sleepers */
#define PENDING(t) (rbuf[t] != 0)
#endif
#if NT > 4
#define NOPENDING (!PENDING(0) && !PENDING(1) && !PENDING(2) && !PENDING(3) && !PENDING(4))
#elif NT > 3
#define NOPENDING (!PENDING(0) && !PENDING(1) && !PENDING(2) && !PENDING(3))
#else
#define NOPENDING (!PENDING(0) && !PENDING(1) && !PENDING(2))
#endif
#else
#define NOPENDING true
#endif

/* ghosts */
byte held;                      /* indices taken from a ring, not yet put back */
bit popped[NITEMS + 1];
byte npopped;
byte npushed;                   /* pushes that enqueued their item */
bit fin[NT];
bit closedone;                  /* the closer has returned */
bit closing;                    /* there is a closer */

#define QUIET(t) (fin[t] || asleep[t])
#if NT > 4
#define ALLQUIET (QUIET(0) && QUIET(1) && QUIET(2) && QUIET(3) && QUIET(4))
#define ANYASLEEP (asleep[0] || asleep[1] || asleep[2] || asleep[3] || asleep[4])
#elif NT > 3
#define ALLQUIET (QUIET(0) && QUIET(1) && QUIET(2) && QUIET(3))
#define ANYASLEEP (asleep[0] || asleep[1] || asleep[2] || asleep[3])
#else
#define ALLQUIET (QUIET(0) && QUIET(1) && QUIET(2))
#define ANYASLEEP (asleep[0] || asleep[1] || asleep[2])
#endif
/* at most two threads a side: [0], [NPOP - 1] pop, [NPOP], [NT - 1] push */

/* Quiescence: nothing can change but a timeout or a cancellation. */
active proctype monitor()
{
end:	atomic {
		ALLQUIET && NOPENDING && (!closing || closedone) ->
		assert(len(aq) + nfree + held == CAP && held == 0);
		assert(npopped + len(aq) == INIT + npushed);
		/* no lost wake-up */
		assert(!(asleep[0] && len(aq) > 0));
		assert(!(asleep[NPOP - 1] && len(aq) > 0));
		assert(!(asleep[NPOP] && nfree > 0));
		assert(!(asleep[NT - 1] && nfree > 0));
		/* after close, every sleeper has returned */
		assert(!closing || !ANYASLEEP)
	}
}

#ifdef TSO
inline flush(t)
{
#if defined(PUSH_NO_FENCE)
	if
	:: pbuf[t] != 0 -> aq!pbuf[t]; pbuf[t] = 0
	:: else -> skip
	fi
#elif defined(POP_NO_FENCE)
	nfree = nfree + fbuf[t]; fbuf[t] = 0
#elif defined(THRESHOLD_RELEASE)
	if
	:: tbuf[t] != 0 -> thr_neg[tbuf[t] - 1] = 0; tbuf[t] = 0
	:: else -> skip
	fi
#else
	sleepers[SIDE(t)] = sleepers[SIDE(t)] + rbuf[t]; rbuf[t] = 0
#endif
}

/* A store buffer drains at any time. */
active proctype drain()
{
	byte t;
end:	do
	:: atomic {
		select(t : 0 .. NT - 1);
		if
		:: PENDING(t) -> flush(t)
		:: else -> skip
		fi;
		t = 0
	}
	od
}
#define FLUSH() flush(me)       /* a locked instruction of thread me */
#else
#define FLUSH() skip
#endif

/* ---- the kernel ---------------------------------------------------------- */

#define WAKE1(t) :: asleep[t] && SIDE(t) == side -> asleep[t] = 0
inline futex_wake_one(side)
{
	atomic {
		if
		WAKE1(0)
		WAKE1(1)
		WAKE1(2)
#if NT > 3
		WAKE1(3)
#endif
#if NT > 4
		WAKE1(4)
#endif
		:: else -> skip
		fi
	}
}

inline futex_wake_all(side)
{
	d_step {
		asleep[0] = (SIDE(0) == side -> 0 : asleep[0]);
		asleep[1] = (SIDE(1) == side -> 0 : asleep[1]);
		asleep[2] = (SIDE(2) == side -> 0 : asleep[2]);
#if NT > 3
		asleep[3] = (SIDE(3) == side -> 0 : asleep[3]);
#endif
#if NT > 4
		asleep[4] = (SIDE(4) == side -> 0 : asleep[4]);
#endif
	}
}

/* ---- queue_internal.h's waiters (src/queue.c) ----------------------------- */

/* queue_wake_one: seq_cst load of sleepers; fetch_add seq (lock xadd:
 * drains our buffer); futex_wake 1. */
inline wake_one(side)
{
	if
	:: sleepers[side] > 0 ->
		atomic { FLUSH(); seq[side]++ }
		futex_wake_one(side)
	:: else -> skip
	fi
}

/* queue_wake_all (close): fetch_add seq; futex_wake INT_MAX. */
inline wake_all(side)
{
	seq[side]++;
#ifdef CLOSE_WAKE_ONE
	futex_wake_one(side)
#else
	futex_wake_all(side)
#endif
}

/* ---- the rings ------------------------------------------------------------ */

/* "if (threshold != threshold_max) threshold = threshold_max" (seq_cst:
 * xchg, which drains the buffer; THRESHOLD_RELEASE: a plain store). */
inline thr_clear(ring)
{
	atomic {
		if
		:: thr_neg[ring] ->
#ifdef THRESHOLD_RELEASE
			tbuf[me] = ring + 1
#else
			FLUSH(); thr_neg[ring] = 0
#endif
		:: else -> skip
		fi
	}
}

/* ring_dequeue(&b->fq, false): got = 1 with an index */
inline fq_dequeue()
{
	if
	:: thr_neg[FQ] -> got = 0            /* threshold < 0: RING_EMPTY */
	:: else ->
		atomic {
			FLUSH();                     /* the head ticket's fetch_add */
			if
			:: nfree > 0 -> nfree--; held++; got = 1
			:: else -> got = 0;
				if
				:: thr_neg[FQ] = 1       /* the failures drove it below 0 */
				:: skip
				fi
			fi
		}
	fi
}

/* ring_dequeue(&b->aq, exh): got = 1 with the oldest item in item */
inline aq_dequeue(exh)
{
	if
	:: !exh && thr_neg[AQ] -> got = 0
	:: else ->
		atomic {
			FLUSH();
			if
			:: nempty(aq) ->
				aq?item; held++; got = 1;
				assert(!popped[item]); popped[item] = 1; npopped++
			:: empty(aq) -> got = 0;
				if
				:: thr_neg[AQ] = 1
				:: skip
				fi
			fi
		}
	fi
}

/* ring_enqueue(&b->aq, idx): ok = 0 once the tail is closed */
inline aq_enqueue()
{
	atomic {
		FLUSH();                             /* the tail ticket's fetch_add */
		if
		:: aqclosed -> ok = 0
		:: else ->
			assert(len(aq) < CAP);
#ifdef PUSH_NO_FENCE
			pbuf[me] = item;                 /* a plain store */
#else
			aq!item;                         /* the cell CAS */
#endif
			held--; npushed++; ok = 1
		fi
	}
	if
	:: ok -> thr_clear(AQ)
	:: else -> skip
	fi
}

/* ring_enqueue(&b->fq, idx): never fails */
inline fq_enqueue()
{
	atomic {
		FLUSH();
		held--;
#ifdef POP_NO_FENCE
		fbuf[me]++                           /* a plain store */
#else
		nfree++                              /* the cell CAS */
#endif
	}
	thr_clear(FQ)
}

/* ---- push and pop (src/queue_bounded.c) ----------------------------------- */

/* push_in_section: r = 0, EAGAIN (full) or EPIPE */
inline attempt_push()
{
	if
	:: closed -> r = EPIPE                   /* the hint, acquire */
	:: else ->
		fq_dequeue();
		if
		:: !got ->
			if
			:: closed -> r = EPIPE
			:: else -> r = EAGAIN
			fi
		:: else ->
#ifdef LOOK_BEFORE_PUBLISH
			saw = (sleepers[POPPERS] > 0);
#endif
			aq_enqueue();
			if
			:: ok ->
#ifdef LOOK_BEFORE_PUBLISH
				if
				:: saw -> atomic { seq[POPPERS]++ }; futex_wake_one(POPPERS)
				:: else -> skip
				fi;
#else
				wake_one(POPPERS);
#endif
				r = 0
			:: else ->
				fq_enqueue();            /* closed: the index goes back */
				wake_one(PUSHERS);
				r = EPIPE
			fi
		fi
	fi
}

/* pop_in_section (dequeue_item inlined): r = 0 with item, EAGAIN or EPIPE.
 * Looks at ring_closed once and says EPIPE on that look, as the C does
 * since the fix of CLOSED_LOOKED_TWICE (queue_close.pml). */
inline attempt_pop()
{
	aq_dequeue(0);
	shut = 0;
	if
	:: !got ->
		if
		:: aqclosed -> shut = 1;
#ifndef NO_EXHAUSTIVE
			aq_dequeue(1)
#else
			skip
#endif
		:: else -> skip
		fi
	:: else -> skip
	fi;
	if
	:: !got ->
#ifdef CLOSED_LOOKED_TWICE
		if                                   /* ring_closed again */
		:: aqclosed -> r = EPIPE
		:: else -> r = EAGAIN
		fi
#else
		r = (shut -> EPIPE : EAGAIN)
#endif
	:: else ->
#ifdef WAKE_BEFORE_FREE
		wake_one(PUSHERS);
		fq_enqueue();
#else
		fq_enqueue();
		wake_one(PUSHERS);
#endif
		r = 0
	fi
}

inline attempt()
{
	if
	:: SIDE(me) == POPPERS -> attempt_pop()
	:: else -> attempt_push()
	fi
}

inline look_deadline()
{
	if
	:: kind == TIMED -> expired = 1
	:: true -> skip
	fi
}

/* sleep_cancelled: unregister, pass on the wake-up we may have taken */
inline sleep_cancelled(side)
{
	atomic { FLUSH(); sleepers[side]-- }
#ifndef CANCEL_NO_PASS
	wake_one(side);
#endif
	r = CANCELLED;
	goto finish
}

/* futex_wait_cancelable(&w->seq, seq): slept = 0 (woken, maybe
 * spuriously), EAGAIN or ETIMEDOUT; a cancellation runs the cleanup. */
inline futex_wait_seq(side)
{
	atomic {
		FLUSH();                             /* the hash bucket's lock */
		if
		:: seq[side] == myseq -> asleep[me] = 1; slept = 0
		:: else -> slept = EAGAIN
		fi
	}
	if
	:: slept == 0 ->
end_asleep:	/* a valid end: the monitor tells a lost wake-up from no item */
		if
		:: !asleep[me] -> skip                                   /* FUTEX_WAKE */
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
	:: slept == CANCELLED -> sleep_cancelled(side)
	:: else -> skip
	fi
}

/* queue_sleep: r = the attempt's result, EAGAIN (go round) or ETIMEDOUT */
inline queue_sleep(side)
{
#ifdef REGISTER_NO_FENCE
	rbuf[me]++;                              /* a plain store */
#else
	atomic { FLUSH(); sleepers[side]++ }     /* fetch_add, seq_cst */
#endif
#ifndef SEQ_AFTER_LOOK
	myseq = seq[side];                       /* acquire */
#endif
	attempt();
#ifdef SEQ_AFTER_LOOK
	myseq = seq[side];
#endif
	slept = 0;
	if
	:: r == EAGAIN ->
		look_deadline();
		if
		:: expired -> slept = ETIMEDOUT      /* timeout_before_epoch */
		:: else -> futex_wait_seq(side)
		fi
	:: else -> skip
	fi;
	atomic { FLUSH(); sleepers[side]-- }     /* fetch_sub, seq_cst */
	if
	:: r != EAGAIN -> skip
	:: r == EAGAIN && slept == ETIMEDOUT ->
		attempt();
		if
		:: r == EAGAIN -> r = ETIMEDOUT
		:: else -> skip
		fi
	:: else -> skip                          /* EAGAIN: go round */
	fi
}

/* queue_wait: the attempt, wait_spin (a deadline look, one poll or none),
 * then queue_sleep while EAGAIN */
inline queue_wait(side)
{
	attempt();
	if
	:: r == EAGAIN ->
		look_deadline();
		if
		:: expired -> r = ETIMEDOUT
		:: else ->
			if
			:: skip
			:: attempt()
			fi
		fi
	:: else -> skip
	fi;
	do
	:: r == EAGAIN -> queue_sleep(side)
	:: else -> break
	od
}

inline choose_kind(kinds)
{
	if
	:: kinds & 1 -> kind = WAIT
	:: kinds & 2 -> kind = TIMED
	:: kinds & 4 -> kind = CWAIT
	fi
}

proctype popper(byte me)
{
	byte kind, r, myseq, slept, item, n;
	bit got, ok, expired, shut, saw;
	choose_kind(POP_KINDS);
	do
	:: n < POPS_EACH ->
		queue_wait(POPPERS);
		assert(r == 0 || r == EPIPE || r == ETIMEDOUT && kind == TIMED);
		/* EPIPE: closed, and every item that was queued has come out */
		assert(r != EPIPE || aqclosed && empty(aq));
		if
		:: r == EPIPE -> break
		:: else -> n++; expired = 0
		fi
	:: else -> break
	od;
finish:
	assert(r != CANCELLED || kind == CWAIT);
	atomic { fin[me] = 1; kind = 0; r = 0; myseq = 0; slept = 0; item = 0;
		 n = 0; got = 0; ok = 0; expired = 0; shut = 0; saw = 0 }
}

proctype pusher(byte me)
{
	byte kind, r, myseq, slept, item;
	bit got, ok, expired, shut, saw, late;
	item = me - NPOP + INIT + 1;
	choose_kind(PUSH_KINDS);
	late = closedone;                        /* began after close returned */
	queue_wait(PUSHERS);
	assert(r == 0 || r == ETIMEDOUT && kind == TIMED || r == EPIPE && closing);
	assert(!late || r == EPIPE);
finish:
	assert(r != CANCELLED || kind == CWAIT);
	atomic { fin[me] = 1; kind = 0; r = 0; myseq = 0; slept = 0; item = 0;
		 got = 0; ok = 0; expired = 0; shut = 0; saw = 0; late = 0 }
}

#ifdef CLOSER
/* bounded_close: fetch_or TAIL_CLOSED on aq's tail; store closed; wake
 * every sleeper of both sides. */
proctype closer()
{
#ifdef CLOSE_WAKE_BEFORE_SEAL
	wake_all(POPPERS);
	wake_all(PUSHERS);
#endif
	aqclosed = 1;
	closed = 1;
#ifndef CLOSE_WAKE_BEFORE_SEAL
	wake_all(POPPERS);
#ifndef CLOSE_NO_WAKE_PUSHERS
	wake_all(PUSHERS);
#endif
#endif
	closedone = 1
}
#endif

init
{
	byte i;
	atomic {
		do
		:: i < INIT -> i++; aq!i
		:: else -> break
		od;
		/* an empty aq's threshold: -1 when new, >= 0 after a push
		 * and a pop (an index of fq: >= 0, its last dequeue may
		 * have been one that failed) */
		if
		:: INIT == 0 -> thr_neg[AQ] = 1
		:: true -> skip
		fi;
		i = 0;
		do
		:: i < NPOP -> run popper(i); i++
		:: else -> break
		od;
		do
		:: i < NT -> run pusher(i); i++
		:: else -> break
		od;
#ifdef CLOSER
		closing = 1;
		run closer();
#endif
		i = 0
	}
}
