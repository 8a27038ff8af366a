/* The debugging aids' switches (SYNC_CHECK and SYNC_PROFILE read at load,
 * sync_check_set at run time) and each thread's state: its held locks and
 * known edges, made on its first hook, checked and freed at its exit. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sync/debug.h>

#include "annotate.h"
#include "debug_internal.h"
#include "thread.h"

unsigned dbg_check_gen;
int dbg_abort_after_report;
unsigned dbg_graph_gen;

static THREAD_LOCAL struct dbg_thread *self;
/* A thread's state after its exit destructor ran: busy, so that hooks
 * from destructors that run later are ignored. */
static struct dbg_thread exited = { .busy = 1 };
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_made;
static pthread_mutex_t switch_lock = PTHREAD_MUTEX_INITIALIZER;

static void thread_exits(void *state)
{
	struct dbg_thread *t = state;
	self = &exited;
	/* relaxed: a mode switch and a period number, compared only; a list
	 * from an earlier checking period says nothing of what is held now */
	if ((__atomic_load_n(&ann_tools, __ATOMIC_RELAXED) & ANN_CHECK) &&
	    t->check_gen == __atomic_load_n(&dbg_check_gen, __ATOMIC_RELAXED))
		dbg_check_thread_exit(t);
	free(t);
}

static void make_exit_key(void)
{
	exit_key_made = pthread_key_create(&exit_key, thread_exits) == 0;
}

static struct dbg_thread *make_state(void)
{
	pthread_once(&exit_key_once, make_exit_key);
	if (!exit_key_made)
		return NULL;
	struct dbg_thread *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	if (pthread_setspecific(exit_key, t) != 0) {
		free(t);
		return NULL;
	}
	/* relaxed: a period number, compared only */
	t->check_gen = __atomic_load_n(&dbg_check_gen, __ATOMIC_RELAXED);
	self = t;
	return t;
}

struct dbg_thread *dbg_enter(void)
{
	int saved = errno;
	struct dbg_thread *t = self;
	if (t && t->busy)
		return NULL;
	if (!t && !(t = make_state())) {
		errno = saved; /* calloc's ENOMEM is not the caller's */
		return NULL;
	}
	t->saved_errno = saved;
	t->busy = 1;
	atomic_signal_fence(memory_order_seq_cst); /* before a handler's hooks */
	/* relaxed: a period number, compared only (see set_check) */
	unsigned gen = __atomic_load_n(&dbg_check_gen, __ATOMIC_RELAXED);
	if (t->check_gen != gen) { /* checking was switched on anew */
		t->n = 0;
		t->lost = 0;
		t->check_gen = gen;
	}
	return t;
}

void dbg_leave(struct dbg_thread *t)
{
	errno = t->saved_errno;
	atomic_signal_fence(memory_order_seq_cst);
	t->busy = 0;
}

/* The most recent hold of l (a read lock may be held more than once). */
struct held *held_find(struct dbg_thread *t, const void *l)
{
	for (unsigned i = t->n; i-- > 0;)
		if (t->held[i].lock == l)
			return &t->held[i];
	return NULL;
}

void held_drop(struct dbg_thread *t, struct held *h)
{
	unsigned i = (unsigned)(h - t->held);
	memmove(&t->held[i], &t->held[i + 1], (t->n - i - 1) * sizeof *h);
	t->n--;
}

uint64_t dbg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int dbg_tid(void)
{
	return (int)thread_tid();
}

/* Parses a SYNC_CHECK spec: comma-separated words "deadlock" and "abort".
 * 0 or EINVAL. */
static int parse_check(const char *spec, int *on, int *abort_after)
{
	*on = *abort_after = 0;
	for (const char *w = spec; *w;) {
		size_t len = strcspn(w, ",");
		if (len == 8 && !strncmp(w, "deadlock", len))
			*on = 1;
		else if (len == 5 && !strncmp(w, "abort", len))
			*abort_after = 1;
		else if (len)
			return EINVAL;
		w += len + (w[len] == ',');
	}
	return (*abort_after && !*on) ? EINVAL : 0;
}

/* Under switch_lock. Every store is relaxed: the words are mode switches
 * and period numbers, compared only, and the state they enable makes
 * itself on first use; a hook that runs on the old mode finishes as if
 * it had come just before the switch. */
static void set_check(int on, int abort_after)
{
	int tools = __atomic_load_n(&ann_tools, __ATOMIC_RELAXED);
	__atomic_store_n(&dbg_abort_after_report, abort_after, __ATOMIC_RELAXED);
	if (on && !(tools & ANN_CHECK)) {
		dbg_graph_forget(NULL); /* orders seen in an earlier period may be stale */
		__atomic_fetch_add(&dbg_check_gen, 1, __ATOMIC_RELAXED);
		ann_divert_inline_paths();
		__atomic_fetch_or(&ann_tools, ANN_CHECK, __ATOMIC_RELAXED);
	} else if (!on) {
		__atomic_fetch_and(&ann_tools, ~ANN_CHECK, __ATOMIC_RELAXED);
	}
}

int sync_check_set(const char *spec)
{
	int on, abort_after;
	if (!spec || parse_check(spec, &on, &abort_after))
		return EINVAL;
	int saved = errno;
	pthread_mutex_lock(&switch_lock);
	set_check(on, abort_after);
	pthread_mutex_unlock(&switch_lock);
	errno = saved;
	return 0;
}

static int check_from_environment(void)
{
	const char *spec = getenv("SYNC_CHECK");
	int on, abort_after;
	if (!spec || !*spec)
		return 0;
	if (parse_check(spec, &on, &abort_after)) {
		fprintf(stderr, "libsync: SYNC_CHECK=%s: not understood (words: "
				"deadlock, abort); checking stays off\n", spec);
		return 0;
	}
	/* relaxed: before any thread calls in */
	__atomic_store_n(&dbg_abort_after_report, abort_after, __ATOMIC_RELAXED);
	return on ? ANN_CHECK : 0;
}

static int profile_from_environment(void)
{
	const char *spec = getenv("SYNC_PROFILE");
	if (!spec || !*spec || !strcmp(spec, "0"))
		return 0;
	if (strcmp(spec, "1")) {
		fprintf(stderr, "libsync: SYNC_PROFILE=%s: not understood (1 turns "
				"it on); profiling stays off\n", spec);
		return 0;
	}
	prof_init();
	return ANN_PROFILE;
}

int dbg_from_environment(void)
{
	int saved = errno;
	int bits = check_from_environment() | profile_from_environment();
	errno = saved;
	return bits;
}
