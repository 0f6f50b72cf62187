/*
 * store: SQLite back end of store.h. One connection per process, used from
 * the event loop only. WAL mode with synchronous=FULL: an acknowledged write
 * survives a power cut. Prepared statements are cached by SQL text so hot
 * paths never re-parse SQL.
 *
 * Transactions nest (store_begin inside one is a SAVEPOINT), and a unit of
 * work (store_unit_begin) opens its BEGIN IMMEDIATE lazily, at its first
 * write: reads before it take no lock, so a unit that first hashes a
 * password or asks a directory server holds nobody up meanwhile. Actions
 * registered with store_after_commit run once the outermost transaction
 * commits, and are dropped (told so) when the part they belong to is
 * rolled back. SQLite may end a transaction on its own (disk full, I/O
 * error): that is noticed after each failure, and a unit it happened to
 * fails as a whole (its later writes are refused, its commit fails) rather
 * than committing what came after in a transaction of their own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_pg.h"

#define STMT_CACHE 64
#define MAX_DEPTH  32 /* nested store_begin calls */

struct after_commit {
	void (*fn)(void *arg, int committed);
	void *arg;
	int depth; /* s->depth when registered */
};

struct cached_stmt {
	char *sql; /* our own copy: callers may build SQL in buffers */
	sqlite3_stmt *st;
	int busy; /* rows of a query still open on it */
};

struct store {
	sqlite3 *db;
	struct store_pg *pg; /* PostgreSQL instead of db (store_pg.c) */
	long long pg_changes;
	struct cached_stmt cache[STMT_CACHE];
	size_t ncache;
	int version;
	/* Statements that failed while running (not while being prepared):
	 * a caller that saw no rows can tell "none" from "unreadable". */
	unsigned long errors;
	/* Transactions: depth counts store_begin calls still open (in a
	 * unit, each one a savepoint); tx is 1 while SQLite has one open. */
	int depth;
	int tx;
	int unit;        /* store_unit_begin .. commit / rollback */
	int unit_failed; /* its transaction ended without us: commit fails */
	struct after_commit *after;
	size_t nafter, capafter;
	/* The last failure, for callers that answer by its kind. */
	int last_failure; /* enum store_failure */
	char last_error[256];
};

static void tx_check(struct store *s);
static int unit_write(struct store *s, int readonly, const char *sql);
static void after_run(struct store *s, int committed, int from);

/* The kind and message of a failure just seen on s->db. */
static void
note_failure(struct store *s, const char *msg)
{
	if (s->pg != NULL)
		return; /* noted by pg_failed */
	switch (sqlite3_errcode(s->db)) {
	case SQLITE_FULL:
		s->last_failure = STORE_FAIL_FULL;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		s->last_failure = STORE_FAIL_BUSY;
		break;
	default:
		s->last_failure = STORE_FAIL_OTHER;
	}
	snprintf(s->last_error, sizeof(s->last_error), "%s",
	         msg != NULL ? msg : sqlite3_errmsg(s->db));
}

/*
 * One failed statement: counted, and logged with the table it touched, so
 * that "database disk image is malformed" says where. The table is the
 * first name after FROM / INTO / UPDATE in the SQL (enough for our SQL).
 */
static void
step_failed(struct store *s, sqlite3_stmt *st)
{
	const char *sql = sqlite3_sql(st), *p = NULL, *kw;
	static const char *const kws[] = {" FROM ", " INTO ", "UPDATE "};
	size_t i, n = 0;

	s->errors++;
	for (i = 0; sql != NULL && i < sizeof(kws) / sizeof(kws[0]); i++) {
		if ((kw = strstr(sql, kws[i])) != NULL &&
		    (p == NULL || kw < p)) {
			p = kw + strlen(kws[i]);
		}
	}
	if (p != NULL)
		n = strcspn(p, " (,;");
	note_failure(s, NULL);
	log_warnx("store: table %.*s: %s (%s)", (int)n, p != NULL ? p : "?",
	          sqlite3_errmsg(s->db), sql != NULL ? sql : "?");
	tx_check(s);
}

/* A failure on PostgreSQL: kind and message from store_pg. */
static void
pg_failed(struct store *s, const char *sql, const char *msg, int kind,
          int counted)
{
	s->last_failure = kind;
	snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
	if (counted) {
		s->errors++;
		log_warnx("store: %s (%s)", msg, sql);
	}
	tx_check(s);
}

/* 1 while the back end has a transaction open. */
static int
in_tx(struct store *s)
{
	if (s->pg != NULL)
		return store_pg_in_tx(s->pg);
	return !sqlite3_get_autocommit(s->db);
}

/* What opens a write transaction: one writer at a time on both. */
static const char *
begin_sql(const struct store *s)
{
	return s->pg != NULL ? STORE_PG_BEGIN : "BEGIN IMMEDIATE";
}

unsigned long
store_errors(const struct store *s)
{
	return s->errors;
}

struct store_rows {
	struct store *s;
	sqlite3_stmt *st;
	struct store_pg_res *res; /* PostgreSQL: the rows, read whole */
	int row;
	struct timespec t0;
};

static double
elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static sqlite3_stmt *
stmt_get(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	for (i = 0; i < s->ncache; i++) {
		if (strcmp(s->cache[i].sql, sql) != 0)
			continue;
		/* The same SQL while an earlier query on it is still being
		 * read: a private statement, finalized when done. */
		if (s->cache[i].busy)
			break;
		return s->cache[i].st;
	}
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	                       NULL) != SQLITE_OK) {
		log_warnx("store: prepare: %s: %s", sqlite3_errmsg(s->db), sql);
		return NULL;
	}
	if (i == s->ncache && s->ncache < STMT_CACHE &&
	    (s->cache[s->ncache].sql = strdup(sql)) != NULL) {
		s->cache[s->ncache].st = st;
		s->cache[s->ncache].busy = 0;
		s->ncache++;
		return st;
	}
	/* Cache full: a caller building SQL dynamically. Still works, but
	 * the statement is finalized when its rows are done. */
	return st;
}

static int
stmt_cached(struct store *s, sqlite3_stmt *st)
{
	size_t i;

	for (i = 0; i < s->ncache; i++)
		if (s->cache[i].st == st)
			return 1;
	return 0;
}

static void
stmt_busy(struct store *s, sqlite3_stmt *st, int busy)
{
	size_t i;

	for (i = 0; i < s->ncache; i++)
		if (s->cache[i].st == st)
			s->cache[i].busy = busy;
}

static void
stmt_release(struct store *s, sqlite3_stmt *st)
{
	stmt_busy(s, st, 0);
	if (stmt_cached(s, st)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else
		sqlite3_finalize(st);
}

static int
bind_args(struct store *s, sqlite3_stmt *st, const struct store_arg *args,
          size_t n)
{
	size_t k;
	int rc = SQLITE_OK;

	if ((size_t)sqlite3_bind_parameter_count(st) != n)
		fatalx("store: %zu parameters for %d placeholders in %s", n,
		       sqlite3_bind_parameter_count(st), sqlite3_sql(st));
	for (k = 0; k < n && rc == SQLITE_OK; k++) {
		if (args[k].type == 's')
			rc = args[k].s
			         ? sqlite3_bind_text(st, (int)k + 1, args[k].s,
			                             -1, SQLITE_TRANSIENT)
			         : sqlite3_bind_null(st, (int)k + 1);
		else if (args[k].type == 'i')
			rc = sqlite3_bind_int64(st, (int)k + 1, args[k].i);
		else
			fatalx("store: bad parameter type '%c'", args[k].type);
	}
	if (rc != SQLITE_OK) {
		log_warnx("store: bind %zu: %s", k, sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

static int
exec_plain(struct store *s, const char *sql, struct buf *err)
{
	char *msg = NULL;

	if (s->pg != NULL) {
		char m[sizeof(s->last_error)];
		int kind;

		if (store_pg_exec(s->pg, sql, m, sizeof(m), &kind) == 0)
			return 0;
		if (err)
			buf_printf(err, "%s", m);
		else
			log_warnx("store: %s", m);
		pg_failed(s, sql, m, kind, 0);
		return -1;
	}
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		note_failure(s, msg);
		if (err)
			buf_printf(err, "%s", msg ? msg : "unknown error");
		else
			log_warnx("store: %s", msg ? msg : "unknown error");
		sqlite3_free(msg);
		tx_check(s);
		return -1;
	}
	return 0;
}

/* The schema version recorded in the database (0: none yet). */
static int
recorded_version(struct store *s)
{
	struct store_rows *r;
	int v = -1;

	if ((r = store_query(
	         s,
	         "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")) ==
	    NULL)
		return -1;
	if (store_next(r) == 1)
		v = (int)store_int(r, 0);
	store_done(r);
	return v;
}

/*
 * Each migration in its own write transaction. On PostgreSQL the version
 * is read again once the writers' lock is held: several vigild nodes
 * starting at once apply each migration once, the others see it done.
 */
static int
migrate(struct store *s, const char *path, const char *const *migrations,
        size_t n, struct buf *err)
{
	struct buf sql;
	const char *text;
	size_t v;
	int rc = -1, now;

	buf_init(&sql, 1 << 20);
	if (exec_plain(
	        s,
	        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	        "version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
	        err) == -1)
		goto out;
	if ((s->version = recorded_version(s)) == -1) {
		buf_printf(err, "%s: cannot read the schema version", path);
		goto out;
	}
	if ((size_t)s->version > n) {
		buf_printf(
		    err,
		    "%s: database schema version %d is newer than this "
		    "vigild (knows %zu); run the newer vigild or restore a "
		    "backup",
		    path, s->version, n);
		goto out;
	}
	for (v = (size_t)s->version; v < n; v++) {
		if (exec_plain(s, begin_sql(s), err) == -1)
			goto out;
		if ((now = recorded_version(s)) > (int)v) {
			exec_plain(s, "COMMIT", NULL);
			s->version = now;
			v = (size_t)now - 1;
			continue;
		}
		if (s->pg != NULL) {
			if (store_pg_migration(migrations[v], &sql) == -1)
				text = "migration too long";
			else
				text = buf_cstr(&sql);
		} else
			text = store_sqlite_part(migrations[v], &sql);
		if (exec_plain(s, text, err) == -1 ||
		    store_exec(
		        s,
		        "INSERT INTO schema_migrations (version, applied_at) "
		        "VALUES (?, ?)",
		        S_INT(v + 1), S_INT(time(NULL))) != 1) {
			buf_printf(err, " (%s: migration %zu failed)", path,
			           v + 1);
			exec_plain(s, "ROLLBACK", NULL);
			goto out;
		}
		if (exec_plain(s, "COMMIT", err) == -1) {
			exec_plain(s, "ROLLBACK", NULL);
			goto out;
		}
		log_info("store: %s: applied migration %zu", path, v + 1);
		s->version = (int)v + 1;
	}
	rc = 0;
out:
	buf_free(&sql);
	return rc;
}

/*
 * Every statement is timed into vigil_store_seconds: declared here, before
 * the first one, so that a program that never declared it (vigilctl, and
 * vigild -n checking [store] url before its metrics exist) does not warn
 * that it was used undeclared. Declaring it again is harmless.
 */
static void
declare_metrics(void)
{
	metrics_declare("vigil_store_seconds", METRIC_SUMMARY,
	                "store latency by operation");
}

struct store *
store_open(const char *path, const char *const *migrations, size_t n,
           struct buf *err)
{
	struct store *s;

	declare_metrics();
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		buf_printf(err, "%s: out of memory", path);
		return NULL;
	}
	if (store_pg_is_url(path)) {
		if ((s->pg = store_pg_open(path, err)) == NULL)
			goto fail;
		if (migrate(s, store_pg_redact(path), migrations, n, err) == -1)
			goto fail;
		return s;
	}
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                        SQLITE_OPEN_NOFOLLOW,
	                    NULL) != SQLITE_OK) {
		buf_printf(err, "%s: %s", path,
		           s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* 64 MiB of page cache: event inserts touch three b-trees. */
	if (exec_plain(s,
	               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	               "PRAGMA cache_size=-65536; "
	               "PRAGMA foreign_keys=ON",
	               err) == -1) {
		buf_printf(err, " (%s)", path);
		goto fail;
	}
	if (migrate(s, path, migrations, n, err) == -1)
		goto fail;
	return s;
fail:
	store_close(s);
	return NULL;
}

struct store *
store_open_readonly(const char *target, struct buf *err)
{
	struct store *s;

	declare_metrics();
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		buf_printf(err, "%s: out of memory", target);
		return NULL;
	}
	if (store_pg_is_url(target)) {
		if ((s->pg = store_pg_open(target, err)) == NULL ||
		    exec_plain(s, "SET default_transaction_read_only = on",
		               err) == -1)
			goto fail;
		return s;
	}
	if (sqlite3_open_v2(target, &s->db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		buf_printf(err, "%s: %s", target,
		           s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	return s;
fail:
	store_close(s);
	return NULL;
}

int
store_is_url(const char *target)
{
	return store_pg_is_url(target);
}

const char *
store_redact_url(const char *url)
{
	return store_pg_redact(url);
}

int
store_is_pg(const struct store *s)
{
	return s->pg != NULL;
}

void
store_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ncache; i++) {
		sqlite3_finalize(s->cache[i].st);
		free(s->cache[i].sql);
	}
	/* Actions still waiting belong to a transaction that never
	 * committed: closing rolls it back. */
	after_run(s, 0, 0);
	free(s->after);
	if (s->pg != NULL)
		store_pg_close(s->pg);
	else
		sqlite3_close(s->db);
	free(s);
}

int
store_schema_version(struct store *s)
{
	return s->version;
}

/*
 * PostgreSQL: a write outside any transaction gets one of its own, with
 * the writers' lock (store_pg.h says why). 1 when one was opened, 0 when
 * none is needed, -1 on failure.
 */
static int
pg_autotx(struct store *s, int readonly)
{
	if (readonly || s->tx || s->unit || in_tx(s))
		return 0;
	return exec_plain(s, begin_sql(s), NULL) == -1 ? -1 : 1;
}

static int
pg_autotx_end(struct store *s, int opened, int ok)
{
	if (opened != 1)
		return ok ? 0 : -1;
	if (ok && exec_plain(s, "COMMIT", NULL) == 0)
		return 0;
	if (in_tx(s))
		exec_plain(s, "ROLLBACK", NULL);
	return -1;
}

/* One statement on PostgreSQL: its result, or NULL (counted, logged). */
static struct store_pg_res *
pg_run(struct store *s, const char *sql, const struct store_arg *args, size_t n,
       long long *changed)
{
	struct store_pg_res *r;
	char msg[sizeof(s->last_error)];
	int kind;

	if ((r = store_pg_run(s->pg, sql, args, n, changed, msg, sizeof(msg),
	                      &kind)) == NULL)
		pg_failed(s, sql, msg, kind, 1);
	else
		s->pg_changes += *changed;
	return r;
}

static int
pg_exec_args(struct store *s, const char *sql, const struct store_arg *args,
             size_t n)
{
	struct store_pg_res *r = NULL;
	long long changed = 0;
	int ro = store_pg_readonly(sql), opened;

	if (unit_write(s, ro, sql) == -1 || (opened = pg_autotx(s, ro)) == -1)
		return -1;
	r = pg_run(s, sql, args, n, &changed);
	store_pg_free(r);
	if (pg_autotx_end(s, opened, r != NULL) == -1)
		return -1;
	return (int)changed;
}

int
store_exec_args(struct store *s, const char *sql, const struct store_arg *args,
                size_t n)
{
	struct timespec t0;
	sqlite3_stmt *st;
	int rc, ret = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (s->pg != NULL) {
		ret = pg_exec_args(s, sql, args, n);
		metrics_observe("vigil_store_seconds", "op=\"exec\"",
		                elapsed(&t0));
		return ret;
	}
	if ((st = stmt_get(s, sql)) == NULL)
		return -1;
	if (unit_write(s, sqlite3_stmt_readonly(st), sqlite3_sql(st)) == -1) {
		stmt_release(s, st);
		return -1;
	}
	rc = bind_args(s, st, args, n);
	if (rc == 0) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc == SQLITE_DONE)
			ret = sqlite3_changes(s->db);
		else
			step_failed(s, st);
	}
	stmt_release(s, st);
	metrics_observe("vigil_store_seconds", "op=\"exec\"", elapsed(&t0));
	return ret;
}

#define EACH_MAX_PARAMS 512

int
store_exec_each(struct store *s, const char *sql, size_t nt, size_t n,
                void (*fill)(void *arg, size_t i, struct store_arg *v),
                void *arg)
{
	struct store_arg v[EACH_MAX_PARAMS];
	struct timespec t0;
	sqlite3_stmt *st;
	size_t i, k;
	int rc = SQLITE_OK, total = 0;

	if (nt > EACH_MAX_PARAMS)
		fatalx("%s: more than %d parameters", __func__,
		       EACH_MAX_PARAMS);
	memset(v, 0, nt * sizeof(*v));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (s->pg != NULL) {
		long long changed;
		struct store_pg_res *r;
		int ro = store_pg_readonly(sql), opened;

		if (unit_write(s, ro, sql) == -1 ||
		    (opened = pg_autotx(s, ro)) == -1)
			return -1;
		for (i = 0; i < n; i++) {
			fill(arg, i, v);
			for (k = 0; k < nt; k++)
				if (v[k].type != 's' && v[k].type != 'i')
					fatalx("%s: parameter %zu not bound",
					       __func__, k + 1);
			if ((r = pg_run(s, sql, v, nt, &changed)) == NULL)
				break;
			store_pg_free(r);
			total += (int)changed;
		}
		if (pg_autotx_end(s, opened, i == n) == -1)
			i = 0, n = 1;
		metrics_observe("vigil_store_seconds", "op=\"exec\"",
		                elapsed(&t0));
		return i == n ? total : -1;
	}
	if ((st = stmt_get(s, sql)) == NULL)
		return -1;
	if (unit_write(s, sqlite3_stmt_readonly(st), sqlite3_sql(st)) == -1) {
		stmt_release(s, st);
		return -1;
	}
	if ((size_t)sqlite3_bind_parameter_count(st) != nt)
		fatalx("%s: %zu parameters for %d placeholders", __func__, nt,
		       sqlite3_bind_parameter_count(st));
	for (i = 0; i < n; i++) {
		fill(arg, i, v);
		for (k = 0; k < nt && rc == SQLITE_OK; k++) {
			if (v[k].type == 's')
				rc = v[k].s ? sqlite3_bind_text(st, (int)k + 1,
				                                v[k].s, -1,
				                                SQLITE_STATIC)
				            : sqlite3_bind_null(st, (int)k + 1);
			else if (v[k].type == 'i')
				rc = sqlite3_bind_int64(st, (int)k + 1, v[k].i);
			else
				fatalx("%s: parameter %zu not bound", __func__,
				       k + 1);
		}
		if (rc != SQLITE_OK) {
			log_warnx("store: bind: %s", sqlite3_errmsg(s->db));
			break;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			step_failed(s, st);
			break;
		}
		rc = SQLITE_OK;
		total += sqlite3_changes(s->db);
		sqlite3_reset(st);
	}
	stmt_release(s, st);
	metrics_observe("vigil_store_seconds", "op=\"exec\"", elapsed(&t0));
	return i == n ? total : -1;
}

struct store_rows *
store_query_args(struct store *s, const char *sql, const struct store_arg *args,
                 size_t n)
{
	struct store_rows *r;
	sqlite3_stmt *st;

	if (s->pg != NULL) {
		long long changed;
		int ro = store_pg_readonly(sql), opened;

		if ((r = calloc(1, sizeof(*r))) == NULL)
			return NULL;
		clock_gettime(CLOCK_MONOTONIC, &r->t0);
		r->s = s;
		r->row = -1;
		if (unit_write(s, ro, sql) == -1 ||
		    (opened = pg_autotx(s, ro)) == -1) {
			free(r);
			return NULL;
		}
		r->res = pg_run(s, sql, args, n, &changed);
		if (pg_autotx_end(s, opened, r->res != NULL) == -1 ||
		    r->res == NULL) {
			store_done(r);
			return NULL;
		}
		return r;
	}
	if ((st = stmt_get(s, sql)) == NULL)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		stmt_release(s, st);
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	r->s = s;
	r->st = st;
	stmt_busy(s, st, 1);
	if (unit_write(s, sqlite3_stmt_readonly(st), sqlite3_sql(st)) == -1 ||
	    bind_args(s, st, args, n) == -1) {
		store_done(r);
		return NULL;
	}
	return r;
}

int
store_next(struct store_rows *r)
{
	int rc;

	if (r->res != NULL)
		return ++r->row < store_pg_nrows(r->res) ? 1 : 0;
	rc = sqlite3_step(r->st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	step_failed(r->s, r->st);
	return -1;
}

const char *
store_text(struct store_rows *r, int col)
{
	if (r->res != NULL)
		return store_pg_text(r->res, r->row, col);
	return (const char *)sqlite3_column_text(r->st, col);
}

long long
store_int(struct store_rows *r, int col)
{
	const char *t;

	if (r->res != NULL) {
		t = store_pg_text(r->res, r->row, col);
		return t != NULL ? strtoll(t, NULL, 10) : 0;
	}
	return sqlite3_column_int64(r->st, col);
}

int
store_isnull(struct store_rows *r, int col)
{
	if (r->res != NULL)
		return store_pg_isnull(r->res, r->row, col);
	return sqlite3_column_type(r->st, col) == SQLITE_NULL;
}

int
store_ncols(struct store_rows *r)
{
	if (r->res != NULL)
		return store_pg_ncols(r->res);
	return sqlite3_column_count(r->st);
}

const char *
store_colname(struct store_rows *r, int col)
{
	if (r->res != NULL)
		return store_pg_colname(r->res, col);
	return sqlite3_column_name(r->st, col);
}

int
store_isint(struct store_rows *r, int col)
{
	if (r->res != NULL)
		return store_pg_isint(r->res, col) &&
		       !store_pg_isnull(r->res, r->row, col);
	return sqlite3_column_type(r->st, col) == SQLITE_INTEGER;
}

void
store_done(struct store_rows *r)
{
	if (r == NULL)
		return;
	if (r->s->pg != NULL)
		store_pg_free(r->res);
	else
		stmt_release(r->s, r->st);
	metrics_observe("vigil_store_seconds", "op=\"query\"", elapsed(&r->t0));
	free(r);
}

/* --- transactions ----------------------------------------------------- */

/*
 * Runs (committed) or drops the actions registered at a depth of from or
 * more; the others stay. Taken off the list before any runs, so that an
 * action may use the store (and register more) as it likes.
 */
static void
after_run(struct store *s, int committed, int from)
{
	struct after_commit *run;
	size_t i, k = 0, n = 0;

	for (i = 0; i < s->nafter; i++)
		n += s->after[i].depth >= from;
	if (n == 0)
		return;
	if ((run = calloc(n, sizeof(*run))) == NULL)
		fatalx("%s: out of memory", __func__);
	for (i = 0, n = 0; i < s->nafter; i++) {
		if (s->after[i].depth >= from)
			run[n++] = s->after[i];
		else
			s->after[k++] = s->after[i];
	}
	s->nafter = k;
	for (i = 0; i < n; i++)
		run[i].fn(run[i].arg, committed);
	free(run);
}

/*
 * After a failure: did SQLite end the transaction on its own (it does for
 * a full disk, an I/O error, running out of memory)? Then what was in it
 * is gone: the actions waiting for it are dropped, and a unit fails as a
 * whole.
 */
static void
tx_check(struct store *s)
{
	/* PostgreSQL keeps a failed transaction open, refusing all but
	 * ROLLBACK: that is the same loss, so it is rolled back here. */
	if (s->pg != NULL && store_pg_tx_failed(s->pg)) {
		char m[sizeof(s->last_error)];
		int kind;

		(void)store_pg_exec(s->pg, "ROLLBACK", m, sizeof(m), &kind);
	}
	if ((!s->tx && s->depth == 0) || in_tx(s))
		return;
	log_warnx("store: the transaction was rolled back (%s)",
	          store_last_error(s));
	s->tx = 0;
	s->depth = 0;
	if (s->unit)
		s->unit_failed = 1;
	after_run(s, 0, 0);
}

/* In a unit, the first statement that writes opens its transaction, and a
 * failed unit writes nothing more. 0 to run st, -1 not to. */
static int
unit_write(struct store *s, int readonly, const char *sql)
{
	if (!s->unit || readonly)
		return 0;
	tx_check(s); /* ended by SQLite since the last statement? */
	if (s->unit_failed) {
		log_warnx("store: not written, its transaction failed "
		          "already (%s)",
		          sql);
		return -1;
	}
	if (s->tx)
		return 0;
	if (exec_plain(s, begin_sql(s), NULL) == -1)
		return -1;
	s->tx = 1;
	return 0;
}

int
store_begin(struct store *s)
{
	char sp[32];

	if (s->depth >= MAX_DEPTH)
		fatalx("%s: transactions nested deeper than %d", __func__,
		       MAX_DEPTH);
	tx_check(s);
	if (s->unit && s->unit_failed)
		return -1;
	if (!s->tx) {
		if (exec_plain(s, begin_sql(s), NULL) == -1)
			return -1;
		s->tx = 1;
		if (!s->unit) {
			s->depth = 1;
			return 0;
		}
	}
	snprintf(sp, sizeof(sp), "SAVEPOINT vigil_%d", s->depth + 1);
	if (exec_plain(s, sp, NULL) == -1)
		return -1;
	s->depth++;
	return 0;
}

int
store_commit(struct store *s)
{
	char sp[32];
	size_t i;

	if (s->depth == 0) {
		/* SQLite ended it already (logged by tx_check). */
		log_warnx("store: commit without a transaction");
		return -1;
	}
	if (!s->unit && s->depth == 1) {
		if (exec_plain(s, "COMMIT", NULL) == -1)
			return -1; /* still open (busy) or gone (tx_check) */
		s->depth = 0;
		s->tx = 0;
		after_run(s, 1, 0);
		return 0;
	}
	snprintf(sp, sizeof(sp), "RELEASE vigil_%d", s->depth);
	if (exec_plain(s, sp, NULL) == -1)
		return -1;
	/* What it registered now waits for the part around it. */
	s->depth--;
	for (i = 0; i < s->nafter; i++)
		if (s->after[i].depth > s->depth)
			s->after[i].depth = s->depth;
	return 0;
}

void
store_rollback(struct store *s)
{
	char sp[64];

	/* Nothing of the caller's is open: SQLite rolled it back already,
	 * or its begin failed. A unit's own part is never undone here. */
	if (s->depth == 0)
		return;
	if (!s->unit && s->depth == 1) {
		exec_plain(s, "ROLLBACK", NULL);
		s->depth = 0;
		s->tx = 0;
		after_run(s, 0, 0);
		return;
	}
	snprintf(sp, sizeof(sp), "ROLLBACK TO vigil_%d; RELEASE vigil_%d",
	         s->depth, s->depth);
	if (exec_plain(s, sp, NULL) == -1 && s->depth == 0)
		return; /* the whole transaction went (tx_check) */
	after_run(s, 0, s->depth);
	s->depth--;
}

void
store_after_commit(struct store *s, void (*fn)(void *arg, int committed),
                   void *arg)
{
	struct after_commit *n;
	size_t cap;

	if (!s->unit && !s->tx) {
		fn(arg, 1);
		return;
	}
	if (s->nafter == s->capafter) {
		cap = s->capafter ? s->capafter * 2 : 8;
		if ((n = realloc(s->after, cap * sizeof(*n))) == NULL)
			fatalx("%s: out of memory", __func__);
		s->after = n;
		s->capafter = cap;
	}
	s->after[s->nafter].fn = fn;
	s->after[s->nafter].arg = arg;
	s->after[s->nafter].depth = s->depth;
	s->nafter++;
}

void
store_unit_begin(struct store *s)
{
	int rc;

	if (s->unit)
		fatalx("%s: a unit is open already", __func__);
	if (s->tx || s->depth != 0) {
		/* A store_begin someone forgot to end (a bug): its writes
		 * are kept, as the next COMMIT would have kept them, but
		 * not made part of this unit. */
		log_warnx("store: a transaction was left open (%d deep); "
		          "committing it before a new unit",
		          s->depth);
		if ((rc = exec_plain(s, "COMMIT", NULL)) == -1 && in_tx(s))
			exec_plain(s, "ROLLBACK", NULL);
		s->tx = 0;
		s->depth = 0;
		after_run(s, rc == 0, 0);
	}
	s->unit = 1;
	s->unit_failed = 0;
}

int
store_unit_active(const struct store *s)
{
	return s->unit;
}

int
store_unit_commit(struct store *s)
{
	int rc = 0, kind;
	char msg[sizeof(s->last_error)];

	if (!s->unit)
		fatalx("%s: no unit", __func__);
	if (s->unit_failed)
		rc = -1; /* the failure was noted when it happened */
	else if (s->depth != 0) {
		/* A store_begin without its commit or rollback: a bug of
		 * the caller, and nothing it meant to keep is known. */
		log_warnx("store: %d transactions left open in a unit",
		          s->depth);
		s->last_failure = STORE_FAIL_OTHER;
		snprintf(s->last_error, sizeof(s->last_error),
		         "transactions left open");
		rc = -1;
	} else if (s->tx)
		rc = exec_plain(s, "COMMIT", NULL);
	if (rc == -1 && in_tx(s)) {
		/* Keep why it failed, not how the rollback went. */
		kind = s->last_failure;
		memcpy(msg, s->last_error, sizeof(msg));
		exec_plain(s, "ROLLBACK", NULL);
		s->last_failure = kind;
		memcpy(s->last_error, msg, sizeof(msg));
	}
	s->unit = 0;
	s->unit_failed = 0;
	s->tx = 0;
	s->depth = 0;
	after_run(s, rc == 0, 0);
	return rc;
}

void
store_unit_rollback(struct store *s)
{
	if (!s->unit)
		return;
	if (in_tx(s))
		exec_plain(s, "ROLLBACK", NULL);
	s->unit = 0;
	s->unit_failed = 0;
	s->tx = 0;
	s->depth = 0;
	after_run(s, 0, 0);
}

long long
store_changes(struct store *s)
{
	if (s->pg != NULL)
		return s->pg_changes;
	return (long long)sqlite3_total_changes(s->db);
}

int
store_last_failure(const struct store *s)
{
	return s->last_failure;
}

const char *
store_last_error(const struct store *s)
{
	return s->last_error[0] != '\0' ? s->last_error : "unknown error";
}

/* --- integrity, backup ---------------------------------------------------- */

/* PRAGMA quick_check on an open handle: 0, or -1 with its first findings. */
static int
quick_check_db(sqlite3 *db, const char *path, struct buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0, ret = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check(5)", -1, &st, NULL) !=
	    SQLITE_OK) {
		buf_printf(err, "%s: cannot be checked: %s", path,
		           sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t != NULL && strcmp(t, "ok") == 0)
			continue;
		buf_printf(err, "%s%s", n++ ? "; " : "", t ? t : "?");
		ret = -1;
	}
	if (rc != SQLITE_DONE) {
		buf_printf(err, "%s%s", n ? "; " : "", sqlite3_errmsg(db));
		ret = -1;
	}
	sqlite3_finalize(st);
	return ret;
}

/* PostgreSQL has no quick_check: it checks its pages itself (data
 * checksums, and amcheck is the operator's). The check is that the
 * database answers. */
int
store_quick_check(struct store *s, const char *path, struct buf *err)
{
	struct store_rows *r;
	int ok;

	if (s->pg != NULL) {
		r = store_query(s, "SELECT 1");
		ok = r != NULL && store_next(r) == 1 && store_int(r, 0) == 1;
		store_done(r);
		if (!ok)
			buf_printf(err, "%s: %s", path, store_last_error(s));
		return ok ? 0 : -1;
	}
	return quick_check_db(s->db, path, err);
}

int
store_check_file(const char *path, struct buf *err)
{
	sqlite3 *db = NULL;
	int rc = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		buf_printf(err, "%s: %s", path,
		           db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	rc = quick_check_db(db, path, err);
out:
	sqlite3_close(db);
	return rc;
}

/*
 * A consistent copy of a live database: SQLite's online backup reads one
 * snapshot (WAL readers do not block the writer), so the copy holds exactly
 * what was committed when it started. dst must not exist.
 */
int
store_backup_file(const char *src, const char *dst, struct buf *err)
{
	sqlite3 *from = NULL, *to = NULL;
	sqlite3_backup *b;
	int rc = -1;

	if (access(dst, F_OK) == 0) {
		buf_printf(err, "%s exists; give a new file name", dst);
		return -1;
	}
	if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		buf_printf(err, "%s: %s", src,
		           from ? sqlite3_errmsg(from) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(from, 5000);
	if (sqlite3_open_v2(dst, &to,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                        SQLITE_OPEN_NOFOLLOW,
	                    NULL) != SQLITE_OK) {
		buf_printf(err, "%s: %s", dst,
		           to ? sqlite3_errmsg(to) : "cannot create");
		goto out;
	}
	if ((b = sqlite3_backup_init(to, "main", from, "main")) == NULL) {
		buf_printf(err, "%s: %s", dst, sqlite3_errmsg(to));
		goto out;
	}
	(void)sqlite3_backup_step(b, -1);
	if (sqlite3_backup_finish(b) != SQLITE_OK) {
		buf_printf(err, "backup of %s: %s", src, sqlite3_errmsg(to));
		goto out;
	}
	/* A copy of a damaged database is no backup. */
	rc = quick_check_db(to, dst, err);
out:
	sqlite3_close(from);
	sqlite3_close(to);
	if (rc == -1 && to != NULL)
		(void)unlink(dst);
	return rc;
}
