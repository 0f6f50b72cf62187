/*
 * ingest.c: parsing and durable storage of agents' event batches, off the
 * event loop.
 *
 * gw_events (events.c) defers the request and hands it here with a copy of
 * its body. A parser thread checks the batch (src/proto/events.c) and
 * passes it on, or sends it back refused (400 with the parser's message).
 * One writer thread, with its own SQLite connection, takes every batch
 * waiting and stores them all in one transaction: a group commit, so one
 * fsync covers many batches while the loop goes on with TLS and the parser
 * with the next batches. The finished jobs go back to the loop (a pipe
 * wakes it), which answers each request with its acknowledgement.
 *
 * The guarantees stay those of the single-threaded path: a batch is
 * acknowledged only after the commit that holds it; a failed transaction
 * answers 503 + Retry-After to every batch in it and the agents send them
 * again (rows are keyed by (agent, seq), stored with ON CONFLICT DO
 * NOTHING, so nothing is stored twice). The queues are bounded
 * (INGEST_MAX_RAW bytes of bodies waiting for the parser, about
 * INGEST_MAX_QUEUED events waiting for the writer): past them a batch is
 * refused with 503 at once, so a flood cannot take more memory than that.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "center.h"
#include "events.h"
#include "jsonarena.h"
#include "metrics.h"

#define INGEST_MAX_QUEUED 200000     /* events waiting for the writer */
#define INGEST_MAX_RAW    (64 << 20) /* bytes of bodies to parse */
/* Events per transaction, about: the loop's own writes (heartbeats, task
 * states) wait for the writer's transaction, so it is kept to tens of ms. */
#define INGEST_MAX_TXN 4000
/* Rows per INSERT statement: one statement step per 32 events instead of
 * one per event (the rest of a batch goes one row at a time). */
#define INGEST_ROWS 32
#define EVENT_COLS  8 /* parameters per row */
#define EVENT_INSERT                                                           \
	"INSERT INTO events (agent_id, seq, time, received_at, type, level, "  \
	"task_id, data) VALUES "
#define EVENT_TUPLE    "(?, ?, ?, ?, ?, ?, ?, ?)"
#define EVENT_CONFLICT " ON CONFLICT (agent_id, seq) DO NOTHING"

struct ingest_job {
	struct ingest_job *next;
	struct http_req *req; /* deferred; answered on the loop */
	char *agent;
	uint8_t *body; /* until parsed */
	size_t len;
	char *bad; /* the parser's message: answered 400 */
	struct event_batch b;
	long long now;
	int stored; /* rows inserted; -1: the transaction failed */
};

struct ingest {
	struct center *c;
	struct store *store; /* the writer's own connection */
	pthread_t thread, parser;
	pthread_mutex_t lock;
	pthread_cond_t cond, cond_raw;      /* writer's, parser's */
	struct ingest_job *raw, **raw_tail; /* to parse */
	size_t raw_bytes;
	struct ingest_job *todo, **todo_tail; /* parsed, to store */
	size_t todo_events; /* in todo and in the writer's hands */
	struct ingest_job *done, **done_tail;
	int stop, writer_stop;
	int started, writer_started, parser_started;
	int wake[2]; /* writer -> loop */
	struct event *ev_done;
	/* INSERT of INGEST_ROWS events */
	char sql_rows[sizeof(EVENT_INSERT) + INGEST_ROWS * sizeof(EVENT_TUPLE) +
	              2 * INGEST_ROWS + sizeof(EVENT_CONFLICT)];
};

/* Rows of a job from first on, for store_exec_each. */
struct job_rows {
	struct ingest_job *j;
	size_t first, per; /* per: rows per statement */
};

static void
job_free(struct ingest_job *j)
{
	event_batch_free(&j->b);
	free(j->body);
	free(j->bad);
	free(j->agent);
	free(j);
}

static void
event_rows(void *arg, size_t i, struct store_arg *v)
{
	struct job_rows *r = arg;
	struct ingest_job *j = r->j;
	size_t k;

	for (k = 0; k < r->per; k++, v += EVENT_COLS) {
		struct event_in *e = &j->b.ev[r->first + i * r->per + k];

		v[0] = S_TEXT(j->agent);
		v[1] = S_INT(e->seq);
		v[2] = S_INT(e->time);
		v[3] = S_INT(j->now);
		v[4] = S_TEXT(e->type);
		v[5] = e->level[0] ? S_TEXT(e->level) : S_NULL;
		v[6] = e->task_id[0] ? S_TEXT(e->task_id) : S_NULL;
		v[7] = S_TEXT(e->data);
	}
}

/* Stores the jobs in one transaction; sets each job's stored. */
static void
ingest_store(struct ingest *g, struct ingest_job *jobs)
{
	struct store *s = g->store;
	struct ingest_job *j;
	struct job_rows r;
	size_t full;
	int n, m;

	if (store_begin(s) == -1)
		goto fail;
	for (j = jobs; j != NULL; j = j->next) {
		full = j->b.n / INGEST_ROWS;
		r.j = j;
		r.first = 0;
		r.per = INGEST_ROWS;
		n = store_exec_each(s, g->sql_rows, INGEST_ROWS * EVENT_COLS,
		                    full, event_rows, &r);
		r.first = full * INGEST_ROWS;
		r.per = 1;
		m = n < 0 ? -1
		          : store_exec_each(
		                s, EVENT_INSERT EVENT_TUPLE EVENT_CONFLICT,
		                EVENT_COLS, j->b.n - r.first, event_rows, &r);
		if (m < 0) {
			store_rollback(s);
			goto fail;
		}
		j->stored = n + m;
	}
	if (store_commit(s) == -1) {
		store_rollback(s);
		goto fail;
	}
	return;
fail:
	for (j = jobs; j != NULL; j = j->next)
		j->stored = -1;
}

/* Job j is finished (with the lock held): back to the loop. */
static void
job_done(struct ingest *g, struct ingest_job *j, struct ingest_job *last)
{
	*g->done_tail = j;
	g->done_tail = &last->next;
	/* A full pipe already holds a wake-up: EAGAIN is fine. */
	if (write(g->wake[1], "x", 1) == -1 && errno != EAGAIN)
		log_warn("ingest: waking the event loop");
}

static void *
ingest_main(void *arg)
{
	struct ingest *g = arg;
	struct ingest_job *jobs, *last;
	size_t n;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (g->todo == NULL && !g->writer_stop)
			pthread_cond_wait(&g->cond, &g->lock);
		if (g->todo == NULL)
			break; /* stopping, and nothing left to store */
		/* Take the head of the queue, up to about INGEST_MAX_TXN
		 * events, so one transaction stays short. */
		jobs = last = g->todo;
		n = last->b.n;
		while (last->next != NULL &&
		       n + last->next->b.n <= INGEST_MAX_TXN) {
			last = last->next;
			n += last->b.n;
		}
		g->todo = last->next;
		if (g->todo == NULL)
			g->todo_tail = &g->todo;
		last->next = NULL;
		pthread_mutex_unlock(&g->lock);

		ingest_store(g, jobs);

		pthread_mutex_lock(&g->lock);
		g->todo_events -= n;
		job_done(g, jobs, last);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void *
parse_main(void *arg)
{
	struct ingest *g = arg;
	struct ingest_job *j;
	struct buf err;
	int rc;

	buf_init(&err, 4096);
	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (g->raw == NULL && !g->stop)
			pthread_cond_wait(&g->cond_raw, &g->lock);
		if ((j = g->raw) == NULL)
			break; /* stopping, and nothing left to parse */
		g->raw = j->next;
		if (g->raw == NULL)
			g->raw_tail = &g->raw;
		j->next = NULL;
		pthread_mutex_unlock(&g->lock);

		buf_reset(&err);
		if ((rc = events_parse(j->body, j->len, &j->b, &err)) == -1)
			j->bad = strdup(buf_cstr(&err)); /* NULL: 503 */
		else if (rc == -2) /* out of memory: 503, sent again */
			log_warnx("ingest: out of memory parsing a batch of "
			          "%zu bytes; the agent sends it again",
			          j->len);
		free(j->body);
		j->body = NULL;

		pthread_mutex_lock(&g->lock);
		g->raw_bytes -= j->len;
		if (rc == 0) {
			g->todo_events += j->b.n;
			*g->todo_tail = j;
			g->todo_tail = &j->next;
			pthread_cond_signal(&g->cond);
		} else {
			j->stored = -1;
			job_done(g, j, j);
		}
	}
	pthread_mutex_unlock(&g->lock);
	buf_free(&err);
	return NULL;
}

/* On the loop: answers every finished job. */
static void
ingest_done(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *g = arg;
	struct ingest_job *jobs, *j, *next;
	char drain[256];

	(void)what;
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&g->lock);
	jobs = g->done;
	g->done = NULL;
	g->done_tail = &g->done;
	pthread_mutex_unlock(&g->lock);
	for (j = jobs; j != NULL; j = j->next)
		if (j->stored > 0) {
			forward_kick(g->c); /* targets that are up send */
			intel_kick(g->c);   /* verdicts for them */
			break;
		}
	for (j = jobs; j != NULL; j = j->next) {
		size_t i;

		/* One per finding: stream_emit coalesces them per agent. */
		for (i = 0; j->bad == NULL && j->stored > 0 && i < j->b.n; i++)
			if (strcmp(j->b.ev[i].type, "finding") == 0)
				stream_emit(
				    g->c, "finding",
				    json_pack("{s:s, s:I}", "agent_id",
				              j->agent, "seq",
				              (json_int_t)j->b.ev[i].seq));
	}
	for (j = jobs; j != NULL; j = next) {
		next = j->next;
		if (j->bad != NULL) {
			metrics_add("vigil_event_batches_total",
			            "result=\"bad\"", 1);
			http_reply_error(j->req, 400, "bad_request", "%s",
			                 j->bad);
		} else if (j->stored < 0) {
			/* Nothing of it was stored: the agent keeps the
			 * batch and sends it again. */
			http_set_header(j->req, "Retry-After", "5");
			http_reply_error(j->req, 503, "store_busy",
			                 "store busy; send again");
		} else {
			metrics_add("vigil_events_stored_total", NULL,
			            j->stored);
			metrics_add("vigil_events_duplicate_total", NULL,
			            (double)(j->b.n - (size_t)j->stored));
			metrics_add("vigil_event_batches_total",
			            "result=\"stored\"", 1);
			http_reply_json(j->req, 200,
			                json_pack("{s:I, s:i, s:i}", "ack",
			                          (json_int_t)j->b.max_seq,
			                          "stored", j->stored,
			                          "duplicates",
			                          (int)j->b.n - j->stored));
		}
		job_free(j);
	}
}

int
ingest_start(struct center *c, struct buf *err)
{
	struct ingest *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		buf_printf(err, "out of memory");
		return -1;
	}
	g->c = c;
	g->wake[0] = g->wake[1] = -1;
	{
		size_t k, n;

		n = (size_t)snprintf(g->sql_rows, sizeof(g->sql_rows), "%s",
		                     EVENT_INSERT);
		for (k = 0; k < INGEST_ROWS; k++) {
			n += (size_t)snprintf(g->sql_rows + n,
			                      sizeof(g->sql_rows) - n, "%s%s",
			                      k > 0 ? ", " : "", EVENT_TUPLE);
			if (n >= sizeof(g->sql_rows))
				fatalx("%s: multi-row insert too long",
				       __func__);
		}
		n += (size_t)snprintf(g->sql_rows + n, sizeof(g->sql_rows) - n,
		                      "%s", EVENT_CONFLICT);
		if (n >= sizeof(g->sql_rows))
			fatalx("%s: multi-row insert too long", __func__);
	}
	g->raw_tail = &g->raw;
	g->todo_tail = &g->todo;
	g->done_tail = &g->done;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	pthread_cond_init(&g->cond_raw, NULL);
	c->ingest = g;
	if ((g->store = store_open(center_store_target(c), center_migrations,
	                           center_nmigrations, err)) == NULL)
		return -1;
	if (pipe2(g->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		buf_printf(err, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((g->ev_done = event_new(c->base, g->wake[0], EV_READ | EV_PERSIST,
	                            ingest_done, g)) == NULL ||
	    event_add(g->ev_done, NULL) == -1) {
		buf_printf(err, "cannot watch the writer's pipe");
		return -1;
	}
	/* jansson's allocation functions are process-wide: set them before
	 * any second thread exists. */
	json_arena_install();
	if (pthread_create(&g->thread, NULL, ingest_main, g) != 0) {
		buf_printf(err, "cannot start the writer thread");
		return -1;
	}
	g->writer_started = 1;
	if (pthread_create(&g->parser, NULL, parse_main, g) != 0) {
		buf_printf(err, "cannot start the parser thread");
		return -1;
	}
	g->parser_started = 1;
	g->started = 1;
	return 0;
}

int
ingest_submit(struct center *c, struct http_req *r, char *agent,
              const uint8_t *body, size_t len, long long now)
{
	struct ingest *g = c->ingest;
	struct ingest_job *j;
	int full;

	if (g == NULL || !g->started)
		return -1;
	pthread_mutex_lock(&g->lock);
	full = g->stop || g->todo_events >= INGEST_MAX_QUEUED ||
	       g->raw_bytes + len > INGEST_MAX_RAW;
	pthread_mutex_unlock(&g->lock);
	if (full || (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	if ((j->body = malloc(len + 1)) == NULL ||
	    (j->req = http_req_defer(r)) == NULL) {
		free(j->body);
		free(j);
		return -1;
	}
	memcpy(j->body, body, len);
	j->len = len;
	j->agent = agent;
	j->now = now;
	pthread_mutex_lock(&g->lock);
	g->raw_bytes += len;
	*g->raw_tail = j;
	g->raw_tail = &j->next;
	pthread_cond_signal(&g->cond_raw);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void
ingest_stop(struct center *c)
{
	struct ingest *g = c->ingest;

	if (g == NULL)
		return;
	/* The parser parses what is queued, then the writer stores it, and
	 * both end; the requests are answered below, while the servers
	 * exist. */
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_signal(&g->cond_raw);
	pthread_mutex_unlock(&g->lock);
	if (g->parser_started)
		pthread_join(g->parser, NULL);
	pthread_mutex_lock(&g->lock);
	g->writer_stop = 1;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (g->writer_started)
		pthread_join(g->thread, NULL);
	if (g->wake[0] != -1)
		ingest_done(g->wake[0], EV_READ, g);
	if (g->ev_done)
		event_free(g->ev_done);
	if (g->wake[0] != -1) {
		close(g->wake[0]);
		close(g->wake[1]);
	}
	store_close(g->store);
	pthread_cond_destroy(&g->cond);
	pthread_cond_destroy(&g->cond_raw);
	pthread_mutex_destroy(&g->lock);
	free(g);
	c->ingest = NULL;
}
