/*
 * tasks_sched.c: task templates (a named spec a task or schedule can start
 * from) and schedules (a cron expression and a spec: a task is created each
 * minute the expression matches; tasks.c's tick calls tasks_run_schedules
 * once a minute).
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

/* --- templates and schedules ------------------------------------------- */

/* A template is a partial task spec: kind and params, optionally
 * timeout and expires; the target comes with each task. */
static const struct schema_field template_schema[] = {
    {"name", SCH_STRING, 1},
    {"spec", SCH_OBJECT, 1},
    {NULL, 0, 0},
};

void
tasks_adm_template_put(struct http_req *r)
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
	if (!str_is_name(name)) {
		http_reply_error_field(r, 400, "bad_request", "name",
		                       "name: 1 to 64 letters, digits, '-', "
		                       "'_', '.'");
		goto out;
	}
	if (tasks_spec_check_kind(spec, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "spec: %s",
		                 buf_cstr(&err));
		goto out;
	}
	s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	audit_before_row(r, "SELECT * FROM templates WHERE name = ?", name);
	store_exec(c->store, "DELETE FROM templates WHERE name = ?",
	           S_TEXT(name));
	if (store_exec(c->store,
	               "INSERT INTO templates (name, spec, created_at) "
	               "VALUES (?, ?, ?)",
	               S_TEXT(name), S_TEXT(s), S_INT(time(NULL))) != 1) {
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

void
tasks_adm_templates(struct http_req *r)
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

void
tasks_adm_schedule_create(struct http_req *r)
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
	if (!str_is_name(name)) {
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
	if ((spec = tasks_with_template(c, task, &err)) == NULL ||
	    tasks_spec_check(spec, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "task: %s",
		                 buf_cstr(&err));
		goto out;
	}
	s = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
	random_uuid(id);
	if (store_exec(c->store,
	               "INSERT INTO schedules (id, name, cron, spec, enabled, "
	               "created_at) VALUES (?, ?, ?, ?, 1, ?)",
	               S_TEXT(id), S_TEXT(name), S_TEXT(cron), S_TEXT(s),
	               S_INT(time(NULL))) != 1) {
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

void
tasks_adm_schedules(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &schedule_spec, schedule_item, NULL);
}

void
tasks_adm_schedule_delete(struct http_req *r)
{
	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	audit_before_row(r, "SELECT * FROM schedules WHERE name = ?", r->rest);
	if (store_exec(C(r)->store, "DELETE FROM schedules WHERE name = ?",
	               S_TEXT(r->rest)) != 1) {
		http_reply_error(r, 404, "not_found", "no schedule %.64s",
		                 r->rest);
		return;
	}
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", r->rest, "deleted", 1));
}

/* Runs due schedules once per minute (UTC minute boundaries). */
void
tasks_run_schedules(struct center *c, long long now)
{
	struct store_rows *q;
	long long minute = now - now % 60;
	json_t *due = json_array(), *e;
	struct buf err;
	size_t i;

	q = store_query(c->store,
	                "SELECT id, name, cron, spec, last_run FROM schedules "
	                "WHERE enabled = 1");
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

		/* Claimed by one node: the others see last_run set (every
		 * write takes the writers' lock, store_pg.h). */
		if (store_exec(c->store,
		               "UPDATE schedules SET last_run = ? WHERE id = ? "
		               "AND (last_run IS NULL OR last_run < ?)",
		               S_INT(minute), S_TEXT(id), S_INT(minute)) != 1) {
			json_decref(spec);
			continue;
		}
		buf_init(&err, 1024);
		full = spec ? tasks_with_template(c, spec, &err) : NULL;
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
