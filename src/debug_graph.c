/* SYNC_CHECK's lock-order graph: a node per lock (its address is its class),
 * an edge A->B for "B taken while A held", with the modes and the stack of
 * that acquisition; a new edge closing a cycle is reported before anything
 * can deadlock (lockdep's idea; Abseil's GraphCycles keeps stacks alike).
 * One mutex guards it; each thread remembers edges it knows exist. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "annotate.h"
#include "debug_internal.h"
#include "thread.h"

#define BUCKETS 4096
#define FROM_READ 1u /* edge modes: `from` held for reading */
#define TO_READ   2u /* `to` taken for reading */

struct node;

struct edge {
	struct node *from, *to;
	unsigned modes;
	int tid;
	struct trace where; /* the acquisition of `to` */
	struct edge *next_out, *next_in;
};

struct node {
	const void *lock;
	unsigned flags; /* ANN_RWLOCK, ANN_RDPREF, ANN_SPIN */
	struct node *next;
	struct edge *out, *in;
	unsigned seen[2];    /* search stamp, per mode of arrival */
	struct edge *via[2]; /* the edge the search came in by */
	int via_read[2];     /* ... leaving its `from` reached in this mode */
};

static pthread_mutex_t graph_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *buckets[BUCKETS];
static unsigned search_stamp;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Set in the thread that forks while it holds graph_lock for the fork:
 * the fork handlers registered before ours run after it and may lock. */
static THREAD_LOCAL int graph_held_for_fork;

static void graph_lock_take(void)
{
	pthread_mutex_lock(&graph_lock);
}

static void graph_lock_drop(void)
{
	pthread_mutex_unlock(&graph_lock);
}

static void fork_prepare(void)
{
	graph_lock_take();
	graph_held_for_fork = 1;
}

static void fork_done(void)
{
	graph_held_for_fork = 0;
	graph_lock_drop();
}

/* A fork child must not inherit the mutex held by a thread it lacks. The
 * orders of locks taken by fork handlers that run while we hold it for
 * the fork are not checked. */
static void set_atfork(void)
{
	pthread_atfork(fork_prepare, fork_done, fork_done);
}

static struct node **bucket_of(const void *l)
{
	uintptr_t h = (uintptr_t)l;
	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15u;
	return &buckets[(h >> 40) % BUCKETS];
}

static struct node *node_find(const void *l)
{
	for (struct node *n = *bucket_of(l); n; n = n->next)
		if (n->lock == l)
			return n;
	return NULL;
}

static struct node *node_get(const void *l, unsigned flags)
{
	struct node *n = node_find(l);
	if (!n && (n = calloc(1, sizeof *n))) {
		struct node **b = bucket_of(l);
		n->lock = l;
		n->next = *b;
		*b = n;
	}
	if (n)
		n->flags |= flags & (ANN_RWLOCK | ANN_RDPREF | ANN_SPIN);
	return n;
}

static unsigned edge_modes(unsigned held, unsigned want)
{
	return ((held & ANN_READ) ? FROM_READ : 0) | ((want & ANN_READ) ? TO_READ : 0);
}

/* 1 if it is new (and was added), 0 if known or out of memory. */
static int edge_add(struct node *a, struct node *b, unsigned modes,
		    const struct trace *where)
{
	for (struct edge *e = a->out; e; e = e->next_out)
		if (e->to == b && e->modes == modes)
			return 0;
	struct edge *e = malloc(sizeof *e);
	if (!e)
		return 0;
	*e = (struct edge){ a, b, modes, dbg_tid(), *where, a->out, b->in };
	a->out = e;
	b->in = e;
	return 1;
}

/* Whether a thread wanting n in one mode waits for one holding it in the
 * other: always but for two readers, who wait only if a writer may come
 * between them (the lock prefers writers). */
static int conflict(const struct node *n, int want_read, int held_read)
{
	return !(want_read && held_read && (n->flags & ANN_RDPREF));
}

struct state {
	struct node *node;
	int read; /* the mode it is wanted in */
};

/* Breadth-first from `start` (wanted in mode start_read) along edges whose
 * holder blocks the wanter, to a lock the thread holds in a mode that
 * blocks: that closes a cycle. Returns the held lock's node (the path is in
 * via[]), or NULL. */
static struct node *search_cycle(struct dbg_thread *t, struct node *start,
				 int start_read, struct held **closing, int *arrival)
{
	size_t cap = 64, head = 0, tail = 0;
	struct state *queue = malloc(cap * sizeof *queue);
	if (!queue)
		return NULL;
	unsigned stamp = ++search_stamp;
	queue[tail++] = (struct state){ start, start_read };
	start->seen[start_read] = stamp;
	start->via[start_read] = NULL;
	struct node *found = NULL;
	while (head < tail && !found) {
		struct state s = queue[head++];
		struct held *h = s.node != start ? held_find(t, s.node->lock) : NULL;
		if (h && conflict(s.node, s.read, !!(h->flags & ANN_READ))) {
			*closing = h;
			*arrival = s.read;
			found = s.node;
			break;
		}
		for (struct edge *e = s.node->out; e; e = e->next_out) {
			int to_read = !!(e->modes & TO_READ);
			if (!conflict(s.node, s.read, !!(e->modes & FROM_READ)) ||
			    e->to->seen[to_read] == stamp)
				continue;
			if (tail == cap) {
				struct state *q = realloc(queue, 2 * cap * sizeof *q);
				if (!q)
					break;
				queue = q;
				cap *= 2;
			}
			e->to->seen[to_read] = stamp;
			e->to->via[to_read] = e;
			e->to->via_read[to_read] = s.read;
			queue[tail++] = (struct state){ e->to, to_read };
		}
	}
	free(queue);
	return found;
}

/* An order of the cycle, copied out of the graph, so that the report is
 * written after graph_lock is dropped (backtrace_symbols may take the
 * dynamic loader's lock, which a constructor taking a lock may hold). */
struct step {
	const void *from, *to;
	unsigned from_flags, to_flags; /* kinds, and ANN_READ for the modes */
	int tid;
	struct trace where;
};

#define CYCLE_MAX 64

struct cycle {
	struct step now;
	int len;
	struct step before[CYCLE_MAX]; /* in the order they chain */
};

static unsigned with_mode(const struct node *n, int read)
{
	return (n->flags & (ANN_RWLOCK | ANN_SPIN)) | (read ? ANN_READ : 0);
}

static void copy_edge(struct step *st, const struct edge *e)
{
	*st = (struct step){ e->from->lock, e->to->lock,
			     with_mode(e->from, !!(e->modes & FROM_READ)),
			     with_mode(e->to, !!(e->modes & TO_READ)), e->tid, e->where };
}

/* The cycle: now, `to` wanted while `closing` held; before, the path of
 * edges from `to` to closing's lock, found by search_cycle (its via[]). */
static void copy_cycle(struct cycle *c, struct node *to, int to_read,
		       const struct trace *here, const struct held *closing,
		       struct node *held_node, int arrival)
{
	c->now = (struct step){ held_node->lock, to->lock,
				with_mode(held_node, !!(closing->flags & ANN_READ)),
				with_mode(to, to_read), dbg_tid(), *here };
	struct edge *path[CYCLE_MAX];
	int len = 0;
	struct node *n = held_node;
	int read = arrival;
	while (n != to && len < CYCLE_MAX && n->via[read]) {
		struct edge *e = n->via[read];
		path[len++] = e;
		read = n->via_read[read];
		n = e->from;
	}
	c->len = len;
	for (int i = 0; i < len; i++)
		copy_edge(&c->before[i], path[len - 1 - i]);
}

static void describe_step(struct report *r, const struct step *st, const char *verb)
{
	report_printf(r, "  thread %d %s %s %p%s while holding %s %p%s, at:\n", st->tid,
		      verb, lock_kind(st->to_flags), st->to, mode_words(st->to_flags),
		      lock_kind(st->from_flags), st->from, mode_words(st->from_flags));
	report_trace(r, &st->where);
}

static void report_cycle(const struct cycle *c)
{
	struct report r = { 0 };
	report_printf(&r, "libsync: SYNC_CHECK: lock-order inversion (a possible "
			  "deadlock)\n");
	describe_step(&r, &c->now, "takes");
	report_printf(&r, "  but the opposite order was seen before:\n");
	for (int i = 0; i < c->len; i++)
		describe_step(&r, &c->before[i], "took");
	report_printf(&r, "  if these run at once, each thread waits for the other "
			  "for ever\n");
	report_finish(&r);
}

static unsigned memo_slot(const void *from, const void *to, unsigned modes)
{
	uintptr_t h = ((uintptr_t)from * 0x9e3779b97f4a7c15u) ^ (uintptr_t)to ^ modes;
	h ^= h >> 29;
	return (unsigned)((h * 0xbf58476d1ce4e5b9u) >> 40) % MEMO_SLOTS;
}

static int memo_knows(struct dbg_thread *t, const struct held *h, const void *to,
		      unsigned modes, unsigned gen)
{
	const struct edge_memo *m = &t->memo[memo_slot(h->lock, to, modes)];
	return m->from == h->lock && m->to == to && m->modes == modes && m->gen == gen;
}

static void memo_learn(struct dbg_thread *t, const struct held *h, const void *to,
		       unsigned modes, unsigned gen)
{
	t->memo[memo_slot(h->lock, to, modes)] =
		(struct edge_memo){ h->lock, to, modes, gen };
}

/* Adds the edges held -> to under graph_lock; 1 if the first new one
 * closes a cycle, copied into c. */
static int add_orders(struct dbg_thread *t, const void *l, unsigned flags,
		      const struct trace *here, struct cycle *c)
{
	struct node *to = node_get(l, flags);
	int added = 0;
	for (unsigned i = 0; to && i < t->n; i++) {
		struct held *h = &t->held[i];
		struct node *from = h->lock != l ? node_get(h->lock, h->flags) : NULL;
		if (from)
			added |= edge_add(from, to, edge_modes(h->flags, flags), here);
	}
	if (!added || !c)
		return 0;
	struct held *closing;
	int arrival;
	int to_read = !!(flags & ANN_READ);
	struct node *n = search_cycle(t, to, to_read, &closing, &arrival);
	if (n)
		copy_cycle(c, to, to_read, here, closing, n, arrival);
	return n != NULL;
}

void dbg_graph_order(struct dbg_thread *t, const void *l, unsigned flags)
{
	/* relaxed: a stale generation only keeps a memo one edge longer */
	unsigned gen = __atomic_load_n(&dbg_graph_gen, __ATOMIC_RELAXED);
	unsigned i = 0;
	while (i < t->n && memo_knows(t, &t->held[i], l,
				      edge_modes(t->held[i].flags, flags), gen))
		i++;
	if (i == t->n)
		return;
	if (graph_held_for_fork)
		return;
	struct trace here;
	trace_capture(&here);
	struct cycle *c = malloc(sizeof *c); /* NULL: orders kept, no report */
	pthread_once(&atfork_once, set_atfork);
	graph_lock_take();
	int found = add_orders(t, l, flags, &here, c);
	graph_lock_drop();
	for (i = 0; i < t->n; i++)
		memo_learn(t, &t->held[i], l, edge_modes(t->held[i].flags, flags), gen);
	if (found)
		report_cycle(c);
	free(c);
}

static void unlink_out(struct node *n, struct edge *gone)
{
	for (struct edge **p = &n->out; *p; p = &(*p)->next_out)
		if (*p == gone) {
			*p = gone->next_out;
			return;
		}
}

static void unlink_in(struct node *n, struct edge *gone)
{
	for (struct edge **p = &n->in; *p; p = &(*p)->next_in)
		if (*p == gone) {
			*p = gone->next_in;
			return;
		}
}

static void node_free(struct node *n)
{
	while (n->out) {
		struct edge *e = n->out;
		n->out = e->next_out;
		unlink_in(e->to, e);
		free(e);
	}
	while (n->in) {
		struct edge *e = n->in;
		n->in = e->next_in;
		unlink_out(e->from, e);
		free(e);
	}
	free(n);
}

static void forget_one(const void *l)
{
	struct node **p = bucket_of(l);
	for (; *p; p = &(*p)->next)
		if ((*p)->lock == l) {
			struct node *n = *p;
			*p = n->next;
			node_free(n);
			return;
		}
}

static void forget_all(void)
{
	for (size_t b = 0; b < BUCKETS; b++)
		while (buckets[b]) {
			struct node *n = buckets[b];
			buckets[b] = n->next;
			node_free(n);
		}
}

/* l's orders are gone (it was destroyed; NULL: every lock's). */
void dbg_graph_forget(const void *l)
{
	if (graph_held_for_fork)
		return;
	pthread_once(&atfork_once, set_atfork);
	graph_lock_take();
	if (l)
		forget_one(l);
	else
		forget_all();
	graph_lock_drop();
	/* relaxed: threads' memos of the removed edges go stale */
	__atomic_fetch_add(&dbg_graph_gen, 1, __ATOMIC_RELAXED);
}
