/* Four threads add to one counter under a sync_mutex_t.
 * cc mutex_counter.c $(pkg-config --cflags --libs libsync) */
#include <pthread.h>
#include <stdio.h>

#include <sync.h>

static sync_mutex_t lock = SYNC_MUTEX_INITIALIZER;
static long counter;

static void *add(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		sync_mutex_lock(&lock);
		counter++;
		sync_mutex_unlock(&lock);
	}
	return NULL;
}

int main(void)
{
	pthread_t threads[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, add, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	printf("counter = %ld (expected 400000)\n", counter);
	return counter == 400000 ? 0 : 1;
}
