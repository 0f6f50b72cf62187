/*
 * qplan: the query string of an admin API list endpoint, parsed into a
 * plan. The route describes itself in a struct query_spec (which
 * parameters filter, which fields sort); the parser reads the raw query
 * string bytes (not NUL-terminated, percent-encoded, off the wire), checks
 * every parameter against the spec and returns either a plan (sort, limit,
 * typed filters, decoded cursor) or a precise error: the parameter at
 * fault and why. It does no I/O and builds no SQL; the center turns a plan
 * into SQL (src/center/query.c). Fuzz target: fuzz/fuzz_qplan.c.
 *
 * The query string is decoded the way libevent decodes it for the
 * handler's http_req_query (so both see the same parameters): '&'
 * separates parameters, each is NAME=VALUE with a non-empty NAME (taken
 * as is) and a VALUE in which '+' is a space and %XX a byte. A value
 * holding a NUL byte is refused. Duplicates: the first `sort` and the
 * last `limit` and `cursor` count; every filter counts.
 */
#ifndef VIGIL_PROTO_QPLAN_H
#define VIGIL_PROTO_QPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cursor.h"

#define QUERY_DEFAULT_LIMIT 100
#define QUERY_MAX_LIMIT     1000
#define QUERY_MAX_VALUE     256 /* bytes of a decoded value */
#define QPLAN_MAX_FILTERS   61  /* with the cursor's 3, 64 SQL arguments */
#define QPLAN_MAX_FIELD     64  /* bytes of a parameter name in an error */

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
	const char *column; /* SQL expression (the parser does not read it) */
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

enum qplan_op {
	QP_EQ = 1, /* field = value */
	QP_GE,     /* field >= value (QF_GE) */
	QP_LE,     /* field <= value (QF_LE) */
	QP_EXPR,   /* the field's condition with value (QF_EXPR) */
	QP_FROM,   /* field >= num (<name>_from) */
	QP_TO,     /* field < num (<name>_to) */
	QP_MEMBER, /* the field's JSON object has "<name>": text */
	QP_LABEL,  /* the field's JSON object has "text": label */
	QP_SEARCH, /* ?q=: the spec's search text contains text */
};

struct qplan_filter {
	enum qplan_op op;
	const struct query_field *field; /* NULL for QP_SEARCH */
	int is_int;                      /* num holds the value, else text */
	long long num;
	char *text;        /* decoded value; QP_LABEL: the label's key */
	const char *label; /* QP_LABEL: the label's value (within text) */
};

struct qplan {
	const struct query_field *sort;      /* a QF_SORT field of the spec */
	char sort_text[CURSOR_MAX_SORT + 1]; /* "name" or "-name" */
	int desc;
	long long limit;
	struct qplan_filter filters[QPLAN_MAX_FILTERS];
	size_t nfilters;
	int has_cursor; /* cursor holds the previous page's last row */
	struct cursor cursor;
};

struct qplan_error {
	char field[QPLAN_MAX_FIELD + 1]; /* the parameter at fault, or "" */
	struct buf msg;                  /* why (the caller inits it) */
};

/*
 * 0 with the plan filled (qplan_free it); -1 when the query is refused
 * (err says which parameter and why); -ENOMEM when memory ran out (err
 * says so). On failure the plan holds nothing to free.
 */
int qplan_parse(const uint8_t *p, size_t n, const struct query_spec *sp,
                struct qplan *plan, struct qplan_error *err);
void qplan_free(struct qplan *plan);

#endif
