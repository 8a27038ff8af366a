/* Helpers shared by the unit suites: clocks, polling waits, child processes
 * and shared mappings. */
#define _GNU_SOURCE /* mremap */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

void sleep_ns(int64_t ns)
{
	struct timespec d = { (time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL) };
	while (nanosleep(&d, &d) == -1 && errno == EINTR)
		;
}

bool wait_until_equal(atomic_int *v, int want)
{
	int64_t start = now_ns();
	while (atomic_load(v) != want) {
		if (now_ns() - start > WAIT_LIMIT_NS)
			return false;
		sleep_ns(20000);
	}
	return true;
}

int child_status(pid_t pid)
{
	int64_t start = now_ns();
	int status;
	pid_t r;
	while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
		if (now_ns() - start > WAIT_LIMIT_NS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ns(NS_PER_MS);
	}
	if (r != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

void *move_mapping(void *p, size_t size)
{
	void *target = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (target == MAP_FAILED)
		return MAP_FAILED;
	return mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
}

int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

pid_t thread_id(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* /proc/<tid>/stat: "pid (comm) S ...", comm may hold spaces and parens. */
static bool is_asleep(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

bool wait_until_asleep(pid_t tid)
{
	int64_t start = now_ns();
	while (!is_asleep(tid)) {
		if (now_ns() - start > WAIT_LIMIT_NS)
			return false;
		sleep_ns(20000);
	}
	return true;
}

bool wait_until_at_least(atomic_int *v, int want)
{
	int64_t start = now_ns();
	while (atomic_load(v) < want) {
		if (now_ns() - start > WAIT_LIMIT_NS)
			return false;
		sleep_ns(20000);
	}
	return true;
}

static atomic_int signals_caught;

static void count_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals_caught, 1);
}

void catch_signal_without_restart(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = count_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	sigaction(sig, &sa, NULL);
}

int caught_signals(void)
{
	return atomic_load(&signals_caught);
}

bool interrupt_sleeper(pthread_t thread, pid_t tid, int sig)
{
	int before = atomic_load(&signals_caught);
	if (pthread_kill(thread, sig) != 0)
		return false;
	return wait_until_at_least(&signals_caught, before + 1) && wait_until_asleep(tid);
}

void *map_shared(size_t size)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

pid_t fork_running(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		_exit(fn(arg));
	}
	return pid;
}

/* Reaps the child into *status; false if it hung (it is then killed). */
static bool reap_within_limit(pid_t pid, int *status)
{
	int64_t start = now_ns();
	pid_t r;
	while ((r = waitpid(pid, status, WNOHANG)) == 0) {
		if (now_ns() - start > WAIT_LIMIT_NS) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return false;
		}
		sleep_ns(NS_PER_MS);
	}
	return r == pid;
}

int run_child_capturing_stderr(int (*fn)(void *), void *arg, char *buf, size_t size)
{
	int fds[2];
	buf[0] = '\0';
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		_exit(fn(arg));
	}
	close(fds[1]);
	int status = -1;
	if (pid < 0 || !reap_within_limit(pid, &status))
		status = -1;
	size_t n = 0;
	ssize_t got;
	while (pid > 0 && n + 1 < size && (got = read(fds[0], buf + n, size - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = '\0';
	close(fds[0]);
	return status;
}

/* Field `index` (0: total size, 1: resident) of /proc/self/statm, in bytes. */
static size_t statm_bytes(int index)
{
	unsigned long pages[2] = { 0, 0 };
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	int got = fscanf(f, "%lu %lu", &pages[0], &pages[1]);
	fclose(f);
	if (got != 2)
		return 0;
	return (size_t)pages[index] * (size_t)sysconf(_SC_PAGESIZE);
}

size_t resident_bytes(void)
{
	return statm_bytes(1);
}

struct hoard {
	struct hoard *next;
};

static struct rlimit address_space_before;

void *exhaust_memory(size_t block)
{
	if (block < sizeof(struct hoard))
		block = sizeof(struct hoard);
	getrlimit(RLIMIT_AS, &address_space_before);
	struct rlimit cap = address_space_before;
	cap.rlim_cur = statm_bytes(0);
	setrlimit(RLIMIT_AS, &cap);
	/* largest first: every free block of at least `block` bytes ends here */
	struct hoard *taken = NULL;
	for (size_t size = (size_t)1 << 24;; size /= 2) {
		if (size < block)
			size = block;
		struct hoard *h;
		while ((h = malloc(size)) != NULL) {
			h->next = taken;
			taken = h;
		}
		if (size == block)
			return taken;
	}
}

void release_memory(void *hoard)
{
	struct hoard *h = hoard;
	while (h) {
		struct hoard *next = h->next;
		free(h);
		h = next;
	}
	setrlimit(RLIMIT_AS, &address_space_before);
}

bool plain_malloc(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
	return false;
#else
	return true;
#endif
#else
	return true;
#endif
}

struct mutex_call {
	int (*fn)(sync_mutex_t *);
	sync_mutex_t *m;
	int result;
};

static void *mutex_call_main(void *arg)
{
	struct mutex_call *c = arg;
	c->result = c->fn(c->m);
	return NULL;
}

int mutex_call_in_thread(int (*fn)(sync_mutex_t *), sync_mutex_t *m)
{
	struct mutex_call c = { fn, m, -1 };
	pthread_t t;
	if (pthread_create(&t, NULL, mutex_call_main, &c) != 0 ||
	    pthread_join(t, NULL) != 0)
		abort();
	return c.result;
}
