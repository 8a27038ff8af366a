/* Producer and consumer in two processes: a ring buffer of SLOTS items in
 * MAP_SHARED memory, which fork(2) shares between parent and child. Two
 * counting semaphores count the free and the filled slots: the producer
 * waits for a free slot and posts a filled one, the consumer the other way
 * round, so neither overruns the other and both sleep (no polling) when
 * they must wait. A mutex guards the ring's indices; with one producer and
 * one consumer each index has one writer, but with more of either it is
 * the mutex that stops two of them taking the same slot. All three objects
 * live in the shared memory and are initialised with SYNC_PSHARED.
 * The consumer checks that it gets every item once and in order.
 * See sync_sem_wait(3), sync_mutex_lock(3).
 * cc producer_consumer_processes.c $(pkg-config --cflags --libs libsync) */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sync.h>

#define SLOTS 8
#define ITEMS 20000

struct ring {
	sync_sem_t free_slots;   /* starts at SLOTS */
	sync_sem_t filled_slots; /* starts at 0 */
	sync_mutex_t lock;       /* guards head, tail and the slots */
	unsigned head, tail;     /* next slot to read, next slot to write */
	long slot[SLOTS];
};

static void put(struct ring *r, long item)
{
	sync_sem_wait(&r->free_slots);
	sync_mutex_lock(&r->lock);
	r->slot[r->tail++ % SLOTS] = item;
	sync_mutex_unlock(&r->lock);
	sync_sem_post(&r->filled_slots);
}

static long get(struct ring *r)
{
	sync_sem_wait(&r->filled_slots);
	sync_mutex_lock(&r->lock);
	long item = r->slot[r->head++ % SLOTS];
	sync_mutex_unlock(&r->lock);
	sync_sem_post(&r->free_slots);
	return item;
}

static struct ring *ring_create(void)
{
	struct ring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0); /* zero-filled */
	if (r == MAP_FAILED)
		return NULL;
	if (sync_sem_init(&r->free_slots, SLOTS, SYNC_PSHARED) != 0 ||
	    sync_sem_init(&r->filled_slots, 0, SYNC_PSHARED) != 0 ||
	    sync_mutex_init(&r->lock, SYNC_PSHARED) != 0)
		return NULL;
	return r;
}

int main(void)
{
	struct ring *r = ring_create();
	if (r == NULL)
		return 1;
	pid_t producer = fork();
	if (producer < 0)
		return 1;
	if (producer == 0) { /* child: produce 0, 1, ..., ITEMS-1 */
		for (long i = 0; i < ITEMS; i++)
			put(r, i);
		_exit(0);
	}
	long wrong = 0; /* parent: consume and check */
	for (long i = 0; i < ITEMS; i++) {
		long item = get(r);
		if (item != i && wrong++ == 0)
			printf("WRONG: got item %ld where %ld was due\n", item, i);
	}
	int status;
	waitpid(producer, &status, 0);
	int value;
	sync_sem_getvalue(&r->filled_slots, &value);
	printf("consumer got %d items from the producer process, %ld out of order, %d left over\n",
	       ITEMS, wrong, value);
	sync_sem_destroy(&r->free_slots);
	sync_sem_destroy(&r->filled_slots);
	sync_mutex_destroy(&r->lock);
	munmap(r, sizeof *r);
	return wrong == 0 && value == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
