/*
 * reputation.h: a scan's files checked by SHA-256 with the center's
 * reputation service (reputation.c).
 */
#ifndef VIGIL_AGENT_REPUTATION_H
#define VIGIL_AGENT_REPUTATION_H

#include <jansson.h>

#include "scan.h"
#include "taskrun.h"

struct rep_batch;

/* spooled: the scan's count of findings spooled, raised for each
 * Reputation finding. NULL when out of memory (the scan goes on
 * without). */
struct rep_batch *rep_new(struct task_run *run, const struct scan_opts *so,
                          unsigned *spooled);
/* A file hashed by the scan; spooled when a rule finding was already
 * spooled for it. Asks the center when a batch is full. */
void rep_add(struct rep_batch *b, const struct scan_result *r, int spooled);
/* Asks about the rest, adds "reputation" {checked, malicious, unchecked,
 * error} to the scan's result (when not NULL) and frees b. */
void rep_finish(struct rep_batch *b, json_t *result);

#endif
