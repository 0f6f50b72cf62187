/*
 * http: the HTTPS server every daemon uses, on libevent 2.1's evhttp with
 * bufferevent_openssl underneath.
 *
 * evhttp does the HTTP/1.1 parsing, keep-alive and the size limits; this
 * file adds what evhttp lacks: a route table with exact and prefix paths
 * and 404/405 answers, JSON replies with security headers, the verified
 * client certificate handed to handlers, a per-request completion hook for
 * metrics, and a limit on open connections.
 *
 * Requests are handled synchronously: a handler must reply before it
 * returns (a handler that does not is a bug; the server answers 500 for
 * it). struct http_req therefore lives on the dispatcher's stack and
 * everything it points to (the evhttp request, the connection, the peer
 * certificate) is valid for the whole handler call, whatever the client
 * does meanwhile: nothing can be read from or written to the socket until
 * the handler returns to the event loop.
 *
 * Connection counting: libevent 2.1 has no "new connection" hook apart
 * from the bufferevent factory (evhttp_set_bevcb), which runs before the
 * evhttp_connection exists. The factory therefore parks each new
 * bufferevent (with a reference, so it cannot be reused under us) and
 * activates an event that runs in the same loop iteration, before any byte
 * is read: by then the bufferevent's callback argument is its connection,
 * which gets a close callback (the decrement) or, past max_conns, is
 * closed at once.
 *
 * Slow and idle clients (slowloris): evhttp's own timeout is an idle
 * time, renewed by every byte, so a client trickling a header line every
 * few seconds held its connection for ever, and a few hundred of them
 * shut everyone else out. Each connection therefore has total deadlines
 * (handshake_timeout, request_timeout; see struct http_conn), a client
 * address may hold max_per_addr connections, and at max_conns the oldest
 * connection that is not being answered is closed for a new client.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "http.h"
#include "log.h"
#include "peers.h"

#define HTTP_DEFAULT_MAX_BODY    (1024 * 1024)
#define HTTP_DEFAULT_MAX_HEADERS (16 * 1024)
#define HTTP_DEFAULT_TIMEOUT     30

/*
 * One counted connection. Its deadlines are totals, not idle times, so a
 * client that sends a header line every few seconds is closed all the
 * same: the TLS handshake must end within handshake_timeout of the
 * accept, and each request (line, headers and body) must have arrived
 * within request_timeout of the accept (the first request, handshake
 * included) or of the end of the previous response. While a request is
 * being answered (busy) no deadline runs: the handler's time is not the
 * client's, and a long poll may be held on purpose.
 *
 * The connections that are not busy sit on one list in the order their
 * current wait began, so the one closest to its deadline is at the head:
 * at max_conns that one is closed to make room for a new client.
 */
struct http_conn {
	struct http_server *s;
	struct evhttp_connection *evcon;
	struct event *deadline;
	struct http_conn *prev, *next; /* on s->wait while not busy */
	char key[PEERS_KEYLEN];        /* its address, when counted */
	struct timespec accepted, start;
	evutil_socket_t fd;
	int busy;       /* a request is in a handler or its reply being sent */
	int handshaken; /* the TLS handshake was seen complete */
	int counted;    /* its handshake counted (full or resumed) */
	int cut;        /* closed by us for a limit: no lingering close */
	uint64_t rx_done; /* bytes read from the socket when the last reply
	                     was sent (TLS only): more since then means a
	                     request has begun (http_server_drain) */
};

/* A socket kept open for a moment after a failed TLS handshake
 * (http_linger). */
struct http_linger {
	struct http_server *s;
	struct event *ev;
	struct http_linger *prev, *next;
	evutil_socket_t fd;
};

/* How long, and how many at once. */
#define HTTP_LINGER_S   2
#define HTTP_LINGER_MAX 256

struct http_fresh {
	struct bufferevent *bev;
	int reject; /* TLS could not be set up: close, never serve plain */
};

struct http_server {
	unsigned long handshakes[2]; /* full, resumed (http_server_tls) */
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl_ctx; /* our own reference; NULL = plain HTTP */
	const struct http_route *routes;
	void *arg;
	struct http_limits limits;
	void (*on_done)(const char *route, int status, void *arg);
	http_reply_hook on_reply;
	void (*handler_done)(struct http_req *r);
	int (*authorize)(struct http_req *r);
	int (*check)(struct http_req *r);
	http_handler fallback;       /* GET/HEAD of a path no route knows */
	struct http_stream *streams; /* open streaming replies */
	int nstreams;                /* how many; not in max_conns */

	struct event *accept_ev;  /* runs http_accept_cb after accepts */
	struct http_fresh *fresh; /* bufferevents made since it last ran */
	size_t nfresh, capfresh;

	int conns;
	int draining; /* http_server_drain: every reply closes its connection */
	struct http_conn *wait_head, *wait_tail; /* not busy, oldest first */
	struct http_conn **byfd;                 /* every counted one */
	size_t nbyfd;
	struct peers *peers; /* when max_per_addr */
	unsigned long closed[HTTP_CLOSED_NREASONS];
	time_t warned[HTTP_CLOSED_NREASONS]; /* last log line of each */
	struct http_linger *lingering;       /* http_linger */
	int nlinger;

	struct evhttp_bound_socket *bound[HTTP_MAX_LISTENERS];
	struct http_listener *lst[HTTP_MAX_LISTENERS];
	size_t nbound;
};

/*
 * Our own listening socket (evhttp's bind uses a backlog of 128, far too
 * short for thousands of agents reconnecting after a restart), with an
 * accept error callback: out of file descriptors, libevent would otherwise
 * retry accept() in a tight loop.
 */
#define HTTP_BACKLOG 4096

struct http_listener {
	struct evconnlistener *l;
	struct event *resume;
	unsigned long errors;
};

/*
 * A request that came from another process (vigild's gateway workers,
 * http_server_relay) rather than from a connection: its headers and body
 * are in here instead of an evhttp_request, and its reply goes to send.
 */
struct http_relay {
	struct evkeyvalq in, out;
	struct evbuffer *body, *reply;
	X509 *peer;
	char *rawq; /* the query string as sent, or NULL */
	http_relay_send send;
	const struct http_relay_stream_ops *stream;
	void *ctx;
	uint64_t id;
};

static struct evkeyvalq *
req_in_headers(struct http_req *r)
{
	return r->relay != NULL ? &r->relay->in
	                        : evhttp_request_get_input_headers(r->ev);
}

static struct evkeyvalq *
req_out_headers(struct http_req *r)
{
	return r->relay != NULL ? &r->relay->out
	                        : evhttp_request_get_output_headers(r->ev);
}

static struct evbuffer *
req_in_body(struct http_req *r)
{
	return r->relay != NULL ? r->relay->body
	                        : evhttp_request_get_input_buffer(r->ev);
}

static struct evbuffer *
req_out_body(struct http_req *r)
{
	return r->relay != NULL ? r->relay->reply
	                        : evhttp_request_get_output_buffer(r->ev);
}

static void
http_relay_free(struct http_relay *rl)
{
	if (rl == NULL)
		return;
	evhttp_clear_headers(&rl->in);
	evhttp_clear_headers(&rl->out);
	if (rl->body != NULL)
		evbuffer_free(rl->body);
	if (rl->reply != NULL)
		evbuffer_free(rl->reply);
	X509_free(rl->peer);
	free(rl->rawq);
	free(rl);
}

/* Sends the reply (fd -1, or a file of flen bytes taken over). */
static void
req_send(struct http_req *r, int status, int fd, size_t flen)
{
	struct http_relay *rl = r->relay;

	if (rl == NULL) {
		if (r->srv->draining)
			evhttp_add_header(
			    evhttp_request_get_output_headers(r->ev),
			    "Connection", "close");
		evhttp_send_reply(r->ev, status, NULL, NULL);
		return;
	}
	rl->send(rl->ctx, rl->id, status, &rl->out, rl->reply, fd, flen);
}

static void http_stream_gone(struct http_server *s,
                             struct evhttp_connection *evcon);

static const char *
http_method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "UNKNOWN";
}

/* A relayed method as one of the constant names above. */
static const char *
http_method_known(const char *m)
{
	static const char *const names[] = {"GET",   "POST",    "HEAD",
	                                    "PUT",   "DELETE",  "OPTIONS",
	                                    "TRACE", "CONNECT", "PATCH"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(m, names[i]) == 0)
			return names[i];
	return "UNKNOWN";
}

static const char *
http_route_name(const struct http_req *r)
{
	if (r->route == NULL)
		return "unknown";
	return r->route->name != NULL ? r->route->name : r->route->path;
}

/* --- connections ------------------------------------------------------ */

static const char *const http_close_names[HTTP_CLOSED_NREASONS] = {
    "handshake_timeout", "request_timeout", "evicted", "per_addr_limit",
    "full"};

const char *
http_close_reason_name(enum http_close_reason why)
{
	if ((unsigned)why >= HTTP_CLOSED_NREASONS)
		fatalx("%s: reason %d", __func__, (int)why);
	return http_close_names[why];
}

unsigned long
http_server_closed(const struct http_server *s, enum http_close_reason why)
{
	if ((unsigned)why >= HTTP_CLOSED_NREASONS)
		fatalx("%s: reason %d", __func__, (int)why);
	return s->closed[why];
}

static void
http_mono(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static double
http_since(const struct timespec *t0, const struct timespec *now)
{
	return (double)(now->tv_sec - t0->tv_sec) +
	       (double)(now->tv_nsec - t0->tv_nsec) / 1e9;
}

/* The address a per-address limit counts (see peers.h). */
static void
http_addr_key(struct evhttp_connection *evcon, char *key, size_t n)
{
	const struct sockaddr *sa = evhttp_connection_get_addr(evcon);
	char *peer = NULL;
	ev_uint16_t port = 0;

	peers_key(sa, key, n);
	if (key[0] == '\0') {
		evhttp_connection_get_peer(evcon, &peer, &port);
		snprintf(key, n, "%s", peer != NULL ? peer : "");
	}
}

/* Counts a close; says so in the log at most once a minute a reason. */
static void
http_note_close(struct http_server *s, enum http_close_reason why,
                struct evhttp_connection *evcon)
{
	char key[PEERS_KEYLEN];
	time_t now = time(NULL);

	s->closed[why]++;
	if (now - s->warned[why] < 60)
		return;
	s->warned[why] = now;
	http_addr_key(evcon, key, sizeof(key));
	switch (why) {
	case HTTP_CLOSED_HANDSHAKE:
		log_warnx("http: closing connections (%s, ...) that did not "
		          "finish the TLS handshake within %d s "
		          "(handshake_timeout); %lu so far",
		          key, s->limits.handshake_timeout, s->closed[why]);
		break;
	case HTTP_CLOSED_REQUEST:
		log_warnx("http: closing connections (%s, ...) that sent no "
		          "complete request within %d s (request_timeout); "
		          "%lu so far",
		          key, s->limits.request_timeout, s->closed[why]);
		break;
	case HTTP_CLOSED_EVICTED:
		log_warnx("http: %d connections open: closing the oldest "
		          "that is not being answered (%s, ...) for each new "
		          "one; %lu so far",
		          s->conns, key, s->closed[why]);
		break;
	case HTTP_CLOSED_PER_ADDR:
		log_warnx("http: %d connections open from %s, closing new "
		          "ones from it (max_conns_per_addr); %lu so far",
		          s->limits.max_per_addr, key, s->closed[why]);
		break;
	case HTTP_CLOSED_FULL:
		log_warnx("http: %d connections open, all being answered: "
		          "closing new ones until some end; %lu so far",
		          s->conns, s->closed[why]);
		break;
	case HTTP_CLOSED_NREASONS:
		fatalx("%s: bad reason", __func__);
	}
}

static void
http_wait_unlink(struct http_conn *c)
{
	struct http_server *s = c->s;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->wait_head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		s->wait_tail = c->prev;
	c->prev = c->next = NULL;
}

static void
http_wait_append(struct http_conn *c)
{
	struct http_server *s = c->s;

	c->next = NULL;
	c->prev = s->wait_tail;
	if (s->wait_tail != NULL)
		s->wait_tail->next = c;
	else
		s->wait_head = c;
	s->wait_tail = c;
}

static void
http_linger_end(struct http_linger *g)
{
	struct http_server *s = g->s;

	if (g->prev != NULL)
		g->prev->next = g->next;
	else
		s->lingering = g->next;
	if (g->next != NULL)
		g->next->prev = g->prev;
	s->nlinger--;
	event_free(g->ev);
	close(g->fd);
	free(g);
}

static void
http_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_linger *g = arg;
	char sink[4096];
	ssize_t n;
	int i;

	if (what & EV_TIMEOUT) {
		http_linger_end(g);
		return;
	}
	for (i = 0; i < 16; i++) {
		n = recv(fd, sink, sizeof(sink), 0);
		if (n > 0)
			continue;
		if (n == -1 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		http_linger_end(g); /* the client closed, or an error */
		return;
	}
}

/*
 * A connection whose TLS handshake failed (a revoked certificate, a
 * wrong role): our alert is in the socket, and with TLS 1.3 the client's
 * first request is usually in our receive queue behind its Finished.
 * Closed at once with those bytes unread, the kernel answers with a
 * reset, which can reach the client before it reads the alert: it then
 * reports "connection reset" instead of "certificate revoked", and an
 * agent cannot tell its operator to enroll again. So the socket is kept
 * on a copy of its descriptor for at most HTTP_LINGER_S seconds: the
 * write side shut (a FIN after the alert), what comes in read and
 * dropped until the client closes. At most HTTP_LINGER_MAX at once;
 * past that, or without memory, it is closed as before.
 */
static void
http_linger(struct http_server *s, evutil_socket_t fd)
{
	struct timeval tv = {HTTP_LINGER_S, 0};
	struct http_linger *g;
	evutil_socket_t d;

	if (s->nlinger >= HTTP_LINGER_MAX)
		return;
	if ((d = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return;
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->ev = event_new(s->base, d, EV_READ | EV_PERSIST, http_linger_cb,
	                       g)) == NULL ||
	    event_add(g->ev, &tv) == -1) {
		if (g != NULL && g->ev != NULL)
			event_free(g->ev);
		free(g);
		close(d);
		return;
	}
	(void)shutdown(d, SHUT_WR);
	g->s = s;
	g->fd = d;
	g->next = s->lingering;
	if (g->next != NULL)
		g->next->prev = g;
	s->lingering = g;
	s->nlinger++;
}

static int http_conn_tls_done(struct http_conn *c);

static void
http_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *s = c->s;

	(void)evcon;
	if (s->ssl_ctx != NULL && !c->cut && !c->handshaken && c->fd >= 0 &&
	    !http_conn_tls_done(c))
		http_linger(s, c->fd);
	http_stream_gone(s, evcon);
	__atomic_sub_fetch(&s->conns, 1, __ATOMIC_RELAXED);
	if (!c->busy)
		http_wait_unlink(c);
	if (s->peers != NULL)
		peers_del(s->peers, c->key);
	if (c->fd >= 0 && (size_t)c->fd < s->nbyfd && s->byfd[c->fd] == c)
		s->byfd[c->fd] = NULL;
	if (c->deadline != NULL)
		event_free(c->deadline);
	free(c);
}

static int
http_conn_tls_done(struct http_conn *c)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((bev = evhttp_connection_get_bufferevent(c->evcon)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return 1; /* plain: nothing to wait for */
	return SSL_is_init_finished(ssl);
}

/* Sets the timer to the nearest deadline that applies now. */
static void
http_conn_arm(struct http_conn *c)
{
	const struct http_limits *l = &c->s->limits;
	struct timespec now;
	struct timeval tv;
	double due = 0, t;
	int have = 0;

	if (c->deadline == NULL)
		return;
	http_mono(&now);
	if (!c->handshaken && l->handshake_timeout > 0) {
		due = l->handshake_timeout - http_since(&c->accepted, &now);
		have = 1;
	}
	if (l->request_timeout > 0) {
		t = l->request_timeout - http_since(&c->start, &now);
		if (!have || t < due)
			due = t;
		have = 1;
	}
	if (!have)
		return;
	if (due < 0)
		due = 0;
	tv.tv_sec = (time_t)due;
	tv.tv_usec = (suseconds_t)((due - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->deadline, &tv);
}

static void
http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *s = c->s;
	const struct http_limits *l = &s->limits;
	enum http_close_reason why;
	struct timespec now;

	(void)fd;
	(void)what;
	if (c->busy)
		return;
	http_mono(&now);
	if (!c->handshaken && http_conn_tls_done(c))
		c->handshaken = 1;
	/* The timer may run a hair early against our clock. */
	if (!c->handshaken && l->handshake_timeout > 0 &&
	    http_since(&c->accepted, &now) >= l->handshake_timeout - 0.01)
		why = HTTP_CLOSED_HANDSHAKE;
	else if (l->request_timeout > 0 &&
	         http_since(&c->start, &now) >= l->request_timeout - 0.01)
		why =
		    c->handshaken ? HTTP_CLOSED_REQUEST : HTTP_CLOSED_HANDSHAKE;
	else {
		http_conn_arm(c);
		return;
	}
	http_note_close(s, why, c->evcon);
	c->cut = 1;
	evhttp_connection_free(c->evcon); /* runs http_closecb */
}

static struct http_conn *
http_conn_of(struct http_server *s, struct evhttp_connection *evcon)
{
	struct bufferevent *bev;
	evutil_socket_t fd;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	fd = bufferevent_getfd(bev);
	if (fd < 0 || (size_t)fd >= s->nbyfd || s->byfd[fd] == NULL ||
	    s->byfd[fd]->evcon != evcon)
		return NULL;
	return s->byfd[fd];
}

/* A request arrived whole: its handler's time is not the client's. */
static void
http_conn_busy(struct http_conn *c)
{
	if (c->busy)
		return;
	if (!c->counted) {
		struct bufferevent *bev;
		SSL *ssl;

		c->counted = 1;
		if ((bev = evhttp_connection_get_bufferevent(c->evcon)) !=
		        NULL &&
		    (ssl = bufferevent_openssl_get_ssl(bev)) != NULL)
			c->s->handshakes[SSL_session_reused(ssl) ? 1 : 0]++;
	}
	c->busy = 1;
	c->handshaken = 1;
	http_wait_unlink(c);
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
}

/* Bytes read from a TLS connection's socket so far; 0 for plain ones. */
static uint64_t
http_conn_rx(const struct http_conn *c)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((bev = evhttp_connection_get_bufferevent(c->evcon)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return 0;
	return BIO_number_read(SSL_get_rbio(ssl));
}

/* 1: a TLS connection that has been answered and has received nothing
 * since (not a byte of a next request, read or waiting in OpenSSL or in
 * its input buffer). Plain connections are never known to be idle. */
static int
http_conn_idle(const struct http_conn *c)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (c->busy || !c->counted ||
	    (bev = evhttp_connection_get_bufferevent(c->evcon)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return 0;
	return BIO_number_read(SSL_get_rbio(ssl)) == c->rx_done &&
	       SSL_pending(ssl) == 0 &&
	       evbuffer_get_length(bufferevent_get_input(bev)) == 0;
}

/* A response was sent in full: the next request has its own deadline.
 * (evhttp calls this only while the connection lives.) */
static void
http_req_donecb(struct evhttp_request *ev, void *arg)
{
	struct http_conn *c = arg;

	(void)ev;
	if (!c->busy)
		return;
	c->busy = 0;
	c->rx_done = http_conn_rx(c);
	http_mono(&c->start);
	http_wait_append(c);
	http_conn_arm(c);
}

/*
 * Counts a new connection, or refuses it (-1: the caller closes it):
 * past max_per_addr from its address; or at max_conns (connections that
 * hold a streaming reply do not count: their callers bound them), unless
 * the oldest connection not being answered (idle, handshaking, still
 * sending its request) can be closed to make room. The per-address check comes
 * first, so a client at its limit cannot push others out.
 */
static int
http_conn_add(struct http_server *s, struct evhttp_connection *evcon,
              evutil_socket_t fd)
{
	struct http_conn *c, **nb;
	char key[PEERS_KEYLEN];
	size_t n;

	if (fd < 0)
		return -1;
	http_addr_key(evcon, key, sizeof(key));
	if (s->peers != NULL &&
	    peers_count(s->peers, key) >= s->limits.max_per_addr) {
		http_note_close(s, HTTP_CLOSED_PER_ADDR, evcon);
		return -1;
	}
	if (s->limits.max_conns > 0 &&
	    s->conns - s->nstreams >= s->limits.max_conns) {
		if (s->wait_head == NULL) {
			http_note_close(s, HTTP_CLOSED_FULL, evcon);
			return -1;
		}
		http_note_close(s, HTTP_CLOSED_EVICTED, s->wait_head->evcon);
		s->wait_head->cut = 1;
		evhttp_connection_free(s->wait_head->evcon); /* closecb */
	}
	if ((size_t)fd >= s->nbyfd) {
		n = (size_t)fd + 64;
		if ((nb = realloc(s->byfd, n * sizeof(*nb))) == NULL)
			return -1;
		memset(nb + s->nbyfd, 0, (n - s->nbyfd) * sizeof(*nb));
		s->byfd = nb;
		s->nbyfd = n;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((s->limits.handshake_timeout > 0 ||
	     s->limits.request_timeout > 0) &&
	    (c->deadline = evtimer_new(s->base, http_deadline_cb, c)) == NULL) {
		free(c);
		return -1;
	}
	if (s->peers != NULL && peers_add(s->peers, key) == -1) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return -1;
	}
	c->s = s;
	c->evcon = evcon;
	c->fd = fd;
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->handshaken = s->ssl_ctx == NULL;
	http_mono(&c->accepted);
	c->start = c->accepted;
	http_wait_append(c);
	s->byfd[fd] = c;
	__atomic_add_fetch(&s->conns, 1, __ATOMIC_RELAXED);
	evhttp_connection_set_closecb(evcon, http_closecb, c);
	http_conn_arm(c);
	return 0;
}

/*
 * Runs once per loop iteration after new connections were accepted: count
 * them, or close those past the limit (and any whose TLS setup failed).
 */
static void
http_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	struct evhttp_connection *evcon;
	bufferevent_event_cb eventcb;
	void *cbarg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < s->nfresh; i++) {
		eventcb = NULL;
		cbarg = NULL;
		bufferevent_getcb(s->fresh[i].bev, NULL, NULL, &eventcb,
		                  &cbarg);
		/* bufferevent_free clears the callbacks: evhttp already
		 * dropped this one (it never got as far as a connection). */
		if (eventcb == NULL || cbarg == NULL)
			goto next;
		evcon = cbarg;
		if (s->fresh[i].reject ||
		    http_conn_add(s, evcon,
		                  bufferevent_getfd(s->fresh[i].bev)) == -1) {
			evhttp_connection_free(evcon);
		} else {
			int one = 1;
			evutil_socket_t cfd =
			    bufferevent_getfd(s->fresh[i].bev);

			/* evhttp writes the headers and the body apart: with
			 * Nagle the body waits for the client's delayed ACK of
			 * the headers (40 ms on Linux) on a kept-alive
			 * connection. */
			if (cfd >= 0)
				(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY,
				                 &one, sizeof(one));
		}
	next:
		bufferevent_decref(s->fresh[i].bev);
	}
	s->nfresh = 0;
}

static int
http_park(struct http_server *s, struct bufferevent *bev, int reject)
{
	struct http_fresh *nf;
	size_t ncap;

	if (s->nfresh == s->capfresh) {
		ncap = s->capfresh ? s->capfresh * 2 : 16;
		if ((nf = realloc(s->fresh, ncap * sizeof(*nf))) == NULL)
			return -1;
		s->fresh = nf;
		s->capfresh = ncap;
	}
	bufferevent_incref(bev);
	s->fresh[s->nfresh].bev = bev;
	s->fresh[s->nfresh].reject = reject;
	s->nfresh++;
	event_active(s->accept_ev, EV_TIMEOUT, 0);
	return 0;
}

/*
 * evhttp's bufferevent factory: one server-side TLS bufferevent per
 * accepted socket (evhttp sets the fd afterwards). Returning NULL would
 * make evhttp fall back to a plain socket, i.e. serve HTTP without TLS on
 * a TLS port; so a failure still returns a plain bufferevent, marked to be
 * closed before it reads anything.
 */
static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
	struct http_server *s = arg;
	struct bufferevent *bev = NULL;
	SSL *ssl = NULL;
	int reject = 0;

	if (s->ssl_ctx != NULL) {
		if ((ssl = SSL_new(s->ssl_ctx)) == NULL) {
			log_warnx("http: SSL_new failed");
		} else if ((bev = bufferevent_openssl_socket_new(
		                base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
		                BEV_OPT_CLOSE_ON_FREE)) == NULL) {
			log_warnx("http: bufferevent_openssl_socket_new "
			          "failed");
			SSL_free(ssl);
		} else {
			/* A client that closes without close_notify after
			 * its last response is common; treat it as EOF. */
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		}
		if (bev == NULL)
			reject = 1;
	}
	if (bev == NULL && (bev = bufferevent_socket_new(
	                        base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;
	if (http_park(s, bev, reject) == -1) {
		/* Unparked, it could be neither counted nor closed early.
		 * The fd is not set yet, so freeing closes nothing; evhttp
		 * then makes its own plain bufferevent (uncounted), and on
		 * a TLS server http_gencb refuses to serve that. */
		log_warnx("http: out of memory accepting a connection");
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}

/* --- requests ----------------------------------------------------------- */

static int
http_route_match(const struct http_route *rt, const char *path,
                 const char **rest)
{
	size_t n;

	if (rt->flags & HTTP_ROUTE_PREFIX) {
		n = strlen(rt->path);
		if (strncmp(path, rt->path, n) != 0)
			return 0;
		*rest = path + n;
		return 1;
	}
	if (strcmp(path, rt->path) != 0)
		return 0;
	*rest = "";
	return 1;
}

/* Frees what the request owns; r itself is the dispatcher's, unless it
 * was deferred (then it is ours and freed here). */
static void
http_req_release(struct http_req *r)
{
	free(r->path);
	r->path = NULL;
	evhttp_clear_headers(&r->query);
	r->peer = NULL;
	json_decref(r->audit_before);
	r->audit_before = NULL;
	r->replied = 1;
	http_relay_free(r->relay);
	r->relay = NULL;
	if (r->deferred)
		free(r);
}

struct http_req *
http_req_defer(struct http_req *r)
{
	struct http_req *d;

	if (r->replied || r->deferred)
		fatalx("%s: request already answered or deferred", __func__);
	if ((d = malloc(sizeof(*d))) == NULL)
		return NULL;
	*d = *r;
	/* The query list head cannot be moved by copying: drop it (the
	 * handler has read what it needs). The certificate belongs to the
	 * connection, which may go away before the reply. */
	evhttp_clear_headers(&r->query);
	d->query.tqh_first = NULL;
	d->query.tqh_last = &d->query.tqh_first;
	d->peer = NULL;
	d->deferred = 1;
	r->path = NULL;
	r->relay = NULL;        /* moved to d */
	r->audit_before = NULL; /* moved to d */
	r->replied = 1;         /* the dispatcher's copy is finished */
	return d;
}

static void
http_set_security_headers(struct http_req *r, int tls)
{
	struct evkeyvalq *out = req_out_headers(r);

	/* API answers carry tokens, certificates and agent data: never
	 * cached, never sniffed as something else, never framed. Handlers
	 * that serve the web UI may override these with http_set_header. */
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	if (tls)
		evhttp_add_header(out, "Strict-Transport-Security",
		                  "max-age=31536000");
}

/*
 * The client certificate, if one was presented and verified. With
 * SSL_VERIFY_PEER OpenSSL normally aborts the handshake on a bad
 * certificate, but a verify callback may let it through; only X509_V_OK
 * counts as an identity.
 */
static X509 *
http_peer_cert(struct evhttp_connection *evcon)
{
	struct bufferevent *bev;
	SSL *ssl;
	X509 *x;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return NULL;
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL)
		return NULL;
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return x;
}

static void
http_reply_405(struct http_req *r, const char *path)
{
	const struct http_route *rt, *prev;
	const char *rest;
	struct buf allow;

	/* Allow lists each method of this path once, in table order. */
	buf_init(&allow, 1024);
	for (rt = r->srv->routes; rt->fn != NULL; rt++) {
		if (!http_route_match(rt, path, &rest))
			continue;
		for (prev = r->srv->routes; prev != rt; prev++)
			if (http_route_match(prev, path, &rest) &&
			    strcmp(prev->method, rt->method) == 0)
				break;
		if (prev != rt)
			continue;
		if ((allow.len > 0 && buf_puts(&allow, ", ") == -1) ||
		    buf_puts(&allow, rt->method) == -1)
			break;
	}
	http_set_header(r, "Allow", buf_cstr(&allow));
	http_reply_error(r, 405, "method_not_allowed",
	                 "%s is not allowed here; allowed: %s", r->method,
	                 buf_cstr(&allow));
	buf_free(&allow);
}

/*
 * Message framing evhttp lets through (RFC 9112 6.1, 6.3): a
 * Transfer-Encoding other than plain "chunked" (evhttp would ignore it and
 * read what follows as the next request) is 501, several Content-Length
 * headers that disagree are 400. Either way the connection is closed, so
 * no byte of the body can be taken for another request. 1 when refused.
 */
static int
framing_refused(struct http_req *r)
{
	struct evkeyvalq *in = req_in_headers(r);
	struct evkeyval *h;
	const char *cl = NULL, *why = NULL;
	int status = 0, nte = 0;

	for (h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
		if (evutil_ascii_strcasecmp(h->key, "Transfer-Encoding") == 0) {
			if (++nte > 1 ||
			    evutil_ascii_strcasecmp(h->value, "chunked") != 0) {
				status = 501;
				why = "only Transfer-Encoding: chunked is "
				      "supported";
			}
		} else if (evutil_ascii_strcasecmp(h->key, "Content-Length") ==
		           0) {
			if (cl != NULL && strcmp(cl, h->value) != 0 &&
			    status == 0) {
				status = 400;
				why = "Content-Length headers that disagree";
			}
			cl = h->value;
		}
	}
	if (status == 0)
		return 0;
	evhttp_add_header(evhttp_request_get_output_headers(r->ev),
	                  "Connection", "close");
	http_reply_error(r, status,
	                 status == 501 ? "not_implemented" : "bad_request",
	                 "%s", why);
	return 1;
}

static void http_dispatch(struct http_server *s, struct http_req *rp,
                          const struct evhttp_uri *uri);

static void
http_gencb(struct evhttp_request *ev, void *arg)
{
	struct http_server *s = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct http_req r;
	struct http_conn *conn;
	char *addr = NULL;
	ev_uint16_t port = 0;

	memset(&r, 0, sizeof(r));
	r.checked = 1;
	/* TAILQ_INIT, spelled out: <sys/queue.h> clashes with evhttp's. */
	r.query.tqh_first = NULL;
	r.query.tqh_last = &r.query.tqh_first;
	r.ev = ev;
	r.srv = s;
	r.arg = s->arg;
	r.rest = "";
	r.method = http_method_name(evhttp_request_get_command(ev));

	if ((conn = http_conn_of(s, evcon)) != NULL) {
		http_conn_busy(conn);
		evhttp_request_set_on_complete_cb(ev, http_req_donecb, conn);
	}
	if (evcon != NULL) {
		evhttp_connection_get_peer(evcon, &addr, &port);
		if (addr != NULL)
			snprintf(r.peer_addr, sizeof(r.peer_addr), "%s", addr);
	}
	if (framing_refused(&r))
		return;
	/* Belt and braces for http_bevcb's fallback: a TLS server never
	 * answers a connection that is not TLS. */
	if (s->ssl_ctx != NULL &&
	    (evcon == NULL ||
	     bufferevent_openssl_get_ssl(
	         evhttp_connection_get_bufferevent(evcon)) == NULL)) {
		log_warnx("http: plain connection from %s on a TLS server, "
		          "closing",
		          r.peer_addr);
		evhttp_add_header(evhttp_request_get_output_headers(ev),
		                  "Connection", "close");
		evhttp_send_reply(ev, 400, NULL, NULL);
		return;
	}
	http_set_security_headers(&r, s->ssl_ctx != NULL);
	r.peer = http_peer_cert(evcon);
	http_dispatch(s, &r, evhttp_request_get_evhttp_uri(ev));
}

/*
 * From the URI on, a request is handled the same whatever its source (a
 * connection, or a relay from another process): route, query, limits,
 * client certificate, authorizer, handler.
 */
static void
http_dispatch(struct http_server *s, struct http_req *rp,
              const struct evhttp_uri *uri)
{
#define r (*rp)
	const struct http_route *rt;
	const char *rest = "", *q;
	int path_known = 0;

	if (uri == NULL || evhttp_uri_get_path(uri) == NULL) {
		http_reply_error(&r, 400, "bad_request", "malformed request");
		return;
	}
	if ((r.path = path_decode(evhttp_uri_get_path(uri),
	                          strlen(evhttp_uri_get_path(uri)))) == NULL) {
		http_reply_error(&r, 400, "bad_request",
		                 "malformed request path");
		return;
	}

	for (rt = s->routes; rt->fn != NULL; rt++) {
		if (!http_route_match(rt, r.path, &rest))
			continue;
		path_known = 1;
		/* HEAD is GET without the body (evhttp drops it). */
		if (strcmp(rt->method, r.method) == 0 ||
		    (strcmp(r.method, "HEAD") == 0 &&
		     strcmp(rt->method, "GET") == 0))
			break;
	}
	if (rt->fn == NULL) {
		if (path_known)
			http_reply_405(&r, r.path);
		else if (s->fallback != NULL &&
		         (strcmp(r.method, "GET") == 0 ||
		          strcmp(r.method, "HEAD") == 0)) {
			s->fallback(&r);
			if (!r.replied)
				http_reply_error(&r, 404, "not_found",
				                 "no such endpoint");
		} else
			http_reply_error(&r, 404, "not_found",
			                 "no such endpoint");
		return;
	}
	r.route = rt;
	r.rest = rest;

	if ((q = evhttp_uri_get_query(uri)) != NULL &&
	    evhttp_parse_query_str(q, &r.query) == -1) {
		http_reply_error(&r, 400, "bad_request",
		                 "malformed query string");
		return;
	}
	if (rt->max_body != 0 &&
	    evbuffer_get_length(req_in_body(&r)) > rt->max_body) {
		http_reply_error(&r, 413, "body_too_large",
		                 "request body larger than %zu bytes",
		                 rt->max_body);
		return;
	}
	if ((rt->flags & HTTP_ROUTE_CERT) && r.peer == NULL) {
		http_reply_error(
		    &r, 401, "client_cert_required",
		    "this endpoint requires a client certificate issued by "
		    "this deployment's CA; enroll the agent first");
		return;
	}
	/* The reply check applies from the authorizer on (it sets what the
	 * check compares with); earlier answers (404, 405, framing) skip it. */
	r.checked = 0;
	if (s->authorize != NULL && s->authorize(&r) == -1) {
		if (!r.replied)
			http_reply_error(&r, 403, "forbidden",
			                 "request not authorized");
		return;
	}

	rt->fn(&r);

	if (!r.replied) {
		log_warnx("http: handler for route %s returned without "
		          "replying",
		          http_route_name(&r));
		http_reply_error(&r, 500, "internal_error",
		                 "the server failed to answer this request");
	}
	if (s->handler_done != NULL)
		s->handler_done(&r);
#undef r
}

int
http_server_relay(struct http_server *s, const struct http_relay_in *in,
                  http_relay_send send, void *ctx, uint64_t id)
{
	struct http_relay *rl;
	struct evhttp_uri *uri = NULL;
	struct http_req r;
	size_t i;

	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return -1;
	rl->in.tqh_first = NULL;
	rl->in.tqh_last = &rl->in.tqh_first;
	rl->out.tqh_first = NULL;
	rl->out.tqh_last = &rl->out.tqh_first;
	rl->send = send;
	rl->stream = in->stream;
	rl->ctx = ctx;
	rl->id = id;
	if ((rl->body = evbuffer_new()) == NULL ||
	    (rl->reply = evbuffer_new()) == NULL ||
	    (in->body_len > 0 &&
	     evbuffer_add(rl->body, in->body, in->body_len) == -1))
		goto fail;
	for (i = 0; i < in->nheaders; i++)
		if (evhttp_add_header(&rl->in, in->names[i], in->values[i]) ==
		    -1)
			goto fail;
	if (in->peer != NULL) {
		X509_up_ref(in->peer);
		rl->peer = in->peer;
	}

	memset(&r, 0, sizeof(r));
	r.checked = 1;
	r.query.tqh_first = NULL;
	r.query.tqh_last = &r.query.tqh_first;
	r.srv = s;
	r.arg = s->arg;
	r.rest = "";
	r.relay = rl;
	r.method = http_method_known(in->method);
	snprintf(r.peer_addr, sizeof(r.peer_addr), "%s", in->peer_addr);
	http_set_security_headers(&r, s->ssl_ctx != NULL || in->tls);
	r.peer = rl->peer;
	/* The worker parsed the request line already; a URI it let
	 * through that does not parse here is answered the same way. */
	uri = evhttp_uri_parse_with_flags(in->uri, 0);
	if (uri != NULL && evhttp_uri_get_query(uri) != NULL &&
	    (rl->rawq = strdup(evhttp_uri_get_query(uri))) == NULL) {
		evhttp_uri_free(uri);
		goto fail;
	}
	http_dispatch(s, &r, uri);
	if (uri != NULL)
		evhttp_uri_free(uri);
	return 0;
fail:
	http_relay_free(rl);
	return -1;
}

/* --- server ------------------------------------------------------------- */

void
http_server_set_authorizer(struct http_server *s, int (*fn)(struct http_req *r))
{
	s->authorize = fn;
}

struct http_server *
http_server_new(struct event_base *base, SSL_CTX *ssl_ctx,
                const struct http_route *routes, void *arg,
                const struct http_limits *limits,
                void (*on_done)(const char *route, int status, void *arg))
{
	struct http_server *s;

	if (base == NULL || routes == NULL) {
		log_warnx("http_server_new: no event base or route table");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("http_server_new: calloc");
		return NULL;
	}
	s->base = base;
	s->routes = routes;
	s->arg = arg;
	s->on_done = on_done;
	if (limits != NULL)
		s->limits = *limits;
	/* 0 means "the default" for the sizes and the timeout; only
	 * max_conns has 0 = unlimited. */
	if (s->limits.max_body == 0)
		s->limits.max_body = HTTP_DEFAULT_MAX_BODY;
	if (s->limits.max_headers == 0)
		s->limits.max_headers = HTTP_DEFAULT_MAX_HEADERS;
	if (s->limits.timeout_secs <= 0)
		s->limits.timeout_secs = HTTP_DEFAULT_TIMEOUT;
	if (s->limits.max_conns < 0)
		s->limits.max_conns = 0;
	if (s->limits.max_per_addr < 0)
		s->limits.max_per_addr = 0;
	if (s->limits.handshake_timeout < 0)
		s->limits.handshake_timeout = 0;
	if (s->limits.request_timeout < 0)
		s->limits.request_timeout = 0;
	if (s->limits.max_per_addr > 0 && (s->peers = peers_new()) == NULL) {
		log_warn("http_server_new: calloc");
		goto fail;
	}

	if ((s->accept_ev = event_new(base, -1, 0, http_accept_cb, s)) ==
	    NULL) {
		log_warnx("http_server_new: event_new failed");
		goto fail;
	}
	if ((s->http = evhttp_new(base)) == NULL) {
		log_warnx("http_server_new: evhttp_new failed");
		goto fail;
	}
	if (ssl_ctx != NULL) {
		SSL_CTX_up_ref(ssl_ctx);
		s->ssl_ctx = ssl_ctx;
	}

	evhttp_set_bevcb(s->http, http_bevcb, s);
	evhttp_set_gencb(s->http, http_gencb, s);
	/* Every method reaches the route table, so an unexpected one gets a
	 * JSON 405/404 rather than evhttp's HTML 501. */
	evhttp_set_allowed_methods(
	    s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(s->http, "application/json");
	evhttp_set_max_body_size(s->http,
	                         s->limits.max_body > (size_t)EV_SSIZE_MAX
	                             ? EV_SSIZE_MAX
	                             : (ev_ssize_t)s->limits.max_body);
	evhttp_set_max_headers_size(s->http,
	                            s->limits.max_headers > (size_t)EV_SSIZE_MAX
	                                ? EV_SSIZE_MAX
	                                : (ev_ssize_t)s->limits.max_headers);
	evhttp_set_timeout(s->http, s->limits.timeout_secs);
	/* No lingering close: evhttp's drains the whole declared body
	 * before answering 413, with no bound, so "Content-Length:
	 * 9223372036854775808" (or a client waiting for 100 Continue) got
	 * no answer at all until the idle timeout. A body over the limit is
	 * refused with 413 as soon as its Content-Length is read; a client
	 * that sends it anyway may see the connection reset after the 413
	 * (curl sends Expect: 100-continue for large bodies and reads it). */
	return s;
fail:
	http_server_free(s);
	return NULL;
}

static void
http_listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_listener *hl = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(hl->l);
}

/* Listeners by their evconnlistener: libevent hands the error callback
 * evhttp's argument, not ours. A server is used by one thread, but a
 * daemon may run one server per thread (vigil-inteld): the table is
 * shared, so it has a lock. */
static struct http_listener *http_listeners[256];
static pthread_mutex_t http_listeners_mu = PTHREAD_MUTEX_INITIALIZER;

static struct http_listener *
http_listener_of(struct evconnlistener *l)
{
	struct http_listener *hl = NULL;
	size_t i;

	pthread_mutex_lock(&http_listeners_mu);
	for (i = 0; i < sizeof(http_listeners) / sizeof(http_listeners[0]); i++)
		if (http_listeners[i] != NULL && http_listeners[i]->l == l)
			hl = http_listeners[i];
	pthread_mutex_unlock(&http_listeners_mu);
	return hl;
}

static void
http_listener_forget(struct http_listener *hl)
{
	size_t i;

	pthread_mutex_lock(&http_listeners_mu);
	for (i = 0; i < sizeof(http_listeners) / sizeof(http_listeners[0]); i++)
		if (http_listeners[i] == hl)
			http_listeners[i] = NULL;
	pthread_mutex_unlock(&http_listeners_mu);
	if (hl->resume != NULL)
		event_free(hl->resume);
	free(hl);
}

/* accept() failed: out of descriptors (or similar). Pause this listener
 * for a second instead of spinning; say so once per episode. */
static void
http_accept_error(struct evconnlistener *l, void *arg)
{
	struct http_listener *hl = http_listener_of(l);
	struct timeval tv = {1, 0};
	int e = EVUTIL_SOCKET_ERROR();

	(void)arg;
	evconnlistener_disable(l);
	if (hl == NULL)
		return;
	if (hl->errors++ % 60 == 0)
		log_warnx("http: accept failed: %s; pausing new connections "
		          "for 1 s (raise the file descriptor limit if this "
		          "repeats)",
		          strerror(e));
	evtimer_add(hl->resume, &tv);
}

/* Binds the address once without SO_REUSEPORT (with SO_REUSEADDR, as
 * the listener will): -1 with errno when something holds it. */
static int
http_probe_port(const struct addrinfo *ai)
{
	int fd, one = 1, rc, saved;

	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	                 ai->ai_protocol)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static int http_server_add_listener(struct http_server *s,
                                    struct http_listener *hl,
                                    struct evhttp_bound_socket *h,
                                    const char *shown, int port, int v6,
                                    int *bound, struct buf *err);

int
http_server_bind(struct http_server *s, const char *host, int port, int *bound,
                 struct buf *err)
{
	struct evhttp_bound_socket *h = NULL;
	struct http_listener *hl;
	struct addrinfo hints, *res = NULL;
	char serv[16];
	int gai = 0;
	const char *shown = host != NULL ? host : "*";
	int v6 = host != NULL && strchr(host, ':') != NULL;
	int saved;

	if (port < 0 || port > 65535) {
		buf_printf(err, "%s%s%s:%d: port out of range", v6 ? "[" : "",
		           shown, v6 ? "]" : "", port);
		return -1;
	}
	if ((hl = calloc(1, sizeof(*hl))) == NULL) {
		buf_printf(err, "%s: out of memory", shown);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(serv, sizeof(serv), "%d", port);
	errno = 0;
	if ((gai = getaddrinfo(host, serv, &hints, &res)) == 0 &&
	    s->limits.reuseport == 1 && port != 0 &&
	    http_probe_port(res) == -1) {
		/* Held already: SO_REUSEPORT alone would share it with
		 * whatever holds it (another copy of this daemon). */
		saved = errno;
		buf_printf(err, "%s%s%s:%d: %s", v6 ? "[" : "", shown,
		           v6 ? "]" : "", port, strerror(saved));
		freeaddrinfo(res);
		free(hl);
		return -1;
	}
	if (gai != 0 ||
	    (hl->l = evconnlistener_new_bind(
	         s->base, NULL, NULL,
	         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	             LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED |
	             (s->limits.reuseport ? LEV_OPT_REUSEABLE_PORT : 0),
	         HTTP_BACKLOG, res->ai_addr, (int)res->ai_addrlen)) == NULL ||
	    (h = evhttp_bind_listener(s->http, hl->l)) == NULL) {
		saved = errno;
		buf_printf(err, "%s%s%s:%d: %s", v6 ? "[" : "", shown,
		           v6 ? "]" : "", port,
		           gai != 0     ? gai_strerror(gai)
		           : saved != 0 ? strerror(saved)
		                        : "cannot bind this address");
		if (hl->l != NULL && h == NULL)
			evconnlistener_free(hl->l);
		if (res != NULL)
			freeaddrinfo(res);
		free(hl);
		return -1;
	}
	freeaddrinfo(res);
	return http_server_add_listener(s, hl, h, shown, port, v6, bound, err);
}

static int
http_server_add_listener(struct http_server *s, struct http_listener *hl,
                         struct evhttp_bound_socket *h, const char *shown,
                         int port, int v6, int *bound, struct buf *err)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int saved;

	hl->resume = evtimer_new(s->base, http_listener_resume, hl);
	{
		size_t i;

		pthread_mutex_lock(&http_listeners_mu);
		for (i = 0;
		     i < sizeof(http_listeners) / sizeof(http_listeners[0]) &&
		     http_listeners[i] != NULL;
		     i++)
			;
		if (i < sizeof(http_listeners) / sizeof(http_listeners[0]))
			http_listeners[i] = hl;
		pthread_mutex_unlock(&http_listeners_mu);
	}
	evconnlistener_set_error_cb(hl->l, http_accept_error);
	evconnlistener_enable(hl->l);
	if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss,
	                &sslen) == -1) {
		saved = errno;
		evhttp_del_accept_socket(s->http, h);
		buf_printf(err, "%s%s%s:%d: getsockname: %s", v6 ? "[" : "",
		           shown, v6 ? "]" : "", port, strerror(saved));
		return -1;
	}
	if (bound != NULL) {
		if (ss.ss_family == AF_INET6)
			*bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			*bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	if (s->nbound < HTTP_MAX_LISTENERS) {
		s->lst[s->nbound] = hl;
		s->bound[s->nbound++] = h;
	} else
		fatalx("%s: more than %d listeners", __func__,
		       HTTP_MAX_LISTENERS);
	return 0;
}

int
http_server_bind_fd(struct http_server *s, int fd, struct buf *err)
{
	struct evhttp_bound_socket *h = NULL;
	struct http_listener *hl;

	if ((hl = calloc(1, sizeof(*hl))) == NULL) {
		buf_printf(err, "listening socket: out of memory");
		close(fd);
		return -1;
	}
	if (evutil_make_socket_nonblocking(fd) == -1 ||
	    (hl->l = evconnlistener_new(s->base, NULL, NULL,
	                                LEV_OPT_CLOSE_ON_FREE |
	                                    LEV_OPT_CLOSE_ON_EXEC |
	                                    LEV_OPT_DISABLED,
	                                -1, fd)) == NULL ||
	    (h = evhttp_bind_listener(s->http, hl->l)) == NULL) {
		buf_printf(err, "listening socket %d: cannot listen on it", fd);
		if (hl->l != NULL)
			evconnlistener_free(hl->l);
		else
			close(fd);
		free(hl);
		return -1;
	}
	return http_server_add_listener(s, hl, h, "inherited", 0, 0, NULL, err);
}

int
http_server_listen_fd(const struct http_server *s)
{
	if (s->nbound == 0)
		return -1;
	return fcntl(evhttp_bound_socket_get_fd(s->bound[0]), F_DUPFD_CLOEXEC,
	             3);
}

int
http_server_listen_join(const struct http_server *s, struct buf *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = -1, one = 1, lfd;

	if (s->nbound == 0 || s->limits.reuseport == 0) {
		buf_printf(err, "no listening socket to join");
		return -1;
	}
	lfd = evhttp_bound_socket_get_fd(s->bound[0]);
	if (getsockname(lfd, (struct sockaddr *)&ss, &len) == -1 ||
	    (fd = socket(ss.ss_family,
	                 SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) ==
	        -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, HTTP_BACKLOG) == -1) {
		buf_printf(err, "another socket on the listening port: %s",
		           strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

void
http_server_stop_listening(struct http_server *s)
{
	size_t i;

	for (i = 0; i < s->nbound; i++) {
		evhttp_del_accept_socket(s->http, s->bound[i]);
		http_listener_forget(s->lst[i]);
	}
	s->nbound = 0;
}

struct event_base *
http_event_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	/* Safe here: the caveat (descriptors dup()ed and closed apart)
	 * does not apply, a socket has one descriptor in one process. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/*
 * The graceful stop of a server that no longer listens: every reply from
 * now on closes its connection (Connection: close), and the connections
 * that wait for a request with nothing of it read yet are closed now, as a
 * keep-alive server may close an idle connection at any time (the client
 * sends its request again on a new one). Connections being answered, and
 * those with part of a request read, finish first; http_server_conns()
 * then falls to 0 as soon as the last reply is out instead of when idle
 * clients happen to leave.
 */
void
http_server_drain(struct http_server *s)
{
	struct http_conn *c, *next;

	s->draining = 1;
	for (c = s->wait_head; c != NULL; c = next) {
		next = c->next;
		if (http_conn_idle(c)) {
			c->cut = 1;
			evhttp_connection_free(c->evcon); /* http_closecb */
		}
	}
}

void
http_server_set_ssl_ctx(struct http_server *s, SSL_CTX *ctx)
{
	/* Connections already open keep their SSL (which holds its own
	 * reference to the old context); new ones get the new context. */
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = ctx;
}

/*
 * Stops listening and closes every connection. Handlers always reply
 * before returning, so no request is left waiting for a handler; a
 * response still queued in user space on a connection is dropped. Must
 * not be called from inside a handler (evhttp is on the stack); schedule
 * it from another event instead.
 */
void
http_server_free(struct http_server *s)
{
	size_t i;

	if (s == NULL)
		return;
	/* evhttp_free closes the listeners first, then each connection
	 * (http_closecb runs for each and still finds s). */
	s->nlinger = HTTP_LINGER_MAX; /* evhttp_free: no new ones */
	if (s->http != NULL)
		evhttp_free(s->http);
	while (s->lingering != NULL)
		http_linger_end(s->lingering);
	/* evhttp_free closed the listeners; drop our side of them. */
	for (i = 0; i < s->nbound; i++)
		http_listener_forget(s->lst[i]);
	for (i = 0; i < s->nfresh; i++)
		bufferevent_decref(s->fresh[i].bev);
	if (s->accept_ev != NULL)
		event_free(s->accept_ev);
	SSL_CTX_free(s->ssl_ctx);
	free(s->fresh);
	free(s->byfd);
	peers_free(s->peers);
	free(s);
}

void
http_server_set_reply_hook(struct http_server *s, http_reply_hook fn)
{
	s->on_reply = fn;
}

void
http_server_set_handler_done(struct http_server *s,
                             void (*fn)(struct http_req *r))
{
	s->handler_done = fn;
}

void
http_server_set_reply_check(struct http_server *s,
                            int (*fn)(struct http_req *r))
{
	s->check = fn;
}

void
http_server_set_fallback(struct http_server *s, http_handler fn)
{
	s->fallback = fn;
}

/* 1 when the daemon's check replaced the reply (see the header). */
static int
reply_checked(struct http_req *r, int status)
{
	if (r->checked || r->srv->check == NULL || status >= 500)
		return 0;
	r->checked = 1;
	return r->srv->check(r) == -1;
}

int
http_server_conns(const struct http_server *s)
{
	/* read from other threads too (vigil-inteld's /metrics, its stop) */
	return __atomic_load_n(&s->conns, __ATOMIC_RELAXED);
}

unsigned long
http_server_tls(const struct http_server *s, int resumed)
{
	return s->handshakes[resumed ? 1 : 0];
}

/* --- request helpers ---------------------------------------------------- */

const uint8_t *
http_req_body(struct http_req *r, size_t *len)
{
	struct evbuffer *in = req_in_body(r);
	size_t n = evbuffer_get_length(in);

	*len = n;
	if (n == 0)
		return (const uint8_t *)"";
	/* The body is at most max_body bytes; make it contiguous. */
	return evbuffer_pullup(in, -1);
}

json_t *
http_req_json(struct http_req *r)
{
	const uint8_t *body;
	json_error_t jerr;
	json_t *j;
	size_t len;

	if ((body = http_req_body(r, &len)) == NULL) {
		http_reply_error(r, 500, "internal_error", "out of memory");
		return NULL;
	}
	/* Duplicate keys are refused: two parsers reading one document
	 * differently is how authorisation checks get bypassed. */
	if ((j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	                    &jerr)) == NULL) {
		http_reply_error(r, 400, "bad_json",
		                 "invalid JSON at line %d column %d: %s",
		                 jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_reply_error(r, 400, "bad_json",
		                 "the request body must be a JSON object");
		return NULL;
	}
	return j;
}

const char *
http_req_query(struct http_req *r, const char *name)
{
	return evhttp_find_header(&r->query, name);
}

const char *
http_req_raw_query(struct http_req *r)
{
	const struct evhttp_uri *u;

	if (r->relay != NULL)
		return r->relay->rawq;
	if (r->ev == NULL || (u = evhttp_request_get_evhttp_uri(r->ev)) == NULL)
		return NULL;
	return evhttp_uri_get_query(u);
}

const char *
http_req_header(struct http_req *r, const char *name)
{
	return evhttp_find_header(req_in_headers(r), name);
}

/* --- replies ------------------------------------------------------------ */

void
http_set_header(struct http_req *r, const char *name, const char *val)
{
	struct evkeyvalq *out;

	if (r->replied)
		return;
	out = req_out_headers(r);
	evhttp_remove_header(out, name);
	/* evhttp refuses CR/LF in names and values (no header injection). */
	if (evhttp_add_header(out, name, val) == -1)
		log_warnx("http: route %s: header %s refused",
		          http_route_name(r), name);
}

void
http_remove_header(struct http_req *r, const char *name)
{
	if (r->replied)
		return;
	while (evhttp_remove_header(req_out_headers(r), name) == 0)
		;
}

void
http_add_header(struct http_req *r, const char *name, const char *val)
{
	if (r->replied)
		return;
	if (evhttp_add_header(req_out_headers(r), name, val) == -1)
		log_warnx("http: route %s: header %s refused",
		          http_route_name(r), name);
}

/* The one place a response leaves: status, type, body, then on_done. */
static void
http_send(struct http_req *r, int status, const char *ctype, const void *body,
          size_t len)
{
	struct evkeyvalq *out;
	struct evbuffer *ob;
	struct http_server *srv;
	const char *name = http_route_name(r);

	if (r->replied) {
		log_warnx("http: route %s replied twice; second reply "
		          "(status %d) dropped",
		          name, status);
		return;
	}
	if (reply_checked(r, status))
		return;
	if (status < 100 || status > 599) {
		log_warnx("http: route %s: invalid status %d", name, status);
		status = 500;
		ctype = "application/json";
		body = "{\"error\":{\"code\":\"internal_error\","
		       "\"message\":\"invalid status\"}}";
		len = strlen(body);
	}
	out = req_out_headers(r);
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", ctype);
	ob = req_out_body(r);
	/* Empty but for a reply the hook replaced by this one. */
	evbuffer_drain(ob, evbuffer_get_length(ob));
	if (len > 0 && evbuffer_add(ob, body, len) == -1) {
		log_warnx("http: route %s: out of memory for the reply", name);
		status = 500;
		evbuffer_drain(ob, evbuffer_get_length(ob));
	}
	if (r->srv->on_reply != NULL && !r->hooked) {
		int deferred = r->deferred;

		r->hooked = 1;
		/* -1: the hook replied instead (through this function
		 * again), and a deferred r is gone (freed). */
		if (r->srv->on_reply(r, status, evbuffer_pullup(ob, -1),
		                     evbuffer_get_length(ob)) == -1) {
			if (!deferred && !r->replied)
				fatalx("%s: reply hook refused without "
				       "replying",
				       __func__);
			return;
		}
	}
	/* r->ev may be freed inside evhttp_send_reply (a write error is
	 * reported synchronously); nothing below touches it. */
	req_send(r, status, -1, 0);
	srv = r->srv;
	http_req_release(r); /* frees r if it was deferred */
	if (srv->on_done != NULL)
		srv->on_done(name, status, srv->arg);
}

void
http_reply_json(struct http_req *r, int status, json_t *body)
{
	static const char oom[] = "{\"error\":{\"code\":\"internal_error\","
	                          "\"message\":\"out of memory\"}}";
	char *text;

	if (body == NULL) {
		/* Usually a json_pack that failed: the handler's bug or
		 * memory, either way not the client's fault. */
		log_warnx("http: route %s replied with no JSON body",
		          http_route_name(r));
		http_send(r, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
		json_decref(body);
		http_send(r, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	json_decref(body);
	http_send(r, status, "application/json", text, strlen(text));
	free(text);
}

void
http_reply_file(struct http_req *r, int status, const char *ctype, int fd,
                size_t len)
{
	struct evkeyvalq *out;
	struct evbuffer *ob;
	struct http_server *srv;
	const char *name = http_route_name(r);

	if (r->replied) {
		log_warnx("http: route %s replied twice; second reply "
		          "(status %d) dropped",
		          name, status);
		close(fd);
		return;
	}
	if (reply_checked(r, status)) {
		close(fd);
		return;
	}
	out = req_out_headers(r);
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", ctype);
	ob = req_out_body(r);
	if (r->relay != NULL) {
		/* The worker sends the file: the descriptor goes to it. */
		if (r->srv->on_reply != NULL)
			r->srv->on_reply(r, status, "", 0);
		req_send(r, status, fd, len);
		goto sent;
	}
	/* evbuffer_add_file owns fd from here, even when it fails */
	if (evbuffer_add_file(ob, fd, 0, (ev_off_t)len) == -1) {
		log_warnx("http: route %s: cannot send the file", name);
		evbuffer_drain(ob, evbuffer_get_length(ob));
		http_reply_error(r, 500, "internal_error",
		                 "cannot send the file");
		return;
	}
	if (r->srv->on_reply != NULL)
		r->srv->on_reply(r, status, "", 0);
	evhttp_send_reply(r->ev, status, NULL, NULL);
sent:
	srv = r->srv;
	http_req_release(r);
	if (srv->on_done != NULL)
		srv->on_done(name, status, srv->arg);
}

void
http_reply_text(struct http_req *r, int status, const char *ctype,
                const void *body, size_t len)
{
	http_send(r, status, ctype, body, len);
}

static void http_reply_errorv(struct http_req *r, int status, const char *code,
                              const char *field, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void
http_reply_errorv(struct http_req *r, int status, const char *code,
                  const char *field, const char *fmt, va_list ap)
{
	char *msg = NULL;
	json_t *j;
	size_t i;
	int n;

	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		msg = NULL;
	j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
	              msg != NULL ? msg : "");
	if (j == NULL && msg != NULL) {
		/* Only invalid UTF-8 (say, from a client's bytes quoted in
		 * the message) makes the pack fail; make it ASCII. */
		for (i = 0; msg[i] != '\0'; i++)
			if ((unsigned char)msg[i] < 0x20 ||
			    (unsigned char)msg[i] > 0x7e)
				msg[i] = '?';
		j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
		              msg);
	}
	/* "name: why" messages (the convention for 400s) name their
	 * field; carry it in "field" too. */
	if (j != NULL && field == NULL && status == 400 && msg != NULL) {
		i = strspn(msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
		                "UVWXYZ0123456789_.[]");
		if (i > 0 && i < 128 && msg[i] == ':' && msg[i + 1] == ' ') {
			msg[i] = '\0';
			field = msg;
		}
	}
	if (j != NULL && field != NULL) {
		json_t *f = json_string(field);

		/* A field name quoted from the request may be bad UTF-8. */
		if (f == NULL)
			f = json_string("?");
		json_object_set_new(json_object_get(j, "error"), "field", f);
	}
	free(msg);
	http_reply_json(r, status, j);
}

void
http_reply_error(struct http_req *r, int status, const char *code,
                 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	http_reply_errorv(r, status, code, NULL, fmt, ap);
	va_end(ap);
}

void
http_reply_error_field(struct http_req *r, int status, const char *code,
                       const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	http_reply_errorv(r, status, code, field, fmt, ap);
	va_end(ap);
}

const char *
http_req_rest_id(struct http_req *r, char *id, size_t n)
{
	const char *slash = strchr(r->rest, '/');
	size_t len = slash ? (size_t)(slash - r->rest) : strlen(r->rest);

	if (len == 0 || len >= n)
		return NULL;
	memcpy(id, r->rest, len);
	id[len] = '\0';
	return slash ? slash : "";
}

/* --- streaming replies -------------------------------------------------- */

/*
 * A reply whose body is sent in pieces (http_req_stream_*). The request
 * stays on its connection with its reply unfinished; evhttp then lets go
 * of it when the connection fails (the client left, a timeout), and
 * http_closecb tells us through http_stream_gone, which frees it.
 */
#define HTTP_STREAM_MAX_IN                                                     \
	4096 /* bytes read from a client that should                           \
	        send none (bounded, then refused) */

#define HTTP_STREAM_SNDBUF 16384 /* SO_SNDBUF of a stream's socket */

struct http_stream {
	struct http_stream *prev, *next; /* on srv->streams */
	struct http_server *srv;
	struct evhttp_request *ev;
	struct evhttp_connection *evcon;
	struct evbuffer *chunk;
	size_t max_queued;
	http_stream_closed on_closed;
	void *arg;
	const char *name; /* the route's, for messages */
	char peer_addr[64];
	int linked; /* on srv->streams */
	/* A relayed stream (ev and evcon NULL): its worker has the client. */
	const struct http_relay_stream_ops *ops;
	void *rctx;
	uint64_t rid;
	int slow; /* its worker dropped the client for not reading */
};

static void
http_stream_unlink(struct http_stream *st)
{
	if (!st->linked)
		return;
	st->linked = 0;
	st->srv->nstreams--;
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		st->srv->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
}

static void
http_stream_free(struct http_stream *st)
{
	http_stream_unlink(st);
	if (st->chunk != NULL)
		evbuffer_free(st->chunk);
	free(st);
}

/* The connection evcon is being freed: end its stream, if any. */
static void
http_stream_gone(struct http_server *s, struct evhttp_connection *evcon)
{
	struct http_stream *st, *next;

	for (st = s->streams; st != NULL; st = next) {
		next = st->next;
		if (st->evcon != evcon)
			continue;
		/* A request evhttp let go of (its reply unfinished) is
		 * ours to free; one still on the connection goes with it. */
		if (evhttp_request_get_connection(st->ev) == NULL)
			evhttp_request_free(st->ev);
		http_stream_unlink(st);
		if (st->on_closed != NULL)
			st->on_closed(st, st->arg);
		http_stream_free(st);
	}
}

static void
http_stream_link(struct http_server *srv, struct http_stream *st)
{
	st->next = srv->streams;
	if (srv->streams != NULL)
		srv->streams->prev = st;
	srv->streams = st;
	st->linked = 1;
	srv->nstreams++;
}

/* http_req_stream_start for a relayed request: the head goes to the
 * worker, which holds the client (see http_server_relay). */
static struct http_stream *
http_relay_stream_start(struct http_req *r, int status, const char *ctype,
                        size_t max_queued, http_stream_closed on_closed,
                        void *arg)
{
	struct http_relay *rl = r->relay;
	struct http_server *srv = r->srv;
	const char *name = http_route_name(r);
	struct http_stream *st;

	if (rl->stream == NULL) {
		/* No route a gateway worker relays streams its reply. */
		http_reply_error(r, 501, "not_implemented",
		                 "streaming replies are not relayed");
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		http_reply_error(r, 500, "internal_error", "out of memory");
		return NULL;
	}
	if (reply_checked(r, status)) {
		free(st);
		return NULL;
	}
	st->srv = srv;
	st->max_queued = max_queued;
	st->on_closed = on_closed;
	st->arg = arg;
	st->name = name;
	st->ops = rl->stream;
	st->rctx = rl->ctx;
	st->rid = rl->id;
	snprintf(st->peer_addr, sizeof(st->peer_addr), "%s", r->peer_addr);
	evhttp_remove_header(&rl->out, "Content-Type");
	evhttp_add_header(&rl->out, "Content-Type", ctype);
	evhttp_remove_header(&rl->out, "Connection");
	evhttp_add_header(&rl->out, "Connection", "close");
	if (srv->on_reply != NULL && !r->hooked) {
		r->hooked = 1;
		if (srv->on_reply(r, status, "", 0) == -1) {
			free(st);
			return NULL;
		}
	}
	if (st->ops->start(st->rctx, st->rid, status, &rl->out, max_queued) ==
	    -1) {
		log_warnx("http: route %s: the stream to %s could not start "
		          "(its worker is gone)",
		          name, st->peer_addr);
		free(st);
		st = NULL;
	} else
		http_stream_link(srv, st);
	http_req_release(r);
	if (srv->on_done != NULL)
		srv->on_done(name, status, srv->arg);
	return st;
}

void
http_server_relay_gone(struct http_server *s, void *ctx, uint64_t id, int slow)
{
	struct http_stream *st;

	for (st = s->streams; st != NULL; st = st->next)
		if (st->ops != NULL && st->rctx == ctx && st->rid == id)
			break;
	if (st == NULL)
		return;
	if (slow) {
		st->slow = 1; /* the next send says so */
		return;
	}
	http_stream_unlink(st);
	if (st->on_closed != NULL)
		st->on_closed(st, st->arg);
	http_stream_free(st);
}

void
http_server_relay_gone_all(struct http_server *s, void *ctx)
{
	struct http_stream *st, *next;

	for (st = s->streams; st != NULL; st = next) {
		next = st->next;
		if (st->ops == NULL || st->rctx != ctx)
			continue;
		http_stream_unlink(st);
		if (st->on_closed != NULL)
			st->on_closed(st, st->arg);
		http_stream_free(st);
		/* on_closed may have ended others: start over */
		next = s->streams;
	}
}

struct http_stream *
http_req_stream_start(struct http_req *r, int status, const char *ctype,
                      size_t max_queued, http_stream_closed on_closed,
                      void *arg)
{
	struct evhttp_connection *evcon =
	    r->ev != NULL ? evhttp_request_get_connection(r->ev) : NULL;
	struct http_server *srv = r->srv;
	const char *name = http_route_name(r);
	struct evkeyvalq *out;
	struct bufferevent *bev;
	struct http_stream *st;
	struct timeval tv;
	evutil_socket_t fd;
	int sndbuf = HTTP_STREAM_SNDBUF;

	if (r->replied)
		fatalx("%s: request already answered", __func__);
	if (strcmp(r->method, "HEAD") == 0) {
		http_send(r, status, ctype, "", 0);
		return NULL;
	}
	if (r->relay != NULL)
		return http_relay_stream_start(r, status, ctype, max_queued,
		                               on_closed, arg);
	if (evcon == NULL && r->deferred) {
		/* A deferred request whose client left meanwhile: the reply
		 * is discarded (and r freed), as any other would be. */
		http_send(r, status, ctype, "", 0);
		return NULL;
	}
	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		fatalx("%s: request without a connection", __func__);
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->chunk = evbuffer_new()) == NULL) {
		free(st);
		http_reply_error(r, 500, "internal_error", "out of memory");
		return NULL;
	}
	if (reply_checked(r, status)) {
		evbuffer_free(st->chunk);
		free(st);
		return NULL;
	}
	st->srv = srv;
	st->ev = r->ev;
	st->evcon = evcon;
	st->max_queued = max_queued;
	st->on_closed = on_closed;
	st->arg = arg;
	st->name = name;
	snprintf(st->peer_addr, sizeof(st->peer_addr), "%s", r->peer_addr);
	out = evhttp_request_get_output_headers(r->ev);
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_remove_header(out, "Connection");
	evhttp_add_header(out, "Connection", "close");
	if (srv->on_reply != NULL && !r->hooked) {
		r->hooked = 1;
		if (srv->on_reply(r, status, "", 0) == -1) {
			/* It answered with an error instead. */
			evbuffer_free(st->chunk);
			free(st);
			return NULL;
		}
	}
	evhttp_send_reply_start(r->ev, status, NULL);
	/* No read timeout (the client has nothing more to say), a write
	 * timeout (it must keep reading), and a bound on what it may send. */
	tv.tv_sec = srv->limits.timeout_secs;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(bev, NULL, &tv);
	bufferevent_setwatermark(bev, EV_READ, 0, HTTP_STREAM_MAX_IN);
	/* A stream is a trickle: a small kernel buffer makes a client that
	 * stopped reading show in our own queue soon, where max_queued
	 * bounds it (the kernel would take megabytes first). */
	if ((fd = bufferevent_getfd(bev)) >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		                 sizeof(sndbuf));
	http_stream_link(srv, st);
	http_req_release(r);
	if (srv->on_done != NULL)
		srv->on_done(name, status, srv->arg);
	return st;
}

size_t
http_req_stream_queued(const struct http_stream *st)
{
	if (st->ops != NULL)
		return 0; /* the worker holds it (and bounds it) */
	return evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(st->evcon)));
}

int
http_req_stream_send(struct http_stream *st, const void *p, size_t len)
{
	struct bufferevent *bev;
	struct evhttp_connection *evcon = st->evcon;
	size_t queued;
	const char *why = NULL;

	if (st->ops != NULL) {
		if (st->slow) {
			log_warnx(
			    "http: route %s: closing the stream to %s: it "
			    "does not read what is sent (its worker "
			    "dropped it)",
			    st->name, st->peer_addr);
			http_stream_free(st);
			return -1;
		}
		/* A relayed stream: chunks of at most 1 MiB (the relay's). */
		while (len > 0) {
			size_t n = len > (1u << 20) ? (1u << 20) : len;

			if (st->ops->chunk(st->rctx, st->rid, p, n) == -1) {
				log_warnx("http: route %s: closing the stream "
				          "to %s: its worker is gone",
				          st->name, st->peer_addr);
				http_stream_free(st);
				return -1;
			}
			p = (const uint8_t *)p + n;
			len -= n;
		}
		return 0;
	}
	bev = evhttp_connection_get_bufferevent(st->evcon);
	queued = http_req_stream_queued(st);

	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		why = "it sent data on a streaming reply";
	else if (queued + len > st->max_queued)
		why = "it does not read what is sent";
	else if (evbuffer_add(st->chunk, p, len) == -1)
		why = "out of memory";
	if (why == NULL) {
		evhttp_send_reply_chunk(st->ev, st->chunk);
		return 0;
	}
	log_warnx("http: route %s: closing the stream to %s: %s (%zu bytes "
	          "waiting)",
	          st->name, st->peer_addr, why, queued);
	/* Unlinked first: the close callback must not find it. The
	 * request goes with the connection. */
	http_stream_free(st);
	evhttp_connection_free(evcon);
	return -1;
}

void
http_req_stream_end(struct http_stream *st)
{
	struct evhttp_request *ev = st->ev;

	if (st->ops != NULL) {
		st->ops->end(st->rctx, st->rid);
		http_stream_free(st);
		return;
	}

	http_stream_free(st);
	evhttp_send_reply_end(ev);
}
