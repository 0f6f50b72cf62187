/*
 * work.c: the agent's task machinery, next to the heartbeat loop of
 * run.c. Four threads:
 *
 *   poller    long-polls GET /v1/tasks and queues what arrives;
 *   worker    runs queued tasks one at a time through the table of task
 *             kinds (kinds.c), reporting progress and the outcome;
 *   sender    sends the on-disk spool to POST /v1/events in batches and
 *             acknowledges (deletes) only what the center has stored;
 *   reporter  delivers the final reports ("done", "failed") that did not
 *             reach the center at the first try, oldest first, with
 *             backoff, so the worker goes on with the next task.
 *
 * Every event is written to the spool (durable) before anything tries to
 * send it, so a dead center, a killed agent or a reboot loses nothing;
 * the center stores batches idempotently by sequence number. Final reports
 * waiting for the center and the ids of the tasks received lately (the
 * center sends a task again when it has not heard of it; it must not run
 * twice) are kept in <data dir>/reports.json across restarts.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "spool.h"
#include "tls.h"
#include "taskrun.h"
#include "work.h"

#define POLL_WAIT        25 /* < the gateway's default 30 s timeout */
#define SEND_MAX_EVENTS  500
#define SEND_MAX_BYTES   (4u << 20)
#define QUEUE_MAX        64
#define SEEN_MAX         256
#define REPORT_MAX       256 /* final reports waiting for the center */
#define REPORT_BACKOFF   15  /* seconds, at most, between tries */
#define REPORTS_FILE     "reports.json"
#define REPORTS_MAX_SIZE (64u << 20)
#define REFUSED_DIR      "refused" /* events the center refused for good */
#define REFUSED_KEEP     64        /* files kept there, newest */
#define REFUSED_PENDING  16        /* refused events not yet acknowledged */

/* A final report the center has not taken yet. */
struct report {
	char id[40];
	json_t *body; /* {"state": ..., "result": ..., "reason": ...} */
};

struct work {
	struct agent_state *st;
	struct spool *spool;
	pthread_mutex_t lock; /* spool, queue, flags */
	pthread_cond_t cond;  /* queue changed, events appended, stop */
	pthread_t poller, worker, sender, reporter;
	int started;
	volatile int stop;
	json_t *queue[QUEUE_MAX]; /* tasks waiting for the worker */
	size_t nqueue;
	char seen[SEEN_MAX][40]; /* task ids received lately (ring) */
	size_t nseen;
	struct report reports[REPORT_MAX]; /* oldest first */
	size_t nreports;
	char p_reports[PATH_MAX];
	atomic_int cancel; /* the running task was cancelled */
};

/* Sleeps up to secs, waking early on stop or a signal of cond. */
static void
wait_cond(struct work *w, double secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	if (!w->stop)
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	pthread_mutex_unlock(&w->lock);
}

int
work_event(struct work *w, const char *type, const char *level,
           const char *task_id, json_t *data)
{
	json_t *e;
	char *text;
	int rc;

	e = json_pack("{s:I, s:s, s:O}", "time", (json_int_t)time(NULL), "type",
	              type, "data", data ? data : json_object());
	if (e == NULL)
		return -1;
	if (level != NULL && *level != '\0')
		json_object_set_new(e, "level", json_string(level));
	if (task_id != NULL)
		json_object_set_new(e, "task_id", json_string(task_id));
	text = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	if (text == NULL)
		return -1;
	pthread_mutex_lock(&w->lock);
	rc = spool_append(w->spool, text, strlen(text), NULL);
	if (rc == -1)
		log_warnx("work: event not spooled: %s", spool_error(w->spool));
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	free(text);
	return rc;
}

/* --- sender ----------------------------------------------------------- */

/*
 * Events the center refused for good (400 or 413 naming them, which no
 * resend changes: for instance an event type or field a newer agent knows
 * and an older center does not). Each is set aside in <data
 * dir>/refused/<seq>.json and sent in its place as a "refused" event
 * under the same seq, so the spool moves on, the loss is visible on the
 * center, and the original stays on the host for the operator.
 */
struct refused {
	uint64_t seq[REFUSED_PENDING]; /* substituted until acknowledged */
	char why[REFUSED_PENDING][512];
	char kept[REFUSED_PENDING][48]; /* "refused/<seq>.json" or "" */
	size_t n;
	uint64_t probe_end; /* send small batches until this seq is acked */
	size_t limit;       /* events per batch now */
};

static int
refused_find(const struct refused *rf, uint64_t seq)
{
	size_t i;

	for (i = 0; i < rf->n; i++)
		if (rf->seq[i] == seq)
			return (int)i;
	return -1;
}

/* Forgets the refused events up to ack (delivered as "refused"). */
static void
refused_acked(struct refused *rf, uint64_t ack)
{
	size_t i, j = 0;

	for (i = 0; i < rf->n; i++) {
		if (rf->seq[i] <= ack)
			continue;
		rf->seq[j] = rf->seq[i];
		memcpy(rf->why[j], rf->why[i], sizeof(rf->why[j]));
		memcpy(rf->kept[j], rf->kept[i], sizeof(rf->kept[j]));
		j++;
	}
	rf->n = j;
	if (ack >= rf->probe_end)
		rf->limit = SEND_MAX_EVENTS;
}

/* The answer is a Vigil error ({"error": {"code": ...}}), not a page from
 * something in between (a proxy's 400 says nothing about our events). */
static int
center_error(const struct center_reply *rep)
{
	json_t *e = json_object_get(rep->json, "error");

	return json_is_string(json_object_get(e, "code"));
}

/* The index of the event a refusal names ("events[3].data: ..."), or -1. */
static long
refused_index(const struct center_reply *rep, size_t n)
{
	json_t *e = json_object_get(rep->json, "error");
	const char *f = json_string_value(json_object_get(e, "field"));
	const char *m = json_string_value(json_object_get(e, "message"));
	unsigned long k;
	int used = 0;

	if (f == NULL)
		f = m;
	if (f == NULL || sscanf(f, "events[%lu]%n", &k, &used) != 1 ||
	    used == 0 || k >= n)
		return -1;
	return (long)k;
}

/*
 * Keeps a refused event's payload in <data dir>/refused/<seq>.json (0600),
 * at most REFUSED_KEEP files (the oldest goes). Writes the file's path
 * relative to the data directory into kept, or "" when it could not.
 */
static void
refused_keep(struct work *w, const struct spool_event *se, char *kept, size_t n)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 64], oldest[64] = "";
	struct dirent *de;
	struct buf err;
	size_t count = 0;
	DIR *d;

	kept[0] = '\0';
	snprintf(dir, sizeof(dir), "%s/" REFUSED_DIR, w->st->dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_warnx("work: %s: %s", dir, strerror(errno));
		return;
	}
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strlen(de->d_name) != 25 ||
			    strcmp(de->d_name + 20, ".json") != 0)
				continue;
			count++;
			if (oldest[0] == '\0' || strcmp(de->d_name, oldest) < 0)
				snprintf(oldest, sizeof(oldest), "%s",
				         de->d_name);
		}
		closedir(d);
	}
	if (count >= REFUSED_KEEP && oldest[0] != '\0') {
		snprintf(path, sizeof(path), "%s/%s", dir, oldest);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%020llu.json", dir,
	         (unsigned long long)se->seq);
	buf_init(&err, 256);
	if (tls_write_file(path, se->data, se->len, 0600, &err) == -1)
		log_warnx("work: %s", buf_cstr(&err));
	else
		snprintf(kept, n, REFUSED_DIR "/%020llu.json",
		         (unsigned long long)se->seq);
	buf_free(&err);
}

/* What is sent in place of a refused event. */
static json_t *
refused_event(const struct spool_event *se, json_t *payload, const char *why,
              const char *kept)
{
	const char *type = json_string_value(json_object_get(payload, "type"));

	return json_pack("{s:I, s:I, s:s, s:s, s:{s:s, s:s, s:I, s:s?}}", "seq",
	                 (json_int_t)se->seq, "time", (json_int_t)time(NULL),
	                 "type", "refused", "level", "warning", "data",
	                 "reason", why, "type", type != NULL ? type : "",
	                 "bytes", (json_int_t)se->len, "kept",
	                 kept[0] != '\0' ? kept : NULL);
}

/* The batch as {"events": [...]}: spooled JSON plus its seq; refused
 * events replaced by their "refused" event. */
static json_t *
batch_json(const struct spool_batch *b, const struct refused *rf)
{
	json_t *a = json_array(), *e;
	size_t i;
	int k;

	for (i = 0; i < b->n; i++) {
		const struct spool_event *se = &b->ev[i];
		json_t *payload =
		    json_loadb((const char *)se->data, se->len, 0, NULL);

		if (se->kind == SPOOLREC_EVENT &&
		    (k = refused_find(rf, se->seq)) >= 0) {
			e = refused_event(se, payload, rf->why[k], rf->kept[k]);
		} else if (se->kind == SPOOLREC_GAP || payload == NULL ||
		           json_object_get(payload, "type") == NULL) {
			/* A gap record, or (never expected) an unreadable
			 * payload: sent as a gap so the loss is visible. */
			e = json_pack("{s:I, s:I, s:s, s:s, s:o}", "seq",
			              (json_int_t)se->seq, "time",
			              (json_int_t)time(NULL), "type", "gap",
			              "level", "warning", "data",
			              payload && json_is_object(payload)
			                  ? json_incref(payload)
			                  : json_object());
		} else {
			e = json_incref(payload);
			json_object_set_new(e, "seq",
			                    json_integer((json_int_t)se->seq));
		}
		json_decref(payload);
		json_array_append_new(a, e);
	}
	return json_pack("{s:o}", "events", a);
}

/*
 * A refusal no resend changes: the center (or the gateway's size limit)
 * refused the batch as such. Sets the refused event aside when the reply
 * names it or the batch is a single event, else halves the batch to find
 * it. Returns 0 to send again at once, -1 to back off (the refusal is not
 * about one event we can set aside: even a "refused" event was refused,
 * or too many are pending).
 */
static int
sender_refused(struct work *w, struct refused *rf, const struct spool_batch *b,
               const struct center_reply *rep)
{
	const struct spool_event *se;
	json_t *payload;
	const char *type;
	long k = b->n == 1 ? 0 : refused_index(rep, b->n);

	if (rf->probe_end < b->ev[b->n - 1].seq)
		rf->probe_end = b->ev[b->n - 1].seq;
	if (k < 0) {
		rf->limit = b->n / 2 > 0 ? b->n / 2 : 1;
		log_warnx(
		    "work: the center refused a batch of %zu events (%s); "
		    "sending %zu at a time to find the event at fault",
		    b->n, rep->msg, rf->limit);
		return 0;
	}
	se = &b->ev[k];
	if (se->kind != SPOOLREC_EVENT || refused_find(rf, se->seq) >= 0 ||
	    rf->n == REFUSED_PENDING)
		return -1;
	snprintf(rf->why[rf->n], sizeof(rf->why[rf->n]), "%.511s", rep->msg);
	refused_keep(w, se, rf->kept[rf->n], sizeof(rf->kept[rf->n]));
	rf->seq[rf->n] = se->seq;
	payload = json_loadb((const char *)se->data, se->len, 0, NULL);
	type = json_string_value(json_object_get(payload, "type"));
	log_warnx("work: event %llu (%s, %zu bytes) refused by the center: %s; "
	          "kept in %s/%s, sent as a 'refused' event instead",
	          (unsigned long long)se->seq, type != NULL ? type : "?",
	          se->len, rep->msg, w->st->dir,
	          rf->kept[rf->n][0] ? rf->kept[rf->n]
	                             : "(nowhere: see above)");
	json_decref(payload);
	rf->n++;
	return 0;
}

static void *
sender_main(void *arg)
{
	struct work *w = arg;
	struct spool_batch b;
	struct center_reply rep;
	struct refused rf;
	double backoff = 0;
	json_t *body;
	int n;

	memset(&rf, 0, sizeof(rf));
	rf.limit = SEND_MAX_EVENTS;
	spool_batch_init(&b);
	while (!w->stop) {
		pthread_mutex_lock(&w->lock);
		n = spool_peek_batch(w->spool, rf.limit, SEND_MAX_BYTES, &b);
		body = n > 0 ? batch_json(&b, &rf) : NULL;
		pthread_mutex_unlock(&w->lock);
		if (n <= 0) {
			if (n == -1)
				log_warnx("work: spool: %s",
				          spool_error(w->spool));
			wait_cond(w, 1);
			continue;
		}
		if (center_call(w->st, 1, 0, "POST", "/v1/events", body,
		                &rep) == 0 &&
		    rep.status == 200 &&
		    json_is_integer(json_object_get(rep.json, "ack"))) {
			uint64_t ack = (uint64_t)json_integer_value(
			    json_object_get(rep.json, "ack"));

			pthread_mutex_lock(&w->lock);
			if (spool_ack(w->spool, ack) == -1)
				log_warnx("work: ack %llu: %s",
				          (unsigned long long)ack,
				          spool_error(w->spool));
			pthread_mutex_unlock(&w->lock);
			refused_acked(&rf, ack);
			log_debug("work: %d events delivered (ack %llu)", n,
			          (unsigned long long)ack);
			backoff = 0;
		} else if ((rep.status == 400 || rep.status == 413) &&
		           center_error(&rep) &&
		           sender_refused(w, &rf, &b, &rep) == 0) {
			/* Sent again at once, without the event at fault. */
		} else {
			/* Kept in the spool; sent again later. */
			/* At most 15 s: after an outage the backlog should
			 * flow soon after the center is back. */
			backoff = backoff == 0 ? 1 : backoff * 2;
			if (backoff > 15)
				backoff = 15;
			if (backoff < 15)
				log_warnx(
				    "work: sending %d events failed (%s); "
				    "again in %.0f s",
				    n, rep.msg[0] ? rep.msg : "no answer",
				    backoff);
			else
				log_debug("work: sending %d events failed (%s)",
				          n, rep.msg);
			center_reply_free(&rep);
			json_decref(body);
			wait_cond(w, backoff);
			continue;
		}
		center_reply_free(&rep);
		json_decref(body);
	}
	spool_batch_free(&b);
	return NULL;
}

/* --- reports.json ------------------------------------------------------ */

/*
 * Writes the waiting reports and the ring of seen task ids (oldest first)
 * to reports.json: 0600, temp file, fsync, rename. Under w->lock, so
 * writers never overlap and the file always matches memory at some point.
 * A failure is logged; memory stays right and the next write catches up.
 */
static void
reports_save(struct work *w)
{
	json_t *o, *a, *seen;
	struct buf err;
	size_t i, n, first;
	char *text;

	a = json_array();
	seen = json_array();
	for (i = 0; i < w->nreports; i++)
		json_array_append_new(a, json_pack("{s:s, s:O}", "id",
		                                   w->reports[i].id, "body",
		                                   w->reports[i].body));
	n = w->nseen < SEEN_MAX ? w->nseen : SEEN_MAX;
	first = w->nseen < SEEN_MAX ? 0 : w->nseen % SEEN_MAX;
	for (i = 0; i < n; i++)
		json_array_append_new(
		    seen, json_string(w->seen[(first + i) % SEEN_MAX]));
	o = json_pack("{s:i, s:o, s:o}", "version", 1, "reports", a, "seen",
	              seen);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	buf_init(&err, 1024);
	if (text == NULL ||
	    tls_write_file(w->p_reports, text, strlen(text), 0600, &err) == -1)
		log_warnx("work: cannot save the task reports: %s",
		          text ? buf_cstr(&err) : "out of memory");
	buf_free(&err);
	free(text);
}

static int
task_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n > 0 && n < sizeof(((struct work *)0)->seen[0]);
}

/* Remembers id as received. Under w->lock (or before the threads). */
static void
seen_add(struct work *w, const char *id)
{
	snprintf(w->seen[w->nseen % SEEN_MAX], sizeof(w->seen[0]), "%s", id);
	w->nseen++;
}

/*
 * Loads reports.json, if there is one, before the threads start. A file
 * that does not parse as what reports_save() writes is set aside as
 * reports.json.corrupt (logged) and the agent starts without it.
 */
static void
reports_load(struct work *w)
{
	struct buf text, err;
	json_t *o = NULL, *v;
	json_error_t je;
	size_t i;
	char bad[PATH_MAX + 16];

	if (!agent_file_exists(w->p_reports))
		return;
	buf_init(&text, REPORTS_MAX_SIZE);
	buf_init(&err, 1024);
	if (tls_read_file(w->p_reports, REPORTS_MAX_SIZE, &text, &err) == -1) {
		log_warnx("work: %s", buf_cstr(&err));
		goto corrupt;
	}
	o = json_loadb((const char *)text.data, text.len, 0, &je);
	if (o == NULL || !json_is_array(json_object_get(o, "reports")) ||
	    !json_is_array(json_object_get(o, "seen"))) {
		log_warnx("work: %s: not a reports file (%s)", w->p_reports,
		          o ? "members missing" : je.text);
		goto corrupt;
	}
	json_array_foreach(json_object_get(o, "seen"), i, v)
	{
		if (!task_id_ok(json_string_value(v))) {
			log_warnx("work: %s: seen[%zu]: not a task id",
			          w->p_reports, i);
			goto corrupt;
		}
	}
	json_array_foreach(json_object_get(o, "reports"), i, v)
	{
		const char *id = json_string_value(json_object_get(v, "id"));
		json_t *body = json_object_get(v, "body");

		if (!task_id_ok(id) || !json_is_object(body) ||
		    !json_is_string(json_object_get(body, "state"))) {
			log_warnx("work: %s: reports[%zu]: not a report",
			          w->p_reports, i);
			goto corrupt;
		}
	}
	json_array_foreach(json_object_get(o, "seen"), i, v)
	    seen_add(w, json_string_value(v));
	json_array_foreach(json_object_get(o, "reports"), i, v)
	{
		if (w->nreports == REPORT_MAX)
			break;
		snprintf(w->reports[w->nreports].id, sizeof(w->reports[0].id),
		         "%s", json_string_value(json_object_get(v, "id")));
		w->reports[w->nreports++].body =
		    json_incref(json_object_get(v, "body"));
	}
	if (w->nreports > 0)
		log_info("work: %zu task reports from the last run to deliver",
		         w->nreports);
	goto out;
corrupt:
	snprintf(bad, sizeof(bad), "%s.corrupt", w->p_reports);
	if (rename(w->p_reports, bad) == 0)
		log_warnx("work: %s set aside as %s; starting without it",
		          w->p_reports, bad);
	else
		log_warn("work: rename %s", w->p_reports);
out:
	json_decref(o);
	buf_free(&text);
	buf_free(&err);
}

/* --- poller ----------------------------------------------------------- */

/* 1 when id was received before; else remembers it. Under w->lock. */
static int
task_seen(struct work *w, const char *id)
{
	size_t i, n = w->nseen < SEEN_MAX ? w->nseen : SEEN_MAX;

	if (id == NULL)
		return 1;
	if (!task_id_ok(id))
		return 1;
	for (i = 0; i < n; i++)
		if (strcmp(w->seen[i], id) == 0)
			return 1;
	seen_add(w, id);
	return 0;
}

static void *
poller_main(void *arg)
{
	struct work *w = arg;
	struct center_reply rep;
	char path[64];
	double backoff = 0, wait;
	size_t i;
	json_t *t;
	int fresh;

	snprintf(path, sizeof(path), "/v1/tasks?wait=%d", POLL_WAIT);
	while (!w->stop) {
		if (center_call(w->st, 1, 0, "GET", path, NULL, &rep) == 0 &&
		    rep.status == 200 &&
		    json_is_array(json_object_get(rep.json, "tasks"))) {
			backoff = 0;
			fresh = 0;
			pthread_mutex_lock(&w->lock);
			json_array_foreach(json_object_get(rep.json, "tasks"),
			                   i, t)
			{
				/* The center sends a task again when it
				 * has not heard of it: run it once. */
				if (task_seen(w, json_string_value(
				                     json_object_get(t, "id"))))
					continue;
				fresh = 1;
				if (w->nqueue < QUEUE_MAX)
					w->queue[w->nqueue++] = json_incref(t);
				else
					/* The center re-sends nothing; the
					 * run times out there, visibly. */
					log_warnx("work: task queue full, "
					          "dropping a task");
			}
			/* Saved before the worker can take them: a
			 * restarted agent must not run them again. */
			if (fresh)
				reports_save(w);
			pthread_cond_broadcast(&w->cond);
			pthread_mutex_unlock(&w->lock);
			center_reply_free(&rep);
			continue;
		}
		/* 503 busy, a dead center, a restart: wait and poll again,
		 * after the center's Retry-After when it gave one (+-10 %),
		 * else 1, 2, 4 ... 30 s, each drawn from its upper half:
		 * a fleet cut off at one instant (a center restart) must
		 * not come back in step. */
		backoff = backoff == 0 ? 1 : backoff * 2;
		if (backoff > 30)
			backoff = 30;
		if (rep.retry_after > 0)
			wait = (double)rep.retry_after *
			       (0.9 + 0.2 * arc4random_uniform(1001) / 1000.0);
		else
			wait = backoff *
			       (0.5 + 0.5 * arc4random_uniform(1001) / 1000.0);
		if (rep.status == 503)
			log_info("work: center busy; polling again in %.1f s",
			         wait);
		else
			log_debug("work: task poll failed (%s); again in "
			          "%.1f s",
			          rep.msg, wait);
		center_reply_free(&rep);
		wait_cond(w, wait);
	}
	return NULL;
}

/* --- worker ------------------------------------------------------------ */

/* 1: the center has taken the report, or never will: 404 and 409 (no such
 * run, or it has ended), 400 and 413 (the report itself is refused; sent
 * again it would hold up every report queued after it). */
static int
report_taken(const struct center_reply *rep)
{
	return rep->status == 200 || rep->status == 409 || rep->status == 404 ||
	       rep->status == 400 || rep->status == 413;
}

/* Queues a final report for the reporter thread; when REPORT_MAX wait
 * already, the oldest is given up (the center times that run out). */
static void
report_queue(struct work *w, const char *task_id, json_t *body)
{
	pthread_mutex_lock(&w->lock);
	if (w->nreports == REPORT_MAX) {
		log_warnx("work: %d task reports waiting; giving up the one of "
		          "task %s",
		          REPORT_MAX, w->reports[0].id);
		json_decref(w->reports[0].body);
		memmove(&w->reports[0], &w->reports[1],
		        (REPORT_MAX - 1) * sizeof(w->reports[0]));
		w->nreports--;
	}
	snprintf(w->reports[w->nreports].id, sizeof(w->reports[0].id), "%s",
	         task_id);
	w->reports[w->nreports++].body = json_incref(body);
	reports_save(w);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
work_report(struct work *w, const char *task_id, const char *state,
            json_t *progress, json_t *result, const char *reason)
{
	struct center_reply rep;
	char path[128];
	json_t *body;
	int final = strcmp(state, "running") != 0, waiting, rc;

	if (!task_id_ok(task_id))
		return -1;
	snprintf(path, sizeof(path), "/v1/tasks/%s", task_id);
	body = json_pack("{s:s}", "state", state);
	if (body == NULL)
		return -1;
	if (progress != NULL)
		json_object_set(body, "progress", progress);
	if (result != NULL)
		json_object_set(body, "result", result);
	if (reason != NULL)
		json_object_set_new(body, "reason", json_string(reason));
	/* Reports already waiting: the center is away, and this one goes
	 * after them. */
	pthread_mutex_lock(&w->lock);
	waiting = w->nreports > 0;
	pthread_mutex_unlock(&w->lock);
	if (!(final && waiting)) {
		if (center_call(w->st, 1, 0, "POST", path, body, &rep) == 0 &&
		    report_taken(&rep)) {
			if (rep.status == 400 || rep.status == 413)
				log_warnx("work: task %s: report '%s' refused "
				          "by the center: %s",
				          task_id, state, rep.msg);
			if (json_is_true(json_object_get(rep.json, "cancel")))
				atomic_store(&w->cancel, 1);
			rc = rep.status == 400 || rep.status == 413 ? -1 : 0;
			center_reply_free(&rep);
			json_decref(body);
			return rc;
		}
		log_warnx("work: task %s: report '%s' failed: %s", task_id,
		          state, rep.msg);
		center_reply_free(&rep);
	}
	/* Progress is not worth keeping: the next one follows. A final
	 * report is: the center would otherwise time the run out although
	 * it finished. */
	if (final) {
		report_queue(w, task_id, body);
		log_info("work: task %s: report '%s' queued; sent again in "
		         "the background",
		         task_id, state);
	}
	json_decref(body);
	return final ? 0 : -1;
}

/* --- reporter ---------------------------------------------------------- */

static void *
reporter_main(void *arg)
{
	struct work *w = arg;
	struct center_reply rep;
	double backoff = 0;
	char id[40], path[128], state[16];
	json_t *body;

	while (!w->stop) {
		pthread_mutex_lock(&w->lock);
		while (w->nreports == 0 && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		memcpy(id, w->reports[0].id, sizeof(id));
		body = json_incref(w->reports[0].body);
		pthread_mutex_unlock(&w->lock);
		snprintf(path, sizeof(path), "/v1/tasks/%s", id);
		snprintf(state, sizeof(state), "%s",
		         json_string_value(json_object_get(body, "state")));
		if (center_call(w->st, 1, 0, "POST", path, body, &rep) == 0 &&
		    report_taken(&rep)) {
			pthread_mutex_lock(&w->lock);
			/* Unless report_queue() gave it up meanwhile. */
			if (w->nreports > 0 &&
			    strcmp(w->reports[0].id, id) == 0) {
				json_decref(w->reports[0].body);
				memmove(&w->reports[0], &w->reports[1],
				        (w->nreports - 1) *
				            sizeof(w->reports[0]));
				w->nreports--;
				reports_save(w);
			}
			pthread_mutex_unlock(&w->lock);
			if (rep.status == 200)
				log_info("work: task %s: report '%s' delivered",
				         id, state);
			else
				log_warnx("work: task %s: report '%s' refused "
				          "by the center (%s); dropped",
				          id, state, rep.msg);
			backoff = 0;
		} else {
			backoff = backoff == 0 ? 1 : backoff * 2;
			if (backoff > REPORT_BACKOFF)
				backoff = REPORT_BACKOFF;
			log_debug("work: task %s: report '%s' failed (%s); "
			          "again in %.0f s",
			          id, state, rep.msg, backoff);
		}
		center_reply_free(&rep);
		json_decref(body);
		if (backoff > 0)
			wait_cond(w, backoff);
	}
	return NULL;
}

/* The outlets of a task run (taskrun.h), ctx being the struct work. */
static int
run_event(void *ctx, const char *type, const char *level, const char *task_id,
          json_t *data)
{
	return work_event(ctx, type, level, task_id, data);
}

static int
run_report(void *ctx, const char *task_id, const char *state, json_t *progress,
           json_t *result, const char *reason)
{
	return work_report(ctx, task_id, state, progress, result, reason);
}

static int
run_stopping(const void *ctx)
{
	return work_stopping(ctx);
}

static const struct taskrun_ops run_ops = {
    .event = run_event,
    .report = run_report,
    .stopping = run_stopping,
};

static void *
worker_main(void *arg)
{
	struct work *w = arg;
	struct task_run run;
	json_t *t;
	size_t i;

	while (!w->stop) {
		pthread_mutex_lock(&w->lock);
		while (w->nqueue == 0 && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		t = w->queue[0];
		for (i = 1; i < w->nqueue; i++)
			w->queue[i - 1] = w->queue[i];
		w->nqueue--;
		pthread_mutex_unlock(&w->lock);

		memset(&run, 0, sizeof(run));
		run.ops = &run_ops;
		run.ctx = w;
		run.st = w->st;
		run.id = json_string_value(json_object_get(t, "id"));
		run.kind = json_string_value(json_object_get(t, "kind"));
		run.params = json_object_get(t, "params");
		run.cancel = &w->cancel;
		atomic_store(&w->cancel, 0);
		if (run.id != NULL && run.kind != NULL)
			kinds_run(&run);
		json_decref(t);
	}
	return NULL;
}

int
work_stopping(const struct work *w)
{
	return w->stop;
}

/* --- life cycle ------------------------------------------------------- */

struct work *
work_start(struct agent_state *st)
{
	struct work *w;
	struct buf err;
	char dir[PATH_MAX + 16];

	/* Loaded once here: the threads only read the state. */
	if (agent_load_proxy_user(st) == -1)
		return NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->st = st;
	buf_init(&err, 2048);
	snprintf(dir, sizeof(dir), "%s/spool", st->dir);
	if ((w->spool = spool_open(dir, NULL, &err)) == NULL) {
		log_warnx("work: %s", buf_cstr(&err));
		buf_free(&err);
		free(w);
		return NULL;
	}
	buf_free(&err);
	if ((size_t)snprintf(w->p_reports, sizeof(w->p_reports), "%s/%s",
	                     st->dir, REPORTS_FILE) >= sizeof(w->p_reports)) {
		log_warnx("work: %s: name too long", st->dir);
		spool_close(w->spool);
		free(w);
		return NULL;
	}
	reports_load(w);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->sender, NULL, sender_main, w) != 0 ||
	    pthread_create(&w->poller, NULL, poller_main, w) != 0 ||
	    pthread_create(&w->worker, NULL, worker_main, w) != 0 ||
	    pthread_create(&w->reporter, NULL, reporter_main, w) != 0)
		fatalx("%s: cannot start threads", __func__);
	w->started = 1;
	return w;
}

void
work_stop(struct work *w)
{
	size_t i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	agent_abort = 1; /* ends the long poll in flight */
	atomic_store(&w->cancel, 1);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->started) {
		/* The poller may sit in a long poll: at most POLL_WAIT s. */
		pthread_join(w->worker, NULL);
		pthread_join(w->sender, NULL);
		pthread_join(w->reporter, NULL);
		pthread_join(w->poller, NULL);
	}
	/* Still waiting: in reports.json for the next start. */
	for (i = 0; i < w->nqueue; i++)
		json_decref(w->queue[i]);
	for (i = 0; i < w->nreports; i++)
		json_decref(w->reports[i].body);
	spool_close(w->spool);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
