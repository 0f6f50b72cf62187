/*
 * auth.c: who may ask vigil-inteld what. Every route names a role; this
 * authorizer runs before any handler (http_server_set_authorizer). A
 * request proves itself with an API key (Authorization: Bearer KEY or
 * X-API-Key: KEY), whose SHA-256 is compared in constant time with the
 * configured ones (the config holds hashes, never keys), or with a client
 * certificate from the deployment CA (verified during the handshake). A
 * certificate's role (pki_cert_role, docs/pki.md) decides: intel, update
 * and master may administer, center and scand may look up, any other role
 * (agents included: they ask their center) is refused. A certificate
 * without a role (issued before roles existed, or by hand) gets [https]
 * cert_role, except that an agent certificate of that age (O=Vigil Agent)
 * is refused like any agent's.
 * Keys are random and long, so one SHA-256 is enough: there is nothing to
 * guess from the hash.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <openssl/x509.h>

#include "inteld.h"
#include "pki.h"
#include "tls.h"

#define I(r) REQ_D(r)

static int
add_key(const char *tok, size_t n, const char *where, struct inteld_key **keys,
        size_t *nk, struct buf *err)
{
	const char *c1, *c2;
	struct inteld_key k, *nkeys;
	size_t i;

	memset(&k, 0, sizeof(k));
	c1 = memchr(tok, ':', n);
	c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - tok)) : NULL;
	if (c2 == NULL || c1 == tok || (size_t)(c1 - tok) >= sizeof(k.name) ||
	    !str_name_ok(tok, (size_t)(c1 - tok), 64)) {
		buf_printf(err, "%s: a key is not NAME:ROLE:SHA256\n", where);
		return -1;
	}
	memcpy(k.name, tok, (size_t)(c1 - tok));
	if (c2 - c1 - 1 == 6 && strncmp(c1 + 1, "lookup", 6) == 0)
		k.role = ROLE_LOOKUP;
	else if (c2 - c1 - 1 == 5 && strncmp(c1 + 1, "admin", 5) == 0)
		k.role = ROLE_ADMIN;
	else {
		buf_printf(err, "%s: key %s: the role is lookup or admin\n",
		           where, k.name);
		return -1;
	}
	if (tok + n - (c2 + 1) != 64) {
		buf_printf(err,
		           "%s: key %s: not a SHA-256 in hex (64 digits; "
		           "printf %%s KEY | sha256sum)\n",
		           where, k.name);
		return -1;
	}
	for (i = 0; i < 32; i++) {
		int hi = hex_value((unsigned char)c2[1 + 2 * i]),
		    lo = hex_value((unsigned char)c2[2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			buf_printf(err, "%s: key %s: not a SHA-256 in hex\n",
			           where, k.name);
			return -1;
		}
		k.hash[i] = (unsigned char)(hi * 16 + lo);
	}
	if ((nkeys = realloc(*keys, (*nk + 1) * sizeof(k))) == NULL) {
		buf_printf(err, "out of memory\n");
		return -1;
	}
	*keys = nkeys;
	(*keys)[(*nk)++] = k;
	return 0;
}

static int
add_keys(const char *text, size_t len, const char *where,
         struct inteld_key **keys, size_t *nk, struct buf *err)
{
	size_t i = 0;
	int rc = 0;

	while (i < len) {
		size_t j;

		if (isspace((unsigned char)text[i])) {
			i++;
			continue;
		}
		if (text[i] == '#') {
			while (i < len && text[i] != '\n')
				i++;
			continue;
		}
		for (j = i; j < len && !isspace((unsigned char)text[j]); j++)
			;
		if (add_key(text + i, j - i, where, keys, nk, err) == -1)
			rc = -1;
		i = j;
	}
	return rc;
}

int
inteld_keys_load(const struct inteld_conf *c, struct inteld_key **keys,
                 size_t *n, struct buf *err)
{
	struct buf f;
	int rc = 0;

	*keys = NULL;
	*n = 0;
	if (c->keys != NULL && add_keys(c->keys, strlen(c->keys), "[auth] keys",
	                                keys, n, err) == -1)
		rc = -1;
	if (c->keys_file != NULL) {
		buf_init(&f, 1 << 20);
		if (tls_read_file(c->keys_file, 1 << 20, &f, err) == -1)
			rc = -1;
		else if (add_keys(buf_cstr(&f), f.len, c->keys_file, keys, n,
		                  err) == -1)
			rc = -1;
		buf_free(&f);
	}
	if (rc == -1) {
		free(*keys);
		*keys = NULL;
		*n = 0;
	}
	return rc;
}

/* 1 when x's subject has O=Vigil Agent: what agent certificates carried
 * before the role extension. */
static int
legacy_agent(X509 *x)
{
	X509_NAME *n = X509_get_subject_name(x);
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(n, NID_organizationName, i)) >=
	       0) {
		ASN1_STRING *v =
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));

		if (ASN1_STRING_length(v) == 11 &&
		    memcmp(ASN1_STRING_get0_data(v), "Vigil Agent", 11) == 0)
			return 1;
	}
	return 0;
}

/* Agents ask their center (POST /v1/reputation), which asks here. Their
 * certificates are refused: vigil-inteld does not see the revocations
 * made on the center, so a revoked agent must not reach it directly. */
#define AGENT_REFUSED                                                          \
	"agent certificates may not call vigil-inteld: agents ask their "      \
	"center (POST /v1/reputation), and revocations are only known there"

/*
 * What a certificate may do here: ROLE_ADMIN, ROLE_LOOKUP, or -1 (refused,
 * with the reason in why). The table is docs/pki.md's, "Who accepts whom".
 */
int
inteld_cert_role(X509 *x, int cert_role, const char **why)
{
	int role = pki_cert_role(x);

	*why = NULL;
	switch (role) {
	case PKI_ROLE_INTEL:
	case PKI_ROLE_UPDATE:
	case PKI_ROLE_MASTER:
		return ROLE_ADMIN;
	case PKI_ROLE_CENTER:
	case PKI_ROLE_SCAND:
		return ROLE_LOOKUP;
	case PKI_ROLE_AGENT:
		*why = AGENT_REFUSED;
		return -1;
	case PKI_ROLE_NONE:
		if (legacy_agent(x)) {
			*why = AGENT_REFUSED;
			return -1;
		}
		return cert_role == 1 ? ROLE_ADMIN : ROLE_LOOKUP;
	case PKI_ROLE_BAD:
		*why = "the certificate's role (subjectAltName "
		       "urn:vigil:role:) is malformed or repeated";
		return -1;
	default:
		*why = "a certificate of this role may not call vigil-inteld "
		       "(lookups: center, scand; admin: intel, update, "
		       "master)";
		return -1;
	}
}

/* The key the request carries, or NULL. */
static const char *
req_key(struct http_req *r)
{
	const char *a = http_req_header(r, "Authorization");

	if (a != NULL && strncasecmp(a, "Bearer ", 7) == 0)
		return a + 7;
	return http_req_header(r, "X-API-Key");
}

int
inteld_authorize(struct http_req *r)
{
	struct inteld *d = I(r);
	const char *key;
	int role = -1;

	if (r->route->role == ROLE_PUBLIC)
		return 0;
	if ((key = req_key(r)) != NULL) {
		unsigned char h[32];
		unsigned int hl;
		size_t i;

		EVP_Digest(key, strlen(key), h, &hl, EVP_sha256(), NULL);
		/* Every key is compared: the time does not tell which. */
		pthread_rwlock_rdlock(&d->lock);
		for (i = 0; i < d->nkeys; i++)
			if (CRYPTO_memcmp(h, d->keys[i].hash, 32) == 0 &&
			    role == -1) {
				role = d->keys[i].role;
				snprintf(r->who, sizeof(r->who), "key:%s",
				         d->keys[i].name);
			}
		pthread_rwlock_unlock(&d->lock);
		if (role == -1) {
			http_reply_error(r, 401, "unauthorized",
			                 "unknown API key");
			return -1;
		}
	} else if (r->peer != NULL) {
		char *cn = tls_subject_cn(r->peer);
		const char *why;
		int prole = pki_cert_role(r->peer);

		role = inteld_cert_role(
		    r->peer,
		    __atomic_load_n(&d->conf.cert_role, __ATOMIC_RELAXED),
		    &why);
		snprintf(r->who, sizeof(r->who), "cert:%s%s%s", cn ? cn : "?",
		         pki_role_name(prole) != NULL ? "/" : "",
		         pki_role_name(prole) != NULL ? pki_role_name(prole)
		                                      : "");
		free(cn);
		if (role == -1) {
			log_warnx("auth: %s refused: %s", r->who, why);
			http_reply_error(r, 403, "forbidden", "%s", why);
			return -1;
		}
	} else {
		http_reply_error(r, 401, "unauthorized",
		                 "an API key (Authorization: Bearer KEY) or a "
		                 "client certificate from the deployment CA is "
		                 "needed");
		return -1;
	}
	if (role > r->route->role) {
		http_reply_error(r, 403, "forbidden",
		                 r->peer != NULL && req_key(r) == NULL
		                     ? "this needs the admin role (a "
		                       "certificate of role intel, update or "
		                       "master)"
		                     : "this needs the admin role");
		return -1;
	}
	r->role = role;
	return 0;
}
