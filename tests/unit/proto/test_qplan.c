/*
 * Tests of src/proto/qplan.c: the list query string becomes a plan
 * (sort, limit, typed filters in order, cursor), percent-decoded the way
 * libevent decodes it; every refusal names the parameter and says why; a
 * NUL byte in a value is refused; a cursor must match the sort and the
 * value types.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qplan.h"

static const struct query_field fields[] = {
    {"id", "id", QF_TEXT, QF_SORT | QF_EQ},
    {"name", "name", QF_TEXT, QF_SORT | QF_EQ | QF_NULL},
    {"size", "size", QF_INT, QF_SORT | QF_EQ},
    {"label", "labels", QF_TEXT, QF_LABEL},
    {"os", "facts", QF_TEXT, QF_MEMBER},
    {"time", "time", QF_INT, QF_SORT | QF_RANGE},
    {"since", "time", QF_INT, QF_GE},
    {"until", "time", QF_INT, QF_LE},
    {"agent", "id IN (SELECT x FROM y WHERE a = ?)", QF_TEXT, QF_EXPR},
    {NULL, NULL, 0, 0},
};

static const char *const extra[] = {"state", NULL};

static const struct query_spec spec = {
    .table = "t",
    .columns = "id, name",
    .fields = fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "-time",
    .search = "name",
    .extra = extra,
    .max_limit = 500,
};

static struct qplan plan;
static struct qplan_error err;

static int
parse(const char *q)
{
	buf_free(&err.msg);
	return qplan_parse((const uint8_t *)q, strlen(q), &spec, &plan, &err);
}

/* The query is refused naming field, with a message containing msg. */
static void
refused(const char *q, const char *field, const char *msg)
{
	if (parse(q) != -1)
		fail_msg("'%s' was accepted", q);
	assert_string_equal(err.field, field);
	if (strstr(buf_cstr(&err.msg), msg) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", q, buf_cstr(&err.msg),
		         msg);
}

static int
setup(void **state)
{
	(void)state;
	buf_init(&err.msg, 4096);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	buf_free(&err.msg);
	return 0;
}

static void
test_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	assert_string_equal(plan.sort->name, "time");
	assert_string_equal(plan.sort_text, "-time");
	assert_int_equal(plan.desc, 1);
	assert_int_equal(plan.limit, QUERY_DEFAULT_LIMIT);
	assert_int_equal(plan.nfilters, 0);
	assert_int_equal(plan.has_cursor, 0);
	qplan_free(&plan);
	/* a single trailing '&' is allowed, as libevent allows it */
	assert_int_equal(parse("limit=5&"), 0);
	assert_int_equal(plan.limit, 5);
	qplan_free(&plan);
}

static void
test_filters(void **state)
{
	const struct qplan_filter *f = plan.filters;

	(void)state;
	assert_int_equal(
	    parse("sort=name&limit=500&name=a+b%20c%zz%4&size=-7&"
	          "label=env%3Dprod&os=linux&time_from=10&time_to=20&"
	          "since=1&until=2&agent=x&q=50%25&state=whatever&limit=3"),
	    0);
	assert_string_equal(plan.sort_text, "name");
	assert_int_equal(plan.desc, 0);
	assert_int_equal(plan.limit, 3); /* the last limit counts */
	assert_int_equal(plan.nfilters, 10);
	assert_int_equal(f[0].op, QP_EQ);
	assert_string_equal(f[0].field->name, "name");
	assert_string_equal(f[0].text, "a b c%zz%4");
	assert_int_equal(f[0].is_int, 0);
	assert_int_equal(f[1].op, QP_EQ);
	assert_int_equal(f[1].is_int, 1);
	assert_int_equal(f[1].num, -7);
	assert_int_equal(f[2].op, QP_LABEL);
	assert_string_equal(f[2].text, "env");
	assert_string_equal(f[2].label, "prod");
	assert_int_equal(f[3].op, QP_MEMBER);
	assert_string_equal(f[3].text, "linux");
	assert_int_equal(f[4].op, QP_FROM);
	assert_int_equal(f[4].num, 10);
	assert_int_equal(f[5].op, QP_TO);
	assert_int_equal(f[5].num, 20);
	assert_int_equal(f[6].op, QP_GE);
	assert_int_equal(f[7].op, QP_LE);
	assert_int_equal(f[8].op, QP_EXPR);
	assert_string_equal(f[8].text, "x");
	assert_int_equal(f[9].op, QP_SEARCH);
	assert_null(f[9].field);
	assert_string_equal(f[9].text, "50%");
	qplan_free(&plan);
	/* the first sort counts; later ones are not looked at */
	assert_int_equal(parse("sort=-size&sort=bogus"), 0);
	assert_string_equal(plan.sort_text, "-size");
	assert_int_equal(plan.sort->type, QF_INT);
	qplan_free(&plan);
}

static void
test_refused(void **state)
{
	char big[600];

	(void)state;
	refused("sort=size2", "sort",
	        "sort: 'size2' is not a sort field (one of: id, name, size, "
	        "time;");
	refused("sort=label", "sort", "not a sort field");
	refused("sort=", "sort", "'' is not a sort field");
	refused("limit=0", "limit", "limit: must be an integer 1..500");
	refused("limit=501", "limit", "1..500");
	refused("limit=abc", "limit", "1..500");
	refused("limit=+5", "limit", "1..500");
	refused("size=1.5", "size", "size: must be an integer");
	refused("since=x", "since", "since: must be an integer");
	refused("time_from=yesterday", "time_from",
	        "time_from: must be an integer (Unix time in seconds)");
	refused("time_to=", "time_to", "must be an integer");
	refused("os=a%20b", "os", "os: letters, digits, '-', '_' and '.' only");
	refused("os=", "os", "letters, digits");
	refused("label=nolabel", "label", "label: must be KEY=VALUE");
	refused("label==v", "label", "KEY=VALUE");
	refused("label=k=", "label", "KEY=VALUE");
	refused("label=k=v=w", "label", "KEY=VALUE");
	refused("colour=red", "colour",
	        "colour: unknown query parameter (known: limit, cursor, sort, "
	        "q, id, name, size, label, os, time_from, time_to, since, "
	        "until, agent, state)");
	refused("id_from=1", "id_from", "unknown query parameter");
	refused("size_to=1", "size_to", "unknown query parameter");
	refused("a", "", "malformed query string");
	refused("=x", "", "malformed query string");
	refused("id=1&&id=2", "", "malformed query string");
	refused("&id=1", "", "malformed query string");
	memset(big, 'a', sizeof(big));
	memcpy(big, "name=", 5);
	big[5 + QUERY_MAX_VALUE + 1] = '\0';
	refused(big, "name", "name: longer than 256 bytes");
	big[5 + QUERY_MAX_VALUE] = '\0';
	assert_int_equal(parse(big), 0);
	qplan_free(&plan);
	/* the limit is on the decoded value */
	assert_int_equal(
	    parse("q=%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	          "%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	          "%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	          "%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	          "%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"),
	    0);
	assert_int_equal(strlen(plan.filters[0].text), 94);
	qplan_free(&plan);
}

/* A NUL byte would end the value early for SQL's C string: q=%00 would
 * then search for '' and match every row. */
static void
test_nul(void **state)
{
	(void)state;
	refused("q=%00", "q", "q: contains a NUL byte");
	refused("q=ab%00cd", "q", "contains a NUL byte");
	refused("name=%00", "name", "contains a NUL byte");
	refused("state=%00", "state", "contains a NUL byte");
	refused("cursor=%00", "cursor", "contains a NUL byte");
	refused("sort=time%00x", "sort", "sort: contains a NUL byte");
	assert_int_equal(
	    qplan_parse((const uint8_t *)"q=a\0b", 5, &spec, &plan, &err), -1);
	assert_string_equal(err.field, "q");
}

static void
test_too_many(void **state)
{
	struct buf q;
	int i;

	(void)state;
	buf_init(&q, 65536);
	for (i = 0; i < QPLAN_MAX_FILTERS; i++)
		buf_printf(&q, "%sid=%d", i ? "&" : "", i);
	assert_int_equal(parse(buf_cstr(&q)), 0);
	assert_int_equal(plan.nfilters, QPLAN_MAX_FILTERS);
	qplan_free(&plan);
	buf_puts(&q, "&size=1");
	refused(buf_cstr(&q), "size",
	        "size: too many query parameters (at most 61 filters)");
	buf_free(&q);
}

static char *
cursor_for(const char *sort, json_t *v, json_t *k)
{
	char *c = cursor_encode(sort, v, k);

	json_decref(v);
	json_decref(k);
	assert_non_null(c);
	return c;
}

static void
test_cursor(void **state)
{
	char q[4200], *c;

	(void)state;
	c = cursor_for("-time", json_integer(1795000001), json_string("x/1"));
	snprintf(q, sizeof(q), "cursor=%s", c);
	assert_int_equal(parse(q), 0);
	assert_int_equal(plan.has_cursor, 1);
	assert_int_equal(json_integer_value(plan.cursor.v), 1795000001);
	assert_string_equal(json_string_value(plan.cursor.k), "x/1");
	qplan_free(&plan);
	/* the last cursor counts */
	snprintf(q, sizeof(q), "cursor=zz&cursor=%s&limit=2", c);
	assert_int_equal(parse(q), 0);
	assert_int_equal(plan.has_cursor, 1);
	qplan_free(&plan);
	/* made for another sort */
	snprintf(q, sizeof(q), "sort=time&cursor=%s", c);
	refused(q, "cursor", "cursor: made for sort '-time', not 'time'");
	free(c);
	/* values of the wrong types for the sort and the key */
	c = cursor_for("-time", json_string("a"), json_string("x"));
	snprintf(q, sizeof(q), "cursor=%s", c);
	refused(q, "cursor", "not a cursor this endpoint returned");
	free(c);
	c = cursor_for("-time", json_integer(1), json_integer(2));
	snprintf(q, sizeof(q), "cursor=%s", c);
	refused(q, "cursor", "not a cursor this endpoint returned");
	free(c);
	refused("cursor=zz", "cursor", "not a cursor this endpoint returned");
	refused("cursor=7b7d", "cursor", "not a cursor this endpoint returned");
	refused("cursor=", "cursor", "not a cursor this endpoint returned");
	/* the sort is checked before anything else, the cursor after */
	refused("colour=1&sort=nope", "sort", "not a sort field");
	refused("cursor=zz&colour=1", "colour", "unknown query parameter");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults), cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_refused),  cmocka_unit_test(test_nul),
	    cmocka_unit_test(test_too_many), cmocka_unit_test(test_cursor),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
