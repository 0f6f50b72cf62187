/*
 * hstream: a streaming HTTP/1.1 server for request bodies of any size
 * (vigil-scand's uploads). libevent 2.1's evhttp (http.c) reads a whole
 * body into memory before the handler runs and reads sockets 4 KiB at a
 * time; this server parses with nodejs http-parser (request line, headers,
 * Content-Length and chunked bodies) over libevent (evconnlistener,
 * bufferevent_openssl for TLS), reads plain sockets itself in large
 * pieces, and hands body bytes to the route's callbacks as they arrive.
 *
 * One request at a time per connection (pipelined requests wait in the
 * input until the previous reply); keep-alive; limits on header size,
 * handshake, header and body time (totals), idle time, body size, open
 * connections and connections per client address. The server's
 * own errors are JSON {"message": "..."}.
 *
 * A request belongs to its handler from the moment the route's handler is
 * called until it replies, exactly once, with hs_reply_*: at once, after
 * the body (body callbacks), or later from any event on the loop thread.
 * If the connection is lost meanwhile the reply is discarded (and frees
 * the request).
 */
#ifndef VIGIL_HSTREAM_H
#define VIGIL_HSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "buf.h"

struct hs_server;
struct hs_req;

struct hs_route {
	const char *method; /* "GET", "POST" */
	const char *path;   /* exact path, e.g. "/api/v1/check" */
	/* Called when the headers are complete. */
	void (*fn)(struct hs_req *r);
	unsigned long long max_body; /* 0 = the server's limit */
};

struct hs_limits {
	unsigned long long max_body; /* default for routes; 413 beyond */
	size_t max_headers;          /* bytes of request line + headers; 431 */
	int handshake_secs;          /* TLS handshake within this of the accept;
	                                0 = none */
	int header_secs;  /* request line and headers within this of the
	                     accept or of the previous reply (a total:
	                     408, or closed when nothing came) */
	int body_secs;    /* the whole body within this of the end of its
	                     headers (408); 0 = none */
	int idle_secs;    /* no byte for this long: closed */
	int max_conns;    /* 0 = unlimited; at it the oldest connection not
	                     being answered is closed for a new one, else
	                     the new one is closed at once */
	int max_per_addr; /* connections from one address (IPv4, or an IPv6
	                     /64); 0 = unlimited */
	size_t read_size; /* bytes per read (default 256 KiB) */
	/* Optional: told (with the server's arg) each time the server itself
	 * refuses work: 413 from a Content-Length over the limit, 503 when
	 * out of memory, and 503 for a connection closed over max_conns. */
	void (*on_refused)(void *arg, int status);
};

/* Why the server closed a connection of its own accord (counted). */
enum hs_close_reason {
	HS_CLOSED_HANDSHAKE,
	HS_CLOSED_HEADER,
	HS_CLOSED_BODY,
	HS_CLOSED_EVICTED,
	HS_CLOSED_PER_ADDR,
	HS_CLOSED_FULL,
	HS_CLOSED_NREASONS
};

/* ssl_ctx NULL: plain HTTP. routes ends with fn == NULL. */
struct hs_server *hs_server_new(struct event_base *base, SSL_CTX *ssl_ctx,
                                const struct hs_route *routes, void *arg,
                                const struct hs_limits *limits);
/* host:port (port 0 = ephemeral, *bound gets it); -1 with err. */
int hs_server_bind(struct hs_server *s, const char *host, int port, int *bound,
                   struct buf *err);
/* Closes the listeners and the idle connections; a connection with a
 * request in progress is closed after its reply. Then wait for
 * hs_server_conns() to reach 0 (a graceful stop). */
void hs_server_stop_listening(struct hs_server *s);
void hs_server_set_ssl_ctx(struct hs_server *s, SSL_CTX *ctx);
int hs_server_conns(const struct hs_server *s);
/* Connections closed for one reason since the start. */
unsigned long hs_server_closed(const struct hs_server *s,
                               enum hs_close_reason why);
/* Closes every connection; requests still owned by handlers stay valid
 * (their replies are discarded). */
void hs_server_free(struct hs_server *s);

/*
 * Body callbacks, set by the handler before it returns: on_data gets the
 * decoded body (Content-Length or chunked) piece by piece, on_end once
 * when the body is complete (ok = 1) or cannot be (ok = 0: connection lost
 * or malformed; the reply is then discarded). A handler may reply from
 * on_data (e.g. 413): the rest of the body is not read and the connection
 * is closed after the reply. Without body callbacks the body is skipped.
 */
void hs_req_body(struct hs_req *r,
                 int (*on_data)(struct hs_req *r, const uint8_t *p, size_t n,
                                void *arg),
                 void (*on_end)(struct hs_req *r, int ok, void *arg),
                 void *arg);

const char *hs_req_method(const struct hs_req *r);
const char *hs_req_path(const struct hs_req *r);
/* Request header (case-insensitive) or NULL. */
const char *hs_req_header(const struct hs_req *r, const char *name);
/* Query parameter or NULL. */
const char *hs_req_query(struct hs_req *r, const char *name);
/* Content-Length, or -1 (chunked or none). */
long long hs_req_content_length(const struct hs_req *r);
const char *hs_req_peer(const struct hs_req *r); /* "127.0.0.1" */
void *hs_req_arg(const struct hs_req *r);        /* the server's arg */

/* JSON replies to r are indented (1..8 spaces; 0: compact, the default). */
void hs_req_json_indent(struct hs_req *r, int indent);
/* A header line for r's reply ("Retry-After", "30"); -1 when name or value
 * holds CR, LF (or a colon in the name), or the room (128 bytes) is used
 * up. */
int hs_req_add_header(struct hs_req *r, const char *name, const char *value);

/* Replies; each frees r. reply_json steals the reference to body. */
void hs_reply_json(struct hs_req *r, int status, json_t *body);
/* {"message": msg} */
void hs_reply_msg(struct hs_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
