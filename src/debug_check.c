/* SYNC_CHECK's misuse checks on each thread's list of held locks (relock,
 * unlock of a lock not held, exit or destroy while holding), and the
 * profiler's bookkeeping at the same hooks; lock order goes to
 * debug_graph.c. In the manner of the kernel's lockdep, per process. */
#include <stdlib.h>

#include "annotate.h"
#include "debug_internal.h"

/* Whether taking l in mode `want` while holding it in mode `held` never
 * returns (a mutex or spinlock relock; a write lock of an rwlock held for
 * reading; a read lock again, when a writer may come in between, unless
 * the lock prefers readers). Try and timed locks return; an ERRORCHECK
 * mutex and an rwlock held for writing answer EDEADLK. */
static int relock_blocks(unsigned held, unsigned want)
{
	if (want & (ANN_TRY | ANN_NOHANG))
		return 0;
	if (!(want & ANN_RWLOCK))
		return 1;
	if (!(held & ANN_READ))
		return 0;
	return !(want & ANN_READ) || !(want & ANN_RDPREF);
}

static void report_relock(const void *l, unsigned held, unsigned want)
{
	struct report r = { 0 };
	struct trace here;
	trace_capture(&here);
	report_printf(&r, "libsync: SYNC_CHECK: thread %d takes %s %p%s, which it "
			  "already holds%s:\n", dbg_tid(), lock_kind(want), l,
		      mode_words(want), mode_words(held));
	if ((want & ANN_RWLOCK) && (want & ANN_READ))
		report_printf(&r, "  a writer that comes in between blocks this read "
				  "lock for ever (the rwlock prefers writers)\n");
	else
		report_printf(&r, "  this call never returns (self-deadlock)\n");
	report_trace(&r, &here);
	report_finish(&r);
}

static void report_simple(const char *what, const void *l, unsigned flags)
{
	struct report r = { 0 };
	struct trace here;
	trace_capture(&here);
	report_printf(&r, "libsync: SYNC_CHECK: thread %d %s %s %p%s\n", dbg_tid(),
		      what, lock_kind(flags), l, mode_words(flags));
	report_trace(&r, &here);
	report_finish(&r);
}

void dbg_lock_pre(const void *l, unsigned flags)
{
	if (flags & ANN_TRY)
		return; /* no order, no relock: it returns */
	struct dbg_thread *t = dbg_enter();
	if (t) {
		struct held *h = held_find(t, l);
		if (h && relock_blocks(h->flags, flags))
			report_relock(l, h->flags, flags);
		else if (!h && t->n)
			dbg_graph_order(t, l, flags);
		dbg_leave(t);
	}
}

void dbg_contended(const void *l, unsigned flags)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		prof_make(l, flags);
		t->contended = l;
		t->contended_ns = dbg_now_ns();
		dbg_leave(t);
	}
}

static void hold(struct dbg_thread *t, const void *l, unsigned flags, uint64_t now)
{
	if (t->n == HELD_MAX) {
		t->lost++;
		return;
	}
	struct held *h = &t->held[t->n++];
	*h = (struct held){ l, flags, NULL, 0 };
	if (now)
		prof_held(h, now);
}

void dbg_lock_post(const void *l, unsigned flags, bool taken, int tools)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		uint64_t now = (tools & ANN_PROFILE) ? dbg_now_ns() : 0;
		if (now && t->contended == l)
			prof_waited(l, now - t->contended_ns, taken);
		t->contended = NULL;
		if (taken)
			hold(t, l, flags, now);
		dbg_leave(t);
	}
}

void dbg_unlock_pre(const void *l, unsigned flags, int tools)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		struct held *h = held_find(t, l);
		if (h) {
			if (h->rec)
				prof_released(h, dbg_now_ns());
			held_drop(t, h);
		} else if (t->lost) {
			t->lost--; /* perhaps one of those */
		} else if (tools & ANN_CHECK) {
			report_simple("unlocks, not holding it,", l, flags);
		}
		dbg_leave(t);
	}
}

void dbg_destroying(const void *l, unsigned flags)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		if (held_find(t, l))
			report_simple("destroys, while holding it,", l, flags);
		dbg_leave(t);
	}
}

void dbg_destroyed(const void *l, int tools)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		if (tools & ANN_CHECK)
			dbg_graph_forget(l);
		if (tools & ANN_PROFILE)
			prof_forget(l);
		dbg_leave(t);
	}
}

void dbg_wait_pre(const void *p)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		t->wait_start_ns = dbg_now_ns();
		dbg_leave(t);
	}
	(void)p;
}

void dbg_wait_post(const void *p, unsigned kind)
{
	struct dbg_thread *t = dbg_enter();
	if (t) {
		if (t->wait_start_ns)
			prof_wait_done(p, kind, dbg_now_ns() - t->wait_start_ns);
		t->wait_start_ns = 0;
		dbg_leave(t);
	}
}

/* A thread that ends holding locks (a robust mutex excepted: its owner's
 * death is what it is made for, reported to the next locker). */
void dbg_check_thread_exit(struct dbg_thread *t)
{
	unsigned left = 0;
	for (unsigned i = 0; i < t->n; i++)
		left += !(t->held[i].flags & ANN_ROBUST);
	if (!left)
		return;
	struct report r = { 0 };
	report_printf(&r, "libsync: SYNC_CHECK: thread %d exits holding %u lock%s:\n",
		      dbg_tid(), left, left == 1 ? "" : "s");
	for (unsigned i = 0; i < t->n; i++)
		if (!(t->held[i].flags & ANN_ROBUST))
			report_printf(&r, "  %s %p%s\n", lock_kind(t->held[i].flags),
				      t->held[i].lock, mode_words(t->held[i].flags));
	report_printf(&r, "  they stay locked: a thread that takes one waits for ever\n");
	report_finish(&r);
}
