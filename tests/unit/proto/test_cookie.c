/*
 * Unit tests of the Cookie header parser: finding a cookie among others,
 * names that only share a prefix, quotes, blanks, values that do not fit
 * or hold bytes a cookie may not, and headers without a terminating NUL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cookie.h"

static int
get(const char *hdr, const char *name, char *out, size_t n)
{
	return cookie_get(hdr, strlen(hdr), name, out, n);
}

static void
test_found(void **state)
{
	char v[32];

	(void)state;
	assert_int_equal(get("s=abc", "s", v, sizeof(v)), 3);
	assert_string_equal(v, "abc");
	assert_int_equal(get("a=1; s=xyz; b=2", "s", v, sizeof(v)), 3);
	assert_string_equal(v, "xyz");
	assert_int_equal(get("a=1;s=q;b=2", "s", v, sizeof(v)), 1);
	assert_string_equal(v, "q");
	assert_int_equal(get("ss=1; s=2", "s", v, sizeof(v)), 1);
	assert_string_equal(v, "2");
	assert_int_equal(get("s=\"quoted\"", "s", v, sizeof(v)), 6);
	assert_string_equal(v, "quoted");
	assert_int_equal(get("s=first; s=second", "s", v, sizeof(v)), 5);
	assert_string_equal(v, "first");
	assert_int_equal(get("  s=pad  ", "s", v, sizeof(v)), 3);
	assert_string_equal(v, "pad");
	assert_int_equal(get("s=", "s", v, sizeof(v)), 0);
	assert_string_equal(v, "");
}

static void
test_refused(void **state)
{
	char v[8];

	(void)state;
	assert_int_equal(get("", "s", v, sizeof(v)), -1);
	assert_int_equal(get("a=1; b=2", "s", v, sizeof(v)), -1);
	assert_int_equal(get("xs=1", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=12345678", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=a b", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=a\"b", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=a\\b", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=a,b", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=\x01", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=\xc3\xa9", "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=1", "", v, sizeof(v)), -1);
	assert_int_equal(cookie_get(NULL, 0, "s", v, sizeof(v)), -1);
	assert_int_equal(get("s=1", "s", v, 0), -1);
}

static void
test_bounded(void **state)
{
	char v[8];
	const char hdr[] = {'s', '=', 'a', 'b', 'c', 'd'}; /* no NUL */

	(void)state;
	assert_int_equal(cookie_get(hdr, 4, "s", v, sizeof(v)), 2);
	assert_string_equal(v, "ab");
	assert_int_equal(cookie_get(hdr, sizeof(hdr), "s", v, sizeof(v)), 4);
	assert_string_equal(v, "abcd");
	assert_int_equal(cookie_get(hdr, 2, "s", v, sizeof(v)), 0);
	assert_int_equal(cookie_get(hdr, 1, "s", v, sizeof(v)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_found),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
