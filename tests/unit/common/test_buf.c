/*
 * Tests of src/common/buf.c: the hard cap (ENOBUFS, buffer left intact),
 * string views at their edges, and the checked number, duration and size
 * parsers including overflow.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_append_and_cstr(void **state)
{
	struct buf b;
	char *s;
	size_t len;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(b.max, BUF_MAX_DEFAULT);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_putc(&b, 'd'), 0);
	assert_int_equal(buf_append(&b, "e\0f", 3), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "abcde\0f", 8); /* NUL after len */
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data + 7, "42-x", 5);

	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");

	/* Large printf that must grow the buffer on its second attempt. */
	assert_int_equal(buf_printf(&b, "%5000d", 7), 0);
	assert_int_equal(b.len, 5000);
	assert_int_equal(b.data[4999], '7');
	assert_int_equal(b.data[5000], '\0');

	s = buf_steal(&b, &len);
	assert_non_null(s);
	assert_int_equal(len, 5000);
	assert_int_equal(strlen(s), 5000);
	free(s);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, BUF_MAX_DEFAULT);

	/* Stealing an empty buffer still gives a string to free. */
	s = buf_steal(&b, NULL);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);
}

static void
test_cap(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "12345678"), 0); /* exactly the cap */
	errno = 0;
	assert_int_equal(buf_putc(&b, '9'), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(b.len, 8);
	assert_string_equal(buf_cstr(&b), "12345678");

	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "abcde"), 0);
	errno = 0;
	assert_int_equal(buf_append(&b, "fghi", 4), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_string_equal(buf_cstr(&b), "abcde");

	/* A printf past the cap leaves the contents and terminator as they
	 * were, even though vsnprintf wrote into the spare space. */
	errno = 0;
	assert_int_equal(buf_printf(&b, "%s", "xyzw"), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(b.len, 5);
	assert_string_equal(buf_cstr(&b), "abcde");
	buf_reset(&b); /* clears the error */
	assert_int_equal(buf_puts(&b, "abcde"), 0);
	assert_int_equal(buf_printf(&b, "%s", "xyz"), 0);
	assert_string_equal(buf_cstr(&b), "abcdexyz");

	/* A length that would overflow size_t arithmetic. */
	errno = 0;
	assert_int_equal(buf_append(&b, "", SIZE_MAX), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_true(b.cap <= 9); /* never allocates beyond max + 1 */
	buf_free(&b);
	assert_int_equal(b.max, 8);
	assert_null(b.data);
}

static void
test_strv_basic(void **state)
{
	struct strv v;
	char *d;

	(void)state;
	v = strv_cstr("Hello");
	assert_true(strv_eq(v, "Hello"));
	assert_false(strv_eq(v, "Hell"));
	assert_false(strv_eq(v, "Hello!"));
	assert_true(strv_casceq(v, "hELLO"));
	assert_false(strv_casceq(v, "hELL"));
	assert_true(strv_startswith(v, "He"));
	assert_true(strv_startswith(v, ""));
	assert_false(strv_startswith(v, "Hello!"));
	assert_true(strv_eq(strv_make(NULL, 5), ""));
	assert_true(strv_eq(strv_cstr(NULL), ""));

	/* Views are not NUL-terminated: only len counts. */
	v = strv_make("abcdef", 3);
	assert_true(strv_eq(v, "abc"));
	d = strv_dup(v);
	assert_non_null(d);
	assert_string_equal(d, "abc");
	free(d);
	d = strv_dup(strv_make("", 0));
	assert_non_null(d);
	assert_string_equal(d, "");
	free(d);
}

static void
test_strv_trim(void **state)
{
	struct strv v;

	(void)state;
	v = strv_trim(strv_cstr(" \t\r\n x y \v\f"));
	assert_true(strv_eq(v, "x y"));
	v = strv_trim(strv_cstr("   "));
	assert_int_equal(v.len, 0);
	v = strv_trim(strv_cstr(""));
	assert_int_equal(v.len, 0);
	v = strv_trim(strv_cstr("x"));
	assert_true(strv_eq(v, "x"));
	/* Trimming stays inside the view. */
	v = strv_trim(strv_make("  ab  cd", 5));
	assert_true(strv_eq(v, "ab"));
}

static void
test_strv_split(void **state)
{
	struct strv s, h;

	(void)state;
	s = strv_cstr("a,b,,c");
	h = strv_split(&s, ',');
	assert_true(strv_eq(h, "a"));
	assert_true(strv_eq(s, "b,,c"));
	h = strv_split(&s, ',');
	assert_true(strv_eq(h, "b"));
	h = strv_split(&s, ',');
	assert_true(strv_eq(h, "")); /* empty field between separators */
	h = strv_split(&s, ',');
	assert_true(strv_eq(h, "c"));
	assert_int_equal(s.len, 0);
	h = strv_split(&s, ',');
	assert_int_equal(h.len, 0);
	assert_int_equal(s.len, 0);

	/* Trailing separator leaves an empty rest. */
	s = strv_cstr("k=");
	h = strv_split(&s, '=');
	assert_true(strv_eq(h, "k"));
	assert_int_equal(s.len, 0);

	/* Leading separator gives an empty head. */
	s = strv_cstr("=v");
	h = strv_split(&s, '=');
	assert_int_equal(h.len, 0);
	assert_true(strv_eq(s, "v"));

	/* A separator beyond len is not seen. */
	s = strv_make("ab,cd", 2);
	h = strv_split(&s, ',');
	assert_true(strv_eq(h, "ab"));
	assert_int_equal(s.len, 0);
}

static void
test_to_ll(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(str_to_ll("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(str_to_ll("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	errno = 0;
	assert_int_equal(str_to_ll("11", 0, 10, &v), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(str_to_ll("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(str_to_ll("+5", -10, 10, &v), 0);
	assert_int_equal(v, 5);
	errno = 0;
	assert_int_equal(str_to_ll("-5", 0, 10, &v), -1); /* no sign */
	assert_int_equal(errno, EINVAL);
	assert_int_equal(str_to_ll("", 0, 10, &v), -1);
	assert_int_equal(str_to_ll("-", -1, 10, &v), -1);
	assert_int_equal(str_to_ll(" 5", 0, 10, &v), -1);
	assert_int_equal(str_to_ll("5 ", 0, 10, &v), -1);
	assert_int_equal(str_to_ll("5x", 0, 10, &v), -1);
	assert_int_equal(str_to_ll("0x10", 0, 100, &v), -1);
	assert_int_equal(str_to_ll(NULL, 0, 10, &v), -1);

	assert_int_equal(
	    str_to_ll("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(
	    str_to_ll("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MIN);
	errno = 0;
	assert_int_equal(
	    str_to_ll("9223372036854775808", LLONG_MIN, LLONG_MAX, &v), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(
	    str_to_ll("-9223372036854775809", LLONG_MIN, LLONG_MAX, &v), -1);
	assert_int_equal(
	    str_to_ll("99999999999999999999999", LLONG_MIN, LLONG_MAX, &v), -1);

	/* The view version reads only len bytes. */
	assert_int_equal(strv_to_ll(strv_make("123456", 3), 0, 1000, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(strv_to_ll(strv_make("1", 0), 0, 1000, &v), -1);
}

static void
test_duration(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(str_to_duration("90", &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(str_to_duration("30s", &v), 0);
	assert_int_equal(v, 30);
	assert_int_equal(str_to_duration("15m", &v), 0);
	assert_int_equal(v, 900);
	assert_int_equal(str_to_duration("12h", &v), 0);
	assert_int_equal(v, 43200);
	assert_int_equal(str_to_duration("7d", &v), 0);
	assert_int_equal(v, 604800);
	assert_int_equal(str_to_duration("2w", &v), 0);
	assert_int_equal(v, 1209600);

	assert_int_equal(str_to_duration("0", &v), -1); /* must be > 0 */
	assert_int_equal(str_to_duration("0s", &v), -1);
	assert_int_equal(str_to_duration("-5s", &v), -1);
	assert_int_equal(str_to_duration("", &v), -1);
	assert_int_equal(str_to_duration("s", &v), -1);
	assert_int_equal(str_to_duration("5x", &v), -1);
	assert_int_equal(str_to_duration("5 s", &v), -1);
	assert_int_equal(str_to_duration("5ss", &v), -1);
	assert_int_equal(str_to_duration("5S", &v), -1);
	assert_int_equal(str_to_duration("1.5h", &v), -1);
	assert_int_equal(str_to_duration(NULL, &v), -1);

	/* Overflow, both in the number and in the scaling. */
	assert_int_equal(str_to_duration("9223372036854775807", &v), 0);
	errno = 0;
	assert_int_equal(str_to_duration("9223372036854775808", &v), -1);
	assert_int_equal(errno, ERANGE);
	errno = 0;
	assert_int_equal(str_to_duration("15250284452472w", &v), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(str_to_duration("15250284452471w", &v), 0);
}

static void
test_size(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(str_to_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(str_to_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(str_to_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(str_to_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(str_to_size("16M", &v), 0);
	assert_int_equal(v, 16LL << 20);
	assert_int_equal(str_to_size("2G", &v), 0);
	assert_int_equal(v, 2LL << 30);
	assert_int_equal(str_to_size("1T", &v), 0);
	assert_int_equal(v, 1LL << 40);

	assert_int_equal(str_to_size("", &v), -1);
	assert_int_equal(str_to_size("k", &v), -1);
	assert_int_equal(str_to_size("16MB", &v), -1);
	assert_int_equal(str_to_size("-1", &v), -1);
	assert_int_equal(str_to_size("1x", &v), -1);
	errno = 0;
	assert_int_equal(str_to_size("8388608T", &v), -1); /* 2^63 */
	assert_int_equal(errno, ERANGE);
	assert_int_equal(str_to_size("8388607T", &v), 0);
	assert_int_equal(str_to_size("99999999999999999999", &v), -1);
}

static void
test_hex(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
	char out[2 * sizeof(in) + 1];

	(void)state;
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "0001abff7f");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

/* Errors stick (curl's dynbuf): after one failed append every later one
 * fails too, so a dropped middle piece cannot pass unnoticed; buf_ok and
 * buf_steal report it. */
static void
test_sticky(void **state)
{
	struct buf b;
	size_t len;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "ab"), 0);
	assert_int_equal(buf_ok(&b), 0);
	assert_int_equal(buf_puts(&b, "0123456789"), -1); /* past the cap */
	errno = 0;
	assert_int_equal(buf_puts(&b, "c"), -1); /* would fit, but poisoned */
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(buf_putc(&b, 'd'), -1);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	assert_int_equal(buf_append(&b, "e", 1), -1);
	assert_int_equal(buf_ok(&b), -1);
	assert_null(buf_steal(&b, &len));
	/* A builder that leaves a failed piece out rolls back and goes on. */
	assert_int_equal(buf_puts(&b, "ab"), 0);
	assert_int_equal(buf_puts(&b, "0123456789"), -1);
	buf_setlen(&b, 1);
	assert_int_equal(buf_ok(&b), 0);
	assert_int_equal(buf_puts(&b, "c"), 0);
	assert_string_equal(buf_cstr(&b), "ac");
	buf_reset(&b);
	assert_int_equal(buf_ok(&b), 0);
	assert_int_equal(buf_puts(&b, "fine"), 0);
	assert_string_equal(buf_cstr(&b), "fine");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_cstr),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_strv_basic),
	    cmocka_unit_test(test_strv_trim),
	    cmocka_unit_test(test_strv_split),
	    cmocka_unit_test(test_to_ll),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_sticky),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
