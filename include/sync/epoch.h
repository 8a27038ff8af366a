/* libsync epoch-based reclamation: one process-wide domain, read-side
 * sections without atomic read-modify-writes or fences (membarrier(2) on the
 * grace-period side). See sync_epoch_enter(3). */
#ifndef SYNC_EPOCH_H
#define SYNC_EPOCH_H

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Begins a read-side section of the calling thread (nests). Objects reached
 * inside it stay allocated until the outermost sync_epoch_exit. The first
 * call in a thread registers it with the domain. */
SYNC_API void sync_epoch_enter(void);
SYNC_API void sync_epoch_exit(void);

/* Calls fn(p) once no read-side section that could have seen p is still
 * running: from a later sync_epoch_retire, synchronize or barrier of any
 * thread, or at the latest from sync_epoch_barrier. Never fails. */
SYNC_API void sync_epoch_retire(void *p, void (*fn)(void *));

/* Waits until every read-side section running at the call has ended. Must
 * not be called inside a section (that would wait for itself: it aborts). */
SYNC_API void sync_epoch_synchronize(void);

/* Runs every callback retired so far, by any thread, before it returns.
 * Not inside a section either. */
SYNC_API void sync_epoch_barrier(void);

/* Inline fast paths of enter and exit: a section costs a few plain loads
 * and stores, and two calls through the PLT would double that (bench/epoch.c,
 * against ck_epoch_begin/end, which are inline too). They make the reader
 * record below, the global epoch and the fence mode ABI. Define
 * SYNC_NO_INLINE to call the library instead (ThreadSanitizer builds do,
 * since it does not model the fences). The sync_impl_ names are internal. */
struct sync_impl_epoch_reader {
	SYNC_ATOMIC_FIELD(uint64_t) active; /* epoch seen at the outermost enter; 0 outside */
	uint32_t nest;                      /* section depth */
	uint32_t registered;                /* the thread is in the domain's registry */
};

#ifdef __cplusplus
#define SYNC_IMPL_THREAD_LOCAL thread_local
#else
#define SYNC_IMPL_THREAD_LOCAL _Thread_local
#endif

#if defined(__GNUC__)
SYNC_API extern SYNC_IMPL_THREAD_LOCAL struct sync_impl_epoch_reader
	sync_impl_epoch_reader __attribute__((tls_model("initial-exec")));
#else
SYNC_API extern SYNC_IMPL_THREAD_LOCAL struct sync_impl_epoch_reader sync_impl_epoch_reader;
#endif
SYNC_API extern SYNC_ATOMIC_FIELD(uint64_t) sync_impl_epoch_global; /* current epoch */
SYNC_API extern SYNC_ATOMIC_FIELD(int) sync_impl_epoch_fence;       /* 1: readers fence */
SYNC_API void sync_impl_epoch_register(void);

#if defined(__GNUC__) && !defined(SYNC_NO_INLINE) && !defined(__SANITIZE_THREAD__)
#ifdef __cplusplus
#define SYNC_IMPL_EPOCH_LOAD(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define SYNC_IMPL_EPOCH_LOAD_ACQUIRE(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define SYNC_IMPL_EPOCH_STORE(p, v, order) __atomic_store_n(p, v, __ATOMIC_##order)
#define SYNC_IMPL_EPOCH_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define SYNC_IMPL_EPOCH_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#else
#include <stdatomic.h>
#define SYNC_IMPL_EPOCH_LOAD(p) atomic_load_explicit(p, memory_order_relaxed)
#define SYNC_IMPL_EPOCH_LOAD_ACQUIRE(p) atomic_load_explicit(p, memory_order_acquire)
#define SYNC_IMPL_EPOCH_STORE(p, v, order) \
	atomic_store_explicit(p, v, SYNC_IMPL_EPOCH_ORDER_##order)
#define SYNC_IMPL_EPOCH_ORDER_RELAXED memory_order_relaxed
#define SYNC_IMPL_EPOCH_ORDER_RELEASE memory_order_release
#define SYNC_IMPL_EPOCH_FENCE() atomic_thread_fence(memory_order_seq_cst)
#define SYNC_IMPL_EPOCH_BARRIER() atomic_signal_fence(memory_order_seq_cst)
#endif

/* The outermost enter publishes the epoch it read; the grace period's
 * membarrier(2) orders that store before the section's loads, or, in the
 * fallback mode, the fence here does (it pairs with the grace period's). */
static inline void sync_impl_epoch_enter(void)
{
	struct sync_impl_epoch_reader *r = &sync_impl_epoch_reader;
	if (r->nest++)
		return;
	if (__builtin_expect(!r->registered, 0))
		sync_impl_epoch_register();
	/* acquire: pairs with the grace period's bump, so that a section that
	 * sees the new epoch sees what was unlinked before it */
	uint64_t e = SYNC_IMPL_EPOCH_LOAD_ACQUIRE(&sync_impl_epoch_global);
	SYNC_IMPL_EPOCH_STORE(&r->active, e, RELAXED);
	if (SYNC_IMPL_EPOCH_LOAD(&sync_impl_epoch_fence))
		SYNC_IMPL_EPOCH_FENCE();
	else
		SYNC_IMPL_EPOCH_BARRIER();
}

/* The outermost exit: a release, read by the grace period's acquire scan. */
static inline void sync_impl_epoch_exit(void)
{
	struct sync_impl_epoch_reader *r = &sync_impl_epoch_reader;
	if (__builtin_expect(r->nest == 0, 0))
		sync_epoch_exit(); /* reports the unmatched exit */
	else if (--r->nest == 0)
		SYNC_IMPL_EPOCH_STORE(&r->active, 0, RELEASE);
}

#define sync_epoch_enter() sync_impl_epoch_enter()
#define sync_epoch_exit() sync_impl_epoch_exit()
#endif

#ifdef __cplusplus
}
#endif

#endif /* SYNC_EPOCH_H */
