/*
 * taskrun.h: one task being run, as the task kinds (kinds.c) see it: its
 * id, kind and parameters, a cancel flag, and three outlets (spool an
 * event, report the run's state, ask whether the agent is stopping) that
 * whoever runs the task provides (work.c). kinds.c and work.c both use this
 * module and it uses neither, so the task kinds do not depend on the
 * machinery that runs them, nor it on them beyond kinds_run.
 */
#ifndef VIGIL_AGENT_TASKRUN_H
#define VIGIL_AGENT_TASKRUN_H

#include <stdatomic.h>

#include <jansson.h>

#include "agent.h"

/* The outlets of a run; ctx is task_run.ctx. Their contracts are those of
 * taskrun_event, taskrun_report and taskrun_stopping below. */
struct taskrun_ops {
	int (*event)(void *ctx, const char *type, const char *level,
	             const char *task_id, json_t *data);
	int (*report)(void *ctx, const char *task_id, const char *state,
	              json_t *progress, json_t *result, const char *reason);
	int (*stopping)(const void *ctx);
};

/* One task being run by the worker thread. */
struct task_run {
	const struct taskrun_ops *ops;
	void *ctx;
	struct agent_state *st;
	const char *id;
	const char *kind;
	json_t *params;
	atomic_int *cancel; /* set when the center cancelled the task */
};

/* Spools an event (durable on return). data may be NULL; it is not
 * consumed. */
int taskrun_event(struct task_run *run, const char *type, const char *level,
                  json_t *data);
/* Reports the run's state ("running", "done", "failed") with optional
 * progress, result and reason (not consumed); sets the cancel flag when
 * the center says the task was cancelled. -1 for a progress report that
 * failed or one the center refused; a final report is queued, never lost. */
int taskrun_report(struct task_run *run, const char *state, json_t *progress,
                   json_t *result, const char *reason);
/* 1 when the agent is stopping: a task should give up waiting. */
int taskrun_stopping(const struct task_run *run);

/* kinds.c: runs one task to its end, reporting done or failed. */
void kinds_run(struct task_run *run);

#endif
