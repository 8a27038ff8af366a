/* The library's one interface to data-race detectors: ThreadSanitizer in a
 * user's program (gcc's libtsan.so or clang's runtime, linked into the
 * executable; the library itself is not instrumented) and Valgrind's
 * Helgrind and DRD. Found at load time (src/annotate.c: weak references to
 * TSan's __tsan_* interface, as LLVM's OpenMP runtime does, and Valgrind's
 * RUNNING_ON_VALGRIND), folded into one flag; without a tool every hook is
 * one predictable branch on it.
 *
 * Hooks, each named for the event it reports. `l` is a pointer to the lock
 * object (its size, sizeof *l, is taken, so pass the typed pointer); `p` any
 * address both sides agree on. Only the address is passed: a hook never
 * touches the object, so a release hook may come right before a hand-off.
 *   ann_lock_create(l)        after an init made l (statically initialised
 *                             locks need none: the tools create on first use)
 *   ann_lock_destroy(l)       after a destroy that succeeded
 *   ann_lock_pre(l, flags)    before the first access of an attempt to take l
 *   ann_lock_post(l, flags, r) after the attempt, with its result r: 0 (or
 *                             EOWNERDEAD) means taken, anything else not
 *                             (timeout, EBUSY, EDEADLK, ...); same flags as pre
 *   ann_unlock_pre(l, flags)  before the access that releases l (the release
 *                             CAS, store or fetch-and-sub). Only for an
 *                             unlock that will release (after ERRORCHECK's
 *                             owner check): an unlock of a lock not held is
 *                             reported by the tools as the misuse it is
 *   ann_unlock_post(l, flags) after it
 *   ann_release(p)            before the operation that hands data to another
 *                             thread: sem post, queue push, map publish, epoch
 *                             retire. Happens-before every later ann_acquire(p)
 *   ann_acquire(p)            after the operation that took it succeeded: sem
 *                             wait, queue pop, map get, epoch callback
 *   ann_release_slot(p, c)    ann_release(p) for slot p of container c (a
 *                             queue), whose every release is taken by one
 *                             ann_acquire_slot(p, c) or dropped by one
 *                             ann_drop_slot(p, c), before p is released on
 *                             again. p holds the library's own words
 *   ann_acquire_slot(p, c)    ann_acquire(p), then the tools forget p
 *   ann_drop_slot(p, c)       no acquire will take the release on p: forget it
 *                             Why not ann_release and ann_acquire: Helgrind
 *                             keeps a synchronization object per address
 *                             released on until told to forget it. DRD keeps
 *                             the releasing thread's segment for each, and a
 *                             segment so held is one it cannot merge with its
 *                             neighbours: a producer that runs N items ahead of
 *                             its consumers leaves N segments apart, which DRD
 *                             walks, all of them, at every new segment and
 *                             every free() (tests/tools/queue_pool took 25 s
 *                             for 2,000 tasks, 154 s for 4,000). So under DRD
 *                             the hand-off goes through c, which holds one
 *                             segment per releasing thread: the price is that a
 *                             pop is ordered after every push into c before it,
 *                             not only its item's (a write into an item after
 *                             its push goes unreported there when a later push
 *                             comes before the pop; TSan and Helgrind see it)
 *   ann_internal(p, size)     [p, p+size) holds the library's own words
 *                             (lock words, counters, nodes), read and written
 *                             by atomics that Helgrind and DRD would report
 *                             as races: they stop checking them. Call it on
 *                             each operation before the first access (cheap
 *                             when no tool runs; idempotent). The lock hooks
 *                             above do it for sizeof *l themselves. TSan sees
 *                             no access of the uninstrumented library.
 * Flags, for the lock hooks:
 *   ANN_WRITE  exclusive mode (0; spelled out for readability)
 *   ANN_READ   read (shared) mode of an rwlock, on lock and unlock alike
 *   ANN_TRY    a try-lock or a timed lock: no lock-order check before it (as
 *              TSan's own pthread_mutex_timedlock), and it may fail
 * Order relative to the real atomics: release hooks (ann_unlock_pre,
 * ann_release) BEFORE the operation that hands the object over; acquire
 * hooks (ann_lock_post, ann_acquire) AFTER the operation that took it.
 * A cond wait is ann_unlock_* of its mutex before the sleep and ann_lock_*
 * after it, as TSan's pthread_cond_wait interceptor does.
 *
 * Debugging aids (src/debug.h, <sync/debug.h>) hang on the same hooks: the
 * lock-order checker (SYNC_CHECK) and the contention profiler (SYNC_PROFILE)
 * set their own bits of the one flag, so that they too cost one branch
 * when off. For them, a few more hooks and flags:
 *   ann_contended(l)          on entering a lock's slow path (its first
 *                             attempt failed), before waiting
 *   ann_destroy_pre(l)        on entering a destroy, before its busy check
 *   ann_wait_pre(p)           before a semaphore or condition variable wait
 *                             that will block (the slow path)
 *   ann_wait_post(p, kind)    after it; kind ANN_SEM or ANN_COND
 *   ANN_RWLOCK, ANN_SPIN      the lock is an rwlock or a spinlock (else a
 *                             mutex); reports name the kind
 *   ANN_RDPREF                an rwlock that prefers readers (a read lock
 *                             taken again while read-held cannot block)
 *   ANN_NOHANG                a relock returns an error instead of blocking
 *                             (an ERRORCHECK mutex): not reported as one
 *   ANN_ROBUST                a robust mutex (its owner's death is its
 *                             documented recovery, not reported at exit)
 *
 * When the library itself is compiled with ThreadSanitizer (the stress
 * tests), the tools are never told anything: TSan then sees the atomics
 * themselves, and annotations would hide the library's own races (TSan
 * ignores accesses between __tsan_mutex_pre_lock and post_lock) or mask a
 * missing release with an annotated one. The cost: those builds do not
 * report lock-order inversions of libsync locks to TSan. The debugging
 * aids work there as everywhere (they are how the stress tests are run
 * with SYNC_CHECK in make check). */
#ifndef SYNC_ANNOTATE_H
#define SYNC_ANNOTATE_H

#include <stddef.h>

#define ANN_WRITE 0u
#define ANN_READ  1u
#define ANN_TRY   2u

#define ANN_RWLOCK  4u
#define ANN_SPIN    8u
#define ANN_RDPREF  16u
#define ANN_NOHANG  32u
#define ANN_ROBUST  64u

/* Kinds of ann_wait_post. */
#define ANN_SEM  1u
#define ANN_COND 2u

#if defined(__SANITIZE_THREAD__)
#define ANN_OFF 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ANN_OFF 1
#endif
#endif

/* Bits of ann_tools. */
#define ANN_TSAN     1 /* the TSan runtime is in the process */
#define ANN_VALGRIND 2 /* running on Valgrind (Helgrind, DRD or another tool) */
#define ANN_CHECK    4 /* SYNC_CHECK: lock-order and misuse checking */
#define ANN_PROFILE  8 /* SYNC_PROFILE: contention profile */

/* The tool bits are set once by the library's constructor, before any
 * thread can call in; the CHECK bit also by sync_check_set at any time.
 * Read relaxed: a mode switch, which orders nothing (the debug state each
 * bit enables makes itself on first use). 0 without tools or aids. */
extern int ann_tools __attribute__((visibility("hidden")));

#define ANN_COLD __attribute__((cold, noinline, visibility("hidden")))
/* The hooks use the address only (gcc would otherwise warn about passing
 * memory not yet written, e.g. a fresh node, to a const pointer). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#define ANN_ADDR_ONLY __attribute__((access(none, 1)))
#else
#define ANN_ADDR_ONLY
#endif
ANN_COLD ANN_ADDR_ONLY void ann_lock_create_slow(const void *l, size_t size);
ANN_COLD ANN_ADDR_ONLY void ann_lock_destroy_slow(const void *l);
ANN_COLD ANN_ADDR_ONLY void ann_lock_pre_slow(const void *l, size_t size, unsigned flags);
ANN_COLD ANN_ADDR_ONLY void ann_lock_post_slow(const void *l, unsigned flags, int r);
ANN_COLD ANN_ADDR_ONLY void ann_unlock_pre_slow(const void *l, size_t size, unsigned flags);
ANN_COLD ANN_ADDR_ONLY void ann_unlock_post_slow(const void *l, unsigned flags);
ANN_COLD ANN_ADDR_ONLY void ann_release_slow(const void *p);
ANN_COLD ANN_ADDR_ONLY void ann_acquire_slow(const void *p);
ANN_COLD ANN_ADDR_ONLY void ann_release_slot_slow(const void *p, const void *c);
ANN_COLD ANN_ADDR_ONLY void ann_acquire_slot_slow(const void *p, const void *c);
ANN_COLD ANN_ADDR_ONLY void ann_drop_slot_slow(const void *p, const void *c);
ANN_COLD ANN_ADDR_ONLY void ann_internal_slow(const void *p, size_t size);
ANN_COLD ANN_ADDR_ONLY void ann_contended_slow(const void *l, unsigned flags);
ANN_COLD ANN_ADDR_ONLY void ann_destroy_pre_slow(const void *l, unsigned flags);
ANN_COLD ANN_ADDR_ONLY void ann_wait_pre_slow(const void *p);
ANN_COLD ANN_ADDR_ONLY void ann_wait_post_slow(const void *p, unsigned kind);

static inline int ann_on(void)
{
	return __builtin_expect(__atomic_load_n(&ann_tools, __ATOMIC_RELAXED), 0);
}

/* A data-race detector (not a debugging aid) watches. */
static inline int ann_detector_on(void)
{
	return __builtin_expect(__atomic_load_n(&ann_tools, __ATOMIC_RELAXED) &
					(ANN_TSAN | ANN_VALGRIND), 0);
}

#define ann_lock_create(l) \
	(ann_on() ? ann_lock_create_slow((l), sizeof *(l)) : (void)0)
#define ann_lock_destroy(l) \
	(ann_on() ? ann_lock_destroy_slow(l) : (void)0)
#define ann_lock_pre(l, f) \
	(ann_on() ? ann_lock_pre_slow((l), sizeof *(l), (f)) : (void)0)
#define ann_lock_post(l, f, r) \
	(ann_on() ? ann_lock_post_slow((l), (f), (r)) : (void)0)
#define ann_unlock_pre(l, f) \
	(ann_on() ? ann_unlock_pre_slow((l), sizeof *(l), (f)) : (void)0)
#define ann_unlock_post(l, f) \
	(ann_on() ? ann_unlock_post_slow((l), (f)) : (void)0)
#define ann_release(p) \
	(ann_on() ? ann_release_slow(p) : (void)0)
#define ann_acquire(p) \
	(ann_on() ? ann_acquire_slow(p) : (void)0)
#define ann_release_slot(p, c) \
	(ann_on() ? ann_release_slot_slow((p), (c)) : (void)0)
#define ann_acquire_slot(p, c) \
	(ann_on() ? ann_acquire_slot_slow((p), (c)) : (void)0)
#define ann_drop_slot(p, c) \
	(ann_on() ? ann_drop_slot_slow((p), (c)) : (void)0)
#define ann_internal(p, n) \
	(ann_on() ? ann_internal_slow((p), (n)) : (void)0)
#define ann_contended(l, f) \
	(ann_on() ? ann_contended_slow((l), (f)) : (void)0)
#define ann_destroy_pre(l, f) \
	(ann_on() ? ann_destroy_pre_slow((l), (f)) : (void)0)
#define ann_wait_pre(p) \
	(ann_on() ? ann_wait_pre_slow(p) : (void)0)
#define ann_wait_post(p, kind) \
	(ann_on() ? ann_wait_post_slow((p), (kind)) : (void)0)

#endif /* SYNC_ANNOTATE_H */
