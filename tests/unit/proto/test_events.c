/*
 * Tests of src/proto/events.c, the parser of agents' event batches, and of
 * the jsonarena under it: fields and their checks, the data stored is
 * jansson's compact text of what was checked (also where it is longer than
 * the input, and where jansson's allocations overflow the arena into
 * malloc), refusals with the field named, and jansson values made outside
 * a parse are unaffected by it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "events.h"
#include "jsonarena.h"

static int
parse(const char *s, struct event_batch *b, struct buf *err)
{
	buf_reset(err);
	return events_parse((const uint8_t *)s, strlen(s), b, err);
}

/* jansson's compact text of the JSON text s, parsed outside any arena. */
static char *
compact(const char *s)
{
	json_t *v = json_loads(s, 0, NULL);
	char *t;

	assert_non_null(v);
	t = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	assert_non_null(t);
	return t;
}

static void
test_batch(void **state)
{
	struct event_batch b;
	struct buf err;

	(void)state;
	buf_init(&err, 1024);
	assert_int_equal(
	    parse("{\"events\": [{\"seq\": 7, \"time\": 5, \"type\": \"gap\"},"
	          " {\"seq\": 3, \"time\": 1795000000, \"type\": \"finding\","
	          " \"level\": \"alert\", \"task_id\": \"t-1\", \"data\": "
	          "{ \"path\" : \"/tmp/x\", \"n\": [1, 2, {\"k\": null}],"
	          " \"s\": \"\\u00e9\\n\" }}]}",
	          &b, &err),
	    0);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.max_seq, 7);
	assert_int_equal(b.ev[0].seq, 3); /* sorted */
	assert_int_equal(b.ev[0].time, 1795000000);
	assert_string_equal(b.ev[0].type, "finding");
	assert_string_equal(b.ev[0].level, "alert");
	assert_string_equal(b.ev[0].task_id, "t-1");
	assert_string_equal(b.ev[0].data,
	                    "{\"path\":\"/tmp/x\",\"n\":[1,2,{"
	                    "\"k\":null}],\"s\":\"\xc3\xa9\\n\"}");
	assert_int_equal(b.ev[1].seq, 7);
	assert_string_equal(b.ev[1].level, "");
	assert_string_equal(b.ev[1].task_id, "");
	assert_string_equal(b.ev[1].data, "{}");
	event_batch_free(&b);
	assert_null(b.ev);
	assert_null(b.text);
	buf_free(&err);
}

/* Reals print longer than they were sent (0.1 is 0.10000000000000001):
 * the text block grows while the batch is parsed. */
static void
test_data_longer_than_input(void **state)
{
	struct event_batch b;
	struct buf body, err;
	char *want;
	size_t i;

	(void)state;
	buf_init(&body, 1 << 20);
	buf_init(&err, 1024);
	buf_puts(&body, "{\"events\":[");
	for (i = 1; i <= 1000; i++)
		buf_printf(&body,
		           "%s{\"seq\":%zu,\"time\":1,\"type\":\"t\",\"data\":"
		           "{\"r\":[0.1,0.2,0.3,1e-7,%zu.1]}}",
		           i > 1 ? "," : "", i, i);
	buf_puts(&body, "]}");
	assert_int_equal(buf_ok(&body), 0);
	assert_int_equal(parse(buf_cstr(&body), &b, &err), 0);
	assert_int_equal(b.n, 1000);
	for (i = 0; i < b.n; i++) {
		char in[128];

		snprintf(in, sizeof(in), "{\"r\":[0.1,0.2,0.3,1e-7,%zu.1]}",
		         i + 1);
		want = compact(in);
		assert_true(strlen(want) > strlen(in));
		assert_int_equal(b.ev[i].seq, i + 1);
		assert_string_equal(b.ev[i].data, want);
		free(want);
	}
	event_batch_free(&b);
	buf_free(&body);
	buf_free(&err);
}

/* Many tiny members take jansson far more memory than the body's 12
 * times: the rest comes from malloc and is freed as usual (the ASan build
 * checks the frees). */
static void
test_arena_overflow(void **state)
{
	struct event_batch b;
	struct buf body, data, err;
	size_t i;

	(void)state;
	buf_init(&body, 1 << 20);
	buf_init(&data, 1 << 16);
	buf_init(&err, 1024);
	buf_puts(&data, "{");
	for (i = 0; i < 2000; i++)
		buf_printf(&data, "%s\"%zx\":[]", i ? "," : "", i);
	buf_puts(&data, "}");
	buf_puts(&body, "{\"events\":[");
	for (i = 1; i <= 5; i++)
		buf_printf(&body,
		           "%s{\"seq\":%zu,\"time\":1,\"type\":\"t\","
		           "\"data\":%s}",
		           i > 1 ? "," : "", i, buf_cstr(&data));
	buf_puts(&body, "]}");
	assert_int_equal(buf_ok(&data), 0);
	assert_int_equal(buf_ok(&body), 0);
	assert_int_equal(parse(buf_cstr(&body), &b, &err), 0);
	assert_int_equal(b.n, 5);
	for (i = 0; i < b.n; i++)
		assert_string_equal(b.ev[i].data, buf_cstr(&data));
	event_batch_free(&b);
	buf_free(&body);
	buf_free(&data);
	buf_free(&err);
}

static void
refused(const char *body, const char *msg)
{
	struct event_batch b;
	struct buf err;

	buf_init(&err, 1024);
	assert_int_equal(parse(body, &b, &err), -1);
	if (strstr(buf_cstr(&err), msg) == NULL)
		fail_msg("%s: got \"%s\", want \"%s\"", body, buf_cstr(&err),
		         msg);
	assert_null(b.ev);
	assert_null(b.text);
	buf_free(&err);
}

static void
test_refused(void **state)
{
	struct buf big;
	size_t i;

	(void)state;
	refused("{\"events\": [", "invalid JSON");
	refused("{\"events\": []}", "between 1 and 1000");
	refused("{\"events\": [], \"x\": 1}", "must be {\"events\"");
	refused("{\"events\": [{\"seq\": 1, \"seq\": 2}]}", "duplicate");
	refused("{\"events\": [{\"seq\": 1, \"time\": 1, \"type\": \"t\","
	        " \"colour\": 1}]}",
	        "events[0].colour: unknown field");
	refused("{\"events\": [{\"seq\": 0, \"time\": 1, \"type\": \"t\"}]}",
	        "events[0].seq");
	refused("{\"events\": [{\"seq\": 1, \"time\": 1, \"type\": \"T\"}]}",
	        "events[0].type");
	refused("{\"events\": [{\"seq\": 1, \"time\": 1, \"type\": \"t\","
	        " \"level\": \"loud\"}]}",
	        "events[0].level");
	refused("{\"events\": [{\"seq\": 1, \"time\": 1, \"type\": \"t\"},"
	        " {\"seq\": 2, \"time\": 1, \"type\": \"t\", \"data\": [1]}]}",
	        "events[1].data: must be an object");
	refused("{\"events\": [{\"seq\": 1, \"time\": 1, \"type\": \"t\"},"
	        " {\"seq\": 1, \"time\": 1, \"type\": \"t\"}]}",
	        "seq 1 appears twice");
	/* data over 64 KiB once compact */
	buf_init(&big, 80000);
	buf_puts(&big, "{\"events\": [{\"seq\": 1, \"time\": 1, \"type\": "
	               "\"t\", \"data\": {\"x\": \"");
	for (i = 0; i < EVENT_MAX_DATA; i++)
		buf_puts(&big, "a");
	buf_puts(&big, "\"}}]}");
	refused(buf_cstr(&big), "events[0].data: larger than 65536 bytes");
	buf_free(&big);
	/* An inventory may be larger (a busy host's is), up to its own
	 * limit. */
	{
		struct event_batch b;
		struct buf err;

		buf_init(&big, 2 * EVENT_MAX_INVENTORY);
		buf_puts(&big, "{\"events\": [{\"seq\": 1, \"time\": 1, "
		               "\"type\": \"inventory\", \"data\": {\"x\": \"");
		for (i = 0; i < 200000; i++)
			buf_puts(&big, "a");
		buf_puts(&big, "\"}}]}");
		buf_init(&err, 1024);
		assert_int_equal(parse(buf_cstr(&big), &b, &err), 0);
		assert_int_equal(strlen(b.ev[0].data), 200000 + 8);
		event_batch_free(&b);
		buf_free(&err);
		buf_free(&big);
		buf_init(&big, 2 * EVENT_MAX_INVENTORY + 1024);
		buf_puts(&big, "{\"events\": [{\"seq\": 1, \"time\": 1, "
		               "\"type\": \"inventory\", \"data\": {\"x\": \"");
		for (i = 0; i < EVENT_MAX_INVENTORY; i++)
			buf_putc(&big, 'a');
		buf_puts(&big, "\"}}]}");
		refused(buf_cstr(&big),
		        "events[0].data: larger than 4194304 bytes");
		buf_free(&big);
	}
	/* 1001 events */
	buf_init(&big, 80000);
	buf_puts(&big, "{\"events\": [");
	for (i = 1; i <= 1001; i++)
		buf_printf(&big,
		           "%s{\"seq\": %zu, \"time\": 1, \"type\": \"t\"}",
		           i > 1 ? "," : "", i);
	buf_puts(&big, "]}");
	refused(buf_cstr(&big), "between 1 and 1000");
	buf_free(&big);
}

/* Values made outside a parse, before and after, live and die as usual;
 * and an arena without its block (cap 0) falls back to malloc. */
static void
test_outside_arena(void **state)
{
	struct json_arena ar;
	struct event_batch b;
	struct buf err;
	json_t *before, *inside;
	char *s;

	(void)state;
	buf_init(&err, 1024);
	before = json_pack("{s:s, s:[i]}", "a", "b", "c", 1);
	assert_int_equal(parse("{\"events\": [{\"seq\": 1, \"time\": 1, "
	                       "\"type\": \"t\", \"data\": {\"a\": 1}}]}",
	                       &b, &err),
	                 0);
	assert_string_equal(b.ev[0].data, "{\"a\":1}");
	s = json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"a\":\"b\",\"c\":[1]}");
	free(s);
	json_arena_open(&ar, 0);
	inside = json_string("from malloc");
	json_decref(before); /* made before the arena opened */
	json_decref(inside);
	json_arena_close(&ar);
	event_batch_free(&b);
	buf_free(&err);
}

static void
test_task_status(void **state)
{
	struct task_status_in st;
	struct buf err;

	(void)state;
	buf_init(&err, 1024);
	assert_int_equal(
	    task_status_parse(
	        (const uint8_t *)"{\"state\": \"done\", \"result\":"
	                         " {\"n\": 1}}",
	        37, &st, &err),
	    0);
	assert_int_equal(st.state, TASK_IN_DONE);
	assert_string_equal(st.result, "{\"n\":1}");
	task_status_free(&st);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_data_longer_than_input),
	    cmocka_unit_test(test_arena_overflow),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_outside_arena),
	    cmocka_unit_test(test_task_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
