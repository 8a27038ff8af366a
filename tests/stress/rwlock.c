/* Stress test for sync_rwlock under ThreadSanitizer: a writer is never
 * inside with anyone else, readers do share, a writer gets in under a flood
 * of readers, in both modes, with blocking, try and timed calls mixed. Two
 * plain words are written only by writers and read by readers, so
 * ThreadSanitizer reports a race if exclusion ever fails; the bookkeeping
 * atomics are relaxed, so every happens-before edge it sees comes from the
 * library. */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sync/rwlock.h>

#include "harness.h"

static void must(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "%s: unexpected %d\n", what, r);
		abort();
	}
}

static void count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long got(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* How threads lock: blocking calls only, or blocking, try and timed calls
 * in turn. */
enum calls { CALLS_BLOCKING, CALLS_MIXED };

struct rw_case {
	const char *name;
	int flags;
	bool initializer; /* SYNC_RWLOCK_INITIALIZER instead of init(flags) */
	int threads;
	int writers;       /* threads 0..writers-1 only write */
	int write_percent; /* the others write this often (0: only read) */
	enum calls calls;
	unsigned pause_every; /* a section sleeps every nth time (0: never) */
	unsigned pause_us;
	unsigned writer_target; /* flood: the writer stops after this many */
};

/* A writer stays alone for its 50 write locks within this, or fails. */
#define FLOOD_LIMIT_NS (10 * 1000000000ull)
#define FLOOD_TARGET 50
#define FLOOD_WARMUP_READS 1000

struct rw_run {
	const struct rw_case *c;
	sync_rwlock_t l;
	atomic_int readers, writers, max_readers, max_writers;
	atomic_ullong conflicts, torn, busy, timeouts, bad;
	atomic_ullong read_sections, write_sections;
	uint64_t data_a, data_b; /* plain: written by writers, read by readers */
	uint64_t reads[STRESS_MAX_THREADS];
	uint64_t writes[STRESS_MAX_THREADS];
	/* flood only */
	atomic_bool writer_done, flood_gave_up;
	uint64_t flood_start_ns, writer_ns;
};

/* Timed calls use deadlines from 5 us to 80 us. */
static struct timespec short_deadline(uint64_t i)
{
	return sync_deadline(5000u << (i / 3 % 5));
}

static int read_lock(struct rw_run *run, uint64_t i)
{
	if (run->c->calls == CALLS_BLOCKING || i % 3 == 0)
		return sync_rwlock_rdlock(&run->l);
	if (i % 3 == 1)
		return sync_rwlock_tryrdlock(&run->l);
	struct timespec deadline = short_deadline(i);
	return sync_rwlock_timedrdlock(&run->l, &deadline);
}

static int write_lock(struct rw_run *run, uint64_t i)
{
	if (run->c->calls == CALLS_BLOCKING || i % 3 == 0)
		return sync_rwlock_wrlock(&run->l);
	if (i % 3 == 1)
		return sync_rwlock_trywrlock(&run->l);
	struct timespec deadline = short_deadline(i);
	return sync_rwlock_timedwrlock(&run->l, &deadline);
}

static void maybe_pause(struct rw_run *run, uint64_t i)
{
	if (run->c->pause_every && i % run->c->pause_every == 0)
		stress_sleep_us(run->c->pause_us);
}

static void read_section(struct rw_run *run, uint64_t i)
{
	int now = atomic_fetch_add_explicit(&run->readers, 1,
					    memory_order_relaxed) + 1;
	stress_note_max(&run->max_readers, now);
	if (atomic_load_explicit(&run->writers, memory_order_relaxed))
		count(&run->conflicts);
	uint64_t a = run->data_a;
	maybe_pause(run, i);
	uint64_t b = run->data_b;
	if (a != b)
		count(&run->torn);
	if (atomic_load_explicit(&run->writers, memory_order_relaxed))
		count(&run->conflicts);
	count(&run->read_sections);
	atomic_fetch_sub_explicit(&run->readers, 1, memory_order_relaxed);
}

static void write_section(struct rw_run *run, uint64_t i)
{
	int now = atomic_fetch_add_explicit(&run->writers, 1,
					    memory_order_relaxed) + 1;
	stress_note_max(&run->max_writers, now);
	if (now != 1 || atomic_load_explicit(&run->readers, memory_order_relaxed))
		count(&run->conflicts);
	uint64_t v = run->data_a + 1;
	run->data_a = v;
	maybe_pause(run, i);
	run->data_b = v;
	if (atomic_load_explicit(&run->readers, memory_order_relaxed))
		count(&run->conflicts);
	count(&run->write_sections);
	atomic_fetch_sub_explicit(&run->writers, 1, memory_order_relaxed);
}

static void note_failure(struct rw_run *run, int r, bool is_try)
{
	if (r == EBUSY && is_try)
		count(&run->busy);
	else if (r == ETIMEDOUT)
		count(&run->timeouts);
	else
		count(&run->bad);
}

static bool keep_going(struct rw_run *run, bool writer, uint64_t writes)
{
	const struct rw_case *c = run->c;
	if (!c->writer_target)
		return stress_running();
	if (writer)
		return writes < c->writer_target;
	if (atomic_load_explicit(&run->writer_done, memory_order_relaxed))
		return false;
	if (stress_now_ns() - run->flood_start_ns < FLOOD_LIMIT_NS)
		return true;
	atomic_store_explicit(&run->flood_gave_up, true, memory_order_relaxed);
	return false;
}

/* Flood: the writer starts once the readers are in full swing. */
static void wait_for_flood(struct rw_run *run)
{
	while (got(&run->read_sections) < FLOOD_WARMUP_READS &&
	       stress_now_ns() - run->flood_start_ns < FLOOD_LIMIT_NS)
		stress_sleep_us(100);
}

static void rw_worker(void *arg, int index)
{
	struct rw_run *run = arg;
	const struct rw_case *c = run->c;
	bool writer = index < c->writers;
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(index + 1);
	uint64_t reads = 0, writes = 0, start = 0;
	if (writer && c->writer_target) {
		wait_for_flood(run);
		start = stress_now_ns();
	}
	for (uint64_t i = (uint64_t)index; keep_going(run, writer, writes); i++) {
		bool write = writer ||
			     stress_random(&x) % 100 < (uint64_t)c->write_percent;
		bool is_try = c->calls == CALLS_MIXED && i % 3 == 1;
		int r = write ? write_lock(run, i) : read_lock(run, i);
		if (r) {
			note_failure(run, r, is_try);
			continue;
		}
		if (write) {
			write_section(run, i);
			if (sync_rwlock_wrunlock(&run->l))
				count(&run->bad);
			writes++;
		} else {
			read_section(run, i);
			if (sync_rwlock_rdunlock(&run->l))
				count(&run->bad);
			reads++;
		}
	}
	if (writer && c->writer_target) {
		run->writer_ns = stress_now_ns() - start;
		atomic_store_explicit(&run->writer_done, true,
				      memory_order_relaxed);
	}
	run->reads[index] = reads;
	run->writes[index] = writes;
}

/* The case's own property: readers share, a writer gets through a flood,
 * writers progress in the default mode, readers progress always. */
static void check_property(const struct rw_case *c, struct rw_run *run,
			   uint64_t reads, uint64_t writes)
{
	int max_readers = atomic_load(&run->max_readers);
	if (c->writer_target) {
		bool in_time = !atomic_load(&run->flood_gave_up);
		tap_check(writes == c->writer_target && in_time && reads > 0,
			  "%s: the writer got %llu of %u write locks in %llu us "
			  "while %d readers read back to back (%llu reads)",
			  c->name, (unsigned long long)writes, c->writer_target,
			  (unsigned long long)(run->writer_ns / 1000),
			  c->threads - c->writers, (unsigned long long)reads);
	} else if (c->writers == 0 && c->write_percent == 0) {
		tap_check(max_readers >= 2 && reads > 0,
			  "%s: readers overlap (max %d at once)", c->name,
			  max_readers);
	} else if (c->flags & SYNC_RWLOCK_PREFER_READER) {
		tap_check(reads > 0, "%s: readers progress (%llu reads, %llu "
			  "writes)", c->name, (unsigned long long)reads,
			  (unsigned long long)writes);
	} else {
		tap_check(reads > 0 && writes > 0,
			  "%s: readers and writers both progress (%llu reads, "
			  "%llu writes)", c->name, (unsigned long long)reads,
			  (unsigned long long)writes);
	}
}

static void check_case(const struct rw_case *c)
{
	static struct rw_run run;
	run = (struct rw_run){ .c = c };
	if (c->initializer)
		run.l = (sync_rwlock_t)SYNC_RWLOCK_INITIALIZER;
	else
		must(sync_rwlock_init(&run.l, c->flags), "sync_rwlock_init");
	if (c->writer_target) {
		run.flood_start_ns = stress_now_ns();
		stress_run_threads_to_end(c->threads, rw_worker, &run);
	} else {
		stress_run_threads(c->threads, rw_worker, &run);
	}

	uint64_t reads = 0, writes = 0;
	for (int i = 0; i < c->threads; i++) {
		reads += run.reads[i];
		writes += run.writes[i];
	}
	tap_check(got(&run.conflicts) == 0 && atomic_load(&run.max_writers) <= 1,
		  "%s: never a writer with another holder (max %d readers, "
		  "max %d writers, %llu conflicts)",
		  c->name, atomic_load(&run.max_readers),
		  atomic_load(&run.max_writers), got(&run.conflicts));
	tap_check(run.data_a == writes && run.data_b == writes &&
			  got(&run.torn) == 0 && got(&run.bad) == 0 &&
			  writes == got(&run.write_sections) &&
			  reads == got(&run.read_sections),
		  "%s: data word == %llu writes, no torn read in %llu reads, no "
		  "stray error (%llu EBUSY, %llu ETIMEDOUT)",
		  c->name, (unsigned long long)writes, (unsigned long long)reads,
		  got(&run.busy), got(&run.timeouts));
	check_property(c, &run, reads, writes);
	int w = sync_rwlock_trywrlock(&run.l);
	int u = w == 0 ? sync_rwlock_wrunlock(&run.l) : -1;
	tap_check(w == 0 && u == 0 && sync_rwlock_destroy(&run.l) == 0,
		  "%s: ends unlocked with nobody waiting", c->name);
}

static const struct rw_case cases[] = {
	{ .name = "rwlock 4 readers + 2 writers", .threads = 6, .writers = 2 },
	{ .name = "rwlock(prefer reader) 4 readers + 2 writers",
	  .flags = SYNC_RWLOCK_PREFER_READER, .threads = 6, .writers = 2 },
	{ .name = "rwlock 4 readers, 100 us sections", .threads = 4,
	  .pause_every = 1, .pause_us = 100 },
	/* the readers' holds overlap, so the read count need never drop to 0 */
	{ .name = "rwlock 1 writer under 5 readers", .initializer = true,
	  .threads = 6, .writers = 1, .writer_target = FLOOD_TARGET,
	  .pause_every = 1, .pause_us = 50 },
	{ .name = "rwlock timed 6 threads 30% writes", .threads = 6,
	  .write_percent = 30, .calls = CALLS_MIXED, .pause_every = 8,
	  .pause_us = 50 },
	{ .name = "rwlock(prefer reader) timed 6 threads 30% writes",
	  .flags = SYNC_RWLOCK_PREFER_READER, .threads = 6, .write_percent = 30,
	  .calls = CALLS_MIXED, .pause_every = 8, .pause_us = 50 },
	/* more threads than cores */
	{ .name = "rwlock 8 threads 10% writes", .threads = 8,
	  .write_percent = 10 },
	{ .name = "rwlock pshared timed 8 threads 10% writes",
	  .flags = SYNC_PSHARED, .threads = 8, .write_percent = 10,
	  .calls = CALLS_MIXED, .pause_every = 32, .pause_us = 20 },
};


/* ---- self-synchronized destruction (issue 10, point 2) ------------------
 * POSIX's reference-counted object: lock, drop a reference, unlock; whoever
 * dropped the last one destroys and frees the object at once. The releasing
 * call of the other thread is held up for 10 ms right after its release (the
 * library's TEST_HOOK points "rwlock_wrunlock:released" and
 * "rwlock_rdunlock:released"), while the last owner, a writer that waits
 * with 2 ms deadlines and so needs no wake-up, takes the lock, destroys and
 * frees it: any access the held-up call still makes is a heap-use-after-free
 * for ThreadSanitizer and ASan (a wake-up the last owner needed would show as
 * a race with free). */

struct refcounted {
	sync_rwlock_t l;
	int refs; /* under l */
};

#define UAF_ROUNDS 20

static _Thread_local bool hold_up_my_release;

static void hold_up_release(const char *point)
{
	if (hold_up_my_release && (!strcmp(point, "rwlock_wrunlock:released") ||
				   !strcmp(point, "rwlock_rdunlock:released")))
		stress_sleep_us(10000);
}

static struct refcounted *refcounted_new(int flags, int refs)
{
	struct refcounted *o = malloc(sizeof *o);
	if (!o)
		abort();
	must(sync_rwlock_init(&o->l, flags), "sync_rwlock_init");
	o->refs = refs;
	return o;
}

/* Writes the reference away; the last one out destroys and frees. */
static void *drop_reference(void *arg)
{
	struct refcounted *o = arg;
	int r;
	do {
		struct timespec d = sync_deadline(2000000u);
		r = sync_rwlock_timedwrlock(&o->l, &d);
	} while (r == ETIMEDOUT);
	must(r, "sync_rwlock_timedwrlock");
	bool last = --o->refs == 0;
	must(sync_rwlock_wrunlock(&o->l), "sync_rwlock_wrunlock");
	if (last) {
		must(sync_rwlock_destroy(&o->l), "sync_rwlock_destroy");
		free(o);
	}
	return NULL;
}

/* The other thread waits to write while we write; our wrunlock is held up
 * after its release while it takes the last reference and frees. */
static bool wrunlock_round(int flags)
{
	struct refcounted *o = refcounted_new(flags, 2);
	pthread_t t;
	must(sync_rwlock_wrlock(&o->l), "sync_rwlock_wrlock");
	if (pthread_create(&t, NULL, drop_reference, o))
		abort();
	stress_sleep_us(200); /* most often it waits to write by now */
	--o->refs;
	hold_up_my_release = true;
	int r = sync_rwlock_wrunlock(&o->l); /* o may be gone from here on */
	hold_up_my_release = false;
	pthread_join(t, NULL);
	return r == 0;
}

/* We read while the other thread waits to write; our rdunlock, the last
 * read hold, is held up after its release while it frees. */
static bool rdunlock_round(int flags)
{
	struct refcounted *o = refcounted_new(flags, 1);
	pthread_t t;
	must(sync_rwlock_rdlock(&o->l), "sync_rwlock_rdlock");
	if (pthread_create(&t, NULL, drop_reference, o))
		abort();
	/* wait until it waits to write: new readers are then refused */
	int r;
	while ((r = sync_rwlock_tryrdlock(&o->l)) == 0) {
		must(sync_rwlock_rdunlock(&o->l), "sync_rwlock_rdunlock");
		stress_sleep_us(50);
	}
	hold_up_my_release = true;
	r = sync_rwlock_rdunlock(&o->l); /* o may be gone from here on */
	hold_up_my_release = false;
	pthread_join(t, NULL);
	return r == 0;
}

static void check_destruction_after_release(const char *name, bool (*round)(int),
					    int flags)
{
	test_hook_set(hold_up_release);
	int ok = 0;
	for (int i = 0; i < UAF_ROUNDS; i++)
		ok += round(flags);
	test_hook_set(NULL);
	tap_check(ok == UAF_ROUNDS, "%s: the next owner destroys and frees the lock "
		  "while the release is held up, %d rounds", name, ok);
}

/* ---- readers spin only where the write holder can run --------------------- */

struct behind_writer {
	sync_rwlock_t *l;
	int cpu;
	bool pinned;
	int r;
};

static void *read_behind_writer(void *arg)
{
	struct behind_writer *b = arg;
	b->pinned = stress_pin_cpu(b->cpu);
	stress_spins_counting(true);
	struct timespec deadline = sync_deadline(20000000u);
	b->r = sync_rwlock_timedrdlock(b->l, &deadline);
	stress_spins_counting(false);
	return NULL;
}

/* A writer takes the lock on the cpu_write-th CPU; a reader on the
 * cpu_read-th times out behind it. False if there are not that many CPUs. */
static bool read_behind_write(int flags, int cpu_write, int cpu_read, int *r)
{
	sync_rwlock_t l;
	struct behind_writer b = { &l, cpu_read, false, 0 };
	pthread_t t;
	must(sync_rwlock_init(&l, flags), "sync_rwlock_init");
	bool pinned = stress_pin_cpu(cpu_write);
	must(sync_rwlock_wrlock(&l), "sync_rwlock_wrlock");
	stress_spins_count("rwlock_spin");
	if (pthread_create(&t, NULL, read_behind_writer, &b))
		abort();
	pthread_join(t, NULL);
	stress_spins_stop();
	must(sync_rwlock_wrunlock(&l), "sync_rwlock_wrunlock");
	stress_unpin();
	*r = b.r;
	return pinned && b.pinned;
}

/* On the write holder's CPU the holder cannot run while a reader spins
 * there: the reader yields the CPU (twice, or once if a loaded machine
 * kept it away past its deadline) and sleeps. */
static void check_no_spin_on_writers_cpu(const char *name, int flags)
{
	int r;
	bool pinned = read_behind_write(flags, 0, 0, &r);
	tap_check(pinned && r == ETIMEDOUT && stress_spins_started() == 0 &&
		  stress_spins_yields() >= 1 && stress_spins_yields() <= 2,
		  "%s: a reader on the write holder's CPU yields instead of spinning "
		  "(spins %d, yields %d)", name, stress_spins_started(),
		  stress_spins_yields());
}

/* On another CPU the write holder may be running: the reader spins first. */
static void check_spin_off_writers_cpu(const char *name, int flags)
{
	int r;
	if (!read_behind_write(flags, 1, 0, &r)) {
		tap_check(true, "%s: a reader on another CPU spins # SKIP one CPU", name);
		return;
	}
	tap_check(r == ETIMEDOUT && stress_spins_started() == 1 &&
		  stress_spins_yields() == 0,
		  "%s: a reader on another CPU than the write holder spins (spins %d, yields %d)",
		  name, stress_spins_started(), stress_spins_yields());
}

int main(void)
{
	int n = (int)(sizeof cases / sizeof cases[0]);
	tap_plan(n * 4 + 4 + 4);
	check_no_spin_on_writers_cpu("rwlock", 0);
	check_no_spin_on_writers_cpu("rwlock pshared", SYNC_PSHARED);
	check_spin_off_writers_cpu("rwlock", 0);
	check_spin_off_writers_cpu("rwlock pshared", SYNC_PSHARED);
	check_destruction_after_release("wrunlock", wrunlock_round, 0);
	check_destruction_after_release("wrunlock pshared", wrunlock_round, SYNC_PSHARED);
	check_destruction_after_release("rdunlock", rdunlock_round, 0);
	check_destruction_after_release("rdunlock pshared", rdunlock_round, SYNC_PSHARED);
	for (int i = 0; i < n; i++)
		check_case(&cases[i]);
	return tap_exit_status();
}
