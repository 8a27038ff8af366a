/* Two classic semaphore programs. A connection pool: a counting sync_sem
 * admits as many clients as there are connections, and a binary sync_sem
 * per connection (taken by trywait) owns it while a client uses its plain
 * fields. A single-producer single-consumer ring of plain slots between an
 * "empty" and a "full" sync_sem. Correct: no report. */
#include "tools.h"

#define CONNECTIONS 3
#define CLIENTS 4
#define SLOTS 4

struct connection {
	sync_sem_t owner;     /* 1 while free */
	long queries, bytes;  /* plain: the owner's */
};

static sync_sem_t free_connections;
static struct connection pool[CONNECTIONS];
static long rounds;

static void *client(void *arg)
{
	for (long n = 0; n < rounds; n++) {
		CHECK(sync_sem_wait(&free_connections) == 0);
		struct connection *c = NULL;
		for (int i = 0; !c; i = (i + 1) % CONNECTIONS)
			if (sync_sem_trywait(&pool[i].owner) == 0)
				c = &pool[i];
		c->queries++;
		c->bytes += (long)arg + 1;
		CHECK(sync_sem_post(&c->owner) == 0);
		CHECK(sync_sem_post(&free_connections) == 0);
	}
	return NULL;
}

static sync_sem_t empty_slots, full_slots;
static long ring[SLOTS]; /* plain: handed over by the two semaphores */

static void *ring_producer(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		struct timespec far = sync_deadline(60ull * 1000000000);
		CHECK(sync_sem_timedwait(&empty_slots, &far) == 0);
		ring[i % SLOTS] = i * 7;
		CHECK(sync_sem_post(&full_slots) == 0);
	}
	return NULL;
}

static void *ring_consumer(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		CHECK(sync_sem_wait(&full_slots) == 0);
		CHECK(ring[i % SLOTS] == i * 7);
		ring[i % SLOTS] = -1;
		CHECK(sync_sem_post(&empty_slots) == 0);
	}
	return NULL;
}

static void *ring_end(void *arg)
{
	return (long)arg ? ring_consumer(arg) : ring_producer(arg);
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 20000);
	CHECK(sync_sem_init(&free_connections, CONNECTIONS, 0) == 0);
	for (int i = 0; i < CONNECTIONS; i++)
		CHECK(sync_sem_init(&pool[i].owner, 1, 0) == 0);
	tools_run(CLIENTS, client);
	long queries = 0, bytes = 0;
	for (int i = 0; i < CONNECTIONS; i++) {
		queries += pool[i].queries;
		bytes += pool[i].bytes;
	}
	CHECK(queries == CLIENTS * rounds);
	CHECK(bytes == rounds * (CLIENTS * (CLIENTS + 1) / 2));

	CHECK(sync_sem_init(&empty_slots, SLOTS, 0) == 0);
	CHECK(sync_sem_init(&full_slots, 0, 0) == 0);
	tools_run(2, ring_end);
	return 0;
}
