/*
 * hstream: the streaming HTTP/1.1 server (see hstream.h for why it exists
 * beside http.c).
 *
 * Each connection has an http_parser. Plain connections are read by our
 * own read event into one server-wide buffer of read_size bytes (libevent
 * 2.1's evbuffer_read takes at most 4 KiB per call) and parsed straight
 * from it; TLS connections are read by bufferevent_openssl and parsed from
 * its input buffer. Replies always go out through the connection's
 * bufferevent. Bytes the parser did not take (a pipelined request after a
 * complete one) wait in c->held until the reply to the current request.
 *
 * Closing: after an error reply or a reply before the body ended, the
 * output is flushed, the write side shut down, and what the client still
 * sends is read and dropped for a moment (a close with unread data would
 * make the kernel send a reset, and the client might lose the reply).
 *
 * Slow and idle clients: the read timeout (idle_secs) is renewed by every
 * byte, so 128 idle connections, or as many sending a byte now and then,
 * shut everyone else out. Each connection therefore has total deadlines,
 * one timer (dl_ev) for all: the TLS handshake within handshake_secs of
 * the accept, the request line and headers within header_secs of the
 * accept or of the previous reply, the body within body_secs of the end
 * of its headers, the lingering close within HS_LINGER_SECS. A handler's
 * own time is not counted. One address may hold max_per_addr connections
 * (peers.c), and at max_conns the oldest connection that is not being
 * answered (idle, handshaking, sending its headers) is closed for the
 * new one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <http_parser.h>

#include "hstream.h"
#include "log.h"
#include "peers.h"

#define HS_DEFAULT_MAX_BODY    (1024ULL * 1024)
#define HS_DEFAULT_MAX_HEADERS (16 * 1024)
#define HS_DEFAULT_SECS        30
#define HS_DEFAULT_READ        (256 * 1024)
#define HS_MAX_LISTENERS       8
#define HS_LINGER_SECS         2
#define HS_LINGER_BYTES        (4 * 1024 * 1024)
/* Replies not yet taken by the client: beyond this, no further request
 * is read (a client that pipelines without reading cannot grow it). */
#define HS_MAX_OUTPUT (256 * 1024)

struct hs_conn;

struct hs_req {
	struct hs_conn *c; /* NULL once the connection is gone */
	struct hs_server *s;
	const struct hs_route *route;
	struct buf url;
	struct buf hdrs; /* "name\0value\0" ... */
	int in_value;
	char *path;
	struct evkeyvalq query;
	int query_parsed;
	long long clen;
	unsigned long long max_body, body;
	int (*on_data)(struct hs_req *, const uint8_t *, size_t, void *);
	void (*on_end)(struct hs_req *, int, void *);
	void *barg;
	int owned;    /* the handler was called: it replies */
	int complete; /* the whole message was read */
	int keepalive;
	int hdrs_done; /* on_headers_complete ran: later fields are trailers */
	int indent;    /* JSON replies indented this much (0: compact) */
	char extra[128]; /* header lines for the reply ("Name: value\r\n") */
};

struct hs_conn {
	struct hs_server *s;
	struct hs_conn *prev, *next;
	struct hs_conn *wprev, *wnext; /* on s->wait: not being answered */
	int on_wait;
	struct timespec accepted, start, body_start;
	int handshaken;         /* TLS handshake seen complete (or plain) */
	char key[PEERS_KEYLEN]; /* counted in s->peers when set */
	evutil_socket_t fd;
	struct bufferevent *bev;
	struct event *rev;    /* plain: our read event */
	struct event *dl_ev;  /* the deadlines (see the top) */
	struct event *resume; /* parse what is held, after a reply */
	struct evbuffer *held;
	http_parser p;
	struct hs_req *req; /* the request being read or answered */
	char peer[64];
	int waiting; /* a message is complete; its reply is awaited */
	int closing; /* close once the output is flushed */
	int lingering;
	size_t lingered;
	int in_parse;
};

struct hs_server {
	struct event_base *base;
	SSL_CTX *ssl_ctx;
	const struct hs_route *routes;
	void *arg;
	struct hs_limits lim;
	uint8_t *rbuf;
	struct hs_conn *conns;
	struct hs_conn *wait_head, *wait_tail; /* oldest start first */
	struct peers *peers;                   /* when max_per_addr */
	unsigned long closed[HS_CLOSED_NREASONS];
	time_t warned[HS_CLOSED_NREASONS];
	int nconns;
	struct evconnlistener *lst[HS_MAX_LISTENERS];
	size_t nlst;
	struct event *resume; /* re-enables the listeners after an accept
	                         error */
	unsigned long accept_errors;
	int stopping; /* no more listening: connections end after a reply */
};

static void conn_free(struct hs_conn *c);
static void conn_process(struct hs_conn *c);
static void conn_read_enable(struct hs_conn *c, int on);
static void conn_wait(struct hs_conn *c, int on);
static void conn_arm(struct hs_conn *c);
static void hs_listen_resume(evutil_socket_t fd, short what, void *arg);

/* --- replies ------------------------------------------------------------- */

static const char *
hs_reason(int status)
{
	const char *s = http_status_str((enum http_status)status);

	return s != NULL && strcmp(s, "<unknown>") != 0 ? s : "Unknown";
}

/* extra: more header lines ("Name: value\r\n"...), or "". */
static void
conn_write_reply(struct hs_conn *c, int status, const char *body, size_t len,
                 int close, const char *extra)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\n"
	                    "Content-Type: application/json\r\n"
	                    "Content-Length: %zu\r\n"
	                    "Cache-Control: no-store\r\n"
	                    "X-Content-Type-Options: nosniff\r\n"
	                    "X-Frame-Options: DENY\r\n"
	                    "Referrer-Policy: no-referrer\r\n"
	                    "%s%s\r\n",
	                    status, hs_reason(status), len, extra,
	                    close ? "Connection: close\r\n" : "");
	evbuffer_add(out, body, len);
	if (close) {
		c->closing = 1;
		conn_wait(c, 0);
	}
}

static char *
hs_msg_json(const char *msg)
{
	json_t *j = json_pack("{s:s}", "message", msg);
	char *t = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return t;
}

/* The server's own error: JSON (with the header lines extra), then the
 * connection is closed. */
static void
conn_error_hdr(struct hs_conn *c, int status, const char *msg,
               const char *extra)
{
	char *t;

	if (c->closing)
		return;
	if ((status == 413 || status == 503) && c->s->lim.on_refused != NULL)
		c->s->lim.on_refused(c->s->arg, status);
	t = hs_msg_json(msg);
	conn_write_reply(c, status, t != NULL ? t : "{}",
	                 t != NULL ? strlen(t) : 2, 1, extra);
	free(t);
	conn_read_enable(c, 1); /* to drain while lingering */
}

static void
conn_error(struct hs_conn *c, int status, const char *msg)
{
	conn_error_hdr(c, status, msg, "");
}

static void
req_free(struct hs_req *r)
{
	if (r == NULL)
		return;
	buf_free(&r->url);
	buf_free(&r->hdrs);
	free(r->path);
	if (r->query_parsed)
		evhttp_clear_headers(&r->query);
	free(r);
}

/* The connection lets go of its request: a handler still owns it (it will
 * reply, to nobody), or nobody does and it is freed. */
static void
conn_drop_req(struct hs_conn *c, int aborted)
{
	struct hs_req *r = c->req;

	if (r == NULL)
		return;
	c->req = NULL;
	r->c = NULL;
	if (!r->owned) {
		req_free(r);
		return;
	}
	if (aborted && !r->complete && r->on_end != NULL) {
		void (*fn)(struct hs_req *, int, void *) = r->on_end;

		r->on_end = NULL;
		r->on_data = NULL;
		fn(r, 0, r->barg);
	}
}

void
hs_reply_json(struct hs_req *r, int status, json_t *body)
{
	struct hs_conn *c = r->c;
	char *t = NULL;
	int close;

	if (c == NULL)
		goto out;
	t = body != NULL
	        ? json_dumps(body, (r->indent > 0 ? JSON_INDENT(r->indent)
	                                          : JSON_COMPACT) |
	                               JSON_ENCODE_ANY)
	        : NULL;
	/* Replied before the whole body came: the rest is not read. */
	close = !r->keepalive || c->s->stopping ||
	        (!r->complete && (r->clen > 0 || (c->p.flags & F_CHUNKED)));
	if (t == NULL) {
		status = 500;
		t = hs_msg_json("out of memory");
	}
	conn_write_reply(c, status, t != NULL ? t : "{}",
	                 t != NULL ? strlen(t) : 2, close, r->extra);
	c->req = NULL;
	if (close) {
		conn_read_enable(c, 1); /* drain while lingering */
	} else {
		/* The next request (held, or still to be read) after this. */
		if (c->waiting) {
			c->waiting = 0;
			http_parser_pause(&c->p, 0);
		}
		clock_gettime(CLOCK_MONOTONIC, &c->start);
		conn_wait(c, 1);
		conn_arm(c);
		event_active(c->resume, EV_TIMEOUT, 0);
	}
out:
	free(t);
	json_decref(body);
	req_free(r);
}

void
hs_req_json_indent(struct hs_req *r, int indent)
{
	r->indent = indent < 0 ? 0 : indent > 8 ? 8 : indent;
}

int
hs_req_add_header(struct hs_req *r, const char *name, const char *value)
{
	size_t len = strlen(r->extra);
	int n;

	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return -1;
	n = snprintf(r->extra + len, sizeof(r->extra) - len, "%s: %s\r\n", name,
	             value);
	if (n < 0 || (size_t)n >= sizeof(r->extra) - len) {
		r->extra[len] = '\0';
		return -1;
	}
	return 0;
}

void
hs_reply_msg(struct hs_req *r, int status, const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	json_t *j;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((j = json_pack("{s:s}", "message", msg)) == NULL) {
		/* not UTF-8 (a client's bytes quoted): make it ASCII */
		for (i = 0; msg[i] != '\0'; i++)
			if ((unsigned char)msg[i] < 0x20 ||
			    (unsigned char)msg[i] > 0x7e)
				msg[i] = '?';
		j = json_pack("{s:s}", "message", msg);
	}
	hs_reply_json(r, status, j);
}

/* --- request accessors --------------------------------------------------- */

void
hs_req_body(struct hs_req *r,
            int (*on_data)(struct hs_req *r, const uint8_t *p, size_t n,
                           void *arg),
            void (*on_end)(struct hs_req *r, int ok, void *arg), void *arg)
{
	r->on_data = on_data;
	r->on_end = on_end;
	r->barg = arg;
}

const char *
hs_req_method(const struct hs_req *r)
{
	return r->route != NULL ? r->route->method : "";
}

const char *
hs_req_path(const struct hs_req *r)
{
	return r->path != NULL ? r->path : "";
}

const char *
hs_req_header(const struct hs_req *r, const char *name)
{
	const char *p = (const char *)r->hdrs.data,
	           *end = p != NULL ? p + r->hdrs.len : NULL, *v;

	while (p != NULL && p < end) {
		v = p + strlen(p) + 1;
		if (v >= end)
			break;
		if (strcasecmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

const char *
hs_req_query(struct hs_req *r, const char *name)
{
	struct http_parser_url u;
	const char *url = buf_cstr(&r->url);
	char *q;

	if (!r->query_parsed) {
		TAILQ_INIT(&r->query);
		r->query_parsed = 1;
		http_parser_url_init(&u);
		if (http_parser_parse_url(url, r->url.len, 0, &u) == 0 &&
		    (u.field_set & (1 << UF_QUERY)) &&
		    (q = strndup(url + u.field_data[UF_QUERY].off,
		                 u.field_data[UF_QUERY].len)) != NULL) {
			(void)evhttp_parse_query_str(q, &r->query);
			free(q);
		}
	}
	return evhttp_find_header(&r->query, name);
}

long long
hs_req_content_length(const struct hs_req *r)
{
	return r->clen;
}

const char *
hs_req_peer(const struct hs_req *r)
{
	return r->c != NULL ? r->c->peer : "";
}

void *
hs_req_arg(const struct hs_req *r)
{
	return r->s->arg;
}

/* --- parser callbacks ---------------------------------------------------- */

static int
hs_header_bytes(struct hs_conn *c, size_t n)
{
	struct hs_req *r = c->req;

	if (r->url.len + r->hdrs.len + n > c->s->lim.max_headers) {
		conn_error(c, 431, "request header fields too large");
		return -1;
	}
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct hs_conn *c = p->data;
	struct hs_req *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		conn_error(c, 503, "out of memory");
		return -1;
	}
	r->c = c;
	r->s = c->s;
	r->clen = -1;
	buf_init(&r->url, c->s->lim.max_headers);
	buf_init(&r->hdrs, c->s->lim.max_headers);
	c->req = r;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
	struct hs_conn *c = p->data;

	if (hs_header_bytes(c, n) == -1 ||
	    buf_append(&c->req->url, at, n) == -1)
		return -1;
	return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
	struct hs_conn *c = p->data;
	struct hs_req *r = c->req;

	/* Trailers of a chunked body, or the rest of a request answered
	 * already (r is then NULL): not kept (http-parser bounds their
	 * size). */
	if (r == NULL || r->hdrs_done)
		return c->closing ? -1 : 0;
	if (hs_header_bytes(c, n + 2) == -1)
		return -1;
	if (r->in_value) {
		buf_putc(&r->hdrs, '\0');
		r->in_value = 0;
	}
	return buf_append(&r->hdrs, at, n) == -1 ? -1 : 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
	struct hs_conn *c = p->data;
	struct hs_req *r = c->req;

	/* Trailers of a chunked body, or the rest of a request answered
	 * already (r is then NULL): not kept (http-parser bounds their
	 * size). */
	if (r == NULL || r->hdrs_done)
		return c->closing ? -1 : 0;
	if (hs_header_bytes(c, n + 2) == -1)
		return -1;
	if (!r->in_value) {
		buf_putc(&r->hdrs, '\0');
		r->in_value = 1;
	}
	return buf_append(&r->hdrs, at, n) == -1 ? -1 : 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct hs_conn *c = p->data;
	struct hs_server *s = c->s;
	struct hs_req *r = c->req;
	const struct hs_route *rt;
	struct http_parser_url u;
	const char *url, *m = http_method_str((enum http_method)p->method);
	int path_ok = 0;

	r->hdrs_done = 1;
	if (r->in_value)
		buf_putc(&r->hdrs, '\0');
	r->keepalive = http_should_keep_alive(p);
	if (p->flags & F_CONTENTLENGTH)
		r->clen = (long long)p->content_length;
	url = buf_cstr(&r->url);
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, r->url.len, 0, &u) == 0 &&
	    (u.field_set & (1 << UF_PATH)))
		r->path = path_decode(url + u.field_data[UF_PATH].off,
		                      u.field_data[UF_PATH].len);
	if (r->path == NULL) {
		conn_error(c, 400, "malformed request target");
		return -1;
	}
	for (rt = s->routes; rt->fn != NULL; rt++) {
		if (strcmp(rt->path, r->path) != 0)
			continue;
		path_ok = 1;
		if (strcmp(rt->method, m) == 0)
			break;
	}
	if (rt->fn == NULL) {
		if (path_ok) {
			/* RFC 9110: a 405 names the methods allowed. */
			char allow[96] = "Allow: ";
			size_t k = strlen(allow);

			for (rt = s->routes; rt->fn != NULL; rt++)
				if (strcmp(rt->path, r->path) == 0 &&
				    k + strlen(rt->method) + 5 < sizeof(allow))
					k += (size_t)snprintf(
					    allow + k, sizeof(allow) - k,
					    "%s%s", k > 7 ? ", " : "",
					    rt->method);
			snprintf(allow + k, sizeof(allow) - k, "\r\n");
			conn_error_hdr(
			    c, 405, "method not allowed on this path", allow);
		} else
			conn_error(c, 404, "no such API endpoint");
		return -1;
	}
	r->route = rt;
	r->max_body = rt->max_body > 0 ? rt->max_body : s->lim.max_body;
	if (r->clen > 0 && (unsigned long long)r->clen > r->max_body) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		         "request body larger than the limit of %llu bytes",
		         r->max_body);
		conn_error(c, 413, msg);
		return -1;
	}
	/* The handler owns it now: its time is not the client's; the body
	 * has its own deadline. */
	r->owned = 1;
	conn_wait(c, 0);
	clock_gettime(CLOCK_MONOTONIC, &c->body_start);
	conn_arm(c);
	rt->fn(r);
	/* Still unanswered (a reply sets c->req to NULL): a client waiting
	 * for it may send the body. */
	if (c->req != NULL && !c->closing) {
		const char *ex = hs_req_header(c->req, "Expect");

		if (ex != NULL && strcasecmp(ex, "100-continue") == 0)
			evbuffer_add_printf(bufferevent_get_output(c->bev),
			                    "HTTP/1.1 100 Continue\r\n\r\n");
	}
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	struct hs_conn *c = p->data;
	struct hs_req *r = c->req;

	if (r == NULL) /* answered early */
		return c->closing ? -1 : 0;
	r->body += n;
	if (r->body > r->max_body) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		         "request body larger than the limit of %llu bytes",
		         r->max_body);
		conn_error(c, 413, msg);
		conn_drop_req(c, 1);
		return -1;
	}
	if (r->on_data != NULL &&
	    r->on_data(r, (const uint8_t *)at, n, r->barg) != 0) {
		/* The handler stopped it; it replied (c->req is then
		 * NULL) or will. */
		if (c->req != NULL)
			c->req->on_data = NULL;
	}
	/* A reply before the end of the body closes the connection. */
	return c->closing ? -1 : 0;
}

static int
on_message_complete(http_parser *p)
{
	struct hs_conn *c = p->data;
	struct hs_req *r = c->req;
	void (*fn)(struct hs_req *, int, void *);

	if (c->closing)
		return -1;
	if (r == NULL) /* answered already: on to the next request */
		return 0;
	/* The next request waits until this one is answered. */
	http_parser_pause(p, 1);
	r->complete = 1;
	c->waiting = 1;
	evtimer_del(c->dl_ev);
	conn_read_enable(c, 0);
	if ((fn = r->on_end) != NULL) {
		r->on_end = NULL;
		r->on_data = NULL;
		fn(r, 1, r->barg);
	}
	return 0;
}

static const http_parser_settings hs_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- connections --------------------------------------------------------- */

static void
conn_read_enable(struct hs_conn *c, int on)
{
	struct timeval tv = {c->s->lim.idle_secs, 0};

	if (c->rev != NULL) {
		if (on)
			event_add(c->rev, &tv);
		else
			event_del(c->rev);
	} else if (on)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
}

static int
conn_output_full(struct hs_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) >
	       HS_MAX_OUTPUT;
}

/*
 * Parses data; returns the bytes taken (fewer while a complete request
 * waits for its reply), or -1 when the connection is to end.
 */
static ssize_t
conn_parse(struct hs_conn *c, const uint8_t *d, size_t n)
{
	size_t k, off = 0;
	enum http_errno e;
	char msg[160];

	if (c->lingering || c->closing) {
		/* The reply is decided: the rest is dropped, up to a point. */
		c->lingered += n;
		return c->lingered > HS_LINGER_BYTES ? -1 : (ssize_t)n;
	}
	while (off < n) {
		if (c->closing) {
			c->lingered += n - off;
			return c->lingered > HS_LINGER_BYTES ? -1 : (ssize_t)n;
		}
		if (c->waiting || conn_output_full(c))
			break;
		c->in_parse = 1;
		k = http_parser_execute(&c->p, &hs_settings,
		                        (const char *)d + off, n - off);
		c->in_parse = 0;
		off += k;
		e = HTTP_PARSER_ERRNO(&c->p);
		if (e == HPE_PAUSED) {
			/* Answered from on_end already: go on. */
			if (!c->waiting)
				http_parser_pause(&c->p, 0);
			continue;
		}
		if (e != HPE_OK || c->p.upgrade) {
			if (!c->closing) {
				snprintf(msg, sizeof(msg),
				         "malformed request: %s",
				         c->p.upgrade
				             ? "protocol upgrade not supported"
				             : http_errno_description(e));
				conn_error(c, 400, msg);
			}
			conn_drop_req(c, 1);
			return (ssize_t)n;
		}
		if (k == 0)
			break;
	}
	return (ssize_t)off;
}

/* Runs the parser over what is held; 0, or -1 when c was freed. */
static int
conn_run_held(struct hs_conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	ssize_t k;

	while (evbuffer_get_length(in) > 0 &&
	       evbuffer_peek(in, -1, NULL, &v, 1) >= 1) {
		if ((k = conn_parse(c, v.iov_base, v.iov_len)) < 0) {
			conn_free(c);
			return -1;
		}
		evbuffer_drain(in, (size_t)k);
		if ((size_t)k < v.iov_len)
			break;
	}
	return 0;
}

static void
conn_process(struct hs_conn *c)
{
	int more;

	if (c->rev != NULL) {
		if (conn_run_held(c, c->held) == -1)
			return;
		more = evbuffer_get_length(c->held) == 0;
	} else {
		if (conn_run_held(c, bufferevent_get_input(c->bev)) == -1)
			return;
		more = 1;
	}
	/* Read on, unless a request waits for its reply or the client
	 * does not take its replies (then the write callback resumes). */
	if (c->closing || (more && !c->waiting && !conn_output_full(c)))
		conn_read_enable(c, 1);
	else if (!c->waiting)
		conn_read_enable(c, 0);
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_process(arg);
}

static double
hs_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Counts a close; says so in the log at most once a minute a reason. */
static void
hs_note_close(struct hs_server *s, enum hs_close_reason why, const char *peer)
{
	static const char *const what[HS_CLOSED_NREASONS] = {
	    "did not finish the TLS handshake in time (handshake_timeout)",
	    "sent no complete request header in time (request_timeout)",
	    "did not send its whole body in time (body_timeout)",
	    "was closed, the oldest not being answered, to make room for a "
	    "new client (max_connections)",
	    "was refused: too many open from its address "
	    "(max_connections_per_addr)",
	    "was refused: every connection is being answered "
	    "(max_connections)"};
	time_t now = time(NULL);

	s->closed[why]++;
	if (now - s->warned[why] < 60)
		return;
	s->warned[why] = now;
	log_warnx("hstream: a connection from %s %s; %lu so far", peer,
	          what[why], s->closed[why]);
}

/* On or off the list of connections not being answered, which are closed
 * oldest first to make room at max_conns. */
static void
conn_wait(struct hs_conn *c, int on)
{
	struct hs_server *s = c->s;

	if (on == c->on_wait)
		return;
	if (on) {
		c->wnext = NULL;
		c->wprev = s->wait_tail;
		if (s->wait_tail != NULL)
			s->wait_tail->wnext = c;
		else
			s->wait_head = c;
		s->wait_tail = c;
	} else {
		if (c->wprev != NULL)
			c->wprev->wnext = c->wnext;
		else
			s->wait_head = c->wnext;
		if (c->wnext != NULL)
			c->wnext->wprev = c->wprev;
		else
			s->wait_tail = c->wprev;
		c->wprev = c->wnext = NULL;
	}
	c->on_wait = on;
}

static int
conn_tls_done(struct hs_conn *c)
{
	SSL *ssl;

	if (c->s->ssl_ctx == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(c->bev)) == NULL)
		return 1;
	return SSL_is_init_finished(ssl);
}

/* Sets dl_ev to the nearest deadline that applies now (none while a
 * handler has the whole request, or while a reply is being flushed). */
static void
conn_arm(struct hs_conn *c)
{
	const struct hs_limits *l = &c->s->lim;
	struct timeval tv;
	double due = 0, t;
	int have = 0;

	if (c->lingering)
		return; /* conn_write_cb armed it */
	evtimer_del(c->dl_ev);
	if (c->closing)
		return;
	if (c->req != NULL && c->req->owned) {
		if (c->req->complete || l->body_secs <= 0)
			return;
		due = l->body_secs - hs_since(&c->body_start);
		have = 1;
	} else {
		if (!c->handshaken && l->handshake_secs > 0) {
			due = l->handshake_secs - hs_since(&c->accepted);
			have = 1;
		}
		t = l->header_secs - hs_since(&c->start);
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
	evtimer_add(c->dl_ev, &tv);
}

/* A deadline passed (or the timer runs a hair early: then again). */
static void
conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;
	struct hs_server *s = c->s;
	const struct hs_limits *l = &s->lim;
	struct hs_req *r = c->req;

	(void)fd;
	(void)what;
	if (c->lingering) {
		conn_free(c);
		return;
	}
	if (c->closing)
		return;
	if (r != NULL && r->owned) {
		if (r->complete || l->body_secs <= 0)
			return;
		if (hs_since(&c->body_start) < l->body_secs - 0.01) {
			conn_arm(c);
			return;
		}
		hs_note_close(s, HS_CLOSED_BODY, c->peer);
		conn_error(c, 408, "request body not received in time");
		conn_drop_req(c, 1);
		return;
	}
	if (!c->handshaken && conn_tls_done(c))
		c->handshaken = 1;
	if (!c->handshaken && l->handshake_secs > 0 &&
	    hs_since(&c->accepted) >= l->handshake_secs - 0.01) {
		hs_note_close(s, HS_CLOSED_HANDSHAKE, c->peer);
		conn_free(c);
		return;
	}
	if (hs_since(&c->start) < l->header_secs - 0.01) {
		conn_arm(c);
		return;
	}
	hs_note_close(s, c->handshaken ? HS_CLOSED_HEADER : HS_CLOSED_HANDSHAKE,
	              c->peer);
	if (r != NULL && c->handshaken) {
		conn_error(c, 408, "request header not received in time");
		conn_drop_req(c, 1);
	} else {
		conn_free(c); /* idle: nobody to answer */
	}
}

/* Plain connections: read in large pieces, parse in place. */
static void
conn_plain_read(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;
	struct hs_server *s = c->s;
	ssize_t n, k;

	if (what & EV_TIMEOUT) {
		conn_free(c);
		return;
	}
	n = read(fd, s->rbuf, s->lim.read_size);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_drop_req(c, 1);
		conn_free(c);
		return;
	}
	if ((k = conn_parse(c, s->rbuf, (size_t)n)) < 0) {
		conn_free(c);
		return;
	}
	if (k < n) {
		evbuffer_add(c->held, s->rbuf + k, (size_t)(n - k));
		conn_read_enable(c, 0);
	}
}

static void
conn_tls_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct hs_conn *c = arg;
	struct timeval tv = {HS_LINGER_SECS, 0};

	(void)bev;
	if (c->lingering)
		return;
	if (!c->closing) {
		/* Replies taken: read the next requests (if reading was
		 * stopped for them). */
		if (!c->waiting)
			event_active(c->resume, EV_TIMEOUT, 0);
		return;
	}
	/* All sent: shut the write side (over TLS without close_notify; the
	 * reply is complete, its length was given), then drop what still
	 * comes for a moment. */
	c->lingering = 1;
	/* A total too: a client trickling bytes cannot keep it lingering. */
	evtimer_del(c->dl_ev);
	evtimer_add(c->dl_ev, &tv);
	(void)shutdown(c->fd, SHUT_WR);
	if (c->rev != NULL) {
		event_del(c->rev);
		event_add(c->rev, &tv);
	} else {
		bufferevent_set_timeouts(c->bev, &tv, NULL);
		bufferevent_enable(c->bev, EV_READ);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct hs_conn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		conn_drop_req(c, 1);
		conn_free(c);
	}
}

static void
conn_free(struct hs_conn *c)
{
	struct hs_server *s = c->s;

	conn_drop_req(c, 1);
	conn_wait(c, 0);
	if (c->key[0] != '\0' && s->peers != NULL)
		peers_del(s->peers, c->key);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->dl_ev != NULL)
		event_free(c->dl_ev);
	if (c->resume != NULL)
		event_free(c->resume);
	if (c->held != NULL)
		evbuffer_free(c->held);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes fd */
	else if (c->fd != -1)
		close(c->fd);
	free(c);
}

static void
hs_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct hs_server *s = arg;
	struct hs_conn *c;
	SSL *ssl = NULL;
	struct timeval tv;
	char key[PEERS_KEYLEN], peer[64] = "";
	int one = 1;

	(void)l;
	(void)salen;
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		          peer, sizeof(peer));
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, peer,
		          sizeof(peer));
	/* Before making room: a client at its limit pushes nobody out. */
	peers_key(sa, key, sizeof(key));
	if (s->peers != NULL &&
	    peers_count(s->peers, key) >= s->lim.max_per_addr) {
		hs_note_close(s, HS_CLOSED_PER_ADDR, peer);
		close(fd);
		if (s->lim.on_refused != NULL)
			s->lim.on_refused(s->arg, 503);
		return;
	}
	if (s->lim.max_conns > 0 && s->nconns >= s->lim.max_conns) {
		if (s->wait_head == NULL) {
			hs_note_close(s, HS_CLOSED_FULL, peer);
			close(fd);
			return;
		}
		hs_note_close(s, HS_CLOSED_EVICTED, s->wait_head->peer);
		conn_free(s->wait_head);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	if ((c->next = s->conns) != NULL)
		c->next->prev = c;
	s->conns = c;
	s->nconns++;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	if (s->peers != NULL) {
		if (peers_add(s->peers, key) == -1)
			goto fail;
		snprintf(c->key, sizeof(c->key), "%s", key);
	}
	clock_gettime(CLOCK_MONOTONIC, &c->accepted);
	c->start = c->accepted;
	c->handshaken = s->ssl_ctx == NULL;
	conn_wait(c, 1);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	if ((c->dl_ev = evtimer_new(s->base, conn_deadline, c)) == NULL ||
	    (c->resume = event_new(s->base, -1, 0, conn_resume_cb, c)) == NULL)
		goto fail;
	if (s->ssl_ctx != NULL) {
		if ((ssl = SSL_new(s->ssl_ctx)) == NULL ||
		    (c->bev = bufferevent_openssl_socket_new(
		         s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		         BEV_OPT_CLOSE_ON_FREE)) == NULL) {
			SSL_free(ssl);
			goto fail;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		bufferevent_set_max_single_read(c->bev, s->lim.read_size);
		bufferevent_setcb(c->bev, conn_tls_read, conn_write_cb,
		                  conn_event_cb, c);
		tv.tv_sec = s->lim.idle_secs;
		tv.tv_usec = 0;
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	} else {
		if ((c->bev = bufferevent_socket_new(
		         s->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
		    (c->held = evbuffer_new()) == NULL ||
		    (c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST,
		                        conn_plain_read, c)) == NULL)
			goto fail;
		bufferevent_setcb(c->bev, NULL, conn_write_cb, conn_event_cb,
		                  c);
		tv.tv_sec = s->lim.idle_secs;
		tv.tv_usec = 0;
		bufferevent_set_timeouts(c->bev, NULL, &tv);
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_enable(c->bev, EV_WRITE);
		conn_read_enable(c, 1);
	}
	conn_arm(c);
	return;
fail:
	log_warnx("hstream: cannot set up a connection from %s", c->peer);
	conn_free(c);
}

/* --- server -------------------------------------------------------------- */

struct hs_server *
hs_server_new(struct event_base *base, SSL_CTX *ssl_ctx,
              const struct hs_route *routes, void *arg,
              const struct hs_limits *limits)
{
	struct hs_server *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->routes = routes;
	s->arg = arg;
	if (limits != NULL)
		s->lim = *limits;
	if (s->lim.max_body == 0)
		s->lim.max_body = HS_DEFAULT_MAX_BODY;
	if (s->lim.max_headers == 0)
		s->lim.max_headers = HS_DEFAULT_MAX_HEADERS;
	if (s->lim.header_secs <= 0)
		s->lim.header_secs = HS_DEFAULT_SECS;
	if (s->lim.idle_secs <= 0)
		s->lim.idle_secs = HS_DEFAULT_SECS;
	if (s->lim.max_conns < 0)
		s->lim.max_conns = 0;
	if (s->lim.max_per_addr < 0)
		s->lim.max_per_addr = 0;
	if (s->lim.handshake_secs < 0)
		s->lim.handshake_secs = 0;
	if (s->lim.body_secs < 0)
		s->lim.body_secs = 0;
	if (s->lim.read_size == 0)
		s->lim.read_size = HS_DEFAULT_READ;
	if ((s->rbuf = malloc(s->lim.read_size)) == NULL ||
	    (s->lim.max_per_addr > 0 && (s->peers = peers_new()) == NULL) ||
	    (s->resume = evtimer_new(base, hs_listen_resume, s)) == NULL) {
		peers_free(s->peers);
		free(s->rbuf);
		free(s);
		return NULL;
	}
	if (ssl_ctx != NULL) {
		SSL_CTX_up_ref(ssl_ctx);
		s->ssl_ctx = ssl_ctx;
	}
	return s;
}

static void
hs_listen_resume(evutil_socket_t fd, short what, void *arg)
{
	struct hs_server *s = arg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < s->nlst; i++)
		evconnlistener_enable(s->lst[i]);
}

/* accept() failed: out of descriptors (or similar). Pause the listeners
 * for a second instead of spinning; say so once per episode. */
static void
hs_accept_error(struct evconnlistener *l, void *arg)
{
	struct hs_server *s = arg;
	struct timeval tv = {1, 0};
	int e = EVUTIL_SOCKET_ERROR();
	size_t i;

	(void)l;
	for (i = 0; i < s->nlst; i++)
		evconnlistener_disable(s->lst[i]);
	if (s->accept_errors++ % 60 == 0)
		log_warnx("hstream: accept failed: %s; pausing new "
		          "connections for 1 s",
		          strerror(e));
	evtimer_add(s->resume, &tv);
}

int
hs_server_bind(struct hs_server *s, const char *host, int port, int *bound,
               struct buf *err)
{
	struct addrinfo hints, *res = NULL;
	struct evconnlistener *l = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char serv[16];
	int gai;
	const char *shown = host != NULL ? host : "*";

	if (s->nlst >= HS_MAX_LISTENERS || port < 0 || port > 65535) {
		buf_printf(err, "%s:%d: cannot listen there", shown, port);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(serv, sizeof(serv), "%d", port);
	errno = 0;
	if ((gai = getaddrinfo(host, serv, &hints, &res)) != 0 ||
	    (l = evconnlistener_new_bind(
	         s->base, hs_accept, s,
	         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	             LEV_OPT_CLOSE_ON_EXEC,
	         1024, res->ai_addr, (int)res->ai_addrlen)) == NULL) {
		buf_printf(err, "%s:%d: %s", shown, port,
		           gai != 0     ? gai_strerror(gai)
		           : errno != 0 ? strerror(errno)
		                        : "cannot bind this address");
		if (res != NULL)
			freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	evconnlistener_set_error_cb(l, hs_accept_error);
	s->lst[s->nlst++] = l;
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss,
	                &sslen) == 0 &&
	    bound != NULL) {
		if (ss.ss_family == AF_INET6)
			*bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			*bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}

void
hs_server_stop_listening(struct hs_server *s)
{
	size_t i;

	struct hs_conn *c, *next;

	for (i = 0; i < s->nlst; i++)
		evconnlistener_free(s->lst[i]);
	s->nlst = 0;
	evtimer_del(s->resume);
	/* Idle connections end now; the others after their reply. */
	s->stopping = 1;
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->req == NULL && !c->closing &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_free(c);
	}
}

void
hs_server_set_ssl_ctx(struct hs_server *s, SSL_CTX *ctx)
{
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = ctx;
}

int
hs_server_conns(const struct hs_server *s)
{
	return s->nconns;
}

unsigned long
hs_server_closed(const struct hs_server *s, enum hs_close_reason why)
{
	if ((unsigned)why >= HS_CLOSED_NREASONS)
		fatalx("%s: reason %d", __func__, (int)why);
	return s->closed[why];
}

void
hs_server_free(struct hs_server *s)
{
	if (s == NULL)
		return;
	hs_server_stop_listening(s);
	while (s->conns != NULL)
		conn_free(s->conns);
	SSL_CTX_free(s->ssl_ctx);
	event_free(s->resume);
	peers_free(s->peers);
	free(s->rbuf);
	free(s);
}
