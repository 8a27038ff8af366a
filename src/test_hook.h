/* Delay points for regression tests that must widen a race window. They
 * exist only where SYNC_TEST_HOOKS is defined: the stress tests, which build
 * the library's sources themselves. The installed library has none. */
#ifndef SYNC_SRC_TEST_HOOK_H
#define SYNC_SRC_TEST_HOOK_H

#ifdef SYNC_TEST_HOOKS
/* Defined by the test harness (tests/stress/harness.c): calls the function
 * the running test installed, if any, with the point's name. */
void test_hook(const char *point);
#define TEST_HOOK(point) test_hook(point)
#else
#define TEST_HOOK(point) ((void)0)
#endif

#endif /* SYNC_SRC_TEST_HOOK_H */
