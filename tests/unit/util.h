/* Helpers shared by the unit suites: clocks, polling waits, child processes
 * and shared mappings. */
#ifndef SYNC_TESTS_UTIL_H
#define SYNC_TESTS_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest a test waits for another thread or process before it fails. */
#define WAIT_LIMIT_NS 2000000000LL
#define NS_PER_MS 1000000LL

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t now_ns(void);

/* Sleeps ns nanoseconds, resuming after signals. */
void sleep_ns(int64_t ns);

/* Polls until *v == want; false after WAIT_LIMIT_NS. Sleeps between looks
 * rather than yields: on a loaded machine a yield can cost a time slice. */
bool wait_until_equal(atomic_int *v, int want);

/* Reaps the child: its exit status, or -1 if it crashed or hung (then it is
 * killed after WAIT_LIMIT_NS). */
int child_status(pid_t pid);

/* Moves a MAP_SHARED mapping to another address in this process only; the
 * memory stays shared with the other processes. MAP_FAILED on error. */
void *move_mapping(void *p, size_t size);

#endif /* SYNC_TESTS_UTIL_H */
