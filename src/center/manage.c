/*
 * manage.c: a center's management backend for its master (docs/master.md).
 * With [manage] enable, vigild listens on [manage] port (5443): HTTPS with
 * a client certificate required from the deployment CA, and one
 * authorizer in front of every route that serves only certificates of
 * role master (anything else: 403 naming the role) and only a master that
 * speaks the same major version of the management protocol (409 naming
 * both versions otherwise). The routes are few and read the center's own
 * store: hello (versions), status (health, version, agent counts), agents,
 * and tasks (create, follow). A task created by a master is the center's
 * own task, created by "master:CN" and written to the audit log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "center.h"
#include "intelc.h"
#include "pki.h"
#include "schema.h"
#include "tls.h"

#define C(r) ((struct center *)(r)->arg)

/* The major number of a "MAJOR.MINOR" protocol version, -1 if none. */
int
manage_proto_major(const char *v)
{
	char *end;
	long n;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	n = strtol(v, &end, 10);
	if ((*end != '.' && *end != '\0') || n > 1000)
		return -1;
	return (int)n;
}

static int
manage_authorize(struct http_req *r)
{
	const char *theirs = http_req_header(r, "Vigil-Manage-Protocol");
	struct buf why;
	char *cn;

	buf_init(&why, 512);
	if (pki_role_allowed(r->peer, PKI_ROLE_BIT(PKI_ROLE_MASTER),
	                     "a center's management port", &why) == -1) {
		log_warnx("manage: %s: %s", r->peer_addr, buf_cstr(&why));
		http_reply_error(r, 403, "forbidden", "%s", buf_cstr(&why));
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	if (manage_proto_major(theirs) !=
	    manage_proto_major(VIGIL_MANAGE_PROTOCOL)) {
		http_reply_error(
		    r, 409, "version_mismatch",
		    "this center speaks management protocol %s "
		    "(vigild %s); the master speaks %.32s: a master "
		    "manages only centers of its own major version",
		    VIGIL_MANAGE_PROTOCOL, VIGIL_VERSION,
		    theirs ? theirs : "none (no Vigil-Manage-Protocol)");
		return -1;
	}
	cn = tls_subject_cn(r->peer);
	snprintf(r->who, sizeof(r->who), "master:%s", cn ? cn : "?");
	free(cn);
	r->role = ROLE_OPERATOR;
	return 0;
}

static json_t *
hello_json(struct center *c)
{
	return json_pack("{s:s, s:s, s:s}", "center", c->conf.fqdn, "version",
	                 VIGIL_VERSION, "protocol", VIGIL_MANAGE_PROTOCOL);
}

static void
mg_hello(struct http_req *r)
{
	http_reply_json(r, 200, hello_json(C(r)));
}

static void
mg_status(struct http_req *r)
{
	struct center *c = C(r);
	long long now = (long long)time(NULL), total = -1, online = -1;
	struct store_rows *q;
	json_t *o;

	q = store_query(
	    c->store,
	    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN last_seen >= ? "
	    "THEN 1 ELSE 0 END), 0) FROM agents WHERE status = "
	    "'active'",
	    S_INT(now - 3 * c->conf.poll_interval));
	if (q != NULL && store_next(q) == 1) {
		total = store_int(q, 0);
		online = store_int(q, 1);
	}
	store_done(q);
	if (total < 0) {
		http_reply_error(r, 503, "store", "store unavailable");
		return;
	}
	o = hello_json(c);
	json_object_set_new(o, "status", json_string("ok"));
	json_object_set_new(o, "uptime", json_integer(now - c->started));
	json_object_set_new(o, "agents",
	                    json_pack("{s:I, s:I}", "total", (json_int_t)total,
	                              "online", (json_int_t)online));
	http_reply_json(r, 200, o);
}

static long long mg_limit(struct http_req *r);

/* GET /manage/v1/agents?limit=N: the first agents by host name. */
static void
mg_agents(struct http_req *r)
{
	struct center *c = C(r);
	long long limit = mg_limit(r);
	struct store_rows *q;
	json_t *arr;

	if (limit < 0)
		return;
	q = store_query(c->store,
	                "SELECT " AGENT_COLUMNS " FROM agents ORDER BY "
	                "hostname, id LIMIT ?",
	                S_INT(limit));
	if (q == NULL) {
		http_reply_error(r, 503, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1)
		json_array_append_new(arr, db_agent_json(q));
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "agents", arr));
}

/* POST /manage/v1/tasks: the body is a task spec as for POST
 * /api/v1/tasks. */
static void
mg_task_create(struct http_req *r)
{
	struct center *c = C(r);
	json_t *spec = http_req_json(r);
	struct audit_entry a;
	struct buf err;
	char id[37];
	int n;

	if (!json_is_object(spec)) {
		json_decref(spec);
		http_reply_error(
		    r, 400, "bad_request",
		    "the body must be a task spec (a JSON object)");
		return;
	}
	buf_init(&err, 1024);
	n = tasks_create(c, spec, r->who, NULL, id, &err);
	memset(&a, 0, sizeof(a));
	a.who = r->who;
	a.addr = r->peer_addr;
	a.action = "task.create";
	a.request = spec;
	if (n < 0) {
		a.status = 400;
		a.error = buf_cstr(&err);
		audit_append(c, &a);
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
	} else {
		a.status = 201;
		a.target = id;
		audit_append(c, &a);
		log_info("manage: task %s created by %s for %d agents", id,
		         r->who, n);
		http_reply_json(r, 201,
		                json_pack("{s:s, s:i}", "id", id, "agents", n));
	}
	json_decref(spec);
	buf_free(&err);
}

/* GET /manage/v1/tasks/ID: the runs counted by state. */
static void
mg_task_get(struct http_req *r)
{
	struct center *c = C(r);
	char id[40];
	const char *rest = http_req_rest_id(r, id, sizeof(id));
	struct store_rows *q;
	json_t *states;
	long long total = 0, done = 0;
	int found = 0;

	if (rest == NULL || *rest != '\0') {
		http_reply_error(r, 404, "not_found", "no such task");
		return;
	}
	q = store_query(c->store, "SELECT kind FROM tasks WHERE id = ?",
	                S_TEXT(id));
	if (q != NULL && store_next(q) == 1)
		found = 1;
	store_done(q);
	if (!found) {
		http_reply_error(r, 404, "not_found", "no task %s", id);
		return;
	}
	states = json_object();
	q = store_query(c->store,
	                "SELECT state, COUNT(*) FROM task_runs WHERE task_id = "
	                "? GROUP BY state",
	                S_TEXT(id));
	while (q != NULL && store_next(q) == 1) {
		const char *s = store_text(q, 0);

		json_object_set_new(states, s, json_integer(store_int(q, 1)));
		total += store_int(q, 1);
		if (strcmp(s, "done") == 0 || strcmp(s, "failed") == 0 ||
		    strcmp(s, "cancelled") == 0 || strcmp(s, "expired") == 0 ||
		    strcmp(s, "timeout") == 0)
			done += store_int(q, 1);
	}
	store_done(q);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:o, s:I, s:I}", "id", id, "runs",
	                          states, "total", (json_int_t)total,
	                          "finished", (json_int_t)done));
}

/* ?limit=N, 1..10000 (default 100; the master pages through the first
 * 10000 rows of each center); -1 after replying 400. */
static long long
mg_limit(struct http_req *r)
{
	const char *s = http_req_query(r, "limit");
	char *end;
	long long n;

	if (s == NULL)
		return 100;
	n = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || n < 1 || n > 10000) {
		http_reply_error(r, 400, "bad_request", "limit: 1 to 10000");
		return -1;
	}
	return n;
}

/* GET /manage/v1/findings?limit=N: the newest findings. */
static void
mg_findings(struct http_req *r)
{
	struct center *c = C(r);
	long long limit = mg_limit(r);
	struct store_rows *q;
	json_t *arr;

	if (limit < 0)
		return;
	q = store_query(c->store,
	                "SELECT e.agent_id, e.seq, e.time, e.received_at, "
	                "e.level, e.data, a.hostname FROM events e LEFT JOIN "
	                "agents a ON a.id = e.agent_id WHERE e.type = "
	                "'finding' ORDER BY e.received_at DESC, e.agent_id, "
	                "e.seq DESC LIMIT ?",
	                S_INT(limit));
	if (q == NULL) {
		http_reply_error(r, 503, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1) {
		json_t *d = json_loads(store_text(q, 5), 0, NULL);

		json_array_append_new(
		    arr,
		    json_pack("{s:s, s:I, s:I, s:I, s:s?, s:o, s:s?}",
		              "agent_id", store_text(q, 0), "seq",
		              (json_int_t)store_int(q, 1), "time",
		              (json_int_t)store_int(q, 2), "received_at",
		              (json_int_t)store_int(q, 3), "level",
		              store_text(q, 4), "data", d ? d : json_object(),
		              "hostname", store_text(q, 6)));
	}
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "findings", arr));
}

/* GET /manage/v1/tasks?limit=N: the newest tasks with their runs. */
static void
mg_tasks(struct http_req *r)
{
	struct center *c = C(r);
	long long limit = mg_limit(r);
	struct store_rows *q;
	json_t *arr;

	if (limit < 0)
		return;
	q = store_query(
	    c->store,
	    "SELECT t.id, t.kind, t.created_at, t.created_by, (SELECT "
	    "COUNT(*) FROM task_runs r WHERE r.task_id = t.id), (SELECT "
	    "COUNT(*) FROM task_runs r WHERE r.task_id = t.id AND r.state IN "
	    "('done', 'failed', 'cancelled', 'expired')) FROM tasks t ORDER BY "
	    "t.created_at DESC, t.id LIMIT ?",
	    S_INT(limit));
	if (q == NULL) {
		http_reply_error(r, 503, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1)
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:I, s:s?, s:I, s:I}", "id",
		                   store_text(q, 0), "kind", store_text(q, 1),
		                   "created_at", (json_int_t)store_int(q, 2),
		                   "created_by", store_text(q, 3), "total",
		                   (json_int_t)store_int(q, 4), "finished",
		                   (json_int_t)store_int(q, 5)));
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "tasks", arr));
}

/* PUT /manage/v1/rules/NAME {"kind": "yara"|"ioc", "content"}: the
 * master's push of a rule set or IOC list; checked and stored as POST
 * /api/v1/rules does (replacing one of that name), audited as
 * rules.create by master:CN. 200 {"name", "id", "kind", "size"}. */
static void
mg_rules_put(struct http_req *r)
{
	struct center *c = C(r);
	json_t *b = http_req_json(r);
	const char *kind, *content, *code = "bad_request", *field = NULL;
	struct audit_entry a;
	struct buf err;
	char name[80], id[65] = "";
	const char *rest = http_req_rest_id(r, name, sizeof(name));
	int st;

	buf_init(&err, 8192);
	kind = json_string_value(json_object_get(b, "kind"));
	content = json_string_value(json_object_get(b, "content"));
	if (rest == NULL || *rest != '\0') {
		st = 400;
		buf_puts(&err, "name: 1 to 64 characters without '/' or white "
		               "space");
	} else if (kind == NULL || content == NULL) {
		st = 400;
		buf_puts(&err, "the body must be {\"kind\": \"yara\"|\"ioc\", "
		               "\"content\": TEXT}");
	} else
		st = rules_put(c, name, kind, content, id, &code, &field, &err);
	memset(&a, 0, sizeof(a));
	a.who = r->who;
	a.addr = r->peer_addr;
	a.action = "rules.create";
	a.target = rest ? name : NULL;
	a.status = st ? st : 200;
	a.error = st ? buf_cstr(&err) : NULL;
	if (b != NULL)
		a.after = json_pack("{s:s, s:s?, s:s?}", "name", name, "kind",
		                    kind, "id", st ? NULL : id);
	audit_append(c, &a);
	json_decref(a.after);
	if (st != 0)
		http_reply_error(r, st, code, "%s", buf_cstr(&err));
	else {
		log_info("manage: %s rule set %s (%s) pushed by %s", kind, name,
		         id, r->who);
		http_reply_json(r, 200,
		                json_pack("{s:s, s:s, s:s, s:I}", "name", name,
		                          "id", id, "kind", kind, "size",
		                          (json_int_t)strlen(content)));
	}
	json_decref(b);
	buf_free(&err);
}

/* One central user's change, audited by the master's identity (never
 * with its hash). */
static void
user_audit(struct center *c, struct http_req *r, const char *action,
           const char *name, json_t *before, json_t *after)
{
	struct audit_entry a;

	memset(&a, 0, sizeof(a));
	a.who = r->who;
	a.addr = r->peer_addr;
	a.action = action;
	a.target = name;
	a.status = 200;
	a.before = before;
	a.after = after;
	audit_append(c, &a);
}

/*
 * PUT /manage/v1/users {"users": [{"name", "role", "hash", "disabled",
 * "totp_secret"}]}: the master's users, all of them. The center keeps
 * them as users of source "master" (they log in here with the master's
 * password, role and second factor, also while the master is away),
 * adds and updates what changed, removes the central users the master
 * no longer names, and ends the sessions of every user it changed or
 * removed. A local or directory user of the same name is left alone
 * (listed under "conflicts"). Each change is an audit entry by
 * master:CN. 200 {"added", "updated", "removed", "conflicts": [NAMES]}.
 */
static void
mg_users_put(struct http_req *r)
{
	struct center *c = C(r);
	json_t *b = http_req_json(r), *list, *u, *conflicts = json_array();
	struct store_rows *q;
	long long now = (long long)time(NULL);
	int added = 0, updated = 0, removed = 0, bad = 0;
	size_t i;

	list = json_object_get(b, "users");
	if (!json_is_array(list))
		bad = 1;
	json_array_foreach(list, i, u)
	{
		const char *n = json_string_value(json_object_get(u, "name"));
		const char *role =
		    json_string_value(json_object_get(u, "role"));
		json_t *ts = json_object_get(u, "totp_secret");

		if (n == NULL || !auth_valid_name(n) || role == NULL ||
		    role_parse(role) == ROLE_NONE ||
		    !json_is_string(json_object_get(u, "hash")) ||
		    !json_is_boolean(json_object_get(u, "disabled")) ||
		    (ts != NULL && !json_is_null(ts) && !json_is_string(ts)))
			bad = 1;
	}
	if (bad) {
		json_decref(b);
		json_decref(conflicts);
		http_reply_error(r, 400, "bad_request",
		                 "the body must be {\"users\": [{\"name\", "
		                 "\"role\", \"hash\", \"disabled\", "
		                 "\"totp_secret\"}]}");
		return;
	}
	if (store_begin(c->store) == -1)
		goto busy;
	json_array_foreach(list, i, u)
	{
		const char *n = json_string_value(json_object_get(u, "name"));
		const char *role =
		    json_string_value(json_object_get(u, "role"));
		const char *hash =
		    json_string_value(json_object_get(u, "hash"));
		const char *ts =
		    json_string_value(json_object_get(u, "totp_secret"));
		int dis = json_is_true(json_object_get(u, "disabled"));
		char *src = NULL, *ohash = NULL, *orole = NULL, *ots = NULL;
		int found = 0, odis = 0;

		q = store_query(c->store,
		                "SELECT source, hash, role, disabled, "
		                "totp_secret FROM users WHERE name = ?",
		                S_TEXT(n));
		if (q != NULL && store_next(q) == 1) {
			found = 1;
			src = strdup(store_text(q, 0) ? store_text(q, 0) : "");
			ohash =
			    strdup(store_text(q, 1) ? store_text(q, 1) : "");
			orole =
			    strdup(store_text(q, 2) ? store_text(q, 2) : "");
			ots = strdup(store_text(q, 4) ? store_text(q, 4) : "");
			odis = store_int(q, 3) != 0;
		}
		store_done(q);
		if (found && strcmp(src, "master") != 0)
			json_array_append_new(conflicts, json_string(n));
		else if (!found) {
			if (store_exec(c->store,
			               "INSERT INTO users (name, role, source, "
			               "hash, disabled, failures, totp_secret, "
			               "created_at) VALUES (?, ?, 'master', ?, "
			               "?, 0, ?, ?)",
			               S_TEXT(n), S_TEXT(role), S_TEXT(hash),
			               S_INT(dis), S_TEXT(ts), S_INT(now)) != 1)
				bad = 1;
			else {
				json_t *after = json_pack(
				    "{s:s, s:s, s:s, s:b}", "name", n, "role",
				    role, "source", "master", "disabled", dis);

				user_audit(c, r, "user.create", n, NULL, after);
				json_decref(after);
				added++;
			}
		} else if (strcmp(ohash, hash) != 0 ||
		           strcmp(orole, role) != 0 || odis != dis ||
		           strcmp(ots, ts ? ts : "") != 0) {
			if (store_exec(
			        c->store,
			        "UPDATE users SET role = ?, hash = ?, "
			        "disabled = ?, totp_secret = ?, "
			        "updated_at = ? WHERE name = ? AND source "
			        "= 'master'",
			        S_TEXT(role), S_TEXT(hash), S_INT(dis),
			        S_TEXT(ts), S_INT(now), S_TEXT(n)) != 1 ||
			    store_exec(
			        c->store,
			        "DELETE FROM sessions WHERE user_name = ?",
			        S_TEXT(n)) < 0)
				bad = 1;
			else {
				json_t *before =
				    json_pack("{s:s, s:s, s:b}", "name", n,
				              "role", orole, "disabled", odis);
				json_t *after = json_pack(
				    "{s:s, s:s, s:b, s:b}", "name", n, "role",
				    role, "disabled", dis, "password_changed",
				    strcmp(ohash, hash) != 0);

				user_audit(c, r, "user.update", n, before,
				           after);
				json_decref(before);
				json_decref(after);
				updated++;
			}
		}
		free(src);
		if (ohash != NULL)
			OPENSSL_cleanse(ohash, strlen(ohash));
		free(ohash);
		free(orole);
		if (ots != NULL)
			OPENSSL_cleanse(ots, strlen(ots));
		free(ots);
	}
	/* Central users the master no longer names. */
	q = store_query(c->store,
	                "SELECT name, role FROM users WHERE source = 'master'");
	{
		json_t *gone = json_array(), *g;

		while (q != NULL && store_next(q) == 1) {
			const char *n = store_text(q, 0);
			int named = 0;

			json_array_foreach(list, i, u)
			{
				if (strcmp(json_string_value(
				               json_object_get(u, "name")),
				           n) == 0)
					named = 1;
			}
			if (!named)
				json_array_append_new(
				    gone, json_pack("{s:s, s:s}", "name", n,
				                    "role", store_text(q, 1)));
		}
		store_done(q);
		json_array_foreach(gone, i, g)
		{
			const char *n =
			    json_string_value(json_object_get(g, "name"));

			if (store_exec(c->store,
			               "DELETE FROM users WHERE name = ? AND "
			               "source = 'master'",
			               S_TEXT(n)) != 1 ||
			    store_exec(
			        c->store,
			        "DELETE FROM sessions WHERE user_name = ?",
			        S_TEXT(n)) < 0)
				bad = 1;
			else {
				user_audit(c, r, "user.delete", n, g, NULL);
				removed++;
			}
		}
		json_decref(gone);
	}
	if (bad || store_commit(c->store) == -1) {
		store_rollback(c->store);
		goto busy;
	}
	if (added + updated + removed > 0) {
		stream_recheck(c);
		log_info("manage: central users from %s: %d added, %d updated, "
		         "%d removed",
		         r->who, added, updated, removed);
	}
	json_decref(b);
	http_reply_json(r, 200,
	                json_pack("{s:i, s:i, s:i, s:o}", "added", added,
	                          "updated", updated, "removed", removed,
	                          "conflicts", conflicts));
	return;
busy:
	json_decref(b);
	json_decref(conflicts);
	http_reply_error(r, 503, "store_busy", "cannot store the users; retry");
}

/*
 * PUT /manage/v1/intel/NAME {"content": TEXT}: an intelligence feed
 * pushed by the master, imported into this center's vigil-inteld as the
 * signed updates import theirs (updates.c): NAME is FEED.csv, FEED.list
 * (or .txt) or FEED.json (STIX 2.1), the import a full one into feed
 * FEED, with the [updates] intel_* credential (inteld's admin role). The
 * import runs on a thread of its own (it may take long); the request
 * waits for it. 200 {"id": SHA-256 of the content, "feed", "format",
 * "report"}; 409 without the credential; 502 when inteld refused or
 * could not be reached (the master tries again). Audited as
 * intel.import by master:CN.
 */
struct mg_intel {
	struct mg_intel *next;
	struct center *c;
	struct http_req *req;
	struct intelc *ic;
	pthread_t thr;
	int wake[2];
	struct event *ev;
	char feed[80], fmt[8], sha[65], who[128], addr[64], desc[160];
	char *body;
	size_t len;
	json_t *report;
	struct buf err;
	int rc;
};

static struct mg_intel *mg_intel_jobs;

static void *
mg_intel_main(void *arg)
{
	struct mg_intel *j = arg;
	char one = 1;

	j->rc = intelc_feed_import(j->ic, j->feed, j->desc, j->fmt, j->body,
	                           j->len, &j->report, &j->err);
	if (write(j->wake[1], &one, 1) == -1) {
		/* the loop is told by the pipe or not at all: it joins */
	}
	return NULL;
}

static void
mg_intel_audit(struct center *c, const char *who, const char *addr,
               const char *feed, int status, const char *error)
{
	struct audit_entry a;

	memset(&a, 0, sizeof(a));
	a.who = who;
	a.addr = addr;
	a.action = "intel.import";
	a.target = feed;
	a.status = status;
	a.error = error;
	audit_append(c, &a);
}

static void
mg_intel_finish(struct mg_intel *j)
{
	struct mg_intel **pp;

	pthread_join(j->thr, NULL);
	for (pp = &mg_intel_jobs; *pp != NULL && *pp != j; pp = &(*pp)->next)
		;
	if (*pp == j)
		*pp = j->next;
	if (j->rc == 0) {
		mg_intel_audit(j->c, j->who, j->addr, j->feed, 200, NULL);
		log_info(
		    "manage: intel feed %s (%s) pushed by %s imported into "
		    "vigil-inteld",
		    j->feed, j->fmt, j->who);
		if (j->req != NULL)
			http_reply_json(j->req, 200,
			                json_pack("{s:s, s:s, s:s, s:O?}", "id",
			                          j->sha, "feed", j->feed,
			                          "format", j->fmt, "report",
			                          j->report));
	} else {
		mg_intel_audit(j->c, j->who, j->addr, j->feed, 502,
		               buf_cstr(&j->err));
		log_warnx("manage: intel feed %s pushed by %s: %s", j->feed,
		          j->who, buf_cstr(&j->err));
		if (j->req != NULL)
			http_reply_error(j->req, 502, "intel", "%s",
			                 buf_cstr(&j->err));
	}
	event_free(j->ev);
	close(j->wake[0]);
	close(j->wake[1]);
	intelc_free(j->ic);
	json_decref(j->report);
	buf_free(&j->err);
	free(j->body);
	free(j);
}

static void
mg_intel_done(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	mg_intel_finish(arg);
}

void
manage_intel_stop(struct center *c)
{
	(void)c;
	while (mg_intel_jobs != NULL)
		mg_intel_finish(mg_intel_jobs); /* joins: the import ends */
}

static void
mg_intel_put(struct http_req *r)
{
	struct center *c = C(r);
	json_t *b = http_req_json(r);
	const char *content = json_string_value(json_object_get(b, "content"));
	char name[128], feed[80];
	const char *rest = http_req_rest_id(r, name, sizeof(name)), *fmt;
	struct intelc *ic = NULL;
	struct mg_intel *j;
	struct buf err;

	buf_init(&err, 1024);
	if (rest == NULL || *rest != '\0' ||
	    (fmt = intelc_feed_format(name, feed, sizeof(feed))) == NULL) {
		http_reply_error(r, 400, "bad_request",
		                 "name: FEED.csv, FEED.list (or .txt) or "
		                 "FEED.json (STIX 2.1)");
		goto out;
	}
	if (content == NULL) {
		http_reply_error(r, 400, "bad_request",
		                 "the body must be {\"content\": TEXT}");
		goto out;
	}
	if (c->conf.intel.url == NULL ||
	    updates_intel_client(&c->conf, &ic, &err) == -1 || ic == NULL) {
		if (err.len == 0)
			buf_puts(&err, "this center imports no feeds into "
			               "vigil-inteld: set [intel] url and "
			               "[updates] intel_cert (a certificate of "
			               "role update) or intel_api_key_file");
		mg_intel_audit(c, r->who, r->peer_addr, feed, 409,
		               buf_cstr(&err));
		http_reply_error(r, 409, "no_intel_credential", "%s",
		                 buf_cstr(&err));
		goto out;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->body = strdup(content)) == NULL)
		fatal("calloc");
	j->c = c;
	j->ic = ic;
	j->len = strlen(content);
	buf_init(&j->err, 1024);
	snprintf(j->feed, sizeof(j->feed), "%s", feed);
	snprintf(j->fmt, sizeof(j->fmt), "%s", fmt);
	snprintf(j->who, sizeof(j->who), "%s", r->who);
	snprintf(j->addr, sizeof(j->addr), "%s", r->peer_addr);
	snprintf(j->desc, sizeof(j->desc), "pushed by %.100s: %.40s", r->who,
	         name);
	sha256_hex(content, j->len, j->sha);
	j->wake[0] = j->wake[1] = -1;
	if (pipe2(j->wake, O_CLOEXEC) == -1 ||
	    (j->ev = event_new(c->base, j->wake[0], EV_READ, mg_intel_done,
	                       j)) == NULL ||
	    event_add(j->ev, NULL) == -1 ||
	    (j->req = http_req_defer(r)) == NULL) {
		http_reply_error(r, 503, "unavailable",
		                 "cannot start the import");
		if (j->ev != NULL)
			event_free(j->ev);
		if (j->wake[0] != -1) {
			close(j->wake[0]);
			close(j->wake[1]);
		}
		intelc_free(ic);
		buf_free(&j->err);
		free(j->body);
		free(j);
		goto out;
	}
	if (pthread_create(&j->thr, NULL, mg_intel_main, j) != 0) {
		http_reply_error(j->req, 503, "unavailable",
		                 "cannot start the import");
		event_free(j->ev);
		close(j->wake[0]);
		close(j->wake[1]);
		intelc_free(ic);
		buf_free(&j->err);
		free(j->body);
		free(j);
		goto out;
	}
	j->next = mg_intel_jobs;
	mg_intel_jobs = j;
out:
	json_decref(b);
	buf_free(&err);
}

static const struct http_route manage_routes[] = {
    {"GET", "/manage/v1/findings", mg_findings, 0, "manage_findings", 0, 0},
    {"GET", "/manage/v1/tasks", mg_tasks, 0, "manage_tasks", 0, 0},
    {"GET", "/manage/v1/hello", mg_hello, 0, "manage_hello", 0, 0},
    {"GET", "/manage/v1/status", mg_status, 0, "manage_status", 0, 0},
    {"GET", "/manage/v1/agents", mg_agents, 0, "manage_agents", 0, 0},
    {"POST", "/manage/v1/tasks", mg_task_create, 0, "manage_task_create", 65536,
     0},
    {"GET", "/manage/v1/tasks/", mg_task_get, HTTP_ROUTE_PREFIX, "manage_task",
     0, 0},
    {"PUT", "/manage/v1/rules/", mg_rules_put, HTTP_ROUTE_PREFIX,
     "manage_rules", 0, 0},
    {"PUT", "/manage/v1/users", mg_users_put, 0, "manage_users", 0, 0},
    {"PUT", "/manage/v1/intel/", mg_intel_put, HTTP_ROUTE_PREFIX,
     "manage_intel", 0, 0},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

int
manage_start(struct center *c, struct buf *err)
{
	struct http_limits l;

	if (!c->conf.mg_enable)
		return 0;
	c->mg_ctx = tls_server_ctx(c->paths.server_crt, c->paths.server_key,
	                           c->paths.ca_crt, TLS_CLIENT_REQUIRED, NULL,
	                           NULL, err);
	if (c->mg_ctx == NULL)
		return -1;
	/* Masters only (docs/pki.md, "Who accepts whom"): another role's
	 * certificate fails the handshake, logged and counted as
	 * wrong_role; manage_authorize checks again per request. */
	tls_server_roles(c->mg_ctx, PKI_ROLE_BIT(PKI_ROLE_MASTER),
	                 "a center's management port");
	memset(&l, 0, sizeof(l));
	l.max_body = 4 << 20; /* a pushed rule set (JSON-escaped) */
	l.max_headers = 16384;
	l.timeout_secs = 60;
	l.max_conns = 64;
	l.handshake_timeout = 10;
	l.request_timeout = 60;
	l.max_per_addr = 16;
	c->mg = http_server_new(c->base, c->mg_ctx, manage_routes, c, &l, NULL);
	if (c->mg == NULL)
		return -1;
	http_server_set_authorizer(c->mg, manage_authorize);
	if (http_server_bind(c->mg, c->conf.mg_listen, (int)c->conf.mg_port,
	                     &c->mg_port, err) == -1)
		return -1;
	log_info("manage: management port for the master on %s:%d",
	         c->conf.mg_listen, c->mg_port);
	return 0;
}

void
manage_stop(struct center *c)
{
	manage_intel_stop(c); /* answers the imports still running */
	if (c->mg)
		http_server_free(c->mg);
	c->mg = NULL;
	SSL_CTX_free(c->mg_ctx);
	c->mg_ctx = NULL;
}
