/*
 * store_pg.c: the PostgreSQL back end behind store.h (see store_pg.h for
 * the split with store.c). One libpq connection per struct store, used by
 * one thread, in blocking mode: the event loop already waits on SQLite the
 * same way, and a unit of work never holds a transaction across a wait.
 *
 * Statements are sent with PQexecParams: parameters go as text, typed
 * int8 for S_INT, text for S_TEXT and unknown for NULL (so that a NULL
 * takes the type of its column). Results are read whole; the queries of
 * vigild are paged (LIMIT), and store copy reads by keyset.
 *
 * A lost connection is reset before the next statement outside a
 * transaction; one inside a transaction fails it (store.c then fails the
 * unit as SQLite's own rollback would).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "store_pg.h"

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

#define MAX_PARAMS 4096

struct store_pg {
	PGconn *conn;
	struct buf sql; /* the translated statement */
	/* The parameters of the statement being sent. */
	char ints[MAX_PARAMS][24];
	const char *values[MAX_PARAMS];
	unsigned int types[MAX_PARAMS];
};

struct store_pg_res {
	PGresult *res;
};

int
store_pg_is_url(const char *target)
{
	return target != NULL && (strncmp(target, "postgresql://", 13) == 0 ||
	                          strncmp(target, "postgres://", 11) == 0);
}

const char *
store_pg_redact(const char *url)
{
	static _Thread_local char out[512];
	const char *at, *colon, *scheme = strstr(url, "://");

	snprintf(out, sizeof(out), "%s", url);
	if (scheme == NULL)
		return out;
	scheme += 3;
	if ((at = strchr(scheme, '@')) == NULL ||
	    ((colon = memchr(scheme, ':', (size_t)(at - scheme))) == NULL))
		return out;
	snprintf(out, sizeof(out), "%.*s:***%s", (int)(colon - url), url, at);
	return out;
}

/* The failure's kind (enum store_failure) from its SQLSTATE. */
static int
kind_of(const PGresult *res, PGconn *conn)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(conn) == CONNECTION_BAD || st == NULL)
		return STORE_FAIL_OTHER;
	if (strcmp(st, "53100") == 0 || strcmp(st, "53200") == 0)
		return STORE_FAIL_FULL; /* disk full, out of memory */
	if (strcmp(st, "55P03") == 0 || strcmp(st, "40001") == 0 ||
	    strcmp(st, "40P01") == 0 || strcmp(st, "57014") == 0)
		return STORE_FAIL_BUSY; /* lock, serialization, timeout */
	return STORE_FAIL_OTHER;
}

static void
failed(struct store_pg *p, const PGresult *res, char *msg, size_t n, int *kind)
{
	const char *m = NULL;
	char *q;
	size_t len;

	/* The primary message alone, on one line: "ERROR:" and the
	 * context lines are libpq's layout, not the failure. */
	if (res != NULL)
		m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (m == NULL || *m == '\0')
		m = PQerrorMessage(p->conn);
	snprintf(msg, n, "%s", m);
	for (q = msg; *q != '\0'; q++)
		if (*q == '\n' || *q == '\t')
			*q = ' ';
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == ' ')
		msg[--len] = '\0';
	*kind = kind_of(res, p->conn);
}

/* Quiet notices ("relation exists, skipping"): they are not problems. */
static void
notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("store: postgresql: %s", message);
}

struct store_pg *
store_pg_open(const char *url, struct buf *err)
{
	struct store_pg *p;
	PGresult *res;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		buf_printf(err, "out of memory");
		return NULL;
	}
	buf_init(&p->sql, 1 << 20);
	p->conn = PQconnectdb(url);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		buf_printf(err, "%s: %s", store_pg_redact(url),
		           p->conn ? PQerrorMessage(p->conn) : "out of memory");
		store_pg_close(p);
		return NULL;
	}
	PQsetNoticeProcessor(p->conn, notice, NULL);
	/* UTC, UTF-8, and no statement waits forever on a lock. */
	res = PQexec(p->conn, "SET client_encoding = 'UTF8'; SET TIME ZONE "
	                      "'UTC'; SET lock_timeout = '30s'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		buf_printf(err, "%s: %s", store_pg_redact(url),
		           PQerrorMessage(p->conn));
		PQclear(res);
		store_pg_close(p);
		return NULL;
	}
	PQclear(res);
	return p;
}

void
store_pg_close(struct store_pg *p)
{
	if (p == NULL)
		return;
	if (p->conn != NULL)
		PQfinish(p->conn);
	buf_free(&p->sql);
	free(p);
}

/* Outside a transaction, a connection that broke is opened again. */
static void
reconnect(struct store_pg *p)
{
	if (PQstatus(p->conn) != CONNECTION_BAD)
		return;
	log_warnx("store: the connection to PostgreSQL was lost; "
	          "reconnecting");
	PQreset(p->conn);
}

int
store_pg_exec(struct store_pg *p, const char *sql, char *msg, size_t n,
              int *kind)
{
	PGresult *res;
	int st, rc = 0;

	reconnect(p);
	res = PQexec(p->conn, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		failed(p, res, msg, n, kind);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

int
store_pg_in_tx(struct store_pg *p)
{
	int st = PQtransactionStatus(p->conn);

	return st == PQTRANS_INTRANS || st == PQTRANS_INERROR ||
	       st == PQTRANS_ACTIVE;
}

int
store_pg_tx_failed(struct store_pg *p)
{
	return PQtransactionStatus(p->conn) == PQTRANS_INERROR;
}

/* Does the word w start at p (case-insensitive, then a non-letter)? */
static int
word_at(const char *p, const char *w)
{
	size_t n = strlen(w);

	return strncasecmp(p, w, n) == 0 &&
	       !((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') ||
	         p[n] == '_');
}

/*
 * store.c's SQL in PostgreSQL's words: ? outside quotes becomes $1, $2 ...
 * and LIKE becomes ILIKE (SQLite's LIKE ignores ASCII case; the searches
 * of the API are written for that). Returns the number of placeholders,
 * or -1.
 */
static int
translate(const char *sql, struct buf *out)
{
	const char *q;
	char quote = 0;
	int n = 0;

	buf_reset(out);
	for (q = sql; *q != '\0'; q++) {
		if (quote) {
			if (*q == quote)
				quote = 0;
			buf_putc(out, *q);
		} else if (*q == '\'' || *q == '"') {
			quote = *q;
			buf_putc(out, *q);
		} else if (*q == '?') {
			buf_printf(out, "$%d", ++n);
		} else if ((q == sql || q[-1] == ' ' || q[-1] == ')') &&
		           word_at(q, "LIKE")) {
			buf_puts(out, "ILIKE");
			q += 3;
		} else
			buf_putc(out, *q);
	}
	return buf_ok(out) == 0 ? n : -1;
}

struct store_pg_res *
store_pg_run(struct store_pg *p, const char *sql, const struct store_arg *args,
             size_t n, long long *changed, char *msg, size_t msgn, int *kind)
{
	char(*ints)[24] = p->ints;
	const char **values = p->values;
	unsigned int *types = p->types;
	struct store_pg_res *r;
	PGresult *res;
	size_t k;
	int nph, st;

	if (n > MAX_PARAMS)
		fatalx("%s: more than %d parameters", __func__, MAX_PARAMS);
	if ((nph = translate(sql, &p->sql)) == -1) {
		snprintf(msg, msgn, "statement too long");
		*kind = STORE_FAIL_OTHER;
		return NULL;
	}
	if ((size_t)nph != n)
		fatalx("store: %zu parameters for %d placeholders in %s", n,
		       nph, sql);
	for (k = 0; k < n; k++) {
		if (args[k].type == 'i') {
			snprintf(ints[k], sizeof(ints[k]), "%lld", args[k].i);
			values[k] = ints[k];
			types[k] = OID_INT8;
		} else if (args[k].type == 's') {
			values[k] = args[k].s;
			types[k] = args[k].s != NULL ? OID_TEXT : 0;
		} else
			fatalx("store: bad parameter type '%c'", args[k].type);
	}
	reconnect(p);
	res = PQexecParams(p->conn, buf_cstr(&p->sql), (int)n, types, values,
	                   NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		failed(p, res, msg, msgn, kind);
		PQclear(res);
		return NULL;
	}
	*changed = st == PGRES_COMMAND_OK || PQcmdTuples(res)[0] != '\0'
	               ? strtoll(PQcmdTuples(res), NULL, 10)
	               : 0;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		PQclear(res);
		snprintf(msg, msgn, "out of memory");
		*kind = STORE_FAIL_OTHER;
		return NULL;
	}
	r->res = res;
	return r;
}

int
store_pg_nrows(struct store_pg_res *r)
{
	return PQntuples(r->res);
}

int
store_pg_ncols(struct store_pg_res *r)
{
	return PQnfields(r->res);
}

const char *
store_pg_text(struct store_pg_res *r, int row, int col)
{
	const char *v;

	if (row >= PQntuples(r->res) || col >= PQnfields(r->res) ||
	    PQgetisnull(r->res, row, col))
		return NULL;
	v = PQgetvalue(r->res, row, col);
	/* A comparison is a boolean here and a 0 or 1 in SQLite: callers
	 * read it as the integer. */
	if (PQftype(r->res, col) == OID_BOOL)
		return v[0] == 't' ? "1" : "0";
	return v;
}

int
store_pg_isnull(struct store_pg_res *r, int row, int col)
{
	return row >= PQntuples(r->res) || col >= PQnfields(r->res) ||
	       PQgetisnull(r->res, row, col);
}

int
store_pg_isint(struct store_pg_res *r, int col)
{
	unsigned int t = PQftype(r->res, col);

	return t == OID_INT8 || t == OID_INT4 || t == OID_INT2 || t == OID_BOOL;
}

const char *
store_pg_colname(struct store_pg_res *r, int col)
{
	return PQfname(r->res, col);
}

void
store_pg_free(struct store_pg_res *r)
{
	if (r == NULL)
		return;
	PQclear(r->res);
	free(r);
}

int
store_pg_readonly(const char *sql)
{
	while (*sql == ' ' || *sql == '\n' || *sql == '(')
		sql++;
	if (word_at(sql, "SELECT"))
		return 1;
	if (word_at(sql, "WITH"))
		return strstr(sql, "INSERT ") == NULL &&
		       strstr(sql, "UPDATE ") == NULL &&
		       strstr(sql, "DELETE ") == NULL;
	return 0;
}

/*
 * Sections per back end: a migration that starts with "-- sqlite\n" holds
 * SQLite's SQL up to "-- postgresql\n" and PostgreSQL's after it. One
 * without sections is the same for both.
 */
#define SEC_SQLITE "-- sqlite\n"
#define SEC_PG     "-- postgresql\n"

const char *
store_sqlite_part(const char *sql, struct buf *out)
{
	const char *pg;

	if (strncmp(sql, SEC_SQLITE, strlen(SEC_SQLITE)) != 0)
		return sql;
	sql += strlen(SEC_SQLITE);
	pg = strstr(sql, SEC_PG);
	buf_reset(out);
	buf_append(out, sql, pg != NULL ? (size_t)(pg - sql) : strlen(sql));
	return buf_cstr(out);
}

int
store_pg_migration(const char *sql, struct buf *out)
{
	static const char ipk[] = "INTEGER PRIMARY KEY";
	const char *q, *pg;

	buf_reset(out);
	if (strncmp(sql, SEC_SQLITE, strlen(SEC_SQLITE)) == 0) {
		if ((pg = strstr(sql, SEC_PG)) == NULL)
			return buf_puts(out, "SELECT 1");
		sql = pg + strlen(SEC_PG);
	}
	/* SQLite's INTEGER PRIMARY KEY numbers rows by itself (its rowid):
	 * an identity column does that here. AUTOINCREMENT is implied. */
	for (q = sql; *q != '\0'; q++) {
		if (strncmp(q, ipk, sizeof(ipk) - 1) == 0) {
			buf_puts(out, "BIGINT GENERATED BY DEFAULT AS IDENTITY "
			              "PRIMARY KEY");
			q += sizeof(ipk) - 2;
			if (strncmp(q + 1, " AUTOINCREMENT", 14) == 0)
				q += 14;
		} else
			buf_putc(out, *q);
	}
	return buf_ok(out);
}

/*
 * Notifications between vigild nodes: a connection of its own that only
 * LISTENs, in non-blocking reads. The caller waits on its socket in its
 * event loop and reads what arrived when it becomes readable.
 */
struct store_listener {
	PGconn *conn;
};

struct store_listener *
store_listen(const char *url, const char *channel, struct buf *err)
{
	struct store_listener *l;
	PGresult *res;
	char *id = NULL;
	struct buf sql;

	if (!store_pg_is_url(url)) {
		buf_printf(err, "notifications need PostgreSQL");
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		buf_printf(err, "out of memory");
		return NULL;
	}
	l->conn = PQconnectdb(url);
	if (l->conn == NULL || PQstatus(l->conn) != CONNECTION_OK) {
		buf_printf(err, "%s: %s", store_pg_redact(url),
		           l->conn ? PQerrorMessage(l->conn) : "out of memory");
		goto fail;
	}
	PQsetNoticeProcessor(l->conn, notice, NULL);
	if ((id = PQescapeIdentifier(l->conn, channel, strlen(channel))) ==
	    NULL) {
		buf_printf(err, "%s", PQerrorMessage(l->conn));
		goto fail;
	}
	buf_init(&sql, 256);
	buf_printf(&sql, "LISTEN %s", id);
	PQfreemem(id);
	res = PQexec(l->conn, buf_cstr(&sql));
	buf_free(&sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		buf_printf(err, "LISTEN: %s", PQerrorMessage(l->conn));
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (PQsetnonblocking(l->conn, 1) == -1) {
		buf_printf(err, "%s", PQerrorMessage(l->conn));
		goto fail;
	}
	return l;
fail:
	store_listener_close(l);
	return NULL;
}

int
store_listener_fd(struct store_listener *l)
{
	return PQsocket(l->conn);
}

int
store_listener_read(struct store_listener *l,
                    void (*fn)(void *arg, const char *payload), void *arg)
{
	PGnotify *n;

	if (PQconsumeInput(l->conn) == 0 || PQstatus(l->conn) == CONNECTION_BAD)
		return -1;
	while ((n = PQnotifies(l->conn)) != NULL) {
		fn(arg, n->extra != NULL ? n->extra : "");
		PQfreemem(n);
	}
	return 0;
}

void
store_listener_close(struct store_listener *l)
{
	if (l == NULL)
		return;
	if (l->conn != NULL)
		PQfinish(l->conn);
	free(l);
}
