/*
 * intelnorm.c: see intelnorm.h. Everything here works on a bounded copy of
 * the input; nothing reads past n bytes or assumes a NUL.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <idn2.h>
#include <openssl/evp.h>

#include "buf.h"
#include "intelnorm.h"

static const char *const kind_names[INTEL_NKINDS] = {
    "any", "md5", "sha1", "sha256", "ip", "domain", "url"};

const char *
intel_kind_name(enum intel_kind k)
{
	return (unsigned)k < INTEL_NKINDS ? kind_names[k] : "?";
}

enum intel_kind
intel_kind_parse(const char *s)
{
	static const struct {
		const char *name;
		enum intel_kind k;
	} alias[] = {
	    {"any", INTEL_ANY},
	    {"md5", INTEL_MD5},
	    {"sha1", INTEL_SHA1},
	    {"sha-1", INTEL_SHA1},
	    {"sha256", INTEL_SHA256},
	    {"sha-256", INTEL_SHA256},
	    {"ip", INTEL_IP},
	    {"ipv4", INTEL_IP},
	    {"ipv6", INTEL_IP},
	    {"cidr", INTEL_IP},
	    {"ip-src", INTEL_IP},
	    {"ip-dst", INTEL_IP},
	    {"domain", INTEL_DOMAIN},
	    {"hostname", INTEL_DOMAIN},
	    {"domain-name", INTEL_DOMAIN},
	    {"url", INTEL_URL},
	    {"uri", INTEL_URL},
	};
	size_t i;

	if (s == NULL)
		return INTEL_NKINDS;
	for (i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcasecmp(s, alias[i].name) == 0)
			return alias[i].k;
	return INTEL_NKINDS;
}

static void
say(char *why, size_t whyn, const char *msg)
{
	if (whyn > 0)
		snprintf(why, whyn, "%s", msg);
}

/* Trims ASCII blanks off both ends of [*s, *s + *n). */
static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

int
intel_norm_hash(const char *s, size_t n, enum intel_kind want,
                struct intel_ind *out, char *why, size_t whyn)
{
	enum intel_kind k;
	size_t i;

	trim(&s, &n);
	switch (n) {
	case 32:
		k = INTEL_MD5;
		break;
	case 40:
		k = INTEL_SHA1;
		break;
	case 64:
		k = INTEL_SHA256;
		break;
	default:
		k = INTEL_NKINDS;
	}
	if (want != INTEL_ANY && k != want) {
		say(why, whyn,
		    want == INTEL_MD5    ? "not an MD5 (32 hex digits)"
		    : want == INTEL_SHA1 ? "not a SHA-1 (40 hex digits)"
		                         : "not a SHA-256 (64 hex digits)");
		return -1;
	}
	if (k == INTEL_NKINDS) {
		say(why, whyn, "not a hash (32, 40 or 64 hex digits)");
		return -1;
	}
	memset(out, 0, sizeof(*out) - sizeof(out->text));
	out->kind = k;
	out->key[0] = k == INTEL_MD5 ? 'm' : k == INTEL_SHA1 ? 's' : 'S';
	for (i = 0; i < n; i++) {
		int v = hex_value((unsigned char)s[i]);

		if (v < 0) {
			say(why, whyn,
			    "not a hash: a character is not a hex "
			    "digit");
			return -1;
		}
		out->text[i] = "0123456789abcdef"[v];
		if (i % 2 == 0)
			out->key[1 + i / 2] = (uint8_t)(v << 4);
		else
			out->key[1 + i / 2] |= (uint8_t)v;
	}
	out->text[n] = '\0';
	out->keylen = 1 + n / 2;
	return 0;
}

size_t
intel_ip_key(int family, const uint8_t addr[16], int prefix, uint8_t *out)
{
	int i;

	out[0] = 'i';
	out[1] = (uint8_t)family;
	memset(out + 2, 0, 16);
	for (i = 0; i < prefix / 8; i++)
		out[2 + i] = addr[i];
	if (prefix % 8)
		out[2 + i] = addr[i] & (uint8_t)(0xff << (8 - prefix % 8));
	out[18] = (uint8_t)prefix;
	return 19;
}

int
intel_norm_ip(const char *s, size_t n, struct intel_ind *out, char *why,
              size_t whyn)
{
	char tmp[64], txt[INET6_ADDRSTRLEN];
	const char *slash;
	long long p = -1;
	int fam, max;

	trim(&s, &n);
	if (n >= sizeof(tmp) || n == 0) {
		say(why, whyn, "not an IP address or CIDR range");
		return -1;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (memchr(tmp, '\0', n) != NULL) {
		say(why, whyn, "not an IP address or CIDR range");
		return -1;
	}
	if ((slash = strchr(tmp, '/')) != NULL) {
		if (str_to_ll(slash + 1, 0, 128, &p) == -1 ||
		    !isdigit((unsigned char)slash[1])) {
			say(why, whyn, "bad CIDR prefix length");
			return -1;
		}
		tmp[slash - tmp] = '\0';
	}
	memset(out, 0, sizeof(*out) - sizeof(out->text));
	if (inet_pton(AF_INET, tmp, out->addr) == 1) {
		fam = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
		                                   0, 0, 0, 0, 0xff, 0xff};
		fam = 6;
		max = 128;
		/* An IPv4-mapped address is the IPv4 address. */
		if (memcmp(out->addr, mapped, 12) == 0 && (p < 0 || p >= 96)) {
			memmove(out->addr, out->addr + 12, 4);
			memset(out->addr + 4, 0, 12);
			fam = 4;
			max = 32;
			if (p >= 0)
				p -= 96;
		}
	} else {
		say(why, whyn, "not an IP address or CIDR range");
		return -1;
	}
	if (p > max) {
		say(why, whyn, "CIDR prefix length too long for the address");
		return -1;
	}
	out->kind = INTEL_IP;
	out->family = fam;
	out->prefix = p < 0 ? max : (int)p;
	out->keylen = intel_ip_key(fam, out->addr, out->prefix, out->key);
	/* Host bits cleared: 10.1.2.3/8 is the range 10.0.0.0/8. */
	memcpy(out->addr, out->key + 2, 16);
	inet_ntop(fam == 4 ? AF_INET : AF_INET6, out->addr, txt, sizeof(txt));
	if (out->prefix == max)
		snprintf(out->text, sizeof(out->text), "%s", txt);
	else
		snprintf(out->text, sizeof(out->text), "%s/%d", txt,
		         out->prefix);
	return 0;
}

static int
looks_ipv4(const char *s)
{
	uint8_t a[4];

	return inet_pton(AF_INET, s, a) == 1;
}

/* Domain name into dst (size dstn): lowercase ASCII (IDNA), no trailing
 * dot, labels 1..63 of [a-z0-9_-], 253 at most. */
static int
domain_text(const char *s, size_t n, char *dst, size_t dstn, char *why,
            size_t whyn)
{
	char tmp[1024], *ascii = NULL;
	size_t i, len, lab = 0;
	int nonascii = 0;

	trim(&s, &n);
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(tmp)) {
		say(why, whyn, "not a domain name (empty or too long)");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '\0') {
			say(why, whyn, "not a domain name (NUL byte)");
			return -1;
		}
		if ((unsigned char)s[i] >= 0x80)
			nonascii = 1;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (nonascii) {
		if (idn2_to_ascii_8z(tmp, &ascii,
		                     IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
		    IDN2_OK) {
			say(why, whyn,
			    "not a domain name (IDNA conversion "
			    "failed)");
			return -1;
		}
		len = strlen(ascii);
		if (len >= sizeof(tmp)) {
			idn2_free(ascii);
			say(why, whyn, "not a domain name (too long)");
			return -1;
		}
		memcpy(tmp, ascii, len + 1);
		idn2_free(ascii);
	}
	len = strlen(tmp);
	if (len > 253 || len >= dstn) {
		say(why, whyn, "not a domain name (longer than 253)");
		return -1;
	}
	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)tmp[i];

		if (c == '.' || c == '\0') {
			if (lab == 0 || lab > 63) {
				say(why, whyn,
				    "not a domain name (a label is "
				    "empty or longer than 63)");
				return -1;
			}
			lab = 0;
			dst[i] = (char)c;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_') {
			say(why, whyn,
			    "not a domain name (a character "
			    "outside letters, digits, '-', '_')");
			return -1;
		}
		dst[i] = (char)tolower(c);
		lab++;
	}
	if (looks_ipv4(dst)) {
		say(why, whyn, "an IP address, not a domain name");
		return -1;
	}
	return 0;
}

int
intel_norm_domain(const char *s, size_t n, struct intel_ind *out, char *why,
                  size_t whyn)
{
	size_t len;

	memset(out, 0, sizeof(*out) - sizeof(out->text));
	if (domain_text(s, n, out->text, sizeof(out->text), why, whyn) == -1)
		return -1;
	len = strlen(out->text);
	out->kind = INTEL_DOMAIN;
	out->key[0] = 'd';
	memcpy(out->key + 1, out->text, len);
	out->keylen = 1 + len;
	return 0;
}

/* RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" */
static int
unreserved(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Characters that may stand unencoded in a path, query or fragment. */
static int
uri_char(int c)
{
	/* c != 0: strchr would find the terminator */
	return unreserved(c) ||
	       (c != 0 && strchr("!$&'()*+,;=:@/?", c) != NULL);
}

/*
 * Appends [p, p + n) with percent-encoding normalised (6.2.2.1, 6.2.2.2):
 * escapes of unreserved characters are decoded, the others get uppercase
 * hex digits; bytes that may not appear in a URI (blanks, controls,
 * non-ASCII, a '%' not followed by two hex digits) are encoded.
 */
static void
pct_norm(struct buf *b, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%' && i + 2 < n &&
		    hex_value((unsigned char)p[i + 1]) >= 0 &&
		    hex_value((unsigned char)p[i + 2]) >= 0) {
			int v = hex_value((unsigned char)p[i + 1]) * 16 +
			        hex_value((unsigned char)p[i + 2]);
			if (unreserved(v))
				buf_putc(b, v);
			else
				buf_printf(b, "%%%02X", v);
			i += 2;
		} else if (c != '%' && uri_char(c))
			buf_putc(b, c);
		else
			buf_printf(b, "%%%02X", c);
	}
}

/* RFC 3986 5.2.4 remove_dot_segments, of the NUL-terminated in. */
static void
remove_dots(const char *in, struct buf *out)
{
	size_t n = strlen(in);

	while (n > 0) {
		if (n >= 3 && strncmp(in, "../", 3) == 0) {
			in += 3;
			n -= 3;
		} else if (n >= 2 && strncmp(in, "./", 2) == 0) {
			in += 2;
			n -= 2;
		} else if (n >= 3 && strncmp(in, "/./", 3) == 0) {
			in += 2;
			n -= 2;
		} else if (n == 2 && strncmp(in, "/.", 2) == 0) {
			in = "/";
			n = 1;
		} else if ((n >= 4 && strncmp(in, "/../", 4) == 0) ||
		           (n == 3 && strncmp(in, "/..", 3) == 0)) {
			char *last;

			if (n == 3) {
				in = "/";
				n = 1;
			} else {
				in += 3;
				n -= 3;
			}
			last =
			    out->len ? memrchr(out->data, '/', out->len) : NULL;
			buf_setlen(
			    out, last ? (size_t)(last - (char *)out->data) : 0);
		} else if ((n == 1 && in[0] == '.') ||
		           (n == 2 && strncmp(in, "..", 2) == 0)) {
			n = 0;
		} else {
			size_t k = in[0] == '/' ? 1 : 0;

			while (k < n && in[k] != '/')
				k++;
			buf_append(out, in, k);
			in += k;
			n -= k;
		}
	}
}

static int
default_port(const char *scheme, long long port)
{
	static const struct {
		const char *s;
		long long p;
	} d[] = {{"http", 80}, {"https", 443}, {"ftp", 21},
	         {"ws", 80},   {"wss", 443},   {"gopher", 70}};
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (strcmp(scheme, d[i].s) == 0)
			return d[i].p == port;
	return 0;
}

int
intel_norm_url(const char *s, size_t n, struct intel_ind *out, char *why,
               size_t whyn)
{
	char scheme[32], host[300];
	struct buf b, path;
	const char *p, *end, *auth, *aend, *at, *hp, *hend, *colon;
	long long port = -1;
	size_t i, sl, alen;
	unsigned char md[32];
	unsigned int mdlen;
	int rc = -1;

	trim(&s, &n);
	buf_init(&b, INTEL_TEXT_MAX);
	buf_init(&path, INTEL_TEXT_MAX);
	memset(out, 0, sizeof(*out) - sizeof(out->text));
	end = s + n;
	for (sl = 0; sl < n && s[sl] != ':'; sl++)
		if (!(isalpha((unsigned char)s[sl]) ||
		      (sl > 0 &&
		       (isdigit((unsigned char)s[sl]) ||
		        (s[sl] != '\0' && strchr("+-.", s[sl]) != NULL))))) {
			sl = n;
			break;
		}
	if (sl == 0 || sl >= n || sl >= sizeof(scheme) || n - sl < 3 ||
	    strncmp(s + sl, "://", 3) != 0) {
		say(why, whyn, "not a URL (no scheme://)");
		goto out;
	}
	for (i = 0; i < sl; i++)
		scheme[i] = (char)tolower((unsigned char)s[i]);
	scheme[sl] = '\0';
	auth = s + sl + 3;
	for (aend = auth;
	     aend < end && *aend != '/' && *aend != '?' && *aend != '#'; aend++)
		;
	alen = (size_t)(aend - auth);
	at = NULL;
	for (p = auth; p < aend; p++)
		if (*p == '@')
			at = p;
	hp = at ? at + 1 : auth;
	/* host, [IPv6], then :port */
	if (hp < aend && *hp == '[') {
		hend = memchr(hp, ']', alen - (size_t)(hp - auth));
		if (hend == NULL) {
			say(why, whyn, "not a URL (unclosed '[' in the host)");
			goto out;
		}
		colon = hend + 1 < aend ? hend + 1 : NULL;
		if (colon != NULL && *colon != ':') {
			say(why, whyn, "not a URL (junk after ']')");
			goto out;
		}
		hend++;
	} else {
		colon = memchr(hp, ':', (size_t)(aend - hp));
		hend = colon ? colon : aend;
	}
	if (colon != NULL && colon + 1 < aend) {
		struct strv pv =
		    strv_make(colon + 1, (size_t)(aend - colon - 1));

		if (strv_to_ll(pv, 0, 65535, &port) == -1) {
			say(why, whyn, "not a URL (bad port)");
			goto out;
		}
	}
	if (hend == hp) {
		say(why, whyn, "not a URL (no host)");
		goto out;
	}
	if (*hp == '[') {
		struct intel_ind ip;

		if (intel_norm_ip(hp + 1, (size_t)(hend - hp - 2), &ip, why,
		                  whyn) == -1 ||
		    ip.family != 6 || ip.prefix != 128) {
			say(why, whyn, "not a URL (bad IPv6 host)");
			goto out;
		}
		snprintf(host, sizeof(host), "[%.64s]", ip.text);
	} else {
		char tmp[300];
		size_t hl = (size_t)(hend - hp);
		struct intel_ind ip;

		if (hl >= sizeof(tmp)) {
			say(why, whyn, "not a URL (host too long)");
			goto out;
		}
		memcpy(tmp, hp, hl);
		tmp[hl] = '\0';
		if (intel_norm_ip(tmp, hl, &ip, NULL, 0) == 0 &&
		    ip.family == 4 && ip.prefix == 32 && !strchr(tmp, '/'))
			snprintf(host, sizeof(host), "%.64s", ip.text);
		else if (domain_text(tmp, hl, host, sizeof(host), why, whyn) ==
		         -1) {
			char w[200];

			snprintf(w, sizeof(w), "not a URL (host: %s)",
			         whyn ? why : "bad");
			say(why, whyn, w);
			goto out;
		}
	}
	buf_puts(&b, scheme);
	buf_puts(&b, "://");
	if (at != NULL) {
		pct_norm(&b, auth, (size_t)(at - auth));
		buf_putc(&b, '@');
	}
	buf_puts(&b, host);
	if (port >= 0 && !default_port(scheme, port))
		buf_printf(&b, ":%lld", port);
	/* path: up to '?' or '#' */
	for (p = aend; p < end && *p != '?' && *p != '#'; p++)
		;
	{
		struct buf raw;

		buf_init(&raw, INTEL_TEXT_MAX);
		pct_norm(&raw, aend, (size_t)(p - aend));
		if (buf_ok(&raw) == -1) {
			buf_free(&raw);
			say(why, whyn, "not a URL (too long)");
			goto out;
		}
		remove_dots(buf_cstr(&raw), &path);
		buf_free(&raw);
	}
	if (path.len == 0)
		buf_putc(&b, '/');
	else
		buf_append(&b, path.data, path.len);
	if (p < end && *p == '?') {
		const char *q = p;

		while (p < end && *p != '#')
			p++;
		pct_norm(&b, q, (size_t)(p - q));
	}
	/* The fragment is never sent to a server: left out. */
	if (buf_ok(&b) == -1 || b.len > INTEL_TEXT_MAX) {
		say(why, whyn, "not a URL (longer than 2048 when normalised)");
		goto out;
	}
	memcpy(out->text, b.data, b.len);
	out->text[b.len] = '\0';
	out->kind = INTEL_URL;
	out->key[0] = 'u';
	EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out->key + 1, md, 32);
	out->keylen = 33;
	rc = 0;
out:
	buf_free(&b);
	buf_free(&path);
	return rc;
}

static int
all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (hex_value((unsigned char)s[i]) < 0)
			return 0;
	return 1;
}

int
intel_parse(enum intel_kind k, const char *s, size_t n, struct intel_ind *out,
            char *why, size_t whyn)
{
	const char *t = s;
	size_t tn = n;
	uint8_t dummy[16];
	char tmp[64];

	switch (k) {
	case INTEL_MD5:
	case INTEL_SHA1:
	case INTEL_SHA256:
		return intel_norm_hash(s, n, k, out, why, whyn);
	case INTEL_IP:
		return intel_norm_ip(s, n, out, why, whyn);
	case INTEL_DOMAIN:
		return intel_norm_domain(s, n, out, why, whyn);
	case INTEL_URL:
		return intel_norm_url(s, n, out, why, whyn);
	case INTEL_ANY:
		break;
	default:
		say(why, whyn, "unknown indicator type");
		return -1;
	}
	trim(&t, &tn);
	if ((tn == 32 || tn == 40 || tn == 64) && all_hex(t, tn))
		return intel_norm_hash(t, tn, INTEL_ANY, out, why, whyn);
	if (tn < sizeof(tmp)) {
		const char *sl;

		memcpy(tmp, t, tn);
		tmp[tn] = '\0';
		if ((sl = strchr(tmp, '/')) != NULL)
			tmp[sl - tmp] = '\0';
		if (inet_pton(AF_INET, tmp, dummy) == 1 ||
		    inet_pton(AF_INET6, tmp, dummy) == 1)
			return intel_norm_ip(t, tn, out, why, whyn);
	}
	if (tn > 3 && memmem(t, tn, "://", 3) != NULL)
		return intel_norm_url(t, tn, out, why, whyn);
	if (intel_norm_domain(t, tn, out, why, whyn) == 0)
		return 0;
	say(why, whyn,
	    "not an indicator (no hash, address, range, domain "
	    "or URL)");
	return -1;
}
