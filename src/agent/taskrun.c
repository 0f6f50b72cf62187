/*
 * taskrun.c: a run's outlets (see taskrun.h), passed on to whoever runs
 * the task through the run's own ops table: no global, no dependency on
 * work.c.
 */
#include "taskrun.h"

int
taskrun_event(struct task_run *run, const char *type, const char *level,
              json_t *data)
{
	return run->ops->event(run->ctx, type, level, run->id, data);
}

int
taskrun_report(struct task_run *run, const char *state, json_t *progress,
               json_t *result, const char *reason)
{
	return run->ops->report(run->ctx, run->id, state, progress, result,
	                        reason);
}

int
taskrun_stopping(const struct task_run *run)
{
	return run->ops->stopping(run->ctx);
}
