/*
 * Unit tests of the doctor's printer and option parsing: the exit status
 * from the worst level (info is no problem), one exact line per check with
 * the fix only when not ok, the JSON document with one object per check,
 * HOST[:PORT] and [V6]:PORT, and the options' bounds. The network checks
 * themselves are tested end to end (e2e/doctor, e2e/doctor_agent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "doctor.h"

/* Runs fn with stdout in a temporary file; returns what it printed
 * (malloc'd) and fn's result in *rc. */
static char *
capture(int (*fn)(void), int *rc)
{
	FILE *f = tmpfile();
	char *out;
	long n;
	int saved;

	assert_non_null(f);
	fflush(stdout);
	saved = dup(1);
	assert_true(dup2(fileno(f), 1) == 1);
	*rc = fn();
	fflush(stdout);
	assert_true(dup2(saved, 1) == 1);
	close(saved);
	n = ftell(f);
	assert_true(n >= 0);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	rewind(f);
	assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return out;
}

static int
run_infos(void)
{
	struct doctor d;

	doctor_init(&d, 0, 5);
	doctor_report(&d, DOCTOR_OK, "a", "never shown", 3, "fine %d", 1);
	doctor_report(&d, DOCTOR_INFO, "b", NULL, -1, "not configured");
	return doctor_finish(&d);
}

static int
run_warn(void)
{
	struct doctor d;

	doctor_init(&d, 0, 5);
	doctor_report(&d, DOCTOR_WARN, "c", "do this", -1, "odd");
	doctor_report(&d, DOCTOR_OK, "d", NULL, -1, "fine");
	return doctor_finish(&d);
}

static int
run_fail_json(void)
{
	struct doctor d;

	doctor_init(&d, 1, 5);
	doctor_report(&d, DOCTOR_FAIL, "port 1/tcp x (a -> b)", "open it", 12,
	              "refused \"quoted\"");
	doctor_report(&d, DOCTOR_WARN, "w", NULL, -1, "hmm");
	doctor_report(&d, DOCTOR_OK, "o", "hidden", -1, "fine");
	return doctor_finish(&d);
}

static void
test_lines(void **state)
{
	char *out;
	int rc;

	(void)state;
	out = capture(run_infos, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "ok   a: fine 1\ninfo b: not configured\n");
	free(out);
	out = capture(run_warn, &rc);
	assert_int_equal(rc, 1);
	assert_string_equal(out, "warn c: odd; fix: do this\nok   d: fine\n");
	free(out);
}

static void
test_json(void **state)
{
	json_t *doc, *c;
	char *out;
	int rc;

	(void)state;
	out = capture(run_fail_json, &rc);
	assert_int_equal(rc, 2);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "status")),
	                    "fail");
	assert_int_equal(json_integer_value(json_object_get(doc, "exit")), 2);
	assert_int_equal(json_array_size(json_object_get(doc, "checks")), 3);
	c = json_array_get(json_object_get(doc, "checks"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "status")),
	                    "fail");
	assert_string_equal(json_string_value(json_object_get(c, "check")),
	                    "port 1/tcp x (a -> b)");
	assert_string_equal(json_string_value(json_object_get(c, "found")),
	                    "refused \"quoted\"");
	assert_string_equal(json_string_value(json_object_get(c, "fix")),
	                    "open it");
	assert_int_equal(json_integer_value(json_object_get(c, "ms")), 12);
	c = json_array_get(json_object_get(doc, "checks"), 1);
	assert_null(json_object_get(c, "fix"));
	assert_null(json_object_get(c, "ms"));
	c = json_array_get(json_object_get(doc, "checks"), 2);
	assert_null(json_object_get(c, "fix")); /* never for ok */
	json_decref(doc);
	free(out);
}

static void
test_hostport(void **state)
{
	char h[64];
	int port;

	(void)state;
	assert_int_equal(
	    doctor_hostport("ntp.example.org", 123, h, sizeof(h), &port), 0);
	assert_string_equal(h, "ntp.example.org");
	assert_int_equal(port, 123);
	assert_int_equal(
	    doctor_hostport("10.0.0.1:1123", 123, h, sizeof(h), &port), 0);
	assert_string_equal(h, "10.0.0.1");
	assert_int_equal(port, 1123);
	assert_int_equal(doctor_hostport("[::1]:514", 1, h, sizeof(h), &port),
	                 0);
	assert_string_equal(h, "::1");
	assert_int_equal(port, 514);
	assert_int_equal(doctor_hostport("fe80::1", 9, h, sizeof(h), &port), 0);
	assert_string_equal(h, "fe80::1");
	assert_int_equal(port, 9);
	assert_int_equal(doctor_hostport("[::1]", 7, h, sizeof(h), &port), 0);
	assert_int_equal(port, 7);
	assert_int_equal(doctor_hostport("h:0", 1, h, sizeof(h), &port), -1);
	assert_int_equal(doctor_hostport("h:65536", 1, h, sizeof(h), &port),
	                 -1);
	assert_int_equal(doctor_hostport("h:x", 1, h, sizeof(h), &port), -1);
	assert_int_equal(doctor_hostport(":80", 1, h, sizeof(h), &port), -1);
	assert_int_equal(doctor_hostport("", 1, h, sizeof(h), &port), -1);
	assert_int_equal(doctor_hostport("[::1", 1, h, sizeof(h), &port), -1);
	assert_int_equal(doctor_hostport("[::1]x", 1, h, sizeof(h), &port), -1);
	assert_int_equal(doctor_hostport("a-name-longer-than-the-buffer-for-it."
	                                 "example.org.example.org",
	                                 1, h, 16, &port),
	                 -1);
}

static void
test_opts(void **state)
{
	struct doctor_opts o;
	int i;

	(void)state;
	doctor_opts_init(&o);
	assert_int_equal(o.timeout, DOCTOR_TIMEOUT);
	assert_int_equal(doctor_opt(&o, 'c', "x"), 0);
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE + 12, "0"), -1);
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE + 12, "301"), -1);
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE + 12, "9"), 1);
	assert_int_equal(o.timeout, 9);
	for (i = 0; i < DOCTOR_MAX_LIST; i++)
		assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE, "n"), 1);
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE, "n"), -1);
	assert_int_equal(o.nntp, DOCTOR_MAX_LIST);
	/* --scand: a port option, checked at once. */
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE + 2, "s:99999"), -1);
	assert_null(o.port[DOCTOR_SCAND]);
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE + 2, "s"), 1);
	assert_string_equal(o.port[DOCTOR_SCAND], "s");
	assert_int_equal(doctor_opt(&o, DOCTOR_OPT_BASE + 10, NULL), 1);
	assert_int_equal(o.icmp, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_hostport),
	    cmocka_unit_test(test_opts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
