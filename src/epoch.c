/* Epoch-based reclamation: a global epoch counter and one record per thread
 * (Fraser, "Practical lock-freedom", 2004, ch. 5), with epoch values instead
 * of a three-epoch ring, so one grace period is one bump of the counter and
 * one scan. The read side pays no fence: the grace period issues
 * membarrier(2) instead, as liburcu's memb flavour does (Desnoyers et al.,
 * "User-Level Implementations of Read-Copy Update", IEEE TPDS 2012).
 *
 * Invariants:
 * - The registry lists exactly the live threads whose exit will remove them:
 *   a thread sets its exit key's value before it links its record, and
 *   on_thread_exit unlinks it. A thread whose pthread_setspecific fails (no
 *   memory for the key's slot), or that has already exited (a later
 *   destructor calls us), is not listed: it is an unlisted reader, whose
 *   sections count in unlisted_readers[] and whose callbacks go straight to
 *   the orphans; it tries to join again at its next outermost section.
 * - A grace period with target T waits for every listed section that began
 *   at an epoch below T and for the unlisted sections counted under T - 1
 *   (those counted under T - 2 were waited for by the grace period before:
 *   grace periods end in the order they start, one at a time).
 * - A thread's callbacks are in its record's list (epochs never decrease
 *   along it) or in the orphans; moving them from one to the other happens
 *   under the registry lock, so a barrier's walk sees them in one of the two.
 *   Lock order: gp_lock, registry_lock, a record's limbo_lock, orphan_lock.
 * - Vanished threads leave nothing behind: a listed thread that exits (inside
 *   a section, or cancelled) is unlisted by its key destructor, which ends its
 *   section and orphans its callbacks; cancellation is disabled wherever the
 *   domain sleeps or runs callbacks, so no thread leaves gp_lock or run_lock
 *   held; the child of fork() keeps only the forking thread, and rebuilds the
 *   locks and unlisted counts from it. An unlisted thread that exits inside a
 *   section (misuse: it could not join, and so has no destructor) leaves its
 *   count, and later grace periods wait forever.
 * - Tools (annotate.h): in a process watched by TSan, Helgrind or DRD, every
 *   section is counted as an unlisted one (its ctr stays 0 and its mode is
 *   MODE_FENCE, so that <sync/epoch.h>'s inline enter and exit, whose
 *   stores the tools cannot see, call the library), and ends with
 *   ann_release(&sections_ended); a retire releases there too before it
 *   queues its callback. Callbacks run, and grace periods return, after
 *   ann_acquire(&sections_ended): to the tools, a callback or whatever
 *   follows sync_epoch_synchronize happens after every section that could
 *   have seen the object. The domain's own words are ann_internal.
 * - Timely reclamation (see "the reclaimer thread"): a thread of the
 *   library, started by the first sync_epoch_retire (or a thread's 64th
 *   internal retire), runs a round every RECLAIM_PERIOD_NS while anything
 *   is pending: grace_period_poll, then every list's safe callbacks, and
 *   sleeps on its futex word when nothing is. It never waits for readers
 *   (gp_lock is only tried), takes locks in the order above, and runs
 *   callbacks like any reclaimer: run_lock shared, ann_acquire first.
 *   enter and exit do nothing for it. The child of fork() has none until
 *   it retires; exit() stops it (atexit). */
#define SYNC_NO_INLINE 1 /* this file defines what the inline paths use */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sync/epoch.h>
#include <sync/mutex.h>
#include <sync/rwlock.h>

#include "annotate.h"
#include "backoff.h"
#include "epoch_internal.h"
#include "futex.h"
#include "membarrier.h"
#include "test_hook.h"

/* Callbacks per chunk of a thread's list; a thread tries to reclaim after
 * this many retires. */
#define CHUNK_CALLBACKS 64
/* Pending callbacks past which sync_epoch_retire outside a section waits
 * for a grace period rather than let its list grow (epoch_retire_nowait,
 * for the queue and the map, never waits). */
#define PENDING_HIGH_WATER (CHUNK_CALLBACKS * 1024)

struct callback {
	void *p;
	void (*fn)(void *);
	uint64_t epoch; /* global epoch when retired */
};

/* Filled in order, so epochs never decrease along a chunk. */
struct chunk {
	struct chunk *next; /* newer */
	unsigned n;
	bool sealed; /* by sync_epoch_barrier: append to a new chunk */
	struct callback cb[CHUNK_CALLBACKS];
};

/* FIFO of chunks, oldest first. */
struct limbo {
	struct chunk *oldest, *newest;
	unsigned pending;
};

/* A thread's part of the domain, beside its reader (sync_impl_epoch_reader,
 * whose `ctr` grace periods read and whose other fields are the owner's). */
struct record {
	struct sync_impl_epoch_reader *reader;
	unsigned since_reclaim;  /* owner only */
	struct record *next;     /* registry, under registry_lock */
	sync_mutex_t limbo_lock; /* the owner and sync_epoch_barrier */
	struct limbo limbo;
	/* owner only: sections while unlisted (its ctr stays 0, so that the
	 * inline paths call the library), and the count they are in */
	unsigned unlisted_depth;
	unsigned unlisted_slot;
	bool exited; /* on_thread_exit ran: never listed again */
};

/* Initial-exec: a fixed offset from the thread pointer, no __tls_get_addr
 * call on the read side. */
static _Thread_local struct record self __attribute__((tls_model("initial-exec")));
_Thread_local struct sync_impl_epoch_reader sync_impl_epoch_reader
	__attribute__((tls_model("initial-exec")));

#define EPOCH_ONE (SYNC_IMPL_EPOCH_DEPTH + 1) /* epochs are multiples of 2^16 */
_Atomic uint64_t sync_impl_epoch_global = EPOCH_ONE;
/* Callbacks retired at an epoch below this value are safe to run. */
static _Atomic uint64_t safe_below = 1;
/* 1: the read side fences (no membarrier); 0: compiler barrier only. */
static atomic_int readers_fence;
/* Sections of unlisted threads, by the parity of the epoch they began at. */
static _Atomic unsigned long unlisted_readers[2];

static sync_mutex_t gp_lock = SYNC_MUTEX_INITIALIZER;       /* one grace period at a time */
static sync_mutex_t registry_lock = SYNC_MUTEX_INITIALIZER; /* registry list */
static sync_mutex_t orphan_lock = SYNC_MUTEX_INITIALIZER;   /* orphans */
static struct record *registry;
/* Callbacks of threads that have exited or never joined, in no order. */
static struct limbo orphans;
/* epoch_retire_nowait calls that found no memory: their objects leak. */
static atomic_ulong leaked_callbacks;

/* Held shared while callbacks run, so that sync_epoch_barrier can wait for
 * those that other threads took before it (reader preference: a callback
 * may retire, and so run callbacks, again). */
static sync_rwlock_t run_lock;
static _Thread_local unsigned running_callbacks;

/* The reclaimer thread: its state is its futex word (see "the reclaimer
 * thread" below). */
enum { RECLAIMER_NONE, RECLAIMER_RUNNING, RECLAIMER_IDLE, RECLAIMER_STOPPED };
static _Atomic uint32_t reclaimer_state;
/* The reclaimer is in run_list: the exit handler waits for it a little. */
static atomic_bool reclaimer_busy;
static atomic_bool exit_handler_set;
static _Thread_local bool on_reclaimer __attribute__((tls_model("initial-exec")));

static pthread_once_t domain_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static atomic_bool atfork_set; /* pthread_atfork succeeded (it allocates) */

/* Registered, readers fence (no membarrier): the reader's other mode. */
#define MODE_FENCE 2u

/* Tools: sections end here, retires release here, reclaimers acquire here
 * (see the top comment). Only its address is used. */
static char sections_ended;
#define sections_unlisted() ann_detector_on() /* see the top comment */

static __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("libsync: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* A full fence; ThreadSanitizer warns that it does not model fences, which
 * here only order what membarrier orders in the other mode. */
static void full_fence(void)
{
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
	atomic_thread_fence(memory_order_seq_cst);
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

/* The domain's slow paths may sleep (a cancellation point) and run
 * callbacks (which may hold some): none is a cancellation point, so that no
 * thread is cancelled holding gp_lock or run_lock. */
static int cancel_off(void)
{
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}

static void cancel_restore(int old)
{
	pthread_setcancelstate(old, NULL);
}

/* ---- the domain ----------------------------------------------------------- */

static bool membarrier_usable(void)
{
	return !membarrier_turned_off("SYNC_EPOCH_NO_MEMBARRIER") &&
	       membarrier_register_expedited();
}

/* The grace period's half of the read side's ordering: every thread of the
 * process executes a full barrier (membarrier), or, when readers fence
 * themselves, a fence here pairs with theirs. */
static void heavy_fence(void)
{
	/* relaxed: set once, before any record is registered */
	if (!atomic_load_explicit(&readers_fence, memory_order_relaxed)) {
		if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
			die("sync_epoch: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed");
	} else {
		full_fence();
	}
}

static void limbo_append_list(struct limbo *to, struct limbo *from)
{
	if (!from->oldest)
		return;
	if (to->newest)
		to->newest->next = from->oldest;
	else
		to->oldest = from->oldest;
	to->newest = from->newest;
	to->pending += from->pending;
	*from = (struct limbo){ NULL, NULL, 0 };
}

static void on_thread_exit(void *arg);
static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

/* pthread_atfork allocates: if it fails, a later join tries again. */
static void set_atfork_handlers(void)
{
	/* relaxed: a hint; the flag is set under registry_lock */
	if (atomic_load_explicit(&atfork_set, memory_order_relaxed))
		return;
	sync_mutex_lock(&registry_lock);
	if (!atomic_load_explicit(&atfork_set, memory_order_relaxed) &&
	    pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0)
		atomic_store_explicit(&atfork_set, true, memory_order_relaxed);
	sync_mutex_unlock(&registry_lock);
}

static void init_domain(void)
{
	ann_internal(&sync_impl_epoch_global, sizeof sync_impl_epoch_global);
	ann_internal(&safe_below, sizeof safe_below);
	ann_internal(&readers_fence, sizeof readers_fence);
	ann_internal(unlisted_readers, sizeof unlisted_readers);
	ann_internal(&leaked_callbacks, sizeof leaked_callbacks);
	ann_internal(&atfork_set, sizeof atfork_set);
	ann_internal(&reclaimer_state, sizeof reclaimer_state);
	ann_internal(&reclaimer_busy, sizeof reclaimer_busy);
	ann_internal(&exit_handler_set, sizeof exit_handler_set);
	atomic_store(&readers_fence, !membarrier_usable());
	sync_rwlock_init(&run_lock, SYNC_RWLOCK_PREFER_READER);
	if (pthread_key_create(&exit_key, on_thread_exit) != 0)
		die("sync_epoch: no pthread key left for thread-exit handling");
	ann_release(&domain_once); /* Helgrind and DRD do not see pthread_once */
}

/* Links the calling thread's record into the registry, unless its exit
 * could not remove it again: the key's value first (glibc allocates its
 * slot when 32 or more keys exist, and that can fail). */
static bool join_domain(struct record *r)
{
	pthread_once(&domain_once, init_domain);
	ann_acquire(&domain_once); /* init_domain's ann_release */
	set_atfork_handlers();
	if (r->exited || pthread_setspecific(exit_key, r) != 0)
		return false;
	r->reader = &sync_impl_epoch_reader;
	ann_internal(r->reader, sizeof *r->reader);
	sync_mutex_init(&r->limbo_lock, 0);
	sync_mutex_lock(&registry_lock);
	r->next = registry;
	registry = r;
	sync_mutex_unlock(&registry_lock);
	/* relaxed: set once, in init_domain, before */
	r->reader->mode = atomic_load_explicit(&readers_fence, memory_order_relaxed) ||
					  sections_unlisted()
				  ? MODE_FENCE : SYNC_IMPL_EPOCH_MEMBARRIER;
	return true;
}

/* The calling thread's record if it is listed, joining first if need be;
 * NULL if it cannot join (it is then an unlisted reader). The domain is
 * set up either way. */
static struct record *listed_self(void)
{
	if (__builtin_expect(sync_impl_epoch_reader.mode != 0, 1))
		return &self;
	int saved = errno; /* membarrier(2) at the first use */
	bool joined = join_domain(&self);
	errno = saved;
	return joined ? &self : NULL;
}

/* ---- read side (also inline in <sync/epoch.h>) ---------------------------- */

static uint64_t depth_of(uint64_t ctr)
{
	return ctr & SYNC_IMPL_EPOCH_DEPTH;
}

static unsigned parity_of(uint64_t epoch)
{
	return (unsigned)(epoch / EPOCH_ONE) & 1u;
}

/* The calling thread's section depth. relaxed: its own word. */
static uint64_t own_depth(void)
{
	return depth_of(atomic_load_explicit(&sync_impl_epoch_reader.ctr,
					     memory_order_relaxed)) +
	       self.unlisted_depth;
}

/* An unlisted thread's outermost enter: count itself under the parity of
 * the epoch it loads, fence, and check that the epoch is still the same;
 * else a grace period started meanwhile, and it counts itself again. The
 * argument, with S the single order of seq_cst operations and fences:
 * - if the check reads T - 1, the fence F precedes the bump to T in S
 *   (the check is coherence-ordered before the bump), so F precedes the
 *   grace period's heavy_fence, after which it reads the count: it sees us;
 * - if the first load reads T or later, the bump to T precedes F in S, so
 *   the section's loads see everything stored before a fence that precedes
 *   the bump, the retire stamps' fences included (see retire_stamp). */
static void unlisted_enter(struct record *r)
{
	if (r->unlisted_depth++)
		return;
	for (;;) {
		/* relaxed: F below orders it, see above */
		uint64_t e = atomic_load_explicit(&sync_impl_epoch_global, memory_order_relaxed);
		unsigned slot = parity_of(e);
		atomic_fetch_add_explicit(&unlisted_readers[slot], 1, memory_order_relaxed);
		full_fence(); /* F: pairs with heavy_fence */
		/* acquire: pairs with the bump, as in sync_epoch_enter */
		if (atomic_load_explicit(&sync_impl_epoch_global, memory_order_acquire) == e) {
			r->unlisted_slot = slot;
			return;
		}
		atomic_fetch_sub_explicit(&unlisted_readers[slot], 1, memory_order_relaxed);
	}
}

static void unlisted_exit(struct record *r)
{
	if (--r->unlisted_depth)
		return;
	ann_release(&sections_ended);
	/* release: the section's reads happen before a grace period that reads
	 * the count without us (acquire, in reader_blocks) */
	atomic_fetch_sub_explicit(&unlisted_readers[r->unlisted_slot], 1,
				  memory_order_release);
}

void sync_epoch_enter(void)
{
	struct sync_impl_epoch_reader *r = &sync_impl_epoch_reader;
	/* relaxed: the thread's own word */
	uint64_t v = atomic_load_explicit(&r->ctr, memory_order_relaxed);
	if (v || self.unlisted_depth) {
		if (depth_of(v) == SYNC_IMPL_EPOCH_DEPTH ||
		    self.unlisted_depth == SYNC_IMPL_EPOCH_DEPTH)
			die("sync_epoch_enter: sections nested 65535 deep");
		if (!v) {
			unlisted_enter(&self);
			return;
		}
		/* relaxed: a nested section orders nothing */
		atomic_store_explicit(&r->ctr, v + 1, memory_order_relaxed);
		return;
	}
	if (!listed_self() || sections_unlisted()) {
		unlisted_enter(&self);
		return;
	}
	/* acquire: pairs with the grace period's bump (a seq_cst RMW), so that
	 * a section that sees the new epoch also sees what was unlinked before
	 * it, even where loads may pass loads (an old value only makes grace
	 * periods wait longer) */
	uint64_t e = atomic_load_explicit(&sync_impl_epoch_global, memory_order_acquire);
	/* relaxed: ordered before the section's loads by the barrier below and
	 * the grace period's heavy_fence (membarrier), or by the fence */
	atomic_store_explicit(&r->ctr, e | 1, memory_order_relaxed);
	if (r->mode != SYNC_IMPL_EPOCH_MEMBARRIER) {
		full_fence(); /* pairs with heavy_fence */
	} else {
		atomic_signal_fence(memory_order_seq_cst); /* membarrier does the rest */
	}
}

void sync_epoch_exit(void)
{
	struct sync_impl_epoch_reader *r = &sync_impl_epoch_reader;
	/* relaxed: the thread's own word */
	uint64_t v = atomic_load_explicit(&r->ctr, memory_order_relaxed);
	if (!depth_of(v)) {
		if (!self.unlisted_depth)
			die("sync_epoch_exit without sync_epoch_enter");
		unlisted_exit(&self);
		return;
	}
	if (depth_of(v) > 1) {
		/* relaxed: a nested section orders nothing */
		atomic_store_explicit(&r->ctr, v - 1, memory_order_relaxed);
		return;
	}
	/* release: the section's reads happen before a grace period that sees
	 * 0 (its acquire load in reader_blocks) and so before the callbacks */
	atomic_store_explicit(&r->ctr, 0, memory_order_release);
}

/* ---- grace periods -------------------------------------------------------- */

/* True if some thread is in a section that began before epoch `target`. */
static bool reader_blocks(uint64_t target)
{
	/* acquire: pairs with the release in unlisted_exit */
	if (atomic_load_explicit(&unlisted_readers[parity_of(target - EPOCH_ONE)],
				 memory_order_acquire))
		return true;
	bool blocked = false;
	sync_mutex_lock(&registry_lock);
	for (struct record *r = registry; r && !blocked; r = r->next) {
		/* acquire: pairs with the release in sync_epoch_exit */
		uint64_t a = atomic_load_explicit(&r->reader->ctr, memory_order_acquire);
		blocked = a && a - depth_of(a) < target;
	}
	sync_mutex_unlock(&registry_lock);
	return blocked;
}

/* Polls with growing pauses: a few spins, then yields, then sleeps of up
 * to 1 ms. The registry lock is not held in between. */
static void wait_for_readers(uint64_t target)
{
	for (unsigned round = 0; reader_blocks(target); round++) {
		if (round < 4) {
			cpu_relax_n(64u << round);
		} else if (round < 12) {
			sched_yield();
		} else {
			unsigned shift = round - 12 < 10 ? round - 12 : 10;
			struct timespec ts = { 0, 1000L << shift };
			nanosleep(&ts, NULL);
		}
	}
}

/* Raises safe_below to target (it only grows). Only grace periods write
 * it, under gp_lock; reclaimers read it without. */
static void mark_safe_below(uint64_t target)
{
	if (atomic_load(&safe_below) < target)
		atomic_store(&safe_below, target);
}

/* Target of a grace period started by grace_period_poll and not yet seen
 * through; 0 if none. Under gp_lock. Another grace period starts only once
 * this one is seen through (the unlisted counts rely on it). */
static uint64_t gp_started;

/* Bumps the epoch: sections that begin from now on cannot see what was
 * unlinked before. seq_cst: after the caller's unlinks, before the scan. */
static uint64_t start_grace_period(void)
{
	uint64_t target = atomic_fetch_add(&sync_impl_epoch_global, EPOCH_ONE) + EPOCH_ONE;
	heavy_fence();
	return target;
}

/* A full grace period: every section running at the call has ended when it
 * returns. Serialised by gp_lock. */
static void grace_period(void)
{
	sync_mutex_lock(&gp_lock);
	if (gp_started) {
		wait_for_readers(gp_started);
		mark_safe_below(gp_started);
		gp_started = 0;
	}
	uint64_t target = start_grace_period();
	wait_for_readers(target);
	mark_safe_below(target);
	ann_acquire(&sections_ended);
	sync_mutex_unlock(&gp_lock);
}

/* Sees through the grace period started by grace_period_poll if its
 * readers are gone. Under gp_lock. */
static void see_through_started(void)
{
	if (gp_started && !reader_blocks(gp_started)) {
		mark_safe_below(gp_started);
		gp_started = 0;
	}
}

/* The same without waiting: sees through the grace period started last
 * time if its readers are gone, starts the next one, and looks at once
 * whether that one is over too (it is when no thread is in a section). */
static void grace_period_poll(void)
{
	if (sync_mutex_trylock(&gp_lock) != 0)
		return;
	see_through_started();
	if (!gp_started) {
		gp_started = start_grace_period();
		see_through_started();
	}
	sync_mutex_unlock(&gp_lock);
}

/* ---- callbacks ------------------------------------------------------------ */

static bool reclaimer_stopping(void);
static void reclaimer_kick(bool may_start);

/* The process is exiting and the reclaimer stops: the callbacks it did
 * not run, from cb[first] of c on, go back to the front of the orphans
 * (they are the oldest), where they stay pending as every callback does at
 * exit, and reachable: a leak checker at exit must not see them lost. */
static void keep_unrun(struct chunk *c, unsigned first)
{
	memmove(c->cb, c->cb + first, (c->n - first) * sizeof c->cb[0]);
	c->n -= first;
	struct limbo rest = { c, c, 0 };
	for (struct chunk *k = c; k; k = k->next) {
		rest.newest = k;
		rest.pending += k->n;
	}
	sync_mutex_lock(&orphan_lock);
	limbo_append_list(&rest, &orphans);
	orphans = rest;
	sync_mutex_unlock(&orphan_lock);
}

/* Callers hold run_lock shared from before they detach the list, with
 * cancellation off. Returns how many callbacks ran. The reclaimer stops
 * once the process exits (the rest stay pending, as pending ones do). */
static size_t run_list(struct limbo *list)
{
	size_t ran = 0;
	if (list->oldest)
		ann_acquire(&sections_ended);
	running_callbacks++;
	struct chunk *c = list->oldest;
	while (c) {
		unsigned i = 0;
		for (; i < c->n; i++, ran++) {
			if (reclaimer_stopping()) {
				keep_unrun(c, i);
				running_callbacks--;
				return ran;
			}
			c->cb[i].fn(c->cb[i].p);
		}
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	running_callbacks--;
	return ran;
}

static bool chunk_safe(const struct chunk *c, uint64_t safe)
{
	return c->n && c->cb[c->n - 1].epoch < safe;
}

static void move_chunk(struct limbo *from, struct chunk *prev, struct chunk *c,
		       struct limbo *out)
{
	if (prev)
		prev->next = c->next;
	else
		from->oldest = c->next;
	if (from->newest == c)
		from->newest = prev;
	from->pending -= c->n;
	c->next = NULL;
	struct limbo one = { c, c, c->n };
	limbo_append_list(out, &one);
}

/* A thread's list is in epoch order: moves its safe prefix to `out`. The
 * chunk being filled goes too if `take_newest` (its owner asks), else only
 * once full or sealed. */
static void detach_safe(struct limbo *from, struct limbo *out, bool take_newest)
{
	uint64_t safe = atomic_load(&safe_below);
	struct chunk *c;
	while ((c = from->oldest) && chunk_safe(c, safe) &&
	       (c != from->newest || take_newest || c->n == CHUNK_CALLBACKS ||
		c->sealed))
		move_chunk(from, NULL, c, out);
}

/* The orphans come from many threads, in no order: moves every safe chunk. */
static void detach_safe_orphans(struct limbo *out)
{
	uint64_t safe = atomic_load(&safe_below);
	struct chunk *prev = NULL, *c = orphans.oldest;
	while (c) {
		struct chunk *next = c->next;
		if (chunk_safe(c, safe))
			move_chunk(&orphans, prev, c, out);
		else
			prev = c;
		c = next;
	}
}

/* A list is in epoch order, so once its safe chunks are gone only the
 * oldest left may be partly safe: moves that chunk's safe head into spare
 * (an empty chunk) and spare to `out`; true if it did. The whole chunk goes
 * if it is safe by now: no chunk is ever left empty, which would stop
 * detach_safe at it. Without this, the callbacks of a thread that retires
 * seldom but regularly would wait for their chunk to fill up. */
static bool detach_safe_head(struct limbo *from, struct limbo *out, struct chunk *spare)
{
	uint64_t safe = atomic_load(&safe_below);
	struct chunk *c = from->oldest;
	unsigned k = 0;
	while (c && k < c->n && c->cb[k].epoch < safe)
		k++;
	if (!k)
		return false;
	if (k == c->n) { /* safe_below grew since detach_safe looked */
		move_chunk(from, NULL, c, out);
		return false;
	}
	memcpy(spare->cb, c->cb, k * sizeof c->cb[0]);
	spare->n = k;
	memmove(c->cb, c->cb + k, (c->n - k) * sizeof c->cb[0]);
	c->n -= k;
	from->pending -= k;
	struct limbo one = { spare, spare, k };
	limbo_append_list(out, &one);
	return true;
}

static struct chunk *chunk_new(void);

/* Every safe callback of a thread's list, partly safe chunk included (into
 * *spare, which it then takes; NULL: none, the head waits). Under the
 * list's lock. */
static void detach_all_safe(struct limbo *from, struct limbo *out, struct chunk **spare)
{
	detach_safe(from, out, true);
	if (*spare && detach_safe_head(from, out, *spare))
		*spare = NULL;
}

/* Runs the safe callbacks of r (NULL: an unlisted thread, which has none),
 * and the orphans' if no other thread is at them. */
static void run_safe_callbacks(struct record *r)
{
	struct limbo ready = { NULL, NULL, 0 };
	sync_rwlock_rdlock(&run_lock);
	if (r) {
		sync_mutex_lock(&r->limbo_lock);
		detach_safe(&r->limbo, &ready, true);
		sync_mutex_unlock(&r->limbo_lock);
	}
	if (sync_mutex_trylock(&orphan_lock) == 0) {
		detach_safe_orphans(&ready);
		sync_mutex_unlock(&orphan_lock);
	}
	run_list(&ready);
	sync_rwlock_rdunlock(&run_lock);
}

/* The epoch a callback retired now is stamped with; it may run once a grace
 * period with a greater target is over. The caller's unlink store (a
 * release store at best, as the map's MOVED store) comes before, and a store
 * followed by a load is not ordered by itself, in C11 or on x86: the fence
 * orders them. The argument, with S the single order of seq_cst fences and
 * operations: the stamp reads E, so it is coherence-ordered before the bump
 * to E + 1 (a seq_cst RMW), and the fence precedes that bump in S. A section
 * that could still see p after a grace period with target T > E began at an
 * epoch of T or more: its enter read the bump to T or a later one, so the
 * bump precedes the fence of that enter (fence mode), or the barrier that
 * membarrier(2) makes a fence (as in liburcu-memb), in S; the unlink was
 * sequenced before our fence, which precedes that one, so the section's
 * loads see it. Sections that began below T are waited for. */
static uint64_t retire_stamp(void)
{
	full_fence();
	/* relaxed: ordered by the fence above */
	return atomic_load_explicit(&sync_impl_epoch_global, memory_order_relaxed);
}

static struct chunk *chunk_new(void)
{
	struct chunk *c = malloc(sizeof *c);
	if (c) {
		c->next = NULL;
		c->n = 0;
		c->sealed = false;
	}
	return c;
}

/* Appends to l, a chunk from malloc if `may_allocate`; returns the
 * callbacks now pending there, or 0 if there was no room. The caller holds
 * l's lock, and stamps under it, so that epochs never decrease along l. */
static unsigned limbo_append(struct limbo *l, void *p, void (*fn)(void *),
			     bool may_allocate)
{
	struct chunk *c = l->newest;
	if (!c || c->n == CHUNK_CALLBACKS || c->sealed) {
		if (!may_allocate || !(c = chunk_new()))
			return 0;
		struct limbo one = { c, c, 0 };
		limbo_append_list(l, &one);
	}
	c->cb[c->n++] = (struct callback){ p, fn, retire_stamp() };
	return ++l->pending;
}

/* The calling thread's list, or the orphans' for an unlisted thread. */
static unsigned append_callback(struct record *r, void *p, void (*fn)(void *),
				bool may_allocate)
{
	sync_mutex_t *lock = r ? &r->limbo_lock : &orphan_lock;
	sync_mutex_lock(lock);
	unsigned pending = limbo_append(r ? &r->limbo : &orphans, p, fn, may_allocate);
	sync_mutex_unlock(lock);
	return pending;
}

/* No memory for the callback: outside a section, wait for a grace period
 * (which covers p: the caller unlinked it before) and run it here; inside,
 * keep trying, since a grace period would wait for ourselves. */
static void retire_waiting_for_memory(struct record *r, void *p, void (*fn)(void *))
{
	while (own_depth()) {
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
		if (append_callback(r, p, fn, true))
			return;
	}
	grace_period();
	run_safe_callbacks(r);
	fn(p);
}

/* No memory, and no waiting: run what is safe (it frees chunks), try again,
 * then squeeze into the newest orphan chunk; past that the object leaks. */
static void retire_without_waiting(struct record *r, void *p, void (*fn)(void *))
{
	run_safe_callbacks(r);
	if (append_callback(r, p, fn, true) || append_callback(NULL, p, fn, false))
		return;
	atomic_fetch_add_explicit(&leaked_callbacks, 1, memory_order_relaxed); /* a statistic */
}

/* Every 64th retire of a thread: see through the last grace period or
 * start one, and run what is safe. */
static void reclaim_now_and_then(struct record *r, unsigned pending, bool may_wait)
{
	if (++self.since_reclaim < CHUNK_CALLBACKS)
		return;
	self.since_reclaim = 0;
	int cancel = cancel_off();
	if (may_wait && !own_depth() && pending >= PENDING_HIGH_WATER)
		grace_period();
	else
		grace_period_poll();
	run_safe_callbacks(r);
	reclaimer_kick(true);
	cancel_restore(cancel);
}

static void retire_without_memory(struct record *r, void *p, void (*fn)(void *),
				  bool may_wait)
{
	int cancel = cancel_off();
	if (may_wait)
		retire_waiting_for_memory(r, p, fn);
	else
		retire_without_waiting(r, p, fn);
	cancel_restore(cancel);
}

static void retire(void *p, void (*fn)(void *), bool may_wait)
{
	int saved = errno; /* malloc, nanosleep, membarrier(2) */
	/* an unlisted thread joins only outside its sections */
	struct record *r = self.unlisted_depth ? NULL : listed_self();
	ann_release(&sections_ended); /* p's last writes, before the callback */
	unsigned pending = append_callback(r, p, fn, true);
	if (!pending)
		retire_without_memory(r, p, fn, may_wait);
	else
		reclaim_now_and_then(r, pending, may_wait);
	/* the queue's and map's retires (no waiting, no memory but their
	 * list's) start no thread: their thread's first reclaim attempt
	 * does, in reclaim_now_and_then */
	reclaimer_kick(may_wait);
	errno = saved;
}

void sync_epoch_retire(void *p, void (*fn)(void *))
{
	if (fn)
		retire(p, fn, true);
}

void epoch_retire_nowait(void *p, void (*fn)(void *))
{
	retire(p, fn, false);
}

static void refuse_inside_section(const char *who)
{
	if (own_depth())
		die("%s inside a read-side section (would deadlock)", who);
}

void sync_epoch_synchronize(void)
{
	refuse_inside_section("sync_epoch_synchronize");
	int saved = errno, cancel = cancel_off();
	struct record *r = listed_self();
	grace_period();
	run_safe_callbacks(r);
	cancel_restore(cancel);
	errno = saved;
}

/* Seals every thread's newest chunk, so that nothing retired after this
 * point joins a chunk with what was retired before it. */
static void seal_all(void)
{
	sync_mutex_lock(&registry_lock);
	for (struct record *r = registry; r; r = r->next) {
		sync_mutex_lock(&r->limbo_lock);
		if (r->limbo.newest)
			r->limbo.newest->sealed = true;
		sync_mutex_unlock(&r->limbo_lock);
	}
	sync_mutex_unlock(&registry_lock);
}

/* Takes every sealed chunk of every thread, and all safe orphans: a thread
 * that exits meanwhile moves its list to the orphans under registry_lock,
 * so its sealed chunks are in one of the two places. */
static void detach_sealed(struct limbo *out)
{
	sync_mutex_lock(&registry_lock);
	for (struct record *r = registry; r; r = r->next) {
		sync_mutex_lock(&r->limbo_lock);
		detach_safe(&r->limbo, out, false);
		sync_mutex_unlock(&r->limbo_lock);
	}
	sync_mutex_lock(&orphan_lock);
	detach_safe_orphans(out);
	sync_mutex_unlock(&orphan_lock);
	sync_mutex_unlock(&registry_lock);
}

/* Seal, one grace period (it covers every sealed callback), then run them
 * all here. Callbacks retired meanwhile may run too, or wait for later. */
void sync_epoch_barrier(void)
{
	refuse_inside_section("sync_epoch_barrier");
	int saved = errno, cancel = cancel_off();
	listed_self(); /* sets the domain up */
	seal_all();
	grace_period();
	struct limbo ready = { NULL, NULL, 0 };
	sync_rwlock_rdlock(&run_lock);
	detach_sealed(&ready);
	run_list(&ready);
	sync_rwlock_rdunlock(&run_lock);
	/* wait for callbacks that other threads took before: they hold
	 * run_lock shared from before they took them (not from inside a
	 * callback: that would wait for itself) */
	if (!running_callbacks) {
		sync_rwlock_wrlock(&run_lock);
		sync_rwlock_wrunlock(&run_lock);
	}
	cancel_restore(cancel);
	errno = saved;
}

/* Callbacks pending in r's list (NULL: none) and, unless another thread
 * holds them, the orphans. */
static size_t pending_here(struct record *r)
{
	size_t n = 0;
	if (r) {
		sync_mutex_lock(&r->limbo_lock);
		n = r->limbo.pending;
		sync_mutex_unlock(&r->limbo_lock);
	}
	if (sync_mutex_trylock(&orphan_lock) == 0) {
		n += orphans.pending;
		sync_mutex_unlock(&orphan_lock);
	}
	return n;
}

/* Runs every safe callback of r, its partly safe chunk's head included,
 * and the safe orphans if no other thread is at them; returns how many. */
static size_t run_all_safe_here(struct record *r)
{
	struct limbo ready = { NULL, NULL, 0 };
	struct chunk *spare = chunk_new();
	sync_rwlock_rdlock(&run_lock);
	if (r) {
		sync_mutex_lock(&r->limbo_lock);
		detach_all_safe(&r->limbo, &ready, &spare);
		sync_mutex_unlock(&r->limbo_lock);
	}
	if (sync_mutex_trylock(&orphan_lock) == 0) {
		detach_safe_orphans(&ready);
		sync_mutex_unlock(&orphan_lock);
	}
	size_t ran = run_list(&ready);
	sync_rwlock_rdunlock(&run_lock);
	free(spare);
	return ran;
}

/* ---- the reclaimer thread ------------------------------------------------ */

/* States of the reclaimer, in its futex word. NONE: no thread (none was
 * needed yet, its start failed, or a fork child); RUNNING: it runs a round
 * every RECLAIM_PERIOD_NS while callbacks are pending; IDLE: nothing was
 * pending, it sleeps until a retire wakes it; STOPPED: the process exits,
 * it has ended or ends after the callback it is in, and none starts again.
 * Lost wake-ups: the reclaimer stores IDLE, then looks at every list under
 * its lock; a retire appends under that lock, then loads the state. If the
 * look missed the append, the look's unlock happened before the append's
 * lock (or, for a thread that joined after the look, the look's unlock of
 * registry_lock before the join's lock), so the IDLE store happens before
 * the retire's load, which reads IDLE or a later state: it wakes the
 * reclaimer, or the reclaimer is awake already. */
/* A round at most every 50 ms: a callback runs within two rounds of its
 * retire once its readers are gone, the first starting a grace period, the
 * second seeing it through. */
#define RECLAIM_PERIOD_NS 50000000L

/* seq_cst: against the exit handler's STOPPED store and its load of
 * reclaimer_busy (one of the two sees the other). */
static bool reclaimer_stopping(void)
{
	return on_reclaimer && atomic_load(&reclaimer_state) == RECLAIMER_STOPPED;
}

/* Walks every thread's list and the orphans: moves what is safe to `ready`
 * (NULL: only count); returns how many callbacks are left pending. */
static size_t walk_lists(struct limbo *ready)
{
	size_t left = 0;
	struct chunk *spare = NULL;
	sync_mutex_lock(&registry_lock);
	for (struct record *r = registry; r; r = r->next) {
		if (ready && !spare)
			spare = chunk_new();
		sync_mutex_lock(&r->limbo_lock);
		if (ready)
			detach_all_safe(&r->limbo, ready, &spare);
		left += r->limbo.pending;
		sync_mutex_unlock(&r->limbo_lock);
	}
	sync_mutex_lock(&orphan_lock);
	if (ready)
		detach_safe_orphans(ready);
	left += orphans.pending;
	sync_mutex_unlock(&orphan_lock);
	sync_mutex_unlock(&registry_lock);
	free(spare);
	return left;
}

/* One round: see through the grace period started last round and start
 * the next, run every safe callback of every thread; returns how many are
 * left pending. */
static size_t reclaim_round(void)
{
	grace_period_poll();
	struct limbo ready = { NULL, NULL, 0 };
	sync_rwlock_rdlock(&run_lock);
	size_t left = walk_lists(&ready);
	atomic_store(&reclaimer_busy, true); /* seq_cst: see reclaimer_stopping */
	run_list(&ready);
	atomic_store(&reclaimer_busy, false);
	sync_rwlock_rdunlock(&run_lock);
	return left;
}

/* Runs the safe callbacks of every thread's list and the orphans, unless a
 * barrier holds the run lock (then it leaves them to the barrier); returns
 * how many ran. */
static size_t run_safe_everywhere(void)
{
	if (sync_rwlock_tryrdlock(&run_lock))
		return 0;
	struct limbo ready = { NULL, NULL, 0 };
	walk_lists(&ready);
	size_t ran = run_list(&ready);
	sync_rwlock_rdunlock(&run_lock);
	return ran;
}

/* Without waiting: see through the grace period under way, or start one
 * and look whether it is over at once; run what is safe, the calling
 * thread's own callbacks first, then, while the reclaimer has work (other
 * threads' callbacks are pending), every thread's. Nothing pending costs
 * no grace period (no membarrier(2)). */
size_t sync_epoch_poll(void)
{
	int saved = errno, cancel = cancel_off();
	struct record *r = self.unlisted_depth ? NULL : listed_self();
	/* A hint: a retire after this load is run by the reclaimer or later. */
	bool others = atomic_load(&reclaimer_state) == RECLAIMER_RUNNING;
	bool own = pending_here(r) != 0;
	size_t ran = 0;
	if (own || others)
		grace_period_poll();
	if (own) {
		ran = run_all_safe_here(r);
		if (pending_here(r))
			reclaimer_kick(true); /* a fork child's inherited callbacks */
	}
	if (others)
		ran += run_safe_everywhere();
	cancel_restore(cancel);
	errno = saved;
	return ran;
}

/* Sleeps until `until` (CLOCK_MONOTONIC; NULL: no limit) while the state
 * is `state`. */
static void reclaimer_sleep(uint32_t state, const struct timespec *until)
{
	while (atomic_load(&reclaimer_state) == state &&
	       futex_wait(&reclaimer_state, state, until, FUTEX_BITSET_MATCH_ANY, false) !=
		       ETIMEDOUT)
		;
}

static void reclaimer_nap(void)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += RECLAIM_PERIOD_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	reclaimer_sleep(RECLAIMER_RUNNING, &until);
}

/* Nothing was pending: IDLE, look again (see the state's comment), sleep
 * until a retire wakes us. */
static void reclaimer_idle(void)
{
	uint32_t expect = RECLAIMER_RUNNING;
	if (!atomic_compare_exchange_strong(&reclaimer_state, &expect, RECLAIMER_IDLE))
		return; /* STOPPED */
	if (walk_lists(NULL)) {
		expect = RECLAIMER_IDLE;
		atomic_compare_exchange_strong(&reclaimer_state, &expect, RECLAIMER_RUNNING);
		return;
	}
	reclaimer_sleep(RECLAIMER_IDLE, NULL);
}

/* Never joins the domain by itself (callbacks may make it join); runs with
 * every signal blocked and cancellation off. */
static void *reclaimer_main(void *arg)
{
	(void)arg;
	on_reclaimer = true;
	cancel_off();
	while (atomic_load(&reclaimer_state) != RECLAIMER_STOPPED) {
		if (reclaim_round())
			reclaimer_nap();
		else
			reclaimer_idle();
	}
	return NULL;
}

/* atexit: pending callbacks are not run at exit, by the reclaimer either;
 * the one it is running may finish (100 ms at most, in case it waits for
 * the exiting thread). */
static void reclaimer_stop_at_exit(void)
{
	uint32_t was = atomic_exchange(&reclaimer_state, RECLAIMER_STOPPED);
	if (was == RECLAIMER_NONE || was == RECLAIMER_STOPPED)
		return;
	futex_wake(&reclaimer_state, INT_MAX, FUTEX_BITSET_MATCH_ANY, false);
	for (int ms = 0; ms < 100 && !on_reclaimer && atomic_load(&reclaimer_busy); ms++) {
		struct timespec one = { 0, 1000000L };
		nanosleep(&one, NULL);
	}
}

/* Detached (nobody joins it) and with every signal blocked, so that the
 * program's handlers run in its own threads. Returns 0 or an errno value. */
static int spawn_reclaimer(void)
{
	pthread_attr_t attr;
	int err = pthread_attr_init(&attr);
	if (err)
		return err;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	err = pthread_create(&t, &attr, reclaimer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

/* Lazily, by the first callback queued: a process that never retires has
 * no reclaimer. If the thread cannot start, a later retire tries again. */
static void reclaimer_start(void)
{
	uint32_t expect = RECLAIMER_NONE;
	if (!atomic_compare_exchange_strong(&reclaimer_state, &expect, RECLAIMER_RUNNING))
		return;
	if (!atomic_exchange(&exit_handler_set, true) && atexit(reclaimer_stop_at_exit) != 0)
		atomic_store(&exit_handler_set, false);
	if (spawn_reclaimer() != 0) {
		expect = RECLAIMER_RUNNING;
		atomic_compare_exchange_strong(&reclaimer_state, &expect, RECLAIMER_NONE);
	}
}

/* After a callback was queued: the reclaimer will see it (woken from its
 * idle sleep, or started if `may_start`). One load when it runs. relaxed:
 * the list locks order it, see the states' comment. */
static void reclaimer_kick(bool may_start)
{
	uint32_t state = atomic_load_explicit(&reclaimer_state, memory_order_relaxed);
	if (__builtin_expect(state == RECLAIMER_RUNNING, 1))
		return;
	if (state == RECLAIMER_IDLE) {
		if (atomic_compare_exchange_strong(&reclaimer_state, &state, RECLAIMER_RUNNING))
			futex_wake(&reclaimer_state, 1, FUTEX_BITSET_MATCH_ANY, false);
	} else if (state == RECLAIMER_NONE && may_start) {
		reclaimer_start();
	}
}

/* ---- thread exit and fork ------------------------------------------------- */

/* Pthread key destructor: the record leaves the registry (its memory goes
 * with the thread) and its callbacks go to the orphans, in one step under
 * registry_lock; a thread that exits inside a section leaves it. Then it
 * reclaims what it can, so that the orphans of many short-lived threads do
 * not pile up: each exit sees through the grace period the one before
 * started. Callbacks that call us later in this thread find it unlisted. */
static void on_thread_exit(void *arg)
{
	struct record *r = arg;
	int saved = errno, cancel = cancel_off();
	atomic_store_explicit(&r->reader->ctr, 0, memory_order_release); /* see exit */
	if (r->unlisted_depth) { /* a section under a tool (see the top comment) */
		r->unlisted_depth = 1;
		unlisted_exit(r);
	}
	sync_mutex_lock(&registry_lock);
	sync_mutex_lock(&r->limbo_lock);
	sync_mutex_lock(&orphan_lock);
	bool orphaned = r->limbo.pending || orphans.pending;
	limbo_append_list(&orphans, &r->limbo);
	sync_mutex_unlock(&orphan_lock);
	sync_mutex_unlock(&r->limbo_lock);
	for (struct record **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	sync_mutex_unlock(&registry_lock);
	sync_mutex_destroy(&r->limbo_lock); /* unreachable now; tells the tools */
	r->reader->mode = 0;
	r->exited = true;
	TEST_HOOK("epoch_thread_exit:unlisted");
	if (orphaned) {
		grace_period_poll();
		run_safe_callbacks(NULL);
		reclaimer_kick(true);
	}
	cancel_restore(cancel);
	errno = saved;
}

/* fork(): hold the list locks across it, so that the child sees consistent
 * lists; the child keeps only its own thread, the others' callbacks become
 * orphans (their threads do not exist there). Not gp_lock: a grace period
 * holds it while it waits for the forking thread's section. Lock order:
 * registry, each record, orphans. */
static void atfork_prepare(void)
{
	sync_mutex_lock(&registry_lock);
	for (struct record *r = registry; r; r = r->next)
		sync_mutex_lock(&r->limbo_lock);
	sync_mutex_lock(&orphan_lock);
}

static void atfork_parent(void)
{
	sync_mutex_unlock(&orphan_lock);
	for (struct record *r = registry; r; r = r->next)
		sync_mutex_unlock(&r->limbo_lock);
	sync_mutex_unlock(&registry_lock);
}

/* A grace period of the parent may have been under way (gp_lock held by a
 * thread that the child lacks): the child takes it as started and not seen
 * through, so that its next one waits for it first. */
static void atfork_child(void)
{
	int saved = errno;
	for (struct record *r = registry; r; r = r->next) {
		if (r != &self) {
			limbo_append_list(&orphans, &r->limbo);
			/* relaxed: single-threaded here */
			atomic_store_explicit(&r->reader->ctr, 0, memory_order_relaxed);
		}
		sync_mutex_init(&r->limbo_lock, 0);
	}
	registry = sync_impl_epoch_reader.mode ? &self : NULL;
	self.next = NULL;
	/* relaxed: single-threaded here */
	gp_started = atomic_load_explicit(&sync_impl_epoch_global, memory_order_relaxed);
	atomic_store_explicit(&unlisted_readers[0], 0, memory_order_relaxed);
	atomic_store_explicit(&unlisted_readers[1], 0, memory_order_relaxed);
	if (self.unlisted_depth)
		atomic_store_explicit(&unlisted_readers[self.unlisted_slot], 1,
				      memory_order_relaxed);
	sync_mutex_init(&orphan_lock, 0);
	sync_mutex_init(&registry_lock, 0);
	sync_mutex_init(&gp_lock, 0);
	sync_rwlock_init(&run_lock, SYNC_RWLOCK_PREFER_READER);
	/* no reclaimer here, unless a callback of the parent's forked (the
	 * child's thread then is it); relaxed: single-threaded here */
	if (atomic_load_explicit(&reclaimer_state, memory_order_relaxed) != RECLAIMER_STOPPED)
		atomic_store_explicit(&reclaimer_state,
				      on_reclaimer ? RECLAIMER_RUNNING : RECLAIMER_NONE,
				      memory_order_relaxed);
	atomic_store_explicit(&reclaimer_busy, false, memory_order_relaxed);
	/* relaxed: single-threaded here */
	if (!atomic_load_explicit(&readers_fence, memory_order_relaxed) &&
	    !membarrier_register_expedited()) {
		atomic_store(&readers_fence, 1);
		if (sync_impl_epoch_reader.mode)
			sync_impl_epoch_reader.mode = MODE_FENCE;
	}
	errno = saved;
}
