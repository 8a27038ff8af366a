# ---- Data-race detectors on users' programs (tests/tools) ----------------
# Included by Makefile.am. TAP scripts compile the small programs of
# tests/tools, which protect or hand over plain data through libsync, with
# -fsanitize=thread (gcc, clang) or plainly (Helgrind, DRD), link them with
# the built, uninstrumented libsync.so as users do, and check what the tools
# report (see tests/tools/tsan.sh and valgrind.sh). They skip in sanitizer
# builds of the library, which they recognise from CFLAGS or `nm -D`.
tools_programs = \
	tests/tools/cond_buffer.c \
	tests/tools/epoch_config.c \
	tests/tools/lock_order.c \
	tests/tools/map_counters.c \
	tests/tools/map_wordcount.c \
	tests/tools/mutex_bank.c \
	tests/tools/queue_bounded_pool.c \
	tests/tools/queue_pool.c \
	tests/tools/race_unprotected.c \
	tests/tools/robust_recovery.c \
	tests/tools/rwlock_config.c \
	tests/tools/sem_pool.c \
	tests/tools/spinlocks.c \
	tests/tools/tools.h
tools_tests = \
	tests/tools/tsan-gcc.sh \
	tests/tools/tsan-clang.sh \
	tests/tools/helgrind.sh \
	tests/tools/drd.sh

dist_check_SCRIPTS += $(tools_tests) # in TESTS through dist_check_SCRIPTS
EXTRA_DIST += $(tools_programs) tests/tools/common.sh tests/tools/tsan.sh \
	tests/tools/valgrind.sh
AM_TESTS_ENVIRONMENT += \
	SYNC_TOOLS_LIBDIR='$(abs_top_builddir)/.libs'; \
	SYNC_TOOLS_DEFS='$(DEFS)'; export SYNC_TOOLS_LIBDIR SYNC_TOOLS_DEFS;
