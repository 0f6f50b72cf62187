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
	    {PKI_ROLE_SCAND, ROLE_LOOKUP}, {PKI_ROLE_AGENT, ROLE_LOOKUP},
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
	 * extension): lookup, whatever cert_role says. */
	assert_non_null(csr = pki_make_csr(key, "agent"));
	assert_non_null(x = pki_sign_client(ca, cakey, csr, "agent", 60, &err));
	{
		ASN1_OBJECT *obj = OBJ_txt2obj(PKI_ROLE_OID, 1);

		X509_EXTENSION_free(
		    X509_delete_ext(x, X509_get_ext_by_OBJ(x, obj, -1)));
		ASN1_OBJECT_free(obj);
	}
	assert_int_equal(pki_cert_role(x), PKI_ROLE_NONE);
	assert_int_equal(inteld_cert_role(x, 1, &why), ROLE_LOOKUP);
	X509_free(x);
	X509_REQ_free(csr);
	buf_free(&err);
}

static void
test_bad_role(void **state)
{
	X509 *x = issue(PKI_ROLE_INTEL);
	const char *why;
	ASN1_OBJECT *obj = OBJ_txt2obj(PKI_ROLE_OID, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	static const unsigned char admin[] = {0x0c, 5, 'a', 'd', 'm', 'i', 'n'};

	(void)state;
	/* A second role extension: refused, not the first or the last. */
	ASN1_OCTET_STRING_set(os, admin, sizeof(admin));
	{
		X509_EXTENSION *e =
		    X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);

		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_int_equal(inteld_cert_role(x, 1, &why), -1);
	assert_non_null(strstr(why, "malformed"));
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
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
