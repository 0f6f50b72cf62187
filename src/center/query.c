/*
 * query.c: paging, filtering and sorting for the admin API's list
 * endpoints (see query.h). Pages are keyset pages: rows are ordered by
 * (sort value, unique key) and the cursor holds both values of the last
 * row served, so a page never repeats or skips a row when rows are added
 * meanwhile, and a deep page costs what the first does. The cursor is
 * hex of a small JSON object; clients treat it as opaque. NULLs in a
 * nullable column (QF_NULL) sort as '' or 0 (COALESCE) so that the
 * comparison stays total; other columns are compared bare, so that an
 * index on them serves both the order and the page's start.
 */
#include <stdlib.h>
#include <string.h>

#include "center.h"
#include "cursor.h"
#include "query.h"

#define QUERY_MAX_ARGS  64
#define QUERY_MAX_VALUE 256

struct qbuild {
	struct buf sql;
	struct store_arg args[QUERY_MAX_ARGS];
	char *owned[QUERY_MAX_ARGS]; /* strings made here */
	size_t nargs;
};

static int
qb_arg(struct qbuild *b, char type, const char *s, long long i, int own)
{
	if (b->nargs == QUERY_MAX_ARGS) {
		if (own)
			free((char *)s);
		return -1;
	}
	b->args[b->nargs].type = type;
	b->args[b->nargs].s = s;
	b->args[b->nargs].i = i;
	b->owned[b->nargs] = own ? (char *)s : NULL;
	b->nargs++;
	return 0;
}

static const struct query_field *
query_field(const struct query_spec *sp, const char *name, size_t n,
            unsigned flags)
{
	const struct query_field *f;

	for (f = sp->fields; f->name != NULL; f++)
		if (strlen(f->name) == n && strncmp(f->name, name, n) == 0 &&
		    (f->flags & flags) != 0)
			return f;
	return NULL;
}

/* "%" and "_" match themselves in a LIKE pattern with ESCAPE '\'. */
static char *
query_like(const char *prefix, const char *v, const char *suffix)
{
	struct buf b;

	buf_init(&b, 4 * QUERY_MAX_VALUE + 64);
	buf_puts(&b, prefix);
	for (; *v != '\0'; v++) {
		if (*v == '%' || *v == '_' || *v == '\\')
			buf_putc(&b, '\\');
		buf_putc(&b, *v);
	}
	buf_puts(&b, suffix);
	return buf_steal(&b, NULL);
}

static int
query_label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static int
query_typed(json_t *v, int type)
{
	return type == QF_INT ? json_is_integer(v) : json_is_string(v);
}

static int
query_bind_value(struct qbuild *b, json_t *v)
{
	if (json_is_integer(v))
		return qb_arg(b, 'i', NULL, json_integer_value(v), 0);
	return qb_arg(b, 's', json_string_value(v), 0, 0);
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

static void
query_known(const struct query_spec *sp, struct buf *b)
{
	const struct query_field *f;
	const char *const *e;

	buf_puts(b, "limit, cursor, sort");
	if (sp->search != NULL)
		buf_puts(b, ", q");
	for (f = sp->fields; f->name != NULL; f++) {
		if (f->flags &
		    (QF_EQ | QF_LABEL | QF_GE | QF_LE | QF_MEMBER | QF_EXPR))
			buf_printf(b, ", %s", f->name);
		if (f->flags & QF_RANGE)
			buf_printf(b, ", %s_from, %s_to", f->name, f->name);
	}
	for (e = sp->extra; e != NULL && *e != NULL; e++)
		buf_printf(b, ", %s", *e);
}

void
query_reply(struct http_req *r, struct store *s, const struct query_spec *sp,
            query_item_fn fn, void *arg)
{
	const struct query_field *f, *sf = NULL;
	const struct evkeyval *kv;
	const char *sort = sp->default_sort, *v, *sname, *cursor = NULL;
	char sortexpr[256];
	struct qbuild b;
	struct buf known;
	struct store_rows *q = NULL;
	json_t *items = NULL, *lastv = NULL, *lastk = NULL;
	struct cursor cur;
	long long limit = QUERY_DEFAULT_LIMIT, n = 0;
	long long max_limit = sp->max_limit ? sp->max_limit : QUERY_MAX_LIMIT;
	size_t ncols = query_ncols(sp->columns), i;
	int desc, key_sort, sort_type, more = 0;
	char *next = NULL;

	memset(&b, 0, sizeof(b));
	memset(&cur, 0, sizeof(cur));
	buf_init(&b.sql, 16384);
	buf_init(&known, 4096);
	buf_printf(&b.sql, "SELECT %s, ", sp->columns);

	/* sort first: the cursor must match it */
	if ((v = http_req_query(r, "sort")) != NULL)
		sort = v;
	desc = sort[0] == '-';
	sname = sort + desc;
	key_sort = 0;
	if ((sf = query_field(sp, sname, strlen(sname), QF_SORT)) == NULL) {
		for (f = sp->fields; f->name != NULL; f++)
			if (f->flags & QF_SORT)
				buf_printf(&known, "%s%s",
				           known.len ? ", " : "", f->name);
		http_reply_error_field(
		    r, 400, "bad_request", "sort",
		    "sort: '%.64s' is not a sort field (one of: %s; prefix "
		    "'-' for descending)",
		    sort, buf_cstr(&known));
		goto out;
	}
	key_sort = strcmp(sf->column, sp->key) == 0;
	sort_type = sf->type;
	if (key_sort || !(sf->flags & QF_NULL))
		snprintf(sortexpr, sizeof(sortexpr), "%s", sf->column);
	else
		snprintf(sortexpr, sizeof(sortexpr), "COALESCE(%s, %s)",
		         sf->column, sf->type == QF_INT ? "0" : "''");
	buf_printf(&b.sql, "%s, %s FROM %s WHERE 1 = 1", sortexpr, sp->key,
	           sp->table);
	if (sp->where != NULL)
		buf_printf(&b.sql, " AND (%s)", sp->where);

	for (kv = r->query.tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		const char *k = kv->key, *val = kv->value;
		size_t kl = strlen(k);
		const char *const *e;
		long long iv;

		if (strcmp(k, "sort") == 0)
			continue;
		if (strcmp(k, "cursor") == 0) {
			cursor = val; /* cursor_decode checks its length */
			continue;
		}
		if (strlen(val) > QUERY_MAX_VALUE) {
			http_reply_error_field(r, 400, "bad_request", k,
			                       "%.64s: longer than %d bytes", k,
			                       QUERY_MAX_VALUE);
			goto out;
		}
		if (strcmp(k, "limit") == 0) {
			if (str_to_ll(val, 1, max_limit, &limit) == -1) {
				http_reply_error_field(
				    r, 400, "bad_request", "limit",
				    "limit: must be an integer 1..%lld",
				    max_limit);
				goto out;
			}
			continue;
		}
		if (strcmp(k, "q") == 0 && sp->search != NULL) {
			if (qb_arg(&b, 's', query_like("%", val, "%"), 0, 1) ==
			    -1)
				goto too_many;
			buf_printf(&b.sql, " AND (%s) LIKE ? ESCAPE '\\'",
			           sp->search);
			continue;
		}
		for (e = sp->extra; e != NULL && *e != NULL; e++)
			if (strcmp(*e, k) == 0)
				break;
		if (e != NULL && *e != NULL)
			continue;
		if ((f = query_field(
		         sp, k, kl, QF_EQ | QF_GE | QF_LE | QF_EXPR)) != NULL) {
			if (f->type == QF_INT) {
				if (str_to_ll(val, -(1LL << 62), 1LL << 62,
				              &iv) == -1) {
					http_reply_error_field(
					    r, 400, "bad_request", k,
					    "%s: must be an integer", f->name);
					goto out;
				}
				if (qb_arg(&b, 'i', NULL, iv, 0) == -1)
					goto too_many;
			} else if (qb_arg(&b, 's', val, 0, 0) == -1)
				goto too_many;
			if (f->flags & QF_EXPR)
				buf_printf(&b.sql, " AND %s", f->column);
			else
				buf_printf(&b.sql, " AND %s %s ?", f->column,
				           (f->flags & QF_GE)   ? ">="
				           : (f->flags & QF_LE) ? "<="
				                                : "=");
			continue;
		}
		if ((f = query_field(sp, k, kl, QF_MEMBER)) != NULL) {
			char *pre, *pat;

			if (!query_label_ok(val, strlen(val))) {
				http_reply_error_field(r, 400, "bad_request", k,
				                       "%s: letters, digits, "
				                       "'-', '_' and '.' only",
				                       f->name);
				goto out;
			}
			/* Stored compact: "name":"value" */
			pre = query_like("%\"", f->name, "\":\"");
			pat = pre ? query_like(pre, val, "\"%") : NULL;
			free(pre);
			if (pat == NULL || qb_arg(&b, 's', pat, 0, 1) == -1)
				goto too_many;
			buf_printf(&b.sql, " AND %s LIKE ? ESCAPE '\\'",
			           f->column);
			continue;
		}
		if ((f = query_field(sp, k, kl, QF_LABEL)) != NULL) {
			const char *eq = strchr(val, '=');
			char *pat;

			if (eq == NULL ||
			    !query_label_ok(val, (size_t)(eq - val)) ||
			    !query_label_ok(eq + 1, strlen(eq + 1))) {
				http_reply_error_field(
				    r, 400, "bad_request", k,
				    "%s: must be KEY=VALUE (letters, digits, "
				    "'-', '_', '.')",
				    f->name);
				goto out;
			}
			/* Labels are stored as compact JSON objects:
			 * KEY=VALUE matches "KEY":"VALUE". */
			{
				char *k2 = strndup(val, (size_t)(eq - val));
				char *pre =
				    k2 ? query_like("%\"", k2, "\":\"") : NULL;

				pat =
				    pre ? query_like(pre, eq + 1, "\"%") : NULL;
				free(k2);
				free(pre);
			}
			if (pat == NULL) {
				http_reply_error(r, 500, "internal_error",
				                 "out of memory");
				goto out;
			}
			if (qb_arg(&b, 's', pat, 0, 1) == -1)
				goto too_many;
			buf_printf(&b.sql, " AND %s LIKE ? ESCAPE '\\'",
			           f->column);
			continue;
		}
		if (kl > 5 && (strcmp(k + kl - 5, "_from") == 0 ||
		               strcmp(k + kl - 3, "_to") == 0)) {
			int from = strcmp(k + kl - 5, "_from") == 0;

			f = query_field(sp, k, kl - (from ? 5 : 3), QF_RANGE);
			if (f != NULL) {
				if (str_to_ll(val, -(1LL << 62), 1LL << 62,
				              &iv) == -1) {
					http_reply_error_field(
					    r, 400, "bad_request", k,
					    "%.64s: must be an integer (Unix "
					    "time in seconds)",
					    k);
					goto out;
				}
				if (qb_arg(&b, 'i', NULL, iv, 0) == -1)
					goto too_many;
				buf_printf(&b.sql, " AND %s %s ?", f->column,
				           from ? ">=" : "<");
				continue;
			}
		}
		query_known(sp, &known);
		http_reply_error_field(r, 400, "bad_request", k,
		                       "%.64s: unknown query parameter (known: "
		                       "%s)",
		                       k, buf_cstr(&known));
		goto out;
	}

	if (cursor != NULL) {
		buf_reset(&known);
		if (cursor_decode((const uint8_t *)cursor, strlen(cursor), &cur,
		                  &known) == -1 ||
		    !query_typed(cur.v, sort_type) ||
		    !query_typed(cur.k, sp->key_type)) {
			http_reply_error_field(r, 400, "bad_request", "cursor",
			                       "cursor: not a cursor this "
			                       "endpoint returned");
			goto out;
		}
		if (strcmp(cur.sort, sort) != 0) {
			http_reply_error_field(
			    r, 400, "bad_request", "cursor",
			    "cursor: made for sort '%.64s', not '%.64s'",
			    cur.sort, sort);
			goto out;
		}
		if (key_sort) {
			if (query_bind_value(&b, cur.k) == -1)
				goto too_many;
			buf_printf(&b.sql, " AND %s %s ?", sp->key,
			           desc ? "<" : ">");
		} else {
			if (query_bind_value(&b, cur.v) == -1 ||
			    query_bind_value(&b, cur.v) == -1 ||
			    query_bind_value(&b, cur.k) == -1)
				goto too_many;
			/* The first term alone bounds an index range. */
			buf_printf(&b.sql,
			           " AND %s %s ? AND (%s %s ? OR %s %s ?)",
			           sortexpr, desc ? "<=" : ">=", sortexpr,
			           desc ? "<" : ">", sp->key, desc ? "<" : ">");
		}
	}
	if (key_sort)
		buf_printf(&b.sql, " ORDER BY %s %s", sp->key,
		           desc ? "DESC" : "ASC");
	else
		buf_printf(&b.sql, " ORDER BY %s %s, %s %s", sortexpr,
		           desc ? "DESC" : "ASC", sp->key,
		           desc ? "DESC" : "ASC");
	buf_printf(&b.sql, " LIMIT %lld", limit + 1);
	if (b.sql.len >= b.sql.max - 1) {
		http_reply_error(r, 500, "internal_error", "query too long");
		goto out;
	}

	if ((q = store_query_args(s, buf_cstr(&b.sql), b.args, b.nargs)) ==
	    NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		goto out;
	}
	items = json_array();
	while (store_next(q) == 1) {
		json_t *it;

		if (n == limit) {
			more = 1;
			break;
		}
		n++;
		json_decref(lastv);
		json_decref(lastk);
		lastv = query_col(q, (int)ncols, sort_type);
		lastk = query_col(q, (int)ncols + 1, sp->key_type);
		if ((it = fn(q, arg)) != NULL)
			json_array_append_new(items, it);
	}
	store_done(q);
	if (more && (next = cursor_encode(sort, lastv, lastk)) == NULL) {
		http_reply_error(r, 500, "internal_error", "out of memory");
		goto out;
	}
	{
		json_t *o = json_pack("{s:O, s:s?}", "items", items,
		                      "next_cursor", next);

		if (o != NULL && json_object_get(o, "next_cursor") == NULL)
			json_object_set_new(o, "next_cursor", json_null());
		http_reply_json(r, 200, o);
	}
	goto out;
too_many:
	http_reply_error(r, 400, "bad_request", "too many query parameters");
out:
	for (i = 0; i < b.nargs; i++)
		free(b.owned[i]);
	free(next);
	json_decref(items);
	cursor_free(&cur);
	json_decref(lastv);
	json_decref(lastk);
	buf_free(&b.sql);
	buf_free(&known);
}
