/*
 * Unit tests for pki.c: the CA's properties, the server certificate's
 * names, and that client signing takes nothing from a CSR but its key
 * (and only a P-256 key with a valid proof of possession).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "pki.h"
#include "tls.h"

struct fixture {
	EVP_PKEY *cakey;
	X509 *ca;
	EVP_PKEY *otherkey;
	X509 *other;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->cakey = pki_genkey());
	assert_non_null(f->ca = pki_make_ca(f->cakey, "Test CA", 3650));
	assert_non_null(f->otherkey = pki_genkey());
	assert_non_null(f->other = pki_make_ca(f->otherkey, "Other CA", 10));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	X509_free(f->ca);
	X509_free(f->other);
	EVP_PKEY_free(f->cakey);
	EVP_PKEY_free(f->otherkey);
	free(f);
	return 0;
}

static void
assert_p256(EVP_PKEY *k)
{
	char group[64];
	size_t len;

	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof(group), &len),
	                 1);
	assert_string_equal(group, "prime256v1");
}

/* notAfter - now, in seconds, within a minute of want less the backdate
 * (a lifetime of a day or more includes it), and the whole period no more
 * than want. */
static void
assert_lifetime(X509 *x, long long want)
{
	long long left = tls_not_after(x) - (long long)time(NULL);
	long long back = want >= 86400 ? PKI_SKEW_SECS + 1 : 0;

	assert_true(left > want - back - 60 && left <= want - back + 1);
	if (want >= 86400)
		assert_true(tls_not_after(x) - tls_not_before(x) + 1 <= want);
}

static void
test_genkey(void **state)
{
	EVP_PKEY *k = pki_genkey();

	(void)state;
	assert_non_null(k);
	assert_p256(k);
	EVP_PKEY_free(k);
}

static void
test_ca_properties(void **state)
{
	struct fixture *f = *state;
	const ASN1_INTEGER *serial;
	BIGNUM *bn;
	char *s;

	assert_int_equal(X509_get_version(f->ca), X509_VERSION_3);
	s = tls_name(X509_get_subject_name(f->ca));
	assert_string_equal(s, "CN=Test CA,O=Vigil");
	free(s);
	s = tls_subject_cn(f->ca);
	assert_string_equal(s, "Test CA");
	free(s);

	/* CA:TRUE, pathlen 0, cert + CRL signing only. */
	assert_true(X509_get_extension_flags(f->ca) & EXFLAG_CA);
	assert_int_equal(X509_get_pathlen(f->ca), 0);
	assert_int_equal(X509_get_key_usage(f->ca),
	                 KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(X509_self_signed(f->ca, 1), 1);
	assert_int_equal(pki_verify_signed_by(f->ca, f->ca), 0);
	assert_int_equal(X509_get_signature_nid(f->ca), NID_ecdsa_with_SHA256);
	assert_p256(X509_get0_pubkey(f->ca));
	assert_non_null(X509_get0_subject_key_id(f->ca));
	assert_non_null(X509_get0_authority_key_id(f->ca));

	/* Positive, 128 bits, different each time. */
	serial = X509_get0_serialNumber(f->ca);
	assert_non_null(bn = ASN1_INTEGER_to_BN(serial, NULL));
	assert_false(BN_is_negative(bn));
	assert_int_equal(BN_num_bits(bn), 127);
	BN_free(bn);
	assert_int_not_equal(
	    ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(f->other)), 0);

	assert_lifetime(f->ca, 3650LL * 86400);
	assert_true(tls_not_before(f->ca) <= (long long)time(NULL) - 290);
}

static void
test_ca_bad_args(void **state)
{
	struct fixture *f = *state;

	assert_null(pki_make_ca(f->cakey, "x", 0));
	assert_null(pki_make_ca(f->cakey, "x", -5));
	assert_null(pki_make_ca(f->cakey, "", 10));
	assert_null(pki_make_ca(NULL, "x", 10));
}

static void
test_server_cert(void **state)
{
	static const char *const sans[] = {"alt.example.org", "127.0.0.1",
	                                   "::1", "localhost"};
	struct fixture *f = *state;
	EVP_PKEY *k = pki_genkey();
	X509 *x;
	char *s;

	assert_non_null(k);
	x = pki_make_server_cert(f->ca, f->cakey, k, "vigil.example.org", sans,
	                         4, 825);
	assert_non_null(x);
	s = tls_subject_cn(x);
	assert_string_equal(s, "vigil.example.org");
	free(s);
	s = tls_name(X509_get_issuer_name(x));
	assert_string_equal(s, "CN=Test CA,O=Vigil");
	free(s);

	assert_true(tls_cert_names_host(x, "vigil.example.org"));
	assert_true(tls_cert_names_host(x, "VIGIL.Example.ORG"));
	assert_true(tls_cert_names_host(x, "alt.example.org"));
	assert_true(tls_cert_names_host(x, "localhost"));
	assert_true(tls_cert_names_host(x, "127.0.0.1"));
	assert_true(tls_cert_names_host(x, "::1"));
	assert_false(tls_cert_names_host(x, "127.0.0.2"));
	assert_false(tls_cert_names_host(x, "other.example.org"));

	assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_false(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_non_null(X509_get0_authority_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
	                                       X509_get0_subject_key_id(f->ca)),
	                 0);
	assert_int_equal(pki_verify_signed_by(x, f->ca), 0);
	assert_int_equal(pki_verify_signed_by(x, f->other), -1);
	assert_int_equal(pki_key_matches(x, k), 1);
	assert_int_equal(pki_key_matches(x, f->cakey), 0);
	assert_lifetime(x, 825LL * 86400);
	X509_free(x);

	/* Names are never parsed as config syntax: no smuggled entries. */
	assert_null(pki_make_server_cert(
	    f->ca, f->cakey, k, "a.example.org,IP:10.0.0.1", NULL, 0, 10));
	assert_null(pki_make_server_cert(f->ca, f->cakey, k, "", NULL, 0, 10));
	/* A CA key that is not the CA's. */
	assert_null(pki_make_server_cert(f->ca, f->otherkey, k, "a.example.org",
	                                 NULL, 0, 10));
	EVP_PKEY_free(k);
}

static void
test_sign_client(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = pki_genkey();
	X509_REQ *csr;
	X509 *x;
	struct buf err;
	char *s;

	buf_init(&err, 4096);
	assert_non_null(csr = pki_make_csr(k, "i-want-to-be-admin"));
	assert_int_equal(pki_check_csr(csr, &err), 0);
	x = pki_sign_client(f->ca, f->cakey, csr,
	                    "0b0e3c62-3d2f-4a8e-9f51-2b1d4c7e8a90", 3600, &err);
	assert_non_null(x);
	s = tls_name(X509_get_subject_name(x));
	assert_string_equal(
	    s, "CN=0b0e3c62-3d2f-4a8e-9f51-2b1d4c7e8a90,O=Vigil Agent");
	free(s);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_int_equal(pki_cert_role(x), PKI_ROLE_AGENT);
	assert_int_equal(pki_key_matches(x, k), 1);
	assert_int_equal(pki_verify_signed_by(x, f->ca), 0);
	assert_int_equal(pki_verify_signed_by(x, f->other), -1);
	assert_lifetime(x, 3600);
	/* Back-dated for clock skew. */
	assert_true(tls_not_before(x) <= (long long)time(NULL) - 290);
	assert_true(tls_not_before(x) >= (long long)time(NULL) - 310);
	X509_free(x);

	/* Lifetime bounds and CA key mismatch. */
	assert_null(pki_sign_client(f->ca, f->cakey, csr, "a", 0, &err));
	assert_null(pki_sign_client(f->ca, f->otherkey, csr, "a", 60, &err));
	assert_null(pki_sign_client(f->ca, f->cakey, csr, "", 60, &err));
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&err);
}

/* Extensions the CSR asks for (here CA:TRUE) are not copied. */
static void
test_sign_ignores_csr_extensions(void **state)
{
	struct fixture *f = *state;
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	EVP_PKEY *k = pki_genkey();
	X509_EXTENSION *ext;
	X509_REQ *csr;
	X509 *x;
	struct buf err;

	buf_init(&err, 4096);
	csr = X509_REQ_new();
	assert_non_null(csr);
	assert_int_equal(X509_REQ_set_pubkey(csr, k), 1);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
	                          "critical,CA:TRUE");
	assert_non_null(ext);
	sk_X509_EXTENSION_push(exts, ext);
	assert_int_equal(X509_REQ_add_extensions(csr, exts), 1);
	assert_true(X509_REQ_sign(csr, k, EVP_sha256()) > 0);
	x = pki_sign_client(f->ca, f->cakey, csr, "agent", 600, &err);
	assert_non_null(x);
	assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
	X509_free(x);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&err);
}

static void
test_sign_rejects_rsa(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509_REQ *csr;
	struct buf err;

	buf_init(&err, 4096);
	assert_non_null(k);
	assert_non_null(csr = pki_make_csr(k, "agent"));
	assert_null(pki_sign_client(f->ca, f->cakey, csr, "agent", 60, &err));
	assert_string_equal(
	    buf_cstr(&err),
	    "CSR key is RSA 2048; Vigil agents use ECDSA P-256 keys");
	buf_reset(&err);
	assert_int_equal(pki_check_csr(csr, &err), -1);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&err);
}

static void
test_sign_rejects_p384(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = EVP_EC_gen("P-384");
	X509_REQ *csr;
	struct buf err;

	buf_init(&err, 4096);
	assert_non_null(k);
	assert_non_null(csr = pki_make_csr(k, "agent"));
	assert_null(pki_sign_client(f->ca, f->cakey, csr, "agent", 60, &err));
	assert_non_null(strstr(buf_cstr(&err), "CSR key is EC secp384r1"));
	assert_non_null(strstr(buf_cstr(&err), "ECDSA P-256"));
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&err);
}

/* A CSR whose subject was changed after signing: the proof of possession
 * no longer holds. */
static void
test_sign_rejects_tampered(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = pki_genkey();
	unsigned char *der = NULL, *hit;
	const unsigned char *p;
	X509_REQ *csr, *bad;
	struct buf err;
	int len;

	buf_init(&err, 4096);
	assert_non_null(csr = pki_make_csr(k, "agent-aaaa"));
	len = i2d_X509_REQ(csr, &der);
	assert_true(len > 0);
	hit = memmem(der, (size_t)len, "agent-aaaa", 10);
	assert_non_null(hit);
	hit[6] = 'b'; /* same length, still valid DER */
	p = der;
	bad = d2i_X509_REQ(NULL, &p, len);
	assert_non_null(bad);
	assert_int_equal(pki_check_csr(bad, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "signature does not verify"));
	buf_reset(&err);
	assert_null(pki_sign_client(f->ca, f->cakey, bad, "agent", 60, &err));
	assert_non_null(strstr(buf_cstr(&err), "signature"));
	X509_REQ_free(bad);
	OPENSSL_free(der);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&err);
}

static void
test_csr_pem_roundtrip(void **state)
{
	EVP_PKEY *k = pki_genkey();
	X509_REQ *csr, *back;
	struct buf pem, err;
	char *cn;

	(void)state;
	buf_init(&pem, 0);
	buf_init(&err, 4096);
	assert_non_null(csr = pki_make_csr(k, "agent-x"));
	assert_int_equal(tls_csr_to_pem(csr, &pem), 0);
	assert_non_null(strstr(buf_cstr(&pem), "BEGIN CERTIFICATE REQUEST"));
	back = tls_csr_from_pem((const char *)pem.data, pem.len);
	assert_non_null(back);
	assert_int_equal(pki_check_csr(back, &err), 0);
	cn = tls_name(X509_REQ_get_subject_name(back));
	assert_string_equal(cn, "CN=agent-x");
	free(cn);
	assert_null(tls_csr_from_pem("garbage", 7));
	X509_REQ_free(back);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	buf_free(&pem);
	buf_free(&err);
}

static void
test_key_matches(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pki_key_matches(f->ca, f->cakey), 1);
	assert_int_equal(pki_key_matches(f->ca, f->otherkey), 0);
	assert_int_equal(pki_key_matches(f->ca, NULL), 0);
	assert_int_equal(pki_verify_signed_by(f->other, f->ca), -1);
	assert_int_equal(pki_verify_signed_by(NULL, f->ca), -1);
}

/* Adds the URI uri to x's subjectAltName (made when it has none). */
static void
add_uri(X509 *x, const char *uri)
{
	int crit = 0;
	GENERAL_NAMES *gens =
	    X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (gens == NULL)
		gens = sk_GENERAL_NAME_new_null();
	assert_int_equal(ASN1_STRING_set(s, uri, -1), 1);
	GENERAL_NAME_set0_value(g, GEN_URI, s);
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	                                   X509V3_ADD_REPLACE),
	                 1);
	GENERAL_NAMES_free(gens);
}

static void
test_roles(void **state)
{
	struct fixture *f = *state;
	const char *sans[] = {"127.0.0.1", "alt.example.org"};
	EVP_PKEY *k = pki_genkey();
	X509 *x;
	int r;

	for (r = PKI_ROLE_CENTER; r <= PKI_ROLE_COLLECTOR; r++) {
		assert_non_null(
		    x = pki_issue_role(f->ca, f->cakey, k, r, PKI_USE_CLIENT,
		                       "svc.example.org", sans, 2, 30));
		assert_int_equal(pki_cert_role(x), r);
		assert_int_equal(pki_verify_signed_by(x, f->ca), 0);
		assert_int_equal(tls_cert_names_host(x, "svc.example.org"), 1);
		assert_int_equal(pki_role_from_name(pki_role_name(r)), r);
		/* Usage: client only. */
		assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
		assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
		X509_free(x);
	}
	assert_non_null(x = pki_issue_role(f->ca, f->cakey, k, PKI_ROLE_SCAND,
	                                   PKI_USE_SERVER | PKI_USE_CLIENT,
	                                   "scand.example.org", NULL, 0, 30));
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	/* One subjectAltName, not critical, holding the DNS name and the
	 * role URI. */
	{
		int idx = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);

		assert_true(idx >= 0);
		assert_int_equal(
		    X509_get_ext_by_NID(x, NID_subject_alt_name, idx), -1);
		assert_int_equal(
		    X509_EXTENSION_get_critical(X509_get_ext(x, idx)), 0);
	}
	assert_int_equal(tls_cert_names_host(x, "scand.example.org"), 1);
	/* A second role URI makes the role ambiguous: refused. */
	add_uri(x, "urn:vigil:role:intel");
	assert_int_equal(pki_cert_role(x), PKI_ROLE_BAD);
	X509_free(x);

	/* Bad arguments. */
	assert_null(pki_issue_role(f->ca, f->cakey, k, PKI_ROLE_NONE,
	                           PKI_USE_CLIENT, "a.example.org", NULL, 0,
	                           1));
	assert_null(pki_issue_role(f->ca, f->cakey, k, PKI_ROLE_SCAND, 0,
	                           "a.example.org", NULL, 0, 1));
	assert_null(pki_issue_role(f->ca, f->otherkey, k, PKI_ROLE_SCAND,
	                           PKI_USE_CLIENT, "a.example.org", NULL, 0,
	                           1));
	assert_null(pki_issue_role(f->ca, f->cakey, k, PKI_ROLE_SCAND,
	                           PKI_USE_CLIENT, "bad name!", NULL, 0, 1));
	assert_int_equal(pki_role_from_name("root"), PKI_ROLE_BAD);
	assert_null(pki_role_name(PKI_ROLE_NONE));
	assert_null(pki_role_name(99));

	/* The CA, the center's certificate and agents' certificates. */
	assert_int_equal(pki_cert_role(f->ca), PKI_ROLE_NONE);
	assert_non_null(x = pki_make_server_cert(f->ca, f->cakey, k,
	                                         "c.example.org", NULL, 0, 2));
	assert_int_equal(pki_cert_role(x), PKI_ROLE_CENTER);
	X509_free(x);

	/* Hand-made role URIs: known names only, exactly one. */
	{
		static const struct {
			const char *uri;
			int want;
		} t[] = {
		    {"urn:vigil:role:intel", PKI_ROLE_INTEL},
		    {"URN:Vigil:Role:intel", PKI_ROLE_INTEL},
		    {"urn:vigil:role:INTEL", PKI_ROLE_BAD},
		    {"urn:vigil:role:root", PKI_ROLE_BAD},
		    {"urn:vigil:role:intel2", PKI_ROLE_BAD},
		    {"urn:vigil:role:", PKI_ROLE_BAD},
		    {"https://intel.example.org/", PKI_ROLE_NONE},
		    {"urn:vigil:rol:intel", PKI_ROLE_NONE},
		};

		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			assert_non_null(x = pki_make_ca(k, "raw", 1));
			add_uri(x, t[i].uri);
			assert_int_equal(pki_cert_role(x), t[i].want);
			X509_free(x);
		}
	}
	/* Two subjectAltName extensions: refused. */
	assert_non_null(x = pki_make_ca(k, "raw", 1));
	add_uri(x, "urn:vigil:role:intel");
	{
		X509_EXTENSION *e = X509_EXTENSION_dup(X509_get_ext(
		    x, X509_get_ext_by_NID(x, NID_subject_alt_name, -1)));

		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_int_equal(pki_cert_role(x), PKI_ROLE_BAD);
	/* A malformed role is refused whatever the mask admits. */
	{
		struct buf why;

		buf_init(&why, 1024);
		assert_int_equal(pki_role_allowed(x, ~0u, "svc", &why), -1);
		assert_non_null(strstr(buf_cstr(&why), "malformed"));
		buf_free(&why);
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_role_allowed(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = pki_genkey();
	struct buf why;
	X509 *x;

	buf_init(&why, 1024);
	assert_non_null(x = pki_issue_role(f->ca, f->cakey, k, PKI_ROLE_SCAND,
	                                   PKI_USE_CLIENT, "s.example.org",
	                                   NULL, 0, 2));
	assert_int_equal(pki_role_allowed(x,
	                                  PKI_ROLE_BIT(PKI_ROLE_SCAND) |
	                                      PKI_ROLE_BIT(PKI_ROLE_NONE),
	                                  "svc", &why),
	                 0);
	assert_int_equal(buf_cstr(&why)[0], '\0');
	assert_int_equal(pki_role_allowed(x,
	                                  PKI_ROLE_BIT(PKI_ROLE_AGENT) |
	                                      PKI_ROLE_BIT(PKI_ROLE_NONE),
	                                  "the agent gateway", &why),
	                 -1);
	assert_string_equal(
	    buf_cstr(&why),
	    "a certificate of role scand may not be used here; the agent "
	    "gateway accepts agent certificates only (and certificates "
	    "without a role)");
	X509_free(x);
	/* No role: admitted only with the NONE bit. */
	buf_reset(&why);
	assert_int_equal(
	    pki_role_allowed(f->ca, PKI_ROLE_BIT(PKI_ROLE_NONE), "svc", &why),
	    0);
	assert_int_equal(pki_role_allowed(f->ca,
	                                  PKI_ROLE_BIT(PKI_ROLE_CENTER) |
	                                      PKI_ROLE_BIT(PKI_ROLE_MASTER),
	                                  "svc", &why),
	                 -1);
	assert_string_equal(buf_cstr(&why),
	                    "the certificate names no role (no subjectAltName "
	                    "urn:vigil:role:); svc accepts center, master "
	                    "certificates");
	/* A file: unreadable, or of the wrong role, names the path. */
	buf_reset(&why);
	assert_int_equal(
	    pki_check_cert_role("/nonexistent/x.crt", ~0u, "svc", &why), -1);
	assert_non_null(strstr(buf_cstr(&why), "/nonexistent/x.crt"));
	buf_free(&why);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_genkey),
	    cmocka_unit_test(test_ca_properties),
	    cmocka_unit_test(test_ca_bad_args),
	    cmocka_unit_test(test_server_cert),
	    cmocka_unit_test(test_sign_client),
	    cmocka_unit_test(test_sign_ignores_csr_extensions),
	    cmocka_unit_test(test_sign_rejects_rsa),
	    cmocka_unit_test(test_sign_rejects_p384),
	    cmocka_unit_test(test_sign_rejects_tampered),
	    cmocka_unit_test(test_csr_pem_roundtrip),
	    cmocka_unit_test(test_key_matches),
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_role_allowed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
