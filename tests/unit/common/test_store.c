/*
 * Unit tests of store.c against a real SQLite file: migrations applied once
 * and in order, a failing migration rolled back and reported, a database
 * newer than the code refused, WAL mode, parameter binding and NULLs,
 * and bulk writes (store_exec_each, also with several rows per statement);
 * nested transactions (savepoints), units of work that commit or roll back
 * as a whole, their lazy BEGIN, actions that wait for the commit, a unit
 * whose transaction SQLite ended on its own, and a full database told
 * apart from other failures.
 *
 * With VIGIL_TEST_PG_URL set (CTest's unit-pg/common/test_store, through
 * tests/unit/pg_run.sh) the same tests run against a real PostgreSQL,
 * each on an emptied schema; the two that make SQLite itself fail (a
 * full database, a transaction SQLite ended) are SQLite's alone; the
 * notifications between nodes (store_listen) are PostgreSQL's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

static char dir[64];
static char path[512];
static const char *pg; /* VIGIL_TEST_PG_URL */

static int
setup(void **state)
{
	struct store *s;
	struct buf err;
	int rc;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vigil-store.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	if (pg == NULL)
		return 0;
	/* A new, empty schema for each test. */
	snprintf(path, sizeof(path), "%s", pg);
	buf_init(&err, 4096);
	if ((s = store_open_readonly(path, &err)) == NULL) {
		fprintf(stderr, "%s\n", buf_cstr(&err));
		return -1;
	}
	rc = store_exec(s, "SET default_transaction_read_only = off") < 0 ||
	             store_exec(s, "DROP SCHEMA public CASCADE") < 0 ||
	             store_exec(s, "CREATE SCHEMA public") < 0
	         ? -1
	         : 0;
	store_close(s);
	buf_free(&err);
	return rc;
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
	r = store_query(
	    s,
	    pg ? "SELECT COUNT(*) FROM information_schema.tables "
	         "WHERE table_schema = 'public' AND table_name = ?"
	       : "SELECT COUNT(*) FROM sqlite_master WHERE name = ?",
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
	if (pg == NULL) {
		r = store_query(s, "PRAGMA journal_mode");
		assert_int_equal(store_next(r), 1);
		assert_string_equal(store_text(r, 0), "wal");
		store_done(r);
	}
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

/* --- transactions ------------------------------------------------------- */

static const char *const mt[] = {
    "CREATE TABLE t (name TEXT PRIMARY KEY)",
};

/* The names in t, "a,c", read through the connection s. */
static void
names(struct store *s, char *out, size_t n)
{
	struct store_rows *r;
	size_t len = 0;

	out[0] = '\0';
	r = store_query(s, "SELECT name FROM t ORDER BY name");
	assert_non_null(r);
	while (store_next(r) == 1)
		len += (size_t)snprintf(out + len, n - len, "%s%s",
		                        len ? "," : "", store_text(r, 0));
	store_done(r);
}

static int
ins(struct store *s, const char *name)
{
	return store_exec(s, "INSERT INTO t (name) VALUES (?)", S_TEXT(name));
}

/* What the actions were told, in order: "a1 b0 ...". */
static char told[256];

static void
action(void *arg, int committed)
{
	size_t n = strlen(told);

	snprintf(told + n, sizeof(told) - n, "%s%s%d", n ? " " : "",
	         (const char *)arg, committed);
}

static struct store *
open_t(struct buf *err)
{
	struct store *s = store_open(path, mt, 1, err);

	assert_non_null(s);
	return s;
}

/* Outside a unit: store_begin nests as savepoints; only the outermost
 * commit makes anything durable, an inner rollback undoes its part. */
static void
test_nested(void **state)
{
	struct store *s, *o;
	struct buf err;
	char got[128];

	(void)state;
	buf_init(&err, 4096);
	s = open_t(&err);
	o = open_t(&err);
	told[0] = '\0';
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(ins(s, "a"), 1);
	store_after_commit(s, action, "a");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(ins(s, "b"), 1);
	store_after_commit(s, action, "b");
	store_rollback(s);
	assert_string_equal(told, "b0");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(ins(s, "c"), 1);
	store_after_commit(s, action, "c");
	assert_int_equal(store_commit(s), 0);
	names(o, got, sizeof(got));
	assert_string_equal(got, ""); /* not committed yet */
	assert_string_equal(told, "b0");
	assert_int_equal(store_commit(s), 0);
	assert_string_equal(told, "b0 a1 c1");
	names(o, got, sizeof(got));
	assert_string_equal(got, "a,c");
	/* Outside any transaction an action runs at once. */
	store_after_commit(s, action, "d");
	assert_string_equal(told, "b0 a1 c1 d1");
	/* A rollback with nothing open does nothing. */
	store_rollback(s);
	store_close(o);
	store_close(s);
	buf_free(&err);
}

/* A unit: reads take no lock until its first write; its handlers' own
 * transactions are savepoints of it; it commits or rolls back whole. */
static void
test_unit(void **state)
{
	struct store *s, *o;
	struct buf err;
	char got[128];

	(void)state;
	buf_init(&err, 4096);
	s = open_t(&err);
	o = open_t(&err);
	told[0] = '\0';

	store_unit_begin(s);
	assert_true(store_unit_active(s));
	names(s, got, sizeof(got));
	/* Only a read so far: another writer is not held up. */
	assert_int_equal(store_begin(o), 0);
	assert_int_equal(ins(o, "o"), 1);
	assert_int_equal(store_commit(o), 0);
	assert_int_equal(ins(s, "x"), 1); /* opens the transaction */
	store_after_commit(s, action, "x");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(ins(s, "y"), 1);
	store_after_commit(s, action, "y");
	store_rollback(s); /* the handler's part only */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(ins(s, "z"), 1);
	store_after_commit(s, action, "z");
	assert_int_equal(store_commit(s), 0); /* a savepoint: not durable */
	store_rollback(s); /* nothing of the caller's open: no effect */
	names(o, got, sizeof(got));
	assert_string_equal(got, "o");
	assert_string_equal(told, "y0");
	store_unit_rollback(s);
	assert_false(store_unit_active(s));
	assert_string_equal(told, "y0 x0 z0");
	names(s, got, sizeof(got));
	assert_string_equal(got, "o");

	told[0] = '\0';
	store_unit_begin(s);
	assert_int_equal(store_begin(s), 0); /* opens it too */
	assert_int_equal(ins(s, "p"), 1);
	store_after_commit(s, action, "p");
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(ins(s, "q"), 1);
	store_after_commit(s, action, "q");
	assert_int_equal(store_unit_commit(s), 0);
	assert_string_equal(told, "p1 q1");
	names(o, got, sizeof(got));
	assert_string_equal(got, "o,p,q");

	/* A unit that wrote nothing commits nothing, and succeeds. */
	told[0] = '\0';
	store_unit_begin(s);
	store_after_commit(s, action, "n");
	assert_string_equal(told, "");
	assert_int_equal(store_unit_commit(s), 0);
	assert_string_equal(told, "n1");

	/* A store_begin left open fails the unit: nothing is kept. */
	told[0] = '\0';
	store_unit_begin(s);
	assert_int_equal(ins(s, "r"), 1);
	store_after_commit(s, action, "r");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_unit_commit(s), -1);
	assert_string_equal(told, "r0");
	names(o, got, sizeof(got));
	assert_string_equal(got, "o,p,q");
	/* The connection is usable (no transaction left behind). */
	assert_int_equal(store_begin(o), 0);
	assert_int_equal(store_commit(o), 0);
	assert_int_equal(ins(s, "s"), 1);

	/* A transaction someone left open is committed (as the next
	 * COMMIT would have done), not swallowed by the unit. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(ins(s, "t"), 1);
	store_unit_begin(s);
	assert_int_equal(ins(s, "u"), 1);
	store_unit_rollback(s);
	names(o, got, sizeof(got));
	assert_string_equal(got, "o,p,q,s,t");

	store_close(o);
	store_close(s);
	buf_free(&err);
}

/* PostgreSQL fails the whole transaction at a failed statement (here a
 * duplicate key): the unit fails whole, a later write is refused, its
 * commit reports the failure, and the connection is usable after. */
static void
test_unit_failed_pg(void **state)
{
	struct store *s, *o;
	struct buf err;
	char got[128];

	(void)state;
	if (pg == NULL)
		skip(); /* SQLite keeps the transaction (a constraint) */
	buf_init(&err, 4096);
	s = open_t(&err);
	o = open_t(&err);
	told[0] = '\0';
	assert_int_equal(ins(s, "a"), 1);
	store_unit_begin(s);
	assert_int_equal(ins(s, "b"), 1);
	store_after_commit(s, action, "b");
	assert_int_equal(ins(s, "a"), -1); /* duplicate */
	assert_string_equal(told, "b0");
	assert_int_equal(ins(s, "c"), -1); /* refused */
	assert_int_equal(store_unit_commit(s), -1);
	names(o, got, sizeof(got));
	assert_string_equal(got, "a");
	assert_int_equal(ins(s, "d"), 1);
	names(o, got, sizeof(got));
	assert_string_equal(got, "a,d");
	store_close(o);
	store_close(s);
	buf_free(&err);
}

/* SQLite may end a transaction on its own (a full disk, an I/O error):
 * the unit then fails whole; a later write is refused rather than
 * committed alone, and its commit reports the failure. */
static void
test_unit_ended_by_sqlite(void **state)
{
	struct store *s, *o;
	struct buf err;
	char got[128];

	(void)state;
	if (pg != NULL)
		skip(); /* SQLite's own failures */
	buf_init(&err, 4096);
	s = open_t(&err);
	o = open_t(&err);
	told[0] = '\0';
	store_unit_begin(s);
	assert_int_equal(ins(s, "a"), 1);
	store_after_commit(s, action, "a");
	/* What SQLite does after such an error, done here by hand. */
	assert_true(store_exec(s, "ROLLBACK") >= 0);
	assert_int_equal(ins(s, "b"), -1);
	assert_int_equal(store_begin(s), -1);
	assert_string_equal(told, "a0");
	assert_int_equal(store_unit_commit(s), -1);
	names(o, got, sizeof(got));
	assert_string_equal(got, "");
	assert_int_equal(ins(s, "c"), 1); /* after the unit: as usual */
	store_close(o);
	store_close(s);
	buf_free(&err);
}

/* A full database is told apart (vigild answers 507 for it). */
static void
test_failure_kinds(void **state)
{
	struct store *s;
	struct buf err;
	char name[2048];
	int i, rc = 1;

	(void)state;
	if (pg != NULL)
		skip(); /* SQLite's own failures */
	buf_init(&err, 4096);
	s = open_t(&err);
	assert_int_equal(ins(s, "a"), 1);
	assert_int_equal(ins(s, "a"), -1);
	assert_int_equal(store_last_failure(s), STORE_FAIL_OTHER);
	assert_non_null(strstr(store_last_error(s), "UNIQUE"));
	/* Room for no more pages than the file has now. */
	{
		struct store_rows *r;

		r = store_query(s, "PRAGMA page_count");
		assert_non_null(r);
		assert_int_equal(store_next(r), 1);
		snprintf(name, sizeof(name), "PRAGMA max_page_count = %lld",
		         store_int(r, 0));
		store_done(r);
	}
	assert_true(store_exec(s, name) >= 0);
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	for (i = 0; i < 100 && rc == 1; i++) {
		name[0] = (char)('A' + i % 26);
		name[1] = (char)('A' + i / 26);
		rc = ins(s, name);
	}
	assert_int_equal(rc, -1);
	assert_int_equal(store_last_failure(s), STORE_FAIL_FULL);
	store_close(s);
	buf_free(&err);
}

static void
got_note(void *arg, const char *payload)
{
	char *out = arg;

	strncat(out, payload, 63 - strlen(out));
	strncat(out, ";", 63 - strlen(out));
}

/* NOTIFY reaches a listener on a connection of its own when the
 * transaction that sent it commits, and never for a rollback. */
static void
test_listen(void **state)
{
	struct store_listener *l;
	struct store_rows *r;
	struct store *s;
	struct pollfd pfd;
	struct buf err;
	char got[64] = "";
	int i;

	(void)state;
	buf_init(&err, 4096);
	if (pg == NULL) {
		assert_null(store_listen(path, "vigil_test", &err));
		assert_non_null(strstr(buf_cstr(&err), "PostgreSQL"));
		buf_free(&err);
		return;
	}
	s = open_t(&err);
	assert_non_null(l = store_listen(path, "vigil_test", &err));
	assert_int_equal(store_begin(s), 0);
	r = store_query(s, "SELECT pg_notify('vigil_test', ?)", S_TEXT("no"));
	store_done(r);
	store_rollback(s);
	assert_int_equal(store_begin(s), 0);
	r = store_query(s, "SELECT pg_notify('vigil_test', ?)", S_TEXT("yes"));
	store_done(r);
	assert_int_equal(store_commit(s), 0);
	pfd.fd = store_listener_fd(l);
	pfd.events = POLLIN;
	for (i = 0; i < 50 && got[0] == '\0'; i++) {
		if (poll(&pfd, 1, 100) > 0)
			assert_int_equal(store_listener_read(l, got_note, got),
			                 0);
	}
	assert_string_equal(got, "yes;");
	store_listener_close(l);
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
	    cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unit_ended_by_sqlite, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unit_failed_pg, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failure_kinds, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_listen, setup, teardown),
	};

	pg = getenv("VIGIL_TEST_PG_URL");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
