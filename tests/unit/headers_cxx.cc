// <sync.h> compiles as C++ (extern "C", initializers) and links from C++.
#include <sync.h>

#include <cstdio>

static sync_mutex_t mutex = SYNC_MUTEX_INITIALIZER;
static sync_spinlock_t spin = SYNC_SPINLOCK_INITIALIZER;
static sync_ticketlock_t ticket = SYNC_TICKETLOCK_INITIALIZER;
static sync_mcslock_t mcs = SYNC_MCSLOCK_INITIALIZER;

int main()
{
	sync_mcsnode_t node;
	bool ok = sync_mutex_lock(&mutex) == 0 && sync_mutex_unlock(&mutex) == 0 &&
		  sync_spinlock_trylock(&spin) == 0 &&
		  sync_ticketlock_trylock(&ticket) == 0 &&
		  sync_mcslock_trylock(&mcs, &node) == 0;
	sync_spinlock_unlock(&spin);
	sync_ticketlock_unlock(&ticket);
	sync_mcslock_unlock(&mcs, &node);
	std::printf("1..1\n%sok 1 - headers compile and link as C++\n", ok ? "" : "not ");
	return 0;
}
