/* Cached gettid(2) and a per-process token; the fork child forgets both. */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Thread_local uint32_t thread_cached_tid;

/* 0 until drawn; relaxed: any thread may draw it, all draws are equally good
 * and the first one stored wins (see draw_token). */
static _Atomic uint32_t process_token;

static void forget_in_child(void)
{
	thread_cached_tid = 0;
	atomic_store_explicit(&process_token, 0, memory_order_relaxed);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_in_child);
}

uint32_t thread_tid_slow(void)
{
	pthread_once(&atfork_once, register_atfork);
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
	if (!atomic_compare_exchange_strong_explicit(&process_token, &none, t ? t : 1,
						     memory_order_relaxed,
						     memory_order_relaxed))
		return none;
	return t ? t : 1;
}

uint32_t thread_process_token(void)
{
	uint32_t t = atomic_load_explicit(&process_token, memory_order_relaxed);
	if (t)
		return t;
	pthread_once(&atfork_once, register_atfork);
	return draw_token();
}
