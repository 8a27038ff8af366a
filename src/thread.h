/* Calling thread's kernel id (gettid), cached per thread, reset after fork;
 * and a token naming the calling process, new in every fork child. */
#ifndef SYNC_SRC_THREAD_H
#define SYNC_SRC_THREAD_H

#include <stdbool.h>
#include <stdint.h>

/* Thread-local storage in the initial-exec model: one instruction instead of
 * a __tls_get_addr call (epoch.c does the same); the few bytes come from
 * glibc's static TLS surplus when the library is dlopen()ed. */
#define THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))

extern THREAD_LOCAL uint32_t thread_cached_tid;

uint32_t thread_tid_slow(void);

/* Never 0: usable as an "owner" value where 0 means "none". */
static inline uint32_t thread_tid(void)
{
	uint32_t tid = thread_cached_tid;
	return tid ? tid : thread_tid_slow();
}

/* In a fork child, the id its thread had in the parent; else 0. POSIX
 * makes the child's thread a replica of the forking thread, holding what it
 * held, under a new kernel id: an owner recorded as this id is the caller
 * (the pthread_atfork pattern: lock in prepare, unlock in parent and
 * child). Only for objects private to the process: in a shared one, that
 * id is the parent's thread, alive. */
extern THREAD_LOCAL uint32_t thread_tid_before_fork;

static inline bool thread_held_before_fork(uint32_t owner)
{
	return owner && owner == thread_tid_before_fork;
}

/* A random non-zero value of THREAD_PROCESS_TOKEN_BITS bits, the same in
 * every thread of this process and drawn again in a fork child: a waiter
 * record tagged with it is known to belong to a live thread when the
 * token is the caller's own (a thread cannot vanish while it waits; a
 * process can, and a fork child has none of its parent's other threads). */
#define THREAD_PROCESS_TOKEN_BITS 29

/* Written when the library loads and in a fork child, which has one thread. */
extern uint32_t thread_token;
extern bool thread_fork_unwatched; /* no fork handler: see the _slow call */
uint32_t thread_process_token_slow(void);

static inline uint32_t thread_process_token(void)
{
	if (__builtin_expect(thread_fork_unwatched, 0))
		return thread_process_token_slow();
	return thread_token;
}

/* True in a fork child (and its descendants): threads that were counted in
 * a private object's waiters before the fork do not exist here. */
extern bool thread_forked;

static inline bool thread_is_fork_child(void)
{
	thread_process_token(); /* without a fork handler: notices a fork */
	return thread_forked;
}

/* An id of the caller's PID namespace (the inode of /proc/self/ns/pid), or
 * 0 if /proc cannot tell: thread ids mean something only within one. */
uint32_t thread_pid_namespace(void);

#endif /* SYNC_SRC_THREAD_H */
