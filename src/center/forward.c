/*
 * forward.c: sends stored events to SIEMs over syslog (docs/forwarding.md).
 *
 * Targets live in the forward_targets table, managed through the admin API
 * (/api/v1/forward) and `vigilctl forward`, or by the [forward] targets
 * file, applied at start and on SIGHUP. Each target has its own cursor:
 * the rowid of the last event it has handled (SQLite rowids of the events
 * table only grow while the newest row stays, which retention never
 * deletes). Events are read in rowid order in batches, formatted
 * (src/proto/syslogfmt.c) and written:
 *
 *   tcp, tls  One batch at a time is put into the connection's output
 *             buffer; the cursor is saved only when the buffer has drained
 *             into the socket (the bufferevent's write callback at low
 *             watermark 0). A receiver that is down or slow therefore only
 *             delays delivery: after a reconnect the batch not yet drained is
 *             sent again from the saved cursor (at least once; a receiver
 *             that closes cleanly is noticed by the read side before more is
 *             written). Reconnects back off from 1 s to 60 s.
 *   udp       Best effort: one datagram per message, the cursor moves on
 *             whatever the network does; failed sends and messages too large
 *             for a datagram are counted as dropped.
 *
 * Several nodes on one PostgreSQL database (node.c): each target is served
 * by the node that holds its lease ("forward:NAME"), renewed every second
 * and taken over by another node once it expires. A node that takes a
 * target over starts from the cursor in the store, and a cursor is saved
 * only by a statement that checks, in the same transaction, that the
 * lease is still this node's: a node that lost it can never move the
 * cursor. Events are thus delivered in order and at least once across a
 * handover; once, unless the old holder died between writing a batch to
 * the receiver and saving its cursor (then that batch comes again). The
 * nodes pick up targets added or changed through another node's API every
 * FWD_SYNC seconds.
 *
 * Everything runs on the center's event loop with non-blocking
 * bufferevents (bufferevent_openssl for TLS) rather than in a thread: the
 * store handle and the metrics are single-threaded by design, reads are
 * bounded batches on an indexed key, and socket writes never block. Host
 * names are resolved by evdns on the same loop (/etc/hosts, then DNS), so
 * a slow name server delays only its target; a stream target tries the
 * host's addresses in turn.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <ini.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "center.h"
#include "forward.h"
#include "events.h"
#include "metrics.h"
#include "collproto.h"
#include "pki.h"
#include "schema.h"
#include "syslogfmt.h"
#include "tls.h"

const char *const transports[] = {"udp", "tcp", "tls", "collector"};

static void target_connect(struct fwd_target *t);
static void target_pump(struct fwd_target *t);
static int sync_store(struct center *c);
static void drop_conn(struct fwd_target *t);
static void lease_target(struct fwd_target *t);
static int connect_stream(struct fwd_target *t);

static void
labels(const struct fwd_target *t, char *out, size_t n)
{
	snprintf(out, n, "target=\"%s\"", t->name);
}

static void
count(struct fwd_target *t, const char *metric, double v, double *field)
{
	char l[96];

	labels(t, l, sizeof(l));
	metrics_add(metric, l, v);
	*field += v;
}

static void set_error(struct fwd_target *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_error(struct fwd_target *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->last_error, sizeof(t->last_error), fmt, ap);
	va_end(ap);
	log_warnx("forward: %s: %s", t->name, t->last_error);
	count(t, "vigil_forward_errors_total", 1, &t->errors);
}

/* What the targets send: a center's events; on a collector ([center] role
 * = collector), the findings and events every center fed it
 * (coll_events, collector.c), each with its center and case. */
static int
from_collector(const struct center *c)
{
	return c->conf.role == CENTER_ROLE_COLLECTOR;
}

long long
max_event_id(struct center *c)
{
	struct store_rows *r;
	long long id = 0;

	r = store_query(c->store, from_collector(c)
	                              ? "SELECT MAX(rowid) FROM coll_events"
	                              : "SELECT MAX(rowid) FROM events");
	if (r != NULL && store_next(r) == 1 && !store_isnull(r, 0))
		id = store_int(r, 0);
	store_done(r);
	return id;
}

static void
lease_name(const struct fwd_target *t, char *out, size_t n)
{
	snprintf(out, n, "forward:%s", t->name);
}

/* Stops serving t: another node holds its lease. */
static void
let_go(struct fwd_target *t)
{
	log_info("forward: %s: served by another node now", t->name);
	t->held = 0;
	evtimer_del(t->ev_retry);
	drop_conn(t);
	t->state = ST_IDLE;
}

static int
save_cursor(struct fwd_target *t, long long id)
{
	char l[96], lease[80];
	int n;

	if (id <= t->cursor)
		return 0;
	if (!store_is_pg(t->c->store))
		n = store_exec(t->c->store,
		               "UPDATE forward_targets SET cursor = ? WHERE "
		               "name = ?",
		               S_INT(id), S_TEXT(t->name));
	else {
		/* Moved only while the lease is this node's, checked in
		 * the same statement (and so the same transaction). */
		lease_name(t, lease, sizeof(lease));
		n = store_exec(
		    t->c->store,
		    "UPDATE forward_targets SET cursor = ? WHERE "
		    "name = ? AND EXISTS (SELECT 1 FROM leases WHERE "
		    "name = ? AND node = ? AND expires_at >= ?)",
		    S_INT(id), S_TEXT(t->name), S_TEXT(lease),
		    S_TEXT(node_name(t->c)), S_INT(time(NULL)));
		if (n == 0) {
			t->held = 0; /* target_pump lets go */
			return -1;
		}
	}
	if (n < 0)
		return -1;
	t->cursor = id;
	labels(t, l, sizeof(l));
	metrics_set("vigil_forward_cursor", l, (double)id);
	return 0;
}

static void
pump_later(struct fwd_target *t)
{
	if (t->ev_pump)
		event_active(t->ev_pump, 0, 0);
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	target_pump(arg);
}

static int
wanted(const struct fwd_target *t, const char *type, const char *level)
{
	int i, rank = syslogfmt_level_rank(level);

	if (rank < 0)
		rank = 0;
	if (rank < t->min_rank)
		return 0;
	if (t->ntypes == 0)
		return 1;
	for (i = 0; i < t->ntypes; i++)
		if (strcmp(t->types[i], type) == 0)
			return 1;
	return 0;
}

static int
send_udp(struct fwd_target *t, const struct buf *m)
{
	if (m->len > FWD_UDP_MAX) {
		count(t, "vigil_forward_dropped_total", 1, &t->dropped);
		return 0;
	}
	if (send(t->udp_fd, m->data, m->len, 0) == -1) {
		/* ECONNREFUSED: an ICMP port unreachable for an earlier
		 * datagram. Best effort: count and go on. */
		count(t, "vigil_forward_dropped_total", 1, &t->dropped);
		return 0;
	}
	count(t, "vigil_forward_sent_total", 1, &t->sent);
	return 0;
}

/* Appends one frame holding j (stolen) to out; -1 when out is full. */
static int
coll_put(struct buf *out, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc = -1;

	if (s != NULL)
		rc = syslogfmt_frame(SYSLOGFMT_OCTET, (const uint8_t *)s,
		                     strlen(s), out);
	free(s);
	json_decref(j);
	return rc;
}

/* An event for the collector (src/proto/collproto.h). */
static int
coll_frame(struct buf *out, long long id, const struct syslogfmt_event *e)
{
	json_t *d = e->data ? json_loads(e->data, 0, NULL) : NULL;

	return coll_put(out,
	                json_pack("{s:s, s:I, s:s, s:I, s:I, s:s, s:s?, s:s?, "
	                          "s:s?, s:o}",
	                          "kind", "event", "id", (json_int_t)id,
	                          "agent_id", e->agent_id ? e->agent_id : "",
	                          "seq", (json_int_t)e->seq, "time",
	                          (json_int_t)e->time, "type", e->type, "level",
	                          e->level, "task_id", e->task_id, "hostname",
	                          e->hostname, "data", d ? d : json_object()));
}

static int
coll_commit(struct buf *out, long long upto)
{
	return coll_put(out, json_pack("{s:s, s:I}", "kind", "commit", "upto",
	                               (json_int_t)upto));
}

/*
 * The collector's asset inventory: the agents seen since t->agents_at
 * (all of them on a new connection), one "agent" frame each, queued
 * before the next batch. Best effort: an agent is sent again with its
 * next check-in, so nothing here moves a cursor.
 */
static void
coll_agents(struct fwd_target *t)
{
	struct fwd *f = t->c->fwd;
	struct store_rows *r;
	long long upto = t->agents_at;

	r = store_query(t->c->store,
	                "SELECT " AGENT_COLUMNS ", COALESCE(last_seen, "
	                "enrolled_at, 0) FROM agents WHERE COALESCE(last_seen, "
	                "enrolled_at, 0) > ? ORDER BY id",
	                S_INT(t->agents_at));
	if (r == NULL)
		return;
	buf_reset(&f->out);
	while (store_next(r) == 1) {
		json_t *a = db_agent_json(r);

		if (store_int(r, 18) > upto)
			upto = store_int(r, 18);
		if (coll_put(&f->out,
		             json_pack("{s:s, s:o}", "kind", "agent", "agent",
		                       a ? a : json_object())) == -1)
			break;
	}
	store_done(r);
	if (f->out.len > 0)
		bufferevent_write(t->bev, f->out.data, f->out.len);
	t->agents_at = upto;
}

/*
 * Samples (docs/collector.md): each connection offers every sample the
 * center holds, 200 per second in (received_at, sha256) order; the
 * collector asks ("want HEX") for the content it lacks, which is sent
 * in chunks. Nothing moves a cursor: a connection that breaks offers
 * everything again, and the collector keeps each content once.
 */
static void
coll_offer(struct fwd_target *t)
{
	struct fwd *f = t->c->fwd;
	struct store_rows *r;

	r = store_query(t->c->store,
	                "SELECT sha256, size, agent_id, task_id, path, "
	                "received_at FROM samples WHERE received_at > ? OR "
	                "(received_at = ? AND sha256 > ?) ORDER BY "
	                "received_at, sha256 LIMIT 200",
	                S_INT(t->smp_at), S_INT(t->smp_at), S_TEXT(t->smp_sha));
	if (r == NULL)
		return;
	buf_reset(&f->out);
	while (store_next(r) == 1) {
		if (coll_put(&f->out,
		             json_pack("{s:s, s:s, s:I, s:s?, s:s?, s:s?, s:I}",
		                       "kind", "sample", "sha256",
		                       store_text(r, 0), "size",
		                       (json_int_t)store_int(r, 1), "agent_id",
		                       store_text(r, 2), "task_id",
		                       store_text(r, 3), "path",
		                       store_text(r, 4), "received_at",
		                       (json_int_t)store_int(r, 5))) == -1)
			break;
		t->smp_at = store_int(r, 5);
		snprintf(t->smp_sha, sizeof(t->smp_sha), "%s",
		         store_text(r, 0));
	}
	store_done(r);
	if (f->out.len > 0)
		bufferevent_write(t->bev, f->out.data, f->out.len);
}

/* "want HEX": the content of that sample, in chunks. */
static void
coll_send_sample(struct fwd_target *t, const char *sha)
{
	struct fwd *f = t->c->fwd;
	struct store_rows *r;
	struct buf err;
	char file[4200];
	uint8_t *raw = NULL;
	char *b64 = NULL;
	long long off = 0;
	FILE *fp = NULL;
	int known = 0;

	if (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
		return;
	r = store_query(t->c->store, "SELECT 1 FROM samples WHERE sha256 = ?",
	                S_TEXT(sha));
	known = r != NULL && store_next(r) == 1;
	store_done(r);
	buf_init(&err, 256);
	if (!known || sample_local(t->c, sha, file, sizeof(file), &err) == -1 ||
	    (fp = fopen(file, "rb")) == NULL) {
		log_warnx("forward: %s: the collector asked for sample %s, "
		          "which is not here%s%s",
		          t->name, sha, err.len ? ": " : "", buf_cstr(&err));
		buf_free(&err);
		return;
	}
	buf_free(&err);
	raw = malloc(COLL_CHUNK_MAX);
	b64 = malloc(COLL_CHUNK_MAX / 3 * 4 + 1);
	if (raw == NULL || b64 == NULL)
		goto out;
	for (;;) {
		size_t n = fread(raw, 1, COLL_CHUNK_MAX, fp);
		int end = n < COLL_CHUNK_MAX;

		if (n < COLL_CHUNK_MAX && ferror(fp)) {
			log_warn("forward: %s: %s", t->name, file);
			break;
		}
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
		buf_reset(&f->out);
		if (coll_put(&f->out, json_pack("{s:s, s:s, s:I, s:s, s:b}",
		                                "kind", "chunk", "sha256", sha,
		                                "offset", (json_int_t)off,
		                                "data", b64, "end", end)) ==
		        -1 ||
		    bufferevent_write(t->bev, f->out.data, f->out.len) == -1)
			break;
		off += (long long)n;
		if (end)
			break;
	}
out:
	free(raw);
	free(b64);
	fclose(fp);
}

/*
 * Reads the next batch after sent_upto and queues what the filters let
 * through. Returns the number of rows read (0: nothing new), -1 on a store
 * or buffer failure.
 */
static int
fill_batch(struct fwd_target *t)
{
	struct fwd *f = t->c->fwd;
	struct store_rows *r;
	long long last = t->sent_upto;
	int rows = 0, queued = 0;

	r = store_query(t->c->store,
	                from_collector(t->c)
	                    ? "SELECT e.rowid, e.agent_id, e.seq, e.time, "
	                      "e.type, e.level, e.task_id, e.data, e.hostname, "
	                      "e.center, e.case_id, e.suppressed FROM "
	                      "coll_events e WHERE e.rowid > ? ORDER BY "
	                      "e.rowid LIMIT ?"
	                    : "SELECT e.rowid, e.agent_id, e.seq, e.time, "
	                      "e.type, e.level, e.task_id, e.data, a.hostname "
	                      "FROM events e LEFT JOIN agents a ON a.id = "
	                      "e.agent_id WHERE e.rowid > ? ORDER BY e.rowid "
	                      "LIMIT ?",
	                S_INT(t->sent_upto), S_INT(FWD_BATCH));
	if (r == NULL)
		return -1;
	buf_reset(&f->out);
	while (store_next(r) == 1) {
		struct syslogfmt_event e;
		long long id = store_int(r, 0);
		char *cdata = NULL; /* a collector's: data with its center */

		e.agent_id = store_text(r, 1);
		e.seq = store_int(r, 2);
		e.time = store_int(r, 3);
		e.type = store_text(r, 4);
		e.level = store_text(r, 5);
		e.task_id = store_text(r, 6);
		e.data = store_text(r, 7);
		e.hostname = store_text(r, 8);
		/* Received by the syslog listener: the sender's address. */
		if (e.hostname == NULL && e.agent_id != NULL &&
		    strncmp(e.agent_id, "syslog:", 7) == 0)
			e.hostname = e.agent_id + 7;
		if (e.type == NULL || !wanted(t, e.type, e.level))
			goto next;
		if (from_collector(t->c)) {
			json_t *d;

			/* A finding a baseline suppresses is expected:
			 * stored, not sent on. */
			if (store_int(r, 11) != 0)
				goto next;
			/* Which center it came from, and its case. */
			d = json_loads(e.data ? e.data : "{}", 0, NULL);
			if (!json_is_object(d)) {
				json_decref(d);
				d = json_object();
			}
			json_object_set_new(d, "center",
			                    json_string(store_text(r, 9)));
			if (store_text(r, 10) != NULL)
				json_object_set_new(
				    d, "case_id",
				    json_string(store_text(r, 10)));
			cdata = json_dumps(d, JSON_COMPACT);
			json_decref(d);
			if (cdata != NULL)
				e.data = cdata;
		}
		if (t->transport == FWD_COLLECTOR) {
			if (coll_frame(&f->out, id, &e) == -1) {
				free(cdata);
				break;
			}
			queued++;
			goto next;
		}
		buf_reset(&f->msg);
		if (syslogfmt_format(&t->fmt, &e, &f->msg) == -1) {
			count(t, "vigil_forward_dropped_total", 1, &t->dropped);
			goto next;
		}
		if (t->transport == FWD_UDP) {
			send_udp(t, &f->msg);
			goto next;
		}
		/* The batch buffer is full: stop before this row (a batch
		 * always takes its first row: the buffer holds 8 MiB). */
		if (syslogfmt_frame(t->framing, f->msg.data, f->msg.len,
		                    &f->out) == -1) {
			free(cdata);
			break;
		}
		queued++;
	next:
		free(cdata);
		rows++;
		last = id;
	}
	store_done(r);
	if (t->transport == FWD_UDP) {
		t->sent_upto = last;
		save_cursor(t, last);
		return rows;
	}
	/* The collector acknowledges each batch, filtered rows included:
	 * its "ack" moves the cursor. */
	if (t->transport == FWD_COLLECTOR && rows > 0 &&
	    coll_commit(&f->out, last) == -1)
		return -1;
	if (f->out.len > 0 &&
	    bufferevent_write(t->bev, f->out.data, f->out.len) == -1)
		return -1;
	if (t->transport == FWD_COLLECTOR && rows > 0) {
		/* Waiting for the ack: a collector that stops answering is
		 * a stalled connection like one that stops reading. */
		struct timeval stall = {FWD_STALL, 0};

		bufferevent_set_timeouts(t->bev, &stall, &stall);
	}
	t->sent_upto = last;
	count(t, "vigil_forward_sent_total", queued, &t->sent);
	return rows;
}

static void
update_lag(struct fwd_target *t)
{
	char l[96];

	labels(t, l, sizeof(l));
	metrics_set("vigil_forward_lag_events", l,
	            (double)(max_event_id(t->c) - t->cursor));
}

static void
target_pump(struct fwd_target *t)
{
	int round, n;

	if (t->state != ST_UP || (t->transport == FWD_UDP && t->udp_fd == -1))
		return;
	if (t->transport == FWD_COLLECTOR) {
		/* One batch at a time, until the collector acknowledges
		 * it (read_cb saves the cursor then). */
		if (t->bev == NULL || t->sent_upto > t->cursor)
			return;
	} else if (t->transport != FWD_UDP) {
		if (t->bev == NULL)
			return;
		/* Still draining the previous batch: the write callback
		 * comes back here. */
		if (evbuffer_get_length(bufferevent_get_output(t->bev)) > 0)
			return;
		/* Everything queued is in the socket: now save it. */
		save_cursor(t, t->sent_upto);
		if (!t->held) {
			let_go(t);
			return;
		}
	}
	for (round = 0; round < FWD_ROUNDS; round++) {
		/* Shared store: no new batch once half the lease has gone by
		 * without a renewal (this node's loop was held up): another
		 * node may take the target over soon, and two nodes must not
		 * both be writing to the receiver. The renewal goes on. */
		if (store_is_pg(t->c->store) &&
		    (long long)time(NULL) >=
		        t->lease_until - t->c->conf.node_lease / 2)
			break;
		if ((n = fill_batch(t)) == -1) {
			set_error(t, "cannot read or queue events; retrying");
			break;
		}
		if (n == 0)
			break;
		if (t->transport == FWD_COLLECTOR)
			break; /* the ack comes back to read_cb */
		if (t->transport != FWD_UDP) {
			/* Nothing queued (all filtered out): save and go
			 * on; else wait for the drain. */
			if (evbuffer_get_length(
			        bufferevent_get_output(t->bev)) == 0) {
				save_cursor(t, t->sent_upto);
				if (!t->held) {
					let_go(t);
					return;
				}
				continue;
			}
			break;
		}
		if (!t->held) {
			let_go(t);
			return;
		}
	}
	if (round == FWD_ROUNDS)
		pump_later(t); /* more to do: let the loop breathe first */
	update_lag(t);
}

static void
drop_conn(struct fwd_target *t)
{
	char l[96];
	int had = t->bev != NULL || t->udp_fd != -1;

	if (t->dns_req) {
		struct evdns_getaddrinfo_request *req = t->dns_req;

		t->dns_req = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (t->addrs) {
		evutil_freeaddrinfo(t->addrs);
		t->addrs = t->ai = NULL;
	}
	if (t->bev) {
		bufferevent_free(t->bev);
		t->bev = NULL;
	}
	if (t->udp_fd != -1) {
		close(t->udp_fd);
		t->udp_fd = -1;
	}
	/* What was queued but not drained is sent again from the cursor. */
	t->sent_upto = t->cursor;
	if (had) {
		labels(t, l, sizeof(l));
		metrics_set("vigil_forward_connected", l, 0);
	}
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	target_connect(arg);
}

static void
backoff(struct fwd_target *t)
{
	struct timeval tv;

	drop_conn(t);
	t->state = ST_BACKOFF;
	t->backoff = t->backoff ? t->backoff * 2 : 1;
	if (t->backoff > 60)
		t->backoff = 60;
	tv.tv_sec = t->backoff;
	tv.tv_usec = 0;
	evtimer_add(t->ev_retry, &tv);
}

/* The collector's answers: "ack ROWID" for a stored batch, "error
 * MESSAGE" before it closes. */
static void
coll_read(struct fwd_target *t, struct evbuffer *in)
{
	char *line;
	size_t n;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		char *end;
		long long upto;

		if (strncmp(line, "ack ", 4) == 0) {
			errno = 0;
			upto = strtoll(line + 4, &end, 10);
			if (errno == 0 && *end == '\0' && upto > t->cursor &&
			    upto <= t->sent_upto) {
				struct timeval stall = {FWD_STALL, 0};

				save_cursor(t, upto);
				t->backoff = 0;
				bufferevent_set_timeouts(t->bev, NULL, &stall);
				pump_later(t);
			}
		} else if (strncmp(line, "want ", 5) == 0) {
			coll_send_sample(t, line + 5);
		} else if (strncmp(line, "error ", 6) == 0) {
			set_error(t, "%s:%d: the collector refused: %.400s",
			          t->host, t->port, line + 6);
			t->refused = 1; /* its close is no news */
		}
		free(line);
	}
	if (evbuffer_get_length(in) > 4096) /* not a collector */
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct fwd_target *t = arg;

	if (t->transport == FWD_COLLECTOR) {
		coll_read(t, bufferevent_get_input(bev));
		return;
	}
	/* Receivers do not talk; whatever comes is discarded. */
	evbuffer_drain(bufferevent_get_input(bev),
	               evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	target_pump(arg);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fwd_target *t = arg;
	char l[96];

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_KEEPALIVE,
		           &one, sizeof(one));
		if (t->transport == FWD_COLLECTOR) {
			SSL *s = bufferevent_openssl_get_ssl(bev);
			struct buf why;

			buf_init(&why, 512);
			if (pki_role_allowed(
			        s ? SSL_get0_peer_certificate(s) : NULL,
			        PKI_ROLE_BIT(PKI_ROLE_COLLECTOR),
			        "a center's collector feed", &why) == -1) {
				set_error(t, "%s:%d: not a collector: %s",
				          t->host, t->port, buf_cstr(&why));
				buf_free(&why);
				backoff(t);
				return;
			}
			buf_free(&why);
		}
		t->state = ST_UP;
		/* A collector that refused the last connection (a batch it
		 * could not store) is retried with growing backoff. */
		if (!t->refused)
			t->backoff = 0;
		t->refused = 0;
		t->connected_at = (long long)time(NULL);
		t->last_error[0] = '\0';
		labels(t, l, sizeof(l));
		metrics_set("vigil_forward_connected", l, 1);
		log_info("forward: %s: connected to %s:%d (%s)", t->name,
		         t->host, t->port, transports[t->transport]);
		if (t->transport == FWD_COLLECTOR) {
			t->agents_at = -1; /* a new connection: all */
			t->smp_at = -1;
			t->smp_sha[0] = '\0';
			coll_agents(t);
			coll_offer(t);
		}
		target_pump(t);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		int se = EVUTIL_SOCKET_ERROR();
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

		if (t->refused)
			; /* the reason was the collector's error line */
		else if (vr != X509_V_OK)
			set_error(t,
			          "%s:%d: the receiver's certificate does "
			          "not verify against %s: %s",
			          t->host, t->port, t->ca,
			          tls_verify_error_text(vr));
		else if (e != 0) {
			char s[160];

			ERR_error_string_n(e, s, sizeof(s));
			set_error(t, "%s:%d: TLS: %s", t->host, t->port, s);
		} else if (what & BEV_EVENT_EOF)
			set_error(t,
			          "%s:%d: the receiver closed the "
			          "connection",
			          t->host, t->port);
		else
			set_error(t, "%s:%d: %s", t->host, t->port,
			          se ? evutil_socket_error_to_string(se)
			             : "connection failed");
		/* The next address of the host, if it has one. */
		if (t->state == ST_CONNECTING && t->ai != NULL &&
		    t->ai->ai_next != NULL) {
			t->ai = t->ai->ai_next;
			if (connect_stream(t) == 0)
				return;
		}
		backoff(t);
	}
}

/* Opens the udp socket to the first address that takes it. */
static void
connect_udp(struct fwd_target *t)
{
	struct evutil_addrinfo *ai;
	char l[96];
	int err = 0;

	for (ai = t->addrs; ai != NULL; ai = ai->ai_next) {
		t->udp_fd =
		    socket(ai->ai_family,
		           SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (t->udp_fd != -1 &&
		    connect(t->udp_fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (t->udp_fd != -1)
			close(t->udp_fd);
		t->udp_fd = -1;
	}
	if (ai == NULL) {
		set_error(t, "%s:%d: %s", t->host, t->port,
		          err ? strerror(err) : "no address");
		backoff(t);
		return;
	}
	t->state = ST_UP;
	t->backoff = 0;
	labels(t, l, sizeof(l));
	metrics_set("vigil_forward_connected", l, 1);
	target_pump(t);
}

/* Starts a tcp or tls connection to t->ai; event_cb goes on from there
 * (to the next address when this one fails). 0, or -1 with the error set. */
static int
connect_stream(struct fwd_target *t)
{
	SSL *ssl = NULL;

	if (t->bev) {
		bufferevent_free(t->bev);
		t->bev = NULL;
	}
	if (t->transport == FWD_TLS || t->transport == FWD_COLLECTOR) {
		if ((ssl = SSL_new(t->ctx)) == NULL)
			goto fail;
		/* RFC 5425 5.2: the receiver's certificate must name the
		 * host we were told to send to. */
		SSL_set_tlsext_host_name(ssl, t->host);
		if (SSL_set1_host(ssl, t->host) != 1)
			goto fail;
		t->bev = bufferevent_openssl_socket_new(
		    t->c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE);
		if (t->bev == NULL)
			goto fail;
		ssl = NULL; /* owned by the bufferevent */
		/* A receiver that stops without close_notify is a closed
		 * connection like any other, not a TLS error. */
		bufferevent_openssl_set_allow_dirty_shutdown(t->bev, 1);
	} else if ((t->bev = bufferevent_socket_new(
	                t->c->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	/* No progress writing (connecting, handshake, or a receiver that
	 * stopped reading or vanished without a FIN) for FWD_STALL seconds:
	 * reconnect and send again from the cursor. The timer restarts with
	 * every write that makes progress, so a slow receiver is not cut. */
	{
		struct timeval stall = {FWD_STALL, 0};

		bufferevent_set_timeouts(t->bev, NULL, &stall);
	}
	bufferevent_setcb(t->bev, read_cb, write_cb, event_cb, t);
	bufferevent_enable(t->bev, EV_READ | EV_WRITE);
	t->state = ST_CONNECTING;
	if (bufferevent_socket_connect(t->bev, t->ai->ai_addr,
	                               (int)t->ai->ai_addrlen) == -1) {
		/* event_cb is not called for a failed start. */
		set_error(t, "%s:%d: cannot connect", t->host, t->port);
		return -1;
	}
	return 0;
fail:
	SSL_free(ssl);
	set_error(t, "%s:%d: cannot set up the connection", t->host, t->port);
	return -1;
}

/* The answer of evdns (never called back for a request cancelled by
 * drop_conn(), which may be freeing t). */
static void
resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct fwd_target *t = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;
	t->dns_req = NULL;
	if (result != 0) {
		set_error(t, "%s: %s", t->host, evutil_gai_strerror(result));
		backoff(t);
		return;
	}
	t->addrs = t->ai = res;
	if (t->transport == FWD_UDP)
		connect_udp(t);
	else if (connect_stream(t) == -1)
		backoff(t);
}

/*
 * Resolves the host with evdns (the event loop's own resolver: /etc/hosts,
 * then the name servers of /etc/resolv.conf), so a slow or dead DNS server
 * delays only this target; a numeric address or a hosts file entry is
 * answered at once, from inside evdns_getaddrinfo().
 */
static void
target_connect(struct fwd_target *t)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	char serv[16];

	drop_conn(t);
	if (!t->held) {
		t->state = ST_IDLE; /* another node serves it */
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = t->transport == FWD_UDP ? SOCK_DGRAM : SOCK_STREAM;
	hints.ai_protocol = t->transport == FWD_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	snprintf(serv, sizeof(serv), "%d", t->port);
	t->state = ST_CONNECTING;
	req = evdns_getaddrinfo(t->c->fwd->dns, t->host, serv, &hints,
	                        resolved_cb, t);
	/* NULL: answered (or failed) already, resolved_cb has run. */
	if (req != NULL)
		t->dns_req = req;
}

void
target_free(struct fwd_target *t)
{
	if (t == NULL)
		return;
	drop_conn(t);
	if (t->ev_retry)
		event_free(t->ev_retry);
	if (t->ev_pump)
		event_free(t->ev_pump);
	SSL_CTX_free(t->ctx);
	free(t->ca);
	free(t->cert);
	free(t->key);
	free((char *)t->fmt.center_host);
	free(t);
}

struct fwd_target *
target_new(struct center *c, json_t *spec, long long cursor, struct buf *err)
{
	struct fwd_target *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->c = c;
	if (target_from_json(c->conf.fqdn, c->conf.pki_dir, spec, t, err) == -1)
		goto fail;
	t->from_config =
	    json_is_true(json_object_get(spec, "from_config")) ? 1 : 0;
	t->cursor = t->sent_upto = cursor;
	/* On PostgreSQL, served once its lease is taken (lease_targets). */
	t->held = !store_is_pg(c->store);
	t->ev_retry = evtimer_new(c->base, retry_cb, t);
	t->ev_pump = event_new(c->base, -1, 0, pump_cb, t);
	if (t->ev_retry == NULL || t->ev_pump == NULL)
		goto fail;
	return t;
fail:
	target_free(t);
	return NULL;
}

struct fwd_target *
find(struct fwd *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->t[i]->name, name) == 0)
			return f->t[i];
	return NULL;
}

int
add_running(struct fwd_target *t)
{
	struct fwd *f = t->c->fwd;
	struct fwd_target **n;

	n = realloc(f->t, (f->n + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	f->t = n;
	f->t[f->n++] = t;
	if (store_is_pg(t->c->store))
		lease_target(t); /* this node's at once, unless another's */
	else
		target_connect(t);
	return 0;
}

/* Same settings (what target_spec() shows, and where it comes from). */
static int
same_target(const struct fwd_target *a, const struct fwd_target *b)
{
	json_t *x = target_spec(a), *y = target_spec(b);
	int eq = json_equal(x, y) && a->from_config == b->from_config;

	json_decref(x);
	json_decref(y);
	return eq;
}

/* Stops and frees the running target at index i. */
void
remove_running(struct fwd *f, size_t i)
{
	struct fwd_target *t = f->t[i];
	char lease[80];

	lease_name(t, lease, sizeof(lease));
	node_release(t->c, lease);
	f->t[i] = f->t[--f->n];
	target_free(t);
}

/*
 * SIGHUP: rereads the targets file and brings the running targets in line
 * with it, as a start would: new sections start (cursor per their "from"),
 * targets gone from the file stop and lose their row, changed ones restart
 * with the new settings and their cursor. A file with errors changes
 * nothing: the errors are logged and the running targets kept.
 */
int
forward_reload(struct center *c)
{
	struct buf err;
	int rc = -1;

	if (c->conf.fwd_targets == NULL)
		return 0;
	buf_init(&err, 4096);
	if (tfile_sync(c, &err) == -1) {
		log_warnx("forward: reload refused, the running targets are "
		          "kept:\n%s",
		          buf_cstr(&err));
		goto out;
	}
	rc = sync_store(c);
out:
	buf_free(&err);
	return rc;
}

/*
 * The running targets brought in line with the store: after a reload of
 * the targets file, and on a shared database every FWD_SYNC seconds (a
 * target added, changed or removed through another node's API).
 */
static int
sync_store(struct center *c)
{
	struct fwd *f = c->fwd;
	struct store_rows *r;
	struct buf err;
	size_t i;
	int rc = -1;

	buf_init(&err, 4096);
	r = store_query(c->store,
	                "SELECT name, spec, cursor FROM forward_targets ORDER "
	                "BY name");
	if (r == NULL) {
		log_warnx("forward: reload: cannot read the targets");
		goto out;
	}
	for (i = 0; i < f->n; i++)
		f->t[i]->seen = 0;
	while (store_next(r) == 1) {
		const char *name = store_text(r, 0);
		json_t *spec = json_loads(store_text(r, 1), 0, NULL);
		struct fwd_target *old = find(f, name), *t;

		buf_reset(&err);
		/* A restarted target goes on from where the old one is. */
		t = spec ? target_new(c, spec,
		                      old ? old->cursor : store_int(r, 2), &err)
		         : NULL;
		json_decref(spec);
		if (t == NULL) {
			log_warnx("forward: target %s cannot start: %s%s", name,
			          buf_cstr(&err),
			          old ? "; the running one is kept" : "");
			if (old)
				old->seen = 1;
			continue;
		}
		t->seen = 1;
		if (old != NULL && same_target(old, t)) {
			old->seen = 1;
			target_free(t);
			continue;
		}
		if (old != NULL) {
			for (i = 0; f->t[i] != old; i++)
				;
			f->t[i] = t;
			target_free(old);
			log_info("forward: target %s changed, restarting (%s "
			         "%s:%d, %s)",
			         t->name, transports[t->transport], t->host,
			         t->port, syslogfmt_format_name(t->fmt.format));
			if (store_is_pg(c->store))
				lease_target(t);
			else
				target_connect(t);
			continue;
		}
		if (add_running(t) == -1) {
			log_warnx(
			    "forward: target %s cannot start: out of memory",
			    name);
			target_free(t);
			continue;
		}
		log_info("forward: target %s added (%s %s:%d, %s)", t->name,
		         transports[t->transport], t->host, t->port,
		         syslogfmt_format_name(t->fmt.format));
	}
	store_done(r);
	/* Running but no longer stored: removed from the file. */
	for (i = f->n; i-- > 0;)
		if (!f->t[i]->seen)
			remove_running(f, i);
	rc = 0;
out:
	buf_free(&err);
	return rc;
}

/*
 * On a shared database: takes or renews each target's lease, starts
 * serving the ones it took (from the cursor in the store: the node that
 * had it moved it) and lets go of the ones another node took.
 */
static void
lease_target(struct fwd_target *t)
{
	struct center *c = t->c;
	struct store_rows *r;
	char lease[80];
	int held;

	lease_name(t, lease, sizeof(lease));
	held = node_lease(c, lease);
	if (held)
		t->lease_until = (long long)time(NULL) + c->conf.node_lease;
	if (!held && t->held)
		let_go(t);
	if (!held || t->held)
		return;
	r = store_query(c->store,
	                "SELECT cursor FROM forward_targets WHERE name = ?",
	                S_TEXT(t->name));
	if (r != NULL && store_next(r) == 1) {
		t->cursor = t->sent_upto = store_int(r, 0);
		t->held = 1;
	}
	store_done(r);
	if (!t->held)
		return;
	log_info("forward: %s: served by this node (%s) from event %lld",
	         t->name, node_name(c), t->cursor);
	target_connect(t);
}

static void
lease_targets(struct center *c)
{
	struct fwd *f = c->fwd;
	size_t i;

	for (i = 0; i < f->n; i++)
		lease_target(f->t[i]);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct fwd *f = c->fwd;
	size_t i;

	(void)fd;
	(void)what;
	if (store_is_pg(c->store)) {
		if (++f->ticks % FWD_SYNC == 0)
			sync_store(c);
		lease_targets(c);
	}
	for (i = 0; i < f->n; i++) {
		struct fwd_target *t = f->t[i];

		if (t->state == ST_UP && t->transport == FWD_COLLECTOR &&
		    t->bev != NULL) {
			coll_agents(t); /* agents checked in since */
			coll_offer(t);  /* samples not offered yet */
		}
		if (t->state == ST_UP)
			target_pump(t);
		else
			update_lag(t); /* grows while it is down */
	}
}

int
forward_init(struct center *c)
{
	struct timeval tv = {1, 0};
	struct store_rows *r;
	struct fwd *f;
	struct buf err;

	metrics_declare("vigil_forward_sent_total", METRIC_COUNTER,
	                "messages handed to forwarding targets' connections "
	                "(after a reconnect, a batch not yet written is "
	                "counted again)");
	metrics_declare("vigil_forward_dropped_total", METRIC_COUNTER,
	                "messages not delivered (udp send failures, too large "
	                "for a datagram, unformattable)");
	metrics_declare("vigil_forward_errors_total", METRIC_COUNTER,
	                "connection and TLS errors of forwarding targets");
	metrics_declare("vigil_forward_lag_events", METRIC_GAUGE,
	                "events stored but not yet forwarded, per target");
	metrics_declare("vigil_forward_connected", METRIC_GAUGE,
	                "1 while the target's connection is up");
	metrics_declare("vigil_forward_cursor", METRIC_GAUGE,
	                "rowid of the last event forwarded, per target");
	if ((f = c->fwd = calloc(1, sizeof(*f))) == NULL)
		return -1;
	/* The loop's resolver; it keeps the loop alive only while a name is
	 * being resolved. */
	f->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	                                     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (f->dns == NULL) {
		log_warnx("forward: cannot set up the resolver (evdns)");
		return -1;
	}
	buf_init(&f->msg, 1 << 20);
	buf_init(&f->out, 8u << 20);
	buf_init(&err, 4096);
	if (c->conf.fwd_targets != NULL && tfile_sync(c, &err) == -1) {
		log_warnx("%s", buf_cstr(&err));
		buf_free(&err);
		return -1;
	}
	r = store_query(
	    c->store, "SELECT spec, cursor FROM forward_targets ORDER BY name");
	if (r == NULL) {
		buf_free(&err);
		return -1;
	}
	while (store_next(r) == 1) {
		json_t *spec = json_loads(store_text(r, 0), 0, NULL);
		struct fwd_target *t;

		buf_reset(&err);
		t = spec ? target_new(c, spec, store_int(r, 1), &err) : NULL;
		if (t == NULL || add_running(t) == -1) {
			log_warnx("forward: target %s cannot start: %s",
			          store_text(r, 0), buf_cstr(&err));
			target_free(t);
		}
		json_decref(spec);
	}
	store_done(r);
	buf_free(&err);
	f->ev_tick = event_new(c->base, -1, EV_PERSIST, tick_cb, c);
	return f->ev_tick ? event_add(f->ev_tick, &tv) : -1;
}

void
forward_shutdown(struct center *c)
{
	struct fwd *f = c->fwd;
	size_t i;

	if (f == NULL)
		return;
	if (f->ev_tick) {
		event_free(f->ev_tick);
		f->ev_tick = NULL;
	}
	for (i = 0; i < f->n; i++)
		target_free(f->t[i]);
	free(f->t);
	f->t = NULL;
	f->n = 0;
	if (f->dns) {
		evdns_base_free(f->dns, 0);
		f->dns = NULL;
	}
	buf_free(&f->msg);
	buf_free(&f->out);
	free(f);
	c->fwd = NULL;
}

void
forward_kick(struct center *c)
{
	struct fwd *f = c->fwd;
	size_t i;

	if (f == NULL) /* forward_init() has not run: no target */
		return;
	for (i = 0; i < f->n; i++) {
		if (f->t[i]->state == ST_UP)
			pump_later(f->t[i]);
		else
			update_lag(f->t[i]);
	}
}

int
forward_audit(struct center *c, json_t *entry)
{
	char *data;
	int rc = -1;

	if ((data = json_dumps(entry, JSON_COMPACT)) == NULL)
		return -1;
	/* The next sequence number read by the statement that writes it:
	 * one write, under the writers' lock, whatever other nodes write
	 * at the same time. */
	if (store_exec(c->store,
	               "INSERT INTO events (agent_id, seq, time, received_at, "
	               "type, level, task_id, data) SELECT 'center', "
	               "COALESCE(MAX(seq), 0) + 1, ?, ?, 'audit', 'notice', "
	               "NULL, ? FROM events WHERE agent_id = 'center'",
	               S_INT(time(NULL)), S_INT(time(NULL)),
	               S_TEXT(data)) == 1) {
		rc = 0;
		forward_kick(c);
	}
	free(data);
	return rc;
}
