/*
 * Unit tests for metrics.c: the exact Prometheus text for counters, gauges
 * and summaries, in declaration order then label insertion order, plus the
 * misuse paths (wrong type, undeclared name) that must not crash a daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

static void
render_eq(const char *want)
{
	struct buf out;

	buf_init(&out, 0);
	metrics_render(&out);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

static void
test_render_exact(void **state)
{
	(void)state;
	metrics_declare("vigil_http_requests_total", METRIC_COUNTER,
	                "HTTP requests by route and status.");
	metrics_declare("vigil_agents_connected", METRIC_GAUGE,
	                "Agents seen in the last poll interval.");
	metrics_declare("vigil_http_request_seconds", METRIC_SUMMARY,
	                "Time to answer a request.");

	/* Label sets appear in the order they were first used. */
	metrics_add("vigil_http_requests_total",
	            "route=\"poll\",status=\"200\"", 1);
	metrics_add("vigil_http_requests_total",
	            "route=\"enroll\",status=\"201\"", 1);
	metrics_add("vigil_http_requests_total",
	            "route=\"poll\",status=\"200\"", 2);
	metrics_set("vigil_agents_connected", NULL, 42);
	metrics_set("vigil_agents_connected", "", 41);
	metrics_observe("vigil_http_request_seconds", "route=\"poll\"", 0.25);
	metrics_observe("vigil_http_request_seconds", "route=\"poll\"", 0.5);

	render_eq(
	    "# HELP vigil_http_requests_total HTTP requests by route and "
	    "status.\n"
	    "# TYPE vigil_http_requests_total counter\n"
	    "vigil_http_requests_total{route=\"poll\",status=\"200\"} 3\n"
	    "vigil_http_requests_total{route=\"enroll\",status=\"201\"} "
	    "1\n"
	    "# HELP vigil_agents_connected Agents seen in the last poll "
	    "interval.\n"
	    "# TYPE vigil_agents_connected gauge\n"
	    "vigil_agents_connected 41\n"
	    "# HELP vigil_http_request_seconds Time to answer a request.\n"
	    "# TYPE vigil_http_request_seconds summary\n"
	    "vigil_http_request_seconds_count{route=\"poll\"} 2\n"
	    "vigil_http_request_seconds_sum{route=\"poll\"} 0.75\n");

	assert_true(metrics_get("vigil_http_requests_total",
	                        "route=\"poll\",status=\"200\"") == 3);
	assert_true(metrics_get("vigil_agents_connected", NULL) == 41);
	assert_true(
	    metrics_get("vigil_http_request_seconds", "route=\"poll\"") == 2);
	assert_true(metrics_get("vigil_http_request_seconds_count",
	                        "route=\"poll\"") == 2);
	assert_true(metrics_get("vigil_http_request_seconds_sum",
	                        "route=\"poll\"") == 0.75);
	assert_true(metrics_get("vigil_nope", NULL) == 0);
	assert_true(metrics_get("vigil_http_requests_total", "x=\"y\"") == 0);
	metrics_reset();
	render_eq("");
}

static void
test_values_and_help_escaping(void **state)
{
	(void)state;
	metrics_declare("g", METRIC_GAUGE, "back\\slash and\nnewline");
	metrics_declare("empty", METRIC_COUNTER, "declared, never used");
	metrics_set("g", "k=\"a\"", 0.1);
	metrics_set("g", "k=\"b\"", -3);
	metrics_set("g", "k=\"c\"", 1e20);
	metrics_set("g", "k=\"d\"", INFINITY);
	metrics_set("g", "k=\"e\"", -INFINITY);
	metrics_set("g", "k=\"f\"", NAN);
	metrics_set("g", "k=\"g\"", 1234567890123.0);
	render_eq("# HELP g back\\\\slash and\\nnewline\n"
	          "# TYPE g gauge\n"
	          "g{k=\"a\"} 0.1\n"
	          "g{k=\"b\"} -3\n"
	          "g{k=\"c\"} 1e+20\n"
	          "g{k=\"d\"} +Inf\n"
	          "g{k=\"e\"} -Inf\n"
	          "g{k=\"f\"} NaN\n"
	          "g{k=\"g\"} 1234567890123\n"
	          "# HELP empty declared, never used\n"
	          "# TYPE empty counter\n");
	metrics_reset();
}

static void
test_misuse_is_harmless(void **state)
{
	(void)state;
	metrics_declare("c", METRIC_COUNTER, "a counter");
	metrics_declare("c", METRIC_COUNTER, "declared twice");
	metrics_declare("s", METRIC_SUMMARY, "a summary");
	metrics_add("c", NULL, 2);
	metrics_add("c", NULL, -1);         /* counters never go down */
	metrics_observe("c", NULL, 5);      /* wrong type: ignored */
	metrics_add("s", NULL, 1);          /* wrong type: ignored */
	metrics_set("s", NULL, 1);          /* wrong type: ignored */
	metrics_add("undeclared", NULL, 1); /* declared on the fly */
	render_eq("# HELP c a counter\n"
	          "# TYPE c counter\n"
	          "c 2\n"
	          "# HELP s a summary\n"
	          "# TYPE s summary\n"
	          "# TYPE undeclared counter\n"
	          "undeclared 1\n");
	metrics_reset();
}

static void
test_truncated_output(void **state)
{
	struct buf out;

	(void)state;
	metrics_declare("c", METRIC_COUNTER, "a counter");
	metrics_add("c", NULL, 1);
	/* A buffer too small for the whole text keeps what fitted and the
	 * process goes on. */
	buf_init(&out, 16);
	metrics_render(&out);
	assert_true(out.len <= 16);
	buf_free(&out);
	metrics_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_exact),
	    cmocka_unit_test(test_values_and_help_escaping),
	    cmocka_unit_test(test_misuse_is_harmless),
	    cmocka_unit_test(test_truncated_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
