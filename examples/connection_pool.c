/* A connection pool: CONNS connections shared by CLIENTS > CONNS threads. A
 * counting semaphore holds one unit per idle connection: borrowing waits
 * for a unit, returning posts one, so no more than CONNS clients ever hold
 * a connection. Borrowing is timed (sync_sem_timedwait with an absolute
 * deadline from sync_deadline): a client that cannot get a connection in
 * time gets ETIMEDOUT and decides what to do, here count it and try again,
 * instead of hanging behind a pool that never frees up. A mutex guards the
 * list of idle connections, so that a unit turns into one definite
 * connection. The program first shows ETIMEDOUT on a pool emptied by hand,
 * then lets the clients work and checks that every request was served, by
 * a connection nobody else was using, and never more than CONNS at once.
 * See sync_sem_timedwait(3), sync_deadline(3).
 * cc connection_pool.c $(pkg-config --cflags --libs libsync) */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include <sync.h>

#define CONNS 3
#define CLIENTS 8
#define REQUESTS 50 /* per client */

struct connection { int id; atomic_int users; long served; };

static struct connection conns[CONNS];
static sync_sem_t idle_count;             /* idle connections */
static sync_mutex_t idle_lock = SYNC_MUTEX_INITIALIZER;
static struct connection *idle[CONNS];   /* guarded by idle_lock */
static int n_idle;                       /* guarded by idle_lock */
static atomic_int in_use, most_in_use, timeouts;

/* 0 and a connection, or ETIMEDOUT if none came free within timeout_ns. */
static int borrow(struct connection **c, uint64_t timeout_ns)
{
	struct timespec deadline = sync_deadline(timeout_ns);
	int err = sync_sem_timedwait(&idle_count, &deadline);
	if (err != 0)
		return err;
	sync_mutex_lock(&idle_lock);
	*c = idle[--n_idle]; /* the unit we took guarantees one is here */
	sync_mutex_unlock(&idle_lock);
	return 0;
}

static void give_back(struct connection *c)
{
	sync_mutex_lock(&idle_lock);
	idle[n_idle++] = c;
	sync_mutex_unlock(&idle_lock);
	sync_sem_post(&idle_count);
}

/* A request: check nobody else holds c or more than CONNS are out (all
 * seq_cst, for one order of these counts). */
static void use(struct connection *c)
{
	int now = atomic_fetch_add(&in_use, 1) + 1;
	for (int most = atomic_load(&most_in_use); now > most;)
		if (atomic_compare_exchange_weak(&most_in_use, &most, now))
			break;
	if (atomic_fetch_add(&c->users, 1) == 0)
		c->served++;
	nanosleep(&(struct timespec){ 0, 100000 }, NULL); /* 0.1 ms of work */
	atomic_fetch_sub(&c->users, 1);
	atomic_fetch_sub(&in_use, 1);
}

static void *client(void *arg)
{
	(void)arg;
	for (int i = 0; i < REQUESTS; i++) {
		struct connection *c;
		while (borrow(&c, 50 * 1000000) == ETIMEDOUT) /* 50 ms */
			atomic_fetch_add(&timeouts, 1);
		use(c);
		give_back(c);
	}
	return NULL;
}

/* Take every connection, then show that one more borrow times out. */
static int empty_pool_times_out(void)
{
	struct connection *held[CONNS], *extra;
	for (int i = 0; i < CONNS; i++)
		borrow(&held[i], 0);
	int err = borrow(&extra, 10 * 1000000); /* 10 ms */
	printf("borrow from an empty pool: %s\n",
	       err == ETIMEDOUT ? "ETIMEDOUT after 10 ms" : "no ETIMEDOUT (WRONG)");
	for (int i = 0; i < CONNS; i++)
		give_back(held[i]);
	return err == ETIMEDOUT;
}

int main(void)
{
	sync_sem_init(&idle_count, CONNS, 0);
	for (int i = 0; i < CONNS; i++) {
		conns[i].id = i;
		idle[n_idle++] = &conns[i];
	}
	int ok = empty_pool_times_out();

	pthread_t threads[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&threads[i], NULL, client, NULL);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(threads[i], NULL);

	long served = 0;
	for (int i = 0; i < CONNS; i++) {
		printf("connection %d served %ld requests\n", i, conns[i].served);
		served += conns[i].served;
	}
	printf("%d clients, %d connections: %ld of %d requests served alone, "
	       "at most %d connections out at once, %d borrows timed out and were retried\n",
	       CLIENTS, CONNS, served, CLIENTS * REQUESTS, atomic_load(&most_in_use),
	       atomic_load(&timeouts));
	ok &= served == CLIENTS * REQUESTS && atomic_load(&most_in_use) <= CONNS;
	sync_sem_destroy(&idle_count);
	return ok ? 0 : 1;
}
