/* A thread pool: WORKERS threads take jobs from one bounded queue. The
 * queue holds at most CAPACITY jobs, so a producer faster than the workers
 * is held back (back-pressure) instead of piling up jobs in memory:
 * sync_queue_push on a full queue returns EAGAIN, and sync_queue_push_wait
 * sleeps until a worker makes room. Shutdown is one call,
 * sync_queue_close: jobs already queued are still handed out, then every
 * worker's sync_queue_pop_wait returns EPIPE and the worker exits; no
 * sentinel job per worker is needed, and none can be missed.
 * The program checks that every job was done exactly once.
 * See sync_queue_push(3), sync_queue_push_wait(3), sync_queue_close(3).
 * cc thread_pool.c $(pkg-config --cflags --libs libsync) */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include <sync.h>

#define WORKERS 3
#define CAPACITY 16
#define JOBS 10000

struct job { long n, result, done_by; };

static struct job jobs[JOBS];
static sync_queue_t *q;

static void *worker(void *arg)
{
	long *jobs_done = arg;
	void *item;
	/* The pop hands the job over: what the producer wrote before the push
	 * is visible here. EPIPE: the queue is closed and empty. */
	while (sync_queue_pop_wait(q, &item, NULL) == 0) {
		struct job *j = item;
		j->result = j->n * j->n;
		j->done_by++;
		++*jobs_done;
	}
	return NULL;
}

int main(void)
{
	q = sync_queue_create_bounded(CAPACITY);
	if (q == NULL)
		return 1;
	pthread_t threads[WORKERS];
	long jobs_done[WORKERS] = { 0 };
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&threads[i], NULL, worker, &jobs_done[i]);

	long waits = 0;
	for (long i = 0; i < JOBS; i++) {
		jobs[i].n = i;
		if (sync_queue_push(q, &jobs[i]) == EAGAIN) { /* full: wait for room */
			waits++;
			sync_queue_push_wait(q, &jobs[i], NULL);
		}
	}
	sync_queue_close(q);
	int late = sync_queue_push(q, &jobs[0]); /* refused: EPIPE */

	for (int i = 0; i < WORKERS; i++) {
		pthread_join(threads[i], NULL);
		printf("worker %d did %ld jobs\n", i, jobs_done[i]);
	}
	long wrong = 0;
	for (long i = 0; i < JOBS; i++)
		wrong += jobs[i].done_by != 1 || jobs[i].result != i * i;
	printf("%d jobs through a queue of %d: the producer waited for room %ld times, "
	       "%ld jobs lost, repeated or wrong, push after close: %s\n",
	       JOBS, CAPACITY, waits, wrong, late == EPIPE ? "EPIPE" : "not EPIPE (WRONG)");
	sync_queue_destroy(q);
	return wrong == 0 && late == EPIPE ? 0 : 1;
}
