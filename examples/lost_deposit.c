/* The lost deposit: four tellers pay into one account at once, each running
 * `balance = balance + amount`. That line is two steps, read the balance and
 * write it back plus the amount; two tellers who read the same old balance
 * both write, and one deposit is lost. Doing the update under a lock
 * (sync_mutex_t, which sleeps, or sync_spinlock_t, which spins) makes the
 * two steps one, and the balance comes out exact.
 * See sync_mutex_lock(3), sync_spinlock_lock(3).
 * cc lost_deposit.c $(pkg-config --cflags --libs libsync) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <sync.h>

#define TELLERS 4
#define DEPOSITS 200000 /* per teller */
#define AMOUNT 10

static long balance;          /* guarded by mutex or by spinlock */
static _Atomic long unlocked; /* the account without a lock */
static sync_mutex_t mutex = SYNC_MUTEX_INITIALIZER;
static sync_spinlock_t spinlock = SYNC_SPINLOCK_INITIALIZER;
static pthread_barrier_t opening; /* the bank opens to all tellers at once */

/* `balance = balance + amount` with its two steps written out. With a plain
 * long this would be a data race, undefined behaviour in C11; relaxed atomic
 * loads and stores keep the program defined and lose deposits in just the
 * same way. Relaxed: they pair with nothing, which is the bug shown here. */
static void deposit_unlocked(long amount)
{
	long read = atomic_load_explicit(&unlocked, memory_order_relaxed);
	atomic_store_explicit(&unlocked, read + amount, memory_order_relaxed);
}

static void deposit_mutex(long amount)
{
	sync_mutex_lock(&mutex);
	balance = balance + amount;
	sync_mutex_unlock(&mutex);
}

static void deposit_spinlock(long amount)
{
	sync_spinlock_lock(&spinlock);
	balance = balance + amount;
	sync_spinlock_unlock(&spinlock);
}

struct teller {
	const char *how;
	void (*deposit)(long amount);
};

static void *teller(void *arg)
{
	const struct teller *t = arg;
	pthread_barrier_wait(&opening);
	for (int i = 0; i < DEPOSITS; i++)
		t->deposit(AMOUNT);
	return NULL;
}

/* All tellers pay in the same way at once; pthread_join makes their writes
 * visible here. */
static void run_tellers(struct teller *t)
{
	pthread_t threads[TELLERS];
	for (int i = 0; i < TELLERS; i++)
		pthread_create(&threads[i], NULL, teller, t);
	for (int i = 0; i < TELLERS; i++)
		pthread_join(threads[i], NULL);
}

int main(void)
{
	const long expected = (long)TELLERS * DEPOSITS * AMOUNT;
	struct teller no_lock = { "no lock", deposit_unlocked };
	struct teller with_mutex = { "sync_mutex_t", deposit_mutex };
	struct teller with_spinlock = { "sync_spinlock_t", deposit_spinlock };
	int failed = 0;
	pthread_barrier_init(&opening, NULL, TELLERS);

	/* Not checked: how many deposits are lost differs from run to run.
	 * Tellers that never run at the same moment (one CPU, or a busy
	 * machine) lose none, so the day is run again, up to 20 times, until
	 * one is lost. */
	long got = expected;
	int day;
	for (day = 1; day <= 20 && got == expected; day++) {
		atomic_store(&unlocked, 0);
		run_tellers(&no_lock);
		got = atomic_load(&unlocked);
	}
	printf("%-16s balance %9ld, expected %ld: %ld deposits lost (day %d)\n",
	       no_lock.how, got, expected, (expected - got) / AMOUNT, day - 1);

	struct teller *locked[] = { &with_mutex, &with_spinlock };
	for (int i = 0; i < 2; i++) {
		balance = 0;
		run_tellers(locked[i]);
		printf("%-16s balance %9ld, expected %ld: %s\n", locked[i]->how,
		       balance, expected, balance == expected ? "exact" : "WRONG");
		failed |= balance != expected;
	}
	return failed;
}
