/* Helpers shared by the unit suites: clocks, polling waits, child processes
 * and shared mappings. */
#define _GNU_SOURCE /* mremap */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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
