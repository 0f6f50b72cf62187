/*
 * events.c: what agents send back (events, samples) and what they fetch
 * (rule sets), plus the admin side of both.
 *
 * Events carry a per-agent sequence number; batches are parsed and stored
 * by threads of their own (ingest.c) with "ON CONFLICT DO NOTHING" on (agent,
 * seq), so a batch sent again after a lost reply is not stored twice, and the
 * acknowledgement is sent only after the commit (WAL, synchronous=FULL):
 * an acknowledged event is on disk.
 *
 * Samples are content-addressed by SHA-256 under data_dir/samples, size
 * capped, written 0600 and never executed. Rule sets are checked (YARA
 * compiled, IOCs parsed; warnings refuse a rule set too) when uploaded and
 * served to agents by content hash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "center.h"
#include "events.h"
#include "metrics.h"
#include "scan.h"
#include "tls.h"

#define C(r) ((struct center *)(r)->arg)

static int
hex64_ok(const char *s)
{
	size_t i;

	if (strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* POST /v1/events */
static void
gw_events(struct http_req *r)
{
	struct center *c = C(r);
	const uint8_t *body;
	long long now = (long long)time(NULL);
	size_t len;
	char *id;

	if ((id = peer_agent_id(r)) == NULL)
		return;
	body = http_req_body(r, &len);
	/* Parsed, stored and answered by the ingest threads (ingest.c). */
	if (ingest_submit(c, r, id, body, len, now) == 0)
		return;
	/* Queue full or stopping: the agent keeps the batch, sends it again. */
	free(id);
	http_set_header(r, "Retry-After", "5");
	http_reply_error(r, 503, "store_busy", "store busy; send again");
}

static int
mkdir_p2(const char *base, const char *sub, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/samples", base) >= n ||
	    (mkdir(out, 0700) == -1 && errno != EEXIST))
		return -1;
	if ((size_t)snprintf(out, n, "%s/samples/%.2s", base, sub) >= n ||
	    (mkdir(out, 0700) == -1 && errno != EEXIST))
		return -1;
	return 0;
}

/* POST /v1/samples?sha256=HEX[&task=ID&path=P]: the body is the file. */
static void
gw_sample(struct http_req *r)
{
	struct center *c = C(r);
	const char *want = http_req_query(r, "sha256");
	const char *task = http_req_query(r, "task");
	const char *path = http_req_query(r, "path");
	const uint8_t *body;
	char got[65], dir[4096], file[4200], *id;
	struct buf err;
	struct stat st;
	size_t len;

	buf_init(&err, 1024);
	if ((id = peer_agent_id(r)) == NULL)
		goto out;
	if (want == NULL || !hex64_ok(want)) {
		http_reply_error(r, 400, "bad_request",
		                 "sha256: required, 64 lowercase hex digits");
		goto out;
	}
	if ((task != NULL && strlen(task) > 64) ||
	    (path != NULL && strlen(path) > 4096)) {
		http_reply_error(r, 400, "bad_request",
		                 "task or path too long");
		goto out;
	}
	body = http_req_body(r, &len);
	sha256_hex(body, len, got);
	if (strcmp(got, want) != 0) {
		http_reply_error(r, 400, "bad_digest",
		                 "the body's SHA-256 is %s, not %s: the upload "
		                 "was damaged; send it again",
		                 got, want);
		goto out;
	}
	if (mkdir_p2(c->conf.data_dir, got, dir, sizeof(dir)) == -1) {
		log_warn("samples: %s", dir);
		http_reply_error(r, 503, "store_busy", "cannot store samples");
		goto out;
	}
	snprintf(file, sizeof(file), "%s/%s", dir, got);
	/* Content-addressed: a sample already here is the same bytes. */
	if (stat(file, &st) == -1 &&
	    tls_write_file(file, body, len, 0600, &err) == -1) {
		log_warnx("samples: %s", buf_cstr(&err));
		http_reply_error(r, 503, "store_busy",
		                 "cannot store the sample");
		goto out;
	}
	if (store_exec(c->store,
	               "INSERT INTO samples (sha256, size, agent_id, task_id, "
	               "path, received_at) VALUES (?, ?, ?, ?, ?, ?) "
	               "ON CONFLICT (sha256) DO NOTHING",
	               "sisssi", got, (long long)len, id, task, path,
	               (long long)time(NULL)) < 0) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	metrics_add("vigil_samples_received_total", NULL, 1);
	http_reply_json(
	    r, 200,
	    json_pack("{s:s, s:I}", "sha256", got, "size", (json_int_t)len));
out:
	free(id);
	buf_free(&err);
}

/* GET /v1/rules/<sha256>: a rule set by content hash (agents cache). */
static void
gw_rules(struct http_req *r)
{
	struct store_rows *q;
	int found = 0;

	if (!hex64_ok(r->rest)) {
		http_reply_error(r, 404, "not_found", "no such rule set");
		return;
	}
	q = store_query(C(r)->store,
	                "SELECT kind, name, content FROM rulesets WHERE id = ? "
	                "LIMIT 1",
	                "s", r->rest);
	if (q != NULL && store_next(q) == 1) {
		found = 1;
		http_set_header(r, "X-Vigil-Rules-Kind", store_text(q, 0));
		http_set_header(r, "X-Vigil-Rules-Name", store_text(q, 1));
		http_reply_text(r, 200, "text/plain; charset=utf-8",
		                store_text(q, 2), strlen(store_text(q, 2)));
	}
	store_done(q);
	if (!found)
		http_reply_error(r, 404, "not_found", "no rule set %.64s",
		                 r->rest);
}

/* --- admin -------------------------------------------------------------- */

/* POST /api/v1/rules {"name", "kind": "yara"|"ioc", "content"} */
static void
adm_rules_add(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body;
	const char *name, *kind, *content;
	struct buf err;
	char id[65];
	size_t len;

	if (admin_authorize(r) == -1)
		return;
	if ((body = http_req_json(r)) == NULL)
		return;
	buf_init(&err, 8192);
	name = json_string_value(json_object_get(body, "name"));
	kind = json_string_value(json_object_get(body, "kind"));
	content = json_string_value(json_object_get(body, "content"));
	if (name == NULL || strlen(name) == 0 || strlen(name) > 64 ||
	    strpbrk(name, "/ \t\n") != NULL || kind == NULL ||
	    content == NULL || json_object_size(body) != 3) {
		http_reply_error(r, 400, "bad_request",
		                 "body: {\"name\": NAME, \"kind\": \"yara\" or "
		                 "\"ioc\", \"content\": TEXT}");
		goto out;
	}
	len = strlen(content);
	if (strcmp(kind, "yara") == 0) {
		if (scan_rules_check(content, len, &err) == -1) {
			http_reply_error(r, 400, "bad_rules",
			                 "rule set %s refused: %s", name,
			                 buf_cstr(&err));
			goto out;
		}
	} else if (strcmp(kind, "ioc") == 0) {
		if (scan_ioc_check(content, len, &err) == -1) {
			http_reply_error(r, 400, "bad_rules",
			                 "IOC set %s refused: %s", name,
			                 buf_cstr(&err));
			goto out;
		}
	} else {
		http_reply_error(r, 400, "bad_request",
		                 "kind: must be yara or ioc");
		goto out;
	}
	sha256_hex(content, len, id);
	if (store_begin(c->store) == -1)
		goto busy;
	/* Adding under an existing name replaces that rule set. */
	if (store_exec(c->store, "DELETE FROM rulesets WHERE name = ?", "s",
	               name) < 0 ||
	    store_exec(c->store,
	               "INSERT INTO rulesets (id, name, kind, content, size, "
	               "created_at) VALUES (?, ?, ?, ?, ?, ?)",
	               "ssssii", id, name, kind, content, (long long)len,
	               (long long)time(NULL)) < 0 ||
	    store_commit(c->store) == -1) {
		store_rollback(c->store);
		goto busy;
	}
	log_info("rules: %s rule set %s (%s, %zu bytes) added by %s", kind,
	         name, id, len, r->peer_addr);
	http_reply_json(r, 201,
	                json_pack("{s:s, s:s, s:s, s:I}", "id", id, "name",
	                          name, "kind", kind, "size", (json_int_t)len));
	goto out;
busy:
	http_reply_error(r, 503, "store_busy", "store busy; retry");
out:
	json_decref(body);
	buf_free(&err);
}

static void
adm_rules(struct http_req *r)
{
	struct store_rows *q;
	json_t *a = json_array();

	if (admin_authorize(r) == -1) {
		json_decref(a);
		return;
	}
	q = store_query(C(r)->store,
	                "SELECT id, name, kind, size, created_at FROM rulesets "
	                "ORDER BY name",
	                NULL);
	while (q != NULL && store_next(q) == 1)
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:I, s:I}", "id",
		                 store_text(q, 0), "name", store_text(q, 1),
		                 "kind", store_text(q, 2), "size",
		                 (json_int_t)store_int(q, 3), "created_at",
		                 (json_int_t)store_int(q, 4)));
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "rules", a));
}

static void
adm_rules_delete(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	if (store_exec(C(r)->store, "DELETE FROM rulesets WHERE name = ?", "s",
	               r->rest) != 1) {
		http_reply_error(r, 404, "not_found", "no rule set %.64s",
		                 r->rest);
		return;
	}
	log_info("rules: rule set %s removed by %s", r->rest, r->peer_addr);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", r->rest, "deleted", 1));
}

/*
 * GET /api/v1/events?agent=&task=&type=&level=&since=&until=&q=&limit=
 * Newest first; "q" searches the event data as text.
 */
static void
adm_events(struct http_req *r)
{
	static const char *const str_filters[] = {"agent", "task", "type",
	                                          "level"};
	const char *v[4], *qs = http_req_query(r, "q");
	const char *ss = http_req_query(r, "since");
	const char *us = http_req_query(r, "until");
	const char *ls = http_req_query(r, "limit");
	long long since = 0, until = 1LL << 62, limit = 100;
	struct store_rows *q;
	char like[2 * 256 + 3];
	json_t *a;
	size_t i;

	if (admin_authorize(r) == -1)
		return;
	for (i = 0; i < 4; i++) {
		v[i] = http_req_query(r, str_filters[i]);
		if (v[i] != NULL && strlen(v[i]) > 64) {
			http_reply_error(r, 400, "bad_request",
			                 "%s: at most 64 characters",
			                 str_filters[i]);
			return;
		}
	}
	if ((ss && str_to_ll(ss, 0, 1LL << 62, &since) == -1) ||
	    (us && str_to_ll(us, 0, 1LL << 62, &until) == -1) ||
	    (ls && str_to_ll(ls, 1, 10000, &limit) == -1) ||
	    (qs && strlen(qs) > 256)) {
		http_reply_error(r, 400, "bad_request",
		                 "since/until: unix seconds; limit: 1..10000; "
		                 "q: at most 256 characters");
		return;
	}
	/* q is text, not a pattern: escape LIKE's wildcards. */
	{
		size_t o = 0;

		like[o++] = '%';
		for (i = 0; qs != NULL && qs[i] != '\0'; i++) {
			if (qs[i] == '%' || qs[i] == '_' || qs[i] == '\\')
				like[o++] = '\\';
			like[o++] = qs[i];
		}
		like[o++] = '%';
		like[o] = '\0';
	}
	q = store_query(C(r)->store,
	                "SELECT agent_id, seq, time, received_at, type, level, "
	                "task_id, data FROM events WHERE "
	                "(? IS NULL OR agent_id = ?) AND "
	                "(? IS NULL OR task_id = ?) AND "
	                "(? IS NULL OR type = ?) AND "
	                "(? IS NULL OR level = ?) AND "
	                "received_at >= ? AND received_at <= ? AND data LIKE ? "
	                "ESCAPE '\\' "
	                "ORDER BY received_at DESC, agent_id, seq DESC LIMIT ?",
	                "ssssssssiisi", v[0], v[0], v[1], v[1], v[2], v[2],
	                v[3], v[3], since, until, like, limit);
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	a = json_array();
	while (store_next(q) == 1) {
		json_t *d = json_loads(store_text(q, 7), 0, NULL);

		json_array_append_new(
		    a, json_pack("{s:s, s:I, s:I, s:I, s:s, s:s?, s:s?, s:o}",
		                 "agent_id", store_text(q, 0), "seq",
		                 (json_int_t)store_int(q, 1), "time",
		                 (json_int_t)store_int(q, 2), "received_at",
		                 (json_int_t)store_int(q, 3), "type",
		                 store_text(q, 4), "level", store_text(q, 5),
		                 "task_id", store_text(q, 6), "data",
		                 d ? d : json_object()));
	}
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "events", a));
}

static void
adm_samples(struct http_req *r)
{
	struct store_rows *q;
	json_t *a = json_array();

	if (admin_authorize(r) == -1) {
		json_decref(a);
		return;
	}
	q = store_query(C(r)->store,
	                "SELECT sha256, size, agent_id, task_id, path, "
	                "received_at FROM samples ORDER BY received_at DESC "
	                "LIMIT 1000",
	                NULL);
	while (q != NULL && store_next(q) == 1)
		json_array_append_new(
		    a, json_pack("{s:s, s:I, s:s?, s:s?, s:s?, s:I}", "sha256",
		                 store_text(q, 0), "size",
		                 (json_int_t)store_int(q, 1), "agent_id",
		                 store_text(q, 2), "task_id", store_text(q, 3),
		                 "path", store_text(q, 4), "received_at",
		                 (json_int_t)store_int(q, 5)));
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "samples", a));
}

void
events_declare_metrics(void)
{
	metrics_declare("vigil_events_stored_total", METRIC_COUNTER,
	                "events stored (new)");
	metrics_declare("vigil_events_duplicate_total", METRIC_COUNTER,
	                "events received again and not stored twice");
	metrics_declare("vigil_event_batches_total", METRIC_COUNTER,
	                "event batches by result");
	metrics_declare("vigil_samples_received_total", METRIC_COUNTER,
	                "sample uploads accepted");
}

const struct http_route events_gateway_routes[] = {
    {"POST", "/v1/events", gw_events, HTTP_ROUTE_CERT, "events", 16u << 20},
    {"POST", "/v1/samples", gw_sample, HTTP_ROUTE_CERT, "samples", 0},
    {"GET", "/v1/rules/", gw_rules, HTTP_ROUTE_CERT | HTTP_ROUTE_PREFIX,
     "rules", 1024},
    {NULL, NULL, NULL, 0, NULL, 0},
};

const struct http_route events_admin_routes[] = {
    {"POST", "/api/v1/rules", adm_rules_add, 0, "rules", 0},
    {"GET", "/api/v1/rules", adm_rules, 0, "rules", 0},
    {"DELETE", "/api/v1/rules/", adm_rules_delete, HTTP_ROUTE_PREFIX, "rule",
     0},
    {"GET", "/api/v1/events", adm_events, 0, "events", 0},
    {"GET", "/api/v1/samples", adm_samples, 0, "samples", 0},
    {NULL, NULL, NULL, 0, NULL, 0},
};
