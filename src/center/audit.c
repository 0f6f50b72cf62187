/*
 * audit.c: the append-only audit log of every change made through the
 * admin API. The admin server's reply hook (http_server_set_reply_hook)
 * sees every request just before its reply leaves; each authorized
 * POST / PUT / DELETE becomes one entry: who (r->who), when, from where,
 * the action (derived from the route), the target, the state before (when
 * the handler recorded one with audit_before), the reply after, the
 * request body and the status. Secrets in bodies (tokens, keys,
 * passwords) are replaced by "[redacted]" before anything is stored.
 *
 * The entry is part of the request's unit of work (admin_gate begins one
 * for every authorized request but GET / HEAD; store.h): the hook appends
 * it after the handler's writes and commits both, so a change stands with
 * its entry or not at all. When the entry or the commit fails, the unit is
 * rolled back and the hook answers an error in place of the handler's
 * reply (audit_refuse). Effects outside the database wait for the commit
 * (store_after_commit), the entry's own forwarding included.
 *
 * Entries are hash chained (hashchain.c): each carries the SHA-256 of the
 * entry before, so a row changed or deleted in the database file is found
 * by `vigilctl audit verify`. The API offers no way to change or delete
 * an entry: GET /api/v1/audit is the only route.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "hashchain.h"
#include "metrics.h"
#include "query.h"

#define C(r) ((struct center *)(r)->arg)

/* Strings longer than this in a stored body become a size and hash. */
#define AUDIT_MAX_STRING 1024

static void (*audit_sink)(json_t *entry, void *arg);
static void *audit_sink_arg;

void
audit_declare_metrics(void)
{
	metrics_declare("vigil_audit_entries_total", METRIC_COUNTER,
	                "Audit log entries appended");
	metrics_declare("vigil_audit_failures_total", METRIC_COUNTER,
	                "Changes whose audit entry could not be stored");
}

void
audit_set_sink(void (*fn)(json_t *entry, void *arg), void *arg)
{
	audit_sink = fn;
	audit_sink_arg = arg;
}

static int
audit_secret_key(const char *k)
{
	static const char *const names[] = {
	    "token", "key",  "password", "secret", "passphrase",
	    "otp",   "totp", "csrf",     "cookie", "session",
	    "code",  "old",  "new",      "uri"};
	static const char *const suffixes[] = {"_token", "_key", "_password",
	                                       "_secret", "_passphrase"};
	size_t i, n = strlen(k), m;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(k, names[i]) == 0)
			return 1;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		m = strlen(suffixes[i]);
		if (n > m && strcmp(k + n - m, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* A copy of v fit for the log: secrets redacted, long strings replaced by
 * their size and hash (a rule set's content, say). */
static json_t *
audit_redact(json_t *v)
{
	const char *k;
	json_t *o, *e;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		o = json_object();
		json_object_foreach(v, k, e)
		{
			if (audit_secret_key(k) && !json_is_null(e))
				json_object_set_new(o, k,
				                    json_string("[redacted]"));
			else
				json_object_set_new(o, k, audit_redact(e));
		}
		return o;
	case JSON_ARRAY:
		o = json_array();
		json_array_foreach(v, i, e)
		    json_array_append_new(o, audit_redact(e));
		return o;
	case JSON_STRING:
		if (json_string_length(v) > AUDIT_MAX_STRING) {
			char h[65], s[128];

			sha256_hex(json_string_value(v), json_string_length(v),
			           h);
			snprintf(s, sizeof(s), "[%zu bytes, sha256 %s]",
			         json_string_length(v), h);
			return json_string(s);
		}
		return json_copy(v);
	default:
		return json_copy(v);
	}
}

static char *
audit_dump(json_t *v)
{
	if (v == NULL || json_is_null(v))
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* The entry is committed (counted, forwarded) or rolled back (dropped). */
static void
audit_committed(void *arg, int committed)
{
	json_t *e = arg;

	if (committed) {
		metrics_add("vigil_audit_entries_total", NULL, 1);
		if (audit_sink != NULL)
			audit_sink(e, audit_sink_arg);
	}
	json_decref(e);
}

int
audit_append(struct center *c, const struct audit_entry *a)
{
	struct store_rows *q;
	json_t *e = NULL;
	char prev[65], hash[65];
	char *bj = NULL, *aj = NULL, *rj = NULL;
	const char *why = "out of memory";
	long long id = 1, now = (long long)time(NULL);
	int rc = -1, began = 0;

	/* Inside a request's unit a savepoint: the id and prev_hash are
	 * read in the transaction that writes the entry, so an entry rolled
	 * back with its change leaves no gap and no dangling prev_hash. */
	if (store_begin(c->store) == -1)
		goto fail_store;
	began = 1;
	memcpy(prev, HASHCHAIN_ZERO, 65);
	q = store_query(c->store,
	                "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
	if (q == NULL)
		goto fail_store;
	if (store_next(q) == 1) {
		id = store_int(q, 0) + 1;
		snprintf(prev, sizeof(prev), "%s",
		         store_text(q, 1) ? store_text(q, 1) : "");
	}
	store_done(q);
	e = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s?, s:i, s:O?, s:O?, "
	              "s:O?, s:s?, s:s}",
	              "id", (json_int_t)id, "time", (json_int_t)now, "who",
	              a->who, "addr", a->addr, "action", a->action, "target",
	              a->target, "status", a->status, "before", a->before,
	              "after", a->after, "request", a->request, "error",
	              a->error, "prev_hash", prev);
	if (e == NULL || hashchain_hash(e, hash) == -1)
		goto fail;
	bj = audit_dump(a->before);
	aj = audit_dump(a->after);
	rj = audit_dump(a->request);
	if (store_exec(c->store,
	               "INSERT INTO audit (id, time, who, addr, action, "
	               "target, status, before_json, after_json, "
	               "request_json, error, prev_hash, hash) VALUES (?, ?, "
	               "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               S_INT(id), S_INT(now), S_TEXT(a->who), S_TEXT(a->addr),
	               S_TEXT(a->action), S_TEXT(a->target), S_INT(a->status),
	               S_TEXT(bj), S_TEXT(aj), S_TEXT(rj), S_TEXT(a->error),
	               S_TEXT(prev), S_TEXT(hash)) != 1 ||
	    store_commit(c->store) == -1)
		goto fail_store;
	began = 0;
	json_object_set_new(e, "hash", json_string(hash));
	/* Counted and forwarded once durable: at once, or when the unit it
	 * belongs to commits. */
	store_after_commit(c->store, audit_committed, e);
	e = NULL;
	rc = 0;
	goto fail;
fail_store:
	why = store_last_error(c->store);
fail:
	if (rc == -1) {
		metrics_add("vigil_audit_failures_total", NULL, 1);
		log_warnx("audit: cannot record %s on %s by %s: %s", a->action,
		          a->target ? a->target : "-", a->who, why);
	}
	if (began)
		store_rollback(c->store);
	free(bj);
	free(aj);
	free(rj);
	json_decref(e);
	return rc;
}

void
audit_before(struct http_req *r, json_t *before)
{
	json_decref(r->audit_before);
	/* Redacted here, so no entry (nor the event made of it) ever holds
	 * the secret a setting had before the change. */
	r->audit_before = before != NULL ? audit_redact(before) : NULL;
	json_decref(before);
}

void
audit_before_row(struct http_req *r, const char *sql, const char *id)
{
	struct store_rows *q;
	json_t *o = NULL, *v;
	const char *t;
	int i, n;

	q = store_query(C(r)->store, sql, S_TEXT(id));
	if (q != NULL && store_next(q) == 1 && (o = json_object()) != NULL) {
		n = store_ncols(q);
		for (i = 0; i < n; i++) {
			t = store_text(q, i);
			if (store_isnull(q, i))
				v = json_null();
			else if (store_isint(q, i))
				v = json_integer(store_int(q, i));
			else if (t[0] == '{' || t[0] == '[')
				v = json_loads(t, 0, NULL);
			else
				v = NULL;
			if (v == NULL)
				v = json_string(t);
			json_object_set_new(o, store_colname(q, i), v);
		}
	}
	store_done(q);
	if (o != NULL)
		audit_before(r, o);
}

/* "agent.revoke" for POST /api/v1/agents/<id>/revoke, "token.delete" for
 * DELETE /api/v1/tokens/<id>, "token.create" for POST /api/v1/tokens,
 * "finding.update" (target <agent_id>/<seq>) for PUT
 * /api/v1/findings/<agent_id>/<seq>;
 * the target is <id>, or the id / name of what was created. */
static void
audit_action(struct http_req *r, char *act, size_t n, char *target, size_t tn)
{
	const char *name = r->route->name, *verb, *slash;
	size_t nl = strlen(name), i;

	*target = '\0';
	if (strcmp(r->method, "POST") == 0)
		verb = "create";
	else if (strcmp(r->method, "PUT") == 0)
		verb = "update";
	else
		verb = "delete";
	if (r->route->flags & HTTP_ROUTE_PREFIX) {
		slash = strchr(r->rest, '/');
		snprintf(target, tn, "%.*s",
		         slash ? (int)(slash - r->rest) : (int)strlen(r->rest),
		         r->rest);
		/* A key of two parts, "<agent_id>/<seq>" of a finding:
		 * the target is both, the action the method's. */
		if (slash != NULL && slash[1] >= '0' && slash[1] <= '9' &&
		    slash[strspn(slash + 1, "0123456789") + 1] == '\0') {
			snprintf(target, tn, "%s", r->rest);
			snprintf(act, n, "%s.%s", name, verb);
			return;
		}
		if (slash != NULL && slash[1] != '\0') {
			snprintf(act, n, "%s.%s", name, slash + 1);
			for (i = strlen(name) + 1; act[i] != '\0'; i++)
				if (act[i] == '/')
					act[i] = '.';
			return;
		}
	} else if (strcmp(name, "login") == 0 || strcmp(name, "logout") == 0) {
		snprintf(act, n, "%s", name);
		return;
	} else if ((slash = strrchr(r->path, '/')) != NULL &&
	           strcmp(slash, "/confirm") == 0)
		verb = "confirm"; /* session/totp/confirm */
	else if (strcmp(verb, "create") == 0 && nl > 1 && name[nl - 1] == 's')
		nl--; /* "tokens" -> "token.create" */
	snprintf(act, n, "%.*s.%s", (int)nl, name, verb);
}

/*
 * The change of r did not happen: its unit was rolled back because its
 * entry could not be written or committed. The client is told so instead
 * of the reply the handler made (which described a change that is not
 * there: its cookies go too), the way the API reports store failures.
 */
static int
audit_refuse(struct http_req *r, const char *action, int kind, const char *why)
{
	log_warnx("audit: %s by %s from %s: its entry could not be "
	          "committed (%s); the change was rolled back and answered "
	          "%d",
	          action, r->who, r->peer_addr, why,
	          kind == STORE_FAIL_FULL   ? 507
	          : kind == STORE_FAIL_BUSY ? 503
	                                    : 500);
	http_remove_header(r, "Set-Cookie");
	http_remove_header(r, "Location");
	if (kind == STORE_FAIL_FULL)
		http_reply_error(r, 507, "insufficient_storage",
		                 "the change was not made: its audit entry "
		                 "could not be written, the disk holding %s is "
		                 "full",
		                 C(r)->conf.data_dir);
	else if (kind == STORE_FAIL_BUSY) {
		http_set_header(r, "Retry-After", "1");
		http_reply_error(r, 503, "audit_failed",
		                 "the change was not made: its audit entry "
		                 "could not be written, the database is busy; "
		                 "retry");
	} else
		http_reply_error(r, 500, "audit_failed",
		                 "the change was not made: its audit entry "
		                 "could not be written; the center's log says "
		                 "why");
	C(r)->replied_changes = store_changes(C(r)->store);
	return -1;
}

int
audit_reply_hook(struct http_req *r, int status, const void *body, size_t len)
{
	struct store *s = C(r)->store;
	struct audit_entry a;
	json_t *req = NULL, *resp = NULL, *after = NULL, *v;
	const uint8_t *rb;
	char action[128], target[256], why[256] = "";
	size_t rlen = 0;
	int unit = store_unit_active(s), rc, kind = STORE_FAIL_OTHER;

	if (r->route == NULL || r->who[0] == '\0' ||
	    strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) {
		/* Not recorded (a login refused by its rate limit): what it
		 * wrote, if anything, needs no entry. */
		if (unit && store_unit_commit(s) == -1) {
			snprintf(why, sizeof(why), "%s", store_last_error(s));
			return audit_refuse(
			    r, r->route != NULL ? r->route->name : r->path,
			    store_last_failure(s), why);
		}
		C(r)->replied_changes = store_changes(s);
		return 0;
	}
	audit_action(r, action, sizeof(action), target, sizeof(target));
	if (!r->deferred && (rb = http_req_body(r, &rlen)) != NULL &&
	    rlen > 0) {
		json_t *j = json_loadb((const char *)rb, rlen, 0, NULL);
		char h[65];

		if (j != NULL) {
			req = audit_redact(j);
			json_decref(j);
		} else {
			sha256_hex(rb, rlen, h);
			req = json_pack("{s:I, s:s}", "size", (json_int_t)rlen,
			                "sha256", h);
		}
	}
	if (len > 0)
		resp = json_loadb(body, len, 0, NULL);
	memset(&a, 0, sizeof(a));
	a.who = r->who;
	a.addr = r->peer_addr;
	a.action = action;
	a.status = status;
	a.before = r->audit_before;
	a.request = req;
	if (status >= 200 && status < 300) {
		if (resp != NULL)
			a.after = after = audit_redact(resp);
		if (target[0] == '\0' && resp != NULL) {
			if ((v = json_object_get(resp, "id")) != NULL &&
			    json_is_string(v))
				snprintf(target, sizeof(target), "%s",
				         json_string_value(v));
			else if ((v = json_object_get(resp, "name")) != NULL &&
			         json_is_string(v))
				snprintf(target, sizeof(target), "%s",
				         json_string_value(v));
		}
	} else {
		json_t *err = json_object_get(resp, "error");

		a.error = json_string_value(json_object_get(err, "message"));
		if (a.error == NULL)
			a.error = "request failed";
	}
	a.target = target[0] != '\0' ? target : NULL;
	rc = audit_append(C(r), &a);
	if (unit) {
		if (rc == 0 && store_unit_commit(s) == -1) {
			metrics_add("vigil_audit_failures_total", NULL, 1);
			rc = -1;
		}
		/* Why, before a rollback can say anything else. */
		kind = store_last_failure(s);
		snprintf(why, sizeof(why), "%s", store_last_error(s));
		if (rc == -1)
			store_unit_rollback(s);
	}
	json_decref(req);
	json_decref(resp);
	json_decref(after);
	/* Outside a unit (a change recorded after the fact, a refusal
	 * whose change was already undone), a failed entry is logged and
	 * counted, and the reply stands: it changed nothing, or the change
	 * cannot be taken back any more. */
	if (rc == 0 || !unit) {
		C(r)->replied_changes = store_changes(s);
		return 0;
	}
	return audit_refuse(r, action, kind, why);
}

json_t *
audit_row_json(struct store_rows *q)
{
	json_t *o, *v;
	int col;
	static const char *const js[] = {"before", "after", "request"};

	o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s?, s:I}", "id",
	              (json_int_t)store_int(q, 0), "time",
	              (json_int_t)store_int(q, 1), "who", store_text(q, 2),
	              "addr", store_text(q, 3), "action", store_text(q, 4),
	              "target", store_text(q, 5), "status",
	              (json_int_t)store_int(q, 6));
	if (o == NULL)
		return NULL;
	if (json_object_get(o, "target") == NULL)
		json_object_set_new(o, "target", json_null());
	for (col = 7; col <= 9; col++) {
		v = store_isnull(q, col)
		        ? json_null()
		        : json_loads(store_text(q, col), JSON_DECODE_ANY, NULL);
		/* A value that no longer parses was tampered with: show it
		 * as the string it is, so verify reports the entry. */
		if (v == NULL)
			v = json_string(store_text(q, col));
		json_object_set_new(o, js[col - 7], v ? v : json_null());
	}
	json_object_set_new(
	    o, "error",
	    store_isnull(q, 10) ? json_null() : json_string(store_text(q, 10)));
	json_object_set_new(o, "prev_hash", json_string(store_text(q, 11)));
	json_object_set_new(o, "hash", json_string(store_text(q, 12)));
	return o;
}

static const struct query_field audit_fields[] = {
    {"id", "id", QF_INT, QF_SORT},
    {"time", "time", QF_INT, QF_SORT | QF_RANGE},
    {"who", "who", QF_TEXT, QF_SORT | QF_EQ},
    {"addr", "addr", QF_TEXT, QF_EQ},
    {"action", "action", QF_TEXT, QF_SORT | QF_EQ},
    {"target", "target", QF_TEXT, QF_EQ},
    {"status", "status", QF_INT, QF_EQ},
    {NULL, NULL, 0, 0},
};

static const struct query_spec audit_spec = {
    .table = "audit",
    .columns = AUDIT_COLUMNS,
    .fields = audit_fields,
    .key = "id",
    .key_type = QF_INT,
    .default_sort = "-id",
    .search = "action || ' ' || COALESCE(target, '') || ' ' || who || ' "
              "' || COALESCE(error, '')",
};

static json_t *
audit_item(struct store_rows *q, void *arg)
{
	(void)arg;
	return audit_row_json(q);
}

static void
adm_audit(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &audit_spec, audit_item, NULL);
}

const struct http_route audit_admin_routes[] = {
    {"GET", "/api/v1/audit", adm_audit, 0, "audit", 0, ROLE_ANALYST},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
