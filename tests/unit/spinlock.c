/* Unit tests for <sync/spinlock.h>: the TTAS, ticket and MCS locks, one
 * behaviour of the contract per test. The three locks share most behaviours,
 * so each test names its lock and calls a check written once for all. */
#define _GNU_SOURCE /* mremap */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sync.h>

#include "tap_main.h"
#include "util.h"

/* ---- the three locks behind one interface ------------------------------ */

/* Any of the three locks; `node` is the caller's MCS node, ignored by the
 * others. */
union any_lock {
	sync_spinlock_t ttas;
	sync_ticketlock_t ticket;
	sync_mcslock_t mcs;
};

struct lock_ops {
	int (*init)(union any_lock *l);
	void (*lock)(union any_lock *l, sync_mcsnode_t *node);
	int (*trylock)(union any_lock *l, sync_mcsnode_t *node);
	void (*unlock)(union any_lock *l, sync_mcsnode_t *node);
};

static int ttas_init(union any_lock *l)
{
	return sync_spinlock_init(&l->ttas);
}

static void ttas_lock(union any_lock *l, sync_mcsnode_t *node)
{
	(void)node;
	sync_spinlock_lock(&l->ttas);
}

static int ttas_trylock(union any_lock *l, sync_mcsnode_t *node)
{
	(void)node;
	return sync_spinlock_trylock(&l->ttas);
}

static void ttas_unlock(union any_lock *l, sync_mcsnode_t *node)
{
	(void)node;
	sync_spinlock_unlock(&l->ttas);
}

static int ticket_init(union any_lock *l)
{
	return sync_ticketlock_init(&l->ticket);
}

static void ticket_lock(union any_lock *l, sync_mcsnode_t *node)
{
	(void)node;
	sync_ticketlock_lock(&l->ticket);
}

static int ticket_trylock(union any_lock *l, sync_mcsnode_t *node)
{
	(void)node;
	return sync_ticketlock_trylock(&l->ticket);
}

static void ticket_unlock(union any_lock *l, sync_mcsnode_t *node)
{
	(void)node;
	sync_ticketlock_unlock(&l->ticket);
}

static int mcs_init(union any_lock *l)
{
	return sync_mcslock_init(&l->mcs);
}

static void mcs_lock(union any_lock *l, sync_mcsnode_t *node)
{
	sync_mcslock_lock(&l->mcs, node);
}

static int mcs_trylock(union any_lock *l, sync_mcsnode_t *node)
{
	return sync_mcslock_trylock(&l->mcs, node);
}

static void mcs_unlock(union any_lock *l, sync_mcsnode_t *node)
{
	sync_mcslock_unlock(&l->mcs, node);
}

static const struct lock_ops ttas = { ttas_init, ttas_lock, ttas_trylock, ttas_unlock };
static const struct lock_ops ticket = { ticket_init, ticket_lock, ticket_trylock,
					ticket_unlock };
static const struct lock_ops mcs = { mcs_init, mcs_lock, mcs_trylock, mcs_unlock };

/* Fills memory with bytes 1, 2, 3...: a held lock for each of the three. */
static void fill_garbage(void *p, size_t n)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i + 1);
}

/* ---- another thread's trylock ------------------------------------------ */

struct probe {
	const struct lock_ops *ops;
	union any_lock *l;
	int result;
};

/* trylock, and on success unlock again: probes without changing the lock. */
static void *probe_main(void *arg)
{
	struct probe *p = arg;
	sync_mcsnode_t node;
	p->result = p->ops->trylock(p->l, &node);
	if (p->result == 0)
		p->ops->unlock(p->l, &node);
	return NULL;
}

static int other_thread_trylock(const struct lock_ops *ops, union any_lock *l)
{
	struct probe p = { ops, l, -1 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, probe_main, &p), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	return p.result;
}

/* ---- checks shared by the three locks ---------------------------------- */

static void check_is_free(const struct lock_ops *ops, union any_lock *l)
{
	sync_mcsnode_t node;
	ck_assert_int_eq(ops->trylock(l, &node), 0);
	ck_assert_int_eq(other_thread_trylock(ops, l), EBUSY);
	ops->unlock(l, &node);
	ck_assert_int_eq(other_thread_trylock(ops, l), 0);
}

static void check_init_gives_free_lock(const struct lock_ops *ops)
{
	union any_lock l;
	fill_garbage(&l, sizeof l);
	ck_assert_int_eq(ops->init(&l), 0);
	check_is_free(ops, &l);
}

static void check_lock_excludes_others(const struct lock_ops *ops)
{
	union any_lock l;
	sync_mcsnode_t node;
	ck_assert_int_eq(ops->init(&l), 0);
	ops->lock(&l, &node);
	ck_assert_int_eq(other_thread_trylock(ops, &l), EBUSY);
	ops->unlock(&l, &node);
}

static void check_unlock_frees_lock(const struct lock_ops *ops)
{
	union any_lock l;
	sync_mcsnode_t node;
	ck_assert_int_eq(ops->init(&l), 0);
	for (int i = 0; i < 3; i++) {
		ops->lock(&l, &node);
		ops->unlock(&l, &node);
		ck_assert_int_eq(other_thread_trylock(ops, &l), 0);
	}
}

static void check_trylock_of_free_lock_takes_it(const struct lock_ops *ops)
{
	union any_lock l;
	sync_mcsnode_t node;
	ck_assert_int_eq(ops->init(&l), 0);
	ck_assert_int_eq(ops->trylock(&l, &node), 0);
	ck_assert_int_eq(other_thread_trylock(ops, &l), EBUSY);
	ops->unlock(&l, &node);
	ck_assert_int_eq(other_thread_trylock(ops, &l), 0);
}

static void check_trylock_held_by_caller_returns_ebusy(const struct lock_ops *ops)
{
	union any_lock l;
	sync_mcsnode_t node, node2;
	ck_assert_int_eq(ops->init(&l), 0);
	ops->lock(&l, &node);
	ck_assert_int_eq(ops->trylock(&l, &node2), EBUSY);
	ops->unlock(&l, &node);
	ck_assert_int_eq(other_thread_trylock(ops, &l), 0);
}

/* A thread that holds the lock until told to release it. */
struct holder {
	const struct lock_ops *ops;
	union any_lock *l;
	pthread_t thread;
	atomic_int held, release;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	sync_mcsnode_t node;
	h->ops->lock(h->l, &node);
	atomic_store(&h->held, 1);
	wait_until_equal(&h->release, 1);
	h->ops->unlock(h->l, &node);
	return NULL;
}

static void check_trylock_held_by_other_thread_returns_ebusy(const struct lock_ops *ops)
{
	union any_lock l;
	sync_mcsnode_t node;
	ck_assert_int_eq(ops->init(&l), 0);
	struct holder h = { .ops = ops, .l = &l };
	ck_assert_int_eq(pthread_create(&h.thread, NULL, holder_main, &h), 0);
	ck_assert(wait_until_equal(&h.held, 1));
	ck_assert_int_eq(ops->trylock(&l, &node), EBUSY);
	atomic_store(&h.release, 1);
	ck_assert_int_eq(pthread_join(h.thread, NULL), 0);
	ck_assert_int_eq(ops->trylock(&l, &node), 0);
	ops->unlock(&l, &node);
}

/* A thread that announces itself, locks, records what it saw, unlocks. */
struct waiter {
	const struct lock_ops *ops;
	union any_lock *l;
	int id;
	int *order;       /* protected by the lock */
	int *next_slot;   /* protected by the lock */
	const int *flag;  /* protected by the lock */
	int saw_flag;
	pthread_t thread;
	atomic_int arriving, acquired;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	sync_mcsnode_t node;
	atomic_store(&w->arriving, 1);
	w->ops->lock(w->l, &node);
	atomic_store(&w->acquired, 1);
	if (w->flag)
		w->saw_flag = *w->flag;
	if (w->order)
		w->order[(*w->next_slot)++] = w->id;
	w->ops->unlock(w->l, &node);
	return NULL;
}

static void waiter_start(struct waiter *w)
{
	atomic_init(&w->arriving, 0);
	atomic_init(&w->acquired, 0);
	ck_assert_int_eq(pthread_create(&w->thread, NULL, waiter_main, w), 0);
	ck_assert(wait_until_equal(&w->arriving, 1));
}

static void check_lock_waits_until_holder_unlocks(const struct lock_ops *ops)
{
	union any_lock l;
	sync_mcsnode_t node;
	int flag = 0;
	ck_assert_int_eq(ops->init(&l), 0);
	ops->lock(&l, &node);
	struct waiter w = { .ops = ops, .l = &l, .flag = &flag, .saw_flag = -1 };
	waiter_start(&w);
	sleep_ns(20 * NS_PER_MS);
	ck_assert_int_eq(atomic_load(&w.acquired), 0); /* still waiting */
	flag = 1;
	ops->unlock(&l, &node);
	ck_assert_int_eq(pthread_join(w.thread, NULL), 0);
	ck_assert_int_eq(atomic_load(&w.acquired), 1);
	ck_assert_int_eq(w.saw_flag, 1); /* and saw what the holder wrote */
}

/* Waits until queue_mark(l) differs from `old`: a thread joined the queue. */
static bool wait_mark_changes(uint64_t (*queue_mark)(union any_lock *),
			      union any_lock *l, uint64_t old)
{
	int64_t start = now_ns();
	while (queue_mark(l) == old) {
		if (now_ns() - start > WAIT_LIMIT_NS)
			return false;
		sleep_ns(20000);
	}
	return true;
}

/* FIFO: with the lock held, A joins the queue, then B; on release A must get
 * the lock before B. queue_mark(l) changes each time a thread joins the
 * queue, and only then while the lock stays held. */
static void check_fifo(const struct lock_ops *ops,
		       uint64_t (*queue_mark)(union any_lock *))
{
	union any_lock l;
	sync_mcsnode_t node;
	int order[2] = { -1, -1 }, next_slot = 0;
	ck_assert_int_eq(ops->init(&l), 0);
	ops->lock(&l, &node);
	struct waiter a = { .ops = ops, .l = &l, .id = 'A', .order = order,
			    .next_slot = &next_slot };
	struct waiter b = { .ops = ops, .l = &l, .id = 'B', .order = order,
			    .next_slot = &next_slot };
	uint64_t mark = queue_mark(&l);
	waiter_start(&a);
	ck_assert(wait_mark_changes(queue_mark, &l, mark));
	mark = queue_mark(&l);
	waiter_start(&b);
	ck_assert(wait_mark_changes(queue_mark, &l, mark));
	ops->unlock(&l, &node);
	ck_assert_int_eq(pthread_join(a.thread, NULL), 0);
	ck_assert_int_eq(pthread_join(b.thread, NULL), 0);
	ck_assert_int_eq(next_slot, 2);
	ck_assert_int_eq(order[0], 'A');
	ck_assert_int_eq(order[1], 'B');
}

/* The ticket lock's `next` (ABI: next ticket to hand out) grows by one for
 * each thread that takes a ticket. */
static uint64_t ticket_queue_mark(union any_lock *l)
{
	return atomic_load(&l->ticket.next);
}

/* The MCS lock's `tail` (ABI: the last node) moves to each node that joins. */
static uint64_t mcs_queue_mark(union any_lock *l)
{
	return (uint64_t)atomic_load(&l->mcs.tail);
}

/* ---- between processes ------------------------------------------------- */

#define PROCESS_ITERS 20000

/* The lock, both processes' MCS nodes and the counter in one MAP_SHARED
 * mapping. */
struct shared {
	union any_lock l;
	sync_mcsnode_t nodes[2];
	long counter; /* protected by l */
	atomic_int ready;
	atomic_long added[2]; /* by each process */
};

/* A FIFO lock between two processes convoys when the other CPU is busy
 * (a process next in line waits to be scheduled at every hand-off: an MCS
 * run timed out beside a model checker in make check), so each process
 * also stops after PROCESS_MS; the count must be exact either way. */
#define PROCESS_MS 1500

static void count_up_shared(const struct lock_ops *ops, struct shared *sh, int me)
{
	/* start together, so that the two processes really compete */
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->ready) < 2)
		sched_yield();
	int64_t start = now_ns();
	long i = 0;
	while (i < PROCESS_ITERS && (i % 256 || now_ns() - start < PROCESS_MS * NS_PER_MS)) {
		ops->lock(&sh->l, &sh->nodes[me]);
		sh->counter++;
		ops->unlock(&sh->l, &sh->nodes[me]);
		i++;
	}
	atomic_store(&sh->added[me], i);
}

/* Parent and child each add up to PROCESS_ITERS to a counter under the
 * lock; it must hold exactly what both added. */
static void check_counter_across_processes(const struct lock_ops *ops)
{
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(ops->init(&sh->l), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		count_up_shared(ops, sh, 1);
		_exit(0);
	}
	count_up_shared(ops, sh, 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_gt(atomic_load(&sh->added[0]), 0);
	ck_assert_int_gt(atomic_load(&sh->added[1]), 0);
	ck_assert_int_eq(sh->counter, atomic_load(&sh->added[0]) + atomic_load(&sh->added[1]));
	ck_assert_int_eq(munmap(sh, sizeof *sh), 0);
}

/* ---- more threads than cores ------------------------------------------- */

/* 8 threads on a 2-core machine, each doing up to 20000 lock/unlock pairs.
 * The FIFO locks convoy when a queued thread is preempted: every hand-off
 * then waits for one particular thread to be scheduled, and 8 x 20000 took
 * 2 to 13 s on a loaded 2-core machine. So each thread also stops after
 * CROWD_MS; the count must be exact either way. */
#define CROWD 8
#define THREAD_ITERS 20000
#define CROWD_MS 300

struct crowd {
	const struct lock_ops *ops;
	union any_lock l;
	long counter; /* protected by l */
	long acquired; /* protected by l: sum of the threads' own counts */
	atomic_int ready, go, stop, done;
};

static void *crowd_member(void *arg)
{
	struct crowd *c = arg;
	sync_mcsnode_t node;
	long mine = 0;
	atomic_fetch_add(&c->ready, 1);
	while (!atomic_load(&c->go))
		sched_yield();
	while (mine < THREAD_ITERS &&
	       !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		c->ops->lock(&c->l, &node);
		c->counter++;
		c->ops->unlock(&c->l, &node);
		mine++;
	}
	c->ops->lock(&c->l, &node);
	c->acquired += mine;
	c->ops->unlock(&c->l, &node);
	atomic_fetch_add(&c->done, 1);
	return NULL;
}

static void check_more_threads_than_cores(const struct lock_ops *ops)
{
	static struct crowd c;
	pthread_t t[CROWD];
	c.ops = ops;
	ck_assert_int_eq(ops->init(&c.l), 0);
	for (int i = 0; i < CROWD; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, crowd_member, &c), 0);
	ck_assert(wait_until_equal(&c.ready, CROWD));
	atomic_store(&c.go, 1); /* all at once, so that they really compete */
	int64_t start = now_ns();
	while (atomic_load(&c.done) < CROWD) {
		if (now_ns() - start > CROWD_MS * NS_PER_MS)
			atomic_store(&c.stop, 1);
		sleep_ns(NS_PER_MS);
	}
	for (int i = 0; i < CROWD; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_gt(c.acquired, 0);
	ck_assert_int_eq(c.counter, c.acquired);
}

/* ---- TTAS spinlock ----------------------------------------------------- */

START_TEST(spinlock_initializer_gives_free_lock)
{
	union any_lock l = { .ttas = SYNC_SPINLOCK_INITIALIZER };
	check_is_free(&ttas, &l);
}
END_TEST

START_TEST(spinlock_init_gives_free_lock)
{
	check_init_gives_free_lock(&ttas);
}
END_TEST

START_TEST(spinlock_lock_excludes_other_threads)
{
	check_lock_excludes_others(&ttas);
}
END_TEST

START_TEST(spinlock_unlock_frees_lock)
{
	check_unlock_frees_lock(&ttas);
}
END_TEST

START_TEST(spinlock_trylock_of_free_lock_takes_it)
{
	check_trylock_of_free_lock_takes_it(&ttas);
}
END_TEST

START_TEST(spinlock_trylock_of_lock_held_by_caller_returns_ebusy)
{
	check_trylock_held_by_caller_returns_ebusy(&ttas);
}
END_TEST

START_TEST(spinlock_trylock_of_lock_held_by_other_thread_returns_ebusy)
{
	check_trylock_held_by_other_thread_returns_ebusy(&ttas);
}
END_TEST

START_TEST(spinlock_init_of_null_lock_returns_einval)
{
	ck_assert_int_eq(sync_spinlock_init(NULL), EINVAL);
}
END_TEST

START_TEST(spinlock_trylock_of_null_lock_returns_einval)
{
	ck_assert_int_eq(sync_spinlock_trylock(NULL), EINVAL);
}
END_TEST

START_TEST(spinlock_lock_waits_until_holder_unlocks)
{
	check_lock_waits_until_holder_unlocks(&ttas);
}
END_TEST

START_TEST(spinlock_counter_is_exact_across_processes)
{
	check_counter_across_processes(&ttas);
}
END_TEST

START_TEST(spinlock_counter_is_exact_with_more_threads_than_cores)
{
	check_more_threads_than_cores(&ttas);
}
END_TEST

START_TEST(spinlock_is_4_bytes)
{
	ck_assert_uint_eq(sizeof(sync_spinlock_t), 4);
}
END_TEST

/* ---- ticket lock ------------------------------------------------------- */

START_TEST(ticketlock_initializer_gives_free_lock)
{
	union any_lock l = { .ticket = SYNC_TICKETLOCK_INITIALIZER };
	check_is_free(&ticket, &l);
}
END_TEST

START_TEST(ticketlock_init_gives_free_lock)
{
	check_init_gives_free_lock(&ticket);
}
END_TEST

START_TEST(ticketlock_lock_excludes_other_threads)
{
	check_lock_excludes_others(&ticket);
}
END_TEST

START_TEST(ticketlock_unlock_frees_lock)
{
	check_unlock_frees_lock(&ticket);
}
END_TEST

START_TEST(ticketlock_trylock_of_free_lock_takes_it)
{
	check_trylock_of_free_lock_takes_it(&ticket);
}
END_TEST

START_TEST(ticketlock_trylock_of_lock_held_by_caller_returns_ebusy)
{
	check_trylock_held_by_caller_returns_ebusy(&ticket);
}
END_TEST

START_TEST(ticketlock_trylock_of_lock_held_by_other_thread_returns_ebusy)
{
	check_trylock_held_by_other_thread_returns_ebusy(&ticket);
}
END_TEST

START_TEST(ticketlock_init_of_null_lock_returns_einval)
{
	ck_assert_int_eq(sync_ticketlock_init(NULL), EINVAL);
}
END_TEST

START_TEST(ticketlock_trylock_of_null_lock_returns_einval)
{
	ck_assert_int_eq(sync_ticketlock_trylock(NULL), EINVAL);
}
END_TEST

START_TEST(ticketlock_lock_waits_until_holder_unlocks)
{
	check_lock_waits_until_holder_unlocks(&ticket);
}
END_TEST

START_TEST(ticketlock_serves_waiters_in_arrival_order)
{
	check_fifo(&ticket, ticket_queue_mark);
}
END_TEST

START_TEST(ticketlock_counter_is_exact_across_processes)
{
	check_counter_across_processes(&ticket);
}
END_TEST

START_TEST(ticketlock_counter_is_exact_with_more_threads_than_cores)
{
	check_more_threads_than_cores(&ticket);
}
END_TEST

START_TEST(ticketlock_is_8_bytes)
{
	ck_assert_uint_eq(sizeof(sync_ticketlock_t), 8);
}
END_TEST

/* ---- MCS lock ---------------------------------------------------------- */

START_TEST(mcslock_initializer_gives_free_lock)
{
	union any_lock l = { .mcs = SYNC_MCSLOCK_INITIALIZER };
	check_is_free(&mcs, &l);
}
END_TEST

START_TEST(mcslock_init_gives_free_lock)
{
	check_init_gives_free_lock(&mcs);
}
END_TEST

START_TEST(mcslock_lock_excludes_other_threads)
{
	check_lock_excludes_others(&mcs);
}
END_TEST

START_TEST(mcslock_unlock_frees_lock)
{
	check_unlock_frees_lock(&mcs);
}
END_TEST

START_TEST(mcslock_trylock_of_free_lock_takes_it)
{
	check_trylock_of_free_lock_takes_it(&mcs);
}
END_TEST

START_TEST(mcslock_trylock_of_lock_held_by_caller_returns_ebusy)
{
	check_trylock_held_by_caller_returns_ebusy(&mcs);
}
END_TEST

START_TEST(mcslock_trylock_of_lock_held_by_other_thread_returns_ebusy)
{
	check_trylock_held_by_other_thread_returns_ebusy(&mcs);
}
END_TEST

START_TEST(mcslock_init_of_null_lock_returns_einval)
{
	ck_assert_int_eq(sync_mcslock_init(NULL), EINVAL);
}
END_TEST

START_TEST(mcslock_trylock_of_null_lock_returns_einval)
{
	sync_mcsnode_t node;
	ck_assert_int_eq(sync_mcslock_trylock(NULL, &node), EINVAL);
}
END_TEST

START_TEST(mcslock_trylock_with_null_node_returns_einval_and_leaves_lock_free)
{
	sync_mcslock_t l = SYNC_MCSLOCK_INITIALIZER;
	sync_mcsnode_t node;
	ck_assert_int_eq(sync_mcslock_trylock(&l, NULL), EINVAL);
	ck_assert_int_eq(sync_mcslock_trylock(&l, &node), 0);
	sync_mcslock_unlock(&l, &node);
}
END_TEST

START_TEST(mcslock_lock_accepts_uninitialised_node)
{
	union any_lock l = { .mcs = SYNC_MCSLOCK_INITIALIZER };
	sync_mcsnode_t node;
	fill_garbage(&node, sizeof node);
	sync_mcslock_lock(&l.mcs, &node);
	ck_assert_int_eq(other_thread_trylock(&mcs, &l), EBUSY);
	sync_mcslock_unlock(&l.mcs, &node);
	ck_assert_int_eq(other_thread_trylock(&mcs, &l), 0);
}
END_TEST

START_TEST(mcslock_failed_trylock_keeps_no_reference_to_node)
{
	union any_lock l = { .mcs = SYNC_MCSLOCK_INITIALIZER };
	sync_mcsnode_t held, tried;
	sync_mcslock_lock(&l.mcs, &held);
	ck_assert_int_eq(sync_mcslock_trylock(&l.mcs, &tried), EBUSY);
	fill_garbage(&tried, sizeof tried); /* reused for something else */
	sync_mcslock_unlock(&l.mcs, &held);
	ck_assert_int_eq(other_thread_trylock(&mcs, &l), 0);
}
END_TEST

START_TEST(mcslock_lock_waits_until_holder_unlocks)
{
	check_lock_waits_until_holder_unlocks(&mcs);
}
END_TEST

START_TEST(mcslock_serves_waiters_in_arrival_order)
{
	check_fifo(&mcs, mcs_queue_mark);
}
END_TEST

START_TEST(mcslock_counter_is_exact_across_processes)
{
	check_counter_across_processes(&mcs);
}
END_TEST

START_TEST(mcslock_hands_off_between_processes_mapping_it_at_different_addresses)
{
	/* The parent holds the lock; the child, which sees the mapping at
	 * another address, queues behind it and must get it on unlock. Queue
	 * links that were addresses, not offsets, would point into memory
	 * that the other process does not have there. */
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(sync_mcslock_init(&sh->l.mcs), 0);
	sync_mcslock_lock(&sh->l.mcs, &sh->nodes[0]);
	intptr_t held = (intptr_t)atomic_load(&sh->l.mcs.tail);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		struct shared *view = move_mapping(sh, sizeof *sh);
		if (view == MAP_FAILED || view == sh)
			_exit(3);
		sync_mcslock_lock(&view->l.mcs, &view->nodes[1]);
		long seen = view->counter;
		sync_mcslock_unlock(&view->l.mcs, &view->nodes[1]);
		_exit(seen == 42 ? 0 : 4);
	}
	/* wait until the child has joined the queue (the ABI `tail` moves) */
	int64_t start = now_ns();
	while (atomic_load(&sh->l.mcs.tail) == held) {
		ck_assert(now_ns() - start < WAIT_LIMIT_NS);
		sleep_ns(20000);
	}
	sh->counter = 42;
	sync_mcslock_unlock(&sh->l.mcs, &sh->nodes[0]);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sync_mcslock_trylock(&sh->l.mcs, &sh->nodes[0]), 0); /* free */
	sync_mcslock_unlock(&sh->l.mcs, &sh->nodes[0]);
	ck_assert_int_eq(munmap(sh, sizeof *sh), 0);
}
END_TEST

START_TEST(mcslock_counter_is_exact_with_more_threads_than_cores)
{
	check_more_threads_than_cores(&mcs);
}
END_TEST

START_TEST(mcslock_is_one_word)
{
	ck_assert_uint_eq(sizeof(sync_mcslock_t), sizeof(intptr_t));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("spinlock");

	TCase *tc = tcase_create("ttas");
	tcase_add_test(tc, spinlock_initializer_gives_free_lock);
	tcase_add_test(tc, spinlock_init_gives_free_lock);
	tcase_add_test(tc, spinlock_lock_excludes_other_threads);
	tcase_add_test(tc, spinlock_unlock_frees_lock);
	tcase_add_test(tc, spinlock_trylock_of_free_lock_takes_it);
	tcase_add_test(tc, spinlock_trylock_of_lock_held_by_caller_returns_ebusy);
	tcase_add_test(tc, spinlock_trylock_of_lock_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, spinlock_init_of_null_lock_returns_einval);
	tcase_add_test(tc, spinlock_trylock_of_null_lock_returns_einval);
	tcase_add_test(tc, spinlock_lock_waits_until_holder_unlocks);
	tcase_add_test(tc, spinlock_counter_is_exact_across_processes);
	tcase_add_test(tc, spinlock_counter_is_exact_with_more_threads_than_cores);
	tcase_add_test(tc, spinlock_is_4_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("ticket");
	tcase_add_test(tc, ticketlock_initializer_gives_free_lock);
	tcase_add_test(tc, ticketlock_init_gives_free_lock);
	tcase_add_test(tc, ticketlock_lock_excludes_other_threads);
	tcase_add_test(tc, ticketlock_unlock_frees_lock);
	tcase_add_test(tc, ticketlock_trylock_of_free_lock_takes_it);
	tcase_add_test(tc, ticketlock_trylock_of_lock_held_by_caller_returns_ebusy);
	tcase_add_test(tc, ticketlock_trylock_of_lock_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, ticketlock_init_of_null_lock_returns_einval);
	tcase_add_test(tc, ticketlock_trylock_of_null_lock_returns_einval);
	tcase_add_test(tc, ticketlock_lock_waits_until_holder_unlocks);
	tcase_add_test(tc, ticketlock_serves_waiters_in_arrival_order);
	tcase_add_test(tc, ticketlock_counter_is_exact_across_processes);
	tcase_add_test(tc, ticketlock_counter_is_exact_with_more_threads_than_cores);
	tcase_add_test(tc, ticketlock_is_8_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("mcs");
	tcase_add_test(tc, mcslock_initializer_gives_free_lock);
	tcase_add_test(tc, mcslock_init_gives_free_lock);
	tcase_add_test(tc, mcslock_lock_excludes_other_threads);
	tcase_add_test(tc, mcslock_unlock_frees_lock);
	tcase_add_test(tc, mcslock_trylock_of_free_lock_takes_it);
	tcase_add_test(tc, mcslock_trylock_of_lock_held_by_caller_returns_ebusy);
	tcase_add_test(tc, mcslock_trylock_of_lock_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, mcslock_init_of_null_lock_returns_einval);
	tcase_add_test(tc, mcslock_trylock_of_null_lock_returns_einval);
	tcase_add_test(tc, mcslock_trylock_with_null_node_returns_einval_and_leaves_lock_free);
	tcase_add_test(tc, mcslock_lock_accepts_uninitialised_node);
	tcase_add_test(tc, mcslock_failed_trylock_keeps_no_reference_to_node);
	tcase_add_test(tc, mcslock_lock_waits_until_holder_unlocks);
	tcase_add_test(tc, mcslock_serves_waiters_in_arrival_order);
	tcase_add_test(tc, mcslock_counter_is_exact_across_processes);
	tcase_add_test(tc, mcslock_hands_off_between_processes_mapping_it_at_different_addresses);
	tcase_add_test(tc, mcslock_counter_is_exact_with_more_threads_than_cores);
	tcase_add_test(tc, mcslock_is_one_word);
	suite_add_tcase(s, tc);

	return s;
}
