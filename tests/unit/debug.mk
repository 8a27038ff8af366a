# ---- Debugging aids (issue 15): SYNC_CHECK and SYNC_PROFILE ---------------
# Included by Makefile.am. The Check suite tests/unit/debug switches the
# lock-order checker on per test (sync_check_set) and reads its reports from
# stderr; its profiler tests run the suite's own binary again with
# SYNC_PROFILE=1 (the profiler is switched on only at load). The example
# examples/deadlock_check is the dining philosophers under the checker.
UNIT_TESTS += tests/unit/debug
tests_unit_debug_SOURCES = tests/unit/debug.c $(unit_common)
tests_unit_debug_CPPFLAGS = $(unit_cppflags)
tests_unit_debug_CFLAGS = $(unit_cflags)
tests_unit_debug_LDADD = $(unit_ldadd)

EXAMPLES += examples/deadlock_check
examples_deadlock_check_CPPFLAGS = $(examples_cppflags)
examples_deadlock_check_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_deadlock_check_LDADD = libsync.la $(PTHREAD_LIBS)

dist_man3_MANS += man/man3/sync_check_set.3 man/man3/sync_profile_print.3
dist_man7_MANS += man/man7/libsync_debug.7
