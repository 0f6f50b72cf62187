/*
 * http: the HTTPS server used by every daemon, on libevent's evhttp with
 * bufferevent_openssl. A route table maps method + path to a handler;
 * replies are JSON; request bodies past a limit get 413, slow or idle
 * connections are closed after a timeout; the verified client certificate
 * (if any) is handed to handlers. Identity always comes from that
 * certificate, never from the request body.
 */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "buf.h"

struct http_server;
struct http_req;

#define HTTP_MAX_LISTENERS 8 /* bind calls per server */

typedef void (*http_handler)(struct http_req *r);

#define HTTP_ROUTE_PREFIX 0x1 /* path ends in '/'; the rest is r->rest */
#define HTTP_ROUTE_CERT                                                        \
	0x2 /* a verified client certificate is required;                      \
	       without one the server answers 401 */

struct http_route {
	const char *method; /* "GET", "POST", "DELETE", "PUT" */
	const char *path;   /* "/v1/ping", or a prefix "/v1/enroll/" */
	http_handler fn;
	unsigned flags;
	const char *name; /* metrics label, e.g. "enroll" */
	size_t max_body;  /* 0 = the server's limit; else a smaller limit for
	                     this route (413 JSON beyond) */
	int role;         /* the privilege the route needs, daemon-defined and
	                     checked by the server's authorizer; 0 (what a
	                     route written without it gets) is the strictest */
};

struct http_limits {
	size_t max_body;       /* bytes; larger bodies get 413 */
	size_t max_headers;    /* bytes of all headers */
	int timeout_secs;      /* evhttp's read/write timeout (an idle time,
	                          renewed by every byte) */
	int max_conns;         /* 0 = unlimited; at it the oldest connection
	                          not being answered is closed for a new one,
	                          else the new one is closed at once;
	                          streaming replies (http_req_stream_start)
	                          are not counted: the caller bounds them */
	int max_per_addr;      /* connections from one address (IPv4, or an
	                          IPv6 /64); 0 = unlimited */
	int handshake_timeout; /* seconds from accept to the end of the TLS
	                          handshake; 0 = none */
	int request_timeout;   /* seconds for a whole request (line, headers,
	                          body) from accept (handshake included) or
	                          from the end of the previous response; a
	                          total, not an idle time; 0 = none */
	int reuseport;         /* bind with SO_REUSEPORT: several servers
	                          (one per thread, each with its own event
	                          base) listen on the same port and the
	                          kernel spreads the connections. 1: the
	                          first of them, whose bind still fails when
	                          anything else holds the port (another
	                          daemon, even one with SO_REUSEPORT); 2: one
	                          more on the port the first holds */
};

/* Why the server closed a connection of its own accord (counted). */
enum http_close_reason {
	HTTP_CLOSED_HANDSHAKE, /* TLS handshake not done in time */
	HTTP_CLOSED_REQUEST,   /* no complete request in time */
	HTTP_CLOSED_EVICTED,   /* at max_conns: made room for a new client */
	HTTP_CLOSED_PER_ADDR,  /* refused: max_per_addr from its address */
	HTTP_CLOSED_FULL,      /* refused: at max_conns, all being answered */
	HTTP_CLOSED_NREASONS
};

struct http_req {
	struct evhttp_request *ev;
	struct http_server *srv;
	const struct http_route *route;
	const char *method; /* "GET", ... */
	char *path;         /* decoded path without query */
	const char *rest;   /* after the prefix of a PREFIX route, else "" */
	struct evkeyvalq query;
	X509 *peer;         /* verified client certificate or NULL
	                       (borrowed; valid until the reply) */
	char peer_addr[64]; /* "127.0.0.1" / "::1" */
	void *arg;          /* the server's arg */
	int replied;
	int deferred; /* heap copy made by http_req_defer */
	/* Set by the daemon's authorization step (vigild: admin_authorize):
	 * who made the request ("key:<id>", "user:<name>") and the role it
	 * was granted (daemon-defined; 0 = none). Audit entries use who. */
	char who[128];
	int role;
	/* Optional state of the changed object before the change, set by a
	 * handler for the audit log (the reply hook reads it); freed with
	 * the request. */
	json_t *audit_before;
	/* Daemon-defined, set by the authorizer and read by the reply check
	 * (vigild: the store's error count when the request began). */
	unsigned long mark;
	int checked; /* the reply check ran */
	int hooked;  /* the reply hook ran */
	/* Set when the request came through http_server_relay (then ev is
	 * NULL); the rest works the same. */
	struct http_relay *relay;
};

/*
 * ssl_ctx may be NULL for plain HTTP (tests only). routes is terminated by
 * an entry with fn == NULL. on_done (may be NULL) is called once per request
 * with the route name ("unknown" when none matched) and the status sent.
 */
struct http_server *http_server_new(struct event_base *base, SSL_CTX *ssl_ctx,
                                    const struct http_route *routes, void *arg,
                                    const struct http_limits *limits,
                                    void (*on_done)(const char *route,
                                                    int status, void *arg));
/*
 * Authorizer: when set, called for every request that matched a route,
 * before its handler. Returns 0 to run the handler (having filled r->who
 * and r->role as it sees fit), or -1 after replying (401, 403, 429, ...);
 * the handler then does not run. One place decides who may do what.
 */
void http_server_set_authorizer(struct http_server *s,
                                int (*fn)(struct http_req *r));
/* Binds host:port (port 0 = ephemeral); *bound gets the port. -1 with a
 * message in err (e.g. "127.0.0.1:443: Address already in use"). */
int http_server_bind(struct http_server *s, const char *host, int port,
                     int *bound, struct buf *err);
/* Closes the listening sockets; open connections go on. The first step
 * of a graceful stop: then wait for http_server_conns() to reach 0 (or a
 * deadline) before http_server_free. */
/* An event base for a process that serves many connections: with epoll,
 * libevent's changelist, so that changes to a descriptor's events within
 * one loop iteration (a reply's write event enabled, a finished one's
 * disabled) cost one epoll_ctl() at most. NULL when out of memory. */
struct event_base *http_event_base_new(void);
void http_server_stop_listening(struct http_server *s);
/* After stop_listening: every reply closes its connection; connections
 * idle between requests are closed at once. */
void http_server_drain(struct http_server *s);

/*
 * Called once per request just before its reply leaves, with the request
 * still whole (method, path, route, who, peer_addr, body unless deferred,
 * audit_before) and the reply's status and body. vigild's audit log hangs
 * here, so every route of a table is covered without each handler
 * remembering to call it. Returns 0 to let the reply go, or -1 after
 * replying with an error instead (http_reply_error): the handler's reply
 * is then dropped (its body; headers it set stay unless the hook removes
 * them with http_remove_header) and the hook is not called again for it.
 */
typedef int (*http_reply_hook)(struct http_req *r, int status, const void *body,
                               size_t len);
void http_server_set_reply_hook(struct http_server *s, http_reply_hook fn);

/*
 * Called after each handler returned (whether it replied, deferred the
 * request or started a stream), with the request as the handler left it
 * (r->replied is set in all three cases). vigild checks here that no
 * change is left uncommitted across the event loop.
 */
void http_server_set_handler_done(struct http_server *s,
                                  void (*fn)(struct http_req *r));

/*
 * Called before any reply below 500 leaves (once per request): returns 0
 * to let it go, or -1 after replying itself with an error instead. vigild
 * answers 503 here when its store failed to read during the request, so
 * rows that could not be read are never served as an empty or short list.
 */
void http_server_set_reply_check(struct http_server *s,
                                 int (*fn)(struct http_req *r));

/*
 * Requests from another process (vigild's gateway workers hold the
 * connections; the core answers): http_server_relay runs one through the
 * same route table, authorizer, hooks and handlers as a request off a
 * connection. Headers, query, body, deferral (http_req_defer), replies
 * and file replies work as usual; streaming replies too when the caller
 * gives stream operations (else they are refused, 501). peer is the
 * client certificate the worker verified (taken with its own reference),
 * or NULL. Every reply, however late (a long poll), goes to send with the
 * id given: status, the reply's headers (Content-Type included) and body,
 * or for http_reply_file fd (to be closed by send) and its length.
 * Returns -1 (nothing sent) when out of memory.
 *
 * A relayed stream (http_req_stream_start on a relayed request) goes to
 * the stream operations: start (status, headers and the bound on what the
 * worker may hold unwritten), chunk (each http_req_stream_send) and end.
 * start and chunk return -1 when the worker can no longer be reached:
 * the stream then ends as for a client that stopped reading. The worker
 * tells the caller when its client went away, and the caller passes it
 * on with http_server_relay_gone (the stream's on_closed runs), or, for
 * all of a worker's streams at once (it died), http_server_relay_gone_all.
 */
struct http_relay;
struct http_relay_stream_ops {
	int (*start)(void *ctx, uint64_t id, int status,
	             struct evkeyvalq *headers, size_t max_queued);
	int (*chunk)(void *ctx, uint64_t id, const void *p, size_t len);
	void (*end)(void *ctx, uint64_t id);
};
struct http_relay_in {
	const char *method, *uri, *peer_addr;
	X509 *peer;
	int tls; /* the worker's connection was TLS (security headers) */
	size_t nheaders;
	const char *const *names, *const *values;
	const uint8_t *body;
	size_t body_len;
	const struct http_relay_stream_ops *stream; /* NULL: no streams */
};
typedef void (*http_relay_send)(void *ctx, uint64_t id, int status,
                                struct evkeyvalq *headers,
                                struct evbuffer *body, int fd, size_t flen);
int http_server_relay(struct http_server *s, const struct http_relay_in *in,
                      http_relay_send send, void *ctx, uint64_t id);
/* The relayed stream (ctx, id) lost its client: when it left, its
 * on_closed runs and it is freed; when it did not read what was sent
 * (slow), the next http_req_stream_send fails (-1), as for a client of
 * this process. Nothing when there is no such stream (it ended). */
void http_server_relay_gone(struct http_server *s, void *ctx, uint64_t id,
                            int slow);
/* The same for every relayed stream of ctx (its worker died). */
void http_server_relay_gone_all(struct http_server *s, void *ctx);
/* Listens on an already listening socket (taken over; closed on error). */
int http_server_bind_fd(struct http_server *s, int fd, struct buf *err);
/* A duplicate (close-on-exec) of the first listening socket, or -1. */
int http_server_listen_fd(const struct http_server *s);
/* A new listening socket (close-on-exec, not served by s) on the address
 * of s's first one, which must have been bound with reuseport: the kernel
 * spreads new connections over the group. -1 and err on failure. */
int http_server_listen_join(const struct http_server *s, struct buf *err);

/* Replaces the TLS context for new connections (config reload). */
/* Answers GET and HEAD of paths no route knows (the web console's files
 * and its pages' URLs); without it they get a JSON 404. It runs before
 * any authorizer: it serves public files only. */
void http_server_set_fallback(struct http_server *s, http_handler fn);
void http_server_set_ssl_ctx(struct http_server *s, SSL_CTX *ctx);
/* Stops accepting, lets requests in flight finish, frees. */
void http_server_free(struct http_server *s);
/* Number of open connections. */
int http_server_conns(const struct http_server *s);
/* TLS connections that sent a request, by handshake: full (resumed 0) or
 * resumed from a session ticket (1). */
unsigned long http_server_tls(const struct http_server *s, int resumed);
/* Connections closed for one reason since the start, and the reason's
 * name for a metric label ("handshake_timeout", "request_timeout",
 * "evicted", "per_addr_limit", "full"). */
unsigned long http_server_closed(const struct http_server *s,
                                 enum http_close_reason why);
const char *http_close_reason_name(enum http_close_reason why);

/*
 * Long poll: keeps the request open after the handler returns. Returns a
 * heap copy that the handler owns from now on (the r passed in is done
 * with), or NULL when out of memory (r is then still to be answered).
 * Reply to the copy later with any http_reply_* call, which frees it. The
 * copy keeps method, path, route, rest, peer_addr and arg; its query and
 * body are no longer available (read them before deferring) and peer is
 * NULL (take the identity before). If the client goes away meanwhile the
 * later reply is simply discarded. Reply to every deferred request before
 * http_server_free, and before the server's inactivity timeout would end
 * the connection (keep the wait shorter than timeout_secs).
 */
struct http_req *http_req_defer(struct http_req *r);

/*
 * Streaming replies (server-sent events): the handler starts a reply
 * whose body follows in pieces for as long as it likes, and keeps the
 * stream it gets back. The status and headers leave at once (set extra
 * headers before; the reply check, reply hook and on_done run as for any
 * reply), with Content-Type ctype and "Connection: close": the connection
 * serves nothing else and closes when the stream ends.
 *
 * While it is open, the server's idle timeout stops applying to the
 * client's silence (it sends nothing more) and applies to its reading
 * instead: output that cannot be written for timeout_secs ends it. So
 * does more than max_queued bytes waiting to be written (a client that
 * stopped reading), checked at each send, and any byte the client sends.
 *
 * Returns NULL when it replied instead: to HEAD (the headers alone), or
 * with the reply check's error or 500 (out of memory). on_closed (may be
 * NULL) is called once when the connection ends other than through
 * http_req_stream_end or a failed send (the client left, a timeout, the
 * server freed): st is freed when it returns, and must not be used in
 * it. A handler keeps only the stream, never r.
 */
struct http_stream;
typedef void (*http_stream_closed)(struct http_stream *st, void *arg);
struct http_stream *http_req_stream_start(struct http_req *r, int status,
                                          const char *ctype, size_t max_queued,
                                          http_stream_closed on_closed,
                                          void *arg);
/* Sends len bytes: 0, or -1 when the client is too far behind or sent
 * bytes of its own; the connection is then closed and st freed, without
 * on_closed. */
int http_req_stream_send(struct http_stream *st, const void *p, size_t len);
/* Ends the reply and frees st; the connection closes once the rest is
 * written. */
void http_req_stream_end(struct http_stream *st);
/* Bytes waiting to be written to the client. */
size_t http_req_stream_queued(const struct http_stream *st);

/* Body of the request (not NUL-terminated), and its length. */
const uint8_t *http_req_body(struct http_req *r, size_t *len);
/* Parses the body as a JSON object. On failure replies 400 with a message
 * naming the problem (line/column) and returns NULL. */
json_t *http_req_json(struct http_req *r);
/* For a PREFIX route "/x/" serving "/x/<id>[/<action>]": copies <id>
 * into id (size n) and returns a pointer to "/<action>" or "" when there
 * is none; NULL when the id is empty or does not fit. */
const char *http_req_rest_id(struct http_req *r, char *id, size_t n);

/* Query parameter or NULL. */
const char *http_req_query(struct http_req *r, const char *name);
/* The query string as the client sent it (still percent-encoded), or
 * NULL when there is none. */
const char *http_req_raw_query(struct http_req *r);
/* Request header or NULL. */
const char *http_req_header(struct http_req *r, const char *name);

/* Replies; each frees r. reply_json steals the reference to body. */
void http_reply_json(struct http_req *r, int status, json_t *body);
void http_reply_text(struct http_req *r, int status, const char *ctype,
                     const void *body, size_t len);
/* Replies with len bytes of the open file fd from its start (taken over
 * and closed; libevent sends it in pieces, never all in memory). */
void http_reply_file(struct http_req *r, int status, const char *ctype, int fd,
                     size_t len);
/* {"error": {"code": code, "message": msg}}; a 400 whose message starts
 * "name: " (the convention: the field, then why) also gets "field":
 * "name". */
void http_reply_error(struct http_req *r, int status, const char *code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with "field": the request member or query parameter at fault
 * ({"error": {"code", "message", "field"}}). */
void http_reply_error_field(struct http_req *r, int status, const char *code,
                            const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void http_set_header(struct http_req *r, const char *name, const char *val);
/* Removes every header name the reply would carry. */
void http_remove_header(struct http_req *r, const char *name);
/* Adds a header even when one of that name is set (Set-Cookie). */
void http_add_header(struct http_req *r, const char *name, const char *val);

#endif
