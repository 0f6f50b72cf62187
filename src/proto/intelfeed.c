/*
 * intelfeed.c: see intelfeed.h. JSON formats are read with jansson; CSV
 * and lists line by line over the bytes given (never NUL-terminated).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "intelfeed.h"

static const char *const verdict_names[] = {"unknown", "benign", "suspicious",
                                            "malicious"};

const char *
intel_verdict_name(int v)
{
	return v >= 0 && v <= INTEL_MALICIOUS ? verdict_names[v] : "unknown";
}

int
intel_verdict_parse(const char *s, size_t n)
{
	int v;

	for (v = INTEL_BENIGN; v <= INTEL_MALICIOUS; v++)
		if (strlen(verdict_names[v]) == n &&
		    strncasecmp(s, verdict_names[v], n) == 0)
			return v;
	return -1;
}

static const char *const format_names[INTEL_FMT_N] = {"csv", "list", "misp",
                                                      "stix"};

const char *
intel_format_name(enum intel_format f)
{
	return (unsigned)f < INTEL_FMT_N ? format_names[f] : "?";
}

enum intel_format
intel_format_parse(const char *s)
{
	int f;

	for (f = 0; s != NULL && f < INTEL_FMT_N; f++)
		if (strcmp(s, format_names[f]) == 0)
			return (enum intel_format)f;
	return INTEL_FMT_N;
}

static int
digits(const char *s, size_t n, size_t k, int *out)
{
	size_t i;
	int v = 0;

	if (n < k)
		return -1;
	for (i = 0; i < k; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
intel_time_parse(const char *s, size_t n, long long *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0, oh, om, sign = 0;
	size_t i;
	long long t;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	if (n == 0)
		return -1;
	for (i = 0; i < n && isdigit((unsigned char)s[i]); i++)
		;
	if (i == n)
		return strv_to_ll(strv_make(s, n), 0, 253402300799LL, out);
	if (digits(s, n, 4, &y) || n < 10 || s[4] != '-' ||
	    digits(s + 5, n - 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, n - 8, 2, &d))
		return -1;
	i = 10;
	if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		if (n < i + 9 || digits(s + i + 1, n - i - 1, 2, &h) ||
		    s[i + 3] != ':' || digits(s + i + 4, n - i - 4, 2, &mi) ||
		    s[i + 6] != ':' || digits(s + i + 7, n - i - 7, 2, &se))
			return -1;
		i += 9;
		if (i < n && s[i] == '.') {
			i++;
			while (i < n && isdigit((unsigned char)s[i]))
				i++;
		}
	}
	oh = om = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z'))
		i++;
	else if (i < n && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		if (n < i + 6 || digits(s + i + 1, n - i - 1, 2, &oh) ||
		    s[i + 3] != ':' || digits(s + i + 4, n - i - 4, 2, &om))
			return -1;
		i += 6;
	}
	if (i != n || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60 || oh > 23 || om > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = (long long)timegm(&tm);
	t -= sign * (oh * 3600LL + om * 60LL);
	if (t < 0)
		return -1;
	*out = t;
	return 0;
}

void
intel_utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		int n = *p < 0x80             ? 0
		        : (*p & 0xe0) == 0xc0 ? 1
		        : (*p & 0xf0) == 0xe0 ? 2
		        : (*p & 0xf8) == 0xf0 ? 3
		                              : -1;
		int i;

		if (n == 0) {
			p++;
			continue;
		}
		for (i = 1; n > 0 && i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				break;
		/* overlong forms, surrogates and code points past U+10FFFF
		 * are not UTF-8 either (RFC 3629) */
		if (n < 0 || i <= n || *p == 0xc0 || *p == 0xc1 || *p >= 0xf5 ||
		    (*p == 0xe0 && p[1] < 0xa0) ||
		    (*p == 0xed && p[1] > 0x9f) ||
		    (*p == 0xf0 && p[1] < 0x90) ||
		    (*p == 0xf4 && p[1] > 0x8f)) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

/* The parse under way. */
struct pctx {
	const struct intel_feedopts *o;
	const struct intel_sink *s;
	int stopped;
	int deleting; /* emit hands entries to s->del */
};

static void
note(struct pctx *c, int skipped, const char *where, const char *value,
     size_t vlen, const char *why)
{
	char v[160], w[300], y[300];

	if (value != NULL) {
		size_t i, k = vlen < sizeof(v) - 1 ? vlen : sizeof(v) - 1;

		for (i = 0; i < k; i++)
			v[i] = (unsigned char)value[i] < 0x20 ? '?' : value[i];
		v[k] = '\0';
		intel_utf8_clean(v);
	}
	/* The report is JSON: text cut anywhere must still be UTF-8. */
	snprintf(w, sizeof(w), "%s", where);
	snprintf(y, sizeof(y), "%s", why);
	intel_utf8_clean(w);
	intel_utf8_clean(y);
	c->s->note(c->s->arg, skipped, w, value ? v : NULL, y);
}

static int
default_score(const struct intel_feedopts *o, int verdict)
{
	if (o->score >= 0)
		return o->score;
	return verdict == INTEL_MALICIOUS    ? 100
	       : verdict == INTEL_SUSPICIOUS ? 50
	                                     : 0;
}

/* Appends a tag to r->tags (comma-separated, cut when full). */
static void
add_tag(struct intel_rec *r, const char *t, size_t n)
{
	size_t len = strlen(r->tags), i;

	while (n > 0 && isspace((unsigned char)*t)) {
		t++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)t[n - 1]))
		n--;
	if (n == 0 || len + n + 2 > sizeof(r->tags))
		return;
	if (len)
		r->tags[len++] = ',';
	for (i = 0; i < n; i++)
		r->tags[len + i] =
		    t[i] == ',' || (unsigned char)t[i] < 0x20 ? ' ' : t[i];
	r->tags[len + n] = '\0';
}

static void
rec_init(struct pctx *c, struct intel_rec *r)
{
	r->verdict = c->o->verdict;
	r->score = -1;
	r->expires = c->o->expires;
	r->tags[0] = '\0';
	r->reference[0] = '\0';
	r->first_seen = r->last_seen = 0;
	if (c->o->tags[0])
		add_tag(r, c->o->tags, strlen(c->o->tags));
}

/* Normalises and hands one entry over; 0, or -1 when the sink stopped. */
static int
emit(struct pctx *c, struct intel_rec *r, enum intel_kind k, const char *v,
     size_t n, const char *where)
{
	char why[160];

	if (intel_parse(k, v, n, &r->ind, why, sizeof(why)) == -1) {
		note(c, 0, where, v, n, why);
		return 0;
	}
	if (r->score < 0)
		r->score = default_score(c->o, r->verdict);
	intel_utf8_clean(r->tags);
	intel_utf8_clean(r->reference);
	if ((c->deleting ? c->s->del : c->s->add)(c->s->arg, r) == -1) {
		c->stopped = 1;
		return -1;
	}
	return 0;
}

/* ---- plain lists ---------------------------------------------------- */

static int
parse_list(struct pctx *c, const uint8_t *p, size_t n, struct buf *err)
{
	size_t off = 0, line = 0;
	char where[32];
	struct intel_rec r;

	(void)err;
	while (off < n) {
		const char *s = (const char *)p + off;
		const uint8_t *nl = memchr(p + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (p + off)) : n - off;
		struct strv v;

		off += len + (nl ? 1 : 0);
		line++;
		v = strv_trim(strv_make(s, len));
		if (v.len == 0 || v.p[0] == '#' || v.p[0] == ';')
			continue;
		snprintf(where, sizeof(where), "line %zu", line);
		rec_init(c, &r);
		if (emit(c, &r, INTEL_ANY, v.p, v.len, where) == -1)
			return -1;
	}
	return 0;
}

/* ---- CSV (RFC 4180) --------------------------------------------------- */

#define CSV_MAXF 32

struct csvrow {
	struct buf f[CSV_MAXF]; /* the fields, unquoted */
	int n;                  /* fields in the row (may exceed CSV_MAXF) */
	int unterminated;       /* a quoted field ran to the end */
	size_t line;            /* where the record starts */
};

/* Reads one record from p[*off..n); returns 0, or 1 at the end. */
static int
csv_row(const uint8_t *p, size_t n, size_t *off, struct csvrow *row,
        size_t *line)
{
	size_t i = *off;
	int q = 0, k;

	if (i >= n)
		return 1;
	for (k = 0; k < CSV_MAXF; k++)
		buf_reset(&row->f[k]);
	row->n = 1;
	row->unterminated = 0;
	k = 0;
	(*line)++;
	row->line = *line;
	while (i < n) {
		uint8_t ch = p[i];

		if (q) {
			if (ch == '"' && i + 1 < n && p[i + 1] == '"') {
				if (k < CSV_MAXF)
					buf_putc(&row->f[k], '"');
				i += 2;
				continue;
			}
			if (ch == '"') {
				q = 0;
				i++;
				continue;
			}
			if (ch == '\n')
				(*line)++;
			if (k < CSV_MAXF)
				buf_putc(&row->f[k], ch);
			i++;
			continue;
		}
		if (ch == '"') {
			q = 1;
			i++;
			continue;
		}
		if (ch == ',') {
			k++;
			row->n++;
			i++;
			continue;
		}
		if (ch == '\n') {
			i++;
			break;
		}
		if (ch == '\r' && (i + 1 == n || p[i + 1] == '\n')) {
			i++;
			continue;
		}
		if (k < CSV_MAXF)
			buf_putc(&row->f[k], ch);
		i++;
	}
	if (q)
		row->unterminated = 1;
	*off = i;
	return 0;
}

enum {
	COL_IND,
	COL_TYPE,
	COL_VERDICT,
	COL_SCORE,
	COL_TAGS,
	COL_FIRST,
	COL_LAST,
	COL_EXPIRES,
	COL_REF,
	COL_N
};

static const char *const col_names[COL_N] = {
    "indicator",  "type",      "verdict", "score",    "tags",
    "first_seen", "last_seen", "expires", "reference"};

static int
csv_empty_row(const struct csvrow *row)
{
	return row->n == 1 && row->f[0].len == 0;
}

static int
parse_csv(struct pctx *c, const uint8_t *p, size_t n, struct buf *err)
{
	struct csvrow row;
	int col[COL_N], k, rc = -1;
	size_t off = 0, line = 0;
	char where[48], why[200];
	struct intel_rec r;

	for (k = 0; k < CSV_MAXF; k++)
		buf_init(&row.f[k], 65536);
	for (k = 0; k < COL_N; k++)
		col[k] = -1;
	/* UTF-8 byte order mark */
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		off = 3;
	do {
		if (csv_row(p, n, &off, &row, &line) == 1) {
			buf_printf(err, "csv: no header line");
			goto out;
		}
	} while (csv_empty_row(&row));
	if (row.n > CSV_MAXF) {
		buf_printf(err, "csv: line %zu: more than %d columns", line,
		           CSV_MAXF);
		goto out;
	}
	for (k = 0; k < row.n; k++) {
		struct strv h =
		    strv_trim(strv_make(buf_cstr(&row.f[k]), row.f[k].len));
		int j;

		if (strv_casceq(h, "value") || strv_casceq(h, "ioc"))
			h = strv_cstr("indicator");
		for (j = 0; j < COL_N; j++)
			if (strv_casceq(h, col_names[j])) {
				if (col[j] != -1) {
					buf_printf(err,
					           "csv: line %zu: column %s "
					           "twice",
					           line, col_names[j]);
					goto out;
				}
				col[j] = k;
				break;
			}
		if (j == COL_N) {
			snprintf(where, sizeof(where), "line %zu column %d",
			         line, k + 1);
			note(c, 1, where, h.p, h.len,
			     "unknown column, ignored");
		}
	}
	if (col[COL_IND] == -1) {
		buf_printf(err,
		           "csv: line %zu: the header names no indicator "
		           "column (indicator, value or ioc)",
		           line);
		goto out;
	}
	while (csv_row(p, n, &off, &row, &line) == 0) {
		const char *v;
		enum intel_kind kind = INTEL_ANY;
		long long t;

		if (csv_empty_row(&row))
			continue;
		snprintf(where, sizeof(where), "line %zu", row.line);
		if (row.unterminated) {
			note(c, 0, where, NULL, 0,
			     "unterminated quoted field (truncated file?)");
			continue;
		}
		if (row.n != 0 && row.n > CSV_MAXF) {
			note(c, 0, where, NULL, 0, "too many fields");
			continue;
		}
		v = buf_cstr(&row.f[col[COL_IND]]);
		if (col[COL_IND] >= row.n) {
			snprintf(why, sizeof(why),
			         "%d fields, the header names the indicator "
			         "in column %d",
			         row.n, col[COL_IND] + 1);
			note(c, 0, where, NULL, 0, why);
			continue;
		}
		rec_init(c, &r);
#define FIELD(i) (col[i] >= 0 && col[i] < row.n && row.f[col[i]].len > 0)
#define FSTR(i)  buf_cstr(&row.f[col[i]])
#define FLEN(i)  row.f[col[i]].len
		if (FIELD(COL_TYPE) &&
		    (kind = intel_kind_parse(FSTR(COL_TYPE))) == INTEL_NKINDS) {
			note(c, 0, where, FSTR(COL_TYPE), FLEN(COL_TYPE),
			     "type: unknown indicator type");
			continue;
		}
		if (FIELD(COL_VERDICT) &&
		    (r.verdict = intel_verdict_parse(FSTR(COL_VERDICT),
		                                     FLEN(COL_VERDICT))) < 0) {
			note(c, 0, where, FSTR(COL_VERDICT), FLEN(COL_VERDICT),
			     "verdict: not malicious, suspicious or benign");
			continue;
		}
		if (FIELD(COL_SCORE)) {
			if (strv_to_ll(strv_trim(strv_make(FSTR(COL_SCORE),
			                                   FLEN(COL_SCORE))),
			               0, 100, &t) == -1) {
				note(c, 0, where, FSTR(COL_SCORE),
				     FLEN(COL_SCORE),
				     "score: not a number 0..100");
				continue;
			}
			r.score = (int)t;
		}
		if (FIELD(COL_TAGS)) {
			const char *s = FSTR(COL_TAGS), *e = s + FLEN(COL_TAGS);

			while (s < e) {
				const char *q = s;

				while (q < e && *q != ';' && *q != '|' &&
				       *q != ',')
					q++;
				add_tag(&r, s, (size_t)(q - s));
				s = q + 1;
			}
		}
		{
			static const int tc[3] = {COL_FIRST, COL_LAST,
			                          COL_EXPIRES};
			long long *dst[3] = {&r.first_seen, &r.last_seen,
			                     &r.expires};
			int i, bad = 0;

			for (i = 0; i < 3 && !bad; i++) {
				if (!FIELD(tc[i]))
					continue;
				if (intel_time_parse(FSTR(tc[i]), FLEN(tc[i]),
				                     dst[i]) == -1) {
					snprintf(why, sizeof(why),
					         "%s: not a time (unix seconds "
					         "or ISO 8601)",
					         col_names[tc[i]]);
					note(c, 0, where, FSTR(tc[i]),
					     FLEN(tc[i]), why);
					bad = 1;
				}
			}
			if (bad)
				continue;
		}
		if (FIELD(COL_REF))
			snprintf(r.reference, sizeof(r.reference), "%s",
			         FSTR(COL_REF));
		if (emit(c, &r, kind, v, row.f[col[COL_IND]].len, where) == -1)
			goto out;
#undef FIELD
#undef FSTR
#undef FLEN
	}
	rc = 0;
out:
	for (k = 0; k < CSV_MAXF; k++)
		buf_free(&row.f[k]);
	return rc;
}

/* ---- JSON helpers ----------------------------------------------------- */

static json_t *
load_json(const uint8_t *p, size_t n, const char *fmt, struct buf *err)
{
	json_error_t je;
	json_t *j;

	j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		buf_printf(err, "%s: not valid JSON at line %d column %d: %s",
		           fmt, je.line, je.column, je.text);
	return j;
}

/* Tags of a MISP "Tag" array (objects with "name") into r. */
static void
misp_tags(struct intel_rec *r, json_t *tags)
{
	size_t i;
	json_t *t;

	if (!json_is_array(tags))
		return;
	json_array_foreach(tags, i, t)
	{
		json_t *nm = json_object_get(t, "name");

		if (json_is_string(nm))
			add_tag(r, json_string_value(nm),
			        json_string_length(nm));
	}
}

/* MISP attribute types inteld holds, and which part of a composite
 * ("filename|sha256", "domain|ip") each part is. */
static int
misp_type(const char *t, enum intel_kind k[2])
{
	static const struct {
		const char *t;
		enum intel_kind a, b;
	} m[] = {
	    {"md5", INTEL_MD5, INTEL_NKINDS},
	    {"sha1", INTEL_SHA1, INTEL_NKINDS},
	    {"sha256", INTEL_SHA256, INTEL_NKINDS},
	    {"filename|md5", INTEL_NKINDS, INTEL_MD5},
	    {"filename|sha1", INTEL_NKINDS, INTEL_SHA1},
	    {"filename|sha256", INTEL_NKINDS, INTEL_SHA256},
	    {"ip-src", INTEL_IP, INTEL_NKINDS},
	    {"ip-dst", INTEL_IP, INTEL_NKINDS},
	    {"ip-src|port", INTEL_IP, INTEL_NKINDS},
	    {"ip-dst|port", INTEL_IP, INTEL_NKINDS},
	    {"domain", INTEL_DOMAIN, INTEL_NKINDS},
	    {"hostname", INTEL_DOMAIN, INTEL_NKINDS},
	    {"domain|ip", INTEL_DOMAIN, INTEL_IP},
	    {"hostname|port", INTEL_DOMAIN, INTEL_NKINDS},
	    {"url", INTEL_URL, INTEL_NKINDS},
	    {"uri", INTEL_URL, INTEL_NKINDS},
	};
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(t, m[i].t) == 0) {
			k[0] = m[i].a;
			k[1] = m[i].b;
			return 0;
		}
	return -1;
}

static int
misp_time(json_t *v, long long *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v))
		return intel_time_parse(json_string_value(v),
		                        json_string_length(v), out);
	return -1;
}

static int
misp_attr(struct pctx *c, json_t *ev, const char *evid, json_t *a, size_t idx,
          const char *objname)
{
	json_t *type = json_object_get(a, "type"),
	       *val = json_object_get(a, "value"),
	       *ids = json_object_get(a, "to_ids"),
	       *uuid = json_object_get(a, "uuid"), *tl;
	char where[200], why[160];
	enum intel_kind k[2];
	struct intel_rec r;
	const char *v, *bar;
	size_t vn;
	long long t;
	int part, score = 75;

	if (json_is_string(uuid))
		snprintf(where, sizeof(where), "event %s %sattribute %s", evid,
		         objname, json_string_value(uuid));
	else
		snprintf(where, sizeof(where), "event %s %sattribute %zu", evid,
		         objname, idx);
	if (!json_is_object(a)) {
		note(c, 0, where, NULL, 0, "not an object");
		return 0;
	}
	if (!json_is_string(type)) {
		note(c, 0, where, NULL, 0, "type: not a string");
		return 0;
	}
	if (!json_is_string(val)) {
		note(c, 0, where, NULL, 0, "value: not a string");
		return 0;
	}
	v = json_string_value(val);
	vn = json_string_length(val);
	if (ids != NULL && !json_is_boolean(ids)) {
		note(c, 0, where, v, vn, "to_ids: not true or false");
		return 0;
	}
	if (misp_type(json_string_value(type), k) == -1) {
		snprintf(why, sizeof(why), "attribute type %s not held",
		         json_string_value(type));
		note(c, 1, where, v, vn, why);
		return 0;
	}
	if (!json_is_true(ids)) {
		note(c, 1, where, v, vn, "to_ids is false");
		return 0;
	}
	tl = json_object_get(ev, "threat_level_id");
	if (json_is_string(tl) || json_is_integer(tl)) {
		long long lv = json_is_integer(tl) ? json_integer_value(tl) : 0;

		if (json_is_string(tl))
			(void)str_to_ll(json_string_value(tl), 1, 4, &lv);
		score = lv == 1 ? 100 : lv == 2 ? 75 : lv == 3 ? 50 : 75;
	}
	bar = memchr(v, '|', vn);
	if (strchr(json_string_value(type), '|') != NULL && bar == NULL) {
		note(c, 0, where, v, vn, "value: a composite type without '|'");
		return 0;
	}
	if (strchr(json_string_value(type), '|') == NULL)
		bar = NULL;
	for (part = 0; part < 2; part++) {
		const char *pv = v;
		size_t pn = vn;

		if (k[part] == INTEL_NKINDS)
			continue;
		if (bar != NULL && part == 0)
			pn = (size_t)(bar - v);
		else if (bar != NULL) {
			pv = bar + 1;
			pn = vn - (size_t)(bar - v) - 1;
		}
		rec_init(c, &r);
		r.verdict = INTEL_MALICIOUS;
		r.score = score;
		misp_tags(&r, json_object_get(ev, "Tag"));
		misp_tags(&r, json_object_get(a, "Tag"));
		if (json_is_string(json_object_get(a, "category")))
			add_tag(
			    &r,
			    json_string_value(json_object_get(a, "category")),
			    strlen(json_string_value(
			        json_object_get(a, "category"))));
		if (misp_time(json_object_get(a, "timestamp"), &t) == 0)
			r.first_seen = r.last_seen = t;
		if (misp_time(json_object_get(a, "first_seen"), &t) == 0)
			r.first_seen = t;
		if (misp_time(json_object_get(a, "last_seen"), &t) == 0)
			r.last_seen = t;
		snprintf(r.reference, sizeof(r.reference), "misp:event/%s%s%s",
		         evid, json_is_string(uuid) ? "/attribute/" : "",
		         json_is_string(uuid) ? json_string_value(uuid) : "");
		if (emit(c, &r, k[part], pv, pn, where) == -1)
			return -1;
	}
	return 0;
}

static int
misp_event(struct pctx *c, json_t *file, const char *name)
{
	json_t *ev = json_object_get(file, "Event"), *attrs, *objs, *a, *o;
	char evid[80];
	size_t i, j;

	if (!json_is_object(ev)) {
		note(c, 0, name, NULL, 0, "no \"Event\" object");
		return 0;
	}
	if (json_is_string(json_object_get(ev, "uuid")))
		snprintf(evid, sizeof(evid), "%s",
		         json_string_value(json_object_get(ev, "uuid")));
	else
		snprintf(evid, sizeof(evid), "%s", name);
	attrs = json_object_get(ev, "Attribute");
	if (attrs != NULL && !json_is_array(attrs)) {
		note(c, 0, evid, NULL, 0, "Attribute: not an array");
		return 0;
	}
	json_array_foreach(attrs, i, a)
	{
		if (misp_attr(c, ev, evid, a, i, "") == -1)
			return -1;
	}
	objs = json_object_get(ev, "Object");
	json_array_foreach(objs, j, o)
	{
		char on[80];

		snprintf(on, sizeof(on), "object %zu ", j);
		json_array_foreach(json_object_get(o, "Attribute"), i, a)
		{
			if (misp_attr(c, ev, evid, a, i, on) == -1)
				return -1;
		}
	}
	return 0;
}

/* The manifest's "timestamp" of an event: unix seconds as a string or
 * a number; 0 when absent or not one. */
static long long
manifest_time(json_t *ev)
{
	json_t *t = json_object_get(ev, "timestamp");
	long long x = 0;

	if (json_is_integer(t))
		x = json_integer_value(t);
	else if (json_is_string(t) &&
	         intel_time_parse(json_string_value(t), json_string_length(t),
	                          &x) == -1)
		x = 0;
	return x;
}

static int
parse_misp(struct pctx *c, const uint8_t *p, size_t n, struct buf *err)
{
	json_t *root, *man, *v, *passed;
	const char *k;
	int rc = -1;

	if ((root = load_json(p, n, "misp", err)) == NULL)
		return -1;
	passed = json_object(); /* events the sink passed over */
	if (!json_is_object(root)) {
		buf_printf(err, "misp: not a JSON object");
		goto out;
	}
	if (json_object_get(root, "Event") != NULL) {
		rc = misp_event(c, root, "event");
		goto out;
	}
	man = json_object_get(root, "manifest.json");
	if (!json_is_object(man)) {
		buf_printf(err, "misp: neither an event ({\"Event\": ...}) nor "
		                "a feed ({\"manifest.json\": ..., "
		                "\"<uuid>.json\": ...})");
		goto out;
	}
	/* Every event the manifest lists must be there: a feed copied in
	 * part is refused whole. */
	json_object_foreach(man, k, v)
	{
		char fn[300];

		if (c->s->event != NULL &&
		    c->s->event(c->s->arg, k, manifest_time(v)) == 1) {
			json_object_set_new(passed, k, json_true());
			continue;
		}
		snprintf(fn, sizeof(fn), "%s.json", k);
		if (!json_is_object(json_object_get(root, fn))) {
			buf_printf(err,
			           "misp: the manifest lists event %s but %s "
			           "is missing or not an object",
			           k, fn);
			goto out;
		}
	}
	json_object_foreach(root, k, v)
	{
		char id[300];
		size_t kl = strlen(k);

		if (strcmp(k, "manifest.json") == 0)
			continue;
		if (kl < 6 || strcmp(k + kl - 5, ".json") != 0 ||
		    kl - 5 >= sizeof(id)) {
			note(c, 1, k, NULL, 0, "not an event file (*.json)");
			continue;
		}
		memcpy(id, k, kl - 5);
		id[kl - 5] = '\0';
		if (json_object_get(man, id) == NULL) {
			note(c, 1, k, NULL, 0, "not in the manifest");
			continue;
		}
		if (json_object_get(passed, id) != NULL)
			continue; /* unchanged since the last import */
		if (misp_event(c, v, k) == -1)
			goto out;
	}
	rc = 0;
out:
	json_decref(passed);
	json_decref(root);
	return rc;
}

/* ---- STIX 2.1 ------------------------------------------------------- */

struct stix_cmp {
	enum intel_kind kind;
	char value[INTEL_TEXT_MAX + 1];
};

static void
skip_ws(const char **s, const char *e)
{
	while (*s < e && isspace((unsigned char)**s))
		(*s)++;
}

static int
word(const char **s, const char *e, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(e - *s) >= n && strncmp(*s, w, n) == 0 &&
	    ((size_t)(e - *s) == n || !isalnum((unsigned char)(*s)[n]))) {
		*s += n;
		return 1;
	}
	return 0;
}

/*
 * Parses a STIX pattern made of comparisons "<object path> = '<value>'"
 * joined by OR, inside and between observation expressions: each is an
 * indicator by itself. Anything else (AND, other operators or objects,
 * qualifiers) is not a set of indicators inteld can hold: -1 with why.
 */
static int
stix_pattern(const char *s, size_t n, struct stix_cmp *out, int max, int *nout,
             char *why, size_t whyn)
{
	static const struct {
		const char *path;
		enum intel_kind k;
	} paths[] = {
	    {"file:hashes.'SHA-256'", INTEL_SHA256},
	    {"file:hashes.'SHA256'", INTEL_SHA256},
	    {"file:hashes.SHA256", INTEL_SHA256},
	    {"file:hashes.'SHA-1'", INTEL_SHA1},
	    {"file:hashes.'SHA1'", INTEL_SHA1},
	    {"file:hashes.SHA1", INTEL_SHA1},
	    {"file:hashes.'MD5'", INTEL_MD5},
	    {"file:hashes.MD5", INTEL_MD5},
	    {"ipv4-addr:value", INTEL_IP},
	    {"ipv6-addr:value", INTEL_IP},
	    {"domain-name:value", INTEL_DOMAIN},
	    {"url:value", INTEL_URL},
	};
	const char *e = s + n;
	int depth = 0, expect_cmp = 1;

	*nout = 0;
	for (;;) {
		skip_ws(&s, e);
		if (s == e)
			break;
		if (expect_cmp) {
			size_t i, k;

			if (*s == '[') {
				if (depth) {
					snprintf(why, whyn, "nested '['");
					return -1;
				}
				depth++;
				s++;
				continue;
			}
			if (!depth) {
				snprintf(why, whyn, "expected '['");
				return -1;
			}
			for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
				if ((size_t)(e - s) >= strlen(paths[i].path) &&
				    strncmp(s, paths[i].path,
				            strlen(paths[i].path)) == 0)
					break;
			if (i == sizeof(paths) / sizeof(paths[0])) {
				const char *q = s;

				while (q < e && !isspace((unsigned char)*q) &&
				       *q != '=' && *q != '!' && *q != ']')
					q++;
				snprintf(why, whyn,
				         "object path %.*s is not a file hash, "
				         "address, domain or URL",
				         (int)(q - s > 80 ? 80 : q - s), s);
				return -1;
			}
			s += strlen(paths[i].path);
			skip_ws(&s, e);
			if (s == e || *s != '=') {
				snprintf(why, whyn,
				         "only '=' comparisons are held");
				return -1;
			}
			s++;
			skip_ws(&s, e);
			if (s == e || *s != '\'') {
				snprintf(why, whyn, "expected a quoted string");
				return -1;
			}
			s++;
			if (*nout >= max) {
				snprintf(why, whyn, "more than %d comparisons",
				         max);
				return -1;
			}
			k = 0;
			while (s < e && *s != '\'') {
				if (*s == '\\' && s + 1 < e)
					s++;
				if (k >= INTEL_TEXT_MAX) {
					snprintf(why, whyn, "value too long");
					return -1;
				}
				out[*nout].value[k++] = *s++;
			}
			if (s == e) {
				snprintf(why, whyn, "unterminated string");
				return -1;
			}
			s++;
			out[*nout].value[k] = '\0';
			out[*nout].kind = paths[i].k;
			(*nout)++;
			expect_cmp = 0;
			continue;
		}
		if (*s == ']' && depth) {
			depth--;
			s++;
			continue;
		}
		if (word(&s, e, "OR")) {
			expect_cmp = 1;
			continue;
		}
		if (word(&s, e, "AND") || word(&s, e, "FOLLOWEDBY")) {
			snprintf(why, whyn,
			         "AND / FOLLOWEDBY: a combination, not single "
			         "indicators");
			return -1;
		}
		snprintf(why, whyn,
		         "qualifier or operator not held near '%.20s'", s);
		return -1;
	}
	if (depth || expect_cmp || *nout == 0) {
		snprintf(why, whyn, "incomplete pattern");
		return -1;
	}
	return 0;
}

#define STIX_MAXCMP 64

static int
stix_indicator(struct pctx *c, json_t *o, size_t idx, struct stix_cmp *cmp)
{
	json_t *id = json_object_get(o, "id"),
	       *pat = json_object_get(o, "pattern"),
	       *pt = json_object_get(o, "pattern_type"), *v;
	char where[200], why[200];
	struct intel_rec r;
	long long t;
	int n, i;
	size_t j;

	snprintf(where, sizeof(where), "objects[%zu]%s%s%s", idx,
	         json_is_string(id) ? " (" : "",
	         json_is_string(id) ? json_string_value(id) : "",
	         json_is_string(id) ? ")" : "");
	if (!json_is_string(pat)) {
		note(c, 0, where, NULL, 0, "pattern: not a string");
		return 0;
	}
	if (pt != NULL && (!json_is_string(pt))) {
		note(c, 0, where, NULL, 0, "pattern_type: not a string");
		return 0;
	}
	if (pt != NULL && strcmp(json_string_value(pt), "stix") != 0) {
		snprintf(why, sizeof(why), "pattern_type %s not held",
		         json_string_value(pt));
		note(c, 1, where, json_string_value(pat),
		     json_string_length(pat), why);
		return 0;
	}
	if (json_is_true(json_object_get(o, "revoked")) && c->s->del == NULL) {
		note(c, 1, where, NULL, 0, "revoked");
		return 0;
	}
	rec_init(c, &r);
	r.verdict = INTEL_MALICIOUS;
	v = json_object_get(o, "indicator_types");
	if (v != NULL && !json_is_array(v)) {
		note(c, 0, where, NULL, 0, "indicator_types: not an array");
		return 0;
	}
	json_array_foreach(v, j, pt)
	{
		if (!json_is_string(pt))
			continue;
		if (strcmp(json_string_value(pt), "benign") == 0)
			r.verdict = INTEL_BENIGN;
		else if (strcmp(json_string_value(pt), "anomalous-activity") ==
		             0 &&
		         r.verdict == INTEL_MALICIOUS)
			r.verdict = INTEL_SUSPICIOUS;
		add_tag(&r, json_string_value(pt), json_string_length(pt));
	}
	json_array_foreach(json_object_get(o, "labels"), j, pt)
	{
		if (json_is_string(pt))
			add_tag(&r, json_string_value(pt),
			        json_string_length(pt));
	}
	v = json_object_get(o, "confidence");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 100) {
			note(c, 0, where, NULL, 0,
			     "confidence: not an integer 0..100");
			return 0;
		}
		r.score = (int)json_integer_value(v);
	}
	{
		static const char *const f[3] = {"valid_from", "modified",
		                                 "valid_until"};
		long long *dst[3] = {&r.first_seen, &r.last_seen, &r.expires};

		for (i = 0; i < 3; i++) {
			v = json_object_get(o, f[i]);
			if (v == NULL)
				continue;
			if (!json_is_string(v) ||
			    intel_time_parse(json_string_value(v),
			                     json_string_length(v), &t) == -1) {
				snprintf(why, sizeof(why),
				         "%s: not a timestamp", f[i]);
				note(c, 0, where, NULL, 0, why);
				return 0;
			}
			*dst[i] = t;
		}
	}
	if (json_is_string(id))
		snprintf(r.reference, sizeof(r.reference), "stix:%s",
		         json_string_value(id));
	if (stix_pattern(json_string_value(pat), json_string_length(pat), cmp,
	                 STIX_MAXCMP, &n, why, sizeof(why)) == -1) {
		char w[260];

		snprintf(w, sizeof(w), "pattern not held: %s", why);
		note(c, 1, where, json_string_value(pat),
		     json_string_length(pat), w);
		return 0;
	}
	c->deleting = json_is_true(json_object_get(o, "revoked"));
	for (i = 0; i < n; i++) {
		struct intel_rec ri = r;

		if (emit(c, &ri, cmp[i].kind, cmp[i].value,
		         strlen(cmp[i].value), where) == -1) {
			c->deleting = 0;
			return -1;
		}
	}
	c->deleting = 0;
	return 0;
}

static int
parse_stix(struct pctx *c, const uint8_t *p, size_t n, struct buf *err)
{
	json_t *root, *objs, *o;
	struct stix_cmp *cmp;
	size_t i;
	int rc = -1;

	if ((root = load_json(p, n, "stix", err)) == NULL)
		return -1;
	objs = json_object_get(root, "objects");
	if (!json_is_object(root) ||
	    !json_is_string(json_object_get(root, "type")) ||
	    strcmp(json_string_value(json_object_get(root, "type")),
	           "bundle") != 0 ||
	    !json_is_array(objs)) {
		buf_printf(err, "stix: not a STIX 2.1 bundle (an object with "
		                "\"type\": \"bundle\" and an \"objects\" "
		                "array)");
		json_decref(root);
		return -1;
	}
	if ((cmp = calloc(STIX_MAXCMP, sizeof(*cmp))) == NULL) {
		buf_printf(err, "stix: out of memory");
		json_decref(root);
		return -1;
	}
	json_array_foreach(objs, i, o)
	{
		json_t *t = json_object_get(o, "type");

		if (!json_is_object(o) || !json_is_string(t)) {
			char where[40];

			snprintf(where, sizeof(where), "objects[%zu]", i);
			note(c, 0, where, NULL, 0,
			     "not an object with a string \"type\"");
			continue;
		}
		if (strcmp(json_string_value(t), "indicator") != 0)
			continue; /* identities, malware, relationships... */
		if (stix_indicator(c, o, i, cmp) == -1)
			goto out;
	}
	rc = 0;
out:
	free(cmp);
	json_decref(root);
	return rc;
}

int
intelfeed_parse(enum intel_format f, const uint8_t *p, size_t n,
                const struct intel_feedopts *o, const struct intel_sink *s,
                struct buf *err)
{
	struct pctx c = {o, s, 0};
	int rc;

	switch (f) {
	case INTEL_FMT_CSV:
		rc = parse_csv(&c, p, n, err);
		break;
	case INTEL_FMT_LIST:
		rc = parse_list(&c, p, n, err);
		break;
	case INTEL_FMT_MISP:
		rc = parse_misp(&c, p, n, err);
		break;
	case INTEL_FMT_STIX:
		rc = parse_stix(&c, p, n, err);
		break;
	default:
		buf_printf(err, "unknown format");
		return -1;
	}
	if (c.stopped) {
		buf_reset(err);
		buf_printf(err, "stopped");
		return -1;
	}
	return rc;
}
