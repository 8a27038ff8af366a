/* The unbounded queue's slot hand-off (queue_slot.h): the pusher stores
 * FULL and loads gave_up; a popper that gives up stores gave_up and loads
 * state. Store-buffering: at least one of the two loads sees the other
 * side's store, given a full fence between each store and its load. The
 * pusher, on the fast path of every push, has only a compiler fence; the
 * popper, on its rare give-up (a pusher stalled between its ticket and its
 * store, 25-55 in 10^6 pops where measured), runs
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which executes a full
 * barrier on every CPU that runs a thread of this process: the pusher's
 * compiler fence then acts as the full fence it needs (the argument of
 * liburcu-memb and of src/epoch.c). Where membarrier is not usable, or
 * with SYNC_QUEUE_NO_MEMBARRIER=1, both sides use seq_cst stores and
 * loads instead, whose single total order gives the same guarantee.
 *
 * Outcomes (P: the pusher saw gave_up; Q: the popper saw FULL):
 * - not P, Q: the pusher is done, the popper takes the item by a CAS that
 *   no pusher contests (it only CASes after P);
 * - P, not Q: the popper is done, the pusher takes its item back by a CAS
 *   that no popper contests (it only CASes after Q);
 * - P and Q: both CAS FULL away; the winner has the item;
 * - neither: impossible (store-buffering with full fences). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "membarrier.h"
#include "queue_slot.h"
#include "test_hook.h"

/* Whether pushers use the compiler fence (membarrier registered). Decided
 * by slot_mode_decide before the first queue exists, and again, single-
 * threaded, in a fork child; read relaxed: the queue's creation orders it
 * before every push and pop on that queue. */
static atomic_bool light_pushers;
static pthread_once_t mode_once = PTHREAD_ONCE_INIT;

/* A fork child must register again; a child that cannot gets the seq_cst
 * pair, which is safe: it is single-threaded here, no push is under way. */
static void slot_mode_child(void)
{
	/* relaxed: single-threaded here */
	if (atomic_load_explicit(&light_pushers, memory_order_relaxed) &&
	    !membarrier_register_expedited())
		atomic_store_explicit(&light_pushers, false, memory_order_relaxed);
}

static void slot_mode_init(void)
{
	int saved = errno;
	bool light = !membarrier_turned_off("SYNC_QUEUE_NO_MEMBARRIER") &&
		     membarrier_register_expedited() &&
		     pthread_atfork(NULL, NULL, slot_mode_child) == 0;
	/* relaxed: pthread_once orders it before every caller's return */
	atomic_store_explicit(&light_pushers, light, memory_order_relaxed);
	errno = saved;
}

void slot_mode_decide(void)
{
	pthread_once(&mode_once, slot_mode_init);
}

static bool light(void)
{
	/* relaxed: see light_pushers */
	return atomic_load_explicit(&light_pushers, memory_order_relaxed);
}

/* Both sides see each other (or the popper saw FULL): one CAS moves FULL
 * to `to`; true if it was this one. acquire: pairs with the pusher's
 * release of FULL (the popper then reads the item). */
static bool settle(struct slot *slot, uint32_t to)
{
	uint32_t full = SLOT_FULL;
	return atomic_compare_exchange_strong_explicit(&slot->state, &full, to,
						       memory_order_acquire,
						       memory_order_relaxed);
}

bool slot_publish(struct slot *slot)
{
	uint32_t gave_up;
	if (__builtin_expect(light(), 1)) {
		/* release: pairs with the popper's acquire of state (take_slot,
		 * settle), which then reads the item */
		atomic_store_explicit(&slot->state, SLOT_FULL, memory_order_release);
		/* a full fence when a popper's membarrier needs one */
		atomic_signal_fence(memory_order_seq_cst);
		TEST_HOOK("queue_slot:stored");
		/* acquire: pairs with slot_give_up's seq_cst store, so that
		 * what the popper did before it (a sleeper's registration)
		 * happens before this pusher's next steps */
		gave_up = atomic_load_explicit(&slot->gave_up, memory_order_acquire);
	} else {
		atomic_store(&slot->state, SLOT_FULL); /* seq_cst: the pair */
		TEST_HOOK("queue_slot:stored");
		gave_up = atomic_load(&slot->gave_up);
	}
	if (__builtin_expect(!gave_up, 1))
		return true;
	if (!settle(slot, SLOT_RECLAIMED))
		return true; /* the popper has it */
	TEST_HOOK("queue_slot:reclaimed");
	return false;
}

bool slot_give_up(struct slot *slot)
{
	atomic_store(&slot->gave_up, 1); /* seq_cst: the pair */
	TEST_HOOK("queue_slot:gave_up");
	if (light() && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
		fprintf(stderr, "libsync: sync_queue: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed\n");
		abort();
	}
	if (atomic_load(&slot->state) == SLOT_EMPTY) { /* seq_cst: the pair */
		TEST_HOOK("queue_slot:left_empty");
		return false; /* the pusher will see gave_up */
	}
	if (!settle(slot, SLOT_TAKEN))
		return false; /* the pusher took it back */
	TEST_HOOK("queue_slot:taken");
	return true;
}
