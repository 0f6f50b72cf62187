/*
 * pki: the deployment's certificate authority (see pki.h). Everything is
 * ECDSA P-256 with SHA-256 signatures: small keys, fast handshakes, and one
 * algorithm to reason about. The CA decides every field of what it signs:
 * from a CSR only the public key is taken (after checking the CSR's
 * signature proves possession of the private key); the subject and all
 * extensions come from here, so an agent cannot ask for CA:TRUE, a server
 * EKU or somebody else's name.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "tls.h"

/* Bounds on requested lifetimes: a typo of an extra digit or a negative
 * value is refused rather than producing a certificate nobody meant. */
#define PKI_MAX_DAYS 36500LL

EVP_PKEY *
pki_genkey(void)
{
	/* Named-curve encoding is OpenSSL 3's default, which is what every
	 * TLS peer expects. */
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (k == NULL)
		ERR_clear_error();
	return k;
}

/* 1 when k is an EC key on P-256. */
static int
is_p256(EVP_PKEY *k)
{
	char group[64];
	size_t len = 0;
	int nid;

	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		return 0;
	if (EVP_PKEY_get_group_name(k, group, sizeof(group), &len) != 1) {
		ERR_clear_error();
		return 0;
	}
	if ((nid = OBJ_sn2nid(group)) == NID_undef)
		nid = EC_curve_nist2nid(group);
	return nid == NID_X9_62_prime256v1;
}

/* Random positive 128-bit serial (RFC 5280 allows up to 20 octets). */
static int
set_serial(X509 *x)
{
	unsigned char rnd[16];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn = NULL;
	int rc = -1;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	/* Top bit clear keeps the DER integer positive without a pad byte;
	 * the next bit set keeps it non-zero and always 16 octets long. */
	rnd[0] = (unsigned char)((rnd[0] & 0x7f) | 0x40);
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL)
		goto fail;
	if ((ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto fail;
	if (X509_set_serialNumber(x, ai) != 1)
		goto fail;
	rc = 0;
fail:
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

static int
add_name_entry(X509_NAME *n, const char *field, const char *value)
{
	return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
	                                  (const unsigned char *)value, -1, -1,
	                                  0) == 1
	           ? 0
	           : -1;
}

/*
 * A certificate with everything but extensions and signature: v3, random
 * serial, subject, issuer (subject when ca is NULL), public key, validity
 * [now - skew, now - skew + secs - 1 s] (secs in all, backdate included)
 * for a day or more, [now - skew, now + secs] for shorter test lifetimes.
 */
static X509 *
new_cert(X509_NAME *subject, X509 *ca, EVP_PKEY *pub, long long secs)
{
	X509 *x;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x) == -1)
		goto fail;
	if (X509_set_subject_name(x, subject) != 1)
		goto fail;
	if (X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca)
	                                       : subject) != 1)
		goto fail;
	if (X509_set_pubkey(x, pub) != 1)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -PKI_SKEW_SECS) == NULL)
		goto fail;
	/* A lifetime of a day or more is the whole period, backdate
	 * included, notBefore through notAfter inclusive (RFC 5280): an
	 * 825-day server certificate is then one that clients capping
	 * validity at 825 days (Apple's rule) accept. */
	if (secs >= 86400)
		secs -= PKI_SKEW_SECS + 1;
	if (X509_time_adj_ex(X509_getm_notAfter(x), (int)(secs / 86400),
	                     (long)(secs % 86400), NULL) == NULL)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* One extension from its OpenSSL config-syntax value. Only fixed strings
 * from this file go through here: names never do (they could carry a ','
 * and smuggle in another entry), see add_san(). */
static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int rc;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

/* Extensions every certificate gets; ku/eku/bc are config values. */
static int
add_std_exts(X509 *x, X509 *issuer, const char *bc, const char *ku,
             const char *eku)
{
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, bc) == -1 ||
	    add_ext(x, &ctx, NID_key_usage, ku) == -1)
		return -1;
	if (eku != NULL && add_ext(x, &ctx, NID_ext_key_usage, eku) == -1)
		return -1;
	/* SKI before AKI: for the self-signed CA the AKI is taken from it. */
	if (add_ext(x, &ctx, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ==
	        -1)
		return -1;
	return 0;
}

/* A DNS name we are willing to put in a certificate: LDH labels. The ctl
 * validates more strictly and explains; this is the library's backstop. */
static int
dns_name_ok(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* Adds one SAN entry, IP when name parses as an address, else DNS. Built
 * as ASN.1 directly so no name is ever interpreted as config syntax. */
static int
push_san(GENERAL_NAMES *gens, const char *name)
{
	unsigned char addr[16];
	GENERAL_NAME *gen = NULL;
	ASN1_OCTET_STRING *ip = NULL;
	ASN1_IA5STRING *dns = NULL;
	int len = 0;

	if (inet_pton(AF_INET, name, addr) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, name, addr) == 1)
		len = 16;
	if ((gen = GENERAL_NAME_new()) == NULL)
		goto fail;
	if (len > 0) {
		if ((ip = ASN1_OCTET_STRING_new()) == NULL ||
		    ASN1_OCTET_STRING_set(ip, addr, len) != 1)
			goto fail;
		GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
		ip = NULL;
	} else {
		if (!dns_name_ok(name))
			goto fail;
		if ((dns = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(dns, name, -1) != 1)
			goto fail;
		GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
		dns = NULL;
	}
	if (sk_GENERAL_NAME_push(gens, gen) == 0)
		goto fail;
	return 0;
fail:
	ASN1_OCTET_STRING_free(ip);
	ASN1_IA5STRING_free(dns);
	GENERAL_NAME_free(gen);
	return -1;
}

static const char *const role_names[] = {
    NULL, "center", "scand", "intel", "update", "master", "collector", "agent",
};
#define NROLES (sizeof(role_names) / sizeof(role_names[0]))

const char *
pki_role_name(int role)
{
	return role > 0 && (size_t)role < NROLES ? role_names[role] : NULL;
}

int
pki_role_from_name(const char *s)
{
	for (size_t i = 1; s != NULL && i < NROLES; i++)
		if (strcmp(s, role_names[i]) == 0)
			return (int)i;
	return PKI_ROLE_BAD;
}

/*
 * The role is a URI in the subjectAltName, urn:vigil:role:NAME (the way
 * SPIFFE carries workload identities): every X.509 parser reads it, while
 * a private extension under 2.25 (a UUID arc) made Go and older Python
 * cryptography refuse the whole certificate. Hostname checks look at DNS
 * and IP names only, so the URI changes nothing for them. Added to the
 * certificate's SAN, or as its only name when it has none (agents).
 */
static int
add_role(X509 *x, int role)
{
	const char *name = pki_role_name(role);
	GENERAL_NAMES *gens;
	GENERAL_NAME *gen = NULL;
	ASN1_IA5STRING *uri = NULL;
	char buf[64];
	int crit = 0, rc = -1;

	if (name == NULL)
		return -1;
	snprintf(buf, sizeof(buf), "%s%s", PKI_ROLE_URI, name);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL && crit != -1) /* -1: none yet */
		goto fail;
	if (gens == NULL && (gens = sk_GENERAL_NAME_new_null()) == NULL)
		goto fail;
	if ((gen = GENERAL_NAME_new()) == NULL ||
	    (uri = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(uri, buf, -1) != 1)
		goto fail;
	GENERAL_NAME_set0_value(gen, GEN_URI, uri);
	uri = NULL;
	if (sk_GENERAL_NAME_push(gens, gen) == 0)
		goto fail;
	gen = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, crit > 0,
	                      X509V3_ADD_REPLACE) != 1)
		goto fail;
	rc = 0;
fail:
	GENERAL_NAME_free(gen);
	ASN1_IA5STRING_free(uri);
	GENERAL_NAMES_free(gens);
	return rc;
}

int
pki_cert_role(X509 *x)
{
	GENERAL_NAMES *gens;
	int crit = 0, role = PKI_ROLE_NONE, n = 0;
	size_t plen = strlen(PKI_ROLE_URI);

	if (x == NULL)
		return PKI_ROLE_BAD;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		ERR_clear_error();
		/* -1: no SAN, no role; -2: two SAN extensions; else a SAN
		 * that does not parse. */
		return crit == -1 ? PKI_ROLE_NONE : PKI_ROLE_BAD;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *u;
		const char *v;
		int len;

		if (g->type != GEN_URI)
			continue;
		u = g->d.uniformResourceIdentifier;
		v = (const char *)ASN1_STRING_get0_data(u);
		len = ASN1_STRING_length(u);
		if ((size_t)len < plen ||
		    strncasecmp(v, PKI_ROLE_URI, plen) != 0)
			continue;
		/* Two roles would leave the answer to whichever a reader
		 * looks at first: refused. */
		if (n++ > 0) {
			role = PKI_ROLE_BAD;
			break;
		}
		role = PKI_ROLE_BAD;
		for (size_t k = 1; k < NROLES; k++)
			if ((size_t)len - plen == strlen(role_names[k]) &&
			    memcmp(v + plen, role_names[k],
			           (size_t)len - plen) == 0)
				role = (int)k;
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return role;
}

int
pki_role_allowed(X509 *x, unsigned mask, const char *service, struct buf *err)
{
	int role = pki_cert_role(x), n = 0;

	if (role != PKI_ROLE_BAD && (mask & PKI_ROLE_BIT(role)))
		return 0;
	if (role == PKI_ROLE_BAD)
		buf_printf(err,
		           "the certificate's role (subjectAltName %s) is "
		           "malformed or repeated; %s accepts ",
		           PKI_ROLE_URI, service);
	else if (role == PKI_ROLE_NONE)
		buf_printf(err,
		           "the certificate names no role (no subjectAltName "
		           "%s); %s accepts ",
		           PKI_ROLE_URI, service);
	else
		buf_printf(err,
		           "a certificate of role %s may not be used "
		           "here; %s accepts ",
		           role_names[role], service);
	for (size_t k = 1; k < NROLES; k++)
		if (mask & PKI_ROLE_BIT(k))
			buf_printf(err, "%s%s", n++ ? ", " : "", role_names[k]);
	if (n == 0)
		buf_puts(err, "no role");
	buf_puts(err, n == 1 ? " certificates only" : " certificates");
	if (mask & PKI_ROLE_BIT(PKI_ROLE_NONE))
		buf_puts(err, " (and certificates without a role)");
	return -1;
}

int
pki_check_cert_role(const char *path, unsigned mask, const char *service,
                    struct buf *err)
{
	X509 *x = tls_load_cert(path, err);
	struct buf why;
	int rc;

	if (x == NULL)
		return -1;
	buf_init(&why, 1024);
	if ((rc = pki_role_allowed(x, mask, service, &why)) == -1)
		buf_printf(err, "%s: %s", path, buf_cstr(&why));
	buf_free(&why);
	X509_free(x);
	return rc;
}

X509 *
pki_issue_role(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key, int role, int usage,
               const char *name, const char *const *sans, size_t nsans,
               long long days)
{
	GENERAL_NAMES *gens = NULL;
	X509_NAME *subj = NULL;
	X509 *x = NULL;
	const char *eku;

	if (ca == NULL || cakey == NULL || key == NULL || name == NULL ||
	    pki_role_name(role) == NULL || days < 1 || days > PKI_MAX_DAYS ||
	    (nsans > 0 && sans == NULL))
		goto fail;
	if (usage == (PKI_USE_SERVER | PKI_USE_CLIENT))
		eku = "serverAuth,clientAuth";
	else if (usage == PKI_USE_SERVER)
		eku = "serverAuth";
	else if (usage == PKI_USE_CLIENT)
		eku = "clientAuth";
	else
		goto fail;
	if (pki_key_matches(ca, cakey) != 1)
		goto fail;
	if ((subj = X509_NAME_new()) == NULL ||
	    add_name_entry(subj, "O", "Vigil") == -1 ||
	    (strlen(name) <= 64 && add_name_entry(subj, "CN", name) == -1))
		goto fail;
	if ((x = new_cert(subj, ca, key, days * 86400)) == NULL)
		goto fail;
	if (add_std_exts(x, ca, "critical,CA:FALSE",
	                 "critical,digitalSignature", eku) == -1)
		goto fail;
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL ||
	    push_san(gens, name) == -1)
		goto fail;
	for (size_t i = 0; i < nsans; i++)
		if (sans[i] == NULL || push_san(gens, sans[i]) == -1)
			goto fail;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	                      X509V3_ADD_DEFAULT) != 1)
		goto fail;
	if (add_role(x, role) == -1)
		goto fail;
	if (X509_sign(x, cakey, EVP_sha256()) <= 0)
		goto fail;
	GENERAL_NAMES_free(gens);
	X509_NAME_free(subj);
	return x;
fail:
	ERR_clear_error();
	GENERAL_NAMES_free(gens);
	X509_NAME_free(subj);
	X509_free(x);
	return NULL;
}

X509 *
pki_make_ca(EVP_PKEY *key, const char *cn, long long days)
{
	X509_NAME *name = NULL;
	X509 *x = NULL;

	if (key == NULL || cn == NULL || *cn == '\0' || days < 1 ||
	    days > PKI_MAX_DAYS)
		goto fail;
	/* O first so the RFC 2253 form reads "CN=...,O=Vigil". */
	if ((name = X509_NAME_new()) == NULL ||
	    add_name_entry(name, "O", "Vigil") == -1 ||
	    add_name_entry(name, "CN", cn) == -1)
		goto fail;
	if ((x = new_cert(name, NULL, key, days * 86400)) == NULL)
		goto fail;
	/* pathlen:0: the CA signs leaf certificates only, never another CA. */
	if (add_std_exts(x, x, "critical,CA:TRUE,pathlen:0",
	                 "critical,keyCertSign,cRLSign", NULL) == -1)
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	return x;
fail:
	ERR_clear_error();
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

X509 *
pki_make_server_cert(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key, const char *fqdn,
                     const char *const *sans, size_t nsans, long long days)
{
	GENERAL_NAMES *gens = NULL;
	X509_NAME *name = NULL;
	X509 *x = NULL;

	if (ca == NULL || cakey == NULL || key == NULL || fqdn == NULL ||
	    days < 1 || days > PKI_MAX_DAYS || (nsans > 0 && sans == NULL))
		goto fail;
	if (pki_key_matches(ca, cakey) != 1)
		goto fail;
	if ((name = X509_NAME_new()) == NULL)
		goto fail;
	/* X.509 caps a CN at 64 characters while a DNS name may have 253; a
	 * longer name goes in the SAN only, which is all that peers check. */
	if (strlen(fqdn) <= 64 && add_name_entry(name, "CN", fqdn) == -1)
		goto fail;
	if ((x = new_cert(name, ca, key, days * 86400)) == NULL)
		goto fail;
	if (add_std_exts(x, ca, "critical,CA:FALSE",
	                 "critical,digitalSignature", "serverAuth") == -1)
		goto fail;
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL ||
	    push_san(gens, fqdn) == -1)
		goto fail;
	for (size_t i = 0; i < nsans; i++)
		if (sans[i] == NULL || push_san(gens, sans[i]) == -1)
			goto fail;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	                      X509V3_ADD_DEFAULT) != 1)
		goto fail;
	if (add_role(x, PKI_ROLE_CENTER) == -1)
		goto fail;
	if (X509_sign(x, cakey, EVP_sha256()) <= 0)
		goto fail;
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	return x;
fail:
	ERR_clear_error();
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

int
pki_check_csr(X509_REQ *csr, struct buf *err)
{
	EVP_PKEY *k;
	const char *type;
	int id;

	if (csr == NULL || (k = X509_REQ_get0_pubkey(csr)) == NULL) {
		ERR_clear_error();
		buf_puts(err, "CSR has no usable public key");
		return -1;
	}
	/* The key type first: the clearer message when an agent was set up
	 * with a key of its own choosing. */
	if (!is_p256(k)) {
		id = EVP_PKEY_get_base_id(k);
		if (id == EVP_PKEY_RSA)
			type = "RSA";
		else if (id == EVP_PKEY_EC)
			type = "EC";
		else if ((type = EVP_PKEY_get0_type_name(k)) == NULL)
			type = "of an unknown type";
		if (id == EVP_PKEY_EC) {
			char group[64];
			size_t len = 0;

			if (EVP_PKEY_get_group_name(k, group, sizeof(group),
			                            &len) != 1)
				snprintf(group, sizeof(group),
				         "(unnamed curve)");
			buf_printf(err, "CSR key is EC %s", group);
		} else {
			buf_printf(err, "CSR key is %s %d", type,
			           EVP_PKEY_get_bits(k));
		}
		buf_puts(err, "; Vigil agents use ECDSA P-256 keys");
		ERR_clear_error();
		return -1;
	}
	/* Proof of possession: only the holder of the private key can have
	 * signed this request; a modified request fails here. */
	if (X509_REQ_verify(csr, k) != 1) {
		ERR_clear_error();
		buf_puts(err, "CSR signature does not verify (the request was "
		              "damaged or modified after it was signed)");
		return -1;
	}
	return 0;
}

X509 *
pki_sign_client(X509 *ca, EVP_PKEY *cakey, X509_REQ *csr, const char *cn,
                long long lifetime_secs, struct buf *err)
{
	X509_NAME *name = NULL;
	X509 *x = NULL;

	if (ca == NULL || cakey == NULL || cn == NULL || *cn == '\0' ||
	    strlen(cn) > 64) {
		buf_puts(err, "sign: missing CA or bad agent name");
		goto fail;
	}
	if (lifetime_secs < 1 || lifetime_secs > PKI_MAX_DAYS * 86400) {
		buf_printf(err, "sign: lifetime %lld s out of range",
		           lifetime_secs);
		goto fail;
	}
	if (pki_key_matches(ca, cakey) != 1) {
		buf_puts(err, "sign: the CA key does not match the CA "
		              "certificate");
		goto fail;
	}
	if (pki_check_csr(csr, err) == -1)
		goto fail;
	/* The subject is ours, whatever the CSR asked for: the agent's
	 * identity is the name the center assigned, never a claimed one.
	 * The CSR's requested extensions are ignored for the same reason. */
	if ((name = X509_NAME_new()) == NULL ||
	    add_name_entry(name, "O", "Vigil Agent") == -1 ||
	    add_name_entry(name, "CN", cn) == -1) {
		buf_puts(err, "sign: cannot build the subject name");
		goto fail;
	}
	if ((x = new_cert(name, ca, X509_REQ_get0_pubkey(csr),
	                  lifetime_secs)) == NULL ||
	    add_std_exts(x, ca, "critical,CA:FALSE",
	                 "critical,digitalSignature", "clientAuth") == -1 ||
	    add_role(x, PKI_ROLE_AGENT) == -1 ||
	    X509_sign(x, cakey, EVP_sha256()) <= 0) {
		buf_puts(err, "sign: cannot build the certificate");
		goto fail;
	}
	X509_NAME_free(name);
	return x;
fail:
	ERR_clear_error();
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

X509_REQ *
pki_make_csr(EVP_PKEY *key, const char *cn)
{
	X509_NAME *name = NULL;
	X509_REQ *r = NULL;

	if (key == NULL || cn == NULL || *cn == '\0')
		goto fail;
	if ((r = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(r, X509_REQ_VERSION_1) != 1)
		goto fail;
	if ((name = X509_NAME_new()) == NULL ||
	    add_name_entry(name, "CN", cn) == -1 ||
	    X509_REQ_set_subject_name(r, name) != 1)
		goto fail;
	if (X509_REQ_set_pubkey(r, key) != 1 ||
	    X509_REQ_sign(r, key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	return r;
fail:
	ERR_clear_error();
	X509_NAME_free(name);
	X509_REQ_free(r);
	return NULL;
}

int
pki_key_matches(X509 *cert, EVP_PKEY *key)
{
	EVP_PKEY *pub;
	int rc = 0;

	if (cert != NULL && key != NULL &&
	    (pub = X509_get0_pubkey(cert)) != NULL)
		rc = EVP_PKEY_eq(pub, key) == 1;
	ERR_clear_error();
	return rc;
}

int
pki_verify_signed_by(X509 *cert, X509 *ca)
{
	EVP_PKEY *pub;
	int rc = -1;

	if (cert == NULL || ca == NULL)
		return -1;
	/* Names (and key identifiers) first: cheap, and a signature check
	 * against an unrelated CA would be meaningless. */
	if (X509_check_issued(ca, cert) != X509_V_OK)
		goto done;
	if ((pub = X509_get0_pubkey(ca)) == NULL)
		goto done;
	if (X509_verify(cert, pub) == 1)
		rc = 0;
done:
	ERR_clear_error();
	return rc;
}
