/*
 * tasks_admin.c: the operators' side of tasks (admin routes): create,
 * list, show and cancel tasks and their runs. Checking and creating a task
 * is tasks.c's; templates and schedules are tasks_sched.c's (their routes
 * are in this file's table).
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

#define C(r) ((struct center *)(r)->arg)

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
	if ((spec = tasks_with_template(c, body, &err)) == NULL ||
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
	    S_TEXT(id));
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
	                S_TEXT(id));
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
	                S_TEXT(id));
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
	    S_INT(now), S_INT(now), S_TEXT(id));
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
	           S_INT(now), S_TEXT(id));
	log_info("tasks: task %s cancelled by %s (%d runs)", id, r->peer_addr,
	         n);
	stream_emit_id(c, "task", id);
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

const struct http_route tasks_admin_routes[] = {
    {"POST", "/api/v1/tasks", adm_task_create, 0, "tasks", 0, ROLE_OPERATOR},
    {"GET", "/api/v1/tasks", adm_tasks, 0, "tasks", 0, ROLE_READONLY},
    {"GET", "/api/v1/tasks/", adm_task, HTTP_ROUTE_PREFIX, "task", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/tasks/", adm_task, HTTP_ROUTE_PREFIX, "task", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/task-kinds", tasks_adm_kinds, 0, "task_kinds", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/templates", tasks_adm_templates, 0, "templates", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/templates", tasks_adm_template_put, 0, "templates", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/schedules", tasks_adm_schedules, 0, "schedules", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/schedules", tasks_adm_schedule_create, 0, "schedules", 0,
     ROLE_OPERATOR},
    {"DELETE", "/api/v1/schedules/", tasks_adm_schedule_delete,
     HTTP_ROUTE_PREFIX, "schedule", 0, ROLE_OPERATOR},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
