/* Cached gettid(2) and a per-process token; the fork child forgets both. */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Thread_local uint32_t thread_cached_tid;

/* 0 until drawn; relaxed: any thread may draw it, all draws are equally good
 * and the first one stored wins (see draw_token). */
static _Atomic uint32_t process_token;

/* The pid that drew process_token: a second way to see a fork, for when the
 * fork handler could not be registered (pthread_atfork allocates). */
static _Atomic pid_t token_pid;
static bool fork_handler_missing;

_Thread_local uint32_t thread_tid_before_fork;

static void forget_in_child(void)
{
	thread_cached_tid = 0;
	atomic_store_explicit(&process_token, 0, memory_order_relaxed);
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

/* Registered when the library is loaded, never lazily: a first call from a
 * thread that is blocked while another forks (or from a fork handler) would
 * otherwise register it inside fork(2), where glibc holds the lock of the
 * handler list. */
__attribute__((constructor)) static void register_fork_handler(void)
{
	fork_handler_missing = pthread_atfork(note_tid_before_fork,
					      forget_tid_before_fork,
					      forget_in_child) != 0;
}

static void forget_if_forked(void)
{
	if (!fork_handler_missing)
		return;
	/* relaxed: each process reads its own copy */
	pid_t drew = atomic_load_explicit(&token_pid, memory_order_relaxed);
	if (drew && drew != getpid())
		forget_in_child();
}

uint32_t thread_tid_slow(void)
{
	thread_cached_tid = (uint32_t)syscall(SYS_gettid);
	return thread_cached_tid;
}

static uint32_t draw_token(void)
{
	uint32_t mask = (1u << THREAD_PROCESS_TOKEN_BITS) - 1, t = 0;
	int saved = errno;
	if (getrandom(&t, sizeof t, GRND_NONBLOCK) != (ssize_t)sizeof t) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		t = (uint32_t)now.tv_nsec * 2654435761u ^ (uint32_t)getpid();
	}
	errno = saved;
	t &= mask;
	uint32_t none = 0;
	atomic_store_explicit(&token_pid, getpid(), memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&process_token, &none, t ? t : 1,
						     memory_order_relaxed,
						     memory_order_relaxed))
		return none;
	return t ? t : 1;
}

uint32_t thread_process_token(void)
{
	forget_if_forked();
	uint32_t t = atomic_load_explicit(&process_token, memory_order_relaxed);
	return t ? t : draw_token();
}
