/*
 * httpc: the HTTPS client of the agent and vigilctl, on libcurl. It trusts
 * only the given CA file (never the system store or environment proxies),
 * presents an optional client certificate, goes through an optional HTTP
 * CONNECT proxy with Basic auth or none, and turns every failure into one
 * readable sentence: for a certificate that does not verify it names the
 * issuer it was shown, the CA it expected, and says that TLS interception is
 * not supported; for a proxy that wants NTLM or Negotiate it says that only
 * Basic is supported.
 */
#ifndef VIGIL_HTTPC_H
#define VIGIL_HTTPC_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

struct httpc_opts {
	const char *ca_file;        /* pinned CA; required unless insecure */
	const char *cert_file;      /* client certificate (PEM) or NULL */
	const char *key_file;       /* its key (0600) or NULL */
	const char *proxy;          /* "http://host:port" or NULL for direct */
	const char *proxy_user;     /* "user:password" for Basic, or NULL */
	const char *bearer;         /* Authorization: Bearer <token>, or NULL */
	const char *const *headers; /* more "Name: value" lines, NULL-ended,
	                               or NULL (e.g. Cookie, X-CSRF-Token) */
	long timeout_secs;          /* whole request; 0 = 30 */
	/* When set and nonzero during the transfer, the request is aborted
	 * (HTTPC_ERR_OTHER, "aborted"): lets a thread in a long poll stop. */
	const volatile int *abort_flag;
	int insecure; /* skip verification: ONLY to fetch a CA that
	                 the caller then checks by fingerprint */
	/* When set, the body of a 2xx response is written here as it
	 * arrives (no size cap; resp->body stays empty); other responses
	 * are read into resp->body as usual. */
	FILE *sink;
	/* When nonzero: the roles (PKI_ROLE_BIT, pki.h) the server's
	 * certificate may carry, e.g. a center's for an agent; another role
	 * fails the handshake (HTTPC_ERR_TLS_VERIFY) naming the role found.
	 * server_what names the peer expected in that message. */
	unsigned server_roles;
	const char *server_what;
};

enum httpc_err {
	HTTPC_OK = 0,
	HTTPC_ERR_CONNECT,    /* refused, unreachable, DNS */
	HTTPC_ERR_TLS_VERIFY, /* server certificate did not verify */
	HTTPC_ERR_TLS,        /* other TLS failure (e.g. client cert refused) */
	HTTPC_ERR_PROXY,      /* proxy refused / wants unsupported auth */
	HTTPC_ERR_TIMEOUT,
	HTTPC_ERR_OTHER,
};

struct httpc_resp {
	long status;     /* HTTP status, 0 if no response */
	struct buf body; /* response body (capped at 16 MiB) */
	enum httpc_err err;
	char errmsg[1024];     /* readable message when err != HTTPC_OK */
	char cookie[512];      /* "name=value" of the response's first
	                          Set-Cookie, "" when none or too long */
	long long retry_after; /* its Retry-After in seconds (the number
	                          form, 0 to 86400), -1 when none */
};

/* 0 when proxy has the one accepted form, http://HOST:PORT (no
 * credentials, no path); else -1 with a sentence in err that never
 * contains a password. */
int httpc_proxy_check(const char *proxy, char *err, size_t errlen);
/* The proxy as "http://host:port", credentials removed, for messages. */
void httpc_proxy_display(const char *proxy, char *out, size_t outlen);

/* Appends s percent-encoded (RFC 3986 unreserved characters kept) for a
 * query value or a path segment; -1 on allocation failure or past the
 * buffer's cap. */
int httpc_urlenc(struct buf *b, const char *s);

int httpc_global_init(void);
void httpc_global_cleanup(void);
void httpc_resp_init(struct httpc_resp *r);
void httpc_resp_free(struct httpc_resp *r);
/*
 * One request. body may be NULL. ctype defaults to application/json.
 * Returns 0 when a response was received (any status), -1 otherwise with
 * resp->err and resp->errmsg set.
 */
int httpc_request(const struct httpc_opts *o, const char *method,
                  const char *url, const char *ctype, const void *body,
                  size_t len, struct httpc_resp *resp);

#endif
