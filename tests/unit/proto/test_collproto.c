/*
 * Tests of src/proto/collproto.c: frames are found whole or asked for
 * more, bad length prefixes refused; messages of each kind parse and bad
 * fields are named; a finding's case key follows the rule and normalised
 * path, or the hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collproto.h"

static long
frame(const char *s, size_t *need, size_t *mlen)
{
	const uint8_t *msg;

	return collproto_frame((const uint8_t *)s, strlen(s), need, &msg, mlen);
}

static void
test_frame(void **state)
{
	size_t need, mlen;

	(void)state;
	assert_int_equal(frame("5 hello6 world!", &need, &mlen), 7);
	assert_int_equal(mlen, 5);
	assert_int_equal(frame("12 hello", &need, &mlen), -2);
	assert_int_equal(need, 15);
	assert_int_equal(frame("12", &need, &mlen), -2);
	assert_int_equal(need, 0);
	assert_int_equal(frame("012 x", &need, &mlen), -1);
	assert_int_equal(frame("x12 x", &need, &mlen), -1);
	assert_int_equal(frame(" x", &need, &mlen), -1);
	assert_int_equal(frame("9999999 x", &need, &mlen), -1);
	assert_int_equal(frame("99999 x", &need, &mlen), -1); /* > max */
}

static int
parse(const char *s, struct coll_msg *m, char *err, size_t n)
{
	struct buf e;
	int rc;

	buf_init(&e, 1024);
	rc = collproto_parse((const uint8_t *)s, strlen(s), m, &e);
	snprintf(err, n, "%s", buf_cstr(&e));
	buf_free(&e);
	return rc;
}

static void
test_parse(void **state)
{
	struct coll_msg m;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse("{\"kind\":\"event\",\"id\":7,\"agent_id\":\"a1\",\"seq\":3,"
	          "\"time\":100,\"type\":\"finding\",\"level\":\"alert\","
	          "\"task_id\":null,\"hostname\":\"h\",\"data\":{\"x\":1}}",
	          &m, err, sizeof(err)),
	    0);
	assert_int_equal(m.kind, COLL_EVENT);
	assert_int_equal(m.id, 7);
	assert_int_equal(m.seq, 3);
	assert_string_equal(m.agent_id, "a1");
	assert_string_equal(m.level, "alert");
	assert_string_equal(m.task_id, "");
	assert_int_equal(json_integer_value(json_object_get(m.data, "x")), 1);
	collproto_free(&m);

	assert_int_equal(
	    parse("{\"kind\":\"commit\",\"upto\":9}", &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, COLL_COMMIT);
	assert_int_equal(m.id, 9);

	assert_int_equal(parse("{\"kind\":\"agent\",\"agent\":{\"id\":\"a\","
	                       "\"hostname\":\"h\"}}",
	                       &m, err, sizeof(err)),
	                 0);
	assert_int_equal(m.kind, COLL_AGENT);
	assert_string_equal(m.agent_id, "a");
	collproto_free(&m);

	assert_int_equal(parse("{\"kind\":\"event\",\"id\":7,\"agent_id\":\"\","
	                       "\"seq\":3,\"time\":1,\"type\":\"f\"}",
	                       &m, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "agent_id"));
	assert_int_equal(
	    parse("{\"kind\":\"event\",\"id\":0,\"agent_id\":\"a\","
	          "\"seq\":3,\"time\":1,\"type\":\"f\"}",
	          &m, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "id"));
	assert_int_equal(
	    parse("{\"kind\":\"event\",\"id\":1,\"agent_id\":\"a\","
	          "\"seq\":3,\"time\":1,\"type\":\"f\",\"data\":[]}",
	          &m, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "data"));
	assert_int_equal(parse("{\"kind\":\"nope\"}", &m, err, sizeof(err)),
	                 -1);
	assert_int_equal(parse("[1]", &m, err, sizeof(err)), -1);
	assert_int_equal(parse("{\"kind\":\"commit\",\"upto\":1,\"upto\":2}",
	                       &m, err, sizeof(err)),
	                 -1);
}

static void
test_sample_chunk(void **state)
{
	static const char sha[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char json[512], err[256];
	struct coll_msg m;

	(void)state;
	snprintf(json, sizeof(json),
	         "{\"kind\":\"chunk\",\"sha256\":\"%s\",\"offset\":0,"
	         "\"data\":\"YWJj\",\"end\":true}",
	         sha);
	assert_int_equal(parse(json, &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, COLL_CHUNK);
	assert_int_equal(m.binlen, 3);
	assert_memory_equal(m.bin, "abc", 3);
	assert_true(m.end);
	collproto_free(&m);
	snprintf(json, sizeof(json),
	         "{\"kind\":\"chunk\",\"sha256\":\"%s\",\"offset\":0,"
	         "\"data\":\"YQ==\",\"end\":false}",
	         sha);
	assert_int_equal(parse(json, &m, err, sizeof(err)), 0);
	assert_int_equal(m.binlen, 1);
	collproto_free(&m);
	/* Padding in the middle, bad characters, a bad hash. */
	snprintf(json, sizeof(json),
	         "{\"kind\":\"chunk\",\"sha256\":\"%s\",\"offset\":0,"
	         "\"data\":\"YQ==YWJj\",\"end\":false}",
	         sha);
	assert_int_equal(parse(json, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "base64"));
	snprintf(json, sizeof(json),
	         "{\"kind\":\"chunk\",\"sha256\":\"%s\",\"offset\":0,"
	         "\"data\":\"Y!Jj\",\"end\":false}",
	         sha);
	assert_int_equal(parse(json, &m, err, sizeof(err)), -1);
	assert_int_equal(parse("{\"kind\":\"chunk\",\"sha256\":\"AB\","
	                       "\"offset\":0,\"data\":\"\",\"end\":true}",
	                       &m, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "sha256"));
	snprintf(json, sizeof(json),
	         "{\"kind\":\"sample\",\"sha256\":\"%s\",\"size\":3,"
	         "\"agent_id\":\"a\",\"path\":\"/x\",\"received_at\":5}",
	         sha);
	assert_int_equal(parse(json, &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, COLL_SAMPLE);
	assert_int_equal(m.size, 3);
	assert_string_equal(m.sha256, sha);
	collproto_free(&m);
}

static void
key_of(const char *json, char *key)
{
	char rule[COLL_MAX_RULE + 1], path[COLL_MAX_PATH + 1], sha[65];
	json_t *d = json_loads(json, 0, NULL);

	assert_non_null(d);
	assert_int_equal(collproto_case_key(d, key, rule, path, sha), 0);
	json_decref(d);
}

static void
test_case_key(void **state)
{
	char a[COLL_MAX_KEY + 1], b[COLL_MAX_KEY + 1];

	(void)state;
	key_of("{\"rule\":\"Mimikatz\",\"path\":\"C:\\\\Users\\\\alice\\\\"
	       "AppData\\\\m17.exe\"}",
	       a);
	key_of("{\"rule\":\"Mimikatz\",\"path\":\"c:\\\\users\\\\Bob\\\\"
	       "appdata\\\\M3.EXE\"}",
	       b);
	assert_string_equal(a, "rule:Mimikatz|path:c:/users/*/appdata/m#.exe");
	assert_string_equal(a, b);
	key_of("{\"rule\":\"R\",\"path\":\"/home/alice/x/1/2\"}", a);
	assert_string_equal(a, "rule:R|path:/home/*/x/#/#");
	/* The agents' scan findings. */
	key_of("{\"subject\":{\"path\":\"/tmp/a\",\"hashes\":{\"sha256\":"
	       "\"AB\"}},\"reasons\":[{\"signature\":{\"rule_name\":\"Y\"}}]}",
	       a);
	assert_string_equal(a, "rule:Y|path:/tmp/a");
	/* No rule: the hash. */
	key_of("{\"subject\":{\"path\":\"/tmp/a\",\"hashes\":{\"sha256\":"
	       "\"AB\"}}}",
	       a);
	assert_string_equal(a, "sha256:ab");
	key_of("{}", a);
	assert_string_equal(a, "rule:|path:");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_case_key),
	    cmocka_unit_test(test_sample_chunk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
