/*
 * gwproc.c: the core's side of the gateway workers ([gateway] workers = N,
 * see gwproc.h and gwworker.c).
 *
 * Once the gateway port is bound (as root) and root dropped, the core
 * keeps one duplicate of the listening socket, stops accepting on it
 * itself and spawns the workers (a fresh image of vigild each,
 * proc_spawn: the core may have threads by then), handing each one the
 * socket and its settings in a GWRELAY_INIT message. They run as the
 * core does after the privilege drop ([center] user).
 *
 * Each worker relays its requests (GWRELAY_REQ) over its socketpair; the
 * core reads them with a non-blocking framing reader (proc_read_some,
 * proc_evbuf_take), turns the client certificate back into an X509 (the
 * worker verified its chain and role; the core checks revocation in the
 * store, as the in-process gateway does at the handshake) and runs the
 * request through the gateway's route table (http_server_relay). Replies,
 * however late (long polls stay in the core as deferred requests without
 * any descriptor), go back as one message each, queued per worker and
 * written without waiting as its channel takes them, up to a bound past
 * which the core waits, within a deadline and a budget of its time per
 * worker (gwp_write); file replies carry the descriptor
 * (SCM_RIGHTS). A request id carries the worker's incarnation in its
 * high 32 bits: the reply to a request of a worker that has since died is
 * dropped.
 *
 * A worker that dies is restarted with a backoff (1 s, doubling to 30 s,
 * back to 1 s after a minute of life), logged and counted
 * (vigil_gateway_worker_restarts_total). Its agents reconnect to the
 * others. Nothing acknowledged is lost: acknowledgements are replies,
 * sent only after the core committed.
 *
 * The admin worker ([admin] worker = yes) is the same machinery with one
 * worker on the admin listener: the admin TLS context (no client
 * certificates), the admin server's limits, and the admin route table
 * with its authorizer, audit hook and console in the core. Its replies
 * may also stream (the console's live updates, stream.c):
 * GWRELAY_STREAM_START/CHUNK/END go to the worker, which holds the
 * client and bounds what waits for it, and says GWRELAY_STREAM_GONE when
 * the client left; a dead admin worker ends its streams in the core.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "center.h"
#include "clock.h"
#include "gwproc.h"
#include "gwrelay.h"
#include "log.h"
#include "metrics.h"
#include "pki.h"
#include "proc.h"
#include "tls.h"

#define GWP_MAX_WORKERS 64
#define GWP_SNDTIMEO    5 /* seconds a worker may keep the core waiting */
/* ... in all, within GWP_BLOCK_WINDOW seconds (a worker reading a little
 * at a time would else hold the core's event loop for good). */
#define GWP_BLOCK_BUDGET_MS 30000
#define GWP_BLOCK_WINDOW    60
/* Bytes queued for one worker, at most, before the core waits for it to
 * read them (gwp_write). */
#define GWP_OUT_MAX      (32u << 20)
#define GWP_CERTS        262144 /* parsed client certificates kept */
#define GWP_CERT_BUCKETS 4096   /* to start with; doubles as it fills */
#define GWP_CERT_TTL     5      /* seconds a revocation check is reused */

_Static_assert(GWRELAY_TICKET_KEY_LEN == TLS_TICKET_KEY_LEN,
               "GWRELAY_TICKET_KEYS carries tls.c's ticket keys");

/*
 * Client certificates as the workers relay them (DER), parsed and checked
 * against the store once and kept: an agent's every heartbeat and poll
 * brings the same certificate, and parsing it and asking the store each
 * time cost more than the rest of a heartbeat. A hash table of the DER
 * (compared in full) that grows with the agents, up to GWP_CERTS, then
 * starts over: a fixed direct-mapped table of 65,536 made agents whose
 * certificates fell in the same slot evict each other, and with 55,000
 * agents the core spent 60 % of its time parsing and checking their
 * certificates again (docs/performance.md). The revocation answer is
 * reused for
 * GWP_CERT_TTL seconds (a revocation through this center empties the
 * cache and reaches the workers at once: gwproc_agent_revoked).
 *
 * A worker faces the network and may be compromised: before a relayed
 * certificate is taken as an agent's identity, the core checks it as the
 * handshake did (signed by the deployment's CA, for client use, of a role
 * the gateway accepts), so a worker cannot make up a certificate naming
 * any agent (with the serial of a real one, which the store's revocation
 * check alone would pass). A certificate whose bytes are on record as
 * issued here (their SHA-256, gwp_cert_recorded) is neither parsed nor
 * verified again: its identity comes from the record, and the worker
 * cannot make up those bytes either. Validity dates are the handshake's to
 * check: a connection may outlive its certificate, as in the in-process
 * gateway.
 */
struct gwp_cert {
	struct gwp_cert *next; /* same bucket */
	uint64_t h;
	uint8_t *der;
	size_t len;
	X509 *x;
	time_t checked;
};

struct gwslot {
	struct gwproc *gp;
	int idx;
	pid_t pid;
	int fd;
	uint32_t gen; /* incarnation: high bits of the relay ids */
	struct event *ev_read, *ev_restart;
	struct event *ev_write; /* out not all written: once writable */
	time_t out_moved;       /* the last write it took something of */
	struct evbuffer *in;
	struct evbuffer *out; /* messages of this turn, not written yet */
	struct proc_fdq fdq;  /* the descriptors of file replies in out */
	struct buf payload;
	uint64_t stats[GWRELAY_NSTATS];
	struct {
		char reason[64];
		uint64_t n;
	} fail[GWRELAY_MAX_REASONS]; /* last reported */
	size_t nfail;
	time_t started;
	int backoff;
	long long blocked_ms; /* the core's time spent writing to it ... */
	time_t blocked_since; /* ... since then */
};

struct gwproc {
	struct center *c;
	struct http_server *srv; /* the routes: c->gw, or c->adm */
	int admin;               /* the admin worker's pool */
	int syslog;              /* the syslog worker's (syslogin.c) */
	const char *what;        /* "gateway worker", "admin worker" */
	const char *restarts;    /* its restart counter's name */
	int n;
	int lfd;      /* the gateway's listening socket */
	int draining; /* gwp_drain: the center stops; no worker restarts */
	size_t max_msg;
	char exe[4096];
	uint64_t retired[GWRELAY_NSTATS]; /* counters of dead workers */
	struct gwp_cert **certs;          /* nbuckets chains */
	size_t nbuckets, ncerts;
	X509_STORE *ca_store;     /* the deployment's CA (ca_crt) */
	struct event *ev_tickets; /* rotation check (gwp_tickets_cb) */
	struct event *ev_flush;   /* end of a turn: the slots' out written */
	long long tk_rotated;     /* the sealing key the workers have */
	time_t stale_since;       /* renewals by other nodes: from */
	struct gwslot slot[GWP_MAX_WORKERS];
};

static void gwp_spawn_later(struct gwslot *s);
static void gwp_take_rest(struct gwslot *s);

/* --- replies -------------------------------------------------------------- */

static void
gwp_channel_close(struct gwslot *s)
{
	if (s->ev_read != NULL) {
		event_free(s->ev_read);
		s->ev_read = NULL;
	}
	if (s->ev_write != NULL) {
		event_free(s->ev_write);
		s->ev_write = NULL;
	}
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
	if (s->in != NULL)
		evbuffer_drain(s->in, evbuffer_get_length(s->in));
	if (s->out != NULL)
		evbuffer_drain(s->out, evbuffer_get_length(s->out));
	proc_fdq_clear(&s->fdq);
}

/* The channel is broken (a worker stuck or speaking nonsense): end it;
 * SIGCHLD restarts it. */
static void
gwp_kill(struct gwslot *s, const char *why)
{
	log_warnx("vigild: %s %d (pid %ld): %s; stopping it", s->gp->what,
	          s->idx, (long)s->pid, why);
	if (s->pid > 0)
		kill(s->pid, SIGKILL);
	gwp_channel_close(s);
}

/* The core's time spent writing to s (since t0; rc and e the write's
 * result): within GWP_SNDTIMEO a write and GWP_BLOCK_BUDGET_MS a window,
 * else the worker is stopped. 0, or -1 (stopped). */
static int
gwp_blocked(struct gwslot *s, const struct timespec *t0, int rc, int e)
{
	struct timespec t1;
	time_t now = time(NULL);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (now - s->blocked_since >= GWP_BLOCK_WINDOW) {
		s->blocked_since = now;
		s->blocked_ms = 0;
	}
	s->blocked_ms += (long long)(t1.tv_sec - t0->tv_sec) * 1000 +
	                 (t1.tv_nsec - t0->tv_nsec) / 1000000;
	if (rc == -1) {
		gwp_kill(s, e == ETIMEDOUT || e == EAGAIN || e == EWOULDBLOCK
		                ? "not reading what the core sends it"
		                : "cannot write to it");
		return -1;
	}
	if (s->blocked_ms > GWP_BLOCK_BUDGET_MS) {
		gwp_kill(s, "reading so slowly that it holds the core up");
		return -1;
	}
	return 0;
}

/* Writes what is queued for s (gwp_write). 0, or -1 (stopped). */
static int
gwp_flush(struct gwslot *s)
{
	struct timespec t0;
	int rc;

	if (s->fd == -1 || s->out == NULL || evbuffer_get_length(s->out) == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = proc_flush_within(s->fd, s->out, &s->fdq, GWP_SNDTIMEO * 1000);
	return gwp_blocked(s, &t0, rc, errno);
}

/* Writes what of s's queue its channel takes now, without waiting; the
 * rest once it is writable (gwp_write_cb). 0, or -1 (stopped). */
static int
gwp_flush_some(struct gwslot *s)
{
	static const struct timeval tv = {1, 0};
	size_t before;
	int rc;

	if (s->fd == -1 || s->out == NULL ||
	    (before = evbuffer_get_length(s->out)) == 0)
		return 0;
	if ((rc = proc_flush_some(s->fd, s->out, &s->fdq)) == -1) {
		gwp_kill(s, "cannot write to it");
		return -1;
	}
	if (rc == 0 || s->ev_write == NULL)
		return 0;
	/* Some left: the rest once writable. A worker that has taken
	 * nothing for GWP_SNDTIMEO is stopped (checked every second, after
	 * one more try: the core's own loop may have been the slow one). */
	if (evbuffer_get_length(s->out) < before)
		s->out_moved = time(NULL);
	if (!event_pending(s->ev_write, EV_WRITE | EV_TIMEOUT, NULL))
		event_add(s->ev_write, &tv);
	return 0;
}

static void
gwp_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gwslot *s = arg;

	(void)fd;
	(void)what;
	if (gwp_flush_some(s) == -1 || s->out == NULL ||
	    evbuffer_get_length(s->out) == 0)
		return;
	if (time(NULL) - s->out_moved >= GWP_SNDTIMEO)
		gwp_kill(s, "not reading what the core sends it");
}

static void
gwp_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gwproc *gp = arg;
	int i;

	(void)fd;
	(void)what;
	for (i = 0; i < gp->n; i++)
		(void)gwp_flush_some(&gp->slot[i]);
}

/*
 * One message to worker s. Queued and written at the end of this turn
 * of the loop with the others of the turn (the replies to the requests
 * of many agents: one write, and one wakeup of the worker, for all), or
 * as soon as the queue reaches PROC_FLUSH_CHUNK. Those writes do not
 * wait: what the channel does not take now is written once it is
 * writable (gwp_write_cb), so that a busy worker does not hold the core
 * while the other workers wait for their replies (a task for 100,000
 * agents spent 60 % of its hand-out waiting so, one worker at a time). A
 * worker that takes nothing for GWP_SNDTIMEO is stopped. A message that
 * carries a descriptor (fd, a file reply; the caller keeps its own) is
 * queued the same way, a copy of the descriptor with it (proc_queue_fd:
 * it goes with the message's first byte). The core waits only when
 * GWP_OUT_MAX is queued for one worker, or PROC_FDQ_MAX descriptors
 * (after the queue: the order is kept): each such write whole within
 * GWP_SNDTIMEO and within the worker's budget of the core's time
 * (gwp_blocked); else the worker is stopped. 0, or -1 (stopped).
 */
static int
gwp_write(struct gwslot *s, uint32_t type, uint64_t id, const void *p,
          size_t len, int fd)
{
	struct timespec t0;
	int rc, dfd = -1;

	if (fd != -1 && s->out != NULL && s->fd != -1 &&
	    s->fdq.n < PROC_FDQ_MAX &&
	    (dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		log_warn("vigild: %s %d: a descriptor for its queue",
		         s->gp->what, s->idx);
	if ((fd == -1 || dfd != -1) && s->out != NULL && s->fd != -1) {
		if ((dfd == -1
		         ? proc_queue(s->out, type, id, p, len, s->gp->max_msg)
		         : proc_queue_fd(s->out, &s->fdq, type, id, p, len,
		                         s->gp->max_msg, dfd)) == -1) {
			if (dfd != -1)
				close(dfd);
			gwp_kill(s, "cannot write to it");
			return -1;
		}
		if (s->gp->ev_flush == NULL ||
		    evbuffer_get_length(s->out) >= GWP_OUT_MAX)
			return gwp_flush(s);
		if (evbuffer_get_length(s->out) >= PROC_FLUSH_CHUNK &&
		    (s->ev_write == NULL ||
		     !event_pending(s->ev_write, EV_WRITE, NULL)))
			return gwp_flush_some(s);
		event_active(s->gp->ev_flush, EV_TIMEOUT, 0);
		return 0;
	}
	if (gwp_flush(s) == -1)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = proc_send_within(s->fd, type, id, p, len, fd, s->gp->max_msg,
	                      GWP_SNDTIMEO * 1000);
	return gwp_blocked(s, &t0, rc, errno);
}

static void
gwp_send(void *ctx, uint64_t id, int status, struct evkeyvalq *headers,
         struct evbuffer *body, int fd, size_t flen)
{
	struct gwslot *s = ctx;
	struct evkeyval *h;
	struct buf m;
	size_t n = 0, blen = evbuffer_get_length(body);
	uint8_t len8[8];
	int i;

	if (s->fd == -1 || (uint32_t)(id >> 32) != s->gen) {
		/* Its worker died since: the agent has reconnected. */
		if (fd != -1)
			close(fd);
		return;
	}
	buf_init(&m, s->gp->max_msg);
	gwrelay_put_u32(&m, (uint32_t)status);
	for (h = headers->tqh_first; h != NULL; h = h->next.tqe_next)
		n++;
	if (n > GWRELAY_MAX_HEADERS)
		n = GWRELAY_MAX_HEADERS;
	gwrelay_put_u32(&m, (uint32_t)n);
	for (h = headers->tqh_first; h != NULL && n > 0;
	     h = h->next.tqe_next, n--) {
		gwrelay_put_str(&m, h->key, strlen(h->key));
		gwrelay_put_str(&m, h->value, strlen(h->value));
	}
	if (fd != -1) {
		for (i = 0; i < 8; i++)
			len8[i] = (uint8_t)((uint64_t)flen >> (8 * i));
		gwrelay_put_str(&m, len8, 8);
	} else
		gwrelay_put_str(&m, evbuffer_pullup(body, -1), blen);
	if (buf_ok(&m) == -1) {
		/* Larger than the channel takes: the agent gets a 500. */
		log_warnx("vigild: gateway relay: reply of %zu bytes too "
		          "large",
		          blen);
		buf_reset(&m);
		gwrelay_put_u32(&m, 500);
		gwrelay_put_u32(&m, 0);
		gwrelay_put_str(&m, "", 0);
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	(void)gwp_write(s, fd != -1 ? GWRELAY_REPLY_FILE : GWRELAY_REPLY,
	                id & 0xffffffffu, m.data, m.len, fd);
	if (fd != -1)
		close(fd);
	buf_free(&m);
}

/* A whole reply made here (not by a handler). */
static void
gwp_reply_now(struct gwslot *s, uint64_t id, int status, const char *code,
              const char *msg)
{
	struct evkeyvalq hdrs;
	struct evbuffer *b = evbuffer_new();
	json_t *j =
	    json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	hdrs.tqh_first = NULL;
	hdrs.tqh_last = &hdrs.tqh_first;
	evhttp_add_header(&hdrs, "Content-Type", "application/json");
	evhttp_add_header(&hdrs, "Connection", "close");
	if (b != NULL) {
		if (text != NULL)
			evbuffer_add(b, text, strlen(text));
		gwp_send(s, id, status, &hdrs, b, -1, 0);
		evbuffer_free(b);
	}
	evhttp_clear_headers(&hdrs);
	free(text);
	json_decref(j);
}

/* --- streaming replies (the admin worker) ----------------------------------
 */

static int
gwp_stream_start(void *ctx, uint64_t id, int status, struct evkeyvalq *headers,
                 size_t max_queued)
{
	struct gwslot *s = ctx;
	struct evkeyval *h;
	struct buf m;
	size_t n = 0;
	uint8_t q8[8];
	int i, rc;

	if (s->fd == -1 || (uint32_t)(id >> 32) != s->gen)
		return -1;
	if (max_queued == 0 || max_queued > GWRELAY_MAX_QUEUED)
		max_queued = GWRELAY_MAX_QUEUED;
	buf_init(&m, s->gp->max_msg);
	gwrelay_put_u32(&m, (uint32_t)status);
	for (h = headers->tqh_first; h != NULL; h = h->next.tqe_next)
		n++;
	if (n > GWRELAY_MAX_HEADERS)
		n = GWRELAY_MAX_HEADERS;
	gwrelay_put_u32(&m, (uint32_t)n);
	for (h = headers->tqh_first; h != NULL && n > 0;
	     h = h->next.tqe_next, n--) {
		gwrelay_put_str(&m, h->key, strlen(h->key));
		gwrelay_put_str(&m, h->value, strlen(h->value));
	}
	for (i = 0; i < 8; i++)
		q8[i] = (uint8_t)((uint64_t)max_queued >> (8 * i));
	gwrelay_put_str(&m, q8, 8);
	rc = buf_ok(&m) == -1 ? -1
	                      : gwp_write(s, GWRELAY_STREAM_START,
	                                  id & 0xffffffffu, m.data, m.len, -1);
	buf_free(&m);
	return rc;
}

static int
gwp_stream_chunk(void *ctx, uint64_t id, const void *p, size_t len)
{
	struct gwslot *s = ctx;

	if (s->fd == -1 || (uint32_t)(id >> 32) != s->gen)
		return -1;
	if (len == 0)
		return 0;
	return gwp_write(s, GWRELAY_STREAM_CHUNK, id & 0xffffffffu, p, len, -1);
}

static void
gwp_stream_end(void *ctx, uint64_t id)
{
	struct gwslot *s = ctx;

	if (s->fd == -1 || (uint32_t)(id >> 32) != s->gen)
		return;
	(void)gwp_write(s, GWRELAY_STREAM_END, id & 0xffffffffu, NULL, 0, -1);
}

static const struct http_relay_stream_ops gwp_stream_ops = {
    gwp_stream_start, gwp_stream_chunk, gwp_stream_end};

/* --- requests ------------------------------------------------------------- */

static void
gwp_certs_clear(struct gwproc *gp)
{
	struct gwp_cert *e, *next;
	size_t i;

	for (i = 0; gp->certs != NULL && i < gp->nbuckets; i++) {
		for (e = gp->certs[i]; e != NULL; e = next) {
			next = e->next;
			free(e->der);
			X509_free(e->x);
			free(e);
		}
		gp->certs[i] = NULL;
	}
	gp->ncerts = 0;
}

/* Twice the buckets, once there are as many entries as buckets (kept
 * as they are when memory is short: only the chains get longer). */
static void
gwp_certs_grow(struct gwproc *gp)
{
	struct gwp_cert **nb, *e, *next;
	size_t i, n = gp->nbuckets * 2;

	if (gp->ncerts < gp->nbuckets || (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < gp->nbuckets; i++)
		for (e = gp->certs[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->h & (n - 1)];
			nb[e->h & (n - 1)] = e;
		}
	free(gp->certs);
	gp->certs = nb;
	gp->nbuckets = n;
}

/* (Re)loads the CA the relayed certificates are checked against; the
 * old one stays on failure. Empties the cache of checked certificates. */
static int
gwp_ca_load(struct gwproc *gp, struct buf *err)
{
	X509_STORE *st = X509_STORE_new();

	if (st == NULL || X509_STORE_load_file(st, gp->c->paths.ca_crt) != 1) {
		buf_printf(err, "gateway workers: %s: cannot load the CA",
		           gp->c->paths.ca_crt);
		X509_STORE_free(st);
		return -1;
	}
	X509_STORE_free(gp->ca_store);
	gp->ca_store = st;
	gwp_certs_clear(gp);
	return 0;
}

/* 0 when x is what the workers' handshake accepts (see the top). */
static int
gwp_cert_verify(struct gwproc *gp, X509 *x, struct buf *why)
{
	X509_STORE_CTX *ctx;
	int ok = -1;

	if (gp->ca_store == NULL || (ctx = X509_STORE_CTX_new()) == NULL) {
		buf_puts(why, "cannot check it");
		return -1;
	}
	if (X509_STORE_CTX_init(ctx, gp->ca_store, x, NULL) == 1 &&
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1) {
		X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
		                            X509_V_FLAG_NO_CHECK_TIME);
		if (X509_verify_cert(ctx) == 1)
			ok = 0;
		else
			buf_puts(why, tls_verify_error_text(
			                  X509_STORE_CTX_get_error(ctx)));
	} else
		buf_puts(why, "cannot check it");
	X509_STORE_CTX_free(ctx);
	if (ok == 0 && pki_role_allowed(x,
	                                PKI_ROLE_BIT(PKI_ROLE_AGENT) |
	                                    PKI_ROLE_BIT(PKI_ROLE_NONE),
	                                "the agent gateway", why) == -1)
		ok = -1;
	return ok;
}

/* An object standing for a certificate the record describes: its serial,
 * its subject's CN (the agent id) and its notAfter, what the handlers and
 * the revocation check read from a relayed certificate. No key, no
 * signature: only ever a relayed request's r->peer. */
static X509 *
gwp_cert_identity(const char *serial, const char *cn, long long not_after)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	BIGNUM *bn = NULL;
	int ok;

	ok = x != NULL && nm != NULL && serial != NULL && cn != NULL &&
	     BN_hex2bn(&bn, serial) > 0 &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	     X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8,
	                                (const unsigned char *)cn, -1, -1,
	                                0) == 1 &&
	     X509_set_subject_name(x, nm) == 1 &&
	     ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL;
	BN_free(bn);
	X509_NAME_free(nm);
	if (!ok) {
		ERR_clear_error();
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * A certificate this deployment issued to an agent, known by the SHA-256
 * of its bytes (db_add_cert records it): its identity is made from the
 * record (gwp_cert_identity) instead of parsing it. Parsing one
 * (d2i_X509, OpenSSL 3 decoding its public key) costs 80-160 us here, the
 * larger part of what the core spends on an agent it has not seen since
 * it started, and a restart brings the whole fleet back at once. Such a
 * certificate was signed by the key process for that agent, so its
 * chain, purpose and role need no second check either, and a worker
 * cannot make up its bytes. *revoked as the record says. NULL when the
 * bytes are not on record (certificates issued before digests were kept,
 * or made up): then parsed and verified.
 */
static X509 *
gwp_cert_recorded(struct gwproc *gp, const uint8_t *der, size_t len,
                  int *revoked)
{
	unsigned char md[32];
	char hex[65];
	struct store_rows *q;
	X509 *x = NULL;

	*revoked = 0;
	if (gp->c->store == NULL ||
	    EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		return NULL;
	}
	hex_encode(md, sizeof(md), hex);
	q = store_query(gp->c->store,
	                "SELECT serial, agent_id, not_after, revoked_at IS NOT "
	                "NULL FROM certs WHERE der_sha256 = ?",
	                S_TEXT(hex));
	if (q != NULL && store_next(q) == 1) {
		x = gwp_cert_identity(store_text(q, 0), store_text(q, 1),
		                      store_int(q, 2));
		*revoked = store_int(q, 3) != 0;
	}
	store_done(q);
	return x;
}

/* The relayed certificate, parsed (a reference the caller frees), and
 * whether its revocation check is still fresh (*fresh). NULL when it
 * does not parse, or (*bad set, the reason in why) when it is not one the
 * workers' handshake accepts. */
static X509 *
gwp_cert(struct gwproc *gp, const uint8_t *der, size_t len, int *fresh,
         struct gwp_cert **slot, int *bad, struct buf *why)
{
	struct gwp_cert *e;
	const unsigned char *p = der;
	uint64_t h = 1469598103934665603ull;
	X509 *x;
	size_t i;
	int revoked;

	*fresh = 0;
	*bad = 0;
	*slot = NULL;
	for (i = 0; i < len; i++)
		h = (h ^ der[i]) * 1099511628211ull;
	for (e = gp->certs[h & (gp->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->h == h && e->len == len &&
		    memcmp(e->der, der, len) == 0) {
			*slot = e;
			X509_up_ref(e->x);
			*fresh = time(NULL) - e->checked < GWP_CERT_TTL;
			return e->x;
		}
	if ((x = gwp_cert_recorded(gp, der, len, &revoked)) != NULL) {
		/* Not revoked on record: as fresh as a check just made. */
		*fresh = !revoked;
	} else {
		if ((x = d2i_X509(NULL, &p, (long)len)) == NULL ||
		    p != der + len) {
			X509_free(x);
			return NULL;
		}
		if (gwp_cert_verify(gp, x, why) == -1) {
			X509_free(x);
			*bad = 1;
			return NULL;
		}
	}
	if (gp->ncerts >= GWP_CERTS)
		gwp_certs_clear(gp);
	gwp_certs_grow(gp);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return x; /* checked, not kept */
	if ((e->der = malloc(len)) == NULL) {
		free(e);
		return x;
	}
	memcpy(e->der, der, len);
	e->len = len;
	e->h = h;
	X509_up_ref(x);
	e->x = x;
	if (*fresh)
		e->checked = time(NULL);
	e->next = gp->certs[h & (gp->nbuckets - 1)];
	gp->certs[h & (gp->nbuckets - 1)] = e;
	gp->ncerts++;
	*slot = e;
	return x;
}

/* Tells one worker (s) or all (s NULL) about serial: GWRELAY_REVOKED,
 * refuse it at the handshake; GWRELAY_STALE, it is no longer its agent's
 * current certificate, so its session tickets are not honoured. */
static void
gwp_push_serial(struct gwproc *gp, struct gwslot *s, uint32_t type,
                const char *serial)
{
	int i;

	for (i = 0; i < gp->n; i++) {
		if ((s != NULL && &gp->slot[i] != s) || gp->slot[i].fd == -1)
			continue;
		(void)gwp_write(&gp->slot[i], type, 0, serial, strlen(serial),
		                -1);
	}
}

static int
gwp_on_request(struct gwslot *s, const struct proc_hdr *hdr)
{
	struct center *c = s->gp->c;
	struct gwrelay_req rq;
	struct http_relay_in in;
	const char *why = NULL;
	char *method = NULL, *uri = NULL, *addr = NULL, *serial;
	char *names[GWRELAY_MAX_HEADERS], *values[GWRELAY_MAX_HEADERS];
	X509 *peer = NULL;
	struct gwp_cert *slot = NULL;
	struct buf bad_why;
	int fresh = 0, bad = 0;
	uint64_t id = (uint64_t)s->gen << 32 | (hdr->id & 0xffffffffu);
	unsigned long mark;
	size_t i, nh = 0;
	int rc = -1;

	if (hdr->id >> 32 != 0 ||
	    gwrelay_req_decode(s->payload.data, s->payload.len, &rq, &why) ==
	        -1) {
		log_warnx("vigild: %s %d: bad request message: %s", s->gp->what,
		          s->idx, why != NULL ? why : "bad id");
		return -1;
	}
	if (s->gp->admin && rq.cert.len > 0) {
		/* The admin listener asks for no client certificate. */
		log_warnx("vigild: admin worker: relayed a client certificate");
		return -1;
	}
	memset(&in, 0, sizeof(in));
	buf_init(&bad_why, 1024);
	if ((method = strv_dup(rq.method)) == NULL ||
	    (uri = strv_dup(rq.uri)) == NULL ||
	    (addr = strv_dup(rq.peer_addr)) == NULL)
		goto oom;
	for (nh = 0; nh < rq.nheaders; nh++) {
		names[nh] = strv_dup(rq.headers[nh].name);
		values[nh] = strv_dup(rq.headers[nh].value);
		if (names[nh] == NULL || values[nh] == NULL) {
			free(names[nh]);
			free(values[nh]);
			goto oom;
		}
	}
	if (rq.cert.len > 0) {
		if ((peer = gwp_cert(s->gp, (const uint8_t *)rq.cert.p,
		                     rq.cert.len, &fresh, &slot, &bad,
		                     &bad_why)) == NULL &&
		    bad) {
			/* Never accepted at a worker's handshake: a worker
			 * not doing its job, or one that made it up. */
			log_warnx("vigild: gateway worker %d relayed a client "
			          "certificate the gateway does not accept: %s",
			          s->idx, buf_cstr(&bad_why));
			metrics_add("vigil_tls_handshake_failures_total",
			            "reason=\"relayed_bad_certificate\"", 1);
			gwp_reply_now(
			    s, id, 401, "bad_certificate",
			    "this client certificate is not accepted");
			rc = 0;
			goto out;
		}
		if (peer == NULL) {
			log_warnx("vigild: gateway worker %d: unreadable "
			          "client certificate",
			          s->idx);
			goto out;
		}
		/* What the in-process gateway checks at the handshake
		 * (revoked_cb): the store is here, not in the worker. */
		if (fresh)
			goto checked;
		serial = tls_serial_hex(peer);
		mark = store_errors(c->store);
		if (serial == NULL || db_is_revoked(c->store, serial)) {
			/* Known revoked (not a store error): the workers
			 * refuse it at the handshake from now on. */
			if (serial != NULL && store_errors(c->store) == mark)
				gwp_push_serial(s->gp, NULL, GWRELAY_REVOKED,
				                serial);
			free(serial);
			metrics_add("vigil_tls_handshake_failures_total",
			            "reason=\"revoked\"", 1);
			gwp_reply_now(s, id, 401, "cert_revoked",
			              "this certificate is revoked");
			rc = 0;
			goto out;
		}
		free(serial);
		if (slot != NULL && slot->x == peer)
			slot->checked = time(NULL);
	}
checked:
	in.method = method;
	in.uri = uri;
	in.peer_addr = addr;
	in.peer = peer;
	in.tls = 1;
	in.nheaders = nh;
	in.names = (const char *const *)names;
	in.values = (const char *const *)values;
	in.body = (const uint8_t *)rq.body.p;
	in.body_len = rq.body.len;
	in.stream = s->gp->admin ? &gwp_stream_ops : NULL;
	if (http_server_relay(s->gp->srv, &in, gwp_send, s, id) == -1)
		goto oom;
	rc = 0;
	goto out;
oom:
	gwp_reply_now(s, id, 500, "internal_error", "out of memory");
	rc = 0;
out:
	for (i = 0; i < nh; i++) {
		free(names[i]);
		free(values[i]);
	}
	X509_free(peer);
	free(method);
	free(uri);
	free(addr);
	buf_free(&bad_why);
	return rc;
}

/* Counters: kept for the sums; TLS failures added to the core's metric
 * as they grow (a worker's count only grows while it lives). */
static int
gwp_on_stats(struct gwslot *s, const char **why)
{
	struct gwrelay_stats st;
	char labels[96], reason[64];
	size_t i, k;

	if (gwrelay_stats_decode(s->payload.data, s->payload.len, &st, why) ==
	    -1)
		return -1;
	memcpy(s->stats, st.v, sizeof(s->stats));
	for (i = 0; i < st.nreasons; i++) {
		snprintf(reason, sizeof(reason), "%.*s", (int)st.reason[i].len,
		         st.reason[i].p);
		/* a label value: the reasons are tls.c's fixed words */
		if (strspn(reason, "abcdefghijklmnopqrstuvwxyz_0123456789") !=
		    strlen(reason))
			continue;
		for (k = 0; k < s->nfail; k++)
			if (strcmp(s->fail[k].reason, reason) == 0)
				break;
		if (k == s->nfail) {
			if (s->nfail == GWRELAY_MAX_REASONS)
				continue;
			snprintf(s->fail[k].reason, sizeof(s->fail[k].reason),
			         "%s", reason);
			s->fail[k].n = 0;
			s->nfail++;
		}
		if (st.failures[i] > s->fail[k].n) {
			snprintf(labels, sizeof(labels), "reason=\"%s\"",
			         reason);
			metrics_add("vigil_tls_handshake_failures_total",
			            labels,
			            (double)(st.failures[i] - s->fail[k].n));
			s->fail[k].n = st.failures[i];
		}
	}
	return 0;
}

static void
gwp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gwslot *s = arg;
	struct proc_hdr hdr;
	const char *why = NULL;
	size_t nfds = 0;
	long n;
	int rc, budget, eof = 0;

	(void)what;
	/* A bounded amount per wakeup: one busy worker must not starve the
	 * others, the admin API or the timers. */
	for (budget = 0; budget < 16; budget++) {
		n = proc_read_some(fd, s->in, NULL, 0, &nfds);
		if (n == 0) {
			log_debug("vigild: %s %d: channel closed", s->gp->what,
			          s->idx);
			/* The syslog worker's last batches are stored; a
			 * gateway worker's requests have no one to answer. */
			if (s->gp->syslog) {
				eof = 1;
				break;
			}
			gwp_channel_close(s);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			gwp_kill(s, "reading from it failed");
			return;
		}
	}
	while ((rc = proc_evbuf_take(s->in, s->gp->max_msg, &hdr,
	                             &s->payload)) == 1) {
		switch (hdr.type) {
		case GWRELAY_REQ:
			rc = s->gp->syslog ? -1 : gwp_on_request(s, &hdr);
			break;
		case GWRELAY_STATS:
			rc = s->gp->syslog ? -1 : gwp_on_stats(s, &why);
			break;
		case GWRELAY_SYSLOG:
			rc = !s->gp->syslog || hdr.id != 0
			         ? -1
			         : syslogin_relayed(s->gp->c, s->payload.data,
			                            s->payload.len);
			break;
		case GWRELAY_STREAM_GONE: {
			int slow = 0;

			/* Its client went away: end the stream here. */
			if (!s->gp->admin || hdr.id >> 32 != 0 ||
			    gwrelay_gone_decode(s->payload.data, s->payload.len,
			                        &slow) == -1) {
				rc = -1;
				break;
			}
			http_server_relay_gone(s->gp->srv, s,
			                       (uint64_t)s->gen << 32 | hdr.id,
			                       slow);
			rc = 0;
			break;
		}
		default:
			rc = -1;
		}
		if (rc == -1 || s->fd == -1)
			break;
	}
	if (rc == -1 && s->fd != -1)
		gwp_kill(s, "protocol error on its channel");
	else if (eof && s->fd != -1)
		gwp_channel_close(s);
}

/* --- processes ------------------------------------------------------------ */

/* A worker starting (or restarting) learns every revoked serial. */
static void
gwp_send_revoked_all(struct gwslot *s)
{
	struct center *c = s->gp->c;
	struct store_rows *q;
	const char *serial;

	if (c->store == NULL)
		return;
	q = store_query(c->store,
	                "SELECT c.serial FROM certs c LEFT JOIN agents a ON "
	                "a.id = c.agent_id WHERE c.revoked_at IS NOT NULL OR "
	                "a.status = 'revoked'");
	while (q != NULL && store_next(q) == 1 && s->fd != -1)
		if ((serial = store_text(q, 0)) != NULL)
			gwp_push_serial(s->gp, s, GWRELAY_REVOKED, serial);
	store_done(q);
}

/* A worker starting (or restarting) learns every certificate that is
 * valid, not revoked and no longer its agent's current one (replaced by
 * a renewal): what the in-process gateway's stale_cb finds in the store. */
static void
gwp_send_stale_all(struct gwslot *s)
{
	struct center *c = s->gp->c;
	struct store_rows *q;
	const char *serial;

	if (c->store == NULL)
		return;
	q = store_query(c->store,
	                "SELECT c.serial FROM certs c JOIN agents a ON a.id = "
	                "c.agent_id WHERE c.revoked_at IS NULL AND a.status = "
	                "'active' AND c.not_after > ? AND (a.cert_serial IS "
	                "NULL OR a.cert_serial <> c.serial)",
	                S_INT(time(NULL)));
	while (q != NULL && store_next(q) == 1 && s->fd != -1)
		if ((serial = store_text(q, 0)) != NULL)
			gwp_push_serial(s->gp, s, GWRELAY_STALE, serial);
	store_done(q);
}

/*
 * Session ticket keys: the core owns them (tls_server_tickets on its
 * gateway context: [gateway] session_tickets, the key file in data_dir,
 * which the workers cannot read) and sends them to a worker when it
 * starts, to all when they rotate (checked here, as no handshake happens
 * in the core) and after a reload. Lifetime 0 and no keys: off.
 */
static void
gwp_push_tickets(struct gwproc *gp, struct gwslot *s)
{
	unsigned char keys[TLS_TICKET_KEYS_MAX];
	long long lifetime = 0, rotated = 0;
	size_t klen = 0;
	struct buf m;
	int i;

	if (gp->c->gw_ctx == NULL ||
	    tls_server_tickets_export(gp->c->gw_ctx, (long long)time(NULL),
	                              keys, &klen, &lifetime, &rotated) == -1) {
		klen = 0;
		lifetime = 0;
		rotated = 0;
	}
	if (rotated != gp->tk_rotated)
		s = NULL; /* new keys (rotated just now): every worker */
	gp->tk_rotated = rotated;
	buf_init(&m, 256);
	gwrelay_put_u64(&m, (uint64_t)lifetime);
	gwrelay_put_str(&m, keys, klen);
	OPENSSL_cleanse(keys, sizeof(keys));
	for (i = 0; buf_ok(&m) == 0 && i < gp->n; i++) {
		if ((s != NULL && &gp->slot[i] != s) || gp->slot[i].fd == -1)
			continue;
		(void)gwp_write(&gp->slot[i], GWRELAY_TICKET_KEYS, 0, m.data,
		                m.len, -1);
	}
	if (m.data != NULL)
		OPENSSL_cleanse(m.data, m.len);
	buf_free(&m);
}

/* Renewals made through other nodes of a shared database (PostgreSQL):
 * their replaced certificates reach this node's workers here, at the
 * latest a minute later (the ones made here: gwproc_agent_certs_changed,
 * at once). Two minutes of slack for the other nodes' clocks. */
static void
gwp_stale_catch_up(struct gwproc *gp)
{
	struct center *c = gp->c;
	struct store_rows *q;
	const char *serial;
	time_t now = time(NULL);
	unsigned long mark;

	if (c->store == NULL || !store_is_pg(c->store))
		return;
	mark = store_errors(c->store);
	if (gp->stale_since == 0)
		gp->stale_since = now; /* the workers got the rest at start */
	q = store_query(c->store,
	                "SELECT o.serial FROM certs n JOIN certs o ON "
	                "o.agent_id = n.agent_id AND o.serial <> n.serial "
	                "JOIN agents a ON a.id = n.agent_id AND a.cert_serial "
	                "= n.serial WHERE n.issued_at >= ? AND o.revoked_at "
	                "IS NULL AND o.not_after > ?",
	                S_INT(gp->stale_since - 120), S_INT(now));
	while (q != NULL && store_next(q) == 1)
		if ((serial = store_text(q, 0)) != NULL)
			gwp_push_serial(gp, NULL, GWRELAY_STALE, serial);
	store_done(q);
	if (q != NULL && store_errors(c->store) == mark)
		gp->stale_since = now;
}

/* Keys due to rotate are rotated by the export (and written to the key
 * file); then every worker gets them. Checked every tenth of the
 * lifetime, at least every minute. */
static void
gwp_tickets_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gwproc *gp = arg;
	unsigned char keys[TLS_TICKET_KEYS_MAX];
	long long lifetime = 0, rotated = 0;
	struct timeval tv = {60, 0};
	size_t klen;

	(void)fd;
	(void)what;
	if (gp->c->gw_ctx != NULL &&
	    tls_server_tickets_export(gp->c->gw_ctx, (long long)time(NULL),
	                              keys, &klen, &lifetime, &rotated) == 0) {
		OPENSSL_cleanse(keys, sizeof(keys));
		if (rotated != gp->tk_rotated) {
			log_info("vigild: session ticket keys rotated; sent to "
			         "the gateway workers");
			gwp_push_tickets(gp, NULL);
		}
		if (lifetime / 10 < tv.tv_sec)
			tv.tv_sec = lifetime / 10 > 0 ? lifetime / 10 : 1;
		gwp_stale_catch_up(gp);
	}
	evtimer_add(gp->ev_tickets, &tv);
}

void
gwproc_agent_certs_changed(struct center *c, const char *agent_id)
{
	struct store_rows *q;
	const char *serial;

	if (c->gwp == NULL)
		return;
	q = store_query(c->store,
	                "SELECT c.serial FROM certs c JOIN agents a ON a.id = "
	                "c.agent_id WHERE c.agent_id = ? AND (a.cert_serial IS "
	                "NULL OR a.cert_serial <> c.serial)",
	                S_TEXT(agent_id));
	while (q != NULL && store_next(q) == 1)
		if ((serial = store_text(q, 0)) != NULL)
			gwp_push_serial(c->gwp, NULL, GWRELAY_STALE, serial);
	store_done(q);
}

void
gwproc_agent_revoked(struct center *c, const char *agent_id)
{
	struct store_rows *q;
	const char *serial;

	if (c->gwp == NULL)
		return;
	gwp_certs_clear(c->gwp);
	q = store_query(c->store, "SELECT serial FROM certs WHERE agent_id = ?",
	                S_TEXT(agent_id));
	while (q != NULL && store_next(q) == 1)
		if ((serial = store_text(q, 0)) != NULL)
			gwp_push_serial(c->gwp, NULL, GWRELAY_REVOKED, serial);
	store_done(q);
}

/* Worker idx's listening socket: the first one for worker 0 (and for
 * the admin worker), its own on the same port for the other gateway
 * workers (SO_REUSEPORT, made by main.c while root). Kept here while the
 * worker lives or is restarted: the connections the kernel hashes to a
 * dead worker's socket wait in its queue for the new one. */
static int
gwp_listen_fd(const struct gwproc *gp, int idx)
{
	if (gp->admin || idx == 0 || idx - 1 >= gp->c->gw_nlfd)
		return gp->lfd;
	return gp->c->gw_lfd[idx - 1];
}

static int
gwp_spawn(struct gwslot *s)
{
	struct gwproc *gp = s->gp;
	struct center *c = gp->c;
	char *argv[] = {"vigild",
	                gp->syslog  ? "--syslog-worker"
	                : gp->admin ? "--admin-worker"
	                            : "--gateway-worker",
	                NULL};
	struct timeval tv = {GWP_SNDTIMEO, 0};
	int sndbuf = 4 << 20;
	json_t *init;
	char *text = NULL;
	int fd = -1, udp = -1, tcp = -1;
	pid_t pid;

	if (gp->syslog) {
		/* No TLS and no HTTP: the sockets and max_message. */
		syslogin_fds(c, &udp, &tcp);
		init = json_pack(
		    "{s:s,s:I,s:i,s:i,s:i}", "role", "syslog", "max_message",
		    (json_int_t)c->conf.sl_max_message, "foreground",
		    c->foreground, "log_dest", (int)c->conf.log_dest,
		    "log_level", (int)log_getlevel());
	} else if (gp->admin)
		/* The admin listener: no client certificates (no CA), its
		 * own limits, at most ADMIN_MAX_CONNS besides streams. */
		init = json_pack(
		    "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i}",
		    "role", "admin", "cert", c->paths.server_crt, "key",
		    c->paths.server_key, "ca", "", "max_body",
		    (json_int_t)c->conf.adm_max_body, "timeout",
		    (json_int_t)c->conf.adm_timeout, "max_conns",
		    (json_int_t)ADMIN_MAX_CONNS, "handshake_timeout",
		    (json_int_t)c->conf.adm_handshake_timeout,
		    "request_timeout", (json_int_t)c->conf.adm_request_timeout,
		    "max_per_addr", (json_int_t)c->conf.adm_max_per_addr,
		    "max_msg", (json_int_t)gp->max_msg, "foreground",
		    c->foreground, "log_dest", (int)c->conf.log_dest,
		    "log_level", (int)log_getlevel());
	else
		init = json_pack(
		    "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i}",
		    "role", "gateway", "cert", c->paths.server_crt, "key",
		    c->paths.server_key, "ca", c->paths.ca_crt, "max_body",
		    (json_int_t)c->conf.gw_max_body, "timeout",
		    (json_int_t)c->conf.gw_timeout, "max_conns",
		    (json_int_t)c->conf.gw_max_conns, "handshake_timeout",
		    (json_int_t)c->conf.gw_handshake_timeout, "request_timeout",
		    (json_int_t)c->conf.gw_request_timeout, "max_per_addr",
		    (json_int_t)c->conf.gw_max_per_addr, "max_msg",
		    (json_int_t)gp->max_msg, "foreground", c->foreground,
		    "log_dest", (int)c->conf.log_dest, "log_level",
		    (int)log_getlevel());
	if (init == NULL || (text = json_dumps(init, JSON_COMPACT)) == NULL)
		goto fail;
	if ((pid = proc_spawn(&fd, gp->exe, argv, NULL)) == -1)
		goto fail;
	if (proc_send_fd(fd, GWRELAY_INIT, 0, text, strlen(text),
	                 gp->syslog ? udp : gwp_listen_fd(gp, s->idx)) == -1 ||
	    (gp->syslog &&
	     proc_send_fd(fd, GWRELAY_LISTEN, 0, NULL, 0, tcp) == -1)) {
		log_warn("vigild: %s %d: sending its settings", gp->what,
		         s->idx);
		kill(pid, SIGKILL);
		close(fd);
		s->pid = pid; /* reaped and restarted as any other */
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Room for a burst of replies (a task for every agent) while the
	 * worker is busy with handshakes: the core blocks only when it is
	 * full (capped by net.core.wmem_max). */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	s->pid = pid;
	s->fd = fd;
	s->gen++;
	s->started = s->out_moved = time(NULL);
	s->blocked_ms = 0;
	s->blocked_since = s->started;
	memset(s->stats, 0, sizeof(s->stats));
	s->nfail = 0;
	if ((s->ev_read = event_new(c->base, fd, EV_READ | EV_PERSIST,
	                            gwp_read_cb, s)) == NULL ||
	    event_add(s->ev_read, NULL) == -1 ||
	    (s->ev_write = event_new(c->base, fd, EV_WRITE, gwp_write_cb, s)) ==
	        NULL)
		fatalx("%s: event_new", __func__);
	if (!gp->admin && !gp->syslog) {
		gwp_send_revoked_all(s);
		gwp_send_stale_all(s);
		gwp_push_tickets(gp, s);
	}
	log_info("vigild: %s %d started (pid %ld)", gp->what, s->idx,
	         (long)pid);
	json_decref(init);
	free(text);
	return 0;
fail:
	json_decref(init);
	free(text);
	return -1;
}

static void
gwp_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gwslot *s = arg;

	(void)fd;
	(void)what;
	if (s->gp->draining)
		return; /* the center stops: its listening sockets are closed */
	if (s->pid == 0 && gwp_spawn(s) == -1)
		gwp_spawn_later(s);
}

static void
gwp_spawn_later(struct gwslot *s)
{
	struct timeval tv;

	if (s->started != 0 && time(NULL) - s->started >= 60)
		s->backoff = 0;
	s->backoff = s->backoff == 0 ? 1 : s->backoff * 2;
	if (s->backoff > 30)
		s->backoff = 30;
	tv.tv_sec = s->backoff;
	tv.tv_usec = 0;
	if (s->ev_restart == NULL &&
	    (s->ev_restart = evtimer_new(s->gp->c->base, gwp_restart_cb, s)) ==
	        NULL)
		fatalx("%s: evtimer_new", __func__);
	evtimer_add(s->ev_restart, &tv);
}

static int
gwp_reaped(struct gwproc *gp, pid_t pid, int status)
{
	struct gwslot *s;
	int i, k;

	if (gp == NULL || pid <= 0)
		return 0;
	for (i = 0; i < gp->n; i++) {
		s = &gp->slot[i];
		if (s->pid != pid)
			continue;
		if (WIFSIGNALED(status))
			log_warnx("vigild: %s %d (pid %ld) killed by signal "
			          "%d%s",
			          gp->what, i, (long)pid, WTERMSIG(status),
			          gp->draining ? " while the center stops"
			                       : "; restarting it");
		else
			log_warnx("vigild: %s %d (pid %ld) exited (status "
			          "%d)%s",
			          gp->what, i, (long)pid, WEXITSTATUS(status),
			          gp->draining ? " while the center stops"
			                       : "; restarting it");
		if (!gp->draining)
			metrics_add(gp->restarts, NULL, 1);
		for (k = GWRELAY_ST_TLS_FULL; k < GWRELAY_NSTATS; k++)
			gp->retired[k] += s->stats[k];
		memset(s->stats, 0, sizeof(s->stats));
		/* The syslog worker's last batches, sent before it died, are
		 * stored: its channel is read to its end first. */
		if (gp->syslog)
			gwp_take_rest(s);
		gwp_channel_close(s);
		/* Its clients are gone, and so are their streams. */
		if (gp->srv != NULL)
			http_server_relay_gone_all(gp->srv, s);
		s->pid = 0;
		if (!gp->draining)
			gwp_spawn_later(s);
		return 1;
	}
	return 0;
}

int
gwproc_reaped(struct center *c, pid_t pid, int status)
{
	return gwp_reaped(c->gwp, pid, status) ||
	       gwp_reaped(c->admp, pid, status) ||
	       gwp_reaped(c->slp, pid, status);
}

/* The program the workers run: this one. 0, or -1 with err set. */
static int
gwp_exe(struct gwproc *gp, struct buf *err)
{
	ssize_t len;

	if ((len = readlink("/proc/self/exe", gp->exe, sizeof(gp->exe) - 1)) <=
	    0) {
		buf_printf(err, "%ss: /proc/self/exe: %s", gp->what,
		           strerror(errno));
		return -1;
	}
	gp->exe[len] = '\0';
	return 0;
}

/* The pool's n slots, their buffers and the end-of-turn flush. */
static void
gwp_slots_init(struct gwproc *gp)
{
	int i;

	for (i = 0; i < gp->n; i++) {
		gp->slot[i].gp = gp;
		gp->slot[i].idx = i;
		gp->slot[i].fd = -1;
		buf_init(&gp->slot[i].payload, gp->max_msg);
		if ((gp->slot[i].in = evbuffer_new()) == NULL ||
		    (gp->slot[i].out = evbuffer_new()) == NULL)
			fatalx("%s: out of memory", __func__);
	}
	if ((gp->ev_flush = event_new(gp->c->base, -1, 0, gwp_flush_cb, gp)) ==
	    NULL)
		fatalx("%s: event_new", __func__);
}

/* A pool of n workers for srv's listener; its routes answer in the core. */
static struct gwproc *
gwp_pool_start(struct center *c, struct http_server *srv, int n, int admin,
               long long max_body, struct buf *err)
{
	struct gwproc *gp;
	const char *what = admin ? "admin worker" : "gateway worker";

	if ((gp = calloc(1, sizeof(*gp))) == NULL) {
		buf_printf(err, "%ss: out of memory", what);
		return NULL;
	}
	gp->c = c;
	gp->srv = srv;
	gp->admin = admin;
	gp->what = what;
	gp->restarts = admin ? "vigil_admin_worker_restarts_total"
	                     : "vigil_gateway_worker_restarts_total";
	gp->n = n;
	gp->lfd = -1;
	if (!admin) {
		gp->nbuckets = GWP_CERT_BUCKETS;
		if ((gp->certs = calloc(gp->nbuckets, sizeof(*gp->certs))) ==
		    NULL) {
			buf_printf(err, "%ss: out of memory", what);
			goto fail;
		}
	}
	/* A body up to the listener's max_body (for the gateway an
	 * inventory may be up to 4 MiB), plus the request's headers and
	 * certificate. */
	gp->max_msg = (size_t)max_body;
	if (gp->max_msg < (4u << 20))
		gp->max_msg = 4u << 20;
	gp->max_msg += 256u << 10;
	if (gwp_exe(gp, err) == -1)
		goto fail;
	/* Relayed client certificates are checked against the CA (the
	 * gateway's; the admin listener takes none). */
	if (!admin && gwp_ca_load(gp, err) == -1)
		goto fail;
	if (c->store == NULL)
		fatalx("%s: the store must be open first", __func__);
	if ((gp->lfd = http_server_listen_fd(srv)) == -1) {
		buf_printf(err, "%ss: no listening socket", what);
		goto fail;
	}
	/* From here on the workers accept; the core answers. */
	http_server_stop_listening(srv);
	gwp_slots_init(gp);
	return gp;
fail:
	X509_STORE_free(gp->ca_store);
	free(gp->certs);
	free(gp);
	return NULL;
}

static int
gwp_pool_spawn(struct gwproc *gp, struct buf *err)
{
	int i;

	for (i = 0; i < gp->n; i++)
		if (gwp_spawn(&gp->slot[i]) == -1) {
			buf_printf(err, "%s %d could not start", gp->what, i);
			return -1;
		}
	return 0;
}

int
gwproc_start(struct center *c, struct buf *err)
{
	if (c->conf.gw_workers <= 0)
		return 0;
	if ((c->gwp = gwp_pool_start(c, c->gw, (int)c->conf.gw_workers, 0,
	                             c->conf.gw_max_body, err)) == NULL ||
	    gwp_pool_spawn(c->gwp, err) == -1)
		return -1;
	if ((c->gwp->ev_tickets =
	         evtimer_new(c->base, gwp_tickets_cb, c->gwp)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	gwp_tickets_cb(-1, 0, c->gwp);
	log_info("vigild: %d gateway workers accept agent connections",
	         c->gwp->n);
	return 0;
}

int
gwproc_admin_start(struct center *c, struct buf *err)
{
	if (!c->conf.adm_worker)
		return 0;
	if ((c->admp = gwp_pool_start(c, c->adm, 1, 1, c->conf.adm_max_body,
	                              err)) == NULL ||
	    gwp_pool_spawn(c->admp, err) == -1)
		return -1;
	log_info("vigild: the admin worker accepts admin API connections");
	return 0;
}

int
gwproc_syslog_start(struct center *c, struct buf *err)
{
	struct gwproc *gp;
	int udp, tcp;

	syslogin_fds(c, &udp, &tcp);
	if (!c->conf.sl_enable || !c->conf.sl_worker || udp == -1 || tcp == -1)
		return 0;
	if ((gp = calloc(1, sizeof(*gp))) == NULL) {
		buf_printf(err, "syslog worker: out of memory");
		return -1;
	}
	gp->c = c;
	gp->syslog = 1;
	gp->what = "syslog worker";
	gp->restarts = "vigil_syslog_worker_restarts_total";
	gp->n = 1;
	gp->lfd = -1;
	gp->max_msg = GWRELAY_MAX_SL_MSG;
	if (gwp_exe(gp, err) == -1) {
		free(gp);
		return -1;
	}
	gwp_slots_init(gp);
	c->slp = gp;
	if (gwp_pool_spawn(gp, err) == -1)
		return -1;
	log_info("vigild: the syslog worker receives syslog messages");
	return 0;
}

static void
gwp_reload(struct gwproc *gp)
{
	struct buf err;
	int i;

	if (gp == NULL || gp->syslog) /* no TLS there */
		return;
	buf_init(&err, 1024);
	/* The core checks relayed certificates against the same CA. */
	if (!gp->admin && gwp_ca_load(gp, &err) == -1)
		log_warnx("vigild: %s; keeping the old one", buf_cstr(&err));
	buf_free(&err);
	for (i = 0; i < gp->n; i++)
		if (gp->slot[i].fd != -1)
			(void)gwp_write(&gp->slot[i], GWRELAY_TLS_RELOAD, 0,
			                NULL, 0, -1);
	/* The new context's keys (session_tickets may have changed): the
	 * gateway workers' new contexts take them. */
	if (!gp->admin)
		gwp_push_tickets(gp, NULL);
}

static void
gwp_drain(struct gwproc *gp)
{
	int i;

	if (gp == NULL)
		return;
	for (i = 0; i < gp->n; i++)
		if (gp->slot[i].fd != -1)
			(void)gwp_write(&gp->slot[i], GWRELAY_DRAIN, 0, NULL, 0,
			                -1);
	/* The workers close their listening sockets as they drain; the
	 * core's copies (kept for restarted workers) go now, so that the
	 * kernel refuses new connections at once instead of queueing them
	 * for workers that will never accept them (a client then waited
	 * for its TLS handshake until the center had exited). */
	gp->draining = 1;
	if (gp->lfd != -1)
		close(gp->lfd);
	gp->lfd = -1;
	if (!gp->admin && !gp->syslog) {
		for (i = 0; i < gp->c->gw_nlfd; i++)
			close(gp->c->gw_lfd[i]);
		gp->c->gw_nlfd = 0;
	}
}

void
gwproc_drain(struct center *c)
{
	gwp_drain(c->gwp);
	gwp_drain(c->admp);
	gwp_drain(c->slp);
}

void
gwproc_reload(struct center *c)
{
	gwp_reload(c->gwp);
	gwp_reload(c->admp);
}

/* The syslog worker exits on GWRELAY_DRAIN: what it sent before is
 * stored, read until its channel ends (within 2 s), rather than dropped
 * with the channel. */
static void
gwp_take_rest(struct gwslot *s)
{
	double end = mono_now() + 2, left;
	struct pollfd pfd;

	while (s->fd != -1 && (left = end - mono_now()) > 0) {
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			break;
		gwp_read_cb(s->fd, EV_READ, s);
	}
}

static void
gwp_stop(struct gwproc *gp)
{
	struct gwslot *s;
	int i, tries, st;

	if (gp == NULL)
		return;
	if (gp->syslog && gp->draining) /* it exits on GWRELAY_DRAIN */
		gwp_take_rest(&gp->slot[0]);
	for (i = 0; i < gp->n; i++) {
		s = &gp->slot[i];
		(void)gwp_flush(s);   /* the replies of the last turn */
		gwp_channel_close(s); /* EOF: the worker exits */
		if (s->ev_restart != NULL)
			event_free(s->ev_restart);
		s->ev_restart = NULL;
	}
	/* All of them at once, within 1 s in all (not 1 s each): SIGTERM
	 * after 0.4 s, SIGKILL to those left after 1 s. */
	for (tries = 0; tries < 50; tries++) {
		int left = 0;

		for (i = 0; i < gp->n; i++) {
			s = &gp->slot[i];
			if (s->pid <= 0)
				continue;
			if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
				s->pid = 0;
				continue;
			}
			if (tries == 20)
				kill(s->pid, SIGTERM);
			left++;
		}
		if (left == 0)
			break;
		usleep(20000);
	}
	for (i = 0; i < gp->n; i++) {
		s = &gp->slot[i];
		if (s->pid <= 0)
			continue;
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &st, 0);
		s->pid = 0;
	}
	for (i = 0; i < gp->n; i++) {
		if (gp->srv != NULL)
			http_server_relay_gone_all(gp->srv, &gp->slot[i]);
		buf_free(&gp->slot[i].payload);
		if (gp->slot[i].in != NULL)
			evbuffer_free(gp->slot[i].in);
		if (gp->slot[i].out != NULL)
			evbuffer_free(gp->slot[i].out);
	}
	if (gp->ev_flush != NULL)
		event_free(gp->ev_flush);
	if (gp->lfd != -1)
		close(gp->lfd);
	if (!gp->admin && !gp->syslog) {
		for (i = 0; i < gp->c->gw_nlfd; i++)
			close(gp->c->gw_lfd[i]);
		gp->c->gw_nlfd = 0;
	}
	if (gp->ev_tickets != NULL)
		event_free(gp->ev_tickets);
	gwp_certs_clear(gp);
	X509_STORE_free(gp->ca_store);
	free(gp->certs);
	free(gp);
}

void
gwproc_stop(struct center *c)
{
	gwp_stop(c->gwp);
	c->gwp = NULL;
	gwp_stop(c->admp);
	c->admp = NULL;
	gwp_stop(c->slp);
	c->slp = NULL;
}

int
gwproc_running(const struct center *c)
{
	return c->gwp != NULL;
}

static long long
gwp_conns(const struct gwproc *gp)
{
	long long n = 0;
	int i;

	if (gp == NULL)
		return 0;
	for (i = 0; i < gp->n; i++)
		n += (long long)gp->slot[i].stats[GWRELAY_ST_CONNS];
	return n;
}

long long
gwproc_conns(const struct center *c)
{
	return gwp_conns(c->gwp);
}

long long
gwproc_admin_conns(const struct center *c)
{
	return gwp_conns(c->admp);
}

static unsigned long
gwp_sum(const struct gwproc *gp, int k)
{
	unsigned long n;
	int i;

	if (gp == NULL)
		return 0;
	n = (unsigned long)gp->retired[k];
	for (i = 0; i < gp->n; i++)
		n += (unsigned long)gp->slot[i].stats[k];
	return n;
}

unsigned long
gwproc_tls(const struct center *c, int resumed)
{
	return gwp_sum(c->gwp,
	               resumed ? GWRELAY_ST_TLS_RESUMED : GWRELAY_ST_TLS_FULL);
}

unsigned long
gwproc_closed(const struct center *c, int why)
{
	if (why < 0 || why >= 5)
		return 0;
	return gwp_sum(c->gwp, GWRELAY_ST_CLOSED0 + why);
}

unsigned long
gwproc_admin_closed(const struct center *c, int why)
{
	if (why < 0 || why >= 5)
		return 0;
	return gwp_sum(c->admp, GWRELAY_ST_CLOSED0 + why);
}
