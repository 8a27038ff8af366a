/* Waiters that vanish: SIGKILLed processes waiting on SYNC_PSHARED mutex,
 * rwlock, sem and cond objects, and threads waiting on private ones when
 * another thread forks, must never leave the object unusable (API.md, mutex:
 * "A process or thread that dies while WAITING ..."; issue 10, points 3a-c).
 *
 * Each pshared test runs rounds: the parent holds the object (sem: value 0;
 * cond: no signal), forks 1-3 waiter children, lets a random moment pass
 * (0-400 us, so that some spin, some register, some sleep in the kernel),
 * SIGKILLs some of them, reaps them, and only then releases the object, so
 * that a killed child never held it. It then checks that the survivors get
 * through and that a fresh waiter, asleep behind the parent, is let in by
 * the release. Every wait is timed or watched, so a bug fails the test
 * instead of hanging it; failures name the object, the round and the check.
 * PSHARED_DEATH_SEED=n replays a seed; PSHARED_DEATH_KILLS=n changes the
 * number of kills per test. */
#define _GNU_SOURCE /* kill, mmap, pthread_atfork under strict -std modes */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

#define MAX_WAITERS 4
/* Kills per test; the six pshared tests together kill 1,020 waiters. */
#define KILLS_PER_TEST 170
/* A waiter's own deadline: shorter than child_status's WAIT_LIMIT_NS, so that
 * a waiter left asleep reports its timeout before the parent gives up. */
#define WAITER_DEADLINE_NS 1500000000LL
/* Longest random moment between the waiters' arrival and the kills. */
#define KILL_DELAY_MAX_NS 400000LL
/* The single spinner is killed this soon after it starts to lock. */
#define SPINNER_KILL_MAX_NS 8000LL

/* ---- randomness, replayable --------------------------------------------- */

static uint64_t rng_state;
static unsigned rng_seed;

static void seed_rng(void)
{
	const char *env = getenv("PSHARED_DEATH_SEED");
	rng_seed = env ? (unsigned)strtoul(env, NULL, 0)
		       : (unsigned)(now_ns() ^ ((int64_t)getpid() << 16));
	rng_state = rng_seed * 0x9e3779b97f4a7c15ull + 1;
}

/* xorshift64*: uniform enough for choosing moments and victims. */
static uint32_t rng_below(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32) % n;
}

static int kills_per_test(void)
{
	const char *env = getenv("PSHARED_DEATH_KILLS");
	int n = env ? atoi(env) : 0;
	return n > 0 ? n : KILLS_PER_TEST;
}

/* ---- failure messages name the object, the round and the check ---------- */

static const char *what; /* the object under test */
static int round_no;

#define expect(cond, ...)                                                      \
	do {                                                                   \
		char msg_[256];                                                \
		snprintf(msg_, sizeof msg_, __VA_ARGS__);                      \
		ck_assert_msg(cond, "%s, round %d (seed %u): %s", what,       \
			      round_no, rng_seed, msg_);                       \
	} while (0)

/* Exit codes of a waiter child; anything else is a crash or a hang. */
enum {
	WAITED = 0,
	WAIT_TIMED_OUT = 3,
	WAIT_FAILED = 4,
	RELEASE_FAILED = 5,
};

static const char *describe(int status)
{
	switch (status) {
	case WAITED:
		return "got through";
	case WAIT_TIMED_OUT:
		return "its wait timed out (never woken)";
	case WAIT_FAILED:
		return "its wait returned an error";
	case RELEASE_FAILED:
		return "its release returned an error";
	case -1:
		return "hung or crashed (killed after 2 s)";
	default:
		return "exited with an unexpected code";
	}
}

/* ---- the shared objects and the waiter children ------------------------- */

struct shared {
	sync_mutex_t mutex;
	sync_rwlock_t rwlock;
	sync_sem_t sem;
	sync_cond_t cond;
	sync_mutex_t cond_mutex;
	sync_mutex_t control; /* never sees a killed waiter */
	int generation; /* under cond_mutex; the cond waiters' predicate */
	_Atomic int64_t locked_at; /* now_ns() of a mutex waiter's acquisition */
	atomic_int arrived[MAX_WAITERS]; /* set by a waiter just before its wait */
};

static struct shared *new_shared(void)
{
	struct shared *sh = map_shared(sizeof *sh);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(sync_mutex_init(&sh->mutex, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_rwlock_init(&sh->rwlock, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_sem_init(&sh->sem, 0, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_cond_init(&sh->cond, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_init(&sh->cond_mutex, SYNC_PSHARED), 0);
	ck_assert_int_eq(sync_mutex_init(&sh->control, SYNC_PSHARED), 0);
	return sh;
}

enum op {
	MUTEX_LOCK,
	MUTEX_TIMEDLOCK,
	RDLOCK,
	TIMEDRDLOCK,
	WRLOCK,
	TIMEDWRLOCK,
	SEM_WAIT,
	SEM_TIMEDWAIT,
	COND_WAIT,
	COND_TIMEDWAIT,
};

struct waiter {
	struct shared *sh;
	enum op op;
	int slot; /* its arrived[] flag */
	sync_mutex_t *mutex; /* for the mutex ops */
};

static int exit_code(int r)
{
	if (r == ETIMEDOUT)
		return WAIT_TIMED_OUT;
	return r ? WAIT_FAILED : WAITED;
}

static int wait_mutex(struct waiter *w, const struct timespec *d)
{
	sync_mutex_t *m = w->mutex;
	atomic_store(&w->sh->arrived[w->slot], 1);
	int r = w->op == MUTEX_LOCK ? sync_mutex_lock(m) : sync_mutex_timedlock(m, d);
	if (r)
		return exit_code(r);
	atomic_store(&w->sh->locked_at, now_ns());
	return sync_mutex_unlock(m) ? RELEASE_FAILED : WAITED;
}

static int wait_rwlock(struct waiter *w, const struct timespec *d)
{
	sync_rwlock_t *l = &w->sh->rwlock;
	bool reads = w->op == RDLOCK || w->op == TIMEDRDLOCK;
	atomic_store(&w->sh->arrived[w->slot], 1);
	int r;
	switch (w->op) {
	case RDLOCK:
		r = sync_rwlock_rdlock(l);
		break;
	case TIMEDRDLOCK:
		r = sync_rwlock_timedrdlock(l, d);
		break;
	case WRLOCK:
		r = sync_rwlock_wrlock(l);
		break;
	default:
		r = sync_rwlock_timedwrlock(l, d);
		break;
	}
	if (r)
		return exit_code(r);
	r = reads ? sync_rwlock_rdunlock(l) : sync_rwlock_wrunlock(l);
	return r ? RELEASE_FAILED : WAITED;
}

static int wait_sem(struct waiter *w, const struct timespec *d)
{
	atomic_store(&w->sh->arrived[w->slot], 1);
	int r = w->op == SEM_WAIT ? sync_sem_wait(&w->sh->sem)
				  : sync_sem_timedwait(&w->sh->sem, d);
	return exit_code(r);
}

/* Waits until the parent bumps the generation. The arrival is flagged under
 * the mutex: once the parent holds the mutex after seeing the flag, this
 * child is inside the cond wait (the wait's unlock is its only release). */
static int wait_cond(struct waiter *w, const struct timespec *d)
{
	struct shared *sh = w->sh;
	int r = sync_mutex_timedlock(&sh->cond_mutex, d);
	if (r)
		return exit_code(r);
	int generation = sh->generation;
	atomic_store(&sh->arrived[w->slot], 1);
	while (!r && sh->generation == generation)
		r = w->op == COND_WAIT ? sync_cond_wait(&sh->cond, &sh->cond_mutex)
				       : sync_cond_timedwait(&sh->cond, &sh->cond_mutex, d);
	if (sync_mutex_unlock(&sh->cond_mutex))
		return RELEASE_FAILED;
	return exit_code(r);
}

static int waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct timespec d = sync_deadline((uint64_t)WAITER_DEADLINE_NS);
	switch (w->op) {
	case MUTEX_LOCK:
	case MUTEX_TIMEDLOCK:
		return wait_mutex(w, &d);
	case RDLOCK:
	case TIMEDRDLOCK:
	case WRLOCK:
	case TIMEDWRLOCK:
		return wait_rwlock(w, &d);
	case SEM_WAIT:
	case SEM_TIMEDWAIT:
		return wait_sem(w, &d);
	default:
		return wait_cond(w, &d);
	}
}

/* ---- the parent's side of a round --------------------------------------- */

struct round {
	int n;
	pid_t pid[MAX_WAITERS];
	enum op op[MAX_WAITERS];
	bool killed[MAX_WAITERS];
};

/* Forks a waiter for slot i with op (on m, for the mutex ops), and returns
 * once it is about to wait. */
static void start_waiter_on(struct shared *sh, sync_mutex_t *m, struct round *rd,
			    int i, enum op op)
{
	struct waiter w = { sh, op, i, m };
	atomic_store(&sh->arrived[i], 0);
	rd->op[i] = op;
	rd->killed[i] = false;
	rd->pid[i] = fork_running(waiter_main, &w);
	expect(rd->pid[i] > 0, "fork failed");
	int64_t start = now_ns();
	/* a tight poll first: the killed spinner must be caught within
	 * microseconds of its arrival */
	for (long polls = 0; !atomic_load(&sh->arrived[i]); polls++) {
		expect(now_ns() - start < WAIT_LIMIT_NS, "waiter %d never arrived", i);
		if (polls > 100000)
			sched_yield();
	}
	if (i >= rd->n)
		rd->n = i + 1;
}

static void start_waiter(struct shared *sh, struct round *rd, int i, enum op op)
{
	start_waiter_on(sh, &sh->mutex, rd, i, op);
}

static void spin_for(int64_t ns)
{
	int64_t end = now_ns() + ns;
	while (now_ns() < end)
		;
}

/* A random moment: a quarter within 5 us, a quarter within 50 us, the rest
 * up to KILL_DELAY_MAX_NS. */
static void random_moment(void)
{
	uint32_t bucket = rng_below(4);
	int64_t max = bucket == 0 ? 5000 : bucket == 1 ? 50000 : KILL_DELAY_MAX_NS;
	spin_for(rng_below((uint32_t)max));
}

/* State letter of /proc/<pid>/stat, or 0 if it cannot be read. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Returns once the single-threaded child, which flagged its arrival, sleeps
 * in the kernel (true: in its wait, the only place it can sleep), or has
 * exited, or after WAIT_LIMIT_NS; the check that follows is then merely
 * weaker. */
static bool let_it_fall_asleep(pid_t pid)
{
	int64_t start = now_ns();
	for (;;) {
		char s = proc_state(pid);
		if (s == 'S')
			return true;
		if (s == 'Z' || s == 'X' || s == 0 || now_ns() - start > WAIT_LIMIT_NS)
			return false;
		sleep_ns(20000);
	}
}

/* SIGKILLs waiter i and reaps it: it must have died of the signal (the
 * parent still holds the object, so it cannot have got through). */
static void kill_waiter(struct round *rd, int i)
{
	int status = 0;
	expect(kill(rd->pid[i], SIGKILL) == 0, "kill failed");
	expect(waitpid(rd->pid[i], &status, 0) == rd->pid[i], "waitpid failed");
	expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	       "waiter %d returned from its wait while the parent still held "
	       "the object (exit %d)",
	       i, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	rd->killed[i] = true;
}

/* Kills a random non-empty subset of the waiters; returns how many. */
static int kill_some(struct round *rd)
{
	uint32_t mask = 1 + rng_below((1u << rd->n) - 1);
	int kills = 0;
	/* last started first: a reader started behind waiting writers may be
	 * let in beside the parent's read hold as soon as those writers are
	 * killed, so it must be killed before them (killed after, it was once
	 * seen to get through first and exit 0) */
	for (int i = rd->n; i-- > 0;) {
		if (mask & (1u << i)) {
			kill_waiter(rd, i);
			kills++;
		}
	}
	return kills;
}

static int survivors(const struct round *rd)
{
	int n = 0;
	for (int i = 0; i < rd->n; i++)
		n += !rd->killed[i];
	return n;
}

/* After the release: every waiter not killed gets through. */
static void expect_survivors_get_through(struct round *rd)
{
	for (int i = 0; i < rd->n; i++) {
		if (rd->killed[i])
			continue;
		int status = child_status(rd->pid[i]);
		expect(status == WAITED, "check (i): surviving waiter %d (op %d) "
		       "after the release: %s (status %d)",
		       i, (int)rd->op[i], describe(status), status);
	}
}

/* Starts one fresh waiter with op and lets it fall asleep behind the
 * parent; release() then must let it through. */
static pid_t start_fresh_waiter(struct shared *sh, enum op op)
{
	struct round rd = { 0 };
	start_waiter(sh, &rd, 0, op);
	let_it_fall_asleep(rd.pid[0]);
	return rd.pid[0];
}

static void expect_fresh_waiter_gets_through(pid_t pid, const char *check)
{
	int status = child_status(pid);
	expect(status == WAITED, "check (ii) %s: fresh waiter %s (status %d)",
	       check, describe(status), status);
}

/* ---- mutex -------------------------------------------------------------- */

static void expect_mutex_usable(struct shared *sh)
{
	struct timespec d = sync_deadline((uint64_t)WAITER_DEADLINE_NS);
	expect(sync_mutex_timedlock(&sh->mutex, &d) == 0,
	       "check (ii): the parent cannot lock the free mutex");
	pid_t pid = start_fresh_waiter(sh, MUTEX_TIMEDLOCK);
	expect(sync_mutex_unlock(&sh->mutex) == 0, "check (ii): unlock failed");
	expect_fresh_waiter_gets_through(pid, "mutex: a locker asleep behind the "
					      "parent is woken by its unlock");
	expect(sync_mutex_trylock(&sh->mutex) == 0, "check (ii): trylock of the free mutex");
	expect(sync_mutex_unlock(&sh->mutex) == 0, "check (ii): unlock failed");
}

static int mutex_round(struct shared *sh)
{
	struct round rd = { 0 };
	expect(sync_mutex_lock(&sh->mutex) == 0, "parent lock failed");
	int n = 1 + (int)rng_below(3);
	for (int i = 0; i < n; i++)
		start_waiter(sh, &rd, i, rng_below(2) ? MUTEX_LOCK : MUTEX_TIMEDLOCK);
	random_moment();
	int kills = kill_some(&rd);
	expect(sync_mutex_unlock(&sh->mutex) == 0, "parent unlock failed");
	expect_survivors_get_through(&rd);
	expect_mutex_usable(sh);
	return kills;
}

/* The child that starts to lock a held mutex becomes its single spinner
 * (for some microseconds); it is killed then. Half the rounds have a
 * sleeper behind it, which the unlock must still wake. */
static int spinner_round(struct shared *sh)
{
	struct round rd = { 0 };
	expect(sync_mutex_lock(&sh->mutex) == 0, "parent lock failed");
	int spinner = 0;
	if (rng_below(2)) {
		start_waiter(sh, &rd, 0, MUTEX_TIMEDLOCK);
		let_it_fall_asleep(rd.pid[0]);
		spinner = 1;
	}
	start_waiter(sh, &rd, spinner, rng_below(2) ? MUTEX_LOCK : MUTEX_TIMEDLOCK);
	spin_for(rng_below((uint32_t)SPINNER_KILL_MAX_NS));
	kill_waiter(&rd, spinner);
	expect(sync_mutex_unlock(&sh->mutex) == 0, "parent unlock failed");
	expect_survivors_get_through(&rd);
	expect_mutex_usable(sh);
	return 1;
}

/* ---- rwlock ------------------------------------------------------------- */

static void expect_rwlock_usable(struct shared *sh)
{
	sync_rwlock_t *l = &sh->rwlock;
	struct timespec d = sync_deadline((uint64_t)WAITER_DEADLINE_NS);
	expect(sync_rwlock_timedwrlock(l, &d) == 0,
	       "check (ii): the parent cannot write-lock the free rwlock");
	pid_t pid = start_fresh_waiter(sh, TIMEDRDLOCK);
	expect(sync_rwlock_wrunlock(l) == 0, "check (ii): wrunlock failed");
	expect_fresh_waiter_gets_through(pid, "rwlock: a reader asleep behind the "
					      "parent's write hold is let in by wrunlock");
	d = sync_deadline((uint64_t)WAITER_DEADLINE_NS);
	expect(sync_rwlock_timedrdlock(l, &d) == 0,
	       "check (ii): the parent cannot read-lock the free rwlock");
	pid = start_fresh_waiter(sh, TIMEDWRLOCK);
	expect(sync_rwlock_rdunlock(l) == 0, "check (ii): rdunlock failed");
	expect_fresh_waiter_gets_through(pid, "rwlock: a writer asleep behind the "
					      "parent's read hold is let in by rdunlock");
	expect(sync_rwlock_tryrdlock(l) == 0, "check (ii): tryrdlock of the free rwlock");
	expect(sync_rwlock_rdunlock(l) == 0, "check (ii): rdunlock failed");
	expect(sync_rwlock_trywrlock(l) == 0, "check (ii): trywrlock of the free rwlock");
	expect(sync_rwlock_wrunlock(l) == 0, "check (ii): wrunlock failed");
}

static const enum op rwlock_ops[] = { RDLOCK, TIMEDRDLOCK, WRLOCK, TIMEDWRLOCK };

/* Readers and writers wait behind the parent's write hold. */
static int rwlock_write_held_round(struct shared *sh)
{
	struct round rd = { 0 };
	expect(sync_rwlock_wrlock(&sh->rwlock) == 0, "parent wrlock failed");
	int n = 1 + (int)rng_below(3);
	for (int i = 0; i < n; i++)
		start_waiter(sh, &rd, i, rwlock_ops[rng_below(4)]);
	random_moment();
	int kills = kill_some(&rd);
	expect(sync_rwlock_wrunlock(&sh->rwlock) == 0, "parent wrunlock failed");
	expect_survivors_get_through(&rd);
	expect_rwlock_usable(sh);
	return kills;
}

/* Writers wait behind the parent's read hold, readers behind the writers
 * (writer preference). Once every waiting writer is dead, nothing stands
 * between a new reader and the read-held lock. Readers are started only
 * once a writer sleeps, so that none gets in and is killed holding it. */
static int rwlock_read_held_round(struct shared *sh)
{
	struct round rd = { 0 };
	expect(sync_rwlock_rdlock(&sh->rwlock) == 0, "parent rdlock failed");
	int writers = 1 + (int)rng_below(2);
	for (int i = 0; i < writers; i++)
		start_waiter(sh, &rd, i, rng_below(2) ? WRLOCK : TIMEDWRLOCK);
	int readers = (int)rng_below(3);
	if (readers && !let_it_fall_asleep(rd.pid[writers - 1]))
		readers = 0;
	for (int i = writers; i < writers + readers; i++)
		start_waiter(sh, &rd, i, rng_below(2) ? RDLOCK : TIMEDRDLOCK);
	random_moment();
	int kills = kill_some(&rd);
	bool writers_left = false;
	for (int i = 0; i < writers; i++)
		writers_left |= !rd.killed[i];
	if (!writers_left) {
		pid_t pid = start_fresh_waiter(sh, TIMEDRDLOCK);
		expect_fresh_waiter_gets_through(pid, "rwlock: a reader is let in beside "
						      "the parent's read hold once every "
						      "waiting writer was killed");
	}
	expect(sync_rwlock_rdunlock(&sh->rwlock) == 0, "parent rdunlock failed");
	expect_survivors_get_through(&rd);
	expect_rwlock_usable(sh);
	return kills;
}

/* ---- sem ---------------------------------------------------------------- */

static void expect_sem_usable(struct shared *sh)
{
	int v = -1;
	expect(sync_sem_getvalue(&sh->sem, &v) == 0 && v == 0,
	       "check (ii): value %d after the survivors took their units, want 0", v);
	pid_t pid = start_fresh_waiter(sh, SEM_TIMEDWAIT);
	expect(sync_sem_post(&sh->sem) == 0, "check (ii): post failed");
	expect_fresh_waiter_gets_through(pid, "sem: a waiter asleep on the empty "
					      "semaphore is woken by a post");
	expect(sync_sem_post(&sh->sem) == 0, "check (ii): post failed");
	expect(sync_sem_trywait(&sh->sem) == 0, "check (ii): trywait after a post");
	expect(sync_sem_trywait(&sh->sem) == EAGAIN, "check (ii): trywait of an empty sem");
}

static int sem_round(struct shared *sh)
{
	struct round rd = { 0 };
	int n = 1 + (int)rng_below(3);
	for (int i = 0; i < n; i++)
		start_waiter(sh, &rd, i, rng_below(2) ? SEM_WAIT : SEM_TIMEDWAIT);
	random_moment();
	int kills = kill_some(&rd);
	for (int i = survivors(&rd); i > 0; i--)
		expect(sync_sem_post(&sh->sem) == 0, "parent post failed");
	expect_survivors_get_through(&rd);
	expect_sem_usable(sh);
	return kills;
}

/* ---- cond --------------------------------------------------------------- */

/* Under the mutex: bumps the predicate and wakes n waiters, by n signals
 * or by one broadcast. */
static void wake_cond_waiters(struct shared *sh, int n, bool broadcast)
{
	sh->generation++;
	if (broadcast) {
		expect(sync_cond_broadcast(&sh->cond) == 0, "broadcast failed");
		return;
	}
	for (int i = 0; i < n; i++)
		expect(sync_cond_signal(&sh->cond) == 0, "signal failed");
}

static void expect_cond_usable(struct shared *sh)
{
	pid_t pid = start_fresh_waiter(sh, COND_TIMEDWAIT);
	struct timespec d = sync_deadline((uint64_t)WAITER_DEADLINE_NS);
	expect(sync_mutex_timedlock(&sh->cond_mutex, &d) == 0,
	       "check (ii): the parent cannot lock the cond's mutex");
	wake_cond_waiters(sh, 1, false);
	expect(sync_mutex_unlock(&sh->cond_mutex) == 0, "check (ii): unlock failed");
	expect_fresh_waiter_gets_through(pid, "cond: a waiter asleep in the cond "
					      "wait is woken by a signal");
}

/* The waiters flag their arrival under the mutex; once the parent holds it,
 * every one of them is inside the cond wait, so none is killed holding it. */
static int cond_round(struct shared *sh)
{
	struct round rd = { 0 };
	int n = 1 + (int)rng_below(3);
	for (int i = 0; i < n; i++)
		start_waiter(sh, &rd, i, rng_below(2) ? COND_WAIT : COND_TIMEDWAIT);
	expect(sync_mutex_lock(&sh->cond_mutex) == 0, "parent lock failed");
	random_moment();
	int kills = kill_some(&rd);
	wake_cond_waiters(sh, survivors(&rd), rng_below(2));
	expect(sync_mutex_unlock(&sh->cond_mutex) == 0, "parent unlock failed");
	expect_survivors_get_through(&rd);
	expect_cond_usable(sh);
	return kills;
}

/* ---- the pshared tests -------------------------------------------------- */

static void run_rounds(const char *object, int (*round)(struct shared *),
		       struct shared *sh)
{
	seed_rng();
	what = object;
	int kills = 0, target = kills_per_test();
	for (round_no = 1; kills < target; round_no++)
		kills += round(sh);
}

static void expect_destroys(struct shared *sh)
{
	round_no = 0;
	expect(sync_mutex_destroy(&sh->mutex) == 0, "mutex destroy, nobody waiting");
	expect(sync_rwlock_destroy(&sh->rwlock) == 0, "rwlock destroy, nobody waiting");
	expect(sync_sem_destroy(&sh->sem) == 0, "sem destroy, nobody waiting");
	expect(sync_cond_destroy(&sh->cond) == 0, "cond destroy, nobody waiting");
	expect(sync_mutex_destroy(&sh->cond_mutex) == 0,
	       "cond's mutex destroy, nobody waiting");
	munmap(sh, sizeof *sh);
}

static void run_pshared_test(const char *object, int (*round)(struct shared *))
{
	struct shared *sh = new_shared();
	run_rounds(object, round, sh);
	expect_destroys(sh);
}

START_TEST(pshared_mutex_stays_usable_when_waiting_lockers_are_killed)
{
	run_pshared_test("pshared mutex, lock/timedlock waiters", mutex_round);
}
END_TEST

START_TEST(pshared_mutex_stays_usable_when_its_single_spinner_is_killed)
{
	run_pshared_test("pshared mutex, killed spinner", spinner_round);
}
END_TEST

START_TEST(pshared_rwlock_stays_usable_when_waiters_behind_a_writer_are_killed)
{
	run_pshared_test("pshared rwlock, waiters behind a write hold",
			 rwlock_write_held_round);
}
END_TEST

START_TEST(pshared_rwlock_stays_usable_when_writers_waiting_behind_readers_are_killed)
{
	run_pshared_test("pshared rwlock, writers (and readers) behind a read hold",
			 rwlock_read_held_round);
}
END_TEST

START_TEST(pshared_sem_stays_usable_when_waiters_are_killed)
{
	run_pshared_test("pshared sem, wait/timedwait waiters", sem_round);
}
END_TEST

START_TEST(pshared_cond_stays_usable_when_waiters_are_killed)
{
	run_pshared_test("pshared cond, wait/timedwait waiters", cond_round);
}
END_TEST

/* ---- a killed spinner must not cost the next sleepers their wake-up ----- */

#define HANDOFF_TRIALS 9
#define SPINNER_KILLS 10

/* Time from the parent's unlock of m to the acquisition by a child that
 * slept behind it. */
static int64_t handoff_ns(struct shared *sh, sync_mutex_t *m)
{
	struct round rd = { 0 };
	expect(sync_mutex_lock(m) == 0, "parent lock failed");
	start_waiter_on(sh, m, &rd, 0, MUTEX_TIMEDLOCK);
	let_it_fall_asleep(rd.pid[0]);
	int64_t unlocked_at = now_ns();
	expect(sync_mutex_unlock(m) == 0, "parent unlock failed");
	expect_survivors_get_through(&rd);
	return atomic_load(&sh->locked_at) - unlocked_at;
}

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t median(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, by_value);
	return v[n / 2];
}

/* A sleeper that no unlock wakes still gets the lock at its own periodic
 * second look (pshared futex waits look again every few milliseconds), so
 * usability alone cannot tell. The unlock must wake it: its hand-off takes
 * as long as on a mutex that never lost a waiter (trials interleaved, so
 * that the machine's load weighs on both alike). */
START_TEST(pshared_mutex_unlock_still_wakes_a_sleeper_after_its_spinner_was_killed)
{
	struct shared *sh = new_shared();
	seed_rng();
	what = "pshared mutex, hand-off after killed spinners";
	for (round_no = 1; round_no <= SPINNER_KILLS; round_no++)
		spinner_round(sh);
	int64_t killed[HANDOFF_TRIALS], control[HANDOFF_TRIALS];
	for (round_no = 1; round_no <= HANDOFF_TRIALS; round_no++) {
		killed[round_no - 1] = handoff_ns(sh, &sh->mutex);
		control[round_no - 1] = handoff_ns(sh, &sh->control);
	}
	int64_t k = median(killed, HANDOFF_TRIALS), c = median(control, HANDOFF_TRIALS);
	round_no = 0;
	expect(k <= 2 * NS_PER_MS + 3 * c,
	       "median hand-off to a sleeper %.2f ms after %d killed spinners, "
	       "%.2f ms on a mutex that lost no waiter: the unlock did not wake it",
	       (double)k / NS_PER_MS, SPINNER_KILLS, (double)c / NS_PER_MS);
}
END_TEST

/* ---- destroy after one sleeping waiter was killed ----------------------- */

/* A waiter asleep behind the parent is killed and reaped: nobody waits. */
static void kill_one_sleeping_waiter(struct shared *sh, enum op op)
{
	struct round rd = { 0 };
	start_waiter(sh, &rd, 0, op);
	let_it_fall_asleep(rd.pid[0]);
	kill_waiter(&rd, 0);
}

START_TEST(pshared_mutex_destroy_returns_0_after_its_sleeping_waiter_was_killed)
{
	struct shared *sh = new_shared();
	what = "pshared mutex destroy";
	ck_assert_int_eq(sync_mutex_lock(&sh->mutex), 0);
	kill_one_sleeping_waiter(sh, MUTEX_LOCK);
	ck_assert_int_eq(sync_mutex_unlock(&sh->mutex), 0);
	ck_assert_int_eq(sync_mutex_destroy(&sh->mutex), 0);
}
END_TEST

START_TEST(pshared_rwlock_destroy_returns_0_after_its_sleeping_reader_was_killed)
{
	struct shared *sh = new_shared();
	what = "pshared rwlock destroy";
	ck_assert_int_eq(sync_rwlock_wrlock(&sh->rwlock), 0);
	kill_one_sleeping_waiter(sh, RDLOCK);
	ck_assert_int_eq(sync_rwlock_wrunlock(&sh->rwlock), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&sh->rwlock), 0);
}
END_TEST

START_TEST(pshared_rwlock_destroy_returns_0_after_its_sleeping_writer_was_killed)
{
	struct shared *sh = new_shared();
	what = "pshared rwlock destroy";
	ck_assert_int_eq(sync_rwlock_rdlock(&sh->rwlock), 0);
	kill_one_sleeping_waiter(sh, WRLOCK);
	ck_assert_int_eq(sync_rwlock_rdunlock(&sh->rwlock), 0);
	ck_assert_int_eq(sync_rwlock_destroy(&sh->rwlock), 0);
}
END_TEST

START_TEST(pshared_sem_destroy_returns_0_after_its_sleeping_waiter_was_killed)
{
	struct shared *sh = new_shared();
	what = "pshared sem destroy";
	kill_one_sleeping_waiter(sh, SEM_WAIT);
	ck_assert_int_eq(sync_sem_destroy(&sh->sem), 0);
}
END_TEST

START_TEST(pshared_cond_destroy_returns_0_after_its_sleeping_waiter_was_killed)
{
	struct shared *sh = new_shared();
	what = "pshared cond destroy";
	struct round rd = { 0 };
	start_waiter(sh, &rd, 0, COND_WAIT);
	ck_assert_int_eq(sync_mutex_lock(&sh->cond_mutex), 0); /* it waits now */
	let_it_fall_asleep(rd.pid[0]);
	kill_waiter(&rd, 0);
	ck_assert_int_eq(sync_mutex_unlock(&sh->cond_mutex), 0);
	ck_assert_int_eq(sync_cond_destroy(&sh->cond), 0);
}
END_TEST

/* ---- fork while another thread waits (issue 10, point 3c) --------------- */

/* The pthread_atfork pattern under test: lock in prepare, unlock in parent
 * and child. Once it holds the lock, the prepare handler sends the
 * contender thread into its lock call and holds on a random moment more, so
 * that the fork catches the contender spinning (a mutex spins for tens of
 * microseconds; a fork takes about as long), registering or asleep. */
static sync_mutex_t fork_mutex;
static sync_rwlock_t fork_rwlock;
static _Atomic(sync_mutex_t *) atfork_mutex;
static _Atomic(sync_rwlock_t *) atfork_rwlock;
static atomic_long prepare_hold_ns;
static atomic_int fork_token;       /* bumped by prepare: go for the lock */
static atomic_int contender_token;  /* the token the contender went with */
static atomic_int stop_contending;

/* The prepare handler waits at most this long for the contender. */
#define CONTENDER_ARRIVAL_NS 5000000LL
/* Deadline of the contender's timed attempts, retried at once (with a
 * timer slack of 1 ns, so that it spins most of the time). */
#define CONTENDER_ATTEMPT_NS 5000u

static void prepare(void)
{
	if (atomic_load(&atfork_mutex))
		sync_mutex_lock(&fork_mutex);
	if (atomic_load(&atfork_rwlock))
		sync_rwlock_wrlock(&fork_rwlock);
	int token = atomic_fetch_add(&fork_token, 1) + 1;
	int64_t start = now_ns();
	while (atomic_load(&contender_token) != token &&
	       now_ns() - start < CONTENDER_ARRIVAL_NS)
		;
	spin_for(atomic_load(&prepare_hold_ns));
}

static void after_fork(void)
{
	if (atomic_load(&atfork_mutex))
		sync_mutex_unlock(&fork_mutex);
	if (atomic_load(&atfork_rwlock))
		sync_rwlock_wrunlock(&fork_rwlock);
}

static void install_atfork(void)
{
	ck_assert_int_eq(pthread_atfork(prepare, after_fork, after_fork), 0);
}

/* Waits until prepare sends the contender for the lock (true), or until
 * the test stops it. */
static bool contender_sent(int *seen)
{
	while (atomic_load(&fork_token) == *seen) {
		if (atomic_load(&stop_contending))
			return false;
		sched_yield();
	}
	*seen = atomic_load(&fork_token);
	atomic_store(&contender_token, *seen);
	return true;
}

/* The parent's contender: goes for the lock at each fork. Three attempts
 * in four are timed attempts retried at once, so that it keeps spinning or
 * registering anew (what a fork child must not inherit); the fourth is a
 * lock that spins and then sleeps. */
static void *mutex_contender(void *arg)
{
	(void)arg;
	prctl(PR_SET_TIMERSLACK, 1UL);
	int seen = 0;
	for (unsigned i = 0; contender_sent(&seen); i++) {
		int r;
		if (i % 4 == 3) {
			r = sync_mutex_lock(&fork_mutex);
		} else {
			do {
				struct timespec d = sync_deadline(CONTENDER_ATTEMPT_NS);
				r = sync_mutex_timedlock(&fork_mutex, &d);
			} while (r == ETIMEDOUT && !atomic_load(&stop_contending));
		}
		if (r == 0)
			sync_mutex_unlock(&fork_mutex);
	}
	return NULL;
}

static void *rwlock_contender(void *arg)
{
	(void)arg;
	prctl(PR_SET_TIMERSLACK, 1UL);
	int seen = 0;
	for (unsigned i = 0; contender_sent(&seen); i++) {
		int r;
		if (i % 4 != 3) {
			r = sync_rwlock_wrlock(&fork_rwlock);
		} else {
			do {
				struct timespec d = sync_deadline(CONTENDER_ATTEMPT_NS);
				r = sync_rwlock_timedwrlock(&fork_rwlock, &d);
			} while (r == ETIMEDOUT && !atomic_load(&stop_contending));
		}
		if (r == 0)
			sync_rwlock_wrunlock(&fork_rwlock);
	}
	return NULL;
}

/* Exit codes of the fork child. */
enum {
	CHILD_OK = 0,
	CHILD_LOCK_TIMED_OUT = 3,
	CHILD_LOCK_FAILED = 4,
	CHILD_DESTROY_FAILED = 6,
	CHILD_NO_THREAD = 7,
};

/* Modes of the child's threads. */
enum { LOCK_MUTEX, WRITE_RWLOCK, READ_RWLOCK };

static int child_lock(int mode)
{
	struct timespec d = sync_deadline((uint64_t)WAITER_DEADLINE_NS);
	switch (mode) {
	case LOCK_MUTEX:
		return sync_mutex_timedlock(&fork_mutex, &d);
	case WRITE_RWLOCK:
		return sync_rwlock_timedwrlock(&fork_rwlock, &d);
	default:
		return sync_rwlock_timedrdlock(&fork_rwlock, &d);
	}
}

static int child_unlock(int mode)
{
	switch (mode) {
	case LOCK_MUTEX:
		return sync_mutex_unlock(&fork_mutex);
	case WRITE_RWLOCK:
		return sync_rwlock_wrunlock(&fork_rwlock);
	default:
		return sync_rwlock_rdunlock(&fork_rwlock);
	}
}

/* A thread of the fork child: waits for the object (mode), holds it a few
 * microseconds, so that the other thread waits too, and drops it. */
struct helper {
	int mode;
	pthread_t thread;
	atomic_int tid;
	int result;
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	atomic_store(&h->tid, thread_id());
	int r = child_lock(h->mode);
	if (r == 0) {
		spin_for(2000);
		r = child_unlock(h->mode);
	}
	h->result = r == 0 ? CHILD_OK : r == ETIMEDOUT ? CHILD_LOCK_TIMED_OUT : CHILD_LOCK_FAILED;
	return NULL;
}

/* In the fork child: this thread holds the object (hold_mode), two threads
 * fall asleep waiting for it (modes a and b), and both must get through
 * once it is released; then nobody waits, and destroy returns 0. */
static int use_in_child(int hold_mode, int a, int b)
{
	if (child_lock(hold_mode))
		return CHILD_LOCK_FAILED;
	struct helper h[2] = { { .mode = a }, { .mode = b } };
	for (int i = 0; i < 2; i++)
		if (pthread_create(&h[i].thread, NULL, helper_main, &h[i]))
			return CHILD_NO_THREAD;
	for (int i = 0; i < 2; i++) {
		while (!atomic_load(&h[i].tid))
			sched_yield();
		let_it_fall_asleep(atomic_load(&h[i].tid));
	}
	if (child_unlock(hold_mode))
		return CHILD_LOCK_FAILED;
	int result = CHILD_OK;
	for (int i = 0; i < 2; i++) {
		pthread_join(h[i].thread, NULL);
		if (h[i].result != CHILD_OK)
			result = h[i].result;
	}
	if (result != CHILD_OK)
		return result;
	int r = hold_mode == LOCK_MUTEX ? sync_mutex_destroy(&fork_mutex)
					: sync_rwlock_destroy(&fork_rwlock);
	return r ? CHILD_DESTROY_FAILED : CHILD_OK;
}

static int mutex_child(void *arg)
{
	(void)arg;
	return use_in_child(LOCK_MUTEX, LOCK_MUTEX, LOCK_MUTEX);
}

/* A writer and a reader wait behind a write hold. */
static int rwlock_child(void *arg)
{
	(void)arg;
	return use_in_child(WRITE_RWLOCK, WRITE_RWLOCK, READ_RWLOCK);
}

/* Forks per test: the mutex's contender is caught spinning in about a third
 * of them on a loaded 2-core machine, the rwlock's is nearly always caught
 * registered (and the phantom it leaves may cost the child's reader a few
 * tens of milliseconds, the time to find it dead). */
#define MUTEX_FORKS 150
#define RWLOCK_FORKS 40

static const char *describe_child(int status)
{
	switch (status) {
	case CHILD_LOCK_TIMED_OUT:
		return "a thread asleep behind the child's hold timed out (never woken)";
	case CHILD_LOCK_FAILED:
		return "a lock or unlock returned an error in the child";
	case CHILD_DESTROY_FAILED:
		return "destroy in the child, with nobody waiting, failed";
	case CHILD_NO_THREAD:
		return "pthread_create failed in the child";
	case -1:
		return "the child hung or crashed (killed after 2 s)";
	default:
		return "unexpected exit code";
	}
}

static void fork_while_waiting(void *(*contender)(void *), int (*child)(void *),
			       int forks)
{
	seed_rng();
	install_atfork();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, contender, NULL), 0);
	for (round_no = 1; round_no <= forks; round_no++) {
		atomic_store(&prepare_hold_ns, (long)rng_below(rng_below(4) ? 20000 : 200000));
		pid_t pid = fork_running(child, NULL);
		expect(pid > 0, "fork failed");
		int status = child_status(pid);
		expect(status == CHILD_OK, "fork child: %s (status %d)",
		       describe_child(status), status);
	}
	atomic_store(&stop_contending, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

START_TEST(fork_child_can_use_a_private_mutex_another_thread_waited_for)
{
	what = "private mutex, fork while a thread waits";
	ck_assert_int_eq(sync_mutex_init(&fork_mutex, 0), 0);
	atomic_store(&atfork_mutex, &fork_mutex);
	fork_while_waiting(mutex_contender, mutex_child, MUTEX_FORKS);
}
END_TEST

START_TEST(fork_child_can_use_a_private_rwlock_another_thread_waited_to_write)
{
	what = "private rwlock, fork while a thread waits to write";
	ck_assert_int_eq(sync_rwlock_init(&fork_rwlock, 0), 0);
	atomic_store(&atfork_rwlock, &fork_rwlock);
	fork_while_waiting(rwlock_contender, rwlock_child, RWLOCK_FORKS);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pshared_death");

	TCase *tc = tcase_create("killed_pshared_waiters");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pshared_mutex_stays_usable_when_waiting_lockers_are_killed);
	tcase_add_test(tc, pshared_mutex_stays_usable_when_its_single_spinner_is_killed);
	tcase_add_test(tc, pshared_mutex_unlock_still_wakes_a_sleeper_after_its_spinner_was_killed);
	tcase_add_test(tc, pshared_rwlock_stays_usable_when_waiters_behind_a_writer_are_killed);
	tcase_add_test(tc, pshared_rwlock_stays_usable_when_writers_waiting_behind_readers_are_killed);
	tcase_add_test(tc, pshared_sem_stays_usable_when_waiters_are_killed);
	tcase_add_test(tc, pshared_cond_stays_usable_when_waiters_are_killed);
	suite_add_tcase(s, tc);

	tc = tcase_create("destroy_after_killed_waiter");
	tcase_add_test(tc, pshared_mutex_destroy_returns_0_after_its_sleeping_waiter_was_killed);
	tcase_add_test(tc, pshared_rwlock_destroy_returns_0_after_its_sleeping_reader_was_killed);
	tcase_add_test(tc, pshared_rwlock_destroy_returns_0_after_its_sleeping_writer_was_killed);
	tcase_add_test(tc, pshared_sem_destroy_returns_0_after_its_sleeping_waiter_was_killed);
	tcase_add_test(tc, pshared_cond_destroy_returns_0_after_its_sleeping_waiter_was_killed);
	suite_add_tcase(s, tc);

	tc = tcase_create("fork_while_waiting");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, fork_child_can_use_a_private_mutex_another_thread_waited_for);
	tcase_add_test(tc, fork_child_can_use_a_private_rwlock_another_thread_waited_to_write);
	suite_add_tcase(s, tc);

	return s;
}
