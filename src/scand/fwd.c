/*
 * fwd.c: vigil-scand's optional syslog output ([syslog] in
 * vigil-scand.conf, docs/scand.md). Every sample with findings becomes one
 * syslog message of type "finding", formatted by the formatter the center's
 * forwarder uses (src/proto/syslogfmt.c), and is sent over UDP (one
 * datagram each) or TCP (RFC 6587 octet counting, or one message per
 * line). A center with its
 * syslog listener enabled stores these messages as events.
 *
 * Best effort, never in a scan's way: everything runs on the event loop
 * with non-blocking sockets. TCP messages wait in a bounded queue while
 * the connection is down (reconnects back off from 1 s to 60 s); what does
 * not fit, a failed datagram, and a message too large for a datagram are
 * counted as dropped. "Sent" counts messages handed to the socket (or
 * to a connection's buffer); those still in the buffer of a connection
 * that breaks are lost. The counters are in GET /api/v1/status. A host name is
 * resolved with a blocking getaddrinfo() when connecting; use an address
 * where that matters.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "scand.h"
#include "syslogfmt.h"

#define FWD_UDP_MAX     65000
#define FWD_BACKOFF_MAX 60

struct fwd {
	struct event_base *base;
	int tcp;
	char host[256];
	int port;
	struct syslogfmt_opts fmt;
	enum syslogfmt_framing framing;
	char myhost[256];
	size_t max_queue;
	int udp_fd;
	struct bufferevent *bev;
	int connected;
	struct evbuffer *pending; /* framed messages waiting for a connection */
	struct event *ev_retry;
	int backoff;
	long long seq;
	long long sent, dropped, queued; /* queued: in pending */
	struct buf msg, framed;
};

static int
resolve(struct fwd *f, int type, struct addrinfo **res)
{
	struct addrinfo hints;
	char serv[16];
	int gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = type;
	snprintf(serv, sizeof(serv), "%d", f->port);
	if ((gai = getaddrinfo(f->host, serv, &hints, res)) != 0) {
		log_warnx("scand: syslog: %s: %s", f->host, gai_strerror(gai));
		return -1;
	}
	return 0;
}

static void tcp_connect(struct fwd *f);

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tcp_connect(arg);
}

static void
tcp_down(struct fwd *f)
{
	struct timeval tv;

	if (f->bev != NULL)
		bufferevent_free(f->bev);
	f->bev = NULL;
	f->connected = 0;
	f->backoff = f->backoff == 0 ? 1 : f->backoff * 2;
	if (f->backoff > FWD_BACKOFF_MAX)
		f->backoff = FWD_BACKOFF_MAX;
	tv.tv_sec = f->backoff;
	tv.tv_usec = 0;
	evtimer_add(f->ev_retry, &tv);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fwd *f = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		log_info("scand: syslog: connected to %s:%d", f->host, f->port);
		f->connected = 1;
		f->backoff = 0;
		evbuffer_add_buffer(bufferevent_get_output(f->bev), f->pending);
		f->sent += f->queued;
		f->queued = 0;
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		log_warnx("scand: syslog: %s:%d: %s", f->host, f->port,
		          (what & BEV_EVENT_EOF) ? "connection closed"
		                                 : strerror(errno));
		tcp_down(f);
	}
}

/* The receiver never talks; reading only notices that it went away. */
static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev),
	               evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
tcp_connect(struct fwd *f)
{
	struct addrinfo *res = NULL;

	if (resolve(f, SOCK_STREAM, &res) == -1)
		goto fail;
	if ((f->bev = bufferevent_socket_new(f->base, -1,
	                                     BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	bufferevent_setcb(f->bev, tcp_read_cb, NULL, tcp_event_cb, f);
	bufferevent_enable(f->bev, EV_READ);
	if (bufferevent_socket_connect(f->bev, res->ai_addr,
	                               (int)res->ai_addrlen) == -1) {
		log_warnx("scand: syslog: %s:%d: %s", f->host, f->port,
		          strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	return;
fail:
	if (res != NULL)
		freeaddrinfo(res);
	tcp_down(f);
}

struct fwd *
fwd_new(struct event_base *base, const struct scand_conf *c,
        const struct fwd *prev, struct buf *err)
{
	struct fwd *f;
	struct addrinfo *res = NULL;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		buf_printf(err, "out of memory");
		return NULL;
	}
	if (prev != NULL) {
		/* A reload: the counters go on. Messages still queued for the
		 * old receiver are dropped with it. */
		f->seq = prev->seq;
		f->sent = prev->sent;
		f->dropped = prev->dropped + prev->queued;
	}
	f->base = base;
	f->udp_fd = -1;
	f->tcp = c->syslog_transport == 1;
	snprintf(f->host, sizeof(f->host), "%s", c->syslog_host);
	f->port = (int)c->syslog_port;
	f->max_queue = (size_t)c->syslog_queue;
	if (gethostname(f->myhost, sizeof(f->myhost) - 1) == -1)
		snprintf(f->myhost, sizeof(f->myhost), "localhost");
	f->fmt.format = (enum syslogfmt_format)c->syslog_format;
	f->framing = (enum syslogfmt_framing)c->syslog_framing;
	f->fmt.facility = (int)c->syslog_facility;
	f->fmt.center_host = f->myhost;
	f->fmt.version = VIGIL_VERSION;
	buf_init(&f->msg, FWD_UDP_MAX);
	buf_init(&f->framed, FWD_UDP_MAX + 16);
	if (f->tcp) {
		if ((f->pending = evbuffer_new()) == NULL ||
		    (f->ev_retry = evtimer_new(base, retry_cb, f)) == NULL) {
			buf_printf(err, "out of memory");
			goto fail;
		}
		tcp_connect(f);
		return f;
	}
	if (resolve(f, SOCK_DGRAM, &res) == -1) {
		buf_printf(err, "[syslog] host %s cannot be resolved", f->host);
		goto fail;
	}
	if ((f->udp_fd =
	         socket(res->ai_family,
	                SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(f->udp_fd, res->ai_addr, res->ai_addrlen) == -1) {
		buf_printf(err, "[syslog] %s:%d: %s", f->host, f->port,
		           strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	return f;
fail:
	if (res != NULL)
		freeaddrinfo(res);
	fwd_free(f);
	return NULL;
}

void
fwd_free(struct fwd *f)
{
	if (f == NULL)
		return;
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	if (f->ev_retry != NULL)
		event_free(f->ev_retry);
	if (f->pending != NULL)
		evbuffer_free(f->pending);
	if (f->udp_fd != -1)
		close(f->udp_fd);
	buf_free(&f->msg);
	buf_free(&f->framed);
	free(f);
}

void
fwd_counters(const struct fwd *f, long long *sent, long long *queued,
             long long *dropped)
{
	*sent = f != NULL ? f->sent : 0;
	*queued = f != NULL ? f->queued : 0;
	*dropped = f != NULL ? f->dropped : 0;
}

/* "Alert" -> "alert": the Thunderstorm level as Vigil's. */
static void
level_of(json_t *finding, char *out, size_t n)
{
	const char *l = json_string_value(
	    json_object_get(json_object_get(finding, "meta"), "level"));
	size_t i;

	snprintf(out, n, "%s", l != NULL ? l : "info");
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
}

/* The event's data: what the finding is about, without the matched
 * strings (they can be long; getAsyncResults has them). */
static char *
data_of(json_t *finding, const char *source, long long scan_id)
{
	json_t *subj = json_object_get(finding, "subject"), *rules, *r, *d;
	char *text;
	size_t i;

	if ((rules = json_array()) == NULL)
		return NULL;
	json_array_foreach(json_object_get(finding, "reasons"), i, r)
	    json_array_append(
	        rules,
	        json_object_get(json_object_get(r, "signature"), "rule_name"));
	d = json_pack(
	    "{s:s,s:I,s:O?,s:O?,s:O?,s:O?,s:O?,s:o}", "source", source,
	    "scan_id", (json_int_t)scan_id, "file",
	    json_object_get(subj, "path"), "sha256",
	    json_object_get(json_object_get(subj, "hashes"), "sha256"), "size",
	    json_object_get(subj, "size"), "score",
	    json_object_get(finding, "score"), "message",
	    json_object_get(finding, "message"), "rules", rules);
	text = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return text;
}

static void
send_one(struct fwd *f)
{
	struct evbuffer *out;

	if (!f->tcp) {
		if (send(f->udp_fd, f->msg.data, f->msg.len, 0) == -1)
			f->dropped++;
		else
			f->sent++;
		return;
	}
	buf_reset(&f->framed);
	if (syslogfmt_frame(f->framing, f->msg.data, f->msg.len, &f->framed) ==
	    -1) {
		f->dropped++;
		return;
	}
	out = f->connected ? bufferevent_get_output(f->bev) : f->pending;
	if (evbuffer_get_length(out) + f->framed.len > f->max_queue ||
	    evbuffer_add(out, f->framed.data, f->framed.len) == -1) {
		f->dropped++;
		return;
	}
	if (f->connected)
		f->sent++;
	else
		f->queued++;
}

void
fwd_findings(struct fwd *f, json_t *findings, const char *source,
             long long scan_id)
{
	struct syslogfmt_event e;
	json_t *finding;
	char level[16], *data;
	size_t i;

	if (f == NULL)
		return;
	json_array_foreach(findings, i, finding)
	{
		level_of(finding, level, sizeof(level));
		if ((data = data_of(finding, source, scan_id)) == NULL) {
			f->dropped++;
			continue;
		}
		memset(&e, 0, sizeof(e));
		e.agent_id = "vigil-scand";
		e.seq = ++f->seq;
		e.time = (long long)time(NULL);
		e.type = "finding";
		e.level = level;
		e.data = data;
		e.hostname = f->myhost;
		buf_reset(&f->msg);
		if (syslogfmt_format(&f->fmt, &e, &f->msg) == -1)
			f->dropped++; /* larger than a datagram */
		else
			send_one(f);
		free(data);
	}
}
