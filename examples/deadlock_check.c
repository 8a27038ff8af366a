/* The dining philosophers under libsync's lock-order checker (SYNC_CHECK,
 * libsync_debug(7)). Five forks (mutexes), five philosophers; each takes
 * his left fork, then his right one. Round the table that is a cycle of
 * orders: fork 0 before 1, 1 before 2, ..., 4 before 0. Run at once, all
 * five can hold a left fork and wait for ever. Here they eat one after
 * another, so this run cannot deadlock; the checker, switched on by
 * sync_check_set("deadlock") (or SYNC_CHECK=deadlock in the environment),
 * reports the cycle all the same, on the first run, when philosopher 4
 * reaches for fork 0, before his lock call waits:
 *
 * libsync: SYNC_CHECK: lock-order inversion (a possible deadlock)
 *   thread 80312 takes mutex 0x55f0c2b17140 while holding mutex 0x55f0c2b171e0, at:
 *       #0 ./deadlock_check(+0x1415) [0x55f0c2b14415]
 *       #1 /lib/x86_64-linux-gnu/libc.so.6(+0x89134) [0x7f7b7aea9134]
 *       #2 /lib/x86_64-linux-gnu/libc.so.6(+0x1097dc) [0x7f7b7af297dc]
 *   but the opposite order was seen before:
 *   thread 80308 took mutex 0x55f0c2b17168 while holding mutex 0x55f0c2b17140, at:
 *       #0 ./deadlock_check(+0x1415) [0x55f0c2b14415]
 *       #1 /lib/x86_64-linux-gnu/libc.so.6(+0x89134) [0x7f7b7aea9134]
 *       #2 /lib/x86_64-linux-gnu/libc.so.6(+0x1097dc) [0x7f7b7af297dc]
 *   thread 80309 took mutex 0x55f0c2b17190 while holding mutex 0x55f0c2b17168, at:
 *       ... (the same frames)
 *   thread 80310 took mutex 0x55f0c2b171b8 while holding mutex 0x55f0c2b17190, at:
 *       ...
 *   thread 80311 took mutex 0x55f0c2b171e0 while holding mutex 0x55f0c2b171b8, at:
 *       ...
 *   if these run at once, each thread waits for the other for ever
 *
 * (fork i is at 0x55f0c2b17140 + 40 i.) Frames are `program(+offset)`:
 * `addr2line -e deadlock_check 0x1415` names the line of the second
 * sync_mutex_lock in take_forks_naive; linked with -rdynamic they carry
 * function names. The fix, run by `deadlock_check ordered`: every
 * philosopher takes the lower-numbered of his two forks first (philosopher
 * 4: fork 0, then fork 4), one global order, no cycle, and no report.
 * See libsync_debug(7), sync_check_set(3).
 * cc deadlock_check.c $(pkg-config --cflags --libs libsync) */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sync.h>

#define N 5
#define MEALS 3 /* each philosopher's */

static sync_mutex_t forks[N]; /* fork i lies left of philosopher i */
static int meals[N];

static void take_forks_naive(int p)
{
	sync_mutex_lock(&forks[p]);           /* left */
	sync_mutex_lock(&forks[(p + 1) % N]); /* right: 4 takes 0 while holding 4 */
}

static void take_forks_ordered(int p)
{
	int l = p, r = (p + 1) % N;
	sync_mutex_lock(&forks[l < r ? l : r]);
	sync_mutex_lock(&forks[l < r ? r : l]);
}

static void (*take_forks)(int p) = take_forks_naive;

static void *philosopher(void *arg)
{
	int p = (int)(long)arg;
	for (int i = 0; i < MEALS; i++) {
		take_forks(p);
		meals[p]++;
		sync_mutex_unlock(&forks[(p + 1) % N]);
		sync_mutex_unlock(&forks[p]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int ordered = argc > 1 && strcmp(argv[1], "ordered") == 0;
	if (ordered)
		take_forks = take_forks_ordered;
	if (sync_check_set("deadlock") != 0)
		return 1;
	for (int i = 0; i < N; i++)
		sync_mutex_init(&forks[i], 0);
	/* One after another: each philosopher sits down when the previous one
	 * has left, so no two hold forks at once, and the run ends. */
	for (long p = 0; p < N; p++) {
		pthread_t t;
		if (pthread_create(&t, NULL, philosopher, (void *)p) != 0 ||
		    pthread_join(t, NULL) != 0)
			return 1;
	}
	int total = 0;
	for (int i = 0; i < N; i++) {
		total += meals[i];
		sync_mutex_destroy(&forks[i]);
	}
	printf("%s forks: %d meals eaten, %s\n", ordered ? "ordered" : "naive", total,
	       ordered ? "no report expected"
		       : "the checker's report of the cycle is on stderr above");
	return total == N * MEALS ? 0 : 1;
}
