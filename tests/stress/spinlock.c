/* Stress test for the TTAS, ticket and MCS spinlocks under ThreadSanitizer:
 * exclusion, exact counts, progress with more threads than cores. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(void)
{
	sync_spinlock_t ttas = SYNC_SPINLOCK_INITIALIZER;
	sync_ticketlock_t ticket = SYNC_TICKETLOCK_INITIALIZER;
	sync_mcslock_t mcs = SYNC_MCSLOCK_INITIALIZER;

	tap_plan(3 * 3 * 3 + 3);
	check_lock(&ttas_ops, &ttas);
	check_lock(&ticket_ops, &ticket);
	check_lock(&mcs_ops, &mcs);
	tap_check(sync_spinlock_trylock(&ttas) == 0, "spinlock ends free");
	tap_check(sync_ticketlock_trylock(&ticket) == 0, "ticketlock ends free");
	sync_mcsnode_t node;
	tap_check(sync_mcslock_trylock(&mcs, &node) == 0, "mcslock ends free");
	return tap_exit_status();
}
