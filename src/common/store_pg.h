/*
 * store_pg: the PostgreSQL (libpq) half of store.c, private to it. store.c
 * keeps what both back ends share (units of work, savepoint nesting,
 * actions after commit, failure kinds); this file holds every difference
 * of the dialect: the connection (a libpq URL: TLS, passfile and client
 * certificates are libpq's own parameters), placeholders (? to $n),
 * parameter types, LIKE (case-insensitive in SQLite, so ILIKE here),
 * the DDL of migrations (INTEGER PRIMARY KEY, sections per back end), the
 * write lock and SQLSTATEs as failure kinds.
 */
#ifndef VIGIL_STORE_PG_H
#define VIGIL_STORE_PG_H

#include <stddef.h>

#include "buf.h"
#include "store.h"

struct store_pg;
struct store_pg_res;

/* 1 when target names a PostgreSQL database (postgresql:// or
 * postgres://), 0 for an SQLite file. */
int store_pg_is_url(const char *target);
/* The URL without its password, for messages (static buffer). */
const char *store_pg_redact(const char *url);

struct store_pg *store_pg_open(const char *url, struct buf *err);
void store_pg_close(struct store_pg *p);

/*
 * The SQL that opens a write transaction. Every write on PostgreSQL runs
 * in a transaction that first takes one advisory lock (the writers'
 * lock): writers follow one another, as they do on SQLite (BEGIN
 * IMMEDIATE), so the events' rowid order is their commit order (the
 * forwarders' cursors rely on it) and the audit chain has one end.
 */
#define STORE_PG_BEGIN "BEGIN; SELECT pg_advisory_xact_lock(7335406)"

/* SQL without parameters, maybe several statements: 0, or -1 with
 * PostgreSQL's message in msg and the failure's kind in *kind. */
int store_pg_exec(struct store_pg *p, const char *sql, char *msg, size_t n,
                  int *kind);
/* 1 while a transaction is open (or failed and not rolled back yet). */
int store_pg_in_tx(struct store_pg *p);
/* 1 when the open transaction failed (only ROLLBACK is accepted). */
int store_pg_tx_failed(struct store_pg *p);

/* One statement with its parameters (store.c's SQL, ? placeholders).
 * NULL on failure (msg, *kind). *changed: rows changed. */
struct store_pg_res *store_pg_run(struct store_pg *p, const char *sql,
                                  const struct store_arg *args, size_t n,
                                  long long *changed, char *msg, size_t msgn,
                                  int *kind);
int store_pg_nrows(struct store_pg_res *r);
int store_pg_ncols(struct store_pg_res *r);
const char *store_pg_text(struct store_pg_res *r, int row, int col);
int store_pg_isnull(struct store_pg_res *r, int row, int col);
int store_pg_isint(struct store_pg_res *r, int col);
const char *store_pg_colname(struct store_pg_res *r, int col);
void store_pg_free(struct store_pg_res *r);

/* 1 when sql only reads (SELECT, or WITH without a write). */
int store_pg_readonly(const char *sql);
/* A migration's SQL for PostgreSQL, in out: its "-- postgresql" section
 * when it has sections per back end, and INTEGER PRIMARY KEY as an
 * identity column. For SQLite, store_sqlite_part gives its section. */
int store_pg_migration(const char *sql, struct buf *out);
const char *store_sqlite_part(const char *sql, struct buf *out);

#endif
