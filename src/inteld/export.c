/*
 * export.c: a feed's indicators out of vigil-inteld, as CSV (the columns
 * the CSV importer reads, so an export imports back as the same entries)
 * or as a STIX 2.1 bundle (one indicator object per entry, its pattern
 * one comparison the STIX importer holds). GET
 * /api/v1/feeds/NAME/export?format=csv|stix streams the answer: the walk
 * keeps a read snapshot of its own (istore_iter) and writes a slice of
 * entries a turn of the event loop while the client keeps up, so a feed
 * of millions is never built whole in memory and lookups go on between
 * slices. docs/inteld.md, "Export".
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "inteld.h"

#define EXPORT_SLICE  2000      /* entries a turn of the loop */
#define EXPORT_HIGH   (1 << 20) /* bytes queued: wait for the client */
#define EXPORT_QUEUED (64u << 20)

struct export
{
	struct http_stream *st;
	struct iiter *it;
	struct event *ev;
	int stix;
	long long n;
	char feed[80];
	struct buf out;
};

static void
export_free(struct export *x)
{
	if (x == NULL)
		return;
	if (x->ev != NULL)
		event_free(x->ev);
	istore_iter_free(x->it);
	buf_free(&x->out);
	free(x);
}

/* ---- CSV ---------------------------------------------------------------- */

/* RFC 4180: quoted when it holds a comma, a quote or a line break. */
static void
csv_field(struct buf *b, const char *s, int last)
{
	if (strpbrk(s, ",\"\r\n") != NULL) {
		buf_putc(b, '"');
		for (; *s; s++) {
			if (*s == '"')
				buf_putc(b, '"');
			buf_putc(b, *s);
		}
		buf_putc(b, '"');
	} else
		buf_puts(b, s);
	buf_putc(b, last ? '\n' : ',');
}

static void
csv_time(struct buf *b, long long t)
{
	if (t != 0)
		buf_printf(b, "%lld", t);
	buf_putc(b, ',');
}

static void
csv_rec(struct buf *b, const struct intel_rec *r)
{
	char tags[sizeof(r->tags)], *p;

	/* tags: ';' between them, so the column needs no quotes */
	snprintf(tags, sizeof(tags), "%s", r->tags);
	for (p = tags; *p; p++)
		if (*p == ',')
			*p = ';';
	csv_field(b, r->ind.text, 0);
	buf_printf(b, "%s,%s,%d,", intel_kind_name(r->ind.kind),
	           intel_verdict_name(r->verdict), r->score);
	csv_field(b, tags, 0);
	csv_time(b, r->first_seen);
	csv_time(b, r->last_seen);
	csv_time(b, r->expires);
	csv_field(b, r->reference, 1);
}

/* ---- STIX 2.1 ----------------------------------------------------------- */

static void
stix_time(char *out, size_t n, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* A name-based UUID (version 5 layout, SHA-256 of the feed and the
 * indicator): the same entry of the same feed keeps its id across
 * exports, so a later export is a delta of the earlier one. */
static void
stix_id(char *out, size_t n, const char *prefix, const char *feed,
        const char *text)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(h, 0, sizeof(h));
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, "vigil-inteld\n", 13) != 1 ||
	    EVP_DigestUpdate(c, feed, strlen(feed) + 1) != 1 ||
	    EVP_DigestUpdate(c, text, strlen(text)) != 1 ||
	    EVP_DigestFinal_ex(c, h, &hl) != 1)
		fatalx("%s: SHA-256 failed", __func__);
	EVP_MD_CTX_free(c);
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x50);
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	snprintf(out, n,
	         "%s--%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x"
	         "%02x%02x%02x",
	         prefix, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8],
	         h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
}

/* The comparison the STIX importer reads back for this kind. */
static void
stix_pattern(struct buf *b, const struct intel_rec *r)
{
	static const char *const path[INTEL_NKINDS] = {
	    [INTEL_MD5] = "file:hashes.MD5",
	    [INTEL_SHA1] = "file:hashes.'SHA-1'",
	    [INTEL_SHA256] = "file:hashes.'SHA-256'",
	    [INTEL_DOMAIN] = "domain-name:value",
	    [INTEL_URL] = "url:value",
	};
	const char *s, *p = path[r->ind.kind];

	if (r->ind.kind == INTEL_IP)
		p = strchr(r->ind.text, ':') ? "ipv6-addr:value"
		                             : "ipv4-addr:value";
	buf_printf(b, "[%s = '", p ? p : "x-unknown:value");
	for (s = r->ind.text; *s; s++) {
		if (*s == '\'' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
	buf_puts(b, "']");
}

static json_t *
stix_rec(const char *feed, const struct intel_rec *r, long long added)
{
	char id[80], ts[40];
	struct buf pat;
	json_t *o, *types, *labels;
	long long from = r->first_seen ? r->first_seen : added;
	long long mod = r->last_seen > added ? r->last_seen : added;
	const char *s = r->tags;

	buf_init(&pat, INTEL_TEXT_MAX * 2 + 64);
	stix_pattern(&pat, r);
	stix_id(id, sizeof(id), "indicator", feed, r->ind.text);
	o = json_object();
	json_object_set_new(o, "type", json_string("indicator"));
	json_object_set_new(o, "spec_version", json_string("2.1"));
	json_object_set_new(o, "id", json_string(id));
	stix_time(ts, sizeof(ts), added);
	json_object_set_new(o, "created", json_string(ts));
	stix_time(ts, sizeof(ts), mod);
	json_object_set_new(o, "modified", json_string(ts));
	json_object_set_new(o, "name", json_string(r->ind.text));
	types = json_array();
	json_array_append_new(
	    types, json_string(r->verdict == INTEL_BENIGN       ? "benign"
	                       : r->verdict == INTEL_SUSPICIOUS ? "anomalous-"
	                                                          "activity"
	                                                        : "malicious-"
	                                                          "activity"));
	json_object_set_new(o, "indicator_types", types);
	json_object_set_new(o, "pattern", json_string(buf_cstr(&pat)));
	json_object_set_new(o, "pattern_type", json_string("stix"));
	stix_time(ts, sizeof(ts), from);
	json_object_set_new(o, "valid_from", json_string(ts));
	if (r->expires != 0) {
		/* valid_until must be later than valid_from */
		stix_time(ts, sizeof(ts),
		          r->expires > from ? r->expires : from + 1);
		json_object_set_new(o, "valid_until", json_string(ts));
	}
	json_object_set_new(o, "confidence", json_integer(r->score));
	labels = json_array();
	while (*s) {
		size_t l = strcspn(s, ",");

		if (l > 0)
			json_array_append_new(labels, json_stringn(s, l));
		s += l + (s[l] == ',');
	}
	if (json_array_size(labels) > 0)
		json_object_set_new(o, "labels", labels);
	else
		json_decref(labels);
	if (r->reference[0])
		json_object_set_new(o, "external_references",
		                    json_pack("[{s:s, s:s}]", "source_name",
		                              "vigil-inteld", "description",
		                              r->reference));
	buf_free(&pat);
	return o;
}

/* ---- the stream ---------------------------------------------------------- */

static void export_pump(evutil_socket_t fd, short what, void *arg);

static void
export_closed(struct http_stream *st, void *arg)
{
	struct export *x = arg;

	(void)st;
	log_info("inteld: export of %s ended early: the client left after "
	         "%lld entries",
	         x->feed, x->n);
	x->st = NULL;
	export_free(x);
}

static void
export_pump(evutil_socket_t fd, short what, void *arg)
{
	struct export *x = arg;
	struct timeval later = {0, 10000}, now = {0, 0};
	struct intel_rec r;
	long long added;
	int i, rc = 1;

	(void)fd;
	(void)what;
	if (http_req_stream_queued(x->st) > EXPORT_HIGH) {
		evtimer_add(x->ev, &later);
		return;
	}
	buf_reset(&x->out);
	for (i = 0; i < EXPORT_SLICE &&
	            (rc = istore_iter_next(x->it, &r, &added)) == 1;
	     i++) {
		if (!x->stix)
			csv_rec(&x->out, &r);
		else {
			json_t *o = stix_rec(x->feed, &r, added);
			char *s = json_dumps(o, JSON_COMPACT);

			if (x->n > 0)
				buf_puts(&x->out, ",\n");
			buf_puts(&x->out, s ? s : "null");
			free(s);
			json_decref(o);
		}
		x->n++;
	}
	if (rc == 0 && x->stix)
		buf_puts(&x->out, "\n]}\n");
	if (buf_ok(&x->out) == -1)
		rc = -1;
	else if (x->out.len > 0 &&
	         http_req_stream_send(x->st, x->out.data, x->out.len) == -1) {
		/* the client is too far behind or talked back: st is gone */
		x->st = NULL;
		export_free(x);
		return;
	}
	if (rc == 1) {
		evtimer_add(x->ev, &now);
		return;
	}
	if (rc == -1)
		log_warnx("inteld: export of %s: the store failed after %lld "
		          "entries; the answer is cut short",
		          x->feed, x->n);
	else
		log_info("inteld: export of %s (%s): %lld entries", x->feed,
		         x->stix ? "stix" : "csv", x->n);
	http_req_stream_end(x->st);
	x->st = NULL;
	export_free(x);
}

void
inteld_export(struct http_req *r, const char *feed)
{
	struct inteld *d = REQ_D(r);
	const char *fmt = http_req_query(r, "format");
	struct export *x;
	char fn[160], id[80];
	json_t *f;

	if (fmt == NULL)
		fmt = "csv";
	if (strcmp(fmt, "csv") != 0 && strcmp(fmt, "stix") != 0) {
		http_reply_error(r, 400, "bad_request", "format: csv or stix");
		return;
	}
	if ((f = istore_feed_get(d->store, feed)) == NULL) {
		http_reply_error(r, 404, "not_found", "no feed %s", feed);
		return;
	}
	json_decref(f);
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	buf_init(&x->out, 64u << 20);
	snprintf(x->feed, sizeof(x->feed), "%s", feed);
	x->stix = strcmp(fmt, "stix") == 0;
	if ((x->it = istore_iter_new(d->store, feed)) == NULL ||
	    (x->ev = evtimer_new(REQ_T(r)->base, export_pump, x)) == NULL) {
		export_free(x);
		http_reply_error(r, 500, "store",
		                 "the store failed (see the log)");
		return;
	}
	snprintf(fn, sizeof(fn), "attachment; filename=\"%s.%s\"", feed,
	         x->stix ? "stix.json" : "csv");
	http_set_header(r, "Content-Disposition", fn);
	x->st = http_req_stream_start(
	    r, 200, x->stix ? "application/stix+json;version=2.1" : "text/csv",
	    EXPORT_QUEUED, export_closed, x);
	if (x->st == NULL) { /* answered already (HEAD, an error) */
		export_free(x);
		return;
	}
	if (!x->stix)
		buf_puts(&x->out,
		         "indicator,type,verdict,score,tags,first_seen,"
		         "last_seen,expires,reference\n");
	else {
		stix_id(id, sizeof(id), "bundle", feed, "");
		buf_printf(
		    &x->out,
		    "{\"type\": \"bundle\", \"id\": \"%s\", \"objects\": "
		    "[\n",
		    id);
	}
	if (http_req_stream_send(x->st, x->out.data, x->out.len) == -1) {
		x->st = NULL;
		export_free(x);
		return;
	}
	export_pump(-1, 0, x);
}
