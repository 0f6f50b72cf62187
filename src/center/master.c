/*
 * master.c: the master center (docs/master.md). A vigild with [center]
 * role = master knows its centers from [master] centers and calls each
 * one's management port (5443, manage.c) over HTTPS with its certificate
 * of role master, trusting only the deployment CA. Every call first
 * exchanges versions (GET /manage/v1/hello): a center whose management
 * protocol has another major version is refused with a message naming
 * both. Its admin routes list the centers (health, version, agent counts;
 * an unreachable one is shown so, with the reason), all agents with their
 * center named, and push tasks to chosen centers and follow them (the
 * master keeps which center task belongs to which master task in
 * master_tasks).
 *
 * The calls are made with libcurl from the admin request's handler, with
 * short timeouts (connect 3 s, whole call 10 s): a master serves a few
 * operators, and a center that does not answer costs at most that.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "httpc.h"
#include "schema.h"

#define C(r)           ((struct center *)(r)->arg)
#define MASTER_MAX     64
#define MASTER_TIMEOUT 10

struct mcenter {
	char name[65];
	char url[512];
};

/* Parses "name=https://host:port, name=..." into out (at most max); the
 * number of centers, or -1 with why. */
static int
master_parse_centers(const char *s, struct mcenter *out, int max,
                     struct buf *err)
{
	const char *p = s;
	int n = 0;

	while (p != NULL && *p) {
		const char *end = strchr(p, ','), *eq;
		size_t len;
		char item[600];

		len = end ? (size_t)(end - p) : strlen(p);
		while (len > 0 && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0 || len >= sizeof(item)) {
			buf_puts(err,
			         "[master] centers: NAME=https://HOST:PORT, "
			         "comma-separated");
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if ((eq = strchr(item, '=')) == NULL || eq == item ||
		    (size_t)(eq - item) >= sizeof(out[0].name) ||
		    strncmp(eq + 1, "https://", 8) != 0 ||
		    strlen(eq + 1) >= sizeof(out[0].url)) {
			buf_printf(
			    err,
			    "[master] centers: '%s': NAME=https://HOST:PORT",
			    item);
			return -1;
		}
		if (n == max) {
			buf_printf(err, "[master] centers: at most %d", max);
			return -1;
		}
		memcpy(out[n].name, item, (size_t)(eq - item));
		out[n].name[eq - item] = '\0';
		snprintf(out[n].url, sizeof(out[n].url), "%s", eq + 1);
		n++;
		p = end ? end + 1 : NULL;
	}
	return n;
}

/* One call to a center's management port; the JSON answer of a 2xx, or
 * NULL with why in err. */
static json_t *
call(struct center *c, const struct mcenter *m, const char *method,
     const char *path, json_t *body, struct buf *err)
{
	static const char *const hdrs[] = {
	    "Vigil-Manage-Protocol: " VIGIL_MANAGE_PROTOCOL, NULL};
	struct httpc_opts o;
	struct httpc_resp resp;
	char url[1024], *b = NULL;
	json_t *j = NULL;

	memset(&o, 0, sizeof(o));
	o.ca_file = c->paths.ca_crt;
	o.cert_file = c->conf.ms_cert;
	o.key_file = c->conf.ms_key;
	o.headers = hdrs;
	o.timeout_secs = MASTER_TIMEOUT;
	snprintf(url, sizeof(url), "%s%s", m->url, path);
	if (body != NULL && (b = json_dumps(body, JSON_COMPACT)) == NULL) {
		buf_puts(err, "out of memory");
		return NULL;
	}
	httpc_resp_init(&resp);
	if (httpc_request(&o, method, url, NULL, b, b ? strlen(b) : 0, &resp) ==
	    -1) {
		buf_printf(err, "unreachable: %s", resp.errmsg);
		goto out;
	}
	j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	if (resp.status < 200 || resp.status > 299) {
		const char *msg = json_string_value(
		    json_object_get(json_object_get(j, "error"), "message"));

		buf_printf(err, "HTTP %ld: %s", resp.status,
		           msg ? msg : "(no message)");
		json_decref(j);
		j = NULL;
	} else if (!json_is_object(j)) {
		buf_puts(err, "the answer is not JSON");
		json_decref(j);
		j = NULL;
	}
out:
	free(b);
	httpc_resp_free(&resp);
	return j;
}

/* Versions first: NULL with why when the center cannot be managed. */
static json_t *
hello(struct center *c, const struct mcenter *m, struct buf *err)
{
	json_t *h = call(c, m, "GET", "/manage/v1/hello", NULL, err);
	const char *proto, *ver;

	if (h == NULL)
		return NULL;
	proto = json_string_value(json_object_get(h, "protocol"));
	ver = json_string_value(json_object_get(h, "version"));
	if (manage_proto_major(proto) !=
	    manage_proto_major(VIGIL_MANAGE_PROTOCOL)) {
		buf_printf(
		    err,
		    "incompatible: the center speaks management protocol "
		    "%.32s (vigild %.32s), this master %s (vigild %s); a "
		    "master manages only centers of its own major "
		    "version: upgrade the %s",
		    proto ? proto : "?", ver ? ver : "?", VIGIL_MANAGE_PROTOCOL,
		    VIGIL_VERSION,
		    manage_proto_major(proto) >
		            manage_proto_major(VIGIL_MANAGE_PROTOCOL)
		        ? "master"
		        : "center");
		json_decref(h);
		return NULL;
	}
	return h;
}

static int
centers_of(struct center *c, struct mcenter *out, struct http_req *r)
{
	struct buf err;
	int n;

	buf_init(&err, 512);
	n = master_parse_centers(c->conf.ms_centers ? c->conf.ms_centers : "",
	                         out, MASTER_MAX, &err);
	if (n < 0)
		http_reply_error(r, 500, "config", "%s", buf_cstr(&err));
	buf_free(&err);
	return n;
}

static int
not_master(struct http_req *r)
{
	if (C(r)->conf.role == CENTER_ROLE_MASTER)
		return 0;
	http_reply_error(
	    r, 404, "not_master",
	    "this vigild is not a master ([center] role = master)");
	return 1;
}

/* GET /api/v1/master/centers */
static void
adm_centers(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	json_t *arr;
	int i, n;

	if (not_master(r) || (n = centers_of(c, ms, r)) < 0)
		return;
	arr = json_array();
	for (i = 0; i < n; i++) {
		struct buf err;
		json_t *h, *st = NULL, *o;

		buf_init(&err, 1024);
		o = json_pack("{s:s, s:s}", "name", ms[i].name, "url",
		              ms[i].url);
		if ((h = hello(c, &ms[i], &err)) != NULL)
			st = call(c, &ms[i], "GET", "/manage/v1/status", NULL,
			          &err);
		if (st != NULL) {
			json_object_update(o, st);
			json_object_del(o, "center");
			json_object_set_new(
			    o, "fqdn",
			    json_incref(json_object_get(st, "center")));
			json_object_set_new(o, "reachable", json_true());
		} else {
			json_object_set_new(
			    o, "reachable",
			    json_boolean(strncmp(buf_cstr(&err), "unreachable",
			                         11) != 0));
			json_object_set_new(o, "status", json_string("error"));
			json_object_set_new(o, "error",
			                    json_string(buf_cstr(&err)));
		}
		json_decref(h);
		json_decref(st);
		buf_free(&err);
		json_array_append_new(arr, o);
	}
	http_reply_json(r, 200, json_pack("{s:o}", "centers", arr));
}

/* GET of path on every center: the member lists joined, each item with
 * its center; centers that cannot be asked under "errors". */
static void
gather(struct http_req *r, const char *path, const char *member)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	json_t *arr, *errs;
	int i, n;

	if (not_master(r) || (n = centers_of(c, ms, r)) < 0)
		return;
	arr = json_array();
	errs = json_array();
	for (i = 0; i < n; i++) {
		struct buf err;
		json_t *h, *a = NULL, *v;
		size_t k;

		buf_init(&err, 1024);
		if ((h = hello(c, &ms[i], &err)) != NULL)
			a = call(c, &ms[i], "GET", path, NULL, &err);
		json_array_foreach(json_object_get(a, member), k, v)
		{
			json_object_set_new(v, "center",
			                    json_string(ms[i].name));
			json_array_append(arr, v);
		}
		if (a == NULL)
			json_array_append_new(
			    errs, json_pack("{s:s, s:s}", "center", ms[i].name,
			                    "error", buf_cstr(&err)));
		json_decref(h);
		json_decref(a);
		buf_free(&err);
	}
	http_reply_json(r, 200,
	                json_pack("{s:o, s:o}", member, arr, "errors", errs));
}

/* GET /api/v1/master/agents: every center's agents, each with its
 * center; centers that cannot be asked are listed under "errors". */
static void
adm_agents(struct http_req *r)
{
	gather(r, "/manage/v1/agents", "agents");
}

/* GET /api/v1/master/findings: each center's newest 100 findings. */
static void
adm_findings(struct http_req *r)
{
	gather(r, "/manage/v1/findings", "findings");
}

/* GET /api/v1/master/tasks: each center's newest 100 tasks. */
static void
adm_tasks(struct http_req *r)
{
	gather(r, "/manage/v1/tasks", "tasks");
}

static const struct schema_field push_schema[] = {
    {"centers", SCH_ARRAY | SCH_NULL, 0},
    {"task", SCH_OBJECT, 1},
    {NULL, 0, 0},
};

static int
chosen(json_t *list, const char *name)
{
	json_t *v;
	size_t i;

	if (list == NULL || json_is_null(list))
		return 1;
	json_array_foreach(list, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), name) == 0)
			return 1;
	}
	return 0;
}

/* POST /api/v1/master/tasks {"centers": [NAMES] (default all), "task":
 * SPEC}: the task is created on each chosen center. */
static void
adm_push(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	json_t *j, *list, *out, *v;
	char id[37], *spec = NULL;
	long long now = (long long)time(NULL);
	size_t k;
	int i, n, ok = 0;

	if ((j = schema_body(r, push_schema)) == NULL)
		return;
	if (not_master(r) || (n = centers_of(c, ms, r)) < 0) {
		json_decref(j);
		return;
	}
	list = json_object_get(j, "centers");
	json_array_foreach(list, k, v)
	{
		for (i = 0;
		     i < n && (!json_is_string(v) ||
		               strcmp(json_string_value(v), ms[i].name) != 0);
		     i++)
			;
		if (i == n) {
			http_reply_error_field(r, 400, "bad_request", "centers",
			                       "centers: no center named %.64s",
			                       json_is_string(v)
			                           ? json_string_value(v)
			                           : "(not a string)");
			goto done;
		}
	}
	random_uuid(id);
	spec = json_dumps(json_object_get(j, "task"), JSON_COMPACT);
	out = json_array();
	/* Every center is asked first; the rows are written after, so no
	 * write transaction waits on the network. */
	for (i = 0; i < n; i++) {
		struct buf err;
		json_t *h, *res = NULL;

		if (!chosen(list, ms[i].name))
			continue;
		buf_init(&err, 1024);
		if ((h = hello(c, &ms[i], &err)) != NULL)
			res = call(c, &ms[i], "POST", "/manage/v1/tasks",
			           json_object_get(j, "task"), &err);
		if (res != NULL) {
			ok++;
			json_array_append_new(
			    out, json_pack("{s:s, s:O, s:O}", "center",
			                   ms[i].name, "task_id",
			                   json_object_get(res, "id"), "agents",
			                   json_object_get(res, "agents")));
		} else
			json_array_append_new(
			    out, json_pack("{s:s, s:s}", "center", ms[i].name,
			                   "error", buf_cstr(&err)));
		log_info("master: task %s on %s: %s", id, ms[i].name,
		         res ? "created" : buf_cstr(&err));
		json_decref(h);
		json_decref(res);
		buf_free(&err);
	}
	json_array_foreach(out, k, v)
	{
		if (store_exec(
		        c->store,
		        "INSERT INTO master_tasks (id, center, task_id, "
		        "created_at, created_by, spec, error) VALUES (?, "
		        "?, ?, ?, ?, ?, ?)",
		        S_TEXT(id),
		        S_TEXT(json_string_value(json_object_get(v, "center"))),
		        S_TEXT(
		            json_string_value(json_object_get(v, "task_id"))),
		        S_INT(now), S_TEXT(r->who), S_TEXT(spec),
		        S_TEXT(json_string_value(
		            json_object_get(v, "error")))) != 1) {
			json_decref(out);
			http_reply_error(r, 500, "store",
			                 "cannot record the master task");
			goto done;
		}
	}
	http_reply_json(r, ok ? 201 : 502,
	                json_pack("{s:s, s:o}", "id", id, "centers", out));
done:
	free(spec);
	json_decref(j);
}

/* GET /api/v1/master/tasks/ID: each center's progress. */
static void
adm_task(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	char id[40];
	const char *rest = http_req_rest_id(r, id, sizeof(id));
	struct store_rows *q;
	json_t *out;
	int i, n, rows = 0;

	if (not_master(r) || (n = centers_of(c, ms, r)) < 0)
		return;
	if (rest == NULL || *rest != '\0') {
		http_reply_error(r, 404, "not_found", "no such task");
		return;
	}
	q = store_query(c->store,
	                "SELECT center, task_id, error FROM master_tasks WHERE "
	                "id = ? ORDER BY center",
	                S_TEXT(id));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	out = json_array();
	while (store_next(q) == 1) {
		const char *name = store_text(q, 0), *tid = store_text(q, 1);
		struct buf err;
		json_t *o, *st = NULL, *h = NULL;
		char path[128];

		rows++;
		o = json_pack("{s:s, s:s?}", "center", name, "task_id", tid);
		buf_init(&err, 1024);
		for (i = 0; i < n && strcmp(ms[i].name, name) != 0; i++)
			;
		if (tid == NULL)
			buf_printf(&err, "not created: %s",
			           store_text(q, 2) ? store_text(q, 2) : "?");
		else if (i == n)
			buf_puts(&err, "no longer in [master] centers");
		else if ((h = hello(c, &ms[i], &err)) != NULL) {
			snprintf(path, sizeof(path), "/manage/v1/tasks/%s",
			         tid);
			st = call(c, &ms[i], "GET", path, NULL, &err);
		}
		if (st != NULL) {
			json_object_set(o, "runs", json_object_get(st, "runs"));
			json_object_set(o, "total",
			                json_object_get(st, "total"));
			json_object_set(o, "finished",
			                json_object_get(st, "finished"));
		} else
			json_object_set_new(o, "error",
			                    json_string(buf_cstr(&err)));
		json_decref(h);
		json_decref(st);
		buf_free(&err);
		json_array_append_new(out, o);
	}
	store_done(q);
	if (rows == 0) {
		json_decref(out);
		http_reply_error(r, 404, "not_found", "no master task %s", id);
		return;
	}
	http_reply_json(r, 200,
	                json_pack("{s:s, s:o}", "id", id, "centers", out));
}

const struct http_route master_admin_routes[] = {
    {"GET", "/api/v1/master/centers", adm_centers, 0, "master_centers", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/master/agents", adm_agents, 0, "master_agents", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/master/findings", adm_findings, 0, "master_findings", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/master/tasks", adm_tasks, 0, "master_tasks", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/master/tasks", adm_push, 0, "master_push", 65536,
     ROLE_OPERATOR},
    {"GET", "/api/v1/master/tasks/", adm_task, HTTP_ROUTE_PREFIX, "master_task",
     0, ROLE_READONLY},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

int
master_check(const struct center_conf *cf)
{
	struct mcenter ms[MASTER_MAX];
	struct buf err;
	int nerr = 0;

	buf_init(&err, 512);
	if (cf->ms_cert == NULL || cf->ms_key == NULL) {
		log_warnx("check: [center] role = master needs [master] "
		          "cert_file and key_file (vigilctl pki issue --role "
		          "master --name FQDN)");
		nerr++;
	}
	if (master_parse_centers(cf->ms_centers ? cf->ms_centers : "", ms,
	                         MASTER_MAX, &err) < 0) {
		log_warnx("check: %s", buf_cstr(&err));
		nerr++;
	}
	buf_free(&err);
	return nerr;
}
