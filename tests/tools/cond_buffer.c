/* Bounded buffer on a sync_mutex and two sync_conds: producers hand
 * malloc'ed messages with plain contents to consumers, which check and free
 * them; the last consumer learns the end by broadcast. Correct: no report. */
#include "tools.h"

#define SLOTS 4
#define PRODUCERS 2
#define CONSUMERS 2

struct message {
	long producer, seq, check; /* plain: written before the put */
};

static sync_mutex_t lock = SYNC_MUTEX_INITIALIZER;
static sync_cond_t not_full = SYNC_COND_INITIALIZER;
static sync_cond_t not_empty = SYNC_COND_INITIALIZER;
static struct message *ring[SLOTS]; /* plain: under lock */
static unsigned head, count, producers_left = PRODUCERS;
static long per_producer, consumed;

static void put(struct message *m)
{
	sync_mutex_lock(&lock);
	while (count == SLOTS)
		CHECK(sync_cond_wait(&not_full, &lock) == 0);
	ring[(head + count++) % SLOTS] = m;
	sync_cond_signal(&not_empty);
	sync_mutex_unlock(&lock);
}

/* NULL once every producer is done and the buffer is empty. */
static struct message *take(void)
{
	struct message *m = NULL;
	sync_mutex_lock(&lock);
	while (count == 0 && producers_left) {
		struct timespec soon = sync_deadline(50 * 1000000);
		int rc = sync_cond_timedwait(&not_empty, &lock, &soon);
		CHECK(rc == 0 || rc == ETIMEDOUT);
	}
	if (count) {
		m = ring[head];
		head = (head + 1) % SLOTS;
		count--;
		consumed++;
		sync_cond_signal(&not_full);
	}
	sync_mutex_unlock(&lock);
	return m;
}

static void *producer(void *arg)
{
	for (long i = 0; i < per_producer; i++) {
		struct message *m = malloc(sizeof *m);
		CHECK(m);
		m->producer = (long)arg;
		m->seq = i;
		m->check = (long)arg * 1000003 + i;
		put(m);
	}
	sync_mutex_lock(&lock);
	if (--producers_left == 0)
		sync_cond_broadcast(&not_empty);
	sync_mutex_unlock(&lock);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	struct message *m;
	while ((m = take())) {
		CHECK(m->check == m->producer * 1000003 + m->seq);
		free(m);
	}
	return NULL;
}

static void *either(void *arg)
{
	return (long)arg < PRODUCERS ? producer(arg) : consumer(arg);
}

int main(int argc, char **argv)
{
	per_producer = tools_scale(argc, argv, 20000);
	tools_run(PRODUCERS + CONSUMERS, either);
	CHECK(consumed == PRODUCERS * per_producer);
	CHECK(sync_cond_destroy(&not_full) == 0);
	CHECK(sync_cond_destroy(&not_empty) == 0);
	return 0;
}
