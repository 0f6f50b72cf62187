/*
 * intel.c: a sample's verdict from vigil-inteld (docs/inteld.md,
 * "Consumers"; [intel] in vigil-scand.conf). A scanned sample's job goes
 * from the worker pool to this module's thread instead of straight to its
 * answer; the thread asks inteld about the SHA-256s of every job waiting
 * (one batch lookup) and adds the verdict to each finding ("intel":
 * {"verdict", "score", "sources"}). A sample inteld calls malicious is
 * reported as a finding of kind Reputation even when no rule matched.
 * When inteld cannot be reached the findings carry "intel": {"verdict":
 * null, "unavailable": why} and clean samples stay []: the answer never
 * waits longer than [intel] timeout. The jobs go back to the loop over a
 * pipe and are answered there as any other (scand_finish_jobs). The scan
 * workers themselves never talk to the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intelc.h"
#include "metrics.h"
#include "scand.h"

#define SINTEL_BATCH 1000

struct sintel {
	struct scand *s;
	struct intelc *ic;
	struct intelc *new_ic; /* SIGHUP: taken before the next batch */
	pthread_t thr;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int stop;
	struct job *todo, *done; /* LIFO; order is restored when taken */
	int wake[2];
	struct event *ev;
};

static struct job *
reverse(struct job *l)
{
	struct job *r = NULL, *n;

	while (l != NULL) {
		n = l->next;
		l->next = r;
		r = l;
		l = n;
	}
	return r;
}

/* A neutral result (scan_result_to_json's shape) for a sample no rule
 * matched and inteld calls malicious, rendered as Thunderstorm's. */
static json_t *
reputation_finding(struct job *j, json_t *brief)
{
	json_int_t score =
	    json_is_integer(json_object_get(brief, "score"))
	        ? json_integer_value(json_object_get(brief, "score"))
	        : 100;
	json_t *o, *f;

	o = json_pack(
	    "{s:s, s:{s:s, s:b, s:{s:s}, s:I}, s:I, s:s, s:[{s:s, "
	    "s:{s:I, s:s, s:s, s:[], s:s, s:{}}, s:[]}]}",
	    "type", "file", "subject", "path", j->name ? j->name : "", "exists",
	    0, "hashes", "sha256", j->sha256, "size", (json_int_t)j->size,
	    "score", score, "level", "alert", "reasons", "summary",
	    "Reputation: vigil-inteld says malicious", "signature", "score",
	    score, "kind", "Reputation", "rule_name", "reputation", "tags",
	    "description", "known bad by its SHA-256 (vigil-inteld)", "meta",
	    "matched");
	if (o == NULL)
		return NULL;
	f = thor_render(o, j->name ? j->name : "", j->source ? j->source : "",
	                j->id);
	json_decref(o);
	return f;
}

static void
annotate(struct job *j, json_t *brief, const char *why)
{
	json_t *f, *v;
	size_t i;

	if (brief != NULL &&
	    intelc_verdict_rank(
	        json_string_value(json_object_get(brief, "verdict"))) == 3 &&
	    json_array_size(j->findings) == 0 &&
	    (f = reputation_finding(j, brief)) != NULL) {
		json_decref(j->findings);
		j->findings = f;
		metrics_add("vigil_scand_reputation_findings_total", NULL, 1);
	}
	json_array_foreach(j->findings, i, f)
	{
		v = brief != NULL ? json_deep_copy(brief)
		                  : json_pack("{s:n, s:s}", "verdict",
		                              "unavailable", why);
		json_object_set_new(f, "intel", v);
	}
}

static void
lookup_batch(struct sintel *si, struct job *list)
{
	json_t *inds = json_array(), *res = NULL;
	struct buf err;
	struct job *j;
	size_t i = 0;

	buf_init(&err, 1024);
	for (j = list; j != NULL; j = j->next)
		json_array_append_new(inds,
		                      json_pack("{s:s, s:s}", "type", "sha256",
		                                "value", j->sha256));
	if (intelc_lookup(si->ic, inds, &res, &err) == -1) {
		log_warnx("scand: intel: %s", buf_cstr(&err));
		metrics_set("vigil_scand_intel_up", NULL, 0);
		metrics_add("vigil_scand_intel_lookups_total",
		            "result=\"failed\"", (double)json_array_size(inds));
		for (j = list; j != NULL; j = j->next)
			annotate(j, NULL, buf_cstr(&err));
	} else {
		metrics_set("vigil_scand_intel_up", NULL, 1);
		metrics_add("vigil_scand_intel_lookups_total", "result=\"ok\"",
		            (double)json_array_size(inds));
		for (j = list; j != NULL; j = j->next, i++) {
			json_t *b = intelc_brief(json_array_get(res, i));

			annotate(j, b, "no answer for this hash");
			json_decref(b);
		}
	}
	json_decref(inds);
	json_decref(res);
	buf_free(&err);
}

static void *
sintel_main(void *arg)
{
	struct sintel *si = arg;
	struct job *list, *last, *j;
	struct intelc *old;
	int n;

	pthread_mutex_lock(&si->mu);
	for (;;) {
		while (si->todo == NULL && !si->stop)
			pthread_cond_wait(&si->cond, &si->mu);
		if (si->stop)
			break;
		/* the oldest SINTEL_BATCH jobs (todo is newest first) */
		list = reverse(si->todo);
		si->todo = NULL;
		for (n = 1, j = list; j->next != NULL && n < SINTEL_BATCH;
		     j = j->next, n++)
			;
		si->todo = reverse(j->next);
		j->next = NULL;
		old = NULL;
		if (si->new_ic != NULL) {
			old = si->ic;
			si->ic = si->new_ic;
			si->new_ic = NULL;
		}
		pthread_mutex_unlock(&si->mu);
		intelc_free(old);
		lookup_batch(si, list);
		pthread_mutex_lock(&si->mu);
		for (last = list; last->next != NULL; last = last->next)
			;
		last->next = reverse(si->done);
		si->done = reverse(list);
		if (write(si->wake[1], "x", 1) == -1 && errno != EAGAIN)
			log_warn("scand: intel: wake the loop");
	}
	pthread_mutex_unlock(&si->mu);
	return NULL;
}

static void
sintel_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sintel *si = arg;
	struct job *list;
	char drain[256];

	(void)what;
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&si->mu);
	list = reverse(si->done);
	si->done = NULL;
	pthread_mutex_unlock(&si->mu);
	if (list != NULL)
		scand_finish_jobs(si->s, list);
}

int
sintel_start(struct scand *s, struct buf *err)
{
	struct sintel *si;

	metrics_declare("vigil_scand_intel_up", METRIC_GAUGE,
	                "1 when vigil-inteld answered the last lookup");
	metrics_declare("vigil_scand_intel_lookups_total", METRIC_COUNTER,
	                "samples' SHA-256s asked of vigil-inteld, by result");
	metrics_declare("vigil_scand_reputation_findings_total", METRIC_COUNTER,
	                "samples no rule matched reported as known bad");
	if (s->conf.intel.url == NULL)
		return 0;
	if ((si = calloc(1, sizeof(*si))) == NULL) {
		buf_printf(err, "out of memory");
		return -1;
	}
	si->s = s;
	si->wake[0] = si->wake[1] = -1;
	pthread_mutex_init(&si->mu, NULL);
	pthread_cond_init(&si->cond, NULL);
	s->intel = si;
	if (intelc_new(&s->conf.intel, &si->ic, err) == -1)
		return -1;
	if (pipe2(si->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		buf_printf(err, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((si->ev = event_new(s->base, si->wake[0], EV_READ | EV_PERSIST,
	                        sintel_done_cb, si)) == NULL ||
	    event_add(si->ev, NULL) == -1) {
		buf_printf(err, "cannot watch the intel pipe");
		return -1;
	}
	if (pthread_create(&si->thr, NULL, sintel_main, si) != 0) {
		buf_printf(err, "cannot start the intel thread");
		return -1;
	}
	si->started = 1;
	log_info("scand: samples checked with vigil-inteld %s",
	         intelc_url(si->ic));
	return 0;
}

struct job *
sintel_take(struct scand *s, struct job *list)
{
	struct sintel *si = s->intel;
	struct job *rest = NULL, *j, *next;
	int any = 0;

	if (si == NULL || !si->started)
		return list;
	pthread_mutex_lock(&si->mu);
	for (j = list; j != NULL; j = next) {
		next = j->next;
		if (!si->stop && j->status == 0 && j->sha256[0] != '\0' &&
		    j->findings != NULL &&
		    (j->kind == JOB_CHECK || j->kind == JOB_SCAN)) {
			j->next = si->todo;
			si->todo = j;
			any = 1;
		} else {
			j->next = rest;
			rest = j;
		}
	}
	if (any)
		pthread_cond_signal(&si->cond);
	pthread_mutex_unlock(&si->mu);
	return reverse(rest);
}

struct job *
sintel_stop(struct scand *s)
{
	struct sintel *si = s->intel;
	struct job *left, *j;

	if (si == NULL)
		return NULL;
	pthread_mutex_lock(&si->mu);
	si->stop = 1;
	pthread_cond_signal(&si->cond);
	pthread_mutex_unlock(&si->mu);
	if (si->started)
		pthread_join(si->thr, NULL);
	/* answered without a verdict: done first, then those not asked */
	left = reverse(si->done);
	for (j = reverse(si->todo); j != NULL;) {
		struct job *n = j->next;

		annotate(j, NULL, "vigil-scand stopping");
		j->next = left;
		left = j;
		j = n;
	}
	if (si->ev)
		event_free(si->ev);
	if (si->wake[0] != -1) {
		close(si->wake[0]);
		close(si->wake[1]);
	}
	intelc_free(si->ic);
	intelc_free(si->new_ic);
	pthread_cond_destroy(&si->cond);
	pthread_mutex_destroy(&si->mu);
	free(si);
	s->intel = NULL;
	return left;
}

/* SIGHUP: applies a changed [intel] of nc without a restart and without
 * touching a connection. The new settings become the daemon's (nc gets
 * the old ones, freed by the caller) once they check out; the thread
 * takes the new client before its next batch; a url set now starts the
 * thread, one removed stops it (samples waiting for it are answered
 * without a verdict). */
void
sintel_reload(struct scand *s, struct scand_conf *nc)
{
	struct sintel *si = s->intel;
	struct intelc *ic = NULL;
	struct intelc_conf t;
	struct buf err;

	if (intelc_conf_same(&nc->intel, &s->conf.intel) &&
	    (si != NULL) == (nc->intel.url != NULL))
		return;
	buf_init(&err, 2048);
	if (intelc_new(&nc->intel, &ic, &err) == -1) {
		log_warnx("scand: reload: %s; keeping the [intel] settings in "
		          "use",
		          buf_cstr(&err));
		goto out;
	}
	t = s->conf.intel;
	s->conf.intel = nc->intel;
	nc->intel = t;
	if (ic == NULL) {
		if (si != NULL) {
			log_info("scand: reload: [intel] url removed: samples "
			         "are no longer checked with vigil-inteld");
			scand_finish_jobs(s, sintel_stop(s));
		}
		goto out;
	}
	if (si == NULL) {
		intelc_free(ic);
		if (sintel_start(s, &err) == -1) {
			log_warnx("scand: reload: [intel]: %s", buf_cstr(&err));
			scand_finish_jobs(s, sintel_stop(s));
		}
		goto out;
	}
	log_info("scand: reload: samples checked with vigil-inteld %s from "
	         "now on",
	         intelc_url(ic));
	pthread_mutex_lock(&si->mu);
	intelc_free(si->new_ic);
	si->new_ic = ic;
	pthread_mutex_unlock(&si->mu);
out:
	buf_free(&err);
}
