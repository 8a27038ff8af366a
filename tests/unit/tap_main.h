/* Shared main() for the Check unit suites: TAP on stdout, one line per test
 * case, so automake's TAP driver counts every behaviour. A suite file defines
 * `static Suite *suite(void)` and then includes this header. */
#ifndef SYNC_TESTS_TAP_MAIN_H
#define SYNC_TESTS_TAP_MAIN_H

#include <check.h>
#include <stdlib.h>

static Suite *suite(void);

int main(void)
{
	SRunner *runner = srunner_create(suite());
	srunner_set_tap(runner, "-");
	srunner_run_all(runner, CK_SILENT);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* SYNC_TESTS_TAP_MAIN_H */
