/* Epoch rows: a read-side section of sync_epoch (enter+exit) against
 * ck_epoch_begin+ck_epoch_end (one registered record per thread) and
 * against liburcu's memb flavour, rcu_read_lock+rcu_read_unlock (inline,
 * with _LGPL_SOURCE, as its users build; each thread registered), at 1, 2
 * and 8 threads. All three are inline; each is wrapped in a plain static
 * function, called through the same pointer type. Retire rows: malloc an
 * object and retire it with a callback that frees it, each thread's run
 * ending with everything freed (sync_epoch_retire, its reclaimer thread
 * and a final sync_epoch_barrier; ck_epoch_call with ck_epoch_poll every
 * 64 calls, as ck's users must, then ck_epoch_barrier; liburcu's call_rcu,
 * whose helper thread frees, then rcu_barrier), at 1 and 2 threads. */
#define _LGPL_SOURCE
#include <ck_epoch.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <urcu/urcu-memb.h>

#include <sync/epoch.h>

#include "harness.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* What a section reads: a pointer published once, and the word it points to. */
struct datum {
	_Alignas(LINE) uint64_t value;
};

struct protected {
	_Alignas(LINE) _Atomic(struct datum *) current;
	struct datum datum;
};

/* ---- The implementations --------------------------------------------------------- */

struct retiree;

/* base.lock and base.unlock begin and end a section (node: the thread's
 * BENCH_NODE_SIZE bytes); base.init sets up the run's object. The harness
 * sees only base. */
struct epoch_impl {
	struct bench_lock base;
	void (*thread_start)(void *obj, void *node); /* registers the thread */
	void (*thread_end)(void *obj, void *node);   /* unregisters it */
	bool (*outside)(void *node);                  /* the thread is in no section */
	/* one whole section: enter, read the published datum, exit; the
	 * primitives are inlined here, as in a user's reader */
	uint64_t (*read)(void *obj, void *node, struct protected *p);
	void (*synchronize)(void *obj);               /* waits for a grace period */
	/* retires r, whose callback frees it (retiree_free) */
	void (*retire)(void *obj, void *node, struct retiree *r);
	void (*drain)(void *obj, void *node);         /* every callback has run */
};

/* What the retire rows retire: the peers' callbacks find it from their
 * embedded entry. */
struct retiree {
	union {
		ck_epoch_entry_t ck;
		struct rcu_head rcu;
	} entry;
	uint64_t payload[4];
};

/* Retirees freed in the current run (the check compares with its ops). */
static atomic_ullong retirees_freed;

static void retiree_free(struct retiree *r)
{
	/* relaxed: a count, read after the threads' drains and the join */
	atomic_fetch_add_explicit(&retirees_freed, 1, memory_order_relaxed);
	free(r);
}

static const struct epoch_impl *impl_of(const struct bench_objects *run)
{
	return (const struct epoch_impl *)run->impl; /* base is the first member */
}

/* ours: one process-wide domain; the first enter registers the thread */

static void ours_init(void *obj)
{
	(void)obj;
}

static void ours_enter(void *obj, void *node)
{
	(void)obj;
	(void)node;
	sync_epoch_enter();
}

static void ours_exit(void *obj, void *node)
{
	(void)obj;
	(void)node;
	sync_epoch_exit();
}

static uint64_t ours_read(void *obj, void *node, struct protected *p)
{
	(void)obj;
	(void)node;
	sync_epoch_enter();
	/* acquire: pairs with the store of section_setup */
	uint64_t v = atomic_load_explicit(&p->current, memory_order_acquire)->value;
	sync_epoch_exit();
	return v;
}

static void ours_thread_start(void *obj, void *node)
{
	ours_enter(obj, node);
	ours_exit(obj, node);
}

static void ours_thread_end(void *obj, void *node)
{
	(void)obj;
	(void)node; /* thread exit unregisters it */
}

/* The reader record of <sync/epoch.h>'s inline fast path (ABI, internal
 * names): depth 0 and no epoch published. */
static bool ours_outside(void *node)
{
	(void)node;
	return atomic_load_explicit(&sync_impl_epoch_reader.ctr, memory_order_relaxed) == 0;
}

static void ours_synchronize(void *obj)
{
	(void)obj;
	sync_epoch_synchronize();
}

static void ours_free(void *p)
{
	retiree_free(p);
}

static void ours_retire(void *obj, void *node, struct retiree *r)
{
	(void)obj;
	(void)node;
	sync_epoch_retire(r, ours_free);
}

static void ours_drain(void *obj, void *node)
{
	(void)obj;
	(void)node;
	sync_epoch_barrier();
}

/* ck: the run's object is the ck_epoch_t; node holds the thread's record.
 * Records are never freed: ck keeps unregistered ones for reuse. */

static void ck_init(void *obj)
{
	ck_epoch_init(obj);
}

static ck_epoch_record_t *ck_record(void *node)
{
	return *(ck_epoch_record_t **)node;
}

static void ck_enter(void *obj, void *node)
{
	(void)obj;
	ck_epoch_begin(ck_record(node), NULL);
}

static void ck_exit(void *obj, void *node)
{
	(void)obj;
	ck_epoch_end(ck_record(node), NULL);
}

static uint64_t ck_read(void *obj, void *node, struct protected *p)
{
	(void)obj;
	ck_epoch_begin(ck_record(node), NULL);
	/* acquire: pairs with the store of section_setup */
	uint64_t v = atomic_load_explicit(&p->current, memory_order_acquire)->value;
	ck_epoch_end(ck_record(node), NULL);
	return v;
}

static void ck_thread_start(void *obj, void *node)
{
	ck_epoch_record_t *r = aligned_alloc(LINE, (sizeof *r + LINE - 1) / LINE * LINE);
	if (!r)
		abort(); /* the forked run fails */
	ck_epoch_register(obj, r, NULL);
	*(ck_epoch_record_t **)node = r;
}

static void ck_thread_end(void *obj, void *node)
{
	(void)obj;
	ck_epoch_unregister(ck_record(node));
}

static bool ck_outside(void *node)
{
	return ck_pr_load_uint(&ck_record(node)->active) == 0;
}

static void ck_synchronize(void *obj)
{
	void *node[1];
	ck_thread_start(obj, node);
	ck_epoch_synchronize(ck_record(node));
	ck_thread_end(obj, node);
}

static void ck_free(ck_epoch_entry_t *e)
{
	retiree_free((struct retiree *)((char *)e - offsetof(struct retiree, entry.ck)));
}

/* The node's second word counts the thread's calls, to poll every 64th. */
static void ck_retire(void *obj, void *node, struct retiree *r)
{
	(void)obj;
	ck_epoch_call(ck_record(node), &r->entry.ck, ck_free);
	uint64_t *calls = (uint64_t *)node + 1;
	if (++*calls % 64 == 0)
		ck_epoch_poll(ck_record(node));
}

static void ck_drain(void *obj, void *node)
{
	(void)obj;
	ck_epoch_barrier(ck_record(node));
}

/* liburcu memb: one process-wide domain; threads register explicitly */

static void urcu_init(void *obj)
{
	(void)obj;
	urcu_memb_init(); /* also its library constructor's: harmless */
}

static void urcu_enter(void *obj, void *node)
{
	(void)obj;
	(void)node;
	urcu_memb_read_lock();
}

static void urcu_exit(void *obj, void *node)
{
	(void)obj;
	(void)node;
	urcu_memb_read_unlock();
}

static uint64_t urcu_read(void *obj, void *node, struct protected *p)
{
	(void)obj;
	(void)node;
	urcu_memb_read_lock();
	/* acquire: pairs with the store of section_setup */
	uint64_t v = atomic_load_explicit(&p->current, memory_order_acquire)->value;
	urcu_memb_read_unlock();
	return v;
}

static void urcu_thread_start(void *obj, void *node)
{
	(void)obj;
	(void)node;
	urcu_memb_register_thread();
}

static void urcu_thread_end(void *obj, void *node)
{
	(void)obj;
	(void)node;
	urcu_memb_unregister_thread();
}

static bool urcu_outside(void *node)
{
	(void)node;
	return !urcu_memb_read_ongoing();
}

static void urcu_synchronize(void *obj)
{
	(void)obj;
	urcu_memb_synchronize_rcu();
}

static void urcu_free(struct rcu_head *h)
{
	retiree_free((struct retiree *)((char *)h - offsetof(struct retiree, entry.rcu)));
}

static void urcu_retire(void *obj, void *node, struct retiree *r)
{
	(void)obj;
	(void)node;
	urcu_memb_call_rcu(&r->entry.rcu, urcu_free);
}

static void urcu_drain(void *obj, void *node)
{
	(void)obj;
	(void)node;
	urcu_memb_barrier();
}

_Static_assert(sizeof(ck_epoch_record_t *) + sizeof(uint64_t) <= BENCH_NODE_SIZE,
	       "record pointer and call count fit");

static const struct epoch_impl sync_epoch = {
	.base = { .name = "sync_epoch", .size = sizeof(int), .init = ours_init,
		  .lock = ours_enter, .unlock = ours_exit },
	.thread_start = ours_thread_start, .thread_end = ours_thread_end,
	.outside = ours_outside, .synchronize = ours_synchronize, .read = ours_read,
	.retire = ours_retire, .drain = ours_drain,
};

static const struct epoch_impl ck = {
	.base = { .name = "ck_epoch", .size = sizeof(ck_epoch_t), .init = ck_init,
		  .lock = ck_enter, .unlock = ck_exit },
	.thread_start = ck_thread_start, .thread_end = ck_thread_end,
	.outside = ck_outside, .synchronize = ck_synchronize, .read = ck_read,
	.retire = ck_retire, .drain = ck_drain,
};

static const struct epoch_impl urcu_memb = {
	.base = { .name = "urcu_memb", .size = sizeof(int), .init = urcu_init,
		  .lock = urcu_enter, .unlock = urcu_exit },
	.thread_start = urcu_thread_start, .thread_end = urcu_thread_end,
	.outside = urcu_outside, .synchronize = urcu_synchronize, .read = urcu_read,
	.retire = urcu_retire, .drain = urcu_drain,
};

/* ---- enter+exit: a read-side section around one protected read ------------------------- */

#define DATUM_VALUE 1

static void section_setup(const struct bench_objects *run)
{
	struct protected *p = run->shared;
	p->datum.value = DATUM_VALUE;
	atomic_store(&p->current, &p->datum);
	run->impl->init(run->obj[0]);
}

/* counts[0]: threads that ended inside a section; counts[1]: the words
 * read, added up (DATUM_VALUE per section). */
static uint64_t section_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct epoch_impl *ei = impl_of(run);
	uint64_t (*read)(void *, void *, struct protected *) = ei->read;
	void *obj = run->obj[0];
	struct protected *p = run->shared;
	uint64_t limit = n ? n : UINT64_MAX, i, sum = 0;

	ei->thread_start(obj, t->node);
	for (i = 0; i < limit && !bench_stopped(t); i++) {
		sum += read(obj, t->node, p);
		bench_pause(run->delay);
	}
	t->counts[0] += !ei->outside(t->node);
	t->counts[1] += sum;
	ei->thread_end(obj, t->node);
	return i;
}

/* Every section read the datum, every thread ended outside all sections,
 * and a grace period completes after the run (it would not, were a
 * section left open). */
static bool section_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	if (!counts[0] && counts[1] == ops * DATUM_VALUE) {
		impl_of(run)->synchronize(run->obj[0]);
		return true;
	}
	fprintf(stderr, "bench: %s enter+exit: %llu sections, read %llu, %llu thread(s) ended"
		" inside a section\n", run->impl->name, (unsigned long long)ops,
		(unsigned long long)counts[1], (unsigned long long)counts[0]);
	return false;
}

static const struct bench_workload enter_exit = {
	.name = "enter+exit",
	.legend = "one call per section: enter; load a published pointer, read its word; exit"
		  " (the primitives inlined into that function, as in a user's reader); ns per section"
		  " (threads registered first: ck one record each, NULL section; liburcu memb,"
		  " inline)",
	.objects = 1,
	.shared_size = sizeof(struct protected),
	.fairness = true,
	.setup = section_setup,
	.loop = section_loop,
	.check = section_check,
};

/* ---- retire: malloc an object, retire it, its callback frees it ------------------------ */

static void retire_setup(const struct bench_objects *run)
{
	atomic_store(&retirees_freed, 0);
	run->impl->init(run->obj[0]);
}

/* counts[0]: objects that could not be allocated. */
static uint64_t retire_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	const struct epoch_impl *ei = impl_of(run);
	void *obj = run->obj[0];
	uint64_t limit = n ? n : UINT64_MAX, i;

	ei->thread_start(obj, t->node);
	*((uint64_t *)t->node + 1) = 0;
	for (i = 0; i < limit && !bench_stopped(t); i++) {
		struct retiree *r = malloc(sizeof *r);
		if (!r) {
			t->counts[0]++;
			break;
		}
		r->payload[0] = i;
		ei->retire(obj, t->node, r);
		bench_pause(run->delay);
	}
	ei->drain(obj, t->node);
	ei->thread_end(obj, t->node);
	return i;
}

static bool retire_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	uint64_t freed = atomic_load(&retirees_freed);
	if (!counts[0] && freed == ops)
		return true;
	fprintf(stderr, "bench: %s retire: %llu retired, %llu freed, %llu not allocated\n",
		run->impl->name, (unsigned long long)ops, (unsigned long long)freed,
		(unsigned long long)counts[0]);
	return false;
}

static const struct bench_workload retire_free = {
	.name = "retire",
	.legend = "malloc a 48-byte object and retire it with a callback that frees it; each"
		  " thread's run ends when all it retired is freed (barrier); ns per object"
		  " (sync_epoch_retire, reclaimed by its callers every 64th retire and its"
		  " reclaimer thread; ck_epoch_call, ck_epoch_poll every 64th; liburcu memb"
		  " call_rcu, freed by its call_rcu thread)",
	.objects = 1,
	.shared_size = 0,
	.fairness = false,
	.setup = retire_setup,
	.loop = retire_loop,
	.check = retire_check,
};

/* ---- rows ------------------------------------------------------------------------------ */

void bench_epoch(const struct bench_config *cfg, struct bench_tally *tally)
{
	static const struct bench_row rows[] = {
		{ "sync_epoch", &sync_epoch.base, &ck.base, 1, { TARGET_RATIO, 0.25 }, &enter_exit },
		{ "sync_epoch", &sync_epoch.base, &ck.base, 2, { TARGET_RATIO, 0.25 }, &enter_exit },
		{ "sync_epoch", &sync_epoch.base, &ck.base, 8, { TARGET_RATIO, 0.25 }, &enter_exit },
		{ "sync_epoch", &sync_epoch.base, &urcu_memb.base, 1, { TARGET_NONE, 0 },
		  &enter_exit },
		{ "sync_epoch", &sync_epoch.base, &urcu_memb.base, 2, { TARGET_NONE, 0 },
		  &enter_exit },
		{ "sync_epoch", &sync_epoch.base, &urcu_memb.base, 8, { TARGET_NONE, 0 },
		  &enter_exit },
		{ "sync_epoch", &sync_epoch.base, &ck.base, 1, { TARGET_NONE, 0 }, &retire_free },
		{ "sync_epoch", &sync_epoch.base, &ck.base, 2, { TARGET_NONE, 0 }, &retire_free },
		{ "sync_epoch", &sync_epoch.base, &urcu_memb.base, 1, { TARGET_NONE, 0 },
		  &retire_free },
		{ "sync_epoch", &sync_epoch.base, &urcu_memb.base, 2, { TARGET_NONE, 0 },
		  &retire_free },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		bench_run_row(cfg, &rows[i], tally);
}
