/*
 * master.c: the master center (docs/master.md). A vigild with [center]
 * role = master knows its centers from [master] centers and calls each
 * one's management port (5443, manage.c) over HTTPS with its certificate
 * of role master, trusting only the deployment CA. Every call first
 * exchanges versions (GET /manage/v1/hello): a center whose management
 * protocol has another major version is refused with a message naming
 * both. Its admin routes list the centers (health, version, agent counts;
 * an unreachable one is shown so, with the reason), all agents with their
 * center named, and push tasks, rule sets and IOC lists to chosen
 * centers and follow them (the master keeps which center task belongs to
 * which master task in master_tasks; every push's progress per center in
 * master_push_centers).
 *
 * No call to a center runs on the event loop: see "calls to centers"
 * below (a thread per call, the request deferred meanwhile) and
 * "pushes" (recorded, answered, delivered in rounds).
 */
#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "center.h"
#include "httpc.h"
#include "query.h"
#include "schema.h"

#define C(r)           ((struct center *)(r)->arg)
#define MASTER_MAX     64
#define MASTER_TIMEOUT 10    /* seconds per center: versions and the call */
#define MASTER_RETRY   5     /* seconds between deliveries of waiting pushes */
#define MASTER_JOBS    32    /* fan-outs in flight */
#define MASTER_DEPTH   10000 /* rows of one center a page may reach */

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

/* --- calls to centers, off the event loop ---------------------------- */

/*
 * Every call to a center runs on a thread of its own with libcurl's
 * blocking interface (httpc), so that the event loop never waits for a
 * center: a handler that needs centers builds a job (one call per
 * center), defers its request and returns; each call's thread exchanges
 * versions, makes its call within MASTER_TIMEOUT seconds for both, and
 * the last one to finish hands the job back to the loop through a pipe,
 * where the job's done function answers. A center that does not answer
 * costs its own column that timeout, nothing else; other requests are
 * served meanwhile.
 */
struct mjob;

struct mcall {
	struct mjob *job;
	struct mcenter m;
	const char *method; /* a literal; NULL: only the versions */
	char path[600];
	char *body;  /* JSON text, or NULL */
	json_t *res; /* the 2xx answer, or NULL with err */
	int retry;   /* the failure may pass later: unreachable, 5xx */
	char err[1024];
	char tag[40]; /* the caller's (a push's id) */
	int skipped;  /* not made: the center is down (see "down") */
};

struct mjob {
	struct mjob *next;
	struct master *ms;
	struct mcall *calls;
	int n, left;
	void (*done)(struct mjob *); /* on the loop */
	struct http_req *req;        /* deferred, or NULL once answered */
	char member[16];             /* gather: the list's name */
	json_t *rows;                /* adm_task: the stored rows */
	char id[40];
	char digest[65];         /* delivery: of the central users sent */
	long long limit, offset; /* gather: the page asked for */
	int is_req;              /* counted in nreq */
	int slot;                /* delivery: the center's in sent[] */
};

struct master {
	struct center *c;
	char *ca, *cert, *key; /* copies: threads read them */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int running; /* call threads alive */
	volatile int stop;
	struct mjob *done; /* finished jobs, for the loop */
	struct mjob *jobs; /* every job not yet handed back */
	int njobs;
	int nreq; /* of them, requests waiting (MASTER_JOBS at most) */
	int wake[2];
	struct event *ev_wake, *ev_push, *ev_kick;
	/* per center: the digest of the users it last accepted, whether a
	 * delivery (or check) to it is out, and since when and why it is
	 * down (0: not known to be) */
	struct {
		char name[65];
		char digest[65];
		int busy;
		time_t down_since;
		char down_err[256];
	} sent[MASTER_MAX];
};

/* One call to a center's management port within timeout seconds; the
 * JSON answer of a 2xx, or NULL with why in err (retry set when it may
 * pass later). Runs on a call thread. */
static json_t *
call(struct master *ms, const struct mcenter *m, const char *method,
     const char *path, const char *b, long timeout, int *retry, char *err,
     size_t errlen)
{
	static const char *const hdrs[] = {
	    "Vigil-Manage-Protocol: " VIGIL_MANAGE_PROTOCOL, NULL};
	struct httpc_opts o;
	struct httpc_resp resp;
	char url[1024];
	json_t *j = NULL;

	memset(&o, 0, sizeof(o));
	o.ca_file = ms->ca;
	o.cert_file = ms->cert;
	o.key_file = ms->key;
	o.headers = hdrs;
	o.timeout_secs = timeout;
	o.abort_flag = &ms->stop;
	snprintf(url, sizeof(url), "%s%s", m->url, path);
	*retry = 0;
	httpc_resp_init(&resp);
	if (httpc_request(&o, method, url, NULL, b, b ? strlen(b) : 0, &resp) ==
	    -1) {
		snprintf(err, errlen, "unreachable: %.900s", resp.errmsg);
		*retry = 1;
		goto out;
	}
	j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	if (resp.status < 200 || resp.status > 299) {
		const char *msg = json_string_value(
		    json_object_get(json_object_get(j, "error"), "message"));

		snprintf(err, errlen, "HTTP %ld: %s", resp.status,
		         msg ? msg : "(no message)");
		*retry = resp.status >= 500;
		json_decref(j);
		j = NULL;
	} else if (!json_is_object(j)) {
		snprintf(err, errlen, "the answer is not JSON");
		*retry = 1;
		json_decref(j);
		j = NULL;
	}
out:
	httpc_resp_free(&resp);
	return j;
}

/* Versions first (-1 with why when the center cannot be managed), then
 * the call, both within MASTER_TIMEOUT. */
static void
run_call(struct mcall *k)
{
	struct master *ms = k->job->ms;
	time_t deadline = time(NULL) + MASTER_TIMEOUT;
	long left;
	json_t *h;
	const char *proto, *ver;

	h = call(ms, &k->m, "GET", "/manage/v1/hello", NULL, MASTER_TIMEOUT,
	         &k->retry, k->err, sizeof(k->err));
	if (h == NULL)
		return;
	proto = json_string_value(json_object_get(h, "protocol"));
	ver = json_string_value(json_object_get(h, "version"));
	if (manage_proto_major(proto) !=
	    manage_proto_major(VIGIL_MANAGE_PROTOCOL)) {
		snprintf(k->err, sizeof(k->err),
		         "incompatible: the center speaks management protocol "
		         "%.32s (vigild %.32s), this master %s (vigild %s); a "
		         "master manages only centers of its own major "
		         "version: upgrade the %s",
		         proto ? proto : "?", ver ? ver : "?",
		         VIGIL_MANAGE_PROTOCOL, VIGIL_VERSION,
		         manage_proto_major(proto) >
		                 manage_proto_major(VIGIL_MANAGE_PROTOCOL)
		             ? "master"
		             : "center");
		k->retry = 0;
		json_decref(h);
		return;
	}
	if (k->method == NULL) { /* a check: the versions are the answer */
		k->res = h;
		return;
	}
	json_decref(h);
	left = (long)(deadline - time(NULL));
	k->res = call(ms, &k->m, k->method, k->path, k->body,
	              left < 1 ? 1 : left, &k->retry, k->err, sizeof(k->err));
}

/* The job's last call is done: hand it to the loop (under lock). */
static void
job_finished_locked(struct master *ms, struct mjob *j)
{
	char one = 1;

	j->next = ms->done;
	ms->done = j;
	if (write(ms->wake[1], &one, 1) == -1) {
		/* the pipe is full: the loop has a wake-up coming */
	}
}

static void *
call_main(void *arg)
{
	struct mcall *k = arg;
	struct master *ms = k->job->ms;

	run_call(k);
	pthread_mutex_lock(&ms->lock);
	if (--k->job->left == 0)
		job_finished_locked(ms, k->job);
	if (--ms->running == 0)
		pthread_cond_broadcast(&ms->idle);
	pthread_mutex_unlock(&ms->lock);
	return NULL;
}

static struct mjob *
job_new(struct master *ms, int n, void (*done)(struct mjob *))
{
	struct mjob *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatal("calloc");
	j->ms = ms;
	j->n = n;
	j->done = done;
	if (n > 0 && (j->calls = calloc((size_t)n, sizeof(*j->calls))) == NULL)
		fatal("calloc");
	return j;
}

static void
job_free(struct mjob *j)
{
	int i;

	for (i = 0; i < j->n; i++) {
		if (j->calls[i].body != NULL) /* central users: hashes */
			OPENSSL_cleanse(j->calls[i].body,
			                strlen(j->calls[i].body));
		free(j->calls[i].body);
		json_decref(j->calls[i].res);
	}
	free(j->calls);
	json_decref(j->rows);
	free(j);
}

static void
job_add(struct mjob *j, int i, const struct mcenter *m, const char *method,
        const char *path, json_t *body)
{
	struct mcall *k = &j->calls[i];

	k->job = j;
	k->m = *m;
	k->method = method;
	snprintf(k->path, sizeof(k->path), "%s", path);
	if (body != NULL && (k->body = json_dumps(body, JSON_COMPACT)) == NULL)
		fatal("json_dumps");
}

/* --- centers that are down ---------------------------------------------- */

/*
 * A center that could not be reached (no connection, or no answer within
 * MASTER_TIMEOUT) is down from then on: a request that needs it does not
 * call it again but shows it unreachable at once, with the last reason
 * and how long it has been down. The delivery rounds (every MASTER_RETRY
 * seconds) go on trying it, with what it is owed or else with an
 * exchange of versions, and its first answer of any kind makes it up
 * again. One silent center so costs the operator's pages its timeout
 * once, not on every page.
 */
/* The center's entry in ms->sent (made at its first use), or -1. */
static int
slot(struct master *ms, const char *center)
{
	int i;

	for (i = 0; i < MASTER_MAX && ms->sent[i].name[0] &&
	            strcmp(ms->sent[i].name, center) != 0;
	     i++)
		;
	if (i == MASTER_MAX)
		return -1;
	snprintf(ms->sent[i].name, sizeof(ms->sent[i].name), "%.64s", center);
	return i;
}

/* A request's call to a center that is down is not made: answered at
 * once (on the loop, from job_start). 1 when so. */
static int
down_answer(struct master *ms, struct mcall *k)
{
	int sl = slot(ms, k->m.name);

	if (sl < 0 || ms->sent[sl].down_since == 0)
		return 0;
	snprintf(k->err, sizeof(k->err),
	         "%s (down for %lld s: not called for this request; the "
	         "master tries it again every %d s)",
	         ms->sent[sl].down_err,
	         (long long)(time(NULL) - ms->sent[sl].down_since),
	         MASTER_RETRY);
	k->retry = 1;
	k->skipped = 1;
	return 1;
}

/* A job's calls are back (on the loop): what they tell of each center. */
static void
note_reach(struct master *ms, struct mjob *j)
{
	int i, sl;

	if (ms->stop) /* calls aborted: they tell nothing */
		return;
	for (i = 0; i < j->n; i++) {
		struct mcall *k = &j->calls[i];

		if (k->skipped || (sl = slot(ms, k->m.name)) < 0)
			continue;
		if (k->res != NULL || strncmp(k->err, "unreachable", 11) != 0) {
			if (ms->sent[sl].down_since != 0)
				log_info("master: center %s answers again, "
				         "after %lld s down",
				         k->m.name,
				         (long long)(time(NULL) -
				                     ms->sent[sl].down_since));
			ms->sent[sl].down_since = 0;
			continue;
		}
		if (ms->sent[sl].down_since == 0) {
			ms->sent[sl].down_since = time(NULL);
			log_warnx("master: center %s is down (%s): requests "
			          "show it unreachable without calling it "
			          "until it answers again; tried every %d s",
			          k->m.name, k->err, MASTER_RETRY);
		}
		snprintf(ms->sent[sl].down_err, sizeof(ms->sent[sl].down_err),
		         "%.255s", k->err);
	}
}

/* Starts the calls of j; its done function runs on the loop once they
 * have all finished (at once when there are none). */
static void
job_start(struct master *ms, struct mjob *j)
{
	pthread_attr_t at;
	int i;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&ms->lock);
	j->left = j->n + 1; /* held until every thread is started */
	ms->njobs++;
	pthread_mutex_unlock(&ms->lock);
	for (i = 0; i < j->n; i++) {
		pthread_t t;

		if (j->is_req && down_answer(ms, &j->calls[i])) {
			pthread_mutex_lock(&ms->lock);
			j->left--;
			pthread_mutex_unlock(&ms->lock);
			continue;
		}
		pthread_mutex_lock(&ms->lock);
		ms->running++;
		pthread_mutex_unlock(&ms->lock);
		if (pthread_create(&t, &at, call_main, &j->calls[i]) != 0) {
			snprintf(j->calls[i].err, sizeof(j->calls[i].err),
			         "cannot start a thread for the call");
			j->calls[i].retry = 1;
			j->calls[i].skipped = 1;
			pthread_mutex_lock(&ms->lock);
			ms->running--;
			j->left--;
			pthread_mutex_unlock(&ms->lock);
		}
	}
	pthread_attr_destroy(&at);
	pthread_mutex_lock(&ms->lock);
	if (--j->left == 0)
		job_finished_locked(ms, j);
	pthread_mutex_unlock(&ms->lock);
}

static void
on_wake(evutil_socket_t fd, short ev, void *arg)
{
	struct master *ms = arg;
	struct mjob *list, *j;
	char b[64];

	(void)ev;
	while (read(fd, b, sizeof(b)) > 0)
		;
	pthread_mutex_lock(&ms->lock);
	list = ms->done;
	ms->done = NULL;
	pthread_mutex_unlock(&ms->lock);
	while ((j = list) != NULL) {
		list = j->next;
		ms->njobs--;
		if (j->is_req)
			ms->nreq--;
		note_reach(ms, j);
		j->done(j);
		job_free(j);
	}
}

/* Too many fan-outs out already: answered 503. */
static int
too_busy(struct http_req *r)
{
	struct master *ms = C(r)->master;

	if (ms == NULL) {
		http_reply_error(r, 503, "unavailable",
		                 "the master is not running");
		return 1;
	}
	if (ms->nreq < MASTER_JOBS)
		return 0;
	http_reply_error(r, 503, "busy",
	                 "%d requests to centers are out already; retry",
	                 MASTER_JOBS);
	return 1;
}

/* Defers r for j and starts j; answered 503 when r cannot be kept. */
static void
job_defer(struct http_req *r, struct mjob *j)
{
	if ((j->req = http_req_defer(r)) == NULL) {
		http_reply_error(r, 503, "unavailable", "out of memory");
		job_free(j);
		return;
	}
	j->is_req = 1;
	j->ms->nreq++;
	job_start(j->ms, j);
}

static int
centers_of(struct center *c, struct mcenter *out, struct http_req *r)
{
	struct buf err;
	int n;

	buf_init(&err, 512);
	n = master_parse_centers(c->conf.ms_centers ? c->conf.ms_centers : "",
	                         out, MASTER_MAX, &err);
	if (n < 0 && r != NULL)
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
centers_done(struct mjob *j)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < j->n; i++) {
		struct mcall *k = &j->calls[i];
		json_t *o =
		    json_pack("{s:s, s:s}", "name", k->m.name, "url", k->m.url);

		if (k->res != NULL) {
			json_object_update(o, k->res);
			json_object_del(o, "center");
			json_object_set_new(
			    o, "fqdn",
			    json_incref(json_object_get(k->res, "center")));
			json_object_set_new(o, "reachable", json_true());
		} else {
			json_object_set_new(
			    o, "reachable",
			    json_boolean(strncmp(k->err, "unreachable", 11) !=
			                 0));
			json_object_set_new(o, "status", json_string("error"));
			json_object_set_new(o, "error", json_string(k->err));
		}
		json_array_append_new(arr, o);
	}
	if (j->req != NULL)
		http_reply_json(j->req, 200,
		                json_pack("{s:o}", "centers", arr));
	else
		json_decref(arr);
}

static void
adm_centers(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	struct mjob *j;
	int i, n;

	if (not_master(r) || (n = centers_of(c, ms, r)) < 0 || too_busy(r))
		return;
	j = job_new(c->master, n, centers_done);
	for (i = 0; i < n; i++)
		job_add(j, i, &ms[i], "GET", "/manage/v1/status", NULL);
	job_defer(r, j);
}

/* The order of a joined list: findings and tasks newest first, agents
 * by center and host; ties by center and the row's key. */
static const char *gather_member;

static int
cmp_text(json_t *a, json_t *b, const char *k)
{
	const char *x = json_string_value(json_object_get(a, k));
	const char *y = json_string_value(json_object_get(b, k));

	return strcmp(x ? x : "", y ? y : "");
}

static int
cmp_int(json_t *a, json_t *b, const char *k)
{
	json_int_t x = json_integer_value(json_object_get(a, k));
	json_int_t y = json_integer_value(json_object_get(b, k));

	return x < y ? -1 : x > y;
}

static int
gather_cmp(const void *pa, const void *pb)
{
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int d;

	if (strcmp(gather_member, "findings") == 0) {
		if ((d = -cmp_int(a, b, "received_at")) != 0 ||
		    (d = cmp_text(a, b, "center")) != 0 ||
		    (d = cmp_text(a, b, "agent_id")) != 0)
			return d;
		return -cmp_int(a, b, "seq");
	}
	if (strcmp(gather_member, "tasks") == 0) {
		if ((d = -cmp_int(a, b, "created_at")) != 0 ||
		    (d = cmp_text(a, b, "center")) != 0)
			return d;
		return cmp_text(a, b, "id");
	}
	if ((d = cmp_text(a, b, "center")) != 0 ||
	    (d = cmp_text(a, b, "hostname")) != 0)
		return d;
	return cmp_text(a, b, "id");
}

/* GET of a path on every center: the member lists joined and ordered,
 * each item with its center, one page of them (query.h: limit, cursor;
 * each center is asked for its first offset + limit + 1 rows, so the
 * joined page is exact); centers that cannot be asked under "errors". */
static void
gather_done(struct mjob *j)
{
	json_t *all = json_array(), *arr = json_array(), *errs = json_array();
	json_t *v, **rows, *next;
	size_t k, n;
	int i;

	for (i = 0; i < j->n; i++) {
		struct mcall *m = &j->calls[i];

		json_array_foreach(json_object_get(m->res, j->member), k, v)
		{
			json_object_set_new(v, "center",
			                    json_string(m->m.name));
			json_array_append(all, v);
		}
		if (m->res == NULL)
			json_array_append_new(
			    errs, json_pack("{s:s, s:s}", "center", m->m.name,
			                    "error", m->err));
	}
	n = json_array_size(all);
	if ((rows = calloc(n + 1, sizeof(*rows))) == NULL)
		fatal("calloc");
	json_array_foreach(all, k, v) rows[k] = v;
	gather_member = j->member;
	qsort(rows, n, sizeof(*rows), gather_cmp);
	for (k = (size_t)j->offset;
	     k < n && (long long)k <= j->offset + j->limit; k++)
		json_array_append(arr, rows[k]);
	free(rows);
	json_decref(all);
	next = query_page_next(arr, j->limit, j->offset);
	if (j->req != NULL)
		http_reply_json(j->req, 200,
		                json_pack("{s:O, s:O, s:o, s:o}", j->member,
		                          arr, "items", arr, "next_cursor",
		                          next, "errors", errs));
	else {
		json_decref(next);
		json_decref(errs);
	}
	json_decref(arr);
}

static void
gather(struct http_req *r, const char *path, const char *member)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	struct mjob *j;
	long long limit, offset;
	char p[600];
	int i, n;

	if (not_master(r) || (n = centers_of(c, ms, r)) < 0 ||
	    query_page_args(r, QUERY_MAX_LIMIT, &limit, &offset) == -1)
		return;
	if (offset + limit + 1 > MASTER_DEPTH) {
		http_reply_error_field(r, 400, "bad_request", "cursor",
		                       "cursor: pages reach the first %d rows "
		                       "of each center",
		                       MASTER_DEPTH - 1);
		return;
	}
	if (too_busy(r))
		return;
	j = job_new(c->master, n, gather_done);
	snprintf(j->member, sizeof(j->member), "%s", member);
	j->limit = limit;
	j->offset = offset;
	snprintf(p, sizeof(p), "%s?limit=%lld", path, offset + limit + 1);
	for (i = 0; i < n; i++)
		job_add(j, i, &ms[i], "GET", p, NULL);
	job_defer(r, j);
}

/* GET /api/v1/master/agents: every center's agents, each with its
 * center; centers that cannot be asked are listed under "errors". */
static void
adm_agents(struct http_req *r)
{
	gather(r, "/manage/v1/agents", "agents");
}

/* GET /api/v1/master/findings: every center's findings, newest first. */
static void
adm_findings(struct http_req *r)
{
	gather(r, "/manage/v1/findings", "findings");
}

/* GET /api/v1/master/tasks: every center's tasks, newest first. */
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

/* Every name in list (when given) is one of ms[0..n): else 400. */
static int
check_chosen(struct http_req *r, json_t *list, const struct mcenter *ms, int n)
{
	json_t *v;
	size_t k;
	int i;

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
			return -1;
		}
	}
	return 0;
}

/* --- pushes: tasks, rule sets and IOC lists ---------------------------- */

/*
 * A push is recorded first, with one row per chosen center in state
 * pending, and answered at once; deliveries go out in rounds off the
 * loop: each round takes, for every center that has no delivery out,
 * its oldest pending push and sends it (a task: POST /manage/v1/tasks;
 * a rule set or IOC list: PUT /manage/v1/rules/NAME), one job per center,
 * so a center that never answers holds only its own. What a center
 * accepts becomes applied (with the center's task id or rule set
 * version); what it refuses failed, with its answer; a center that cannot
 * be reached (or answers 5xx) keeps its row pending with the reason, and
 * the next round (every MASTER_RETRY seconds, at once after a push) tries
 * again: a center that was down gets what it missed when it returns, in
 * the order it was pushed. Master tasks are pushes of kind "task"; their
 * rows are in master_tasks too (task_id once created).
 */
static void
push_kick(struct master *ms)
{
	if (ms != NULL)
		event_active(ms->ev_kick, EV_TIMEOUT, 0);
}

static void deliver_done(struct mjob *j);

/*
 * Central users: the master's own users (source local: name, role,
 * password hash, disabled, second factor) are the users of every
 * center it manages. Each round compares a digest of them with the one
 * each center last accepted and sends the whole list (PUT
 * /manage/v1/users) to every center that has not got it yet: a center
 * that was down gets the list when it returns, a user removed here is
 * removed there then. The centers keep what they were told (manage.c),
 * so they log these users in while the master is away.
 */
static json_t *
central_users(struct center *c, char digest[65])
{
	struct store_rows *q;
	json_t *arr = json_array();
	char *text;

	q = store_query(c->store,
	                "SELECT name, role, hash, disabled, totp_secret FROM "
	                "users WHERE source = 'local' AND hash IS NOT NULL "
	                "ORDER BY name");
	if (q == NULL) {
		json_decref(arr);
		return NULL;
	}
	while (store_next(q) == 1)
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:b, s:s?}", "name",
		                   store_text(q, 0), "role", store_text(q, 1),
		                   "hash", store_text(q, 2), "disabled",
		                   store_int(q, 3) != 0, "totp_secret",
		                   store_text(q, 4)));
	store_done(q);
	text = json_dumps(arr, JSON_COMPACT);
	sha256_hex(text ? text : "", text ? strlen(text) : 0, digest);
	if (text != NULL) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	return arr;
}

static void
check_done(struct mjob *j)
{
	j->ms->sent[j->slot].busy = 0;
}

/* A center that is down and owed nothing: its versions, to learn when it
 * is back (note_reach). */
static void
check_center(struct master *ms, int sl, const struct mcenter *m)
{
	struct mjob *j = job_new(ms, 1, check_done);

	j->slot = sl;
	job_add(j, 0, m, NULL, "/manage/v1/hello", NULL);
	ms->sent[sl].busy = 1;
	job_start(ms, j);
}

static void
on_push(evutil_socket_t fd, short ev, void *arg)
{
	struct master *ms = arg;
	struct center *c = ms->c;
	struct mcenter cs[MASTER_MAX];
	struct store_rows *q;
	struct mjob *j;
	json_t *sel = json_array(), *v, *users = NULL;
	char seen[MASTER_MAX], digest[65] = "";
	size_t k;
	int i, n;

	(void)fd;
	(void)ev;
	if (ms->stop)
		goto out;
	if ((n = centers_of(c, cs, NULL)) < 0)
		goto out;
	memset(seen, 0, sizeof(seen));
	q = store_query(c->store,
	                "SELECT pc.push_id, pc.center, p.kind, p.name, "
	                "p.content FROM master_push_centers pc JOIN "
	                "master_pushes p ON p.id = pc.push_id WHERE pc.state "
	                "= 'pending' ORDER BY p.seq, pc.center LIMIT 10000");
	while (q != NULL && store_next(q) == 1) {
		const char *name = store_text(q, 1);

		for (i = 0; i < n && strcmp(cs[i].name, name) != 0; i++)
			;
		if (i == n) {
			json_array_append_new(
			    sel,
			    json_pack("{s:s, s:s, s:b}", "id", store_text(q, 0),
			              "center", name, "gone", 1));
			continue;
		}
		if (seen[i])
			continue;
		seen[i] = 1;
		json_array_append_new(
		    sel, json_pack("{s:s, s:i, s:s, s:s, s:s}", "id",
		                   store_text(q, 0), "i", i, "kind",
		                   store_text(q, 2), "name", store_text(q, 3),
		                   "content", store_text(q, 4)));
	}
	store_done(q);
	/* Rows of centers no longer configured fail now. */
	json_array_foreach(sel, k, v)
	{
		if (json_object_get(v, "gone") == NULL)
			continue;
		store_exec(
		    c->store,
		    "UPDATE master_push_centers SET state = 'failed', "
		    "error = 'no longer in [master] centers', "
		    "updated_at = ? WHERE push_id = ? AND center = ?",
		    S_INT(time(NULL)),
		    S_TEXT(json_string_value(json_object_get(v, "id"))),
		    S_TEXT(json_string_value(json_object_get(v, "center"))));
	}
	/* One delivery per center at a time, each on its own: a center
	 * that does not answer holds only its own. */
	users = central_users(c, digest);
	for (i = 0; i < n; i++) {
		int sl = slot(ms, cs[i].name), nu, x = 0;
		json_t *row = NULL;

		if (sl < 0 || ms->sent[sl].busy)
			continue;
		json_array_foreach(sel, k, v)
		{
			if (json_object_get(v, "gone") == NULL &&
			    json_integer_value(json_object_get(v, "i")) == i)
				row = v;
		}
		nu = users != NULL && strcmp(ms->sent[sl].digest, digest) != 0;
		if (row == NULL && !nu) {
			if (ms->sent[sl].down_since != 0)
				check_center(ms, sl, &cs[i]);
			continue;
		}
		j = job_new(ms, (row != NULL) + nu, deliver_done);
		j->slot = sl;
		snprintf(j->digest, sizeof(j->digest), "%s", digest);
		if (nu) {
			json_t *b = json_pack("{s:O}", "users", users);

			job_add(j, x, &cs[i], "PUT", "/manage/v1/users", b);
			json_decref(b);
			snprintf(j->calls[x].tag, sizeof(j->calls[x].tag),
			         "users");
			x++;
		}
		if (row != NULL) {
			const char *kind =
			    json_string_value(json_object_get(row, "kind"));
			const char *name =
			    json_string_value(json_object_get(row, "name"));
			const char *content =
			    json_string_value(json_object_get(row, "content"));

			if (strcmp(kind, "task") == 0) {
				json_t *spec = json_loads(content, 0, NULL);

				job_add(j, x, &cs[i], "POST",
				        "/manage/v1/tasks", spec);
				json_decref(spec);
			} else if (strcmp(kind, "intel") == 0) {
				json_t *b =
				    json_pack("{s:s}", "content", content);
				char path[600];

				snprintf(path, sizeof(path),
				         "/manage/v1/intel/%s", name);
				job_add(j, x, &cs[i], "PUT", path, b);
				json_decref(b);
			} else {
				json_t *b = json_pack("{s:s, s:s}", "kind",
				                      kind, "content", content);
				struct buf enc;
				char path[600];

				buf_init(&enc, 256);
				httpc_urlenc(&enc, name);
				snprintf(path, sizeof(path),
				         "/manage/v1/rules/%s", buf_cstr(&enc));
				buf_free(&enc);
				job_add(j, x, &cs[i], "PUT", path, b);
				json_decref(b);
			}
			snprintf(j->calls[x].tag, sizeof(j->calls[x].tag), "%s",
			         json_string_value(json_object_get(row, "id")));
		}
		ms->sent[sl].busy = 1;
		job_start(ms, j);
	}
out:
	json_decref(users);
	json_decref(sel);
}

static void
deliver_done(struct mjob *j)
{
	struct master *ms = j->ms;
	struct center *c = ms->c;
	long long now = (long long)time(NULL);
	int i, moved = 0;

	ms->sent[j->slot].busy = 0;
	for (i = 0; i < j->n; i++) {
		struct mcall *k = &j->calls[i];
		const char *ver = json_string_value(
		    json_object_get(k->res, "id")); /* task or rule set */

		if (strcmp(k->tag, "users") == 0) {
			json_t *cf = json_object_get(k->res, "conflicts");

			if (k->res == NULL) {
				log_debug("master: users to %s: %s", k->m.name,
				          k->err);
				continue;
			}
			snprintf(ms->sent[j->slot].digest,
			         sizeof(ms->sent[j->slot].digest), "%s",
			         j->digest);
			log_info("master: users on %s: %lld added, %lld "
			         "updated, %lld removed",
			         k->m.name,
			         (long long)json_integer_value(
			             json_object_get(k->res, "added")),
			         (long long)json_integer_value(
			             json_object_get(k->res, "updated")),
			         (long long)json_integer_value(
			             json_object_get(k->res, "removed")));
			if (json_array_size(cf) > 0) {
				char *t = json_dumps(cf, JSON_COMPACT);

				log_warnx("master: %s keeps its own users of "
				          "the same name as the master's: %s",
				          k->m.name, t ? t : "?");
				free(t);
			}
			continue;
		}
		if (k->res != NULL) {
			moved++;
			store_exec(c->store,
			           "UPDATE master_push_centers SET state = "
			           "'applied', version = ?, error = NULL, "
			           "attempts = attempts + 1, updated_at = ? "
			           "WHERE push_id = ? AND center = ?",
			           S_TEXT(ver), S_INT(now), S_TEXT(k->tag),
			           S_TEXT(k->m.name));
			store_exec(c->store,
			           "UPDATE master_tasks SET task_id = ?, error "
			           "= NULL WHERE id = ? AND center = ?",
			           S_TEXT(ver), S_TEXT(k->tag),
			           S_TEXT(k->m.name));
			log_info("master: push %s applied on %s (%s)", k->tag,
			         k->m.name, ver ? ver : "?");
		} else if (k->retry) {
			store_exec(c->store,
			           "UPDATE master_push_centers SET error = ?, "
			           "attempts = attempts + 1, updated_at = ? "
			           "WHERE push_id = ? AND center = ?",
			           S_TEXT(k->err), S_INT(now), S_TEXT(k->tag),
			           S_TEXT(k->m.name));
		} else {
			moved++;
			store_exec(c->store,
			           "UPDATE master_push_centers SET state = "
			           "'failed', error = ?, attempts = attempts + "
			           "1, updated_at = ? WHERE push_id = ? AND "
			           "center = ?",
			           S_TEXT(k->err), S_INT(now), S_TEXT(k->tag),
			           S_TEXT(k->m.name));
			store_exec(c->store,
			           "UPDATE master_tasks SET error = ? WHERE id "
			           "= ? AND center = ?",
			           S_TEXT(k->err), S_TEXT(k->tag),
			           S_TEXT(k->m.name));
			log_warnx("master: push %s refused by %s: %s", k->tag,
			          k->m.name, k->err);
		}
	}
	if (moved)
		push_kick(ms); /* the next pushes of those centers */
}

/* Records a push of kind ("task", "yara", "ioc") to the chosen centers
 * in the request's unit; the reply's "centers" array, or NULL after
 * replying 500. */
static json_t *
push_record(struct http_req *r, const char *id, const char *kind,
            const char *name, const char *sha, const char *content,
            json_t *list, const struct mcenter *cs, int n)
{
	struct center *c = C(r);
	long long now = (long long)time(NULL), seq = 0;
	struct store_rows *q;
	json_t *out = json_array();
	int i;

	q = store_query(c->store,
	                "SELECT COALESCE(MAX(seq), 0) FROM master_pushes");
	if (q != NULL && store_next(q) == 1)
		seq = store_int(q, 0);
	store_done(q);
	if (store_exec(c->store,
	               "INSERT INTO master_pushes (id, seq, kind, name, "
	               "sha256, content, created_at, created_by) VALUES (?, "
	               "?, ?, ?, ?, ?, ?, ?)",
	               S_TEXT(id), S_INT(seq + 1), S_TEXT(kind), S_TEXT(name),
	               S_TEXT(sha), S_TEXT(content), S_INT(now),
	               S_TEXT(r->who)) != 1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (!chosen(list, cs[i].name))
			continue;
		if (store_exec(c->store,
		               "INSERT INTO master_push_centers (push_id, "
		               "center, state, attempts, updated_at) VALUES "
		               "(?, ?, 'pending', 0, ?)",
		               S_TEXT(id), S_TEXT(cs[i].name), S_INT(now)) != 1)
			goto fail;
		if (strcmp(kind, "task") == 0 &&
		    store_exec(c->store,
		               "INSERT INTO master_tasks (id, center, "
		               "task_id, created_at, created_by, spec, error) "
		               "VALUES (?, ?, NULL, ?, ?, ?, NULL)",
		               S_TEXT(id), S_TEXT(cs[i].name), S_INT(now),
		               S_TEXT(r->who), S_TEXT(content)) != 1)
			goto fail;
		json_array_append_new(out, json_pack("{s:s, s:s}", "center",
		                                     cs[i].name, "state",
		                                     "pending"));
	}
	return out;
fail:
	json_decref(out);
	http_reply_error(r, 500, "store", "cannot record the push");
	return NULL;
}

/* POST /api/v1/master/tasks {"centers": [NAMES] (default all), "task":
 * SPEC}: the task is created on each chosen center, now or when it can
 * be reached. 201 {"id", "centers": [{"center", "state": "pending"}]}. */
static void
adm_push(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	json_t *j, *list, *out;
	char id[37], *spec = NULL;
	int n;

	if ((j = schema_body(r, push_schema)) == NULL)
		return;
	if (not_master(r) || (n = centers_of(c, ms, r)) < 0)
		goto done;
	list = json_object_get(j, "centers");
	if (check_chosen(r, list, ms, n) == -1)
		goto done;
	random_uuid(id);
	spec = json_dumps(json_object_get(j, "task"), JSON_COMPACT);
	if (spec == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto done;
	}
	if ((out = push_record(r, id, "task", "task", "", spec, list, ms, n)) ==
	    NULL)
		goto done;
	http_reply_json(r, 201,
	                json_pack("{s:s, s:o}", "id", id, "centers", out));
	push_kick(c->master);
done:
	free(spec);
	json_decref(j);
}

static const struct schema_field rules_push_schema[] = {
    {"centers", SCH_ARRAY | SCH_NULL, 0},
    {"name", SCH_STRING, 1},
    {"kind", SCH_STRING, 1},
    {"content", SCH_STRING, 1},
    {NULL, 0, 0},
};

/* POST /api/v1/master/rules {"centers": [NAMES] (default all), "name",
 * "kind": "yara"|"ioc", "content"}: checked here as a center checks it,
 * then pushed. 201 {"id", "name", "kind", "sha256", "centers":
 * [{"center", "state": "pending"}]}. */
static void
adm_rules_push(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	const char *name, *kind, *content, *code, *field;
	json_t *j, *list, *out;
	struct buf err;
	char id[37], sha[65];
	int n, st;

	if ((j = schema_body(r, rules_push_schema)) == NULL)
		return;
	buf_init(&err, 8192);
	if (not_master(r) || (n = centers_of(c, ms, r)) < 0)
		goto done;
	list = json_object_get(j, "centers");
	if (check_chosen(r, list, ms, n) == -1)
		goto done;
	name = json_string_value(json_object_get(j, "name"));
	kind = json_string_value(json_object_get(j, "kind"));
	content = json_string_value(json_object_get(j, "content"));
	if ((st = rules_check(name, kind, content, &code, &field, &err)) != 0) {
		http_reply_error_field(r, st, code, field ? field : "content",
		                       "%s", buf_cstr(&err));
		goto done;
	}
	sha256_hex(content, strlen(content), sha);
	random_uuid(id);
	if ((out = push_record(r, id, kind, name, sha, content, list, ms, n)) ==
	    NULL)
		goto done;
	log_info("master: %s rule set %s (%s) pushed by %s as %s", kind, name,
	         sha, r->who, id);
	http_reply_json(r, 201,
	                json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "name",
	                          name, "kind", kind, "sha256", sha, "centers",
	                          out));
	push_kick(c->master);
done:
	buf_free(&err);
	json_decref(j);
}

static const struct schema_field intel_push_schema[] = {
    {"centers", SCH_ARRAY | SCH_NULL, 0},
    {"name", SCH_STRING, 1},
    {"content", SCH_STRING, 1},
    {NULL, 0, 0},
};

/* POST /api/v1/master/intel {"centers": [NAMES] (default all), "name":
 * FEED.csv|FEED.list|FEED.txt|FEED.json, "content"}: an intelligence
 * feed for each chosen center's vigil-inteld (manage.c imports it), a
 * push like a rule set's. 201 {"id", "name", "kind": "intel", "sha256",
 * "centers": [{"center", "state": "pending"}]}. */
static void
adm_intel_push(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	const char *name, *content, *dot;
	json_t *j, *list, *out;
	char id[37], sha[65];
	size_t fl;
	int n;

	if ((j = schema_body(r, intel_push_schema)) == NULL)
		return;
	if (not_master(r) || (n = centers_of(c, ms, r)) < 0)
		goto done;
	list = json_object_get(j, "centers");
	if (check_chosen(r, list, ms, n) == -1)
		goto done;
	name = json_string_value(json_object_get(j, "name"));
	content = json_string_value(json_object_get(j, "content"));
	dot = strrchr(name, '.');
	fl = dot ? (size_t)(dot - name) : 0;
	if (dot == NULL || fl == 0 || fl > 64 ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789._-") != strlen(name) ||
	    (strcmp(dot, ".csv") != 0 && strcmp(dot, ".list") != 0 &&
	     strcmp(dot, ".txt") != 0 && strcmp(dot, ".json") != 0)) {
		http_reply_error_field(
		    r, 400, "bad_request", "name",
		    "name: FEED.csv, FEED.list (or .txt) or FEED.json (a STIX "
		    "2.1 bundle); FEED is 1 to 64 of A-Z a-z 0-9 . _ -");
		goto done;
	}
	if (*content == '\0') {
		http_reply_error_field(r, 400, "bad_request", "content",
		                       "content: the feed file, not empty");
		goto done;
	}
	sha256_hex(content, strlen(content), sha);
	random_uuid(id);
	if ((out = push_record(r, id, "intel", name, sha, content, list, ms,
	                       n)) == NULL)
		goto done;
	log_info("master: intel feed %s (%s) pushed by %s as %s", name, sha,
	         r->who, id);
	http_reply_json(r, 201,
	                json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "name",
	                          name, "kind", "intel", "sha256", sha,
	                          "centers", out));
	push_kick(c->master);
done:
	json_decref(j);
}

/* The centers of push id: [{"center", "state", "version", "error",
 * "attempts", "updated_at"}], or NULL when the store fails. */
static json_t *
push_centers(struct center *c, const char *id)
{
	struct store_rows *q;
	json_t *arr;

	q = store_query(c->store,
	                "SELECT center, state, version, error, attempts, "
	                "updated_at FROM master_push_centers WHERE push_id = "
	                "? ORDER BY center",
	                S_TEXT(id));
	if (q == NULL)
		return NULL;
	arr = json_array();
	while (store_next(q) == 1)
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I}", "center",
		                   store_text(q, 0), "state", store_text(q, 1),
		                   "version", store_text(q, 2), "error",
		                   store_text(q, 3), "attempts",
		                   (json_int_t)store_int(q, 4), "updated_at",
		                   (json_int_t)store_int(q, 5)));
	store_done(q);
	return arr;
}

static json_t *
push_row(struct center *c, struct store_rows *q)
{
	json_t *cs = push_centers(c, store_text(q, 0));

	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "id", store_text(q, 0),
	    "kind", store_text(q, 1), "name", store_text(q, 2), "sha256",
	    store_text(q, 3), "created_at", (json_int_t)store_int(q, 4),
	    "created_by", store_text(q, 5), "centers", cs ? cs : json_array());
}

#define PUSH_COLUMNS "id, kind, name, sha256, created_at, created_by"

/* GET /api/v1/master/pushes?limit=N&cursor=C: the pushes of rule sets
 * and IOC lists, newest first, with each center's progress. */
static void
adm_pushes(struct http_req *r)
{
	struct center *c = C(r);
	struct store_rows *q;
	long long limit, offset;
	json_t *arr, *next;

	if (not_master(r) ||
	    query_page_args(r, QUERY_MAX_LIMIT, &limit, &offset) == -1)
		return;
	q = store_query(c->store,
	                "SELECT " PUSH_COLUMNS " FROM master_pushes WHERE "
	                "kind <> 'task' ORDER BY seq DESC LIMIT ? OFFSET ?",
	                S_INT(limit + 1), S_INT(offset));
	if (q == NULL) {
		http_reply_error(r, 503, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1)
		json_array_append_new(arr, push_row(c, q));
	store_done(q);
	next = query_page_next(arr, limit, offset);
	http_reply_json(
	    r, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", next));
}

/* GET /api/v1/master/pushes/ID: one push with each center's progress. */
static void
adm_push_get(struct http_req *r)
{
	struct center *c = C(r);
	char id[40];
	const char *rest = http_req_rest_id(r, id, sizeof(id));
	struct store_rows *q;
	json_t *o = NULL;

	if (not_master(r))
		return;
	if (rest == NULL || *rest != '\0') {
		http_reply_error(r, 404, "not_found", "no such push");
		return;
	}
	q = store_query(c->store,
	                "SELECT " PUSH_COLUMNS " FROM master_pushes WHERE id "
	                "= ? AND kind <> 'task'",
	                S_TEXT(id));
	if (q == NULL) {
		http_reply_error(r, 503, "store", "store unavailable");
		return;
	}
	if (store_next(q) == 1)
		o = push_row(c, q);
	store_done(q);
	if (o == NULL)
		http_reply_error(r, 404, "not_found", "no push %s", id);
	else
		http_reply_json(r, 200, o);
}

/* GET /api/v1/master/tasks/ID: each center's progress. */
static void
task_done(struct mjob *j)
{
	json_t *rows = j->rows, *o;
	size_t x;

	json_array_foreach(rows, x, o)
	{
		json_t *ix = json_object_get(o, "call");

		if (ix != NULL) {
			struct mcall *k =
			    &j->calls[(int)json_integer_value(ix)];

			if (k->res != NULL) {
				json_object_set(
				    o, "runs", json_object_get(k->res, "runs"));
				json_object_set(
				    o, "total",
				    json_object_get(k->res, "total"));
				json_object_set(
				    o, "finished",
				    json_object_get(k->res, "finished"));
			} else
				json_object_set_new(o, "error",
				                    json_string(k->err));
			json_object_del(o, "call");
		}
	}
	if (j->req != NULL)
		http_reply_json(
		    j->req, 200,
		    json_pack("{s:s, s:O}", "id", j->id, "centers", rows));
}

static void
adm_task(struct http_req *r)
{
	struct center *c = C(r);
	struct mcenter ms[MASTER_MAX];
	char id[40];
	const char *rest = http_req_rest_id(r, id, sizeof(id));
	struct store_rows *q;
	struct mjob *j;
	json_t *rows, *o;
	size_t x;
	int i, n, ncalls = 0;

	if (not_master(r) || (n = centers_of(c, ms, r)) < 0 || too_busy(r))
		return;
	if (rest == NULL || *rest != '\0') {
		http_reply_error(r, 404, "not_found", "no such task");
		return;
	}
	q = store_query(c->store,
	                "SELECT t.center, t.task_id, t.error, pc.state FROM "
	                "master_tasks t LEFT JOIN master_push_centers pc ON "
	                "pc.push_id = t.id AND pc.center = t.center WHERE "
	                "t.id = ? ORDER BY t.center",
	                S_TEXT(id));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	rows = json_array();
	while (store_next(q) == 1) {
		const char *name = store_text(q, 0), *tid = store_text(q, 1);
		const char *state = store_text(q, 3);

		o = json_pack("{s:s, s:s?, s:s}", "center", name, "task_id",
		              tid, "state",
		              state ? state : (tid ? "applied" : "failed"));
		for (i = 0; i < n && strcmp(ms[i].name, name) != 0; i++)
			;
		if (tid == NULL && state != NULL &&
		    strcmp(state, "pending") == 0)
			json_object_set_new(o, "error",
			                    store_text(q, 2)
			                        ? json_string(store_text(q, 2))
			                        : json_null());
		else if (tid == NULL) {
			char e[1100];

			snprintf(e, sizeof(e), "not created: %s",
			         store_text(q, 2) ? store_text(q, 2) : "?");
			json_object_set_new(o, "error", json_string(e));
		} else if (i == n)
			json_object_set_new(
			    o, "error",
			    json_string("no longer in [master] centers"));
		else {
			json_object_set_new(o, "call", json_integer(ncalls));
			json_object_set_new(o, "i", json_integer(i));
			ncalls++;
		}
		json_array_append_new(rows, o);
	}
	store_done(q);
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		http_reply_error(r, 404, "not_found", "no master task %s", id);
		return;
	}
	j = job_new(c->master, ncalls, task_done);
	j->rows = rows;
	snprintf(j->id, sizeof(j->id), "%s", id);
	json_array_foreach(rows, x, o)
	{
		char path[128];

		if (json_object_get(o, "call") == NULL)
			continue;
		snprintf(path, sizeof(path), "/manage/v1/tasks/%s",
		         json_string_value(json_object_get(o, "task_id")));
		job_add(j, (int)json_integer_value(json_object_get(o, "call")),
		        &ms[json_integer_value(json_object_get(o, "i"))], "GET",
		        path, NULL);
		json_object_del(o, "i");
	}
	job_defer(r, j);
}

/* --- start and stop ----------------------------------------------------- */

int
master_start(struct center *c)
{
	struct master *ms;
	struct timeval tv = {MASTER_RETRY, 0};

	if (c->conf.role != CENTER_ROLE_MASTER)
		return 0;
	if ((ms = calloc(1, sizeof(*ms))) == NULL)
		return -1;
	ms->c = c;
	ms->ca = strdup(c->paths.ca_crt);
	ms->cert = strdup(c->conf.ms_cert ? c->conf.ms_cert : "");
	ms->key = strdup(c->conf.ms_key ? c->conf.ms_key : "");
	if (ms->ca == NULL || ms->cert == NULL || ms->key == NULL ||
	    pipe2(ms->wake, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	pthread_mutex_init(&ms->lock, NULL);
	pthread_cond_init(&ms->idle, NULL);
	ms->ev_wake =
	    event_new(c->base, ms->wake[0], EV_READ | EV_PERSIST, on_wake, ms);
	ms->ev_push = event_new(c->base, -1, EV_PERSIST, on_push, ms);
	/* Kicks are an event of their own: made active, a persistent timer
	 * reschedules itself one period after the time it was due, so
	 * every kick would put the next round off by MASTER_RETRY more. */
	ms->ev_kick = event_new(c->base, -1, 0, on_push, ms);
	if (ms->ev_wake == NULL || ms->ev_push == NULL || ms->ev_kick == NULL ||
	    event_add(ms->ev_wake, NULL) == -1 ||
	    event_add(ms->ev_push, &tv) == -1)
		return -1;
	c->master = ms;
	push_kick(ms); /* what waited across a restart */
	return 0;
}

/* Answers the requests still waiting for centers, aborts the calls out
 * and waits for their threads (each ends within its timeout, at once
 * once aborted). */
void
master_stop(struct center *c)
{
	struct master *ms = c->master;
	struct mjob *j;

	if (ms == NULL)
		return;
	ms->stop = 1;
	pthread_mutex_lock(&ms->lock);
	while (ms->running > 0)
		pthread_cond_wait(&ms->idle, &ms->lock);
	pthread_mutex_unlock(&ms->lock);
	on_wake(ms->wake[0], EV_READ, ms); /* answers what finished */
	while ((j = ms->done) != NULL) {
		ms->done = j->next;
		job_free(j);
	}
	event_free(ms->ev_wake);
	event_free(ms->ev_push);
	event_free(ms->ev_kick);
	close(ms->wake[0]);
	close(ms->wake[1]);
	pthread_mutex_destroy(&ms->lock);
	pthread_cond_destroy(&ms->idle);
	free(ms->ca);
	free(ms->cert);
	free(ms->key);
	free(ms);
	c->master = NULL;
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
    {"POST", "/api/v1/master/rules", adm_rules_push, 0, "master_rules", 0,
     ROLE_OPERATOR},
    {"POST", "/api/v1/master/intel", adm_intel_push, 0, "master_intel", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/master/pushes", adm_pushes, 0, "master_pushes", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/master/pushes/", adm_push_get, HTTP_ROUTE_PREFIX,
     "master_push", 0, ROLE_READONLY},
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
