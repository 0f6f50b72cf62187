/*
 * tasks.c: tasks operators send to agents and their per-agent runs; the
 * core of the task files (see tasks.h for how they are split).
 *
 * A task has a kind (one row of task_kinds[] below: its parameters, their
 * types and bounds), parameters, a target (one agent, a list, a label
 * selector or all agents) resolved to runs when it is created, a timeout
 * per run and an expiry for runs never picked up. Run states: queued,
 * dispatched, running, done, failed, cancelled, expired. Agents get their
 * runs by a long poll (tasks_poll.c); the tick here expires and times out
 * runs and starts due schedules (tasks_sched.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "clock.h"
#include "query.h"
#include "schema.h"
#include "events.h"
#include "metrics.h"
#include "tasks.h"
#include "tls.h"

#define TASK_MAX_TIMEOUT (7 * 86400LL)

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
    {"reputation", P_BOOL, 0, 0, 0},
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
 * them by content hash; no names = every rule set; none at all is a scan
 * by reputation only.
 */
static int
resolve_rules(struct center *c, json_t *params, struct buf *err)
{
	json_t *names = json_object_get(params, "rules"), *out = json_array();
	struct store_rows *q;
	size_t i;
	json_t *n;

	q = store_query(c->store, "SELECT id, name, kind, source FROM "
	                          "rulesets ORDER BY name");
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
			/* update: the agent takes it only as verified
			 * from its own pinned update root. */
			json_array_append_new(
			    out, json_pack("{s:s, s:s, s:s, s:b}", "id",
			                   store_text(q, 0), "name", name,
			                   "kind", store_text(q, 2), "update",
			                   !store_isnull(q, 3) &&
			                       strcmp(store_text(q, 3),
			                              "update") == 0));
	}
	store_done(q);
	if (names != NULL && json_array_size(out) != json_array_size(names)) {
		json_decref(out);
		buf_puts(err, "params.rules: names a rule set that does not "
		              "exist (see vigilctl rules list)");
		return -1;
	}
	/* No rule set at all: a scan by reputation only (every file's
	 * SHA-256 checked with vigil-inteld), unless that is turned off. */
	if (json_array_size(out) == 0 &&
	    json_is_false(json_object_get(params, "reputation"))) {
		json_decref(out);
		buf_puts(err, "params.rules: no rule sets, and reputation is "
		              "off; add one first with vigilctl rules add");
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

/* --- creating tasks -------------------------------------------------- */

/* Kind and parameters of a (template) spec. */
int
tasks_spec_check_kind(json_t *spec, struct buf *err)
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
int
tasks_spec_check(json_t *spec, struct buf *err)
{
	if (tasks_spec_check_kind(spec, err) == -1 ||
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

struct tasks_wakeup {
	struct center *c;
	char task[37];
	char **agents;
	size_t n;
};

/* The agents of one task still to be woken (c->wake_head). */
struct wake_batch {
	struct wake_batch *next;
	char task[37];
	char **agents; /* strdup'd */
	size_t n, done, given;
	double queued; /* mono_now() */
	double busy;   /* the loop's time spent on it ... */
	double cpu;    /* ... and the CPU's (the rest: waiting for a CPU, for
	                * the store's reads and fsyncs) */
	unsigned int turns;   /* of the loop it took */
	unsigned int in_turn; /* the last (wake_turns) */
};

static unsigned int wake_turns; /* turns of the loop that woke agents */

/* Agents woken per transaction (one fsync for all of them). */
#define WAKE_SLICE 1000
/* Slices are woken for this long at most in a turn of the event loop,
 * then the loop's other work gets a turn: a task for 100,000 agents
 * must not hold the admin API and every agent's heartbeat while all of
 * them are answered, but the hand-out goes first (one slice a turn, the
 * fleet's reports and next polls in between made a task take 37 s to
 * reach 100,000 agents). A variable for the tests. */
#define WAKE_TURN_MS 1000
static double wake_turn_secs = WAKE_TURN_MS / 1000.0;

/*
 * The reply to a poll that hands out task alone, made once for every
 * agent of a slice: {"tasks": [{"id", "kind", "params", "timeout",
 * "deadline"}]}, as take_runs makes it. NULL when the task is gone.
 */
static char *
wake_reply(struct center *c, const char *task, long long now, size_t *len)
{
	struct store_rows *q;
	json_t *t = NULL, *params;
	char *text = NULL;

	q = store_query(c->store,
	                "SELECT kind, params, timeout FROM tasks WHERE id = ?",
	                S_TEXT(task));
	if (q != NULL && store_next(q) == 1) {
		params = json_loads(store_text(q, 1), 0, NULL);
		t = json_pack("{s:[{s:s, s:s, s:o, s:I, s:I}]}", "tasks", "id",
		              task, "kind", store_text(q, 0), "params",
		              params ? params : json_object(), "timeout",
		              (json_int_t)store_int(q, 2), "deadline",
		              (json_int_t)(now + store_int(q, 2)));
	}
	store_done(q);
	if (t != NULL)
		text = json_dumps(t, JSON_COMPACT);
	json_decref(t);
	*len = text != NULL ? strlen(text) : 0;
	return text;
}

static void
wake_batch_free(struct wake_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->agents[i]);
	free(b->agents);
	free(b);
}

/* The next slice in the next turn of the loop, after its I/O: a timer
 * due at once (event_active from the callback would run it again in the
 * same turn, and the whole fleet would be answered before any other
 * request). */
static void
wake_next_turn(struct center *c)
{
	static const struct timeval now = {0, 0};

	evtimer_add(c->ev_wake, &now);
}

/*
 * Wakes the next slice of the oldest batch. Every agent of a batch is woken for
 * the same task: the reply is made once, and each agent's run of it is marked
 * dispatched by its key (no search of the agent's runs, no reply of its own: a
 * task for the whole fleet reaches it faster). An agent with other runs queued
 * gets them with the poll it sends next, at once. One transaction per slice
 * (one fsync instead of one per agent); should it fail, the runs stay queued
 * and go out with the next poll, and agents drop a task they have seen.
 */
static void
wake_slice(struct center *c)
{
	struct wake_batch *b = c->wake_head;
	long long now = (long long)time(NULL);
	size_t i, n, len = 0, given = 0;
	double t0 = mono_now(), c0 = thread_cpu_now();
	char *body;
	int tx;

	if (b->in_turn != wake_turns) {
		b->in_turn = wake_turns;
		b->turns++;
	}
	n = b->n - b->done < WAKE_SLICE ? b->n - b->done : WAKE_SLICE;
	tx = store_begin(c->store) == 0;
	body = c->nwaiters > 0 ? wake_reply(c, b->task, now, &len) : NULL;
	for (i = b->done; body != NULL && i < b->done + n; i++)
		given += (size_t)tasks_hand_out(c, b->agents[i], b->task, body,
		                                len, now);
	if (tx && store_commit(c->store) == -1)
		store_rollback(c->store);
	free(body);
	if (given > 0) {
		metrics_add("vigil_tasks_dispatched_total", NULL,
		            (double)given);
		stream_emit_id(c, "task", b->task);
	}
	b->done += n;
	b->given += given;
	b->busy += mono_now() - t0;
	b->cpu += thread_cpu_now() - c0;
	if (b->done == b->n || c->nwaiters == 0) {
		log_info("tasks: task %s handed to %zu held polls of %zu "
		         "agents in %.2f s (%.2f s of the loop's time in %u "
		         "turns, %.2f s of it on the CPU)",
		         b->task, b->given, b->n, mono_now() - b->queued,
		         b->busy, b->turns, b->cpu);
		if ((c->wake_head = b->next) == NULL)
			c->wake_tail = &c->wake_head;
		wake_batch_free(b);
	}
}

/* A turn's share of the wake queue: slices for up to wake_turn_secs
 * (one at least), then the next turn. */
static void
wake_turn(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	double t0 = mono_now();

	(void)fd;
	(void)what;
	if (c->wake_head == NULL)
		return; /* emptied by a stop */
	wake_turns++;
	do
		wake_slice(c);
	while (c->wake_head != NULL && mono_now() - t0 < wake_turn_secs);
	if (c->wake_head != NULL)
		wake_next_turn(c);
	else
		tasks_status_resume(c);
}

void
tasks_wake_queue(struct center *c, const char *task, char **agents, size_t n)
{
	struct wake_batch *b;
	size_t i;

	/* A task made on this node comes back with its NOTIFY (node.c)
	 * while its hand-out is under way: once is enough. */
	for (b = c->wake_head; b != NULL; b = b->next)
		if (strcmp(b->task, task) == 0)
			break;
	if (b != NULL || c->ev_wake == NULL || c->nwaiters == 0 || n == 0 ||
	    (b = calloc(1, sizeof(*b))) == NULL) {
		for (i = 0; i < n; i++)
			free(agents[i]);
		free(agents);
		return;
	}
	snprintf(b->task, sizeof(b->task), "%s", task);
	b->agents = agents;
	b->n = n;
	b->queued = mono_now();
	if (c->wake_head == NULL) {
		c->wake_tail = &c->wake_head;
		wake_next_turn(c);
	}
	*c->wake_tail = b;
	c->wake_tail = &b->next;
}

/* Agents still to be woken at a stop: their runs stay queued for their
 * next poll, after the restart. */
void
tasks_wake_drop(struct center *c)
{
	struct wake_batch *b;

	while ((b = c->wake_head) != NULL) {
		c->wake_head = b->next;
		wake_batch_free(b);
	}
	c->wake_tail = &c->wake_head;
}

/* Once the task is committed (with the admin request's audit entry),
 * its agents are queued for waking and the request is answered first. */
static void
tasks_wake_committed(void *arg, int committed)
{
	struct tasks_wakeup *w = arg;
	size_t i;

	if (committed) {
		tasks_wake_queue(w->c, w->task, w->agents, w->n);
	} else {
		for (i = 0; i < w->n; i++)
			free(w->agents[i]);
		free(w->agents);
	}
	free(w);
}

struct run_args {
	const char *task;
	char **agents;
	long long now;
};

static void
run_fill(void *arg, size_t i, struct store_arg *v)
{
	const struct run_args *a = arg;

	v[0] = S_TEXT(a->task);
	v[1] = S_TEXT(a->agents[i]);
	v[2] = S_INT(a->now);
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
	struct run_args ra;
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
	/* In the order of their ids: the runs' index on the agent is then
	 * written (here, and by each transaction of the hand-out, a
	 * thousand agents each) in a few neighbouring pages, not in a page
	 * of its own for each agent. */
	q = store_query(c->store, "SELECT id, labels FROM agents WHERE "
	                          "status = 'active' ORDER BY id");
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
	               S_TEXT(out_id), S_TEXT(k->name), S_TEXT(ps), S_TEXT(ts),
	               S_INT(now), S_TEXT(by), S_INT(timeout),
	               S_INT(now + expires), S_TEXT(schedule_id)) != 1)
		goto rollback;
	/* One statement prepared once for every run: a task for the whole
	 * fleet must not hold the admin API for seconds. */
	ra.task = out_id;
	ra.agents = agents;
	ra.now = now;
	if (store_exec_each(c->store,
	                    "INSERT INTO task_runs (task_id, agent_id, state, "
	                    "updated_at) VALUES (?, ?, 'queued', ?)",
	                    3, nagents, run_fill, &ra) != (int)nagents)
		goto rollback;
	/* The other nodes' held polls: told when this commits. */
	node_task_created(c, out_id);
	if (store_commit(c->store) == -1)
		goto rollback;
	metrics_add("vigil_tasks_created_total", NULL, 1);
	stream_emit_id(c, "task", out_id);
	log_info("tasks: %s task %s for %zu agents by %s", k->name, out_id,
	         nagents, by);
	rc = (int)nagents;
	/* Held polls are answered once the task is committed (with the
	 * request's audit entry, when an admin made it): never with a task
	 * that is then rolled back. */
	if (c->nwaiters > 0) {
		struct tasks_wakeup *w;

		if ((w = calloc(1, sizeof(*w))) == NULL)
			fatalx("%s: out of memory", __func__);
		w->c = c;
		snprintf(w->task, sizeof(w->task), "%s", out_id);
		w->agents = agents;
		w->n = nagents;
		agents = NULL;
		nagents = 0;
		store_after_commit(c->store, tasks_wake_committed, w);
	}
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
json_t *
tasks_with_template(struct center *c, json_t *body, struct buf *err)
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
	                S_TEXT(json_string_value(t)));
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

/* --- the kinds as JSON (GET /api/v1/task-kinds) ------------------------ */

void
tasks_adm_kinds(struct http_req *r)
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

/* --- housekeeping ----------------------------------------------------------
 */

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
	    S_INT(now), S_INT(now));
	if (n > 0)
		metrics_add("vigil_task_runs_finished_total",
		            "state=\"expired\"", n);
	/* Picked up but not finished within the timeout. Not while reports
	 * wait for a hand-out (tasks_poll.c): they are applied first, or a
	 * run its agent reported done in time would be timed out and the
	 * report refused. */
	n = c->nstatus > 0
	        ? 0
	        : store_exec(
	              c->store,
	              "UPDATE task_runs SET state = 'failed', "
	              "updated_at = ?, finished_at = ?, reason = 'timed "
	              "out' WHERE state IN ('dispatched', 'running') AND "
	              "dispatched_at + (SELECT timeout FROM tasks WHERE "
	              "id = task_id) <= ?",
	              S_INT(now), S_INT(now), S_INT(now));
	if (n > 0)
		metrics_add("vigil_task_runs_finished_total",
		            "state=\"timeout\"", n);
	if (c->streams != NULL) {
		struct store_rows *q = store_query(
		    c->store,
		    "SELECT DISTINCT task_id FROM task_runs WHERE updated_at "
		    "= ? AND state IN ('expired', 'failed')",
		    S_INT(now));

		while (q != NULL && store_next(q) == 1)
			stream_emit_id(c, "task", store_text(q, 0));
		store_done(q);
	}
	if (now / 60 != c->last_sched_minute) {
		c->last_sched_minute = now / 60;
		tasks_run_schedules(c, now);
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
	if ((c->ev_wake = event_new(c->base, -1, 0, wake_turn, c)) == NULL)
		return -1;
	c->ev_tick = event_new(c->base, -1, EV_PERSIST, tick, c);
	return c->ev_tick ? event_add(c->ev_tick, &tv) : -1;
}
