/* Cached gettid(2): the fork child's only thread forgets the parent's id. */
#include "thread.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

_Thread_local uint32_t thread_cached_tid;

static void forget_tid_in_child(void)
{
	thread_cached_tid = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_tid_in_child);
}

uint32_t thread_tid_slow(void)
{
	pthread_once(&atfork_once, register_atfork);
	thread_cached_tid = (uint32_t)syscall(SYS_gettid);
	return thread_cached_tid;
}
