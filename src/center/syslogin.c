/*
 * syslogin.c: the center's optional syslog listener ([syslog] in
 * vigild.conf, off by default). Messages from scanners and other tools on
 * the network, over UDP or TCP (octet-counted or newline framed, RFC 6587),
 * in RFC 5424 or RFC 3164, become events: agent_id "syslog:<address>", a
 * per-source sequence number, type "syslog" with the parsed fields as data
 * (src/proto/syslogparse.c). They are searchable through the events API and
 * forwarded like any other event.
 *
 * A message that does not parse is never dropped: it is stored as an event
 * of type "syslog_raw" with the reason and the bytes (invalid UTF-8
 * replaced), and counted. A TCP stream that cannot be framed any more (a bad
 * octet count, a line over max_message) has its remaining bytes stored the
 * same way before the connection is closed.
 *
 * Two halves. The receiver (sockets, framing, parsing: the bytes anyone on
 * the network may send) hands each message, parsed, to a sink. With
 * [syslog] worker = yes (the default) it runs in the syslog worker
 * (vigild --syslog-worker, started and restarted by gwproc.c like the
 * gateway workers: unprivileged, Landlock with no file at all, the
 * workers' seccomp allow-list), whose sink sends the messages to the core
 * in batches (GWRELAY_SYSLOG, src/proto/gwrelay.h); the core checks each
 * (syslogin_relayed) and stores it. With worker = no the receiver runs on
 * the core's event loop and its sink stores directly. Either way what one
 * read callback received is stored in one transaction.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "center.h"
#include "gwproc.h"
#include "gwrelay.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "syslogparse.h"

#define SYSLOGIN_MAX_CONNS    256
#define SYSLOGIN_MAX_PER_ADDR 16 /* TCP connections from one address */
#define SYSLOGIN_UDP_BURST    64 /* datagrams per read callback */
#define SYSLOGIN_IDLE         300

/* One message, parsed: what a sink gets. */
struct sl_msg {
	int tcp;
	const char *addr; /* numeric, or "unknown" */
	int port;
	int sev;
	long long time; /* 0: none in the message */
	int raw;        /* did not parse (or frame): "syslog_raw" */
	json_t *data;   /* the event's data, without source and transport */
};

struct sl_sink {
	void (*begin)(void *arg);
	void (*msg)(void *arg, const struct sl_msg *m);
	void (*end)(void *arg);
	void *arg;
};

struct syslogin {
	struct event_base *base;
	int udp_fd, tcp_fd; /* bound by syslogin_start (the core's) */
	struct event *ev_udp;
	struct evconnlistener *lis;
	int nconns;
	size_t max;
	uint8_t *dgram;
	struct sl_sink sink;
};

static struct syslogin g_in = {NULL, -1, -1, NULL, NULL, 0, 0, NULL, {0}};

struct conn {
	struct bufferevent *bev;
	char addr[INET6_ADDRSTRLEN];
	int port;
	time_t last;              /* accepted, or last read from */
	struct conn *prev, *next; /* g_conns: the least recently read first */
};

/* The open TCP connections, the one read from least recently first. */
static struct {
	struct conn *head, *tail;
} g_conns;

static void
conns_unlink(struct conn *cn)
{
	if (cn->prev != NULL)
		cn->prev->next = cn->next;
	else
		g_conns.head = cn->next;
	if (cn->next != NULL)
		cn->next->prev = cn->prev;
	else
		g_conns.tail = cn->prev;
	cn->prev = cn->next = NULL;
}

static void
conns_append(struct conn *cn)
{
	cn->prev = g_conns.tail;
	cn->next = NULL;
	if (g_conns.tail != NULL)
		g_conns.tail->next = cn;
	else
		g_conns.head = cn;
	g_conns.tail = cn;
}

static const char *
level_of(int sev)
{
	if (sev <= 2)
		return "alert";
	if (sev <= 4)
		return "warning";
	return sev == 5 ? "notice" : "info";
}

/* --- the receiver --------------------------------------------------------- */

/* The sender's numeric address (without an IPv6 scope: the core takes
 * only what inet_pton reads) and port. */
static void
addr_text(const struct sockaddr *sa, char *addr, size_t an, int *port)
{
	const void *a = NULL;

	*port = 0;
	if (sa->sa_family == AF_INET6) {
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		*port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		a = &((const struct sockaddr_in *)sa)->sin_addr;
		*port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	}
	if (a == NULL ||
	    inet_ntop(sa->sa_family, a, addr, (socklen_t)an) == NULL)
		snprintf(addr, an, "unknown");
}

/* Parses one message (or keeps it raw, with frame_error or the parser's
 * reason) and hands it to the sink. */
static void
deliver(const char *addr, int port, int tcp, const uint8_t *p, size_t len,
        const char *frame_error)
{
	struct sl_msg m;
	struct buf err;
	int sev = 6;
	long long t = 0;

	buf_init(&err, 512);
	memset(&m, 0, sizeof(m));
	m.tcp = tcp;
	m.addr = addr;
	m.port = port;
	if (frame_error == NULL)
		m.data = syslogparse_message(p, len, &sev, &t, &err);
	if (m.data == NULL) {
		m.raw = 1;
		m.data = json_pack("{s:s, s:o}", "error",
		                   frame_error ? frame_error : buf_cstr(&err),
		                   "raw", syslogparse_raw_string(p, len));
	}
	m.sev = sev;
	m.time = t;
	if (m.data != NULL)
		g_in.sink.msg(g_in.sink.arg, &m);
	else
		log_warnx("syslog: %s: out of memory for a message", addr);
	json_decref(m.data);
	buf_free(&err);
}

static void
udp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sockaddr_storage ss;
	char addr[INET6_ADDRSTRLEN];
	size_t max = g_in.max;
	int i, port;
	ssize_t n;

	(void)what;
	(void)arg;
	g_in.sink.begin(g_in.sink.arg);
	for (i = 0; i < SYSLOGIN_UDP_BURST; i++) {
		socklen_t sl = sizeof(ss);

		n = recvfrom(fd, g_in.dgram, max, MSG_DONTWAIT | MSG_TRUNC,
		             (struct sockaddr *)&ss, &sl);
		if (n < 0)
			break;
		addr_text((struct sockaddr *)&ss, addr, sizeof(addr), &port);
		if ((size_t)n > max)
			deliver(addr, port, 0, g_in.dgram, max,
			        "datagram longer than max_message; cut");
		else if (n > 0)
			deliver(addr, port, 0, g_in.dgram, (size_t)n, NULL);
	}
	g_in.sink.end(g_in.sink.arg);
}

static int
is_digit_start(const uint8_t *p)
{
	return p[0] >= '0' && p[0] <= '9';
}

static void
conn_free(struct conn *cn)
{
	conns_unlink(cn);
	bufferevent_free(cn->bev);
	free(cn);
	g_in.nconns--;
}

/* Frames and delivers what is buffered. at_eof: the peer closed; what is
 * left is the last message (newline framing allows no trailer). closing
 * (with at_eof): the listener closes the connection itself, for that
 * reason: what is left is a message cut short, kept raw. Returns -1 when
 * the connection must close. */
static int
drain(struct conn *cn, int at_eof, const char *closing)
{
	struct evbuffer *in = bufferevent_get_input(cn->bev);
	size_t max = g_in.max, len, mlen;
	const uint8_t *p, *m;
	int rc = 0;
	long r;

	g_in.sink.begin(g_in.sink.arg);
	for (;;) {
		len = evbuffer_get_length(in);
		if (len == 0)
			break;
		p = evbuffer_pullup(in,
		                    (ssize_t)(len < max + 16 ? len : max + 16));
		if (p == NULL) {
			rc = -1;
			break;
		}
		if (len > max + 16)
			len = max + 16;
		r = syslogparse_frame(p, len, max, &m, &mlen);
		if (r > 0) {
			if (mlen > 0)
				deliver(cn->addr, cn->port, 1, m, mlen, NULL);
			evbuffer_drain(in, (size_t)r);
			continue;
		}
		if (r == -2 && !at_eof)
			break;
		/* Unframeable, or a partial frame at close: keep the bytes
		 * as they are. */
		deliver(cn->addr, cn->port, 1, p, len > max ? max : len,
		        r == -1 ? "cannot frame the stream (bad octet "
		                  "count or a line over max_message); "
		                  "connection closed"
		        : closing != NULL ? closing
		        : is_digit_start(p)
		            ? "connection closed inside an octet-counted "
		              "frame"
		            : NULL);
		evbuffer_drain(in, evbuffer_get_length(in));
		rc = -1;
		break;
	}
	g_in.sink.end(g_in.sink.arg);
	return rc;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;

	(void)bev;
	cn->last = time(NULL);
	conns_unlink(cn);
	conns_append(cn);
	if (drain(cn, 0, NULL) == -1)
		conn_free(cn);
}

/* A warning about the connection limits, at most one per kind every
 * 10 s (with the count of those not logged): a client that opens
 * connections in a loop must not flood the log. */
static void
limit_warn(int kind, const char *fmt, ...)
{
	static time_t last[2];
	static unsigned quiet[2];
	time_t now = time(NULL);
	char msg[256];
	va_list ap;

	if (now - last[kind] < 10) {
		quiet[kind]++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (quiet[kind] > 0)
		log_warnx("syslog: %s (and %u more since the last such "
		          "warning)",
		          msg, quiet[kind]);
	else
		log_warnx("syslog: %s", msg);
	last[kind] = now;
	quiet[kind] = 0;
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *cn = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		drain(cn, 1, NULL);
		conn_free(cn);
	}
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct timeval idle = {SYSLOGIN_IDLE, 0};
	struct conn *cn;

	(void)l;
	(void)salen;
	(void)arg;
	if ((cn = calloc(1, sizeof(*cn))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	addr_text(sa, cn->addr, sizeof(cn->addr), &cn->port);
	/* One address holds a few connections at most: it cannot take
	 * the others' places. */
	{
		struct conn *o;
		int same = 0;

		for (o = g_conns.head; o != NULL; o = o->next)
			same += strcmp(o->addr, cn->addr) == 0;
		if (same >= SYSLOGIN_MAX_PER_ADDR) {
			limit_warn(0,
			           "%d connections from %s open already; "
			           "refusing another",
			           same, cn->addr);
			free(cn);
			evutil_closesocket(fd);
			return;
		}
	}
	/* All taken: the connection read from least recently makes room
	 * (what it sent of a message is kept, raw, as at a close). */
	if (g_in.nconns >= SYSLOGIN_MAX_CONNS && g_conns.head != NULL) {
		struct conn *o = g_conns.head;

		limit_warn(1,
		           "%d connections open; closing the one read from "
		           "least recently (%s:%d, %lld s ago) for a new one",
		           g_in.nconns, o->addr, o->port,
		           (long long)(time(NULL) - o->last));
		drain(o, 1,
		      "connection closed for a new sender (all "
		      "connections taken) inside a message");
		conn_free(o);
	}
	if ((cn->bev = bufferevent_socket_new(g_in.base, fd,
	                                      BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(cn);
		evutil_closesocket(fd);
		return;
	}
	g_in.nconns++;
	cn->last = time(NULL);
	conns_append(cn);
	/* Read at most a few messages ahead: a sender faster than the
	 * store is slowed by TCP, not buffered without bound. */
	bufferevent_setwatermark(cn->bev, EV_READ, 0, 4 * g_in.max + 64);
	bufferevent_set_timeouts(cn->bev, &idle, NULL);
	bufferevent_setcb(cn->bev, conn_read_cb, NULL, conn_event_cb, cn);
	bufferevent_enable(cn->bev, EV_READ);
}

/* Receives on the bound udp and tcp sockets (taken: closed with the
 * receiver) into sink, on base. 0, or -1. */
static int
receiver_start(struct event_base *base, int udp, int tcp, size_t max,
               const struct sl_sink *sink)
{
	g_in.base = base;
	g_in.max = max;
	g_in.sink = *sink;
	if ((g_in.dgram = malloc(max + 1)) == NULL)
		return -1;
	g_in.ev_udp = event_new(base, udp, EV_READ | EV_PERSIST, udp_cb, NULL);
	if (g_in.ev_udp == NULL || event_add(g_in.ev_udp, NULL) == -1)
		return -1;
	g_in.lis = evconnlistener_new(
	    base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, tcp);
	return g_in.lis != NULL ? 0 : -1;
}

/* --- storing (the core) --------------------------------------------------- */

/* Stores one message as an event. 0, or -1 when the store failed. */
static int
store_message(struct center *c, const struct sl_msg *m)
{
	const char *transport = m->tcp ? "tcp" : "udp";
	char agent[INET6_ADDRSTRLEN + 8], src[INET6_ADDRSTRLEN + 8];
	char labels[64], *text = NULL;
	long long now = (long long)time(NULL);
	int rc = -1;

	snprintf(agent, sizeof(agent), "syslog:%s", m->addr);
	snprintf(src, sizeof(src), "%s:%d", m->addr, m->port);
	if (json_object_set_new(m->data, "source", json_string(src)) == -1 ||
	    json_object_set_new(m->data, "transport", json_string(transport)) ==
	        -1)
		goto fail;
	snprintf(labels, sizeof(labels), "transport=\"%s\",result=\"%s\"",
	         transport, m->raw ? "malformed" : "parsed");
	metrics_add("vigil_syslog_messages_total", labels, 1);
	if ((text = json_dumps(m->data, JSON_COMPACT)) == NULL)
		goto fail;
	/* The sender's next number read by the statement that stores the
	 * message: other nodes may store its messages at the same time. */
	if (store_exec(
	        c->store,
	        "INSERT INTO events (agent_id, seq, time, received_at, "
	        "type, level, task_id, data) SELECT ?, COALESCE(MAX(seq), 0) "
	        "+ 1, ?, ?, ?, ?, NULL, ? FROM events WHERE agent_id = ?",
	        S_TEXT(agent), S_INT(m->time > 0 ? m->time : now), S_INT(now),
	        S_TEXT(m->raw ? "syslog_raw" : "syslog"),
	        S_TEXT(m->raw ? "warning" : level_of(m->sev)), S_TEXT(text),
	        S_TEXT(agent)) != 1)
		goto fail;
	rc = 0;
fail:
	if (rc == -1) {
		log_warnx("syslog: %s: cannot store a message", src);
		metrics_add("vigil_syslog_messages_total",
		            "transport=\"store\",result=\"failed\"", 1);
	}
	free(text);
	return rc;
}

/* The core's sink ([syslog] worker = no, and syslogin_relayed): what one
 * read callback received, in one transaction. */
struct core_sink {
	struct center *c;
	int began;
};

static struct core_sink g_core;

static void
core_begin(void *arg)
{
	struct core_sink *k = arg;

	k->began = store_begin(k->c->store) == 0;
}

static void
core_msg(void *arg, const struct sl_msg *m)
{
	struct core_sink *k = arg;

	(void)store_message(k->c, m);
}

static void
core_end(void *arg)
{
	struct core_sink *k = arg;

	if (k->began && store_commit(k->c->store) == -1)
		store_rollback(k->c->store);
	k->began = 0;
	forward_kick(k->c);
	intel_kick(k->c);
}

int
syslogin_relayed(struct center *c, const uint8_t *p, size_t len)
{
	static struct gwrelay_slrec recs[GWRELAY_MAX_SYSLOG];
	/* The most an honest worker makes of one message: every byte
	 * escaped (\u00XX), and the fields around it. */
	size_t most = 6 * (size_t)c->conf.sl_max_message + 4096, n, i;
	char addr[INET6_ADDRSTRLEN];
	const char *why = NULL;
	struct sl_msg m;
	int rc = -1;

	if (gwrelay_syslog_decode(p, len, recs, &n, &why) == -1) {
		log_warnx("syslog: bad message from the syslog worker: %s",
		          why);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (recs[i].data.len > most ||
		    recs[i].addr.len >= sizeof(addr)) {
			log_warnx("syslog: bad message from the syslog "
			          "worker: %zu bytes of data for a message of "
			          "at most %lld",
			          recs[i].data.len, c->conf.sl_max_message);
			return -1;
		}
	/* One record parsed at a time (its data at most `most` bytes), in
	 * one transaction: a bad one rolls the batch back. Without one (the
	 * store cannot begin it), every record is checked first. */
	g_core.c = c;
	core_begin(&g_core);
	for (i = 0; !g_core.began && i < n; i++) {
		json_t *d =
		    json_loadb(recs[i].data.p, recs[i].data.len,
		               JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
		int ok = json_is_object(d);

		json_decref(d);
		if (!ok) {
			log_warnx("syslog: bad message from the syslog "
			          "worker: its data is not a JSON object");
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		/* As the worker's json_dumps wrote it: a message's NUL
		 * bytes are \u0000 in its strings. */
		m.data =
		    json_loadb(recs[i].data.p, recs[i].data.len,
		               JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
		if (!json_is_object(m.data)) {
			log_warnx("syslog: bad message from the syslog "
			          "worker: its data is not a JSON object");
			json_decref(m.data);
			goto out;
		}
		memcpy(addr, recs[i].addr.p, recs[i].addr.len);
		addr[recs[i].addr.len] = '\0';
		m.tcp = recs[i].transport == GWRELAY_SL_TCP;
		m.addr = addr;
		m.port = (int)recs[i].port;
		m.sev = (int)recs[i].sev;
		m.time = (long long)recs[i].time;
		m.raw = recs[i].kind == GWRELAY_SL_RAW;
		(void)store_message(c, &m);
		json_decref(m.data);
	}
	rc = 0;
out:
	if (rc == -1 && g_core.began) {
		store_rollback(c->store);
		g_core.began = 0;
	}
	core_end(&g_core);
	return rc;
}

/* --- the syslog worker ---------------------------------------------------- */

static struct {
	int fd; /* the channel to the core */
	struct event_base *base;
	struct event *ev_read;
	struct evbuffer *in, *out;
	struct buf payload, recs, msg;
	uint32_t nrecs;
} g_slw = {-1, NULL, NULL, NULL, NULL, {0}, {0}, {0}, 0};

static void
slw_emit(void)
{
	if (g_slw.nrecs == 0)
		return;
	buf_reset(&g_slw.msg);
	gwrelay_put_u32(&g_slw.msg, g_slw.nrecs);
	buf_append(&g_slw.msg, g_slw.recs.data, g_slw.recs.len);
	g_slw.nrecs = 0;
	buf_reset(&g_slw.recs);
	if (buf_ok(&g_slw.msg) == -1 ||
	    proc_queue(g_slw.out, GWRELAY_SYSLOG, 0, g_slw.msg.data,
	               g_slw.msg.len, GWRELAY_MAX_SL_MSG) == -1) {
		log_warnx("syslog worker: a batch too large for the channel");
		return;
	}
	/* Until the core takes it: meanwhile nothing more is read (TCP
	 * senders wait, the kernel keeps or drops datagrams), as when the
	 * core stored them itself and its store was slow. */
	while (proc_flush_within(g_slw.fd, g_slw.out, NULL, 60000) == -1) {
		if (errno != ETIMEDOUT) {
			log_warn("syslog worker: writing to the core");
			_exit(1);
		}
		log_warnx("syslog worker: the core has taken nothing for "
		          "60 s; waiting");
	}
}

static void
slw_begin(void *arg)
{
	(void)arg;
}

static void
slw_msg(void *arg, const struct sl_msg *m)
{
	struct gwrelay_slrec r;
	char *text;

	(void)arg;
	if ((text = json_dumps(m->data, JSON_COMPACT)) == NULL)
		return;
	if (strlen(text) > GWRELAY_MAX_SL_DATA) {
		/* max_message is at most 1 MiB: cannot happen */
		log_warnx("syslog worker: a message too large to relay");
		free(text);
		return;
	}
	/* The batch within the channel's limit. */
	if (g_slw.nrecs > 0 &&
	    g_slw.recs.len + strlen(text) > GWRELAY_MAX_SL_DATA)
		slw_emit();
	r.transport = m->tcp ? GWRELAY_SL_TCP : GWRELAY_SL_UDP;
	r.addr.p = m->addr;
	r.addr.len = strlen(m->addr);
	r.port = (uint32_t)m->port;
	r.sev = (uint32_t)m->sev;
	r.time =
	    (uint64_t)(m->time > 0 && m->time <= GWRELAY_MAX_SL_TIME ? m->time
	                                                             : 0);
	r.kind = m->raw ? GWRELAY_SL_RAW : GWRELAY_SL_PARSED;
	r.data.p = text;
	r.data.len = strlen(text);
	gwrelay_put_syslog(&g_slw.recs, &r);
	free(text);
	if (++g_slw.nrecs == GWRELAY_MAX_SYSLOG)
		slw_emit();
}

static void
slw_end(void *arg)
{
	(void)arg;
	slw_emit();
}

/* The core's side: EOF or GWRELAY_DRAIN (vigild stops), nothing else. */
static void
slw_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc_hdr hdr;
	size_t nfds = 0;
	long n;
	int rc;

	(void)what;
	(void)arg;
	n = proc_read_some(fd, g_slw.in, NULL, 0, &nfds);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		event_base_loopbreak(g_slw.base);
		return;
	}
	while ((rc = proc_evbuf_take(g_slw.in, PROC_MAX_MSG, &hdr,
	                             &g_slw.payload)) == 1)
		if (hdr.type != GWRELAY_DRAIN || hdr.len != 0) {
			log_warnx("syslog worker: unexpected message %u from "
			          "the core",
			          (unsigned)hdr.type);
			event_base_loopbreak(g_slw.base);
			return;
		} else
			event_base_loopbreak(g_slw.base);
	if (rc == -1)
		event_base_loopbreak(g_slw.base);
}

int
syslogworker_main(void)
{
	static const struct sl_sink sink = {slw_begin, slw_msg, slw_end, NULL};
	struct proc_hdr hdr;
	struct buf err;
	json_t *init = NULL;
	const char *role;
	int udp = -1, tcp = -1;
	long long max;

	signal(SIGPIPE, SIG_IGN);
	log_init("vigild-sl", LOG_DEST_STDERR, LOG_LVL_INFO);
	g_slw.fd = PROC_CHILD_FD;
	buf_init(&g_slw.payload, PROC_MAX_MSG);
	buf_init(&g_slw.recs, GWRELAY_MAX_SL_MSG);
	buf_init(&g_slw.msg, GWRELAY_MAX_SL_MSG);
	buf_init(&err, 1024);
	if (proc_recv_fd(g_slw.fd, &hdr, &g_slw.payload, PROC_MAX_MSG, &udp) !=
	        0 ||
	    hdr.type != GWRELAY_INIT || udp == -1 ||
	    (init = json_loadb((const char *)g_slw.payload.data,
	                       g_slw.payload.len, 0, NULL)) == NULL ||
	    proc_recv_fd(g_slw.fd, &hdr, &g_slw.payload, PROC_MAX_MSG, &tcp) !=
	        0 ||
	    hdr.type != GWRELAY_LISTEN || tcp == -1) {
		log_warnx("syslog worker: no settings from the core");
		_exit(1);
	}
	role = json_string_value(json_object_get(init, "role"));
	max = json_integer_value(json_object_get(init, "max_message"));
	if (role == NULL || strcmp(role, "syslog") != 0 || max < 1 ||
	    max > (1LL << 20)) {
		log_warnx("syslog worker: settings for another role");
		_exit(1);
	}
	log_init("vigild-sl",
	         log_dest_for((enum log_dest)json_integer_value(
	                          json_object_get(init, "log_dest")),
	                      (int)json_integer_value(
	                          json_object_get(init, "foreground"))),
	         (enum log_level)json_integer_value(
	             json_object_get(init, "log_level")));
	json_decref(init);
	if ((g_slw.base = event_base_new()) == NULL ||
	    (g_slw.in = evbuffer_new()) == NULL ||
	    (g_slw.out = evbuffer_new()) == NULL ||
	    evutil_make_socket_nonblocking(g_slw.fd) == -1 ||
	    (g_slw.ev_read =
	         event_new(g_slw.base, g_slw.fd, EV_READ | EV_PERSIST,
	                   slw_read_cb, NULL)) == NULL ||
	    event_add(g_slw.ev_read, NULL) == -1 ||
	    receiver_start(g_slw.base, udp, tcp, (size_t)max, &sink) == -1) {
		log_warnx("syslog worker: cannot start");
		_exit(1);
	}
	/* No file at all (Landlock), and the workers' allow-list. */
	if (gwworker_landlock(NULL, 0, &err) == -1 ||
	    gwworker_sandbox(&err) == -1) {
		log_warnx("syslog worker: sandbox: %s", buf_cstr(&err));
		_exit(1);
	}
	log_debug("syslog worker %ld: receiving", (long)getpid());
	event_base_dispatch(g_slw.base);
	_exit(0);
}

/* --- the core's listener -------------------------------------------------- */

static int
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return -1;
	return ntohs(ss.ss_family == AF_INET6
	                 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                 : ((struct sockaddr_in *)&ss)->sin_port);
}

/* A socket of type bound to [syslog] listen and port (a TCP one
 * listening). The descriptor, or -1 with err set. */
static int
bind_one(struct center *c, long long port, int type, struct buf *err)
{
	struct addrinfo hints, *res = NULL;
	char serv[16];
	int gai, fd = -1, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = type;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(serv, sizeof(serv), "%lld", port);
	if ((gai = getaddrinfo(c->conf.sl_listen, serv, &hints, &res)) != 0) {
		buf_printf(err, "[syslog] listen = %s: %s", c->conf.sl_listen,
		           gai_strerror(gai));
		return -1;
	}
	fd = socket(res->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
	                                       &one, sizeof(one)) == -1) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    (type == SOCK_STREAM && listen(fd, 128) == -1)) {
		buf_printf(err, "[syslog] %s:%lld/%s: %s", c->conf.sl_listen,
		           port, type == SOCK_STREAM ? "tcp" : "udp",
		           strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
syslogin_start(struct center *c, struct buf *err)
{
	static const struct sl_sink sink = {core_begin, core_msg, core_end,
	                                    &g_core};

	c->sl_udp_port = c->sl_tcp_port = 0;
	if (!c->conf.sl_enable)
		return 0;
	metrics_declare("vigil_syslog_messages_total", METRIC_COUNTER,
	                "syslog messages received by the listener");
	g_core.c = c;
	if ((g_in.udp_fd = bind_one(c, c->conf.sl_udp_port, SOCK_DGRAM, err)) ==
	        -1 ||
	    (g_in.tcp_fd =
	         bind_one(c, c->conf.sl_tcp_port, SOCK_STREAM, err)) == -1)
		return -1;
	c->sl_udp_port = bound_port(g_in.udp_fd);
	c->sl_tcp_port = bound_port(g_in.tcp_fd);
	if (!c->conf.sl_worker) {
		/* The receiver takes the sockets. */
		if (receiver_start(c->base, g_in.udp_fd, g_in.tcp_fd,
		                   (size_t)c->conf.sl_max_message,
		                   &sink) == -1) {
			buf_printf(err, "[syslog]: cannot start the listener");
			return -1;
		}
		g_in.udp_fd = g_in.tcp_fd = -1;
	}
	log_info("syslog: listening on %s:%d/udp and %s:%d/tcp%s",
	         c->conf.sl_listen, c->sl_udp_port, c->conf.sl_listen,
	         c->sl_tcp_port,
	         c->conf.sl_worker ? " (in the syslog worker)" : "");
	return 0;
}

void
syslogin_fds(const struct center *c, int *udp, int *tcp)
{
	(void)c;
	*udp = g_in.udp_fd;
	*tcp = g_in.tcp_fd;
}

void
syslogin_stop(struct center *c)
{
	(void)c;
	if (g_in.ev_udp) {
		close(event_get_fd(g_in.ev_udp));
		event_free(g_in.ev_udp);
		g_in.ev_udp = NULL;
	}
	if (g_in.lis) {
		evconnlistener_free(g_in.lis);
		g_in.lis = NULL;
	}
	if (g_in.udp_fd != -1)
		close(g_in.udp_fd);
	if (g_in.tcp_fd != -1)
		close(g_in.tcp_fd);
	g_in.udp_fd = g_in.tcp_fd = -1;
	free(g_in.dgram);
	g_in.dgram = NULL;
}
