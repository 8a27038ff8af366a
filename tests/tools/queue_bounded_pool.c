/* A thread pool on a bounded sync_queue of small capacity: two producers
 * malloc tasks with plain input and hand them over by push_wait (which
 * blocks while the queue is full); workers take them by pop_wait, write the
 * answer into the task, read it back, mark the task done in their own
 * table and free it. Once both producers are joined, main closes the
 * queue: the workers drain it and leave when pop_wait says EPIPE. Every
 * task must be done exactly once, and the answers add up. argv[1]: tasks.
 * Correct: no report. */
#include "tools.h"

#define PRODUCERS 2
#define WORKERS 3
#define CAPACITY 4

struct task {
	long id, input; /* plain: the producer's, before the push */
	long answer;    /* plain: the worker's, after the pop */
};

static sync_queue_t *queue;
static long ntasks;
static unsigned char *done[WORKERS]; /* plain: each worker's own, read after join */
static long sums[WORKERS];           /* likewise */
static long made[PRODUCERS];         /* plain: each producer's own */

static long work(long input)
{
	return input * 3 + 1;
}

static void *producer(void *arg)
{
	long me = (long)arg;
	for (long id = me; id < ntasks; id += PRODUCERS) {
		struct task *t = malloc(sizeof *t);
		CHECK(t);
		t->id = id;
		t->input = id % 997;
		t->answer = -1;
		CHECK(sync_queue_push_wait(queue, t, NULL) == 0);
		made[me]++;
	}
	return NULL;
}

static void *worker(void *arg)
{
	long me = (long)arg;
	for (;;) {
		void *item;
		int rc = sync_queue_pop_wait(queue, &item, NULL);
		if (rc == EPIPE)
			break;
		CHECK(rc == 0);
		struct task *t = item;
		CHECK(t->id >= 0 && t->id < ntasks && t->answer == -1);
		t->answer = work(t->input);
		CHECK(t->answer == work(t->id % 997));
		done[me][t->id]++;
		sums[me] += t->answer;
		free(t);
	}
	/* closed and drained: it stays so */
	void *item;
	CHECK(sync_queue_pop(queue, &item) == EPIPE);
	return NULL;
}

int main(int argc, char **argv)
{
	ntasks = tools_scale(argc, argv, 100000);
	CHECK(ntasks >= 0);
	CHECK((queue = sync_queue_create_bounded(CAPACITY)));
	for (int i = 0; i < WORKERS; i++)
		CHECK((done[i] = calloc((size_t)ntasks + 1, 1)));
	pthread_t w[WORKERS], p[PRODUCERS];
	for (long i = 0; i < WORKERS; i++)
		CHECK(pthread_create(&w[i], NULL, worker, (void *)i) == 0);
	for (long i = 0; i < PRODUCERS; i++)
		CHECK(pthread_create(&p[i], NULL, producer, (void *)i) == 0);
	for (int i = 0; i < PRODUCERS; i++)
		CHECK(pthread_join(p[i], NULL) == 0);
	sync_queue_close(queue);
	CHECK(sync_queue_push(queue, &made) == EPIPE);
	for (int i = 0; i < WORKERS; i++)
		CHECK(pthread_join(w[i], NULL) == 0);

	long expected = 0, sum = 0;
	for (long id = 0; id < ntasks; id++) {
		int times = 0;
		for (int i = 0; i < WORKERS; i++)
			times += done[i][id];
		CHECK(times == 1);
		expected += work(id % 997);
	}
	for (int i = 0; i < WORKERS; i++)
		sum += sums[i];
	CHECK(sum == expected);
	long pushed = 0;
	for (int i = 0; i < PRODUCERS; i++)
		pushed += made[i];
	CHECK(pushed == ntasks);
	CHECK(sync_queue_size(queue) == 0);
	sync_queue_destroy(queue);
	for (int i = 0; i < WORKERS; i++)
		free(done[i]);
	sync_epoch_barrier(); /* the queue's memory, freed by a callback */
	return 0;
}
