/*
 * Unit tests of the pure authentication pieces: the role ladder and route
 * defaults, argon2id password hashes, and TOTP checking against the
 * RFC 6238 test vectors, with its window and replay refusal; the LDAP
 * helpers (group lists, filter and DN escaping, templates).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/center/cred.c"

/* RFC 6238 appendix B: SHA-1 key "12345678901234567890", in base32. */
#define RFC_KEY "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

static void
dummy(struct http_req *r)
{
	(void)r;
}

static void
test_roles(void **state)
{
	struct http_route rt = {"GET", "/x", dummy, 0, "x", 0};
	int i;

	(void)state;
	for (i = ROLE_READONLY; i <= ROLE_ADMIN; i++)
		assert_int_equal(role_parse(role_name(i)), i);
	assert_int_equal(role_parse("root"), ROLE_NONE);
	assert_int_equal(role_parse(""), ROLE_NONE);
	assert_int_equal(role_parse(NULL), ROLE_NONE);
	assert_int_equal(role_parse("Admin"), ROLE_NONE);
	assert_true(ROLE_READONLY < ROLE_ANALYST &&
	            ROLE_ANALYST < ROLE_OPERATOR && ROLE_OPERATOR < ROLE_ADMIN);
	/* A route written without a role is admin-only. */
	assert_int_equal(role_needed(&rt), ROLE_ADMIN);
	rt.role = ROLE_PUBLIC;
	assert_int_equal(role_needed(&rt), ROLE_PUBLIC);
	rt.role = ROLE_ANALYST;
	assert_int_equal(role_needed(&rt), ROLE_ANALYST);
	rt.role = 77;
	assert_int_equal(role_needed(&rt), ROLE_ADMIN);
	rt.role = -5;
	assert_int_equal(role_needed(&rt), ROLE_ADMIN);
	assert_string_equal(role_name(ROLE_PUBLIC), "public");
	assert_string_equal(role_name(42), "none");
}

static void
test_passwords(void **state)
{
	char h1[PW_HASH_MAX], h2[PW_HASH_MAX], small[32];
	const char *why = NULL;

	(void)state;
	assert_int_equal(pw_hash("correct horse battery", h1, sizeof(h1)), 0);
	assert_int_equal(pw_hash("correct horse battery", h2, sizeof(h2)), 0);
	assert_non_null(strstr(h1, "$argon2id$v=19$m=19456,t=2,p=1$"));
	assert_string_not_equal(h1, h2); /* salted */
	assert_true(pw_verify(h1, "correct horse battery"));
	assert_true(pw_verify(h2, "correct horse battery"));
	assert_false(pw_verify(h1, "correct horse batterY"));
	assert_false(pw_verify(h1, ""));
	assert_false(pw_verify(NULL, "x"));
	assert_false(pw_verify("plain", "plain"));
	assert_false(
	    pw_verify("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x"));
	assert_int_equal(pw_hash("x", small, sizeof(small)), -1);
	assert_false(pw_acceptable("short", &why));
	assert_non_null(why);
	assert_true(pw_acceptable("ten chars!", &why));
}

static void
test_totp_vectors(void **state)
{
	(void)state;
	/* 8-digit vectors of RFC 6238 cut to their last 6 digits. */
	assert_int_equal(totp_check(RFC_KEY, "287082", 59, 0), 1);
	assert_int_equal(totp_check(RFC_KEY, "081804", 1111111109LL, 0),
	                 1111111109LL / 30);
	assert_int_equal(totp_check(RFC_KEY, "005924", 1234567890LL, 0),
	                 1234567890LL / 30);
	assert_int_equal(totp_check(RFC_KEY, "279037", 2000000000LL, 0),
	                 2000000000LL / 30);
}

static void
test_totp_window(void **state)
{
	(void)state;
	/* The step-1 code (t = 30..59) is accepted one step either side. */
	assert_int_equal(totp_check(RFC_KEY, "287082", 30, 0), 1);
	assert_int_equal(totp_check(RFC_KEY, "287082", 5, 0), 1);
	assert_int_equal(totp_check(RFC_KEY, "287082", 89, 0), 1);
	assert_int_equal(totp_check(RFC_KEY, "287082", 90, 0), -1);
	assert_int_equal(totp_check(RFC_KEY, "287082", 200, 0), -1);
	/* Replay: a step already used, or older, is refused. */
	assert_int_equal(totp_check(RFC_KEY, "287082", 59, 1), -2);
	assert_int_equal(totp_check(RFC_KEY, "287082", 59, 5), -2);
	/* Malformed codes and keys. */
	assert_int_equal(totp_check(RFC_KEY, "28708", 59, 0), -1);
	assert_int_equal(totp_check(RFC_KEY, "2870822", 59, 0), -1);
	assert_int_equal(totp_check(RFC_KEY, "28708a", 59, 0), -1);
	assert_int_equal(totp_check(RFC_KEY, "", 59, 0), -1);
	assert_int_equal(totp_check(RFC_KEY, "000000", 59, 0), -1);
	assert_int_equal(totp_check("!!not base32!!", "287082", 59, 0), -1);
}

static void
test_totp_secret(void **state)
{
	char a[64], b[64], small[16];
	size_t i;

	(void)state;
	assert_int_equal(totp_new_secret(a, sizeof(a)), 0);
	assert_int_equal(totp_new_secret(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 32); /* 160 bits in base32 */
	assert_string_not_equal(a, b);
	for (i = 0; i < strlen(a); i++)
		assert_true((a[i] >= 'A' && a[i] <= 'Z') ||
		            (a[i] >= '2' && a[i] <= '7'));
	assert_int_equal(totp_new_secret(small, sizeof(small)), -1);
}

static void
test_ldap_pieces(void **state)
{
	char out[128], tiny[4];

	(void)state;
	assert_true(list_has("vigil-admins", "vigil-admins"));
	assert_true(list_has(" a ;  Vigil-Ops ;b", "vigil-ops"));
	assert_true(list_has("cn=x,ou=g,dc=t; other", "CN=X,OU=G,DC=T"));
	assert_false(list_has("cn=x,ou=g,dc=t", "cn=x"));
	assert_false(list_has("vigil-ops", "vigil-op"));
	assert_false(list_has("vigil-ops", ""));
	assert_false(list_has(NULL, "a"));
	assert_false(list_has(";;", ""));

	assert_int_equal(ldap_filter_escape("a*(b)\\c", out, sizeof(out)), 0);
	assert_string_equal(out, "a\\2a\\28b\\29\\5cc");
	assert_int_equal(ldap_filter_escape("plain", out, sizeof(out)), 0);
	assert_string_equal(out, "plain");
	assert_int_equal(ldap_filter_escape("****", tiny, sizeof(tiny)), -1);
	assert_int_equal(ldap_dn_escape("a,b+c=d", out, sizeof(out)), 0);
	assert_string_equal(out, "a\\,b\\+c\\=d");
	assert_int_equal(ldap_dn_escape(" #x ", out, sizeof(out)), 0);
	assert_string_equal(out, "\\ #x\\ ");
	assert_int_equal(ldap_dn_escape("abcdef", tiny, sizeof(tiny)), -1);

	assert_int_equal(fill_template("uid=%s,dc=t", "bob", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "uid=bob,dc=t");
	assert_int_equal(fill_template("(uid=%s)", "%s%n", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "(uid=%s%n)");
	assert_int_equal(fill_template("uid=%s,%s", "b", out, sizeof(out)), -1);
	assert_int_equal(fill_template("uid=%d", "b", out, sizeof(out)), -1);
	assert_int_equal(fill_template("%n uid=%s", "b", out, sizeof(out)), -1);
	assert_int_equal(fill_template("uid=x", "b", out, sizeof(out)), -1);
	assert_int_equal(fill_template("uid=%s", "bob", tiny, sizeof(tiny)),
	                 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_passwords),
	    cmocka_unit_test(test_totp_vectors),
	    cmocka_unit_test(test_totp_window),
	    cmocka_unit_test(test_totp_secret),
	    cmocka_unit_test(test_ldap_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
