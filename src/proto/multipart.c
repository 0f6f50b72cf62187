/*
 * multipart: streaming multipart/form-data parser; see multipart.h.
 *
 * The body is scanned for the delimiter "\r\n--BOUNDARY". The first
 * delimiter may start the body without the CRLF, so the parser starts as if
 * that CRLF had just been matched. Within a part, bytes up to a '\r' are
 * passed on at once (memchr keeps large samples fast); from a '\r' on,
 * bytes that match the delimiter so far are held back (at most its length),
 * and given out as data if the match fails. A boundary cannot contain CR
 * or LF, so after a mismatch the only place a new match can start is the
 * current byte: no backtracking table is needed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "multipart.h"

static int mp_fail(struct mp_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
mp_fail(struct mp_parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, sizeof(p->err), "multipart: ");
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(p->err))
		vsnprintf(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
	va_end(ap);
	p->state = MP_ERROR;
	return -1;
}

/* RFC 2046 bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space (not last). */
static int
mp_bchar(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=? ", c) != NULL;
}

static const char *
mp_skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* RFC 2045 tspecials: the characters Go's mime package unescapes after a
 * backslash in a quoted-string. */
static int
mp_tspecial(int c)
{
	return c != '\0' && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/*
 * Reads one parameter value at s (a quoted-string or a token) into out
 * (size n); returns the position after it, or NULL when malformed or too
 * long. In a quoted string a backslash escapes the character after it
 * only when that is a tspecial (\\ and \" above all), as Go's
 * mime/multipart reader (THOR's) reads it: Go's writer sends
 * "C:\\Temp\\a.exe", browsers and curl send "C:\Temp\a.exe" with plain
 * backslashes, and both arrive as C:\Temp\a.exe.
 */
static const char *
mp_param_value(const char *s, char *out, size_t n)
{
	size_t k = 0;

	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\0' || *s == '\r' || *s == '\n')
				return NULL;
			if (*s == '\\' && mp_tspecial((unsigned char)s[1]))
				s++;
			if (k + 1 >= n)
				return NULL;
			out[k++] = *s;
		}
		s++;
	} else {
		for (; *s != '\0' && *s != ';' && *s != ' ' && *s != '\t';
		     s++) {
			if (k + 1 >= n)
				return NULL;
			out[k++] = *s;
		}
	}
	out[k] = '\0';
	return s;
}

static int
mp_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Appends the percent-decoded v to out (size n, holding *k bytes): 0, or
 * -1 for a bad %XX, a NUL byte or no room. With charset set, v is an RFC
 * 2231 / 5987 extended value, "CHARSET'LANG'%XX...", whose charset must be
 * UTF-8 or US-ASCII (Go's reader ignores the parameter otherwise).
 */
static int
mp_ext_value(const char *v, int charset, char *out, size_t n, size_t *k)
{
	const char *q;
	int hi, lo, c;

	if (charset) {
		if ((q = strchr(v, '\'')) == NULL ||
		    strchr(q + 1, '\'') == NULL)
			return -1;
		if (!((q - v == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
		      (q - v == 8 && strncasecmp(v, "us-ascii", 8) == 0)))
			return -1;
		v = strchr(q + 1, '\'') + 1;
	}
	for (; *v != '\0'; v++) {
		c = (unsigned char)*v;
		if (c == '%') {
			if ((hi = mp_hexval((unsigned char)v[1])) < 0 ||
			    (lo = mp_hexval((unsigned char)v[2])) < 0)
				return -1;
			c = hi << 4 | lo;
			v += 2;
		}
		if (c == 0 || *k + 1 >= n)
			return -1;
		out[(*k)++] = (char)c;
	}
	out[*k] = '\0';
	return 0;
}

int
mp_init(struct mp_parser *p, const char *ctype, const struct mp_callbacks *cb,
        void *arg)
{
	char name[32], val[MP_MAX_BOUNDARY + 8];
	const char *s;
	size_t k, blen = 0;

	memset(p, 0, sizeof(*p));
	p->cb = cb;
	p->arg = arg;
	if (ctype == NULL)
		return mp_fail(p, "no Content-Type (expected "
		                  "multipart/form-data with a boundary)");
	s = mp_skip_ws(ctype);
	if (strncasecmp(s, "multipart/form-data", 19) != 0 ||
	    (s[19] != ';' && s[19] != '\0' && s[19] != ' '))
		return mp_fail(p, "Content-Type is not multipart/form-data");
	s += 19;
	for (;;) {
		s = mp_skip_ws(s);
		if (*s == '\0')
			break;
		if (*s != ';')
			return mp_fail(p, "malformed Content-Type parameters");
		s = mp_skip_ws(s + 1);
		for (k = 0; *s != '=' && *s != '\0' && *s != ';'; s++)
			if (k + 1 < sizeof(name))
				name[k++] = *s;
		name[k] = '\0';
		if (*s != '=')
			return mp_fail(p, "malformed Content-Type parameters");
		if ((s = mp_param_value(s + 1, val, sizeof(val))) == NULL)
			return mp_fail(p, "malformed or too long Content-Type "
			                  "parameter");
		if (strcasecmp(name, "boundary") == 0) {
			if (blen != 0)
				return mp_fail(p, "two boundary parameters");
			blen = strlen(val);
			if (blen == 0 || blen > MP_MAX_BOUNDARY)
				return mp_fail(p,
				               "boundary must be 1 to %d "
				               "characters",
				               MP_MAX_BOUNDARY);
			for (k = 0; k < blen; k++)
				if (!mp_bchar((unsigned char)val[k]))
					return mp_fail(p, "invalid character "
					                  "in boundary");
			memcpy(p->delim, "\r\n--", 4);
			memcpy(p->delim + 4, val, blen);
			p->dlen = blen + 4;
		}
	}
	if (blen == 0)
		return mp_fail(p, "Content-Type has no boundary parameter");
	p->state = MP_PREAMBLE;
	p->match = 2; /* the body may start with "--BOUNDARY" */
	return 0;
}

/*
 * One filename* parameter (RFC 2231): suffix is what follows "filename*":
 * "" (the whole value, extended), or a continuation "N" or "N*" (extended
 * when it ends in '*'; the charset is in section 0 only). Sections must
 * come in order, 0 first; *next counts them. -1 when it cannot be used.
 */
static int
mp_filename_ext(const char *suffix, const char *v, char *out, size_t n,
                size_t *k, int *next)
{
	char *end;
	long idx;
	int extended;

	if (*suffix == '\0') {
		if (*next != 0)
			return -1;
		*next = 1;
		return mp_ext_value(v, 1, out, n, k);
	}
	idx = strtol(suffix, &end, 10);
	if (end == suffix || idx != *next || (*end != '\0' && strcmp(end, "*")))
		return -1;
	extended = *end == '*';
	(*next)++;
	if (extended)
		return mp_ext_value(v, idx == 0, out, n, k);
	if (*k + strlen(v) + 1 > n)
		return -1;
	memcpy(out + *k, v, strlen(v) + 1);
	*k += strlen(v);
	return 0;
}

/* Parses one part's header block (hdr, ending in an empty line). */
static int
mp_headers(struct mp_parser *p)
{
	char line[MP_MAX_HEADERS + 1], pname[32];
	char name[MP_MAX_NAME], filename[MP_MAX_NAME], ext[MP_MAX_NAME];
	int have_name = 0, have_file = 0, have_cd = 0, have_ext = 0;
	int ext_bad = 0, ext_next = 0;
	size_t ext_len = 0;
	const char *s, *end;
	char *colon, *nl;
	size_t k, off = 0;

	if (memchr(p->hdr, '\0', p->hlen) != NULL)
		return mp_fail(p, "NUL byte in part headers");
	name[0] = filename[0] = ext[0] = '\0';
	while (off + 2 <= p->hlen) {
		nl = memmem(p->hdr + off, p->hlen - off, "\r\n", 2);
		if (nl == NULL)
			break;
		k = (size_t)(nl - (char *)p->hdr) - off;
		if (k == 0)
			break; /* the empty line ending the block */
		memcpy(line, p->hdr + off, k);
		line[k] = '\0';
		off += k + 2;
		if (line[0] == ' ' || line[0] == '\t')
			return mp_fail(p, "folded part header lines are not "
			                  "supported");
		if ((colon = strchr(line, ':')) == NULL)
			return mp_fail(p, "part header line without a colon");
		*colon = '\0';
		if (strcasecmp(line, "Content-Disposition") != 0)
			continue;
		if (have_cd)
			return mp_fail(p, "two Content-Disposition headers in "
			                  "one part");
		have_cd = 1;
		s = mp_skip_ws(colon + 1);
		if (strncasecmp(s, "form-data", 9) != 0 ||
		    (s[9] != ';' && s[9] != '\0' && s[9] != ' '))
			return mp_fail(p, "part is not form-data");
		s += 9;
		for (;;) {
			s = mp_skip_ws(s);
			if (*s == '\0')
				break;
			if (*s != ';')
				return mp_fail(p, "malformed "
				                  "Content-Disposition");
			s = mp_skip_ws(s + 1);
			if (*s == '\0')
				break;
			for (k = 0;
			     *s != '=' && *s != '\0' && *s != ';' && *s != ' ';
			     s++)
				if (k + 1 < sizeof(pname))
					pname[k++] = *s;
			pname[k] = '\0';
			s = mp_skip_ws(s);
			if (*s != '=')
				return mp_fail(p, "malformed "
				                  "Content-Disposition "
				                  "parameter");
			s = mp_skip_ws(s + 1);
			if (strcasecmp(pname, "name") == 0) {
				end = mp_param_value(s, name, sizeof(name));
				have_name = 1;
			} else if (strcasecmp(pname, "filename") == 0) {
				end = mp_param_value(s, filename,
				                     sizeof(filename));
				have_file = 1;
			} else if (strncasecmp(pname, "filename*", 9) == 0) {
				char v[MP_MAX_NAME];

				end = mp_param_value(s, v, sizeof(v));
				if (end != NULL && !ext_bad &&
				    mp_filename_ext(pname + 9, v, ext,
				                    sizeof(ext), &ext_len,
				                    &ext_next) == -1)
					ext_bad = 1;
				have_ext = 1;
			} else {
				char skip[MP_MAX_NAME];

				end = mp_param_value(s, skip, sizeof(skip));
			}
			if (end == NULL)
				return mp_fail(p, "malformed or too long "
				                  "Content-Disposition "
				                  "parameter");
			s = end;
		}
	}
	if (!have_cd || !have_name)
		return mp_fail(p, "part without Content-Disposition: "
		                  "form-data; name=...");
	/* filename* (RFC 7578 4.2 allows it, Go reads it) wins over
	 * filename when it decodes; one that does not is ignored. */
	if (have_ext && !ext_bad && ext_next > 0) {
		memcpy(filename, ext, ext_len + 1);
		have_file = 1;
	}
	if (++p->parts > MP_MAX_PARTS)
		return mp_fail(p, "more than %d parts", MP_MAX_PARTS);
	if (p->cb != NULL && p->cb->on_part != NULL &&
	    p->cb->on_part(p->arg, name, have_file ? filename : NULL) != 0)
		return mp_fail(p, "stopped by the receiver");
	return 0;
}

static int
mp_emit(struct mp_parser *p, const uint8_t *d, size_t n)
{
	if (n == 0 || p->state != MP_BODY || p->cb == NULL ||
	    p->cb->on_data == NULL)
		return 0;
	if (p->cb->on_data(p->arg, d, n) != 0)
		return mp_fail(p, "stopped by the receiver");
	return 0;
}

/*
 * Preamble or body: passes data on (body) or drops it (preamble) until a
 * delimiter; returns bytes consumed (the delimiter's last byte included)
 * or -1.
 */
static long
mp_scan(struct mp_parser *p, const uint8_t *d, size_t len)
{
	size_t i = 0;
	const uint8_t *q;

	while (i < len) {
		if (p->match == 0) {
			q = memchr(d + i, '\r', len - i);
			if (q == NULL) {
				if (mp_emit(p, d + i, len - i) == -1)
					return -1;
				return (long)len;
			}
			if (mp_emit(p, d + i, (size_t)(q - (d + i))) == -1)
				return -1;
			i = (size_t)(q - d) + 1;
			p->match = 1;
			continue;
		}
		if (d[i] == p->delim[p->match]) {
			i++;
			if (++p->match == p->dlen) {
				p->match = 0;
				if (p->state == MP_BODY && p->cb != NULL &&
				    p->cb->on_part_end != NULL &&
				    p->cb->on_part_end(p->arg) != 0)
					return mp_fail(p, "stopped by the "
					                  "receiver");
				p->state = MP_AFTER_DELIM;
				return (long)i;
			}
			continue;
		}
		/* Mismatch: what was held back is data after all; the
		 * current byte is looked at again from the start. */
		if (mp_emit(p, p->delim, p->match) == -1)
			return -1;
		p->match = 0;
	}
	return (long)i;
}

int
mp_feed(struct mp_parser *p, const uint8_t *data, size_t len)
{
	size_t i = 0;
	long n;
	uint8_t c;

	if (p->state == MP_ERROR)
		return -1;
	while (i < len) {
		switch (p->state) {
		case MP_PREAMBLE:
		case MP_BODY:
			if ((n = mp_scan(p, data + i, len - i)) < 0)
				return -1;
			i += (size_t)n;
			break;
		case MP_AFTER_DELIM:
			c = data[i++];
			if (c == '-')
				p->state = MP_AFTER_DELIM_DASH;
			else if (c == '\r')
				p->state = MP_AFTER_DELIM_LF;
			else if (c != ' ' && c != '\t')
				return mp_fail(p, "malformed delimiter line");
			break;
		case MP_AFTER_DELIM_DASH:
			if (data[i++] != '-')
				return mp_fail(p, "malformed closing "
				                  "delimiter");
			p->state = MP_DONE;
			break;
		case MP_AFTER_DELIM_LF:
			if (data[i++] != '\n')
				return mp_fail(p, "malformed delimiter line");
			p->state = MP_HEADERS;
			p->hlen = 0;
			break;
		case MP_HEADERS:
			if (p->hlen == sizeof(p->hdr))
				return mp_fail(p,
				               "part headers longer than "
				               "%d bytes",
				               MP_MAX_HEADERS);
			p->hdr[p->hlen++] = data[i++];
			if ((p->hlen == 2 && memcmp(p->hdr, "\r\n", 2) == 0) ||
			    (p->hlen >= 4 && memcmp(p->hdr + p->hlen - 4,
			                            "\r\n\r\n", 4) == 0)) {
				if (mp_headers(p) == -1)
					return -1;
				p->state = MP_BODY;
				p->match = 0;
			}
			break;
		case MP_DONE:
			return 0; /* epilogue */
		case MP_ERROR:
			return -1;
		}
	}
	return 0;
}

int
mp_finish(struct mp_parser *p)
{
	if (p->state == MP_ERROR)
		return -1;
	if (p->state == MP_DONE)
		return 0;
	if (p->state == MP_PREAMBLE)
		return mp_fail(p, "no boundary found in the body");
	return mp_fail(p, "body truncated before the closing boundary");
}
