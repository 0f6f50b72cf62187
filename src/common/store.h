/*
 * store: the center's database. SQLite in WAL mode by default, or
 * PostgreSQL (libpq, store_pg.c) when opened with a postgresql:// URL.
 * Numbered schema migrations applied in order at start (each in its own
 * transaction, recorded in schema_migrations), parameters bound, never
 * formatted into SQL. The SQL is kept portable (?-placeholders, no
 * SQLite-only syntax in queries; store_pg.c translates the rest); callers
 * see rows, never sqlite3 or libpq handles. Store latency is recorded in
 * the metrics.
 */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stddef.h>

#include "buf.h"

struct store;
struct store_rows;

/* migrations[i] is the SQL that brings the schema to version i + 1 (a
 * migration that differs by back end holds a "-- sqlite" and a
 * "-- postgresql" section, store_pg.h). path: an SQLite file, or a
 * PostgreSQL URL (postgresql://...). */
struct store *store_open(const char *path, const char *const *migrations,
                         size_t nmigrations, struct buf *err);
/* The same, read only and without migrations (checks, copies). */
struct store *store_open_readonly(const char *target, struct buf *err);
/* 1 on PostgreSQL, 0 on SQLite. */
int store_is_pg(const struct store *s);
/* 1 when target is a PostgreSQL URL; the URL without its password. */
int store_is_url(const char *target);
const char *store_redact_url(const char *url);
void store_close(struct store *s);
int store_schema_version(struct store *s);

/*
 * Parameters, one per '?', each made by a binder that checks its C type
 * when compiling: S_TEXT(const char *; NULL binds NULL), S_INT(any
 * integer type, bound as a 64-bit integer), S_NULL. A wrong type fails
 * the build; a count that differs from the placeholders' is fatal on the
 * first run (every statement runs in the test suite).
 *
 *	store_exec(s, "UPDATE t SET a = ? WHERE id = ?", S_INT(n), S_TEXT(id));
 */
struct store_arg {
	char type; /* 's' or 'i' */
	const char *s;
	long long i;
};
#define S_TEXT(x)                                                              \
	((struct store_arg){'s', _Generic((x), char *: (x), const char *: (x)), \
	                    0})
#define S_INT(x)                                                               \
	((struct store_arg){'i', NULL,                                         \
	                    _Generic((x), _Bool                                \
	                             : (x), char                               \
	                             : (x), signed char                        \
	                             : (x), unsigned char                      \
	                             : (x), short                              \
	                             : (x), unsigned short                     \
	                             : (x), int                                \
	                             : (x), unsigned                           \
	                             : (x), long                               \
	                             : (x), unsigned long                      \
	                             : (x), long long                          \
	                             : (x), unsigned long long                 \
	                             : (x))})
#define S_NULL ((struct store_arg){'s', NULL, 0})
/* The arguments as an array (a leading element keeps an empty list
 * valid C) and their count. */
#define STORE_ARGV_(...) ((const struct store_arg[]){S_NULL, __VA_ARGS__} + 1)
#define STORE_ARGC_(...)                                                       \
	(sizeof((const struct store_arg[]){S_NULL, __VA_ARGS__}) /             \
	     sizeof(struct store_arg) -                                        \
	 1)

/* The number of changed rows, or -1 (logged). */
#define store_exec(s, ...) store_exec_sql_(s, __VA_ARGS__, )
#define store_exec_sql_(s, sql, ...)                                           \
	store_exec_args((s), (sql), STORE_ARGV_(__VA_ARGS__),                  \
	                STORE_ARGC_(__VA_ARGS__))
int store_exec_args(struct store *s, const char *sql,
                    const struct store_arg *args, size_t n);
/*
 * Bulk writes: runs sql n times, for i = 0 .. n-1, with the nparams
 * parameters that fill(arg, i, v) binds in v[0 .. nparams-1] with the
 * binders above. The statement is looked up once and text is bound
 * without a copy, so the strings must live until the call returns.
 * Meant for many rows inside one transaction. Returns the total of changed
 * rows, or -1 (logged) at the first failure.
 */
int store_exec_each(struct store *s, const char *sql, size_t nparams, size_t n,
                    void (*fill)(void *arg, size_t i, struct store_arg *v),
                    void *arg);
/* NULL on error (logged). Iterate with store_next (1 row, 0 done, -1 err).
 * store_query_args takes parameters built at run time (list queries). */
#define store_query(s, ...) store_query_sql_(s, __VA_ARGS__, )
#define store_query_sql_(s, sql, ...)                                          \
	store_query_args((s), (sql), STORE_ARGV_(__VA_ARGS__),                 \
	                 STORE_ARGC_(__VA_ARGS__))
struct store_rows *store_query_args(struct store *s, const char *sql,
                                    const struct store_arg *args, size_t n);
int store_next(struct store_rows *r);
const char *store_text(struct store_rows *r, int col); /* NULL for NULL */
long long store_int(struct store_rows *r, int col);
int store_isnull(struct store_rows *r, int col);
/* Shape of a row, for code that copies whole rows (audit snapshots). */
int store_ncols(struct store_rows *r);
const char *store_colname(struct store_rows *r, int col);
int store_isint(struct store_rows *r, int col);
void store_done(struct store_rows *r);

/* Statements that failed while running, since the store was opened:
 * take it before reading and compare after, to tell "no rows" from "rows
 * that could not be read" (each failure is logged with its table). */
unsigned long store_errors(const struct store *s);
/* PRAGMA quick_check: 0, or -1 with what it found in err. */
int store_quick_check(struct store *s, const char *path, struct buf *err);
/* The same on a database file opened read-only (a backup, say). */
int store_check_file(const char *path, struct buf *err);
/* A consistent online copy of the database file src into the new file
 * dst (SQLite's backup API), checked after copying; -1 with a message. */
int store_backup_file(const char *src, const char *dst, struct buf *err);

/*
 * Transactions nest: store_begin inside an open one takes a SAVEPOINT,
 * store_commit releases it and store_rollback undoes that part alone;
 * only the outermost commit makes anything durable.
 */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/*
 * A unit of work (vigild: one admin request that changes something, with
 * its audit entry): after store_unit_begin the first write, or
 * store_begin, opens one BEGIN IMMEDIATE transaction and every
 * store_begin / commit / rollback inside is a savepoint of it. Nothing is
 * committed before store_unit_commit (0, or -1 after rolling it all back:
 * a write failed in a way that ended the transaction, a store_begin was
 * left open, or COMMIT failed); store_unit_rollback undoes all of it.
 * Reads before the first write take no lock. A unit must end before the
 * event loop runs again: no transaction is held across a wait.
 */
void store_unit_begin(struct store *s); /* fatal inside a unit */
int store_unit_active(const struct store *s);
int store_unit_commit(struct store *s);
void store_unit_rollback(struct store *s);
/*
 * fn(arg, 1) once what was written so far is committed, or fn(arg, 0)
 * when the part it was registered in is rolled back instead (to free
 * arg): side effects outside the database (memory, connections, other
 * clients) that must follow the change, not precede it. Outside any unit
 * or transaction fn(arg, 1) runs at once.
 */
void store_after_commit(struct store *s, void (*fn)(void *arg, int committed),
                        void *arg);
/* What the last failed statement or transaction step ran into, and
 * SQLite's message for it: callers answer a full disk differently. */
enum store_failure {
	STORE_FAIL_NONE,
	STORE_FAIL_BUSY,  /* another writer held the database too long */
	STORE_FAIL_FULL,  /* the disk (or the database's limit) is full */
	STORE_FAIL_OTHER, /* a constraint, an I/O error, a damaged file */
};
int store_last_failure(const struct store *s);
/* Rows changed by this connection since it was opened (a counter: a
 * difference tells whether anything was written in between). */
long long store_changes(struct store *s);
const char *store_last_error(const struct store *s);

/*
 * PostgreSQL notifications (LISTEN / NOTIFY) between vigild nodes that
 * share one database, on a connection of their own (store_pg.c). The
 * caller waits for its socket to be readable in its event loop, then
 * store_listener_read calls fn(arg, payload) for each notification that
 * arrived; -1 when the connection is lost (close it and listen again
 * later). NULL with a message in err on SQLite or when the database does
 * not answer.
 */
struct store_listener;
struct store_listener *store_listen(const char *url, const char *channel,
                                    struct buf *err);
int store_listener_fd(struct store_listener *l);
int store_listener_read(struct store_listener *l,
                        void (*fn)(void *arg, const char *payload), void *arg);
void store_listener_close(struct store_listener *l);

#endif
