/*
 * stream.c: live updates for the web console. GET /api/v1/stream answers
 * text/event-stream and stays open (http_req_stream_*): one event per
 * change, named by its kind ("task", "agent", "finding", "enrollment")
 * with a JSON object naming what changed, and a comment line every
 * [admin] stream_keepalive. The console reloads what an event names; while
 * it has no stream it polls, so a stream is an improvement, never a
 * dependency.
 *
 * Streams are bounded ([admin] max_streams in all, STREAM_PER_PRINCIPAL
 * per user or key: 429 beyond) and last only as long as the credentials
 * that opened them: those are checked again at each keepalive, and at once
 * after a logout, a key revocation or a change to a user (stream_recheck).
 * Each kind names the least role that may see it, checked per stream
 * against the role it was opened with.
 *
 * The parts of vigild that change state call stream_emit with one line.
 * One change has no caller: an agent going offline, which is the age of
 * its last heartbeat (older than 3 poll intervals; admin.c), not a write.
 * While any stream is open a timer looks once a second for the agents
 * whose last_seen crossed that line since its previous look, a range of
 * the agents_last_seen index (usually empty; never a scan of the fleet),
 * and sends each as an agent event with "state": "offline". The gateway
 * sends "state": "online" when an offline agent checks in again.
 * Events are coalesced: one per kind and object every STREAM_COALESCE_MS,
 * the latest data winning; past STREAM_KIND_MAX_IDS objects of one kind
 * in one window, a single event without an id says "reload them all".
 *
 * Several nodes on one PostgreSQL database (docs/scale-out.md): each
 * event, once coalesced, also goes to the other nodes (node.c, a NOTIFY
 * on the channel the nodes listen on), which send it to their own
 * consoles as it is; so a console sees every node's changes. The offline
 * look is each node's own (it reads the database).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "center.h"
#include "metrics.h"

#define C(r) ((struct center *)(r)->arg)

#define STREAM_PER_PRINCIPAL 8
#define STREAM_COALESCE_MS   250
#define STREAM_KIND_MAX_IDS  256
#define STREAM_BUCKETS       256
#define STREAM_OFFLINE_TICK  1 /* s */

struct stream_kind {
	const char *name;
	int role;        /* the least role that sees it */
	const char *key; /* the member of its data naming the object */
};

static const struct stream_kind stream_kinds[] = {
    {"task", ROLE_READONLY, "id"},
    {"agent", ROLE_READONLY, "id"},
    {"finding", ROLE_READONLY, "agent_id"},
    {"enrollment", ROLE_READONLY, "id"},
};
#define STREAM_NKINDS     (sizeof(stream_kinds) / sizeof(stream_kinds[0]))
#define STREAM_KIND_AGENT 1 /* its index in stream_kinds */

struct stream {
	struct stream *prev, *next;
	struct streams *all;
	struct http_stream *hs;
	char who[128]; /* the principal: "user:NAME" or "key:ID" */
	char cred[65]; /* SHA-256 of its session id or API key */
	int is_key;
	int role; /* granted when it opened */
};

/* An object that had an event in the current window. */
struct coalesce {
	struct coalesce *next; /* hash chain */
	size_t kind;
	char *id;
	char *pending;  /* data waiting for the window's end, or NULL */
	long long sent; /* ms: the last event of it went out */
};

struct streams {
	struct center *c;
	struct stream *head;
	int n;
	struct event *keepalive, *recheck, *flush, *offline;
	long long
	    offline_line; /* last_seen below it was offline at the last look */
	struct coalesce *table[STREAM_BUCKETS];
	size_t nids[STREAM_NKINDS];
	int flooded[STREAM_NKINDS]; /* "reload all" due at the flush */
	long long flood_at[STREAM_NKINDS];
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
stream_declare_metrics(void)
{
	metrics_declare("vigil_admin_streams", METRIC_GAUGE,
	                "live update streams open (GET /api/v1/stream)");
	metrics_declare("vigil_stream_events_total", METRIC_COUNTER,
	                "events sent on live update streams (one per stream "
	                "it went to), by type");
	metrics_declare("vigil_streams_closed_total", METRIC_COUNTER,
	                "live update streams ended, by reason (client: it "
	                "left; slow: it did not read; credentials: its "
	                "session or key ended or changed role; stop)");
	metrics_declare("vigil_streams_refused_total", METRIC_COUNTER,
	                "live update streams refused with 429 (max_streams, "
	                "or 8 per user or key)");
	metrics_set("vigil_admin_streams", NULL, 0);
}

/* --- streams -------------------------------------------------------------- */

static void
stream_forget(struct stream *st, const char *reason)
{
	struct streams *ss = st->all;
	char labels[64];

	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		ss->head = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	ss->n--;
	metrics_set("vigil_admin_streams", NULL, ss->n);
	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	metrics_add("vigil_streams_closed_total", labels, 1);
	explicit_bzero(st->cred, sizeof(st->cred));
	free(st);
}

/* The client left (or the connection timed out). */
static void
stream_closed(struct http_stream *hs, void *arg)
{
	(void)hs;
	stream_forget(arg, "client");
}

/* 0, or -1 when the stream was dropped (st is freed then). */
static int
stream_write(struct stream *st, const char *p, size_t len)
{
	if (http_req_stream_send(st->hs, p, len) == 0)
		return 0;
	stream_forget(st, "slow");
	return -1;
}

static void
stream_end(struct stream *st, const char *reason)
{
	http_req_stream_end(st->hs);
	stream_forget(st, reason);
}

/* Ends the streams whose credentials no longer grant their role. */
static void
stream_check_all(struct streams *ss, int keepalive)
{
	static const char ka[] = ": keepalive\n\n";
	struct stream *st, *next;
	int role;

	for (st = ss->head; st != NULL; st = next) {
		next = st->next;
		role = auth_recheck(ss->c, st->is_key, st->cred);
		if (role != st->role) {
			log_info("stream: closing %s's live update stream: %s",
			         st->who,
			         role == ROLE_NONE ? "its session or key ended"
			                           : "its role changed");
			stream_end(st, "credentials");
			continue;
		}
		if (keepalive)
			(void)stream_write(st, ka, sizeof(ka) - 1);
	}
}

static void
stream_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct streams *ss = arg;
	struct timeval tv = {ss->c->conf.stream_keepalive, 0};

	(void)fd;
	(void)what;
	stream_check_all(ss, 1);
	if (ss->head != NULL)
		evtimer_add(ss->keepalive, &tv);
}

static void
stream_recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stream_check_all(arg, 0);
}

void
stream_recheck(struct center *c)
{
	if (c->streams != NULL && c->streams->head != NULL)
		event_active(c->streams->recheck, EV_TIMEOUT, 0);
}

/* --- events --------------------------------------------------------------- */

static struct streams *streams_get(struct center *c);

/* Writes one event to every stream of this node whose role may see it. */
static void
stream_send_local(struct streams *ss, size_t kind, const char *data)
{
	const struct stream_kind *k = &stream_kinds[kind];
	struct stream *st, *next;
	struct buf ev;
	char labels[64];
	int sent = 0;

	buf_init(&ev, 1 << 20);
	buf_printf(&ev, "event: %s\ndata: %s\n\n", k->name, data);
	if (buf_ok(&ev) != 0) {
		log_warnx("stream: %s event dropped (too large)", k->name);
		buf_free(&ev);
		return;
	}
	for (st = ss->head; st != NULL; st = next) {
		next = st->next;
		if (st->role < k->role)
			continue;
		if (stream_write(st, (const char *)ev.data, ev.len) == 0)
			sent++;
	}
	snprintf(labels, sizeof(labels), "type=\"%s\"", k->name);
	if (sent > 0)
		metrics_add("vigil_stream_events_total", labels, sent);
	buf_free(&ev);
}

/* The same on every node of the database: here, and through the other
 * nodes' notifications (node.c), for the consoles connected to them. */
static void
stream_send_all(struct streams *ss, size_t kind, const char *data)
{
	stream_send_local(ss, kind, data);
	node_stream_notify(ss->c, stream_kinds[kind].name, data);
}

void
stream_remote(struct center *c, const char *type, const char *data)
{
	size_t k;

	for (k = 0; k < STREAM_NKINDS; k++)
		if (strcmp(stream_kinds[k].name, type) == 0)
			break;
	/* Another node's event (coalesced there): for this node's
	 * consoles, and not sent back. */
	if (k == STREAM_NKINDS || c->streams == NULL ||
	    c->streams->head == NULL)
		return;
	stream_send_local(c->streams, k, data);
}

static size_t
stream_hash(size_t kind, const char *id)
{
	size_t h = 5381 + kind;

	for (; *id != '\0'; id++)
		h = h * 33 + (unsigned char)*id;
	return h % STREAM_BUCKETS;
}

static void
stream_flush_arm(struct streams *ss, long long ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	if (evtimer_pending(ss->flush, &tv))
		return; /* armed already, for sooner or the same time */
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ss->flush, &tv);
}

/* Sends what waited for its window, forgets objects whose window ended,
 * and runs again while any remain. */
static void
stream_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct streams *ss = arg;
	struct coalesce **pp, *co;
	long long now = now_ms(), soonest = -1, due;
	size_t b, k;

	(void)fd;
	(void)what;
	for (k = 0; k < STREAM_NKINDS; k++) {
		if (!ss->flooded[k])
			continue;
		due = ss->flood_at[k] + STREAM_COALESCE_MS - now;
		if (due > 0) {
			if (soonest < 0 || due < soonest)
				soonest = due;
			continue;
		}
		ss->flooded[k] = 0;
		stream_send_all(ss, k, "{}");
	}
	for (b = 0; b < STREAM_BUCKETS; b++) {
		for (pp = &ss->table[b]; (co = *pp) != NULL;) {
			due = co->sent + STREAM_COALESCE_MS - now;
			if (due > 0) {
				if (soonest < 0 || due < soonest)
					soonest = due;
				pp = &co->next;
				continue;
			}
			if (co->pending != NULL) {
				stream_send_all(ss, co->kind, co->pending);
				free(co->pending);
				co->pending = NULL;
				co->sent = now;
				if (soonest < 0 || STREAM_COALESCE_MS < soonest)
					soonest = STREAM_COALESCE_MS;
				pp = &co->next;
				continue;
			}
			*pp = co->next;
			ss->nids[co->kind]--;
			free(co->id);
			free(co);
		}
	}
	if (soonest >= 0)
		stream_flush_arm(ss, soonest);
}

static void stream_emit_now(struct center *c, const char *type, json_t *data);

struct stream_pending {
	struct center *c;
	const char *type; /* a literal */
	json_t *data;
};

static void
stream_emit_committed(void *arg, int committed)
{
	struct stream_pending *p = arg;

	if (committed)
		stream_emit_now(p->c, p->type, p->data);
	else
		json_decref(p->data);
	free(p);
}

/* A change in a transaction (an admin request's, with its audit entry)
 * is announced once committed, and never when rolled back. */
/* Events are made while this node has a console connected, or while
 * other nodes of its database may have one. */
static int
stream_wanted(struct center *c)
{
	if (c->streams != NULL && c->streams->head != NULL)
		return 1;
	return node_shares_streams(c) && streams_get(c) != NULL;
}

void
stream_emit(struct center *c, const char *type, json_t *data)
{
	struct stream_pending *p;

	if (!stream_wanted(c) || data == NULL || c->store == NULL) {
		stream_emit_now(c, type, data);
		return;
	}
	if ((p = malloc(sizeof(*p))) == NULL) {
		json_decref(data);
		return;
	}
	p->c = c;
	p->type = type;
	p->data = data;
	store_after_commit(c->store, stream_emit_committed, p);
}

static void
stream_emit_now(struct center *c, const char *type, json_t *data)
{
	struct streams *ss = c->streams;
	struct coalesce *co;
	const char *id;
	char *text;
	long long now;
	size_t k, b;

	for (k = 0; k < STREAM_NKINDS; k++)
		if (strcmp(stream_kinds[k].name, type) == 0)
			break;
	if (k == STREAM_NKINDS)
		fatalx("%s: unknown event type %s", __func__, type);
	if (ss == NULL || data == NULL ||
	    (ss->head == NULL && !node_shares_streams(c))) {
		json_decref(data);
		return;
	}
	id = json_string_value(json_object_get(data, stream_kinds[k].key));
	if (id == NULL)
		fatalx("%s: %s event without %s", __func__, type,
		       stream_kinds[k].key);
	now = now_ms();
	b = stream_hash(k, id);
	for (co = ss->table[b]; co != NULL; co = co->next)
		if (co->kind == k && strcmp(co->id, id) == 0)
			break;
	if (co == NULL && ss->nids[k] >= STREAM_KIND_MAX_IDS) {
		/* A flood of one kind (a bulk change): one "reload all". */
		if (!ss->flooded[k]) {
			ss->flooded[k] = 1;
			ss->flood_at[k] = now;
			stream_flush_arm(ss, STREAM_COALESCE_MS);
		}
		json_decref(data);
		return;
	}
	if ((text = json_dumps(data, JSON_COMPACT)) == NULL) {
		json_decref(data);
		return;
	}
	if (co == NULL) {
		if ((co = calloc(1, sizeof(*co))) == NULL ||
		    (co->id = strdup(id)) == NULL) {
			free(co);
			json_decref(data);
			/* Out of memory: still tell the clients. */
			stream_send_all(ss, k, text);
			free(text);
			return;
		}
		co->kind = k;
		co->next = ss->table[b];
		ss->table[b] = co;
		ss->nids[k]++;
		co->sent = now;
		stream_send_all(ss, k, text);
		free(text);
		stream_flush_arm(ss, STREAM_COALESCE_MS);
	} else {
		/* Within its window: the latest data goes at its end. */
		free(co->pending);
		co->pending = text;
		stream_flush_arm(ss, co->sent + STREAM_COALESCE_MS - now);
	}
	json_decref(data);
}

void
stream_emit_id(struct center *c, const char *type, const char *id)
{
	if (!stream_wanted(c) || id == NULL)
		return;
	stream_emit(c, type, json_pack("{s:s}", "id", id));
}

/* --- agents going offline ---------------------------------------------------
 */

/* An agent is online while last_seen >= this (admin.c, agent_state). */
static long long
stream_offline_line(struct center *c)
{
	return (long long)time(NULL) - 3 * c->conf.poll_interval;
}

static void
stream_offline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct streams *ss = arg;
	struct timeval tv = {STREAM_OFFLINE_TICK, 0};
	struct store_rows *q;
	long long line;

	(void)fd;
	(void)what;
	if (ss->head == NULL)
		return; /* rearmed by the next stream */
	line = stream_offline_line(ss->c);
	if (line > ss->offline_line) {
		/* Online at the last look, offline now. */
		q = store_query(
		    ss->c->store,
		    "SELECT id FROM agents WHERE last_seen >= ? AND "
		    "last_seen < ? AND status = 'active'",
		    S_INT(ss->offline_line), S_INT(line));
		/* Each node with a console looks for itself: sent here
		 * only, never to the other nodes. */
		while (q != NULL && store_next(q) == 1 && ss->head != NULL) {
			char line_buf[128];

			snprintf(line_buf, sizeof(line_buf),
			         "{\"id\":\"%.64s\",\"state\":\"offline\"}",
			         store_text(q, 0));
			stream_send_local(ss, STREAM_KIND_AGENT, line_buf);
		}
		store_done(q);
	}
	/* A reload that lengthened poll_interval moves the line back. */
	ss->offline_line = line;
	evtimer_add(ss->offline, &tv);
}

/* --- the route -------------------------------------------------------------
 */

static struct streams *
streams_get(struct center *c)
{
	struct streams *ss;

	if (c->streams != NULL)
		return c->streams;
	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return NULL;
	ss->c = c;
	ss->keepalive = evtimer_new(c->base, stream_keepalive_cb, ss);
	ss->recheck = evtimer_new(c->base, stream_recheck_cb, ss);
	ss->flush = evtimer_new(c->base, stream_flush_cb, ss);
	ss->offline = evtimer_new(c->base, stream_offline_cb, ss);
	if (ss->keepalive == NULL || ss->recheck == NULL || ss->flush == NULL ||
	    ss->offline == NULL) {
		if (ss->keepalive != NULL)
			event_free(ss->keepalive);
		if (ss->recheck != NULL)
			event_free(ss->recheck);
		if (ss->flush != NULL)
			event_free(ss->flush);
		if (ss->offline != NULL)
			event_free(ss->offline);
		free(ss);
		return NULL;
	}
	c->streams = ss;
	return ss;
}

static void
stream_refuse(struct http_req *r, const char *fmt, long long n)
{
	metrics_add("vigil_streams_refused_total", NULL, 1);
	http_set_header(r, "Retry-After", "30");
	http_reply_error(r, 429, "too_many_streams", fmt, n);
}

/* GET /api/v1/stream */
static void
stream_open(struct http_req *r)
{
	static const char hello[] = ": vigil live updates\n\n";
	struct center *c = C(r);
	struct streams *ss;
	struct stream *st, *o;
	struct timeval tv = {c->conf.stream_keepalive, 0};
	int mine = 0;

	if (c->stopping) {
		http_reply_error(r, 503, "stopping", "the center is stopping");
		return;
	}
	if ((ss = streams_get(c)) == NULL ||
	    (st = calloc(1, sizeof(*st))) == NULL) {
		http_reply_error(r, 500, "internal_error", "out of memory");
		return;
	}
	if (auth_credential(r, &st->is_key, st->cred) == -1) {
		/* Not reached: the authorizer found a credential. */
		free(st);
		http_reply_error(r, 401, "unauthorized",
		                 "authentication required");
		return;
	}
	for (o = ss->head; o != NULL; o = o->next)
		if (strcmp(o->who, r->who) == 0)
			mine++;
	if (ss->n >= c->conf.max_streams) {
		free(st);
		stream_refuse(r,
		              "the center has %lld live update streams open, "
		              "its limit ([admin] max_streams); the console "
		              "polls instead, retry later",
		              c->conf.max_streams);
		return;
	}
	if (mine >= STREAM_PER_PRINCIPAL) {
		free(st);
		stream_refuse(r,
		              "%lld live update streams are open for this user "
		              "or key already (the limit); close a console tab",
		              (long long)STREAM_PER_PRINCIPAL);
		return;
	}
	snprintf(st->who, sizeof(st->who), "%s", r->who);
	st->role = r->role;
	st->all = ss;
	http_set_header(r, "X-Accel-Buffering", "no");
	st->hs = http_req_stream_start(r, 200, "text/event-stream",
	                               (size_t)c->conf.stream_queue,
	                               stream_closed, st);
	if (st->hs == NULL) { /* HEAD, or an error answered */
		free(st);
		return;
	}
	st->next = ss->head;
	if (ss->head != NULL)
		ss->head->prev = st;
	ss->head = st;
	ss->n++;
	metrics_set("vigil_admin_streams", NULL, ss->n);
	if (!evtimer_pending(ss->keepalive, NULL))
		evtimer_add(ss->keepalive, &tv);
	if (!evtimer_pending(ss->offline, NULL)) {
		struct timeval otv = {STREAM_OFFLINE_TICK, 0};

		ss->offline_line = stream_offline_line(c);
		evtimer_add(ss->offline, &otv);
	}
	(void)stream_write(st, hello, sizeof(hello) - 1);
}

void
stream_shutdown(struct center *c)
{
	struct streams *ss = c->streams;
	struct coalesce *co;
	size_t b;

	if (ss == NULL)
		return;
	while (ss->head != NULL)
		stream_end(ss->head, "stop");
	for (b = 0; b < STREAM_BUCKETS; b++)
		while ((co = ss->table[b]) != NULL) {
			ss->table[b] = co->next;
			free(co->pending);
			free(co->id);
			free(co);
		}
	event_free(ss->keepalive);
	event_free(ss->recheck);
	event_free(ss->flush);
	event_free(ss->offline);
	free(ss);
	c->streams = NULL;
}

const struct http_route stream_admin_routes[] = {
    {"GET", "/api/v1/stream", stream_open, 0, "stream", 0, ROLE_READONLY},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
