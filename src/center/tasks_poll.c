/*
 * tasks_poll.c: the agents' side of tasks (gateway routes): the long poll
 * that hands runs out, and the status reports agents send back.
 *
 * GET /v1/tasks?wait=N answers at once when runs are queued for the agent,
 * else the request is held (http_req_defer) until a task for that agent is
 * created (tasks_hand_out, a slice of the task's agents per turn of the
 * loop: tasks.c) or the wait ends. Held polls (struct center's
 * waiters) are counted; past [gateway] max_long_polls the center answers
 * 503 with Retry-After, so nothing is dropped, only postponed.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "query.h"
#include "schema.h"
#include "events.h"
#include "metrics.h"
#include "tasks.h"
#include "tls.h"

#define C(r)           ((struct center *)(r)->arg)
#define WAITER_BUCKETS 4096 /* to start with; doubles with the polls held */
#define DISPATCH_MAX   16   /* runs handed out per poll */
/* A run handed out but never reported running (the reply to the poll was
 * lost with its connection) goes out again after this long; agents drop
 * task ids they have seen already. */
#define REDISPATCH_SECS 30

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
	return h;
}

static struct waiter **
waiter_slot(struct center *c, const char *id)
{
	struct waiter **w;

	if (c->waiters == NULL) {
		if ((c->waiters =
		         calloc(WAITER_BUCKETS, sizeof(*c->waiters))) == NULL)
			fatalx("%s: out of memory", __func__);
		c->waiter_buckets = WAITER_BUCKETS;
	}
	for (w = &c->waiters[waiter_hash(id) & (c->waiter_buckets - 1)];
	     *w != NULL; w = &(*w)->next)
		if (strcmp((*w)->agent, id) == 0)
			return w;
	return w;
}

/* Before a poll is held: at most one poll a bucket on average, so that
 * finding an agent's poll stays a compare or two (with a fixed 4,096 and
 * 100,000 polls held, the chains' strcmp took 7 % of the core). Pointers
 * from waiter_slot do not survive it. */
static void
waiters_grow(struct center *c)
{
	struct waiter **tab, *w, *next;
	size_t n, i, b;

	if (c->waiters == NULL || (size_t)c->nwaiters < c->waiter_buckets)
		return;
	n = c->waiter_buckets * 2;
	if ((tab = calloc(n, sizeof(*tab))) == NULL)
		return; /* longer chains, still right */
	for (i = 0; i < c->waiter_buckets; i++)
		for (w = c->waiters[i]; w != NULL; w = next) {
			next = w->next;
			b = waiter_hash(w->agent) & (n - 1);
			w->next = tab[b];
			tab[b] = w;
		}
	free(c->waiters);
	c->waiters = tab;
	c->waiter_buckets = n;
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

/* An agent's runs to hand out: the state is in the index's search, so
 * that its runs of the past (done, failed, expired: months of them) are
 * not read on every poll. */
#define TAKE_RUNS_SQL                                                          \
	"SELECT t.id, t.kind, t.params, t.timeout "                            \
	"FROM task_runs r JOIN tasks t ON t.id = r.task_id "                   \
	"WHERE r.agent_id = ? AND r.state IN ('queued', 'dispatched') AND "    \
	"(r.state = 'queued' OR r.dispatched_at <= ?) "                        \
	"ORDER BY t.created_at LIMIT ?"

/* The runs queued for an agent, marked dispatched, as the poll reply. */
static json_t *
take_runs(struct center *c, const char *agent)
{
	struct store_rows *q;
	json_t *a = json_array(), *t;
	long long now = (long long)time(NULL);
	size_t i;

	q = store_query(c->store, TAKE_RUNS_SQL, S_TEXT(agent),
	                S_INT(now - REDISPATCH_SECS), S_INT(DISPATCH_MAX));
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
		    S_INT(now), S_INT(now),
		    S_TEXT(json_string_value(json_object_get(t, "id"))),
		    S_TEXT(agent));
		stream_emit_id(c, "task",
		               json_string_value(json_object_get(t, "id")));
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

int
tasks_holds(struct center *c, const char *agent)
{
	return c->nwaiters > 0 && *waiter_slot(c, agent) != NULL;
}

int
tasks_hand_out(struct center *c, const char *agent, const char *task,
               const char *body, size_t len, long long now)
{
	struct waiter **slot;

	if (c->nwaiters == 0)
		return 0;
	slot = waiter_slot(c, agent);
	if (*slot == NULL)
		return 0;
	/* Not queued (any more): cancelled, or taken with a newer poll,
	 * which is held on. */
	if (store_exec(c->store,
	               "UPDATE task_runs SET state = 'dispatched', "
	               "dispatched_at = ?, updated_at = ? WHERE task_id = ? "
	               "AND agent_id = ? AND state = 'queued'",
	               S_INT(now), S_INT(now), S_TEXT(task),
	               S_TEXT(agent)) != 1)
		return 0;
	http_reply_text((*slot)->req, 200, "application/json", body, len);
	waiter_drop(slot);
	return 1;
}

/* A poll while the center stops: poll again once it is back. */
static void
reply_shutting_down(struct http_req *r)
{
	http_set_header(r, "Retry-After", "5");
	http_reply_error(r, 503, "shutting_down",
	                 "the center is restarting; poll again");
}

void
tasks_shutdown(struct center *c)
{
	size_t i;

	tasks_status_flush(c); /* reports read: committed and answered */
	for (i = 0; c->waiters != NULL && i < c->waiter_buckets; i++) {
		while (c->waiters[i] != NULL) {
			reply_shutting_down(c->waiters[i]->req);
			waiter_drop(&c->waiters[i]);
		}
	}
	free(c->waiters);
	c->waiters = NULL;
	tasks_wake_drop(c);
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
	/* Not held past tasks_shutdown: the stop would wait for it. */
	if (c->stopping) {
		reply_shutting_down(r);
		goto out;
	}
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
	waiters_grow(c);
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

/* --- status reports: one commit per turn of the loop --------------------
 *
 * POST /v1/tasks/<id>: the agent reports running (progress), done or
 * failed; the reply tells it whether the task was cancelled. A report is
 * answered only once its change is committed, and with synchronous=FULL a
 * commit is an fsync: one per report held the loop for each (a task for
 * every agent brings a report from each). The reports read in one turn of
 * the loop are therefore deferred and applied together, in one
 * transaction, at the end of that turn: a group commit. Should the commit
 * fail, every report that changed something in it is answered 503 and
 * the agent sends it again; none is acknowledged before it is durable.
 */

/* Reports per transaction, at most: a turn with more leaves the rest to
 * the next (the loop's other work goes on in between). */
#define STATUS_MAX_TXN 2000

struct status_job {
	struct status_job *next;
	struct http_req *req; /* deferred (or the request itself) */
	char *agent, *task;
	struct task_status_in st;
	int code;   /* the answer: 200, 404, 409 or 503 */
	int cancel; /* 200: {"cancel": true} */
	int wrote;  /* 200 after a change: stands or falls with the commit */
	char state[16]; /* 409: what the run is already */
};

/* One report, inside the caller's transaction (or alone). */
static void
status_apply(struct center *c, struct status_job *j, long long now)
{
	struct store_rows *q;
	int found = 0, n;

	q = store_query(c->store,
	                "SELECT state FROM task_runs WHERE task_id = ? AND "
	                "agent_id = ?",
	                S_TEXT(j->task), S_TEXT(j->agent));
	if (q != NULL && store_next(q) == 1 && store_text(q, 0) != NULL) {
		found = 1;
		snprintf(j->state, sizeof(j->state), "%s", store_text(q, 0));
	}
	store_done(q);
	if (!found) {
		j->code = 404;
		return;
	}
	if (strcmp(j->state, "cancelled") == 0) {
		j->code = 200;
		j->cancel = 1;
		return;
	}
	if (strcmp(j->state, "dispatched") != 0 &&
	    strcmp(j->state, "running") != 0) {
		j->code = 409;
		return;
	}
	if (j->st.state == TASK_IN_RUNNING)
		n = store_exec(
		    c->store,
		    "UPDATE task_runs SET state = 'running', "
		    "progress = COALESCE(?, progress), updated_at = ?, "
		    "started_at = COALESCE(started_at, ?) "
		    "WHERE task_id = ? AND agent_id = ?",
		    S_TEXT(j->st.progress), S_INT(now), S_INT(now),
		    S_TEXT(j->task), S_TEXT(j->agent));
	else
		n = store_exec(
		    c->store,
		    "UPDATE task_runs SET state = ?, progress = "
		    "COALESCE(?, progress), result = ?, reason = ?, "
		    "updated_at = ?, finished_at = ? "
		    "WHERE task_id = ? AND agent_id = ?",
		    S_TEXT(j->st.state == TASK_IN_DONE ? "done" : "failed"),
		    S_TEXT(j->st.progress), S_TEXT(j->st.result),
		    S_TEXT(j->st.reason[0] ? j->st.reason : NULL), S_INT(now),
		    S_INT(now), S_TEXT(j->task), S_TEXT(j->agent));
	j->code = n == 1 ? 200 : 503;
	j->wrote = n == 1;
}

/* The answer, once the transaction is over (failed: not committed). */
static void
status_reply(struct center *c, struct status_job *j, int failed)
{
	struct http_req *r = j->req;

	if (j->wrote && failed)
		j->code = 503;
	switch (j->code) {
	case 404:
		http_reply_error(r, 404, "not_found",
		                 "no task %.64s for this agent", j->task);
		break;
	case 409:
		http_reply_error(r, 409, "finished",
		                 "task %.64s is already %s for this agent",
		                 j->task, j->state);
		break;
	case 200:
		if (j->wrote) {
			if (j->st.state != TASK_IN_RUNNING)
				metrics_add("vigil_task_runs_finished_total",
				            j->st.state == TASK_IN_DONE
				                ? "state=\"done\""
				                : "state=\"failed\"",
				            1);
			stream_emit_id(c, "task", j->task);
		}
		http_reply_json(r, 200,
		                json_pack("{s:b}", "cancel", j->cancel));
		break;
	default:
		http_set_header(r, "Retry-After", "2");
		http_reply_error(r, 503, "store_busy", "store busy; retry");
	}
}

static void
status_job_free(struct status_job *j)
{
	task_status_free(&j->st);
	free(j->agent);
	free(j->task);
	free(j);
}

/* Applies the reports of list in one transaction, answers and frees
 * them. */
static void
status_run(struct center *c, struct status_job *list)
{
	struct status_job *j, *next;
	long long now = (long long)time(NULL);
	int tx, failed = 0;

	tx = store_begin(c->store) == 0;
	for (j = list; j != NULL; j = j->next)
		status_apply(c, j, now);
	if (tx && store_commit(c->store) == -1) {
		store_rollback(c->store);
		failed = 1;
	}
	for (j = list; j != NULL; j = next) {
		next = j->next;
		status_reply(c, j, failed);
		status_job_free(j);
	}
}

/* Reports queued while a task is being handed out (tasks.c's wake
 * queue) wait for the hand-out to end, up to this many: the fleet's
 * reports on the task (and the workers' replies to them) must not slow
 * its way to the agents still waiting for it. */
#define STATUS_HOLD_MAX 20000

/* The reports queued are applied at the end of this turn of the loop
 * (next: of the next turn, after its I/O, as from tasks_status_run's own
 * callback, where event_active would run it again in the same turn),
 * unless a hand-out is under way (see STATUS_HOLD_MAX). */
static void
status_kick(struct center *c, int next)
{
	static const struct timeval now = {0, 0};

	if (c->status_head == NULL ||
	    (c->wake_head != NULL && c->nstatus < STATUS_HOLD_MAX))
		return;
	if (next)
		evtimer_add(c->ev_status, &now);
	else
		event_active(c->ev_status, EV_TIMEOUT, 0);
}

void
tasks_status_resume(struct center *c)
{
	if (c->ev_status != NULL)
		status_kick(c, 0);
}

/* The end of a turn of the loop: the reports queued in it. */
static void
tasks_status_run(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct status_job *list = c->status_head, **tail = &list;
	size_t n = 0;

	(void)fd;
	(void)what;
	if (list == NULL)
		return; /* kicked twice */
	while (*tail != NULL && n < STATUS_MAX_TXN) {
		tail = &(*tail)->next;
		n++;
	}
	c->status_head = *tail;
	*tail = NULL;
	c->nstatus -= n;
	if (c->status_head == NULL)
		c->status_tail = &c->status_head;
	else
		status_kick(c, 1);
	status_run(c, list);
}

void
tasks_status_flush(struct center *c)
{
	while (c->status_head != NULL)
		tasks_status_run(-1, 0, c);
}

static void
gw_task_status(struct http_req *r)
{
	struct center *c = C(r);
	struct status_job *j;
	struct http_req *d;
	struct buf err;
	const uint8_t *body;
	size_t len;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		http_reply_error(r, 503, "store_busy", "out of memory; retry");
		return;
	}
	buf_init(&err, 1024);
	if ((j->agent = peer_agent_id(r)) == NULL)
		goto drop;
	body = http_req_body(r, &len);
	if (task_status_parse(body, len, &j->st, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
		goto drop;
	}
	if ((j->task = strdup(r->rest)) == NULL) {
		http_reply_error(r, 503, "store_busy", "out of memory; retry");
		goto drop;
	}
	buf_free(&err);
	if (c->ev_status == NULL) {
		c->status_tail = &c->status_head;
		c->ev_status = event_new(c->base, -1, 0, tasks_status_run, c);
	}
	if (c->ev_status == NULL || (d = http_req_defer(r)) == NULL) {
		j->req = r; /* answered now, alone */
		status_run(c, j);
		return;
	}
	j->req = d;
	*c->status_tail = j;
	c->status_tail = &j->next;
	if (c->nstatus++ == 0 || c->nstatus >= STATUS_HOLD_MAX)
		status_kick(c, 0);
	return;
drop:
	buf_free(&err);
	status_job_free(j);
}

const struct http_route tasks_gateway_routes[] = {
    {"GET", "/v1/tasks", gw_tasks_poll, HTTP_ROUTE_CERT, "tasks_poll", 1024},
    {"POST", "/v1/tasks/", gw_task_status, HTTP_ROUTE_CERT | HTTP_ROUTE_PREFIX,
     "task_status", 1 << 20},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
