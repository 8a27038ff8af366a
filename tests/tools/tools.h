/* Helpers shared by the programs of tests/tools: small user programs that
 * protect or hand over plain data through libsync, run under ThreadSanitizer,
 * Helgrind and DRD by tsan.sh and valgrind.sh. Each program takes one
 * optional argument, a work scale (iterations), so the Valgrind runs stay
 * short. */
#ifndef SYNC_TESTS_TOOLS_H
#define SYNC_TESTS_TOOLS_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sync.h>

/* The programs' own atomics (a published pointer, a stop flag) are
 * invisible to Helgrind and DRD, which know nothing of C11 atomics: as
 * Valgrind's manual asks, such hand-offs are annotated (no-ops outside
 * Valgrind; TSan sees the atomics themselves). */
#if defined(__has_include)
#if __has_include(<valgrind/helgrind.h>)
#include <valgrind/helgrind.h>
#endif
#endif
#ifndef ANNOTATE_HAPPENS_BEFORE
#define ANNOTATE_HAPPENS_BEFORE(p) ((void)(p))
#define ANNOTATE_HAPPENS_AFTER(p) ((void)(p))
#endif

/* Exits 1 (not the tools' exit code) when a call fails or a check is false. */
#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n",        \
				__FILE__, __LINE__, #cond);                \
			exit(1);                                           \
		}                                                          \
	} while (0)

/* The work scale: argv[1] if given, else `dflt`. */
static inline long tools_scale(int argc, char **argv, long dflt)
{
	return argc > 1 ? strtol(argv[1], NULL, 10) : dflt;
}

/* Runs fn(i) in n threads (n <= 16) and joins them. */
static inline void tools_run(int n, void *(*fn)(void *))
{
	pthread_t t[16];
	CHECK(n <= 16);
	for (long i = 0; i < n; i++)
		CHECK(pthread_create(&t[i], NULL, fn, (void *)i) == 0);
	for (int i = 0; i < n; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
}

/* A small deterministic generator (xorshift), one state per thread. */
static inline unsigned tools_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

#endif /* SYNC_TESTS_TOOLS_H */
