/* Helpers shared by the unit suites: clocks, polling waits, child processes
 * and shared mappings. */
#define _GNU_SOURCE /* mremap */
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

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
