/*
 * work.h: the agent's task machinery (work.c): the spool of events, the
 * sender, poller, reporter and worker threads. The worker hands each task
 * to kinds_run (kinds.c) as a struct task_run (taskrun.h) whose outlets
 * lead back here.
 */
#ifndef VIGIL_AGENT_WORK_H
#define VIGIL_AGENT_WORK_H

#include <jansson.h>

#include "agent.h"

struct work;

/* Opens the spool (<data dir>/spool) and starts the threads; NULL when the
 * spool cannot be opened (the reason is logged). */
struct work *work_start(struct agent_state *st);
/* Stops the threads (a long poll in flight is aborted) and closes the
 * spool. NULL is accepted. */
void work_stop(struct work *w);
int work_stopping(const struct work *w);

/* Spools an event (durable on return). data may be NULL; it is not
 * consumed. */
int work_event(struct work *w, const char *type, const char *level,
               const char *task_id, json_t *data);
/* Reports a run's state ("running", "done", "failed") with optional
 * progress, result and reason; sets the cancel flag when the center says
 * the task was cancelled. Not consumed. Tries once: a final report that
 * does not get through is queued for the reporter thread (and 0
 * returned); -1 for a progress report that failed, or a report the center
 * refused (400, 413). Never waits for the center to come back. */
int work_report(struct work *w, const char *task_id, const char *state,
                json_t *progress, json_t *result, const char *reason);

#endif
