/*
 * Unit tests for tls.c. The handshake tests are real: a CA, a server and
 * client certificates are made with pki.h in a temporary directory, and a
 * server SSL and a client SSL talk over a socketpair (both non-blocking,
 * driven in turn from one thread) so that accept/reject decisions, the
 * revocation hook and the failure reasons are the ones a daemon would see.
 * Each case runs with TLS 1.3 and again with TLS 1.2, whose client
 * certificate flows differ.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "pki.h"
#include "tls.h"

static char tmpdir[] = "/tmp/vigil-test-tls-XXXXXX";
static char *client_cn;
static char ca_fp[65];

/* What the hooks saw during the last handshake. */
static int failures;
static char last_reason[64];

struct revoke_state {
	int calls;
	int answer;
	char cn[80];
};

static void
failure_hook(const char *reason)
{
	failures++;
	snprintf(last_reason, sizeof(last_reason), "%s", reason);
}

static int
revoked_hook(X509 *leaf, void *arg)
{
	struct revoke_state *rs = arg;
	char *cn = tls_subject_cn(leaf);

	rs->calls++;
	snprintf(rs->cn, sizeof(rs->cn), "%s", cn != NULL ? cn : "");
	free(cn);
	return rs->answer;
}

static const char *
path(const char *name)
{
	static char p[4][PATH_MAX];
	static int slot;

	slot = (slot + 1) % 4;
	snprintf(p[slot], sizeof(p[slot]), "%s/%s", tmpdir, name);
	return p[slot];
}

static void
write_pem_cert(const char *name, X509 *a, X509 *b)
{
	struct buf pem, err;

	buf_init(&pem, 0);
	buf_init(&err, 4096);
	assert_int_equal(tls_cert_to_pem(a, &pem), 0);
	if (b != NULL)
		assert_int_equal(tls_cert_to_pem(b, &pem), 0);
	assert_int_equal(
	    tls_write_file(path(name), pem.data, pem.len, 0644, &err), 0);
	buf_free(&pem);
	buf_free(&err);
}

static void
write_pem_key(const char *name, EVP_PKEY *k)
{
	struct buf pem, err;

	buf_init(&pem, 0);
	buf_init(&err, 4096);
	assert_int_equal(tls_key_to_pem(k, &pem), 0);
	assert_int_equal(
	    tls_write_file(path(name), pem.data, pem.len, 0600, &err), 0);
	explicit_bzero(pem.data, pem.len);
	buf_free(&pem);
	buf_free(&err);
}

/* A client key + certificate signed by ca, written as <name>.crt/.key. */
static void
make_client(const char *name, X509 *ca, EVP_PKEY *cakey, const char *cn,
            long long secs)
{
	char file[64];
	struct buf err;
	EVP_PKEY *k = pki_genkey();
	X509_REQ *csr;
	X509 *x;

	buf_init(&err, 4096);
	assert_non_null(k);
	assert_non_null(csr = pki_make_csr(k, "whatever"));
	x = pki_sign_client(ca, cakey, csr, cn, secs, &err);
	assert_non_null(x);
	snprintf(file, sizeof(file), "%s.crt", name);
	write_pem_cert(file, x, NULL);
	snprintf(file, sizeof(file), "%s.key", name);
	write_pem_key(file, k);
	X509_free(x);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&err);
}

static int
setup(void **state)
{
	static const char *const sans[] = {"127.0.0.1"};
	EVP_PKEY *cakey, *ca2key, *skey;
	X509 *ca, *ca2, *srv;

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	assert_non_null(cakey = pki_genkey());
	assert_non_null(ca = pki_make_ca(cakey, "Test CA", 30));
	assert_non_null(ca2key = pki_genkey());
	assert_non_null(ca2 = pki_make_ca(ca2key, "Other CA", 30));
	assert_non_null(skey = pki_genkey());
	srv = pki_make_server_cert(ca, cakey, skey, "vigil.test", sans, 1, 30);
	assert_non_null(srv);
	tls_fingerprint(ca, ca_fp);

	write_pem_cert("ca.crt", ca, NULL);
	write_pem_cert("ca2.crt", ca2, NULL);
	write_pem_cert("server.crt", srv, ca);
	write_pem_cert("server-leaf.crt", srv, NULL);
	write_pem_key("server.key", skey);
	client_cn = "agent-1";
	make_client("client", ca, cakey, client_cn, 86400);
	make_client("client2", ca2, ca2key, "agent-2", 86400);

	X509_free(srv);
	X509_free(ca2);
	X509_free(ca);
	EVP_PKEY_free(skey);
	EVP_PKEY_free(ca2key);
	EVP_PKEY_free(cakey);
	tls_set_failure_hook(failure_hook);
	return 0;
}

static int
teardown(void **state)
{
	struct dirent *de;
	DIR *d;

	(void)state;
	tls_set_failure_hook(NULL);
	if ((d = opendir(tmpdir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlink(path(de->d_name));
		closedir(d);
	}
	rmdir(tmpdir);
	return 0;
}

/* ---- handshake driver ---- */

enum step { ST_HS, ST_IO1, ST_IO2, ST_OK, ST_FAIL };

struct hs {
	enum step server, client;
	long client_verify;
	char peer_cn[80]; /* client certificate CN as the server saw it */
	int peer_cas;     /* CA certificates the client sent along */
};

/* One non-blocking operation on one side; returns the next step. */
static enum step
advance(SSL *ssl, enum step st, int is_server)
{
	char buf[8];
	int rc;

	ERR_clear_error();
	switch (st) {
	case ST_HS:
		rc = SSL_do_handshake(ssl);
		break;
	case ST_IO1:
		/* Client speaks first: this is where a TLS 1.3 client learns
		 * that the server refused its certificate. */
		rc = is_server ? SSL_read(ssl, buf, sizeof(buf))
		               : SSL_write(ssl, "ping", 4);
		if (rc > 0 && is_server && (rc != 4 || memcmp(buf, "ping", 4)))
			return ST_FAIL;
		break;
	case ST_IO2:
		rc = is_server ? SSL_write(ssl, "pong", 4)
		               : SSL_read(ssl, buf, sizeof(buf));
		if (rc > 0 && !is_server && (rc != 4 || memcmp(buf, "pong", 4)))
			return ST_FAIL;
		break;
	default:
		return st;
	}
	if (rc > 0)
		return st + 1;
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return st;
	default:
		return ST_FAIL;
	}
}

static void
run(SSL_CTX *sctx, SSL_CTX *cctx, const char *host, struct hs *r)
{
	SSL *s, *c;
	X509 *peer;
	char *cn;
	int sv[2];

	memset(r, 0, sizeof(*r));
	failures = 0;
	last_reason[0] = '\0';
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_non_null(s = SSL_new(sctx));
	assert_non_null(c = SSL_new(cctx));
	assert_int_equal(SSL_set_fd(s, sv[0]), 1);
	assert_int_equal(SSL_set_fd(c, sv[1]), 1);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (host != NULL)
		assert_int_equal(SSL_set1_host(c, host), 1);

	r->server = r->client = ST_HS;
	for (int i = 0; i < 100; i++) {
		r->server = advance(s, r->server, 1);
		r->client = advance(c, r->client, 0);
		if (r->server >= ST_OK && r->client >= ST_OK)
			break;
	}
	/* A side still waiting means the other gave up on it. */
	if (r->server < ST_OK)
		r->server = ST_FAIL;
	if (r->client < ST_OK)
		r->client = ST_FAIL;
	r->client_verify = SSL_get_verify_result(c);
	{
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(s);

		for (int i = 0; i < sk_X509_num(chain); i++)
			r->peer_cas +=
			    X509_check_ca(sk_X509_value(chain, i)) != 0;
	}
	if ((peer = SSL_get0_peer_certificate(s)) != NULL &&
	    (cn = tls_subject_cn(peer)) != NULL) {
		snprintf(r->peer_cn, sizeof(r->peer_cn), "%s", cn);
		free(cn);
	}
	SSL_free(s);
	SSL_free(c);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
}

/* Server on crt ("server.crt" holds the chain, "server-leaf.crt" not). */
static SSL_CTX *
server_on(const char *crt, enum tls_client_auth auth, struct revoke_state *rs)
{
	struct buf err;
	SSL_CTX *ctx;

	buf_init(&err, 4096);
	ctx = tls_server_ctx(path(crt), path("server.key"),
	                     auth == TLS_CLIENT_NONE ? NULL : path("ca.crt"),
	                     auth, rs != NULL ? revoked_hook : NULL, rs, &err);
	if (ctx == NULL)
		fail_msg("tls_server_ctx: %s", buf_cstr(&err));
	buf_free(&err);
	return ctx;
}

static SSL_CTX *
server(enum tls_client_auth auth, struct revoke_state *rs)
{
	return server_on("server.crt", auth, rs);
}

/* client: "client", "client2" or NULL (no certificate). */
static SSL_CTX *
client(const char *ca, const char *name, int max_version)
{
	char crt[32], key[32];
	struct buf err;
	SSL_CTX *ctx;

	buf_init(&err, 4096);
	snprintf(crt, sizeof(crt), "%s.crt", name != NULL ? name : "");
	snprintf(key, sizeof(key), "%s.key", name != NULL ? name : "");
	ctx = tls_client_ctx(path(ca), name != NULL ? path(crt) : NULL,
	                     name != NULL ? path(key) : NULL, &err);
	if (ctx == NULL)
		fail_msg("tls_client_ctx: %s", buf_cstr(&err));
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	buf_free(&err);
	return ctx;
}

static const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};

static void
test_good_client(void **state)
{
	struct revoke_state rs = {0};
	struct hs r;

	(void)state;
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *s = server(TLS_CLIENT_REQUIRED, &rs);
		SSL_CTX *c = client("ca.crt", "client", versions[v]);

		rs.calls = 0;
		run(s, c, "vigil.test", &r);
		assert_int_equal(r.server, ST_OK);
		assert_int_equal(r.client, ST_OK);
		assert_int_equal(r.client_verify, X509_V_OK);
		assert_string_equal(r.peer_cn, client_cn);
		/* The agent sends its own certificate only: the center has
		 * the CA, and a copy sent along would be parsed and kept for
		 * the life of each connection (docs/performance.md). */
		assert_int_equal(r.peer_cas, 0);
		assert_int_equal(rs.calls, 1);
		assert_string_equal(rs.cn, client_cn);
		assert_int_equal(failures, 0);
		SSL_CTX_free(c);
		SSL_CTX_free(s);
	}
}

static void
test_server_by_ip(void **state)
{
	SSL_CTX *s = server(TLS_CLIENT_NONE, NULL);
	SSL_CTX *c = client("ca.crt", NULL, TLS1_3_VERSION);
	struct hs r;

	(void)state;
	run(s, c, "127.0.0.1", &r);
	assert_int_equal(r.server, ST_OK);
	assert_int_equal(r.client, ST_OK);
	assert_string_equal(r.peer_cn, "");
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void
test_other_ca_client(void **state)
{
	struct revoke_state rs = {0};
	struct hs r;

	(void)state;
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *s = server(TLS_CLIENT_REQUIRED, &rs);
		SSL_CTX *c = client("ca.crt", "client2", versions[v]);

		run(s, c, "vigil.test", &r);
		assert_int_equal(r.server, ST_FAIL);
		assert_int_equal(r.client, ST_FAIL);
		assert_int_equal(failures, 1);
		assert_string_equal(last_reason, "unknown_ca");
		/* Revocation is asked only about verified chains. */
		assert_int_equal(rs.calls, 0);
		SSL_CTX_free(c);
		SSL_CTX_free(s);
	}
}

static void
test_revoked_client(void **state)
{
	struct revoke_state rs = {.answer = 1};
	struct hs r;

	(void)state;
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *s = server(TLS_CLIENT_REQUIRED, &rs);
		SSL_CTX *c = client("ca.crt", "client", versions[v]);

		rs.calls = 0;
		run(s, c, "vigil.test", &r);
		assert_int_equal(r.server, ST_FAIL);
		assert_int_equal(r.client, ST_FAIL);
		assert_int_equal(rs.calls, 1);
		assert_int_equal(failures, 1);
		assert_string_equal(last_reason, "revoked");
		SSL_CTX_free(c);
		SSL_CTX_free(s);
	}
}

static void
test_no_client_cert(void **state)
{
	struct revoke_state rs = {0};
	struct hs r;

	(void)state;
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *req = server(TLS_CLIENT_REQUIRED, &rs);
		SSL_CTX *opt = server(TLS_CLIENT_OPTIONAL, &rs);
		SSL_CTX *c = client("ca.crt", NULL, versions[v]);

		run(req, c, "vigil.test", &r);
		assert_int_equal(r.server, ST_FAIL);
		assert_int_equal(r.client, ST_FAIL);
		assert_int_equal(failures, 1);
		assert_string_equal(last_reason, "no_client_cert");

		run(opt, c, "vigil.test", &r);
		assert_int_equal(r.server, ST_OK);
		assert_int_equal(r.client, ST_OK);
		assert_string_equal(r.peer_cn, "");
		assert_int_equal(failures, 0);
		assert_int_equal(rs.calls, 0);
		SSL_CTX_free(c);
		SSL_CTX_free(opt);
		SSL_CTX_free(req);
	}
}

/* OPTIONAL still verifies a certificate that is presented. */
static void
test_optional_verifies(void **state)
{
	struct revoke_state rs = {.answer = 1};
	SSL_CTX *s = server(TLS_CLIENT_OPTIONAL, &rs);
	SSL_CTX *c = client("ca.crt", "client2", TLS1_3_VERSION);
	SSL_CTX *c1 = client("ca.crt", "client", TLS1_3_VERSION);
	struct hs r;

	(void)state;
	run(s, c, "vigil.test", &r);
	assert_int_equal(r.server, ST_FAIL);
	assert_string_equal(last_reason, "unknown_ca");
	run(s, c1, "vigil.test", &r);
	assert_int_equal(r.server, ST_FAIL);
	assert_string_equal(last_reason, "revoked");
	SSL_CTX_free(c1);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void
test_expired_client(void **state)
{
	struct hs r;

	(void)state;
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *s = server(TLS_CLIENT_REQUIRED, NULL);
		SSL_CTX *c = client("ca.crt", "client", versions[v]);

		/* Two days on, the one-day client certificate has expired
		 * while the CA (30 days) has not. */
		X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(s),
		                           time(NULL) + 2 * 86400);
		run(s, c, "vigil.test", &r);
		assert_int_equal(r.server, ST_FAIL);
		assert_int_equal(failures, 1);
		assert_string_equal(last_reason, "certificate_expired");
		SSL_CTX_free(c);
		SSL_CTX_free(s);
	}
}

/*
 * A client pinned to another CA. When the server sends only its leaf the
 * issuer is simply unknown; when it sends its chain (what pki init writes)
 * OpenSSL reports an untrusted self-signed CA in the chain. Both must read
 * as "a CA this side does not trust".
 */
static void
test_client_wrong_ca(void **state)
{
	static const char *const crts[] = {"server-leaf.crt", "server.crt"};
	static const long want[] = {
	    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
	    X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN};
	struct hs r;
	const char *text;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		/* NONE: with a CA store OpenSSL would complete the chain
		 * from it even for the leaf-only file. */
		SSL_CTX *s = server_on(crts[i / 2], TLS_CLIENT_NONE, NULL);
		SSL_CTX *c = client("ca2.crt", NULL, versions[i % 2]);

		run(s, c, "vigil.test", &r);
		assert_int_equal(r.client, ST_FAIL);
		assert_int_equal(r.server, ST_FAIL);
		assert_int_equal(r.client_verify, want[i / 2]);
		text = tls_verify_error_text(r.client_verify);
		assert_non_null(strstr(text, "issued by a CA this side does "
		                             "not trust"));
		/* The server counts the client's refusal too. */
		assert_int_equal(failures, 1);
		assert_string_equal(last_reason, "peer_rejected_certificate");
		SSL_CTX_free(c);
		SSL_CTX_free(s);
	}
}

static void
test_client_wrong_host(void **state)
{
	SSL_CTX *s = server(TLS_CLIENT_NONE, NULL);
	SSL_CTX *c = client("ca.crt", NULL, TLS1_3_VERSION);
	struct hs r;

	(void)state;
	run(s, c, "other.test", &r);
	assert_int_equal(r.client, ST_FAIL);
	assert_int_equal(r.client_verify, X509_V_ERR_HOSTNAME_MISMATCH);
	assert_non_null(strstr(tls_verify_error_text(r.client_verify),
	                       "does not name the host"));
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/* ---- contexts and files ---- */

static void
test_ctx_errors(void **state)
{
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	/* Key of another certificate. */
	assert_null(tls_server_ctx(path("server.crt"), path("client.key"), NULL,
	                           TLS_CLIENT_NONE, NULL, NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "does not match"));
	buf_reset(&err);
	assert_null(tls_server_ctx(path("missing.crt"), path("server.key"),
	                           NULL, TLS_CLIENT_NONE, NULL, NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "missing.crt"));
	buf_reset(&err);
	assert_null(tls_server_ctx(path("server.crt"), path("server.key"), NULL,
	                           TLS_CLIENT_REQUIRED, NULL, NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "CA file"));
	buf_reset(&err);
	assert_null(tls_client_ctx(path("nope.crt"), NULL, NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "nope.crt"));
	buf_reset(&err);
	assert_null(
	    tls_client_ctx(path("ca.crt"), path("client.crt"), NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "both"));
	buf_free(&err);
}

static void
test_key_perms(void **state)
{
	char want[PATH_MAX + 128];
	const char *key = path("server.key");
	struct buf err;
	EVP_PKEY *k;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(chmod(key, 0644), 0);
	assert_null(tls_load_key(key, &err));
	snprintf(
	    want, sizeof(want),
	    "%s: readable by group or others (mode 0644); run: chmod 600 %s",
	    key, key);
	assert_string_equal(buf_cstr(&err), want);
	buf_reset(&err);
	assert_int_equal(tls_check_key_perms(key, &err), -1);
	buf_reset(&err);
	/* A daemon refuses to start on it. */
	assert_null(tls_server_ctx(path("server.crt"), key, NULL,
	                           TLS_CLIENT_NONE, NULL, NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "chmod 600"));
	buf_reset(&err);

	assert_int_equal(chmod(key, 0620), 0);
	assert_int_equal(tls_check_key_perms(key, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "writable"));
	buf_reset(&err);

	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(tls_check_key_perms(key, &err), 0);
	assert_non_null(k = tls_load_key(key, &err));
	assert_int_equal(err.len, 0);
	EVP_PKEY_free(k);

	assert_null(tls_load_key(path("absent.key"), &err));
	assert_non_null(strstr(buf_cstr(&err), "absent.key"));
	buf_reset(&err);
	/* Not a key at all (mode fine). */
	assert_int_equal(
	    tls_write_file(path("junk.key"), "junk\n", 5, 0600, &err), 0);
	assert_null(tls_load_key(path("junk.key"), &err));
	assert_non_null(strstr(buf_cstr(&err), "private key"));
	buf_free(&err);
}

static void
test_write_file(void **state)
{
	const char *p = path("w.txt"), *link = path("w.link");
	struct buf err, in;
	struct stat st;
	mode_t old;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&in, 0);
	/* Mode is exact even under a strict umask. */
	old = umask(077);
	assert_int_equal(tls_write_file(p, "one", 3, 0644, &err), 0);
	umask(old);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(tls_write_file(p, "second", 6, 0600, &err), 0);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(tls_read_file(p, 100, &in, &err), 0);
	assert_int_equal(in.len, 6);
	assert_memory_equal(in.data, "second", 6);
	buf_reset(&in);
	assert_int_equal(tls_read_file(p, 3, &in, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "larger than"));
	buf_reset(&err);

	assert_int_equal(symlink(p, link), 0);
	assert_int_equal(tls_write_file(link, "x", 1, 0600, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "symbolic link"));
	buf_reset(&in);
	assert_int_equal(tls_read_file(p, 100, &in, &err), 0);
	assert_memory_equal(in.data, "second", 6);
	unlink(link);
	unlink(p);
	buf_free(&err);
	buf_free(&in);
}

static void
test_load_certs(void **state)
{
	STACK_OF(X509) * sk;
	struct buf err, pem;
	X509 *x;
	char *s;

	(void)state;
	buf_init(&err, 4096);
	buf_init(&pem, 0);
	assert_non_null(sk = tls_load_certs(path("server.crt"), &err));
	assert_int_equal(sk_X509_num(sk), 2);
	s = tls_subject_cn(sk_X509_value(sk, 1));
	assert_string_equal(s, "Test CA");
	free(s);
	sk_X509_pop_free(sk, X509_free);

	assert_non_null(x = tls_load_cert(path("server.crt"), &err));
	s = tls_subject_cn(x);
	assert_string_equal(s, "vigil.test");
	free(s);
	assert_non_null(s = tls_serial_hex(x));
	assert_int_equal(strlen(s), 32);
	assert_int_equal(strspn(s, "0123456789ABCDEF"), 32);
	free(s);
	assert_true(tls_not_after(x) > (long long)time(NULL) + 29 * 86400);
	assert_true(tls_not_before(x) < (long long)time(NULL));
	assert_int_equal(tls_cert_to_pem(x, &pem), 0);
	X509_free(x);
	x = tls_cert_from_pem((const char *)pem.data, pem.len);
	assert_non_null(x);
	X509_free(x);
	assert_null(tls_cert_from_pem("nothing", 7));
	assert_int_equal(ERR_peek_error(), 0);

	assert_null(tls_load_cert(path("junk.key"), &err));
	assert_non_null(strstr(buf_cstr(&err), "no PEM certificate"));
	buf_free(&err);
	buf_free(&pem);
}

static void
test_fingerprint(void **state)
{
	char out[65], colons[96];
	size_t n = 0;

	(void)state;
	assert_int_equal(strlen(ca_fp), 64);
	assert_int_equal(tls_parse_fingerprint(ca_fp, out), 0);
	assert_string_equal(out, ca_fp);

	/* Upper case with colons, as `openssl x509 -fingerprint` prints. */
	for (size_t i = 0; i < 64; i += 2) {
		if (i > 0)
			colons[n++] = ':';
		colons[n++] =
		    (char)(ca_fp[i] >= 'a' ? ca_fp[i] - 32 : ca_fp[i]);
		colons[n++] = (char)(ca_fp[i + 1] >= 'a' ? ca_fp[i + 1] - 32
		                                         : ca_fp[i + 1]);
	}
	colons[n] = '\0';
	assert_int_equal(tls_parse_fingerprint(colons, out), 0);
	assert_string_equal(out, ca_fp);

	char prefixed[128];
	snprintf(prefixed, sizeof(prefixed), "sha256:%s", ca_fp);
	assert_int_equal(tls_parse_fingerprint(prefixed, out), 0);
	assert_string_equal(out, ca_fp);
	snprintf(prefixed, sizeof(prefixed), "SHA256:%s\n", colons);
	assert_int_equal(tls_parse_fingerprint(prefixed, out), 0);
	assert_string_equal(out, ca_fp);
	snprintf(prefixed, sizeof(prefixed), "sha256 Fingerprint=%s", colons);
	assert_int_equal(tls_parse_fingerprint(prefixed, out), 0);
	assert_string_equal(out, ca_fp);

	/* Malformed. */
	assert_int_equal(tls_parse_fingerprint("", out), -1);
	assert_string_equal(out, "");
	assert_int_equal(tls_parse_fingerprint("abcd", out), -1);
	snprintf(prefixed, sizeof(prefixed), "%.62s", ca_fp); /* short */
	assert_int_equal(tls_parse_fingerprint(prefixed, out), -1);
	snprintf(prefixed, sizeof(prefixed), "%s00", ca_fp); /* long */
	assert_int_equal(tls_parse_fingerprint(prefixed, out), -1);
	snprintf(prefixed, sizeof(prefixed), "%.63sg", ca_fp); /* not hex */
	assert_int_equal(tls_parse_fingerprint(prefixed, out), -1);
	snprintf(prefixed, sizeof(prefixed), "%s:", colons); /* trailing : */
	assert_int_equal(tls_parse_fingerprint(prefixed, out), -1);
	snprintf(prefixed, sizeof(prefixed), "%.4s:%s", ca_fp, ca_fp + 4);
	assert_int_equal(tls_parse_fingerprint(prefixed, out), -1);
	snprintf(prefixed, sizeof(prefixed), "md5:%s", ca_fp);
	assert_int_equal(tls_parse_fingerprint(prefixed, out), -1);
}

/* A certificate signed by a throwaway CA with a SAN written in OpenSSL
 * config syntax (things pki never issues: wildcards, CN-only). */
static X509 *
odd_cert(const char *cn, const char *san)
{
	EVP_PKEY *k = pki_genkey();
	X509_NAME *name;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	X509 *x = X509_new();

	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	if (san != NULL) {
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		ext =
		    X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

static void
test_cert_names_host(void **state)
{
	struct buf err;
	X509 *x;

	(void)state;
	buf_init(&err, 4096);
	assert_non_null(x = tls_load_cert(path("server.crt"), &err));
	assert_true(tls_cert_names_host(x, "vigil.test"));
	assert_true(tls_cert_names_host(x, "Vigil.Test"));
	assert_true(tls_cert_names_host(x, "127.0.0.1"));
	assert_false(tls_cert_names_host(x, "127.0.0.2"));
	assert_false(tls_cert_names_host(x, "evil.test"));
	assert_false(tls_cert_names_host(x, "sub.vigil.test"));
	assert_false(tls_cert_names_host(x, ""));
	assert_false(tls_cert_names_host(x, NULL));
	X509_free(x);

	x = odd_cert("w", "DNS:*.example.org,IP:::1");
	assert_false(tls_cert_names_host(x, "a.example.org"));
	assert_true(tls_cert_names_host(x, "::1"));
	assert_true(tls_cert_names_host(x, "0:0::1"));
	X509_free(x);
	/* The subject CN is never a host name. */
	x = odd_cert("cn.example.org", NULL);
	assert_false(tls_cert_names_host(x, "cn.example.org"));
	X509_free(x);
	buf_free(&err);
}

static void
test_verify_error_text(void **state)
{
	(void)state;
	assert_non_null(
	    strstr(tls_verify_error_text(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT),
	           "issued by a CA this side does not trust"));
	assert_non_null(strstr(
	    tls_verify_error_text(X509_V_ERR_CERT_HAS_EXPIRED), "expired"));
	assert_non_null(strstr(
	    tls_verify_error_text(X509_V_ERR_CERT_NOT_YET_VALID), "clocks"));
	assert_non_null(
	    strstr(tls_verify_error_text(X509_V_ERR_CERT_REVOKED), "revoked"));
	assert_non_null(strstr(
	    tls_verify_error_text(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
	    "self-signed"));
	assert_non_null(strstr(
	    tls_verify_error_text(X509_V_ERR_HOSTNAME_MISMATCH), "host"));
	/* Unlisted codes fall back to OpenSSL's own text. */
	assert_non_null(tls_verify_error_text(X509_V_ERR_OUT_OF_MEM));
	assert_true(strlen(tls_verify_error_text(999999)) > 0);
}

static void
test_errors(void **state)
{
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	ERR_clear_error();
	buf_puts(&err, "context");
	tls_errors(&err);
	assert_string_equal(buf_cstr(&err), "context");
	ERR_raise_data(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED, "%s",
	               "detail");
	ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
	tls_errors(&err);
	assert_string_equal(
	    buf_cstr(&err),
	    "context: certificate verify failed (detail); no start line");
	assert_int_equal(ERR_peek_error(), 0);
	buf_free(&err);
}

/* ---- session tickets with keys from memory (gateway workers) ---- */

/* One TLS 1.3 connection of cctx to sctx offering in (may be NULL): 1
 * when it was resumed; the session with the ticket it got in *out (may
 * be NULL: none arrived). */
static int
resume(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *in, SSL_SESSION **out)
{
	SSL *s, *c;
	enum step ss = ST_HS, cs = ST_HS;
	int sv[2], reused;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_non_null(s = SSL_new(sctx));
	assert_non_null(c = SSL_new(cctx));
	assert_int_equal(SSL_set_fd(s, sv[0]), 1);
	assert_int_equal(SSL_set_fd(c, sv[1]), 1);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	assert_int_equal(SSL_set1_host(c, "vigil.test"), 1);
	if (in != NULL)
		assert_int_equal(SSL_set_session(c, in), 1);
	for (int i = 0; i < 100 && (ss < ST_OK || cs < ST_OK); i++) {
		ss = advance(s, ss, 1);
		cs = advance(c, cs, 0);
	}
	assert_int_equal(ss, ST_OK);
	assert_int_equal(cs, ST_OK);
	reused = SSL_session_reused(c);
	assert_int_equal(reused, SSL_session_reused(s));
	/* A clean end (else SSL_free marks the session not resumable).
	 * The ticket came with the server's data (ST_IO2). */
	SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	if (out != NULL) {
		*out = SSL_get1_session(c);
		if (*out != NULL && !SSL_SESSION_has_ticket(*out)) {
			SSL_SESSION_free(*out);
			*out = NULL;
		}
	}
	SSL_free(s);
	SSL_free(c);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return reused;
}

static int stale_answer;

static int
stale_hook(X509 *leaf, void *arg)
{
	(void)leaf;
	(void)arg;
	return stale_answer;
}

static void
test_tickets_from_memory(void **state)
{
	unsigned char k1[TLS_TICKET_KEYS_MAX], k2[TLS_TICKET_KEYS_MAX],
	    other[TLS_TICKET_KEYS_MAX];
	SSL_CTX *owner, *w1, *w2, *stranger, *c;
	SSL_SESSION *t1 = NULL, *t2 = NULL, *t3 = NULL;
	long long life = 0, rot = 0, rot2 = 0, now = (long long)time(NULL);
	size_t n1 = 0, n2 = 0, no = 0;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	unlink(path("tickets.key"));
	unlink(path("tickets2.key"));
	owner = server(TLS_CLIENT_REQUIRED, NULL);
	w1 = server(TLS_CLIENT_REQUIRED, NULL);
	w2 = server(TLS_CLIENT_REQUIRED, NULL);
	stranger = server(TLS_CLIENT_REQUIRED, NULL);
	c = client("ca.crt", "client", TLS1_3_VERSION);
	/* No tickets on the context: nothing to export. */
	assert_int_equal(
	    tls_server_tickets_export(owner, now, k1, &n1, &life, &rot), -1);
	assert_int_equal(n1, 0);
	assert_int_equal(tls_server_tickets(owner, path("tickets.key"), 3600,
	                                    NULL, NULL, &err),
	                 0);
	assert_int_equal(
	    tls_server_tickets_export(owner, now, k1, &n1, &life, &rot), 0);
	assert_int_equal(n1, TLS_TICKET_KEY_LEN); /* a new file: one key */
	assert_int_equal(life, 3600);
	assert_true(rot >= now - 5 && rot <= now + 5);

	/* Bad keys are refused, with a reason. */
	assert_int_equal(
	    tls_server_tickets_set(w1, k1, 79, 3600, NULL, NULL, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "79 bytes"));
	assert_int_equal(
	    tls_server_tickets_set(w1, k1, n1, 0, NULL, NULL, &err), -1);

	/* Two "workers" with the owner's keys: a ticket of one resumes on
	 * the other; a context with other keys cannot open it. */
	assert_int_equal(
	    tls_server_tickets_set(w1, k1, n1, life, stale_hook, NULL, &err),
	    0);
	assert_int_equal(
	    tls_server_tickets_set(w2, k1, n1, life, stale_hook, NULL, &err),
	    0);
	assert_int_equal(tls_server_tickets(stranger, path("tickets2.key"),
	                                    3600, NULL, NULL, &err),
	                 0);
	assert_int_equal(
	    tls_server_tickets_export(stranger, now, other, &no, &life, &rot2),
	    0);
	assert_memory_not_equal(other, k1, TLS_TICKET_KEY_LEN);
	assert_int_equal(resume(w1, c, NULL, &t1), 0);
	assert_non_null(t1);
	assert_int_equal(resume(w2, c, t1, NULL), 1);
	assert_int_equal(resume(owner, c, t1, NULL), 1);
	assert_int_equal(resume(stranger, c, t1, NULL), 0);
	/* The stale hook is asked on resumption, as with a key file. */
	stale_answer = 1;
	assert_int_equal(resume(w2, c, t1, NULL), 0);
	stale_answer = 0;

	/* Export rotates keys that are lifetime old: the new one first,
	 * the old one second, written to the file. (Counted from when the
	 * key was made, rot, not from the test's start: under a sanitizer
	 * a second may pass in between.) */
	assert_int_equal(
	    tls_server_tickets_export(owner, rot + 3600, k2, &n2, &life, &rot2),
	    0);
	assert_int_equal(n2, 2 * TLS_TICKET_KEY_LEN);
	assert_int_equal(rot2, rot + 3600);
	assert_memory_not_equal(k2, k1, TLS_TICKET_KEY_LEN);
	assert_memory_equal(k2 + TLS_TICKET_KEY_LEN, k1, TLS_TICKET_KEY_LEN);
	{
		SSL_CTX *again = server(TLS_CLIENT_REQUIRED, NULL);
		unsigned char k3[TLS_TICKET_KEYS_MAX];
		size_t n3 = 0;
		long long r3 = 0, l3 = 0;

		assert_int_equal(tls_server_tickets(again, path("tickets.key"),
		                                    3600, NULL, NULL, &err),
		                 0);
		assert_int_equal(
		    tls_server_tickets_export(again, now, k3, &n3, &l3, &r3),
		    0);
		assert_int_equal(n3, n2);
		assert_memory_equal(k3, k2, n2);
		SSL_CTX_free(again);
	}
	/* Replaced in w1: the old ticket still opens (the previous key),
	 * new ones are sealed with the new key, which w2 (not told yet)
	 * cannot open; a context set from memory never rotates. */
	assert_int_equal(
	    tls_server_tickets_set(w1, k2, n2, life, stale_hook, NULL, &err),
	    0);
	assert_int_equal(resume(w1, c, t1, NULL), 1);
	assert_int_equal(resume(w1, c, NULL, &t2), 0);
	assert_non_null(t2);
	assert_int_equal(resume(w2, c, t2, NULL), 0);
	assert_int_equal(
	    tls_server_tickets_set(w2, k2, n2, life, stale_hook, NULL, &err),
	    0);
	assert_int_equal(resume(w2, c, NULL, &t3), 0);
	assert_non_null(t3);
	assert_int_equal(resume(w1, c, t3, NULL), 1);

	/* No keys: resumption off, no ticket issued. */
	assert_int_equal(
	    tls_server_tickets_set(w1, NULL, 0, 0, NULL, NULL, &err), 0);
	assert_int_equal(resume(w1, c, t3, NULL), 0);
	SSL_SESSION_free(t3);
	t3 = NULL;
	assert_int_equal(resume(w1, c, NULL, &t3), 0);
	assert_null(t3);

	SSL_SESSION_free(t1);
	SSL_SESSION_free(t2);
	SSL_CTX_free(c);
	SSL_CTX_free(stranger);
	SSL_CTX_free(w2);
	SSL_CTX_free(w1);
	SSL_CTX_free(owner);
	unlink(path("tickets.key"));
	unlink(path("tickets2.key"));
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_client),
	    cmocka_unit_test(test_server_by_ip),
	    cmocka_unit_test(test_other_ca_client),
	    cmocka_unit_test(test_revoked_client),
	    cmocka_unit_test(test_no_client_cert),
	    cmocka_unit_test(test_optional_verifies),
	    cmocka_unit_test(test_expired_client),
	    cmocka_unit_test(test_client_wrong_ca),
	    cmocka_unit_test(test_client_wrong_host),
	    cmocka_unit_test(test_ctx_errors),
	    cmocka_unit_test(test_key_perms),
	    cmocka_unit_test(test_write_file),
	    cmocka_unit_test(test_load_certs),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_cert_names_host),
	    cmocka_unit_test(test_verify_error_text),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_tickets_from_memory),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
