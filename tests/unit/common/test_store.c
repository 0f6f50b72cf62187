/*
 * Unit tests of store.c against a real SQLite file: migrations applied once
 * and in order, a failing migration rolled back and reported, a database
 * newer than the code refused, WAL mode, parameter binding and NULLs,
 * and bulk writes (store_exec_each, also with several rows per statement).
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

#include "store.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vigil-store.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static const char *const m2[] = {
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n BIGINT)",
    "ALTER TABLE t ADD COLUMN extra TEXT",
};

static void
test_migrations_once(void **state)
{
	struct store *s;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	s = store_open(path, m2, 1, &err);
	assert_non_null(s);
	assert_int_equal(store_schema_version(s), 1);
	store_close(s);
	/* Reopen with one more migration: only the new one runs. */
	s = store_open(path, m2, 2, &err);
	assert_non_null(s);
	assert_int_equal(store_schema_version(s), 2);
	assert_int_equal(
	    store_exec(s, "INSERT INTO t (name, n, extra) VALUES (?, ?, ?)",
	               S_TEXT("a"), S_INT(5LL), S_TEXT("x")),
	    1);
	store_close(s);
	s = store_open(path, m2, 2, &err);
	assert_non_null(s);
	store_close(s);
	/* The code knows fewer migrations than the file has: refused. */
	assert_null(store_open(path, m2, 1, &err));
	assert_non_null(strstr(buf_cstr(&err), "newer"));
	buf_free(&err);
}

static void
test_failed_migration(void **state)
{
	static const char *const bad[] = {
	    "CREATE TABLE a (x INT)",
	    "CREATE TABLE b (y INT); CREATE TABLE a (x INT)",
	};
	struct store *s;
	struct buf err;
	struct store_rows *r;

	(void)state;
	buf_init(&err, 4096);
	assert_null(store_open(path, bad, 2, &err));
	assert_non_null(strstr(buf_cstr(&err), "migration 2"));
	/* Migration 1 stays applied, 2 left nothing behind. */
	s = store_open(path, bad, 1, &err);
	assert_non_null(s);
	assert_int_equal(store_schema_version(s), 1);
	r = store_query(s, "SELECT COUNT(*) FROM sqlite_master WHERE name = ?",
	                S_TEXT("b"));
	assert_non_null(r);
	assert_int_equal(store_next(r), 1);
	assert_int_equal(store_int(r, 0), 0);
	store_done(r);
	store_close(s);
	buf_free(&err);
}

static void
test_query_and_nulls(void **state)
{
	struct store *s;
	struct store_rows *r;
	struct buf err;
	int n = 0;

	(void)state;
	buf_init(&err, 4096);
	s = store_open(path, m2, 1, &err);
	assert_non_null(s);
	assert_int_equal(store_exec(s, "INSERT INTO t (name, n) VALUES (?, ?)",
	                            S_TEXT("alpha"), S_INT(1LL)),
	                 1);
	assert_int_equal(store_exec(s, "INSERT INTO t (name, n) VALUES (?, ?)",
	                            S_TEXT((const char *)NULL), S_NULL),
	                 1);
	/* Quotes in values are data, not SQL. */
	assert_int_equal(store_exec(s, "INSERT INTO t (name, n) VALUES (?, ?)",
	                            S_TEXT("o'; DROP TABLE t; --"), S_INT(3LL)),
	                 1);
	r = store_query(s, "SELECT name, n FROM t ORDER BY id");
	assert_non_null(r);
	while (store_next(r) == 1) {
		if (n == 0) {
			assert_string_equal(store_text(r, 0), "alpha");
			assert_int_equal(store_int(r, 1), 1);
		} else if (n == 1) {
			assert_null(store_text(r, 0));
			assert_true(store_isnull(r, 1));
		} else
			assert_string_equal(store_text(r, 0),
			                    "o'; DROP TABLE t; --");
		n++;
	}
	store_done(r);
	assert_int_equal(n, 3);
	assert_int_equal(
	    store_exec(s, "UPDATE t SET n = 9 WHERE n = ?", S_INT(42LL)), 0);
	assert_int_equal(store_exec(s, "INSERT INTO nope VALUES (1)"), -1);
	/* Transactions: a rollback leaves nothing. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec(s, "DELETE FROM t"), 3);
	store_rollback(s);
	r = store_query(s, "SELECT COUNT(*) FROM t");
	assert_int_equal(store_next(r), 1);
	assert_int_equal(store_int(r, 0), 3);
	store_done(r);
	/* The same SQL again while a first iteration is open: both see
	 * every row (the second gets its own statement). */
	{
		static const char q[] =
		    "SELECT n FROM t WHERE n > ? ORDER BY id";
		struct store_rows *r1 = store_query(s, q, S_INT(0LL)), *r2;
		int outer = 0, inner;

		assert_non_null(r1);
		while (store_next(r1) == 1) {
			outer++;
			r2 = store_query(s, q, S_INT(0LL));
			assert_non_null(r2);
			for (inner = 0; store_next(r2) == 1; inner++)
				;
			store_done(r2);
			assert_int_equal(inner, 2);
		}
		store_done(r1);
		assert_int_equal(outer, 2);
	}
	r = store_query(s, "PRAGMA journal_mode");
	assert_int_equal(store_next(r), 1);
	assert_string_equal(store_text(r, 0), "wal");
	store_done(r);
	store_close(s);
	buf_free(&err);
}

static const char *const each_names[] = {"a", NULL, "c'd", "e", "f", "g"};

/* Row i of store_exec_each: two rows per statement (name, n, name, n). */
static void
fill_two(void *arg, size_t i, struct store_arg *v)
{
	(void)arg;
	v[0] = S_TEXT(each_names[2 * i]);
	v[1] = S_INT(2 * i);
	v[2] = S_TEXT(each_names[2 * i + 1]);
	v[3] = S_INT(2 * i + 1);
}

static void
fill_dup(void *arg, size_t i, struct store_arg *v)
{
	(void)i;
	v[0] = S_INT(*(long long *)arg);
	v[1] = S_TEXT("dup");
	v[2] = S_INT(7);
}

static void
test_exec_each(void **state)
{
	struct store *s;
	struct store_rows *r;
	struct buf err;
	long long id = 1;
	int n = 0;

	(void)state;
	buf_init(&err, 4096);
	s = store_open(path, m2, 1, &err);
	assert_non_null(s);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec_each(s,
	                                 "INSERT INTO t (name, n) VALUES "
	                                 "(?, ?), (?, ?)",
	                                 4, 3, fill_two, NULL),
	                 6);
	/* Zero rows: nothing done, nothing changed. */
	assert_int_equal(store_exec_each(s,
	                                 "INSERT INTO t (name, n) VALUES "
	                                 "(?, ?), (?, ?)",
	                                 4, 0, fill_two, NULL),
	                 0);
	assert_int_equal(store_commit(s), 0);
	r = store_query(s, "SELECT name, n FROM t ORDER BY n");
	while (store_next(r) == 1) {
		if (each_names[n] == NULL)
			assert_null(store_text(r, 0));
		else
			assert_string_equal(store_text(r, 0), each_names[n]);
		assert_int_equal(store_int(r, 1), n);
		n++;
	}
	store_done(r);
	assert_int_equal(n, 6);
	/* ON CONFLICT DO NOTHING counts only what was inserted. */
	assert_int_equal(store_exec_each(s,
	                                 "INSERT INTO t (id, name, n) VALUES "
	                                 "(?, ?, ?) ON CONFLICT (id) DO "
	                                 "NOTHING",
	                                 3, 2, fill_dup, &id),
	                 0);
	id = 100;
	assert_int_equal(store_exec_each(s,
	                                 "INSERT INTO t (id, name, n) VALUES "
	                                 "(?, ?, ?) ON CONFLICT (id) DO "
	                                 "NOTHING",
	                                 3, 3, fill_dup, &id),
	                 1);
	/* A failing row: -1, and the statement is usable again. */
	assert_int_equal(store_exec_each(s,
	                                 "INSERT INTO t (id, name, n) VALUES "
	                                 "(?, ?, ?)",
	                                 3, 2, fill_dup, &id),
	                 -1);
	id = 101;
	assert_int_equal(store_exec_each(s,
	                                 "INSERT INTO t (id, name, n) VALUES "
	                                 "(?, ?, ?)",
	                                 3, 1, fill_dup, &id),
	                 1);
	store_close(s);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrations_once, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failed_migration, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_query_and_nulls, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_exec_each, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
