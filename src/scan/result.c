/*
 * result: what a scan found, how it is scored and how it is rendered.
 *
 * Scores combine like independent probabilities, 100 * (1 - prod(1 -
 * s_i / 100)): one finding keeps its score, two warnings (60 + 60) make an
 * alert (84), and no pile of weak findings ever passes 100. Levels follow
 * from the combined score and the context's thresholds.
 *
 * The JSON here is neutral and lossless; vigil-scand maps it onto THOR
 * Thunderstorm's format and the agent onto its events. Paths and matched
 * bytes are not text: anything that is not valid UTF-8 (paths) or not
 * printable ASCII (matched data) is written as \xNN, and a backslash as
 * \\, so the rendering is unambiguous and always valid JSON.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "scan.h"

enum scan_level
scan_level_of(int score, const struct scan_opts *o)
{
	if (score <= 0)
		return SCAN_LEVEL_NONE;
	if (score >= o->alert)
		return SCAN_LEVEL_ALERT;
	if (score >= o->warning)
		return SCAN_LEVEL_WARNING;
	if (score >= o->notice)
		return SCAN_LEVEL_NOTICE;
	return SCAN_LEVEL_INFO;
}

const char *
scan_level_name(enum scan_level l)
{
	switch (l) {
	case SCAN_LEVEL_NONE:
		return "none";
	case SCAN_LEVEL_INFO:
		return "info";
	case SCAN_LEVEL_NOTICE:
		return "notice";
	case SCAN_LEVEL_WARNING:
		return "warning";
	case SCAN_LEVEL_ALERT:
		return "alert";
	}
	return "none";
}

const char *
scan_kind_name(enum scan_kind k)
{
	switch (k) {
	case SCAN_KIND_YARA:
		return "YARA Rule";
	case SCAN_KIND_HASH:
		return "Hash IOC";
	case SCAN_KIND_FILENAME:
		return "Filename IOC";
	}
	return "?";
}

int
scan_score_combine(const int *scores, size_t n)
{
	double keep = 1.0, v;
	size_t i;

	for (i = 0; i < n; i++) {
		int s = scores[i] < 0 ? 0 : scores[i] > 100 ? 100 : scores[i];

		keep *= 1.0 - s / 100.0;
	}
	v = 100.0 * (1.0 - keep) + 0.5; /* rounded; libm is not linked */
	return v < 0 ? 0 : v > 100 ? 100 : (int)v;
}

static void
finding_free(struct scan_finding *f)
{
	size_t i;

	free(f->rule);
	free(f->description);
	free(f->reference);
	free(f->author);
	free(f->source);
	for (i = 0; i < f->ntags; i++)
		free(f->tags[i]);
	free(f->tags);
	for (i = 0; i < f->nmeta; i++) {
		free(f->meta[i].key);
		free(f->meta[i].value);
	}
	free(f->meta);
	for (i = 0; i < f->nmatched; i++) {
		free(f->matched[i].identifier);
		free(f->matched[i].data);
	}
	free(f->matched);
}

void
scan_result_free(struct scan_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nfindings; i++)
		finding_free(&r->findings[i]);
	free(r->findings);
	free(r->path);
	free(r->extension);
	memset(r, 0, sizeof(*r));
	r->magic = "";
}

void
scan_first_bytes_hex(const struct scan_result *r, char *out)
{
	hex_encode(r->first, r->nfirst, out);
}

void
scan_first_bytes_ascii(const struct scan_result *r, char *out)
{
	size_t i;

	for (i = 0; i < r->nfirst; i++)
		out[i] = r->first[i] >= 0x20 && r->first[i] < 0x7f
		             ? (char)r->first[i]
		             : '.';
	out[i] = '\0';
}

/* ---- JSON ------------------------------------------------------------- */

static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	size_t need, k;
	uint32_t cp, min;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		need = 1, cp = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		need = 2, cp = p[0] & 0x0f, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		need = 3, cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (n <= need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

#define JB_TEXT    0x01 /* keep valid UTF-8 sequences */
#define JB_KEEP_BS 0x02 /* a backslash stays one (rule text) */

/*
 * A JSON string of bytes: valid UTF-8 sequences are kept with JB_TEXT,
 * printable ASCII always, everything else escaped as \xNN, and the
 * backslash doubled unless JB_KEEP_BS.
 */
static json_t *
jbytes(const uint8_t *p, size_t n, int mode)
{
	int text = mode & JB_TEXT, keep_bs = mode & JB_KEEP_BS;
	struct buf b;
	json_t *j = NULL;
	size_t i = 0, k;
	int clean = 1;

	if (p == NULL)
		return json_string("");
	if (text) {
		for (i = 0; i < n && clean; i += k)
			if ((k = utf8_seq(p + i, n - i)) == 0 || p[i] < 0x20 ||
			    p[i] == 0x7f || (p[i] == '\\' && !keep_bs))
				clean = 0;
		if (clean)
			return json_stringn((const char *)p, n);
	}
	buf_init(&b, 4 * n + 16);
	for (i = 0; i < n; i += k) {
		k = 1;
		if (p[i] == '\\' && !keep_bs) {
			if (buf_puts(&b, "\\\\") == -1)
				goto done;
		} else if (p[i] >= 0x20 && p[i] < 0x7f) {
			if (buf_putc(&b, p[i]) == -1)
				goto done;
		} else if (text && p[i] >= 0x80 &&
		           (k = utf8_seq(p + i, n - i)) > 1) {
			if (buf_append(&b, p + i, k) == -1)
				goto done;
		} else {
			k = 1;
			if (buf_printf(&b, "\\x%02x", p[i]) == -1)
				goto done;
		}
	}
	j = json_stringn(buf_cstr(&b), b.len);
done:
	buf_free(&b);
	return j;
}

static json_t *
jtext(const char *s)
{
	return s != NULL ? jbytes((const uint8_t *)s, strlen(s), JB_TEXT)
	                 : json_null();
}

/*
 * Text from a rule file (rule names, a filename IOC's regex, meta): kept
 * as written, backslashes included, so "\\Temp\\x" is not doubled twice;
 * only bytes that are not valid UTF-8 are escaped.
 */
static json_t *
jrule(const char *s)
{
	return s != NULL
	           ? jbytes((const uint8_t *)s, strlen(s), JB_TEXT | JB_KEEP_BS)
	           : json_null();
}

json_t *
scan_json_text(const char *s)
{
	return jtext(s);
}

static json_t *
jtime(const struct timespec *ts)
{
	struct tm tm;
	char out[32];
	time_t t = ts->tv_sec;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(out);
}

/* json_object_set_new that remembers a failure instead of losing it. */
static void
jset(json_t *o, const char *k, json_t *v, int *bad)
{
	if (o == NULL)
		json_decref(v);
	if (v == NULL || o == NULL || json_object_set_new(o, k, v) == -1)
		*bad = 1;
}

static void
jpush(json_t *a, json_t *v, int *bad)
{
	if (a == NULL)
		json_decref(v);
	if (v == NULL || a == NULL || json_array_append_new(a, v) == -1)
		*bad = 1;
}

static json_t *
subject_json(const struct scan_result *r, int *bad)
{
	json_t *s = json_object(), *h = json_object(), *fb = json_object();
	char hex[2 * SCAN_FIRST_BYTES + 1], ascii[SCAN_FIRST_BYTES + 1];

	jset(s, "path", jtext(r->path), bad);
	jset(s, "exists", json_boolean(r->exists), bad);
	jset(s, "extension", jtext(r->extension), bad);
	jset(s, "magic_header", json_string(r->magic), bad);
	if (r->hashes & SCAN_HASH_MD5)
		jset(h, "md5", json_string(r->md5), bad);
	if (r->hashes & SCAN_HASH_SHA1)
		jset(h, "sha1", json_string(r->sha1), bad);
	if (r->hashes & SCAN_HASH_SHA256)
		jset(h, "sha256", json_string(r->sha256), bad);
	jset(s, "hashes", h, bad);
	scan_first_bytes_hex(r, hex);
	scan_first_bytes_ascii(r, ascii);
	jset(fb, "hex", json_string(hex), bad);
	jset(fb, "ascii", json_string(ascii), bad);
	jset(s, "first_bytes", fb, bad);
	jset(s, "size", json_integer((json_int_t)r->size), bad);
	if (r->exists) {
		jset(s, "modified", jtime(&r->mtime), bad);
		jset(s, "changed", jtime(&r->ctime), bad);
		jset(s, "accessed", jtime(&r->atime), bad);
	}
	return s;
}

static json_t *
reason_json(const struct scan_finding *f, int *bad)
{
	json_t *o = json_object(), *sig = json_object(), *tags = json_array(),
	       *meta = json_object(), *m = json_array();
	struct buf sum;
	size_t i;

	buf_init(&sum, 4096);
	(void)buf_printf(&sum, "%s %s", scan_kind_name(f->kind),
	                 f->rule != NULL ? f->rule : "");
	if (f->description != NULL)
		(void)buf_printf(&sum, ": %s", f->description);
	jset(o, "summary", jrule(buf_cstr(&sum)), bad);
	buf_free(&sum);

	jset(sig, "score", json_integer(f->score), bad);
	jset(sig, "kind", json_string(scan_kind_name(f->kind)), bad);
	jset(sig, "rule_name", jrule(f->rule), bad);
	for (i = 0; i < f->ntags; i++)
		jpush(tags, jrule(f->tags[i]), bad);
	jset(sig, "tags", tags, bad);
	jset(sig, "description", jrule(f->description), bad);
	jset(sig, "reference", jrule(f->reference), bad);
	jset(sig, "author", jrule(f->author), bad);
	if (f->source != NULL)
		jset(sig, "source", jtext(f->source), bad);
	for (i = 0; i < f->nmeta; i++)
		if (f->meta[i].key != NULL)
			jset(meta, f->meta[i].key, jrule(f->meta[i].value),
			     bad);
	jset(sig, "meta", meta, bad);
	jset(o, "signature", sig, bad);

	for (i = 0; i < f->nmatched; i++) {
		const struct scan_string *s = &f->matched[i];
		json_t *e = json_object();
		char *hex = malloc(2 * s->len + 1);

		jset(e, "data", jbytes(s->data, s->len, 0), bad);
		if (hex != NULL) {
			hex_encode(s->data != NULL ? s->data
			                           : (const uint8_t *)"",
			           s->data != NULL ? s->len : 0, hex);
			jset(e, "hex", json_string(hex), bad);
			free(hex);
		} else
			*bad = 1;
		jset(e, "offset", json_integer((json_int_t)s->offset), bad);
		jset(e, "length", json_integer((json_int_t)s->match_len), bad);
		jset(e, "field", json_string(s->field), bad);
		if (s->identifier != NULL)
			jset(e, "identifier", jtext(s->identifier), bad);
		jpush(m, e, bad);
	}
	jset(o, "matched", m, bad);
	if (f->more_matches)
		jset(o, "matched_truncated", json_true(), bad);
	return o;
}

json_t *
scan_result_to_json(const struct scan_result *r)
{
	json_t *o = json_object(), *reasons = json_array(),
	       *flags = json_array();
	size_t i;
	int bad = 0;

	jset(o, "type", json_string("file"), &bad);
	jset(o, "subject", subject_json(r, &bad), &bad);
	jset(o, "score", json_integer(r->score), &bad);
	jset(o, "level", json_string(scan_level_name(r->level)), &bad);
	for (i = 0; i < r->nfindings; i++)
		jpush(reasons, reason_json(&r->findings[i], &bad), &bad);
	jset(o, "reasons", reasons, &bad);
	jset(o, "ruleset_version",
	     r->version != NULL ? json_string(r->version) : json_null(), &bad);
	jset(o, "scanned_bytes", json_integer((json_int_t)r->scanned), &bad);
	if (r->flags & SCAN_RES_NOT_READ)
		jpush(flags, json_string("not_read"), &bad);
	if (r->flags & SCAN_RES_CHANGED)
		jpush(flags, json_string("changed"), &bad);
	if (r->flags & SCAN_RES_TRUNCATED)
		jpush(flags, json_string("truncated"), &bad);
	if (r->flags & SCAN_RES_YARA_ERR) {
		jpush(flags, json_string("yara_error"), &bad);
		jset(o, "yara_error", json_integer(r->yara_error), &bad);
	}
	jset(o, "flags", flags, &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
