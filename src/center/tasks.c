/*
 * tasks.c: tasks operators send to agents and their per-agent runs.
 *
 * A task has a kind (one row of task_kinds[] below: its parameters, their
 * types and bounds), parameters, a target (one agent, a list, a label
 * selector or all agents) resolved to runs when it is created, a timeout
 * per run and an expiry for runs never picked up. Run states: queued,
 * dispatched, running, done, failed, cancelled, expired.
 *
 * Dispatch is a long poll: GET /v1/tasks?wait=N answers at once when runs
 * are queued for the agent, else the request is held (http_req_defer)
 * until a task for that agent is created or the wait ends. Held polls are
 * counted; past [gateway] max_long_polls the center answers 503 with
 * Retry-After, so nothing is dropped, only postponed.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "query.h"
#include "schema.h"
#include "events.h"
#include "metrics.h"
#include "tls.h"

#define C(r)             ((struct center *)(r)->arg)
#define WAITER_BUCKETS   4096
#define DISPATCH_MAX     16 /* runs handed out per poll */
#define TASK_MAX_TIMEOUT (7 * 86400LL)
/* A run handed out but never reported running (the reply to the poll was
 * lost with its connection) goes out again after this long; agents drop
 * task ids they have seen already. */
#define REDISPATCH_SECS 30

/* --- the table of task kinds ------------------------------------------- */

enum param_type { P_STR, P_INT, P_BOOL, P_STRLIST, P_INTLIST };

struct task_param {
	const char *name;
	enum param_type type;
	int required;
	long long min,
	    max; /* P_INT, P_INTLIST: value; P_STR/P_STRLIST: length */
};

struct task_kind {
	const char *name;
	const struct task_param *params;
	const char *help;
};

static const struct task_param scan_params[] = {
    {"paths", P_STRLIST, 0, 1, 4096},
    {"exclude", P_STRLIST, 0, 1, 4096},
    {"rules", P_STRLIST, 0, 1, 128},
    {"max_size", P_INT, 0, 1, 1LL << 40},
    {"one_fs", P_BOOL, 0, 0, 0},
    {"files_per_sec", P_INT, 0, 0, 1000000},
    {"mb_per_sec", P_INT, 0, 0, 100000},
    {"nice", P_INT, 0, 0, 19},
    {"memory", P_BOOL, 0, 0, 0},          /* process memory (Linux) */
    {"pids", P_INTLIST, 0, 1, 1LL << 22}, /* only these processes */
    {NULL, 0, 0, 0, 0},
};
static const struct task_param collect_params[] = {
    {"path", P_STR, 1, 1, 4096},
    {"max_size", P_INT, 0, 1, 1LL << 32},
    {NULL, 0, 0, 0, 0},
};
static const struct task_param no_params[] = {
    {NULL, 0, 0, 0, 0},
};
static const struct task_param kill_params[] = {
    {"pid", P_INT, 1, 1, 1LL << 22},
    {"start_time", P_INT, 1, 0, 1LL << 62},
    {NULL, 0, 0, 0, 0},
};
static const struct task_param quarantine_params[] = {
    {"path", P_STR, 1, 1, 4096},
    {NULL, 0, 0, 0, 0},
};
static const struct task_param restore_params[] = {
    {"id", P_STR, 1, 1, 128},
    {NULL, 0, 0, 0, 0},
};

/* Adding a kind: one row here, one handler in the agent's table. */
static const struct task_kind task_kinds[] = {
    {"scan", scan_params, "YARA + IOC scan of paths"},
    {"collect", collect_params, "upload a file as a sample"},
    {"inventory", no_params,
     "processes, listening sockets, users, installed packages"},
    {"kill-process", kill_params,
     "kill a process by pid, guarded by its start time"},
    {"quarantine", quarantine_params, "move a file into quarantine"},
    {"restore", restore_params, "restore a quarantined file"},
    {NULL, NULL, NULL},
};

static const struct task_kind *
kind_find(const char *name)
{
	const struct task_kind *k;

	for (k = task_kinds; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static int
param_check(const struct task_param *p, json_t *v, struct buf *err)
{
	size_t i, n;
	json_t *e;

	switch (p->type) {
	case P_STR:
		n = json_is_string(v) ? strlen(json_string_value(v)) : 0;
		if (!json_is_string(v) || (long long)n < p->min ||
		    (long long)n > p->max) {
			buf_printf(err,
			           "params.%s: must be a string of %lld..%lld",
			           p->name, p->min, p->max);
			return -1;
		}
		return 0;
	case P_INT:
		if (!json_is_integer(v) || json_integer_value(v) < p->min ||
		    json_integer_value(v) > p->max) {
			buf_printf(err,
			           "params.%s: must be an integer %lld..%lld",
			           p->name, p->min, p->max);
			return -1;
		}
		return 0;
	case P_BOOL:
		if (!json_is_boolean(v)) {
			buf_printf(err, "params.%s: must be true or false",
			           p->name);
			return -1;
		}
		return 0;
	case P_STRLIST:
		if (!json_is_array(v) || json_array_size(v) > 256) {
			buf_printf(err,
			           "params.%s: must be a list of at most "
			           "256 strings",
			           p->name);
			return -1;
		}
		json_array_foreach(v, i, e)
		{
			n = json_is_string(e) ? strlen(json_string_value(e))
			                      : 0;
			if (!json_is_string(e) || (long long)n < p->min ||
			    (long long)n > p->max) {
				buf_printf(
				    err,
				    "params.%s[%zu]: must be a string of "
				    "%lld..%lld",
				    p->name, i, p->min, p->max);
				return -1;
			}
		}
		return 0;
	case P_INTLIST:
		if (!json_is_array(v) || json_array_size(v) > 256) {
			buf_printf(err,
			           "params.%s: must be a list of at most "
			           "256 integers",
			           p->name);
			return -1;
		}
		json_array_foreach(v, i, e)
		{
			if (!json_is_integer(e) ||
			    json_integer_value(e) < p->min ||
			    json_integer_value(e) > p->max) {
				buf_printf(err,
				           "params.%s[%zu]: must be an integer "
				           "%lld..%lld",
				           p->name, i, p->min, p->max);
				return -1;
			}
		}
		return 0;
	}
	return -1;
}

/* Checks params against the kind's table: unknown, missing, wrong. */
static int
params_check(const struct task_kind *k, json_t *params, struct buf *err)
{
	const struct task_param *p;
	const char *name;
	json_t *v;

	if (!json_is_object(params)) {
		buf_puts(err, "params: must be an object");
		return -1;
	}
	json_object_foreach(params, name, v)
	{
		for (p = k->params; p->name != NULL; p++)
			if (strcmp(p->name, name) == 0)
				break;
		if (p->name == NULL) {
			buf_printf(err, "params.%.64s: unknown for kind %s",
			           name, k->name);
			return -1;
		}
		if (param_check(p, v, err) == -1)
			return -1;
	}
	for (p = k->params; p->name != NULL; p++) {
		if (p->required && json_object_get(params, p->name) == NULL) {
			buf_printf(err, "params.%s: required for kind %s",
			           p->name, k->name);
			return -1;
		}
	}
	return 0;
}

/*
 * scan: rule set names become [{"id", "name", "kind"}] so agents fetch
 * them by content hash; no names = every rule set.
 */
static int
resolve_rules(struct center *c, json_t *params, struct buf *err)
{
	json_t *names = json_object_get(params, "rules"), *out = json_array();
	struct store_rows *q;
	size_t i;
	json_t *n;

	q = store_query(c->store,
	                "SELECT id, name, kind FROM rulesets "
	                "ORDER BY name",
	                NULL);
	if (q == NULL) {
		json_decref(out);
		buf_puts(err, "store unavailable");
		return -1;
	}
	while (store_next(q) == 1) {
		const char *name = store_text(q, 1);
		int want = names == NULL;

		json_array_foreach(names, i, n)
		{
			if (strcmp(json_string_value(n), name) == 0)
				want = 1;
		}
		if (want)
			json_array_append_new(
			    out,
			    json_pack("{s:s, s:s, s:s}", "id", store_text(q, 0),
			              "name", name, "kind", store_text(q, 2)));
	}
	store_done(q);
	if (names != NULL && json_array_size(out) != json_array_size(names)) {
		json_decref(out);
		buf_puts(err, "params.rules: names a rule set that does not "
		              "exist (see vigilctl rules list)");
		return -1;
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		buf_puts(err, "params.rules: no rule sets; add one first with "
		              "vigilctl rules add");
		return -1;
	}
	json_object_set_new(params, "rules", out);
	return 0;
}

/* --- targets ------------------------------------------------------------- */

static int
labels_match(const char *labels_json, json_t *want)
{
	json_t *have = json_loads(labels_json ? labels_json : "{}", 0, NULL);
	const char *k;
	json_t *v, *h;
	int ok = have != NULL;

	json_object_foreach(want, k, v)
	{
		h = json_object_get(have, k);
		if (!json_is_string(h) ||
		    strcmp(json_string_value(h), json_string_value(v)) != 0)
			ok = 0;
	}
	json_decref(have);
	return ok;
}

static int
target_check(json_t *t, struct buf *err)
{
	const char *k;
	json_t *v, *e;
	size_t i;

	if (!json_is_object(t) || json_object_size(t) != 1) {
		buf_puts(err, "target: one of {\"agent\": ID}, {\"agents\": "
		              "[IDs]}, {\"labels\": {K: V}}, {\"all\": true}");
		return -1;
	}
	json_object_foreach(t, k, v)
	{
		if (strcmp(k, "agent") == 0 && json_is_string(v))
			return 0;
		if (strcmp(k, "all") == 0 && json_is_true(v))
			return 0;
		if (strcmp(k, "agents") == 0 && json_is_array(v) &&
		    json_array_size(v) > 0) {
			json_array_foreach(v, i, e)
			{
				if (!json_is_string(e))
					goto bad;
			}
			return 0;
		}
		if (strcmp(k, "labels") == 0 && json_is_object(v) &&
		    json_object_size(v) > 0) {
			const char *lk;
			json_t *lv;

			json_object_foreach(v, lk, lv)
			{
				if (!json_is_string(lv))
					goto bad;
			}
			return 0;
		}
	}
bad:
	buf_puts(err, "target: one of {\"agent\": ID}, {\"agents\": [IDs]}, "
	              "{\"labels\": {K: V}}, {\"all\": true}");
	return -1;
}

static int
target_has(json_t *t, const char *id, const char *labels)
{
	json_t *v, *e;
	size_t i;

	if ((v = json_object_get(t, "agent")) != NULL)
		return strcmp(json_string_value(v), id) == 0;
	if ((v = json_object_get(t, "agents")) != NULL) {
		json_array_foreach(v, i, e)
		{
			if (strcmp(json_string_value(e), id) == 0)
				return 1;
		}
		return 0;
	}
	if ((v = json_object_get(t, "labels")) != NULL)
		return labels_match(labels, v);
	return 1; /* all */
}

/* --- waiters (held long polls) ----------------------------------------- */

struct waiter {
	struct waiter *next;
	struct center *c;
	struct http_req *req;
	struct event *timer;
	char agent[40];
};

static size_t
waiter_hash(const char *id)
{
	size_t h = 5381;

	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h % WAITER_BUCKETS;
}

static struct waiter **
waiter_slot(struct center *c, const char *id)
{
	struct waiter **w;

	if (c->waiters == NULL &&
	    (c->waiters = calloc(WAITER_BUCKETS, sizeof(*c->waiters))) == NULL)
		fatalx("%s: out of memory", __func__);
	for (w = &c->waiters[waiter_hash(id)]; *w != NULL; w = &(*w)->next)
		if (strcmp((*w)->agent, id) == 0)
			return w;
	return w;
}

/* Unlinks and frees; the request must have been answered. */
static void
waiter_drop(struct waiter **slot)
{
	struct waiter *w = *slot;

	*slot = w->next;
	event_free(w->timer);
	w->c->nwaiters--;
	metrics_set("vigil_long_polls", NULL, w->c->nwaiters);
	free(w);
}

/* The runs queued for an agent, marked dispatched, as the poll reply. */
static json_t *
take_runs(struct center *c, const char *agent)
{
	struct store_rows *q;
	json_t *a = json_array(), *t;
	long long now = (long long)time(NULL);
	size_t i;

	q = store_query(c->store,
	                "SELECT t.id, t.kind, t.params, t.timeout "
	                "FROM task_runs r JOIN tasks t ON t.id = r.task_id "
	                "WHERE r.agent_id = ? AND (r.state = 'queued' OR "
	                "(r.state = 'dispatched' AND r.dispatched_at <= ?)) "
	                "ORDER BY t.created_at LIMIT ?",
	                "sii", agent, now - REDISPATCH_SECS,
	                (long long)DISPATCH_MAX);
	while (q != NULL && store_next(q) == 1) {
		json_t *params = json_loads(store_text(q, 2), 0, NULL);

		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:o, s:I, s:I}", "id",
		              store_text(q, 0), "kind", store_text(q, 1),
		              "params", params ? params : json_object(),
		              "timeout", (json_int_t)store_int(q, 3),
		              "deadline", (json_int_t)(now + store_int(q, 3))));
	}
	store_done(q);
	json_array_foreach(a, i, t)
	{
		store_exec(
		    c->store,
		    "UPDATE task_runs SET state = 'dispatched', "
		    "dispatched_at = ?, updated_at = ? WHERE task_id = ? "
		    "AND agent_id = ? AND state IN ('queued', 'dispatched')",
		    "iiss", now, now,
		    json_string_value(json_object_get(t, "id")), agent);
	}
	if (json_array_size(a) > 0)
		metrics_add("vigil_tasks_dispatched_total", NULL,
		            (double)json_array_size(a));
	return a;
}

static void
reply_tasks(struct http_req *r, json_t *tasks)
{
	http_reply_json(r, 200, json_pack("{s:o}", "tasks", tasks));
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waiter *w = arg;
	struct waiter **slot = waiter_slot(w->c, w->agent);

	(void)fd;
	(void)what;
	reply_tasks(w->req, json_array());
	waiter_drop(slot);
}

void
tasks_wake(struct center *c, const char *agent)
{
	struct waiter **slot;

	if (c->nwaiters == 0)
		return;
	slot = waiter_slot(c, agent);
	if (*slot == NULL)
		return;
	reply_tasks((*slot)->req, take_runs(c, agent));
	waiter_drop(slot);
}

void
tasks_shutdown(struct center *c)
{
	size_t i;

	for (i = 0; c->waiters != NULL && i < WAITER_BUCKETS; i++) {
		while (c->waiters[i] != NULL) {
			http_set_header(c->waiters[i]->req, "Retry-After", "5");
			http_reply_error(
			    c->waiters[i]->req, 503, "shutting_down",
			    "the center is restarting; poll again");
			waiter_drop(&c->waiters[i]);
		}
	}
	free(c->waiters);
	c->waiters = NULL;
}

static void
gw_tasks_poll(struct http_req *r)
{
	struct center *c = C(r);
	const char *ws = http_req_query(r, "wait");
	long long wait = 0, maxwait = c->conf.gw_timeout - 5;
	struct waiter **slot, *w;
	struct http_req *d;
	json_t *tasks;
	char *id;

	if ((id = peer_agent_id(r)) == NULL)
		return;
	if (ws != NULL && str_to_ll(ws, 0, 3600, &wait) == -1) {
		http_reply_error(r, 400, "bad_request",
		                 "wait: must be seconds 0..3600");
		goto out;
	}
	/* The connection's inactivity timeout must not end a held poll. */
	if (wait > maxwait)
		wait = maxwait > 0 ? maxwait : 0;
	tasks = take_runs(c, id);
	if (json_array_size(tasks) > 0 || wait == 0) {
		reply_tasks(r, tasks);
		goto out;
	}
	json_decref(tasks);
	if (c->nwaiters >= c->conf.max_long_polls) {
		metrics_add("vigil_long_polls_refused_total", NULL, 1);
		http_set_header(r, "Retry-After", "10");
		http_reply_error(
		    r, 503, "busy",
		    "the center holds %d polls already; retry later",
		    c->nwaiters);
		goto out;
	}
	/* A second poll of the same agent replaces the first. */
	slot = waiter_slot(c, id);
	if (*slot != NULL) {
		reply_tasks((*slot)->req, json_array());
		waiter_drop(slot);
		slot = waiter_slot(c, id);
	}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (d = http_req_defer(r)) == NULL) {
		free(w);
		http_reply_error(r, 503, "busy", "out of memory; retry");
		goto out;
	}
	struct timeval tv = {(time_t)wait, 0};

	w->c = c;
	w->req = d;
	snprintf(w->agent, sizeof(w->agent), "%s", id);
	w->timer = evtimer_new(c->base, waiter_timeout, w);
	evtimer_add(w->timer, &tv);
	*slot = w;
	c->nwaiters++;
	metrics_set("vigil_long_polls", NULL, c->nwaiters);
out:
	free(id);
}

/* POST /v1/tasks/<id>: the agent reports running (progress), done or
 * failed. The reply tells it whether the task was cancelled. */
static void
gw_task_status(struct http_req *r)
{
	struct center *c = C(r);
	struct task_status_in st;
	struct store_rows *q;
	struct buf err;
	const uint8_t *body;
	char *id, *state = NULL;
	long long now = (long long)time(NULL);
	size_t len;
	int n = -1;

	buf_init(&err, 1024);
	memset(&st, 0, sizeof(st));
	if ((id = peer_agent_id(r)) == NULL)
		goto out;
	body = http_req_body(r, &len);
	if (task_status_parse(body, len, &st, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
		goto out;
	}
	q = store_query(c->store,
	                "SELECT state FROM task_runs WHERE task_id = ? AND "
	                "agent_id = ?",
	                "ss", r->rest, id);
	if (q != NULL && store_next(q) == 1 && store_text(q, 0) != NULL)
		state = strdup(store_text(q, 0));
	store_done(q);
	if (state == NULL) {
		http_reply_error(r, 404, "not_found",
		                 "no task %.64s for this agent", r->rest);
		goto out;
	}
	if (strcmp(state, "cancelled") == 0) {
		http_reply_json(r, 200, json_pack("{s:b}", "cancel", 1));
		goto out;
	}
	if (strcmp(state, "dispatched") != 0 && strcmp(state, "running") != 0) {
		http_reply_error(r, 409, "finished",
		                 "task %.64s is already %s for this agent",
		                 r->rest, state);
		goto out;
	}
	if (st.state == TASK_IN_RUNNING)
		n = store_exec(
		    c->store,
		    "UPDATE task_runs SET state = 'running', "
		    "progress = COALESCE(?, progress), updated_at = ?, "
		    "started_at = COALESCE(started_at, ?) "
		    "WHERE task_id = ? AND agent_id = ?",
		    "siiss", st.progress, now, now, r->rest, id);
	else
		n = store_exec(
		    c->store,
		    "UPDATE task_runs SET state = ?, progress = "
		    "COALESCE(?, progress), result = ?, reason = ?, "
		    "updated_at = ?, finished_at = ? "
		    "WHERE task_id = ? AND agent_id = ?",
		    "ssssiiss", st.state == TASK_IN_DONE ? "done" : "failed",
		    st.progress, st.result, st.reason[0] ? st.reason : NULL,
		    now, now, r->rest, id);
	if (n != 1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	if (st.state != TASK_IN_RUNNING)
		metrics_add("vigil_task_runs_finished_total",
		            st.state == TASK_IN_DONE ? "state=\"done\""
		                                     : "state=\"failed\"",
		            1);
	http_reply_json(r, 200, json_pack("{s:b}", "cancel", 0));
out:
	task_status_free(&st);
	free(state);
	free(id);
	buf_free(&err);
}

/* --- creating tasks -------------------------------------------------- */

/* Kind and parameters of a (template) spec. */
static int
spec_check_kind(json_t *spec, struct buf *err)
{
	const struct task_kind *k;
	json_t *v = json_object_get(spec, "kind"), *params;
	int rc;

	if (!json_is_string(v) ||
	    (k = kind_find(json_string_value(v))) == NULL) {
		buf_puts(err, "kind: one of scan, collect, inventory, "
		              "kill-process, quarantine, restore");
		return -1;
	}
	params = json_object_get(spec, "params");
	params = params ? json_incref(params) : json_object();
	rc = params_check(k, params, err);
	json_decref(params);
	return rc;
}

/* Kind, parameters and target of a spec, without creating anything (a
 * schedule is checked when it is made, not at its first run). */
static int
spec_check(json_t *spec, struct buf *err)
{
	if (spec_check_kind(spec, err) == -1 ||
	    target_check(json_object_get(spec, "target"), err) == -1)
		return -1;
	return 0;
}

static int
duration_of(json_t *v, long long dflt, long long max, long long *out,
            const char *field, struct buf *err)
{
	*out = dflt;
	if (v == NULL)
		return 0;
	if (json_is_integer(v))
		*out = json_integer_value(v);
	else if (!json_is_string(v) ||
	         str_to_duration(json_string_value(v), out) == -1) {
		buf_printf(err, "%s: seconds or a duration such as 30m, 2h, 1d",
		           field);
		return -1;
	}
	if (*out < 1 || *out > max) {
		buf_printf(err, "%s: must be between 1 s and %lld s", field,
		           max);
		return -1;
	}
	return 0;
}

/*
 * Creates a task from spec {"kind", "params", "target", "timeout",
 * "expires"} (already merged with its template) and its runs. Returns the
 * number of agents targeted, or -1 with a message (the caller's 400).
 */
int
tasks_create(struct center *c, json_t *spec, const char *by,
             const char *schedule_id, char out_id[37], struct buf *err)
{
	const struct task_kind *k;
	json_t *params, *target, *v;
	const char *key;
	struct store_rows *q;
	long long timeout, expires, now = (long long)time(NULL);
	char *ps = NULL, *ts = NULL, **agents = NULL;
	size_t nagents = 0, cap = 0, i;
	int rc = -1;

	json_object_foreach(spec, key, v)
	{
		if (strcmp(key, "kind") != 0 && strcmp(key, "params") != 0 &&
		    strcmp(key, "target") != 0 && strcmp(key, "timeout") != 0 &&
		    strcmp(key, "expires") != 0) {
			buf_printf(err,
			           "%.64s: unknown field (known: kind, params, "
			           "target, timeout, expires, template)",
			           key);
			return -1;
		}
	}
	v = json_object_get(spec, "kind");
	if (!json_is_string(v) ||
	    (k = kind_find(json_string_value(v))) == NULL) {
		buf_puts(err, "kind: one of scan, collect, inventory, "
		              "kill-process, quarantine, restore");
		return -1;
	}
	params = json_object_get(spec, "params");
	params = params ? json_deep_copy(params) : json_object();
	target = json_object_get(spec, "target");
	if (params_check(k, params, err) == -1 ||
	    target_check(target, err) == -1 ||
	    duration_of(json_object_get(spec, "timeout"), 3600,
	                TASK_MAX_TIMEOUT, &timeout, "timeout", err) == -1 ||
	    duration_of(json_object_get(spec, "expires"), 86400, 30 * 86400LL,
	                &expires, "expires", err) == -1)
		goto out;
	if (strcmp(k->name, "scan") == 0 &&
	    json_array_size(json_object_get(params, "paths")) == 0 &&
	    !json_is_true(json_object_get(params, "memory"))) {
		buf_printf(err, "params.paths: required unless params.memory "
		                "is true");
		goto out;
	}
	if (strcmp(k->name, "scan") == 0 && resolve_rules(c, params, err) == -1)
		goto out;
	q = store_query(c->store,
	                "SELECT id, labels FROM agents WHERE status = 'active'",
	                NULL);
	while (q != NULL && store_next(q) == 1) {
		if (!target_has(target, store_text(q, 0), store_text(q, 1)))
			continue;
		if (nagents == cap) {
			char **n2;

			cap = cap ? cap * 2 : 64;
			if ((n2 = realloc(agents, cap * sizeof(*n2))) == NULL)
				fatalx("%s: out of memory", __func__);
			agents = n2;
		}
		agents[nagents++] = strdup(store_text(q, 0));
	}
	store_done(q);
	if (nagents == 0) {
		buf_puts(err, "target: matches no enrolled, active agent");
		goto out;
	}
	random_uuid(out_id);
	ps = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	ts = json_dumps(target, JSON_COMPACT | JSON_SORT_KEYS);
	if (store_begin(c->store) == -1) {
		buf_puts(err, "store busy; retry");
		goto out;
	}
	if (store_exec(c->store,
	               "INSERT INTO tasks (id, kind, params, target, "
	               "created_at, created_by, timeout, expires_at, "
	               "schedule_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               "ssssisiis", out_id, k->name, ps, ts, now, by, timeout,
	               now + expires, schedule_id) != 1)
		goto rollback;
	for (i = 0; i < nagents; i++)
		if (store_exec(
		        c->store,
		        "INSERT INTO task_runs (task_id, agent_id, state, "
		        "updated_at) VALUES (?, ?, 'queued', ?)",
		        "ssi", out_id, agents[i], now) != 1)
			goto rollback;
	if (store_commit(c->store) == -1)
		goto rollback;
	metrics_add("vigil_tasks_created_total", NULL, 1);
	log_info("tasks: %s task %s for %zu agents by %s", k->name, out_id,
	         nagents, by);
	/* Waking marks runs dispatched: one transaction for all of them
	 * (one fsync instead of one per agent). Should it fail, the runs
	 * stay queued and go out with the next poll. */
	if (c->nwaiters > 0) {
		int tx = store_begin(c->store) == 0;

		for (i = 0; i < nagents; i++)
			tasks_wake(c, agents[i]);
		if (tx && store_commit(c->store) == -1)
			store_rollback(c->store);
	}
	rc = (int)nagents;
	goto out;
rollback:
	store_rollback(c->store);
	buf_puts(err, "store busy; retry");
out:
	for (i = 0; i < nagents; i++)
		free(agents[i]);
	free(agents);
	free(ps);
	free(ts);
	json_decref(params);
	return rc;
}

/* Merges a named template under spec (spec's fields win). */
static json_t *
with_template(struct center *c, json_t *body, struct buf *err)
{
	json_t *t = json_object_get(body, "template"), *spec, *base = NULL;
	struct store_rows *q;

	spec = json_deep_copy(body);
	json_object_del(spec, "template");
	if (t == NULL)
		return spec;
	if (!json_is_string(t)) {
		buf_puts(err, "template: must be a template name");
		json_decref(spec);
		return NULL;
	}
	q = store_query(c->store, "SELECT spec FROM templates WHERE name = ?",
	                "s", json_string_value(t));
	if (q != NULL && store_next(q) == 1)
		base = json_loads(store_text(q, 0), 0, NULL);
	store_done(q);
	if (base == NULL) {
		buf_printf(err, "template: no template named %.64s",
		           json_string_value(t));
		json_decref(spec);
		return NULL;
	}
	json_object_update(base, spec);
	json_decref(spec);
	return base;
}

/* --- admin routes ------------------------------------------------------ */

static const struct schema_field task_schema[] = {
    {"kind", SCH_STRING, 0},
    {"params", SCH_OBJECT, 0},
    {"target", SCH_OBJECT, 0},
    {"timeout", SCH_DURATION, 0},
    {"expires", SCH_DURATION, 0},
    {"template", SCH_STRING, 0},
    {NULL, 0, 0},
};

static void
adm_task_create(struct http_req *r)
{
	struct center *c = C(r);
	struct buf err;
	json_t *body, *spec;
	char id[37];
	int n;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, task_schema)) == NULL)
		return;
	buf_init(&err, 2048);
	if ((spec = with_template(c, body, &err)) == NULL ||
	    (n = tasks_create(c, spec, r->peer_addr, NULL, id, &err)) == -1)
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
	else
		http_reply_json(r, 201,
		                json_pack("{s:s, s:i}", "id", id, "agents", n));
	json_decref(spec);
	json_decref(body);
	buf_free(&err);
}

static json_t *
task_counts(struct center *c, const char *id)
{
	struct store_rows *q;
	json_t *o = json_object();

	q = store_query(
	    c->store,
	    "SELECT state, COUNT(*) FROM task_runs WHERE task_id = ? "
	    "GROUP BY state",
	    "s", id);
	while (q != NULL && store_next(q) == 1)
		json_object_set_new(o, store_text(q, 0),
		                    json_integer(store_int(q, 1)));
	store_done(q);
	return o;
}

static json_t *
task_row(struct store_rows *q)
{
	json_t *params = json_loads(store_text(q, 2), 0, NULL);
	json_t *target = json_loads(store_text(q, 3), 0, NULL);

	return json_pack(
	    "{s:s, s:s, s:o, s:o, s:I, s:s?, s:I, s:I, s:o, s:s?}", "id",
	    store_text(q, 0), "kind", store_text(q, 1), "params",
	    params ? params : json_object(), "target",
	    target ? target : json_object(), "created_at",
	    (json_int_t)store_int(q, 4), "created_by", store_text(q, 5),
	    "timeout", (json_int_t)store_int(q, 6), "expires_at",
	    (json_int_t)store_int(q, 7), "cancelled_at",
	    store_isnull(q, 8) ? json_null() : json_integer(store_int(q, 8)),
	    "schedule_id", store_text(q, 9));
}

#define TASK_COLUMNS                                                           \
	"id, kind, params, target, created_at, created_by, timeout, "          \
	"expires_at, cancelled_at, schedule_id"

static const struct query_field task_fields[] = {
    {"id", "id", QF_TEXT, QF_SORT | QF_EQ},
    {"kind", "kind", QF_TEXT, QF_SORT | QF_EQ},
    {"created_by", "created_by", QF_TEXT, QF_EQ},
    {"schedule_id", "schedule_id", QF_TEXT, QF_EQ},
    {"created_at", "created_at", QF_INT, QF_SORT | QF_RANGE},
    {"agent", "id IN (SELECT task_id FROM task_runs WHERE agent_id = ?)",
     QF_TEXT, QF_EXPR},
    {"state", "id IN (SELECT task_id FROM task_runs WHERE state = ?)", QF_TEXT,
     QF_EXPR},
    {NULL, NULL, 0, 0},
};

static const struct query_spec task_spec = {
    .table = "tasks",
    .columns = TASK_COLUMNS,
    .fields = task_fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "-created_at",
    .search = "kind || ' ' || params || ' ' || target",
};

static json_t *
task_item(struct store_rows *q, void *arg)
{
	json_t *t = task_row(q);

	json_object_set_new(
	    t, "runs",
	    task_counts(arg, json_string_value(json_object_get(t, "id"))));
	return t;
}

static void
adm_tasks(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &task_spec, task_item, C(r));
}

static void
task_show(struct http_req *r, const char *id)
{
	struct center *c = C(r);
	struct store_rows *q;
	json_t *t = NULL, *runs;

	q = store_query(c->store,
	                "SELECT " TASK_COLUMNS " FROM tasks "
	                "WHERE id = ?",
	                "s", id);
	if (q != NULL && store_next(q) == 1)
		t = task_row(q);
	store_done(q);
	if (t == NULL) {
		http_reply_error(r, 404, "not_found", "no task %.64s", id);
		return;
	}
	runs = json_array();
	q = store_query(c->store,
	                "SELECT r.agent_id, a.hostname, r.state, r.progress, "
	                "r.result, r.reason, r.updated_at, r.dispatched_at, "
	                "r.started_at, r.finished_at FROM task_runs r "
	                "LEFT JOIN agents a ON a.id = r.agent_id "
	                "WHERE r.task_id = ? ORDER BY a.hostname, r.agent_id",
	                "s", id);
	while (q != NULL && store_next(q) == 1) {
		json_t *pr = store_text(q, 3)
		                 ? json_loads(store_text(q, 3), 0, NULL)
		                 : NULL;
		json_t *rs = store_text(q, 4)
		                 ? json_loads(store_text(q, 4), 0, NULL)
		                 : NULL;

		json_array_append_new(
		    runs,
		    json_pack(
		        "{s:s, s:s?, s:s, s:o, s:o, s:s?, s:I, s:o, s:o, "
		        "s:o}",
		        "agent_id", store_text(q, 0), "hostname",
		        store_text(q, 1), "state", store_text(q, 2), "progress",
		        pr ? pr : json_null(), "result", rs ? rs : json_null(),
		        "reason", store_text(q, 5), "updated_at",
		        (json_int_t)store_int(q, 6), "dispatched_at",
		        store_isnull(q, 7) ? json_null()
		                           : json_integer(store_int(q, 7)),
		        "started_at",
		        store_isnull(q, 8) ? json_null()
		                           : json_integer(store_int(q, 8)),
		        "finished_at",
		        store_isnull(q, 9) ? json_null()
		                           : json_integer(store_int(q, 9))));
	}
	store_done(q);
	json_object_set_new(t, "runs", runs);
	json_object_set_new(t, "counts", task_counts(c, id));
	http_reply_json(r, 200, t);
}

static void
task_cancel(struct http_req *r, const char *id)
{
	struct center *c = C(r);
	long long now = (long long)time(NULL);
	int n;

	n = store_exec(
	    c->store,
	    "UPDATE task_runs SET state = 'cancelled', updated_at = ?, "
	    "finished_at = ?, reason = 'cancelled by an operator' "
	    "WHERE task_id = ? AND state IN ('queued', "
	    "'dispatched', 'running')",
	    "iis", now, now, id);
	if (n < 0) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	if (n == 0) {
		http_reply_error(r, 409, "nothing_to_cancel",
		                 "task %.64s has no queued or running runs "
		                 "(unknown, finished or cancelled already)",
		                 id);
		return;
	}
	store_exec(c->store,
	           "UPDATE tasks SET cancelled_at = ? WHERE id = ? AND "
	           "cancelled_at IS NULL",
	           "is", now, id);
	log_info("tasks: task %s cancelled by %s (%d runs)", id, r->peer_addr,
	         n);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:i}", "id", id, "runs_cancelled", n));
}

/* /api/v1/tasks/<id> and /api/v1/tasks/<id>/cancel */
static void
adm_task(struct http_req *r)
{
	char id[64];
	const char *action;

	if (admin_authorize(r) == -1)
		return;
	if ((action = http_req_rest_id(r, id, sizeof(id))) == NULL) {
		http_reply_error(r, 404, "not_found", "no such task");
		return;
	}
	if (*action == '\0' && strcmp(r->method, "GET") == 0)
		task_show(r, id);
	else if (strcmp(action, "/cancel") == 0 &&
	         strcmp(r->method, "POST") == 0) {
		if (schema_no_body(r) == 0)
			task_cancel(r, id);
	} else
		http_reply_error(r, 404, "not_found", "no such resource");
}

static void
adm_kinds(struct http_req *r)
{
	const struct task_kind *k;
	const struct task_param *p;
	static const char *const tn[] = {"string", "integer", "boolean",
	                                 "list of strings", "list of integers"};
	json_t *a = json_array(), *ps;

	if (admin_authorize(r) == -1) {
		json_decref(a);
		return;
	}
	for (k = task_kinds; k->name != NULL; k++) {
		ps = json_array();
		for (p = k->params; p->name != NULL; p++)
			json_array_append_new(
			    ps, json_pack("{s:s, s:s, s:b}", "name", p->name,
			                  "type", tn[p->type], "required",
			                  p->required));
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name",
		                                   k->name, "help", k->help,
		                                   "params", ps));
	}
	http_reply_json(r, 200, json_pack("{s:o}", "kinds", a));
}

/* --- templates and schedules ------------------------------------------- */

static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

/* A template is a partial task spec: kind and params, optionally
 * timeout and expires; the target comes with each task. */
static const struct schema_field template_schema[] = {
    {"name", SCH_STRING, 1},
    {"spec", SCH_OBJECT, 1},
    {NULL, 0, 0},
};

static void
adm_template_put(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body, *spec;
	const char *name;
	struct buf err;
	char *s = NULL;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, template_schema)) == NULL)
		return;
	buf_init(&err, 1024);
	name = json_string_value(json_object_get(body, "name"));
	spec = json_object_get(body, "spec");
	if (!name_ok(name)) {
		http_reply_error_field(r, 400, "bad_request", "name",
		                       "name: 1 to 64 letters, digits, '-', "
		                       "'_', '.'");
		goto out;
	}
	if (spec_check_kind(spec, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "spec: %s",
		                 buf_cstr(&err));
		goto out;
	}
	s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	audit_before_row(r, "SELECT * FROM templates WHERE name = ?", name);
	store_exec(c->store, "DELETE FROM templates WHERE name = ?", "s", name);
	if (store_exec(c->store,
	               "INSERT INTO templates (name, spec, created_at) "
	               "VALUES (?, ?, ?)",
	               "ssi", name, s, (long long)time(NULL)) != 1) {
		http_reply_error(r, 500, "store", "cannot store the template");
		goto out;
	}
	http_reply_json(r, 201, json_pack("{s:s}", "name", name));
out:
	free(s);
	json_decref(body);
	buf_free(&err);
}

static const struct query_field template_fields[] = {
    {"name", "name", QF_TEXT, QF_EQ | QF_SORT},
    {"created_at", "created_at", QF_INT, QF_SORT | QF_RANGE},
    {NULL, NULL, 0, 0},
};

static const struct query_spec template_spec = {
    .table = "templates",
    .columns = "name, spec",
    .fields = template_fields,
    .key = "name",
    .key_type = QF_TEXT,
    .default_sort = "name",
};

static json_t *
template_item(struct store_rows *q, void *arg)
{
	json_t *spec = json_loads(store_text(q, 1), 0, NULL);

	(void)arg;
	return json_pack("{s:s, s:o}", "name", store_text(q, 0), "spec",
	                 spec ? spec : json_object());
}

static void
adm_templates(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &template_spec, template_item, NULL);
}

static const struct schema_field schedule_schema[] = {
    {"name", SCH_STRING, 1},
    {"cron", SCH_STRING, 1},
    {"task", SCH_OBJECT, 1},
    {NULL, 0, 0},
};

static void
adm_schedule_create(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body, *task, *spec = NULL;
	const char *name, *cron;
	struct cron cr;
	struct buf err;
	char id[37], *s = NULL;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, schedule_schema)) == NULL)
		return;
	buf_init(&err, 1024);
	name = json_string_value(json_object_get(body, "name"));
	cron = json_string_value(json_object_get(body, "cron"));
	task = json_object_get(body, "task");
	if (!name_ok(name)) {
		http_reply_error_field(r, 400, "bad_request", "name",
		                       "name: 1 to 64 letters, digits, '-', "
		                       "'_', '.'");
		goto out;
	}
	if (cron_parse(cron, &cr, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "cron: %s",
		                 buf_cstr(&err));
		goto out;
	}
	if ((spec = with_template(c, task, &err)) == NULL ||
	    spec_check(spec, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "task: %s",
		                 buf_cstr(&err));
		goto out;
	}
	s = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
	random_uuid(id);
	if (store_exec(c->store,
	               "INSERT INTO schedules (id, name, cron, spec, enabled, "
	               "created_at) VALUES (?, ?, ?, ?, 1, ?)",
	               "ssssi", id, name, cron, s,
	               (long long)time(NULL)) != 1) {
		http_reply_error(r, 409, "exists",
		                 "a schedule named %s exists already", name);
		goto out;
	}
	http_reply_json(r, 201,
	                json_pack("{s:s, s:s}", "id", id, "name", name));
out:
	free(s);
	json_decref(spec);
	json_decref(body);
	buf_free(&err);
}

static const struct query_field schedule_fields[] = {
    {"name", "name", QF_TEXT, QF_EQ | QF_SORT},
    {"id", "id", QF_TEXT, QF_EQ},
    {"created_at", "created_at", QF_INT, QF_SORT | QF_RANGE},
    {NULL, NULL, 0, 0},
};

static const struct query_spec schedule_spec = {
    .table = "schedules",
    .columns = "id, name, cron, spec, enabled, last_run",
    .fields = schedule_fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "name",
};

static json_t *
schedule_item(struct store_rows *q, void *arg)
{
	json_t *spec = json_loads(store_text(q, 3), 0, NULL);

	(void)arg;
	return json_pack("{s:s, s:s, s:s, s:o, s:b, s:o}", "id",
	                 store_text(q, 0), "name", store_text(q, 1), "cron",
	                 store_text(q, 2), "task", spec ? spec : json_object(),
	                 "enabled", (int)store_int(q, 4), "last_run",
	                 store_isnull(q, 5) ? json_null()
	                                    : json_integer(store_int(q, 5)));
}

static void
adm_schedules(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &schedule_spec, schedule_item, NULL);
}

static void
adm_schedule_delete(struct http_req *r)
{
	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	audit_before_row(r, "SELECT * FROM schedules WHERE name = ?", r->rest);
	if (store_exec(C(r)->store, "DELETE FROM schedules WHERE name = ?", "s",
	               r->rest) != 1) {
		http_reply_error(r, 404, "not_found", "no schedule %.64s",
		                 r->rest);
		return;
	}
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", r->rest, "deleted", 1));
}

/* --- housekeeping ----------------------------------------------------------
 */

/* Runs due schedules once per minute (UTC minute boundaries). */
static void
run_schedules(struct center *c, long long now)
{
	struct store_rows *q;
	long long minute = now - now % 60;
	json_t *due = json_array(), *e;
	struct buf err;
	size_t i;

	q = store_query(c->store,
	                "SELECT id, name, cron, spec, last_run FROM schedules "
	                "WHERE enabled = 1",
	                NULL);
	while (q != NULL && store_next(q) == 1) {
		struct cron cr;

		buf_init(&err, 512);
		if (cron_parse(store_text(q, 2), &cr, &err) == 0 &&
		    cron_match(&cr, minute) &&
		    (store_isnull(q, 4) || store_int(q, 4) < minute))
			json_array_append_new(
			    due,
			    json_pack("{s:s, s:s, s:s}", "id", store_text(q, 0),
			              "name", store_text(q, 1), "spec",
			              store_text(q, 3)));
		buf_free(&err);
	}
	store_done(q);
	json_array_foreach(due, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		json_t *spec = json_loads(
		    json_string_value(json_object_get(e, "spec")), 0, NULL);
		json_t *full;
		char tid[37];

		store_exec(c->store,
		           "UPDATE schedules SET last_run = ? WHERE id = ?",
		           "is", minute, id);
		buf_init(&err, 1024);
		full = spec ? with_template(c, spec, &err) : NULL;
		if (full == NULL ||
		    tasks_create(c, full, "schedule", id, tid, &err) == -1)
			log_warnx("tasks: schedule %s: %s",
			          json_string_value(json_object_get(e, "name")),
			          buf_cstr(&err));
		json_decref(full);
		json_decref(spec);
		buf_free(&err);
	}
	json_decref(due);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	long long now = (long long)time(NULL);
	int n;

	(void)fd;
	(void)what;
	/* Never picked up in time. */
	n = store_exec(
	    c->store,
	    "UPDATE task_runs SET state = 'expired', updated_at = ?, "
	    "reason = 'not picked up before the task expired' "
	    "WHERE state = 'queued' AND task_id IN (SELECT id FROM "
	    "tasks WHERE expires_at <= ?)",
	    "ii", now, now);
	if (n > 0)
		metrics_add("vigil_task_runs_finished_total",
		            "state=\"expired\"", n);
	/* Picked up but not finished within the timeout. */
	n = store_exec(c->store,
	               "UPDATE task_runs SET state = 'failed', updated_at = ?, "
	               "finished_at = ?, reason = 'timed out' WHERE state IN "
	               "('dispatched', 'running') AND dispatched_at + (SELECT "
	               "timeout FROM tasks WHERE id = task_id) <= ?",
	               "iii", now, now, now);
	if (n > 0)
		metrics_add("vigil_task_runs_finished_total",
		            "state=\"timeout\"", n);
	if (now / 60 != c->last_sched_minute) {
		c->last_sched_minute = now / 60;
		run_schedules(c, now);
	}
}

int
tasks_init(struct center *c)
{
	struct timeval tv = {1, 0};

	metrics_declare("vigil_long_polls", METRIC_GAUGE,
	                "task polls held open");
	metrics_declare("vigil_long_polls_refused_total", METRIC_COUNTER,
	                "task polls answered 503 (over max_long_polls)");
	metrics_declare("vigil_tasks_created_total", METRIC_COUNTER,
	                "tasks created");
	metrics_declare("vigil_tasks_dispatched_total", METRIC_COUNTER,
	                "task runs handed to agents");
	metrics_declare("vigil_task_runs_finished_total", METRIC_COUNTER,
	                "task runs finished by state");
	c->last_sched_minute = (long long)time(NULL) / 60;
	c->ev_tick = event_new(c->base, -1, EV_PERSIST, tick, c);
	return c->ev_tick ? event_add(c->ev_tick, &tv) : -1;
}

const struct http_route tasks_gateway_routes[] = {
    {"GET", "/v1/tasks", gw_tasks_poll, HTTP_ROUTE_CERT, "tasks_poll", 1024},
    {"POST", "/v1/tasks/", gw_task_status, HTTP_ROUTE_CERT | HTTP_ROUTE_PREFIX,
     "task_status", 1 << 20},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

const struct http_route tasks_admin_routes[] = {
    {"POST", "/api/v1/tasks", adm_task_create, 0, "tasks", 0, ROLE_OPERATOR},
    {"GET", "/api/v1/tasks", adm_tasks, 0, "tasks", 0, ROLE_READONLY},
    {"GET", "/api/v1/tasks/", adm_task, HTTP_ROUTE_PREFIX, "task", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/tasks/", adm_task, HTTP_ROUTE_PREFIX, "task", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/task-kinds", adm_kinds, 0, "task_kinds", 0, ROLE_READONLY},
    {"GET", "/api/v1/templates", adm_templates, 0, "templates", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/templates", adm_template_put, 0, "templates", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/schedules", adm_schedules, 0, "schedules", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/schedules", adm_schedule_create, 0, "schedules", 0,
     ROLE_OPERATOR},
    {"DELETE", "/api/v1/schedules/", adm_schedule_delete, HTTP_ROUTE_PREFIX,
     "schedule", 0, ROLE_OPERATOR},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
