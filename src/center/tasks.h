/*
 * tasks.h: what the task files of vigild share among themselves, split the
 * way OpenBSD httpd splits server.c: tasks.c is the core (kinds and their
 * parameters, targets, creating a task, the once-a-second tick),
 * tasks_poll.c the agents' long poll and status reports, tasks_admin.c the
 * operators' routes, tasks_sched.c templates and schedules. What the rest
 * of vigild calls is in center.h; everything here takes the center as a
 * context pointer and keeps no state of its own.
 */
#ifndef VIGIL_CENTER_TASKS_H
#define VIGIL_CENTER_TASKS_H

#include <jansson.h>

#include "buf.h"
#include "http.h"

struct center;

/* tasks.c: checks a task spec ({"kind", "params", ...}): 0, or -1 with
 * the reason in err. _kind checks the kind and its parameters only. */
int tasks_spec_check(json_t *spec, struct buf *err);
int tasks_spec_check_kind(json_t *spec, struct buf *err);
/* tasks.c: body merged over its "template" (when it names one) as a new
 * reference; NULL with the reason in err. */
json_t *tasks_with_template(struct center *c, json_t *body, struct buf *err);
/* tasks.c: GET /api/v1/task-kinds. */
void tasks_adm_kinds(struct http_req *r);

/* tasks_sched.c: the routes of templates and schedules. */
void tasks_adm_template_put(struct http_req *r);
void tasks_adm_templates(struct http_req *r);
void tasks_adm_schedule_create(struct http_req *r);
void tasks_adm_schedules(struct http_req *r);
void tasks_adm_schedule_delete(struct http_req *r);
/* tasks_sched.c: creates the tasks of the schedules due this minute. */
void tasks_run_schedules(struct center *c, long long now);

#endif
