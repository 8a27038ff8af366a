/* Epoch-based reclamation: a global epoch counter and one record per thread
 * (Fraser, "Practical lock-freedom", 2004, ch. 5), with epoch values instead
 * of a three-epoch ring, so one grace period is one bump of the counter and
 * one scan. The read side pays no fence: the grace period issues
 * membarrier(2) instead, as liburcu's memb flavour does (Desnoyers et al.,
 * "User-Level Implementations of Read-Copy Update", IEEE TPDS 2012). */
#define SYNC_NO_INLINE 1 /* this file defines what the inline paths use */
#include <errno.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sync/epoch.h>
#include <sync/mutex.h>
#include <sync/rwlock.h>

#include "backoff.h"

/* Callbacks per chunk of a thread's list; a thread tries to reclaim after
 * this many retires. */
#define CHUNK_CALLBACKS 64
/* Pending callbacks past which a retire outside a section waits for a
 * grace period rather than let its list grow. */
#define PENDING_HIGH_WATER (CHUNK_CALLBACKS * 1024)

struct callback {
	void *p;
	void (*fn)(void *);
	uint64_t epoch; /* global epoch when retired */
};

/* Filled in order, so epochs never decrease along a thread's list. */
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
	unsigned since_reclaim; /* owner only */
	struct record *next;    /* registry, under registry_lock */
	sync_mutex_t limbo_lock; /* the owner and sync_epoch_barrier */
	struct limbo limbo;
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

static sync_mutex_t gp_lock = SYNC_MUTEX_INITIALIZER;       /* one grace period at a time */
static sync_mutex_t registry_lock = SYNC_MUTEX_INITIALIZER; /* registry list */
static sync_mutex_t orphan_lock = SYNC_MUTEX_INITIALIZER;   /* orphans */
static struct record *registry;
static struct limbo orphans; /* callbacks of threads that have exited */

/* Held shared while callbacks run, so that sync_epoch_barrier can wait for
 * those that other threads took before it (reader preference: a callback
 * may retire, and so run callbacks, again). */
static sync_rwlock_t run_lock;
static _Thread_local unsigned running_callbacks;

static pthread_once_t domain_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

/* Registered, readers fence (no membarrier): the reader's other mode. */
#define MODE_FENCE 2u

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

/* ---- the domain ----------------------------------------------------------- */

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static bool membarrier_usable(void)
{
	const char *off = getenv("SYNC_EPOCH_NO_MEMBARRIER");
	if (off && off[0] == '1' && off[1] == '\0')
		return false;
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return false;
	return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
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

static void init_domain(void)
{
	atomic_store(&readers_fence, !membarrier_usable());
	sync_rwlock_init(&run_lock, SYNC_RWLOCK_PREFER_READER);
	if (pthread_key_create(&exit_key, on_thread_exit) != 0)
		die("sync_epoch: no pthread key left for thread-exit handling");
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* First enter, retire or synchronize of a thread. */
static void register_self(void)
{
	struct record *r = &self;
	pthread_once(&domain_once, init_domain);
	r->reader = &sync_impl_epoch_reader;
	sync_mutex_init(&r->limbo_lock, 0);
	sync_mutex_lock(&registry_lock);
	r->next = registry;
	registry = r;
	sync_mutex_unlock(&registry_lock);
	/* relaxed: set once, in init_domain, before */
	r->reader->mode = atomic_load_explicit(&readers_fence, memory_order_relaxed)
				  ? MODE_FENCE : SYNC_IMPL_EPOCH_MEMBARRIER;
	/* a key value, so that on_thread_exit runs (it cannot fail once the
	 * key exists, short of memory for the key's slot past 32 keys: the
	 * record then stays registered, idle, after the thread is gone) */
	pthread_setspecific(exit_key, r);
}

static struct record *registered_self(void)
{
	if (__builtin_expect(!sync_impl_epoch_reader.mode, 0))
		register_self();
	return &self;
}

/* ---- read side (also inline in <sync/epoch.h>) ---------------------------- */

static uint64_t depth_of(uint64_t ctr)
{
	return ctr & SYNC_IMPL_EPOCH_DEPTH;
}

/* The calling thread's section depth. relaxed: its own word. */
static uint64_t own_depth(void)
{
	return depth_of(atomic_load_explicit(&sync_impl_epoch_reader.ctr,
					     memory_order_relaxed));
}

void sync_epoch_enter(void)
{
	struct sync_impl_epoch_reader *r = &sync_impl_epoch_reader;
	/* relaxed: the thread's own word */
	uint64_t v = atomic_load_explicit(&r->ctr, memory_order_relaxed);
	if (v) {
		if (depth_of(v) == SYNC_IMPL_EPOCH_DEPTH)
			die("sync_epoch_enter: sections nested 65535 deep");
		/* relaxed: a nested section orders nothing */
		atomic_store_explicit(&r->ctr, v + 1, memory_order_relaxed);
		return;
	}
	registered_self();
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
	if (!depth_of(v))
		die("sync_epoch_exit without sync_epoch_enter");
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
 * through; 0 if none. Under gp_lock. */
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
	uint64_t target = start_grace_period();
	wait_for_readers(target);
	mark_safe_below(target);
	if (gp_started <= target)
		gp_started = 0;
	sync_mutex_unlock(&gp_lock);
}

/* The same without waiting, for retire: sees through the grace period
 * started last time if its readers are gone, and starts the next one. */
static void grace_period_poll(void)
{
	if (sync_mutex_trylock(&gp_lock) != 0)
		return;
	if (gp_started && !reader_blocks(gp_started)) {
		mark_safe_below(gp_started);
		gp_started = 0;
	}
	if (!gp_started)
		gp_started = start_grace_period();
	sync_mutex_unlock(&gp_lock);
}

/* ---- callbacks ------------------------------------------------------------ */

/* Callers hold run_lock shared from before they detach the list. */
static void run_list(struct limbo *list)
{
	running_callbacks++;
	struct chunk *c = list->oldest;
	while (c) {
		for (unsigned i = 0; i < c->n; i++)
			c->cb[i].fn(c->cb[i].p);
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	running_callbacks--;
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

/* Runs the calling thread's safe callbacks, and the orphans' if no other
 * thread is at them. */
static void run_safe_callbacks(struct record *r)
{
	struct limbo ready = { NULL, NULL, 0 };
	sync_rwlock_rdlock(&run_lock);
	sync_mutex_lock(&r->limbo_lock);
	detach_safe(&r->limbo, &ready, true);
	sync_mutex_unlock(&r->limbo_lock);
	if (sync_mutex_trylock(&orphan_lock) == 0) {
		detach_safe_orphans(&ready);
		sync_mutex_unlock(&orphan_lock);
	}
	run_list(&ready);
	sync_rwlock_rdunlock(&run_lock);
}

/* Appends under the owner's lock; returns the callbacks now pending, or 0
 * if a new chunk was needed and could not be allocated. */
static unsigned append_callback(struct record *r, void *p, void (*fn)(void *),
				uint64_t epoch)
{
	sync_mutex_lock(&r->limbo_lock);
	struct chunk *c = r->limbo.newest;
	if (!c || c->n == CHUNK_CALLBACKS || c->sealed) {
		c = malloc(sizeof *c);
		if (!c) {
			sync_mutex_unlock(&r->limbo_lock);
			return 0;
		}
		c->next = NULL;
		c->n = 0;
		c->sealed = false;
		struct limbo one = { c, c, 0 };
		limbo_append_list(&r->limbo, &one);
	}
	c->cb[c->n++] = (struct callback){ p, fn, epoch };
	unsigned pending = ++r->limbo.pending;
	sync_mutex_unlock(&r->limbo_lock);
	return pending;
}

/* No memory for the callback: outside a section, wait for a grace period
 * (which covers p: the caller unlinked it before) and run it here; inside,
 * keep trying, since a grace period would wait for ourselves. */
static void retire_without_memory(struct record *r, void *p, void (*fn)(void *),
				  uint64_t epoch)
{
	while (own_depth()) {
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
		if (append_callback(r, p, fn, epoch))
			return;
	}
	grace_period();
	run_safe_callbacks(r);
	fn(p);
}

void sync_epoch_retire(void *p, void (*fn)(void *))
{
	if (!fn)
		return;
	struct record *r = registered_self();
	/* seq_cst: after the caller's unlink of p, before any later bump */
	uint64_t epoch = atomic_load(&sync_impl_epoch_global);
	unsigned pending = append_callback(r, p, fn, epoch);
	if (!pending) {
		retire_without_memory(r, p, fn, epoch);
		return;
	}
	if (++r->since_reclaim < CHUNK_CALLBACKS)
		return;
	r->since_reclaim = 0;
	if (!own_depth() && pending >= PENDING_HIGH_WATER)
		grace_period();
	else
		grace_period_poll();
	run_safe_callbacks(r);
}

static void refuse_inside_section(const char *who)
{
	if (own_depth())
		die("%s inside a read-side section (would deadlock)", who);
}

void sync_epoch_synchronize(void)
{
	refuse_inside_section("sync_epoch_synchronize");
	struct record *r = registered_self();
	grace_period();
	run_safe_callbacks(r);
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

/* Takes every sealed chunk of every thread, and all orphans. */
static void detach_sealed(struct limbo *out)
{
	sync_mutex_lock(&registry_lock);
	for (struct record *r = registry; r; r = r->next) {
		sync_mutex_lock(&r->limbo_lock);
		detach_safe(&r->limbo, out, false);
		sync_mutex_unlock(&r->limbo_lock);
	}
	sync_mutex_unlock(&registry_lock);
	sync_mutex_lock(&orphan_lock);
	detach_safe_orphans(out);
	sync_mutex_unlock(&orphan_lock);
}

/* Seal, one grace period (it covers every sealed callback), then run them
 * all here. Callbacks retired meanwhile may run too, or wait for later. */
void sync_epoch_barrier(void)
{
	refuse_inside_section("sync_epoch_barrier");
	registered_self();
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
}

/* ---- thread exit and fork ------------------------------------------------- */

/* Pthread key destructor: the record leaves the registry (its memory goes
 * with the thread), its callbacks go to the orphans. A thread that exits
 * inside a section leaves it. */
static void on_thread_exit(void *arg)
{
	struct record *r = arg;
	atomic_store_explicit(&r->reader->ctr, 0, memory_order_release); /* see exit */
	sync_mutex_lock(&registry_lock);
	for (struct record **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	sync_mutex_unlock(&registry_lock);
	sync_mutex_lock(&orphan_lock);
	sync_mutex_lock(&r->limbo_lock);
	limbo_append_list(&orphans, &r->limbo);
	sync_mutex_unlock(&r->limbo_lock);
	sync_mutex_unlock(&orphan_lock);
	r->reader->mode = 0;
}

/* fork(): hold every lock across it, so that the child sees consistent
 * lists; the child keeps only its own thread, the others' callbacks become
 * orphans (their threads do not exist there). Lock order: gp, registry,
 * each record, orphans. */
static void atfork_prepare(void)
{
	sync_mutex_lock(&gp_lock);
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
	sync_mutex_unlock(&gp_lock);
}

static void atfork_child(void)
{
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
	gp_started = 0;
	sync_mutex_init(&orphan_lock, 0);
	sync_mutex_init(&registry_lock, 0);
	sync_mutex_init(&gp_lock, 0);
	sync_rwlock_init(&run_lock, SYNC_RWLOCK_PREFER_READER);
	/* relaxed: single-threaded here */
	if (!atomic_load_explicit(&readers_fence, memory_order_relaxed) &&
	    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
		atomic_store(&readers_fence, 1);
		if (sync_impl_epoch_reader.mode)
			sync_impl_epoch_reader.mode = MODE_FENCE;
	}
}
