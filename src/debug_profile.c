/* SYNC_PROFILE: per contended object (lock, semaphore, condition variable)
 * counts and wait and hold times, in a fixed open-addressing table of
 * atomic records (mutrace's and lock_stat's figures), printed as a table at
 * exit, on SIGUSR2 and by sync_profile_print, async-signal-safely. */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sync/debug.h>

#include "annotate.h"
#include "debug_internal.h"

#define SLOTS 4096   /* objects profiled at most */
#define PROBES 64    /* slots looked at for one object */
#define SITE_MAX 3   /* frames kept of where it was first waited for */
#define TOP 20       /* rows printed */
#define GONE 1u      /* key bit: the object was destroyed */

enum kind { K_MUTEX, K_RWLOCK, K_SPIN, K_SEM, K_COND };
static const char *const kind_names[] = { "mutex", "rwlock", "spinlock", "sem", "cond" };

struct prof_rec {
	_Atomic uintptr_t key; /* the object's address; 0: free */
	_Atomic unsigned kind;
	_Atomic uint64_t acquired, contended, wait_total, wait_max, hold_total, hold_max;
	_Atomic int nsite;
	void *site[SITE_MAX];
};

static struct prof_rec *table;
static _Atomic unsigned left_out; /* objects that found the table full */

static unsigned home_of(const void *p)
{
	uintptr_t h = (uintptr_t)p * 0x9e3779b97f4a7c15u;
	return (unsigned)(h >> 40) % SLOTS;
}

static struct prof_rec *find(const void *p)
{
	if (!table)
		return NULL;
	for (unsigned i = 0, s = home_of(p); i < PROBES; i++, s = (s + 1) % SLOTS) {
		/* acquire: pairs with the release CAS that claimed the slot */
		uintptr_t k = atomic_load_explicit(&table[s].key, memory_order_acquire);
		if (k == (uintptr_t)p)
			return &table[s];
		if (!k)
			return NULL;
	}
	return NULL;
}

static void note_site(struct prof_rec *r)
{
	struct trace t;
	trace_capture(&t);
	int n = t.n < SITE_MAX ? t.n : SITE_MAX;
	memcpy(r->site, t.pc, (size_t)(n > 0 ? n : 0) * sizeof *t.pc);
	/* release: the frames before the count, for the printer's acquire */
	atomic_store_explicit(&r->nsite, n, memory_order_release);
}

static struct prof_rec *make(const void *p, enum kind kind)
{
	if (!table)
		return NULL;
	for (unsigned i = 0, s = home_of(p); i < PROBES; i++, s = (s + 1) % SLOTS) {
		uintptr_t k = 0;
		/* acq_rel: the claim pairs with find's acquire load of the key
		 * (the record's counters are statistics, the site is published
		 * by nsite); acquire on failure: pairs with another thread's
		 * claim of the slot */
		if (atomic_compare_exchange_strong_explicit(&table[s].key, &k, (uintptr_t)p,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			/* relaxed: published by note_site's release of nsite */
			atomic_store_explicit(&table[s].kind, kind, memory_order_relaxed);
			note_site(&table[s]);
			return &table[s];
		}
		if (k == (uintptr_t)p)
			return &table[s];
	}
	atomic_fetch_add_explicit(&left_out, 1, memory_order_relaxed); /* a count */
	return NULL;
}

static enum kind lock_kind_of(unsigned flags)
{
	if (flags & ANN_RWLOCK)
		return K_RWLOCK;
	return (flags & ANN_SPIN) ? K_SPIN : K_MUTEX;
}

static void raise_max(_Atomic uint64_t *max, uint64_t v)
{
	/* relaxed: a statistic, ordered with nothing */
	uint64_t m = atomic_load_explicit(max, memory_order_relaxed);
	while (v > m && !atomic_compare_exchange_weak_explicit(max, &m, v,
							       memory_order_relaxed,
							       memory_order_relaxed))
		;
}

static void add(_Atomic uint64_t *total, _Atomic uint64_t *max, uint64_t v)
{
	atomic_fetch_add_explicit(total, v, memory_order_relaxed); /* a statistic */
	raise_max(max, v);
}

void prof_make(const void *l, unsigned flags)
{
	make(l, lock_kind_of(flags));
}

void prof_held(struct held *h, uint64_t now)
{
	h->rec = find(h->lock);
	if (!h->rec)
		return;
	h->since_ns = now;
	atomic_fetch_add_explicit(&h->rec->acquired, 1, memory_order_relaxed); /* a statistic */
}

void prof_released(struct held *h, uint64_t now)
{
	add(&h->rec->hold_total, &h->rec->hold_max, now - h->since_ns);
}

void prof_waited(const void *l, uint64_t waited, bool taken)
{
	struct prof_rec *r = find(l);
	if (!r)
		return;
	if (taken) /* relaxed: a statistic */
		atomic_fetch_add_explicit(&r->contended, 1, memory_order_relaxed);
	add(&r->wait_total, &r->wait_max, waited);
}

void prof_wait_done(const void *p, unsigned kind, uint64_t waited)
{
	struct prof_rec *r = make(p, kind == ANN_SEM ? K_SEM : K_COND);
	if (!r)
		return;
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&r->acquired, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->contended, 1, memory_order_relaxed);
	add(&r->wait_total, &r->wait_max, waited);
}

/* A destroyed object keeps its row; a new one at its address gets its own. */
void prof_forget(const void *l)
{
	struct prof_rec *r = find(l);
	if (r) /* relaxed: the key's value is what matters, not what it orders */
		atomic_store_explicit(&r->key, (uintptr_t)l | GONE, memory_order_relaxed);
}

/* ---- printing: async-signal-safe (write(2), no stdio, no malloc) ---- */

struct line {
	char text[256];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->len < sizeof l->text - 1)
		l->text[l->len++] = *s++;
}

static void put_num(struct line *l, uint64_t v, int base, int width)
{
	char digits[24];
	int n = 0;
	do {
		digits[n++] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v);
	for (int pad = width - n; pad > 0; pad--)
		put(l, " ");
	while (n--) {
		char c[2] = { digits[n], 0 };
		put(l, c);
	}
}

static void put_padded(struct line *l, const char *s, size_t width)
{
	size_t len = strlen(s);
	put(l, s);
	for (; len < width; len++)
		put(l, " ");
}

static void emit(int fd, struct line *l)
{
	put(l, "\n");
	for (size_t done = 0; done < l->len;) {
		ssize_t w = write(fd, l->text + done, l->len - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	l->len = 0;
}

static uint64_t load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed); /* a statistic */
}

/* The TOP records by total wait, most first; returns how many. */
static int pick_top(struct prof_rec **top, unsigned *objects)
{
	int n = 0;
	*objects = 0;
	for (unsigned s = 0; s < SLOTS; s++) {
		struct prof_rec *r = &table[s];
		if (!atomic_load_explicit(&r->key, memory_order_acquire))
			continue;
		++*objects;
		uint64_t w = load(&r->wait_total);
		int at = n < TOP ? n++ : TOP;
		while (at > 0 && load(&top[at - 1]->wait_total) < w) {
			if (at < TOP)
				top[at] = top[at - 1];
			at--;
		}
		if (at < TOP)
			top[at] = r;
	}
	return n;
}

static void print_row(int fd, int rank, struct prof_rec *r)
{
	struct line l = { .len = 0 };
	/* acquire: pairs with note_site's release; a record still being made
	 * (nsite 0) may show its kind as a mutex */
	int nsite = atomic_load_explicit(&r->nsite, memory_order_acquire);
	/* relaxed: see above; the key was read with acquire by pick_top */
	unsigned kind = atomic_load_explicit(&r->kind, memory_order_relaxed);
	uintptr_t key = atomic_load_explicit(&r->key, memory_order_relaxed);
	put_num(&l, (uint64_t)rank, 10, 3);
	put(&l, "  ");
	put_padded(&l, kind_names[kind < 5 ? kind : 0], 9);
	put(&l, "0x");
	put_num(&l, key & ~(uintptr_t)GONE, 16, 1);
	put(&l, key & GONE ? " (destroyed)" : "");
	emit(fd, &l);
	put(&l, "     ");
	put_num(&l, load(&r->acquired), 10, 12);
	put_num(&l, load(&r->contended), 10, 12);
	put_num(&l, load(&r->wait_total) / 1000, 10, 15);
	put_num(&l, load(&r->wait_max) / 1000, 10, 13);
	put_num(&l, load(&r->hold_total) / 1000, 10, 15);
	put_num(&l, load(&r->hold_max) / 1000, 10, 13);
	emit(fd, &l);
	if (nsite > 0) {
		put(&l, "       first waited for at:");
		emit(fd, &l);
		backtrace_symbols_fd(r->site, nsite, fd);
	}
}

void sync_profile_print(int fd)
{
	int saved = errno;
	struct line l = { .len = 0 };
	if (!table) {
		put(&l, "libsync: SYNC_PROFILE is off (run with SYNC_PROFILE=1)");
		emit(fd, &l);
		errno = saved;
		return;
	}
	struct prof_rec *top[TOP];
	unsigned objects;
	int n = pick_top(top, &objects);
	put(&l, "libsync: SYNC_PROFILE: pid ");
	put_num(&l, (uint64_t)getpid(), 10, 1);
	put(&l, ", ");
	put_num(&l, objects, 10, 1);
	put(&l, " objects waited for, by total wait (times in us)");
	emit(fd, &l);
	put(&l, "  #  kind     object");
	emit(fd, &l);
	put(&l, "         acquired   contended     wait-total     wait-max     hold-total     hold-max");
	emit(fd, &l);
	for (int i = 0; i < n; i++)
		print_row(fd, i + 1, top[i]);
	unsigned lost = atomic_load_explicit(&left_out, memory_order_relaxed); /* a count */
	if (lost) {
		put_num(&l, lost, 10, 1);
		put(&l, " more objects were not profiled: the table is full");
		emit(fd, &l);
	}
	errno = saved;
}

static void print_at_exit(void)
{
	sync_profile_print(STDERR_FILENO);
}

static void print_on_signal(int sig)
{
	(void)sig;
	sync_profile_print(STDERR_FILENO);
}

/* SIGUSR2 prints, unless the program handles or ignores it already. */
static void catch_sigusr2(void)
{
	struct sigaction old;
	if (sigaction(SIGUSR2, NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
	    (old.sa_flags & SA_SIGINFO))
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = print_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
}

void prof_init(void)
{
	void *t = mmap(NULL, SLOTS * sizeof *table, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return;
	table = t;
	struct trace warm; /* backtrace loads its unwinder now, not in a handler */
	trace_capture(&warm);
	catch_sigusr2();
	atexit(print_at_exit);
}
