/* Dining philosophers whose forks are spinlocks of one kind (argv[2]: spin,
 * ticket or mcs; all three by default), taken lower fork first, sometimes by
 * trylock; each fork counts its uses and each philosopher its meals in plain
 * fields. Correct: no report. */
#include "tools.h"

#define PHILOSOPHERS 4

static const char *kind;
static sync_spinlock_t spin[PHILOSOPHERS];
static sync_ticketlock_t ticket[PHILOSOPHERS];
static sync_mcslock_t mcs[PHILOSOPHERS];
static long uses[PHILOSOPHERS];  /* plain: under that fork */
static long meals[PHILOSOPHERS]; /* plain: the philosopher's, read after join */
static long rounds;

static void take(int f, sync_mcsnode_t *node, int try_first)
{
	switch (kind[0]) {
	case 's':
		if (!try_first || sync_spinlock_trylock(&spin[f]) != 0)
			sync_spinlock_lock(&spin[f]);
		break;
	case 't':
		if (!try_first || sync_ticketlock_trylock(&ticket[f]) != 0)
			sync_ticketlock_lock(&ticket[f]);
		break;
	default:
		if (!try_first || sync_mcslock_trylock(&mcs[f], node) != 0)
			sync_mcslock_lock(&mcs[f], node);
	}
}

static void put(int f, sync_mcsnode_t *node)
{
	switch (kind[0]) {
	case 's':
		sync_spinlock_unlock(&spin[f]);
		break;
	case 't':
		sync_ticketlock_unlock(&ticket[f]);
		break;
	default:
		sync_mcslock_unlock(&mcs[f], node);
	}
}

static void *philosopher(void *arg)
{
	int me = (int)(long)arg;
	int left = me, right = (me + 1) % PHILOSOPHERS;
	int first = left < right ? left : right, second = left < right ? right : left;
	sync_mcsnode_t n1, n2;
	for (long n = 0; n < rounds; n++) {
		take(first, &n1, n & 1);
		take(second, &n2, n & 2);
		uses[first]++;
		uses[second]++;
		meals[me]++;
		put(second, &n2);
		put(first, &n1);
	}
	return NULL;
}

static void dine(const char *k)
{
	kind = k;
	for (int i = 0; i < PHILOSOPHERS; i++) {
		sync_spinlock_init(&spin[i]);
		sync_ticketlock_init(&ticket[i]);
		sync_mcslock_init(&mcs[i]);
		uses[i] = meals[i] = 0;
	}
	tools_run(PHILOSOPHERS, philosopher);
	for (int i = 0; i < PHILOSOPHERS; i++) {
		CHECK(meals[i] == rounds);
		CHECK(uses[i] == 2 * rounds);
	}
}

int main(int argc, char **argv)
{
	rounds = tools_scale(argc, argv, 20000);
	if (argc > 2) {
		dine(argv[2]);
	} else {
		dine("spin");
		dine("ticket");
		dine("mcs");
	}
	return 0;
}
