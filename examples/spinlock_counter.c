/* Eight threads, more than this machine has cores, add to one counter
 * under a test-and-test-and-set spinlock: a waiter spins a bounded time,
 * then yields its CPU to whoever holds the lock. (The FIFO locks, ticket
 * and MCS, hand the lock to one waiter in turn: when other processes keep
 * the CPUs busy, that waiter may wait a time slice at every hand-off, so
 * use them where threads do not outnumber the CPUs they get.)
 * cc spinlock_counter.c $(pkg-config --cflags --libs libsync) */
#include <pthread.h>
#include <stdio.h>

#include <sync.h>

static sync_spinlock_t lock = SYNC_SPINLOCK_INITIALIZER;
static long counter;

static void *add(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		sync_spinlock_lock(&lock);
		counter++;
		sync_spinlock_unlock(&lock);
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
