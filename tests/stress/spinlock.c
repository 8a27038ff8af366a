/* Stress test for the TTAS, ticket and MCS spinlocks under ThreadSanitizer:
 * exclusion, exact counts, progress with more threads than cores. */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sync/spinlock.h>

#include "harness.h"

static bool try_result(int r, const char *what)
{
	if (r && r != EBUSY) {
		fprintf(stderr, "%s: unexpected %d\n", what, r);
		abort();
	}
	return r == 0;
}

static void ttas_lock(void *l, void *node) { sync_spinlock_lock(l); }
static void ttas_unlock(void *l, void *node) { sync_spinlock_unlock(l); }
static bool ttas_trylock(void *l, void *node)
{
	return try_result(sync_spinlock_trylock(l), "sync_spinlock_trylock");
}

static void ticket_lock(void *l, void *node) { sync_ticketlock_lock(l); }
static void ticket_unlock(void *l, void *node) { sync_ticketlock_unlock(l); }
static bool ticket_trylock(void *l, void *node)
{
	return try_result(sync_ticketlock_trylock(l), "sync_ticketlock_trylock");
}

static void mcs_lock(void *l, void *node) { sync_mcslock_lock(l, node); }
static void mcs_unlock(void *l, void *node) { sync_mcslock_unlock(l, node); }
static bool mcs_trylock(void *l, void *node)
{
	return try_result(sync_mcslock_trylock(l, node), "sync_mcslock_trylock");
}

static const struct lock_ops ttas_ops = { "spinlock", ttas_lock, ttas_trylock,
					  ttas_unlock };
static const struct lock_ops ticket_ops = { "ticketlock", ticket_lock,
					    ticket_trylock, ticket_unlock };
static const struct lock_ops mcs_ops = { "mcslock", mcs_lock, mcs_trylock,
					 mcs_unlock };

static void check_lock(const struct lock_ops *ops, void *lock)
{
	stress_exclusion(ops, lock, 2, false);
	stress_exclusion(ops, lock, 8, false); /* more threads than cores */
	stress_exclusion(ops, lock, 4, true);
}


/* ---- self-synchronized destruction (issue 10, point 2) ------------------
 * The next owner, spinning for the lock, takes it, unlocks and frees it
 * while the unlock that handed it over is held up for 10 ms right after its
 * release (TEST_HOOK "<lock>_unlock:released"): any access the held-up
 * unlock still makes to the lock, or the MCS unlocker to its successor's
 * node, is a heap-use-after-free for ThreadSanitizer and ASan. */

#define UAF_ROUNDS 10

static _Thread_local bool hold_up_my_unlock;

static void hold_up_unlock(const char *point)
{
	if (hold_up_my_unlock && strstr(point, "_unlock:released"))
		stress_sleep_us(10000);
}

struct freed_lock {
	const struct lock_ops *ops;
	void *lock;
	atomic_int waiting;
};

static void *lock_unlock_free(void *arg)
{
	struct freed_lock *f = arg;
	sync_mcsnode_t *node = malloc(sizeof *node);
	if (!node)
		abort();
	atomic_store(&f->waiting, 1);
	f->ops->lock(f->lock, node);
	f->ops->unlock(f->lock, node);
	free(f->lock);
	free(node);
	return NULL;
}

static void check_destruction_after_unlock(const struct lock_ops *ops, size_t size)
{
	test_hook_set(hold_up_unlock);
	for (int i = 0; i < UAF_ROUNDS; i++) {
		struct freed_lock f = { ops, calloc(1, size), 0 };
		sync_mcsnode_t node;
		if (!f.lock)
			abort();
		ops->lock(f.lock, &node);
		pthread_t t;
		if (pthread_create(&t, NULL, lock_unlock_free, &f))
			abort();
		while (!atomic_load(&f.waiting))
			stress_sleep_us(50);
		stress_sleep_us(200); /* most often it waits for the lock by now */
		hold_up_my_unlock = true;
		ops->unlock(f.lock, &node); /* the lock may be gone from here on */
		hold_up_my_unlock = false;
		pthread_join(t, NULL);
	}
	test_hook_set(NULL);
	tap_check(true, "%s: the next owner frees the lock while the unlock is "
		  "held up, %d rounds", ops->name, UAF_ROUNDS);
}

int main(void)
{
	sync_spinlock_t ttas = SYNC_SPINLOCK_INITIALIZER;
	sync_ticketlock_t ticket = SYNC_TICKETLOCK_INITIALIZER;
	sync_mcslock_t mcs = SYNC_MCSLOCK_INITIALIZER;

	tap_plan(3 * 3 * 3 + 3 + 3);
	check_destruction_after_unlock(&ttas_ops, sizeof(sync_spinlock_t));
	check_destruction_after_unlock(&ticket_ops, sizeof(sync_ticketlock_t));
	check_destruction_after_unlock(&mcs_ops, sizeof(sync_mcslock_t));
	check_lock(&ttas_ops, &ttas);
	check_lock(&ticket_ops, &ticket);
	check_lock(&mcs_ops, &mcs);
	tap_check(sync_spinlock_trylock(&ttas) == 0, "spinlock ends free");
	tap_check(sync_ticketlock_trylock(&ticket) == 0, "ticketlock ends free");
	sync_mcsnode_t node;
	tap_check(sync_mcslock_trylock(&mcs, &node) == 0, "mcslock ends free");
	return tap_exit_status();
}
