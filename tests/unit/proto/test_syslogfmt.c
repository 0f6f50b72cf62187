/*
 * Tests of src/proto/syslogfmt.c: each format's exact output for a plain
 * event, and the escaping each specification asks for when an agent puts
 * the special characters into the fields it controls (RFC 5424 6.3.3
 * PARAM-VALUE, CEF header and extension rules, LEEF attributes), plus both
 * framings of RFC 6587.
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
#include "syslogfmt.h"

/* 2026-11-23T16:00:48Z */
#define T 1795449648LL

static const struct syslogfmt_event plain = {
    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    42,
    T,
    "finding",
    "alert",
    "task-1",
    "{\"rule\":\"EICAR\"}",
    "host1.example.org",
};

static char *
fmt(int format, const struct syslogfmt_event *e)
{
	struct syslogfmt_opts o = {format, 16, "center.example.org", "0.1.0"};
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(syslogfmt_format(&o, e, &b), 0);
	return buf_steal(&b, NULL);
}

static void
check(int format, const struct syslogfmt_event *e, const char *want)
{
	char *got = fmt(format, e);

	assert_string_equal(got, want);
	free(got);
}

static void
test_names_levels(void **state)
{
	(void)state;
	assert_int_equal(syslogfmt_format_parse("rfc5424"), SYSLOGFMT_RFC5424);
	assert_int_equal(syslogfmt_format_parse("leef"), SYSLOGFMT_LEEF);
	assert_int_equal(syslogfmt_format_parse("LEEF"), -1);
	assert_string_equal(syslogfmt_format_name(SYSLOGFMT_CEF), "cef");
	assert_int_equal(syslogfmt_severity("alert"), 1);
	assert_int_equal(syslogfmt_severity("warning"), 4);
	assert_int_equal(syslogfmt_severity("notice"), 5);
	assert_int_equal(syslogfmt_severity("info"), 6);
	assert_int_equal(syslogfmt_severity(NULL), 6);
	assert_int_equal(syslogfmt_level_rank("bogus"), -1);
	assert_true(syslogfmt_level_rank("alert") >
	            syslogfmt_level_rank("warning"));
}

static void
test_rfc5424(void **state)
{
	(void)state;
	/* local0 (16) * 8 + alert (1) = 129 */
	check(SYSLOGFMT_RFC5424, &plain,
	      "<129>1 2026-11-23T16:00:48Z host1.example.org vigil - finding "
	      "[vigil@32473 agent=\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\" "
	      "seq=\"42\" level=\"alert\" task=\"task-1\"] "
	      "{\"rule\":\"EICAR\"}");
}

static void
test_rfc5424_escaping(void **state)
{
	struct syslogfmt_event e = plain;

	(void)state;
	/* PARAM-VALUE: '"', '\' and ']' escaped, nothing else. Header
	 * fields: only PRINTUSASCII, the rest becomes '_'. No host: the
	 * center's name. */
	e.task_id = "a\"b\\c]d=e f";
	e.hostname = "bad host\n";
	e.level = NULL;
	check(SYSLOGFMT_RFC5424, &e,
	      "<134>1 2026-11-23T16:00:48Z bad_host_ vigil - finding "
	      "[vigil@32473 agent=\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\" "
	      "seq=\"42\" task=\"a\\\"b\\\\c\\]d=e f\"] "
	      "{\"rule\":\"EICAR\"}");
	e.hostname = NULL;
	e.task_id = NULL;
	e.type = "";
	check(SYSLOGFMT_RFC5424, &e,
	      "<134>1 2026-11-23T16:00:48Z center.example.org vigil - - "
	      "[vigil@32473 agent=\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\" "
	      "seq=\"42\"] {\"rule\":\"EICAR\"}");
}

static void
test_rfc3164(void **state)
{
	struct syslogfmt_event e = plain;

	(void)state;
	check(SYSLOGFMT_RFC3164, &plain,
	      "<129>Nov 23 16:00:48 host1.example.org vigil: type=finding "
	      "agent=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 seq=42 level=alert "
	      "task=task-1 {\"rule\":\"EICAR\"}");
	/* Day of month is space-padded; no line break survives. */
	e.time = 1772409600; /* 2026-03-02T00:00:00Z */
	e.data = "{\"a\":\"x\ny\"}";
	e.task_id = "t 1";
	e.level = "info";
	check(SYSLOGFMT_RFC3164, &e,
	      "<134>Mar  2 00:00:00 host1.example.org vigil: type=finding "
	      "agent=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 seq=42 level=info "
	      "task=t_1 {\"a\":\"x\\ny\"}");
}

static void
test_cef(void **state)
{
	struct syslogfmt_event e = plain;

	(void)state;
	check(SYSLOGFMT_CEF, &plain,
	      "<129>Nov 23 16:00:48 host1.example.org CEF:0|Vigil|Vigil|0.1.0|"
	      "finding|Vigil finding|10|rt=1795449648000 "
	      "dvchost=host1.example.org cs1Label=agent "
	      "cs1=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 cn1Label=seq cn1=42 "
	      "cs2Label=level cs2=alert cs3Label=task cs3=task-1 "
	      "msg={\"rule\":\"EICAR\"}");
	/* Header: '|' and '\' escaped. Extension: '\' and '=' escaped,
	 * CR/LF as \r \n, '|' left alone. */
	e.type = "a|b\\c";
	e.level = "warning";
	e.task_id = NULL;
	e.data = "x=1|y\\z\r\nw";
	check(SYSLOGFMT_CEF, &e,
	      "<132>Nov 23 16:00:48 host1.example.org CEF:0|Vigil|Vigil|0.1.0|"
	      "a\\|b\\\\c|Vigil a\\|b\\\\c|7|rt=1795449648000 "
	      "dvchost=host1.example.org cs1Label=agent "
	      "cs1=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 cn1Label=seq cn1=42 "
	      "cs2Label=level cs2=warning msg=x\\=1|y\\\\z\\r\\nw");
}

static void
test_leef(void **state)
{
	struct syslogfmt_event e = plain;

	(void)state;
	check(SYSLOGFMT_LEEF, &plain,
	      "<129>Nov 23 16:00:48 host1.example.org LEEF:2.0|Vigil|Vigil|"
	      "0.1.0|finding|x09|devTime=2026-11-23T16:00:48Z\t"
	      "devTimeFormat=yyyy-MM-dd'T'HH:mm:ssX\tsev=10\tcat=finding\t"
	      "identHostName=host1.example.org\t"
	      "agent=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\tseq=42\t"
	      "level=alert\ttask=task-1\tdata={\"rule\":\"EICAR\"}");
	/* Attribute values: tab, CR, LF, '\' escaped; '=' and '|' left. */
	e.level = "notice";
	e.task_id = NULL;
	e.hostname = "h|1";
	e.data = "a\tb=c|d\\e\nf";
	check(SYSLOGFMT_LEEF, &e,
	      "<133>Nov 23 16:00:48 h|1 LEEF:2.0|Vigil|Vigil|"
	      "0.1.0|finding|x09|devTime=2026-11-23T16:00:48Z\t"
	      "devTimeFormat=yyyy-MM-dd'T'HH:mm:ssX\tsev=5\tcat=finding\t"
	      "identHostName=h|1\t"
	      "agent=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\tseq=42\t"
	      "level=notice\tdata=a\\tb=c|d\\\\e\\nf");
}

static void
test_json(void **state)
{
	struct syslogfmt_event e = plain;

	(void)state;
	check(SYSLOGFMT_JSON, &plain,
	      "<129>1 2026-11-23T16:00:48Z host1.example.org vigil - finding - "
	      "{\"time\":1795449648,\"host\":\"host1.example.org\","
	      "\"agent_id\":\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\","
	      "\"seq\":42,\"type\":\"finding\",\"level\":\"alert\","
	      "\"task_id\":\"task-1\",\"data\":{\"rule\":\"EICAR\"}}");
	/* Data that is not JSON (a raw syslog line) becomes a string. */
	e.data = "not \"json\"";
	e.level = NULL;
	e.task_id = NULL;
	{
		char *got = fmt(SYSLOGFMT_JSON, &e);

		assert_non_null(strstr(got, "\"data\":\"not \\\"json\\\"\"}"));
		assert_non_null(strstr(got, "\"level\":null,"));
		free(got);
	}
}

static void
test_framing(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(syslogfmt_frame(SYSLOGFMT_OCTET,
	                                 (const uint8_t *)"<13>1 a\nb", 9, &b),
	                 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "9 <13>1 a\nb", 11);
	buf_reset(&b);
	assert_int_equal(syslogfmt_frame(SYSLOGFMT_NEWLINE,
	                                 (const uint8_t *)"<13>1 a\nb", 9, &b),
	                 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "<13>1 a b\n", 10);
	/* Past the cap: fails and leaves the buffer as it was. */
	{
		char big[80];

		memset(big, 'x', sizeof(big));
		assert_int_equal(syslogfmt_frame(SYSLOGFMT_OCTET,
		                                 (const uint8_t *)big,
		                                 sizeof(big), &b),
		                 -1);
		assert_int_equal(b.len, 10);
	}
	buf_free(&b);
}

static void
test_full_buffer(void **state)
{
	struct syslogfmt_opts o = {SYSLOGFMT_RFC5424, 16, "c", "1"};
	struct buf b;

	(void)state;
	buf_init(&b, 40);
	assert_int_equal(buf_puts(&b, "keep"), 0);
	assert_int_equal(syslogfmt_format(&o, &plain, &b), -1);
	assert_string_equal(buf_cstr(&b), "keep");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_levels),
	    cmocka_unit_test(test_rfc5424),
	    cmocka_unit_test(test_rfc5424_escaping),
	    cmocka_unit_test(test_rfc3164),
	    cmocka_unit_test(test_cef),
	    cmocka_unit_test(test_leef),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_framing),
	    cmocka_unit_test(test_full_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
