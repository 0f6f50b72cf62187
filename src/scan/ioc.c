/*
 * ioc: parser of IOC files (docs/ioc-format.md), bytes in, entries out.
 *
 *   # comment
 *   TYPE;VALUE;SCORE;DESCRIPTION      TYPE: md5, sha1, sha256, filename
 *   HASH;SCORE;DESCRIPTION            THOR's hash IOC lines; the type
 *                                     follows from the length of HASH
 *
 * The files come from administrators, but the center checks them on
 * upload and the agent gets them over the network, so the parser treats
 * them as untrusted: bounded lines and fields, valid UTF-8 only (the
 * descriptions end up in JSON and syslog), and filename regexes whose
 * compiled size is bounded before regcomp sees them (nested repetitions
 * can make glibc's regcomp allocate gigabytes).
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ioc.h"

/* Rough upper bound on regcomp's automaton size, see pattern_cost(). */
#define PATTERN_BUDGET  20000
#define PATTERN_MAXREP  255
#define PATTERN_MAXNEST 32

struct perr {
	struct buf *err;
	const char *name;
	unsigned count;
};

static void perr_add(struct perr *e, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
perr_add(struct perr *e, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	e->count++;
	if (e->err == NULL || e->count > IOC_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)buf_printf(e->err, "%s:%u: %s\n", e->name, line, msg);
}

/* A quotable excerpt of a field: printable ASCII only, at most 32 bytes. */
static void
excerpt(struct strv v, char *out, size_t outsz)
{
	size_t i, n = v.len < 32 ? v.len : 32;

	if (n >= outsz)
		n = outsz - 1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v.p[i];
		out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[n] = '\0';
}

static int
utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp, min;

	while (i < n) {
		uint8_t c = p[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else
			return 0;
		if (n - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int
is_hex(struct strv v)
{
	size_t i;

	for (i = 0; i < v.len; i++)
		if (hex_value((unsigned char)v.p[i]) < 0)
			return 0;
	return 1;
}

static void
hex_decode(struct strv v, uint8_t *out)
{
	size_t i;

	for (i = 0; i + 1 < v.len; i += 2)
		out[i / 2] = (uint8_t)(hex_value((unsigned char)v.p[i]) << 4 |
		                       hex_value((unsigned char)v.p[i + 1]));
}

const char *
ioc_type_name(enum ioc_type t)
{
	switch (t) {
	case IOC_MD5:
		return "md5";
	case IOC_SHA1:
		return "sha1";
	case IOC_SHA256:
		return "sha256";
	case IOC_FILENAME:
		return "filename";
	}
	return "?";
}

size_t
ioc_digest_len(enum ioc_type t)
{
	switch (t) {
	case IOC_MD5:
		return 16;
	case IOC_SHA1:
		return 20;
	case IOC_SHA256:
		return 32;
	case IOC_FILENAME:
		break;
	}
	return 0;
}

static int
type_of_keyword(struct strv v, enum ioc_type *t)
{
	if (strv_casceq(v, "md5"))
		*t = IOC_MD5;
	else if (strv_casceq(v, "sha1"))
		*t = IOC_SHA1;
	else if (strv_casceq(v, "sha256"))
		*t = IOC_SHA256;
	else if (strv_casceq(v, "filename"))
		*t = IOC_FILENAME;
	else
		return -1;
	return 0;
}

static int
type_of_hexlen(size_t len, enum ioc_type *t)
{
	if (len == 32)
		*t = IOC_MD5;
	else if (len == 40)
		*t = IOC_SHA1;
	else if (len == 64)
		*t = IOC_SHA256;
	else
		return -1;
	return 0;
}

/* Saturating helpers: costs only grow, and anything past the budget is
 * refused, so saturation never changes an answer. */
static size_t
sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t
sat_mul(size_t a, size_t b)
{
	return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/*
 * Rough size of what regcomp builds for an ERE: an atom counts one, a
 * group the sum of its contents, and a repetition {n,m} copies what it
 * repeats max(n, m) times (glibc expands bounds into copies). Returns -1
 * with a reason when the pattern is over budget; syntax errors are left to
 * regcomp, which reports them better.
 */
static int
pattern_cost(const char *p, size_t len, const char **why)
{
	size_t stack[PATTERN_MAXNEST];
	size_t depth = 0, cur = 0, last = 0, i = 0;

	while (i < len) {
		char c = p[i];

		if (c == '(') {
			if (depth == PATTERN_MAXNEST) {
				*why = "groups nested too deeply";
				return -1;
			}
			stack[depth++] = cur;
			cur = last = 0;
			i++;
			continue;
		}
		if (c == ')' && depth > 0) {
			last = sat_add(cur, 1);
			cur = sat_add(stack[--depth], last);
			i++;
		} else if (c == '|') {
			last = 0;
			i++;
			continue;
		} else if (c == '{') {
			size_t j = i + 1, n = 0, m = 0, rep;
			int comma = 0, digits = 0, mdigits = 0;

			while (j < len && p[j] >= '0' && p[j] <= '9') {
				n = sat_add(sat_mul(n, 10),
				            (size_t)(p[j] - '0'));
				j++, digits++;
			}
			if (j < len && p[j] == ',') {
				comma = 1;
				j++;
				while (j < len && p[j] >= '0' && p[j] <= '9') {
					m = sat_add(sat_mul(m, 10),
					            (size_t)(p[j] - '0'));
					j++, mdigits++;
				}
			}
			if (digits == 0 || j >= len || p[j] != '}') {
				/* Not a bound: a literal brace (or an error
				 * regcomp will name). */
				last = 1;
				cur = sat_add(cur, 1);
				i++;
				continue;
			}
			rep = mdigits ? (m > n ? m : n) : comma ? n + 1 : n;
			if (n > PATTERN_MAXREP || m > PATTERN_MAXREP) {
				*why = "repetition count above 255";
				return -1;
			}
			if (rep == 0)
				rep = 1;
			cur = sat_add(cur, sat_mul(last, rep - 1));
			last = sat_mul(last, rep);
			i = j + 1;
		} else if (c == '*' || c == '+' || c == '?') {
			cur = sat_add(cur, last);
			last = sat_mul(last, 2);
			i++;
		} else if (c == '[') {
			size_t j = i + 1;

			if (j < len && p[j] == '^')
				j++;
			if (j < len && p[j] == ']')
				j++;
			while (j < len && p[j] != ']') {
				if (p[j] == '[' && j + 1 < len &&
				    (p[j + 1] == ':' || p[j + 1] == '.' ||
				     p[j + 1] == '=')) {
					char close = p[j + 1];

					j += 2;
					while (
					    j + 1 < len &&
					    !(p[j] == close && p[j + 1] == ']'))
						j++;
					j += 2;
				} else
					j++;
			}
			last = 1;
			cur = sat_add(cur, 1);
			i = j + 1;
		} else if (c == '\\') {
			last = 1;
			cur = sat_add(cur, 1);
			i += 2;
		} else {
			last = 1;
			cur = sat_add(cur, 1);
			i++;
		}
		if (cur > PATTERN_BUDGET || last > PATTERN_BUDGET) {
			*why = "pattern too complex (nested repetitions)";
			return -1;
		}
	}
	return 0;
}

static int
set_grow(struct ioc_set *s)
{
	struct ioc *v;
	size_t ncap;

	if (s->n < s->cap)
		return 0;
	ncap = s->cap ? s->cap * 2 : 64;
	if (ncap > SIZE_MAX / sizeof(*v))
		return -1;
	v = realloc(s->v, ncap * sizeof(*v));
	if (v == NULL)
		return -1;
	s->v = v;
	s->cap = ncap;
	return 0;
}

static void
ioc_clear(struct ioc *e)
{
	if (e->re != NULL) {
		regfree(e->re);
		free(e->re);
	}
	free(e->pattern);
	free(e->desc);
	memset(e, 0, sizeof(*e));
}

/*
 * The value field of a 4-field line: up to the first ';' that is not
 * escaped as "\;" (which stands for a literal ';'); other backslash pairs
 * are kept as they are, so "\\;" is an escaped backslash and a separator.
 * Returns the unescaped value (malloc'd) and advances *rest past the
 * separator; NULL with *rest unchanged when there is no separator.
 */
static char *
take_value(struct strv *rest, int *nomem)
{
	struct strv r = *rest;
	size_t i, o = 0;
	char *v;

	*nomem = 0;
	for (i = 0; i < r.len; i++) {
		if (r.p[i] == '\\' && i + 1 < r.len)
			i++;
		else if (r.p[i] == ';')
			break;
	}
	if (i >= r.len)
		return NULL;
	if ((v = malloc(i + 1)) == NULL) {
		*nomem = 1;
		return NULL;
	}
	for (size_t k = 0; k < i; k++) {
		if (r.p[k] == '\\' && k + 1 < i && r.p[k + 1] == ';') {
			v[o++] = ';';
			k++;
		} else if (r.p[k] == '\\' && k + 1 < i) {
			v[o++] = r.p[k++];
			v[o++] = r.p[k];
		} else
			v[o++] = r.p[k];
	}
	v[o] = '\0';
	rest->p = r.p + i + 1;
	rest->len = r.len - i - 1;
	return v;
}

/* Trims ASCII whitespace from a NUL-terminated string in place. */
static void
trim_inplace(char *s)
{
	struct strv t = strv_trim(strv_cstr(s));

	memmove(s, t.p, t.len);
	s[t.len] = '\0';
}

/* One non-comment line; 0, or -1 after reporting; -2 out of memory. */
static int
parse_line(struct strv line, unsigned lineno, struct perr *e, struct ioc *out)
{
	struct strv rest = line, first, scorev, descv;
	enum ioc_type t;
	long long score;
	char ex[40], *value = NULL;
	int nomem;

	memset(out, 0, sizeof(*out));
	out->line = lineno;
	first = strv_trim(strv_split(&rest, ';'));
	if (type_of_keyword(first, &t) == 0) {
		value = take_value(&rest, &nomem);
		if (nomem)
			return -2;
		if (value == NULL) {
			perr_add(e, lineno, "%s: missing score",
			         ioc_type_name(t));
			return -1;
		}
		trim_inplace(value);
	} else if (is_hex(first) && type_of_hexlen(first.len, &t) == 0) {
		if ((value = strv_dup(first)) == NULL)
			return -2;
	} else if (first.len > 0 && is_hex(first)) {
		perr_add(e, lineno,
		         "hash of %zu hex digits (expected 32, 40 or 64)",
		         first.len);
		return -1;
	} else {
		excerpt(first, ex, sizeof(ex));
		perr_add(e, lineno,
		         "unknown IOC type '%s' (expected md5, sha1, sha256, "
		         "filename or a bare hash)",
		         ex);
		return -1;
	}
	out->type = t;

	/* score, then the description (the rest of the line, ';' and all) */
	descv = rest;
	scorev = strv_trim(strv_split(&descv, ';'));
	if (scorev.len == 0) {
		perr_add(e, lineno, "missing score");
		goto fail;
	}
	if (strv_to_ll(scorev, IOC_SCORE_MIN, IOC_SCORE_MAX, &score) == -1) {
		excerpt(scorev, ex, sizeof(ex));
		perr_add(e, lineno, "score '%s' is not an integer in %d..%d",
		         ex, IOC_SCORE_MIN, IOC_SCORE_MAX);
		goto fail;
	}
	out->score = (int)score;
	descv = strv_trim(descv);
	if (descv.len > IOC_MAX_DESC) {
		perr_add(e, lineno, "description longer than %d bytes",
		         IOC_MAX_DESC);
		goto fail;
	}

	if (t == IOC_FILENAME) {
		const char *why;
		size_t vlen = strlen(value);
		int rc;

		if (vlen == 0) {
			perr_add(e, lineno, "filename: empty pattern");
			goto fail;
		}
		if (vlen > IOC_MAX_PATTERN) {
			perr_add(e, lineno,
			         "filename: pattern longer than %d bytes",
			         IOC_MAX_PATTERN);
			goto fail;
		}
		if (pattern_cost(value, vlen, &why) == -1) {
			perr_add(e, lineno, "filename: %s", why);
			goto fail;
		}
		if ((out->re = calloc(1, sizeof(*out->re))) == NULL)
			goto nomem;
		rc = regcomp(out->re, value, REG_EXTENDED | REG_ICASE);
		if (rc != 0) {
			char rmsg[128];

			regerror(rc, out->re, rmsg, sizeof(rmsg));
			free(out->re);
			out->re = NULL;
			perr_add(e, lineno, "filename: bad regex: %s", rmsg);
			goto fail;
		}
		out->pattern = value;
		value = NULL;
	} else {
		size_t want = 2 * ioc_digest_len(t);
		struct strv hv = strv_cstr(value);

		if (hv.len != want || !is_hex(hv)) {
			perr_add(e, lineno, "%s: expected %zu hex digits",
			         ioc_type_name(t), want);
			goto fail;
		}
		hex_decode(hv, out->digest);
	}
	free(value);
	value = NULL;
	if ((out->desc = strv_dup(descv)) == NULL)
		goto nomem;
	return 0;
fail:
	free(value);
	ioc_clear(out);
	return -1;
nomem:
	free(value);
	ioc_clear(out);
	return -2;
}

void
ioc_set_init(struct ioc_set *s)
{
	s->v = NULL;
	s->n = s->cap = 0;
}

void
ioc_set_free(struct ioc_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		ioc_clear(&s->v[i]);
	free(s->v);
	ioc_set_init(s);
}

int
ioc_parse(const uint8_t *p, size_t len, const char *name, struct ioc_set *s,
          struct buf *err)
{
	struct perr e = {err, name != NULL ? name : "iocs", 0};
	size_t n0 = s->n, pos = 0;
	unsigned lineno = 0;
	int nomem = 0;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const uint8_t *nl = memchr(p + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - p) : len, i;
		struct strv line = strv_make((const char *)p + pos, end - pos);
		int bad = 0, rc;

		pos = nl != NULL ? end + 1 : len;
		lineno++;
		if (lineno == 0) { /* 4 billion lines: refuse, do not wrap */
			perr_add(&e, UINT32_MAX, "too many lines");
			break;
		}
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		if (line.len > IOC_MAX_LINE) {
			perr_add(&e, lineno, "line longer than %d bytes",
			         IOC_MAX_LINE);
			continue;
		}
		for (i = 0; i < line.len && !bad; i++) {
			unsigned char ch = (unsigned char)line.p[i];

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
				perr_add(&e, lineno, "control character 0x%02x",
				         ch);
				bad = 1;
			}
		}
		if (bad)
			continue;
		if (!utf8_valid((const uint8_t *)line.p, line.len)) {
			perr_add(&e, lineno, "invalid UTF-8");
			continue;
		}
		line = strv_trim(line);
		if (line.len == 0 || line.p[0] == '#')
			continue;
		if (set_grow(s) == -1) {
			nomem = 1;
			break;
		}
		rc = parse_line(line, lineno, &e, &s->v[s->n]);
		if (rc == -2) {
			nomem = 1;
			break;
		}
		if (rc == 0)
			s->n++;
	}
	if (nomem) {
		e.count++;
		if (err != NULL)
			(void)buf_printf(err, "%s: out of memory\n", e.name);
	} else if (e.count > IOC_MAX_ERRORS && err != NULL)
		(void)buf_printf(err, "%s: %u more errors\n", e.name,
		                 e.count - IOC_MAX_ERRORS);
	if (e.count == 0)
		return 0;
	while (s->n > n0)
		ioc_clear(&s->v[--s->n]);
	return -1;
}
