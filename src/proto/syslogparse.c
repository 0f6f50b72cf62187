/*
 * syslogparse: framing and parsing of received syslog messages (see
 * syslogparse.h). Every field is checked against RFC 5424's grammar
 * (section 6) before it is used; nothing is assumed NUL-terminated and no
 * index runs past len. Text that goes into JSON is valid UTF-8: RFC 5424
 * requires it in PARAM-VALUEs and after a BOM; other message text that is
 * not UTF-8 is kept with U+FFFD in place of the bad bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syslogparse.h"

struct cur {
	const uint8_t *p;
	size_t len, i;
};

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t k, need;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (k = 1; k < need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static int
utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if ((k = utf8_seq(p + i, n - i)) == 0 || p[i] == 0)
			return 0;
		i += k;
	}
	return 1;
}

json_t *
syslogparse_raw_string(const uint8_t *p, size_t len)
{
	struct buf b;
	size_t i = 0, k;
	json_t *s;

	buf_init(&b, 4 * len + 16);
	while (i < len) {
		k = utf8_seq(p + i, len - i);
		if (k == 0 || (k == 1 && ((p[i] < 0x20 && p[i] != '\t') ||
		                          p[i] == 0x7f))) {
			buf_puts(&b, "\xef\xbf\xbd");
			i++;
			continue;
		}
		buf_append(&b, p + i, k);
		i += k;
	}
	s = json_stringn(b.data ? (const char *)b.data : "", b.len);
	buf_free(&b);
	return s;
}

/* Text of a field as a JSON string; invalid UTF-8 replaced. */
static json_t *
text(const uint8_t *p, size_t n)
{
	return syslogparse_raw_string(p, n);
}

long
syslogparse_frame(const uint8_t *p, size_t len, size_t max, const uint8_t **msg,
                  size_t *msglen)
{
	size_t i, n = 0;

	if (len == 0)
		return -2;
	if (is_digit(p[0])) {
		/* RFC 6587 3.4.1: MSG-LEN = NONZERO-DIGIT *DIGIT. */
		if (p[0] == '0')
			return -1;
		for (i = 0; i < len && is_digit(p[i]); i++) {
			if (i >= 9)
				return -1;
			n = n * 10 + (size_t)(p[i] - '0');
		}
		if (i == len)
			return -2;
		if (p[i] != ' ' || n > max)
			return -1;
		i++;
		if (len - i < n)
			return -2;
		*msg = p + i;
		*msglen = n;
		return (long)(i + n);
	}
	for (i = 0; i < len && i <= max; i++) {
		if (p[i] == '\n') {
			n = i;
			if (n > 0 && p[n - 1] == '\r')
				n--;
			*msg = p;
			*msglen = n;
			return (long)(i + 1);
		}
	}
	return len > max ? -1 : -2;
}

/* "<PRI>": 1 to 3 digits, at most 191 (RFC 5424 6.2.1). */
static int
parse_pri(struct cur *c, int *pri, struct buf *err)
{
	int v = 0, n = 0;

	if (c->len == 0 || c->p[0] != '<') {
		buf_puts(err, "no PRI: a syslog message starts with <N>");
		return -1;
	}
	for (c->i = 1; c->i < c->len && is_digit(c->p[c->i]) && n < 4;
	     c->i++, n++)
		v = v * 10 + (c->p[c->i] - '0');
	if (n == 0 || n > 3 || c->i >= c->len || c->p[c->i] != '>' || v > 191) {
		buf_puts(err, "bad PRI: <0> to <191>");
		return -1;
	}
	c->i++;
	*pri = v;
	return 0;
}

/* One header field up to SP: 1..max PRINTUSASCII. NULL ("-") or a JSON
 * string; *bad set on a grammar error. */
static json_t *
field(struct cur *c, size_t max, const char *name, int *bad, struct buf *err)
{
	size_t start = c->i;

	while (c->i < c->len && c->p[c->i] != ' ') {
		if (c->p[c->i] < 33 || c->p[c->i] > 126 ||
		    c->i - start >= max) {
			buf_printf(err,
			           "%s: at most %zu printable ASCII "
			           "characters",
			           name, max);
			*bad = 1;
			return NULL;
		}
		c->i++;
	}
	if (c->i == start || c->i >= c->len) {
		buf_printf(err, "%s: missing", name);
		*bad = 1;
		return NULL;
	}
	c->i++; /* SP */
	if (c->i - start == 2 && c->p[start] == '-')
		return NULL;
	return json_stringn((const char *)c->p + start, c->i - 1 - start);
}

static int
num(const uint8_t *p, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long long
days_from_civil(int y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* RFC 5424 TIMESTAMP (RFC 3339 with the restrictions of 6.2.3). */
static int
parse_time(const uint8_t *p, size_t n, long long *out)
{
	int y, mo, d, h, mi, s, off = 0;
	size_t i = 19;

	if (n < 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' ||
	    p[13] != ':' || p[16] != ':')
		return -1;
	y = num(p, 4);
	mo = num(p + 5, 2);
	d = num(p + 8, 2);
	h = num(p + 11, 2);
	mi = num(p + 14, 2);
	s = num(p + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || s < 0 || s > 60)
		return -1;
	if (p[i] == '.') {
		size_t f = ++i;

		while (i < n && is_digit(p[i]) && i - f < 6)
			i++;
		if (i == f)
			return -1;
	}
	if (i == n - 1 && p[i] == 'Z')
		off = 0;
	else if (i + 6 == n && (p[i] == '+' || p[i] == '-') &&
	         p[i + 3] == ':') {
		int oh = num(p + i + 1, 2), om = num(p + i + 4, 2);

		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		off = (oh * 60 + om) * 60 * (p[i] == '+' ? 1 : -1);
	} else
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off;
	return 0;
}

/* SD-NAME: 1..32 PRINTUSASCII except '=', SP, ']', '"'. */
static size_t
sd_name(struct cur *c)
{
	size_t start = c->i;

	while (c->i < c->len && c->i - start < 32) {
		uint8_t ch = c->p[c->i];

		if (ch < 33 || ch > 126 || ch == '=' || ch == ']' || ch == '"')
			break;
		c->i++;
	}
	return c->i - start;
}

/* Adds name=value to o; a name seen before becomes an array of values. */
static void
add_param(json_t *o, const char *name, json_t *v)
{
	json_t *old = json_object_get(o, name);

	if (old == NULL)
		json_object_set_new(o, name, v);
	else if (json_is_array(old))
		json_array_append_new(old, v);
	else
		json_object_set_new(o, name, json_pack("[O, o]", old, v));
}

static int
parse_sd(struct cur *c, json_t *sd, struct buf *err)
{
	struct buf val;
	char id[33], pn[33];
	size_t n;
	int rc = -1;

	buf_init(&val, c->len + 1);
	while (c->i < c->len && c->p[c->i] == '[') {
		json_t *params;

		c->i++;
		if ((n = sd_name(c)) == 0) {
			buf_puts(err, "structured data: bad SD-ID");
			goto fail;
		}
		memcpy(id, c->p + c->i - n, n);
		id[n] = '\0';
		if (json_object_get(sd, id) != NULL) {
			buf_printf(err, "structured data: %s twice", id);
			goto fail;
		}
		params = json_object();
		json_object_set_new(sd, id, params);
		while (c->i < c->len && c->p[c->i] == ' ') {
			c->i++;
			if ((n = sd_name(c)) == 0 || c->i + 1 >= c->len ||
			    c->p[c->i] != '=' || c->p[c->i + 1] != '"') {
				buf_printf(err,
				           "structured data: %s: bad "
				           "parameter",
				           id);
				goto fail;
			}
			memcpy(pn, c->p + c->i - n, n);
			pn[n] = '\0';
			c->i += 2;
			buf_reset(&val);
			for (;;) {
				uint8_t ch;

				if (c->i >= c->len) {
					buf_printf(err,
					           "structured data: %s: "
					           "unterminated value",
					           id);
					goto fail;
				}
				ch = c->p[c->i++];
				if (ch == '"')
					break;
				/* 6.3.3: \" \\ \] are escapes; a backslash
				 * before anything else is itself. */
				if (ch == '\\' && c->i < c->len &&
				    (c->p[c->i] == '"' || c->p[c->i] == '\\' ||
				     c->p[c->i] == ']'))
					ch = c->p[c->i++];
				buf_putc(&val, ch);
			}
			if (!utf8_valid(val.data, val.len)) {
				buf_printf(err,
				           "structured data: %s.%s: not UTF-8",
				           id, pn);
				goto fail;
			}
			/* Control characters as U+FFFD, as in the
			 * message: JSON would make each six bytes. */
			add_param(params, pn, text(val.data, val.len));
		}
		if (c->i >= c->len || c->p[c->i] != ']') {
			buf_printf(err, "structured data: %s: no ']'", id);
			goto fail;
		}
		c->i++;
	}
	rc = 0;
fail:
	buf_free(&val);
	return rc;
}

static void
trim_end(const uint8_t *p, size_t *n)
{
	while (*n > 0 &&
	       (p[*n - 1] == '\n' || p[*n - 1] == '\r' || p[*n - 1] == '\0'))
		(*n)--;
}

static json_t *
parse_5424(struct cur *c, json_t *o, long long *t, struct buf *err)
{
	static const struct {
		const char *key;
		size_t max;
	} f[] = {{"timestamp", 64},
	         {"hostname", 255},
	         {"app_name", 48},
	         {"procid", 128},
	         {"msgid", 32}};
	json_t *v, *sd;
	size_t k, n;
	int bad = 0;

	c->i += 2; /* "1 " */
	json_object_set_new(o, "format", json_string("rfc5424"));
	for (k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		v = field(c, f[k].max, f[k].key, &bad, err);
		if (bad)
			return NULL;
		if (k == 0 && v != NULL &&
		    parse_time((const uint8_t *)json_string_value(v),
		               json_string_length(v), t) == -1) {
			json_decref(v);
			buf_puts(err, "timestamp: not an RFC 5424 timestamp");
			return NULL;
		}
		json_object_set_new(o, f[k].key, v ? v : json_null());
	}
	if (c->i < c->len && c->p[c->i] == '-') {
		c->i++;
		json_object_set_new(o, "structured_data", json_null());
	} else {
		sd = json_object();
		json_object_set_new(o, "structured_data", sd);
		if (c->i >= c->len || c->p[c->i] != '[') {
			buf_puts(err, "structured data: '-' or '[' expected");
			return NULL;
		}
		if (parse_sd(c, sd, err) == -1)
			return NULL;
	}
	if (c->i < c->len && c->p[c->i] != ' ') {
		buf_puts(err, "structured data: SP expected after it");
		return NULL;
	}
	if (c->i < c->len)
		c->i++;
	n = c->len - c->i;
	trim_end(c->p + c->i, &n);
	if (n >= 3 && memcmp(c->p + c->i, "\xef\xbb\xbf", 3) == 0) {
		if (!utf8_valid(c->p + c->i + 3, n - 3)) {
			buf_puts(err,
			         "MSG: starts with a BOM but is not UTF-8");
			return NULL;
		}
		c->i += 3;
		n -= 3;
	}
	json_object_set_new(o, "message", text(c->p + c->i, n));
	return o;
}

/* "Mmm dd hh:mm:ss " (RFC 3164 4.1.2). */
static int
ts_3164(const uint8_t *p, size_t n)
{
	static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int m;

	if (n < 16 || p[3] != ' ' || p[6] != ' ' || p[9] != ':' ||
	    p[12] != ':' || p[15] != ' ')
		return 0;
	for (m = 0; m < 12; m++)
		if (memcmp(p, mons + 3 * m, 3) == 0)
			break;
	if (m == 12 || !(p[4] == ' ' || is_digit(p[4])) || !is_digit(p[5]) ||
	    num(p + 7, 2) < 0 || num(p + 10, 2) < 0 || num(p + 13, 2) < 0)
		return 0;
	return 1;
}

static json_t *
parse_3164(struct cur *c, json_t *o)
{
	size_t s, n;

	json_object_set_new(o, "format", json_string("rfc3164"));
	if (ts_3164(c->p + c->i, c->len - c->i)) {
		json_object_set_new(
		    o, "timestamp",
		    json_stringn((const char *)c->p + c->i, 15));
		c->i += 16;
		/* HOSTNAME: up to the next space. */
		for (s = c->i;
		     c->i < c->len && c->p[c->i] != ' ' && c->p[c->i] > 32 &&
		     c->p[c->i] < 127 && c->i - s < 255;
		     c->i++)
			;
		if (c->i > s && c->i < c->len && c->p[c->i] == ' ') {
			json_object_set_new(
			    o, "hostname",
			    json_stringn((const char *)c->p + s, c->i - s));
			c->i++;
		} else
			c->i = s;
	}
	/* TAG: alphanumerics and a few more, then '[pid]' and/or ':'. */
	for (s = c->i;
	     c->i < c->len && c->i - s < 48 && c->p[c->i] > 32 &&
	     c->p[c->i] < 127 && c->p[c->i] != ':' && c->p[c->i] != '[';
	     c->i++)
		;
	if (c->i > s && c->i < c->len &&
	    (c->p[c->i] == ':' || c->p[c->i] == '[')) {
		size_t tag_end = c->i, ps = 0, pe = 0;

		if (c->p[c->i] == '[') {
			ps = ++c->i;
			while (c->i < c->len && c->i - ps < 128 &&
			       is_digit(c->p[c->i]))
				c->i++;
			pe = c->i;
			if (c->i < c->len && c->p[c->i] == ']')
				c->i++;
			else
				pe = ps = 0;
		}
		if (c->i < c->len && c->p[c->i] == ':' &&
		    (ps == 0 || pe > ps)) {
			json_object_set_new(
			    o, "app_name",
			    json_stringn((const char *)c->p + s, tag_end - s));
			if (pe > ps)
				json_object_set_new(
				    o, "procid",
				    json_stringn((const char *)c->p + ps,
				                 pe - ps));
			c->i++;
			if (c->i < c->len && c->p[c->i] == ' ')
				c->i++;
		} else
			c->i = s;
	} else
		c->i = s;
	n = c->len - c->i;
	trim_end(c->p + c->i, &n);
	json_object_set_new(o, "message", text(c->p + c->i, n));
	return o;
}

json_t *
syslogparse_message(const uint8_t *p, size_t len, int *severity,
                    long long *time, struct buf *err)
{
	struct cur c = {p, len, 0};
	json_t *o;
	int pri;

	*time = 0;
	*severity = 6;
	if (parse_pri(&c, &pri, err) == -1)
		return NULL;
	*severity = pri & 7;
	o = json_pack("{s:i, s:i}", "facility", pri >> 3, "severity", pri & 7);
	if (o == NULL)
		return NULL;
	if (c.len - c.i >= 2 && c.p[c.i] == '1' && c.p[c.i + 1] == ' ') {
		if (parse_5424(&c, o, time, err) == NULL) {
			json_decref(o);
			return NULL;
		}
		return o;
	}
	if (c.i == c.len) {
		buf_puts(err, "empty message after the PRI");
		json_decref(o);
		return NULL;
	}
	return parse_3164(&c, o);
}
