/* <sync.h> compiles as strict ISO C11 (-std=c11 -pedantic-errors). */
#include <stdio.h>

#include <sync.h>

static sync_mutex_t mutex = SYNC_MUTEX_INITIALIZER;
static sync_spinlock_t spin = SYNC_SPINLOCK_INITIALIZER;
static sync_ticketlock_t ticket = SYNC_TICKETLOCK_INITIALIZER;
static sync_mcslock_t mcs = SYNC_MCSLOCK_INITIALIZER;

int main(void)
{
	int ok = sync_mutex_lock(&mutex) == 0 && sync_mutex_unlock(&mutex) == 0 &&
		 sync_spinlock_trylock(&spin) == 0 &&
		 sync_ticketlock_trylock(&ticket) == 0;
	sync_spinlock_unlock(&spin);
	sync_ticketlock_unlock(&ticket);
	sync_mcslock_lock(&mcs, &(sync_mcsnode_t){ 0 });
	printf("1..1\n%sok 1 - headers compile as ISO C11\n", ok ? "" : "not ");
	return 0;
}
