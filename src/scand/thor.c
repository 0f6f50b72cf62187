/*
 * thor.c: a sample's findings as THOR writes them, in its JSON log format
 * version 3 ("THOR finding" objects, as Nextron's jsonlog library defines
 * and parses them), rendered from the scan engine's neutral result
 * (scan_result_to_json). Clients written for THOR Thunderstorm parse what
 * comes out of here, so it follows THOR field for field:
 *
 *   - subject: a "file" with exists "yes" (it exists on the sending host),
 *     magic_header "UNKNOWN" when not recognised, first_bytes.ascii the
 *     printable bytes only, permissions null, and "content" as "sparse
 *     data" holding the matched strings, so that
 *   - every matched[].field is a JSON pointer that resolves inside the
 *     subject ("/content", "/path", "/hashes/md5"): jsonlog resolves each
 *     one and refuses an event where one does not;
 *   - signature: reference a list of strings (a rule's reference meta,
 *     split at commas), origin "custom" unless the rule's meta says
 *     "internal" or "external", date from the meta (modified, else date),
 *     empty fields left out as THOR leaves them out;
 *   - matched data as THOR renders bytes: printable text as it is, else
 *     UTF-16 text when the bytes decode to printable text, else one code
 *     point per byte (U+0000..U+00FF);
 *   - context present and null (a sample has no parent objects here).
 *
 * Where Vigil cannot be THOR (no process memory, no archives unpacked, no
 * PE details) docs/scand.md lists the difference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scand.h"

#define THOR_MODULE "HTTPServer"

static int
thor_printable(uint32_t c)
{
	return (c >= 0x20 && c <= 0x7e) || c == '\r' || c == '\n' || c == '\t';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The bytes behind a hex string (the neutral result's "hex"); NULL when it
 * is not hex or out of memory. */
static uint8_t *
thor_unhex(const char *hex, size_t *n)
{
	size_t len = hex != NULL ? strlen(hex) : 0, i;
	uint8_t *p;
	int hi, lo;

	*n = 0;
	if (hex == NULL || len % 2 != 0 || (p = malloc(len / 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len / 2; i++) {
		if ((hi = hexval(hex[2 * i])) < 0 ||
		    (lo = hexval(hex[2 * i + 1])) < 0) {
			free(p);
			return NULL;
		}
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = len / 2;
	return p;
}

/* One code point per byte, U+0000..U+00FF: how THOR writes bytes that are
 * not text (its InvalidUnicodeString). */
json_t *
thor_bytes_json(const uint8_t *p, size_t n)
{
	char *s, *o;
	size_t i;
	json_t *j;

	if ((s = malloc(2 * n + 1)) == NULL)
		return NULL;
	for (o = s, i = 0; i < n; i++) {
		if (p[i] < 0x80) {
			*o++ = (char)p[i];
		} else {
			*o++ = (char)(0xc0 | p[i] >> 6);
			*o++ = (char)(0x80 | (p[i] & 0x3f));
		}
	}
	j = json_stringn(s, (size_t)(o - s));
	free(s);
	return j;
}

/*
 * A matched string as THOR renders it (its MatchData): printable ASCII
 * (with CR, LF, tab) as it is; otherwise, when the bytes read as UTF-16LE
 * (after a byte order mark, or shifted by a leading NUL) give printable
 * ASCII, that text; otherwise one code point per byte.
 */
json_t *
thor_match_json(const uint8_t *p, size_t n)
{
	const uint8_t *u = p;
	size_t un = n, i, k;
	char *s;
	json_t *j;
	int ok = 1;

	for (i = 0; i < n && ok; i++)
		ok = thor_printable(p[i]);
	if (ok)
		return json_stringn((const char *)p, n);
	if (un > 1 && u[0] == 0xff && u[1] == 0xfe)
		u += 2, un -= 2;
	if (un > 0 && u[0] == 0)
		u++, un--;
	un -= un % 2;
	if (un > 0 && (s = malloc(un / 2 + 1)) != NULL) {
		for (ok = 1, i = k = 0; i < un && ok; i += 2) {
			uint32_t c = (uint32_t)u[i] | (uint32_t)u[i + 1] << 8;

			if ((ok = thor_printable(c)))
				s[k++] = (char)c;
		}
		j = ok ? json_stringn(s, k) : NULL;
		free(s);
		if (j != NULL)
			return j;
	}
	return thor_bytes_json(p, n);
}

/* The neutral result's matched field as a JSON pointer into the subject. */
const char *
thor_field_pointer(const char *field)
{
	static const char *const map[][2] = {
	    {"content", "/content"},      {"path", "/path"},
	    {"md5", "/hashes/md5"},       {"sha1", "/hashes/sha1"},
	    {"sha256", "/hashes/sha256"},
	};
	size_t i;

	for (i = 0; field != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(field, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* A reference meta as THOR's list: split at commas, trimmed, empties
 * dropped. NULL (leave the field out) when nothing is left. */
json_t *
thor_reference_json(const char *ref)
{
	json_t *a;
	const char *s, *e, *c;

	if (ref == NULL || (a = json_array()) == NULL)
		return NULL;
	for (s = ref; *s != '\0'; s = *c == ',' ? c + 1 : c) {
		c = strchr(s, ',');
		if (c == NULL)
			c = s + strlen(s);
		e = c;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s && json_array_append_new(
		                 a, json_stringn(s, (size_t)(e - s))) == -1) {
			json_decref(a);
			return NULL;
		}
	}
	if (json_array_size(a) == 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static const char *
thor_level(const char *lvl)
{
	if (lvl == NULL)
		return "Info";
	if (strcmp(lvl, "alert") == 0)
		return "Alert";
	if (strcmp(lvl, "warning") == 0)
		return "Warning";
	if (strcmp(lvl, "notice") == 0)
		return "Notice";
	return "Info";
}

static const char *
thor_message(const char *level)
{
	if (strcmp(level, "Alert") == 0)
		return "Malicious file found";
	if (strcmp(level, "Warning") == 0)
		return "Suspicious file found";
	if (strcmp(level, "Notice") == 0)
		return "Possibly suspicious file found";
	return "Informational file finding";
}

/* json_object_set_new that remembers a failure. (jansson's *_new calls
 * take the value's reference even when they fail, and a NULL container
 * or value is a failure there too.) */
static void
tset(json_t *o, const char *k, json_t *v, int *bad)
{
	if (v == NULL || o == NULL || json_object_set_new(o, k, v) == -1) {
		if (o == NULL)
			json_decref(v);
		*bad = 1;
	}
}

/* A string member copied when it is a non-empty string (THOR leaves empty
 * ones out). */
static void
tcopy_str(json_t *dst, const char *k, json_t *v, int *bad)
{
	const char *s = json_string_value(v);

	if (s != NULL && s[0] != '\0')
		tset(dst, k, json_copy(v), bad);
}

struct thor_elem {
	unsigned long long off;
	uint8_t *data;
	size_t len;
};

static int
thor_elem_cmp(const void *a, const void *b)
{
	const struct thor_elem *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* subject.content: the matched content strings as THOR's "sparse data",
 * ordered by offset and apart (an overlapping one is left out). NULL when
 * nothing matched the content. */
static json_t *
thor_content(json_t *reasons, json_int_t size, int *bad)
{
	struct thor_elem *el = NULL, *t;
	size_t n = 0, cap = 0, i, k;
	unsigned long long end = 0;
	json_t *r, *m, *c = NULL, *els;

	json_array_foreach(reasons, i, r)
	{
		json_array_foreach(json_object_get(r, "matched"), k, m)
		{
			const char *f =
			    json_string_value(json_object_get(m, "field"));

			if (f == NULL || strcmp(f, "content") != 0)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 8;
				if ((t = realloc(el, cap * sizeof(*el))) ==
				    NULL) {
					*bad = 1;
					goto out;
				}
				el = t;
			}
			el[n].off = (unsigned long long)json_integer_value(
			    json_object_get(m, "offset"));
			el[n].data = thor_unhex(
			    json_string_value(json_object_get(m, "hex")),
			    &el[n].len);
			if (el[n].data == NULL) {
				*bad = 1;
				goto out;
			}
			n++;
		}
	}
	if (n == 0)
		goto out;
	qsort(el, n, sizeof(*el), thor_elem_cmp);
	c = json_object();
	els = json_array();
	for (i = 0; i < n; i++) {
		json_t *e;

		if (i > 0 && el[i].off < end)
			continue;
		end = el[i].off + el[i].len;
		e = json_object();
		tset(e, "offset", json_integer((json_int_t)el[i].off), bad);
		tset(e, "data", thor_bytes_json(el[i].data, el[i].len), bad);
		if (json_array_append_new(els, e) == -1)
			*bad = 1;
	}
	tset(c, "type", json_string("sparse data"), bad);
	tset(c, "elements", els, bad);
	tset(c, "length", json_integer(size), bad);
out:
	for (i = 0; i < n; i++)
		free(el[i].data);
	free(el);
	return c;
}

static json_t *
thor_subject(json_t *s, json_t *path, json_t *reasons, int *bad)
{
	json_t *o = json_object(), *fb = json_object(), *c;
	const char *magic =
	    json_string_value(json_object_get(s, "magic_header"));
	const char *hex = json_string_value(
	    json_object_get(json_object_get(s, "first_bytes"), "hex"));
	json_int_t size = json_integer_value(json_object_get(s, "size"));
	uint8_t *fbytes;
	size_t n, i, k;
	char ascii[64];

	tset(o, "type", json_string("file"), bad);
	tset(o, "path", path, bad);
	tset(o, "exists", json_string("yes"), bad); /* on the sending host */
	tset(
	    o, "extension",
	    json_string(json_string_value(json_object_get(s, "extension"))
	                    ? json_string_value(json_object_get(s, "extension"))
	                    : ""),
	    bad);
	tset(o, "magic_header",
	     json_string(magic != NULL && magic[0] != '\0' ? magic : "UNKNOWN"),
	     bad);
	if (json_is_object(json_object_get(s, "hashes")))
		tset(o, "hashes", json_deep_copy(json_object_get(s, "hashes")),
		     bad);
	/* THOR's ascii keeps the printable bytes only. */
	fbytes = thor_unhex(hex != NULL ? hex : "", &n);
	for (i = k = 0; fbytes != NULL && i < n && k + 1 < sizeof(ascii); i++)
		if (fbytes[i] >= 0x20 && fbytes[i] <= 0x7e)
			ascii[k++] = (char)fbytes[i];
	ascii[k] = '\0';
	free(fbytes);
	tset(fb, "hex", json_string(hex != NULL ? hex : ""), bad);
	tset(fb, "ascii", json_string(ascii), bad);
	tset(o, "first_bytes", fb, bad);
	tset(o, "size", json_integer(size), bad);
	tset(o, "permissions", json_null(), bad);
	if ((c = thor_content(reasons, size, bad)) != NULL)
		tset(o, "content", c, bad);
	return o;
}

static json_t *
thor_signature(json_t *src, int *bad)
{
	json_t *sig = json_object(), *meta = json_object_get(src, "meta"), *v;
	const char *origin = json_string_value(json_object_get(meta, "origin"));
	const char *date = json_string_value(json_object_get(meta, "modified"));

	tset(sig, "score", json_copy(json_object_get(src, "score")), bad);
	if ((v = thor_reference_json(
	         json_string_value(json_object_get(src, "reference")))) != NULL)
		tset(sig, "reference", v, bad);
	/* Vigil's rules are the operator's: "custom", unless the rule says
	 * where it came from in THOR's terms. */
	if (origin == NULL || (strcmp(origin, "internal") != 0 &&
	                       strcmp(origin, "external") != 0))
		origin = "custom";
	tset(sig, "origin", json_string(origin), bad);
	tset(sig, "kind", json_copy(json_object_get(src, "kind")), bad);
	if (date == NULL || date[0] == '\0')
		date = json_string_value(json_object_get(meta, "date"));
	if (date != NULL && date[0] != '\0')
		tset(sig, "date", json_string(date), bad);
	if (json_array_size(json_object_get(src, "tags")) > 0)
		tset(sig, "tags", json_deep_copy(json_object_get(src, "tags")),
		     bad);
	tcopy_str(sig, "rule_name", json_object_get(src, "rule_name"), bad);
	tcopy_str(sig, "description", json_object_get(src, "description"), bad);
	tcopy_str(sig, "author", json_object_get(src, "author"), bad);
	return sig;
}

static json_t *
thor_matched(json_t *src, int *bad)
{
	json_t *ms = json_array(), *m, *e, *data;
	const char *ptr;
	uint8_t *p;
	size_t k, n;

	json_array_foreach(src, k, m)
	{
		e = json_object();
		p = thor_unhex(json_string_value(json_object_get(m, "hex")),
		               &n);
		/* Without hex (never from this engine), the data as it is. */
		data = p != NULL ? thor_match_json(p, n)
		                 : json_copy(json_object_get(m, "data"));
		free(p);
		tset(e, "data", data, bad);
		tset(e, "offset", json_copy(json_object_get(m, "offset")), bad);
		ptr = thor_field_pointer(
		    json_string_value(json_object_get(m, "field")));
		if (ptr != NULL)
			tset(e, "field", json_string(ptr), bad);
		if (json_array_append_new(ms, e) == -1)
			*bad = 1;
	}
	return ms;
}

/*
 * The Thunderstorm answer for one sample from the engine's neutral JSON:
 * [] when nothing matched, else one "THOR finding". name is this request's
 * path for the sample, source its hostname, id its scan id. NULL when out
 * of memory.
 */
json_t *
thor_render(json_t *o, const char *name, const char *source, long long id)
{
	json_t *out = json_array(), *f, *reasons, *r, *rs, *meta, *reason,
	       *path;
	const char *level;
	char ts[32], scan_id[32];
	struct tm tm;
	time_t now = time(NULL);
	size_t i;
	int bad = 0;

	reasons = json_object_get(o, "reasons");
	if (out == NULL || json_array_size(reasons) == 0)
		return out;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(scan_id, sizeof(scan_id), "%lld", id);
	level = thor_level(json_string_value(json_object_get(o, "level")));
	/* The path is always this request's (a cached result carries an
	 * earlier client's): as sent when it is valid UTF-8, else escaped
	 * as the engine escapes names. */
	if ((path = json_string(name)) == NULL &&
	    (path = scan_json_text(name)) == NULL)
		goto fail;

	f = json_object();
	meta = json_object();
	tset(f, "type", json_string("THOR finding"), &bad);
	tset(meta, "time", json_string(ts), &bad);
	tset(meta, "level", json_string(level), &bad);
	tset(meta, "module", json_string(THOR_MODULE), &bad);
	tset(meta, "scan_id", json_string(scan_id), &bad);
	tset(meta, "hostname", json_string(source), &bad);
	tset(f, "meta", meta, &bad);
	tset(f, "message", json_string(thor_message(level)), &bad);
	tset(f, "subject",
	     thor_subject(json_object_get(o, "subject"), path, reasons, &bad),
	     &bad);
	tset(f, "score", json_copy(json_object_get(o, "score")), &bad);
	rs = json_array();
	json_array_foreach(reasons, i, r)
	{
		reason = json_object();
		tset(reason, "type", json_string("reason"), &bad);
		tset(reason, "summary",
		     json_copy(json_object_get(r, "summary")), &bad);
		tset(reason, "signature",
		     thor_signature(json_object_get(r, "signature"), &bad),
		     &bad);
		tset(reason, "matched",
		     thor_matched(json_object_get(r, "matched"), &bad), &bad);
		if (json_array_append_new(rs, reason) == -1)
			bad = 1;
	}
	tset(f, "reasons", rs, &bad);
	tset(f, "reason_count", json_integer((json_int_t)json_array_size(rs)),
	     &bad);
	tset(f, "context", json_null(), &bad);
	tset(f, "log_version", json_string("v3.0.0"), &bad);
	if (json_array_append_new(out, f) == -1)
		bad = 1;
	if (!bad)
		return out;
fail:
	json_decref(out);
	return NULL;
}
