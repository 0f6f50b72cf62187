/*
 * metrics: process-wide counters, gauges and summaries, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 *
 * A daemon has a few dozen metric names and a bounded set of label
 * combinations (routes, status codes, failure reasons), so two linear
 * arrays are enough: metrics in declaration order, each with its samples in
 * the order their label strings were first seen. That order is also the
 * output order, which keeps /metrics stable between scrapes and lets the
 * tests compare the rendered text byte for byte.
 *
 * Metrics are diagnostics: an allocation failure or a misuse (wrong type,
 * undeclared name) is logged and the update dropped, never fatal, so a
 * typo in a metric name cannot take a daemon down.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

struct metric_sample {
	char *labels;             /* "" for none */
	double value;             /* counter/gauge value, or a summary's sum */
	unsigned long long count; /* summary observations */
};

struct metric {
	char *name;
	char *help;
	enum metric_type type;
	struct metric_sample *samples;
	size_t nsamples, capsamples;
};

static struct metric *metrics;
static size_t nmetrics, capmetrics;
/* vigild stores events from a writer thread (ingest.c), whose store
 * updates metrics too: every public function holds this lock. */
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *
metric_type_name(enum metric_type t)
{
	switch (t) {
	case METRIC_COUNTER:
		return "counter";
	case METRIC_GAUGE:
		return "gauge";
	case METRIC_SUMMARY:
		return "summary";
	}
	return "untyped";
}

static struct metric *
metric_find(const char *name)
{
	size_t i;

	for (i = 0; i < nmetrics; i++)
		if (strcmp(metrics[i].name, name) == 0)
			return &metrics[i];
	return NULL;
}

static struct metric *
metric_new(const char *name, enum metric_type type, const char *help)
{
	struct metric *m, *nm;
	size_t ncap;

	if (nmetrics == capmetrics) {
		ncap = capmetrics ? capmetrics * 2 : 16;
		if ((nm = realloc(metrics, ncap * sizeof(*nm))) == NULL)
			goto fail;
		metrics = nm;
		capmetrics = ncap;
	}
	m = &metrics[nmetrics];
	memset(m, 0, sizeof(*m));
	m->type = type;
	if ((m->name = strdup(name)) == NULL ||
	    (m->help = strdup(help ? help : "")) == NULL) {
		free(m->name);
		free(m->help);
		goto fail;
	}
	nmetrics++;
	return m;
fail:
	log_warnx("metrics: out of memory declaring %s", name);
	return NULL;
}

static void
metrics_declare_locked(const char *name, enum metric_type type,
                       const char *help)
{
	struct metric *m;

	if ((m = metric_find(name)) != NULL) {
		/* Declaring twice (e.g. two servers sharing a metric) is
		 * harmless as long as the type agrees. */
		if (m->type != type)
			log_warnx("metrics: %s redeclared as %s (was %s)", name,
			          metric_type_name(type),
			          metric_type_name(m->type));
		return;
	}
	metric_new(name, type, help);
}

/*
 * The metric for an update; an undeclared name is declared on the fly with
 * the type its first use implies (and a warning, since it has no help).
 */
static struct metric *
metric_for_update(const char *name, enum metric_type type)
{
	struct metric *m;

	if ((m = metric_find(name)) == NULL) {
		log_warnx("metrics: %s used before metrics_declare", name);
		return metric_new(name, type, "");
	}
	return m;
}

static struct metric_sample *
sample_find(struct metric *m, const char *labels)
{
	size_t i;

	for (i = 0; i < m->nsamples; i++)
		if (strcmp(m->samples[i].labels, labels) == 0)
			return &m->samples[i];
	return NULL;
}

static struct metric_sample *
sample_get(struct metric *m, const char *labels)
{
	struct metric_sample *s, *ns;
	size_t ncap;

	if (labels == NULL)
		labels = "";
	if ((s = sample_find(m, labels)) != NULL)
		return s;
	if (m->nsamples == m->capsamples) {
		ncap = m->capsamples ? m->capsamples * 2 : 4;
		if ((ns = realloc(m->samples, ncap * sizeof(*ns))) == NULL)
			goto fail;
		m->samples = ns;
		m->capsamples = ncap;
	}
	s = &m->samples[m->nsamples];
	memset(s, 0, sizeof(*s));
	if ((s->labels = strdup(labels)) == NULL)
		goto fail;
	m->nsamples++;
	return s;
fail:
	log_warnx("metrics: out of memory for %s{%s}", m->name, labels);
	return NULL;
}

static void
metrics_add_locked(const char *name, const char *labels, double v)
{
	struct metric *m;
	struct metric_sample *s;

	if ((m = metric_for_update(name, METRIC_COUNTER)) == NULL)
		return;
	if (m->type == METRIC_SUMMARY) {
		log_warnx("metrics: metrics_add on summary %s", name);
		return;
	}
	/* A counter that goes down reads as a process restart to Prometheus
	 * (rate() would jump); refuse rather than corrupt the series. */
	if (m->type == METRIC_COUNTER && v < 0) {
		log_warnx("metrics: negative add to counter %s", name);
		return;
	}
	if ((s = sample_get(m, labels)) != NULL)
		s->value += v;
}

static void
metrics_set_locked(const char *name, const char *labels, double v)
{
	struct metric *m;
	struct metric_sample *s;

	if ((m = metric_for_update(name, METRIC_GAUGE)) == NULL)
		return;
	if (m->type == METRIC_SUMMARY) {
		log_warnx("metrics: metrics_set on summary %s", name);
		return;
	}
	if ((s = sample_get(m, labels)) != NULL)
		s->value = v;
}

static void
metrics_observe_locked(const char *name, const char *labels, double v)
{
	struct metric *m;
	struct metric_sample *s;

	if ((m = metric_for_update(name, METRIC_SUMMARY)) == NULL)
		return;
	if (m->type != METRIC_SUMMARY) {
		log_warnx("metrics: metrics_observe on non-summary %s", name);
		return;
	}
	if ((s = sample_get(m, labels)) != NULL) {
		s->count++;
		s->value += v;
	}
}

/*
 * Counter or gauge value; for a summary its count. "name_count" and
 * "name_sum" also reach a summary's two series, as they appear in the
 * output. Unknown names and labels read as 0.
 */
static double
metrics_get_locked(const char *name, const char *labels)
{
	struct metric *m;
	struct metric_sample *s;
	size_t n = strlen(name);
	char *base;
	int want_sum = 0;

	if (labels == NULL)
		labels = "";
	if ((m = metric_find(name)) == NULL) {
		if (n > 4 && strcmp(name + n - 4, "_sum") == 0) {
			want_sum = 1;
			n -= 4;
		} else if (n > 6 && strcmp(name + n - 6, "_count") == 0)
			n -= 6;
		else
			return 0;
		if ((base = strndup(name, n)) == NULL)
			return 0;
		m = metric_find(base);
		free(base);
		if (m == NULL || m->type != METRIC_SUMMARY)
			return 0;
	}
	if ((s = sample_find(m, labels)) == NULL)
		return 0;
	if (m->type == METRIC_SUMMARY && !want_sum)
		return (double)s->count;
	return s->value;
}

/*
 * A value in the exposition format: integers without a fraction, other
 * values in the shortest form that reads back exactly, and the spellings
 * Prometheus expects for the special values.
 */
static int
metrics_put_value(struct buf *out, double v)
{
	char tmp[64];

	if (isnan(v))
		return buf_puts(out, "NaN");
	if (isinf(v))
		return buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	/* Within +-2^53 every integer is exact; print it as one (without
	 * calling libm, which the library does not link). */
	if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
	    v == (double)(long long)v)
		return buf_printf(out, "%lld", (long long)v);
	snprintf(tmp, sizeof(tmp), "%.15g", v);
	if (strtod(tmp, NULL) != v)
		snprintf(tmp, sizeof(tmp), "%.17g", v);
	return buf_puts(out, tmp);
}

/* HELP text escapes backslash and newline (the format's only rule). */
static int
metrics_put_help(struct buf *out, const char *help)
{
	const char *p;

	for (p = help; *p != '\0'; p++) {
		if (*p == '\\') {
			if (buf_puts(out, "\\\\") == -1)
				return -1;
		} else if (*p == '\n') {
			if (buf_puts(out, "\\n") == -1)
				return -1;
		} else if (buf_putc(out, *p) == -1)
			return -1;
	}
	return 0;
}

static int
metrics_put_series(struct buf *out, const char *name, const char *suffix,
                   const char *labels, double v)
{
	if (buf_printf(out, "%s%s", name, suffix) == -1)
		return -1;
	if (labels[0] != '\0' && buf_printf(out, "{%s}", labels) == -1)
		return -1;
	if (buf_putc(out, ' ') == -1 || metrics_put_value(out, v) == -1 ||
	    buf_putc(out, '\n') == -1)
		return -1;
	return 0;
}

static void
metrics_render_locked(struct buf *out)
{
	size_t i, j;
	struct metric *m;
	struct metric_sample *s;

	for (i = 0; i < nmetrics; i++) {
		m = &metrics[i];
		if (m->help[0] != '\0') {
			if (buf_printf(out, "# HELP %s ", m->name) == -1 ||
			    metrics_put_help(out, m->help) == -1 ||
			    buf_putc(out, '\n') == -1)
				goto fail;
		}
		if (buf_printf(out, "# TYPE %s %s\n", m->name,
		               metric_type_name(m->type)) == -1)
			goto fail;
		for (j = 0; j < m->nsamples; j++) {
			s = &m->samples[j];
			if (m->type == METRIC_SUMMARY) {
				if (metrics_put_series(
				        out, m->name, "_count", s->labels,
				        (double)s->count) == -1 ||
				    metrics_put_series(out, m->name, "_sum",
				                       s->labels,
				                       s->value) == -1)
					goto fail;
			} else if (metrics_put_series(out, m->name, "",
			                              s->labels,
			                              s->value) == -1)
				goto fail;
		}
	}
	return;
fail:
	/* Only the buffer's cap can stop us; a truncated scrape is better
	 * than none, and the log says why it is short. */
	log_warnx("metrics: output truncated (buffer limit)");
}

static void
metrics_reset_locked(void)
{
	size_t i, j;

	for (i = 0; i < nmetrics; i++) {
		for (j = 0; j < metrics[i].nsamples; j++)
			free(metrics[i].samples[j].labels);
		free(metrics[i].samples);
		free(metrics[i].name);
		free(metrics[i].help);
	}
	free(metrics);
	metrics = NULL;
	nmetrics = capmetrics = 0;
}

/* The public functions: each one the _locked body under metrics_lock. */

void
metrics_declare(const char *name, enum metric_type type, const char *help)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_declare_locked(name, type, help);
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_add(const char *name, const char *labels, double v)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_add_locked(name, labels, v);
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_set(const char *name, const char *labels, double v)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_set_locked(name, labels, v);
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_observe(const char *name, const char *labels, double v)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_observe_locked(name, labels, v);
	pthread_mutex_unlock(&metrics_lock);
}

double
metrics_get(const char *name, const char *labels)
{
	double v;

	pthread_mutex_lock(&metrics_lock);
	v = metrics_get_locked(name, labels);
	pthread_mutex_unlock(&metrics_lock);
	return v;
}

void
metrics_render(struct buf *out)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_render_locked(out);
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_reset(void)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_reset_locked();
	pthread_mutex_unlock(&metrics_lock);
}
