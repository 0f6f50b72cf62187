/*
 * query.c: paging, filtering and sorting for the admin API's list
 * endpoints (see query.h). Three steps: qplan_parse (src/proto/qplan.c)
 * checks the query string against the route's spec and makes a plan;
 * query_sql turns the plan into SQL and typed arguments; query_page runs
 * it and renders one page. Pages are keyset pages: rows are ordered by
 * (sort value, unique key) and the cursor holds both values of the last
 * row served, so a page never repeats or skips a row when rows are added
 * meanwhile, and a deep page costs what the first does. The cursor is
 * hex of a small JSON object; clients treat it as opaque. NULLs in a
 * nullable column (QF_NULL) sort as '' or 0 (COALESCE) so that the
 * comparison stays total; other columns are compared bare, so that an
 * index on them serves both the order and the page's start.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "center.h"
#include "cursor.h"
#include "query.h"

/* Each filter binds one argument and the cursor three at most, which
 * QPLAN_MAX_FILTERS leaves room for. */
#define QUERY_MAX_ARGS 64

struct query_sql {
	struct buf sql;
	struct store_arg args[QUERY_MAX_ARGS];
	char *owned[QUERY_MAX_ARGS]; /* strings made here */
	size_t nargs;
	int key_sort;       /* sorted by the key alone */
	char sortexpr[256]; /* the sort column as compared */
};

static void
query_arg(struct query_sql *b, char type, const char *s, long long i,
          char *owned)
{
	if (b->nargs == QUERY_MAX_ARGS)
		fatalx("%s: more than %d arguments", __func__, QUERY_MAX_ARGS);
	b->args[b->nargs].type = type;
	b->args[b->nargs].s = s;
	b->args[b->nargs].i = i;
	b->owned[b->nargs] = owned;
	b->nargs++;
}

static void
query_sql_free(struct query_sql *b)
{
	size_t i;

	for (i = 0; i < b->nargs; i++)
		free(b->owned[i]);
	b->nargs = 0;
	buf_free(&b->sql);
}

/* "%" and "_" match themselves in a LIKE pattern with ESCAPE '\'. NULL
 * when memory runs out. */
static char *
query_like(const char *prefix, const char *v, const char *suffix)
{
	struct buf b;
	int rc;

	buf_init(&b, 8 * QUERY_MAX_VALUE + 64);
	rc = buf_puts(&b, prefix);
	for (; *v != '\0'; v++) {
		if (*v == '%' || *v == '_' || *v == '\\')
			rc |= buf_putc(&b, '\\');
		rc |= buf_putc(&b, *v);
	}
	rc |= buf_puts(&b, suffix);
	if (rc != 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

/* A LIKE pattern for the member "name":"value" of a column holding a
 * compact JSON object. */
static char *
query_member(const char *name, const char *value)
{
	char *pre, *pat;

	if ((pre = query_like("%\"", name, "\":\"")) == NULL)
		return NULL;
	pat = query_like(pre, value, "\"%");
	free(pre);
	return pat;
}

static int
query_filter(struct query_sql *b, const struct query_spec *sp,
             const struct qplan_filter *fl)
{
	const struct query_field *f = fl->field;
	char *pat;

	switch (fl->op) {
	case QP_SEARCH:
		if ((pat = query_like("%", fl->text, "%")) == NULL)
			return -ENOMEM;
		query_arg(b, 's', pat, 0, pat);
		buf_printf(&b->sql, " AND (%s) LIKE ? ESCAPE '\\'", sp->search);
		return 0;
	case QP_MEMBER:
	case QP_LABEL:
		/* Stored compact: "name":"value" */
		pat = fl->op == QP_MEMBER ? query_member(f->name, fl->text)
		                          : query_member(fl->text, fl->label);
		if (pat == NULL)
			return -ENOMEM;
		query_arg(b, 's', pat, 0, pat);
		buf_printf(&b->sql, " AND %s LIKE ? ESCAPE '\\'", f->column);
		return 0;
	default:
		break;
	}
	if (fl->is_int)
		query_arg(b, 'i', NULL, fl->num, NULL);
	else
		query_arg(b, 's', fl->text, 0, NULL);
	switch (fl->op) {
	case QP_EXPR:
		buf_printf(&b->sql, " AND %s", f->column);
		break;
	case QP_EQ:
	case QP_GE:
	case QP_LE:
	case QP_FROM:
	case QP_TO:
		buf_printf(&b->sql, " AND %s %s ?", f->column,
		           fl->op == QP_EQ                        ? "="
		           : fl->op == QP_GE || fl->op == QP_FROM ? ">="
		           : fl->op == QP_LE                      ? "<="
		                                                  : "<");
		break;
	default:
		fatalx("%s: filter op %d", __func__, fl->op);
	}
	return 0;
}

static void
query_value(struct query_sql *b, json_t *v)
{
	if (json_is_integer(v))
		query_arg(b, 'i', NULL, json_integer_value(v), NULL);
	else
		query_arg(b, 's', json_string_value(v), 0, NULL);
}

/*
 * The plan as SQL: SELECT <columns>, <sort value>, <key> ... LIMIT
 * limit + 1 (the extra row tells that a next page exists). 0, -ENOMEM,
 * or -1 when the SQL outgrows its buffer. b is query_sql_free'd by the
 * caller either way; its arguments point into the plan.
 */
static int
query_sql(struct query_sql *b, const struct query_spec *sp,
          const struct qplan *p)
{
	const struct query_field *sf = p->sort;
	const char *dir = p->desc ? "DESC" : "ASC";
	const char *lt = p->desc ? "<" : ">", *le = p->desc ? "<=" : ">=";
	size_t i;
	int rc;

	memset(b, 0, sizeof(*b));
	buf_init(&b->sql, 16384);
	b->key_sort = strcmp(sf->column, sp->key) == 0;
	if (b->key_sort || !(sf->flags & QF_NULL))
		snprintf(b->sortexpr, sizeof(b->sortexpr), "%s", sf->column);
	else
		snprintf(b->sortexpr, sizeof(b->sortexpr), "COALESCE(%s, %s)",
		         sf->column, sf->type == QF_INT ? "0" : "''");
	buf_printf(&b->sql, "SELECT %s, %s, %s FROM %s WHERE 1 = 1",
	           sp->columns, b->sortexpr, sp->key, sp->table);
	if (sp->where != NULL)
		buf_printf(&b->sql, " AND (%s)", sp->where);
	for (i = 0; i < p->nfilters; i++)
		if ((rc = query_filter(b, sp, &p->filters[i])) != 0)
			return rc;
	if (p->has_cursor && b->key_sort) {
		query_value(b, p->cursor.k);
		buf_printf(&b->sql, " AND %s %s ?", sp->key, lt);
	} else if (p->has_cursor) {
		query_value(b, p->cursor.v);
		query_value(b, p->cursor.v);
		query_value(b, p->cursor.k);
		/* The first term alone bounds an index range. */
		buf_printf(&b->sql, " AND %s %s ? AND (%s %s ? OR %s %s ?)",
		           b->sortexpr, le, b->sortexpr, lt, sp->key, lt);
	}
	if (b->key_sort)
		buf_printf(&b->sql, " ORDER BY %s %s", sp->key, dir);
	else
		buf_printf(&b->sql, " ORDER BY %s %s, %s %s", b->sortexpr, dir,
		           sp->key, dir);
	buf_printf(&b->sql, " LIMIT %lld", p->limit + 1);
	if (buf_ok(&b->sql) == -1)
		return -1;
	return 0;
}

static size_t
query_ncols(const char *cols)
{
	size_t n = 1;
	int depth = 0;

	for (; *cols != '\0'; cols++) {
		if (*cols == '(')
			depth++;
		else if (*cols == ')')
			depth--;
		else if (*cols == ',' && depth == 0)
			n++;
	}
	return n;
}

static json_t *
query_col(struct store_rows *q, int col, int type)
{
	if (type == QF_INT)
		return json_integer(store_int(q, col));
	return json_string(store_text(q, col) ? store_text(q, col) : "");
}

/*
 * A page's rows, counted by their columns' text, stop at this many bytes
 * (the first row always goes): a reply then stays well within what the
 * admin worker's channel takes (4 MiB and more), however large the rows
 * (events near the size limits) and the page's limit; the client follows
 * next_cursor as for any page. A variable for the tests.
 */
#define QUERY_PAGE_BYTES (2u << 20)
static size_t query_page_bytes = QUERY_PAGE_BYTES;

static size_t
query_row_bytes(struct store_rows *q, size_t ncols)
{
	const char *t;
	size_t i, n = 0;

	for (i = 0; i < ncols; i++)
		if ((t = store_text(q, (int)i)) != NULL)
			n += strlen(t);
	return n;
}

/*
 * Runs the SQL and renders {"items": [...], "next_cursor": ...} into
 * *out: at most the plan's limit of rows, and no more than
 * query_page_bytes of them. 0, -1 when the store fails, -ENOMEM.
 */
static int
query_page(struct store *s, const struct query_spec *sp, const struct qplan *p,
           const struct query_sql *b, query_item_fn fn, void *arg, json_t **out)
{
	struct store_rows *q;
	json_t *items, *lastv = NULL, *lastk = NULL, *it;
	size_t ncols = query_ncols(sp->columns), bytes = 0, rb;
	char *next = NULL;
	long long n = 0;
	int more = 0, rc = 0;

	*out = NULL;
	if ((q = store_query_args(s, buf_cstr(&b->sql), b->args, b->nargs)) ==
	    NULL)
		return -1;
	if ((items = json_array()) == NULL) {
		store_done(q);
		return -ENOMEM;
	}
	while (store_next(q) == 1) {
		if (n == p->limit) {
			more = 1;
			break;
		}
		rb = query_row_bytes(q, ncols);
		if (n > 0 && bytes + rb > query_page_bytes) {
			more = 1;
			break;
		}
		bytes += rb;
		n++;
		json_decref(lastv);
		json_decref(lastk);
		lastv = query_col(q, (int)ncols, p->sort->type);
		lastk = query_col(q, (int)ncols + 1, sp->key_type);
		if ((it = fn(q, arg)) != NULL)
			json_array_append_new(items, it);
	}
	store_done(q);
	if (more && (next = cursor_encode(p->sort_text, lastv, lastk)) == NULL)
		rc = -ENOMEM;
	else if ((*out = json_pack("{s:O, s:s?}", "items", items, "next_cursor",
	                           next)) == NULL)
		rc = -ENOMEM;
	else if (json_object_get(*out, "next_cursor") == NULL)
		json_object_set_new(*out, "next_cursor", json_null());
	free(next);
	json_decref(items);
	json_decref(lastv);
	json_decref(lastk);
	return rc;
}

void
query_reply(struct http_req *r, struct store *s, const struct query_spec *sp,
            query_item_fn fn, void *arg)
{
	/* The raw query string: the parser decodes it itself. */
	const char *raw = http_req_raw_query(r);
	struct qplan plan;
	struct qplan_error err;
	struct query_sql b;
	json_t *page;
	int rc;

	buf_init(&err.msg, 4096);
	rc = qplan_parse((const uint8_t *)(raw ? raw : ""),
	                 raw ? strlen(raw) : 0, sp, &plan, &err);
	if (rc == -ENOMEM) {
		http_reply_error(r, 500, "internal_error", "out of memory");
		buf_free(&err.msg);
		return;
	}
	if (rc != 0) {
		if (err.field[0] != '\0')
			http_reply_error_field(r, 400, "bad_request", err.field,
			                       "%s", buf_cstr(&err.msg));
		else
			http_reply_error(r, 400, "bad_request", "%s",
			                 buf_cstr(&err.msg));
		buf_free(&err.msg);
		return;
	}
	buf_free(&err.msg);
	if ((rc = query_sql(&b, sp, &plan)) == -ENOMEM)
		http_reply_error(r, 500, "internal_error", "out of memory");
	else if (rc != 0)
		http_reply_error(r, 500, "internal_error", "query too long");
	else if ((rc = query_page(s, sp, &plan, &b, fn, arg, &page)) == -1)
		http_reply_error(r, 500, "store", "store unavailable");
	else if (rc != 0)
		http_reply_error(r, 500, "internal_error", "out of memory");
	else
		http_reply_json(r, 200, page);
	query_sql_free(&b);
	qplan_free(&plan);
}

int
query_page_args(struct http_req *r, long long max, long long *limit,
                long long *offset)
{
	const char *l = http_req_query(r, "limit");
	const char *cur = http_req_query(r, "cursor");
	char *end;

	*limit = QUERY_DEFAULT_LIMIT;
	*offset = 0;
	if (l != NULL) {
		errno = 0;
		*limit = strtoll(l, &end, 10);
		if (errno || *end || end == l || *limit < 1 || *limit > max) {
			http_reply_error_field(r, 400, "bad_request", "limit",
			                       "limit: 1 to %lld", max);
			return -1;
		}
	}
	if (cur != NULL) {
		errno = 0;
		*offset = cur[0] == 'o' && cur[1] >= '0' && cur[1] <= '9'
		              ? strtoll(cur + 1, &end, 10)
		              : -1;
		if (*offset < 0 || errno || *end || *offset > 1000000000) {
			http_reply_error_field(r, 400, "bad_request", "cursor",
			                       "cursor: not a next_cursor of "
			                       "this list");
			return -1;
		}
	}
	return 0;
}

json_t *
query_page_next(json_t *arr, long long limit, long long offset)
{
	char next[32];

	if ((long long)json_array_size(arr) <= limit)
		return json_null();
	while ((long long)json_array_size(arr) > limit)
		json_array_remove(arr, json_array_size(arr) - 1);
	snprintf(next, sizeof(next), "o%lld", offset + limit);
	return json_string(next);
}
