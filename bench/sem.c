/* Semaphore rows: sync_sem against glibc's sem_t (sem_init/sem_wait/sem_post):
 * an uncontended wait+post pair, a ping-pong between two threads through two
 * semaphores, 8 threads through a sem(2), and a one-slot ring between two
 * processes (two SYNC_PSHARED semaphores and a SYNC_PSHARED mutex against
 * process-shared sem_t and pthread_mutex), on two CPUs and on one, in wall
 * time and in CPU time. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sync/mutex.h>

#include <sync/sem.h>

#include "internal.h"

/* Alignment of the shared data: as the harness's, two cache lines. */
#define LINE 128

/* ---- ours and glibc's ----------------------------------------------------- */

static void ours_init_value(void *sem, unsigned value)
{
	sync_sem_init(sem, value, 0);
}

static void ours_init(void *sem)
{
	ours_init_value(sem, 1);
}

static void ours_wait(void *sem, void *node)
{
	(void)node;
	sync_sem_wait(sem);
}

static void ours_post(void *sem, void *node)
{
	(void)node;
	sync_sem_post(sem);
}

static void glibc_init_value(void *sem, unsigned value)
{
	sem_init(sem, 0, value);
}

static void glibc_init(void *sem)
{
	glibc_init_value(sem, 1);
}

static void glibc_wait(void *sem, void *node)
{
	(void)node;
	sem_wait(sem);
}

static void glibc_post(void *sem, void *node)
{
	(void)node;
	sem_post(sem);
}

static const struct bench_lock sync_sem = {
	.name = "sync_sem", .size = sizeof(sync_sem_t), .init = ours_init,
	.lock = ours_wait, .unlock = ours_post, .init_value = ours_init_value,
};

static const struct bench_lock glibc_sem = {
	.name = "sem_t", .size = sizeof(sem_t), .init = glibc_init,
	.lock = glibc_wait, .unlock = glibc_post, .init_value = glibc_init_value,
};

/* ---- wait+post: sem(1) as a lock, one thread ------------------------------ */

struct counter_line {
	_Alignas(LINE) uint64_t value; /* changed only between wait and post */
};

static void wait_post_setup(const struct bench_objects *run)
{
	run->impl->init_value(run->obj[0], 1);
}

static uint64_t wait_post_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*wait)(void *, void *) = run->impl->lock;
	void (*post)(void *, void *) = run->impl->unlock;
	void *sem = run->obj[0];
	uint64_t *counter = &((struct counter_line *)run->shared)->value;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		wait(sem, t->node);
		(*counter)++;
		post(sem, t->node);
		bench_pause(run->delay);
	}
	return i;
}

static bool wait_post_check(const struct bench_objects *run, uint64_t ops,
			    const uint64_t counts[2])
{
	uint64_t counter = ((const struct counter_line *)run->shared)->value;
	(void)counts;
	if (counter == ops)
		return true;
	fprintf(stderr, "bench: %s wait+post: counter %llu, pairs %llu\n", run->impl->name,
		(unsigned long long)counter, (unsigned long long)ops);
	return false;
}

static const struct bench_workload wait_post = {
	.name = "wait+post",
	.legend = "sem(1): wait; ++counter (own cache line); post; ns per wait+post pair",
	.objects = 1,
	.shared_size = sizeof(struct counter_line),
	.fairness = true,
	.setup = wait_post_setup,
	.loop = wait_post_loop,
	.check = wait_post_check,
};

/* ---- ping-pong: two threads hand a token through two semaphores ----------- */

/* Thread i waits on obj[i] and posts obj[1 - i]; obj[0] starts at 1, so
 * thread 0 goes first. Only the thread holding the token touches these. */
struct pingpong {
	_Alignas(LINE) uint64_t handoffs; /* even: thread 0's turn, odd: thread 1's */
};

static void pingpong_setup(const struct bench_objects *run)
{
	run->impl->init_value(run->obj[0], 1);
	run->impl->init_value(run->obj[1], 0);
}

/* A thread that finds the time up passes the token on without counting, so
 * the other wakes, finds it up too, and both leave. */
static uint64_t pingpong_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*wait)(void *, void *) = run->impl->lock;
	void (*post)(void *, void *) = run->impl->unlock;
	void *mine = run->obj[t->index], *theirs = run->obj[1 - t->index];
	struct pingpong *p = run->shared;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit; i++) {
		wait(mine, t->node);
		if (bench_stopped(t)) {
			post(theirs, t->node);
			break;
		}
		t->counts[0] += (p->handoffs & 1) != (uint64_t)t->index; /* not our turn */
		p->handoffs++;
		post(theirs, t->node);
		bench_pause(run->delay);
	}
	return i;
}

static bool pingpong_check(const struct bench_objects *run, uint64_t ops,
			   const uint64_t counts[2])
{
	const struct pingpong *p = run->shared;
	if (p->handoffs == ops && !counts[0])
		return true;
	fprintf(stderr, "bench: %s ping-pong: %llu hand-offs, %llu counted, %llu out of turn\n",
		run->impl->name, (unsigned long long)p->handoffs, (unsigned long long)ops,
		(unsigned long long)counts[0]);
	return false;
}

static const struct bench_workload pingpong = {
	.name = "ping-pong",
	.legend = "two sems, s0 = 1, s1 = 0; thread i: wait s[i]; post s[1-i]; ns per hand-off"
		  " (2 per round trip)",
	.objects = 2,
	.shared_size = sizeof(struct pingpong),
	.fixed_threads = true,
	.setup = pingpong_setup,
	.loop = pingpong_loop,
	.check = pingpong_check,
};

/* ---- sem(2): T threads, at most two inside ---------------------------------- */

#define SEM2_VALUE 2u

struct occupancy {
	_Alignas(LINE) atomic_uint inside; /* threads between wait and post */
};

static void sem2_setup(const struct bench_objects *run)
{
	run->impl->init_value(run->obj[0], SEM2_VALUE);
}

static uint64_t sem2_loop(struct bench_thread *t, uint64_t n)
{
	const struct bench_objects *run = t->run;
	void (*wait)(void *, void *) = run->impl->lock;
	void (*post)(void *, void *) = run->impl->unlock;
	void *sem = run->obj[0];
	atomic_uint *inside = &((struct occupancy *)run->shared)->inside;
	uint64_t limit = n ? n : UINT64_MAX, i;

	for (i = 0; i < limit && !bench_stopped(t); i++) {
		wait(sem, t->node);
		/* relaxed: one counter, its modification order is all we read;
		 * the semaphore orders the rest */
		unsigned now = atomic_fetch_add_explicit(inside, 1, memory_order_relaxed) + 1;
		t->counts[0] += now > SEM2_VALUE;
		atomic_fetch_sub_explicit(inside, 1, memory_order_relaxed);
		post(sem, t->node);
		bench_pause(run->delay);
	}
	return i;
}

static bool sem2_check(const struct bench_objects *run, uint64_t ops, const uint64_t counts[2])
{
	unsigned inside = atomic_load(&((struct occupancy *)run->shared)->inside);
	(void)ops;
	if (!counts[0] && !inside)
		return true;
	fprintf(stderr, "bench: %s sem(2): more than 2 inside %llu times, %u inside at the end\n",
		run->impl->name, (unsigned long long)counts[0], inside);
	return false;
}

static const struct bench_workload sem2 = {
	.name = "sem(2)",
	.legend = "sem(2): wait; ++inside, check <= 2, --inside (one shared atomic); post;"
		  " ns per wait+post pair",
	.objects = 1,
	.shared_size = sizeof(struct occupancy),
	.fairness = true,
	.setup = sem2_setup,
	.loop = sem2_loop,
	.check = sem2_check,
};

/* ---- ring: two processes, one slot, MAP_SHARED ------------------------------ */

/* A producer process and a consumer process hand items through a one-slot
 * ring in MAP_SHARED memory: producer: wait(empty); lock; slot = i; unlock;
 * post(full); consumer: wait(full); lock; check slot; unlock; post(empty).
 * Not a harness workload (the harness runs threads of one process): the
 * parent forks the two, each pinned by the placement, and each measures its
 * own loop (wall clock and CLOCK_PROCESS_CPUTIME_ID), so that neither fork
 * nor exit is counted. Both sides run the same loop through these pointers. */
struct ring_impl {
	const char *name;
	void (*init)(void *empty, void *full, void *mutex); /* process-shared */
	void (*wait)(void *sem);
	void (*post)(void *sem);
	void (*lock)(void *mutex);
	void (*unlock)(void *mutex);
};

static void ours_ring_init(void *empty, void *full, void *mutex)
{
	sync_sem_init(empty, 1, SYNC_PSHARED);
	sync_sem_init(full, 0, SYNC_PSHARED);
	sync_mutex_init(mutex, SYNC_PSHARED);
}

static void ours_ring_wait(void *sem)
{
	sync_sem_wait(sem);
}

static void ours_ring_post(void *sem)
{
	sync_sem_post(sem);
}

static void ours_ring_lock(void *mutex)
{
	sync_mutex_lock(mutex);
}

static void ours_ring_unlock(void *mutex)
{
	sync_mutex_unlock(mutex);
}

static void glibc_ring_init(void *empty, void *full, void *mutex)
{
	pthread_mutexattr_t attr;
	sem_init(empty, 1, 1);
	sem_init(full, 1, 0);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(mutex, &attr);
	pthread_mutexattr_destroy(&attr);
}

static void glibc_ring_wait(void *sem)
{
	sem_wait(sem);
}

static void glibc_ring_post(void *sem)
{
	sem_post(sem);
}

static void glibc_ring_lock(void *mutex)
{
	pthread_mutex_lock(mutex);
}

static void glibc_ring_unlock(void *mutex)
{
	pthread_mutex_unlock(mutex);
}

static const struct ring_impl ours_ring = {
	"sync_sem+mutex", ours_ring_init, ours_ring_wait, ours_ring_post, ours_ring_lock,
	ours_ring_unlock,
};

static const struct ring_impl glibc_ring = {
	"sem_t+pthread", glibc_ring_init, glibc_ring_wait, glibc_ring_post, glibc_ring_lock,
	glibc_ring_unlock,
};

/* The MAP_SHARED page: each object on its own cache lines. */
struct ring_shared {
	_Alignas(LINE) unsigned char empty[sizeof(sem_t) > sizeof(sync_sem_t) ?
					   sizeof(sem_t) : sizeof(sync_sem_t)];
	_Alignas(LINE) unsigned char full[sizeof(sem_t) > sizeof(sync_sem_t) ?
					  sizeof(sem_t) : sizeof(sync_sem_t)];
	_Alignas(LINE) unsigned char mutex[sizeof(pthread_mutex_t) > sizeof(sync_mutex_t) ?
					   sizeof(pthread_mutex_t) : sizeof(sync_mutex_t)];
	_Alignas(LINE) uint64_t slot;    /* written and read under the mutex */
	uint64_t out_of_order;           /* consumer's count of wrong items */
	_Alignas(LINE) atomic_int ready; /* processes waiting for the start */
	atomic_int go;
	_Alignas(LINE) double wall_start[2], wall_end[2], cpu_ns[2];
};

static double clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void ring_process(struct ring_shared *r, const struct ring_impl *impl, int who,
			 uint64_t items, int cpu)
{
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof set, &set);
	}
	/* relaxed: a start line only; the objects were set up before fork */
	atomic_fetch_add_explicit(&r->ready, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&r->go, memory_order_relaxed))
		sched_yield();
	double cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	r->wall_start[who] = clock_ns(CLOCK_MONOTONIC);
	for (uint64_t i = 1; i <= items; i++) {
		if (who == 0) {
			impl->wait(r->empty);
			impl->lock(r->mutex);
			r->slot = i;
			impl->unlock(r->mutex);
			impl->post(r->full);
		} else {
			impl->wait(r->full);
			impl->lock(r->mutex);
			r->out_of_order += r->slot != i;
			impl->unlock(r->mutex);
			impl->post(r->empty);
		}
	}
	r->wall_end[who] = clock_ns(CLOCK_MONOTONIC);
	r->cpu_ns[who] = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
}

/* One run: ns per item in wall time (first start to last end) and in CPU
 * time (both processes' loops). False if it failed or hit cap_s. */
static bool ring_run(struct ring_shared *r, const struct ring_impl *impl, uint64_t items,
		     const int cpus[2], double cap_s, double *wall_ns, double *cpu_ns)
{
	pid_t pid[2];
	bool ok = true;
	memset(r, 0, sizeof *r);
	impl->init(r->empty, r->full, r->mutex);
	fflush(stdout);
	fflush(stderr);
	for (int who = 0; who < 2; who++) {
		pid[who] = fork();
		if (pid[who] < 0) {
			perror("bench: fork");
			if (who)
				kill(pid[0], SIGKILL);
			ok = false;
			pid[who] = 0;
			break;
		}
		if (pid[who] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			alarm((unsigned)cap_s + 1); /* the cap: SIGALRM ends a stuck run */
			ring_process(r, impl, who, items, cpus[who]);
			_exit(0);
		}
	}
	/* relaxed: as in ring_process */
	while (ok && atomic_load_explicit(&r->ready, memory_order_relaxed) < 2)
		sched_yield();
	atomic_store_explicit(&r->go, 1, memory_order_relaxed);
	for (int who = 0; who < 2; who++) {
		int ws;
		if (!pid[who])
			continue;
		while (waitpid(pid[who], &ws, 0) < 0 && errno == EINTR)
			;
		ok = ok && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
	}
	if (ok && r->out_of_order) {
		fprintf(stderr, "bench: %s ring: %llu items out of order\n", impl->name,
			(unsigned long long)r->out_of_order);
		ok = false;
	}
	double start = r->wall_start[0] < r->wall_start[1] ? r->wall_start[0] : r->wall_start[1];
	double end = r->wall_end[0] > r->wall_end[1] ? r->wall_end[0] : r->wall_end[1];
	*wall_ns = (end - start) / (double)items;
	*cpu_ns = (r->cpu_ns[0] + r->cpu_ns[1]) / (double)items;
	return ok;
}

/* Items per run: what the slower side does in round_ms (on two CPUs glibc
 * sleeps at every hand-off, about 50 times slower than ours), at least
 * RING_MIN_ITEMS. */
#define RING_MIN_ITEMS 2000u
#define RING_MAX_ITEMS 2000000u

static uint64_t ring_items(const struct bench_config *cfg, struct ring_shared *r,
			   const int cpus[2])
{
	double slowest = 0, wall, cpu;
	const struct ring_impl *impls[2] = { &ours_ring, &glibc_ring };
	for (int i = 0; i < 2; i++)
		if (ring_run(r, impls[i], RING_MIN_ITEMS, cpus, cfg->cap_max_s, &wall, &cpu) &&
		    wall > slowest)
			slowest = wall;
	if (slowest <= 0)
		return RING_MIN_ITEMS;
	double want = cfg->round_ms * 1e6 / slowest;
	return want < RING_MIN_ITEMS ? RING_MIN_ITEMS
	     : want > RING_MAX_ITEMS ? RING_MAX_ITEMS : (uint64_t)want;
}

/* The legend under the table. */
static const struct bench_workload ring_legend = {
	.name = "ring",
	.legend = "two processes (fork), a one-slot ring in MAP_SHARED memory: producer:"
		  " wait(empty); lock; slot = i; unlock;\n#               post(full); consumer:"
		  " wait(full); lock; check slot; unlock; post(empty); ours: SYNC_PSHARED"
		  " sync_sem x2 + sync_mutex,\n#               peer: pshared sem_t x2 +"
		  " PTHREAD_PROCESS_SHARED pthread_mutex; ring2c: one process per CPU, ring1c: both"
		  " on one\n#               CPU (sched_setaffinity); wall: ns per item, first"
		  " start to last end; cpu: both loops' CPU time per item",
};

static void ring_tally(struct bench_tally *tally, const char *workload, double ratio,
		       bool known, double target)
{
	size_t used = strlen(tally->missed);
	tally->targets++;
	if (known && ratio <= target) {
		tally->met++;
		return;
	}
	if (known)
		snprintf(tally->missed + used, sizeof tally->missed - used,
			 "\n#   sync_sem %s vs sem_t+pthread @2: %.3f > %.2f (%+.0f%%)", workload,
			 ratio, target, (ratio / target - 1) * 100);
	else
		snprintf(tally->missed + used, sizeof tally->missed - used,
			 "\n#   sync_sem %s vs sem_t+pthread @2: no result", workload);
}

/* Prints the placement's two rows (wall, cpu), in the table's columns. */
static void ring_print(struct bench_tally *tally, const char *place, const double *ow,
		       const double *oc, int on, const double *pw, const double *pc, int pn,
		       bool failed)
{
	static const double target = 1.00;
	for (int cpu = 0; cpu < 2; cpu++) {
		char workload[32], a[16] = "FAIL", b[16] = "FAIL", ratio_s[16] = "-";
		const double *o = cpu ? oc : ow, *p = cpu ? pc : pw;
		bool known = on && pn;
		double ratio = known ? median(o, on) / median(p, pn) : 0;
		snprintf(workload, sizeof workload, "ring%s-%s", place, cpu ? "cpu" : "wall");
		if (on)
			snprintf(a, sizeof a, "%.1f", median(o, on));
		if (pn)
			snprintf(b, sizeof b, "%.1f", median(p, pn));
		if (known)
			snprintf(ratio_s, sizeof ratio_s, "%.2f", ratio);
		printf("%-15s %-11s %-18s %3s %10s %10s %8s %-10s %-4s %14s %16s\n", "sync_sem",
		       workload, glibc_ring.name, "2", a, b, ratio_s, "<= 1.00",
		       known && ratio <= target ? "yes" : "NO", "", "");
		fflush(stdout);
		ring_tally(tally, workload, ratio, known, target);
	}
	tally->failures += failed;
}

static void bench_ring(const struct bench_config *cfg, struct bench_tally *tally)
{
	cpu_set_t allowed;
	int first = -1, second = -1;
	if ((cfg->only && !strstr("sync_sem", cfg->only)) ||
	    (cfg->only_threads && cfg->only_threads != 2))
		return;
	struct ring_shared *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED || sched_getaffinity(0, sizeof allowed, &allowed)) {
		fprintf(stderr, "bench: ring rows: %s\n", strerror(errno));
		tally->failures++;
		return;
	}
	for (int c = 0; c < CPU_SETSIZE && second < 0; c++)
		if (CPU_ISSET(c, &allowed))
			*(first < 0 ? &first : &second) = c;
	for (int place = 0; place < 2; place++) {
		/* 2cpu: one process per CPU (--no-pin: wherever the scheduler puts
		 * them); 1cpu: both on the first allowed CPU */
		int cpus[2] = { first, place == 0 ? second : first };
		if (place == 0 && (second < 0 || !cfg->pin))
			cpus[0] = cpus[1] = -1;
		if (place == 0 && second < 0)
			continue; /* one CPU only: "2cpu" would be "1cpu" */
		uint64_t items = cfg->ops ? cfg->ops : ring_items(cfg, r, cpus);
		double ow[BENCH_MAX_ROUNDS], oc[BENCH_MAX_ROUNDS], pw[BENCH_MAX_ROUNDS],
			pc[BENCH_MAX_ROUNDS];
		int on = 0, pn = 0;
		bool failed = false;
		for (int i = 0; i < cfg->rounds; i++) {
			if (ring_run(r, &ours_ring, items, cpus, cfg->cap_max_s, &ow[on], &oc[on]))
				on++;
			else
				failed = true;
			if (ring_run(r, &glibc_ring, items, cpus, cfg->cap_max_s, &pw[pn], &pc[pn]))
				pn++;
			else
				failed = true;
			if (cfg->verbose)
				fprintf(stderr, "  ring %s %llu items: ours %.1f ns wall %.1f ns cpu,"
					" peer %.1f ns wall %.1f ns cpu\n", place ? "1cpu" : "2cpu",
					(unsigned long long)items, on ? ow[on - 1] : 0,
					on ? oc[on - 1] : 0, pn ? pw[pn - 1] : 0, pn ? pc[pn - 1] : 0);
		}
		ring_print(tally, place ? "1c" : "2c", ow, oc, on, pw, pc, pn, failed);
	}
	munmap(r, sizeof *r);
	if (tally->nseen < (int)(sizeof tally->seen / sizeof tally->seen[0]))
		tally->seen[tally->nseen++] = &ring_legend;
}

/* ---- rows ------------------------------------------------------------------- */

void bench_sem(const struct bench_config *cfg, struct bench_tally *tally)
{
	static const struct bench_row rows[] = {
		{ "sync_sem", &sync_sem, &glibc_sem, 1, { TARGET_RATIO, 1.00 }, &wait_post },
		{ "sync_sem", &sync_sem, &glibc_sem, 2, { TARGET_RATIO, 0.50 }, &pingpong },
		{ "sync_sem", &sync_sem, &glibc_sem, 8, { TARGET_RATIO, 1.00 }, &sem2 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		bench_run_row(cfg, &rows[i], tally);
	bench_ring(cfg, tally);
}
