/*
 * Unit tests for vigil-inteld's certificate roles (src/inteld/auth.c):
 * which role of certificate may administer, which may only look up, which
 * is refused, and what a certificate made before roles gets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../../src/inteld/auth.c"

#include <openssl/x509v3.h>

static EVP_PKEY *cakey, *key;
static X509 *ca;

static X509 *
issue(int role)
{
	X509 *x = pki_issue_role(ca, cakey, key, role, PKI_USE_CLIENT,
	                         "c.example.org", NULL, 0, 2);

	assert_non_null(x);
	return x;
}

static void
test_roles(void **state)
{
	static const struct {
		int pki, want;
	} table[] = {
	    {PKI_ROLE_INTEL, ROLE_ADMIN},  {PKI_ROLE_UPDATE, ROLE_ADMIN},
	    {PKI_ROLE_MASTER, ROLE_ADMIN}, {PKI_ROLE_CENTER, ROLE_LOOKUP},
	    {PKI_ROLE_SCAND, ROLE_LOOKUP}, {PKI_ROLE_AGENT, -1},
	    {PKI_ROLE_COLLECTOR, -1},
	};
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		X509 *x = issue(table[i].pki);

		/* cert_role = admin changes nothing for a role certificate. */
		for (int cr = 0; cr <= 1; cr++) {
			assert_int_equal(inteld_cert_role(x, cr, &why),
			                 table[i].want);
			if (table[i].want == -1)
				assert_non_null(strstr(why, "may not call"));
			else
				assert_null(why);
		}
		X509_free(x);
	}
}

static void
test_no_role(void **state)
{
	X509_REQ *csr;
	X509 *x;
	struct buf err;
	const char *why;

	(void)state;
	buf_init(&err, 1024);
	/* A certificate without the extension (the CA itself will do): the
	 * configured cert_role. */
	assert_int_equal(inteld_cert_role(ca, 0, &why), ROLE_LOOKUP);
	assert_int_equal(inteld_cert_role(ca, 1, &why), ROLE_ADMIN);
	/* An agent certificate from before roles (O=Vigil Agent, no
	 * extension): refused like any agent's, whatever cert_role says. */
	assert_non_null(csr = pki_make_csr(key, "agent"));
	assert_non_null(x = pki_sign_client(ca, cakey, csr, "agent", 60, &err));
	/* Its only subjectAltName name is the role: without it, none. */
	X509_EXTENSION_free(X509_delete_ext(
	    x, X509_get_ext_by_NID(x, NID_subject_alt_name, -1)));
	assert_int_equal(pki_cert_role(x), PKI_ROLE_NONE);
	assert_int_equal(inteld_cert_role(x, 1, &why), -1);
	assert_non_null(strstr(why, "/v1/reputation"));
	X509_free(x);
	X509_REQ_free(csr);
	buf_free(&err);
}

static void
test_bad_role(void **state)
{
	X509 *x = issue(PKI_ROLE_INTEL);
	const char *why;
	int crit = 0;
	GENERAL_NAMES *gens =
	    X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *u = ASN1_IA5STRING_new();

	(void)state;
	/* A second role URI: refused, not the first or the last. */
	assert_non_null(gens);
	assert_int_equal(ASN1_STRING_set(u, "urn:vigil:role:master", -1), 1);
	GENERAL_NAME_set0_value(g, GEN_URI, u);
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	                                   X509V3_ADD_REPLACE),
	                 1);
	GENERAL_NAMES_free(gens);
	assert_int_equal(inteld_cert_role(x, 1, &why), -1);
	assert_non_null(strstr(why, "malformed"));
	X509_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_no_role),
	    cmocka_unit_test(test_bad_role),
	};
	int rc;

	cakey = pki_genkey();
	key = pki_genkey();
	ca = pki_make_ca(cakey, "Test CA", 10);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	return rc;
}
