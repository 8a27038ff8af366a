/* A thread pool on sync_queue: the producer mallocs each task with plain
 * input and pushes it; workers take tasks (pop_wait, or pop when one is
 * ready) and free them, except every 16th task, whose worker writes the
 * answer into it and pushes it back on a reply queue to the producer, which
 * reads the answer and frees it. argv[1]: tasks (the 100,000-task run is the
 * timing check). Correct: no report. */
#include "tools.h"

#define WORKERS 3

struct task {
	long id, input;  /* plain: the producer's, before the push */
	long answer;     /* plain: the worker's, before the reply push */
	int reply;
};

static sync_queue_t *tasks, *replies;
static long sums[WORKERS]; /* plain: each worker's own, read after join */
static long ntasks;
static int stop; /* address of the stop item */

static long work(long input)
{
	return input * 2 + 1;
}

static struct task *next_task(void)
{
	void *item;
	if (sync_queue_pop(tasks, &item) != 0)
		CHECK(sync_queue_pop_wait(tasks, &item, NULL) == 0);
	return item;
}

static void *worker(void *arg)
{
	long me = (long)arg;
	struct task *t;
	while ((t = next_task()) != (void *)&stop) {
		long a = work(t->input);
		if (t->reply) {
			t->answer = a;
			CHECK(sync_queue_push(replies, t) == 0);
		} else {
			sums[me] += a;
			free(t);
		}
	}
	return NULL;
}

static long collect_one_reply(void)
{
	void *item;
	struct timespec far = sync_deadline(60ull * 1000000000);
	CHECK(sync_queue_pop_wait(replies, &item, &far) == 0);
	struct task *t = item;
	CHECK(t->answer == work(t->input));
	long id = t->id;
	free(t);
	return id;
}

int main(int argc, char **argv)
{
	ntasks = tools_scale(argc, argv, 100000);
	CHECK((tasks = sync_queue_create()) && (replies = sync_queue_create()));
	pthread_t t[WORKERS];
	for (long i = 0; i < WORKERS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
	long expected = 0, replied = 0;
	for (long i = 0; i < ntasks; i++) {
		struct task *task = malloc(sizeof *task);
		CHECK(task);
		task->id = i;
		task->input = i % 1000;
		task->reply = i % 16 == 0;
		if (!task->reply)
			expected += work(task->input);
		CHECK(sync_queue_push(tasks, task) == 0);
		if (i % 64 == 63)
			replied += collect_one_reply() >= 0;
	}
	for (int i = 0; i < WORKERS; i++)
		CHECK(sync_queue_push(tasks, &stop) == 0);
	for (int i = 0; i < WORKERS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	while (replied < (ntasks + 15) / 16)
		replied += collect_one_reply() >= 0;
	long sum = 0;
	for (int i = 0; i < WORKERS; i++)
		sum += sums[i];
	CHECK(sum == expected);
	CHECK(sync_queue_size(tasks) == 0 && sync_queue_size(replies) == 0);
	sync_queue_destroy(tasks);
	sync_queue_destroy(replies);
	return 0;
}
