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
 *   thread 31375 takes mutex 0x556804fa30a0 while holding mutex 0x556804fa3140, at:
 *       #0 /tmp/b_debug/examples/.libs/deadlock_check(+0x1380) [0x556804fa0380]
 *       #1 /lib/x86_64-linux-gnu/libc.so.6(+0x891f5) [0x7f4f6a47a1f5]
 *       #2 /lib/x86_64-linux-gnu/libc.so.6(+0x1098ec) [0x7f4f6a4fa8ec]
 *   but the opposite order was seen before:
 *   thread 31371 took mutex 0x556804fa30c8 while holding mutex 0x556804fa30a0, at:
 *       #0 /tmp/b_debug/examples/.libs/deadlock_check(+0x1380) [0x556804fa0380]
 *       #1 /lib/x86_64-linux-gnu/libc.so.6(+0x891f5) [0x7f4f6a47a1f5]
 *       #2 /lib/x86_64-linux-gnu/libc.so.6(+0x1098ec) [0x7f4f6a4fa8ec]
 *   thread 31372 took mutex 0x556804fa30f0 while holding mutex 0x556804fa30c8, at:
 *       (the same three frames)
 *   thread 31373 took mutex 0x556804fa3118 while holding mutex 0x556804fa30f0, at:
 *       (the same three frames)
 *   thread 31374 took mutex 0x556804fa3140 while holding mutex 0x556804fa3118, at:
 *       (the same three frames)
 *   if these run at once, each thread waits for the other for ever
 *
 * Fork i is at 0x556804fa30a0 + 40 i: thread 31375, philosopher 4, takes
 * fork 0 while holding fork 4, and philosophers 0 to 3 took forks 1 to 4
 * while holding forks 0 to 3. A frame is a return address,
 * `program(+offset)`: `addr2line -f -e deadlock_check 0x137f` (the offset
 * less one) names the call, take_forks(p) in philosopher(); a program
 * linked with -rdynamic shows its non-static functions' names. The fix, run by
 * `deadlock_check ordered`: every philosopher takes the lower-numbered of
 * his two forks first (philosopher 4: fork 0, then fork 4), one global
 * order, no cycle, and no report.
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
