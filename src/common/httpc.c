/*
 * httpc: the HTTPS client of the agent and vigilctl, on libcurl (see
 * httpc.h). One easy handle per request, so nothing (connections, TLS
 * sessions, proxy state) is shared between requests and every handshake is
 * verified from scratch.
 *
 * Trust: only the given CA file. CURLOPT_CAPATH is cleared because Debian's
 * libcurl has /etc/ssl/certs compiled in, and the proxy settings are always
 * set explicitly so that http_proxy / https_proxy / no_proxy in the
 * environment never route agent traffic somewhere the operator did not say.
 *
 * Diagnostics: libcurl's own messages for a failed verification ("unable to
 * get local issuer certificate") do not tell an operator that a corporate
 * proxy is re-signing TLS. So an OpenSSL verify callback, installed through
 * CURLOPT_SSL_CTX_FUNCTION, records the first failure (error code and the
 * certificate it concerned) and the message names the issuer the server
 * showed next to the CA this host trusts. Likewise the CONNECT response
 * headers are read so that a proxy asking for NTLM or Negotiate gets a
 * sentence, not just "407".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "httpc.h"
#include "pki.h"
#include "tls.h"

#define HTTPC_DEFAULT_TIMEOUT 30
#define HTTPC_CONNECT_TIMEOUT 15
#define HTTPC_MAX_BODY        BUF_MAX_DEFAULT

/* What the verify callback saw during the handshake. */
struct httpc_verify {
	int failed;      /* a chain error was seen */
	long err;        /* X509_V_ERR_* of the first failure */
	int depth;       /* where in the chain it happened */
	X509 *leaf;      /* the server's certificate (owned reference) */
	X509 *failed_at; /* the certificate of the first failure (owned) */
	unsigned roles;  /* httpc_opts.server_roles */
	const char *what;
	char role_why[512]; /* set when the leaf's role was refused */
};

/* State of one request, reachable from libcurl's callbacks. */
struct httpc_call {
	struct httpc_resp *resp;
	struct httpc_verify vfy;
	long hdr_status; /* status line of the response being read */
	int auth_basic;  /* schemes in Proxy-Authenticate of the last 407 */
	int auth_ntlm;
	int auth_negotiate;
	int auth_other;
	int too_big; /* the body went past its cap */
	FILE *sink;  /* httpc_opts.sink */
	int sink_failed;
};

static int httpc_ex_idx = -1;
static pthread_once_t httpc_ex_once = PTHREAD_ONCE_INIT;

/*
 * TLS sessions are shared by every request of the process: a program that
 * calls the same server again (the agent: heartbeat, task poll, events)
 * resumes its TLS 1.3 session from the ticket instead of a full handshake.
 * libcurl reuses a session only for the same host, port and TLS options
 * (CA file, client certificate, verification), and the server checks the
 * client certificate's revocation again on resumption (tls.c).
 */
static CURLSH *httpc_share;
static pthread_mutex_t httpc_share_mu = PTHREAD_MUTEX_INITIALIZER;

static void
httpc_share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *arg)
{
	(void)c;
	(void)d;
	(void)a;
	(void)arg;
	pthread_mutex_lock(&httpc_share_mu);
}

static void
httpc_share_unlock(CURL *c, curl_lock_data d, void *arg)
{
	(void)c;
	(void)d;
	(void)arg;
	pthread_mutex_unlock(&httpc_share_mu);
}

static void
httpc_ex_init(void)
{
	httpc_ex_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	/* Without a share every request is a full handshake, as before. */
	if ((httpc_share = curl_share_init()) != NULL &&
	    (curl_share_setopt(httpc_share, CURLSHOPT_LOCKFUNC,
	                       httpc_share_lock) != CURLSHE_OK ||
	     curl_share_setopt(httpc_share, CURLSHOPT_UNLOCKFUNC,
	                       httpc_share_unlock) != CURLSHE_OK ||
	     curl_share_setopt(httpc_share, CURLSHOPT_SHARE,
	                       CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)) {
		curl_share_cleanup(httpc_share);
		httpc_share = NULL;
	}
}

int
httpc_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	pthread_once(&httpc_ex_once, httpc_ex_init);
	return httpc_ex_idx < 0 ? -1 : 0;
}

void
httpc_global_cleanup(void)
{
	if (httpc_share != NULL) {
		curl_share_cleanup(httpc_share);
		httpc_share = NULL;
	}
	curl_global_cleanup();
}

void
httpc_resp_init(struct httpc_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
	buf_init(&r->body, HTTPC_MAX_BODY);
}

void
httpc_resp_free(struct httpc_resp *r)
{
	buf_free(&r->body);
	r->status = 0;
	r->err = HTTPC_OK;
	r->errmsg[0] = '\0';
}

static void seterr(struct httpc_resp *r, enum httpc_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(struct httpc_resp *r, enum httpc_err e, const char *fmt, ...)
{
	va_list ap;

	r->err = e;
	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
	va_end(ap);
	/* Parts of it come from the peer (names, curl's view of its
	 * answer); it ends up on terminals and in logs. */
	for (char *c = r->errmsg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
}

/*
 * Called by OpenSSL for every certificate of the chain. It never changes the
 * verdict (libcurl and OpenSSL decide); it only remembers what failed so the
 * error message can say it.
 */
static int
httpc_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	struct httpc_verify *v;
	X509 *x;

	ssl = X509_STORE_CTX_get_ex_data(xs,
	                                 SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL)
		return ok;
	v = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), httpc_ex_idx);
	if (v == NULL)
		return ok;
	if (v->leaf == NULL) {
		x = X509_STORE_CTX_get0_cert(xs);
		if (x != NULL && X509_up_ref(x))
			v->leaf = x;
	}
	/* The chain verified: the leaf must also be of a role expected. */
	if (ok && v->roles != 0 && X509_STORE_CTX_get_error_depth(xs) == 0 &&
	    v->role_why[0] == '\0') {
		struct buf why;

		buf_init(&why, sizeof(v->role_why) - 1);
		x = X509_STORE_CTX_get_current_cert(xs);
		if (pki_role_allowed(x, v->roles,
		                     v->what != NULL ? v->what : "this client",
		                     &why) == -1) {
			snprintf(v->role_why, sizeof(v->role_why), "%s",
			         buf_ok(&why) == 0 ? buf_cstr(&why)
			                           : "a certificate of another "
			                             "role");
			X509_STORE_CTX_set_error(
			    xs, X509_V_ERR_APPLICATION_VERIFICATION);
			ok = 0;
		}
		buf_free(&why);
	}
	if (!ok && !v->failed) {
		v->failed = 1;
		v->err = X509_STORE_CTX_get_error(xs);
		v->depth = X509_STORE_CTX_get_error_depth(xs);
		x = X509_STORE_CTX_get_current_cert(xs);
		if (x != NULL && X509_up_ref(x))
			v->failed_at = x;
	}
	return ok;
}

/* libcurl hands over its freshly made SSL_CTX before the handshake. */
static CURLcode
httpc_sslctx_cb(CURL *c, void *sslctx, void *arg)
{
	SSL_CTX *ctx = sslctx;

	(void)c;
	if (!SSL_CTX_set_ex_data(ctx, httpc_ex_idx, arg))
		return CURLE_SSL_CONNECT_ERROR;
	/* Keep the mode libcurl chose (peer verification on or off). */
	SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), httpc_verify_cb);
	return CURLE_OK;
}

static size_t
httpc_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct httpc_call *call = arg;
	size_t len = size * n;

	if (call->sink != NULL && call->hdr_status >= 200 &&
	    call->hdr_status < 300) {
		if (fwrite(p, 1, len, call->sink) != len) {
			call->sink_failed = 1;
			return 0;
		}
		return len;
	}
	if (buf_append(&call->resp->body, p, len) == -1) {
		call->too_big = 1;
		return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return len;
}

/*
 * Sees the headers of every response, the proxy's CONNECT answer included.
 * Only the status line and Proxy-Authenticate matter here.
 */
static size_t
httpc_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct httpc_call *call = arg;
	size_t len = size * n;
	struct strv line, name, tok;
	long long code;

	line = strv_trim(strv_make(p, len));
	if (strv_startswith(line, "HTTP/")) {
		(void)strv_split(&line, ' ');
		tok = strv_split(&line, ' ');
		if (strv_to_ll(tok, 100, 999, &code) == 0)
			call->hdr_status = (long)code;
		else
			call->hdr_status = 0;
		call->resp->retry_after = -1; /* each response its own */
		if (call->hdr_status == 407) {
			call->auth_basic = call->auth_ntlm = 0;
			call->auth_negotiate = call->auth_other = 0;
		}
		return len;
	}
	if (call->hdr_status != 407) {
		name = strv_trim(strv_split(&line, ':'));
		/* Retry-After in seconds; the HTTP-date form is not
		 * used by Vigil's servers and is ignored. */
		if (strv_casceq(name, "Retry-After") &&
		    strv_to_ll(strv_trim(line), 0, 86400, &code) == 0)
			call->resp->retry_after = code;
		if (strv_casceq(name, "Set-Cookie") &&
		    call->resp->cookie[0] == '\0') {
			tok = strv_trim(strv_split(&line, ';'));
			if (tok.len > 0 &&
			    tok.len < sizeof(call->resp->cookie)) {
				memcpy(call->resp->cookie, tok.p, tok.len);
				call->resp->cookie[tok.len] = '\0';
			}
		}
		return len;
	}
	name = strv_trim(strv_split(&line, ':'));
	if (!strv_casceq(name, "Proxy-Authenticate"))
		return len;
	line = strv_trim(line);
	tok = strv_split(&line, ' ');
	if (strv_casceq(tok, "Basic"))
		call->auth_basic = 1;
	else if (strv_casceq(tok, "NTLM"))
		call->auth_ntlm = 1;
	else if (strv_casceq(tok, "Negotiate") || strv_casceq(tok, "Kerberos"))
		call->auth_negotiate = 1;
	else
		call->auth_other = 1;
	return len;
}

/* Copies printable ASCII of p[0..len) to out, '?' for anything else: the
 * names come from a certificate nobody has verified yet. */
static void
put_sanitized(struct buf *out, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		(void)buf_putc(out, p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
}

/* The names a certificate is valid for: its subjectAltName entries, or its
 * CN when it has none. */
static void
cert_names(X509 *x, struct buf *out)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	char ip[INET6_ADDRSTRLEN];
	const unsigned char *d;
	char *cn;
	int i, n, first = 1;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
	for (i = 0; i < n; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			(void)buf_puts(out, first ? "" : ", ");
			put_sanitized(out, ASN1_STRING_get0_data(g->d.dNSName),
			              (size_t)ASN1_STRING_length(g->d.dNSName));
			first = 0;
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			if (ASN1_STRING_length(g->d.iPAddress) == 4)
				inet_ntop(AF_INET, d, ip, sizeof(ip));
			else if (ASN1_STRING_length(g->d.iPAddress) == 16)
				inet_ntop(AF_INET6, d, ip, sizeof(ip));
			else
				continue;
			(void)buf_printf(out, "%s%s", first ? "" : ", ", ip);
			first = 0;
		}
	}
	GENERAL_NAMES_free(gens);
	if (!first)
		return;
	cn = tls_subject_cn(x);
	if (cn != NULL) {
		(void)buf_puts(out, "CN ");
		put_sanitized(out, (const unsigned char *)cn, strlen(cn));
		free(cn);
	} else {
		(void)buf_puts(out, "no name at all");
	}
}

/* Describes the CA this client trusts: "'CN=..' (file, SHA-256 ...)". */
static void
describe_trust(const char *ca_file, struct buf *out, char **ca_name)
{
	struct buf err;
	X509 *ca;
	char fp[65];

	*ca_name = NULL;
	buf_init(&err, 1024);
	ca = tls_load_cert(ca_file, &err);
	if (ca == NULL) {
		(void)buf_printf(out, "the CA in %s (which cannot be read: %s)",
		                 ca_file, buf_cstr(&err));
		buf_free(&err);
		return;
	}
	tls_fingerprint(ca, fp);
	*ca_name = tls_name(X509_get_subject_name(ca));
	(void)buf_printf(out, "'%s' (%s, SHA-256 %s)",
	                 *ca_name != NULL ? *ca_name : "?", ca_file, fp);
	X509_free(ca);
	buf_free(&err);
}

/* Errors meaning "the chain does not lead to the trusted CA": the face of
 * a TLS-intercepting proxy, which re-signs with its own CA. */
static int
is_foreign_issuer(long err)
{
	switch (err) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return 1;
	default:
		return 0;
	}
}

static void
verify_message(const struct httpc_opts *o, struct httpc_call *call,
               const char *origin, const char *host, const char *curlmsg)
{
	struct httpc_verify *v = &call->vfy;
	struct httpc_resp *r = call->resp;
	struct buf trust, names;
	char *issuer = NULL, *subject = NULL, *ca_name = NULL;

	buf_init(&trust, 2048);
	buf_init(&names, 2048);
	if (v->role_why[0] != '\0') {
		subject = v->leaf != NULL
		              ? tls_name(X509_get_subject_name(v->leaf))
		              : NULL;
		seterr(
		    r, HTTPC_ERR_TLS_VERIFY,
		    "%s: the server's certificate ('%s') is from the trusted "
		    "CA but refused: %s. Something other than the expected "
		    "service answers at this address, or it was given "
		    "another component's certificate.",
		    origin, subject != NULL ? subject : "(unknown)",
		    v->role_why);
		goto done;
	}
	if (!v->failed) {
		/*
		 * The chain verified, so libcurl's own host name check is what
		 * failed.
		 */
		if (v->leaf != NULL)
			cert_names(v->leaf, &names);
		seterr(r, HTTPC_ERR_TLS_VERIFY,
		       "%s: the server's certificate is not valid for '%s': it "
		       "names %s. Use a server URL with a name the certificate "
		       "carries, or reissue the center's certificate with '%s' "
		       "in its subjectAltName.",
		       origin, host, names.len > 0 ? buf_cstr(&names) : curlmsg,
		       host);
		goto done;
	}
	if (v->failed_at != NULL)
		issuer = tls_name(X509_get_issuer_name(v->failed_at));
	if (v->leaf != NULL)
		subject = tls_name(X509_get_subject_name(v->leaf));
	describe_trust(o->ca_file, &trust, &ca_name);
	if (is_foreign_issuer(v->err) && issuer != NULL && ca_name != NULL &&
	    strcmp(issuer, ca_name) == 0) {
		/* Same name, different key: a re-created CA more likely
		 * than a proxy, but both are possible. */
		seterr(
		    r, HTTPC_ERR_TLS_VERIFY,
		    "%s: the server's certificate names '%s' as its issuer but "
		    "was not signed by the CA this agent trusts, %s. The "
		    "center's CA was probably re-created (re-enroll against "
		    "the new CA), or something between this host and the "
		    "center is intercepting TLS, which is not supported.",
		    origin, issuer, buf_cstr(&trust));
	} else if (is_foreign_issuer(v->err)) {
		seterr(
		    r, HTTPC_ERR_TLS_VERIFY,
		    "%s: the server's certificate was issued by '%s' but this "
		    "agent trusts only %s. Something between this host and the "
		    "center is intercepting TLS; TLS interception is not "
		    "supported: exempt the center from inspection or connect "
		    "without the intercepting proxy.",
		    origin, issuer != NULL ? issuer : "(unknown)",
		    buf_cstr(&trust));
	} else {
		seterr(
		    r, HTTPC_ERR_TLS_VERIFY,
		    "%s: the server's certificate ('%s', issued by '%s') does "
		    "not verify against %s: %s",
		    origin, subject != NULL ? subject : "(unknown)",
		    issuer != NULL ? issuer : "(unknown)", buf_cstr(&trust),
		    tls_verify_error_text(v->err));
	}
done:
	free(issuer);
	free(subject);
	free(ca_name);
	buf_free(&trust);
	buf_free(&names);
}

/* A proxy URL fit for messages: http://host:port, without credentials
 * a URL may carry. */
void
httpc_proxy_display(const char *proxy, char *out, size_t outlen)
{
	const char *sep, *rest, *at;
	size_t hostlen;

	sep = strstr(proxy, "://");
	rest = sep != NULL ? sep + 3 : proxy;
	hostlen = strcspn(rest, "/?#");
	at = memrchr(rest, '@', hostlen);
	if (at != NULL) {
		hostlen -= (size_t)(at + 1 - rest);
		rest = at + 1;
	}
	snprintf(out, outlen, "http://%.*s", (int)hostlen, rest);
}

/*
 * The one form a proxy may take: http://HOST:PORT (a trailing "/" is
 * allowed, "http://" may be left out). Credentials in the URL are refused:
 * the URL is kept in the agent's state file and shows in process lists,
 * and curl would use them behind our back (a wrong password was then
 * reported as "no credentials configured"). Parsed by libcurl's own URL
 * parser, so what is checked is what curl would use.
 */
int
httpc_proxy_check(const char *proxy, char *err, size_t errlen)
{
	CURLU *u;
	char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL;
	char *port = NULL, *path = NULL, *query = NULL, *frag = NULL;
	char shown[512];
	int rc = -1;

	httpc_proxy_display(proxy, shown, sizeof(shown));
	if ((u = curl_url()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strstr(proxy, "://") != NULL && strncmp(proxy, "http://", 7) != 0) {
		snprintf(err, errlen,
		         "proxy scheme %.*s:// is not supported: only http:// "
		         "proxies (HTTP CONNECT); give it as http://HOST:PORT",
		         (int)strcspn(proxy, ":"), proxy);
		goto done;
	}
	if (curl_url_set(u, CURLUPART_URL, proxy, CURLU_DEFAULT_SCHEME) !=
	        CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen,
		         "proxy %s: not a URL of the form http://HOST:PORT",
		         shown);
		goto done;
	}
	(void)curl_url_get(u, CURLUPART_USER, &user, 0);
	(void)curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
	(void)curl_url_get(u, CURLUPART_PATH, &path, 0);
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	(void)curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if (user != NULL || pass != NULL || memchr(proxy, '@', strlen(proxy))) {
		snprintf(err, errlen,
		         "proxy %s: credentials in the proxy URL are not "
		         "accepted (the URL is stored in the agent's state and "
		         "shows in process lists); give the URL as "
		         "http://HOST:PORT and the credentials with "
		         "--proxy-user-file FILE (mode 0600)",
		         shown);
		goto done;
	}
	if (port == NULL) {
		snprintf(err, errlen,
		         "proxy %s: no port; give it as http://HOST:PORT "
		         "(e.g. :3128)",
		         shown);
		goto done;
	}
	if ((path != NULL && strcmp(path, "/") != 0) || query != NULL ||
	    frag != NULL) {
		snprintf(err, errlen,
		         "proxy %s: a proxy URL has no path or query; give it "
		         "as http://HOST:PORT",
		         shown);
		goto done;
	}
	rc = 0;
done:
	curl_free(scheme);
	curl_free(user);
	curl_free(pass);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	return rc;
}

static void
proxy_message(const struct httpc_opts *o, struct httpc_call *call, long code,
              const char *origin)
{
	struct httpc_resp *r = call->resp;
	char px[512];
	const char *what;

	httpc_proxy_display(o->proxy, px, sizeof(px));
	if (code == 407 && !call->auth_basic &&
	    (call->auth_ntlm || call->auth_negotiate)) {
		what = call->auth_ntlm && call->auth_negotiate
		           ? "NTLM or Negotiate"
		       : call->auth_ntlm ? "NTLM"
		                         : "Negotiate (Kerberos)";
		seterr(r, HTTPC_ERR_PROXY,
		       "proxy %s: it asks for %s authentication; Vigil agents "
		       "support only Basic proxy authentication or none. "
		       "Configure the proxy to allow Basic for the agents, or "
		       "exempt the center.",
		       px, what);
	} else if (code == 407 && call->auth_basic && o->proxy_user != NULL) {
		seterr(r, HTTPC_ERR_PROXY,
		       "proxy %s refused the credentials (HTTP 407) for the "
		       "tunnel to %s: check the proxy user name and password "
		       "(--proxy-user-file).",
		       px, origin);
	} else if (code == 407 && call->auth_basic) {
		seterr(r, HTTPC_ERR_PROXY,
		       "proxy %s asks for Basic authentication but no proxy "
		       "credentials are configured: give --proxy-user or "
		       "--proxy-user-file.",
		       px);
	} else if (code == 407) {
		seterr(
		    r, HTTPC_ERR_PROXY,
		    "proxy %s asks for an authentication scheme Vigil does "
		    "not support (HTTP 407); only Basic or none is supported. "
		    "Configure the proxy to allow Basic for the agents, or "
		    "exempt the center.",
		    px);
	} else if (code == 403) {
		seterr(
		    r, HTTPC_ERR_PROXY,
		    "proxy %s refused the tunnel to %s (HTTP 403): its access "
		    "rules do not allow CONNECT to that host and port.",
		    px, origin);
	} else if (code == 502 || code == 503 || code == 504) {
		seterr(r, HTTPC_ERR_PROXY,
		       "proxy %s could not reach %s (HTTP %ld): the center is "
		       "down or not reachable from the proxy.",
		       px, origin, code);
	} else {
		seterr(r, HTTPC_ERR_PROXY,
		       "proxy %s refused the tunnel to %s (HTTP %ld).", px,
		       origin, code);
	}
}

/* Sentences for the TLS alerts a center sends about our certificate. */
static const char *
alert_hint(const char *curlmsg)
{
	if (strstr(curlmsg, "revoked") != NULL)
		return "the center has revoked this agent's certificate; "
		       "enroll again";
	if (strstr(curlmsg, "certificate expired") != NULL)
		return "the center says this agent's certificate has expired; "
		       "enroll again";
	if (strstr(curlmsg, "unknown ca") != NULL)
		return "the center does not trust the CA of this agent's "
		       "certificate (enrolled with another center?)";
	if (strstr(curlmsg, "certificate required") != NULL)
		return "the center requires a client certificate";
	if (strstr(curlmsg, "bad certificate") != NULL ||
	    strstr(curlmsg, "certificate unknown") != NULL)
		return "the center refused this agent's certificate";
	return NULL;
}

static void
map_error(const struct httpc_opts *o, struct httpc_call *call, CURLcode rc,
          const char *errbuf, const char *origin, const char *host,
          long timeout)
{
	struct httpc_resp *r = call->resp;
	const char *msg = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
	const char *hint;
	char px[512];

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
		httpc_proxy_display(o->proxy, px, sizeof(px));
		seterr(r, HTTPC_ERR_CONNECT,
		       "proxy %s: cannot resolve its host name (%s)", px, msg);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		seterr(r, HTTPC_ERR_CONNECT,
		       "%s: cannot resolve the host name '%s' (%s)", origin,
		       host, msg);
		break;
	case CURLE_COULDNT_CONNECT:
		if (o->proxy != NULL) {
			httpc_proxy_display(o->proxy, px, sizeof(px));
			seterr(r, HTTPC_ERR_CONNECT,
			       "proxy %s: cannot connect (%s)", px, msg);
		} else {
			seterr(r, HTTPC_ERR_CONNECT,
			       "%s: cannot connect (%s): is the center running "
			       "and the port open from this host?",
			       origin, msg);
		}
		break;
	case CURLE_OPERATION_TIMEDOUT:
		seterr(r, HTTPC_ERR_TIMEOUT,
		       "%s: no complete answer within "
		       "%ld s (%s)",
		       origin, timeout, msg);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		verify_message(o, call, origin, host, msg);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		seterr(r, HTTPC_ERR_TLS, "cannot load the CA file %s (%s)",
		       o->ca_file != NULL ? o->ca_file : "(none)", msg);
		break;
	case CURLE_SSL_CERTPROBLEM:
		seterr(r, HTTPC_ERR_TLS,
		       "cannot load the client certificate "
		       "%s or its key %s (%s)",
		       o->cert_file != NULL ? o->cert_file : "(none)",
		       o->key_file != NULL ? o->key_file : "(none)", msg);
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (call->sink_failed) {
			seterr(r, HTTPC_ERR_OTHER,
			       "%s: cannot write the download: %s", origin,
			       strerror(errno));
			break;
		}
		if (call->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
			seterr(r, HTTPC_ERR_OTHER,
			       "%s: the answer is larger "
			       "than %u bytes; refused",
			       origin, (unsigned)HTTPC_MAX_BODY);
			break;
		}
		seterr(r, HTTPC_ERR_OTHER, "%s: %s", origin, msg);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		seterr(r, HTTPC_ERR_OTHER,
		       "%s: only https:// URLs are "
		       "supported (%s)",
		       origin, msg);
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_SSL_CIPHER:
		hint = alert_hint(msg);
		if (call->vfy.role_why[0] != '\0') {
			verify_message(o, call, origin, host, msg);
		} else if (hint != NULL) {
			seterr(r, HTTPC_ERR_TLS, "%s: %s (%s)", origin, hint,
			       msg);
		} else if (rc == CURLE_SSL_CONNECT_ERROR ||
		           rc == CURLE_SSL_CIPHER) {
			seterr(r, HTTPC_ERR_TLS,
			       "%s: TLS handshake failed "
			       "(%s)",
			       origin, msg);
		} else {
			seterr(r, HTTPC_ERR_CONNECT,
			       "%s: connection broken "
			       "(%s)",
			       origin, msg);
		}
		break;
	default:
		seterr(r, HTTPC_ERR_OTHER, "%s: %s", origin, msg);
		break;
	}
}

/* "https://host:port" of url (for messages) and its host; -1 when url is
 * not an https:// URL. */
static int
split_url(const char *url, char *origin, size_t olen, char *host, size_t hlen)
{
	CURLU *u;
	char *scheme = NULL, *h = NULL, *port = NULL;
	int rc = -1;

	u = curl_url();
	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto fail;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	        CURLUE_OK)
		goto fail;
	if (strcmp(scheme, "https") != 0)
		goto fail;
	snprintf(origin, olen, "%s://%s:%s", scheme, h, port);
	/* curl keeps IPv6 literals bracketed; certificates do not. */
	if (h[0] == '[' && strlen(h) > 2)
		snprintf(host, hlen, "%.*s", (int)strlen(h) - 2, h + 1);
	else
		snprintf(host, hlen, "%s", h);
	rc = 0;
fail:
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static int
has_crlf(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

/* Frees a header list after wiping it: it may hold a bearer token. */
static void
slist_wipe_free(struct curl_slist *l)
{
	struct curl_slist *i;

	for (i = l; i != NULL; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static int
set_method(CURL *c, const char *method, const void *body, size_t len)
{
	CURLcode e = CURLE_OK;

	if (strcmp(method, "GET") == 0 && body == NULL)
		return curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK
		           ? 0
		           : -1;
	if (strcmp(method, "HEAD") == 0)
		return curl_easy_setopt(c, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0
		                                                           : -1;
	if (strcmp(method, "POST") != 0)
		e = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (e == CURLE_OK && (body != NULL || strcmp(method, "POST") == 0)) {
		e = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		                     (curl_off_t)len);
		if (e == CURLE_OK)
			e = curl_easy_setopt(c, CURLOPT_POSTFIELDS,
			                     body != NULL ? body : "");
	}
	return e == CURLE_OK ? 0 : -1;
}

/* Progress callback: aborts the transfer once *flag is set. */
static int
httpc_abort_cb(void *flag, curl_off_t dt, curl_off_t dn, curl_off_t ut,
               curl_off_t un)
{
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return *(const volatile int *)flag != 0;
}

int
httpc_request(const struct httpc_opts *o, const char *method, const char *url,
              const char *ctype, const void *body, size_t len,
              struct httpc_resp *resp)
{
	struct httpc_call call;
	struct curl_slist *hdrs = NULL, *nh;
	struct buf kerr;
	char perr[768];
	CURL *c = NULL;
	CURLcode rc;
	char errbuf[CURL_ERROR_SIZE];
	char origin[512], host[256];
	/* On the stack, not in a growing buf: it may hold the bearer token
	 * and realloc would leave copies behind that nobody wipes. */
	char hline[1024];
	long timeout, status = 0, connect_code = 0;
	int n, ret = -1;

	memset(&call, 0, sizeof(call));
	call.resp = resp;
	call.sink = o->sink;
	buf_init(&kerr, 1024);
	errbuf[0] = '\0';
	resp->status = 0;
	resp->err = HTTPC_OK;
	resp->errmsg[0] = '\0';
	resp->cookie[0] = '\0';
	buf_reset(&resp->body);
	timeout = o->timeout_secs > 0 ? o->timeout_secs : HTTPC_DEFAULT_TIMEOUT;

	if (split_url(url, origin, sizeof(origin), host, sizeof(host)) == -1) {
		seterr(resp, HTTPC_ERR_OTHER, "%s: not an https:// URL", url);
		goto fail;
	}
	if (!o->insecure && o->ca_file == NULL) {
		seterr(resp, HTTPC_ERR_TLS,
		       "%s: no CA file to verify the server with", origin);
		goto fail;
	}
	if (has_crlf(method) || has_crlf(ctype) || has_crlf(o->bearer)) {
		seterr(resp, HTTPC_ERR_OTHER,
		       "%s: line break in a request header", origin);
		goto fail;
	}
	if (o->proxy != NULL &&
	    httpc_proxy_check(o->proxy, perr, sizeof(perr)) == -1) {
		seterr(resp, HTTPC_ERR_PROXY, "%s", perr);
		goto fail;
	}
	/* Refuse keys others can read, like every Vigil program. */
	if (o->key_file != NULL && tls_check_key_perms(o->key_file, &kerr)) {
		seterr(resp, HTTPC_ERR_TLS, "%s", buf_cstr(&kerr));
		goto fail;
	}
	if (httpc_ex_idx < 0 && httpc_global_init() == -1) {
		seterr(resp, HTTPC_ERR_OTHER, "libcurl initialisation failed");
		goto fail;
	}
	if ((c = curl_easy_init()) == NULL)
		goto nomem;

	n = snprintf(hline, sizeof(hline), "Content-Type: %s",
	             ctype != NULL ? ctype : "application/json");
	if (n < 0 || (size_t)n >= sizeof(hline))
		goto toolong;
	if ((nh = curl_slist_append(hdrs, hline)) == NULL)
		goto nomem;
	hdrs = nh;
	/* No 100-continue round trip: the center answers at once. */
	if ((nh = curl_slist_append(hdrs, "Expect:")) == NULL)
		goto nomem;
	hdrs = nh;
	for (n = 0; o->headers != NULL && o->headers[n] != NULL; n++) {
		if (has_crlf(o->headers[n])) {
			seterr(resp, HTTPC_ERR_OTHER,
			       "%s: line break in a request header", origin);
			goto fail;
		}
		if ((nh = curl_slist_append(hdrs, o->headers[n])) == NULL)
			goto nomem;
		hdrs = nh;
	}
	if (o->bearer != NULL) {
		n = snprintf(hline, sizeof(hline), "Authorization: Bearer %s",
		             o->bearer);
		if (n < 0 || (size_t)n >= sizeof(hline))
			goto toolong;
		if ((nh = curl_slist_append(hdrs, hline)) == NULL)
			goto nomem;
		hdrs = nh;
	}

	rc = CURLE_OK;
#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(c, opt, val);                    \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	if (httpc_share != NULL)
		SET(CURLOPT_SHARE, httpc_share);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_USERAGENT, "vigil/" VIGIL_VERSION);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_TIMEOUT, timeout);
	SET(CURLOPT_CONNECTTIMEOUT, timeout < HTTPC_CONNECT_TIMEOUT
	                                ? timeout
	                                : (long)HTTPC_CONNECT_TIMEOUT);
	if (o->sink == NULL)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTPC_MAX_BODY);
	if (o->abort_flag != NULL) {
		SET(CURLOPT_NOPROGRESS, 0L);
		SET(CURLOPT_XFERINFOFUNCTION, httpc_abort_cb);
		SET(CURLOPT_XFERINFODATA, (void *)o->abort_flag);
	}
	SET(CURLOPT_WRITEFUNCTION, httpc_write_cb);
	SET(CURLOPT_WRITEDATA, &call);
	SET(CURLOPT_HEADERFUNCTION, httpc_header_cb);
	SET(CURLOPT_HEADERDATA, &call);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	/* Never the system store: Debian's libcurl has a CAPATH built in. */
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_CAINFO, o->ca_file);
	SET(CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	SET(CURLOPT_SSL_CTX_FUNCTION, httpc_sslctx_cb);
	SET(CURLOPT_SSL_CTX_DATA, &call.vfy);
	call.vfy.roles = o->insecure ? 0 : o->server_roles;
	call.vfy.what = o->server_what;
	if (o->cert_file != NULL) {
		SET(CURLOPT_SSLCERT, o->cert_file);
		SET(CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (o->key_file != NULL) {
		SET(CURLOPT_SSLKEY, o->key_file);
		SET(CURLOPT_SSLKEYTYPE, "PEM");
	}
	/* "" disables proxies, the environment's included; NOPROXY "" makes
	 * no_proxy in the environment irrelevant too. */
	SET(CURLOPT_PROXY, o->proxy != NULL ? o->proxy : "");
	SET(CURLOPT_NOPROXY, "");
	if (o->proxy != NULL) {
		SET(CURLOPT_HTTPPROXYTUNNEL, 1L);
		SET(CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
		if (o->proxy_user != NULL)
			SET(CURLOPT_PROXYUSERPWD, o->proxy_user);
	}
#undef SET
	if (rc != CURLE_OK || set_method(c, method, body, len) == -1) {
		seterr(resp, HTTPC_ERR_OTHER,
		       "%s: libcurl refused an option (%s)", origin,
		       curl_easy_strerror(rc));
		goto fail;
	}

	rc = curl_easy_perform(c);
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &connect_code);
	if (o->proxy != NULL && connect_code != 0 &&
	    (connect_code < 200 || connect_code > 299)) {
		/* The tunnel was never opened: whatever libcurl returned,
		 * the proxy's answer is the story. */
		proxy_message(o, &call, connect_code, origin);
		goto fail;
	}
	if (rc != CURLE_OK) {
		map_error(o, &call, rc, errbuf, origin, host, timeout);
		goto fail;
	}
	resp->status = status;
	ret = 0;
fail:
	if (ret == -1)
		buf_reset(&resp->body);
	if (c != NULL)
		curl_easy_cleanup(c);
	slist_wipe_free(hdrs);
	explicit_bzero(hline, sizeof(hline));
	buf_free(&kerr);
	X509_free(call.vfy.leaf);
	X509_free(call.vfy.failed_at);
	return ret;
nomem:
	seterr(resp, HTTPC_ERR_OTHER, "out of memory");
	goto fail;
toolong:
	seterr(resp, HTTPC_ERR_OTHER, "%s: request header too long", origin);
	goto fail;
}

int
httpc_urlenc(struct buf *b, const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	int rc;

	if (e == NULL)
		return -1;
	rc = buf_puts(b, e);
	curl_free(e);
	return rc;
}
