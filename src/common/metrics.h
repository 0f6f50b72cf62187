/*
 * metrics: process-wide counters, gauges and summaries rendered in the
 * Prometheus text format for GET /metrics. Names are declared once with
 * their type and help; samples are keyed by a label string such as
 * `route="enroll",status="200"`. Single-threaded (the event loop).
 */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include "buf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_SUMMARY };

void metrics_declare(const char *name, enum metric_type type, const char *help);
/* labels may be NULL or "" for none. */
void metrics_add(const char *name, const char *labels, double v);
void metrics_set(const char *name, const char *labels, double v);
/* Summary: records one observation (count and sum are exposed as
 * name_count and name_sum). */
void metrics_observe(const char *name, const char *labels, double v);
double metrics_get(const char *name, const char *labels);
void metrics_render(struct buf *out);
void metrics_reset(void); /* frees everything (tests, shutdown) */

#endif
