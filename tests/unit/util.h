/* Helpers shared by the unit suites: clocks, polling waits, child processes
 * and shared mappings. */
#ifndef SYNC_TESTS_UTIL_H
#define SYNC_TESTS_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <sync/mutex.h>

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


/* ---- helpers for the cond and sem suites -------------------------------- */

/* A timespec in nanoseconds. */
int64_t timespec_ns(const struct timespec *ts);

/* Kernel thread id (gettid) of the caller. */
pid_t thread_id(void);

/* Polls until the thread (or single-threaded process) `tid` sleeps in the
 * kernel, as /proc/<tid>/stat says (state "S"); false after WAIT_LIMIT_NS.
 * Callers make sure the only place it can sleep is the wait under test. */
bool wait_until_asleep(pid_t tid);

/* Polls until *v >= want; false after WAIT_LIMIT_NS. */
bool wait_until_at_least(atomic_int *v, int want);

/* Installs a handler for sig that only counts, without SA_RESTART: a signal
 * makes a sleeping system call fail with EINTR. */
void catch_signal_without_restart(int sig);

/* How many signals the handler above has caught in this process. */
int caught_signals(void);

/* Sends sig to the thread `thread`, kernel id `tid`, asleep in a wait, and
 * returns once the handler ran and the thread sleeps again; false if either
 * took longer than WAIT_LIMIT_NS. */
bool interrupt_sleeper(pthread_t thread, pid_t tid, int sig);

/* Runs fn(m) in a new thread, joins it and returns fn's result. */
int mutex_call_in_thread(int (*fn)(sync_mutex_t *), sync_mutex_t *m);

/* An anonymous MAP_SHARED mapping of size bytes, zeroed, shared with the
 * children forked afterwards; MAP_FAILED on error. */
void *map_shared(size_t size);

/* Forks a child that runs fn(arg) and exits with its result; the child is
 * killed if the forking thread dies first. -1 if fork failed. */
pid_t fork_running(int (*fn)(void *), void *arg);


/* ---- helpers for the epoch and queue suites ----------------------------- */

/* Runs fn(arg) in a forked child, with core dumps off and its stderr sent
 * into buf (at most size - 1 bytes, NUL-terminated). Returns the child's
 * wait status, or -1 if fork failed or the child hung (it is then killed
 * after WAIT_LIMIT_NS). */
int run_child_capturing_stderr(int (*fn)(void *), void *arg, char *buf, size_t size);

/* Resident set size of this process in bytes (/proc/self/statm); 0 if it
 * cannot be read. */
size_t resident_bytes(void);

/* Caps the address space at its current size (RLIMIT_AS) and allocates
 * every free block malloc still holds, down to `block` bytes, so that an
 * allocation of `block` bytes or more now fails. Returns what it took, for
 * release_memory. For the main thread of a forked child: other threads
 * allocate from other arenas, and the cap holds for the whole process. */
void *exhaust_memory(size_t block);

/* Frees what exhaust_memory took and lifts the cap again. */
void release_memory(void *hoard);

/* False when a sanitizer's allocator replaces malloc: it aborts rather than
 * fails under the cap, and quarantines what is freed, so the tests of
 * running out of memory and of memory use have nothing to check there. */
bool plain_malloc(void);

/* ASan's runtime (gcc 12) aborts with "CHECK failed: asan_thread.cpp:371"
 * in __asan_handle_no_return when a cancellation that was pending when a
 * cancellation point was called unwinds the thread through its cleanup
 * handlers; one that arrives while the thread sleeps unwinds fine. The
 * tests of the pending case are not registered under ASan; the plain build
 * runs them. */
#if defined(__SANITIZE_ADDRESS__)
#define PENDING_CANCEL_UNWINDS 0
#else
#define PENDING_CANCEL_UNWINDS 1
#endif

#endif /* SYNC_TESTS_UTIL_H */
