/*
 * Tests of src/center/query.c: the SQL a plan becomes (filters in order,
 * the keyset condition of a cursor, COALESCE for nullable sort columns,
 * LIMIT one beyond the page), and paging through a real SQLite store:
 * for every sort, in both directions, pages of two rows over values with
 * NULLs and ties give every row exactly once, in order, and the last page
 * has no next cursor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../src/center/query.c"

static const struct query_field fields[] = {
    {"id", "id", QF_TEXT, QF_SORT | QF_EQ},
    {"name", "name", QF_TEXT, QF_SORT | QF_EQ | QF_NULL},
    {"n", "n", QF_INT, QF_SORT | QF_RANGE | QF_NULL},
    {"label", "labels", QF_TEXT, QF_LABEL},
    {"os", "facts", QF_TEXT, QF_MEMBER},
    {"agent", "id IN (SELECT id FROM t WHERE name = ?)", QF_TEXT, QF_EXPR},
    {NULL, NULL, 0, 0},
};

static const struct query_spec spec = {
    .table = "t",
    .columns = "id, name",
    .fields = fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "name",
    .search = "COALESCE(name, '')",
    .where = "id != 'hidden'",
};

static void
plan_of(const char *q, struct qplan *p)
{
	struct qplan_error err;

	buf_init(&err.msg, 4096);
	if (qplan_parse((const uint8_t *)q, strlen(q), &spec, p, &err) != 0)
		fail_msg("'%s': %s", q, buf_cstr(&err.msg));
	buf_free(&err.msg);
}

static void
test_sql(void **state)
{
	struct qplan p;
	struct query_sql b;
	char q[4200], *c;
	json_t *v = json_string("web"), *k = json_string("a1");

	(void)state;
	plan_of("name=x&n_from=5&n_to=9&label=env%3Dprod&os=linux&agent=z&"
	        "q=5%25_&limit=10",
	        &p);
	assert_int_equal(query_sql(&b, &spec, &p), 0);
	assert_string_equal(
	    buf_cstr(&b.sql),
	    "SELECT id, name, COALESCE(name, ''), id FROM t WHERE 1 = 1 AND "
	    "(id != 'hidden') AND name = ? AND n >= ? AND n < ? AND labels "
	    "LIKE ? ESCAPE '\\' AND facts LIKE ? ESCAPE '\\' AND id IN "
	    "(SELECT id FROM t WHERE name = ?) AND (COALESCE(name, '')) LIKE "
	    "? ESCAPE '\\' ORDER BY COALESCE(name, '') ASC, id ASC LIMIT 11");
	assert_int_equal(b.nargs, 7);
	assert_string_equal(b.args[0].s, "x");
	assert_int_equal(b.args[1].type, 'i');
	assert_int_equal(b.args[1].i, 5);
	assert_int_equal(b.args[2].i, 9);
	assert_string_equal(b.args[3].s, "%\"env\":\"prod\"%");
	assert_string_equal(b.args[4].s, "%\"os\":\"linux\"%");
	assert_string_equal(b.args[5].s, "z");
	assert_string_equal(b.args[6].s, "%5\\%\\_%");
	query_sql_free(&b);
	qplan_free(&p);

	/* a cursor on a non-key sort: (value, key) after the last row */
	c = cursor_encode("-name", v, k);
	snprintf(q, sizeof(q), "sort=-name&cursor=%s", c);
	free(c);
	plan_of(q, &p);
	assert_int_equal(query_sql(&b, &spec, &p), 0);
	assert_non_null(strstr(
	    buf_cstr(&b.sql),
	    " AND COALESCE(name, '') <= ? AND (COALESCE(name, '') < ? OR id "
	    "< ?) ORDER BY COALESCE(name, '') DESC, id DESC LIMIT 101"));
	assert_int_equal(b.nargs, 3);
	assert_string_equal(b.args[0].s, "web");
	assert_string_equal(b.args[1].s, "web");
	assert_string_equal(b.args[2].s, "a1");
	query_sql_free(&b);
	qplan_free(&p);

	/* a cursor on the key: the key alone */
	c = cursor_encode("id", k, k);
	snprintf(q, sizeof(q), "sort=id&cursor=%s", c);
	free(c);
	plan_of(q, &p);
	assert_int_equal(query_sql(&b, &spec, &p), 0);
	assert_string_equal(buf_cstr(&b.sql),
	                    "SELECT id, name, id, id FROM t WHERE 1 = 1 AND "
	                    "(id != 'hidden') AND id > ? ORDER BY id ASC "
	                    "LIMIT 101");
	query_sql_free(&b);
	qplan_free(&p);
	json_decref(v);
	json_decref(k);
}

static json_t *
item(struct store_rows *q, void *arg)
{
	(void)arg;
	return json_string(store_text(q, 0));
}

static const char *const migrations[] = {
    "CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT, n INTEGER, "
    "labels TEXT, facts TEXT)",
};

/* Pages through sort s two rows at a time; the ids in order, joined. */
static void
page_all(struct store *st, const char *s, struct buf *ids)
{
	struct qplan p;
	struct query_sql b;
	json_t *page, *it;
	const char *next = NULL;
	char q[4200], *held = NULL;
	size_t i;
	int pages = 0;

	buf_reset(ids);
	do {
		snprintf(q, sizeof(q), "sort=%s&limit=2%s%s", s,
		         held ? "&cursor=" : "", held ? held : "");
		plan_of(q, &p);
		assert_int_equal(query_sql(&b, &spec, &p), 0);
		assert_int_equal(
		    query_page(st, &spec, &p, &b, item, NULL, &page), 0);
		json_array_foreach(json_object_get(page, "items"), i, it)
		    buf_printf(ids, "%s ", json_string_value(it));
		free(held);
		held = NULL;
		next = json_string_value(json_object_get(page, "next_cursor"));
		if (next != NULL)
			held = strdup(next);
		else
			assert_true(
			    json_is_null(json_object_get(page, "next_cursor")));
		json_decref(page);
		query_sql_free(&b);
		qplan_free(&p);
		assert_true(++pages < 20);
	} while (held != NULL);
}

/* Closes st and removes its database, WAL and all, and dir. */
static void
store_gone(struct store *st, const char *dir, const char *db)
{
	char p[160];

	store_close(st);
	unlink(db);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	rmdir(dir);
}

static void
test_paging(void **state)
{
	char dir[] = "/tmp/vigil-test-query.XXXXXX", db[128];
	struct store *st;
	struct buf err, ids;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/vigil.db", dir);
	buf_init(&err, 1024);
	buf_init(&ids, 4096);
	st = store_open(db, migrations, 1, &err);
	assert_non_null(st);
	assert_int_equal(
	    store_exec(st,
	               "INSERT INTO t (id, name, n) VALUES ('a', 'web', 3), "
	               "('b', NULL, NULL), ('c', 'web', 1), ('d', 'db', 3), "
	               "('e', NULL, 2), ('hidden', 'web', 0), ('f', '', 3)"),
	    7);

	page_all(st, "id", &ids);
	assert_string_equal(buf_cstr(&ids), "a b c d e f ");
	page_all(st, "-id", &ids);
	assert_string_equal(buf_cstr(&ids), "f e d c b a ");
	/* NULL sorts as '' and ties fall back to the key */
	page_all(st, "name", &ids);
	assert_string_equal(buf_cstr(&ids), "b e f d a c ");
	page_all(st, "-name", &ids);
	assert_string_equal(buf_cstr(&ids), "c a d f e b ");
	page_all(st, "n", &ids);
	assert_string_equal(buf_cstr(&ids), "b c e a d f ");
	page_all(st, "-n", &ids);
	assert_string_equal(buf_cstr(&ids), "f d a e c b ");

	store_gone(st, dir, db);
	buf_free(&err);
	buf_free(&ids);
}

/* A page stops before its rows' text passes query_page_bytes (the
 * first row always): rows of a kilobyte with a budget of 2,500 bytes come
 * two a page however large the limit, a row over the budget alone, and
 * every row once, in order. Before, a page of large events (syslog
 * messages near max_message) was too large for the admin worker's
 * channel and the list answered 500. */
static void
test_page_bytes(void **state)
{
	char dir[] = "/tmp/vigil-test-query.XXXXXX", db[128];
	char big[1001], huge[5001];
	struct store *st;
	struct buf err;
	struct qplan pl;
	struct query_sql b;
	json_t *page;
	const char *held = NULL;
	char *cur = NULL, q[4200];
	int pages = 0, rows = 0, sizes[8] = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/vigil.db", dir);
	buf_init(&err, 1024);
	st = store_open(db, migrations, 1, &err);
	assert_non_null(st);
	memset(big, 'x', 1000);
	big[1000] = '\0';
	memset(huge, 'y', 5000);
	huge[5000] = '\0';
	assert_int_equal(store_exec(st,
	                            "INSERT INTO t (id, name) VALUES ('a', ?), "
	                            "('b', ?), ('c', ?), ('d', ?), ('e', ?)",
	                            S_TEXT(big), S_TEXT(big), S_TEXT(huge),
	                            S_TEXT(big), S_TEXT(big)),
	                 5);
	query_page_bytes = 2500;
	do {
		snprintf(q, sizeof(q), "sort=id&limit=100%s%s",
		         cur ? "&cursor=" : "", cur ? cur : "");
		plan_of(q, &pl);
		assert_int_equal(query_sql(&b, &spec, &pl), 0);
		assert_int_equal(
		    query_page(st, &spec, &pl, &b, item, NULL, &page), 0);
		sizes[pages] =
		    (int)json_array_size(json_object_get(page, "items"));
		rows += sizes[pages];
		free(cur);
		cur = NULL;
		held = json_string_value(json_object_get(page, "next_cursor"));
		if (held != NULL)
			cur = strdup(held);
		json_decref(page);
		query_sql_free(&b);
		qplan_free(&pl);
		assert_true(++pages < 8);
	} while (cur != NULL);
	query_page_bytes = QUERY_PAGE_BYTES;
	/* a b | c (over the budget, alone) | d e */
	assert_int_equal(rows, 5);
	assert_int_equal(pages, 3);
	assert_int_equal(sizes[0], 2);
	assert_int_equal(sizes[1], 1);
	assert_int_equal(sizes[2], 2);
	store_gone(st, dir, db);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sql),
	    cmocka_unit_test(test_paging),
	    cmocka_unit_test(test_page_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
