/* Calling thread's kernel id (gettid), cached per thread, reset after fork;
 * and a token naming the calling process, new in every fork child. */
#ifndef SYNC_SRC_THREAD_H
#define SYNC_SRC_THREAD_H

#include <stdint.h>

extern _Thread_local uint32_t thread_cached_tid;

uint32_t thread_tid_slow(void);

/* Never 0: usable as an "owner" value where 0 means "none". */
static inline uint32_t thread_tid(void)
{
	uint32_t tid = thread_cached_tid;
	return tid ? tid : thread_tid_slow();
}

/* A random non-zero value of THREAD_PROCESS_TOKEN_BITS bits, the same in
 * every thread of this process and drawn again in a fork child: a waiter
 * record tagged with it is known to belong to a live thread when the
 * token is the caller's own (a thread cannot vanish while it waits; a
 * process can, and a fork child has none of its parent's other threads). */
#define THREAD_PROCESS_TOKEN_BITS 29
uint32_t thread_process_token(void);

#endif /* SYNC_SRC_THREAD_H */
