/*
 * Unit tests of the request body checker (src/center/schema.c): unknown
 * members, wrong types and missing required members are named; a body
 * that fits passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/center/schema.c"

static const struct schema_field fields[] = {
    {"name", SCH_STRING, 1},  {"uses", SCH_INT, 0},
    {"on", SCH_BOOL, 0},      {"labels", SCH_OBJECT, 0},
    {"paths", SCH_ARRAY, 0},  {"expires", SCH_DURATION, 0},
    {"value", SCH_SCALAR, 0}, {NULL, 0, 0},
};

/* The field named for body, or "OK". */
static const char *
check(const char *text)
{
	static char out[128];
	const char *field = NULL;
	struct buf msg;
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

	assert_non_null(j);
	buf_init(&msg, 4096);
	if (schema_validate(j, fields, &field, &msg) == 0)
		snprintf(out, sizeof(out), "OK");
	else {
		snprintf(out, sizeof(out), "%s", field);
		/* the message starts with the field, then why */
		if (*field != '\0')
			assert_int_equal(
			    strncmp(buf_cstr(&msg), field, strlen(field)), 0);
	}
	buf_free(&msg);
	json_decref(j);
	return out;
}

static void
test_passes(void **state)
{
	(void)state;
	assert_string_equal(check("{\"name\": \"x\"}"), "OK");
	assert_string_equal(
	    check("{\"name\": \"x\", \"uses\": 3, \"on\": false, \"labels\": "
	          "{}, \"paths\": [], \"expires\": \"7d\", \"value\": 1}"),
	    "OK");
	assert_string_equal(check("{\"name\": \"x\", \"expires\": 60}"), "OK");
	assert_string_equal(check("{\"name\": \"x\", \"value\": true}"), "OK");
}

static void
test_refused(void **state)
{
	(void)state;
	assert_string_equal(check("{\"name\": \"x\", \"colour\": 1}"),
	                    "colour");
	assert_string_equal(check("{}"), "name");
	assert_string_equal(check("{\"name\": 1}"), "name");
	assert_string_equal(check("{\"name\": \"x\", \"uses\": \"3\"}"),
	                    "uses");
	assert_string_equal(check("{\"name\": \"x\", \"uses\": 1.0}"), "uses");
	assert_string_equal(check("{\"name\": \"x\", \"on\": 1}"), "on");
	assert_string_equal(check("{\"name\": \"x\", \"labels\": []}"),
	                    "labels");
	assert_string_equal(check("{\"name\": \"x\", \"paths\": {}}"), "paths");
	assert_string_equal(check("{\"name\": \"x\", \"expires\": null}"),
	                    "expires");
	assert_string_equal(check("{\"name\": \"x\", \"value\": {}}"), "value");
	assert_string_equal(check("[1]"), "");
	assert_string_equal(check("\"x\""), "");
}

static void
test_no_fields(void **state)
{
	static const struct schema_field none[] = {{NULL, 0, 0}};
	const char *field = NULL;
	struct buf msg;
	json_t *j = json_pack("{s:i}", "x", 1), *e = json_object();

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(schema_validate(e, none, &field, &msg), 0);
	assert_int_equal(schema_validate(j, none, &field, &msg), -1);
	assert_string_equal(field, "x");
	assert_non_null(strstr(buf_cstr(&msg), "known: none"));
	buf_free(&msg);
	json_decref(j);
	json_decref(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_passes),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_no_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
