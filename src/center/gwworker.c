/*
 * gwworker.c: a gateway worker process (vigild --gateway-worker, spawned by
 * the core: gwproc.c). It holds agent connections: it accepts on the
 * gateway's listening socket (handed over with the settings in the INIT
 * message), does the TLS handshakes with the gateway's context (server
 * certificate, the deployment CA, the agent role check, the handshake and
 * request timeouts, max_conns, per-address limits) and relays every
 * request to the core as one GWRELAY_REQ message (src/proto/gwrelay.h)
 * over its socketpair. It holds each request (deferred) until the core's
 * reply with the same id comes back, so a long poll costs the core no
 * descriptor. It never opens the store and holds no CA key; it runs as
 * the core does after the privilege drop ([center] user). Its session
 * ticket keys come from the core (GWRELAY_TICKET_KEYS), in memory only:
 * it cannot read the key file.
 *
 * The channel: the core writes whole messages (blocking, with a send
 * timeout); this side never blocks: it reads what is there (descriptors
 * of file replies ride along, SCM_RIGHTS, and queue up in order) and
 * queues its own messages in an evbuffer written when the socket takes
 * them. EOF from the core ends the worker.
 *
 * The admin worker (vigild --admin-worker, [admin] worker = yes) is this
 * same program in the admin role: the admin listener's socket, the admin
 * TLS context (the server certificate, no client certificates) and the
 * admin server's limits. Its replies may stream (the console's live
 * updates): GWRELAY_STREAM_START turns the held request into a streaming
 * reply (http_req_stream_start, bounded by the queue the core names),
 * CHUNK and END follow, and GWRELAY_STREAM_GONE tells the core when the
 * client left or fell behind. The request's slot stays taken while its
 * stream is open, so its id is not reused meanwhile.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "center.h"
#include "gwproc.h"
#include "gwrelay.h"
#include "pki.h"
#include "proc.h"
#include "tls.h"

#define GW_MAX_FDQ     64
#define GW_IDX_BITS    20 /* pending requests per worker: 1M */
#define GW_IDX_MASK    ((1u << GW_IDX_BITS) - 1)
#define GW_MAX_PENDING (1u << GW_IDX_BITS)

struct gw_pending {
	struct http_req *d;     /* waiting for its reply */
	struct http_stream *st; /* or streaming; both NULL = free */
	uint32_t gen;
	uint32_t next_free;
};

struct gw {
	int admin; /* the admin worker */
	const char *what;
	struct event_base *base;
	struct http_server *srv;
	SSL_CTX *ctx;
	char *cert, *key, *ca;
	int fd;
	size_t max_msg;
	struct evbuffer *in, *out;
	struct event *ev_read, *ev_write, *ev_stats, *ev_soon;
	struct event *ev_flush; /* gw_queue: one write per turn of the loop */
	int fdq[GW_MAX_FDQ];
	size_t nfdq;
	struct gw_pending *pend;
	uint32_t npend, cappend, free_head; /* free_head: UINT32_MAX = none */
	struct buf payload, msg;
	/* Session ticket keys from the core (GWRELAY_TICKET_KEYS), kept for
	 * the context a reload makes; tklen 0: no resumption. Secrets. */
	unsigned char tkeys[TLS_TICKET_KEYS_MAX];
	size_t tklen;
	long long tlife;
};

static struct gw g_gw;

/*
 * Serials the core found revoked (GWRELAY_REVOKED: all of them when the
 * worker starts, then each one a relayed request showed): refused at the
 * handshake from then on, as the in-process gateway refuses them. The
 * core still checks every request against the store. And serials that
 * are no longer their agent's current certificate (GWRELAY_STALE: all of
 * them when the worker starts, then each one a renewal replaces): a
 * session ticket of one is not honoured (a full handshake instead), as
 * the in-process gateway's stale_cb decides from the store.
 */
struct serialset {
	char **v; /* sorted */
	size_t n, cap;
};
static struct serialset g_revoked, g_stale;

static int
gw_serial_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
gw_serial_in(const struct serialset *set, X509 *leaf)
{
	char *serial = tls_serial_hex(leaf);
	int found;

	if (serial == NULL)
		return 1;
	found = set->n > 0 && bsearch(&serial, set->v, set->n, sizeof(char *),
	                              gw_serial_cmp) != NULL;
	free(serial);
	return found;
}

static int
gw_revoked_cb(X509 *leaf, void *arg)
{
	(void)arg;
	return gw_serial_in(&g_revoked, leaf);
}

static int
gw_stale_cb(X509 *leaf, void *arg)
{
	(void)arg;
	return gw_serial_in(&g_stale, leaf);
}

static int
gw_add_serial(struct serialset *set, const uint8_t *p, size_t len)
{
	char *s, **n;
	size_t lo = 0, hi = set->n, mid;
	int c;

	if (gwrelay_serial_ok(p, len) == -1)
		return -1;
	if ((s = strndup((const char *)p, len)) == NULL)
		return 0; /* the core's check still refuses it */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(set->v[mid], s)) == 0) {
			free(s);
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (set->n == set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 256;

		if ((n = realloc(set->v, ncap * sizeof(*n))) == NULL) {
			free(s);
			return 0;
		}
		set->v = n;
		set->cap = ncap;
	}
	memmove(set->v + lo + 1, set->v + lo, (set->n - lo) * sizeof(*set->v));
	set->v[lo] = s;
	set->n++;
	return 0;
}

/* TLS handshake failures by reason (tls.c's failure hook), reported to
 * the core with the other counters. */
static struct {
	char reason[64];
	uint64_t n;
} g_fail[GWRELAY_MAX_REASONS];
static size_t g_nfail;

static void
gw_tls_fail(const char *reason)
{
	static long long last_ms;
	struct timespec now;
	long long ms;
	size_t i;

	for (i = 0; i < g_nfail; i++)
		if (strcmp(g_fail[i].reason, reason) == 0)
			break;
	if (i == g_nfail) {
		if (g_nfail == GWRELAY_MAX_REASONS || reason[0] == '\0')
			return;
		snprintf(g_fail[i].reason, sizeof(g_fail[i].reason), "%s",
		         reason);
		g_nfail++;
	}
	g_fail[i].n++;
	/* Reported at once, not with the next second's counters: a refusal
	 * shows in the core's /metrics as soon as the client sees it. At
	 * most every 50 ms: a flood of bad handshakes is not a flood of
	 * messages to the core; one inside those 50 ms goes when they end
	 * (ev_soon), not with the next second's counters. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (g_gw.ev_stats == NULL || g_gw.ev_soon == NULL)
		return;
	if (ms - last_ms >= 50) {
		last_ms = ms;
		/* Not ev_stats: made active, a persistent timer reschedules
		 * itself a period after the time it was due, so each refusal
		 * would put the report of every second off by one more. */
		event_active(g_gw.ev_soon, EV_TIMEOUT, 0);
	} else if (!evtimer_pending(g_gw.ev_soon, NULL)) {
		struct timeval left = {0, (long)(50 - (ms - last_ms)) * 1000};

		last_ms += 50;
		evtimer_add(g_gw.ev_soon, &left);
	}
}

static void gw_relay(struct http_req *r);

/* Every request is relayed; the core's route table decides. HEAD
 * reaches the GET entry (http.c). */
static const struct http_route gw_routes[] = {
    {"GET", "/", gw_relay, HTTP_ROUTE_PREFIX, "relay", 0, 0},
    {"POST", "/", gw_relay, HTTP_ROUTE_PREFIX, "relay", 0, 0},
    {"PUT", "/", gw_relay, HTTP_ROUTE_PREFIX, "relay", 0, 0},
    {"DELETE", "/", gw_relay, HTTP_ROUTE_PREFIX, "relay", 0, 0},
    {"PATCH", "/", gw_relay, HTTP_ROUTE_PREFIX, "relay", 0, 0},
    {"OPTIONS", "/", gw_relay, HTTP_ROUTE_PREFIX, "relay", 0, 0},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

static SSL_CTX *
gw_make_ctx(struct gw *w)
{
	struct buf err;
	SSL_CTX *ctx;

	buf_init(&err, 4096);
	if (w->admin) {
		/* As the core's admin listener: no client certificates. */
		ctx = tls_server_ctx(w->cert, w->key, NULL, TLS_CLIENT_NONE,
		                     NULL, NULL, &err);
		if (ctx == NULL)
			log_warnx("admin worker: TLS: %s", buf_cstr(&err));
		buf_free(&err);
		return ctx;
	}
	/* Revocation: the serials the core sent (gw_revoked_cb); the core
	 * checks every request against the store as well (gwproc.c). */
	ctx = tls_server_ctx(w->cert, w->key, w->ca, TLS_CLIENT_OPTIONAL,
	                     gw_revoked_cb, NULL, &err);
	if (ctx == NULL)
		log_warnx("gateway worker: TLS: %s", buf_cstr(&err));
	else
		tls_server_roles(ctx,
		                 PKI_ROLE_BIT(PKI_ROLE_AGENT) |
		                     PKI_ROLE_BIT(PKI_ROLE_NONE),
		                 "the agent gateway");
	/* The core's ticket keys, with the stale check the in-process
	 * gateway makes against the store (GWRELAY_STALE). */
	if (ctx != NULL && w->tklen > 0 &&
	    tls_server_tickets_set(ctx, w->tkeys, w->tklen, w->tlife,
	                           gw_stale_cb, NULL, &err) == -1)
		log_warnx("gateway worker: session tickets: %s",
		          buf_cstr(&err));
	buf_free(&err);
	return ctx;
}

/* GWRELAY_TICKET_KEYS: the keys every worker seals and opens tickets
 * with (the core reads them from its key file and rotates them), so a
 * ticket from one worker resumes on another and after a restart. The
 * previous keys, and the message's bytes, are wiped. */
static int
gw_on_tickets(struct gw *w)
{
	struct gwrelay_tickets tk;
	struct buf err;
	const char *why = NULL;
	int rc = 0;

	if (gwrelay_tickets_decode(w->payload.data, w->payload.len, &tk,
	                           &why) == -1) {
		log_warnx("gateway worker: bad session ticket keys from the "
		          "core: %s",
		          why);
		rc = -1;
		goto out;
	}
	OPENSSL_cleanse(w->tkeys, sizeof(w->tkeys));
	memcpy(w->tkeys, tk.keys.p, tk.keys.len);
	w->tklen = tk.keys.len;
	w->tlife = (long long)tk.lifetime;
	log_debug("gateway worker %ld: %zu session ticket keys from the core "
	          "(lifetime %lld s)",
	          (long)getpid(), w->tklen / TLS_TICKET_KEY_LEN, w->tlife);
	buf_init(&err, 1024);
	if (w->ctx != NULL &&
	    tls_server_tickets_set(w->ctx, w->tkeys, w->tklen, w->tlife,
	                           gw_stale_cb, NULL, &err) == -1)
		log_warnx("gateway worker: session tickets: %s",
		          buf_cstr(&err));
	buf_free(&err);
out:
	OPENSSL_cleanse(w->payload.data, w->payload.len);
	return rc;
}

/* --- the channel to the core -------------------------------------------- */

static void
gw_flush(struct gw *w)
{
	while (evbuffer_get_length(w->out) > 0) {
		if (evbuffer_write(w->out, w->fd) <= 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* The core closed the channel (it exits, after a
			 * drain): as EOF on the read side, not a fault. */
			if (errno == EPIPE || errno == ECONNRESET)
				log_debug("%s: the core went away", w->what);
			else
				log_warn("%s: writing to the core", w->what);
			event_base_loopbreak(w->base);
			return;
		}
	}
	if (evbuffer_get_length(w->out) > 0)
		event_add(w->ev_write, NULL);
	else
		event_del(w->ev_write);
}

static int
gw_queue(struct gw *w, uint32_t type, uint64_t id, const void *p, size_t len)
{
	if (proc_queue(w->out, type, id, p, len, w->max_msg) == -1)
		return -1;
	/* Written at the end of this turn of the loop, together with the
	 * other messages of the same turn (the requests read from many
	 * connections): one write, and one wakeup of the core, for all. */
	if (w->ev_flush != NULL)
		event_active(w->ev_flush, EV_TIMEOUT, 0);
	else
		gw_flush(w);
	return 0;
}

static void
gw_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	gw_flush(arg);
}

static int
gw_pend_add(struct gw *w, struct http_req *d, uint64_t *id)
{
	struct gw_pending *p;
	uint32_t i, ncap;

	if (w->free_head == UINT32_MAX) {
		if (w->npend == w->cappend) {
			if (w->cappend == GW_MAX_PENDING)
				return -1;
			ncap = w->cappend ? w->cappend * 2 : 1024;
			if (ncap > GW_MAX_PENDING)
				ncap = GW_MAX_PENDING;
			if ((p = realloc(w->pend, ncap * sizeof(*p))) == NULL)
				return -1;
			memset(p + w->cappend, 0,
			       (ncap - w->cappend) * sizeof(*p));
			w->pend = p;
			w->cappend = ncap;
		}
		i = w->npend++;
	} else {
		i = w->free_head;
		w->free_head = w->pend[i].next_free;
	}
	w->pend[i].d = d;
	w->pend[i].st = NULL;
	w->pend[i].gen = (w->pend[i].gen + 1) & 0xfff;
	*id = (uint64_t)w->pend[i].gen << GW_IDX_BITS | i;
	return 0;
}

/* The slot of id, taken (waiting or streaming), or NULL. */
static struct gw_pending *
gw_pend_slot(struct gw *w, uint64_t id)
{
	uint32_t i = (uint32_t)(id & GW_IDX_MASK);

	if (id >> 32 != 0 || i >= w->npend ||
	    (w->pend[i].d == NULL && w->pend[i].st == NULL) ||
	    w->pend[i].gen != (uint32_t)(id >> GW_IDX_BITS))
		return NULL;
	return &w->pend[i];
}

static void
gw_pend_free(struct gw *w, struct gw_pending *p)
{
	p->d = NULL;
	p->st = NULL;
	p->next_free = w->free_head;
	w->free_head = (uint32_t)(p - w->pend);
}

static struct http_req *
gw_pend_take(struct gw *w, uint64_t id)
{
	uint32_t i = (uint32_t)(id & GW_IDX_MASK);
	struct http_req *d;

	if (id >> 32 != 0 || i >= w->npend || w->pend[i].d == NULL ||
	    w->pend[i].gen != (uint32_t)(id >> GW_IDX_BITS))
		return NULL;
	d = w->pend[i].d;
	w->pend[i].d = NULL;
	w->pend[i].next_free = w->free_head;
	w->free_head = i;
	return d;
}

/* --- requests ------------------------------------------------------------ */

static void
gw_relay(struct http_req *r)
{
	struct gw *w = &g_gw;
	struct evkeyvalq *hin = evhttp_request_get_input_headers(r->ev);
	struct evkeyval *h;
	static struct gwrelay_req check;
	struct http_req *d;
	const uint8_t *body;
	const char *uri = evhttp_request_get_uri(r->ev), *why = NULL;
	unsigned char *der = NULL;
	size_t blen, n = 0;
	uint64_t id;
	int dlen = 0;

	if (w->fd == -1) {
		http_set_header(r, "Retry-After", "5");
		http_reply_error(r, 503, "unavailable",
		                 "the center is restarting; retry later");
		return;
	}
	if ((body = http_req_body(r, &blen)) == NULL)
		goto oom;
	if (r->peer != NULL && (dlen = i2d_X509(r->peer, &der)) < 0)
		goto oom;
	buf_reset(&w->msg);
	gwrelay_put_str(&w->msg, r->method, strlen(r->method));
	gwrelay_put_str(&w->msg, uri, strlen(uri));
	gwrelay_put_str(&w->msg, r->peer_addr, strlen(r->peer_addr));
	gwrelay_put_str(&w->msg, der, der != NULL ? (size_t)dlen : 0);
	OPENSSL_free(der);
	for (h = hin->tqh_first; h != NULL; h = h->next.tqe_next)
		n++;
	if (n > GWRELAY_MAX_HEADERS) {
		http_reply_error(r, 431, "too_many_headers",
		                 "more than %d request headers",
		                 GWRELAY_MAX_HEADERS);
		return;
	}
	gwrelay_put_u32(&w->msg, (uint32_t)n);
	for (h = hin->tqh_first; h != NULL; h = h->next.tqe_next) {
		gwrelay_put_str(&w->msg, h->key, strlen(h->key));
		gwrelay_put_str(&w->msg, h->value, strlen(h->value));
	}
	gwrelay_put_str(&w->msg, body, blen);
	if (buf_ok(&w->msg) == -1 || w->msg.len > w->max_msg) {
		http_reply_error(r, 413, "body_too_large",
		                 "request too large to relay");
		return;
	}
	/* What the core would refuse (it ends the channel of a worker that
	 * relays it: an absolute-form URI, an empty header name) is this
	 * client's error, answered here: else one request from anyone
	 * would have the worker and all its connections killed. */
	if (gwrelay_req_decode(w->msg.data, w->msg.len, &check, &why) == -1) {
		http_reply_error(r, 400, "bad_request",
		                 "malformed request (%s)", why);
		return;
	}
	if ((d = http_req_defer(r)) == NULL)
		goto oom;
	if (gw_pend_add(w, d, &id) == -1) {
		http_set_header(d, "Retry-After", "5");
		http_reply_error(d, 503, "busy", "too many requests in flight");
		return;
	}
	if (gw_queue(w, GWRELAY_REQ, id, w->msg.data, w->msg.len) == -1) {
		gw_pend_take(w, id);
		http_reply_error(d, 500, "internal_error", "out of memory");
	}
	return;
oom:
	http_reply_error(r, 500, "internal_error", "out of memory");
}

/* --- streaming replies (the admin worker) -------------------------------- */

/* The client of stream id went away (or fell behind): the core is told,
 * once; chunks it sent meanwhile find no stream and are dropped. */
static void
gw_send_gone(struct gw *w, uint64_t id, uint8_t why)
{
	(void)gw_queue(w, GWRELAY_STREAM_GONE, id, &why, 1);
}

static void
gw_stream_gone(struct gw *w, uint64_t id)
{
	struct gw_pending *p = gw_pend_slot(w, id);

	if (p == NULL || p->st == NULL)
		return;
	gw_pend_free(w, p);
	gw_send_gone(w, id, GWRELAY_GONE_LEFT);
}

static void
gw_stream_closed(struct http_stream *st, void *arg)
{
	(void)st;
	gw_stream_gone(&g_gw, (uint64_t)(uintptr_t)arg);
}

/* Headers of the core's reply onto d: each name replaces what the worker's
 * own server set (its security headers); repeats of a name add. */
static const char *
gw_apply_headers(struct http_req *d, const struct gwrelay_reply *rp)
{
	static char ctype[256];
	char *name, *val;
	size_t i, j;
	int repeat;

	snprintf(ctype, sizeof(ctype), "application/json");
	for (i = 0; i < rp->nheaders; i++) {
		name = strv_dup(rp->headers[i].name);
		val = strv_dup(rp->headers[i].value);
		if (name == NULL || val == NULL) {
			free(name);
			free(val);
			continue;
		}
		if (evutil_ascii_strcasecmp(name, "Content-Type") == 0) {
			snprintf(ctype, sizeof(ctype), "%s", val);
		} else {
			repeat = 0;
			for (j = 0; j < i; j++)
				if (rp->headers[j].name.len ==
				        rp->headers[i].name.len &&
				    evutil_ascii_strncasecmp(
				        rp->headers[j].name.p, name,
				        rp->headers[i].name.len) == 0)
					repeat = 1;
			if (repeat)
				http_add_header(d, name, val);
			else
				http_set_header(d, name, val);
		}
		free(name);
		free(val);
	}
	return ctype;
}

static int
gw_on_reply(struct gw *w, const struct proc_hdr *hdr, int file)
{
	struct gwrelay_reply rp;
	struct http_req *d;
	const char *why = NULL, *ctype;
	uint64_t flen = 0;
	int fd = -1;
	size_t i;

	if (file) {
		if (w->nfdq == 0) {
			log_warnx("gateway worker: file reply without a "
			          "descriptor");
			return -1;
		}
		fd = w->fdq[0];
		memmove(w->fdq, w->fdq + 1, --w->nfdq * sizeof(int));
	}
	if (gwrelay_reply_decode(w->payload.data, w->payload.len, &rp, &why) ==
	    -1) {
		log_warnx("gateway worker: bad reply from the core: %s", why);
		goto fail;
	}
	if (file) {
		if (rp.body.len != 8) {
			log_warnx("gateway worker: bad file reply");
			goto fail;
		}
		for (i = 0; i < 8; i++)
			flen |= (uint64_t)(uint8_t)rp.body.p[i] << (8 * i);
	}
	if ((d = gw_pend_take(w, hdr->id)) == NULL) {
		/* A reply for nothing we hold: a bug in the core. */
		log_warnx("gateway worker: reply for unknown request %llu",
		          (unsigned long long)hdr->id);
		goto fail;
	}
	ctype = gw_apply_headers(d, &rp);
	if (file)
		http_reply_file(d, (int)rp.status, ctype, fd, (size_t)flen);
	else
		http_reply_text(d, (int)rp.status, ctype, rp.body.p,
		                rp.body.len);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

static int
gw_on_stream(struct gw *w, const struct proc_hdr *hdr)
{
	struct gwrelay_reply rp;
	struct gw_pending *p;
	struct http_req *d;
	const char *why = NULL, *ctype;
	uint64_t q = 0;
	uint32_t i;

	if (!w->admin) {
		log_warnx("%s: a stream message from the core", w->what);
		return -1;
	}
	if (hdr->type == GWRELAY_STREAM_START) {
		if (gwrelay_stream_start_decode(w->payload.data, w->payload.len,
		                                &rp, &q, &why) == -1) {
			log_warnx("%s: bad stream from the core: %s", w->what,
			          why);
			return -1;
		}
		if ((p = gw_pend_slot(w, hdr->id)) == NULL || p->d == NULL) {
			log_warnx("%s: stream for unknown request %llu",
			          w->what, (unsigned long long)hdr->id);
			return -1;
		}
		d = p->d;
		p->d = NULL;
		i = (uint32_t)(p - w->pend);
		ctype = gw_apply_headers(d, &rp);
		/* The slot stays taken (p->st) while the stream is open. */
		w->pend[i].st = http_req_stream_start(
		    d, (int)rp.status, ctype, (size_t)q, gw_stream_closed,
		    (void *)(uintptr_t)hdr->id);
		if (w->pend[i].st == NULL) {
			/* Answered instead (HEAD, out of memory). */
			gw_pend_free(w, &w->pend[i]);
			gw_send_gone(w, hdr->id, GWRELAY_GONE_LEFT);
		}
		return 0;
	}
	if (gwrelay_stream_len_ok(hdr->type, w->payload.len) == -1) {
		log_warnx("%s: bad stream message from the core", w->what);
		return -1;
	}
	if ((p = gw_pend_slot(w, hdr->id)) == NULL || p->st == NULL) {
		/* Its client left: GWRELAY_STREAM_GONE is on its way. A
		 * request still waiting for its reply is the core's bug. */
		if (p != NULL) {
			log_warnx("%s: stream data for a request not "
			          "streaming",
			          w->what);
			return -1;
		}
		return 0;
	}
	if (hdr->type == GWRELAY_STREAM_END) {
		struct http_stream *st = p->st;

		gw_pend_free(w, p);
		http_req_stream_end(st);
		return 0;
	}
	if (http_req_stream_send(p->st, w->payload.data, w->payload.len) ==
	    -1) {
		/* Closed (the client stopped reading, or sent data), without
		 * on_closed: the core is told here. */
		gw_pend_free(w, p);
		gw_send_gone(w, hdr->id, GWRELAY_GONE_SLOW);
	}
	return 0;
}

static void
gw_reload_tls(struct gw *w)
{
	SSL_CTX *ctx = gw_make_ctx(w);

	if (ctx == NULL) {
		log_warnx("gateway worker: reload: keeping the old TLS "
		          "context");
		return;
	}
	http_server_set_ssl_ctx(w->srv, ctx);
	SSL_CTX_free(w->ctx);
	w->ctx = ctx;
	log_info("%s %ld: TLS context reloaded", w->what, (long)getpid());
}

/* The messages complete in w->in: 0, or -1 on a protocol error. */
static int
gw_take_all(struct gw *w)
{
	struct proc_hdr hdr;
	int rc;

	while ((rc = proc_evbuf_take(w->in, w->max_msg, &hdr, &w->payload)) ==
	       1) {
		switch (hdr.type) {
		case GWRELAY_REPLY:
		case GWRELAY_REPLY_FILE:
			rc = gw_on_reply(w, &hdr,
			                 hdr.type == GWRELAY_REPLY_FILE);
			break;
		case GWRELAY_TLS_RELOAD:
			gw_reload_tls(w);
			rc = 0;
			break;
		case GWRELAY_REVOKED:
			rc = gw_add_serial(&g_revoked, w->payload.data,
			                   w->payload.len);
			break;
		case GWRELAY_STALE:
			rc = gw_add_serial(&g_stale, w->payload.data,
			                   w->payload.len);
			break;
		case GWRELAY_TICKET_KEYS:
			rc = gw_on_tickets(w);
			break;
		case GWRELAY_DRAIN:
			/* The core answers what is still relayed (a poll:
			 * 503 shutting_down) and closes the channel when
			 * the connections are gone or its grace is over. */
			http_server_stop_listening(w->srv);
			http_server_drain(w->srv);
			if (w->ev_stats != NULL) {
				/* The core's stop ends when every worker
				 * reports no connection left: every 100 ms
				 * from now, not every second. */
				struct timeval tv = {0, 100000};

				event_del(w->ev_stats);
				event_add(w->ev_stats, &tv);
				event_active(w->ev_stats, EV_TIMEOUT, 0);
			}
			rc = 0;
			break;
		case GWRELAY_STREAM_START:
		case GWRELAY_STREAM_CHUNK:
		case GWRELAY_STREAM_END:
			rc = gw_on_stream(w, &hdr);
			break;
		default:
			log_warnx("gateway worker: unexpected message type %u",
			          hdr.type);
			rc = -1;
		}
		if (rc == -1)
			return -1;
	}
	return rc == -1 ? -1 : 0;
}

static void
gw_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw *w = arg;
	long n;

	(void)what;
	/* Each read is handled before the next: the descriptors of file
	 * replies ride along one per read, and a burst of them waiting
	 * (an update for the whole fleet) must not fill the queue. */
	for (;;) {
		n = proc_read_some(fd, w->in, w->fdq, GW_MAX_FDQ, &w->nfdq);
		if (n == 0) {
			log_debug("gateway worker: the core went away");
			event_base_loopbreak(w->base);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ECONNRESET) {
				/* the core exited with our requests unread */
				log_debug("gateway worker: the core went away");
				event_base_loopbreak(w->base);
				return;
			}
			log_warn("gateway worker: reading from the core");
			event_base_loopbreak(w->base);
			return;
		}
		if (gw_take_all(w) == -1) {
			log_warnx("gateway worker: protocol error on the "
			          "channel to the core; exiting");
			event_base_loopbreak(w->base);
			return;
		}
	}
}

static void
gw_stats_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw *w = arg;
	struct buf st;
	int i;

	(void)fd;
	(void)what;
	buf_init(&st, 8192);
	gwrelay_put_u64(&st, (uint64_t)http_server_conns(w->srv));
	gwrelay_put_u64(&st, http_server_tls(w->srv, 0));
	gwrelay_put_u64(&st, http_server_tls(w->srv, 1));
	for (i = 0; i < HTTP_CLOSED_NREASONS; i++)
		gwrelay_put_u64(&st, http_server_closed(w->srv, i));
	gwrelay_put_u32(&st, (uint32_t)g_nfail);
	for (i = 0; i < (int)g_nfail; i++) {
		gwrelay_put_str(&st, g_fail[i].reason,
		                strlen(g_fail[i].reason));
		gwrelay_put_u64(&st, g_fail[i].n);
	}
	if (buf_ok(&st) == 0)
		gw_queue(w, GWRELAY_STATS, 0, st.data, st.len);
	buf_free(&st);
}

/* --- start --------------------------------------------------------------- */

static long long
jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static char *
jstrdup(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? strdup(s) : NULL;
}

int
gwworker_main(int admin)
{
	struct gw *w = &g_gw;
	struct proc_hdr hdr;
	struct http_limits lim;
	struct buf err;
	struct rlimit rl;
	struct timeval tv = {1, 0};
	json_t *init = NULL;
	json_error_t jerr;
	const char *role, *logname = admin ? "vigild-adm" : "vigild-gw";
	int lfd = -1, rc = 1, fg;

	signal(SIGPIPE, SIG_IGN);
	log_init(logname, LOG_DEST_STDERR, LOG_LVL_INFO);
	w->admin = admin;
	w->what = admin ? "admin worker" : "gateway worker";
	w->fd = PROC_CHILD_FD;
	w->free_head = UINT32_MAX;
	buf_init(&w->payload, 64u << 20);
	buf_init(&err, 4096);
	if (proc_recv_fd(w->fd, &hdr, &w->payload, PROC_MAX_MSG, &lfd) != 0 ||
	    hdr.type != GWRELAY_INIT || lfd == -1 ||
	    (init = json_loadb((const char *)w->payload.data, w->payload.len, 0,
	                       &jerr)) == NULL) {
		log_warnx("gateway worker: no settings from the core");
		goto out;
	}
	/* The role the core spawned us in, twice: on the command line (ps
	 * tells them apart) and in the settings. */
	role = json_string_value(json_object_get(init, "role"));
	if (role == NULL || strcmp(role, admin ? "admin" : "gateway") != 0) {
		log_warnx("%s: settings for another role", w->what);
		goto out;
	}
	fg = (int)jint(init, "foreground");
	log_init(logname,
	         log_dest_for((enum log_dest)jint(init, "log_dest"), fg),
	         (enum log_level)jint(init, "log_level"));
	w->cert = jstrdup(init, "cert");
	w->key = jstrdup(init, "key");
	w->ca = jstrdup(init, "ca");
	w->max_msg = (size_t)jint(init, "max_msg");
	if (w->cert == NULL || w->key == NULL || w->ca == NULL ||
	    (!admin && w->ca[0] == '\0') || w->max_msg < 65536) {
		log_warnx("gateway worker: incomplete settings");
		goto out;
	}
	buf_free(&w->payload);
	buf_init(&w->payload, w->max_msg);
	buf_init(&w->msg, w->max_msg);
	memset(&lim, 0, sizeof(lim));
	lim.max_body = (size_t)jint(init, "max_body");
	lim.max_headers = 16384;
	lim.timeout_secs = (int)jint(init, "timeout");
	lim.max_conns = (int)jint(init, "max_conns");
	lim.handshake_timeout = (int)jint(init, "handshake_timeout");
	lim.request_timeout = (int)jint(init, "request_timeout");
	lim.max_per_addr = (int)jint(init, "max_per_addr");
	/* Each worker has its own descriptor limit: take all of it. With
	 * max_conns = 0, each worker holds what its limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur > 100 && rl.rlim_cur < 100000000 &&
		    (lim.max_conns == 0 ||
		     lim.max_conns > (int)rl.rlim_cur - 64)) {
			if (lim.max_conns != 0)
				log_warnx("gateway worker: [gateway] max_conns "
				          "= %d is more than the descriptor "
				          "limit (%d) allows; %d per worker",
				          lim.max_conns, (int)rl.rlim_cur,
				          (int)rl.rlim_cur - 64);
			lim.max_conns = (int)rl.rlim_cur - 64;
		}
	}
	tls_set_failure_hook(gw_tls_fail);
	if ((w->ctx = gw_make_ctx(w)) == NULL)
		goto out;
	if ((w->base = http_event_base_new()) == NULL ||
	    (w->in = evbuffer_new()) == NULL ||
	    (w->out = evbuffer_new()) == NULL)
		goto out;
	if ((w->srv = http_server_new(w->base, w->ctx, gw_routes, w, &lim,
	                              NULL)) == NULL)
		goto out;
	if (http_server_bind_fd(w->srv, lfd, &err) == -1) {
		lfd = -1;
		log_warnx("gateway worker: %s", buf_cstr(&err));
		goto out;
	}
	lfd = -1;
	if (evutil_make_socket_nonblocking(w->fd) == -1 ||
	    (w->ev_read = event_new(w->base, w->fd, EV_READ | EV_PERSIST,
	                            gw_read_cb, w)) == NULL ||
	    (w->ev_write =
	         event_new(w->base, w->fd, EV_WRITE, gw_write_cb, w)) == NULL ||
	    (w->ev_flush = event_new(w->base, -1, 0, gw_write_cb, w)) == NULL ||
	    (w->ev_stats =
	         event_new(w->base, -1, EV_PERSIST, gw_stats_cb, w)) == NULL ||
	    (w->ev_soon = evtimer_new(w->base, gw_stats_cb, w)) == NULL)
		goto out;
	event_add(w->ev_read, NULL);
	event_add(w->ev_stats, &tv);
	{
		/* The admin worker has no CA file to read. */
		const char *const files[] = {w->cert, w->key, w->ca};
		int ll = gwworker_landlock(files, admin ? 2 : 3, &err);

		if (ll == -1) {
			log_warnx("gateway worker: landlock: %s",
			          buf_cstr(&err));
			goto out;
		}
		if (ll == 0)
			log_debug("gateway worker: no Landlock in this kernel; "
			          "files limited by the seccomp list only");
	}
	if (gwworker_sandbox(&err) == -1) {
		log_warnx("gateway worker: sandbox: %s", buf_cstr(&err));
		goto out;
	}
	log_debug("%s %ld: accepting", w->what, (long)getpid());
	event_base_dispatch(w->base);
	rc = 0;
out:
	if (lfd != -1)
		close(lfd);
	/* The connections (and the requests they hold) go with us; their
	 * agents reconnect to another worker. */
	_exit(rc);
}
