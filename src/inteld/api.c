/*
 * api.c: vigil-inteld's HTTP API (docs/inteld.md). Lookups are answered
 * on the event loop from the store's readers; every change (feeds, their
 * imports, the site's allow and block lists) is checked here, then
 * deferred and handed to the writer thread, and answered when it is done.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "inteld.h"
#include "metrics.h"

#define D(r) REQ_D(r)

void
inteld_declare_metrics(void)
{
	metrics_declare("vigil_intel_lookups_total", METRIC_COUNTER,
	                "indicators looked up, by type and verdict");
	metrics_declare("vigil_intel_imports_total", METRIC_COUNTER,
	                "feed imports, by format and result");
	metrics_declare("vigil_intel_import_seconds", METRIC_SUMMARY,
	                "time an import took in the writer");
	metrics_declare("vigil_intel_indicators", METRIC_GAUGE,
	                "entries held, by source");
	metrics_declare("vigil_http_requests_total", METRIC_COUNTER,
	                "HTTP requests by route and status");
	metrics_declare("vigil_connections", METRIC_GAUGE,
	                "open connections by listener");
}

void
inteld_http_done(const char *route, int status, void *arg)
{
	char labels[128];

	(void)arg;
	snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%d\"", route,
	         status);
	metrics_add("vigil_http_requests_total", labels, 1);
}

/* Lookups by kind and verdict: counted by every thread on the hot path
 * with an atomic add (no lock, no label string), rendered at /metrics. */
static const char *const verdicts[] = {"malicious", "suspicious", "benign",
                                       "unknown"};
#define NVERDICTS (sizeof(verdicts) / sizeof(verdicts[0]))
static unsigned long lookups[INTEL_NKINDS][NVERDICTS];

static void
count_lookup(enum intel_kind k, int verdict)
{
	const char *v = intel_verdict_name(verdict);
	size_t i;

	for (i = 0; i < NVERDICTS; i++)
		if (strcmp(verdicts[i], v) == 0)
			break;
	if ((unsigned)k < INTEL_NKINDS && i < NVERDICTS)
		__atomic_add_fetch(&lookups[k][i], 1, __ATOMIC_RELAXED);
}

static void
render_lookups(void)
{
	char l[96];
	size_t k, i;
	unsigned long n;

	for (k = 0; k < INTEL_NKINDS; k++)
		for (i = 0; i < NVERDICTS; i++) {
			if ((n = __atomic_load_n(&lookups[k][i],
			                         __ATOMIC_RELAXED)) == 0)
				continue;
			snprintf(l, sizeof(l), "type=\"%s\",verdict=\"%s\"",
			         intel_kind_name((enum intel_kind)k),
			         verdicts[i]);
			metrics_set("vigil_intel_lookups_total", l, (double)n);
		}
}

static void
api_health(struct http_req *r)
{
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void
api_version(struct http_req *r)
{
	http_reply_json(r, 200,
	                json_pack("{s:s, s:I}", "version", VIGIL_VERSION,
	                          "started", (json_int_t)D(r)->started));
}

/* The OpenAPI document (docs/openapi-inteld.json, embedded at build
 * time); e2e/inteld-openapi checks it against the route table. */
extern const unsigned char openapi_inteld_json[];
extern const size_t openapi_inteld_json_len;

static void
api_openapi(struct http_req *r)
{
	http_reply_text(r, 200, "application/json",
	                (const char *)openapi_inteld_json,
	                openapi_inteld_json_len);
}

static void
api_lookup(struct http_req *r)
{
	static const char *const params[] = {"sha256", "sha1", "md5",      "ip",
	                                     "domain", "url",  "indicator"};
	static const enum intel_kind kinds[] = {
	    INTEL_SHA256, INTEL_SHA1, INTEL_MD5, INTEL_IP,
	    INTEL_DOMAIN, INTEL_URL,  INTEL_ANY};
	struct intel_ind q;
	const char *v = NULL, *which = NULL;
	enum intel_kind k = INTEL_ANY;
	char why[200];
	struct buf out;
	int verdict;
	size_t i;

	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		const char *x = http_req_query(r, params[i]);

		if (x == NULL)
			continue;
		if (v != NULL) {
			http_reply_error(r, 400, "bad_request",
			                 "%s: one indicator per lookup (POST a "
			                 "batch for more)",
			                 params[i]);
			return;
		}
		v = x;
		which = params[i];
		k = kinds[i];
	}
	if (v == NULL) {
		http_reply_error(r, 400, "bad_request",
		                 "sha256: give one of sha256, sha1, md5, ip, "
		                 "domain, url");
		return;
	}
	if (intel_parse(k, v, strlen(v), &q, why, sizeof(why)) == -1) {
		http_reply_error(r, 400, "bad_indicator", "%s: %s", which, why);
		return;
	}
	buf_init(&out, 1u << 20);
	if (istore_lookup_text(D(r)->store, &q, (long long)time(NULL), &out,
	                       &verdict) == -1 ||
	    buf_ok(&out) == -1) {
		buf_free(&out);
		http_reply_error(r, 503, "store",
		                 "the store failed (see the "
		                 "log)");
		return;
	}
	count_lookup(q.kind, verdict);
	http_reply_text(r, 200, "application/json", out.data, out.len);
	buf_free(&out);
}

static void
api_batch(struct http_req *r)
{
	struct inteld *d = D(r);
	const uint8_t *body;
	json_error_t je;
	json_t *in, *list, *e;
	struct buf out;
	long long now = (long long)time(NULL), max;
	size_t len, i;

	body = http_req_body(r, &len);
	if ((in = json_loadb((const char *)body, len, 0, &je)) == NULL) {
		http_reply_error(r, 400, "bad_json",
		                 "body: not JSON (line %d column %d: %s)",
		                 je.line, je.column, je.text);
		return;
	}
	list = json_is_array(in) ? in : json_object_get(in, "indicators");
	if (!json_is_array(list)) {
		json_decref(in);
		http_reply_error(r, 400, "bad_request",
		                 "body: a JSON array of indicators (strings or "
		                 "{\"type\", \"value\"})");
		return;
	}
	max = __atomic_load_n(&d->conf.max_batch, __ATOMIC_RELAXED);
	if ((long long)json_array_size(list) > max) {
		http_reply_error(r, 413, "too_many",
		                 "body: %zu indicators, at most %lld a batch",
		                 json_array_size(list), max);
		json_decref(in);
		return;
	}
	/* The answer is written as text, entry by entry (no JSON tree of
	 * 10,000 answers); a bad entry's {"input", "error"} is small and
	 * dumped by jansson. */
	buf_init(&out, 256u << 20);
	buf_puts(&out, "{\"results\":[");
	if (istore_read_begin(d->store) == -1) {
		json_decref(in);
		buf_free(&out);
		http_reply_error(r, 503, "store", "the store failed");
		return;
	}
	json_array_foreach(list, i, e)
	{
		struct intel_ind q;
		enum intel_kind k = INTEL_ANY;
		json_t *v = e, *bad = NULL;
		char why[200];
		int verdict;

		if (i > 0)
			buf_putc(&out, ',');
		if (json_is_object(e)) {
			json_t *t = json_object_get(e, "type");

			v = json_object_get(e, "value");
			if (t != NULL &&
			    (!json_is_string(t) ||
			     (k = intel_kind_parse(json_string_value(t))) ==
			         INTEL_NKINDS))
				bad = json_pack("{s:O, s:s}", "input", e,
				                "error", "unknown type");
		}
		if (bad == NULL && !json_is_string(v))
			bad = json_pack("{s:O, s:s}", "input", e, "error",
			                "not a string or {\"type\", "
			                "\"value\"}");
		if (bad == NULL &&
		    intel_parse(k, json_string_value(v), json_string_length(v),
		                &q, why, sizeof(why)) == -1)
			bad = json_pack("{s:O, s:s}", "input", v, "error", why);
		if (bad != NULL) {
			char *t = json_dumps(bad, JSON_COMPACT);

			json_decref(bad);
			if (t == NULL || buf_puts(&out, t) == -1) {
				free(t);
				break;
			}
			free(t);
			continue;
		}
		if (istore_lookup_text(d->store, &q, now, &out, &verdict) ==
		    -1) {
			istore_read_end(d->store);
			json_decref(in);
			buf_free(&out);
			http_reply_error(r, 503, "store", "the store failed");
			return;
		}
		count_lookup(q.kind, verdict);
	}
	istore_read_end(d->store);
	json_decref(in);
	buf_puts(&out, "]}");
	if (buf_ok(&out) == -1) {
		buf_free(&out);
		http_reply_error(r, 500, "internal",
		                 "out of memory writing the answer");
		return;
	}
	http_reply_text(r, 200, "application/json", out.data, out.len);
	buf_free(&out);
}

static void
api_stats(struct http_req *r)
{
	json_t *s = istore_stats(D(r)->store);

	json_object_set_new(s, "writer_busy",
	                    json_boolean(writer_busy(D(r)->writer)));
	http_reply_json(r, 200, s);
}

static void
api_metrics(struct http_req *r)
{
	struct inteld *d = D(r);
	json_t *s = istore_stats(d->store),
	       *by = json_object_get(s, "by_source"), *v;
	const char *k;
	struct buf out;
	char l[128];
	int i, nhttps, nhttp;

	json_object_foreach(by, k, v)
	{
		snprintf(l, sizeof(l), "source=\"%s\"", k);
		metrics_set("vigil_intel_indicators", l,
		            (double)json_integer_value(v));
	}
	json_decref(s);
	render_lookups();
	for (i = 0, nhttps = nhttp = 0; i < d->nthreads; i++) {
		if (d->th[i].https)
			nhttps += http_server_conns(d->th[i].https);
		if (d->th[i].http)
			nhttp += http_server_conns(d->th[i].http);
	}
	if (d->th[0].https)
		metrics_set("vigil_connections", "listener=\"https\"", nhttps);
	if (d->th[0].http)
		metrics_set("vigil_connections", "listener=\"http\"", nhttp);
	buf_init(&out, 4u << 20);
	metrics_render(&out);
	http_reply_text(r, 200, "text/plain; version=0.0.4", out.data, out.len);
	buf_free(&out);
}

/* Hands j to the writer; r is answered when it is done. */
static void
to_writer(struct http_req *r, struct wjob *j)
{
	struct inteld *d = D(r);

	if ((j->req = http_req_defer(r)) == NULL) {
		wjob_free(j);
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	j->t_start = mono_now();
	j->owner = REQ_T(r);
	__atomic_add_fetch(&d->inflight, 1, __ATOMIC_RELAXED);
	writer_push(d->writer, j);
}

/* On the thread that took the request: counts and answers. */
void
inteld_job_answer(struct wjob *j)
{
	struct inteld *d = j->owner->d;

	if (j->kind == WJ_IMPORT) {
		char l[96];

		snprintf(l, sizeof(l), "format=\"%s\",result=\"%s\"",
		         intel_format_name(j->fmt),
		         j->status == 200 ? "imported" : "failed");
		metrics_add("vigil_intel_imports_total", l, 1);
		metrics_observe("vigil_intel_import_seconds", NULL,
		                mono_now() - j->t_start);
	}
	http_reply_json(j->req, j->status, j->reply);
	j->reply = NULL;
	wjob_free(j);
	__atomic_sub_fetch(&d->inflight, 1, __ATOMIC_RELAXED);
}

/* On the main thread, woken by the writer: a job of another thread goes
 * to that thread (its connection lives on its event base). */
void
inteld_job_done(struct wjob *j, void *arg)
{
	struct ithread *t = j->owner;

	(void)arg;
	if (t->idx == 0) {
		inteld_job_answer(j);
		return;
	}
	pthread_mutex_lock(&t->mu);
	j->next = t->done;
	t->done = j;
	pthread_mutex_unlock(&t->mu);
	event_active(t->ev_ctl, EV_READ, 0);
}

static struct wjob *
job_new(enum wjob_kind k, const char *feed)
{
	struct wjob *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->kind = k;
	snprintf(j->feed, sizeof(j->feed), "%s", feed);
	return j;
}

static void
api_feeds(struct http_req *r)
{
	json_t *a = istore_feeds(D(r)->store);

	if (a == NULL) {
		http_reply_error(r, 503, "store", "the store failed");
		return;
	}
	http_reply_json(r, 200, json_pack("{s:o}", "feeds", a));
}

static void
api_feed_add(struct http_req *r)
{
	json_t *b = http_req_json(r), *nm, *pr, *ds, *rec;
	struct wjob *j;

	if (b == NULL)
		return;
	nm = json_object_get(b, "name");
	pr = json_object_get(b, "priority");
	ds = json_object_get(b, "description");
	if (!json_is_string(nm) || !str_is_name(json_string_value(nm))) {
		http_reply_error(r, 400, "bad_request",
		                 "name: 1 to 64 of A-Z a-z 0-9 . _ -");
		goto out;
	}
	if (pr != NULL && (!json_is_integer(pr) || json_integer_value(pr) < 0 ||
	                   json_integer_value(pr) > 1000)) {
		http_reply_error(r, 400, "bad_request",
		                 "priority: an integer 0..1000 (higher wins)");
		goto out;
	}
	if (ds != NULL &&
	    (!json_is_string(ds) || json_string_length(ds) > 500)) {
		http_reply_error(r, 400, "bad_request",
		                 "description: a string of at most 500 bytes");
		goto out;
	}
	/* Members not given keep their value when the feed exists (the
	 * writer fills them in), else get the defaults. */
	rec = json_pack("{s:I}", "added", (json_int_t)time(NULL));
	if (pr != NULL)
		json_object_set(rec, "priority", pr);
	if (ds != NULL)
		json_object_set(rec, "description", ds);
	if ((j = job_new(WJ_FEED_ADD, json_string_value(nm))) == NULL) {
		json_decref(rec);
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	j->arg = rec;
	j->default_priority =
	    __atomic_load_n(&D(r)->conf.default_priority, __ATOMIC_RELAXED);
	to_writer(r, j);
out:
	json_decref(b);
}

static void
api_import(struct http_req *r, const char *name)
{
	const char *f = http_req_query(r, "format"),
	           *v = http_req_query(r, "verdict"),
	           *sc = http_req_query(r, "score"),
	           *ttl = http_req_query(r, "ttl"),
	           *st = http_req_query(r, "strict"),
	           *mode = http_req_query(r, "mode"),
	           *tags = http_req_query(r, "tags");
	struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
	struct wjob *j;
	long long x;

	if ((j = job_new(WJ_IMPORT, name)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if ((j->fmt = intel_format_parse(f)) == INTEL_FMT_N) {
		http_reply_error(r, 400, "bad_request",
		                 "format: csv, list, misp or stix");
		goto fail;
	}
	/* MISP feeds are deltas by their manifest unless told; STIX when
	 * asked; CSV and lists are always whole */
	j->delta = j->fmt == INTEL_FMT_MISP;
	if (mode != NULL && strcmp(mode, "full") == 0)
		j->delta = 0;
	else if (mode != NULL &&
	         (strcmp(mode, "delta") != 0 ||
	          (j->fmt != INTEL_FMT_MISP && j->fmt != INTEL_FMT_STIX))) {
		http_reply_error(r, 400, "bad_request",
		                 "mode: full, or delta (misp and stix only)");
		goto fail;
	} else if (mode != NULL)
		j->delta = 1;
	j->opts.verdict = INTEL_MALICIOUS;
	j->opts.score = -1;
	if (v != NULL &&
	    (j->opts.verdict = intel_verdict_parse(v, strlen(v))) < 0) {
		http_reply_error(r, 400, "bad_request",
		                 "verdict: malicious, suspicious or benign");
		goto fail;
	}
	if (sc != NULL) {
		if (str_to_ll(sc, 0, 100, &x) == -1) {
			http_reply_error(r, 400, "bad_request",
			                 "score: 0..100");
			goto fail;
		}
		j->opts.score = (int)x;
	}
	if (ttl != NULL) {
		if (str_to_duration(ttl, &x) == -1) {
			http_reply_error(r, 400, "bad_request",
			                 "ttl: a duration (90, 30m, 12h, 7d)");
			goto fail;
		}
		j->opts.expires = (long long)time(NULL) + x;
	}
	if (tags != NULL)
		snprintf(j->opts.tags, sizeof(j->opts.tags), "%s", tags);
	j->strict =
	    st != NULL && (strcmp(st, "1") == 0 || strcmp(st, "yes") == 0 ||
	                   strcmp(st, "true") == 0);
	/* The body is moved, not copied, to the job. */
	if ((j->body = evbuffer_new()) == NULL ||
	    evbuffer_add_buffer(j->body, in) == -1) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto fail;
	}
	to_writer(r, j);
	return;
fail:
	wjob_free(j);
}

static void
api_feed(struct http_req *r)
{
	char name[80];
	const char *act = http_req_rest_id(r, name, sizeof(name));
	json_t *f;

	if (act == NULL || !str_is_name(name)) {
		http_reply_error(r, 404, "not_found", "no such feed");
		return;
	}
	if (strcmp(r->method, "POST") == 0 && strcmp(act, "/import") == 0) {
		if (r->role != ROLE_ADMIN) {
			http_reply_error(r, 403, "forbidden",
			                 "this needs the admin role");
			return;
		}
		api_import(r, name);
		return;
	}
	if (strcmp(r->method, "GET") == 0 && strcmp(act, "/export") == 0) {
		inteld_export(r, name);
		return;
	}
	if (*act != '\0') {
		http_reply_error(r, 404, "not_found", "no such route");
		return;
	}
	if (strcmp(r->method, "DELETE") == 0) {
		struct wjob *j = job_new(WJ_FEED_DEL, name);

		if (j == NULL)
			http_reply_error(r, 500, "internal", "out of memory");
		else
			to_writer(r, j);
		return;
	}
	if ((f = istore_feed_get(D(r)->store, name)) == NULL) {
		http_reply_error(r, 404, "not_found", "no feed %s", name);
		return;
	}
	http_reply_json(r, 200, f);
}

/* "allow" / "block" from the path, or NULL after a 404. */
static const char *
list_source(struct http_req *r)
{
	if (strcmp(r->rest, "allow") == 0)
		return ISTORE_ALLOW;
	if (strcmp(r->rest, "block") == 0)
		return ISTORE_BLOCK;
	http_reply_error(r, 404, "not_found", "the lists are allow and block");
	return NULL;
}

static void
api_list(struct http_req *r)
{
	const char *src = list_source(r);
	const char *lim = http_req_query(r, "limit");
	long long n = 1000;

	if (src == NULL)
		return;
	if (lim != NULL && str_to_ll(lim, 1, 1000000, &n) == -1) {
		http_reply_error(r, 400, "bad_request", "limit: 1..1000000");
		return;
	}
	http_reply_json(
	    r, 200,
	    json_pack("{s:s, s:o}", "list", r->rest, "entries",
	              istore_list_source(D(r)->store, src, (size_t)n)));
}

/* POST {"indicator" | "indicators", "comment", "expires", "tags"};
 * DELETE ?indicator=X. Every indicator is checked before the job. */
static void
api_list_change(struct http_req *r)
{
	const char *src = list_source(r);
	json_t *b = NULL, *list, *e, *ents = json_array();
	struct wjob *j;
	size_t i;
	int del = strcmp(r->method, "DELETE") == 0;

	if (src == NULL)
		goto out;
	if (del) {
		const char *v = http_req_query(r, "indicator");

		if (v == NULL) {
			http_reply_error(r, 400, "bad_request",
			                 "indicator: which entry to remove");
			goto out;
		}
		b = json_pack("{s:[s]}", "indicators", v);
	} else if ((b = http_req_json(r)) == NULL)
		goto out;
	list = json_object_get(b, "indicators");
	if (list == NULL && json_object_get(b, "indicator") != NULL) {
		list = json_array();
		json_array_append(list, json_object_get(b, "indicator"));
		json_object_set_new(b, "indicators", list);
	}
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > 100000) {
		http_reply_error(r, 400, "bad_request",
		                 "indicators: 1 to 100000 indicators");
		goto out;
	}
	e = json_object_get(b, "expires");
	if (e != NULL && (!json_is_integer(e) || json_integer_value(e) < 0)) {
		http_reply_error(r, 400, "bad_request",
		                 "expires: unix seconds (0 = never)");
		goto out;
	}
	if (json_object_get(b, "comment") != NULL &&
	    !json_is_string(json_object_get(b, "comment"))) {
		http_reply_error(r, 400, "bad_request", "comment: a string");
		goto out;
	}
	json_array_foreach(list, i, e)
	{
		struct intel_ind q;
		char why[200];
		json_t *o;

		if (!json_is_string(e) ||
		    intel_parse(INTEL_ANY, json_string_value(e),
		                json_string_length(e), &q, why,
		                sizeof(why)) == -1) {
			http_reply_error(
			    r, 400, "bad_indicator", "indicators: [%zu]: %s", i,
			    json_is_string(e) ? why : "not a string");
			goto out;
		}
		o = json_pack("{s:s}", "indicator", q.text);
		if (json_object_get(b, "expires"))
			json_object_set(o, "expires",
			                json_object_get(b, "expires"));
		if (json_object_get(b, "comment"))
			json_object_set(o, "comment",
			                json_object_get(b, "comment"));
		json_array_append_new(ents, o);
	}
	if ((j = job_new(del ? WJ_LIST_DEL : WJ_LIST_ADD, src)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	j->arg = ents;
	ents = NULL;
	to_writer(r, j);
out:
	json_decref(ents);
	json_decref(b);
}

const struct http_route inteld_routes[] = {
    {"GET", "/api/v1/health", api_health, 0, "health", 0, ROLE_PUBLIC},
    {"GET", "/api/v1/version", api_version, 0, "version", 0, ROLE_LOOKUP},
    {"GET", "/api/v1/openapi.json", api_openapi, 0, "openapi", 0, ROLE_LOOKUP},
    {"GET", "/api/v1/lookup", api_lookup, 0, "lookup", 0, ROLE_LOOKUP},
    {"POST", "/api/v1/lookup", api_batch, 0, "lookup_batch", 64u << 20,
     ROLE_LOOKUP},
    {"GET", "/api/v1/stats", api_stats, 0, "stats", 0, ROLE_LOOKUP},
    {"GET", "/metrics", api_metrics, 0, "metrics", 0, ROLE_LOOKUP},
    {"GET", "/api/v1/feeds", api_feeds, 0, "feeds", 0, ROLE_LOOKUP},
    {"POST", "/api/v1/feeds", api_feed_add, 0, "feeds", 65536, ROLE_ADMIN},
    {"GET", "/api/v1/feeds/", api_feed, HTTP_ROUTE_PREFIX, "feed", 0,
     ROLE_LOOKUP},
    {"DELETE", "/api/v1/feeds/", api_feed, HTTP_ROUTE_PREFIX, "feed", 0,
     ROLE_ADMIN},
    /* imports: the body is the feed file, up to [inteld] max_import */
    {"POST", "/api/v1/feeds/", api_feed, HTTP_ROUTE_PREFIX, "feed_import", 0,
     ROLE_ADMIN},
    {"GET", "/api/v1/lists/", api_list, HTTP_ROUTE_PREFIX, "list", 0,
     ROLE_LOOKUP},
    {"POST", "/api/v1/lists/", api_list_change, HTTP_ROUTE_PREFIX, "list",
     64u << 20, ROLE_ADMIN},
    {"DELETE", "/api/v1/lists/", api_list_change, HTTP_ROUTE_PREFIX, "list", 0,
     ROLE_ADMIN},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
