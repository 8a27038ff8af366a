/* The queue's two kinds behind one sync_queue_t handle (src/queue.c, the
 * unbounded FAAArrayQueue; src/queue_bounded.c, the bounded SCQ ring), and
 * the futex sleep and wake-up both kinds share for pop_wait and push_wait. */
#ifndef SYNC_SRC_QUEUE_INTERNAL_H
#define SYNC_SRC_QUEUE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <sync/queue.h>

/* The first member of both kinds' structures, a uint32_t read through
 * queue_kind(), says which one a handle is. Written once at creation. */
enum queue_kind { QUEUE_UNBOUNDED = 0x51554e42, QUEUE_BOUNDED = 0x51424e44 };

static inline enum queue_kind queue_kind(const sync_queue_t *q)
{
	return (enum queue_kind)*(const uint32_t *)q;
}

/* Threads sleeping until the queue changes one way (an item came, or room
 * was made). sleepers counts those between queue_sleep's registration and
 * its undoing; seq changes with every wake-up, and is the futex word.
 *
 * No lost wake-up: the waker makes its change visible (a seq_cst atomic
 * write) and then reads sleepers (seq_cst, queue_wake_one); a sleeper
 * counts itself (seq_cst RMW) and then looks at the queue once more
 * (seq_cst loads, in its attempt). Store-buffering, both sides seq_cst:
 * either the waker sees the sleeper and bumps seq, or the sleeper's look
 * sees the change. A sleeper reads seq before its last look, so a bump
 * between the look and its futex wait makes the wait return at once. */
struct queue_waiters {
	_Atomic uint32_t sleepers;
	_Atomic uint32_t seq;
};

/* One non-blocking attempt of a waiting operation: 0, EAGAIN (wait), or a
 * final error (EPIPE). The pop forms fill *out, the push forms take item. */
struct queue_attempt {
	int (*attempt)(struct queue_attempt *a);
	sync_queue_t *q;
	void *item;
	void **out;
};

/* Repeats a->attempt while it says EAGAIN: polls a little, then sleeps on
 * w until woken or abstime (NULL: never): ETIMEDOUT. The sleep is a
 * cancellation point. The caller validated abstime. */
int queue_wait(struct queue_waiters *w, struct queue_attempt *a,
	       const struct timespec *abstime);

/* After a change a sleeper of w waits for: wakes one, if any sleeps. One
 * seq_cst load when nobody does. */
void queue_wake_one(struct queue_waiters *w);

/* Wakes every sleeper of w (close). */
void queue_wake_all(struct queue_waiters *w);

/* The bounded kind (src/queue_bounded.c); q is of that kind. */
int bounded_push(sync_queue_t *q, void *item);
int bounded_push_wait(sync_queue_t *q, void *item, const struct timespec *abstime);
int bounded_pop(sync_queue_t *q, void **item);
int bounded_pop_wait(sync_queue_t *q, void **item, const struct timespec *abstime);
size_t bounded_size(sync_queue_t *q);
void bounded_close(sync_queue_t *q);
void bounded_destroy(sync_queue_t *q);

#endif /* SYNC_SRC_QUEUE_INTERNAL_H */
