/*
 * src/proto/events.c when memory runs out while a batch is parsed: that is
 * the center's trouble, not the batch's. It used to be reported as
 * "events[0]: out of memory", which the center answers 400 naming the
 * event, and an agent sets aside an event a refusal names (work.c
 * sender_refused: kept in its refused/ directory, a "refused" event sent in
 * its place): a good event lost to a moment of memory pressure. Now -2,
 * which the center answers 503 (sent again). The allocations of events.c
 * are made to fail here by including it with its own malloc, calloc and
 * realloc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int fail_from; /* the allocation number that fails first; 0: none */
static int nalloc;

static int
alloc_fails(void)
{
	return fail_from > 0 && ++nalloc >= fail_from;
}

static void *
t_malloc(size_t n)
{
	return alloc_fails() ? NULL : malloc(n);
}

static void *
t_calloc(size_t m, size_t n)
{
	return alloc_fails() ? NULL : calloc(m, n);
}

static void *
t_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : realloc(p, n);
}

#define malloc  t_malloc
#define calloc  t_calloc
#define realloc t_realloc
#include "../../../src/proto/events.c"
#undef malloc
#undef calloc
#undef realloc

/* One event whose compact data is longer than the body (1e1 is written
 * 10.0): its text grows past the first buffer, with a realloc. */
static void
body_of(struct buf *body)
{
	size_t i;

	buf_puts(body, "{\"events\":[{\"seq\":1,\"time\":1,\"type\":\"t\","
	               "\"data\":{\"r\":[");
	for (i = 0; i < 2000; i++)
		buf_printf(body, "%s1e1", i > 0 ? "," : "");
	buf_puts(body, "]}}]}");
	assert_int_equal(buf_ok(body), 0);
}

static void
test_out_of_memory(void **state)
{
	struct event_batch b;
	struct buf body, err;
	int k, rc, failed = 0;

	(void)state;
	buf_init(&body, 1 << 20);
	buf_init(&err, 1024);
	body_of(&body);
	/* Without failures it parses. */
	fail_from = 0;
	assert_int_equal(events_parse(body.data, body.len, &b, &err), 0);
	assert_int_equal(b.n, 1);
	event_batch_free(&b);
	/* Each of events.c's allocations in turn fails. */
	for (k = 1; k <= 8; k++) {
		nalloc = 0;
		fail_from = k;
		buf_reset(&err);
		rc = events_parse(body.data, body.len, &b, &err);
		fail_from = 0;
		if (rc == 0) {
			event_batch_free(&b);
			continue;
		}
		failed++;
		if (rc != -2)
			fail_msg("allocation %d failing: %d \"%s\", which the "
			         "center answers 400 and the agent takes for "
			         "a fault of the event",
			         k, rc, buf_cstr(&err));
		assert_null(strstr(buf_cstr(&err), "events["));
	}
	/* calloc, calloc, malloc and the realloc at least. */
	assert_true(failed >= 4);
	buf_free(&body);
	buf_free(&err);
}

/* A batch at fault is still -1, with the event named. */
static void
test_refusal_unchanged(void **state)
{
	static const char bad[] = "{\"events\":[{\"seq\":1,\"time\":1,"
	                          "\"type\":\"t\",\"data\":[]}]}";
	struct event_batch b;
	struct buf err;

	(void)state;
	buf_init(&err, 1024);
	assert_int_equal(
	    events_parse((const uint8_t *)bad, strlen(bad), &b, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "events[0].data"));
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_out_of_memory),
	    cmocka_unit_test(test_refusal_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
