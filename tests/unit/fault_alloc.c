/* Failing and counting allocations for the unit tests of map and queue: see
 * fault_alloc.h. Linked into those two programs only, since replacing malloc
 * in every test would change them. */
#define _GNU_SOURCE /* memalign, malloc_usable_size, mmap64 */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault_alloc.h"

/* Consecutive failures after which one allocation goes through anyway: a
 * caller that retries until memory returns (sync_epoch_retire inside a
 * section, every millisecond) is slowed down, not hung. Tests that count on
 * every allocation failing make fewer calls than this. */
#define MAX_CONSECUTIVE_FAILURES 100

struct faults {
	bool armed;
	long nth;        /* fail the nth allocation since arming (1: the first) */
	long every;      /* fail every every-th allocation since arming */
	size_t at_least; /* fail every allocation of at least this many bytes */
	long calls;      /* allocations asked for since arming */
	long failed;     /* how many of them failed */
	long consecutive;
};

/* Per thread: other threads allocate as usual. */
static _Thread_local struct faults faults;

#if FAULTS
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

/* Bytes the wrappers handed out and free or munmap has not had back, all
 * threads: exact, unlike mallinfo2, which counts glibc's per-thread caches
 * as used and misses the library's own mappings. */
static atomic_long live_bytes;

static void *counted(void *p)
{
	if (p)
		atomic_fetch_add_explicit(&live_bytes, (long)malloc_usable_size(p),
					  memory_order_relaxed);
	return p;
}

static bool allocation_fails(size_t size)
{
	if (!faults.armed)
		return false;
	long n = ++faults.calls;
	bool fail = (faults.nth && n == faults.nth) || (faults.every && n % faults.every == 0) ||
		    (faults.at_least && size >= faults.at_least);
	if (!fail || faults.consecutive >= MAX_CONSECUTIVE_FAILURES) {
		faults.consecutive = 0;
		return false;
	}
	faults.consecutive++;
	faults.failed++;
	errno = ENOMEM;
	return true;
}

void *malloc(size_t size)
{
	return allocation_fails(size) ? NULL : counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		total = SIZE_MAX;
	return allocation_fails(total) ? NULL : counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
	if (allocation_fails(size))
		return NULL;
	long before = p ? (long)malloc_usable_size(p) : 0;
	void *q = __libc_realloc(p, size);
	if (q || size == 0) /* p was moved or freed */
		atomic_fetch_sub_explicit(&live_bytes, before, memory_order_relaxed);
	return counted(q);
}

void *aligned_alloc(size_t align, size_t size)
{
	return allocation_fails(size) ? NULL : counted(__libc_memalign(align, size));
}

void *memalign(size_t align, size_t size)
{
	return allocation_fails(size) ? NULL : counted(__libc_memalign(align, size));
}

int posix_memalign(void **p, size_t align, size_t size)
{
	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	if (allocation_fails(size))
		return ENOMEM;
	void *q = counted(__libc_memalign(align, size));
	if (!q)
		return ENOMEM;
	*p = q;
	return 0;
}

void free(void *p)
{
	if (p)
		atomic_fetch_sub_explicit(&live_bytes, (long)malloc_usable_size(p),
					  memory_order_relaxed);
	__libc_free(p);
}

static long page_rounded(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (long)((len + page - 1) / page * page);
}

/* Only the map's tables are mapped by the library (src/map.c); the queue
 * test never reaches these. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if ((flags & MAP_ANONYMOUS) && allocation_fails(len))
		return MAP_FAILED;
	long r = syscall(SYS_mmap, addr, len, (long)prot, (long)flags, (long)fd, (long)off);
	if (r == -1)
		return MAP_FAILED;
	atomic_fetch_add_explicit(&live_bytes, page_rounded(len), memory_order_relaxed);
	return (void *)r;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return mmap(addr, len, prot, flags, fd, (off_t)off);
}

int munmap(void *addr, size_t len)
{
	if (syscall(SYS_munmap, addr, len) != 0)
		return -1;
	atomic_fetch_sub_explicit(&live_bytes, page_rounded(len), memory_order_relaxed);
	return 0;
}

long heap_in_use(void)
{
	return atomic_load(&live_bytes);
}
#else
long heap_in_use(void)
{
	return 0; /* the tests that measure it return early */
}
#endif /* FAULTS */

void fail_allocations(long nth, long every, size_t at_least)
{
	faults = (struct faults){ true, nth, every, at_least, 0, 0, 0 };
}

void count_allocations(void)
{
	fail_allocations(0, 0, 0);
}

long allocations_failed_so_far(void)
{
	return faults.failed;
}

long allocations_failed(void)
{
	faults.armed = false;
	return faults.failed;
}

long allocations_made(void)
{
	faults.armed = false;
	return faults.calls;
}
