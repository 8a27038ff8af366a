/* Stress test for sync_epoch under ThreadSanitizer: readers follow a shared
 * pointer inside read-side sections (nested ones too) while writers swap in
 * new objects and retire the old ones, or synchronize and free them
 * themselves; the reclaim poisons and frees the object, so a reader that
 * could still see it finds the poison, and ThreadSanitizer reports the
 * free racing with its plain reads. Every retired callback runs exactly
 * once, callbacks of threads that have exited included; a barrier returns
 * only after its thread's earlier retires have been reclaimed. The read
 * side has two modes, fixed at the first use in a process: the program
 * runs every case in the default mode (membarrier(2)), then re-executes
 * itself with SYNC_EPOCH_NO_MEMBARRIER=1 and relays that run's results,
 * so both make one TAP stream. The bookkeeping atomics are relaxed, so
 * every happens-before edge ThreadSanitizer sees comes from the library
 * (or from the shared pointer's own exchange and acquire load). Last, a
 * barrier runs while a thread that retired is leaving the domain, held
 * there by a TEST_HOOK delay: the barrier must run that callback too.
 * Timely reclamation: in one case a writer retires rarely, one object at a
 * time, and then calls nothing until that object's callback has run (the
 * reclaimer's doing), while the other retires often and polls. */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sync/epoch.h>

#include "harness.h"

static void count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long got(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- the shared objects --------------------------------------------------- */

#define LIVE 0x4c4956454c495645ull
#define DEAD 0xdeaddeaddeaddeadull
/* Objects per case at most (writers stop creating past it). */
#define MAX_OBJECTS (1u << 20)
/* ran_for[] slot of the short-lived threads, as a group. */
#define GROUP_SLOT STRESS_MAX_THREADS

/* Plain fields: written before the object is published, read by readers,
 * poisoned by the reclaim. */
struct obj {
	uint64_t magic;
	uint64_t id;
	uint64_t a, b; /* id * 3 and ~id */
	int retirer;   /* ran_for[] slot of the thread that unlinked it */
};

static bool obj_ok(const struct obj *o)
{
	return o && o->magic == LIVE && o->a == o->id * 3 && o->b == ~o->id;
}

struct e_case {
	const char *name;
	int threads;
	int writers;            /* threads 0..writers-1 write, the rest read */
	bool nest;              /* readers nest sections, up to 3 deep */
	unsigned sync_every;    /* a writer synchronizes and frees every nth
				   replacement instead of retiring (0: never) */
	unsigned barrier_every; /* a writer calls barrier after every nth retire */
	bool short_lived;       /* thread `writers` spawns threads that retire
				   and exit */
	bool rare;              /* writer 0 retires one object, then waits for
				   its callback without calling libsync */
	unsigned poll_every;    /* the other writers poll after every nth
				   retire (0: never) */
};

struct e_run {
	const struct e_case *c;
	atomic_ullong next_id;
	/* readers */
	atomic_ullong reads, nested_checks, dead_reads, dead_after_inner;
	/* writers and callbacks */
	atomic_ullong unlinked, reclaimed, reclaimed_dead;
	atomic_ullong barriers, barrier_misses, batches, exited;
	atomic_ullong rare_retires, rare_late, rare_worst_us, polled;
	/* the first miss: reclaims expected, seen at the return, 10 ms later */
	atomic_bool miss_noted;
	uint64_t miss_expected, miss_at_return, miss_later;
	uint64_t syncs[STRESS_MAX_THREADS];
	atomic_ullong ran_for[STRESS_MAX_THREADS + 1];
	atomic_uchar reclaims[MAX_OBJECTS]; /* per object id */
};

static struct e_run run;
static _Atomic(struct obj *) shared;
static const char *mode_name;

/* A new live object, or NULL once the case has made MAX_OBJECTS. */
static struct obj *new_obj(void)
{
	uint64_t id = atomic_fetch_add_explicit(&run.next_id, 1, memory_order_relaxed);
	if (id >= MAX_OBJECTS)
		return NULL;
	struct obj *o = malloc(sizeof *o);
	if (!o) {
		perror("malloc");
		exit(EXIT_FAILURE);
	}
	*o = (struct obj){ LIVE, id, id * 3, ~id, -1 };
	return o;
}

/* Swaps a new object in; returns the old one, unlinked, or NULL when the
 * case has made all its objects. */
static struct obj *replace(int slot)
{
	struct obj *o = new_obj();
	if (!o)
		return NULL;
	/* seq_cst: publishes o (pairs with the readers' acquire load) */
	struct obj *old = atomic_exchange(&shared, o);
	old->retirer = slot;
	count(&run.unlinked);
	return old;
}

/* The reclaim, as retire callback or after synchronize: the object must
 * still be live (not reclaimed before); poison it and free it. */
static void reclaim(void *p)
{
	struct obj *o = p;
	if (o->magic != LIVE) {
		count(&run.reclaimed_dead); /* twice, or garbage: do not free */
		return;
	}
	uint64_t id = o->id;
	int slot = o->retirer;
	o->magic = DEAD;
	o->id = o->a = o->b = DEAD;
	o->retirer = -1;
	free(o);
	if (id < MAX_OBJECTS)
		atomic_fetch_add_explicit(&run.reclaims[id], 1, memory_order_relaxed);
	if (slot >= 0 && slot <= GROUP_SLOT)
		count(&run.ran_for[slot]);
	count(&run.reclaimed);
}

/* ---- readers -------------------------------------------------------------- */

/* An inner section inside the outer one (and a third level now and then);
 * after it ends, the outer section still protects `outer`. */
static void nested_read(struct obj *outer, uint64_t i, uint64_t *dead,
			uint64_t *dead_after_inner, uint64_t *checks)
{
	sync_epoch_enter();
	struct obj *o = atomic_load_explicit(&shared, memory_order_acquire);
	*dead += !obj_ok(o);
	if (i % 16 == 0) {
		sync_epoch_enter();
		struct obj *o3 = atomic_load_explicit(&shared, memory_order_acquire);
		*dead += !obj_ok(o3);
		sync_epoch_exit();
		*dead += !obj_ok(o);
	}
	sync_epoch_exit();
	/* writers get time to unlink and reclaim outer if the inner exit
	 * wrongly ended the section */
	if (i % 32 == 0)
		stress_sleep_us(100);
	*dead_after_inner += !obj_ok(outer);
	(*checks)++;
}

static void reader(int index)
{
	uint64_t reads = 0, dead = 0, dead_after_inner = 0, checks = 0;
	for (uint64_t i = (uint64_t)index; stress_running(); i++) {
		sync_epoch_enter();
		/* acquire: pairs with the writer's exchange */
		struct obj *o = atomic_load_explicit(&shared, memory_order_acquire);
		dead += !obj_ok(o);
		if (run.c->nest && i % 4 == 0)
			nested_read(o, i, &dead, &dead_after_inner, &checks);
		/* now and then a long section, across the writers' grace periods */
		if (i % 64 == 0)
			stress_sleep_us(20);
		dead += !obj_ok(o);
		sync_epoch_exit();
		reads++;
	}
	atomic_fetch_add_explicit(&run.reads, reads, memory_order_relaxed);
	atomic_fetch_add_explicit(&run.dead_reads, dead, memory_order_relaxed);
	atomic_fetch_add_explicit(&run.dead_after_inner, dead_after_inner,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&run.nested_checks, checks, memory_order_relaxed);
}

/* ---- writers -------------------------------------------------------------- */

/* Everything this thread (or its group) unlinked before the barrier has
 * been reclaimed when it returns: what it retired by the callbacks the
 * barrier promises to have run, the rest by the thread itself. */
static void barrier_and_check(int slot, uint64_t unlinked_by_slot)
{
	sync_epoch_barrier();
	count(&run.barriers);
	uint64_t ran = got(&run.ran_for[slot]);
	if (ran == unlinked_by_slot)
		return;
	count(&run.barrier_misses);
	bool first = false;
	if (atomic_compare_exchange_strong_explicit(&run.miss_noted, &first, true,
						    memory_order_relaxed,
						    memory_order_relaxed)) {
		stress_sleep_us(10000);
		run.miss_expected = unlinked_by_slot;
		run.miss_at_return = ran;
		run.miss_later = got(&run.ran_for[slot]);
	}
}

/* Generous: TSan slows everything, and the machine may be loaded. */
#define RARE_LIMIT_US 2000000

/* Retires one object, then waits (no libsync call) for its callback. */
static void rare_writer(int index)
{
	while (stress_running()) {
		struct obj *old = replace(index);
		if (!old)
			break;
		uint64_t id = old->id; /* old may be freed once retired */
		sync_epoch_retire(old, reclaim);
		count(&run.rare_retires);
		uint64_t waited = 0;
		while (!atomic_load_explicit(&run.reclaims[id], memory_order_relaxed) &&
		       waited < RARE_LIMIT_US) {
			stress_sleep_us(1000);
			waited += 1000;
		}
		if (waited >= RARE_LIMIT_US)
			count(&run.rare_late);
		if (waited > got(&run.rare_worst_us))
			atomic_store_explicit(&run.rare_worst_us, waited, memory_order_relaxed);
		stress_sleep_us(5000);
	}
}

static void writer(int index)
{
	const struct e_case *c = run.c;
	if (c->rare && index == 0) {
		rare_writer(index);
		return;
	}
	uint64_t retired = 0, syncs = 0;
	for (uint64_t i = 1; stress_running(); i++) {
		struct obj *old = replace(index);
		if (!old)
			break;
		if (c->sync_every && i % c->sync_every == 0) {
			sync_epoch_synchronize();
			syncs++;
			reclaim(old);
			continue;
		}
		if (i % 8 == 3) { /* retire may be called inside a section */
			sync_epoch_enter();
			sync_epoch_retire(old, reclaim);
			sync_epoch_exit();
		} else {
			sync_epoch_retire(old, reclaim);
		}
		retired++;
		if (c->poll_every && retired % c->poll_every == 0)
			atomic_fetch_add_explicit(&run.polled, sync_epoch_poll(),
						  memory_order_relaxed);
		if (c->barrier_every && retired % c->barrier_every == 0)
			barrier_and_check(index, retired + syncs);
	}
	if (c->barrier_every) /* one at least, however short the run */
		barrier_and_check(index, retired + syncs);
	run.syncs[index] = syncs;
}

/* A short-lived thread retires a few objects (fewer than the 64 after which
 * a retire tries to reclaim) and exits with them pending. */
struct short_lived {
	pthread_t thread;
	unsigned n;
	uint64_t retired;
};

static void *short_lived_main(void *arg)
{
	struct short_lived *s = arg;
	for (unsigned k = 0; k < s->n; k++) {
		struct obj *old = replace(GROUP_SLOT);
		if (!old)
			break;
		sync_epoch_retire(old, reclaim);
		s->retired++;
	}
	return NULL;
}

/* Batches of 4 threads (two at least); after every second batch, a barrier
 * must have run the callbacks of all of them. */
static void spawner(void)
{
	uint64_t retired = 0;
	for (uint64_t batch = 0; batch < 2 || stress_running(); batch++) {
		struct short_lived s[4];
		for (int j = 0; j < 4; j++) {
			s[j] = (struct short_lived){ .n = 1 + (unsigned)(batch * 7 + (uint64_t)j * 13) % 40 };
			if (pthread_create(&s[j].thread, NULL, short_lived_main, &s[j])) {
				perror("pthread_create");
				exit(EXIT_FAILURE);
			}
		}
		for (int j = 0; j < 4; j++) {
			pthread_join(s[j].thread, NULL);
			retired += s[j].retired;
			count(&run.exited);
		}
		count(&run.batches);
		if (batch % 2 == 1)
			barrier_and_check(GROUP_SLOT, retired);
	}
}

static void epoch_worker(void *arg, int index)
{
	(void)arg;
	if (index < run.c->writers)
		writer(index);
	else if (run.c->short_lived && index == run.c->writers)
		spawner();
	else
		reader(index);
}

/* ---- a barrier while a thread exits ---------------------------------------- */

/* A thread that retired a callback is leaving the domain (its key
 * destructor) when a barrier starts: the barrier must find the callback,
 * in the thread's list or in the orphans. The hook holds the exiting thread
 * for 50 ms at "epoch_thread_exit:unlisted", where it has left the
 * registry, while the barrier runs. */
#define EXIT_ROUNDS 3

static atomic_int exit_hook_armed, exit_held;

static void hold_exiting_thread(const char *point)
{
	if (strcmp(point, "epoch_thread_exit:unlisted") != 0 ||
	    !atomic_exchange(&exit_hook_armed, 0))
		return;
	atomic_store(&exit_held, 1);
	stress_sleep_us(50000);
}

static void count_retired(void *p)
{
	count(p);
}

static void *retire_one_and_exit(void *arg)
{
	sync_epoch_retire(arg, count_retired);
	return NULL;
}

static void check_barrier_while_thread_exits(void)
{
	static atomic_ullong calls[EXIT_ROUNDS];
	int misses = 0;
	test_hook_set(hold_exiting_thread);
	for (int round = 0; round < EXIT_ROUNDS; round++) {
		pthread_t t;
		atomic_store(&exit_held, 0);
		atomic_store(&exit_hook_armed, 1);
		if (pthread_create(&t, NULL, retire_one_and_exit, &calls[round])) {
			perror("pthread_create");
			exit(EXIT_FAILURE);
		}
		while (!atomic_load(&exit_held))
			stress_sleep_us(100);
		sync_epoch_barrier();
		misses += got(&calls[round]) != 1;
		pthread_join(t, NULL);
	}
	test_hook_set(NULL);
	tap_check(misses == 0, "epoch[%s] a barrier run while a thread leaves the domain "
		  "runs that thread's callbacks (%d of %d rounds missed them)", mode_name,
		  misses, EXIT_ROUNDS);
}

/* ---- cases ---------------------------------------------------------------- */

/* The case's own property: nested sections, synchronize from several
 * threads, barriers from several threads, or threads that exit with
 * callbacks pending. */
static void check_property(const struct e_case *c, const char *what)
{
	char miss[128] = "";
	if (atomic_load(&run.miss_noted))
		snprintf(miss, sizeof miss, "; first: %llu expected, %llu at the "
			 "return, %llu 10 ms later", (unsigned long long)run.miss_expected,
			 (unsigned long long)run.miss_at_return,
			 (unsigned long long)run.miss_later);
	if (c->rare) {
		tap_check(got(&run.rare_retires) > 0 && got(&run.rare_late) == 0 &&
				  got(&run.polled) > 0,
			  "%s: each of %llu rare retires was reclaimed without further "
			  "calls (worst %llu ms, %llu not within %d ms); %llu callbacks "
			  "ran in sync_epoch_poll", what, got(&run.rare_retires),
			  got(&run.rare_worst_us) / 1000, got(&run.rare_late),
			  RARE_LIMIT_US / 1000, got(&run.polled));
	} else if (c->short_lived) {
		tap_check(got(&run.batches) >= 2 && got(&run.barrier_misses) == 0,
			  "%s: %llu threads exited with callbacks pending, each of %llu "
			  "barriers had run them all (%llu misses%s)", what,
			  got(&run.exited), got(&run.barriers),
			  got(&run.barrier_misses), miss);
	} else if (c->barrier_every) {
		tap_check(got(&run.barriers) > 0 && got(&run.barrier_misses) == 0,
			  "%s: each of %llu barriers returned after its thread's "
			  "retired callbacks ran (%llu misses%s)", what,
			  got(&run.barriers), got(&run.barrier_misses), miss);
	} else if (c->sync_every) {
		uint64_t least = UINT64_MAX, sum = 0;
		for (int i = 0; i < c->writers; i++) {
			sum += run.syncs[i];
			least = run.syncs[i] < least ? run.syncs[i] : least;
		}
		tap_check(least > 0, "%s: %llu synchronize calls from %d threads at "
			  "once, each thread got through (least %llu)", what,
			  (unsigned long long)sum, c->writers,
			  (unsigned long long)least);
	} else {
		tap_check(c->nest && got(&run.nested_checks) > 0 &&
				  got(&run.dead_after_inner) == 0,
			  "%s: an inner section's exit leaves the outer one in force "
			  "(%llu outer objects checked after it, %llu dead)", what,
			  got(&run.nested_checks), got(&run.dead_after_inner));
	}
}

static void check_case(const struct e_case *c)
{
	memset(&run, 0, sizeof run);
	run.c = c;
	atomic_store(&shared, new_obj());
	stress_run_threads(c->threads, epoch_worker, NULL);

	char what[128];
	snprintf(what, sizeof what, "epoch[%s] %s", mode_name, c->name);
	uint64_t reads = got(&run.reads);
	uint64_t dead = got(&run.dead_reads) + got(&run.dead_after_inner);
	tap_check(reads > 0 && dead == 0 && (!c->nest || got(&run.nested_checks) > 0),
		  "%s: readers never saw a reclaimed object (%llu sections, %llu "
		  "nested, %llu dead)", what, (unsigned long long)reads,
		  got(&run.nested_checks), (unsigned long long)dead);
	uint64_t unlinked = got(&run.unlinked), during = got(&run.reclaimed);
	tap_check(during > 0 && during <= unlinked && got(&run.reclaimed_dead) == 0,
		  "%s: %llu of %llu unlinked objects reclaimed during the run, "
		  "none twice (%llu on a poisoned object)", what,
		  (unsigned long long)during, (unsigned long long)unlinked,
		  got(&run.reclaimed_dead));
	check_property(c, what);

	/* the last object too, then everything must have been reclaimed */
	struct obj *last = atomic_exchange(&shared, NULL);
	last->retirer = 0;
	count(&run.unlinked);
	sync_epoch_retire(last, reclaim);
	sync_epoch_barrier();
	uint64_t made = got(&run.next_id);
	made = made < MAX_OBJECTS ? made : MAX_OBJECTS;
	uint64_t not_once = 0;
	for (uint64_t id = 0; id < made; id++)
		not_once += atomic_load_explicit(&run.reclaims[id],
						 memory_order_relaxed) != 1;
	tap_check(not_once == 0 && got(&run.reclaimed) == got(&run.unlinked) &&
			  got(&run.unlinked) == made && got(&run.reclaimed_dead) == 0,
		  "%s: after sync_epoch_barrier each of %llu objects was reclaimed "
		  "exactly once (%llu reclaims, %llu not once)", what,
		  (unsigned long long)made, got(&run.reclaimed),
		  (unsigned long long)not_once);
}

static const struct e_case cases[] = {
	{ .name = "3 nesting readers, 2 writers retiring", .threads = 5,
	  .writers = 2, .nest = true },
	{ .name = "2 readers, 3 writers synchronizing at once", .threads = 5,
	  .writers = 3, .sync_every = 1 },
	{ .name = "3 readers, 2 writers retiring and synchronizing, barriers "
		  "from both", .threads = 5, .writers = 2, .nest = true,
	  .sync_every = 8, .barrier_every = 256 },
	{ .name = "3 readers, 1 writer, short-lived threads retiring",
	  .threads = 5, .writers = 1, .short_lived = true },
	{ .name = "3 nesting readers, a writer retiring often and polling, one "
		  "retiring rarely", .threads = 5, .writers = 2, .nest = true,
	  .rare = true, .poll_every = 16 },
	/* more threads than cores */
	{ .name = "6 nesting readers, 3 writers", .threads = 9, .writers = 3,
	  .nest = true, .sync_every = 16, .barrier_every = 1024 },
};

#define CASES ((int)(sizeof cases / sizeof cases[0]))
#define CHECKS_PER_CASE 4
#define CHECKS (CASES * CHECKS_PER_CASE + 1)

static void run_cases(const char *mode)
{
	mode_name = mode;
	for (int i = 0; i < CASES; i++)
		check_case(&cases[i]);
	check_barrier_while_thread_exits();
}

/* ---- the second mode, in a re-executed copy ------------------------------ */

static bool membarrier_expedited(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *off = getenv("SYNC_EPOCH_NO_MEMBARRIER");
	if (off && strcmp(off, "1") == 0) {
		/* the re-executed copy, or a run asked for this mode only */
		tap_plan(CHECKS);
		run_cases("fence");
		return tap_exit_status();
	}
	tap_plan(2 * CHECKS + 1);
	if (!membarrier_expedited())
		printf("# membarrier(2) unavailable: both runs use the fence\n");
	run_cases("membarrier");
	stress_rerun_in_fence_mode(argv, CHECKS, "epoch");
	return tap_exit_status();
}
