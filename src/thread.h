/* Calling thread's kernel id (gettid), cached per thread, reset after fork. */
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

#endif /* SYNC_SRC_THREAD_H */
