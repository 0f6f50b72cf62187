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
 * Runs on the center's event loop; each read callback stores what it
 * received in one transaction.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "center.h"
#include "metrics.h"
#include "syslogparse.h"

#define SYSLOGIN_MAX_CONNS 256
#define SYSLOGIN_UDP_BURST 64 /* datagrams per read callback */
#define SYSLOGIN_IDLE      300

struct syslogin {
	struct center *c;
	int udp_fd;
	struct event *ev_udp;
	struct evconnlistener *lis;
	int nconns;
	uint8_t *dgram;
};

static struct syslogin g_in = {NULL, -1, NULL, NULL, 0, NULL};

struct conn {
	struct bufferevent *bev;
	char addr[INET6_ADDRSTRLEN];
	char src[INET6_ADDRSTRLEN + 8];
};

static const char *
level_of(int sev)
{
	if (sev <= 2)
		return "alert";
	if (sev <= 4)
		return "warning";
	return sev == 5 ? "notice" : "info";
}

static void
addr_text(const struct sockaddr *sa, char *addr, size_t an, char *src,
          size_t sn)
{
	char port[16] = "0";

	if (getnameinfo(sa,
	                sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                          : sizeof(struct sockaddr_in),
	                addr, (socklen_t)an, port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(addr, an, "unknown");
	snprintf(src, sn, "%s:%s", addr, port);
}

/* Stores one message as an event. 0, or -1 when the store failed. */
static int
store_message(struct center *c, const char *addr, const char *src,
              const char *transport, const uint8_t *p, size_t len,
              const char *frame_error)
{
	struct buf err;
	json_t *data = NULL;
	char agent[INET6_ADDRSTRLEN + 8], labels[64], *text = NULL;
	long long t = 0, now = (long long)time(NULL);
	int sev = 6, rc = -1;
	const char *type = "syslog";

	buf_init(&err, 512);
	snprintf(agent, sizeof(agent), "syslog:%s", addr);
	if (frame_error == NULL)
		data = syslogparse_message(p, len, &sev, &t, &err);
	if (data == NULL) {
		type = "syslog_raw";
		data = json_pack("{s:s, s:o}", "error",
		                 frame_error ? frame_error : buf_cstr(&err),
		                 "raw", syslogparse_raw_string(p, len));
	}
	if (data == NULL)
		goto fail;
	json_object_set_new(data, "source", json_string(src));
	json_object_set_new(data, "transport", json_string(transport));
	snprintf(labels, sizeof(labels), "transport=\"%s\",result=\"%s\"",
	         transport,
	         strcmp(type, "syslog") == 0 ? "parsed" : "malformed");
	metrics_add("vigil_syslog_messages_total", labels, 1);
	if ((text = json_dumps(data, JSON_COMPACT)) == NULL)
		goto fail;
	/* The sender's next number read by the statement that stores the
	 * message: other nodes may store its messages at the same time. */
	if (store_exec(
	        c->store,
	        "INSERT INTO events (agent_id, seq, time, received_at, "
	        "type, level, task_id, data) SELECT ?, COALESCE(MAX(seq), 0) "
	        "+ 1, ?, ?, ?, ?, NULL, ? FROM events WHERE agent_id = ?",
	        S_TEXT(agent), S_INT(t > 0 ? t : now), S_INT(now), S_TEXT(type),
	        S_TEXT(strcmp(type, "syslog") == 0 ? level_of(sev) : "warning"),
	        S_TEXT(text), S_TEXT(agent)) != 1)
		goto fail;
	rc = 0;
fail:
	if (rc == -1) {
		log_warnx("syslog: %s: cannot store a message", src);
		metrics_add("vigil_syslog_messages_total",
		            "transport=\"store\",result=\"failed\"", 1);
	}
	free(text);
	json_decref(data);
	buf_free(&err);
	return rc;
}

static void
udp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct sockaddr_storage ss;
	char addr[INET6_ADDRSTRLEN], src[INET6_ADDRSTRLEN + 8];
	size_t max = (size_t)c->conf.sl_max_message;
	int i, began;
	ssize_t n;

	(void)what;
	began = store_begin(c->store) == 0;
	for (i = 0; i < SYSLOGIN_UDP_BURST; i++) {
		socklen_t sl = sizeof(ss);

		n = recvfrom(fd, g_in.dgram, max, MSG_DONTWAIT | MSG_TRUNC,
		             (struct sockaddr *)&ss, &sl);
		if (n < 0)
			break;
		addr_text((struct sockaddr *)&ss, addr, sizeof(addr), src,
		          sizeof(src));
		if ((size_t)n > max)
			store_message(c, addr, src, "udp", g_in.dgram, max,
			              "datagram longer than max_message; cut");
		else if (n > 0)
			store_message(c, addr, src, "udp", g_in.dgram,
			              (size_t)n, NULL);
	}
	if (began && store_commit(c->store) == -1)
		store_rollback(c->store);
	forward_kick(c);
	intel_kick(c);
}

static int
is_digit_start(const uint8_t *p)
{
	return p[0] >= '0' && p[0] <= '9';
}

static void
conn_free(struct conn *cn)
{
	bufferevent_free(cn->bev);
	free(cn);
	g_in.nconns--;
}

/* Frames and stores what is buffered. at_eof: the peer closed; what is
 * left is the last message (newline framing allows no trailer). Returns -1
 * when the connection must close. */
static int
drain(struct center *c, struct conn *cn, int at_eof)
{
	struct evbuffer *in = bufferevent_get_input(cn->bev);
	size_t max = (size_t)c->conf.sl_max_message, len, mlen;
	const uint8_t *p, *m;
	int rc = 0, began;
	long r;

	began = store_begin(c->store) == 0;
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
				store_message(c, cn->addr, cn->src, "tcp", m,
				              mlen, NULL);
			evbuffer_drain(in, (size_t)r);
			continue;
		}
		if (r == -2 && !at_eof)
			break;
		/* Unframeable, or a partial frame at close: keep the bytes
		 * as they are. */
		store_message(c, cn->addr, cn->src, "tcp", p,
		              len > max ? max : len,
		              r == -1 ? "cannot frame the stream (bad octet "
		                        "count or a line over max_message); "
		                        "connection closed"
		              : is_digit_start(p)
		                  ? "connection closed inside an octet-counted "
		                    "frame"
		                  : NULL);
		evbuffer_drain(in, evbuffer_get_length(in));
		rc = -1;
		break;
	}
	if (began && store_commit(c->store) == -1)
		store_rollback(c->store);
	forward_kick(c);
	intel_kick(c);
	return rc;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;

	(void)bev;
	if (drain(g_in.c, cn, 0) == -1)
		conn_free(cn);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *cn = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		drain(g_in.c, cn, 1);
		conn_free(cn);
	}
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct center *c = arg;
	struct timeval idle = {SYSLOGIN_IDLE, 0};
	struct conn *cn;

	(void)l;
	(void)salen;
	if (g_in.nconns >= SYSLOGIN_MAX_CONNS) {
		log_warnx("syslog: %d connections open; refusing another",
		          g_in.nconns);
		evutil_closesocket(fd);
		return;
	}
	if ((cn = calloc(1, sizeof(*cn))) == NULL ||
	    (cn->bev = bufferevent_socket_new(c->base, fd,
	                                      BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(cn);
		evutil_closesocket(fd);
		return;
	}
	g_in.nconns++;
	addr_text(sa, cn->addr, sizeof(cn->addr), cn->src, sizeof(cn->src));
	/* Read at most a few messages ahead: a sender faster than the
	 * store is slowed by TCP, not buffered without bound. */
	bufferevent_setwatermark(cn->bev, EV_READ, 0,
	                         4 * (size_t)c->conf.sl_max_message + 64);
	bufferevent_set_timeouts(cn->bev, &idle, NULL);
	bufferevent_setcb(cn->bev, conn_read_cb, NULL, conn_event_cb, cn);
	bufferevent_enable(cn->bev, EV_READ);
}

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

static int
resolve(const char *host, long long port, int socktype, struct addrinfo **res,
        struct buf *err)
{
	struct addrinfo hints;
	char serv[16];
	int gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(serv, sizeof(serv), "%lld", port);
	if ((gai = getaddrinfo(host, serv, &hints, res)) != 0) {
		buf_printf(err, "[syslog] listen = %s: %s", host,
		           gai_strerror(gai));
		return -1;
	}
	return 0;
}

int
syslogin_start(struct center *c, struct buf *err)
{
	struct addrinfo *res = NULL;
	c->sl_udp_port = c->sl_tcp_port = 0;
	if (!c->conf.sl_enable)
		return 0;
	metrics_declare("vigil_syslog_messages_total", METRIC_COUNTER,
	                "syslog messages received by the listener");
	g_in.c = c;
	if ((g_in.dgram = malloc((size_t)c->conf.sl_max_message + 1)) == NULL)
		return -1;
	if (resolve(c->conf.sl_listen, c->conf.sl_udp_port, SOCK_DGRAM, &res,
	            err) == -1)
		return -1;
	g_in.udp_fd = socket(res->ai_family,
	                     SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g_in.udp_fd == -1 ||
	    bind(g_in.udp_fd, res->ai_addr, res->ai_addrlen) == -1) {
		buf_printf(err, "[syslog] %s:%lld/udp: %s", c->conf.sl_listen,
		           c->conf.sl_udp_port, strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	res = NULL;
	c->sl_udp_port = bound_port(g_in.udp_fd);
	g_in.ev_udp =
	    event_new(c->base, g_in.udp_fd, EV_READ | EV_PERSIST, udp_cb, c);
	if (g_in.ev_udp == NULL || event_add(g_in.ev_udp, NULL) == -1)
		return -1;
	if (resolve(c->conf.sl_listen, c->conf.sl_tcp_port, SOCK_STREAM, &res,
	            err) == -1)
		return -1;
	g_in.lis = evconnlistener_new_bind(
	    c->base, accept_cb, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, res->ai_addr, (int)res->ai_addrlen);
	if (g_in.lis == NULL) {
		buf_printf(err, "[syslog] %s:%lld/tcp: %s", c->conf.sl_listen,
		           c->conf.sl_tcp_port, strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	c->sl_tcp_port = bound_port(evconnlistener_get_fd(g_in.lis));
	log_info("syslog: listening on %s:%d/udp and %s:%d/tcp",
	         c->conf.sl_listen, c->sl_udp_port, c->conf.sl_listen,
	         c->sl_tcp_port);
	return 0;
}

void
syslogin_stop(struct center *c)
{
	(void)c;
	if (g_in.ev_udp) {
		event_free(g_in.ev_udp);
		g_in.ev_udp = NULL;
	}
	if (g_in.udp_fd != -1) {
		close(g_in.udp_fd);
		g_in.udp_fd = -1;
	}
	if (g_in.lis) {
		evconnlistener_free(g_in.lis);
		g_in.lis = NULL;
	}
	free(g_in.dgram);
	g_in.dgram = NULL;
}
