/* Configuration reload under a sync_rwlock: readers (rdlock, tryrdlock,
 * timedrdlock) check that the plain fields of the configuration agree, a
 * writer (wrlock, trywrlock, timedwrlock) rewrites them all. Run with both
 * preferences. Correct: no report. */
#include "tools.h"

#define READERS 3

struct config {
	long version;
	long port, timeout; /* both derived from version */
	char name[16];
};

static sync_rwlock_t lock;
static struct config config = { 0, 8000, 0, "a" }; /* plain: under lock */
static long rounds;

static void read_lock(long n)
{
	if (n % 3 == 0) {
		CHECK(sync_rwlock_rdlock(&lock) == 0);
	} else if (n % 3 == 1) {
		while (sync_rwlock_tryrdlock(&lock) != 0)
			;
	} else {
		struct timespec far = sync_deadline(60ull * 1000000000);
		CHECK(sync_rwlock_timedrdlock(&lock, &far) == 0);
	}
}

static void write_lock(long n)
{
	if (n % 3 == 0) {
		CHECK(sync_rwlock_wrlock(&lock) == 0);
	} else if (n % 3 == 1) {
		while (sync_rwlock_trywrlock(&lock) != 0)
			;
	} else {
		struct timespec far = sync_deadline(60ull * 1000000000);
		CHECK(sync_rwlock_timedwrlock(&lock, &far) == 0);
	}
}

static void *reader(void *arg)
{
	(void)arg;
	for (long n = 0; n < rounds; n++) {
		read_lock(n);
		long v = config.version;
		CHECK(config.port == 8000 + v % 1000);
		CHECK(config.timeout == v * 3);
		CHECK(config.name[0] == 'a' + v % 26);
		CHECK(sync_rwlock_rdunlock(&lock) == 0);
	}
	return NULL;
}

static void *writer(void *arg)
{
	(void)arg;
	for (long n = 0; n < rounds / 8; n++) {
		write_lock(n);
		long v = ++config.version;
		config.port = 8000 + v % 1000;
		config.timeout = v * 3;
		memset(config.name, 'a' + v % 26, sizeof config.name - 1);
		CHECK(sync_rwlock_wrunlock(&lock) == 0);
	}
	return NULL;
}

static void *either(void *arg)
{
	return (long)arg == READERS ? writer(arg) : reader(arg);
}

static void reload(int flags)
{
	CHECK(sync_rwlock_init(&lock, flags) == 0);
	tools_run(READERS + 1, either);
	CHECK(config.version % (rounds / 8) == 0);
	CHECK(sync_rwlock_destroy(&lock) == 0);
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 20000);
	CHECK(rounds >= 8);
	reload(0);
	reload(SYNC_RWLOCK_PREFER_READER);
	return 0;
}
