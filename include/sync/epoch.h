/* libsync epoch-based reclamation: one process-wide domain, read-side
 * sections without atomic read-modify-writes or fences (membarrier(2) on the
 * grace-period side). See sync_epoch_enter(3). */
#ifndef SYNC_EPOCH_H
#define SYNC_EPOCH_H

#include <stddef.h>

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Begins a read-side section of the calling thread (nests, 65535 deep at
 * most: deeper aborts). Objects reached inside it stay allocated until the
 * outermost sync_epoch_exit. The first call in a thread registers it with
 * the domain. */
SYNC_API void sync_epoch_enter(void);
SYNC_API void sync_epoch_exit(void);

/* Calls fn(p) once no read-side section that could have seen p is still
 * running, within about 100 ms of that even if the calling thread never
 * calls libsync again: a reclaimer thread, started by the process's first
 * retire and asleep while nothing is pending, runs it, unless the
 * retiring thread's own later calls (every 64th sync_epoch_retire,
 * sync_epoch_synchronize) or any thread's sync_epoch_poll or
 * sync_epoch_barrier did first. Never fails. */
SYNC_API void sync_epoch_retire(void *p, void (*fn)(void *));

/* Waits until every read-side section running at the call has ended. Must
 * not be called inside a section (that would wait for itself: it aborts). */
SYNC_API void sync_epoch_synchronize(void);

/* Runs every callback retired so far, by any thread, before it returns.
 * Not inside a section either. */
SYNC_API void sync_epoch_barrier(void);

/* Runs, without waiting, the callbacks whose grace period is over: the
 * calling thread's, exited threads', and other threads' while theirs are
 * pending (unless a sync_epoch_barrier is running them); starts a grace
 * period if one is needed. Returns how many ran. May be called inside a
 * section. */
SYNC_API size_t sync_epoch_poll(void);

/* Inline fast paths of enter and exit: a section costs a few plain loads
 * and stores, and two calls through the PLT would double that (bench/epoch.c,
 * against ck_epoch_begin/end, which are inline too). They make the reader
 * record below and the global epoch ABI. Define SYNC_NO_INLINE to call the
 * library instead (ThreadSanitizer builds do, since it does not model the
 * compiler-barrier-plus-membarrier protocol). sync_impl_ names are internal. */
struct sync_impl_epoch_reader {
	/* 0 outside a section; else the epoch seen at the outermost enter
	 * (a multiple of 2^16) plus the section depth (low 16 bits) */
	SYNC_ATOMIC_FIELD(uint64_t) ctr;
	uint32_t mode; /* 0: not registered; 1: registered; 2: registered, readers fence */
	uint32_t reserved;
};

#define SYNC_IMPL_EPOCH_DEPTH 0xffffull /* low bits of ctr */
#define SYNC_IMPL_EPOCH_MEMBARRIER 1u   /* mode: the grace period orders for us */

#if defined(__GNUC__)
SYNC_API extern SYNC_IMPL_THREAD_LOCAL struct sync_impl_epoch_reader
	sync_impl_epoch_reader __attribute__((tls_model("initial-exec")));
#else
SYNC_API extern SYNC_IMPL_THREAD_LOCAL struct sync_impl_epoch_reader sync_impl_epoch_reader;
#endif
/* Current epoch, a multiple of 2^16. */
SYNC_API extern SYNC_ATOMIC_FIELD(uint64_t) sync_impl_epoch_global;

#if SYNC_IMPL_INLINE
#ifdef __cplusplus
#define SYNC_IMPL_EPOCH_LOAD(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define SYNC_IMPL_EPOCH_LOAD_ACQUIRE(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define SYNC_IMPL_EPOCH_STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define SYNC_IMPL_EPOCH_STORE_RELEASE(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define SYNC_IMPL_EPOCH_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#else
#include <stdatomic.h>
#define SYNC_IMPL_EPOCH_LOAD(p) atomic_load_explicit(p, memory_order_relaxed)
#define SYNC_IMPL_EPOCH_LOAD_ACQUIRE(p) atomic_load_explicit(p, memory_order_acquire)
#define SYNC_IMPL_EPOCH_STORE(p, v) atomic_store_explicit(p, v, memory_order_relaxed)
#define SYNC_IMPL_EPOCH_STORE_RELEASE(p, v) atomic_store_explicit(p, v, memory_order_release)
#define SYNC_IMPL_EPOCH_BARRIER() atomic_signal_fence(memory_order_seq_cst)
#endif

/* A nested enter bumps the depth. The outermost one publishes the epoch it
 * read (acquire: pairs with the grace period's bump, so that a section that
 * sees a new epoch sees what was unlinked before it); the grace period's
 * membarrier(2) orders that store before the section's loads. Unregistered
 * threads, and readers that must fence, take the library's path. The
 * thread-local is named at each use, not through a pointer: gcc 12's
 * -fsanitize=undefined took such a pointer for NULL inside a loop. */
static inline void sync_impl_epoch_enter(void)
{
	uint64_t v = SYNC_IMPL_EPOCH_LOAD(&sync_impl_epoch_reader.ctr);
	if (__builtin_expect(v != 0 && (v & SYNC_IMPL_EPOCH_DEPTH) != SYNC_IMPL_EPOCH_DEPTH, 0)) {
		SYNC_IMPL_EPOCH_STORE(&sync_impl_epoch_reader.ctr, v + 1);
	} else if (__builtin_expect(v == 0 && sync_impl_epoch_reader.mode ==
						 SYNC_IMPL_EPOCH_MEMBARRIER, 1)) {
		uint64_t e = SYNC_IMPL_EPOCH_LOAD_ACQUIRE(&sync_impl_epoch_global);
		SYNC_IMPL_EPOCH_STORE(&sync_impl_epoch_reader.ctr, e | 1);
		SYNC_IMPL_EPOCH_BARRIER();
	} else {
		sync_epoch_enter();
	}
}

/* The outermost exit is a release, read by the grace period's acquire. */
static inline void sync_impl_epoch_exit(void)
{
	uint64_t v = SYNC_IMPL_EPOCH_LOAD(&sync_impl_epoch_reader.ctr);
	uint64_t depth = v & SYNC_IMPL_EPOCH_DEPTH;
	if (__builtin_expect(depth == 1, 1)) {
		SYNC_IMPL_EPOCH_BARRIER();
		SYNC_IMPL_EPOCH_STORE_RELEASE(&sync_impl_epoch_reader.ctr, 0);
	} else if (depth) {
		SYNC_IMPL_EPOCH_STORE(&sync_impl_epoch_reader.ctr, v - 1);
	} else {
		sync_epoch_exit(); /* reports the unmatched exit */
	}
}

#define sync_epoch_enter() sync_impl_epoch_enter()
#define sync_epoch_exit() sync_impl_epoch_exit()
#endif

#ifdef __cplusplus
}
#endif

#endif /* SYNC_EPOCH_H */
