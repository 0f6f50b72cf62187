/*
 * Tests of the core's side of the gateway workers (src/center/gwproc.c)
 * against a worker that is compromised: it relays requests of its own
 * making over a real socketpair, and the core answers them through a real
 * http_server route table and a real SQLite store. A worker parses TLS
 * from the network; the core must not take its word for an agent's
 * identity: a relayed client certificate that the deployment's CA did not
 * sign (a forged one naming another agent, with the serial of a real,
 * active certificate so the store's revocation check passes) or one of a
 * role the gateway does not accept is refused, and the handler never runs
 * for it; a worker that reads its channel a little at a time is stopped
 * rather than allowed to hold the core's event loop.
 *
 * The admin worker's streaming replies: a stream a handler starts on a
 * relayed request goes to the worker as STREAM_START (its headers and
 * queue bound), CHUNK and END under the request's id; the worker's GONE
 * ends it in the core (on_closed, or the next send failing when the
 * client did not read), and a dead worker's streams end with it. A
 * gateway worker's channel carries none (501).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

/* Every certificate the core parses goes through here (counted), and
 * every chain it verifies. */
static int d2i_calls, verify_calls;
static X509 *counted_d2i_X509(X509 **a, const unsigned char **pp, long len);
static int counted_X509_verify_cert(X509_STORE_CTX *ctx);
#define d2i_X509         counted_d2i_X509
#define X509_verify_cert counted_X509_verify_cert

#include "../../../src/center/db.c"
#include "../../../src/center/gwproc.c"
#include "pki.h"

#undef d2i_X509
#undef X509_verify_cert
static X509 *
counted_d2i_X509(X509 **a, const unsigned char **pp, long len)
{
	d2i_calls++;
	return d2i_X509(a, pp, len);
}

static int
counted_X509_verify_cert(X509_STORE_CTX *ctx)
{
	verify_calls++;
	return X509_verify_cert(ctx);
}

/* node.c: the tests run on SQLite, one node that holds every lease. */
const char *
node_name(const struct center *c)
{
	(void)c;
	return "test";
}

int
node_lease(struct center *c, const char *name)
{
	(void)c;
	(void)name;
	return 1;
}

void
node_release(struct center *c, const char *name)
{
	(void)c;
	(void)name;
}

/* sampleshare.c: none here. */
int
sample_local(struct center *c, const char *sha, char *path, size_t pathlen,
             struct buf *err)
{
	(void)c;
	(void)sha;
	(void)path;
	(void)pathlen;
	buf_puts(err, "no samples in this test");
	return -1;
}

/* syslogin.c: no syslog listener here. */
void
syslogin_fds(const struct center *c, int *udp, int *tcp)
{
	(void)c;
	*udp = *tcp = -1;
}

/* The batches the core took from a syslog worker (test_syslog_rest). */
static int sl_batches;

int
syslogin_relayed(struct center *c, const uint8_t *p, size_t len)
{
	(void)c;
	sl_batches++;
	return len == 3 && memcmp(p, "abc", 3) == 0 ? 0 : -1;
}

/* The route the relayed requests reach: answers with the agent the
 * certificate names, as the gateway's handlers take it. */
static int handler_ran;

static void
whoami(struct http_req *r)
{
	char *cn = tls_subject_cn(r->peer);

	handler_ran++;
	http_reply_text(r, 200, "text/plain", cn != NULL ? cn : "-",
	                cn != NULL ? strlen(cn) : 1);
	free(cn);
}

/* A route that streams its reply (as stream.c's GET /api/v1/stream). */
static struct http_stream *g_st;
static int g_closed;

static void
stream_closed(struct http_stream *st, void *arg)
{
	(void)arg;
	assert_ptr_equal(st, g_st);
	g_st = NULL;
	g_closed++;
}

static void
streamer(struct http_req *r)
{
	http_set_header(r, "X-Accel-Buffering", "no");
	g_st = http_req_stream_start(r, 200, "text/event-stream", 4096,
	                             stream_closed, NULL);
}

static const struct http_route routes[] = {
    {"GET", "/v1/whoami", whoami, HTTP_ROUTE_CERT, "whoami", 0, 0},
    {"GET", "/v1/stream", streamer, 0, "stream", 0, 0},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

struct fx {
	char dir[64], db[128], ca_path[160];
	struct center c;
	struct gwproc *gp;
	struct gwslot *s;
	int peer; /* the worker's end */
	EVP_PKEY *cakey, *otherkey, *agentkey;
	X509 *ca, *other;
};

static void
write_pem(const char *path, X509 *x)
{
	struct buf pem, err;

	buf_init(&pem, 16384);
	buf_init(&err, 1024);
	assert_int_equal(tls_cert_to_pem(x, &pem), 0);
	assert_int_equal(tls_write_file(path, pem.data, pem.len, 0644, &err),
	                 0);
	buf_free(&pem);
	buf_free(&err);
}

/* A certificate for cn signed by (ca, key), as enrollment issues them. */
static X509 *
issue(struct fx *f, X509 *ca, EVP_PKEY *key, const char *cn)
{
	X509_REQ *csr = pki_make_csr(f->agentkey, cn);
	struct buf err;
	X509 *x;

	buf_init(&err, 1024);
	assert_non_null(csr);
	x = pki_sign_client(ca, key, csr, cn, 86400, &err);
	if (x == NULL)
		fail_msg("pki_sign_client: %s", buf_cstr(&err));
	X509_REQ_free(csr);
	buf_free(&err);
	return x;
}

static void
record(struct fx *f, const char *agent, X509 *x)
{
	char *serial = tls_serial_hex(x);

	assert_non_null(serial);
	assert_int_equal(store_exec(f->c.store,
	                            "INSERT INTO agents (id, hostname, status, "
	                            "labels, enrolled_at) VALUES (?, 'h', "
	                            "'active', '{}', 1)",
	                            S_TEXT(agent)),
	                 1);
	assert_int_equal(store_exec(f->c.store,
	                            "INSERT INTO certs (serial, agent_id, "
	                            "not_after, issued_at) VALUES (?, ?, "
	                            "9999999999, 1)",
	                            S_TEXT(serial), S_TEXT(agent)),
	                 1);
	free(serial);
}

/* As record, with the certificate's digest on record as db_add_cert
 * writes it for the certificates it issues. */
static void
record_issued(struct fx *f, const char *agent, X509 *x)
{
	char *serial = tls_serial_hex(x), digest[65];

	record(f, agent, x);
	tls_fingerprint(x, digest);
	assert_int_equal(store_exec(f->c.store,
	                            "UPDATE certs SET der_sha256 = ? WHERE "
	                            "serial = ?",
	                            S_TEXT(digest), S_TEXT(serial)),
	                 1);
	free(serial);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct http_limits lim;
	struct buf err;
	int sp[2];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-test-gwproc.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/vigil.db", f->dir);
	snprintf(f->ca_path, sizeof(f->ca_path), "%s/ca.crt", f->dir);
	buf_init(&err, 1024);
	assert_non_null(f->cakey = pki_genkey());
	assert_non_null(f->ca = pki_make_ca(f->cakey, "Test CA", 3650));
	/* Another CA of the same name: what a forger would make. */
	assert_non_null(f->otherkey = pki_genkey());
	assert_non_null(f->other = pki_make_ca(f->otherkey, "Test CA", 3650));
	assert_non_null(f->agentkey = pki_genkey());
	write_pem(f->ca_path, f->ca);
	snprintf(f->c.paths.ca_crt, sizeof(f->c.paths.ca_crt), "%s",
	         f->ca_path);
	f->c.store =
	    store_open(f->db, center_migrations, center_nmigrations, &err);
	if (f->c.store == NULL)
		fail_msg("store_open: %s", buf_cstr(&err));
	assert_non_null(f->c.base = event_base_new());
	memset(&lim, 0, sizeof(lim));
	lim.max_body = 1 << 20;
	assert_non_null(f->c.gw = http_server_new(f->c.base, NULL, routes,
	                                          &f->c, &lim, NULL));
	/* The parts of gwproc_start a relayed request uses. */
	assert_non_null(f->gp = calloc(1, sizeof(*f->gp)));
	f->gp->nbuckets = GWP_CERT_BUCKETS;
	assert_non_null(f->gp->certs =
	                    calloc(f->gp->nbuckets, sizeof(*f->gp->certs)));
	f->gp->c = &f->c;
	f->gp->srv = f->c.gw;
	f->gp->what = "gateway worker";
	f->gp->restarts = "vigil_gateway_worker_restarts_total";
	f->gp->n = 1;
	f->gp->max_msg = 4u << 20;
	f->c.gwp = f->gp;
	assert_int_equal(gwp_ca_load(f->gp, &err), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	f->s = &f->gp->slot[0];
	f->s->gp = f->gp;
	f->s->fd = sp[0];
	f->s->gen = 1;
	f->s->pid = -1; /* no process to kill */
	buf_init(&f->s->payload, f->gp->max_msg);
	f->peer = sp[1];
	buf_free(&err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->s->fd != -1)
		close(f->s->fd);
	close(f->peer);
	buf_free(&f->s->payload);
	gwp_certs_clear(f->gp);
	X509_STORE_free(f->gp->ca_store);
	free(f->gp->certs);
	free(f->gp);
	http_server_free(f->c.gw);
	event_base_free(f->c.base);
	store_close(f->c.store);
	unlink(f->db);
	unlink(f->ca_path);
	rmdir(f->dir);
	X509_free(f->ca);
	X509_free(f->other);
	EVP_PKEY_free(f->cakey);
	EVP_PKEY_free(f->otherkey);
	EVP_PKEY_free(f->agentkey);
	free(f);
	return 0;
}

/*
 * The worker relays GET /v1/whoami with cert x; returns the core's
 * gwp_on_request result, the reply's status in *status (0 when none came)
 * and its body in body.
 */
static int
relay(struct fx *f, X509 *x, int *status, char *body, size_t n)
{
	struct proc_hdr hdr;
	struct gwrelay_reply rp;
	struct buf reply;
	unsigned char *der = NULL;
	const char *why;
	int dlen = 0, rc;

	if (x != NULL)
		assert_true((dlen = i2d_X509(x, &der)) > 0);
	buf_reset(&f->s->payload);
	gwrelay_put_str(&f->s->payload, "GET", 3);
	gwrelay_put_str(&f->s->payload, "/v1/whoami", 10);
	gwrelay_put_str(&f->s->payload, "192.0.2.1", 9);
	gwrelay_put_str(&f->s->payload, der, (size_t)dlen);
	gwrelay_put_u32(&f->s->payload, 0);
	gwrelay_put_str(&f->s->payload, "", 0);
	OPENSSL_free(der);
	assert_int_equal(buf_ok(&f->s->payload), 0);
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = GWRELAY_REQ;
	hdr.id = 7;
	hdr.len = (uint32_t)f->s->payload.len;
	rc = gwp_on_request(f->s, &hdr);
	*status = 0;
	body[0] = '\0';
	/* Whatever the core sent back is already in the socket. */
	if (f->s->fd != -1) {
		struct timeval tv = {0, 200000};

		setsockopt(f->peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	buf_init(&reply, 1 << 20);
	/* Before it, the core may tell the worker of a revoked serial. */
	while (proc_recv(f->peer, &hdr, &reply, 1 << 20) == 0) {
		if (hdr.type == GWRELAY_REVOKED)
			continue;
		assert_int_equal(hdr.type, GWRELAY_REPLY);
		assert_int_equal(hdr.id, 7);
		assert_int_equal(
		    gwrelay_reply_decode(reply.data, reply.len, &rp, &why), 0);
		*status = (int)rp.status;
		snprintf(body, n, "%.*s", (int)rp.body.len, rp.body.p);
		break;
	}
	buf_free(&reply);
	return rc;
}

static void
test_genuine(void **state)
{
	struct fx *f = *state;
	X509 *a = issue(f, f->ca, f->cakey, "agent-a");
	char body[1024];
	int status;

	record(f, "agent-a", a);
	handler_ran = 0;
	assert_int_equal(relay(f, a, &status, body, sizeof(body)), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, "agent-a");
	/* Again, from the core's cache of parsed certificates. */
	assert_int_equal(relay(f, a, &status, body, sizeof(body)), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, "agent-a");
	assert_int_equal(handler_ran, 2);
	X509_free(a);
}

/* The hash the core's cache of certificates takes (FNV-1a of the DER). */
static uint64_t
der_hash(X509 *x)
{
	unsigned char *der = NULL;
	uint64_t h = 1469598103934665603ull;
	int i, n = i2d_X509(x, &der);

	assert_true(n > 0);
	for (i = 0; i < n; i++)
		h = (h ^ der[i]) * 1099511628211ull;
	OPENSSL_free(der);
	return h;
}

/*
 * Two agents whose certificates fall in the same slot of a table of
 * 65,536 (what the cache was: with 55,000 agents most of them shared a
 * slot and evicted each other, and the core parsed and verified their
 * certificates on every request). Each certificate is parsed once, however
 * the two agents' requests alternate.
 */
static void
test_cache_keeps_colliding(void **state)
{
	struct fx *f = *state;
	static int seen[65536]; /* slot -> 1 + index in all */
	static X509 *all[5000];
	X509 *x[2] = {NULL, NULL};
	char cn[32], body[1024];
	int i, k, n, status;

	memset(seen, 0, sizeof(seen));
	for (n = 0; n < 5000 && x[1] == NULL; n++) {
		snprintf(cn, sizeof(cn), "agent-%d", n);
		all[n] = issue(f, f->ca, f->cakey, cn);
		k = (int)(der_hash(all[n]) % 65536);
		if (seen[k] != 0) {
			x[0] = all[seen[k] - 1];
			x[1] = all[n];
		}
		seen[k] = n + 1;
	}
	assert_non_null(x[1]);
	for (k = 0; k < 2; k++) {
		char *agent = tls_subject_cn(x[k]);

		record(f, agent, x[k]);
		free(agent);
	}
	d2i_calls = 0;
	for (i = 0; i < 6; i++) {
		assert_int_equal(
		    relay(f, x[i % 2], &status, body, sizeof(body)), 0);
		assert_int_equal(status, 200);
	}
	assert_int_equal(d2i_calls, 2);
	for (i = 0; i < n; i++)
		X509_free(all[i]);
}

/*
 * A certificate this deployment issued (its digest on record) is taken
 * without parsing it or verifying its chain again: the handler reads the
 * agent from the record's identity. One issued before digests were kept
 * is parsed and verified, as before. A revoked one on record is refused.
 */
static void
test_issued_not_verified_again(void **state)
{
	struct fx *f = *state;
	X509 *a = issue(f, f->ca, f->cakey, "agent-a");
	X509 *b = issue(f, f->ca, f->cakey, "agent-b");
	X509 *c = issue(f, f->ca, f->cakey, "agent-c");
	char body[1024], *serial;
	int status;

	record_issued(f, "agent-a", a);
	record(f, "agent-b", b); /* no digest on record */
	record_issued(f, "agent-c", c);
	serial = tls_serial_hex(c);
	assert_int_equal(store_exec(f->c.store,
	                            "UPDATE certs SET revoked_at = 1 WHERE "
	                            "serial = ?",
	                            S_TEXT(serial)),
	                 1);
	free(serial);
	verify_calls = d2i_calls = 0;
	assert_int_equal(relay(f, a, &status, body, sizeof(body)), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, "agent-a");
	assert_int_equal(verify_calls, 0);
	assert_int_equal(d2i_calls, 0);
	assert_int_equal(relay(f, b, &status, body, sizeof(body)), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, "agent-b");
	assert_int_equal(verify_calls, 1);
	assert_int_equal(d2i_calls, 1);
	handler_ran = 0;
	relay(f, c, &status, body, sizeof(body));
	assert_int_equal(handler_ran, 0);
	assert_int_equal(status, 401);
	assert_non_null(strstr(body, "cert_revoked"));
	assert_int_equal(d2i_calls, 1);
	X509_free(a);
	X509_free(b);
	X509_free(c);
}

static void
test_forged(void **state)
{
	struct fx *f = *state;
	X509 *a = issue(f, f->ca, f->cakey, "agent-a");
	X509 *forged = issue(f, f->other, f->otherkey, "agent-b");
	char body[1024];
	int status;

	/* agent-a's digest is on record: the forged certificate has its
	 * serial, not its bytes. */
	record_issued(f, "agent-a", a);
	/* agent-b exists too, with a certificate the worker never saw. */
	{
		X509 *b = issue(f, f->ca, f->cakey, "agent-b");

		record(f, "agent-b", b);
		X509_free(b);
	}
	/* The forged certificate for agent-b carries agent-a's serial (a
	 * real, active one) and is signed by another key. */
	assert_int_equal(
	    X509_set_serialNumber(forged, X509_get_serialNumber(a)), 1);
	assert_true(X509_sign(forged, f->otherkey, EVP_sha256()) > 0);
	handler_ran = 0;
	relay(f, forged, &status, body, sizeof(body));
	if (handler_ran != 0 || status == 200)
		fail_msg("a forged certificate was taken for agent-b: %d %s",
		         status, body);
	assert_int_equal(status, 401);
	assert_non_null(strstr(body, "bad_certificate"));
	/* The genuine one still passes. */
	assert_int_equal(relay(f, a, &status, body, sizeof(body)), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, "agent-a");
	X509_free(a);
	X509_free(forged);
}

static void
test_wrong_role(void **state)
{
	struct fx *f = *state;
	const char *sans[] = {"127.0.0.1"};
	EVP_PKEY *k = pki_genkey();
	X509 *x;
	char body[1024];
	int status;

	assert_non_null(k);
	/* Signed by the CA, but a master's certificate: the workers'
	 * handshake refuses it, so a relayed one is a forgery. */
	assert_non_null(x = pki_issue_role(f->ca, f->cakey, k, PKI_ROLE_MASTER,
	                                   PKI_USE_CLIENT, "agent-c", sans, 1,
	                                   30));
	record(f, "agent-c", x);
	handler_ran = 0;
	relay(f, x, &status, body, sizeof(body));
	assert_int_equal(handler_ran, 0);
	assert_int_equal(status, 401);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* A worker that reads its channel a little at a time. */
static volatile int reader_stop;

static void *
slow_reader(void *arg)
{
	struct fx *f = arg;
	char b[256];

	while (!reader_stop && read(f->peer, b, sizeof(b)) > 0)
		usleep(100000);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Each wait of the core's blocking write used to be bounded (the send
 * timeout), not the whole: a worker reading a little at a time held the
 * core's event loop as long as it liked. Now it is stopped once it has
 * cost the core more than its budget.
 */
static void
test_slow_reader(void **state)
{
	struct fx *f = *state;
	struct timeval tv = {GWP_SNDTIMEO, 0};
	struct evkeyvalq hdrs;
	struct evbuffer *body = evbuffer_new();
	char chunk[4000];
	pthread_t th;
	double t0 = now_s();
	int sndbuf = 8192, sent = 0;

	/* As gwp_spawn sets it, with a small buffer. */
	setsockopt(f->s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(f->s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	memset(chunk, 'x', sizeof(chunk));
	hdrs.tqh_first = NULL;
	hdrs.tqh_last = &hdrs.tqh_first;
	assert_non_null(body);
	reader_stop = 0;
	assert_int_equal(pthread_create(&th, NULL, slow_reader, f), 0);
	while (f->s->fd != -1 && now_s() - t0 < 30) {
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add(body, chunk, sizeof(chunk));
		gwp_send(f->s, (uint64_t)f->s->gen << 32 | 7, 200, &hdrs, body,
		         -1, 0);
		sent++;
	}
	reader_stop = 1;
	if (f->s->fd != -1)
		fail_msg("a worker reading slowly held the core for %.0f s "
		         "(%d replies) and was not stopped",
		         now_s() - t0, sent);
	pthread_join(th, NULL);
	evbuffer_free(body);
}

static atomic_int queue_read;
static int queue_bad;

/* The worker's side: reads 512 replies, checking their order. */
static void *
queue_reader(void *arg)
{
	struct fx *f = arg;
	struct proc_hdr hdr;
	struct buf got;

	buf_init(&got, 1 << 20);
	while (atomic_load(&queue_read) < 512 &&
	       proc_recv(f->peer, &hdr, &got, 1 << 20) == 0) {
		if (hdr.type != GWRELAY_REPLY ||
		    hdr.id != (uint64_t)atomic_load(&queue_read))
			queue_bad++;
		atomic_fetch_add(&queue_read, 1);
	}
	buf_free(&got);
	return NULL;
}

/* The core's queue for the worker, as gwproc_start sets it up, over a
 * channel of a small buffer; queue_off takes it down. */
static void
queue_on(struct fx *f)
{
	int sndbuf = 8192;

	assert_non_null(f->s->out = evbuffer_new());
	assert_non_null(f->gp->ev_flush =
	                    event_new(f->c.base, -1, 0, gwp_flush_cb, f->gp));
	assert_non_null(f->s->ev_write = event_new(
	                    f->c.base, f->s->fd, EV_WRITE, gwp_write_cb, f->s));
	setsockopt(f->s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static void
queue_off(struct fx *f)
{
	evbuffer_free(f->s->out);
	f->s->out = NULL;
	event_free(f->gp->ev_flush);
	f->gp->ev_flush = NULL;
}

/* n replies of 4,000 bytes to the worker, ids 0 to n - 1. */
static void
send_chunks(struct fx *f, int n)
{
	struct evkeyvalq hdrs;
	struct evbuffer *body = evbuffer_new();
	char chunk[4000];
	int i;

	assert_non_null(body);
	memset(chunk, 'x', sizeof(chunk));
	hdrs.tqh_first = NULL;
	hdrs.tqh_last = &hdrs.tqh_first;
	for (i = 0; i < n; i++) {
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add(body, chunk, sizeof(chunk));
		gwp_send(f->s, (uint64_t)f->s->gen << 32 | (uint64_t)i, 200,
		         &hdrs, body, -1, 0);
	}
	evbuffer_free(body);
}

/* Turns of the core's loop (10 ms each, 1,000 at most) until the worker's
 * reader has read want messages; the worker is never stopped meanwhile. */
static void
loop_until_read(struct fx *f, atomic_int *read, int want)
{
	int i;

	for (i = 0; i < 1000 && atomic_load(read) < want; i++) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(f->c.base, &tv);
		assert_int_equal(event_base_loop(f->c.base, 0), 0);
		assert_int_not_equal(f->s->fd, -1);
	}
}

/*
 * With the core's queue (as gwproc_start sets it up), replies to a worker
 * that does not read are kept and written once it reads: the core does
 * not wait for it (it waited up to 5 s a write, one worker at a time,
 * while the others waited for their replies), and a worker that takes
 * nothing for GWP_SNDTIMEO is stopped by the loop.
 */
static void
test_queue_does_not_wait(void **state)
{
	struct fx *f = *state;
	pthread_t th;
	int i;

	queue_on(f);
	/* 2 MiB of replies, far more than the channel holds, the worker
	 * reading none of them. */
	send_chunks(f, 512);
	assert_int_not_equal(f->s->fd, -1);
	assert_true(evbuffer_get_length(f->s->out) > 0);
	/* The end of the turn writes what fits, and the rest as the worker
	 * reads: every reply arrives, whole and in order. */
	queue_read = 0;
	queue_bad = 0;
	assert_int_equal(pthread_create(&th, NULL, queue_reader, f), 0);
	loop_until_read(f, &queue_read, 512);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&queue_read), 512);
	assert_int_equal(queue_bad, 0);
	assert_int_equal(evbuffer_get_length(f->s->out), 0);
	/* Now the worker stops reading: stopped after GWP_SNDTIMEO. */
	send_chunks(f, 512);
	for (i = 0; i < 4 * GWP_SNDTIMEO && f->s->fd != -1; i++) {
		struct timeval tv = {0, 500000};

		event_base_loopexit(f->c.base, &tv);
		assert_int_equal(event_base_loop(f->c.base, 0), 0);
	}
	assert_int_equal(f->s->fd, -1);
	queue_off(f);
}

/* The worker's side of test_file_reply_does_not_wait: reads every
 * message with the descriptor that rides along, if any. */
static atomic_int fq_read;
static int fq_bad, fq_fds, fq_file_at = -1;
static ino_t fq_ino;

static void *
fq_reader(void *arg)
{
	struct fx *f = arg;
	struct proc_hdr hdr;
	struct buf got;
	struct stat st;
	int fd;

	buf_init(&got, 1 << 20);
	while (atomic_load(&fq_read) < 1025 &&
	       proc_recv_fd(f->peer, &hdr, &got, 1 << 20, &fd) == 0) {
		if (hdr.id != (uint64_t)atomic_load(&fq_read))
			fq_bad++;
		if (fd != -1) {
			fq_fds++;
			if (hdr.type != GWRELAY_REPLY_FILE ||
			    fstat(fd, &st) == -1 || st.st_ino != fq_ino)
				fq_bad++;
			fq_file_at = (int)hdr.id;
			close(fd);
		} else if (hdr.type != GWRELAY_REPLY)
			fq_bad++;
		atomic_fetch_add(&fq_read, 1);
	}
	buf_free(&got);
	return NULL;
}

static int
open_fds(void)
{
	char path[64];
	int fd, n = 0;

	for (fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (access(path, F_OK) == 0)
			n++;
	}
	return n;
}

/*
 * A reply that carries a descriptor (an update artifact, a sample) to a
 * worker whose queue the channel does not take yet is queued with the
 * others, its descriptor with it: the core does not wait for the worker
 * to read the whole queue first (it did, up to GWP_SNDTIMEO, and stopped
 * a worker that read nothing meanwhile). The descriptor arrives with its
 * own message, in order; one that never goes out (the worker stopped) is
 * closed.
 */
static void
test_file_reply_does_not_wait(void **state)
{
	struct fx *f = *state;
	struct evkeyvalq hdrs;
	struct evbuffer *body = evbuffer_new();
	char chunk[4000], file[PATH_MAX];
	struct stat st;
	pthread_t th;
	int i, fd, before;

	assert_non_null(body);
	queue_on(f);
	snprintf(file, sizeof(file), "%s/artifact", f->dir);
	fd = open(file, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(fstat(fd, &st), 0);
	fq_ino = st.st_ino;
	memset(chunk, 'x', sizeof(chunk));
	hdrs.tqh_first = NULL;
	hdrs.tqh_last = &hdrs.tqh_first;
	before = open_fds();
	/* 2 MiB of replies the worker reads none of, a file reply, and
	 * 512 more. */
	for (i = 0; i < 1025; i++) {
		int dfd = -1;

		evbuffer_drain(body, evbuffer_get_length(body));
		if (i == 512)
			assert_true((dfd = dup(fd)) >= 0);
		else
			evbuffer_add(body, chunk, sizeof(chunk));
		/* gwp_send closes dfd, as the core's file replies do. */
		gwp_send(f->s, (uint64_t)f->s->gen << 32 | (uint64_t)i, 200,
		         &hdrs, body, dfd, dfd != -1 ? 3 : 0);
		assert_int_not_equal(f->s->fd, -1);
	}
	assert_true(evbuffer_get_length(f->s->out) > 0);
	/* Once the worker reads: all of them, the descriptor with reply
	 * 512. */
	fq_read = 0;
	fq_bad = fq_fds = 0;
	fq_file_at = -1;
	assert_int_equal(pthread_create(&th, NULL, fq_reader, f), 0);
	loop_until_read(f, &fq_read, 1025);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&fq_read), 1025);
	assert_int_equal(fq_bad, 0);
	assert_int_equal(fq_fds, 1);
	assert_int_equal(fq_file_at, 512);
	assert_int_equal(evbuffer_get_length(f->s->out), 0);
	/* The core kept no copy of it. */
	assert_int_equal(open_fds(), before);
	/* A file reply still queued when the worker is stopped: its
	 * descriptor is closed with the channel. */
	send_chunks(f, 512);
	{
		int dfd = dup(fd);

		assert_true(dfd >= 0);
		evbuffer_drain(body, evbuffer_get_length(body));
		gwp_send(f->s, (uint64_t)f->s->gen << 32 | 512, 200, &hdrs,
		         body, dfd, 3);
	}
	assert_int_not_equal(f->s->fd, -1);
	gwp_kill(f->s, "test");
	assert_int_equal(open_fds(), before - 1); /* and the channel's */
	close(fd);
	queue_off(f);
	evbuffer_free(body);
}

/*
 * The syslog worker exits on the core's GWRELAY_DRAIN: the batches it sent
 * before are still taken at the stop (gwp_take_rest, from gwp_stop), read
 * until its channel ends, not dropped with the channel.
 */
static void
test_syslog_rest(void **state)
{
	struct fx *f = *state;
	int i;

	f->gp->syslog = 1;
	sl_batches = 0;
	if (f->s->in == NULL)
		assert_non_null(f->s->in = evbuffer_new());
	for (i = 0; i < 3; i++)
		assert_int_equal(
		    proc_send(f->peer, GWRELAY_SYSLOG, 0, "abc", 3), 0);
	close(f->peer); /* the worker exits */
	f->peer = open("/dev/null", O_RDONLY);
	gwp_take_rest(f->s);
	assert_int_equal(sl_batches, 3);
	assert_int_equal(f->s->fd, -1);
	f->gp->syslog = 0;
	evbuffer_free(f->s->in);
	f->s->in = NULL;
}

/* The syslog worker died (kill -9) with batches in its channel that the
 * core had not read yet: they are stored before the channel closes. */
static void
test_syslog_reaped(void **state)
{
	struct fx *f = *state;
	int i;

	f->gp->syslog = 1;
	f->gp->restarts = "vigil_syslog_worker_restarts_total";
	f->s->pid = 424242; /* no such child: only its slot matters */
	sl_batches = 0;
	if (f->s->in == NULL)
		assert_non_null(f->s->in = evbuffer_new());
	for (i = 0; i < 2; i++)
		assert_int_equal(
		    proc_send(f->peer, GWRELAY_SYSLOG, 0, "abc", 3), 0);
	close(f->peer); /* it died */
	f->peer = open("/dev/null", O_RDONLY);
	assert_int_equal(gwp_reaped(f->gp, 424242, 9), 1);
	assert_int_equal(sl_batches, 2);
	assert_int_equal(f->s->fd, -1);
	f->gp->syslog = 0;
	if (f->s->ev_restart != NULL) {
		event_free(f->s->ev_restart);
		f->s->ev_restart = NULL;
	}
	evbuffer_free(f->s->in);
	f->s->in = NULL;
}

/* The worker relays GET /v1/stream as request id. */
static void
relay_stream(struct fx *f, uint64_t id)
{
	struct proc_hdr hdr;

	buf_reset(&f->s->payload);
	gwrelay_put_str(&f->s->payload, "GET", 3);
	gwrelay_put_str(&f->s->payload, "/v1/stream", 10);
	gwrelay_put_str(&f->s->payload, "192.0.2.1", 9);
	gwrelay_put_str(&f->s->payload, "", 0);
	gwrelay_put_u32(&f->s->payload, 0);
	gwrelay_put_str(&f->s->payload, "", 0);
	assert_int_equal(buf_ok(&f->s->payload), 0);
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = GWRELAY_REQ;
	hdr.id = id;
	hdr.len = (uint32_t)f->s->payload.len;
	assert_int_equal(gwp_on_request(f->s, &hdr), 0);
}

/* The next message the core sent the worker: its type, id and payload. */
static uint32_t
next_msg(struct fx *f, uint64_t *id, struct buf *payload)
{
	struct timeval tv = {1, 0};
	struct proc_hdr hdr;

	setsockopt(f->peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	buf_reset(payload);
	if (proc_recv(f->peer, &hdr, payload, 1 << 20) != 0)
		return 0;
	*id = hdr.id;
	return hdr.type;
}

/* The worker says stream id lost its client (why: GWRELAY_GONE_*). */
static void
worker_gone(struct fx *f, uint64_t id, uint8_t why)
{
	assert_int_equal(proc_send(f->peer, GWRELAY_STREAM_GONE, id, &why, 1),
	                 0);
	gwp_read_cb(f->s->fd, EV_READ, f->s);
}

static void
test_stream(void **state)
{
	struct fx *f = *state;
	struct gwrelay_reply rp;
	struct buf m;
	const char *why = NULL;
	uint64_t id = 0, q = 0;
	size_t i;
	int ctype = 0, extra = 0;

	buf_init(&m, 1 << 20);
	assert_non_null(f->s->in = evbuffer_new());
	evutil_make_socket_nonblocking(f->s->fd);

	/* A gateway worker's channel carries no stream: 501. */
	relay_stream(f, 9);
	assert_null(g_st);
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_REPLY);
	assert_int_equal(gwrelay_reply_decode(m.data, m.len, &rp, &why), 0);
	assert_int_equal(rp.status, 501);

	/* The admin worker's: the head, its headers and the queue bound. */
	f->gp->admin = 1;
	relay_stream(f, 10);
	assert_non_null(g_st);
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_STREAM_START);
	assert_int_equal(id, 10);
	assert_int_equal(
	    gwrelay_stream_start_decode(m.data, m.len, &rp, &q, &why), 0);
	assert_int_equal(rp.status, 200);
	assert_int_equal(q, 4096);
	for (i = 0; i < rp.nheaders; i++) {
		if (strv_eq(rp.headers[i].name, "Content-Type") &&
		    strv_eq(rp.headers[i].value, "text/event-stream"))
			ctype = 1;
		if (strv_eq(rp.headers[i].name, "X-Accel-Buffering"))
			extra = 1;
	}
	assert_true(ctype && extra);
	/* Chunks, under the same id. */
	assert_int_equal(http_req_stream_send(g_st, "event: a\n\n", 10), 0);
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_STREAM_CHUNK);
	assert_int_equal(id, 10);
	assert_int_equal(m.len, 10);
	assert_memory_equal(m.data, "event: a\n\n", 10);
	/* The client left: on_closed runs, once. */
	g_closed = 0;
	worker_gone(f, 10, GWRELAY_GONE_LEFT);
	assert_int_equal(g_closed, 1);
	assert_null(g_st);
	/* A GONE for a stream that ended already changes nothing. */
	worker_gone(f, 10, GWRELAY_GONE_LEFT);
	assert_int_equal(g_closed, 1);
	assert_int_not_equal(f->s->fd, -1);

	/* A client that did not read: the next send fails, no on_closed. */
	relay_stream(f, 11);
	assert_non_null(g_st);
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_STREAM_START);
	worker_gone(f, 11, GWRELAY_GONE_SLOW);
	assert_int_equal(http_req_stream_send(g_st, "x", 1), -1);
	assert_int_equal(g_closed, 1);
	g_st = NULL;

	/* The end, told to the worker. */
	relay_stream(f, 12);
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_STREAM_START);
	http_req_stream_end(g_st);
	g_st = NULL;
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_STREAM_END);
	assert_int_equal(id, 12);
	assert_int_equal(m.len, 0);

	/* A GONE of a bad size is a protocol error: the worker is stopped. */
	relay_stream(f, 13);
	assert_int_equal(next_msg(f, &id, &m), GWRELAY_STREAM_START);
	assert_int_equal(proc_send(f->peer, GWRELAY_STREAM_GONE, 13, NULL, 0),
	                 0);
	gwp_read_cb(f->s->fd, EV_READ, f->s);
	assert_int_equal(f->s->fd, -1);
	/* ... and when it is reaped, its streams end in the core. */
	assert_non_null(g_st);
	f->s->pid = 4242; /* as if it had a process */
	assert_int_equal(gwp_reaped(f->gp, 4242, 9), 1);
	assert_int_equal(g_closed, 2);
	assert_null(g_st);
	event_free(f->s->ev_restart);
	f->s->ev_restart = NULL;
	evbuffer_free(f->s->in);
	f->s->in = NULL;
	buf_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_genuine, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issued_not_verified_again,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_keeps_colliding, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_role, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_does_not_wait, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_file_reply_does_not_wait,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syslog_rest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syslog_reaped, setup,
	                                    teardown),
	};

	log_init("test_gwproc", LOG_DEST_STDERR, LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
