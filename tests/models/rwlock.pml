/* Model of src/rwlock.c (private lock, default writer preference): the
 * 64-bit state word (WRITER, RSLEEP, WSLEEP, waiting writers in the low
 * half; read holds and HSLEEP in the high half) and its two halves as
 * futexes, with the futex as the kernel defines it: FUTEX_WAIT_BITSET
 * compares one half and sleeps atomically, wakes of 1 or all by bitset
 * (FUTEX_READERS, FUTEX_WRITERS), spurious wake-ups, timeouts.
 *
 * Every C atomic on the state word is one atomic step here; a CAS retry
 * loop is the atomic read-modify-write it implements (a failed CAS changes
 * nothing but the caller's view), a lone CAS against a view read earlier
 * compares the whole word with that view. All of them are on one location,
 * so there is no store-buffering pair and no store buffer is modelled.
 *
 * Mapping (C function -> model inline):
 *   inline sync_impl_rwlock_rdlock (fetch_add, low == 0) -> rd_fast
 *   read_acquire_looking (CAS 0 -> one, fetch_add)     -> rd_looking
 *   read_undo_and_wait (CAS loop, wake_writers_high)    -> rd_undo
 *   read_slow / read_wait / read_try (CAS loop)         -> rd_wait, read_try
 *   read_sleep_once (CAS RSLEEP, futex_wait low)        -> in rd_wait
 *   sync_rwlock_rdunlock + inline fast path,
 *     sync_impl_rwlock_rdunlock_slow                    -> rd_unlock
 *   write_acquire / write_try (CAS loop)                -> wr_lock, write_try
 *   write_wait / write_try_registered / register_writer -> wr_wait
 *   write_sleep_once (CAS HSLEEP / WSLEEP, futex_wait)  -> in wr_wait
 *   writer_give_up                                      -> wr_give_up
 *   sync_rwlock_wrunlock / release_plain / released      -> wr_unlock
 *   wake_readers / wake_writers_low / wake_writers_high(_released)
 *                                                       -> wake_* inlines
 * Abstracted away: process-shared locks (wake all writers, 10 ms second
 * looks), stale and phantom registrations (drops, heartbeat, wtoken, fork),
 * PREFER_READER, the read-count limit, EDEADLK/EPERM misuse, an rdunlock
 * of an unheld lock, the read spin (a failed read_try changes nothing, and
 * read_wait starts with one), sync_impl_rwlock_pshared_seen's library
 * fetch-and-add path (it accepts a stale RSLEEP the inline path sends to
 * read_try).
 * Checked (NT threads, each a reader or a writer, thread 0 plain or timed,
 * the others plain, one lock and unlock each): reader/writer and writer/writer exclusion, WRITER set iff a
 * writer holds, HSLEEP only with a registration (what the inline rdunlock
 * fast path assumes); writer preference: no reader gets in while a writer
 * is registered; no lost wake-up: no thread asleep while every other one
 * has returned (or is asleep too). */

/* SPIN: -DNT=3 */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: UNDO_NO_WAKE a blocked reader's undo that takes the read count to 0 neither clears HSLEEP nor wakes the writers asleep behind readers */
/* MUTANT: RELEASE_NO_RSLEEP_WAKE wrunlock's releasing CAS clears RSLEEP without waking the readers (an unlock that clears a sleep bit without waking) */
/* MUTANT: PLAIN_IGNORES_FLAGS wrunlock's fetch-and-sub release ignores flags set between its look and its release (no wake for them) */
/* MUTANT: NO_WSLEEP_RESET the writer that takes the lock while others are registered does not set WSLEEP again */
/* MUTANT: READER_IGNORES_WAITERS the inline read fast path lets a reader in while writers are registered (reader preference) */

#ifndef NT
#define NT 3
#endif

#define EAGAIN    1
#define ETIMEDOUT 2

#define LOW  1
#define HIGH 2
#define FUTEX_READERS 1
#define FUTEX_WRITERS 2

/* the state word */
bit wr_bit = 0;        /* WRITER */
bit rsleep = 0;       /* RSLEEP */
bit wsleep = 0;       /* WSLEEP */
byte ww = 0;      /* waiting writers (registrations) */
byte rd = 0;      /* read holds */
bit hsleep = 0;       /* HSLEEP */

/* the kernel */
byte where[3];    /* 0 awake, LOW or HIGH: the half it sleeps on */
byte bits[3];     /* its bitset */
byte spurious = 1;

/* ghosts */
byte nr = 0;      /* readers inside */
byte nw = 0;      /* writers inside */
byte wwait = 0;   /* writers between their registration and its removal */
bit fin[3];

#define LOW_IS(w, rs, ws, n) (wr_bit == (w) && rsleep == (rs) && wsleep == (ws) && ww == (n))
#define HIGH_IS(r, hs) (rd == (r) && hsleep == (hs))
#define STATE_IS (wr_bit == sW && rsleep == sRS && wsleep == sWS && ww == sww && rd == srd && hsleep == sHS)
#define VIEW atomic { sW = wr_bit; sRS = rsleep; sWS = wsleep; sww = ww; srd = rd; sHS = hsleep }
#define SNAP sW = wr_bit; sRS = rsleep; sWS = wsleep; sww = ww; srd = rd; sHS = hsleep

#define ASLEEP(i) (i < NT && where[i] != 0)
#define QUIET(i) (i >= NT || fin[i] || where[i] != 0)

active proctype monitor()
{
end:	atomic {
		!(nw <= 1 && (nw == 0 || nr == 0) && wr_bit == nw && rd >= nr &&
		  (!hsleep || ww > 0)) ||
		(QUIET(0) && QUIET(1) && QUIET(2) &&
		 (ASLEEP(0) || ASLEEP(1) || ASLEEP(2))) ->
		assert(false)
	}
}

/* ---- futex ---------------------------------------------------------- */

inline wake_readers()                 /* FUTEX_WAKE_BITSET low, all, READERS */
{
	atomic {
		if :: where[0] == LOW && bits[0] == FUTEX_READERS -> where[0] = 0 :: else -> skip fi;
		if :: where[1] == LOW && bits[1] == FUTEX_READERS -> where[1] = 0 :: else -> skip fi;
		if :: where[2] == LOW && bits[2] == FUTEX_READERS -> where[2] = 0 :: else -> skip fi
	}
}

inline wake_writers_low_one()         /* low, 1, WRITERS (private lock) */
{
	atomic {
		if
		:: where[0] == LOW && bits[0] == FUTEX_WRITERS -> where[0] = 0
		:: where[1] == LOW && bits[1] == FUTEX_WRITERS -> where[1] = 0
		:: where[2] == LOW && bits[2] == FUTEX_WRITERS -> where[2] = 0
		:: else -> skip
		fi
	}
}

inline wake_writers_high()            /* high, all, WRITERS */
{
	atomic {
		if :: where[0] == HIGH -> where[0] = 0 :: else -> skip fi;
		if :: where[1] == HIGH -> where[1] = 0 :: else -> skip fi;
		if :: where[2] == HIGH -> where[2] = 0 :: else -> skip fi
	}
}

/* After a futex_wait that slept: woken, spuriously, or the deadline. The
 * label makes the sleep a valid end: the monitor tells a lost wake-up. */
#define SLEEP_UNTIL_WOKEN(label) \
label:	if \
	:: where[me] == 0 -> skip \
	:: atomic { where[me] != 0 && spurious > 0 -> spurious--; where[me] = 0 } \
	:: atomic { where[me] != 0 && timed -> where[me] = 0; expired = 1 } \
	fi

inline look_deadline()                /* timeout_passed(abstime) */
{
	if
	:: timed -> expired = 1
	:: true -> skip
	fi
}

/* ---- readers -------------------------------------------------------- */

inline reader_in()
{
	nr++; assert(wwait == 0)   /* writer preference */
}

/* read_try from the current state (its CAS loop): got, or the view. */
inline read_try()
{
	atomic {
		if
		:: !(wr_bit || ww > 0) -> rd++; rsleep = 0; got = 1; reader_in()
		:: else -> SNAP
		fi
	}
}

/* read_undo_and_wait's undo; then read_slow. */
inline rd_undo()
{
	atomic {
		rd--;
#ifdef UNDO_NO_WAKE
		wake = 0
#else
		wake = hsleep && rd == 0;
		if :: wake -> hsleep = 0 :: else -> skip fi
#endif
	}
	if :: wake -> wake_writers_high() :: else -> skip fi
}

/* read_wait (read_slow's spin abstracted: see the top) */
inline rd_wait()
{
	do
	:: true -> read_try();
		if :: got -> break :: else -> skip fi;
		look_deadline();
		if :: expired -> break :: else -> skip fi;
		/* read_sleep_once(s) */
		atomic {
			if
			:: sRS -> r = 0
			:: !sRS && STATE_IS -> rsleep = 1; sRS = 1; r = 0
			:: else -> r = EAGAIN
			fi
		}
		if
		:: r == 0 ->
			atomic {
				if
				:: LOW_IS(sW, 1, sWS, sww) -> where[me] = LOW; bits[me] = FUTEX_READERS
				:: else -> r = EAGAIN
				fi
			}
			if :: r == 0 -> SLEEP_UNTIL_WOKEN(end_rsleep) :: else -> skip fi
		:: else -> skip
		fi
	od
}

inline rd_lock()
{
	if
	:: true ->  /* the inline fast path: fetch_add, any low bit sends to the undo */
		atomic {
#ifdef READER_IGNORES_WAITERS
			if
			:: !wr_bit -> rd++; got = 1; reader_in()
			:: else -> rd++
			fi
#else
			if
			:: !wr_bit && !rsleep && !wsleep && ww == 0 -> rd++; got = 1; reader_in()
			:: else -> rd++
			fi
#endif
		}
		if
		:: !got -> rd_undo(); rd_wait()
		:: got -> skip
		fi
	:: true ->  /* read_acquire_looking: CAS 0 -> one hold, else fetch_add if open */
		atomic {
			if
			:: !wr_bit && !rsleep && !wsleep && ww == 0 && rd == 0 && !hsleep ->
				rd = 1; got = 1; reader_in()
			:: else -> SNAP
			fi
		}
		if
		:: got -> skip
		:: !got && (sW || sww > 0) -> rd_wait()
		:: !got && !(sW || sww > 0) ->
			atomic {
				if
				:: !(wr_bit || ww > 0) -> rd++; got = 1; reader_in()
				:: else -> rd++
				fi
			}
			if
			:: !got -> rd_undo(); rd_wait()
			:: got -> skip
			fi
		fi
	fi
}

/* fetch_sub (release); the inline fast path returns at once unless a bit
 * of the low half other than WRITER is set or the old high half is 0. */
inline rd_unlock()
{
	atomic {
		sW = wr_bit; sRS = rsleep; sWS = wsleep; sww = ww; srd = rd; sHS = hsleep;
		rd--; nr--
	}
	if
	:: !sRS && !sWS && sww == 0 && (srd > 0 || sHS) -> skip  /* inline */
	:: else ->
		if :: srd == 1 && sHS -> wake_writers_high() :: else -> skip fi
	fi
}

/* ---- writers -------------------------------------------------------- */

inline writer_in()
{
	nw++
}

/* write_try from the current state (its CAS loop) */
inline write_try()
{
	atomic {
		if
		:: !wr_bit && rd == 0 -> wr_bit = 1; hsleep = 0; got = 1; writer_in()
		:: else -> SNAP
		fi
	}
}

/* writer_give_up (registered): its CAS loop; the wakes decided from its
 * result n (wake: readers, wake2: one writer on the low half) */
inline wr_give_up()
{
	atomic {
		wake = 0; wake2 = 0;
		if
		:: ww == 0 -> skip
		:: else ->
			sRS = rsleep;
			ww--; wwait--;
			if
			:: ww > 0 -> wsleep = 1
			:: else -> wsleep = 0; hsleep = 0
			fi;
			if :: !(wr_bit || ww > 0) -> rsleep = 0 :: else -> skip fi;
			wake = sRS && !rsleep;
			wake2 = !wr_bit && ww > 0
		fi
	}
	if :: wake -> wake_readers() :: else -> skip fi;
	if :: wake2 -> wake_writers_low_one() :: else -> skip fi
}

inline wr_wait()
{
	do
	:: true ->  /* load, then write_try_registered (one CAS) or write_try */
		atomic {
			if
			:: !wr_bit && rd == 0 ->
				wr_bit = 1; hsleep = 0; got = 1; writer_in();
				if
				:: on && ww > 0 -> ww--; wwait--
				:: else -> skip
				fi;
				if
				:: on ->
#ifdef NO_WSLEEP_RESET
					if :: ww == 0 -> wsleep = 0 :: else -> skip fi
#else
					if :: ww > 0 -> wsleep = 1 :: else -> wsleep = 0 fi
#endif
				:: else -> skip
				fi
			:: else -> SNAP
			fi
		}
		if :: got -> break :: else -> skip fi;
		if
		:: slept == ETIMEDOUT || (!on && expired) ->
			if :: on -> wr_give_up() :: else -> skip fi;
			break
		:: !on && !(slept == ETIMEDOUT || expired) ->
			if
			:: timed -> expired = 1          /* timeout_passed() */
			:: true -> atomic { ww++; wwait++ }; on = 1  /* register_writer */
			fi
		:: on && !(slept == ETIMEDOUT) ->
			/* write_sleep_once(s) */
			slept = 0;
			if
			:: !sW ->
				atomic {
					if
					:: sHS -> skip
					:: !sHS && STATE_IS -> hsleep = 1; sHS = 1
					:: else -> slept = EAGAIN
					fi
				}
				if
				:: slept == 0 ->
					atomic {
						if
						:: HIGH_IS(srd, 1) ->
							where[me] = HIGH; bits[me] = FUTEX_WRITERS
						:: else -> slept = EAGAIN
						fi
					}
				:: else -> skip
				fi
			:: sW ->
				atomic {
					if
					:: sWS -> skip
					:: !sWS && STATE_IS -> wsleep = 1; sWS = 1
					:: else -> slept = EAGAIN
					fi
				}
				if
				:: slept == 0 ->
					atomic {
						if
						:: LOW_IS(sW, sRS, 1, sww) ->
							where[me] = LOW; bits[me] = FUTEX_WRITERS
						:: else -> slept = EAGAIN
						fi
					}
				:: else -> skip
				fi
			fi;
			if
			:: slept == 0 ->
				SLEEP_UNTIL_WOKEN(end_wsleep);
				if :: expired -> slept = ETIMEDOUT :: else -> skip fi
			:: else -> skip
			fi
		fi
	od
}

inline wr_lock()
{
	/* write_acquire: CAS 0 -> WRITER, then write_try */
	write_try();
	if
	:: !got ->
		look_deadline();                /* write_slow */
		if :: !expired -> wr_wait() :: else -> skip fi
	:: else -> skip
	fi
}

inline wr_unlock()
{
	VIEW;                               /* seq_cst load */
	if
	:: !sWS && !sRS ->                  /* release_plain: fetch_sub */
		atomic {
			sW = wr_bit; sRS = rsleep; sWS = wsleep; sww = ww; srd = rd; sHS = hsleep;
			wr_bit = 0; nw--
		}
#ifndef PLAIN_IGNORES_FLAGS
		if :: sWS -> wake_writers_low_one() :: else -> skip fi;
		if :: sRS && sww == 0 -> wake_readers() :: else -> skip fi
#endif
	:: else ->                          /* the releasing CAS loop */
		atomic {
			sW = wr_bit; sRS = rsleep; sWS = wsleep; sww = ww; srd = rd; sHS = hsleep;
			wr_bit = 0; wsleep = 0; nw--;
			if :: ww == 0 -> rsleep = 0 :: else -> skip fi
		}
		if :: sWS -> wake_writers_low_one() :: else -> skip fi;
#ifndef RELEASE_NO_RSLEEP_WAKE
		if :: sRS && sww == 0 -> wake_readers() :: else -> skip fi
#endif
	fi
}

proctype thread(byte me)
{
	bit timed, expired, got, on, wake, wake2;
	byte r, slept;
	bit sW, sRS, sWS, sHS;
	byte sww, srd;
	if
	:: timed = 0
	:: me == 0 -> timed = 1   /* one timed thread (the state space) */
	fi;
	if
	:: true -> rd_lock();
		if
		:: got -> rd_unlock()
		:: else -> skip
		fi
	:: true -> wr_lock();
		if
		:: got -> wr_unlock()
		:: else -> skip
		fi
	fi;
	atomic {
		fin[me] = 1; timed = 0; expired = 0; got = 0; on = 0; wake = 0; wake2 = 0;
		r = 0; slept = 0; sW = 0; sRS = 0; sWS = 0; sHS = 0; sww = 0; srd = 0
	}
}

init
{
	atomic {
		run thread(0); run thread(1);
		if :: NT > 2 -> run thread(2) :: else -> skip fi
	}
}
