/*
 * admin.c: the admin API on the admin listener (HTTPS, default 8443), the
 * part needed by the foundation: agents (list, show, revoke), pending
 * enrollment requests (approve, reject), enrollment tokens, notices, health
 * and Prometheus metrics. Every route needs a bearer API key; the bootstrap
 * key is written 0600 into the data directory at first start. Keys and
 * tokens are stored as SHA-256 hashes only.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zip.h>

#include "gwproc.h"
#include "center.h"
#include "metrics.h"
#include "query.h"
#include "schema.h"
#include "tls.h"

#define C(r) ((struct center *)(r)->arg)

int
admin_bootstrap_key(struct center *c, struct buf *err)
{
	struct store_rows *q;
	char key[4 + 64 + 1], hash[65], id[37];
	char line[sizeof(key) + 1];
	int n = 0, rc;

	q = store_query(c->store, "SELECT COUNT(*) FROM api_keys");
	if (q == NULL || store_next(q) != 1) {
		store_done(q);
		buf_puts(err, "cannot read api_keys");
		return -1;
	}
	n = (int)store_int(q, 0);
	store_done(q);
	if (n > 0) {
		if (access(c->paths.admin_key, F_OK) == 0 &&
		    tls_check_key_perms(c->paths.admin_key, err) == -1)
			return -1;
		return 0;
	}
	/* No key in the store but a key file: never write over it (the
	 * database was replaced; center_store_open refuses the usual
	 * cases, this is the last guard). */
	if (access(c->paths.admin_key, F_OK) == 0) {
		buf_printf(err,
		           "%s exists but the database holds no API key: "
		           "not overwriting it. Restore the database from a "
		           "backup, or move %s away to make a new admin key",
		           c->paths.admin_key, c->paths.admin_key);
		return -1;
	}
	memcpy(key, "vgk_", 4);
	random_hex(key + 4, 32);
	sha256_hex(key, strlen(key), hash);
	random_uuid(id);
	snprintf(line, sizeof(line), "%s\n", key);
	rc = tls_write_file(c->paths.admin_key, line, strlen(line), 0600, err);
	if (rc == 0 &&
	    store_exec(
	        c->store,
	        "INSERT INTO api_keys (id, hash, role, label, created_at) "
	        "VALUES (?, ?, 'admin', 'bootstrap', ?)",
	        S_TEXT(id), S_TEXT(hash), S_INT(time(NULL))) != 1) {
		buf_puts(err, "cannot store the bootstrap key");
		rc = -1;
	}
	explicit_bzero(key, sizeof(key));
	explicit_bzero(line, sizeof(line));
	if (rc == 0)
		log_info("admin: bootstrap admin API key written to %s",
		         c->paths.admin_key);
	return rc;
}

/*
 * The admin server's authorizer and reply check around auth_authorize: the
 * store's error count is noted when a request begins, and a request during
 * which a statement failed (a damaged page, an I/O error) answers 503
 * instead of whatever the handler made of the rows it could read: an empty
 * list, a short page, "invalid key"; what it changed is rolled back. The
 * log names the table (store.c).
 *
 * Each authorized request that may change something (any method but GET
 * and HEAD) is one unit of work of the store: the handler's writes and the
 * audit entry the reply hook appends commit together when the reply
 * leaves, or not at all (audit.c). Handlers answer before they return, so
 * no transaction outlives the request's turn of the event loop.
 */
int
admin_gate(struct http_req *r)
{
	r->mark = store_errors(C(r)->store);
	if (auth_authorize(r) == -1)
		return -1;
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		store_unit_begin(C(r)->store);
	return 0;
}

/* A handler that deferred its reply would hold the unit (and the write
 * lock) across the event loop, or see its change committed without its
 * entry: no admin route that changes anything may defer. */
void
admin_handler_done(struct http_req *r)
{
	struct center *c = C(r);

	if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
		return;
	if (store_unit_active(c->store))
		fatalx("%s: %s %s returned before its change was answered "
		       "and committed",
		       __func__, r->method, r->route ? r->route->path : "?");
	/* Writes after the reply are outside the unit: committed alone,
	 * without an entry. A bug of the handler; said loudly. */
	if (store_changes(c->store) != c->replied_changes)
		log_warnx("admin: %s %s wrote to the database after its "
		          "reply, outside its audited change",
		          r->method, r->route ? r->route->path : "?");
}

int
admin_reply_check(struct http_req *r)
{
	if (store_errors(C(r)->store) == r->mark)
		return 0;
	/* Whatever it changed was decided on rows it could not read. */
	store_unit_rollback(C(r)->store);
	metrics_add("vigil_store_read_failures_total", NULL, 1);
	http_reply_error(r, 503, "store_unreadable",
	                 "the center's database could not be read completely "
	                 "(damaged or failing storage); nothing partial is "
	                 "served. The center's log names the table; restore "
	                 "from a backup (docs/guide.md, \"Backup and "
	                 "restore\")");
	return -1;
}

#define AUTH(r)                                                                \
	do {                                                                   \
		if (admin_authorize(r) == -1)                                  \
			return;                                                \
	} while (0)

static const char *
agent_state(struct center *c, const char *status, long long last_seen)
{
	if (strcmp(status, "active") != 0)
		return status;
	if (last_seen != 0 &&
	    last_seen >= (long long)time(NULL) - 3 * c->conf.poll_interval)
		return "online";
	return "offline";
}

static json_t *
agent_row(struct center *c, struct store_rows *q)
{
	json_t *o = db_agent_json(q);
	const char *st = json_string_value(json_object_get(o, "status"));
	json_int_t seen = json_integer_value(json_object_get(o, "last_seen"));

	json_object_set_new(
	    o, "state", json_string(agent_state(c, st ? st : "active", seen)));
	return o;
}

static const struct query_field agent_fields[] = {
    {"id", "id", QF_TEXT, QF_SORT | QF_EQ},
    {"status", "status", QF_TEXT, QF_SORT | QF_EQ},
    {"hostname", "hostname", QF_TEXT, QF_SORT | QF_EQ | QF_NULL},
    {"os", "os", QF_TEXT, QF_SORT | QF_EQ | QF_NULL},
    {"label", "labels", QF_TEXT, QF_LABEL},
    {"last_seen", "last_seen", QF_INT, QF_SORT | QF_RANGE | QF_NULL},
    {"enrolled_at", "enrolled_at", QF_INT, QF_SORT | QF_RANGE},
    {NULL, NULL, 0, 0},
};

static const char *const agent_extra[] = {"state", NULL};

static const struct query_spec agent_spec = {
    .table = "agents",
    .columns = AGENT_COLUMNS,
    .fields = agent_fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "hostname",
    .search = "COALESCE(hostname, '') || ' ' || COALESCE(fqdn, '') || ' ' "
              "|| id || ' ' || COALESCE(ips, '')",
    .extra = agent_extra,
};

static json_t *
agent_item(struct store_rows *q, void *arg)
{
	return agent_row(arg, q);
}

/* ?state=: online and offline depend on the clock, not a column, so the
 * condition carries the line agent_state draws (a number made here, never
 * text from the request). It is part of the query, so that every page
 * holds `limit` matching agents. */
static void
adm_agents(struct http_req *r)
{
	struct center *c = C(r);
	struct query_spec spec = agent_spec;
	const char *state;
	char where[128];
	long long line;

	AUTH(r);
	state = http_req_query(r, "state");
	line = (long long)time(NULL) - 3 * c->conf.poll_interval;
	if (state == NULL) {
		query_reply(r, c->store, &agent_spec, agent_item, c);
		return;
	}
	if (strcmp(state, "online") == 0)
		snprintf(where, sizeof(where),
		         "status = 'active' AND last_seen >= %lld", line);
	else if (strcmp(state, "offline") == 0)
		snprintf(where, sizeof(where),
		         "status = 'active' AND (last_seen IS NULL OR "
		         "last_seen < %lld)",
		         line);
	else if (strcmp(state, "revoked") == 0)
		snprintf(where, sizeof(where), "status = 'revoked'");
	else {
		http_reply_error_field(r, 400, "bad_request", "state",
		                       "state: must be online, offline or "
		                       "revoked");
		return;
	}
	spec.where = where;
	query_reply(r, c->store, &spec, agent_item, c);
}

static void
agent_show(struct http_req *r, const char *id)
{
	struct center *c = C(r);
	struct store_rows *q;
	json_t *o = NULL;

	q = store_query(c->store,
	                "SELECT " AGENT_COLUMNS " FROM agents WHERE id = ?",
	                S_TEXT(id));
	if (q != NULL && store_next(q) == 1)
		o = agent_row(c, q);
	store_done(q);
	if (o == NULL)
		http_reply_error(r, 404, "not_found", "no agent %s", id);
	else
		http_reply_json(r, 200, o);
}

/* Labels of a token or an agent: an object of at most 32 members whose keys
 * and string values use letters, digits, '-', '_' and '.'. 0, or -1 after
 * replying 400. */
static int
labels_check(struct http_req *r, json_t *v)
{
	const char *lk;
	json_t *lv;

	if (!json_is_object(v) || json_object_size(v) > 32) {
		http_reply_error_field(
		    r, 400, "bad_request", "labels",
		    "labels: must be an object of at most 32 "
		    "string values");
		return -1;
	}
	json_object_foreach(v, lk, lv)
	{
		if (!str_name_ok(lk, strlen(lk), 63) || !json_is_string(lv) ||
		    !str_name_ok(json_string_value(lv),
		                 strlen(json_string_value(lv)), 255)) {
			http_reply_error_field(
			    r, 400, "bad_request", "labels",
			    "labels: '%.64s': keys and values use letters, "
			    "digits, '-', '_' and '.'",
			    lk);
			return -1;
		}
	}
	return 0;
}

static const struct schema_field agent_labels_schema[] = {
    {"labels", SCH_OBJECT, 1},
    {NULL, 0, 0},
};

/* PUT /api/v1/agents/<id>/labels: replaces the labels (tasks aimed at
 * labels pick agents by them when created). */
static void
agent_labels(struct http_req *r, const char *id)
{
	json_t *j, *labels;
	char *ls = NULL;
	int n;

	if ((j = schema_body(r, agent_labels_schema)) == NULL)
		return;
	labels = json_object_get(j, "labels");
	if (labels_check(r, labels) == -1)
		goto out;
	audit_before_row(r, "SELECT id, labels FROM agents WHERE id = ?", id);
	ls = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
	n = ls == NULL ? -1
	               : store_exec(C(r)->store,
	                            "UPDATE agents SET labels = ? WHERE id = ?",
	                            S_TEXT(ls), S_TEXT(id));
	if (n < 0)
		http_reply_error(r, 500, "store", "store unavailable");
	else if (n == 0)
		http_reply_error(r, 404, "not_found", "no agent %s", id);
	else {
		log_info("admin: labels of agent %s set to %s by %s", id, ls,
		         r->who);
		stream_emit_id(C(r), "agent", id);
		agent_show(r, id);
	}
out:
	free(ls);
	json_decref(j);
}

static void
agent_revoke(struct http_req *r, const char *id)
{
	struct center *c = C(r);
	long long now = (long long)time(NULL);
	int n, a;

	audit_before_row(r,
	                 "SELECT id, status, hostname, cert_serial FROM "
	                 "agents WHERE id = ?",
	                 id);
	if (store_begin(c->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return;
	}
	a = store_exec(c->store,
	               "UPDATE agents SET status = 'revoked' WHERE id = ? AND "
	               "status = 'active'",
	               S_TEXT(id));
	n = a != 1 ? a
	           : store_exec(c->store,
	                        "UPDATE certs SET revoked_at = ? WHERE "
	                        "agent_id = ? AND revoked_at IS NULL",
	                        S_INT(now), S_TEXT(id));
	if (a < 0 || n < 0 || (a == 1 && store_commit(c->store) == -1)) {
		store_rollback(c->store);
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	if (a == 0) {
		store_rollback(c->store);
		http_reply_error(
		    r, 404, "not_found",
		    "no active agent %s (unknown or already revoked)", id);
		return;
	}
	log_info("admin: revoked agent %s (%d certificates) by %s", id, n,
	         r->peer_addr);
	metrics_add("vigil_revocations_total", NULL, 1);
	gwproc_agent_revoked(c, id); /* gateway workers refuse it too */
	stream_emit_id(c, "agent", id);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:s, s:i}", "id", id, "status",
	                          "revoked", "certificates_revoked", n));
}

/* /api/v1/agents/<id>, /api/v1/agents/<id>/revoke and
 * /api/v1/agents/<id>/labels */
static void
adm_agent(struct http_req *r)
{
	char id[64];
	const char *action;

	AUTH(r);
	if ((action = http_req_rest_id(r, id, sizeof(id))) == NULL) {
		http_reply_error(r, 404, "not_found", "no such agent");
		return;
	}
	if (*action == '\0' && strcmp(r->method, "GET") == 0)
		agent_show(r, id);
	else if (strcmp(action, "/revoke") == 0 &&
	         strcmp(r->method, "POST") == 0) {
		if (schema_no_body(r) == 0)
			agent_revoke(r, id);
	} else if (strcmp(action, "/labels") == 0 &&
	           strcmp(r->method, "PUT") == 0)
		agent_labels(r, id);
	else
		http_reply_error(r, 404, "not_found", "no such resource");
}

static const struct query_field enrollment_fields[] = {
    {"id", "id", QF_TEXT, QF_EQ | QF_SORT},
    {"status", "status", QF_TEXT, QF_EQ},
    {"agent_id", "agent_id", QF_TEXT, QF_EQ},
    {"token_id", "token_id", QF_TEXT, QF_EQ},
    {"source_addr", "source_addr", QF_TEXT, QF_EQ},
    {"created_at", "created_at", QF_INT, QF_SORT | QF_RANGE},
    {NULL, NULL, 0, 0},
};

#define ENROLLMENT_COLUMNS                                                     \
	"id, status, agent_id, facts, labels, token_id, source_addr, "         \
	"cloned_from, created_at, decided_at"

/* Without ?status= the list holds the pending requests, as it always
 * did: the requests an administrator has to decide on. */
static const struct query_spec enrollment_pending_spec = {
    .table = "enrollments",
    .columns = ENROLLMENT_COLUMNS,
    .fields = enrollment_fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "created_at",
    .where = "status = 'pending'",
};

static const struct query_spec enrollment_spec = {
    .table = "enrollments",
    .columns = ENROLLMENT_COLUMNS,
    .fields = enrollment_fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "created_at",
};

static json_t *
enrollment_item(struct store_rows *q, void *arg)
{
	json_t *facts = json_loads(store_text(q, 3), 0, NULL);
	json_t *labels = json_loads(store_text(q, 4), 0, NULL);

	(void)arg;
	return json_pack(
	    "{s:s, s:s, s:s, s:o, s:o, s:s?, s:s?, s:s?, s:I, s:o}", "id",
	    store_text(q, 0), "status", store_text(q, 1), "agent_id",
	    store_text(q, 2), "facts", facts ? facts : json_object(), "labels",
	    labels ? labels : json_object(), "token_id", store_text(q, 5),
	    "source_addr", store_text(q, 6), "cloned_from", store_text(q, 7),
	    "created_at", (json_int_t)store_int(q, 8), "decided_at",
	    store_isnull(q, 9) ? json_null() : json_integer(store_int(q, 9)));
}

static void
adm_enrollments(struct http_req *r)
{
	const char *st = http_req_query(r, "status");

	AUTH(r);
	if (st != NULL && strcmp(st, "pending") != 0 &&
	    strcmp(st, "approved") != 0 && strcmp(st, "rejected") != 0) {
		http_reply_error_field(
		    r, 400, "bad_request", "status",
		    "status: must be pending, approved or rejected");
		return;
	}
	query_reply(r, C(r)->store,
	            st != NULL ? &enrollment_spec : &enrollment_pending_spec,
	            enrollment_item, NULL);
}

struct pending {
	char *agent_id, *csr, *facts, *labels, *token_id, *addr, *cloned;
};

static void
pending_free(struct pending *p)
{
	free(p->agent_id);
	free(p->csr);
	free(p->facts);
	free(p->labels);
	free(p->token_id);
	free(p->addr);
	free(p->cloned);
}

static int
load_pending(struct center *c, const char *id, struct pending *p)
{
	struct store_rows *q;
	int found = 0;

	memset(p, 0, sizeof(*p));
	q = store_query(
	    c->store,
	    "SELECT agent_id, csr, facts, labels, token_id, source_addr, "
	    "cloned_from FROM enrollments WHERE id = ? AND status = 'pending'",
	    S_TEXT(id));
	if (q != NULL && store_next(q) == 1) {
		found = 1;
		p->agent_id = dup_or_null(store_text(q, 0));
		p->csr = dup_or_null(store_text(q, 1));
		p->facts = dup_or_null(store_text(q, 2));
		p->labels = dup_or_null(store_text(q, 3));
		p->token_id = dup_or_null(store_text(q, 4));
		p->addr = dup_or_null(store_text(q, 5));
		p->cloned = dup_or_null(store_text(q, 6));
	}
	store_done(q);
	return found ? 0 : -1;
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *
jarr(json_t *o, const char *k)
{
	json_t *a = json_object_get(o, k);
	char *s;

	if (a != NULL)
		return json_dumps(a, JSON_COMPACT);
	a = json_array();
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static void
enrollment_approve(struct http_req *r, const char *id)
{
	struct center *c = C(r);
	struct pending p;
	struct buf pem, err;
	json_t *f = NULL;
	char *ips = NULL, *macs = NULL, requester[128];
	X509 *x = NULL;

	buf_init(&pem, 16384);
	buf_init(&err, 1024);
	if (load_pending(c, id, &p) == -1) {
		http_reply_error(r, 404, "not_found",
		                 "no pending enrollment request %s", id);
		goto out;
	}
	f = json_loads(p.facts, 0, NULL);
	ips = jarr(f, "ips");
	macs = jarr(f, "macs");
	snprintf(requester, sizeof(requester), "approval of %.40s by %.64s", id,
	         r->who);
	if (keyproc_sign(c, p.csr, p.agent_id, c->conf.agent_cert_lifetime,
	                 requester, &pem, &err) == -1 ||
	    (x = tls_cert_from_pem(buf_cstr(&pem), pem.len)) == NULL) {
		http_reply_error(r, 500, "issue_failed",
		                 "the center could not issue a certificate: %s",
		                 buf_cstr(&err));
		goto out;
	}
	if (store_begin(c->store) == -1)
		goto store_fail;
	if (store_exec(
	        c->store,
	        "INSERT INTO agents (id, status, hostname, fqdn, os, kernel, "
	        "arch, ips, macs, machine_id, agent_version, labels, "
	        "enrolled_at, token_id, source_addr, cloned_from) "
	        "VALUES (?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	        "?)",
	        S_TEXT(p.agent_id), S_TEXT(jstr(f, "hostname")),
	        S_TEXT(jstr(f, "fqdn")), S_TEXT(jstr(f, "os")),
	        S_TEXT(jstr(f, "kernel")), S_TEXT(jstr(f, "arch")), S_TEXT(ips),
	        S_TEXT(macs), S_TEXT(jstr(f, "machine_id")),
	        S_TEXT(jstr(f, "agent_version")), S_TEXT(p.labels),
	        S_INT(time(NULL)), S_TEXT(p.token_id), S_TEXT(p.addr),
	        S_TEXT(p.cloned)) != 1 ||
	    db_add_cert(c->store, p.agent_id, x) == -1 ||
	    store_exec(
	        c->store,
	        "UPDATE enrollments SET status = 'approved', decided_at = ?, "
	        "certificate = ? WHERE id = ? AND status = 'pending'",
	        S_INT(time(NULL)), S_TEXT(buf_cstr(&pem)), S_TEXT(id)) != 1) {
		store_rollback(c->store);
		goto store_fail;
	}
	if (store_commit(c->store) == -1) {
		store_rollback(c->store);
		goto store_fail;
	}
	metrics_add("vigil_enrollments_total", "result=\"approved\"", 1);
	stream_emit_id(c, "enrollment", id);
	stream_emit_id(c, "agent", p.agent_id);
	log_info("admin: approved enrollment %s: agent %s (%s)", id, p.agent_id,
	         jstr(f, "hostname"));
	http_reply_json(r, 200,
	                json_pack("{s:s, s:s, s:s}", "id", id, "status",
	                          "approved", "agent_id", p.agent_id));
	goto out;
store_fail:
	http_reply_error(r, 500, "store", "cannot record the approval");
out:
	X509_free(x);
	json_decref(f);
	free(ips);
	free(macs);
	pending_free(&p);
	buf_free(&pem);
	buf_free(&err);
}

static void
enrollment_reject(struct http_req *r, const char *id)
{
	struct center *c = C(r);
	int n;

	n = store_exec(
	    c->store,
	    "UPDATE enrollments SET status = 'rejected', decided_at = ? "
	    "WHERE id = ? AND status = 'pending'",
	    S_INT(time(NULL)), S_TEXT(id));
	if (n != 1) {
		http_reply_error(r, 404, "not_found",
		                 "no pending enrollment request %s", id);
		return;
	}
	metrics_add("vigil_enrollments_total", "result=\"rejected\"", 1);
	stream_emit_id(c, "enrollment", id);
	log_info("admin: rejected enrollment %s", id);
	http_reply_json(
	    r, 200, json_pack("{s:s, s:s}", "id", id, "status", "rejected"));
}

/* /api/v1/enrollments/<id>/approve|reject */
static void
adm_enrollment(struct http_req *r)
{
	char id[64];
	const char *action;

	AUTH(r);
	if ((action = http_req_rest_id(r, id, sizeof(id))) == NULL) {
		http_reply_error(r, 404, "not_found", "no such resource");
		return;
	}
	if (strcmp(action, "/approve") != 0 && strcmp(action, "/reject") != 0)
		http_reply_error(r, 404, "not_found", "no such resource");
	else if (schema_no_body(r) == -1)
		return;
	else if (strcmp(action, "/approve") == 0)
		enrollment_approve(r, id);
	else if (strcmp(action, "/reject") == 0)
		enrollment_reject(r, id);
	else
		http_reply_error(r, 404, "not_found", "no such resource");
}

static json_t *
token_row(struct store_rows *q)
{
	json_t *labels = json_loads(store_text(q, 4), 0, NULL);

	return json_pack("{s:s, s:I, s:I, s:o, s:o, s:I}", "id",
	                 store_text(q, 0), "uses", (json_int_t)store_int(q, 1),
	                 "used", (json_int_t)store_int(q, 2), "expires_at",
	                 store_isnull(q, 3) ? json_null()
	                                    : json_integer(store_int(q, 3)),
	                 "labels", labels ? labels : json_object(),
	                 "created_at", (json_int_t)store_int(q, 5));
}

static const struct query_field token_fields[] = {
    {"id", "id", QF_TEXT, QF_EQ | QF_SORT},
    {"created_at", "created_at", QF_INT, QF_SORT | QF_RANGE},
    {"expires_at", "expires_at", QF_INT, QF_SORT | QF_RANGE | QF_NULL},
    {"label", "labels", QF_TEXT, QF_LABEL},
    {NULL, NULL, 0, 0},
};

static const struct query_spec token_spec = {
    .table = "tokens",
    .columns = "id, max_uses, used, expires_at, labels, created_at",
    .fields = token_fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "created_at",
};

static json_t *
token_item(struct store_rows *q, void *arg)
{
	(void)arg;
	return token_row(q);
}

static void
adm_tokens(struct http_req *r)
{
	AUTH(r);
	query_reply(r, C(r)->store, &token_spec, token_item, NULL);
}

static const struct schema_field token_schema[] = {
    {"uses", SCH_INT, 0},
    {"expires", SCH_DURATION, 0},
    {"labels", SCH_OBJECT, 0},
    {NULL, 0, 0},
};

static void
adm_token_create(struct http_req *r)
{
	json_t *j, *v, *labels = NULL, *own_labels = NULL;
	const char *k;
	long long uses = 1, expires = 7 * 86400, now = (long long)time(NULL);
	char token[4 + 64 + 1], hash[65], id[4 + 16 + 1], *ls = NULL;

	AUTH(r);
	if ((j = schema_body(r, token_schema)) == NULL)
		return;
	json_object_foreach(j, k, v)
	{
		if (strcmp(k, "uses") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 1000000) {
				http_reply_error(
				    r, 400, "bad_request",
				    "uses: must be an integer 1..1000000");
				goto out;
			}
			uses = json_integer_value(v);
		} else if (strcmp(k, "expires") == 0) {
			if (json_is_integer(v))
				expires = json_integer_value(v);
			else if (!json_is_string(v) ||
			         str_to_duration(json_string_value(v),
			                         &expires) == -1) {
				http_reply_error(
				    r, 400, "bad_request",
				    "expires: must be seconds or a duration "
				    "such as 30m, 24h, 7d");
				goto out;
			}
			if (expires < 1 || expires > 3650LL * 86400) {
				http_reply_error(
				    r, 400, "bad_request",
				    "expires: must be between 1 second and "
				    "10 years");
				goto out;
			}
		} else if (strcmp(k, "labels") == 0) {
			if (labels_check(r, v) == -1)
				goto out;
			labels = v;
		} else {
			http_reply_error(
			    r, 400, "bad_request",
			    "%.64s: unknown field (known: uses, expires, "
			    "labels)",
			    k);
			goto out;
		}
	}
	memcpy(token, "vgt_", 4);
	random_hex(token + 4, 32);
	memcpy(id, "tok_", 4);
	random_hex(id + 4, 8);
	sha256_hex(token, strlen(token), hash);
	if (labels == NULL)
		labels = own_labels = json_object();
	ls = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
	if (store_exec(
	        C(r)->store,
	        "INSERT INTO tokens (id, hash, max_uses, used, expires_at, "
	        "labels, created_at) VALUES (?, ?, ?, 0, ?, ?, ?)",
	        S_TEXT(id), S_TEXT(hash), S_INT(uses), S_INT(now + expires),
	        S_TEXT(ls), S_INT(now)) != 1) {
		http_reply_error(r, 500, "store", "cannot store the token");
		goto out;
	}
	log_info("admin: created enrollment token %s (uses %lld, expires in "
	         "%lld s) by %s",
	         id, uses, expires, r->peer_addr);
	/* The token itself is shown once, here, and stored only hashed. */
	http_reply_json(r, 201,
	                json_pack("{s:s, s:s, s:I, s:I, s:O}", "id", id,
	                          "token", token, "uses", (json_int_t)uses,
	                          "expires_at", (json_int_t)(now + expires),
	                          "labels", labels));
out:
	explicit_bzero(token, sizeof(token));
	json_decref(own_labels);
	free(ls);
	json_decref(j);
}

static void
adm_token_delete(struct http_req *r)
{
	int n;

	AUTH(r);
	if (schema_no_body(r) == -1)
		return;
	audit_before_row(r,
	                 "SELECT id, max_uses, used, expires_at, labels, "
	                 "created_at FROM tokens WHERE id = ?",
	                 r->rest);
	n = store_exec(C(r)->store, "DELETE FROM tokens WHERE id = ?",
	               S_TEXT(r->rest));
	if (n != 1) {
		http_reply_error(r, 404, "not_found", "no token %.64s",
		                 r->rest);
		return;
	}
	log_info("admin: deleted enrollment token %s", r->rest);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "id", r->rest, "deleted", 1));
}

static const struct query_field notice_fields[] = {
    {"id", "id", QF_INT, QF_SORT},
    {"kind", "kind", QF_TEXT, QF_EQ},
    {"agent", "agent_id", QF_TEXT, QF_EQ},
    {"time", "time", QF_INT, QF_RANGE},
    {NULL, NULL, 0, 0},
};

static const struct query_spec notice_spec = {
    .table = "notices",
    .columns = "id, time, kind, agent_id, message",
    .fields = notice_fields,
    .key = "id",
    .key_type = QF_INT,
    .default_sort = "-id",
    .search = "message",
};

static json_t *
notice_item(struct store_rows *q, void *arg)
{
	(void)arg;
	return json_pack(
	    "{s:I, s:I, s:s, s:s?, s:s}", "id", (json_int_t)store_int(q, 0),
	    "time", (json_int_t)store_int(q, 1), "kind", store_text(q, 2),
	    "agent_id", store_text(q, 3), "message", store_text(q, 4));
}

static void
adm_notices(struct http_req *r)
{
	AUTH(r);
	query_reply(r, C(r)->store, &notice_spec, notice_item, NULL);
}

static void
adm_health(struct http_req *r)
{
	struct center *c = C(r);

	http_reply_json(
	    r, 200,
	    json_pack("{s:s, s:s, s:I, s:s, s:b, s:s}", "status", "ok",
	              "version", VIGIL_VERSION, "uptime",
	              (json_int_t)((long long)time(NULL) - c->started), "fqdn",
	              c->conf.fqdn, "key_process", c->keyfd != -1, "role",
	              c->conf.role == CENTER_ROLE_COLLECTOR ? "collector"
	              : c->conf.role == CENTER_ROLE_MASTER  ? "master"
	                                                    : "center"));
}

static void
adm_version(struct http_req *r)
{
	struct center *c = C(r);

	AUTH(r);
	http_reply_json(
	    r, 200,
	    json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:i, s:i}", "version",
	              VIGIL_VERSION, "build", "compiler", __VERSION__,
	              "openssl", OpenSSL_version(OPENSSL_VERSION), "libevent",
	              event_get_version(), "jansson", JANSSON_VERSION, "libzip",
	              zip_libzip_version(), "schema_version",
	              store_schema_version(c->store), "schema_latest",
	              (int)center_nmigrations));
}

#define VERSIONS_MAX  32
#define VERSIONS_SEEN 256

/* vigil_agent_versions{version}: active agents by the version they last
 * reported, for the dashboard's "agent versions" at any fleet size (one
 * GROUP BY, not the agents themselves). The agents send the text: labels
 * keep to [A-Za-z0-9.+~_-], 64 bytes, and the VERSIONS_MAX most common
 * versions; the rest count as "other". A version no longer reported is
 * set to 0, not left at its last count. */
static void
metrics_agent_versions(struct center *c)
{
	static char seen[VERSIONS_SEEN][80];
	static size_t nseen;
	char now[VERSIONS_MAX + 1][80];
	double count[VERSIONS_MAX + 1];
	struct store_rows *q;
	const char *v;
	size_t n = 0, i, j;
	double other = 0;

	q = store_query(c->store,
	                "SELECT agent_version, COUNT(*) FROM agents WHERE "
	                "status = 'active' GROUP BY 1 ORDER BY 2 DESC");
	while (q != NULL && store_next(q) == 1) {
		v = store_text(q, 0);
		if (v == NULL || *v == '\0')
			v = "unknown";
		for (i = 0; v[i] != '\0'; i++)
			if (!(isalnum((unsigned char)v[i]) ||
			      strchr(".+~_-", v[i]) != NULL))
				break;
		if (n == VERSIONS_MAX || v[i] != '\0' || i > 64) {
			other += (double)store_int(q, 1);
			continue;
		}
		snprintf(now[n], sizeof(now[n]), "version=\"%s\"", v);
		count[n++] = (double)store_int(q, 1);
	}
	store_done(q);
	if (other > 0) {
		snprintf(now[n], sizeof(now[n]), "version=\"other\"");
		count[n++] = other;
	}
	for (i = 0; i < nseen; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(seen[i], now[j]) == 0)
				break;
		if (j == n)
			metrics_set("vigil_agent_versions", seen[i], 0);
	}
	for (j = 0; j < n; j++)
		metrics_set("vigil_agent_versions", now[j], count[j]);
	/* What was set before and is 0 now stays in the list (it renders). */
	for (j = 0; j < n; j++) {
		for (i = 0; i < nseen; i++)
			if (strcmp(seen[i], now[j]) == 0)
				break;
		if (i == nseen && nseen < VERSIONS_SEEN)
			memcpy(seen[nseen++], now[j], sizeof(seen[0]));
	}
}

static void
adm_metrics(struct http_req *r)
{
	struct center *c = C(r);
	struct store_rows *q;
	struct buf out;
	long long online = 0, offline = 0, revoked = 0, pending = 0;
	long long active = 0, cutoff;
	enum http_close_reason why;
	char lbl[96];

	AUTH(r);
	/* Counted by the store over its indexes, not row by row here: a
	 * scrape at 100,000 agents must not cost the core tens of ms. The
	 * states are agent_state's: online is active and seen within three
	 * poll intervals; every other status counts as revoked. */
	cutoff = (long long)time(NULL) - 3 * c->conf.poll_interval;
	q = store_query(c->store,
	                "SELECT status, COUNT(*) FROM agents GROUP BY status");
	while (q != NULL && store_next(q) == 1) {
		const char *st = store_text(q, 0);

		if (st != NULL && strcmp(st, "active") == 0)
			active = store_int(q, 1);
		else
			revoked += store_int(q, 1);
	}
	store_done(q);
	/* Seen lately, less the few of them no longer active (found by
	 * status: "+last_seen" keeps SQLite off the last_seen index). */
	q = store_query(c->store,
	                "SELECT (SELECT COUNT(*) FROM agents WHERE last_seen "
	                ">= ?) - (SELECT COUNT(*) FROM agents WHERE (status "
	                "< 'active' OR status > 'active') AND +last_seen >= "
	                "?)",
	                S_INT(cutoff), S_INT(cutoff));
	if (q != NULL && store_next(q) == 1)
		online = store_int(q, 0);
	store_done(q);
	offline = active - online;
	q = store_query(
	    c->store,
	    "SELECT COUNT(*) FROM enrollments WHERE status = 'pending'");
	if (q != NULL && store_next(q) == 1)
		pending = store_int(q, 0);
	store_done(q);
	metrics_set("vigil_agents", "state=\"online\"", (double)online);
	metrics_set("vigil_agents", "state=\"offline\"", (double)offline);
	metrics_set("vigil_agents", "state=\"revoked\"", (double)revoked);
	metrics_set("vigil_enrollments_pending", NULL, (double)pending);
	metrics_agent_versions(c);
	/* With gateway workers, they hold the connections and report. */
	metrics_set("vigil_connections", "listener=\"gateway\"",
	            (double)(http_server_conns(c->gw) + gwproc_conns(c)));
	metrics_set(
	    "vigil_connections", "listener=\"admin\"",
	    (double)(http_server_conns(c->adm) + gwproc_admin_conns(c)));
	metrics_set("vigil_tls_handshakes_total",
	            "listener=\"gateway\",kind=\"full\"",
	            (double)(http_server_tls(c->gw, 0) + gwproc_tls(c, 0)));
	metrics_set("vigil_tls_handshakes_total",
	            "listener=\"gateway\",kind=\"resumed\"",
	            (double)(http_server_tls(c->gw, 1) + gwproc_tls(c, 1)));
	for (why = 0; why < HTTP_CLOSED_NREASONS; why++) {
		snprintf(lbl, sizeof(lbl), "listener=\"gateway\",reason=\"%s\"",
		         http_close_reason_name(why));
		metrics_set("vigil_connections_closed_total", lbl,
		            (double)(http_server_closed(c->gw, why) +
		                     gwproc_closed(c, (int)why)));
		snprintf(lbl, sizeof(lbl), "listener=\"admin\",reason=\"%s\"",
		         http_close_reason_name(why));
		metrics_set("vigil_connections_closed_total", lbl,
		            (double)(http_server_closed(c->adm, why) +
		                     gwproc_admin_closed(c, (int)why)));
	}
	buf_init(&out, 4u << 20);
	metrics_render(&out);
	http_reply_text(r, 200, "text/plain; version=0.0.4", out.data, out.len);
	buf_free(&out);
}

/* The vigild nodes sharing this database (node.c); on SQLite, this one. */
static void
adm_nodes(struct http_req *r)
{
	struct center *c = C(r);
	json_t *a;

	AUTH(r);
	if ((a = node_list(c)) == NULL) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return;
	}
	http_reply_json(r, 200,
	                json_pack("{s:o, s:s, s:b}", "nodes", a, "self",
	                          node_name(c), "shared",
	                          store_is_pg(c->store)));
}

/* The OpenAPI document (docs/openapi.json, embedded at build time); the
 * e2e test openapi checks it against the route tables. */
static void
adm_openapi(struct http_req *r)
{
	AUTH(r);
	http_reply_text(r, 200, "application/json", openapi_json,
	                openapi_json_len);
}

const struct http_route admin_routes[] = {
    {"GET", "/api/v1/health", adm_health, 0, "health", 0, ROLE_PUBLIC},
    {"GET", "/api/v1/version", adm_version, 0, "version", 0, ROLE_READONLY},
    {"GET", "/api/v1/openapi.json", adm_openapi, 0, "openapi", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/agents", adm_agents, 0, "agents", 0, ROLE_READONLY},
    {"GET", "/api/v1/agents/", adm_agent, HTTP_ROUTE_PREFIX, "agent", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/agents/", adm_agent, HTTP_ROUTE_PREFIX, "agent", 0,
     ROLE_OPERATOR},
    {"PUT", "/api/v1/agents/", adm_agent, HTTP_ROUTE_PREFIX, "agent", 16384,
     ROLE_OPERATOR},
    {"GET", "/api/v1/enrollments", adm_enrollments, 0, "enrollments", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/enrollments/", adm_enrollment, HTTP_ROUTE_PREFIX,
     "enrollment", 0, ROLE_OPERATOR},
    {"GET", "/api/v1/tokens", adm_tokens, 0, "tokens", 0, ROLE_READONLY},
    {"POST", "/api/v1/tokens", adm_token_create, 0, "tokens", 0, ROLE_OPERATOR},
    {"DELETE", "/api/v1/tokens/", adm_token_delete, HTTP_ROUTE_PREFIX, "token",
     0, ROLE_OPERATOR},
    {"GET", "/api/v1/notices", adm_notices, 0, "notices", 0, ROLE_READONLY},
    {"GET", "/api/v1/nodes", adm_nodes, 0, "nodes", 0, ROLE_READONLY},
    {"GET", "/metrics", adm_metrics, 0, "metrics", 0, ROLE_READONLY},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

void
admin_done(const char *route, int status, void *arg)
{
	char labels[128];

	(void)arg;
	snprintf(labels, sizeof(labels),
	         "listener=\"admin\",route=\"%s\",status=\"%d\"", route,
	         status);
	metrics_add("vigil_http_requests_total", labels, 1);
}
