/*
 * Tests of src/proto/enroll.c: a valid body, and each kind of bad field
 * (type, length, control characters, addresses, ids, unknown and missing
 * fields) rejected with a message that names it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "enroll.h"

#define CSR                                                                    \
	"-----BEGIN CERTIFICATE REQUEST-----\nMIIBAzCBqgIBADBIMQswCQYDVQQ=\n"  \
	"-----END CERTIFICATE REQUEST-----\n"

/* A valid enroll body as a jansson object, for tests to modify. */
static json_t *
valid_body(void)
{
	json_t *b;

	b = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:[s, s], "
	              "s:[s], s:s, s:s}}",
	              "token", "tok-0123456789abcdef", "csr", CSR, "facts",
	              "hostname", "web01", "fqdn", "web01.example.org", "os",
	              "Debian GNU/Linux 12 (bookworm)", "kernel",
	              "6.1.0-18-amd64", "arch", "x86_64", "ips", "192.0.2.10",
	              "2001:db8::1", "macs", "52:54:00:12:34:56", "machine_id",
	              "0123456789ABCDEF0123456789abcdef", "agent_version",
	              "0.1.0");
	assert_non_null(b);
	return b;
}

/* Runs enroll_parse on obj (consumed); returns its result, msg in err. */
static int
parse_obj(json_t *obj, struct enroll_req *r, struct buf *err)
{
	char *s;
	int rc;

	s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	assert_non_null(s);
	buf_init(err, 4096);
	rc = enroll_parse((const uint8_t *)s, strlen(s), r, err);
	free(s);
	return rc;
}

/* Expects obj to be rejected with exactly msg. */
static void
expect_error(json_t *obj, const char *msg)
{
	struct enroll_req r;
	struct buf err;

	assert_int_equal(parse_obj(obj, &r, &err), -1);
	assert_string_equal(buf_cstr(&err), msg);
	/* A failed parse leaves nothing behind to free. */
	assert_null(r.token);
	assert_null(r.csr);
	assert_null(r.facts.hostname);
	assert_int_equal(r.facts.nips, 0);
	enroll_req_free(&r);
	buf_free(&err);
}

static json_t *
facts_of(json_t *body)
{
	return json_object_get(body, "facts");
}

static void
test_valid(void **state)
{
	struct enroll_req r;
	struct buf err;

	(void)state;
	assert_int_equal(parse_obj(valid_body(), &r, &err), 0);
	assert_string_equal(buf_cstr(&err), "");
	assert_string_equal(r.token, "tok-0123456789abcdef");
	assert_string_equal(r.csr, CSR);
	assert_string_equal(r.facts.hostname, "web01");
	assert_string_equal(r.facts.fqdn, "web01.example.org");
	assert_string_equal(r.facts.os, "Debian GNU/Linux 12 (bookworm)");
	assert_string_equal(r.facts.kernel, "6.1.0-18-amd64");
	assert_string_equal(r.facts.arch, "x86_64");
	assert_string_equal(r.facts.agent_version, "0.1.0");
	/* Ids are stored in one spelling for comparison. */
	assert_string_equal(r.facts.machine_id,
	                    "0123456789abcdef0123456789abcdef");
	assert_int_equal(r.facts.nips, 2);
	assert_string_equal(r.facts.ips[0], "192.0.2.10");
	assert_string_equal(r.facts.ips[1], "2001:db8::1");
	assert_int_equal(r.facts.nmacs, 1);
	assert_string_equal(r.facts.macs[0], "52:54:00:12:34:56");
	enroll_req_free(&r);
	assert_null(r.csr);
	enroll_req_free(&r); /* idempotent */
	buf_free(&err);
}

static void
test_minimal_and_optional(void **state)
{
	struct enroll_req r;
	struct buf err;
	const char *body =
	    "{\"token\": null, \"csr\": \"x\", \"facts\": {\"hostname\": \"h\","
	    " \"machine_id\": \"123e4567-E89B-12d3-a456-426614174000\","
	    " \"ips\": [\"fe80::1%eth0\", \"10.0.0.1\"], \"macs\": [],"
	    " \"os\": \"Ubuntu \\u00e9\"}}";

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(
	    enroll_parse((const uint8_t *)body, strlen(body), &r, &err), 0);
	assert_null(r.token); /* re-enrollment: no token */
	assert_string_equal(r.facts.machine_id,
	                    "123e4567-e89b-12d3-a456-426614174000");
	assert_null(r.facts.fqdn);
	assert_string_equal(r.facts.os, "Ubuntu \xc3\xa9");
	assert_string_equal(r.facts.ips[0], "fe80::1%eth0");
	assert_int_equal(r.facts.nmacs, 0);
	enroll_req_free(&r);
	buf_free(&err);
}

static void
test_bad_json(void **state)
{
	static const char *const bodies[] = {
	    "",     "{",
	    "[]",   "\"csr\"",
	    "null", "{\"csr\": \"a\",}",
	    "{} x", "{\"csr\": \"a\\u0000b\"}",
	};
	struct enroll_req r;
	struct buf err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		buf_init(&err, 4096);
		assert_int_equal(enroll_parse((const uint8_t *)bodies[i],
		                              strlen(bodies[i]), &r, &err),
		                 -1);
		assert_true(strncmp(buf_cstr(&err), "body: ", 6) == 0);
		assert_null(strchr(buf_cstr(&err), '\n'));
		buf_free(&err);
	}
	/* Not NUL-terminated: the parser must stop at len. */
	buf_init(&err, 4096);
	assert_int_equal(
	    enroll_parse((const uint8_t *)"{}garbage", 2, &r, &err), -1);
	assert_string_equal(buf_cstr(&err), "csr: missing");
	buf_free(&err);
	buf_init(&err, 4096);
	assert_int_equal(enroll_parse(NULL, 0, &r, &err), -1);
	buf_free(&err);
}

static void
test_duplicate_key(void **state)
{
	const char *body = "{\"csr\": \"a\", \"csr\": \"b\", \"facts\": {}}";
	struct enroll_req r;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(
	    enroll_parse((const uint8_t *)body, strlen(body), &r, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "duplicate"));
	buf_free(&err);
}

static void
test_missing(void **state)
{
	json_t *b;

	(void)state;
	b = valid_body();
	json_object_del(b, "csr");
	expect_error(b, "csr: missing");

	b = valid_body();
	json_object_del(b, "facts");
	expect_error(b, "facts: missing");

	b = valid_body();
	json_object_del(facts_of(b), "hostname");
	expect_error(b, "facts.hostname: missing");

	b = valid_body();
	json_object_del(facts_of(b), "machine_id");
	expect_error(b, "facts.machine_id: missing");
}

static void
test_types(void **state)
{
	json_t *b;

	(void)state;
	b = valid_body();
	json_object_set_new(b, "csr", json_integer(5));
	expect_error(b, "csr: must be a string");

	b = valid_body();
	json_object_set_new(b, "token", json_true());
	expect_error(b, "token: must be a string");

	b = valid_body();
	json_object_set_new(b, "facts", json_string("x"));
	expect_error(b, "facts: must be an object");

	b = valid_body();
	json_object_set_new(facts_of(b), "os", json_null());
	expect_error(b, "facts.os: must be a string");

	b = valid_body();
	json_object_set_new(facts_of(b), "ips", json_string("10.0.0.1"));
	expect_error(b, "facts.ips: must be an array of strings");

	b = valid_body();
	json_array_append_new(json_object_get(facts_of(b), "macs"),
	                      json_integer(1));
	expect_error(b, "facts.macs[1]: must be a string");

	b = valid_body();
	json_object_set_new(facts_of(b), "hostname", json_string(""));
	expect_error(b, "facts.hostname: must not be empty");

	b = valid_body();
	json_object_set_new(b, "csr", json_string(""));
	expect_error(b, "csr: must not be empty");
}

static void
test_unknown(void **state)
{
	json_t *b;

	(void)state;
	b = valid_body();
	json_object_set_new(b, "admin", json_true());
	expect_error(b, "admin: unknown field");

	b = valid_body();
	json_object_set_new(facts_of(b), "uid", json_integer(0));
	expect_error(b, "facts.uid: unknown field");

	/* A hostile key is echoed only in a bounded, printable form. */
	b = valid_body();
	json_object_set_new(
	    facts_of(b),
	    "evil\n\x1b[31mkey-that-goes-on-and-on-and-on-and-on-and-on-and-"
	    "on-and-on-and-on",
	    json_integer(0));
	expect_error(b, "facts.evil??[31mkey-that-goes-on-and-on-and-on-and-"
	                "on-and-on-and-on...: unknown field");
}

static void
test_lengths(void **state)
{
	char big[ENROLL_MAX_CSR + 2];
	json_t *b;

	(void)state;
	memset(big, 'a', sizeof(big));

	/* Exactly at each limit is fine... */
	b = valid_body();
	json_object_set_new(facts_of(b), "hostname",
	                    json_stringn(big, FACT_MAX_STR));
	json_object_set_new(b, "token", json_stringn(big, ENROLL_MAX_TOKEN));
	json_object_set_new(b, "csr", json_stringn(big, ENROLL_MAX_CSR));
	{
		struct enroll_req r;
		struct buf err;

		assert_int_equal(parse_obj(b, &r, &err), 0);
		assert_int_equal(strlen(r.facts.hostname), FACT_MAX_STR);
		enroll_req_free(&r);
		buf_free(&err);
	}

	/* ...one byte more is not. */
	b = valid_body();
	json_object_set_new(facts_of(b), "kernel",
	                    json_stringn(big, FACT_MAX_STR + 1));
	expect_error(b, "facts.kernel: too long (257 bytes, at most 256)");

	b = valid_body();
	json_object_set_new(b, "token",
	                    json_stringn(big, ENROLL_MAX_TOKEN + 1));
	expect_error(b, "token: too long (129 bytes, at most 128)");

	b = valid_body();
	json_object_set_new(b, "csr", json_stringn(big, ENROLL_MAX_CSR + 1));
	expect_error(b, "csr: too long (8193 bytes, at most 8192)");
}

static void
test_too_many_addrs(void **state)
{
	json_t *b, *arr;
	char ip[32];
	int i;

	(void)state;
	b = valid_body();
	arr = json_array();
	for (i = 0; i < FACT_MAX_ADDRS; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		json_array_append_new(arr, json_string(ip));
	}
	json_object_set(facts_of(b), "ips", arr);
	{
		struct enroll_req r;
		struct buf err;

		assert_int_equal(parse_obj(json_deep_copy(b), &r, &err), 0);
		assert_int_equal(r.facts.nips, FACT_MAX_ADDRS);
		enroll_req_free(&r);
		buf_free(&err);
	}
	json_array_append_new(arr, json_string("10.1.0.0"));
	json_decref(arr);
	expect_error(b, "facts.ips: too many entries (65, at most 64)");

	b = valid_body();
	arr = json_array();
	for (i = 0; i < 1000; i++)
		json_array_append_new(arr, json_string("52:54:00:12:34:56"));
	json_object_set_new(facts_of(b), "macs", arr);
	expect_error(b, "facts.macs: too many entries (1000, at most 64)");
}

static void
test_bad_addresses(void **state)
{
	static const char *const bad_ips[] = {
	    "",
	    "1.2.3",
	    "256.1.1.1",
	    "1.2.3.4 ",
	    " 1.2.3.4",
	    "::g",
	    "1.2.3.4%eth0",
	    "fe80::1%",
	    "fe80::1%eth 0",
	    "fe80::1%abcdefghijklmnop",
	    "web01",
	    "1.2.3.4/24",
	    "01.2.3.4",
	};
	static const char *const bad_macs[] = {
	    "",
	    "52:54:00:12:34",
	    "52:54:00:12:34:56:78",
	    "52-54-00-12-34-56",
	    "5254.0012.3456",
	    "52:54:00:12:34:5g",
	    "52:54:00:12:34:5",
	    ":52:54:00:12:34:5",
	};
	static const char *const bad_ids[] = {
	    "0123456789abcdef0123456789abcde",        /* 31 */
	    "0123456789abcdef0123456789abcdeg",       /* not hex */
	    "123e4567-e89b-12d3-a456_426614174000",   /* bad dash */
	    "123e4567-e89b-12d3-a456-42661417400",    /* short UUID */
	    "{123e4567-e89b-12d3-a456-426614174000}", /* braces */
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
	};
	char want[128];
	json_t *b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++) {
		b = valid_body();
		json_array_append_new(json_object_get(facts_of(b), "ips"),
		                      json_string(bad_ips[i]));
		expect_error(b, bad_ips[i][0] == '\0'
		                    ? "facts.ips[2]: must not be empty"
		                    : "facts.ips[2]: not an IP address");
	}
	for (i = 0; i < sizeof(bad_macs) / sizeof(bad_macs[0]); i++) {
		b = valid_body();
		json_array_insert_new(json_object_get(facts_of(b), "macs"), 0,
		                      json_string(bad_macs[i]));
		snprintf(want, sizeof(want), "%s",
		         bad_macs[i][0] == '\0'
		             ? "facts.macs[0]: must not be empty"
		             : "facts.macs[0]: not a MAC address "
		               "(aa:bb:cc:dd:ee:ff)");
		expect_error(b, want);
	}
	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		b = valid_body();
		json_object_set_new(facts_of(b), "machine_id",
		                    json_string(bad_ids[i]));
		expect_error(
		    b, "facts.machine_id: must be 32-64 hex digits or a UUID");
	}
}

static void
test_control_chars(void **state)
{
	json_t *b;

	(void)state;
	b = valid_body();
	json_object_set_new(facts_of(b), "hostname", json_string("web\n01"));
	expect_error(b, "facts.hostname: contains control characters");

	b = valid_body();
	json_object_set_new(facts_of(b), "os", json_string("x\x7fy"));
	expect_error(b, "facts.os: contains control characters");

	/* C1 controls (U+0085 NEL here) are control characters too. */
	b = valid_body();
	json_object_set_new(facts_of(b), "os", json_string("x\xc2\x85y"));
	expect_error(b, "facts.os: contains control characters");

	b = valid_body();
	json_object_set_new(facts_of(b), "fqdn", json_string("a\tb"));
	expect_error(b, "facts.fqdn: contains control characters");

	/* PEM may hold line breaks, but nothing else below space. */
	b = valid_body();
	json_object_set_new(b, "csr", json_string("-----BEGIN\r\nx\x01"));
	expect_error(b, "csr: contains control characters or non-ASCII bytes");

	b = valid_body();
	json_object_set_new(b, "token", json_string("abc def"));
	expect_error(b,
	             "token: contains control characters or non-ASCII bytes");

	b = valid_body();
	json_object_set_new(b, "token", json_string("abc\xc3\xa9"));
	expect_error(b,
	             "token: contains control characters or non-ASCII bytes");
}

static void
test_heartbeat(void **state)
{
	const char *ok = "{\"facts\": {\"hostname\": \"h\", \"machine_id\": "
	                 "\"0123456789abcdef0123456789abcdef\"}}";
	const char *extra = "{\"facts\": {\"hostname\": \"h\", \"machine_id\": "
	                    "\"0123456789abcdef0123456789abcdef\"}, "
	                    "\"csr\": \"x\"}";
	const char *bad = "{\"facts\": {\"hostname\": \"h\", \"machine_id\": "
	                  "\"0123456789abcdef0123456789abcdef\", "
	                  "\"ips\": [\"1.2.3.4\", \"x\"]}}";
	struct host_facts f;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(
	    heartbeat_parse((const uint8_t *)ok, strlen(ok), &f, &err), 0);
	assert_string_equal(f.hostname, "h");
	host_facts_free(&f);
	assert_null(f.hostname);

	assert_int_equal(
	    heartbeat_parse((const uint8_t *)extra, strlen(extra), &f, &err),
	    -1);
	assert_string_equal(buf_cstr(&err), "csr: unknown field");
	buf_reset(&err);

	assert_int_equal(
	    heartbeat_parse((const uint8_t *)bad, strlen(bad), &f, &err), -1);
	assert_string_equal(buf_cstr(&err), "facts.ips[1]: not an IP address");
	assert_int_equal(f.nips, 0);
	buf_reset(&err);

	assert_int_equal(heartbeat_parse((const uint8_t *)"{}", 2, &f, &err),
	                 -1);
	assert_string_equal(buf_cstr(&err), "facts: missing");
	buf_free(&err);
}

/* A heartbeat larger than the parser's block on the stack (16 KiB of
 * jansson's allocations; the rest come from malloc): every value comes out
 * whole, and the caller frees it all with host_facts_free. */
static void
test_heartbeat_large(void **state)
{
	struct host_facts f;
	struct buf body, err;
	char want[64];
	size_t i;

	(void)state;
	buf_init(&body, 65536);
	buf_init(&err, 4096);
	buf_puts(&body, "{\"facts\": {\"hostname\": \"big\", \"machine_id\": "
	                "\"0123456789abcdef0123456789abcdef\", \"ips\": [");
	for (i = 0; i < FACT_MAX_ADDRS; i++)
		buf_printf(&body, "%s\"10.0.%zu.%zu\"", i ? ", " : "", i / 250,
		           i % 250 + 1);
	buf_puts(&body, "]}, \"updates\": {\"rules\": [");
	for (i = 0; i < 200; i++)
		buf_printf(&body,
		           "%s{\"name\": \"rules/r%04zu.yar\", \"version\": "
		           "\"1.%zu\", \"sha256\": \"%064zx\"}",
		           i ? ", " : "", i, i, i);
	buf_puts(&body, "]}}");
	assert_true(body.len > 16384);
	assert_int_equal(heartbeat_parse(body.data, body.len, &f, &err), 0);
	assert_string_equal(f.hostname, "big");
	assert_int_equal(f.nips, FACT_MAX_ADDRS);
	assert_string_equal(f.ips[0], "10.0.0.1");
	snprintf(want, sizeof(want), "10.0.%d.%d", (FACT_MAX_ADDRS - 1) / 250,
	         (FACT_MAX_ADDRS - 1) % 250 + 1);
	assert_string_equal(f.ips[FACT_MAX_ADDRS - 1], want);
	assert_non_null(f.updates);
	assert_non_null(strstr(f.updates, "\"name\":\"rules/r0000.yar\""));
	assert_non_null(strstr(f.updates, "\"name\":\"rules/r0199.yar\""));
	host_facts_free(&f);
	buf_free(&body);
	buf_free(&err);
}

/* The signed updates an agent reports: checked member by member, kept as
 * compact JSON. */
static void
test_heartbeat_updates(void **state)
{
#define HB_FACTS                                                               \
	"{\"facts\": {\"hostname\": \"h\", \"machine_id\": "                   \
	"\"0123456789abcdef0123456789abcdef\"}, \"updates\": "
	static const struct {
		const char *body, *err;
	} bad[] = {
	    {HB_FACTS "[]}", "updates: must be an object"},
	    {HB_FACTS "{\"root\": -1}}",
	     "updates.root: must be an integer >= 0"},
	    {HB_FACTS "{\"targets\": \"2\"}}",
	     "updates.targets: must be an integer >= 0"},
	    {HB_FACTS "{\"bogus\": 1}}", "updates.bogus: unknown field"},
	    {HB_FACTS "{\"rules\": [{\"name\": \"a b\"}]}}",
	     "updates.rules[0].name: contains control characters or non-ASCII "
	     "bytes"},
	    {HB_FACTS "{\"rules\": [{\"nam\": \"x\"}]}}",
	     "updates.rules[0].nam: unknown field"},
	    {HB_FACTS "{\"error\": \"a\\nb\"}}",
	     "updates.error: contains control characters"},
	    {HB_FACTS "{\"upgrade_refused\": \"a b\"}}",
	     "updates.upgrade_refused: contains control characters or "
	     "non-ASCII "
	     "bytes"},
	};
	const char *ok =
	    HB_FACTS "{\"targets\": 2, \"root\": 1, \"error\": \"refused: "
	             "x\", \"rules\": [{\"name\": \"rules/base.yar\", "
	             "\"version\": \"1.0\", \"sha256\": \"ab\"}]}}";
	struct host_facts f;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(
	    heartbeat_parse((const uint8_t *)ok, strlen(ok), &f, &err), 0);
	assert_string_equal(f.updates,
	                    "{\"error\":\"refused: x\",\"root\":1,\"rules\":[{"
	                    "\"name\":\"rules/base.yar\",\"sha256\":\"ab\","
	                    "\"version\":\"1.0\"}],\"targets\":2}");
	host_facts_free(&f);
	assert_null(f.updates);
	/* A packaged agent's refusal (docs/updates.md). */
	ok = HB_FACTS "{\"upgrade_refused\": \"ab\", \"upgrade_error\": "
	              "\"installed by the vigil-agent package\"}}";
	assert_int_equal(
	    heartbeat_parse((const uint8_t *)ok, strlen(ok), &f, &err), 0);
	assert_string_equal(f.updates,
	                    "{\"upgrade_error\":\"installed by the vigil-agent "
	                    "package\",\"upgrade_refused\":\"ab\"}");
	host_facts_free(&f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&err);
		assert_int_equal(heartbeat_parse((const uint8_t *)bad[i].body,
		                                 strlen(bad[i].body), &f, &err),
		                 -1);
		assert_string_equal(buf_cstr(&err), bad[i].err);
		assert_null(f.updates);
	}
	buf_free(&err);
#undef HB_FACTS
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_minimal_and_optional),
	    cmocka_unit_test(test_bad_json),
	    cmocka_unit_test(test_duplicate_key),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_unknown),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_too_many_addrs),
	    cmocka_unit_test(test_bad_addresses),
	    cmocka_unit_test(test_control_chars),
	    cmocka_unit_test(test_heartbeat),
	    cmocka_unit_test(test_heartbeat_updates),
	    cmocka_unit_test(test_heartbeat_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
