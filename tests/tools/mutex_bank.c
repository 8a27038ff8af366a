/* Bank transfers under one sync_mutex per account, taken in account order
 * (lock, trylock, timedlock); an auditor sums every balance under all the
 * locks. Balances are plain longs: correct, so no tool may report. */
#include "tools.h"

#define ACCOUNTS 8
#define THREADS 4

struct account {
	sync_mutex_t lock;
	long balance; /* plain: under lock */
};

static struct account bank[ACCOUNTS];
static long rounds;

static void lock_account(int i, unsigned *seed)
{
	switch (tools_rand(seed) % 3) {
	case 0:
		CHECK(sync_mutex_lock(&bank[i].lock) == 0);
		break;
	case 1:
		while (sync_mutex_trylock(&bank[i].lock) != 0)
			;
		break;
	default: {
		struct timespec far = sync_deadline(60ull * 1000000000);
		CHECK(sync_mutex_timedlock(&bank[i].lock, &far) == 0);
	}
	}
}

static void transfer(int from, int to, long amount, unsigned *seed)
{
	int first = from < to ? from : to, second = from < to ? to : from;
	lock_account(first, seed);
	lock_account(second, seed);
	bank[from].balance -= amount;
	bank[to].balance += amount;
	CHECK(sync_mutex_unlock(&bank[second].lock) == 0);
	CHECK(sync_mutex_unlock(&bank[first].lock) == 0);
}

static long audit(void)
{
	long sum = 0;
	for (int i = 0; i < ACCOUNTS; i++)
		CHECK(sync_mutex_lock(&bank[i].lock) == 0);
	for (int i = 0; i < ACCOUNTS; i++)
		sum += bank[i].balance;
	for (int i = ACCOUNTS - 1; i >= 0; i--)
		CHECK(sync_mutex_unlock(&bank[i].lock) == 0);
	return sum;
}

static void *clerk(void *arg)
{
	unsigned seed = 2463534242u + (unsigned)(long)arg;
	for (long n = 0; n < rounds; n++) {
		int from = tools_rand(&seed) % ACCOUNTS;
		int to = tools_rand(&seed) % ACCOUNTS;
		if (from != to)
			transfer(from, to, tools_rand(&seed) % 100, &seed);
		if (n % 256 == 0)
			CHECK(audit() == ACCOUNTS * 1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 20000);
	for (int i = 0; i < ACCOUNTS; i++) {
		CHECK(sync_mutex_init(&bank[i].lock, i % 2 ? SYNC_MUTEX_ERRORCHECK : 0) == 0);
		bank[i].balance = 1000;
	}
	tools_run(THREADS, clerk);
	CHECK(audit() == ACCOUNTS * 1000);
	for (int i = 0; i < ACCOUNTS; i++)
		CHECK(sync_mutex_destroy(&bank[i].lock) == 0);
	return 0;
}
