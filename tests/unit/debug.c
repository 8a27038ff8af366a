/* Unit tests for <sync/debug.h>: the lock-order and misuse checker
 * (SYNC_CHECK, sync_check_set) and the contention profiler (SYNC_PROFILE,
 * sync_profile_print), one behaviour per test, each read off the report.
 *
 * Checker tests switch checking on with sync_check_set("deadlock"), send
 * this process's stderr into a temporary file first (Check runs each test in
 * a child of its own), and read the reports there. Locks are taken in
 * threads run one after another, so that nothing ever deadlocks: the checker
 * reports orders, not deadlocks. A call that does hang (a relock) runs in a
 * child process, killed once its report is read.
 *
 * The profiler is switched on only by SYNC_PROFILE=1 at load, so its tests
 * run this program again (/proc/self/exe) with SYNC_PROFILE set and a
 * workload named in DEBUG_TEST_WORKLOAD, which suite() runs instead of the
 * tests; the workload prints what it measured itself, and the table. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sync.h>

#include "tap_main.h"
#include "util.h"

#define REPORT_MAX 65536
#define INVERSION "libsync: SYNC_CHECK: lock-order inversion (a possible deadlock)\n"

/* ---- stderr into a file, and reading it back --------------------------- */

static int stderr_copy = -1; /* the file stderr now goes to */
static char text[REPORT_MAX];

/* This test's stderr goes to a fresh temporary file from here on. */
static void capture_stderr(void)
{
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	stderr_copy = dup(fileno(f));
	ck_assert_int_ge(stderr_copy, 0);
	ck_assert_int_eq(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
	fclose(f);
}

/* Everything written to stderr since capture_stderr. */
static const char *captured(void)
{
	ssize_t n = pread(stderr_copy, text, sizeof text - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static void start_checking(void)
{
	capture_stderr();
	ck_assert_int_eq(sync_check_set("deadlock"), 0);
}

static void stop_checking(void)
{
	ck_assert_int_eq(sync_check_set(""), 0);
}

static int count(const char *haystack, const char *needle)
{
	int n = 0;
	size_t len = strlen(needle);
	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += len)
		n++;
	return n;
}

/* Where the formatted line occurs in s; fails the test if it does not. */
static const char *expect_in(const char *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const char *expect_in(const char *s, const char *fmt, ...)
{
	char want[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want, sizeof want, fmt, ap);
	va_end(ap);
	const char *at = strstr(s, want);
	ck_assert_msg(at != NULL, "expected \"%s\" in the report:\n%s", want, s);
	return at;
}

/* a is found before b in the same text. */
#define assert_before(a, b) ck_assert_msg((a) < (b), "%s not before %s", #a, #b)

static void expect_no_report(void)
{
	const char *s = captured();
	ck_assert_msg(s[0] == '\0', "expected no report, got:\n%s", s);
}

/* ---- any lock, taken in a thread --------------------------------------- */

struct lk {
	void *obj;
	void (*lock)(struct lk *);
	void (*unlock)(struct lk *);
	sync_mcsnode_t node; /* MCS: one holder at a time here, so one node */
};

static void mutex_lock_(struct lk *l)
{
	ck_assert_int_eq(sync_mutex_lock(l->obj), 0);
}

static void mutex_unlock_(struct lk *l)
{
	ck_assert_int_eq(sync_mutex_unlock(l->obj), 0);
}

static void rd_lock_(struct lk *l)
{
	ck_assert_int_eq(sync_rwlock_rdlock(l->obj), 0);
}

static void rd_unlock_(struct lk *l)
{
	ck_assert_int_eq(sync_rwlock_rdunlock(l->obj), 0);
}

static void wr_lock_(struct lk *l)
{
	ck_assert_int_eq(sync_rwlock_wrlock(l->obj), 0);
}

static void wr_unlock_(struct lk *l)
{
	ck_assert_int_eq(sync_rwlock_wrunlock(l->obj), 0);
}

static void spin_lock_(struct lk *l) { sync_spinlock_lock(l->obj); }
static void spin_unlock_(struct lk *l) { sync_spinlock_unlock(l->obj); }
static void ticket_lock_(struct lk *l) { sync_ticketlock_lock(l->obj); }
static void ticket_unlock_(struct lk *l) { sync_ticketlock_unlock(l->obj); }
static void mcs_lock_(struct lk *l) { sync_mcslock_lock(l->obj, &l->node); }
static void mcs_unlock_(struct lk *l) { sync_mcslock_unlock(l->obj, &l->node); }

#define LK(obj, kind) ((struct lk){ (obj), kind##_lock_, kind##_unlock_, { 0 } })

static struct lk mutex_lk(sync_mutex_t *m) { return LK(m, mutex); }
static struct lk rd_lk(sync_rwlock_t *l) { return LK(l, rd); }
static struct lk wr_lk(sync_rwlock_t *l) { return LK(l, wr); }
static struct lk spin_lk(sync_spinlock_t *l) { return LK(l, spin); }
static struct lk ticket_lk(sync_ticketlock_t *l) { return LK(l, ticket); }
static struct lk mcs_lk(sync_mcslock_t *l) { return LK(l, mcs); }

struct nest {
	struct lk *outer, *inner;
	pid_t tid;
};

static void *nest_main(void *arg)
{
	struct nest *n = arg;
	n->tid = thread_id();
	n->outer->lock(n->outer);
	n->inner->lock(n->inner);
	n->inner->unlock(n->inner);
	n->outer->unlock(n->outer);
	return NULL;
}

/* A new thread takes outer, then inner while holding outer, and lets both
 * go; returns once it has ended, with its thread id. */
static pid_t nest_in_thread(struct lk *outer, struct lk *inner)
{
	struct nest n = { outer, inner, 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, nest_main, &n), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	return n.tid;
}

static pid_t nest_mutexes(sync_mutex_t *outer, sync_mutex_t *inner)
{
	struct lk a = mutex_lk(outer), b = mutex_lk(inner);
	return nest_in_thread(&a, &b);
}

/* ---- lock-order inversions --------------------------------------------- */

#define PHILOSOPHERS 5

/* Five philosophers eat one after another, each taking both forks in the
 * naive order (left, then right) or the lower-numbered first. tids[p]:
 * philosopher p's thread. */
static void dine_one_after_another(sync_mutex_t *forks, bool ordered, pid_t *tids)
{
	for (int i = 0; i < PHILOSOPHERS; i++)
		ck_assert_int_eq(sync_mutex_init(&forks[i], 0), 0);
	for (int p = 0; p < PHILOSOPHERS; p++) {
		int left = p, right = (p + 1) % PHILOSOPHERS;
		if (ordered && right < left)
			tids[p] = nest_mutexes(&forks[right], &forks[left]);
		else
			tids[p] = nest_mutexes(&forks[left], &forks[right]);
	}
}

START_TEST(naive_dining_philosophers_report_the_cycle_on_the_first_run)
{
	sync_mutex_t forks[PHILOSOPHERS];
	pid_t tids[PHILOSOPHERS];
	start_checking();
	dine_one_after_another(forks, false, tids);
	stop_checking();
	const char *s = captured();
	ck_assert_msg(count(s, INVERSION) == 1, "one inversion expected:\n%s", s);
	/* philosopher 4 closes the cycle: fork 0 wanted while fork 4 held */
	const char *now = expect_in(s, "  thread %d takes mutex %p while holding mutex %p, at:\n",
				    (int)tids[4], (void *)&forks[0], (void *)&forks[4]);
	const char *before = expect_in(s, "  but the opposite order was seen before:\n");
	assert_before(now, before);
	for (int p = 0; p < 4; p++) { /* the path fork 0 -> 1 -> 2 -> 3 -> 4, in order */
		const char *edge = expect_in(s, "  thread %d took mutex %p while holding mutex %p, at:\n",
					     (int)tids[p], (void *)&forks[p + 1], (void *)&forks[p]);
		assert_before(before, edge);
		before = edge;
	}
	expect_in(before, "  if these run at once, each thread waits for the other for ever\n");
}
END_TEST

START_TEST(ordered_dining_philosophers_are_not_reported)
{
	sync_mutex_t forks[PHILOSOPHERS];
	pid_t tids[PHILOSOPHERS];
	start_checking();
	dine_one_after_another(forks, true, tids);
	stop_checking();
	expect_no_report();
}
END_TEST

START_TEST(cycle_of_three_locks_is_reported_with_each_edge)
{
	sync_mutex_t a, b, c;
	sync_mutex_init(&a, 0);
	sync_mutex_init(&b, 0);
	sync_mutex_init(&c, 0);
	start_checking();
	pid_t ab = nest_mutexes(&a, &b);
	pid_t bc = nest_mutexes(&b, &c);
	ck_assert_str_eq(captured(), "");
	pid_t ca = nest_mutexes(&c, &a);
	stop_checking();
	const char *s = captured();
	ck_assert_int_eq(count(s, INVERSION), 1);
	expect_in(s, "  thread %d takes mutex %p while holding mutex %p, at:\n", (int)ca,
		  (void *)&a, (void *)&c);
	const char *e1 = expect_in(s, "  thread %d took mutex %p while holding mutex %p, at:\n",
				   (int)ab, (void *)&b, (void *)&a);
	const char *e2 = expect_in(s, "  thread %d took mutex %p while holding mutex %p, at:\n",
				   (int)bc, (void *)&c, (void *)&b);
	assert_before(e1, e2);
	ck_assert_int_eq(count(s, " at:\n      #0 "), 3); /* a stack trace for each */
}
END_TEST

START_TEST(read_then_mutex_against_mutex_then_write_is_reported)
{
	sync_rwlock_t a;
	sync_mutex_t m;
	sync_rwlock_init(&a, 0);
	sync_mutex_init(&m, 0);
	struct lk read_a = rd_lk(&a), write_a = wr_lk(&a), mm = mutex_lk(&m);
	start_checking();
	pid_t first = nest_in_thread(&read_a, &mm);
	pid_t second = nest_in_thread(&mm, &write_a);
	stop_checking();
	const char *s = captured();
	ck_assert_int_eq(count(s, INVERSION), 1);
	expect_in(s, "  thread %d takes rwlock %p for writing while holding mutex %p, at:\n",
		  (int)second, (void *)&a, (void *)&m);
	expect_in(s, "  thread %d took mutex %p while holding rwlock %p for reading, at:\n",
		  (int)first, (void *)&m, (void *)&a);
}
END_TEST

/* Read A then M, against M then read A. */
static const char *read_read(int flags)
{
	sync_rwlock_t a;
	sync_mutex_t m;
	sync_rwlock_init(&a, flags);
	sync_mutex_init(&m, 0);
	struct lk read_a = rd_lk(&a), mm = mutex_lk(&m);
	start_checking();
	nest_in_thread(&read_a, &mm);
	nest_in_thread(&mm, &read_a);
	stop_checking();
	return captured();
}

START_TEST(read_read_on_reader_preferring_rwlock_is_not_reported)
{
	read_read(SYNC_RWLOCK_PREFER_READER);
	expect_no_report();
}
END_TEST

START_TEST(read_read_on_writer_preferring_rwlock_is_reported)
{
	/* a writer waiting between the two read holds blocks the second one */
	const char *s = read_read(0);
	ck_assert_int_eq(count(s, INVERSION), 1);
	expect_in(s, "takes rwlock 0x");
	expect_in(s, " for reading while holding mutex 0x");
	expect_in(s, " while holding rwlock 0x");
}
END_TEST

/* A mutex and a spinlock of some kind, in both orders. */
static void mutex_and(struct lk *spin)
{
	sync_mutex_t m;
	sync_mutex_init(&m, 0);
	struct lk mm = mutex_lk(&m);
	start_checking();
	pid_t first = nest_in_thread(&mm, spin);
	pid_t second = nest_in_thread(spin, &mm);
	stop_checking();
	const char *s = captured();
	ck_assert_int_eq(count(s, INVERSION), 1);
	expect_in(s, "  thread %d takes mutex %p while holding spinlock %p, at:\n",
		  (int)second, (void *)&m, spin->obj);
	expect_in(s, "  thread %d took spinlock %p while holding mutex %p, at:\n",
		  (int)first, spin->obj, (void *)&m);
}

START_TEST(mutex_and_spinlock_in_both_orders_are_reported)
{
	sync_spinlock_t l = SYNC_SPINLOCK_INITIALIZER;
	struct lk spin = spin_lk(&l);
	mutex_and(&spin);
}
END_TEST

START_TEST(mutex_and_ticketlock_in_both_orders_are_reported)
{
	sync_ticketlock_t l = SYNC_TICKETLOCK_INITIALIZER;
	struct lk spin = ticket_lk(&l);
	mutex_and(&spin);
}
END_TEST

START_TEST(mutex_and_mcslock_in_both_orders_are_reported)
{
	sync_mcslock_t l = SYNC_MCSLOCK_INITIALIZER;
	struct lk spin = mcs_lk(&l);
	mutex_and(&spin);
}
END_TEST

START_TEST(try_and_timed_locks_add_no_order)
{
	sync_mutex_t a, b;
	sync_mutex_init(&a, 0);
	sync_mutex_init(&b, 0);
	start_checking();
	/* a, then b by trylock; a, then b by timedlock */
	ck_assert_int_eq(sync_mutex_lock(&a), 0);
	ck_assert_int_eq(sync_mutex_trylock(&b), 0);
	ck_assert_int_eq(sync_mutex_unlock(&b), 0);
	struct timespec soon = sync_deadline(100 * NS_PER_MS);
	ck_assert_int_eq(sync_mutex_timedlock(&b, &soon), 0);
	ck_assert_int_eq(sync_mutex_unlock(&b), 0);
	ck_assert_int_eq(sync_mutex_unlock(&a), 0);
	/* b, then a by a blocking lock: no opposite order was recorded */
	nest_mutexes(&b, &a);
	stop_checking();
	expect_no_report();
}
END_TEST

START_TEST(orders_of_a_destroyed_lock_are_forgotten)
{
	sync_mutex_t a, b;
	sync_mutex_init(&a, 0);
	sync_mutex_init(&b, 0);
	start_checking();
	nest_mutexes(&a, &b);
	ck_assert_int_eq(sync_mutex_destroy(&b), 0);
	ck_assert_int_eq(sync_mutex_init(&b, 0), 0); /* a new lock, same address */
	nest_mutexes(&b, &a);
	stop_checking();
	expect_no_report();
}
END_TEST

/* ---- misuse -------------------------------------------------------------- */

/* Runs fn in a child whose stderr is a pipe, until `until` shows up in it
 * (or WAIT_LIMIT_NS); then reports whether the child was still running,
 * kills it, and leaves what it wrote in text. */
static bool hangs_after_writing(void (*fn)(void), const char *until)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (sync_check_set("deadlock") != 0)
			_exit(2);
		fn();
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	int64_t start = now_ns();
	text[0] = '\0';
	while (!strstr(text, until) && now_ns() - start < WAIT_LIMIT_NS) {
		struct pollfd p = { fds[0], POLLIN, 0 };
		if (poll(&p, 1, 10) == 1) {
			ssize_t got = read(fds[0], text + n, sizeof text - 1 - n);
			if (got <= 0)
				break;
			n += (size_t)got;
			text[n] = '\0';
		}
	}
	close(fds[0]);
	sleep_ns(20 * NS_PER_MS); /* a call that did not hang would have returned */
	int status;
	bool running = waitpid(pid, &status, WNOHANG) == 0;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return running;
}

static void relock_mutex(void)
{
	static sync_mutex_t m = SYNC_MUTEX_INITIALIZER;
	sync_mutex_lock(&m);
	fprintf(stderr, "locked %p once\n", (void *)&m);
	sync_mutex_lock(&m); /* never returns */
}

START_TEST(relock_of_normal_mutex_is_reported_before_it_hangs)
{
	ck_assert_msg(hangs_after_writing(relock_mutex, "(self-deadlock)\n"),
		      "the relock returned:\n%s", text);
	void *m;
	ck_assert_int_eq(sscanf(text, "locked %p once\n", &m), 1);
	expect_in(text, "libsync: SYNC_CHECK: thread ");
	expect_in(text, " takes mutex %p, which it already holds:\n"
			"  this call never returns (self-deadlock)\n      #0 ", m);
}
END_TEST

static void relock_spinlock(void)
{
	static sync_spinlock_t l = SYNC_SPINLOCK_INITIALIZER;
	sync_spinlock_lock(&l);
	fprintf(stderr, "locked %p once\n", (void *)&l);
	sync_spinlock_lock(&l); /* spins for ever */
}

START_TEST(relock_of_spinlock_is_reported_before_it_hangs)
{
	ck_assert_msg(hangs_after_writing(relock_spinlock, "(self-deadlock)\n"),
		      "the relock returned:\n%s", text);
	void *l;
	ck_assert_int_eq(sscanf(text, "locked %p once\n", &l), 1);
	expect_in(text, " takes spinlock %p, which it already holds:\n", l);
}
END_TEST

static void write_lock_of_read_held_rwlock(void)
{
	static sync_rwlock_t l = SYNC_RWLOCK_INITIALIZER;
	sync_rwlock_rdlock(&l);
	fprintf(stderr, "locked %p once\n", (void *)&l);
	sync_rwlock_wrlock(&l); /* waits for its own read hold */
}

START_TEST(write_lock_of_rwlock_read_held_by_caller_is_reported_before_it_hangs)
{
	ck_assert_msg(hangs_after_writing(write_lock_of_read_held_rwlock, "(self-deadlock)\n"),
		      "the write lock returned:\n%s", text);
	void *l;
	ck_assert_int_eq(sscanf(text, "locked %p once\n", &l), 1);
	expect_in(text, " takes rwlock %p for writing, which it already holds for reading:\n", l);
}
END_TEST

START_TEST(relock_of_errorcheck_mutex_returns_edeadlk_unreported)
{
	sync_mutex_t m;
	sync_mutex_init(&m, SYNC_MUTEX_ERRORCHECK);
	start_checking();
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), EDEADLK);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	stop_checking();
	expect_no_report();
}
END_TEST

START_TEST(unlock_of_lock_not_held_is_reported)
{
	sync_mutex_t m;
	sync_mutex_init(&m, 0);
	start_checking();
	ck_assert_int_eq(sync_mutex_unlock(&m), EPERM); /* as without checking */
	stop_checking();
	const char *s = captured();
	expect_in(s, "libsync: SYNC_CHECK: thread %d unlocks, not holding it, mutex %p\n"
		     "      #0 ", (int)thread_id(), (void *)&m);
	ck_assert_int_eq(count(s, "libsync: "), 1);
}
END_TEST

START_TEST(read_relock_of_writer_preferring_rwlock_is_reported)
{
	sync_rwlock_t l;
	sync_rwlock_init(&l, 0);
	start_checking();
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0); /* no writer came: it returns */
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	stop_checking();
	const char *s = captured();
	expect_in(s, "libsync: SYNC_CHECK: thread %d takes rwlock %p for reading, which it "
		     "already holds for reading:\n  a writer that comes in between blocks this "
		     "read lock for ever (the rwlock prefers writers)\n      #0 ",
		  (int)thread_id(), (void *)&l);
	ck_assert_int_eq(count(s, "libsync: "), 1);
}
END_TEST

START_TEST(read_relock_of_reader_preferring_rwlock_is_not_reported)
{
	sync_rwlock_t l;
	sync_rwlock_init(&l, SYNC_RWLOCK_PREFER_READER);
	start_checking();
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	ck_assert_int_eq(sync_rwlock_rdunlock(&l), 0);
	stop_checking();
	expect_no_report();
}
END_TEST

static void *unlock_spinlock(void *arg)
{
	sync_spinlock_unlock(arg);
	return (void *)(intptr_t)thread_id();
}

START_TEST(unlock_by_another_thread_than_the_locker_is_reported)
{
	sync_spinlock_t l = SYNC_SPINLOCK_INITIALIZER;
	start_checking();
	sync_spinlock_lock(&l);
	pthread_t t;
	void *tid;
	ck_assert_int_eq(pthread_create(&t, NULL, unlock_spinlock, &l), 0);
	ck_assert_int_eq(pthread_join(t, &tid), 0);
	stop_checking();
	const char *s = captured();
	expect_in(s, "libsync: SYNC_CHECK: thread %d unlocks, not holding it, spinlock %p\n",
		  (int)(intptr_t)tid, (void *)&l);
	ck_assert_int_eq(count(s, "libsync: "), 1);
}
END_TEST

#define MANY_LOCKS 80 /* more than a thread's tracked holds (64) */

START_TEST(more_locks_held_than_tracked_give_no_false_report)
{
	static sync_mutex_t m[MANY_LOCKS];
	for (int i = 0; i < MANY_LOCKS; i++)
		sync_mutex_init(&m[i], 0);
	start_checking();
	for (int i = 0; i < MANY_LOCKS; i++)
		ck_assert_int_eq(sync_mutex_lock(&m[i]), 0);
	for (int i = 0; i < MANY_LOCKS; i++) /* first taken, first released */
		ck_assert_int_eq(sync_mutex_unlock(&m[i]), 0);
	for (int i = 0; i < MANY_LOCKS; i++)
		ck_assert_int_eq(sync_mutex_lock(&m[i]), 0);
	for (int i = MANY_LOCKS; i-- > 0;)
		ck_assert_int_eq(sync_mutex_unlock(&m[i]), 0);
	stop_checking();
	expect_no_report();
}
END_TEST

static atomic_int step;

/* Locks m, unlocks it at step 2, exits at step 4. */
static void *hold_across_switches(void *arg)
{
	ck_assert_int_eq(sync_mutex_lock(arg), 0);
	atomic_store(&step, 1);
	ck_assert(wait_until_equal(&step, 2));
	ck_assert_int_eq(sync_mutex_unlock(arg), 0);
	atomic_store(&step, 3);
	ck_assert(wait_until_equal(&step, 4));
	return NULL;
}

START_TEST(lock_released_while_checking_was_off_is_not_reported_at_exit)
{
	sync_mutex_t m;
	sync_mutex_init(&m, 0);
	start_checking();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, hold_across_switches, &m), 0);
	ck_assert(wait_until_equal(&step, 1));
	ck_assert_int_eq(sync_check_set(""), 0);
	atomic_store(&step, 2); /* it unlocks m, unseen */
	ck_assert(wait_until_equal(&step, 3));
	ck_assert_int_eq(sync_check_set("deadlock"), 0);
	atomic_store(&step, 4); /* it exits, holding nothing */
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	stop_checking();
	expect_no_report();
}
END_TEST

static void *lock_and_return(void *arg)
{
	ck_assert_int_eq(sync_mutex_lock(arg), 0);
	return (void *)(intptr_t)thread_id();
}

START_TEST(thread_exiting_while_holding_a_lock_is_reported)
{
	sync_mutex_t m;
	sync_mutex_init(&m, 0);
	start_checking();
	pthread_t t;
	void *tid;
	ck_assert_int_eq(pthread_create(&t, NULL, lock_and_return, &m), 0);
	ck_assert_int_eq(pthread_join(t, &tid), 0);
	stop_checking();
	expect_in(captured(), "libsync: SYNC_CHECK: thread %d exits holding 1 lock:\n"
			      "  mutex %p\n"
			      "  they stay locked: a thread that takes one waits for ever\n",
		  (int)(intptr_t)tid, (void *)&m);
}
END_TEST

START_TEST(thread_exiting_while_holding_a_robust_mutex_is_not_reported)
{
	sync_mutex_t m;
	ck_assert_int_eq(sync_mutex_init(&m, SYNC_MUTEX_ROBUST), 0);
	start_checking();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, lock_and_return, &m), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(sync_mutex_lock(&m), EOWNERDEAD); /* its recovery path */
	ck_assert_int_eq(sync_mutex_consistent(&m), 0);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	stop_checking();
	expect_no_report();
}
END_TEST

START_TEST(destroy_of_held_lock_is_reported_and_returns_ebusy)
{
	sync_mutex_t m;
	sync_mutex_init(&m, 0);
	start_checking();
	ck_assert_int_eq(sync_mutex_lock(&m), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), EBUSY);
	ck_assert_int_eq(sync_mutex_unlock(&m), 0);
	ck_assert_int_eq(sync_mutex_destroy(&m), 0);
	stop_checking();
	const char *s = captured();
	expect_in(s, "libsync: SYNC_CHECK: thread %d destroys, while holding it, mutex %p\n"
		     "      #0 ", (int)thread_id(), (void *)&m);
	ck_assert_int_eq(count(s, "libsync: "), 1);
}
END_TEST

/* ---- switching it --------------------------------------------------------- */

static int abba_then_exit(void *arg)
{
	sync_mutex_t a, b;
	sync_mutex_init(&a, 0);
	sync_mutex_init(&b, 0);
	if (sync_check_set(arg) != 0)
		return 2;
	nest_mutexes(&a, &b);
	nest_mutexes(&b, &a);
	fprintf(stderr, "returned\n");
	return 0;
}

START_TEST(deadlock_abort_aborts_after_the_report)
{
	int status = run_child_capturing_stderr(abba_then_exit, "deadlock,abort", text,
						sizeof text);
	ck_assert_msg(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "status %#x, stderr:\n%s", (unsigned)status, text);
	const char *report = expect_in(text, INVERSION);
	const char *last = expect_in(text, "  if these run at once, each thread waits for the "
					   "other for ever\nlibsync: SYNC_CHECK=deadlock,abort: "
					   "aborting\n");
	assert_before(report, last);
	ck_assert_ptr_null(strstr(text, "returned"));
}
END_TEST

START_TEST(deadlock_without_abort_reports_and_returns)
{
	int status = run_child_capturing_stderr(abba_then_exit, "deadlock", text, sizeof text);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "status %#x, stderr:\n%s", (unsigned)status, text);
	expect_in(text, INVERSION);
	expect_in(text, "returned\n");
	ck_assert_ptr_null(strstr(text, "aborting"));
}
END_TEST

/* Each bad spec: EINVAL, errno as it was. */
static void bad_specs_change_nothing(void)
{
	static const char *const bad[] = { NULL, "bogus", "abort", "deadlock,bogus",
					   "abort,bogus", "Deadlock", "deadlock;abort" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		errno = 4242;
		ck_assert_msg(sync_check_set(bad[i]) == EINVAL, "spec %s", bad[i] ? bad[i] : "NULL");
		ck_assert_int_eq(errno, 4242);
	}
}

static void abba(void)
{
	sync_mutex_t a, b;
	sync_mutex_init(&a, 0);
	sync_mutex_init(&b, 0);
	nest_mutexes(&a, &b);
	nest_mutexes(&b, &a);
	sync_mutex_destroy(&a);
	sync_mutex_destroy(&b);
}

START_TEST(bad_spec_returns_einval_and_leaves_checking_off)
{
	capture_stderr();
	ck_assert_int_eq(sync_check_set(""), 0);
	bad_specs_change_nothing();
	abba();
	expect_no_report();
}
END_TEST

START_TEST(bad_spec_returns_einval_and_leaves_checking_on_without_abort)
{
	start_checking();
	bad_specs_change_nothing();
	abba(); /* reported, and "abort" alone did not make it abort */
	stop_checking();
	ck_assert_int_eq(count(captured(), INVERSION), 1);
}
END_TEST

START_TEST(good_spec_leaves_errno_alone)
{
	static const char *const good[] = { "deadlock", "deadlock,abort", "abort,deadlock",
					    "deadlock,", "" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		errno = 4242;
		ck_assert_msg(sync_check_set(good[i]) == 0, "spec \"%s\"", good[i]);
		ck_assert_int_eq(errno, 4242);
	}
}
END_TEST

START_TEST(empty_spec_turns_checking_off)
{
	start_checking();
	ck_assert_int_eq(sync_check_set(""), 0);
	abba();
	expect_no_report();
}
END_TEST

/* ---- the profiler: workloads run by this program again ------------------ */

#define WAITERS 3
#define HOLDER_NS (50 * NS_PER_MS)
#define WAITER_HOLD_NS (10 * NS_PER_MS)
#define POST_AFTER_NS (20 * NS_PER_MS)

static sync_mutex_t hot = SYNC_MUTEX_INITIALIZER;

struct waiter {
	pid_t tid;
	int64_t waited, held;
};

static atomic_int started;

static void *hot_waiter(void *arg)
{
	struct waiter *w = arg;
	w->tid = thread_id();
	atomic_fetch_add(&started, 1);
	int64_t t0 = now_ns();
	sync_mutex_lock(&hot);
	int64_t t1 = now_ns();
	sleep_ns(WAITER_HOLD_NS);
	int64_t t2 = now_ns();
	sync_mutex_unlock(&hot);
	w->waited = t1 - t0;
	w->held = t2 - t1;
	return NULL;
}

/* One thread holds `hot` for HOLDER_NS after WAITERS others fell asleep
 * waiting for it; each then holds it WAITER_HOLD_NS. Prints the address,
 * the waits and holds the waiters measured themselves, and the table. */
static int hot_mutex_workload(void)
{
	pthread_t t[WAITERS];
	struct waiter w[WAITERS] = { { 0, 0, 0 } };
	sync_mutex_lock(&hot);
	for (int i = 0; i < WAITERS; i++)
		if (pthread_create(&t[i], NULL, hot_waiter, &w[i]) != 0)
			return 2;
	if (!wait_until_equal(&started, WAITERS))
		return 3;
	for (int i = 0; i < WAITERS; i++)
		if (!wait_until_asleep(w[i].tid))
			return 4;
	sleep_ns(HOLDER_NS);
	sync_mutex_unlock(&hot);
	int64_t waited = 0, wait_max = 0, held = 0;
	for (int i = 0; i < WAITERS; i++) {
		pthread_join(t[i], NULL);
		waited += w[i].waited;
		held += w[i].held;
		wait_max = w[i].waited > wait_max ? w[i].waited : wait_max;
	}
	printf("object %p waited %" PRId64 " max %" PRId64 " held %" PRId64 "\n",
	       (void *)&hot, waited, wait_max, held);
	fflush(stdout);
	sync_profile_print(STDOUT_FILENO);
	return 0;
}

static sync_sem_t sem;
static sync_mutex_t cond_mutex = SYNC_MUTEX_INITIALIZER;
static sync_cond_t cond = SYNC_COND_INITIALIZER;
static int cond_ready;

/* arg: the waiter's thread id. Each hand-off comes POST_AFTER_NS after
 * the last, and not before the waiter sleeps (a loaded machine may run
 * it late), so that both its waits block. */
static void *post_later(void *arg)
{
	pid_t waiter = *(pid_t *)arg;
	sleep_ns(POST_AFTER_NS);
	wait_until_asleep(waiter);
	sync_sem_post(&sem);
	sleep_ns(POST_AFTER_NS);
	wait_until_asleep(waiter);
	sync_mutex_lock(&cond_mutex);
	cond_ready = 1;
	sync_mutex_unlock(&cond_mutex);
	/* after the unlock: the waiter, woken, finds the mutex free, so that its
	 * wait is the cond wait alone, even if this thread is preempted here */
	sync_cond_signal(&cond);
	return arg;
}

/* Waits POST_AFTER_NS for a semaphore, then as long for a condition;
 * prints the addresses and the waits as measured here, and the table. */
static int sem_and_cond_workload(void)
{
	pthread_t t;
	pid_t self = thread_id();
	sync_sem_init(&sem, 0, 0);
	if (pthread_create(&t, NULL, post_later, &self) != 0)
		return 2;
	int64_t t0 = now_ns();
	sync_sem_wait(&sem);
	int64_t t1 = now_ns();
	sync_mutex_lock(&cond_mutex);
	while (!cond_ready)
		sync_cond_wait(&cond, &cond_mutex);
	sync_mutex_unlock(&cond_mutex);
	int64_t t2 = now_ns();
	pthread_join(t, NULL);
	printf("sem %p waited %" PRId64 "\ncond %p waited %" PRId64 "\n", (void *)&sem,
	       t1 - t0, (void *)&cond, t2 - t1);
	fflush(stdout);
	sync_profile_print(STDOUT_FILENO);
	return 0;
}

/* Posts once the thread whose id arg points to sleeps in its wait, so
 * that the wait blocks however late that thread gets there. */
static void *post_to_sleeper(void *arg)
{
	wait_until_asleep(*(pid_t *)arg);
	sync_sem_post(&sem);
	return NULL;
}

/* Something to profile: one semaphore wait that blocks (on a loaded
 * machine a poster that only slept first could post before the wait). */
static void wait_once(void)
{
	pthread_t t;
	pid_t self = thread_id();
	sync_sem_init(&sem, 0, 0);
	pthread_create(&t, NULL, post_to_sleeper, &self);
	sync_sem_wait(&sem);
	pthread_join(t, NULL);
}

static int run_workload(const char *name)
{
	if (!strcmp(name, "hot_mutex"))
		return hot_mutex_workload();
	if (!strcmp(name, "sem_and_cond"))
		return sem_and_cond_workload();
	if (!strcmp(name, "exit")) {
		wait_once();
		fprintf(stderr, "exiting\n");
		return 0; /* exit(): the table follows */
	}
	if (!strcmp(name, "sigusr2")) {
		wait_once();
		fprintf(stderr, "raising\n");
		raise(SIGUSR2);
		fprintf(stderr, "raised\n");
		_exit(0); /* no atexit table */
	}
	if (!strcmp(name, "print")) {
		sync_profile_print(STDOUT_FILENO);
		_exit(0);
	}
	return 99;
}

static char out[REPORT_MAX], err[REPORT_MAX];

/* Reads all of fd (a file) into buf. */
static void slurp(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

/* Runs this program again on the named workload, with SYNC_PROFILE set to
 * `profile` (NULL: unset); its stdout into out, stderr into err. Returns its
 * exit status, -1 if it crashed or hung. */
static int run_profiled(const char *workload, const char *profile)
{
	FILE *o = tmpfile(), *e = tmpfile();
	ck_assert(o && e);
	int ofd = dup(fileno(o)), efd = dup(fileno(e));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fileno(o), STDOUT_FILENO);
		dup2(fileno(e), STDERR_FILENO);
		setenv("DEBUG_TEST_WORKLOAD", workload, 1);
		if (profile)
			setenv("SYNC_PROFILE", profile, 1);
		else
			unsetenv("SYNC_PROFILE");
		unsetenv("SYNC_CHECK");
		execl("/proc/self/exe", "debug", (char *)NULL);
		_exit(127);
	}
	fclose(o);
	fclose(e);
	int status = child_status(pid);
	slurp(ofd, out, sizeof out);
	slurp(efd, err, sizeof err);
	return status;
}

struct row {
	unsigned long long acquired, contended, wait_total, wait_max, hold_total, hold_max;
};

/* The table row of object p (kind as printed); fails the test if none. */
static struct row row_of(const char *table, const char *kind, void *p)
{
	char head[64];
	snprintf(head, sizeof head, "  %-9s%p\n", kind, p);
	const char *at = strstr(table, head);
	ck_assert_msg(at != NULL, "no row \"%s\" in:\n%s", head, table);
	struct row r;
	ck_assert_int_eq(sscanf(at + strlen(head), "%llu %llu %llu %llu %llu %llu", &r.acquired,
				&r.contended, &r.wait_total, &r.wait_max, &r.hold_total,
				&r.hold_max), 6);
	return r;
}

#define TABLE_HEAD "libsync: SYNC_PROFILE: pid "
#define COLUMNS "         acquired   contended     wait-total     wait-max     hold-total     hold-max\n"

/* A profiled time in us, against what the test measured in ns: at most that
 * (the profiler's interval lies inside the test's), at least 95% of it. */
/* The profiled wait lies inside the test's own interval, and misses at
 * most 5% of it, or 3 ms for a short one (the test's interval also holds
 * the waiter's way into and out of the wait, which a loaded machine can
 * preempt: a 20 ms cond wait was once profiled 1.1 ms short in make check). */
#define MISS_MAX_NS (3 * NS_PER_MS)

static void expect_inside(const char *what, unsigned long long us, int64_t measured_ns)
{
	unsigned long long m = (unsigned long long)measured_ns;
	unsigned long long miss = m / 100 * 5 > MISS_MAX_NS ? m / 100 * 5 : MISS_MAX_NS;
	ck_assert_msg(us * 1000 <= m && us * 1000 + miss >= m,
		      "%s: profiled %llu us, measured %" PRId64 " ns\n%s", what, us, measured_ns, out);
}

START_TEST(profile_of_held_mutex_counts_each_waiter_and_its_wait)
{
	ck_assert_msg(run_profiled("hot_mutex", "1") == 0, "stdout:\n%s\nstderr:\n%s", out, err);
	void *obj;
	long long waited, wait_max, held;
	ck_assert_int_eq(sscanf(out, "object %p waited %lld max %lld held %lld", &obj, &waited,
				&wait_max, &held), 4);
	struct row r = row_of(out, "mutex", obj);
	ck_assert_int_eq(r.contended, WAITERS);
	ck_assert_int_eq(r.acquired, WAITERS); /* since its first contention */
	ck_assert_int_ge(waited, WAITERS * HOLDER_NS);
	expect_inside("wait-total", r.wait_total, waited);
	expect_inside("wait-max", r.wait_max, wait_max);
	/* holds: the profiler's interval encloses the test's */
	ck_assert_msg(r.hold_total * 1000 + 1000 * WAITERS >= (unsigned long long)held &&
			      r.hold_total * 1000 <= (unsigned long long)held / 100 * 105 + NS_PER_MS,
		      "hold-total %llu us, measured %lld ns", r.hold_total, held);
}
END_TEST

START_TEST(profile_lists_semaphore_and_cond_waits_with_their_kinds)
{
	ck_assert_msg(run_profiled("sem_and_cond", "1") == 0, "stdout:\n%s\nstderr:\n%s", out, err);
	void *s, *c;
	long long sem_waited, cond_waited;
	ck_assert_int_eq(sscanf(out, "sem %p waited %lld\ncond %p waited %lld", &s, &sem_waited,
				&c, &cond_waited), 4);
	struct row rs = row_of(out, "sem", s);
	ck_assert_int_eq(rs.acquired, 1);
	ck_assert_int_eq(rs.contended, 1);
	expect_inside("sem wait-total", rs.wait_total, sem_waited);
	struct row rc = row_of(out, "cond", c);
	ck_assert_int_ge(rc.acquired, 1);
	ck_assert_int_eq(rc.hold_total, 0);
	/* the cond wait is most of the test's interval (which also takes the mutex) */
	expect_inside("cond wait-total", rc.wait_total, cond_waited);
}
END_TEST

START_TEST(profile_print_writes_the_table_on_request)
{
	ck_assert_int_eq(run_profiled("hot_mutex", "1"), 0);
	const char *head = expect_in(out, TABLE_HEAD);
	expect_in(head, " objects waited for, by total wait (times in us)\n"
			"  #  kind     object\n" COLUMNS "  1  mutex    0x");
	expect_in(head, "       first waited for at:\n");
}
END_TEST

START_TEST(profile_table_is_printed_at_exit)
{
	ck_assert_int_eq(run_profiled("exit", "1"), 0);
	const char *exiting = expect_in(err, "exiting\n");
	const char *head = expect_in(exiting, TABLE_HEAD);
	expect_in(head, "  1  sem      0x");
	ck_assert_ptr_null(strstr(out, TABLE_HEAD));
}
END_TEST

START_TEST(profile_table_is_printed_on_sigusr2)
{
	ck_assert_int_eq(run_profiled("sigusr2", "1"), 0);
	const char *raising = expect_in(err, "raising\n");
	const char *head = expect_in(raising, TABLE_HEAD);
	expect_in(head, "  1  sem      0x");
	expect_in(head, "raised\n");
	ck_assert_int_eq(count(err, TABLE_HEAD), 1);
}
END_TEST

START_TEST(profile_print_says_so_when_profiling_is_off)
{
	ck_assert_int_eq(run_profiled("print", NULL), 0);
	ck_assert_str_eq(out, "libsync: SYNC_PROFILE is off (run with SYNC_PROFILE=1)\n");
	ck_assert_int_eq(run_profiled("print", "0"), 0);
	ck_assert_str_eq(out, "libsync: SYNC_PROFILE is off (run with SYNC_PROFILE=1)\n");
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(profile_not_understood_stays_off)
{
	ck_assert_int_eq(run_profiled("print", "yes"), 0);
	ck_assert_str_eq(out, "libsync: SYNC_PROFILE is off (run with SYNC_PROFILE=1)\n");
	ck_assert_str_eq(err, "libsync: SYNC_PROFILE=yes: not understood (1 turns it on); "
			      "profiling stays off\n");
}
END_TEST

static Suite *suite(void)
{
	const char *workload = getenv("DEBUG_TEST_WORKLOAD");
	if (workload) /* run again by a profiler test: no tests here */
		exit(run_workload(workload));

	Suite *s = suite_create("debug");
	TCase *tc = tcase_create("order");
	tcase_add_test(tc, naive_dining_philosophers_report_the_cycle_on_the_first_run);
	tcase_add_test(tc, ordered_dining_philosophers_are_not_reported);
	tcase_add_test(tc, cycle_of_three_locks_is_reported_with_each_edge);
	tcase_add_test(tc, read_then_mutex_against_mutex_then_write_is_reported);
	tcase_add_test(tc, read_read_on_reader_preferring_rwlock_is_not_reported);
	tcase_add_test(tc, read_read_on_writer_preferring_rwlock_is_reported);
	tcase_add_test(tc, mutex_and_spinlock_in_both_orders_are_reported);
	tcase_add_test(tc, mutex_and_ticketlock_in_both_orders_are_reported);
	tcase_add_test(tc, mutex_and_mcslock_in_both_orders_are_reported);
	tcase_add_test(tc, try_and_timed_locks_add_no_order);
	tcase_add_test(tc, orders_of_a_destroyed_lock_are_forgotten);
	suite_add_tcase(s, tc);

	tc = tcase_create("misuse");
	tcase_add_test(tc, relock_of_normal_mutex_is_reported_before_it_hangs);
	tcase_add_test(tc, relock_of_spinlock_is_reported_before_it_hangs);
	tcase_add_test(tc, write_lock_of_rwlock_read_held_by_caller_is_reported_before_it_hangs);
	tcase_add_test(tc, relock_of_errorcheck_mutex_returns_edeadlk_unreported);
	tcase_add_test(tc, read_relock_of_writer_preferring_rwlock_is_reported);
	tcase_add_test(tc, read_relock_of_reader_preferring_rwlock_is_not_reported);
	tcase_add_test(tc, unlock_of_lock_not_held_is_reported);
	tcase_add_test(tc, unlock_by_another_thread_than_the_locker_is_reported);
	tcase_add_test(tc, thread_exiting_while_holding_a_lock_is_reported);
	tcase_add_test(tc, thread_exiting_while_holding_a_robust_mutex_is_not_reported);
	tcase_add_test(tc, destroy_of_held_lock_is_reported_and_returns_ebusy);
	tcase_add_test(tc, more_locks_held_than_tracked_give_no_false_report);
	tcase_add_test(tc, lock_released_while_checking_was_off_is_not_reported_at_exit);
	suite_add_tcase(s, tc);

	tc = tcase_create("switch");
	tcase_add_test(tc, deadlock_abort_aborts_after_the_report);
	tcase_add_test(tc, deadlock_without_abort_reports_and_returns);
	tcase_add_test(tc, bad_spec_returns_einval_and_leaves_checking_off);
	tcase_add_test(tc, bad_spec_returns_einval_and_leaves_checking_on_without_abort);
	tcase_add_test(tc, good_spec_leaves_errno_alone);
	tcase_add_test(tc, empty_spec_turns_checking_off);
	suite_add_tcase(s, tc);

	tc = tcase_create("profile");
	tcase_add_test(tc, profile_of_held_mutex_counts_each_waiter_and_its_wait);
	tcase_add_test(tc, profile_lists_semaphore_and_cond_waits_with_their_kinds);
	tcase_add_test(tc, profile_print_writes_the_table_on_request);
	tcase_add_test(tc, profile_table_is_printed_at_exit);
	tcase_add_test(tc, profile_table_is_printed_on_sigusr2);
	tcase_add_test(tc, profile_print_says_so_when_profiling_is_off);
	tcase_add_test(tc, profile_not_understood_stays_off);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	return s;
}
