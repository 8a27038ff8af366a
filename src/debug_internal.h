/* What the debugging aids share: each thread's list of held locks, the
 * reports' output, stack traces, and the lock graph (debug_graph.c). */
#ifndef SYNC_DEBUG_SHARED_H
#define SYNC_DEBUG_SHARED_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"

#define HELD_MAX 64     /* locks one thread holds at once that are tracked */
#define MEMO_SLOTS 256  /* lock-order edges a thread remembers as known */
#define TRACE_MAX 24    /* frames kept of a stack trace */

struct prof_rec;

/* A lock the thread holds: its flags (ANN_READ: in read mode) as taken;
 * for the profiler, its record (NULL: never contended) and since when. */
struct held {
	const void *lock;
	unsigned flags;
	struct prof_rec *rec;
	uint64_t since_ns;
};

/* An edge "from held while taking to" the graph is known to have. */
struct edge_memo {
	const void *from, *to;
	unsigned modes;
	unsigned gen;
};

struct dbg_thread {
	int busy;            /* inside the aids: hooks from here are ignored */
	int saved_errno;     /* the caller's, put back by dbg_leave */
	unsigned n;          /* entries of held[] in use */
	unsigned lost;       /* holds beyond HELD_MAX, not tracked */
	unsigned check_gen;  /* the checking period held[] belongs to */
	const void *contended;   /* profiler: the lock whose slow path began */
	uint64_t contended_ns;   /* ... at this time */
	uint64_t wait_start_ns;  /* profiler: a sem or cond wait began */
	struct held held[HELD_MAX];
	struct edge_memo memo[MEMO_SLOTS];
};

/* The caller's state, marked busy; NULL when the caller is already inside
 * the aids (a signal handler that locks, a lock taken by malloc) or when
 * no state can be made. Pair with dbg_leave, which puts errno back as
 * dbg_enter found it (the hooks run inside functions that must not change
 * it). */
DBG_HIDDEN struct dbg_thread *dbg_enter(void);
DBG_HIDDEN void dbg_leave(struct dbg_thread *t);
DBG_HIDDEN struct held *held_find(struct dbg_thread *t, const void *l);
DBG_HIDDEN void held_drop(struct dbg_thread *t, struct held *h);
DBG_HIDDEN uint64_t dbg_now_ns(void);
DBG_HIDDEN int dbg_tid(void);

/* Checker settings (debug_thread.c). */
DBG_HIDDEN extern unsigned dbg_check_gen;  /* read relaxed */
DBG_HIDDEN extern int dbg_abort_after_report; /* read relaxed */
DBG_HIDDEN extern unsigned dbg_graph_gen;  /* bumped when edges go away */
DBG_HIDDEN void dbg_check_thread_exit(struct dbg_thread *t);

/* Stack traces, without the library's own frames. */
struct trace {
	int n;
	void *pc[TRACE_MAX];
};
DBG_HIDDEN void trace_capture(struct trace *t);

/* A report: text gathered in memory, written to stderr at once. */
struct report {
	char *text;
	size_t len, cap;
};
DBG_HIDDEN void report_printf(struct report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
DBG_HIDDEN void report_trace(struct report *r, const struct trace *t);
/* Writes it to stderr, frees it, and aborts if SYNC_CHECK asked to. */
DBG_HIDDEN void report_finish(struct report *r);
DBG_HIDDEN const char *lock_kind(unsigned flags);
/* " for reading" or " for writing" for an rwlock (flags as the hooks'), "" else. */
DBG_HIDDEN const char *mode_words(unsigned flags);

/* The lock-order graph (debug_graph.c). dbg_graph_order records that the
 * thread takes `to` (flags: its mode and kind) while holding every lock in
 * t->held; on the first order that closes a cycle, it reports it. */
DBG_HIDDEN void dbg_graph_order(struct dbg_thread *t, const void *to, unsigned flags);
DBG_HIDDEN void dbg_graph_forget(const void *l);

/* Profiler (debug_profile.c). Records exist for objects that were ever
 * waited for: made at the first contention (prof_make) or blocking wait. */
DBG_HIDDEN void prof_init(void);
DBG_HIDDEN void prof_make(const void *l, unsigned flags);
DBG_HIDDEN void prof_held(struct held *h, uint64_t now);     /* finds h's record */
DBG_HIDDEN void prof_released(struct held *h, uint64_t now);
DBG_HIDDEN void prof_waited(const void *l, uint64_t waited, bool taken);
DBG_HIDDEN void prof_wait_done(const void *p, unsigned kind, uint64_t waited);
DBG_HIDDEN void prof_forget(const void *l);

#endif /* SYNC_DEBUG_SHARED_H */
