/* Reader bias of private rwlocks, after BRAVO (Dice and Kogan, "BRAVO:
 * Biased Locking for Reader-Writer Locks", USENIX ATC 2019): while a lock's
 * state has BIASED, a reader takes it by writing the lock's address into a
 * visible-reader slot of its own and looking that the bias still stands;
 * it writes no shared line. A writer takes the write hold as usual, clears
 * BIASED, and waits until no slot names the lock. BRAVO's readers publish
 * with an atomic exchange into a hashed table; here each thread owns one
 * slot (a cache line), so the reader's publication is a plain store and
 * the store-then-load pair (reader: slot, then state; writer: state, then
 * slots) is ordered by membarrier(2) on the writer's side, the asymmetric
 * fence of liburcu's membarrier flavour and of libsync's epoch.
 *
 * Why that is enough (C11 with the kernel's guarantee): the writer's
 * fetch_and of BIASED, then membarrier(PRIVATE_EXPEDITED), which runs a
 * full barrier on every CPU running a thread of this process, then its
 * loads of the slots. A reader's slot store S and its later state load L
 * are separated by a compiler barrier only. The barrier the membarrier
 * runs on the reader's CPU falls before S, between S and L, or after L
 * (a thread that is not running has passed a barrier at its switch):
 * before S, L comes after the barrier, which comes after the fetch_and, so
 * L reads the bias cleared and the reader backs off; after S, S is visible
 * to the writer's loads, which wait for the slot to be cleared by the
 * reader's releasing store (after its read section). The same argument
 * covers the slot-claiming counters read by the writer (bias_in_use).
 *
 * Slots are claimed on a thread's first biased read and given back at its
 * exit (a thread that exits holding a biased read leaves its slot claimed,
 * as an exited reader leaves its count). A fork child keeps only its own
 * thread's slot; if it cannot use membarrier, that thread's biased hold
 * becomes a counted one and the bias is off in the child. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annotate.h"
#include "backoff.h"
#include "membarrier.h"
#include "rwlock_bias.h"
#include "thread.h"
#include "timeout.h"

/* Threads that can hold biased reads at once; later ones read by count. */
#define BIAS_SLOTS 512
#define BIAS_WORDS (BIAS_SLOTS / 64)

struct bias_slot {
	_Alignas(64) _Atomic uintptr_t lock; /* 0, or the lock read */
};

static struct bias_slot bias_table[BIAS_SLOTS];
static _Atomic uint64_t bias_owned[BIAS_WORDS]; /* bit i: slot i claimed */
static _Atomic uint32_t bias_in_use;            /* slots below this were claimed */
/* Never 0: the slot of a thread that may not read through the bias. */
static _Atomic uintptr_t bias_busy = 1;

THREAD_LOCAL struct sync_impl_rwlock_reader sync_impl_rwlock_reader;

enum { BIAS_UNDECIDED, BIAS_ON, BIAS_OFF };
static _Atomic int bias_state;
static pthread_once_t bias_once = PTHREAD_ONCE_INIT;
static pthread_key_t bias_key;

static void bias_thread_exit(void *arg);

static void bias_decide(void)
{
	int saved = errno;
	/* relaxed: set by the constructor that runs at load */
	bool on = !membarrier_turned_off("SYNC_RWLOCK_NO_BIAS") &&
		  !__atomic_load_n(&ann_tools, __ATOMIC_RELAXED) &&
		  pthread_key_create(&bias_key, bias_thread_exit) == 0 &&
		  membarrier_register_expedited();
	/* release: the key is made before anyone claims a slot with it */
	atomic_store_explicit(&bias_state, on ? BIAS_ON : BIAS_OFF, memory_order_release);
	errno = saved;
}

bool bias_usable(void)
{
	/* acquire: pairs with bias_decide's release */
	int state = atomic_load_explicit(&bias_state, memory_order_acquire);
	if (__builtin_expect(state == BIAS_UNDECIDED, 0)) {
		pthread_once(&bias_once, bias_decide);
		state = atomic_load_explicit(&bias_state, memory_order_acquire);
	}
	return state == BIAS_ON;
}

/* Raises bias_in_use to at least n (seq_cst: before the slot's first use,
 * see the top). */
static void bias_note_in_use(uint32_t n)
{
	uint32_t seen = atomic_load(&bias_in_use);
	while (seen < n && !atomic_compare_exchange_weak(&bias_in_use, &seen, n))
		;
}

/* A free slot's index, claimed, or -1. */
static int bias_claim(void)
{
	for (int w = 0; w < BIAS_WORDS; w++) {
		uint64_t bits = atomic_load(&bias_owned[w]);
		while (~bits) {
			int i = __builtin_ctzll(~bits);
			if (atomic_compare_exchange_weak(&bias_owned[w], &bits,
							 bits | (1ull << i))) {
				bias_note_in_use((uint32_t)(w * 64 + i + 1));
				return w * 64 + i;
			}
		}
	}
	return -1;
}

/* seq_cst: the slot is 0 here (its last owner cleared it, with release,
 * before this free), and the next owner claims it after this. */
static void bias_free(int i)
{
	atomic_fetch_and(&bias_owned[i / 64], ~(1ull << (i % 64)));
}

_Atomic uintptr_t *bias_slot(void)
{
	_Atomic uintptr_t *slot = sync_impl_rwlock_reader.slot;
	if (slot)
		return slot;
	int saved = errno, i = bias_usable() ? bias_claim() : -1;
	slot = &bias_busy;
	if (i >= 0 && pthread_setspecific(bias_key, (void *)(uintptr_t)(i + 1)) == 0)
		slot = &bias_table[i].lock;
	else if (i >= 0)
		bias_free(i);
	sync_impl_rwlock_reader.slot = slot;
	errno = saved;
	return slot;
}

/* At thread exit: the slot goes back unless it still names a lock (the
 * thread exited holding a biased read: the hold stays, as a count would).
 * Later reads of this thread (other keys' destructors) go by count. */
static void bias_thread_exit(void *arg)
{
	int i = (int)((uintptr_t)arg - 1);
	/* relaxed: only this thread writes its slot */
	if (!atomic_load_explicit(&bias_table[i].lock, memory_order_relaxed))
		bias_free(i);
	sync_impl_rwlock_reader.slot = &bias_busy;
}

/* Between spins, then yields, then naps of up to a millisecond: a reader
 * inside a biased section may be descheduled, or slow. */
static void bias_backoff(unsigned *round)
{
	unsigned r = (*round)++;
	if (r < 32) {
		cpu_relax_n(64);
	} else if (r < 64) {
		sched_yield();
	} else {
		unsigned shift = r - 64 < 6 ? r - 64 : 6;
		struct timespec nap = { 0, 16000L << shift }; /* 16 us .. 1 ms */
		nanosleep(&nap, NULL);
	}
}

int bias_wait_for_readers(const sync_rwlock_t *l, bool try,
			  const struct timespec *abstime)
{
	/* relaxed: decided before any lock could be biased */
	if (atomic_load_explicit(&bias_state, memory_order_relaxed) == BIAS_ON &&
	    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
		fprintf(stderr, "libsync: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed\n");
		abort();
	}
	uint32_t n = atomic_load(&bias_in_use); /* seq_cst: see the top */
	for (uint32_t i = 0; i < n; i++) {
		unsigned round = 0;
		/* acquire: pairs with the reader's releasing clear of its slot */
		while (atomic_load_explicit(&bias_table[i].lock, memory_order_acquire) ==
		       (uintptr_t)l) {
			if (try)
				return EBUSY;
			if (timeout_passed(abstime))
				return ETIMEDOUT;
			bias_backoff(&round);
		}
	}
	return 0;
}

bool bias_read_held(const sync_rwlock_t *l)
{
	uint32_t n = atomic_load(&bias_in_use);
	for (uint32_t i = 0; i < n; i++)
		if (atomic_load(&bias_table[i].lock) == (uintptr_t)l)
			return true;
	return false;
}

/* The child's only thread: other threads' slots are theirs no more. If
 * membarrier cannot be registered again, the bias is off here: a biased
 * hold of this thread becomes a counted one (nobody else runs yet). */
static void bias_atfork_child(void)
{
	_Atomic uintptr_t *own = sync_impl_rwlock_reader.slot;
	/* relaxed: single-threaded here */
	if (atomic_load_explicit(&bias_state, memory_order_relaxed) != BIAS_ON)
		return;
	for (int i = 0; i < BIAS_SLOTS; i++) {
		if (&bias_table[i].lock == own)
			continue;
		atomic_store_explicit(&bias_table[i].lock, 0, memory_order_relaxed);
		atomic_fetch_and_explicit(&bias_owned[i / 64], ~(1ull << (i % 64)),
					  memory_order_relaxed);
	}
	int saved = errno;
	bool registered = membarrier_register_expedited();
	errno = saved;
	if (registered)
		return;
	atomic_store_explicit(&bias_state, BIAS_OFF, memory_order_relaxed);
	if (own && own != &bias_busy) {
		uintptr_t held = atomic_load_explicit(own, memory_order_relaxed);
		if (held)
			atomic_fetch_add_explicit(&((sync_rwlock_t *)held)->state,
						  1ull << 32, memory_order_relaxed);
		atomic_store_explicit(own, 0, memory_order_relaxed);
		sync_impl_rwlock_reader.slot = &bias_busy;
	}
}

__attribute__((constructor)) static void bias_watch_fork(void)
{
	ann_internal(bias_table, sizeof bias_table);
	ann_internal(bias_owned, sizeof bias_owned);
	pthread_atfork(NULL, NULL, bias_atfork_child);
}
