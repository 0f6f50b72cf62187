/*
 * Tests of peers (src/common/peers.c): the key of each address family
 * (IPv4, IPv4-mapped IPv6 counted as IPv4, IPv6 by its /64) and the
 * counts, which go with their last connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "peers.h"

static void
key_of(const char *addr, char *key)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		peers_key((struct sockaddr *)&sin, key, PEERS_KEYLEN);
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
	sin6.sin6_family = AF_INET6;
	peers_key((struct sockaddr *)&sin6, key, PEERS_KEYLEN);
}

static void
test_keys(void **state)
{
	char key[PEERS_KEYLEN];
	struct sockaddr sa;

	(void)state;
	key_of("192.0.2.7", key);
	assert_string_equal(key, "192.0.2.7");
	key_of("::ffff:192.0.2.7", key);
	assert_string_equal(key, "192.0.2.7");
	key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key);
	assert_string_equal(key, "2001:db8:1:2::/64");
	key_of("2001:db8:1:2::1", key);
	assert_string_equal(key, "2001:db8:1:2::/64");
	key_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", key);
	assert_string_equal(key, "ffff:ffff:ffff:ffff::/64");
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	peers_key(&sa, key, sizeof(key));
	assert_string_equal(key, "");
	peers_key(NULL, key, sizeof(key));
	assert_string_equal(key, "");
}

static void
test_counts(void **state)
{
	struct peers *p = peers_new();
	char name[32];
	int i;

	(void)state;
	assert_non_null(p);
	assert_int_equal(peers_count(p, "192.0.2.1"), 0);
	assert_int_equal(peers_add(p, "192.0.2.1"), 0);
	assert_int_equal(peers_add(p, "192.0.2.1"), 0);
	assert_int_equal(peers_add(p, "192.0.2.2"), 0);
	assert_int_equal(peers_count(p, "192.0.2.1"), 2);
	assert_int_equal(peers_count(p, "192.0.2.2"), 1);
	peers_del(p, "192.0.2.1");
	assert_int_equal(peers_count(p, "192.0.2.1"), 1);
	peers_del(p, "192.0.2.1");
	assert_int_equal(peers_count(p, "192.0.2.1"), 0);
	assert_int_equal(peers_count(p, "192.0.2.2"), 1);
	/* Many addresses, more than the buckets: chains hold them all. */
	for (i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "10.%d.%d.1", i / 256, i % 256);
		assert_int_equal(peers_add(p, name), 0);
	}
	for (i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "10.%d.%d.1", i / 256, i % 256);
		assert_int_equal(peers_count(p, name), 1);
		peers_del(p, name);
		assert_int_equal(peers_count(p, name), 0);
	}
	assert_int_equal(peers_count(p, "192.0.2.2"), 1);
	peers_free(p); /* with an entry left: freed too */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
