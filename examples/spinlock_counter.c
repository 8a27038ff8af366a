/* Eight threads, each with its own MCS node, add to one counter.
 * cc spinlock_counter.c $(pkg-config --cflags --libs libsync) */
#include <pthread.h>
#include <stdio.h>

#include <sync.h>

static sync_mcslock_t lock = SYNC_MCSLOCK_INITIALIZER;
static long counter;

static void *add(void *arg)
{
	(void)arg;
	sync_mcsnode_t node; /* valid from lock to unlock: the stack is fine */
	for (int i = 0; i < 100000; i++) {
		sync_mcslock_lock(&lock, &node);
		counter++;
		sync_mcslock_unlock(&lock, &node);
	}
	return NULL;
}

int main(void)
{
	pthread_t threads[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&threads[i], NULL, add, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	printf("counter = %ld (expected 800000)\n", counter);
	return counter == 800000 ? 0 : 1;
}
