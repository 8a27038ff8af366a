/* The debugging aids as the annotation hooks (annotate.c) call them: the
 * lock-order and misuse checker (SYNC_CHECK, debug_check.c over the graph
 * of debug_graph.c) and the contention profiler (SYNC_PROFILE,
 * debug_profile.c). Per-thread state and the switches: debug_thread.c. Each
 * is called only while its bit of ann_tools is set. */
#ifndef SYNC_DEBUG_INTERNAL_H
#define SYNC_DEBUG_INTERNAL_H

#include <stdbool.h>

#include "annotate.h"

#define DBG_HIDDEN __attribute__((visibility("hidden")))

/* Reads SYNC_CHECK and SYNC_PROFILE once, at load; returns the ann_tools
 * bits they switch on (ANN_CHECK, ANN_PROFILE). */
DBG_HIDDEN int dbg_from_environment(void);

DBG_HIDDEN ANN_ADDR_ONLY void dbg_lock_pre(const void *l, unsigned flags);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_contended(const void *l, unsigned flags);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_lock_post(const void *l, unsigned flags, bool taken, int tools);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_unlock_pre(const void *l, unsigned flags, int tools);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_destroying(const void *l, unsigned flags);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_destroyed(const void *l, int tools);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_wait_pre(const void *p);
DBG_HIDDEN ANN_ADDR_ONLY void dbg_wait_post(const void *p, unsigned kind);

/* Makes <sync/rwlock.h>'s inline read lock and unlock call the library
 * (whose paths have the hooks) from now on (annotate.c). */
DBG_HIDDEN void ann_divert_inline_paths(void);

#endif /* SYNC_DEBUG_INTERNAL_H */
