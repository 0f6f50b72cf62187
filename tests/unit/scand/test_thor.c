/*
 * Tests of src/scand/thor.c: findings in THOR's JSON log v3 from the
 * engine's neutral result. Matched bytes as THOR renders them (text,
 * UTF-16 text, one code point per byte), references as lists, fields as
 * JSON pointers that resolve in the subject, and a finding rendered from
 * a real scan with every THOR field in its place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "thor.c"

static void
assert_json_str(json_t *j, const char *want, size_t n)
{
	assert_non_null(j);
	assert_int_equal(json_string_length(j), n);
	assert_memory_equal(json_string_value(j), want, n);
	json_decref(j);
}

static void
test_match_data(void **state)
{
	(void)state;
	/* printable text as it is (CR, LF, tab included) */
	assert_json_str(thor_match_json((const uint8_t *)"a\tb\\c\"", 6),
	                "a\tb\\c\"", 6);
	/* UTF-16LE text, with a byte order mark or shifted by a NUL */
	assert_json_str(thor_match_json((const uint8_t *)"e\0v\0i\0l\0", 8),
	                "evil", 4);
	assert_json_str(thor_match_json((const uint8_t *)"\xff\xfe"
	                                                 "a\0b\0",
	                                6),
	                "ab", 2);
	assert_json_str(thor_match_json((const uint8_t *)"\0x\0y\0", 5), "xy",
	                2);
	/* anything else: one code point per byte, U+0000..U+00FF */
	assert_json_str(thor_match_json((const uint8_t *)"\0\xff"
	                                                 "A",
	                                3),
	                "\0\xc3\xbf"
	                "A",
	                4);
	assert_json_str(thor_match_json((const uint8_t *)"\xc3\xa9", 2),
	                "\xc3\x83\xc2\xa9", 4);
	assert_json_str(thor_bytes_json((const uint8_t *)"\x7f\x80", 2),
	                "\x7f\xc2\x80", 3);
}

static void
test_reference_and_fields(void **state)
{
	json_t *a;

	(void)state;
	a = thor_reference_json("https://a.invalid/x, https://b.invalid/y,,");
	assert_non_null(a);
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_array_get(a, 1)),
	                    "https://b.invalid/y");
	json_decref(a);
	a = thor_reference_json("Internal Research");
	assert_string_equal(json_string_value(json_array_get(a, 0)),
	                    "Internal Research");
	json_decref(a);
	assert_null(thor_reference_json(" , "));
	assert_null(thor_reference_json(NULL));
	assert_string_equal(thor_field_pointer("content"), "/content");
	assert_string_equal(thor_field_pointer("md5"), "/hashes/md5");
	assert_string_equal(thor_field_pointer("path"), "/path");
	assert_null(thor_field_pointer("other"));
}

/* The value a JSON pointer names in o, or NULL. */
static json_t *
resolve(json_t *o, const char *ptr)
{
	char tok[64];
	const char *s = ptr, *e;

	assert_true(ptr[0] == '/');
	while (o != NULL && *s == '/') {
		s++;
		e = strchr(s, '/');
		if (e == NULL)
			e = s + strlen(s);
		assert_true((size_t)(e - s) < sizeof(tok));
		memcpy(tok, s, (size_t)(e - s));
		tok[e - s] = '\0';
		o = json_object_get(o, tok);
		s = e;
	}
	return o;
}

static void
test_render(void **state)
{
	const char *data = getenv("VIGIL_TEST_DATA");
	char y[4096], i[4096];
	const char *paths[2] = {y, i};
	static const char sample[] = "x VIGIL-TEST-MARKER-7d1f3a y "
	                             "VIGIL-HASH-SAMPLE-MD5";
	struct scan_bundle *b = NULL;
	struct scan_ctx *c = NULL;
	struct scan_result r;
	struct buf err;
	json_t *n, *out, *f, *s, *sig, *m, *rs;
	size_t k, q;

	(void)state;
	assert_non_null(data);
	snprintf(y, sizeof(y), "%s/scan/markers.yar", data);
	snprintf(i, sizeof(i), "%s/scan/markers.ioc", data);
	buf_init(&err, 65536);
	assert_int_equal(scan_bundle_load(paths, 2, &b, &err), 0);
	buf_free(&err);
	assert_int_equal(scan_ctx_new(b, NULL, &c), 0);
	assert_int_equal(scan_mem(c, (const uint8_t *)sample,
	                          sizeof(sample) - 1, "C:\\Temp\\abcdefgh.ps1",
	                          &r),
	                 0);
	assert_non_null(n = scan_result_to_json(&r));
	assert_non_null(
	    out = thor_render(n, "C:\\Temp\\abcdefgh.ps1", "host-a", 42));
	assert_int_equal(json_array_size(out), 1);
	f = json_array_get(out, 0);
	assert_string_equal(json_string_value(json_object_get(f, "type")),
	                    "THOR finding");
	assert_true(json_is_null(json_object_get(f, "context")));
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(f, "meta"), "scan_id")),
	                    "42");
	s = json_object_get(f, "subject");
	assert_string_equal(json_string_value(json_object_get(s, "exists")),
	                    "yes");
	assert_string_equal(json_string_value(json_object_get(s, "path")),
	                    "C:\\Temp\\abcdefgh.ps1");
	assert_string_equal(
	    json_string_value(json_object_get(s, "magic_header")), "UNKNOWN");
	assert_true(json_is_null(json_object_get(s, "permissions")));
	rs = json_object_get(f, "reasons");
	assert_int_equal(json_integer_value(json_object_get(f, "reason_count")),
	                 json_array_size(rs));
	json_array_foreach(rs, k, m)
	{
		json_t *mt;

		sig = json_object_get(m, "signature");
		assert_non_null(
		    json_string_value(json_object_get(sig, "origin")));
		if (strcmp(json_string_value(json_object_get(sig, "kind")),
		           "Filename IOC") == 0)
			assert_string_equal(json_string_value(json_object_get(
			                        sig, "rule_name")),
			                    "\\\\Temp\\\\[a-z]{8}\\.ps1$");
		if (strcmp(json_string_value(json_object_get(sig, "kind")),
		           "YARA Rule") == 0) {
			assert_string_equal(
			    json_string_value(json_array_get(
			        json_object_get(sig, "reference"), 0)),
			    "https://example.invalid/vigil/test-marker");
			assert_string_equal(
			    json_string_value(json_object_get(sig, "date")),
			    "2024-01-01");
		}
		json_array_foreach(json_object_get(m, "matched"), q, mt)
		{
			/* jsonlog resolves each pointer in the subject */
			assert_non_null(resolve(
			    s,
			    json_string_value(json_object_get(mt, "field"))));
		}
	}
	json_decref(out);
	json_decref(n);
	scan_result_free(&r);
	scan_ctx_free(c);
	scan_bundle_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match_data),
	    cmocka_unit_test(test_reference_and_fields),
	    cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
