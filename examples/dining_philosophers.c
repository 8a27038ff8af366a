/* Dining philosophers (Dijkstra, 1965): five philosophers round a table, a
 * fork between each two neighbours, and a philosopher needs both his forks
 * to eat. If each takes his left fork and then waits for his right one, all
 * five can hold a left fork and wait forever: deadlock. Two cures, each
 * eating a shared bowl of meals until it is empty:
 *  - ordered forks: always take the lower-numbered fork first, so no cycle
 *    of waiting philosophers can form (a global lock order);
 *  - back-off: take the left fork, only try (sync_mutex_trylock) the right
 *    one, and on EBUSY put the left one down and start again.
 * The program checks that neighbours never eat at once and that every meal
 * is eaten exactly once, and prints how the meals were shared. Last, an
 * error-checking mutex reports EDEADLK to a philosopher who reaches for a
 * fork he already holds, where a default mutex would hang forever.
 * See sync_mutex_lock(3), sync_mutex_trylock(3).
 * cc dining_philosophers.c $(pkg-config --cflags --libs libsync) */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include <sync.h>

#define N 5
#define BOWL 10000 /* meals in the bowl */

static sync_mutex_t forks[N]; /* fork i lies left of philosopher i */
static atomic_int bowl;       /* meals left */
static atomic_int eating[N];  /* 1 while philosopher i eats */
static atomic_int clash;      /* set if two neighbours ever ate at once */
static int meals[N];          /* meals eaten by each; read after join */
static pthread_barrier_t seated; /* all sit down before anyone eats */

static sync_mutex_t *left(int p) { return &forks[p]; }
static sync_mutex_t *right(int p) { return &forks[(p + 1) % N]; }

static void take_forks_ordered(int p)
{
	int l = p, r = (p + 1) % N; /* philosopher N-1 takes fork 0 first */
	sync_mutex_lock(&forks[l < r ? l : r]);
	sync_mutex_lock(&forks[l < r ? r : l]);
}

static void take_forks_backoff(int p)
{
	for (;;) {
		sync_mutex_lock(left(p));
		if (sync_mutex_trylock(right(p)) == 0)
			return;
		sync_mutex_unlock(left(p)); /* EBUSY: put it down, let others eat */
		sched_yield();
	}
}

/* Eat one meal with both forks held; false once the bowl is empty. All
 * seq_cst: the neighbour check needs one order of all eating[] updates. */
static int eat(int p)
{
	if (atomic_fetch_sub(&bowl, 1) <= 0)
		return 0;
	atomic_store(&eating[p], 1);
	if (atomic_load(&eating[(p + 1) % N]) || atomic_load(&eating[(p + N - 1) % N]))
		atomic_store(&clash, 1);
	meals[p]++;
	atomic_store(&eating[p], 0);
	return 1;
}

static void (*take_forks)(int p);

static void *philosopher(void *arg)
{
	int p = (int)(long)arg, hungry = 1;
	pthread_barrier_wait(&seated);
	while (hungry) {
		take_forks(p);
		hungry = eat(p);
		sync_mutex_unlock(right(p));
		sync_mutex_unlock(left(p));
		sched_yield(); /* think a moment */
	}
	return NULL;
}

static int dine(const char *how, void (*take)(int p))
{
	pthread_t threads[N];
	int total = 0;
	take_forks = take;
	atomic_store(&bowl, BOWL);
	for (long p = 0; p < N; p++) {
		meals[p] = 0;
		pthread_create(&threads[p], NULL, philosopher, (void *)p);
	}
	printf("%-14s meals:", how);
	for (int p = 0; p < N; p++) {
		pthread_join(threads[p], NULL);
		printf(" %5d", meals[p]);
		total += meals[p];
	}
	printf("  (total %d of %d)\n", total, BOWL);
	return total == BOWL && !atomic_load(&clash);
}

/* A philosopher who already holds a fork reaches for it again. */
static int reach_twice(void)
{
	sync_mutex_t f;
	sync_mutex_init(&f, SYNC_MUTEX_ERRORCHECK);
	sync_mutex_lock(&f);
	int err = sync_mutex_lock(&f);
	printf("error-checking fork locked twice: %s\n",
	       err == EDEADLK ? "EDEADLK" : "not EDEADLK (WRONG)");
	sync_mutex_unlock(&f);
	sync_mutex_destroy(&f);
	return err == EDEADLK;
}

int main(void)
{
	for (int i = 0; i < N; i++)
		sync_mutex_init(&forks[i], 0);
	pthread_barrier_init(&seated, NULL, N);
	int ok = dine("ordered forks", take_forks_ordered);
	ok &= dine("back-off", take_forks_backoff);
	ok &= reach_twice();
	if (atomic_load(&clash))
		printf("WRONG: two neighbours ate with one fork\n");
	return ok ? 0 : 1;
}
