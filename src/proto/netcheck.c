/*
 * netcheck: parsers of an SNTP reply and of a proxy's answer to CONNECT,
 * for the doctor checks (see netcheck.h). No I/O; every read is bounded by
 * the length given, nothing assumes a NUL.
 */
#include <stdio.h>
#include <string.h>

#include "netcheck.h"

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An NTP timestamp (seconds since 1900 and a 32-bit fraction) as Unix
 * seconds. Era 0 only: good until 2036, as RFC 4330 section 3 says how to
 * extend it (a seconds field with its top bit clear is in era 1). */
static double
ts_unix(const uint8_t *p)
{
	uint64_t sec = get32(p);

	if ((sec & 0x80000000u) == 0)
		sec += 1ULL << 32; /* after 2036-02-07 */
	return (double)(int64_t)(sec - SNTP_UNIX_OFFSET) +
	       (double)get32(p + 4) / 4294967296.0;
}

void
sntp_request(uint8_t pkt[SNTP_LEN], double now)
{
	double sec = now + (double)SNTP_UNIX_OFFSET;
	uint64_t whole = (uint64_t)sec;

	memset(pkt, 0, SNTP_LEN);
	pkt[0] = (0 << 6) | (4 << 3) | 3; /* LI 0, VN 4, mode 3 (client) */
	put32(pkt + 40, (uint32_t)whole);
	put32(pkt + 44, (uint32_t)((sec - (double)whole) * 4294967296.0));
}

int
sntp_parse(const uint8_t *p, size_t len, const uint8_t req[SNTP_LEN],
           struct sntp_reply *r, char *why, size_t whylen)
{
	int mode;

	memset(r, 0, sizeof(*r));
	if (len < SNTP_LEN) {
		snprintf(why, whylen,
		         "a reply of %zu bytes, shorter than the "
		         "48 of an SNTP packet",
		         len);
		return -1;
	}
	r->leap = p[0] >> 6;
	r->version = (p[0] >> 3) & 7;
	mode = p[0] & 7;
	r->stratum = p[1];
	if (mode != 4) {
		snprintf(why, whylen, "a reply in mode %d, not 4 (server)",
		         mode);
		return -1;
	}
	if (r->version < 1 || r->version > 4) {
		snprintf(why, whylen, "a reply of NTP version %d", r->version);
		return -1;
	}
	if (memcmp(p + 24, req + 40, 8) != 0) {
		snprintf(why, whylen,
		         "a reply whose originate timestamp is "
		         "not our request's (an answer to someone else)");
		return -1;
	}
	if (r->stratum == 0) {
		char code[5];
		int i;

		for (i = 0; i < 4; i++)
			code[i] = p[12 + i] >= 0x20 && p[12 + i] < 0x7f
			              ? (char)p[12 + i]
			              : '?';
		code[4] = '\0';
		snprintf(why, whylen,
		         "a kiss-o'-death (%s): the server "
		         "refuses to answer",
		         code);
		return -1;
	}
	if (r->stratum > 15) {
		snprintf(why, whylen,
		         "stratum %d: the server has no time "
		         "source",
		         r->stratum);
		return -1;
	}
	if (r->leap == 3) {
		snprintf(why, whylen,
		         "the server says its own clock is not "
		         "synchronized (leap indicator 3)");
		return -1;
	}
	if (get32(p + 40) == 0 && get32(p + 44) == 0) {
		snprintf(why, whylen, "a reply without a transmit time");
		return -1;
	}
	r->receive = ts_unix(p + 32);
	r->transmit = ts_unix(p + 40);
	return 0;
}

double
sntp_offset(const struct sntp_reply *r, double t1, double t4)
{
	return ((r->receive - t1) + (r->transmit - t4)) / 2;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* ASCII case-insensitive comparison of p[0..n) with s. */
static int
caseq(const uint8_t *p, size_t n, const char *s)
{
	size_t i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower(p[i]) != lower((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
is_tchar(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static unsigned
scheme_bit(const uint8_t *p, size_t n)
{
	if (caseq(p, n, "Basic"))
		return PROXYAUTH_BASIC;
	if (caseq(p, n, "NTLM"))
		return PROXYAUTH_NTLM;
	if (caseq(p, n, "Negotiate") || caseq(p, n, "Kerberos"))
		return PROXYAUTH_NEGOTIATE;
	return PROXYAUTH_OTHER;
}

/*
 * The schemes of one Proxy-Authenticate value: a challenge list (RFC 9110
 * 11.6.1), "Basic realm="x", NTLM, Negotiate". A token at the start of a
 * comma-separated element that is not followed by '=' names a scheme; the
 * others are parameters. A quoted string is skipped whole, commas in it
 * included.
 */
static unsigned
challenge_schemes(const uint8_t *p, size_t n)
{
	unsigned bits = 0;
	size_t i = 0, t;
	int elem_start = 1;

	while (i < n) {
		if (p[i] == ' ' || p[i] == '\t') {
			i++;
			continue;
		}
		if (p[i] == ',') {
			elem_start = 1;
			i++;
			continue;
		}
		if (p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\' && i + 1 < n)
					i++;
			i++;
			elem_start = 0;
			continue;
		}
		if (!is_tchar(p[i])) {
			i++;
			elem_start = 0;
			continue;
		}
		for (t = i; t < n && is_tchar(p[t]); t++)
			;
		if (elem_start && (t >= n || p[t] != '=')) {
			bits |= scheme_bit(p + i, t - i);
			/* Its parameters follow up to the next comma; a token68
			 * ends with '='s, which the loop skips. */
		}
		elem_start = 0;
		i = t;
		while (i < n && p[i] == '=')
			i++;
	}
	return bits;
}

long
proxy_answer_parse(const uint8_t *p, size_t len, struct proxy_answer *a)
{
	size_t i = 0, eol, colon;
	int first = 1, code, k;

	memset(a, 0, sizeof(*a));
	for (;;) {
		for (eol = i; eol < len && p[eol] != '\n'; eol++)
			if (p[eol] == '\0')
				return -1;
		if (eol >= len)
			return -2;
		/* p[i..eol) is a line, with an optional CR before the LF. */
		colon = eol;
		if (colon > i && p[colon - 1] == '\r')
			colon--;
		if (memchr(p + i, '\r', colon - i) != NULL)
			return -1;
		if (first) {
			/* "HTTP/1.x NNN" and an optional reason. */
			if (colon - i < 12 ||
			    memcmp(p + i, "HTTP/1.", 7) != 0 ||
			    p[i + 7] < '0' || p[i + 7] > '9' || p[i + 8] != ' ')
				return -1;
			for (code = 0, k = 9; k < 12; k++) {
				if (p[i + k] < '0' || p[i + k] > '9')
					return -1;
				code = code * 10 + (p[i + k] - '0');
			}
			if (code < 100 || code > 599 ||
			    (colon - i > 12 && p[i + 12] != ' '))
				return -1;
			a->status = code;
			first = 0;
		} else if (colon == i) {
			return (long)(eol + 1);
		} else {
			const uint8_t *c = memchr(p + i, ':', colon - i);
			size_t nlen;

			if (c == NULL)
				return -1;
			nlen = (size_t)(c - (p + i));
			if (caseq(p + i, nlen, "Proxy-Authenticate"))
				a->schemes |= challenge_schemes(
				    c + 1, colon - (size_t)(c + 1 - p));
		}
		i = eol + 1;
	}
}

void
proxy_schemes_text(unsigned schemes, char *out, size_t outlen)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	    {PROXYAUTH_BASIC, "Basic"},
	    {PROXYAUTH_NTLM, "NTLM"},
	    {PROXYAUTH_NEGOTIATE, "Negotiate"},
	    {PROXYAUTH_OTHER, "another scheme"},
	};
	size_t i, n = 0;
	int w;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(schemes & names[i].bit))
			continue;
		w = snprintf(out + n, outlen - n, "%s%s", n ? ", " : "",
		             names[i].name);
		if (w < 0 || (size_t)w >= outlen - n)
			return;
		n += (size_t)w;
	}
	if (n == 0)
		snprintf(out, outlen, "none");
}
