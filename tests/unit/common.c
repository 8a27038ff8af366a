/* Unit tests for <sync/common.h>: sync_version and sync_deadline. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sync.h>

#include "tap_main.h"

START_TEST(version_string_matches_macros)
{
	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", SYNC_VERSION_MAJOR,
		 SYNC_VERSION_MINOR, SYNC_VERSION_PATCH);
	ck_assert_str_eq(sync_version(), want);
}
END_TEST

START_TEST(deadline_is_normalised_and_in_the_future)
{
	struct timespec before, d;
	clock_gettime(CLOCK_MONOTONIC, &before);
	d = sync_deadline(1500000000u);
	ck_assert_int_ge(d.tv_nsec, 0);
	ck_assert_int_lt(d.tv_nsec, 1000000000L);
	long long ns = (long long)(d.tv_sec - before.tv_sec) * 1000000000LL +
		       (d.tv_nsec - before.tv_nsec);
	ck_assert_int_ge(ns, 1500000000LL);
	ck_assert_int_lt(ns, 2500000000LL);
}
END_TEST

START_TEST(deadline_saturates_instead_of_overflowing)
{
	struct timespec d = sync_deadline(UINT64_MAX);
	ck_assert_int_gt(d.tv_sec, 0);
	ck_assert_int_ge(d.tv_nsec, 0);
	ck_assert_int_lt(d.tv_nsec, 1000000000L);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("common");
	tcase_add_test(tc, version_string_matches_macros);
	tcase_add_test(tc, deadline_is_normalised_and_in_the_future);
	tcase_add_test(tc, deadline_saturates_instead_of_overflowing);
	suite_add_tcase(s, tc);
	return s;
}
