/*
 * Tests of src/common/hashchain.c: the hash is the documented one (SHA-256
 * of the sorted compact JSON without "hash"), independent of key order and
 * of a parse / dump round trip, and the chain walk names the first entry
 * that was changed, removed, reordered or re-linked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "hashchain.h"

static json_t *
entry(long long id, const char *prev, const char *who)
{
	json_t *e =
	    json_pack("{s:I, s:I, s:s, s:s, s:s, s:n, s:i, s:n, "
	              "s:{s:s, s:i}, s:n, s:n, s:s}",
	              "id", (json_int_t)id, "time", (json_int_t)1795449892,
	              "who", who, "addr", "127.0.0.1", "action", "token.create",
	              "target", "status", 201, "before", "after", "id", "tok_1",
	              "uses", 2, "request", "error", "prev_hash", prev);
	char h[65];

	assert_non_null(e);
	assert_int_equal(hashchain_hash(e, h), 0);
	json_object_set_new(e, "hash", json_string(h));
	return e;
}

static void
test_documented_hash(void **state)
{
	/* The canonical text written out by hand, as docs/audit.md says. */
	static const char canon[] =
	    "{\"a\":1,\"b\":\"\\u00E9\",\"prev_hash\":\"" HASHCHAIN_ZERO "\"}";
	unsigned char md[32];
	unsigned int n = 0;
	char want[65], got[65];
	json_t *e;

	(void)state;
	e = json_pack("{s:s, s:s, s:i, s:s}", "prev_hash", HASHCHAIN_ZERO, "b",
	              "\xc3\xa9", "a", 1, "hash", "ignored");
	assert_int_equal(hashchain_hash(e, got), 0);
	assert_int_equal(
	    EVP_Digest(canon, strlen(canon), md, &n, EVP_sha256(), NULL), 1);
	hex_encode(md, n, want);
	assert_string_equal(got, want);
	json_decref(e);
}

static void
test_round_trip(void **state)
{
	json_t *e = entry(1, HASHCHAIN_ZERO, "key:x"), *back;
	char *text;
	char h1[65], h2[65];

	(void)state;
	text = json_dumps(e, JSON_INDENT(2)); /* as an API client sees it */
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_int_equal(hashchain_hash(e, h1), 0);
	assert_int_equal(hashchain_hash(back, h2), 0);
	assert_string_equal(h1, h2);
	free(text);
	json_decref(e);
	json_decref(back);
}

static void
test_chain(void **state)
{
	struct hashchain h;
	struct buf why;
	json_t *e[4];
	int i;

	(void)state;
	buf_init(&why, 1024);
	e[0] = entry(1, HASHCHAIN_ZERO, "key:a");
	for (i = 1; i < 4; i++)
		e[i] = entry(
		    i + 1, json_string_value(json_object_get(e[i - 1], "hash")),
		    "key:a");

	hashchain_init(&h);
	for (i = 0; i < 4; i++)
		assert_int_equal(hashchain_next(&h, e[i], &why), 0);
	assert_int_equal(h.checked, 4);

	/* changed content */
	json_object_set_new(e[2], "who", json_string("key:b"));
	hashchain_init(&h);
	assert_int_equal(hashchain_next(&h, e[0], &why), 0);
	assert_int_equal(hashchain_next(&h, e[1], &why), 0);
	assert_int_equal(hashchain_next(&h, e[2], &why), -1);
	assert_non_null(strstr(buf_cstr(&why), "entry 3: content"));

	/* changed and re-hashed: the next link breaks */
	{
		char nh[65];

		hashchain_hash(e[2], nh);
		json_object_set_new(e[2], "hash", json_string(nh));
	}
	buf_reset(&why);
	assert_int_equal(hashchain_next(&h, e[2], &why), 0);
	assert_int_equal(hashchain_next(&h, e[3], &why), -1);
	assert_non_null(strstr(buf_cstr(&why), "entry 4: prev_hash"));

	/* removed entry */
	buf_reset(&why);
	hashchain_init(&h);
	assert_int_equal(hashchain_next(&h, e[0], &why), 0);
	assert_int_equal(hashchain_next(&h, e[2], &why), -1);
	assert_non_null(strstr(buf_cstr(&why), "expected id 2"));

	/* missing members */
	buf_reset(&why);
	hashchain_init(&h);
	json_object_del(e[0], "prev_hash");
	assert_int_equal(hashchain_next(&h, e[0], &why), -1);

	for (i = 0; i < 4; i++)
		json_decref(e[i]);
	buf_free(&why);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_documented_hash),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
