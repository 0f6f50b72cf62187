/*
 * buf: growable byte buffers with a hard cap, string views and the checked
 * number parsers everything else uses instead of atoi/strtol.
 *
 * A buffer's cap (max) bounds what a peer can make us allocate: an append
 * that would pass it fails with ENOBUFS and leaves the contents as they
 * were, and the failure sticks: every later append fails as well until
 * buf_reset (the same contract as curl's dynbuf), so a builder can append
 * unchecked and test once, with buf_ok or buf_steal, where it uses the
 * result. The data is kept NUL-terminated (outside
 * len) so text can be handed to C string APIs without a copy; binary data
 * is still always used through len.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN_ALLOC 64

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
	/* A zero cap would make every buffer useless; take it as "default". */
	b->max = max != 0 ? max : BUF_MAX_DEFAULT;
}

void
buf_free(struct buf *b)
{
	size_t max = b->max;

	free(b->data);
	buf_init(b, max);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/*
 * Makes room for n more bytes plus the terminating NUL. Fails with ENOBUFS
 * past the cap and ENOMEM when allocation fails; the buffer is unchanged
 * either way.
 */
void
buf_setlen(struct buf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
	b->failed = 0;
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

int
buf_ok(const struct buf *b)
{
	if (b->failed != 0) {
		errno = b->failed;
		return -1;
	}
	return 0;
}

static int
buf_fail(struct buf *b, int err)
{
	b->failed = err;
	errno = err;
	return -1;
}

static int
buf_grow(struct buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *p;

	if (b->failed != 0) {
		errno = b->failed;
		return -1;
	}
	if (n > b->max || b->len > b->max - n)
		return buf_fail(b, ENOBUFS);
	need = b->len + n + 1; /* cannot overflow: max < SIZE_MAX here */
	if (b->data != NULL && need <= b->cap)
		return 0;
	ncap = b->cap < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	/* Never allocate more than the cap allows the buffer to use. */
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	if ((p = realloc(b->data, ncap)) == NULL)
		return buf_fail(b, ENOMEM);
	if (b->data == NULL)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, int c)
{
	uint8_t ch = (uint8_t)c;

	return buf_append(b, &ch, 1);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room;

	if (b->failed != 0) {
		errno = b->failed;
		return -1;
	}
	/* First try to format into the space already there. */
	room = b->data != NULL ? b->cap - b->len : 0;
	va_start(ap, fmt);
	n = vsnprintf(room > 0 ? (char *)b->data + b->len : NULL, room, fmt,
	              ap);
	va_end(ap);
	if (n < 0) {
		buf_fail(b, EINVAL);
		goto fail;
	}
	if ((size_t)n < room) {
		if ((size_t)n > b->max - b->len) {
			buf_fail(b, ENOBUFS);
			goto fail;
		}
		b->len += (size_t)n;
		return 0;
	}
	if (buf_grow(b, (size_t)n) == -1)
		goto fail;
	va_start(ap, fmt);
	n = vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		buf_fail(b, EINVAL);
		goto fail;
	}
	b->len += (size_t)n;
	return 0;
fail:
	/* The failed attempt may have written past len: restore the NUL. */
	if (b->data != NULL)
		b->data[b->len] = '\0';
	return -1;
}

const char *
buf_cstr(const struct buf *b)
{
	return b->data != NULL ? (const char *)b->data : "";
}

char *
buf_steal(struct buf *b, size_t *len)
{
	char *p;

	if (b->failed != 0) {
		int err = b->failed;

		buf_free(b);
		errno = err;
		return NULL;
	}
	if (b->data == NULL) {
		if ((p = calloc(1, 1)) == NULL)
			return NULL;
	} else
		p = (char *)b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

struct strv
strv_make(const char *p, size_t len)
{
	struct strv s;

	s.p = p != NULL ? p : "";
	s.len = p != NULL ? len : 0;
	return s;
}

struct strv
strv_cstr(const char *s)
{
	return strv_make(s, s != NULL ? strlen(s) : 0);
}

int
strv_eq(struct strv a, const char *s)
{
	size_t n = strlen(s);

	return a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

/* ASCII only on purpose: locale-dependent folding has no place in
 * protocol keywords. */
static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int
strv_casceq(struct strv a, const char *s)
{
	size_t i, n = strlen(s);

	if (a.len != n)
		return 0;
	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a.p[i]) !=
		    ascii_lower((unsigned char)s[i]))
			return 0;
	return 1;
}

int
strv_startswith(struct strv a, const char *prefix)
{
	size_t n = strlen(prefix);

	return a.len >= n && (n == 0 || memcmp(a.p, prefix, n) == 0);
}

static int
ascii_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

struct strv
strv_trim(struct strv a)
{
	while (a.len > 0 && ascii_space((unsigned char)a.p[0])) {
		a.p++;
		a.len--;
	}
	while (a.len > 0 && ascii_space((unsigned char)a.p[a.len - 1]))
		a.len--;
	return a;
}

struct strv
strv_split(struct strv *s, char sep)
{
	struct strv head;
	const char *q;

	q = s->len > 0 ? memchr(s->p, sep, s->len) : NULL;
	if (q == NULL) {
		head = *s;
		s->p += s->len;
		s->len = 0;
		return head;
	}
	head.p = s->p;
	head.len = (size_t)(q - s->p);
	s->len -= head.len + 1;
	s->p = q + 1;
	return head;
}

/*
 * Accumulates towards negative numbers so LLONG_MIN parses without
 * overflow; the sign is applied at the end.
 */
int
strv_to_ll(struct strv s, long long min, long long max, long long *out)
{
	long long v = 0;
	int neg = 0, d;
	size_t i = 0;

	if (min > max)
		goto inval;
	if (s.len > 0 && (s.p[0] == '-' || s.p[0] == '+')) {
		if (min >= 0)
			goto inval;
		neg = s.p[0] == '-';
		i = 1;
	}
	if (i == s.len)
		goto inval;
	for (; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			goto inval;
		d = s.p[i] - '0';
		if (v < (LLONG_MIN + d) / 10)
			goto range;
		v = v * 10 - d;
	}
	if (!neg) {
		if (v == LLONG_MIN)
			goto range;
		v = -v;
	}
	if (v < min || v > max)
		goto range;
	*out = v;
	return 0;
inval:
	errno = EINVAL;
	return -1;
range:
	errno = ERANGE;
	return -1;
}

char *
strv_dup(struct strv s)
{
	char *p;

	if (s.len == SIZE_MAX || (p = malloc(s.len + 1)) == NULL)
		return NULL;
	if (s.len > 0)
		memcpy(p, s.p, s.len);
	p[s.len] = '\0';
	return p;
}

int
str_to_ll(const char *s, long long min, long long max, long long *out)
{
	if (s == NULL) {
		errno = EINVAL;
		return -1;
	}
	return strv_to_ll(strv_cstr(s), min, max, out);
}

/*
 * Splits "<digits><unit>" and scales by the unit's multiplier, refusing
 * results that do not fit a long long. units[i] scales by mult[i].
 */
static int
str_scaled(const char *s, const char *units, const long long *mult,
           long long *out)
{
	struct strv num;
	const char *u;
	long long v, m = 1;
	size_t len;

	if (s == NULL)
		goto inval;
	len = strlen(s);
	num = strv_make(s, len);
	if (len > 1 && (s[len - 1] < '0' || s[len - 1] > '9')) {
		if ((u = strchr(units, s[len - 1])) == NULL)
			goto inval;
		m = mult[u - units];
		num.len--;
	}
	if (strv_to_ll(num, 0, LLONG_MAX, &v) == -1)
		return -1;
	if (v > LLONG_MAX / m) {
		errno = ERANGE;
		return -1;
	}
	*out = v * m;
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

int
str_to_duration(const char *s, long long *secs)
{
	static const long long mult[] = {1, 60, 3600, 86400, 604800};
	long long v;

	if (str_scaled(s, "smhdw", mult, &v) == -1)
		return -1;
	if (v == 0) {
		errno = ERANGE;
		return -1;
	}
	*secs = v;
	return 0;
}

int
str_to_size(const char *s, long long *bytes)
{
	static const long long mult[] = {
	    1LL << 10, 1LL << 10, 1LL << 20, 1LL << 20,
	    1LL << 30, 1LL << 30, 1LL << 40, 1LL << 40,
	};

	return str_scaled(s, "kKmMgGtT", mult, bytes);
}

void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
path_decode(const char *raw, size_t n)
{
	size_t i, j;
	char *out;
	int hi, lo;

	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = j = 0; i < n; i++) {
		if (raw[i] == '%' && i + 2 < n &&
		    (hi = hex_value((unsigned char)raw[i + 1])) >= 0 &&
		    (lo = hex_value((unsigned char)raw[i + 2])) >= 0) {
			if (hi == 0 && lo == 0)
				goto fail;
			out[j++] = (char)(hi << 4 | lo);
			i += 2;
			continue;
		}
		out[j++] = raw[i];
	}
	out[j] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

int
str_is_uuid(const char *s, size_t max)
{
	size_t i, n = strnlen(s, max);

	if (n != 36)
		return 0;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
		             (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

int
str_name_ok(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

int
str_is_name(const char *s)
{
	return str_name_ok(s, strlen(s), 64);
}
