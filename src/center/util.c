/*
 * util.c: small helpers of vigild: random identifiers and tokens from the
 * OpenSSL CSPRNG, SHA-256 in hex (how tokens and API keys are stored), and
 * host facts as JSON.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <uuid/uuid.h>

#include "center.h"
#include "enroll.h"
#include "tls.h"

void
random_uuid(char out[37])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

void
random_hex(char *out, size_t nbytes)
{
	uint8_t b[64];

	if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
		fatalx("%s: RAND_bytes failed", __func__);
	hex_encode(b, nbytes, out);
	explicit_bzero(b, sizeof(b));
}

void
sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned int mdlen = sizeof(md);

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		fatalx("%s: EVP_Digest failed", __func__);
	hex_encode(md, sizeof(md), out);
}

json_t *
strs_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *
facts_to_json(const void *p)
{
	const struct host_facts *f = p;
	json_t *o = json_object();

#define SET(k)                                                                 \
	json_object_set_new(o, #k, f->k ? json_string(f->k) : json_null())
	SET(hostname);
	SET(fqdn);
	SET(os);
	SET(kernel);
	SET(arch);
	SET(machine_id);
	SET(agent_version);
#undef SET
	json_object_set_new(o, "ips", strs_json(f->ips, f->nips));
	json_object_set_new(o, "macs", strs_json(f->macs, f->nmacs));
	return o;
}

char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* What the gateway reads from a client certificate on every request (its
 * agent id, its expiry), read once per certificate object: it lives as
 * long as its connection (or its TLS session). */
struct peer_info {
	long long not_after;
	char cn[];
};

static int peer_index = -1;

static void
peer_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
               void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* NULL when x has no usable CN (or no memory): callers then read x. */
static const struct peer_info *
peer_info(X509 *x)
{
	struct peer_info *pi;
	char *cn;
	size_t n;

	if (x == NULL)
		return NULL;
	if (peer_index == -1)
		peer_index =
		    X509_get_ex_new_index(0, NULL, NULL, NULL, peer_info_free);
	if (peer_index == -1)
		return NULL;
	if ((pi = X509_get_ex_data(x, peer_index)) != NULL)
		return pi;
	if ((cn = tls_subject_cn(x)) == NULL)
		return NULL;
	n = strlen(cn) + 1;
	if ((pi = malloc(sizeof(*pi) + n)) != NULL) {
		pi->not_after = tls_not_after(x);
		memcpy(pi->cn, cn, n);
		if (X509_set_ex_data(x, peer_index, pi) != 1) {
			free(pi);
			pi = NULL;
		}
	}
	free(cn);
	return pi;
}

static char *
peer_cn(X509 *x)
{
	const struct peer_info *pi = peer_info(x);

	return pi != NULL ? strdup(pi->cn) : tls_subject_cn(x);
}

long long
peer_not_after(X509 *x)
{
	const struct peer_info *pi = peer_info(x);

	return pi != NULL ? pi->not_after : tls_not_after(x);
}

char *
peer_agent_id(struct http_req *r)
{
	char *cn = peer_cn(r->peer);

	if (cn == NULL)
		http_reply_error(r, 403, "bad_certificate",
		                 "client certificate has no subject CN");
	return cn;
}
