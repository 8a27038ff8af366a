/* Cached gettid(2) and a per-process token; the fork child forgets both. */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

THREAD_LOCAL uint32_t thread_cached_tid;

uint32_t thread_token;
bool thread_fork_unwatched;
bool thread_forked;

/* The pid that drew thread_token, for the fallback of thread_fork_unwatched. */
static pid_t token_pid;

THREAD_LOCAL uint32_t thread_tid_before_fork;

static uint32_t draw_token(void)
{
	uint32_t mask = (1u << THREAD_PROCESS_TOKEN_BITS) - 1, t = 0;
	int saved = errno;
	if (getrandom(&t, sizeof t, GRND_NONBLOCK) != (ssize_t)sizeof t) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		t = (uint32_t)now.tv_nsec * 2654435761u ^ (uint32_t)getpid();
	}
	token_pid = getpid();
	errno = saved;
	t &= mask;
	return t ? t : 1;
}

/* The inode of /proc/self/ns/pid, or 0 where /proc cannot tell; looked up
 * at the first call, again in a fork child (which unshare(CLONE_NEWPID) may
 * have put in a new namespace). */
static _Atomic uint32_t pidns_cache;

/* The fork child's only thread: a new id, a new token. */
static void renew_in_child(void)
{
	thread_cached_tid = 0;
	thread_token = draw_token();
	thread_forked = true;
	atomic_store_explicit(&pidns_cache, 0, memory_order_relaxed);
}

/* Around fork(2), the forking thread notes its id; the parent forgets it,
 * the child keeps it (see thread_held_before_fork). */
static void note_tid_before_fork(void)
{
	thread_tid_before_fork = thread_tid();
}

static void forget_tid_before_fork(void)
{
	thread_tid_before_fork = 0;
}

/* Runs when the library is loaded, before any thread can use it. The fork
 * handler is registered here, never lazily: a first call from a thread that
 * is blocked while another forks (or from a fork handler) would register it
 * inside fork(2), where glibc holds the lock of the handler list. */
__attribute__((constructor)) static void prepare_tokens(void)
{
	thread_token = draw_token();
	thread_fork_unwatched = pthread_atfork(note_tid_before_fork,
					       forget_tid_before_fork,
					       renew_in_child) != 0;
}

/* Without a fork handler (pthread_atfork allocates, and may have failed),
 * a fork is seen by the pid: one system call a call. */
uint32_t thread_process_token_slow(void)
{
	if (token_pid != getpid())
		renew_in_child();
	return thread_token;
}

uint32_t thread_tid_slow(void)
{
	thread_cached_tid = (uint32_t)syscall(SYS_gettid);
	return thread_cached_tid;
}

uint32_t thread_pid_namespace(void)
{
	/* relaxed: every thread computes the same value */
	uint32_t ns = atomic_load_explicit(&pidns_cache, memory_order_relaxed);
	if (ns && !thread_fork_unwatched)
		return ns;
	thread_process_token(); /* without a fork handler: notices a fork */
	struct stat st;
	int saved = errno;
	ns = stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino : 0;
	errno = saved;
	atomic_store_explicit(&pidns_cache, ns, memory_order_relaxed);
	return ns;
}
