/*
 * writer.c: the one thread that changes the store. Jobs come from the
 * event loop in a queue; each runs in one LMDB write transaction and is
 * committed whole or not at all (a feed import that fails, or a strict
 * one with a rejected entry, leaves the feed as it was). Finished jobs go
 * back to the loop, which is woken over a pipe and answers them.
 *
 * An import replaces the feed's entries: inside the transaction the old
 * ones are removed and the new ones written, so readers see either set
 * and never a mix (LMDB readers work on the last committed snapshot).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "inteld.h"
#include "metrics.h"

#define REPORT_MAX 10000 /* notes listed in an import's report */

struct writer {
	struct istore *st;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wjob *queue, **qtail;
	struct wjob *done, **dtail;
	int stop, busy;
	int cancel; /* writer_cancel: give up what is under way and queued */
	int pipe[2];
	struct event *ev;
	void (*on_done)(struct wjob *j, void *arg);
	void *arg;
};

void
wjob_free(struct wjob *j)
{
	if (j == NULL)
		return;
	if (j->body != NULL)
		evbuffer_free(j->body);
	json_decref(j->arg);
	json_decref(j->reply);
	free(j);
}

/* ---- import ---------------------------------------------------------- */

struct imp {
	struct writer *wr;
	int cancelled;
	struct iwtxn *w;
	const char *feed;
	long long now;
	struct ibulk *bulk;
	int oom;
	long long entries, revoked;
	long long nrej, nskip;
	/* MISP: the manifest's events (uuid -> timestamp) at the last import
	 * and now; those whose timestamp did not change are passed over and
	 * their entries kept */
	json_t *ev_old, *ev_new, *ev_same;
	long long ev_added, ev_changed;
	json_t *rejected, *skipped;
};

static int
imp_add(void *arg, const struct intel_rec *r)
{
	struct imp *m = arg;

	if (__atomic_load_n(&m->wr->cancel, __ATOMIC_RELAXED)) {
		m->cancelled = 1;
		return -1;
	}
	if (istore_bulk_put(m->bulk, r) == -1) {
		m->oom = 1;
		return -1;
	}
	m->entries++;
	return 0;
}

static int
imp_del(void *arg, const struct intel_rec *r)
{
	struct imp *m = arg;

	if (istore_bulk_del(m->bulk, &r->ind) == -1) {
		m->oom = 1;
		return -1;
	}
	m->revoked++;
	return 0;
}

static int
imp_event(void *arg, const char *uuid, long long ts)
{
	struct imp *m = arg;
	json_t *was = json_object_get(m->ev_old, uuid);

	json_object_set_new(m->ev_new, uuid, json_integer(ts));
	if (was == NULL) {
		m->ev_added++;
		return 0;
	}
	if (ts == 0 || json_integer_value(was) != ts) {
		m->ev_changed++;
		return 0;
	}
	json_object_set_new(m->ev_same, uuid, json_true());
	return 1;
}

/* Entries of unchanged events stay: their reference is
 * "misp:event/<uuid>/attribute/<uuid>". */
static int
imp_keep(void *arg, const char *ref, size_t len)
{
	struct imp *m = arg;
	char uuid[80];
	const char *e;

	if (len < 11 || memcmp(ref, "misp:event/", 11) != 0 ||
	    (e = memchr(ref + 11, '/', len - 11)) == NULL ||
	    (size_t)(e - ref - 11) >= sizeof(uuid))
		return 0;
	memcpy(uuid, ref + 11, (size_t)(e - ref - 11));
	uuid[e - ref - 11] = '\0';
	return json_object_get(m->ev_same, uuid) != NULL;
}

static void
imp_note(void *arg, int skipped, const char *where, const char *value,
         const char *why)
{
	struct imp *m = arg;
	json_t *o;

	if ((skipped ? m->nskip++ : m->nrej++) >= REPORT_MAX)
		return;
	o = json_pack("{s:s, s:s}", "where", where, "why", why);
	if (value != NULL)
		json_object_set_new(o, "value", json_string(value));
	json_array_append_new(skipped ? m->skipped : m->rejected, o);
}

static void
run_import(struct writer *wr, struct wjob *j)
{
	struct imp m;
	struct intel_sink sink = {imp_add, imp_note, &m, NULL, NULL};
	struct ibulk_counts cnt;
	struct buf err;
	json_t *feed = NULL, *rep;
	const uint8_t *p;
	size_t n;
	long long old = 0;
	int rc = -1;

	log_info("inteld: import %s (%s): %zu bytes, started", j->feed,
	         intel_format_name(j->fmt), evbuffer_get_length(j->body));
	memset(&m, 0, sizeof(m));
	memset(&cnt, 0, sizeof(cnt));
	buf_init(&err, 4096);
	m.feed = j->feed;
	m.now = (long long)time(NULL);
	m.rejected = json_array();
	m.skipped = json_array();
	rep = json_object();
	json_object_set_new(rep, "feed", json_string(j->feed));
	json_object_set_new(rep, "format",
	                    json_string(intel_format_name(j->fmt)));
	m.wr = wr;
	if ((m.bulk = istore_bulk_new(m.now)) == NULL) {
		buf_printf(&err, "out of memory");
		goto done;
	}
	istore_bulk_set_cancel(m.bulk, &wr->cancel);
	if ((m.w = istore_write_begin(wr->st, &err)) == NULL)
		goto done;
	if ((feed = istore_feed_wget(m.w, j->feed)) == NULL) {
		j->status = 404;
		buf_printf(&err, "no feed %s (add it first)", j->feed);
		goto done;
	}
	old = istore_count(m.w, j->feed);
	if (j->fmt == INTEL_FMT_MISP) {
		m.ev_new = json_object();
		m.ev_same = json_object();
		m.ev_old =
		    j->delta ? json_incref(json_object_get(feed, "misp_events"))
		             : NULL;
		sink.event = imp_event;
	}
	if (j->delta && j->fmt == INTEL_FMT_STIX)
		sink.del = imp_del;
	n = evbuffer_get_length(j->body);
	p = n ? evbuffer_pullup(j->body, -1) : (const uint8_t *)"";
	if (p == NULL) {
		buf_printf(&err, "out of memory");
		goto done;
	}
	if (intelfeed_parse(j->fmt, p, n, &j->opts, &sink, &err) == -1) {
		if (m.cancelled)
			goto cancelled;
		if (strcmp(buf_cstr(&err), "stopped") == 0) {
			buf_reset(&err);
			buf_printf(&err, "out of memory holding the feed's "
			                 "entries");
			j->status = 507;
		}
		goto done;
	}
	/* The entries are in the bulk now: the file's bytes can go. */
	evbuffer_free(j->body);
	j->body = NULL;
	if (j->strict && m.nrej > 0) {
		buf_printf(&err,
		           "strict: %lld entries rejected, nothing replaced",
		           m.nrej);
		goto done;
	}
	if (istore_bulk_apply(
	        m.w, j->feed, m.bulk, !(j->delta && j->fmt == INTEL_FMT_STIX),
	        m.ev_same != NULL ? imp_keep : NULL, &m, &cnt) == -1) {
		if (__atomic_load_n(&wr->cancel, __ATOMIC_RELAXED))
			goto cancelled;
		buf_printf(&err, "the store failed (see the log; is "
		                 "[inteld] map_size too small?)");
		j->status = 507;
		goto done;
	}
	if (__atomic_load_n(&wr->cancel, __ATOMIC_RELAXED))
		goto cancelled;
	json_object_set_new(feed, "format",
	                    json_string(intel_format_name(j->fmt)));
	json_object_set_new(feed, "imported_at", json_integer(m.now));
	if (m.ev_new != NULL)
		json_object_set(feed, "misp_events", m.ev_new);
	else
		json_object_del(feed, "misp_events");
	json_object_set_new(feed, "last_rejected", json_integer(m.nrej));
	json_object_set_new(feed, "last_skipped", json_integer(m.nskip));
	if (istore_feed_put(m.w, j->feed, feed) == -1) {
		buf_printf(&err, "the store failed writing the feed");
		goto done;
	}
	rc = istore_write_commit(m.w, &err);
	m.w = NULL;
	goto done;
cancelled:
	/* A second SIGTERM: the transaction is aborted below, the store
	 * keeps the feed's old set. */
	buf_reset(&err);
	buf_printf(&err, "cancelled: vigil-inteld is stopping; the feed is "
	                 "unchanged");
	j->status = 503;
done:
	if (m.w != NULL)
		istore_write_abort(m.w);
	json_decref(feed);
	istore_bulk_free(m.bulk);
	json_object_set_new(rep, "mode",
	                    json_string(j->delta ? "delta" : "full"));
	if (rc == 0 && m.ev_new != NULL) {
		const char *k;
		json_t *v;
		long long gone = 0;

		json_object_foreach(m.ev_old, k, v) gone +=
		    json_object_get(m.ev_new, k) == NULL;
		json_object_set_new(
		    rep, "events",
		    json_pack("{s:I, s:I, s:I, s:I}", "added",
		              (json_int_t)m.ev_added, "changed",
		              (json_int_t)m.ev_changed, "unchanged",
		              (json_int_t)json_object_size(m.ev_same),
		              "removed", (json_int_t)gone));
	}
	json_decref(m.ev_old);
	json_decref(m.ev_new);
	json_decref(m.ev_same);
	json_object_set_new(rep, "result",
	                    json_string(rc == 0 ? "imported" : "failed"));
	if (rc == -1)
		json_object_set_new(rep, "error", json_string(buf_cstr(&err)));
	json_object_set_new(rep, "entries", json_integer(m.entries));
	json_object_set_new(
	    rep, "indicators",
	    json_integer(rc == 0 ? old + cnt.added - cnt.removed : old));
	json_object_set_new(rep, "replaced", json_integer(rc == 0 ? old : 0));
	if (rc == 0) {
		json_object_set_new(rep, "added", json_integer(cnt.added));
		json_object_set_new(rep, "changed", json_integer(cnt.changed));
		json_object_set_new(rep, "unchanged",
		                    json_integer(cnt.unchanged));
		json_object_set_new(rep, "removed", json_integer(cnt.removed));
		json_object_set_new(rep, "kept", json_integer(cnt.kept));
		if (sink.del != NULL)
			json_object_set_new(rep, "revoked",
			                    json_integer(m.revoked));
	}
	json_object_set_new(rep, "rejected_total", json_integer(m.nrej));
	json_object_set_new(rep, "skipped_total", json_integer(m.nskip));
	json_object_set_new(rep, "rejected", m.rejected);
	json_object_set_new(rep, "skipped", m.skipped);
	if (rc == 0)
		j->status = 200;
	else if (j->status == 0)
		j->status = 422;
	j->reply = rep;
	log_info("inteld: import %s (%s): %s, %lld entries, %lld rejected, "
	         "%lld skipped%s%s",
	         j->feed, intel_format_name(j->fmt),
	         rc == 0 ? "replaced" : "failed, old set kept", m.entries,
	         m.nrej, m.nskip, rc == 0 ? "" : ": ",
	         rc == 0 ? "" : buf_cstr(&err));
	buf_free(&err);
}

/* ---- feeds and lists ---------------------------------------------------- */

static void
run_small(struct writer *wr, struct wjob *j)
{
	struct buf err;
	struct iwtxn *w;
	json_t *res = json_object();
	long long now = (long long)time(NULL);
	int rc = 0;

	buf_init(&err, 4096);
	if ((w = istore_write_begin(wr->st, &err)) == NULL) {
		j->status = 500;
		goto out;
	}
	j->status = 200;
	switch (j->kind) {
	case WJ_FEED_ADD: {
		json_t *old = istore_feed_wget(w, j->feed);

		if (old != NULL) {
			/* a change: what is not given stays, and so do
			 * the time it was added and what imports noted */
			json_object_del(j->arg, "added");
			json_object_update_missing(j->arg, old);
			json_decref(old);
		} else {
			if (json_object_get(j->arg, "priority") == NULL)
				json_object_set_new(
				    j->arg, "priority",
				    json_integer(j->default_priority));
			if (json_object_get(j->arg, "description") == NULL)
				json_object_set_new(j->arg, "description",
				                    json_string(""));
			j->status = 201;
		}
		rc = istore_feed_put(w, j->feed, j->arg);
		if (rc == 0) {
			json_decref(res);
			res = json_deep_copy(j->arg);
			json_object_set_new(res, "name", json_string(j->feed));
			json_object_del(res, "misp_events");
		}
		break;
	}
	case WJ_FEED_DEL:
		rc = istore_feed_del(w, j->feed);
		if (rc == 0) {
			j->status = 404;
			json_object_set_new(res, "error",
			                    json_pack("{s:s, s:s}", "code",
			                              "not_found", "message",
			                              "no such feed"));
		} else
			json_object_set_new(res, "removed",
			                    json_string(j->feed));
		if (rc == 1)
			rc = 0;
		break;
	case WJ_LIST_ADD:
	case WJ_LIST_DEL: {
		size_t i;
		json_t *e;
		long long changed = 0;

		json_array_foreach(j->arg, i, e)
		{
			struct intel_rec r;
			const char *v =
			    json_string_value(json_object_get(e, "indicator"));
			json_t *t;

			memset(&r, 0, sizeof(r));
			if (intel_parse(INTEL_ANY, v, strlen(v), &r.ind, NULL,
			                0) == -1)
				fatalx("%s: an entry checked by the loop "
				       "does not parse",
				       __func__);
			if (j->kind == WJ_LIST_DEL) {
				rc = istore_del(w, j->feed, &r.ind);
				changed += rc > 0;
				if (rc == -1)
					break;
				rc = 0;
				continue;
			}
			r.verdict = strcmp(j->feed, ISTORE_ALLOW) == 0
			                ? INTEL_BENIGN
			                : INTEL_MALICIOUS;
			r.score = r.verdict == INTEL_BENIGN ? 0 : 100;
			r.first_seen = r.last_seen = now;
			if ((t = json_object_get(e, "expires")) != NULL)
				r.expires = json_integer_value(t);
			if ((t = json_object_get(e, "comment")) != NULL)
				snprintf(r.reference, sizeof(r.reference), "%s",
				         json_string_value(t));
			if ((t = json_object_get(e, "tags")) != NULL)
				snprintf(r.tags, sizeof(r.tags), "%s",
				         json_string_value(t));
			rc = istore_put(w, j->feed, &r, now);
			if (rc == -1)
				break;
			changed++;
			rc = 0;
		}
		json_object_set_new(res, "list",
		                    json_string(j->feed + strlen("site:")));
		json_object_set_new(
		    res, j->kind == WJ_LIST_ADD ? "added" : "removed",
		    json_integer(changed));
		if (j->kind == WJ_LIST_DEL && changed == 0)
			j->status = 404;
		break;
	}
	default:
		fatalx("%s: job kind %d", __func__, j->kind);
	}
	if (rc == -1) {
		istore_write_abort(w);
		j->status = 500;
		goto out;
	}
	if (istore_write_commit(w, &err) == -1) {
		j->status = 500;
		goto out;
	}
out:
	if (j->status >= 500) {
		json_decref(res);
		res = json_pack("{s:{s:s, s:s}}", "error", "code", "store",
		                "message",
		                err.len ? buf_cstr(&err)
		                        : "the store failed (see the log)");
	}
	j->reply = res;
	buf_free(&err);
}

static void *
writer_main(void *arg)
{
	struct writer *wr = arg;
	struct wjob *j;
	char c = 1;

	pthread_mutex_lock(&wr->mu);
	for (;;) {
		while (wr->queue == NULL && !wr->stop)
			pthread_cond_wait(&wr->cv, &wr->mu);
		if (wr->queue == NULL)
			break;
		j = wr->queue;
		wr->queue = j->next;
		if (wr->queue == NULL)
			wr->qtail = &wr->queue;
		j->next = NULL;
		wr->busy = 1;
		pthread_mutex_unlock(&wr->mu);
		if (__atomic_load_n(&wr->cancel, __ATOMIC_RELAXED)) {
			/* stopping now: what was queued is not done */
			j->status = 503;
			j->reply =
			    json_pack("{s:{s:s, s:s}}", "error", "code",
			              "stopping", "message",
			              "vigil-inteld is stopping; nothing was "
			              "changed");
		} else if (j->kind == WJ_IMPORT)
			run_import(wr, j);
		else
			run_small(wr, j);
		pthread_mutex_lock(&wr->mu);
		wr->busy = 0;
		*wr->dtail = j;
		wr->dtail = &j->next;
		pthread_mutex_unlock(&wr->mu);
		while (write(wr->pipe[1], &c, 1) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&wr->mu);
	}
	pthread_mutex_unlock(&wr->mu);
	return NULL;
}

static void
writer_wake(evutil_socket_t fd, short what, void *arg)
{
	struct writer *wr = arg;
	struct wjob *list, *j;
	char b[256];

	(void)what;
	while (read(fd, b, sizeof(b)) > 0)
		;
	pthread_mutex_lock(&wr->mu);
	list = wr->done;
	wr->done = NULL;
	wr->dtail = &wr->done;
	pthread_mutex_unlock(&wr->mu);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		wr->on_done(j, wr->arg);
	}
}

struct writer *
writer_start(struct istore *st, struct event_base *base,
             void (*done)(struct wjob *j, void *arg), void *arg)
{
	struct writer *wr;

	if ((wr = calloc(1, sizeof(*wr))) == NULL)
		return NULL;
	wr->st = st;
	wr->qtail = &wr->queue;
	wr->dtail = &wr->done;
	wr->on_done = done;
	wr->arg = arg;
	pthread_mutex_init(&wr->mu, NULL);
	pthread_cond_init(&wr->cv, NULL);
	if (pipe2(wr->pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		free(wr);
		return NULL;
	}
	wr->ev =
	    event_new(base, wr->pipe[0], EV_READ | EV_PERSIST, writer_wake, wr);
	if (wr->ev == NULL || event_add(wr->ev, NULL) == -1 ||
	    pthread_create(&wr->th, NULL, writer_main, wr) != 0)
		fatalx("%s: cannot start the writer thread", __func__);
	return wr;
}

void
writer_push(struct writer *wr, struct wjob *j)
{
	j->next = NULL;
	pthread_mutex_lock(&wr->mu);
	*wr->qtail = j;
	wr->qtail = &j->next;
	pthread_cond_signal(&wr->cv);
	pthread_mutex_unlock(&wr->mu);
}

int
writer_busy(struct writer *wr)
{
	int b;

	pthread_mutex_lock(&wr->mu);
	b = wr->busy || wr->queue != NULL;
	pthread_mutex_unlock(&wr->mu);
	return b;
}

void
writer_cancel(struct writer *wr)
{
	__atomic_store_n(&wr->cancel, 1, __ATOMIC_RELAXED);
}

void
writer_stop_with(struct writer *wr, void (*late)(struct wjob *j, void *arg))
{
	if (wr == NULL)
		return;
	wr->on_done = late;
	pthread_mutex_lock(&wr->mu);
	wr->stop = 1;
	pthread_cond_signal(&wr->cv);
	pthread_mutex_unlock(&wr->mu);
	pthread_join(wr->th, NULL);
	/* Jobs finished after the loop stopped: nobody to answer. */
	while (wr->done != NULL) {
		struct wjob *j = wr->done;

		wr->done = j->next;
		wr->on_done(j, wr->arg);
	}
	event_free(wr->ev);
	close(wr->pipe[0]);
	close(wr->pipe[1]);
	pthread_mutex_destroy(&wr->mu);
	pthread_cond_destroy(&wr->cv);
	free(wr);
}
