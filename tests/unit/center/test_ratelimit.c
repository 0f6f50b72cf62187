/*
 * Unit tests of the center's per-address rate limiter: the burst is
 * allowed, the next attempt refused with a retry time, tokens refill with
 * time, addresses are independent, and memory stays fixed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../src/center/ratelimit.c"

/*
 * The limiter hashes with a random key, so two sources share a slot (and
 * a bucket) once in RL_SLOTS runs: the tests that count on separate
 * buckets fix the key, and check that their sources do not collide with
 * it (the test failed about once in 2,000 runs before).
 */
static void
fix_key(struct ratelimit *rl, const char *const *srcs, size_t n)
{
	size_t i, j;

	rl->key[0] = 0x0123456789abcdefULL;
	rl->key[1] = 0xfedcba9876543210ULL;
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			assert_int_not_equal(rl_hash(rl, srcs[i]),
			                     rl_hash(rl, srcs[j]));
}

static void
test_burst_and_refill(void **state)
{
	static const char *const srcs[] = {"192.0.2.1", "192.0.2.2"};
	struct ratelimit *rl = ratelimit_new(60, 3); /* 1/s, burst 3 */
	int ra = 0, i;

	(void)state;
	assert_non_null(rl);
	fix_key(rl, srcs, 2);
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "192.0.2.1", 1000, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "192.0.2.1", 1000, &ra), 0);
	assert_true(ra >= 1 && ra <= 2);
	/* Another address has its own bucket. */
	assert_int_equal(ratelimit_take(rl, "192.0.2.2", 1000, &ra), 1);
	/* One second later one more token. */
	assert_int_equal(ratelimit_take(rl, "192.0.2.1", 1001, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "192.0.2.1", 1001, &ra), 0);
	/* Long idle: refilled only up to the burst. */
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "192.0.2.1", 5000, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "192.0.2.1", 5000, &ra), 0);
	ratelimit_free(rl);
}

static void
test_many_addresses(void **state)
{
	struct ratelimit *rl = ratelimit_new(60, 1);
	char a[64];
	int ra, i, allowed = 0;

	(void)state;
	/* Far more addresses than slots: no growth, no crash, and an
	 * address that was just refused stays refused. */
	for (i = 0; i < 100000; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.%d", (i >> 16) & 255,
		         (i >> 8) & 255, i & 255);
		allowed += ratelimit_take(rl, a, 2000, &ra);
	}
	assert_true(allowed > RL_SLOTS / 2 && allowed <= RL_SLOTS);
	assert_int_equal(ratelimit_take(rl, "10.0.0.5", 2000, &ra), 0);
	ratelimit_free(rl);
}

static void
test_ipv6_prefix(void **state)
{
	struct ratelimit *rl = ratelimit_new(60, 2);
	char a[64], b[64];
	const char *srcs[] = {a, b};
	int ra;

	(void)state;
	/* The two /64s as the limiter names them. */
	rl_source("2001:db8:1:2::1", a, sizeof(a));
	rl_source("2001:db8:1:3::1", b, sizeof(b));
	fix_key(rl, srcs, 2);
	/* Every address of one /64 is one source... */
	assert_int_equal(ratelimit_take(rl, "2001:db8:1:2::1", 100, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "2001:db8:1:2::ffff", 100, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "2001:db8:1:2:abcd::9", 100, &ra),
	                 0);
	/* ...and another /64 is another. */
	assert_int_equal(ratelimit_take(rl, "2001:db8:1:3::1", 100, &ra), 1);
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_and_refill),
	    cmocka_unit_test(test_many_addresses),
	    cmocka_unit_test(test_ipv6_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
