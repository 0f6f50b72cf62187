/*
 * Tests of src/proto/syslogparse.c: RFC 6587 framing (octet counting and
 * newline, partial input, bad lengths), RFC 5424 messages with structured
 * data and its escapes (the examples of RFC 5424 section 6.5), RFC 3164
 * messages, and malformed input refused with a reason.
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
#include "gwrelay.h"
#include "syslogparse.h"

static json_t *
parse(const char *s, int *sev, long long *t, struct buf *err)
{
	return syslogparse_message((const uint8_t *)s, strlen(s), sev, t, err);
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
test_frame(void **state)
{
	const uint8_t *m;
	size_t n;
	const char *s = "11 <13>1 - - x5 <1>1 a\nline two\r\nrest";

	(void)state;
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)s, strlen(s), 100, &m, &n), 14);
	assert_int_equal(n, 11);
	assert_memory_equal(m, "<13>1 - - x", 11);
	s += 14;
	/* "5 <1>1 a\n": 5 counted bytes "<1>1 "; then "a\n" is a
	 * newline-framed message of its own. */
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)s, strlen(s), 100, &m, &n), 7);
	assert_memory_equal(m, "<1>1 a", 5);
	s += 7;
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)s, strlen(s), 100, &m, &n), 2);
	assert_int_equal(n, 1);
	s += 2;
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)s, strlen(s), 100, &m, &n), 10);
	assert_int_equal(n, 8);
	assert_memory_equal(m, "line two", 8);
	s += 10;
	/* No LF yet: partial. */
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)s, strlen(s), 100, &m, &n), -2);
	/* Counted frame not complete yet; length still being read. */
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)"20 <13>", 7, 100, &m, &n), -2);
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)"12", 2, 100, &m, &n), -2);
	/* Bad or oversized lengths: the stream cannot be framed. */
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)"101 x", 5, 100, &m, &n), -1);
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)"0 x", 3, 100, &m, &n), -1);
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)"12x ", 4, 100, &m, &n), -1);
	assert_int_equal(syslogparse_frame((const uint8_t *)"12345678901 ", 12,
	                                   1u << 30, &m, &n),
	                 -1);
	/* A line longer than max without LF. */
	assert_int_equal(
	    syslogparse_frame((const uint8_t *)"<13>abcdef", 10, 5, &m, &n),
	    -1);
}

static void
test_rfc5424_examples(void **state)
{
	struct buf err;
	long long t;
	int sev;
	json_t *o, *sd;

	(void)state;
	buf_init(&err, 1024);
	/* RFC 5424 6.5, example 1 (with the BOM). */
	o = parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - "
	          "ID47 - \xef\xbb\xbf'su root' failed for lonvick on "
	          "/dev/pts/8",
	          &sev, &t, &err);
	assert_non_null(o);
	assert_int_equal(sev, 2);
	assert_int_equal(t, 1065910455);
	assert_string_equal(str(o, "format"), "rfc5424");
	assert_string_equal(str(o, "hostname"), "mymachine.example.com");
	assert_string_equal(str(o, "app_name"), "su");
	assert_true(json_is_null(json_object_get(o, "procid")));
	assert_string_equal(str(o, "msgid"), "ID47");
	assert_true(json_is_null(json_object_get(o, "structured_data")));
	assert_string_equal(str(o, "message"),
	                    "'su root' failed for lonvick on /dev/pts/8");
	assert_int_equal(json_integer_value(json_object_get(o, "facility")), 4);
	json_decref(o);
	/* Example 2: offset time zone, no MSG. */
	o = parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc "
	          "8710 - - %% It's time to make the do-nuts.",
	          &sev, &t, &err);
	assert_non_null(o);
	assert_int_equal(t, 1061727255);
	assert_string_equal(str(o, "procid"), "8710");
	assert_string_equal(str(o, "message"),
	                    "%% It's time to make the do-nuts.");
	json_decref(o);
	/* Example 4: two SD elements, no MSG; escapes in values. */
	o = parse(
	    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com "
	    "evntslog - ID47 [exampleSDID@32473 iut=\"3\" "
	    "eventSource=\"Application\" eventID=\"1011\"][examplePriority"
	    "@32473 class=\"high\" note=\"a\\\"b\\\\c\\]d\\xe\"]",
	    &sev, &t, &err);
	assert_non_null(o);
	sd = json_object_get(o, "structured_data");
	assert_string_equal(
	    str(json_object_get(sd, "exampleSDID@32473"), "eventSource"),
	    "Application");
	assert_string_equal(
	    str(json_object_get(sd, "examplePriority@32473"), "note"),
	    "a\"b\\c]d\\xe");
	assert_string_equal(str(o, "message"), "");
	json_decref(o);
	/* A parameter given twice keeps both values. */
	o = parse("<13>1 - - - - - [a x=\"1\" x=\"2\"] m", &sev, &t, &err);
	assert_non_null(o);
	assert_int_equal(
	    json_array_size(json_object_get(
	        json_object_get(json_object_get(o, "structured_data"), "a"),
	        "x")),
	    2);
	assert_int_equal(t, 0);
	json_decref(o);
	/* The latest time a timestamp can say is within what the syslog
	 * worker may send the core (gwrelay.h): else one message would
	 * have its batch refused and the worker stopped. */
	o = parse("<13>1 9999-12-31T23:59:60-23:59 h a - - - late", &sev, &t,
	          &err);
	assert_non_null(o);
	assert_true(t > 253402300799LL);
	assert_true(t <= GWRELAY_MAX_SL_TIME);
	json_decref(o);
	/* Control characters in a value are U+FFFD, as in the message and
	 * in raw events (a tab stays): a value of them stored as \u0001
	 * each made an event six times the message, and a page of such
	 * events too large to list. */
	o = parse("<13>1 - - - - - [a x=\"\x01\tb\x7f\x1b\"] m\x02", &sev, &t,
	          &err);
	assert_non_null(o);
	assert_string_equal(
	    str(json_object_get(json_object_get(o, "structured_data"), "a"),
	        "x"),
	    "\xef\xbf\xbd\tb\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(str(o, "message"), "m\xef\xbf\xbd");
	json_decref(o);
	buf_free(&err);
}

static void
test_rfc3164(void **state)
{
	struct buf err;
	long long t;
	int sev;
	json_t *o;

	(void)state;
	buf_init(&err, 1024);
	o = parse("<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed\n",
	          &sev, &t, &err);
	assert_non_null(o);
	assert_int_equal(sev, 2);
	assert_string_equal(str(o, "format"), "rfc3164");
	assert_string_equal(str(o, "timestamp"), "Oct 11 22:14:15");
	assert_string_equal(str(o, "hostname"), "mymachine");
	assert_string_equal(str(o, "app_name"), "su");
	assert_string_equal(str(o, "procid"), "123");
	assert_string_equal(str(o, "message"), "'su root' failed");
	json_decref(o);
	/* No timestamp: everything after the PRI is content (4.3.3). */
	o = parse("<13>just some text: here", &sev, &t, &err);
	assert_non_null(o);
	assert_null(json_object_get(o, "hostname"));
	assert_string_equal(str(o, "message"), "just some text: here");
	json_decref(o);
	/* Invalid UTF-8 and control bytes are replaced, not refused. */
	o = parse("<13>Jan  2 03:04:05 h t: a\xff\x01z", &sev, &t, &err);
	assert_non_null(o);
	assert_string_equal(str(o, "message"), "a\xef\xbf\xbd\xef\xbf\xbdz");
	json_decref(o);
	buf_free(&err);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "no pri",
	    "<>x",
	    "<192>x",
	    "<1234>x",
	    "<13",
	    "<13>",
	    "<13>1 ",
	    "<13>1 2003-13-11T22:14:15Z h a p m -",
	    "<13>1 yesterday h a p m - x",
	    "<13>1 - h a p m [unterminated x=\"1\"",
	    "<13>1 - h a p m [id x=\"1]",
	    "<13>1 - h a p m [id x=1]",
	    "<13>1 - h a p m [a][a]",
	    "<13>1 - h a p m nosd",
	    "<13>1 - h a p m -x",
	    "<13>1 - h a p m [id x=\"\xff\"]",
	    "<13>1 - h a p m - \xef\xbb\xbf\xff",
	    "<13>1 - h\x01 a p m - x",
	};
	struct buf err;
	long long t;
	int sev;
	size_t i;

	(void)state;
	buf_init(&err, 1024);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&err);
		json_t *o = parse(bad[i], &sev, &t, &err);
		if (o != NULL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err.len > 0);
	}
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame),
	    cmocka_unit_test(test_rfc5424_examples),
	    cmocka_unit_test(test_rfc3164),
	    cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
