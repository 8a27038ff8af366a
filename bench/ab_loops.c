/* A/B loops: one small workload per run, timed, for comparing two builds
 * of libsync on the same machine (bench/ab.sh builds this file against
 * each build's headers and alternates the runs). Prints ns per operation.
 * Usage: ab_loops WORKLOAD THREADS [OPS_PER_THREAD] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sync.h>

static sync_mutex_t mutex = SYNC_MUTEX_INITIALIZER;
static sync_spinlock_t spin = SYNC_SPINLOCK_INITIALIZER;
static sync_ticketlock_t ticket = SYNC_TICKETLOCK_INITIALIZER;
static sync_rwlock_t rwlock;
static sync_sem_t sem;
static sync_queue_t *queue;
static sync_map_t *map;
static uint64_t key = 42;
static volatile uint64_t sink;

static void op_mutex(void)
{
	sync_mutex_lock(&mutex);
	sink++;
	sync_mutex_unlock(&mutex);
}

static void op_spinlock(void)
{
	sync_spinlock_lock(&spin);
	sink++;
	sync_spinlock_unlock(&spin);
}

static void op_ticket(void)
{
	sync_ticketlock_lock(&ticket);
	sink++;
	sync_ticketlock_unlock(&ticket);
}

static void op_rwlock_read(void)
{
	sync_rwlock_rdlock(&rwlock);
	(void)sink;
	sync_rwlock_rdunlock(&rwlock);
}

static void op_rwlock_write(void)
{
	sync_rwlock_wrlock(&rwlock);
	sink++;
	sync_rwlock_wrunlock(&rwlock);
}

static void op_sem(void)
{
	sync_sem_post(&sem);
	sync_sem_wait(&sem);
}

static void op_queue(void)
{
	void *item;
	sync_queue_push(queue, &key);
	sync_queue_pop(queue, &item);
}

static void op_map_get(void)
{
	void *value;
	sync_epoch_enter();
	sync_map_get(map, &key, sizeof key, &value);
	sync_epoch_exit();
}

static void op_epoch(void)
{
	sync_epoch_enter();
	sync_epoch_exit();
}

static const struct {
	const char *name;
	void (*op)(void);
} workloads[] = {
	{ "mutex", op_mutex },           { "spinlock", op_spinlock },
	{ "ticket", op_ticket },         { "rwlock-read", op_rwlock_read },
	{ "rwlock-write", op_rwlock_write }, { "sem", op_sem },
	{ "queue", op_queue },           { "map-get", op_map_get },
	{ "epoch", op_epoch },
};

static void (*op)(void);
static long ops;
static pthread_barrier_t start;

static void *worker(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	for (long i = 0; i < ops; i++)
		op();
	return NULL;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void setup(void)
{
	sync_rwlock_init(&rwlock, 0);
	sync_sem_init(&sem, 0, 0);
	queue = sync_queue_create();
	map = sync_map_create(16);
	if (!queue || !map || sync_map_put(map, &key, sizeof key, &key, NULL)) {
		fprintf(stderr, "ab_loops: setup failed\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 0;
	ops = argc > 3 ? atol(argv[3]) : 2000000;
	for (size_t i = 0; argc > 1 && i < sizeof workloads / sizeof workloads[0]; i++)
		if (!strcmp(argv[1], workloads[i].name))
			op = workloads[i].op;
	if (!op || threads < 1 || threads > 64 || ops < 1) {
		fprintf(stderr, "usage: ab_loops WORKLOAD THREADS [OPS_PER_THREAD]\n"
				"workloads: mutex spinlock ticket rwlock-read rwlock-write sem queue map-get epoch\n");
		return 2;
	}
	setup();
	pthread_t t[64];
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	double begin = now_ns();
	pthread_barrier_wait(&start);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("%.2f\n", (now_ns() - begin) / ((double)ops * threads));
	return 0;
}
