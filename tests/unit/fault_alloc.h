/* Failing and counting allocations for the unit tests of map and queue. */
#ifndef SYNC_TESTS_FAULT_ALLOC_H
#define SYNC_TESTS_FAULT_ALLOC_H

#include <stddef.h>
#include <stdlib.h> /* defines __GLIBC__ there, which FAULTS tests */

/* tests/unit/fault_alloc.c replaces malloc and its kin with wrappers around
 * glibc's own allocator (__libc_malloc, ...), and mmap and munmap with system
 * calls, that count live bytes (all threads) and can be told to fail chosen
 * allocations of the calling thread; the library's calls land here too
 * (glibc's own calls to mmap, as malloc's, do not). Only the programs that
 * link it get the wrappers (map, queue), not every unit test. Not under a
 * sanitizer, whose allocator must see every allocation (plain_malloc() in
 * util.h), nor outside glibc: FAULTS is then 0, and the tests of running out
 * of memory and of memory use return early. */
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define FAULTS 0
#endif
#endif
#ifndef FAULTS
#define FAULTS 1
#endif

/* Bytes allocated or mapped and not given back, by every thread (0 without
 * FAULTS: the tests that measure it return early). */
long heap_in_use(void);

/* Arms the calling thread's faults: the nth allocation from now fails (0:
 * none), every every-th does (0: none), every one of at_least bytes or more
 * does (0: none; 1: every one). Nothing may assert while armed: Check
 * allocates. */
void fail_allocations(long nth, long every, size_t at_least);

/* Counts allocations without failing any. */
void count_allocations(void);

/* How many allocations failed since arming, still armed. */
long allocations_failed_so_far(void);

/* Disarms; how many allocations failed since arming. */
long allocations_failed(void);

/* Disarms; how many allocations were asked for since arming. */
long allocations_made(void);

#endif /* SYNC_TESTS_FAULT_ALLOC_H */
