/* Unit tests for <sync/rwlock.h>: one behaviour of the contract per test. */
#define _GNU_SOURCE /* mremap */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sync.h>

#include "tap_main.h"
#include "util.h"

/* ---- one call in another thread ---------------------------------------- */

struct call {
	int (*fn)(sync_rwlock_t *);
	sync_rwlock_t *l;
	int result;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	c->result = c->fn(c->l);
	return NULL;
}

static int in_other_thread(int (*fn)(sync_rwlock_t *), sync_rwlock_t *l)
{
	struct call c = { fn, l, -1 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, call_main, &c), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	return c.result;
}

/* tryrdlock, and on success rdunlock again: probes without changing the lock.
 * Returns tryrdlock's result, or -1 if the unlock failed. */
static int tryrdlock_and_release(sync_rwlock_t *l)
{
	int r = sync_rwlock_tryrdlock(l);
	if (r == 0 && sync_rwlock_rdunlock(l) != 0)
		return -1;
	return r;
}

/* trywrlock, and on success wrunlock again. */
static int trywrlock_and_release(sync_rwlock_t *l)
{
	int r = sync_rwlock_trywrlock(l);
	if (r == 0 && sync_rwlock_wrunlock(l) != 0)
		return -1;
	return r;
}

static int other_thread_tryrdlock(sync_rwlock_t *l)
{
	return in_other_thread(tryrdlock_and_release, l);
}

static int other_thread_trywrlock(sync_rwlock_t *l)
{
	return in_other_thread(trywrlock_and_release, l);
}

static int other_thread_rdunlock(sync_rwlock_t *l)
{
	return in_other_thread(sync_rwlock_rdunlock, l);
}

static int other_thread_wrunlock(sync_rwlock_t *l)
{
	return in_other_thread(sync_rwlock_wrunlock, l);
}

/* ---- a thread that takes the lock, holds it, and lets it go ------------- */

enum op { RDLOCK, WRLOCK, TIMEDRDLOCK, TIMEDWRLOCK };

static bool op_writes(enum op op)
{
	return op == WRLOCK || op == TIMEDWRLOCK;
}

struct actor {
	sync_rwlock_t *l;
	enum op op;
	struct timespec deadline; /* for the timed ops */
	atomic_int *order;        /* NULL, or a ticket counter shared by actors */
	pthread_t thread;
	atomic_int tid;
	atomic_int arriving; /* set just before the lock call */
	atomic_int done;     /* set once the lock call returned */
	atomic_int release;  /* set by the test: unlock now */
	int result;          /* of the lock call */
	int unlock_result;
	int ticket;          /* place in *order when the lock call returned */
	int64_t returned_at;
};

static int lock_op(sync_rwlock_t *l, enum op op, const struct timespec *d)
{
	switch (op) {
	case RDLOCK:
		return sync_rwlock_rdlock(l);
	case WRLOCK:
		return sync_rwlock_wrlock(l);
	case TIMEDRDLOCK:
		return sync_rwlock_timedrdlock(l, d);
	case TIMEDWRLOCK:
		return sync_rwlock_timedwrlock(l, d);
	}
	return -1;
}

static void *actor_main(void *arg)
{
	struct actor *a = arg;
	atomic_store(&a->tid, thread_id());
	/* from here on, the only place this thread can sleep is the lock call
	 * until it returns */
	atomic_store(&a->arriving, 1);
	a->result = lock_op(a->l, a->op, &a->deadline);
	a->returned_at = now_ns();
	if (a->order)
		a->ticket = atomic_fetch_add(a->order, 1);
	atomic_store(&a->done, 1);
	if (a->result != 0)
		return NULL;
	wait_until_equal(&a->release, 1);
	a->unlock_result = op_writes(a->op) ? sync_rwlock_wrunlock(a->l)
					    : sync_rwlock_rdunlock(a->l);
	return NULL;
}

/* Starts a thread that calls op on l (the timed ops with a deadline
 * timeout_ns from now) and returns once the thread is about to call it. */
static void actor_start(struct actor *a, sync_rwlock_t *l, enum op op, int64_t timeout_ns)
{
	a->l = l;
	a->op = op;
	a->deadline = sync_deadline((uint64_t)timeout_ns);
	atomic_init(&a->tid, 0);
	atomic_init(&a->arriving, 0);
	atomic_init(&a->done, 0);
	atomic_init(&a->release, 0);
	a->result = a->unlock_result = a->ticket = -1;
	a->returned_at = 0;
	ck_assert_int_eq(pthread_create(&a->thread, NULL, actor_main, a), 0);
	ck_assert(wait_until_equal(&a->arriving, 1));
}

/* Starts an actor on a lock it can take at once; returns once it holds it. */
static void actor_hold(struct actor *a, sync_rwlock_t *l, enum op op)
{
	actor_start(a, l, op, 2000 * NS_PER_MS);
	ck_assert(wait_until_equal(&a->done, 1));
	ck_assert_int_eq(a->result, 0);
}

/* Starts an actor on a lock it cannot take; returns once it sleeps in the
 * lock call, still without the lock. */
static void actor_block(struct actor *a, sync_rwlock_t *l, enum op op, int64_t timeout_ns)
{
	actor_start(a, l, op, timeout_ns);
	ck_assert_msg(wait_until_asleep(atomic_load(&a->tid)),
		      "actor never slept in the lock call");
	ck_assert_msg(atomic_load(&a->done) == 0,
		      "actor got the lock (result %d) but should wait", a->result);
}

/* Waits until the actor's lock call returned; false after WAIT_LIMIT_NS. */
static bool actor_returned(struct actor *a)
{
	return wait_until_equal(&a->done, 1);
}

/* Lets the actor unlock, if it holds the lock, and joins it. Fails (rather
 * than hangs) if the actor is still stuck in its lock call. */
static void actor_finish(struct actor *a)
{
	atomic_store(&a->release, 1);
	ck_assert_msg(actor_returned(a), "actor is still waiting for the lock");
	ck_assert_int_eq(pthread_join(a->thread, NULL), 0);
	if (a->result == 0)
		ck_assert_int_eq(a->unlock_result, 0);
}

/* ---- processes --------------------------------------------------------- */

/* State shared with forked children: a MAP_SHARED anonymous mapping. */
struct shared {
	sync_rwlock_t l;
	atomic_int stage;
	atomic_int stop;
	atomic_int readers_in;     /* readers inside a read section now */
	atomic_int max_readers_in; /* most seen at once */
	atomic_int writer_in;      /* a writer is inside its write section */
	long a, b;                 /* protected by l: b == a outside a write */
	int value;                 /* protected by l */
	int results[4];
};

static struct shared *shared_create(int flags)
{
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(sync_rwlock_init(&sh->l, flags), 0);
	atomic_init(&sh->stage, 0);
	for (int i = 0; i < 4; i++)
		sh->results[i] = -1;
	return sh;
}

static void shared_destroy(struct shared *sh)
{
	ck_assert_int_eq(munmap(sh, sizeof *sh), 0);
}

/* Forks a child that runs fn(sh) and exits with its result. */
static pid_t fork_child(int (*fn)(struct shared *), struct shared *sh)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		_exit(fn(sh));
	}
	return pid;
}

/* ---- checks of a lock's state ------------------------------------------ */

/* l is free: this thread write-locks it, another thread then can take it in
 * neither mode; once unlocked, another thread can take it in both. */
static void check_unlocked(sync_rwlock_t *l)
{
	ck_assert_int_eq(sync_rwlock_trywrlock(l), 0);
	ck_assert_int_eq(other_thread_tryrdlock(l), EBUSY);
	ck_assert_int_eq(other_thread_trywrlock(l), EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(l), 0);
	ck_assert_int_eq(other_thread_tryrdlock(l), 0);
	ck_assert_int_eq(other_thread_trywrlock(l), 0);
}

/* l is free and prefers writers: while this thread reads and a writer waits,
 * a new reader is refused. */
static void check_prefers_writers(sync_rwlock_t *l)
{
	struct actor w = { 0 };
	ck_assert_int_eq(sync_rwlock_rdlock(l), 0);
	actor_block(&w, l, WRLOCK, 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_trywrlock(l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(l), 0);
}

/* l is free and prefers readers: while this thread reads and a writer waits,
 * a new reader still gets in. */
static void check_prefers_readers(sync_rwlock_t *l)
{
	struct actor w = { 0 };
	ck_assert_int_eq(sync_rwlock_rdlock(l), 0);
	actor_block(&w, l, WRLOCK, 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(l), 0);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_trywrlock(l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(l), 0);
}

/* init(l, flags) fails with EINVAL and leaves the lock as it was: write-held
 * by this thread, preferring readers. */
static void check_init_rejects(int flags)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_init(&l, flags), EINVAL);
	/* still write-held, still ours */
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	struct timespec past = { 0, 0 };
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &past), EDEADLK);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	/* still preferring readers */
	check_prefers_readers(&l);
}

/* Fills l with a pattern no valid lock has, then initialises it. */
static void init_over_garbage(sync_rwlock_t *l, int flags)
{
	memset(l, 0xa5, sizeof *l);
	ck_assert_int_eq(sync_rwlock_init(l, flags), 0);
}

/* ---- initialisation ---------------------------------------------------- */

START_TEST(initializer_gives_unlocked_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	check_unlocked(&l);
}
END_TEST

START_TEST(initializer_gives_writer_preferring_rwlock)
{
	static sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	check_prefers_writers(&l);
}
END_TEST

START_TEST(init_with_no_flags_gives_unlocked_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, 0);
	check_unlocked(&l);
}
END_TEST

START_TEST(init_with_no_flags_gives_writer_preferring_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, 0);
	check_prefers_writers(&l);
}
END_TEST

START_TEST(init_with_pshared_gives_unlocked_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, SYNC_PSHARED);
	check_unlocked(&l);
}
END_TEST

START_TEST(init_with_pshared_gives_writer_preferring_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, SYNC_PSHARED);
	check_prefers_writers(&l);
}
END_TEST

START_TEST(init_with_prefer_reader_gives_unlocked_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, SYNC_RWLOCK_PREFER_READER);
	check_unlocked(&l);
}
END_TEST

START_TEST(init_with_prefer_reader_gives_reader_preferring_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, SYNC_RWLOCK_PREFER_READER);
	check_prefers_readers(&l);
}
END_TEST

START_TEST(init_with_pshared_and_prefer_reader_gives_unlocked_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER);
	check_unlocked(&l);
}
END_TEST

START_TEST(init_with_pshared_and_prefer_reader_gives_reader_preferring_rwlock)
{
	sync_rwlock_t l;
	init_over_garbage(&l, SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER);
	check_prefers_readers(&l);
}
END_TEST

START_TEST(init_rejects_mutex_errorcheck_flag_and_changes_nothing)
{
	check_init_rejects(SYNC_MUTEX_ERRORCHECK);
}
END_TEST

START_TEST(init_rejects_unknown_bit_0x100_and_changes_nothing)
{
	check_init_rejects(0x100);
}
END_TEST

START_TEST(init_rejects_all_bits_set_and_changes_nothing)
{
	check_init_rejects(-1);
}
END_TEST

START_TEST(init_rejects_unknown_bit_next_to_valid_flags)
{
	check_init_rejects(SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER | 0x8);
}
END_TEST

START_TEST(rwlock_is_32_bytes)
{
	ck_assert_uint_eq(sizeof(sync_rwlock_t), 32);
}
END_TEST

/* ---- NULL lock --------------------------------------------------------- */

START_TEST(init_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_init(NULL, 0), EINVAL);
}
END_TEST

START_TEST(destroy_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_destroy(NULL), EINVAL);
}
END_TEST

START_TEST(rdlock_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_rdlock(NULL), EINVAL);
}
END_TEST

START_TEST(tryrdlock_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_tryrdlock(NULL), EINVAL);
}
END_TEST

START_TEST(timedrdlock_of_null_rwlock_returns_einval)
{
	struct timespec d = sync_deadline(NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedrdlock(NULL, &d), EINVAL);
}
END_TEST

START_TEST(wrlock_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_wrlock(NULL), EINVAL);
}
END_TEST

START_TEST(trywrlock_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_trywrlock(NULL), EINVAL);
}
END_TEST

START_TEST(timedwrlock_of_null_rwlock_returns_einval)
{
	struct timespec d = sync_deadline(NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedwrlock(NULL, &d), EINVAL);
}
END_TEST

START_TEST(rdunlock_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_rdunlock(NULL), EINVAL);
}
END_TEST

START_TEST(wrunlock_of_null_rwlock_returns_einval)
{
	ck_assert_int_eq(sync_rwlock_wrunlock(NULL), EINVAL);
}
END_TEST

/* ---- read locks -------------------------------------------------------- */

START_TEST(rdlock_of_free_rwlock_takes_read_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(tryrdlock_of_free_rwlock_takes_read_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(rdunlock_of_only_read_lock_frees_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(read_locks_are_counted_and_each_needs_an_rdunlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY); /* one left */
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(read_lock_taken_in_one_thread_can_be_released_in_another)
{
	/* read holds are counted, not owned */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(other_thread_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

#define READERS 4

START_TEST(many_threads_hold_read_locks_at_once)
{
	/* each reader keeps its read lock until all have one */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r[READERS] = { { 0 } };
	for (int i = 0; i < READERS; i++)
		actor_hold(&r[i], &l, i % 2 ? RDLOCK : TIMEDRDLOCK);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	for (int i = 0; i < READERS; i++)
		actor_finish(&r[i]);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_of_read_held_rwlock_takes_read_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), 0);
	actor_finish(&r);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY); /* ours is left */
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

/* ---- write locks ------------------------------------------------------- */

START_TEST(wrlock_of_free_rwlock_takes_it)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(trywrlock_of_free_rwlock_takes_it)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(wrunlock_of_write_held_rwlock_frees_it)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
}
END_TEST

START_TEST(tryrdlock_of_rwlock_write_held_by_other_thread_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(trywrlock_of_rwlock_write_held_by_other_thread_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(trywrlock_of_rwlock_read_held_by_other_thread_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	actor_finish(&r);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(trywrlock_of_rwlock_read_held_by_caller_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM); /* held once */
}
END_TEST

START_TEST(write_lock_can_be_taken_by_next_thread_after_writer_unlocks)
{
	/* The writer is forgotten at wrunlock: another thread may lock and
	 * unlock, and so may the first writer again. */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

/* ---- misuse by the write holder ---------------------------------------- */

/* l is write-held once by this thread: one wrunlock frees it. */
static void check_write_held_once_by_caller(sync_rwlock_t *l)
{
	ck_assert_int_eq(other_thread_tryrdlock(l), EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(l), 0);
}

START_TEST(wrlock_by_write_holder_returns_edeadlk)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), EDEADLK);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(timedwrlock_by_write_holder_returns_edeadlk_at_once)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), EDEADLK);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(rdlock_by_write_holder_returns_edeadlk)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), EDEADLK);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM); /* no read lock taken */
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(timedrdlock_by_write_holder_returns_edeadlk_at_once)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), EDEADLK);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(trywrlock_by_write_holder_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(tryrdlock_by_write_holder_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	check_write_held_once_by_caller(&l);
}
END_TEST

/* ---- unlock errors ----------------------------------------------------- */

START_TEST(rdunlock_of_unlocked_rwlock_returns_eperm)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	/* and changes nothing: still free, one read lock needs one rdunlock */
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(rdunlock_of_rwlock_write_held_by_caller_returns_eperm_and_keeps_write_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	check_write_held_once_by_caller(&l);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(rdunlock_of_rwlock_write_held_by_other_thread_returns_eperm)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	actor_finish(&w); /* its wrunlock still works */
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(wrunlock_of_unlocked_rwlock_returns_eperm)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
	/* and changes nothing */
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
}
END_TEST

START_TEST(wrunlock_of_read_held_rwlock_returns_eperm_and_keeps_read_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(wrunlock_by_non_owner_returns_eperm_and_keeps_rwlock_write_held)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(other_thread_wrunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(wrunlock_of_rwlock_write_held_by_other_thread_returns_eperm)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

/* ---- reader count limit ------------------------------------------------ */

/* Takes SYNC_RWLOCK_READERS_MAX read locks on l with take(l). */
static void take_all_read_locks(sync_rwlock_t *l, int (*take)(sync_rwlock_t *))
{
	for (uint32_t i = 0; i < SYNC_RWLOCK_READERS_MAX; i++) {
		int r = take(l);
		if (r != 0)
			ck_abort_msg("read lock %u of %u returned %d", (unsigned)i + 1,
				     (unsigned)SYNC_RWLOCK_READERS_MAX, r);
	}
}

/* l holds SYNC_RWLOCK_READERS_MAX read locks, so one more is refused: one
 * rdunlock makes room for exactly one, and releasing all of them frees l. */
static void check_full_then_release_all(sync_rwlock_t *l)
{
	ck_assert_int_eq(sync_rwlock_tryrdlock(l), EAGAIN);
	ck_assert_int_eq(sync_rwlock_rdunlock(l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(l), 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(l), EAGAIN);
	ck_assert_int_eq(sync_rwlock_trywrlock(l), EBUSY);
	for (uint32_t i = 0; i < SYNC_RWLOCK_READERS_MAX; i++) {
		int r = sync_rwlock_rdunlock(l);
		if (r != 0)
			ck_abort_msg("rdunlock %u returned %d", (unsigned)i + 1, r);
	}
	ck_assert_int_eq(sync_rwlock_rdunlock(l), EPERM);
	ck_assert_int_eq(sync_rwlock_trywrlock(l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(l), 0);
}

static int timedrdlock_far(sync_rwlock_t *l)
{
	static const struct timespec far = { 1L << 40, 0 };
	return sync_rwlock_timedrdlock(l, &far);
}

START_TEST(readers_max_is_2_to_the_24_minus_1)
{
	ck_assert_uint_eq(SYNC_RWLOCK_READERS_MAX, (1u << 24) - 1);
}
END_TEST

START_TEST(rdlock_at_readers_max_returns_eagain_and_changes_nothing)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	take_all_read_locks(&l, sync_rwlock_rdlock);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), EAGAIN);
	check_full_then_release_all(&l);
}
END_TEST

START_TEST(tryrdlock_at_readers_max_returns_eagain_and_changes_nothing)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	take_all_read_locks(&l, sync_rwlock_tryrdlock);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EAGAIN);
	check_full_then_release_all(&l);
}
END_TEST

START_TEST(timedrdlock_at_readers_max_returns_eagain_and_changes_nothing)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	take_all_read_locks(&l, timedrdlock_far);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), EAGAIN);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS); /* at once */
	check_full_then_release_all(&l);
}
END_TEST

/* A biased lock: the first read goes into the thread's slot, and it counts
 * toward the limit like the others. */
START_TEST(readers_max_of_a_biased_lock_counts_the_read_through_the_slot)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	take_all_read_locks(&l, sync_rwlock_rdlock);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), EAGAIN);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), EAGAIN);
	check_full_then_release_all(&l);
}
END_TEST

/* ---- destroy ----------------------------------------------------------- */

START_TEST(destroy_of_free_rwlock_returns_zero)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(destroyed_rwlock_can_be_initialised_again)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	check_prefers_writers(&l);
}
END_TEST

START_TEST(destroy_of_read_held_rwlock_returns_ebusy_and_rwlock_stays_usable)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(destroy_of_write_held_rwlock_returns_ebusy_and_rwlock_stays_usable)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
	check_write_held_once_by_caller(&l);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(destroy_of_rwlock_held_by_other_thread_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(destroy_with_waiting_writer_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	actor_block(&w, &l, WRLOCK, 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(destroy_with_waiting_reader_returns_ebusy)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	actor_block(&r, &l, RDLOCK, 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert(actor_returned(&r));
	ck_assert_int_eq(r.result, 0);
	actor_finish(&r);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

/* ---- timed locks: bad deadlines ---------------------------------------- */

START_TEST(timedrdlock_with_null_abstime_returns_einval_and_does_not_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, NULL), EINVAL);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_with_negative_nsec_returns_einval_and_does_not_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = -1;
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), EINVAL);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_with_nsec_of_one_second_returns_einval_and_does_not_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = 1000000000L;
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), EINVAL);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(timedwrlock_with_null_abstime_returns_einval_and_does_not_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, NULL), EINVAL);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(timedwrlock_with_negative_nsec_returns_einval_and_does_not_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = -1;
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), EINVAL);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(timedwrlock_with_nsec_of_one_second_returns_einval_and_does_not_lock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = 1000000000L;
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), EINVAL);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_with_bad_abstime_on_write_held_rwlock_returns_einval_at_once)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = 1000000000L;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	actor_finish(&w);
}
END_TEST

START_TEST(timedwrlock_with_bad_abstime_on_read_held_rwlock_returns_einval_at_once)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = -1;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	actor_finish(&r);
	/* and it left no waiting writer behind to keep readers out */
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(timedwrlock_checks_abstime_before_deadlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, NULL), EINVAL);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(timedrdlock_checks_abstime_before_deadlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, NULL), EINVAL);
	check_write_held_once_by_caller(&l);
}
END_TEST

/* ---- timed locks: deadlines already past ------------------------------- */

START_TEST(timedrdlock_with_deadline_of_now_read_locks_free_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_with_deadline_zero_read_locks_free_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_with_negative_seconds_read_locks_free_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(timedrdlock_with_deadline_zero_read_locks_read_held_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), 0);
	actor_finish(&r);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(timedwrlock_with_deadline_of_now_locks_free_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), 0);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(timedwrlock_with_deadline_zero_locks_free_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), 0);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(timedwrlock_with_negative_seconds_locks_free_rwlock)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), 0);
	check_write_held_once_by_caller(&l);
}
END_TEST

START_TEST(timedrdlock_with_deadline_zero_on_write_held_rwlock_returns_etimedout)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), ETIMEDOUT);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(timedrdlock_with_negative_seconds_on_write_held_rwlock_returns_etimedout)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), ETIMEDOUT);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(timedwrlock_with_deadline_zero_on_read_held_rwlock_returns_etimedout)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), ETIMEDOUT);
	/* and it left no waiting writer behind to keep readers out */
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	actor_finish(&r);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
}
END_TEST

START_TEST(timedwrlock_with_negative_seconds_on_write_held_rwlock_returns_etimedout)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), ETIMEDOUT);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
}
END_TEST

/* ---- timed locks: waiting ---------------------------------------------- */

/* The timed call returned ETIMEDOUT, not before the deadline d. */
static void check_timed_out(int result, const struct timespec *d)
{
	int64_t late = now_ns() - timespec_ns(d);
	ck_assert_int_eq(result, ETIMEDOUT);
	ck_assert_int_ge(late, 0);
	ck_assert_int_lt(late, 2000 * NS_PER_MS);
}

START_TEST(timedrdlock_on_write_held_rwlock_returns_etimedout_not_before_deadline)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	check_timed_out(sync_rwlock_timedrdlock(&l, &d), &d);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
}
END_TEST

START_TEST(timedwrlock_on_write_held_rwlock_returns_etimedout_not_before_deadline)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	check_timed_out(sync_rwlock_timedwrlock(&l, &d), &d);
	actor_finish(&w);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
}
END_TEST

START_TEST(timedwrlock_on_read_held_rwlock_returns_etimedout_not_before_deadline)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	check_timed_out(sync_rwlock_timedwrlock(&l, &d), &d);
	actor_finish(&r);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), EPERM);
}
END_TEST

START_TEST(timedwrlock_that_timed_out_leaves_rwlock_usable)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), ETIMEDOUT);
	/* no writer waits any more: readers get in, and once they leave, a
	 * writer does */
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	actor_finish(&r);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(timedrdlock_that_timed_out_leaves_rwlock_usable)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), ETIMEDOUT);
	actor_finish(&w);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(timedrdlock_succeeds_when_writer_unlocks_before_deadline)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	actor_block(&r, &l, TIMEDRDLOCK, 2000 * NS_PER_MS);
	int64_t unlocked_at = now_ns();
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert(actor_returned(&r));
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_ge(r.returned_at, unlocked_at);
	ck_assert_int_lt(r.returned_at, timespec_ns(&r.deadline));
	actor_finish(&r);
}
END_TEST

START_TEST(timedwrlock_succeeds_when_readers_unlock_before_deadline)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	actor_block(&w, &l, TIMEDWRLOCK, 2000 * NS_PER_MS);
	int64_t unlocked_at = now_ns();
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_ge(w.returned_at, unlocked_at);
	ck_assert_int_lt(w.returned_at, timespec_ns(&w.deadline));
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	actor_finish(&w);
}
END_TEST

/* ---- writer preference (default) and PREFER_READER --------------------- */

START_TEST(tryrdlock_returns_ebusy_while_writer_waits)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 }, w = { 0 };
	actor_hold(&r, &l, RDLOCK);
	actor_block(&w, &l, WRLOCK, 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	actor_finish(&r);
	actor_finish(&w);
	ck_assert_int_eq(w.result, 0);
}
END_TEST

START_TEST(timedrdlock_times_out_while_writer_waits)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 }, w = { 0 };
	actor_hold(&r, &l, RDLOCK);
	actor_block(&w, &l, WRLOCK, 0);
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	check_timed_out(sync_rwlock_timedrdlock(&l, &d), &d);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	actor_finish(&r);
	actor_finish(&w);
	ck_assert_int_eq(w.result, 0);
}
END_TEST

START_TEST(rdlock_waits_while_writer_waits_until_writer_had_its_turn)
{
	/* A read holder, a writer waiting behind it, then a new reader: the new
	 * reader stays out until the writer has taken and released the lock. */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	atomic_int order = 0;
	struct actor w = { .order = &order }, r = { .order = &order };
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	actor_block(&w, &l, WRLOCK, 0);
	actor_block(&r, &l, RDLOCK, 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	sleep_ns(20 * NS_PER_MS);
	ck_assert_int_eq(atomic_load(&r.done), 0); /* the writer holds it */
	actor_finish(&w);
	ck_assert(actor_returned(&r));
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_eq(w.ticket, 0);
	ck_assert_int_eq(r.ticket, 1);
	actor_finish(&r);
}
END_TEST

START_TEST(prefer_reader_tryrdlock_succeeds_while_writer_waits)
{
	sync_rwlock_t l;
	struct actor r = { 0 }, w = { 0 };
	ck_assert_int_eq(sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER), 0);
	actor_hold(&r, &l, RDLOCK);
	actor_block(&w, &l, WRLOCK, 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	actor_finish(&r);
	actor_finish(&w);
	ck_assert_int_eq(w.result, 0);
}
END_TEST

START_TEST(prefer_reader_rdlock_gets_in_while_writer_waits)
{
	sync_rwlock_t l;
	struct actor r = { 0 }, w = { 0 }, r2 = { 0 };
	ck_assert_int_eq(sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER), 0);
	actor_hold(&r, &l, RDLOCK);
	actor_block(&w, &l, WRLOCK, 0);
	actor_hold(&r2, &l, RDLOCK);
	actor_finish(&r);
	ck_assert_int_eq(atomic_load(&w.done), 0); /* r2 still reads */
	actor_finish(&r2);
	actor_finish(&w);
	ck_assert_int_eq(w.result, 0);
}
END_TEST

START_TEST(prefer_reader_timedrdlock_gets_in_while_writer_waits)
{
	sync_rwlock_t l;
	struct actor r = { 0 }, w = { 0 };
	ck_assert_int_eq(sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER), 0);
	actor_hold(&r, &l, RDLOCK);
	actor_block(&w, &l, WRLOCK, 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), 0);
	actor_finish(&r);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	actor_finish(&w);
	ck_assert_int_eq(w.result, 0);
}
END_TEST

START_TEST(prefer_reader_rdlock_still_waits_while_writer_holds)
{
	sync_rwlock_t l;
	struct actor r = { 0 };
	ck_assert_int_eq(sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	actor_block(&r, &l, RDLOCK, 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	actor_finish(&r);
	ck_assert_int_eq(r.result, 0);
}
END_TEST

/* ---- timed-out writers and the readers behind them --------------------- */

START_TEST(readers_blocked_behind_timed_out_writer_get_in)
{
	/* A read holder, a timed writer waiting behind it, readers waiting
	 * behind the writer: once the writer gives up, the readers must be
	 * woken, although the read holder never unlocks meanwhile. */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 }, r1 = { 0 }, r2 = { 0 };
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	actor_block(&w, &l, TIMEDWRLOCK, 300 * NS_PER_MS);
	actor_block(&r1, &l, RDLOCK, 0);
	actor_block(&r2, &l, TIMEDRDLOCK, 2000 * NS_PER_MS);
	ck_assert(actor_returned(&w));
	check_timed_out(w.result, &w.deadline);
	ck_assert_msg(actor_returned(&r1), "rdlock not woken after the writer timed out");
	ck_assert_msg(actor_returned(&r2), "timedrdlock not woken after the writer timed out");
	ck_assert_int_eq(r1.result, 0);
	ck_assert_int_eq(r2.result, 0);
	ck_assert_int_lt(r2.returned_at, timespec_ns(&r2.deadline));
	actor_finish(&w);
	actor_finish(&r1);
	actor_finish(&r2);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(readers_stay_blocked_when_one_of_two_waiting_writers_times_out)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w1 = { 0 }, w2 = { 0 }, r = { 0 };
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	actor_block(&w1, &l, WRLOCK, 0);
	actor_block(&w2, &l, TIMEDWRLOCK, 300 * NS_PER_MS);
	actor_block(&r, &l, RDLOCK, 0);
	ck_assert(actor_returned(&w2));
	check_timed_out(w2.result, &w2.deadline);
	sleep_ns(20 * NS_PER_MS);
	ck_assert_int_eq(atomic_load(&r.done), 0); /* w1 still waits */
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert(actor_returned(&w1));
	ck_assert_int_eq(w1.result, 0);
	actor_finish(&w1);
	actor_finish(&r);
	ck_assert_int_eq(r.result, 0);
	actor_finish(&w2);
}
END_TEST

START_TEST(writer_behind_timed_out_writer_still_gets_in)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w1 = { 0 }, w2 = { 0 };
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	actor_block(&w1, &l, TIMEDWRLOCK, 100 * NS_PER_MS);
	actor_block(&w2, &l, WRLOCK, 0);
	ck_assert(actor_returned(&w1));
	check_timed_out(w1.result, &w1.deadline);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_msg(actor_returned(&w2), "writer not woken by wrunlock");
	ck_assert_int_eq(w2.result, 0);
	actor_finish(&w2);
	actor_finish(&w1);
}
END_TEST

/* ---- wake-ups ---------------------------------------------------------- */

START_TEST(wrunlock_wakes_all_sleeping_readers)
{
	/* all readers keep their read lock: they hold it at once */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r[READERS] = { { 0 } };
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	for (int i = 0; i < READERS; i++)
		actor_block(&r[i], &l, i % 2 ? RDLOCK : TIMEDRDLOCK, 2000 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	for (int i = 0; i < READERS; i++) {
		ck_assert_msg(actor_returned(&r[i]), "reader %d not woken", i);
		ck_assert_int_eq(r[i].result, 0);
	}
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	for (int i = 0; i < READERS; i++)
		actor_finish(&r[i]);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(wrunlock_wakes_sleeping_writer)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	actor_block(&w, &l, WRLOCK, 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert_msg(actor_returned(&w), "writer not woken");
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	actor_finish(&w);
}
END_TEST

START_TEST(last_rdunlock_wakes_sleeping_writer)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 }, w = { 0 };
	actor_hold(&r, &l, RDLOCK);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	actor_block(&w, &l, TIMEDWRLOCK, 2000 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	sleep_ns(20 * NS_PER_MS);
	ck_assert_int_eq(atomic_load(&w.done), 0); /* r still reads */
	actor_finish(&r);
	ck_assert_msg(actor_returned(&w), "writer not woken by the last rdunlock");
	ck_assert_int_eq(w.result, 0);
	actor_finish(&w);
}
END_TEST

START_TEST(wrunlock_with_readers_and_writers_asleep_lets_all_of_them_in)
{
	/* each one unlocks as soon as it got the lock */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor a[4] = { { 0 } };
	static const enum op ops[4] = { RDLOCK, WRLOCK, TIMEDRDLOCK, TIMEDWRLOCK };
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	for (int i = 0; i < 4; i++) {
		actor_block(&a[i], &l, ops[i], 2000 * NS_PER_MS);
		atomic_store(&a[i].release, 1);
	}
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(actor_returned(&a[i]), "waiter %d never got in", i);
		ck_assert_int_eq(a[i].result, 0);
		actor_finish(&a[i]);
	}
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

#define HANDOFFS 100

/* The test's own signalling uses POSIX semaphores: they sleep, so under load
 * the two threads do not have to win the CPU back from a yield each time. */
struct handoff {
	sync_rwlock_t l;
	bool waiter_writes;
	int flag;       /* protected by l */
	int wrong_flag; /* protected by l */
	int errors;
	atomic_int waiter_tid;
	atomic_int arriving;
	sem_t go, got;  /* main -> waiter: come; waiter -> main: got it */
};

static void *handoff_waiter(void *arg)
{
	struct handoff *ho = arg;
	atomic_store(&ho->waiter_tid, thread_id());
	for (int i = 1; i <= HANDOFFS; i++) {
		while (sem_wait(&ho->go) != 0)
			;
		/* from here on, the only place this thread can sleep is the lock */
		atomic_store(&ho->arriving, i);
		int r = ho->waiter_writes ? sync_rwlock_wrlock(&ho->l) : sync_rwlock_rdlock(&ho->l);
		if (r != 0) {
			ho->errors++;
			return NULL;
		}
		if (ho->flag != i)
			ho->wrong_flag++;
		sem_post(&ho->got);
		r = ho->waiter_writes ? sync_rwlock_wrunlock(&ho->l) : sync_rwlock_rdunlock(&ho->l);
		if (r != 0)
			ho->errors++;
	}
	return NULL;
}

/* sem_wait with a limit of WAIT_LIMIT_NS; false if it ran out. */
static bool sem_wait_limited(sem_t *sem)
{
	struct timespec d;
	clock_gettime(CLOCK_REALTIME, &d);
	d.tv_sec += WAIT_LIMIT_NS / 1000000000LL;
	int r;
	while ((r = sem_timedwait(sem, &d)) != 0 && errno == EINTR)
		;
	return r == 0;
}

/* The waiter sleeps in its lock call each time the main thread unlocks; a
 * lost wake-up leaves it asleep and the test fails. The main thread takes the
 * lock back at once, which may sleep until the waiter unlocks. */
static void run_handoffs(struct handoff *ho)
{
	pthread_t t;
	bool main_writes = !ho->waiter_writes;
	ck_assert_int_eq(sem_init(&ho->go, 0, 0), 0);
	ck_assert_int_eq(sem_init(&ho->got, 0, 0), 0);
	ck_assert_int_eq(main_writes ? sync_rwlock_wrlock(&ho->l) : sync_rwlock_rdlock(&ho->l), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, handoff_waiter, ho), 0);
	for (int i = 1; i <= HANDOFFS; i++) {
		ck_assert_int_eq(sem_post(&ho->go), 0);
		ck_assert(wait_until_equal(&ho->arriving, i));
		ck_assert_msg(wait_until_asleep(atomic_load(&ho->waiter_tid)),
			      "hand-off %d: waiter never slept", i);
		ho->flag = i;
		ck_assert_int_eq(main_writes ? sync_rwlock_wrunlock(&ho->l)
					     : sync_rwlock_rdunlock(&ho->l), 0);
		ck_assert_msg(sem_wait_limited(&ho->got),
			      "hand-off %d: waiter was not woken", i);
		ck_assert_int_eq(main_writes ? sync_rwlock_wrlock(&ho->l)
					     : sync_rwlock_rdlock(&ho->l), 0);
	}
	ck_assert_int_eq(ho->wrong_flag, 0);
	ck_assert_int_eq(ho->errors, 0);
	ck_assert_int_eq(main_writes ? sync_rwlock_wrunlock(&ho->l) : sync_rwlock_rdunlock(&ho->l), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

START_TEST(rdlock_sleeper_is_woken_by_every_wrunlock)
{
	static struct handoff ho = { .l = SYNC_RWLOCK_INITIALIZER, .waiter_writes = false };
	run_handoffs(&ho);
}
END_TEST

START_TEST(wrlock_sleeper_is_woken_by_every_rdunlock)
{
	static struct handoff ho = { .l = SYNC_RWLOCK_INITIALIZER, .waiter_writes = true };
	run_handoffs(&ho);
}
END_TEST

/* ---- signals ----------------------------------------------------------- */

static atomic_int signals_caught;

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals_caught, 1);
}

/* A no-op SIGUSR1 handler without SA_RESTART: a futex wait it interrupts
 * returns EINTR, which the library must swallow. */
static void install_signal_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	atomic_store(&signals_caught, 0);
}

/* l is held by this thread so that op must wait: an actor sleeping in op,
 * interrupted twice by a signal, keeps waiting and gets the lock once this
 * thread unlocks with unlock(l). */
static void check_survives_signals(sync_rwlock_t *l, enum op op, int (*unlock)(sync_rwlock_t *))
{
	struct actor a = { 0 };
	install_signal_handler();
	actor_block(&a, l, op, 2000 * NS_PER_MS);
	for (int i = 1; i <= 2; i++) {
		ck_assert_int_eq(pthread_kill(a.thread, SIGUSR1), 0);
		ck_assert(wait_until_equal(&signals_caught, i));
		ck_assert_msg(wait_until_asleep(atomic_load(&a.tid)),
			      "waiter did not go back to sleep after signal %d", i);
		ck_assert_msg(atomic_load(&a.done) == 0,
			      "lock call returned %d after signal %d", a.result, i);
	}
	ck_assert_int_eq(unlock(l), 0);
	ck_assert(actor_returned(&a));
	ck_assert_int_eq(a.result, 0);
	actor_finish(&a);
}

START_TEST(rdlock_keeps_waiting_through_signals)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	check_survives_signals(&l, RDLOCK, sync_rwlock_wrunlock);
}
END_TEST

START_TEST(timedrdlock_keeps_waiting_through_signals)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	check_survives_signals(&l, TIMEDRDLOCK, sync_rwlock_wrunlock);
}
END_TEST

START_TEST(wrlock_keeps_waiting_through_signals)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	check_survives_signals(&l, WRLOCK, sync_rwlock_rdunlock);
}
END_TEST

START_TEST(timedwrlock_keeps_waiting_through_signals)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	check_survives_signals(&l, TIMEDWRLOCK, sync_rwlock_wrunlock);
}
END_TEST

/* ---- exclusion and starvation ------------------------------------------ */

#define WRITER_ITERS 5000

struct contention {
	sync_rwlock_t l;
	atomic_int stop;
	atomic_int writers_left;
	atomic_int readers_in;
	atomic_int writer_in;
	long a, b;             /* protected by l: b == a outside a write */
	atomic_int errors;
	atomic_long reads;
	atomic_long writer_passes;
};

/* Burns a few hundred nanoseconds without a system call: a yield or a sleep
 * here would hand the CPU to other processes on a loaded machine. */
static void spin_a_little(void)
{
	for (volatile int i = 0; i < 200; i++)
		;
}

static void *exclusive_writer(void *arg)
{
	struct contention *c = arg;
	for (int i = 0; i < WRITER_ITERS; i++) {
		if (sync_rwlock_wrlock(&c->l) != 0) {
			atomic_fetch_add(&c->errors, 1);
			break;
		}
		if (atomic_exchange(&c->writer_in, 1) != 0 || atomic_load(&c->readers_in) != 0)
			atomic_fetch_add(&c->errors, 1);
		c->a++;
		spin_a_little(); /* a reader that got in now would see b != a */
		c->b = c->a;
		atomic_store(&c->writer_in, 0);
		if (sync_rwlock_wrunlock(&c->l) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	atomic_fetch_sub(&c->writers_left, 1);
	return NULL;
}

static void *checking_reader(void *arg)
{
	struct contention *c = arg;
	while (atomic_load(&c->writers_left) > 0) {
		if (sync_rwlock_rdlock(&c->l) != 0) {
			atomic_fetch_add(&c->errors, 1);
			break;
		}
		atomic_fetch_add(&c->readers_in, 1);
		if (atomic_load(&c->writer_in) != 0 || c->a != c->b)
			atomic_fetch_add(&c->errors, 1);
		atomic_fetch_sub(&c->readers_in, 1);
		atomic_fetch_add(&c->reads, 1);
		if (sync_rwlock_rdunlock(&c->l) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return NULL;
}

START_TEST(writers_exclude_readers_and_each_other)
{
	static struct contention c = { .l = SYNC_RWLOCK_INITIALIZER, .writers_left = 2 };
	pthread_t t[4];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, exclusive_writer, &c), 0);
	for (int i = 2; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, checking_reader, &c), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&c.errors), 0);
	ck_assert_int_eq(c.a, 2L * WRITER_ITERS);
	ck_assert_int_eq(c.b, 2L * WRITER_ITERS);
}
END_TEST

static void *overlapping_reader(void *arg)
{
	struct contention *c = arg;
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (sync_rwlock_rdlock(&c->l) != 0) {
			atomic_fetch_add(&c->errors, 1);
			return NULL;
		}
		atomic_fetch_add(&c->reads, 1);
		sleep_ns(50000); /* long enough for the other readers to come in */
		if (sync_rwlock_rdunlock(&c->l) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return NULL;
}

static void *latecomer_writer(void *arg)
{
	struct contention *c = arg;
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (sync_rwlock_wrlock(&c->l) != 0) {
			atomic_fetch_add(&c->errors, 1);
			return NULL;
		}
		atomic_fetch_add(&c->writer_passes, 1);
		if (sync_rwlock_wrunlock(&c->l) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return NULL;
}

START_TEST(writer_gets_rwlock_while_three_readers_hammer_it)
{
	/* The readers overlap, so the lock never becomes free by itself; they
	 * keep going for 100 ms, and on a machine too loaded for the writer to
	 * have run by then, until it got in once (at most WAIT_LIMIT_NS): a
	 * writer that starves never gets in. */
	static struct contention c = { .l = SYNC_RWLOCK_INITIALIZER };
	pthread_t t[4];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, overlapping_reader, &c), 0);
	ck_assert_int_eq(pthread_create(&t[3], NULL, latecomer_writer, &c), 0);
	sleep_ns(100 * NS_PER_MS);
	int64_t start = now_ns();
	while (atomic_load(&c.writer_passes) == 0 && now_ns() - start < WAIT_LIMIT_NS)
		sleep_ns(NS_PER_MS);
	atomic_store(&c.stop, 1);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&c.errors), 0);
	ck_assert_int_gt(atomic_load(&c.reads), 0);
	ck_assert_int_gt(atomic_load(&c.writer_passes), 0);
}
END_TEST

/* ---- between processes (SYNC_PSHARED) ---------------------------------- */

#define READER_PROCESSES 3
#define PROCESS_WRITES 100

static int reader_process(struct shared *sh)
{
	long reads = 0;
	atomic_fetch_add(&sh->stage, 1);
	while (!atomic_load(&sh->stop) || reads < 10) {
		if (sync_rwlock_rdlock(&sh->l) != 0)
			return 1;
		int in = atomic_fetch_add(&sh->readers_in, 1) + 1;
		int max = atomic_load(&sh->max_readers_in);
		while (in > max && !atomic_compare_exchange_weak(&sh->max_readers_in, &max, in))
			;
		if (atomic_load(&sh->writer_in) != 0)
			return 2;
		if (sh->a != sh->b)
			return 3;
		atomic_fetch_sub(&sh->readers_in, 1);
		reads++;
		if (sync_rwlock_rdunlock(&sh->l) != 0)
			return 4;
	}
	return 0;
}

static int writer_process(struct shared *sh)
{
	/* start once all readers run, so that they really compete */
	int64_t start = now_ns();
	while (atomic_load(&sh->stage) < READER_PROCESSES) {
		if (now_ns() - start > WAIT_LIMIT_NS)
			return 1;
		sleep_ns(NS_PER_MS);
	}
	for (int i = 1; i <= PROCESS_WRITES; i++) {
		if (sync_rwlock_wrlock(&sh->l) != 0)
			return 2;
		atomic_store(&sh->writer_in, 1);
		if (atomic_load(&sh->readers_in) != 0)
			return 3;
		sh->a = i;
		sleep_ns(20000); /* readers that got in now would see b != a */
		sh->b = i;
		atomic_store(&sh->writer_in, 0);
		if (sync_rwlock_wrunlock(&sh->l) != 0)
			return 4;
	}
	atomic_store(&sh->stop, 1);
	return 0;
}

START_TEST(pshared_writer_process_excludes_reader_processes)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	pid_t readers[READER_PROCESSES];
	for (int i = 0; i < READER_PROCESSES; i++)
		readers[i] = fork_child(reader_process, sh);
	pid_t writer = fork_child(writer_process, sh);
	ck_assert_int_eq(child_status(writer), 0);
	for (int i = 0; i < READER_PROCESSES; i++)
		ck_assert_int_eq(child_status(readers[i]), 0);
	ck_assert_int_eq(sh->a, PROCESS_WRITES);
	ck_assert_int_eq(sh->b, PROCESS_WRITES);
	ck_assert_int_ge(atomic_load(&sh->max_readers_in), 1);
	ck_assert_int_eq(atomic_load(&sh->readers_in), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

static int reader_waiting_for_all_readers(struct shared *sh)
{
	if (sync_rwlock_rdlock(&sh->l) != 0)
		return 1;
	atomic_fetch_add(&sh->readers_in, 1);
	bool all_in = wait_until_equal(&sh->readers_in, READER_PROCESSES);
	atomic_fetch_add(&sh->stage, 1);
	/* nobody leaves before everyone saw everyone */
	bool all_saw = wait_until_equal(&sh->stage, READER_PROCESSES);
	if (sync_rwlock_rdunlock(&sh->l) != 0)
		return 2;
	return all_in && all_saw ? 0 : 3;
}

START_TEST(pshared_reader_processes_hold_read_locks_at_once)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	pid_t readers[READER_PROCESSES];
	for (int i = 0; i < READER_PROCESSES; i++)
		readers[i] = fork_child(reader_waiting_for_all_readers, sh);
	for (int i = 0; i < READER_PROCESSES; i++)
		ck_assert_int_eq(child_status(readers[i]), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

static int child_tryrdlock(struct shared *sh)
{
	return tryrdlock_and_release(&sh->l);
}

static int child_trywrlock(struct shared *sh)
{
	return trywrlock_and_release(&sh->l);
}

START_TEST(pshared_trylocks_from_other_process_return_ebusy_while_write_held)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_wrlock(&sh->l), 0);
	ck_assert_int_eq(child_status(fork_child(child_tryrdlock, sh)), EBUSY);
	ck_assert_int_eq(child_status(fork_child(child_trywrlock, sh)), EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(fork_child(child_tryrdlock, sh)), 0);
	ck_assert_int_eq(child_status(fork_child(child_trywrlock, sh)), 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_trywrlock_from_other_process_returns_ebusy_while_read_held)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->l), 0);
	ck_assert_int_eq(child_status(fork_child(child_trywrlock, sh)), EBUSY);
	ck_assert_int_eq(child_status(fork_child(child_tryrdlock, sh)), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(fork_child(child_trywrlock, sh)), 0);
	shared_destroy(sh);
}
END_TEST

static int child_wrunlock_then_trylocks(struct shared *sh)
{
	sh->results[0] = sync_rwlock_wrunlock(&sh->l);
	sh->results[1] = tryrdlock_and_release(&sh->l);
	sh->results[2] = trywrlock_and_release(&sh->l);
	return 0;
}

START_TEST(pshared_wrunlock_from_other_process_returns_eperm)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_wrlock(&sh->l), 0);
	ck_assert_int_eq(child_status(fork_child(child_wrunlock_then_trylocks, sh)), 0);
	ck_assert_int_eq(sh->results[0], EPERM);
	ck_assert_int_eq(sh->results[1], EBUSY); /* still write-held */
	ck_assert_int_eq(sh->results[2], EBUSY);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

static int child_wrlock_and_wait(struct shared *sh)
{
	if (sync_rwlock_wrlock(&sh->l) != 0)
		return 1;
	atomic_store(&sh->stage, 1);
	if (!wait_until_equal(&sh->stage, 2))
		return 2;
	return sync_rwlock_wrunlock(&sh->l) == 0 ? 0 : 3;
}

START_TEST(pshared_wrunlock_of_lock_write_held_by_other_process_returns_eperm)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	pid_t pid = fork_child(child_wrlock_and_wait, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), EPERM);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&sh->l), EBUSY);
	atomic_store(&sh->stage, 2);
	ck_assert_int_eq(child_status(pid), 0); /* the writer's own wrunlock works */
	ck_assert_int_eq(sync_rwlock_trywrlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

static int child_timedrdlock_100ms(struct shared *sh)
{
	struct timespec d = sync_deadline(100 * NS_PER_MS);
	sh->results[0] = sync_rwlock_timedrdlock(&sh->l, &d);
	int64_t late = now_ns() - timespec_ns(&d);
	sh->results[1] = late >= 0 && late < 2000 * NS_PER_MS;
	return 0;
}

START_TEST(pshared_timedrdlock_from_other_process_times_out_while_write_held)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_wrlock(&sh->l), 0);
	ck_assert_int_eq(child_status(fork_child(child_timedrdlock_100ms, sh)), 0);
	ck_assert_int_eq(sh->results[0], ETIMEDOUT);
	ck_assert_int_eq(sh->results[1], 1); /* not before the deadline */
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

static int child_rdlock_and_read(struct shared *sh)
{
	atomic_store(&sh->stage, 1);
	sh->results[0] = sync_rwlock_rdlock(&sh->l);
	if (sh->results[0] != 0)
		return 1;
	sh->results[1] = sh->value;
	sh->results[2] = sync_rwlock_rdunlock(&sh->l);
	return 0;
}

static int child_wrlock_and_write(struct shared *sh)
{
	atomic_store(&sh->stage, 1);
	sh->results[0] = sync_rwlock_wrlock(&sh->l);
	if (sh->results[0] != 0)
		return 1;
	sh->results[1] = sh->value;
	sh->value = 7;
	sh->results[2] = sync_rwlock_wrunlock(&sh->l);
	return 0;
}

START_TEST(pshared_rdlock_from_other_process_wakes_when_writer_unlocks)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_wrlock(&sh->l), 0);
	pid_t pid = fork_child(child_rdlock_and_read, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in rdlock");
	sh->value = 42;
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(sh->results[1], 42);
	ck_assert_int_eq(sh->results[2], 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_wrlock_from_other_process_wakes_when_reader_unlocks)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->l), 0);
	pid_t pid = fork_child(child_wrlock_and_write, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wrlock");
	sh->value = 42; /* the writer is not in yet */
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(sh->results[1], 42);
	ck_assert_int_eq(sh->results[2], 0);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&sh->l), 0);
	ck_assert_int_eq(sh->value, 7);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

static int child_moves_then_rdlocks_and_reads(struct shared *sh)
{
	struct shared *view = move_mapping(sh, sizeof *sh);
	if (view == MAP_FAILED || view == sh)
		return 2;
	return child_rdlock_and_read(view);
}

static int child_moves_then_wrlocks_and_writes(struct shared *sh)
{
	struct shared *view = move_mapping(sh, sizeof *sh);
	if (view == MAP_FAILED || view == sh)
		return 2;
	return child_wrlock_and_write(view);
}

START_TEST(pshared_rdlock_wakes_when_processes_map_rwlock_at_different_addresses)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_wrlock(&sh->l), 0);
	pid_t pid = fork_child(child_moves_then_rdlocks_and_reads, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in rdlock");
	sh->value = 42;
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(sh->results[1], 42);
	ck_assert_int_eq(sh->results[2], 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_wrlock_wakes_when_processes_map_rwlock_at_different_addresses)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->l), 0);
	pid_t pid = fork_child(child_moves_then_wrlocks_and_writes, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in wrlock");
	sh->value = 42;
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(sh->results[1], 42);
	ck_assert_int_eq(sh->results[2], 0);
	ck_assert_int_eq(sh->value, 7);
	shared_destroy(sh);
}
END_TEST


/* ---- waiters that vanish (issue 10, points 3b and 3c) ------------------- */

/* A child process that waits to write, and does nothing else. */
static int child_wrlock(struct shared *sh)
{
	return sync_rwlock_wrlock(&sh->l) == 0 ? 0 : 1;
}

/* Kills the child, asleep in wrlock (its only blocking call), and reaps it. */
static void kill_sleeping_writer(pid_t pid)
{
	ck_assert_msg(wait_until_asleep(pid), "the writer process never slept");
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
}

static int timedrdlock_2s(sync_rwlock_t *l)
{
	struct timespec d = sync_deadline(2000000000u);
	return sync_rwlock_timedrdlock(l, &d);
}

START_TEST(pshared_reader_gets_in_beside_a_read_hold_once_the_waiting_writer_was_killed)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->l), 0);
	kill_sleeping_writer(fork_child(child_wrlock, sh));
	/* nobody waits to write any more: a new reader joins the read hold */
	ck_assert_int_eq(timedrdlock_2s(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_readers_get_in_after_the_last_reader_left_a_killed_writer_behind)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->l), 0);
	kill_sleeping_writer(fork_child(child_wrlock, sh));
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&sh->l), 0); /* nobody holds it */
	ck_assert_int_eq(in_other_thread(timedrdlock_2s, &sh->l), 0);
	ck_assert_int_eq(timedrdlock_2s(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(other_thread_rdunlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&sh->l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->l), 0);
	shared_destroy(sh);
}
END_TEST

START_TEST(pshared_writer_preference_holds_while_the_waiting_writer_lives)
{
	/* the look for dead writers must not let a reader pass a live one: this
	 * one sleeps behind the read hold well past the 50 ms it takes */
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->l), 0);
	pid_t pid = fork_child(child_wrlock, sh);
	ck_assert(wait_until_asleep(pid));
	struct timespec d = sync_deadline(300000000u);
	ck_assert_int_eq(sync_rwlock_timedrdlock(&sh->l, &d), ETIMEDOUT);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->l), 0);
	ck_assert_int_eq(child_status(pid), 0); /* it got the write lock */
	shared_destroy(sh);
}
END_TEST

/* The pthread_atfork pattern: lock in prepare, unlock in parent and child,
 * while another thread of the parent waits to write. */
static sync_rwlock_t atfork_lock;
static atomic_int atfork_armed;
static atomic_int contender_tid;
static atomic_int contender_stop;

static void atfork_prepare(void)
{
	if (!atomic_load(&atfork_armed))
		return;
	sync_rwlock_wrlock(&atfork_lock);
	/* the contender sleeps only in wrlock, as a registered waiting writer */
	wait_until_asleep(atomic_load(&contender_tid));
}

static void atfork_release(void)
{
	if (atomic_load(&atfork_armed))
		sync_rwlock_wrunlock(&atfork_lock);
}

static void *write_contender(void *arg)
{
	(void)arg;
	atomic_store(&contender_tid, thread_id());
	while (!atomic_load(&contender_stop))
		if (sync_rwlock_wrlock(&atfork_lock) == 0)
			sync_rwlock_wrunlock(&atfork_lock);
	return NULL;
}

/* In the child only the forking thread exists: the lock is free for it. */
static int child_uses_rwlock(void)
{
	if (sync_rwlock_tryrdlock(&atfork_lock) != 0)
		return 1;
	if (sync_rwlock_rdunlock(&atfork_lock) != 0)
		return 2;
	if (timedrdlock_2s(&atfork_lock) != 0)
		return 3;
	if (sync_rwlock_rdunlock(&atfork_lock) != 0 ||
	    sync_rwlock_trywrlock(&atfork_lock) != 0 ||
	    sync_rwlock_wrunlock(&atfork_lock) != 0)
		return 4;
	return sync_rwlock_destroy(&atfork_lock) == 0 ? 0 : 5;
}

START_TEST(fork_child_can_read_lock_a_rwlock_another_thread_waited_to_write)
{
	ck_assert_int_eq(sync_rwlock_init(&atfork_lock, 0), 0);
	ck_assert_int_eq(pthread_atfork(atfork_prepare, atfork_release, atfork_release), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, write_contender, NULL), 0);
	while (!atomic_load(&contender_tid))
		sleep_ns(NS_PER_MS);
	atomic_store(&atfork_armed, 1);
	for (int i = 0; i < 5; i++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(child_uses_rwlock());
		}
		ck_assert_int_eq(child_status(pid), 0);
	}
	atomic_store(&atfork_armed, 0);
	atomic_store(&contender_stop, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

static int child_wrunlocks_then_reads(sync_rwlock_t *l)
{
	if (sync_rwlock_wrunlock(l) != 0)
		return 1;
	if (sync_rwlock_tryrdlock(l) != 0 || sync_rwlock_rdunlock(l) != 0)
		return 2;
	return sync_rwlock_destroy(l) == 0 ? 0 : 3;
}

START_TEST(fork_child_of_the_writer_can_release_the_write_lock)
{
	/* the child's thread is a replica of the writer, under a new kernel id */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(child_wrunlocks_then_reads(&l));
	}
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(other_thread_wrunlock(&l), EPERM); /* still ours here */
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

/* ---- deadlines already past, errno (issue 10, points 13 and 8) ----------- */

/* Least time, over 50 calls, of a timed lock whose deadline has just passed,
 * on a lock another thread holds in the other mode. */
static int64_t least_ns_with_deadline_passed(sync_rwlock_t *l, bool read)
{
	int64_t least = INT64_MAX;
	for (int i = 0; i < 50; i++) {
		struct timespec past;
		clock_gettime(CLOCK_MONOTONIC, &past);
		int64_t t0 = now_ns();
		int r = read ? sync_rwlock_timedrdlock(l, &past)
			     : sync_rwlock_timedwrlock(l, &past);
		int64_t t = now_ns() - t0;
		ck_assert_int_eq(r, ETIMEDOUT);
		if (t < least)
			least = t;
	}
	return least;
}

START_TEST(timedrdlock_with_deadline_passed_returns_etimedout_at_once)
{
	/* behind a writer that holds the lock, a reader would first spin for a
	 * few tens of microseconds; not with a deadline already past */
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	int64_t least = least_ns_with_deadline_passed(&l, true);
	ck_assert_msg(least < 10000, "fastest took %lld ns", (long long)least);
	actor_finish(&w);
}
END_TEST

START_TEST(timedwrlock_with_deadline_passed_returns_etimedout_at_once)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	int64_t least = least_ns_with_deadline_passed(&l, false);
	ck_assert_msg(least < 10000, "fastest took %lld ns", (long long)least);
	/* and it left no waiting writer behind: readers still get in */
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	actor_finish(&r);
}
END_TEST

START_TEST(timedrdlock_that_times_out_leaves_errno_alone)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor w = { 0 };
	actor_hold(&w, &l, WRLOCK);
	struct timespec d = sync_deadline(2000000u);
	errno = ENOTTY;
	ck_assert_int_eq(sync_rwlock_timedrdlock(&l, &d), ETIMEDOUT);
	ck_assert_int_eq(errno, ENOTTY);
	actor_finish(&w);
}
END_TEST

START_TEST(timedwrlock_that_times_out_leaves_errno_alone)
{
	sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	struct timespec d = sync_deadline(2000000u);
	errno = ENOTTY;
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), ETIMEDOUT);
	ck_assert_int_eq(errno, ENOTTY);
	actor_finish(&r);
}
END_TEST

START_TEST(pshared_timed_locks_that_time_out_leave_errno_alone)
{
	/* shared sleepers look again every 10 ms: that look is no error either */
	struct shared *sh = shared_create(SYNC_PSHARED);
	struct actor w = { 0 };
	actor_hold(&w, &sh->l, WRLOCK);
	struct timespec d = sync_deadline(30000000u);
	errno = ENOTTY;
	ck_assert_int_eq(sync_rwlock_timedrdlock(&sh->l, &d), ETIMEDOUT);
	ck_assert_int_eq(sync_rwlock_timedwrlock(&sh->l, &d), ETIMEDOUT);
	ck_assert_int_eq(errno, ENOTTY);
	actor_finish(&w);
	shared_destroy(sh);
}
END_TEST

/* ---- reader bias (private locks preferring writers) --------------------- */

#define BIASED_BIT (1ull << 61)

static uint64_t state_of(sync_rwlock_t *l)
{
	return atomic_load(&l->state);
}

static uint32_t read_count(sync_rwlock_t *l)
{
	return (uint32_t)((state_of(l) >> 32) & 0x1fffffff);
}

static bool is_biased(sync_rwlock_t *l)
{
	return state_of(l) & BIASED_BIT;
}

START_TEST(bias_read_hold_writes_no_shared_word)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert(is_biased(&l));
	uint64_t before = state_of(&l);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_uint_eq(state_of(&l), before); /* no count: the slot holds it */
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_uint_eq(state_of(&l), before);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(bias_writer_waits_for_reader_in_slot)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	struct actor w = { 0 };
	actor_block(&w, &l, WRLOCK, 0);
	ck_assert(!is_biased(&l)); /* revoked: new readers count, and wait */
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	actor_finish(&w);
	ck_assert_int_eq(read_count(&l), 0);
}
END_TEST

/* Writer preference holds for the slots too: once a writer waits (behind a
 * counted read hold), a new reader of a biased lock waits as well. */
START_TEST(bias_new_reader_waits_behind_a_waiting_writer)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0); /* in the slot */
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0); /* counted */
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0); /* the slot's goes */
	ck_assert_uint_eq(read_count(&l), 1);
	ck_assert(is_biased(&l));
	struct actor w = { 0 };
	actor_block(&w, &l, WRLOCK, 0);
	ck_assert_int_eq(other_thread_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, 0);
	actor_finish(&w);
}
END_TEST

START_TEST(bias_trywrlock_with_reader_in_slot_returns_ebusy_and_keeps_bias)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	uint64_t before = state_of(&l);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), EBUSY);
	ck_assert_uint_eq(state_of(&l), before); /* the bias is back: readers may be in slots */
	ck_assert_int_eq(other_thread_tryrdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(bias_timedwrlock_with_reader_in_slot_times_out_and_keeps_bias)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	struct actor w = { 0 };
	actor_start(&w, &l, TIMEDWRLOCK, 50 * NS_PER_MS);
	ck_assert(actor_returned(&w));
	ck_assert_int_eq(w.result, ETIMEDOUT);
	actor_finish(&w);
	ck_assert(is_biased(&l));
	ck_assert_int_eq(read_count(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(other_thread_trywrlock(&l), 0);
}
END_TEST

START_TEST(bias_write_lock_by_reader_in_slot_returns_edeadlk)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	errno = EDOM;
	ck_assert_int_eq(sync_rwlock_wrlock(&l), EDEADLK);
	struct timespec d = sync_deadline(10 * NS_PER_MS);
	ck_assert_int_eq(sync_rwlock_timedwrlock(&l, &d), EDEADLK);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	ck_assert_int_eq(errno, EDOM);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
}
END_TEST

START_TEST(bias_destroy_with_reader_in_slot_returns_ebusy)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_uint_eq(read_count(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&l), 0);
}
END_TEST

START_TEST(bias_rdunlock_not_held_returns_eperm_and_changes_nothing)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	uint64_t before = state_of(&l);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_uint_eq(state_of(&l), before);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), EPERM);
	ck_assert_uint_eq(state_of(&l), before);
}
END_TEST

/* A write revokes the bias; it comes back in a write unlock once 10 ms
 * (the least inhibit time) have passed; meanwhile readers count. */
START_TEST(bias_comes_back_after_a_write_once_the_inhibit_time_passed)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
	ck_assert(!is_biased(&l));
	ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	ck_assert(!is_biased(&l));
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_uint_eq(read_count(&l), 1);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	sleep_ns(20 * NS_PER_MS);
	int writes = 0;
	while (!is_biased(&l) && writes++ < 64) {
		ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
		ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
	}
	ck_assert(is_biased(&l));
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_uint_eq(read_count(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
}
END_TEST

START_TEST(bias_never_on_pshared_or_reader_preferring_locks)
{
	int kinds[] = { SYNC_PSHARED, SYNC_RWLOCK_PREFER_READER,
			SYNC_PSHARED | SYNC_RWLOCK_PREFER_READER };
	for (int i = 0; i < 3; i++) {
		sync_rwlock_t l;
		ck_assert_int_eq(sync_rwlock_init(&l, kinds[i]), 0);
		ck_assert(!is_biased(&l));
		ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
		ck_assert_uint_eq(read_count(&l), 1);
		ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
		ck_assert_int_eq(sync_rwlock_wrlock(&l), 0);
		ck_assert_int_eq(sync_rwlock_wrunlock(&l), 0);
		ck_assert(!is_biased(&l));
	}
}
END_TEST

static int child_without_bias(void)
{
	setenv("SYNC_RWLOCK_NO_BIAS", "1", 1);
	sync_rwlock_t l;
	if (sync_rwlock_init(&l, 0) || is_biased(&l) || sync_rwlock_rdlock(&l))
		return 1;
	return read_count(&l) == 1 && sync_rwlock_rdunlock(&l) == 0 ? 0 : 2;
}

START_TEST(bias_off_under_sync_rwlock_no_bias)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_without_bias());
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A fork child has only the forking thread: another thread's read through
 * its slot does not hold the child's copy of the lock. */
START_TEST(bias_fork_child_is_not_held_by_the_parents_other_readers)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	struct actor r = { 0 };
	actor_hold(&r, &l, RDLOCK);
	ck_assert_uint_eq(read_count(&l), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(sync_rwlock_trywrlock(&l) == 0 && sync_rwlock_wrunlock(&l) == 0 ? 0 : 1);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	actor_finish(&r);
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), 0);
}
END_TEST

static void *read_and_exit(void *arg)
{
	return (void *)(intptr_t)sync_rwlock_rdlock(arg);
}

static void *read_and_unlock(void *arg)
{
	int r = sync_rwlock_rdlock(arg);
	return (void *)(intptr_t)(r ? r : sync_rwlock_rdunlock(arg));
}

/* As a counted hold would: a thread that exits holding keeps its hold,
 * and its slot is not given to another thread. */
START_TEST(bias_thread_exit_while_reading_keeps_the_read_hold)
{
	sync_rwlock_t l;
	ck_assert_int_eq(sync_rwlock_init(&l, 0), 0);
	pthread_t t;
	void *r;
	ck_assert_int_eq(pthread_create(&t, NULL, read_and_exit, &l), 0);
	ck_assert_int_eq(pthread_join(t, &r), 0);
	ck_assert_int_eq((int)(intptr_t)r, 0);
	ck_assert_uint_eq(read_count(&l), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_create(&t, NULL, read_and_unlock, &l), 0);
		ck_assert_int_eq(pthread_join(t, &r), 0);
		ck_assert_int_eq((int)(intptr_t)r, 0);
	}
	ck_assert_int_eq(sync_rwlock_trywrlock(&l), EBUSY);
	ck_assert_int_eq(sync_rwlock_destroy(&l), EBUSY);
}
END_TEST

/* More readers at once than there are slots (512): the rest count. */
#define MANY_READERS 600

struct many {
	sync_rwlock_t l;
	pthread_barrier_t in, out;
};

static void *read_with_many(void *arg)
{
	struct many *m = arg;
	int r = sync_rwlock_rdlock(&m->l);
	pthread_barrier_wait(&m->in);
	pthread_barrier_wait(&m->out);
	if (!r)
		r = sync_rwlock_rdunlock(&m->l);
	return (void *)(intptr_t)r;
}

START_TEST(bias_more_readers_than_slots_count_the_rest)
{
	static struct many m;
	static pthread_t t[MANY_READERS];
	ck_assert_int_eq(sync_rwlock_init(&m.l, 0), 0);
	pthread_barrier_init(&m.in, NULL, MANY_READERS + 1);
	pthread_barrier_init(&m.out, NULL, MANY_READERS + 1);
	pthread_attr_t small;
	pthread_attr_init(&small);
	pthread_attr_setstacksize(&small, 64 * 1024);
	for (int i = 0; i < MANY_READERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], &small, read_with_many, &m), 0);
	pthread_barrier_wait(&m.in);
	uint32_t counted = read_count(&m.l);
	ck_assert_uint_gt(counted, 0);
	ck_assert_uint_lt(counted, MANY_READERS);
	ck_assert_int_eq(sync_rwlock_trywrlock(&m.l), EBUSY);
	pthread_barrier_wait(&m.out);
	for (int i = 0; i < MANY_READERS; i++) {
		void *r;
		ck_assert_int_eq(pthread_join(t[i], &r), 0);
		ck_assert_int_eq((int)(intptr_t)r, 0);
	}
	ck_assert_uint_eq(read_count(&m.l), 0);
	ck_assert_int_eq(sync_rwlock_trywrlock(&m.l), 0);
	ck_assert_int_eq(sync_rwlock_wrunlock(&m.l), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rwlock");

	TCase *tc = tcase_create("init");
	tcase_add_test(tc, initializer_gives_unlocked_rwlock);
	tcase_add_test(tc, initializer_gives_writer_preferring_rwlock);
	tcase_add_test(tc, init_with_no_flags_gives_unlocked_rwlock);
	tcase_add_test(tc, init_with_no_flags_gives_writer_preferring_rwlock);
	tcase_add_test(tc, init_with_pshared_gives_unlocked_rwlock);
	tcase_add_test(tc, init_with_pshared_gives_writer_preferring_rwlock);
	tcase_add_test(tc, init_with_prefer_reader_gives_unlocked_rwlock);
	tcase_add_test(tc, init_with_prefer_reader_gives_reader_preferring_rwlock);
	tcase_add_test(tc, init_with_pshared_and_prefer_reader_gives_unlocked_rwlock);
	tcase_add_test(tc, init_with_pshared_and_prefer_reader_gives_reader_preferring_rwlock);
	tcase_add_test(tc, init_rejects_mutex_errorcheck_flag_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_0x100_and_changes_nothing);
	tcase_add_test(tc, init_rejects_all_bits_set_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_next_to_valid_flags);
	tcase_add_test(tc, rwlock_is_32_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("null");
	tcase_add_test(tc, init_of_null_rwlock_returns_einval);
	tcase_add_test(tc, destroy_of_null_rwlock_returns_einval);
	tcase_add_test(tc, rdlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, tryrdlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, timedrdlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, wrlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, trywrlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, timedwrlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, rdunlock_of_null_rwlock_returns_einval);
	tcase_add_test(tc, wrunlock_of_null_rwlock_returns_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_add_test(tc, rdlock_of_free_rwlock_takes_read_lock);
	tcase_add_test(tc, tryrdlock_of_free_rwlock_takes_read_lock);
	tcase_add_test(tc, rdunlock_of_only_read_lock_frees_rwlock);
	tcase_add_test(tc, read_locks_are_counted_and_each_needs_an_rdunlock);
	tcase_add_test(tc, read_lock_taken_in_one_thread_can_be_released_in_another);
	tcase_add_test(tc, many_threads_hold_read_locks_at_once);
	tcase_add_test(tc, timedrdlock_of_read_held_rwlock_takes_read_lock);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_test(tc, wrlock_of_free_rwlock_takes_it);
	tcase_add_test(tc, trywrlock_of_free_rwlock_takes_it);
	tcase_add_test(tc, wrunlock_of_write_held_rwlock_frees_it);
	tcase_add_test(tc, tryrdlock_of_rwlock_write_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, trywrlock_of_rwlock_write_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, trywrlock_of_rwlock_read_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, trywrlock_of_rwlock_read_held_by_caller_returns_ebusy);
	tcase_add_test(tc, write_lock_can_be_taken_by_next_thread_after_writer_unlocks);
	suite_add_tcase(s, tc);

	tc = tcase_create("write holder");
	tcase_add_test(tc, wrlock_by_write_holder_returns_edeadlk);
	tcase_add_test(tc, timedwrlock_by_write_holder_returns_edeadlk_at_once);
	tcase_add_test(tc, rdlock_by_write_holder_returns_edeadlk);
	tcase_add_test(tc, timedrdlock_by_write_holder_returns_edeadlk_at_once);
	tcase_add_test(tc, trywrlock_by_write_holder_returns_ebusy);
	tcase_add_test(tc, tryrdlock_by_write_holder_returns_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_create("unlock");
	tcase_add_test(tc, rdunlock_of_unlocked_rwlock_returns_eperm);
	tcase_add_test(tc, rdunlock_of_rwlock_write_held_by_caller_returns_eperm_and_keeps_write_lock);
	tcase_add_test(tc, rdunlock_of_rwlock_write_held_by_other_thread_returns_eperm);
	tcase_add_test(tc, wrunlock_of_unlocked_rwlock_returns_eperm);
	tcase_add_test(tc, wrunlock_of_read_held_rwlock_returns_eperm_and_keeps_read_lock);
	tcase_add_test(tc, wrunlock_by_non_owner_returns_eperm_and_keeps_rwlock_write_held);
	tcase_add_test(tc, wrunlock_of_rwlock_write_held_by_other_thread_returns_eperm);
	suite_add_tcase(s, tc);

	tc = tcase_create("readers max");
	/* 2^24 lock calls and as many unlocks per test: about half a second,
	 * many times that under sanitizers */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, readers_max_is_2_to_the_24_minus_1);
	tcase_add_test(tc, rdlock_at_readers_max_returns_eagain_and_changes_nothing);
	tcase_add_test(tc, tryrdlock_at_readers_max_returns_eagain_and_changes_nothing);
	tcase_add_test(tc, timedrdlock_at_readers_max_returns_eagain_and_changes_nothing);
	tcase_add_test(tc, readers_max_of_a_biased_lock_counts_the_read_through_the_slot);
	suite_add_tcase(s, tc);

	tc = tcase_create("bias");
	tcase_add_test(tc, bias_read_hold_writes_no_shared_word);
	tcase_add_test(tc, bias_writer_waits_for_reader_in_slot);
	tcase_add_test(tc, bias_new_reader_waits_behind_a_waiting_writer);
	tcase_add_test(tc, bias_trywrlock_with_reader_in_slot_returns_ebusy_and_keeps_bias);
	tcase_add_test(tc, bias_timedwrlock_with_reader_in_slot_times_out_and_keeps_bias);
	tcase_add_test(tc, bias_write_lock_by_reader_in_slot_returns_edeadlk);
	tcase_add_test(tc, bias_destroy_with_reader_in_slot_returns_ebusy);
	tcase_add_test(tc, bias_rdunlock_not_held_returns_eperm_and_changes_nothing);
	tcase_add_test(tc, bias_comes_back_after_a_write_once_the_inhibit_time_passed);
	tcase_add_test(tc, bias_never_on_pshared_or_reader_preferring_locks);
	tcase_add_test(tc, bias_off_under_sync_rwlock_no_bias);
	tcase_add_test(tc, bias_fork_child_is_not_held_by_the_parents_other_readers);
	tcase_add_test(tc, bias_thread_exit_while_reading_keeps_the_read_hold);
	tcase_add_test(tc, bias_more_readers_than_slots_count_the_rest);
	suite_add_tcase(s, tc);

	tc = tcase_create("destroy");
	tcase_add_test(tc, destroy_of_free_rwlock_returns_zero);
	tcase_add_test(tc, destroyed_rwlock_can_be_initialised_again);
	tcase_add_test(tc, destroy_of_read_held_rwlock_returns_ebusy_and_rwlock_stays_usable);
	tcase_add_test(tc, destroy_of_write_held_rwlock_returns_ebusy_and_rwlock_stays_usable);
	tcase_add_test(tc, destroy_of_rwlock_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, destroy_with_waiting_writer_returns_ebusy);
	tcase_add_test(tc, destroy_with_waiting_reader_returns_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_create("timed: bad deadlines");
	tcase_add_test(tc, timedrdlock_with_null_abstime_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedrdlock_with_negative_nsec_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedrdlock_with_nsec_of_one_second_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedwrlock_with_null_abstime_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedwrlock_with_negative_nsec_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedwrlock_with_nsec_of_one_second_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedrdlock_with_bad_abstime_on_write_held_rwlock_returns_einval_at_once);
	tcase_add_test(tc, timedwrlock_with_bad_abstime_on_read_held_rwlock_returns_einval_at_once);
	tcase_add_test(tc, timedwrlock_checks_abstime_before_deadlock);
	tcase_add_test(tc, timedrdlock_checks_abstime_before_deadlock);
	suite_add_tcase(s, tc);

	tc = tcase_create("timed: past deadlines");
	tcase_add_test(tc, timedrdlock_with_deadline_of_now_read_locks_free_rwlock);
	tcase_add_test(tc, timedrdlock_with_deadline_zero_read_locks_free_rwlock);
	tcase_add_test(tc, timedrdlock_with_negative_seconds_read_locks_free_rwlock);
	tcase_add_test(tc, timedrdlock_with_deadline_zero_read_locks_read_held_rwlock);
	tcase_add_test(tc, timedwrlock_with_deadline_of_now_locks_free_rwlock);
	tcase_add_test(tc, timedwrlock_with_deadline_zero_locks_free_rwlock);
	tcase_add_test(tc, timedwrlock_with_negative_seconds_locks_free_rwlock);
	tcase_add_test(tc, timedrdlock_with_deadline_zero_on_write_held_rwlock_returns_etimedout);
	tcase_add_test(tc, timedrdlock_with_negative_seconds_on_write_held_rwlock_returns_etimedout);
	tcase_add_test(tc, timedwrlock_with_deadline_zero_on_read_held_rwlock_returns_etimedout);
	tcase_add_test(tc, timedwrlock_with_negative_seconds_on_write_held_rwlock_returns_etimedout);
	suite_add_tcase(s, tc);

	tc = tcase_create("timed: waiting");
	tcase_add_test(tc, timedrdlock_on_write_held_rwlock_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, timedwrlock_on_write_held_rwlock_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, timedwrlock_on_read_held_rwlock_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, timedwrlock_that_timed_out_leaves_rwlock_usable);
	tcase_add_test(tc, timedrdlock_that_timed_out_leaves_rwlock_usable);
	tcase_add_test(tc, timedrdlock_succeeds_when_writer_unlocks_before_deadline);
	tcase_add_test(tc, timedwrlock_succeeds_when_readers_unlock_before_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("preference");
	tcase_add_test(tc, tryrdlock_returns_ebusy_while_writer_waits);
	tcase_add_test(tc, timedrdlock_times_out_while_writer_waits);
	tcase_add_test(tc, rdlock_waits_while_writer_waits_until_writer_had_its_turn);
	tcase_add_test(tc, prefer_reader_tryrdlock_succeeds_while_writer_waits);
	tcase_add_test(tc, prefer_reader_rdlock_gets_in_while_writer_waits);
	tcase_add_test(tc, prefer_reader_timedrdlock_gets_in_while_writer_waits);
	tcase_add_test(tc, prefer_reader_rdlock_still_waits_while_writer_holds);
	suite_add_tcase(s, tc);

	tc = tcase_create("timed-out writers");
	tcase_add_test(tc, readers_blocked_behind_timed_out_writer_get_in);
	tcase_add_test(tc, readers_stay_blocked_when_one_of_two_waiting_writers_times_out);
	tcase_add_test(tc, writer_behind_timed_out_writer_still_gets_in);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake-ups");
	tcase_add_test(tc, wrunlock_wakes_all_sleeping_readers);
	tcase_add_test(tc, wrunlock_wakes_sleeping_writer);
	tcase_add_test(tc, last_rdunlock_wakes_sleeping_writer);
	tcase_add_test(tc, wrunlock_with_readers_and_writers_asleep_lets_all_of_them_in);
	tcase_add_test(tc, rdlock_sleeper_is_woken_by_every_wrunlock);
	tcase_add_test(tc, wrlock_sleeper_is_woken_by_every_rdunlock);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_test(tc, rdlock_keeps_waiting_through_signals);
	tcase_add_test(tc, timedrdlock_keeps_waiting_through_signals);
	tcase_add_test(tc, wrlock_keeps_waiting_through_signals);
	tcase_add_test(tc, timedwrlock_keeps_waiting_through_signals);
	suite_add_tcase(s, tc);

	tc = tcase_create("contention");
	tcase_add_test(tc, writers_exclude_readers_and_each_other);
	tcase_add_test(tc, writer_gets_rwlock_while_three_readers_hammer_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("pshared");
	tcase_add_test(tc, pshared_writer_process_excludes_reader_processes);
	tcase_add_test(tc, pshared_reader_processes_hold_read_locks_at_once);
	tcase_add_test(tc, pshared_trylocks_from_other_process_return_ebusy_while_write_held);
	tcase_add_test(tc, pshared_trywrlock_from_other_process_returns_ebusy_while_read_held);
	tcase_add_test(tc, pshared_wrunlock_from_other_process_returns_eperm);
	tcase_add_test(tc, pshared_wrunlock_of_lock_write_held_by_other_process_returns_eperm);
	tcase_add_test(tc, pshared_timedrdlock_from_other_process_times_out_while_write_held);
	tcase_add_test(tc, pshared_rdlock_from_other_process_wakes_when_writer_unlocks);
	tcase_add_test(tc, pshared_wrlock_from_other_process_wakes_when_reader_unlocks);
	tcase_add_test(tc, pshared_rdlock_wakes_when_processes_map_rwlock_at_different_addresses);
	tcase_add_test(tc, pshared_wrlock_wakes_when_processes_map_rwlock_at_different_addresses);
	suite_add_tcase(s, tc);

	tc = tcase_create("vanished-waiters");
	tcase_add_test(tc, pshared_reader_gets_in_beside_a_read_hold_once_the_waiting_writer_was_killed);
	tcase_add_test(tc, pshared_readers_get_in_after_the_last_reader_left_a_killed_writer_behind);
	tcase_add_test(tc, pshared_writer_preference_holds_while_the_waiting_writer_lives);
	tcase_add_test(tc, fork_child_can_read_lock_a_rwlock_another_thread_waited_to_write);
	tcase_add_test(tc, fork_child_of_the_writer_can_release_the_write_lock);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadline-passed-errno");
	tcase_add_test(tc, timedrdlock_with_deadline_passed_returns_etimedout_at_once);
	tcase_add_test(tc, timedwrlock_with_deadline_passed_returns_etimedout_at_once);
	tcase_add_test(tc, timedrdlock_that_times_out_leaves_errno_alone);
	tcase_add_test(tc, timedwrlock_that_times_out_leaves_errno_alone);
	tcase_add_test(tc, pshared_timed_locks_that_time_out_leave_errno_alone);
	suite_add_tcase(s, tc);

	return s;
}
