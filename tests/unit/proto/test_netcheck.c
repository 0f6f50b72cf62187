/*
 * Unit tests of the doctor's parsers: an SNTP reply (offsets, the checks
 * that refuse a reply to someone else, a kiss-o'-death, an unsynchronized
 * server, short packets) and a proxy's answer to CONNECT (status, the
 * schemes of Proxy-Authenticate in one or several headers and challenge
 * lists, partial and malformed heads, bytes without a NUL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netcheck.h"

static void
put_ts(uint8_t *p, double unix_time)
{
	double t = unix_time + (double)SNTP_UNIX_OFFSET;
	uint64_t sec = (uint64_t)t;
	uint32_t frac = (uint32_t)((t - (double)sec) * 4294967296.0);

	p[0] = (uint8_t)(sec >> 24);
	p[1] = (uint8_t)(sec >> 16);
	p[2] = (uint8_t)(sec >> 8);
	p[3] = (uint8_t)sec;
	p[4] = (uint8_t)(frac >> 24);
	p[5] = (uint8_t)(frac >> 16);
	p[6] = (uint8_t)(frac >> 8);
	p[7] = (uint8_t)frac;
}

/* A server's reply to req, its clock skew seconds ahead of t. */
static void
reply(uint8_t out[SNTP_LEN], const uint8_t req[SNTP_LEN], double t, double skew)
{
	memset(out, 0, SNTP_LEN);
	out[0] = 0x24; /* LI 0, VN 4, mode 4 */
	out[1] = 2;
	memcpy(out + 24, req + 40, 8);
	put_ts(out + 32, t + skew);
	put_ts(out + 40, t + skew);
}

static void
test_sntp_offset(void **state)
{
	uint8_t req[SNTP_LEN], rep[SNTP_LEN];
	struct sntp_reply r;
	char why[256];
	double t1 = 1796000000.25;

	(void)state;
	sntp_request(req, t1);
	assert_int_equal(req[0], 0x23); /* VN 4, mode 3 */
	reply(rep, req, t1 + 0.010, 3600);
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), 0);
	assert_int_equal(r.stratum, 2);
	assert_int_equal(r.version, 4);
	/* Sent at t1, answered 10 ms later at once, back at t1 + 20 ms:
	 * the server is an hour ahead. */
	assert_true(sntp_offset(&r, t1, t1 + 0.020) > 3599.99);
	assert_true(sntp_offset(&r, t1, t1 + 0.020) < 3600.01);
	reply(rep, req, t1 + 0.010, -20);
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), 0);
	assert_true(sntp_offset(&r, t1, t1 + 0.020) < -19.99);
	/* Longer packets (extension fields) are fine. */
	{
		uint8_t big[SNTP_LEN + 20];

		memset(big, 0, sizeof(big));
		memcpy(big, rep, SNTP_LEN);
		assert_int_equal(
		    sntp_parse(big, sizeof(big), req, &r, why, sizeof(why)), 0);
	}
}

static void
test_sntp_refused(void **state)
{
	uint8_t req[SNTP_LEN], rep[SNTP_LEN], other[SNTP_LEN];
	struct sntp_reply r;
	char why[256];
	double t1 = 1796000000.5;

	(void)state;
	sntp_request(req, t1);
	reply(rep, req, t1, 0);
	assert_int_equal(sntp_parse(rep, 47, req, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "47 bytes"));
	/* An answer to another request. */
	sntp_request(other, t1 + 1);
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), other, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "originate"));
	/* Not a server's mode. */
	rep[0] = 0x23;
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "mode 3"));
	/* A kiss-o'-death quotes its code. */
	reply(rep, req, t1, 0);
	rep[1] = 0;
	memcpy(rep + 12, "RATE", 4);
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "kiss-o'-death (RATE)"));
	/* Unsynchronized. */
	reply(rep, req, t1, 0);
	rep[0] = 0xe4;
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not synchronized"));
	reply(rep, req, t1, 0);
	rep[1] = 16;
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), -1);
	reply(rep, req, t1, 0);
	memset(rep + 40, 0, 8);
	assert_int_equal(
	    sntp_parse(rep, sizeof(rep), req, &r, why, sizeof(why)), -1);
}

static long
parse(const char *s, struct proxy_answer *a)
{
	return proxy_answer_parse((const uint8_t *)s, strlen(s), a);
}

static void
test_proxy_answer(void **state)
{
	struct proxy_answer a;
	const char *s;
	char t[64];

	(void)state;
	s = "HTTP/1.1 200 Connection established\r\n\r\n";
	assert_int_equal(parse(s, &a), (long)strlen(s));
	assert_int_equal(a.status, 200);
	assert_int_equal(a.schemes, 0);
	/* The head ends at the empty line; TLS bytes may follow. */
	s = "HTTP/1.0 200 OK\r\nVia: x\r\n\r\n\x16\x03\x01";
	assert_int_equal(parse(s, &a), (long)strlen(s) - 3);
	s = "HTTP/1.1 407 Proxy Authentication Required\r\n"
	    "Proxy-Authenticate: Basic realm=\"vigil, test\"\r\n"
	    "Content-Length: 0\r\n\r\n";
	assert_true(parse(s, &a) > 0);
	assert_int_equal(a.status, 407);
	assert_int_equal(a.schemes, PROXYAUTH_BASIC);
	s = "HTTP/1.1 407 x\r\nproxy-authenticate: NTLM\r\n"
	    "Proxy-Authenticate:   Negotiate\r\n\r\n";
	assert_true(parse(s, &a) > 0);
	assert_int_equal(a.schemes, PROXYAUTH_NTLM | PROXYAUTH_NEGOTIATE);
	proxy_schemes_text(a.schemes, t, sizeof(t));
	assert_string_equal(t, "NTLM, Negotiate");
	/* One header with a challenge list; parameters are not schemes. */
	s = "HTTP/1.1 407 x\nProxy-Authenticate: Digest realm=\"a\", "
	    "nonce=\"b\", Basic realm=x, Kerberos\n\n";
	assert_true(parse(s, &a) > 0);
	assert_int_equal(a.schemes, PROXYAUTH_OTHER | PROXYAUTH_BASIC |
	                                PROXYAUTH_NEGOTIATE);
	proxy_schemes_text(0, t, sizeof(t));
	assert_string_equal(t, "none");
	/* Other headers with the word do not count. */
	s = "HTTP/1.1 407 x\r\nX-Note: Basic\r\n\r\n";
	assert_true(parse(s, &a) > 0);
	assert_int_equal(a.schemes, 0);
}

static void
test_proxy_bad(void **state)
{
	struct proxy_answer a;
	const uint8_t nonul[] = {'H', 'T', 'T', 'P', '/',  '1',  '.', '1',
	                         ' ', '2', '0', '0', '\r', '\n', '\r'};

	(void)state;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\n", &a), -2);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nVia: x\r\n", &a), -2);
	assert_int_equal(parse("", &a), -2);
	assert_int_equal(proxy_answer_parse(nonul, sizeof(nonul), &a), -2);
	assert_int_equal(parse("SSH-2.0-OpenSSH\r\n\r\n", &a), -1);
	assert_int_equal(parse("HTTP/1.1 20 OK\r\n\r\n", &a), -1);
	assert_int_equal(parse("HTTP/1.1 2000 OK\r\n\r\n", &a), -1);
	assert_int_equal(parse("HTTP/1.1 099 x\r\n\r\n", &a), -1);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", &a), -1);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", &a), -1);
	assert_int_equal(proxy_answer_parse((const uint8_t *)"HTTP/1.1 200 "
	                                                     "O\0K\r\n\r\n",
	                                    22, &a),
	                 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sntp_offset),
	    cmocka_unit_test(test_sntp_refused),
	    cmocka_unit_test(test_proxy_answer),
	    cmocka_unit_test(test_proxy_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
