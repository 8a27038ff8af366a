/* Spinlock rows: each libsync spinlock against its Concurrency Kit
 * counterpart (TTAS vs ck_spinlock_fas, ticket vs ck_spinlock_ticket, MCS vs
 * ck_spinlock_mcs) at 1, 2 and 8 threads. ck's lock functions are inline;
 * each is wrapped in a plain static function, called through the same
 * pointer type as ours. */
#include <ck_spinlock.h>

#include <sync/spinlock.h>

#include "harness.h"

_Static_assert(sizeof(sync_mcsnode_t) <= BENCH_NODE_SIZE, "MCS node fits");
_Static_assert(sizeof(ck_spinlock_mcs_context_t) <= BENCH_NODE_SIZE, "ck node fits");

static const int thread_counts[] = { 1, 2, 8 };

/* ---- ck ---------------------------------------------------------------- */

static void ck_fas_init(void *lock)
{
	ck_spinlock_fas_init(lock);
}

static void ck_fas_lock(void *lock, void *node)
{
	(void)node;
	ck_spinlock_fas_lock(lock);
}

static void ck_fas_unlock(void *lock, void *node)
{
	(void)node;
	ck_spinlock_fas_unlock(lock);
}

static void ck_ticket_init(void *lock)
{
	ck_spinlock_ticket_init(lock);
}

static void ck_ticket_lock(void *lock, void *node)
{
	(void)node;
	ck_spinlock_ticket_lock(lock);
}

static void ck_ticket_unlock(void *lock, void *node)
{
	(void)node;
	ck_spinlock_ticket_unlock(lock);
}

static void ck_mcs_init(void *lock)
{
	ck_spinlock_mcs_init(lock);
}

static void ck_mcs_lock(void *lock, void *node)
{
	ck_spinlock_mcs_lock(lock, node);
}

static void ck_mcs_unlock(void *lock, void *node)
{
	ck_spinlock_mcs_unlock(lock, node);
}

const struct bench_lock bench_ck_fas = {
	.name = "ck_spinlock_fas", .size = sizeof(ck_spinlock_fas_t), .init = ck_fas_init,
	.lock = ck_fas_lock, .unlock = ck_fas_unlock,
};

static const struct bench_lock ck_ticket = {
	.name = "ck_spinlock_ticket", .size = sizeof(ck_spinlock_ticket_t),
	.init = ck_ticket_init, .lock = ck_ticket_lock, .unlock = ck_ticket_unlock,
};

static const struct bench_lock ck_mcs = {
	.name = "ck_spinlock_mcs", .size = sizeof(ck_spinlock_mcs_t), .init = ck_mcs_init,
	.lock = ck_mcs_lock, .unlock = ck_mcs_unlock,
};

/* ---- ours -------------------------------------------------------------- */

static void ttas_init(void *lock)
{
	sync_spinlock_init(lock);
}

static void ttas_lock(void *lock, void *node)
{
	(void)node;
	sync_spinlock_lock(lock);
}

static void ttas_unlock(void *lock, void *node)
{
	(void)node;
	sync_spinlock_unlock(lock);
}

static void ticket_init(void *lock)
{
	sync_ticketlock_init(lock);
}

static void ticket_lock(void *lock, void *node)
{
	(void)node;
	sync_ticketlock_lock(lock);
}

static void ticket_unlock(void *lock, void *node)
{
	(void)node;
	sync_ticketlock_unlock(lock);
}

static void mcs_init(void *lock)
{
	sync_mcslock_init(lock);
}

static void mcs_lock(void *lock, void *node)
{
	sync_mcslock_lock(lock, node);
}

static void mcs_unlock(void *lock, void *node)
{
	sync_mcslock_unlock(lock, node);
}

static const struct bench_lock sync_spinlock = {
	.name = "sync_spinlock", .size = sizeof(sync_spinlock_t), .init = ttas_init,
	.lock = ttas_lock, .unlock = ttas_unlock,
};

static const struct bench_lock sync_ticketlock = {
	.name = "sync_ticketlock", .size = sizeof(sync_ticketlock_t),
	.init = ticket_init, .lock = ticket_lock, .unlock = ticket_unlock,
};

static const struct bench_lock sync_mcslock = {
	.name = "sync_mcslock", .size = sizeof(sync_mcslock_t), .init = mcs_init,
	.lock = mcs_lock, .unlock = mcs_unlock,
};

/* ---- rows -------------------------------------------------------------- */

/* 1 thread: ours/ck at most 1.10; 8 threads on few cores: ours finishes. */
static struct bench_target target_at(int threads)
{
	struct bench_target none = { TARGET_NONE, 0 };
	struct bench_target ratio = { TARGET_RATIO, 1.10 };
	struct bench_target finishes = { TARGET_FINISHES, 0 };
	return threads == 1 ? ratio : threads == 8 ? finishes : none;
}

static void rows(const struct bench_config *cfg, struct bench_tally *tally,
		 const struct bench_lock *ours, const struct bench_lock *peer)
{
	for (int i = 0; i < 3; i++) {
		struct bench_row row = { ours->name, ours, peer, thread_counts[i],
					 target_at(thread_counts[i]), NULL };
		bench_run_row(cfg, &row, tally);
	}
}

void bench_spinlocks(const struct bench_config *cfg, struct bench_tally *tally)
{
	rows(cfg, tally, &sync_spinlock, &bench_ck_fas);
	rows(cfg, tally, &sync_ticketlock, &ck_ticket);
	rows(cfg, tally, &sync_mcslock, &ck_mcs);
}
