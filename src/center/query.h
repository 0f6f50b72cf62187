/*
 * query.h: list endpoints of the admin API share one way to page, filter
 * and sort (query.c): `limit` (default QUERY_DEFAULT_LIMIT, at most
 * QUERY_MAX_LIMIT), an opaque `cursor` from the previous page's
 * `next_cursor`, `sort` (a field, "-field" for descending), equality
 * filters `<field>=v`, ranges `<field>_from=` (inclusive) and `<field>_to=`
 * (exclusive), and `q` (substring search). Replies are
 * {"items": [...], "next_cursor": "..." | null}. Anything malformed gets
 * 400 naming the parameter.
 */
#ifndef VIGIL_QUERY_H
#define VIGIL_QUERY_H

#include <jansson.h>

#include "http.h"
#include "store.h"

#define QUERY_DEFAULT_LIMIT 100
#define QUERY_MAX_LIMIT     1000

enum query_type { QF_TEXT = 1, QF_INT = 2 };

#define QF_SORT  0x1  /* ?sort=<name> / -<name> */
#define QF_EQ    0x2  /* ?<name>=value */
#define QF_RANGE 0x4  /* ?<name>_from=, ?<name>_to= (integers) */
#define QF_LABEL 0x8  /* ?<name>=KEY=VALUE on a column of JSON objects */
#define QF_GE    0x10 /* ?<name>=n: column >= n (an alias such as since) */
#define QF_LE    0x20 /* ?<name>=n: column <= n (until) */
#define QF_MEMBER                                                              \
	0x40 /* ?<name>=v: the column, a JSON object, has the member           \
	        "<name>": "v" (letters, digits, '-', '_', '.') */
#define QF_NULL                                                                \
	0x100 /* the column may be NULL: sorted as '' or 0 (no index then) */
#define QF_EXPR                                                                \
	0x80 /* ?<name>=v: column is an SQL condition with one '?' for v,      \
	        e.g. "id IN (SELECT task_id FROM task_runs WHERE agent_id =    \
	        ?)" */

struct query_field {
	const char *name;   /* parameter / sort name */
	const char *column; /* SQL expression */
	int type;           /* enum query_type */
	unsigned flags;
};

struct query_spec {
	const char *table;   /* FROM (may be a join) */
	const char *columns; /* SELECT list the item function reads */
	const struct query_field *fields;
	const char *key; /* unique column, the tie breaker */
	int key_type;
	const char *default_sort; /* "name" or "-name" */
	const char *search;       /* SQL text for ?q=, or NULL */
	const char *where;        /* fixed condition, or NULL */
	/* Further parameters the handler reads itself (NULL-terminated),
	 * so that they are not refused as unknown. */
	const char *const *extra;
	long long max_limit; /* 0: QUERY_MAX_LIMIT */
};

/* Builds one row's item; NULL skips the row (a filter the SQL cannot
 * express): such a page may hold fewer than limit items. */
typedef json_t *(*query_item_fn)(struct store_rows *q, void *arg);

/* Runs the list query and replies. */
void query_reply(struct http_req *r, struct store *s,
                 const struct query_spec *spec, query_item_fn fn, void *arg);

#endif
