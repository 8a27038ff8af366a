/* Stress-test harness: timed worker threads, exclusion checking and TAP. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_bool running;
static void (*_Atomic hook_fn)(const char *point);

void test_hook_set(void (*fn)(const char *point))
{
	atomic_store(&hook_fn, fn);
}

void test_hook(const char *point);
void test_hook(const char *point)
{
	/* relaxed: the installing thread starts the threads that reach here */
	void (*fn)(const char *) = atomic_load_explicit(&hook_fn, memory_order_relaxed);
	if (fn)
		fn(point);
}
/* ---- counting spins (stress_spins_count) ---- */

static char spin_point[64], yield_point[64];
static atomic_int spins_started, yields_made;
static _Thread_local bool counting_spins;

static void count_spins(const char *point)
{
	if (!counting_spins)
		return;
	/* relaxed: read by the counting thread, or after it was joined */
	if (!strcmp(point, spin_point))
		atomic_fetch_add_explicit(&spins_started, 1, memory_order_relaxed);
	else if (!strcmp(point, yield_point))
		atomic_fetch_add_explicit(&yields_made, 1, memory_order_relaxed);
}

void stress_spins_count(const char *prefix)
{
	snprintf(spin_point, sizeof spin_point, "%s:start", prefix);
	snprintf(yield_point, sizeof yield_point, "%s:yield", prefix);
	atomic_store(&spins_started, 0);
	atomic_store(&yields_made, 0);
	test_hook_set(count_spins);
}

void stress_spins_counting(bool on)
{
	counting_spins = on;
}

void stress_spins_stop(void)
{
	test_hook_set(NULL);
}

int stress_spins_started(void)
{
	return atomic_load(&spins_started);
}

int stress_spins_yields(void)
{
	return atomic_load(&yields_made);
}

static int tap_number;
static int tap_failures;

/* The CPUs the process may use, as the harness first found them. */
static cpu_set_t allowed_cpus;
static pthread_once_t allowed_once = PTHREAD_ONCE_INIT;

static void find_allowed_cpus(void)
{
	if (sched_getaffinity(0, sizeof allowed_cpus, &allowed_cpus))
		CPU_ZERO(&allowed_cpus);
}

bool stress_pin_cpu(int n)
{
	pthread_once(&allowed_once, find_allowed_cpus);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed_cpus) || n-- > 0)
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
	}
	return false;
}

void stress_unpin(void)
{
	pthread_once(&allowed_once, find_allowed_cpus);
	if (CPU_COUNT(&allowed_cpus))
		pthread_setaffinity_np(pthread_self(), sizeof allowed_cpus, &allowed_cpus);
}

unsigned stress_ms(void)
{
	const char *env = getenv("STRESS_MS");
	return env ? (unsigned)strtoul(env, NULL, 10) : 400;
}

bool stress_running(void)
{
	/* relaxed: a stop hint; pthread_join orders the results */
	return atomic_load_explicit(&running, memory_order_relaxed);
}

struct worker {
	pthread_t thread;
	void (*fn)(void *arg, int index);
	void *arg;
	int index;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	w->fn(w->arg, w->index);
	return NULL;
}

static void start_workers(struct worker *workers, int n,
			  void (*fn)(void *arg, int index), void *arg)
{
	atomic_store(&running, true);
	for (int i = 0; i < n; i++) {
		workers[i] = (struct worker){ .fn = fn, .arg = arg, .index = i };
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i])) {
			perror("pthread_create");
			exit(EXIT_FAILURE);
		}
	}
}

static void join_workers(struct worker *workers, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(workers[i].thread, NULL);
}

void stress_run_threads(int n, void (*fn)(void *arg, int index), void *arg)
{
	struct worker workers[STRESS_MAX_THREADS];
	start_workers(workers, n, fn, arg);
	unsigned ms = stress_ms();
	nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000L }, NULL);
	atomic_store(&running, false);
	join_workers(workers, n);
}

void stress_run_threads_to_end(int n, void (*fn)(void *arg, int index),
			       void *arg)
{
	struct worker workers[STRESS_MAX_THREADS];
	start_workers(workers, n, fn, arg);
	join_workers(workers, n);
	atomic_store(&running, false);
}

void stress_note_max(atomic_int *max, int value)
{
	int seen = atomic_load_explicit(max, memory_order_relaxed);
	while (value > seen &&
	       !atomic_compare_exchange_weak_explicit(max, &seen, value,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

uint64_t stress_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void stress_sleep_us(unsigned us)
{
	nanosleep(&(struct timespec){ us / 1000000, (long)(us % 1000000) * 1000L },
		  NULL);
}

uint64_t stress_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ull;
}

static void enter_critical(struct exclusion_run *run)
{
	int now = atomic_fetch_add(&run->holders, 1) + 1;
	int max = atomic_load(&run->max_holders);
	while (now > max && !atomic_compare_exchange_weak(&run->max_holders, &max, now))
		;
	run->plain_counter++;
	atomic_fetch_sub(&run->holders, 1);
}

static void exclusion_worker(void *arg, int index)
{
	struct exclusion_run *run = arg;
	uint64_t node[4]; /* scratch for locks that need a per-thread node */
	uint64_t mine = 0;
	for (uint64_t i = 0; stress_running(); i++) {
		bool via_try = run->use_trylock && (i & 1);
		if (via_try) {
			if (!run->ops->trylock(run->lock, node))
				continue;
		} else {
			run->ops->lock(run->lock, node);
		}
		enter_critical(run);
		run->ops->unlock(run->lock, node);
		mine++;
	}
	run->per_thread[index] = mine;
}

void stress_exclusion(const struct lock_ops *ops, void *lock, int threads,
		      bool use_trylock)
{
	struct exclusion_run run = { .ops = ops, .lock = lock,
				     .use_trylock = use_trylock };
	stress_run_threads(threads, exclusion_worker, &run);
	uint64_t sum = 0, least = UINT64_MAX;
	for (int i = 0; i < threads; i++) {
		sum += run.per_thread[i];
		least = run.per_thread[i] < least ? run.per_thread[i] : least;
	}
	const char *how = use_trylock ? "lock+trylock" : "lock";
	tap_check(atomic_load(&run.max_holders) == 1,
		  "%s %s %d threads: never two holders (max %d)", ops->name, how,
		  threads, atomic_load(&run.max_holders));
	tap_check(sum == run.plain_counter && sum > 0,
		  "%s %s %d threads: counter %llu == acquisitions %llu", ops->name,
		  how, threads, (unsigned long long)run.plain_counter,
		  (unsigned long long)sum);
	tap_check(least > 0, "%s %s %d threads: every thread got in (least %llu)",
		  ops->name, how, threads, (unsigned long long)least);
}

/* A lost wake-up shows as a hang: fail the test instead of stalling make. */
#define WATCHDOG_SECONDS 300

void tap_plan(int n)
{
	alarm(WATCHDOG_SECONDS);
	printf("1..%d\n", n);
	fflush(stdout);
}

void tap_check(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", ok ? "" : "not ", ++tap_number);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
	if (!ok)
		tap_failures++;
}

int tap_exit_status(void)
{
	return tap_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- both epoch modes in one TAP stream ---- */

/* Relays one TAP line of the child as our own check (renumbered); other
 * lines (diagnostics) pass through. Returns true for a test line. */
static bool relay(const char *line)
{
	bool ok = strncmp(line, "ok ", 3) == 0;
	if (!ok && strncmp(line, "not ok ", 7) != 0) {
		if (strncmp(line, "1..", 3) != 0)
			fputs(line, stdout);
		return false;
	}
	const char *desc = strstr(line, " - ");
	desc = desc ? desc + 3 : "";
	tap_check(ok, "%.*s", (int)strcspn(desc, "\n"), desc);
	return true;
}

/* Runs this program again with SYNC_EPOCH_NO_MEMBARRIER=1 (the mode is
 * fixed at the first use in a process) and relays its checks. */
void stress_rerun_in_fence_mode(char **argv, int checks, const char *name)
{
	int fds[2];
	fflush(stdout);
	if (pipe(fds)) {
		perror("pipe");
		exit(EXIT_FAILURE);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(EXIT_FAILURE);
	}
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[1]);
		setenv("SYNC_EPOCH_NO_MEMBARRIER", "1", 1);
		execv("/proc/self/exe", argv);
		perror("execv /proc/self/exe");
		_exit(127);
	}
	close(fds[1]);
	FILE *in = fdopen(fds[0], "r");
	char line[1024];
	int relayed = 0;
	while (in && fgets(line, sizeof line, in))
		relayed += relay(line);
	if (in)
		fclose(in);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (; relayed < checks; relayed++)
		tap_check(false, "%s[fence]: check %d never reported", name, relayed + 1);
	char how[64];
	if (WIFEXITED(status))
		snprintf(how, sizeof how, "status %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof how, "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	tap_check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s[fence]: the run with SYNC_EPOCH_NO_MEMBARRIER=1 ended with %s",
		  name, how);
}
