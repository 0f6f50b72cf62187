/*
 * Tests of src/proto/cursor.c: a cursor survives the round trip; odd or
 * overlong text, non-hex, non-JSON, missing or extra members and values
 * of other types are refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cursor.h"

static int
decode_json(const char *text)
{
	char hex[4200];
	struct cursor c;
	struct buf err;
	int rc;

	hex_encode((const uint8_t *)text, strlen(text), hex);
	buf_init(&err, 1024);
	rc = cursor_decode((const uint8_t *)hex, strlen(hex), &c, &err);
	if (rc == 0)
		cursor_free(&c);
	else
		assert_true(err.len > 0);
	buf_free(&err);
	return rc;
}

static void
test_round_trip(void **state)
{
	json_t *v = json_string("web01"), *k = json_integer(42);
	struct cursor c;
	struct buf err;
	char *s;

	(void)state;
	buf_init(&err, 1024);
	s = cursor_encode("-hostname", v, k);
	assert_non_null(s);
	assert_int_equal(cursor_decode((const uint8_t *)s, strlen(s), &c, &err),
	                 0);
	assert_string_equal(c.sort, "-hostname");
	assert_true(json_equal(c.v, v));
	assert_true(json_equal(c.k, k));
	cursor_free(&c);
	free(s);
	json_decref(v);
	json_decref(k);
	buf_free(&err);
}

static void
test_refused(void **state)
{
	struct cursor c;
	struct buf err;
	char big[CURSOR_MAX_HEX + 3];

	(void)state;
	buf_init(&err, 1024);
	assert_int_equal(cursor_decode((const uint8_t *)"", 0, &c, &err), -1);
	assert_int_equal(cursor_decode((const uint8_t *)"7b7", 3, &c, &err),
	                 -1);
	assert_int_equal(cursor_decode((const uint8_t *)"zz", 2, &c, &err), -1);
	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(
	    cursor_decode((const uint8_t *)big, strlen(big) - 1, &c, &err), -1);
	buf_free(&err);

	assert_int_equal(decode_json("{\"s\":\"id\",\"v\":1,\"k\":\"a\"}"), 0);
	assert_int_equal(decode_json("not json"), -1);
	assert_int_equal(decode_json("[1,2,3]"), -1);
	assert_int_equal(decode_json("{\"s\":\"id\",\"v\":1}"), -1);
	assert_int_equal(decode_json("{\"s\":\"id\",\"v\":1,\"k\":1,\"x\":1}"),
	                 -1);
	assert_int_equal(decode_json("{\"s\":1,\"v\":1,\"k\":1}"), -1);
	assert_int_equal(decode_json("{\"s\":\"id\",\"v\":1.5,\"k\":1}"), -1);
	assert_int_equal(decode_json("{\"s\":\"id\",\"v\":null,\"k\":1}"), -1);
	assert_int_equal(decode_json("{\"s\":\"id\",\"v\":[],\"k\":1}"), -1);
	assert_int_equal(decode_json("{\"s\":\"i\\u0000d\",\"v\":1,\"k\":1}"),
	                 -1);
	assert_int_equal(
	    decode_json("{\"s\":\"id\",\"s\":\"x\",\"v\":1,\"k\":1}"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
