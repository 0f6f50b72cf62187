/*
 * Unit tests of the indicator normalisers: hashes by length and case,
 * IPv4 / IPv6 addresses and ranges (host bits cleared, IPv4-mapped
 * addresses), domains (case, trailing dot, IDNA, bad labels) and URLs
 * (RFC 3986 section 6: scheme and host case, default ports,
 * percent-encoding, dot segments), plus detection of the kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "intelnorm.h"

static struct intel_ind ind;
static char why[200];

static const char *
norm(enum intel_kind k, const char *s)
{
	if (intel_parse(k, s, strlen(s), &ind, why, sizeof(why)) == -1)
		return NULL;
	return ind.text;
}

static void
test_hash(void **state)
{
	(void)state;
	assert_string_equal(
	    norm(INTEL_ANY, " D41D8CD98F00B204E9800998ECF8427E "),
	    "d41d8cd98f00b204e9800998ecf8427e");
	assert_int_equal(ind.kind, INTEL_MD5);
	assert_int_equal(ind.keylen, 17);
	assert_int_equal(ind.key[1], 0xd4);
	assert_non_null(
	    norm(INTEL_SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
	assert_int_equal(ind.kind, INTEL_SHA1);
	assert_non_null(norm(INTEL_SHA256, "e3b0c44298fc1c149afbf4c8996fb924"
	                                   "27ae41e4649b934ca495991b7852b855"));
	assert_int_equal(ind.kind, INTEL_SHA256);
	assert_null(norm(INTEL_SHA256, "d41d8cd98f00b204e9800998ecf8427e"));
	assert_string_equal(why, "not a SHA-256 (64 hex digits)");
	assert_null(norm(INTEL_MD5, "d41d8cd98f00b204e9800998ecf8427g"));
	assert_null(norm(INTEL_MD5, ""));
}

static void
test_ip(void **state)
{
	(void)state;
	assert_string_equal(norm(INTEL_IP, "192.0.2.7"), "192.0.2.7");
	assert_int_equal(ind.prefix, 32);
	assert_int_equal(ind.family, 4);
	assert_string_equal(norm(INTEL_IP, "10.1.2.3/8"), "10.0.0.0/8");
	assert_int_equal(ind.prefix, 8);
	assert_string_equal(norm(INTEL_IP, "0.0.0.0/0"), "0.0.0.0/0");
	assert_string_equal(norm(INTEL_IP, "2001:DB8:0:0::1"), "2001:db8::1");
	assert_int_equal(ind.prefix, 128);
	assert_string_equal(norm(INTEL_IP, "2001:db8:ffff::/33"),
	                    "2001:db8:8000::/33");
	assert_string_equal(norm(INTEL_IP, "::ffff:198.51.100.1"),
	                    "198.51.100.1");
	assert_int_equal(ind.family, 4);
	assert_string_equal(norm(INTEL_IP, "::ffff:198.51.100.0/120"),
	                    "198.51.100.0/24");
	assert_null(norm(INTEL_IP, "10.0.0.0/33"));
	assert_null(norm(INTEL_IP, "10.0.0.0/"));
	assert_null(norm(INTEL_IP, "10.0.0.0/-1"));
	assert_null(norm(INTEL_IP, "10.0.0.256"));
	assert_null(norm(INTEL_IP, "2001:db8::/129"));
	/* The same range written two ways is one key. */
	{
		struct intel_ind a, b;

		assert_int_equal(
		    intel_parse(INTEL_IP, "10.9.9.9/16", 11, &a, NULL, 0), 0);
		assert_int_equal(
		    intel_parse(INTEL_IP, "10.9.0.0/16", 11, &b, NULL, 0), 0);
		assert_int_equal(a.keylen, b.keylen);
		assert_memory_equal(a.key, b.key, a.keylen);
	}
}

static void
test_domain(void **state)
{
	(void)state;
	assert_string_equal(norm(INTEL_DOMAIN, "Evil.EXAMPLE."),
	                    "evil.example");
	assert_string_equal(norm(INTEL_DOMAIN, "_dmarc.example.org"),
	                    "_dmarc.example.org");
	/* IDNA: the ASCII form; upper case mapped (UTS 46). */
	assert_string_equal(norm(INTEL_DOMAIN, "B\xc3\xbc"
	                                       "cher.example"),
	                    "xn--bcher-kva.example");
	assert_string_equal(norm(INTEL_DOMAIN, "xn--bcher-kva.example"),
	                    "xn--bcher-kva.example");
	assert_null(norm(INTEL_DOMAIN, "a..b"));
	assert_null(norm(INTEL_DOMAIN, "."));
	assert_null(norm(INTEL_DOMAIN, "exa mple.com"));
	assert_null(norm(INTEL_DOMAIN, "192.0.2.1"));
	assert_null(norm(INTEL_DOMAIN,
	                 "a-very-long-label-that-goes-on-and-on-"
	                 "and-on-beyond-sixty-three-chars.example"));
}

static void
test_url(void **state)
{
	(void)state;
	assert_string_equal(norm(INTEL_URL, "HTTP://Evil.Example:80"),
	                    "http://evil.example/");
	assert_string_equal(
	    norm(INTEL_URL, "https://evil.example:443/a/./b/../c"),
	    "https://evil.example/a/c");
	assert_string_equal(norm(INTEL_URL, "https://evil.example:8443/x"),
	                    "https://evil.example:8443/x");
	/* unreserved escapes decoded, the others upper-case */
	assert_string_equal(norm(INTEL_URL, "http://e.example/%7euser/%2fx%3a"),
	                    "http://e.example/~user/%2Fx%3A");
	/* %2E is '.', so a dot segment once decoded */
	assert_string_equal(norm(INTEL_URL, "http://e.example/a/%2E%2E/b"),
	                    "http://e.example/b");
	/* blanks and bytes outside the URI set are encoded */
	assert_string_equal(norm(INTEL_URL, "http://e.example/a b?q=1 2#frag"),
	                    "http://e.example/a%20b?q=1%202");
	assert_string_equal(norm(INTEL_URL, "http://e.example/100%"),
	                    "http://e.example/100%25");
	assert_string_equal(norm(INTEL_URL, "http://User@[2001:DB8::1]:80/"),
	                    "http://User@[2001:db8::1]/");
	assert_string_equal(norm(INTEL_URL, "http://192.0.2.1/../../x"),
	                    "http://192.0.2.1/x");
	assert_string_equal(norm(INTEL_URL, "http://b\xc3\xbc"
	                                    "cher.example/"),
	                    "http://xn--bcher-kva.example/");
	/* a NUL byte is encoded, never a cut (found by fuzz_intelnorm) */
	assert_int_equal(intel_parse(INTEL_URL, "http://e.example/a\0b?\0", 22,
	                             &ind, why, sizeof(why)),
	                 0);
	assert_string_equal(ind.text, "http://e.example/a%00b?%00");
	assert_null(norm(INTEL_URL, "evil.example/path"));
	assert_null(norm(INTEL_URL, "http:///path"));
	assert_null(norm(INTEL_URL, "http://e.example:99999/"));
	assert_null(norm(INTEL_URL, "http://[::1/"));
	/* the same URL written two ways is one key */
	{
		struct intel_ind a, b;
		const char *x = "HTTP://E.example:80/%61/./b",
		           *y = "http://e.example/a/b";

		assert_int_equal(
		    intel_parse(INTEL_URL, x, strlen(x), &a, NULL, 0), 0);
		assert_int_equal(
		    intel_parse(INTEL_URL, y, strlen(y), &b, NULL, 0), 0);
		assert_memory_equal(a.key, b.key, 33);
	}
}

static void
test_detect(void **state)
{
	(void)state;
	assert_non_null(norm(INTEL_ANY, "192.0.2.0/24"));
	assert_int_equal(ind.kind, INTEL_IP);
	assert_non_null(norm(INTEL_ANY, "2001:db8::1"));
	assert_int_equal(ind.kind, INTEL_IP);
	assert_non_null(norm(INTEL_ANY, "https://x.example/"));
	assert_int_equal(ind.kind, INTEL_URL);
	assert_non_null(norm(INTEL_ANY, "x.example"));
	assert_int_equal(ind.kind, INTEL_DOMAIN);
	assert_null(norm(INTEL_ANY, "not an indicator"));
	assert_null(norm(INTEL_ANY, "{\"a\":1}"));
	assert_int_equal(intel_kind_parse("SHA-256"), INTEL_SHA256);
	assert_int_equal(intel_kind_parse("ipv6"), INTEL_IP);
	assert_int_equal(intel_kind_parse("nope"), INTEL_NKINDS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash),   cmocka_unit_test(test_ip),
	    cmocka_unit_test(test_domain), cmocka_unit_test(test_url),
	    cmocka_unit_test(test_detect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
