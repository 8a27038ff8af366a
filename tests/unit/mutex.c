/* Unit tests for <sync/mutex.h>: one behaviour of the contract per test. */
#define _GNU_SOURCE /* mremap */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
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


/* trylock, and on success unlock again: probes without changing the mutex.
 * Returns trylock's result, or -1 if the unlock failed. */
static int trylock_and_release(sync_mutex_t *m)
{
	int r = sync_mutex_trylock(m);
	if (r == 0 && sync_mutex_unlock(m) != 0)
		return -1;
	return r;
}

static int other_thread_trylock(sync_mutex_t *m)
{
	return mutex_call_in_thread(trylock_and_release, m);
}

static int other_thread_unlock(sync_mutex_t *m)
{
	return mutex_call_in_thread(sync_mutex_unlock, m);
}

/* ---- a thread that holds the mutex ------------------------------------- */

struct holder {
	sync_mutex_t *m;
	pid_t release_when_sleeping; /* 0: release when told to */
	pthread_t thread;
	atomic_int held;
	atomic_int release;
	atomic_int unlocking; /* set just before the holder unlocks */
	atomic_int arriving;  /* set by the waiter just before it locks */
	int lock_result;
	int unlock_result;
	bool saw_sleeper;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	h->lock_result = sync_mutex_lock(h->m);
	atomic_store(&h->held, 1);
	if (h->release_when_sleeping) {
		h->saw_sleeper = wait_until_equal(&h->arriving, 1) &&
				 wait_until_asleep(h->release_when_sleeping);
		sleep_ns(20 * NS_PER_MS);
	} else {
		wait_until_equal(&h->release, 1);
	}
	atomic_store(&h->unlocking, 1);
	h->unlock_result = sync_mutex_unlock(h->m);
	return NULL;
}

/* Starts a thread that locks m; returns once it holds m. With a tid, the
 * holder unlocks 20 ms after that thread, once `arriving`, sleeps. */
static void holder_start(struct holder *h, sync_mutex_t *m, pid_t release_when_sleeping)
{
	h->m = m;
	h->release_when_sleeping = release_when_sleeping;
	atomic_init(&h->held, 0);
	atomic_init(&h->release, 0);
	atomic_init(&h->unlocking, 0);
	atomic_init(&h->arriving, 0);
	h->lock_result = h->unlock_result = -1;
	h->saw_sleeper = false;
	ck_assert_int_eq(pthread_create(&h->thread, NULL, holder_main, h), 0);
	ck_assert(wait_until_equal(&h->held, 1));
	ck_assert_int_eq(h->lock_result, 0);
}

/* Lets the holder unlock, if it waits to be told, and joins it. */
static void holder_finish(struct holder *h)
{
	atomic_store(&h->release, 1);
	ck_assert_int_eq(pthread_join(h->thread, NULL), 0);
	ck_assert_int_eq(h->unlock_result, 0);
}

/* ---- processes --------------------------------------------------------- */

/* State shared with forked children: a MAP_SHARED anonymous mapping. */
struct shared {
	sync_mutex_t m;
	atomic_int stage;
	int counter; /* protected by m */
	int value;   /* protected by m */
	int results[4];
};

static struct shared *shared_create(int flags)
{
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(sync_mutex_init(&sh->m, flags), 0);
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

/* init(m, flags) fails with EINVAL and leaves the mutex as it was: locked,
 * by this thread, error-checking. */
static void check_init_rejects(int flags)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_init(&m, flags), EINVAL);
	/* still locked, still ours, still error-checking */
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	struct timespec past = { 0, 0 };
	ck_assert_int_eq(sync_mutex_timedlock(&m, &past), EDEADLK);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}

/* Fills m with a pattern no valid mutex has, then initialises it. */
static void init_over_garbage(sync_mutex_t *m, int flags)
{
	memset(m, 0xa5, sizeof *m);
	ck_assert_int_eq(sync_mutex_init(m, flags), 0);
}

/* m is unlocked: this thread takes it, another thread then cannot. */
static void check_unlocked(sync_mutex_t *m)
{
	ck_assert_int_eq(sync_mutex_trylock(m), 0);
	ck_assert_int_eq(other_thread_trylock(m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
}

/* m is not error-checking: a relock deadlocks, so a timed relock times out. */
static void check_not_errorcheck(sync_mutex_t *m)
{
	ck_assert_int_eq(sync_mutex_lock(m), 0);
	struct timespec past = { 0, 0 };
	ck_assert_int_eq(sync_mutex_timedlock(m, &past), ETIMEDOUT);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
}

/* m is unlocked and error-checking: a relock fails with EDEADLK. */
static void check_unlocked_errorcheck(sync_mutex_t *m)
{
	ck_assert_int_eq(other_thread_trylock(m), 0);
	ck_assert_int_eq(sync_mutex_lock(m), 0);
	ck_assert_int_eq(sync_mutex_lock(m), EDEADLK);
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
}

/* ---- initialisation ---------------------------------------------------- */

START_TEST(initializer_gives_unlocked_mutex)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	check_unlocked(&m);
}
END_TEST

START_TEST(initializer_gives_mutex_without_errorcheck)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	check_not_errorcheck(&m);
}
END_TEST

START_TEST(init_with_no_flags_gives_unlocked_mutex)
{
	sync_mutex_t m;
	init_over_garbage(&m, 0);
	check_unlocked(&m);
}
END_TEST

START_TEST(init_with_no_flags_gives_mutex_without_errorcheck)
{
	sync_mutex_t m;
	init_over_garbage(&m, 0);
	check_not_errorcheck(&m);
}
END_TEST

START_TEST(init_with_errorcheck_gives_unlocked_errorcheck_mutex)
{
	sync_mutex_t m;
	init_over_garbage(&m, SYNC_MUTEX_ERRORCHECK);
	check_unlocked_errorcheck(&m);
}
END_TEST

START_TEST(init_with_pshared_gives_unlocked_mutex)
{
	sync_mutex_t m;
	init_over_garbage(&m, SYNC_PSHARED);
	check_unlocked(&m);
}
END_TEST

START_TEST(init_with_pshared_and_errorcheck_gives_unlocked_errorcheck_mutex)
{
	sync_mutex_t m;
	init_over_garbage(&m, SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK);
	check_unlocked_errorcheck(&m);
}
END_TEST

START_TEST(init_rejects_rwlock_prefer_reader_flag_and_changes_nothing)
{
	check_init_rejects(SYNC_RWLOCK_PREFER_READER);
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
	check_init_rejects(SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK | 0x10);
}
END_TEST

/* 40 on 64-bit targets: the robust-list links sit where glibc's do. */
START_TEST(mutex_is_40_bytes)
{
	ck_assert_uint_eq(sizeof(sync_mutex_t), sizeof(void *) == 8 ? 40 : 32);
}
END_TEST

/* ---- NULL mutex -------------------------------------------------------- */

START_TEST(init_of_null_mutex_returns_einval)
{
	ck_assert_int_eq(sync_mutex_init(NULL, 0), EINVAL);
}
END_TEST

START_TEST(destroy_of_null_mutex_returns_einval)
{
	ck_assert_int_eq(sync_mutex_destroy(NULL), EINVAL);
}
END_TEST

START_TEST(lock_of_null_mutex_returns_einval)
{
	ck_assert_int_eq(sync_mutex_lock(NULL), EINVAL);
}
END_TEST

START_TEST(trylock_of_null_mutex_returns_einval)
{
	ck_assert_int_eq(sync_mutex_trylock(NULL), EINVAL);
}
END_TEST

START_TEST(timedlock_of_null_mutex_returns_einval)
{
	struct timespec d = sync_deadline(NS_PER_MS);
	ck_assert_int_eq(sync_mutex_timedlock(NULL, &d), EINVAL);
}
END_TEST

START_TEST(unlock_of_null_mutex_returns_einval)
{
	ck_assert_int_eq(sync_mutex_unlock(NULL), EINVAL);
}
END_TEST

/* ---- lock, trylock, unlock --------------------------------------------- */

START_TEST(lock_of_free_mutex_takes_it)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(unlock_of_held_mutex_frees_it)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
}
END_TEST

START_TEST(trylock_of_free_mutex_takes_it)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_trylock(&m), 0);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
}
END_TEST

START_TEST(trylock_of_mutex_held_by_other_thread_returns_ebusy)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	ck_assert_int_eq(sync_mutex_trylock(&m), EBUSY);
	holder_finish(&h);
}
END_TEST

START_TEST(trylock_of_mutex_held_by_caller_returns_ebusy)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(unlock_of_unlocked_mutex_returns_eperm)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
	/* and changes nothing: still free, locks and unlocks once */
	ck_assert_int_eq(other_thread_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(unlock_of_unlocked_errorcheck_mutex_returns_eperm)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

/* ---- ERRORCHECK -------------------------------------------------------- */

START_TEST(errorcheck_unlock_by_non_owner_returns_eperm_and_keeps_mutex_locked)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(other_thread_unlock(&m), EPERM);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(errorcheck_lock_by_owner_returns_edeadlk)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), EDEADLK);
	/* still held once: one unlock frees it */
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(errorcheck_timedlock_by_owner_returns_edeadlk)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	int64_t start = now_ns();
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), EDEADLK);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS); /* at once */
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(errorcheck_trylock_by_owner_returns_ebusy)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(errorcheck_mutex_can_be_taken_by_next_thread_after_owner_unlocks)
{
	/* The owner is forgotten at unlock: another thread may lock and unlock. */
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

/* ---- destroy ----------------------------------------------------------- */

START_TEST(destroy_of_unlocked_mutex_returns_zero)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
}
END_TEST

START_TEST(destroyed_mutex_can_be_initialised_again)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
	ck_assert_int_eq(sync_mutex_init(&m, 0), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(destroy_of_locked_mutex_returns_ebusy_and_mutex_stays_usable)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), EBUSY);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
}
END_TEST

START_TEST(destroy_of_mutex_held_by_other_thread_returns_ebusy)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), EBUSY);
	holder_finish(&h);
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
}
END_TEST

/* ---- timedlock: bad deadlines ------------------------------------------ */

START_TEST(timedlock_with_null_abstime_returns_einval_and_does_not_lock)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_timedlock(&m, NULL), EINVAL);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(timedlock_with_negative_nsec_returns_einval_and_does_not_lock)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = -1;
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), EINVAL);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(timedlock_with_nsec_of_one_second_returns_einval_and_does_not_lock)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(NS_PER_MS);
	d.tv_nsec = 1000000000L;
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), EINVAL);
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(timedlock_with_bad_abstime_on_held_mutex_returns_einval_at_once)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	d.tv_nsec = 1000000000L;
	int64_t start = now_ns();
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), EINVAL);
	ck_assert_int_lt(now_ns() - start, 1000 * NS_PER_MS);
	holder_finish(&h);
}
END_TEST

START_TEST(timedlock_checks_abstime_before_errorcheck_deadlock)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_timedlock(&m, NULL), EINVAL);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

/* ---- timedlock: deadlines already past --------------------------------- */

START_TEST(timedlock_with_deadline_of_now_locks_free_mutex)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = sync_deadline(0);
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), 0);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(timedlock_with_deadline_zero_locks_free_mutex)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), 0);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(timedlock_with_negative_seconds_locks_free_mutex)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), 0);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

START_TEST(timedlock_with_deadline_zero_on_held_mutex_returns_etimedout)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	struct timespec d = { 0, 0 };
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), ETIMEDOUT);
	holder_finish(&h);
}
END_TEST

START_TEST(timedlock_with_negative_seconds_on_held_mutex_returns_etimedout)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	struct timespec d = { -1, 0 };
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), ETIMEDOUT);
	holder_finish(&h);
}
END_TEST

/* A deadline already past, on a held mutex: ETIMEDOUT at once, without the
 * spin that a waiter with time left does first (the fastest of 20 tries,
 * so that a preemption cannot fail the test; a spin costs 100 us or more). */
START_TEST(timedlock_with_past_deadline_on_held_mutex_does_not_spin)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	int64_t fastest = INT64_MAX;
	for (int i = 0; i < 20; i++) {
		struct timespec d = sync_deadline(0);
		int64_t start = now_ns();
		ck_assert_int_eq(sync_mutex_timedlock(&m, &d), ETIMEDOUT);
		int64_t took = now_ns() - start;
		fastest = took < fastest ? took : fastest;
	}
	holder_finish(&h);
	ck_assert_msg(fastest < 20000, "fastest timed-out timedlock took %lld ns",
		      (long long)fastest);
}
END_TEST

START_TEST(timedlock_that_times_out_leaves_errno_alone)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	struct timespec d = sync_deadline(5 * NS_PER_MS);
	errno = EILSEQ;
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), ETIMEDOUT);
	ck_assert_int_eq(errno, EILSEQ);
	holder_finish(&h);
}
END_TEST

/* ---- timedlock: waiting ------------------------------------------------ */

START_TEST(timedlock_on_held_mutex_returns_etimedout_not_before_deadline)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	struct timespec d = sync_deadline(50 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), ETIMEDOUT);
	int64_t late = now_ns() - timespec_ns(&d);
	ck_assert_int_ge(late, 0);
	ck_assert_int_lt(late, 2000 * NS_PER_MS);
	holder_finish(&h);
}
END_TEST

START_TEST(timedlock_that_timed_out_leaves_mutex_usable)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, 0);
	struct timespec d = sync_deadline(20 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), ETIMEDOUT);
	holder_finish(&h);
	ck_assert_int_eq(other_thread_trylock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
}
END_TEST

START_TEST(timedlock_succeeds_when_holder_unlocks_before_deadline)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	/* the holder unlocks 20 ms after it sees this thread asleep */
	holder_start(&h, &m, thread_id());
	struct timespec d = sync_deadline(2000 * NS_PER_MS);
	atomic_store(&h.arriving, 1);
	ck_assert_int_eq(sync_mutex_timedlock(&m, &d), 0);
	ck_assert_int_eq(atomic_load(&h.unlocking), 1);
	ck_assert_int_lt(now_ns(), timespec_ns(&d));
	holder_finish(&h);
	ck_assert(h.saw_sleeper);
	ck_assert_int_eq(other_thread_trylock(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

/* ---- blocking ---------------------------------------------------------- */

START_TEST(lock_on_held_mutex_waits_until_holder_unlocks)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	struct holder h;
	holder_start(&h, &m, thread_id());
	atomic_store(&h.arriving, 1);
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(atomic_load(&h.unlocking), 1); /* not before */
	holder_finish(&h);
	ck_assert(h.saw_sleeper);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

#define HANDOFFS 200

/* The test's own signalling uses POSIX semaphores: they sleep, so under load
 * the two threads do not have to win the CPU back from a yield each time. */
struct handoff {
	sync_mutex_t m;
	int flag;       /* protected by m */
	int wrong_flag; /* protected by m */
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
		if (sync_mutex_lock(&ho->m) != 0)
			return NULL;
		if (ho->flag != i)
			ho->wrong_flag++;
		sem_post(&ho->got);
		if (sync_mutex_unlock(&ho->m) != 0)
			return NULL;
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

START_TEST(lock_sleeper_is_woken_by_every_unlock)
{
	/* The waiter is asleep in sync_mutex_lock each time the main thread
	 * unlocks; a lost wake-up leaves it asleep and the test fails. */
	static struct handoff ho = { .m = SYNC_MUTEX_INITIALIZER };
	pthread_t t;
	ck_assert_int_eq(sem_init(&ho.go, 0, 0), 0);
	ck_assert_int_eq(sem_init(&ho.got, 0, 0), 0);
	ck_assert_int_eq(sync_mutex_lock(&ho.m), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, handoff_waiter, &ho), 0);
	for (int i = 1; i <= HANDOFFS; i++) {
		ck_assert_int_eq(sem_post(&ho.go), 0);
		ck_assert(wait_until_equal(&ho.arriving, i));
		ck_assert_msg(wait_until_asleep(atomic_load(&ho.waiter_tid)),
			      "hand-off %d: waiter never slept", i);
		ho.flag = i;
		ck_assert_int_eq(sync_mutex_unlock(&ho.m), 0);
		ck_assert_msg(sem_wait_limited(&ho.got),
			      "hand-off %d: waiter was not woken", i);
		/* may sleep until the waiter unlocks: wakes the other way too */
		ck_assert_int_eq(sync_mutex_lock(&ho.m), 0);
	}
	ck_assert_int_eq(ho.wrong_flag, 0);
	ck_assert_int_eq(sync_mutex_unlock(&ho.m), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

/* ---- exclusion and starvation ------------------------------------------ */

struct contention {
	sync_mutex_t m;
	atomic_int stop;
	long counter;          /* protected by m */
	int errors;            /* protected by m */
	atomic_long latecomer; /* written under m, read by main without it */
};

static void *hammer(void *arg)
{
	struct contention *c = arg;
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (sync_mutex_lock(&c->m) != 0)
			return NULL;
		c->counter++;
		if (sync_mutex_unlock(&c->m) != 0)
			c->errors++;
	}
	return NULL;
}

static void *latecomer(void *arg)
{
	struct contention *c = arg;
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (sync_mutex_lock(&c->m) != 0)
			return NULL;
		atomic_fetch_add(&c->latecomer, 1);
		if (sync_mutex_unlock(&c->m) != 0)
			c->errors++;
	}
	return NULL;
}

START_TEST(waiter_gets_mutex_while_three_threads_hammer_it)
{
	/* The hammers keep going for 200 ms, and on a machine too loaded for
	 * the fourth thread to have run by then, until it got in once (at most
	 * WAIT_LIMIT_NS): a waiter that starves never gets in. */
	static struct contention c = { .m = SYNC_MUTEX_INITIALIZER };
	pthread_t t[4];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &c), 0);
	ck_assert_int_eq(pthread_create(&t[3], NULL, latecomer, &c), 0);
	sleep_ns(200 * NS_PER_MS);
	int64_t start = now_ns();
	while (atomic_load(&c.latecomer) == 0 && now_ns() - start < WAIT_LIMIT_NS)
		sleep_ns(NS_PER_MS);
	atomic_store(&c.stop, 1);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(c.errors, 0);
	ck_assert_int_gt(c.counter, 0);
	ck_assert_int_gt(atomic_load(&c.latecomer), 0);
}
END_TEST

#define THREAD_ITERS 20000

static void *count_up(void *arg)
{
	struct contention *c = arg;
	for (int i = 0; i < THREAD_ITERS; i++) {
		if (sync_mutex_lock(&c->m) != 0)
			return NULL;
		c->counter++;
		if (sync_mutex_unlock(&c->m) != 0)
			c->errors++;
	}
	return NULL;
}

START_TEST(lock_excludes_other_threads)
{
	static struct contention c = { .m = SYNC_MUTEX_INITIALIZER };
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, count_up, &c), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(c.errors, 0);
	ck_assert_int_eq(c.counter, 4L * THREAD_ITERS);
}
END_TEST

/* ---- between processes (SYNC_PSHARED) ---------------------------------- */

#define PROCESS_ITERS 20000

static int count_up_shared(struct shared *sh)
{
	/* start together, so that the three processes really compete */
	atomic_fetch_add(&sh->stage, 1);
	while (atomic_load(&sh->stage) < 3)
		sched_yield();
	for (int i = 0; i < PROCESS_ITERS; i++) {
		if (sync_mutex_lock(&sh->m) != 0)
			return 1;
		sh->counter++;
		if (sync_mutex_unlock(&sh->m) != 0)
			return 2;
	}
	return 0;
}

START_TEST(pshared_mutex_excludes_other_processes)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	pid_t a = fork_child(count_up_shared, sh);
	pid_t b = fork_child(count_up_shared, sh);
	int mine = count_up_shared(sh);
	ck_assert_int_eq(child_status(a), 0);
	ck_assert_int_eq(child_status(b), 0);
	ck_assert_int_eq(mine, 0);
	ck_assert_int_eq(sh->counter, 3 * PROCESS_ITERS);
	shared_destroy(sh);
}
END_TEST

static int child_trylock(struct shared *sh)
{
	return sync_mutex_trylock(&sh->m);
}

START_TEST(pshared_trylock_from_other_process_returns_ebusy_while_held)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	ck_assert_int_eq(child_status(fork_child(child_trylock, sh)), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
	ck_assert_int_eq(child_status(fork_child(child_trylock, sh)), 0);
	shared_destroy(sh);
}
END_TEST

static int child_timedlock_100ms(struct shared *sh)
{
	struct timespec d = sync_deadline(100 * NS_PER_MS);
	sh->results[0] = sync_mutex_timedlock(&sh->m, &d);
	int64_t late = now_ns() - timespec_ns(&d);
	sh->results[1] = late >= 0 && late < 2000 * NS_PER_MS;
	return 0;
}

START_TEST(pshared_timedlock_from_other_process_times_out_while_held)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	ck_assert_int_eq(child_status(fork_child(child_timedlock_100ms, sh)), 0);
	ck_assert_int_eq(sh->results[0], ETIMEDOUT);
	ck_assert_int_eq(sh->results[1], 1); /* not before the deadline */
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
	shared_destroy(sh);
}
END_TEST

static int child_lock_and_read(struct shared *sh)
{
	atomic_store(&sh->stage, 1);
	sh->results[0] = sync_mutex_lock(&sh->m);
	if (sh->results[0] != 0)
		return 1;
	sh->results[1] = sh->value;
	sh->results[2] = sync_mutex_unlock(&sh->m);
	return 0;
}

START_TEST(pshared_lock_from_other_process_wakes_when_holder_unlocks)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	pid_t pid = fork_child(child_lock_and_read, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in lock");
	sh->value = 42;
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(sh->results[1], 42);
	ck_assert_int_eq(sh->results[2], 0);
	shared_destroy(sh);
}
END_TEST

static int child_moves_then_locks_and_reads(struct shared *sh)
{
	struct shared *view = move_mapping(sh, sizeof *sh);
	if (view == MAP_FAILED || view == sh)
		return 2;
	return child_lock_and_read(view);
}

START_TEST(pshared_lock_wakes_when_processes_map_mutex_at_different_addresses)
{
	struct shared *sh = shared_create(SYNC_PSHARED);
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	pid_t pid = fork_child(child_moves_then_locks_and_reads, sh);
	ck_assert(wait_until_equal(&sh->stage, 1));
	ck_assert_msg(wait_until_asleep(pid), "child never slept in lock");
	sh->value = 42;
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(sh->results[0], 0);
	ck_assert_int_eq(sh->results[1], 42);
	ck_assert_int_eq(sh->results[2], 0);
	shared_destroy(sh);
}
END_TEST

static int child_unlock_then_trylock(struct shared *sh)
{
	sh->results[0] = sync_mutex_unlock(&sh->m);
	sh->results[1] = sync_mutex_trylock(&sh->m);
	return 0;
}

START_TEST(pshared_errorcheck_unlock_from_other_process_returns_eperm)
{
	struct shared *sh = shared_create(SYNC_PSHARED | SYNC_MUTEX_ERRORCHECK);
	ck_assert_int_eq(sync_mutex_lock(&sh->m), 0);
	ck_assert_int_eq(child_status(fork_child(child_unlock_then_trylock, sh)), 0);
	ck_assert_int_eq(sh->results[0], EPERM);
	ck_assert_int_eq(sh->results[1], EBUSY); /* still locked */
	ck_assert_int_eq(sync_mutex_unlock(&sh->m), 0);
	shared_destroy(sh);
}
END_TEST

/* ---- waiters that vanish ----------------------------------------------- */

/* White box: the spinner field holds the token of the one spinning waiter. */
static bool spinner_present(sync_mutex_t *m)
{
	return atomic_load(&m->spinner);
}

/* Polls for a spinner on m, for at most about 50 ms. */
static bool caught_spinning(sync_mutex_t *m)
{
	int64_t until = now_ns() + 50 * NS_PER_MS;
	while (now_ns() < until) {
		if (spinner_present(m))
			return true;
	}
	return false;
}

static int lock_forever(void *arg)
{
	return sync_mutex_lock(arg);
}

struct timed_locker {
	sync_mutex_t *m;
	int rounds; /* lock+unlock pairs, each lock with a deadline; 0: one */
	pthread_t thread;
	atomic_int tid;
	int result; /* the first failure, else 0 */
};

static void *timed_locker_main(void *arg)
{
	struct timed_locker *t = arg;
	atomic_store(&t->tid, thread_id());
	int rounds = t->rounds ? t->rounds : 1;
	for (int i = 0; i < rounds; i++) {
		struct timespec d = sync_deadline(WAIT_LIMIT_NS);
		t->result = sync_mutex_timedlock(t->m, &d);
		if (t->result)
			break;
		if (t->rounds)
			sleep_ns(20000); /* held long enough for the other to wait */
		sync_mutex_unlock(t->m);
	}
	return NULL;
}

/* Issue 10, 3a: a process killed while it spins for a shared mutex (it never
 * held it) must not leave the mutex unable to wake its sleepers. */
START_TEST(pshared_spinner_killed_leaves_mutex_usable)
{
	sync_mutex_t *m = map_shared(sizeof *m);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(sync_mutex_init(m, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_lock(m), 0);
	bool killed_spinning = false;
	for (int attempt = 0; attempt < 100 && !killed_spinning; attempt++) {
		/* the spin length learned afresh: the spins that earlier children
		 * spent in full would have taught the next ones to sleep at once */
		atomic_store(&m->spin, 0);
		pid_t child = fork_running(lock_forever, m);
		ck_assert_int_ne(child, -1);
		killed_spinning = caught_spinning(m);
		kill(child, SIGKILL);
		child_status(child);
	}
	ck_assert_msg(killed_spinning, "never caught the child spinning");
	struct timed_locker t = { .m = m };
	ck_assert_int_eq(pthread_create(&t.thread, NULL, timed_locker_main, &t), 0);
	ck_assert(wait_until_at_least(&t.tid, 1));
	ck_assert(wait_until_asleep(atomic_load(&t.tid)));
	ck_assert_int_eq(sync_mutex_unlock(m), 0);
	ck_assert_int_eq(pthread_join(t.thread, NULL), 0);
	ck_assert_int_eq(t.result, 0);
	ck_assert_int_eq(sync_mutex_destroy(m), 0);
}
END_TEST

/* Two threads of the fork child contend for m, every lock with a deadline;
 * exits with how many of them failed. */
static int contend_in_child(void *arg)
{
	sync_mutex_t *m = arg;
	/* the atfork pattern: the forking thread held m; unlock in the child */
	if (sync_mutex_unlock(m) != 0)
		return 100;
	struct timed_locker t[2] = { { .m = m, .rounds = 500 },
				     { .m = m, .rounds = 500 } };
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i].thread, NULL, timed_locker_main, &t[i]);
	int failed = 0;
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i].thread, NULL);
		failed += t[i].result != 0;
	}
	return failed;
}

/* Issue 10, 3c: a thread that spins for the mutex when another thread forks
 * does not exist in the child, but its claim to be the spinner does, and
 * its stamp on the lock word (bits 3-31, with the waiters bit 1) that tells
 * an unlock to leave the wake-up to it: the child's threads must still be
 * woken. White box: both hold a token of the spinner's process, which the
 * child does not share (a thread cannot be caught spinning reliably: it
 * spins for about 40 us, less than a fork takes). */
START_TEST(fork_child_with_a_vanished_spinner_claim_can_use_the_mutex)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	atomic_store(&m.spinner, 0x0abcdef0u); /* what a spinner leaves */
	atomic_fetch_or(&m.state, 2u | (0x0abcdef0u << 3));
	pid_t child = fork_running(contend_in_child, &m);
	ck_assert_int_ne(child, -1);
	int status = child_status(child);
	ck_assert_msg(status == 0, "child: %d threads failed to lock", status);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

/* The same for the hand-off: a starving sleeper that claimed the next
 * release (bit 2, with its token) does not exist in the child either. */
START_TEST(fork_child_with_a_vanished_heir_can_use_the_mutex)
{
	sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	atomic_fetch_or(&m.state, 4u | 2u | (0x0abcdef0u << 3)); /* an heir's claim */
	pid_t child = fork_running(contend_in_child, &m);
	ck_assert_int_ne(child, -1);
	int status = child_status(child);
	ck_assert_msg(status == 0, "child: %d threads failed to lock", status);
	atomic_fetch_and(&m.state, 1u); /* the heir is this process's to undo */
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
}
END_TEST

/* The pthread_atfork pattern with an error-checking mutex: locked in the
 * prepare handler, unlocked in the parent and in the child handler. The
 * child's thread has a new kernel id but is the forking thread's replica,
 * holding what it held: its unlock must not fail with EPERM. */
static sync_mutex_t atfork_mutex;
static int parent_unlock = -1, child_unlock = -1;

static void atfork_prepare_lock(void)
{
	sync_mutex_lock(&atfork_mutex);
}

static void atfork_parent_unlock(void)
{
	parent_unlock = sync_mutex_unlock(&atfork_mutex);
}

static void atfork_child_unlock(void)
{
	child_unlock = sync_mutex_unlock(&atfork_mutex);
}

START_TEST(errorcheck_mutex_locked_in_atfork_prepare_unlocks_in_the_child)
{
	ck_assert_int_eq(sync_mutex_init(&atfork_mutex, SYNC_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(sync_mutex_lock(&atfork_mutex), 0); /* a used library */
	ck_assert_int_eq(sync_mutex_unlock(&atfork_mutex), 0);
	ck_assert_int_eq(pthread_atfork(atfork_prepare_lock, atfork_parent_unlock,
					atfork_child_unlock), 0);
	pid_t child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		int relock = sync_mutex_lock(&atfork_mutex);
		int unlock = sync_mutex_unlock(&atfork_mutex);
		_exit(child_unlock == 0 && relock == 0 && unlock == 0 ? 0 :
		      child_unlock == EPERM ? 2 : 1);
	}
	ck_assert_int_eq(parent_unlock, 0);
	int status = child_status(child);
	ck_assert_msg(status == 0, "child: %s", status == 2 ? "unlock returned EPERM"
							   : "lock or unlock failed");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mutex");

	TCase *tc = tcase_create("init");
	tcase_add_test(tc, initializer_gives_unlocked_mutex);
	tcase_add_test(tc, initializer_gives_mutex_without_errorcheck);
	tcase_add_test(tc, init_with_no_flags_gives_unlocked_mutex);
	tcase_add_test(tc, init_with_no_flags_gives_mutex_without_errorcheck);
	tcase_add_test(tc, init_with_errorcheck_gives_unlocked_errorcheck_mutex);
	tcase_add_test(tc, init_with_pshared_gives_unlocked_mutex);
	tcase_add_test(tc, init_with_pshared_and_errorcheck_gives_unlocked_errorcheck_mutex);
	tcase_add_test(tc, init_rejects_rwlock_prefer_reader_flag_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_0x100_and_changes_nothing);
	tcase_add_test(tc, init_rejects_all_bits_set_and_changes_nothing);
	tcase_add_test(tc, init_rejects_unknown_bit_next_to_valid_flags);
	tcase_add_test(tc, mutex_is_40_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("null");
	tcase_add_test(tc, init_of_null_mutex_returns_einval);
	tcase_add_test(tc, destroy_of_null_mutex_returns_einval);
	tcase_add_test(tc, lock_of_null_mutex_returns_einval);
	tcase_add_test(tc, trylock_of_null_mutex_returns_einval);
	tcase_add_test(tc, timedlock_of_null_mutex_returns_einval);
	tcase_add_test(tc, unlock_of_null_mutex_returns_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("lock");
	tcase_add_test(tc, lock_of_free_mutex_takes_it);
	tcase_add_test(tc, unlock_of_held_mutex_frees_it);
	tcase_add_test(tc, trylock_of_free_mutex_takes_it);
	tcase_add_test(tc, trylock_of_mutex_held_by_other_thread_returns_ebusy);
	tcase_add_test(tc, trylock_of_mutex_held_by_caller_returns_ebusy);
	tcase_add_test(tc, unlock_of_unlocked_mutex_returns_eperm);
	tcase_add_test(tc, unlock_of_unlocked_errorcheck_mutex_returns_eperm);
	suite_add_tcase(s, tc);

	tc = tcase_create("errorcheck");
	tcase_add_test(tc, errorcheck_unlock_by_non_owner_returns_eperm_and_keeps_mutex_locked);
	tcase_add_test(tc, errorcheck_lock_by_owner_returns_edeadlk);
	tcase_add_test(tc, errorcheck_timedlock_by_owner_returns_edeadlk);
	tcase_add_test(tc, errorcheck_trylock_by_owner_returns_ebusy);
	tcase_add_test(tc, errorcheck_mutex_can_be_taken_by_next_thread_after_owner_unlocks);
	suite_add_tcase(s, tc);

	tc = tcase_create("destroy");
	tcase_add_test(tc, destroy_of_unlocked_mutex_returns_zero);
	tcase_add_test(tc, destroyed_mutex_can_be_initialised_again);
	tcase_add_test(tc, destroy_of_locked_mutex_returns_ebusy_and_mutex_stays_usable);
	tcase_add_test(tc, destroy_of_mutex_held_by_other_thread_returns_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_create("timedlock");
	tcase_add_test(tc, timedlock_with_null_abstime_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedlock_with_negative_nsec_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedlock_with_nsec_of_one_second_returns_einval_and_does_not_lock);
	tcase_add_test(tc, timedlock_with_bad_abstime_on_held_mutex_returns_einval_at_once);
	tcase_add_test(tc, timedlock_checks_abstime_before_errorcheck_deadlock);
	tcase_add_test(tc, timedlock_with_deadline_of_now_locks_free_mutex);
	tcase_add_test(tc, timedlock_with_deadline_zero_locks_free_mutex);
	tcase_add_test(tc, timedlock_with_negative_seconds_locks_free_mutex);
	tcase_add_test(tc, timedlock_with_deadline_zero_on_held_mutex_returns_etimedout);
	tcase_add_test(tc, timedlock_with_negative_seconds_on_held_mutex_returns_etimedout);
	tcase_add_test(tc, timedlock_on_held_mutex_returns_etimedout_not_before_deadline);
	tcase_add_test(tc, timedlock_that_timed_out_leaves_mutex_usable);
	tcase_add_test(tc, timedlock_succeeds_when_holder_unlocks_before_deadline);
	tcase_add_test(tc, timedlock_with_past_deadline_on_held_mutex_does_not_spin);
	tcase_add_test(tc, timedlock_that_times_out_leaves_errno_alone);
	suite_add_tcase(s, tc);

	tc = tcase_create("vanished");
	/* up to 100 forked spinners, 50 ms each to be caught: beyond Check's
	 * default 4 s on a loaded machine (timed out twice under load) */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pshared_spinner_killed_leaves_mutex_usable);
	tcase_add_test(tc, fork_child_with_a_vanished_spinner_claim_can_use_the_mutex);
	tcase_add_test(tc, fork_child_with_a_vanished_heir_can_use_the_mutex);
	tcase_add_test(tc, errorcheck_mutex_locked_in_atfork_prepare_unlocks_in_the_child);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocking");
	tcase_add_test(tc, lock_on_held_mutex_waits_until_holder_unlocks);
	tcase_add_test(tc, lock_sleeper_is_woken_by_every_unlock);
	tcase_add_test(tc, lock_excludes_other_threads);
	tcase_add_test(tc, waiter_gets_mutex_while_three_threads_hammer_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("pshared");
	tcase_add_test(tc, pshared_mutex_excludes_other_processes);
	tcase_add_test(tc, pshared_trylock_from_other_process_returns_ebusy_while_held);
	tcase_add_test(tc, pshared_timedlock_from_other_process_times_out_while_held);
	tcase_add_test(tc, pshared_lock_from_other_process_wakes_when_holder_unlocks);
	tcase_add_test(tc, pshared_lock_wakes_when_processes_map_mutex_at_different_addresses);
	tcase_add_test(tc, pshared_errorcheck_unlock_from_other_process_returns_eperm);
	suite_add_tcase(s, tc);

	return s;
}
