/*
 * qplan.c: the list query string parsed into a plan (see qplan.h). The
 * checks and their messages are those the list endpoints have always
 * answered with; what is new is that each one is a plain return here, so
 * that every refusal can be unit-tested and fuzzed without a request, and
 * running out of memory is told apart from a refused query.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "qplan.h"

#define QPLAN_INT_MAX (1LL << 62)

struct qparam {
	const uint8_t *key;
	size_t klen;
	const uint8_t *val; /* raw, still percent-encoded */
	size_t vlen;
};

/* The parameter at *pos: 1 with it, 0 at the end, -1 when the part
 * before the next '&' is not NAME=VALUE (a single trailing '&' is
 * allowed, as libevent allows it). */
static int
qplan_next(const uint8_t *p, size_t n, size_t *pos, struct qparam *qp)
{
	size_t i = *pos, end, eq;

	if (i >= n)
		return 0;
	for (end = i; end < n && p[end] != '&'; end++)
		;
	for (eq = i; eq < end && p[eq] != '='; eq++)
		;
	if (eq == end || eq == i)
		return -1;
	qp->key = p + i;
	qp->klen = eq - i;
	qp->val = p + eq + 1;
	qp->vlen = end - eq - 1;
	*pos = end + 1;
	return 1;
}

static int
qplan_key_is(const struct qparam *qp, const char *name)
{
	return qp->klen == strlen(name) && memcmp(qp->key, name, qp->klen) == 0;
}

/* The value decoded into a malloc'd string ('+' a space, %XX a byte);
 * *len is its length, which a NUL byte inside makes differ from strlen. */
static char *
qplan_decode(const struct qparam *qp, size_t *len)
{
	const uint8_t *v = qp->val;
	size_t i, j = 0;
	char *out;
	int hi, lo;

	if ((out = malloc(qp->vlen + 1)) == NULL)
		return NULL;
	for (i = 0; i < qp->vlen; i++) {
		if (v[i] == '+')
			out[j++] = ' ';
		else if (v[i] == '%' && i + 2 < qp->vlen &&
		         (hi = hex_value(v[i + 1])) >= 0 &&
		         (lo = hex_value(v[i + 2])) >= 0) {
			out[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[j++] = (char)v[i];
	}
	out[j] = '\0';
	*len = j;
	return out;
}

static int qplan_fail(struct qplan_error *err, const struct qparam *qp,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
qplan_fail(struct qplan_error *err, const struct qparam *qp, const char *fmt,
           ...)
{
	va_list ap;
	size_t n = 0;
	char *s;

	if (qp != NULL) {
		n = qp->klen < QPLAN_MAX_FIELD ? qp->klen : QPLAN_MAX_FIELD;
		memcpy(err->field, qp->key, n);
	}
	err->field[n] = '\0';
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	buf_puts(&err->msg, s != NULL ? s : "query refused");
	free(s);
	return -1;
}

static int
qplan_oom(struct qplan_error *err)
{
	err->field[0] = '\0';
	buf_puts(&err->msg, "out of memory");
	return -ENOMEM;
}

static const struct query_field *
qplan_field(const struct query_spec *sp, const uint8_t *name, size_t n,
            unsigned flags)
{
	const struct query_field *f;

	for (f = sp->fields; f->name != NULL; f++)
		if (strlen(f->name) == n && memcmp(f->name, name, n) == 0 &&
		    (f->flags & flags) != 0)
			return f;
	return NULL;
}

static int
qplan_typed(json_t *v, int type)
{
	return type == QF_INT ? json_is_integer(v) : json_is_string(v);
}

/* The parameters this spec takes, for "unknown parameter" errors. */
static void
qplan_known(const struct query_spec *sp, struct buf *b)
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

static int
qplan_sort(const uint8_t *p, size_t n, const struct query_spec *sp,
           struct qplan *plan, struct qplan_error *err)
{
	const struct query_field *f;
	struct qparam qp;
	const char *sort = sp->default_sort;
	char *dec = NULL;
	size_t pos = 0, len;
	struct buf names;
	int rc;

	while (qplan_next(p, n, &pos, &qp) == 1)
		if (qplan_key_is(&qp, "sort")) {
			if ((dec = qplan_decode(&qp, &len)) == NULL)
				return qplan_oom(err);
			if (strlen(dec) != len) {
				free(dec);
				return qplan_fail(err, &qp,
				                  "sort: contains a NUL byte");
			}
			sort = dec;
			break;
		}
	plan->desc = sort[0] == '-';
	f = qplan_field(sp, (const uint8_t *)sort + plan->desc,
	                strlen(sort + plan->desc), QF_SORT);
	if (f != NULL) {
		snprintf(plan->sort_text, sizeof(plan->sort_text), "%s%s",
		         plan->desc ? "-" : "", f->name);
		plan->sort = f;
		free(dec);
		return 0;
	}
	buf_init(&names, 4096);
	for (f = sp->fields; f->name != NULL; f++)
		if (f->flags & QF_SORT)
			buf_printf(&names, "%s%s", names.len ? ", " : "",
			           f->name);
	qp.key = (const uint8_t *)"sort";
	qp.klen = 4;
	rc = qplan_fail(err, &qp,
	                "sort: '%.64s' is not a sort field (one of: %s; "
	                "prefix '-' for descending)",
	                sort, buf_cstr(&names));
	buf_free(&names);
	free(dec);
	return rc;
}

static struct qplan_filter *
qplan_add(struct qplan *plan, enum qplan_op op, const struct query_field *f)
{
	struct qplan_filter *fl;

	if (plan->nfilters == QPLAN_MAX_FILTERS)
		return NULL;
	fl = &plan->filters[plan->nfilters++];
	memset(fl, 0, sizeof(*fl));
	fl->op = op;
	fl->field = f;
	return fl;
}

/* One filter parameter; val (decoded, NUL-free) becomes the plan's. */
static int
qplan_filter(const struct query_spec *sp, const struct qparam *qp, char *val,
             struct qplan *plan, struct qplan_error *err)
{
	const struct query_field *f;
	struct qplan_filter *fl = NULL;
	const uint8_t *k = qp->key;
	size_t kl = qp->klen;
	long long iv = 0;
	int is_int = 0;
	char *eq;
	struct buf known;
	int rc;

	if (qplan_key_is(qp, "q") && sp->search != NULL) {
		fl = qplan_add(plan, QP_SEARCH, NULL);
		goto take;
	}
	if ((f = qplan_field(sp, k, kl, QF_EQ | QF_GE | QF_LE | QF_EXPR)) !=
	    NULL) {
		if (f->type == QF_INT) {
			if (str_to_ll(val, -QPLAN_INT_MAX, QPLAN_INT_MAX,
			              &iv) == -1)
				return qplan_fail(
				    err, qp, "%s: must be an integer", f->name);
			is_int = 1;
		}
		fl = qplan_add(plan,
		               (f->flags & QF_EXPR) ? QP_EXPR
		               : (f->flags & QF_GE) ? QP_GE
		               : (f->flags & QF_LE) ? QP_LE
		                                    : QP_EQ,
		               f);
		goto take;
	}
	if ((f = qplan_field(sp, k, kl, QF_MEMBER)) != NULL) {
		if (!str_name_ok(val, strlen(val), 255))
			return qplan_fail(err, qp,
			                  "%s: letters, digits, '-', '_' and "
			                  "'.' only",
			                  f->name);
		fl = qplan_add(plan, QP_MEMBER, f);
		goto take;
	}
	if ((f = qplan_field(sp, k, kl, QF_LABEL)) != NULL) {
		if ((eq = strchr(val, '=')) == NULL ||
		    !str_name_ok(val, (size_t)(eq - val), 255) ||
		    !str_name_ok(eq + 1, strlen(eq + 1), 255))
			return qplan_fail(err, qp,
			                  "%s: must be KEY=VALUE (letters, "
			                  "digits, '-', '_', '.')",
			                  f->name);
		if ((fl = qplan_add(plan, QP_LABEL, f)) != NULL) {
			*eq = '\0';
			fl->label = eq + 1;
		}
		goto take;
	}
	/* <name>_from, <name>_to (a name of any length, even one byte) */
	if ((kl > 5 && memcmp(k + kl - 5, "_from", 5) == 0) ||
	    (kl > 3 && memcmp(k + kl - 3, "_to", 3) == 0)) {
		int from = kl > 5 && memcmp(k + kl - 5, "_from", 5) == 0;

		f = qplan_field(sp, k, kl - (from ? 5 : 3), QF_RANGE);
		if (f != NULL) {
			if (str_to_ll(val, -QPLAN_INT_MAX, QPLAN_INT_MAX,
			              &iv) == -1)
				return qplan_fail(
				    err, qp,
				    "%.*s: must be an integer (Unix "
				    "time in seconds)",
				    (int)(kl < 64 ? kl : 64), k);
			is_int = 1;
			fl = qplan_add(plan, from ? QP_FROM : QP_TO, f);
			goto take;
		}
	}
	buf_init(&known, 4096);
	qplan_known(sp, &known);
	rc = qplan_fail(err, qp, "%.*s: unknown query parameter (known: %s)",
	                (int)(kl < 64 ? kl : 64), k, buf_cstr(&known));
	buf_free(&known);
	return rc;
take:
	if (fl == NULL)
		return qplan_fail(err, qp,
		                  "%.*s: too many query parameters (at most %d "
		                  "filters)",
		                  (int)(kl < 64 ? kl : 64), k,
		                  QPLAN_MAX_FILTERS);
	fl->is_int = is_int;
	fl->num = iv;
	fl->text = val;
	return 1; /* val taken */
}

static int
qplan_cursor(const char *val, size_t len, const struct query_spec *sp,
             struct qplan *plan, struct qplan_error *err)
{
	struct qparam qp = {(const uint8_t *)"cursor", 6, NULL, 0};

	if (cursor_decode((const uint8_t *)val, len, &plan->cursor,
	                  &err->msg) == -1) {
		cursor_free(&plan->cursor);
		snprintf(err->field, sizeof(err->field), "cursor");
		return -1;
	}
	plan->has_cursor = 1;
	if (!qplan_typed(plan->cursor.v, plan->sort->type) ||
	    !qplan_typed(plan->cursor.k, sp->key_type))
		return qplan_fail(err, &qp,
		                  "cursor: not a cursor this endpoint returned "
		                  "(value types)");
	if (strcmp(plan->cursor.sort, plan->sort_text) != 0)
		return qplan_fail(err, &qp,
		                  "cursor: made for sort '%.64s', not '%.64s'",
		                  plan->cursor.sort, plan->sort_text);
	return 0;
}

int
qplan_parse(const uint8_t *p, size_t n, const struct query_spec *sp,
            struct qplan *plan, struct qplan_error *err)
{
	long long max_limit = sp->max_limit ? sp->max_limit : QUERY_MAX_LIMIT;
	const char *const *e;
	struct qparam qp;
	char *val = NULL, *cursor = NULL;
	size_t pos = 0, len, cursor_len = 0;
	int rc;

	memset(plan, 0, sizeof(*plan));
	err->field[0] = '\0';
	plan->limit = QUERY_DEFAULT_LIMIT;
	/* sort first: the cursor must match it */
	if ((rc = qplan_sort(p, n, sp, plan, err)) != 0)
		return rc;
	while ((rc = qplan_next(p, n, &pos, &qp)) == 1) {
		if (qplan_key_is(&qp, "sort"))
			continue;
		if ((val = qplan_decode(&qp, &len)) == NULL) {
			rc = qplan_oom(err);
			goto fail;
		}
		if (strlen(val) != len) {
			rc = qplan_fail(
			    err, &qp, "%.*s: contains a NUL byte (%%00)",
			    (int)(qp.klen < 64 ? qp.klen : 64), qp.key);
			goto fail;
		}
		if (qplan_key_is(&qp, "cursor")) {
			free(cursor); /* the last one counts */
			cursor = val;
			cursor_len = len;
			val = NULL;
			continue;
		}
		if (len > QUERY_MAX_VALUE) {
			rc = qplan_fail(err, &qp, "%.*s: longer than %d bytes",
			                (int)(qp.klen < 64 ? qp.klen : 64),
			                qp.key, QUERY_MAX_VALUE);
			goto fail;
		}
		if (qplan_key_is(&qp, "limit")) {
			if (str_to_ll(val, 1, max_limit, &plan->limit) == -1) {
				rc = qplan_fail(
				    err, &qp,
				    "limit: must be an integer 1..%lld",
				    max_limit);
				goto fail;
			}
			free(val);
			val = NULL;
			continue;
		}
		/* a parameter the handler reads itself */
		for (e = sp->extra; e != NULL && *e != NULL; e++)
			if (qplan_key_is(&qp, *e))
				break;
		if (e != NULL && *e != NULL &&
		    !(qplan_key_is(&qp, "q") && sp->search != NULL)) {
			free(val);
			val = NULL;
			continue;
		}
		if ((rc = qplan_filter(sp, &qp, val, plan, err)) == -1)
			goto fail;
		val = NULL;
	}
	if (rc == -1) {
		rc = qplan_fail(err, NULL,
		                "malformed query string (a part is not "
		                "NAME=VALUE)");
		goto fail;
	}
	if (cursor != NULL &&
	    (rc = qplan_cursor(cursor, cursor_len, sp, plan, err)) != 0)
		goto fail;
	free(cursor);
	return 0;
fail:
	free(val);
	free(cursor);
	qplan_free(plan);
	return rc;
}

void
qplan_free(struct qplan *plan)
{
	size_t i;

	for (i = 0; i < plan->nfilters; i++)
		free(plan->filters[i].text);
	plan->nfilters = 0;
	cursor_free(&plan->cursor);
	plan->has_cursor = 0;
}
