/* Data-race detector hooks (see annotate.h): ThreadSanitizer's __tsan_*
 * interface through weak references, bound by the dynamic linker when the
 * process has the TSan runtime (the approach of LLVM's OpenMP runtime), and
 * Valgrind client requests (Helgrind's, which DRD understands too) when the
 * process runs on Valgrind. Both are decided once, in the constructor, which
 * also reads SYNC_CHECK and SYNC_PROFILE for the debugging aids (debug.h).
 * A library compiled with TSan (ANN_OFF) tells the detectors nothing. */
#include <errno.h>

#include <sync/rwlock.h>

#include "annotate.h"
#include "debug.h"

#ifdef ANN_OFF
#undef HAVE_VALGRIND_HELGRIND_H
#undef HAVE_VALGRIND_DRD_H
#endif

#if defined(HAVE_VALGRIND_HELGRIND_H)
#include <valgrind/helgrind.h>
#define ANN_VALGRIND_BUILT 1
#define vg_untrack(p, n) VALGRIND_HG_DISABLE_CHECKING(p, n)
#elif defined(HAVE_VALGRIND_DRD_H)
#include <valgrind/drd.h>
#define ANN_VALGRIND_BUILT 1
#define vg_untrack(p, n) ANNOTATE_BENIGN_RACE_SIZED(p, n, "libsync internal")
#else
#define ANN_VALGRIND_BUILT 0
#endif

#if ANN_VALGRIND_BUILT
/* DRD's request for its thread id (drd.h's enum, an ABI), which helgrind.h
 * does not name: 0, the default, from any other tool. */
#define ANN_DRD_GET_DRD_THREAD_ID (VG_USERREQ_TOOL_BASE('D', 'R') + 1)
/* Set by the constructor: the Valgrind tool is DRD (see ann_release_slot). */
static int on_drd;
#endif

/* ThreadSanitizer's annotation interface (<sanitizer/tsan_interface.h>),
 * declared here so that the library builds without it; weak, so that each
 * is NULL in a process without the runtime. */
#define TSAN_WEAK __attribute__((weak, visibility("default")))
TSAN_WEAK void __tsan_acquire(void *addr);
TSAN_WEAK void __tsan_release(void *addr);
TSAN_WEAK void __tsan_mutex_create(void *addr, unsigned flags);
TSAN_WEAK void __tsan_mutex_destroy(void *addr, unsigned flags);
TSAN_WEAK void __tsan_mutex_pre_lock(void *addr, unsigned flags);
TSAN_WEAK void __tsan_mutex_post_lock(void *addr, unsigned flags, int recursion);
TSAN_WEAK int __tsan_mutex_pre_unlock(void *addr, unsigned flags);
TSAN_WEAK void __tsan_mutex_post_unlock(void *addr, unsigned flags);

/* Their flag values (ABI of the TSan runtimes, gcc's and clang's alike). */
#define TSAN_MUTEX_READ_LOCK       (1u << 3)
#define TSAN_MUTEX_TRY_LOCK        (1u << 4)
#define TSAN_MUTEX_TRY_LOCK_FAILED (1u << 5)

int ann_tools;

static int tsan_present(void)
{
#ifdef ANN_OFF
	return 0;
#endif
	return __tsan_acquire && __tsan_release && __tsan_mutex_create &&
	       __tsan_mutex_destroy && __tsan_mutex_pre_lock &&
	       __tsan_mutex_post_lock && __tsan_mutex_pre_unlock &&
	       __tsan_mutex_post_unlock;
}

static int valgrind_present(void)
{
#if ANN_VALGRIND_BUILT
	return RUNNING_ON_VALGRIND != 0;
#else
	return 0;
#endif
}

/* Runs when the library loads, before any caller's code can reach a hook.
 * With a tool, <sync/rwlock.h>'s inline read lock and unlock call the
 * library (whose paths annotate) instead of touching the state word in the
 * caller's code: the flag that selects that path is set here. */
__attribute__((constructor)) static void ann_detect(void)
{
	int tools = (tsan_present() ? ANN_TSAN : 0) |
		    (valgrind_present() ? ANN_VALGRIND : 0) | dbg_from_environment();
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		on_drd = VALGRIND_DO_CLIENT_REQUEST_EXPR(0, ANN_DRD_GET_DRD_THREAD_ID,
							 0, 0, 0, 0, 0) != 0;
#endif
	/* relaxed: before any thread calls in */
	__atomic_store_n(&ann_tools, tools, __ATOMIC_RELAXED);
	if (tools)
		ann_divert_inline_paths();
}

void ann_divert_inline_paths(void)
{
	/* relaxed: a mode switch; a reader that still takes the inline path
	 * is one whose lock the hooks do not see, as before the switch */
	__atomic_store_n(&sync_impl_rwlock_pshared_seen, 1, __ATOMIC_RELAXED);
}

static int tools_of(void)
{
	return __atomic_load_n(&ann_tools, __ATOMIC_RELAXED);
}

static unsigned tsan_flags(unsigned flags)
{
	return ((flags & ANN_READ) ? TSAN_MUTEX_READ_LOCK : 0) |
	       ((flags & ANN_TRY) ? TSAN_MUTEX_TRY_LOCK : 0);
}

static int taken(int r)
{
	return r == 0 || r == EOWNERDEAD;
}

void ann_internal_slow(const void *p, size_t size)
{
#if ANN_VALGRIND_BUILT
	if (tools_of() & ANN_VALGRIND)
		vg_untrack(p, size);
#else
	(void)p, (void)size;
#endif
}

void ann_lock_create_slow(const void *l, size_t size)
{
	int tools = tools_of();
	if (tools & ANN_TSAN)
		__tsan_mutex_create((void *)l, 0);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND) {
		vg_untrack(l, size);
		ANNOTATE_RWLOCK_CREATE(l);
	}
#else
	(void)size;
#endif
}

void ann_lock_destroy_slow(const void *l)
{
	int tools = tools_of();
	if (tools & ANN_TSAN)
		__tsan_mutex_destroy((void *)l, 0);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		ANNOTATE_RWLOCK_DESTROY(l);
#endif
	if (tools & (ANN_CHECK | ANN_PROFILE))
		dbg_destroyed(l, tools);
}

void ann_destroy_pre_slow(const void *l, unsigned flags)
{
	if (tools_of() & ANN_CHECK)
		dbg_destroying(l, flags);
}

void ann_lock_pre_slow(const void *l, size_t size, unsigned flags)
{
	int tools = tools_of();
	if (tools & ANN_CHECK)
		dbg_lock_pre(l, flags);
	if (tools & ANN_TSAN)
		__tsan_mutex_pre_lock((void *)l, tsan_flags(flags));
	ann_internal_slow(l, size);
}

void ann_contended_slow(const void *l, unsigned flags)
{
	if (tools_of() & ANN_PROFILE)
		dbg_contended(l, flags);
}

void ann_lock_post_slow(const void *l, unsigned flags, int r)
{
	int tools = tools_of();
	if (tools & ANN_TSAN) {
		unsigned f = tsan_flags(flags);
		__tsan_mutex_post_lock((void *)l,
				       taken(r) ? f : f | TSAN_MUTEX_TRY_LOCK_FAILED, 0);
	}
#if ANN_VALGRIND_BUILT
	if ((tools & ANN_VALGRIND) && taken(r))
		ANNOTATE_RWLOCK_ACQUIRED(l, !(flags & ANN_READ));
#endif
	if (tools & (ANN_CHECK | ANN_PROFILE))
		dbg_lock_post(l, flags, taken(r), tools);
}

void ann_unlock_pre_slow(const void *l, size_t size, unsigned flags)
{
	int tools = tools_of();
	if (tools & (ANN_CHECK | ANN_PROFILE))
		dbg_unlock_pre(l, flags, tools);
	ann_internal_slow(l, size);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		ANNOTATE_RWLOCK_RELEASED(l, !(flags & ANN_READ));
#endif
	if (tools & ANN_TSAN)
		__tsan_mutex_pre_unlock((void *)l, tsan_flags(flags) & TSAN_MUTEX_READ_LOCK);
}

void ann_unlock_post_slow(const void *l, unsigned flags)
{
	if (tools_of() & ANN_TSAN)
		__tsan_mutex_post_unlock((void *)l, tsan_flags(flags) & TSAN_MUTEX_READ_LOCK);
}

void ann_release_slow(const void *p)
{
	int tools = tools_of();
	if (tools & ANN_TSAN)
		__tsan_release((void *)p);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		ANNOTATE_HAPPENS_BEFORE(p);
#endif
}

void ann_acquire_slow(const void *p)
{
	int tools = tools_of();
	if (tools & ANN_TSAN)
		__tsan_acquire((void *)p);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		ANNOTATE_HAPPENS_AFTER(p);
#endif
}

/* Helgrind forgets p; DRD never saw it (see annotate.h). */
static ANN_ADDR_ONLY void vg_forget(const void *p)
{
#if ANN_VALGRIND_BUILT && defined(ANNOTATE_HAPPENS_BEFORE_FORGET_ALL)
	if ((tools_of() & ANN_VALGRIND) && !on_drd)
		ANNOTATE_HAPPENS_BEFORE_FORGET_ALL(p);
#else
	(void)p;
#endif
}

void ann_release_slot_slow(const void *p, const void *c)
{
	int tools = tools_of();
	if (tools & ANN_TSAN)
		__tsan_release((void *)p);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		ANNOTATE_HAPPENS_BEFORE(on_drd ? c : p);
#else
	(void)c;
#endif
}

void ann_acquire_slot_slow(const void *p, const void *c)
{
	int tools = tools_of();
	if (tools & ANN_TSAN)
		__tsan_acquire((void *)p);
#if ANN_VALGRIND_BUILT
	if (tools & ANN_VALGRIND)
		ANNOTATE_HAPPENS_AFTER(on_drd ? c : p);
#else
	(void)c;
#endif
	vg_forget(p);
}

void ann_drop_slot_slow(const void *p, const void *c)
{
	(void)c;
	vg_forget(p);
}

void ann_wait_pre_slow(const void *p)
{
	if (tools_of() & ANN_PROFILE)
		dbg_wait_pre(p);
}

void ann_wait_post_slow(const void *p, unsigned kind)
{
	if (tools_of() & ANN_PROFILE)
		dbg_wait_post(p, kind);
}
