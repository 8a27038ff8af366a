/* Robust mutex: the kernel's robust-futex protocol (Linux
 * Documentation/locking/robust-futex-ABI.rst), its list shared with glibc.
 *
 * The state word is the kernel's robust futex word:
 *   owner's tid | FUTEX_WAITERS     held; WAITERS: some thread may sleep.
 *   FUTEX_OWNER_DIED [| WAITERS]    the kernel's mark: the owner died
 *                                   holding it (tid part 0).
 *   R_FREE                          free (a tid no kernel hands out, so
 *                                   that the plain mutex's fast path, a CAS
 *                                   from 0, always fails on a robust one).
 *   R_NOTRECOVERABLE [| WAITERS]    unlocked without sync_mutex_consistent
 *                                   after EOWNERDEAD: unusable for good.
 * `owner` holds R_INCONSISTENT from an EOWNERDEAD until consistent().
 *
 * When a thread exits (thread exit, _exit, SIGKILL, exec), the kernel walks
 * the list of robust futexes the thread registered with set_robust_list(2):
 * each word that still holds the thread's tid gets FUTEX_OWNER_DIED, and one
 * sleeper is woken (a process-shared wake: robust mutexes always use shared
 * futex operations, or the kernel's wake would miss their sleepers). glibc
 * registers a list head for every thread and links its robust pthread
 * mutexes into it; replacing the head would break them. So libsync links
 * its robust mutexes into glibc's list, in glibc's own shape (64-bit glibc,
 * nptl's ENQUEUE_MUTEX_BOTH/DEQUEUE_MUTEX): the list runs through `next`
 * pointers 32 bytes after the lock word (the head's futex_offset), each
 * preceded by a `prev` pointer, and the word before the head (glibc's
 * robust_prev) is the prev of the head. Before the first use in a thread we
 * check that the registered head has that shape, else ENOTSUP. Only the
 * owning thread edits its list; list_op_pending covers the moments between
 * the lock word and the list, as in glibc.
 *
 * What a vanished waiter leaves behind: a WAITERS bit (a spurious wake-up
 * later); a wake-up the kernel handed to a dying process is made up by the
 * sleepers' periodic second look (futex_wait, shared). A vanished owner:
 * FUTEX_OWNER_DIED, which the next locker turns into EOWNERDEAD. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sync/mutex.h>

#include "annotate.h"
#include "futex.h"
#include "mutex_internal.h"
#include "test_hook.h"
#include "thread.h"
#include "timeout.h"

#define R_FREE           0x3ffffffeu
#define R_NOTRECOVERABLE 0x3fffffffu
#define R_INCONSISTENT   1u

_Static_assert(R_FREE == 0x3ffffffeu, "SYNC_MUTEX_ROBUST_INITIALIZER agrees");
_Static_assert((R_FREE & FUTEX_TID_MASK) == R_FREE &&
		       (R_NOTRECOVERABLE & FUTEX_TID_MASK) == R_NOTRECOVERABLE,
	       "the markers are tids above PID_MAX_LIMIT");

/* The entry the kernel walks, and the word glibc keeps before it. */
#define ROBUST_NEXT_OFFSET ((long)offsetof(sync_mutex_t, robust_next))
_Static_assert(offsetof(sync_mutex_t, robust_prev) + sizeof(void *) ==
		       offsetof(sync_mutex_t, robust_next),
	       "prev sits just before next, as in glibc's __pthread_list_t");

enum head_state { HEAD_UNKNOWN, HEAD_OK, HEAD_UNUSABLE };

static THREAD_LOCAL struct robust_list_head *thread_head;
static THREAD_LOCAL enum head_state thread_head_state;

static struct robust_list *entry_of(sync_mutex_t *m)
{
	return (struct robust_list *)&m->robust_next;
}

/* The pointer-sized slot just before an entry's next: its prev. */
static void **prev_slot(void *entry)
{
	return (void **)((uintptr_t)entry & ~(uintptr_t)1) - 1;
}

/* glibc's shape: futex_offset is ours, and while the list is empty the word
 * before the head (robust_prev) points at the head. */
static bool head_has_our_shape(struct robust_list_head *h, size_t len)
{
	if (!h || len != sizeof *h || h->futex_offset != -ROBUST_NEXT_OFFSET)
		return false;
	if (h->list.next == &h->list)
		return *prev_slot(h) == (void *)h;
	return h->list.next != NULL;
}

/* The calling thread's registered robust-list head, checked once. */
static struct robust_list_head *robust_head(void)
{
	if (__builtin_expect(thread_head_state == HEAD_OK, 1))
		return thread_head;
	if (thread_head_state == HEAD_UNKNOWN) {
		struct robust_list_head *h = NULL;
		size_t len = 0;
		int saved = errno;
		long r = syscall(SYS_get_robust_list, 0, &h, &len);
		errno = saved;
		bool ok = r == 0 && head_has_our_shape(h, len);
		thread_head = ok ? h : NULL;
		thread_head_state = ok ? HEAD_OK : HEAD_UNUSABLE;
	}
	return thread_head;
}

/* Orders list edits against the lock word for the kernel, which reads them
 * only when this thread has stopped (as glibc's asm memory barriers). */
static void list_barrier(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

/* Pushes m at the head of the list, as glibc's ENQUEUE_MUTEX_BOTH. */
static void list_add(struct robust_list_head *h, sync_mutex_t *m)
{
	struct robust_list *first = h->list.next;
	*prev_slot(first) = entry_of(m);
	m->robust_next = first;
	m->robust_prev = &h->list;
	list_barrier();
	h->list.next = entry_of(m);
}

/* Unlinks m, as glibc's DEQUEUE_MUTEX. */
static void list_del(sync_mutex_t *m)
{
	*prev_slot(m->robust_next) = m->robust_prev;
	*(void **)((uintptr_t)m->robust_prev & ~(uintptr_t)1) = m->robust_next;
	list_barrier();
	m->robust_prev = NULL;
	m->robust_next = NULL;
}

static void set_pending(struct robust_list_head *h, sync_mutex_t *m)
{
	h->list_op_pending = m ? entry_of(m) : NULL;
	list_barrier();
}

static uint32_t tid_of(uint32_t s)
{
	return s & FUTEX_TID_MASK;
}

static bool is_free(uint32_t s)
{
	return tid_of(s) == R_FREE;
}

static bool owner_died(uint32_t s)
{
	return (s & FUTEX_OWNER_DIED) && tid_of(s) == 0;
}

static uint32_t load_state(sync_mutex_t *m)
{
	/* relaxed: the CASes carry the acquire */
	return atomic_load_explicit(&m->state, memory_order_relaxed);
}

/* A shared robust mutex names its owners by tids of the PID namespace it
 * was made in; a process of another one could pass for an owner. */
static bool namespace_ok(const sync_mutex_t *m)
{
	if (!(m->flags & SYNC_PSHARED) || !m->pidns)
		return true;
	uint32_t ns = thread_pid_namespace();
	return !ns || ns == m->pidns;
}

int robust_init(sync_mutex_t *m, int flags)
{
	if (!robust_head())
		return ENOTSUP;
	/* relaxed: publishing the object to other threads is the caller's job */
	atomic_store_explicit(&m->state, R_FREE, memory_order_relaxed);
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	m->flags = (uint32_t)flags;
	atomic_store_explicit(&m->spinner, 0, memory_order_relaxed);
	m->pidns = (flags & SYNC_PSHARED) ? thread_pid_namespace() : 0;
	atomic_store_explicit(&m->spin, 0, memory_order_relaxed);
	m->robust_prev = NULL;
	m->robust_next = NULL;
	return 0;
}

/* The lock word we take a free or abandoned lock to: our tid, keeping
 * WAITERS, and setting it if we slept (others may still sleep). */
static uint32_t taken(uint32_t s, uint32_t tid, bool slept)
{
	return tid | (s & FUTEX_WAITERS) | (slept ? FUTEX_WAITERS : 0);
}

/* Takes a free or abandoned lock: 0 or EOWNERDEAD; EBUSY if held. */
static int take_once(sync_mutex_t *m, uint32_t *s, uint32_t tid, bool slept)
{
	while (is_free(*s) || owner_died(*s)) {
		bool dead = owner_died(*s);
		if (atomic_compare_exchange_weak_explicit(
			    &m->state, s, taken(*s, tid, slept),
			    memory_order_acquire, /* pairs with the release in unlock */
			    memory_order_relaxed))
			return dead ? EOWNERDEAD : 0;
	}
	if (tid_of(*s) == R_NOTRECOVERABLE)
		return ENOTRECOVERABLE;
	return EBUSY;
}

/* Sleeps while the word is s: a shared futex wait always (see the top),
 * with futex_wait's periodic second look only for a mutex that other
 * processes use (only a process can vanish with a wake-up meant for others). */
static int sleep_on(sync_mutex_t *m, uint32_t s, const struct timespec *abstime)
{
	if (m->flags & SYNC_PSHARED)
		return futex_wait(&m->state, s, abstime, FUTEX_BITSET_MATCH_ANY, true);
	if (timeout_before_epoch(abstime))
		return ETIMEDOUT;
	long r = futex_syscall((uint32_t *)&m->state, FUTEX_WAIT_BITSET, s, abstime,
			       NULL, FUTEX_BITSET_MATCH_ANY);
	return (int)-r;
}

/* Sleeps with WAITERS set until the lock is free or abandoned, like
 * Drepper's mutex 2 and glibc's robust mutexes (no spinning: measured on
 * 2 cores, a spin bought nothing over sleeping at once). */
static int take_or_sleep(sync_mutex_t *m, uint32_t tid,
			 const struct timespec *abstime)
{
	uint32_t s = load_state(m);
	bool slept = false;
	for (;;) {
		int r = take_once(m, &s, tid, slept);
		if (r != EBUSY)
			return r;
		if (!slept)
			ann_contended(m, ANN_ROBUST);
		if (!slept && timeout_passed(abstime))
			return ETIMEDOUT; /* took no wake-up from anyone */
		/* relaxed: announces a sleeper; the futex compares the word */
		if (!(s & FUTEX_WAITERS) &&
		    !atomic_compare_exchange_weak_explicit(&m->state, &s,
							   s | FUTEX_WAITERS,
							   memory_order_relaxed,
							   memory_order_relaxed))
			continue;
		/* A waiter woken by an unlock whose lock a barger took (without
		 * FUTEX_WAITERS) gives up only now, with the bit on the holder's
		 * word again: its unlock then wakes the sleepers this wake-up was
		 * for (found by tests/models/mutex_robust.pml, -DBARGER). */
		if (timeout_passed(abstime))
			return ETIMEDOUT;
		if (sleep_on(m, s | FUTEX_WAITERS, abstime) == ETIMEDOUT)
			return ETIMEDOUT;
		TEST_HOOK("robust_lock:woken");
		slept = true;
		s = load_state(m);
	}
}

/* Under a race detector, the robust mutexes a thread holds when it exits
 * are released, for the tool, by a thread-specific-data destructor: the
 * kernel hands them on at the thread's death (EOWNERDEAD), and the tools
 * would otherwise take the next lock for a double lock. Only while a tool
 * runs; up to HELD_TRACKED holds per thread (more go untold). */
#ifndef ANN_OFF
#define HELD_TRACKED 32

static THREAD_LOCAL sync_mutex_t *held[HELD_TRACKED];
static THREAD_LOCAL unsigned held_count;
static pthread_key_t held_key;
static pthread_once_t held_key_once = PTHREAD_ONCE_INIT;

static void release_held_at_exit(void *unused)
{
	(void)unused;
	while (held_count) {
		sync_mutex_t *m = held[--held_count];
		ann_unlock_pre(m, ANN_WRITE);
		ann_unlock_post(m, ANN_WRITE);
	}
}

static void make_held_key(void)
{
	if (pthread_key_create(&held_key, release_held_at_exit) != 0)
		held_key = (pthread_key_t)-1;
}

static void note_held(sync_mutex_t *m)
{
	if (!ann_detector_on() || held_count == HELD_TRACKED)
		return;
	int saved = errno;
	pthread_once(&held_key_once, make_held_key);
	if (held_key != (pthread_key_t)-1 && pthread_setspecific(held_key, held) == 0)
		held[held_count++] = m;
	errno = saved;
}

static void note_released(sync_mutex_t *m)
{
	if (!ann_detector_on())
		return;
	for (unsigned i = 0; i < held_count; i++)
		if (held[i] == m) {
			held[i] = held[--held_count];
			return;
		}
}
#else
static void note_held(sync_mutex_t *m)
{
	(void)m;
}

static void note_released(sync_mutex_t *m)
{
	(void)m;
}
#endif

/* Lock and trylock: the lock word and the list change under
 * list_op_pending, so that a death in between is still seen. */
static int robust_acquire(sync_mutex_t *m, const struct timespec *abstime,
			  bool try)
{
	struct robust_list_head *h = robust_head();
	if (!h || !namespace_ok(m))
		return ENOTSUP;
	uint32_t tid = thread_tid();
	uint32_t s = load_state(m);
	if (tid_of(s) == tid)
		return try ? EBUSY : EDEADLK;
	set_pending(h, m);
	int r = try ? take_once(m, &s, tid, false) : take_or_sleep(m, tid, abstime);
	if (r == 0 || r == EOWNERDEAD) {
		list_add(h, m);
		note_held(m);
	}
	set_pending(h, NULL);
	if (r == EOWNERDEAD) /* relaxed: read by later holders, after their lock */
		atomic_store_explicit(&m->owner, R_INCONSISTENT, memory_order_relaxed);
	return r;
}

int robust_lock(sync_mutex_t *m, const struct timespec *abstime)
{
	return robust_acquire(m, abstime, false);
}

int robust_trylock(sync_mutex_t *m)
{
	return robust_acquire(m, NULL, true);
}

bool robust_held_by_caller(sync_mutex_t *m)
{
	return tid_of(load_state(m)) == thread_tid();
}

/* Unrecoverable is for good (until destroy and init): a plain load tells,
 * without the lock. */
bool robust_not_recoverable(sync_mutex_t *m)
{
	return tid_of(load_state(m)) == R_NOTRECOVERABLE;
}

/* Unlocking an inconsistent mutex makes it unrecoverable and wakes every
 * sleeper to say so. After the exchange, m is touched no more. */
int robust_unlock(sync_mutex_t *m)
{
	if (!robust_held_by_caller(m))
		return EPERM;
	struct robust_list_head *h = robust_head();
	/* relaxed: written by holders, ordered by the lock itself */
	bool poison = atomic_load_explicit(&m->owner, memory_order_relaxed) ==
		      R_INCONSISTENT;
	set_pending(h, m);
	list_del(m);
	note_released(m);
	/* before the release: m may go with it */
	ann_unlock_pre(m, ANN_WRITE | ANN_ROBUST | ANN_NOHANG);
	uint32_t old = atomic_exchange_explicit(
		&m->state, poison ? R_NOTRECOVERABLE : R_FREE,
		memory_order_release); /* pairs with the lockers' acquire CAS */
	if (poison)
		futex_wake(&m->state, INT_MAX, FUTEX_BITSET_MATCH_ANY, true);
	else if (old & FUTEX_WAITERS)
		futex_wake(&m->state, 1, FUTEX_BITSET_MATCH_ANY, true);
	set_pending(h, NULL);
	ann_unlock_post(m, ANN_WRITE | ANN_ROBUST | ANN_NOHANG);
	return 0;
}

int robust_consistent(sync_mutex_t *m)
{
	/* relaxed: only the holder writes it */
	if (!robust_held_by_caller(m) ||
	    atomic_load_explicit(&m->owner, memory_order_relaxed) != R_INCONSISTENT)
		return EINVAL;
	atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	return 0;
}

/* Held by a live thread: EBUSY. Free, abandoned or unrecoverable: 0. */
int robust_destroy(sync_mutex_t *m)
{
	uint32_t tid = tid_of(load_state(m));
	if (tid && tid != R_FREE && tid != R_NOTRECOVERABLE)
		return EBUSY;
	ann_lock_destroy(m);
	return 0;
}
