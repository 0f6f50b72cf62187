/*
 * Unit tests of the cron parser: fields, ranges, steps, lists, the
 * shorthands, the day-of-month / day-of-week rule, and refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/center/cron.c"

/* 2026-11-23 is a Monday. */
#define MON_1430 1795444200LL /* 2026-11-23 14:30:00 UTC */

static int
m(const char *spec, long long t)
{
	struct cron c;
	struct buf err;
	int rc;

	buf_init(&err, 1024);
	assert_int_equal(cron_parse(spec, &c, &err), 0);
	rc = cron_match(&c, t);
	buf_free(&err);
	return rc;
}

static void
test_match(void **state)
{
	(void)state;
	assert_true(m("* * * * *", MON_1430));
	assert_true(m("30 14 * * *", MON_1430));
	assert_false(m("31 14 * * *", MON_1430));
	assert_true(m("*/15 * * * *", MON_1430));
	assert_false(m("*/7 * * * *", MON_1430));
	assert_true(m("0-59/10 9-17 * * 1-5", MON_1430));
	assert_false(m("0-59/10 9-17 * * 0,6", MON_1430));
	assert_true(m("30 14 23 11 *", MON_1430));
	assert_false(m("30 14 24 11 *", MON_1430));
	/* Both day fields restricted: either matches. */
	assert_true(m("30 14 1 * 1", MON_1430));
	assert_false(m("30 14 1 * 2", MON_1430));
	/* 7 is Sunday. */
	assert_true(m("0 0 * * 7", MON_1430 - 14 * 3600 - 1800 - 86400));
	assert_true(m("@hourly", MON_1430 - 1800));
	assert_false(m("@daily", MON_1430));
	assert_true(m("@daily", MON_1430 - 14 * 3600 - 1800));
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {"",
	                                  "* * * *",
	                                  "* * * * * *",
	                                  "60 * * * *",
	                                  "* 24 * * *",
	                                  "* * 0 * *",
	                                  "* * * 13 *",
	                                  "* * * * 8",
	                                  "5-1 * * * *",
	                                  "*/0 * * * *",
	                                  "a * * * *",
	                                  "1,,2 * * * *",
	                                  "@yearlyish",
	                                  NULL};
	struct cron c;
	struct buf err;
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		buf_init(&err, 1024);
		if (cron_parse(bad[i], &c, &err) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(err.len > 0);
		buf_free(&err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
